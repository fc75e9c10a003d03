"""Save and restore a ``np.random.Generator`` exactly, through plain JSON.

``rng.bit_generator.state`` is a dict of ints (PCG64's 128-bit state stays a Python
int: JSON has no integer size limit) and, for some bit generators, small uint arrays,
which are stored as lists of ints. Restoring it gives a generator that draws the
same numbers as the original from that point on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["rng_from_state", "rng_state"]

_BIT_GENERATORS = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "MT19937": np.random.MT19937,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
}


def _to_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [int(v) for v in value.tolist()]
    if isinstance(value, np.integer):
        return int(value)
    return value


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """Return the state of ``rng`` as a JSON-compatible dict (ints, strings, lists, dicts).

    Examples
    --------
    >>> import json
    >>> rng = np.random.default_rng(7)
    >>> saved = json.loads(json.dumps(rng_state(rng)))
    >>> a = rng.normal(size=3)
    >>> bool((rng_from_state(saved).normal(size=3) == a).all())
    True
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"`rng` must be a np.random.Generator; got {type(rng).__name__}. "
            "Create one with np.random.default_rng(seed)."
        )
    return _to_json(rng.bit_generator.state)


def rng_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    """Build a ``np.random.Generator`` in the state recorded by :func:`rng_state`."""
    if not isinstance(state, Mapping) or "bit_generator" not in state:
        raise ValueError(
            "`state` must be the dict returned by rng_state(rng), with a 'bit_generator' key; "
            f"got {state!r:.80}."
        )
    name = state["bit_generator"]
    if name not in _BIT_GENERATORS:
        raise ValueError(
            f"`state['bit_generator']` must be one of {sorted(_BIT_GENERATORS)}; got {name!r}."
        )
    bit_generator = _BIT_GENERATORS[name]()
    try:
        bit_generator.state = dict(state)
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ValueError(f"`state` is not a valid {name} state: {exc!r}.") from None
    return np.random.Generator(bit_generator)
