"""``rnnkit train charlm``, ``rnnkit generate`` and the charlm part of ``rnnkit eval``.

``rnnkit train`` with no task trains a character-level LSTM on the tiny Shakespeare
corpus shipped in the package, with truncated BPTT, periodic evaluation with a
generated sample, atomic checkpoints, Ctrl-C handling and ``--resume``.
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

import numpy as np

from rnnkit.cli.progress import ProgressPrinter
from rnnkit.data import CharVocab, StreamBatcher, load_tinyshakespeare, read_text, split_train_valid
from rnnkit.data.streams import usable_streams
from rnnkit.io.run import build_model, load_run, restore_run, save_run
from rnnkit.models.language_model import LanguageModel
from rnnkit.optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    CosineAnnealingLR,
    ReduceLROnPlateau,
    RMSprop,
)
from rnnkit.train import Trainer, evaluate_lm

OPTIMIZERS = {"adam": Adam, "adamw": AdamW, "sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad}

# Defaults of `rnnkit train` (charlm): a 2x384 LSTM, 6 epochs of 128 streams x 50
# characters (942 Adam steps) with a cosine learning rate and dropout 0.2, the output bias
# started at the corpus's log unigram distribution (LM-5). Sized to finish in about 10
# minutes on two CPU cores: validation 1.477 / 1.481 / 1.477 nats/char with seeds 0 / 1 / 2
# in 707-732 s in a slow hour of the VM (575 s for the same steps in a normal one); without
# the unigram start, 1.499 / 1.504 / 1.542. Every key can be set by a flag or --config.
# 128 x 50 rather than 64 x 100: the same characters per step, but the per-step products
# have twice the rows, so a step runs faster; state still carries across windows.
DEFAULTS: dict[str, Any] = {
    "task": "charlm",
    "data": None,  # None: the embedded tiny Shakespeare corpus
    "out": "runs/charlm",
    "cell": "lstm",
    "hidden": 384,
    "embed": 64,
    "layers": 2,
    "dropout": 0.2,
    "weight_drop": 0.0,  # DropConnect on the recurrent weights (WD-1); 0: off
    "unigram_init": True,  # output bias = log unigram distribution of the training text
    "epochs": 6,
    "steps": None,
    "batch_size": 128,
    "bptt": [50, 50],
    "lr": 3e-3,
    "optimizer": "adam",
    "clip": 5.0,
    "schedule": "cosine",
    "seed": 0,
    "eval_every": 500,  # and at each epoch end
    "patience": None,
    "valid_fraction": 0.1,
    "sample_length": 200,
    "temperature": 0.8,
}


def _bptt(text: str) -> list[int] | str:
    """Parse ``--bptt``: ``K1``, ``K1,K2`` (truncated BPTT) or ``full`` (whole streams)."""
    if text.strip().lower() == "full":
        return "full"
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--bptt takes K1, K1,K2 (integers) or full; got {text!r}"
        ) from None
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or vals[0] < 1 or vals[1] < vals[0]:
        raise argparse.ArgumentTypeError(f"--bptt needs 1 <= K1 <= K2; got {text!r}")
    return vals


def add_train_arguments(t: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit train charlm``."""
    t.add_argument("--data", help="a UTF-8 text file (default: embedded tiny Shakespeare)")
    t.add_argument("--out", help=f"run directory (default {DEFAULTS['out']})")
    t.add_argument("--cell", choices=["lstm", "gru", "rnn"])
    t.add_argument("--hidden", type=int, help="hidden units per layer")
    t.add_argument("--embed", type=int, help="embedding size")
    t.add_argument("--layers", type=int)
    t.add_argument("--dropout", type=float)
    t.add_argument(
        "--weight-drop",
        dest="weight_drop",
        type=float,
        help="DropConnect on the recurrent weights W_hh, a fresh mask for each forward pass "
        "(one per window when K1 = K2; default 0)",
    )
    t.add_argument(
        "--unigram-init",
        dest="unigram_init",
        action=argparse.BooleanOptionalAction,
        help="start the output bias at the training text's log unigram distribution "
        "(default on; --no-unigram-init starts it like the other layers)",
    )
    t.add_argument("--epochs", type=int)
    t.add_argument("--steps", type=int, help="stop after N optimizer steps in total")
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument(
        "--bptt", type=_bptt, help="K1 or K1,K2: truncated BPTT(k1, k2); full: whole streams"
    )
    t.add_argument("--lr", type=float)
    t.add_argument("--optimizer", choices=sorted(OPTIMIZERS))
    t.add_argument("--clip", type=float, help="global gradient-norm clip (0: off)")
    t.add_argument(
        "--schedule",
        choices=["none", "cosine", "plateau"],
        help="lr schedule: cosine over all steps, or halve on a validation plateau",
    )
    t.add_argument("--seed", type=int)
    t.add_argument("--eval-every", dest="eval_every", type=int, help="steps between evaluations")
    t.add_argument("--patience", type=int, help="early stop after N evaluations without gain")
    t.add_argument("--config", help="TOML or JSON file with the same keys as the flags")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")


