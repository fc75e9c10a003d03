"""gru_forward / gru_backward: finite differences, PyTorch parity, float32, padding, errors.

PyTorch has only the reset-after GRU (GRU-3). The reset-before form (GRU-4) is checked
against ``gru_twin`` below, the equations written literally with torch autograd in float64;
the twin itself is checked against ``torch.nn.GRU`` in the reset-after form.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from rnnkit.ops.gru import gru_backward, gru_forward

# (T, B, I, H, ragged): the edges T=1, B=1, H=1, I=1, and ragged batches with a length-1 row
# and a full-length row.
SHAPES = [
    (1, 1, 1, 1, False),
    (3, 1, 2, 1, False),
    (1, 3, 2, 2, False),
    (4, 3, 3, 1, True),
    (5, 4, 2, 3, True),
]
SHAPE_ARGS = ("T", "B", "I", "H", "ragged")


def setup(op_check, rng, T, B, I, H, ragged, bias=True):
    inputs = op_check.make_inputs(rng, T, B, I, H, G=3, bias=bias)
    lengths = op_check.ragged_lengths(rng, T, B) if ragged else None
    return inputs, lengths


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def gru_twin(reset_after):
    """(GRU-1)–(GRU-5) and (SEQ-2) written literally in torch; autograd gives the gradients."""

    def run(inputs, lengths, ws):
        leaves = {
            k: torch.tensor(v, requires_grad=True) for k, v in inputs.items() if v is not None
        }
        x, h = leaves["x"], leaves["h0"]
        T, B, _ = x.shape
        H = h.shape[1]
        zeros = torch.zeros(3 * H, dtype=torch.float64)
        W_ir, W_iz, W_in = leaves["W_ih"].split(H)
        W_hr, W_hz, W_hn = leaves["W_hh"].split(H)
        b_ir, b_iz, b_in = leaves.get("b_ih", zeros).split(H)
        b_hr, b_hz, b_hn = leaves.get("b_hh", zeros).split(H)
        lens = torch.full((B,), T) if lengths is None else torch.from_numpy(lengths)
        ys = []
        for t in range(T):
            r = torch.sigmoid(x[t] @ W_ir.T + b_ir + h @ W_hr.T + b_hr)  # (GRU-1)
            z = torch.sigmoid(x[t] @ W_iz.T + b_iz + h @ W_hz.T + b_hz)  # (GRU-2)
            if reset_after:
                n = torch.tanh(x[t] @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))  # (GRU-3)
            else:
                n = torch.tanh(x[t] @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)  # (GRU-4)
            h_new = (1 - z) * n + z * h  # (GRU-5)
            m = (t < lens).to(torch.float64)[:, None]  # (SEQ-1)
            ys.append(m * h_new)  # (SEQ-2)
            h = m * h_new + (1 - m) * h
        outs = [torch.stack(ys), h]
        loss = sum((torch.from_numpy(w) * o).sum() for w, o in zip(ws, outs, strict=True))
        loss.backward()
        grads = {"d" + k: None for k in inputs}
        grads.update({"d" + k: leaf.grad.numpy() for k, leaf in leaves.items()})
        return [o.detach().numpy() for o in outs], grads

    return run


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(SHAPE_ARGS, SHAPES)
def test_gradients_match_finite_differences(op_check, rng, T, B, I, H, ragged, bias, reset_after):
    inputs, lengths = setup(op_check, rng, T, B, I, H, ragged, bias)
    forward = functools.partial(gru_forward, reset_after=reset_after)
    errors = op_check.gradient_errors(forward, gru_backward, inputs, lengths, rng)
    assert set(errors) == {"x", "W_ih", "W_hh", "b_ih", "b_hh", "h0"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(SHAPE_ARGS, SHAPES)
def test_matches_torch(op_check, rng, T, B, I, H, ragged, bias):
    inputs, lengths = setup(op_check, rng, T, B, I, H, ragged, bias)
    module = torch.nn.GRU(I, H, bias=bias, dtype=torch.float64)
    reference = op_check.torch_reference(module)
    op_check.compare_with_reference(gru_forward, gru_backward, inputs, lengths, reference, rng)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(SHAPE_ARGS, SHAPES)
def test_reset_before_matches_torch_twin(op_check, rng, T, B, I, H, ragged, bias):
    inputs, lengths = setup(op_check, rng, T, B, I, H, ragged, bias)
    forward = functools.partial(gru_forward, reset_after=False)
    reference = gru_twin(reset_after=False)
    op_check.compare_with_reference(forward, gru_backward, inputs, lengths, reference, rng)


@pytest.mark.parametrize("ragged", [False, True])
def test_torch_twin_matches_torch_gru(op_check, rng, ragged):
    # The twin is only a valid oracle if its reset-after branch reproduces nn.GRU.
    inputs, lengths = setup(op_check, rng, 5, 4, 2, 3, ragged)
    module = torch.nn.GRU(2, 3, dtype=torch.float64)
    ws = [rng.normal(size=(5, 4, 3)), rng.normal(size=(4, 3))]
    outs, grads = gru_twin(reset_after=True)(inputs, lengths, ws)
    ref_outs, ref_grads = op_check.torch_reference(module)(inputs, lengths, ws)
    for a, b in zip(outs, ref_outs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref_grads[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_placements_differ(op_check, rng):
    inputs, _ = setup(op_check, rng, 3, 2, 2, 3, ragged=False)
    y_after, _, _ = gru_forward(**inputs, reset_after=True)
    y_before, _, _ = gru_forward(**inputs, reset_after=False)
    assert np.abs(y_after - y_before).max() > 1e-3


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("ragged", [False, True])
def test_float32_close_to_float64(op_check, rng, ragged, reset_after):
    inputs, lengths = setup(op_check, rng, 6, 4, 3, 5, ragged)
    forward = functools.partial(gru_forward, reset_after=reset_after)
    op_check.compare_float32(forward, gru_backward, inputs, lengths, rng)


@pytest.mark.parametrize("reset_after", [True, False])
def test_padding_semantics(op_check, rng, reset_after):
    inputs, lengths = setup(op_check, rng, 5, 4, 2, 3, ragged=True)
    forward = functools.partial(gru_forward, reset_after=reset_after)
    op_check.check_padding(forward, gru_backward, inputs, lengths, rng)


def test_seed_gru_is_reset_before_with_z_negated(rng):
    # The seed: z = σ(W_z·[h, x]), r = σ(W_r·[h, x]), h̃ = tanh(W·[r ⊙ h, x]),
    # h_t = (1 − z) ⊙ h_{t−1} + z ⊙ h̃, no biases. Its z is PyTorch's 1 − z = σ(−a_z).
    T, B, I, H = 4, 2, 3, 2
    x = rng.normal(size=(T, B, I))
    W_z, W_r, W = (rng.normal(size=(H, H + I)) for _ in range(3))
    h = np.zeros((B, H))
    ys = []
    for t in range(T):
        hx = np.concatenate([h, x[t]], axis=1)
        z = sigmoid(hx @ W_z.T)
        r = sigmoid(hx @ W_r.T)
        h_tilde = np.tanh(np.concatenate([r * h, x[t]], axis=1) @ W.T)
        h = (1 - z) * h + z * h_tilde
        ys.append(h)
    W_ih = np.concatenate([W_r[:, H:], -W_z[:, H:], W[:, H:]])
    W_hh = np.concatenate([W_r[:, :H], -W_z[:, :H], W[:, :H]])
    y, h_n, _ = gru_forward(x, W_ih, W_hh, reset_after=False)
    np.testing.assert_allclose(y, np.stack(ys), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(h_n, h, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reset_after", [True, False])
def test_cache_is_read_only_and_backward_repeatable(op_check, rng, reset_after):
    inputs, lengths = setup(op_check, rng, 4, 3, 2, 2, ragged=True)
    forward = functools.partial(gru_forward, reset_after=reset_after)
    op_check.check_cache(forward, gru_backward, inputs, lengths, rng)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_dtype_and_does_not_modify_inputs(op_check, rng, dtype, reset_after):
    inputs, lengths = setup(op_check, rng, 3, 2, 2, 2, ragged=True)
    inputs = {k: v.astype(dtype) for k, v in inputs.items()}
    before = {k: v.copy() for k, v in inputs.items()}
    y, h_n, cache = gru_forward(**inputs, lengths=lengths, reset_after=reset_after)
    grads = gru_backward(np.ones_like(y), np.ones_like(h_n), cache)
    assert y.dtype == h_n.dtype == dtype
    assert all(g.dtype == dtype for g in grads)
    for k, v in inputs.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_bad_inputs_raise_naming_the_argument(op_check, rng):
    inputs, lengths = setup(op_check, rng, 4, 3, 2, 2, ragged=True)
    inputs["lengths"] = lengths
    cases = op_check.bad_input_cases(inputs, lengths)
    for bad in ["yes", 1, None]:
        cases.append(
            op_check.BadCase(
                f"reset_after {bad!r}", {"reset_after": bad}, TypeError, r"`reset_after` must be"
            )
        )
    op_check.run_bad_cases(gru_forward, inputs, cases)


@pytest.mark.parametrize("reset_after", [True, False])
def test_backward_arguments(op_check, rng, reset_after):
    inputs, _ = setup(op_check, rng, 3, 2, 2, 2, ragged=False)
    forward = functools.partial(gru_forward, reset_after=reset_after)
    op_check.check_backward_args(forward, gru_backward, inputs)
