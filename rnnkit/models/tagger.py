"""``SequenceTagger``: words + characters → biLSTM → softmax per token (Plank et al. 2016).

Equations (t runs over the words of a sentence, u over the distinct words of a batch)
---------
(TAG-1) e_t = E_w[w_t]                                 word embedding (w_t may be <unk>)
(TAG-2) r_u = [→h_u ; ←h_u]                            char biLSTM over the characters of
        word u: the forward direction's state after the last character and the reverse
        direction's state after the first (Ling et al. 2015)
(TAG-3) x_t = drop([e_t ; r_{u(t)}])                   the word's representation
(TAG-4) h_t = biLSTM(x_1 … x_n)_t                      context over the sentence
(TAG-5) z_t = W drop(h_t) + b,  p(tag_t) = softmax(z_t)   per-token scores, trained with (CE-1)

This is the seed's sequence-labelling output: a softmax at every step of a recurrent
layer. Unknown words: their word id is ``<unk>`` (id 0) but their characters still give
``r_u``; in training, word dropout replaces each word id by ``<unk>`` with probability
``word_dropout`` so that the ``<unk>`` row and the character model learn to carry them.

Backward is the mirror: (TAG-5') → dropout' → (TAG-4') → dropout' → split the gradient
of x_t into (TAG-1') (scatter-add into E_w) and (TAG-2'), where the gradients of every
occurrence of word u are summed into ∂L/∂r_u before the char biLSTM's BPTT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from rnnkit.nn.init import as_generator
from rnnkit.nn.layers import Dropout, Embedding, Linear
from rnnkit.nn.module import Module
from rnnkit.nn.recurrent import LSTM

__all__ = ["Encoder", "SequenceTagger", "TaggerBatch", "encode_batch"]


class Encoder(Protocol):
    """What :func:`encode_batch` needs of a vocabulary (``rnnkit.data`` Word/CharVocab)."""

    def encode(self, tokens: Any) -> np.ndarray:
        """Ids of a token list (words) or of a string (characters)."""
        ...


class TaggerBatch(NamedTuple):
    """A padded batch of B sentences, time-major.

    Attributes
    ----------
    words : (T, B) int64 word ids (padding: 0)
    lengths : (B,) int64 sentence lengths, each in [1, T]
    chars : (L, U) int64 character ids of the U distinct words of the batch (padding: 0)
    char_lengths : (U,) int64 number of characters of each distinct word, in [1, L]
    word_index : (T, B) int64, the distinct word (column of ``chars``) at each position
    """

    words: np.ndarray
    lengths: np.ndarray
    chars: np.ndarray
    char_lengths: np.ndarray
    word_index: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(T, B) bool, True at the real (unpadded) positions."""
        return np.arange(self.words.shape[0])[:, None] < self.lengths[None, :]


def _clip_word(word: str, max_chars: int) -> str:
    """The word itself, or its first and last ``max_chars // 2`` characters if longer."""
    if len(word) <= max_chars:
        return word
    half = max_chars // 2
    return word[:half] + word[len(word) - (max_chars - half) :]


