"""The ``rnnkit`` command. The only package that parses arguments or prints.

Subcommands live in their own modules and are imported only when used:

- ``rnnkit train [TASK] ...``: ``TRAIN_TASKS[TASK]`` provides ``add_train_arguments``,
  ``train`` and ``evaluate`` (TASK defaults to ``charlm``);
- ``rnnkit eval --checkpoint DIR``: dispatched to the task recorded in the checkpoint
  (``evaluate`` gets ``args.checkpoint`` and the list ``args.checkpoints``; several are
  allowed for the tasks of ``ENSEMBLE_TASKS``);
- other commands: ``COMMANDS[name]`` provides ``add_arguments`` and ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

__all__ = ["COMMANDS", "TRAIN_TASKS", "main"]

# task -> (module, one-line help)
TRAIN_TASKS: dict[str, tuple[str, str]] = {
    "charlm": ("rnnkit.cli.charlm", "character language model (default: tiny Shakespeare)"),
    "adding": ("rnnkit.cli.adding", "the adding problem (Hochreiter & Schmidhuber 1997)"),
    "forecast": ("rnnkit.cli.forecast", "time-series forecaster on one column of a CSV file"),
    "g2p": ("rnnkit.cli.g2p", "grapheme-to-phoneme on CMUdict, attention encoder-decoder"),
    "ptb": ("rnnkit.cli.ptb", "Penn Treebank word LM, Zaremba et al. 2014 presets"),
    "tagger": ("rnnkit.cli.tagger", "UPOS tagger on UD English EWT (word + char biLSTM)"),
}
# tasks whose `rnnkit eval` accepts several --checkpoint (evaluated as an ensemble)
ENSEMBLE_TASKS = ("g2p", "charlm")
# command -> (module, add-arguments function, run function, one-line help)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "forecast": ("rnnkit.cli.forecast", "add_arguments", "run", "forecast a CSV series"),
    "g2p": ("rnnkit.cli.g2p_decode", "add_arguments", "run", "pronounce words with a g2p model"),
    "plot": ("rnnkit.cli.plot", "add_arguments", "run", "figures: rnnkit plot KIND --help"),
    "tag": ("rnnkit.cli.tagger_decode", "add_tag_arguments", "tag", "UPOS-tag CoNLL-U or text"),
    "generate": (
        "rnnkit.cli.charlm",
        "add_generate_arguments",
        "generate",
        "sample text from a trained language model",
    ),
    "gradcheck": (
        "rnnkit.cli.gradcheck",
        "add_arguments",
        "run",
        "finite-difference check of every cell, printed as tables",
    ),
}


def _module(name: str) -> Any:
    return importlib.import_module(name)


def _split_task(argv: list[str]) -> tuple[str, list[str]]:
    """``train [TASK] flags...`` -> (TASK, flags); TASK defaults to charlm."""
    if argv and not argv[0].startswith("-"):
        return argv[0], argv[1:]
    return "charlm", argv


def _train(argv: list[str]) -> int:
    task, rest = _split_task(argv)
    if task not in TRAIN_TASKS:
        known = ", ".join(TRAIN_TASKS)
        message = f"unknown task {task!r}; choose one of: {known}"
        print(f"rnnkit train: error: {message}", file=sys.stderr)
        return 2
    module, help_ = TRAIN_TASKS[task]
    mod = _module(module)
    p = argparse.ArgumentParser(prog=f"rnnkit train {task}", description=help_)
    mod.add_train_arguments(p)
    args = p.parse_args(rest)
    args.task = task
    return mod.train(args)


def _eval(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="rnnkit eval", description="evaluate a checkpoint")
    p.add_argument(
        "--checkpoint",
        required=True,
        action="append",
        help="run directory or checkpoint folder; g2p and charlm: repeat it to evaluate an "
        "ensemble (the mean of the runs' predicted distributions)",
    )
    p.add_argument("--data", help="data file or directory to evaluate on")
    p.add_argument("--split", default=None, help="which split (task-specific; e.g. valid)")
    p.add_argument(
        "--streams",
        type=int,
        default=None,
        help="language models: score the text as N parallel streams whose state carries "
        "(charlm default: the run's batch size; ptb default 1; 1: every token sees all "
        "text before it)",
    )
    from rnnkit.cli.g2p_decode import add_beam_arguments, add_rescore_arguments

    add_beam_arguments(p)
    add_rescore_arguments(p)
    args = p.parse_args(argv)
    if args.streams is not None and args.streams < 1:
        raise ValueError(f"--streams must be >= 1; got {args.streams}.")
    tasks = [_checkpoint_task(path) for path in args.checkpoint]
    task = tasks[0]
    if len(tasks) > 1 and (task not in ENSEMBLE_TASKS or set(tasks) != {task}):
        raise ValueError(
            "several --checkpoint (an ensemble) work only for "
            f"{', '.join(ENSEMBLE_TASKS)} checkpoints, all of one task; got {', '.join(tasks)}."
        )
    if task != "g2p" and (args.rescore or args.rescore_weight is not None or args.rescore_union):
        raise ValueError(f"--rescore and its options are for g2p runs; this is {task}.")
    args.checkpoints, args.checkpoint = args.checkpoint, args.checkpoint[0]
    return _module(TRAIN_TASKS[task][0]).evaluate(args)


def _checkpoint_task(path: str) -> str:
    """The task recorded in the checkpoint at ``path`` (a run directory or checkpoint)."""
    from rnnkit.io.checkpoint import load_checkpoint_meta

    if os.path.isdir(os.path.join(path, "checkpoint")):
        path = os.path.join(path, "checkpoint")
    meta = load_checkpoint_meta(path)  # the arrays are read (and verified) by the task
    task = (meta.get("config") or {}).get("task", "charlm")
    if task not in TRAIN_TASKS:
        raise ValueError(f"checkpoint {path!r} is for task {task!r}, unknown to this rnnkit.")
    return task


def _top_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent networks from the equations up: train, sample, evaluate.",
        epilog="tasks for `rnnkit train TASK`: "
        + "; ".join(f"{k} ({v[1]})" for k, v in TRAIN_TASKS.items()),
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train a model: rnnkit train [TASK] --help", add_help=False)
    sub.add_parser("eval", help="evaluate a checkpoint", add_help=False)
    for name, (_, _, _, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rnnkit`` command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    top = _top_parser()
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "train":
            return _train(rest)
        if command == "eval":
            return _eval(rest)
        if command in COMMANDS:
            module, add_name, run_name, help_ = COMMANDS[command]
            mod = _module(module)
            p = argparse.ArgumentParser(prog=f"rnnkit {command}", description=help_)
            getattr(mod, add_name)(p)
            return getattr(mod, run_name)(p.parse_args(rest))
        top.parse_args(argv)  # prints the usage error and exits
        return 2
    except (ValueError, TypeError, OSError) as exc:
        if os.environ.get("RNNKIT_DEBUG"):
            raise
        print(f"rnnkit {command}: error: {exc}", file=sys.stderr)
        return 2
