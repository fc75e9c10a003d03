"""The kernels with a per-step GEMM this CPU would not choose, against the reference ops.

Run by ``test_foreign_tile.py`` in a fresh process with its own Numba cache directory
(code compiled here must never reach the user's cache)::

    python -m tests.kernels.foreign_tile avx512|none

``avx512``: the 16-lane 8×32 register tile of AVX-512 CPUs. Numba still compiles for this
CPU (its code generator is created before the tile is chosen), so LLVM splits each
16-lane operation into two of the host's width; the results are those an AVX-512 machine
computes, as the tile code is generic in its width. Every cell, one and two threads,
ragged batches, row counts that use every tile height. ``none``: ``NUMBA_ENABLE_AVX=0``
(set by the caller), so Numba compiles without AVX, the microkernel is off and each step
calls BLAS, as on a CPU without AVX2 (the LSTM and GRU; the BLAS-per-step loops
themselves are tested in the main suite, forced by ``RNNKIT_STEP_GEMM``). Exits non-zero
on the first mismatch.
"""

from __future__ import annotations

import os
import sys

import numba
import numpy as np


def _choose_avx512_tile() -> None:
    """Import the microkernel as on an AVX-512 CPU, while Numba compiles for this one."""
    import llvmlite.binding as llvm
    from numba.core.registry import cpu_target

    compiled_for = cpu_target.target_context.codegen().magic_tuple()[2]
    host = llvm.get_host_cpu_features

    def with_avx512() -> dict[str, bool]:
        return {**host(), "avx512f": True}

    llvm.get_host_cpu_features = with_avx512
    try:
        from rnnkit.kernels import microkernel
    finally:
        llvm.get_host_cpu_features = host
    assert (microkernel.VL, microkernel.MR, microkernel.NR) == (16, 8, 32), microkernel.DESCRIPTION
    assert cpu_target.target_context.codegen().magic_tuple()[2] == compiled_for


def main(mode: str) -> None:
    if mode == "avx512":
        _choose_avx512_tile()
    from rnnkit import kernels
    from rnnkit.kernels import driver, microkernel, plan
    from tests.kernels import conftest as kc

    if mode == "none":
        assert not microkernel.AVAILABLE, microkernel.DESCRIPTION
    want = "packed microkernel" if mode == "avx512" else "BLAS"
    assert kernels.backend().step_gemm.startswith(want), kernels.backend()
    plan.FUSED_INPUT_MIN_ROWS = 1  # the LSTM's projection inside the steps, where it can be
    cases = [(3, 1, 4, 5), (4, 9, 3, 37), (2, 13, 5, 20), (3, 6, 2, 9)]  # T, B, I, H
    names = list(kc.CELLS) if mode == "avx512" else ["lstm", "gru"]
    if mode == "none":
        cases = cases[:2]
    for threads in (1, 2):
        if threads == 2:  # split every step over two chunks, however small
            plan.PARALLEL_STEP_FLOPS = plan.PARALLEL_PACK_SIZE = driver.PARALLEL_GEMM_FLOPS = 0
        os.environ["RNNKIT_NUM_THREADS"] = str(threads)
        assert kernels.backend().threads == min(threads, numba.config.NUMBA_NUM_THREADS)
        for name in names:
            cell = kc.CELLS[name]
            for n, (T, B, I, H) in enumerate(cases):
                rng = np.random.default_rng(n)
                inputs = kc.make_inputs(rng, cell, T, B, I, H)
                lengths = kc.ragged_lengths(rng, T, B) if n % 2 else None
                outs = cell.ref_forward(**inputs, lengths=lengths, **cell.options)[:-1]
                ws = [rng.normal(size=o.shape) for o in outs]
                kc.compare(
                    kc.run(cell, inputs, lengths, ws, "ref64"),
                    kc.run(cell, inputs, lengths, ws, "ref32"),
                    kc.run(cell, inputs, lengths, ws, "kernel"),
                )
                sys.stdout.write(f"{mode} {threads} {name} {(T, B, I, H)} equal\n")


if __name__ == "__main__":
    main(sys.argv[1])
