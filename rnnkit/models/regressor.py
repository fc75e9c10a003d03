"""``SequenceRegressor``: a recurrent layer read at its last step by a Linear map, trained on MSE.

Equations
---------
(REG-1) y_1 … y_T = RNN(x_1 … x_T)       the stacked recurrent layer (RNN/LSTM/GRU)
(REG-2) ŷ = W_o y_T + b_o                 one vector per sequence (sequence-to-one)
(REG-3) L = MSE(ŷ, y)                     (MSE-1), mean over the batch and outputs

Backward: (MSE-1') gives ∂L/∂ŷ, (LIN-1') gives ∂L/∂y_T, and the recurrent layer's BPTT
walks from the last step back to the first; every other ∂L/∂y_t is zero, so whatever
reaches early steps has flowed through the recurrence. This is the model of the adding
problem and the base of :class:`rnnkit.models.Forecaster`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.nn.init import as_generator
from rnnkit.nn.layers import Linear
from rnnkit.nn.module import Module
from rnnkit.nn.recurrent import GRU, LSTM, RNN
from rnnkit.ops.losses import mse
from rnnkit.optim import Optimizer, clip_grad_norm

__all__ = ["CELLS", "SequenceRegressor", "regression_step"]

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


class SequenceRegressor(Module):
    """Sequence-to-one regression, equations (REG-1)–(REG-3).

    Parameters
    ----------
    input_size : int
        I, features per step.
    hidden_size : int
        H.
    output_size : int
        O, the size of the prediction ŷ.
    num_layers : int
        Stacked recurrent layers.
    cell : {"lstm", "gru", "rnn"}
        The recurrent layer ("rnn" is tanh).
    forget_bias : float, optional
        LSTM only: the forget-gate bias after initialisation (1.0 is a common choice).
    recurrent_init : {"uniform", "orthogonal"}
        Initialisation of the recurrent matrices (see :mod:`rnnkit.nn.init`).
    rng : Generator or int seed
    dtype : float32 (default) or float64

    Attributes
    ----------
    rnn.* : the recurrent layer's PyTorch-named parameters
    head.weight : (O, H);  head.bias : (O,)

    Shapes: ``x`` (T, B, I) time-major -> ``ŷ`` (B, O).

    Examples
    --------
    >>> m = SequenceRegressor(2, 4, cell="gru", rng=0)
    >>> x = np.zeros((5, 3, 2), dtype=np.float32)
    >>> loss, dpred = m.loss(m(x), np.ones((3, 1), dtype=np.float32))
    >>> m.backward(dpred).shape
    (5, 3, 2)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int = 1,
        num_layers: int = 1,
        cell: str = "lstm",
        forget_bias: float | None = None,
        recurrent_init: str = "uniform",
        rng: np.random.Generator | int | None = None,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"`cell` must be one of {sorted(CELLS)}; got {cell!r}.")
        if forget_bias is not None and cell != "lstm":
            raise ValueError(f"`forget_bias` applies to the LSTM only; got cell {cell!r}.")
        self.config = {
            "input_size": input_size,
            "hidden_size": hidden_size,
            "output_size": output_size,
            "num_layers": num_layers,
            "cell": cell,
            "forget_bias": forget_bias,
            "recurrent_init": recurrent_init,
            "dtype": np.dtype(dtype).name,
        }  # JSON-ready constructor arguments: type(self)(**config) rebuilds the model
        gen = as_generator(rng)
        seeds = gen.integers(0, 2**63 - 1, size=2)
        extra: dict[str, Any] = {} if forget_bias is None else {"forget_bias": forget_bias}
        self.cell = cell
        self.rnn = CELLS[cell](
            input_size,
            hidden_size,
            num_layers,
            rng=int(seeds[0]),
            dtype=dtype,
            recurrent_init=recurrent_init,
            **extra,
        )
        self.head = Linear(hidden_size, output_size, rng=int(seeds[1]), dtype=dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Map ``x`` (T, B, I) to ``ŷ`` (B, O), (REG-1)–(REG-2)."""
        y, _ = self.rnn(x)  # (T, B, H)                                          (REG-1)
        self._push(y.shape[0])  # T, for the backward
        return self.head(y[-1])  # (B, O)                                        (REG-2)

    def backward(self, dpred: np.ndarray) -> np.ndarray:
        """Backpropagate the newest forward pass from ∂L/∂ŷ; return ∂L/∂x (T, B, I)."""
        if not self._stack:
            self._pop()  # raises, naming this module
        dlast = self.head.backward(dpred)  # (B, H); checks dpred first         (LIN-1')
        n_steps = self._pop()
        dy = np.zeros((n_steps, *dlast.shape), dtype=dlast.dtype)
        dy[-1] = dlast  # only the last output reaches the loss
        dx, _ = self.rnn.backward(dy)
        return dx

    @staticmethod
    def loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """(REG-3): ``(L, ∂L/∂ŷ)`` with L the mean squared error (MSE-1)."""
        return mse(pred, np.asarray(target, dtype=pred.dtype))

    def output_grad(self, x: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """``(L, ∂L/∂y)`` for the recurrent layer's output y (T, B, H), without side effects.

        Runs in eval mode (nothing recorded, no gradient accumulated): ∂L/∂ŷ by
        (MSE-1'), then ∂L/∂y_T = ∂L/∂ŷ W_o by (LIN-1'); ∂L/∂y_t = 0 for t < T. This is
        what :func:`rnnkit.diagnostics.model_gradient_flow` feeds to the layer's BPTT.
        """
        was_training = self.training
        self.eval()
        try:
            y, _ = self.rnn(x)
            pred = self.head(y[-1])
        finally:
            self.train(was_training)
        loss, dpred = self.loss(pred, target)
        dy = np.zeros_like(y)
        dy[-1] = dpred @ self.head.weight.data  #                                (LIN-1')
        return loss, dy

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``ŷ`` for ``x`` in eval mode (nothing recorded); the mode is restored."""
        was_training = self.training
        self.eval()
        try:
            return self.forward(x)
        finally:
            self.train(was_training)


def regression_step(
    model: SequenceRegressor,
    optimizer: Optimizer,
    x: np.ndarray,
    target: np.ndarray,
    clip: float | None = None,
) -> tuple[float, float]:
    """One optimizer step on a batch: forward, (REG-3), BPTT, optional clipping, update.

    Returns ``(loss, gradient norm before clipping)``.
    """
    model.zero_grad()
    pred = model(x)
    loss, dpred = model.loss(pred, target)
    model.backward(dpred)
    params = model.parameters()
    if clip:
        norm = clip_grad_norm(params, clip)
    else:
        norm = float(np.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2)) for p in params)))
    optimizer.step()
    return loss, norm
