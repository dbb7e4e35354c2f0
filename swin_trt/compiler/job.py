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

The stages are declared once, as data (:func:`plan`): name, outputs, the key that decides reuse (the
options and the *content* of every input: calibration and validation images as read, the plugin library,
the upstream artifacts, the swin-trt version) and the work. Numbering and the summary table follow from
the list.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..errors import GateFailed, UserError
from ..io import content_fingerprint, sha256_file, sidecar_path
from .holdout import split
from .options import CompileOptions
from .stages import Stage, StageRunner

logger = logging.getLogger(__name__)


def _version() -> str:
    from .. import __version__

    return __version__


def _tensorrt_missing() -> str | None:
    """Why no engine can be built here, or ``None`` when TensorRT and a GPU are present."""
    from ..environment import import_tensorrt, require_gpu

    try:
        import_tensorrt()
        require_gpu()
    except UserError as exc:
        return str(exc)
    return None


def _onnxruntime_version() -> str:
    """Calibration ranges and CPU validation are ONNX Runtime's arithmetic: a new version re-runs them."""
    import onnxruntime

    return onnxruntime.__version__


def _build_environment() -> dict:
    from .. import environment

    return environment.build_environment()


def _plugin_library_sha(explicit: Path | None) -> str | None:
    """The content of the plugin library the build would load (None where none is found yet)."""
    from ..plugin_library import find_plugin_library

    try:
        return sha256_file(find_plugin_library(explicit))
    except UserError:
        return None


def _images_fingerprint(source: Path, limit: int | None = None) -> str:
    from ..data.images import list_images

    items = list_images(source)[:limit] if limit else list_images(source)
    labels = "\n".join(f"{item.path.name}\t{item.label}" for item in items if item.label)
    return content_fingerprint(((str(item.path), item.path) for item in items), extra=labels)


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
        parts = split(options.calib_data, outdir, options.calib_num)
        echo(parts.message)
        return DataSources(parts.calibration, parts.validation, masks, annotations)
    if options.val_data is not None:
        return DataSources(options.calib_data, options.val_data, masks, annotations)
    use_bundle = options.arch is not None and get_arch(options.arch).weights and bundled.images.is_dir()
    return DataSources(options.calib_data, bundled.images if use_bundle else options.calib_data or demo_images_dir(),
                       masks, annotations)


