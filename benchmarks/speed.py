"""Side-by-side speed of rnnkit's RNN/LSTM/GRU layers and PyTorch's on the CPU.

Both sides run in this one process with the same number of threads (the kernels' team,
``rnnkit.kernels.backend().threads``; ``torch.set_num_threads`` the same). For each cell,
shape and mode, every timed call alternates between the two sides (interleaved), after
warm-up calls, each after a ``--pause`` so that the other side's idle threads have stopped
spinning, and the minimum of ``--reps`` (>= 5) calls is kept.

- training step: forward + backpropagation through time with ``dy = 1``, giving ``dx`` and
  every weight gradient (PyTorch: ``x.requires_grad = True``, ``y.backward(dy)``);
- inference: forward only (rnnkit in ``eval()`` mode, PyTorch under ``no_grad``).

GFLOP/s count the GEMM work, ``2·B·T·(I+H)·G·H`` for a forward and three times that for a
training step, and are set against a float32 GEMM peak measured in the same run (NumPy's
OpenBLAS, 2048³ and 4096³, the best of the measurements at the start and the end). The
peak RSS increase of one training step is measured for each side in a fresh process. The
OpenBLAS kernel in use (threadpoolctl) and the kernel settings are recorded with the
results in ``benchmarks/results/*.json``.

    python benchmarks/speed.py                       # the machine's environment
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/speed.py --tag native
    python benchmarks/speed.py --compile-times       # cold and cached Numba compile times
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPES = [
    (1, 100, 32, 64),
    (32, 100, 64, 128),
    (64, 100, 128, 256),
    (64, 50, 512, 512),
    (16, 200, 256, 1024),
]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
RESULTS = Path(__file__).resolve().parent / "results"


def flops(cell: str, B: int, T: int, n_in: int, H: int) -> int:
    """GEMM flops of one forward pass."""
    return 2 * B * T * (n_in + H) * GATES[cell] * H


def make_models(cell: str, n_in: int, H: int):
    """An rnnkit layer and a torch layer with the same float32 weights."""
    import torch

    from rnnkit.nn.recurrent import GRU, LSTM, RNN

    torch.manual_seed(0)
    tm = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](n_in, H)
    ours = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[cell](n_in, H)
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    return ours, tm


def step_functions(cell: str, B: int, T: int, n_in: int, H: int) -> dict:
    """The four timed callables of one case."""
    import torch

    ours, tm = make_models(cell, n_in, H)
    ours_eval, _ = make_models(cell, n_in, H)
    ours_eval.eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, n_in), dtype=np.float32)
    dy = np.ones((T, B, H), np.float32)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    dyt = torch.from_numpy(dy)

    def torch_train():
        tm.zero_grad()
        xt.grad = None
        y, _ = tm(xt)
        y.backward(dyt)

    def rnnkit_train():
        ours.zero_grad()
        ours(x)
        ours.backward(dy)

    def torch_infer():
        with torch.no_grad():
            tm(xt)

    def rnnkit_infer():
        ours_eval(x)

    return {"train": (torch_train, rnnkit_train), "infer": (torch_infer, rnnkit_infer)}


def interleaved_min(fns: tuple, reps: int, warmup: int, pause: float) -> list[float]:
    """Minimum time of each function over ``reps`` calls taken in turn after ``warmup`` calls.

    Each timed call starts ``pause`` seconds after the previous one ends, so that neither
    side's idle worker threads (two OpenMP runtimes live in this process: PyTorch's and
    Numba's; OpenBLAS has its own) still spin when the other side starts.
    """
    for f in fns:
        for _ in range(warmup):
            f()
    best = [float("inf")] * len(fns)
    gc.collect()
    gc.disable()
    try:
        for _ in range(reps):
            for k, f in enumerate(fns):
                time.sleep(pause)
                t0 = time.perf_counter()
                f()
                best[k] = min(best[k], time.perf_counter() - t0)
    finally:
        gc.enable()
    return best


def sgemm_peak() -> dict[str, float]:
    """float32 GEMM GFLOP/s of NumPy's BLAS (all its threads), best of 3 calls per size."""
    out = {}
    for n in (2048, 4096):
        a = np.random.default_rng(1).random((n, n), dtype=np.float32)
        c = np.empty_like(a)
        np.matmul(a, a, out=c)
        t = min(_timed(lambda a=a, c=c: np.matmul(a, a, out=c)) for _ in range(3))
        out[f"sgemm_{n}"] = 2 * n**3 / t / 1e9
    return out


