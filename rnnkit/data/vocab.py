"""Vocabularies: map characters or word tokens to integer ids and back.

Both vocabularies are deterministic functions of their input (no dict or set order
leaks into the ids), encode to ``int64`` arrays, and round-trip exactly through a
plain JSON-compatible dict, so a checkpoint can store them in ``checkpoint.json``.

- :class:`CharVocab`: the sorted distinct characters of a text (by code point), plus an
  optional ``unk`` character that unknown characters map to.
- :class:`WordVocab`: ``<unk>`` first (id 0), then the tokens seen at least ``min_freq``
  times, most frequent first, ties broken by the token itself; at most ``max_size``
  entries in all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["CharVocab", "WordVocab"]


def _check_ids(ids: object, size: int) -> np.ndarray:
    """Return ``ids`` as a 1-D int64 array of values in ``[0, size)``, or raise."""
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu" and not (arr.size == 0 and arr.dtype.kind == "f"):
        raise TypeError(
            f"`ids` must hold integers; got dtype {arr.dtype}. Pass e.g. np.array([0, 3])."
        )
    if arr.ndim != 1:
        raise ValueError(
            f"`ids` must be 1-D; got shape {arr.shape}. Decode one sequence at a time."
        )
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= size):
        bad = int(arr[(arr < 0) | (arr >= size)][0])
        raise ValueError(
            f"`ids` must be in [0, {size}) for this vocabulary of {size} entries; got {bad}. "
            "Were the ids made with another vocabulary?"
        )
    return arr


def _check_kind(data: object, kind: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    """Check a ``to_json`` dict: a mapping with ``kind`` and exactly ``keys``."""
    if not isinstance(data, Mapping):
        raise TypeError(f"`data` must be a dict from to_json(); got {type(data).__name__}.")
    if data.get("kind") != kind:
        raise ValueError(
            f"`data` must describe a {kind!r} vocabulary; got kind {data.get('kind')!r}."
        )
    if set(data) != {"kind", *keys}:
        raise ValueError(
            f"`data` must have exactly the keys {sorted(['kind', *keys])}; got {sorted(data)}."
        )
    return data


class CharVocab:
    """Character vocabulary: id ``k`` is the ``k``-th entry of ``chars``.

    Parameters
    ----------
    chars : sequence of str
        Distinct single characters, in id order. :meth:`from_text` sorts them by code point.
    unk : str or None
        A character of ``chars`` that unknown characters encode to; when None, encoding
        an unknown character raises ``ValueError``.

    Examples
    --------
    >>> v = CharVocab.from_text("hello")
    >>> v.chars, len(v)
    (('e', 'h', 'l', 'o'), 4)
    >>> ids = v.encode("hole")
    >>> ids.tolist(), v.decode(ids)
    ([1, 3, 2, 0], 'hole')
    """

    def __init__(self, chars: Sequence[str], unk: str | None = None) -> None:
        if isinstance(chars, str) or not isinstance(chars, Sequence):
            raise TypeError(
                f"`chars` must be a list or tuple of 1-character strings; got "
                f"{type(chars).__name__}. Use CharVocab.from_text(text) to build from text."
            )
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"`chars` must hold 1-character strings; got {c!r}.")
        if len(set(chars)) != len(chars):
            dup = next(c for c, n in Counter(chars).items() if n > 1)
            raise ValueError(f"`chars` must be distinct; got {dup!r} more than once.")
        if not chars:
            raise ValueError("`chars` must not be empty. Build the vocabulary from some text.")
        if unk is not None and unk not in chars:
            raise ValueError(f"`unk` must be one of `chars`; got {unk!r}. Add it to `chars`.")
        self.chars: tuple[str, ...] = tuple(chars)
        self.unk = unk
        self._index = {c: i for i, c in enumerate(self.chars)}
        # Lookup by code point: sorted code points and the id of each.
        codes = np.array([ord(c) for c in self.chars], dtype=np.int64)
        order = np.argsort(codes)
        self._sorted_codes = codes[order]
        self._sorted_ids = order.astype(np.int64)
        self._table = np.array(self.chars)  # (V,) for decode

    @classmethod
    def from_text(cls, text: str, unk: str | None = None) -> CharVocab:
        """Build from ``text``: its distinct characters sorted by code point (plus ``unk``)."""
        if not isinstance(text, str):
            raise TypeError(f"`text` must be a str; got {type(text).__name__}.")
        if not text:
            raise ValueError("`text` must not be empty. Build the vocabulary from some text.")
        if unk is not None and (not isinstance(unk, str) or len(unk) != 1):
            raise ValueError(f"`unk` must be a single character or None; got {unk!r}.")
        chars = set(text) | ({unk} if unk is not None else set())
        return cls(sorted(chars), unk=unk)

    def __len__(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"CharVocab(size={len(self)}, unk={self.unk!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CharVocab):
            return NotImplemented
        return self.chars == other.chars and self.unk == other.unk

    __hash__ = None  # type: ignore[assignment]

    def encode(self, text: str) -> np.ndarray:
        """Return the ids of the characters of ``text`` as a ``(len(text),)`` int64 array.

        Unknown characters map to ``unk``'s id, or raise ``ValueError`` naming the first
        one when the vocabulary has no ``unk``.
        """
        if not isinstance(text, str):
            raise TypeError(f"`text` must be a str; got {type(text).__name__}.")
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(
            np.int64
        )  # (N,)
        pos = np.searchsorted(self._sorted_codes, codes)
        pos_c = np.minimum(pos, len(self) - 1)
        known = self._sorted_codes[pos_c] == codes
        ids = self._sorted_ids[pos_c]
        if not known.all():
            if self.unk is None:
                k = int(np.argmin(known))
                raise ValueError(
                    f"Character {text[k]!r} (U+{ord(text[k]):04X}) at position {k} of `text` "
                    "is not in the vocabulary. Build the vocabulary from this text, or "
                    "build it with an `unk` character."
                )
            ids[~known] = self._index[self.unk]
        return ids

    def decode(self, ids: object) -> str:
        """Return the string for a 1-D sequence of ids (each in ``[0, len(self))``)."""
        arr = _check_ids(ids, len(self))
        return "".join(self._table[arr].tolist())

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-compatible dict; :meth:`from_json` rebuilds an equal vocabulary."""
        return {"kind": "char", "chars": list(self.chars), "unk": self.unk}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CharVocab:
        """Rebuild a vocabulary from :meth:`to_json`'s dict."""
        data = _check_kind(data, "char", ("chars", "unk"))
        if not isinstance(data["chars"], list):
            raise TypeError(f"`data['chars']` must be a list; got {type(data['chars']).__name__}.")
        return cls(data["chars"], unk=data["unk"])


