"""The basic layers: ``Linear``, ``Embedding`` and ``Dropout``.

Equations
---------
(LIN-1)   y = x Wᵀ + b
(LIN-1')  dx = dy W;   dW = Σ dyᵀ x;   db = Σ dy        (sums over every leading axis)
(EMB-1)   y[...] = W[ids[...]]
(EMB-1')  dW[k] = Σ_{positions with ids = k} dy        (none for k = padding_idx)
(DROP-1)  y = x ⊙ m / (1 − p),   m_k ~ Bernoulli(1 − p)   (training mode; identity in eval)
(DROP-1') dx = dy ⊙ m / (1 − p)

Every forward validates its input before anything is recorded, and every backward
validates its incoming gradient before it pops, so a failed call leaves the module
as it was.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rnnkit.kernels import dense
from rnnkit.nn.init import as_generator
from rnnkit.nn.module import Module, Parameter
from rnnkit.ops.validation import FLOAT_DTYPES, check_finite, check_float_array, check_same_dtype

__all__ = ["Dropout", "Embedding", "Linear"]


def _check_size(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int; got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
    return int(value)


def _check_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"`dtype` must be float32 or float64; got {dt}.")
    return dt


def _peek(module: Module) -> Any:
    """The newest cache without popping it (so a bad gradient leaves the stack intact)."""
    return module._stack[-1] if module._stack else module._pop()  # _pop raises when empty


def _check_grad(name: str, g: object, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    g = check_float_array(name, g)
    if g.shape != shape:
        raise ValueError(
            f"`{name}` must have shape {shape}, the shape of the forward output; got {g.shape}."
        )
    return g.astype(dtype, copy=False)


class _LinearCache(NamedTuple):
    x: np.ndarray  # (..., in)
    W: np.ndarray  # (out, in), the weight used by this forward pass


class Linear(Module):
    """Affine map on the last axis, (LIN-1): ``y = x Wᵀ + b``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the last axis of the input and of the output.
    bias : bool
        Whether to add ``b``.
    rng : numpy.random.Generator, int seed or None
        Source of the initial weights (None: seed 0).
    dtype : float32 (default) or float64

    Attributes
    ----------
    weight : Parameter (out_features, in_features), initialised U(−1/√in, 1/√in)
    bias : Parameter (out_features,), initialised U(−1/√in, 1/√in); absent if ``bias=False``

    Shapes: ``x`` (..., in_features) -> ``y`` (..., out_features); any leading axes.

    Examples
    --------
    >>> lin = Linear(3, 2, rng=0)
    >>> y = lin(np.ones((4, 5, 3), dtype=np.float32))
    >>> dx = lin.backward(np.ones_like(y))
    >>> y.shape, dx.shape, lin.weight.grad.tolist()[0]
    ((4, 5, 2), (4, 5, 3), [20.0, 20.0, 20.0])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: np.random.Generator | int | None = None,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        super().__init__()
        self.in_features = _check_size("in_features", in_features)
        self.out_features = _check_size("out_features", out_features)
        dt = _check_dtype(dtype)
        gen = as_generator(rng)
        k = 1.0 / np.sqrt(self.in_features)
        shape = (self.out_features, self.in_features)
        self.weight = Parameter(gen.uniform(-k, k, size=shape).astype(dt))
        self.bias = (
            Parameter(gen.uniform(-k, k, size=self.out_features).astype(dt)) if bias else None
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Return ``x Wᵀ + b`` (LIN-1); ``x`` is (..., in_features) of the weight's dtype."""
        x = check_float_array("x", x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"`x` must have shape (..., {self.in_features}) for Linear("
                f"{self.in_features}, {self.out_features}); got {x.shape}."
            )
        check_same_dtype("x", x, self.weight.data.dtype)
        check_finite("x", x)
        weight = self.weight.data  # W
        # One 2-D GEMM over all leading axes: NumPy's stacked matmul of a (..., in) array
        # with a 2-D matrix runs one small GEMM per leading index (2x slower for a PTB
        # decoder with one BLAS thread, up to 60x with a contended multi-threaded OpenBLAS).
        # Float32 runs on the kernels' thread team (rnnkit.kernels.dense), else NumPy's @.
        y = dense.matmul_nt(x.reshape(-1, self.in_features), weight).reshape(
            *x.shape[:-1], self.out_features
        )  # (..., out)                                                          (LIN-1)
        if self.bias is not None:
            y += self.bias.data
        self._push(_LinearCache(x, weight))
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Add dW, db into the parameter gradients and return ``dx = dy W`` (LIN-1')."""
        x, weight = _peek(self)
        dy = _check_grad("dy", dy, (*x.shape[:-1], self.out_features), weight.dtype)
        self._pop()
        dy2 = dy.reshape(-1, self.out_features)  # (N, out), N = all leading axes
        dense.matmul_tn_acc(self.weight.grad, dy2, x.reshape(-1, self.in_features))  # (LIN-1')
        if self.bias is not None:
            self.bias.grad += dy2.sum(axis=0)
        return dense.matmul_nn(dy2, weight).reshape(*x.shape[:-1], self.in_features)

    def __repr__(self) -> str:
        return (
            f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None})"
        )


