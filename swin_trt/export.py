"""Stage 1 of the pipeline: the PyTorch reference model -> ONNX, with a JSON sidecar of its provenance."""

from __future__ import annotations

import contextlib
import importlib.metadata
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
import torch

from .data.input_format import FOLDED_INPUTS, FoldedNormalization, example_pixels, folded_preprocessing
from . import export_any_size as any_size
from .errors import UserError
from .io import atomic_output, sha256_file, sidecar_path, write_json
from .stage import Stage, coerce_paths
from .models import create_model, get_arch
from .models.detection import check_image, head_summary

INPUT_NAME = "input"
LOGITS_NAME = "logits"
DETECTION_NAMES = ("boxes", "scores", "labels")  # as torchvision's detectors are exported: one image's N found
EXPORTERS = ("torchscript", "dynamo")
# The dynamo exporter has no opset-17 implementations and its down-conversion of Pad fails: it starts at 18.
DEFAULT_OPSET = {"torchscript": 17, "dynamo": 18}


@dataclass
class ExportResult:
    path: Path
    sidecar: dict
    inputs: list[tuple[str, list]] = field(default_factory=list)
    outputs: list[tuple[str, list]] = field(default_factory=list)
    max_abs_err: float | None = None

    def describe(self) -> str:
        size_mb = self.path.stat().st_size / 2**20
        lines = [f"wrote {self.path} ({size_mb:.1f} MiB, opset {self.sidecar['opset']}, "
                 f"{self.sidecar['exporter']} exporter)"]
        lines += [f"  input  {name}: {shape}" for name, shape in self.inputs]
        lines += [f"  output {name}: {shape}" for name, shape in self.outputs]
        if self.max_abs_err is not None:
            found = self.sidecar.get("check", {}).get("detections")
            same = "" if found is None else f" (the same {found} detections and labels)"
            lines.append(f"  ONNX Runtime vs PyTorch: max abs err {self.max_abs_err:.2e}{same}")
        if self.sidecar.get("dynamic_size"):
            low = self.sidecar["dynamic_size"]["min_img_size"]
            lines.append(f"  dynamic height/width: one graph for every input from {low[0]}x{low[1]} up "
                         f"(rewrite keeps it so)")
        lines.append(f"  sidecar {sidecar_path(self.path)}")
        return "\n".join(lines)


