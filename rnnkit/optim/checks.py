"""Argument checks for optimizers, schedules and clipping.

Every failure names the argument and has the form "expected X, got Y, do Z". A
check returns the value as a plain Python scalar, so hyper-parameters stored by
optimizers and schedules are always JSON-serialisable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real

from rnnkit.nn.module import Parameter

__all__ = ["check_flag", "check_int", "check_params", "check_real"]


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
    hint: str = "",
) -> float:
    """Return ``value`` as a float in the interval, or raise naming ``name``.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``. NaN is always
    refused; infinities only with ``allow_inf``. Booleans are refused (``lr=True``
    is a bug, not a number).
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"`{name}` must be a real number; got {type(value).__name__} {value!r}.")
    v = float(value)
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    bad = math.isnan(v) or (math.isinf(v) and not allow_inf)
    if low is not None:
        bad = bad or v < low or (low_open and v == low)
    if high is not None:
        bad = bad or v > high or (high_open and v == high)
    if bad:
        extra = " " + hint if hint else ""
        finite = "" if allow_inf else "finite "
        raise ValueError(f"`{name}` must be a {finite}number in {interval}; got {value!r}.{extra}")
    return v


def check_int(name: str, value: object, *, low: int = 0, hint: str = "") -> int:
    """Return ``value`` as an int ``>= low``, or raise naming ``name`` (booleans refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"`{name}` must be an integer; got {type(value).__name__} {value!r}.")
    if value < low:
        extra = " " + hint if hint else ""
        raise ValueError(f"`{name}` must be an integer >= {low}; got {value}.{extra}")
    return int(value)


def check_flag(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool, else raise ``TypeError`` naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False; got {type(value).__name__} {value!r}.")
    return value


def check_params(params: object, *, allow_empty: bool = False) -> list[Parameter]:
    """Return ``params`` (a Parameter or an iterable of them) as a list without duplicates."""
    if isinstance(params, Parameter):
        return [params]
    if hasattr(params, "named_parameters"):
        raise TypeError(
            f"`params` must be an iterable of Parameters; got the module "
            f"{type(params).__name__}. Pass model.parameters()."
        )
    if not isinstance(params, Iterable) or isinstance(params, (str, bytes)):
        raise TypeError(
            f"`params` must be an iterable of Parameters; got {type(params).__name__}. "
            "Pass model.parameters()."
        )
    out = list(params)
    for k, p in enumerate(out):
        if not isinstance(p, Parameter):
            raise TypeError(
                f"`params[{k}]` must be a rnnkit Parameter; got {type(p).__name__}. "
                "Pass model.parameters(), not arrays."
            )
    if len({id(p) for p in out}) != len(out):
        raise ValueError(
            "`params` must not contain the same Parameter twice; got duplicates. "
            "Pass each shared Parameter once (model.parameters() already does)."
        )
    if not out and not allow_empty:
        raise ValueError("`params` must hold at least one Parameter; got none.")
    return out
