"""``rnnkit train g2p``, ``eval``, ``g2p``, ``plot attention`` end to end on a tiny dictionary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli.g2p_decode import load_g2p, predict
from rnnkit.data.cmudict import G2PVocab
from rnnkit.io.safetensors import load_arrays

TINY = Path(__file__).parent / "data" / "cmudict_tiny.dict"
FLAGS = ["--data", str(TINY), "--embed", "4", "--hidden", "6", "--decoder-hidden", "8",
         "--batch-size", "8", "--eval-every", "5", "--beam", "3", "--lr", "0.02"]  # fmt: skip
CONSTANT = ["--schedule", "constant"]


def rnnkit(*args, cwd, check=True):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
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


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One tiny run of 2 epochs (16 steps), then resumed to 3 epochs (constant lr: the cosine
    schedule would change with the number of epochs)."""
    tmp = tmp_path_factory.mktemp("g2p")
    out = tmp / "run"
    p = rnnkit("train", "g2p", *FLAGS, *CONSTANT, "--epochs", "2", "--out", str(out), cwd=tmp)
    assert "57 words (a-z only; 4 others left out): train 45 (62 pairs), dev 6, test 6" in p.stdout
    assert "step 16: dev WER" in p.stdout
    assert "steps 16, wall time" in p.stdout
    p = rnnkit("train", "g2p", "--resume", "--out", str(out), "--epochs", "3", cwd=tmp)
    assert "(resumed)" in p.stdout
    assert "steps 24, wall time" in p.stdout
    return out


def test_run_directory_and_metrics(run_dir):
    assert (run_dir / "checkpoint" / "checkpoint.json").is_file()
    assert (run_dir / "best" / "model.safetensors").is_file()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 8, 10, 15, 16, 20, 24]
    assert all(0.0 <= r["dev_wer"] <= 1.0 and r["dev_words"] == 6 for r in records)
    meta = json.loads((run_dir / "checkpoint" / "checkpoint.json").read_text())["meta"]
    assert meta["kind"] == "rnnkit-g2p"
    assert meta["progress"]["step"] == 24
    assert meta["config"]["task"] == "g2p"


