"""``rnnkit gradcheck``: finite differences against every cell's hand-written BPTT, as tables."""

from __future__ import annotations

import argparse

from rnnkit.diagnostics.demo import gradcheck_all_cells

TOL = 1e-6


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``rnnkit gradcheck``."""
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Print one table per cell and the worst relative error; exit 1 if above 1e-6."""
    worst = 0.0
    for name, report in gradcheck_all_cells(seed=args.seed):
        print(f"== {name}")
        print(report)
        worst = max(worst, report.worst)
    verdict = "ok" if worst < TOL else "FAILED"
    print(f"worst relative error {worst:.2e} ({verdict}, tolerance {TOL:g})")
    return 0 if worst < TOL else 1
