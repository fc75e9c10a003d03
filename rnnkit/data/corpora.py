"""Text corpora: the embedded tiny Shakespeare corpus and a checked reader for user files.

Tiny Shakespeare
----------------
``rnnkit/data/corpora/tinyshakespeare.txt.gz`` is ``data/tinyshakespeare/input.txt`` of
Andrej Karpathy's char-rnn repository (https://github.com/karpathy/char-rnn), a
concatenation of works of William Shakespeare, whose text is in the public domain. The
original file is 1,115,394 bytes of ASCII (1,115,394 characters, 65 distinct) with sha256
``86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed``; it is shipped
compressed with ``gzip -9 -n`` (no name or time stamp in the header, so the bytes are
reproducible) and :func:`load_tinyshakespeare` checks that sha256 after decompressing.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import os
import zlib
from importlib import resources
from pathlib import Path

__all__ = [
    "TINYSHAKESPEARE_CHARS",
    "TINYSHAKESPEARE_SHA256",
    "load_tinyshakespeare",
    "read_text",
]

TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINYSHAKESPEARE_CHARS = 1_115_394
_TINYSHAKESPEARE_FILE = "tinyshakespeare.txt.gz"


def _corpus_bytes(filename: str) -> bytes:
    """Return the compressed bytes of ``rnnkit/data/corpora/<filename>`` (package data)."""
    resource = resources.files("rnnkit.data").joinpath("corpora").joinpath(filename)
    try:
        return resource.read_bytes()
    except OSError as exc:
        raise ValueError(
            f"The embedded corpus file rnnkit/data/corpora/{filename} could not be read "
            f"({exc}). The installation is damaged: reinstall rnnkit."
        ) from exc


def _decode_corpus(blob: bytes, filename: str, sha256: str) -> str:
    """Decompress a gzip ``blob``, check its sha256, and decode it as UTF-8."""
    where = f"rnnkit/data/corpora/{filename}"
    try:
        raw = gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(
            f"The embedded corpus {where} is not a valid gzip file ({exc}). "
            "The installation is damaged: reinstall rnnkit."
        ) from exc
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise ValueError(
            f"The embedded corpus {where} has sha256 {digest}; expected {sha256}. "
            "The installation is damaged: reinstall rnnkit."
        )
    return raw.decode("utf-8")


def load_tinyshakespeare() -> str:
    """Return the tiny Shakespeare corpus (1,115,394 characters, 65 distinct).

    The text is read from the package data with :mod:`importlib.resources`,
    decompressed, and checked against its published sha256
    (:data:`TINYSHAKESPEARE_SHA256`).

    Returns
    -------
    text : str
        The corpus exactly as in char-rnn's ``input.txt`` (newline line ends).

    Raises
    ------
    ValueError
        If the package data is missing, not gzip, or its content does not match the sha256.

    Examples
    --------
    >>> text = load_tinyshakespeare()
    >>> len(text), len(set(text)), text[:14]
    (1115394, 65, 'First Citizen:')
    """
    blob = _corpus_bytes(_TINYSHAKESPEARE_FILE)
    return _decode_corpus(blob, _TINYSHAKESPEARE_FILE, TINYSHAKESPEARE_SHA256)


def read_text(path: str | os.PathLike[str]) -> str:
    """Read a user's text corpus as UTF-8, refusing anything that is not one.

    Line ends are kept as they are in the file (no newline translation); a leading
    UTF-8 byte-order mark is dropped.

    Parameters
    ----------
    path : str or os.PathLike
        A regular, non-empty file of UTF-8 text.

    Returns
    -------
    text : str

    Raises
    ------
    TypeError
        If ``path`` is not a string or path.
    ValueError
        Naming the path, if it does not exist, is not a regular file, is empty, or is
        not valid UTF-8 (with the byte offset of the first bad byte).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike; got {type(path).__name__}.")
    p = Path(path)
    if not p.exists():
        raise ValueError(f"Text file {str(p)!r} does not exist. Check the path.")
    if not p.is_file():
        raise ValueError(f"Text path {str(p)!r} is not a regular file. Pass a text file.")
    raw = p.read_bytes()
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    if len(raw) == skip:
        raise ValueError(f"Text file {str(p)!r} is empty. Pass a file with some text.")
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        raise ValueError(
            f"Text file {str(p)!r} is not valid UTF-8: byte {raw[offset]:#04x} at offset "
            f"{offset} ({exc.reason}). Convert it to UTF-8, e.g. with iconv."
        ) from None
