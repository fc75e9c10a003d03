"""``Seq2Seq``: embedding → bidirectional encoder → attention decoder → softmax.

Equations
---------
(S2S-1) X = [h→_s; h←_s]_{s=1…S} = BiRNN(E_src x)       encoder outputs, the memory (S, B, 2H)
(S2S-2) s_0 = tanh(W_b [h→_S; h←_1] + b_b)                bridge to the decoder's first state
(S2S-3) z_t, α_t = Decoder(y_{<t}, X, s_0)               (DEC-1)–(DEC-7); LSTM: c_0 = 0
(S2S-4) p(y_t | y_{<t}, x) = softmax(z_t)                trained with (CE-1), teacher forcing

``h→_S`` and ``h←_1`` are the top encoder layer's final states in each direction, each
sequence's own (its length, not the padding). Backward mirrors forward:
(S2S-3') gives ∂L/∂X and ∂L/∂s_0; (S2S-2') ∂(W_b[…] + b_b) = ∂s_0 ⊙ (1 − s_0²); then the
encoder receives ∂L/∂X as its output gradient and the bridge's share as the gradient of
its final states.

Decoding (:meth:`Seq2Seq.greedy`, :meth:`Seq2Seq.beam_search`) runs in eval mode and
returns, for every example, the tokens and the attention matrix (target steps × source
steps) that produced them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rnnkit.models.beam import Step
from rnnkit.models.decoding import Decoding
from rnnkit.nn.decoder import AttentionDecoder, DecoderState
from rnnkit.nn.init import as_generator
from rnnkit.nn.layers import Dropout, Embedding, Linear
from rnnkit.nn.module import Module
from rnnkit.nn.recurrent import GRU, LSTM, RNN

__all__ = ["Seq2Seq"]

_ENCODERS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


class _Pass(NamedTuple):
    s0: np.ndarray  # (B, Hd) the bridged initial decoder state
    batch: int


class Seq2Seq(Decoding, Module):
    """Attention encoder–decoder, equations (S2S-1)–(S2S-4).

    Parameters
    ----------
    src_vocab_size, tgt_vocab_size : int
    embed_size : int
        E, both embeddings.
    hidden_size : int
        H, the encoder's size per direction (its outputs have 2H).
    decoder_size : int, optional
        The decoder cell's size (default 2H).
    num_layers : int
        Encoder layers.
    cell : {"lstm", "gru", "rnn"}
        Encoder and decoder cells.
    attention : {"additive", "dot", "scaled_dot", "general"}
    attention_size : int, optional
        A of additive attention (default: the decoder size).
    style : {"bahdanau", "luong"}
        See :mod:`rnnkit.nn.decoder`.
    dropout : float
        Inverted dropout (training only) on the source embeddings, between encoder layers,
        on the encoder outputs (the memory) and inside the decoder (target embeddings and
        the output map's input); never on the recurrent connections.
    pad, bos, eos : int
        Padding id (both vocabularies) and the target start / end ids.
    rng : Generator, int seed or None
    dtype : float32 (default) or float64

    Attributes
    ----------
    src_embedding.weight : (V_src, E)
    encoder.* : the bidirectional RNN/LSTM/GRU (PyTorch names)
    bridge.weight, bridge.bias : (Hd, 2H), (Hd,) — ``W_b``, ``b_b``
    decoder.* : the :class:`~rnnkit.nn.decoder.AttentionDecoder`
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        embed_size: int = 64,
        hidden_size: int = 128,
        decoder_size: int | None = None,
        num_layers: int = 1,
        cell: str = "lstm",
        attention: str = "additive",
        attention_size: int | None = None,
        style: str = "bahdanau",
        dropout: float = 0.0,
        pad: int = 0,
        bos: int = 1,
        eos: int = 2,
        *,
        rng: np.random.Generator | int | None = None,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        super().__init__()
        if cell not in _ENCODERS:
            raise ValueError(f"`cell` must be one of {tuple(_ENCODERS)}; got {cell!r}.")
        gen = as_generator(rng)
        dec = 2 * hidden_size if decoder_size is None else decoder_size
        self.cell_kind, self.pad, self.bos, self.eos = cell, pad, bos, eos
        self.dtype = np.dtype(dtype)
        self.src_embedding = Embedding(src_vocab_size, embed_size, pad, rng=gen, dtype=dtype)
        self.drop_src = Dropout(dropout, rng=gen)
        self.encoder = _ENCODERS[cell](
            embed_size,
            hidden_size,
            num_layers,
            dropout=dropout,
            bidirectional=True,
            rng=gen,
            dtype=dtype,
        )
        self.drop_mem = Dropout(dropout, rng=gen)
        self.bridge = Linear(2 * hidden_size, dec, rng=gen, dtype=dtype)
        self.decoder = AttentionDecoder(
            tgt_vocab_size,
            embed_size,
            dec,
            2 * hidden_size,
            cell,
            attention,
            attention_size,
            style,
            pad,
            dropout,
            rng=gen,
            dtype=dtype,
        )

    # -- encoder + bridge ---------------------------------------------------------
    def _encode(self, src: np.ndarray, src_lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(S2S-1), (S2S-2): return the memory X (S, B, 2H) and s_0 (B, Hd)."""
        src = np.asarray(src)
        if src.ndim != 2:
            raise ValueError(f"`src` must be (S, B) token ids; got shape {src.shape}.")
        emb = self.drop_src(self.src_embedding(src))  # (S, B, E)
        try:
            memory, state = self.encoder(emb, lengths=src_lengths)  #             (S2S-1)
        except (TypeError, ValueError):
            if self.training:  # leave nothing behind from this failed call
                self.drop_src._stack.pop()
                self.src_embedding._stack.pop()
            raise
        h_n = state[0] if self.cell_kind == "lstm" else state  # (L*2, B, H)
        s0 = np.tanh(self.bridge(np.concatenate([h_n[-2], h_n[-1]], axis=1)))  #  (S2S-2)
        return self.drop_mem(memory), s0

    def _state0(self, s0: np.ndarray) -> Any:
        return (s0, np.zeros_like(s0)) if self.cell_kind == "lstm" else s0

    def forward(
        self, src: np.ndarray, src_lengths: np.ndarray, tgt_in: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Teacher-forced pass: ``src`` (S, B), ``tgt_in`` (T, B) ids starting with <s>.

        Returns logits (T, B, V_tgt) and the attention weights (T, B, S), zero on
        padded source steps.
        """
        memory, s0 = self._encode(src, src_lengths)
        logits, weights = self.decoder(tgt_in, memory, src_lengths, self._state0(s0))  # (S2S-3)
        self._push(_Pass(s0, memory.shape[1]))
        return logits, weights

    def backward(self, dlogits: np.ndarray, dweights: np.ndarray | None = None) -> None:
        """Backpropagate the newest forward pass into every parameter gradient."""
        p: _Pass = self._pop()
        try:
            dmemory, dstate0 = self.decoder.backward(dlogits, dweights)
        except (TypeError, ValueError):
            self._restore(p)
            raise
        ds0 = dstate0[0] if self.cell_kind == "lstm" else dstate0
        dcat = self.bridge.backward(ds0 * (1 - p.s0**2))  #                       (S2S-2')
        hid = self.encoder.hidden_size
        dh_n = np.zeros((self.encoder.num_layers * 2, p.batch, hid), dtype=self.dtype)
        dh_n[-2], dh_n[-1] = dcat[:, :hid], dcat[:, hid:]
        dstate = (dh_n, None) if self.cell_kind == "lstm" else dh_n
        demb, _ = self.encoder.backward(self.drop_mem.backward(dmemory), dstate)
        self.src_embedding.backward(self.drop_src.backward(demb))

    # -- decoding: (BEAM-1)–(BEAM-3) through Decoding ---------------------------------
    def _members(self) -> list[Module]:
        return [self]

    def _begin(self, src: np.ndarray, src_lengths: np.ndarray) -> tuple[Step, DecoderState]:
        memory, s0 = self._encode(src, src_lengths)
        return self.decoder.step, self.decoder.start(memory, src_lengths, self._state0(s0))

    def __repr__(self) -> str:
        n = sum(p.data.size for p in self.parameters())
        return f"Seq2Seq({n} parameters, encoder={self.encoder!r}, decoder={self.decoder!r})"
