"""The decoding side of g2p runs: ``rnnkit g2p``, g2p's ``rnnkit eval``, the attention plot.

Loads the ``best/`` (else ``checkpoint/``) parameters of runs written by ``rnnkit train
g2p`` (:mod:`rnnkit.cli.g2p`), decodes words greedily or with a beam, alone or as an
ensemble (:class:`rnnkit.models.Seq2SeqEnsemble`, ENS-1), turns the outputs of runs
trained with ``--target-order reversed`` back to reading order, and rescores a beam's
n-best lists with such runs (``--rescore``, :mod:`rnnkit.models.rescoring`, RESCORE-1).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from rnnkit.data.cmudict import (
    Batch,
    G2PVocab,
    load_cmudict,
    make_batch,
    score_g2p,
    split_dictionary,
)
from rnnkit.io.checkpoint import load_checkpoint
from rnnkit.models.beam import Hypothesis
from rnnkit.models.decoding import Decoding, Seq2SeqEnsemble
from rnnkit.models.rescoring import rescore, reverse_hypothesis
from rnnkit.models.seq2seq import Seq2Seq

KIND = "rnnkit-g2p"


def _add_checkpoint_flag(p: argparse.ArgumentParser, repeated: str) -> None:
    p.add_argument(
        "--checkpoint",
        required=True,
        action="append",
        help=f"g2p run directory or checkpoint; repeat it {repeated}",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit g2p``."""
    _add_checkpoint_flag(p, "to decode with an ensemble")
    add_beam_arguments(p)
    add_rescore_arguments(p)
    p.add_argument("words", nargs="+", metavar="WORD")


def add_beam_arguments(p: argparse.ArgumentParser) -> None:
    """``--beam`` and ``--length-penalty`` of ``rnnkit g2p``, ``eval`` and ``plot attention``."""
    p.add_argument(
        "--beam", type=int, default=None, help="g2p: beam width (default: the run's, else 5)"
    )
    p.add_argument(
        "--length-penalty",
        dest="length_penalty",
        type=float,
        default=None,
        help="g2p: α, a hypothesis scores log P / (length + 1)^α (BEAM-2); default: the run's, "
        "else 1",
    )


def checked_length_penalty(value: Any) -> float:
    """The length penalty α of (BEAM-2) as a float; a ``ValueError`` unless finite and >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(f"the length penalty must be a finite number >= 0; got {value!r}.")
    return float(value)


def add_rescore_arguments(p: argparse.ArgumentParser) -> None:
    """``--rescore`` and ``--rescore-weight`` of ``rnnkit g2p`` and ``rnnkit eval``."""
    p.add_argument(
        "--rescore",
        action="append",
        metavar="DIR",
        help="g2p: a run trained with the other --target-order; repeat for an ensemble. "
        "Rescores each beam's n-best list (RESCORE-1)",
    )
    p.add_argument(
        "--rescore-union",
        dest="rescore_union",
        action="store_true",
        help="g2p: also rescore the --rescore runs' own beam hypotheses, not only the "
        "--checkpoint runs'",
    )
    p.add_argument(
        "--rescore-weight",
        dest="rescore_weight",
        type=float,
        default=None,
        help="g2p: λ, the weight of the --rescore runs' log-probability (default 0.5)",
    )


def add_plot_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit plot attention``."""
    _add_checkpoint_flag(p, "for an ensemble (mean attention)")
    p.add_argument("--out", required=True, help="image file to write (e.g. attn.png)")
    add_beam_arguments(p)
    p.add_argument("word", metavar="WORD")


# -- loading runs ------------------------------------------------------------------
def _resolve(directory: str) -> Path:
    """The checkpoint folder to read: ``DIR/best``, else ``DIR/checkpoint``, else ``DIR``."""
    d = Path(directory)
    for sub in ("best", "checkpoint"):
        if (d / sub).is_dir() or (d / f"{sub}.old").is_dir():
            return d / sub
    return d


def load_g2p(directory: str) -> tuple[Seq2Seq, dict[str, Any], Path]:
    """Rebuild the model of a g2p run (its ``best/`` parameters when present)."""
    path = _resolve(directory)
    arrays, meta = load_checkpoint(path)
    if meta.get("kind") != KIND:
        raise ValueError(f"{str(path)!r} is not a g2p checkpoint (kind {meta.get('kind')!r}).")
    model = Seq2Seq(**meta["model_config"])
    model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
    model.eval()
    return model, meta, path


# -- scoring -------------------------------------------------------------------------
def target_order(cfg: dict[str, Any]) -> str:
    """A run's target order; runs from before the option learned ``"forward"``."""
    order = cfg.get("target_order", "forward")
    if order not in ("forward", "reversed"):
        raise ValueError(f"target_order must be 'forward' or 'reversed'; got {order!r}.")
    return order


