"""Memory of the kernels: a workspace for scratch, a pool for the arrays they hand out.

Scratch (per-step buffers, packed weights, the backward's ``∂L/∂a``) lives in a
persistent per-thread :func:`workspace`, one buffer per name, grown when needed.

Arrays a call hands out (the cache, outputs, gradients) must be fresh, but allocating
them fresh costs page faults: large NumPy arrays are mapped from the OS on every call and
each first touch of a 4 KiB page traps (several µs on a virtual machine, a large share of
a training step). :func:`empty` therefore recycles their memory: it keeps the buffers it
gave out and reuses one once nothing refers to it any more (its reference count says so:
a live array, view or cache holding it keeps it out of reuse). Small arrays come from
``np.empty``.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

__all__ = ["empty", "workspace"]

POOL_MIN_BYTES = 1 << 16  # smaller arrays come from np.empty
POOL_MAX_BUFFERS = 64  # free buffers beyond this many are released, oldest first
_ALIGN = 16  # floats: buffers start on a 64-byte cache line


def _aligned(size: int) -> tuple[np.ndarray, int]:
    """A new float32 buffer of at least ``size`` floats, and the offset of its first line."""
    raw = np.empty(size + _ALIGN, dtype=np.float32)
    return raw, (-raw.ctypes.data % (4 * _ALIGN)) // 4


class _Workspace(threading.local):
    """Scratch buffers reused across calls, one set per Python thread."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], zero: bool = False) -> np.ndarray:
        """An uninitialised (or zeroed) C-contiguous float32 array of ``shape``."""
        size = math.prod(shape)
        buf = self.buffers.get(name)
        if buf is None or buf.size < size:
            raw, skip = _aligned(max(size, 1))
            buf = self.buffers[name] = raw[skip : skip + max(size, 1)]
        out = buf[:size].reshape(shape)
        if zero:
            out[...] = 0.0
        return out

    def clear(self) -> None:
        """Release every buffer."""
        self.buffers.clear()


class _Pool(threading.local):
    """Buffers handed out by :func:`empty`; one pool per Python thread."""

    def __init__(self) -> None:
        # (buffer, offset of its first cache-line-aligned float); views are handed out.
        # The offset is kept because reading an address (``.ctypes.data``) costs µs.
        self.owners: list[tuple[np.ndarray, int]] = []

    def _free(self, i: int) -> bool:
        # References: the owner's tuple and getrefcount's argument. Any view handed out
        # (and anything built on it) holds one more through its ``base``.
        return sys.getrefcount(self.owners[i][0]) == 2

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        size = math.prod(shape)
        best, best_size = -1, 0
        for i in range(len(self.owners)):
            cap = self.owners[i][0].size - _ALIGN
            if size <= cap <= 2 * size and (best < 0 or cap < best_size) and self._free(i):
                best, best_size = i, cap
        if best >= 0:
            raw, skip = self.owners.pop(best)
        else:
            raw, skip = _aligned(size)
            self._trim()
        self.owners.append((raw, skip))  # most recently used last
        return raw[skip : skip + size].reshape(shape)

    def _trim(self) -> None:
        free = [i for i in range(len(self.owners)) if self._free(i)]
        for i in reversed(free[: max(0, len(free) - POOL_MAX_BUFFERS + 1)]):
            del self.owners[i]

    def clear(self) -> None:
        """Forget every buffer (arrays handed out stay valid: they hold their memory)."""
        self.owners.clear()


_WORKSPACE = _Workspace()
_POOL = _Pool()


def workspace() -> _Workspace:
    """This thread's workspace."""
    return _WORKSPACE


def empty(shape: tuple[int, ...]) -> np.ndarray:
    """A new, uninitialised C-contiguous float32 array of ``shape`` (recycled memory).

    The memory is exclusively the caller's for as long as the array, a view of it or any
    object holding one is alive.
    """
    if 4 * math.prod(shape) < POOL_MIN_BYTES:
        return np.empty(shape, dtype=np.float32)
    return _POOL.empty(tuple(shape))
