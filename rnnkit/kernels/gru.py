"""GRU sequence forward and BPTT on the fused float32 kernels, API of :mod:`rnnkit.ops.gru`.

Same arguments, results and cache (:class:`rnnkit.ops.gru.GRUCache`) as the reference,
both reset placements: ``reset_after=True`` runs :mod:`rnnkit.kernels.gru_loops` (one
fork-join per step when split by units), ``False`` runs
:mod:`rnnkit.kernels.gru_before_loops` (two). Split by rows, neither has any.
"""

from __future__ import annotations

import numpy as np

from rnnkit.kernels.selection import kernels_active
from rnnkit.ops import gru as ref
from rnnkit.ops.gru import GRUCache, GRUGrads
from rnnkit.ops.sequence import check_sequence_args, freeze, incoming_grad, step_masks

__all__ = ["gru_backward", "gru_forward"]


def gru_forward(
    x: np.ndarray,
    W_ih: np.ndarray,
    W_hh: np.ndarray,
    b_ih: np.ndarray | None = None,
    b_hh: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    reset_after: bool = True,
    *,
    need_cache: bool = True,
) -> tuple[np.ndarray, np.ndarray, GRUCache | None]:
    """Run a GRU layer over a sequence, (GRU-1)–(GRU-5); fused kernels for float32.

    Arguments and results as :func:`rnnkit.ops.gru.gru_forward`. With
    ``need_cache=False`` (inference) nothing is kept for backward and the cache is None.
    """
    settings = kernels_active(getattr(x, "dtype", None))
    if settings is None or not isinstance(reset_after, (bool, np.bool_)):
        y, h_n, cache = ref.gru_forward(x, W_ih, W_hh, b_ih, b_hh, h0, lengths, reset_after)
        return y, h_n, cache if need_cache else None
    from rnnkit.kernels import buffers, driver, gru_before_loops, gru_loops, plan

    args = check_sequence_args(x, W_ih, W_hh, b_ih, b_hh, {"h0": h0}, lengths, G=3)
    T, B, H = args.T, args.B, args.H
    call = driver.setup(settings, B, H, 3, T)
    p, P, mk, n_thr = call.plan, call.plan.P, call.use_mk, call.threads
    b_ih, b_hh = (np.zeros(3 * H, np.float32),) * 2 if args.b_ih is None else (args.b_ih, args.b_hh)
    Th, Tk = (T + 1, T) if need_cache else (2, 1)
    h = buffers.empty((Th, B, H))
    h[0] = args.states[0]
    extra = buffers.empty((Tk, B, H))  # hn (reset after) or rh (reset before)
    y = buffers.empty((T, B, H))
    lens = driver.lengths_of(args.lengths, None, T, B)
    W, rows, ws = driver.readonly(args.W_hh), np.arange(H), plan.workspace()
    with plan.team():
        gates = driver.input_projection(call, args.x, args.W_ih, scratch=not need_cache)
        if reset_after:
            bias = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :], b_hh[2 * H :]])
            w = plan.pack(W, rows, p.src, True, mk, "w_pack", n_thr)
            a_h = ws.get("a_h", (B, p.ncols))
            par = driver.loop_threads(call)
            gru_loops.forward(
                par, call.rows, gates, bias, a_h, h, extra, y, lens, p.units, p.off, w.panels,
                w.gathered, mk,
            )  # fmt: skip
        else:
            bias = b_ih + b_hh
            p2, p1 = plan.make_plan(H, 2, P), plan.make_plan(H, 1, P, base=2 * H)
            w2 = plan.pack(W, rows, p2.src, True, mk, "w_pack", n_thr)
            w1 = plan.pack(W, rows, p1.src, True, mk, "w_pack2", n_thr)
            a_rz, a_n = ws.get("a_h", (B, p2.ncols)), ws.get("a_n", (B, p1.ncols))
            gru_before_loops.forward(
                driver.loop_threads(call),
                call.rows,
                gates,
                bias,
                a_rz,
                a_n,
                h,
                extra,
                y,
                lens,
                p.units,
                p2.off,
                p1.off,
                w2.panels,
                w2.gathered,
                w1.panels,
                w1.gathered,
                mk,
            )
    h_n = h[T % Th].copy()
    if not need_cache:
        return y, h_n, None
    mask = step_masks(args.lengths, T, np.dtype(np.float32))
    freeze(h, gates, extra, mask)
    hn, rh = (extra, None) if reset_after else (None, extra)
    has_bias = args.b_ih is not None
    cache = GRUCache(
        args.x, args.W_ih, args.W_hh, has_bias, bool(reset_after), h, gates, hn, rh, mask
    )
    return y, h_n, cache


