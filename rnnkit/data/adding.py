"""The adding problem (Hochreiter & Schmidhuber 1997): remember two numbers across T steps.

Each sequence has T steps of two features, a value and a marker:

(ADD-1) v_t ~ U(0, 1) independently;  m_t = 1 at exactly two steps, 0 elsewhere
(ADD-2) the first marked step is uniform in [0, ⌊T/2⌋), the second in [⌊T/2⌋, T)
(ADD-3) target y = Σ_t m_t v_t, the sum of the two marked values

Always predicting 1 (the mean of y) gives MSE = Var(v₁ + v₂) = 2/12 ≈ 0.167
(:data:`BASELINE_MSE`); the task counts as solved at test MSE < 0.01
(:data:`SOLVED_MSE`). The placement (ADD-2) is the common modern one (Le et al.
2015; Arjovsky et al. 2016): the second marker can be as far as T − 1 steps from the
first, so the information in the first half must be carried across the whole
second half.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnkit.nn.init import as_generator

__all__ = ["BASELINE_MSE", "SOLVED_MSE", "AddingBatch", "adding_problem"]

BASELINE_MSE = 1.0 / 6.0  # predicting the mean, 1: Var(v1 + v2) = 2 * 1/12
SOLVED_MSE = 0.01


class AddingBatch(NamedTuple):
    """A batch of the adding problem, time-major."""

    x: np.ndarray  # (T, B, 2): value, marker
    y: np.ndarray  # (B, 1): the sum of the two marked values
    positions: np.ndarray  # (B, 2) int64: the two marked steps, first < second


def adding_problem(
    num_sequences: int,
    length: int,
    rng: np.random.Generator | int | None,
    dtype: type | np.dtype = np.float32,
) -> AddingBatch:
    """Draw ``num_sequences`` sequences of the adding problem, equations (ADD-1)–(ADD-3).

    Parameters
    ----------
    num_sequences : int >= 1
        B, the batch size.
    length : int >= 2
        T, the number of steps.
    rng : Generator or int seed
        The only source of randomness (a fixed seed gives a fixed test set).
    dtype : float32 (default) or float64

    Returns
    -------
    AddingBatch
        ``x`` (T, B, 2), ``y`` (B, 1) and the marker ``positions`` (B, 2).

    Examples
    --------
    >>> b = adding_problem(3, 10, rng=0)
    >>> b.x.shape, b.y.shape, b.x[:, :, 1].sum(axis=0).tolist()
    ((10, 3, 2), (3, 1), [2.0, 2.0, 2.0])
    >>> bool(np.allclose(b.y[:, 0], (b.x[:, :, 0] * b.x[:, :, 1]).sum(axis=0)))
    True
    """
    for name, v, low in (("num_sequences", num_sequences, 1), ("length", length, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"`{name}` must be an integer >= {low}; got {v!r}.")
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"`dtype` must be float32 or float64; got {dt}.")
    gen = as_generator(rng)
    n, n_steps = int(num_sequences), int(length)
    half = n_steps // 2
    values = gen.random((n_steps, n))  #                                               (ADD-1)
    first = gen.integers(0, half, size=n)  #                                      (ADD-2)
    second = gen.integers(half, n_steps, size=n)
    markers = np.zeros((n_steps, n))
    cols = np.arange(n)
    markers[first, cols] = 1.0
    markers[second, cols] = 1.0
    y = values[first, cols] + values[second, cols]  #                             (ADD-3)
    x = np.stack([values, markers], axis=2).astype(dt)
    positions = np.stack([first, second], axis=1).astype(np.int64)
    return AddingBatch(x, y[:, None].astype(dt), positions)
