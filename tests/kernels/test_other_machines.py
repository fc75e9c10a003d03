"""The kernels as machines unlike this one run them.

A test machine only runs the tile its own CPU selects and the team its cores allow. The
AVX-512 tile (8×32, 16 lanes), a CPU without AVX and teams of 3 and 5 threads run in
subprocesses (``other_machines.py``); the first two with a fresh Numba cache directory,
so their compiled code never reaches the shared cache, and started as soon as the suite
is collected, so that they compile beside the other tests.
"""

from __future__ import annotations

import numba
import pytest

from rnnkit.kernels import microkernel


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


@pytest.mark.parametrize("mode", ["avx512", "none", "threads"])
def test_kernels_equal_ops_as_other_machines_run_them(mode, other_machine):
    returncode, out, err = other_machine(mode)  # avx512 and none started early
    assert returncode == 0, out[-2000:] + err[-4000:]
    lines = out.splitlines()
    cells = 2 if mode == "none" else 5
    cases = {"avx512": 4, "none": 2, "threads": 3}[mode]
    assert len(lines) == 2 * cells * cases
    assert all(line.endswith("equal") for line in lines)
