"""Compiled loops of the fused softmax cross-entropy, (ACT-4), (CE-1) and (CE-1').

One row of logits ``z`` (V classes) at a time, rows split over the team:

1. ``m = max_j z_j`` and a count of the entries that are NaN or infinite, one read of the
   row;
2. ``e_j = exp(z_j − m)`` into the output row and ``s = Σ_j e_j``, one read and one write;
3. ``ℓ = log s − (z_y − m)`` (CE-1) and, for training, ``dz_j = w e_j / s`` then
   ``dz_y −= w`` (CE-1'), on the row while it is still in cache.

``exp`` is computed without libm so the loop vectorises: for ``x = z − m ≤ 0`` (clamped
at −87, where float32 underflows), ``x = n ln 2 + r`` with ``n = round(x / ln 2)`` and
``|r| ≤ ln 2 / 2``; ``e^r`` by its Taylor polynomial of degree 6 (relative error
≤ 1.3e-7) and ``2^n`` by writing ``n + 127`` into a float32 exponent field.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["ce_rows"]

# Fast-math without the no-NaN/no-inf assumptions: the finiteness count must survive.
NJ = {
    "cache": True,
    "fastmath": {"reassoc", "contract", "arcp", "nsz"},
    "error_model": "numpy",
    "nogil": True,
}

LOG2E = np.float32(1.4426950408889634)
LN2_HI = np.float32(0.693145751953125)  # ln 2 = LN2_HI + LN2_LO, LN2_HI exact in 12 bits
LN2_LO = np.float32(1.4286068203094173e-06)
X_MIN = np.float32(-87.0)
F32_MAX = np.float32(3.4028234663852886e38)


@njit(**NJ)
def _exp_row(z, m, out, bits):
    """``out_j = exp(z_j − m)`` for a row with ``m ≥ max z``; returns ``Σ_j out_j``."""
    V = z.shape[0]
    half = np.float32(0.5)
    for j in range(V):
        x = max(z[j] - m, X_MIN)
        n = np.floor(x * LOG2E + half)
        r = x - n * LN2_HI - n * LN2_LO
        p = np.float32(1.0 / 720.0)
        p = p * r + np.float32(1.0 / 120.0)
        p = p * r + np.float32(1.0 / 24.0)
        p = p * r + np.float32(1.0 / 6.0)
        p = p * r + half
        p = p * r + np.float32(1.0)
        p = p * r + np.float32(1.0)
        out[j] = p
        bits[j] = (np.int32(n) + np.int32(127)) << np.int32(23)
    scale = bits.view(np.float32)  # 2^n
    s = np.float32(0.0)
    for j in range(V):
        v = out[j] * scale[j]
        out[j] = v
        s += v
    return s


@njit(**NJ)
def _max_probe(z):
    """``(max_j z_j, number of entries that are NaN or infinite)``."""
    m = z[0]
    nbad = 0
    for j in range(z.shape[0]):
        v = z[j]
        m = max(m, v)
        nbad += not (abs(v) <= F32_MAX)  # false for NaN and ±inf
    return m, nbad


@njit(parallel=True, **NJ)
def ce_rows(z, y, w, dz, nll, want_grad, n_threads):
    """Fill ``nll`` (N,) float64 and, when ``want_grad``, ``dz`` (N, V) = w (p − onehot).

    ``z`` (N, V) float32 logits, ``y`` (N,) int64 targets in range, ``w`` (N,) float32
    weights (already divided by the count for a mean). Returns the number of rows that are
    not all finite (their outputs are meaningless; the caller raises).
    """
    N, V = z.shape
    bad = np.zeros(n_threads, np.int64)
    for q in prange(n_threads):
        r0 = q * N // n_threads
        r1 = (q + 1) * N // n_threads
        bits = np.empty(V, np.int32)
        scratch = np.empty(V, np.float32)
        for i in range(r0, r1):
            row = z[i]
            m, nbad = _max_probe(row)
            if nbad:
                bad[q] += 1
                nll[i] = np.nan
                continue
            out = dz[i] if want_grad else scratch
            s = _exp_row(row, m, out, bits)
            t = y[i]
            nll[i] = math.log(np.float64(s)) - (np.float64(row[t]) - np.float64(m))
            if want_grad:
                c = w[i] / s
                for j in range(V):
                    out[j] *= c
                out[t] -= w[i]
    return bad.sum()
