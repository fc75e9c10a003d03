"""What every kernel call does around its time loop.

Settings, the input projection before the loop, the weight gradients after it. Imported
lazily, on the first float32 call.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from rnnkit.kernels import buffers, gemm, microkernel
from rnnkit.kernels.plan import (
    Plan,
    busy_threads,
    choose_chunks,
    choose_row_blocks,
    make_plan,
    row_bounds,
    set_threads,
    workspace,
)
from rnnkit.kernels.selection import STEP_MICROKERNEL, Backend
from rnnkit.ops.sequence import incoming_grad

__all__ = [
    "Call",
    "WeightGradients",
    "fresh",
    "fresh_grad",
    "gemm_rows",
    "gemm_tn_rows",
    "input_projection",
    "lengths_of",
    "loop_threads",
    "projection_buffer",
    "readonly",
    "setup",
    "team_size",
    "weight_gradients",
]

# Below this many flops a post-loop product runs on one thread.
PARALLEL_GEMM_FLOPS = 1 << 22


class Call(NamedTuple):
    """Settings of one kernel call."""

    threads: int  # the team
    plan: Plan  # hidden-unit chunks of the time loop
    use_mk: bool  # packed microkernel (else BLAS per step)
    rows: np.ndarray  # boundaries of the blocks of rows, one block per thread ([0, B]: one)

    @property
    def serial(self) -> bool:
        """One chunk, one block, the microkernel: the call can run as one compiled function."""
        return self.plan.P == 1 and self.use_mk and len(self.rows) == 2


def setup(settings: Backend, B: int, H: int, G: int, T: int, fused_inputs: int = 0) -> Call:
    """Chunks and per-step GEMM for a call on ``T`` steps of ``B`` rows, ``G`` gate blocks.

    With the microkernel the team may split the rows instead of the units
    (:func:`rnnkit.kernels.plan.choose_row_blocks`), judged on the packed weights a step
    streams: ``W_hh``, and the ``fused_inputs`` columns of ``W_ih`` when the input
    projection is made inside the steps.
    """
    use_mk = microkernel.AVAILABLE and settings.step_gemm.startswith(STEP_MICROKERNEL)
    blocks = 1
    if use_mk:
        weight_bytes = 4 * G * H * (H + fused_inputs)
        blocks = choose_row_blocks(B, H, G, weight_bytes, settings.threads)
    P = 1 if blocks > 1 else choose_chunks(B, H, G, settings.threads)
    return Call(settings.threads, make_plan(H, G, P), use_mk, row_bounds(B, blocks))


def team_size(call: Call, flops: int) -> int:
    """Threads for a product of ``flops`` (:func:`rnnkit.kernels.plan.busy_threads`)."""
    n = busy_threads(flops, PARALLEL_GEMM_FLOPS, call.threads)
    if n > 1:
        set_threads(n)
    return n


def loop_threads(call: Call) -> bool:
    """Set Numba's thread count for the time loop; True if its chunks of units run in parallel."""
    n = max(call.plan.P, len(call.rows) - 1)
    if n > 1:
        set_threads(n)
    return call.plan.P > 1


def gemm_rows(A: np.ndarray, B: np.ndarray, C: np.ndarray, trans_b: bool, n: int) -> None:
    """``C = A @ op(B)``: split over the team, or one BLAS call (single-threaded) for one.

    Call inside :class:`rnnkit.kernels.plan.team` (OpenBLAS at one thread).
    """
    if n > 1:
        gemm.gemm_rows(A, B, C, trans_b, n)
    else:
        np.matmul(A, B.T if trans_b else B, out=C)


def gemm_tn_rows(
    A: np.ndarray,
    col0: int,
    B: np.ndarray,
    C: np.ndarray,
    row0: int,
    n_rows: int,
    n: int,
    accumulate: bool = False,
) -> None:
    """``C[row0 : row0+n_rows] (+)= A[:, col0 : col0+n_rows]ᵀ @ B``, split as :func:`gemm_rows`."""
    if n > 1:
        gemm.gemm_tn_rows(A, col0, B, C, row0, n_rows, n, 1.0 if accumulate else 0.0)
    elif accumulate:
        C[row0 : row0 + n_rows] += A[:, col0 : col0 + n_rows].T @ B
    else:
        np.matmul(A[:, col0 : col0 + n_rows].T, B, out=C[row0 : row0 + n_rows])


def lengths_of(lengths: np.ndarray | None, mask: np.ndarray | None, T: int, B: int) -> np.ndarray:
    """Sequence lengths as int64 (B,): from ``lengths``, else from a (T, B, 1) step mask."""
    if lengths is not None:
        return np.array(lengths, dtype=np.int64)
    if mask is not None:
        return np.array(mask[:, :, 0].sum(axis=0), dtype=np.int64)
    return _full_lengths(B, T)


@functools.lru_cache(maxsize=64)
def _full_lengths(B: int, T: int) -> np.ndarray:
    # Shared between calls (the kernels only read lengths); not handed out.
    return np.full(B, T, dtype=np.int64)


