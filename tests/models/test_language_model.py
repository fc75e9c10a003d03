"""LanguageModel: full backward by finite differences, tied weights, generation."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.diagnostics import gradcheck_module
from rnnkit.models import LanguageModel
from rnnkit.ops.losses import softmax_cross_entropy


@pytest.mark.parametrize(
    ("cell", "tie", "layers"), [("lstm", False, 2), ("gru", True, 1), ("rnn", False, 1)]
)
def test_full_backward_matches_finite_differences(cell, tie, layers):
    rng = np.random.default_rng(0)
    V, E, H = 7, 4, 4
    m = LanguageModel(V, E, H, layers, cell, tie_weights=tie, rng=1, dtype=np.float64)
    for p in m.parameters():
        p.data = rng.uniform(-0.5, 0.5, size=p.shape)
    ids = rng.integers(0, V, size=(5, 3))
    h0 = rng.normal(size=(layers, 3, H))
    state = (h0, rng.normal(size=h0.shape)) if cell == "lstm" else h0
    report = gradcheck_module(m, (ids, state), backward=lambda mod, d: (None, mod.backward(*d)))
    assert report.ok(1e-6), str(report)
    names = [e.name for e in report]
    assert ("decoder.weight" in names) is not tie


def test_tied_weights_share_one_parameter():
    m = LanguageModel(10, 6, 6, tie_weights=True)
    assert m.decoder.weight is m.embedding.weight
    assert "decoder.weight" not in m.state_dict()
    with pytest.raises(ValueError, match="embed_size == hidden_size"):
        LanguageModel(10, 5, 6, tie_weights=True)


def test_cross_entropy_training_signal_reaches_every_parameter():
    rng = np.random.default_rng(2)
    m = LanguageModel(6, 3, 5, 2, "lstm", rng=0, dtype=np.float64)
    ids = rng.integers(0, 6, size=(4, 2))
    logits, _ = m(ids[:-1])
    _, d = softmax_cross_entropy(logits, ids[1:])
    m.backward(d)
    assert m.pending() == 0
    for name, p in m.named_parameters():
        assert np.abs(p.grad).sum() > 0, name


def test_generate_is_seeded_and_respects_top_k():
    m = LanguageModel(8, 4, 6, rng=0)
    a = m.generate(np.array([1, 2]), 20, temperature=1.0, rng=3)
    b = m.generate(np.array([1, 2]), 20, temperature=1.0, rng=3)
    np.testing.assert_array_equal(a, b)
    assert m.training  # mode restored
    assert m.pending() == 0
    g = m.generate(np.array([1]), 30, top_k=1, rng=0)  # greedy: deterministic whatever rng
    np.testing.assert_array_equal(g, m.generate(np.array([1]), 30, top_k=1, rng=99))
    with pytest.raises(ValueError, match="temperature"):
        m.generate(np.array([1]), 3, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        m.generate(np.array([1]), 3, top_k=9)


def test_init_output_bias_starts_at_the_unigram_distribution():
    """(LM-5): softmax(b_o) is the add-one unigram distribution; the loss starts near it."""
    from rnnkit.ops.activations import softmax

    counts = np.array([50, 0, 7, 3, 40])
    m = LanguageModel(5, 3, 4, rng=0, dtype=np.float64)
    m.init_output_bias(counts)
    want = (counts + 1) / (counts.sum() + 5)
    np.testing.assert_allclose(softmax(m.decoder.bias.data), want, rtol=1e-12)
    assert abs(m.decoder.bias.data.mean()) < 1e-12
    ids = np.random.default_rng(0).choice(5, p=want, size=(40, 2))
    loss, _ = softmax_cross_entropy(m(ids[:-1])[0], ids[1:])
    m._pop()
    entropy = -(want * np.log(want)).sum()
    assert abs(loss - entropy) < 0.2 < np.log(5) - entropy  # near the unigram loss, not log V
    for bad in (np.ones(4), np.array([1, 2, -1, 0, 0]), np.array(["a"] * 5)):
        with pytest.raises(ValueError, match="counts"):
            m.init_output_bias(bad)
