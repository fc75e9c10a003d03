"""Every bad input to a recurrent layer raises a clear error and changes nothing."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.recurrent import GRU, LSTM, RNN

T, B, I, H = 4, 3, 2, 5


def snapshot(m):
    return (
        {k: v.copy() for k, v in m.state_dict().items()},
        {k: p.grad.copy() for k, p in m.named_parameters()},
        m.pending(),
        copy.deepcopy(m.rng.bit_generator.state),
    )


def assert_unchanged(m, snap):
    params, grads, pending, rng_state = snap
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, params[k])
    for k, p in m.named_parameters():
        np.testing.assert_array_equal(p.grad, grads[k])
    assert m.pending() == pending
    assert m.rng.bit_generator.state == rng_state


X = np.zeros((T, B, I))
H0 = np.zeros((1, B, H))
BAD_FORWARD = [
    ("rank", {"x": np.zeros((T, I))}, ValueError, "`x` must have 3 dimensions"),
    ("feature", {"x": np.zeros((T, B, I + 1))}, ValueError, "feature size I=2"),
    ("int x", {"x": np.zeros((T, B, I), dtype=np.int64)}, TypeError, "`x` must have dtype float"),
    ("dtype mismatch", {"x": np.zeros((T, B, I), np.float32)}, TypeError, "float64 like"),
    ("nan x", {"x": np.full((T, B, I), np.nan)}, ValueError, "`x` must be finite"),
    ("state shape", {"state": np.zeros((2, B, H))}, ValueError, r"must have shape \(1, 3, 5\)"),
    ("state batch", {"state": np.zeros((1, B + 1, H))}, ValueError, r"\(1, 3, 5\)"),
    ("inf state", {"state": np.full((1, B, H), np.inf)}, ValueError, "finite"),
    ("len high", {"lengths": np.array([4, 5, 1])}, ValueError, r"\[1, T=4\]"),
    ("len zero", {"lengths": np.array([4, 0, 1])}, ValueError, r"\[1, T=4\]"),
    ("len batch", {"lengths": np.array([4, 2])}, ValueError, r"shape \(B,\) = \(3,\)"),
    ("len float", {"lengths": np.array([4.0, 2.0, 1.0])}, TypeError, "integers"),
]


@pytest.mark.parametrize("ctor", [RNN, GRU, LSTM], ids=["rnn", "gru", "lstm"])
@pytest.mark.parametrize(
    ("case", "kw", "exc", "match"), BAD_FORWARD, ids=[c[0] for c in BAD_FORWARD]
)
def test_bad_forward_input(ctor, case, kw, exc, match):
    m = ctor(I, H, dropout=0.0, dtype=np.float64)
    m(X)  # one recorded forward pass that must survive the failed call
    snap = snapshot(m)
    args = {"x": X, "state": None, "lengths": None, **kw}
    if ctor is LSTM and args["state"] is not None:
        args["state"] = (args["state"], np.zeros((1, B, H)))
    with pytest.raises(exc, match=match):
        m(args["x"], args["state"], args["lengths"])
    assert_unchanged(m, snap)


def test_lstm_state_must_be_a_pair():
    m = LSTM(I, H, dtype=np.float64)
    with pytest.raises(TypeError, match=r"tuple \(h, c\)"):
        m(X, H0)


@pytest.mark.parametrize("ctor", [RNN, GRU, LSTM], ids=["rnn", "gru", "lstm"])
def test_bad_backward_input_keeps_the_recorded_pass(ctor):
    m = ctor(I, H, bidirectional=True, dtype=np.float64)
    y, _ = m(X)
    snap = snapshot(m)
    with pytest.raises(ValueError, match="`dy` must have shape"):
        m.backward(np.zeros((T, B, H)))  # D*H expected
    assert_unchanged(m, snap)
    with pytest.raises(TypeError, match="`dy` must have dtype float"):
        m.backward(np.zeros(y.shape, dtype=np.int32))
    assert_unchanged(m, snap)
    dx, _ = m.backward(np.ones_like(y))  # the pass is still there
    assert dx.shape == X.shape


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"input_size": 0, "hidden_size": 3}, "input_size"),
        ({"input_size": 2, "hidden_size": -1}, "hidden_size"),
        ({"input_size": 2, "hidden_size": 3, "num_layers": 0}, "num_layers"),
        ({"input_size": 2, "hidden_size": 3, "dropout": 1.0}, "dropout"),
        ({"input_size": 2, "hidden_size": 3, "recurrent_init": "xavier"}, "recurrent_init"),
    ],
)
def test_bad_constructor_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        GRU(**kw)


def test_bad_nonlinearity():
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(2, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="nonlinearity"):
        RNNCell(2, 3, nonlinearity="gelu")


@pytest.mark.parametrize("ctor", [RNNCell, GRUCell, LSTMCell])
def test_cell_bad_input(ctor):
    c = ctor(I, H, dtype=np.float64)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        c(np.zeros((B, I + 1)))
    with pytest.raises(ValueError, match="`x` must have 2 dimensions"):
        c(np.zeros((T, B, I)))
    out = c(np.zeros((B, I)))
    with pytest.raises(ValueError, match="must have shape"):
        c.backward((np.zeros((B + 1, H)), None) if ctor is LSTMCell else np.zeros((B + 1, H)))
    assert c.pending() == 1
    dx, _ = c.backward(out if ctor is not LSTMCell else (out[0], out[1]))
    assert dx.shape == (B, I)
