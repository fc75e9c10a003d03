"""Losses with their fused gradients: softmax cross-entropy and mean squared error.

Equations (``n`` runs over the counted positions; ``w_n`` is 1 for a counted
position and 0 for one excluded by ``mask`` or ``ignore_index``; ``N = Σ_n w_n``):

(CE-1)   ℓ_n = −log softmax(z_n)_{y_n} = −log_softmax(z_n)_{y_n}
         L = Σ_n w_n ℓ_n / N   (reduction "mean")   or   Σ_n w_n ℓ_n   ("sum")
(CE-1')  ∂L/∂z_n = w_n (p_n − onehot(y_n)) / N   ("sum": without the / N),  p_n = softmax(z_n)
(MSE-1)  L = Σ_k w_k (ŷ_k − y_k)² / N   ("mean")   or   Σ_k w_k (ŷ_k − y_k)²   ("sum")
(MSE-1') ∂L/∂ŷ_k = 2 w_k (ŷ_k − y_k) / N   ("sum": without the / N)

With reduction "mean" and nothing counted (``N = 0``) the loss is 0 and the
gradient is zero, rather than 0/0: an all-padding batch contributes nothing.
"""

from __future__ import annotations

import numpy as np

from rnnkit.ops.validation import check_finite, check_float_array

__all__ = [
    "ce_inputs",
    "check_reduction",
    "cross_entropy_sum",
    "mse",
    "reduction_scale",
    "softmax_cross_entropy",
]

_REDUCTIONS = ("mean", "sum")


def check_reduction(reduction: str) -> None:
    """Raise ``ValueError`` unless ``reduction`` is "mean" or "sum"."""
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"`reduction` must be one of {_REDUCTIONS}; got {reduction!r}. "
            "Use 'sum' with the returned count to aggregate over batches."
        )


def reduction_scale(w: np.ndarray, reduction: str) -> float:
    """The factor of (CE-1): ``1 / N``, ``N = Σ w``, for "mean" (0 if N = 0); 1 for "sum"."""
    if reduction == "sum":
        return 1.0
    count = float(w.sum(dtype=np.float64))
    return 1.0 / count if count > 0 else 0.0


def _check_mask(mask: object, shape: tuple[int, ...], dtype: np.dtype, what: str) -> np.ndarray:
    """Return ``mask`` as a 0/1 array of ``dtype``; it must have ``shape``."""
    m = np.asarray(mask)
    if m.dtype.kind not in "biuf":
        raise TypeError(f"`mask` must be a bool or 0/1 numeric array; got dtype {m.dtype}.")
    if m.shape != shape:
        raise ValueError(
            f"`mask` must have the shape of {what} {shape}; got {m.shape}. "
            "Give one 0/1 entry per position."
        )
    if m.dtype.kind != "b" and not np.isin(m, (0, 1)).all():
        raise ValueError(
            "`mask` must hold only 0 and 1 (or booleans); got other values. "
            "Weighted losses are not supported: multiply the per-position losses yourself."
        )
    return m.astype(dtype)


