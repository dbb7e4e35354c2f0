"""``build --compare``: build each plugin variant of one graph, time them on this GPU, keep the fastest.

A plugin is not faster than TensorRT alone by construction (a custom attention node blocks the fused
attention TensorRT builds by itself), so each plugin family is a choice (:mod:`swin_trt.surgery.variant`)
and this module measures it. :func:`make_variants` rewrites one export into the variants;
:func:`compare_variants` builds every variant, times each engine (GPU time of one execution, median of N
runs after warm-up) and keeps the fastest at the output path. Its manifest gets a ``compare`` section with
every variant's time, as flat rows a report can tabulate (:func:`comparison_rows`).

``compile`` passes its own variants (rewritten, then quantized and calibrated each) to
:func:`compare_variants`, so every precision is compared on the graph it will ship.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
from pathlib import Path
from typing import Callable, Mapping

from ..errors import UserError
from ..io import atomic_output, read_sidecar, sha256_file, write_json
from ..surgery.variant import VARIANTS, PluginVariant
from .. import environment
from . import manifest
from .build import BuildOptions, BuildResult, BuildStage, inspect_onnx

logger = logging.getLogger(__name__)

DEFAULT_RUNS = 50
DEFAULT_WARMUP = 10


Variant = PluginVariant  # the name this module gave it before surgery.variant held the one definition


def _require_export(source: Path) -> None:
    plugin_ops = inspect_onnx(source).plugin_ops
    if plugin_ops:
        raise UserError(f"{str(source)!r} already has plugin nodes ({', '.join(plugin_ops)}): variants are "
                        f"rewritten from the export; pass the export (`swin-trt export`'s output), or pass "
                        f"each variant's graph in `variant_specs` (NAME=PATH)")


def make_variants(source: str | Path, folder: str | Path, variants=VARIANTS, strict: bool = False) -> dict:
    """Rewrite ``source`` (an export: no plugin nodes yet) once per variant into ``folder``.

    Returns ``{variant name: rewritten ONNX path}``; each file has its sidecar (with ``rewrite.variant``).
    Runs on the CPU (ONNX Runtime probes the regions), no TensorRT needed.
    """
    from ..surgery.rewrite_stage import RewriteOptions, RewriteStage  # onnx-graphsurgeon: only where made

    source, folder = Path(source), Path(folder)
    _require_export(source)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for variant in variants:
        paths[variant.name] = folder / f"{source.stem}.{variant.name}.onnx"
        RewriteStage(source, paths[variant.name], RewriteOptions.of(variant, strict=strict)).run()
    return paths


def time_engine(engine_path: Path, batch: int, plugins=None, warmup: int = DEFAULT_WARMUP,
                runs: int = DEFAULT_RUNS) -> dict:
    """GPU milliseconds of one execution at ``batch``: median (the ranking), min and max of ``runs``."""
    from ..backends.tensorrt import TensorRTBackend

    with TensorRTBackend(engine_path, plugins=plugins) as backend:
        times = backend.time_gpu(batch, warmup=warmup, runs=runs)
    return {"median_ms": round(statistics.median(times), 4), "min_ms": round(min(times), 4),
            "max_ms": round(max(times), 4)}


def _timed_batch(record: dict) -> int:
    """The batch TensorRT tuned for: the profile's opt batch, or the static batch."""
    if record.get("profile"):
        return int(record["profile"][1])
    return int(next(t["shape"][0] for t in record["io"] if t["mode"] == "input"))


def _check_variants(variants: Mapping[str, Path]) -> dict:
    if not variants:
        raise UserError("comparing needs at least one variant")
    paths = {name: Path(path) for name, path in variants.items()}
    inputs = {name: inspect_onnx(path).inputs for name, path in paths.items()}
    first = next(iter(inputs))
    for name, graph_inputs in inputs.items():
        if graph_inputs != inputs[first]:
            raise UserError(f"variant {name!r} ({paths[name]}) has inputs {graph_inputs}, variant {first!r} has "
                            f"{inputs[first]}: variants must be the same graph rewritten differently")
    return paths