class WordVocab:
    """Word-token vocabulary with ``<unk>`` at id 0.

    Parameters
    ----------
    tokens : sequence of str
        Distinct tokens in id order, *without* the unk token (it is always id 0).
        :meth:`build` computes them from a corpus.
    unk : str
        The token that unknown tokens encode to; id 0.

    Examples
    --------
    >>> v = WordVocab.build([["the", "cat", "sat"], ["the", "mat"]], min_freq=1)
    >>> v.tokens
    ('<unk>', 'the', 'cat', 'mat', 'sat')
    >>> v.encode(["the", "dog"]).tolist(), v.decode([1, 2])
    ([1, 0], ['the', 'cat'])
    """

    def __init__(self, tokens: Sequence[str], unk: str = "<unk>") -> None:
        if not isinstance(unk, str) or not unk:
            raise ValueError(f"`unk` must be a non-empty string; got {unk!r}.")
        if isinstance(tokens, str) or not isinstance(tokens, Sequence):
            raise TypeError(
                f"`tokens` must be a list or tuple of strings; got {type(tokens).__name__}. "
                "Use WordVocab.build(...) to build from a corpus."
            )
        for t in tokens:
            if not isinstance(t, str) or not t:
                raise ValueError(f"`tokens` must hold non-empty strings; got {t!r}.")
        if unk in tokens:
            raise ValueError(
                f"`tokens` must not contain the unk token {unk!r}; it is added as id 0."
            )
        if len(set(tokens)) != len(tokens):
            dup = next(t for t, n in Counter(tokens).items() if n > 1)
            raise ValueError(f"`tokens` must be distinct; got {dup!r} more than once.")
        self.unk = unk
        self.tokens: tuple[str, ...] = (unk, *tokens)
        self._index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(
        cls,
        corpus: Iterable[str] | Iterable[Sequence[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        unk: str = "<unk>",
    ) -> WordVocab:
        """Count tokens and keep the frequent ones, in a deterministic order.

        Parameters
        ----------
        corpus : iterable of str, or iterable of sequences of str
            Either a flat token stream or a list of token lists (sentences); the two may
            not be mixed.
        min_freq : int
            Keep tokens seen at least this many times (>= 1).
        max_size : int or None
            At most this many entries in all, ``<unk>`` included (>= 1); None for no limit.
        unk : str
            The unknown token, id 0. Occurrences of it in the corpus are not counted.

        Returns
        -------
        WordVocab
            ``<unk>``, then kept tokens by frequency descending, ties by token (code points).
        """
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"`min_freq` must be an int >= 1; got {min_freq!r}.")
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1
        ):
            raise ValueError(f"`max_size` must be an int >= 1 or None; got {max_size!r}.")
        if isinstance(corpus, str):
            raise TypeError(
                "`corpus` must be a list of tokens or of token lists; got a str. "
                "Split the text into tokens first, e.g. text.split()."
            )
        counts: Counter[str] = Counter()
        flat = nested = False
        for item in corpus:
            if isinstance(item, str):
                flat = True
                counts[item] += 1
            elif isinstance(item, Sequence):
                nested = True
                for t in item:
                    if not isinstance(t, str):
                        raise TypeError(f"Tokens must be str; got {type(t).__name__} {t!r}.")
                    counts[t] += 1
            else:
                raise TypeError(
                    f"`corpus` items must be tokens (str) or token lists; got "
                    f"{type(item).__name__}."
                )
            if flat and nested:
                raise ValueError("`corpus` mixes tokens and token lists. Pass one or the other.")
        if "" in counts:
            raise ValueError("`corpus` contains an empty token ''. Drop empty strings.")
        counts.pop(unk, None)
        kept = sorted(
            (t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            kept = kept[: max_size - 1]
        return cls(kept, unk=unk)

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"WordVocab(size={len(self)}, unk={self.unk!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WordVocab):
            return NotImplemented
        return self.tokens == other.tokens and self.unk == other.unk

    __hash__ = None  # type: ignore[assignment]

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Return the ids of ``tokens`` as a ``(len(tokens),)`` int64 array; unknown -> 0."""
        if isinstance(tokens, str) or not isinstance(tokens, Sequence):
            raise TypeError(
                f"`tokens` must be a list or tuple of str; got {type(tokens).__name__}. "
                "Split text into tokens first, e.g. text.split()."
            )
        get = self._index.get
        out = np.empty(len(tokens), dtype=np.int64)
        for k, t in enumerate(tokens):
            if not isinstance(t, str):
                raise TypeError(f"`tokens[{k}]` must be a str; got {type(t).__name__}.")
            out[k] = get(t, 0)
        return out

    def decode(self, ids: object) -> list[str]:
        """Return the tokens for a 1-D sequence of ids (each in ``[0, len(self))``)."""
        arr = _check_ids(ids, len(self))
        return [self.tokens[i] for i in arr.tolist()]

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-compatible dict; :meth:`from_json` rebuilds an equal vocabulary."""
        return {"kind": "word", "tokens": list(self.tokens[1:]), "unk": self.unk}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WordVocab:
        """Rebuild a vocabulary from :meth:`to_json`'s dict."""
        data = _check_kind(data, "word", ("tokens", "unk"))
        if not isinstance(data["tokens"], list):
            raise TypeError(
                f"`data['tokens']` must be a list; got {type(data['tokens']).__name__}."
            )
        return cls(data["tokens"], unk=data["unk"])
