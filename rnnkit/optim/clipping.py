"""Gradient clipping by global norm and by value, as ``torch.nn.utils.clip_grad_*_``.

Equations
---------
(CLIP-1) N = (Σ_p ‖∇_p‖_q^q)^(1/q)  over every element of every gradient;  N = max |∇| for q = ∞
(CLIP-2) c = min(1, M / (N + 10⁻⁶));  ∇_p = c ∇_p                        (only when N is finite)
(CLIP-3) ∇ = min(max(∇, −v), v)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from rnnkit.nn.module import Parameter
from rnnkit.optim.checks import check_flag, check_params, check_real

__all__ = ["clip_grad_norm", "clip_grad_value"]


# Float32 squares are summed by BLAS in blocks this long, the blocks' sums in float64.
_BLOCK = 1 << 16


def _vector_norm(x: np.ndarray, q: float) -> float:
    """‖x‖_q of the flattened ``x``, accumulated in float64 (0 for an empty array).

    For a float32 ``x`` and q = 2 the squares of each block of 65,536 entries are summed
    in float32 by BLAS (as PyTorch does for the whole array) and the block sums in float64:
    no float64 copy of the gradients, which for a large model costs more than the step's
    other pointwise work.
    """
    if x.size == 0:
        return 0.0
    r = np.ravel(x)
    if q == 2 and r.dtype == np.float32:
        with np.errstate(over="ignore"):
            blocks = np.split(r, range(_BLOCK, r.size, _BLOCK))
            total = math.fsum(float(np.dot(b, b)) for b in blocks)
        if math.isfinite(total):  # else a float32 square overflowed: redo in float64
            return math.sqrt(total)
    return float(np.linalg.norm(r.astype(np.float64, copy=False), ord=q))


def clip_grad_norm(
    params: Parameter | Iterable[Parameter],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients together so their global norm is at most ``max_norm``, (CLIP-1)–(CLIP-2).

    Parameters
    ----------
    params : Parameter or iterable of Parameter
        Gradients ``p.grad`` are scaled in place (dtype kept).
    max_norm : float, M >= 0
    norm_type : float, q > 0 or ``math.inf``.  Default 2.
    error_if_nonfinite : bool
        Raise ``ValueError`` when the total norm is NaN or infinite.  Default False.

    Returns
    -------
    total_norm : float
        The global norm N of the gradients *before* clipping, computed in float64.

    Notes
    -----
    The norm is the norm of the per-parameter norms, as in PyTorch, which equals the
    norm of all gradient entries seen as one vector. The scale uses ``N + 1e-6`` as
    PyTorch does, so a norm exactly equal to ``max_norm`` is still scaled by a factor
    just below 1.

    A non-finite N (NaN or infinity in some gradient, or an overflowing sum) is
    returned and the gradients are left **unchanged**; PyTorch instead multiplies
    by the resulting NaN or 0 factor. Check the returned value (``math.isfinite``) to
    skip such a step.

    Examples
    --------
    >>> p = Parameter(np.zeros(2))
    >>> p.grad[...] = [3.0, 4.0]
    >>> clip_grad_norm([p], max_norm=1.0)
    5.0
    >>> np.round(p.grad, 6)
    array([0.6, 0.8])
    """
    plist = check_params(params, allow_empty=True)
    max_norm = check_real("max_norm", max_norm, low=0.0, allow_inf=True)
    q = check_real("norm_type", norm_type, low=0.0, low_open=True, allow_inf=True)
    error_if_nonfinite = check_flag("error_if_nonfinite", error_if_nonfinite)
    if not plist:
        return 0.0
    norms = np.array([_vector_norm(p.grad, q) for p in plist])
    total = _vector_norm(norms, q)  #                                              (CLIP-1)
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise ValueError(
                f"The total norm of order {q} of the gradients is non-finite ({total}), so "
                "they cannot be clipped. Look for NaN/inf in the loss or gradients, or pass "
                "error_if_nonfinite=False to get the norm back and skip the step yourself."
            )
        return total
    coef = max_norm / (total + 1e-6)  #                                            (CLIP-2)
    if coef < 1.0:
        for p in plist:
            p.grad *= coef
    return total


def clip_grad_value(params: Parameter | Iterable[Parameter], clip_value: float) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]`` in place, (CLIP-3).

    Parameters
    ----------
    params : Parameter or iterable of Parameter
    clip_value : float, v >= 0

    Notes
    -----
    NaN entries stay NaN (as in PyTorch's ``clamp``).

    Examples
    --------
    >>> p = Parameter(np.zeros(3))
    >>> p.grad[...] = [-2.0, 0.5, 7.0]
    >>> clip_grad_value(p, 1.0)
    >>> p.grad
    array([-1. ,  0.5,  1. ])
    """
    plist = check_params(params, allow_empty=True)
    v = check_real("clip_value", clip_value, low=0.0, allow_inf=True)
    for p in plist:
        np.clip(p.grad, -v, v, out=p.grad)  #                                      (CLIP-3)
