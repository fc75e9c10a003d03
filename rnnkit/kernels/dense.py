"""The output layer's products on the kernels' own thread team, (LIN-1) and (LIN-1').

A language model's decoder ``Linear(H, V)`` holds the largest GEMMs of a training step
(for PTB, 400 × 200 × 10,000 three times a window). Run by NumPy, they use OpenBLAS's own
worker threads, which keep spinning on the cores for a while after each call, right when
the recurrent kernels start their team: on two cores that slowed the time loops several
fold. Here the same products are split by rows over the kernels' team, each thread
calling single-threaded OpenBLAS, so one thread runtime owns the cores throughout.

Float32 only, and only while the kernels are active (:func:`rnnkit.kernels.backend`);
anything else falls through to NumPy's ``@``. Results equal NumPy's up to float32
rounding (the same BLAS, split by rows).
"""

from __future__ import annotations

import numpy as np

from rnnkit.kernels.selection import kernels_active

__all__ = ["matmul_nn", "matmul_nt", "matmul_tn_acc"]

# Below this many flops a product runs as one single-threaded BLAS call.
PARALLEL_DENSE_FLOPS = 1 << 22


def _threads(flops: int, a: np.ndarray, b: np.ndarray) -> int:
    """Team size for a product, or 0 when NumPy should do it (not float32 kernels)."""
    if a.dtype != np.float32 or b.dtype != np.float32:
        return 0
    settings = kernels_active(a.dtype)
    if settings is None:
        return 0
    return settings.threads if flops >= PARALLEL_DENSE_FLOPS else 1


def _rows(a: np.ndarray, w: np.ndarray, trans: bool, n: int) -> np.ndarray:
    """``a @ op(w)`` into a fresh array, rows split over ``n`` threads of the team."""
    from rnnkit.kernels import buffers, driver, plan

    out = buffers.empty((a.shape[0], w.shape[0] if trans else w.shape[1]))
    with plan.team(n):
        driver.gemm_rows(driver.readonly(a), driver.readonly(w), out, trans, n)
    return out


def matmul_nt(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a @ wᵀ`` for ``a`` (N, I) and ``w`` (O, I): the product of (LIN-1), ``y = x Wᵀ``."""
    n = _threads(2 * a.shape[0] * a.shape[1] * w.shape[0], a, w)
    return a @ w.T if n == 0 else _rows(a, w, True, n)


def matmul_nn(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a @ w`` for ``a`` (N, O) and ``w`` (O, I): the input gradient of (LIN-1'), ``dy W``."""
    n = _threads(2 * a.shape[0] * a.shape[1] * w.shape[1], a, w)
    return a @ w if n == 0 else _rows(a, w, False, n)


def matmul_tn_acc(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """``out += aᵀ b`` in place, no temporary: the weight gradient ``∂L/∂W += dyᵀ x`` (LIN-1').

    ``a`` is (N, O), ``b`` (N, I) and ``out`` (O, I).
    """
    n = _threads(2 * a.shape[0] * a.shape[1] * b.shape[1], a, b)
    if n == 0 or out.dtype != np.float32 or not out.flags.c_contiguous:
        out += a.T @ b
        return
    from rnnkit.kernels import driver, plan

    a, b = driver.readonly(a), driver.readonly(b)
    with plan.team(n):
        driver.gemm_tn_rows(a, 0, b, out, 0, out.shape[0], n, accumulate=True)
