"""The ``Optimizer`` base class: parameters, hyper-parameters, per-parameter state, checkpoints.

An optimizer holds a list of :class:`~rnnkit.nn.module.Parameter` objects and
updates each ``p.data`` **in place** from ``p.grad`` when :meth:`Optimizer.step`
is called, so views and references to ``p.data`` stay valid. All parameters form
one group with one learning rate ``lr`` (settable; schedules change it).

State-dict layout (what :meth:`Optimizer.state_dict` returns and
:meth:`Optimizer.load_state_dict` accepts)::

    {
        "type": "Adam",                        # class name, checked on load
        "hyper": {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-08, ...},
        "step": 5,                             # number of step() calls so far
        "state": [                             # one dict per parameter, in order
            {"exp_avg": ndarray, "exp_avg_sq": ndarray},
            ...
        ],
    }

Everything except the arrays in ``"state"`` is a JSON scalar (float, int, bool,
str) or a list of them, so a checkpoint writer can store the arrays (e.g. as
safetensors tensors named ``"state.{k}.{name}"``) and the rest as JSON. The
arrays are copies and have the parameter's shape and dtype. The names in each
state dict are fixed by the class and its hyper-parameters (listed in each
optimizer's docstring); they exist from construction on, zero-filled (or filled
with ``initial_accumulator_value`` for Adagrad).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from rnnkit.nn.module import Parameter
from rnnkit.optim.checks import check_int, check_params, check_real

__all__ = ["Optimizer"]


class Optimizer:
    """Base class: subclasses define ``_check_hyper``, ``_state_names`` and ``_update``.

    Parameters
    ----------
    params : iterable of Parameter
        The parameters to update (e.g. ``model.parameters()``), each once.
    hyper : dict
        Hyper-parameters, validated by the subclass's ``_check_hyper``.

    Attributes
    ----------
    params : list of Parameter
    state : list of dict of str to ndarray
        Per-parameter state (moment estimates, momentum buffers), in ``params`` order.
    step_count : int
        Number of :meth:`step` calls so far (``t`` in the update equations is
        ``step_count`` after the increment at the start of a step).
    """

    def __init__(self, params: Iterable[Parameter], hyper: dict[str, Any]) -> None:
        self.params: list[Parameter] = check_params(params)
        self._hyper: dict[str, Any] = self._check_hyper(hyper)
        self.step_count = 0
        self.state: list[dict[str, np.ndarray]] = [self._init_state(p) for p in self.params]

    # -- subclass hooks -------------------------------------------------------
    @classmethod
    def _check_hyper(cls, hyper: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and normalise ``hyper``; return a new dict of JSON scalars."""
        raise NotImplementedError(f"{cls.__name__} must implement _check_hyper")

    @classmethod
    def _state_names(cls, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        """Names of the per-parameter state arrays under these hyper-parameters."""
        raise NotImplementedError(f"{cls.__name__} must implement _state_names")

    def _init_state(self, p: Parameter) -> dict[str, np.ndarray]:
        """Fresh per-parameter state: zeros like ``p.data`` for every state name."""
        return {name: np.zeros_like(p.data) for name in self._state_names(self._hyper)}

    def _update(self, p: Parameter, state: dict[str, np.ndarray], t: int) -> None:
        """Update ``p.data`` in place from ``p.grad`` at step ``t`` (1-based)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

    @staticmethod
    def _expect_keys(hyper: Mapping[str, Any], names: tuple[str, ...]) -> None:
        """Raise ``ValueError`` unless ``hyper`` has exactly the keys ``names``."""
        if not isinstance(hyper, Mapping):
            raise TypeError(f"`hyper` must be a dict; got {type(hyper).__name__}.")
        missing = [k for k in names if k not in hyper]
        unexpected = [k for k in hyper if k not in names]
        if missing or unexpected:
            raise ValueError(
                f"`hyper` must have exactly the keys {list(names)}; missing {missing}, "
                f"unexpected {unexpected}. Was the state saved by another optimizer type?"
            )

    # -- public API -----------------------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate γ used by the next :meth:`step` (settable, must be >= 0)."""
        return self._hyper["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self._hyper["lr"] = check_real("lr", value, low=0.0)

    @property
    def hyper(self) -> dict[str, Any]:
        """A copy of the hyper-parameters (change them with ``lr = ...`` or ``load_state_dict``)."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._hyper.items()}

    def step(self) -> None:
        """Apply one update to every parameter from its current ``grad``.

        Parameters are updated in place; gradients are read, never modified.
        """
        self.step_count += 1
        for p, state in zip(self.params, self.state, strict=True):
            self._update(p, state, self.step_count)

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero, in place."""
        for p in self.params:
            p.grad[...] = 0

    def state_dict(self) -> dict[str, Any]:
        """Copy of the optimizer state in the layout described in the module docstring."""
        return {
            "type": type(self).__name__,
            "hyper": self.hyper,
            "step": self.step_count,
            "state": [{k: v.copy() for k, v in s.items()} for s in self.state],
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyper-parameters (``lr`` included), step count and per-parameter state.

        Everything is checked before anything changes, so a failed load leaves the
        optimizer as it was. Arrays are copied and cast to each parameter's dtype.

        Raises
        ------
        ValueError
            On a different optimizer type, bad or missing hyper-parameters, a different
            number of parameters, missing or unexpected state names, or wrong shapes.
        TypeError
            On a non-dict argument or non-float state arrays.
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"`state_dict` must be a dict; got {type(state_dict).__name__}.")
        missing = [k for k in ("type", "hyper", "step", "state") if k not in state_dict]
        if missing:
            raise ValueError(
                f"`state_dict` for {name} is missing the keys {missing}; expected the dict "
                f"returned by {name}.state_dict()."
            )
        if state_dict["type"] != name:
            raise ValueError(
                f"`state_dict` was saved by {state_dict['type']!r}; expected {name!r}. "
                f"Build a {state_dict['type']} optimizer to load it."
            )
        hyper = self._check_hyper(state_dict["hyper"])
        step = check_int("state_dict['step']", state_dict["step"])
        states = state_dict["state"]
        if not isinstance(states, (list, tuple)) or len(states) != len(self.params):
            got = len(states) if isinstance(states, (list, tuple)) else type(states).__name__
            raise ValueError(
                f"`state_dict['state']` must hold {len(self.params)} entries, one per "
                f"parameter; got {got}. Build the optimizer over the same parameters, in "
                "the same order, as the one that was saved."
            )
        names = self._state_names(hyper)
        new_state = []
        for k, (p, s) in enumerate(zip(self.params, states, strict=True)):
            if not isinstance(s, Mapping) or set(s) != set(names):
                keys = sorted(s) if isinstance(s, Mapping) else type(s).__name__
                raise ValueError(
                    f"`state_dict['state'][{k}]` must have the arrays {sorted(names)}; got {keys}."
                )
            entry = {}
            for key in names:
                arr = np.asarray(s[key])
                if arr.shape != p.shape:
                    raise ValueError(
                        f"`state_dict['state'][{k}]['{key}']` must have the shape of "
                        f"parameter {k}, {p.shape}; got {arr.shape}. Were the parameters "
                        "passed in a different order?"
                    )
                if arr.dtype.kind != "f":
                    raise TypeError(
                        f"`state_dict['state'][{k}]['{key}']` must hold floats; got dtype "
                        f"{arr.dtype}."
                    )
                entry[key] = arr.astype(p.data.dtype, copy=True)
            new_state.append(entry)
        self._hyper, self.step_count, self.state = hyper, step, new_state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self._hyper.items())
        return f"{type(self).__name__}({len(self.params)} parameters, {args})"
