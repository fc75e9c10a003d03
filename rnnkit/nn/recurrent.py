"""Stacked, bidirectional recurrent layers: ``RNN``, ``LSTM`` and ``GRU``.

Each layer runs the sequence ops of :mod:`rnnkit.ops` once per (layer, direction).
Names, shapes and gate order of the parameters are PyTorch's, so a PyTorch
``state_dict`` converted to NumPy loads as it is::

    weight_ih_l{k}[_reverse]  (G*H, I) for k = 0, (G*H, D*H) above
    weight_hh_l{k}[_reverse]  (G*H, H)
    bias_ih_l{k}[_reverse]    (G*H,)
    bias_hh_l{k}[_reverse]    (G*H,)

with G = 1 (RNN), 4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n).

Calling convention::

    y, state = m(x, state=None, lengths=None)
    dx, dstate = m.backward(dy, dstate=None)

``x`` is ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``); ``y`` is ``(T, B, D*H)``
with the forward and reverse directions concatenated on the last axis; ``state``
is ``h`` or ``(h, c)`` (LSTM), each ``(num_layers*D, B, H)`` with index
``layer*D + direction`` (``batch_first`` does not apply to it). With ``lengths``,
padded steps output zeros, the final state is each sequence's state at its own
last step, and the reverse direction starts at each sequence's own end.
Dropout (inverted, seeded) is applied to the outputs of every layer but the last.
``weight_drop`` (keyword) is DropConnect on the recurrent weights (Merity et al. 2018,
equation (WD-1) of ``docs/equations.md``): in training, each forward call runs every
layer with ``W_hh ⊙ M / (1 − p)``, ``M`` a fresh Bernoulli(1 − p) mask of ``W_hh``'s
shape, the same at every time step; backward masks ``∂W_hh`` the same way (WD-2).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rnnkit import kernels
from rnnkit.nn.init import as_generator, orthogonal, uniform
from rnnkit.nn.module import Module, Parameter
from rnnkit.nn.recurrent_checks import check_dstate, check_dy, check_state
from rnnkit.ops.validation import check_float_array, check_lengths, check_same_dtype

__all__ = ["GRU", "LSTM", "RNN", "reverse_padded"]


def reverse_padded(seq: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Reverse each sequence of ``seq`` (T, B, ...) within its own length; padding stays last.

    The map is its own inverse, so it also undoes itself on the reverse direction's outputs.
    """
    if lengths is None:
        return seq[::-1]
    n_steps, batch = seq.shape[:2]
    t = np.arange(n_steps)[:, None]
    idx = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)
    return seq[idx, np.arange(batch)[None, :]]


class _Step(NamedTuple):
    """What backward needs from one forward call of the whole stack."""

    caches: list[Any]  # one op cache per (layer, direction), index layer*D + d
    masks: list[np.ndarray | None]  # dropout mask applied to each layer's output
    hh_masks: list[np.ndarray | None]  # weight-drop mask of W_hh, index layer*D + d
    lengths: np.ndarray | None
    shape: tuple[int, int, int]  # (T, B, I) time-major


