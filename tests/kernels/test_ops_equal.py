"""The kernels equal the reference ops: every output, final state and gradient, every cell.

Shapes come from hypothesis (derandomized): B = 1, H not a multiple of the vector width,
T = 1, ragged lengths, with and without biases and initial states. The same comparison
runs on the multi-threaded path (chunks of units split over two threads; also blocks of
rows, for every cell but the reset-before GRU), on the BLAS-per-step fallback, and for
shapes large enough to split by the default rules.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit import kernels
from rnnkit.kernels import (
    driver,
    gru_before_loops,
    gru_loops,
    lstm_loops,
    lstm_serial,
    microkernel,
    plan,
    rnn_loops,
)

CELL_NAMES = ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_before"]
CASE_PARTS = {
    "T": st.integers(1, 6),
    "B": st.integers(1, 5),
    "I": st.integers(1, 5),
    "H": st.integers(1, 11),
    "ragged": st.booleans(),
    "bias": st.booleans(),
    "states": st.booleans(),
    "seed": st.integers(0, 2**32 - 1),
}
CASE = st.fixed_dictionaries(CASE_PARTS)
FEW = settings(max_examples=8, derandomize=True, deadline=None, database=None)
FIXTURES_OK = settings(FEW, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check_case(kcheck, name, case):
    cell = kcheck.CELLS[name]
    rng = np.random.default_rng(case["seed"])
    T, B, I, H = case["T"], case["B"], case["I"], case["H"]
    inputs = kcheck.make_inputs(rng, cell, T, B, I, H, case["bias"], case["states"])
    lengths = kcheck.ragged_lengths(rng, T, B) if case["ragged"] else None
    outs = cell.ref_forward(**inputs, lengths=lengths, **cell.options)[:-1]
    ws = [rng.normal(size=o.shape) for o in outs]
    truth = kcheck.run(cell, inputs, lengths, ws, "ref64")
    ref32 = kcheck.run(cell, inputs, lengths, ws, "ref32")
    got = kcheck.run(cell, inputs, lengths, ws, "kernel")
    kcheck.compare(truth, ref32, got)
    return got


@pytest.mark.parametrize("name", CELL_NAMES)
@FEW
@given(case=CASE)
def test_kernels_equal_ops(kcheck, name, case):
    assert kernels.backend().name == "numba"
    check_case(kcheck, name, case)


@pytest.fixture
def two_threads_always(monkeypatch):
    """Split every step over two chunks/threads, however small the shapes."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba's thread pool has one thread on this machine")
    monkeypatch.setenv("RNNKIT_NUM_THREADS", "2")
    monkeypatch.setattr(plan, "PARALLEL_STEP_FLOPS", 0)
    monkeypatch.setattr(plan, "PARALLEL_PACK_SIZE", 0)
    monkeypatch.setattr(driver, "PARALLEL_GEMM_FLOPS", 0)


@pytest.mark.parametrize("name", CELL_NAMES)
@FIXTURES_OK
@given(case=CASE)
def test_multithreaded_path_equals_ops(kcheck, two_threads_always, name, case):
    assert kernels.backend().threads == 2
    case = {**case, "H": max(case["H"], 2)}  # two chunks need two units
    check_case(kcheck, name, case)


@pytest.mark.parametrize("threads", ["1", "2"])
@FIXTURES_OK
@given(case=CASE)
def test_lstm_input_projection_inside_the_steps_equals_ops(kcheck, monkeypatch, threads, case):
    """``plan.fuse_input``: one thread (one compiled call) and split over two."""
    if not microkernel.AVAILABLE:
        pytest.skip("no microkernel on this CPU: the projection is never fused")
    if threads == "2":
        if numba.config.NUMBA_NUM_THREADS < 2:
            pytest.skip("Numba's thread pool has one thread on this machine")
        monkeypatch.setattr(plan, "PARALLEL_STEP_FLOPS", 0)
        monkeypatch.setattr(plan, "PARALLEL_PACK_SIZE", 0)
        case = {**case, "H": max(case["H"], 2)}
    monkeypatch.setenv("RNNKIT_NUM_THREADS", threads)
    monkeypatch.setattr(plan, "FUSED_INPUT_MIN_ROWS", 1)
    assert plan.fuse_input(True, case["B"], case["I"], 4 * case["H"])  # small weights
    seen = []
    module = lstm_serial if threads == "1" else lstm_loops
    loop = module.forward

    def spy(*args):
        seen.append(args[-1])  # fuse_x
        return loop(*args)

    monkeypatch.setattr(module, "forward", spy)
    check_case(kcheck, "lstm", case)
    assert seen == [True]


ROW_CASE = st.fixed_dictionaries(
    {**CASE_PARTS, "B": st.integers(2 * microkernel.MR, 2 * microkernel.MR + 9)}
)


@pytest.fixture
def rows_always(two_threads_always, monkeypatch):
    """Split every call that can into two blocks of rows (``plan.choose_row_blocks``)."""
    if not microkernel.AVAILABLE:
        pytest.skip("no microkernel on this CPU: calls are split by units only")
    monkeypatch.setattr(plan, "ROW_SPLIT_MAX_BYTES", 1 << 62)


