"""Losses (CE-1), (MSE-1) and their gradients against PyTorch and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from rnnkit.diagnostics import numerical_gradient, relative_error
from rnnkit.ops.losses import cross_entropy_sum, mse, softmax_cross_entropy


def _torch_ce(logits, targets, mask=None, ignore_index=None, reduction="mean"):
    """Reference loss and gradient from torch autograd, in float64."""
    z = torch.tensor(logits, requires_grad=True)
    V = logits.shape[-1]
    y = torch.tensor(targets)
    kwargs = {} if ignore_index is None else {"ignore_index": ignore_index}
    per = F.cross_entropy(z.reshape(-1, V), y.reshape(-1), reduction="none", **kwargs)
    if mask is None and reduction == "mean":
        loss = F.cross_entropy(z.reshape(-1, V), y.reshape(-1), **kwargs)
    else:
        w = torch.ones_like(per) if mask is None else torch.tensor(mask, dtype=per.dtype)
        w = w.reshape(-1)
        if ignore_index is not None:
            w = w * (y.reshape(-1) != ignore_index)
        loss = (per * w).sum()
        if reduction == "mean":
            loss = loss / w.sum()
    loss.backward()
    return loss.item(), z.grad.numpy()


@pytest.mark.parametrize("shape", [(4, 3, 5), (6, 7), (1, 1, 1), (1, 1, 3), (3,)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_matches_torch(shape, reduction):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=shape) * 3
    targets = rng.integers(0, shape[-1], size=shape[:-1])
    loss, d = softmax_cross_entropy(logits, targets, reduction=reduction)
    ref_loss, ref_d = _torch_ce(logits, targets, reduction=reduction)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(d, ref_d, rtol=1e-10, atol=1e-14)
    assert d.dtype == np.float64
    assert d.shape == logits.shape


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_ignore_index_matches_torch(reduction):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 3, 6))
    targets = rng.integers(0, 6, size=(5, 3))
    targets[3:, 1] = -100
    targets[4, 2] = -100
    loss, d = softmax_cross_entropy(logits, targets, ignore_index=-100, reduction=reduction)
    ref_loss, ref_d = _torch_ce(logits, targets, ignore_index=-100, reduction=reduction)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(d, ref_d, rtol=1e-10, atol=1e-14)
    assert not d[3:, 1].any()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("mask_dtype", [bool, np.float64, np.int64])
def test_cross_entropy_mask_matches_torch(reduction, mask_dtype):
    rng = np.random.default_rng(2)
    T, B, V = 4, 3, 5
    logits = rng.normal(size=(T, B, V))
    targets = rng.integers(0, V, size=(T, B))
    lengths = np.array([4, 1, 2])
    mask = (np.arange(T)[:, None] < lengths[None, :]).astype(mask_dtype)
    targets[3, 2] = 2  # also combined with an ignored id
    loss, d = softmax_cross_entropy(logits, targets, mask=mask, ignore_index=2, reduction=reduction)
    ref_loss, ref_d = _torch_ce(logits, targets, mask, ignore_index=2, reduction=reduction)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(d, ref_d, rtol=1e-10, atol=1e-14)
    assert not d[~mask.astype(bool)].any()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_finite_differences(reduction):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3, 2, 4))
    targets = rng.integers(0, 4, size=(3, 2))
    mask = np.array([[1, 1], [1, 0], [0, 1]])
    targets[0, 0] = 7
    _, d = softmax_cross_entropy(logits, targets, mask, ignore_index=7, reduction=reduction)
    num = numerical_gradient(
        lambda: softmax_cross_entropy(logits, targets, mask, 7, reduction)[0], logits
    )
    assert relative_error(d, num) < 1e-7


def test_cross_entropy_nothing_counted_gives_zero():
    logits = np.random.default_rng(4).normal(size=(2, 3, 4))
    targets = np.full((2, 3), 9)
    for reduction in ("mean", "sum"):
        loss, d = softmax_cross_entropy(logits, targets, ignore_index=9, reduction=reduction)
        assert loss == 0.0
        assert not d.any()
    loss, d = softmax_cross_entropy(logits, np.zeros((2, 3), int), mask=np.zeros((2, 3)))
    assert loss == 0.0
    assert not d.any()
    assert cross_entropy_sum(logits, targets, ignore_index=9) == (0.0, 0)


def test_cross_entropy_float32_and_extreme_logits():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(6, 5))
    targets = rng.integers(0, 5, size=6)
    loss64, d64 = softmax_cross_entropy(logits, targets)
    loss32, d32 = softmax_cross_entropy(logits.astype(np.float32), targets)
    assert d32.dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(d32, d64, atol=1e-6)
    huge = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=np.float32)
    loss, d = softmax_cross_entropy(huge, np.array([1, 1]))
    assert loss == pytest.approx(1e4, rel=1e-6)
    assert np.isfinite(d).all()
    np.testing.assert_allclose(d, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)


def test_cross_entropy_sum_aggregates_exactly():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(5, 4, 7))
    targets = rng.integers(0, 7, size=(5, 4))
    mask = rng.random((5, 4)) < 0.7
    total, count = 0.0, 0
    for b in (slice(0, 1), slice(1, 4)):
        s, n = cross_entropy_sum(logits[:, b], targets[:, b], mask=mask[:, b])
        total, count = total + s, count + n
    whole, _ = softmax_cross_entropy(logits, targets, mask=mask)
    assert count == int(mask.sum())
    assert total / count == pytest.approx(whole, rel=1e-12)
    summed, _ = softmax_cross_entropy(logits, targets, mask=mask, reduction="sum")
    assert total == pytest.approx(summed, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"targets": np.zeros((2, 3))}, TypeError, "integer class ids"),
        ({"targets": np.zeros((3, 2), int)}, ValueError, r"shape \(2, 3\)"),
        ({"targets": np.full((2, 3), 4)}, ValueError, r"\[0, V=4\).*got 4"),
        ({"targets": np.full((2, 3), -1)}, ValueError, "ignore_index"),
        ({"reduction": "none"}, ValueError, "reduction"),
        ({"mask": np.full((2, 3), 2)}, ValueError, "only 0 and 1"),
        ({"mask": np.ones((3, 2))}, ValueError, "mask"),
        ({"ignore_index": True}, TypeError, "ignore_index"),
        ({"logits": np.full((2, 3, 4), np.nan)}, ValueError, "finite"),
        ({"logits": np.zeros((2, 3, 4), int)}, TypeError, "float32 or float64"),
        ({"logits": np.zeros((2, 3, 0)), "targets": np.zeros((2, 3), int)}, ValueError, "V >= 1"),
    ],
)
def test_cross_entropy_errors(kwargs, error, match):
    args = {"logits": np.zeros((2, 3, 4)), "targets": np.zeros((2, 3), int), **kwargs}
    with pytest.raises(error, match=match):
        softmax_cross_entropy(**args)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", [(4, 3, 2), (1, 1, 1), (5,)])
def test_mse_matches_torch(reduction, shape):
    rng = np.random.default_rng(7)
    pred, target = rng.normal(size=shape), rng.normal(size=shape)
    loss, d = mse(pred, target, reduction=reduction)
    p = torch.tensor(pred, requires_grad=True)
    ref = F.mse_loss(p, torch.tensor(target), reduction=reduction)
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(d, p.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_mask_full_and_leading(reduction):
    rng = np.random.default_rng(8)
    pred, target = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2))
    lead = np.arange(4)[:, None] < np.array([4, 1, 3])[None, :]  # (T, B)
    full = np.broadcast_to(lead[..., None], pred.shape)
    p = torch.tensor(pred, requires_grad=True)
    w = torch.tensor(full, dtype=torch.float64)
    ref = (((p - torch.tensor(target)) ** 2) * w).sum()
    if reduction == "mean":
        ref = ref / w.sum()
    ref.backward()
    for mask in (lead, full, full.astype(np.float64)):
        loss, d = mse(pred, target, mask=mask, reduction=reduction)
        assert loss == pytest.approx(ref.item(), rel=1e-12)
        np.testing.assert_allclose(d, p.grad.numpy(), rtol=1e-12)
    num = numerical_gradient(lambda: mse(pred, target, lead, reduction)[0], pred)
    assert relative_error(mse(pred, target, lead, reduction)[1], num) < 1e-7


def test_mse_edge_cases_and_errors():
    pred32 = np.ones((2, 3), np.float32)
    loss, d = mse(pred32, np.zeros((2, 3), np.float32))
    assert loss == 1.0
    assert d.dtype == np.float32
    loss, d = mse(pred32, pred32 * 0, mask=np.zeros(2, bool))
    assert loss == 0.0
    assert not d.any()
    with pytest.raises(TypeError, match="dtype float32 like `pred`"):
        mse(pred32, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="shape of `pred`"):
        mse(pred32, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="leading axes"):
        mse(pred32, pred32, mask=np.ones(3))
    with pytest.raises(ValueError, match="finite"):
        mse(pred32, np.full((2, 3), np.inf, np.float32))
    with pytest.raises(ValueError, match="reduction"):
        mse(pred32, pred32, reduction="max")
