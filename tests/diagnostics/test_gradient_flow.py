"""gradient_flow: ∂L/∂h_t and ∂L/∂c_t equal central differences of the loss in the state at t.

The reference below runs the stack with the sequence ops, each (layer, direction) in two
pieces, steps 1..t and t+1..T, and adds a perturbation to the state between them (and to
the output y_t, which *is* that state). The derivative of the loss in that perturbation is
∂L/∂h_t by definition; nothing of the backward is used. For the LSTM cell the perturbed
c_t is also passed through h_t = o_t ⊙ tanh(c_t) (LSTM-5): ∂L/∂c_t is the total derivative.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.diagnostics.gradient_flow import gradient_flow, model_gradient_flow, step_norms
from rnnkit.nn.recurrent import GRU, LSTM, RNN
from rnnkit.ops.gru import gru_forward
from rnnkit.ops.lstm import lstm_forward
from rnnkit.ops.rnn import rnn_forward

CLASSES = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def make_layer(cell, I, H, L, bidirectional, seed=0, **kw):
    layer = CLASSES[cell](I, H, L, bidirectional=bidirectional, rng=seed, dtype=np.float64, **kw)
    rng = np.random.default_rng(seed + 1)
    for _, p in layer.named_parameters():  # larger than the default, nonzero biases everywhere
        p.data = rng.normal(scale=0.7, size=p.shape)
    return layer


def run_op(layer, cell, k, d, x, h0, c0):
    """(y, h_n, c_n, o_n): o_n is the LSTM's last output gate (None for the others)."""
    sfx = f"_l{k}" + ("_reverse" if d else "")
    w = [getattr(layer, n + sfx).data for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    if cell == "lstm":
        y, h, c, cache = lstm_forward(x, *w, h0=h0, c0=c0)
        return y, h, c, cache.gates[-1, :, 3 * layer.hidden_size :]
    if cell == "gru":
        y, h, _ = gru_forward(x, *w, h0=h0, reset_after=layer.reset_after)
    else:
        y, h, _ = rnn_forward(x, *w, h0=h0, nonlinearity=layer.nonlinearity)
    return y, h, None, None


def reference_loss(layer, cell, x, h0, c0, target, wh, wc, perturb=None):
    """L = ½‖y − target‖² + Σ wh ⊙ h_n (+ Σ wc ⊙ c_n), with an optional state perturbation.

    ``perturb = (k, d, t, which, delta)`` adds ``delta`` (B, H) to h (which="h") or c of
    layer k, direction d right after input time step t (0-based, input time order).
    """
    L, D = layer.num_layers, layer.num_directions
    T = x.shape[0]
    layer_in = x
    h_n, c_n = np.zeros_like(h0), np.zeros_like(h0)
    for k in range(L):
        outs = []
        for d in range(D):
            j = k * D + d
            inp = layer_in if d == 0 else layer_in[::-1]
            c_start = c0[j] if cell == "lstm" else None
            if perturb is not None and perturb[:2] == (k, d):
                _, _, t, which, delta = perturb
                s = t if d == 0 else T - 1 - t  # the op's own step index
                y1, h, c, o = run_op(layer, cell, k, d, inp[: s + 1], h0[j], c_start)
                y1 = y1.copy()
                if which == "h":
                    h = h + delta
                else:  # the total derivative: c'_s also reaches h'_s = o_s ⊙ tanh(c'_s)
                    c = c + delta
                    h = o * np.tanh(c)
                y1[-1] = h  # y_s is h'_s
                if s + 1 < T:
                    y2, h, c, _ = run_op(layer, cell, k, d, inp[s + 1 :], h, c)
                    y = np.concatenate([y1, y2])
                else:
                    y = y1
            else:
                y, h, c, _ = run_op(layer, cell, k, d, inp, h0[j], c_start)
            outs.append(y if d == 0 else y[::-1])
            h_n[j] = h
            if c is not None:
                c_n[j] = c
        layer_in = np.concatenate(outs, axis=2)
    loss = 0.5 * np.sum((layer_in - target) ** 2) + np.sum(wh * h_n)
    if cell == "lstm":
        loss += np.sum(wc * c_n)
    return loss, layer_in, h_n, c_n


CASES = [  # (cell, T, B, I, H, L, bidirectional)
    ("rnn", 1, 1, 1, 1, 1, False),
    ("rnn", 5, 2, 3, 3, 1, False),
    ("lstm", 5, 2, 3, 3, 1, False),
    ("gru", 5, 2, 3, 3, 1, False),
    ("lstm", 1, 1, 2, 1, 1, False),
    ("rnn", 4, 2, 2, 2, 2, True),
    ("lstm", 4, 2, 2, 2, 2, True),
    ("gru", 4, 1, 2, 2, 2, True),
]


@pytest.mark.parametrize(("cell", "T", "B", "I", "H", "L", "bidir"), CASES)
def test_gradient_flow_equals_finite_differences(cell, T, B, I, H, L, bidir):
    layer = make_layer(cell, I, H, L, bidir)
    D = 2 if bidir else 1
    rng = np.random.default_rng(7)
    x = rng.normal(size=(T, B, I))
    h0 = 0.5 * rng.normal(size=(L * D, B, H))
    c0 = 0.5 * rng.normal(size=(L * D, B, H))
    target = rng.normal(size=(T, B, D * H))
    wh, wc = rng.normal(size=h0.shape), rng.normal(size=h0.shape)

    _, y, _, _ = reference_loss(layer, cell, x, h0, c0, target, wh, wc)
    y_layer, _ = layer.eval()(x, (h0, c0) if cell == "lstm" else h0)
    np.testing.assert_allclose(y, y_layer, rtol=1e-12, atol=1e-12)  # the reference is the layer

    state0 = (h0, c0) if cell == "lstm" else h0
    dstate = (wh, wc) if cell == "lstm" else wh
    flow = gradient_flow(layer, x, y - target, dstate, state=state0, keep_grads=True)
    assert flow.dh.shape == (L, D, T, B, H)

    eps = 1e-6
    which_all = ("h", "c") if cell == "lstm" else ("h",)
    for which in which_all:
        analytic = flow.dh if which == "h" else flow.dc
        numeric = np.zeros_like(analytic)
        for k in range(L):
            for d in range(D):
                for t in range(T):
                    for b in range(B):
                        for u in range(H):
                            delta = np.zeros((B, H))
                            delta[b, u] = eps
                            args = (layer, cell, x, h0, c0, target, wh, wc)
                            lp = reference_loss(*args, perturb=(k, d, t, which, delta))[0]
                            lm = reference_loss(*args, perturb=(k, d, t, which, -delta))[0]
                            numeric[k, d, t, b, u] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
        norms = flow.dh_norm if which == "h" else flow.dc_norm
        np.testing.assert_allclose(norms, np.linalg.norm(numeric, axis=-1).mean(axis=-1), 1e-6)
    if cell != "lstm":
        assert flow.dc is None
        assert flow.dc_norm is None


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_dx_matches_the_layer_backward_with_lengths(cell):
    T, B, I, H = 5, 3, 2, 3
    layer = make_layer(cell, I, H, 2, True, seed=3)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(T, B, I))
    lengths = np.array([5, 1, 3])
    dy = rng.normal(size=(T, B, 2 * H))
    layer.train()(x, lengths=lengths)
    dx_layer, _ = layer.backward(dy)
    flow = gradient_flow(layer, x, dy, lengths=lengths, keep_grads=True)
    np.testing.assert_allclose(flow.dx, dx_layer, rtol=1e-12, atol=1e-12)
    # Padded steps carry no gradient; valid steps equal running that sequence alone.
    for b, n in enumerate(lengths):
        assert np.all(flow.dh[:, :, n:, b] == 0)
        alone = gradient_flow(layer, x[:n, b : b + 1], dy[:n, b : b + 1], keep_grads=True)
        np.testing.assert_allclose(flow.dh[:, :, :n, b], alone.dh[:, :, :, 0], atol=1e-12)
        if cell == "lstm":
            np.testing.assert_allclose(flow.dc[:, :, :n, b], alone.dc[:, :, :, 0], atol=1e-12)