def compare_variants(variants: Mapping[str, str | Path], output: str | Path, *, plugins=None,
                     runs: int = DEFAULT_RUNS, warmup: int = DEFAULT_WARMUP, echo: Callable[[str], None] | None = None,
                     source: Path | None = None, **build_options) -> BuildResult:
    """Build every ``{name: ONNX path}`` variant, time each on this GPU, keep the fastest at ``output``.

    ``build_options`` are :func:`~swin_trt.engine.build.build_engine`'s (target, workspace_gib, max_batch,
    timing_cache ...), the same for every variant. The kept engine's manifest is the fastest variant's,
    with ``compare``: ``chosen``, ``batch``, ``runs``, ``warmup``, ``statistic`` and ``variants`` (one row
    each: name, window_ops, fuse_attention, onnx, onnx_sha256, median_ms, min_ms, max_ms, build_seconds,
    plugin_layers, chosen). ``source``: the export the variants were rewritten from, when they are
    temporary files (their ``onnx`` is then None; ``source`` and the variant's settings reproduce them).
    """
    echo = echo or logger.info  # the CLI passes click.echo: its output
    if runs < 1 or warmup < 0:
        raise UserError(f"`runs` {runs} must be >= 1 and `warmup` {warmup} >= 0")
    _refuse_size_range(build_options)
    paths = _check_variants(variants)
    output = Path(output)
    require_gpu_stack()
    output.parent.mkdir(parents=True, exist_ok=True)
    rows, built = [], {}
    options = BuildOptions(plugins=plugins, **build_options)  # the same for every variant
    with tempfile.TemporaryDirectory(prefix=".swin-trt-compare-", dir=output.parent.resolve()) as folder:
        for index, (name, path) in enumerate(paths.items(), 1):
            echo(f"[{index}/{len(paths)}] {name}: building {path.name}")
            result = BuildStage(path, Path(folder) / f"{name}.engine", options).run()
            batch = _timed_batch(result.manifest)
            timing = time_engine(result.path, batch, plugins=plugins, warmup=warmup, runs=runs)
            variant = (read_sidecar(path) or {}).get("rewrite", {}).get("variant", {})
            rows.append({"name": name, "window_ops": variant.get("window_ops"),
                         "fuse_attention": variant.get("fuse_attention"),
                         "onnx": None if source is not None else str(path.resolve()),
                         "onnx_sha256": sha256_file(path), **timing,
                         "build_seconds": result.manifest["build_seconds"],
                         "plugin_layers": result.manifest["precision"]["plugin_layers"], "batch": batch})
            built[name] = result
            echo(f"    median {timing['median_ms']:.3f} ms at batch {batch} ({runs} runs)")
        chosen = min(rows, key=lambda row: row["median_ms"])["name"]
        for row in rows:
            row["chosen"] = row["name"] == chosen
        best = built[chosen]
        record = {**best.manifest, "engine": output.name}
        if source is not None:  # the variant's ONNX was a temporary file: compare.source reproduces it
            record["source"] = {**record["source"], "path": None}
        record["compare"] = {
            "chosen": chosen, "batch": _timed_batch(best.manifest), "runs": runs, "warmup": warmup,
            "statistic": "median GPU time of one execution (CUDA events around execute_async_v3)",
            "source": None if source is None else manifest.source_record(source, read_sidecar(source) or {}),
            "variants": rows}
        manifest_file = manifest.manifest_path(output)
        with atomic_output(output) as temporary:
            temporary.write_bytes(best.path.read_bytes())
            write_json(manifest_file, record)
    return BuildResult(output, manifest_file, record)