def _timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def environment() -> dict:
    """What the numbers depend on: CPU, BLAS kernel, threads, versions, kernel settings."""
    import numba
    import threadpoolctl
    import torch

    import rnnkit.kernels

    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import llvmlite.binding as llvm

    info = threadpoolctl.threadpool_info()
    return {
        "cpu": cpu,
        "llvm_cpu": llvm.get_host_cpu_name(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "numba_threading_layer": numba.threading_layer(),
        "torch_threads": torch.get_num_threads(),
        "env": {
            k: os.environ.get(k)
            for k in (
                "OPENBLAS_CORETYPE",
                "OPENBLAS_L2_SIZE",
                "RNNKIT_NUM_THREADS",
                "OMP_NUM_THREADS",
            )
        },
        "blas": [
            {k: d.get(k) for k in ("filepath", "architecture", "version", "num_threads")}
            for d in info
            if d["user_api"] == "blas"
        ],
        "rnnkit_backend": rnnkit.kernels.backend()._asdict(),
        "load_average": os.getloadavg(),
    }


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def probe_memory(side: str, cell: str, shape: tuple[int, int, int, int]) -> dict:
    """Peak RSS increase of a training step (run in a fresh process by :func:`memory`)."""
    # Load every compiled kernel first: small shapes that take each path of a call (one
    # thread; the team split by rows; split by units), so that loading machine code from
    # the cache is not counted as the step's memory.
    for B, H in ((2, 8), (16, 256), (4, 512)):
        small = step_functions(cell, B, 2, 4, H)["train"]
        small[0 if side == "torch" else 1]()
    fns = step_functions(cell, *shape)["train"]
    f = fns[0 if side == "torch" else 1]
    gc.collect()
    base = _rss_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    f()
    f()
    return {"peak_mib": (_rss_kib("VmHWM") - base) / 1024}


def memory(cell: str, shape: tuple) -> dict[str, float | None]:
    """Peak RSS increase (MiB) of a training step on each side, each in a fresh process."""
    out: dict[str, float | None] = {}
    for side in ("torch", "rnnkit"):
        cmd = [sys.executable, __file__, "--probe-memory", side, cell, ",".join(map(str, shape))]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
            out[side] = json.loads(res.stdout.strip().splitlines()[-1])["peak_mib"]
        except (subprocess.SubprocessError, ValueError, KeyError, IndexError):
            out[side] = None
    return out


def compile_times() -> dict:
    """Cold (empty Numba cache) and cached first-call times of every cell, each in a fresh
    process; the first float32 call minus a second identical call."""
    code = (
        "import json, time, numpy as np\n"
        "t0 = time.perf_counter(); import rnnkit.nn; t_import = time.perf_counter() - t0\n"
        "from rnnkit.nn.recurrent import RNN, LSTM, GRU\n"
        "out = {'import_rnnkit_nn_s': t_import}\n"
        "def step(m, T, B):  # train (serial and split loops, both GEMM paths) and eval\n"
        "    x = np.ones((T, B, m.input_size), np.float32); y, _ = m(x)\n"
        "    m.backward(np.ones_like(y)); m.eval(); m(x); m.train()\n"
        "for name, cls, kw in [('rnn', RNN, {}), ('lstm', LSTM, {}), ('gru', GRU, {}),\n"
        "                      ('gru_reset_before', GRU, {'reset_after': False})]:\n"
        "    small, big = cls(4, 8, **kw), cls(32, 64, **kw)\n"
        "    runs = lambda: (step(small, 3, 2), step(big, 40, 128))\n"
        "    t0 = time.perf_counter(); runs(); first = time.perf_counter() - t0\n"
        "    t0 = time.perf_counter(); runs(); again = time.perf_counter() - t0\n"
        "    out[name] = first - again\n"
        "print(json.dumps(out))\n"
    )
    result = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold", "cached"):
            t0 = time.perf_counter()
            res = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            result[label] = json.loads(res.stdout.strip().splitlines()[-1])
            result[label]["process_s"] = time.perf_counter() - t0
    return result


def markdown_table(rows: list[dict]) -> str:
    """The results as the README's table: one line per cell and shape, both modes."""
    lines = [
        "| cell | B, T, I, H | train torch ms | train rnnkit ms | ratio | % peak | "
        "infer torch ms | infer rnnkit ms | ratio | peak RSS torch / rnnkit MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_key = {(r["cell"], r["B"], r["T"], r["I"], r["H"], r["mode"]): r for r in rows}
    for key in by_key:
        cell, B, T, n_in, H, mode = key
        if mode != "train":
            continue
        tr, inf = by_key[key], by_key.get((*key[:5], "infer"))
        mem = (
            f"{tr['torch_peak_mib']:.0f} / {tr['rnnkit_peak_mib']:.0f}"
            if tr.get("rnnkit_peak_mib") is not None
            else ""
        )
        cols = [
            cell,
            f"{B}, {T}, {n_in}, {H}",
            f"{tr['torch_ms']:.2f}",
            f"{tr['rnnkit_ms']:.2f}",
            f"**{tr['ratio']:.2f}**",
            f"{tr['pct_of_peak']:.0f}",
        ]
        cols += (
            [f"{inf['torch_ms']:.2f}", f"{inf['rnnkit_ms']:.2f}", f"**{inf['ratio']:.2f}**"]
            if inf
            else ["", "", ""]
        )
        lines.append("| " + " | ".join([*cols, mem]) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=7, help="timed calls per side (min is kept)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--pause", type=float, default=0.1, help="seconds before each timed call")
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--shapes", default="all", help="indices into the five shapes, e.g. 0,2")
    ap.add_argument("--modes", default="train,infer")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-RSS probes")
    ap.add_argument("--tag", default="default", help="results file: results/speed_<tag>.json")
    ap.add_argument("--compile-times", action="store_true")
    ap.add_argument(
        "--probe-memory", nargs=3, metavar=("SIDE", "CELL", "SHAPE"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.reps < 5:
        ap.error("--reps must be at least 5")
    import torch

    import rnnkit.kernels

    threads = rnnkit.kernels.backend().threads
    torch.set_num_threads(threads)
    if args.probe_memory:
        side, cell, shape = args.probe_memory
        print(json.dumps(probe_memory(side, cell, tuple(int(v) for v in shape.split(",")))))
        return 0
    if args.compile_times:
        res = compile_times()
        print(json.dumps(res, indent=1))
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "compile_times.json").write_text(json.dumps(res, indent=1) + "\n")
        return 0
    shapes = SHAPES if args.shapes == "all" else [SHAPES[int(i)] for i in args.shapes.split(",")]
    info = environment()
    print(
        f"CPU {info['cpu']} ({info['llvm_cpu']}), threads {threads}, BLAS "
        f"{[b['architecture'] for b in info['blas']]}, env {info['env']}"
    )
    print("rnnkit:", info["rnnkit_backend"]["step_gemm"], "|", info["rnnkit_backend"]["reason"])
    peak = sgemm_peak()
    print("sgemm GFLOP/s at start:", {k: round(v) for k, v in peak.items()}, flush=True)
    rows = []
    head = f"{'cell':5} {'mode':5} {'B,T,I,H':>17} {'torch ms':>10} {'rnnkit ms':>10} "
    print(head + f"{'ratio':>6} {'GF/s':>6} {'%peak':>6} {'torch MiB':>9} {'rnnkit MiB':>10}")
    for cell in args.cells.split(","):
        for shape in shapes:
            fns = step_functions(cell, *shape)
            mem = memory(cell, shape) if not args.no_memory else {}
            for mode in args.modes.split(","):
                t_torch, t_ours = interleaved_min(fns[mode], args.reps, args.warmup, args.pause)
                work = flops(cell, *shape) * (3 if mode == "train" else 1)
                row = {
                    "cell": cell,
                    "mode": mode,
                    "B": shape[0],
                    "T": shape[1],
                    "I": shape[2],
                    "H": shape[3],
                    "torch_ms": t_torch * 1e3,
                    "rnnkit_ms": t_ours * 1e3,
                    "ratio": t_ours / t_torch,
                    "rnnkit_gflops": work / t_ours / 1e9,
                    "torch_gflops": work / t_torch / 1e9,
                }
                if mode == "train" and mem:
                    row["torch_peak_mib"], row["rnnkit_peak_mib"] = mem["torch"], mem["rnnkit"]
                rows.append(row)
                mib = (
                    f"{row['torch_peak_mib']:9.1f} {row['rnnkit_peak_mib']:10.1f}"
                    if mode == "train" and mem and None not in mem.values()
                    else ""
                )
                pct = 100 * row["rnnkit_gflops"] / max(peak.values())
                print(
                    f"{cell:5} {mode:5} {shape!s:>17} {row['torch_ms']:10.2f} "
                    f"{row['rnnkit_ms']:10.2f} {row['ratio']:6.2f} {row['rnnkit_gflops']:6.1f} "
                    f"{pct:6.0f} {mib}",
                    flush=True,
                )
    peak_end = sgemm_peak()
    print("sgemm GFLOP/s at end:", {k: round(v) for k, v in peak_end.items()})
    best = max([*peak.values(), *peak_end.values()])
    for row in rows:
        row["pct_of_peak"] = 100 * row["rnnkit_gflops"] / best
    print(f"peak used for %: {best:.0f} GFLOP/s")
    print(markdown_table(rows))
    info["load_average_end"] = os.getloadavg()
    out = {
        "info": info,
        "peak_gflops": {"start": peak, "end": peak_end, "best": best},
        "reps": args.reps,
        "warmup": args.warmup,
        "pause_s": args.pause,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"speed_{args.tag}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
