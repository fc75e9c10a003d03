"""House rules checked in CI: imports point down the layers, files stay small, import is fast."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "rnnkit"
# DESIGN.md's house, bottom to top: a module may import only from its own layer or below.
LAYERS = ["ops", "kernels", "nn", "optim", "models", "data", "train", "io", "diagnostics", "cli"]


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "rnnkit" or len(parts) < 2:
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        yield name, path


@pytest.mark.parametrize(("name", "path"), list(modules()), ids=lambda v: str(v))
def test_imports_point_down(name, path):
    own = layer_of(name)
    if own is None:
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            targets = [node.module]
        for t in targets:
            other = layer_of(t)
            assert other is None or other <= own, f"{name} imports {t}, a higher layer"


def test_no_source_file_is_huge():
    big = [(p.name, n) for _, p in modules() if (n := len(p.read_text().splitlines())) > 500]
    assert not big, f"files over 500 lines (split them): {big}"


def test_import_is_light():
    code = (
        "import sys, rnnkit, rnnkit.nn, rnnkit.ops; "
        "print('torch' in sys.modules, 'numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]  # numba is compiled lazily, torch never used
