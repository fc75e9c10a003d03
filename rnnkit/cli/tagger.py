"""``rnnkit train tagger``.

Trains a :class:`rnnkit.models.tagger.SequenceTagger` (word embedding + character
biLSTM → biLSTM → softmax per word, Plank, Søgaard & Goldberg 2016) to predict UPOS
tags on a Universal Dependencies treebank: ``--data DIR`` holds ``*-ud-train.conllu``
and ``*-ud-dev.conllu`` (UD English EWT: ``en_ewt-ud-*.conllu``). Adam on the mean
cross-entropy of the words (CE-1), batches of sentences of similar length, shuffled each
epoch, dev accuracy after each epoch; the best epoch is kept in ``OUT/best``.

OOV (out-of-vocabulary) words are word forms absent from the training data (lower-cased
forms with ``--lowercase``, the default): they reach the model as ``<unk>`` plus their
characters. In training, each word id is replaced by ``<unk>`` with probability
α / (α + count) (``--word-dropout-alpha``, Kiperwasser & Goldberg 2016), so that rare
words teach ``<unk>`` and the character model to carry the unseen ones. Accuracy is
counted over every word with a gold UPOS (multiword ranges and empty nodes carry none).

``rnnkit tag`` and the tagger part of ``rnnkit eval`` live in
:mod:`rnnkit.cli.tagger_decode` (``evaluate`` is re-exported here for ``rnnkit eval``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.cli.progress import ProgressPrinter
from rnnkit.cli.tagger_decode import (
    KIND,
    Encoded,
    accuracy,
    evaluate,
    load_tagger,
    split_file,
    vocabs_of,
    with_words,
)
from rnnkit.data.conllu import read_conllu
from rnnkit.data.vocab import CharVocab, WordVocab
from rnnkit.io.checkpoint import save_checkpoint
from rnnkit.io.nested import join_arrays, split_arrays
from rnnkit.io.rng import rng_from_state, rng_state
from rnnkit.kernels.losses import softmax_cross_entropy
from rnnkit.models.tagger import SequenceTagger, TaggerBatch
from rnnkit.nn.module import Module
from rnnkit.optim import SGD, Adam, clip_grad_norm
from rnnkit.train import Progress

__all__ = ["DEFAULTS", "add_train_arguments", "evaluate", "rare_word_dropout", "train"]

UNK_CHAR = "\ufffd"  # characters unseen in training encode to U+FFFD
OPTIMIZERS = {"adam": Adam, "sgd": SGD}

DEFAULTS: dict[str, Any] = {
    "task": "tagger",
    "data": None,
    "out": "runs/tagger",
    "word_dim": 100,
    "char_dim": 32,
    "char_hidden": 64,
    "hidden": 128,
    "layers": 1,
    "dropout": 0.3,
    "word_dropout": 0.0,
    "word_dropout_alpha": 0.25,
    "lowercase": True,
    "min_freq": 1,
    "max_chars": 20,
    "epochs": 12,
    "steps": None,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 2e-3,
    "lr_decay": 0.7,  # lr_e = lr · lr_decay^max(0, e + 1 − decay_after), epoch e from 0
    "decay_after": 6,
    "clip": 5.0,
    "seed": 0,
    "max_sentences": None,
}
_INTS = ("word_dim", "char_dim", "char_hidden", "hidden", "layers", "min_freq", "max_chars")


def add_train_arguments(t: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit train tagger``."""
    t.add_argument("--data", help="folder with *-ud-train.conllu and *-ud-dev.conllu")
    t.add_argument("--out", help=f"run directory (default {DEFAULTS['out']})")
    for key in (*_INTS, "epochs", "steps", "batch_size", "seed", "max_sentences"):
        t.add_argument("--" + key.replace("_", "-"), dest=key, type=int)
    t.add_argument("--decay-after", dest="decay_after", type=int, help="epochs at full lr")
    for key in ("dropout", "word_dropout", "word_dropout_alpha", "lr", "lr_decay", "clip"):
        t.add_argument("--" + key.replace("_", "-"), dest=key, type=float)
    t.add_argument(
        "--lowercase",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="word embeddings of lower-cased words (characters keep their case)",
    )
    t.add_argument("--optimizer", choices=sorted(OPTIMIZERS))
    t.add_argument("--resume", action="store_true", help="continue the run in --out")


def _count(data: Encoded) -> int:
    return int(sum((g >= 0).sum() for g in data.gold))


def rare_word_dropout(words: WordVocab, counts: Mapping[str, int], alpha: float) -> np.ndarray:
    """Per word id, the probability α / (α + count) of replacing it by ``<unk>`` in training.

    Kiperwasser & Goldberg (2016): rare words are often dropped, frequent ones almost
    never, so ``<unk>`` and the character model learn to carry the words unseen at test.
    """
    probs = np.array([alpha / (alpha + counts.get(t, 0)) for t in words.tokens])
    probs[0] = 0.0  # <unk> itself
    return probs


