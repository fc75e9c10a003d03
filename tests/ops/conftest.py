"""Shared machinery for the sequence-op tests: inputs, finite differences, a PyTorch twin.

Every op under test has the form ``forward(x, W_ih, W_hh, b_ih, b_hh, h0[, c0], lengths, ...)
-> (*outputs, cache)`` and ``backward(*d_outputs, cache) -> Grads`` whose fields are ``d`` + the
name of each input. The helpers below only rely on that form. They reach the test files as
fixtures (``op_check``), so the test files never import this module by path.

The gradient check uses a random projection of every output,
``L = Σ w_y ⊙ y + Σ w_h ⊙ h_n (+ Σ w_c ⊙ c_n)``, so ``∂L/∂output = w``, and compares
the op's backward with float64 central differences of ``L``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch

Forward = Callable[..., tuple[Any, ...]]
Backward = Callable[..., Any]

WEIGHT_NAMES = ("W_ih", "W_hh", "b_ih", "b_hh")
TORCH_PARAM = {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0",
               "b_hh": "bias_hh_l0"}  # fmt: skip


def make_inputs(
    rng: np.random.Generator,
    T: int,
    B: int,
    I: int,
    H: int,
    G: int,
    states: tuple[str, ...] = ("h0",),
    bias: bool = True,
    scale: float = 0.6,
) -> dict[str, np.ndarray | None]:
    """Random float64 inputs of a sequence op with G gate blocks, nonzero biases and states."""
    return {
        "x": rng.normal(size=(T, B, I)),
        "W_ih": scale * rng.normal(size=(G * H, I)),
        "W_hh": scale * rng.normal(size=(G * H, H)),
        "b_ih": 0.5 * rng.normal(size=G * H) if bias else None,
        "b_hh": 0.5 * rng.normal(size=G * H) if bias else None,
        **{name: 0.8 * rng.normal(size=(B, H)) for name in states},
    }


def ragged_lengths(rng: np.random.Generator, T: int, B: int) -> np.ndarray:
    """Lengths in [1, T] that include a length-1 row and a full-length row (needs B >= 2)."""
    lengths = rng.integers(1, T + 1, size=B)
    lengths[rng.permutation(B)[:2]] = [1, T]
    return lengths.astype(np.int64)


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max|a − n| / max(max|a|, max|n|); 0 when both are exactly zero."""
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.abs(analytic - numeric).max() / scale)


def numeric_grad(loss: Callable[[], float], arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``loss()`` with respect to ``arr`` (perturbed in place, restored)."""
    grad = np.empty_like(arr)
    for idx in np.ndindex(arr.shape):
        orig = arr[idx]
        arr[idx] = orig + eps
        up = loss()
        arr[idx] = orig - eps
        down = loss()
        arr[idx] = orig
        grad[idx] = (up - down) / (2 * eps)
    return grad


def projection(rng: np.random.Generator, outputs: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """Random weights ``w`` with the shapes of ``outputs`` (the ∂L/∂output of the loss)."""
    return [rng.normal(size=o.shape).astype(o.dtype) for o in outputs]


def split_outputs(result: tuple[Any, ...]) -> tuple[tuple[np.ndarray, ...], Any]:
    """``(*outputs, cache)`` -> ``(outputs, cache)``."""
    return tuple(result[:-1]), result[-1]


def gradient_errors(
    forward: Forward,
    backward: Backward,
    inputs: dict[str, np.ndarray | None],
    lengths: np.ndarray | None,
    rng: np.random.Generator,
    eps: float = 1e-6,
) -> dict[str, float]:
    """Relative error of the op's backward against central differences, for every input.

    Inputs that are None (no bias) must get a None gradient; they are reported with error 0.
    """
    outputs, cache = split_outputs(forward(**inputs, lengths=lengths))
    ws = projection(rng, outputs)
    grads = backward(*ws, cache)._asdict()

    def loss() -> float:
        outs, _ = split_outputs(forward(**inputs, lengths=lengths))
        return float(sum(np.sum(w * o) for w, o in zip(ws, outs, strict=True)))

    errors = {}
    for name, arr in inputs.items():
        g = grads["d" + name]
        if arr is None:
            if g is not None:
                raise AssertionError(f"d{name} must be None when {name} is None; got an array")
            errors[name] = 0.0
            continue
        errors[name] = rel_error(g, numeric_grad(loss, arr, eps))
    return errors


Reference = Callable[
    [dict[str, Any], "np.ndarray | None", list[np.ndarray]],
    tuple[list[np.ndarray], dict[str, Any]],
]


def compare_with_reference(
    forward: Forward,
    backward: Backward,
    inputs: dict[str, np.ndarray | None],
    lengths: np.ndarray | None,
    reference: Reference,
    rng: np.random.Generator,
    rtol: float = 1e-9,
    atol: float = 1e-12,
) -> None:
    """Outputs and every gradient of the op equal ``reference(inputs, lengths, ws)``'s."""
    outputs, cache = split_outputs(forward(**inputs, lengths=lengths))
    ws = projection(rng, outputs)
    grads = backward(*ws, cache)._asdict()
    ref_outputs, ref_grads = reference(inputs, lengths, ws)
    for k, (ours, theirs) in enumerate(zip(outputs, ref_outputs, strict=True)):
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=f"output {k}")
    assert set(grads) == set(ref_grads)
    for name, g in grads.items():
        if ref_grads[name] is None:
            assert g is None, name
        else:
            np.testing.assert_allclose(g, ref_grads[name], rtol=rtol, atol=atol, err_msg=name)


