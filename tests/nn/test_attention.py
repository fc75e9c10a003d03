"""Attention modules: the seed's equations literally, finite differences, masks, the protocol."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.diagnostics import gradcheck_module
from rnnkit.nn.attention import (
    AdditiveAttention,
    AttentionMemory,
    DotAttention,
    GeneralAttention,
    MemoryGrad,
    make_attention,
)

RNG = np.random.default_rng(42)


def modules(dtype=np.float64):
    return {
        "additive": AdditiveAttention(4, 4, 3, rng=1, dtype=dtype),
        "additive no bias": AdditiveAttention(4, 4, 3, bias=False, rng=2, dtype=dtype),
        "dot": DotAttention(4, dtype=dtype),
        "scaled dot": DotAttention(4, scaled=True, dtype=dtype),
        "general": GeneralAttention(4, 4, rng=3, dtype=dtype),
    }


def test_seed_equations_written_literally_match_additive_attention():
    """e_t = vᵀ tanh(W_q q + W_x x_t), α = softmax(e), attn(q, x) = Σ_t α_t x_t."""
    attn = AdditiveAttention(3, 5, 4, bias=False, rng=0, dtype=np.float64)
    W_q, W_x, v = attn.weight_query.data, attn.weight_key.data, attn.v.data
    S, B = 6, 3
    q, x = RNG.normal(size=(B, 3)), RNG.normal(size=(S, B, 5))
    context, weights = attn(q, x)
    for b in range(B):
        e = np.array([v @ np.tanh(W_q @ q[b] + W_x @ x[t, b]) for t in range(S)])
        alpha = np.exp(e) / np.sum(np.exp(e))
        attn_qx = sum(alpha[t] * x[t, b] for t in range(S))
        np.testing.assert_allclose(weights[b], alpha, rtol=1e-12)
        np.testing.assert_allclose(context[b], attn_qx, rtol=1e-12)


@pytest.mark.parametrize("name", list(modules()))
@pytest.mark.parametrize("values", [False, True], ids=["values=keys", "separate values"])
@pytest.mark.parametrize("Q", [None, 3])
def test_finite_differences_with_mask(name, values, Q):
    attn = modules()[name]
    S, B = 5, 3
    q = RNG.normal(size=(B, 4) if Q is None else (Q, B, 4))
    x = RNG.normal(size=(S, B, 4))
    inputs = (q, x, RNG.normal(size=(S, B, 2)) if values else None, np.array([5, 2, 1]))
    report = gradcheck_module(attn, inputs)
    assert report.ok(1e-6), str(report)
    assert attn.pending() == 0


@pytest.mark.parametrize("name", list(modules()))
def test_memory_once_attend_many_times(name):
    """The decoder's pattern: one memory, k attends, k attend_backwards, one memory_backward."""
    attn = modules()[name]
    S, B, k = 4, 2, 3
    x, y = RNG.normal(size=(S, B, 4)), RNG.normal(size=(S, B, 3))
    qs = [RNG.normal(size=(B, 4)) for _ in range(k)]

    def forward(mod, x, y, *qs):
        mem = mod.memory(x, y, lengths=np.array([4, 2]))
        return tuple(o for q in qs for o in mod.attend(q, mem))

    def backward(mod, d):
        dqs, dmem = [], None
        for j in reversed(range(k)):
            dq, g = mod.attend_backward(d[2 * j], d[2 * j + 1])
            dqs.insert(0, dq)
            dmem = g if dmem is None else dmem + g
        dx, dy = mod.memory_backward(dmem)
        return (dx, dy, *dqs)

    report = gradcheck_module(attn, (x, y, *qs), forward=forward, backward=backward)
    assert report.ok(1e-6), str(report)


@pytest.mark.parametrize("name", list(modules()))
def test_masked_keys_zero_weight_and_zero_gradient(name):
    attn = modules()[name]
    S, B = 5, 3
    lengths = np.array([5, 3, 1])
    pad = np.arange(S)[:, None] >= lengths[None, :]
    x, y = RNG.normal(size=(S, B, 4)), RNG.normal(size=(S, B, 2))
    c, w = attn(RNG.normal(size=(2, B, 4)), x, y, lengths=lengths)
    assert (w.transpose(2, 1, 0)[pad] == 0).all()
    _dq, dx, dy = attn.backward(RNG.normal(size=c.shape), RNG.normal(size=w.shape))
    assert (dx[pad] == 0).all()
    assert (dy[pad] == 0).all()
    params = dict(attn.named_parameters())
    noisy_x = x + 50 * pad[:, :, None]
    attn.zero_grad()
    c2, _w2 = attn(RNG.normal(size=(2, B, 4)), noisy_x, y, lengths=lengths)
    attn.backward(np.ones_like(c2))
    assert all(np.isfinite(p.grad).all() for p in params.values())


