"""``rnnkit train forecast`` / ``rnnkit forecast`` / ``rnnkit eval`` end to end in subprocesses."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnkit.cli import main
from rnnkit.cli.forecast import load_forecast
from rnnkit.data.timeseries import read_series

DATA = Path(__file__).parent / "data"
MONTHLY = str(DATA / "ts_monthly.csv")
SHORT = str(DATA / "ts_short_daily.csv")
PNG = b"\x89PNG\r\n\x1a\n"
TRAIN = ["train", "forecast", "--csv", MONTHLY, "--column", "Value", "--horizon", "3",
         "--season", "12", "--window", "12", "--valid-size", "12", "--test-size", "12",
         "--hidden", "4", "--epochs", "3", "--cell", "gru"]  # fmt: skip


def rnnkit(*args, cwd):
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "rnnkit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("forecast")
    proc = rnnkit(*TRAIN, "--out", str(tmp / "run"), cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    assert "test part (season 12" in proc.stdout
    for name in ("model", "naive", "seasonal_naive"):
        assert f"  {name} " in proc.stdout
    return tmp / "run"


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_train_writes_a_checkpoint_with_metrics_and_intervals(run_dir):
    model, meta = load_forecast(run_dir)
    assert meta["config"]["horizon"] == 3
    assert set(meta["metrics"]) == {"valid", "test"}
    assert set(meta["metrics"]["test"]) == {"model", "naive", "seasonal_naive"}
    assert len(meta["intervals"]) == 2
    assert model.horizon == 3


def test_forecast_beyond_the_end_writes_csv_and_png(run_dir, tmp_path):
    out, png = tmp_path / "f.csv", tmp_path / "f.png"
    proc = rnnkit("forecast", "--checkpoint", str(run_dir), "--csv", MONTHLY, "--out", str(out),
                  "--plot", str(png), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(out)
    assert [r["date"] for r in rows] == ["2006-01", "2006-02", "2006-03"]
    for r in rows:
        assert float(r["lower"]) <= float(r["forecast"]) <= float(r["upper"])
    assert png.read_bytes()[:8] == PNG


def test_backtest_compares_with_the_actual_values(run_dir, tmp_path):
    out = tmp_path / "b.csv"
    proc = rnnkit("forecast", "--checkpoint", str(run_dir), "--csv", MONTHLY, "--out", str(out),
                  "--backtest", "--plot", str(tmp_path / "b.png"), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "backtest: MAE" in proc.stdout
    rows = read_csv(out)
    series = read_series(MONTHLY, "Value")
    assert [r["date"] for r in rows] == series.dates[-3:]
    assert [float(r["actual"]) for r in rows] == pytest.approx(series.values[-3:].tolist())
    assert (tmp_path / "b.png").read_bytes()[:8] == PNG


def test_eval_recomputes_the_test_metrics(run_dir, tmp_path):
    proc = rnnkit("eval", "--checkpoint", str(run_dir), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _, meta = load_forecast(run_dir)
    mae = meta["metrics"]["test"]["model"]["mae"]
    assert f"{mae:>10.3f}" in proc.stdout


# Bad input: the same `main` as the `rnnkit` command, in-process (fast).
def test_forecast_on_a_series_too_short_for_the_window(run_dir, tmp_path, capsys):
    rc = main(["forecast", "--checkpoint", str(run_dir), "--csv", SHORT, "--column", "Temp",
               "--out", str(tmp_path / "x.csv")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2
    assert "too short for the window: 5 values" in err
    assert "W=12" in err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    ("csv_file", "column", "message"),
    [
        (MONTHLY, "Nope", "no column 'Nope'; its columns are ['Month', 'Value']"),
        (str(DATA / "ts_bad_values.csv"), "Value", "row 4: non-numeric value 'abc'"),
        (SHORT, "Temp", "too short for the window: 5 values"),
    ],
)
def test_train_with_bad_csv_input_fails_clearly(tmp_path, capsys, csv_file, column, message):
    rc = main(["train", "forecast", "--csv", csv_file, "--column", column, "--horizon", "2",
               "--out", str(tmp_path / "r")])  # fmt: skip
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
