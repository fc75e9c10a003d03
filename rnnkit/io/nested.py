"""Split nested state (dicts and lists holding NumPy arrays) into JSON plus named arrays.

Optimizer and trainer state mix scalars with arrays. A checkpoint stores the arrays
in safetensors and the rest in JSON: :func:`split_arrays` replaces every array by a
reference ``{"__array__": key}`` and returns the arrays by key; :func:`join_arrays`
puts them back. Array keys are the path of the array in the structure, under a prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["join_arrays", "split_arrays"]

_REF = "__array__"


def split_arrays(obj: Any, prefix: str) -> tuple[Any, dict[str, np.ndarray]]:
    """Return ``(json_obj, arrays)``: ``obj`` with each ndarray replaced by a reference.

    Examples
    --------
    >>> j, a = split_arrays({"step": 3, "state": [{"m": np.zeros(2)}]}, "optim")
    >>> j, list(a)
    ({'step': 3, 'state': [{'m': {'__array__': 'optim/state/0/m'}}]}, ['optim/state/0/m'])
    """
    arrays: dict[str, np.ndarray] = {}

    def walk(v: Any, path: str) -> Any:
        if isinstance(v, np.ndarray):
            arrays[path] = v
            return {_REF: path}
        if isinstance(v, Mapping):
            if _REF in v:
                raise ValueError(f"a dict at {path!r} uses the reserved key {_REF!r}.")
            return {str(k): walk(x, f"{path}/{k}") for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x, f"{path}/{i}") for i, x in enumerate(v)]
        if isinstance(v, np.generic):
            return v.item()
        return v

    return walk(obj, prefix), arrays


def join_arrays(obj: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """Invert :func:`split_arrays`; a missing array raises ``ValueError`` naming its key."""
    if isinstance(obj, Mapping):
        if set(obj) == {_REF}:
            key = obj[_REF]
            if key not in arrays:
                raise ValueError(f"the checkpoint has no array {key!r}; it is incomplete.")
            return arrays[key]
        return {k: join_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_arrays(v, arrays) for v in obj]
    return obj
