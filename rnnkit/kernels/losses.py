"""Softmax cross-entropy on the fused float32 kernel, API of :mod:`rnnkit.ops.losses`.

Same arguments and results as :func:`rnnkit.ops.losses.softmax_cross_entropy` and
:func:`rnnkit.ops.losses.cross_entropy_sum`, (CE-1) and (CE-1'). For float32 logits while
the kernels are active the whole loss and gradient take one compiled pass per row
(:mod:`rnnkit.kernels.softmax_loops`) instead of NumPy's six passes over the (…, V)
array, which for a 10,000-word output layer is memory-bound; anything else runs the
reference.
"""

from __future__ import annotations

import numpy as np

from rnnkit.kernels.selection import kernels_active
from rnnkit.ops import losses as ref
from rnnkit.ops.validation import check_finite

__all__ = ["cross_entropy_sum", "softmax_cross_entropy"]

# Below this many logits the rows run on one thread.
PARALLEL_CE_SIZE = 1 << 16


def _run(z: np.ndarray, y: np.ndarray, w: np.ndarray, want_grad: bool, threads: int):
    """Run the row kernel; return (nll (N,), dz (..., V) or None). Raises on non-finite z."""
    from rnnkit.kernels import buffers, driver, plan, softmax_loops

    V = z.shape[-1]
    z2 = driver.readonly(z.reshape(-1, V))
    n_rows = z2.shape[0]
    dz = buffers.empty(z.shape) if want_grad else None
    out = dz.reshape(-1, V) if dz is not None else np.empty((0, 0), np.float32)
    nll = np.empty(n_rows, np.float64)
    n = threads if z.size >= PARALLEL_CE_SIZE else 1
    with plan.team(n):
        bad = softmax_loops.ce_rows(
            z2, y.reshape(-1).astype(np.int64), w.reshape(-1), out, nll, want_grad, n
        )
    if bad:
        check_finite("logits", z)  # raises, naming the first bad index
    return nll, dz


def softmax_cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy and its gradient ``w (p − onehot) / N``, (CE-1) and (CE-1').

    As :func:`rnnkit.ops.losses.softmax_cross_entropy`; fused kernel for float32.
    """
    settings = kernels_active(getattr(logits, "dtype", None))
    if settings is None:
        return ref.softmax_cross_entropy(logits, targets, mask, ignore_index, reduction)
    ref.check_reduction(reduction)
    z, y, w = ref.ce_inputs(logits, targets, mask, ignore_index)
    scale = ref.reduction_scale(w, reduction)
    ws = (w * scale).astype(np.float32)  # w / N per position
    nll, dz = _run(z, y, ws, True, settings.threads)
    loss = float(np.dot(w.reshape(-1).astype(np.float64), nll)) * scale  #       (CE-1)
    return loss, dz


def cross_entropy_sum(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    ignore_index: int | None = None,
) -> tuple[float, int]:
    """Forward-only (CE-1): the summed loss and the number of counted positions.

    As :func:`rnnkit.ops.losses.cross_entropy_sum`; fused kernel for float32.
    """
    settings = kernels_active(getattr(logits, "dtype", None))
    if settings is None:
        return ref.cross_entropy_sum(logits, targets, mask, ignore_index)
    z, y, w = ref.ce_inputs(logits, targets, mask, ignore_index)
    nll, _ = _run(z, y, w, False, settings.threads)
    w64 = w.reshape(-1).astype(np.float64)
    return float(np.dot(w64, nll)), int(w64.sum())
