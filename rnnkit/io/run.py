"""Save and restore a whole training run: model, optimizer, schedule, trainer, RNGs, data position.

A run checkpoint is a :func:`rnnkit.io.checkpoint.save_checkpoint` directory:

- arrays (``model.safetensors``): ``model/<parameter name>`` (PyTorch names), the
  optimizer's per-parameter state under ``optim/...`` and the trainer's carried
  hidden states and kept inputs under ``trainer/...``;
- JSON (``checkpoint.json``): ``kind`` ("rnnkit-run"), the run ``config``, the
  ``vocab``, the model constructor arguments, the optimizer's hyper-parameters and
  step count, the scheduler state, the trainer's counters and data position, and the
  bit-generator state of every module that owns an ``rng`` (dropout masks).

Everything random or stateful in training is in there, so a run resumed from a
checkpoint continues bit for bit as if it had never stopped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rnnkit.io.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.io.nested import join_arrays, split_arrays
from rnnkit.io.rng import rng_from_state, rng_state
from rnnkit.models.language_model import LanguageModel
from rnnkit.nn.module import Module
from rnnkit.train import Trainer

__all__ = ["RunCheckpoint", "build_model", "load_run", "restore_run", "save_run"]

KIND = "rnnkit-run"


class RunCheckpoint(NamedTuple):
    """A loaded run checkpoint: JSON parts plus the arrays."""

    config: dict[str, Any]
    vocab: dict[str, Any]
    model_config: dict[str, Any]
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    path: Path


def _module_rngs(model: Module) -> dict[str, np.random.Generator]:
    rngs = {}
    for name, m in model.named_modules():
        g = getattr(m, "rng", None)
        if isinstance(g, np.random.Generator):
            rngs[name or "<root>"] = g
    return rngs


def save_run(
    directory: str | os.PathLike[str],
    trainer: Trainer,
    config: dict[str, Any],
    vocab: dict[str, Any],
) -> Path:
    """Write the complete state of ``trainer`` (and its model) as a run checkpoint."""
    model = trainer.model
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    optim_json, optim_arrays = split_arrays(trainer.optimizer.state_dict(), "optim")
    trainer_json, trainer_arrays = split_arrays(trainer.state_dict(), "trainer")
    arrays.update(optim_arrays)
    arrays.update(trainer_arrays)
    meta = {
        "kind": KIND,
        "config": config,
        "vocab": vocab,
        "model_config": model.config,
        "optimizer": optim_json,
        "scheduler": None if trainer.scheduler is None else trainer.scheduler.state_dict(),
        "trainer": trainer_json,
        "rngs": {k: rng_state(g) for k, g in _module_rngs(model).items()},
    }
    return save_checkpoint(directory, arrays, meta)


def load_run(directory: str | os.PathLike[str]) -> RunCheckpoint:
    """Read a run checkpoint (a run directory holding ``checkpoint/``, or that folder itself).

    Raises ``ValueError`` with the path if the directory is not an rnnkit run checkpoint.
    """
    path = Path(directory)
    if (path / "checkpoint").is_dir() or (path / "checkpoint.old").is_dir():
        path = path / "checkpoint"
    arrays, meta = load_checkpoint(path)
    if meta.get("kind") != KIND:
        raise ValueError(
            f"{str(path)!r} is a checkpoint but not an rnnkit training run "
            f"(kind {meta.get('kind')!r}, expected {KIND!r})."
        )
    for key in ("config", "vocab", "model_config", "optimizer", "trainer", "rngs"):
        if key not in meta:
            raise ValueError(f"run checkpoint {str(path)!r} lacks {key!r}; it is damaged.")
    return RunCheckpoint(meta["config"], meta["vocab"], meta["model_config"], meta, arrays, path)


def _model_arrays(ckpt: RunCheckpoint) -> dict[str, np.ndarray]:
    return {k.removeprefix("model/"): v for k, v in ckpt.arrays.items() if k.startswith("model/")}


def build_model(ckpt: RunCheckpoint) -> LanguageModel:
    """Rebuild the model of a run checkpoint and load its parameters."""
    model = LanguageModel(**ckpt.model_config)
    model.load_state_dict(_model_arrays(ckpt))
    return model


def restore_run(ckpt: RunCheckpoint, trainer: Trainer) -> None:
    """Put the saved parameters, optimizer, scheduler, trainer and RNG states into ``trainer``."""
    model = trainer.model
    model.load_state_dict(_model_arrays(ckpt))
    trainer.optimizer.load_state_dict(join_arrays(ckpt.meta["optimizer"], ckpt.arrays))
    if trainer.scheduler is not None and ckpt.meta.get("scheduler") is not None:
        trainer.scheduler.load_state_dict(ckpt.meta["scheduler"])
    trainer.load_state_dict(join_arrays(ckpt.meta["trainer"], ckpt.arrays))
    rngs = _module_rngs(model)
    saved = ckpt.meta["rngs"]
    if set(saved) != set(rngs):
        raise ValueError(
            f"the checkpoint's random generators {sorted(saved)} do not match the model's "
            f"{sorted(rngs)}; it was written by a different model."
        )
    for name, g in rngs.items():
        g.bit_generator.state = rng_from_state(saved[name]).bit_generator.state
