"""ONNX -> TensorRT engine: a strongly typed build, so the precision is the graph's, never a builder flag.

FP16 comes from the graph's tensor types and INT8 from its QuantizeLinear/DequantizeLinear nodes;
``BuilderFlag.FP16``/``INT8`` are never set (TensorRT 11 removed them, and in a strongly typed TensorRT 10
network they are ignored). Everything that can be checked without TensorRT is checked before importing it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from .. import __version__
from ..errors import UserError
from ..io import atomic_output, read_sidecar, write_json
from ..ops import schema
from . import environment, manifest
from .progress import make_progress_monitor
from .targets import TargetSettings, resolve_target

DEFAULT_MAX_BATCH = 8  # where neither --max-batch nor the export's --dynamic-batch says


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
                 f"  precision {m['precision']['mode']}: {m['precision']['layers']} layers, "
                 f"{m['precision']['quantize_layers']} Q / {m['precision']['dequantize_layers']} DQ, "
                 f"{m['precision']['plugin_layers']} plugin"]
        lines += [f"  {t['mode']:<6} {t['name']}: {t['shape']} {t['dtype']}" for t in m["io"]]
        if m["profile"]:
            lines.append(f"  batch profile min/opt/max {'/'.join(str(b) for b in m['profile'])}")
        lines.append(f"  manifest {self.manifest_path}")
        return "\n".join(lines)


def inspect_onnx(path: str | Path) -> GraphInfo:
    """Read ``path``'s graph (not its external weights); bad files and unsupported graphs are UserErrors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist: check the path")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and friends for bytes that are not ONNX
        raise UserError(f"{str(path)!r} is not an ONNX model ({type(exc).__name__}): pass a .onnx file "
                        f"written by `swin-trt export` or `swin-trt rewrite`") from None
    graph = model.graph
    if not graph.node:
        raise UserError(f"{str(path)!r} is not an ONNX model (no graph nodes): pass a .onnx file")
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
        if not dims or any(d is None for d in dims[1:]):
            raise UserError(f"input {value.name!r} of {str(path)!r} has shape {dims}: only the batch axis may "
                            f"be dynamic; re-export with a fixed image size (swin-trt export --img-size)")
        inputs.append((value.name, dims))
    if not inputs:
        raise UserError(f"{str(path)!r} has no graph inputs")
    ops = [node.op_type for node in graph.node]
    return GraphInfo(inputs, [node.name for node in graph.node], ops,
                     sorted(set(ops) & set(schema.OP_TYPES)))


def batch_profile(batch_dims: list[int | None], opt_batch: int | None = None, max_batch: int | None = None,
                  export_max: int | None = None) -> tuple[int, int, int] | None:
    """``(min, opt, max)`` of the optimization profile, or None for a static-batch graph."""
    for flag, value in (("--opt-batch", opt_batch), ("--max-batch", max_batch)):
        if value is not None and value < 1:
            raise UserError(f"{flag} {value} must be >= 1")
    if all(d is not None for d in batch_dims):
        static = batch_dims[0]
        for flag, value in (("--opt-batch", opt_batch), ("--max-batch", max_batch)):
            if value is not None and value != static:
                raise UserError(f"{flag} {value}: the graph has a static batch of {static}; re-export it with "
                                f"`swin-trt export --dynamic-batch MAX` to build for other batch sizes")
        return None
    if max_batch is None:
        max_batch, source = (export_max, "the export's --dynamic-batch") if export_max else \
            (max(opt_batch or 0, DEFAULT_MAX_BATCH), "the default")
    else:
        source = "--max-batch"
    opt_batch = opt_batch or max_batch
    if max_batch < opt_batch:
        raise UserError(f"max batch {max_batch} (from {source}) is smaller than --opt-batch {opt_batch}: "
                        f"pass --max-batch >= --opt-batch")
    return 1, opt_batch, max_batch


def parser_errors(parser) -> list[dict]:
    """TensorRT's ONNX parser errors as plain dicts (node index, name, op, reason)."""
    errors = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        errors.append({"node": error.node(), "name": error.node_name(), "op": error.node_operator(),
                       "desc": error.desc(), "code": manifest.enum_name(error.code())})
    return errors


def describe_parser_errors(path: Path, errors: list[dict], graph: GraphInfo) -> str:
    """One line per parser error; plugin ops get the hint that fixes them."""
    lines = [f"TensorRT's ONNX parser rejected {str(path)!r} ({len(errors)} error(s)):"]
    for error in errors:
        node, name, op = error["node"], error["name"], error["op"]
        if 0 <= node < len(graph.node_names):  # fill in what older parsers leave empty
            name, op = name or graph.node_names[node], op or graph.node_ops[node]
        where = f"node {node} {name!r} ({op})" if node >= 0 else "graph"
        lines.append(f"  {where}: {error['desc']} [{error['code']}]")
    if any(error["op"] in schema.OP_TYPES for error in errors) or graph.plugin_ops:
        lines.append("  plugin ops need the swin-trt plugin library built for this TensorRT: build plugins/ "
                     "or pass --plugins PATH.so")
    else:
        lines.append("  an op TensorRT cannot import: re-export with another --opset, or rewrite the graph")
    return "\n".join(lines)


