"""Linear (LIN-1), Embedding (EMB-1), Dropout (DROP-1): PyTorch, finite differences, protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.diagnostics import gradcheck_module, numerical_gradient
from rnnkit.nn.layers import Dropout, Embedding, Linear


def _t(a):
    return torch.tensor(a)


# -- Linear -------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", [(4, 3, 5), (2, 5), (5,), (1, 1, 1, 5), (0, 5)])
def test_linear_matches_torch(bias, x_shape):
    rng = np.random.default_rng(0)
    lin = Linear(5, 3, bias=bias, rng=1, dtype=np.float64)
    ref = torch.nn.Linear(5, 3, bias=bias, dtype=torch.float64)
    ref.load_state_dict({k: _t(v) for k, v in lin.state_dict().items()})
    x = rng.normal(size=x_shape)
    dy = rng.normal(size=(*x_shape[:-1], 3))
    xt = _t(x).requires_grad_(True)
    yt = ref(xt)
    yt.backward(_t(dy))
    y = lin(x)
    dx = lin.backward(dy)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lin.weight.grad, ref.weight.grad.numpy(), rtol=1e-12, atol=1e-14)
    if bias:
        np.testing.assert_allclose(lin.bias.grad, ref.bias.grad.numpy(), rtol=1e-12, atol=1e-14)
    else:
        assert lin.bias is None
        assert list(lin.state_dict()) == ["weight"]


def test_linear_init_like_torch():
    lin = Linear(400, 300, rng=0)
    k = 1 / np.sqrt(400)
    assert lin.weight.shape == (300, 400)
    assert lin.bias.shape == (300,)
    assert lin.weight.data.dtype == np.float32
    for w in (lin.weight.data, lin.bias.data):
        assert np.abs(w).max() <= k
    assert lin.weight.data.std() == pytest.approx(k / np.sqrt(3), rel=0.02)
    assert lin.bias.data.std() == pytest.approx(k / np.sqrt(3), rel=0.2)
    np.testing.assert_array_equal(Linear(400, 300, rng=0).weight.data, lin.weight.data)
    assert not np.array_equal(Linear(400, 300, rng=1).weight.data, lin.weight.data)
    torch_lin = torch.nn.Linear(400, 300)
    lin.load_state_dict(torch_lin.state_dict())  # torch names load as they are
    np.testing.assert_array_equal(lin.weight.data, torch_lin.weight.detach().numpy())


@pytest.mark.parametrize(("in_f", "out_f", "x_shape"), [(4, 3, (2, 3, 4)), (1, 1, (1, 1))])
def test_linear_gradcheck(in_f, out_f, x_shape):
    lin = Linear(in_f, out_f, rng=2).astype(np.float64)
    x = np.random.default_rng(3).normal(size=x_shape)
    report = gradcheck_module(lin, (x,))
    assert [e.name for e in report] == ["weight", "bias", "input0"]
    assert report.ok(1e-7), str(report)


def test_linear_errors_leave_state_unchanged():
    lin = Linear(3, 2, rng=0)
    x = np.ones((4, 3), np.float32)
    for bad, error, match in [
        (np.ones((4, 2), np.float32), ValueError, r"shape \(\.\.\., 3\)"),
        (np.ones((4, 3)), TypeError, "dtype float32"),
        (np.ones((4, 3), np.int64), TypeError, "float32 or float64"),
        (np.full((4, 3), np.nan, np.float32), ValueError, "finite"),
        (np.float32(1.0), TypeError, "NumPy array"),
    ]:
        with pytest.raises(error, match=match):
            lin(bad)
        assert lin.pending() == 0
    lin(x)
    with pytest.raises(ValueError, match=r"shape \(4, 2\)"):
        lin.backward(np.ones((4, 3), np.float32))
    assert lin.pending() == 1
    assert not lin.weight.grad.any()
    assert lin.backward(np.ones((4, 2), np.float32)).shape == (4, 3)
    with pytest.raises(TypeError, match="int"):
        Linear(3.0, 2)
    with pytest.raises(ValueError, match=">= 1"):
        Linear(0, 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        Linear(3, 2, dtype=np.int32)


# -- Embedding ----------------------------------------------------------------------
@pytest.mark.parametrize("padding_idx", [None, 0, 3, -1])
def test_embedding_matches_torch(padding_idx):
    rng = np.random.default_rng(4)
    emb = Embedding(6, 3, padding_idx=padding_idx, rng=5, dtype=np.float64)
    ref = torch.nn.Embedding(6, 3, padding_idx=padding_idx, dtype=torch.float64)
    ref.load_state_dict({k: _t(v) for k, v in emb.state_dict().items()})
    ids = np.array([[1, 3, 3, 0], [5, 1, 3, 1], [0, 0, 2, 5]])  # repeated ids
    dy = rng.normal(size=(3, 4, 3))
    yt = ref(torch.tensor(ids))
    yt.backward(_t(dy))
    y = emb(ids)
    assert emb.backward(dy) is None
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_allclose(emb.weight.grad, ref.weight.grad.numpy(), rtol=1e-12, atol=1e-15)
    if padding_idx is not None:
        assert emb.padding_idx == padding_idx % 6
        assert not emb.weight.data[padding_idx].any()
        assert not emb.weight.grad[padding_idx].any()


def test_embedding_init_and_shapes():
    emb = Embedding(1000, 50, rng=0)
    assert emb.weight.data.dtype == np.float32
    assert emb.weight.data.mean() == pytest.approx(0.0, abs=0.01)
    assert emb.weight.data.std() == pytest.approx(1.0, rel=0.01)
    assert emb(np.array(7)).shape == (50,)
    assert emb(np.zeros((2, 3, 4), np.uint8)).shape == (2, 3, 4, 50)
    assert emb(np.zeros((0, 2), int)).shape == (0, 2, 50)
    emb.clear_cache()
    one = Embedding(1, 1, padding_idx=0)
    np.testing.assert_array_equal(one(np.zeros((1, 1), int)), [[[0.0]]])


def test_embedding_gradcheck_repeated_ids_and_padding():
    emb = Embedding(5, 2, padding_idx=1, rng=6).astype(np.float64)
    emb.weight.data[1] = 0.5  # the padding row is frozen, not necessarily zero
    ids = np.array([[0, 3, 4], [4, 4, 0]])
    report = gradcheck_module(emb, (ids,))
    assert [e.name for e in report] == ["weight"]  # ids have no gradient
    assert report.ok(1e-7), str(report)
    # With padding ids present, only the frozen padding row departs from the derivative.
    ids = np.array([[0, 1, 4], [4, 4, 1]])
    dy = np.random.default_rng(7).normal(size=(2, 3, 2))
    emb.zero_grad()
    emb(ids)
    emb.backward(dy)
    num = numerical_gradient(lambda: float(np.sum(dy * emb(ids))), emb.weight.data)
    emb.clear_cache()
    rows = [0, 2, 3, 4]
    np.testing.assert_allclose(emb.weight.grad[rows], num[rows], atol=1e-8)
    assert not emb.weight.grad[1].any()
    assert np.abs(num[1]).max() > 0.1


def test_embedding_errors_leave_state_unchanged():
    emb = Embedding(4, 2, rng=0)
    for bad, error, match in [
        (np.array([0.0, 1.0]), TypeError, "integer token ids"),
        (np.array([True]), TypeError, "integer token ids"),
        (np.array([0, 4]), ValueError, r"\[0, num_embeddings=4\).*max 4"),
        (np.array([-1, 2]), ValueError, "min -1"),
    ]:
        with pytest.raises(error, match=match):
            emb(bad)
        assert emb.pending() == 0
    emb(np.array([1, 2]))
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        emb.backward(np.ones((2, 3), np.float32))
    assert emb.pending() == 1
    with pytest.raises(ValueError, match="padding_idx"):
        Embedding(4, 2, padding_idx=4)
    with pytest.raises(TypeError, match="padding_idx"):
        Embedding(4, 2, padding_idx=1.0)


# -- Dropout ------------------------------------------------------------------------
def test_dropout_seeded_training_eval_and_mask_reuse():
    x = np.random.default_rng(7).normal(size=(20, 30))
    a, b = Dropout(0.3, rng=11), Dropout(0.3, rng=11)
    ya, yb = a(x), b(x)
    np.testing.assert_array_equal(ya, yb)  # same seed, same mask
    assert not np.array_equal(a(x), ya)  # the next call draws a fresh mask
    np.testing.assert_array_equal(Dropout(0.3)(x), Dropout(0.3, rng=0)(x))  # default seed 0
    kept = ya != 0
    np.testing.assert_allclose(ya[kept], x[kept] / 0.7, rtol=1e-15)
    dy = np.random.default_rng(8).normal(size=x.shape)
    a.backward(dy)  # pops the second call
    dx = a.backward(dy)  # the first call's mask, (DROP-1')
    np.testing.assert_allclose(dx, np.where(kept, dy / 0.7, 0.0), rtol=1e-15)
    a.eval()
    assert a(x) is x
    assert a.pending() == 0
    with pytest.raises(RuntimeError, match="eval mode"):
        a.backward(dy)


def test_dropout_keep_rate_and_scale_match_torch():
    p = 0.25
    y = Dropout(p, rng=3)(np.ones(200_000, np.float32))
    yt = torch.nn.functional.dropout(torch.ones(200_000), p=p, training=True).numpy()
    assert y.dtype == np.float32
    assert sorted(set(y.tolist())) == sorted(set(yt.tolist()))  # {0, 1/(1 − p)}
    assert np.mean(y != 0) == pytest.approx(1 - p, abs=0.005)
    assert y.mean() == pytest.approx(1.0, abs=0.01)  # inverted: expectation kept


def test_dropout_backward_matches_torch_with_the_same_mask():
    x = np.random.default_rng(9).normal(size=(3, 4, 5))
    drop = Dropout(0.5, rng=1)
    y = drop(x)
    dy = np.random.default_rng(10).normal(size=x.shape)
    dx = drop.backward(dy)
    xt = _t(x).requires_grad_(True)
    (xt * _t((y != 0).astype(float)) / 0.5).backward(_t(dy))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-15)


def test_dropout_p0_identity_and_gradcheck_policy():
    x = np.random.default_rng(12).normal(size=(2, 3))
    zero = Dropout(0.0)
    assert zero(x) is x
    assert zero.pending() == 1  # still recorded, so backward balances
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        zero.backward(np.ones((3, 2)))
    np.testing.assert_array_equal(zero.backward(np.ones((2, 3))), np.ones((2, 3)))
    assert gradcheck_module(zero, (x,)).ok()
    with pytest.raises(ValueError, match="Dropout"):
        gradcheck_module(Dropout(0.1), (x,))
    for p, error in [(1.0, ValueError), (-0.1, ValueError), ("0.5", TypeError), (True, TypeError)]:
        with pytest.raises(error, match="`p`"):
            Dropout(p)


# -- the module protocol, for every layer -------------------------------------------
def _cases():
    x1 = np.random.default_rng(13).normal(size=(2, 3))
    x2 = np.random.default_rng(14).normal(size=(5, 3))
    return [
        ("Linear", lambda: Linear(3, 4, rng=0, dtype=np.float64), x1, x2, (2, 4), (5, 4)),
        ("Embedding", lambda: Embedding(7, 2, rng=0), np.array([1, 2]), np.array([[3, 1, 1]]),
         (2, 2), (1, 3, 2)),
        ("Dropout", lambda: Dropout(0.4, rng=0), x1, x2, (2, 3), (5, 3)),
    ]  # fmt: skip


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_protocol_backward_without_forward_names_module(case):
    name, make, *_ = case
    with pytest.raises(RuntimeError, match=f"{name}.backward called with no forward"):
        make().backward(np.ones((2, 2)))


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_protocol_eval_pushes_nothing(case):
    _, make, x1, *_ = case
    m = make().eval()
    m(x1)
    assert m.pending() == 0


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_protocol_two_calls_backpropagate_newest_first(case):
    _, make, x1, x2, s1, s2 = case
    m, once1, once2 = make(), make(), make()
    y1, y2 = m(x1), m(x2)
    np.testing.assert_array_equal(once1(x1), y1)
    dy1 = np.random.default_rng(15).normal(size=s1)
    dy2 = np.random.default_rng(16).normal(size=s2)
    with pytest.raises(ValueError, match="shape"):
        m.backward(dy1)  # the newest call is the second one
    d2 = m.backward(dy2)
    d1 = m.backward(dy1)
    assert m.pending() == 0
    d1_ref = once1.backward(dy1)
    if isinstance(m, Dropout):  # each call drew its own mask
        np.testing.assert_allclose(d2, np.where(y2 != 0, dy2 / 0.6, 0.0), rtol=1e-15)
        np.testing.assert_allclose(d1, np.where(y1 != 0, dy1 / 0.6, 0.0), rtol=1e-15)
        return
    np.testing.assert_array_equal(once2(x2), y2)
    d2_ref = once2.backward(dy2)
    if d2 is not None:
        np.testing.assert_allclose(d2, d2_ref, rtol=1e-12)
        np.testing.assert_allclose(d1, d1_ref, rtol=1e-12)
    else:
        assert d1 is None
        assert d1_ref is None
    for (_, p), (_, p1), (_, p2) in zip(
        m.named_parameters(), once1.named_parameters(), once2.named_parameters(), strict=True
    ):
        np.testing.assert_allclose(p.grad, p1.grad + p2.grad, rtol=1e-6)


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_protocol_state_dict_round_trip_and_strict_errors(case):
    _, make, *_ = case
    m = make()
    sd = m.state_dict()
    other = make()
    for p in other.parameters():
        p.data = p.data + 1.0
    other.load_state_dict(sd)
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    for v in sd.values():
        v += 5.0  # the state dict is a copy
    assert all(not np.array_equal(v, sd[k]) for k, v in m.state_dict().items())
    before = m.state_dict()
    bad_dicts = [({**before, "extra": np.zeros(1)}, KeyError)]
    if before:
        first = next(iter(before))
        bad_dicts += [
            ({k: v for k, v in before.items() if k != first}, KeyError),
            ({**before, first: np.zeros((9, 9))}, ValueError),
            ({**{k: v + 1 for k, v in before.items()}, "extra": np.zeros(1)}, KeyError),
        ]
    for bad, error in bad_dicts:
        with pytest.raises(error):
            m.load_state_dict(bad)
        for k, v in m.state_dict().items():
            np.testing.assert_array_equal(v, before[k])
