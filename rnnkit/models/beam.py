"""Greedy and beam-search decoding over any step function, batched over examples.

A decoder is driven through two callables:

- ``step(tokens, state) -> (logits, weights, state)``: feed one token per row
  (``tokens`` (N,)); ``logits`` (N, V), attention ``weights`` (N, S);
- the state object has ``take(index)`` (select rows, memory included) and
  ``reorder(index)`` (move hypotheses among the rows of their own example).

Equations
---------
(BEAM-1) log p(y_1 … y_L | x) = Σ_t log softmax(z_t)_{y_t}            (y_L = </s>)
(BEAM-2) score = log p(y | x) / L^α                                   length normalisation
(BEAM-3) greedy: y_t = argmax_k z_t[k]

Beam search keeps, for every example, the ``k`` best unfinished hypotheses by
(BEAM-1); each step extends every one by every token, and a hypothesis that emits
</s> leaves the beam as finished with its score (BEAM-2). An example stops when it
has ``k`` finished hypotheses (or at ``max_len``, when the unfinished ones count as
finished); the best score wins. Ties go to the lower index (a stable sort), so with
``k = 1`` beam search returns exactly the greedy result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from rnnkit.ops.activations import log_softmax

__all__ = ["Hypothesis", "Step", "beam_search", "beam_search_n_best", "greedy_search"]

Step = Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray, Any]]


class Hypothesis(NamedTuple):
    """One decoded output: tokens without </s>, its scores and its attention rows."""

    tokens: list[int]
    log_prob: float  # (BEAM-1), </s> included when it was emitted
    score: float  # (BEAM-2)
    attention: np.ndarray  # (len(tokens) + ended, S): the weights behind each token (and </s>)
    ended: bool  # </s> was emitted (False: cut at max_len)


def _check(batch_size: int, max_len: int, beam_size: int = 1) -> None:
    for name, v in (("batch_size", batch_size), ("max_len", max_len), ("beam_size", beam_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"`{name}` must be a positive integer; got {v!r}.")


def _normalised(log_prob: float, length: int, alpha: float) -> float:
    return log_prob / max(length, 1) ** alpha  #                                  (BEAM-2)


def greedy_search(
    step: Step,
    state: Any,
    batch_size: int,
    bos: int,
    eos: int,
    max_len: int,
    length_penalty: float = 1.0,
) -> list[Hypothesis]:
    """Decode every example by (BEAM-3) until </s> or ``max_len`` tokens."""
    _check(batch_size, max_len)
    tokens = np.full(batch_size, bos, dtype=np.int64)
    out = np.zeros((batch_size, max_len), dtype=np.int64)
    att: list[np.ndarray] = []
    logp_sum = np.zeros(batch_size)
    length = np.full(batch_size, max_len)
    done = np.zeros(batch_size, dtype=bool)
    for t in range(max_len):
        z, w, state = step(tokens, state)
        logp = log_softmax(z.astype(np.float64))
        tokens = np.argmax(z, axis=1)  #                                          (BEAM-3)
        logp_sum += np.where(done, 0.0, logp[np.arange(batch_size), tokens])
        out[:, t] = tokens
        att.append(w)
        ended = ~done & (tokens == eos)
        length[ended] = t
        done |= ended
        if done.all():
            break
    weights = np.stack(att, axis=1)  # (B, steps, S)
    hyps = []
    for b in range(batch_size):
        n = int(length[b])
        emitted = n + 1 if done[b] else n
        hyps.append(
            Hypothesis(
                out[b, :n].tolist(),
                float(logp_sum[b]),
                _normalised(float(logp_sum[b]), emitted, length_penalty),
                weights[b, :emitted].copy(),
                bool(done[b]),
            )
        )
    return hyps


def beam_search(
    step: Step,
    state: Any,
    batch_size: int,
    bos: int,
    eos: int,
    max_len: int,
    beam_size: int = 5,
    length_penalty: float = 1.0,
) -> list[Hypothesis]:
    """Beam search of width ``beam_size`` with length normalisation (BEAM-1), (BEAM-2).

    ``state`` holds ``batch_size`` rows (one per example); it is tiled to
    ``batch_size * beam_size`` rows, example ``b`` owning rows ``b*k … b*k + k − 1``.
    Returns the best hypothesis of each example.
    """
    pools = beam_search_n_best(
        step, state, batch_size, bos, eos, max_len, beam_size, length_penalty
    )
    return [pool[0] for pool in pools]


def beam_search_n_best(
    step: Step,
    state: Any,
    batch_size: int,
    bos: int,
    eos: int,
    max_len: int,
    beam_size: int = 5,
    length_penalty: float = 1.0,
) -> list[list[Hypothesis]]:
    """The finished hypotheses of :func:`beam_search` for every example, best first.

    Each list holds up to ``beam_size`` hypotheses ordered by (BEAM-2), ties in the order
    they finished; its first is what :func:`beam_search` returns.
    """
    _check(batch_size, max_len, beam_size)
    k, n_ex = beam_size, batch_size
    rows = np.repeat(np.arange(n_ex), k)
    state = state.take(rows)
    scores = np.full((n_ex, k), -np.inf)
    scores[:, 0] = 0.0  # one live hypothesis per example at the start
    tokens = np.full(n_ex * k, bos, dtype=np.int64)
    history = np.zeros((n_ex * k, 0), dtype=np.int64)
    att: np.ndarray | None = None
    finished: list[list[Hypothesis]] = [[] for _ in range(n_ex)]
    done = np.zeros(n_ex, dtype=bool)
    for t in range(max_len):
        z, w, state = step(tokens, state)
        att = w[:, None] if att is None else np.concatenate([att, w[:, None]], axis=1)
        logp = log_softmax(z.astype(np.float64)).reshape(n_ex, k, -1)
        n_voc = logp.shape[-1]
        cand = (scores[:, :, None] + logp).reshape(n_ex, k * n_voc)  #             (BEAM-1)
        new_scores = np.full((n_ex, k), -np.inf)
        origin = np.repeat(np.arange(n_ex) * k, k)  # default: row 0 of the example
        new_tokens = np.full(n_ex * k, eos, dtype=np.int64)
        for b in np.flatnonzero(~done):
            order = np.argsort(-cand[b], kind="stable")
            j = 0
            for idx in order[: 2 * k]:
                if j == k or not np.isfinite(cand[b, idx]):
                    break
                src, tok = b * k + idx // n_voc, int(idx % n_voc)
                if tok == eos:
                    toks = history[src].tolist()
                    finished[b].append(
                        Hypothesis(
                            toks,
                            float(cand[b, idx]),
                            _normalised(float(cand[b, idx]), t + 1, length_penalty),
                            att[src].copy(),
                            True,
                        )
                    )
                    if len(finished[b]) == k:
                        break
                    continue
                new_scores[b, j] = cand[b, idx]
                origin[b * k + j], new_tokens[b * k + j] = src, tok
                j += 1
            done[b] = len(finished[b]) >= k
        if done.all():
            break
        scores = new_scores
        history = np.concatenate([history[origin], new_tokens[:, None]], axis=1)
        att = att[origin]
        state = state.reorder(origin)
        tokens = new_tokens
    pools = []
    for b in range(n_ex):
        pool = finished[b]
        if not pool:  # nothing ended within max_len: the live hypotheses count as finished
            pool = [
                Hypothesis(
                    history[b * k + j].tolist(),
                    float(scores[b, j]),
                    _normalised(float(scores[b, j]), history.shape[1], length_penalty),
                    att[b * k + j].copy(),
                    False,
                )
                for j in range(k)
                if np.isfinite(scores[b, j])
            ]
        pools.append(sorted(pool, key=lambda h: -h.score))  # stable: first of equals wins
    return pools
