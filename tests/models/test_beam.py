"""Greedy and beam search on random Markov chains: k=1 is greedy, a wide beam is exhaustive."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnnkit.models.beam import beam_search, greedy_search

V, BOS, EOS = 5, 0, 1


class ChainState:
    """Decoder-like state: the step count and one random 'attention' row source per example."""

    def __init__(self, example: np.ndarray, t: int = 0) -> None:
        self.example, self.t = example, t

    def take(self, index: np.ndarray) -> ChainState:
        return ChainState(self.example[index], self.t)

    def reorder(self, index: np.ndarray) -> ChainState:
        assert (self.example[index] == self.example).all()  # moves stay within an example
        return ChainState(self.example[index], self.t)


def chain(seed: int, batch: int, S: int = 3):
    """A step function whose logits depend on the example, the previous token and the step."""
    rng = np.random.default_rng(seed)
    table = rng.normal(scale=1.5, size=(batch, 8, V, V))  # (example, step, previous, next)
    table[..., EOS] -= 0.5
    att = rng.dirichlet(np.ones(S), size=(batch, 8, V))

    def step(tokens, state):
        ex, t = state.example, min(state.t, 7)
        z = table[ex, t, tokens]  # (N, V)
        return z, att[ex, t, tokens], ChainState(state.example, state.t + 1)

    return step, ChainState(np.arange(batch))


def log_softmax(z):
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_of_width_one_is_greedy(seed, alpha):
    step, state = chain(seed, batch=8)
    greedy = greedy_search(step, state, 8, BOS, EOS, max_len=6, length_penalty=alpha)
    beam = beam_search(step, state, 8, BOS, EOS, max_len=6, beam_size=1, length_penalty=alpha)
    assert len({len(h.tokens) for h in greedy}) > 1  # the chains end at different lengths
    for g, b in zip(greedy, beam, strict=True):
        assert g.tokens == b.tokens
        assert g.ended == b.ended
        assert g.log_prob == pytest.approx(b.log_prob, abs=1e-12)
        assert g.score == pytest.approx(b.score, abs=1e-12)
        np.testing.assert_array_equal(g.attention, b.attention)
        assert g.attention.shape == (len(g.tokens) + g.ended, 3)


def exhaustive(step, state, b, max_len, alpha):
    """The best (BEAM-2) score over every sequence of one example, by brute force."""
    best = (-np.inf, None)
    for n in range(1, max_len + 1):
        for seq in itertools.product([t for t in range(V) if t != EOS], repeat=n - 1):
            st, toks, logp = state.take(np.array([b])), [BOS, *seq, EOS], 0.0
            for t in range(n):
                z, _, st = step(np.array([toks[t]]), st)
                logp += log_softmax(z[0])[toks[t + 1]]
            best = max(best, (logp / n**alpha, list(seq)), key=lambda x: x[0])
    return best


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_a_wide_beam_finds_the_exhaustive_optimum(alpha):
    step, state = chain(11, batch=4)
    hyps = beam_search(step, state, 4, BOS, EOS, max_len=3, beam_size=20, length_penalty=alpha)
    for b, h in enumerate(hyps):
        score, tokens = exhaustive(step, state, b, 3, alpha)
        assert h.tokens == tokens
        assert h.score == pytest.approx(score, abs=1e-12)


def test_beam_is_never_worse_than_greedy_on_log_probability_without_penalty():
    """alpha = 0 ranks by (BEAM-1): on these chains a beam of 50 is at least as good as greedy."""
    gains = []
    for seed in range(5):
        step, state = chain(seed, batch=8)
        g = greedy_search(step, state, 8, BOS, EOS, max_len=6, length_penalty=0.0)
        k = beam_search(step, state, 8, BOS, EOS, max_len=6, beam_size=50, length_penalty=0.0)
        gains += [kb.score - gb.score for gb, kb in zip(g, k, strict=True) if gb.ended]
    assert min(gains) >= -1e-12
    assert max(gains) > 0


def test_unfinished_hypotheses_at_max_len():
    step, state = chain(3, batch=2)
    hyps = beam_search(step, state, 2, BOS, EOS, max_len=1, beam_size=2)
    for h in hyps:
        assert (len(h.tokens), h.ended) in {(0, True), (1, False)}
        assert h.attention.shape == (1, 3)


def test_bad_arguments():
    step, state = chain(0, batch=2)
    with pytest.raises(ValueError, match="`beam_size` must be a positive integer"):
        beam_search(step, state, 2, BOS, EOS, max_len=3, beam_size=0)
    with pytest.raises(ValueError, match="`max_len` must be a positive integer"):
        greedy_search(step, state, 2, BOS, EOS, max_len=0)
