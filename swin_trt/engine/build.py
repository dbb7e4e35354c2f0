"""ONNX -> TensorRT engine: a strongly typed build, so the precision is the graph's, never a builder flag.

FP16 comes from the graph's tensor types and INT8 from its QuantizeLinear/DequantizeLinear nodes;
``BuilderFlag.FP16``/``INT8`` are never set (TensorRT 11 removed them, and in a strongly typed TensorRT 10
network they are ignored). Everything that can be checked without TensorRT is checked before importing it.

Polygraphy (NVIDIA's tool, tested against every TensorRT release) does the TensorRT work: the network parsed
from ONNX (``NetworkFromOnnxPath(strongly_typed=True)``), the builder config (``CreateConfig``: workspace,
timing cache, optimization profile, builder level, compatibility, TF32, progress monitor) and the build
(``EngineBytesFromNetwork``, which also merges and saves the timing cache under a lock file). Written here
is only what Polygraphy does not do for this project:

* the plugin library is registered with ``IPluginRegistry.load_library`` (:mod:`.environment`): Polygraphy's
  ``LoadPlugins`` only ``dlopen``s a library, which registers nothing for one like ours that exports
  ``getCreators`` (the interface of ``trtexec --dynamicPlugins``) instead of linking libnvinfer;
* DLA and the plugins packed into version-compatible plans are set on the config (:func:`_finish_config`):
  Polygraphy's ``use_dla`` always picks core 0 and, before TensorRT 11, sets PREFER_PRECISION_CONSTRAINTS,
  which strongly typed DLA builds refuse;
* the plan is written together with its manifest through ``atomic_output`` (``SaveEngine`` writes in place,
  so a failure could leave half a plan behind).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from .. import __version__
from ..errors import UserError
from ..graph import load_onnx
from ..io import atomic_output, read_sidecar, sha256_file, write_json
from ..ops import schema
from ..stage import AS_INPUT, NOT_IN_KEY, Stage, coerce_paths
from .. import environment
from . import manifest
from .progress import make_progress_monitor
from .targets import TargetSettings, dla_unsupported, resolve_target

DEFAULT_MAX_BATCH = 8  # where neither --max-batch nor the export's --dynamic-batch says
logger = logging.getLogger(__name__)
_NAMED_TENSORRT: set[tuple] = set()  # (target, module) already named in a note: --compare builds four times


@dataclass
class GraphInfo:
    """What the build needs to know of an ONNX graph, read without its weights."""

    inputs: list[tuple[str, list]]  # (name, dims); None marks a dynamic dim
    node_names: list[str] = field(default_factory=list)
    node_ops: list[str] = field(default_factory=list)
    plugin_ops: list[str] = field(default_factory=list)

    @property
    def batch_dims(self) -> list[int | None]:
        return [dims[0] for _, dims in self.inputs]

    @property
    def any_size_inputs(self) -> list[tuple[str, list]]:
        """The image inputs ``(B, C, H, W)`` whose height or width is dynamic (a graph of any size)."""
        return [(name, dims) for name, dims in self.inputs if len(dims) == 4 and None in dims[2:]]


@dataclass
class BuildResult:
    path: Path
    manifest_path: Path
    manifest: dict

    def describe(self) -> str:
        m = self.manifest
        lines = [f"wrote {self.path} ({self.path.stat().st_size / 2**20:.1f} MiB, TensorRT {m['tensorrt']}, "
                 f"{m['gpu']['name']} sm_{m['gpu']['compute_capability'].replace('.', '')}, "
                 f"target {m['target']['name']}) in {m['build_seconds']:.1f} s",
                 *([f"  {m['tensorrt_origin']['description']}"] if m.get("tensorrt_origin") else []),
                 f"  precision {m['precision']['mode']}: {m['precision']['layers']} layers, "
                 f"{m['precision']['quantize_layers']} Q / {m['precision']['dequantize_layers']} DQ, "
                 f"{m['precision']['plugin_layers']} plugin"]
        lines += [f"  {t['mode']:<6} {t['name']}: {t['shape']} {t['dtype']}" for t in m["io"]]
        if m["profile"]:
            lines.append(f"  batch profile min/opt/max {'/'.join(str(b) for b in m['profile'])}")
        if m.get("img_size_profile"):
            sizes = "/".join(f"{h}x{w}" for h, w in m["img_size_profile"])
            lines.append(f"  image size profile min/opt/max {sizes}")
        lines.append(f"  manifest {self.manifest_path}")
        return "\n".join(lines)


def inspect_onnx(path: str | Path) -> GraphInfo:
    """Read ``path``'s graph (not its external weights); bad files and unsupported graphs are UserErrors."""
    model = load_onnx(path, weights=False)
    graph = model.graph
    shadowing = sorted({f.name for f in model.functions} & set(schema.OP_TYPES))
    if shadowing:  # TensorRT's parser would inline the function instead of calling the plugin
        raise UserError(f"{str(path)!r} carries model-local function(s) {', '.join(shadowing)} named like "
                        f"swin-trt plugins: TensorRT would not use the plugins; re-run `swin-trt rewrite`")
    initializers = {init.name for init in graph.initializer}
    inputs = []
    for value in graph.input:
        if value.name in initializers:
            continue
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in value.type.tensor_type.shape.dim]
        fixed = dims[1:2] if len(dims) == 4 else dims[1:]  # an image (B, C, H, W) may have any H, W
        if not dims or any(d is None for d in fixed):
            raise UserError(f"input {value.name!r} of {str(path)!r} has shape {dims}: only the batch, and the "
                            f"height and width of a (B, C, H, W) image, may be dynamic; re-export it (the export "
                            f"stage's `img_size`, `dynamic_batch`, `dynamic_size`: `swin-trt export`)")
        inputs.append((value.name, dims))
    if not inputs:
        raise UserError(f"{str(path)!r} has no graph inputs")
    _refuse_plugins_the_kernels_lack(path, graph)
    ops = [node.op_type for node in graph.node]
    return GraphInfo(inputs, [node.name for node in graph.node], ops,
                     sorted(set(ops) & set(schema.OP_TYPES)))