def _package_versions() -> dict:
    versions = {}
    for name in ("swin-trt", "torch", "onnx", "onnxruntime", "timm", "torchvision"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _shape(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _output_names(features: bool, stages: int, task: str) -> list[str]:
    if features:
        return [f"stage{i + 1}" for i in range(stages)]
    return list(DETECTION_NAMES) if task == "detection" else [LOGITS_NAME]


def seeded_model(arch: str, seed: int, **options):
    """``create_model(arch, **options)`` with any random initialisation drawn from ``seed``: the weights
    :func:`export_model` exports when there is no checkpoint. torch's global generator is left as it was
    (the model code draws from it, so it is forked for the call, not reseeded for the caller)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model(arch, **options)


@dataclass(frozen=True)
class ExportOptions:
    """What to export. Without a checkpoint and without bundled weights the weights are random (``seed``),
    which the sidecar records and the CLI warns about loudly. ``check`` runs the ONNX file in ONNX Runtime and
    compares it with PyTorch on the same random input. ``fold_normalization`` (``uint8`` or ``float255``) puts
    the normalisation into the graph, which then takes 0..255 RGB pixels (:mod:`swin_trt.data.input_format`).
    ``dynamic_size`` leaves height and width dynamic (:mod:`.export_any_size`); the check then also runs at a
    second, larger size against the model built for it.

    A Video Swin arch (``ArchSpec.is_video``) exports clips ``(B, 3, T, H, W)``: ``img_size`` sets the frame
    size H x W, ``clip_len`` the frames T (default: the arch's ``clip_size``); the sidecar records ``layout``
    ``NCTHW`` and ``clip_size``, and its ``preprocessing`` is that of each frame. ``dynamic_size`` is not
    supported for clips yet."""

    arch: str
    checkpoint: Path | None = None  # by content
    img_size: tuple[int, int] | int | None = None
    batch: int = 1
    dynamic_batch: int | None = None
    opset: int | None = None
    features: bool = False
    convention: str | None = None
    exporter: str = "torchscript"
    num_classes: int | None = None
    check: bool = True
    seed: int = 0
    fold_normalization: str | None = None
    dynamic_size: bool = False
    clip_len: int | None = None

    def __post_init__(self):
        coerce_paths(self, "checkpoint")


class ExportStage(Stage[ExportResult]):
    """The named config ``options.arch`` (its checkpoint or bundled weights) -> ONNX at ``output``, written
    atomically, with ``output.json`` (its provenance) beside it."""

    name = "export"
    environment = ("torch",)  # the exporter writes the graph

    def __init__(self, output: str | Path, options: ExportOptions):
        super().__init__({}, [Path(output), sidecar_path(output)], options)  # the checkpoint: an option, by content
        self.output = Path(output)

    def work(self) -> ExportResult:
        return _export(self.output, self.options)

    def summary(self, result: ExportResult) -> str:
        return "" if result.max_abs_err is None else f"max abs err vs PyTorch {result.max_abs_err:.1e}"


def export_model(arch: str, output: str | Path, *, checkpoint: str | Path | None = None, img_size=None,
                 batch: int = 1, dynamic_batch: int | None = None, opset: int | None = None, features: bool = False,
                 convention: str | None = None, exporter: str = "torchscript", num_classes: int | None = None,
                 check: bool = True, seed: int = 0, fold_normalization: str | None = None,
                 dynamic_size: bool = False, clip_len: int | None = None) -> ExportResult:
    """:class:`ExportStage` as one call (the keywords are :class:`ExportOptions`' fields)."""
    options = ExportOptions(arch, checkpoint, img_size, batch, dynamic_batch, opset, features, convention, exporter,
                            num_classes, check, seed, fold_normalization, dynamic_size, clip_len)
    return ExportStage(output, options).run()


def _export(output: Path, options: ExportOptions) -> ExportResult:
    """Build the model, trace it, check it against PyTorch, then write the graph and its provenance."""
    arch, checkpoint, img_size, convention = options.arch, options.checkpoint, options.img_size, options.convention
    batch, dynamic_batch, dynamic_size = options.batch, options.dynamic_batch, options.dynamic_size
    opset, exporter, features, num_classes = options.opset, options.exporter, options.features, options.num_classes
    check, seed, fold_normalization = options.check, options.seed, options.fold_normalization
    opset = _check_options(exporter, opset, batch, dynamic_batch, fold_normalization, dynamic_size)
    img_size, overrides = _check_exportable(arch, img_size, options.clip_len, dynamic_size)
    model, spec, report = seeded_model(arch, seed, checkpoint=checkpoint, img_size=img_size,
                                       convention=convention, features=features, num_classes=num_classes,
                                       config_overrides=overrides)
    config = model.config
    detections = spec.task == "detection" and not features  # boxes, scores, labels: as many rows as it finds
    _check_options_fit_model(spec, config, detections, batch, dynamic_batch, dynamic_size, fold_normalization)
    model, example, example_batch = _example_input(model, spec, config, detections, batch, dynamic_batch, seed,
                                                   fold_normalization)
    output = Path(output)
    names = _output_names(features, len(config.depths), spec.task)
    class_map = spec.task == "segmentation" and not features  # (B, classes, H, W) at the input's size
    expected = _pytorch_outputs(model, example)
    with atomic_output(output) as temporary, warnings.catch_warnings(), \
            (any_size.masks_from_input_size(model) if dynamic_size else contextlib.nullcontext()):
        warnings.simplefilter("ignore")
        onnx_model = _trace_to_onnx(model, example, temporary, exporter=exporter, opset=opset, names=names,
                                    dynamic_batch=dynamic_batch, dynamic_size=dynamic_size, features=features,
                                    class_map=class_map)
        _name_output_dims(onnx_model, config, detections=detections, batch=batch, dynamic_batch=dynamic_batch,
                          dynamic_size=dynamic_size, features=features, class_map=class_map)
        onnx.save_model(onnx_model, str(temporary))
        onnx.checker.check_model(onnx_model, full_check=True)
        max_abs_err = (_check_against_pytorch(temporary, model, example, expected, detections=detections,
                                              dynamic_size=dynamic_size, example_batch=example_batch, seed=seed)
                       if check else None)
    result = ExportResult(output, {}, max_abs_err=max_abs_err)
    result.inputs = [(i.name, _shape(i)) for i in onnx_model.graph.input]
    result.outputs = [(o.name, _shape(o)) for o in onnx_model.graph.output]
    result.sidecar = _provenance(result, spec, config, report, checkpoint=checkpoint, features=features, seed=seed,
                                 batch=batch, dynamic_batch=dynamic_batch, dynamic_size=dynamic_size,
                                 class_map=class_map, opset=opset, exporter=exporter, detections=detections,
                                 found=len(expected[0]) if detections and check else None,
                                 fold_normalization=fold_normalization)
    write_json(sidecar_path(output), result.sidecar)
    return result


def _check_options(exporter: str, opset: int | None, batch: int, dynamic_batch: int | None,
                   fold_normalization: str | None, dynamic_size: bool) -> int:
    """The checks of the options on their own, before any model is built; returns the opset to export at."""
    if exporter not in EXPORTERS:
        raise UserError(f"unknown exporter {exporter!r}: choose {' or '.join(EXPORTERS)}")
    opset = opset or DEFAULT_OPSET[exporter]
    if exporter == "dynamo" and opset < DEFAULT_OPSET["dynamo"]:
        raise UserError(f"the dynamo exporter needs `opset` >= {DEFAULT_OPSET['dynamo']} (got {opset}): use "
                        f"`opset` 18, or `exporter` torchscript for opset {opset}")
    if exporter == "dynamo":
        _require_onnxscript()
    if batch < 1 or (dynamic_batch is not None and dynamic_batch < 1):
        raise UserError("`batch` and `dynamic_batch` must be >= 1")
    if fold_normalization is not None and fold_normalization not in FOLDED_INPUTS:
        raise UserError(f"`fold_normalization` {fold_normalization!r}: choose {' or '.join(FOLDED_INPUTS)}")
    if fold_normalization and dynamic_size:
        raise UserError("`fold_normalization` and `dynamic_size` cannot be combined yet: export the backbone with "
                        "`dynamic_size` and normalise in the client, or fold the normalisation at a fixed size")
    return opset


def _check_exportable(arch: str, img_size, clip_len: int | None, dynamic_size: bool):
    """The options that depend on whether ``arch`` takes clips, checked before anything is built. Returns
    ``(img_size, config_overrides)`` for :func:`create_model`: a Video Swin arch gets its whole ``clip_size``
    (frames from ``clip_len``, frame size from ``img_size``), an image arch its ``img_size``."""
    spec = get_arch(arch)
    if not spec.is_video:
        if clip_len is not None:
            raise UserError(f"`clip_len` is the frames of a Video Swin clip, but {spec.name} takes images: leave it "
                            f"out, or export a video arch (swin3d_t, swin3d_s, swin3d_b)")
        return img_size, None
    if dynamic_size:
        raise UserError(f"`dynamic_size` is not supported for video models yet ({spec.name} takes (B, 3, T, H, W) "
                        f"clips): export one graph per clip size with `img_size` and `clip_len`")
    if clip_len is not None and clip_len < 1:
        raise UserError(f"`clip_len` must be >= 1 (got {clip_len})")
    frames, height, width = spec.config.clip_size
    if img_size is not None:
        height, width = (img_size, img_size) if isinstance(img_size, int) else img_size
    return None, {"clip_size": (clip_len or frames, height, width)}


def _check_options_fit_model(spec, config, detections: bool, batch: int, dynamic_batch: int | None,
                             dynamic_size: bool, fold_normalization: str | None) -> None:
    """The checks of the options against the model: a detector exports one image at its own size; a
    dynamic-size export needs a model that can run at other sizes."""
    if detections and (batch != 1 or dynamic_batch or dynamic_size or fold_normalization):
        raise UserError(f"{spec.name} is a detector: it exports the detections of one image at its own size, taking "
                        f"pixels / 255 (it normalises inside), so `batch`, `dynamic_batch`, `dynamic_size` and "
                        f"`fold_normalization` do not apply (`features` exports its backbone)")
    if dynamic_size:
        any_size.check_export_size(config)


def _example_input(model, spec, config, detections: bool, batch: int, dynamic_batch: int | None, seed: int,
                   fold_normalization: str | None):
    """The input the model is traced and checked on (drawn from ``seed``), and the model to export: wrapped to
    normalise 0..255 pixels itself when ``fold_normalization`` asks. Returns ``(model, example, batch)``."""
    example_batch = min(2, dynamic_batch) if dynamic_batch else batch
    size = _clip_size(spec, config) or config.img_size  # a clip: (T, H, W)
    example = torch.randn(example_batch, config.in_chans, *size, generator=torch.Generator().manual_seed(seed))
    if detections:
        example = check_image(config.img_size)
    if fold_normalization:
        model = FoldedNormalization(model, spec.preprocessing.mean, spec.preprocessing.std,
                                    spatial_dims=len(size))
        example = example_pixels(fold_normalization, example.shape, torch.Generator().manual_seed(seed))
    return model, example, example_batch


def _clip_size(spec, config) -> tuple[int, int, int] | None:
    """A Video Swin's clip ``(T, H, W)``; None for an image model."""
    return tuple(config.clip_size) if spec.is_video else None


def _pytorch_outputs(model, example: torch.Tensor) -> tuple:
    """What PyTorch computes on ``example``: the outputs the export is checked against, as a tuple."""
    with torch.no_grad():
        expected = model(example)
    return expected if isinstance(expected, tuple) else (expected,)


def _dynamic_axes(names: list[str], *, dynamic_batch: int | None, dynamic_size: bool, features: bool,
                  class_map: bool) -> dict | None:
    """The TorchScript exporter's named dynamic axes: the batch and, for a dynamic size, height and width of the
    input and of the stage maps or class map; None for a graph of fixed shape."""
    dynamic_axes = None
    if dynamic_batch or dynamic_size:
        dynamic_axes = {name: {0: "batch"} if dynamic_batch else {} for name in [INPUT_NAME, *names]}
    if dynamic_size:
        dynamic_axes[INPUT_NAME].update({2: "height", 3: "width"})
        for name in names if features else ():
            dynamic_axes[name].update({2: f"{name}_height", 3: f"{name}_width"})
        if class_map:
            dynamic_axes[LOGITS_NAME].update({2: "height", 3: "width"})
    return dynamic_axes


def _trace_to_onnx(model, example: torch.Tensor, path: Path, *, exporter: str, opset: int, names: list[str],
                   dynamic_batch: int | None, dynamic_size: bool, features: bool, class_map: bool) -> onnx.ModelProto:
    """Exports ``model`` with ``exporter`` to ``path`` and loads the graph back; a dynamic-size export that
    came out at a fixed size is a UserError."""
    dynamic_axes = _dynamic_axes(names, dynamic_batch=dynamic_batch, dynamic_size=dynamic_size, features=features,
                                 class_map=class_map)
    kwargs = dict(input_names=[INPUT_NAME], output_names=names, opset_version=opset, do_constant_folding=True)
    if exporter == "dynamo":
        # Export in memory and save ourselves: given a path, the exporter writes the weights to an
        # external file named after that (temporary) path.
        dims = {0: torch.export.Dim("batch", min=1, max=dynamic_batch)} if dynamic_batch else {}
        if dynamic_size:  # AUTO: torch.export finds the sizes' constraints (multiples of the patch)
            dims.update({2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO})
        dynamic_shapes = {"x": dims} if dims else None
        program = torch.onnx.export(model, (example,), dynamo=True, verbose=False,
                                    dynamic_shapes=dynamic_shapes, **kwargs)
        onnx.save_model(program.model_proto, str(path))
    else:
        torch.onnx.export(model, (example,), str(path), dynamo=False, dynamic_axes=dynamic_axes, **kwargs)
    onnx_model = onnx.load(str(path))
    if dynamic_size and not all(d.dim_param for d in onnx_model.graph.input[0].type.tensor_type.shape.dim[2:]):
        raise UserError(f"`dynamic_size`: the {exporter} exporter fixed the input size; try the other exporter")
    return onnx_model


def _name_output_dims(onnx_model: onnx.ModelProto, config, *, detections: bool, batch: int,
                      dynamic_batch: int | None, dynamic_size: bool, features: bool, class_map: bool) -> None:
    """Gives the outputs the dims the exporters leave unnamed-dynamic: the detection count, a fixed batch, the
    stages' channels, a class map's classes and fixed size."""
    if detections:  # one count, found at run time, shared by the three outputs
        for value in onnx_model.graph.output:
            value.type.tensor_type.shape.dim[0].dim_param = "detections"
    elif not dynamic_batch:  # the exporters leave the batch of reshaped outputs unnamed-dynamic
        for value in onnx_model.graph.output:
            value.type.tensor_type.shape.dim[0].dim_value = batch
    if features:  # with dynamic sizes the exporter leaves the stages' channels unnamed-dynamic too
        for stage, value in enumerate(onnx_model.graph.output):
            value.type.tensor_type.shape.dim[1].dim_value = config.embed_dim * 2 ** stage
    if features and hasattr(config, "clip_size"):  # a clip's stage maps (B, C, T, H, W): fixed, but left unnamed
        for value, size in zip(onnx_model.graph.output, config.stage_sizes()):
            for dim, extent in zip(value.type.tensor_type.shape.dim[2:], size):
                dim.dim_value = extent
    if class_map:  # the exporters leave a Resize's output dims unnamed, even at a fixed size
        dims = onnx_model.graph.output[0].type.tensor_type.shape.dim
        dims[1].dim_value = config.num_classes
        for dim, size in zip(dims[2:], () if dynamic_size else config.img_size):
            dim.dim_value = size


def _check_against_pytorch(path: Path, model, example: torch.Tensor, expected, *, detections: bool,
                           dynamic_size: bool, example_batch: int, seed: int) -> float:
    """The ONNX file in ONNX Runtime against PyTorch: the largest absolute error, of the example and, for a
    dynamic size, also of a second, larger size."""
    compare = _check_detections if detections else _check_with_onnxruntime
    max_abs_err = compare(path, example, expected)
    if dynamic_size:
        max_abs_err = max(max_abs_err, _check_at_another_size(path, model, example_batch, seed))
    return max_abs_err


def _provenance(result: ExportResult, spec, config, report, *, checkpoint, features: bool, seed: int, batch: int,
                dynamic_batch: int | None, dynamic_size: bool, class_map: bool, opset: int, exporter: str,
                detections: bool, found: int | None, fold_normalization: str | None) -> dict:
    """The sidecar: the model, its weights' source, the graph's inputs and outputs, how it was exported and
    checked, and the preprocessing its inputs need. ``found``: how many detections PyTorch found (a detector
    that was checked)."""
    sidecar = {
        "stage": "export",
        "arch": spec.name,
        "family": spec.family,
        "config": config.to_dict(),
        "features": features,
        "weights": ({"source": "checkpoint", "format": report.format, "path": report.path,
                     "sha256": report.sha256} if report and checkpoint is not None else
                    {"source": "bundled", "file": spec.weights, "sha256": report.sha256} if report else
                    {"source": "random", "seed": seed}),
        "img_size": list(config.img_size),
        # The input's layout: images (B, 3, H, W), or a Video Swin's clips (B, 3, T, H, W) of clip_size (T, H, W),
        # whose `preprocessing` is that of each frame.
        "layout": "NCTHW" if spec.is_video else "NCHW",
        "clip_size": list(config.clip_size) if spec.is_video else None,
        "batch": None if dynamic_batch else batch,
        "dynamic_batch_max": dynamic_batch,
        "dynamic_size": {"min_img_size": list(any_size.min_size(config))} if dynamic_size else None,
        "task": spec.task,
        # Dense outputs (stage maps, class maps) see the whole image: no classification centre crop.
        "preprocessing": (replace(spec.preprocessing, resize="stretch") if features or class_map
                          else spec.preprocessing).to_dict(config.img_size),
        "folded_normalization": None,
        "inputs": [{"name": n, "shape": s} for n, s in result.inputs],
        "outputs": [{"name": n, "shape": s} for n, s in result.outputs],
        "opset": opset,
        "exporter": exporter,
        "onnx_sha256": sha256_file(result.path),
        "check": {"onnxruntime_max_abs_err": result.max_abs_err,
                  **({"detections": found} if found is not None else {})},
        **({"detector": head_summary()} if detections else {}),
        "versions": _package_versions(),
    }
    if spec.is_video:  # each frame is preprocessed as an image, then the frames stacked along T
        sidecar["preprocessing"]["layout"] = "NCTHW"
    if fold_normalization:
        sidecar["folded_normalization"] = {"input": fold_normalization, "mean": list(spec.preprocessing.mean),
                                           "std": list(spec.preprocessing.std)}
        sidecar["preprocessing"] = folded_preprocessing(sidecar["preprocessing"], fold_normalization)
    return sidecar


def _require_onnxscript() -> None:
    """torch's dynamo exporter builds its graph with onnxscript, an optional dependency (the default
    TorchScript exporter does not need it)."""
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise UserError("`exporter` dynamo needs onnxscript: pip install 'swin-trt[dynamo]', or use "
                        "`exporter` torchscript (the default)") from None


def _check_at_another_size(path: Path, model, batch: int, seed: int) -> float:
    """A dynamic-size graph against the same weights built for a larger size (masks made for that size)."""
    grain = any_size.stage_grain(model.config)
    height, width = model.config.img_size
    size = (height + grain, width + 2 * grain)
    other = type(model)(model.config.with_(img_size=size), features=model.features).eval()
    other.load_state_dict(model.state_dict())
    example = torch.randn(batch, model.config.in_chans, *size, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        expected = other(example)
    return _check_with_onnxruntime(path, example, expected if isinstance(expected, tuple) else (expected,))


def _run_onnxruntime(path: Path, example: torch.Tensor) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: example.numpy()})


def _check_with_onnxruntime(path: Path, example: torch.Tensor, expected) -> float:
    got = _run_onnxruntime(path, example)
    return float(max(np.abs(g - e.numpy()).max() for g, e in zip(got, expected)))


def _check_detections(path: Path, example: torch.Tensor, expected) -> float:
    """A detector's outputs have a row per detection: ONNX Runtime must find as many as PyTorch, with the same
    labels in the same order; the error is that of the boxes and scores."""
    boxes, scores, labels = (e.numpy() for e in expected)
    got_boxes, got_scores, got_labels = _run_onnxruntime(path, example)
    if len(got_boxes) != len(boxes) or not np.array_equal(got_labels, labels):
        raise UserError(f"the export does not compute what the model does: ONNX Runtime finds {len(got_boxes)} "
                        f"detections (labels {got_labels[:10].tolist()}...), PyTorch {len(boxes)} (labels "
                        f"{labels[:10].tolist()}...)")
    return float(max(np.abs(got_boxes - boxes).max(initial=0.0), np.abs(got_scores - scores).max(initial=0.0)))
