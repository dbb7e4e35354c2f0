"""TensorRT, the GPU and the plugin library: imported or found lazily, each failure a clear UserError.

Nothing here imports tensorrt at module level, so the CPU-only package (and its tests) never need it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from . import tensorrt_origin
from .errors import UserError
from .ops import schema

logger = logging.getLogger(__name__)

# Per platform (:mod:`.tensorrt_origin`): x86_64 servers pip install 'swin-trt[trt]' (pip install tensorrt);
# JetPack 6 uses the system's python3-libnvinfer (TensorRT 10.3) from a venv made with --system-site-packages;
# JetPack 7.2.2+ and Grace take PyPI's SBSA wheels.
INSTALL_TENSORRT = tensorrt_origin.INSTALL_ALL
INSTALL_PYCUDA = ("pip install pycuda (Jetson: needs the CUDA toolkit of JetPack on PATH, "
                  "e.g. export PATH=/usr/local/cuda/bin:$PATH)")
MIN_TENSORRT = (10, 0)  # strongly typed networks and IPluginV3; JetPack 6 ships 10.3
# Polygraphy < 0.49.26 reads IBuilderConfig.int8_calibrator, which TensorRT 11 removed.
MIN_POLYGRAPHY = (0, 49, 26)
INSTALL_POLYGRAPHY = ("pip install 'swin-trt[trt]' (JetPack 6: 'swin-trt[jetson]', which leaves TensorRT to the "
                      "system), or pip install 'polygraphy>=0.49.26'")


def version_tuple(text: str) -> tuple[int, ...]:
    """``"10.3.0.26"`` -> ``(10, 3, 0, 26)``; non-numeric parts end the tuple."""
    parts = []
    for part in str(text).split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def import_tensorrt():
    """The ``tensorrt`` module, or a UserError that says how to get it."""
    try:
        import tensorrt as trt
    except ImportError as exc:  # not there, or there but its extension or libnvinfer does not load
        missing = isinstance(exc, ModuleNotFoundError) and exc.name == "tensorrt"
        raise UserError(f"TensorRT {'is not installed' if missing else 'cannot be imported'} ({exc}): "
                        f"{tensorrt_origin.missing_tensorrt_hint()}") from None
    except OSError as exc:  # the bindings are there but libnvinfer is not
        raise UserError(f"TensorRT's libraries cannot be loaded ({exc}): "
                        f"{tensorrt_origin.missing_tensorrt_hint()}") from None
    if version_tuple(trt.__version__)[:2] < MIN_TENSORRT:
        raise UserError(f"TensorRT {trt.__version__} is too old: swin-trt needs TensorRT >= 10 (strongly typed "
                        f"networks, IPluginV3). {INSTALL_TENSORRT}")
    return trt


def describe_tensorrt(trt) -> tensorrt_origin.TensorRTOrigin:
    """Where the imported ``trt`` comes from on this machine (its module file, the system package or a PyPI
    wheel, the venv, the JetPack); a mismatch with the platform (a PyPI wheel on JetPack 6) is logged as a
    warning with its fix."""
    origin = tensorrt_origin.origin_here(trt)
    if problem := origin.problem():
        logger.warning("%s", problem)
    return origin


def import_polygraphy():
    """Polygraphy's TensorRT loaders, logger and exception, or a UserError that says how to get them.

    Returns a namespace: ``trt`` (``polygraphy.backend.trt``), ``G_LOGGER``, ``PolygraphyException`` and
    ``version``. Import after :func:`import_tensorrt`: Polygraphy imports tensorrt lazily, on first use.
    """
    from types import SimpleNamespace

    try:
        import polygraphy
        from polygraphy.backend import trt as loaders
        from polygraphy.exception import PolygraphyException
        from polygraphy.logger import G_LOGGER
    except ImportError as exc:
        raise UserError(f"Polygraphy is not installed ({exc}): {INSTALL_POLYGRAPHY}") from None
    if version_tuple(polygraphy.__version__) < MIN_POLYGRAPHY:
        raise UserError(f"Polygraphy {polygraphy.__version__} is too old: swin-trt needs >= "
                        f"{'.'.join(map(str, MIN_POLYGRAPHY))} (older ones break on TensorRT 11). "
                        f"{INSTALL_POLYGRAPHY}")
    return SimpleNamespace(trt=loaders, G_LOGGER=G_LOGGER, PolygraphyException=PolygraphyException,
                           version=polygraphy.__version__)


def import_pycuda():
    """``pycuda.driver``, or a UserError that says how to get it."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise UserError(f"pycuda is not installed ({exc}): {INSTALL_PYCUDA}") from None
    return cuda


