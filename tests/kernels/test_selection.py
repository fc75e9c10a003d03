"""Which path runs is automatic, documented and observable; the switches work."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from rnnkit import kernels
from rnnkit.ops import lstm as ops_lstm


def test_float64_always_runs_the_reference():
    b = kernels.backend(np.float64)
    assert b.name == "reference"
    assert "float64" in b.reason


def test_float32_runs_numba_and_says_how():
    b = kernels.backend()
    assert b.name == "numba", b.reason
    assert b.threads >= 1
    assert b.step_gemm  # microkernel tile or BLAS per step
    assert "OpenBLAS" in b.blas
    assert f"threads: {b.threads}" in b.reason


def test_use_reference_and_use_backend_switch_for_the_block():
    with kernels.use_reference():
        assert kernels.backend().name == "reference"
        with kernels.use_backend("numba"):
            assert kernels.backend().name == "numba"
        assert kernels.backend().name == "reference"
    assert kernels.backend().name == "numba"
    with pytest.raises(ValueError, match="`name` must be one of"), kernels.use_backend("fast"):
        pass


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("RNNKIT_KERNELS", "reference")
    assert kernels.backend().name == "reference"
    assert "RNNKIT_KERNELS=reference" in kernels.backend().reason
    with kernels.use_backend("numba"):  # the context manager wins over the environment
        assert kernels.backend().name == "numba"
    monkeypatch.setenv("RNNKIT_KERNELS", "turbo")
    with pytest.raises(ValueError, match="RNNKIT_KERNELS must be one of"):
        kernels.backend()
    monkeypatch.setenv("RNNKIT_KERNELS", "numba")
    monkeypatch.setenv("RNNKIT_NUM_THREADS", "1")
    assert kernels.backend().threads == 1
    monkeypatch.setenv("RNNKIT_NUM_THREADS", "10000")
    assert "capped by NUMBA_NUM_THREADS" in kernels.backend().reason
    monkeypatch.setenv("RNNKIT_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="RNNKIT_NUM_THREADS must be a positive integer"):
        kernels.backend()
    monkeypatch.delenv("RNNKIT_NUM_THREADS")
    monkeypatch.setenv("RNNKIT_STEP_GEMM", "blas")
    assert kernels.backend().step_gemm.startswith("BLAS per step")


def lstm_args(rng, T=6, B=3, I=4, H=16):
    f = np.float32
    return (
        rng.normal(size=(T, B, I)).astype(f),
        (rng.normal(size=(4 * H, I)) / 2).astype(f),
        (rng.normal(size=(4 * H, H)) / 4).astype(f),
        rng.normal(size=4 * H).astype(f),
        rng.normal(size=4 * H).astype(f),
    )


def test_the_path_taken_is_visible_in_the_results(rng):
    """Forced reference = ops bit for bit; the kernels are close but not bit-identical
    (rational tanh, other summation order), so a silent fallback would fail this test."""
    args = lstm_args(rng)
    y_ops = ops_lstm.lstm_forward(*args)[0]
    with kernels.use_reference():
        y_ref = kernels.lstm_forward(*args)[0]
    y_k = kernels.lstm_forward(*args)[0]
    np.testing.assert_array_equal(y_ref, y_ops)
    np.testing.assert_allclose(y_k, y_ops, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(y_k, y_ops)


def test_a_debug_log_names_the_reference_path(caplog, rng):
    args = lstm_args(rng, T=2, H=3)
    with caplog.at_level(logging.DEBUG, logger="rnnkit.kernels"), kernels.use_reference():
        kernels.lstm_forward(*args)
    assert "reference path (forced by use_reference()" in caplog.text


def test_importing_rnnkit_does_not_import_numba():
    code = "import sys, rnnkit.nn, rnnkit.kernels; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
