"""CMUdict grapheme-to-phoneme with the attention encoder-decoder: WER and PER, greedy and beam.

    # train (or reuse) a run, then score it:
    python benchmarks/reproduce/g2p.py --run runs/g2p [--train] [--test] [--out benchmarks/results]
        [--train-args "--epochs 30 --max-minutes 85"] [--beam 5] [--alphas 0,1] [--name g2p]
    # score an ensemble of trained runs (ENS-1), each run's best/ checkpoint:
    python benchmarks/reproduce/g2p.py --run runs/a --run runs/b [--test] --name g2p_ensemble
    # ... and rescore its beam with runs trained with --target-order reversed (RESCORE-1):
    python benchmarks/reproduce/g2p.py --run runs/a --rescore runs/r [--weights 0.3,0.5,0.7]

``--train`` first runs ``rnnkit train g2p --out RUN`` with the defaults of the task (the
configuration reported in ``README-issue4.md``) plus ``--train-args``, timing it. Then
the run's ``best/`` checkpoint (chosen by WER on a 974-word dev subset, greedy) is scored
on the whole dev split, greedy and with a beam of width ``--beam`` for each length
penalty α of ``--alphas`` (BEAM-2); with ``--test`` also on the test split, once, greedy
and with the beam and the α that did best on dev. For each beam setting it also counts
the dev words where the beam found an output the model scores higher than greedy's, and
how many of those turned right or wrong (search errors versus model errors). Everything
is printed as a table and written to ``NAME.json`` (with the runs' metrics and wall time).
With several ``--run``, the runs' best checkpoints decode together as an ensemble
(:class:`rnnkit.models.Seq2SeqEnsemble`: the mean of their distributions, ENS-1).
With ``--rescore``, the beam's n-best lists (width ``--beam``, the α chosen on dev) are
rescored by those runs for each λ of ``--weights`` (RESCORE-1, :mod:`rnnkit.models.rescoring`);
the table adds the n-best oracle (a word counts as right if any hypothesis of its list
is). ``--union`` also tries the union of both sides' n-best lists (``rescore(...,
union=True)``); ``--test`` scores the way and λ that did best on dev, once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # threads fight over shared cores

import numpy as np

from rnnkit.cli.g2p_decode import by_length, load_g2p_models, predict, target_order
from rnnkit.data.cmudict import (
    G2PVocab,
    edit_distance,
    load_cmudict,
    score_g2p,
    split_dictionary,
)
from rnnkit.models.rescoring import (
    choose,
    reverse_hypothesis,
    reversed_log_probs,
    with_other_n_best,
)

VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


def decode(model, vocab, words, beam, alpha, order="forward"):
    """Hypotheses for ``words``: greedy for beam 1, else beam search with length penalty alpha.

    In reading order (``order``: the runs' target order)."""
    if beam == 1:
        return predict(model, vocab, words, 1, order=order)
    hyps = by_length(
        vocab, words, lambda b: model.beam_search(b.src, b.src_lengths, beam, length_penalty=alpha)
    )
    return hyps if order == "forward" else [reverse_hypothesis(h) for h in hyps]


def n_best_split(model, rescorer, vocab, entries, beam, alpha, union):
    """Every word's n-best list from ``model`` and the rescorer's (RESCORE-1) log-probs.

    With ``union`` each list goes on with the rescorer's own n-best (``with_other_n_best``);
    also returns how many of each list are ``model``'s own (they come first)."""
    t = time.perf_counter()

    def run(b):
        pools = model.n_best(b.src, b.src_lengths, beam, length_penalty=alpha)
        own = [len(p) for p in pools]
        if union:
            pools = with_other_n_best(model, rescorer, b.src, b.src_lengths, pools, beam, alpha)
        back = reversed_log_probs(rescorer, b.src, b.src_lengths, pools)
        return list(zip(pools, back, own, strict=True))

    found = by_length(vocab, [w for w, _ in entries], run)
    pools, back, own = ([x[i] for x in found] for i in range(3))
    return pools, back, own, time.perf_counter() - t


def candidates(found, use_union):
    """The pools and reversed scores of one way of rescoring: own n-best only, or the union."""
    pools, back, own, _ = found
    if use_union:
        return pools, back
    return [p[:n] for p, n in zip(pools, own, strict=True)], [
        x[:n] for x, n in zip(back, own, strict=True)
    ]


def score_rescored(vocab, entries, pools, back, weight, alpha, order, seconds):
    return score_hyps(vocab, entries, choose(pools, back, weight, alpha), seconds, order)[0]


def n_best_oracle(vocab, entries, pools, order):
    """WER if a word counted as right whenever any hypothesis of its n-best list is."""
    wrong = 0
    for (_, prons), pool in zip(entries, pools, strict=True):
        refs = {tuple(p) for p in prons}
        toks = [h.tokens if order == "forward" else h.tokens[::-1] for h in pool]
        wrong += not any(tuple(vocab.decode_pron(t)) in refs for t in toks)
    return wrong / len(entries)


def score_hyps(vocab, entries, hyps, seconds, order="forward"):
    if order != "forward":
        hyps = [reverse_hypothesis(h) for h in hyps]
    preds = [vocab.decode_pron(h.tokens) for h in hyps]
    wer, per = score_g2p(preds, [p for _, p in entries])
    return {"wer": wer, "per": per, "words": len(entries), "seconds": seconds}, hyps, preds


def beam_and_pools(model, rescorer, vocab, entries, width, alpha, order, union=False):
    """Beam results (and, with a rescorer, what :func:`n_best_split` returns).

    With a rescorer the beam runs once: its result is each n-best list's first."""
    if rescorer is None:
        return *score_split(model, vocab, entries, width, alpha, order), None
    found = n_best_split(model, rescorer, vocab, entries, width, alpha, union)
    r, hyps, preds = score_hyps(vocab, entries, [p[0] for p in found[0]], found[-1], order)
    return r, hyps, preds, found


def score_split(model, vocab, entries, beam, alpha=1.0, order="forward"):
    t = time.perf_counter()
    hyps = decode(model, vocab, [w for w, _ in entries], beam, alpha, order)  # reading order
    return score_hyps(vocab, entries, hyps, time.perf_counter() - t)


def search_errors(entries, greedy, beam, vocab, alpha):
    """Where beam search found an output scoring higher than greedy's by (BEAM-2) with this α."""

    def score(h):
        return h.log_prob / max(len(h.tokens) + h.ended, 1) ** alpha

    right = [{tuple(p) for p in prons} for _, prons in entries]
    better = fixed = broken = 0
    for g, b, refs in zip(greedy, beam, right, strict=True):
        if b.tokens != g.tokens and score(b) > score(g):
            better += 1
            g_ok = tuple(vocab.decode_pron(g.tokens)) in refs
            b_ok = tuple(vocab.decode_pron(b.tokens)) in refs
            fixed += b_ok and not g_ok
            broken += g_ok and not b_ok
    return {"beam_more_probable": better, "fixed": fixed, "broken": broken}


def error_profile(entries, preds, top: int = 10) -> dict:
    """What the wrong words got wrong: edits to the closest pronunciation, and which swaps.

    ``distance``: wrong words by their edit distance to the closest pronunciation (1, 2,
    3+). ``one_substitution``: wrong words one swapped phoneme away from a pronunciation of
    the same length, how many of those swaps are vowel for vowel, and the most common.
    """
    by_distance = {"1": 0, "2": 0, "3+": 0}
    swaps: dict[str, int] = {}
    vowel_swaps = 0
    for (_, prons), pred in zip(entries, preds, strict=True):
        pred = tuple(pred)
        dists = [edit_distance(pred, tuple(p)) for p in prons]
        d = min(dists)
        if d == 0:
            continue
        by_distance[str(d) if d < 3 else "3+"] += 1
        ref = tuple(prons[dists.index(d)])
        if d == 1 and len(ref) == len(pred):
            j = next(i for i, (a, b) in enumerate(zip(pred, ref, strict=True)) if a != b)
            key = f"{ref[j]}->{pred[j]}"
            swaps[key] = swaps.get(key, 0) + 1
            vowel_swaps += ref[j] in VOWELS and pred[j] in VOWELS
    common = sorted(swaps.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    n_swaps = sum(swaps.values())
    return {
        "wrong_words": sum(by_distance.values()),
        "distance": by_distance,
        "one_substitution": {"words": n_swaps, "vowel_for_vowel": vowel_swaps, "top": common},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", help="run directory (repeat: an ensemble)")
    ap.add_argument("--train", action="store_true", help="train the run first")
    ap.add_argument("--train-args", default="", help="extra flags for rnnkit train g2p")
    ap.add_argument("--test", action="store_true", help="also score the test split (once)")
    ap.add_argument("--beam", default=5, type=int, help="beam width compared with greedy")
    ap.add_argument("--alphas", default="0,1", help="length penalties tried on dev")
    ap.add_argument("--rescore", action="append", help="run of the other target order (repeat)")
    ap.add_argument("--weights", default="0.3,0.5,0.7", help="λ of (RESCORE-1) tried on dev")
    ap.add_argument("--union", action="store_true", help="also try the union of both n-bests")
    ap.add_argument("--out", default="benchmarks/results", help="folder for NAME.json")
    ap.add_argument("--name", default="g2p", help="results file name, without .json")
    args = ap.parse_args()
    runs = [Path(r) for r in args.run or ["runs/g2p"]]
    if args.train and len(runs) > 1:
        ap.error("--train trains one run; train the members of an ensemble one at a time")
    run = runs[0]
    record: dict = {"python": platform.python_version(), "numpy": np.__version__}
    if args.train:
        cmd = [sys.executable, "-m", "rnnkit", "train", "g2p", "--out", str(run)]
        cmd += shlex.split(args.train_args)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        record["train_wall_s"] = time.perf_counter() - t0
    model, metas, what = load_g2p_models([str(r) for r in runs])
    meta = metas[0]
    record["checkpoint"] = what
    members = []
    for r, m in zip(runs, metas, strict=True):
        member = {"run": str(r), "config": m["config"], "progress": m["progress"]}
        metrics = r / "metrics.jsonl"
        if metrics.is_file():
            member["metrics"] = [json.loads(line) for line in metrics.read_text().splitlines()]
        members.append(member)
    if len(members) == 1:
        record.update({k: v for k, v in members[0].items() if k != "run"})
    else:
        record["members"] = members
    order = target_order(meta["config"])
    rescorer = None
    if args.rescore:
        rescorer, other_metas, other_what = load_g2p_models(args.rescore)
        if target_order(other_metas[0]["config"]) == order:
            ap.error(f"--rescore needs runs whose target order is not {order!r}")
        record["rescorer"] = other_what
        record["rescorer_members"] = [
            {"run": r, "config": m["config"], "progress": m["progress"]}
            for r, m in zip(args.rescore, other_metas, strict=True)
        ]
    vocab = G2PVocab()
    entries, _ = load_cmudict(meta["config"]["data"])
    splits = split_dictionary(entries)
    width = int(args.beam)
    alphas = [float(a) for a in args.alphas.split(",")]
    rows = []
    dev = splits["dev"]
    r, greedy, preds = score_split(model, vocab, dev, 1, order=order)
    record["dev_greedy"] = r
    record["dev_greedy_errors"] = error_profile(dev, preds)
    rows.append(("dev", "greedy", r))
    best_alpha, best_wer = None, None
    n_best = {}
    for alpha in alphas:
        r, beam, _, n_best[alpha] = beam_and_pools(
            model, rescorer, vocab, dev, width, alpha, order, args.union
        )
        r["search"] = search_errors(dev, greedy, beam, vocab, alpha)
        record[f"dev_beam{width}_alpha{alpha:g}"] = r
        rows.append(("dev", f"beam {width} α={alpha:g}", r))
        if best_wer is None or r["wer"] < best_wer:
            best_alpha, best_wer = alpha, r["wer"]
    record["alpha_chosen_on_dev"] = best_alpha
    if rescorer is not None:
        found, sec = n_best[best_alpha], n_best[best_alpha][-1]
        best_way, best_wer = None, None
        for way in ("rescored", "union") if args.union else ("rescored",):
            pools, back = candidates(found, way == "union")
            record[f"dev_{way}_n_best_oracle_wer"] = n_best_oracle(vocab, dev, pools, order)
            for weight in [float(w) for w in args.weights.split(",")]:
                r = score_rescored(vocab, dev, pools, back, weight, best_alpha, order, sec)
                record[f"dev_{way}_lambda{weight:g}"] = r
                rows.append(("dev", f"{way} λ={weight:g}", r))
                if best_wer is None or r["wer"] < best_wer:
                    best_way, best_weight, best_wer = way, weight, r["wer"]
        record["rescoring_chosen_on_dev"] = {"way": best_way, "lambda": best_weight}
    if args.test:
        test = splits["test"]
        r, _, _ = score_split(model, vocab, test, 1, order=order)
        record["test_greedy"] = r
        rows.append(("test", "greedy", r))
        r, _, _, found = beam_and_pools(
            model, rescorer, vocab, test, width, best_alpha, order, args.union
        )
        record[f"test_beam{width}"] = r
        rows.append(("test", f"beam {width} α={best_alpha:g}", r))
        if found is not None:
            pools, back = candidates(found, best_way == "union")
            r = score_rescored(vocab, test, pools, back, best_weight, best_alpha, order, found[-1])
            record[f"test_{best_way}"] = r
            rows.append(("test", f"{best_way} λ={best_weight:g}", r))
    minutes = ", ".join(f"{m['progress']['wall_s'] / 60:.1f}" for m in members)
    print(f"checkpoint {what}; minutes of training: {minutes}")
    if rescorer is not None:
        oracles = "; ".join(f"{k[4:-18]} {100 * v:.2f} %" for k, v in record.items()
                            if k.endswith("_n_best_oracle_wer"))  # fmt: skip
        print(f"rescored by {record['rescorer']}; dev n-best oracle WER: {oracles}")
    print(f"{'split':<6} {'decoding':<14} {'words':>6} {'WER %':>7} {'PER %':>7} {'time s':>7}")
    for split, name, r in rows:
        print(
            f"{split:<6} {name:<14} {r['words']:>6} {100 * r['wer']:>7.2f} "
            f"{100 * r['per']:>7.2f} {r['seconds']:>7.1f}"
        )
    for key, r in record.items():
        if isinstance(r, dict) and "search" in r:
            s = r["search"]
            print(
                f"{key}: beam found a more probable output than greedy for "
                f"{s['beam_more_probable']} words; {s['fixed']} became right, "
                f"{s['broken']} became wrong"
            )
    e = record["dev_greedy_errors"]
    sub = e["one_substitution"]
    print(
        f"dev greedy: {e['wrong_words']} wrong words; edit distance 1 / 2 / 3+: "
        f"{e['distance']['1']} / {e['distance']['2']} / {e['distance']['3+']}; one phoneme "
        f"swapped: {sub['words']} ({sub['vowel_for_vowel']} vowel for vowel); most common: "
        + ", ".join(f"{k} {n}" for k, n in sub["top"][:5])
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
