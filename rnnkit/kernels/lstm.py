"""LSTM sequence forward and BPTT on the fused float32 kernels, API of :mod:`rnnkit.ops.lstm`.

Same arguments, results and cache (:class:`rnnkit.ops.lstm.LSTMCache`) as the reference:
a cache from either path backpropagates through either. Equations (LSTM-1)–(LSTM-5) and
their derivatives; the time loops are in :mod:`rnnkit.kernels.lstm_loops`.
"""

from __future__ import annotations

import numpy as np

from rnnkit.kernels.selection import kernels_active
from rnnkit.ops import lstm as ref
from rnnkit.ops.lstm import LSTMCache, LSTMGrads
from rnnkit.ops.sequence import check_sequence_args, freeze, incoming_grad, step_masks
from rnnkit.ops.validation import check_finite

__all__ = ["lstm_backward", "lstm_forward"]


def lstm_forward(
    x: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray | None = None,
    b_hh: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    *,
    need_cache: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, LSTMCache | None]:
    """Run an LSTM layer over a sequence, (LSTM-1)–(LSTM-5); fused kernels for float32.

    Arguments and results as :func:`rnnkit.ops.lstm.lstm_forward`. With
    ``need_cache=False`` (inference) nothing is kept for backward and the cache is None.
    """
    settings = kernels_active(getattr(x, "dtype", None))
    if settings is None:
        y, h_n, c_n, cache = ref.lstm_forward(x, W_ih, W_hh, b_ih, b_hh, h0, c0, lengths)
        return y, h_n, c_n, cache if need_cache else None
    from rnnkit.kernels import buffers, driver, lstm_loops, lstm_serial, plan

    states = {"h0": h0, "c0": c0}
    args = check_sequence_args(x, W_ih, W_hh, b_ih, b_hh, states, lengths, G=4, finite_x=False)
    T, B, H = args.T, args.B, args.H
    call = driver.setup(settings, B, H, 4, T, _fused_inputs(B, args.x.shape[2], H))
    p = call.plan
    bias = np.zeros(4 * H, np.float32) if args.b_ih is None else args.b_ih + args.b_hh
    Th = T + 1 if need_cache else 2
    h = buffers.empty((Th, B, H))
    c = buffers.empty((Th, B, H))
    h[0], c[0] = args.states
    tanh_c = buffers.empty((T if need_cache else 1, B, H))
    y = buffers.empty((T, B, H))
    lens = driver.lengths_of(args.lengths, None, T, B)
    W_hh_ro = driver.readonly(args.W_hh)
    a_h = plan.workspace().get("a_h", (B, p.ncols))
    fuse_x = plan.fuse_input(call.use_mk, B, args.x.shape[2], 4 * H)  # projection in the steps
    x_ro = driver.readonly(args.x)
    if call.serial:  # one compiled call: the projection, the packing and every step
        gates = driver.projection_buffer((T, B, 4 * H), scratch=not need_cache)
        w = plan.panels(p, backward=False)
        wx = plan.panels(p, backward=False, name="wx_pack", K=x_ro.shape[2]) if fuse_x else w
        if not lstm_serial.forward(
            x_ro, driver.readonly(args.W_ih), W_hh_ro, gates, bias, a_h, h, c, tanh_c, y,
            lens, p.units, p.off, p.src, w.panels, w.gathered, wx.panels, fuse_x,
        ):  # fmt: skip
            check_finite("x", args.x)  # raises, naming the first bad element
    else:
        check_finite("x", args.x)
        with plan.team():
            w = plan.pack(W_hh_ro, np.arange(H), p.src, True, call.use_mk, "w_pack", call.threads)
            if fuse_x:
                gates = driver.projection_buffer((T, B, 4 * H), scratch=not need_cache)
                I = x_ro.shape[2]
                W_ih_ro = driver.readonly(args.W_ih)
                wx = plan.pack(W_ih_ro, np.arange(I), p.src, True, True, "wx_pack", call.threads)
            else:
                gates = driver.input_projection(call, x_ro, args.W_ih, scratch=not need_cache)
                wx = w
            lstm_loops.forward(
                driver.loop_threads(call), call.rows, gates, bias, a_h, h, c, tanh_c, y, lens,
                p.units, p.off, w.panels, w.gathered, call.use_mk, x_ro, wx.panels, fuse_x,
            )  # fmt: skip
    h_n, c_n = h[T % Th].copy(), c[T % Th].copy()
    if not need_cache:
        return y, h_n, c_n, None
    mask = step_masks(args.lengths, T, np.dtype(np.float32))
    freeze(h, c, gates, tanh_c, mask)
    cache = LSTMCache(
        args.x, args.W_ih, args.W_hh, args.b_ih is not None, h, c, gates, tanh_c, mask
    )
    return y, h_n, c_n, cache


