"""Elman RNN sequence forward and BPTT on the fused float32 kernels, API of :mod:`rnnkit.ops.rnn`.

Same arguments, results and cache (:class:`rnnkit.ops.rnn.RNNCache`) as the reference;
equations (RNN-1)–(RNN-2) and their derivatives, loops in :mod:`rnnkit.kernels.rnn_loops`.
"""

from __future__ import annotations

import numpy as np

from rnnkit.kernels.selection import kernels_active
from rnnkit.ops import rnn as ref
from rnnkit.ops.rnn import NONLINEARITIES, RNNCache, RNNGrads
from rnnkit.ops.sequence import check_sequence_args, freeze, incoming_grad, step_masks

__all__ = ["rnn_backward", "rnn_forward"]


def rnn_forward(
    x: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray | None = None,
    b_hh: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    nonlinearity: str = "tanh",
    *,
    need_cache: bool = True,
) -> tuple[np.ndarray, np.ndarray, RNNCache | None]:
    """Run a vanilla RNN layer over a sequence, (RNN-1)–(RNN-2); fused kernels for float32.

    Arguments and results as :func:`rnnkit.ops.rnn.rnn_forward`. With
    ``need_cache=False`` (inference) nothing is kept for backward and the cache is None.
    """
    settings = kernels_active(getattr(x, "dtype", None))
    if settings is None or nonlinearity not in NONLINEARITIES:
        y, h_n, cache = ref.rnn_forward(x, W_ih, W_hh, b_ih, b_hh, h0, lengths, nonlinearity)
        return y, h_n, cache if need_cache else None
    from rnnkit.kernels import buffers, driver, plan, rnn_loops

    args = check_sequence_args(x, W_ih, W_hh, b_ih, b_hh, {"h0": h0}, lengths, G=1)
    T, B, H = args.T, args.B, args.H
    call = driver.setup(settings, B, H, 1, T)
    p = call.plan
    bias = np.zeros(H, np.float32) if args.b_ih is None else args.b_ih + args.b_hh
    Th = T + 1 if need_cache else 2
    h = buffers.empty((Th, B, H))
    h[0] = args.states[0]
    y = buffers.empty((T, B, H))
    lens = driver.lengths_of(args.lengths, None, T, B)
    relu = nonlinearity == "relu"
    with plan.team():
        if need_cache and args.lengths is None:
            # Unpadded, the unmasked new state h'_t (the cache's `act`) is the state h_{t+1}:
            # project straight into h[1:] and let it be `act` too, one (T, B, H) array less.
            act = driver.input_projection(call, args.x, args.W_ih, scratch=False, out=h[1:])
        else:
            act = driver.input_projection(call, args.x, args.W_ih, scratch=not need_cache)
        W = driver.readonly(args.W_hh)
        w = plan.pack(W, np.arange(H), p.src, True, call.use_mk, "w_pack", call.threads)
        a_h = plan.workspace().get("a_h", (B, p.ncols))
        par = driver.loop_threads(call)
        rnn_loops.forward(
            par, call.rows, act, bias, a_h, h, y, lens, relu, p.units, p.off, w.panels,
            w.gathered, call.use_mk,
        )  # fmt: skip
    h_n = h[T % Th].copy()
    if not need_cache:
        return y, h_n, None
    mask = step_masks(args.lengths, T, np.dtype(np.float32))
    freeze(h, act, mask)
    has_bias = args.b_ih is not None
    return y, h_n, RNNCache(args.x, args.W_ih, args.W_hh, has_bias, nonlinearity, h, act, mask)


def rnn_backward(dy: np.ndarray | None, dh_n: np.ndarray | None, cache: RNNCache) -> RNNGrads:
    """Backpropagate through :func:`rnn_forward`, (RNN-1')–(RNN-2'); fused for float32.

    Arguments and results as :func:`rnnkit.ops.rnn.rnn_backward`; ``cache`` may come from
    either path.
    """
    settings = kernels_active(cache.x.dtype)
    if settings is None:
        return ref.rnn_backward(dy, dh_n, cache)
    from rnnkit.kernels import driver, plan, rnn_loops

    x, W_ih, W_hh, has_bias, nonlinearity, h, act, mask = cache
    T, B, H = act.shape
    f32 = np.dtype(np.float32)
    dy = driver.readonly(incoming_grad("dy", dy, (T, B, H), f32))
    dh = driver.fresh_grad("dh_n", dh_n, (B, H))
    call = driver.setup(settings, B, H, 1, T)
    p = call.plan
    lens = driver.lengths_of(None, mask, T, B)
    dbs = np.zeros((len(call.rows) - 1, H), np.float32)  # Σ_t da of each block of rows
    with plan.team():
        w = plan.pack_back(driver.readonly(W_hh), p, call.use_mk, "w_pack", call.threads)
        ws = plan.workspace()
        da = ws.get("da", (T, B, H))
        da_c = ws.get("da_c", (B, p.ncols))
        dhp = ws.get("dhp", (2, p.P, B, p.hpad), zero=True)
        rnn_loops.backward(
            driver.loop_threads(call),
            call.rows,
            dy,
            driver.readonly(act),
            dh,
            dhp,
            da,
            da_c,
            dbs,
            lens,
            nonlinearity == "relu",
            p.units,
            p.off,
            w.panels,
            p.k_max,
            p.n_hpanels,
            w.gathered,
            call.use_mk,
        )
        dh += dhp[1, :, :, :H].sum(axis=0)  # step 0's da W_hh                      (RNN-1')
        dx, dW_ih, dW_hh = driver.weight_gradients(call, da, x, W_ih, [(0, H, da, h[:T])])
    db = dbs[0] if len(dbs) == 1 else dbs.sum(axis=0)
    db_ih = db if has_bias else None
    return RNNGrads(dx, dh, dW_ih, dW_hh, db_ih, None if db_ih is None else db.copy())