def _refuse_plugins_the_kernels_lack(path, graph) -> None:
    """A plugin node the C++ plugins cannot run (attention, fused or not, beyond the kernel's tokens per window)
    stops the build before TensorRT, naming the node: the CPU contract may lead the kernels, an engine never
    silently lacks a plugin."""
    for index, node in enumerate(graph.node):
        if node.op_type not in schema.OP_TYPES:
            continue
        attrs = {a.name: list(a.ints) for a in node.attribute if a.name == "window_size"}
        why = schema.kernel_unsupported(node.op_type, attrs) if attrs else ""
        if why:
            advice = ("no `fuse_gathers`" if node.op_type == schema.FUSED_ATTENTION
                      else "`window_ops` native, no `fuse_attention`")
            raise UserError(f"{str(path)!r}: plugin node {node.name or f'#{index} ({node.op_type})'!r} cannot be built: {why}. Rewrite the export "
                            f"without this plugin ({advice})")


def batch_profile(batch_dims: list[int | None], opt_batch: int | None = None, max_batch: int | None = None,
                  export_max: int | None = None) -> tuple[int, int, int] | None:
    """``(min, opt, max)`` of the optimization profile, or None for a static-batch graph."""
    for param, value in (("`opt_batch`", opt_batch), ("`max_batch`", max_batch)):
        if value is not None and value < 1:
            raise UserError(f"{param} {value} must be >= 1")
    if all(d is not None for d in batch_dims):
        static = batch_dims[0]
        for param, value in (("`opt_batch`", opt_batch), ("`max_batch`", max_batch)):
            if value is not None and value != static:
                raise UserError(f"{param} {value}: the graph has a static batch of {static}; re-export it with "
                                f"the export stage's `dynamic_batch` (`swin-trt export`) to build for other batch "
                                f"sizes")
        return None
    if max_batch is None:
        max_batch, source = (export_max, "the export's `dynamic_batch`") if export_max else \
            (max(opt_batch or 0, DEFAULT_MAX_BATCH), "the default")
    else:
        source = "`max_batch`"
    opt_batch = opt_batch or max_batch
    if max_batch < opt_batch:
        raise UserError(f"max batch {max_batch} (from {source}) is smaller than `opt_batch` {opt_batch}: "
                        f"pass `max_batch` >= `opt_batch`")
    return 1, opt_batch, max_batch


