"""The LSTM's one-chunk path: a whole forward or backward in one compiled call.

A call whose steps are too small to split (one chunk) on the microkernel runs the input
projection, the packing, the time loop and the products after it in one compiled
function (``rnnkit.kernels.lstm_serial``). Its results are compared
with the reference ops by ``test_ops_equal.py`` (the small hypothesis shapes take this
path); here: that it is the path taken, that it checks ``x`` itself, and that it leaves
OpenBLAS's thread count as it found it.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit import kernels
from rnnkit.kernels import blas, driver, lstm_loops, lstm_serial, microkernel
from rnnkit.kernels.selection import backend

pytestmark = pytest.mark.skipif(
    not microkernel.AVAILABLE, reason="no microkernel on this CPU: the one-chunk path is off"
)

T, B, I, H = 5, 1, 3, 7


def _inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    f32 = np.float32
    return {
        "x": rng.standard_normal((T, B, I)).astype(f32),
        "W_ih": rng.standard_normal((4 * H, I)).astype(f32) * f32(0.3),
        "W_hh": rng.standard_normal((4 * H, H)).astype(f32) * f32(0.3),
        "b_ih": rng.standard_normal(4 * H).astype(f32),
        "b_hh": rng.standard_normal(4 * H).astype(f32),
    }


def test_small_calls_take_the_one_chunk_path(monkeypatch, rng):
    assert driver.setup(backend(), B, H, 4, T).serial

    def team_loop(*args, **kwargs):
        raise AssertionError("the team loop ran for a one-chunk call")

    monkeypatch.setattr(lstm_loops, "forward", team_loop)
    monkeypatch.setattr(lstm_loops, "backward", team_loop)
    y, h_n, _c_n, cache = kernels.lstm_forward(**_inputs(rng))
    g = kernels.lstm_backward(np.ones_like(y), None, None, cache)
    assert np.isfinite(g.dx).all()
    assert np.abs(g.dW_hh).sum() > 0
    np.testing.assert_array_equal(y[-1], h_n)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0, 0), (T - 1, 0, I - 1), (2, 0, 1)])
def test_non_finite_x_is_refused_with_its_index(rng, bad, where):
    inputs = _inputs(rng)
    inputs["x"][where] = bad
    with pytest.raises(ValueError, match=rf"`x` must be finite; got .* at index \({where[0]}, "):
        kernels.lstm_forward(**inputs)


def test_the_largest_finite_floats_pass(rng):
    inputs = _inputs(rng)
    big = np.finfo(np.float32).max
    inputs["x"][0, 0, :] = [big, -big, np.finfo(np.float32).tiny]
    kernels.lstm_forward(**inputs)  # no error: only NaN and infinity in x are refused


def test_all_finite_reads_every_element():
    x = np.zeros((3, 2, 5), np.float32)
    assert lstm_serial.all_finite(x)
    for i in range(x.size):
        y = x.copy()
        y.reshape(-1)[i] = np.nan
        assert not lstm_serial.all_finite(y)


def test_openblas_threads_are_restored(rng):
    before = blas.blas_threads()
    try:
        blas.set_blas_threads(2)
        y, _, _, cache = kernels.lstm_forward(**_inputs(rng))
        assert blas.blas_threads() == 2
        kernels.lstm_backward(np.ones_like(y), None, None, cache)
        assert blas.blas_threads() == 2
    finally:
        blas.set_blas_threads(before)
