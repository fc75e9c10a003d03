"""lstm_forward / lstm_backward: finite differences, PyTorch parity, float32, padding, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.ops.lstm import lstm_backward, lstm_forward

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
    inputs = op_check.make_inputs(rng, T, B, I, H, G=4, states=("h0", "c0"), bias=bias)
    lengths = op_check.ragged_lengths(rng, T, B) if ragged else None
    return inputs, lengths


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(SHAPE_ARGS, SHAPES)
def test_gradients_match_finite_differences(op_check, rng, T, B, I, H, ragged, bias):
    inputs, lengths = setup(op_check, rng, T, B, I, H, ragged, bias)
    errors = op_check.gradient_errors(lstm_forward, lstm_backward, inputs, lengths, rng)
    assert set(errors) == {"x", "W_ih", "W_hh", "b_ih", "b_hh", "h0", "c0"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(SHAPE_ARGS, SHAPES)
def test_matches_torch(op_check, rng, T, B, I, H, ragged, bias):
    inputs, lengths = setup(op_check, rng, T, B, I, H, ragged, bias)
    module = torch.nn.LSTM(I, H, bias=bias, dtype=torch.float64)
    reference = op_check.torch_reference(module)
    op_check.compare_with_reference(lstm_forward, lstm_backward, inputs, lengths, reference, rng)


@pytest.mark.parametrize("ragged", [False, True])
def test_float32_close_to_float64(op_check, rng, ragged):
    inputs, lengths = setup(op_check, rng, 6, 4, 3, 5, ragged)
    op_check.compare_float32(lstm_forward, lstm_backward, inputs, lengths, rng)


def test_padding_semantics(op_check, rng):
    inputs, lengths = setup(op_check, rng, 5, 4, 2, 3, ragged=True)
    op_check.check_padding(lstm_forward, lstm_backward, inputs, lengths, rng)


def test_equations_by_hand(rng):
    # (LSTM-1)–(LSTM-5) written out for one step, gates i, f, g, o, with both biases.
    H = 2
    x, h0, c0 = rng.normal(size=(1, 1, 3)), rng.normal(size=(1, H)), rng.normal(size=(1, H))
    W_ih, W_hh = rng.normal(size=(4 * H, 3)), rng.normal(size=(4 * H, H))
    b_ih, b_hh = rng.normal(size=4 * H), rng.normal(size=4 * H)
    a = W_ih @ x[0, 0] + b_ih + W_hh @ h0[0] + b_hh
    i, f, g, o = (
        sigmoid(a[:H]),
        sigmoid(a[H : 2 * H]),
        np.tanh(a[2 * H : 3 * H]),
        sigmoid(a[3 * H :]),
    )
    c1 = f * c0[0] + i * g
    h1 = o * np.tanh(c1)
    y, h_n, c_n, _ = lstm_forward(x, W_ih, W_hh, b_ih, b_hh, h0, c0)
    np.testing.assert_allclose(y[0, 0], h1, rtol=1e-12)
    np.testing.assert_allclose(c_n[0], c1, rtol=1e-12)
    np.testing.assert_array_equal(h_n, y[-1])


def test_cache_is_read_only_and_backward_repeatable(op_check, rng):
    inputs, lengths = setup(op_check, rng, 4, 3, 2, 2, ragged=True)
    op_check.check_cache(lstm_forward, lstm_backward, inputs, lengths, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_dtype_and_does_not_modify_inputs(op_check, rng, dtype):
    inputs, lengths = setup(op_check, rng, 3, 2, 2, 2, ragged=True)
    inputs = {k: v.astype(dtype) for k, v in inputs.items()}
    before = {k: v.copy() for k, v in inputs.items()}
    y, h_n, c_n, cache = lstm_forward(**inputs, lengths=lengths)
    grads = lstm_backward(np.ones_like(y), np.ones_like(h_n), np.ones_like(c_n), cache)
    assert y.dtype == h_n.dtype == c_n.dtype == dtype
    assert all(g.dtype == dtype for g in grads)
    for k, v in inputs.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_bad_inputs_raise_naming_the_argument(op_check, rng):
    inputs, lengths = setup(op_check, rng, 4, 3, 2, 2, ragged=True)
    inputs["lengths"] = lengths
    op_check.run_bad_cases(lstm_forward, inputs, op_check.bad_input_cases(inputs, lengths))


def test_backward_arguments(op_check, rng):
    inputs, _ = setup(op_check, rng, 3, 2, 2, 2, ragged=False)
    op_check.check_backward_args(lstm_forward, lstm_backward, inputs)
