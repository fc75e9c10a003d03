"""PTB reader, Zaremba presets and loss scale, and the word LM's full backward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli.ptb import PRESETS, build, lr_factor
from rnnkit.data.ptb import EOS, UNK, load_ptb, ptb_path, read_ptb_tokens
from rnnkit.diagnostics import gradcheck_module
from rnnkit.models.language_model import LanguageModel
from rnnkit.ops.losses import softmax_cross_entropy
from rnnkit.optim import SGD, clip_grad_norm

TINY = Path(__file__).parent / "data" / "ptb_tiny"


def test_tokens_get_eos_at_every_line_end():
    toks = read_ptb_tokens(TINY / "ptb.valid.txt")
    lines = (TINY / "ptb.valid.txt").read_text().splitlines()
    assert toks.count(EOS) == len(lines) == 4
    assert toks[:9] == ["the", "little", "kite", "flew", "over", "the", "quiet", "village", EOS]
    assert toks[-1] == EOS
    assert len(toks) == sum(len(ln.split()) + 1 for ln in lines)


def test_empty_lines_and_missing_final_newline(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text(" a b \n\n c ")
    assert read_ptb_tokens(f) == ["a", "b", EOS, EOS, "c", EOS]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b" a b \n c\td \n", r"p\.txt:2: a tab"),
        (b"\n \n", r"p\.txt: no tokens"),
        (b" caf\xe9 \n", r"p\.txt: not UTF-8"),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, match):
    f = tmp_path / "p.txt"
    f.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_ptb_tokens(f)


def test_vocabulary_from_train_and_encoding():
    vocab, data = load_ptb(TINY)
    assert set(data) == {"train", "valid"}  # test is not read unless asked
    assert vocab.tokens[0] == UNK
    assert EOS in vocab.tokens
    train_types = set(read_ptb_tokens(TINY / "ptb.train.txt"))
    assert set(vocab.tokens) == train_types  # <unk> occurs in the fixture's train split
    assert data["valid"].oov == 0
    assert vocab.decode(data["valid"].ids)[:3] == ["the", "little", "kite"]
    assert data["train"].ids.dtype == np.int64


def test_oov_tokens_map_to_unk_and_are_counted(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" a b a \n")
    (tmp_path / "ptb.valid.txt").write_text(" a z <unk> y \n")
    vocab, data = load_ptb(tmp_path)
    v = data["valid"]
    assert v.oov == 2  # z and y; the literal <unk> is not an OOV
    assert vocab.decode(v.ids) == ["a", UNK, UNK, UNK, EOS]


def test_missing_split_and_directory_are_named(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" a \n")
    with pytest.raises(FileNotFoundError, match=r"ptb\.valid\.txt"):
        load_ptb(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ptb_path(tmp_path / "nope", "train")
    with pytest.raises(ValueError, match="split"):
        ptb_path(tmp_path, "dev")
    with pytest.raises(ValueError, match="include 'train'"):
        load_ptb(tmp_path, ("valid",))


def test_schedules_are_zaremba_epoch_schedules():
    small = [lr_factor(PRESETS["small"])(e) for e in range(7)]
    assert small == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]
    medium = [lr_factor(PRESETS["medium"])(e) for e in range(8)]
    np.testing.assert_allclose(medium, [1, 1, 1, 1, 1, 1, 1 / 1.2, 1 / 1.44])


def test_presets_build_the_papers_models():
    cfg = dict(PRESETS["small"], seed=0)
    m = build(cfg, 50)
    n_rnn = sum(p.data.size for n, p in m.named_parameters() if n.startswith("rnn."))
    assert n_rnn == 2 * (4 * 200 * (200 + 200) + 2 * 4 * 200)
    assert max(float(np.abs(p.data).max()) for p in m.parameters()) <= 0.1
    assert m.drop_in.p == 0.0
    assert build(dict(PRESETS["medium"], seed=0), 30).drop_in.p == 0.5


def _zaremba_update(m, ids, lr, clip):
    """Reference: loss summed over steps, mean over the batch; SGD with clipping."""
    logits, _ = m(ids[:-1])
    T = logits.shape[0]
    _, d = softmax_cross_entropy(logits, ids[1:])
    m.backward(d * T)  # ∂(Σ_t mean_b ℓ)/∂z = T · ∂(mean_tb ℓ)/∂z
    clip_grad_norm(m.parameters(), clip)
    SGD(m.parameters(), lr=lr).step()


@pytest.mark.parametrize("clip", [0.05, 100.0])  # clipped and not clipped
def test_loss_scale_conversion_gives_the_papers_update(clip):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 9, size=(6, 3))
    a = LanguageModel(9, 4, 4, 2, init_range=0.3, rng=1, dtype=np.float64)
    b = LanguageModel(9, 4, 4, 2, init_range=0.3, rng=1, dtype=np.float64)
    p0 = [p.data.copy() for p in a.parameters()]
    _zaremba_update(a, ids, lr=0.7, clip=clip)
    T = ids.shape[0] - 1
    logits, _ = b(ids[:-1])
    _, d = softmax_cross_entropy(logits, ids[1:])  # the trainer's mean loss
    b.backward(d)
    clip_grad_norm(b.parameters(), clip / T)  #                              (PTB-2)
    SGD(b.parameters(), lr=0.7 * T).step()
    # equal up to the 1e-6 guard in the clipping factor max_norm / (norm + 1e-6)
    for (name, pa), pb, q in zip(a.named_parameters(), b.parameters(), p0, strict=True):
        np.testing.assert_allclose(pb.data - q, pa.data - q, rtol=1e-5, atol=1e-12, err_msg=name)


@pytest.mark.parametrize(("T", "B"), [(4, 3), (1, 1)])
def test_lm_full_backward_finite_differences(T, B):
    """The preset architecture (2-layer LSTM, uniform init, nonzero biases), float64."""
    rng = np.random.default_rng(3)
    m = LanguageModel(11, 3, 3, 2, init_range=0.5, rng=2, dtype=np.float64)
    ids = rng.integers(0, 11, size=(T, B))
    h0 = rng.normal(size=(2, B, 3))
    state = (h0, rng.normal(size=h0.shape))
    report = gradcheck_module(m, (ids, state), backward=lambda mod, d: (None, mod.backward(*d)))
    assert report.ok(1e-6), str(report)
    assert {e.name for e in report} >= {"embedding.weight", "decoder.weight", "rnn.bias_hh_l1"}
