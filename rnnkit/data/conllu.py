"""CoNLL-U reader and writer (Universal Dependencies v2 format).

A file is a sequence of sentences, each ended by a blank line. A sentence is:

- comment lines starting with ``#`` (``# sent_id = …``, ``# text = …``), before its rows;
- rows of 10 tab-separated fields ``ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC``,
  where ``ID`` is one of
  - a word index ``1, 2, …`` (consecutive from 1),
  - a multiword-token range ``3-4`` (the surface token that words 3 and 4 split;
    its other fields are ``_``),
  - an empty node ``8.1`` (enhanced dependencies; it sits after word 8).

``_`` marks an unspecified field. Values are kept exactly as written, so reading and
writing a file gives back the same text; :func:`unspecified` tells ``_`` apart (for FORM
and LEMMA an underscore can also be the literal token, which the caller decides).

Errors name the file and the line: ``CoNLLUError: en.conllu:12: expected 10 fields …``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple, TextIO

__all__ = [
    "FIELDS",
    "CoNLLUError",
    "Row",
    "Sentence",
    "format_conllu",
    "parse_conllu",
    "read_conllu",
    "sentence_from_words",
    "unspecified",
    "write_conllu",
]

FIELDS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
_WORD = re.compile(r"[1-9][0-9]*")
_RANGE = re.compile(r"([1-9][0-9]*)-([1-9][0-9]*)")
_EMPTY = re.compile(r"(0|[1-9][0-9]*)\.([1-9][0-9]*)")


class CoNLLUError(ValueError):
    """A malformed CoNLL-U line; the message starts with ``file:line:``."""


class Row(NamedTuple):
    """One row of a sentence: the 10 fields as written (``_`` for unspecified)."""

    id: str
    form: str
    lemma: str
    upos: str
    xpos: str
    feats: str
    head: str
    deprel: str
    deps: str
    misc: str

    @property
    def kind(self) -> str:
        """``"word"``, ``"multiword"`` (range ``3-4``) or ``"empty"`` (``8.1``)."""
        if "-" in self.id:
            return "multiword"
        return "empty" if "." in self.id else "word"


class Sentence(NamedTuple):
    """A sentence: its comment lines (without the newline) and its rows, in file order."""

    comments: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def words(self) -> tuple[Row, ...]:
        """The syntactic words (integer ids), the units that carry UPOS tags."""
        return tuple(r for r in self.rows if r.kind == "word")

    def forms(self) -> list[str]:
        """The FORM of every word."""
        return [r.form for r in self.words]

    def upos(self) -> list[str]:
        """The UPOS of every word (``_`` where unannotated)."""
        return [r.upos for r in self.words]

    def with_upos(self, tags: Sequence[str]) -> Sentence:
        """A copy with the UPOS of the words replaced by ``tags`` (one per word)."""
        n = len(self.words)
        if len(tags) != n:
            raise ValueError(f"`tags` must have one tag per word ({n}); got {len(tags)}.")
        it = iter(tags)
        rows = tuple(r._replace(upos=next(it)) if r.kind == "word" else r for r in self.rows)
        return Sentence(self.comments, rows)


def unspecified(value: str) -> bool:
    """True for ``_``, the CoNLL-U mark of an unspecified field."""
    return value == "_"


def _error(source: str, line: int, text: str) -> CoNLLUError:
    return CoNLLUError(f"{source}:{line}: {text}")


def _check_row(fields: list[str], words: int, source: str, line: int) -> Row:
    """Validate the 10 fields of a row; ``words`` is the number of words seen so far."""
    if len(fields) != 10:
        raise _error(
            source,
            line,
            f"expected 10 tab-separated fields (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL "
            f"DEPS MISC); got {len(fields)}. Separate fields by single tabs.",
        )
    for name, value in zip(FIELDS, fields, strict=True):
        if value == "" or (name != "form" and name != "lemma" and value != value.strip()):
            raise _error(
                source, line, f"field {name.upper()} is empty or padded; write '_' if unknown."
            )
    rid = fields[0]
    if _WORD.fullmatch(rid):
        if int(rid) != words + 1:
            raise _error(
                source,
                line,
                f"word ID {rid} out of order; expected {words + 1} (IDs count from 1 "
                "without gaps).",
            )
        head = fields[6]
        if head != "_" and not (head == "0" or _WORD.fullmatch(head)):
            raise _error(source, line, f"HEAD must be an integer ID or '_'; got {head!r}.")
    elif m := _RANGE.fullmatch(rid):
        a, b = int(m.group(1)), int(m.group(2))
        if a != words + 1 or b <= a:
            raise _error(
                source,
                line,
                f"multiword range {rid} must start at the next word ({words + 1}) and "
                "end after it.",
            )
    elif m := _EMPTY.fullmatch(rid):
        if int(m.group(1)) != words:
            raise _error(
                source, line, f"empty node {rid} must follow word {m.group(1)}; last word {words}."
            )
    else:
        raise _error(
            source,
            line,
            f"ID must be a word index (7), a range (3-4) or a decimal (8.1); got {rid!r}.",
        )
    return Row(*fields)


def parse_conllu(text: str, source: str = "<string>") -> list[Sentence]:
    """Parse CoNLL-U text into sentences; ``source`` names the text in error messages.

    Raises
    ------
    CoNLLUError
        For a row without 10 fields, a bad ID, words out of order, a comment between the
        rows of a sentence, a sentence with no word, or an unfinished multiword range.
    """
    sentences: list[Sentence] = []
    comments: list[str] = []
    rows: list[Row] = []
    words = 0
    open_range = 0  # last word of the newest multiword range
    range_line = 0  # the line of that range
    start = 1

    def finish() -> None:
        nonlocal comments, rows, words, open_range
        if rows:
            if words == 0:
                raise _error(source, start, "sentence has no word (only ranges or empty nodes).")
            if open_range > words:
                raise _error(
                    source,
                    range_line,
                    f"multiword range reaches word {open_range}; the sentence has {words}.",
                )
            sentences.append(Sentence(tuple(comments), tuple(rows)))
        elif comments:
            raise _error(source, start, "comment lines with no sentence after them.")
        comments, rows, words, open_range = [], [], 0, 0

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for k, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        if line.strip() == "":
            finish()
            continue
        if not rows and not comments:
            start = k
        if line.startswith("#"):
            if rows:
                raise _error(
                    source, k, "comment line inside a sentence; comments go before its rows."
                )
            comments.append(line)
            continue
        row = _check_row(line.split("\t"), words, source, k)
        if row.kind == "word":
            words += 1
        elif row.kind == "multiword":
            open_range, range_line = int(row.id.split("-")[1]), k
        rows.append(row)
    finish()
    return sentences


def read_conllu(path: str | os.PathLike[str]) -> list[Sentence]:
    """Read a CoNLL-U file (UTF-8); errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CoNLLUError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    return parse_conllu(text, source=str(p))


