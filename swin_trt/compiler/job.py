"""``swin-trt compile``: every stage once, in order, each reading what the previous one wrote.

OUTDIR after a run::

    model.onnx(.json)            export (fp32) and its provenance (with --onnx: the user's file is the start)
    model.rewritten.onnx(.json)  plugin nodes in place of the window ops
    calibration.txt, heldout.txt the split of --calib-data when no --val-data is given (compiler/holdout.py)
    calib.json                   INT8 activation ranges (int8, best)
    model.<precision>.onnx(.json) the graph with its precision (fp16, int8, best)
    model.engine(.json)          TensorRT engine and manifest (where TensorRT and a GPU are present)
    report.html, report.json     validation of every artifact against the fp32 export
    pipeline.json                stage keys and output hashes: what a re-run can reuse

The stages are a list (:func:`plan`) of the same :class:`~swin_trt.stage.Stage` objects the commands run:
each declares its inputs, outputs and options, and its reuse key follows from them (the *content* of every
input: calibration and validation images as read, the plugin library, the upstream artifacts; the options;
swin-trt's, ONNX Runtime's and TensorRT's versions and the GPU where they matter). Numbering and the
summary table follow from the list.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..errors import GateFailed
from ..stage import Stage
from .chain import precision_options, precision_stages
from .holdout import split
from .options import CompileOptions
from .stages import StageRunner

logger = logging.getLogger(__name__)


@dataclass
class Artifacts:
    """The files of one compile, by role."""

    outdir: Path
    precision: str
    source: Path | None = None  # --onnx: the user's export, used where it lies

    @property
    def exported(self) -> Path:
        return self.source or self.outdir / "model.onnx"

    @property
    def rewritten(self) -> Path:
        return self.outdir / "model.rewritten.onnx"

    @property
    def calib(self) -> Path:
        return self.outdir / "calib.json"

    @property
    def final(self) -> Path:
        return self.rewritten if self.precision == "fp32" else self.outdir / f"model.{self.precision}.onnx"

    @property
    def engine(self) -> Path:
        return self.outdir / "model.engine"

    @property
    def report(self) -> tuple[Path, Path]:
        return self.outdir / "report.json", self.outdir / "report.html"


@dataclass
class DataSources:
    """What compile calibrates and validates on, and the validation images' ground truth (label masks of a
    segmenter's images, COCO boxes of a detector's)."""

    calib: Path | None
    val: Path
    masks: Path | None = None
    annotations: Path | None = None


def _takes_clips(options: CompileOptions) -> bool:
    """Whether the model compiled takes clips (a Video Swin): its arch says so, or its ONNX input's rank."""
    from ..models import get_arch

    if options.arch is not None:
        return get_arch(options.arch).is_video
    import onnx

    from ..data.model_input import onnx_io

    return onnx_io(onnx.load(str(options.onnx), load_external_data=False)).clip


def _data_sources(options: CompileOptions, outdir: Path, echo) -> DataSources:
    """Held-out images of --calib-data unless --val-data is given. Ground truth: --val-masks/--val-annotations,
    else what ships with the bundled mosaics where the images are those."""
    from ..models import get_arch
    from ..models.demo import bundled_validation_data, demo_images_dir

    bundled = bundled_validation_data(f"torch:{options.arch}" if options.arch else None)
    drawn_from = options.val_data or options.calib_data
    from_bundle = drawn_from is None or Path(drawn_from).resolve() == bundled.images.resolve()
    masks = options.val_masks or (bundled.masks if from_bundle else None)
    annotations = options.val_annotations or (bundled.annotations if from_bundle else None)
    if options.needs_calibration and options.val_data is None:
        parts = split(options.calib_data, outdir, options.calib_num, clips=_takes_clips(options))
        echo(parts.message)
        return DataSources(parts.calibration, parts.validation, masks, annotations)
    if options.val_data is not None:
        return DataSources(options.calib_data, options.val_data, masks, annotations)
    use_bundle = options.arch is not None and get_arch(options.arch).weights and bundled.images.is_dir()
    return DataSources(options.calib_data, bundled.images if use_bundle else options.calib_data or demo_images_dir(),
                       masks, annotations)


def build_options(options: CompileOptions):
    from ..engine.build import BuildOptions

    return BuildOptions(plugins=options.plugins, target=options.target, workspace_gib=options.workspace_gib,
                        max_batch=options.dynamic_batch, img_size_range=options.img_size_range)


def plan(options: CompileOptions, files: Artifacts, data: DataSources,
         echo: Callable[[str], None] | None = None) -> list[Stage]:
    """The stages this compile runs, in order (imported here: torch and onnx-graphsurgeon load only to run)."""
    from ..engine.build import BuildStage
    from ..export import ExportOptions, ExportStage
    from ..surgery.rewrite_stage import RewriteOptions, RewriteStage
    from ..validate.gates import Gates
    from ..validate.run import ValidateOptions, ValidateStage
    from .fastest import FastestBuildStage, FastestOptions

    stages: list[Stage] = []
    if options.onnx is None:
        stages.append(ExportStage(files.exported, ExportOptions(
            options.arch, checkpoint=options.checkpoint, img_size=options.img_size, batch=options.batch,
            dynamic_batch=options.dynamic_batch, convention=options.convention, exporter=options.exporter)))
    stages.append(RewriteStage(files.exported, files.rewritten, RewriteOptions(
        fuse_attention=options.fuse_attention, window_ops=options.window_ops, strict=True,
        preprocess=options.preprocess)))
    calibrate, quantize = precision_options(options)
    stages += precision_stages(files.rewritten, files.final, files.calib, data.calib, data.val, calibrate, quantize)
    if options.compare and options.img_size_range is None:  # variants are timed at one size only
        build = FastestBuildStage(files.exported, files.engine, data.calib, data.val,
                                  FastestOptions(build_options(options), calibrate, quantize), echo)
    else:
        build = BuildStage(files.final, files.engine, build_options(options))
    build.skip_reason = None if options.build else "no engine build was asked for"
    engine = [] if build.unavailable() else [files.engine]
    candidates = [files.rewritten] + ([files.final] if files.final != files.rewritten else []) + engine
    validate = ValidateStage(ValidateOptions(
        str(files.exported), [str(c) for c in candidates], data=data.val, limit=options.val_limit,
        gates=Gates(**options.gates), preprocess=options.preprocess, masks=data.masks,
        annotations=data.annotations, calib=files.calib if options.needs_calibration else None,
        progress=True), files.outdir)
    return stages + [build, validate]


def compile_model(options: CompileOptions, echo: Callable[[str], None] | None = None) -> dict:
    """Run the pipeline; returns the summary (stages, artifacts, validation). ``echo`` hears the stage lines
    and the table, the command's output (``swin-trt compile`` passes click.echo; default: the logger at INFO)."""
    echo = echo or logger.info
    options.check()
    outdir = Path(options.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    files = Artifacts(outdir, options.precision, Path(options.onnx) if options.onnx else None)
    runner = StageRunner(outdir, echo, force=options.force)
    results = runner.run_all(plan(options, files, _data_sources(options, outdir, echo), echo))
    echo("")
    echo(runner.table())
    report_json, report_html = files.report
    echo(f"report: {report_html}")
    failures = json.loads(report_json.read_text()).get("gates", {}).get("failures", [])
    if failures:
        raise GateFailed("; ".join(f["message"] for f in failures))
    return {"options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
            "stages": [asdict(r) | {"outputs": [str(p) for p in r.outputs]} for r in results],
            "validation": results[-1].summary, "outdir": str(outdir)}