class Embedding(Module):
    """Lookup table, (EMB-1): ``y = W[ids]``; its backward (EMB-1') is a scatter-add.

    Parameters
    ----------
    num_embeddings : int
        Number of rows (the vocabulary size V).
    embedding_dim : int
        Size E of each row.
    padding_idx : int, optional
        A row that starts at zero and never receives a gradient (negative counts from
        the end, as in PyTorch). It is frozen by design: its ``grad`` stays zero even
        though the output depends on it.
    rng : numpy.random.Generator, int seed or None
        Source of the initial weights (None: seed 0).
    dtype : float32 (default) or float64

    Attributes
    ----------
    weight : Parameter (num_embeddings, embedding_dim), initialised N(0, 1) like PyTorch,
        with the ``padding_idx`` row set to zero.

    Shapes: ``ids`` (...) integers in [0, V) -> ``y`` (..., E). ``backward(dy)`` returns
    None (ids have no gradient); ids that repeat add up their rows' gradients.

    Examples
    --------
    >>> emb = Embedding(5, 2, padding_idx=0, rng=0)
    >>> y = emb(np.array([[1, 1, 0]]))
    >>> emb.backward(np.ones_like(y)) is None, emb.weight.grad[:2].tolist()
    (True, [[0.0, 0.0], [2.0, 2.0]])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        rng: np.random.Generator | int | None = None,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        super().__init__()
        self.num_embeddings = _check_size("num_embeddings", num_embeddings)
        self.embedding_dim = _check_size("embedding_dim", embedding_dim)
        n = self.num_embeddings
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
                raise TypeError(f"`padding_idx` must be an int or None; got {padding_idx!r}.")
            if not -n <= padding_idx < n:
                raise ValueError(
                    f"`padding_idx` must be in [-{n}, {n}) for num_embeddings={n}; "
                    f"got {padding_idx}."
                )
            padding_idx = int(padding_idx) % n
        self.padding_idx = padding_idx
        weight = as_generator(rng).standard_normal((n, self.embedding_dim))  # N(0, 1)
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.weight = Parameter(weight.astype(_check_dtype(dtype)))

    def forward(self, ids: np.ndarray) -> np.ndarray:
        """Return the rows ``W[ids]`` (EMB-1), of shape ``ids.shape + (embedding_dim,)``."""
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(
                f"`ids` must hold integer token ids; got dtype {ids.dtype}. "
                "Pass e.g. ids.astype(np.int64)."
            )
        n = self.num_embeddings
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise ValueError(
                f"`ids` must be in [0, num_embeddings={n}); got min {int(ids.min())}, "
                f"max {int(ids.max())}. Check the vocabulary used to encode the data."
            )
        ids = ids.astype(np.intp)  # a private copy: the caller may reuse its buffer
        y = self.weight.data[ids]  # (..., E)                                    (EMB-1)
        self._push(ids)
        return y

    def backward(self, dy: np.ndarray) -> None:
        """Scatter-add ``dy`` into the rows of ``weight.grad`` (EMB-1'); return None."""
        ids = _peek(self)
        dim = self.embedding_dim
        dy = _check_grad("dy", dy, (*ids.shape, dim), self.weight.grad.dtype)
        self._pop()
        flat, dy2 = ids.reshape(-1), dy.reshape(-1, dim)
        if self.padding_idx is not None:
            keep = flat != self.padding_idx
            flat, dy2 = flat[keep], dy2[keep]
        np.add.at(self.weight.grad, flat, dy2)  # repeated ids add up            (EMB-1')
        return None

    def __repr__(self) -> str:
        return (
            f"Embedding({self.num_embeddings}, {self.embedding_dim}, "
            f"padding_idx={self.padding_idx})"
        )


class Dropout(Module):
    """Inverted dropout, (DROP-1): zero each element with probability ``p``, scale the rest.

    In training mode each element is kept with probability ``1 − p`` and scaled by
    ``1/(1 − p)``, so the expected output equals the input; ``backward`` applies the
    same mask. In eval mode the layer is the identity and records nothing.

    Parameters
    ----------
    p : float in [0, 1)
        Drop probability; ``p = 0`` is the identity (but still records a forward pass).
    rng : numpy.random.Generator, int seed or None
        The layer's own generator for the masks (None: seed 0), so a run is reproducible
        from its seed and independent of any other randomness.

    Examples
    --------
    >>> drop = Dropout(0.5, rng=0)
    >>> y = drop(np.ones((2, 4)))
    >>> sorted(set(y.ravel().tolist())) == [0.0, 2.0]
    True
    >>> bool((drop.backward(np.ones((2, 4))) == y).all())
    True
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
            raise TypeError(f"`p` must be a float in [0, 1); got {type(p).__name__} {p!r}.")
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(
                f"`p` must be in [0, 1) (the probability of dropping an element); got {p}."
            )
        self.p = float(p)
        self.rng = as_generator(rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Return ``x ⊙ m / (1 − p)`` (DROP-1) when training, ``x`` itself in eval mode."""
        x = check_float_array("x", x)
        check_finite("x", x)
        if not self.training:
            return x
        if self.p == 0.0:
            self._push((x.shape, None))
            return x
        keep = self.rng.random(x.shape) >= self.p  # m ~ Bernoulli(1 − p)
        m = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)  # m / (1 − p)
        m.flags.writeable = False
        self._push((x.shape, m))
        return x * m  #                                                          (DROP-1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Return ``dy ⊙ m / (1 − p)`` with the mask of the matching forward (DROP-1')."""
        shape, m = _peek(self)
        dy = check_float_array("dy", dy)
        if dy.shape != shape:
            raise ValueError(
                f"`dy` must have shape {shape}, the shape of the forward output; got {dy.shape}."
            )
        self._pop()
        return dy if m is None else dy * m.astype(dy.dtype, copy=False)  #       (DROP-1')

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"
