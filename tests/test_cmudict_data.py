"""CMUdict reader, split, batches and WER/PER (rnnkit.data.cmudict), on the tiny fixture."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data.cmudict import (
    PHONEMES,
    G2PVocab,
    edit_distance,
    iterate_batches,
    load_cmudict,
    make_batch,
    parse_cmudict,
    score_g2p,
    split_dictionary,
    split_of,
)

TINY = Path(__file__).parent / "data" / "cmudict_tiny.dict"


def test_reads_the_fixture():
    entries, skipped = load_cmudict(TINY)
    assert len(entries) == 57
    assert skipped == 4  # abbott's, a.m., 'til, 3-d
    assert entries["an"] == [("AE", "N"), ("AH", "N")]  # an, an(2)
    assert entries["the"] == [("DH", "AH"), ("DH", "IY")]  # AH0 and AH1 are one: 3 lines, 2
    assert all(w.isalpha() and w.islower() for w in entries)
    used = {p for prons in entries.values() for pron in prons for p in pron}
    assert used <= set(PHONEMES)
    assert all(len(set(prons)) == len(prons) for prons in entries.values())


def test_parse_rules():
    lines = [
        ";;; comment",
        "# another",
        "",
        "TOMATO T AH0 M EY1 T OW2  # inline comment",
        "tomato(2) T AH0 M AA1 T OW2",
        "tomato(3) T AH1 M EY2 T OW0",  # equal to (1) once stress is removed: dropped
        "o'brien OW0 B R AY1 AH0 N",
        "x.y. EH1 K S W AY1",
    ]
    entries, skipped = parse_cmudict(lines)
    assert entries == {
        "tomato": [("T", "AH", "M", "EY", "T", "OW"), ("T", "AH", "M", "AA", "T", "OW")]
    }
    assert skipped == 2
    with pytest.raises(ValueError, match=r"line 1: unknown phoneme\(s\) \['QQ'\]"):
        parse_cmudict(["cat K QQ1 T"], "x.dict")
    with pytest.raises(ValueError, match="has no phonemes"):
        parse_cmudict(["cat"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cmudict(TINY.with_name("missing.dict"))


def test_phoneme_inventory_is_the_39_of_cmudict():
    assert len(PHONEMES) == 39 == len(set(PHONEMES))


def test_split_is_a_stable_hash():
    for w in ("cat", "phoneme", "zebra", "a"):
        h = int(hashlib.sha256(w.encode()).hexdigest()[:8], 16) % 100
        assert split_of(w) == ("train" if h < 90 else "dev" if h < 95 else "test")
    words = [f"w{k}" for k in range(4000)]
    counts = {s: sum(split_of(w) == s for w in words) for s in ("train", "dev", "test")}
    assert 0.88 < counts["train"] / 4000 < 0.92
    assert 0.035 < counts["dev"] / 4000 < 0.065
    entries, _ = load_cmudict(TINY)
    splits = split_dictionary(entries)
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [45, 6, 6]
    assert splits["dev"] == sorted(splits["dev"])


def test_vocab_and_batches():
    vocab = G2PVocab()
    assert len(vocab.letters) == 27
    assert len(vocab.phonemes) == 42
    assert vocab.encode_word("Cab") == [3, 1, 2]
    with pytest.raises(ValueError, match="cannot spell"):
        vocab.encode_word("o'neil")
    with pytest.raises(ValueError, match="unknown phoneme"):
        vocab.encode_pron(["K", "XX"])
    assert vocab.decode_pron([1, 3 + PHONEMES.index("K"), 2, 5]) == ["K"]
    b = make_batch(vocab, ["cat", "a"], [("K", "AE1", "T"), ("AH0",)])
    assert b.src.tolist() == [[3, 1], [1, 0], [20, 0]]
    assert b.src_lengths.tolist() == [3, 1]
    k, ae, t, ah = (3 + PHONEMES.index(p) for p in ("K", "AE", "T", "AH"))
    assert b.tgt_in.tolist() == [[1, 1], [k, ah], [ae, 0], [t, 0]]
    assert b.tgt_out.tolist() == [[k, ah], [ae, 2], [t, 0], [2, 0]]
    assert b.tgt_mask.tolist() == [[True, True], [True, True], [True, False], [True, False]]


def test_epoch_batches_cover_every_pair_once_and_are_seeded():
    entries, _ = load_cmudict(TINY)
    pairs = [(w, p) for w, prons in split_dictionary(entries)["train"] for p in prons]
    vocab = G2PVocab()

    def epoch(seed):
        return list(iterate_batches(pairs, 8, np.random.default_rng(seed), vocab, bucket=2))

    a, b = epoch(0), epoch(0)
    assert [x.words for x in a] == [x.words for x in b]
    assert [x.words for x in a] != [x.words for x in epoch(1)]
    seen = sorted(w for x in a for w in x.words)
    assert seen == sorted(w for w, _ in pairs)


def test_edit_distance_and_scores():
    assert edit_distance([], ["A"]) == 1
    assert edit_distance(["A", "B"], ["A", "B"]) == 0
    assert edit_distance(list("flaw"), list("lawn")) == 2
    preds = [["R", "IY", "D"], ["K", "AE"], ["D", "AO", "G"]]
    refs = [[("R", "EH", "D"), ("R", "IY", "D")], [("K", "AE", "T")], [("D", "AA", "G")]]
    wer, per = score_g2p(preds, refs)
    assert wer == pytest.approx(2 / 3)
    assert per == pytest.approx((0 + 1 + 1) / (3 + 3 + 3))
    with pytest.raises(ValueError, match="equally long"):
        score_g2p(preds, refs[:2])
