"""The LSTM with one chunk on the calling thread: a whole forward or backward in one call.

A call too small to split (B = 1, small H) is mostly fixed cost: each separately
dispatched NumPy or compiled function costs tens of µs when its code has left the
caches (as between the calls of a training loop). These run the input projection, the
packing, the time loop and the products after it in one call (microkernel path only),
with OpenBLAS set to one thread inside (the compiled twin of ``plan.team``).

The steps are those of :mod:`rnnkit.kernels.lstm_loops`, equations (LSTM-1)–(LSTM-5) and
their derivatives.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rnnkit.kernels.activations import add_into
from rnnkit.kernels.blas import (
    NO_TRANS,
    TRANS,
    sgemm,
    single_threaded_begin,
    single_threaded_end,
)
from rnnkit.kernels.lstm_loops import NJ, backward_chunk, forward_chunk
from rnnkit.kernels.microkernel import pack_panels_serial

__all__ = ["all_finite", "backward", "forward"]

_ZERO = np.float32(0.0)


@njit(**NJ)
def all_finite(x):
    """True if no element of the C-contiguous float32 array ``x`` is NaN or infinite.

    Tested on the exponent bits: ``fastmath`` lets LLVM assume finite floats, so
    ``np.isfinite`` could be folded away here.
    """
    bits = x.reshape(x.size).view(np.int32)
    bad = 0
    for i in range(bits.size):
        bad |= (bits[i] & 0x7F800000) == 0x7F800000
    return bad == 0


@njit(**NJ)
def forward(
    x, W_ih, W_hh, gates, bias, a_h, h, c, tanh_c, y, lengths, units, off, src, wp, wc, wxp, fuse_x
):
    """The forward time loop with one chunk, preceded by the input projection and packing.

    ``x`` (T, B, I); ``wp`` receives the panels of ``W_hhᵀ``'s columns ``src``. The input
    projection is one product ``gates = x W_ihᵀ``, or with ``fuse_x`` made step by step
    from the panels of ``W_ihᵀ`` put in ``wxp``. Returns False, having computed nothing,
    if ``x`` holds a NaN or an infinity.
    """
    if not all_finite(x):
        return False
    T, B, I = x.shape
    GH = W_ih.shape[0]
    blas_threads = single_threaded_begin()
    if fuse_x:
        pack_panels_serial(W_ih, np.arange(I), src, True, wxp)
    else:  # W_ih x_t for all t                                                   (LSTM-1)
        x_p, w_p, g_p = x.ctypes.data, W_ih.ctypes.data, gates.ctypes.data
        sgemm(NO_TRANS, TRANS, T * B, GH, I, x_p, I, w_p, I, 0.0, g_p, GH)
    pack_panels_serial(W_hh, np.arange(W_hh.shape[1]), src, True, wp)
    for t in range(T):
        forward_chunk(
            t,
            0,
            0,
            B,
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
            True,
            x,
            wxp,
            fuse_x,
        )
    single_threaded_end(blas_threads)
    return True


@njit(**NJ)
def backward(
    x,
    W_ih,
    W_hh,
    dy,
    gates,
    h,
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
    back_rows,
    hcols,
    wpt,
    wc,
    dx,
    dW_ih,
    dW_hh,
):
    """The backward time loop with one chunk, then ``dx``, ``dW_ih``, ``dW_hh`` (LSTM-1').

    ``wpt`` (1, n_hpanels, k_max, NR) receives the panels of ``W_hh``'s rows ``back_rows``;
    ``dhp`` is zeroed here. On return ``dh`` is ∂L/∂h_0.
    """
    T, B, I = x.shape
    H = W_hh.shape[1]
    GH = W_hh.shape[0]
    blas_threads = single_threaded_begin()
    pack_panels_serial(W_hh, back_rows, hcols, False, wpt[0])
    dhp[...] = _ZERO
    k_max, n_hpanels = wpt.shape[2], wpt.shape[1]
    for t in range(T - 1, -1, -1):
        backward_chunk(
            t,
            0,
            0,
            B,
            dy,
            gates,
            c,
            tanh_c,
            dh,
            dc,
            dhp,
            da,
            0,
            da_c,
            db,
            lengths,
            units,
            off,
            wpt,
            k_max,
            n_hpanels,
            wc,
            True,
        )
    for b in range(B):  # step 0's da W_hh
        add_into(dh[b], dhp[1, 0, b, :H])
    R = T * B
    a = da.ctypes.data
    sgemm(NO_TRANS, NO_TRANS, R, I, GH, a, GH, W_ih.ctypes.data, I, 0.0, dx.ctypes.data, I)
    sgemm(TRANS, NO_TRANS, GH, I, R, a, GH, x.ctypes.data, I, 0.0, dW_ih.ctypes.data, I)
    sgemm(TRANS, NO_TRANS, GH, H, R, a, GH, h.ctypes.data, H, 0.0, dW_hh.ctypes.data, H)
    single_threaded_end(blas_threads)
