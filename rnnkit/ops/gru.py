"""GRU over a sequence: forward and backpropagation through time.

Equations (PyTorch's gate order r, z, n in the rows of ``W_ih`` (3H, I), ``W_hh`` (3H, H)
and the biases (3H,); ``W_ir`` is rows 0:H of ``W_ih``, ``W_iz`` rows H:2H, ``W_in`` rows 2H:3H):

(GRU-1) r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)
(GRU-2) z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)
(GRU-3) n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))     reset_after=True
(GRU-4) n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t−1}) + b_hn)     reset_after=False
(GRU-5) h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}

Derivatives, walking t = T … 1 (``dv`` is ∂L/∂v; a_r, a_z, a_n are the arguments of σ, σ, tanh;
hn_t = W_hn h_{t−1} + b_hn and rh_t = r_t ⊙ h_{t−1}):

(GRU-5') dn = dh ⊙ (1 − z_t);  dz = dh ⊙ (h_{t−1} − n_t);  dh_{t−1} = dh ⊙ z_t + (below)
(GRU-3') da_n = dn ⊙ (1 − n_t²);  dr = da_n ⊙ hn_t;  dhn = da_n ⊙ r_t
(GRU-4') da_n = dn ⊙ (1 − n_t²);  drh = da_n W_hn;  dr = drh ⊙ h_{t−1};  dh_{t−1} += drh ⊙ r_t
(GRU-2') da_z = dz ⊙ z_t (1 − z_t)
(GRU-1') da_r = dr ⊙ r_t (1 − r_t)
         and through the affine maps of (GRU-1)–(GRU-4), with da_x = [da_r, da_z, da_n]:
         dx_t = da_x W_ih;   dW_ih = Σ_t da_xᵀ x_t;   db_ih = Σ_t da_x
         reset_after=True, with da_h = [da_r, da_z, dhn]:
             dh_{t−1} += da_h W_hh;   dW_hh = Σ_t da_hᵀ h_{t−1};   db_hh = Σ_t da_h
         reset_after=False:
             dh_{t−1} += [da_r, da_z] W_hh[:2H];   dW_hh[:2H] = Σ_t [da_r, da_z]ᵀ h_{t−1};
             dW_hh[2H:] = Σ_t da_nᵀ rh_t;   db_hh = db_ih

Padding follows (SEQ-1)/(SEQ-2) of ``rnnkit.ops.sequence``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnkit.ops.activations import sigmoid
from rnnkit.ops.sequence import check_sequence_args, freeze, incoming_grad, step_masks

__all__ = ["GRUCache", "GRUGrads", "gru_backward", "gru_forward"]


class GRUCache(NamedTuple):
    """What :func:`gru_backward` needs; arrays created by the forward are read-only."""

    x: np.ndarray  # (T, B, I)
    W_ih: np.ndarray  # (3H, I)
    W_hh: np.ndarray  # (3H, H)
    has_bias: bool
    reset_after: bool
    h: np.ndarray  # (T+1, B, H): h[0] = h0, h[t+1] = state after step t
    gates: np.ndarray  # (T, B, 3H) activated gates r, z, n
    hn: np.ndarray | None  # (T, B, H) W_hn h_{t−1} + b_hn, when reset_after
    rh: np.ndarray | None  # (T, B, H) r_t ⊙ h_{t−1}, when not reset_after
    mask: np.ndarray | None  # (T, B, 1)


class GRUGrads(NamedTuple):
    """Gradients returned by :func:`gru_backward`; bias gradients are None without biases."""

    dx: np.ndarray  # (T, B, I)
    dh0: np.ndarray  # (B, H)
    dW_ih: np.ndarray  # (3H, I)
    dW_hh: np.ndarray  # (3H, H)
    db_ih: np.ndarray | None  # (3H,)
    db_hh: np.ndarray | None  # (3H,)


def gru_forward(
    x: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray | None = None,
    b_hh: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    reset_after: bool = True,
) -> tuple[np.ndarray, np.ndarray, GRUCache]:
    """Run a GRU layer over a sequence, equations (GRU-1)–(GRU-5).

    Equations
    ---------
    (GRU-1) r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)
    (GRU-2) z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)
    (GRU-3) n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))   if reset_after
    (GRU-4) n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t−1}) + b_hn)   otherwise
    (GRU-5) h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}

    Parameters
    ----------
    x : (T, B, I) float32 or float64
    W_ih : (3H, I), rows stacked r, z, n;  W_hh : (3H, H), same dtype as ``x``
    b_ih, b_hh : (3H,) or both None
    h0 : (B, H) initial state, zeros when None
    lengths : (B,) ints in [1, T], or None when every sequence has T steps
    reset_after : bool
        True (default): the reset gate multiplies ``W_hn h + b_hn`` (GRU-3), as in
        PyTorch, cuDNN, Keras ``reset_after=True`` and ONNX ``linear_before_reset=1``.
        False: it multiplies ``h`` before the matmul (GRU-4), as in the seed, Cho et al.,
        Keras ``reset_after=False`` and ONNX ``linear_before_reset=0``.

    Returns
    -------
    y : (T, B, H) outputs ``h_t``, zero at padded steps
    h_n : (B, H) state at each sequence's own last step
    cache : GRUCache for :func:`gru_backward`

    Raises
    ------
    ValueError
        For wrong shapes, non-finite values or bad ``lengths``.
    TypeError
        For non-float arrays, dtypes that differ from ``x``, or a non-bool ``reset_after``.

    Notes
    -----
    Padded steps (``t >= lengths[b]``) output zero and carry the state through
    unchanged (SEQ-2), so ``h_n`` is each sequence's state at its own last step.

    The seed writes ``h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t``: its ``z`` is PyTorch's
    ``1 − z``. Since ``1 − σ(a) = σ(−a)``, the seed's GRU is this op with
    ``reset_after=False``, the z rows of ``W_ih`` and ``W_hh`` negated, and no biases
    (the seed has none); its ``W·[h, x]`` is ``W_hh h + W_ih x``. With
    ``reset_after=False`` only ``b_in + b_hn`` matters (Keras and ONNX keep one of them).

    References
    ----------
    K. Cho et al., "Learning phrase representations using RNN encoder-decoder for
    statistical machine translation", EMNLP 2014 (the reset-before form, GRU-4).
    PyTorch ``torch.nn.GRU`` documentation (the reset-after form, GRU-3).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> T, B, I, H = 5, 2, 3, 4
    >>> W_ih, W_hh = rng.normal(size=(3 * H, I)), rng.normal(size=(3 * H, H))
    >>> x = rng.normal(size=(T, B, I))
    >>> y, h_n, _ = gru_forward(x, W_ih, W_hh, lengths=np.array([5, 2]))
    >>> y.shape, bool(np.allclose(y[1, 1], h_n[1])), bool((y[2:, 1] == 0).all())
    ((5, 2, 4), True, True)
    """
    if not isinstance(reset_after, (bool, np.bool_)):
        raise TypeError(
            f"`reset_after` must be True or False; got {reset_after!r}. "
            "Use True for PyTorch's GRU, False for the seed's (Cho et al.)."
        )
    args = check_sequence_args(x, W_ih, W_hh, b_ih, b_hh, {"h0": h0}, lengths, G=3)
    x, W_ih, W_hh, T, B, H = args.x, args.W_ih, args.W_hh, args.T, args.B, args.H
    b_ih, b_hh = args.b_ih, args.b_hh
    dtype = x.dtype
    mask = step_masks(args.lengths, T, dtype)
    # Input projections for all steps in one GEMM (GRU-1, GRU-2, GRU-3/4). b_hr and b_hz
    # fold into it; b_hn too when reset_after=False, but not when r multiplies it.
    a_x = x @ W_ih.T  # (T, B, 3H)
    if b_ih is not None:
        a_x += b_ih
        a_x[:, :, : 2 * H] += b_hh[: 2 * H]
        if not reset_after:
            a_x[:, :, 2 * H :] += b_hh[2 * H :]
    h = np.empty((T + 1, B, H), dtype=dtype)
    h[0] = args.states[0]
    gates = np.empty((T, B, 3 * H), dtype=dtype)
    hn = np.empty((T, B, H), dtype=dtype) if reset_after else None
    rh = None if reset_after else np.empty((T, B, H), dtype=dtype)
    y = np.empty((T, B, H), dtype=dtype)
    for t in range(T):
        if reset_after:
            a_h = h[t] @ W_hh.T  # (B, 3H)
            gates[t, :, : 2 * H] = sigmoid(a_x[t, :, : 2 * H] + a_h[:, : 2 * H])  # (GRU-1, 2)
            hn[t] = a_h[:, 2 * H :] if b_hh is None else a_h[:, 2 * H :] + b_hh[2 * H :]
            r = gates[t, :, :H]
            gates[t, :, 2 * H :] = np.tanh(a_x[t, :, 2 * H :] + r * hn[t])  #       (GRU-3)
        else:
            a_h = h[t] @ W_hh[: 2 * H].T  # (B, 2H)
            gates[t, :, : 2 * H] = sigmoid(a_x[t, :, : 2 * H] + a_h)  #          (GRU-1, 2)
            rh[t] = gates[t, :, :H] * h[t]
            a_n = a_x[t, :, 2 * H :] + rh[t] @ W_hh[2 * H :].T
            gates[t, :, 2 * H :] = np.tanh(a_n)  #                               (GRU-4)
        z, n = gates[t, :, H : 2 * H], gates[t, :, 2 * H :]
        h_new = (1 - z) * n + z * h[t]  #                                       (GRU-5)
        if mask is None:
            h[t + 1], y[t] = h_new, h_new
        else:
            m = mask[t]  #                                                       (SEQ-2)
            h[t + 1] = m * h_new + (1 - m) * h[t]
            y[t] = m * h_new
    freeze(h, gates, hn, rh, mask)
    cache = GRUCache(x, W_ih, W_hh, b_ih is not None, bool(reset_after), h, gates, hn, rh, mask)
    return y, h[T].copy(), cache


def gru_backward(
    dy: np.ndarray | None,
    dh_n: np.ndarray | None,
    cache: GRUCache,
    trace: list[np.ndarray] | None = None,
) -> GRUGrads:
    """Backpropagate through :func:`gru_forward`, equations (GRU-1')–(GRU-5').

    Equations
    ---------
    (GRU-5') dn = dh ⊙ (1 − z);  dz = dh ⊙ (h_{t−1} − n);  dh_{t−1} = dh ⊙ z + …
    (GRU-3') da_n = dn ⊙ (1 − n²);  dr = da_n ⊙ (W_hn h_{t−1} + b_hn)           (reset_after)
    (GRU-4') drh = da_n W_hn;  dr = drh ⊙ h_{t−1};  dh_{t−1} += drh ⊙ r         (reset before)
    (GRU-2') da_z = dz ⊙ z (1 − z);   (GRU-1') da_r = dr ⊙ r (1 − r)

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
    GRUGrads with dx, dh0, dW_ih, dW_hh, db_ih, db_hh (bias grads None without bias)

    Notes
    -----
    Padded steps get no gradient (SEQ-2'): their ``dx_t`` is zero and ∂L/∂h passes
    through them unchanged.
    """
    x, W_ih, W_hh, has_bias, reset_after, h, gates, hn, rh, mask = cache
    T, B, H = h.shape[0] - 1, h.shape[1], h.shape[2]
    dtype = x.dtype
    dy = incoming_grad("dy", dy, (T, B, H), dtype)
    dh = incoming_grad("dh_n", dh_n, (B, H), dtype).copy()
    da_x = np.empty((T, B, 3 * H), dtype=dtype)  # ∂L/∂ of the W_ih x_t + b_ih rows
    # ∂L/∂ of the W_hh rows' output: equal to da_x when reset_after=False, where only the
    # n block's input differs (rh_t instead of h_{t−1}).
    da_h = np.empty((T, B, 3 * H), dtype=dtype) if reset_after else da_x
    for t in reversed(range(T)):
        r, z, n = gates[t, :, :H], gates[t, :, H : 2 * H], gates[t, :, 2 * H :]
        if mask is None:
            dh_new, dh_skip = dh + dy[t], 0.0
        else:
            m = mask[t]  #                                                       (SEQ-2')
            dh_new, dh_skip = m * (dh + dy[t]), (1 - m) * dh
        if trace is not None:
            trace.append(dh_new)
        dn = dh_new * (1 - z)  #                                                (GRU-5')
        dz = dh_new * (h[t] - n)
        dh_prev = dh_new * z
        da_x[t, :, 2 * H :] = dn * (1 - n**2)  # da_n                     (GRU-3', GRU-4')
        da_n = da_x[t, :, 2 * H :]
        if reset_after:
            dr = da_n * hn[t]  #                                                (GRU-3')
            da_h[t, :, 2 * H :] = da_n * r
        else:
            drh = da_n @ W_hh[2 * H :]  #                                       (GRU-4')
            dr = drh * h[t]
            dh_prev += drh * r
        da_x[t, :, H : 2 * H] = dz * z * (1 - z)  #                             (GRU-2')
        da_x[t, :, :H] = dr * r * (1 - r)  #                                    (GRU-1')
        if reset_after:
            da_h[t, :, : 2 * H] = da_x[t, :, : 2 * H]
            dh = dh_prev + da_h[t] @ W_hh + dh_skip
        else:
            dh = dh_prev + da_x[t, :, : 2 * H] @ W_hh[: 2 * H] + dh_skip
    dx2 = da_x.reshape(T * B, 3 * H)
    dh2 = da_h.reshape(T * B, 3 * H)
    h2 = h[:T].reshape(T * B, H)
    dx = (dx2 @ W_ih).reshape(x.shape)
    dW_ih = dx2.T @ x.reshape(T * B, -1)
    if reset_after:
        dW_hh = dh2.T @ h2
    else:
        dW_hh = np.empty_like(W_hh)
        dW_hh[: 2 * H] = dh2[:, : 2 * H].T @ h2
        dW_hh[2 * H :] = dh2[:, 2 * H :].T @ rh.reshape(T * B, H)
    db_ih = dx2.sum(axis=0) if has_bias else None
    db_hh = dh2.sum(axis=0) if has_bias else None
    return GRUGrads(dx, dh, dW_ih, dW_hh, db_ih, db_hh)
