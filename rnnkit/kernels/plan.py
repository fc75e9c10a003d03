"""How one kernel call is laid out: rows or units per thread, packed weights, workspace.

A call on one thread runs every step itself (``P = 1``: a step's recurrent product too
small to repay a fork-join, or one thread). A team splits the call one of two ways:

- by rows (:func:`choose_row_blocks`; RNN, LSTM, reset-after GRU): each thread runs every
  step of its own block of the batch, with all the units, so the time loop needs no
  fork-join at all; used while the packed weights every thread then streams fit
  ``ROW_SPLIT_MAX_BYTES``;
- by units: the ``H`` hidden units in ``P`` chunks, one per thread. Thread ``k``
  computes its chunk's columns of every gate in a step (the GEMM, then the fused
  pointwise math on the same units), so a step needs one fork-join and no thread waits
  on another inside it. See :mod:`rnnkit.kernels.gemm` for the chunk layout of the
  columns.

Per-step buffers, packed weights and the backward's ``∂L/∂a`` scratch live in a
persistent per-thread workspace; arrays that outlive the call (caches, outputs,
gradients) are always fresh.
"""

from __future__ import annotations

import functools
import threading
from typing import NamedTuple

import numba
import numpy as np

from rnnkit.kernels.blas import blas_threads, set_blas_threads
from rnnkit.kernels.buffers import workspace
from rnnkit.kernels.microkernel import MR, NR, VL, pack_panels, pack_panels_serial

__all__ = [
    "Plan",
    "Weights",
    "busy_threads",
    "choose_chunks",
    "choose_row_blocks",
    "fuse_input",
    "make_plan",
    "pack",
    "pack_back",
    "panels",
    "row_bounds",
    "set_threads",
    "team",
    "time_block",
    "workspace",
]

# A step whose recurrent product has fewer flops than this runs on one thread (a
# fork-join costs 1–2 µs). Measured on 2 cores, with the output layer's GEMMs and the loss
# on the team too (rnnkit.kernels.dense, .losses): the PTB-small training loop
# (B=20, H=200: 6.4 MFLOP a step) takes the same time per window with its time loops on
# one or two threads (66–85 ms either way, run to run), and an LSTM layer at B=32, H=128
# (4.2 MFLOP) trains in 22 ms on two against 31 ms on one.
PARALLEL_STEP_FLOPS = 1 << 20
# An LSTM call with at least this many rows per step (and the microkernel) makes its input
# projection inside each step (``W_ih x_t`` on the microkernel, added to by ``W_hh h_{t−1}``)
# instead of as one product before the loop: the (T, B, 4H) product is then never
# written out and read back. Alone, the per-step products took 2.4 against OpenBLAS's
# 4.0 ms at (T, B, I, 4H) = (100, 32, 64, 512), 19 against 24 at (100, 64, 128, 1024) and
# 87 against 95 at (50, 64, 512, 2048), but 90 against 82 at B = 16 (one thread each).
# In the layer, though, each step then streams the packed W_ih as well as W_hh: with
# I = 512, H = 512 (4 MiB of W_ih) inference got ~10 % slower, so only a W_ih of at most
# FUSED_INPUT_MAX_BYTES (this host's per-core L2) is fused.
FUSED_INPUT_MIN_ROWS = 32
FUSED_INPUT_MAX_BYTES = 1 << 19


def fuse_input(use_mk: bool, B: int, I: int, GH: int) -> bool:
    """Whether an LSTM call makes its input projection inside the steps (see above)."""
    return use_mk and B >= FUSED_INPUT_MIN_ROWS and 4 * GH * I <= FUSED_INPUT_MAX_BYTES


# Rows instead of units. A step split by units has each thread write every row of the
# step's arrays (gates, h, c, y) in pieces of its units interleaved with the other
# threads' pieces. Measured on 2 cores (AMD Zen 4), the gate math of an LSTM step at
# B = 32, H = 128 then took longer on two threads than on one (10–15 against 7–9 µs);
# split by rows it took 4.6–5.8 µs. Rows do not depend on each other, so each thread can also run
# every step of its own rows with no fork-join at all. The price: every thread streams
# all the packed weights on every step. Whole LSTM layers on that host, rows against
# units (benchmarks/README.md, session 10): inference 4.3–4.8 against 5.9–6.1 ms at
# (B, T, I, H) = (32, 100, 64, 128), 28.0 against 28.5–29.0 at (64, 100, 128, 256) and
# 69–70 against 74–77 at (64, 50, 512, 512), with 4 MiB of weights a step; training no
# slower anywhere; the RNN and both GRUs gain likewise (the reset-before GRU, whose step has
# two fork-joins by units, most: training 11.1–11.4 against 14.1–14.3 ms at (32, 100, 64,
# 128), session 11). So rows are used up to ROW_SPLIT_MAX_BYTES of weights a step, with at
# least one full register tile of rows (MR) per thread.
ROW_SPLIT_MAX_BYTES = 1 << 22


