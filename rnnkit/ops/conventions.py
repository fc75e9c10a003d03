"""The seed's weight convention mapped onto PyTorch's, for one layer.

The seed writes every gate on the concatenation ``[h_{t−1}, x_t]`` with one
weight matrix and one bias per gate: ``W_* · [h, x] + b_*`` with ``W_*`` of shape
``(H, H + I)``. PyTorch splits the same map in two, ``W_ih x + b_ih + W_hh h + b_hh``,
and stacks the gates in rows. So, for each gate,

    W_hh block = W_*[:, :H],   W_ih block = W_*[:, H:],   b_ih block = b_*,  b_hh block = 0.

GRU: the seed's update ``h_t = (1 − z) ⊙ h_{t−1} + z ⊙ h̃`` keeps the old state
with weight ``1 − z`` where PyTorch keeps it with ``z``. Since ``1 − σ(a) = σ(−a)``,
PyTorch's z block is the seed's ``−W_z``. The seed's GRU has no biases and
applies the reset gate before the matmul, i.e. ``GRU(bias=False, reset_after=False)``.

Each function returns a ``state_dict`` fragment for layer 0 (names ``*_l0``)
that loads into ``RNN``, ``LSTM`` or ``GRU`` with ``load_state_dict``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gru_from_seed", "lstm_from_seed", "rnn_from_seed"]


def _split(W: np.ndarray, H: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Split a seed weight ``(H, H + I)`` into PyTorch's ``(W_hh, W_ih)``."""
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] != H or W.shape[1] <= H:
        raise ValueError(f"`{name}` must have shape (H, H + I) with H={H}; got {W.shape}.")
    return W[:, :H], W[:, H:]


def rnn_from_seed(W: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Map the seed's ``h_t = f(W·[h_{t−1}, x_t] + b)`` to ``RNN`` parameters."""
    H = np.asarray(b).shape[0]
    W_hh, W_ih = _split(W, H, "W")
    b = np.asarray(b)
    return {
        "weight_ih_l0": W_ih.copy(),
        "weight_hh_l0": W_hh.copy(),
        "bias_ih_l0": b.copy(),
        "bias_hh_l0": np.zeros_like(b),
    }


def lstm_from_seed(
    W_f: np.ndarray,
    W_i: np.ndarray,
    W_c: np.ndarray,
    W_o: np.ndarray,
    b_f: np.ndarray,
    b_i: np.ndarray,
    b_c: np.ndarray,
    b_o: np.ndarray,
) -> dict[str, np.ndarray]:
    """Map the seed's LSTM gates (f, i, c̃, o on ``[h, x]``) to ``LSTM`` parameters (i, f, g, o)."""
    H = np.asarray(b_f).shape[0]
    parts = [_split(W, H, n) for W, n in ((W_i, "W_i"), (W_f, "W_f"), (W_c, "W_c"), (W_o, "W_o"))]
    b = np.concatenate([b_i, b_f, b_c, b_o])
    return {
        "weight_ih_l0": np.concatenate([p[1] for p in parts]),
        "weight_hh_l0": np.concatenate([p[0] for p in parts]),
        "bias_ih_l0": b,
        "bias_hh_l0": np.zeros_like(b),
    }


def gru_from_seed(W_z: np.ndarray, W_r: np.ndarray, W: np.ndarray) -> dict[str, np.ndarray]:
    """Map the seed's bias-free GRU (z, r, h̃ on ``[h, x]``) to ``GRU``.

    The target is ``GRU(bias=False, reset_after=False)``.

    Rows are stacked r, z, n; the z block is negated because the seed's z is PyTorch's 1 − z.
    """
    H = np.asarray(W_z).shape[0]
    r, z, n = _split(W_r, H, "W_r"), _split(W_z, H, "W_z"), _split(W, H, "W")
    return {
        "weight_ih_l0": np.concatenate([r[1], -z[1], n[1]]),
        "weight_hh_l0": np.concatenate([r[0], -z[0], n[0]]),
    }