class _RecurrentBase(Module):
    """Shared machinery of RNN, LSTM and GRU; subclasses set the op and the gate count."""

    _gates: int = 1
    _has_cell: bool = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        rng: np.random.Generator | int | None = None,
        dtype: type | np.dtype = np.float32,
        recurrent_init: str = "uniform",
        weight_drop: float = 0.0,
    ) -> None:
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"`{name}` must be a positive integer; got {v!r}.")
        if not isinstance(num_layers, (int, np.integer)) or num_layers < 1:
            raise ValueError(f"`num_layers` must be a positive integer; got {num_layers!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1); got {dropout!r}.")
        if not 0.0 <= weight_drop < 1.0:
            raise ValueError(f"`weight_drop` must be in [0, 1); got {weight_drop!r}.")
        if recurrent_init not in ("uniform", "orthogonal"):
            raise ValueError(
                f"`recurrent_init` must be 'uniform' or 'orthogonal'; got {recurrent_init!r}."
            )
        if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"`dtype` must be float32 or float64; got {np.dtype(dtype)}.")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.weight_drop = float(weight_drop)
        self.bidirectional = bool(bidirectional)
        self.recurrent_init = recurrent_init
        self.rng = as_generator(rng)
        n_dir, hidden, n_gates = self.num_directions, self.hidden_size, self._gates
        for k in range(self.num_layers):
            for d in range(n_dir):
                sfx = f"_l{k}" + ("_reverse" if d else "")
                in_k = self.input_size if k == 0 else n_dir * hidden
                setattr(
                    self,
                    "weight_ih" + sfx,
                    Parameter(np.zeros((n_gates * hidden, in_k), dtype=dtype)),
                )
                setattr(
                    self,
                    "weight_hh" + sfx,
                    Parameter(np.zeros((n_gates * hidden, hidden), dtype=dtype)),
                )
                if self.bias:
                    setattr(
                        self, "bias_ih" + sfx, Parameter(np.zeros(n_gates * hidden, dtype=dtype))
                    )
                    setattr(
                        self, "bias_hh" + sfx, Parameter(np.zeros(n_gates * hidden, dtype=dtype))
                    )
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        """D: 2 if bidirectional else 1."""
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        """Draw every parameter from U(−1/√H, 1/√H) (PyTorch's default), using ``self.rng``.

        With ``recurrent_init="orthogonal"`` each gate block of ``weight_hh`` is then
        replaced by a random orthogonal matrix.
        """
        bound = 1.0 / np.sqrt(self.hidden_size)
        for name, p in self.named_parameters():
            p.data = uniform(self.rng, p.shape, bound, p.data.dtype)
            if self.recurrent_init == "orthogonal" and name.startswith("weight_hh"):
                p.data = orthogonal(self.rng, self.hidden_size, self._gates, p.data.dtype)
            p.grad = np.zeros_like(p.data)

    def _weights(self, k: int, d: int) -> list[Parameter | None]:
        sfx = f"_l{k}" + ("_reverse" if d else "")
        return [
            getattr(self, "weight_ih" + sfx),
            getattr(self, "weight_hh" + sfx),
            getattr(self, "bias_ih" + sfx, None),
            getattr(self, "bias_hh" + sfx, None),
        ]

    def _weight_drop_mask(self, w_hh: np.ndarray) -> np.ndarray | None:
        """The scaled mask ``M / (1 − p)`` of (WD-1) for one forward call, or None."""
        if not self.training or self.weight_drop == 0:
            return None
        dtype = w_hh.dtype
        keep = self.rng.random(w_hh.shape) >= self.weight_drop
        return keep.astype(dtype) / dtype.type(1.0 - self.weight_drop)

    # -- the op of one layer and direction, implemented by subclasses -----------
    def _op_forward(
        self,
        x: np.ndarray,
        w: list[np.ndarray | None],
        h0: np.ndarray | None,
        c0: np.ndarray | None,
        lengths: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Any]:
        raise NotImplementedError

    def _op_backward(
        self, dy: np.ndarray, dh: np.ndarray | None, dc: np.ndarray | None, cache: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[np.ndarray | None]]:
        raise NotImplementedError

    # -- forward / backward -----------------------------------------------------
    def forward(
        self, x: np.ndarray, state: Any = None, lengths: np.ndarray | None = None
    ) -> tuple[np.ndarray, Any]:
        """Run every layer and direction; see the module docstring for shapes."""
        x = check_float_array("x", x, ndim=3)
        dtype = self.weight_ih_l0.data.dtype
        check_same_dtype("x", x, dtype)
        if self.batch_first:
            x = x.transpose(1, 0, 2)
        n_steps, batch, n_in = x.shape
        if n_in != self.input_size:
            layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(
                f"`x` must have feature size I={self.input_size} (layout {layout}); "
                f"got {n_in} in shape {x.shape}."
            )
        if n_steps < 1:
            raise ValueError("`x` must have at least one time step.")
        lens = check_lengths(lengths, n_steps, batch)  # x's finiteness: checked by each op
        # no state: each op starts from zeros itself (None), saving a check per layer
        states = None if state is None else check_state(self, state, batch, dtype)
        n_dir, n_layers = self.num_directions, self.num_layers
        h_n = np.empty((n_layers * n_dir, batch, self.hidden_size), dtype=dtype)
        c_n = np.empty_like(h_n) if self._has_cell else None
        caches: list[Any] = []
        masks: list[np.ndarray | None] = []
        hh_masks: list[np.ndarray | None] = []
        layer_in = x
        for k in range(n_layers):
            outs = []
            for d in range(n_dir):
                j = k * n_dir + d
                w = [None if p is None else p.data for p in self._weights(k, d)]
                hh_mask = self._weight_drop_mask(w[1])
                if hh_mask is not None:
                    w[1] = w[1] * hh_mask  #                                       (WD-1)
                hh_masks.append(hh_mask)
                inp = layer_in if d == 0 else reverse_padded(layer_in, lens)
                h0 = None if states is None else states[0][j]
                c0 = None if states is None or not self._has_cell else states[1][j]
                y, h, c, cache = self._op_forward(inp, w, h0, c0, lens)
                outs.append(y if d == 0 else reverse_padded(y, lens))
                h_n[j] = h
                if c_n is not None:
                    c_n[j] = c
                caches.append(cache)
            out = outs[0] if n_dir == 1 else np.concatenate(outs, axis=2)
            mask = None
            if self.training and self.dropout > 0 and k < n_layers - 1:
                keep = self.rng.random(out.shape) >= self.dropout
                mask = keep.astype(dtype) / dtype.type(1.0 - self.dropout)
                out = out * mask
            masks.append(mask)
            layer_in = out
        self._push(_Step(caches, masks, hh_masks, lens, (n_steps, batch, n_in)))
        y = layer_in.transpose(1, 0, 2) if self.batch_first else layer_in
        return y, ((h_n, c_n) if self._has_cell else h_n)

    def backward(self, dy: np.ndarray | None, dstate: Any = None) -> tuple[np.ndarray, Any]:
        """Backpropagate the newest forward pass: return ``(dx, dstate0)``, add weight grads."""
        step: _Step = self._pop()
        n_steps, batch, _ = step.shape
        n_dir, n_layers, hidden = self.num_directions, self.num_layers, self.hidden_size
        dtype = self.weight_ih_l0.data.dtype
        try:
            d_out = check_dy(self, dy, n_steps, batch, dtype)
            dstates = check_dstate(self, dstate, batch, dtype)
        except (TypeError, ValueError):
            self._restore(step)  # a failed call leaves the stack as it was
            raise
        dh0 = np.zeros((n_layers * n_dir, batch, hidden), dtype=dtype)
        dc0 = np.zeros_like(dh0) if self._has_cell else None
        for k in reversed(range(n_layers)):
            if step.masks[k] is not None:
                d_out = d_out * step.masks[k]
            d_in = None
            for d in range(n_dir):
                j = k * n_dir + d
                g = d_out[:, :, d * hidden : (d + 1) * hidden]
                if d == 1:
                    g = reverse_padded(g, step.lengths)
                dh_n = None if dstates is None else dstates[0][j]  # None: zeros, in the op
                dc = None if dstates is None or not self._has_cell else dstates[1][j]
                dx, dh, dcp, wgrads = self._op_backward(g, dh_n, dc, step.caches[j])
                if d == 1:
                    dx = reverse_padded(dx, step.lengths)
                d_in = dx if d_in is None else d_in + dx
                dh0[j] = dh
                if dc0 is not None:
                    dc0[j] = dcp
                if step.hh_masks[j] is not None:
                    wgrads[1] = wgrads[1] * step.hh_masks[j]  #                      (WD-2)
                for p, gw in zip(self._weights(k, d), wgrads, strict=True):
                    if p is not None:
                        p.grad += gw
            d_out = d_in
        dx = d_out.transpose(1, 0, 2) if self.batch_first else d_out
        return dx, ((dh0, dc0) if self._has_cell else dh0)

    def __repr__(self) -> str:
        extra = ", bidirectional=True" if self.bidirectional else ""
        return (
            f"{type(self).__name__}({self.input_size}, {self.hidden_size}, "
            f"num_layers={self.num_layers}{extra})"
        )


