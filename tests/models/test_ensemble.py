"""Seq2SeqEnsemble: (ENS-1) and (ENS-2) against a hand-written ensemble decoder."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.models import Seq2Seq, Seq2SeqEnsemble
from rnnkit.ops.activations import softmax

SRC = np.array([[3, 4, 5], [6, 3, 0], [4, 0, 0], [5, 0, 0]])  # (S=4, B=3), padded with 0
LENGTHS = np.array([4, 2, 1])


def members() -> list[Seq2Seq]:
    """Three different architectures over the same vocabularies (float64, random weights)."""
    kw = {"dtype": np.float64}
    return [
        Seq2Seq(7, 6, 3, 4, cell="lstm", attention="general", style="luong", rng=0, **kw),
        Seq2Seq(7, 6, 5, 3, cell="gru", attention="additive", style="bahdanau", rng=1, **kw),
        Seq2Seq(7, 6, 4, 2, 4, cell="lstm", attention="dot", style="luong", rng=2, **kw),
    ]


def greedy_by_hand(models, src, lengths, max_len):
    """Greedy decoding of the members' mean distribution, one model call at a time."""
    states = []
    for m in models:
        m.eval()
        memory, s0 = m._encode(src, lengths)
        states.append(m.decoder.start(memory, lengths, m._state0(s0)))
    B = src.shape[1]
    tokens = np.full(B, models[0].bos)
    out, logp, att = [], np.zeros(B), []
    done = np.zeros(B, bool)
    for _ in range(max_len):
        probs, weights = [], []
        for i, m in enumerate(models):
            z, w, states[i] = m.decoder.step(tokens, states[i])
            probs.append(softmax(z))
            weights.append(w)
        p = np.mean(probs, axis=0)  #                                             (ENS-1)
        tokens = p.argmax(axis=1)
        logp += np.where(done, 0.0, np.log(p[np.arange(B), tokens]))
        out.append(tokens)
        att.append(np.mean(weights, axis=0))  #                                   (ENS-2)
        done |= tokens == models[0].eos
        if done.all():
            break
    return np.array(out).T, logp, np.stack(att, axis=1)


def test_greedy_follows_the_members_mean_distribution():
    models = members()
    ens = Seq2SeqEnsemble(models)
    hyps = ens.greedy(SRC, LENGTHS, max_len=6)
    tokens, logp, att = greedy_by_hand(models, SRC, LENGTHS, 6)
    for b, h in enumerate(hyps):
        n = len(h.tokens)
        assert h.tokens == tokens[b, :n].tolist()
        assert h.log_prob == pytest.approx(logp[b], rel=1e-12)
        steps = n + h.ended
        np.testing.assert_allclose(h.attention, att[b, :steps, : LENGTHS[b]], rtol=1e-12)
        np.testing.assert_allclose(h.attention.sum(axis=1), 1.0, rtol=1e-12)


def test_one_member_decodes_like_the_model_itself():
    (m,) = members()[:1]
    ens = Seq2SeqEnsemble([m])
    for a, b in zip(m.greedy(SRC, LENGTHS), ens.greedy(SRC, LENGTHS), strict=True):
        assert a.tokens == b.tokens
        assert a.log_prob == pytest.approx(b.log_prob, rel=1e-12)
        np.testing.assert_allclose(a.attention, b.attention, rtol=1e-12)
    beams = zip(m.beam_search(SRC, LENGTHS, 3), ens.beam_search(SRC, LENGTHS, 3), strict=True)
    for a, b in beams:
        assert a.tokens == b.tokens
        assert a.score == pytest.approx(b.score, rel=1e-12)


def test_beam_of_one_is_greedy_and_modes_are_restored():
    models = members()
    for m, training in zip(models, (False, True, False), strict=True):
        m.train(training)
    ens = Seq2SeqEnsemble(models)
    greedy = ens.greedy(SRC, LENGTHS)
    for g, b in zip(greedy, ens.beam_search(SRC, LENGTHS, beam_size=1), strict=True):
        assert g.tokens == b.tokens
        assert g.log_prob == pytest.approx(b.log_prob, rel=1e-12)
    assert [m.training for m in models] == [False, True, False]
    assert len(ens) == 3


def test_members_must_share_vocabularies():
    base = Seq2Seq(7, 6, 3, 4, rng=0)
    with pytest.raises(ValueError, match="target vocabulary size 5, model 0 has 6"):
        Seq2SeqEnsemble([base, Seq2Seq(7, 5, 3, 4, rng=0)])
    with pytest.raises(ValueError, match="source vocabulary size 8"):
        Seq2SeqEnsemble([base, Seq2Seq(8, 6, 3, 4, rng=0)])
    with pytest.raises(ValueError, match="end id 3"):
        Seq2SeqEnsemble([base, Seq2Seq(7, 6, 3, 4, eos=3, rng=0)])
    with pytest.raises(ValueError, match="at least one model"):
        Seq2SeqEnsemble([])
