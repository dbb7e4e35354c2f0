"""``swin-trt package MODEL --triton -o REPO``: a model repository for a production Triton server.

* An engine becomes ``platform: "tensorrt_plan"``: ``<name>/1/model.plan`` with the plugin libraries beside it,
  dynamic batching sized from the engine's optimization profile, ``labels.txt``, and a README with the exact
  ``tritonserver`` command that loads the plugins (``--backend-config=tensorrt,plugins=...``: the registering
  library, :data:`PLUGIN_LOADING_NOTE`).
* An ONNX graph becomes its CPU twin, ``platform: "onnxruntime_onnx"``: the plugin nodes lowered to standard
  ONNX ops (:func:`swin_trt.ops.lowering.lower_plugins`), as ONNX Runtime needs.

Both configs carry the ``swin_trt`` parameter (preprocessing, class names), so ``swin-trt infer --server``
works against the production server too. Nothing is written unless all of it is.

A detector's outputs (boxes ``(N, 4)``, scores and labels ``(N,)``) have a data-dependent length: their config
declares that axis ``-1`` (Triton returns each response's own length), and the model has no batch axis Triton
could batch along, so it is served with ``max_batch_size: 0``, one image per request.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx

from ..errors import UserError
from ..io import atomic_output, sha256_file
from ..triton_config import ConfigSpec, Tensor, build_config, labels_text, write_config
from .model_info import ModelInfo

LABELS = "labels.txt"
# Triton's TensorRT backend (tensorrt_backend src/shared_library.cc: dlopen RTLD_NOW | RTLD_LOCAL) and
# DeepStream's nvinfer open a plugin library with a plain dlopen; neither calls the library's getCreators() as
# IPluginRegistry::loadLibrary does. So bundles point them at libswin_trt_plugins_autoreg.so, which registers
# the creators when it is loaded (plugins/README.md, "Hosts that only dlopen").
PLUGIN_LOADING_NOTE = (
    "Plugin loading: the server opens a plugin library with `dlopen` alone and never calls its `getCreators()`, "
    "so it is given `{registering}`, which registers the swin_trt plugin creators with TensorRT's plugin registry "
    "when it is loaded. The plugins themselves are in `{plugins}` beside it (found there through the registering "
    "library's RUNPATH `$ORIGIN`): keep the two files together, both built for the server's TensorRT version.")
SERVE_HINT = " Or serve it with `swin-trt serve`, which loads the library through TensorRT's registry."


def plugin_loading_note(libraries: tuple[Path, Path], host: str = "the server") -> str:
    """The README paragraph on how ``host`` loads the plugins from ``(plugin library, registering library)``."""
    plugins, registering = libraries
    return PLUGIN_LOADING_NOTE.format(plugins=plugins.name, registering=registering.name).replace("the server", host)


@dataclass
class BundleOptions:
    name: str
    plugins: Path | None = None  # the plugin library (default: the engine's, from its manifest)
    queue_delay_us: int = 100
    instances: int = 1


def find_bundle_plugins(model: ModelInfo, explicit: Path | None) -> tuple[Path, Path] | None:
    """The plugin libraries a bundle must carry: ``(plugin library, registering library beside it)``. The plugin
    library is ``explicit`` (or the one beside an explicit registering library), or the engine's own; it is
    checked against the hash the engine's manifest records."""
    from ..plugin_library import AUTOREG_FILENAME, PLUGINS_FILENAME, find_registering_library

    if not model.plugin_ops and explicit is None:
        return None
    if explicit is not None:
        if not Path(explicit).is_file():
            raise UserError(f"`plugins` {str(explicit)!r} does not exist: pass the libswin_trt_plugins.so the "
                            f"engine was built with")
        library = Path(explicit)
        if library.name == AUTOREG_FILENAME:  # the registering library: the plugins are the ones beside it
            library = library.with_name(PLUGINS_FILENAME)
    elif model.plugin_library is not None:
        library = model.plugin_library
    else:
        from ..plugin_library import find_plugin_library

        library = find_plugin_library()
    record = model.sidecar.get("plugins") if model.kind == "engine" else None
    if not library.is_file():
        raise UserError(f"plugin library {str(library)!r} does not exist: pass the libswin_trt_plugins.so the "
                        f"engine was built with (`plugins`)")
    if record and record.get("sha256") and sha256_file(library) != record["sha256"]:
        raise UserError(f"plugin library {str(library)!r} is not the one {model.path.name} was built with (its "
                        f"sha256 differs from the manifest's): pass that build as `plugins`, or rebuild the engine")
    return library, find_registering_library(library)


