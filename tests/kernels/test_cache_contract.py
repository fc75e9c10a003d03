"""The kernels keep the ops' cache contract, and accept the same odd inputs."""

from __future__ import annotations

import numpy as np
import pytest

CELL_NAMES = ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_before"]


def float32_inputs(kcheck, rng, name, T=5, B=3, I=4, H=10):
    cell = kcheck.CELLS[name]
    inputs = kcheck.make_inputs(rng, cell, T, B, I, H)
    return cell, {k: None if v is None else v.astype(np.float32) for k, v in inputs.items()}


@pytest.mark.parametrize("name", CELL_NAMES)
def test_cache_is_read_only_and_backward_is_repeatable_and_fresh(kcheck, rng, name):
    cell, inputs = float32_inputs(kcheck, rng, name)
    lengths = np.array([5, 1, 3])
    *outputs, cache = cell.forward(**inputs, lengths=lengths, **cell.options)
    given = [v for v in inputs.values() if v is not None]
    for field, v in cache._asdict().items():
        if isinstance(v, np.ndarray) and not any(v is g for g in given):
            assert not v.flags.writeable, f"cache.{field} is writeable"
    ws = [rng.normal(size=o.shape).astype(np.float32) for o in outputs]
    before = [w.copy() for w in ws]
    first = cell.backward(*ws, cache)
    cell.forward(**inputs, **cell.options)  # another call in between reuses the workspace
    second = cell.backward(*ws, cache)
    for w, w0 in zip(ws, before, strict=True):
        np.testing.assert_array_equal(w, w0)
    arrays = []
    for field, a in first._asdict().items():
        b = getattr(second, field)
        if a is None:
            assert b is None
            continue
        np.testing.assert_array_equal(a, b, err_msg=field)
        arrays.append((field, a))
    arrays += [(f"cache.{k}", v) for k, v in cache._asdict().items() if isinstance(v, np.ndarray)]
    arrays += [(f"output {k}", o) for k, o in enumerate(outputs)]
    for k, (name_a, a) in enumerate(arrays):
        for name_b, b in arrays[k + 1 :]:
            assert not np.shares_memory(a, b), f"{name_a} shares memory with {name_b}"


@pytest.mark.parametrize("name", CELL_NAMES)
def test_inference_path_gives_the_training_outputs_and_no_cache(kcheck, rng, name):
    cell, inputs = float32_inputs(kcheck, rng, name, T=6, B=4, H=9)
    lengths = np.array([6, 2, 1, 5])
    *train, cache = cell.forward(**inputs, lengths=lengths, **cell.options)
    *infer, none = cell.forward(**inputs, lengths=lengths, need_cache=False, **cell.options)
    assert cache is not None
    assert none is None
    for a, b in zip(train, infer, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_non_contiguous_inputs_give_the_contiguous_results(kcheck, rng, name):
    cell, inputs = float32_inputs(kcheck, rng, name)
    odd = dict(inputs)
    odd["x"] = np.asfortranarray(inputs["x"])
    odd["W_hh"] = np.asfortranarray(inputs["W_hh"])
    odd["W_ih"] = inputs["W_ih"].T.copy().T  # a transposed view
    *ref, ref_cache = cell.forward(**inputs, **cell.options)
    *got, got_cache = cell.forward(**odd, **cell.options)
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(a, b)
    ws = [np.asfortranarray(rng.normal(size=o.shape).astype(np.float32)) for o in ref]
    for field, a in cell.backward(*ws, ref_cache)._asdict().items():
        b = getattr(cell.backward(*ws, got_cache), field)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=field)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_bad_input_raises_the_ops_errors(kcheck, rng, name):
    cell, inputs = float32_inputs(kcheck, rng, name)
    with pytest.raises(TypeError, match="`W_ih` must have dtype float32 like the input"):
        cell.forward(**{**inputs, "W_ih": inputs["W_ih"].astype(np.float64)}, **cell.options)
    with pytest.raises(ValueError, match=r"`lengths` must be in \[1, T="):
        cell.forward(**inputs, lengths=np.array([6, 1, 1]), **cell.options)
    *outputs, cache = cell.forward(**inputs, **cell.options)
    bad = [np.ones((*o.shape[:-1], o.shape[-1] + 1), np.float32) for o in outputs]
    with pytest.raises(ValueError, match="`dy` must have shape"):
        cell.backward(*bad, cache)