def _fused_inputs(B: int, I: int, H: int) -> int:
    """``I`` if the steps may make the input projection themselves (``plan.fuse_input``), else 0."""
    from rnnkit.kernels import plan

    return I if plan.fuse_input(True, B, I, 4 * H) else 0


def lstm_backward(
    dy: np.ndarray | None,
    dh_n: np.ndarray | None,
    dc_n: np.ndarray | None,
    cache: LSTMCache,
) -> LSTMGrads:
    """Backpropagate through :func:`lstm_forward`, (LSTM-1')–(LSTM-5'); fused for float32.

    Arguments and results as :func:`rnnkit.ops.lstm.lstm_backward`; ``cache`` may come
    from either path.
    """
    settings = kernels_active(cache.x.dtype)
    if settings is None:
        return ref.lstm_backward(dy, dh_n, dc_n, cache)
    from rnnkit.kernels import buffers, driver, lstm_loops, lstm_serial, plan

    x, W_ih, W_hh, has_bias, h, c, gates, tanh_c, mask = cache
    T, B, H = tanh_c.shape
    f32 = np.dtype(np.float32)
    dy = driver.readonly(incoming_grad("dy", dy, (T, B, H), f32))
    dh = driver.fresh_grad("dh_n", dh_n, (B, H))
    dc = driver.fresh_grad("dc_n", dc_n, (B, H))
    call = driver.setup(settings, B, H, 4, T, _fused_inputs(B, x.shape[2], H))
    p = call.plan
    lens = driver.lengths_of(None, mask, T, B)
    W_hh_ro, gates_ro, c_ro, tanh_c_ro = map(driver.readonly, (W_hh, gates, c, tanh_c))
    ws = plan.workspace()
    da_c = ws.get("da_c", (B, p.ncols))
    if call.serial:  # one compiled call: the packing, every step and the products after
        w = plan.panels(p, backward=True)
        dhp = ws.get("dhp", (2, 1, B, p.hpad))  # zeroed inside
        I = x.shape[2]
        dx, dW_ih, dW_hh = (buffers.empty(s) for s in ((T, B, I), (4 * H, I), (4 * H, H)))
        da = ws.get("da", (T, B, 4 * H))
        db = np.zeros(4 * H, np.float32)
        lstm_serial.backward(
            driver.readonly(x), driver.readonly(W_ih), W_hh_ro, dy, gates_ro,
            driver.readonly(h), c_ro, tanh_c_ro, dh, dc, dhp, da, da_c, db, lens,
            p.units, p.off, p.back_rows[0], p.hcols, w.panels, w.gathered,
            dx, dW_ih, dW_hh,
        )  # fmt: skip
    else:
        with plan.team():
            w = plan.pack_back(W_hh_ro, p, call.use_mk, "w_pack", call.threads)
            dhp = ws.get("dhp", (2, p.P, B, p.hpad), zero=True)
            dbs = np.zeros((len(call.rows) - 1, 4 * H), np.float32)  # Σ_t da of each block
            grads = driver.WeightGradients(call, x, W_ih, h[:T])
            S = plan.time_block(T, B, 4 * H)  # steps of ∂L/∂a held at once
            da = ws.get("da", (S, B, 4 * H))
            for t1 in range(T, 0, -S):  # blocks of steps, the last first
                t0 = max(0, t1 - S)
                lstm_loops.backward(
                    driver.loop_threads(call), call.rows, t0, t1, dy, gates_ro, c_ro, tanh_c_ro,
                    dh, dc, dhp, da, da_c, dbs, lens, p.units, p.off, w.panels, p.k_max,
                    p.n_hpanels, w.gathered, call.use_mk,
                )  # fmt: skip
                grads.add(t0, t1, da[: t1 - t0])  # dx, dW_ih, dW_hh of those steps (LSTM-1')
            db = dbs[0] if len(dbs) == 1 else dbs.sum(axis=0)
            dh += dhp[1, :, :, :H].sum(axis=0)  # step 0's da W_hh                 (LSTM-1')
            dx, dW_ih, dW_hh = grads.dx, grads.dW_ih, grads.dW_hh
    db_ih = db if has_bias else None
    return LSTMGrads(dx, dh, dc, dW_ih, dW_hh, db_ih, None if db_ih is None else db.copy())
