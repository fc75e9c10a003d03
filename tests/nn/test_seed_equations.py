"""The seed's equations written literally in NumPy, reproduced by the layers via the mapping."""

from __future__ import annotations

import numpy as np

from rnnkit.nn.recurrent import GRU, LSTM, RNN
from rnnkit.ops.conventions import gru_from_seed, lstm_from_seed, rnn_from_seed

T, B, I, H = 6, 3, 4, 5


def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def test_seed_lstm():
    rng = np.random.default_rng(0)
    Ws = {g: rng.normal(scale=0.5, size=(H, H + I)) for g in "fico"}
    bs = {g: rng.normal(scale=0.5, size=H) for g in "fico"}
    x = rng.normal(size=(T, B, I))
    h = np.zeros((B, H))
    c = np.zeros((B, H))
    hs = []
    for t in range(T):
        hx = np.concatenate([h, x[t]], axis=1)  # [h_{t-1}, x_t]
        f = sig(hx @ Ws["f"].T + bs["f"])
        i = sig(hx @ Ws["i"].T + bs["i"])
        c_tilde = np.tanh(hx @ Ws["c"].T + bs["c"])
        c = f * c + i * c_tilde
        o = sig(hx @ Ws["o"].T + bs["o"])
        h = o * np.tanh(c)
        hs.append(h)
    m = LSTM(I, H, dtype=np.float64)
    m.load_state_dict(
        lstm_from_seed(Ws["f"], Ws["i"], Ws["c"], Ws["o"], bs["f"], bs["i"], bs["c"], bs["o"])
    )
    y, (_h_n, c_n) = m(x)
    np.testing.assert_allclose(y, np.stack(hs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c_n[0], c, rtol=1e-12, atol=1e-14)


def test_seed_gru():
    rng = np.random.default_rng(1)
    W_z, W_r, W = (rng.normal(scale=0.5, size=(H, H + I)) for _ in range(3))
    x = rng.normal(size=(T, B, I))
    h = rng.normal(size=(B, H))
    h0 = h.copy()
    hs = []
    for t in range(T):
        hx = np.concatenate([h, x[t]], axis=1)
        z = sig(hx @ W_z.T)
        r = sig(hx @ W_r.T)
        h_tilde = np.tanh(np.concatenate([r * h, x[t]], axis=1) @ W.T)
        h = (1 - z) * h + z * h_tilde
        hs.append(h)
    m = GRU(I, H, bias=False, reset_after=False, dtype=np.float64)
    m.load_state_dict(gru_from_seed(W_z, W_r, W))
    y, h_n = m(x, h0[None])
    np.testing.assert_allclose(y, np.stack(hs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n[0], h, rtol=1e-12, atol=1e-14)


def test_seed_rnn_with_affine_output():
    rng = np.random.default_rng(2)
    W = rng.normal(scale=0.5, size=(H, H + I))
    b = rng.normal(size=H)
    V = rng.normal(size=(2, H))  # y_t = g(h_t) = V h_t + c
    c_out = rng.normal(size=2)
    x = rng.normal(size=(T, B, I))
    h = np.zeros((B, H))
    ys = []
    for t in range(T):
        h = np.tanh(np.concatenate([h, x[t]], axis=1) @ W.T + b)
        ys.append(h @ V.T + c_out)
    m = RNN(I, H, dtype=np.float64)
    m.load_state_dict(rnn_from_seed(W, b))
    hseq, _ = m(x)
    np.testing.assert_allclose(hseq @ V.T + c_out, np.stack(ys), rtol=1e-12, atol=1e-14)
