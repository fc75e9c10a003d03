"""Parameter initialisation for recurrent weights.

PyTorch's default draws every recurrent parameter from U(−1/√H, 1/√H). Two
common alternatives are offered: orthogonal recurrent matrices (one orthogonal
H×H block per gate) and a forget-gate bias of 1 for the LSTM (Jozefowicz et al.
2015; Keras's ``unit_forget_bias``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_generator", "orthogonal", "uniform"]


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Return ``rng`` if it is a Generator, else a Generator seeded with it (None: seed 0)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"`rng` must be a numpy.random.Generator, an int seed or None; got {type(rng).__name__}."
    )


def uniform(
    rng: np.random.Generator, shape: tuple[int, ...], bound: float, dtype: np.dtype
) -> np.ndarray:
    """Draw ``shape`` from U(−bound, bound) in ``dtype``."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def orthogonal(rng: np.random.Generator, n: int, blocks: int, dtype: np.dtype) -> np.ndarray:
    """A ``(blocks*n, n)`` matrix whose ``n×n`` blocks are each random orthogonal matrices.

    Each block is Q of the QR decomposition of a Gaussian matrix, with the signs of
    R's diagonal folded in so the distribution is uniform (Haar) over rotations.
    """
    out = []
    for _ in range(blocks):
        q, r = np.linalg.qr(rng.normal(size=(n, n)))
        out.append(q * np.sign(np.diag(r)))
    return np.concatenate(out, axis=0).astype(dtype)