def add_generate_arguments(g: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit generate``."""
    g.add_argument("--checkpoint", required=True, help="run directory or checkpoint folder")
    g.add_argument("--prime", default=None, help="text to start from (default: a newline)")
    g.add_argument("--length", type=int, default=500)
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-k", dest="top_k", type=int, default=None)
    g.add_argument("--seed", type=int, default=0)


def _load_config_file(path: str) -> dict[str, Any]:
    f = Path(path)
    if not f.is_file():
        raise SystemExit(f"rnnkit: --config {path!r} is not a file")
    try:
        if f.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                raise SystemExit("rnnkit: TOML configs need Python 3.11+; use JSON") from None
            data = tomllib.loads(f.read_text(encoding="utf-8"))
        else:
            data = json.loads(f.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SystemExit(f"rnnkit: cannot parse --config {path!r}: {exc}") from None
    data = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise SystemExit(f"rnnkit: unknown keys {unknown} in {path!r}; known: {sorted(DEFAULTS)}")
    if "bptt" in data:
        raw = data["bptt"]
        data["bptt"] = _bptt(",".join(map(str, raw)) if isinstance(raw, list) else str(raw))
    return data


def _train_config(args: argparse.Namespace) -> dict[str, Any]:
    cfg = dict(DEFAULTS)
    if args.config:
        cfg.update(_load_config_file(args.config))
    for key in DEFAULTS:
        v = getattr(args, key, None)
        if v is not None:
            cfg[key] = v
    for key in ("hidden", "embed", "layers", "epochs", "batch_size", "eval_every"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise SystemExit(f"rnnkit: {key} must be a positive integer; got {cfg[key]!r}")
    if not isinstance(cfg["unigram_init"], bool):
        raise SystemExit(f"rnnkit: unigram_init must be true or false; got {cfg['unigram_init']!r}")
    for key in ("dropout", "weight_drop"):
        if not isinstance(cfg[key], (int, float)) or not 0 <= cfg[key] < 1:
            raise SystemExit(f"rnnkit: {key} must be in [0, 1); got {cfg[key]!r}")
    if cfg["steps"] is not None and cfg["steps"] < 1:
        raise SystemExit(f"rnnkit: steps must be >= 1; got {cfg['steps']}")
    return cfg


def _corpus(cfg: dict[str, Any]) -> str:
    return load_tinyshakespeare() if cfg["data"] is None else read_text(cfg["data"])


def _sample(
    model: LanguageModel,
    vocab: CharVocab,
    prime: str,
    n: int,
    temp: float,
    seed: int,
    top_k: int | None = None,
) -> str:
    ids = vocab.encode(prime)
    return prime + vocab.decode(model.generate(ids, n, temperature=temp, top_k=top_k, rng=seed))


def _default_prime(vocab: CharVocab) -> str:
    return "\n" if "\n" in vocab.chars else vocab.chars[0]


def train(args: argparse.Namespace) -> int:
    """Run ``rnnkit train charlm``."""
    out = Path(args.out or DEFAULTS["out"])
    if args.resume:
        ckpt = load_run(out)
        cfg = dict(ckpt.config)
        for key in ("epochs", "steps"):  # the training budget may be extended
            new = getattr(args, key)
            if new is not None and new != cfg[key] and cfg["schedule"] == "cosine":
                raise SystemExit(
                    f"rnnkit: this run's cosine schedule spans its original {key} "
                    f"({cfg[key]}); resume it without --{key}, or start a new run"
                )
            if new is not None:
                cfg[key] = new
        vocab = CharVocab.from_json(ckpt.vocab)
        print(f"resuming {ckpt.path} at step {ckpt.meta['trainer']['step']}")
    else:
        cfg = _train_config(args)
        cfg["out"] = str(out)
        if (out / "checkpoint").exists():
            raise SystemExit(f"rnnkit: {out} already holds a run; pass --resume or another --out")
        vocab = None
    text = _corpus(cfg)
    vocab = vocab or CharVocab.from_text(text)
    train_ids, valid_ids = split_train_valid(vocab.encode(text), cfg["valid_fraction"])
    if cfg["bptt"] == "full":  # one window spanning each whole stream
        k1 = k2 = max(1, len(train_ids) // cfg["batch_size"] - 1)
    else:
        k1, k2 = cfg["bptt"]
    model = LanguageModel(
        len(vocab),
        cfg["embed"],
        cfg["hidden"],
        cfg["layers"],
        cfg["cell"],
        cfg["dropout"],
        rng=cfg["seed"],
        weight_drop=cfg.get("weight_drop", 0.0),  # runs saved before the key: none
    )
    if cfg.get("unigram_init") and not args.resume:  # a resumed run loads its parameters
        model.init_output_bias(np.bincount(train_ids, minlength=len(vocab)))
    optimizer = OPTIMIZERS[cfg["optimizer"]](model.parameters(), lr=cfg["lr"])
    batcher = StreamBatcher(train_ids, cfg["batch_size"], k1)
    out.mkdir(parents=True, exist_ok=True)
    scheduler: Any = None
    if cfg["schedule"] == "cosine":
        scheduler = CosineAnnealingLR(optimizer, T_max=_total_steps(cfg, len(batcher)))
    elif cfg["schedule"] == "plateau":
        scheduler = ReduceLROnPlateau(optimizer, factor=0.5, patience=0)
    trainer = Trainer(
        model,
        optimizer,
        batcher,
        k2=k2,
        scheduler=scheduler,
        schedule_per_step=cfg["schedule"] == "cosine",
        valid_ids=valid_ids,
        clip=cfg["clip"] or None,
        eval_every=cfg["eval_every"],
        patience=cfg["patience"],
        metrics_path=out / "metrics.jsonl",
    )
    if args.resume:
        restore_run(ckpt, trainer)
    n_params = sum(p.data.size for p in model.parameters())
    print("rnnkit train " + cfg["task"])
    for key, v in cfg.items():
        print(f"  {key:<15} {v}")
    print(
        f"  {'corpus':<15} {len(text):,} chars, vocabulary {len(vocab)}, "
        f"train {len(train_ids):,} / valid {len(valid_ids):,}"
    )
    print(f"  {'model':<15} {n_params:,} parameters; {len(batcher)} windows per epoch")

    def save() -> Path:
        return save_run(out / "checkpoint", trainer, cfg, vocab.to_json())

    printer = ProgressPrinter(sys.stdout, total_steps=_total_steps(cfg, len(batcher)))

    def on_progress(p: Any) -> None:
        printer.update(p)
        if p.kind == "eval":
            if trainer.best_valid == p.valid_loss:  # a new best: keep it apart
                save_run(out / "best", trainer, cfg, vocab.to_json())
            seed = cfg["seed"] * 1_000_003 + p.step
            text_ = _sample(
                model, vocab, _default_prime(vocab), cfg["sample_length"], cfg["temperature"], seed
            )
            printer.message(f"--- sample at step {p.step} ---\n{text_}\n---")

    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        printer.message(
            "interrupt: finishing this step and saving a checkpoint "
            "(press Ctrl-C again to abort without saving)"
        )
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
            checkpoint_every=cfg["eval_every"],
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    path = save()
    printer.close()
    if trainer.last_eval is not None and trainer.last_eval[0] == trainer.step:
        valid = trainer.last_eval[1]  # evaluated at the last step already
    else:
        valid = evaluate_lm(model, valid_ids, cfg["batch_size"], k1)
    wall = time.perf_counter() - t0
    final = _sample(model, vocab, _default_prime(vocab), 400, cfg["temperature"], cfg["seed"])
    print(f"--- sample from the final model ---\n{final}\n---")
    print(
        f"validation loss {valid:.4f} nats/char = {valid / math.log(2):.4f} bits/char "
        f"(perplexity {math.exp(valid):.2f})"
    )
    best = trainer.best_valid
    if best is not None and best < valid:
        print(f"best validation loss {best:.4f} nats/char, kept in {out / 'best'}")
    print(f"steps {trainer.step}, wall time {wall:.1f} s (training and evaluation)")
    print(f"checkpoint {path}")
    if trainer.stop_requested:
        print("stopped by interrupt; continue with: rnnkit train --resume --out " + str(out))
        return 130
    if trainer.stopped_early:
        print(f"stopped early: no improvement in {cfg['patience']} evaluations")
    return 0


def _total_steps(cfg: dict[str, Any], windows: int) -> int:
    total = cfg["epochs"] * windows
    return min(total, cfg["steps"]) if cfg["steps"] else total


def generate(args: argparse.Namespace) -> int:
    """Run ``rnnkit generate``."""
    ckpt = load_run(args.checkpoint)
    model, vocab = build_model(ckpt), CharVocab.from_json(ckpt.vocab)
    prime = _default_prime(vocab) if args.prime is None else args.prime
    if not prime:
        raise SystemExit("rnnkit: --prime must not be empty")
    print(_sample(model, vocab, prime, args.length, args.temperature, args.seed, args.top_k))
    return 0


def load_runs(
    paths: list[str], same_split: bool = True
) -> tuple[list[LanguageModel], CharVocab, list[dict[str, Any]]]:
    """The models of one or several charlm runs, their shared vocabulary and their metadata.

    Several runs (an ensemble) must share the character vocabulary and, with
    ``same_split``, the corpus and validation split; otherwise a clear ``ValueError``.
    Each run's metadata holds its ``config`` and ``trainer`` state (the step).
    """
    ckpts = [load_run(p) for p in paths]
    vocab, cfg = CharVocab.from_json(ckpts[0].vocab), ckpts[0].config
    for path, c in zip(paths[1:], ckpts[1:], strict=True):
        if CharVocab.from_json(c.vocab).chars != vocab.chars:
            raise ValueError(
                f"checkpoint {path!r} has another character vocabulary than {paths[0]!r}; "
                "an ensemble's runs must share one."
            )
        split = (c.config["data"], c.config["valid_fraction"])
        if same_split and split != (cfg["data"], cfg["valid_fraction"]):
            raise ValueError(
                f"checkpoint {path!r} was trained on another corpus or split than "
                f"{paths[0]!r}; pass --data to score them on one text."
            )
    return [build_model(c) for c in ckpts], vocab, [c.meta for c in ckpts]


def validation_ids(cfg: dict[str, Any], vocab: CharVocab) -> np.ndarray:
    """The validation split of a run's corpus, as the run made it."""
    return split_train_valid(vocab.encode(_corpus(cfg)), cfg["valid_fraction"])[1]


def evaluate(args: argparse.Namespace) -> int:
    """Run ``rnnkit eval`` on a charlm checkpoint, or on several as an ensemble (ENS-1)."""
    paths = getattr(args, "checkpoints", None) or [args.checkpoint]
    models, vocab, metas = load_runs(paths, same_split=not args.data)
    cfg = metas[0]["config"]
    if args.data:
        ids, what = vocab.encode(read_text(args.data)), args.data
    else:
        ids, what = validation_ids(cfg, vocab), "validation split"
    window = 256 if cfg["bptt"] == "full" else cfg["bptt"][0]  # the state carries either way
    streams = getattr(args, "streams", None) or cfg["batch_size"]  # as the run reported it
    streams = usable_streams(streams, len(ids))
    loss = evaluate_lm(models if len(models) > 1 else models[0], ids, streams, window)
    who = f", ensemble of {len(models)} runs" if len(models) > 1 else ""
    print(
        f"{what} as {streams} stream{'s' if streams > 1 else ''}{who}: "
        f"{len(ids):,} chars, loss {loss:.4f} nats/char = "
        f"{loss / math.log(2):.4f} bits/char, perplexity {math.exp(loss):.3f}"
    )
    return 0
