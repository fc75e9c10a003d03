"""UPOS tagging on UD English EWT with the word + character biLSTM, against published figures.

    python benchmarks/reproduce/pos.py --data DIR [--epochs N] [--out runs/tagger-ewt]
        [--name tagger_ewt] [-- extra flags of rnnkit train tagger]

Runs ``rnnkit train tagger`` in this process (same code path as the command) with its
defaults, then prints the dev UPOS accuracy per epoch, overall and on OOV words (forms not
in the training data), with seconds per epoch, next to Plank, Søgaard & Goldberg (2016):
94.6% for word + char biLSTM on UD 1.3 English, and the most-frequent-tag baseline on this
dev set (computed here: each training word's most frequent tag, NOUN for unseen words).
Writes ``benchmarks/results/<name>.json``. Only train and dev are read.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from rnnkit.cli import main as rnnkit_main
from rnnkit.cli.tagger_decode import split_file
from rnnkit.data.conllu import read_conllu

PUBLISHED = {"plank_2016_word_char_ud13_en": 94.6, "issue_most_frequent_tag_dev": 86.1}


def most_frequent_tag_baseline(directory: str) -> dict:
    """Dev accuracy of tagging each word with its most frequent training tag (unseen: NOUN)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for s in read_conllu(split_file(directory, "train")):
        for f, u in zip(s.forms(), s.upos(), strict=True):
            counts[f][u] += 1
    right = total = oov_right = oov_total = 0
    for s in read_conllu(split_file(directory, "dev")):
        for f, u in zip(s.forms(), s.upos(), strict=True):
            guess = counts[f].most_common(1)[0][0] if f in counts else "NOUN"
            total, right = total + 1, right + (guess == u)
            if f not in counts:
                oov_total, oov_right = oov_total + 1, oov_right + (guess == u)
    return {
        "accuracy": 100.0 * right / total,
        "oov_accuracy": 100.0 * oov_right / max(oov_total, 1),
        "oov_tokens": oov_total,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="UD treebank folder (train and dev)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--out", default="runs/tagger-ewt")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--results", default="benchmarks/results")
    p.add_argument("--name", default="tagger_ewt")
    args, extra = p.parse_known_args()
    extra = [a for a in extra if a != "--"]
    out = Path(args.out)
    argv = ["train", "tagger", "--data", args.data, "--out", str(out), *extra]
    if args.resume:
        argv.append("--resume")
    if args.epochs:
        argv += ["--epochs", str(args.epochs)]
    t0 = time.perf_counter()
    rc = rnnkit_main(argv)
    wall = time.perf_counter() - t0
    if rc not in (0, 130):
        return rc
    meta = json.loads((out / "checkpoint" / "checkpoint.json").read_text())["meta"]
    history = meta["progress"]["history"]
    baseline = most_frequent_tag_baseline(args.data)
    print()
    print(f"{'epoch':>5} {'train loss':>10} {'dev UPOS':>9} {'dev OOV':>8} {'s':>7}")
    for h in history:
        print(f"{h['epoch']:>5} {h['train_loss']:>10.4f} {h['dev_accuracy']:>8.2f}% "
              f"{h['dev_oov_accuracy']:>7.2f}% {h['seconds']:>7.1f}")  # fmt: skip
    best = max(history, key=lambda h: h["dev_accuracy"]) if history else None
    total = sum(h["seconds"] for h in history)
    doc = {
        "benchmark": "tagger_ewt",
        "command": " ".join(["python", *sys.argv]),
        "config": meta["config"],
        "published": PUBLISHED,
        "most_frequent_tag_baseline_dev": baseline,
        "epochs": history,
        "best_epoch": best,
        "total_seconds": round(total, 1),
        "this_call": {"wall_s": round(wall, 1)},
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average": os.getloadavg()},
    }  # fmt: skip
    if best:
        print(
            f"best dev UPOS {best['dev_accuracy']:.2f}% (epoch {best['epoch']}), OOV "
            f"{best['dev_oov_accuracy']:.2f}% on {best['dev_oov_tokens']} words; target 95.0%"
        )
    print(
        f"most-frequent-tag baseline (computed): {baseline['accuracy']:.2f}% "
        f"(OOV {baseline['oov_accuracy']:.2f}%); Plank et al. 2016 word+char, UD 1.3 en: "
        f"{PUBLISHED['plank_2016_word_char_ud13_en']}%"
    )
    print(f"time: {total:.0f} s for {len(history)} epochs (this call {wall:.0f} s)")
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{args.name}.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {results / (args.name + '.json')}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