def format_conllu(sentences: Iterable[Sentence]) -> str:
    """CoNLL-U text for ``sentences``: comments, rows, and a blank line after each sentence."""
    out = io.StringIO()
    write_conllu(sentences, out)
    return out.getvalue()


def write_conllu(sentences: Iterable[Sentence], dest: str | os.PathLike[str] | TextIO) -> None:
    """Write ``sentences`` as CoNLL-U to a path or an open text stream."""
    if isinstance(dest, (str, os.PathLike)):
        with open(dest, "w", encoding="utf-8", newline="\n") as f:
            write_conllu(sentences, f)
        return
    for s in sentences:
        for c in s.comments:
            dest.write(c + "\n")
        for r in s.rows:
            dest.write("\t".join(r) + "\n")
        dest.write("\n")


def sentence_from_words(words: Sequence[str], sent_id: str | None = None) -> Sentence:
    """A sentence of plain words (IDs and FORMs set, every other field ``_``).

    Adds ``# sent_id`` (when given) and ``# text`` comments. Words must be non-empty and
    hold no whitespace.
    """
    for w in words:
        if not w or any(ch.isspace() for ch in w):
            raise ValueError(f"`words` must be non-empty and hold no whitespace; got {w!r}.")
    if not words:
        raise ValueError("`words` must not be empty.")
    comments = ([f"# sent_id = {sent_id}"] if sent_id is not None else []) + [
        "# text = " + " ".join(words)
    ]
    rows = tuple(Row(str(k), w, *(["_"] * 8)) for k, w in enumerate(words, start=1))
    return Sentence(tuple(comments), rows)
