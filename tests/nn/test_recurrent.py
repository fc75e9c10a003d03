"""RNN/LSTM/GRU layers against PyTorch in float64, plus the layer protocol and bad input."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from rnnkit.nn.recurrent import GRU, LSTM, RNN, reverse_padded

KINDS = {
    "rnn_tanh": (
        lambda **kw: RNN(nonlinearity="tanh", **kw),
        torch.nn.RNN,
        {"nonlinearity": "tanh"},
    ),
    "rnn_relu": (
        lambda **kw: RNN(nonlinearity="relu", **kw),
        torch.nn.RNN,
        {"nonlinearity": "relu"},
    ),
    "lstm": (lambda **kw: LSTM(**kw), torch.nn.LSTM, {}),
    "gru": (lambda **kw: GRU(**kw), torch.nn.GRU, {}),
}


def make_pair(kind, I, H, L, bidir, batch_first, seed=0):
    ours_ctor, torch_cls, extra = KINDS[kind]
    torch.manual_seed(seed)
    tm = torch_cls(I, H, num_layers=L, bidirectional=bidir, batch_first=batch_first, **extra)
    tm = tm.double()
    with torch.no_grad():
        for p in tm.parameters():
            p.uniform_(-0.6, 0.6)  # nonzero biases, larger than the default init
    ours = ours_ctor(
        input_size=I,
        hidden_size=H,
        num_layers=L,
        bidirectional=bidir,
        batch_first=batch_first,
        dtype=np.float64,
    )
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return ours, tm


def run_torch(tm, x, state, lengths, batch_first, dy, dstate, has_cell):
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in (state if has_cell else [state])]
    hx = tuple(st) if has_cell else st[0]
    if lengths is None:
        y, hn = tm(xt, hx)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False
        )
        out, hn = tm(packed, hx)
        T = x.shape[1] if batch_first else x.shape[0]
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    hns = list(hn) if has_cell else [hn]
    loss = (y * torch.tensor(dy)).sum()
    for h, dh in zip(hns, dstate if has_cell else [dstate], strict=True):
        loss = loss + (h * torch.tensor(dh)).sum()
    loss.backward()
    grads = {k: p.grad.numpy() for k, p in tm.named_parameters()}
    return (
        y.detach().numpy(),
        [h.detach().numpy() for h in hns],
        xt.grad.numpy(),
        [s.grad.numpy() for s in st],
        grads,
    )


CASES = [
    # kind, L, bidir, batch_first, ragged
    ("rnn_tanh", 1, False, False, False),
    ("rnn_tanh", 2, True, False, True),
    ("rnn_relu", 3, False, True, True),
    ("rnn_relu", 1, True, False, False),
    ("lstm", 1, False, False, True),
    ("lstm", 2, True, True, True),
    ("lstm", 3, True, False, False),
    ("gru", 1, False, True, False),
    ("gru", 2, True, False, True),
    ("gru", 3, False, False, True),
]


@pytest.mark.parametrize(("kind", "L", "bidir", "batch_first", "ragged"), CASES)
def test_matches_torch_float64(kind, L, bidir, batch_first, ragged):
    rng = np.random.default_rng(1)
    T, B, I, H = 5, 4, 3, 4
    ours, tm = make_pair(kind, I, H, L, bidir, batch_first)
    has_cell = kind == "lstm"
    D = 2 if bidir else 1
    x = rng.normal(size=(B, T, I) if batch_first else (T, B, I))
    lengths = np.array([5, 1, 3, 5]) if ragged else None
    sshape = (L * D, B, H)
    state = (
        (rng.normal(size=sshape), rng.normal(size=sshape)) if has_cell else rng.normal(size=sshape)
    )
    dy = rng.normal(size=(B, T, D * H) if batch_first else (T, B, D * H))
    if ragged:  # torch never sees padded outputs, so their gradient must not matter
        valid = np.arange(T)[:, None] < lengths[None, :]
        dy = dy * (valid.T if batch_first else valid)[:, :, None]
    dstate = (
        (rng.normal(size=sshape), rng.normal(size=sshape)) if has_cell else rng.normal(size=sshape)
    )

    y, st = ours(x, state, lengths)
    dx, dst = ours.backward(dy, dstate)
    ty, thn, tdx, tdst, tgrads = run_torch(tm, x, state, lengths, batch_first, dy, dstate, has_cell)

    close = {"rtol": 1e-9, "atol": 1e-12}
    np.testing.assert_allclose(y, ty, **close)
    for a, b in zip(st if has_cell else [st], thn, strict=True):
        np.testing.assert_allclose(a, b, **close)
    np.testing.assert_allclose(dx, tdx, **close)
    for a, b in zip(dst if has_cell else [dst], tdst, strict=True):
        np.testing.assert_allclose(a, b, **close)
    ours_grads = {k: p.grad for k, p in ours.named_parameters()}
    assert ours_grads.keys() == tgrads.keys()
    for k in tgrads:
        np.testing.assert_allclose(ours_grads[k], tgrads[k], err_msg=k, **close)
    assert ours.pending() == 0


@pytest.mark.parametrize("kind", list(KINDS))
def test_parameter_names_and_shapes_are_torchs(kind):
    ours, tm = make_pair(kind, 3, 5, 2, True, False)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in tm.state_dict().items()
    ]


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_float32_close_to_float64(kind):
    rng = np.random.default_rng(2)
    ours64, _ = make_pair(kind, 3, 4, 2, True, False)
    ours32 = KINDS[kind][0](input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    ours32.load_state_dict(ours64.state_dict())
    x = rng.normal(size=(6, 2, 3))
    y64, _ = ours64(x)
    y32, _ = ours32(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    dy = rng.normal(size=y64.shape)
    dx64, _ = ours64.backward(dy)
    dx32, _ = ours32.backward(dy.astype(np.float32))
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)
    for (k, p32), p64 in zip(ours32.named_parameters(), ours64.parameters(), strict=True):
        np.testing.assert_allclose(p32.grad, p64.grad, rtol=1e-3, atol=1e-4, err_msg=k)


def test_reverse_padded_is_an_involution_and_keeps_padding_last():
    seq = np.arange(12.0).reshape(4, 3, 1)
    lengths = np.array([4, 1, 2])
    r = reverse_padded(seq, lengths)
    np.testing.assert_array_equal(r[:, 0, 0], seq[::-1, 0, 0])
    np.testing.assert_array_equal(r[:, 1, 0], seq[:, 1, 0])
    np.testing.assert_array_equal(r[:, 2, 0], seq[[1, 0, 2, 3], 2, 0])
    np.testing.assert_array_equal(reverse_padded(r, lengths), seq)


def test_dropout_between_layers_is_seeded_and_backpropagated():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 2, 3))
    a = LSTM(3, 5, num_layers=2, dropout=0.5, rng=7, dtype=np.float64)
    b = LSTM(3, 5, num_layers=2, dropout=0.5, rng=7, dtype=np.float64)
    start = copy.deepcopy(a.rng.bit_generator.state)
    ya, _ = a(x)
    yb, _ = b(x)
    np.testing.assert_array_equal(ya, yb)
    w = rng.normal(size=ya.shape)
    dx, _ = a.backward(w)

    def loss(x_):  # the same dropout masks: replay the generator from the same state
        a.rng.bit_generator.state = copy.deepcopy(start)
        a.eval().train()
        y, _ = a(x_)
        a.clear_cache()
        return float((y * w).sum())

    eps = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (loss(xp) - loss(xm)) / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)

    a.eval()
    y_eval, _ = a(x)
    assert a.pending() == 0  # eval pushes nothing
    assert not np.allclose(y_eval, ya)  # dropout is active only in training
    with pytest.raises(RuntimeError, match=r"LSTM.backward.*eval mode"):
        a.backward(np.ones_like(ya))


def test_protocol_two_calls_backpropagate_in_reverse_order():
    rng = np.random.default_rng(4)
    m = GRU(2, 3, dtype=np.float64)
    x1, x2 = rng.normal(size=(3, 2, 2)), rng.normal(size=(2, 2, 2))
    m(x1)
    m(x2)
    dx2, _ = m.backward(np.ones((2, 2, 3)))
    dx1, _ = m.backward(np.ones((3, 2, 3)))
    assert dx2.shape == x2.shape
    assert dx1.shape == x1.shape
    with pytest.raises(RuntimeError, match="no forward pass"):
        m.backward(np.ones((3, 2, 3)))


def test_forget_bias_and_orthogonal_init():
    m = LSTM(3, 4, forget_bias=1.0, recurrent_init="orthogonal", rng=0, dtype=np.float64)
    np.testing.assert_array_equal(m.bias_ih_l0.data[4:8], 1.0)
    np.testing.assert_array_equal(m.bias_hh_l0.data[4:8], 0.0)
    for g in range(4):
        block = m.weight_hh_l0.data[4 * g : 4 * g + 4]
        np.testing.assert_allclose(block @ block.T, np.eye(4), atol=1e-12)
    bound = 1 / np.sqrt(4)
    assert np.abs(m.weight_ih_l0.data).max() <= bound


def test_default_init_is_uniform_within_torch_bound():
    m = GRU(8, 16, num_layers=2, rng=0)
    bound = 1 / np.sqrt(16)
    for _, p in m.named_parameters():
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.8 * bound
