"""How many threads a kernel call uses: chunks of a step or blocks of rows, shares of a
product after the loop."""

from __future__ import annotations

import itertools

import pytest

from rnnkit.kernels import driver, plan
from rnnkit.kernels.microkernel import MR


def step_flops(B: int, H: int, G: int) -> int:
    return 2 * B * H * G * H


@pytest.mark.parametrize(("B", "H", "G"), [(1, 64, 4), (8, 64, 3), (16, 100, 1)])
def test_a_small_step_is_one_chunk_whatever_the_threads(B, H, G):
    assert step_flops(B, H, G) < plan.PARALLEL_STEP_FLOPS
    assert all(plan.choose_chunks(B, H, G, threads) == 1 for threads in (1, 2, 8, 64))


def test_two_threads_split_every_large_enough_step_in_two():
    for B, H, G in itertools.product((1, 16, 32, 64, 128), (64, 128, 256, 512, 1024), (1, 3, 4)):
        want = 2 if step_flops(B, H, G) >= plan.PARALLEL_STEP_FLOPS else 1
        assert plan.choose_chunks(B, H, G, 2) == want, (B, H, G)
        assert plan.choose_chunks(B, H, G, 1) == 1


@pytest.mark.parametrize(
    ("B", "H", "G", "threads", "chunks"),
    [
        (32, 128, 4, 16, 8),  # 4.2 MFLOP: eight chunks of 0.5, not sixteen of 0.26
        (32, 128, 4, 4, 4),
        (64, 256, 4, 16, 16),  # 33.6 MFLOP: every thread
        (16, 1024, 4, 64, 64),
        (1 << 16, 8, 1, 32, 8),  # never more chunks than units
    ],
)
def test_more_threads_get_chunks_of_at_least_half_the_threshold(B, H, G, threads, chunks):
    assert plan.choose_chunks(B, H, G, threads) == chunks
    per_chunk = step_flops(B, H, G) / chunks
    assert chunks == min(threads, H) or per_chunk >= plan.PARALLEL_STEP_FLOPS // 2


def test_a_zero_threshold_splits_over_every_thread(monkeypatch):
    monkeypatch.setattr(plan, "PARALLEL_STEP_FLOPS", 0)  # as the tests force splits
    assert plan.choose_chunks(3, 37, 4, 5) == 5
    assert plan.choose_chunks(1, 3, 1, 8) == 3


def test_products_after_the_loop_use_the_threads_they_keep_busy():
    limit = driver.PARALLEL_GEMM_FLOPS
    for flops in (limit - 1, limit, 3 * limit, 100 * limit):
        assert plan.busy_threads(flops, limit, 1) == 1
        assert plan.busy_threads(flops, limit, 2) == (1 if flops < limit else 2)
    assert plan.busy_threads(limit, limit, 16) == 2
    assert plan.busy_threads(3 * limit, limit, 16) == 6
    assert plan.busy_threads(100 * limit, limit, 64) == 64


def test_rows_split_with_a_register_tile_per_thread_and_weights_that_fit():
    small = 4 * (128 + 64) * 4 * 128  # the LSTM at (B, I, H) = (32, 64, 128), fused
    assert plan.choose_row_blocks(32 * MR // 8, 128, 4, small, 2) == 2
    assert plan.choose_row_blocks(2 * MR, 128, 4, small, 2) == 2
    assert plan.choose_row_blocks(2 * MR - 1, 128, 4, small, 2) == 1  # a block without a tile
    assert plan.choose_row_blocks(4 * MR, 128, 4, small, 16) == 4  # one tile each at most
    assert plan.choose_row_blocks(4 * MR, 128, 4, small, 1) == 1
    assert plan.choose_row_blocks(4 * MR, 128, 4, plan.ROW_SPLIT_MAX_BYTES + 1, 2) == 1
    assert plan.choose_row_blocks(4 * MR, 8, 4, 4 * 8 * 32, 2) == 1  # a step too small to split


@pytest.mark.parametrize(("B", "blocks"), [(16, 2), (20, 2), (33, 3), (5, 2), (64, 4)])
def test_row_blocks_cover_every_row_once_on_tile_boundaries(B, blocks):
    bounds = plan.row_bounds(B, blocks)
    assert bounds[0] == 0
    assert bounds[-1] == B
    assert len(bounds) == blocks + 1
    sizes = [int(b) for b in bounds[1:] - bounds[:-1]]
    assert all(size >= 1 for size in sizes), sizes
    if blocks * MR <= B:
        assert all(b % MR == 0 for b in bounds[:-1]), bounds
