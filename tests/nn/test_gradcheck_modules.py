"""Finite-difference checks (float64, rel err < 1e-6) of every recurrent module and cell."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.diagnostics import gradcheck_module
from rnnkit.diagnostics.demo import gradcheck_recurrent
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.recurrent import GRU, LSTM, RNN

LAYERS = {
    "rnn_tanh": lambda I, H, **kw: RNN(I, H, nonlinearity="tanh", **kw),
    "rnn_relu": lambda I, H, **kw: RNN(I, H, nonlinearity="relu", **kw),
    "lstm": LSTM,
    "gru": GRU,
    "gru_before": lambda I, H, **kw: GRU(I, H, reset_after=False, **kw),
}

SHAPES = [
    # T, B, I, H, layers, bidirectional, lengths, batch_first, bias
    (1, 1, 1, 1, 1, False, None, False, True),
    (4, 3, 2, 3, 2, True, [4, 1, 2], False, True),
    (3, 2, 3, 1, 1, True, [1, 3], True, True),
    (5, 1, 2, 2, 3, False, None, False, False),
]


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}L{}D{}{}{}{}".format(*s))
def test_layer_gradcheck(kind, shape):
    T, B, I, H, L, bidir, lengths, batch_first, bias = shape
    rng = np.random.default_rng([sum(map(ord, kind)), T, B, H])  # deterministic per case
    layer = LAYERS[kind](
        I,
        H,
        num_layers=L,
        bidirectional=bidir,
        batch_first=batch_first,
        bias=bias,
        dtype=np.float64,
    )
    for p in layer.parameters():  # nonzero biases, larger than default weights
        p.data = rng.uniform(-0.8, 0.8, size=p.shape)
    D = 2 if bidir else 1
    x = rng.normal(size=(B, T, I) if batch_first else (T, B, I))
    h0 = rng.normal(size=(L * D, B, H))
    state = (h0, rng.normal(size=h0.shape)) if kind == "lstm" else h0
    lens = None if lengths is None else np.array(lengths)
    report = gradcheck_recurrent(layer, x, state, lens)
    assert report.ok(1e-6), str(report)
    names = {e.name for e in report}
    assert {n for n, _ in layer.named_parameters()} <= names
    assert "input0" in names  # dx
    assert any(n.startswith("input1") for n in names)  # the initial state


@pytest.mark.parametrize(
    ("cls", "kw"),
    [
        (RNNCell, {"nonlinearity": "relu"}),
        (RNNCell, {}),
        (LSTMCell, {}),
        (GRUCell, {}),
        (GRUCell, {"reset_after": False}),
    ],
)
def test_cell_gradcheck_over_a_loop(cls, kw):
    rng = np.random.default_rng(5)
    cell = cls(3, 2, dtype=np.float64, **kw)
    for p in cell.parameters():
        p.data = rng.uniform(-0.8, 0.8, size=p.shape)
    is_lstm = cls is LSTMCell
    xs = rng.normal(size=(3, 2, 3))
    h0 = rng.normal(size=(2, 2))
    state0 = (h0, rng.normal(size=(2, 2))) if is_lstm else h0

    def forward(m, xs, state):
        outs = []
        for t in range(xs.shape[0]):
            state = m(xs[t], state)
            outs.append(state[0] if is_lstm else state)
        return np.stack(outs)

    def backward(m, dhs):
        dxs = np.zeros_like(xs)
        carry = (np.zeros((2, 2)), np.zeros((2, 2))) if is_lstm else np.zeros((2, 2))
        for t in reversed(range(xs.shape[0])):
            if is_lstm:
                dxs[t], carry = m.backward((carry[0] + dhs[t], carry[1]))
            else:
                dxs[t], carry = m.backward(carry + dhs[t])
        return dxs, carry

    report = gradcheck_module(cell, (xs, state0), forward=forward, backward=backward)
    assert report.ok(1e-6), str(report)
