"""The per-step recurrent product on one thread: rnnkit's microkernel against OpenBLAS.

Inside the time loop each thread computes its chunk's share of a step's product, a GEMM
with few rows (``M = B``). rnnkit packs the weights once per call and runs a
register-blocked microkernel (``rnnkit.kernels.microkernel``); the fallback, and what a
plain implementation does, is one single-threaded BLAS call per step (OpenBLAS re-packs
the weights inside every call). This script times both on the LSTM's per-step shapes of
the five ``speed.py`` shapes, split into ``--chunks`` chunks as the loops split them:
forward ``h_{t−1} (B×H) @ W_hh chunk (H × 4H/P)`` and backward
``da_t chunk (B × 4H/P) @ W_hh rows (4H/P × H)``. One thread each side, interleaved, min
of ``--reps`` batches of calls; GFLOP/s on the real (unpadded) shape, and the share of a
one-thread 2048² sgemm measured in the same run.

    python benchmarks/step_gemm.py [--chunks 2] [--reps 7] [--out results/step_gemm.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from numba import njit
from threadpoolctl import threadpool_info, threadpool_limits

from rnnkit.kernels import microkernel
from rnnkit.kernels.microkernel import NR
from rnnkit.kernels.plan import choose_chunks

RESULTS = Path(__file__).resolve().parent / "results"
SHAPES = [(1, 100, 32, 64), (32, 100, 64, 128), (64, 100, 128, 256), (64, 50, 512, 512)]
SHAPES.append((16, 200, 256, 1024))
CALL_FLOPS = 2e8  # flops per timed batch of calls


@njit(cache=True)
def _packed(A, Wp, C, calls):
    for _ in range(calls):
        microkernel.packed_gemm(
            A.ctypes.data, A.shape[1], A.shape[0], A.shape[1], Wp.ctypes.data,
            Wp.shape[1] * Wp.shape[2], Wp.shape[0], C.ctypes.data, C.shape[1],
        )  # fmt: skip


def _blas(A: np.ndarray, W: np.ndarray, C: np.ndarray, calls: int) -> None:
    for _ in range(calls):
        np.matmul(A, W, out=C)


def _min_time(f, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def products(chunks: int) -> list[tuple[str, tuple[int, int, int, int], int, int, int]]:
    """(direction, (B, T, I, H), M, K, N) of one chunk's per-step product."""
    out = []
    for shape in SHAPES:
        B, _, _, H = shape
        P = choose_chunks(B, H, 4, chunks)  # the loops' own rule (B = 1: one chunk)
        share = 4 * H // P
        out.append(("forward", shape, B, H, share))
        out.append(("backward", shape, B, share, H))
    return out


def measure(M: int, K: int, N: int, reps: int) -> dict[str, float]:
    """GFLOP/s of both sides on ``A (M×K) @ W (K×N)``, one thread, interleaved."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((M, K), dtype=np.float32)
    W = rng.standard_normal((K, N), dtype=np.float32)
    n_pad = -(-N // NR) * NR
    cols = np.arange(n_pad)
    cols[cols >= N] = -1
    Wp = np.empty((n_pad // NR, K, NR), np.float32)
    microkernel.pack_panels_serial(W, np.arange(K), cols, False, Wp)
    C_mk, C_blas = np.empty((M, n_pad), np.float32), np.empty((M, N), np.float32)
    calls = max(1, int(CALL_FLOPS / (2 * M * K * N)))
    _packed(A, Wp, C_mk, 1)
    _blas(A, W, C_blas, 1)
    np.testing.assert_allclose(C_mk[:, :N], C_blas, rtol=1e-4, atol=1e-3)
    t_mk = t_blas = float("inf")
    for _ in range(reps):  # interleaved, one batch of calls each side per round
        t_mk = min(t_mk, _min_time(lambda: _packed(A, Wp, C_mk, calls), 1))
        t_blas = min(t_blas, _min_time(lambda: _blas(A, W, C_blas, calls), 1))
    flops = 2 * M * K * N * calls
    return {"rnnkit_gflops": flops / t_mk / 1e9, "openblas_gflops": flops / t_blas / 1e9}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=2, help="chunks a step is split into")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", type=Path, default=RESULTS / "step_gemm.json")
    args = ap.parse_args()
    if not microkernel.AVAILABLE:
        raise SystemExit(f"rnnkit's microkernel is {microkernel.DESCRIPTION}: nothing to compare")
    rows = []
    with threadpool_limits(1):
        big = np.random.default_rng(1).random((2048, 2048), dtype=np.float32)
        out = np.empty_like(big)
        np.matmul(big, big, out=out)
        peak = 2 * 2048**3 / _min_time(lambda: np.matmul(big, big, out=out), 3) / 1e9
        for direction, shape, M, K, N in products(args.chunks):
            r = measure(M, K, N, args.reps)
            rows.append({"direction": direction, "shape": shape, "M": M, "K": K, "N": N, **r})
    print(f"one thread; microkernel: {microkernel.DESCRIPTION}; 2048² sgemm {peak:.1f} GFLOP/s")
    print("| B, T, I, H | step | M × K × N | rnnkit GFLOP/s | OpenBLAS GFLOP/s | time ratio |")
    print("|---|---|---|---:|---:|---:|")
    for r in rows:
        ratio = r["openblas_gflops"] / r["rnnkit_gflops"]
        r["time_ratio"] = ratio
        print(
            f"| {', '.join(map(str, r['shape']))} | {r['direction']} | "
            f"{r['M']} × {r['K']} × {r['N']} | {r['rnnkit_gflops']:.1f} "
            f"({100 * r['rnnkit_gflops'] / peak:.0f} %) | {r['openblas_gflops']:.1f} "
            f"({100 * r['openblas_gflops'] / peak:.0f} %) | **{ratio:.2f}** |"
        )
    blas = [
        {k: d.get(k) for k in ("filepath", "architecture", "version")}
        for d in threadpool_info()
        if d["user_api"] == "blas"
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"chunks": args.chunks, "sgemm_2048_one_thread": peak, "blas": blas}
    record |= {"microkernel": microkernel.DESCRIPTION, "rows": rows}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
