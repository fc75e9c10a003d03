"""The LSTM time loops: per step, each chunk's recurrent GEMM then its fused pointwise math.

A team splits a call either by units (chunks, one fork-join a step) or by rows (blocks of
the batch, each thread running every step of its rows; see ``plan.choose_row_blocks``).
Equations as :mod:`rnnkit.ops.lstm` (LSTM-1)–(LSTM-5) and their derivatives, gate blocks
i, f, g, o. Arrays indexed by time are in PyTorch's natural gate order (they are the
cache of :func:`rnnkit.ops.lstm.lstm_forward`); the per-step buffers ``a_h`` (forward)
and ``da_c`` (backward) are in the chunk layout of :mod:`rnnkit.kernels.gemm`.

State rings: ``h`` and ``c`` hold ``Th`` steps (``T + 1`` when training, 2 for
inference), ``tanh_c`` holds ``Tt`` (``T`` or 1); step ``t`` reads slot ``t % Th`` and
writes ``(t + 1) % Th``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rnnkit.kernels.activations import add_into, sigmoid, tanh
from rnnkit.kernels.gemm import step_gemm, step_gemm_back

__all__ = ["backward", "backward_chunk", "forward", "forward_chunk"]

NJ = {"cache": True, "fastmath": True, "error_model": "numpy", "nogil": True}
_ONE, _ZERO = np.float32(1.0), np.float32(0.0)


@njit(**NJ)
def forward_chunk(
    t,
    k,
    r0,
    r1,
    gates,
    bias,
    a_h,
    h,
    c,
    tanh_c,
    y,
    lengths,
    units,
    off,
    wp,
    wc,
    use_mk,
    x,
    wxp,
    fuse_x,
):
    """Step ``t``, chunk ``k``, rows ``r0:r1``: ``a_h = h_{t−1} W_hhᵀ``, then (LSTM-1)–(LSTM-5).

    The product covers the chunk's columns, the gate math its units.
    ``gates[t]`` holds ``W_ih x_t`` on entry and the activated gates on exit. With
    ``fuse_x`` (microkernel only) the input projection is made here instead, into ``a_h``
    from ``x[t]`` and the panels ``wxp`` of ``W_ihᵀ``, and ``gates[t]`` is only written.
    """
    B, H = h.shape[1], h.shape[2]
    M = r1 - r0
    i0, i1, it = t % h.shape[0], (t + 1) % h.shape[0], t % tanh_c.shape[0]
    u0, n, o = units[k], units[k + 1] - units[k], off[k]
    ldc = a_h.shape[1]
    a_ptr = a_h.ctypes.data + r0 * ldc * 4
    if fuse_x:  # W_ih x_t, then += W_hh h_{t−1} below                              (LSTM-1)
        I = x.shape[2]
        x_t = x.ctypes.data + (t * B + r0) * I * 4
        step_gemm(x_t, I, M, I, k, off, wxp.ctypes.data, wc.ctypes.data, a_ptr, ldc, True)
    h_prev_ptr = h.ctypes.data + (i0 * B + r0) * H * 4
    step_gemm(
        h_prev_ptr, H, M, H, k, off, wp.ctypes.data, wc.ctypes.data, a_ptr, ldc, use_mk, fuse_x
    )
    for b in range(r0, r1):
        for q in range(4):  # gate q's pre-activation, activated in place      (LSTM-1)–(LSTM-3)
            g_q = gates[t, b, q * H + u0 : q * H + u0 + n]
            r_q, b_q = a_h[b, o + q * n : o + (q + 1) * n], bias[q * H + u0 : q * H + u0 + n]
            if fuse_x:  # a_h already holds W_ih x_t + W_hh h_{t−1}
                if q == 2:
                    for j in range(n):
                        g_q[j] = tanh(r_q[j] + b_q[j])
                else:
                    for j in range(n):
                        g_q[j] = sigmoid(r_q[j] + b_q[j])
            elif q == 2:
                for j in range(n):
                    g_q[j] = tanh(g_q[j] + r_q[j] + b_q[j])
            else:
                for j in range(n):
                    g_q[j] = sigmoid(g_q[j] + r_q[j] + b_q[j])
        g_i, g_f = gates[t, b, u0 : u0 + n], gates[t, b, H + u0 : H + u0 + n]
        g_g, g_o = (
            gates[t, b, 2 * H + u0 : 2 * H + u0 + n],
            gates[t, b, 3 * H + u0 : 3 * H + u0 + n],
        )
        c_prev, h_prev = c[i0, b, u0 : u0 + n], h[i0, b, u0 : u0 + n]
        c_new, h_new = c[i1, b, u0 : u0 + n], h[i1, b, u0 : u0 + n]
        tc, y_t = tanh_c[it, b, u0 : u0 + n], y[t, b, u0 : u0 + n]
        # Short loops over few arrays: LLVM vectorises each, and they run about a third
        # faster than one loop doing it all (fewer live registers and streams).
        for j in range(n):
            c_new[j] = g_f[j] * c_prev[j] + g_i[j] * g_g[j]  #                   (LSTM-4)
        for j in range(n):
            tc[j] = tanh(c_new[j])
        for j in range(n):
            h_new[j] = g_o[j] * tc[j]  #                                         (LSTM-5)
        if t < lengths[b]:
            for j in range(n):
                y_t[j] = h_new[j]
        else:  # a padded step keeps the state and outputs zero                  (SEQ-2)
            for j in range(n):
                c_new[j], h_new[j], y_t[j] = c_prev[j], h_prev[j], _ZERO


@njit(**NJ)
def backward_chunk(
    t,
    k,
    r0,
    r1,
    dy,
    gates,
    c,
    tanh_c,
    dh,
    dc,
    dhp,
    da,
    t_da,
    da_c,
    db,
    lengths,
    units,
    off,
    wpt,
    k_max,
    n_hpanels,
    wc,
    use_mk,
):
    """Step ``t`` backwards, chunk ``k``, rows ``r0:r1``: gate gradients, a partial of ∂L/∂h_{t−1}.

    (LSTM-5')–(LSTM-2') on its units, then its partial of ``∂L/∂h_{t−1} = da_t W_hh`` into
    ``dhp[(t − 1) & 1, k]``.

    ``dh`` carries ∂L/∂h past padded steps (SEQ-2'); on entry it gets the partials of step
    ``t + 1`` from ``dhp[t & 1]``. ``dc`` carries ∂L/∂c; ``db`` accumulates Σ_t da.
    """
    H = dh.shape[1]
    P = dhp.shape[1]
    rd = t & 1
    u0, n, o = units[k], units[k + 1] - units[k], off[k]
    db_i, db_f = db[u0 : u0 + n], db[H + u0 : H + u0 + n]
    db_g, db_o = db[2 * H + u0 : 2 * H + u0 + n], db[3 * H + u0 : 3 * H + u0 + n]
    for b in range(r0, r1):
        m = _ONE if t < lengths[b] else _ZERO
        dh_b = dh[b, u0 : u0 + n]
        for p in range(P):
            part = dhp[rd, p, b, u0 : u0 + n]
            for j in range(n):
                dh_b[j] += part[j]
        dc_b, dy_t = dc[b, u0 : u0 + n], dy[t, b, u0 : u0 + n]
        c_prev, tc = c[t, b, u0 : u0 + n], tanh_c[t, b, u0 : u0 + n]
        g_i, g_f = gates[t, b, u0 : u0 + n], gates[t, b, H + u0 : H + u0 + n]
        g_g, g_o = (
            gates[t, b, 2 * H + u0 : 2 * H + u0 + n],
            gates[t, b, 3 * H + u0 : 3 * H + u0 + n],
        )
        s = t - t_da  # da holds steps t_da, t_da + 1, …
        d_i, d_f = da[s, b, u0 : u0 + n], da[s, b, H + u0 : H + u0 + n]
        d_g, d_o = da[s, b, 2 * H + u0 : 2 * H + u0 + n], da[s, b, 3 * H + u0 : 3 * H + u0 + n]
        e_i, e_f = da_c[b, o : o + n], da_c[b, o + n : o + 2 * n]
        e_g, e_o = da_c[b, o + 2 * n : o + 3 * n], da_c[b, o + 3 * n : o + 4 * n]
        for j in range(n):
            i, f, g, og, th = g_i[j], g_f[j], g_g[j], g_o[j], tc[j]
            dh_new = m * (dh_b[j] + dy_t[j])  #                                  (SEQ-2')
            dc_new = m * dc_b[j] + dh_new * og * (_ONE - th * th)  #            (LSTM-5')
            a_i = dc_new * g * i * (_ONE - i)  #                        (LSTM-4', LSTM-2')
            a_f = dc_new * c_prev[j] * f * (_ONE - f)
            a_g = dc_new * i * (_ONE - g * g)  #                                (LSTM-3')
            a_o = dh_new * th * og * (_ONE - og)  #                     (LSTM-5', LSTM-2')
            dc_b[j] = dc_new * f + (_ONE - m) * dc_b[j]  #                       (LSTM-4')
            dh_b[j] = (_ONE - m) * dh_b[j]  #                                    (SEQ-2')
            d_i[j], d_f[j], d_g[j], d_o[j] = a_i, a_f, a_g, a_o
            e_i[j], e_f[j], e_g[j], e_o[j] = a_i, a_f, a_g, a_o
        add_into(db_i, d_i)  # db = Σ_t da                                      (LSTM-1')
        add_into(db_f, d_f)
        add_into(db_g, d_g)
        add_into(db_o, d_o)
    wr = 1 - rd  # (LSTM-1') this chunk's share of da_t W_hh, for step t − 1
    step_gemm_back(
        da_c.ctypes.data + (r0 * da_c.shape[1] + o) * 4,
        da_c.shape[1],
        r1 - r0,
        4 * n,
        k,
        o,
        wpt.ctypes.data,
        k_max,
        n_hpanels,
        wc.ctypes.data,
        H,
        dhp[wr, k].ctypes.data + r0 * dhp.shape[3] * 4,
        dhp.shape[3],
        use_mk,
    )


@njit(parallel=True, **NJ)
def forward(
    parallel,
    rows,
    gates,
    bias,
    a_h,
    h,
    c,
    tanh_c,
    y,
    lengths,
    units,
    off,
    wp,
    wc,
    use_mk,
    x,
    wxp,
    fuse_x,
):
    """All steps: by blocks of rows, by chunks of units on the team, or on the calling thread.

    ``rows`` holds the boundaries of the row blocks. With more than one block each thread
    of the team runs every step of its own rows (one chunk of units): rows do not depend
    on each other, so the steps need no fork-join. Otherwise the chunks of units run on
    the team when ``parallel`` (one fork-join a step), else on the calling thread.
    ``fuse_x``: each step makes its own input projection (see :func:`forward_chunk`).
    """
    P = units.shape[0] - 1
    T, B = y.shape[0], y.shape[1]
    if rows.shape[0] > 2:
        for q in prange(rows.shape[0] - 1):
            for t in range(T):
                forward_chunk(
                    t, 0, rows[q], rows[q + 1], gates, bias, a_h, h, c, tanh_c, y, lengths,
                    units, off, wp, wc, use_mk, x, wxp, fuse_x,
                )  # fmt: skip
        return
    for t in range(T):
        if parallel:  # one fork-join a step
            for k in prange(P):
                forward_chunk(
                    t, np.int64(k), 0, B, gates, bias, a_h, h, c, tanh_c, y, lengths, units,
                    off, wp, wc, use_mk, x, wxp, fuse_x,
                )  # fmt: skip
        else:
            for k in range(P):
                forward_chunk(
                    t, k, 0, B, gates, bias, a_h, h, c, tanh_c, y, lengths, units, off, wp, wc,
                    use_mk, x, wxp, fuse_x,
                )  # fmt: skip


@njit(parallel=True, **NJ)
def backward(
    parallel,
    rows,
    t0,
    t1,
    dy,
    gates,
    c,
    tanh_c,
    dh,
    dc,
    dhp,
    da,
    da_c,
    db,
    lengths,
    units,
    off,
    wpt,
    k_max,
    n_hpanels,
    wc,
    use_mk,
):
    """Steps ``t1 − 1`` down to ``t0`` backwards, split as :func:`forward`.

    ``da`` holds steps ``t0 : t1`` (a block of the sequence; ``dh``, ``dc`` and ``dhp``
    carry from one block to the one before). ``db`` has one row per block of rows (one in
    all for the chunks of units): block ``q`` accumulates its ``Σ_t da`` into ``db[q]``;
    the caller sums them.
    """
    P = units.shape[0] - 1
    B = gates.shape[1]
    if rows.shape[0] > 2:
        for q in prange(rows.shape[0] - 1):
            for t in range(t1 - 1, t0 - 1, -1):
                backward_chunk(
                    t, 0, rows[q], rows[q + 1], dy, gates, c, tanh_c, dh, dc, dhp, da, t0, da_c,
                    db[q], lengths, units, off, wpt, k_max, n_hpanels, wc, use_mk,
                )  # fmt: skip
        return
    for t in range(t1 - 1, t0 - 1, -1):
        if parallel:  # one fork-join a step
            for k in prange(P):
                backward_chunk(
                    t, np.int64(k), 0, B, dy, gates, c, tanh_c, dh, dc, dhp, da, t0, da_c,
                    db[0], lengths, units, off, wpt, k_max, n_hpanels, wc, use_mk,
                )  # fmt: skip
        else:
            for k in range(P):
                backward_chunk(
                    t, k, 0, B, dy, gates, c, tanh_c, dh, dc, dhp, da, t0, da_c, db[0],
                    lengths, units, off, wpt, k_max, n_hpanels, wc, use_mk,
                )  # fmt: skip
