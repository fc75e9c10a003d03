"""The kernels as other machines run them, against the reference ops.

Run by ``test_other_machines.py``, each mode in a fresh process (``avx512`` and ``none``
with their own Numba cache directory: code compiled there must never reach the shared
cache)::

    python -m tests.kernels.other_machines avx512|none|threads

``avx512``: the 16-lane 8×32 register tile of AVX-512 CPUs. Numba still compiles for this
CPU (its code generator is created before the tile is chosen), so LLVM splits each
16-lane operation into two of the host's width; the results are those an AVX-512 machine
computes, as the tile code is generic in its width. Every cell, one and two threads,
ragged batches, row counts that use every tile height. ``none``: ``NUMBA_ENABLE_AVX=0``
(set by the caller), so Numba compiles without AVX, the microkernel is off and each step
calls BLAS, as on a CPU without AVX2 (the LSTM and GRU; the BLAS-per-step loops
themselves are tested in the main suite, forced by ``RNNKIT_STEP_GEMM``). ``threads``:
a team of 3 and of 5 threads, as on a machine with more cores than this one
(``NUMBA_NUM_THREADS=5``, set by the caller), every step split into that many chunks.
Exits non-zero on the first mismatch.

Compiling from an empty cache takes a minute or more, and mostly one core, so the suite
starts the ``avx512`` and ``none`` processes as soon as it has collected their tests
and waits for them last (``conftest.py``), so that they compile beside the other tests.
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
    want = "BLAS" if mode == "none" else "packed microkernel"
    assert kernels.backend().step_gemm.startswith(want), kernels.backend()
    plan.FUSED_INPUT_MIN_ROWS = 1  # the LSTM's projection inside the steps, where it can be
    cases = [(3, 1, 4, 5), (4, 9, 3, 37), (2, 13, 5, 20), (3, 6, 2, 9)]  # T, B, I, H
    names = ["lstm", "gru"] if mode == "none" else list(kc.CELLS)
    teams = (3, 5) if mode == "threads" else (1, 2)
    if mode == "none":
        cases = cases[:2]
    elif mode == "threads":  # five chunks, on multiples of the vector width or not
        cases = [(3, 6, 2, 9), (4, 9, 3, 37), (2, 3, 5, 5 * microkernel.VL + 3)]
    for threads in teams:
        if threads > 1:  # split every step over all threads, however small
            plan.PARALLEL_STEP_FLOPS = plan.PARALLEL_PACK_SIZE = driver.PARALLEL_GEMM_FLOPS = 0
        os.environ["RNNKIT_NUM_THREADS"] = str(threads)
        assert kernels.backend().threads == min(threads, numba.config.NUMBA_NUM_THREADS)
        if mode == "threads":
            chunks = driver.setup(kernels.backend(), 3, 37, 4, 2).plan.P
            assert chunks == threads, chunks
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
