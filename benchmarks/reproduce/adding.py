"""The adding problem for T in {50, 100, 200, 400} and the tanh RNN, LSTM and GRU.

    python benchmarks/reproduce/adding.py [--steps 3000] [--jobs 2] [--out benchmarks/results]

Every (T, cell) run gets the same budget: ``--steps`` optimizer steps of a batch of 32
fresh sequences (Adam, lr 0.01, clip 1, H = 32, LSTM forget bias 1), float32, the
defaults of ``rnnkit train adding``. A run stops early at its first evaluation with
test MSE < 0.01 (solved). Recorded per run, in ``adding.json``: test MSE every
``--eval-every`` steps, the step at which it was solved, and the gradient flow
‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖) for t = 1 … T on 100 test sequences, at initialisation and
at the end of training. ``adding.png`` shows the learning curves and both flows,
each divided by its value at t = T (where the loss is).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny matrices: threads only add overhead
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault(
    "RNNKIT_NUM_THREADS", "1"
)  # one kernel thread per run; --jobs runs in parallel

import numpy as np

from rnnkit.cli.adding import DEFAULTS, LR_BY_CELL, build_model, fit_adding
from rnnkit.data.adding import BASELINE_MSE, SOLVED_MSE, adding_problem
from rnnkit.diagnostics.gradient_flow import model_gradient_flow
from rnnkit.diagnostics.plots import new_figure, plot_curves, plot_gradient_flow, save_figure
from rnnkit.kernels import backend

CELLS = ["rnn", "lstm", "gru"]


def flow_record(model, cfg: dict) -> dict:
    """Gradient flow of the top layer on the first 100 test sequences, (GF-1)–(GF-2)."""
    test = adding_problem(100, cfg["length"], rng=cfg["test_seed"])
    loss, flow = model_gradient_flow(model, test.x, test.y)
    dh = flow.dh_norm[-1, 0]
    return {
        "loss": loss,
        "dh_norm": dh.tolist(),
        "dc_norm": None if flow.dc_norm is None else flow.dc_norm[-1, 0].tolist(),
        "ratio_first_last": float(dh[0] / dh[-1]),
    }


def run_one(job: tuple[int, str, dict]) -> dict:
    length, cell, overrides = job
    cfg = {**DEFAULTS, **overrides, "length": length, "cell": cell, "until_solved": True}
    cfg["lr"] = cfg["lr"] or LR_BY_CELL[cell]
    init = flow_record(build_model(cfg), cfg)
    t0 = time.perf_counter()
    result = fit_adding(cfg)
    wall = time.perf_counter() - t0
    final = flow_record(result.model, cfg)
    best = min(h["test_mse"] for h in result.history)
    status = f"solved at step {result.solved_step}" if result.solved_step else "not solved"
    print(f"  T={length:<4} {cell:<5} {status:<24} best test MSE {best:.4f}  "
          f"|dL/dh_1|/|dL/dh_T| init {init['ratio_first_last']:.2g} "
          f"final {final['ratio_first_last']:.2g}  {wall:6.1f} s", flush=True)  # fmt: skip
    return {
        "length": length, "cell": cell, "config": cfg, "solved_step": result.solved_step,
        "steps_run": result.steps, "best_test_mse": best, "history": result.history,
        "wall_s": round(wall, 1), "flow_init": init, "flow_final": final,
    }  # fmt: skip


def figure(runs: list[dict], lengths: list[int], path: Path) -> None:
    """Row 1: test MSE by step; rows 2-3: relative gradient flow after training and at init."""
    fig, axes = new_figure(3, len(lengths), size=(4.0 * len(lengths), 10.5))
    for j, length in enumerate(lengths):
        mine = [r for r in runs if r["length"] == length]
        curves = {r["cell"]: ([h["step"] for h in r["history"]],
                              [h["test_mse"] for h in r["history"]]) for r in mine}  # fmt: skip
        plot_curves(None, curves, xlabel="training step", ylabel="test MSE",
                    title=f"T = {length}", hline=SOLVED_MSE, ax=axes[0, j])  # fmt: skip
        axes[0, j].axhline(BASELINE_MSE, color="grey", linestyle="--", linewidth=0.8)
        for row, key, when in ((1, "flow_final", "after training"), (2, "flow_init", "at init")):
            flows = {(f"{r['cell']} ({r['steps_run']} steps)" if row == 1 else r["cell"]):
                     r[key]["dh_norm"] for r in mine}  # fmt: skip
            cells = {f"{r['cell']} ∂L/∂c_t": r[key]["dc_norm"] for r in mine
                     if r[key]["dc_norm"] is not None}  # fmt: skip
            plot_gradient_flow(None, flows, cell_curves=cells, relative=True, ax=axes[row, j],
                               title=f"gradient flow {when}, T = {length}")  # fmt: skip
    save_figure(fig, path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[50, 100, 200, 400])
    p.add_argument("--cells", nargs="+", default=CELLS, choices=CELLS)
    p.add_argument("--steps", type=int, default=3000, help="budget: optimizer steps per run")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--name", default="adding", help="file stem of the JSON and PNG")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = {"steps": args.steps, "eval_every": args.eval_every}
    # Each finished run is appended to a .partial.jsonl file; a rerun with the same budget
    # skips the runs found there (a crash or an interrupt loses at most the runs in flight).
    partial = out / f"{args.name}.partial.jsonl"
    done = {}
    if partial.is_file():
        for line in partial.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if r["config"]["steps"] == args.steps and r["config"]["eval_every"] == args.eval_every:
                done[(r["length"], r["cell"])] = r
    # Longest first, so that parallel jobs finish together.
    jobs = [(t, c, overrides) for t in sorted(args.lengths, reverse=True) for c in args.cells
            if (t, c) not in done]  # fmt: skip
    print(f"{len(jobs)} runs to do, {len(done)} found in {partial}", flush=True)
    t0 = time.perf_counter()
    runs = [done[(t, c)] for t in args.lengths for c in args.cells if (t, c) in done]

    def keep(r: dict) -> None:
        runs.append(r)
        with partial.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(r) + "\n")

    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            for fut in as_completed([pool.submit(run_one, j) for j in jobs]):
                keep(fut.result())
    else:
        for j in jobs:
            keep(run_one(j))
    runs.sort(key=lambda r: (r["length"], CELLS.index(r["cell"])))
    doc = {
        "benchmark": "adding", "command": " ".join(["python", *sys.argv]),
        "budget_steps": args.steps, "solved_mse": SOLVED_MSE, "baseline_mse": BASELINE_MSE,
        "wall_s": round(time.perf_counter() - t0, 1),
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "jobs": args.jobs, "float32_backend": backend(np.float32)._asdict()},
        "runs": runs,
    }  # fmt: skip
    (out / f"{args.name}.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    lengths = sorted(set(args.lengths))
    figure(runs, lengths, out / f"{args.name}.png")
    print()
    print("steps to solve (test MSE < 0.01) within", args.steps, "steps; '-' = not solved")
    print(f"{'T':>5}" + "".join(f"{c:>16}" for c in args.cells))
    for t in lengths:
        row = []
        for c in args.cells:
            r = next(r for r in runs if r["length"] == t and r["cell"] == c)
            row.append(
                str(r["solved_step"]) if r["solved_step"] else f"- ({r['best_test_mse']:.3f})"
            )
        print(f"{t:>5}" + "".join(f"{v:>16}" for v in row))
    print(
        f"wrote {out / (args.name + '.json')} and {out / (args.name + '.png')}; {doc['wall_s']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
