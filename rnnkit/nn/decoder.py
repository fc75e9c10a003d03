"""``AttentionDecoder``: an LSTM/GRU/RNN cell run step by step that attends over a memory.

Two ways of combining the context ``c_t`` with the cell state ``s_t`` (``X`` is the
memory, e.g. the encoder outputs; ``E`` the target embedding; ``y_0`` = <s>):

Bahdanau et al. (2015), ``style="bahdanau"``: the context feeds the cell input.

(DEC-1) c_t = attn(s_{t−1}, X)                       query: the previous state
(DEC-2) s_t = cell([E y_{t−1}; c_t], s_{t−1})
(DEC-3) z_t = W_o [s_t; c_t] + b_o                    logits

Luong et al. (2015), ``style="luong"`` (global attention, without input feeding): the
attentional hidden state feeds the output only, so the cell does not depend on the
attention and training runs it as one layer over all T steps and attends with all T
queries at once.

(DEC-4) s_t = cell(E y_{t−1}, s_{t−1})
(DEC-5) c_t = attn(s_t, X)                            query: the new state
(DEC-6) h̃_t = tanh(W_c [c_t; s_t] + b_c)
(DEC-7) z_t = W_o h̃_t + b_o

The backward pass is the forward mirrored, by hand. Bahdanau: t = T … 1, every
submodule (cell, attention, output map) was called once per step and is
backpropagated once per step, newest first; the attention's memory gradient is
summed over the steps and backpropagated once at the end. Luong: the output map,
the combination, the attention and the recurrent layer each backpropagate once over
all steps (the layer runs its own BPTT). Derivatives:

(DEC-3') d[s_t; c_t] = dz_t W_o;  ds_t += ds from step t+1;  dc_t += the cell input's share
(DEC-1') ds_{t−1} += ∂attn/∂query;  dX += ∂attn/∂X
(DEC-6') d(W_c [c_t; s_t] + b_c) = dh̃_t ⊙ (1 − h̃_t²);  ds_t += ∂attn/∂query (DEC-5)

Teacher forcing: training feeds the true previous token ``y_{t−1}``; decoding
(:meth:`start` / :meth:`step`, in eval mode) feeds the model's own choice, and
:mod:`rnnkit.models.beam` runs greedy and beam search on top of them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rnnkit.nn.attention import AttentionMemory, MemoryGrad, make_attention
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.init import as_generator
from rnnkit.nn.layers import Dropout, Embedding, Linear
from rnnkit.nn.module import Module
from rnnkit.nn.recurrent import GRU, LSTM, RNN
from rnnkit.ops.validation import check_float_array, check_same_dtype

__all__ = ["STYLES", "AttentionDecoder", "DecoderState"]

STYLES = ("bahdanau", "luong")
_CELLS = {"lstm": LSTMCell, "gru": GRUCell, "rnn": RNNCell}
_LAYERS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


class DecoderState(NamedTuple):
    """What one decoding step carries to the next (inference only)."""

    h: np.ndarray  # (N, H) cell state s_t
    c: np.ndarray | None  # (N, H) LSTM memory cell, else None
    memory: AttentionMemory

    def take(self, index: np.ndarray) -> DecoderState:
        """The state of the entries ``index`` (e.g. to tile each example for beam search)."""
        return DecoderState(*self.reorder(index)[:2], self.memory.take(index))

    def reorder(self, index: np.ndarray) -> DecoderState:
        """Reorder the recurrent state only; the memory is kept as it is.

        For beam search, where ``index`` moves hypotheses within the rows of one example
        (which share the same memory rows), so the memory need not be copied.
        """
        c = None if self.c is None else self.c[index]
        return DecoderState(self.h[index], c, self.memory)


class _Pass(NamedTuple):
    n_steps: int
    batch: int
    h_tilde: np.ndarray | None  # (T, B, H): h̃_t of (DEC-6) (Luong)


class AttentionDecoder(Module):
    """Attention decoder, equations (DEC-1)–(DEC-3) (Bahdanau) or (DEC-4)–(DEC-7) (Luong).

    Parameters
    ----------
    vocab_size : int
        V, the target vocabulary (logits have V entries).
    embed_size : int
        E, the target embedding size.
    hidden_size : int
        H, the decoder cell's state size.
    memory_size : int
        M, the size of each memory vector (e.g. 2 × the encoder size when bidirectional).
    cell : {"lstm", "gru", "rnn"}
    attention : {"additive", "dot", "scaled_dot", "general"}
        The score; "dot" and "scaled_dot" need ``hidden_size == memory_size``.
    attention_size : int, optional
        A, the additive attention's tanh layer (default H).
    style : {"bahdanau", "luong"}
    padding_idx : int, optional
        Target id of padding (its embedding row is zero and frozen).
    dropout : float
        Inverted dropout (training only) on the target embeddings and on the input of the
        output map (``[s_t; c_t]`` or ``h̃_t``); the recurrence itself is not dropped.
    rng : Generator, int seed or None
    dtype : float32 (default) or float64

    Attributes
    ----------
    embedding.weight : (V, E)
    cell.* : Bahdanau: an LSTMCell/GRUCell/RNNCell of input size E + M (PyTorch names)
    rnn.* : Luong: a one-layer LSTM/GRU/RNN of input size E (``weight_ih_l0``, ...)
    attention.* : the attention's weights (see :mod:`rnnkit.nn.attention`)
    combine.weight, combine.bias : (H, M + H), (H,) — ``W_c``, ``b_c`` (Luong only)
    out.weight, out.bias : (V, H + M) (Bahdanau) or (V, H) (Luong) — ``W_o``, ``b_o``

    Calling convention: ``logits, weights = dec(y_in, memory, lengths, state=None)`` with
    ``y_in`` (T, B) ids (teacher forcing), ``memory`` (S, B, M), ``lengths`` (B,) source
    lengths, ``state`` the initial cell state: ``h0`` (B, H), or ``(h0, c0)`` for an LSTM
    (zeros when None). Returns ``logits`` (T, B, V) and ``weights`` (T, B, S).
    ``dmemory, dstate = dec.backward(dlogits, dweights=None)``.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        memory_size: int,
        cell: str = "lstm",
        attention: str = "additive",
        attention_size: int | None = None,
        style: str = "bahdanau",
        padding_idx: int | None = None,
        dropout: float = 0.0,
        *,
        rng: np.random.Generator | int | None = None,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"`cell` must be one of {tuple(_CELLS)}; got {cell!r}.")
        if style not in STYLES:
            raise ValueError(f"`style` must be one of {STYLES}; got {style!r}.")
        gen = as_generator(rng)
        emb, hid, mem = embed_size, hidden_size, memory_size
        self.cell_kind, self.style = cell, style
        self.vocab_size, self.embed_size = vocab_size, emb
        self.hidden_size, self.memory_size = hid, mem
        self.embedding = Embedding(vocab_size, emb, padding_idx, rng=gen, dtype=dtype)
        if style == "bahdanau":
            self.cell = _CELLS[cell](emb + mem, hid, rng=gen, dtype=dtype)
        else:
            self.rnn = _LAYERS[cell](emb, hid, rng=gen, dtype=dtype)
        self.attention = make_attention(attention, hid, mem, attention_size, rng=gen, dtype=dtype)
        if style == "luong":
            self.combine = Linear(mem + hid, hid, rng=gen, dtype=dtype)
        out_in = hid + mem if style == "bahdanau" else hid
        self.out = Linear(out_in, vocab_size, rng=gen, dtype=dtype)
        self.drop_emb = Dropout(dropout, rng=gen)
        self.drop_out = Dropout(dropout, rng=gen)
        self.dtype = np.dtype(dtype)

    # -- the recurrence, whatever its kind ----------------------------------------
    def _cell(self, x: np.ndarray, h: np.ndarray, c: np.ndarray | None) -> tuple[Any, Any]:
        """One Bahdanau step of the cell: x (B, E + M) -> (h, c)."""
        if self.cell_kind == "lstm":
            return self.cell(x, (h, c))
        return self.cell(x, h), None

    def _cell_backward(self, dh: np.ndarray, dc: np.ndarray | None) -> tuple[Any, Any, Any]:
        if self.cell_kind == "lstm":
            dx, (dh_prev, dc_prev) = self.cell.backward((dh, dc))
            return dx, dh_prev, dc_prev
        dx, dh_prev = self.cell.backward(dh)
        return dx, dh_prev, None

    def _layer(self, x: np.ndarray, h: np.ndarray, c: np.ndarray | None) -> tuple[Any, Any, Any]:
        """The Luong recurrence over x (T, B, E): return outputs (T, B, H), h_T, c_T."""
        state = (h[None], c[None]) if self.cell_kind == "lstm" else h[None]
        y, state = self.rnn(x, state)
        if self.cell_kind == "lstm":
            return y, state[0][0], state[1][0]
        return y, state[0], None

    def _initial(self, state: Any, batch: int) -> tuple[np.ndarray, np.ndarray | None]:
        hid, lstm = self.hidden_size, self.cell_kind == "lstm"
        zeros = np.zeros((batch, hid), dtype=self.dtype)
        if state is None:
            return zeros, (zeros.copy() if lstm else None)
        if lstm and (not isinstance(state, (tuple, list)) or len(state) != 2):
            raise TypeError(f"`state` of an LSTM decoder must be (h0, c0); got {type(state)}.")
        parts = list(state) if lstm else [state]
        for k, s in enumerate(parts):
            name = ("h0", "c0")[k]
            s = check_float_array(f"state ({name})", s, ndim=2)
            if s.shape != (batch, hid):
                raise ValueError(
                    f"`state` ({name}) must have shape ({batch}, {hid}); got {s.shape}."
                )
            check_same_dtype(f"state ({name})", s, self.dtype)
            parts[k] = s
        return parts[0], (parts[1] if lstm else None)

    # -- the output side, shared by training and decoding ----------------------------
    def _bahdanau_step(
        self, e: np.ndarray, h: Any, c: Any, mem: AttentionMemory
    ) -> tuple[np.ndarray, np.ndarray, Any, Any]:
        """One step from the embedded input ``e`` (B, E): return logits, weights, h, c."""
        ctx, w = self.attention.attend(h, mem)  # (B, M), (B, S)                   (DEC-1)
        h, c = self._cell(np.concatenate([e, ctx], axis=-1), h, c)  #               (DEC-2)
        z = self.out(self.drop_out(np.concatenate([h, ctx], axis=-1)))  # (B, V)  (DEC-3)
        return z, w, h, c

    def _luong_output(
        self, s: np.ndarray, mem: AttentionMemory
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """From states ``s`` ((B, H) or (T, B, H)): return logits, weights and h̃."""
        ctx, w = self.attention.attend(s, mem)  #                                  (DEC-5)
        h_tilde = np.tanh(self.combine(np.concatenate([ctx, s], axis=-1)))  #      (DEC-6)
        return self.out(self.drop_out(h_tilde)), w, h_tilde  #                     (DEC-7)

    def forward(
        self,
        y_in: np.ndarray,
        memory: np.ndarray,
        lengths: np.ndarray | None = None,
        state: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Teacher-forced pass over ``y_in`` (T, B); return logits (T, B, V), weights (T, B, S)."""
        y_in = np.asarray(y_in)
        if y_in.ndim != 2 or y_in.shape[0] < 1:
            raise ValueError(f"`y_in` must be (T >= 1, B) token ids; got shape {y_in.shape}.")
        n_steps, batch = y_in.shape
        memory = check_float_array("memory", memory, ndim=3)
        if memory.shape[1] != batch:
            raise ValueError(
                f"`memory` must have shape (S, B={batch}, M) like `y_in` (T, B); "
                f"got {memory.shape}."
            )
        h, c = self._initial(state, batch)
        emb = self.drop_emb(self.embedding(y_in))  # (T, B, E)
        try:
            mem = self.attention.memory(memory, lengths=lengths)
        except (TypeError, ValueError):
            if self.training:  # leave nothing behind from this failed call
                self.drop_emb._stack.pop()
                self.embedding._stack.pop()
            raise
        if self.style == "luong":
            s, _, _ = self._layer(emb, h, c)  # (T, B, H)                          (DEC-4)
            logits, weights, h_tilde = self._luong_output(s, mem)
            self._push(_Pass(n_steps, batch, h_tilde))
            return logits, weights
        logits = np.empty((n_steps, batch, self.vocab_size), dtype=self.dtype)
        weights = np.empty((n_steps, batch, memory.shape[0]), dtype=self.dtype)
        for t in range(n_steps):
            logits[t], weights[t], h, c = self._bahdanau_step(emb[t], h, c, mem)
        self._push(_Pass(n_steps, batch, None))
        return logits, weights

    def _check_grads(self, p: _Pass, dlogits: Any, dweights: Any) -> tuple[Any, Any]:
        dlogits = check_float_array("dlogits", dlogits, ndim=3)
        if dlogits.shape != (p.n_steps, p.batch, self.vocab_size):
            raise ValueError(
                f"`dlogits` must have shape {(p.n_steps, p.batch, self.vocab_size)} like the "
                f"logits; got {dlogits.shape}."
            )
        if dweights is not None:
            dweights = check_float_array("dweights", dweights, ndim=3)
            if dweights.shape[:2] != (p.n_steps, p.batch):
                raise ValueError(f"`dweights` must have shape (T={p.n_steps}, B={p.batch}, S).")
        return dlogits.astype(self.dtype, copy=False), dweights

    def backward(self, dlogits: np.ndarray, dweights: np.ndarray | None = None) -> tuple[Any, Any]:
        """Backpropagate the newest forward; return ``(dmemory, dstate0)``, add weight grads."""
        p: _Pass = self._pop()
        try:
            dlogits, dweights = self._check_grads(p, dlogits, dweights)
        except (TypeError, ValueError):
            self._restore(p)
            raise
        lstm = self.cell_kind == "lstm"
        if self.style == "luong":
            dh_tilde = self.drop_out.backward(self.out.backward(dlogits))
            da = dh_tilde * (1 - p.h_tilde**2)  #                                  (DEC-6')
            dcs = self.combine.backward(da)  # (T, B, M + H)
            ds, dmem = self.attention.attend_backward(dcs[..., : self.memory_size], dweights)
            ds = ds + dcs[..., self.memory_size :]
            demb, dstate = self.rnn.backward(ds, None)  # BPTT of the layer        (DEC-4)
            dstate0 = (dstate[0][0], dstate[1][0]) if lstm else dstate[0]
        else:
            dstate0, dmem, demb = self._bahdanau_backward(p, dlogits, dweights)
        dmemory, _ = self.attention.memory_backward(dmem)
        self.embedding.backward(self.drop_emb.backward(demb))
        return dmemory, dstate0

    def _bahdanau_backward(self, p: _Pass, dlogits: Any, dweights: Any) -> tuple[Any, Any, Any]:
        """The loop of (DEC-1)–(DEC-3) mirrored, t = T … 1."""
        hid, emb = self.hidden_size, self.embed_size
        lstm = self.cell_kind == "lstm"
        dh = np.zeros((p.batch, hid), dtype=self.dtype)  # ∂L/∂s_t from the steps after t
        dc = np.zeros_like(dh) if lstm else None
        demb = np.empty((p.n_steps, p.batch, emb), dtype=self.dtype)
        dmem: MemoryGrad | None = None
        for t in reversed(range(p.n_steps)):
            do = self.drop_out.backward(self.out.backward(dlogits[t]))  # (B, H + M) (DEC-3')
            dx, dh_prev, dc = self._cell_backward(dh + do[:, :hid], dc)
            demb[t] = dx[:, :emb]
            dctx = do[:, hid:] + dx[:, emb:]
            dw_t = None if dweights is None else dweights[t]
            dq, dmem_t = self.attention.attend_backward(dctx, dw_t)  #            (DEC-1')
            dh = dh_prev + dq
            dmem = dmem_t if dmem is None else dmem + dmem_t
        return ((dh, dc) if lstm else dh), dmem, demb

    # -- decoding (eval mode) -----------------------------------------------------
    def start(
        self, memory: np.ndarray, lengths: np.ndarray | None = None, state: Any = None
    ) -> DecoderState:
        """The decoding state before the first step (eval mode: nothing is recorded)."""
        if self.training:
            raise RuntimeError(
                "AttentionDecoder.start is for decoding, which records nothing: call .eval() "
                "first (and .train() again before training)."
            )
        memory = check_float_array("memory", memory, ndim=3)
        h, c = self._initial(state, memory.shape[1])
        return DecoderState(h, c, self.attention.memory(memory, lengths=lengths))

    def step(
        self, tokens: np.ndarray, state: DecoderState
    ) -> tuple[np.ndarray, np.ndarray, DecoderState]:
        """Feed ``tokens`` (N,); return logits (N, V), attention weights (N, S), next state."""
        if self.training:
            raise RuntimeError("AttentionDecoder.step is for decoding: call .eval() first.")
        e = self.drop_emb(self.embedding(np.asarray(tokens)))  # (N, E); identity in eval
        if self.style == "luong":
            s, h, c = self._layer(e[None], state.h, state.c)
            z, w, _ = self._luong_output(s[0], state.memory)
        else:
            z, w, h, c = self._bahdanau_step(e, state.h, state.c, state.memory)
        return z, w, DecoderState(h, c, state.memory)

    def __repr__(self) -> str:
        return (
            f"AttentionDecoder(vocab={self.vocab_size}, hidden={self.hidden_size}, "
            f"memory={self.memory_size}, cell={self.cell_kind!r}, style={self.style!r}, "
            f"attention={type(self.attention).__name__})"
        )