def _apply_settings(trt, builder, config, settings: TargetSettings, dla_core, gpu, plugin_path):
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings.workspace_gib * 2**30))
    config.builder_optimization_level = settings.builder_opt_level
    if settings.hardware_compat:
        if environment.version_tuple(gpu.compute_capability) < (8, 0):
            raise UserError(f"--hardware-compat builds Ampere+ engines; this GPU ({gpu.name}, "
                            f"sm_{gpu.compute_capability}) is older: drop the flag")
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    if settings.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        if plugin_path is not None:  # ship the plugins inside the plan; the runner must allow host code
            config.plugins_to_serialize = [str(plugin_path)]
    if dla_core is not None:
        if dla_core >= builder.num_DLA_cores:
            raise UserError(f"--dla-core {dla_core}: TensorRT {trt.__version__} sees {builder.num_DLA_cores} "
                            f"DLA core(s) here: DLA needs a Jetson AGX/NX Orin and a TensorRT that supports "
                            f"DLA there (JetPack 6's 10.3 does)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)  # layers DLA cannot run go to the GPU


def _load_timing_cache(config, path: Path | None):
    data = path.read_bytes() if path is not None and path.is_file() else b""
    try:
        cache = config.create_timing_cache(data)
    except Exception:  # a corrupt file: some versions raise, others return None
        cache = None
    if cache is None:
        raise UserError(f"timing cache {str(path)!r} is not a TensorRT timing cache: delete it or pass another")
    config.set_timing_cache(cache, False)  # False: a cache from another GPU/version is rejected, not used


def _parse(trt, logger, onnx_path: Path, graph: GraphInfo):
    """A strongly typed network parsed from ``onnx_path``; parser errors become one UserError.

    The parser is returned too: it owns weights the network points to until the engine is built.
    """
    try:
        builder = trt.Builder(logger)
    except Exception as exc:  # TensorRT could not initialise CUDA
        raise UserError(f"TensorRT could not start on this GPU ({exc}): check the driver with nvidia-smi") from None
    # TensorRT 10 needs the flag; TensorRT 11 networks are always strongly typed and accept (and ignore)
    # it. EXPLICIT_BATCH is implied since TensorRT 10 and gone in 11.
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # from the file, so external weights next to it load
        raise UserError(describe_parser_errors(onnx_path, parser_errors(parser), graph))
    return builder, network, parser


def build_engine(onnx_path, output, plugins=None, target="auto", workspace_gib=None, timing_cache=None,
                 opt_batch=None, max_batch=None, builder_opt_level=None, version_compatible=None,
                 hardware_compat=None, progress=True, dla_core=None, tf32=True, verbose=False) -> BuildResult:
    """Build ``onnx_path`` into a TensorRT plan at ``output`` with a manifest at ``output.json``.

    Both appear only if the build succeeds. Options left as None take the target's defaults
    (:mod:`swin_trt.engine.targets`); ``opt_batch``/``max_batch`` apply to dynamic-batch graphs only.
    ``tf32=False`` keeps FP32 layers in full FP32 (TensorRT allows TF32 by default on Ampere and newer).
    """
    onnx_path, output = Path(onnx_path), Path(output)
    timing_cache = Path(timing_cache) if timing_cache else None
    graph = inspect_onnx(onnx_path)
    if output.resolve() == onnx_path.resolve():
        raise UserError(f"output {str(output)!r} would overwrite the ONNX model: pass another -o")
    sidecar = read_sidecar(onnx_path) or {}
    profile_batch = batch_profile(graph.batch_dims, opt_batch, max_batch, sidecar.get("dynamic_batch_max"))
    settings = resolve_target(target, workspace_gib=workspace_gib, builder_opt_level=builder_opt_level,
                              version_compatible=version_compatible, hardware_compat=hardware_compat,
                              dla_core=dla_core)

    trt = environment.import_tensorrt()
    gpu = environment.require_gpu()
    plugin_path = environment.find_plugins(plugins, needed=bool(graph.plugin_ops))
    logger = environment.make_logger(trt, verbose)
    environment.load_plugins(trt, plugin_path, graph.plugin_ops)
    builder, network, _parser = _parse(trt, logger, onnx_path, graph)  # _parser: kept alive

    config = builder.create_builder_config()
    _apply_settings(trt, builder, config, settings, dla_core, gpu, plugin_path)
    if not tf32:
        config.clear_flag(trt.BuilderFlag.TF32)
    if profile_batch is not None:
        profile = builder.create_optimization_profile()
        for name, dims in graph.inputs:
            if dims[0] is None:
                profile.set_shape(name, *[(batch, *dims[1:]) for batch in profile_batch])
        config.add_optimization_profile(profile)
    _load_timing_cache(config, timing_cache)
    monitor = make_progress_monitor(trt) if progress else None
    if monitor is not None:
        config.progress_monitor = monitor

    started = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - started
    if plan is None:
        raise UserError(f"TensorRT could not build an engine from {str(onnx_path)!r}; its log above says why "
                        f"(too small a --workspace, an unsupported layer on DLA, a plugin failing ...)")

    record = {
        **sidecar,  # the model's provenance (arch, config, preprocessing): what infer and validate read
        "stage": "build",
        "engine": output.name,
        "tensorrt": trt.__version__,
        "gpu": gpu.to_dict(),
        "target": {**settings.to_dict(), "dla_core": dla_core, "tf32": tf32},
        "precision": manifest.precision_summary(manifest.network_layers(network)),
        "plugins": manifest.plugin_record(plugin_path),
        "io": manifest.network_io(network),
        "profile": list(profile_batch) if profile_batch else None,
        "source": manifest.source_record(onnx_path, sidecar),
        "timing_cache": str(timing_cache) if timing_cache else None,
        "build_seconds": round(seconds, 2),
        "swin_trt": __version__,
    }
    manifest_file = manifest.manifest_path(output)
    with atomic_output(output) as temporary:  # the plan appears only once its manifest is written
        temporary.write_bytes(plan)
        write_json(manifest_file, record)
    if timing_cache is not None:
        with atomic_output(timing_cache) as temporary:
            temporary.write_bytes(config.get_timing_cache().serialize())
    return BuildResult(output, manifest_file, record)
