"""Attention modules: ``AdditiveAttention``, ``DotAttention`` and ``GeneralAttention``.

Each runs the ops of :mod:`rnnkit.ops.attention` in two stages, so a decoder projects
the encoder outputs once and attends to them at every step::

    mem = attn.memory(keys, values=None, lengths=None)   # (ATT-1), once per sequence
    context, weights = attn.attend(query, mem)           # (ATT-2)/(ATT-3)…(ATT-5), per step
    dquery, dmem = attn.attend_backward(dcontext, dweights=None)   # newest step first
    dkeys, dvalues = attn.memory_backward(dmem_summed_over_steps)  # last

or in one go, ``context, weights = attn(query, keys, values=None, lengths=None)`` and
``dquery, dkeys, dvalues = attn.backward(dcontext, dweights=None)``. ``dvalues`` is None
when the values are the keys (their gradient is then included in ``dkeys``).

Shapes: ``query`` (B, Dq) or (Q, B, Dq); ``keys`` (S, B, Dk); ``values`` (S, B, Dv);
``context`` (B, Dv) or (Q, B, Dv); ``weights`` (B, S) or (Q, B, S).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rnnkit.nn.init import as_generator, uniform
from rnnkit.nn.module import Module, Parameter
from rnnkit.ops.attention import (
    AttendGrads,
    attend_backward,
    attend_forward,
    attention_mask,
    project_keys_backward,
    project_keys_forward,
)
from rnnkit.ops.validation import (
    FLOAT_DTYPES,
    check_finite,
    check_float_array,
    check_same_dtype,
    check_shape,
)

__all__ = [
    "AdditiveAttention",
    "AttentionMemory",
    "DotAttention",
    "GeneralAttention",
    "MemoryGrad",
    "make_attention",
]


class AttentionMemory(NamedTuple):
    """The projected keys an attention module attends to, from :meth:`memory` (read-only)."""

    keys_proj: np.ndarray  # (S, B, A) the k_s of (ATT-1)/(ATT-3)
    values: np.ndarray  # (S, B, Dv)
    mask: np.ndarray | None  # (B, S) bool, True = real key; None when nothing is padded
    values_are_keys: bool

    def take(self, index: np.ndarray) -> AttentionMemory:
        """The memory of the batch entries ``index`` (e.g. to tile it for beam search)."""
        mask = None if self.mask is None else self.mask[index]
        return AttentionMemory(
            self.keys_proj[:, index], self.values[:, index], mask, self.values_are_keys
        )


class MemoryGrad(NamedTuple):
    """∂L/∂memory: summed over the steps by the caller, then given to ``memory_backward``."""

    dkeys_proj: np.ndarray  # (S, B, A)
    dvalues: np.ndarray  # (S, B, Dv)

    def __add__(self, other: object) -> MemoryGrad:  # type: ignore[override]
        if not isinstance(other, MemoryGrad):
            return NotImplemented
        return MemoryGrad(self.dkeys_proj + other.dkeys_proj, self.dvalues + other.dvalues)


class _MemoryCache(NamedTuple):
    keys: np.ndarray
    values_are_keys: bool
    S: int
    B: int


class _Attention(Module):
    """Shared machinery; subclasses set ``_score`` and the key projection."""

    _score = "dot"

    def __init__(self, query_size: int, key_size: int, dtype: type | np.dtype) -> None:
        super().__init__()
        for name, n in (("query_size", query_size), ("key_size", key_size)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"`{name}` must be a positive integer; got {n!r}.")
        if np.dtype(dtype) not in FLOAT_DTYPES:
            raise TypeError(f"`dtype` must be float32 or float64; got {np.dtype(dtype)}.")
        self.query_size, self.key_size = int(query_size), int(key_size)
        self.dtype = np.dtype(dtype)

    # -- the key projection (ATT-1), overridden by subclasses with weights ----------
    def _project(self, keys: np.ndarray) -> np.ndarray:
        return keys

    def _project_backward(self, dk: np.ndarray, keys: np.ndarray) -> np.ndarray:
        return dk

    def _attend_params(self) -> dict[str, Any]:
        return {}

    def _add_attend_grads(self, g: AttendGrads) -> None:
        return None

    # -- stage 1 --------------------------------------------------------------
    def memory(
        self,
        keys: np.ndarray,
        values: np.ndarray | None = None,
        lengths: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> AttentionMemory:
        """Project the keys (ATT-1) and build the padding mask; record one memory pass."""
        keys = check_float_array("keys", keys, ndim=3)
        n_src, batch, key_size = keys.shape
        if key_size != self.key_size or n_src < 1:
            raise ValueError(
                f"`keys` must have shape (S >= 1, B, key_size={self.key_size}); got {keys.shape}."
            )
        check_same_dtype("keys", keys, self.dtype)
        check_finite("keys", keys)
        if values is not None:
            values = check_float_array("values", values, ndim=3)
            check_shape("values", values, (n_src, batch, None), hint="Values pair with the keys.")
            check_same_dtype("values", values, self.dtype)
            check_finite("values", values)
        m = attention_mask(lengths, mask, n_src, batch)
        k = self._project(keys)
        if k is not keys:
            k.flags.writeable = False
        self._push(("memory", _MemoryCache(keys, values is None, n_src, batch)))
        return AttentionMemory(k, keys if values is None else values, m, values is None)

    def memory_backward(self, dmemory: MemoryGrad) -> tuple[np.ndarray, np.ndarray | None]:
        """Pop the newest memory pass; return ``(dkeys, dvalues)`` (ATT-1'), add weight grads."""
        cache = self._pop_kind("memory", "memory_backward")
        if not isinstance(dmemory, MemoryGrad):
            self._restore(("memory", cache))
            raise TypeError(
                f"`dmemory` must be a MemoryGrad (the sum of attend_backward's second results); "
                f"got {type(dmemory).__name__}."
            )
        dkeys = self._project_backward(dmemory.dkeys_proj, cache.keys)
        if cache.values_are_keys:
            return dkeys + dmemory.dvalues, None
        return dkeys, dmemory.dvalues

    # -- stage 2 --------------------------------------------------------------
    def attend(self, query: np.ndarray, memory: AttentionMemory) -> tuple[np.ndarray, np.ndarray]:
        """Attend with ``query`` (B, Dq) or (Q, B, Dq); return ``(context, weights)``."""
        if not isinstance(memory, AttentionMemory):
            raise TypeError(
                f"`memory` must be the AttentionMemory returned by memory(); "
                f"got {type(memory).__name__}."
            )
        q = check_float_array("query", query)
        if q.shape[-1:] != (self.query_size,):
            raise ValueError(
                f"`query` must have shape (..., query_size={self.query_size}); got {q.shape}."
            )
        context, weights, cache = attend_forward(
            q, memory.keys_proj, memory.values, memory.mask, self._score, **self._attend_params()
        )
        self._push(("attend", cache))
        return context, weights

    def attend_backward(
        self, dcontext: np.ndarray | None, dweights: np.ndarray | None = None
    ) -> tuple[np.ndarray, MemoryGrad]:
        """Pop the newest attend pass; return ``(dquery, MemoryGrad)``, add weight grads."""
        cache = self._pop_kind("attend", "attend_backward")
        try:
            g = attend_backward(dcontext, dweights, cache)
        except (TypeError, ValueError):
            self._restore(("attend", cache))
            raise
        self._add_attend_grads(g)
        return g.dquery, MemoryGrad(g.dkeys_proj, g.dvalues)

    # -- both -----------------------------------------------------------------
    def forward(
        self,
        query: np.ndarray,
        keys: np.ndarray,
        values: np.ndarray | None = None,
        lengths: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``memory`` then ``attend``: return ``(context, weights)``."""
        mem = self.memory(keys, values, lengths, mask)
        try:
            return self.attend(query, mem)
        except (TypeError, ValueError):
            if self.training:
                self._stack.pop()  # drop the memory pass of this failed call
            raise

    def backward(
        self, dcontext: np.ndarray | None, dweights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Return ``(dquery, dkeys, dvalues)``; ``dvalues`` is None when values are the keys."""
        dquery, dmem = self.attend_backward(dcontext, dweights)
        dkeys, dvalues = self.memory_backward(dmem)
        return dquery, dkeys, dvalues

    def _pop_kind(self, kind: str, method: str) -> Any:
        if self._stack and self._stack[-1][0] != kind:
            raise RuntimeError(
                f"{type(self).__name__}.{method} called, but the newest recorded pass is "
                f"{self._stack[-1][0]}(): backpropagate every attend() (newest first) before "
                "the memory() they used."
            )
        return self._pop()[1]


class AdditiveAttention(_Attention):
    """Additive (Bahdanau) attention, the seed's ``vᵀ tanh(W_q q + W_x x_s)``, (ATT-1)–(ATT-5).

    Parameters
    ----------
    query_size, key_size : int
        Dq and Dk.
    attention_size : int, optional
        A, the size of the tanh layer (default: ``query_size``).
    bias : bool
        Add ``b`` inside the tanh (the seed has none).
    rng : Generator, int seed or None
    dtype : float32 (default) or float64

    Attributes
    ----------
    weight_query : (A, Dq), ``W_q``, U(−1/√Dq, 1/√Dq)
    weight_key : (A, Dk), ``W_x``, U(−1/√Dk, 1/√Dk)
    bias : (A,), ``b``, U(−1/√Dk, 1/√Dk); absent when ``bias=False``
    v : (A,), U(−1/√A, 1/√A)

    Examples
    --------
    >>> attn = AdditiveAttention(4, 6, 5, rng=0)
    >>> rng = np.random.default_rng(1)
    >>> q, x = rng.normal(size=(2, 4)).astype("f4"), rng.normal(size=(3, 2, 6)).astype("f4")
    >>> c, w = attn(q, x, lengths=np.array([3, 1]))
    >>> c.shape, w[1].tolist()
    ((2, 6), [1.0, 0.0, 0.0])
    """

    _score = "additive"

    def __init__(
        self,
        query_size: int,
        key_size: int,
        attention_size: int | None = None,
        bias: bool = True,
        *,
        rng: np.random.Generator | int | None = None,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        super().__init__(query_size, key_size, dtype)
        size = query_size if attention_size is None else attention_size
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"`attention_size` must be a positive integer; got {size!r}.")
        self.attention_size = int(size)
        gen, dt = as_generator(rng), self.dtype
        self.weight_query = Parameter(uniform(gen, (size, query_size), query_size**-0.5, dt))
        self.weight_key = Parameter(uniform(gen, (size, key_size), key_size**-0.5, dt))
        if bias:
            self.bias = Parameter(uniform(gen, (size,), key_size**-0.5, dt))
        self.v = Parameter(uniform(gen, (size,), size**-0.5, dt))

    def _b(self) -> Parameter | None:
        return self._parameters.get("bias")

    def _project(self, keys: np.ndarray) -> np.ndarray:
        b = self._b()
        return project_keys_forward(keys, self.weight_key.data, None if b is None else b.data)

    def _project_backward(self, dk: np.ndarray, keys: np.ndarray) -> np.ndarray:
        b = self._b()
        dkeys, dw, db = project_keys_backward(dk, keys, self.weight_key.data, b is not None)
        self.weight_key.grad += dw
        if b is not None:
            b.grad += db
        return dkeys

    def _attend_params(self) -> dict[str, Any]:
        return {"W_q": self.weight_query.data, "v": self.v.data}

    def _add_attend_grads(self, g: AttendGrads) -> None:
        self.weight_query.grad += g.dW_q
        self.v.grad += g.dv

    def __repr__(self) -> str:
        return (
            f"AdditiveAttention({self.query_size}, {self.key_size}, "
            f"attention_size={self.attention_size}, bias={self._b() is not None})"
        )


class DotAttention(_Attention):
    """Dot (Luong) attention ``e_s = qᵀ x_s``, or scaled dot ``qᵀ x_s / √D``, (ATT-3)–(ATT-5).

    Has no parameters; ``query_size`` must equal ``key_size`` (D).
    """

    def __init__(
        self, size: int, scaled: bool = False, *, dtype: type | np.dtype = np.float32
    ) -> None:
        super().__init__(size, size, dtype)
        self.scaled = bool(scaled)

    def _attend_params(self) -> dict[str, Any]:
        return {"scale": float(self.key_size**-0.5) if self.scaled else 1.0}

    def __repr__(self) -> str:
        return f"DotAttention({self.key_size}, scaled={self.scaled})"


class GeneralAttention(_Attention):
    """General (Luong) attention ``e_s = qᵀ W x_s``, (ATT-1) without bias, (ATT-3)–(ATT-5).

    Attributes
    ----------
    weight : (Dq, Dk), ``W``, U(−1/√Dk, 1/√Dk)
    """

    def __init__(
        self,
        query_size: int,
        key_size: int,
        *,
        rng: np.random.Generator | int | None = None,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        super().__init__(query_size, key_size, dtype)
        bound = key_size**-0.5
        self.weight = Parameter(
            uniform(as_generator(rng), (query_size, key_size), bound, self.dtype)
        )

    def _project(self, keys: np.ndarray) -> np.ndarray:
        return project_keys_forward(keys, self.weight.data, None)

    def _project_backward(self, dk: np.ndarray, keys: np.ndarray) -> np.ndarray:
        dkeys, dw, _ = project_keys_backward(dk, keys, self.weight.data, False)
        self.weight.grad += dw
        return dkeys

    def __repr__(self) -> str:
        return f"GeneralAttention({self.query_size}, {self.key_size})"


ATTENTIONS = ("additive", "dot", "scaled_dot", "general")


def make_attention(
    kind: str,
    query_size: int,
    key_size: int,
    attention_size: int | None = None,
    *,
    rng: np.random.Generator | int | None = None,
    dtype: type | np.dtype = np.float32,
) -> _Attention:
    """Build the attention module ``kind``: "additive", "dot", "scaled_dot" or "general"."""
    if kind == "additive":
        return AdditiveAttention(query_size, key_size, attention_size, rng=rng, dtype=dtype)
    if kind == "general":
        return GeneralAttention(query_size, key_size, rng=rng, dtype=dtype)
    if kind in ("dot", "scaled_dot"):
        if query_size != key_size:
            raise ValueError(
                f"{kind} attention needs query_size == key_size; got {query_size} and "
                f"{key_size}. Use 'general' or 'additive'."
            )
        return DotAttention(key_size, scaled=kind == "scaled_dot", dtype=dtype)
    raise ValueError(f"`kind` must be one of {ATTENTIONS}; got {kind!r}.")
