"""What every recurrent sequence op shares: argument checks, step masks, freezing caches.

A sequence op runs one layer in one direction over ``x`` of shape ``(T, B, I)``.
``G`` below is the number of gate blocks stacked in the weights: 1 for the RNN,
4 for the LSTM (i, f, g, o), 3 for the GRU (r, z, n), PyTorch's layout.

Padding (``lengths``): the mask ``m_t = [t < length_b]`` (SEQ-1) makes a padded
step output zero and pass its state through unchanged (SEQ-2), so the final
state of each sequence is the state at its own last step:

(SEQ-1) m_t = 1 if t < length else 0
(SEQ-2) h_t = m_t ⊙ h'_t + (1 − m_t) ⊙ h_{t−1},   y_t = m_t ⊙ h'_t
(SEQ-2') ∂h'_t = m_t ⊙ (∂y_t + ∂h_t),             ∂h_{t−1} += (1 − m_t) ⊙ ∂h_t
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnkit.ops.validation import (
    check_finite,
    check_float_array,
    check_lengths,
    check_same_dtype,
    check_shape,
)

__all__ = ["SequenceArgs", "check_sequence_args", "freeze", "incoming_grad", "step_masks"]


class SequenceArgs(NamedTuple):
    """Validated arguments of a sequence op; sizes read off the arrays."""

    x: np.ndarray  # (T, B, I)
    W_ih: np.ndarray  # (G*H, I)
    W_hh: np.ndarray  # (G*H, H)
    b_ih: np.ndarray | None  # (G*H,)
    b_hh: np.ndarray | None  # (G*H,)
    states: tuple[np.ndarray, ...]  # each (B, H), zeros where not given
    lengths: np.ndarray | None  # (B,) int64
    T: int
    B: int
    H: int


def check_sequence_args(
    x: object,
    W_ih: object,
    W_hh: object,
    b_ih: object,
    b_hh: object,
    states: dict[str, object],
    lengths: object,
    G: int,
    finite_x: bool = True,
) -> SequenceArgs:
    """Check the arguments of a sequence op and fill in zero initial states.

    Raises ``TypeError`` for non-float or mismatched dtypes and ``ValueError`` for a
    wrong rank, a wrong size, a non-finite value or bad ``lengths``. ``finite_x=False``
    leaves the finiteness of ``x`` to the caller (a kernel that scans it while it runs).
    """
    x = check_float_array("x", x, ndim=3)
    T, B, I = x.shape
    if T < 1:
        raise ValueError(f"`x` must have at least one time step; got shape {x.shape}.")
    W_ih = check_float_array("W_ih", W_ih, ndim=2)
    W_hh = check_float_array("W_hh", W_hh, ndim=2)
    if W_hh.shape[0] % G or W_hh.shape[0] != G * W_hh.shape[1]:
        raise ValueError(
            f"`W_hh` must have shape ({G}*H, H) with {G} gate blocks; got {W_hh.shape}."
        )
    H = W_hh.shape[1]
    check_shape("W_ih", W_ih, (G * H, None))
    if W_ih.shape[1] != I:
        raise ValueError(
            f"`x` must have feature size I={W_ih.shape[1]} to match `W_ih` {W_ih.shape}; "
            f"got x with shape {x.shape} (feature size {I})."
        )
    dtype = x.dtype
    for name, w in (("W_ih", W_ih), ("W_hh", W_hh)):
        check_same_dtype(name, w, dtype)
    biases = []
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None:
            b = check_float_array(name, b, ndim=1)
            check_shape(name, b, (G * H,))
            check_same_dtype(name, b, dtype)
        biases.append(b)
    if (biases[0] is None) != (biases[1] is None):
        raise ValueError("`b_ih` and `b_hh` must both be given or both be None.")
    filled = []
    for name, s in states.items():
        if s is None:
            filled.append(np.zeros((B, H), dtype=dtype))
            continue
        s = check_float_array(name, s, ndim=2)
        check_shape(name, s, (B, H), hint="The state is one (B, H) row per sequence.")
        check_same_dtype(name, s, dtype)
        check_finite(name, s)
        filled.append(s)
    if finite_x:
        check_finite("x", x)
    lens = check_lengths(lengths, T, B)
    return SequenceArgs(x, W_ih, W_hh, biases[0], biases[1], tuple(filled), lens, T, B, H)


def step_masks(lengths: np.ndarray | None, T: int, dtype: np.dtype) -> np.ndarray | None:
    """Masks ``m_t`` of (SEQ-1) as a ``(T, B, 1)`` array of 0/1, or ``None`` if unpadded."""
    if lengths is None or lengths.min() == T:
        return None
    return (np.arange(T)[:, None] < lengths[None, :]).astype(dtype)[:, :, None]


def freeze(*arrays: np.ndarray | None) -> None:
    """Make cached arrays read-only so a cache cannot be edited between forward and backward."""
    for a in arrays:
        if a is not None:
            a.flags.writeable = False


def incoming_grad(
    name: str, g: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """Return the incoming gradient ``g`` checked against ``shape``, or zeros when None."""
    if g is None:
        return np.zeros(shape, dtype=dtype)
    g = check_float_array(name, g)
    check_shape(name, g, shape, hint="A gradient has the shape of what the forward returned.")
    return g.astype(dtype, copy=False)
