"""PNG figures: valid files, the gradient-flow command, and a clear error without matplotlib."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.cli.adding import DEFAULTS, fit_adding, save_adding
from rnnkit.diagnostics import plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_figures_are_png_files(tmp_path):
    t = np.arange(30.0)
    paths = [
        plots.plot_gradient_flow(tmp_path / "gf.png", {"rnn": np.exp(-t[::-1]), "lstm": t * 0 + 1},
                                 cell_curves={"lstm c": t * 0 + 2}, relative=True),
        plots.plot_curves(tmp_path / "c.png", {"gru": (t, np.exp(-t / 5))}, xlabel="step",
                          ylabel="MSE", hline=0.01),
        plots.plot_forecast(tmp_path / "sub" / "f.png", np.sin(t), np.sin(t[:4]),
                            actual=np.cos(t[:4]), interval=(np.sin(t[:4]) - 1, np.sin(t[:4]) + 1),
                            baselines={"naive": np.zeros(4)}, dates=[str(i) for i in range(34)]),
    ]  # fmt: skip
    for p in paths:
        assert p.read_bytes()[:8] == PNG
        assert p.stat().st_size > 5000
    with pytest.raises(ValueError, match="PNG"):
        plots.plot_curves(tmp_path / "c.svg", {}, xlabel="x", ylabel="y")


def test_missing_matplotlib_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'rnnkit\[plot\]'"):
        plots.new_figure()
    rc = main(["plot", "gradient-flow", "--out", str(tmp_path / "g.png"), "--length", "4",
               "--hidden", "2", "--batch", "2"])  # fmt: skip
    assert rc == 2
    assert "pip install 'rnnkit[plot]'" in capsys.readouterr().err


def test_plot_gradient_flow_fresh_models(tmp_path, capsys):
    out, js = tmp_path / "flow.png", tmp_path / "flow.json"
    rc = main(["plot", "gradient-flow", "--out", str(out), "--length", "12", "--hidden", "4",
               "--batch", "5", "--json", str(js)])  # fmt: skip
    assert rc == 0
    assert out.read_bytes()[:8] == PNG
    record = json.loads(js.read_text())
    assert list(record) == ["rnn (untrained)", "lstm (untrained)", "gru (untrained)"]
    assert len(record["lstm (untrained)"]["dh_norm"][0][0]) == 12
    assert record["lstm (untrained)"]["dc_norm"] is not None
    assert record["gru (untrained)"]["dc_norm"] is None
    assert "‖∂L/∂h_1‖ / ‖∂L/∂h_T‖" in capsys.readouterr().out


def test_plot_gradient_flow_of_trained_checkpoints(tmp_path):
    runs = []
    for cell in ("rnn", "lstm"):
        cfg = {**DEFAULTS, "cell": cell, "length": 6, "hidden": 3, "steps": 2, "test_size": 4}
        save_adding(tmp_path / cell, fit_adding(cfg), cfg)
        runs += ["--checkpoint", str(tmp_path / cell)]
    js = tmp_path / "c.json"
    rc = main(["plot", "gradient-flow", "--out", str(tmp_path / "c.png"), *runs, "--json", str(js)])
    assert rc == 0
    assert list(json.loads(js.read_text())) == ["rnn T=6 (2 steps)", "lstm T=6 (2 steps)"]


def test_plot_errors(tmp_path, capsys):
    assert main(["plot", "gradient-flow", "--out", str(tmp_path / "x.png"), "--cells", "tanh"]) == 2
    assert "--cells takes rnn, lstm and/or gru" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plot", "nonsense"])
