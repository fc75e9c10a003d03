"""``rnnkit train`` / ``generate`` / ``eval`` end to end in subprocesses, on a tiny corpus."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnnkit.io.safetensors import load_arrays

CORPUS = Path(__file__).parent / "data" / "sonnet18.txt"
TINY = [
    "--data",
    str(CORPUS),
    "--hidden",
    "8",
    "--embed",
    "4",
    "--layers",
    "2",
    "--batch-size",
    "3",
    "--bptt",
    "6,9",
    "--eval-every",
    "4",
    "--dropout",
    "0.1",
    "--schedule",
    "none",
]


def rnnkit(*args, cwd, check=True, **kw):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "rnnkit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        **kw,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def model_arrays(run_dir):
    arrays = load_arrays(Path(run_dir) / "checkpoint" / "model.safetensors")
    return {k: v for k, v in arrays.items() if k.startswith("model/")}


def test_train_prints_progress_and_writes_a_checkpoint(tmp_path):
    out = rnnkit("train", *TINY, "--steps", "8", "--out", "run", cwd=tmp_path).stdout
    assert "rnnkit train charlm" in out
    assert "sample at step 4" in out
    assert "nats/char" in out
    assert "bits/char" in out
    assert "wall time" in out
    assert (tmp_path / "run" / "checkpoint" / "checkpoint.json").is_file()
    assert (tmp_path / "run" / "best" / "checkpoint.json").is_file()  # the best evaluation
    assert "sample from the final model" in out
    records = [
        json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().split("\n") if x
    ]
    assert [r["step"] for r in records if "train_loss" in r] == list(range(1, 9))
    gen = rnnkit(
        "generate", "--checkpoint", "run", "--prime", "Shall", "--length", "30", cwd=tmp_path
    ).stdout
    assert gen.startswith("Shall")
    assert len(gen.rstrip("\n")) == 35
    ev = rnnkit("eval", "--checkpoint", "run", cwd=tmp_path).stdout
    assert "validation split as 3 streams" in ev  # the run's batch size
    assert "perplexity" in ev
    one = rnnkit("eval", "--checkpoint", "run", "--streams", "1", cwd=tmp_path).stdout
    assert "validation split as 1 stream:" in one


def test_resume_equals_one_uninterrupted_run(tmp_path):
    rnnkit("train", *TINY, "--steps", "10", "--out", "straight", cwd=tmp_path)
    rnnkit("train", *TINY, "--steps", "5", "--out", "split", cwd=tmp_path)
    rnnkit("train", "--resume", "--out", "split", "--steps", "10", cwd=tmp_path)
    a, b = model_arrays(tmp_path / "straight"), model_arrays(tmp_path / "split")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_sigint_saves_a_checkpoint_that_resumes(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "train", *TINY, "--epochs", "100000", "--out", "run"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        for line in proc.stdout:  # wait until training has started
            if line.startswith("step 1/"):
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, rest
    assert "--resume" in rest
    meta = json.loads((tmp_path / "run" / "checkpoint" / "checkpoint.json").read_text())
    step = meta["meta"]["trainer"]["step"]
    assert step >= 1
    out = rnnkit("train", "--resume", "--out", "run", "--steps", str(step + 2), cwd=tmp_path)
    assert f"steps {step + 2}," in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "missing.txt", "--steps", "1"], "missing.txt"),
        (["train", "--bptt", "9,3"], "K1 <= K2"),
        (["train", "--hidden", "0", "--data", str(CORPUS)], "hidden must be a positive integer"),
        (["train", "--weight-drop", "1", "--data", str(CORPUS)], "weight_drop must be in [0, 1)"),
        (["train", "nosuchtask"], "unknown task"),
        (["eval", "--checkpoint", "nowhere"], "does not exist"),
        (["eval", "--checkpoint", "nowhere", "--streams", "0"], "--streams must be >= 1"),
        (["generate", "--checkpoint", "nowhere"], "does not exist"),
    ],
)
def test_bad_input_fails_with_a_clear_message(tmp_path, args, message):
    proc = rnnkit(*args, cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout


def test_eval_scores_an_ensemble_of_runs(tmp_path):
    rnnkit("train", *TINY, "--steps", "3", "--out", "a", cwd=tmp_path)
    rnnkit("train", *TINY, "--steps", "3", "--seed", "1", "--out", "b", cwd=tmp_path)

    def loss(*paths):
        args = [a for p in paths for a in ("--checkpoint", p)]
        out = rnnkit("eval", *args, "--streams", "1", cwd=tmp_path).stdout
        return float(out.split("loss ")[1].split()[0]), out

    single, _ = loss("a")
    twice, out = loss("a", "a")  # the mean of one distribution is itself
    assert "ensemble of 2 runs" in out
    assert twice == single
    both, _ = loss("a", "b")
    assert both != single
    (tmp_path / "other.txt").write_text("xyz " * 200)
    rnnkit("train", *TINY[2:], "--data", "other.txt", "--steps", "1", "--out", "c", cwd=tmp_path)
    proc = rnnkit("eval", "--checkpoint", "a", "--checkpoint", "c", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "another character vocabulary" in proc.stderr


def test_existing_run_is_not_overwritten_and_corrupt_checkpoint_refused(tmp_path):
    rnnkit("train", *TINY, "--steps", "2", "--out", "run", cwd=tmp_path)
    proc = rnnkit("train", *TINY, "--steps", "2", "--out", "run", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "--resume" in proc.stderr + proc.stdout
    st = tmp_path / "run" / "checkpoint" / "model.safetensors"
    st.write_bytes(st.read_bytes()[:-7])
    proc = rnnkit("eval", "--checkpoint", "run", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "run" in proc.stderr


def test_config_file_sets_the_same_keys(tmp_path):
    cfg = {
        "data": str(CORPUS),
        "hidden": 6,
        "embed": 3,
        "layers": 1,
        "batch_size": 2,
        "bptt": "5",
        "steps": 3,
        "cell": "gru",
        "eval_every": 3,
        "weight_drop": 0.25,
    }
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    out = rnnkit("train", "--config", "c.json", "--out", "run", cwd=tmp_path).stdout
    assert "gru" in out
    meta = json.loads((tmp_path / "run" / "checkpoint" / "checkpoint.json").read_text())
    assert meta["meta"]["model_config"]["cell"] == "gru"
    assert meta["meta"]["model_config"]["hidden_size"] == 6
    assert meta["meta"]["model_config"]["weight_drop"] == 0.25
    (tmp_path / "bad.json").write_text(json.dumps({"hiden": 3}))
    proc = rnnkit("train", "--config", "bad.json", cwd=tmp_path, check=False)
    assert "unknown keys ['hiden']" in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    "extra",
    [
        ["--bptt", "full", "--schedule", "cosine", "--epochs", "4"],
        ["--schedule", "plateau", "--cell", "rnn"],
    ],
)
def test_full_bptt_and_schedules_run(tmp_path, extra):
    i = TINY.index("--bptt")
    args = TINY[:i] + TINY[i + 2 :]  # without the default --bptt 6,9
    out = rnnkit("train", *args, "--steps", "4", *extra, "--out", "run", cwd=tmp_path).stdout
    assert "validation loss" in out
    records = [
        json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().split("\n") if x
    ]
    lrs = [r["lr"] for r in records if "lr" in r and "train_loss" in r]
    if "cosine" in extra:
        assert lrs[0] > lrs[-1]  # the cosine schedule decays the learning rate


def test_extending_a_cosine_run_is_refused(tmp_path):
    i = TINY.index("--schedule")
    args = TINY[:i] + TINY[i + 2 :]  # the default cosine schedule
    rnnkit("train", *args, "--steps", "3", "--out", "run", cwd=tmp_path)
    proc = rnnkit("train", "--resume", "--out", "run", "--steps", "6", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "cosine schedule spans its original steps" in proc.stderr + proc.stdout


def test_unigram_init_is_the_default_and_can_be_turned_off(tmp_path):
    """The output bias starts at the corpus's log unigram distribution unless told not to."""
    from rnnkit.data import CharVocab, split_train_valid

    on = rnnkit("train", *TINY, "--steps", "1", "--lr", "0", "--out", "on", cwd=tmp_path)
    off = rnnkit(
        "train",
        *TINY,
        "--steps",
        "1",
        "--lr",
        "0",
        "--no-unigram-init",
        "--out",
        "off",
        cwd=tmp_path,
    )
    assert "unigram_init    True" in on.stdout
    assert "unigram_init    False" in off.stdout
    text = CORPUS.read_text(encoding="utf-8")
    vocab = CharVocab.from_text(text)
    train, _ = split_train_valid(vocab.encode(text), 0.1)
    counts = np.bincount(train, minlength=len(vocab))
    logp = np.log((counts + 1) / (counts.sum() + len(vocab)))
    bias_on = model_arrays(tmp_path / "on")["model/decoder.bias"]
    bias_off = model_arrays(tmp_path / "off")["model/decoder.bias"]
    np.testing.assert_allclose(bias_on, logp - logp.mean(), atol=1e-6)  # lr 0: still the start
    assert np.abs(bias_off - (logp - logp.mean())).max() > 0.5