def predict(
    model: Decoding,
    vocab: G2PVocab,
    words: list[str],
    beam: int = 1,
    batch: int = 256,
    order: str = "forward",
    rescorer: Decoding | None = None,
    weight: float = 0.5,
    union: bool = False,
    length_penalty: float = 1.0,
) -> list[Hypothesis]:
    """Hypotheses for ``words`` (greedy for ``beam`` 1), batched by length, in input order.

    ``order="reversed"`` is for models trained with ``--target-order reversed``: their
    outputs are turned back to reading order. With a ``rescorer`` (runs of the other
    order), each beam's n-best list is rescored by (RESCORE-1) with ``λ = weight``; with
    ``union``, the rescorer's own n-best lists join the candidates. A beam ranks its
    hypotheses by (BEAM-2) with ``α = length_penalty``, and so does (RESCORE-1).
    """
    if rescorer is not None and beam < 2:
        raise ValueError("rescoring needs a beam of width 2 or more.")

    def run(b: Batch) -> list[Hypothesis]:
        if rescorer is not None:
            return rescore(model, rescorer, b.src, b.src_lengths, beam, weight,
                           length_penalty=length_penalty, union=union)  # fmt: skip
        if beam == 1:
            return model.greedy(b.src, b.src_lengths)
        return model.beam_search(b.src, b.src_lengths, beam, length_penalty=length_penalty)

    hyps = by_length(vocab, words, run, batch)
    return hyps if order == "forward" else [reverse_hypothesis(h) for h in hyps]


def by_length(
    vocab: G2PVocab, words: list[str], run: Callable[[Batch], list[Any]], batch: int = 256
) -> list[Any]:
    """``run`` on batches of ``words`` sorted by length (one result per word), in input order."""
    sorted_idx = sorted(range(len(words)), key=lambda i: (len(words[i]), i))
    out: list[Any] = [None] * len(words)
    for k in range(0, len(sorted_idx), batch):
        idx = sorted_idx[k : k + batch]
        for i, x in zip(idx, run(make_batch(vocab, [words[i] for i in idx])), strict=True):
            out[i] = x
    return out


def score(
    model: Decoding,
    vocab: G2PVocab,
    entries: list[tuple[str, list[Any]]],
    beam: int = 1,
    order: str = "forward",
    rescorer: Decoding | None = None,
    weight: float = 0.5,
) -> tuple[float, float]:
    """``(WER, PER)`` of the model on ``entries`` ((word, pronunciations) pairs)."""
    words = [w for w, _ in entries]
    hyps = predict(model, vocab, words, beam, order=order, rescorer=rescorer, weight=weight)
    return score_g2p([vocab.decode_pron(h.tokens) for h in hyps], [p for _, p in entries])


def load_g2p_models(directories: list[str]) -> tuple[Decoding, list[dict[str, Any]], str]:
    """One g2p model, or an ensemble (ENS-1) of several, with each run's metadata.

    Also returns a description of what was loaded (paths and steps). The runs must share
    their target order.
    """
    loaded = [load_g2p(d) for d in directories]
    what = ", ".join(f"{path} (step {meta['progress']['step']})" for _, meta, path in loaded)
    metas = [meta for _, meta, _ in loaded]
    orders = [target_order(m["config"]) for m in metas]
    if len(set(orders)) > 1:
        raise ValueError(
            "the runs of an ensemble must share their target order; got "
            + ", ".join(f"{d} ({o})" for d, o in zip(directories, orders, strict=True))
            + ". Pass the reversed runs with --rescore instead."
        )
    if len(loaded) == 1:
        return loaded[0][0], metas, what
    ensemble = Seq2SeqEnsemble([model for model, _, _ in loaded])
    return ensemble, metas, f"ensemble of {len(loaded)}: {what}"


class _Models(NamedTuple):
    """What ``eval``, ``g2p`` and ``plot attention`` decode with."""

    model: Decoding
    order: str  # the target order of ``model``'s runs
    rescorer: Decoding | None  # runs of the other order (--rescore), or None
    weight: float  # λ of (RESCORE-1)
    union: bool  # also rescore the --rescore runs' own n-best lists
    beam: int
    alpha: float  # the length penalty of (BEAM-2)
    what: str
    config: dict[str, Any]  # the first run's