def test_fully_masked_row_raises_and_records_nothing():
    attn = AdditiveAttention(4, 4, rng=0, dtype=np.float64)
    x = RNG.normal(size=(3, 2, 4))
    with pytest.raises(ValueError, match="sequence 1 has all of its keys masked"):
        attn(RNG.normal(size=(2, 4)), x, lengths=np.array([3, 0]))
    with pytest.raises(ValueError, match="sequence 0 has all of its keys masked"):
        attn.memory(x, mask=np.array([[False] * 3, [True] * 3]))
    assert attn.pending() == 0


def test_protocol_errors_name_the_module():
    attn = GeneralAttention(4, 4, rng=0)
    x = RNG.normal(size=(3, 2, 4)).astype(np.float32)
    with pytest.raises(RuntimeError, match=r"GeneralAttention\.backward called with no forward"):
        attn.backward(np.ones((2, 4), np.float32))
    mem = attn.memory(x)
    attn.attend(np.ones((2, 4), np.float32), mem)
    with pytest.raises(RuntimeError, match="backpropagate every attend"):
        attn.memory_backward(MemoryGrad(np.zeros((3, 2, 4)), np.zeros((3, 2, 4))))
    with pytest.raises(ValueError, match="`dcontext` must have shape"):
        attn.attend_backward(np.ones((3, 4), np.float32))
    assert attn.pending() == 2  # the failed calls changed nothing
    attn.attend_backward(np.ones((2, 4), np.float32))
    with pytest.raises(TypeError, match="`dmemory` must be a MemoryGrad"):
        attn.memory_backward((np.zeros((3, 2, 4)),))
    attn.clear_cache()
    attn.eval()
    attn(np.ones((2, 4), np.float32), x)
    assert attn.pending() == 0


def test_bad_inputs():
    attn = AdditiveAttention(4, 6, rng=0)
    x = np.zeros((3, 2, 6), np.float32)
    with pytest.raises(ValueError, match="key_size=6"):
        attn.memory(np.zeros((3, 2, 5), np.float32))
    with pytest.raises(TypeError, match="`keys` must have dtype float32"):
        attn.memory(x.astype(np.float64))
    with pytest.raises(ValueError, match="query_size=4"):
        attn(np.zeros((2, 5), np.float32), x)
    assert attn.pending() == 0
    with pytest.raises(TypeError, match="AttentionMemory"):
        attn.attend(np.zeros((2, 4), np.float32), x)
    with pytest.raises(ValueError, match="needs query_size == key_size"):
        make_attention("dot", 4, 6)
    with pytest.raises(ValueError, match="`kind` must be one of"):
        make_attention("cosine", 4, 4)
    with pytest.raises(ValueError, match="`attention_size` must be a positive integer"):
        AdditiveAttention(4, 4, 0)


def test_parameters_state_dict_and_dtype():
    a = AdditiveAttention(4, 6, 5, rng=0)
    assert {k: p.shape for k, p in a.named_parameters()} == {
        "weight_query": (5, 4),
        "weight_key": (5, 6),
        "bias": (5,),
        "v": (5,),
    }
    assert all(p.data.dtype == np.float32 for p in a.parameters())
    b = AdditiveAttention(4, 6, 5, rng=1)
    b.load_state_dict(a.state_dict())
    q, x = np.ones((2, 4), np.float32), RNG.normal(size=(3, 2, 6)).astype(np.float32)
    np.testing.assert_array_equal(a(q, x)[0], b(q, x)[0])
    assert list(dict(GeneralAttention(3, 5).named_parameters())) == ["weight"]
    assert DotAttention(3).parameters() == []
    assert "AdditiveAttention" in repr(a)


def test_memory_take_selects_batch_entries():
    attn = AdditiveAttention(4, 4, rng=0, dtype=np.float64)
    attn.eval()
    x = RNG.normal(size=(3, 2, 4))
    mem = attn.memory(x, lengths=np.array([3, 1]))
    tiled = mem.take(np.array([1, 1, 0]))
    assert isinstance(tiled, AttentionMemory)
    q = RNG.normal(size=(2, 4))
    c, w = attn.attend(q, mem)
    c3, w3 = attn.attend(q[[1, 1, 0]], tiled)
    np.testing.assert_allclose(c3, c[[1, 1, 0]], rtol=1e-12)
    np.testing.assert_allclose(w3, w[[1, 1, 0]], rtol=1e-12)
