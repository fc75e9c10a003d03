"""Shared machinery of the kernel tests: the five cells, random inputs, three runs to compare.

Every cell is run three ways on the same float64 inputs: the reference ops in float64 (the
truth), the reference ops in float32 (the rounding error a float32 path is allowed) and the
kernels in float32. ``KernelCheck.compare`` asserts that the kernels are as close to the
truth as float32 allows, for every output and every gradient.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from rnnkit import kernels
from rnnkit.kernels.selection import use_backend
from rnnkit.ops import gru as ops_gru
from rnnkit.ops import lstm as ops_lstm
from rnnkit.ops import rnn as ops_rnn


class Cell(NamedTuple):
    G: int
    states: tuple[str, ...]
    ref_forward: Any
    ref_backward: Any
    forward: Any
    backward: Any
    options: dict[str, Any]


CELLS = {
    "rnn_tanh": Cell(
        1,
        ("h0",),
        ops_rnn.rnn_forward,
        ops_rnn.rnn_backward,
        kernels.rnn_forward,
        kernels.rnn_backward,
        {"nonlinearity": "tanh"},
    ),
    "rnn_relu": Cell(
        1,
        ("h0",),
        ops_rnn.rnn_forward,
        ops_rnn.rnn_backward,
        kernels.rnn_forward,
        kernels.rnn_backward,
        {"nonlinearity": "relu"},
    ),
    "lstm": Cell(
        4,
        ("h0", "c0"),
        ops_lstm.lstm_forward,
        ops_lstm.lstm_backward,
        kernels.lstm_forward,
        kernels.lstm_backward,
        {},
    ),
    "gru": Cell(
        3,
        ("h0",),
        ops_gru.gru_forward,
        ops_gru.gru_backward,
        kernels.gru_forward,
        kernels.gru_backward,
        {"reset_after": True},
    ),
    "gru_reset_before": Cell(
        3,
        ("h0",),
        ops_gru.gru_forward,
        ops_gru.gru_backward,
        kernels.gru_forward,
        kernels.gru_backward,
        {"reset_after": False},
    ),
}


def make_inputs(
    rng: np.random.Generator,
    cell: Cell,
    T: int,
    B: int,
    I: int,
    H: int,
    bias: bool = True,
    states: bool = True,
) -> dict[str, np.ndarray | None]:
    """float64 inputs with nonzero biases; weights scaled by 1/√fan-in so BPTT stays tame."""
    G = cell.G
    return {
        "x": rng.normal(size=(T, B, I)),
        "W_ih": rng.normal(size=(G * H, I)) / np.sqrt(I),
        "W_hh": 0.9 * rng.normal(size=(G * H, H)) / np.sqrt(H),
        "b_ih": 0.5 * rng.normal(size=G * H) if bias else None,
        "b_hh": 0.5 * rng.normal(size=G * H) if bias else None,
        **{name: (0.8 * rng.normal(size=(B, H)) if states else None) for name in cell.states},
    }


def ragged_lengths(rng: np.random.Generator, T: int, B: int) -> np.ndarray:
    """Lengths in [1, T] with a full-length row and, for B >= 2, a length-1 row."""
    lengths = rng.integers(1, T + 1, size=B)
    lengths[rng.permutation(B)[: min(B, 2)]] = [T, 1][: min(B, 2)]
    return lengths.astype(np.int64)


def _f32(v: Any) -> Any:
    return v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v


class Run(NamedTuple):
    outputs: tuple[np.ndarray, ...]
    grads: dict[str, np.ndarray | None]
    cache: Any


def run(cell: Cell, inputs: dict[str, Any], lengths: Any, ws: list[np.ndarray], which: str) -> Run:
    """Forward then backward with incoming gradients ``ws``: ``which`` is "ref64", "ref32",
    or "kernel" (float32 on the kernel path)."""
    if which == "ref64":
        out = cell.ref_forward(**inputs, lengths=lengths, **cell.options)
        return Run(out[:-1], cell.ref_backward(*ws, out[-1])._asdict(), out[-1])
    args = {k: _f32(v) for k, v in inputs.items()}
    ws32 = [_f32(w) for w in ws]
    if which == "ref32":
        with use_backend("reference"):
            out = cell.forward(**args, lengths=lengths, **cell.options)
            return Run(out[:-1], cell.backward(*ws32, out[-1])._asdict(), out[-1])
    out = cell.forward(**args, lengths=lengths, **cell.options)
    return Run(out[:-1], cell.backward(*ws32, out[-1])._asdict(), out[-1])


def compare(truth: Run, ref32: Run, got: Run, slack: float = 8.0) -> None:
    """``got`` (float32) is within ``slack`` × the float32 reference's own error of the truth
    (plus 2e-6 of the value's scale), for every output and gradient; None where None."""
    pairs = [
        (f"output {k}", a, b, c)
        for k, (a, b, c) in enumerate(zip(truth.outputs, ref32.outputs, got.outputs, strict=True))
    ]
    assert set(truth.grads) == set(got.grads)
    for name, g in truth.grads.items():
        if g is None:
            assert got.grads[name] is None, name
        else:
            pairs.append((name, g, ref32.grads[name], got.grads[name]))
    for name, a64, a32, k32 in pairs:
        assert k32.dtype == np.float32, f"{name} is {k32.dtype}"
        assert k32.shape == a64.shape, name
        allowed = slack * np.abs(a32 - a64).max() + 2e-6 * (1.0 + np.abs(a64).max())
        err = np.abs(k32 - a64).max()
        assert err <= allowed, f"{name}: error {err:.3g} > allowed {allowed:.3g}"


class KernelCheck:
    """The helpers above, handed to tests by the ``kcheck`` fixture."""

    CELLS = CELLS
    make_inputs = staticmethod(make_inputs)
    ragged_lengths = staticmethod(ragged_lengths)
    run = staticmethod(run)
    compare = staticmethod(compare)


@pytest.fixture(scope="session")
def kcheck() -> type[KernelCheck]:
    """The shared kernel-test helpers (see the module docstring)."""
    return KernelCheck


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's id."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


# The other-machine subprocesses (test_other_machines.py).
ROOT = Path(__file__).resolve().parents[2]
EARLY_MODES = ("avx512", "none")  # the modes with their own (empty) cache, started early
TIMEOUT_S = 900
_running: dict[str, tuple[subprocess.Popen, str | None]] = {}


def start_other_machine(mode: str) -> None:
    """Start ``python -m tests.kernels.other_machines MODE`` in its environment (once)."""
    if mode in _running:
        return
    env = dict(os.environ)
    for name in ("RNNKIT_STEP_GEMM", "RNNKIT_KERNELS", "RNNKIT_NUM_THREADS"):
        env.pop(name, None)
    cache = None
    if mode == "threads":
        env["NUMBA_NUM_THREADS"] = "5"  # more than this machine may have: oversubscribed
    else:
        cache = env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix=f"rnnkit-{mode}-numba-")
    if mode == "none":
        env["NUMBA_ENABLE_AVX"] = "0"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.kernels.other_machines", mode],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _running[mode] = (process, cache)


