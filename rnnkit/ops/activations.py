"""Elementwise activations and their derivatives, written in terms of outputs.

Equations
---------
(ACT-1) sigmoid(x) = 1 / (1 + exp(-x))          sigmoid'(x) = s (1 - s)
(ACT-2) tanh(x)                                  tanh'(x)    = 1 - t^2
(ACT-3) relu(x)    = max(x, 0)                   relu'(x)    = [x > 0]
(ACT-4) softmax(x)_k = exp(x_k - m) / sum_j exp(x_j - m),  m = max_j x_j
(ACT-5) log_softmax(x)_k = x_k - m - log sum_j exp(x_j - m)
(ENS-1) log_mean_softmax(x_1..x_M) = log((1/M) sum_m softmax(x_m)), an ensemble's
        log-probabilities, formed from the members' log_softmax without underflow

All functions keep the dtype of their input and never overflow: sigmoid only
exponentiates non-positive numbers, softmax subtracts the row maximum.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["log_mean_softmax", "log_softmax", "relu", "sigmoid", "softmax", "tanh"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function (ACT-1), stable for any finite input.

    ``exp`` is only ever applied to ``-|x|``, so ``|x|`` up to 1e4 (or inf) gives
    no overflow warning: ``σ(x) = 1/(1+e)`` for ``x >= 0`` and ``e/(1+e)`` otherwise,
    with ``e = exp(-|x|)``.

    Examples
    --------
    >>> float(sigmoid(np.array(0.0)))
    0.5
    """
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent (ACT-2)."""
    return np.tanh(x)


def relu(x: np.ndarray) -> np.ndarray:
    """Rectified linear unit (ACT-3); keeps the dtype of ``x``."""
    x = np.asarray(x)
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` (ACT-4), shifted by the maximum so it never overflows.

    Examples
    --------
    >>> softmax(np.array([1000.0, 1000.0])).tolist()
    [0.5, 0.5]
    """
    x = np.asarray(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Log of the softmax along ``axis`` (ACT-5), computed without forming ``exp(x)``.

    Examples
    --------
    >>> np.round(log_softmax(np.array([0.0, 0.0])), 6).tolist()
    [-0.693147, -0.693147]
    """
    x = np.asarray(x)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def log_mean_softmax(xs: Sequence[np.ndarray], axis: int = -1) -> np.ndarray:
    """Log of the mean of the softmaxes of ``xs`` along ``axis`` (ENS-1), in float64.

    The log-probabilities of an ensemble whose members score the same positions with
    logits ``xs[m]`` (all of one shape): ``log((1/M) Σ_m softmax(xs[m]))``, computed as a
    log-sum-exp over the members' :func:`log_softmax`, so no probability underflows.

    Examples
    --------
    >>> z = np.log(np.array([0.2, 0.8]))
    >>> np.round(np.exp(log_mean_softmax([z, z[::-1]])), 6).tolist()
    [0.5, 0.5]
    """
    if len(xs) == 0:
        raise ValueError("`xs` must hold at least one array of logits.")
    logp = np.stack([log_softmax(np.asarray(x, dtype=np.float64), axis=axis) for x in xs])
    top = logp.max(axis=0)
    return top + np.log(np.exp(logp - top).sum(axis=0)) - np.log(len(xs))
