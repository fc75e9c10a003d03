"""The fused cross-entropy and the output layer's team products equal the reference.

Cross-entropy: loss, summed loss and gradient against the float64 reference over shapes
from hypothesis (V = 1, one row, masks, ignore_index, huge logits, the sum reduction), on
one thread and split over two; non-finite logits raise the reference's error. Dense
products: ``Linear`` forward and backward on the kernel path equal NumPy's, gradients
accumulating into what is already there.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit import kernels
from rnnkit.kernels import dense
from rnnkit.kernels import losses as klosses
from rnnkit.nn import Linear
from rnnkit.ops import losses as rlosses

FEW = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # monkeypatch set once
)
CASE = st.fixed_dictionaries(
    {
        "lead": st.lists(st.integers(1, 6), min_size=1, max_size=2),
        "V": st.integers(1, 40),
        "scale": st.sampled_from([0.1, 3.0, 50.0]),
        "mask": st.booleans(),
        "ignore": st.booleans(),
        "reduction": st.sampled_from(["mean", "sum"]),
        "seed": st.integers(0, 2**32 - 1),
    }
)


def _inputs(case):
    rng = np.random.default_rng(case["seed"])
    shape = tuple(case["lead"])
    z = (rng.standard_normal((*shape, case["V"])) * case["scale"]).astype(np.float32)
    y = rng.integers(0, case["V"], size=shape)
    ignore = None
    if case["ignore"]:
        ignore = -100
        y = np.where(rng.random(shape) < 0.3, ignore, y)
    mask = (rng.random(shape) < 0.7) if case["mask"] else None
    return z, y, mask, ignore


@pytest.mark.parametrize("threads", [1, 2])
@FEW
@given(case=CASE)
def test_fused_cross_entropy_equals_reference(monkeypatch, threads, case):
    assert kernels.backend().name == "numba"
    monkeypatch.setattr(klosses, "PARALLEL_CE_SIZE", 0 if threads == 2 else 1 << 40)
    z, y, mask, ignore = _inputs(case)
    red = case["reduction"]
    loss, dz = klosses.softmax_cross_entropy(z, y, mask, ignore, red)
    want, dwant = rlosses.softmax_cross_entropy(z.astype(np.float64), y, mask, ignore, red)
    assert dz.dtype == np.float32
    assert dz.shape == z.shape
    np.testing.assert_allclose(loss, want, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(dz, dwant, rtol=1e-4, atol=2e-7)
    total, count = klosses.cross_entropy_sum(z, y, mask, ignore)
    t_want, c_want = rlosses.cross_entropy_sum(z.astype(np.float64), y, mask, ignore)
    assert count == c_want
    np.testing.assert_allclose(total, t_want, rtol=2e-6, atol=1e-6)


def test_fused_cross_entropy_on_a_large_row_matches_float64():
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((30, 10_000)) * 4).astype(np.float32)
    y = rng.integers(0, 10_000, size=30)
    loss, dz = klosses.softmax_cross_entropy(z, y)
    want, dwant = rlosses.softmax_cross_entropy(z.astype(np.float64), y)
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    np.testing.assert_allclose(dz, dwant, rtol=1e-4, atol=1e-9)
    assert abs(float(dz.sum(dtype=np.float64))) < 1e-5  # each row of p − onehot sums to 0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fused_cross_entropy_refuses_non_finite_logits(bad):
    z = np.zeros((4, 9), np.float32)
    z[2, 7] = bad
    with pytest.raises(ValueError, match=r"`logits` must be finite.*index \(2, 7\)"):
        klosses.softmax_cross_entropy(z, np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="must be finite"):
        klosses.cross_entropy_sum(z, np.zeros(4, np.int64))


def test_float64_and_reference_mode_run_the_reference(monkeypatch):
    calls = []
    monkeypatch.setattr(klosses, "_run", lambda *a: calls.append(a))
    z, y = np.zeros((2, 3)), np.array([0, 2])
    assert klosses.softmax_cross_entropy(z, y)[0] == pytest.approx(np.log(3))
    with kernels.use_reference():
        klosses.cross_entropy_sum(z.astype(np.float32), y)
    assert calls == []


@pytest.mark.parametrize("threads", [1, 2])
def test_linear_on_the_team_equals_numpy(monkeypatch, threads):
    monkeypatch.setattr(dense, "PARALLEL_DENSE_FLOPS", 0 if threads == 2 else 1 << 60)
    rng = np.random.default_rng(1)
    lin = Linear(13, 37, rng=0)
    x = rng.standard_normal((3, 5, 13)).astype(np.float32)
    dy = rng.standard_normal((3, 5, 37)).astype(np.float32)
    lin.weight.grad[...] = 1.0  # backward accumulates
    y = lin(x)
    dx = lin.backward(dy)
    W = lin.weight.data.astype(np.float64)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    np.testing.assert_allclose(y, x64 @ W.T + lin.bias.data, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, dy64 @ W, rtol=1e-5, atol=1e-5)
    dW = 1.0 + dy64.reshape(-1, 37).T @ x64.reshape(-1, 13)
    np.testing.assert_allclose(lin.weight.grad, dW, rtol=1e-5, atol=1e-5)


def test_dense_products_fall_back_to_numpy_for_float64():
    a, w = np.ones((2, 3)), np.ones((4, 3))
    out = np.zeros((4, 3))
    assert dense.matmul_nt(a, w).dtype == np.float64
    assert dense.matmul_nn(np.ones((2, 4)), w).shape == (2, 3)
    dense.matmul_tn_acc(out, np.ones((2, 4)), a)
    np.testing.assert_array_equal(out, np.full((4, 3), 2.0))
