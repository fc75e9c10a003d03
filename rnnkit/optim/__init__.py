"""Optimizers, learning-rate schedules and gradient clipping for rnnkit Parameters.

``from rnnkit.optim import SGD, Adam, StepLR, clip_grad_norm`` and so on. The update
rules equal ``torch.optim``'s; see :mod:`rnnkit.optim.optimizers` for the equations,
:mod:`rnnkit.optim.optimizer` for the state-dict layout used by checkpoints,
:mod:`rnnkit.optim.schedules` and :mod:`rnnkit.optim.clipping`.
"""

from rnnkit.optim.clipping import clip_grad_norm, clip_grad_value
from rnnkit.optim.optimizer import Optimizer
from rnnkit.optim.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from rnnkit.optim.schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LRScheduler,
    ReduceLROnPlateau,
    StepLR,
)

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "StepLR",
    "clip_grad_norm",
    "clip_grad_value",
]