class RNN(_RecurrentBase):
    """Elman RNN, equations (RNN-1)–(RNN-2): ``h_t = f(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)``.

    ``f`` is tanh (default) or relu, chosen by ``nonlinearity``. Arguments, shapes and
    parameter names as :class:`torch.nn.RNN`; see the module docstring.

    Attributes
    ----------
    weight_ih_l{k}[_reverse] : (H, I) for k = 0, else (H, D*H); U(−1/√H, 1/√H)
    weight_hh_l{k}[_reverse] : (H, H)
    bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse] : (H,)
    """

    _gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        **kwargs: Any,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"`nonlinearity` must be 'tanh' or 'relu'; got {nonlinearity!r}.")
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            **kwargs,
        )
        self.nonlinearity = nonlinearity

    def _op_forward(self, x, w, h0, c0, lengths):  # type: ignore[no-untyped-def]
        y, h, cache = kernels.rnn_forward(
            x, *w, h0=h0, lengths=lengths, nonlinearity=self.nonlinearity, need_cache=self.training
        )
        return y, h, None, cache

    def _op_backward(self, dy, dh, dc, cache):  # type: ignore[no-untyped-def]
        g = kernels.rnn_backward(dy, dh, cache)
        return g.dx, g.dh0, None, [g.dW_ih, g.dW_hh, g.db_ih, g.db_hh]


