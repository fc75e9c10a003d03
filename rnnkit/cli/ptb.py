"""``rnnkit train ptb`` and the ptb part of ``rnnkit eval``: Zaremba et al. (2014) on PTB.

Presets (Zaremba, Sutskever & Vinyals 2014, "Recurrent Neural Network Regularization"):

======  ======  =====  =====  =====  =======  ====================================  ======
preset  layers  units  steps  init   dropout  SGD learning rate                     epochs
======  ======  =====  =====  =====  =======  ====================================  ======
small   2       200    20     ±0.1   0        1.0 for 4 epochs, then halved/epoch   13
medium  2       650    35     ±0.05  0.5      1.0 for 6 epochs, then ÷1.2/epoch     39
large   2       1500   35     ±0.04  0.65     1.0 for 14 epochs, then ÷1.15/epoch   55
======  ======  =====  =====  =====  =======  ====================================  ======

Batch 20, gradient norm clipped at 5 (10 for large); published valid/test perplexity
120.7/114.5 (small), 86.2/82.7 (medium), 82.2/78.4 (large).

Loss scale. Zaremba's code (and TensorFlow's ``ptb_word_lm``) minimises the cross-entropy
*summed* over the k unrolled steps and averaged over the batch; :class:`rnnkit.Trainer`
minimises the mean over all k·B positions (TBPTT-1), whose gradient is k times smaller.
Plain SGD with clipping is the same update in both units when

(PTB-2) lr_mean = k · lr_sum,   clip_mean = clip_sum / k

so the presets keep the paper's numbers in ``lr`` and ``clip`` and the trainer is given
the converted pair (the progress line shows ``lr_mean``). The schedule (PTB-3) is
``lr_e = lr · decay^max(0, e + 1 − decay_after)`` for epoch e counted from 0, stepped once
per epoch. Perplexity is ``exp`` of the mean nats per token.

``epochs.json`` in the run directory lists, per epoch: train and valid perplexity, the
learning rate, seconds, and words per second.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

from rnnkit.cli.progress import ProgressPrinter
from rnnkit.data.ptb import load_ptb
from rnnkit.data.streams import StreamBatcher, usable_streams
from rnnkit.data.vocab import WordVocab
from rnnkit.io.run import build_model, load_run, restore_run, save_run
from rnnkit.models.language_model import LanguageModel
from rnnkit.optim import SGD, LambdaLR
from rnnkit.train import Progress, Trainer, evaluate_lm

PRESETS: dict[str, dict[str, Any]] = {
    "small": {
        "layers": 2,
        "hidden": 200,
        "bptt": 20,
        "batch_size": 20,
        "init_range": 0.1,
        "dropout": 0.0,
        "lr": 1.0,
        "decay": 0.5,
        "decay_after": 4,
        "epochs": 13,
        "clip": 5.0,
        "published_valid": 120.7,
        "published_test": 114.5,
    },
    "medium": {
        "layers": 2,
        "hidden": 650,
        "bptt": 35,
        "batch_size": 20,
        "init_range": 0.05,
        "dropout": 0.5,
        "lr": 1.0,
        "decay": 1 / 1.2,
        "decay_after": 6,
        "epochs": 39,
        "clip": 5.0,
        "published_valid": 86.2,
        "published_test": 82.7,
    },
    "large": {
        "layers": 2,
        "hidden": 1500,
        "bptt": 35,
        "batch_size": 20,
        "init_range": 0.04,
        "dropout": 0.65,
        "lr": 1.0,
        "decay": 1 / 1.15,
        "decay_after": 14,
        "epochs": 55,
        "clip": 10.0,
        "published_valid": 82.2,
        "published_test": 78.4,
    },
}
OVERRIDABLE = ("layers", "hidden", "bptt", "batch_size", "dropout", "lr", "epochs", "clip")


def add_train_arguments(t: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit train ptb``."""
    t.add_argument("--data", required=True, help="folder with ptb.train.txt and ptb.valid.txt")
    t.add_argument("--preset", choices=sorted(PRESETS), default="small")
    t.add_argument("--out", help="run directory (default runs/ptb-PRESET)")
    t.add_argument("--epochs", type=int, help="override the preset's epoch count")
    t.add_argument("--steps", type=int, help="stop after N optimizer steps in total")
    t.add_argument("--seed", type=int, default=None)
    for key in ("layers", "hidden", "bptt", "batch_size"):
        t.add_argument("--" + key.replace("_", "-"), dest=key, type=int, help="override")
    for key in ("dropout", "lr", "clip"):
        t.add_argument("--" + key, dest=key, type=float, help="override (paper units)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")


