"""rnn_forward / rnn_backward: finite differences, PyTorch parity, float32, padding, errors."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from rnnkit.ops.rnn import rnn_backward, rnn_forward

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
    inputs = op_check.make_inputs(rng, T, B, I, H, G=1, bias=bias)
    lengths = op_check.ragged_lengths(rng, T, B) if ragged else None
    return inputs, lengths


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(SHAPE_ARGS, SHAPES)
def test_gradients_match_finite_differences(op_check, rng, T, B, I, H, ragged, bias, nonlinearity):
    inputs, lengths = setup(op_check, rng, T, B, I, H, ragged, bias)
    forward = functools.partial(rnn_forward, nonlinearity=nonlinearity)
    errors = op_check.gradient_errors(forward, rnn_backward, inputs, lengths, rng)
    assert set(errors) == {"x", "W_ih", "W_hh", "b_ih", "b_hh", "h0"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(SHAPE_ARGS, SHAPES)
def test_matches_torch(op_check, rng, T, B, I, H, ragged, bias, nonlinearity):
    inputs, lengths = setup(op_check, rng, T, B, I, H, ragged, bias)
    module = torch.nn.RNN(I, H, nonlinearity=nonlinearity, bias=bias, dtype=torch.float64)
    forward = functools.partial(rnn_forward, nonlinearity=nonlinearity)
    reference = op_check.torch_reference(module)
    op_check.compare_with_reference(forward, rnn_backward, inputs, lengths, reference, rng)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("ragged", [False, True])
def test_float32_close_to_float64(op_check, rng, ragged, nonlinearity):
    inputs, lengths = setup(op_check, rng, 6, 4, 3, 5, ragged)
    forward = functools.partial(rnn_forward, nonlinearity=nonlinearity)
    op_check.compare_float32(forward, rnn_backward, inputs, lengths, rng)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_padding_semantics(op_check, rng, nonlinearity):
    inputs, lengths = setup(op_check, rng, 5, 4, 2, 3, ragged=True)
    forward = functools.partial(rnn_forward, nonlinearity=nonlinearity)
    op_check.check_padding(forward, rnn_backward, inputs, lengths, rng)


@pytest.mark.parametrize(
    ("nonlinearity", "f"), [("tanh", np.tanh), ("relu", lambda a: a * (a > 0))]
)
def test_equations_by_hand(rng, nonlinearity, f):
    # (RNN-1), (RNN-2) written out for two steps of one sequence, with both biases and h0.
    x, h0 = rng.normal(size=(2, 1, 2)), rng.normal(size=(1, 3))
    W_ih, W_hh, b_ih, b_hh = (rng.normal(size=s) for s in [(3, 2), (3, 3), (3,), (3,)])
    h1 = f(W_ih @ x[0, 0] + b_ih + W_hh @ h0[0] + b_hh)
    h2 = f(W_ih @ x[1, 0] + b_ih + W_hh @ h1 + b_hh)
    y, h_n, _ = rnn_forward(x, W_ih, W_hh, b_ih, b_hh, h0, nonlinearity=nonlinearity)
    np.testing.assert_allclose(y[:, 0], [h1, h2], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(h_n, y[-1])


def test_cache_is_read_only_and_backward_repeatable(op_check, rng):
    inputs, lengths = setup(op_check, rng, 4, 3, 2, 2, ragged=True)
    op_check.check_cache(rnn_forward, rnn_backward, inputs, lengths, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_dtype_and_does_not_modify_inputs(op_check, rng, dtype):
    inputs, lengths = setup(op_check, rng, 3, 2, 2, 2, ragged=True)
    inputs = {k: v.astype(dtype) for k, v in inputs.items()}
    before = {k: v.copy() for k, v in inputs.items()}
    y, h_n, cache = rnn_forward(**inputs, lengths=lengths)
    grads = rnn_backward(np.ones_like(y), np.ones_like(h_n), cache)
    assert y.dtype == h_n.dtype == dtype
    assert all(g.dtype == dtype for g in grads)
    for k, v in inputs.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_bad_inputs_raise_naming_the_argument(op_check, rng):
    inputs, lengths = setup(op_check, rng, 4, 3, 2, 2, ragged=True)
    inputs["lengths"] = lengths
    cases = op_check.bad_input_cases(inputs, lengths)
    for bad in ["sigmoid", "Tanh", None]:
        cases.append(
            op_check.BadCase(
                f"nonlinearity {bad}", {"nonlinearity": bad}, ValueError, r"`nonlinearity` must be"
            )
        )
    op_check.run_bad_cases(rnn_forward, inputs, cases)


def test_backward_arguments(op_check, rng):
    inputs, _ = setup(op_check, rng, 3, 2, 2, 2, ragged=False)
    op_check.check_backward_args(rnn_forward, rnn_backward, inputs)
