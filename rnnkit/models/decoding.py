"""Greedy and beam-search decoding for encoder–decoder models, and ensembles of them.

:class:`Decoding` gives a model ``greedy`` and ``beam_search`` once it says how to start
decoding a batch: ``_begin(src, src_lengths) -> (step, state)`` with ``step`` and
``state`` as :mod:`rnnkit.models.beam` drives them. :class:`Seq2Seq` decodes with its own
decoder; :class:`Seq2SeqEnsemble` steps several trained models together.

Equations
---------
(ENS-1) p(y_t | y_{<t}, x) = (1/M) Σ_m p_m(y_t | y_{<t}, x)     the members' mean distribution
(ENS-2) α_t = (1/M) Σ_m α_t^(m)                                  the attention reported

``sequence_log_prob`` scores given outputs by (BEAM-1) with the same step function the
searches use (teacher forcing, dropout off), so a model's score of its own beam output
equals the beam's ``log_prob``.

An ensemble step returns ``log`` (ENS-1) as its logits: they are already normalised, so
(BEAM-1)–(BEAM-3) score the ensemble exactly as they score one model. Each member keeps
its own decoder state; every member decodes the same hypotheses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from rnnkit.models.beam import Hypothesis, Step, beam_search_n_best, greedy_search
from rnnkit.ops.activations import log_mean_softmax, log_softmax

if TYPE_CHECKING:
    from rnnkit.models.seq2seq import Seq2Seq
    from rnnkit.nn.module import Module

__all__ = ["Decoding", "Seq2SeqEnsemble"]


class Decoding:
    """Greedy and beam-search decoding of a batch; subclasses supply ``_begin``.

    ``bos`` and ``eos`` are the target start and end ids. Decoding runs every module of
    ``_members()`` in eval mode and restores their modes afterwards.
    """

    bos: int
    eos: int

    def _members(self) -> list[Module]:
        raise NotImplementedError

    def _begin(self, src: np.ndarray, src_lengths: np.ndarray) -> tuple[Step, Any]:
        raise NotImplementedError

    def _in_eval_mode(self, run: Any) -> Any:
        members = self._members()
        modes = [m.training for m in members]
        for m in members:
            m.eval()
        try:
            return run()
        finally:
            for m, was_training in zip(members, modes, strict=True):
                m.train(was_training)

    def _decode(self, src: np.ndarray, src_lengths: np.ndarray, run: Any) -> list[list[Hypothesis]]:
        """``run(step, state, batch)`` in eval mode: hypotheses per example, attention trimmed.

        Each hypothesis keeps the attention columns of its example's real source steps.
        """

        def go() -> Any:
            step, state = self._begin(src, src_lengths)
            return run(step, state, int(np.shape(src)[1]))

        lens = np.asarray(src_lengths)

        def trim(h: Hypothesis, b: int) -> Hypothesis:
            return h._replace(attention=h.attention[:, : lens[b]])

        return [[trim(h, b) for h in hs] for b, hs in enumerate(self._in_eval_mode(go))]

    def greedy(
        self, src: np.ndarray, src_lengths: np.ndarray, max_len: int | None = None
    ) -> list[Hypothesis]:
        """Greedy decoding (BEAM-3) of every example; ``max_len`` defaults to 2 S + 5."""
        n = 2 * np.shape(src)[0] + 5 if max_len is None else max_len
        one_each = self._decode(
            src,
            src_lengths,
            lambda step, st, b: [[h] for h in greedy_search(step, st, b, self.bos, self.eos, n)],
        )
        return [hs[0] for hs in one_each]

    def beam_search(
        self,
        src: np.ndarray,
        src_lengths: np.ndarray,
        beam_size: int = 5,
        max_len: int | None = None,
        length_penalty: float = 1.0,
    ) -> list[Hypothesis]:
        """Beam search (BEAM-1), (BEAM-2) of every example; ``max_len`` defaults to 2 S + 5."""
        pools = self.n_best(src, src_lengths, beam_size, max_len, length_penalty)
        return [pool[0] for pool in pools]

    def n_best(
        self,
        src: np.ndarray,
        src_lengths: np.ndarray,
        beam_size: int = 5,
        max_len: int | None = None,
        length_penalty: float = 1.0,
    ) -> list[list[Hypothesis]]:
        """Every example's finished beam hypotheses, best first by (BEAM-2)."""
        n = 2 * np.shape(src)[0] + 5 if max_len is None else max_len
        return self._decode(
            src,
            src_lengths,
            lambda step, st, b: beam_search_n_best(
                step, st, b, self.bos, self.eos, n, beam_size, length_penalty
            ),
        )

    def sequence_log_prob(
        self,
        src: np.ndarray,
        src_lengths: np.ndarray,
        targets: Sequence[Sequence[int]],
        example: Sequence[int] | np.ndarray,
    ) -> np.ndarray:
        """The log-probability (BEAM-1) of each ``targets[i]`` followed by </s>.

        ``targets[i]`` (token ids, without </s>) is an output for source column
        ``example[i]`` of ``src`` (S, B); any number of targets may share a source.
        Returns a float64 array with one log-probability per target.
        """
        example = np.asarray(example, dtype=np.int64).reshape(-1)
        if len(targets) != example.size:
            raise ValueError(f"got {len(targets)} targets but {example.size} entries in `example`.")
        n_src = int(np.shape(src)[1])
        if example.size and (example.min() < 0 or example.max() >= n_src):
            raise ValueError(f"`example` must index the {n_src} source columns of `src`.")
        n = len(targets)
        if n == 0:
            return np.zeros(0)
        lengths = np.array([len(t) for t in targets])
        padded = np.full((n, int(lengths.max()) + 1), self.eos, dtype=np.int64)
        for i, t in enumerate(targets):
            padded[i, : len(t)] = t  # the </s> after each target is already in place

        def go() -> np.ndarray:
            step, state = self._begin(src, src_lengths)
            state = state.take(example)
            tokens = np.full(n, self.bos, dtype=np.int64)
            total = np.zeros(n)
            for t in range(padded.shape[1]):
                z, _, state = step(tokens, state)
                logp = log_softmax(np.asarray(z, dtype=np.float64))
                tokens = padded[:, t]
                total += np.where(t <= lengths, logp[np.arange(n), tokens], 0.0)  # (BEAM-1)
            return total

        return self._in_eval_mode(go)


