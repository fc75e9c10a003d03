"""Register-blocked GEMM for the per-step recurrent product, on weights packed once per call.

The recurrent product of one time step, ``C (M×N) = A (M×K) @ W (K×N)`` with ``M = B``
rows, is small in ``M`` and large in ``K·N``. A BLAS call re-packs all of ``W`` on every
step; here ``W`` is packed once per forward (or backward) call into column panels of
``NR`` columns, ``Wp[p, k, :] = W[k, p·NR : (p+1)·NR]`` (zero padded), and a register tile
of ``MR×NR`` accumulators walks ``k`` with one broadcast of ``A[m, k]`` and ``NV`` vector
loads of the panel row per step (fused multiply-adds, LLVM vector IR emitted by a Numba
``@intrinsic``).

The vector width comes from the CPU features Numba compiles for (the host's, or
``NUMBA_CPU_FEATURES`` when set; ``NUMBA_ENABLE_AVX=0`` turns AVX off): AVX-512 gives 16
lanes and an 8×32 tile (16 of the 32 vector registers), AVX2 with FMA 8 lanes and a 4×24
tile (12 of 16). Other CPUs do not use the microkernel (:data:`AVAILABLE` is False) and the
kernels call BLAS per step instead. Those features are part of the key of Numba's cache,
so code compiled for one tile is never loaded where another is chosen, even from a cache
shared between machines.
"""

from __future__ import annotations

from collections.abc import Mapping

import llvmlite.binding as llvm
import numba
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "AVAILABLE",
    "DESCRIPTION",
    "MR",
    "NR",
    "compile_features",
    "pack_panels",
    "pack_panels_serial",
    "packed_gemm",
    "tile_shape",
]

NJ = {"cache": True, "fastmath": True, "error_model": "numpy", "nogil": True}


def compile_features() -> dict[str, bool]:
    """The CPU features Numba compiles for, as Numba itself chooses them.

    ``NUMBA_CPU_FEATURES`` (``"+avx2,-avx512f,…"``) when set, else the host's, with every
    ``avx*`` feature off under ``NUMBA_ENABLE_AVX=0``.
    """
    if numba.config.CPU_FEATURES is not None:
        listed = (f.strip() for f in numba.config.CPU_FEATURES.split(","))
        return {f[1:]: f[0] == "+" for f in listed if f[:1] in ("+", "-")}
    features = dict(llvm.get_host_cpu_features())
    if not numba.config.ENABLE_AVX:
        features = {k: v and not k.startswith("avx") for k, v in features.items()}
    return features


def tile_shape(features: Mapping[str, bool]) -> tuple[int, int, int, bool]:
    """(vector lanes VL, tile rows MR, vectors per tile row NV, available) for ``features``."""
    if features.get("avx512f", False):
        return 16, 8, 2, True
    if features.get("avx2", False) and features.get("fma", False):
        return 8, 4, 3, True
    return 8, 4, 3, False


VL, MR, NV, AVAILABLE = tile_shape(compile_features())
NR = VL * NV  # columns per packed panel
KC = 4096 // NR  # rows of a panel per block: 16 KiB of weights, held in L1 across row tiles
DESCRIPTION = (
    f"{MR}x{NR} register tile, {VL}-lane vectors"
    if AVAILABLE
    else "off: Numba compiles for a CPU without AVX2 and FMA"
)


