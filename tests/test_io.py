"""Tests for rnnkit.io: safetensors, atomic writes, checkpoints and RNG state."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from rnnkit.io import (
    FORMAT_VERSION,
    atomic_write,
    atomic_write_bytes,
    decode_safetensors,
    encode_safetensors,
    load_arrays,
    load_checkpoint,
    load_checkpoint_meta,
    load_safetensors,
    rng_from_state,
    rng_state,
    save_arrays,
    save_checkpoint,
)
from rnnkit.io import checkpoint as checkpoint_module

# -- safetensors: the format, from the specification --------------------------------------


def _file(header: dict | bytes, buffer: bytes = b"") -> bytes:
    """Hand-build a safetensors file: u64 LE header length, JSON header, byte buffer."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + buffer


def test_reads_a_hand_built_file() -> None:
    header = {
        "__metadata__": {"format": "pt"},
        "b": {"dtype": "I64", "shape": [2], "data_offsets": [8, 24]},
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "s": {"dtype": "U8", "shape": [], "data_offsets": [24, 25]},
    }
    buffer = (
        b"\x00\x00\x80\x3f\x00\x00\x00\xc0"  # float32 1.0, -2.0
        + b"\x03\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"  # int64 3, -1
        + b"\x07"  # uint8 7, 0-d
    )
    arrays, meta = decode_safetensors(_file(header, buffer) + b"", "hand-built")
    assert meta == {"format": "pt"}
    assert arrays["a"].dtype == np.float32
    assert arrays["a"].tolist() == [1.0, -2.0]
    assert arrays["b"].dtype == np.int64
    assert arrays["b"].tolist() == [3, -1]
    assert arrays["s"].shape == ()
    assert int(arrays["s"]) == 7
    # Header padded with spaces (as the reference writer does) is accepted.
    padded = json.dumps(header).encode() + b"    "
    assert decode_safetensors(_file(padded, buffer))[0]["b"].tolist() == [3, -1]


def test_writes_the_specified_bytes() -> None:
    blob = encode_safetensors(
        {"w": np.array([1.0, -2.0], dtype=np.float32), "n": np.array([3], dtype=np.int64)}
    )
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0  # buffer starts 8-aligned
    header = json.loads(blob[8 : 8 + n])
    assert header == {
        "n": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]},  # larger items first
        "w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
    }
    assert blob[8 + n :] == b"\x03" + b"\x00" * 7 + b"\x00\x00\x80\x3f\x00\x00\x00\xc0"


ROUND_TRIP = {
    "f32": np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5,
    "f64": np.random.default_rng(0).normal(size=(2, 3, 2)),
    "f16": np.array([0.5, -1.25], dtype=np.float16),
    "i64": np.array([-(2**62), 0, 2**62], dtype=np.int64),
    "i32": np.array([[-1, 2]], dtype=np.int32),
    "u8": np.array([0, 255, 17], dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "scalar": np.array(3.25),
    "empty": np.zeros((0,), dtype=np.float32),
    "empty2": np.zeros((3, 0, 2), dtype=np.int64),
    "big_endian": np.array([1.5, 2.5], dtype=">f8"),
    "transposed": np.arange(6, dtype=np.float64).reshape(2, 3).T,
}


def test_round_trip_every_dtype_and_edge_shape(tmp_path: Path) -> None:
    path = tmp_path / "a.safetensors"
    save_arrays(path, ROUND_TRIP, {"note": "ünïcode", "n": "3"})
    arrays, meta = load_safetensors(path)
    assert meta == {"note": "ünïcode", "n": "3"}
    assert set(arrays) == set(ROUND_TRIP)
    for name, want in ROUND_TRIP.items():
        got = arrays[name]
        assert got.shape == want.shape, name
        assert got.dtype == want.dtype.newbyteorder("="), name
        np.testing.assert_array_equal(got, want)
        assert got.flags.writeable
        assert got.flags.c_contiguous
    assert load_arrays(path).keys() == arrays.keys()
    assert load_safetensors(str(path))[1] == meta
    save_arrays(path, {})  # no arrays at all is a valid file
    assert load_safetensors(path) == ({}, {})


def test_save_refuses_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "a.safetensors"
    with pytest.raises(TypeError, match="dtype object"):
        save_arrays(path, {"x": np.array([None])})
    with pytest.raises(TypeError, match="dtype complex128"):
        save_arrays(path, {"x": np.zeros(2, dtype=complex)})
    with pytest.raises(TypeError, match="must be a NumPy array; got list"):
        save_arrays(path, {"x": [1.0]})  # type: ignore[dict-item]
    for name in ("", "__metadata__", 3):
        with pytest.raises(ValueError, match="Array names must be non-empty"):
            save_arrays(path, {name: np.zeros(1)})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="`metadata` must be a dict of str -> str"):
        save_arrays(path, {}, {"step": 3})  # type: ignore[dict-item]
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