def encode_batch(
    sentences: Sequence[Sequence[str]],
    words: Encoder,
    chars: Encoder,
    max_chars: int = 20,
    lowercase: bool = False,
) -> TaggerBatch:
    """Encode B tokenised sentences into a :class:`TaggerBatch`.

    Words longer than ``max_chars`` characters (URLs, e-mail addresses) are read by the
    character model as their first and last ``max_chars / 2`` characters. ``words`` is a
    :class:`rnnkit.data.WordVocab` (unknown words -> id 0) and ``chars`` a
    :class:`rnnkit.data.CharVocab` with an ``unk`` character for unseen characters. With
    ``lowercase`` the word ids are those of the lower-cased words (a smaller, denser word
    vocabulary) while the character model still reads the words as written.
    """
    if not sentences or any(len(s) == 0 for s in sentences):
        raise ValueError("`sentences` must be a non-empty list of non-empty token lists.")
    if max_chars < 2:
        raise ValueError(f"`max_chars` must be >= 2; got {max_chars}.")
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    shape = (int(lengths.max()), len(sentences))  # (T, B)
    ids = np.zeros(shape, dtype=np.int64)
    word_index = np.zeros(shape, dtype=np.int64)
    distinct: dict[str, int] = {}
    for b, s in enumerate(sentences):
        ids[: len(s), b] = words.encode([w.lower() for w in s] if lowercase else list(s))
        for t, w in enumerate(s):
            word_index[t, b] = distinct.setdefault(w, len(distinct))
    clipped = [_clip_word(w, max_chars) for w in distinct]
    char_lengths = np.array([len(w) for w in clipped], dtype=np.int64)
    char_ids = np.zeros((int(char_lengths.max()), len(clipped)), dtype=np.int64)
    for u, w in enumerate(clipped):
        char_ids[: len(w), u] = chars.encode(w)
    return TaggerBatch(ids, lengths, char_ids, char_lengths, word_index)


class _Cache(NamedTuple):
    batch: TaggerBatch
    n_distinct: int


