"""A TensorRT engine on pycuda: page-locked host buffers, device buffers sized for the profile's max batch,
``execute_async_v3`` on one stream, and optionally one CUDA graph per batch size.

Why a runner of our own rather than Polygraphy's ``TrtRunner`` (the build uses Polygraphy,
:mod:`swin_trt.engine.build`): ``TrtRunner`` cannot capture CUDA graphs, and it stages every batch through
buffers of its own, while video inference needs page-locked host buffers that stay put for the whole stream
(the decode thread fills them while the GPU runs the previous batch) and CUDA graph replay to cut the launch
overhead of small batches. Deserialization is ours too: Polygraphy's ``EngineFromBytes`` allows host code in
every plan, this runner only where the manifest says the plan was built version compatible.

pycuda has no stream-capture API, so ``cuda_graph=True`` captures through cuda-python's runtime bindings.
The CUDA context is the device's primary context (the one TensorRT's runtime API calls use), made current
around every call so the backend works from any thread.

A detector's outputs have data-dependent shapes: TensorRT runs NMS, NonZero and top-k of a computed k as
layers whose output size is known only once they ran, and leaves -1 in those outputs' shapes even after every
input shape is set. Such an output gets no fixed buffer: an ``IOutputAllocator`` (:func:`make_output_allocator`)
hands TensorRT device memory of the size it asks for while it runs (:class:`GrowingDeviceBuffers`), and hears
the shape before ``execute_async_v3`` returns; the copy to the host follows. These engines cannot be captured
into CUDA graphs (the run waits for the sizes).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from .. import environment
from ..environment import enum_name
from ..io import sidecar_path as manifest_path  # an engine's manifest sits where any artifact's sidecar does
from ..errors import UserError
from .base import Backend


def _import_cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python < 12.6
        except ImportError:
            raise UserError("`cuda_graph` needs cuda-python (pip install cuda-python) for stream capture, which "
                            "pycuda lacks: install it or run without `cuda_graph`") from None
    return cudart


def data_dependent_outputs(shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """The outputs whose shape TensorRT cannot tell before running: a -1 left in their shape once every input
    shape is set (``context.get_tensor_shape``). Their size comes from the data: NMS, NonZero, top-k."""
    return [name for name, shape in shapes.items() if any(int(d) < 0 for d in shape)]


class GrowingDeviceBuffers:
    """Device memory per tensor name that only grows: a stream of frames allocates once it has seen its largest
    detection count."""

    def __init__(self, cuda):
        self.cuda = cuda
        self.buffers: dict = {}  # name -> pycuda DeviceAllocation
        self.capacity: dict[str, int] = {}  # name -> bytes

    def reserve(self, name: str, size: int) -> int:
        """The address of at least ``size`` bytes for ``name`` (at least 1: no detections is still an address;
        mem_alloc aligns to 256 bytes, more than TensorRT asks)."""
        size = max(int(size), 1)
        if self.capacity.get(name, 0) < size:
            old = self.buffers.pop(name, None)
            if old is not None:
                old.free()  # the previous run's copy is done: every infer synchronizes its stream
            self.buffers[name] = self.cuda.mem_alloc(size)
            self.capacity[name] = size
        return int(self.buffers[name])

    def release(self) -> None:
        for buffer in self.buffers.values():
            buffer.free()
        self.buffers, self.capacity = {}, {}


def make_output_allocator(trt, memory: GrowingDeviceBuffers):
    """A ``DeviceOutputAllocator`` on ``memory`` (the class is made here: ``tensorrt`` is imported lazily)."""

    class DeviceOutputAllocator(trt.IOutputAllocator):
        """TensorRT's callbacks for outputs of data-dependent shape: while ``execute_async_v3`` runs, it asks for
        the bytes of each such output and then says the output's shape (kept in ``shapes`` for the copy out)."""

        def __init__(self):
            trt.IOutputAllocator.__init__(self)
            self.shapes: dict[str, tuple[int, ...]] = {}  # name -> the shape of the last run

        def reallocate_output(self, tensor_name, memory_address, size, alignment):  # before TensorRT 10
            return memory.reserve(tensor_name, size)

        def reallocate_output_async(self, tensor_name, memory_address, size, alignment, stream):
            return memory.reserve(tensor_name, size)

        def notify_shape(self, tensor_name, shape):
            self.shapes[tensor_name] = tuple(int(d) for d in shape)

    return DeviceOutputAllocator()


def _check(result, what: str):
    """cuda-python returns ``(error, *values)``; raise on an error, return the values."""
    error, *values = result
    if int(error) != 0:
        raise RuntimeError(f"{what} failed: {getattr(error, 'name', error)}")
    return values[0] if len(values) == 1 else values


