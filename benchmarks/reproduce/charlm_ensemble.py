"""Validation loss of charlm runs, each alone and averaged as an ensemble (ENS-1).

    python benchmarks/reproduce/charlm_ensemble.py --run DIR --run DIR [--run DIR ...]
        [--streams 1] [--name charlm_ensemble]

Every run is scored on the validation split it was trained with (they must share it), as
``--streams`` parallel streams whose state carries (1: every character is predicted
from all of the validation text before it; ``rnnkit train`` reports its own figure with
the run's batch size). The ensemble's probability of a character is the mean of the
runs' probabilities. Prints a table; writes ``benchmarks/results/<name>.json`` with each
run's configuration, its step count and the losses.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

from rnnkit.cli.charlm import load_runs, validation_ids
from rnnkit.train import evaluate_lm

RESULTS = Path(__file__).resolve().parent.parent / "results"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", action="append", required=True, help="a run directory (repeat)")
    ap.add_argument("--streams", type=int, default=1, help="parallel streams (default 1)")
    ap.add_argument("--name", default="charlm_ensemble", help="results/<name>.json")
    args = ap.parse_args()
    if args.streams < 1:
        ap.error("--streams must be >= 1")
    models, vocab, metas = load_runs(args.run)
    cfg = metas[0]["config"]
    ids = validation_ids(cfg, vocab)
    window = 256 if cfg["bptt"] == "full" else cfg["bptt"][0]
    rows = []
    for path, model, meta in zip(args.run, models, metas, strict=True):
        run_cfg = meta["config"]
        t0 = time.perf_counter()
        loss = evaluate_lm(model, ids, args.streams, window)
        rows.append(
            {
                "run": path,
                "config": {k: run_cfg[k] for k in ("cell", "hidden", "layers", "epochs")}
                | {
                    "dropout": run_cfg["dropout"],
                    "weight_drop": run_cfg.get("weight_drop", 0.0),
                    "seed": run_cfg["seed"],
                },
                "steps": meta["trainer"]["step"],
                "valid_nats_per_char": round(loss, 5),
                "eval_s": round(time.perf_counter() - t0, 1),
            }
        )
        print(f"{path:40s} {loss:.4f} nats/char", flush=True)
    t0 = time.perf_counter()
    ens = evaluate_lm(models, ids, args.streams, window) if len(models) > 1 else None
    if ens is not None:
        print(f"{'ensemble of ' + str(len(models)):40s} {ens:.4f} nats/char")
    out = {
        "benchmark": "charlm validation loss, runs alone and as an ensemble (mean probability)",
        "command": "python benchmarks/reproduce/charlm_ensemble.py "
        + " ".join(f"--run {r}" for r in args.run)
        + f" --streams {args.streams} --name {args.name}",
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.processor() or platform.machine(),
        "streams": args.streams,
        "valid_chars": len(ids),
        "runs": rows,
        "ensemble_nats_per_char": None if ens is None else round(ens, 5),
        "ensemble_bits_per_char": None if ens is None else round(ens / math.log(2), 5),
        "ensemble_eval_s": round(time.perf_counter() - t0, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
