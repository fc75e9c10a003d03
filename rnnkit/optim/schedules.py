"""Learning-rate schedules that set an optimizer's ``lr``, as ``torch.optim.lr_scheduler``.

Epoch-based counting: at construction the schedule records ``base_lr`` (the
optimizer's ``lr``), ``last_epoch = 0`` and sets ``lr = γ(0)``; each ``step()``
advances ``last_epoch`` by one and sets ``lr = γ(last_epoch)``. Call it after the
optimizer's ``step()`` at the end of each epoch (or iteration, if the schedule is
counted in iterations).

Equations (γ₀ = ``base_lr``, e = ``last_epoch``)
---------
(LR-STEP)   γ(e) = γ₀ · gamma^⌊e / step_size⌋
(LR-EXP)    γ(e) = γ₀ · gamma^e
(LR-COS)    γ(e) = η_min + (γ₀ − η_min) (1 + cos(π e / T_max)) / 2
(LR-LAMBDA) γ(e) = γ₀ · f(e)
(LR-PLATEAU) after ``patience`` + 1 epochs without improvement:  γ = max(γ · factor, min_lr)

The closed forms above are what ``torch.optim.lr_scheduler`` computes when nothing
else touches the learning rate (PyTorch's default ``step()`` uses equivalent
recursive forms, equal up to rounding). Because the rate is a function of
``last_epoch`` here, a schedule overwrites any ``lr`` set by hand at its next step.
:class:`ReduceLROnPlateau` is the exception: it multiplies the current ``lr``.

``state_dict()`` returns a dict of JSON scalars (``type``, ``base_lr``,
``last_epoch``, ``last_lr`` and the schedule's own arguments);
``load_state_dict()`` restores it and sets the optimizer's ``lr`` to ``last_lr``,
so resuming does not depend on the order in which optimizer and schedule are loaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from rnnkit.optim.checks import check_int, check_real
from rnnkit.optim.optimizer import Optimizer

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "ReduceLROnPlateau",
    "StepLR",
]


class LRScheduler:
    """Base class: subclasses define ``lr_at(epoch)`` and list their arguments in ``_args``.

    Attributes
    ----------
    optimizer : Optimizer
    base_lr : float
        The optimizer's ``lr`` when the schedule was built (γ₀).
    last_epoch : int
        Number of :meth:`step` calls so far.
    """

    _args: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"`optimizer` must be a rnnkit Optimizer; got {type(optimizer).__name__}."
            )
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        self._set_lr(self.lr_at(0))

    def lr_at(self, epoch: int) -> float:
        """The learning rate after ``epoch`` calls to :meth:`step`."""
        raise NotImplementedError(f"{type(self).__name__} must implement lr_at")

    def _set_lr(self, lr: float) -> None:
        self.optimizer.lr = lr
        self._last_lr = self.optimizer.lr

    def step(self) -> None:
        """Advance one epoch and set the optimizer's ``lr`` to ``lr_at(last_epoch)``."""
        self.last_epoch += 1
        self._set_lr(self.lr_at(self.last_epoch))

    def get_last_lr(self) -> float:
        """The learning rate this schedule set last (a float: rnnkit has one group)."""
        return self._last_lr

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: type, counters and the schedule's arguments."""
        out: dict[str, Any] = {
            "type": type(self).__name__,
            "base_lr": self.base_lr,
            "last_epoch": self.last_epoch,
            "last_lr": self._last_lr,
        }
        out.update({k: getattr(self, k) for k in self._args})
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the state saved by :meth:`state_dict` and set the optimizer's ``lr``.

        The schedule's arguments are restored from the checkpoint too (as in PyTorch).
        Everything is checked before anything changes.
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"`state_dict` must be a dict; got {type(state_dict).__name__}.")
        if state_dict.get("type") != name:
            raise ValueError(
                f"`state_dict` was saved by {state_dict.get('type')!r}; expected {name!r}."
            )
        keys = ("type", "base_lr", "last_epoch", "last_lr", *self._args)
        missing = [k for k in keys if k not in state_dict]
        unexpected = [k for k in state_dict if k not in keys]
        if missing or unexpected:
            raise ValueError(
                f"`state_dict` for {name} must have the keys {list(keys)}; missing {missing}, "
                f"unexpected {unexpected}."
            )
        base_lr = check_real("base_lr", state_dict["base_lr"], low=0.0)
        last_epoch = check_int("last_epoch", state_dict["last_epoch"])
        last_lr = check_real("last_lr", state_dict["last_lr"], low=0.0)
        args = self._check_args({k: state_dict[k] for k in self._args})
        for k, v in args.items():
            setattr(self, k, v)
        self.base_lr, self.last_epoch = base_lr, last_epoch
        self._set_lr(last_lr)

    def _check_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validate the schedule's own arguments (by name); return them normalised."""
        return args

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)}" for k in self._args)
        return f"{type(self).__name__}({args}, last_epoch={self.last_epoch})"


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs, (LR-STEP).

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int >= 1
    gamma : float > 0.  Default 0.1.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnkit.nn.module import Parameter
    >>> from rnnkit.optim.optimizers import SGD
    >>> opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     lrs.append(sched.get_last_lr())
    ...     sched.step()
    >>> lrs
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    _args = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        args = self._check_args({"step_size": step_size, "gamma": gamma})
        self.step_size, self.gamma = args["step_size"], args["gamma"]
        super().__init__(optimizer)

    def _check_args(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "step_size": check_int("step_size", args["step_size"], low=1),
            "gamma": check_real("gamma", args["gamma"], low=0.0, low_open=True),
        }

    def lr_at(self, epoch: int) -> float:
        """(LR-STEP)."""
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch, (LR-EXP).

    Parameters
    ----------
    optimizer : Optimizer
    gamma : float > 0
    """

    _args = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = self._check_args({"gamma": gamma})["gamma"]
        super().__init__(optimizer)

    def _check_args(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"gamma": check_real("gamma", args["gamma"], low=0.0, low_open=True)}

    def lr_at(self, epoch: int) -> float:
        """(LR-EXP)."""
        return self.base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    """Anneal the learning rate from ``base_lr`` to ``eta_min`` along a half cosine, (LR-COS).

    After ``T_max`` epochs the rate rises again (the cosine continues, period
    ``2 T_max``), as in PyTorch; there are no warm restarts.

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int >= 1, epochs from ``base_lr`` down to ``eta_min``
    eta_min : float >= 0.  Default 0.
    """

    _args = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803
        args = self._check_args({"T_max": T_max, "eta_min": eta_min})
        self.T_max, self.eta_min = args["T_max"], args["eta_min"]
        super().__init__(optimizer)

    def _check_args(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "T_max": check_int("T_max", args["T_max"], low=1),
            "eta_min": check_real("eta_min", args["eta_min"], low=0.0),
        }

    def lr_at(self, epoch: int) -> float:
        """(LR-COS)."""
        cos = 1 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * cos / 2


class LambdaLR(LRScheduler):
    """Set the learning rate to ``base_lr · lr_lambda(epoch)``, (LR-LAMBDA).

    ``lr_lambda`` is not saved by :meth:`state_dict`; pass the same function when
    rebuilding the schedule before loading.

    Parameters
    ----------
    optimizer : Optimizer
    lr_lambda : callable int -> float, the factor for each epoch (``lr_lambda(0)`` at start)

    Examples
    --------
    Zaremba et al.'s schedule (constant for 4 epochs, then halved every epoch):

    >>> import numpy as np
    >>> from rnnkit.nn.module import Parameter
    >>> from rnnkit.optim.optimizers import SGD
    >>> opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    >>> sched = LambdaLR(opt, lambda e: 0.5 ** max(0, e - 3))
    >>> [sched.lr_at(e) for e in range(6)]
    [1.0, 1.0, 1.0, 1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float]) -> None:
        if not callable(lr_lambda):
            raise TypeError(
                f"`lr_lambda` must be a function of the epoch; got {type(lr_lambda).__name__}."
            )
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        """(LR-LAMBDA)."""
        factor = check_real(f"lr_lambda({epoch})", self.lr_lambda(epoch), low=0.0)
        return self.base_lr * factor


