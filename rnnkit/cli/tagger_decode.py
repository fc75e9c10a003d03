"""The tagging side of tagger runs: ``rnnkit tag``, the tagger part of ``rnnkit eval``.

Loads the ``best/`` (else ``checkpoint/``) parameters of runs written by ``rnnkit train
tagger`` (:mod:`rnnkit.cli.tagger`), and holds what training and tagging share: the
UD split files, sentences encoded into batches of similar length, UPOS accuracy overall
and on OOV words (forms absent from the training data).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.conllu import (
    Sentence,
    format_conllu,
    parse_conllu,
    read_conllu,
    sentence_from_words,
)
from rnnkit.data.vocab import CharVocab, WordVocab
from rnnkit.io.checkpoint import load_checkpoint
from rnnkit.models.tagger import SequenceTagger, TaggerBatch, encode_batch

KIND = "rnnkit-tagger"


def add_tag_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit tag``."""
    p.add_argument("--checkpoint", required=True, help="run directory or checkpoint folder")
    p.add_argument("file", help="CoNLL-U, or plain text with one tokenised sentence per line")
    p.add_argument("--format", choices=["auto", "conllu", "text"], default="auto")
    p.add_argument("-o", "--output", help="write CoNLL-U here (default: standard output)")


# -- data ---------------------------------------------------------------------------
def split_file(directory: str | Path, split: str) -> Path:
    """The one ``*-ud-<split>.conllu`` file of a UD treebank folder."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"UD data directory {str(d)!r} does not exist.")
    found = sorted(d.glob(f"*-ud-{split}.conllu"))
    if len(found) != 1:
        raise FileNotFoundError(
            f"expected one *-ud-{split}.conllu file in {str(d)!r}; found "
            f"{[f.name for f in found]}. Pass the folder of one UD treebank."
        )
    return found[0]


def with_words(sentences: list[Sentence]) -> list[Sentence]:
    """The sentences with at least one word row (an empty one has nothing to tag)."""
    return [s for s in sentences if s.words]


def batches_of(sentences: Sequence[Sentence], batch_size: int) -> list[list[int]]:
    """Sentence indices grouped into batches of similar length (sorted, then chunked)."""
    order = sorted(range(len(sentences)), key=lambda i: (len(sentences[i].words), i))
    return [order[k : k + batch_size] for k in range(0, len(order), batch_size)]


class Encoded:
    """Sentences encoded once into batches: inputs, gold tag ids (−1: no gold), OOV marks."""

    def __init__(
        self,
        sentences: Sequence[Sentence],
        words: WordVocab,
        chars: CharVocab,
        tags: Sequence[str],
        batch_size: int,
        max_chars: int,
        lowercase: bool = False,
    ) -> None:
        tag_id = {t: k for k, t in enumerate(tags)}
        self.groups = batches_of(sentences, batch_size)
        self.batches: list[TaggerBatch] = []
        self.gold: list[np.ndarray] = []
        self.oov: list[np.ndarray] = []
        for group in self.groups:
            forms = [sentences[i].forms() for i in group]
            b = encode_batch(forms, words, chars, max_chars, lowercase)
            gold = np.full(b.words.shape, -1, dtype=np.int64)
            oov = np.zeros(b.words.shape, dtype=bool)
            for j, i in enumerate(group):
                for t, (f, u) in enumerate(zip(forms[j], sentences[i].upos(), strict=True)):
                    gold[t, j] = tag_id.get(u, -1)
                    key = f.lower() if lowercase else f
                    oov[t, j] = b.words[t, j] == 0 and key != words.unk
            self.batches.append(b)
            self.gold.append(gold)
            self.oov.append(oov)


def accuracy(model: SequenceTagger, data: Encoded) -> dict[str, float]:
    """UPOS accuracy over words with a gold tag, overall and on OOV words (in percent)."""
    right = total = oov_right = oov_total = 0
    for b, gold, oov in zip(data.batches, data.gold, data.oov, strict=True):
        pred = model.predict(b)
        has = gold >= 0
        ok = (pred == gold) & has
        right += int(ok.sum())
        total += int(has.sum())
        oov_right += int((ok & oov).sum())
        oov_total += int((has & oov).sum())
    return {
        "accuracy": 100.0 * right / max(total, 1),
        "tokens": total,
        "oov_accuracy": 100.0 * oov_right / max(oov_total, 1),
        "oov_tokens": oov_total,
    }


# -- checkpoints ----------------------------------------------------------------------
def load_tagger(path: str | Path) -> tuple[SequenceTagger, dict[str, Any], dict[str, np.ndarray]]:
    """Load a tagger checkpoint (a run directory: its ``best`` or ``checkpoint`` folder)."""
    p = Path(path)
    for sub in ("best", "checkpoint"):
        if (p / sub).is_dir() or (p / f"{sub}.old").is_dir():
            p = p / sub
            break
    arrays, meta = load_checkpoint(p)
    if meta.get("kind") != KIND:
        raise ValueError(f"{str(p)!r} is not a tagger checkpoint (kind {meta.get('kind')!r}).")
    model = SequenceTagger(**meta["model_config"])
    model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
    return model, meta, arrays


def vocabs_of(meta: dict[str, Any]) -> tuple[WordVocab, CharVocab, list[str]]:
    """The word vocabulary, character vocabulary and tag list stored in a checkpoint."""
    v = meta["vocab"]
    return WordVocab.from_json(v["words"]), CharVocab.from_json(v["chars"]), list(v["tags"])


# -- commands -------------------------------------------------------------------------
def evaluate(args: argparse.Namespace) -> int:
    """Run ``rnnkit eval`` on a tagger checkpoint: UPOS accuracy, overall and on OOV words."""
    model, meta, _ = load_tagger(args.checkpoint)
    words, chars, tags = vocabs_of(meta)
    src = Path(args.data or meta["config"]["data"])
    path = src if src.is_file() else split_file(src, args.split or "dev")
    sentences = with_words(read_conllu(path))
    cfg = meta["config"]
    data = Encoded(sentences, words, chars, tags, 64, cfg["max_chars"], cfg.get("lowercase", False))
    t0 = time.perf_counter()
    acc = accuracy(model, data)
    print(
        f"{path.name}: {len(sentences):,} sentences, {acc['tokens']:,} words; UPOS accuracy "
        f"{acc['accuracy']:.2f}%; OOV words {acc['oov_tokens']:,}, accuracy "
        f"{acc['oov_accuracy']:.2f}% ({time.perf_counter() - t0:.1f} s)"
    )
    return 0


def _read_input(path: Path, fmt: str) -> list[Sentence]:
    text = path.read_text(encoding="utf-8")
    if fmt == "auto":
        first = next((ln for ln in text.split("\n") if ln.strip()), "")
        fmt = "conllu" if first.startswith("#") or first.count("\t") == 9 else "text"
    if fmt == "conllu":
        return parse_conllu(text, source=str(path))
    lines = [ln.split() for ln in text.split("\n")]
    return [sentence_from_words(ws, sent_id=str(k)) for k, ws in enumerate(lines, 1) if ws]


def tag(args: argparse.Namespace) -> int:
    """Run ``rnnkit tag``: fill in the UPOS column of CoNLL-U (or tag plain text)."""
    model, meta, _ = load_tagger(args.checkpoint)
    words, chars, tags = vocabs_of(meta)
    sentences = _read_input(Path(args.file), args.format)
    tagged: list[Sentence] = list(sentences)
    todo = [i for i, s in enumerate(sentences) if s.words]
    cfg = meta["config"]
    for group in batches_of([sentences[i] for i in todo], 64):
        idx = [todo[g] for g in group]
        forms = [sentences[i].forms() for i in idx]
        b = encode_batch(forms, words, chars, cfg["max_chars"], cfg.get("lowercase", False))
        pred = model.predict(b)
        for j, i in enumerate(idx):
            n = len(sentences[i].words)
            tagged[i] = sentences[i].with_upos([tags[int(k)] for k in pred[:n, j]])
    text = format_conllu(tagged)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
