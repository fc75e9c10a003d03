"""Argument checks shared by every op and module.

Every failure has the same form: what was expected, what was received, and what
to do about it. Checks never modify their inputs, so a failed call leaves all
state as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "check_finite",
    "check_float_array",
    "check_lengths",
    "check_same_dtype",
    "check_shape",
]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_array(name: str, value: object, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a float32/float64 array, or raise naming ``name``.

    Integer, boolean and object arrays are refused with a ``TypeError`` (they are
    never silently cast: an integer array in a float slot is almost always a bug,
    such as token ids passed where embeddings were expected).
    """
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, (list, tuple, float, int)):
        arr = np.asarray(value)
    else:
        raise TypeError(
            f"`{name}` must be a NumPy array of float32 or float64; got "
            f"{type(value).__name__}. Convert it with np.asarray(..., dtype=np.float32)."
        )
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"`{name}` must have dtype float32 or float64; got {arr.dtype}. "
            f"Convert it with {name}.astype(np.float32)."
        )
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(
            f"`{name}` must have {ndim} dimensions; got {arr.ndim} with shape {arr.shape}."
        )
    return arr


def check_shape(
    name: str, value: np.ndarray, expected: Sequence[int | None], hint: str = ""
) -> None:
    """Raise ``ValueError`` unless ``value.shape`` matches ``expected`` (``None`` = any)."""
    if value.shape == tuple(expected):  # the common case, checked first (ops run it per call)
        return
    ok = value.ndim == len(expected) and all(
        e is None or e == s for e, s in zip(expected, value.shape, strict=True)
    )
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        extra = " " + hint if hint else ""
        raise ValueError(f"`{name}` must have shape {want}; got {tuple(value.shape)}.{extra}")


def check_same_dtype(name: str, value: np.ndarray, dtype: np.dtype) -> None:
    """Raise ``TypeError`` unless ``value`` has ``dtype`` (no silent up/down casts)."""
    if value.dtype != dtype:
        raise TypeError(
            f"`{name}` must have dtype {dtype} like the input; got {value.dtype}. "
            f"Cast one of them so they agree."
        )


def check_finite(name: str, value: np.ndarray) -> None:
    """Raise ``ValueError`` if ``value`` holds NaN or infinity, giving the first bad index."""
    if not np.isfinite(value).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
        raise ValueError(
            f"`{name}` must be finite; got {value[bad]} at index {bad}."
            " Check the data or the previous layer for overflow."
        )


def check_lengths(lengths: object, T: int, B: int) -> np.ndarray | None:
    """Validate ``lengths`` for a ``(T, B, ...)`` batch; return it as int64 or ``None``.

    Every length must be an integer in ``[1, T]`` and there must be ``B`` of them.
    """
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"`lengths` must hold integers; got dtype {arr.dtype}. "
            "Pass e.g. np.array([5, 3], dtype=np.int64)."
        )
    if arr.shape != (B,):
        raise ValueError(
            f"`lengths` must have shape (B,) = ({B},), one length per sequence; got {arr.shape}."
        )
    if B and (arr.min() < 1 or arr.max() > T):
        raise ValueError(
            f"`lengths` must be in [1, T={T}] for every sequence; got min {int(arr.min())}, "
            f"max {int(arr.max())}. Pad `x` or trim `lengths`."
        )
    return arr.astype(np.int64)
