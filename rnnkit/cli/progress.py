"""Progress display for long commands: a bar on a terminal, periodic plain lines otherwise."""

from __future__ import annotations

import math
import time
from typing import Any, TextIO

__all__ = ["ProgressPrinter"]


class ProgressPrinter:
    """Draw training progress: a one-line bar on a terminal, plain periodic lines otherwise."""

    def __init__(self, stream: TextIO, total_steps: int, every_s: float = 10.0) -> None:
        self.stream, self.total, self.every_s = stream, max(total_steps, 1), every_s
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last_print = 0.0
        self.loss: float | None = None
        self.open_line = False

    def update(self, p: Any) -> None:
        """Show one step or evaluation."""
        if p.kind == "step":
            self.loss = p.train_loss if self.loss is None else 0.9 * self.loss + 0.1 * p.train_loss
            line = (
                f"step {p.step}/{self.total} epoch {p.epoch} loss {self.loss:.4f} "
                f"lr {p.lr:.3g} |g| {p.grad_norm:.2f} {p.tokens_per_s:,.0f} tok/s"
            )
            if self.tty:
                frac = min(p.step / self.total, 1.0)
                bar = "#" * int(24 * frac) + "-" * (24 - int(24 * frac))
                self.stream.write(f"\r[{bar}] {line}\x1b[K")
                self.stream.flush()
                self.open_line = True
            elif time.monotonic() - self.last_print >= self.every_s or p.step == 1:
                self.last_print = time.monotonic()
                self.message(line)
        elif p.kind == "eval":
            v = p.valid_loss
            self.message(f"step {p.step}: valid loss {v:.4f} nats = {v / math.log(2):.4f} bits")

    def message(self, text: str) -> None:
        """Print a full line, below the bar if one is drawn."""
        if self.open_line:
            self.stream.write("\n")
            self.open_line = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.open_line:
            self.stream.write("\n")
            self.open_line = False
