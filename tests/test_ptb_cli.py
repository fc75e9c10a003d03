"""``rnnkit train ptb`` / ``rnnkit eval`` end to end in subprocesses, on a tiny PTB-style corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.io.safetensors import load_arrays

DATA = Path(__file__).parent / "data" / "ptb_tiny"
TINY = ["--data", str(DATA), "--hidden", "8", "--batch-size", "2", "--bptt", "5"]


def rnnkit(*args, cwd, check=True):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "rnnkit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def model_arrays(run_dir):
    arrays = load_arrays(Path(run_dir) / "checkpoint" / "model.safetensors")
    return {k: v for k, v in arrays.items() if k.startswith("model/")}


def test_train_follows_the_small_schedule_and_eval_prints_perplexity(tmp_path):
    out = rnnkit("train", "ptb", *TINY, "--epochs", "6", "--out", "run", cwd=tmp_path).stdout
    assert "rnnkit train ptb" in out
    assert "preset           small" in out
    assert "lr 1.0 x 5 steps, clip 5.0 / 5 (PTB-2)" in out
    assert "best valid perplexity" in out
    epochs = json.loads((tmp_path / "run" / "epochs.json").read_text())
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert [e["lr"] for e in epochs] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25]  # (PTB-3)
    assert all(e["train_ppl"] > 1 and e["valid_ppl"] > 1 and e["seconds"] > 0 for e in epochs)
    assert epochs[-1]["train_ppl"] < epochs[0]["train_ppl"]
    ev = rnnkit("eval", "--checkpoint", "run", cwd=tmp_path).stdout
    assert ev.startswith("valid: 35 tokens (0 OOV)")
    assert "perplexity" in ev
    ev = rnnkit("eval", "--checkpoint", "run", "--split", "test", cwd=tmp_path).stdout
    assert ev.startswith("test: 18 tokens (0 OOV)")
    ev = rnnkit("eval", "--checkpoint", "run", "--streams", "2", cwd=tmp_path).stdout
    assert ev.startswith("valid as 2 streams: 35 tokens (0 OOV)")
    proc = rnnkit("eval", "--checkpoint", "run", "--checkpoint", "run", cwd=tmp_path, check=False)
    assert proc.returncode == 2  # ensembles: g2p and charlm only
    assert "several --checkpoint (an ensemble) work only for g2p, charlm" in proc.stderr


def test_resume_equals_an_uninterrupted_run(tmp_path):
    rnnkit("train", "ptb", *TINY, "--epochs", "2", "--dropout", "0.3", "--out", "a", cwd=tmp_path)
    rnnkit(
        "train",
        "ptb",
        *TINY,
        "--epochs",
        "2",
        "--dropout",
        "0.3",
        "--steps",
        "23",
        "--out",
        "b",
        cwd=tmp_path,
    )
    out = rnnkit(
        "train",
        "ptb",
        "--data",
        str(DATA),
        "--resume",
        "--steps",
        "999",
        "--out",
        "b",
        cwd=tmp_path,
    ).stdout
    assert "resuming" in out
    a, b = model_arrays(tmp_path / "a"), model_arrays(tmp_path / "b")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "nowhere"], "does not exist"),
        (["--data", str(DATA), "--preset", "huge"], "invalid choice"),
    ],
)
def test_bad_input_is_reported(tmp_path, args, message):
    proc = rnnkit("train", "ptb", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