def require_gpu():
    """The GPU's :class:`~swin_trt.device.GpuInfo`, or a UserError where there is no GPU/driver."""
    from .device import NoGpu, probe_gpu

    try:
        return probe_gpu()
    except NoGpu as exc:
        raise UserError(f"no usable NVIDIA GPU: {exc}. TensorRT builds and runs engines on the GPU they target: "
                        f"run this on that machine (Jetson: JetPack 6 includes the driver; servers: install the "
                        f"NVIDIA driver, `nvidia-smi` must list the GPU)") from None


def build_environment() -> dict:
    """What an engine depends on besides its graph, plugins and options: the TensorRT version and the GPU it is
    built on (name, compute capability); None for what is absent. A cached engine, and a validation of it, is
    reused only where this is unchanged."""
    try:
        tensorrt = import_tensorrt().__version__
    except UserError:
        tensorrt = None
    try:
        gpu = require_gpu()
        device = {"name": gpu.name, "compute_capability": gpu.compute_capability}
    except UserError:
        device = None
    return {"tensorrt": tensorrt, "gpu": device}


def enum_name(value) -> str:
    """``DataType.HALF`` -> ``"HALF"`` for TensorRT's pybind11 enums (and plain strings)."""
    return getattr(value, "name", None) or str(value).rsplit(".", 1)[-1]


def make_logger(trt, verbose: bool = False):
    return trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)


def find_plugins(explicit: str | Path | None, needed: bool) -> Path | None:
    """The plugin library to load: ``explicit``, or the built one when the graph ``needed`` it."""
    if explicit is None and not needed:
        return None
    try:
        from .plugin_library import find_plugin_library  # a sibling module, imported late on purpose
    except ModuleNotFoundError:  # a checkout without it: only an explicit path can be used
        if explicit is not None and Path(explicit).is_file():
            return Path(explicit)
        raise UserError(f"plugin library {str(explicit)!r} does not exist: build plugins/ (plugins/README.md) "
                        f"and pass `plugins` PATH.so" if explicit else
                        "the graph has swin-trt plugin nodes but no plugin library was given: build plugins/ "
                        "(plugins/README.md) and pass `plugins` PATH.so") from None
    return Path(find_plugin_library(explicit))


_LOADED_LIBRARIES: set[str] = set()  # the registry is per process: each library is registered once


def load_plugins(trt, path: Path | None, required_ops=()) -> None:
    """Load ``path`` into TensorRT's plugin registry (once per process; a build followed by runs of the
    engine, or ``build --compare``, would register the same creators again) and check it registers
    ``required_ops``."""
    if path is None:
        return
    registry = trt.get_plugin_registry()
    key = str(Path(path).resolve())
    if key not in _LOADED_LIBRARIES and registry.load_library(str(path)) is None:
        raise UserError(f"TensorRT could not load the plugin library {str(path)!r} (see the log above): rebuild "
                        f"it for this TensorRT and CUDA version (plugins/README.md)")
    _LOADED_LIBRARIES.add(key)
    missing = [op for op in required_ops
               if registry.get_creator(op, schema.PLUGIN_VERSION, schema.PLUGIN_NAMESPACE) is None]
    if missing:
        raise UserError(f"the plugin library {str(path)!r} does not register {', '.join(missing)} (version "
                        f"{schema.PLUGIN_VERSION}, namespace {schema.PLUGIN_NAMESPACE!r}): rebuild plugins/ "
                        f"from this checkout")
