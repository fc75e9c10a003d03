"""The training loop: full and truncated BPTT, evaluation, early stopping, metrics, resume.

Truncated BPTT, ``TBPTT(k1, k2)`` with k2 ≥ k1 (DESIGN.md): the data arrive in
windows of k1 new steps per stream (:class:`rnnkit.data.StreamBatcher`). For each
window the model is run over the last k2 steps — the k2 − k1 steps kept from before
plus the k1 new ones — starting from the state saved k2 steps back; only the losses
of the k1 new steps are injected, and BPTT walks all k2 steps:

(TBPTT-1) L_j = Σ_{t in the k1 new steps} CE(z_t, y_t) / (k1·B)
(TBPTT-2) ∂L_j/∂θ by BPTT through steps t − k2 + 1 … t, state at t − k2 held fixed

``k1 = k2`` is the usual "detach every k steps". The old steps are run in a separate
forward call whose final state is exactly the start state of the next window, so no
state is ever recomputed from scratch. The hidden state carries from window to window
and is reset to zero where the streams restart (each epoch).

Nothing here prints: progress goes to a callback, metrics to a JSON-lines file.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.streams import StreamBatcher
from rnnkit.kernels.losses import cross_entropy_sum, softmax_cross_entropy
from rnnkit.models.language_model import LanguageModel
from rnnkit.ops.activations import log_mean_softmax
from rnnkit.optim import Optimizer, ReduceLROnPlateau, clip_grad_norm

__all__ = ["Progress", "Trainer", "evaluate_lm"]


@dataclass
class Progress:
    """What the trainer reports to its callback after each optimizer step or evaluation."""

    kind: str  # "step", "eval" or "done"
    step: int
    epoch: int
    window: int  # index of the window just trained, within the epoch
    windows: int  # windows per epoch
    train_loss: float | None = None
    valid_loss: float | None = None
    lr: float | None = None
    tokens_per_s: float | None = None
    grad_norm: float | None = None


def evaluate_lm(
    model: LanguageModel | Sequence[LanguageModel], ids: np.ndarray, batch_size: int, bptt: int
) -> float:
    """Mean cross-entropy (nats per token) of ``model`` on the token stream ``ids``, (CE-1).

    The stream is laid out in ``batch_size`` parallel streams whose state carries across
    windows, as in training; the model's mode is restored afterwards. Given several
    models (an ensemble), each carries its own state and a token's probability is the
    mean of theirs, (ENS-1): the loss is ``−log((1/M) Σ_m p_m)``.
    """
    models = [model] if isinstance(model, LanguageModel) else list(model)
    if not models:
        raise ValueError("`model` must be a LanguageModel or a non-empty list of them.")
    vocab = {m.vocab_size for m in models}
    if len(vocab) > 1:
        raise ValueError(f"an ensemble's models must share one vocabulary; got sizes {vocab}.")
    batcher = StreamBatcher(ids, batch_size, bptt)
    was_training = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        states: list[Any] = [None] * len(models)
        total, count = 0.0, 0
        for w in batcher:
            outs = []
            for k, m in enumerate(models):
                logits, states[k] = m(w.x, states[k])
                outs.append(logits)
            z = outs[0] if len(outs) == 1 else log_mean_softmax(outs)  #          (ENS-1)
            s, n = cross_entropy_sum(z, w.y)
            total += s
            count += n
    finally:
        for m, mode in zip(models, was_training, strict=True):
            m.train(mode)
    return total / count


class Trainer:
    """Train a :class:`LanguageModel` on a :class:`StreamBatcher` with TBPTT(k1, k2).

    Parameters
    ----------
    model, optimizer : the model and an optimizer over ``model.parameters()``
    batcher : yields windows of k1 = ``batcher.bptt`` new steps
    k2 : steps to backpropagate through (k2 >= k1; default k1)
    valid_ids : token stream for periodic evaluation (optional)
    clip : global gradient-norm clip (None: no clipping)
    scheduler : a schedule from :mod:`rnnkit.optim` (optional). ``ReduceLROnPlateau`` steps
        on each validation loss; any other steps once per epoch, or once per optimizer
        step with ``schedule_per_step=True``.
    eval_every : evaluate every this many optimizer steps (and at each epoch end)
    patience : stop after this many evaluations without improvement (None: never)
    metrics_path : JSON-lines file the metrics are appended to (optional)
    """

    def __init__(
        self,
        model: LanguageModel,
        optimizer: Optimizer,
        batcher: StreamBatcher,
        *,
        k2: int | None = None,
        valid_ids: np.ndarray | None = None,
        clip: float | None = 5.0,
        scheduler: Any = None,
        schedule_per_step: bool = False,
        eval_every: int = 0,
        patience: int | None = None,
        metrics_path: str | Path | None = None,
    ) -> None:
        self.k1 = batcher.bptt
        self.k2 = self.k1 if k2 is None else int(k2)
        if self.k2 < self.k1:
            raise ValueError(f"TBPTT needs k2 >= k1; got k1={self.k1}, k2={self.k2}.")
        self.model, self.optimizer, self.batcher = model, optimizer, batcher
        self.valid_ids, self.clip, self.scheduler = valid_ids, clip, scheduler
        self.schedule_per_step = schedule_per_step
        self._on_plateau = isinstance(scheduler, ReduceLROnPlateau)
        self.eval_every, self.patience = eval_every, patience
        self.metrics_path = None if metrics_path is None else Path(metrics_path)
        self.step = 0
        self.best_valid: float | None = None
        self.last_eval: tuple[int, float] | None = None  # (step, validation loss)
        self.bad_evals = 0
        self.stopped_early = False
        self._stop_requested = False
        batch = batcher.batch_size
        self.state = model.initial_state(batch)  # state after the last consumed step
        self.hist_x = np.zeros((0, batch), dtype=np.int64)  # the kept k2 − k1 inputs
        self.hist_state = model.initial_state(batch)  # state before hist_x

    # -- one TBPTT update -------------------------------------------------------
    def train_window(self, x: np.ndarray, y: np.ndarray, reset: bool) -> tuple[float, float]:
        """Run (TBPTT-1)–(TBPTT-2) on one window and take an optimizer step.

        Returns ``(loss, gradient norm before clipping)``.
        """
        batch = x.shape[1]
        if reset:
            self.state = self.model.initial_state(batch)
            self.hist_x = np.zeros((0, batch), dtype=np.int64)
            self.hist_state = self.state
        full = np.concatenate([self.hist_x, x])  # (n, B), n <= k2
        n, k = full.shape[0], x.shape[0]
        keep = min(self.k2 - self.k1, n)  # steps kept as history for the next window
        cut = n - keep
        self.model.zero_grad()
        chunks = [(0, cut), (cut, n)] if 0 < cut < n else [(0, n)]
        state = self.hist_state
        logits_parts = []
        next_hist_state = self.hist_state if cut == 0 else None
        for a, b in chunks:
            logits, state = self.model(full[a:b], state)
            logits_parts.append(logits)
            if b == cut:
                next_hist_state = state
        logits = np.concatenate(logits_parts) if len(logits_parts) > 1 else logits_parts[0]
        # Only the k newest steps carry a loss (TBPTT-1).
        loss, dnew = softmax_cross_entropy(logits[n - k :], y)
        if n == k:  # k1 = k2: every step carries a loss, no padding copy needed
            dlogits = dnew
        else:
            dlogits = np.zeros_like(logits)
            dlogits[n - k :] = dnew
        dstate = None
        for a, b in reversed(chunks):
            dstate = self.model.backward(dlogits[a:b], dstate)
        if self.model.pending():
            raise RuntimeError("the model's cache stacks are not empty after backward.")
        params = self.model.parameters()
        norm = clip_grad_norm(params, self.clip) if self.clip else _grad_norm(params)
        if not math.isfinite(loss) or not math.isfinite(norm):
            raise FloatingPointError(
                f"non-finite loss {loss} or gradient norm {norm} at step {self.step + 1}; "
                "lower the learning rate or clip the gradients."
            )
        self.optimizer.step()
        self.state = state
        self.hist_x = full[cut:]
        self.hist_state = next_hist_state
        self.step += 1
        return loss, norm

    # -- the loop -----------------------------------------------------------------
    @property
    def stop_requested(self) -> bool:
        """True once :meth:`request_stop` was called."""
        return self._stop_requested

    def request_stop(self) -> None:
        """Ask the loop to stop after the current window (e.g. from a SIGINT handler)."""
        self._stop_requested = True

    def fit(
        self,
        epochs: int,
        max_steps: int | None = None,
        callback: Callable[[Progress], None] | None = None,
        on_checkpoint: Callable[[Trainer], object] | None = None,
        checkpoint_every: int = 0,
    ) -> None:
        """Train until ``epochs`` epochs (counted from 0) or ``max_steps`` optimizer steps."""
        report = callback or (lambda p: None)
        tokens, t0 = 0, time.perf_counter()
        while self.batcher.epoch < epochs and not self._done(max_steps):
            epoch = self.batcher.epoch
            for w in self.batcher:
                loss, norm = self.train_window(w.x, w.y, w.reset)
                tokens += w.x.size
                rate = tokens / max(time.perf_counter() - t0, 1e-9)
                lr = float(self.optimizer.lr)
                report(
                    Progress(
                        "step",
                        self.step,
                        epoch,
                        w.index,
                        len(self.batcher),
                        train_loss=loss,
                        lr=lr,
                        tokens_per_s=rate,
                        grad_norm=norm,
                    )
                )
                self._log(
                    {
                        "step": self.step,
                        "epoch": epoch,
                        "train_loss": loss,
                        "lr": lr,
                        "tokens_per_s": rate,
                        "grad_norm": norm,
                    }
                )
                end_of_epoch = self.batcher.position >= len(self.batcher)
                if (self.eval_every and self.step % self.eval_every == 0) or end_of_epoch:
                    self._evaluate(report, epoch, w.index)
                by_time = self.schedule_per_step or end_of_epoch
                if self.scheduler is not None and not self._on_plateau and by_time:
                    self.scheduler.step()
                if on_checkpoint and checkpoint_every and self.step % checkpoint_every == 0:
                    on_checkpoint(self)
                if self._done(max_steps):
                    break
        report(Progress("done", self.step, self.batcher.epoch, 0, len(self.batcher)))

    def _done(self, max_steps: int | None) -> bool:
        return (
            self._stop_requested
            or self.stopped_early
            or (max_steps is not None and self.step >= max_steps)
        )

    def _evaluate(self, report: Callable[[Progress], None], epoch: int, window: int) -> None:
        if self.valid_ids is None:
            return
        v = evaluate_lm(self.model, self.valid_ids, self.batcher.batch_size, self.k1)
        self.last_eval = (self.step, v)
        if self._on_plateau:
            self.scheduler.step(v)
        if self.best_valid is None or v < self.best_valid:
            self.best_valid, self.bad_evals = v, 0
        else:
            self.bad_evals += 1
            if self.patience is not None and self.bad_evals >= self.patience:
                self.stopped_early = True
        report(
            Progress(
                "eval",
                self.step,
                epoch,
                window,
                len(self.batcher),
                valid_loss=v,
                lr=float(self.optimizer.lr),
            )
        )
        self._log({"step": self.step, "epoch": epoch, "valid_loss": v})

    def _log(self, record: dict[str, Any]) -> None:
        if self.metrics_path is None:
            return
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    # -- checkpoint state -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit: counters, carried states, data position."""
        return {
            "step": self.step,
            "best_valid": self.best_valid,
            "bad_evals": self.bad_evals,
            "stopped_early": self.stopped_early,
            "state": _as_list(self.state),
            "hist_x": self.hist_x,
            "hist_state": _as_list(self.hist_state),
            "batcher": self.batcher.state_dict(),
        }

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (arrays included)."""
        self.batcher.load_state_dict(sd["batcher"])
        self.step = int(sd["step"])
        self.best_valid = sd["best_valid"]
        self.bad_evals = int(sd["bad_evals"])
        self.stopped_early = bool(sd["stopped_early"])
        self.state = _from_list(sd["state"])
        self.hist_x = np.asarray(sd["hist_x"], dtype=np.int64)
        self.hist_state = _from_list(sd["hist_state"])


def _grad_norm(params: list[Any]) -> float:
    return float(np.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2)) for p in params)))


def _as_list(state: Any) -> list[np.ndarray]:
    return list(state) if isinstance(state, tuple) else [state]


def _from_list(parts: list[np.ndarray]) -> Any:
    return tuple(np.array(p) for p in parts) if len(parts) == 2 else np.array(parts[0])