def copy_plugins(libraries: tuple[Path, Path] | None, folder: Path) -> None:
    """Both plugin libraries into ``folder`` (the registering one finds the plugin library beside itself)."""
    for library in libraries or ():
        shutil.copyfile(library, folder / library.name)


def triton_dims(shape: list, batched: bool) -> list[int]:
    """A tensor's ``dims`` in config.pbtxt: without the batch axis where Triton batches, -1 where the length
    varies from one inference to the next (a detector's detection count)."""
    return [-1 if d is None else int(d) for d in (shape[1:] if batched else shape)]


def _io(model: ModelInfo, batched: bool) -> tuple[list[Tensor], list[Tensor]]:
    inputs = [Tensor(model.input.name, model.input.dtype, triton_dims(model.input.shape, batched))]
    classifier = not model.detector  # Triton's classification extension reads the first output's labels
    outputs = [Tensor(t.name, t.dtype, triton_dims(t.shape, batched), LABELS if i == 0 and classifier else None)
               for i, t in enumerate(model.outputs)]
    return inputs, outputs


def _spec(model: ModelInfo, options: BundleOptions, platform: str) -> ConfigSpec:
    batched = model.batch is not None
    if batched and model.detector:
        raise UserError(f"{model.path.name} is a detector with a dynamic batch: its outputs ("
                        f"{', '.join(f'{t.name} {t.shape}' for t in model.outputs)}) hold the detections of every "
                        f"image of a call together, with no batch axis for Triton to split them along: export it "
                        f"with a fixed batch of 1")
    if batched and model.batch[0] > 1:
        raise UserError(f"{model.path.name}'s batch profile starts at {model.batch[0]}: Triton sends batches from 1 "
                        f"up; rebuild with a profile whose minimum is 1")
    inputs, outputs = _io(model, batched)
    parameters = {"preprocessing": model.preprocessing, "class_names": model.class_names,
                  "precision": model.precision, "source": model.path.name,
                  **({"task": "detection"} if model.detector else {})}
    if model.kind == "engine":
        parameters.update(tensorrt=model.sidecar.get("tensorrt"), gpu=(model.sidecar.get("gpu") or {}).get("name"))
    return ConfigSpec(name=options.name, platform=platform, max_batch=model.batch[2] if batched else 0,
                      inputs=inputs, outputs=outputs, instances=options.instances, gpu=model.kind == "engine",
                      queue_delay_us=options.queue_delay_us if batched else None,
                      preferred_batches=list(model.batch[1:]) if batched else [], parameters=parameters)


