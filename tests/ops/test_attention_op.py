"""Attention ops: finite differences, float64 PyTorch twins, masking, edge shapes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.diagnostics import gradcheck_op
from rnnkit.ops.attention import (
    additive_attention_backward,
    additive_attention_forward,
    attend_forward,
    attention_mask,
    dot_attention_backward,
    dot_attention_forward,
    general_attention_backward,
    general_attention_forward,
    masked_softmax_forward,
)

PARAM_GRAD = {"W_q": "dW_q", "W_x": "dW_x", "v": "dv", "b": "db", "W": "dW_x"}


def make_case(rng, kind, S=5, B=3, Q=None, Dq=4, Dk=4, Dv=None, A=3, bias=True):
    """Float64 inputs of one scorer; nonzero biases; ``Dv`` None means values are the keys."""
    qshape = (B, Dq) if Q is None else (Q, B, Dq)
    arrays = {"query": rng.normal(size=qshape), "keys": rng.normal(size=(S, B, Dk))}
    if Dv is not None:
        arrays["values"] = rng.normal(size=(S, B, Dv))
    if kind == "additive":
        arrays.update(
            W_q=rng.normal(size=(A, Dq)),
            W_x=rng.normal(size=(A, Dk)),
            v=rng.normal(size=A),
            b=0.5 * rng.normal(size=A) if bias else None,
        )
    elif kind == "general":
        arrays["W"] = 0.7 * rng.normal(size=(Dq, Dk))
    return arrays


def ops(kind):
    if kind == "additive":
        return additive_attention_forward, additive_attention_backward, {}
    if kind == "general":
        return general_attention_forward, general_attention_backward, {}
    return dot_attention_forward, dot_attention_backward, {"scaled": kind == "scaled"}


def grad_dict(g, arrays):
    out = {"query": g.dquery, "keys": g.dkeys}
    if "values" in arrays:
        out["values"] = g.dvalues
    for name in arrays:
        if name in PARAM_GRAD:
            out[name] = getattr(g, PARAM_GRAD[name])
    return out


def ragged(rng, S, B):
    lengths = rng.integers(1, S + 1, size=B)
    lengths[rng.permutation(B)[:2]] = [1, S]
    return lengths


KINDS = ["additive", "dot", "scaled", "general"]
SHAPES = {  # (S, B, Q, Dv)
    "single query, values = keys": (5, 3, None, None),
    "Q=3 queries, separate values": (4, 3, 3, 2),
    "S=1": (1, 2, None, None),
    "B=1": (4, 1, 2, 3),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_finite_differences_with_mask(kind, shape, rng):
    S, B, Q, Dv = SHAPES[shape]
    arrays = make_case(rng, kind, S=S, B=B, Q=Q, Dv=Dv)
    lengths = ragged(rng, S, B) if B >= 2 else np.array([max(S - 1, 1)])
    fwd, bwd, extra = ops(kind)

    def forward(**a):
        c, w, cache = fwd(**a, lengths=lengths, **extra)
        return (c, w), cache

    def backward(d, cache):
        return grad_dict(bwd(d[0], d[1], cache), arrays)

    report = gradcheck_op(forward, backward, arrays)
    assert report.ok(1e-7), str(report)


def test_finite_differences_additive_without_bias_and_A1(rng):
    arrays = make_case(rng, "additive", A=1, bias=False, Dq=1, Dk=2)
    arrays.pop("b")
    lengths = np.array([5, 2, 1])

    def forward(**a):
        c, w, cache = additive_attention_forward(**a, lengths=lengths)
        return (c, w), cache

    def backward(d, cache):
        g = additive_attention_backward(d[0], d[1], cache)
        assert g.db is None
        return grad_dict(g, arrays)

    report = gradcheck_op(forward, backward, arrays)
    assert report.ok(1e-6), str(report)


# -- float64 PyTorch twins ---------------------------------------------------------
def torch_attention(kind, t, lengths, S):
    """The same formulas in torch: scores, masked softmax, weighted sum."""
    q = t["query"] if t["query"].dim() == 3 else t["query"][None]  # (Q, B, Dq)
    x = t["keys"]  # (S, B, Dk)
    y = t.get("values", x)
    if kind == "additive":
        k = torch.einsum("sbd,ad->sba", x, t["W_x"])
        if t.get("b") is not None:
            k = k + t["b"]
        pq = torch.einsum("qbd,ad->qba", q, t["W_q"])
        u = torch.tanh(pq[:, :, None, :] + k.permute(1, 0, 2)[None])
        e = u @ t["v"]
    else:
        k = torch.einsum("sbd,ed->sbe", x, t["W"]) if kind == "general" else x
        e = torch.einsum("qbd,sbd->qbs", q, k)
        if kind == "scaled":
            e = e / np.sqrt(x.shape[-1])
    pad = torch.arange(S)[None, :] >= torch.from_numpy(lengths)[:, None]  # (B, S)
    alpha = torch.softmax(e.masked_fill(pad[None], float("-inf")), dim=-1)
    c = torch.einsum("qbs,sbd->qbd", alpha, y)
    if t["query"].dim() == 2:
        return c[0], alpha[0]
    return c, alpha


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("Q", [None, 3])
def test_matches_torch_float64(kind, Q, rng):
    S, B = 6, 4
    arrays = make_case(rng, kind, S=S, B=B, Q=Q, Dv=5 if Q else None, Dq=4, Dk=4)
    lengths = ragged(rng, S, B)
    fwd, bwd, extra = ops(kind)
    c, w, cache = fwd(**arrays, lengths=lengths, **extra)
    wc, ww = rng.normal(size=c.shape), rng.normal(size=w.shape)
    grads = grad_dict(bwd(wc, ww, cache), arrays)

    t = {k: None if a is None else torch.tensor(a, requires_grad=True) for k, a in arrays.items()}
    tc, tw = torch_attention(kind, t, lengths, S)
    np.testing.assert_allclose(c, tc.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-12, atol=1e-13)
    ((tc * torch.from_numpy(wc)).sum() + (tw * torch.from_numpy(ww)).sum()).backward()
    assert set(grads) == {k for k, a in arrays.items() if a is not None}
    for name, g in grads.items():
        np.testing.assert_allclose(g, t[name].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_general_with_unequal_query_and_key_sizes_matches_torch(rng):
    S, B = 4, 2
    arrays = make_case(rng, "general", S=S, B=B, Dq=3, Dk=5)
    lengths = np.array([4, 2])
    c, _w, cache = general_attention_forward(**arrays, lengths=lengths)
    grads = grad_dict(general_attention_backward(np.ones_like(c), None, cache), arrays)
    t = {k: torch.tensor(a, requires_grad=True) for k, a in arrays.items()}
    tc, _ = torch_attention("general", t, lengths, S)
    tc.sum().backward()
    for name, g in grads.items():
        np.testing.assert_allclose(g, t[name].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


# -- masking -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_masked_keys_get_zero_weight_and_zero_gradient(kind, rng):
    S, B = 5, 3
    arrays = make_case(rng, kind, S=S, B=B, Q=2, Dv=3)
    lengths = np.array([5, 2, 1])
    pad = np.arange(S)[:, None] >= lengths[None, :]  # (S, B)
    fwd, bwd, extra = ops(kind)
    c, w, cache = fwd(**arrays, lengths=lengths, **extra)
    assert (w.transpose(2, 1, 0)[pad] == 0).all()
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-14)
    g = bwd(rng.normal(size=c.shape), rng.normal(size=w.shape), cache)
    assert (g.dkeys[pad] == 0).all()
    assert (g.dvalues[pad] == 0).all()
    # Garbage in the padded keys and values changes nothing at all.
    noisy = dict(arrays)
    noisy["keys"] = arrays["keys"] + 1e3 * pad[:, :, None] * rng.normal(size=arrays["keys"].shape)
    noisy["values"] = arrays["values"] + 1e3 * pad[:, :, None]
    c2, w2, _ = fwd(**noisy, lengths=lengths, **extra)
    np.testing.assert_array_equal(c2, c)
    np.testing.assert_array_equal(w2, w)


def test_mask_argument_equals_lengths(rng):
    arrays = make_case(rng, "additive", S=4, B=2)
    lengths = np.array([3, 1])
    mask = np.arange(4)[None, :] < lengths[:, None]
    c1, w1, _ = additive_attention_forward(**arrays, lengths=lengths)
    c2, w2, _ = additive_attention_forward(**arrays, mask=mask)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(w1, w2)


@pytest.mark.parametrize(
    "kwargs",
    [{"lengths": np.array([3, 0])}, {"mask": np.array([[True, False, False], [False] * 3])}],
    ids=["lengths", "mask"],
)
def test_fully_masked_row_is_an_error(kwargs, rng):
    arrays = make_case(rng, "dot", S=3, B=2)
    with pytest.raises(ValueError, match="sequence 1 has all of its keys masked"):
        dot_attention_forward(**arrays, **kwargs)


def test_no_padding_gives_no_mask():
    assert attention_mask(np.array([3, 3]), None, 3, 2) is None
    assert attention_mask(None, None, 3, 2) is None


def test_softmax_is_stable_for_huge_scores():
    e = np.array([[[1e4, 1e4 - 1.0, -1e4]]])
    w = masked_softmax_forward(e, None)
    assert np.isfinite(w).all()
    np.testing.assert_allclose(w[0, 0], [1 / (1 + np.exp(-1)), 1 / (1 + np.e), 0.0], atol=1e-15)


def test_float32_stays_float32_and_close_to_float64(rng):
    arrays = make_case(rng, "additive", S=5, B=3, Q=2, Dv=2)
    lengths = np.array([5, 3, 1])
    a32 = {k: v.astype(np.float32) for k, v in arrays.items()}
    c64, _w64, k64 = additive_attention_forward(**arrays, lengths=lengths)
    c32, w32, k32 = additive_attention_forward(**a32, lengths=lengths)
    assert c32.dtype == w32.dtype == np.float32
    np.testing.assert_allclose(c32, c64, rtol=1e-4, atol=1e-5)
    g64 = additive_attention_backward(np.ones_like(c64), None, k64)
    g32 = additive_attention_backward(np.ones_like(c32), None, k32)
    for name, a in g32._asdict().items():
        if a is not None:
            assert a.dtype == np.float32, name
            np.testing.assert_allclose(a, getattr(g64, name), rtol=1e-3, atol=1e-4, err_msg=name)


def test_cache_is_read_only_and_backward_repeatable(rng):
    arrays = make_case(rng, "additive")
    c, _w, cache = additive_attention_forward(**arrays, lengths=np.array([5, 4, 2]))
    for arr in (cache.attend.weights, cache.attend.u, cache.attend.keys_proj):
        assert not arr.flags.writeable
    g1 = additive_attention_backward(np.ones_like(c), None, cache)
    g2 = additive_attention_backward(np.ones_like(c), None, cache)
    for a, b in zip(g1, g2, strict=True):
        if a is not None:
            np.testing.assert_array_equal(a, b)


def test_bad_inputs_name_the_argument(rng):
    a = make_case(rng, "additive", S=3, B=2)
    with pytest.raises(ValueError, match=r"`query` must have shape \(B, Dq\)"):
        additive_attention_forward(**{**a, "query": a["query"][:1]})
    with pytest.raises(ValueError, match="`keys` must have 3 dimensions"):
        additive_attention_forward(**{**a, "keys": a["keys"][0]})
    with pytest.raises(ValueError, match="`W_q` must have shape"):
        additive_attention_forward(**{**a, "W_q": a["W_q"][:, :-1].T})
    with pytest.raises(TypeError, match="`v` must have dtype float64"):
        additive_attention_forward(**{**a, "v": a["v"].astype(np.float32)})
    with pytest.raises(ValueError, match=r"`lengths` must be in \[0, S=3\]"):
        additive_attention_forward(**a, lengths=np.array([4, 1]))
    with pytest.raises(TypeError, match="`lengths` must hold integers"):
        additive_attention_forward(**a, lengths=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="not both"):
        additive_attention_forward(**a, lengths=np.array([1, 2]), mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="`values` must have shape"):
        additive_attention_forward(**a, values=rng.normal(size=(2, 2, 3)))
    bad = a["keys"].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="`keys` must be finite"):
        additive_attention_forward(**{**a, "keys": bad})
    d = make_case(rng, "dot", Dq=3, Dk=4)
    with pytest.raises(ValueError, match="Use general or additive"):
        dot_attention_forward(**d)
    with pytest.raises(ValueError, match="`score` must be one of"):
        attend_forward(d["query"], d["keys"], d["keys"], score="cosine")
    _c, _w, cache = additive_attention_forward(**a)
    with pytest.raises(ValueError, match="`dcontext` must have shape"):
        additive_attention_backward(np.ones((3, 3)), None, cache)
