"""Weight drop (DropConnect on W_hh), equations (WD-1) and (WD-2), on RNN, LSTM and GRU."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from rnnkit.models import LanguageModel
from rnnkit.nn.recurrent import GRU, LSTM, RNN

CTORS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
T, B, I, H, L = 5, 3, 4, 6, 2


def _layer(kind, weight_drop, bidirectional=False, dtype=np.float64, seed=0):
    return CTORS[kind](
        I,
        H,
        num_layers=L,
        bidirectional=bidirectional,
        rng=seed,
        dtype=dtype,
        weight_drop=weight_drop,
    )


def _hh_names(layer):
    return [n for n, _ in layer.named_parameters() if n.startswith("weight_hh")]


def _masks(gen, layer, p):
    """The scaled masks (WD-1) that ``layer`` draws from ``gen``, in its own order."""
    out = {}
    for name in _hh_names(layer):  # named in layer, then direction, order
        w = getattr(layer, name).data
        out[name] = (gen.random(w.shape) >= p).astype(w.dtype) / (1.0 - p)
    return out


def _loss_and_grads(layer, x, w_out):
    layer.zero_grad()
    y, _ = layer(x)
    layer.backward(w_out)
    return float(np.sum(y * w_out)), {n: p.grad.copy() for n, p in layer.named_parameters()}


@pytest.mark.parametrize("kind", sorted(CTORS))
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])  # reference ops, fused kernels
def test_training_forward_and_backward_equal_the_layer_run_with_masked_weights(
    kind, bidirectional, dtype
):
    p = 0.4
    rs = np.random.default_rng(1)
    x = rs.normal(size=(T, B, I)).astype(dtype)
    dropped = _layer(kind, p, bidirectional, dtype)
    dropped.rng = np.random.default_rng(7)
    masks = _masks(np.random.default_rng(7), dropped, p)
    plain = _layer(kind, 0.0, bidirectional, dtype)  # the same parameters (same seed)
    for name, m in masks.items():
        getattr(plain, name).data = getattr(plain, name).data * m
    w_out = rs.normal(size=(T, B, H * (2 if bidirectional else 1))).astype(dtype)
    loss_d, grads_d = _loss_and_grads(dropped, x, w_out)
    loss_p, grads_p = _loss_and_grads(plain, x, w_out)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert loss_d == pytest.approx(loss_p, rel=tol)
    assert 0.2 < np.mean([np.mean(m == 0) for m in masks.values()]) < 0.6
    for name, g in grads_p.items():
        want = g * masks[name] if name in masks else g  # (WD-2)
        np.testing.assert_allclose(grads_d[name], want, rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", sorted(CTORS))
def test_weight_drop_gradient_matches_central_differences_with_the_mask_held(kind):
    p = 0.3
    rs = np.random.default_rng(2)
    x = rs.normal(size=(T, B, I))
    w_out = rs.normal(size=(T, B, H))
    layer = _layer(kind, p)
    start = np.random.default_rng(11)

    def run():
        layer.rng = copy.deepcopy(start)  # the same mask on every call
        return _loss_and_grads(layer, x, w_out)

    _, grads = run()
    w = layer.weight_hh_l1.data
    eps = 1e-6
    for idx in [(0, 0), (H % w.shape[0], 1), (2, H - 1), (w.shape[0] - 1, 3)]:
        old = w[idx]
        w[idx] = old + eps
        up, _ = run()
        w[idx] = old - eps
        down, _ = run()
        w[idx] = old
        assert grads["weight_hh_l1"][idx] == pytest.approx((up - down) / (2 * eps), abs=1e-7)


@pytest.mark.parametrize("kind", sorted(CTORS))
def test_eval_mode_and_zero_rate_leave_the_layer_unchanged(kind):
    x = np.random.default_rng(3).normal(size=(T, B, I)).astype(np.float32)
    plain = _layer(kind, 0.0, dtype=np.float32)
    dropped = _layer(kind, 0.5, dtype=np.float32)
    dropped.eval()
    plain.eval()
    np.testing.assert_array_equal(dropped(x)[0], plain(x)[0])
    plain.train()
    zero = _layer(kind, 0.0, dtype=np.float32)
    state = copy.deepcopy(zero.rng.bit_generator.state)
    np.testing.assert_array_equal(zero(x)[0], plain(x)[0])
    assert zero.rng.bit_generator.state == state  # no draws at rate 0


def test_each_forward_call_draws_a_new_mask():
    layer = _layer("lstm", 0.5)
    x = np.random.default_rng(4).normal(size=(T, B, I))
    y1, _ = layer(x)
    y2, _ = layer(x)
    layer.backward(None)
    layer.backward(None)
    assert not np.allclose(y1, y2)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_bad_rate_is_refused(bad):
    with pytest.raises(ValueError, match="weight_drop"):
        LSTM(I, H, weight_drop=bad)


def test_language_model_carries_weight_drop_in_its_config():
    m = LanguageModel(10, 4, 6, num_layers=2, weight_drop=0.25, rng=0)
    assert m.config["weight_drop"] == 0.25
    assert m.rnn.weight_drop == 0.25
    assert LanguageModel(**m.config).rnn.weight_drop == 0.25
