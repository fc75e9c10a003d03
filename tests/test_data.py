"""Tests for rnnkit.data: corpora, vocabularies, the train/valid split and the stream batcher."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import (
    TINYSHAKESPEARE_CHARS,
    CharVocab,
    StreamBatcher,
    Window,
    WordVocab,
    corpora,
    load_tinyshakespeare,
    read_text,
    split_train_valid,
)

DATA = Path(__file__).parent / "data"


# -- corpora ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shakespeare() -> str:
    return load_tinyshakespeare()


def test_tinyshakespeare_is_the_published_text(shakespeare: str) -> None:
    assert len(shakespeare) == TINYSHAKESPEARE_CHARS == 1_115_394
    assert len(set(shakespeare)) == 65
    assert shakespeare.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    assert shakespeare.endswith("\n")


def test_tinyshakespeare_damage_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    good = corpora._corpus_bytes("tinyshakespeare.txt.gz")
    raw = bytearray(gzip.decompress(good))
    raw[1000] ^= 1  # one flipped bit in the text
    monkeypatch.setattr(corpora, "_corpus_bytes", lambda name: gzip.compress(bytes(raw)))
    with pytest.raises(ValueError, match=r"sha256 .* reinstall"):
        load_tinyshakespeare()
    monkeypatch.setattr(corpora, "_corpus_bytes", lambda name: good[: len(good) // 2])
    with pytest.raises(ValueError, match="not a valid gzip file"):
        load_tinyshakespeare()
    monkeypatch.setattr(corpora, "_corpus_bytes", lambda name: b"plain text")
    with pytest.raises(ValueError, match="not a valid gzip file"):
        load_tinyshakespeare()


def test_missing_package_data_is_refused() -> None:
    with pytest.raises(ValueError, match=r"corpora/nope\.txt\.gz could not be read"):
        corpora._corpus_bytes("nope.txt.gz")


def test_read_text_reads_utf8_exactly(tmp_path: Path) -> None:
    text = read_text(DATA / "tiny_corpus.txt")
    assert text.startswith("First Citizen:\n")
    assert text.count("\n") == 5
    p = tmp_path / "crlf.txt"
    p.write_bytes("\ufeffé\r\n😀".encode())  # BOM dropped, CRLF kept, non-BMP fine
    assert read_text(str(p)) == "é\r\n😀"


def test_read_text_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'.*missing\.txt' does not exist"):
        read_text(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="is not a regular file"):
        read_text(tmp_path)
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.txt' is empty"):
        read_text(tmp_path / "empty.txt")
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf")
    with pytest.raises(ValueError, match="is empty"):
        read_text(tmp_path / "bom.txt")
    with pytest.raises(
        ValueError, match=r"latin1_text\.txt' is not valid UTF-8: byte 0xe9 at offset 3"
    ):
        read_text(DATA / "latin1_text.txt")
    with pytest.raises(TypeError, match="`path` must be a str"):
        read_text(3)  # type: ignore[arg-type]


# -- CharVocab ----------------------------------------------------------------------------


def test_char_vocab_sorted_and_round_trips() -> None:
    text = read_text(DATA / "tiny_corpus.txt")
    v = CharVocab.from_text(text)
    assert list(v.chars) == sorted(set(text))
    assert len(v) == len(set(text))
    ids = v.encode(text)
    assert ids.dtype == np.int64
    assert ids.shape == (len(text),)
    assert [v.chars[i] for i in ids] == list(text)
    assert v.decode(ids) == text
    assert v.encode("").shape == (0,)
    assert v.decode([]) == ""
    # Built in another order from the same characters: the same vocabulary.
    assert CharVocab.from_text(text[::-1]) == v


def test_char_vocab_on_shakespeare(shakespeare: str) -> None:
    v = CharVocab.from_text(shakespeare)
    assert len(v) == 65
    assert v.chars[:2] == ("\n", " ")
    ids = v.encode(shakespeare)
    assert ids.min() == 0
    assert ids.max() == 64
    assert v.decode(ids) == shakespeare


def test_char_vocab_any_order_and_non_bmp() -> None:
    v = CharVocab(["😀", "b", "a", "\n"])  # ids are positions, whatever the order
    assert v.encode("ab😀\n").tolist() == [2, 1, 0, 3]
    assert v.decode(np.array([0, 3], dtype=np.int32)) == "😀\n"


def test_char_vocab_unknown_characters() -> None:
    v = CharVocab.from_text("abc")
    with pytest.raises(ValueError, match=r"Character 'z' \(U\+007A\) at position 2"):
        v.encode("abzc")
    w = CharVocab.from_text("abc", unk="?")
    assert w.chars == ("?", "a", "b", "c")
    assert w.encode("azb€").tolist() == [1, 0, 2, 0]
    assert w.decode(w.encode("azb")) == "a?b"


def test_char_vocab_json_round_trip() -> None:
    for v in (CharVocab.from_text("hello\n\t wörld😀"), CharVocab.from_text("ab", unk="~")):
        data = json.loads(json.dumps(v.to_json()))
        w = CharVocab.from_json(data)
        assert w == v
        assert w.chars == v.chars
        assert w.unk == v.unk
        assert w.to_json() == v.to_json()


def test_char_vocab_errors() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        CharVocab.from_text("")
    with pytest.raises(TypeError, match="`text` must be a str"):
        CharVocab.from_text(["a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`unk` must be a single character"):
        CharVocab.from_text("ab", unk="<unk>")
    with pytest.raises(ValueError, match="distinct; got 'a'"):
        CharVocab(["a", "b", "a"])
    with pytest.raises(ValueError, match="1-character strings; got 'ab'"):
        CharVocab(["ab"])
    with pytest.raises(TypeError, match="list or tuple"):
        CharVocab("abc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`unk` must be one of"):
        CharVocab(["a"], unk="b")
    v = CharVocab.from_text("abc")
    with pytest.raises(ValueError, match=r"in \[0, 3\).*got 3"):
        v.decode([0, 3])
    with pytest.raises(ValueError, match=r"got -1"):
        v.decode([-1])
    with pytest.raises(ValueError, match="must be 1-D"):
        v.decode(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="must hold integers"):
        v.decode(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="`text` must be a str"):
        v.encode(["a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind 'word'"):
        CharVocab.from_json({"kind": "word", "tokens": [], "unk": "<unk>"})
    with pytest.raises(ValueError, match="exactly the keys"):
        CharVocab.from_json({"kind": "char", "chars": ["a"]})


# -- WordVocab ----------------------------------------------------------------------------


def test_word_vocab_order_cutoff_and_size() -> None:
    corpus = [["b", "a", "c", "a"], ["d", "b", "a", "e"], ["c", "<unk>"]]
    # counts: a 3, b 2, c 2, d 1, e 1 (<unk> in the corpus is not counted)
    v = WordVocab.build(corpus)
    assert v.tokens == ("<unk>", "a", "b", "c", "d", "e")
    assert WordVocab.build(corpus, min_freq=2).tokens == ("<unk>", "a", "b", "c")
    assert WordVocab.build(corpus, max_size=3).tokens == ("<unk>", "a", "b")
    assert WordVocab.build(corpus, max_size=1).tokens == ("<unk>",)
    flat = [t for sentence in corpus for t in sentence]
    assert WordVocab.build(flat) == v
    assert WordVocab.build(iter(reversed(flat))) == v  # any order of the same tokens


def test_word_vocab_encode_decode_unknown() -> None:
    v = WordVocab.build(["the", "cat", "the", "mat"], unk="<UNK>")
    ids = v.encode(("the", "dog", "mat"))
    assert ids.dtype == np.int64
    assert ids.tolist() == [1, 0, 3]
    assert v.decode(ids) == ["the", "<UNK>", "mat"]
    assert v.encode([]).shape == (0,)
    assert len(v) == 4


def test_word_vocab_json_round_trip() -> None:
    v = WordVocab.build([["x", "ÿ", "y", "x"], ["z"]], min_freq=1, unk="<u>")
    w = WordVocab.from_json(json.loads(json.dumps(v.to_json())))
    assert w == v
    assert w.tokens == v.tokens
    assert w.unk == "<u>"


def test_word_vocab_errors() -> None:
    with pytest.raises(ValueError, match="`min_freq` must be an int >= 1; got 0"):
        WordVocab.build(["a"], min_freq=0)
    with pytest.raises(ValueError, match="`max_size` must be an int >= 1"):
        WordVocab.build(["a"], max_size=0)
    with pytest.raises(TypeError, match="got a str"):
        WordVocab.build("a b c")
    with pytest.raises(ValueError, match="mixes tokens and token lists"):
        WordVocab.build(["a", ["b"]])
    with pytest.raises(TypeError, match="Tokens must be str"):
        WordVocab.build([["a", 1]])
    with pytest.raises(ValueError, match="empty token"):
        WordVocab.build(["a", ""])
    with pytest.raises(ValueError, match="must not contain the unk token"):
        WordVocab(["a", "<unk>"])
    with pytest.raises(ValueError, match="distinct"):
        WordVocab(["a", "a"])
    v = WordVocab(["a"])
    with pytest.raises(TypeError, match="Split text into tokens"):
        v.encode("a")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`tokens\[1\]` must be a str"):
        v.encode(["a", 2])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        v.decode([2])
    with pytest.raises(ValueError, match="kind 'char'"):
        WordVocab.from_json(CharVocab.from_text("a").to_json())


# -- split --------------------------------------------------------------------------------


def test_split_train_valid_is_contiguous_like_nanogpt() -> None:
    ids = np.arange(1003, dtype=np.int64)
    train, valid = split_train_valid(ids)
    assert len(train) == int(1003 * 0.9) == 902
    np.testing.assert_array_equal(np.concatenate([train, valid]), ids)
    assert train.dtype == valid.dtype == np.int64
    train2, valid2 = split_train_valid(ids.astype(np.int32), valid_fraction=0.5)
    assert train2.tolist() == list(range(501))
    assert valid2[0] == 501


def test_split_train_valid_errors() -> None:
    with pytest.raises(ValueError, match="each part needs at least 2"):
        split_train_valid(np.arange(10), 0.1)  # 9 + 1
    with pytest.raises(ValueError, match="each part needs at least 2"):
        split_train_valid(np.arange(3), 0.5)
    for bad in (0.0, 1.0, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match="`valid_fraction` must be a float in"):
            split_train_valid(np.arange(100), bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="integer token ids"):
        split_train_valid(np.linspace(0, 1, 100))
    with pytest.raises(ValueError, match="must be 1-D"):
        split_train_valid(np.zeros((10, 10), dtype=np.int64))


# -- StreamBatcher ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "batch_size", "bptt"),
    [(100, 4, 7), (101, 3, 5), (2, 1, 1), (50, 1, 49), (50, 5, 100), (37, 6, 2), (40, 4, 3)],
)
def test_streams_cover_every_position_once(n: int, batch_size: int, bptt: int) -> None:
    ids = np.arange(n) * 10 + 3  # distinct values
    batcher = StreamBatcher(ids, batch_size, bptt)
    L = n // batch_size
    D = batcher.data
    assert D.shape == (L, batch_size)
    assert D.dtype == np.int64
    np.testing.assert_array_equal(D, ids[: L * batch_size].reshape(batch_size, L).T)
    windows = list(batcher)
    assert len(windows) == len(batcher) == -(-(L - 1) // bptt)
    assert [w.index for w in windows] == list(range(len(batcher)))
    assert [w.reset for w in windows] == [True] + [False] * (len(windows) - 1)
    assert all(isinstance(w, Window) and w.epoch == 0 for w in windows)
    for w in windows[:-1]:
        assert w.x.shape == w.y.shape == (bptt, batch_size)
    assert 1 <= windows[-1].x.shape[0] <= bptt
    assert windows[-1].y.shape == windows[-1].x.shape
    xs = np.concatenate([w.x for w in windows])  # (L - 1, B)
    ys = np.concatenate([w.y for w in windows])
    np.testing.assert_array_equal(xs, D[:-1])  # every input position once, in order
    np.testing.assert_array_equal(ys, D[1:])  # every target position once
    np.testing.assert_array_equal(ys, xs + 10)  # y is x shifted by one token of its stream
    for w in windows:
        assert w.x.dtype == w.y.dtype == np.int64
        assert not w.x.flags.writeable
    assert (batcher.epoch, batcher.position) == (1, 0)


def test_streams_walk_epochs_in_order() -> None:
    batcher = StreamBatcher(np.arange(30), 2, 4)  # L = 15, 4 windows
    first = [(w.epoch, w.index) for w in batcher]
    second = list(batcher)
    assert first == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert [(w.epoch, w.index, w.reset) for w in second][:2] == [(1, 0, True), (1, 1, False)]
    w = batcher.window(3, epoch=7)
    assert (w.epoch, w.index, w.x.shape) == (7, 3, (2, 2))
    assert batcher.position == 0  # window() does not move


def _run(batcher: StreamBatcher, n_windows: int) -> list[tuple]:
    out = []
    while len(out) < n_windows:
        for w in batcher:
            out.append((w.epoch, w.index, w.reset, w.x.tolist(), w.y.tolist()))
            if len(out) == n_windows:
                break
    return out


@pytest.mark.parametrize("stop", [1, 3, 5, 6, 7, 11])
def test_streams_resume_mid_epoch_equals_uninterrupted(stop: int) -> None:
    ids = np.random.default_rng(0).integers(0, 50, size=64)
    whole = _run(StreamBatcher(ids, 3, 4), 15)  # L = 21, 5 windows per epoch, 3 epochs
    first = StreamBatcher(ids, 3, 4)
    head = _run(first, stop)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = StreamBatcher(ids.copy(), 3, 4)
    resumed.load_state_dict(state)
    assert (resumed.epoch, resumed.position) == (first.epoch, first.position)
    assert head + _run(resumed, 15 - stop) == whole


def test_streams_state_dict_refuses_other_layouts() -> None:
    ids = np.arange(40)
    state = StreamBatcher(ids, 2, 3).state_dict()
    with pytest.raises(ValueError, match="saved for another stream layout: batch_size=2"):
        StreamBatcher(ids, 4, 3).load_state_dict(state)
    with pytest.raises(ValueError, match="another stream layout: bptt=3"):
        StreamBatcher(ids, 2, 5).load_state_dict(state)
    other = ids.copy()
    other[5] = 99
    with pytest.raises(ValueError, match="another stream layout: data_sha256"):
        StreamBatcher(other, 2, 3).load_state_dict(state)
    b = StreamBatcher(ids, 2, 3)
    with pytest.raises(ValueError, match=r"`state\['position'\]` must be <= 7"):
        b.load_state_dict({**state, "position": 8})
    with pytest.raises(ValueError, match=r"`state\['epoch'\]` must be an int >= 0"):
        b.load_state_dict({**state, "epoch": -1})
    with pytest.raises(ValueError, match="must have the keys"):
        b.load_state_dict({"epoch": 0, "position": 0})
    assert (b.epoch, b.position) == (0, 0)  # failed loads change nothing


def test_streams_errors() -> None:
    with pytest.raises(ValueError, match=r"too few for batch_size=5 .* \(need >= 10\)"):
        StreamBatcher(np.arange(9), 5, 3)
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1; got 0"):
        StreamBatcher(np.arange(9), 0, 3)
    with pytest.raises(ValueError, match="`bptt` must be an int >= 1; got 0"):
        StreamBatcher(np.arange(9), 1, 0)
    with pytest.raises(ValueError, match="`bptt` must be an int >= 1"):
        StreamBatcher(np.arange(9), 1, 2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="integer token ids"):
        StreamBatcher(np.arange(9.0), 1, 2)
    b = StreamBatcher(np.arange(9), 1, 3)
    with pytest.raises(ValueError, match=r"`index` must be in \[0, 3\)"):
        b.window(3)
