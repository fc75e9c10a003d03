"""Vanilla (Elman) RNN over a sequence: forward and backpropagation through time.

Equations (the seed's ``h_t = f(x_t, h_{t−1})`` with ``f`` an affine map then tanh or ReLU;
its ``W·[h, x] + b`` is ``W_ih x + W_hh h`` with ``b = b_ih + b_hh``):

(RNN-1) a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh
(RNN-2) h_t = tanh(a_t)   or   h_t = relu(a_t)

Derivatives, walking t = T … 1 (``dv`` is ∂L/∂v):

(RNN-2') da = dh ⊙ (1 − h_t²)   (tanh)   or   da = dh ⊙ [a_t > 0]   (relu)
(RNN-1') dh_{t−1} = da W_hh;  dx_t = da W_ih;  dW_ih = Σ_t daᵀ x_t;  dW_hh = Σ_t daᵀ h_{t−1};
         db_ih = db_hh = Σ_t da

Padding follows (SEQ-1)/(SEQ-2) of ``rnnkit.ops.sequence``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnkit.ops.activations import relu
from rnnkit.ops.sequence import check_sequence_args, freeze, incoming_grad, step_masks

__all__ = ["NONLINEARITIES", "RNNCache", "RNNGrads", "rnn_backward", "rnn_forward"]

NONLINEARITIES = ("tanh", "relu")


class RNNCache(NamedTuple):
    """What :func:`rnn_backward` needs; arrays created by the forward are read-only."""

    x: np.ndarray  # (T, B, I)
    W_ih: np.ndarray  # (H, I)
    W_hh: np.ndarray  # (H, H)
    has_bias: bool
    nonlinearity: str  # "tanh" or "relu"
    h: np.ndarray  # (T+1, B, H): h[0] = h0, h[t+1] = state after step t
    act: np.ndarray  # (T, B, H) the unmasked new state h'_t = tanh(a_t) or relu(a_t)
    mask: np.ndarray | None  # (T, B, 1)


class RNNGrads(NamedTuple):
    """Gradients returned by :func:`rnn_backward`; bias gradients are None without biases."""

    dx: np.ndarray  # (T, B, I)
    dh0: np.ndarray  # (B, H)
    dW_ih: np.ndarray  # (H, I)
    dW_hh: np.ndarray  # (H, H)
    db_ih: np.ndarray | None  # (H,)
    db_hh: np.ndarray | None  # (H,)


def rnn_forward(
    x: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray | None = None,
    b_hh: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, np.ndarray, RNNCache]:
    """Run a vanilla RNN layer over a sequence, equations (RNN-1)–(RNN-2).

    Equations
    ---------
    (RNN-1) a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh
    (RNN-2) h_t = tanh(a_t) or relu(a_t)

    Parameters
    ----------
    x : (T, B, I) float32 or float64
    W_ih : (H, I);  W_hh : (H, H), same dtype as ``x``
    b_ih, b_hh : (H,) or both None
    h0 : (B, H) initial state, zeros when None
    lengths : (B,) ints in [1, T], or None when every sequence has T steps
    nonlinearity : "tanh" (default) or "relu"

    Returns
    -------
    y : (T, B, H) outputs ``h_t``, zero at padded steps
    h_n : (B, H) state at each sequence's own last step
    cache : RNNCache for :func:`rnn_backward`

    Raises
    ------
    ValueError
        For an unknown ``nonlinearity``, wrong shapes, non-finite values or bad ``lengths``.
    TypeError
        For non-float arrays or dtypes that differ from ``x``.

    Notes
    -----
    Padded steps (``t >= lengths[b]``) output zero and carry the state through
    unchanged (SEQ-2), so ``h_n`` is each sequence's state at its own last step.
    The two biases are PyTorch's layout; only their sum matters.

    References
    ----------
    J. L. Elman, "Finding structure in time", Cognitive Science 14(2), 1990.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> T, B, I, H = 5, 2, 3, 4
    >>> y, h_n, _ = rnn_forward(rng.normal(size=(T, B, I)),
    ...     rng.normal(size=(H, I)), rng.normal(size=(H, H)), nonlinearity="relu")
    >>> y.shape, bool(np.allclose(y[-1], h_n)), bool((y >= 0).all())
    ((5, 2, 4), True, True)
    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(
            f"`nonlinearity` must be 'tanh' or 'relu'; got {nonlinearity!r}. Pick one of those."
        )
    args = check_sequence_args(x, W_ih, W_hh, b_ih, b_hh, {"h0": h0}, lengths, G=1)
    x, W_ih, W_hh, T, B, H = args.x, args.W_ih, args.W_hh, args.T, args.B, args.H
    dtype = x.dtype
    mask = step_masks(args.lengths, T, dtype)
    # Input projections for all steps in one GEMM, both biases folded in (RNN-1).
    a_x = x @ W_ih.T  # (T, B, H)
    if args.b_ih is not None:
        a_x += args.b_ih + args.b_hh
    f = np.tanh if nonlinearity == "tanh" else relu
    h = np.empty((T + 1, B, H), dtype=dtype)
    h[0] = args.states[0]
    act = np.empty((T, B, H), dtype=dtype)
    y = np.empty((T, B, H), dtype=dtype)
    for t in range(T):
        a = a_x[t] + h[t] @ W_hh.T  # (B, H)                                   (RNN-1)
        act[t] = f(a)  #                                                         (RNN-2)
        if mask is None:
            h[t + 1], y[t] = act[t], act[t]
        else:
            m = mask[t]  #                                                       (SEQ-2)
            h[t + 1] = m * act[t] + (1 - m) * h[t]
            y[t] = m * act[t]
    freeze(h, act, mask)
    cache = RNNCache(x, W_ih, W_hh, args.b_ih is not None, nonlinearity, h, act, mask)
    return y, h[T].copy(), cache


