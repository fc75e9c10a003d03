"""Activations (ACT-1)–(ACT-5): values, stated derivatives, stability far from zero, dtypes.

Warnings are errors under pytest, so any overflow in ``exp`` fails these tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.ops.activations import log_softmax, relu, sigmoid, softmax, tanh

EXTREME = [-1e4, -1000.0, -89.0, -1.0, 0.0, 1.0, 89.0, 1000.0, 1e4, -np.inf, np.inf]


def central_diff(f, x, eps=1e-6):
    return (f(x + eps) - f(x - eps)) / (2 * eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_no_overflow_and_exact_tails(dtype):
    x = np.array(EXTREME, dtype=dtype)
    s = sigmoid(x)
    assert s.dtype == dtype
    assert np.isfinite(s).all()
    assert ((s >= 0) & (s <= 1)).all()
    np.testing.assert_array_equal(s[[0, 4, 8, -2, -1]], [0, 0.5, 1, 0, 1])
    np.testing.assert_allclose(sigmoid(-x[:-2]), 1 - s[:-2], atol=np.finfo(dtype).eps)


def test_sigmoid_values_and_derivative():
    # (ACT-1): σ(x) = 1 / (1 + exp(-x)) and σ' = s (1 − s).
    x = np.linspace(-20, 20, 81)
    s = sigmoid(x)
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(central_diff(sigmoid, x), s * (1 - s), rtol=1e-6, atol=1e-9)


def test_tanh_derivative():
    # (ACT-2): tanh' = 1 − t².
    x = np.linspace(-5, 5, 41)
    t = tanh(x)
    np.testing.assert_allclose(central_diff(tanh, x), 1 - t**2, rtol=1e-6, atol=1e-12)
    assert tanh(np.array(EXTREME, dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_values_derivative_and_dtype(dtype):
    # (ACT-3): relu(x) = max(x, 0), relu' = [x > 0] (away from the kink).
    x = np.array([-3.0, -0.5, 0.0, 0.25, 7.0], dtype=dtype)
    r = relu(x)
    assert r.dtype == dtype
    np.testing.assert_array_equal(r, [0, 0, 0, 0.25, 7])
    away = np.array([-2.0, -0.3, 0.4, 3.0])
    np.testing.assert_allclose(central_diff(relu, away), (away > 0).astype(float), atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_stable_for_large_inputs(dtype):
    # (ACT-4): shifting by the row maximum means exp never overflows.
    x = np.array([[1000.0, 1000.0, 0.0], [1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    p = softmax(x)
    assert p.dtype == dtype
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=-1), 1, rtol=1e-6)
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0], atol=1e-7)
    np.testing.assert_array_equal(p[1], [1, 0, 0])
    np.testing.assert_allclose(p[2], [1 / 3] * 3, rtol=1e-6)


def test_softmax_axis_shift_invariance_and_jacobian(rng):
    x = rng.normal(size=(3, 4))
    p0 = softmax(x, axis=0)
    np.testing.assert_allclose(p0.sum(axis=0), 1, rtol=1e-14)
    np.testing.assert_allclose(softmax(x + 123.0), softmax(x), rtol=1e-12)
    # ∂p_k/∂x_j = p_k (δ_kj − p_j)
    v = x[0]
    p = softmax(v)
    J = np.stack(
        [central_diff(lambda e, j=j: softmax(v + e * np.eye(4)[j]), 0.0) for j in range(4)]
    )
    np.testing.assert_allclose(J.T, np.diag(p) - np.outer(p, p), atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_stable_for_large_inputs(dtype):
    # (ACT-5): never forms exp(x); the log of a tiny probability stays finite and exact.
    x = np.array([[1000.0, 0.0], [1e4, -1e4], [-1e4, -1e4]], dtype=dtype)
    lp = log_softmax(x)
    assert lp.dtype == dtype
    assert np.isfinite(lp).all()
    np.testing.assert_allclose(lp[0], [0, -1000], atol=1e-6)
    np.testing.assert_allclose(lp[1], [0, -2e4], rtol=1e-7)
    np.testing.assert_allclose(lp[2], [-np.log(2)] * 2, rtol=1e-6)


def test_log_softmax_matches_log_of_softmax_and_jacobian(rng):
    x = rng.normal(size=(5, 6)) * 3
    np.testing.assert_allclose(log_softmax(x), np.log(softmax(x)), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.exp(log_softmax(x, axis=0)).sum(axis=0), 1, rtol=1e-14)
    # ∂ log p_k / ∂x_j = δ_kj − p_j
    v = x[0]
    p = softmax(v)
    J = np.stack(
        [central_diff(lambda e, j=j: log_softmax(v + e * np.eye(6)[j]), 0.0) for j in range(6)]
    )
    np.testing.assert_allclose(J.T, np.eye(6) - p[None, :], atol=1e-8)