Size = tuple[int, int]
RANGE_EXAMPLE = "448x448:576x576:1024x1024"


def size_profile(graph: GraphInfo, size_range: tuple[Size, Size, Size] | None = None,
                 min_img_size: Size | None = None) -> tuple[Size, Size, Size] | None:
    """``((H, W) min, opt, max)`` of the optimization profile of a graph with dynamic height and width, from
    ``--img-size-range``; None for a graph of one size. ``min_img_size``: the smallest size the graph is right
    at (its sidecar's ``dynamic_size.min_img_size``, written by ``swin-trt export --dynamic-size``)."""
    any_size = graph.any_size_inputs
    if not any_size:
        if size_range is not None:
            shapes = ", ".join(f"{name} {dims}" for name, dims in graph.inputs)
            raise UserError(f"`img_size_range`: the graph's inputs have a fixed size ({shapes}); a size range "
                            f"needs a graph with dynamic height and width (the export stage's `dynamic_size`, then "
                            f"swin-trt rewrite): drop `img_size_range`, or build from such a graph")
        return None
    if size_range is None:
        name, dims = any_size[0]
        low = (f" (this one is right from {min_img_size[0]}x{min_img_size[1]} up)" if min_img_size else "")
        raise UserError(f"input {name!r} has dynamic height/width ({dims}): pass `img_size_range` MIN:OPT:MAX, the "
                        f"sizes the engine runs at and the one TensorRT tunes for, e.g. `img_size_range` "
                        f"{RANGE_EXAMPLE}{low}")
    low, opt, high = (tuple(int(v) for v in size) for size in size_range)
    text = ":".join(f"{h}x{w}" for h, w in (low, opt, high))
    for axis, label in enumerate(("height", "width")):
        if min(low[axis], opt[axis], high[axis]) < 1 or not low[axis] <= opt[axis] <= high[axis]:
            raise UserError(f"`img_size_range` {text}: need 1 <= MIN <= OPT <= MAX in the {label}; e.g. "
                            f"`img_size_range` {RANGE_EXAMPLE}")
    if min_img_size and (low[0] < min_img_size[0] or low[1] < min_img_size[1]):
        raise UserError(f"`img_size_range` {text}: the graph is right only from {min_img_size[0]}x{min_img_size[1]} "
                        f"up (below that its last stage is not larger than the window; the export's sidecar says "
                        f"so): raise MIN to at least {min_img_size[0]}x{min_img_size[1]}")
    for name, dims in any_size:
        for axis, label in enumerate(("height", "width")):
            fixed = dims[2 + axis]
            if fixed is not None and not low[axis] == opt[axis] == high[axis] == fixed:
                raise UserError(f"`img_size_range` {text}: input {name!r} has a fixed {label} of {fixed} ({dims}): "
                                f"give MIN, OPT and MAX that {label}")
    return low, opt, high


def profile_shapes(dims: list, batches: tuple[int, int, int] | None,
                   sizes: tuple[Size, Size, Size] | None) -> list[tuple[int, ...]]:
    """The (min, opt, max) shapes of one input: the batch profile on a dynamic dim 0, the size profile on the
    dynamic height/width of an image; the fixed dims as they are."""
    shapes = []
    for k in range(3):
        shape = list(dims)
        if dims[0] is None:
            shape[0] = batches[k]
        if sizes is not None and len(dims) == 4:
            shape[2], shape[3] = sizes[k]
        shapes.append(tuple(shape))
    return shapes


