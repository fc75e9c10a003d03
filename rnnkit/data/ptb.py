"""Reader for the Penn Treebank language-modelling text (Mikolov's ``simple-examples``).

Format. A directory holds ``ptb.train.txt``, ``ptb.valid.txt`` and ``ptb.test.txt``:
one sentence per line, tokens separated by spaces (each line also starts and ends
with a space), lower-cased, numbers replaced by ``N`` and rare words by ``<unk>``.
As in Zaremba et al.'s ``reader.py``/``data.lua``, every newline becomes an ``<eos>``
token, and the splits are read as one token stream each:

(PTB-1) stream = w_1 … w_{n_1} <eos> w'_1 … w'_{n_2} <eos> …

The vocabulary is the set of train tokens (10,000 types for the real corpus, ``<unk>``
and ``<eos>`` included), built with :meth:`rnnkit.data.WordVocab.build` so ``<unk>`` is
id 0 and the other types follow by frequency. Tokens of another split that are not in it
encode to ``<unk>`` and are counted (the real valid and test splits have none).

Only the splits asked for are read: the test split is never opened unless requested.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rnnkit.data.vocab import WordVocab

__all__ = ["EOS", "PTB_FILES", "UNK", "PTBSplit", "load_ptb", "ptb_path", "read_ptb_tokens"]

EOS = "<eos>"
UNK = "<unk>"
PTB_FILES = {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"}


class PTBSplit(NamedTuple):
    """One split encoded with the train vocabulary.

    Attributes
    ----------
    name : "train", "valid" or "test"
    ids : (N,) int64 token ids, ``<eos>`` included (PTB-1)
    oov : number of tokens that were not in the vocabulary (encoded as ``<unk>``)
    """

    name: str
    ids: np.ndarray
    oov: int


def ptb_path(directory: str | os.PathLike[str], split: str) -> Path:
    """Return ``directory/ptb.<split>.txt``; raise if ``split`` is unknown or the file missing."""
    if split not in PTB_FILES:
        raise ValueError(f"`split` must be one of {sorted(PTB_FILES)}; got {split!r}.")
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(
            f"PTB data directory {str(d)!r} does not exist; pass the folder holding "
            f"{', '.join(PTB_FILES.values())}."
        )
    path = d / PTB_FILES[split]
    if not path.is_file():
        raise FileNotFoundError(
            f"expected the PTB {split} split at {str(path)!r}; it is missing. "
            f"The folder must hold {PTB_FILES[split]} (Mikolov's simple-examples format)."
        )
    return path


def read_ptb_tokens(path: str | os.PathLike[str]) -> list[str]:
    """Read one PTB file as a token stream with ``<eos>`` at every line end, (PTB-1).

    Raises
    ------
    ValueError
        If the file is not UTF-8, holds no token, or a line holds a tab (not this format);
        the message names the file and the line.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    tokens: list[str] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    for k, line in enumerate(lines, start=1):
        if "\t" in line:
            raise ValueError(
                f"{p}:{k}: a tab in a PTB line; expected space-separated tokens "
                "(is this a CoNLL-U file?)."
            )
        tokens.extend(line.split())
        tokens.append(EOS)  #                                                   (PTB-1)
    if not any(t != EOS for t in tokens):
        raise ValueError(f"{p}: no tokens; expected one space-separated sentence per line.")
    return tokens


def load_ptb(
    directory: str | os.PathLike[str],
    splits: tuple[str, ...] = ("train", "valid"),
    vocab: WordVocab | None = None,
) -> tuple[WordVocab, dict[str, PTBSplit]]:
    """Read PTB splits from ``directory`` and encode them with the train vocabulary.

    Parameters
    ----------
    directory : the folder holding ``ptb.<split>.txt``
    splits : which splits to read (only these files are opened)
    vocab : an existing vocabulary (e.g. from a checkpoint); default: built from train,
        which must then be among ``splits``

    Returns
    -------
    vocab : WordVocab, ``<unk>`` id 0, train types by frequency (the given 10k vocabulary)
    data : dict split -> :class:`PTBSplit`
    """
    for s in splits:
        if s not in PTB_FILES:
            raise ValueError(f"`splits` must name splits of {sorted(PTB_FILES)}; got {s!r}.")
    if vocab is None and "train" not in splits:
        raise ValueError(
            "the vocabulary is built from the train split; include 'train' in `splits` "
            "or pass `vocab`."
        )
    tokens = {s: read_ptb_tokens(ptb_path(directory, s)) for s in splits}
    if vocab is None:
        vocab = WordVocab.build(tokens["train"], unk=UNK)
    data = {}
    for s, toks in tokens.items():
        ids = vocab.encode(toks)
        oov = int(sum(1 for t, i in zip(toks, ids.tolist(), strict=True) if i == 0 and t != UNK))
        data[s] = PTBSplit(s, ids, oov)
    return vocab, data
