"""SGD, Adagrad, RMSprop, Adam and AdamW with exactly ``torch.optim``'s update rules.

Notation, shared by every optimizer (``t`` counts steps from 1):

- θ: a parameter (``p.data``), ∇: its gradient (``p.grad``), g: the gradient used
- γ: learning rate ``lr``, λ: ``weight_decay``, ε: ``eps``
- products, squares, square roots and divisions of arrays are element-wise

Every parameter is updated in place; gradients are read, never written. The
per-parameter state arrays named in each class's ``State`` section are what
``state_dict()["state"][k]`` holds (see :mod:`rnnkit.optim.optimizer`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from rnnkit.nn.module import Parameter
from rnnkit.optim.checks import check_flag, check_real
from rnnkit.optim.optimizer import Optimizer

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "RMSprop"]


def _decayed_grad(p: Parameter, weight_decay: float) -> np.ndarray:
    """``∇ + λθ`` as a new array (or ``p.grad`` itself when λ = 0); ``p.grad`` is untouched."""
    if weight_decay == 0:
        return p.grad
    return p.grad + weight_decay * p.data


def _lerp_(a: np.ndarray, b: np.ndarray, w: float) -> None:
    """``a ← a + w (b − a)`` in place, evaluated as ``torch.lerp`` does on the CPU."""
    if abs(w) < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1 - w)


def _common(hyper: Mapping[str, Any]) -> dict[str, float]:
    return {
        "lr": check_real("lr", hyper["lr"], low=0.0, hint="Pass a learning rate such as 1e-3."),
        "weight_decay": check_real("weight_decay", hyper["weight_decay"], low=0.0),
    }


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    Equations
    ---------
    (OPT-SGD-1) g = ∇ + λ θ
    (OPT-SGD-2) b = g  if t = 1,  else  b = μ b + (1 − τ) g          (only when μ ≠ 0)
    (OPT-SGD-3) g = g + μ b  (nesterov),  else  g = b                 (only when μ ≠ 0)
    (OPT-SGD-4) θ = θ − γ g

    Parameters
    ----------
    params : iterable of Parameter
    lr : float, γ >= 0.  Default 1e-3 (as torch).
    momentum : float, μ >= 0.  Default 0.
    dampening : float, τ.  Default 0.  Not applied on the first step (OPT-SGD-2).
    weight_decay : float, λ >= 0 (L2 penalty added to the gradient).  Default 0.
    nesterov : bool.  Requires ``momentum > 0`` and ``dampening == 0``.  Default False.

    State
    -----
    ``momentum_buffer`` (b), only when ``momentum != 0``.

    Examples
    --------
    >>> p = Parameter(np.array([1.0, -2.0]))
    >>> opt = SGD([p], lr=0.1, momentum=0.9)
    >>> p.grad[...] = [1.0, 1.0]
    >>> opt.step()
    >>> p.data
    array([ 0.9, -2.1])
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        hyper = {"lr": lr, "momentum": momentum, "dampening": dampening}
        hyper.update(weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, hyper)

    @classmethod
    def _check_hyper(cls, hyper: Mapping[str, Any]) -> dict[str, Any]:
        cls._expect_keys(hyper, ("lr", "momentum", "dampening", "weight_decay", "nesterov"))
        out: dict[str, Any] = _common(hyper)
        out["momentum"] = check_real("momentum", hyper["momentum"], low=0.0)
        out["dampening"] = check_real("dampening", hyper["dampening"])
        out["nesterov"] = check_flag("nesterov", hyper["nesterov"])
        if out["nesterov"] and (out["momentum"] <= 0 or out["dampening"] != 0):
            raise ValueError(
                f"`nesterov=True` requires `momentum` > 0 and `dampening` == 0; got momentum="
                f"{out['momentum']}, dampening={out['dampening']}. Set a momentum such as 0.9."
            )
        return out

    @classmethod
    def _state_names(cls, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if hyper["momentum"] != 0 else ()

    def _update(self, p: Parameter, state: dict[str, np.ndarray], t: int) -> None:
        h = self._hyper
        mu = h["momentum"]
        g = _decayed_grad(p, h["weight_decay"])  #                             (OPT-SGD-1)
        if mu != 0:
            b = state["momentum_buffer"]
            if t == 1:
                b[...] = g  #                                                   (OPT-SGD-2)
            else:
                b *= mu
                b += (1 - h["dampening"]) * g  #                                 (OPT-SGD-2)
            g = g + mu * b if h["nesterov"] else b  #                           (OPT-SGD-3)
        p.data -= h["lr"] * g  #                                                (OPT-SGD-4)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), as ``torch.optim.Adagrad``.

    Equations
    ---------
    (OPT-ADAGRAD-1) g = ∇ + λ θ
    (OPT-ADAGRAD-2) γ_t = γ / (1 + (t − 1) η)
    (OPT-ADAGRAD-3) s = s + g²                         s starts at ``initial_accumulator_value``
    (OPT-ADAGRAD-4) θ = θ − γ_t g / (√s + ε)

    Parameters
    ----------
    params : iterable of Parameter
    lr : float, γ >= 0.  Default 1e-2.
    lr_decay : float, η >= 0.  Default 0.
    weight_decay : float, λ >= 0.  Default 0.
    initial_accumulator_value : float >= 0.  Default 0.
    eps : float, ε >= 0 (added outside the square root).  Default 1e-10.

    State
    -----
    ``sum`` (s).
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        hyper = {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay}
        hyper.update(initial_accumulator_value=initial_accumulator_value, eps=eps)
        super().__init__(params, hyper)

    @classmethod
    def _check_hyper(cls, hyper: Mapping[str, Any]) -> dict[str, Any]:
        names = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")
        cls._expect_keys(hyper, names)
        out: dict[str, Any] = _common(hyper)
        out["lr_decay"] = check_real("lr_decay", hyper["lr_decay"], low=0.0)
        out["initial_accumulator_value"] = check_real(
            "initial_accumulator_value", hyper["initial_accumulator_value"], low=0.0
        )
        out["eps"] = check_real("eps", hyper["eps"], low=0.0)
        return out

    @classmethod
    def _state_names(cls, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        return ("sum",)

    def _init_state(self, p: Parameter) -> dict[str, np.ndarray]:
        return {"sum": np.full_like(p.data, self._hyper["initial_accumulator_value"])}

    def _update(self, p: Parameter, state: dict[str, np.ndarray], t: int) -> None:
        h = self._hyper
        g = _decayed_grad(p, h["weight_decay"])  #                         (OPT-ADAGRAD-1)
        lr_t = h["lr"] / (1 + (t - 1) * h["lr_decay"])  #                  (OPT-ADAGRAD-2)
        s = state["sum"]
        s += g * g  #                                                       (OPT-ADAGRAD-3)
        std = np.sqrt(s)
        std += h["eps"]
        p.data -= lr_t * g / std  #                                         (OPT-ADAGRAD-4)


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012), optionally centered and with momentum, as ``torch.optim.RMSprop``.

    Equations
    ---------
    (OPT-RMS-1) g = ∇ + λ θ
    (OPT-RMS-2) v = α v + (1 − α) g²
    (OPT-RMS-3) centered:  ḡ = α ḡ + (1 − α) g,  d = √(v − ḡ²) + ε;  else  d = √v + ε
    (OPT-RMS-4) momentum μ > 0:  b = μ b + g / d,  θ = θ − γ b;  else  θ = θ − γ g / d

    Parameters
    ----------
    params : iterable of Parameter
    lr : float, γ >= 0.  Default 1e-2.
    alpha : float, α >= 0 (smoothing constant).  Default 0.99.
    eps : float, ε >= 0 (added outside the square root).  Default 1e-8.
    weight_decay : float, λ >= 0.  Default 0.
    momentum : float, μ >= 0.  Default 0.
    centered : bool, normalise by an estimate of the variance instead of the second moment.

    State
    -----
    ``square_avg`` (v); ``momentum_buffer`` (b) when ``momentum > 0``; ``grad_avg`` (ḡ)
    when ``centered``.
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        hyper = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay}
        hyper.update(momentum=momentum, centered=centered)
        super().__init__(params, hyper)

    @classmethod
    def _check_hyper(cls, hyper: Mapping[str, Any]) -> dict[str, Any]:
        names = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
        cls._expect_keys(hyper, names)
        out: dict[str, Any] = _common(hyper)
        out["alpha"] = check_real("alpha", hyper["alpha"], low=0.0)
        out["eps"] = check_real("eps", hyper["eps"], low=0.0)
        out["momentum"] = check_real("momentum", hyper["momentum"], low=0.0)
        out["centered"] = check_flag("centered", hyper["centered"])
        return out

    @classmethod
    def _state_names(cls, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        names: tuple[str, ...] = ("square_avg",)
        if hyper["momentum"] > 0:
            names += ("momentum_buffer",)
        if hyper["centered"]:
            names += ("grad_avg",)
        return names

    def _update(self, p: Parameter, state: dict[str, np.ndarray], t: int) -> None:
        h = self._hyper
        alpha = h["alpha"]
        g = _decayed_grad(p, h["weight_decay"])  #                             (OPT-RMS-1)
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * g * g  #                                             (OPT-RMS-2)
        if h["centered"]:
            g_avg = state["grad_avg"]
            _lerp_(g_avg, g, 1 - alpha)  #                                      (OPT-RMS-3)
            d = np.sqrt(v - g_avg * g_avg)
        else:
            d = np.sqrt(v)
        d += h["eps"]  #                                                        (OPT-RMS-3)
        if h["momentum"] > 0:
            b = state["momentum_buffer"]
            b *= h["momentum"]
            b += g / d  #                                                       (OPT-RMS-4)
            p.data -= h["lr"] * b
        else:
            p.data -= h["lr"] * g / d  #                                        (OPT-RMS-4)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with optional AMSGrad, as ``torch.optim.Adam``.

    Equations
    ---------
    (OPT-ADAM-1) g = ∇ + λ θ                       (AdamW instead: OPT-ADAMW-1)
    (OPT-ADAM-2) m = β₁ m + (1 − β₁) g
    (OPT-ADAM-3) v = β₂ v + (1 − β₂) g²
    (OPT-ADAM-4) amsgrad:  v̂ = max(v̂, v);  else  v̂ = v
    (OPT-ADAM-5) d = √v̂ / √(1 − β₂ᵗ) + ε
    (OPT-ADAM-6) θ = θ − γ / (1 − β₁ᵗ) · m / d

    ε is added after the bias correction of v (PyTorch's placement), so for small
    ``t`` it is effectively scaled by √(1 − β₂ᵗ) relative to the paper's ε̂.

    Parameters
    ----------
    params : iterable of Parameter
    lr : float, γ >= 0.  Default 1e-3.
    betas : (float, float), β₁ and β₂, each in [0, 1).  Default (0.9, 0.999).
    eps : float, ε >= 0.  Default 1e-8.
    weight_decay : float, λ >= 0 (L2 penalty added to the gradient).  Default 0.
    amsgrad : bool.  Default False.

    State
    -----
    ``exp_avg`` (m), ``exp_avg_sq`` (v); ``max_exp_avg_sq`` (v̂) when ``amsgrad``.

    Examples
    --------
    >>> p = Parameter(np.array([1.0, -2.0]))
    >>> opt = Adam([p], lr=0.1)
    >>> p.grad[...] = [3.0, -0.5]
    >>> opt.step()                      # the first Adam step moves each entry by ~lr
    >>> np.round(p.data, 6)
    array([ 0.9, -1.9])
    """

    _decoupled = False

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        hyper = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        hyper.update(amsgrad=amsgrad)
        super().__init__(params, hyper)

    @classmethod
    def _check_hyper(cls, hyper: Mapping[str, Any]) -> dict[str, Any]:
        cls._expect_keys(hyper, ("lr", "betas", "eps", "weight_decay", "amsgrad"))
        out: dict[str, Any] = _common(hyper)
        betas = hyper["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"`betas` must be a pair (beta1, beta2); got {betas!r}.")
        out["betas"] = [
            check_real(
                f"betas[{k}]", b, low=0.0, high=1.0, high_open=True, hint="Typical: 0.9, 0.999."
            )
            for k, b in enumerate(betas)
        ]
        out["eps"] = check_real("eps", hyper["eps"], low=0.0)
        out["amsgrad"] = check_flag("amsgrad", hyper["amsgrad"])
        return out

    @classmethod
    def _state_names(cls, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        names = ("exp_avg", "exp_avg_sq")
        return (*names, "max_exp_avg_sq") if hyper["amsgrad"] else names

    def _update(self, p: Parameter, state: dict[str, np.ndarray], t: int) -> None:
        h = self._hyper
        lr, wd, (beta1, beta2) = h["lr"], h["weight_decay"], h["betas"]
        if self._decoupled:
            if wd != 0:
                p.data *= 1 - lr * wd  #                                       (OPT-ADAMW-1)
            g = p.grad
        else:
            g = _decayed_grad(p, wd)  #                                        (OPT-ADAM-1)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(m, g, 1 - beta1)  #                                             (OPT-ADAM-2)
        v *= beta2
        v += (1 - beta2) * g * g  #                                            (OPT-ADAM-3)
        if h["amsgrad"]:
            v_hat = state["max_exp_avg_sq"]
            np.maximum(v_hat, v, out=v_hat)  #                                 (OPT-ADAM-4)
        else:
            v_hat = v
        step_size = lr / (1 - beta1**t)
        d = np.sqrt(v_hat) / (1 - beta2**t) ** 0.5
        d += h["eps"]  #                                                       (OPT-ADAM-5)
        p.data -= step_size * m / d  #                                         (OPT-ADAM-6)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Equations
    ---------
    (OPT-ADAMW-1) θ = θ (1 − γ λ);  g = ∇        then (OPT-ADAM-2)–(OPT-ADAM-6)

    The decay uses the current ``lr``, so a schedule scales it too (as in PyTorch).

    Parameters
    ----------
    params : iterable of Parameter
    lr : float, γ >= 0.  Default 1e-3.
    betas : (float, float), each in [0, 1).  Default (0.9, 0.999).
    eps : float, ε >= 0.  Default 1e-8.
    weight_decay : float, λ >= 0.  Default 1e-2 (PyTorch's default).
    amsgrad : bool.  Default False.

    State
    -----
    As :class:`Adam`.
    """

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
