"""The Elman RNN time loops: per step, each chunk's recurrent GEMM then its pointwise math.

Equations as :mod:`rnnkit.ops.rnn` (RNN-1)–(RNN-2) and their derivatives. Layouts and
state rings as :mod:`rnnkit.kernels.lstm_loops` (one gate block).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from rnnkit.kernels.activations import add_into, relu, tanh
from rnnkit.kernels.gemm import step_gemm, step_gemm_back

__all__ = ["backward", "forward"]

NJ = {"cache": True, "fastmath": True, "error_model": "numpy", "nogil": True}
_ONE, _ZERO = np.float32(1.0), np.float32(0.0)


@njit(**NJ)
def _forward_chunk(
    t, k, r0, r1, act, bias, a_h, h, y, lengths, use_relu, units, off, wp, wc, use_mk
):
    """Step ``t``, chunk ``k``, rows ``r0:r1``; ``act[t]``: ``W_ih x_t`` in, ``h'_t`` out."""
    B, H = h.shape[1], h.shape[2]
    i0, i1 = t % h.shape[0], (t + 1) % h.shape[0]
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
    b_u = bias[u0 : u0 + n]
    for b in range(r0, r1):
        keep = t < lengths[b]
        a_x, r = act[t, b, u0 : u0 + n], a_h[b, o : o + n]
        h_prev, h_new, y_t = h[i0, b, u0 : u0 + n], h[i1, b, u0 : u0 + n], y[t, b, u0 : u0 + n]
        if use_relu:
            for j in range(n):
                a_x[j] = relu(a_x[j] + r[j] + b_u[j])  #                  (RNN-1, RNN-2)
        else:
            for j in range(n):
                a_x[j] = tanh(a_x[j] + r[j] + b_u[j])  #                  (RNN-1, RNN-2)
        for j in range(n):
            h_new[j] = a_x[j] if keep else h_prev[j]  #                          (SEQ-2)
            y_t[j] = a_x[j] if keep else _ZERO


@njit(**NJ)
def _backward_chunk(
    t,
    k,
    r0,
    r1,
    dy,
    act,
    dh,
    dhp,
    da,
    da_c,
    db,
    lengths,
    use_relu,
    units,
    off,
    wpt,
    k_max,
    n_hpanels,
    wc,
    use_mk,
):
    """Step ``t``, chunk ``k``, rows ``r0:r1``: (RNN-2') on its units, its share of da_t W_hh."""
    H = dh.shape[1]
    P = dhp.shape[1]
    rd = t & 1
    u0, n, o = units[k], units[k + 1] - units[k], off[k]
    db_u = db[u0 : u0 + n]
    for b in range(r0, r1):
        m = _ONE if t < lengths[b] else _ZERO
        dh_b = dh[b, u0 : u0 + n]
        for p in range(P):
            part = dhp[rd, p, b, u0 : u0 + n]
            for j in range(n):
                dh_b[j] += part[j]
        dy_t, a_t = dy[t, b, u0 : u0 + n], act[t, b, u0 : u0 + n]
        d_t, e_t = da[t, b, u0 : u0 + n], da_c[b, o : o + n]
        for j in range(n):
            dh_new = m * (dh_b[j] + dy_t[j])  #                                  (SEQ-2')
            dh_b[j] = (_ONE - m) * dh_b[j]
            d_t[j] = dh_new
        if use_relu:
            for j in range(n):
                d_t[j] = d_t[j] if a_t[j] > _ZERO else _ZERO  #                  (RNN-2')
        else:
            for j in range(n):
                d_t[j] = d_t[j] * (_ONE - a_t[j] * a_t[j])  #                    (RNN-2')
        for j in range(n):
            e_t[j] = d_t[j]
        add_into(db_u, d_t)  # db = Σ_t da                                        (RNN-1')
    wr = 1 - rd  # (RNN-1') this chunk's share of da_t W_hh, for step t − 1
    step_gemm_back(
        da_c.ctypes.data + (r0 * da_c.shape[1] + o) * 4,
        da_c.shape[1],
        r1 - r0,
        n,
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
def forward(parallel, rows, act, bias, a_h, h, y, lengths, use_relu, units, off, wp, wc, use_mk):
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
                    t, 0, rows[q], rows[q + 1], act, bias, a_h, h, y, lengths, use_relu, units,
                    off, wp, wc, use_mk,
                )  # fmt: skip
        return
    for t in range(T):
        if parallel:  # one fork-join a step
            for k in prange(P):
                _forward_chunk(
                    t, np.int64(k), 0, B, act, bias, a_h, h, y, lengths, use_relu, units, off,
                    wp, wc, use_mk,
                )  # fmt: skip
        else:
            for k in range(P):
                _forward_chunk(
                    t, k, 0, B, act, bias, a_h, h, y, lengths, use_relu, units, off, wp, wc,
                    use_mk,
                )  # fmt: skip


@njit(parallel=True, **NJ)
def backward(
    parallel,
    rows,
    dy,
    act,
    dh,
    dhp,
    da,
    da_c,
    db,
    lengths,
    use_relu,
    units,
    off,
    wpt,
    k_max,
    n_hpanels,
    wc,
    use_mk,
):
    """All steps backwards, split as :func:`forward`; ``db[q]`` is block ``q``'s ``Σ_t da``."""
    P = units.shape[0] - 1
    T, B = act.shape[0], act.shape[1]
    if rows.shape[0] > 2:
        for q in prange(rows.shape[0] - 1):
            for t in range(T - 1, -1, -1):
                _backward_chunk(
                    t, 0, rows[q], rows[q + 1], dy, act, dh, dhp, da, da_c, db[q], lengths,
                    use_relu, units, off, wpt, k_max, n_hpanels, wc, use_mk,
                )  # fmt: skip
        return
    for t in range(T - 1, -1, -1):
        if parallel:  # one fork-join a step
            for k in prange(P):
                _backward_chunk(
                    t, np.int64(k), 0, B, dy, act, dh, dhp, da, da_c, db[0], lengths, use_relu,
                    units, off, wpt, k_max, n_hpanels, wc, use_mk,
                )  # fmt: skip
        else:
            for k in range(P):
                _backward_chunk(
                    t, k, 0, B, dy, act, dh, dhp, da, da_c, db[0], lengths, use_relu, units,
                    off, wpt, k_max, n_hpanels, wc, use_mk,
                )  # fmt: skip
