"""``rnnkit plot KIND ...``: figures as PNG files.

Each kind is one line of :data:`KINDS`: ``kind -> (module, add-arguments function, run
function, one-line help)``, imported only when used, like the top-level commands. To
add a kind, write the two functions in any ``rnnkit.cli`` module and add its line.

- ``gradient-flow``: ‖∂L/∂h_t‖ for t = 1 … T (log scale) of the RNN, LSTM and GRU on the
  adding problem, either freshly initialised (``--cells``, the default) or trained
  (``--checkpoint`` of ``rnnkit train adding``, repeatable). See
  :mod:`rnnkit.diagnostics.gradient_flow` for the exact definition.
- ``attention``: the attention weights of a ``rnnkit train g2p`` model for one word, a
  heatmap of letters × predicted phonemes (``rnnkit plot attention --checkpoint DIR WORD
  --out FILE.png``; ``--checkpoint`` repeated: an ensemble's mean attention).
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np

KINDS: dict[str, tuple[str, str, str, str]] = {
    "gradient-flow": (
        "rnnkit.cli.plot",
        "add_gradient_flow_arguments",
        "plot_gradient_flow",
        "‖∂L/∂h_t‖ through time for RNN, LSTM and GRU (adding problem)",
    ),
    "attention": (
        "rnnkit.cli.g2p_decode",
        "add_plot_arguments",
        "plot",
        "g2p letters × phonemes map",
    ),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit plot``: one sub-command per kind."""
    sub = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, (module, add_name, _, help_) in KINDS.items():
        kp = sub.add_parser(kind, help=help_, description=help_)
        getattr(importlib.import_module(module), add_name)(kp)


def run(args: argparse.Namespace) -> int:
    """Dispatch ``rnnkit plot KIND`` to the kind's run function."""
    module, _, run_name, _ = KINDS[args.kind]
    try:
        return int(getattr(importlib.import_module(module), run_name)(args))
    except ModuleNotFoundError as exc:  # matplotlib missing: say how to install it
        raise ValueError(str(exc)) from None


def add_gradient_flow_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit plot gradient-flow``."""
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="an `rnnkit train adding` run (repeat to compare); default: fresh models",
    )
    p.add_argument("--cells", default="rnn,lstm,gru", help="fresh models: comma-separated cells")
    p.add_argument("--length", type=int, default=100, help="fresh models: T (default 100)")
    p.add_argument("--hidden", type=int, default=32, help="fresh models: hidden units")
    p.add_argument("--batch", type=int, default=100, help="adding sequences averaged over")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--relative", action="store_true", help="divide each curve by its value at T")
    p.add_argument("--json", help="also write the curves to this JSON file")


def _gradient_flow_models(args: argparse.Namespace) -> list[tuple[str, Any, int]]:
    """(label, model, T) for each curve."""
    from rnnkit.cli.adding import DEFAULTS, build_model, load_adding

    out = []
    if args.checkpoint:
        for path in args.checkpoint:
            model, meta = load_adding(path)
            cfg = meta["config"]
            steps = meta.get("steps", "?")
            out.append((f"{cfg['cell']} T={cfg['length']} ({steps} steps)", model, cfg["length"]))
        return out
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    unknown = sorted(set(cells) - {"rnn", "lstm", "gru"})
    if unknown or not cells:
        raise ValueError(f"--cells takes rnn, lstm and/or gru; got {args.cells!r}")
    if args.length < 2 or args.hidden < 1:
        raise ValueError(
            f"--length must be >= 2 and --hidden >= 1; got {args.length}, {args.hidden}"
        )
    for cell in cells:
        cfg = {**DEFAULTS, "cell": cell, "hidden": args.hidden, "seed": args.seed}
        out.append((f"{cell} (untrained)", build_model(cfg), args.length))
    return out


def plot_gradient_flow(args: argparse.Namespace) -> int:
    """Run ``rnnkit plot gradient-flow``."""
    from rnnkit.data.adding import adding_problem
    from rnnkit.diagnostics.gradient_flow import model_gradient_flow
    from rnnkit.diagnostics.plots import plot_gradient_flow as draw

    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1; got {args.batch}")
    curves: dict[str, np.ndarray] = {}
    cell_curves: dict[str, np.ndarray] = {}
    record: dict[str, Any] = {}
    for label, model, length in _gradient_flow_models(args):
        batch = adding_problem(args.batch, length, rng=args.seed + 1)
        loss, flow = model_gradient_flow(model, batch.x, batch.y)
        curves[label] = flow.dh_norm[-1, 0]  # the top layer, the one the head reads
        if flow.dc_norm is not None:
            cell_curves[label + " ∂L/∂c_t"] = flow.dc_norm[-1, 0]
        record[label] = {"T": length, "loss": loss, **flow.to_json()}
        ratio = flow.dh_norm[-1, 0, 0] / flow.dh_norm[-1, 0, -1]
        print(f"{label:<32} loss {loss:.4f}  ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ = {ratio:.3g}")
    lengths = {r["T"] for r in record.values()}
    title = "Gradient flow, adding problem" + (f", T={lengths.pop()}" if len(lengths) == 1 else "")
    path = draw(args.out, curves, cell_curves=cell_curves, title=title, relative=args.relative)
    print(f"plot {path}")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"curves {args.json}")
    return 0
