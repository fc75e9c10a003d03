"""What a call costs warm and after a pause: single operations and a small LSTM step.

``benchmarks/speed.py`` pauses before every timed call (so that neither side's idle threads
spin against the other's), and after such a pause the code of every distinct operation a
call makes runs from cold caches. For a small call, such as an LSTM training step at
B = 1, that cost decides the time. This script measures it: each callable is timed back to
back ("warm") and with ``--pause`` seconds before every call ("after a pause"); min and
median over ``--reps`` calls, in µs. The last rows are rnnkit's LSTM training step
(zero_grad, forward, backward) on (T, B, I, H) = (100, 1, 32, 64), on the kernels and
forced onto the reference ops.

    python benchmarks/cold_calls.py [--reps 40] [--pause 0.1]

Writes ``results/cold_calls.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def timings(f: Callable[[], object], reps: int, pause: float) -> tuple[float, float]:
    """(min, median) in µs of ``reps`` calls of ``f``, each ``pause`` s after the last."""
    for _ in range(3):
        f()
    ts = []
    for _ in range(reps):
        if pause:
            time.sleep(pause)
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[0] * 1e6, ts[len(ts) // 2] * 1e6


def cases() -> dict[str, Callable[[], object]]:
    """The timed callables."""
    from rnnkit.kernels import blas
    from rnnkit.nn.recurrent import LSTM

    lib = blas.library()
    x = np.ones((100, 32), np.float32)
    m = LSTM(32, 64)
    xs = np.random.default_rng(0).standard_normal((100, 1, 32), dtype=np.float32)
    dy = np.ones((100, 1, 64), np.float32)

    def lstm_step() -> None:
        m.zero_grad()
        m(xs)
        m.backward(dy)

    threads = lib.get_threads()
    return {
        "nothing": lambda: None,
        "np.zeros((1, 64))": lambda: np.zeros((1, 64), np.float32),
        "np.full(1, 100)": lambda: np.full(1, 100, dtype=np.int64),
        "np.isfinite(x).all(), x (100, 32)": lambda: np.isfinite(x).all(),
        "x.copy()": x.copy,
        "OpenBLAS threads get (ctypes)": lib.get_threads,
        "OpenBLAS threads set 1, set back (ctypes)": lambda: (
            lib.set_threads(1),
            lib.set_threads(threads),
        ),
        "LSTM step (100, 1, 32, 64), kernels": lstm_step,
    }


def main() -> int:
    """Time every case warm and after a pause; print a table and write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=40, help="timed calls per case and mode")
    ap.add_argument("--pause", type=float, default=0.1, help="seconds before each cold call")
    args = ap.parse_args()
    rows = []
    print(f"{'case':44s} {'warm min':>9s} {'med':>7s} {'paused min':>11s} {'med':>7s}  (µs)")
    for name, f in cases().items():
        w_min, w_med = timings(f, args.reps, 0.0)
        c_min, c_med = timings(f, args.reps, args.pause)
        print(f"{name:44s} {w_min:9.1f} {w_med:7.1f} {c_min:11.1f} {c_med:7.1f}")
        rows.append({"case": name, "warm_us": [w_min, w_med], "paused_us": [c_min, c_med]})
    out = {
        "reps": args.reps,
        "pause_s": args.pause,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "RNNKIT_NUM_THREADS")},
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "cold_calls.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
