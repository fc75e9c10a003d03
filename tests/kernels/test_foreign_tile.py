"""The per-step GEMM chosen from the CPU features Numba compiles for, and the other choices.

A test machine only runs the tile its own CPU selects. The AVX-512 tile (8×32, 16 lanes)
and a CPU without AVX run in subprocesses (``foreign_tile.py``), each with a fresh Numba
cache directory, so their compiled code never reaches the shared cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from rnnkit.kernels import microkernel

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("features", "shape"),
    [
        ({"avx512f": True, "avx2": True, "fma": True}, (16, 8, 2, True)),
        ({"avx512f": False, "avx2": True, "fma": True}, (8, 4, 3, True)),
        ({"avx2": True, "fma": False}, (8, 4, 3, False)),
        ({"sse4.2": True}, (8, 4, 3, False)),
        ({}, (8, 4, 3, False)),
    ],
)
def test_tile_shape_follows_the_features(features, shape):
    assert microkernel.tile_shape(features) == shape


def test_compile_features_are_numbas(monkeypatch):
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "+avx2, -avx512f,+fma,bogus")
    assert microkernel.compile_features() == {"avx2": True, "avx512f": False, "fma": True}
    monkeypatch.setattr(numba.config, "CPU_FEATURES", None)
    monkeypatch.setattr(numba.config, "ENABLE_AVX", False)
    features = microkernel.compile_features()
    assert features
    assert not any(on for name, on in features.items() if name.startswith("avx"))
    assert microkernel.tile_shape(features)[3] is False


@pytest.mark.parametrize("mode", ["avx512", "none"])
def test_kernels_equal_ops_with_another_per_step_gemm(tmp_path, mode):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    env.pop("RNNKIT_STEP_GEMM", None)
    env.pop("RNNKIT_KERNELS", None)
    if mode == "none":
        env["NUMBA_ENABLE_AVX"] = "0"
    done = subprocess.run(
        [sys.executable, "-m", "tests.kernels.foreign_tile", mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    lines = done.stdout.splitlines()
    cells = 5 if mode == "avx512" else 2
    cases = 4 if mode == "avx512" else 2
    assert len(lines) == 2 * cells * cases
    assert all(line.endswith("equal") for line in lines)