class SequenceTagger(Module):
    """Word embedding + character biLSTM → biLSTM → Linear, equations (TAG-1)–(TAG-5).

    Parameters
    ----------
    num_words, num_chars, num_tags : int
        Sizes of the word vocabulary (``<unk>`` = id 0), the character vocabulary and the
        tag set.
    word_dim, char_dim : int
        Sizes of the word and character embeddings.
    char_hidden : int
        Hidden units of each direction of the character biLSTM (r_u has 2·char_hidden).
    hidden : int
        Hidden units of each direction of the sentence biLSTM.
    num_layers : int
        Stacked sentence biLSTM layers.
    dropout : float
        Dropout on x_t (TAG-3), between the layers and on h_t (TAG-5).
    word_dropout : float
        In training, probability of replacing a word id by ``<unk>``.
    rng : Generator or int seed
        Seeds the parameters, the dropout masks and the word dropout.
    dtype : float32 or float64

    Attributes
    ----------
    word_embedding.weight : (num_words, word_dim), N(0, 1)
    char_embedding.weight : (num_chars, char_dim), N(0, 1)
    char_rnn.* : the character biLSTM's PyTorch-named parameters (U(−1/√Hc, 1/√Hc))
    rnn.* : the sentence biLSTM's parameters
    classifier.weight : (num_tags, 2·hidden); classifier.bias : (num_tags,)

    Examples
    --------
    >>> tagger = SequenceTagger(5, 4, 3, word_dim=2, char_dim=2, char_hidden=2, hidden=3)
    >>> batch = TaggerBatch(np.array([[1], [2]]), np.array([2]), np.array([[1, 2], [3, 0]]),
    ...                     np.array([2, 1]), np.array([[0], [1]]))
    >>> tagger(batch).shape
    (2, 1, 3)
    """

    def __init__(
        self,
        num_words: int,
        num_chars: int,
        num_tags: int,
        word_dim: int = 100,
        char_dim: int = 32,
        char_hidden: int = 64,
        hidden: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        word_dropout: float = 0.0,
        rng: np.random.Generator | int | None = None,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        super().__init__()
        if not 0.0 <= word_dropout < 1.0:
            raise ValueError(f"`word_dropout` must be in [0, 1); got {word_dropout!r}.")
        self.config = {
            "num_words": num_words,
            "num_chars": num_chars,
            "num_tags": num_tags,
            "word_dim": word_dim,
            "char_dim": char_dim,
            "char_hidden": char_hidden,
            "hidden": hidden,
            "num_layers": num_layers,
            "dropout": dropout,
            "word_dropout": word_dropout,
            "dtype": np.dtype(dtype).name,
        }  # JSON-ready: SequenceTagger(**config) rebuilds the architecture
        seeds = as_generator(rng).integers(0, 2**63 - 1, size=7)
        self.word_dim, self.char_hidden, self.num_tags = word_dim, char_hidden, num_tags
        self.word_dropout = float(word_dropout)
        self.rng = np.random.default_rng(int(seeds[0]))  # word dropout
        self.word_embedding = Embedding(num_words, word_dim, rng=int(seeds[1]), dtype=dtype)
        self.char_embedding = Embedding(num_chars, char_dim, rng=int(seeds[2]), dtype=dtype)
        self.char_rnn = LSTM(
            char_dim, char_hidden, bidirectional=True, rng=int(seeds[3]), dtype=dtype
        )
        self.drop_in = Dropout(dropout, rng=int(seeds[4]))
        self.rnn = LSTM(
            word_dim + 2 * char_hidden,
            hidden,
            num_layers,
            dropout=dropout,
            bidirectional=True,
            rng=int(seeds[5]),
            dtype=dtype,
        )
        self.drop_out = Dropout(dropout, rng=int(seeds[6]))
        self.classifier = Linear(2 * hidden, num_tags, rng=int(seeds[6]) ^ 1, dtype=dtype)

    def forward(self, batch: TaggerBatch) -> np.ndarray:
        """Return the tag scores ``z`` (T, B, num_tags) of a batch, (TAG-1)–(TAG-5).

        Scores at padded positions are the classifier's bias (the biLSTM outputs zeros
        there); mask them out of the loss with ``batch.mask``.
        """
        if not isinstance(batch, TaggerBatch):
            raise TypeError(
                f"`batch` must be a TaggerBatch (see encode_batch); got {type(batch).__name__}."
            )
        ids = batch.words
        if self.training and self.word_dropout > 0:
            drop = self.rng.random(ids.shape) < self.word_dropout
            ids = np.where(drop, 0, ids)
        e = self.word_embedding(ids)  # (T, B, Ew)                              (TAG-1)
        _, (h_c, _) = self.char_rnn(self.char_embedding(batch.chars), None, batch.char_lengths)
        r = np.concatenate([h_c[0], h_c[1]], axis=1)  # (U, 2Hc)                (TAG-2)
        x = self.drop_in(np.concatenate([e, r[batch.word_index]], axis=2))  #   (TAG-3)
        h, _ = self.rnn(x, None, batch.lengths)  # (T, B, 2H)                   (TAG-4)
        z = self.classifier(self.drop_out(h))  # (T, B, num_tags)               (TAG-5)
        self._push(_Cache(batch, r.shape[0]))
        return z

    def backward(self, dz: np.ndarray) -> None:
        """Backpropagate the newest forward pass into the parameter gradients; return None."""
        cache: _Cache = self._pop()
        try:
            dh = self.classifier.backward(dz)  # checks dz before changing anything
        except (TypeError, ValueError):
            self._restore(cache)
            raise
        dx, _ = self.rnn.backward(self.drop_out.backward(dh))  #               (TAG-4')
        dx = self.drop_in.backward(dx)
        self.word_embedding.backward(dx[:, :, : self.word_dim])  #              (TAG-1')
        hc = self.char_hidden
        dr = np.zeros((cache.n_distinct, 2 * hc), dtype=dx.dtype)
        np.add.at(dr, cache.batch.word_index, dx[:, :, self.word_dim :])  # Σ over occurrences
        dh_c = np.stack([dr[:, :hc], dr[:, hc:]])  # (2, U, Hc)                 (TAG-2')
        dxc, _ = self.char_rnn.backward(None, (dh_c, None))
        self.char_embedding.backward(dxc)

    def predict(self, batch: TaggerBatch) -> np.ndarray:
        """Most likely tag id at every position, (T, B) int64 (eval mode, no caches)."""
        was_training = self.training
        self.eval()
        try:
            z = self.forward(batch)
        finally:
            self.train(was_training)
        return np.argmax(z, axis=2)
