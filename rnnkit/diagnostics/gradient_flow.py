"""Gradient flow through time: ∂L/∂h_t (and ∂L/∂c_t) for every step, layer and direction.

The seed's central claim is that a tanh RNN loses long-range gradients and that the
LSTM and GRU gates keep them. This module makes the claim measurable. From one
BPTT pass of a stacked :class:`~rnnkit.nn.RNN` / ``LSTM`` / ``GRU`` it returns
the gradient of the loss with respect to each step's new state,

(GF-1) g_t = ∂L/∂h'_t            t = 1 … T, for each layer k and direction d
(GF-2) ‖g_t‖ = (1/B_t) Σ_{b : t ≤ length_b} ‖g_t^{(b)}‖₂

i.e. the Euclidean norm over the H units of each sequence's gradient, averaged over
the B_t sequences that have a step t (NaN where none has). For the LSTM the same is
reported for the cell, ∂L/∂c'_t, also a total derivative: it includes the path through
h'_t = o_t ⊙ tanh(c'_t) (LSTM-5), as the backward's ``dc`` after (LSTM-5') does (the
"constant error carousel" of Hochreiter & Schmidhuber). ``h'_t`` is the state written
by step t (for padded steps the op keeps the previous state and ``g_t`` is zero,
(SEQ-2')); g_t is the *total* derivative: everything the loss receives from h'_t,
directly through the output y_t and through every later step. Steps are numbered in the input's time
order for both directions; the reverse direction's flow runs from t = T back to 1.

Where the numbers come from
---------------------------
g_t is a by-product of the hand-written backward: the sequence ops
(:func:`~rnnkit.ops.rnn.rnn_backward`, :func:`~rnnkit.ops.lstm.lstm_backward`,
:func:`~rnnkit.ops.gru.gru_backward`) take an optional ``trace`` list into which
their BPTT loop appends the ``dh`` (and ``dc``) it is about to use at each step.
Nothing is differentiated a second time. This module drives those reference ops,
layer by layer and direction by direction in the layer's own order, in float64 on
a copy of the layer's parameters (the fast float32 kernels need not support the
trace). Dropout between layers is not applied: the flow is measured as in eval
mode, a property of the weights rather than of a random mask.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rnnkit.nn.recurrent import GRU, LSTM, RNN, reverse_padded
from rnnkit.ops.gru import gru_backward, gru_forward
from rnnkit.ops.lstm import lstm_backward, lstm_forward
from rnnkit.ops.rnn import rnn_backward, rnn_forward
from rnnkit.ops.validation import check_float_array, check_lengths, check_shape

__all__ = ["GradientFlow", "gradient_flow", "model_gradient_flow", "step_norms"]


class GradientFlow(NamedTuple):
    """Result of :func:`gradient_flow`; arrays are float64, steps in input time order.

    Attributes
    ----------
    cell : "rnn", "lstm" or "gru"
    dh_norm : (L, D, T) batch mean of ‖∂L/∂h'_t‖₂, (GF-2)
    dc_norm : (L, D, T) the same for the LSTM cell state ∂L/∂c'_t; None otherwise
    dh : (L, D, T, B, H) the gradients themselves, or None unless ``keep_grads``
    dc : (L, D, T, B, H) for the LSTM with ``keep_grads``, else None
    dx : (T, B, I) ∂L/∂x, time-major, the same as the layer's own backward returns
    """

    cell: str
    dh_norm: np.ndarray
    dc_norm: np.ndarray | None
    dh: np.ndarray | None
    dc: np.ndarray | None
    dx: np.ndarray

    def to_json(self) -> dict[str, Any]:
        """The norms as nested lists ``[layer][direction][t]`` (NaN written as None)."""

        def lists(a: np.ndarray | None) -> Any:
            if a is None:
                return None
            return [[[None if np.isnan(v) else float(v) for v in row] for row in k] for k in a]

        return {"cell": self.cell, "dh_norm": lists(self.dh_norm), "dc_norm": lists(self.dc_norm)}


def step_norms(g: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """(GF-2): mean over the sequences having step t of ‖g[t, b]‖₂; ``g`` is (T, B, H).

    Returns a (T,) float64 array, NaN at steps no sequence reaches.

    Examples
    --------
    >>> g = np.zeros((2, 2, 2)); g[0, 0] = [3.0, 4.0]
    >>> step_norms(g).tolist(), step_norms(g, np.array([2, 1])).tolist()
    ([2.5, 0.0], [2.5, 0.0])
    """
    norms = np.sqrt(np.einsum("tbh,tbh->tb", g, g, dtype=np.float64))  # (T, B)
    if lengths is None:
        return norms.mean(axis=1)
    valid = np.arange(g.shape[0])[:, None] < lengths[None, :]  # (T, B)
    count = valid.sum(axis=1)
    total = np.where(valid, norms, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _cell_of(layer: object) -> str:
    for cls, name in ((LSTM, "lstm"), (GRU, "gru"), (RNN, "rnn")):
        if isinstance(layer, cls):
            return name
    raise TypeError(
        f"`layer` must be an rnnkit.nn RNN, LSTM or GRU; got {type(layer).__name__}. "
        "For a model, pass its recurrent layer or use model_gradient_flow."
    )


def _weights(layer: Any, k: int, d: int) -> list[np.ndarray | None]:
    """The float64 parameters of layer k, direction d, by their PyTorch names."""
    sfx = f"_l{k}" + ("_reverse" if d else "")
    out: list[np.ndarray | None] = []
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        p = getattr(layer, name + sfx, None)
        out.append(None if p is None else p.data.astype(np.float64))
    return out


def _as_time_major(layer: Any, name: str, a: object, feature: int) -> np.ndarray:
    arr = check_float_array(name, a, ndim=3).astype(np.float64)
    if layer.batch_first:
        arr = arr.transpose(1, 0, 2)
    if arr.shape[2] != feature:
        raise ValueError(
            f"`{name}` must have feature size {feature}; got shape {arr.shape} "
            f"({'(B, T, F)' if layer.batch_first else '(T, B, F)'} layout)."
        )
    return arr


def _states(layer: Any, name: str, s: Any, n_states: int, batch: int) -> list[np.ndarray | None]:
    """``h`` or ``(h, c)`` as float64 (L*D, B, H) arrays; None entries stay None."""
    if s is None:
        return [None] * n_states
    parts = list(s) if n_states == 2 and isinstance(s, (tuple, list)) else [s]
    if len(parts) != n_states:
        raise TypeError(
            f"`{name}` of an LSTM must be a tuple (h, c); got {type(s).__name__}."
            if n_states == 2
            else f"`{name}` must be one (L*D, B, H) array; got {type(s).__name__}."
        )
    shape = (layer.num_layers * layer.num_directions, batch, layer.hidden_size)
    out: list[np.ndarray | None] = []
    for p in parts:
        if p is None:
            out.append(None)
            continue
        arr = check_float_array(name, p, ndim=3).astype(np.float64)
        check_shape(name, arr, shape, hint="It is (num_layers*D, B, H), like the layer's state.")
        out.append(arr)
    return out


def _forward(
    layer: Any, cell: str, x: np.ndarray, h0c0: list[Any], lens: np.ndarray | None
) -> list[Any]:
    """Run the stack through the reference ops, as the layer does; return the op caches."""
    n_dir = layer.num_directions
    caches: list[Any] = []
    layer_in = x
    for k in range(layer.num_layers):
        outs = []
        for d in range(n_dir):
            j = k * n_dir + d
            w = _weights(layer, k, d)
            inp = layer_in if d == 0 else reverse_padded(layer_in, lens)
            h0 = None if h0c0[0] is None else h0c0[0][j]
            if cell == "lstm":
                c0 = None if h0c0[1] is None else h0c0[1][j]
                y, _, _, cache = lstm_forward(inp, *w, h0=h0, c0=c0, lengths=lens)
            elif cell == "gru":
                reset_after = layer.reset_after
                y, _, cache = gru_forward(inp, *w, h0=h0, lengths=lens, reset_after=reset_after)
            else:
                act = layer.nonlinearity
                y, _, cache = rnn_forward(inp, *w, h0=h0, lengths=lens, nonlinearity=act)
            outs.append(y if d == 0 else reverse_padded(y, lens))
            caches.append(cache)
        layer_in = outs[0] if n_dir == 1 else np.concatenate(outs, axis=2)
    return caches


def _backward(
    layer: Any,
    cell: str,
    caches: list[Any],
    d_out: np.ndarray,
    dhdc: list[Any],
    lens: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The mirror of :func:`_forward`, the ops recording dh (and dc) at every step (GF-1).

    Returns ``dh`` and ``dc`` (L, D, T, B, H) in input time order, and ``dx``.
    """
    n_layers, n_dir, hidden = layer.num_layers, layer.num_directions, layer.hidden_size
    n_steps, batch = d_out.shape[:2]
    dh_all = np.zeros((n_layers, n_dir, n_steps, batch, hidden))
    dc_all = np.zeros_like(dh_all) if cell == "lstm" else None
    for k in reversed(range(n_layers)):
        d_in = None
        for d in range(n_dir):
            j = k * n_dir + d
            g = d_out[:, :, d * hidden : (d + 1) * hidden]
            if d == 1:
                g = reverse_padded(g, lens)
            dh_n = None if dhdc[0] is None else dhdc[0][j]
            trace: list[Any] = []  # appended by the op for t = T−1 … 0
            if cell == "lstm":
                dc_n = None if dhdc[1] is None else dhdc[1][j]
                grads = lstm_backward(g, dh_n, dc_n, caches[j], trace=trace)
                dh_t = np.stack([pair[0] for pair in trace[::-1]])  # (T, B, H)
                dc_t = np.stack([pair[1] for pair in trace[::-1]])
            else:
                back = gru_backward if cell == "gru" else rnn_backward
                grads = back(g, dh_n, caches[j], trace=trace)
                dh_t, dc_t = np.stack(trace[::-1]), None
            dx = grads.dx
            if d == 1:  # back to the input's time order
                dx, dh_t = reverse_padded(dx, lens), reverse_padded(dh_t, lens)
                dc_t = None if dc_t is None else reverse_padded(dc_t, lens)
            dh_all[k, d] = dh_t
            if dc_all is not None:
                dc_all[k, d] = dc_t
            d_in = dx if d_in is None else d_in + dx
        d_out = d_in
    return dh_all, dc_all, d_out


