"""``swin-trt package MODEL --deepstream -o DIR``: a Gst-nvinfer bundle (config, labels, model, plugin library).

nvinfer computes the network input as ``net-scale-factor * (pixel - offsets)``: one scalar scale for all
channels, so a per-channel std (ImageNet's) cannot be written there. A model exported with
``--fold-normalization float255`` normalises itself and gets ``net-scale-factor=1``, ``offsets=0;0;0``; a model
whose std is the same on every channel is written exactly; anything else is refused with the re-export to do.
nvinfer scales the whole frame (or object) to the network size: swin-trt's centre crop is not applied there.

A detector is refused (exit 2). nvinfer reads a detector's outputs through a bbox parser: its own parsers
expect fixed-size grids of candidates, and a graph that does NMS itself (boxes, scores, labels of data-dependent
length) needs a custom ``NvDsInferParseCustomFunc`` in a ``custom-lib-path`` library, named by
``parse-bbox-func-name``. swin-trt ships none: it would be C++ against DeepStream's headers that nothing here
can build or run, and a config pointing at an untested parser is worse than none. The refusal says what is
missing and points at ``package --triton``, which serves such outputs as they are.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .model_info import ModelInfo
from .triton_bundle import copy_plugins, find_bundle_plugins, plugin_loading_note

CONFIG = "config_infer_swin.txt"
LABELS = "labels.txt"
NETWORK_MODE = {"fp32": 0, "int8": 1, "fp16": 2}  # nvinfer's network-mode


@dataclass
class DeepStreamOptions:
    plugins: Path | None = None
    gpu_id: int = 0
    unique_id: int = 1


def nvinfer_scaling(model: ModelInfo) -> tuple[float, list[float]]:
    """``(net-scale-factor, offsets)`` that reproduce the model's normalisation from 0..255 pixels."""
    folded = model.sidecar.get("folded_normalization")
    if model.input.dtype not in ("float32", "float16"):
        raise UserError(f"{model.path.name} takes {model.input.dtype} input, but nvinfer feeds the network floats: "
                        f"re-export with `fold_normalization` float255 (float 0..255 pixels; the export stage, "
                        f"`swin-trt export`)")
    if folded:
        return 1.0, [0.0, 0.0, 0.0]
    mean, std = model.preprocessing["mean"], model.preprocessing["std"]
    if max(std) - min(std) > 1e-9 * max(std):
        raise UserError(f"{model.path.name} normalises with a per-channel std {std}, which nvinfer cannot express "
                        f"(one net-scale-factor for all channels): re-export with `fold_normalization` float255 (the "
                        f"export stage, `swin-trt export`) so that the graph normalises itself, then rewrite/quantize/"
                        f"build it as before")
    return 1.0 / (255.0 * std[0]), [255.0 * m for m in mean]


def nvinfer_config(model: ModelInfo, model_file: str, plugins: str | None, options: DeepStreamOptions) -> str:
    """The ``[property]`` group of a Gst-nvinfer configuration for this classifier."""
    scale, offsets = nvinfer_scaling(model)
    height, width = model.image_size
    lines = ["[property]", f"gpu-id={options.gpu_id}", f"gie-unique-id={options.unique_id}",
             "# nvinfer's input: net-scale-factor * (RGB pixel - offsets), per channel",
             f"net-scale-factor={scale!r}", "offsets=" + ";".join(repr(o) for o in offsets),
             "model-color-format=0", f"infer-dims=3;{height};{width}", "maintain-aspect-ratio=0"]
    if model.kind == "engine":
        lines.append(f"model-engine-file={model_file}")
    else:  # nvinfer builds the engine from the ONNX graph on first run (the plugins must be registered)
        lines.append(f"onnx-file={model_file}")
    if plugins is not None:
        lines += ["# the swin-trt TensorRT plugins: nvinfer dlopens this library before it loads the model, and",
                  "# loading it registers the plugins (they are in libswin_trt_plugins.so beside it)",
                  f"custom-lib-path={plugins}"]
    lines += [f"labelfile-path={LABELS}", f"batch-size={model.max_batch}",
              "# precision: 0 FP32, 1 INT8, 2 FP16 (a swin-trt engine is strongly typed: it runs as built)",
              f"network-mode={NETWORK_MODE[model.precision]}",
              "# 1: classifier; 1: process whole frames (primary inference)",
              "network-type=1", "process-mode=1", f"output-blob-names={model.outputs[0].name}",
              "# the graph outputs logits; nvinfer's default parser keeps the top class above this threshold",
              "classifier-threshold=0.0", ""]
    return "\n".join(lines)


