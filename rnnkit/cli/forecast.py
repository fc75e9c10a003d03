"""``rnnkit train forecast``, ``rnnkit forecast`` and the forecast part of ``rnnkit eval``.

Training reads one column of a CSV file, splits it by time into train / valid / test
parts (:mod:`rnnkit.data.timeseries`), fits the scaling on the training part only,
trains a :class:`~rnnkit.models.Forecaster` on sliding windows (MSE, Adam, early
stopping on the validation MAE) and reports MAE, RMSE and MASE on the validation and
test parts against the naive and seasonal-naive baselines, computed by the same code.

:func:`fit_forecast` is the whole run without printing; the commands and
``benchmarks/reproduce/forecast.py`` call it.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.cli.progress import ProgressPrinter
from rnnkit.data.timeseries import (
    Series,
    SeriesScaler,
    SplitPoints,
    future_dates,
    make_windows,
    read_series,
    split_points,
    window_origins,
)
from rnnkit.io.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.models.forecaster import (
    Forecaster,
    mae,
    mase_scale,
    naive_forecast,
    residual_intervals,
    rmse,
    seasonal_naive_forecast,
)
from rnnkit.models.regressor import regression_step
from rnnkit.optim import Adam
from rnnkit.train import Progress

KIND = "rnnkit-forecast"

DEFAULTS: dict[str, Any] = {
    "task": "forecast",
    "csv": None,
    "column": None,
    "date_column": None,
    "horizon": None,
    "season": 1,
    "window": None,  # default max(4 H, 12)
    "valid_size": None,  # default 15% of the series (at least H)
    "test_size": None,  # default 15% of the series (at least H)
    "cell": "lstm",
    "hidden": 32,
    "layers": 1,
    "epochs": 100,
    "batch_size": 32,
    "lr": 3e-3,
    "clip": 1.0,
    "patience": 15,
    "log": False,
    "level": True,
    "coverage": 0.8,
    "seed": 0,
    "out": "runs/forecast",
}


@dataclass
class ForecastResult:
    """What :func:`fit_forecast` returns; metrics are in the series' own units."""

    model: Forecaster
    scaler: SeriesScaler
    points: SplitPoints
    cfg: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)  # one entry per epoch
    best_epoch: int = 0
    metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    intervals: np.ndarray | None = None  # (2, H) offsets from the validation residuals
    test_coverage: float | None = None


