"""Figures as PNG files: gradient flow through time, learning curves, forecasts.

matplotlib is optional (``pip install rnnkit[plot]``) and imported only when a figure
is drawn. The object-oriented API (``Figure`` + the Agg canvas) is used, never
``pyplot``: no global state, no display needed, safe in threads and tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "new_figure",
    "plot_curves",
    "plot_forecast",
    "plot_gradient_flow",
    "save_figure",
]

COLORS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
# Baselines in a forecast plot, in order (the forecast itself is tab:blue).
BASELINE_COLORS = ["tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:gray"]


def _matplotlib() -> tuple[Any, Any]:
    """Import matplotlib lazily; return (Figure, FigureCanvasAgg)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "Plotting needs matplotlib, which is not installed. "
            "Install it with: pip install 'rnnkit[plot]'"
        ) from None
    return Figure, FigureCanvasAgg


def new_figure(
    nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (7.0, 4.0)
) -> tuple[Any, np.ndarray]:
    """A matplotlib Figure with an (nrows, ncols) array of axes, not tied to any display."""
    figure_cls, canvas_cls = _matplotlib()
    fig = figure_cls(figsize=size, layout="constrained")
    canvas_cls(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG (parent folders created); return the path."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ValueError(f"figures are written as PNG; got {str(p)!r}. Use a .png file name.")
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, format="png", dpi=dpi, metadata={"Software": None})
    return p


def _color(label: str) -> str | None:
    for cell, color in COLORS.items():
        if label.lower().startswith(cell):
            return color
    return None


def plot_gradient_flow(
    path: str | os.PathLike[str],
    curves: Mapping[str, np.ndarray],
    *,
    cell_curves: Mapping[str, np.ndarray] | None = None,
    title: str = "Gradient flow through time",
    relative: bool = False,
    ax: Any = None,
) -> Path | None:
    """Plot ‖∂L/∂h_t‖ against t on a log scale, one line per label, (GF-2).

    Parameters
    ----------
    path : the PNG to write (ignored when ``ax`` is given)
    curves : label -> (T,) norms of ∂L/∂h_t, e.g. ``flow.dh_norm[-1, 0]``
    cell_curves : label -> (T,) norms of ∂L/∂c_t (LSTM), drawn dashed
    relative : divide each curve by its value at t = T
    ax : draw into this matplotlib Axes instead of a new figure (then nothing is written)

    Returns
    -------
    The path written, or None when drawing into ``ax``.
    """
    fig = None
    if ax is None:
        fig, axes = new_figure()
        ax = axes[0, 0]
    every = [(k, v, "-") for k, v in curves.items()]
    every += [(k, v, "--") for k, v in (cell_curves or {}).items()]
    for label, values, style in every:
        v = np.asarray(values, dtype=np.float64)
        if relative and v.size and v[-1] > 0:
            v = v / v[-1]
        v = np.where(v > 0, v, np.nan)  # a log axis cannot show zeros
        t = np.arange(1, v.size + 1)
        ax.plot(t, v, style, label=label, color=_color(label), linewidth=1.4)
    ax.set_yscale("log")
    ax.set_xlabel("time step t (the loss is at t = T)")
    ax.set_ylabel("‖∂L/∂h_t‖ / ‖∂L/∂h_T‖" if relative else "‖∂L/∂h_t‖ (batch mean)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if every:
        ax.legend(fontsize=8)
    return None if fig is None else save_figure(fig, path)


def plot_curves(
    path: str | os.PathLike[str],
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logy: bool = True,
    hline: float | None = None,
    ax: Any = None,
) -> Path | None:
    """Plot ``label -> (x, y)`` curves (learning curves); ``hline`` draws a dotted threshold."""
    fig = None
    if ax is None:
        fig, axes = new_figure()
        ax = axes[0, 0]
    for label, (x, y) in curves.items():
        ax.plot(np.asarray(x), np.asarray(y, dtype=np.float64), label=label, color=_color(label))
    if hline is not None:
        ax.axhline(hline, color="black", linestyle=":", linewidth=1)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    return None if fig is None else save_figure(fig, path)


def plot_forecast(
    path: str | os.PathLike[str],
    history: np.ndarray,
    forecast: np.ndarray,
    *,
    actual: np.ndarray | None = None,
    interval: tuple[np.ndarray, np.ndarray] | None = None,
    baselines: Mapping[str, np.ndarray] | None = None,
    dates: Sequence[str] | None = None,
    title: str = "Forecast",
    ax: Any = None,
) -> Path | None:
    """Plot the history, the forecast (with its interval), baselines and the actual values.

    Parameters
    ----------
    history : (n,) values up to the forecast origin
    forecast : (H,) the forecast of the next H values
    actual : (H,) what happened, when known (a backtest)
    interval : (lower (H,), upper (H,)) prediction interval
    baselines : label -> (H,) other forecasts (naive, seasonal naive), drawn thin, coloured
        in the order of :data:`BASELINE_COLORS`
    dates : n + H labels for the x axis (history then forecast); default indices
    """
    fig = None
    if ax is None:
        fig, axes = new_figure(size=(8.0, 4.0))
        ax = axes[0, 0]
    history = np.asarray(history, dtype=np.float64)
    forecast = np.asarray(forecast, dtype=np.float64)
    n, horizon = history.size, forecast.size
    th, tf = np.arange(n), np.arange(n, n + horizon)
    ax.plot(th, history, color="black", linewidth=1.0, label="history")
    if actual is not None:
        ax.plot(
            tf,
            np.asarray(actual, dtype=np.float64),
            color="black",
            linestyle="--",
            marker=".",
            linewidth=1.0,
            label="actual",
        )
    for (label, values), color in zip((baselines or {}).items(), BASELINE_COLORS, strict=False):
        ax.plot(tf, np.asarray(values, dtype=np.float64), color=color, linewidth=1.0, alpha=0.8,
                label=label)  # fmt: skip
    ax.plot(tf, forecast, color="tab:blue", marker=".", linewidth=1.6, label="forecast")
    if interval is not None:
        ax.fill_between(
            tf, interval[0], interval[1], color="tab:blue", alpha=0.2, label="prediction interval"
        )
    if dates is not None and len(dates) == n + horizon:
        ticks = np.linspace(0, n + horizon - 1, num=min(6, n + horizon)).round().astype(int)
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(dates[i]) for i in ticks], fontsize=8)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return None if fig is None else save_figure(fig, path)
