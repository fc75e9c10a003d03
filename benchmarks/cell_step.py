"""A decoder's cell, step by step: rnnkit's cells against PyTorch's, same process.

An attention decoder (``rnnkit.nn.AttentionDecoder``, Bahdanau style) calls its cell once
per target step, forward, then once per step backward, newest first: a kernel call with
T = 1 each time, so whatever a call costs besides its products is paid every step. This
times ``--steps`` such steps forward from a zero state and back (the loss is the sum of
the last state), weight gradients accumulated, on both sides:
``rnnkit.nn.LSTMCell``/``GRUCell`` against ``torch.nn.LSTMCell``/``GRUCell``, on the same
inputs, shapes and threads, interleaved, each timed call after a short pause
(``speed.interleaved_min``). The default shapes (B, I, H) are those of the G2P decoders
of ``benchmarks/reproduce/README-issue4.md``: input = target embedding 64 + context
(2 × the encoder's width). Prints a table and writes JSON with the environment.

    python benchmarks/cell_step.py [--cells lstm gru] [--shapes 64,576,512 64,320,256]
        [--steps 10] [--reps 20] [--tag NAME]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from speed import environment, interleaved_min

from rnnkit.kernels import backend
from rnnkit.nn.cells import GRUCell, LSTMCell

SHAPES = ["64,576,512", "64,320,256", "128,1088,512"]
OURS = {"lstm": LSTMCell, "gru": GRUCell}
THEIRS = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}


def step_functions(cell: str, B: int, n_in: int, H: int, steps: int) -> tuple:
    """(rnnkit, torch) callables: ``steps`` cell steps forward, then back, weights included."""
    xs = np.random.default_rng(0).standard_normal((steps, B, n_in), dtype=np.float32)
    ours = OURS[cell](n_in, H, rng=0)
    theirs = THEIRS[cell](n_in, H)
    txs = torch.from_numpy(xs)
    lstm = cell == "lstm"

    def rnnkit_step() -> None:
        ours.zero_grad()
        state = None
        for t in range(steps):
            state = ours(xs[t], state)
        dh = np.ones((B, H), np.float32)
        grad = (dh, None) if lstm else dh
        for _ in range(steps):
            _, grad = ours.backward(grad)

    def torch_step() -> None:
        theirs.zero_grad(set_to_none=True)
        state = None
        for t in range(steps):
            state = theirs(txs[t], state)
        (state[0] if lstm else state).sum().backward()

    return rnnkit_step, torch_step


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=sorted(OURS))
    ap.add_argument("--shapes", nargs="+", default=SHAPES, help="B,I,H")
    ap.add_argument("--steps", type=int, default=10, help="decoder steps per call")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--pause", type=float, default=0.05, help="seconds before each timed call")
    ap.add_argument("--tag", default="", help="results file: cell_step[_TAG].json")
    args = ap.parse_args()
    info = backend()
    torch.set_num_threads(info.threads)
    print(f"backend: {info}")
    print(f"{'cell':<5} {'B, I, H':>14} {'rnnkit ms':>10} {'torch ms':>9} {'ratio':>6}  per step")
    rows = []
    for cell in args.cells:
        for shape in args.shapes:
            B, n_in, H = (int(v) for v in shape.split(","))
            fns = step_functions(cell, B, n_in, H, args.steps)
            ours_s, theirs_s = interleaved_min(fns, args.reps, warmup=3, pause=args.pause)
            row = {
                "cell": cell,
                "B": B,
                "I": n_in,
                "H": H,
                "steps": args.steps,
                "rnnkit_ms_per_step": 1e3 * ours_s / args.steps,
                "torch_ms_per_step": 1e3 * theirs_s / args.steps,
            }
            row["ratio"] = row["rnnkit_ms_per_step"] / row["torch_ms_per_step"]
            rows.append(row)
            print(
                f"{cell:<5} {f'{B}, {n_in}, {H}':>14} {row['rnnkit_ms_per_step']:>10.2f} "
                f"{row['torch_ms_per_step']:>9.2f} {row['ratio']:>6.2f}"
            )
    name = "cell_step" + (f"_{args.tag}" if args.tag else "")
    out = Path(__file__).parent / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"environment": environment(), "reps": args.reps, "rows": rows}
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