def write_triton_bundle(model: ModelInfo, repository: str | Path, options: BundleOptions) -> Path:
    """Write the repository (engine or ONNX twin); returns its README."""
    repository = Path(repository)
    if (repository / options.name).exists():
        raise UserError(f"{str(repository / options.name)!r} exists: pass another `repository` or `name`, or remove it")
    if options.instances < 1 or options.queue_delay_us < 0:
        raise UserError("`instances` must be >= 1 and `queue_delay_us` >= 0")
    engine = model.kind == "engine"
    plugins = find_bundle_plugins(model, options.plugins) if engine else None
    config = build_config(_spec(model, options, "tensorrt_plan" if engine else "onnxruntime_onnx"))
    repository.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{options.name}.", dir=repository))
    try:  # written in a staging folder beside the final one, then renamed: all or nothing
        (staging / "1").mkdir()
        write_config(config, staging / "config.pbtxt")
        (staging / LABELS).write_text(labels_text(model.class_names))
        if engine:
            shutil.copyfile(model.path, staging / "1" / "model.plan")
            copy_plugins(plugins, staging / "1")
        else:
            onnx.save_model(_cpu_twin(model.path), str(staging / "1" / "model.onnx"))
        staging.rename(repository / options.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    readme = repository / "README.md"
    with atomic_output(readme) as temporary:
        temporary.write_text(_readme(model, repository.resolve(), options.name, plugins))
    return readme


def _cpu_twin(path: Path) -> onnx.ModelProto:
    """The graph ONNX Runtime runs for ``path``: plugin nodes lowered, INT8 weights in the form its CPU kernels
    compute exactly (:mod:`swin_trt.backends.ort_int8`); the same numbers as ``swin-trt validate`` checks."""
    from ..backends import ort_int8
    from ..graph import load_onnx
    from ..ops.lowering import lower_plugins

    return lower_plugins(ort_int8.cpu_copy(load_onnx(path)))


def server_command(repository: Path, name: str, plugins: tuple[Path, Path] | None,
                   version_compatible: bool = False) -> str:
    """The ``tritonserver`` line that serves ``repository`` and, where the model has plugins, loads the
    registering library of ``plugins`` (``(plugin library, registering library)``)."""
    command = f"tritonserver --model-repository {repository}"
    settings = []
    if plugins is not None:
        settings.append(f"plugins={repository / name / '1' / plugins[1].name}")
    if version_compatible:
        settings.append("version-compatible=true")
    if settings:
        command += f" --backend-config=tensorrt,{','.join(settings)}"
    return command


def _readme(model: ModelInfo, repository: Path, name: str, plugins: tuple[Path, Path] | None) -> str:
    engine = model.kind == "engine"
    version_compatible = bool((model.sidecar.get("target") or {}).get("version_compatible"))
    command = server_command(repository, name, plugins, version_compatible)
    batch = (f"dynamic batching up to {model.batch[2]} (batch range {model.batch[0]}/{model.batch[1]}/"
             f"{model.batch[2]})" if model.batch else f"a static batch of {model.input.shape[0]} (no dynamic "
             f"batching: export with --dynamic-batch N for it)")
    what = (f"TensorRT engine `{model.path.name}` (TensorRT {model.sidecar.get('tensorrt', '?')}, built on "
            f"{(model.sidecar.get('gpu') or {}).get('name', '?')}, {model.precision})" if engine else
            f"ONNX graph `{model.path.name}` as its CPU twin (plugin ops lowered) for ONNX Runtime")
    lines = [f"# Triton model repository: `{name}`", "",
             f"Written by `swin-trt package --triton`: {what}; {batch}.", "",
             "```", f"{name}/config.pbtxt", f"{name}/{LABELS}",
             f"{name}/1/{'model.plan' if engine else 'model.onnx'}"]
    lines += [f"{name}/1/{library.name}" for library in plugins or ()]
    lines += ["```", "", "Start the server (Triton's container or a Triton install"
              + (f" with TensorRT {model.sidecar.get('tensorrt', '?')}, the version the engine was built with; an "
                 f"engine runs only on the TensorRT and GPU generation it was built for):" if engine else
                 " with the onnxruntime backend; the pip-installable server of `swin-trt serve` has only the "
                 "Python backend):"),
              "", "```bash", command, "```", ""]
    if plugins is not None:
        lines += [plugin_loading_note(plugins) + SERVE_HINT
                  + (" This engine is version-compatible and carries its plugins: `version-compatible=true` lets "
                     "TensorRT take them from the plan." if version_compatible else ""), ""]
    lines += ["Ask it from anywhere (the preprocessing and class names are in the config):", "", "```bash",
              f"swin-trt infer clip.mp4 --server http://HOST:8000 --model-name {name}", "```", "",
              f"Input `{model.input.name}`: {model.input.dtype} {model.input.shape} (batch first), RGB, "
              + ("0..255 pixels (normalisation folded into the graph)." if model.sidecar.get("folded_normalization")
                 else "normalised with mean {} and std {}.".format(model.preprocessing["mean"],
                                                                   model.preprocessing["std"])),
              _outputs_text(model), ""]
    return "\n".join(lines)


def _outputs_text(model: ModelInfo) -> str:
    if not model.detector:
        return (f"Output `{model.outputs[0].name}`: {model.outputs[0].dtype} logits, {model.num_classes} classes "
                f"(`{LABELS}`).")
    shown = ", ".join(f"`{t.name}` {t.dtype} {triton_dims(t.shape, False)}" for t in model.outputs)
    return (f"Outputs (a detector, one image per request): {shown}. -1 is the number of detections, which each "
            f"response has its own of; boxes are x1, y1, x2, y2 in the model input's pixels"
            + (f", label ids name `{LABELS}`'s lines." if model.class_names else "."))
