"""n-best beam lists, forced scoring (BEAM-1) and right-to-left rescoring (RESCORE-1)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.models import Seq2Seq, Seq2SeqEnsemble
from rnnkit.models.beam import Hypothesis
from rnnkit.models.rescoring import (
    choose,
    rescore,
    reverse_hypothesis,
    reversed_log_probs,
    with_other_n_best,
)
from rnnkit.ops.activations import log_softmax

SRC = np.array([[3, 4, 5], [6, 3, 0], [4, 0, 0], [5, 0, 0]])  # (S=4, B=3), padded with 0
LENGTHS = np.array([4, 2, 1])


def model(seed: int, **kw) -> Seq2Seq:
    args = {"cell": "lstm", "attention": "additive", "style": "bahdanau", **kw}
    return Seq2Seq(7, 6, 3, 4, rng=seed, dtype=np.float64, **args)


def teacher_forced_log_prob(m: Seq2Seq, src, lengths, targets, example) -> np.ndarray:
    """log p(y </s> | x) from the model's teacher-forced forward pass (no step function)."""
    m.eval()
    n, T = len(targets), max(len(t) for t in targets) + 1
    tgt_in = np.zeros((T, n), dtype=np.int64)
    tgt_out = np.zeros((T, n), dtype=np.int64)
    for i, t in enumerate(targets):
        tgt_in[: len(t) + 1, i] = [m.bos, *t]
        tgt_out[: len(t) + 1, i] = [*t, m.eos]
    logits, _ = m(src[:, example], lengths[example], tgt_in)
    logp = log_softmax(logits)
    picked = np.take_along_axis(logp, tgt_out[:, :, None], axis=2)[:, :, 0]
    mask = np.arange(T)[:, None] <= np.array([len(t) for t in targets])[None, :]
    return (picked * mask).sum(axis=0)


def test_sequence_log_prob_equals_the_teacher_forced_pass():
    m = model(0, dropout=0.3)
    m.train()
    targets = [[2, 3, 4], [5], [], [4, 4, 2, 5, 3], [3, 2]]
    example = [0, 0, 1, 2, 2]
    got = m.sequence_log_prob(SRC, LENGTHS, targets, example)
    assert m.training  # the mode is restored
    want = teacher_forced_log_prob(m, SRC, LENGTHS, targets, np.array(example))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert got.shape == (5,)
    assert np.all(got < 0)