class _EnsembleState(NamedTuple):
    """The members' decoder states, in member order."""

    states: tuple[Any, ...]

    def take(self, index: np.ndarray) -> _EnsembleState:
        """Every member's state of the entries ``index``."""
        return _EnsembleState(tuple(s.take(index) for s in self.states))

    def reorder(self, index: np.ndarray) -> _EnsembleState:
        """Every member's recurrent state reordered (beam search within an example)."""
        return _EnsembleState(tuple(s.reorder(index) for s in self.states))


class Seq2SeqEnsemble(Decoding):
    """Decode with several :class:`~rnnkit.models.seq2seq.Seq2Seq` models at once, (ENS-1).

    The members must share the source and target vocabularies (sizes, padding, start and
    end ids); their sizes, cells and attention may differ. ``greedy`` and
    ``beam_search`` work as on one model and return each example's tokens with the
    members' mean attention (ENS-2).
    """

    def __init__(self, models: Sequence[Seq2Seq]) -> None:
        models = list(models)
        if not models:
            raise ValueError("an ensemble needs at least one model.")
        first = models[0]
        for i, m in enumerate(models[1:], start=1):
            for what, a, b in (
                ("source vocabulary size", _src_vocab(m), _src_vocab(first)),
                ("target vocabulary size", m.decoder.vocab_size, first.decoder.vocab_size),
                ("padding id", m.pad, first.pad),
                ("start id", m.bos, first.bos),
                ("end id", m.eos, first.eos),
            ):
                if a != b:
                    raise ValueError(
                        f"model {i} of the ensemble has {what} {a}, model 0 has {b}: "
                        "members must share their vocabularies."
                    )
        self.models = models
        self.pad, self.bos, self.eos = first.pad, first.bos, first.eos

    def __len__(self) -> int:
        return len(self.models)

    def _members(self) -> list[Module]:
        return list(self.models)

    def _begin(self, src: np.ndarray, src_lengths: np.ndarray) -> tuple[Step, _EnsembleState]:
        starts = [m._begin(src, src_lengths) for m in self.models]
        steps = [step for step, _ in starts]

        def step(tokens: np.ndarray, state: _EnsembleState) -> tuple[Any, Any, _EnsembleState]:
            outs = [f(tokens, s) for f, s in zip(steps, state.states, strict=True)]
            mean_logp = log_mean_softmax([z for z, _, _ in outs])  #                  (ENS-1)
            weights = np.mean([w for _, w, _ in outs], axis=0)  #                  (ENS-2)
            return mean_logp, weights, _EnsembleState(tuple(s for _, _, s in outs))

        return step, _EnsembleState(tuple(s for _, s in starts))


def _src_vocab(model: Seq2Seq) -> int:
    return int(model.src_embedding.weight.data.shape[0])
