"""The packed-panel GEMM and the rational activations, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from rnnkit.kernels import activations, microkernel
from rnnkit.kernels.microkernel import KC, NR


@njit(cache=True)
def _run(A, Wp, C):
    microkernel.packed_gemm(
        A.ctypes.data, A.shape[1], A.shape[0], A.shape[1], Wp.ctypes.data,
        Wp.shape[1] * Wp.shape[2], Wp.shape[0], C.ctypes.data, C.shape[1],
    )  # fmt: skip


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize(
    ("M", "K", "N"),
    [(1, 1, 1), (1, 64, 256), (3, 7, 30), (5, 2 * KC + 3, 2 * NR + 1), (13, KC, NR), (17, 40, 70)],
)
def test_packed_gemm_equals_numpy(rng, M, K, N, transpose):
    A = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((K, N)).astype(np.float32)
    n_cols = -(-N // NR) * NR
    cols = np.arange(n_cols)
    cols[cols >= N] = -1
    Wp = np.full((n_cols // NR, K, NR), np.nan, np.float32)
    src = np.ascontiguousarray(W.T) if transpose else W
    microkernel.pack_panels(src, np.arange(K), cols, transpose, Wp)
    assert not np.isnan(Wp).any()
    assert (Wp.transpose(1, 0, 2).reshape(K, n_cols)[:, N:] == 0).all()  # zero padding
    C = np.full((M, n_cols), np.nan, np.float32)
    _run(A, Wp, C)
    want = A.astype(np.float64) @ W.astype(np.float64)
    np.testing.assert_allclose(C[:, :N], want, rtol=1e-5, atol=1e-5 * np.sqrt(K))
    assert (C[:, N:] == 0).all()


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("packer", ["pack_panels", "pack_panels_serial"])
def test_pack_panels_gathers_rows_and_columns_with_padding(rng, packer, transpose):
    """``out[p, k, q] = S[rows[k], cols[p·NR + q]]`` (S = W or Wᵀ), zero where an index is -1."""
    W = rng.standard_normal((37, 45)).astype(np.float32)
    S = W.T if transpose else W
    rows = rng.permutation(S.shape[0])[:29]
    rows[[3, 17]] = -1
    cols = np.concatenate([rng.permutation(S.shape[1])[:30], np.full(2 * NR - 30, -1)])
    cols[5] = -1
    out = np.full((2, len(rows), NR), np.nan, np.float32)
    getattr(microkernel, packer)(W, rows, cols, transpose, out)
    want = np.where((rows[:, None] < 0) | (cols[None, :] < 0), 0.0, S[rows][:, cols])
    np.testing.assert_array_equal(out.transpose(1, 0, 2).reshape(len(rows), 2 * NR), want)


@njit(cache=True)
def _apply(x, out_t, out_s):
    for j in range(x.shape[0]):
        out_t[j] = activations.tanh(x[j])
        out_s[j] = activations.sigmoid(x[j])


def test_rational_tanh_and_sigmoid_are_float32_accurate():
    x = np.concatenate([np.linspace(-12, 12, 20001), [0.0, -0.0, 1e-30, 7.9, 7.91, 50, -50]])
    t, s = np.empty(x.size, np.float32), np.empty(x.size, np.float32)
    _apply(x.astype(np.float32), t, s)
    x32 = x.astype(np.float32).astype(np.float64)
    assert np.abs(t - np.tanh(x32)).max() < 3e-7
    assert np.abs(s - 1 / (1 + np.exp(-x32))).max() < 2e-7
    assert np.abs(t).max() <= 1.0
    assert ((s >= 0) & (s <= 1)).all()