def rnn_backward(
    dy: np.ndarray | None,
    dh_n: np.ndarray | None,
    cache: RNNCache,
    trace: list[np.ndarray] | None = None,
) -> RNNGrads:
    """Backpropagate through :func:`rnn_forward`, equations (RNN-1')–(RNN-2').

    Equations
    ---------
    (RNN-2') da = dh ⊙ (1 − h_t²) for tanh, da = dh ⊙ [a_t > 0] for relu
    (RNN-1') dh_{t−1} = da W_hh;  dx_t = da W_ih;  dW_ih = Σ daᵀ x_t;  dW_hh = Σ daᵀ h_{t−1}

    Parameters
    ----------
    dy : (T, B, H) ∂L/∂y, or None for zero
    dh_n : (B, H) ∂L/∂h_n, or None for zero
    cache : from the forward pass; not modified, so backward may be called again
    trace : list, optional
        If given, ∂L/∂h'_t, the gradient of the step's new state (before the padding mask
        of (SEQ-2); zero at padded steps), is appended for t = T−1 … 0 as a (B, H) array.
        This is how :func:`rnnkit.diagnostics.gradient_flow` reads the flow of gradient
        through time; the values are the ones the backward uses, nothing is recomputed.

    Returns
    -------
    RNNGrads with dx, dh0, dW_ih, dW_hh, db_ih, db_hh (bias grads None without bias)

    Notes
    -----
    Padded steps get no gradient (SEQ-2'): their ``dx_t`` is zero and ∂L/∂h passes
    through them unchanged.
    """
    x, W_ih, W_hh, has_bias, nonlinearity, h, act, mask = cache
    T, B, H = act.shape
    dtype = x.dtype
    dy = incoming_grad("dy", dy, (T, B, H), dtype)
    dh = incoming_grad("dh_n", dh_n, (B, H), dtype).copy()
    da = np.empty((T, B, H), dtype=dtype)
    for t in reversed(range(T)):
        if mask is None:
            dh_new, dh_skip = dh + dy[t], 0.0
        else:
            m = mask[t]  #                                                       (SEQ-2')
            dh_new, dh_skip = m * (dh + dy[t]), (1 - m) * dh
        if trace is not None:
            trace.append(dh_new)
        if nonlinearity == "tanh":
            da[t] = dh_new * (1 - act[t] ** 2)  #                               (RNN-2')
        else:
            da[t] = dh_new * (act[t] > 0)  # relu(a) > 0 exactly when a > 0    (RNN-2')
        dh = da[t] @ W_hh + dh_skip  #                                          (RNN-1')
    da2 = da.reshape(T * B, H)
    dx = (da2 @ W_ih).reshape(x.shape)  #                                       (RNN-1')
    dW_ih = da2.T @ x.reshape(T * B, -1)
    dW_hh = da2.T @ h[:T].reshape(T * B, H)
    db = da2.sum(axis=0) if has_bias else None
    return RNNGrads(dx, dh, dW_ih, dW_hh, db, None if db is None else db.copy())