def parse_failure(path: Path, graph: GraphInfo, detail: str) -> UserError:
    """The parser's errors are printed above (one line per node); this says what to do about them."""
    if graph.plugin_ops:
        hint = ("the graph has swin-trt plugin nodes: the plugin library must be built for this TensorRT "
                "(plugins/README.md) and passed with `plugins` PATH.so")
    else:
        hint = "an op TensorRT cannot import: re-export with another `opset`, or rewrite the graph"
    return UserError(f"TensorRT's ONNX parser rejected {str(path)!r} ({detail}; each node's error is printed "
                     f"above): {hint}")


def _finish_config(trt, builder, config, settings: TargetSettings, dla_core: int | None, plugin_path):
    """What CreateConfig does not set for us (see the module docstring): DLA core N, packed plugins."""
    if settings.version_compatible and plugin_path is not None:
        config.plugins_to_serialize = [str(plugin_path)]  # the runner must then allow host code
    if dla_core is not None:
        if dla_core >= builder.num_DLA_cores:
            raise UserError(f"`dla_core` {dla_core}: TensorRT {trt.__version__} sees {builder.num_DLA_cores} "
                            f"DLA core(s) here. DLA needs a Jetson AGX Orin (Orin Nano and Thor have none) with "
                            f"JetPack 6 (TensorRT 10.3) or JetPack 7.2.2+ (TensorRT 11.4.1)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)  # layers DLA cannot run go to the GPU
    return config


@dataclass(frozen=True)
class BuildOptions:
    """How to build. Left as None: the target's defaults (:mod:`swin_trt.engine.targets`). ``opt_batch`` and
    ``max_batch`` apply to dynamic-batch graphs only. ``tf32=False`` keeps FP32 layers in full FP32 (TensorRT
    allows TF32 by default on Ampere and newer). ``img_size_range``: ``((H, W) min, opt, max)`` for a graph
    with dynamic height and width (required there, refused elsewhere); the manifest records it as
    ``img_size_profile``."""

    plugins: Path | None = field(default=None, metadata=AS_INPUT)  # the library found is an input, by content
    target: str = "auto"
    workspace_gib: float | None = None
    timing_cache: Path | None = field(default=None, metadata=NOT_IN_KEY)  # speeds a build, never changes it
    opt_batch: int | None = None
    max_batch: int | None = None
    builder_opt_level: int | None = None
    version_compatible: bool | None = None
    hardware_compat: str | None = None
    progress: bool = field(default=True, metadata=NOT_IN_KEY)
    dla_core: int | None = None
    tf32: bool = True
    verbose: bool = field(default=False, metadata=NOT_IN_KEY)
    img_size_range: tuple | None = None

    def __post_init__(self):
        coerce_paths(self, "plugins", "timing_cache")

    def build_kwargs(self) -> dict:
        """The options as :func:`build_engine`'s keyword arguments, without ``plugins``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "plugins"}


@dataclass(frozen=True)
class PluginLibraryInput:
    """The plugin library a build would load, by content (None where none is found yet)."""

    explicit: Path | None

    def fingerprint(self) -> str | None:
        from ..plugin_library import find_plugin_library

        try:
            return sha256_file(find_plugin_library(self.explicit))
        except UserError:
            return None


class BuildStage(Stage[BuildResult]):
    """``onnx_path`` -> a TensorRT plan at ``output`` with its manifest at ``output.json``: both appear only
    if the build succeeds."""

    name = "build"
    environment = ("tensorrt",)
    skipped_note = "no engine: TensorRT or a GPU is missing (see above)"

    def __init__(self, onnx_path: str | Path, output: str | Path, options: BuildOptions | None = None):
        options = options or BuildOptions()
        super().__init__({"onnx": Path(onnx_path), "plugin_library": self.plugin_input(options)},
                         [Path(output), manifest.manifest_path(Path(output))], options)
        self.onnx_path, self.output = Path(onnx_path), Path(output)

    @staticmethod
    def plugin_input(options: BuildOptions) -> PluginLibraryInput:
        return PluginLibraryInput(options.plugins)

    @staticmethod
    def tensorrt_missing() -> str | None:
        """Why no engine can be built here, or ``None`` when TensorRT and a GPU are present."""
        try:
            environment.import_tensorrt()
            environment.require_gpu()
        except UserError as exc:
            return str(exc)
        return None

    def unavailable(self) -> str | None:
        return self.skip_reason or self.tensorrt_missing()

    def work(self) -> BuildResult:
        return _build(self.onnx_path, self.output, self.options)

    def summary(self, result: BuildResult) -> str:
        return f"TensorRT {result.manifest['tensorrt']} on {result.manifest['gpu']['name']}"


def build_engine(onnx_path, output, plugins=None, target="auto", workspace_gib=None, timing_cache=None,
                 opt_batch=None, max_batch=None, builder_opt_level=None, version_compatible=None,
                 hardware_compat=None, progress=True, dla_core=None, tf32=True, verbose=False,
                 img_size_range=None) -> BuildResult:
    """:class:`BuildStage` as one call (the keywords are :class:`BuildOptions`' fields)."""
    options = BuildOptions(plugins, target, workspace_gib, timing_cache, opt_batch, max_batch, builder_opt_level,
                           version_compatible, hardware_compat, progress, dla_core, tf32, verbose, img_size_range)
    return BuildStage(onnx_path, output, options).run()


def _build(onnx_path: Path, output: Path, options: BuildOptions) -> BuildResult:
    """Check the graph, configure, build, then write the plan and its manifest together."""
    graph, sidecar = _read_source(onnx_path, output)
    profile_batch, profile_size = _profile_ranges(graph, sidecar, options.opt_batch, options.max_batch,
                                                  options.img_size_range)
    settings = resolve_target(options.target, workspace_gib=options.workspace_gib,
                              builder_opt_level=options.builder_opt_level,
                              version_compatible=options.version_compatible,
                              hardware_compat=options.hardware_compat, dla_core=options.dla_core)
    trt, gpu, pg = _start_tensorrt(settings, options.dla_core)
    origin = _name_tensorrt(trt, options.target, settings)
    plugin_path = environment.find_plugins(options.plugins, needed=bool(graph.plugin_ops))
    environment.load_plugins(trt, plugin_path, graph.plugin_ops)
    profiles = _optimization_profiles(pg, graph, profile_batch, profile_size)
    config = _builder_config(trt, pg, settings, profiles, timing_cache=options.timing_cache, tf32=options.tf32,
                             progress=options.progress, dla_core=options.dla_core, plugin_path=plugin_path)
    with pg.G_LOGGER.verbosity(pg.G_LOGGER.EXTRA_VERBOSE if options.verbose else pg.G_LOGGER.WARNING):
        parsed = _parse_network(pg, onnx_path, graph)  # (builder, network, parser): the parser owns the weights
        plan, seconds = _build_plan(pg, parsed, config, onnx_path, options.timing_cache)
    record = _manifest_record(trt, pg, parsed[1], sidecar, onnx_path=onnx_path, output=output, gpu=gpu,
                              settings=settings, dla_core=options.dla_core, tf32=options.tf32,
                              plugin_path=plugin_path, profile_batch=profile_batch, profile_size=profile_size,
                              timing_cache=options.timing_cache, seconds=seconds, origin=origin)
    manifest_file = _write_plan_and_manifest(output, plan, record)
    return BuildResult(output, manifest_file, record)


def _read_source(onnx_path: Path, output: Path) -> tuple[GraphInfo, dict]:
    """The ONNX graph (checked for what TensorRT can build) and its export sidecar ({} when there is none);
    refuses an ``output`` that would overwrite the model."""
    graph = inspect_onnx(onnx_path)
    if output.resolve() == onnx_path.resolve():
        raise UserError(f"output {str(output)!r} would overwrite the ONNX model: pass another `output`")
    return graph, read_sidecar(onnx_path) or {}


def _profile_ranges(graph: GraphInfo, sidecar: dict, opt_batch, max_batch, img_size_range):
    """The batch and image-size ranges of the optimization profile (None where the graph fixes them), from the
    options and what the export's sidecar says (its dynamic batch maximum and smallest right size)."""
    profile_batch = batch_profile(graph.batch_dims, opt_batch, max_batch, sidecar.get("dynamic_batch_max"))
    min_img_size = (sidecar.get("dynamic_size") or {}).get("min_img_size")
    profile_size = size_profile(graph, img_size_range, tuple(min_img_size) if min_img_size else None)
    return profile_batch, profile_size


def _start_tensorrt(settings: TargetSettings, dla_core: int | None):
    """TensorRT, the GPU and Polygraphy, checked against what the target asks of them: ``(trt, gpu, pg)``."""
    trt = environment.import_tensorrt()
    gpu = environment.require_gpu()
    pg = environment.import_polygraphy()
    if settings.hardware_compat and environment.version_tuple(gpu.compute_capability) < (8, 0):
        raise UserError(f"`hardware_compat` builds Ampere+ engines; this GPU ({gpu.name}, "
                        f"sm_{gpu.compute_capability}) is older: drop `hardware_compat`")
    if dla_core is not None and (why := dla_unsupported(trt.__version__)):
        raise UserError(f"`dla_core` {dla_core}: {why}")
    return trt, gpu, pg


def _name_tensorrt(trt, target: str, settings: TargetSettings):
    """Where this build's TensorRT comes from (module file, system package or PyPI wheel, venv, JetPack), said
    once per process in a note (with what ``auto`` resolved to) and returned for the manifest."""
    origin = environment.describe_tensorrt(trt)
    if (target, origin.module_file) not in _NAMED_TENSORRT:
        _NAMED_TENSORRT.add((target, origin.module_file))
        resolved = f"target auto -> {settings.name}; " if target == "auto" else ""
        logger.info("%s%s", resolved, origin.describe())
    return origin


def _optimization_profiles(pg, graph: GraphInfo, profile_batch, profile_size):
    """Polygraphy's profiles: one holding (min, opt, max) of each dynamic input, or None for a static graph
    (Polygraphy's default profile then holds its fixed shapes)."""
    if profile_batch is None and profile_size is None:
        return None
    shapes = pg.trt.Profile()  # Polygraphy's: (min, opt, max) per dynamic input
    for name, dims in graph.inputs:
        if None in dims:
            shapes.add(name, *profile_shapes(dims, profile_batch, profile_size))
    return [shapes]


def _builder_config(trt, pg, settings: TargetSettings, profiles, *, timing_cache: Path | None, tf32: bool,
                    progress: bool, dla_core: int | None, plugin_path):
    """The builder config callback: Polygraphy's ``CreateConfig`` (workspace, timing cache, profiles, builder
    level, compatibility, TF32, progress monitor), then :func:`_finish_config`. A timing cache TensorRT cannot
    read becomes a UserError that says so."""
    create_config = pg.trt.CreateConfig(
        tf32=tf32, profiles=profiles, load_timing_cache=str(timing_cache) if timing_cache else None,
        memory_pool_limits={trt.MemoryPoolType.WORKSPACE: int(settings.workspace_gib * 2**30)},
        builder_optimization_level=settings.builder_opt_level,
        hardware_compatibility_level=(trt.HardwareCompatibilityLevel.AMPERE_PLUS if settings.hardware_compat
                                      else None),
        version_compatible=settings.version_compatible,
        progress_monitor=make_progress_monitor(trt) if progress else None)

    def config(builder, network):
        try:
            created = create_config(builder, network)
        except pg.PolygraphyException:
            raise
        except Exception as exc:  # TensorRT refusing a timing cache's bytes (some versions raise)
            if timing_cache is None or not timing_cache.is_file():
                raise
            raise UserError(f"timing cache {str(timing_cache)!r} cannot be read ({exc}): delete it or pass "
                            f"another") from None
        return _finish_config(trt, builder, created, settings, dla_core, plugin_path)

    return config


def _parse_network(pg, onnx_path: Path, graph: GraphInfo):
    """``(builder, network, parser)``: the strongly typed network parsed from the file, so external weights next
    to it load."""
    try:
        builder, network, parser = pg.trt.NetworkFromOnnxPath(str(onnx_path), strongly_typed=True)()
    except pg.PolygraphyException as exc:
        raise parse_failure(onnx_path, graph, str(exc)) from None
    except Exception as exc:  # trt.Builder could not initialise CUDA
        raise UserError(f"TensorRT could not start on this GPU ({type(exc).__name__}: {exc}): check the "
                        f"driver with nvidia-smi") from None
    return builder, network, parser


def _build_plan(pg, parsed, config, onnx_path: Path, timing_cache: Path | None) -> tuple[bytes, float]:
    """The serialized plan and the seconds the build took (the timing cache, if any, merged and saved)."""
    started = time.perf_counter()
    try:  # the tuple, not the loader: the network (and the parser owning its weights) stays ours
        plan = pg.trt.EngineBytesFromNetwork(parsed, config=config,
                                             save_timing_cache=str(timing_cache) if timing_cache else None)()
    except pg.PolygraphyException as exc:
        raise UserError(f"TensorRT could not build an engine from {str(onnx_path)!r} ({exc}); its log above "
                        f"says why (too small a `workspace_gib`, an unsupported layer on DLA, a plugin failing "
                        f"...)") from None
    return plan, time.perf_counter() - started


def _manifest_record(trt, pg, network, sidecar: dict, *, onnx_path: Path, output: Path, gpu,
                     settings: TargetSettings, dla_core, tf32: bool, plugin_path, profile_batch, profile_size,
                     timing_cache: Path | None, seconds: float, origin=None) -> dict:
    """The manifest: the model's provenance from the sidecar, then what was built, where, how and from what."""
    return {
        **sidecar,  # the model's provenance (arch, config, preprocessing): what infer and validate read
        "stage": "build",
        "engine": output.name,
        "tensorrt": trt.__version__,
        "tensorrt_origin": origin.to_dict() if origin is not None else None,  # module file, how installed
        "polygraphy": pg.version,
        "gpu": gpu.to_dict(),
        "target": {**settings.to_dict(), "dla_core": dla_core, "tf32": tf32},
        "precision": manifest.precision_summary(manifest.network_layers(network)),
        "plugins": manifest.plugin_record(plugin_path),
        "io": manifest.network_io(network),
        "profile": list(profile_batch) if profile_batch else None,
        "img_size_profile": [list(size) for size in profile_size] if profile_size else None,
        "source": manifest.source_record(onnx_path, sidecar),
        "timing_cache": str(timing_cache) if timing_cache else None,
        "build_seconds": round(seconds, 2),
        "swin_trt": __version__,
    }


def _write_plan_and_manifest(output: Path, plan, record: dict) -> Path:
    """Writes the plan to ``output`` and the manifest beside it; the plan appears only once its manifest is
    written. Returns the manifest's path."""
    manifest_file = manifest.manifest_path(output)
    with atomic_output(output) as temporary:
        temporary.write_bytes(plan)
        write_json(manifest_file, record)
    return manifest_file