def finish_other_machine(mode: str) -> tuple[int, str, str]:
    """Wait for ``mode`` (started now if it was not) and clean up: (exit code, out, err)."""
    start_other_machine(mode)
    process, cache = _running.pop(mode)
    try:
        out, err = process.communicate(timeout=TIMEOUT_S)
    finally:
        process.kill()
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
    return process.returncode, out, err


def _stop_other_machines() -> None:
    """Stop every process not waited for (a test deselected or the session interrupted)."""
    for mode in list(_running):
        process, _ = _running[mode]
        process.kill()
        finish_other_machine(mode)


@pytest.fixture(scope="session")
def other_machine() -> Any:
    """:func:`finish_other_machine`: run a mode of ``other_machines.py`` (or wait for it)."""
    return finish_other_machine


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the other-machine subprocesses that compile from scratch, and wait for them last.

    They take a minute or more, mostly on one core: started now, they compile beside the
    rest of the suite (``other_machines.py``).
    """
    early = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        mode = callspec.params.get("mode") if callspec else None
        if item.path.name == "test_other_machines.py" and mode in EARLY_MODES:
            start_other_machine(mode)
            early.append(item)
    items[:] = [item for item in items if item not in early] + early


def pytest_sessionfinish() -> None:
    """Stop other-machine subprocesses nobody waited for."""
    _stop_other_machines()
