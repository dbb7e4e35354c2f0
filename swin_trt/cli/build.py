"""``swin-trt build``."""

from pathlib import Path

import click

from ..engine.build import BuildOptions, BuildStage
from ..engine.compare import DEFAULT_RUNS, DEFAULT_WARMUP, compare_model, format_comparison
from ..errors import UserError
from .options import ENGINE, flags, parse_img_size_range


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The engine (plan) to write; its manifest goes to OUTPUT.json.")
@flags(*ENGINE)
@click.option("--timing-cache", type=click.Path(dir_okay=False, path_type=Path),
              help="Read and update this timing cache: rebuilds on the same GPU get much faster.")
@click.option("--opt-batch", type=int, help="Batch size TensorRT tunes for (dynamic batch; default: max).")
@click.option("--max-batch", type=int,
              help="Largest batch (dynamic batch; default: the export's --dynamic-batch, else 8).")
@click.option("--builder-opt-level", type=click.IntRange(0, 5),
              help="0-5: higher searches longer for faster kernels (default 3).")
@click.option("--version-compatible", is_flag=True, default=None,
              help="Engine also runs on later TensorRT versions (slower; plugins are packed into the plan).")
@click.option("--hardware-compat", is_flag=True, default=None,
              help="Engine runs on every Ampere+ GPU (slower; not on Jetson).")
@click.option("--dla-core", type=int,
              help="Run on this DLA core of a Jetson AGX Orin, GPU fallback for the rest (strongly typed; "
                   "TensorRT 10.3 on JetPack 6 or 11.4.1+ on JetPack 7.2.2+).")
@click.option("--compare", is_flag=True,
              help="Build every plugin variant of MODEL (partition/reverse and attention each as plugin or "
                   "native), time each on this GPU and keep the fastest; every time goes to the manifest.")
@click.option("--variant", "variants", multiple=True, metavar="NAME=PATH",
              help="With --compare: compare these ONNX files (the same graph rewritten and quantized "
                   "differently) instead of rewriting MODEL. Repeatable.")
@click.option("--compare-runs", type=int, default=DEFAULT_RUNS, show_default=True,
              help="Timed runs per variant; the median ranks them.")
@click.option("--compare-warmup", type=int, default=DEFAULT_WARMUP, show_default=True,
              help="Untimed runs before them.")
@click.option("--no-tf32", is_flag=True,
              help="FP32 layers in full FP32 (TensorRT uses TF32 on Ampere+ by default, ~1e-3 relative error).")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("-v", "--verbose", is_flag=True, help="TensorRT's verbose log.")
def build(model, output, plugins, target, workspace_gib, timing_cache, opt_batch, max_batch, img_size_range,
          builder_opt_level, version_compatible, hardware_compat, dla_core, compare, variants, compare_runs,
          compare_warmup, no_tf32, no_progress, verbose):
    """Build a TensorRT engine from MODEL (.onnx) on this machine's GPU.

    The network is strongly typed: FP16/INT8 come from the graph (export, quantize), never from builder
    flags. Writes OUTPUT and OUTPUT.json: the ONNX sidecar's provenance (arch, preprocessing ...) plus
    TensorRT version, GPU, target settings, precision summary, I/O, plugin library and source model hashes.
    Needs TensorRT >= 10 and an NVIDIA GPU. A note names the TensorRT used and where it comes from (module
    file, system package or PyPI wheel, venv, JetPack; what --target auto chose); without TensorRT the error
    says where it looked and each platform's install line (JetPack 6: the system's TensorRT, '[jetson]').

    \b
    Examples:
      # server GPU, dynamic batch up to 32, reusing a timing cache
      swin-trt build out/swin_t.onnx -o out/swin_t.engine --opt-batch 8 --max-batch 32 \\
          --timing-cache out/server.cache
      # Jetson Orin (JetPack 6), graph rewritten with plugin nodes
      swin-trt build out/swin_t.plugins.onnx -o out/swin_t.orin.engine --target orin \\
          --plugins build/libswin_trt_plugins.so --workspace 2
      # plugins or TensorRT alone: build the four variants of the export, keep the fastest
      swin-trt build out/swin_t.onnx -o out/swin_t.engine --compare
      # a backbone of any size (export --features --dynamic-size, then rewrite): one engine for 448 to 1024
      swin-trt build out/backbone.rw.onnx -o out/backbone.engine --img-size-range 448x448:576x576:1024x1024 \\
          --plugins build/libswin_trt_plugins.so
    """
    options = dict(plugins=plugins, target=target, workspace_gib=workspace_gib, timing_cache=timing_cache,
                   opt_batch=opt_batch, max_batch=max_batch, img_size_range=parse_img_size_range(img_size_range),
                   builder_opt_level=builder_opt_level,
                   version_compatible=version_compatible, hardware_compat=hardware_compat,
                   progress=not no_progress, dla_core=dla_core, tf32=not no_tf32, verbose=verbose)
    if variants and not compare:
        raise UserError("--variant picks what --compare compares: add --compare")
    if compare:
        result = compare_model(model, output, variants, runs=compare_runs, warmup=compare_warmup, echo=click.echo,
                               **options)
    else:
        result = BuildStage(model, output, BuildOptions(**options)).run()
    click.echo(result.describe())
    if compare:
        click.echo(format_comparison(result.manifest))
