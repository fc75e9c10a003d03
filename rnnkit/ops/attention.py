"""Attention: additive (Bahdanau), dot, scaled-dot and general (Luong) scoring, masked softmax.

The seed writes additive attention as ``e_t = vᵀ tanh(W_q q + W_x x_t)``,
``α = softmax(e)``, ``attn(q, x) = Σ_t α_t x_t``. Here ``q`` is a query (a decoder
state), ``x_t`` (``keys``) are the S encoder outputs it looks at and ``y_t``
(``values``, by default the keys themselves) are what the context averages.

Equations (s runs over the source steps of one sequence; ``m_s`` = 1 for a real key
and 0 for a padded one, from ``lengths`` or ``mask``):

(ATT-1) k_s = W_x x_s + b                          additive key projection (b optional)
(ATT-2) e_s = vᵀ tanh(W_q q + k_s)                 additive score (the seed: b = 0)
(ATT-3) e_s = λ qᵀ k_s,   k_s = x_s (dot, λ = 1; scaled dot, λ = 1/√D) or W x_s (general)
(ATT-4) α_s = m_s exp(e_s − max_r e_r) / Σ_r m_r exp(e_r − max_r e_r)   (max over real keys)
(ATT-5) c = Σ_s α_s y_s                             the context vector

Derivatives (``dv`` is ∂L/∂v; u_s = tanh(W_q q + k_s)):

(ATT-5') dα_s = dcᵀ y_s;   dy_s = α_s dc
(ATT-4') de_s = α_s (dα_s − Σ_r α_r dα_r)           (0 for a padded key: α_s = 0)
(ATT-2') da_s = de_s v ⊙ (1 − u_s²);  dv = Σ_s de_s u_s;  dq = W_qᵀ Σ_s da_s;
         dW_q = Σ_s da_s qᵀ;  dk_s = da_s
(ATT-3') dq = λ Σ_s de_s k_s;  dk_s = λ de_s q
(ATT-1') dx_s = W_xᵀ dk_s (general: Wᵀ dk_s);  dW_x = Σ_s dk_s x_sᵀ;  db = Σ_s dk_s

Every function is batched over B and over Q query steps: ``query`` is ``(B, Dq)`` or
``(Q, B, Dq)`` and the results are ``(B, ...)`` or ``(Q, B, ...)`` to match. Keys and
values are time-major ``(S, B, D)``. A padded key gets exactly zero weight and zero
gradient; a row with no real key at all is an error (softmax over nothing).

Each scorer is written as two stages, so a decoder can project the keys once and
attend many times: :func:`project_keys_forward` (ATT-1) and :func:`attend_forward`
(ATT-2)/(ATT-3), (ATT-4), (ATT-5). The ``*_attention_forward`` functions compose them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnkit.ops.sequence import freeze, incoming_grad
from rnnkit.ops.validation import check_finite, check_float_array, check_same_dtype, check_shape

__all__ = [
    "AttendCache",
    "AttendGrads",
    "AttentionCache",
    "AttentionGrads",
    "additive_attention_backward",
    "additive_attention_forward",
    "attend_backward",
    "attend_forward",
    "attention_mask",
    "dot_attention_backward",
    "dot_attention_forward",
    "general_attention_backward",
    "general_attention_forward",
    "masked_softmax_backward",
    "masked_softmax_forward",
    "project_keys_backward",
    "project_keys_forward",
]

SCORES = ("additive", "dot")


def attention_mask(
    lengths: object = None, mask: object = None, S: int = 0, B: int = 0
) -> np.ndarray | None:
    """Return the ``(B, S)`` boolean key mask (True = a real key), or None if nothing is padded.

    ``lengths`` (B ints in [0, S]: the first ``lengths[b]`` keys are real) and ``mask``
    (``(B, S)`` bool) are alternatives. A row with no real key raises ``ValueError``.
    """
    if lengths is not None and mask is not None:
        raise ValueError("Pass `lengths` or `mask`, not both; they describe the same padding.")
    if lengths is not None:
        lens = np.asarray(lengths)
        if lens.dtype.kind not in "iu":
            raise TypeError(
                f"`lengths` must hold integers; got dtype {lens.dtype}. "
                "Pass e.g. np.array([5, 3], dtype=np.int64)."
            )
        check_shape("lengths", lens, (B,), hint="One key count per sequence.")
        if B and (lens.min() < 0 or lens.max() > S):
            raise ValueError(
                f"`lengths` must be in [0, S={S}] for every sequence; got min {int(lens.min())}, "
                f"max {int(lens.max())}. Pad `keys` or trim `lengths`."
            )
        m = np.arange(S)[None, :] < lens[:, None]
    elif mask is not None:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            raise TypeError(f"`mask` must be a bool array (True = real key); got {m.dtype}.")
        check_shape("mask", m, (B, S), hint="One flag per (sequence, key).")
    else:
        return None
    empty = ~m.any(axis=1)
    if empty.any():
        raise ValueError(
            f"Every query needs at least one real key, but sequence {int(np.argmax(empty))} "
            "has all of its keys masked (length 0): softmax over no key is undefined. "
            "Drop that sequence from the batch or give it a key."
        )
    return None if m.all() else m


def masked_softmax_forward(e: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Weights ``α`` (ATT-4) of scores ``e`` (Q, B, S); masked keys get exactly 0.

    Examples
    --------
    >>> masked_softmax_forward(np.zeros((1, 1, 3)), np.array([[True, True, False]])).tolist()
    [[[0.5, 0.5, 0.0]]]
    """
    if mask is not None:
        e = np.where(mask[None], e, -np.inf)  # exp(−inf) = 0 exactly
    p = np.exp(e - e.max(axis=-1, keepdims=True))  # (Q, B, S)                   (ATT-4)
    return p / p.sum(axis=-1, keepdims=True)