def _refuse_size_range(build_options: dict) -> None:
    # The engines are timed by swin-trt's TensorRT runner, which runs one image size per engine.
    if build_options.get("img_size_range") is not None:
        raise UserError("comparing times every variant at one image size, so it does not take `img_size_range` "
                        "yet: build a graph of any size without comparing, or compare its variants exported at "
                        "one size")


def require_gpu_stack() -> None:
    """TensorRT, a GPU, Polygraphy and pycuda (the timing runs on it), or a UserError naming what is missing."""
    environment.import_tensorrt()
    environment.require_gpu()
    environment.import_polygraphy()
    environment.import_pycuda()


def parse_variant_specs(specs) -> dict:
    """``["NAME=PATH", ...]`` (``--variant``) -> ``{NAME: Path}``."""
    variants = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UserError(f"`variant_specs` {spec!r}: write NAME=PATH, e.g. native=out/model.native.onnx")
        if name in variants:
            raise UserError(f"variant {name!r} is given twice in `variant_specs`: each variant needs its own name")
        variants[name] = Path(path)
    return variants


def export_of(model: Path) -> Path:
    """The graph to make variants from: ``model`` itself without plugin nodes, else the export its rewrite
    sidecar names (when that file is still there, unchanged)."""
    if not inspect_onnx(model).plugin_ops:
        return model
    sidecar = read_sidecar(model) or {}
    source = Path(sidecar["source"]) if sidecar.get("stage") == "rewrite" and sidecar.get("source") else None
    if source is not None and source.is_file() and sha256_file(source) == sidecar.get("source_sha256"):
        return source
    return model  # make_variants says what to pass instead


def compare_model(model: str | Path, output: str | Path, variant_specs=(), *, plugins=None,
                  runs: int = DEFAULT_RUNS, warmup: int = DEFAULT_WARMUP, echo: Callable[[str], None] | None = None,
                  **build_options) -> BuildResult:
    """``swin-trt build --compare``: the ``--variant`` files when given, else every :data:`VARIANTS` rewrite
    of ``model`` (an export, or a rewritten graph whose export is still beside it)."""
    echo = echo or logger.info  # the CLI passes click.echo: its output
    if variant_specs:
        return compare_variants(parse_variant_specs(variant_specs), output, plugins=plugins, runs=runs,
                                warmup=warmup, echo=echo, **build_options)
    _refuse_size_range(build_options)
    source = export_of(Path(model))
    _require_export(source)
    require_gpu_stack()  # before minutes of rewriting on the CPU
    with tempfile.TemporaryDirectory(prefix="swin-trt-variants-") as folder:
        echo(f"rewriting {source.name} into {len(VARIANTS)} variants")
        variants = make_variants(source, folder)
        return compare_variants(variants, output, plugins=plugins, runs=runs, warmup=warmup, echo=echo,
                                source=source, **build_options)


def comparison_rows(record: dict) -> list[dict]:
    """The ``compare`` section of an engine manifest as table rows (empty when the engine was not compared)."""
    section = record.get("compare") or {}
    fastest = min((row["median_ms"] for row in section.get("variants", [])), default=None)
    return [{"variant": row["name"], "median_ms": row["median_ms"],
             "vs_fastest": round(row["median_ms"] / fastest, 3) if fastest else None,
             "plugin_layers": row["plugin_layers"], "chosen": row["chosen"]}
            for row in section.get("variants", [])]


def format_comparison(record: dict) -> str:
    rows = comparison_rows(record)
    if not rows:
        return ""
    section = record["compare"]
    lines = [f"compared {len(rows)} variants at batch {section['batch']} ({section['statistic']}, median of "
             f"{section['runs']} runs after {section['warmup']}):"]
    lines += [f"  {'*' if row['chosen'] else ' '} {row['variant']:40s} {row['median_ms']:9.3f} ms  "
              f"x{row['vs_fastest']:.2f}  {row['plugin_layers']} plugin layers" for row in rows]
    return "\n".join(lines)