def ce_inputs(
    logits: object, targets: object, mask: object, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the arguments of (CE-1); return the logits, safe targets (intp) and weights.

    A target equal to ``ignore_index`` becomes class 0 with weight 0; ``mask`` multiplies
    the weights. Shared by the reference and the fused kernel (:mod:`rnnkit.kernels`).
    """
    z = check_float_array("logits", logits)
    if z.ndim < 1 or z.shape[-1] < 1:
        raise ValueError(
            f"`logits` must have shape (..., V) with V >= 1 classes on the last axis; "
            f"got {z.shape}."
        )
    V = z.shape[-1]
    y = np.asarray(targets)
    if y.dtype.kind not in "iu":
        raise TypeError(
            f"`targets` must hold integer class ids; got dtype {y.dtype}. "
            "Pass e.g. targets.astype(np.int64)."
        )
    if y.shape != z.shape[:-1]:
        raise ValueError(
            f"`targets` must have shape {z.shape[:-1]} (the logits {z.shape} without V); "
            f"got {y.shape}."
        )
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))
    ):
        raise TypeError(f"`ignore_index` must be an int or None; got {ignore_index!r}.")
    ignored = (y == ignore_index) if ignore_index is not None else np.zeros(y.shape, bool)
    bad = ~ignored & ((y < 0) | (y >= V))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"`targets` must be class ids in [0, V={V}) or ignore_index={ignore_index}; "
            f"got {int(y[idx])} at index {idx}. Check the vocabulary size, or pass "
            "ignore_index for the padding id."
        )
    w = (~ignored).astype(z.dtype)
    if mask is not None:
        w *= _check_mask(mask, y.shape, z.dtype, "targets")
    y_safe = np.where(ignored, 0, y).astype(np.intp)
    return z, y_safe, w


def _ce_terms(
    logits: object, targets: object, mask: object, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate; return ``e = exp(z − max z)``, its row sums ``s``, targets, weights, NLL.

    Shapes: ``e`` (..., V); ``s``, the safe targets, ``w`` and the float64 NLL (...).
    ``log_softmax(z)_y = z_y − max z − log s`` (ACT-5), so ``e / s`` is the softmax and the
    NLL needs only the target's logit: five passes over the (…, V) logits in all, the
    finiteness check included (a NaN or +inf shows in the row maxima, a −inf in the
    minimum).
    """
    z, y_safe, w = ce_inputs(logits, targets, mask, ignore_index)
    zmax = np.max(z, axis=-1, keepdims=True)  # (..., 1)
    if z.size and not (np.isfinite(zmax).all() and np.isfinite(np.min(z))):
        check_finite("logits", z)  # raises, naming the first bad index
    e = np.subtract(z, zmax)
    np.exp(e, out=e)  # exp(z − max z)                                          (ACT-4)
    s = np.sum(e, axis=-1)  # (...), at least 1
    z_y = np.take_along_axis(z, y_safe[..., None], axis=-1)[..., 0]
    nll = np.log(s.astype(np.float64)) - (z_y - zmax[..., 0]).astype(np.float64)  # (CE-1)
    return e, s, y_safe, w, nll


def softmax_cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy and its fused gradient ``p − onehot``, (CE-1) and (CE-1').

    Equations
    ---------
    (CE-1)  L = Σ_n w_n (−log_softmax(z_n)_{y_n}) / N, with N = Σ_n w_n for "mean"
    (CE-1') ∂L/∂z_n = w_n (softmax(z_n) − onehot(y_n)) / N

    Parameters
    ----------
    logits : (..., V) float32 or float64, e.g. (T, B, V) or (N, V)
        Unnormalised scores ``z``; must be finite.
    targets : (...) integers
        Class ids in ``[0, V)``; a position holding ``ignore_index`` is not counted.
    mask : (...) bool or 0/1, optional
        Positions with 0 are not counted (e.g. padding beyond each sequence's length).
    ignore_index : int, optional
        Target id excluded from the loss (PyTorch's ``ignore_index``; default: none).
    reduction : {"mean", "sum"}
        Mean over counted positions (0 if none is counted) or their sum.

    Returns
    -------
    loss : float
    dlogits : (..., V) array of the logits' dtype, ∂loss/∂logits (zero where not counted)

    Notes
    -----
    Computed through ``log_softmax`` (ACT-5), so huge logits neither overflow nor give
    ``log(0)``. Every target must be a valid id or ``ignore_index``, masked positions
    included: fill padding with a valid id or with ``ignore_index``.

    Examples
    --------
    >>> logits = np.array([[0.0, 0.0], [0.0, 0.0]])
    >>> loss, d = softmax_cross_entropy(logits, np.array([0, 1]))
    >>> round(loss, 6), d.tolist()
    (0.693147, [[-0.25, 0.25], [0.25, -0.25]])
    """
    check_reduction(reduction)
    dz, s, y, w, nll = _ce_terms(logits, targets, mask, ignore_index)
    scale = reduction_scale(w, reduction)
    loss = float(np.sum(w * nll, dtype=np.float64)) * scale
    ws = (w * scale).astype(dz.dtype)  # w / N per position
    dz *= (ws / s)[..., None]  # w p / N, p = e / s = softmax(z)                 (ACT-4)
    picked = np.take_along_axis(dz, y[..., None], -1)
    np.put_along_axis(dz, y[..., None], picked - ws[..., None], -1)  # w (p − onehot) / N (CE-1')
    return loss, dz


def cross_entropy_sum(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    ignore_index: int | None = None,
) -> tuple[float, int]:
    """Forward-only (CE-1) for evaluation: the summed loss and the number of counted positions.

    Summing ``loss`` and ``count`` over batches gives the exact corpus mean, and the
    perplexity ``exp(Σ loss / Σ count)``, whatever the batch sizes and padding.
    Arguments are those of :func:`softmax_cross_entropy`; no gradient is formed.

    Examples
    --------
    >>> total, count = cross_entropy_sum(np.zeros((3, 4)), np.array([0, 1, 9]), ignore_index=9)
    >>> round(total, 6), count
    (2.772589, 2)
    """
    _, _, _, w, nll = _ce_terms(logits, targets, mask, ignore_index)
    return float(np.sum(w * nll, dtype=np.float64)), int(w.sum(dtype=np.float64))


def mse(
    pred: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray | None = None,
    reduction: str = "mean",
) -> tuple[float, np.ndarray]:
    """Mean squared error and its gradient, (MSE-1) and (MSE-1').

    Equations
    ---------
    (MSE-1)  L = Σ_k w_k (ŷ_k − y_k)² / N, with N = Σ_k w_k for "mean"
    (MSE-1') ∂L/∂ŷ_k = 2 w_k (ŷ_k − y_k) / N

    Parameters
    ----------
    pred : (...) float32 or float64, the prediction ``ŷ``; must be finite
    target : same shape and dtype as ``pred``
    mask : bool or 0/1, optional
        Either of ``pred``'s shape, or of its leading axes (e.g. (T, B) for a (T, B, F)
        prediction), in which case it applies to every trailing element and each counted
        position counts as that many elements.
    reduction : {"mean", "sum"}
        Mean over counted elements (0 if none is counted; PyTorch's ``mse_loss`` without
        a mask) or their sum.

    Returns
    -------
    loss : float
    dpred : array like ``pred``, ∂loss/∂pred

    Examples
    --------
    >>> loss, d = mse(np.array([1.0, 3.0]), np.array([0.0, 0.0]))
    >>> loss, d.tolist()
    (5.0, [1.0, 3.0])
    """
    check_reduction(reduction)
    p = check_float_array("pred", pred)
    t = check_float_array("target", target)
    if t.shape != p.shape:
        raise ValueError(f"`target` must have the shape of `pred` {p.shape}; got {t.shape}.")
    if t.dtype != p.dtype:
        raise TypeError(
            f"`target` must have dtype {p.dtype} like `pred`; got {t.dtype}. "
            "Cast one of them so they agree."
        )
    check_finite("pred", p)
    check_finite("target", t)
    if mask is None:
        w = np.ones((), dtype=p.dtype)
        count = float(p.size)
    else:
        shape = np.shape(mask)
        if shape != p.shape[: len(shape)]:
            raise ValueError(
                f"`mask` must have the shape of `pred` {p.shape} or of its leading axes; "
                f"got {shape}."
            )
        w = _check_mask(mask, shape, p.dtype, "pred's leading axes")
        w = w.reshape(shape + (1,) * (p.ndim - len(shape)))
        count = float(w.sum(dtype=np.float64)) * (p.size / max(w.size, 1))
    scale = 1.0 if reduction == "sum" else (1.0 / count if count > 0 else 0.0)
    diff = w * (p - t)  # (...)
    loss = float(np.sum(diff * diff, dtype=np.float64)) * scale  #              (MSE-1)
    dpred = (2.0 * scale) * diff  #                                             (MSE-1')
    return loss, dpred.astype(p.dtype, copy=False)
