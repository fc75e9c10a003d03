"""``Module`` and ``Parameter``: parameter ownership and the forward-push / backward-pop protocol.

``y = m(x)`` runs ``forward`` and, in training mode, pushes what ``backward``
needs onto the module's own stack; ``dx = m.backward(dy)`` pops the newest
entry. A module called k times is backpropagated k times, newest first. In
``eval()`` mode nothing is pushed, so ``backward`` after an eval forward raises.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["Module", "Parameter"]


class Parameter:
    """A trainable array ``data`` with its accumulated gradient ``grad`` (same shape and dtype).

    ``grad`` starts at zero and is only ever added to by ``backward``; reset it with
    ``Module.zero_grad()``.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        data = np.asarray(data)
        if data.dtype.kind != "f":
            raise TypeError(f"A Parameter must hold floats; got dtype {data.dtype}.")
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data``."""
        return self.data.shape

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: owns Parameters and child Modules, and a stack of forward caches.

    Subclasses implement ``forward`` (calling ``self._push(cache)`` when
    ``self.training``) and ``backward`` (starting with ``cache = self._pop()``).
    """

    _parameters: dict[str, Parameter]
    _modules: dict[str, Module]
    _stack: list[Any]
    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_stack", [])
        object.__setattr__(self, "training", True)

    # -- registration ---------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before "
                "setting attributes."
            )
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted_name, Parameter)`` for this module and its children, in order.

        A Parameter shared by two modules (tied weights) is yielded once, under the
        first name it is reached by, so optimizers update it once.
        """
        seen: set[int] = set()
        for name, p in self._named_parameters_all(prefix):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def _named_parameters_all(self, prefix: str) -> Iterator[tuple[str, Parameter]]:
        for name, p in self._parameters.items():
            yield prefix + name, p
        for name, m in self._modules.items():
            yield from m._named_parameters_all(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        """All parameters, in the order of :meth:`named_parameters`."""
        return [p for _, p in self.named_parameters()]

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, depth first."""
        for _, m in self.named_modules():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Yield ``(dotted_name, module)`` for this module (name ``prefix``) and descendants."""
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def zero_grad(self) -> None:
        """Set every parameter gradient to zero (in place)."""
        for p in self.parameters():
            p.grad[...] = 0

    # -- modes ----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Switch this module and its children to training mode (caches are pushed)."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Switch to evaluation mode: dropout off, nothing pushed, so no backward."""
        return self.train(False)

    def astype(self, dtype: type | np.dtype) -> Module:
        """Cast every parameter and its gradient to ``dtype`` (float64 for gradient checks)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = p.grad.astype(dtype)
        return self

    # -- state ----------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter array, keyed by dotted name (PyTorch's names)."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy arrays from ``state`` into the parameters.

        Every key is checked before anything is copied, so a failed load changes
        nothing. With ``strict`` (the default), missing and unexpected keys are
        errors; shapes must always match. Arrays are cast to each parameter's dtype;
        anything with a ``.numpy()`` method (a torch tensor) is accepted.
        """
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict for {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}. Expected exactly {list(own)}."
            )
        arrays = {}
        for k, v in state.items():
            if k not in own:
                continue
            arr = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
            if arr.shape != own[k].shape:
                raise ValueError(
                    f"load_state_dict for {type(self).__name__}: `{k}` must have shape "
                    f"{own[k].shape}; got {arr.shape}."
                )
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"load_state_dict: `{k}` must be numeric; got dtype {arr.dtype}.")
            arrays[k] = arr
        for k, arr in arrays.items():
            own[k].data = arr.astype(own[k].data.dtype, copy=True)

    # -- the cache stack ------------------------------------------------------
    def _push(self, cache: Any) -> None:
        if self.training:
            self._stack.append(cache)

    def _pop(self) -> Any:
        if not self._stack:
            why = (
                " It is in eval mode, which records nothing; call .train() before a forward "
                "pass you want to backpropagate."
                if not self.training
                else " Call it once per forward pass, after that forward pass."
            )
            raise RuntimeError(
                f"{type(self).__name__}.backward called with no forward pass recorded.{why}"
            )
        return self._stack.pop()

    def _restore(self, cache: Any) -> None:
        """Put back a cache popped by a backward call that then failed on bad input."""
        self._stack.append(cache)

    def pending(self) -> int:
        """Number of forward passes (here and in children) not yet backpropagated."""
        return sum(len(m._stack) for m in self.modules())

    def clear_cache(self) -> None:
        """Drop every recorded forward pass (e.g. after an evaluation in training mode)."""
        for m in self.modules():
            m._stack.clear()

    # -- calling --------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run :meth:`forward`."""
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the output; push a cache when training."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        """Pop the newest cache and return the input gradient(s); add parameter gradients."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward")

    def __repr__(self) -> str:
        n = sum(p.data.size for p in self.parameters())
        return f"{type(self).__name__}({n} parameters)"
