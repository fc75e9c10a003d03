"""Atomic file writes: a reader sees the old file or the complete new one, never a mix.

The bytes go to a temporary file in the destination's own directory (same file
system, so the rename is atomic), which is flushed and ``fsync``-ed, then
``os.replace``-d onto the final name; the directory is ``fsync``-ed so the rename
itself survives a power cut. The new file takes the old file's permissions, or
``0644`` when there was none. On any error the temporary file is removed and the
previous file, if any, is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_bytes", "fsync_directory"]


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (renames, new files) to disk; a no-op where unsupported."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open directories
        return
    fd = os.open(os.fspath(directory), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary binary file that replaces ``path`` when the block exits cleanly.

    Parameters
    ----------
    path : str or os.PathLike
        The final file name; its directory must exist.

    Yields
    ------
    file : binary file object to write to

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_write(d / "a.bin") as f:
    ...     _ = f.write(b"new")
    >>> (d / "a.bin").read_bytes()
    b'new'
    """
    final = Path(path)
    parent = final.parent
    if not parent.is_dir():
        raise ValueError(
            f"Cannot write {str(final)!r}: directory {str(parent)!r} does not exist. "
            "Create it first."
        )
    if final.is_dir():
        raise ValueError(f"Cannot write {str(final)!r}: it is a directory. Pass a file name.")
    fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{final.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file private (0600); give it the old file's mode, else 0644.
            os.chmod(tmp, final.stat().st_mode & 0o7777 if final.exists() else 0o644)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_directory(parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"`data` must be bytes; got {type(data).__name__}.")
    with atomic_write(path) as f:
        f.write(data)
