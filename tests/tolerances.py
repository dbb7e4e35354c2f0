"""Tolerances from float32 error (never from what one machine printed). numpy only, so that the GPU check's
kernel tests (scripts/gpu_check.sh runs them without this folder's conftest) can use them too."""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)


def sum_atol(terms: float, length: int, evaluations: int = 2) -> float:
    """How far ``evaluations`` float32 evaluations of a sum of ``length`` terms, whose absolute values add up
    to ``terms``, may lie apart: each is off by at most gamma_n = n eps times ``terms`` (Higham), whatever order
    or blocking (SIMD width, threads, fused kernels) the CPU chooses; two more roundings cover a scale and a
    bias added to it."""
    return evaluations * (length + 2) * EPS32 * terms


def rounding_atol(expected: np.ndarray, ulps: int = 1024) -> float:
    """Two float32 evaluations of the same network that may order their roundings differently (another batch
    size or graph makes ONNX Runtime pick other kernels): ``ulps`` units in the last place of the output's
    largest magnitude, the bound the rewrite's own equivalence check uses (swin_trt.surgery.equivalence)."""
    return ulps * EPS32 * float(np.abs(expected).max())


def attention_atol(qkv: np.ndarray, table: np.ndarray, attrs: dict) -> float:
    """How far two float32 evaluations of window attention on ``qkv`` may lie apart. A logit ``s q.k + b``
    over head_dim d is off by up to (d + 4) eps times its terms' magnitude L (cosine mode: the normalisations
    add their own d eps, and |q.k| <= 1 once normalised, so L = s + |b|); softmax turns a logit error into up
    to twice that relative error of its weights, plus (2N + 4) eps for the exps and the row sum of N tokens;
    the output, weights times v, is off by max|v| times that. Twice for two evaluations. A wrong bias, mask or
    window moves outputs by tenths, far beyond this."""
    heads = attrs["num_heads"]
    rows, tokens, three_c = qkv.shape
    d = three_c // (3 * heads)
    q, k, v = np.abs(qkv.reshape(rows, tokens, 3, heads, d)).transpose(2, 0, 3, 1, 4)
    bias = float(np.abs(table).max())
    if attrs.get("cosine"):
        logit_error = (2 * d + 8) * EPS32 * (max(attrs["head_scale"]) + bias)
    else:
        logit_error = (d + 4) * EPS32 * (attrs["scale"] * float(np.einsum("rhtd,rhsd->rhts", q, k).max()) + bias)
    return 2 * float(v.max()) * (2 * logit_error + (2 * tokens + 4) * EPS32)