def torch_reference(module: torch.nn.RNNBase) -> Reference:
    """A reference that runs a 1-layer float64 ``torch.nn.RNN/LSTM/GRU`` with our weights.

    Lengths go through ``pack_padded_sequence(enforce_sorted=False)`` and come back from
    ``pad_packed_sequence(total_length=T)``, zero at padded steps.
    """

    def run(
        inputs: dict[str, Any], lengths: np.ndarray | None, ws: list[np.ndarray]
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        T = inputs["x"].shape[0]
        with torch.no_grad():
            for name in WEIGHT_NAMES:
                if inputs[name] is not None:
                    getattr(module, TORCH_PARAM[name]).copy_(torch.from_numpy(inputs[name]))
        state_names = [n for n in ("h0", "c0") if n in inputs]
        leaves = {n: torch.tensor(inputs[n], requires_grad=True) for n in ["x", *state_names]}
        states = tuple(leaves[n][None] for n in state_names)  # (1, B, H) each
        state = states if len(states) == 2 else states[0]
        x = leaves["x"]
        if lengths is not None:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                x, torch.from_numpy(lengths), enforce_sorted=False
            )
            out, final = module(packed, state)
            y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
        else:
            y, final = module(x, state)
        finals = list(final) if len(states) == 2 else [final]
        outs = [y] + [s[0] for s in finals]
        loss = sum((torch.from_numpy(w) * o).sum() for w, o in zip(ws, outs, strict=True))
        loss.backward()
        grads = {"d" + n: leaf.grad.numpy() for n, leaf in leaves.items()}
        for name in WEIGHT_NAMES:
            p = getattr(module, TORCH_PARAM[name], None)
            grads["d" + name] = None if p is None else p.grad.numpy()
        return [o.detach().numpy() for o in outs], grads

    return run


def compare_float32(
    forward: Forward,
    backward: Backward,
    inputs: dict[str, np.ndarray | None],
    lengths: np.ndarray | None,
    rng: np.random.Generator,
    rtol: float = 1e-4,
    atol: float = 1e-6,
) -> None:
    """The op in float32 keeps float32 everywhere and stays within ``rtol`` of float64."""
    inputs32 = {k: None if v is None else v.astype(np.float32) for k, v in inputs.items()}
    out64, cache64 = split_outputs(forward(**inputs, lengths=lengths))
    out32, cache32 = split_outputs(forward(**inputs32, lengths=lengths))
    ws = projection(rng, out64)
    g64 = backward(*ws, cache64)._asdict()
    g32 = backward(*[w.astype(np.float32) for w in ws], cache32)._asdict()
    pairs = [(f"output {k}", a, b) for k, (a, b) in enumerate(zip(out32, out64, strict=True))]
    pairs += [(name, g32[name], g) for name, g in g64.items() if g is not None]
    for name, a32, a64 in pairs:
        assert a32.dtype == np.float32, f"{name} is {a32.dtype}"
        np.testing.assert_allclose(a32, a64, rtol=rtol, atol=atol, err_msg=name)


def check_cache(
    forward: Forward,
    backward: Backward,
    inputs: dict[str, np.ndarray | None],
    lengths: np.ndarray | None,
    rng: np.random.Generator,
) -> None:
    """Arrays the forward puts in its cache are read-only; backward is repeatable and pure."""
    outputs, cache = split_outputs(forward(**inputs, lengths=lengths))
    given = [v for v in inputs.values() if v is not None]
    created = [
        (name, v)
        for name, v in cache._asdict().items()
        if isinstance(v, np.ndarray) and not any(v is g for g in given)
    ]
    assert created, "the cache holds no arrays of its own"
    for name, v in created:
        assert not v.flags.writeable, f"cache.{name} is writeable"
    name, v = created[0]
    with pytest.raises(ValueError, match="read-only"):
        v.flat[0] = 1.0
    ws = projection(rng, outputs)
    ws_before = [w.copy() for w in ws]
    first = backward(*ws, cache)
    second = backward(*ws, cache)
    for w, w0 in zip(ws, ws_before, strict=True):
        np.testing.assert_array_equal(w, w0, err_msg="backward modified its incoming gradient")
    for name, a in first._asdict().items():
        b = getattr(second, name)
        if a is None:
            assert b is None, name
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)
            assert not np.shares_memory(a, b), f"{name} is shared between two backward calls"
    # Every gradient is a fresh array: adding into one must not change another or the cache.
    arrays = [(n, g) for n, g in first._asdict().items() if g is not None]
    arrays += [(f"cache.{n}", v) for n, v in cache._asdict().items() if isinstance(v, np.ndarray)]
    for k, (name_a, a) in enumerate(arrays):
        for name_b, b in arrays[k + 1 :]:
            assert not np.shares_memory(a, b), f"{name_a} shares memory with {name_b}"


