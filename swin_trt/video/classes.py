"""Class names and scores: label files, default names, softmax top-k over a batch of logits, and the share
of a frame's pixels each class takes in a class map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError


def read_labels(path: str | Path) -> list[str]:
    """One class name per line (blank lines at the end ignored)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read labels {str(path)!r} ({exc}): pass a UTF-8 text file, "
                        f"one class name per line") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise UserError(f"labels file {str(path)!r} is empty: put one class name per line")
    return [line.strip() for line in lines]


def default_labels(count: int) -> list[str]:
    return [f"class_{i}" for i in range(count)]


def top_k(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(B, C)`` logits -> ``(B, k)`` class indices and softmax scores, best first."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # no overflow in exp
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    k = min(k, logits.shape[1])
    best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return best, np.take_along_axis(probs, best, axis=1)


def class_shares(class_map: np.ndarray, classes: int) -> np.ndarray:
    """The share of the pixels of one ``(H, W)`` class map that each of ``classes`` classes takes (sums to 1)."""
    return np.bincount(class_map.ravel(), minlength=classes)[:classes] / class_map.size