class TensorRTBackend(Backend):
    name = "trt"

    def __init__(self, engine_path, plugins=None, cuda_graph=False):
        path = Path(engine_path)
        if not path.is_file():
            raise UserError(f"{str(path)!r} does not exist: build it with `swin-trt build`")
        trt = self.trt = environment.import_tensorrt()
        cuda = self.cuda = environment.import_pycuda()
        environment.require_gpu()
        self.cudart = _import_cudart() if cuda_graph else None
        self.cuda_graph = cuda_graph
        info = self._read_manifest(path)
        needs_plugins = plugins is not None or bool(info.get("plugins"))
        if needs_plugins and plugins is None and Path(info["plugins"]["path"]).is_file():
            plugins = info["plugins"]["path"]  # the library the engine was built with, where it still is
        environment.load_plugins(trt, environment.find_plugins(plugins, needed=needs_plugins))

        cuda.init()
        self.cuda_context = cuda.Device(0).retain_primary_context()
        self.graphs = {}
        with self._active():
            self.runtime = trt.Runtime(environment.make_logger(trt))
            if info.get("target", {}).get("version_compatible"):
                self.runtime.engine_host_code_allowed = True  # the plan carries its lean runtime and plugins
            self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
            if self.engine is None:
                built = (f" (built with TensorRT {info['tensorrt']} on {info['gpu']['name']})"
                         if "tensorrt" in info and "gpu" in info else "")
                raise UserError(f"TensorRT {trt.__version__} cannot load {str(path)!r}{built}; see the log above. "
                                f"Engines are tied to the GPU and TensorRT version: rebuild it here with "
                                f"`swin-trt build`")
            self.context = self.engine.create_execution_context()
            self.stream = cuda.Stream()
            self._allocate()

    @staticmethod
    def _read_manifest(path: Path) -> dict:
        sidecar = manifest_path(path)
        return json.loads(sidecar.read_text()) if sidecar.is_file() else {}

    @contextlib.contextmanager
    def _active(self):
        self.cuda_context.push()
        try:
            yield
        finally:
            self.cuda_context.pop()

    def _allocate(self):
        trt, cuda, engine = self.trt, self.cuda, self.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise UserError(f"the engine has inputs {inputs}: swin-trt runs engines with one image input")
        self.input_name = inputs[0]
        self.output_names = [n for n in names if n != self.input_name]
        shape = tuple(engine.get_tensor_shape(self.input_name))
        largest = shape
        if any(d < 0 for d in shape):  # dynamic batch and/or size: the range of optimization profile 0
            low, _, high = engine.get_tensor_profile_shape(self.input_name, 0)
            largest = tuple(high)
            self.min_batch, self.max_batch = low[0], high[0]
        else:
            self.min_batch = self.max_batch = shape[0]
        self.input_shape = tuple(None if d < 0 else d for d in shape)
        # Buffers for the profile's largest input; each call then sets its own shape (infer).
        self.context.set_input_shape(self.input_name, largest)
        shapes = {name: tuple(self.context.get_tensor_shape(name)) for name in self.output_names}
        self.data_dependent = data_dependent_outputs(shapes)
        if self.data_dependent and self.cuda_graph:
            raise UserError(f"`cuda_graph`: the engine's outputs {', '.join(self.data_dependent)} have a size that "
                            f"depends on the data (NMS, NonZero, top-k), which a CUDA graph cannot capture: run "
                            f"without `cuda_graph`")
        self.output_memory = GrowingDeviceBuffers(cuda)
        self.output_allocator = make_output_allocator(trt, self.output_memory) if self.data_dependent else None
        self.host, self.device = {}, {}
        for name in names:
            dtype = engine.get_tensor_dtype(name)
            try:
                np_dtype = trt.nptype(dtype)
            except TypeError:
                raise UserError(f"engine tensor {name!r} has dtype {enum_name(dtype)}, which numpy cannot hold: "
                                f"export with float32 or float16 inputs and outputs") from None
            if name in self.data_dependent:  # sized at each run (_reported_shape), from what TensorRT reports
                self.host[name] = cuda.pagelocked_empty(1, np_dtype)  # page-locked memory of 0 bytes fails
                self.context.set_output_allocator(name, self.output_allocator)
                continue
            count = int(np.prod(tuple(self.context.get_tensor_shape(name))))
            self.host[name] = cuda.pagelocked_empty(count, np_dtype)
            self.device[name] = cuda.mem_alloc(self.host[name].nbytes)
            self.context.set_tensor_address(name, int(self.device[name]))

    def _enqueue(self, count: int, shapes: dict):
        """Copy in, run, copy out: on the stream, so it can also be captured into a graph. ``shapes`` gains the
        shapes TensorRT reported for the outputs of data-dependent shape."""
        cuda, stream = self.cuda, self.stream
        cuda.memcpy_htod_async(self.device[self.input_name], self.host[self.input_name][:count], stream)
        if not self.context.execute_async_v3(stream.handle):
            raise RuntimeError("TensorRT execute_async_v3 failed; see the log above")
        for name in self.output_names:
            if name in self.data_dependent:
                shapes[name] = self._reported_shape(name)
                device = self.output_memory.buffers.get(name)
                if device is None or not int(np.prod(shapes[name])):
                    continue  # nothing was written (no detections)
            else:
                device = self.device[name]
            cuda.memcpy_dtoh_async(self.host[name][:int(np.prod(shapes[name]))], device, stream)

    def _reported_shape(self, name: str) -> tuple[int, ...]:
        """The shape TensorRT reported for a data-dependent output in this run; its host buffer grown to fit."""
        shape = self.output_allocator.shapes.get(name)
        if shape is None or any(d < 0 for d in shape):
            raise RuntimeError(f"TensorRT did not report the shape of {name!r} (data-dependent) in this run")
        count = int(np.prod(shape))
        if self.host[name].size < count:
            self.host[name] = self.cuda.pagelocked_empty(count, self.host[name].dtype)
        return shape

    def _graph_for(self, batch: tuple, count: int, shapes: dict):
        """The CUDA graph of one input shape; captured after an ordinary run did TensorRT's lazy setup."""
        if batch not in self.graphs:
            cudart, handle = self.cudart, self.stream.handle
            self._enqueue(count, shapes)
            self.stream.synchronize()
            _check(cudart.cudaStreamBeginCapture(handle, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
                   "cudaStreamBeginCapture")
            try:
                self._enqueue(count, shapes)
            finally:
                graph = _check(cudart.cudaStreamEndCapture(handle), "cudaStreamEndCapture (this engine cannot be "
                                                                    "captured: run without `cuda_graph`)")
            self.graphs[batch] = (graph, _check(cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate"))
        return self.graphs[batch][1]

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        if len(batch) > self.max_batch and self.data_dependent:  # e.g. boxes (N, 4) of all images together
            raise ValueError(f"batch of {len(batch)}: this engine runs at most {self.max_batch} images, and its "
                             f"outputs {', '.join(self.data_dependent)} have no batch axis to join chunks along")
        if len(batch) > self.max_batch:  # a dynamic engine runs any number of images in max-batch chunks
            parts = [self.infer(batch[i:i + self.max_batch]) for i in range(0, len(batch), self.max_batch)]
            return [np.concatenate(outs) for outs in zip(*parts)]
        if not self.min_batch <= len(batch) <= self.max_batch:
            raise ValueError(f"batch of {len(batch)}: this engine runs {self.min_batch} to {self.max_batch} images")
        host_in = self.host[self.input_name]
        batch = np.ascontiguousarray(batch, dtype=host_in.dtype)
        with self._active():
            self.context.set_input_shape(self.input_name, batch.shape)
            shapes = {name: tuple(self.context.get_tensor_shape(name)) for name in self.output_names}
            host_in[:batch.size] = batch.ravel()
            if self.cudart is not None:
                _check(self.cudart.cudaGraphLaunch(self._graph_for(batch.shape, batch.size, shapes),
                                                   self.stream.handle), "cudaGraphLaunch")
            else:
                self._enqueue(batch.size, shapes)
            self.stream.synchronize()
        return [self.host[name][:int(np.prod(shapes[name]))].reshape(shapes[name]).astype(np.float32)
                for name in self.output_names]

    def time_gpu(self, batch: int, warmup: int = 10, runs: int = 50) -> list[float]:
        """GPU milliseconds of ``runs`` executions at ``batch`` after ``warmup`` ones (CUDA events around
        ``execute_async_v3``; copies are not timed): what ``build --compare`` ranks engines by."""
        if not self.min_batch <= batch <= self.max_batch:
            raise ValueError(f"batch of {batch}: this engine runs {self.min_batch} to {self.max_batch} images")
        cuda, stream, name = self.cuda, self.stream, self.input_name
        times = []
        with self._active():
            self.context.set_input_shape(name, (batch, *self.input_shape[1:]))
            count = batch * int(np.prod(self.input_shape[1:]))
            self.host[name][:count] = np.random.default_rng(0).standard_normal(count)
            cuda.memcpy_htod_async(self.device[name], self.host[name][:count], stream)
            start, end = cuda.Event(), cuda.Event()
            for index in range(warmup + runs):
                start.record(stream)
                if not self.context.execute_async_v3(stream.handle):
                    raise RuntimeError("TensorRT execute_async_v3 failed; see the log above")
                end.record(stream)
                end.synchronize()
                if index >= warmup:
                    times.append(start.time_till(end))
        return times

    def close(self) -> None:
        if getattr(self, "cuda_context", None) is None:
            return
        with self._active():
            for graph, executable in self.graphs.values():
                self.cudart.cudaGraphExecDestroy(executable)
                self.cudart.cudaGraphDestroy(graph)
            self.graphs = {}
            if getattr(self, "output_memory", None) is not None:
                self.output_memory.release()
            for attribute in ("context", "engine", "runtime", "device", "host", "stream", "output_allocator",
                              "output_memory"):
                if hasattr(self, attribute):
                    delattr(self, attribute)  # TensorRT objects and device memory go while the context is current
        self.cuda_context.detach()
        self.cuda_context = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