def _config(args: argparse.Namespace) -> dict[str, Any]:
    cfg: dict[str, Any] = {"task": "ptb", "preset": args.preset, "data": str(args.data)}
    cfg.update(PRESETS[args.preset])
    for key in OVERRIDABLE:
        v = getattr(args, key, None)
        if v is not None:
            cfg[key] = v
    cfg["seed"] = 0 if args.seed is None else args.seed
    cfg["steps"] = args.steps
    for key in ("layers", "hidden", "bptt", "batch_size", "epochs"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise SystemExit(f"rnnkit: {key} must be a positive integer; got {cfg[key]!r}")
    if cfg["steps"] is not None and cfg["steps"] < 1:
        raise SystemExit(f"rnnkit: --steps must be >= 1; got {cfg['steps']}")
    return cfg


def lr_factor(cfg: dict[str, Any]) -> Any:
    """The schedule (PTB-3) as a function of the epoch, for :class:`LambdaLR`."""
    decay, after = float(cfg["decay"]), int(cfg["decay_after"])
    return lambda e: decay ** max(0, e + 1 - after)


def build(cfg: dict[str, Any], vocab_size: int) -> LanguageModel:
    """The preset's model: embedding = hidden size, stacked LSTM, dropout, uniform init."""
    return LanguageModel(
        vocab_size,
        cfg["hidden"],
        cfg["hidden"],
        cfg["layers"],
        "lstm",
        cfg["dropout"],
        init_range=cfg["init_range"],
        rng=cfg["seed"],
    )


def _history(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def train(args: argparse.Namespace) -> int:
    """Run ``rnnkit train ptb``."""
    out = Path(args.out or f"runs/ptb-{args.preset}")
    if args.resume:
        ckpt = load_run(out)
        cfg = dict(ckpt.config)
        for key in ("epochs", "steps"):  # the budget may be extended
            if getattr(args, key) is not None:
                cfg[key] = getattr(args, key)
        vocab: WordVocab | None = WordVocab.from_json(ckpt.vocab)
        print(f"resuming {ckpt.path} at step {ckpt.meta['trainer']['step']}")
    else:
        cfg = _config(args)
        if (out / "checkpoint").exists():
            raise SystemExit(f"rnnkit: {out} already holds a run; pass --resume or another --out")
        vocab = None
    cfg["out"] = str(out)
    t_load = time.perf_counter()
    vocab, data = load_ptb(cfg["data"], ("train", "valid"), vocab=vocab)
    train_ids, valid_ids = data["train"].ids, data["valid"].ids
    k = cfg["bptt"]
    model = build(cfg, len(vocab))
    optimizer = SGD(model.parameters(), lr=cfg["lr"] * k)  #                    (PTB-2)
    scheduler = LambdaLR(optimizer, lr_factor(cfg))  #                          (PTB-3)
    batcher = StreamBatcher(train_ids, cfg["batch_size"], k)
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(
        model,
        optimizer,
        batcher,
        scheduler=scheduler,
        valid_ids=valid_ids,
        clip=cfg["clip"] / k if cfg["clip"] else None,  #                      (PTB-2)
        metrics_path=out / "metrics.jsonl",
    )
    if args.resume:
        restore_run(ckpt, trainer)
    history_path = out / "epochs.json"
    history = _history(history_path) if args.resume else []
    n_params = sum(p.data.size for p in model.parameters())
    print("rnnkit train ptb")
    for key, v in cfg.items():
        print(f"  {key:<16} {v}")
    print(
        f"  {'corpus':<16} vocabulary {len(vocab):,}; train {len(train_ids):,} / valid "
        f"{len(valid_ids):,} tokens (valid OOV {data['valid'].oov}); read in "
        f"{time.perf_counter() - t_load:.1f} s"
    )
    print(f"  {'model':<16} {n_params:,} parameters; {len(batcher)} windows per epoch")
    print(f"  {'trainer units':<16} lr {cfg['lr']} x {k} steps, clip {cfg['clip']} / {k} (PTB-2)")

    def save() -> Path:
        return save_run(out / "checkpoint", trainer, cfg, vocab.to_json())

    total = _total_steps(cfg, len(batcher))
    printer = ProgressPrinter(sys.stdout, total_steps=total)
    acc = {"loss": 0.0, "tokens": 0, "t0": time.perf_counter(), "lr": float(optimizer.lr)}

    def on_progress(p: Progress) -> None:
        if p.kind == "step":
            printer.update(p)
            n = cfg["batch_size"] * (k if p.window < p.windows - 1 else _last(batcher))
            acc["loss"] += p.train_loss * n
            acc["tokens"] += n
            acc["lr"] = p.lr
        elif p.kind == "eval" and p.window == p.windows - 1:  # end of an epoch
            secs = time.perf_counter() - acc["t0"]
            rec = {
                "epoch": p.epoch + 1,
                "step": p.step,
                "lr": acc["lr"] / k,
                "train_ppl": math.exp(acc["loss"] / max(acc["tokens"], 1)),
                "valid_ppl": math.exp(p.valid_loss),
                "seconds": secs,
                "words_per_s": acc["tokens"] / secs,
            }
            history.append(rec)
            history_path.write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")
            printer.message(
                f"epoch {rec['epoch']:>2}  lr {rec['lr']:.4g}  train ppl {rec['train_ppl']:8.2f}  "
                f"valid ppl {rec['valid_ppl']:8.2f}  {secs:7.1f} s  "
                f"{rec['words_per_s']:,.0f} words/s"
            )
            acc.update(loss=0.0, tokens=0, t0=time.perf_counter())

    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        printer.message("interrupt: finishing this step and saving a checkpoint")
        trainer.request_stop()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, on_sigint)
    t0 = time.perf_counter()
    try:
        trainer.fit(
            cfg["epochs"],
            cfg["steps"],
            callback=on_progress,
            on_checkpoint=lambda tr: save(),
            checkpoint_every=len(batcher),
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    wall = time.perf_counter() - t0
    path = save()
    printer.close()
    if history:
        best = min(history, key=lambda r: r["valid_ppl"])
        print(f"best valid perplexity {best['valid_ppl']:.2f} (epoch {best['epoch']})")
    print(f"steps {trainer.step}, wall time {wall:.1f} s")
    print(f"checkpoint {path}")
    if trainer.stop_requested:
        print(f"stopped by interrupt; continue with: rnnkit train ptb --resume --out {out}")
        return 130
    return 0


def _last(batcher: StreamBatcher) -> int:
    """Steps in the epoch's last window (it may be shorter than bptt)."""
    return (batcher.stream_length - 1) - (len(batcher) - 1) * batcher.bptt


def _total_steps(cfg: dict[str, Any], windows: int) -> int:
    total = cfg["epochs"] * windows
    return min(total, cfg["steps"]) if cfg["steps"] else total


def evaluate(args: argparse.Namespace) -> int:
    """Run ``rnnkit eval`` on a ptb checkpoint: perplexity of one split (one stream by default)."""
    ckpt = load_run(args.checkpoint)
    model, vocab = build_model(ckpt), WordVocab.from_json(ckpt.vocab)
    directory = args.data or ckpt.config["data"]
    split = args.split or "valid"
    _, data = load_ptb(directory, (split,), vocab=vocab)
    ids = data[split].ids
    t0 = time.perf_counter()
    streams = getattr(args, "streams", None) or 1  # one stream: every token sees its past
    streams = usable_streams(streams, len(ids))
    loss = evaluate_lm(model, ids, streams, 200)
    print(
        f"{split}{f' as {streams} streams' if streams > 1 else ''}: "
        f"{len(ids):,} tokens ({data[split].oov} OOV), loss {loss:.4f} nats/token, "
        f"perplexity {math.exp(loss):.2f} ({time.perf_counter() - t0:.1f} s)"
    )
    return 0
