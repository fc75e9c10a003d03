"""``rnnkit train adding`` and the adding part of ``rnnkit eval``.

The adding problem (:mod:`rnnkit.data.adding`): a :class:`SequenceRegressor` reads T
steps of (value, marker) and predicts the sum of the two marked values. Training
batches are drawn fresh at every step from a seeded generator; a fixed test set
(its own seed) is evaluated every ``--eval-every`` steps. The task counts as solved
at test MSE < 0.01 (predicting the mean gives 0.167).

:func:`fit_adding` is the whole training run without any printing; the command and
``benchmarks/reproduce/adding.py`` both call it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.cli.progress import ProgressPrinter
from rnnkit.data.adding import BASELINE_MSE, SOLVED_MSE, adding_problem
from rnnkit.io.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.models.regressor import SequenceRegressor, regression_step
from rnnkit.optim import Adam
from rnnkit.train import Progress

KIND = "rnnkit-adding"

# Adam learning rate per cell when --lr is not given (chosen on T = 50 ... 200 runs: the
# tanh RNN is unstable at 1e-2, the GRU learns fastest at 3e-3, the LSTM at 1e-2).
LR_BY_CELL = {"rnn": 3e-3, "lstm": 1e-2, "gru": 3e-3}

# Defaults of `rnnkit train adding`: a T = 100 LSTM or GRU solves it in a few minutes on
# 2 cores. The LSTM's forget-gate bias starts at 3 (σ(3) = 0.95, a nearly open gate, so the
# cell state carries gradient across many steps from the start; 1 is the usual choice for
# short dependencies, Jozefowicz et al. 2015).
DEFAULTS: dict[str, Any] = {
    "task": "adding",
    "out": "runs/adding",
    "length": 100,
    "cell": "lstm",
    "hidden": 32,
    "layers": 1,
    "batch_size": 32,
    "steps": 3000,
    "lr": None,  # LR_BY_CELL[cell]
    "clip": 1.0,
    "forget_bias": 3.0,  # LSTM only
    "seed": 0,
    "test_size": 500,
    "test_seed": 1234,
    "eval_every": 100,
    "until_solved": False,
}


@dataclass
class AddingResult:
    """What :func:`fit_adding` returns."""

    model: SequenceRegressor
    history: list[dict[str, float]] = field(default_factory=list)  # one entry per evaluation
    solved_step: int | None = None  # first evaluation with test MSE < SOLVED_MSE
    steps: int = 0
    wall_s: float = 0.0


def build_model(cfg: dict[str, Any]) -> SequenceRegressor:
    """The regressor of an adding configuration (input: value and marker)."""
    return SequenceRegressor(
        2,
        cfg["hidden"],
        1,
        cfg["layers"],
        cfg["cell"],
        forget_bias=cfg["forget_bias"] if cfg["cell"] == "lstm" else None,
        rng=cfg["seed"],
    )


def adding_mse(model: SequenceRegressor, x: np.ndarray, y: np.ndarray, batch: int = 250) -> float:
    """Mean squared error of ``model`` on the whole test set, evaluated in chunks."""
    total = 0.0
    for a in range(0, x.shape[1], batch):
        pred = model.predict(x[:, a : a + batch])
        total += float(np.sum((pred.astype(np.float64) - y[a : a + batch]) ** 2))
    return total / y.size


def fit_adding(
    cfg: dict[str, Any],
    callback: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> AddingResult:
    """Train on the adding problem as ``cfg`` (keys of :data:`DEFAULTS`) says; never prints.

    ``callback`` receives a :class:`rnnkit.train.Progress` after every step ("step") and
    evaluation ("eval", with ``valid_loss`` = test MSE). Training stops after
    ``cfg["steps"]`` steps, at the first solved evaluation if ``cfg["until_solved"]``,
    or when ``should_stop()`` returns True.
    """
    cfg = {**cfg, "lr": cfg["lr"] or LR_BY_CELL[cfg["cell"]]}
    model = build_model(cfg)
    optimizer = Adam(model.parameters(), lr=cfg["lr"])
    data_rng = np.random.default_rng([cfg["seed"], 1])
    test = adding_problem(cfg["test_size"], cfg["length"], rng=cfg["test_seed"])
    result = AddingResult(model)
    report = callback or (lambda p: None)
    t0 = time.perf_counter()
    window_loss, window_n = 0.0, 0
    for step in range(1, cfg["steps"] + 1):
        batch = adding_problem(cfg["batch_size"], cfg["length"], rng=data_rng)
        t_step = time.perf_counter()
        loss, norm = regression_step(model, optimizer, batch.x, batch.y, cfg["clip"] or None)
        rate = batch.x.shape[0] * batch.x.shape[1] / max(time.perf_counter() - t_step, 1e-9)
        window_loss, window_n = window_loss + loss, window_n + 1
        result.steps = step
        report(
            Progress(
                "step",
                step,
                1,
                step,
                cfg["steps"],
                train_loss=loss,
                lr=cfg["lr"],
                tokens_per_s=rate,
                grad_norm=norm,
            )
        )
        last = step == cfg["steps"] or (should_stop is not None and should_stop())
        if step % cfg["eval_every"] == 0 or last:
            mse = adding_mse(model, test.x, test.y)
            result.history.append(
                {"step": step, "train_mse": window_loss / window_n, "test_mse": mse}
            )
            window_loss, window_n = 0.0, 0
            report(Progress("eval", step, 1, step, cfg["steps"], valid_loss=mse, lr=cfg["lr"]))
            if result.solved_step is None and mse < SOLVED_MSE:
                result.solved_step = step
                if cfg["until_solved"]:
                    break
        if last:
            break
    result.wall_s = time.perf_counter() - t0
    return result


def save_adding(out: Path, result: AddingResult, cfg: dict[str, Any]) -> Path:
    """Write the model and its history as a checkpoint in ``out/checkpoint``."""
    model = result.model
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    meta = {
        "kind": KIND,
        "config": cfg,
        "model_config": model.config,
        "history": result.history,
        "solved_step": result.solved_step,
        "steps": result.steps,
    }
    return save_checkpoint(out / "checkpoint", arrays, meta)


def load_adding(path: str | Path) -> tuple[SequenceRegressor, dict[str, Any]]:
    """Rebuild the model of an adding checkpoint (run directory or checkpoint folder)."""
    p = Path(path)
    if (p / "checkpoint").is_dir():
        p = p / "checkpoint"
    arrays, meta = load_checkpoint(p)
    if meta.get("kind") != KIND:
        raise ValueError(
            f"{str(p)!r} is not an adding-problem checkpoint (kind {meta.get('kind')!r}, "
            f"expected {KIND!r}); train one with `rnnkit train adding`."
        )
    model = SequenceRegressor(**meta["model_config"])
    model.load_state_dict({k.removeprefix("model/"): v for k, v in arrays.items()})
    return model, meta


def add_train_arguments(t: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit train adding``."""
    t.add_argument(
        "--length", type=int, help=f"T, steps per sequence (default {DEFAULTS['length']})"
    )
    t.add_argument("--cell", choices=["lstm", "gru", "rnn"])
    t.add_argument("--hidden", type=int, help="hidden units per layer")
    t.add_argument("--layers", type=int)
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--steps", type=int, help="optimizer steps (the training budget)")
    t.add_argument(
        "--lr",
        type=float,
        help="Adam learning rate (default per cell: rnn 3e-3, lstm 1e-2, gru 3e-3)",
    )
    t.add_argument("--clip", type=float, help="global gradient-norm clip (0: off)")
    t.add_argument("--forget-bias", dest="forget_bias", type=float, help="LSTM forget-gate bias")
    t.add_argument("--seed", type=int)
    t.add_argument("--test-size", dest="test_size", type=int, help="sequences in the test set")
    t.add_argument("--eval-every", dest="eval_every", type=int, help="steps between evaluations")
    t.add_argument(
        "--until-solved",
        dest="until_solved",
        action="store_true",
        default=None,
        help="stop at the first evaluation with test MSE < 0.01",
    )
    t.add_argument("--out", help=f"run directory (default {DEFAULTS['out']})")


