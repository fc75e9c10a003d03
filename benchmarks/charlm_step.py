"""One training step of the character language model, rnnkit against PyTorch, same process.

Embedding(65, 64) -> 2-layer LSTM(H) -> Linear(H, 65) -> cross-entropy, batch 64 x 100
steps (``--batch-size``, ``--bptt``), dropout ``--dropout`` (on the embeddings, between
the layers and before the output map, on both sides), Adam, global-norm clip 5, the same
threads on both sides. Prints a table (min and median of the timed steps after warm-up,
interleaved) and writes JSON. ``rnnkit train``'s default step is
``--hidden 384 --batch-size 128 --bptt 50 --dropout 0.2``.

    python benchmarks/charlm_step.py [--hidden 256 512] [--batch-size 64] [--bptt 100]
        [--dropout 0] [--reps 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit.data import StreamBatcher
from rnnkit.kernels import backend
from rnnkit.models import LanguageModel
from rnnkit.optim import Adam
from rnnkit.train import Trainer

V, E = 65, 64


def ours(hidden: int, B: int, T: int, dropout: float):
    ids = np.random.default_rng(0).integers(0, V, size=B * T * 20)
    m = LanguageModel(V, E, hidden, 2, dropout=dropout, rng=0)
    tr = Trainer(m, Adam(m.parameters(), lr=2e-3), StreamBatcher(ids, B, T))
    windows = iter(tr.batcher)

    def step():
        w = next(windows)
        tr.train_window(w.x, w.y, w.reset)

    return step


def theirs(hidden: int, B: int, T: int, dropout: float):
    emb, lstm, dec = (
        torch.nn.Embedding(V, E),
        torch.nn.LSTM(E, hidden, 2, dropout=dropout),
        torch.nn.Linear(hidden, V),
    )
    drop = torch.nn.Dropout(dropout)
    params = [*emb.parameters(), *lstm.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(params, lr=2e-3)
    x, y = torch.randint(0, V, (T, B)), torch.randint(0, V, (T, B))

    def step():
        opt.zero_grad()
        out, _ = lstm(drop(emb(x)))
        loss = torch.nn.functional.cross_entropy(dec(drop(out)).reshape(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()

    return step


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 512])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--bptt", type=int, default=100)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--out", default="benchmarks/results/charlm_step.json")
    args = p.parse_args()
    info = backend()
    torch.set_num_threads(info.threads)
    rows = []
    print(f"backend: {info}")
    print(f"{'H':>5} {'rnnkit ms':>10} {'torch ms':>10} {'ratio':>6}  (min of {args.reps})")
    for h in args.hidden:
        B, T, d = args.batch_size, args.bptt, args.dropout
        a, b = ours(h, B, T, d), theirs(h, B, T, d)
        for f in (a, b, a, b):  # warm-up, compile
            f()
        ta, tb = [], []
        for _ in range(args.reps):  # interleaved
            for f, acc in ((a, ta), (b, tb)):
                t = time.perf_counter()
                f()
                acc.append(time.perf_counter() - t)
        row = {
            "hidden": h,
            "batch": B,
            "bptt": T,
            "dropout": d,
            "layers": 2,
            "rnnkit_ms_min": 1e3 * min(ta),
            "torch_ms_min": 1e3 * min(tb),
            "rnnkit_ms_median": 1e3 * float(np.median(ta)),
            "torch_ms_median": 1e3 * float(np.median(tb)),
        }
        row["ratio"] = row["rnnkit_ms_min"] / row["torch_ms_min"]
        rows.append(row)
        ours_ms, torch_ms = row["rnnkit_ms_min"], row["torch_ms_min"]
        print(f"{h:>5} {ours_ms:>10.0f} {torch_ms:>10.0f} {row['ratio']:>6.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"backend": str(info), "threads": info.threads, "rows": rows}, indent=1)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
