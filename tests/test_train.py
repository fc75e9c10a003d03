"""Trainer: TBPTT(k1, k2) gradients and state carry, and bit-for-bit resume from a checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.data import StreamBatcher
from rnnkit.io.run import load_run, restore_run, save_run
from rnnkit.models import LanguageModel
from rnnkit.ops.losses import softmax_cross_entropy
from rnnkit.optim import SGD, Adam
from rnnkit.train import Trainer, evaluate_lm

V = 6


def corpus(n=200, seed=0):
    return np.random.default_rng(seed).integers(0, V, size=n)


def make_model(cell="lstm", dropout=0.0, dtype=np.float64):
    return LanguageModel(V, 3, 4, 2, cell, dropout=dropout, rng=0, dtype=dtype)


def reference_state(model, stream, upto):
    """State after running the model from zero over stream[:upto] (one (T, B) array)."""
    if upto == 0:
        return model.initial_state(stream.shape[1])
    model.eval()
    _, state = model(stream[:upto])
    model.train()
    return state


@pytest.mark.parametrize(("k1", "k2"), [(3, 3), (3, 5), (2, 7)])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tbptt_gradient_and_state_carry(k1, k2, cell):
    model = make_model(cell)
    batcher = StreamBatcher(corpus(), batch_size=2, bptt=k1)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.0), batcher, k2=k2, clip=None)
    ref = make_model(cell)  # same weights (lr = 0 keeps them fixed)
    stream = batcher.data
    for w in list(batcher)[:6]:
        trainer.train_window(w.x, w.y, w.reset)
        t_end = w.index * k1 + w.x.shape[0]  # tokens consumed so far
        start = max(0, t_end - k2)  # (TBPTT-2): the window of k2 steps
        ref.zero_grad()
        logits, _ = ref(stream[start:t_end], reference_state(ref, stream, start))
        n_new = w.x.shape[0]
        _, d = softmax_cross_entropy(logits[-n_new:], w.y)  # (TBPTT-1): newest k1 only
        dl = np.zeros_like(logits)
        dl[-n_new:] = d
        ref.backward(dl)
        for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
            np.testing.assert_allclose(p.grad, q.grad, rtol=1e-10, atol=1e-13, err_msg=name)
        # the carried state is the continuous forward state
        want = reference_state(ref, stream, t_end)
        for a, b in zip(np.atleast_1d(trainer.state), np.atleast_1d(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_state_resets_where_streams_restart():
    model = make_model()
    batcher = StreamBatcher(corpus(40), batch_size=2, bptt=5)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.0), batcher, clip=None)
    windows = list(batcher)
    for w in windows:
        trainer.train_window(w.x, w.y, w.reset)
    first = windows[0]
    trainer.train_window(first.x, first.y, True)  # a new epoch: state from zero
    want = reference_state(make_model(), batcher.data, first.x.shape[0])
    np.testing.assert_allclose(trainer.state[0], want[0], rtol=1e-12)


def run(tmp_path, steps, resume_from=None, k2=5):
    model = make_model("lstm", dropout=0.3, dtype=np.float32)
    opt = Adam(model.parameters(), lr=0.01)
    batcher = StreamBatcher(corpus(300), batch_size=3, bptt=4)
    trainer = Trainer(model, opt, batcher, k2=k2, valid_ids=corpus(60, seed=1), eval_every=3)
    if resume_from is not None:
        restore_run(load_run(resume_from), trainer)
    trainer.fit(epochs=10, max_steps=steps)
    return trainer


def test_resume_is_bit_for_bit(tmp_path):
    straight = run(tmp_path, 14)
    first = run(tmp_path, 7)
    save_run(tmp_path / "ck", first, {"note": "test"}, {"chars": []})
    resumed = run(tmp_path, 14, resume_from=tmp_path / "ck")
    assert resumed.step == straight.step == 14
    for (name, p), q in zip(
        resumed.model.named_parameters(), straight.model.parameters(), strict=True
    ):
        assert np.array_equal(p.data, q.data), name
    assert resumed.best_valid == straight.best_valid
    for a, b in zip(resumed.optimizer.state, straight.optimizer.state, strict=True):
        for k in a:
            assert np.array_equal(a[k], b[k])


def test_evaluate_lm_matches_mean_cross_entropy():
    model = make_model()
    ids = corpus(50)
    loss = evaluate_lm(model, ids, batch_size=1, bptt=7)
    model.eval()
    logits, _ = model(ids[:-1, None])
    want, _ = softmax_cross_entropy(logits, ids[1:, None])
    assert loss == pytest.approx(want, rel=1e-12)


def test_evaluate_lm_of_an_ensemble_is_the_mean_of_the_members_probabilities():
    models = [make_model("lstm"), make_model("gru", dtype=np.float32)]
    ids = corpus(60)
    loss = evaluate_lm(models, ids, batch_size=2, bptt=5)
    assert all(m.training for m in models)  # modes restored
    L = len(ids) // 2  # the two streams of the batcher, L tokens each (STREAM-1)
    want = []
    for b in range(2):
        seg = ids[b * L : (b + 1) * L]
        probs = []
        for m in models:
            m.eval()
            logits, _ = m(seg[:-1, None])
            z = logits[:, 0].astype(np.float64)
            p = np.exp(z - z.max(axis=1, keepdims=True))
            probs.append(p / p.sum(axis=1, keepdims=True))
        mean = np.mean(probs, axis=0)  # (ENS-1)
        want.append(-np.log(mean[np.arange(L - 1), seg[1:]]))
    assert loss == pytest.approx(np.concatenate(want).mean(), rel=1e-5)
    single = evaluate_lm(models[0], ids, batch_size=2, bptt=5)
    assert evaluate_lm([models[0], models[0]], ids, 2, 5) == pytest.approx(single, rel=1e-12)
    other = LanguageModel(V + 1, 3, 4, rng=0)
    with pytest.raises(ValueError, match="share one vocabulary"):
        evaluate_lm([models[0], other], ids, 2, 5)


def test_k2_below_k1_is_refused():
    model = make_model()
    with pytest.raises(ValueError, match="k2 >= k1"):
        Trainer(model, SGD(model.parameters(), lr=0.1), StreamBatcher(corpus(), 2, 5), k2=3)


def test_early_stopping_and_metrics_log(tmp_path):
    model = make_model()
    batcher = StreamBatcher(corpus(200), 2, 5)
    log = tmp_path / "m.jsonl"
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=50.0),
        batcher,
        valid_ids=corpus(40, 3),
        eval_every=1,
        patience=2,
        clip=None,
        metrics_path=log,
    )
    seen = []
    trainer.fit(epochs=5, callback=seen.append)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [r for r in records if "train_loss" in r]
    assert {"step", "epoch", "train_loss", "lr", "tokens_per_s", "grad_norm"} <= set(steps[0])
    assert any("valid_loss" in r for r in records)
    assert seen[-1].kind == "done"
    # lr = 0: the validation loss never improves after the first evaluation
    assert trainer.stopped_early
    assert trainer.step == 3
    assert [p.kind for p in seen].count("eval") == 3
