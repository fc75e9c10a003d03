"""Argument checks of the stacked recurrent layers (:mod:`rnnkit.nn.recurrent`).

Each takes the layer (for its sizes, direction count, cell kind and layout) and returns
the argument as the layer's ops want it, or raises a ``TypeError``/``ValueError`` that
names the argument and the expected shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.ops.validation import check_finite, check_float_array, check_same_dtype, check_shape

__all__ = ["check_dstate", "check_dy", "check_state"]


def check_state(layer: Any, state: Any, batch: int, dtype: np.dtype) -> list[np.ndarray]:
    """``state`` (``h`` or ``(h, c)``, each (num_layers*D, B, H)) as a list of arrays."""
    shape = (layer.num_layers * layer.num_directions, batch, layer.hidden_size)
    names = ("h0", "c0") if layer._has_cell else ("h0",)
    if layer._has_cell:
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError(
                f"`state` of {type(layer).__name__} must be a tuple (h, c); "
                f"got {type(state).__name__}."
            )
        parts = list(state)
    else:
        parts = [state]
    out = []
    for name, s in zip(names, parts, strict=True):
        s = check_float_array(f"state ({name})", s, ndim=3)
        check_shape(f"state ({name})", s, shape, hint="It is (num_layers*D, B, H), like PyTorch.")
        check_same_dtype(f"state ({name})", s, dtype)
        check_finite(f"state ({name})", s)
        out.append(s)
    return out


def check_dy(layer: Any, dy: Any, n_steps: int, batch: int, dtype: np.dtype) -> np.ndarray:
    """``dy`` (the shape of the output ``y``; None: zeros) as a time-major array of ``dtype``."""
    shape = (n_steps, batch, layer.num_directions * layer.hidden_size)
    if dy is None:
        return np.zeros(shape, dtype=dtype)
    dy = check_float_array("dy", dy, ndim=3)
    if layer.batch_first:
        dy = dy.transpose(1, 0, 2)
    check_shape("dy", dy, shape, hint="dy has the shape of the output y.")
    return dy.astype(dtype, copy=False)


def check_dstate(layer: Any, dstate: Any, batch: int, dtype: np.dtype) -> list[np.ndarray] | None:
    """``dstate`` like :func:`check_state`; None stays None, and an LSTM part None is zeros."""
    if dstate is None:
        return None
    if layer._has_cell and isinstance(dstate, (tuple, list)) and len(dstate) == 2:
        shape = (layer.num_layers * layer.num_directions, batch, layer.hidden_size)
        dstate = tuple(
            np.zeros(shape, dtype) if s is None else np.asarray(s, dtype=dtype) for s in dstate
        )
    return check_state(layer, dstate, batch, dtype)
