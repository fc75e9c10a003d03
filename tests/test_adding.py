"""The adding problem: generator, the sequence regressor, training, and the CLI end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnnkit.cli.adding import DEFAULTS, fit_adding, load_adding
from rnnkit.data.adding import BASELINE_MSE, SOLVED_MSE, adding_problem
from rnnkit.diagnostics.gradcheck import gradcheck_module
from rnnkit.diagnostics.gradient_flow import model_gradient_flow
from rnnkit.models.regressor import SequenceRegressor


@pytest.mark.parametrize(("B", "T"), [(1, 2), (5, 3), (64, 50)])
def test_generator_has_two_markers_one_per_half_and_the_sum_as_target(B, T):
    b = adding_problem(B, T, rng=3)
    assert b.x.shape == (T, B, 2)
    assert b.y.shape == (B, 1)
    assert b.x.dtype == np.float32
    values, markers = b.x[:, :, 0], b.x[:, :, 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers).tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(markers.sum(axis=0), 2.0)
    first, second = b.positions[:, 0], b.positions[:, 1]
    assert np.all(first < T // 2)
    assert np.all(second >= T // 2)
    np.testing.assert_array_equal(markers[first, np.arange(B)], 1.0)
    np.testing.assert_array_equal(markers[second, np.arange(B)], 1.0)
    np.testing.assert_allclose(b.y[:, 0], (values * markers).sum(axis=0), rtol=1e-6)


def test_generator_is_seeded_and_the_mean_predictor_scores_the_baseline():
    a, b = adding_problem(4, 9, rng=5), adding_problem(4, 9, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, adding_problem(4, 9, rng=6).x)
    big = adding_problem(20000, 4, rng=0, dtype=np.float64)
    assert big.x.dtype == np.float64
    assert np.mean((big.y - 1.0) ** 2) == pytest.approx(BASELINE_MSE, rel=0.03)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_sequences": 0, "length": 5}, ValueError, "`num_sequences` must be an integer >= 1"),
        ({"num_sequences": 2, "length": 1}, ValueError, "`length` must be an integer >= 2"),
        ({"num_sequences": 2, "length": 5.0}, ValueError, "`length` must be an integer"),
        ({"num_sequences": 2, "length": 5, "dtype": np.int32}, TypeError, "float32 or float64"),
    ],
)
def test_generator_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        adding_problem(rng=0, **kwargs)


@pytest.mark.parametrize(("cell", "layers"), [("rnn", 1), ("lstm", 2), ("gru", 1)])
def test_regressor_backward_matches_finite_differences(cell, layers):
    m = SequenceRegressor(3, 4, output_size=2, num_layers=layers, cell=cell, rng=1)
    m.astype(np.float64)
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    report = gradcheck_module(m, (x,))
    assert report.ok(), report


def test_output_grad_feeds_gradient_flow_and_matches_the_backward():
    m = SequenceRegressor(2, 3, cell="lstm", forget_bias=1.0, rng=0).astype(np.float64)
    b = adding_problem(4, 6, rng=0, dtype=np.float64)
    loss, flow = model_gradient_flow(m, b.x, b.y)
    pred = m(b.x)
    loss2, dpred = m.loss(pred, b.y)
    dx = m.backward(dpred)
    assert loss == pytest.approx(loss2)
    np.testing.assert_allclose(flow.dx, dx, rtol=1e-10, atol=1e-14)
    assert flow.dh_norm.shape == (1, 1, 6)
    assert m.pending() == 0


def test_regressor_errors():
    with pytest.raises(ValueError, match="`cell` must be one of"):
        SequenceRegressor(2, 3, cell="tanh")
    with pytest.raises(ValueError, match="LSTM only"):
        SequenceRegressor(2, 3, cell="gru", forget_bias=1.0)
    with pytest.raises(RuntimeError, match=r"SequenceRegressor\.backward called with no forward"):
        SequenceRegressor(2, 3).backward(np.zeros((1, 1), dtype=np.float32))


def test_fit_adding_solves_a_short_problem():
    cfg = {**DEFAULTS, "length": 6, "cell": "gru", "hidden": 16, "steps": 600,
           "eval_every": 50, "test_size": 200, "until_solved": True}  # fmt: skip
    result = fit_adding(cfg)
    assert result.solved_step is not None
    assert result.history[-1]["test_mse"] < SOLVED_MSE
    assert result.history[0]["test_mse"] > SOLVED_MSE
    assert result.steps == result.solved_step


def run_cli(*args, cwd):
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "rnnkit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_train_adding_then_eval(tmp_path):
    out = tmp_path / "run"
    args = ["train", "adding", "--length", "8", "--cell", "gru", "--hidden", "4", "--steps", "20",
            "--eval-every", "10", "--test-size", "30", "--out", str(out)]  # fmt: skip
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "step 10: test MSE" in proc.stdout
    assert "checkpoint" in proc.stdout
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [10, 20]
    model, meta = load_adding(out)
    assert meta["config"]["cell"] == "gru"
    assert meta["history"][-1]["test_mse"] == json.loads(lines[-1])["test_mse"]
    assert isinstance(model, SequenceRegressor)

    proc = run_cli("eval", "--checkpoint", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    mse = meta["history"][-1]["test_mse"]
    assert f"test MSE {mse:.5f}" in proc.stdout

    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 2
    assert "already holds a run" in again.stderr


def test_cli_adding_bad_flags(tmp_path):
    proc = run_cli("train", "adding", "--length", "1", "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "--length must be >= 2" in proc.stderr
    proc = run_cli("train", "adding", "--cell", "tanh", cwd=tmp_path)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
