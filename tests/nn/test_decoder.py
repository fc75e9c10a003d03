"""AttentionDecoder: end-to-end finite differences of the whole decoder, decoding = training."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.diagnostics import gradcheck_module
from rnnkit.nn.decoder import AttentionDecoder

RNG = np.random.default_rng(7)
V, E, H, M = 6, 3, 4, 5


def decoder(style, cell="lstm", attention="additive", hidden=H, memory=M, seed=0):
    return AttentionDecoder(
        V, E, hidden, memory, cell, attention, 3, style, rng=seed, dtype=np.float64
    )


def initial_state(cell, batch, hidden=H):
    h0 = 0.5 * RNG.normal(size=(batch, hidden))
    return (h0, 0.5 * RNG.normal(size=(batch, hidden))) if cell == "lstm" else h0


def run(mod, memory, state, y_in, lengths):
    return mod(y_in, memory, lengths, state)


def back(mod, d):
    dmemory, dstate = mod.backward(*d)
    return dmemory, dstate, None, None


CASES = [
    ("bahdanau", "lstm", "additive"),
    ("bahdanau", "gru", "general"),
    ("bahdanau", "rnn", "additive"),
    ("luong", "lstm", "general"),
    ("luong", "gru", "additive"),
    ("luong", "lstm", "scaled_dot"),
]


@pytest.mark.parametrize(("style", "cell", "attention"), CASES)
def test_full_backward_passes_finite_differences(style, cell, attention):
    """Teacher forcing over T=4 steps: every parameter, the memory and the initial state."""
    hidden = M if attention.endswith("dot") else H
    dec = decoder(style, cell, attention, hidden=hidden)
    S, B, T = 5, 3, 4
    y_in = np.array([[1, 1, 1], [3, 4, 0], [5, 2, 0], [4, 3, 0]])  # <s> ..., padded with 0
    inputs = (RNG.normal(size=(S, B, M)), initial_state(cell, B, hidden), y_in, np.array([5, 2, 1]))
    report = gradcheck_module(dec, inputs, forward=run, backward=back)
    assert report.ok(1e-6), str(report)
    assert dec.pending() == 0
    names = {e.name for e in report}
    assert {"input0", "input1"} <= names or {"input0", "input1.0", "input1.1"} <= names
    assert len(y_in) == T


def test_edge_shapes_T1_B1_H1():
    dec = AttentionDecoder(3, 1, 1, 1, "lstm", "additive", 1, "bahdanau", rng=0, dtype=np.float64)
    inputs = (RNG.normal(size=(1, 1, 1)), initial_state("lstm", 1, 1), np.array([[1]]), None)
    assert gradcheck_module(dec, inputs, forward=run, backward=back).ok(1e-6)
    dec = AttentionDecoder(3, 1, 1, 1, "gru", "dot", None, "luong", rng=0, dtype=np.float64)
    inputs = (RNG.normal(size=(1, 1, 1)), initial_state("gru", 1, 1), np.array([[1]]), None)
    assert gradcheck_module(dec, inputs, forward=run, backward=back).ok(1e-6)


@pytest.mark.parametrize(("style", "cell", "attention"), CASES)
def test_step_by_step_decoding_equals_teacher_forcing(style, cell, attention):
    hidden = M if attention.endswith("dot") else H
    dec = decoder(style, cell, attention, hidden=hidden)
    S, B = 4, 2
    memory, lengths = RNG.normal(size=(S, B, M)), np.array([4, 2])
    state = initial_state(cell, B, hidden)
    y_in = np.array([[1, 1], [3, 4], [5, 2]])
    logits, weights = dec(y_in, memory, lengths, state)
    dec.clear_cache()
    dec.eval()
    st = dec.start(memory, lengths, state)
    for t in range(len(y_in)):
        z, w, st = dec.step(y_in[t], st)
        np.testing.assert_allclose(z, logits[t], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(w, weights[t], rtol=1e-12, atol=1e-13)
    assert dec.pending() == 0


def test_attention_weights_are_distributions_over_real_keys():
    dec = decoder("bahdanau")
    memory, lengths = RNG.normal(size=(4, 2, M)), np.array([4, 1])
    _, w = dec(np.array([[1, 1], [2, 3]]), memory, lengths)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-12)
    assert (w[:, 1, 1:] == 0).all()


def test_bad_inputs_and_protocol():
    dec = decoder("luong", "lstm", "general")
    memory = RNG.normal(size=(4, 2, M))
    with pytest.raises(ValueError, match="`y_in` must be"):
        dec(np.array([1, 1]), memory)
    with pytest.raises(ValueError, match="`memory` must have shape"):
        dec(np.ones((2, 3), np.int64), memory)
    with pytest.raises(ValueError, match=r"`state` \(h0\) must have shape"):
        dec(np.ones((2, 2), np.int64), memory, None, (np.zeros((2, H + 1)), np.zeros((2, H))))
    with pytest.raises(TypeError, match=r"must be \(h0, c0\)"):
        dec(np.ones((2, 2), np.int64), memory, None, np.zeros((2, H)))
    with pytest.raises(ValueError, match="all of its keys masked"):
        dec(np.ones((2, 2), np.int64), memory, np.array([4, 0]))
    assert dec.pending() == 0
    logits, _ = dec(np.ones((2, 2), np.int64), memory)
    with pytest.raises(ValueError, match="`dlogits` must have shape"):
        dec.backward(np.ones((2, 2, V + 1)))
    dec.backward(np.ones_like(logits))  # the failed call left the pass in place
    assert dec.pending() == 0
    with pytest.raises(RuntimeError, match=r"AttentionDecoder\.backward called with no forward"):
        dec.backward(np.ones_like(logits))
    with pytest.raises(RuntimeError, match=r"call \.eval\(\) first"):
        dec.start(memory)
    with pytest.raises(ValueError, match="`style` must be one of"):
        AttentionDecoder(V, E, H, M, style="transformer")
    with pytest.raises(ValueError, match="`cell` must be one of"):
        AttentionDecoder(V, E, H, M, cell="mgu")


def test_parameter_names_and_state_dict_round_trip():
    a, b = decoder("bahdanau", seed=1), decoder("bahdanau", seed=2)
    names = [k for k, _ in a.named_parameters()]
    assert names[:3] == ["embedding.weight", "cell.weight_ih", "cell.weight_hh"]
    assert "out.weight" in names
    assert "attention.v" in names
    luong = [k for k, _ in decoder("luong").named_parameters()]
    assert "rnn.weight_ih_l0" in luong
    assert "combine.weight" in luong
    b.load_state_dict(a.state_dict())
    memory, y_in = RNG.normal(size=(3, 2, M)), np.array([[1, 1], [2, 3]])
    np.testing.assert_array_equal(a(y_in, memory)[0], b(y_in, memory)[0])