def gradient_flow(
    layer: RNN | LSTM | GRU,
    x: np.ndarray,
    dy: np.ndarray | None = None,
    dstate: Any = None,
    *,
    state: Any = None,
    lengths: np.ndarray | None = None,
    keep_grads: bool = False,
) -> GradientFlow:
    """Run one BPTT pass of ``layer`` and record ∂L/∂h'_t of every step, (GF-1)–(GF-2).

    The loss L is given through its gradients with respect to the layer's outputs,
    exactly as for ``layer.backward``: ``dy`` = ∂L/∂y and ``dstate`` = ∂L/∂(final
    state). For a loss on the last step only (sequence-to-one), ``dy`` is zero but
    at the last step.

    Parameters
    ----------
    layer : rnnkit.nn.RNN, LSTM or GRU
        Any number of layers and directions; ``batch_first`` is honoured.
    x : (T, B, I), or (B, T, I) with ``batch_first``
    dy : (T, B, D*H) like the layer's output, or None for zero
    dstate : ∂L/∂h_n, or (∂L/∂h_n, ∂L/∂c_n) for the LSTM, each (L*D, B, H); None for zero
    state : initial state as for the layer's forward (zeros when None)
    lengths : (B,) ints in [1, T], or None
    keep_grads : bool
        Also return the full (L, D, T, B, H) gradients, not only their norms.

    Returns
    -------
    GradientFlow
        Norms (L, D, T), optional full gradients, and ∂L/∂x.

    Notes
    -----
    Computed in float64 through the reference ops in :mod:`rnnkit.ops`, without
    dropout (see the module docstring); the layer itself is not touched.

    Examples
    --------
    >>> layer = RNN(2, 3, rng=0, dtype=np.float64)
    >>> x = np.ones((4, 1, 2))
    >>> dy = np.zeros((4, 1, 3)); dy[-1] = 1.0       # a loss on the last output only
    >>> flow = gradient_flow(layer, x, dy)
    >>> flow.dh_norm.shape
    (1, 1, 4)
    >>> bool(flow.dh_norm[0, 0, -1] == np.sqrt(3.0))  # at t = T, g_T = dy_T
    True
    """
    cell = _cell_of(layer)
    n_layers, n_dir, hidden = layer.num_layers, layer.num_directions, layer.hidden_size
    x = _as_time_major(layer, "x", x, layer.input_size)
    n_steps, batch, _ = x.shape
    if n_steps < 1:
        raise ValueError("`x` must have at least one time step.")
    lens = check_lengths(lengths, n_steps, batch)
    if lens is not None and lens.min() == n_steps:
        lens = None
    if dy is None:
        d_out = np.zeros((n_steps, batch, n_dir * hidden))
    else:
        d_out = _as_time_major(layer, "dy", dy, n_dir * hidden)
        check_shape("dy", d_out, (n_steps, batch, n_dir * hidden), hint="It is shaped like y.")
    n_states = 2 if cell == "lstm" else 1
    h0c0 = _states(layer, "state", state, n_states, batch)
    dhdc = _states(layer, "dstate", dstate, n_states, batch)

    caches = _forward(layer, cell, x, h0c0, lens)
    dh_all, dc_all, dx = _backward(layer, cell, caches, d_out, dhdc, lens)

    def norms(a: np.ndarray | None) -> np.ndarray | None:  # (GF-2), (L, D, T)
        if a is None:
            return None
        return np.array(
            [[step_norms(a[k, d], lens) for d in range(n_dir)] for k in range(n_layers)]
        )

    return GradientFlow(
        cell,
        norms(dh_all),
        norms(dc_all),
        dh_all if keep_grads else None,
        dc_all if keep_grads else None,
        dx,
    )


def model_gradient_flow(
    model: Any, x: np.ndarray, target: np.ndarray, *, keep_grads: bool = False
) -> tuple[float, GradientFlow]:
    """Gradient flow of a sequence model's loss through its recurrent layer ``model.rnn``.

    ``model`` provides ``rnn`` (an RNN/LSTM/GRU fed by ``x`` directly) and
    ``output_grad(x, target) -> (loss, dy)`` with ``dy`` = ∂L/∂(rnn output), as
    :class:`rnnkit.models.SequenceRegressor` and :class:`rnnkit.models.Forecaster` do.

    Returns ``(loss, GradientFlow)``.
    """
    if not hasattr(model, "rnn") or not hasattr(model, "output_grad"):
        raise TypeError(
            f"`model` must have an `rnn` layer and an `output_grad(x, target)` method; got "
            f"{type(model).__name__}. Call gradient_flow(layer, x, dy) directly instead."
        )
    loss, dy = model.output_grad(x, target)
    return loss, gradient_flow(model.rnn, x, dy, keep_grads=keep_grads)
