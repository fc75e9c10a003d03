"""Finite-difference gradient checks for pure ops and for modules.

Equations
---------
(GC-1) ∂L/∂θ_k ≈ (L(θ + ε e_k) − L(θ − ε e_k)) / 2ε            central differences, O(ε²)
(GC-2) rel_err(a, n) = max_k |a_k − n_k| / max(max_k |a_k|, max_k |n_k|, tiny)
(GC-3) L = Σ_j Σ w_j ⊙ out_j,   w_j ~ N(0, 1) drawn once from ``seed``

(GC-3) turns any outputs (an array, or a nested tuple such as ``(y, (h, c))``) into
one scalar whose incoming gradient ``∂L/∂out_j = w_j`` is dense and different at
every element, so a swapped index or a dropped term cannot cancel out. (GC-2)
normalises by the largest magnitude of the whole array rather than elementwise,
so elements whose true gradient is 0 do not blow the error up; ``tiny`` is the
smallest normal float64, which makes two all-zero arrays agree exactly.

All checks run in float64 (float32 has too few digits for central differences).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit.nn.layers import Dropout
from rnnkit.nn.module import Module

__all__ = [
    "GradcheckEntry",
    "GradcheckReport",
    "gradcheck_module",
    "gradcheck_op",
    "numerical_gradient",
    "relative_error",
]

_TINY = float(np.finfo(np.float64).tiny)


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient (GC-1) of the scalar ``f()`` with respect to ``x``.

    Each element of ``x`` is perturbed in place by ``±eps`` and restored afterwards
    (also when ``f`` raises), so ``f`` must read ``x`` itself, not a copy.

    Parameters
    ----------
    f : callable with no arguments returning a float
    x : float64 array, writable
    eps : float > 0

    Returns
    -------
    array like ``x``: ∂f/∂x

    Examples
    --------
    >>> x = np.array([1.0, 2.0])
    >>> np.round(numerical_gradient(lambda: float(np.sum(x**2)), x), 6).tolist()
    [2.0, 4.0]
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError(
            f"`x` must be a float64 array; got {getattr(x, 'dtype', type(x).__name__)}. "
            "Central differences need float64: cast with x.astype(np.float64)."
        )
    if not x.flags.writeable:
        raise ValueError("`x` must be writable (it is perturbed in place); pass a copy.")
    if not eps > 0:
        raise ValueError(f"`eps` must be > 0; got {eps}.")
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        try:
            x[idx] = old + eps
            f_plus = float(f())
            x[idx] = old - eps
            f_minus = float(f())
        finally:
            x[idx] = old
        g[idx] = (f_plus - f_minus) / (2.0 * eps)  #                              (GC-1)
    return g


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Max-normalised relative error (GC-2) between two gradients of the same shape.

    ``max|a − n| / max(max|a|, max|n|, tiny)``: 0 for equal arrays (also all-zero
    ones), at most 2 for any pair, and NaN if either holds NaN.

    Examples
    --------
    >>> relative_error(np.array([1.0, 0.0]), np.array([1.0, 0.001]))
    0.001
    """
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"`analytic` {a.shape} and `numeric` {n.shape} must have one shape.")
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(n))), _TINY)
    return float(np.max(np.abs(a - n))) / scale  #                               (GC-2)


@dataclass(frozen=True)
class GradcheckEntry:
    """The comparison for one parameter or input: (GC-2) and the largest absolute error."""

    name: str
    shape: tuple[int, ...]
    rel_err: float
    abs_err: float


