"""Which GPU is here: name and compute capability of device 0, for the target and the manifest.

Asked of pycuda where it is installed, else cuda-python, else the driver library itself through ctypes
(libcuda ships with every NVIDIA driver, JetPack included), so no optional package is required.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "8.7"
    source: str  # which API answered

    def to_dict(self) -> dict:
        return {"name": self.name, "compute_capability": self.compute_capability, "source": self.source}


class NoGpu(Exception):
    """No CUDA driver or no GPU; the message says which."""


def _from_pycuda() -> GpuInfo:
    import pycuda.driver as cuda

    cuda.init()
    if cuda.Device.count() == 0:
        raise NoGpu("the CUDA driver reports no GPU")
    device = cuda.Device(0)
    major, minor = device.compute_capability()
    return GpuInfo(device.name(), f"{major}.{minor}", "pycuda")


def _from_cuda_python() -> GpuInfo:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:  # cuda-python < 12.6 names the module cuda.cudart
        from cuda import cudart
    err, prop = cudart.cudaGetDeviceProperties(0)
    if int(err) != 0:
        raise NoGpu(f"cudaGetDeviceProperties: {getattr(err, 'name', err)}")
    name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else str(prop.name)
    return GpuInfo(name.strip("\0 "), f"{prop.major}.{prop.minor}", "cuda-python")


def _from_libcuda() -> GpuInfo:
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        raise NoGpu("no CUDA driver (libcuda.so.1 cannot be loaded)") from None
    if (status := lib.cuInit(0)) != 0:
        raise NoGpu(f"cuInit failed with CUDA error {status}")
    count, device = ctypes.c_int(), ctypes.c_int()
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        raise NoGpu("the CUDA driver reports no GPU")
    lib.cuDeviceGet(ctypes.byref(device), 0)
    name = ctypes.create_string_buffer(256)
    lib.cuDeviceGetName(name, 256, device)
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.cuDeviceGetAttribute(ctypes.byref(major), 75, device)  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
    lib.cuDeviceGetAttribute(ctypes.byref(minor), 76, device)  # ..._MINOR
    return GpuInfo(name.value.decode(errors="replace"), f"{major.value}.{minor.value}", "libcuda")


def probe_gpu() -> GpuInfo:
    """Device 0, or :class:`NoGpu` with the most telling reason any API gave."""
    reasons = []
    for probe in (_from_pycuda, _from_cuda_python, _from_libcuda):
        try:
            return probe()
        except ImportError:
            continue
        except NoGpu as exc:
            reasons.append(str(exc))
        except Exception as exc:  # pycuda raises its own LogicError/RuntimeError without a driver
            reasons.append(f"{probe.__name__[6:]}: {exc}")
    raise NoGpu(reasons[-1] if reasons else "no CUDA API answered")


def gpu_info() -> GpuInfo | None:
    try:
        return probe_gpu()
    except NoGpu:
        return None
