"""A/B of the two ways a thread team splits a kernel call: by rows against by units.

Both sides run in one process, on the same layer, shapes and threads, interleaved: the
split by rows is switched off by setting ``plan.ROW_SPLIT_MAX_BYTES`` to 0 for the
"units" side. Each timed call follows a short pause; the table shows the minimum over
the repeats of each round, and the ratio rows / units. Writes JSON to
``benchmarks/results/row_split_<tag>.json``.

    python benchmarks/row_split_ab.py --cells gru_reset_before --rounds 2 --tag session11
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rnnkit import kernels
from rnnkit.kernels import plan
from rnnkit.nn.recurrent import GRU, LSTM, RNN

SHAPES = [(32, 100, 64, 128), (64, 100, 128, 256), (64, 50, 512, 512), (16, 200, 256, 1024)]
CELLS = {
    "rnn": lambda i, h: RNN(i, h, rng=0),
    "lstm": lambda i, h: LSTM(i, h, rng=0),
    "gru": lambda i, h: GRU(i, h, rng=0),
    "gru_reset_before": lambda i, h: GRU(i, h, reset_after=False, rng=0),
}


def step(cell: str, shape: tuple[int, int, int, int], train: bool):
    """A callable running one training step (forward + BPTT) or one inference forward."""
    B, T, n_in, H = shape
    layer = CELLS[cell](n_in, H)
    if not train:
        layer.eval()
    x = np.random.default_rng(0).standard_normal((T, B, n_in), dtype=np.float32)
    dy = np.ones((T, B, H), np.float32)

    def run() -> None:
        if train:
            layer.zero_grad()
            layer(x)
            layer.backward(dy)
        else:
            layer(x)

    return run


def ab(run, reps: int, pause: float) -> dict[str, float]:
    """Min time (s) of ``run`` split by rows and by units, interleaved call by call."""
    default = plan.ROW_SPLIT_MAX_BYTES
    best = {"rows": float("inf"), "units": float("inf")}
    try:
        for side in best:  # warm up both paths
            plan.ROW_SPLIT_MAX_BYTES = default if side == "rows" else 0
            run()
        for _ in range(reps):
            for side in best:
                plan.ROW_SPLIT_MAX_BYTES = default if side == "rows" else 0
                time.sleep(pause)
                t = time.perf_counter()
                run()
                best[side] = min(best[side], time.perf_counter() - t)
    finally:
        plan.ROW_SPLIT_MAX_BYTES = default
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", nargs="+", choices=sorted(CELLS), default=["gru_reset_before"])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--pause", type=float, default=0.05, help="seconds before each timed call")
    ap.add_argument("--tag", default="latest")
    args = ap.parse_args()
    backend = kernels.backend()
    print(f"rnnkit kernels: {backend.reason}; step GEMM: {backend.step_gemm}")
    rows = []
    print("| cell | B, T, I, H | mode | round | rows ms | units ms | rows / units |")
    print("|---|---|---|---|---|---|---|")
    for cell in args.cells:
        for shape in SHAPES:
            for train in (True, False):
                run = step(cell, shape, train)
                for r in range(args.rounds):
                    t = ab(run, args.reps, args.pause)
                    mode = "train" if train else "infer"
                    ratio = t["rows"] / t["units"]
                    print(
                        f"| {cell} | {', '.join(map(str, shape))} | {mode} | {r + 1} | "
                        f"{1e3 * t['rows']:.2f} | {1e3 * t['units']:.2f} | {ratio:.2f} |",
                        flush=True,
                    )
                    rows.append(
                        {"cell": cell, "shape": shape, "mode": mode, "round": r + 1}
                        | {"rows_ms": 1e3 * t["rows"], "units_ms": 1e3 * t["units"]}
                    )
    out = Path(__file__).parent / "results" / f"row_split_{args.tag}.json"
    info = {"backend": backend.reason, "threads": backend.threads, "step": backend.step_gemm}
    out.write_text(json.dumps({"info": info, "args": vars(args), "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
