"""Numba's on-disk cache of the kernels, kept in step with all of their sources.

Numba drops a function's cached machine code when that function's own source file
changes, not when a function it compiles in from another file does: the one-chunk LSTM
(:mod:`rnnkit.kernels.lstm_serial`) compiles ``lstm_loops.forward_chunk`` into itself, so
a checkout that edits only ``lstm_loops.py`` would go on running the old code.
:func:`refresh` runs once, when the kernels are first probed (before any of them is
compiled or loaded): if the sources of this package differ from those the cache was
written from (a SHA-256 in a stamp file beside the cache), it removes the kernels' cached
code, which then compiles afresh. A clean install or a copy with new files is not
affected either way; this is for checkouts edited in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from numba import njit

__all__ = ["STAMP_NAME", "cache_dir", "refresh", "source_hash"]

STAMP_NAME = "rnnkit-kernels.sha256"
_HERE = Path(__file__).resolve().parent


@njit(cache=True)
def _anchor() -> int:  # pragma: no cover (never called: only its cache location is used)
    return 0


def source_hash(directory: Path = _HERE) -> str:
    """SHA-256 over the names and contents of the package's ``*.py`` files, in name order."""
    h = hashlib.sha256()
    for path in sorted(directory.glob("*.py")):
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def cache_dir() -> Path | None:
    """Where Numba caches this package's functions (its own choice of locator), or None."""
    try:
        return Path(_anchor._cache._cache_path)
    except (AttributeError, TypeError):  # pragma: no cover (Numba internals changed)
        return None


def refresh(directory: Path | None = None, sources: Path = _HERE) -> bool:
    """Remove the cached kernels if they were compiled from other sources; True if removed.

    Only files of modules of this package (``<module>.<function>-<line>.*.nbi``/``.nbc``)
    are removed. Errors of the file system (a read-only cache, a race with another
    process doing the same) leave the cache to Numba.
    """
    where = cache_dir() if directory is None else directory
    if where is None or not where.is_dir():
        return False
    want = source_hash(sources)
    stamp = where / STAMP_NAME
    try:
        if stamp.read_text() == want:
            return False
    except OSError:
        pass
    modules = {path.stem for path in sources.glob("*.py")}
    for path in list(where.glob("*.nb[ic]")):
        if path.name.split(".", 1)[0] in modules:
            with contextlib.suppress(OSError):
                path.unlink()
    with contextlib.suppress(OSError):
        tmp = where / f"{STAMP_NAME}.{os.getpid()}.tmp"
        tmp.write_text(want)
        os.replace(tmp, stamp)
    return True