def plan(options: CompileOptions, files: Artifacts, data: DataSources,
         echo: Callable[[str], None] | None = None) -> list[Stage]:
    """The stages this compile runs, in order."""
    echo = echo or logger.info
    calib_data, val_data, val_masks = data.calib, data.val, data.masks
    version = _version()
    pre = asdict(options.preprocess)
    stages = []
    if options.onnx is None:
        def export() -> str:
            from ..export import export_model

            result = export_model(options.arch, files.exported, checkpoint=options.checkpoint,
                                  img_size=options.img_size, batch=options.batch,
                                  dynamic_batch=options.dynamic_batch, convention=options.convention,
                                  exporter=options.exporter)
            return f"max abs err vs PyTorch {result.max_abs_err:.1e}"

        stages.append(Stage("export", [files.exported, sidecar_path(files.exported)], lambda: {
            "arch": options.arch, "checkpoint": sha256_file(options.checkpoint) if options.checkpoint else None,
            "img_size": options.img_size, "convention": options.convention, "exporter": options.exporter,
            "batch": options.batch, "dynamic_batch": options.dynamic_batch, "swin_trt": version}, export))

    def rewrite() -> str:
        from ..surgery.rewrite_stage import rewrite_file

        report = rewrite_file(files.exported, files.rewritten, fuse_attention=options.fuse_attention, strict=True,
                              window_ops=options.window_ops, preprocess=options.preprocess)
        return ", ".join(f"{n} {op}" for op, n in sorted(report.counts().items())) or "no plugin node"

    stages.append(Stage("rewrite", [files.rewritten, sidecar_path(files.rewritten)], lambda: {
        "input": sha256_file(files.exported), "fuse_attention": options.fuse_attention,
        "window_ops": options.window_ops, "preprocess": pre, "swin_trt": version}, rewrite))

    if options.needs_calibration:
        from ..precision.sources import CalibrationSource

        def calibrate() -> str:
            from ..precision.calibrate_stage import calibrate_file

            cache = calibrate_file(files.rewritten, calib_data, files.calib, num=options.calib_num,
                                   method=options.calib_method, preprocess=options.preprocess)
            return f"{len(cache['tensors'])} tensors, {options.calib_method}, {cache['data']['images']} images"

        stages.append(Stage("calibrate", [files.calib], lambda: {
            "input": sha256_file(files.rewritten),
            "data": CalibrationSource(calib_data, options.calib_num).fingerprint(),
            "method": options.calib_method, "num": options.calib_num, "preprocess": pre,
            "onnxruntime": _onnxruntime_version(), "swin_trt": version},
            calibrate))

    if options.precision != "fp32":
        def quantize() -> str:
            from ..precision.quantize_stage import QuantizeRequest, quantize_file

            request = QuantizeRequest(options.precision, calib=files.calib if options.needs_calibration else None,
                                      data=val_data if options.precision == "best" else None,
                                      preprocess=options.preprocess)
            section = quantize_file(files.rewritten, files.final, request, log=lambda line: None)
            return ", ".join(f"{k} {v}" for k, v in section.items() if k in ("precision", "method", "qdq_pairs"))

        stages.append(Stage("quantize", [files.final, sidecar_path(files.final)], lambda: {
            "input": sha256_file(files.rewritten), "precision": options.precision,
            "calib": sha256_file(files.calib) if options.needs_calibration else None,
            "held_out": _images_fingerprint(val_data) if options.precision == "best" else None,
            "preprocess": pre, "swin_trt": version}, quantize))

    no_engine = _tensorrt_missing() if options.build else "--no-build was given"

    def build() -> str:
        build_options = dict(plugins=options.plugins, target=options.target, workspace_gib=options.workspace_gib,
                             max_batch=options.dynamic_batch, img_size_range=options.img_size_range)
        if options.compare and options.img_size_range is None:  # variants are timed at one size only
            from .variants import build_fastest

            return build_fastest(options, files, calib_data, val_data, build_options, echo)
        from ..engine.build import build_engine

        result = build_engine(files.final, files.engine, **build_options)
        return f"TensorRT {result.manifest['tensorrt']} on {result.manifest['gpu']['name']}"

    stages.append(Stage("build", [files.engine, sidecar_path(files.engine)], lambda: {
        "input": sha256_file(files.final), "export": sha256_file(files.exported) if options.compare else None,
        "plugins": _plugin_library_sha(options.plugins), "target": options.target,
        "workspace": options.workspace_gib, "img_size_range": options.img_size_range, "compare": options.compare,
        "environment": _build_environment(), "swin_trt": version}, build,
        unavailable=lambda: no_engine, note="no engine: TensorRT or a GPU is missing (see above)"))

    def candidates() -> list[Path]:
        engine = [] if no_engine else [files.engine]
        return [files.rewritten] + ([files.final] if files.final != files.rewritten else []) + engine

    def validate() -> str:
        from ..validate.gates import Gates
        from ..validate.run import Options, run_validation, write_report

        document = run_validation(Options(str(files.exported), [str(c) for c in candidates()], data=val_data,
                                          limit=options.val_limit, gates=Gates(**options.gates),
                                          preprocess=options.preprocess, masks=val_masks,
                                          annotations=data.annotations,
                                          calib=files.calib if options.needs_calibration else None))
        write_report(document, files.outdir)
        return _validation_summary(document)

    stages.append(Stage("validate", list(files.report), lambda: {
        "reference": sha256_file(files.exported), "candidates": [sha256_file(c) for c in candidates()],
        "data": _images_fingerprint(val_data, options.val_limit), "limit": options.val_limit,
        "masks": _images_fingerprint(val_masks) if val_masks else None,
        "annotations": sha256_file(data.annotations) if data.annotations else None,
        "gates": options.gates, "preprocess": pre,
        "calib": sha256_file(files.calib) if options.needs_calibration else None,
        "environment": None if no_engine else _build_environment(), "onnxruntime": _onnxruntime_version(),
        "swin_trt": version}, validate))
    return stages


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


def _validation_summary(document: dict) -> str:
    parts = []
    for entry in document.get("candidates", []):
        name = Path(entry["name"]).name
        agreement = entry["top1_agreement"]
        agreement = "-" if agreement is None else f"{agreement:.3f}"
        if entry.get("detection") is not None:  # a detector: the reference's detections found, and the mAP
            found = entry["detection"]
            mean_ap = "" if entry.get("map") is None else f", mAP {entry['map']:.4f} ({entry['map_change']:+.4f})"
            parts.append(f"{name}: found {found['found']:.3f} of {found['reference']} detections, "
                         f"{found['extra']} extra{mean_ap}")
            continue
        if entry.get("miou_agreement") is not None:  # a class map: agreement per pixel, and the mIoU
            miou = "" if entry.get("miou") is None else f", mIoU {entry['miou']:.4f} ({entry['miou_change']:+.4f})"
            parts.append(f"{name}: pixel agr {agreement}, mIoU agr {entry['miou_agreement']:.3f}{miou}")
            continue
        parts.append(f"{name}: top1 agr {agreement}, cos {entry['cosine']:.5f}")
    return "; ".join(parts)
