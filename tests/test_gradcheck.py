"""The public finite-difference checker (GC-1)–(GC-3): passes right gradients, fails wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.diagnostics import (
    GradcheckReport,
    gradcheck_module,
    gradcheck_op,
    numerical_gradient,
    relative_error,
)
from rnnkit.nn.layers import Dropout, Linear
from rnnkit.nn.module import Module, Parameter
from rnnkit.ops.lstm import lstm_backward, lstm_forward


# -- numerical_gradient and relative_error ----------------------------------------
def test_numerical_gradient_and_restore():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    orig = x.copy()
    g = numerical_gradient(lambda: float(np.sum(np.sin(x)) + x[0, 1] * x[1, 0]), x)
    expect = np.cos(orig)
    expect[0, 1] += orig[1, 0]
    expect[1, 0] += orig[0, 1]
    np.testing.assert_allclose(g, expect, atol=1e-9)
    np.testing.assert_array_equal(x, orig)

    def boom():
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        numerical_gradient(boom, x)
    np.testing.assert_array_equal(x, orig)  # restored even when f raises


def test_numerical_gradient_refuses_bad_arrays():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: 0.0, np.zeros(2, np.float32))
    ro = np.zeros(2)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        numerical_gradient(lambda: 0.0, ro)
    with pytest.raises(ValueError, match="eps"):
        numerical_gradient(lambda: 0.0, np.zeros(2), eps=0.0)


def test_relative_error_definition():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0
    assert relative_error(np.array([2.0, 0.0]), np.array([1.0, 0.0])) == 0.5
    assert relative_error(np.array([1e-3, 1e3]), np.array([2e-3, 1e3])) == pytest.approx(1e-6)
    assert relative_error(np.array([1.0]), np.array([-1.0])) == 2.0
    assert np.isnan(relative_error(np.array([np.nan]), np.array([1.0])))
    with pytest.raises(ValueError, match="one shape"):
        relative_error(np.zeros(2), np.zeros(3))


# -- gradcheck_op on the LSTM sequence op -------------------------------------------
def _lstm_fwd(**a):
    y, h_n, c_n, cache = lstm_forward(**a)
    return (y, h_n, c_n), cache


def _lstm_bwd(douts, cache):
    g = lstm_backward(*douts, cache)
    return {
        "x": g.dx,
        "W_ih": g.dW_ih,
        "W_hh": g.dW_hh,
        "b_ih": g.db_ih,
        "b_hh": g.db_hh,
        "h0": g.dh0,
        "c0": g.dc0,
    }


def _lstm_arrays(T, B, I, H, lengths, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(size=(T, B, I)),
        "W_ih": rng.normal(size=(4 * H, I)) * 0.5,
        "W_hh": rng.normal(size=(4 * H, H)) * 0.5,
        "b_ih": rng.normal(size=4 * H) * 0.5,
        "b_hh": rng.normal(size=4 * H) * 0.5,
        "h0": rng.normal(size=(B, H)),
        "c0": rng.normal(size=(B, H)),
        "lengths": lengths,
    }


@pytest.mark.parametrize(
    ("T", "B", "I", "H", "lengths"),
    [(4, 3, 2, 3, np.array([4, 1, 2])), (3, 2, 2, 2, None), (1, 1, 1, 1, np.array([1]))],
)
def test_gradcheck_op_lstm_with_lengths(T, B, I, H, lengths):
    arrays = _lstm_arrays(T, B, I, H, lengths)
    originals = {k: None if v is None else v.copy() for k, v in arrays.items()}
    report = gradcheck_op(_lstm_fwd, _lstm_bwd, arrays)
    assert [e.name for e in report] == ["x", "W_ih", "W_hh", "b_ih", "b_hh", "h0", "c0"]
    assert report.ok(1e-7), str(report)
    assert report["W_hh"].shape == (4 * H, H)
    for k, v in arrays.items():  # the caller's arrays are untouched
        if v is not None:
            np.testing.assert_array_equal(v, originals[k])


def test_gradcheck_op_fails_on_wrong_backward():
    arrays = _lstm_arrays(3, 2, 2, 2, np.array([3, 2]))

    def wrong_bwd(douts, cache):
        grads = _lstm_bwd(douts, cache)
        grads["W_hh"] = grads["W_hh"] * 1.01  # a 1% error in one parameter
        return grads

    report = gradcheck_op(_lstm_fwd, wrong_bwd, arrays)
    assert not report.ok()
    assert report["W_hh"].rel_err == pytest.approx(0.01 / 1.01, rel=1e-3)
    assert max(e.rel_err for e in report if e.name != "W_hh") < 1e-7
    assert report.worst == report["W_hh"].rel_err

    def dropped_bwd(douts, cache):
        return {**_lstm_bwd(douts, cache), "c0": None}  # None counts as zero

    assert report_fails(gradcheck_op(_lstm_fwd, dropped_bwd, arrays), "c0")


def report_fails(report: GradcheckReport, name: str) -> bool:
    return not report.ok() and report[name].rel_err == pytest.approx(1.0)


def test_gradcheck_op_argument_errors():
    arrays = {"x": np.ones(3)}
    with pytest.raises(ValueError, match=r"\(outputs, aux\)"):
        gradcheck_op(lambda x: x * 2, lambda d, a: {"x": d}, arrays)
    with pytest.raises(ValueError, match=r"missing \['x'\]"):
        gradcheck_op(lambda x: (x * 2, None), lambda d, a: {}, arrays)
    with pytest.raises(TypeError, match="float64"):
        gradcheck_op(lambda x: (x, None), lambda d, a: {"x": d}, {"x": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match="no float array"):
        gradcheck_op(lambda n: (np.ones(n), None), lambda d, a: {}, {"n": 3})
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="not deterministic"):
        gradcheck_op(lambda x: (x + rng.normal(), None), lambda d, a: {"x": d}, arrays)


# -- gradcheck_module ---------------------------------------------------------------
class ToyCell(Module):
    """y = a ⊙ x + h,  h' = tanh(h ⊙ c),  c' = c + a ⊙ x: nested inputs and outputs."""

    def __init__(self, n: int, bug: bool = False) -> None:
        super().__init__()
        self.a = Parameter(np.linspace(0.5, 1.5, n))
        self.bug = bug

    def forward(self, x, state, scale=1.0):
        h, c = state
        a = self.a.data
        y, h2, c2 = scale * a * x + h, np.tanh(h * c), c + a * x
        self._push((x, h, c, h2, scale))
        return y, (h2, c2)

    def backward(self, dy, dstate):
        x, h, c, h2, scale = self._pop()
        dh2, dc2 = dstate
        dpre = dh2 * (1 - h2**2)
        self.a.grad += (scale * dy * x + dc2 * x).sum(axis=0)
        dx = scale * self.a.data * dy + dc2 * self.a.data
        dc_direct = 0 * dc2 if self.bug else dc2  # the bug forgets ∂c'/∂c = 1
        return dx, (dy + dpre * c, dpre * h + dc_direct)


def _toy_inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 2)), (rng.normal(size=(3, 2)), rng.normal(size=(3, 2)))


def test_gradcheck_module_nested_inputs_and_outputs():
    x, (h, c) = _toy_inputs()
    report = gradcheck_module(ToyCell(2), (x, (h, c), 0.5))
    assert [e.name for e in report] == ["a", "input0", "input1.0", "input1.1"]
    assert report.ok(1e-8), str(report)
    report = gradcheck_module(
        ToyCell(2),
        {"x": x, "state": (h, c)},
        forward=lambda m, x, state: m(x, state, scale=2.0),
        backward=lambda m, d: dict(zip(("x", "state"), m.backward(*d), strict=True)),
    )
    assert [e.name for e in report] == ["a", "x", "state.0", "state.1"]
    assert report.ok(1e-8)
    report = gradcheck_module(ToyCell(2), (x, (h, c)), check_inputs=False)
    assert [e.name for e in report] == ["a"]


def test_gradcheck_module_fails_on_wrong_backward():
    x, state = _toy_inputs(1)
    report = gradcheck_module(ToyCell(2, bug=True), (x, state))
    assert not report.ok()
    assert report["input1.1"].rel_err > 0.1
    assert report["a"].rel_err < 1e-8
    lin = Linear(3, 2, rng=0).astype(np.float64)
    doubled = gradcheck_module(lin, (x @ np.ones((2, 3)),), backward=lambda m, d: 2 * m.backward(d))
    assert not doubled.ok()
    assert doubled["input0"].rel_err == pytest.approx(0.5)


def test_gradcheck_module_refusals():
    x = np.random.default_rng(2).normal(size=(2, 3))
    with pytest.raises(TypeError, match=r"astype\(np.float64\)"):
        gradcheck_module(Linear(3, 2), (x.astype(np.float32),))
    lin = Linear(3, 2).astype(np.float64)
    with pytest.raises(TypeError, match="input0"):
        gradcheck_module(lin, (x.astype(np.float32),))
    with pytest.raises(ValueError, match="eval mode"):
        gradcheck_module(lin.eval(), (x,))
    lin.train()
    lin(x)
    with pytest.raises(ValueError, match="not yet backpropagated"):
        gradcheck_module(lin, (x,))
    lin.clear_cache()

    class WithDropout(Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = Linear(3, 2).astype(np.float64)
            self.drop = Dropout(0.2)

    with pytest.raises(ValueError, match=r"Dropout\(p=0.2\)"):
        gradcheck_module(WithDropout(), (x,))
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="not deterministic"):
        gradcheck_module(lin, (x,), forward=lambda m, x: m(x) + rng.normal())
    assert lin.pending() == 0
    with pytest.raises(RuntimeError, match="unpopped"):
        gradcheck_module(lin, (x,), forward=lambda m, x: m(x) + m(x) * 0)
    assert lin.pending() == 0
    with pytest.raises(ValueError, match="one gradient per input"):
        gradcheck_module(lin, (x, x), forward=lambda m, x, _: m(x))
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        gradcheck_module(lin, (x,), backward=lambda m, d: m.backward(d)[:1])


def test_gradcheck_module_leaves_inputs_and_stack_alone():
    lin = Linear(3, 2, rng=4).astype(np.float64)
    x = np.random.default_rng(5).normal(size=(4, 3))
    x0, w0 = x.copy(), lin.weight.data.copy()
    report = gradcheck_module(lin, [x], seed=7)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(lin.weight.data, w0)
    assert lin.pending() == 0
    w = np.random.default_rng(7).standard_normal((4, 2))  # the (GC-3) weights for seed 7
    np.testing.assert_allclose(lin.weight.grad, w.T @ x, rtol=1e-12)
    assert report.ok()


def test_report_table_and_lookup():
    lin = Linear(3, 2, rng=4).astype(np.float64)
    report = gradcheck_module(lin, (np.ones((1, 3)),))
    lines = str(report).splitlines()
    assert lines[0].split() == ["name", "shape", "rel", "err", "abs", "err"]
    assert [ln.split()[0] for ln in lines[1:4]] == ["weight", "bias", "input0"]
    assert "(2, 3)" in lines[1]
    assert len({len(ln) for ln in lines[:4]}) == 1  # aligned columns
    assert lines[-1].startswith("worst rel err")
    assert len(report) == 3
    assert "worst=" in repr(report)
    with pytest.raises(KeyError, match="weight"):
        report["nope"]
    assert GradcheckReport([]).ok()
    assert GradcheckReport([]).worst == 0.0