def _encode(x: float) -> float | str:
    """A float as a JSON-safe value: non-finite values become 'inf', '-inf', 'nan'."""
    return x if math.isfinite(x) else str(x)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rate by ``factor`` when a metric stops improving, (LR-PLATEAU).

    ``step(metric)`` is called once per epoch with the validation metric. The metric
    improves when it beats the best so far by more than ``threshold``: in ``rel``
    mode ``a < best (1 − threshold)`` ("min") or ``a > best (1 + threshold)``
    ("max"); in ``abs`` mode ``a < best − threshold`` or ``a > best + threshold``.
    After more than ``patience`` epochs without improvement the rate becomes
    ``max(lr · factor, min_lr)`` (skipped if that lowers it by ``eps`` or less), and
    ``cooldown`` epochs follow in which bad epochs are not counted. NaN metrics
    count as bad epochs. The current ``lr`` is multiplied, so this composes with
    an ``lr`` set by hand.

    Parameters
    ----------
    optimizer : Optimizer
    mode : {"min", "max"}.  Default "min".
    factor : float in [0, 1).  Default 0.1.
    patience : int >= 0.  Default 10.
    threshold : float >= 0.  Default 1e-4.
    threshold_mode : {"rel", "abs"}.  Default "rel".
    cooldown : int >= 0.  Default 0.
    min_lr : float >= 0.  Default 0.
    eps : float >= 0.  Default 1e-8.
    """

    _args = (
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "min_lr",
        "eps",
        "best",
        "num_bad_epochs",
        "cooldown_counter",
    )
    mode: str
    factor: float
    patience: int
    threshold: float
    threshold_mode: str
    cooldown: int
    min_lr: float
    eps: float
    best: float
    num_bad_epochs: int
    cooldown_counter: int

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        args = {"mode": mode, "factor": factor, "patience": patience, "threshold": threshold}
        args.update(threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr, eps=eps)
        args.update(best=math.inf if mode == "min" else -math.inf)
        args.update(num_bad_epochs=0, cooldown_counter=0)
        for k, v in self._check_args(args).items():
            setattr(self, k, v)
        super().__init__(optimizer)

    def _check_args(self, args: dict[str, Any]) -> dict[str, Any]:
        out = dict(args)
        for key, allowed in (("mode", ("min", "max")), ("threshold_mode", ("rel", "abs"))):
            if args[key] not in allowed:
                raise ValueError(f"`{key}` must be one of {allowed}; got {args[key]!r}.")
        out["factor"] = check_real(
            "factor", args["factor"], low=0.0, high=1.0, high_open=True, hint="Try 0.1 or 0.5."
        )
        for key in ("patience", "cooldown", "num_bad_epochs", "cooldown_counter"):
            out[key] = check_int(key, args[key])
        for key in ("threshold", "min_lr", "eps"):
            out[key] = check_real(key, args[key], low=0.0)
        best = args["best"]
        if isinstance(best, str) and best in ("inf", "-inf", "nan"):
            best = float(best)  # written by state_dict for non-finite values
        out["best"] = check_real("best", best, allow_inf=True) if best == best else best
        return out

    def lr_at(self, epoch: int) -> float:
        """The current ``lr`` (this schedule has no closed form)."""
        return self.optimizer.lr

    def _is_better(self, a: float) -> bool:
        t = self.threshold
        if self.mode == "min":
            return a < (self.best * (1 - t) if self.threshold_mode == "rel" else self.best - t)
        return a > (self.best * (1 + t) if self.threshold_mode == "rel" else self.best + t)

    def step(self, metric: float) -> None:  # type: ignore[override]
        """Record one epoch's ``metric`` and reduce ``lr`` after a plateau, (LR-PLATEAU)."""
        current = float(metric)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown are ignored
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)  #                         (LR-PLATEAU)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        """As :meth:`LRScheduler.state_dict`; a non-finite ``best`` is stored as a string."""
        out = super().state_dict()
        out["best"] = _encode(self.best)
        return out
