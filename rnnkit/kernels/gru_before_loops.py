"""The GRU time loops, reset gate before the recurrent product (``reset_after=False``).

Equations as :mod:`rnnkit.ops.gru` (GRU-1), (GRU-2), (GRU-4), (GRU-5) and their
derivatives. ``W_hn (r ⊙ h)`` needs all of ``r`` before any unit's ``n``, so a step has
two phases (two fork-joins): r and z with ``rh = r ⊙ h`` on each chunk, then ``n`` and the
new state. Backward mirrors it: dz, dn on each chunk, then ``drh = da_n W_hn`` needs all of
``da_n``. The chunk layouts are two: ``off2`` for the r, z columns (``W_hh`` rows 0:2H) and
``off1`` for the n columns (rows 2H:3H), over the same unit chunks. ``bias`` is
``[b_ir + b_hr, b_iz + b_hz, b_in + b_hn]`` (3H); ``rh`` has ``T`` slots when training,
1 for inference. Split by blocks of rows instead (one chunk of all the units), a thread
runs both phases of every step of its rows with no fork-join: rows do not depend on
each other.
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
def _forward_rz(t, k, r0, r1, gates, bias, a_rz, h, rh, units, off2, wp2, wc2, use_mk):
    """Phase 1 of step ``t``, chunk ``k``, rows ``r0:r1``: r, z (GRU-1, GRU-2), ``rh = r ⊙ h``."""
    B, H = h.shape[1], h.shape[2]
    i0, ir = t % h.shape[0], t % rh.shape[0]
    u0, n, o = units[k], units[k + 1] - units[k], off2[k]
    step_gemm(
        h.ctypes.data + (i0 * B + r0) * H * 4,
        H,
        r1 - r0,
        H,
        k,
        off2,
        wp2.ctypes.data,
        wc2.ctypes.data,
        a_rz.ctypes.data + r0 * a_rz.shape[1] * 4,
        a_rz.shape[1],
        use_mk,
    )
    b_r, b_z = bias[u0 : u0 + n], bias[H + u0 : H + u0 + n]
    for b in range(r0, r1):
        x_r, x_z = gates[t, b, u0 : u0 + n], gates[t, b, H + u0 : H + u0 + n]
        h_r, h_z = a_rz[b, o : o + n], a_rz[b, o + n : o + 2 * n]
        h_prev, rh_t = h[i0, b, u0 : u0 + n], rh[ir, b, u0 : u0 + n]
        for j in range(n):
            r = sigmoid(x_r[j] + h_r[j] + b_r[j])  #                                (GRU-1)
            x_r[j] = r
            x_z[j] = sigmoid(x_z[j] + h_z[j] + b_z[j])  #                           (GRU-2)
            rh_t[j] = r * h_prev[j]


@njit(**NJ)
def _forward_n(t, k, r0, r1, gates, bias, a_n, h, rh, y, lengths, units, off1, wp1, wc1, use_mk):
    """Phase 2 of step ``t``, chunk ``k``, rows ``r0:r1``: n (GRU-4), the new state (GRU-5)."""
    B, H = h.shape[1], h.shape[2]
    i0, i1, ir = t % h.shape[0], (t + 1) % h.shape[0], t % rh.shape[0]
    u0, n, o = units[k], units[k + 1] - units[k], off1[k]
    step_gemm(
        rh.ctypes.data + (ir * B + r0) * H * 4,
        H,
        r1 - r0,
        H,
        k,
        off1,
        wp1.ctypes.data,
        wc1.ctypes.data,
        a_n.ctypes.data + r0 * a_n.shape[1] * 4,
        a_n.shape[1],
        use_mk,
    )
    b_n = bias[2 * H + u0 : 2 * H + u0 + n]
    for b in range(r0, r1):
        keep = t < lengths[b]
        x_z, x_n = gates[t, b, H + u0 : H + u0 + n], gates[t, b, 2 * H + u0 : 2 * H + u0 + n]
        h_n, h_prev = a_n[b, o : o + n], h[i0, b, u0 : u0 + n]
        h_new, y_t = h[i1, b, u0 : u0 + n], y[t, b, u0 : u0 + n]
        for j in range(n):
            z = x_z[j]
            nn = tanh(x_n[j] + h_n[j] + b_n[j])  #                                  (GRU-4)
            hh = (_ONE - z) * nn + z * h_prev[j]  #                                 (GRU-5)
            x_n[j] = nn
            h_new[j] = hh if keep else h_prev[j]  #                                 (SEQ-2)
            y_t[j] = hh if keep else _ZERO


@njit(**NJ)
def _backward_zn(t, k, r0, r1, dy, gates, h, dh, dhp, da, db, lengths, units):
    """Backward phase 1 of step ``t``, chunk ``k``, rows ``r0:r1``: (GRU-5'), (GRU-4'), (GRU-2')."""
    H = dh.shape[1]
    rd = t & 1
    u0, n = units[k], units[k + 1] - units[k]
    db_z, db_n = db[H + u0 : H + u0 + n], db[2 * H + u0 : 2 * H + u0 + n]
    for b in range(r0, r1):
        m = _ONE if t < lengths[b] else _ZERO
        dh_b = dh[b, u0 : u0 + n]
        for p in range(dhp.shape[1]):
            part = dhp[rd, p, b, u0 : u0 + n]
            for j in range(n):
                dh_b[j] += part[j]
        dy_t, h_prev = dy[t, b, u0 : u0 + n], h[t, b, u0 : u0 + n]
        g_z, g_n = gates[t, b, H + u0 : H + u0 + n], gates[t, b, 2 * H + u0 : 2 * H + u0 + n]
        d_z, d_n = da[t, b, H + u0 : H + u0 + n], da[t, b, 2 * H + u0 : 2 * H + u0 + n]
        for j in range(n):
            z, nn = g_z[j], g_n[j]
            dh_new = m * (dh_b[j] + dy_t[j])  #                                  (SEQ-2')
            a_n = dh_new * (_ONE - z) * (_ONE - nn * nn)  #             (GRU-5', GRU-4')
            a_z = dh_new * (h_prev[j] - nn) * z * (_ONE - z)  #         (GRU-5', GRU-2')
            dh_b[j] = dh_new * z + (_ONE - m) * dh_b[j]  #              (GRU-5', SEQ-2')
            d_z[j], d_n[j] = a_z, a_n
        add_into(db_z, d_z)
        add_into(db_n, d_n)


@njit(**NJ)
def _backward_r(
    t,
    k,
    r0,
    r1,
    gates,
    h,
    dh,
    dhp,
    da,
    d_rh,
    da_c,
    db,
    units,
    off1,
    off2,
    wpn,
    wcn,
    wpt,
    k_max,
    n_hpanels,
    wc,
    use_mk,
):
    """Phase 2 of step ``t`` backwards, chunk ``k``, rows ``r0:r1``: ``drh``, da_r, ∂L/∂h_{t−1}.

    ``drh = da_n W_hn`` on its units (GRU-4'), da_r (GRU-1'), then its partial of
    ``[da_r, da_z] W_hh[:2H]`` into ``dhp[(t − 1) & 1, k]``.
    """
    B, H = dh.shape
    u0, n, o1, o2 = units[k], units[k + 1] - units[k], off1[k], off2[k]
    step_gemm(
        da.ctypes.data + ((t * B + r0) * 3 * H + 2 * H) * 4,
        3 * H,
        r1 - r0,
        H,
        k,
        off1,
        wpn.ctypes.data,
        wcn.ctypes.data,
        d_rh.ctypes.data + r0 * d_rh.shape[1] * 4,
        d_rh.shape[1],
        use_mk,
    )
    db_r = db[u0 : u0 + n]
    for b in range(r0, r1):
        dh_b, h_prev, drh = dh[b, u0 : u0 + n], h[t, b, u0 : u0 + n], d_rh[b, o1 : o1 + n]
        g_r, d_r, d_z = (
            gates[t, b, u0 : u0 + n],
            da[t, b, u0 : u0 + n],
            da[t, b, H + u0 : H + u0 + n],
        )
        e_r, e_z = da_c[b, o2 : o2 + n], da_c[b, o2 + n : o2 + 2 * n]
        for j in range(n):
            r = g_r[j]
            a_r = drh[j] * h_prev[j] * r * (_ONE - r)  #                (GRU-4', GRU-1')
            dh_b[j] += drh[j] * r  #                                             (GRU-4')
            d_r[j] = a_r
            e_r[j] = a_r
            e_z[j] = d_z[j]
        add_into(db_r, d_r)
    wr = 1 - (t & 1)  # this chunk's share of [da_r, da_z] W_hh[:2H], for step t − 1
    step_gemm_back(
        da_c.ctypes.data + (r0 * da_c.shape[1] + o2) * 4,
        da_c.shape[1],
        r1 - r0,
        2 * n,
        k,
        o2,
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
    parallel, rows, gates, bias, a_rz, a_n, h, rh, y, lengths, units, off2, off1, wp2, wc2, wp1,
    wc1, use_mk,
):  # fmt: skip
    """All steps, two phases each: by blocks of rows, by chunks of units, or on this thread.

    With more than one block of ``rows`` each thread runs every step of its rows (one
    chunk of all the units); else, when ``parallel``, one fork-join per phase of a step.
    """
    P = units.shape[0] - 1
    T, B = y.shape[0], y.shape[1]
    if rows.shape[0] > 2:
        for q in prange(rows.shape[0] - 1):
            r0, r1 = rows[q], rows[q + 1]
            for t in range(T):
                _forward_rz(t, 0, r0, r1, gates, bias, a_rz, h, rh, units, off2, wp2, wc2, use_mk)
                _forward_n(
                    t, 0, r0, r1, gates, bias, a_n, h, rh, y, lengths, units, off1, wp1, wc1,
                    use_mk,
                )  # fmt: skip
        return
    for t in range(T):
        if parallel:
            for k in prange(P):
                _forward_rz(
                    t, np.int64(k), 0, B, gates, bias, a_rz, h, rh, units, off2, wp2, wc2, use_mk
                )
            for k in prange(P):
                _forward_n(
                    t, np.int64(k), 0, B, gates, bias, a_n, h, rh, y, lengths, units, off1, wp1,
                    wc1, use_mk,
                )  # fmt: skip
        else:
            for k in range(P):
                _forward_rz(t, k, 0, B, gates, bias, a_rz, h, rh, units, off2, wp2, wc2, use_mk)
            for k in range(P):
                _forward_n(
                    t, k, 0, B, gates, bias, a_n, h, rh, y, lengths, units, off1, wp1, wc1, use_mk
                )


@njit(parallel=True, **NJ)
def backward(
    parallel, rows, dy, gates, h, dh, dhp, da, d_rh, da_c, db, lengths, units, off1, off2, wpn,
    wcn, wpt, k_max, n_hpanels, wc, use_mk,
):  # fmt: skip
    """All steps backwards, two phases each, split as :func:`forward`.

    Block ``q`` of rows sums its bias gradients into ``db[q]`` (a single block when split
    by units).
    """
    P = units.shape[0] - 1
    T, B = gates.shape[0], gates.shape[1]
    if rows.shape[0] > 2:
        for q in prange(rows.shape[0] - 1):
            r0, r1 = rows[q], rows[q + 1]
            for t in range(T - 1, -1, -1):
                _backward_zn(t, 0, r0, r1, dy, gates, h, dh, dhp, da, db[q], lengths, units)
                _backward_r(
                    t, 0, r0, r1, gates, h, dh, dhp, da, d_rh, da_c, db[q], units, off1, off2,
                    wpn, wcn, wpt, k_max, n_hpanels, wc, use_mk,
                )  # fmt: skip
        return
    for t in range(T - 1, -1, -1):
        if parallel:
            for k in prange(P):
                _backward_zn(t, np.int64(k), 0, B, dy, gates, h, dh, dhp, da, db[0], lengths, units)
            for k in prange(P):
                _backward_r(
                    t, np.int64(k), 0, B, gates, h, dh, dhp, da, d_rh, da_c, db[0], units, off1,
                    off2, wpn, wcn, wpt, k_max, n_hpanels, wc, use_mk,
                )  # fmt: skip
        else:
            for k in range(P):
                _backward_zn(t, k, 0, B, dy, gates, h, dh, dhp, da, db[0], lengths, units)
            for k in range(P):
                _backward_r(
                    t, k, 0, B, gates, h, dh, dhp, da, d_rh, da_c, db[0], units, off1, off2, wpn,
                    wcn, wpt, k_max, n_hpanels, wc, use_mk,
                )  # fmt: skip
