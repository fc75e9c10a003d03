"""SequenceTagger: full backward by finite differences, batch encoding, OOV and padding."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.data.vocab import CharVocab, WordVocab
from rnnkit.diagnostics import gradcheck_module
from rnnkit.models.tagger import SequenceTagger, TaggerBatch, encode_batch
from rnnkit.ops.losses import softmax_cross_entropy

SENTS = [["The", "cat", "sat", "on", "the", "cat"], ["A", "dog"], ["cat"]]
WORDS = WordVocab.build(SENTS)
CHARS = CharVocab.from_text("".join(w for s in SENTS for w in s) + "?", unk="?")


def tiny(layers=1, dtype=np.float64, **kw):
    m = SequenceTagger(
        len(WORDS),
        len(CHARS),
        4,
        word_dim=2,
        char_dim=2,
        char_hidden=2,
        hidden=2,
        num_layers=layers,
        rng=0,
        dtype=dtype,
        **kw,
    )
    rng = np.random.default_rng(5)
    for p in m.parameters():  # nonzero biases everywhere, larger than the default scale
        p.data = rng.uniform(-0.6, 0.6, size=p.shape).astype(dtype)
    return m


@pytest.mark.parametrize(
    ("sentences", "layers"),
    [(SENTS, 1), ([["dog"]], 1), ([["A", "cat"], ["dog"]], 2)],  # ragged, T=B=1
)
def test_full_backward_matches_finite_differences(sentences, layers):
    batch = encode_batch(sentences, WORDS, CHARS, max_chars=4)
    m = tiny(layers)
    report = gradcheck_module(m, (batch,))
    assert report.ok(1e-6), str(report)
    names = {e.name for e in report}
    assert {"char_embedding.weight", "char_rnn.weight_hh_l0_reverse", "classifier.bias"} <= names


def test_loss_gradient_reaches_every_parameter_and_stacks_empty():
    batch = encode_batch(SENTS, WORDS, CHARS)
    m = tiny(2, dtype=np.float32, dropout=0.2, word_dropout=0.3)
    z = m(batch)
    gold = np.random.default_rng(0).integers(0, 4, size=batch.words.shape)
    _, dz = softmax_cross_entropy(z, gold, mask=batch.mask)
    m.backward(dz)
    assert m.pending() == 0
    for name, p in m.named_parameters():
        assert np.abs(p.grad).sum() > 0, name


def test_encode_batch_dedupes_words_and_clips_long_ones():
    b = encode_batch([["cat", "Thecatsat", "cat"], ["zz!"]], WORDS, CHARS, max_chars=4)
    assert b.lengths.tolist() == [3, 1]
    assert b.words.shape == (3, 2)
    assert b.word_index[:, 0].tolist() == [0, 1, 0]  # "cat" twice, one column of chars
    assert b.char_lengths.tolist() == [3, 4, 3]
    assert "".join(CHARS.decode(b.chars[:4, 1])) == "That"  # first 2 + last 2 characters
    q = CHARS.encode("?")[0]
    assert b.chars[:3, 2].tolist() == [q, q, q]  # unseen characters -> unk
    assert b.words[0, 1] == 0  # unseen word -> <unk>
    assert b.mask.tolist() == [[True, True], [True, False], [True, False]]
    with pytest.raises(ValueError, match="non-empty"):
        encode_batch([["a"], []], WORDS, CHARS)


def test_lowercase_changes_word_ids_not_characters():
    b = encode_batch([["CAT", "The"]], WORDS, CHARS, lowercase=True)
    c = encode_batch([["CAT", "The"]], WORDS, CHARS)
    assert b.words[:, 0].tolist() == WORDS.encode(["cat", "the"]).tolist()
    assert c.words[:, 0].tolist() == [0, WORDS.encode(["The"])[0]]
    np.testing.assert_array_equal(b.chars, c.chars)


def test_padding_does_not_change_real_positions():
    m = tiny(2)
    m.eval()
    alone = m(encode_batch([SENTS[1]], WORDS, CHARS))
    padded = m(encode_batch([SENTS[1], SENTS[0]], WORDS, CHARS))
    np.testing.assert_allclose(padded[:2, 0], alone[:, 0], rtol=1e-12)


def test_unknown_words_still_differ_by_their_characters():
    m = tiny()
    m.eval()
    b = encode_batch([["Xyz", "qqq"]], WORDS, CHARS)
    assert (b.words == 0).all()
    z = m(b)
    assert not np.allclose(z[0, 0], z[1, 0])


def test_word_dropout_is_training_only_and_seeded():
    b = encode_batch(SENTS, WORDS, CHARS)
    m1, m2 = tiny(word_dropout=0.5), tiny(word_dropout=0.5)
    np.testing.assert_array_equal(m1(b), m2(b))  # same seed, same masks
    m1.clear_cache()
    m2.clear_cache()
    m1.eval()
    e1 = m1(b)
    np.testing.assert_array_equal(e1, m1(b))  # deterministic in eval mode
    assert not np.allclose(e1, m2(b))  # training drops words
    assert m1.pending() == 0


def test_predict_and_errors():
    m = tiny()
    pred = m.predict(encode_batch(SENTS, WORDS, CHARS))
    assert pred.shape == (6, 3)
    assert pred.dtype.kind == "i"
    assert m.training
    assert m.pending() == 0
    with pytest.raises(TypeError, match="TaggerBatch"):
        m(np.zeros((2, 1), dtype=np.int64))
    with pytest.raises(ValueError, match="word_dropout"):
        SequenceTagger(3, 3, 2, word_dropout=1.0)
    with pytest.raises(RuntimeError, match="no forward pass"):
        m.backward(np.zeros((1, 1, 4)))
    b = encode_batch([["cat"]], WORDS, CHARS)
    m(b)
    with pytest.raises(ValueError, match="shape"):
        m.backward(np.zeros((1, 1, 5)))
    assert m.pending() > 0  # the failed call left the forward pass in place
    m.backward(np.zeros((1, 1, 4)))
    assert m.pending() == 0


def test_batch_mask_property():
    b = TaggerBatch(
        np.zeros((3, 2), np.int64),
        np.array([3, 1]),
        np.zeros((1, 1), np.int64),
        np.array([1]),
        np.zeros((3, 2), np.int64),
    )
    assert b.mask.sum() == 4