ROW_LOOPS = {
    "rnn_tanh": rnn_loops,
    "rnn_relu": rnn_loops,
    "lstm": lstm_loops,
    "gru": gru_loops,
    "gru_reset_before": gru_before_loops,
}


@pytest.mark.parametrize("name", list(ROW_LOOPS))
@FIXTURES_OK
@given(case=ROW_CASE, fuse=st.booleans())
def test_split_by_rows_equals_ops(kcheck, rows_always, monkeypatch, name, case, fuse):
    """Each thread runs every step of its block of rows, forward and backward.

    ``fuse``: the LSTM's input projection inside the steps.
    """
    module, seen = ROW_LOOPS[name], []
    with monkeypatch.context() as patch:
        patch.setattr(plan, "FUSED_INPUT_MIN_ROWS", 1 if fuse else 1 << 30)
        for loop_name in ("forward", "backward"):
            loop = getattr(module, loop_name)

            def spy(*args, loop=loop):
                seen.append(len(args[1]) - 1)  # the blocks of rows
                return loop(*args)

            patch.setattr(module, loop_name, spy)
        check_case(kcheck, name, case)
    assert seen == [2, 2]


@pytest.mark.parametrize("split", ["rows", "units"])
@FIXTURES_OK
@given(case=ROW_CASE)
def test_lstm_backward_in_blocks_of_steps_equals_ops(kcheck, rows_always, monkeypatch, split, case):
    """One step per block of ∂L/∂a (``plan.time_block``): the loop and the products per block."""
    case = {**case, "H": max(case["H"], 2)}  # two chunks of units need two units
    calls = []
    with monkeypatch.context() as patch:
        patch.setattr(plan, "TIME_BLOCK_BYTES", 1)
        patch.setattr(plan, "TIME_BLOCK_MIN_ROWS", 1)
        if split == "units":
            patch.setattr(plan, "ROW_SPLIT_MAX_BYTES", 0)
        loop = lstm_loops.backward

        def spy(*args):
            calls.append((len(args[1]) - 1, args[2], args[3]))  # blocks of rows, t0, t1
            return loop(*args)

        patch.setattr(lstm_loops, "backward", spy)
        check_case(kcheck, "lstm", case)
    T, blocks = case["T"], 2 if split == "rows" else 1
    assert calls == [(blocks, t, t + 1) for t in reversed(range(T))]


def test_an_lstm_call_of_the_benchmark_splits_by_rows_by_default(kcheck):
    if kernels.backend().threads < 2 or not microkernel.AVAILABLE:
        pytest.skip("one thread or no microkernel: no blocks of rows")
    call = driver.setup(kernels.backend(), 32, 128, 4, 3, fused_inputs=64)
    assert call.plan.P == 1
    assert len(call.rows) - 1 == 2
    case = {"T": 3, "B": 32, "I": 64, "H": 128, "ragged": True, "bias": True, "states": True}
    check_case(kcheck, "lstm", {**case, "seed": 7})


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("name", CELL_NAMES)
@FIXTURES_OK
@given(case=CASE)
def test_blas_per_step_fallback_equals_ops(kcheck, monkeypatch, name, threads, case):
    if threads == "2":
        if numba.config.NUMBA_NUM_THREADS < 2:
            pytest.skip("Numba's thread pool has one thread on this machine")
        monkeypatch.setattr(plan, "PARALLEL_STEP_FLOPS", 0)
        case = {**case, "H": max(case["H"], 2)}
    monkeypatch.setenv("RNNKIT_NUM_THREADS", threads)
    monkeypatch.setenv("RNNKIT_STEP_GEMM", "blas")
    assert kernels.backend().step_gemm.startswith("BLAS per step")
    check_case(kcheck, name, case)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_a_shape_large_enough_splits_by_default(kcheck, name):
    if kernels.backend().threads < 2:
        pytest.skip("one thread available: nothing to split")
    cell = kcheck.CELLS[name]
    B, H = 64, 368  # 2·B·H·G·H ≥ plan.PARALLEL_STEP_FLOPS (2^24) for every G
    assert 2 * B * H * H >= plan.PARALLEL_STEP_FLOPS
    assert plan.choose_chunks(B, H, cell.G, 2) == 2
    case = {"T": 3, "B": B, "I": 7, "H": H, "ragged": True, "bias": True, "states": True}
    check_case(kcheck, name, {**case, "seed": 5})


@pytest.mark.parametrize("name", CELL_NAMES)
@pytest.mark.parametrize(("T", "B", "H"), [(1, 1, 1), (1, 3, 1), (4, 1, 1), (1, 1, 9)])
def test_edge_shapes(kcheck, name, T, B, H):
    case = {"T": T, "B": B, "I": 2, "H": H, "ragged": B > 1, "bias": True, "states": True}
    check_case(kcheck, name, {**case, "seed": T * 100 + B * 10 + H})


def test_which_lstm_calls_fuse_the_input_projection():
    assert plan.fuse_input(True, 32, 64, 512)
    assert plan.fuse_input(True, 64, 128, 1024)  # W_ih of 512 KiB: the limit
    assert not plan.fuse_input(True, 16, 64, 512)  # too few rows a step
    assert not plan.fuse_input(False, 64, 64, 512)  # no microkernel
    assert not plan.fuse_input(True, 64, 512, 2048)  # W_ih of 4 MiB streamed every step
