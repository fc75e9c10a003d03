"""A reader and writer of the safetensors format, written from its specification.

Layout of a file (https://github.com/huggingface/safetensors, "Format"):

(ST-1) bytes [0, 8)        N, the header length, an unsigned 64-bit little-endian integer
(ST-2) bytes [8, 8 + N)    a UTF-8 JSON object ``{name: {"dtype": "F32", "shape": [2, 3],
                           "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}``,
                           possibly padded at the end with spaces
(ST-3) bytes [8 + N, end)  the byte buffer: tensor ``name`` is bytes [begin, end) of it,
                           little-endian, C order, ``end − begin = prod(shape) · itemsize``;
                           the tensors tile the buffer exactly (no gap, no overlap, nothing
                           after the last one)

The writer pads the header with spaces to a multiple of 8 bytes and stores tensors by
decreasing item size, then by name, so every tensor is aligned to its item size, as the
reference implementation does. The reader checks every rule above and refuses a
malformed file with a ``ValueError`` naming it; it never unpickles anything and checks
each length against the file's real size before using it.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.io.atomic import atomic_write_bytes

__all__ = [
    "DTYPES",
    "decode_safetensors",
    "encode_safetensors",
    "load_arrays",
    "load_safetensors",
    "save_arrays",
]

DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_CODES = {(dt.kind, dt.itemsize): code for code, dt in DTYPES.items()}
_MAX_HEADER = 100_000_000  # the reference implementation's limit, bytes
_METADATA = "__metadata__"
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}


def _dtype_code(name: str, arr: np.ndarray) -> str:
    code = _CODES.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise TypeError(
            f"Array {name!r} has dtype {arr.dtype}, which safetensors cannot store here; "
            f"use one of {', '.join(str(d) for d in DTYPES.values())}."
        )
    return code


def encode_safetensors(
    arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> bytes:
    """Serialise ``arrays`` (and string ``metadata``) to safetensors bytes, (ST-1)–(ST-3).

    Parameters
    ----------
    arrays : mapping of str to np.ndarray
        Names are non-empty and not ``"__metadata__"``; dtypes are those of :data:`DTYPES`.
    metadata : mapping of str to str, or None

    Returns
    -------
    bytes

    Examples
    --------
    >>> blob = encode_safetensors({"w": np.ones(2, np.float32)})
    >>> n = int.from_bytes(blob[:8], "little")
    >>> n, blob[8 : 8 + n].decode(), len(blob) == 8 + n + 8
    (56, '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  ', True)
    """
    if not isinstance(arrays, Mapping):
        raise TypeError(f"`arrays` must be a dict of name -> array; got {type(arrays).__name__}.")
    header: dict[str, Any] = {}
    if metadata is not None:
        if not isinstance(metadata, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise TypeError(
                "`metadata` must be a dict of str -> str (safetensors stores only strings); "
                "encode other values, e.g. with json.dumps."
            )
        header[_METADATA] = dict(metadata)
    prepared = []
    for name, value in arrays.items():
        if not isinstance(name, str) or not name or name == _METADATA:
            raise ValueError(
                f"Array names must be non-empty strings other than {_METADATA!r}; got {name!r}."
            )
        if not isinstance(value, (np.ndarray, np.generic)):
            raise TypeError(
                f"Array {name!r} must be a NumPy array; got {type(value).__name__}. "
                "Convert it with np.asarray."
            )
        arr = np.asarray(value)
        code = _dtype_code(name, arr)
        prepared.append((DTYPES[code].itemsize, name, code, arr))
    prepared.sort(key=lambda p: (-p[0], p[1]))  # aligned: largest items first, then name
    chunks = []
    offset = 0
    for _, name, code, arr in prepared:
        raw = np.ascontiguousarray(arr, dtype=DTYPES[code]).tobytes()  # little-endian, C order
        header[name] = {
            "dtype": code,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # pad so the buffer starts 8-aligned
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r} in the header")
        out[k] = v
    return out


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def decode_safetensors(
    blob: bytes, source: str = "<bytes>"
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse safetensors bytes into ``(arrays, metadata)``, checking (ST-1)–(ST-3).

    Parameters
    ----------
    blob : bytes
        The whole file.
    source : str
        What to call it in error messages (the file name).

    Returns
    -------
    arrays : dict of name -> np.ndarray (native byte order, writable, in header order)
    metadata : dict of str -> str (empty when the file has none)

    Raises
    ------
    ValueError
        Naming ``source`` and the broken rule.
    """

    def bad(reason: str) -> ValueError:
        return ValueError(f"{source} is not a valid safetensors file: {reason}.")

    size = len(blob)
    if size < 8:
        raise bad(f"it is {size} bytes long, shorter than the 8-byte header length (ST-1)")
    (n,) = struct.unpack_from("<Q", blob, 0)  # (ST-1)
    if n > size - 8:
        raise bad(f"the header length is {n} bytes but only {size - 8} bytes follow it")
    if n > _MAX_HEADER:
        raise bad(f"the header length {n} exceeds the limit of {_MAX_HEADER} bytes")
    try:
        header = json.loads(
            bytes(blob[8 : 8 + n]).decode("utf-8"), object_pairs_hook=_reject_duplicates
        )
    except UnicodeDecodeError as exc:
        raise bad(f"the header is not UTF-8 ({exc.reason} at byte {8 + exc.start})") from None
    except ValueError as exc:  # json.JSONDecodeError or a duplicate key
        raise bad(f"the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise bad(f"the header must be a JSON object; got {type(header).__name__}")
    metadata = header.pop(_METADATA, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad(f"{_METADATA!r} must be an object of string values")
    buffer_size = size - 8 - n  # (ST-3)
    entries = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
            raise bad(f"tensor {name!r} must be an object with keys {sorted(_ENTRY_KEYS)}")
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if code not in DTYPES:
            raise bad(
                f"tensor {name!r} has unknown or unsupported dtype {code!r}; "
                f"supported: {', '.join(DTYPES)}"
            )
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise bad(f"tensor {name!r} has shape {shape!r}; expected a list of ints >= 0")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise bad(
                f"tensor {name!r} has data_offsets {offsets!r}; expected [begin, end] "
                "with 0 <= begin <= end"
            )
        begin, end = offsets
        nbytes = math.prod(shape) * DTYPES[code].itemsize
        if end - begin != nbytes:
            raise bad(
                f"tensor {name!r} of dtype {code} and shape {shape} needs {nbytes} bytes; "
                f"its data_offsets [{begin}, {end}] span {end - begin}"
            )
        if end > buffer_size:
            raise bad(
                f"tensor {name!r} ends at byte {end} of the data buffer, which has only "
                f"{buffer_size} bytes (the file is truncated or the offsets are out of bounds)"
            )
        entries.append((begin, end, name, code, shape))
    position = 0
    for begin, end, name, _, _ in sorted(entries, key=lambda e: (e[0], e[1])):
        if begin < position:
            raise bad(f"tensor {name!r} at [{begin}, {end}) overlaps the previous tensor")
        if begin > position:
            raise bad(f"the data buffer has a gap at bytes [{position}, {begin})")
        position = end
    if position != buffer_size:
        raise bad(
            f"{buffer_size - position} bytes of trailing data follow the last tensor "
            f"(buffer of {buffer_size} bytes, tensors end at {position})"
        )
    arrays: dict[str, np.ndarray] = {}
    start = 8 + n
    for begin, _end, name, code, shape in entries:
        dt, count = DTYPES[code], math.prod(shape)
        if code == "BOOL" and count and np.frombuffer(blob, "u1", count, start + begin).max() > 1:
            raise bad(f"tensor {name!r} of dtype BOOL holds bytes other than 0 and 1")
        flat = np.frombuffer(blob, dt, count, start + begin) if count else np.empty(0, dt)
        arrays[name] = flat.reshape(shape).astype(dt.newbyteorder("="))  # a writable copy
    return arrays, dict(metadata)


def _check_file(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike; got {type(path).__name__}.")
    p = Path(path)
    if not p.exists():
        raise ValueError(f"Safetensors file {str(p)!r} does not exist. Check the path.")
    if not p.is_file():
        raise ValueError(f"Safetensors path {str(p)!r} is not a regular file.")
    return p


def save_arrays(
    path: str | os.PathLike[str],
    arrays: Mapping[str, np.ndarray],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write ``arrays`` to a safetensors file atomically (the old file survives a failure).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.safetensors"
    >>> save_arrays(path, {"w": np.arange(6.0).reshape(2, 3)}, {"note": "hi"})
    >>> arrays, meta = load_safetensors(path)
    >>> arrays["w"].tolist(), meta
    ([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], {'note': 'hi'})
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike; got {type(path).__name__}.")
    atomic_write_bytes(path, encode_safetensors(arrays, metadata))


def load_safetensors(
    path: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file into ``(arrays, metadata)``; see :func:`decode_safetensors`."""
    p = _check_file(path)
    return decode_safetensors(p.read_bytes(), source=str(p))


def load_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read the arrays of a safetensors file (its metadata is dropped)."""
    return load_safetensors(path)[0]
