"""Input sizes at which a graph with dynamic dims is evaluated, and static copies of it at one size.

An exported graph's inputs may leave the batch (dim 0) and the spatial size (the other dims) symbolic.
Shape folding and window matching learn what the graph computes by running it, so they need concrete
sizes the model accepts. Candidates vary every dynamic dim between runs (batch 1/2, height and width over
different residues modulo 2, 4, 7 and 12, never equal to each other) so that a value that depends on a dim
differs between probes; sizes the graph rejects (a model that needs multiples of 32, say) are skipped.
The third size of each set (with and without the multiples of 32) is large (one side near 600 px) so that
the window count of every stage differs between the runs: with windows of 4 to 16 at strides 4 to 32, the
first two sizes alone give the last stage the same count (6 windows of 4, 1 window of 16), and a count that
never changes would be folded as a constant, wrong at other sizes.
Dims that share a name (``torch.export`` ties equal dims) get equal values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

BATCH_PROBES = (1, 2, 1, 1, 2)
# (height, width) per candidate; the first two and the last two are multiples of 32 for strict models
SPATIAL_PROBES = ((224, 320), (288, 256), (356, 582), (352, 608), (256, 384))
WANTED = {"batch": 2, "spatial": 3}  # runs to compare: enough to tell a varying value from a constant one


@dataclass(frozen=True)
class DynamicDims:
    """The symbolic dims of a graph's inputs, by name: batch-like (dim 0) and spatial (any other dim)."""

    batch: tuple[str, ...]
    spatial: tuple[str, ...]

    @property
    def static(self) -> bool:
        return not self.batch and not self.spatial

    def candidates(self) -> list[dict[str, int]]:
        """Assignments of sizes to the symbolic dims, in the order to try them."""
        if self.static:
            return [{}]
        count = len(SPATIAL_PROBES) if self.spatial else 2
        probes = []
        for index in range(count):
            values = {name: BATCH_PROBES[index] for name in self.batch}
            values.update({name: SPATIAL_PROBES[index][position % 2] for position, name in enumerate(self.spatial)})
            probes.append(values)
        return probes

    @property
    def wanted(self) -> int:
        return 1 if self.static else WANTED["spatial" if self.spatial else "batch"]


def _dim_name(value_info: onnx.ValueInfoProto, axis: int, dim) -> str | None:
    if dim.HasField("dim_value"):
        return None
    return dim.dim_param or f"{value_info.name}:{axis}"


def dynamic_dims(model: onnx.ModelProto) -> DynamicDims:
    initializers = {i.name for i in model.graph.initializer}
    batch, spatial = [], []
    for value_info in model.graph.input:
        if value_info.name in initializers:
            continue
        for axis, dim in enumerate(value_info.type.tensor_type.shape.dim):
            name = _dim_name(value_info, axis, dim)
            if name is None or name in batch:
                continue
            if axis == 0:
                batch.append(name)
                if name in spatial:
                    spatial.remove(name)
            elif name not in spatial:
                spatial.append(name)
    return DynamicDims(tuple(batch), tuple(spatial))


def input_shape(value_info: onnx.ValueInfoProto, sizes: dict[str, int]) -> list[int]:
    return [dim.dim_value if dim.HasField("dim_value") else sizes.get(_dim_name(value_info, axis, dim), 1)
            for axis, dim in enumerate(value_info.type.tensor_type.shape.dim)]


def zero_feeds(model: onnx.ModelProto, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    initializers = {i.name for i in model.graph.initializer}
    feeds = {}
    for value_info in model.graph.input:
        if value_info.name in initializers:
            continue
        elem = value_info.type.tensor_type.elem_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem) if elem else np.float32
        feeds[value_info.name] = np.zeros(input_shape(value_info, sizes), dtype=dtype)
    return feeds


def with_static_inputs(model: onnx.ModelProto, sizes: dict[str, int]) -> onnx.ModelProto:
    """A copy whose inputs have the dims ``sizes`` gives; intermediate and output shapes are left to inference."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    initializers = {i.name for i in copy.graph.initializer}
    for value_info in copy.graph.input:
        if value_info.name in initializers:
            continue
        shape = input_shape(value_info, sizes)
        for dim, value in zip(value_info.type.tensor_type.shape.dim, shape):
            dim.Clear()
            dim.dim_value = value
    del copy.graph.value_info[:]
    for value_info in copy.graph.output:
        value_info.type.tensor_type.ClearField("shape")
    return copy


def describe(sizes: dict[str, int]) -> str:
    return ", ".join(f"{name}={value}" for name, value in sizes.items()) or "static"
