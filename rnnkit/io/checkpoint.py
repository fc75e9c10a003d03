"""Checkpoints: a directory of arrays (safetensors) plus a JSON description, never pickle.

A checkpoint directory holds exactly two files:

- ``model.safetensors``: every array (model parameters, optimizer moments, carried hidden
  state...) under namespaced keys chosen by the caller, e.g. ``"model.embedding.weight"``,
  ``"optim.m.model.embedding.weight"``.
- ``checkpoint.json``: ``{"format": "rnnkit-checkpoint/1", "arrays_file":
  "model.safetensors", "arrays_bytes": n, "arrays_sha256": "...", "meta": {...}}`` where
  ``meta`` is the caller's JSON document (configuration, vocabulary, optimizer
  hyper-parameters, RNG state, data position, step...). It is written last: the
  checksum ties it to the one arrays file it was written with.

Saving never damages the last good checkpoint. Both files are written and fsync-ed into
a fresh sibling directory ``<dir>.tmp-<pid>``; then ``<dir>`` is renamed to
``<dir>.old``, the new directory is renamed to ``<dir>``, and ``<dir>.old`` is removed.
Each rename is atomic, so at every instant either ``<dir>`` or (between the two
renames) ``<dir>.old`` is a complete checkpoint; :func:`load_checkpoint` falls back to
``<dir>.old`` when ``<dir>`` is missing, and the next save finishes the cleanup. A
failure before the swap removes the temporary directory and leaves ``<dir>`` untouched.

To protect user data, saving refuses to replace a directory (or remove a ``.old`` /
``.tmp-<pid>`` sibling) holding anything but these two files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.io.atomic import fsync_directory
from rnnkit.io.safetensors import decode_safetensors, encode_safetensors

__all__ = ["ARRAYS_FILE", "FORMAT_VERSION", "META_FILE", "load_checkpoint", "save_checkpoint"]

FORMAT_VERSION = "rnnkit-checkpoint/1"
ARRAYS_FILE = "model.safetensors"
META_FILE = "checkpoint.json"
_OUR_FILES = frozenset({ARRAYS_FILE, META_FILE})
_DOC_KEYS = frozenset({"format", "arrays_file", "arrays_bytes", "arrays_sha256", "meta"})


def _check_json(value: Any, where: str) -> None:
    """Raise unless ``value`` survives a JSON round trip unchanged (see save_checkpoint)."""
    if value is None or isinstance(value, (bool, str)):
        return
    if type(value) is int:
        return
    if type(value) is float:
        if not math.isfinite(value):
            raise ValueError(
                f"`{where}` is {value}; JSON has no NaN or infinity. Store it as a string."
            )
        return
    if isinstance(value, list):
        for k, v in enumerate(value):
            _check_json(v, f"{where}[{k}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"`{where}` has key {k!r} of type {type(k).__name__}; JSON keys are "
                    "strings. Convert the key with str()."
                )
            _check_json(v, f"{where}[{k!r}]")
        return
    raise TypeError(
        f"`{where}` is a {type(value).__name__}, which does not round-trip through JSON; "
        "use None, bool, int, float, str, list or dict (convert NumPy scalars with "
        ".item(), tuples with list(), arrays go in `arrays`)."
    )


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _check_ours(path: Path, what: str) -> None:
    """Refuse unless ``path`` is absent or a directory holding only checkpoint files."""
    if path.exists() and (not path.is_dir() or not {e.name for e in path.iterdir()} <= _OUR_FILES):
        raise ValueError(
            f"Cannot save the checkpoint: {what} {str(path)!r} exists and is not an rnnkit "
            "checkpoint directory (it holds other files). Move it away or choose another path."
        )


def save_checkpoint(
    directory: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
) -> Path:
    """Write a checkpoint directory, replacing the previous one only once complete.

    Parameters
    ----------
    directory : str or os.PathLike
        The checkpoint directory; its parent is created if needed. If it exists it must
        be empty or hold only ``model.safetensors`` and ``checkpoint.json``.
    arrays : mapping of str to np.ndarray
        Every array to store (any dtype of ``rnnkit.io.safetensors.DTYPES``).
    meta : mapping of str to JSON values
        Nested dicts (str keys), lists, str, int, finite float, bool, None. Tuples,
        NumPy scalars and non-finite floats are refused, so that
        :func:`load_checkpoint` returns exactly what was saved.

    Returns
    -------
    Path
        The checkpoint directory, absolute.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "ckpt"
    >>> _ = save_checkpoint(d, {"model.w": np.eye(2)}, {"step": 10})
    >>> arrays, meta = load_checkpoint(d)
    >>> sorted(p.name for p in d.iterdir()), arrays["model.w"].tolist(), meta
    (['checkpoint.json', 'model.safetensors'], [[1.0, 0.0], [0.0, 1.0]], {'step': 10})
    """
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(
            f"`directory` must be a str or os.PathLike; got {type(directory).__name__}."
        )
    if not isinstance(meta, Mapping):
        raise TypeError(f"`meta` must be a dict; got {type(meta).__name__}.")
    meta = dict(meta)
    _check_json(meta, "meta")
    blob = encode_safetensors(arrays, {"format": FORMAT_VERSION})  # validates the arrays
    doc = {
        "format": FORMAT_VERSION,
        "arrays_file": ARRAYS_FILE,
        "arrays_bytes": len(blob),
        "arrays_sha256": hashlib.sha256(blob).hexdigest(),
        "meta": meta,
    }
    text = json.dumps(doc, indent=2, allow_nan=False).encode("utf-8") + b"\n"

    final = Path(os.path.abspath(directory))  # "ckpt/", "a/../ckpt" and "." get a real name
    if final.exists() and not final.is_dir():
        raise ValueError(f"Cannot save the checkpoint: {str(final)!r} is a file, not a directory.")
    if final.is_dir() and not {e.name for e in final.iterdir()} <= _OUR_FILES:
        raise ValueError(
            f"Cannot save the checkpoint into {str(final)!r}: it holds files other than "
            f"{ARRAYS_FILE} and {META_FILE}. Choose an empty or new directory."
        )
    parent = final.parent
    staging = parent / f"{final.name}.tmp-{os.getpid()}"
    old = parent / f"{final.name}.old"
    _check_ours(old, "the previous-checkpoint directory")
    _check_ours(staging, "the temporary directory")
    parent.mkdir(parents=True, exist_ok=True)
    if staging.exists():  # left by an interrupted save of a process with our pid
        shutil.rmtree(staging)

    staging.mkdir()
    moved_to_old = False
    try:
        _fsync_write(staging / ARRAYS_FILE, blob)
        _fsync_write(staging / META_FILE, text)  # last: the description commits the pair
        fsync_directory(staging)
        if final.exists():
            if old.exists():  # a leftover: final is the good checkpoint
                shutil.rmtree(old)
            os.replace(final, old)
            moved_to_old = True
        # else: a crash between the renames of an earlier save left `old` as the last good
        # checkpoint; it stays until the new one is in place.
        os.replace(staging, final)
        fsync_directory(parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if moved_to_old and not final.exists():
            os.replace(old, final)
        raise
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(old)
    return final


def load_checkpoint_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``meta`` of a checkpoint, read from its ``checkpoint.json`` alone.

    The checks of :func:`load_checkpoint` on that file apply (and its ``.old`` fallback);
    the arrays file is neither read nor verified, so this is cheap for large models.
    """
    return _read_description(directory)[1]["meta"]


