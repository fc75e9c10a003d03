"""Run checkpoints refuse damaged or foreign files: truncation, flipped bytes, pickles."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import StreamBatcher
from rnnkit.io.run import build_model, load_run, save_run
from rnnkit.models import LanguageModel
from rnnkit.optim import Adam
from rnnkit.train import Trainer


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    model = LanguageModel(5, 2, 3, rng=0)
    trainer = Trainer(model, Adam(model.parameters()), StreamBatcher(np.arange(40) % 5, 2, 4))
    trainer.fit(1, max_steps=2)
    return save_run(tmp_path_factory.mktemp("run") / "ck", trainer, {"task": "charlm"}, {})


def copy_to(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_intact_checkpoint_loads(checkpoint):
    ck = load_run(checkpoint)
    assert build_model(ck).state_dict().keys() == LanguageModel(5, 2, 3).state_dict().keys()


@pytest.mark.parametrize("name", ["model.safetensors", "checkpoint.json"])
def test_truncated_at_any_byte_is_refused(checkpoint, tmp_path, name):
    data = (checkpoint / name).read_bytes()
    end = len(data.rstrip())  # cutting only trailing whitespace damages nothing
    step = max(1, end // 60)  # ~60 cut points spread over the file, plus the edges
    for cut in sorted({0, 1, 7, 8, end - 1, *range(0, end, step)}):
        d = copy_to(checkpoint, tmp_path / f"{name}-{cut}")
        (d / name).write_bytes(data[:cut])
        with pytest.raises(ValueError, match=str(d.name)):
            load_run(d)


def test_flipped_header_byte_is_refused(checkpoint, tmp_path):
    data = (checkpoint / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    for i in range(0, 8 + n):
        d = copy_to(checkpoint, tmp_path / f"flip-{i}")
        b = bytearray(data)
        b[i] ^= 0x20
        (d / "model.safetensors").write_bytes(bytes(b))
        with pytest.raises(ValueError, match=str(d.name)):
            load_run(d)


class _Trap:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_files_are_refused_and_never_executed(checkpoint, tmp_path):
    marker = tmp_path / "executed"
    trap = _Trap()
    trap.marker = str(marker)
    payload = pickle.dumps({"arrays": trap})
    for name in ("model.safetensors", "checkpoint.json"):
        d = copy_to(checkpoint, tmp_path / f"pickle-{name}")
        (d / name).write_bytes(payload)
        with pytest.raises(ValueError, match=d.name):
            load_run(d)
    assert not marker.exists()


def test_foreign_checkpoint_kind_is_refused(tmp_path):
    from rnnkit.io.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "other", {"w": np.zeros(2)}, {"kind": "something-else"})
    with pytest.raises(ValueError, match="not an rnnkit training run"):
        load_run(tmp_path / "other")
