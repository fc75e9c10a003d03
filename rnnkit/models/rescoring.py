"""Rescoring a model's n-best outputs with a model that reads the output the other way.

A decoder trained left to right commits to the first tokens before it has seen what
follows; one trained on reversed targets commits to the last tokens first. Their errors
differ, so the second can pick among the first's beam hypotheses:

Equations
---------
(RESCORE-1) s(y) = [(1 − λ) log p_→(y | x) + λ log p_←(rev(y) | x)] / (|y| + 1)^α

``p_→`` is the model (or ensemble) whose beam proposed ``y`` (BEAM-1, </s> included),
``p_←`` the other model's probability of the same phonemes in its own order, forced
through its decoder (:meth:`~rnnkit.models.decoding.Decoding.sequence_log_prob`), and
``α`` the length penalty of (BEAM-2). With ``λ = 0`` the choice is the beam's own.

With ``union=True`` the candidates of each example are the model's n-best list and the
other model's own n-best list (turned around), duplicates dropped; ``p_→`` of the other's
candidates is forced through the model. Both models then propose and both judge.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnnkit.models.beam import Hypothesis
from rnnkit.models.decoding import Decoding

__all__ = [
    "choose",
    "rescore",
    "reverse_hypothesis",
    "reversed_log_probs",
    "with_other_n_best",
]


def reverse_hypothesis(h: Hypothesis) -> Hypothesis:
    """``h`` with its tokens reversed and their attention rows with them.

    Turns a right-to-left model's output to reading order (and back). The row behind
    </s> (present when ``h.ended``) stays last; the scores are kept.
    """
    n = len(h.tokens)
    rows = np.concatenate([h.attention[:n][::-1], h.attention[n:]], axis=0)
    return h._replace(tokens=h.tokens[::-1], attention=rows)


def reversed_log_probs(
    other: Decoding,
    src: np.ndarray,
    src_lengths: np.ndarray,
    pools: Sequence[Sequence[Hypothesis]],
) -> list[np.ndarray]:
    """The log p_←(rev(y) | x) of (RESCORE-1) of every hypothesis of every example's pool.

    ``pools[b]`` are hypotheses for source column ``b`` of ``src``; the result has one
    float64 array per pool, in the same order.
    """
    if len(pools) != int(np.shape(src)[1]):
        raise ValueError(f"got {len(pools)} pools for {np.shape(src)[1]} source columns.")
    targets = [h.tokens[::-1] for pool in pools for h in pool]
    example = [b for b, pool in enumerate(pools) for _ in pool]
    flat = other.sequence_log_prob(src, src_lengths, targets, example)
    bounds = np.cumsum([0] + [len(pool) for pool in pools])
    return [flat[bounds[b] : bounds[b + 1]] for b in range(len(pools))]


def with_other_n_best(
    model: Decoding,
    other: Decoding,
    src: np.ndarray,
    src_lengths: np.ndarray,
    pools: Sequence[Sequence[Hypothesis]],
    beam_size: int = 5,
    length_penalty: float = 1.0,
    max_len: int | None = None,
) -> list[list[Hypothesis]]:
    """``pools`` (``model``'s n-best lists) extended by ``other``'s n-best lists.

    ``other``'s hypotheses are reversed into ``model``'s order (attention rows with them,
    :func:`reverse_hypothesis`); those already in a pool are dropped, and the rest get
    ``log_prob = log p_→(y | x)``, forced through ``model``, so that (RESCORE-1) reads
    every candidate's ``log_prob`` alike. Their ``score`` is left as ``other`` found it.
    """
    theirs = other.n_best(src, src_lengths, beam_size, max_len, length_penalty)
    added: list[list[Hypothesis]] = []
    for pool, more in zip(pools, theirs, strict=True):
        seen = {tuple(h.tokens) for h in pool}
        new = []
        for h in more:
            r = reverse_hypothesis(h)
            if tuple(r.tokens) not in seen:
                seen.add(tuple(r.tokens))
                new.append(r)
        added.append(new)
    example = [b for b, new in enumerate(added) for _ in new]
    forced = model.sequence_log_prob(
        src, src_lengths, [h.tokens for new in added for h in new], example
    )
    out, k = [], 0
    for pool, new in zip(pools, added, strict=True):
        out.append(
            list(pool) + [h._replace(log_prob=float(forced[k + i])) for i, h in enumerate(new)]
        )
        k += len(new)
    return out


def choose(
    pools: Sequence[Sequence[Hypothesis]],
    other_log_probs: Sequence[np.ndarray],
    weight: float = 0.5,
    length_penalty: float = 1.0,
) -> list[Hypothesis]:
    """Each pool's hypothesis with the highest (RESCORE-1), its ``score`` set to it.

    Ties go to the earlier hypothesis (pools come best first from the beam).
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"`weight` (λ) must lie in [0, 1]; got {weight}.")
    if len(pools) != len(other_log_probs):
        raise ValueError(f"got {len(pools)} pools but {len(other_log_probs)} score arrays.")
    out = []
    for pool, back in zip(pools, other_log_probs, strict=True):
        if not pool:
            raise ValueError("every pool needs at least one hypothesis.")
        if len(back) != len(pool):
            raise ValueError(f"a pool of {len(pool)} hypotheses got {len(back)} scores.")
        scores = [
            ((1.0 - weight) * h.log_prob + weight * float(b))
            / (len(h.tokens) + 1) ** length_penalty  #                             (RESCORE-1)
            for h, b in zip(pool, back, strict=True)
        ]
        best = int(np.argmax(scores))  # the first of equals
        out.append(pool[best]._replace(score=scores[best]))
    return out


def rescore(
    model: Decoding,
    other: Decoding,
    src: np.ndarray,
    src_lengths: np.ndarray,
    beam_size: int = 5,
    weight: float = 0.5,
    length_penalty: float = 1.0,
    max_len: int | None = None,
    union: bool = False,
) -> list[Hypothesis]:
    """Beam search with ``model``, then the best of each n-best list by (RESCORE-1).

    ``other`` must emit the same target vocabulary in the reverse order (a g2p run
    trained with ``--target-order reversed`` against a forward one, or the other way).
    ``union``: also rescore ``other``'s own n-best hypotheses (:func:`with_other_n_best`).
    """
    pools = model.n_best(src, src_lengths, beam_size, max_len, length_penalty)
    if union:
        pools = with_other_n_best(
            model, other, src, src_lengths, pools, beam_size, length_penalty, max_len
        )
    back = reversed_log_probs(other, src, src_lengths, pools)
    return choose(pools, back, weight, length_penalty)
