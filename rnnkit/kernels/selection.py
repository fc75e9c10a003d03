"""Which path runs a sequence op: the fused Numba kernels or the reference ops, and why.

Rules, in order:

1. float64 always runs the reference ops of :mod:`rnnkit.ops` (gradient checks use it).
2. ``use_backend("reference")`` / :func:`use_reference` (a context manager, per thread)
   or the environment variable ``RNNKIT_KERNELS=reference`` force the reference.
3. Otherwise float32 runs the kernels if they can: Numba imports, NumPy's 64-bit OpenBLAS
   is found. If not, the reference runs and :func:`backend` says why.

Threads: ``RNNKIT_NUM_THREADS`` (default: the cores this process may run on, capped by
Numba's pool ``NUMBA_NUM_THREADS``); with Numba's ``workqueue`` threading layer, whose
fork-join is far too slow for one per time step, the kernels use one thread.
``RNNKIT_STEP_GEMM=blas`` replaces the register-blocked microkernel of the per-step
product by a BLAS call per step (the fallback used where the CPU features Numba compiles
for lack AVX2 and FMA; see :mod:`rnnkit.kernels.microkernel`).
Nothing here imports Numba until a float32 op first asks.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

__all__ = ["Backend", "backend", "kernels_active", "use_backend", "use_reference"]

ENV_BACKEND = "RNNKIT_KERNELS"
ENV_THREADS = "RNNKIT_NUM_THREADS"
ENV_STEP_GEMM = "RNNKIT_STEP_GEMM"
BACKENDS = ("numba", "reference")
STEP_MICROKERNEL = "packed microkernel"

_log = logging.getLogger("rnnkit.kernels")
_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar("rnnkit_kernels", default=None)


class Backend(NamedTuple):
    """The path a float32 sequence op takes now, and its settings."""

    name: str  # "numba" or "reference"
    reason: str  # why this path
    threads: int  # threads of the kernels' team (1 for the reference)
    step_gemm: str  # how the per-step recurrent product runs ("" for the reference)
    blas: str  # the BLAS the kernels call ("" for the reference)


class _Probe(NamedTuple):
    ok: bool
    reason: str  # why not, when not ok
    pool: int  # Numba's thread pool size
    layer: str  # Numba's threading layer
    microkernel: bool
    microkernel_info: str
    blas: str


def _env_choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = os.environ.get(name, default).strip().lower() or default
    if value not in allowed:
        raise ValueError(
            f"environment variable {name} must be one of {allowed}; got {value!r}. "
            f"Unset it or pick one of those."
        )
    return value


@functools.cache
def _cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _threads_wanted(numba_pool: int) -> tuple[int, str]:
    raw = os.environ.get(ENV_THREADS, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(
                f"environment variable {ENV_THREADS} must be a positive integer; got {raw!r}."
            )
        wanted, why = int(raw), f"{ENV_THREADS}={raw}"
    else:
        wanted, why = _cores(), "the cores available"
    if wanted > numba_pool:
        return numba_pool, f"{why}, capped by NUMBA_NUM_THREADS={numba_pool}"
    return wanted, why


@functools.cache
def _probe() -> _Probe:
    """Import Numba and bind the BLAS once; report what works."""
    try:
        import numba
        from numba.np.ufunc import parallel

        from rnnkit.kernels import numba_cache

        numba_cache.refresh()  # before any kernel is compiled or loaded from the cache
        from rnnkit.kernels import blas, microkernel
    except (ImportError, RuntimeError) as e:  # BlasUnavailableError is a RuntimeError
        return _Probe(False, f"kernels unavailable: {e}", 1, "", False, "", "")
    try:
        parallel._launch_threads()
        layer = numba.threading_layer()
    except (ValueError, AttributeError, RuntimeError):  # pragma: no cover (numba internals)
        layer = "unknown"
    lib = blas.library()
    info = f"OpenBLAS {lib.corename} kernel ({os.path.basename(lib.path)})"
    pool = numba.config.NUMBA_NUM_THREADS
    return _Probe(True, "", pool, layer, microkernel.AVAILABLE, microkernel.DESCRIPTION, info)


def backend(dtype: type | np.dtype = np.float32) -> Backend:
    """Which path a sequence op on arrays of ``dtype`` takes now, and why.

    Examples
    --------
    >>> backend(np.float64).name
    'reference'
    >>> with use_reference():
    ...     backend().reason
    'forced by use_reference() / use_backend("reference")'
    """
    if np.dtype(dtype) != np.float32:
        return Backend("reference", f"{np.dtype(dtype)} always runs the reference ops", 1, "", "")
    return _float32_backend(_forced.get(), *_switches())


_SWITCHES = (ENV_BACKEND, ENV_THREADS, ENV_STEP_GEMM)


def _switches() -> tuple[object, object, object]:
    """The raw values of the three environment switches: the cache key of :func:`backend`.

    Read on every op, so read cheaply: ``os.environ.get`` of an unset name raises and
    catches a ``KeyError`` inside (about 2 µs each); the mapping's own dict of encoded
    names and values answers in nanoseconds and follows every ``os.environ`` change.
    """
    env = os.environ
    data = getattr(env, "_data", None)
    if type(data) is not dict:  # not CPython's os._Environ
        return env.get(ENV_BACKEND), env.get(ENV_THREADS), env.get(ENV_STEP_GEMM)
    get = data.get
    k_backend, k_threads, k_step = _encoded_switches(env.encodekey)
    return get(k_backend), get(k_threads), get(k_step)


@functools.cache
def _encoded_switches(encodekey: object) -> tuple:
    return tuple(encodekey(name) for name in _SWITCHES)  # type: ignore[operator]


@functools.lru_cache(maxsize=32)
def _float32_backend(
    forced: str | None, env_backend: object, env_threads: object, env_step: object
) -> Backend:
    """:func:`backend` for float32, cached on the switches it reads (it runs on every op).

    The ``env_*`` arguments are only the cache key; the switches are read from
    ``os.environ`` inside.
    """
    if forced == "reference":
        why = 'forced by use_reference() / use_backend("reference")'
        return Backend("reference", why, 1, "", "")
    if forced is None and _env_choice(ENV_BACKEND, BACKENDS, "numba") == "reference":
        return Backend("reference", f"forced by {ENV_BACKEND}=reference", 1, "", "")
    probe = _probe()
    if not probe.ok:
        return Backend("reference", probe.reason, 1, "", "")
    threads, why = _threads_wanted(probe.pool)
    if probe.layer == "workqueue" and threads > 1:
        threads, why = 1, "Numba's workqueue threading layer; install libgomp or TBB for threads"
    blas_step = _env_choice(ENV_STEP_GEMM, ("microkernel", "blas"), "microkernel") == "blas"
    if blas_step:
        step = f"BLAS per step ({ENV_STEP_GEMM}=blas)"
    elif probe.microkernel:
        step = f"{STEP_MICROKERNEL}, {probe.microkernel_info}"
    else:
        step = "BLAS per step (no AVX2/AVX-512 microkernel for this CPU)"
    why = f"float32 with Numba; threads: {threads} ({why})"
    return Backend("numba", why, threads, step, probe.blas)


def kernels_active(dtype: np.dtype) -> Backend | None:
    """The kernels' settings if a float32 op on ``dtype`` runs them now, else None."""
    if dtype != np.float32:
        return None
    b = backend(dtype)
    if b.name != "numba":
        _log.debug("rnnkit.kernels: reference path (%s)", b.reason)
        return None
    return b


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the block on ``name`` ("numba" or "reference"), for this thread/context only.

    ``use_backend("numba")`` overrides ``RNNKIT_KERNELS=reference``; it still falls back to
    the reference when the kernels cannot run (see :func:`backend`).
    """
    if name not in BACKENDS:
        raise ValueError(f"`name` must be one of {BACKENDS}; got {name!r}.")
    token = _forced.set(name)
    try:
        yield
    finally:
        _forced.reset(token)


def use_reference() -> contextlib.AbstractContextManager[None]:
    """Force the reference ops inside a ``with`` block (this thread/context only)."""
    return use_backend("reference")
