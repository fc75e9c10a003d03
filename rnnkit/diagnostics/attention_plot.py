"""Attention maps as PNG heatmaps: output steps (rows) × input steps (columns).

matplotlib is optional (``pip install rnnkit[plot]``) and imported only when drawing,
through :mod:`rnnkit.diagnostics.plots` (object-oriented API, no ``pyplot``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnkit.diagnostics.plots import new_figure, save_figure

__all__ = ["plot_attention"]


def plot_attention(
    weights: np.ndarray,
    inputs: Sequence[str],
    outputs: Sequence[str],
    path: str | os.PathLike[str],
    title: str = "",
) -> Path:
    """Draw ``weights`` (len(outputs), len(inputs)), each row an attention distribution.

    Parameters
    ----------
    weights : (T_out, S) array, rows summing to 1 (the α_t of (ATT-4))
    inputs : S labels for the columns (e.g. letters)
    outputs : T_out labels for the rows (e.g. phonemes)
    path : a .png file
    title : optional figure title

    Returns
    -------
    The path written.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape != (len(outputs), len(inputs)):
        raise ValueError(
            f"`weights` must have shape (len(outputs), len(inputs)) = "
            f"({len(outputs)}, {len(inputs)}); got {w.shape}."
        )
    fig, axes = new_figure(
        size=(1.0 + 0.45 * max(len(inputs), 2), 1.0 + 0.4 * max(len(outputs), 2))
    )
    ax = axes[0, 0]
    image = ax.imshow(w, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(inputs)), list(inputs))
    ax.set_yticks(range(len(outputs)), list(outputs))
    ax.set_xlabel("input")
    ax.set_ylabel("output")
    ax.xaxis.set_ticks_position("top")
    ax.xaxis.set_label_position("top")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.05, label="attention weight α")
    return save_figure(fig, path)
