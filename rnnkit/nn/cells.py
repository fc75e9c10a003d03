"""Single-step cells for step-wise use (decoders): ``RNNCell``, ``LSTMCell``, ``GRUCell``.

A cell is one time step of the matching layer, run by the same op with T = 1, so
its equations and gradients are exactly the layer's. Parameters are PyTorch's
``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih`` and ``bias_hh`` (G*H,).

Calling convention::

    h = cell(x, h=None)                  # RNNCell, GRUCell; x (B, I), h (B, H)
    h, c = cell(x, (h, c)=None)          # LSTMCell
    dx, dh_prev = cell.backward(dh)      # RNNCell, GRUCell
    dx, (dh_prev, dc_prev) = cell.backward((dh, dc))   # LSTMCell; dc may be None

A cell called k times in a loop is backpropagated k times, newest step first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import kernels
from rnnkit.nn.init import as_generator, uniform
from rnnkit.nn.module import Module, Parameter
from rnnkit.ops.validation import check_float_array

__all__ = ["GRUCell", "LSTMCell", "RNNCell"]


class _CellBase(Module):
    _gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        rng: np.random.Generator | int | None = None,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"`{name}` must be a positive integer; got {v!r}.")
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bias
        n_gates, hidden, gen = self._gates, self.hidden_size, as_generator(rng)
        bound = 1.0 / np.sqrt(hidden)
        self.weight_ih = Parameter(
            uniform(gen, (n_gates * hidden, self.input_size), bound, np.dtype(dtype))
        )
        self.weight_hh = Parameter(uniform(gen, (n_gates * hidden, hidden), bound, np.dtype(dtype)))
        if bias:
            self.bias_ih = Parameter(uniform(gen, (n_gates * hidden,), bound, np.dtype(dtype)))
            self.bias_hh = Parameter(uniform(gen, (n_gates * hidden,), bound, np.dtype(dtype)))

    def _w(self) -> list[np.ndarray | None]:
        b_ih = getattr(self, "bias_ih", None)
        b_hh = getattr(self, "bias_hh", None)
        return [
            self.weight_ih.data,
            self.weight_hh.data,
            None if b_ih is None else b_ih.data,
            None if b_hh is None else b_hh.data,
        ]

    def _x(self, x: Any) -> np.ndarray:
        x = check_float_array("x", x, ndim=2)
        if x.shape[1] != self.input_size:
            raise ValueError(f"`x` must have shape (B, {self.input_size}); got {x.shape}.")
        return x[None]

    def _checked(self, run: Any, cache: Any) -> Any:
        """Run a backward op; on bad input put the cache back so the call changes nothing."""
        try:
            return run()
        except (TypeError, ValueError):
            self._restore(cache)
            raise

    def _add_grads(self, g: Any) -> None:
        self.weight_ih.grad += g.dW_ih
        self.weight_hh.grad += g.dW_hh
        if self.bias:
            self.bias_ih.grad += g.db_ih
            self.bias_hh.grad += g.db_hh

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size})"


class RNNCell(_CellBase):
    """One step of the Elman RNN, (RNN-1)–(RNN-2): ``h' = f(W_ih x + b_ih + W_hh h + b_hh)``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        **kwargs: Any,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"`nonlinearity` must be 'tanh' or 'relu'; got {nonlinearity!r}.")
        super().__init__(input_size, hidden_size, bias, **kwargs)
        self.nonlinearity = nonlinearity

    def forward(self, x: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
        """Return the next hidden state ``(B, H)``."""
        _, h_new, cache = kernels.rnn_forward(
            self._x(x), *self._w(), h0=h, nonlinearity=self.nonlinearity, need_cache=self.training
        )
        self._push(cache)
        return h_new

    def backward(self, dh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(dx, dh_prev)`` and add the weight gradients (RNN-1')–(RNN-2')."""
        cache = self._pop()
        g = self._checked(lambda: kernels.rnn_backward(None, dh, cache), cache)
        self._add_grads(g)
        return g.dx[0], g.dh0


class GRUCell(_CellBase):
    """One step of the GRU, (GRU-1)–(GRU-4); ``reset_after`` as in :class:`rnnkit.nn.GRU`."""

    _gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        reset_after: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, **kwargs)
        self.reset_after = bool(reset_after)

    def forward(self, x: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
        """Return the next hidden state ``(B, H)``."""
        _, h_new, cache = kernels.gru_forward(
            self._x(x), *self._w(), h0=h, reset_after=self.reset_after, need_cache=self.training
        )
        self._push(cache)
        return h_new

    def backward(self, dh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(dx, dh_prev)`` and add the weight gradients (GRU-1')–(GRU-4')."""
        cache = self._pop()
        g = self._checked(lambda: kernels.gru_backward(None, dh, cache), cache)
        self._add_grads(g)
        return g.dx[0], g.dh0


class LSTMCell(_CellBase):
    """One step of the LSTM, (LSTM-1)–(LSTM-5), gates i, f, g, o."""

    _gates = 4

    def forward(
        self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the next state ``(h, c)``, each ``(B, H)``."""
        if state is not None and (not isinstance(state, (tuple, list)) or len(state) != 2):
            raise TypeError(f"`state` must be a tuple (h, c); got {type(state).__name__}.")
        h0, c0 = (None, None) if state is None else state
        _, h, c, cache = kernels.lstm_forward(
            self._x(x), *self._w(), h0=h0, c0=c0, need_cache=self.training
        )
        self._push(cache)
        return h, c

    def backward(
        self, dstate: tuple[np.ndarray | None, np.ndarray | None]
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Return ``(dx, (dh_prev, dc_prev))`` and add the weight gradients (LSTM-1')–(LSTM-5')."""
        if not isinstance(dstate, (tuple, list)) or len(dstate) != 2:
            raise TypeError(f"`dstate` must be a tuple (dh, dc); got {type(dstate).__name__}.")
        cache = self._pop()
        g = self._checked(lambda: kernels.lstm_backward(None, dstate[0], dstate[1], cache), cache)
        self._add_grads(g)
        return g.dx[0], (g.dh0, g.dc0)
