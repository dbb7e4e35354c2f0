"""Validation of a volume model (MONAI's ``SwinUNETR``, input ``(B, C, D, H, W)``, :mod:`swin_trt.data.volumes`):
the volumes to compare on, their batches, and the per-voxel metrics.

The one output ``(B, classes, D, H, W)`` is a class map (kind ``class_map``, as a 2D segmentation's): the argmax
per voxel of candidate and reference are compared in the segmentation confusion matrix
(:mod:`.segmentation`), which gives ``pixel_agreement`` (here per voxel, also as ``voxel_agreement``) and
``miou_agreement``; :func:`dice_agreement` adds the Dice coefficient per class of the candidate's argmax against
the reference's (``dice_agreement``, ``None`` for a class neither predicts) and their mean
(``mean_dice_agreement``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.images import ImageItem
from ..data.volumes import VolumePreprocessor, list_volumes, read_fitted, volume_suffixes_text
from ..errors import UserError
from ..progress import progress_bar

VOLUME_RANK = 4  # (classes, D, H, W) per volume


def volume_items(data: str | Path | None, limit: int | None = None) -> list[ImageItem]:
    """The volumes of ``data`` (unlabelled: validation compares with the reference), the first ``limit``."""
    if data is None:
        raise UserError(f"the models take volumes (B, C, D, H, W): pass `data` (a volume or a folder of volumes, "
                        f"{volume_suffixes_text()})")
    paths = list_volumes(data)
    if not paths:
        raise UserError(f"no volumes ({volume_suffixes_text()}) found in {str(data)!r}: the models take volumes "
                        f"(B, C, D, H, W); pass a folder of .npy (C, D, H, W) or NIfTI files")
    paths = paths[:limit] if limit else paths
    return [ImageItem(path, None) for path in paths]


def check_volume_options(options) -> None:
    """What a volume model cannot be asked for: ground truth of images."""
    for name in ("masks", "annotations", "outputs", "score_threshold", "labels"):
        if getattr(options, name, None) is not None:
            raise UserError(f"`{name}` is for images (labels, segmentation masks, detections), but the models take "
                            f"volumes: leave `{name}` out (volumes are compared with the reference voxel by voxel)")


def volume_batches(data, preprocessor: VolumePreprocessor, batch: int, progress: bool = True):
    """``(volumes (B, C, D, H, W), labels, paths, sizes)`` as :func:`.compare.batches` yields images; ``sizes``
    each volume's ``(D, H, W)``. A batch holds volumes of one shape (a graph with dynamic dims)."""
    pending, pending_labels, pending_paths = [], [], []
    skipped: list[str] = []

    def flush():
        return (preprocessor.normalize(np.stack(pending)), np.asarray(pending_labels), list(pending_paths),
                [tuple(v.shape[1:]) for v in pending])

    with progress_bar(len(data.items), "validate", "vol", enabled=progress) as bar:
        paths = [item.path for item in data.items]
        labels = dict(zip(paths, data.labels))
        for path, volume in read_fitted(paths, preprocessor, [str(p) for p in paths], skipped):
            bar.update(1)
            if pending and volume.shape != pending[0].shape:
                yield flush()
                pending, pending_labels, pending_paths = [], [], []
            pending.append(volume)
            pending_labels.append(labels[path])
            pending_paths.append(path)
            if len(pending) == batch:
                yield flush()
                pending, pending_labels, pending_paths = [], [], []
        if pending:
            yield flush()


def volume_outputs(outputs: list) -> list:
    """``outputs`` (compare's per-output descriptions) with a volume model's one ``(classes, D, H, W)`` output
    taken as its class map."""
    if len(outputs) == 1 and len(outputs[0].shape) == VOLUME_RANK:
        outputs[0].kind = "class_map"
    return outputs


def dice_agreement(matrix: np.ndarray) -> dict:
    """Dice per class of the candidate's argmax (columns of the confusion ``matrix``) against the reference's
    (rows), and their mean over the classes either predicts; also the voxel agreement."""
    hits = np.diag(matrix).astype(np.float64)
    total = matrix.sum(axis=0) + matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(total > 0, 2 * hits / np.maximum(total, 1), np.nan)
    voxels = int(matrix.sum())
    return {"voxel_agreement": float(hits.sum() / voxels) if voxels else None, "voxels": voxels,
            "dice_agreement": [None if np.isnan(v) else float(v) for v in dice],
            "mean_dice_agreement": float(np.nanmean(dice)) if np.isfinite(dice).any() else None}