def check_padding(
    forward: Forward,
    backward: Backward,
    inputs: dict[str, np.ndarray | None],
    lengths: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """(SEQ-1)/(SEQ-2): padded steps output 0, pass the state, ignore x and get no gradient.

    Also: each sequence run alone, cut to its own length, gives the same outputs and final
    states as its row in the padded batch.
    """
    T, B = inputs["x"].shape[:2]
    outputs, cache = split_outputs(forward(**inputs, lengths=lengths))
    y, finals = outputs[0], outputs[1:]
    pad = np.arange(T)[:, None] >= lengths[None, :]  # (T, B)
    assert (y[pad] == 0).all()
    h_n = finals[0]
    for b in range(B):
        np.testing.assert_array_equal(h_n[b], y[lengths[b] - 1, b])
    # Garbage in padded x changes nothing.
    noisy = dict(inputs)
    noisy["x"] = inputs["x"] + 1e3 * pad[:, :, None] * rng.normal(size=inputs["x"].shape)
    noisy_outputs, _ = split_outputs(forward(**noisy, lengths=lengths))
    for a, b in zip(outputs, noisy_outputs, strict=True):
        np.testing.assert_array_equal(a, b)
    # No gradient reaches padded steps.
    ws = projection(rng, outputs)
    grads = backward(*ws, cache)
    assert (grads.dx[pad] == 0).all()
    # Each sequence alone, with B=1 and its own length.
    state_names = [n for n in ("h0", "c0") if n in inputs]
    for b in range(B):
        L = int(lengths[b])
        alone = {k: v for k, v in inputs.items() if k not in ("x", *state_names)}
        alone["x"] = inputs["x"][:L, b : b + 1]
        for n in state_names:
            alone[n] = inputs[n][b : b + 1]
        outs_b, _ = split_outputs(forward(**alone, lengths=None))
        np.testing.assert_allclose(outs_b[0][:, 0], y[:L, b], rtol=1e-12, atol=1e-14)
        for s_b, s in zip(outs_b[1:], finals, strict=True):
            np.testing.assert_allclose(s_b[0], s[b], rtol=1e-12, atol=1e-14)


def check_backward_args(
    forward: Forward, backward: Backward, inputs: dict[str, np.ndarray | None]
) -> None:
    """Incoming gradients: None means zero; a wrong shape raises naming the argument."""
    outputs, cache = split_outputs(forward(**inputs, lengths=None))
    names = ["dy", "dh_n", "dc_n"][: len(outputs)]
    zero = backward(*[None] * len(outputs), cache)
    for name, g in zero._asdict().items():
        assert g is None or not g.any(), name
    for k, name in enumerate(names):
        ws = [np.ones_like(o) for o in outputs]
        ws[k] = np.ones((*outputs[k].shape[:-1], outputs[k].shape[-1] + 1))
        with pytest.raises(ValueError, match=f"`{name}` must have shape"):
            backward(*ws, cache)
        ws[k] = np.ones(outputs[k].shape, dtype=np.int64)
        with pytest.raises(TypeError, match=f"`{name}` must have dtype float32 or float64"):
            backward(*ws, cache)


class BadCase(NamedTuple):
    """One invalid call: a label, the keyword changes, the exception and a message regex."""

    label: str
    changes: dict[str, Any]
    exc: type[Exception]
    match: str


def bad_input_cases(inputs: dict[str, Any], lengths: np.ndarray) -> list[BadCase]:
    """Invalid variants of a valid call, shared by every sequence op (G read off the weights)."""
    x, T, B = inputs["x"], inputs["x"].shape[0], inputs["x"].shape[1]
    H = inputs["W_hh"].shape[1]
    nan_x, inf_x = x.copy(), x.copy()
    nan_x[0, 0, 0], inf_x[-1, -1, -1] = np.nan, np.inf
    cases = [
        BadCase("x rank 2", {"x": x[0]}, ValueError, r"`x` must have 3 dimensions"),
        BadCase("x rank 4", {"x": x[None]}, ValueError, r"`x` must have 3 dimensions"),
        BadCase("x no steps", {"x": x[:0]}, ValueError, r"`x` must have at least one time step"),
        BadCase("x feature size", {"x": np.concatenate([x, x], axis=2)}, ValueError,
                r"`x` must have feature size"),
        BadCase("x int", {"x": x.astype(np.int64)}, TypeError, r"`x` must have dtype float32"),
        BadCase("x not array", {"x": "abc"}, TypeError, r"`x` must be a NumPy array"),
        BadCase("x nan", {"x": nan_x}, ValueError, r"`x` must be finite"),
        BadCase("x inf", {"x": inf_x}, ValueError, r"`x` must be finite"),
        BadCase("x float32, weights float64", {"x": x.astype(np.float32), "h0": None},
                TypeError, r"`W_ih` must have dtype float32 like the input"),
        BadCase("W_hh float32", {"W_hh": inputs["W_hh"].astype(np.float32)}, TypeError,
                r"`W_hh` must have dtype float64"),
        BadCase("b_ih float32", {"b_ih": inputs["b_ih"].astype(np.float32)}, TypeError,
                r"`b_ih` must have dtype float64"),
        BadCase("W_hh gate blocks", {"W_hh": inputs["W_hh"][:H]} if inputs["W_hh"].shape[0] > H
                else {"W_hh": np.concatenate([inputs["W_hh"]] * 2)}, ValueError,
                r"`W_hh` must have shape"),
        BadCase("W_ih rows", {"W_ih": inputs["W_ih"][:-1]}, ValueError, r"`W_ih` must have shape"),
        BadCase("b_hh size", {"b_hh": inputs["b_hh"][:-1]}, ValueError, r"`b_hh` must have shape"),
        BadCase("one bias", {"b_hh": None}, ValueError, r"`b_ih` and `b_hh` must both"),
        BadCase("h0 shape", {"h0": np.zeros((B + 1, H))}, ValueError, r"`h0` must have shape"),
        BadCase("h0 rank", {"h0": np.zeros((1, B, H))}, ValueError, r"`h0` must have 2 dim"),
        BadCase("h0 nan", {"h0": np.full((B, H), np.nan)}, ValueError, r"`h0` must be finite"),
        BadCase("h0 float32", {"h0": np.zeros((B, H), np.float32)}, TypeError,
                r"`h0` must have dtype float64"),
        BadCase("lengths 0", {"lengths": np.where(lengths == lengths.max(), 0, lengths)},
                ValueError, r"`lengths` must be in \[1, T="),
        BadCase("lengths > T", {"lengths": lengths + T}, ValueError, r"`lengths` must be in \[1"),
        BadCase("lengths batch", {"lengths": np.append(lengths, 1)}, ValueError,
                r"`lengths` must have shape \(B,\)"),
        BadCase("lengths float", {"lengths": lengths.astype(np.float64)}, TypeError,
                r"`lengths` must hold integers"),
    ]  # fmt: skip
    if "c0" in inputs:
        cases.append(BadCase("c0 shape", {"c0": np.zeros((B, H + 1))}, ValueError,
                             r"`c0` must have shape"))  # fmt: skip
    return cases


def run_bad_cases(forward: Forward, inputs: dict[str, Any], cases: list[BadCase]) -> None:
    """Every case must raise its exception with a matching message; report all that do not."""
    failures = []
    for case in cases:
        try:
            with pytest.raises(case.exc, match=case.match):
                forward(**{**inputs, **case.changes})
        except (Exception, pytest.fail.Exception) as e:
            failures.append(f"{case.label}: {type(e).__name__}: {e}")
    if failures:
        raise AssertionError("\n".join(failures))


class OpCheck:
    """The helpers above, handed to tests by the ``op_check`` fixture."""

    make_inputs = staticmethod(make_inputs)
    ragged_lengths = staticmethod(ragged_lengths)
    rel_error = staticmethod(rel_error)
    numeric_grad = staticmethod(numeric_grad)
    projection = staticmethod(projection)
    gradient_errors = staticmethod(gradient_errors)
    compare_with_reference = staticmethod(compare_with_reference)
    torch_reference = staticmethod(torch_reference)
    compare_float32 = staticmethod(compare_float32)
    check_cache = staticmethod(check_cache)
    check_padding = staticmethod(check_padding)
    check_backward_args = staticmethod(check_backward_args)
    bad_input_cases = staticmethod(bad_input_cases)
    run_bad_cases = staticmethod(run_bad_cases)
    BadCase = BadCase


@pytest.fixture(scope="session")
def op_check() -> type[OpCheck]:
    """The shared op-test helpers (see the module docstring)."""
    return OpCheck


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's id, so every test is deterministic and independent."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