def input_projection(
    call: Call,
    x: np.ndarray,
    W_ih: np.ndarray,
    scratch: bool,
    name: str = "xw",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``W_ih x_t`` for every step as one product: a (T, B, G·H) float32 array.

    Fresh when it becomes the cache (the pointwise math turns it into the activated
    gates in place), from the workspace when ``scratch`` (inference), or written into
    ``out`` (a C-contiguous float32 array of that shape) when given.
    """
    T, B, I = x.shape
    GH = W_ih.shape[0]
    if out is None:
        out = projection_buffer((T, B, GH), scratch, name)
    n = team_size(call, 2 * T * B * I * GH)
    gemm_rows(readonly(x).reshape(T * B, I), readonly(W_ih), out.reshape(T * B, GH), True, n)
    return out


def projection_buffer(shape: tuple[int, int, int], scratch: bool, name: str = "xw") -> np.ndarray:
    """The (T, B, G·H) array of :func:`input_projection`: workspace if ``scratch``, else fresh."""
    return workspace().get(name, shape) if scratch else buffers.empty(shape)


def weight_gradients(
    call: Call,
    da: np.ndarray,
    x: np.ndarray,
    W_ih: np.ndarray,
    h_in: list[tuple[int, int, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``dx = da W_ih``, ``dW_ih = Σ_t daᵀ x_t`` and ``dW_hh`` as large products after the loop.

    ``h_in`` lists the row blocks of ``dW_hh``: ``(row0, n_rows, d, inp)`` gives
    ``dW_hh[row0 : row0+n_rows] = Σ_t d_tᵀ inp_t`` with ``d`` (T, B, n_rows) or the slice
    of ``da`` starting at column ``row0`` when ``d`` is ``da`` itself.
    """
    T, B, GH = da.shape
    I = x.shape[2]
    da2 = readonly(da).reshape(T * B, GH)
    x2 = readonly(x).reshape(T * B, I)
    dx = buffers.empty((T, B, I))
    dW_ih = buffers.empty((GH, I))
    n = team_size(call, 2 * T * B * GH * I)
    gemm_rows(da2, readonly(W_ih), dx.reshape(T * B, I), False, n)  # dx
    gemm_tn_rows(da2, 0, x2, dW_ih, 0, GH, n)  # dW_ih
    H = h_in[0][3].shape[2]
    dW_hh = buffers.empty((GH, H))
    for row0, n_rows, d, inp in h_in:
        d2 = readonly(d).reshape(T * B, d.shape[2])
        col0 = row0 if d is da else 0
        inp2 = readonly(inp).reshape(T * B, H)
        m = team_size(call, 2 * T * B * n_rows * H)
        gemm_tn_rows(d2, col0, inp2, dW_hh, row0, n_rows, m)
    return dx, dW_ih, dW_hh


class WeightGradients:
    """``dx``, ``dW_ih`` and ``dW_hh`` built block by block of steps, after the loop over each.

    For a backward that holds ``∂L/∂a`` for only a block of steps at a time
    (:func:`rnnkit.kernels.plan.time_block`): :meth:`add` makes that block's rows of
    ``dx = da W_ih`` and adds its share of ``dW_ih = Σ_t daᵀ x_t`` and
    ``dW_hh = Σ_t daᵀ h_{t−1}`` (``h_in[t]`` is the state entering step ``t``).
    """

    def __init__(self, call: Call, x: np.ndarray, W_ih: np.ndarray, h_in: np.ndarray) -> None:
        T, B, I = x.shape
        GH, H = W_ih.shape[0], h_in.shape[2]
        self.call, self.B = call, B
        self.x, self.W_ih, self.h_in = readonly(x), readonly(W_ih), readonly(h_in)
        self.dx = buffers.empty((T, B, I))
        self.dW_ih = buffers.empty((GH, I))
        self.dW_hh = buffers.empty((GH, H))
        self.started = False

    def add(self, t0: int, t1: int, da: np.ndarray) -> None:
        """The products of steps ``t0 : t1``, whose ``∂L/∂a`` is ``da`` (t1 − t0, B, GH)."""
        R, GH = (t1 - t0) * self.B, da.shape[2]
        I, H = self.x.shape[2], self.h_in.shape[2]
        da2 = readonly(da).reshape(R, GH)
        x2 = self.x[t0:t1].reshape(R, I)
        h2 = self.h_in[t0:t1].reshape(R, H)
        more = self.started
        n = team_size(self.call, 2 * R * GH * I)
        gemm_rows(da2, self.W_ih, self.dx[t0:t1].reshape(R, I), False, n)
        gemm_tn_rows(da2, 0, x2, self.dW_ih, 0, GH, n, accumulate=more)
        m = team_size(self.call, 2 * R * GH * H)
        gemm_tn_rows(da2, 0, h2, self.dW_hh, 0, GH, m, accumulate=more)
        self.started = True


def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only C-contiguous float32 view (or copy) of ``a``.

    Inputs reach the compiled loops always read-only and contiguous, so one compiled
    specialisation serves every call (Numba compiles per array layout and mutability).
    """
    if a.dtype == np.float32 and a.flags.c_contiguous and not a.flags.writeable:
        return a
    out = np.ascontiguousarray(a, dtype=np.float32).view()
    out.flags.writeable = False
    return out


def fresh_grad(name: str, g: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """An incoming state gradient as a new writable float32 array (zeros when None)."""
    if g is None:
        return np.zeros(shape, np.float32)
    return fresh(incoming_grad(name, g, shape, np.dtype(np.float32)))


def fresh(a: np.ndarray) -> np.ndarray:
    """A new writable C-contiguous float32 copy of ``a``."""
    return np.array(a, dtype=np.float32, order="C", copy=True)
