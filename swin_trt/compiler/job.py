"""``swin-trt compile``: every stage once, in order, each reading what the previous one wrote.

OUTDIR after a run::

    model.onnx(.json)            export (fp32) and its provenance
    model.rewritten.onnx(.json)  plugin nodes in place of the window ops
    calib.json                   INT8 activation ranges (int8, best)
    model.<precision>.onnx(.json) the graph with its precision (fp16, int8, best)
    model.engine(.json)          TensorRT engine and manifest (where TensorRT and a GPU are present)
    report.html, report.json     validation of every artifact against the fp32 export
    pipeline.json                stage keys and output hashes: what a re-run can reuse
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import GateFailed, UserError
from ..io import sha256_file
from .stages import Stage, StageRunner

PRECISIONS = ("fp32", "fp16", "int8", "best")


@dataclass
class CompileOptions:
    arch: str
    outdir: Path
    precision: str = "fp16"
    checkpoint: Path | None = None
    img_size: tuple[int, int] | None = None
    convention: str | None = None
    exporter: str = "torchscript"
    batch: int = 1
    dynamic_batch: int | None = None
    calib_data: Path | None = None
    calib_method: str = "percentile"  # as `swin-trt calibrate`: entropy clips GELU outputs of trained Swins
    calib_num: int = 512
    val_data: Path | None = None
    val_limit: int | None = None
    plugins: Path | None = None
    target: str = "auto"
    workspace_gib: float | None = None
    build: bool = True
    force: bool = False
    gates: dict = field(default_factory=dict)  # min_agreement, min_cosine, max_acc_drop

    def check(self) -> None:
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        if self.precision in ("int8", "best") and self.calib_data is None:
            raise UserError(f"--precision {self.precision} needs --calib-data (a folder of images, a video or a "
                            f"list of paths) to calibrate INT8 ranges on")
        for name in ("calib_data", "val_data", "checkpoint"):
            value = getattr(self, name)
            if value is not None and not Path(value).exists():
                raise UserError(f"--{name.replace('_', '-')} {str(value)!r} does not exist")


def _tensorrt_missing() -> str | None:
    """Why no engine can be built here, or ``None`` when TensorRT and a GPU are present."""
    from ..engine.environment import import_tensorrt, require_gpu

    try:
        import_tensorrt()
        require_gpu()
    except UserError as exc:
        return str(exc)
    return None


def _validation_data(options: CompileOptions) -> Path:
    if options.val_data is not None:
        return options.val_data
    from ..models import get_arch
    from ..models.demo import demo_images_dir

    if get_arch(options.arch).weights and demo_images_dir().is_dir():
        return demo_images_dir()
    return options.calib_data or demo_images_dir()


def compile_model(options: CompileOptions, echo: Callable[[str], None] = print) -> dict:
    """Run the pipeline; returns the summary (stages, artifacts, validation)."""
    options.check()
    outdir = Path(options.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    exported, rewritten = outdir / "model.onnx", outdir / "model.rewritten.onnx"
    calib = outdir / "calib.json"
    final = rewritten if options.precision == "fp32" else outdir / f"model.{options.precision}.onnx"
    engine = outdir / "model.engine"
    needs_calib = options.precision in ("int8", "best")
    no_tensorrt = _tensorrt_missing() if options.build else "--no-build was given"
    total = 4 + needs_calib + (options.precision != "fp32")
    runner = StageRunner(outdir, echo, total, force=options.force)

    def export_stage() -> str:
        from ..export import export_model

        result = export_model(options.arch, exported, checkpoint=options.checkpoint, img_size=options.img_size,
                              batch=options.batch, dynamic_batch=options.dynamic_batch,
                              convention=options.convention, exporter=options.exporter)
        return f"max abs err vs PyTorch {result.max_abs_err:.1e}"

    checkpoint_hash = sha256_file(options.checkpoint) if options.checkpoint else None
    export_key = {"arch": options.arch, "checkpoint": checkpoint_hash, "img_size": options.img_size,
                  "convention": options.convention, "exporter": options.exporter, "batch": options.batch,
                  "dynamic_batch": options.dynamic_batch, "swin_trt": _version()}
    runner.run(Stage("export", export_key, [exported, _sidecar(exported)], export_stage))

    def rewrite_stage() -> str:
        from ..surgery.rewrite_stage import rewrite_file

        report = rewrite_file(exported, rewritten, strict=True)
        return ", ".join(f"{n} {op}" for op, n in sorted(report.counts().items()))

    runner.run(Stage("rewrite", {"input": sha256_file(exported), "swin_trt": _version()},
                     [rewritten, _sidecar(rewritten)], rewrite_stage))

    if needs_calib:
        def calibrate_stage() -> str:
            from ..precision.calibrate_stage import calibrate_file

            cache = calibrate_file(rewritten, options.calib_data, calib, num=options.calib_num,
                                   method=options.calib_method)
            return f"{len(cache['tensors'])} tensors, {options.calib_method}, {cache['data']['images']} images"

        from ..precision.sources import CalibrationSource

        fingerprint = CalibrationSource(options.calib_data, options.calib_num).fingerprint()
        runner.run(Stage("calibrate", {"input": sha256_file(rewritten), "data": fingerprint,
                                       "method": options.calib_method, "num": options.calib_num,
                                       "swin_trt": _version()}, [calib], calibrate_stage))

    if options.precision != "fp32":
        def quantize_stage() -> str:
            from ..precision.quantize_stage import QuantizeRequest, quantize_file

            request = QuantizeRequest(options.precision, calib=calib if needs_calib else None,
                                      data=_validation_data(options) if options.precision == "best" else None)
            section = quantize_file(rewritten, final, request, log=lambda line: None)
            return ", ".join(f"{k} {v}" for k, v in section.items() if k in ("precision", "method", "qdq_pairs"))

        key = {"input": sha256_file(rewritten), "precision": options.precision, "swin_trt": _version(),
               "calib": sha256_file(calib) if needs_calib else None}
        runner.run(Stage("quantize", key, [final, _sidecar(final)], quantize_stage))

    if no_tensorrt:
        runner.skip("build", no_tensorrt, "no engine: TensorRT or a GPU is missing (see above)")
    else:
        def build_stage() -> str:
            from ..engine.build import build_engine

            result = build_engine(final, engine, plugins=options.plugins, target=options.target,
                                  workspace_gib=options.workspace_gib, max_batch=options.dynamic_batch)
            return f"TensorRT {result.manifest['tensorrt']} on {result.manifest['gpu']['name']}"

        runner.run(Stage("build", {"input": sha256_file(final), "target": options.target,
                                   "plugins": str(options.plugins), "swin_trt": _version()},
                         [engine, _sidecar(engine)], build_stage))

    candidates = [rewritten] + ([final] if final != rewritten else []) + ([engine] if not no_tensorrt else [])
    report_json, report_html = outdir / "report.json", outdir / "report.html"

    def validate_stage() -> str:
        from ..validate.gates import Gates
        from ..validate.run import Options, run_validation, write_report

        document = run_validation(Options(str(exported), [str(c) for c in candidates],
                                          data=_validation_data(options), limit=options.val_limit,
                                          gates=Gates(**options.gates)))
        write_report(document, outdir)
        return _validation_summary(document)

    key = {"reference": sha256_file(exported), "candidates": [sha256_file(c) for c in candidates],
           "data": str(_validation_data(options)), "limit": options.val_limit, "gates": options.gates,
           "swin_trt": _version()}
    result = runner.run(Stage("validate", key, [report_json, report_html], validate_stage))
    echo("")
    echo(runner.table())
    echo(f"report: {report_html}")
    failures = json.loads(report_json.read_text()).get("gates", {}).get("failures", [])
    if failures:
        raise GateFailed("; ".join(f["message"] for f in failures))
    return {"options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
            "stages": [asdict(r) | {"outputs": [str(p) for p in r.outputs]} for r in runner.results],
            "validation": result.summary, "outdir": str(outdir)}


def _validation_summary(document: dict) -> str:
    parts = []
    for entry in document.get("candidates", []):
        name = Path(entry["name"]).name
        parts.append(f"{name}: top1 agr {entry['top1_agreement']:.3f}, cos {entry['cosine']:.5f}")
    return "; ".join(parts)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _version() -> str:
    from .. import __version__

    return __version__


def load_recipe(path: Path) -> dict:
    """Options from a TOML recipe (keys as the long flags, with - or _)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"recipe {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"recipe {str(path)!r} is not valid TOML: {exc}") from None
    return {key.replace("-", "_"): value for key, value in data.items()}
