"""Seq2Seq: whole-model finite differences, learning a toy task, decoding (k=1 beam = greedy)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.diagnostics import gradcheck_module, numerical_gradient, relative_error
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.ops.losses import softmax_cross_entropy
from rnnkit.optim import Adam

RNG = np.random.default_rng(3)
SRC = np.array([[3, 4, 5], [6, 3, 0], [4, 0, 0], [5, 0, 0]])  # (S=4, B=3), padded with 0
LENGTHS = np.array([4, 2, 1])


def model(cell="lstm", attention="general", style="luong", seed=0, dtype=np.float64, **kw):
    return Seq2Seq(7, 6, 3, 2, cell=cell, attention=attention, style=style, rng=seed,
                   dtype=dtype, **kw)  # fmt: skip


def run(mod, src, lengths, tgt):
    return mod(src, lengths, tgt)


def back(mod, d):
    mod.backward(*d)
    return (None, None, None)


@pytest.mark.parametrize(
    ("cell", "attention", "style"),
    [("lstm", "general", "luong"), ("gru", "additive", "bahdanau"), ("lstm", "dot", "luong")],
)
def test_whole_model_passes_finite_differences(cell, attention, style):
    """Encoder, bridge and decoder: every parameter, through the attention and the bridge."""
    m = model(cell, attention, style, num_layers=2 if attention == "general" else 1)
    tgt = np.array([[1, 1, 1], [3, 4, 5], [5, 2, 2], [4, 3, 3]])  # no padding id: its row is frozen
    report = gradcheck_module(m, (SRC, LENGTHS, tgt), forward=run, backward=back)
    assert report.ok(1e-6), str(report)
    assert m.pending() == 0
    assert any(e.name.startswith("encoder.weight_hh_l0_reverse") for e in report)


def test_forward_shapes_and_attention_rows():
    m = model(dtype=np.float32)
    tgt = np.ones((5, 3), dtype=np.int64)
    logits, att = m(SRC, LENGTHS, tgt)
    assert logits.shape == (5, 3, 6)
    assert logits.dtype == np.float32
    assert att.shape == (5, 3, 4)
    np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-6)
    assert (att[:, 2, 1:] == 0).all()


def test_learns_to_reverse_short_sequences():
    """A tiny model learns to reverse 1-4 symbols in 150 Adam steps (float32)."""
    rng = np.random.default_rng(0)
    m = Seq2Seq(7, 7, 16, 24, cell="gru", attention="general", style="luong", rng=0)
    opt = Adam(m.parameters(), lr=1e-2)

    def batch(n):
        lens = rng.integers(1, 5, size=n)
        src = np.zeros((4, n), np.int64)
        tgt_in = np.zeros((5, n), np.int64)
        tgt_out = np.zeros((5, n), np.int64)
        for b, k in enumerate(lens):
            s = rng.integers(3, 7, size=k)
            src[:k, b] = s
            tgt_in[: k + 1, b] = [1, *s[::-1]]
            tgt_out[: k + 1, b] = [*s[::-1], 2]
        mask = np.arange(5)[:, None] <= lens[None, :]
        return src, lens, tgt_in, tgt_out, mask

    for _ in range(150):
        src, lens, tgt_in, tgt_out, mask = batch(32)
        logits, _ = m(src, lens, tgt_in)
        _, d = softmax_cross_entropy(logits, tgt_out, mask=mask)
        m.zero_grad()
        m.backward(d)
        opt.step()
    src, lens, _, _, _ = batch(100)
    hyps = m.greedy(src, lens)
    right = sum(h.tokens == src[: lens[b], b][::-1].tolist() for b, h in enumerate(hyps))
    assert right >= 90, right
    # Decoding a trained model: beam k=1 is greedy; attention rows per token and </s>.
    for g, b in zip(hyps, m.beam_search(src, lens, beam_size=1), strict=True):
        assert g.tokens == b.tokens
        assert g.log_prob == pytest.approx(b.log_prob, abs=1e-9)
        np.testing.assert_array_equal(g.attention, b.attention)
    for b, h in enumerate(hyps):
        assert h.attention.shape == (len(h.tokens) + h.ended, lens[b])
        np.testing.assert_allclose(h.attention.sum(axis=1), 1.0, rtol=1e-5)
    assert m.training  # decoding restored the mode
    assert m.pending() == 0


def test_protocol_and_bad_input():
    m = model()
    with pytest.raises(RuntimeError, match=r"Seq2Seq\.backward called with no forward"):
        m.backward(np.ones((2, 3, 6)))
    with pytest.raises(ValueError, match="`src` must be"):
        m(SRC[:, 0], LENGTHS, np.ones((2, 3), np.int64))
    with pytest.raises(ValueError, match="`lengths` must be in"):
        m(SRC, np.array([4, 2, 9]), np.ones((2, 3), np.int64))
    assert m.pending() == 0
    logits, _ = m(SRC, LENGTHS, np.ones((2, 3), np.int64))
    with pytest.raises(ValueError, match="`dlogits` must have shape"):
        m.backward(np.ones((3, 3, 6)))
    m.backward(np.ones_like(logits))
    assert m.pending() == 0
    with pytest.raises(ValueError, match="`cell` must be one of"):
        Seq2Seq(5, 5, cell="lstmx")
    a, b = model(seed=1), model(seed=2)
    b.load_state_dict(a.state_dict())
    tgt = np.ones((2, 3), np.int64)
    np.testing.assert_array_equal(a(SRC, LENGTHS, tgt)[0], b(SRC, LENGTHS, tgt)[0])
    assert "Seq2Seq" in repr(a)


@pytest.mark.parametrize("style", ["luong", "bahdanau"])
def test_dropout_masks_match_between_forward_and_backward(style):
    """With the dropout generator reset before every forward, the masks are fixed and the
    backward pass must equal central differences through them."""
    m = model("lstm", "additive", style, dropout=0.4)
    gen = m.drop_src.rng
    assert m.decoder.drop_out.rng is gen  # one generator: resetting it fixes every mask
    start = gen.bit_generator.state
    tgt = np.array([[1, 1, 1], [3, 4, 5], [5, 2, 2]])
    w = RNG.normal(size=(3, 3, 6))

    def loss():
        gen.bit_generator.state = start
        logits, _ = m(SRC, LENGTHS, tgt)
        m.clear_cache()
        return float(np.sum(w * logits))

    gen.bit_generator.state = start
    logits, _ = m(SRC, LENGTHS, tgt)
    m.zero_grad()
    m.backward(w)
    assert m.pending() == 0
    params = dict(m.named_parameters())
    for name in ("decoder.out.weight", "decoder.embedding.weight", "encoder.weight_ih_l0",
                 "src_embedding.weight", "bridge.weight"):  # fmt: skip
        p = params[name]
        analytic = p.grad.copy()
        numeric = numerical_gradient(loss, p.data)
        assert relative_error(analytic, numeric) < 1e-6, name
    again, _ = m(SRC, LENGTHS, tgt)  # new masks: a different output
    assert not np.allclose(again, logits)
    m.clear_cache()
    m.eval()
    a, _ = m(SRC, LENGTHS, tgt)
    b, _ = m(SRC, LENGTHS, tgt)
    np.testing.assert_array_equal(a, b)  # no dropout in eval