def test_resume_equals_an_uninterrupted_run(run_dir, tmp_path):
    out = tmp_path / "straight"
    rnnkit("train", "g2p", *FLAGS, *CONSTANT, "--epochs", "3", "--out", str(out), cwd=tmp_path)
    a = load_arrays(run_dir / "checkpoint" / "model.safetensors")
    b = load_arrays(out / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_eval_reports_wer_and_per_greedy_and_beam(run_dir):
    for split in ("dev", "test"):
        p = rnnkit("eval", "--checkpoint", str(run_dir), "--split", split, cwd=run_dir)
        assert f"{split} split, 6 words" in p.stdout
        assert "greedy   WER" in p.stdout
        assert "beam 3   WER" in p.stdout
    p = rnnkit("eval", "--checkpoint", str(run_dir), "--split", "valid", cwd=run_dir, check=False)
    assert p.returncode == 2
    assert "--split must be dev, test or train" in p.stderr


def test_eval_and_g2p_decode_an_ensemble_of_runs(run_dir):
    """The same model twice: the mean distribution (ENS-1) is its own, so are the outputs."""
    last = str(run_dir / "checkpoint")
    one = rnnkit("eval", "--checkpoint", last, "--split", "train", cwd=run_dir)
    two = rnnkit("eval", "--checkpoint", last, "--checkpoint", last, "--split", "train",
                 cwd=run_dir)  # fmt: skip
    assert "ensemble of 2: " in two.stdout
    assert two.stdout.count("(step 24)") == 2

    def scores(out):
        return [line.split("(")[0].strip() for line in out.splitlines() if "WER" in line]

    assert scores(two.stdout) == scores(one.stdout)
    assert len(scores(one.stdout)) == 2
    p1 = rnnkit("g2p", "--checkpoint", last, "cat", "tomato", "seat", cwd=run_dir)
    p2 = rnnkit("g2p", "--checkpoint", last, "--checkpoint", last, "cat", "tomato", "seat",
                cwd=run_dir)  # fmt: skip
    assert p2.stdout == p1.stdout  # (the decoding itself: tests/models/test_ensemble.py)


def test_g2p_prints_each_word_with_phonemes(run_dir):
    p = rnnkit("g2p", "--checkpoint", str(run_dir), "cat", "Tomato", cwd=run_dir)
    lines = p.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["cat", "tomato"]
    model, meta, _ = load_g2p(str(run_dir))
    assert not model.training
    assert meta["config"]["beam"] == 3
    p = rnnkit("g2p", "--checkpoint", str(run_dir), "o'neil", cwd=run_dir, check=False)
    assert p.returncode == 2
    assert "cannot spell" in p.stderr


def test_plot_attention_writes_a_png(run_dir):
    png = run_dir / "attn.png"
    args = ["--checkpoint", str(run_dir), "--out", str(png), "--beam", "1", "water"]
    p = rnnkit("plot", "attention", *args, cwd=run_dir)
    assert p.stdout.startswith("water\t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png.unlink()
    p2 = rnnkit("plot", "attention", "--checkpoint", str(run_dir), *args, cwd=run_dir)
    assert p2.stdout == p.stdout  # an ensemble of one model twice decodes as the model
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_length_penalty_is_the_beams_alpha(run_dir, tmp_path):
    """``--length-penalty`` is α of (BEAM-2) for ``g2p`` and ``eval``, and a run's default for
    them. This tiny model's beam ends at once unless α rewards length."""
    model, vocab, words = load_g2p(str(run_dir))[0], G2PVocab(), ["cat", "water", "zebra"]
    want = {}
    for alpha in ("1", "3"):
        hyps = predict(model, vocab, words, 3, length_penalty=float(alpha))
        want[alpha] = [" ".join(vocab.decode_pron(h.tokens)) for h in hyps]
        p = rnnkit("g2p", "--checkpoint", str(run_dir), "--length-penalty", alpha, *words,
                   cwd=tmp_path)  # fmt: skip
        assert [line.split("\t")[1] for line in p.stdout.splitlines()] == want[alpha]
    assert want["1"] != want["3"]

    def beam_line(*flags):
        p = rnnkit("eval", "--split", "train", *flags, cwd=tmp_path)
        return p.stdout.splitlines()[0].split(": ")[-1], next(
            line.split("(")[0] for line in p.stdout.splitlines() if "beam 3" in line
        )

    one = beam_line("--checkpoint", str(run_dir))
    three = beam_line("--checkpoint", str(run_dir), "--length-penalty", "3")
    assert one[0].endswith("words; beam length penalty α = 1")
    assert three[0].endswith("words; beam length penalty α = 3")
    assert one[1] != three[1]
    p = rnnkit("eval", "--checkpoint", str(run_dir), "--split", "train", "--beam", "2",
               cwd=tmp_path)  # fmt: skip
    assert "beam 2   WER" in p.stdout
    out = tmp_path / "alpha3"
    rnnkit("train", "g2p", *FLAGS, "--steps", "2", "--length-penalty", "3", "--out", str(out),
           cwd=tmp_path)  # fmt: skip
    assert load_g2p(str(out))[1]["config"]["length_penalty"] == 3.0
    assert beam_line("--checkpoint", str(out))[0].endswith("α = 3")
    for bad in (["train", "g2p", *FLAGS, "--length-penalty", "-1", "--out", str(tmp_path / "x")],
                ["g2p", "--checkpoint", str(run_dir), "--length-penalty", "nan", "cat"],
                ["g2p", "--checkpoint", str(run_dir), "--beam", "0", "cat"]):  # fmt: skip
        p = rnnkit(*bad, cwd=tmp_path, check=False)
        assert p.returncode != 0
        assert "must be" in p.stderr
        assert not (tmp_path / "x").exists()


def test_reversed_target_order_learns_and_rescores(run_dir, tmp_path):
    """A run trained right to left memorises the train words and prints them in reading
    order; it rescores the forward run's beam (RESCORE-1) but cannot join its ensemble."""
    rev = tmp_path / "rev"
    flags = ["--data", str(TINY), "--embed", "8", "--hidden", "16", "--decoder-hidden", "16",
             "--batch-size", "8", "--eval-every", "1000", "--lr", "0.03",
             "--epochs", "30"]  # fmt: skip
    rnnkit("train", "g2p", *flags, "--target-order", "reversed", "--out", str(rev), cwd=tmp_path)
    meta = json.loads((rev / "checkpoint" / "checkpoint.json").read_text())["meta"]
    assert meta["config"]["target_order"] == "reversed"
    last = str(rev / "checkpoint")
    p = rnnkit("eval", "--checkpoint", last, "--split", "train", cwd=tmp_path)
    assert "greedy   WER   0.00%  PER  0.00%" in p.stdout  # scored in reading order
    p = rnnkit("g2p", "--checkpoint", last, "--beam", "1", "all", "would", cwd=tmp_path)
    assert p.stdout.splitlines() == ["all\tAO L", "would\tW UH D"]  # train words of TINY
    fwd = str(run_dir)
    p = rnnkit("eval", "--checkpoint", fwd, "--rescore", last, "--rescore-weight", "1",
               "--split", "train", cwd=tmp_path)  # fmt: skip
    assert "rescored (λ = 1) by " in p.stdout
    assert "rescored WER" in p.stdout
    p = rnnkit("g2p", "--checkpoint", fwd, "--rescore", last, "cat", cwd=tmp_path)
    assert p.stdout.startswith("cat\t")
    p = rnnkit("eval", "--checkpoint", fwd, "--rescore", last, "--rescore-union",
               "--rescore-weight", "1", "--split", "train", cwd=tmp_path)  # fmt: skip
    assert "with their own n-best" in p.stdout
    line = next(x for x in p.stdout.splitlines() if x.strip().startswith("rescored WER"))
    assert float(line.split()[2].rstrip("%")) < 10.0  # λ = 1: the reversed run's candidates win
    p = rnnkit("eval", "--checkpoint", fwd, "--checkpoint", last, cwd=tmp_path, check=False)
    assert p.returncode == 2
    assert "must share their target order" in p.stderr
    p = rnnkit("eval", "--checkpoint", fwd, "--rescore", fwd, cwd=tmp_path, check=False)
    assert p.returncode == 2
    assert "other target order" in p.stderr
    p = rnnkit("eval", "--checkpoint", fwd, "--rescore", last, "--rescore-weight", "2",
               cwd=tmp_path, check=False)  # fmt: skip
    assert p.returncode == 2
    assert "[0, 1]" in p.stderr
    p = rnnkit("g2p", "--checkpoint", fwd, "--rescore", last, "--beam", "1", "cat", cwd=tmp_path,
               check=False)  # fmt: skip
    assert p.returncode == 2
    assert "--beam 2 or more" in p.stderr
    p = rnnkit("g2p", "--checkpoint", fwd, "--rescore-weight", "0.3", "cat", cwd=tmp_path,
               check=False)  # fmt: skip
    assert p.returncode == 2
    assert "pass --rescore DIR too" in p.stderr
    p = rnnkit("g2p", "--checkpoint", fwd, "--rescore-union", "cat", cwd=tmp_path, check=False)
    assert p.returncode == 2
    assert "pass --rescore DIR too" in p.stderr


def test_refuses_to_overwrite_a_run(run_dir):
    p = rnnkit("train", "g2p", *FLAGS, "--out", str(run_dir), cwd=run_dir, check=False)
    assert p.returncode != 0
    assert "already holds a run" in p.stderr
