"""Single-precision GEMM from NumPy's own OpenBLAS, callable from Numba-compiled code.

The kernels call ``cblas_sgemm`` of the OpenBLAS that NumPy already loaded (the 64-bit
integer build that NumPy wheels bundle), so NumPy and the kernels use one BLAS. The
symbol is registered with LLVM under a fixed name and bound as a Numba
``ExternalFunction``, which keeps every function that calls it cacheable
(``cache=True``); a ctypes pointer would not be.

OpenBLAS is only ever called single-threaded, from inside the kernels' own thread team:
its thread count is switched to 1 for the duration of a kernel call
(:class:`rnnkit.kernels.plan.team`), so its worker threads never spin against Numba's.

Importing this module raises :class:`BlasUnavailableError` when no suitable library is
found; the kernel selection then falls back to the reference ops and reports why.
"""

from __future__ import annotations

import ctypes
import glob
import os
from typing import NamedTuple

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types

__all__ = [
    "NO_TRANS",
    "TRANS",
    "BlasUnavailableError",
    "blas_threads",
    "library",
    "set_blas_threads",
    "sgemm",
    "single_threaded_begin",
    "single_threaded_end",
]

_SGEMM = ("scipy_cblas_sgemm64_", "cblas_sgemm64_")
_SET_THREADS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_")
_GET_THREADS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_")
_CORENAME = ("scipy_openblas_get_corename64_", "openblas_get_corename64_")

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


class BlasUnavailableError(RuntimeError):
    """No 64-bit-integer OpenBLAS with ``cblas_sgemm`` is loaded by NumPy."""


class BlasLibrary(NamedTuple):
    """The OpenBLAS in use: its file, kernel (core) name and thread-count controls."""

    path: str
    corename: str
    set_threads: ctypes._CFuncPtr
    get_threads: ctypes._CFuncPtr


def _candidate_paths() -> list[str]:
    """Files of the BLAS NumPy loaded: threadpoolctl's view if installed, else NumPy's wheel."""
    paths = []
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # optional: the wheel layout below covers NumPy's own builds
        pass
    else:
        paths += [d["filepath"] for d in threadpool_info() if d.get("internal_api") == "openblas"]
    root = os.path.dirname(os.path.dirname(np.__file__))
    for pattern in ("numpy.libs/*openblas*", "numpy/.libs/*openblas*", "numpy/.dylibs/*openblas*"):
        paths += sorted(glob.glob(os.path.join(root, pattern)))
    return paths


def _symbol(lib: ctypes.CDLL, names: tuple[str, ...]) -> ctypes._CFuncPtr | None:
    for name in names:
        if hasattr(lib, name):
            return getattr(lib, name)
    return None


def _bind() -> BlasLibrary:
    tried = []
    for path in _candidate_paths():
        try:
            lib = ctypes.CDLL(os.path.realpath(path))
        except OSError:
            tried.append(path)
            continue
        sgemm_fn, set_fn = _symbol(lib, _SGEMM), _symbol(lib, _SET_THREADS)
        get_fn, core_fn = _symbol(lib, _GET_THREADS), _symbol(lib, _CORENAME)
        if sgemm_fn is None or set_fn is None or get_fn is None:
            tried.append(path)
            continue
        for name, fn in (
            ("rnnkit_cblas_sgemm64", sgemm_fn),
            ("rnnkit_openblas_set_threads", set_fn),
            ("rnnkit_openblas_get_threads", get_fn),
        ):
            llvm.add_symbol(name, ctypes.cast(fn, ctypes.c_void_p).value)
        get_fn.restype = ctypes.c_int
        corename = "unknown"
        if core_fn is not None:
            core_fn.restype = ctypes.c_char_p
            corename = core_fn().decode()
        return BlasLibrary(os.path.realpath(path), corename, set_fn, get_fn)
    raise BlasUnavailableError(
        "expected NumPy's 64-bit-integer OpenBLAS (symbols scipy_cblas_sgemm64_ or "
        f"cblas_sgemm64_); found none in {tried or 'the NumPy installation'}. "
        "Install NumPy from its wheels, or use the reference ops (RNNKIT_KERNELS=reference)."
    )


_LIB = _bind()

_p, _i = types.uintp, types.int64
_cblas_sgemm = types.ExternalFunction(
    "rnnkit_cblas_sgemm64",
    types.void(
        types.int32,
        types.int32,
        types.int32,
        _i,
        _i,
        _i,
        types.float32,
        _p,
        _i,
        _p,
        _i,
        types.float32,
        _p,
        _i,
    ),
)

_openblas_set_threads = types.ExternalFunction(
    "rnnkit_openblas_set_threads", types.void(types.int32)
)
_openblas_get_threads = types.ExternalFunction("rnnkit_openblas_get_threads", types.int32())


def library() -> BlasLibrary:
    """The OpenBLAS the kernels call (path, kernel name, thread controls)."""
    return _LIB


@njit(cache=True, nogil=True)
def sgemm(trans_a, trans_b, M, N, K, a, lda, b, ldb, beta, c, ldc):  # pragma: no cover
    """``C = op(A) @ op(B) + beta·C`` on raw row-major float32 pointers (bytes addresses).

    ``trans_a``/``trans_b`` are :data:`NO_TRANS` or :data:`TRANS`; ``M, N, K`` and the
    leading dimensions ``lda, ldb, ldc`` count elements. Nothing is done when M, N or K is 0.
    """
    if M > 0 and N > 0 and K > 0:
        _cblas_sgemm(
            ROW_MAJOR,
            trans_a,
            trans_b,
            M,
            N,
            K,
            np.float32(1.0),
            a,
            lda,
            b,
            ldb,
            np.float32(beta),
            c,
            ldc,
        )


@njit(cache=True, nogil=True)
def single_threaded_begin():  # pragma: no cover (compiled)
    """From compiled code: set OpenBLAS to one thread; return the count to restore.

    The compiled twin of entering :class:`rnnkit.kernels.plan.team` (no ctypes call).
    """
    before = _openblas_get_threads()
    if before != 1:
        _openblas_set_threads(1)
    return before


@njit(cache=True, nogil=True)
def single_threaded_end(before):  # pragma: no cover (compiled)
    """From compiled code: restore OpenBLAS's thread count ``before``."""
    if before != 1:
        _openblas_set_threads(before)


def blas_threads() -> int:
    """OpenBLAS's current thread count."""
    return _LIB.get_threads()


def set_blas_threads(n: int) -> None:
    """Set OpenBLAS's thread count (the kernels set 1 for the duration of a call)."""
    _LIB.set_threads(n)
