"""Volumes for a 3D segmentation graph (MONAI's ``SwinUNETR``: input ``(B, C, D, H, W)``): what calibrate,
quantize's ``best`` and validate feed such a model.

A volume is a ``.npy`` file (``(C, D, H, W)``, or ``(D, H, W)`` for one channel) or a NIfTI file (``.nii``,
``.nii.gz``, read with nibabel, which is imported only then: ``pip install 'swin-trt[volumes]'``). NIfTI stores
channels last (``(X, Y, Z)`` or ``(X, Y, Z, C)``); they are moved first as MONAI's ``EnsureChannelFirst`` does,
and the spatial axes are kept as nibabel reads them (MONAI's ``LoadImage`` order, which its networks were
trained on). A data source is one volume or a folder of them (recursive).

Preprocessing is none beyond the cast to the graph's input type, unless the model's sidecar records a
``volume`` section with MONAI's ``ScaleIntensityRange`` (``{"intensity": {"a_min", "a_max", "b_min", "b_max",
"clip"}}``). The volume must have the graph's input size: no resampling or cropping happens here. A volume of
another size is an error that names both shapes; large volumes go through MONAI's ``sliding_window_inference``
with the engine or ONNX Runtime session as its predictor (README, "Volumes (SwinUNETR)").

A graph is taken for a volume model when its input is 5-D with a channel count other than 3 (a Video Swin clip
is ``(B, 3, T, H, W)``), or when its sidecar records the ``NCDHW`` layout or a ``volume`` section.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import UserError
from ..io import content_fingerprint

log = logging.getLogger(__name__)

VOLUME_SUFFIXES = (".npy", ".nii", ".nii.gz")
VOLUME_LAYOUT = "NCDHW"
VOLUME_RANK = 5
CLIP_CHANNELS = 3  # a 5-D input with 3 channels is a Video Swin clip unless the sidecar says otherwise
SLIDING_WINDOW_HINT = ("crop or resample it to that size, or run MONAI's sliding_window_inference with the "
                       "model as its predictor (README, \"Volumes (SwinUNETR)\")")


def volume_suffixes_text() -> str:
    return ", ".join(VOLUME_SUFFIXES)


def is_volume(path: str | Path) -> bool:
    name = Path(path).name.lower()
    return any(name.endswith(suffix) for suffix in VOLUME_SUFFIXES)


def list_volumes(source: str | Path) -> list[Path]:
    """The volume files of ``source`` (one volume, or a folder searched recursively), sorted; [] for anything
    else."""
    source = Path(source)
    if source.is_file():
        return [source] if is_volume(source) else []
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.is_file() and is_volume(p))
    return []


def volumes_fingerprint(source: str | Path) -> str | None:
    """The content of the volumes under ``source`` (``None`` when there are none)."""
    source = Path(source)
    volumes = list_volumes(source)
    if not volumes:
        return None
    base = source if source.is_dir() else source.parent
    return content_fingerprint(((str(p.relative_to(base)), p) for p in volumes))


def _nibabel():
    try:
        import nibabel
    except ImportError:
        raise UserError("reading NIfTI volumes (.nii, .nii.gz) needs nibabel: pip install nibabel (or "
                        "'swin-trt[volumes]'), or save the volumes as .npy (C, D, H, W)") from None
    return nibabel


def read_volume(path: str | Path) -> np.ndarray:
    """The array of one volume file, channels first: ``(C, D, H, W)``, or ``(D, H, W)`` as stored for one
    channel. Unreadable files raise ``OSError``/``ValueError``."""
    path = Path(path)
    if path.name.lower().endswith(".npy"):
        return np.load(path, allow_pickle=False)
    image = _nibabel().load(str(path))
    data = np.asanyarray(image.dataobj)
    if data.ndim == 4:  # NIfTI keeps channels (or time) last: (X, Y, Z, C) -> (C, X, Y, Z)
        data = np.moveaxis(data, -1, 0)
    return np.asarray(data)


@dataclass(frozen=True)
class VolumePreprocessor:
    """A volume model's input: ``shape`` ``(C, D, H, W)`` of the graph (``None`` where a dim is dynamic),
    ``dtype`` its type, ``intensity`` the sidecar's ``ScaleIntensityRange`` (``None``: only the cast). Stands
    where a :class:`~swin_trt.preprocess.Preprocessor` stands for an image model (``normalize``, ``to_dict``,
    ``describe``, ``crop``); :meth:`fit` takes the place of ``to_uint8``."""

    shape: tuple
    dtype: str = "float32"
    intensity: dict | None = None
    input_name: str = "input"

    @property
    def crop(self) -> tuple:
        """The volume's (H, W), as an image model's crop (what a PyTorch reference would be built at)."""
        return tuple(self.shape[-2:])

    @property
    def recipe(self):
        return None

    def describe_shape(self) -> str:
        return "x".join("?" if d is None else str(d) for d in self.shape)

    def fit(self, volume: np.ndarray, name: str) -> np.ndarray:
        """``volume`` ``(C, D, H, W)`` or ``(D, H, W)`` checked against the graph's input; ``(C, D, H, W)``."""
        channels = self.shape[0]
        if volume.ndim == 3 and channels in (1, None):
            volume = volume[None]
        if volume.ndim != 4:
            raise UserError(f"volume {name}: shape {list(volume.shape)}, but the model's input {self.input_name!r} "
                            f"takes (C, D, H, W) = {self.describe_shape()}: save volumes as (C, D, H, W), or "
                            f"(D, H, W) for a one-channel model")
        if not np.issubdtype(volume.dtype, np.number) and volume.dtype != np.bool_:
            raise UserError(f"volume {name}: dtype {volume.dtype} is not numeric")
        if any(want is not None and want != got for want, got in zip(self.shape, volume.shape)):
            raise UserError(f"volume {name} is {'x'.join(map(str, volume.shape))} (C, D, H, W), but the model's "
                            f"input {self.input_name!r} takes {self.describe_shape()}: {SLIDING_WINDOW_HINT}")
        return volume

    def normalize(self, volumes: np.ndarray) -> np.ndarray:
        """``(B, C, D, H, W)`` -> the graph's input: the sidecar's intensity scaling, if any, and the cast."""
        values = volumes
        if self.intensity:
            a_min, a_max = float(self.intensity["a_min"]), float(self.intensity["a_max"])
            b_min, b_max = float(self.intensity.get("b_min", 0.0)), float(self.intensity.get("b_max", 1.0))
            values = (values.astype(np.float64) - a_min) / (a_max - a_min) * (b_max - b_min) + b_min
            if self.intensity.get("clip", False):
                values = np.clip(values, b_min, b_max)
        return np.ascontiguousarray(values.astype(self.dtype, copy=False))

    def input_shape(self, batch: int) -> tuple:
        return (batch, *self.shape)

    def to_dict(self) -> dict:
        return {"layout": VOLUME_LAYOUT, "volume_shape": list(self.shape), "dtype": self.dtype,
                "intensity": self.intensity}

    def describe(self) -> str:
        how = "ScaleIntensityRange " + str(self.intensity) if self.intensity else "no preprocessing beyond the cast"
        return f"volumes {self.describe_shape()} (C, D, H, W), {self.dtype}, {how}"