class GradcheckReport:
    """Errors of every checked parameter and input; ``str()`` renders an aligned table."""

    def __init__(self, entries: list[GradcheckEntry]) -> None:
        self.entries = tuple(entries)

    @property
    def worst(self) -> float:
        """The largest relative error (NaN if any error is NaN)."""
        errs = [e.rel_err for e in self.entries]
        return float(np.max(errs)) if errs else 0.0

    def ok(self, tol: float = 1e-6) -> bool:
        """True when every relative error is <= ``tol`` (NaN fails)."""
        return all(e.rel_err <= tol for e in self.entries)

    def __getitem__(self, name: str) -> GradcheckEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(f"no entry {name!r}; entries are {[e.name for e in self.entries]}.")

    def __iter__(self) -> Iterator[GradcheckEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __str__(self) -> str:
        rows = [("name", "shape", "rel err", "abs err")]
        rows += [(e.name, str(e.shape), f"{e.rel_err:.2e}", f"{e.abs_err:.2e}") for e in self]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [
            "  ".join(
                [r[0].ljust(widths[0]), r[1].ljust(widths[1])]
                + [r[i].rjust(widths[i]) for i in (2, 3)]
            ).rstrip()
            for r in rows
        ]
        return "\n".join([*lines, f"worst rel err {self.worst:.2e}"])

    def __repr__(self) -> str:
        return f"GradcheckReport({len(self)} entries, worst={self.worst:.2e})"


# -- nested structures of arrays --------------------------------------------------
def _is_float(a: object) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _map(obj: Any, fn: Callable[[np.ndarray], Any]) -> Any:
    """Apply ``fn`` to every float array of a nested tuple/list/dict; other leaves -> None."""
    if _is_float(obj):
        return fn(obj)
    if isinstance(obj, list):
        return [_map(v, fn) for v in obj]
    if isinstance(obj, tuple):  # a NamedTuple becomes a plain tuple
        return tuple(_map(v, fn) for v in obj)
    if isinstance(obj, dict):
        return {k: _map(v, fn) for k, v in obj.items()}
    return None


def _leaves(obj: Any, name: str = "") -> list[tuple[str, np.ndarray]]:
    """``(dotted name, array)`` for every float array of a nested structure, in order."""
    if _is_float(obj):
        return [(name, obj)]
    items: list[tuple[Any, Any]] = []
    if isinstance(obj, (tuple, list)):
        items = list(enumerate(obj))
    elif isinstance(obj, dict):
        items = list(obj.items())
    return [leaf for k, v in items for leaf in _leaves(v, f"{name}.{k}" if name else str(k))]


def _copy(obj: Any) -> Any:
    """The structure with every float array copied (so perturbing never touches the caller's)."""
    if _is_float(obj):
        return np.array(obj, copy=True)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a NamedTuple
        return type(obj)(*(_copy(v) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(_copy(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _copy(v) for k, v in obj.items()}
    return obj


def _match(x: Any, g: Any, name: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Pair every float array of ``x`` with its gradient in ``g`` (None counts as zero)."""
    if _is_float(x):
        if g is None:
            return [(name, x, np.zeros_like(x))]
        g = np.asarray(g, dtype=np.float64)
        if g.shape != x.shape:
            raise ValueError(f"gradient of `{name}` must have shape {x.shape}; got {g.shape}.")
        return [(name, x, g)]
    if isinstance(x, (tuple, list)):
        gs = [None] * len(x) if g is None else g
        if not isinstance(gs, (tuple, list)) or len(gs) != len(x):
            raise ValueError(
                f"gradient of `{name}` must be a sequence of {len(x)} entries mirroring the "
                f"input; got {type(g).__name__}."
            )
        return [
            m
            for i, (xi, gi) in enumerate(zip(x, gs, strict=True))
            for m in _match(xi, gi, f"{name}.{i}")
        ]
    if isinstance(x, dict):
        gd = {} if g is None else g
        if not isinstance(gd, Mapping):
            raise ValueError(f"gradient of `{name}` must be a dict like the input.")
        return [m for k, v in x.items() for m in _match(v, gd.get(k), f"{name}.{k}")]
    return []


def _input_pairs(inputs: Any, grads: Any) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Pair the top-level inputs (a tuple, or a dict of keyword inputs) with their gradients."""
    if isinstance(inputs, dict):
        if isinstance(grads, (tuple, list)):
            grads = dict(zip(inputs, grads, strict=False))
        if grads is not None and not isinstance(grads, Mapping):
            raise ValueError(f"backward must return a dict or tuple of gradients; got {grads!r}.")
        grads = grads or {}
        return [m for k, x in inputs.items() for m in _match(x, grads.get(k), str(k))]
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) > len(inputs) or _leaves(tuple(inputs[len(grads) :])):
        raise ValueError(
            f"backward must return one gradient per input (None where an input has no "
            f"gradient); got {len(grads)} for {len(inputs)} inputs."
        )
    names = [f"input{k}" for k in range(len(grads))]
    return [m for n, x, g in zip(names, inputs, grads, strict=False) for m in _match(x, g, n)]


def _projection(out: Any, rng: np.random.Generator) -> tuple[Any, Callable[[Any], float]]:
    """Weights ``w`` of (GC-3) mirroring ``out``, and the map ``out -> Σ w ⊙ out``."""
    douts = _map(out, lambda a: rng.standard_normal(a.shape))
    ws = [w for _, w in _leaves(douts)]
    if not ws:
        raise ValueError("the forward pass returned no float array to differentiate.")

    def loss(o: Any) -> float:
        return float(sum(np.sum(w * a) for w, (_, a) in zip(ws, _leaves(o), strict=True)))

    return douts, loss


def _entry(name: str, analytic: np.ndarray, numeric: np.ndarray) -> GradcheckEntry:
    abs_err = float(np.max(np.abs(analytic - numeric))) if analytic.size else 0.0
    return GradcheckEntry(name, analytic.shape, relative_error(analytic, numeric), abs_err)


def _check_float64(name: str, a: np.ndarray, hint: str) -> None:
    if a.dtype != np.float64:
        raise TypeError(f"`{name}` must be float64 for a gradient check; got {a.dtype}. {hint}")


def _check_deterministic(loss0: float, loss1: float) -> None:
    if abs(loss0 - loss1) > 1e-12 * max(1.0, abs(loss0)):
        raise ValueError(
            "the forward pass is not deterministic (two runs on the same inputs gave "
            f"{loss0!r} and {loss1!r}); disable dropout or other randomness first."
        )


# -- the checks -------------------------------------------------------------------
def gradcheck_module(
    module: Module,
    inputs: tuple[Any, ...] | list[Any] | dict[str, Any],
    *,
    forward: Callable[..., Any] | None = None,
    backward: Callable[[Module, Any], Any] | None = None,
    seed: int = 0,
    eps: float = 1e-6,
    check_inputs: bool = True,
) -> GradcheckReport:
    """Compare a module's backward with central differences (GC-1) of the loss (GC-3).

    Parameters
    ----------
    module : Module in training mode, every parameter float64 (``module.astype(np.float64)``),
        nothing pending, no ``Dropout`` with ``p > 0`` (checked: the forward must be
        deterministic, which is also verified by running it twice).
    inputs : tuple of positional inputs (named ``input0``, ``input1``, ... and
        ``input1.0`` inside a nested tuple such as an LSTM's ``(h0, c0)``) or dict of
        keyword inputs (named by key). Float arrays must be float64; anything else (ids,
        lengths, None) is passed through unchecked. The caller's arrays are never modified.
    forward : ``forward(module, *inputs)`` (or ``**inputs``) returning the outputs: an
        array or a nested tuple of arrays; default ``module(*inputs)``.
    backward : ``backward(module, douts)`` returning the input gradients mirroring
        ``inputs`` (None where an input has none); ``douts`` mirrors the outputs. Default
        ``module.backward(*douts)`` for tuple outputs, ``module.backward(douts)`` otherwise.
    seed : seeds the projection weights ``w`` of (GC-3)
    eps : step of the central differences
    check_inputs : also check the gradients of the float inputs

    Returns
    -------
    GradcheckReport with one entry per parameter (dotted name), then per float input.
    After the call ``Parameter.grad`` holds the analytic gradient of the loss (GC-3).

    Examples
    --------
    >>> from rnnkit.nn.layers import Linear
    >>> lin = Linear(3, 2, rng=0).astype(np.float64)
    >>> report = gradcheck_module(lin, (np.ones((4, 3)),))
    >>> [e.name for e in report], report.ok()
    (['weight', 'bias', 'input0'], True)
    """
    name = type(module).__name__
    if not module.training:
        raise ValueError(f"{name} is in eval mode, which records nothing; call .train() first.")
    if module.pending():
        raise ValueError(
            f"{name} has {module.pending()} forward pass(es) not yet backpropagated; "
            "call .clear_cache() first."
        )
    for m in module.modules():
        if isinstance(m, Dropout) and m.p > 0:
            raise ValueError(
                f"{name} contains Dropout(p={m.p}) in training mode, which makes the forward "
                "random; build the module with p=0 for the check."
            )
    params = list(module.named_parameters())
    for pname, p in params:
        _check_float64(pname, p.data, "Cast the module with module.astype(np.float64).")
    inp = _copy(inputs if isinstance(inputs, dict) else tuple(inputs))
    named = inp if isinstance(inp, dict) else {f"input{k}": v for k, v in enumerate(inp)}
    for iname, a in _leaves(named):
        _check_float64(iname, a, "Cast it with .astype(np.float64).")
    fwd = forward or (lambda mod, *a, **k: mod(*a, **k))
    bwd = backward or (lambda mod, d: mod.backward(*d) if isinstance(d, tuple) else mod.backward(d))

    def run() -> Any:
        return fwd(module, **inp) if isinstance(inp, dict) else fwd(module, *inp)

    module.zero_grad()
    out = run()
    douts, loss = _projection(out, np.random.default_rng(seed))
    loss0 = loss(out)
    grads = bwd(module, douts)
    if module.pending():
        left = module.pending()
        module.clear_cache()
        raise RuntimeError(f"{name}: backward left {left} forward cache(s) unpopped.")
    pairs = _input_pairs(inp, grads) if check_inputs else []

    def f() -> float:
        value = loss(run())
        module.clear_cache()
        return value

    _check_deterministic(loss0, f())
    entries = [_entry(n, p.grad.copy(), numerical_gradient(f, p.data, eps)) for n, p in params]
    entries += [_entry(n, g, numerical_gradient(f, x, eps)) for n, x, g in pairs]
    if not entries:
        raise ValueError(f"{name}: nothing to check (no parameters and no float inputs).")
    return GradcheckReport(entries)


def gradcheck_op(
    forward: Callable[..., tuple[Any, Any]],
    backward: Callable[[Any, Any], Mapping[str, np.ndarray | None]],
    arrays: Mapping[str, Any],
    *,
    seed: int = 0,
    eps: float = 1e-6,
) -> GradcheckReport:
    """Compare a pure op's backward with central differences (GC-1) of the loss (GC-3).

    Parameters
    ----------
    forward : ``forward(**arrays) -> (outputs, aux)``; ``outputs`` is an array or a
        nested tuple of arrays, ``aux`` whatever backward needs (e.g. the op's cache).
    backward : ``backward(douts, aux) -> {name: gradient}`` with ``douts`` mirroring
        ``outputs``; a gradient for every float array of ``arrays`` (None means zero).
    arrays : the op's keyword arguments; float arrays (float64) are checked, anything
        else (lengths, None, flags) is passed through. The caller's arrays are not modified.
    seed, eps : as in :func:`gradcheck_module`

    Returns
    -------
    GradcheckReport with one entry per float array, in the order of ``arrays``.

    Examples
    --------
    >>> def fwd(x, W):
    ...     return x @ W.T, (x, W)
    >>> def bwd(dy, aux):
    ...     x, W = aux
    ...     return {"x": dy @ W, "W": dy.T @ x}
    >>> rng = np.random.default_rng(0)
    >>> gradcheck_op(fwd, bwd, {"x": rng.normal(size=(2, 3)), "W": rng.normal(size=(4, 3))}).ok()
    True
    """
    inp = _copy(dict(arrays))
    checked = [(k, v) for k, v in inp.items() if _is_float(v)]
    for k, v in checked:
        _check_float64(k, v, "Cast it with .astype(np.float64).")
    if not checked:
        raise ValueError("`arrays` holds no float array to check.")

    def run() -> Any:
        result = forward(**inp)
        if not isinstance(result, tuple) or len(result) != 2:
            raise ValueError(
                "`forward` must return a pair (outputs, aux); wrap the op, e.g. "
                "`y, h_n, c_n, cache = lstm_forward(**a); return (y, h_n, c_n), cache`."
            )
        return result

    out, aux = run()
    douts, loss = _projection(out, np.random.default_rng(seed))
    grads = backward(douts, aux)
    if not isinstance(grads, Mapping):
        raise ValueError(f"`backward` must return a dict of gradients; got {type(grads)}.")
    missing = [k for k, _ in checked if k not in grads]
    if missing:
        raise ValueError(
            f"`backward` must return a gradient for every float array; missing {missing} "
            "(use None for an array with no gradient)."
        )

    def f() -> float:
        return loss(run()[0])

    _check_deterministic(loss(out), f())
    return GradcheckReport(
        [_entry(k, _match(v, grads[k], k)[0][2], numerical_gradient(f, v, eps)) for k, v in checked]
    )
