"""The GRU time loops, reset gate after the recurrent product (``reset_after=True``).

Equations as :mod:`rnnkit.ops.gru` (GRU-1), (GRU-2), (GRU-3), (GRU-5) and their
derivatives, gate blocks r, z, n. ``bias`` is ``[b_ir + b_hr, b_iz + b_hz, b_in, b_hn]``
(4H): only ``b_hn`` stays inside the reset product. Layouts and state rings as
:mod:`rnnkit.kernels.lstm_loops`; ``hn`` (``W_hn h_{t−1} + b_hn``) has ``T`` slots when
training, 1 for inference.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rnnkit.kernels.activations import add_into, sigmoid, tanh
from rnnkit.kernels.gemm import step_gemm, step_gemm_back

__all__ = ["backward", "forward"]

NJ = {"cache": True, "fastmath": True, "error_model": "numpy", "nogil": True}
_ONE, _ZERO = np.float32(1.0), np.float32(0.0)


@njit(**NJ)
def _forward_chunk(t, k, r0, r1, gates, bias, a_h, h, hn, y, lengths, units, off, wp, wc, use_mk):
    """Step ``t``, chunk ``k``, rows ``r0:r1``; ``gates[t]``: ``W_ih x_t`` in, r, z, n out."""
    B, H = h.shape[1], h.shape[2]
    i0, i1, ih = t % h.shape[0], (t + 1) % h.shape[0], t % hn.shape[0]
    u0, n, o = units[k], units[k + 1] - units[k], off[k]
    step_gemm(
        h.ctypes.data + (i0 * B + r0) * H * 4,
        H,
        r1 - r0,
        H,
        k,
        off,
        wp.ctypes.data,
        wc.ctypes.data,
        a_h.ctypes.data + r0 * a_h.shape[1] * 4,
        a_h.shape[1],
        use_mk,
    )
    b_r, b_z = bias[u0 : u0 + n], bias[H + u0 : H + u0 + n]
    b_in, b_hn = bias[2 * H + u0 : 2 * H + u0 + n], bias[3 * H + u0 : 3 * H + u0 + n]
    for b in range(r0, r1):
        x_r, x_z = gates[t, b, u0 : u0 + n], gates[t, b, H + u0 : H + u0 + n]
        x_n = gates[t, b, 2 * H + u0 : 2 * H + u0 + n]
        h_r, h_z, h_n = a_h[b, o : o + n], a_h[b, o + n : o + 2 * n], a_h[b, o + 2 * n : o + 3 * n]
        h_prev, h_new = h[i0, b, u0 : u0 + n], h[i1, b, u0 : u0 + n]
        hn_t, y_t = hn[ih, b, u0 : u0 + n], y[t, b, u0 : u0 + n]
        # Short loops over few arrays (LLVM vectorises each; faster than one fused loop).
        for j in range(n):
            x_r[j] = sigmoid(x_r[j] + h_r[j] + b_r[j])  #                          (GRU-1)
        for j in range(n):
            x_z[j] = sigmoid(x_z[j] + h_z[j] + b_z[j])  #                          (GRU-2)
        for j in range(n):
            hn_t[j] = h_n[j] + b_hn[j]
        for j in range(n):
            x_n[j] = tanh(x_n[j] + b_in[j] + x_r[j] * hn_t[j])  #                  (GRU-3)
        for j in range(n):
            h_new[j] = (_ONE - x_z[j]) * x_n[j] + x_z[j] * h_prev[j]  #            (GRU-5)
        if t < lengths[b]:
            for j in range(n):
                y_t[j] = h_new[j]
        else:  # a padded step keeps the state and outputs zero                  (SEQ-2)
            for j in range(n):
                h_new[j], y_t[j] = h_prev[j], _ZERO


@njit(**NJ)
def _backward_chunk(
    t,
    k,
    r0,
    r1,
    dy,
    gates,
    h,
    hn,
    dh,
    dhp,
    da,
    da_hn,
    da_c,
    db,
    db_hn,
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

    (GRU-5'), (GRU-3'), (GRU-2'), (GRU-1') on its units, then its partial of ``da_h W_hh``
    with ``da_h = [da_r, da_z, da_n ⊙ r]`` into ``dhp[(t − 1) & 1, k]``.
    """
    H = dh.shape[1]
    P = dhp.shape[1]
    rd = t & 1
    u0, n, o = units[k], units[k + 1] - units[k], off[k]
    db_r, db_z = db[u0 : u0 + n], db[H + u0 : H + u0 + n]
    db_n, dbh_n = db[2 * H + u0 : 2 * H + u0 + n], db_hn[u0 : u0 + n]
    for b in range(r0, r1):
        m = _ONE if t < lengths[b] else _ZERO
        dh_b = dh[b, u0 : u0 + n]
        for p in range(P):
            part = dhp[rd, p, b, u0 : u0 + n]
            for j in range(n):
                dh_b[j] += part[j]
        dy_t, h_prev, hn_t = dy[t, b, u0 : u0 + n], h[t, b, u0 : u0 + n], hn[t, b, u0 : u0 + n]
        g_r, g_z = gates[t, b, u0 : u0 + n], gates[t, b, H + u0 : H + u0 + n]
        g_n = gates[t, b, 2 * H + u0 : 2 * H + u0 + n]
        d_r, d_z = da[t, b, u0 : u0 + n], da[t, b, H + u0 : H + u0 + n]
        d_n, d_hn = da[t, b, 2 * H + u0 : 2 * H + u0 + n], da_hn[t, b, u0 : u0 + n]
        e_r, e_z, e_n = (
            da_c[b, o : o + n],
            da_c[b, o + n : o + 2 * n],
            da_c[b, o + 2 * n : o + 3 * n],
        )
        for j in range(n):
            r, z, nn = g_r[j], g_z[j], g_n[j]
            dh_new = m * (dh_b[j] + dy_t[j])  #                                  (SEQ-2')
            dn = dh_new * (_ONE - z)  #                                          (GRU-5')
            dz = dh_new * (h_prev[j] - nn)
            a_n = dn * (_ONE - nn * nn)  #                                       (GRU-3')
            a_r = a_n * hn_t[j] * r * (_ONE - r)  #                     (GRU-3', GRU-1')
            a_z = dz * z * (_ONE - z)  #                                         (GRU-2')
            a_hn = a_n * r
            dh_b[j] = dh_new * z + (_ONE - m) * dh_b[j]  #              (GRU-5', SEQ-2')
            d_r[j], d_z[j], d_n[j], d_hn[j] = a_r, a_z, a_n, a_hn
            e_r[j], e_z[j], e_n[j] = a_r, a_z, a_hn
        add_into(db_r, d_r)  # db_ih = Σ_t da_x, db_hn = Σ_t da_n ⊙ r
        add_into(db_z, d_z)
        add_into(db_n, d_n)
        add_into(dbh_n, d_hn)
    wr = 1 - rd  # this chunk's share of da_h W_hh, for step t − 1
    step_gemm_back(
        da_c.ctypes.data + (r0 * da_c.shape[1] + o) * 4,
        da_c.shape[1],
        r1 - r0,
        3 * n,
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
def forward(parallel, rows, gates, bias, a_h, h, hn, y, lengths, units, off, wp, wc, use_mk):
    """All steps: by blocks of rows, by chunks of units on the team, or on the calling thread.

    As :func:`rnnkit.kernels.lstm_loops.forward`: with more than one block of ``rows``
    each thread runs every step of its rows.
    """
    P = units.shape[0] - 1
    T, B = y.shape[0], y.shape[1]
    if rows.shape[0] > 2:
        for q in prange(rows.shape[0] - 1):
            for t in range(T):
                _forward_chunk(
                    t, 0, rows[q], rows[q + 1], gates, bias, a_h, h, hn, y, lengths, units, off,
                    wp, wc, use_mk,
                )  # fmt: skip
        return
    for t in range(T):
        if parallel:  # one fork-join a step
            for k in prange(P):
                _forward_chunk(
                    t, np.int64(k), 0, B, gates, bias, a_h, h, hn, y, lengths, units, off, wp,
                    wc, use_mk,
                )  # fmt: skip
        else:
            for k in range(P):
                _forward_chunk(
                    t, k, 0, B, gates, bias, a_h, h, hn, y, lengths, units, off, wp, wc, use_mk
                )


@njit(parallel=True, **NJ)
def backward(
    parallel,
    rows,
    dy,
    gates,
    h,
    hn,
    dh,
    dhp,
    da,
    da_hn,
    da_c,
    db,
    db_hn,
    lengths,
    units,
    off,
    wpt,
    k_max,
    n_hpanels,
    wc,
    use_mk,
):
    """All steps backwards, split as :func:`forward`.

    Block ``q`` of rows sums its bias gradients into ``db[q]`` and ``db_hn[q]`` (a single
    block when split by units).
    """
    P = units.shape[0] - 1
    T, B = gates.shape[0], gates.shape[1]
    if rows.shape[0] > 2:
        for q in prange(rows.shape[0] - 1):
            for t in range(T - 1, -1, -1):
                _backward_chunk(
                    t, 0, rows[q], rows[q + 1], dy, gates, h, hn, dh, dhp, da, da_hn, da_c, db[q],
                    db_hn[q], lengths, units, off, wpt, k_max, n_hpanels, wc, use_mk,
                )  # fmt: skip
        return
    for t in range(T - 1, -1, -1):
        if parallel:  # one fork-join a step
            for k in prange(P):
                _backward_chunk(
                    t, np.int64(k), 0, B, dy, gates, h, hn, dh, dhp, da, da_hn, da_c, db[0],
                    db_hn[0], lengths, units, off, wpt, k_max, n_hpanels, wc, use_mk,
                )  # fmt: skip
        else:
            for k in range(P):
                _backward_chunk(
                    t, k, 0, B, dy, gates, h, hn, dh, dhp, da, da_hn, da_c, db[0], db_hn[0],
                    lengths, units, off, wpt, k_max, n_hpanels, wc, use_mk,
                )  # fmt: skip