def read_fitted(paths: list[Path], preprocessor: VolumePreprocessor, names: list[str],
                skipped: list[str]) -> Iterator[tuple[Path, np.ndarray]]:
    """Each readable volume of ``paths`` fitted to ``preprocessor``; unreadable ones are skipped with a warning
    (and their names added to ``skipped``); a volume of the wrong shape is an error."""
    for path, name in zip(paths, names):
        try:
            volume = read_volume(path)
        except UserError:
            raise
        except (OSError, ValueError, EOFError) as exc:
            log.warning("skipping %s: not a readable volume (%s: %s)", path, type(exc).__name__, exc)
            skipped.append(name)
            continue
        yield path, preprocessor.fit(volume, name)


def _volume_reason(facts) -> str | None:
    """Why ``facts`` (a :class:`~.model_input.ModelFacts`) is a volume model, or None."""
    sidecar = facts.ref.sidecar() if facts.ref.kind != "torch" else None
    if (sidecar or {}).get("layout") == VOLUME_LAYOUT or (sidecar or {}).get("volume"):
        return "its sidecar records volumes (NCDHW)"
    io = facts.io
    if io is not None and len(io.input_shape) == VOLUME_RANK:
        channels = io.input_shape[1]
        if isinstance(channels, int) and channels != CLIP_CHANNELS:
            return f"its input {io.input_name!r} is a {channels}-channel volume (B, C, D, H, W)"
    return None


def volume_preprocessor(facts: list, options=None) -> VolumePreprocessor | None:
    """The volume input of models fed together (all volume models, or none), or None for image/clip models."""
    reasons = [(f, _volume_reason(f)) for f in facts]
    volume_models = [f for f, reason in reasons if reason is not None]
    if not volume_models:
        return None
    if len(volume_models) != len(facts):
        other = next(f for f, reason in reasons if reason is None)
        raise UserError(f"{volume_models[0].ref} takes volumes (B, C, D, H, W), but {other.ref} does not: models "
                        f"compared or fed together take the same input")
    if options is not None and (options.recipe_given or options.img_size is not None):
        raise UserError("the preprocessing options (`preset`, `mean`, `std`, `interpolation`, `crop_pct`, "
                        "`resize`, `img_size`) are for images: a volume model takes the volume as it is (cast to "
                        "its input type; a sidecar's `volume.intensity` scales it)")
    shapes = []
    for f in volume_models:
        if f.io is None:
            raise UserError(f"{f.ref}: the volume's shape cannot be read from it; validate the ONNX graph")
        shapes.append(tuple(f.io.input_shape[1:]))
    shape = shapes[0]
    for f, other in zip(volume_models[1:], shapes[1:]):
        if any(a is not None and b is not None and a != b for a, b in zip(shape, other)):
            raise UserError(f"{f.ref} takes volumes {other}, but {volume_models[0].ref} {shape}: models compared "
                            f"together take the same input")
    shape = tuple(next((s[i] for s in shapes if s[i] is not None), None) for i in range(4))
    first = volume_models[0]
    sidecar = (first.ref.sidecar() if first.ref.kind != "torch" else None) or {}
    intensity = (sidecar.get("volume") or {}).get("intensity")
    dtype = getattr(first.io, "input_dtype", None) or "float32"
    return VolumePreprocessor(shape, dtype, intensity, first.io.input_name)