def choose_row_blocks(B: int, H: int, G: int, weight_bytes: int, threads: int) -> int:
    """Blocks of rows a call's team splits into (1: split by units, or one thread).

    ``weight_bytes``: the packed weights a step streams (``W_hh``, and ``W_ih`` when the
    input projection is made in the steps).
    """
    step_flops = 2 * B * H * G * H
    if busy_threads(step_flops, PARALLEL_STEP_FLOPS, threads) == 1:
        return 1  # a step too small to repay a fork-join
    if weight_bytes > ROW_SPLIT_MAX_BYTES:
        return 1
    blocks = min(threads, B // MR)
    return blocks if blocks >= 2 else 1


@functools.lru_cache(maxsize=64)
def row_bounds(B: int, blocks: int) -> np.ndarray:
    """Boundaries of ``blocks`` blocks of rows ``0:B``, on multiples of MR where B allows.

    Cached: the array must not be modified.
    """
    step = MR if blocks * MR <= B else 1
    inner = [round(q * B / blocks / step) * step for q in range(blocks)]
    return np.array([*inner, B], dtype=np.int64)


# The LSTM's backward holds ∂L/∂a (T, B, 4H) for a block of steps at a time and makes the
# weight gradients of each block right after it (``driver.WeightGradients``): about
# TIME_BLOCK_BYTES of it, but at least TIME_BLOCK_MIN_ROWS rows (steps × B) per block,
# so that each block's products stay large. At (B, T, H) = (32, 100, 128) that is 16
# steps, 1 MiB instead of 6.25 MiB: the training step's peak RSS fell from 17.5–19.3 MiB
# to 12.75 (PyTorch: 14.4), with no time difference that the noise of this host (±20 %
# between rounds) would show (benchmarks/README.md, session 10).
TIME_BLOCK_BYTES = 1 << 20
TIME_BLOCK_MIN_ROWS = 512


def time_block(T: int, B: int, GH: int) -> int:
    """Steps per block of the backward's ∂L/∂a (see above); ``T`` for a short sequence."""
    steps = max(-(-TIME_BLOCK_MIN_ROWS // B), TIME_BLOCK_BYTES // (4 * B * GH))
    return max(1, min(T, steps))


# Packing fewer elements than this runs on one thread.
PARALLEL_PACK_SIZE = 1 << 18


class Plan(NamedTuple):
    """Chunks of the hidden units and the chunk layout of a step's ``G`` gate blocks."""

    P: int  # chunks (= threads of the time loop)
    G: int  # gate blocks laid out
    H: int
    units: np.ndarray  # (P+1,) int64 chunk k owns units[k]:units[k+1]
    off: np.ndarray  # (P+1,) int64 chunk k owns columns off[k]:off[k+1]
    src: np.ndarray  # (ncols,) int64 row of W_hh feeding each column, -1 for padding
    unit: np.ndarray  # (ncols,) int64 hidden unit of each column, -1 for padding
    k_max: int  # largest G·n over the chunks
    n_hpanels: int  # panels covering H columns (the backward's output)
    back_rows: np.ndarray  # (P, k_max) int64 rows of W_hh behind chunk k's columns, -1 after
    hcols: np.ndarray  # (n_hpanels·NR,) int64 0..H-1, then -1

    @property
    def ncols(self) -> int:
        """Width of a step's gate block in chunk layout."""
        return int(self.off[-1])

    @property
    def hpad(self) -> int:
        """``H`` rounded up to whole panels: the row stride of the backward's partials."""
        return self.n_hpanels * NR


class Weights(NamedTuple):
    """A recurrent weight block packed for a step's product.

    For :func:`rnnkit.kernels.gemm.step_gemm` (forward) or
    :func:`rnnkit.kernels.gemm.step_gemm_back` (backward); the unused one of the two is a
    1-element placeholder.
    """

    panels: np.ndarray  # microkernel panels
    gathered: np.ndarray  # BLAS operand


def busy_threads(flops: int, threshold: int, threads: int) -> int:
    """How many of ``threads`` a parallel piece of work of ``flops`` keeps busy.

    One below ``threshold`` (the size measured to repay a fork-join on two threads), else
    as many as get at least half of it each: every thread on this 2-core machine. On a
    machine with many cores a small product then uses fewer threads than it has, rather
    than many tiny, mostly padded shares whose fork-join costs more than their work (an
    extrapolation of the 2-core threshold, not measured on such a machine).
    """
    if threads <= 1 or flops < threshold:
        return 1
    return min(threads, flops // (threshold // 2)) if threshold >= 2 else threads


def choose_chunks(B: int, H: int, G: int, threads: int) -> int:
    """Number of chunks for a step (:func:`busy_threads` of its product, at most ``H``)."""
    return min(H, busy_threads(2 * B * H * G * H, PARALLEL_STEP_FLOPS, threads))


@functools.lru_cache(maxsize=64)
def make_plan(H: int, G: int, P: int, base: int = 0) -> Plan:
    """Chunk ``P`` ways the ``G`` gate blocks of ``W_hh`` rows ``base : base + G·H``.

    Chunk boundaries fall on multiples of the vector width where ``H`` allows. Plans are
    cached: their arrays must not be modified.
    """
    step = VL if H >= P * VL else 1
    units = np.array([round(k * H / P / step) * step for k in range(P)] + [H], dtype=np.int64)
    widths = [-(-G * int(units[k + 1] - units[k]) // NR) * NR for k in range(P)]
    off = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    src = np.full(int(off[-1]), -1, dtype=np.int64)
    unit = np.full(int(off[-1]), -1, dtype=np.int64)
    for k in range(P):
        n = int(units[k + 1] - units[k])
        for g in range(G):
            cols = slice(int(off[k]) + g * n, int(off[k]) + (g + 1) * n)
            unit[cols] = np.arange(units[k], units[k + 1])
            src[cols] = base + g * H + unit[cols]
    k_max = max(G * int(units[k + 1] - units[k]) for k in range(P))
    back_rows = np.full((P, k_max), -1, dtype=np.int64)
    for k in range(P):
        n_rows = G * int(units[k + 1] - units[k])
        back_rows[k, :n_rows] = src[off[k] : off[k] + n_rows]
    n_hpanels = -(-H // NR)
    hcols = np.arange(n_hpanels * NR, dtype=np.int64)
    hcols[H:] = -1
    return Plan(P, G, H, units, off, src, unit, k_max, n_hpanels, back_rows, hcols)


_PLACEHOLDER = np.zeros((1, 1, 1), dtype=np.float32)


def _packer(threads: int, size: int):
    """The parallel packer with the team's threads for a large block, else the serial one."""
    if threads > 1 and size >= PARALLEL_PACK_SIZE:
        set_threads(threads)
        return pack_panels
    return pack_panels_serial


def pack(
    W: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    transpose: bool,
    use_mk: bool,
    name: str,
    threads: int,
) -> Weights:
    """Pack the operand ``S`` (K, ncols) of a step's forward product.

    ``S[k, c] = W[rows[k], cols[c]]`` (``W[cols[c], rows[k]]`` if ``transpose``); -1
    indices give zeros.
    """
    K, ncols = len(rows), len(cols)
    if use_mk:
        panels = workspace().get(name, (ncols // NR, K, NR))
        _packer(threads, K * ncols)(W, rows, cols, transpose, panels)
        return Weights(panels, _PLACEHOLDER)
    gathered = workspace().get(name, (ncols, K))
    S = (W[cols][:, rows] if transpose else W[rows][:, cols].T) if K and ncols else gathered
    gathered[...] = S
    gathered[cols < 0] = 0.0
    gathered[:, rows < 0] = 0.0
    return Weights(_PLACEHOLDER, gathered)


def panels(plan: Plan, backward: bool, name: str = "w_pack", K: int = 0) -> Weights:
    """Workspace for the packed panels of :func:`pack` or :func:`pack_back`.

    Forward: the ``K`` rows (default ``H``: ``W_hhᵀ``; ``I`` for ``W_ihᵀ``) of every
    column. For the one-chunk loops that pack inside their own compiled call.
    """
    if backward:
        shape: tuple[int, ...] = (plan.P, plan.n_hpanels, plan.k_max, NR)
    else:
        shape = (plan.ncols // NR, K or plan.H, NR)
    return Weights(workspace().get(name, shape), _PLACEHOLDER)


def pack_back(W: np.ndarray, plan: Plan, use_mk: bool, name: str, threads: int) -> Weights:
    """Pack the rows ``plan.src`` of ``W`` for the backward products ``da_k @ W[rows_k]``."""
    if use_mk:
        panels = workspace().get(name, (plan.P, plan.n_hpanels, plan.k_max, NR))
        packer = _packer(threads, plan.k_max * plan.hpad)
        for k in range(plan.P):
            packer(W, plan.back_rows[k], plan.hcols, False, panels[k])
        return Weights(panels, _PLACEHOLDER)
    gathered = workspace().get(name, (plan.ncols, plan.H))
    gathered[...] = W[np.maximum(plan.src, 0)]
    gathered[plan.src < 0] = 0.0
    return Weights(_PLACEHOLDER, gathered)


class _Threads(threading.local):
    current = 0  # Numba's thread count as set inside the current team (0: not touched)
    before = 0  # Numba's thread count before the team touched it


_THREADS = _Threads()


def set_threads(n: int) -> None:
    """Set Numba's thread count for the next parallel region (a no-op if it already is)."""
    state = _THREADS
    if state.current == n:
        return
    if state.current == 0:
        state.before = numba.get_num_threads()
        state.current = state.before
        if state.before == n:
            return
    numba.set_num_threads(n)
    state.current = n


class team:  # noqa: N801 (used like a function: ``with team():``)
    """Context of a kernel call: OpenBLAS at one thread, Numba's thread count restored after.

    ``team(n)`` with ``n > 1`` also sets Numba's thread count to ``n`` on entry.
    """

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads

    def __enter__(self) -> None:
        _THREADS.current = 0
        self.blas_before = blas_threads()
        if self.blas_before != 1:
            set_blas_threads(1)
        if self.threads > 1:
            set_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        if self.blas_before != 1:
            set_blas_threads(self.blas_before)
        state = _THREADS
        if state.current not in (0, state.before):
            numba.set_num_threads(state.before)
        state.current = 0