class LSTM(_RecurrentBase):
    """LSTM, equations (LSTM-1)–(LSTM-5), gates stacked i, f, g, o as in :class:`torch.nn.LSTM`.

    ``forget_bias`` (keyword, default None) sets the forget-gate slice of every
    ``bias_ih`` to that value and of ``bias_hh`` to zero after the uniform draw.

    Attributes
    ----------
    weight_ih_l{k}[_reverse] : (4H, I) for k = 0, else (4H, D*H); U(−1/√H, 1/√H)
    weight_hh_l{k}[_reverse] : (4H, H)
    bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse] : (4H,)
    """

    _gates = 4
    _has_cell = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        forget_bias: float | None = None,
        **kwargs: Any,
    ) -> None:
        object.__setattr__(self, "forget_bias", forget_bias)  # read by reset_parameters
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            **kwargs,
        )

    def reset_parameters(self) -> None:
        """PyTorch's uniform draw, then the optional forget-gate bias (see the class docstring)."""
        super().reset_parameters()
        if self.forget_bias is None or not self.bias:
            return
        hidden = self.hidden_size
        for name, p in self.named_parameters():
            if name.startswith("bias_ih"):
                p.data[hidden : 2 * hidden] = self.forget_bias
            elif name.startswith("bias_hh"):
                p.data[hidden : 2 * hidden] = 0.0

    def _op_forward(self, x, w, h0, c0, lengths):  # type: ignore[no-untyped-def]
        return kernels.lstm_forward(x, *w, h0=h0, c0=c0, lengths=lengths, need_cache=self.training)

    def _op_backward(self, dy, dh, dc, cache):  # type: ignore[no-untyped-def]
        g = kernels.lstm_backward(dy, dh, dc, cache)
        return g.dx, g.dh0, g.dc0, [g.dW_ih, g.dW_hh, g.db_ih, g.db_hh]


class GRU(_RecurrentBase):
    """GRU, equations (GRU-1)–(GRU-4), gates stacked r, z, n as in :class:`torch.nn.GRU`.

    ``reset_after=True`` (default; PyTorch, cuDNN, Keras) applies the reset gate after
    the recurrent matmul, ``r ⊙ (W_hn h + b_hn)``; ``reset_after=False`` applies it
    before, ``W_hn (r ⊙ h)``, as the seed, Cho et al. (2014), Keras
    ``reset_after=False`` and ONNX ``linear_before_reset=0`` do.

    Attributes
    ----------
    weight_ih_l{k}[_reverse] : (3H, I) for k = 0, else (3H, D*H); U(−1/√H, 1/√H)
    weight_hh_l{k}[_reverse] : (3H, H)
    bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse] : (3H,)
    """

    _gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        reset_after: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            **kwargs,
        )
        self.reset_after = bool(reset_after)

    def _op_forward(self, x, w, h0, c0, lengths):  # type: ignore[no-untyped-def]
        y, h, cache = kernels.gru_forward(
            x, *w, h0=h0, lengths=lengths, reset_after=self.reset_after, need_cache=self.training
        )
        return y, h, None, cache

    def _op_backward(self, dy, dh, dc, cache):  # type: ignore[no-untyped-def]
        g = kernels.gru_backward(dy, dh, cache)
        return g.dx, g.dh0, None, [g.dW_ih, g.dW_hh, g.db_ih, g.db_hh]
