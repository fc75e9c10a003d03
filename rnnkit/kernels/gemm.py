"""The GEMMs of a fused sequence kernel, on raw float32 pointers inside the thread team.

Three kinds, each a building block of the loops in ``*_loops.py``:

- :func:`step_gemm` / :func:`step_gemm_back`: the recurrent product of one time step for
  one chunk of hidden units, with the packed-panel microkernel or, where it does not
  apply, a single-threaded BLAS call on a gathered copy of the weights;
- :func:`gemm_rows`, :func:`gemm_tn_rows`: the large products before and after the time
  loop (input projections, ``dx``, weight gradients), split over the team's threads,
  each thread calling single-threaded OpenBLAS.

Column layout of a step's gate block ("chunk layout"): the hidden units are split into
``P`` chunks; chunk ``k`` owns units ``units[k]:units[k+1]`` (``n`` of them) and the
columns ``off[k]:off[k+1]`` of the per-step buffers, gate-major inside the chunk
(gate ``g``, unit ``j`` at ``off[k] + g·n + j``), padded to a multiple of the panel width.
"""

from __future__ import annotations

from numba import njit, prange

from rnnkit.kernels.blas import NO_TRANS, TRANS, sgemm
from rnnkit.kernels.microkernel import NR, packed_gemm

__all__ = ["gemm_rows", "gemm_tn_rows", "step_gemm", "step_gemm_back"]

NJ = {"cache": True, "fastmath": True, "error_model": "numpy", "nogil": True}


@njit(**NJ)
def step_gemm(a, lda, M, K, k, off, wp, wc, c, ldc, use_mk, accumulate=False):
    """``C[:, off[k]:off[k+1]] (+)= A (M×K) @ W_k``: one chunk's columns of a step's product.

    ``wp`` points at panels ``(ncols/NR, K, NR)`` (microkernel) and ``wc`` at the gathered
    weights ``(ncols, K)`` with ``W_k = wc[off[k]:off[k+1]]ᵀ`` (BLAS); only the one
    selected by ``use_mk`` is read. ``accumulate`` adds to ``C``.
    """
    o = off[k]
    width = off[k + 1] - o
    if use_mk:
        packed_gemm(a, lda, M, K, wp + o * K * 4, K * NR, width // NR, c + o * 4, ldc, accumulate)
    else:
        beta = 1.0 if accumulate else 0.0
        sgemm(NO_TRANS, TRANS, M, width, K, a, lda, wc + o * K * 4, K, beta, c + o * 4, ldc)


@njit(**NJ)
def step_gemm_back(a, lda, M, K, k, o, wpt, k_max, n_hpanels, wc, H, c, ldc, use_mk):
    """``C (M×H) = A (M×K) @ wc[o:o+K]``: chunk ``k``'s partial of a step's ∂L/∂h_{t−1}.

    ``wpt`` points at the chunk panels ``(P, n_hpanels, k_max, NR)`` (rows of the chunk's
    weight block, columns the hidden units padded to ``n_hpanels·NR``), ``wc`` at the
    gathered weights ``(ncols, H)`` for the BLAS path.
    """
    if use_mk:
        stride = k_max * NR
        packed_gemm(a, lda, M, K, wpt + k * n_hpanels * stride * 4, stride, n_hpanels, c, ldc)
    else:
        sgemm(NO_TRANS, NO_TRANS, M, H, K, a, lda, wc + o * H * 4, H, 0.0, c, ldc)


@njit(parallel=True, **NJ)
def gemm_rows(A, B, C, trans_b, n_threads):
    """``C = A @ op(B)`` (op = transpose when ``trans_b``), rows split over the team."""
    M, N = C.shape
    K = A.shape[1]
    ldb = B.shape[1]
    tb = TRANS if trans_b else NO_TRANS
    for q in prange(n_threads):
        r0 = q * M // n_threads
        r1 = (q + 1) * M // n_threads
        sgemm(
            NO_TRANS,
            tb,
            r1 - r0,
            N,
            K,
            A.ctypes.data + r0 * K * 4,
            K,
            B.ctypes.data,
            ldb,
            0.0,
            C.ctypes.data + r0 * N * 4,
            N,
        )


@njit(parallel=True, **NJ)
def gemm_tn_rows(A, col0, B, C, row0, n_rows, n_threads, beta):
    """``C[rows] = A[:, col0 : col0+n_rows]ᵀ @ B + beta·C[rows]``, split over the team.

    ``rows`` is ``row0 : row0+n_rows``.
    The weight gradients ``dW = Σ_t daᵀ x_t`` as one product over all ``T·B`` rows
    (``beta = 1`` accumulates into ``C``).
    """
    R, lda = A.shape
    N = B.shape[1]
    for q in prange(n_threads):
        r0 = q * n_rows // n_threads
        r1 = (q + 1) * n_rows // n_threads
        sgemm(
            TRANS,
            NO_TRANS,
            r1 - r0,
            N,
            R,
            A.ctypes.data + (col0 + r0) * 4,
            lda,
            B.ctypes.data,
            N,
            beta,
            C.ctypes.data + (row0 + r0) * N * 4,
            N,
        )
