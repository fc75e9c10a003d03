"""RNNCell/LSTMCell/GRUCell in a decoder-style loop against torch's cells (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell

B, I, H, STEPS = 3, 4, 5, 4


@pytest.mark.parametrize(
    ("ours_cls", "torch_cls", "kw"),
    [
        (RNNCell, torch.nn.RNNCell, {"nonlinearity": "tanh"}),
        (RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
        (LSTMCell, torch.nn.LSTMCell, {}),
        (GRUCell, torch.nn.GRUCell, {}),
    ],
)
def test_cell_loop_matches_torch(ours_cls, torch_cls, kw):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    tc = torch_cls(I, H, **kw).double()
    with torch.no_grad():
        for p in tc.parameters():
            p.uniform_(-0.7, 0.7)
    cell = ours_cls(I, H, dtype=np.float64, **kw)
    cell.load_state_dict({k: v.numpy() for k, v in tc.state_dict().items()})
    is_lstm = ours_cls is LSTMCell
    xs = rng.normal(size=(STEPS, B, I))
    dhs = rng.normal(size=(STEPS, B, H))  # a loss on every step's h

    # ours: forward loop, then backward loop newest first
    state = (
        (rng.normal(size=(B, H)), rng.normal(size=(B, H))) if is_lstm else rng.normal(size=(B, H))
    )
    init = state
    hs = []
    for t in range(STEPS):
        state = cell(xs[t], state)
        hs.append(state[0] if is_lstm else state)
    dxs = [None] * STEPS
    carry = (np.zeros((B, H)), np.zeros((B, H))) if is_lstm else np.zeros((B, H))
    for t in reversed(range(STEPS)):
        if is_lstm:
            dxs[t], carry = cell.backward((carry[0] + dhs[t], carry[1]))
        else:
            dxs[t], carry = cell.backward(carry + dhs[t])
    assert cell.pending() == 0

    # torch
    xt = torch.tensor(xs, requires_grad=True)
    if is_lstm:
        st = tuple(torch.tensor(s, requires_grad=True) for s in init)
        s = st
    else:
        st = torch.tensor(init, requires_grad=True)
        s = st
    loss = 0
    for t in range(STEPS):
        s = tc(xt[t], s)
        loss = loss + ((s[0] if is_lstm else s) * torch.tensor(dhs[t])).sum()
    loss.backward()

    np.testing.assert_allclose(np.stack(dxs), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    if is_lstm:
        np.testing.assert_allclose(carry[0], st[0].grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(carry[1], st[1].grad.numpy(), rtol=1e-9, atol=1e-12)
    else:
        np.testing.assert_allclose(carry, st.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (k, p), (tk, tp) in zip(cell.named_parameters(), tc.named_parameters(), strict=True):
        assert k == tk
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
    # forward values too
    with torch.no_grad():
        s = tuple(torch.tensor(v) for v in init) if is_lstm else torch.tensor(init)
        for t in range(STEPS):
            s = tc(torch.tensor(xs[t]), s)
            np.testing.assert_allclose(
                hs[t], (s[0] if is_lstm else s).numpy(), rtol=1e-9, atol=1e-12
            )
