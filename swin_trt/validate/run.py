"""One validation run, as four steps that each do one thing:

1. :func:`check_options`: refuse bad input before anything is opened;
2. :func:`~.models.open_models`: parse and open every model, resolve their common input;
3. :func:`~.compare.compare` and :func:`attribute`: stream the images (for a clip model, the clips of the
   videos: :mod:`swin_trt.data.clips`) through them, then find the layers that lose the signal in FP16/INT8
   graphs;
4. :func:`~.document.assemble`: the report document (report.json's schema, docs/report-schema.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..data.clips import ClipOptions, ClipPreprocessor, not_clips_error, video_suffixes_text
from ..data.images import list_images, suffixes_text
from ..data.model_input import PreprocessOptions
from ..data.images import images_fingerprint
from ..errors import UserError
from ..io import sha256_file
from ..model_ref import ModelRef
from ..stage import AS_INPUT, FINGERPRINT, NOT_IN_KEY, Stage, coerce_paths
from .coco import CocoAnnotations
from .compare import DetectionRequest, batches, compare
from .detection import DEFAULT_SCORE_THRESHOLD
from .document import assemble, calibration_overlap
from .gates import Gates
from .labels import Labelled, label_items, list_labelled
from .latency import deployable_latency
from .model_precision import model_precision, needs_layer_attribution
from .segmentation import MaskSet
from ..data.volumes import VolumePreprocessor
from .volumes import check_volume_options, volume_items
from .models import OpenModels, open_models, resolve_models


@dataclass
class ValidateOptions:
    reference: str = field(metadata=AS_INPUT)  # a model reference (ONNX, engine, torch:ARCH)
    candidates: list[str] = field(metadata=AS_INPUT)
    data: Path | None = field(default=None, metadata=FINGERPRINT(images_fingerprint))
    labels: Path | None = None
    batch: int = 8
    limit: int | None = None
    fp32: Path | None = None  # the FP32 ONNX graph for layer attribution when the reference is PyTorch
    layer_images: int = 8
    progress: bool = field(default=True, metadata=NOT_IN_KEY)
    gates: Gates = field(default_factory=Gates)
    preprocess: PreprocessOptions = field(default_factory=PreprocessOptions)
    calib: Path | None = None  # a calibration cache: how many validation images it was made from is reported
    masks: Path | None = None  # label masks of a segmentation model's images: true mIoU (validate/segmentation.py)
    threads: int | None = None  # ONNX Runtime threads (default: the batch policy, swin_trt.backends.threads)
    # Detectors (data/detection_outputs.py, validate/detection.py, coco.py): which output is which (default: by
    # name and shape), the score above which detections are compared (default 0.05), COCO ground truth.
    outputs: dict[str, str] | None = None
    score_threshold: float | None = None
    annotations: Path | None = None
    # A clip model (input (B, 3, T, H, W)): the data are videos, cut into clips (data/clips.py)
    clip_len: int | None = None  # frames per clip (default: the model's T)
    clip_stride: int | None = None  # frames between the starts of clips (default: clip_len)

    def __post_init__(self):
        self.reference, self.candidates = str(self.reference), [str(c) for c in self.candidates]
        coerce_paths(self, "data", "labels", "fp32", "calib", "masks", "annotations")

    @property
    def wants_detections(self) -> bool:
        """Detection metrics were asked for: a model that is no detector is then an error."""
        return bool(self.outputs) or self.score_threshold is not None or self.annotations is not None \
            or self.gates.max_map_drop is not None


Options = ValidateOptions  # its name before the stages had one pattern


@dataclass(frozen=True)
class _Model:
    """A model reference as the key sees it: a file by content, ``torch:ARCH`` by name."""

    ref: str

    def fingerprint(self) -> str:
        path = ModelRef.parse(self.ref).path
        return sha256_file(path) if path is not None and path.is_file() else self.ref


class ValidateStage(Stage[dict]):
    """Every candidate against the reference on real images: the report document, and (with ``outdir``)
    report.json and report.html written there."""

    name = "validate"
    environment = ("onnxruntime",)

    def __init__(self, options: ValidateOptions, outdir: str | Path | None = None):
        outputs = [Path(outdir) / "report.json", Path(outdir) / "report.html"] if outdir is not None else []
        super().__init__({"reference": _Model(options.reference),
                          "candidates": [_Model(c) for c in options.candidates]}, outputs, options)
        self.outdir = None if outdir is None else Path(outdir)

    def environment_facts(self) -> tuple[str, ...]:
        models = [self.options.reference, *self.options.candidates]
        engines = any(ModelRef.parse(m).kind == "engine" for m in models)
        return super().environment_facts() + (("tensorrt",) if engines else ())

    def work(self) -> dict:
        document = run_validation(self.options)
        if self.outdir is not None:
            write_report(document, self.outdir)
        return document

    def summary(self, document: dict) -> str:
        from .summary import one_line

        return one_line(document)


def default_data(reference: str | None = None):
    """The images the package ships for ``reference``, with their ground truth (:class:`~swin_trt.models.demo.
    BundledData`: the segmentation demo's masks, the detection demo's boxes)."""
    from ..models.demo import bundled_validation_data

    bundled = bundled_validation_data(reference)
    if not bundled.images.is_dir():
        raise UserError("no `data` given and the package's demo images are missing: pass `data` (a folder of images)")
    return bundled


def check_options(options: Options) -> None:
    if len(set(options.candidates)) != len(options.candidates):
        raise UserError("a model is given twice in `candidates`: name each model once")
    if options.batch < 1:
        raise UserError("`batch` must be >= 1")
    if options.fp32 is not None and not Path(options.fp32).is_file():
        raise UserError(f"`fp32` {str(options.fp32)!r} does not exist: pass the FP32 ONNX graph")
    if options.calib is not None and not Path(options.calib).is_file():
        raise UserError(f"`calib` {str(options.calib)!r} does not exist: pass the calibration cache (calib.json)")
    if options.masks is not None and not Path(options.masks).is_dir():
        raise UserError(f"`masks` {str(options.masks)!r} is not a folder: pass the folder with one PNG mask per "
                        f"image (<image stem>.png, pixel value = class index, 255 = ignore)")
    if options.gates.max_map_drop is not None and options.annotations is None:
        raise UserError("`max_map_drop` needs ground truth: pass `annotations` (a COCO instances JSON file)")


def _layer_images(data: Labelled, preprocessor, count: int):
    """The first ``count`` readable images, preprocessed, one at a time."""
    if count <= 0:
        return
    for pixels, *_ in batches(data, preprocessor, 1, progress=False):
        yield pixels[0]
        count -= 1
        if count == 0:
            return


def attribute(options: Options, candidate: str, models: OpenModels, data: Labelled, notes: list[str]) -> dict:
    """Per-layer error attribution of one FP16/INT8 ONNX candidate against the FP32 graph."""
    from ..graph import load_onnx
    from .layers import attribute_layers

    if candidate not in models.protos:
        return {"status": "skipped", "reason": "per-layer attribution needs an ONNX candidate (run it on the "
                                               "FP16/INT8 ONNX graph the engine was built from)"}
    if options.fp32 is not None:
        fp32_path = str(options.fp32)
    elif ModelRef.parse(options.reference).kind == "onnx":
        fp32_path = options.reference
    else:
        reason = "the reference is PyTorch: pass --fp32 model.onnx (the FP32 graph) to compare layers"
        notes.append(f"{candidate}: per-layer attribution skipped ({reason})")
        return {"status": "skipped", "reason": reason}
    if options.layer_images <= 0:
        return {"status": "skipped", "reason": "--layer-images 0"}
    fp32 = models.protos.get(fp32_path) or load_onnx(fp32_path)
    images = _layer_images(data, models.model_input.preprocessor, options.layer_images)
    result = attribute_layers(fp32, models.protos[candidate], images)
    if not result["compared"]:
        reason = f"no intermediate tensor of {fp32_path} has the same name and shape in the candidate"
        notes.append(f"{candidate}: per-layer attribution found nothing to compare ({reason})")
        return {"status": "skipped", "reason": reason}
    return {"status": "ok", "fp32": fp32_path, **result}


def measure_latency(options: Options, models: OpenModels, data: Labelled) -> dict:
    """Every model timed on the path ``infer`` would run (see :mod:`.latency`), on one batch of the images."""
    pixels = next(batches(data, models.model_input.preprocessor, options.batch, progress=False))[0]
    backends = {options.reference: models.reference, **models.candidates}
    return {name: deployable_latency(name, backend.inner, models.protos.get(name), pixels, options.threads)
            for name, backend in backends.items()}


def _check_clip_options(options: Options) -> None:
    """What a clip model cannot be asked for: ground truth and outputs of images."""
    for name in ("masks", "annotations", "outputs", "score_threshold"):
        if getattr(options, name) is not None:
            raise UserError(f"`{name}` is for images (segmentation masks, detections), but the models take video "
                            f"clips: leave `{name}` out")


def _list_data(options: Options, clips: ClipPreprocessor | None):
    """The items to validate (images, or a clip model's videos) with their labels, and where those came from."""
    data_source = options.data
    items, label_source = list_labelled(data_source, options.labels, videos=clips is not None)
    if options.limit:
        items = items[:options.limit]
    if items:
        return items, label_source
    if clips is not None:
        images = list_images(data_source) if Path(data_source).exists() else []
        if images:
            raise not_clips_error(data_source, f"{len(images)} image(s) and no video", clips)
        raise UserError(f"no videos ({video_suffixes_text()}) found in {str(data_source)!r}: the models take "
                        f"clips; pass a folder of videos (class sub-folders give labels) or one video")
    raise UserError(f"no images ({suffixes_text()}) found in {str(data_source)!r}")


def run_validation(options: Options) -> dict:
    """Compare every candidate with the reference; returns the report document (JSON-safe)."""
    check_options(options)
    # the models are parsed once, here, so that the listing knows whether they take images or clips
    resolved = resolve_models(options.reference, options.candidates, options.preprocess,
                              clips=ClipOptions(options.clip_len, options.clip_stride))
    clips = resolved.model_input.preprocessor if resolved.model_input.clips else None
    if clips is not None:
        _check_clip_options(options)
    volumes = isinstance(resolved.model_input.preprocessor, VolumePreprocessor)
    if volumes:  # a volume model (B, C, D, H, W): .npy/NIfTI volumes, compared voxel by voxel (.volumes)
        check_volume_options(options)
        volume_items(options.data)  # no data, or no volume in it: said before the bundled images are looked for
    if options.data is None and clips is not None:  # the bundled video demo's held-out clips
        from ..models.demo import demo_video_clips_dir

        options = replace(options, data=demo_video_clips_dir())
    elif options.data is None:  # the bundled images, with the masks or boxes they ship with
        bundled = default_data(options.reference)
        options = replace(options, data=bundled.images, masks=options.masks or bundled.masks,
                          annotations=options.annotations or bundled.annotations)
        check_options(options)
    data_source, masks_folder = options.data, options.masks
    items, label_source = (volume_items(options.data, options.limit), None) if volumes else _list_data(options, clips)
    masks = MaskSet(masks_folder, [item.path for item in items]) if masks_folder is not None else None
    if options.gates.max_miou_drop is not None and masks is None:
        raise UserError("`max_miou_drop` needs label masks: pass `masks` (a folder with one PNG per image, "
                        "pixel value = class index)")
    annotations = CocoAnnotations(options.annotations) if options.annotations is not None else None
    if annotations is not None:
        annotations.check_matches([item.path for item in items])
    detection = DetectionRequest(DEFAULT_SCORE_THRESHOLD if options.score_threshold is None
                                 else options.score_threshold, options.outputs, annotations,
                                 required=options.wants_detections)
    with open_models(options.reference, options.candidates, threads=options.threads, resolved=resolved) as models:
        data = label_items(items, models.class_names)
        if options.gates.max_acc_drop is not None and not (data.labels >= 0).any():
            raise UserError("`max_acc_drop` needs labelled images: an ImageFolder layout (one folder per class) "
                            "or `labels` (a file of labels)")
        result = compare(models.reference, models.candidates, data, models.model_input.preprocessor,
                         options.batch, options.progress, masks=masks, class_names=models.class_names,
                         detection=detection)
        latency = measure_latency(options, models, data)
    notes: list[str] = []
    layers = {}
    for name in options.candidates:
        precision = model_precision(name, models.protos.get(name))
        layers[name] = attribute(options, name, models, data, notes) if needs_layer_attribution(precision) else None
    overlap = calibration_overlap(items, options.calib, options.candidates)
    return assemble(options, models, data, data_source, label_source, result, layers, latency, overlap, notes,
                    masks_folder)


def write_report(document: dict, outdir: str | Path) -> dict[str, Path]:
    """report.json and report.html in ``outdir``, each written atomically."""
    from ..io import atomic_output, write_json
    from .report_html import render_html

    outdir = Path(outdir)
    paths = {"json": outdir / "report.json", "html": outdir / "report.html"}
    write_json(paths["json"], document)
    with atomic_output(paths["html"]) as temporary:
        temporary.write_text(render_html(document), encoding="utf-8")
    return paths


__all__ = ["ValidateOptions", "ValidateStage", "Options", "run_validation", "write_report", "default_data"]