def train_config(args: argparse.Namespace) -> dict[str, Any]:
    """DEFAULTS overridden by the flags given, checked."""
    cfg = dict(DEFAULTS)
    for key in DEFAULTS:
        v = getattr(args, key, None)
        if v is not None:
            cfg[key] = v
    for key in ("hidden", "layers", "batch_size", "steps", "test_size", "eval_every"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(
                f"--{key.replace('_', '-')} must be a positive integer; got {cfg[key]}"
            )
    if cfg["length"] < 2:
        raise ValueError(f"--length must be >= 2 (two marked steps); got {cfg['length']}")
    if cfg["lr"] is None:
        cfg["lr"] = LR_BY_CELL[cfg["cell"]]
    if not cfg["lr"] > 0:
        raise ValueError(f"--lr must be > 0; got {cfg['lr']}")
    return cfg


def train(args: argparse.Namespace) -> int:
    """Run ``rnnkit train adding``."""
    cfg = train_config(args)
    out = Path(cfg["out"])
    if (out / "checkpoint").exists():
        raise ValueError(f"{out} already holds a run; pass another --out")
    print("rnnkit train adding")
    for key, v in cfg.items():
        print(f"  {key:<15} {v}")
    print(f"  {'baseline':<15} predicting 1 gives MSE {BASELINE_MSE:.3f}; solved at < {SOLVED_MSE}")
    printer = ProgressPrinter(sys.stdout, total_steps=cfg["steps"])
    out.mkdir(parents=True, exist_ok=True)
    metrics = (out / "metrics.jsonl").open("w", encoding="utf-8")

    def on_progress(p: Progress) -> None:
        if p.kind == "step":
            printer.update(p)
        else:
            printer.message(f"step {p.step}: test MSE {p.valid_loss:.5f}")
            metrics.write(json.dumps({"step": p.step, "test_mse": p.valid_loss}) + "\n")
            metrics.flush()

    try:
        result = fit_adding(cfg, on_progress)
    finally:
        metrics.close()
    printer.close()
    path = save_adding(out, result, cfg)
    final = result.history[-1]["test_mse"]
    solved = f"solved at step {result.solved_step}" if result.solved_step else "not solved"
    print(f"test MSE {final:.5f} ({solved}; baseline {BASELINE_MSE:.3f})")
    print(f"steps {result.steps}, wall time {result.wall_s:.1f} s")
    print(f"checkpoint {path}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """Run ``rnnkit eval`` on an adding checkpoint: test MSE on the run's test set."""
    model, meta = load_adding(args.checkpoint)
    cfg = meta["config"]
    test = adding_problem(cfg["test_size"], cfg["length"], rng=cfg["test_seed"])
    mse = adding_mse(model, test.x, test.y)
    status = "solved" if mse < SOLVED_MSE else "not solved"
    print(
        f"adding problem T={cfg['length']} ({cfg['cell']}): test MSE {mse:.5f} over "
        f"{cfg['test_size']} sequences, {status} (baseline {BASELINE_MSE:.3f})"
    )
    return 0
