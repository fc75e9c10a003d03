"""Float32 activations for the fused kernels: a rational tanh, and the sigmoid through it.

Equations
---------
(KACT-1) tanh(x) ≈ x·p(x²)/q(x²) for |x| ≤ 7.9053111 (clamped beyond, where float32 tanh
         is ±1), p of degree 6 and q of degree 3 in x² (the approximation used by Eigen
         and ONNX Runtime's MLAS)
(KACT-2) σ(x) = ½·tanh(x/2) + ½                        (identity; ACT-1 of ops)

Neither calls libm, so LLVM vectorises the loops that use them (LLVM has no vector
``tanh``). The maximum absolute error against float64 ``tanh`` is below 3e-7 and against
the sigmoid below 2e-7, float32 rounding level.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["add_into", "relu", "sigmoid", "tanh"]

_f = np.float32
_A1, _A3, _A5 = _f(4.89352455891786e-03), _f(6.37261928875436e-04), _f(1.48572235717979e-05)
_A7, _A9 = _f(5.12229709037114e-08), _f(-8.60467152213735e-11)
_A11, _A13 = _f(2.00018790482477e-13), _f(-2.76076847742355e-16)
_B0, _B2 = _f(4.89352518554385e-03), _f(2.26843463243900e-03)
_B4, _B6 = _f(1.18534705686654e-04), _f(1.19825839466702e-06)
_CLAMP = _f(7.90531110763549805)
_HALF, _ZERO = _f(0.5), _f(0.0)

INLINE = {"cache": True, "fastmath": True, "error_model": "numpy", "inline": "always"}


@njit(**INLINE)
def tanh(x):
    """Rational tanh of a float32 (KACT-1)."""
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    q = x2 * _B6 + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    return x * p / q


@njit(**INLINE)
def sigmoid(x):
    """Logistic function of a float32 through the rational tanh (KACT-2)."""
    return _HALF * tanh(_HALF * x) + _HALF


@njit(**INLINE)
def relu(x):
    """max(x, 0) (ACT-3)."""
    return max(x, _ZERO)


@njit(**INLINE)
def add_into(dst, src):
    """``dst += src`` over 1-D views, in its own loop.

    Kept out of the loops that compute the gradients: a read-modify-write of one more
    array there makes LLVM give up vectorising them (too many runtime alias checks).
    """
    for j in range(dst.shape[0]):
        dst[j] += src[j]