GOOD_HEADER = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
GOOD_BUFFER = bytes(8)

MALFORMED = {
    "shorter than 8 bytes": (b"\x05\x00\x00", "shorter than the 8-byte header length"),
    "empty file": (b"", "it is 0 bytes long"),
    "header beyond file": (struct.pack("<Q", 100) + b"{}", "header length is 100 bytes but only 2"),
    "huge header length": (
        struct.pack("<Q", 2**63) + b"{}",
        "header length is 9223372036854775808",
    ),
    "header not utf-8": (_file(b'{"\xff": 1}'), "header is not UTF-8"),
    "header not json": (_file(b"{not json}"), "header is not valid JSON"),
    "header not object": (_file(b"[1, 2]"), "must be a JSON object; got list"),
    "duplicate key": (
        _file(b'{"a": {"dtype": "U8", "shape": [], "data_offsets": [0, 1]}, "a": 1}', b"\x00"),
        "duplicate key 'a'",
    ),
    "bad metadata": (_file({"__metadata__": {"k": 1}}), "'__metadata__' must be an object"),
    "entry not object": (_file({"a": [1, 2]}), "tensor 'a' must be an object with keys"),
    "entry extra key": (
        _file({"a": {**GOOD_HEADER["a"], "extra": 1}}, GOOD_BUFFER),
        "tensor 'a' must be an object with keys",
    ),
    "unknown dtype": (
        _file({"a": {"dtype": "X99", "shape": [2], "data_offsets": [0, 8]}}, GOOD_BUFFER),
        "unknown or unsupported dtype 'X99'",
    ),
    "bfloat16": (
        _file({"a": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}, GOOD_BUFFER),
        "unknown or unsupported dtype 'BF16'",
    ),
    "negative dim": (
        _file({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, GOOD_BUFFER),
        "has shape \\[-2\\]",
    ),
    "bool dim": (
        _file({"a": {"dtype": "U8", "shape": [True], "data_offsets": [0, 1]}}, b"\x00"),
        "has shape \\[True\\]",
    ),
    "shape/offset mismatch": (
        _file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, GOOD_BUFFER),
        "needs 12 bytes; its data_offsets \\[0, 8\\] span 8",
    ),
    "hostile huge shape": (
        _file({"a": {"dtype": "F64", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, bytes(8)),
        "needs 9671406556917033397649408 bytes",
    ),
    "offsets reversed": (
        _file({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, GOOD_BUFFER),
        "with 0 <= begin <= end",
    ),
    "offsets not a pair": (
        _file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, GOOD_BUFFER),
        "expected \\[begin, end\\]",
    ),
    "overlapping": (
        _file(
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            bytes(12),
        ),
        "tensor 'b' at \\[4, 12\\) overlaps the previous tensor",
    ),
    "gap": (
        _file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)),
        "gap at bytes \\[0, 4\\)",
    ),
    "out of bounds": (
        _file({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, GOOD_BUFFER),
        "ends at byte 16 of the data buffer, which has only 8 bytes",
    ),
    "truncated data": (_file(GOOD_HEADER, GOOD_BUFFER[:5]), "which has only 5 bytes"),
    "trailing garbage": (_file(GOOD_HEADER, GOOD_BUFFER + b"junk"), "4 bytes of trailing data"),
    "garbage without tensors": (_file({}, b"x"), "1 bytes of trailing data"),
    "bool not 0/1": (
        _file({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x02"),
        "BOOL holds bytes other than 0 and 1",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_are_refused(tmp_path: Path, case: str) -> None:
    blob, reason = MALFORMED[case]
    path = tmp_path / f"{case.replace(' ', '_').replace('/', '_')}.safetensors"
    path.write_bytes(blob)
    with pytest.raises(
        ValueError, match=rf"{path.name} is not a valid safetensors file: .*{reason}"
    ):
        load_arrays(path)


def test_truncation_anywhere_is_refused(tmp_path: Path) -> None:
    blob = encode_safetensors({"a": np.arange(5.0), "b": np.zeros((2, 2), np.int32)})
    for cut in range(len(blob)):
        with pytest.raises(ValueError, match="not a valid safetensors file"):
            decode_safetensors(blob[:cut])


def test_load_refuses_missing_and_non_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'.*nope\.safetensors' does not exist"):
        load_arrays(tmp_path / "nope.safetensors")
    with pytest.raises(ValueError, match="is not a regular file"):
        load_arrays(tmp_path)


# -- atomic writes --------------------------------------------------------------------------


def test_atomic_write_replaces_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"one")
    assert path.read_bytes() == b"one"
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_atomic_write_failure_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def write_half() -> None:
        with atomic_write(path) as f:
            f.write(b"half of the new con")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_half()
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]

    def failing_fsync(fd: int) -> None:
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="fsync failed"):
        save_arrays(path, {"x": np.ones(3)})
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_atomic_write_failed_rename_keeps_the_old_arrays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.safetensors"
    save_arrays(path, {"x": np.ones(3)})

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        save_arrays(path, {"x": np.zeros(3)})
    monkeypatch.undo()
    np.testing.assert_array_equal(load_arrays(path)["x"], np.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors"]


def test_atomic_write_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"does not exist\. Create it first"):
        atomic_write_bytes(tmp_path / "no" / "f.bin", b"x")
    with pytest.raises(ValueError, match="it is a directory"):
        atomic_write_bytes(tmp_path, b"x")
    with pytest.raises(TypeError, match="`data` must be bytes; got str"):
        atomic_write_bytes(tmp_path / "f.bin", "x")  # type: ignore[arg-type]


# -- RNG state ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"])
def test_rng_state_round_trips_through_json(name: str) -> None:
    rng = np.random.Generator(getattr(np.random, name)(1234))
    rng.normal(size=5)
    rng.integers(0, 10, size=1, dtype=np.uint32)  # leaves a buffered half word
    state = json.loads(json.dumps(rng_state(rng)))
    want = (rng.normal(size=4), rng.integers(0, 2**31, size=3), rng.random())
    other = rng_from_state(state)
    got = (other.normal(size=4), other.integers(0, 2**31, size=3), other.random())
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[2] == want[2]


def test_rng_state_errors() -> None:
    with pytest.raises(TypeError, match=r"must be a np\.random\.Generator"):
        rng_state(np.random.RandomState(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'bit_generator' key"):
        rng_from_state({"state": 1})
    with pytest.raises(ValueError, match="must be one of"):
        rng_from_state({"bit_generator": "Evil"})
    state = rng_state(np.random.default_rng(0))
    with pytest.raises(ValueError, match="not a valid PCG64 state"):
        rng_from_state({**state, "state": {"state": "x"}})


# -- checkpoints ----------------------------------------------------------------------------


def _arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "model.weight": rng.normal(size=(4, 3)).astype(np.float32),
        "model.bias": rng.normal(size=(4,)).astype(np.float32),
        "optim.step": np.array(seed, dtype=np.int64),
        "state.h": np.zeros((0, 2)),
    }


def _meta(step: int) -> dict:
    return {
        "step": step,
        "config": {"hidden_size": 8, "layers": [1, 2], "name": "lstm", "dropout": 0.1},
        "vocab": {"kind": "char", "chars": ["\n", "a", "é"], "unk": None},
        "rng": rng_state(np.random.default_rng(step)),
        "data": {"epoch": 1, "position": 17},
        "flag": True,
        "lr": 1e-3 / 3,
    }


def _assert_loads(directory: Path, seed: int) -> None:
    arrays, meta = load_checkpoint(directory)
    want = _arrays(seed)
    assert arrays.keys() == want.keys()
    for k, v in want.items():
        assert arrays[k].dtype == v.dtype
        np.testing.assert_array_equal(arrays[k], v)
    assert meta == _meta(seed)


def test_checkpoint_round_trip_and_overwrite(tmp_path: Path) -> None:
    d = tmp_path / "runs" / "ckpt"
    assert save_checkpoint(d, _arrays(1), _meta(1)) == d
    _assert_loads(d, 1)
    assert sorted(p.name for p in d.iterdir()) == ["checkpoint.json", "model.safetensors"]
    doc = json.loads((d / "checkpoint.json").read_text())
    assert doc["format"] == FORMAT_VERSION == "rnnkit-checkpoint/1"
    assert doc["meta"]["rng"]["state"]["state"] > 2**64  # big ints kept exactly
    save_checkpoint(str(d), _arrays(2), _meta(2))
    _assert_loads(d, 2)
    assert sorted(p.name for p in d.parent.iterdir()) == ["ckpt"]  # no leftovers
    empty = tmp_path / "empty"
    empty.mkdir()
    save_checkpoint(empty, _arrays(3), _meta(3))  # an existing empty directory is fine
    _assert_loads(empty, 3)


def test_failure_while_writing_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "ckpt"
    save_checkpoint(d, _arrays(1), _meta(1))
    real_write = checkpoint_module._fsync_write

    def write_then_die(path: Path, data: bytes) -> None:
        if path.name == "checkpoint.json":  # arrays written, description not yet
            path.write_bytes(data[: len(data) // 2])
            raise KeyboardInterrupt
        real_write(path, data)

    monkeypatch.setattr(checkpoint_module, "_fsync_write", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(d, _arrays(2), _meta(2))
    _assert_loads(d, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_failure_during_the_swap_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "ckpt"
    save_checkpoint(d, _arrays(1), _meta(1))
    real_replace = os.replace

    def replace(src: object, dst: object) -> None:
        if Path(src).name.startswith("ckpt.tmp-"):  # the new checkpoint moving in
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="rename failed"):
        save_checkpoint(d, _arrays(2), _meta(2))
    monkeypatch.undo()
    _assert_loads(d, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_crash_between_the_renames_is_recovered(tmp_path: Path) -> None:
    d = tmp_path / "ckpt"
    save_checkpoint(d, _arrays(1), _meta(1))
    # The state a crash leaves after `ckpt -> ckpt.old` and before `tmp -> ckpt`.
    d.rename(tmp_path / "ckpt.old")
    (tmp_path / f"ckpt.tmp-{os.getpid()}").mkdir()
    _assert_loads(d, 1)  # falls back to ckpt.old
    save_checkpoint(d, _arrays(2), _meta(2))
    _assert_loads(d, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_save_never_clobbers_other_files(tmp_path: Path) -> None:
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("precious")
    with pytest.raises(ValueError, match=r"it holds files other than model\.safetensors"):
        save_checkpoint(d, _arrays(1), _meta(1))
    assert (d / "notes.txt").read_text() == "precious"
    (tmp_path / "ckpt.old").mkdir()
    (tmp_path / "ckpt.old" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match=r"previous-checkpoint directory .* holds other files"):
        save_checkpoint(tmp_path / "ckpt", _arrays(1), _meta(1))
    assert (tmp_path / "ckpt.old" / "thesis.tex").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        save_checkpoint(tmp_path / "file", _arrays(1), _meta(1))


@pytest.mark.parametrize(
    ("meta", "error", "message"),
    [
        ({"shape": (2, 3)}, TypeError, r"`meta\['shape'\]` is a tuple"),
        ({"lr": np.float64(0.1)}, TypeError, r"`meta\['lr'\]` is a float64.*\.item\(\)"),
        ({"a": [1, {"b": float("nan")}]}, ValueError, r"`meta\['a'\]\[1\]\['b'\]` is nan"),
        ({"x": {1: "one"}}, TypeError, r"`meta\['x'\]` has key 1 of type int"),
        ({"w": np.zeros(2)}, TypeError, "arrays go in `arrays`"),
    ],
)
def test_meta_must_round_trip_exactly(
    tmp_path: Path, meta: dict, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        save_checkpoint(tmp_path / "ckpt", _arrays(1), meta)
    assert list(tmp_path.iterdir()) == []


def _corrupt_json(d: Path, doc: dict) -> None:
    (d / "checkpoint.json").write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "case",
    [
        "missing directory",
        "a file",
        "missing json",
        "bad json",
        "foreign json",
        "wrong version",
        "extra field",
        "missing arrays",
        "flipped byte",
        "truncated arrays",
        "arrays from another save",
    ],
)
def test_corrupt_checkpoints_are_refused(tmp_path: Path, case: str) -> None:
    d = tmp_path / "ckpt"
    save_checkpoint(d, _arrays(1), _meta(1))
    doc = json.loads((d / "checkpoint.json").read_text())
    st = d / "model.safetensors"
    expected = {
        "missing directory": "does not exist",
        "a file": "is not a directory",
        "missing json": "checkpoint.json is missing",
        "bad json": "checkpoint.json is not valid JSON",
        "foreign json": "has no 'format' field",
        "wrong version": "its format is 'rnnkit-checkpoint/0'; this version of rnnkit reads",
        "extra field": "must have exactly the fields",
        "missing arrays": "model.safetensors is missing",
        "flipped byte": "model.safetensors has sha256 [0-9a-f]+ but checkpoint.json records",
        "truncated arrays": "model.safetensors is [0-9]+ bytes but checkpoint.json records",
        "arrays from another save": "has sha256",
    }[case]
    target = d
    if case == "missing directory":
        target = tmp_path / "other"
    elif case == "a file":
        target = st
    elif case == "missing json":
        (d / "checkpoint.json").unlink()
    elif case == "bad json":
        (d / "checkpoint.json").write_text('{"format": ')
    elif case == "foreign json":
        _corrupt_json(d, {"model_type": "gpt2"})
    elif case == "wrong version":
        _corrupt_json(d, {**doc, "format": "rnnkit-checkpoint/0"})
    elif case == "extra field":
        _corrupt_json(d, {**doc, "surprise": 1})
    elif case == "missing arrays":
        st.unlink()
    elif case == "flipped byte":
        blob = bytearray(st.read_bytes())
        blob[-3] ^= 0x10
        st.write_bytes(bytes(blob))
    elif case == "truncated arrays":
        st.write_bytes(st.read_bytes()[:-4])
    elif case == "arrays from another save":
        other = tmp_path / "other"
        save_checkpoint(other, _arrays(2), _meta(2))  # same size, different bytes
        st.write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match=expected):
        load_checkpoint(target)
    if case in ("missing arrays", "flipped byte", "truncated arrays", "arrays from another save"):
        assert load_checkpoint_meta(target) == _meta(1)  # the description alone is intact
    else:
        with pytest.raises(ValueError, match=expected):
            load_checkpoint_meta(target)


def test_checkpoint_meta_alone_reads_the_old_copy_too(tmp_path: Path) -> None:
    d = tmp_path / "ckpt"
    save_checkpoint(d, _arrays(3), _meta(3))
    d.rename(tmp_path / "ckpt.old")  # a save interrupted between its two renames
    assert load_checkpoint_meta(d) == _meta(3) == load_checkpoint(d)[1]


def test_checkpoint_relative_and_trailing_slash_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert save_checkpoint("ckpt/", _arrays(1), _meta(1)) == tmp_path / "ckpt"
    save_checkpoint("sub/../ckpt", _arrays(2), _meta(2))
    _assert_loads(Path("ckpt"), 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
