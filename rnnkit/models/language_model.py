"""``LanguageModel``: Embedding → stacked RNN/LSTM/GRU → Linear → softmax.

Equations
---------
(LM-1) e_t = E[w_t]                       embedding of the input token
(LM-2) h_t = RNN(e_t, h_{t−1})            the stacked recurrent layer (RNN/LSTM/GRU)
(LM-3) z_t = W_o h_t + b_o                logits over the vocabulary
(LM-4) p(w_{t+1} | w_≤t) = softmax(z_t)   trained with (CE-1) against the next token
(LM-5) b_o[v] = log((n_v + 1) / (N + V)) − mean    optional start: softmax(b_o) is the
                                          add-one unigram distribution of the training
                                          tokens (n_v counts of token v, N their sum)

Dropout (inverted) is applied to the embeddings, between recurrent layers and to
the recurrent output (Zaremba et al. 2014: on the non-recurrent connections only).
``weight_drop`` adds DropConnect on the recurrent weights (WD-1, Merity et al. 2018).
With ``tie_weights`` the output matrix ``W_o`` is the embedding matrix ``E``
(Press & Wolf 2017; needs ``embed_size == hidden_size``): one Parameter, whose
gradient is the sum of both uses.

Backward is the mirror of forward: (LM-3') → dropout' → (LM-2') → dropout' → (LM-1').
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.nn.init import as_generator
from rnnkit.nn.layers import Dropout, Embedding, Linear
from rnnkit.nn.module import Module
from rnnkit.nn.recurrent import GRU, LSTM, RNN
from rnnkit.ops.activations import softmax

__all__ = ["CELLS", "LanguageModel", "unigram_bias"]

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def unigram_bias(counts: np.ndarray) -> np.ndarray:
    """The output bias of (LM-5) for token ``counts`` (V,): ``log((n + 1)/(N + V))`` centred.

    float64; softmax of it is the add-one unigram distribution of the counted tokens.
    """
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size < 1 or counts.dtype.kind not in "iuf":
        raise ValueError(
            f"`counts` must be a 1-D array of numbers, one per token id; "
            f"got shape {counts.shape} and dtype {counts.dtype}."
        )
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("`counts` must be finite and >= 0.")
    logp = np.log((counts.astype(np.float64) + 1.0) / (counts.sum() + counts.size))
    return logp - logp.mean()


class LanguageModel(Module):
    """A recurrent language model over token ids, equations (LM-1)–(LM-4).

    Parameters
    ----------
    vocab_size : int
        V, the number of token ids.
    embed_size, hidden_size : int
        E and H.
    num_layers : int
        Stacked recurrent layers.
    cell : {"lstm", "gru", "rnn"}
        The recurrent layer (the "rnn" cell is tanh).
    dropout : float
        Dropout on embeddings, between layers and on the output.
    weight_drop : float
        DropConnect on every layer's ``W_hh`` in training, a fresh mask per forward
        call (WD-1); 0 turns it off.
    tie_weights : bool
        Share the embedding and output matrices (E must equal H).
    init_range : float, optional
        If given, every parameter is drawn from U(−init_range, init_range)
        (Zaremba et al.); otherwise each layer keeps its PyTorch default.
    rng : Generator or int seed
        Seeds the parameters and the dropout masks.
    dtype : float32 or float64

    Attributes
    ----------
    embedding.weight : (V, E)
    rnn.* : the recurrent layer's PyTorch-named parameters
    decoder.weight : (V, H) (absent when tied); decoder.bias : (V,)
    """

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        tie_weights: bool = False,
        init_range: float | None = None,
        rng: np.random.Generator | int | None = None,
        dtype: type | np.dtype = np.float32,
        weight_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"`cell` must be one of {sorted(CELLS)}; got {cell!r}.")
        if tie_weights and embed_size != hidden_size:
            raise ValueError(
                f"`tie_weights` needs embed_size == hidden_size; got {embed_size} and "
                f"{hidden_size}. Set them equal or turn tying off."
            )
        self.config = {
            "vocab_size": vocab_size,
            "embed_size": embed_size,
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "cell": cell,
            "dropout": dropout,
            "tie_weights": tie_weights,
            "init_range": init_range,
            "dtype": np.dtype(dtype).name,
            "weight_drop": weight_drop,
        }  # the constructor's arguments, JSON-ready: LanguageModel(**config) rebuilds it
        gen = as_generator(rng)
        seeds = gen.integers(0, 2**63 - 1, size=6)
        self.cell = cell
        self.vocab_size, self.embed_size, self.hidden_size = vocab_size, embed_size, hidden_size
        self.num_layers, self.tie_weights = num_layers, tie_weights
        self.embedding = Embedding(vocab_size, embed_size, rng=int(seeds[0]), dtype=dtype)
        self.drop_in = Dropout(dropout, rng=int(seeds[1]))
        self.rnn = CELLS[cell](
            embed_size,
            hidden_size,
            num_layers,
            dropout=dropout,
            rng=int(seeds[2]),
            dtype=dtype,
            weight_drop=weight_drop,
        )
        self.drop_out = Dropout(dropout, rng=int(seeds[3]))
        self.decoder = Linear(hidden_size, vocab_size, rng=int(seeds[4]), dtype=dtype)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        if init_range is not None:
            init_gen = np.random.default_rng(int(seeds[5]))
            for _, p in self.named_parameters():
                p.data[...] = init_gen.uniform(-init_range, init_range, size=p.shape)

    def init_output_bias(self, counts: np.ndarray) -> None:
        """Set ``b_o`` so that the untrained model predicts the unigram distribution, (LM-5).

        ``counts[v]`` is how often token ``v`` occurs in the training data. With the
        output matrix near zero at the start, softmax(z_t) ≈ softmax(b_o), so training
        starts at the unigram loss instead of log V and spends its first steps on the
        context rather than on token frequencies.
        """
        counts = np.asarray(counts)
        if counts.shape != (self.vocab_size,):
            raise ValueError(
                f"`counts` must be {self.vocab_size} numbers, one per token id; "
                f"got shape {counts.shape}."
            )
        bias = self.decoder.bias.data
        bias[...] = unigram_bias(counts).astype(bias.dtype)

    def initial_state(self, batch_size: int) -> Any:
        """Zero state for ``batch_size`` streams: ``h`` or ``(h, c)``, each (L, B, H)."""
        dtype = self.embedding.weight.data.dtype
        h = np.zeros((self.num_layers, batch_size, self.hidden_size), dtype=dtype)
        return (h, h.copy()) if self.cell == "lstm" else h

    def forward(self, ids: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        """Map token ids ``(T, B)`` to logits ``(T, B, V)`` and the final state, (LM-1)–(LM-3)."""
        ids = np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"`ids` must have shape (T, B); got {ids.shape}.")
        e = self.drop_in(self.embedding(ids))  # (T, B, E)                     (LM-1)
        h, state = self.rnn(e, state)  # (T, B, H)                              (LM-2)
        logits = self.decoder(self.drop_out(h))  # (T, B, V)                    (LM-3)
        self._push(ids.shape)  # so a backward without a forward names this model
        return logits, state

    def backward(self, dlogits: np.ndarray, dstate: Any = None) -> Any:
        """Backpropagate the newest forward pass; return ∂L/∂(initial state)."""
        marker = self._pop()
        try:
            dlin = self.decoder.backward(dlogits)  # checks dlogits before changing anything
        except (TypeError, ValueError):
            self._restore(marker)
            raise
        dh = self.drop_out.backward(dlin)
        de, dstate0 = self.rnn.backward(dh, dstate)
        self.embedding.backward(self.drop_in.backward(de))
        return dstate0

    def generate(
        self,
        prime: np.ndarray,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        rng: np.random.Generator | int | None = None,
    ) -> np.ndarray:
        """Sample ``length`` ids after ``prime`` from softmax(z / temperature), (LM-4).

        ``top_k`` keeps only the k most likely tokens at each step. Runs in eval mode and
        restores the previous mode afterwards.
        """
        prime = np.asarray(prime)
        if prime.ndim != 1 or prime.size < 1:
            raise ValueError(
                f"`prime` must be a non-empty 1-D array of ids; got shape {prime.shape}."
            )
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0; got {temperature}.")
        if top_k is not None and not 1 <= top_k <= self.vocab_size:
            raise ValueError(f"`top_k` must be in [1, V={self.vocab_size}]; got {top_k}.")
        if length < 0:
            raise ValueError(f"`length` must be >= 0; got {length}.")
        gen = as_generator(rng)
        was_training = self.training
        self.eval()
        try:
            logits, state = self.forward(prime[:, None])
            out = np.empty(length, dtype=np.int64)
            for t in range(length):
                z = logits[-1, 0].astype(np.float64) / temperature
                if top_k is not None and top_k < z.size:
                    cut = np.partition(z, -top_k)[-top_k]
                    z = np.where(z >= cut, z, -np.inf)
                p = softmax(z)
                out[t] = gen.choice(z.size, p=p)
                logits, state = self.forward(out[t : t + 1, None], state)
        finally:
            self.train(was_training)
        return out
