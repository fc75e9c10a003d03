"""Forecast three classic series with RNN/LSTM/GRU encoders against naive baselines.

    python benchmarks/reproduce/forecast.py DATA_DIR [--out benchmarks/results] [--quick]

DATA_DIR holds airline-passengers.csv, monthly-sunspots.csv and
daily-min-temperatures.csv (read in place, never copied). Each series is split by time
into train / valid / test parts; a small grid (cell x window) is fitted on the training
part and the configuration with the lowest *validation* MAE is kept; only that one is
evaluated on the test part (the last part of the series), with MAE, RMSE and MASE
against the naive and seasonal-naive forecasts computed by the same code. Writes
``forecast.json`` and one PNG per series into --out, and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny matrices: threads only add overhead
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RNNKIT_NUM_THREADS", "1")

import numpy as np

from rnnkit.cli.forecast import DEFAULTS, evaluate_part, fit_forecast
from rnnkit.data.timeseries import read_series, window_origins
from rnnkit.diagnostics.plots import BASELINE_COLORS, new_figure, plot_forecast, save_figure
from rnnkit.kernels import backend
from rnnkit.models.forecaster import naive_forecast, seasonal_naive_forecast

# Per series: the horizon, the season S (for seasonal naive and the MASE scale), the
# part sizes and the grid. S is the series' natural period: 12 months for the airline
# passengers, 365 days for the temperatures, and the ~11-year solar cycle (132 months)
# for the sunspots, which have no yearly season.
SERIES = {
    "airline-passengers": {
        "file": "airline-passengers.csv", "column": "Passengers", "horizon": 12, "season": 12,
        "valid_size": 24, "test_size": 24, "log": True, "windows": [24, 36], "batch_size": 16,
        "epochs": 200, "patience": 25,  # 144 values: ~5 steps per epoch
    },
    "monthly-sunspots": {
        "file": "monthly-sunspots.csv", "column": "Sunspots", "horizon": 12, "season": 132,
        "valid_size": 420, "test_size": 420, "log": False, "windows": [48, 96], "batch_size": 64,
        "epochs": 30, "patience": 8,
    },
    "daily-min-temperatures": {
        "file": "daily-min-temperatures.csv", "column": "Temp", "horizon": 7, "season": 365,
        "valid_size": 365, "test_size": 365, "log": False, "windows": [30, 60], "batch_size": 64,
        "epochs": 30, "patience": 8,
    },
}  # fmt: skip
CELLS = ["rnn", "lstm", "gru"]


def run_series(name: str, spec: dict, data_dir: Path, out: Path, quick: bool) -> dict:
    series = read_series(data_dir / spec["file"], spec["column"])
    base = {**DEFAULTS, **{k: spec[k] for k in ("column", "horizon", "season", "valid_size",
                                                "test_size", "log", "batch_size")}}  # fmt: skip
    epochs = 3 if quick else spec["epochs"]
    base.update(csv=str(data_dir / spec["file"]), epochs=epochs, patience=spec["patience"])
    grid = []
    best = None
    for cell in CELLS:
        for window in spec["windows"][:1] if quick else spec["windows"]:
            cfg = {**base, "cell": cell, "window": window}
            t0 = time.perf_counter()
            res = fit_forecast(cfg, series)
            wall = time.perf_counter() - t0
            valid = res.metrics["valid"]["model"]
            grid.append({"cell": cell, "window": window, "valid_mae": valid["mae"],
                         "valid_mase": valid["mase"], "best_epoch": res.best_epoch,
                         "epochs_run": len(res.history), "wall_s": round(wall, 1)})  # fmt: skip
            epochs = f"epoch {res.best_epoch}/{len(res.history)}"
            print(f"  {name:<24} {cell:<5} W={window:<4} valid MAE {valid['mae']:8.3f} "
                  f"({epochs}, {wall:5.1f} s)", flush=True)  # fmt: skip
            if best is None or valid["mae"] < best.metrics["valid"]["model"]["mae"]:
                best = res
    cfg = best.cfg
    y = series.values
    record = {
        "series": name, "column": spec["column"], "n": int(y.size), "horizon": cfg["horizon"],
        "season": cfg["season"], "split": {"train_end": best.points.a, "valid_end": best.points.b},
        "grid": grid, "chosen": {"cell": cfg["cell"], "window": cfg["window"],
                                 "hidden": cfg["hidden"], "log": cfg["log"]},
        "valid": best.metrics["valid"], "test": best.metrics["test"],
        "interval_coverage": cfg["coverage"], "test_interval_coverage": best.test_coverage,
    }  # fmt: skip
    record["figure"] = figure(name, series, best, out / f"forecast-{name}.png")
    return record


def figure(name: str, series, res, path: Path) -> str:
    """Left: the last test window; right: test MAE by horizon step, model vs baselines."""
    cfg, y = res.cfg, series.values
    horizon, season = cfg["horizon"], cfg["season"]
    _, forecasts, actual = evaluate_part(res.model, res.scaler, y, res.points, "test", cfg)
    origins = window_origins(res.points, "test", cfg["window"], horizon)
    fig, axes = new_figure(1, 2, size=(12.0, 4.0))
    i = origins[-1]
    keep = min(i, max(3 * cfg["window"], 4 * horizon))
    lo, hi = forecasts[-1] + res.intervals[0], forecasts[-1] + res.intervals[1]
    plot_forecast(None, y[i - keep : i], forecasts[-1], actual=actual[-1], interval=(lo, hi),
                  baselines={"naive": naive_forecast(y, origins[-1:], horizon)[0],
                             "seasonal naive": seasonal_naive_forecast(y, origins[-1:], horizon,
                                                                       season)[0]},
                  dates=series.dates[i - keep : i + horizon],
                  title=f"{name}: last test window ({cfg['cell'].upper()}, W={cfg['window']})",
                  ax=axes[0, 0])  # fmt: skip
    ax = axes[0, 1]
    steps = np.arange(1, horizon + 1)
    per_step = {
        "model": forecasts,
        "naive": naive_forecast(y, origins, horizon),
        "seasonal naive": seasonal_naive_forecast(y, origins, horizon, season),
    }
    colors = {
        "model": "tab:blue",
        "naive": BASELINE_COLORS[0],
        "seasonal naive": BASELINE_COLORS[1],
    }
    for label, f in per_step.items():
        err = np.mean(np.abs(actual - f), axis=0)
        ax.plot(steps, err, marker=".", color=colors[label], label=label)
    ax.set_xlabel("horizon step")
    ax.set_ylabel(f"test MAE ({series.column})")
    ax.set_title(f"{name}: test MAE by horizon step ({origins.size} windows)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return path.name


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data_dir", help="folder with the three CSV files")
    p.add_argument("--out", default="benchmarks/results", help="folder for JSON and PNG files")
    p.add_argument("--quick", action="store_true", help="one window, 3 epochs: a smoke test")
    p.add_argument("--series", nargs="*", choices=sorted(SERIES), help="default: all three")
    args = p.parse_args()
    data_dir, out = Path(args.data_dir), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    records = [run_series(n, SERIES[n], data_dir, out, args.quick) for n in args.series or SERIES]
    doc = {
        "benchmark": "forecast", "command": " ".join(["python", *sys.argv]),
        "quick": args.quick, "wall_s": round(time.perf_counter() - t0, 1),
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "float32_backend": backend(np.float32)._asdict()},
        "results": records,
    }  # fmt: skip
    name = "forecast-quick.json" if args.quick else "forecast.json"
    if args.series and (out / name).is_file():  # rerun of some series: keep the others
        old = json.loads((out / name).read_text(encoding="utf-8"))
        rerun = {r["series"] for r in records}
        kept = [r for r in old["results"] if r["series"] not in rerun]
        doc["results"] = sorted(kept + records, key=lambda r: list(SERIES).index(r["series"]))
        doc["command"] = old.get("command", "") + " ; " + doc["command"]
        records = doc["results"]
    (out / name).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print()
    print(f"{'series':<24}{'method':<16}{'MAE':>9}{'RMSE':>9}{'MASE':>7}")
    for r in records:
        for method, m in r["test"].items():
            label = f"{method} ({r['chosen']['cell']})" if method == "model" else method
            print(f"{r['series']:<24}{label:<16}{m['mae']:>9.3f}{m['rmse']:>9.3f}{m['mase']:>7.3f}")
    beats = all(r["test"]["model"]["mase"] < r["test"]["seasonal_naive"]["mase"] for r in records)
    print(f"\nmodel MASE below seasonal naive on every series: {beats}")
    print(f"wrote {out / name} and {len(records)} figures; {doc['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
