"""A finite-difference check of every recurrent layer, as run by ``rnnkit gradcheck``.

Each layer is built in float64 with nonzero biases, run on a small ragged batch with a
random initial state, and its hand-written BPTT compared with central differences
(GC-1) of a random projection of its outputs (GC-3): every parameter, the input and
the initial state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from rnnkit.diagnostics.gradcheck import GradcheckReport, gradcheck_module
from rnnkit.nn.module import Module
from rnnkit.nn.recurrent import GRU, LSTM, RNN

__all__ = ["gradcheck_all_cells", "gradcheck_recurrent"]


def gradcheck_recurrent(
    layer: Module,
    x: np.ndarray,
    state: Any = None,
    lengths: np.ndarray | None = None,
    seed: int = 0,
) -> GradcheckReport:
    """Check ``layer``'s BPTT (an RNN/LSTM/GRU in float64) on ``x``, ``state`` and ``lengths``."""
    return gradcheck_module(
        layer,
        (x, state, lengths),
        backward=lambda m, d: (*m.backward(*d), None),
        seed=seed,
    )


def gradcheck_all_cells(seed: int = 0) -> Iterator[tuple[str, GradcheckReport]]:
    """Yield ``(description, report)`` for each cell kind on a 2-layer bidirectional stack."""
    rng = np.random.default_rng(seed)
    n_steps, batch, n_in, hidden, n_layers = 5, 3, 3, 4, 2
    lengths = np.array([5, 1, 3])
    layers = {
        "RNN tanh": RNN(
            n_in, hidden, n_layers, nonlinearity="tanh", bidirectional=True, dtype=np.float64
        ),
        "RNN relu": RNN(
            n_in, hidden, n_layers, nonlinearity="relu", bidirectional=True, dtype=np.float64
        ),
        "LSTM": LSTM(n_in, hidden, n_layers, bidirectional=True, dtype=np.float64),
        "GRU reset_after=True": GRU(n_in, hidden, n_layers, bidirectional=True, dtype=np.float64),
        "GRU reset_after=False": GRU(
            n_in, hidden, n_layers, bidirectional=True, reset_after=False, dtype=np.float64
        ),
    }
    for name, layer in layers.items():
        for p in layer.parameters():  # larger than the default init, biases nonzero
            p.data = rng.uniform(-0.7, 0.7, size=p.shape)
        x = rng.normal(size=(n_steps, batch, n_in))
        h0 = rng.normal(size=(n_layers * 2, batch, hidden))
        state = (h0, rng.normal(size=h0.shape)) if isinstance(layer, LSTM) else h0
        desc = (
            f"{name}: T={n_steps} B={batch} I={n_in} H={hidden}, {n_layers} layers, "
            f"bidirectional, lengths {lengths}"
        )
        yield desc, gradcheck_recurrent(layer, x, state, lengths, seed=seed)
