"""LSTM over a sequence: forward and backpropagation through time.

Equations (PyTorch's gate order i, f, g, o; the seed's ``W·[h, x] + b`` is
``W_ih x + W_hh h`` with ``b = b_ih + b_hh``):

(LSTM-1) a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh          a = [a_i, a_f, a_g, a_o]
(LSTM-2) i_t = σ(a_i),  f_t = σ(a_f),  o_t = σ(a_o)
(LSTM-3) g_t = tanh(a_g)                                      (the seed's c̃_t)
(LSTM-4) c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t
(LSTM-5) h_t = o_t ⊙ tanh(c_t)

Derivatives, walking t = T … 1 (``dv`` is ∂L/∂v):

(LSTM-5') do = dh ⊙ tanh(c_t);   dc += dh ⊙ o_t ⊙ (1 − tanh²(c_t))
(LSTM-4') di = dc ⊙ g_t;  dg = dc ⊙ i_t;  df = dc ⊙ c_{t−1};  dc_{t−1} = dc ⊙ f_t
(LSTM-2') da_{i,f,o} = d{i,f,o} ⊙ s (1 − s) for s = i, f, o;  (LSTM-3') da_g = dg ⊙ (1 − g²)
(LSTM-1') dh_{t−1} = da W_hh;  dx_t = da W_ih;  dW_ih = Σ_t daᵀ x_t;  dW_hh = Σ_t daᵀ h_{t−1};
          db_ih = db_hh = Σ_t da

Padding follows (SEQ-1)/(SEQ-2) of ``rnnkit.ops.sequence`` for both h and c.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnkit.ops.activations import sigmoid
from rnnkit.ops.sequence import check_sequence_args, freeze, incoming_grad, step_masks

__all__ = ["LSTMCache", "LSTMGrads", "lstm_backward", "lstm_forward"]


class LSTMCache(NamedTuple):
    """What :func:`lstm_backward` needs; arrays created by the forward are read-only."""

    x: np.ndarray  # (T, B, I)
    W_ih: np.ndarray  # (4H, I)
    W_hh: np.ndarray  # (4H, H)
    has_bias: bool
    h: np.ndarray  # (T+1, B, H): h[0] = h0, h[t+1] = state after step t
    c: np.ndarray  # (T+1, B, H)
    gates: np.ndarray  # (T, B, 4H) activated gates i, f, g, o
    tanh_c: np.ndarray  # (T, B, H) tanh of the unmasked new cell c'_t
    mask: np.ndarray | None  # (T, B, 1)


class LSTMGrads(NamedTuple):
    """Gradients returned by :func:`lstm_backward`; bias gradients are None without biases."""

    dx: np.ndarray  # (T, B, I)
    dh0: np.ndarray  # (B, H)
    dc0: np.ndarray  # (B, H)
    dW_ih: np.ndarray  # (4H, I)
    dW_hh: np.ndarray  # (4H, H)
    db_ih: np.ndarray | None  # (4H,)
    db_hh: np.ndarray | None  # (4H,)


def lstm_forward(
    x: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray | None = None,
    b_hh: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, LSTMCache]:
    """Run an LSTM layer over a sequence, equations (LSTM-1)–(LSTM-5).

    Parameters
    ----------
    x : (T, B, I) float32 or float64
    W_ih : (4H, I), rows stacked i, f, g, o;  W_hh : (4H, H)
    b_ih, b_hh : (4H,) or both None
    h0, c0 : (B, H) initial state, zeros when None
    lengths : (B,) ints in [1, T], or None when every sequence has T steps

    Returns
    -------
    y : (T, B, H) outputs ``h_t``, zero at padded steps
    h_n, c_n : (B, H) state at each sequence's own last step
    cache : LSTMCache for :func:`lstm_backward`

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> T, B, I, H = 5, 2, 3, 4
    >>> y, h_n, c_n, _ = lstm_forward(rng.normal(size=(T, B, I)),
    ...     rng.normal(size=(4 * H, I)), rng.normal(size=(4 * H, H)))
    >>> y.shape, bool(np.allclose(y[-1], h_n))
    ((5, 2, 4), True)
    """
    args = check_sequence_args(x, W_ih, W_hh, b_ih, b_hh, {"h0": h0, "c0": c0}, lengths, G=4)
    x, W_ih, W_hh, T, B, H = args.x, args.W_ih, args.W_hh, args.T, args.B, args.H
    dtype = x.dtype
    mask = step_masks(args.lengths, T, dtype)
    # Input projections for all steps in one GEMM, both biases folded in (LSTM-1).
    a_x = x @ W_ih.T  # (T, B, 4H)
    if args.b_ih is not None:
        a_x += args.b_ih + args.b_hh
    h = np.empty((T + 1, B, H), dtype=dtype)
    c = np.empty((T + 1, B, H), dtype=dtype)
    h[0], c[0] = args.states
    gates = np.empty((T, B, 4 * H), dtype=dtype)
    tanh_c = np.empty((T, B, H), dtype=dtype)
    y = np.empty((T, B, H), dtype=dtype)
    for t in range(T):
        a = a_x[t] + h[t] @ W_hh.T  # (B, 4H)                                   (LSTM-1)
        gates[t, :, : 2 * H] = sigmoid(a[:, : 2 * H])  # i, f                   (LSTM-2)
        gates[t, :, 2 * H : 3 * H] = np.tanh(a[:, 2 * H : 3 * H])  # g          (LSTM-3)
        gates[t, :, 3 * H :] = sigmoid(a[:, 3 * H :])  # o                      (LSTM-2)
        i, f, g, o = np.split(gates[t], 4, axis=1)
        c_new = f * c[t] + i * g  #                                             (LSTM-4)
        tanh_c[t] = np.tanh(c_new)
        h_new = o * tanh_c[t]  #                                                (LSTM-5)
        if mask is None:
            h[t + 1], c[t + 1], y[t] = h_new, c_new, h_new
        else:
            m = mask[t]  #                                                       (SEQ-2)
            h[t + 1] = m * h_new + (1 - m) * h[t]
            c[t + 1] = m * c_new + (1 - m) * c[t]
            y[t] = m * h_new
    freeze(h, c, gates, tanh_c, mask)
    cache = LSTMCache(x, W_ih, W_hh, args.b_ih is not None, h, c, gates, tanh_c, mask)
    return y, h[T].copy(), c[T].copy(), cache


def lstm_backward(
    dy: np.ndarray | None,
    dh_n: np.ndarray | None,
    dc_n: np.ndarray | None,
    cache: LSTMCache,
    trace: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> LSTMGrads:
    """Backpropagate through :func:`lstm_forward`, equations (LSTM-1')–(LSTM-5').

    Parameters
    ----------
    dy : (T, B, H) ∂L/∂y, or None for zero
    dh_n, dc_n : (B, H) ∂L/∂h_n and ∂L/∂c_n, or None for zero
    cache : from the forward pass
    trace : list, optional
        If given, the pair (∂L/∂h'_t, ∂L/∂c'_t) of the step's new state (before the padding
        mask of (SEQ-2); zero at padded steps) is appended for t = T−1 … 0, each (B, H);
        ∂L/∂c'_t is the total one, after (LSTM-5'). This is how
        :func:`rnnkit.diagnostics.gradient_flow` reads the flow of gradient through time;
        the values are the ones the backward uses, nothing is recomputed.

    Returns
    -------
    LSTMGrads with dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh (bias grads None without bias)
    """
    x, W_ih, W_hh, has_bias, h, c, gates, tanh_c, mask = cache
    T, B, H = tanh_c.shape
    dtype = x.dtype
    dy = incoming_grad("dy", dy, (T, B, H), dtype)
    dh = incoming_grad("dh_n", dh_n, (B, H), dtype).copy()
    dc = incoming_grad("dc_n", dc_n, (B, H), dtype).copy()
    da = np.empty((T, B, 4 * H), dtype=dtype)
    for t in reversed(range(T)):
        i, f, g, o = np.split(gates[t], 4, axis=1)
        if mask is None:
            dh_new, dc_new = dh + dy[t], dc
            dh_skip = dc_skip = 0.0
        else:
            m = mask[t]  #                                                       (SEQ-2')
            dh_new, dc_new = m * (dh + dy[t]), m * dc
            dh_skip, dc_skip = (1 - m) * dh, (1 - m) * dc
        do = dh_new * tanh_c[t]  #                                              (LSTM-5')
        dc_new = dc_new + dh_new * o * (1 - tanh_c[t] ** 2)
        if trace is not None:
            trace.append((dh_new, dc_new))
        da[t, :, :H] = dc_new * g * i * (1 - i)  # di ⊙ σ'               (LSTM-4', LSTM-2')
        da[t, :, H : 2 * H] = dc_new * c[t] * f * (1 - f)  # df ⊙ σ'
        da[t, :, 2 * H : 3 * H] = dc_new * i * (1 - g**2)  # dg ⊙ tanh'         (LSTM-3')
        da[t, :, 3 * H :] = do * o * (1 - o)  #                                 (LSTM-2')
        dc = dc_new * f + dc_skip  #                                            (LSTM-4')
        dh = da[t] @ W_hh + dh_skip  #                                          (LSTM-1')
    da2 = da.reshape(T * B, 4 * H)
    dx = (da2 @ W_ih).reshape(x.shape)  #                                       (LSTM-1')
    dW_ih = da2.T @ x.reshape(T * B, -1)
    dW_hh = da2.T @ h[:T].reshape(T * B, H)
    db = da2.sum(axis=0) if has_bias else None
    return LSTMGrads(dx, dh, dc, dW_ih, dW_hh, db, None if db is None else db.copy())