def test_batch_first_and_norm_definition():
    layer = make_layer("gru", 2, 3, 1, False, batch_first=True)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 6, 2))  # (B, T, I)
    dy = rng.normal(size=(4, 6, 3))
    flow = gradient_flow(layer, x, dy, keep_grads=True)
    tm = gradient_flow(make_layer("gru", 2, 3, 1, False), x.transpose(1, 0, 2),
                       dy.transpose(1, 0, 2), keep_grads=True)  # fmt: skip
    np.testing.assert_allclose(flow.dh, tm.dh, atol=1e-12)
    manual = np.sqrt((flow.dh[0, 0] ** 2).sum(-1)).mean(-1)  # (GF-2)
    np.testing.assert_allclose(flow.dh_norm[0, 0], manual, rtol=1e-12)
    assert flow.to_json()["dh_norm"][0][0] == pytest.approx(manual.tolist())


def test_vanilla_rnn_gradient_vanishes_faster_than_lstm():
    # Small recurrent weights: the tanh RNN's ∂L/∂h_t shrinks geometrically going back;
    # an LSTM with an open forget gate keeps it through the cell state.
    T, H = 40, 8
    x = np.random.default_rng(0).normal(size=(T, 2, 1))
    dy = np.zeros((T, 2, H))
    dy[-1] = 1.0
    rnn = RNN(1, H, rng=0, dtype=np.float64)
    lstm = LSTM(1, H, rng=0, dtype=np.float64, forget_bias=5.0)
    r = gradient_flow(rnn, x, dy).dh_norm[0, 0]
    c = gradient_flow(lstm, x, dy).dc_norm[0, 0]
    assert r[0] / r[-1] < 1e-6
    assert c[0] / c[-1] > 1e-2


def test_step_norms_nan_where_no_sequence_reaches():
    g = np.ones((3, 2, 4))
    out = step_norms(g, np.array([1, 2]))
    assert out[:2].tolist() == [2.0, 2.0]
    assert np.isnan(out[2])


def test_errors_are_clear():
    layer = make_layer("lstm", 2, 3, 1, False)
    x = np.zeros((4, 2, 2))
    with pytest.raises(TypeError, match="RNN, LSTM or GRU"):
        gradient_flow(object(), x)
    with pytest.raises(ValueError, match="`dy` must have feature size 3"):
        gradient_flow(layer, x, np.zeros((4, 2, 5)))
    with pytest.raises(ValueError, match="`dy` must have shape"):
        gradient_flow(layer, x, np.zeros((3, 2, 3)))
    with pytest.raises(TypeError, match=r"tuple \(h, c\)"):
        gradient_flow(layer, x, None, np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="`dstate` must have shape"):
        gradient_flow(layer, x, None, (np.zeros((2, 2, 3)), None))
    with pytest.raises(TypeError, match="output_grad"):
        model_gradient_flow(layer, x, np.zeros((2, 1)))
