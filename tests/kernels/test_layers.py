"""The layers and cells on the kernel path: float32 results against float64, whichever path
is forced, against PyTorch, and the inference path of eval mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import kernels
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.recurrent import GRU, LSTM, RNN

LAYERS = {
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
    "gru_reset_before": (lambda **kw: GRU(reset_after=False, **kw), None, {}),
}
CASES = [  # kind, layers, bidirectional, batch_first, ragged
    ("rnn_tanh", 2, True, False, True),
    ("rnn_relu", 1, False, True, True),
    ("lstm", 2, True, True, True),
    ("lstm", 1, False, False, False),
    ("gru", 2, True, False, True),
    ("gru_reset_before", 2, True, True, True),
]
T, B, I, H = 7, 5, 3, 12
LENGTHS = np.array([7, 1, 4, 7, 2])


def layer(kind, L, bidir, batch_first, dtype):
    m = LAYERS[kind][0](
        input_size=I, hidden_size=H, num_layers=L, bidirectional=bidir,
        batch_first=batch_first, rng=3, dtype=dtype,
    )  # fmt: skip
    for p in m.parameters():
        p.data = (p.data * 1.5).astype(dtype)  # nonzero biases, a little beyond the default init
    return m


def run_layer(m, x, state, lengths, dy, dstate):
    y, st = m(x, state, lengths)
    dx, dst = m.backward(dy, dstate)
    flat = lambda s: list(s) if isinstance(s, tuple) else [s]  # noqa: E731
    grads = [p.grad.copy() for p in m.parameters()]
    return [y, *flat(st), dx, *flat(dst), *grads]


def inputs(rng, kind, L, bidir, batch_first, ragged):
    D = 2 if bidir else 1
    x = rng.normal(size=(B, T, I) if batch_first else (T, B, I))
    shape = (L * D, B, H)
    n_states = 2 if kind == "lstm" else 1
    state = tuple(rng.normal(size=shape) for _ in range(n_states))
    dy = rng.normal(size=(B, T, D * H) if batch_first else (T, B, D * H))
    dstate = tuple(rng.normal(size=shape) for _ in range(n_states))
    if n_states == 1:
        state, dstate = state[0], dstate[0]
    return x, state, (LENGTHS if ragged else None), dy, dstate


def as32(v):
    return tuple(a.astype(np.float32) for a in v) if isinstance(v, tuple) else v.astype(np.float32)


@pytest.mark.parametrize(("kind", "L", "bidir", "batch_first", "ragged"), CASES)
def test_layers_float32_match_float64_on_either_path(rng, kind, L, bidir, batch_first, ragged):
    x, state, lengths, dy, dstate = inputs(rng, kind, L, bidir, batch_first, ragged)
    m64 = layer(kind, L, bidir, batch_first, np.float64)
    truth = run_layer(m64, x, state, lengths, dy, dstate)
    args32 = (as32(x), as32(state), lengths, as32(dy), as32(dstate))
    m_k = layer(kind, L, bidir, batch_first, np.float32)
    got = run_layer(m_k, *args32)
    m_r = layer(kind, L, bidir, batch_first, np.float32)
    with kernels.use_reference():
        ref32 = run_layer(m_r, *args32)
    for k, (a64, r32, k32) in enumerate(zip(truth, ref32, got, strict=True)):
        assert k32.dtype == np.float32
        scale = 1.0 + np.abs(a64).max()
        allowed = 8 * np.abs(r32 - a64).max() + 2e-6 * scale
        assert np.abs(k32 - a64).max() <= allowed, f"result {k}"
        np.testing.assert_allclose(k32, r32, rtol=1e-4, atol=3e-5 * scale, err_msg=f"result {k}")


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_layers_on_the_kernel_path_match_torch(rng, kind):
    """The PyTorch parity of the core issue, in float32 on the kernel path."""
    ours_ctor, torch_cls, extra = LAYERS[kind]
    L, bidir = 2, True
    torch.manual_seed(0)
    tm = torch_cls(I, H, num_layers=L, bidirectional=bidir, **extra).double()
    with torch.no_grad():
        for p in tm.parameters():
            p.uniform_(-0.4, 0.4)
    ours = ours_ctor(input_size=I, hidden_size=H, num_layers=L, bidirectional=bidir)
    ours.load_state_dict({k: v.numpy().astype(np.float32) for k, v in tm.state_dict().items()})
    x, state, lengths, dy, dstate = inputs(rng, kind, L, bidir, False, ragged=True)
    valid = np.arange(T)[:, None] < LENGTHS[None, :]
    dy = dy * valid[:, :, None]  # torch never sees padded outputs
    got = run_layer(ours, as32(x), as32(state), lengths, as32(dy), as32(dstate))
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in (state if kind == "lstm" else (state,))]
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        xt, torch.tensor(LENGTHS), enforce_sorted=False
    )
    out, hn = tm(packed, tuple(st) if kind == "lstm" else st[0])
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    finals = list(hn) if kind == "lstm" else [hn]
    loss = (y * torch.tensor(dy)).sum()
    for f, d in zip(finals, dstate if kind == "lstm" else (dstate,), strict=True):
        loss = loss + (f * torch.tensor(d)).sum()
    loss.backward()
    want = [y.detach().numpy(), *[f.detach().numpy() for f in finals], xt.grad.numpy()]
    want += [s.grad.numpy() for s in st] + [p.grad.numpy() for p in tm.parameters()]
    assert len(want) == len(got)
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(
            a, b, rtol=1e-4, atol=2e-5 * (1 + np.abs(b).max()), err_msg=f"{k}"
        )


@pytest.mark.parametrize("kind", list(LAYERS))
def test_eval_mode_runs_the_inference_path_with_the_same_outputs(rng, kind):
    m = layer(kind, 2, True, False, np.float32)
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    y_train, s_train = m(x, None, LENGTHS)
    m.clear_cache()
    m.eval()
    y_eval, s_eval = m(x, None, LENGTHS)
    assert m.pending() == 0
    np.testing.assert_array_equal(y_eval, y_train)
    for a, b in zip(
        s_eval if kind == "lstm" else [s_eval],
        s_train if kind == "lstm" else [s_train],
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", [RNNCell, LSTMCell, GRUCell])
def test_cells_float32_on_the_kernel_path(rng, cls):
    c64 = cls(I, H, rng=1, dtype=np.float64)
    c32 = cls(I, H, rng=1, dtype=np.float32)
    x = rng.normal(size=(B, I))
    is_lstm = cls is LSTMCell
    state = (
        (rng.normal(size=(B, H)), rng.normal(size=(B, H))) if is_lstm else rng.normal(size=(B, H))
    )
    d = (rng.normal(size=(B, H)), rng.normal(size=(B, H))) if is_lstm else rng.normal(size=(B, H))
    out64, out32 = c64(x, state), c32(x.astype(np.float32), as32(state))
    g64, g32 = c64.backward(d), c32.backward(as32(d))
    flat = lambda v: [a for s in v for a in (s if isinstance(s, tuple) else (s,))]  # noqa: E731
    for a32, a64 in zip(flat([out32, *g32]), flat([out64, *g64]), strict=True):
        np.testing.assert_allclose(a32, a64, rtol=1e-4, atol=1e-5)
    for p32, p64 in zip(c32.parameters(), c64.parameters(), strict=True):
        np.testing.assert_allclose(p32.grad, p64.grad, rtol=1e-4, atol=1e-5)