def gru_backward(dy: np.ndarray | None, dh_n: np.ndarray | None, cache: GRUCache) -> GRUGrads:
    """Backpropagate through :func:`gru_forward`, (GRU-1')–(GRU-5'); fused for float32.

    Arguments and results as :func:`rnnkit.ops.gru.gru_backward`; ``cache`` may come from
    either path.
    """
    settings = kernels_active(cache.x.dtype)
    if settings is None:
        return ref.gru_backward(dy, dh_n, cache)
    from rnnkit.kernels import driver, gru_before_loops, gru_loops, plan

    x, W_ih, W_hh, has_bias, reset_after, h, gates, hn, rh, mask = cache
    T, B, H = h.shape[0] - 1, h.shape[1], h.shape[2]
    f32 = np.dtype(np.float32)
    dy = driver.readonly(incoming_grad("dy", dy, (T, B, H), f32))
    dh = driver.fresh_grad("dh_n", dh_n, (B, H))
    call = driver.setup(settings, B, H, 3, T)
    p, P, mk, n_thr = call.plan, call.plan.P, call.use_mk, call.threads
    lens = driver.lengths_of(None, mask, T, B)
    R = len(call.rows) - 1  # blocks of rows, each with its own Σ_t of the biases
    dbs = np.zeros((R, 3 * H), np.float32)
    W, ro, ws = driver.readonly(W_hh), driver.readonly, plan.workspace()
    with plan.team():
        da = ws.get("da", (T, B, 3 * H))
        if reset_after:
            w = plan.pack_back(W, p, mk, "w_pack", n_thr)
            da_hn = ws.get("da_hn", (T, B, H))
            da_c, dhp = ws.get("da_c", (B, p.ncols)), ws.get("dhp", (2, P, B, p.hpad), zero=True)
            db_hns = np.zeros((R, H), np.float32)
            gru_loops.backward(
                driver.loop_threads(call),  # after packing, which sets its own thread count
                call.rows,
                dy,
                ro(gates),
                ro(h),
                ro(hn),
                dh,
                dhp,
                da,
                da_hn,
                da_c,
                dbs,
                db_hns,
                lens,
                p.units,
                p.off,
                w.panels,
                p.k_max,
                p.n_hpanels,
                w.gathered,
                mk,
            )
            blocks = [(0, 2 * H, da, h[:T]), (2 * H, H, da_hn, h[:T])]
            db, db_hn = dbs.sum(axis=0), db_hns.sum(axis=0)
            db_hh = np.concatenate([db[: 2 * H], db_hn])
        else:
            p2, p1 = plan.make_plan(H, 2, P), plan.make_plan(H, 1, P, base=2 * H)
            w = plan.pack_back(W, p2, mk, "w_pack", n_thr)
            wn = plan.pack(W, 2 * H + np.arange(H), p1.unit, False, mk, "w_pack2", n_thr)
            d_rh, da_c = ws.get("d_rh", (B, p1.ncols)), ws.get("da_c", (B, p2.ncols))
            dhp = ws.get("dhp", (2, P, B, p2.hpad), zero=True)
            gru_before_loops.backward(
                driver.loop_threads(call),  # after packing, which sets its own thread count
                call.rows,
                dy,
                ro(gates),
                ro(h),
                dh,
                dhp,
                da,
                d_rh,
                da_c,
                dbs,
                lens,
                p.units,
                p1.off,
                p2.off,
                wn.panels,
                wn.gathered,
                w.panels,
                p2.k_max,
                p2.n_hpanels,
                w.gathered,
                mk,
            )
            blocks = [(0, 2 * H, da, h[:T]), (2 * H, H, da, rh)]
            db = dbs.sum(axis=0)
            db_hh = db.copy()
        dh += dhp[1, :, :, :H].sum(axis=0)  # step 0's share of ∂L/∂h_0
        dx, dW_ih, dW_hh = driver.weight_gradients(call, da, x, W_ih, blocks)
    if not has_bias:
        return GRUGrads(dx, dh, dW_ih, dW_hh, None, None)
    return GRUGrads(dx, dh, dW_ih, dW_hh, db, db_hh)