def _make_tile(mr: int):
    """An intrinsic computing one ``mr × NR`` tile ``C (+)= A @ Wp`` over ``K``.

    With few rows the chain of fused multiply-adds into each accumulator is latency-bound,
    so small tiles unroll ``k`` over independent accumulator sets (summed at the end) to keep
    about twelve chains in flight.
    """
    ku = max(1, 12 // (mr * NV))

    @intrinsic
    def tile(typingctx, a, lda, w, c, ldc, K, accumulate):
        sig = types.void(
            types.uintp, types.intp, types.uintp, types.uintp, types.intp, types.intp, types.boolean
        )

        def codegen(context, builder, signature, args):
            a, lda, w, c, ldc, K, accumulate = args
            f32 = ir.FloatType()
            vec = ir.VectorType(f32, VL)
            i64, i32 = ir.IntType(64), ir.IntType(32)
            A = builder.inttoptr(a, f32.as_pointer())
            W = builder.inttoptr(w, f32.as_pointer())
            C = builder.inttoptr(c, f32.as_pointer())
            fma_type = ir.FunctionType(vec, [vec, vec, vec])
            fma = cgutils.get_or_insert_function(builder.module, fma_type, f"llvm.fmuladd.v{VL}f32")
            zero = ir.Constant(vec, [0.0] * VL)
            acc = [
                [[cgutils.alloca_once_value(builder, zero) for _ in range(NV)] for _ in range(mr)]
                for _ in range(ku)
            ]
            undef = ir.Constant(vec, ir.Undefined)
            splat = ir.Constant(ir.VectorType(i32, VL), [0] * VL)
            rows = [builder.gep(A, [builder.mul(ir.Constant(i64, m), lda)]) for m in range(mr)]

            def update(k, sets):  # sets[m][v] += A[m, k] * W[k, v·VL : (v+1)·VL]
                w_row = builder.gep(W, [builder.mul(k, ir.Constant(i64, NR))])
                w_vecs = []
                for v in range(NV):
                    ptr = builder.gep(w_row, [ir.Constant(i64, v * VL)])
                    w_vecs.append(builder.load(builder.bitcast(ptr, vec.as_pointer()), align=4))
                for m in range(mr):
                    a_mk = builder.load(builder.gep(rows[m], [k]))
                    a_vec = builder.shuffle_vector(
                        builder.insert_element(undef, a_mk, ir.Constant(i32, 0)), undef, splat
                    )
                    for v in range(NV):
                        total = builder.call(fma, [a_vec, w_vecs[v], builder.load(sets[m][v])])
                        builder.store(total, sets[m][v])

            k_main = builder.mul(builder.sdiv(K, ir.Constant(i64, ku)), ir.Constant(i64, ku))
            with cgutils.for_range_slice(
                builder, ir.Constant(i64, 0), k_main, ir.Constant(i64, ku)
            ) as (k, _):
                for u in range(ku):
                    update(builder.add(k, ir.Constant(i64, u)), acc[u])
            with cgutils.for_range_slice(builder, k_main, K, ir.Constant(i64, 1)) as (k, _):
                update(k, acc[0])
            for m in range(mr):
                c_row = builder.gep(C, [builder.mul(ir.Constant(i64, m), ldc)])
                for v in range(NV):
                    total = builder.load(acc[0][m][v])
                    for u in range(1, ku):
                        total = builder.fadd(total, builder.load(acc[u][m][v]))
                    ptr = builder.bitcast(
                        builder.gep(c_row, [ir.Constant(i64, v * VL)]), vec.as_pointer()
                    )
                    old = builder.load(ptr, align=4)  # C is valid memory either way
                    total = builder.select(accumulate, builder.fadd(total, old), total)
                    builder.store(total, ptr, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_HALF = MR // 2
_tile_full, _tile_half, _tile_one = _make_tile(MR), _make_tile(_HALF), _make_tile(1)


@njit(**NJ)
def packed_gemm(a, lda, M, K, w, panel_stride, n_panels, c, ldc, accumulate=False):
    """``C[:, :n_panels·NR] (+)= A @ W`` with ``W`` packed in panels; raw float32 pointers.

    ``a`` points at ``A`` (M×K, row stride ``lda`` elements), ``w`` at the first of
    ``n_panels`` panels of ``K×NR`` floats spaced ``panel_stride`` elements apart, ``c`` at
    ``C`` (row stride ``ldc``). Panels are the outer loop, then blocks of ``KC`` rows of
    the panel (which stay in the L1 cache), then tiles of rows of ``A``: each block of
    weights is read from memory once and reused by every row tile. ``accumulate`` adds
    the product to ``C`` instead of overwriting it.
    """
    for p in range(n_panels):
        wp = w + p * panel_stride * 4
        cp = c + p * NR * 4
        for k0 in range(0, K, KC):
            kc = min(KC, K - k0)
            more = accumulate or k0 > 0
            wk = wp + k0 * NR * 4
            m = 0
            while m < M:
                left = M - m
                am, cm = a + (m * lda + k0) * 4, cp + m * ldc * 4
                if left >= MR:
                    _tile_full(am, lda, wk, cm, ldc, kc, more)
                    m += MR
                elif left >= _HALF:
                    _tile_half(am, lda, wk, cm, ldc, kc, more)
                    m += _HALF
                else:
                    _tile_one(am, lda, wk, cm, ldc, kc, more)
                    m += 1


@njit(inline="always", **NJ)
def _pack_panel(W, rows, cols, transpose, out, p):
    # Each order reads W along its rows: by column of the panel when transposed, else by
    # row of the panel (a row of W is then copied NR floats at a time, ~9x faster at
    # H = 512 than walking down W's columns).
    if transpose:
        for q in range(NR):
            n = cols[p * NR + q]
            for k in range(out.shape[1]):
                r = rows[k]
                out[p, k, q] = 0.0 if n < 0 or r < 0 else W[n, r]
    else:
        for k in range(out.shape[1]):
            r = rows[k]
            for q in range(NR):
                n = cols[p * NR + q]
                out[p, k, q] = 0.0 if n < 0 or r < 0 else W[r, n]


@njit(parallel=True, **NJ)
def pack_panels(W, rows, cols, transpose, out):
    """Pack a gathered block of ``W`` into panels: ``out[p, k, q] = S[k, p·NR + q]``.

    ``S[k, n] = W[rows[k], cols[n]]`` (or ``W[cols[n], rows[k]]`` when ``transpose``);
    an index of -1 gives a zero (padding). ``out`` is ``(len(cols) // NR, len(rows), NR)``.
    Panels are packed in parallel; :func:`pack_panels_serial` is the one-thread twin.
    """
    for p in prange(out.shape[0]):
        _pack_panel(W, rows, cols, transpose, out, p)


@njit(**NJ)
def pack_panels_serial(W, rows, cols, transpose, out):
    """:func:`pack_panels` on the calling thread (small blocks: no fork-join)."""
    for p in range(out.shape[0]):
        _pack_panel(W, rows, cols, transpose, out, p)