def train_step(
    model: SequenceTagger, optimizer: Any, batch: TaggerBatch, gold: np.ndarray, clip: float
) -> tuple[float, float]:
    """One update on the mean (CE-1) over the words with a gold tag; (loss, grad norm)."""
    model.zero_grad()
    z = model(batch)  # (T, B, K)
    loss, dz = softmax_cross_entropy(z, np.maximum(gold, 0), mask=gold >= 0)
    model.backward(dz)
    norm = clip_grad_norm(model.parameters(), clip if clip else float("inf"))
    if not np.isfinite(loss) or not np.isfinite(norm):
        raise FloatingPointError(f"non-finite loss {loss} or gradient norm {norm}.")
    optimizer.step()
    return loss, norm


# -- checkpoints ----------------------------------------------------------------------
def _module_rngs(model: Module) -> dict[str, np.random.Generator]:
    out = {}
    for name, m in model.named_modules():
        g = getattr(m, "rng", None)
        if isinstance(g, np.random.Generator):
            out[name or "<root>"] = g
    return out


def save_tagger(
    directory: Path,
    model: SequenceTagger,
    optimizer: Any,
    cfg: dict[str, Any],
    vocab: dict[str, Any],
    progress: dict[str, Any],
) -> Path:
    """Write a tagger checkpoint: parameters, optimizer, RNGs, vocabularies, progress."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    optim_json, optim_arrays = split_arrays(optimizer.state_dict(), "optim")
    arrays.update(optim_arrays)
    meta = {
        "kind": KIND,
        "config": cfg,
        "vocab": vocab,
        "model_config": model.config,
        "optimizer": optim_json,
        "progress": progress,
        "rngs": {k: rng_state(g) for k, g in _module_rngs(model).items()},
    }
    return save_checkpoint(directory, arrays, meta)


# -- commands -------------------------------------------------------------------------
def _config(args: argparse.Namespace) -> dict[str, Any]:
    cfg = dict(DEFAULTS)
    for key in DEFAULTS:
        v = getattr(args, key, None)
        if v is not None:
            cfg[key] = v
    if cfg["data"] is None:
        raise SystemExit("rnnkit: --data DIR is required (a UD treebank folder)")
    for key in (*_INTS, "epochs", "batch_size"):
        if cfg[key] < 1:
            raise SystemExit(f"rnnkit: {key} must be a positive integer; got {cfg[key]!r}")
    return cfg


def train(args: argparse.Namespace) -> int:
    """Run ``rnnkit train tagger``."""
    out = Path(args.out or DEFAULTS["out"])
    if args.resume:
        model, meta, arrays = load_tagger(out / "checkpoint")
        cfg = dict(meta["config"])
        for key in ("epochs", "steps"):
            if getattr(args, key) is not None:
                cfg[key] = getattr(args, key)
        words, chars, tags = vocabs_of(meta)
        progress = meta["progress"]
        print(f"resuming {out} at step {progress['step']}")
    else:
        cfg = _config(args)
        if (out / "checkpoint").exists():
            raise SystemExit(f"rnnkit: {out} already holds a run; pass --resume or another --out")
    cfg["out"] = str(out)
    t_load = time.perf_counter()
    train_s = with_words(read_conllu(split_file(cfg["data"], "train")))
    dev_s = with_words(read_conllu(split_file(cfg["data"], "dev")))
    if cfg["max_sentences"]:
        train_s = train_s[: cfg["max_sentences"]]
    lower = bool(cfg.get("lowercase", False))
    keys = [[f.lower() for f in s.forms()] if lower else s.forms() for s in train_s]
    if not args.resume:
        words = WordVocab.build(keys, min_freq=cfg["min_freq"])
        text = "".join(f for s in train_s for f in s.forms())
        chars = CharVocab.from_text(text + UNK_CHAR, unk=UNK_CHAR)
        tags = sorted({u for s in train_s for u in s.upos() if u != "_"})
        model = SequenceTagger(
            len(words),
            len(chars),
            len(tags),
            cfg["word_dim"],
            cfg["char_dim"],
            cfg["char_hidden"],
            cfg["hidden"],
            cfg["layers"],
            cfg["dropout"],
            cfg["word_dropout"],
            rng=cfg["seed"],
        )
        progress = {"epoch": 0, "batch": 0, "step": 0, "best_dev": None, "history": []}
        progress["data_rng"] = rng_state(np.random.default_rng([cfg["seed"], 7919]))
    alpha = cfg.get("word_dropout_alpha") or 0.0
    counts = Counter(k for ks in keys for k in ks)
    drop_probs = rare_word_dropout(words, counts, alpha) if alpha > 0 else None
    data_rng = rng_from_state(progress["data_rng"])  # rare-word dropout draws
    vocab = {"words": words.to_json(), "chars": chars.to_json(), "tags": tags}
    optimizer = OPTIMIZERS[cfg["optimizer"]](model.parameters(), lr=cfg["lr"])
    if args.resume:
        optimizer.load_state_dict(join_arrays(meta["optimizer"], arrays))
        for name, g in _module_rngs(model).items():
            g.bit_generator.state = rng_from_state(meta["rngs"][name]).bit_generator.state
    train_d = Encoded(train_s, words, chars, tags, cfg["batch_size"], cfg["max_chars"], lower)
    dev_d = Encoded(dev_s, words, chars, tags, 64, cfg["max_chars"], lower)
    n_params = sum(p.data.size for p in model.parameters())
    print("rnnkit train tagger")
    for key, v in cfg.items():
        print(f"  {key:<14} {v}")
    print(
        f"  {'data':<14} train {len(train_s):,} sentences / {_count(train_d):,} words, dev "
        f"{len(dev_s):,} / {_count(dev_d):,}; vocabulary {len(words):,} words, {len(chars)} "
        f"chars, {len(tags)} tags; read in {time.perf_counter() - t_load:.1f} s"
    )
    print(f"  {'model':<14} {n_params:,} parameters; {len(train_d.batches)} batches per epoch")

    def save(where: str = "checkpoint") -> Path:
        progress["data_rng"] = rng_state(data_rng)
        return save_tagger(out / where, model, optimizer, cfg, vocab, progress)

    n_batches = len(train_d.batches)
    total = cfg["epochs"] * n_batches
    if cfg["steps"]:
        total = min(total, cfg["steps"])
    printer = ProgressPrinter(sys.stdout, total_steps=total)
    stop = {"now": False}
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        printer.message("interrupt: finishing this step and saving a checkpoint")
        stop["now"] = True
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, on_sigint)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def done() -> bool:
        return stop["now"] or bool(cfg["steps"] and progress["step"] >= cfg["steps"])

    try:
        while progress["epoch"] < cfg["epochs"] and not done():
            epoch = progress["epoch"]
            order = np.random.default_rng([cfg["seed"], epoch]).permutation(n_batches)
            decay = cfg.get("lr_decay", 1.0) ** max(0, epoch + 1 - cfg.get("decay_after", 0))
            optimizer.lr = cfg["lr"] * decay
            t_epoch, loss_sum, words_seen = time.perf_counter(), 0.0, 0
            while progress["batch"] < n_batches and not done():
                k = int(order[progress["batch"]])
                batch = train_d.batches[k]
                if drop_probs is not None:  # rare words -> <unk> with p = α / (α + count)
                    drop = data_rng.random(batch.words.shape) < drop_probs[batch.words]
                    batch = batch._replace(words=np.where(drop, 0, batch.words))
                loss, norm = train_step(model, optimizer, batch, train_d.gold[k], cfg["clip"])
                n = int((train_d.gold[k] >= 0).sum())
                loss_sum, words_seen = loss_sum + loss * n, words_seen + n
                progress["batch"] += 1
                progress["step"] += 1
                rate = words_seen / max(time.perf_counter() - t_epoch, 1e-9)
                where = (progress["step"], epoch, progress["batch"] - 1, n_batches)
                printer.update(Progress("step", *where, loss, None, optimizer.lr, rate, norm))
            if progress["batch"] < n_batches:
                break  # interrupted or out of steps: the epoch is not finished
            train_secs = time.perf_counter() - t_epoch
            dev = accuracy(model, dev_d)
            rec = {
                "epoch": epoch + 1,
                "step": progress["step"],
                "lr": optimizer.lr,
                "train_loss": loss_sum / max(words_seen, 1),
                "dev_accuracy": dev["accuracy"],
                "dev_oov_accuracy": dev["oov_accuracy"],
                "dev_oov_tokens": dev["oov_tokens"],
                "train_seconds": train_secs,
                "seconds": time.perf_counter() - t_epoch,
            }
            progress["history"].append(rec)
            progress["epoch"], progress["batch"] = epoch + 1, 0
            improved = progress["best_dev"] is None or dev["accuracy"] > progress["best_dev"]
            if improved:
                progress["best_dev"] = dev["accuracy"]
                save("best")
            save()
            (out / "history.json").write_text(
                json.dumps(progress["history"], indent=1) + "\n", encoding="utf-8"
            )
            printer.message(
                f"epoch {epoch + 1:>2}  train loss {rec['train_loss']:.4f}  dev UPOS "
                f"{dev['accuracy']:.2f}%  OOV {dev['oov_accuracy']:.2f}% "
                f"({dev['oov_tokens']} words)  {rec['seconds']:.1f} s" + ("  *" if improved else "")
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    wall = time.perf_counter() - t0
    path = save()
    printer.close()
    if progress["best_dev"] is not None:
        print(f"best dev UPOS accuracy {progress['best_dev']:.2f}%")
    print(f"steps {progress['step']}, wall time {wall:.1f} s")
    print(f"checkpoint {path}")
    if stop["now"]:
        print(f"stopped by interrupt; continue with: rnnkit train tagger --resume --out {out}")
        return 130
    return 0