def masked_softmax_backward(dalpha: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``de = α ⊙ (dα − Σ α dα)`` (ATT-4'); zero wherever ``α`` is zero (masked keys)."""
    return alpha * (dalpha - np.sum(alpha * dalpha, axis=-1, keepdims=True))  # (ATT-4')


# -- stage 1: the keys --------------------------------------------------------------
def project_keys_forward(keys: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``k_s = W x_s + b`` (ATT-1) for keys ``(S, B, Dk)`` and ``W`` ``(A, Dk)``: ``(S, B, A)``."""
    k = keys @ W.T  # (S, B, A)                                                (ATT-1)
    if b is not None:
        k += b
    return k


def project_keys_backward(
    dk: np.ndarray, keys: np.ndarray, W: np.ndarray, has_bias: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Return ``(dkeys, dW, db)`` of (ATT-1'); ``db`` is None without a bias."""
    A = W.shape[0]
    dk2 = dk.reshape(-1, A)
    dW = dk2.T @ keys.reshape(-1, keys.shape[-1])  #                          (ATT-1')
    return dk @ W, dW, (dk2.sum(axis=0) if has_bias else None)


# -- stage 2: one query against projected keys --------------------------------------
class AttendCache(NamedTuple):
    """What :func:`attend_backward` needs; arrays created by the forward are read-only."""

    score: str  # "additive" or "dot"
    query: np.ndarray  # (Q, B, Dq)
    keys_proj: np.ndarray  # (S, B, A) the k_s of (ATT-1)/(ATT-3)
    values: np.ndarray  # (S, B, Dv)
    weights: np.ndarray  # (Q, B, S) α
    u: np.ndarray | None  # (Q, B, S, A) tanh(W_q q + k_s), additive only
    W_q: np.ndarray | None  # (A, Dq), additive only
    v: np.ndarray | None  # (A,), additive only
    scale: float  # λ of (ATT-3)
    squeeze: bool  # the query was (B, Dq)


class AttendGrads(NamedTuple):
    """Gradients from :func:`attend_backward` (parameter gradients None for dot scoring)."""

    dquery: np.ndarray  # like the query
    dkeys_proj: np.ndarray  # (S, B, A)
    dvalues: np.ndarray  # (S, B, Dv)
    dW_q: np.ndarray | None
    dv: np.ndarray | None


def _check_query(query: object, B: int, dtype: np.dtype) -> tuple[np.ndarray, bool]:
    q = check_float_array("query", query)
    if q.ndim not in (2, 3) or q.shape[-2] != B:
        raise ValueError(
            f"`query` must have shape (B, Dq) or (Q, B, Dq) with B={B} like the keys; "
            f"got {q.shape}."
        )
    check_same_dtype("query", q, dtype)
    check_finite("query", q)
    return (q[None], True) if q.ndim == 2 else (q, False)


def attend_forward(
    query: np.ndarray,
    keys_proj: np.ndarray,
    values: np.ndarray,
    mask: np.ndarray | None = None,
    score: str = "additive",
    W_q: np.ndarray | None = None,
    v: np.ndarray | None = None,
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, AttendCache]:
    """Score, normalise and average: (ATT-2) or (ATT-3), then (ATT-4) and (ATT-5).

    Parameters
    ----------
    query : (B, Dq) or (Q, B, Dq)
    keys_proj : (S, B, A), the projected keys ``k_s`` (A = Dq for dot scoring)
    values : (S, B, Dv)
    mask : (B, S) bool from :func:`attention_mask`, or None
    score : "additive" (needs ``W_q`` (A, Dq) and ``v`` (A,)) or "dot" (uses ``scale``)

    Returns
    -------
    context : (B, Dv) or (Q, B, Dv);  weights : (B, S) or (Q, B, S);  cache : AttendCache
    """
    keys_proj = check_float_array("keys_proj", keys_proj, ndim=3)
    S, B, A = keys_proj.shape
    dtype = keys_proj.dtype
    q, squeeze = _check_query(query, B, dtype)
    _check_param("values", values, (S, B, None), dtype)
    u = None
    if score == "additive":
        _check_param("W_q", W_q, (A, q.shape[-1]), dtype)
        _check_param("v", v, (A,), dtype)
        pq = q @ W_q.T  # (Q, B, A)
        u = np.tanh(pq[:, :, None, :] + keys_proj.transpose(1, 0, 2)[None])  # (Q, B, S, A)
        e = u @ v  # (Q, B, S)                                                  (ATT-2)
    elif score == "dot":
        if q.shape[-1] != A:
            raise ValueError(
                f"`query` must have Dq={A}, the size of the keys it is dotted with; "
                f"got {q.shape[-1]}. Use general or additive attention for unequal sizes."
            )
        e = scale * (q.transpose(1, 0, 2) @ keys_proj.transpose(1, 2, 0))  # (B, Q, S) (ATT-3)
        e = e.transpose(1, 0, 2)
    else:
        raise ValueError(f"`score` must be one of {SCORES}; got {score!r}.")
    alpha = masked_softmax_forward(e, mask)  # (Q, B, S)                         (ATT-4)
    context = (alpha.transpose(1, 0, 2) @ values.transpose(1, 0, 2)).transpose(1, 0, 2)  # (ATT-5)
    freeze(u, alpha)
    cache = AttendCache(score, q, keys_proj, values, alpha, u, W_q, v, scale, squeeze)
    if squeeze:
        return context[0], alpha[0], cache
    return context, alpha, cache


def attend_backward(
    dcontext: np.ndarray | None, dweights: np.ndarray | None, cache: AttendCache
) -> AttendGrads:
    """Backpropagate :func:`attend_forward`: (ATT-5'), (ATT-4'), then (ATT-2') or (ATT-3')."""
    score, q, k, values, alpha, u, W_q, v, scale, squeeze = cache
    Q, B, S = alpha.shape
    lead = (B,) if squeeze else (Q, B)
    dtype = values.dtype
    dc = incoming_grad("dcontext", dcontext, (*lead, values.shape[-1]), dtype).reshape(Q, B, -1)
    da_in = incoming_grad("dweights", dweights, (*lead, S), dtype).reshape(Q, B, S)
    dc_b = dc.transpose(1, 0, 2)  # (B, Q, Dv)
    dalpha = (dc_b @ values.transpose(1, 2, 0)).transpose(1, 0, 2) + da_in  #    (ATT-5')
    dvalues = (alpha.transpose(1, 2, 0) @ dc_b).transpose(1, 0, 2)  # (S, B, Dv)
    de = masked_softmax_backward(dalpha, alpha)  # (Q, B, S)                     (ATT-4')
    dW_q = dv = None
    if score == "additive":
        dv = np.tensordot(de, u, axes=3)  # Σ de_s u_s                            (ATT-2')
        da = de[..., None] * v * (1 - u * u)  # (Q, B, S, A)
        dpq = da.sum(axis=2)  # (Q, B, A)
        dk = da.sum(axis=0).transpose(1, 0, 2)  # (S, B, A)
        dW_q = dpq.reshape(-1, dpq.shape[-1]).T @ q.reshape(-1, q.shape[-1])
        dq = dpq @ W_q
    else:
        de_b = scale * de.transpose(1, 0, 2)  # (B, Q, S)                        (ATT-3')
        dq = (de_b @ k.transpose(1, 0, 2)).transpose(1, 0, 2)  # (Q, B, Dq)
        dk = (de_b.transpose(0, 2, 1) @ q.transpose(1, 0, 2)).transpose(1, 0, 2)  # (S, B, A)
    return AttendGrads(dq[0] if squeeze else dq, dk, dvalues, dW_q, dv)


# -- the three scorers, whole -------------------------------------------------------
class AttentionCache(NamedTuple):
    """Cache of a whole attention op: the keys stage's inputs and the attend stage's cache."""

    keys: np.ndarray  # (S, B, Dk)
    W: np.ndarray | None  # key projection W_x (additive) or W (general); None for dot
    has_bias: bool
    values_are_keys: bool
    attend: AttendCache


class AttentionGrads(NamedTuple):
    """Gradients of a whole attention op; entries a scorer does not have are None."""

    dquery: np.ndarray  # like the query
    dkeys: np.ndarray  # (S, B, Dk), including the values' share when values are the keys
    dvalues: np.ndarray | None  # (S, B, Dv), None when values are the keys
    dW_q: np.ndarray | None  # additive
    dW_x: np.ndarray | None  # additive (W_x) or general (W)
    dv: np.ndarray | None  # additive
    db: np.ndarray | None  # additive with bias


def _check_memory(
    keys: object, values: object, lengths: object, mask: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    keys = check_float_array("keys", keys, ndim=3)
    S, B, _ = keys.shape
    if S < 1:
        raise ValueError(f"`keys` must have at least one step (S >= 1); got shape {keys.shape}.")
    check_finite("keys", keys)
    if values is None:
        vals = keys
    else:
        vals = check_float_array("values", values, ndim=3)
        check_shape("values", vals, (S, B, None), hint="Values pair with the keys: (S, B, Dv).")
        check_same_dtype("values", vals, keys.dtype)
        check_finite("values", vals)
    return keys, vals, attention_mask(lengths, mask, S, B)


def _check_param(name: str, p: object, shape: tuple[int | None, ...], dtype: np.dtype) -> None:
    p = check_float_array(name, p)
    check_shape(name, p, shape)
    check_same_dtype(name, p, dtype)


def _whole_backward(
    dcontext: np.ndarray | None, dweights: np.ndarray | None, cache: AttentionCache
) -> AttentionGrads:
    g = attend_backward(dcontext, dweights, cache.attend)
    if cache.W is None:
        dkeys, dW, db = g.dkeys_proj, None, None
    else:
        dkeys, dW, db = project_keys_backward(g.dkeys_proj, cache.keys, cache.W, cache.has_bias)
    dvalues = g.dvalues
    if cache.values_are_keys:
        dkeys, dvalues = dkeys + dvalues, None
    return AttentionGrads(g.dquery, dkeys, dvalues, g.dW_q, dW, g.dv, db)


def additive_attention_forward(
    query: np.ndarray,
    keys: np.ndarray,
    W_q: np.ndarray,
    W_x: np.ndarray,
    v: np.ndarray,
    b: np.ndarray | None = None,
    values: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, AttentionCache]:
    """Additive (Bahdanau) attention, (ATT-1), (ATT-2), (ATT-4), (ATT-5).

    Parameters
    ----------
    query : (B, Dq) or (Q, B, Dq)
    keys : (S, B, Dk), the ``x_s``
    W_q : (A, Dq);  W_x : (A, Dk);  v : (A,);  b : (A,) or None (the seed has none)
    values : (S, B, Dv), or None to average the keys themselves (the seed's form)
    lengths : (B,) ints in [0, S], or ``mask`` (B, S) bool; a row with no key is an error

    Returns
    -------
    context : (B, Dv) or (Q, B, Dv);  weights : (B, S) or (Q, B, S);  cache

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> S, B, D, A = 4, 2, 3, 5
    >>> c, w, _ = additive_attention_forward(rng.normal(size=(B, D)), rng.normal(size=(S, B, D)),
    ...     rng.normal(size=(A, D)), rng.normal(size=(A, D)), rng.normal(size=A),
    ...     lengths=np.array([4, 2]))
    >>> c.shape, w[1, 2:].tolist(), np.allclose(w.sum(axis=1), 1)
    ((2, 3), [0.0, 0.0], True)
    """
    keys, vals, m = _check_memory(keys, values, lengths, mask)
    dtype = keys.dtype
    _check_param("W_x", W_x, (None, keys.shape[-1]), dtype)
    A = W_x.shape[0]
    _check_param("W_q", W_q, (A, None), dtype)
    _check_param("v", v, (A,), dtype)
    if b is not None:
        _check_param("b", b, (A,), dtype)
    k = project_keys_forward(keys, W_x, b)  # (S, B, A)                         (ATT-1)
    context, weights, att = attend_forward(query, k, vals, m, "additive", W_q, v)
    freeze(k)
    return context, weights, AttentionCache(keys, W_x, b is not None, values is None, att)


def additive_attention_backward(
    dcontext: np.ndarray | None, dweights: np.ndarray | None, cache: AttentionCache
) -> AttentionGrads:
    """Gradients of :func:`additive_attention_forward`, (ATT-5'), (ATT-4'), (ATT-2'), (ATT-1')."""
    return _whole_backward(dcontext, dweights, cache)


def dot_attention_forward(
    query: np.ndarray,
    keys: np.ndarray,
    values: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    scaled: bool = False,
) -> tuple[np.ndarray, np.ndarray, AttentionCache]:
    """Dot (Luong) or scaled-dot attention, (ATT-3) with ``k_s = x_s``, (ATT-4), (ATT-5).

    ``scaled=True`` divides the scores by √D (Vaswani et al. 2017). ``Dq`` must equal
    ``Dk``. Shapes as in :func:`additive_attention_forward`.
    """
    keys, vals, m = _check_memory(keys, values, lengths, mask)
    scale = 1.0 / np.sqrt(keys.shape[-1]) if scaled else 1.0
    context, weights, att = attend_forward(query, keys, vals, m, "dot", scale=float(scale))
    return context, weights, AttentionCache(keys, None, False, values is None, att)


def dot_attention_backward(
    dcontext: np.ndarray | None, dweights: np.ndarray | None, cache: AttentionCache
) -> AttentionGrads:
    """Gradients of :func:`dot_attention_forward`, (ATT-5'), (ATT-4'), (ATT-3')."""
    return _whole_backward(dcontext, dweights, cache)


def general_attention_forward(
    query: np.ndarray,
    keys: np.ndarray,
    W: np.ndarray,
    values: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, AttentionCache]:
    """General (Luong) attention ``e_s = qᵀ W x_s``: (ATT-1) with b = 0, (ATT-3), (ATT-4), (ATT-5).

    ``W`` is ``(Dq, Dk)``; the gradient of ``W`` is returned as ``dW_x``. Other shapes as in
    :func:`additive_attention_forward`.
    """
    keys, vals, m = _check_memory(keys, values, lengths, mask)
    _check_param("W", W, (None, keys.shape[-1]), keys.dtype)
    k = project_keys_forward(keys, W, None)  # (S, B, Dq)                       (ATT-1)
    context, weights, att = attend_forward(query, k, vals, m, "dot")
    freeze(k)
    return context, weights, AttentionCache(keys, W, False, values is None, att)


def general_attention_backward(
    dcontext: np.ndarray | None, dweights: np.ndarray | None, cache: AttentionCache
) -> AttentionGrads:
    """Gradients of :func:`general_attention_forward`; ``dW_x`` is ∂L/∂W."""
    return _whole_backward(dcontext, dweights, cache)
