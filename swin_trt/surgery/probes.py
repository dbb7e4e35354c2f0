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
Dims that share a name (``torch.export`` ties equal dims) get equal values. At every size the graph runs
on several pixel contents (:data:`CONTENTS`), never only zeros: whatever differs between them depends on the
pixels (a detector's box count) and is never folded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

BATCH_PROBES = (1, 2, 1, 1, 2)
# frames (T) of a clip input (B, 3, T, H, W) per candidate, with the spatial sizes below: small (a clip's T is
# tens, and Video Swin's windows are 2 to 8 frames), over different residues modulo 2, 4 and 8, never equal
FRAME_PROBES = (8, 12, 22, 16, 10)
# (height, width) per candidate; the first two and the last two are multiples of 32 for strict models
SPATIAL_PROBES = ((224, 320), (288, 256), (356, 582), (352, 608), (256, 384))
WANTED = {"batch": 2, "spatial": 3}  # runs to compare: enough to tell a varying value from a constant one


@dataclass(frozen=True)
class DynamicDims:
    """The symbolic dims of a graph's inputs, by name: batch-like (dim 0) and spatial (any other dim)."""

    batch: tuple[str, ...]
    spatial: tuple[str, ...]  # every dynamic dim but the batch, frames included
    frames: tuple[str, ...] = ()  # those of them that are the T of a clip input (B, C, T, H, W)

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
            others = [name for name in self.spatial if name not in self.frames]
            values.update({name: SPATIAL_PROBES[index][position % 2] for position, name in enumerate(others)})
            values.update({name: FRAME_PROBES[index] for name in self.frames})
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
    batch, spatial, frames = [], [], []
    for value_info in model.graph.input:
        if value_info.name in initializers:
            continue
        dims = value_info.type.tensor_type.shape.dim
        for axis, dim in enumerate(dims):
            name = _dim_name(value_info, axis, dim)
            if name is None or name in batch:
                continue
            if axis == 0:
                batch.append(name)
                if name in spatial:
                    spatial.remove(name)
            elif name not in spatial:
                spatial.append(name)
            if axis == 2 and len(dims) == 5 and name in spatial and name not in frames:
                frames.append(name)  # T of a clip (B, C, T, H, W)
    return DynamicDims(tuple(batch), tuple(spatial), tuple(n for n in frames if n in spatial))


def input_shape(value_info: onnx.ValueInfoProto, sizes: dict[str, int]) -> list[int]:
    return [dim.dim_value if dim.HasField("dim_value") else sizes.get(_dim_name(value_info, axis, dim), 1)
            for axis, dim in enumerate(value_info.type.tensor_type.shape.dim)]


CONTENTS = 2  # pixel contents per probe size: a value that differs between them depends on the pixels
CHECK_CONTENTS = 3  # the equivalence check adds a real photo: a trained detector finds nothing in noise
_PHOTO = Path(__file__).resolve().parents[1] / "assets" / "demo_images" / "astronaut" / "000.png"


def _photo(shape: list[int]) -> np.ndarray | None:
    """A real photo (scikit-image's astronaut, bundled) at ``(B, 3, H, W)``, in 0..1; for a clip
    ``(B, 3, T, H, W)`` the photo panning (each frame one pixel further right and down, wrapping), so that the
    frames differ as a camera's do; None for other layouts."""
    if len(shape) not in (4, 5) or shape[1] != 3 or not _PHOTO.is_file():
        return None
    from PIL import Image

    image = Image.open(_PHOTO).convert("RGB").resize((shape[-1], shape[-2]), Image.BILINEAR)
    photo = np.asarray(image, np.float64).transpose(2, 0, 1) / 255  # (3, H, W)
    if len(shape) == 5:
        photo = np.stack([np.roll(photo, (t, t), axis=(1, 2)) for t in range(shape[2])], axis=1)  # (3, T, H, W)
    return np.broadcast_to(photo[None], shape)


def _phantom(shape: list[int]) -> np.ndarray | None:
    """A volume ``(B, C, D, H, W)`` (C other than a clip's 3) like a scan: nested ellipsoids of different
    intensities (a 3D Shepp-Logan-like head phantom, each channel its own contrast) over a smooth background
    with a little noise, about 0..1; None for other layouts. Seeded: the same every run."""
    if len(shape) != 5 or shape[1] == 3:
        return None
    rng = np.random.default_rng(2024)
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape[2:]], indexing="ij")
    # (centre, radii, intensity): skull, brain, ventricles, and small lesions off the axes
    shapes = [((0, 0, 0), (0.9, 0.75, 0.85), 0.8), ((0, -0.02, 0), (0.82, 0.68, 0.77), -0.5),
              ((0.1, 0, 0.15), (0.2, 0.12, 0.3), -0.2), ((-0.1, 0, -0.15), (0.25, 0.16, 0.25), -0.2),
              ((0.35, 0.3, -0.2), (0.08, 0.1, 0.06), 0.35), ((-0.3, -0.25, 0.3), (0.06, 0.05, 0.09), 0.3),
              ((0.0, 0.35, 0.35), (0.1, 0.08, 0.12), 0.25)]
    volume = np.zeros(shape[2:])
    for centre, radii, intensity in shapes:
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1
        volume += intensity * inside
    background = 0.05 * np.sin(3 * grid[0] + 2 * grid[1] - grid[2])
    channels = [volume * (1 + 0.3 * c) + background for c in range(shape[1])]
    values = np.stack(channels)[None] + 0.02 * rng.standard_normal([1, *shape[1:]])
    return np.broadcast_to(values, shape)


def _pixels(shape: list[int], dtype, content: int) -> np.ndarray:
    """Content ``content`` of an input: uniform noise in [0, 1), a smooth image-like pattern of about unit spread
    around zero (a normalised photo's range), or a real photo in 0..1 where the input is an image batch (a
    panning photo where it is a clip ``(B, 3, T, H, W)``; the pattern then varies over T too; a scan-like
    phantom, :func:`_phantom`, where it is a volume ``(B, C, D, H, W)`` of C other than 3);
    integer inputs get 0..255. Seeded: the same every run."""
    rng = np.random.default_rng(1000 + content)
    photo = None
    if content == 2:  # a volume (B, C, D, H, W) that is no clip gets a scan-like phantom instead of a photo
        photo = _phantom(shape) if len(shape) == 5 and shape[1] != 3 else _photo(shape)
    if photo is not None:
        values = photo
    elif content % 2 == 0:
        values = rng.random(shape)
    else:
        grids = np.meshgrid(*[np.linspace(0, 3 * np.pi, n) for n in shape[2:]], indexing="ij") if len(shape) > 2 else []
        wave = np.sin(sum(grids) + rng.random(shape[:2] + [1] * (len(shape) - 2)) * 6) if grids else 0.0
        values = 1.5 * wave + 0.25 * rng.standard_normal(shape)
    if np.issubdtype(dtype, np.integer):
        return (np.clip(values, 0, 1) * 255).astype(dtype)
    if dtype == np.bool_:
        return values > 0.5
    return values.astype(dtype)


def content_feeds(model: onnx.ModelProto, sizes: dict[str, int], content: int) -> dict[str, np.ndarray]:
    """Inputs of ``model`` at ``sizes``, filled with pixel content number ``content`` (see :func:`_pixels`)."""
    initializers = {i.name for i in model.graph.initializer}
    feeds = {}
    for value_info in model.graph.input:
        if value_info.name in initializers:
            continue
        elem = value_info.type.tensor_type.elem_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem) if elem else np.float32
        feeds[value_info.name] = _pixels(input_shape(value_info, sizes), np.dtype(dtype), content)
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