def resolve_config(cfg: dict[str, Any], n: int) -> dict[str, Any]:
    """Fill the size defaults that depend on the series length ``n``; check the rest."""
    cfg = dict(cfg)
    horizon = cfg["horizon"]
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"--horizon must be a positive integer; got {horizon!r}")
    if not isinstance(cfg["season"], int) or cfg["season"] < 1:
        raise ValueError(f"--season must be a positive integer; got {cfg['season']!r}")
    if cfg["window"] is None:
        cfg["window"] = max(4 * horizon, 12)
    for key in ("valid_size", "test_size"):
        if cfg[key] is None:
            cfg[key] = max(horizon, round(0.15 * n))
    for key in ("window", "hidden", "layers", "epochs", "batch_size"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(
                f"--{key.replace('_', '-')} must be a positive integer; got {cfg[key]}"
            )
    return cfg


def predict_windows(
    model: Forecaster, scaler: SeriesScaler, z: np.ndarray, origins: np.ndarray, cfg: dict[str, Any]
) -> np.ndarray:
    """Forecasts (N, H) in the series' units for the windows at ``origins``, (FC-1)–(FC-2)."""
    w = make_windows(z, origins, cfg["window"], cfg["horizon"], level=cfg["level"])
    out = np.empty((origins.size, cfg["horizon"]))
    for a in range(0, origins.size, 512):
        out[a : a + 512] = model.predict(w.x[:, a : a + 512])
    return scaler.inverse(out + w.level[:, None])  # undo (TS-4), then (TS-3)


def evaluate_part(
    model: Forecaster,
    scaler: SeriesScaler,
    y: np.ndarray,
    points: SplitPoints,
    part: str,
    cfg: dict[str, Any],
) -> tuple[dict[str, dict[str, float]], np.ndarray, np.ndarray]:
    """MAE, RMSE and MASE of the model and both baselines on one part.

    Returns ``(metrics, forecasts (N, H), actuals (N, H))``.
    """
    horizon, season = cfg["horizon"], cfg["season"]
    origins = window_origins(points, part, cfg["window"], horizon)
    actual = y[origins[:, None] + np.arange(horizon)[None, :]]
    forecast = predict_windows(model, scaler, scaler.transform(y), origins, cfg)
    q = mase_scale(y[: points.a], season)
    candidates = {
        "model": forecast,
        "naive": naive_forecast(y, origins, horizon),
        "seasonal_naive": seasonal_naive_forecast(y, origins, horizon, season),
    }
    metrics = {
        name: {"mae": mae(actual, f), "rmse": rmse(actual, f), "mase": mae(actual, f) / q}
        for name, f in candidates.items()
    }
    return metrics, forecast, actual


def fit_forecast(
    cfg: dict[str, Any],
    series: Series,
    callback: Callable[[Progress], None] | None = None,
) -> ForecastResult:
    """Train and evaluate a forecaster on ``series`` as ``cfg`` says; never prints.

    ``callback`` gets a "step" Progress after every batch and an "eval" Progress after
    every epoch (``valid_loss`` = validation MAE in the series' units).
    """
    y = series.values
    cfg = resolve_config(cfg, y.size)
    window, horizon = cfg["window"], cfg["horizon"]
    points = split_points(y.size, window, horizon, cfg["valid_size"], cfg["test_size"])
    if points.a <= cfg["season"]:
        raise ValueError(
            f"the training part ({points.a} values) must be longer than --season {cfg['season']}."
        )
    scaler = SeriesScaler.fit(y[: points.a], log=cfg["log"])  #                  (TS-3)
    z = scaler.transform(y)
    train = make_windows(
        z, window_origins(points, "train", window, horizon), window, horizon, level=cfg["level"]
    )
    model = Forecaster(horizon, cfg["hidden"], cfg["layers"], cfg["cell"], rng=cfg["seed"])
    optimizer = Adam(model.parameters(), lr=cfg["lr"])
    rng = np.random.default_rng([cfg["seed"], 2])
    report = callback or (lambda p: None)
    result = ForecastResult(model, scaler, points, cfg)
    n_train = train.y.shape[0]
    per_epoch = -(-n_train // cfg["batch_size"])
    best, best_state, bad, step = np.inf, model.state_dict(), 0, 0
    for epoch in range(1, cfg["epochs"] + 1):
        order = rng.permutation(n_train)  # shuffled within the training part only
        total = 0.0
        for k in range(per_epoch):
            idx = order[k * cfg["batch_size"] : (k + 1) * cfg["batch_size"]]
            loss, norm = regression_step(
                model, optimizer, train.x[:, idx], train.y[idx], cfg["clip"] or None
            )
            total += loss * idx.size
            step += 1
            report(
                Progress(
                    "step",
                    step,
                    epoch,
                    k,
                    per_epoch,
                    train_loss=loss,
                    lr=cfg["lr"],
                    tokens_per_s=0.0,
                    grad_norm=norm,
                )
            )
        part = "valid" if cfg["valid_size"] else "train"
        score = evaluate_part(model, scaler, y, points, part, cfg)[0]["model"]["mae"]
        result.history.append({"epoch": epoch, "train_mse": total / n_train, "valid_mae": score})
        report(Progress("eval", step, epoch, per_epoch, per_epoch, valid_loss=score, lr=cfg["lr"]))
        if score < best:
            best, best_state, bad, result.best_epoch = score, model.state_dict(), 0, epoch
        else:
            bad += 1
            if cfg["patience"] and bad >= cfg["patience"]:
                break
    model.load_state_dict(best_state)  # the epoch with the best validation MAE
    for part in ("valid", "test") if cfg["valid_size"] else ("test",):
        metrics, forecast, actual = evaluate_part(model, scaler, y, points, part, cfg)
        result.metrics[part] = metrics
        if part == "valid":
            result.intervals = residual_intervals(actual - forecast, cfg["coverage"])
        elif result.intervals is not None:
            lo, hi = forecast + result.intervals[0], forecast + result.intervals[1]
            result.test_coverage = float(np.mean((actual >= lo) & (actual <= hi)))
    return result


def save_forecast(out: Path, result: ForecastResult) -> Path:
    """Write the model, scaler, split and metrics as a checkpoint in ``out/checkpoint``."""
    arrays = {f"model/{k}": v for k, v in result.model.state_dict().items()}
    meta = {
        "kind": KIND,
        "config": result.cfg,
        "model_config": result.model.config,
        "scaler": result.scaler.to_json(),
        "split": {"a": result.points.a, "b": result.points.b, "n": result.points.n},
        "best_epoch": result.best_epoch,
        "history": result.history,
        "metrics": result.metrics,
        "intervals": None if result.intervals is None else result.intervals.tolist(),
        "test_coverage": result.test_coverage,
    }
    return save_checkpoint(out / "checkpoint", arrays, meta)


def load_forecast(path: str | Path) -> tuple[Forecaster, dict[str, Any]]:
    """Rebuild the forecaster of a checkpoint (run directory or checkpoint folder)."""
    p = Path(path)
    if (p / "checkpoint").is_dir():
        p = p / "checkpoint"
    arrays, meta = load_checkpoint(p)
    if meta.get("kind") != KIND:
        raise ValueError(
            f"{str(p)!r} is not a forecasting checkpoint (kind {meta.get('kind')!r}, expected "
            f"{KIND!r}); train one with `rnnkit train forecast`."
        )
    model = Forecaster(**meta["model_config"])
    model.load_state_dict({k.removeprefix("model/"): v for k, v in arrays.items()})
    return model, meta


def format_metrics(metrics: dict[str, dict[str, float]]) -> list[str]:
    """Rows of a small table: method, MAE, RMSE, MASE."""
    rows = [f"  {'method':<16}{'MAE':>10}{'RMSE':>10}{'MASE':>8}"]
    for name, m in metrics.items():
        rows.append(f"  {name:<16}{m['mae']:>10.3f}{m['rmse']:>10.3f}{m['mase']:>8.3f}")
    return rows


def add_train_arguments(t: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit train forecast``."""
    t.add_argument("--csv", required=True, help="CSV file with a header row")
    t.add_argument("--column", required=True, help="name of the value column")
    t.add_argument("--date-column", dest="date_column", help="date column (default: the first)")
    t.add_argument("--horizon", type=int, required=True, help="H, steps forecast at once")
    t.add_argument("--season", type=int, help="S for seasonal naive and MASE (default 1)")
    t.add_argument("--window", type=int, help="W, input steps per window (default max(4H, 12))")
    t.add_argument(
        "--valid-size", dest="valid_size", type=int, help="validation steps (default 15%%)"
    )
    t.add_argument("--test-size", dest="test_size", type=int, help="test steps (default 15%%)")
    t.add_argument("--cell", choices=["lstm", "gru", "rnn"])
    t.add_argument("--hidden", type=int)
    t.add_argument("--layers", type=int)
    t.add_argument("--epochs", type=int, help="at most this many epochs")
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--clip", type=float, help="global gradient-norm clip (0: off)")
    t.add_argument("--patience", type=int, help="stop after N epochs without a better valid MAE")
    t.add_argument("--log", action="store_true", default=None, help="model log(y) (y > 0)")
    t.add_argument(
        "--no-level",
        dest="level",
        action="store_false",
        default=None,
        help="do not take windows relative to their last value",
    )
    t.add_argument("--seed", type=int)
    t.add_argument("--out", help=f"run directory (default {DEFAULTS['out']})")


def train(args: argparse.Namespace) -> int:
    """Run ``rnnkit train forecast``."""
    cfg = dict(DEFAULTS)
    for key in DEFAULTS:
        if getattr(args, key, None) is not None:
            cfg[key] = getattr(args, key)
    out = Path(cfg["out"])
    if (out / "checkpoint").exists():
        raise ValueError(f"{out} already holds a run; pass another --out")
    series = read_series(cfg["csv"], cfg["column"], cfg["date_column"])
    cfg = resolve_config(cfg, series.values.size)
    print("rnnkit train forecast")
    for key, v in cfg.items():
        print(f"  {key:<15} {v}")
    print(f"  {'series':<15} {series.values.size} values, {series.dates[0]} … {series.dates[-1]}")
    printer = ProgressPrinter(sys.stdout, total_steps=1, every_s=1e9)

    def on_progress(p: Progress) -> None:
        if p.kind == "eval":
            printer.message(f"epoch {p.epoch}: valid MAE {p.valid_loss:.4f}")

    result = fit_forecast(cfg, series, on_progress)
    printer.close()
    path = save_forecast(out, result)
    print(f"best epoch {result.best_epoch}")
    for part, metrics in result.metrics.items():
        print(f"{part} part (season {cfg['season']} for the seasonal naive and MASE):")
        print("\n".join(format_metrics(metrics)))
    if result.test_coverage is not None:
        print(
            f"{cfg['coverage']:.0%} interval coverage on the test part: {result.test_coverage:.1%}"
        )
    print(f"checkpoint {path}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """Run ``rnnkit eval`` on a forecasting checkpoint: its test metrics, recomputed."""
    model, meta = load_forecast(args.checkpoint)
    cfg = meta["config"]
    series = read_series(args.data or cfg["csv"], cfg["column"], cfg["date_column"])
    y = series.values
    points = split_points(
        y.size, cfg["window"], cfg["horizon"], cfg["valid_size"], cfg["test_size"]
    )
    part = args.split or "test"
    if part not in ("train", "valid", "test"):
        raise ValueError(f"--split must be train, valid or test; got {part!r}")
    scaler = SeriesScaler.from_json(meta["scaler"])
    metrics = evaluate_part(model, scaler, y, points, part, cfg)[0]
    print(f"{part} part of {args.data or cfg['csv']} ({cfg['column']}, H={cfg['horizon']}):")
    print("\n".join(format_metrics(metrics)))
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit forecast``."""
    p.add_argument("--checkpoint", required=True, help="run directory of `rnnkit train forecast`")
    p.add_argument("--csv", required=True, help="CSV file holding the history")
    p.add_argument("--column", help="value column (default: the one trained on)")
    p.add_argument("--date-column", dest="date_column", help="date column (default: as trained)")
    p.add_argument("--out", required=True, help="CSV file to write the forecast to")
    p.add_argument("--plot", help="PNG file: history, forecast (and actuals with --backtest)")
    p.add_argument(
        "--backtest",
        action="store_true",
        help="forecast the last H values from the data before them, and compare",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``rnnkit forecast``: the H values after the CSV's last one, with their interval.

    With ``--backtest`` the last H values are held out and forecast from the data before them.
    """
    model, meta = load_forecast(args.checkpoint)
    cfg = meta["config"]
    column = args.column or cfg["column"]
    series = read_series(args.csv, column, args.date_column or cfg["date_column"])
    y, window, horizon = series.values, cfg["window"], cfg["horizon"]
    origin = y.size - horizon if args.backtest else y.size
    if origin < window:
        raise ValueError(
            f"the series is too short for the window: {y.size} values in {args.csv!r}, but a "
            f"forecast needs the last W={window} values"
            + (f" before the H={horizon} held out" if args.backtest else "")
            + f", so at least {window + (horizon if args.backtest else 0)}."
        )
    scaler = SeriesScaler.from_json(meta["scaler"])
    forecast = predict_windows(
        model, scaler, scaler.transform(y[:origin]), np.array([origin]), cfg
    )[0]
    offsets = meta["intervals"]
    lower = upper = None
    if offsets is not None:
        lower, upper = forecast + np.asarray(offsets[0]), forecast + np.asarray(offsets[1])
    if args.backtest:
        dates, actual = series.dates[origin:], y[origin:]
    else:
        dates, actual = future_dates(series.dates, horizon), None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["date", "forecast", "lower", "upper"] + (["actual"] if args.backtest else []))
        for k in range(horizon):
            row = [dates[k], f"{forecast[k]:.6g}"]
            row += ["", ""] if lower is None else [f"{lower[k]:.6g}", f"{upper[k]:.6g}"]
            row += [] if actual is None else [f"{actual[k]:.6g}"]
            w.writerow(row)
    print(f"forecast of {column!r}, {horizon} steps from {dates[0]} to {dates[-1]}: {out}")
    if actual is not None:
        print(f"backtest: MAE {mae(actual, forecast):.4f}, RMSE {rmse(actual, forecast):.4f}")
    if args.plot:
        from rnnkit.diagnostics.plots import plot_forecast

        keep = min(origin, max(4 * horizon, window))
        path = plot_forecast(
            args.plot,
            y[origin - keep : origin],
            forecast,
            actual=actual,
            interval=None if lower is None else (lower, upper),
            dates=series.dates[origin - keep : origin] + list(dates),
            title=f"{column}: {horizon}-step forecast ({cfg['cell'].upper()})",
        )
        print(f"plot {path}")
    return 0
