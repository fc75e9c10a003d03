"""``rnnkit train tagger`` / ``eval`` / ``tag`` end to end in subprocesses, on a tiny treebank."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli.tagger import rare_word_dropout
from rnnkit.data.conllu import parse_conllu, read_conllu
from rnnkit.data.vocab import WordVocab
from rnnkit.io.safetensors import load_arrays

DATA = Path(__file__).parent / "data" / "ud_tiny"
CONSTRUCTS = Path(__file__).parent / "data" / "conllu" / "constructs.conllu"
TINY = [
    "--data",
    str(DATA),
    "--word-dim",
    "8",
    "--char-dim",
    "4",
    "--char-hidden",
    "6",
    "--hidden",
    "12",
    "--batch-size",
    "4",
    "--lr",
    "0.05",
    "--dropout",
    "0.1",
]
TAGS = {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "NOUN", "NUM", "PRON", "PUNCT", "VERB"}


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


def test_train_eval_and_tag(tmp_path):
    out = rnnkit("train", "tagger", *TINY, "--epochs", "12", "--out", "run", cwd=tmp_path).stdout
    assert "rnnkit train tagger" in out
    assert "12 sentences / 73 words, dev 3 / 19; vocabulary" in out
    assert "11 tags" in out
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 12
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    best = max(h["dev_accuracy"] for h in history)
    assert best > 60.0  # dev: 19 words, 3 of them unseen in training
    assert history[0]["dev_oov_tokens"] == 3  # lower-cased: sleep, tree, book
    assert (tmp_path / "run" / "best" / "checkpoint.json").is_file()
    ev = rnnkit("eval", "--checkpoint", "run", cwd=tmp_path).stdout
    assert f"UPOS accuracy {best:.2f}%" in ev  # the best epoch's parameters
    assert "OOV words 3, accuracy" in ev
    ev = rnnkit("eval", "--checkpoint", "run", "--split", "train", cwd=tmp_path).stdout
    assert ev.startswith("tiny-ud-train.conllu: 12 sentences, 73 words")

    (tmp_path / "in.txt").write_text("The old cat sleeps .\n\n  She reads  \n")
    text = rnnkit("tag", "--checkpoint", "run", "in.txt", cwd=tmp_path).stdout
    s1, s2 = parse_conllu(text)
    assert s1.forms() == ["The", "old", "cat", "sleeps", "."]
    assert s2.comments == ("# sent_id = 3", "# text = She reads")
    assert set(s1.upos() + s2.upos()) <= TAGS

    rnnkit("tag", "--checkpoint", "run", str(CONSTRUCTS), "-o", "t.conllu", cwd=tmp_path)
    tagged, source = read_conllu(tmp_path / "t.conllu"), read_conllu(CONSTRUCTS)
    for t, s in zip(tagged, source, strict=True):
        assert t.comments == s.comments
        assert set(t.upos()) <= TAGS
        for rt, rs in zip(t.rows, s.rows, strict=True):  # only the words' UPOS changes
            assert rt._replace(upos="") == rs._replace(upos="")
            if rs.kind != "word":
                assert rt == rs


def test_resume_equals_an_uninterrupted_run(tmp_path):
    rnnkit(
        "train",
        "tagger",
        *TINY,
        "--epochs",
        "2",
        "--word-dropout",
        "0.3",
        "--out",
        "a",
        cwd=tmp_path,
    )
    rnnkit(
        "train",
        "tagger",
        *TINY,
        "--epochs",
        "2",
        "--word-dropout",
        "0.3",
        "--steps",
        "4",
        "--out",
        "b",
        cwd=tmp_path,
    )
    out = rnnkit("train", "tagger", "--resume", "--steps", "99", "--out", "b", cwd=tmp_path).stdout
    assert "resuming b at step 4" in out
    a = load_arrays(tmp_path / "a" / "checkpoint" / "model.safetensors")
    b = load_arrays(tmp_path / "b" / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    ha = json.loads((tmp_path / "a" / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [h["dev_accuracy"] for h in ha] == [h["dev_accuracy"] for h in hb]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "nowhere"], "does not exist"),
        (["--data", str(CONSTRUCTS.parent)], "expected one *-ud-train.conllu"),
    ],
)
def test_bad_data_is_reported(tmp_path, args, message):
    proc = rnnkit("train", "tagger", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_tag_reports_a_malformed_file(tmp_path):
    rnnkit("train", "tagger", *TINY, "--epochs", "1", "--out", "run", cwd=tmp_path)
    bad = CONSTRUCTS.parent / "bad_order.conllu"
    proc = rnnkit("tag", "--checkpoint", "run", str(bad), cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert f"{bad}:2: word ID 3 out of order" in proc.stderr


def test_rare_word_dropout_probabilities():
    corpus = [["a", "a", "a", "b"], ["a", "c"]]
    vocab = WordVocab.build(corpus)
    counts = {"a": 4, "b": 1, "c": 1}
    probs = rare_word_dropout(vocab, counts, 0.25)
    assert probs[0] == 0.0  # <unk> is never replaced by itself
    assert probs[vocab.encode(["a"])[0]] == pytest.approx(0.25 / 4.25)
    assert probs[vocab.encode(["b"])[0]] == pytest.approx(0.2)


def test_case_sensitive_words_uniform_word_dropout_and_lr_decay(tmp_path):
    args = [*TINY, "--epochs", "2", "--no-lowercase", "--word-dropout", "0.2"]
    args += ["--word-dropout-alpha", "0", "--lr-decay", "0.5", "--decay-after", "1"]
    out = rnnkit("train", "tagger", *args, "--out", "r", cwd=tmp_path)
    assert "lowercase      False" in out.stdout
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    assert [h["lr"] for h in history] == [0.05, 0.025]
    ev = rnnkit("eval", "--checkpoint", "r", cwd=tmp_path).stdout
    assert "OOV words 5, accuracy" in ev  # Two, birds, sleep, tree, book