def _load_models(args: argparse.Namespace) -> _Models:
    checkpoints = getattr(args, "checkpoints", None) or args.checkpoint
    checkpoints = [checkpoints] if isinstance(checkpoints, str) else checkpoints
    model, metas, what = load_g2p_models(checkpoints)
    order, cfg = target_order(metas[0]["config"]), metas[0]["config"]
    beam = getattr(args, "beam", None)
    beam = int(cfg.get("beam", 5)) if beam is None else beam
    if beam < 1:
        raise ValueError(f"--beam must be >= 1; got {beam}.")
    alpha = getattr(args, "length_penalty", None)
    alpha = checked_length_penalty(cfg.get("length_penalty", 1.0) if alpha is None else alpha)
    weight = getattr(args, "rescore_weight", None)
    weight = 0.5 if weight is None else float(weight)
    rescorer, union = None, False
    if getattr(args, "rescore_weight", None) is not None and not getattr(args, "rescore", None):
        raise ValueError("--rescore-weight weighs the --rescore runs; pass --rescore DIR too.")
    if getattr(args, "rescore", None):
        if beam < 2:
            raise ValueError("--rescore rescores the beam's n-best lists: use --beam 2 or more.")
        rescorer, other_metas, other = load_g2p_models(args.rescore)
        other_order = target_order(other_metas[0]["config"])
        if other_order == order:
            raise ValueError(
                f"--rescore needs runs of the other target order: the --checkpoint runs and "
                f"the --rescore runs are all {order!r} (train one with --target-order "
                f"{'reversed' if order == 'forward' else 'forward'})."
            )
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"--rescore-weight must lie in [0, 1]; got {weight}.")
        union = bool(getattr(args, "rescore_union", False))
        what += (
            f"; rescored (λ = {weight:g}{', with their own n-best' if union else ''}) by {other}"
        )
    elif getattr(args, "rescore_union", False):
        raise ValueError("--rescore-union adds the --rescore runs' n-best; pass --rescore DIR too.")
    return _Models(model, order, rescorer, weight, union, beam, alpha, what, cfg)


def _predict(m: _Models, vocab: G2PVocab, words: list[str], rescored: bool) -> list[Hypothesis]:
    if rescored:
        return predict(m.model, vocab, words, m.beam, order=m.order, rescorer=m.rescorer,
                       weight=m.weight, union=m.union, length_penalty=m.alpha)  # fmt: skip
    return predict(m.model, vocab, words, m.beam, order=m.order, length_penalty=m.alpha)


def evaluate(args: argparse.Namespace) -> int:
    """Run ``rnnkit eval`` on a g2p run (or an ensemble of runs): WER and PER, greedy and beam.

    With ``--rescore`` it adds the beam rescored by the reversed runs (RESCORE-1).
    """
    m, vocab = _load_models(args), G2PVocab()
    split = args.split or "dev"
    if split not in ("dev", "test", "train"):
        raise ValueError(f"--split must be dev, test or train for g2p; got {split!r}.")
    entries, _ = load_cmudict(args.data if args.data else m.config["data"])
    words = split_dictionary(entries)[split]
    if not words:
        raise ValueError(f"the {split} split of that dictionary is empty.")
    search = f"; beam length penalty α = {m.alpha:g}" if m.beam > 1 else ""
    print(f"{m.what}: {split} split, {len(words):,} words{search}")
    ways = [("greedy", m._replace(beam=1), False), (f"beam {m.beam}", m, False)]
    if m.rescorer is not None:
        ways.append(("rescored", m, True))  # beam m.beam, then (RESCORE-1)
    for name, how, rescored in ways[1:] if m.beam == 1 else ways:
        t = time.perf_counter()
        hyps = _predict(how, vocab, [w for w, _ in words], rescored)
        preds = [vocab.decode_pron(h.tokens) for h in hyps]
        wer, per = score_g2p(preds, [p for _, p in words])
        print(
            f"  {name:<8} WER {100 * wer:6.2f}%  PER {100 * per:5.2f}%  "
            f"({time.perf_counter() - t:.1f} s)",
            flush=True,
        )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``rnnkit g2p``: print each word with its predicted phonemes."""
    m, vocab = _load_models(args), G2PVocab()
    words = [w.lower() for w in args.words]
    hyps = _predict(m, vocab, words, m.rescorer is not None)
    for w, h in zip(words, hyps, strict=True):
        print(f"{w}\t{' '.join(vocab.decode_pron(h.tokens))}")
    return 0


def plot(args: argparse.Namespace) -> int:
    """Run ``rnnkit plot attention``: a heatmap of letters × predicted phonemes."""
    from rnnkit.diagnostics.attention_plot import plot_attention

    m, vocab = _load_models(args), G2PVocab()
    word = args.word.lower()
    (h,) = _predict(m, vocab, [word], rescored=False)
    phones = vocab.decode_pron(h.tokens)
    rows = [*phones, "</s>"] if h.ended else phones
    plot_attention(h.attention, list(word), rows, args.out, title=f"{word} → {' '.join(phones)}")
    print(f"{word}\t{' '.join(phones)}\nwrote {args.out}")
    return 0