def refuse_detector(model: ModelInfo) -> None:
    """A detector has no nvinfer bundle here (see the module docstring): say what is missing and what to do."""
    if not model.detector:
        return
    shown = ", ".join(f"{t.name} {[-1 if d is None else d for d in t.shape]}" for t in model.outputs)
    raise UserError(f"{model.path.name} is a detector ({shown}: detections of data-dependent length, NMS inside the "
                    f"graph). Gst-nvinfer reads detections only through a bbox parser, and these outputs need a custom "
                    f"one (an NvDsInferParseCustomFunc in a library given by custom-lib-path and "
                    f"parse-bbox-func-name), which swin-trt does not ship: it cannot be built or tested without "
                    f"DeepStream. Serve the model from a Triton model repository instead (`write_triton_bundle`, "
                    f"`swin-trt package {model.path.name}`; Triton returns variable-length outputs as they are), or "
                    f"write that parser for these three outputs and an nvinfer config of your own")


def write_deepstream_bundle(model: ModelInfo, folder: str | Path, options: DeepStreamOptions) -> Path:
    """Write ``folder/{config_infer_swin.txt, labels.txt, model, plugin library, README.md}``; returns the config."""
    refuse_detector(model)
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise UserError(f"{str(folder)!r} is not empty: pass a new folder as `folder`")
    plugins = find_bundle_plugins(model, options.plugins)
    model_file = "model.engine" if model.kind == "engine" else "model.onnx"
    config = nvinfer_config(model, model_file, plugins[1].name if plugins else None, options)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:  # all or nothing: the folder appears complete
        (staging / CONFIG).write_text(config)
        # nvinfer's classifier label file: one line per output layer, the classes separated by ';'
        (staging / LABELS).write_text(";".join(model.class_names) + "\n")
        shutil.copyfile(model.path, staging / model_file)
        copy_plugins(plugins, staging)
        (staging / "README.md").write_text(_readme(model, plugins))
        if folder.exists():
            folder.rmdir()
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / CONFIG


def _readme(model: ModelInfo, plugins: tuple[Path, Path] | None) -> str:
    height, width = model.image_size
    lines = ["# DeepStream bundle", "",
             f"Written by `swin-trt package --deepstream` from `{model.path.name}` ({model.kind}, {model.precision},"
             f" {height}x{width}, {model.num_classes} classes). Paths in `{CONFIG}` are relative to it.", "",
             "A pipeline that classifies whole frames of a video file:", "", "```bash",
             "gst-launch-1.0 filesrc location=clip.mp4 ! qtdemux ! h264parse ! nvv4l2decoder ! m.sink_0 \\",
             f"    nvstreammux name=m batch-size={model.max_batch} width=1280 height=720 ! \\",
             f"    nvinfer config-file-path={CONFIG} ! fakesink", "```", "",
             "As a secondary classifier on detected objects, set `process-mode=2` and `operate-on-gie-id` to the "
             "detector's `gie-unique-id`.", "",
             "nvinfer scales the whole frame (or object box) to the network size; swin-trt's own preprocessing "
             "resizes and centre-crops, so scores differ slightly from `swin-trt infer` on the same frames."]
    if model.kind == "engine":
        lines += ["", f"The engine runs only with TensorRT {model.sidecar.get('tensorrt', '?')} on the GPU generation "
                      f"it was built for ({(model.sidecar.get('gpu') or {}).get('name', '?')}): build it on the "
                      f"Jetson or server that runs DeepStream."]
    if plugins is not None:
        lines += ["", plugin_loading_note(plugins, host="nvinfer")]
    return "\n".join(lines) + "\n"