def _read_description(directory: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """The checkpoint's directory (after the ``.old`` fallback) and its checked JSON."""
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(
            f"`directory` must be a str or os.PathLike; got {type(directory).__name__}."
        )
    path = Path(os.path.abspath(directory))
    old = path.parent / f"{path.name}.old"
    if not path.exists() and old.is_dir():
        path = old
    if not path.exists():
        raise ValueError(f"Checkpoint directory {str(path)!r} does not exist. Check the path.")
    if not path.is_dir():
        raise ValueError(f"Checkpoint path {str(path)!r} is not a directory.")
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise _invalid(path, f"{META_FILE} is missing (not a checkpoint, or an incomplete copy)")
    try:
        doc = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _invalid(path, f"{META_FILE} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or "format" not in doc:
        raise _invalid(path, f"{META_FILE} has no 'format' field (written by another program?)")
    if doc["format"] != FORMAT_VERSION:
        raise _invalid(
            path,
            f"its format is {doc['format']!r}; this version of rnnkit reads {FORMAT_VERSION!r}",
        )
    if (
        set(doc) != _DOC_KEYS
        or doc["arrays_file"] != ARRAYS_FILE
        or not isinstance(doc["meta"], dict)
    ):
        raise _invalid(path, f"{META_FILE} must have exactly the fields {sorted(_DOC_KEYS)}")
    return path, doc


def _invalid(path: Path, reason: str) -> ValueError:
    return ValueError(f"{str(path)!r} is not a valid rnnkit checkpoint: {reason}.")


def load_checkpoint(
    directory: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`, verifying it first.

    If ``directory`` is missing but ``<directory>.old`` exists (a save interrupted
    between its two renames), that previous checkpoint is read instead.

    Returns
    -------
    arrays : dict of str -> np.ndarray
    meta : dict, exactly the ``meta`` that was saved

    Raises
    ------
    ValueError
        Naming the directory, if it does not exist, lacks a file, has a malformed or
        foreign ``checkpoint.json``, the wrong format version, a safetensors file whose
        size or sha256 differs from the recorded one, or a malformed safetensors file.
    """
    path, doc = _read_description(directory)
    arrays_path = path / ARRAYS_FILE
    if not arrays_path.is_file():
        raise _invalid(path, f"{ARRAYS_FILE} is missing")
    blob = arrays_path.read_bytes()
    if len(blob) != doc["arrays_bytes"]:
        raise _invalid(
            path,
            f"{ARRAYS_FILE} is {len(blob)} bytes but {META_FILE} records {doc['arrays_bytes']} "
            "(truncated, or from another save)",
        )
    digest = hashlib.sha256(blob).hexdigest()
    if digest != doc["arrays_sha256"]:
        raise _invalid(
            path,
            f"{ARRAYS_FILE} has sha256 {digest} but {META_FILE} records "
            f"{doc['arrays_sha256']} (corrupted, or from another save)",
        )
    arrays, _ = decode_safetensors(blob, source=str(arrays_path))
    return arrays, doc["meta"]
