"""Penn Treebank word LM with Zaremba et al.'s presets, against the published table.

    python benchmarks/reproduce/ptb.py --data DIR [--preset small|medium] [--epochs N]
        [--steps N] [--out runs/ptb-small] [--resume] [--name ptb_small]

Runs ``rnnkit train ptb`` in this process (same code path as the command), then reads the
run's ``epochs.json`` and prints, per epoch: learning rate, train and valid perplexity,
seconds and words per second, next to Zaremba, Sutskever & Vinyals (2014) and the measured
PyTorch 2.13 CPU time for the small preset (101 s per epoch, about 22 minutes for 13 epochs
on this machine, issue 6). Writes ``benchmarks/results/<name>.json``. With ``--steps`` (a
short timing run that ends inside an epoch) it reports seconds per window and the
extrapolated epoch time instead. Tune only on valid: the test split is never read here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from rnnkit.cli import main as rnnkit_main
from rnnkit.cli.ptb import PRESETS
from rnnkit.data.ptb import load_ptb

PYTORCH_SMALL = {"seconds_per_epoch": 101.0, "words_per_s": 9200.0, "total_minutes": 22.0}


def torch_timing(ids: np.ndarray, preset: dict, windows: int) -> dict:
    """Seconds per window of the same model and update in PyTorch (CPU), on the same data.

    Embedding → 2-layer LSTM → Linear, uniform init, SGD with the paper's loss (summed over
    the steps, mean over the batch) and clipping, hidden state carried and detached per
    window; timed after 3 warm-up windows, in this process, under the same machine load.
    """
    import torch  # benchmarks only: rnnkit itself never imports torch

    torch.manual_seed(0)
    B, k, H, V = preset["batch_size"], preset["bptt"], preset["hidden"], int(ids.max()) + 1
    emb, lstm = torch.nn.Embedding(V, H), torch.nn.LSTM(H, H, preset["layers"])
    dec = torch.nn.Linear(H, V)
    params = [*emb.parameters(), *lstm.parameters(), *dec.parameters()]
    for p in params:
        torch.nn.init.uniform_(p, -preset["init_range"], preset["init_range"])
    opt = torch.optim.SGD(params, lr=preset["lr"])
    L = len(ids) // B
    data = torch.from_numpy(ids[: B * L].reshape(B, L).T.copy())
    state = None
    t0 = 0.0
    for j in range(windows + 3):
        if j == 3:
            t0 = time.perf_counter()
        x, y = data[j * k : (j + 1) * k], data[j * k + 1 : (j + 1) * k + 1]
        h, state = lstm(emb(x), state)
        state = tuple(s.detach() for s in state)
        loss = torch.nn.functional.cross_entropy(dec(h).reshape(-1, V), y.reshape(-1)) * k
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, preset["clip"])
        opt.step()
    per = (time.perf_counter() - t0) / windows
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "windows": windows, "seconds_per_window": round(per, 4)}  # fmt: skip


def load(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder with ptb.train.txt and ptb.valid.txt")
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--epochs", type=int, help="override the preset's epoch count")
    p.add_argument("--steps", type=int, help="stop after N windows (a timing run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run directory (default runs/ptb-PRESET)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--results", default="benchmarks/results")
    p.add_argument("--name", help="JSON file stem (default ptb_PRESET)")
    p.add_argument(
        "--torch-windows", type=int, default=0, help="also time N windows of PyTorch, same load"
    )
    args = p.parse_args()
    out = Path(args.out or f"runs/ptb-{args.preset}")
    argv = ["train", "ptb", "--data", args.data, "--out", str(out)]
    if args.resume:
        argv.append("--resume")
    else:
        argv += ["--preset", args.preset, "--seed", str(args.seed)]
    if args.epochs:
        argv += ["--epochs", str(args.epochs)]
    if args.steps:
        argv += ["--steps", str(args.steps)]
    before = load(out / "epochs.json") if args.resume else []
    t0 = time.perf_counter()
    rc = rnnkit_main(argv)
    wall = time.perf_counter() - t0
    if rc not in (0, 130):
        return rc
    cfg = json.loads((out / "checkpoint" / "checkpoint.json").read_text())["meta"]["config"]
    epochs = load(out / "epochs.json")
    preset = PRESETS[cfg["preset"]]
    _, data = load_ptb(args.data, ("train",))
    windows = math.ceil((len(data["train"].ids) // cfg["batch_size"] - 1) / cfg["bptt"])
    steps_now = json.loads((out / "checkpoint" / "checkpoint.json").read_text())["meta"]["trainer"][
        "step"
    ]
    steps_run = steps_now - (before[-1]["step"] if before else 0)
    doc = {
        "benchmark": f"ptb_{cfg['preset']}",
        "command": " ".join(["python", *sys.argv]),
        "config": cfg,
        "published": {"valid_ppl": preset["published_valid"], "test_ppl": preset["published_test"]},
        "pytorch_2_13_cpu_reference": PYTORCH_SMALL if cfg["preset"] == "small" else None,
        "windows_per_epoch": windows,
        "epochs": epochs,
        "this_call": {"wall_s": round(wall, 1), "steps": steps_run},
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average": os.getloadavg()},
    }  # fmt: skip
    print()
    print(
        f"PTB {cfg['preset']}: {cfg['layers']} x {cfg['hidden']} LSTM, {cfg['bptt']} steps, "
        f"batch {cfg['batch_size']}, dropout {cfg['dropout']}, {windows} windows/epoch"
    )
    if epochs:
        print(f"{'epoch':>5} {'lr':>8} {'train ppl':>10} {'valid ppl':>10} {'s':>8} {'words/s':>9}")
        for e in epochs:
            print(
                f"{e['epoch']:>5} {e['lr']:>8.4g} {e['train_ppl']:>10.2f} {e['valid_ppl']:>10.2f} "
                f"{e['seconds']:>8.1f} {e['words_per_s']:>9,.0f}"
            )
        total = sum(e["seconds"] for e in epochs)
        best = min(e["valid_ppl"] for e in epochs)
        doc.update(
            total_seconds=round(total, 1),
            mean_epoch_seconds=round(total / len(epochs), 1),
            best_valid_ppl=best,
            final_valid_ppl=epochs[-1]["valid_ppl"],
        )
        print(
            f"valid perplexity: best {best:.2f}, last {epochs[-1]['valid_ppl']:.2f}; "
            f"published {preset['published_valid']} (test {preset['published_test']})"
        )
        print(f"time: {total:.0f} s for {len(epochs)} epochs ({total / len(epochs):.1f} s/epoch)")
    if steps_run and (not epochs or args.steps):
        per_window = wall / steps_run
        doc.update(seconds_per_window=round(per_window, 4),
                   extrapolated_epoch_seconds=round(per_window * windows, 1))  # fmt: skip
        print(
            f"timing: {steps_run} windows in {wall:.1f} s = {per_window * 1000:.1f} ms/window "
            f"-> about {per_window * windows:.0f} s per epoch of training"
        )
    if args.torch_windows:
        tt = torch_timing(data["train"].ids, {**preset, **cfg}, args.torch_windows)
        tt["extrapolated_epoch_seconds"] = round(tt["seconds_per_window"] * windows, 1)
        doc["pytorch_same_machine_now"] = tt
        print(
            f"PyTorch {tt['torch']} ({tt['threads']} threads) now, same load: "
            f"{tt['seconds_per_window'] * 1000:.1f} ms/window -> about "
            f"{tt['extrapolated_epoch_seconds']:.0f} s per epoch"
        )
    if cfg["preset"] == "small":
        ref = PYTORCH_SMALL
        print(
            f"PyTorch 2.13 CPU on this machine: {ref['seconds_per_epoch']:.0f} s/epoch, "
            f"{ref['words_per_s']:,.0f} words/s, about {ref['total_minutes']:.0f} min"
        )
    name = args.name or f"ptb_{cfg['preset']}"
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {results / (name + '.json')}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