@pytest.mark.parametrize("ensemble", [False, True])
def test_a_models_score_of_its_beam_outputs_is_the_beams_log_prob(ensemble):
    dec = Seq2SeqEnsemble([model(0), model(1, cell="gru")]) if ensemble else model(0)
    pools = dec.n_best(SRC, LENGTHS, beam_size=4, max_len=12)
    hyps = [h for pool in pools for h in pool if h.ended]
    example = [b for b, pool in enumerate(pools) for h in pool if h.ended]
    got = dec.sequence_log_prob(SRC, LENGTHS, [h.tokens for h in hyps], example)
    np.testing.assert_allclose(got, [h.log_prob for h in hyps], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_n_best_lists_are_sorted_and_start_with_the_beam_result(alpha):
    m = model(2)
    pools = m.n_best(SRC, LENGTHS, beam_size=5, max_len=12, length_penalty=alpha)
    best = m.beam_search(SRC, LENGTHS, beam_size=5, max_len=12, length_penalty=alpha)
    for b, pool in enumerate(pools):
        assert 1 <= len(pool) <= 5
        assert [h.score for h in pool] == sorted((h.score for h in pool), reverse=True)
        assert len({tuple(h.tokens) for h in pool}) == len(pool)  # no duplicates
        assert pool[0].tokens == best[b].tokens
        assert pool[0].score == best[b].score
        for h in pool:
            assert h.attention.shape[1] == LENGTHS[b]


def test_weight_zero_keeps_the_beams_choice_and_weight_one_follows_the_other_model():
    fwd, back = model(0), model(5, cell="gru")
    pools = fwd.n_best(SRC, LENGTHS, beam_size=5, max_len=12)
    lp = reversed_log_probs(back, SRC, LENGTHS, pools)
    assert [len(x) for x in lp] == [len(p) for p in pools]
    for b, pool in enumerate(pools):  # forced scores of the reversed tokens, one by one
        one = back.sequence_log_prob(SRC, LENGTHS, [h.tokens[::-1] for h in pool], [b] * len(pool))
        np.testing.assert_allclose(lp[b], one, rtol=1e-12)
    kept = choose(pools, lp, weight=0.0)
    assert [h.tokens for h in kept] == [pool[0].tokens for pool in pools]
    only_back = choose(pools, lp, weight=1.0)
    for pool, x, h in zip(pools, lp, only_back, strict=True):
        norm = x / np.array([len(g.tokens) + 1 for g in pool])
        assert h.tokens == pool[int(np.argmax(norm))].tokens
        assert h.score == pytest.approx(norm.max())
    same = rescore(fwd, back, SRC, LENGTHS, beam_size=5, weight=1.0, max_len=12)
    assert [h.tokens for h in same] == [h.tokens for h in only_back]


def test_rescoring_can_change_the_choice():
    """Over a few random pairs of models, some n-best list is reordered by the other model."""
    changed = 0
    for seed in range(4):
        fwd, back = model(seed), model(10 + seed)
        pools = fwd.n_best(SRC, LENGTHS, beam_size=5, max_len=12)
        lp = reversed_log_probs(back, SRC, LENGTHS, pools)
        picks = choose(pools, lp, weight=0.5)
        changed += sum(h.tokens != pool[0].tokens for h, pool in zip(picks, pools, strict=True))
    assert changed > 0


def test_the_union_adds_the_other_models_n_best_in_this_models_order():
    fwd, back = model(0), model(2, cell="gru")
    pools = fwd.n_best(SRC, LENGTHS, beam_size=4, max_len=12)
    theirs = back.n_best(SRC, LENGTHS, beam_size=4, max_len=12)
    union = with_other_n_best(fwd, back, SRC, LENGTHS, pools, beam_size=4, max_len=12)
    added = 0
    for b, (pool, more, both) in enumerate(zip(pools, theirs, union, strict=True)):
        assert both[: len(pool)] == list(pool)  # the model's own list first, untouched
        toks = [tuple(h.tokens) for h in both]
        assert len(set(toks)) == len(toks)
        assert set(toks) == {tuple(h.tokens) for h in pool} | {tuple(h.tokens[::-1]) for h in more}
        extra = both[len(pool) :]
        added += len(extra)
        if extra:  # log_prob is the model's own, forced; attention rows turned around
            lp = fwd.sequence_log_prob(SRC, LENGTHS, [h.tokens for h in extra], [b] * len(extra))
            np.testing.assert_allclose([h.log_prob for h in extra], lp, rtol=1e-12)
            for h in extra:
                assert h.attention.shape[1] == LENGTHS[b]
    assert added > 0
    picks = rescore(fwd, back, SRC, LENGTHS, beam_size=4, weight=1.0, max_len=12, union=True)
    lp = reversed_log_probs(back, SRC, LENGTHS, union)
    assert [h.tokens for h in picks] == [h.tokens for h in choose(union, lp, weight=1.0)]
    for h, more in zip(picks, theirs, strict=True):  # at λ = 1, no worse than the other's beam
        assert more[0].ended  # (one cut at max_len would be scored without </s> by the beam)
        assert h.score >= more[0].score - 1e-12


def test_bad_arguments():
    m = model(0)
    pools = m.n_best(SRC, LENGTHS, beam_size=2, max_len=6)
    lp = reversed_log_probs(m, SRC, LENGTHS, pools)
    with pytest.raises(ValueError, match="weight"):
        choose(pools, lp, weight=1.5)
    with pytest.raises(ValueError, match="score arrays"):
        choose(pools, lp[:2])
    with pytest.raises(ValueError, match="at least one hypothesis"):
        choose([[], *pools[1:]], [np.zeros(0), *lp[1:]])
    with pytest.raises(ValueError, match="source columns"):
        m.sequence_log_prob(SRC, LENGTHS, [[2]], [3])
    with pytest.raises(ValueError, match="entries in `example`"):
        m.sequence_log_prob(SRC, LENGTHS, [[2], [3]], [0])
    with pytest.raises(ValueError, match="pools for"):
        reversed_log_probs(m, SRC, LENGTHS, pools[:2])
    assert m.sequence_log_prob(SRC, LENGTHS, [], []).shape == (0,)


def test_reverse_hypothesis_reverses_tokens_and_their_attention_rows():
    rows = np.arange(12.0).reshape(4, 3)  # three tokens and the row behind </s>
    h = Hypothesis([5, 6, 7], -1.0, -0.25, rows, True)
    r = reverse_hypothesis(h)
    assert r.tokens == [7, 6, 5]
    np.testing.assert_array_equal(r.attention, rows[[2, 1, 0, 3]])
    cut = reverse_hypothesis(h._replace(attention=rows[:3], ended=False))  # no </s> row
    np.testing.assert_array_equal(cut.attention, rows[[2, 1, 0]])
    assert (r.log_prob, r.score, r.ended) == (-1.0, -0.25, True)
