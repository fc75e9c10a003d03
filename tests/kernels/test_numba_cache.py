"""The kernels' Numba cache is dropped when any of the kernels' sources changes."""

from __future__ import annotations

from pathlib import Path

from rnnkit.kernels import numba_cache


def make_sources(root: Path) -> Path:
    src = root / "src"
    src.mkdir()
    (src / "lstm_loops.py").write_text("def forward_chunk(): pass\n")
    (src / "lstm_serial.py").write_text("from lstm_loops import forward_chunk\n")
    return src


def make_cache(root: Path) -> tuple[Path, list[Path]]:
    cache = root / "cache"
    cache.mkdir()
    ours = [cache / f"lstm_serial.forward-48.py311.{ext}" for ext in ("nbi", "1.nbc")]
    for path in [*ours, cache / "other_module.f-3.py311.nbi"]:
        path.write_bytes(b"x")
    return cache, ours


def test_a_changed_source_in_another_file_drops_the_cached_kernels(tmp_path):
    src = make_sources(tmp_path)
    cache, ours = make_cache(tmp_path)
    assert numba_cache.refresh(cache, src)  # no stamp yet: written from unknown sources
    assert not any(path.exists() for path in ours)
    assert (cache / "other_module.f-3.py311.nbi").exists()  # not a module of the package
    stamp = (cache / numba_cache.STAMP_NAME).read_text()
    assert stamp == numba_cache.source_hash(src)

    for path in ours:  # compiled again, from these sources
        path.write_bytes(b"y")
    assert not numba_cache.refresh(cache, src)
    assert all(path.exists() for path in ours)

    (src / "lstm_loops.py").write_text("def forward_chunk(): return 1\n")  # the callee only
    assert numba_cache.refresh(cache, src)
    assert not any(path.exists() for path in ours)
    assert (cache / numba_cache.STAMP_NAME).read_text() == numba_cache.source_hash(src)


def test_the_stamp_covers_names_and_contents(tmp_path):
    src = make_sources(tmp_path)
    before = numba_cache.source_hash(src)
    (src / "lstm_serial.py").rename(src / "lstm_serial2.py")
    assert numba_cache.source_hash(src) != before


def test_the_package_cache_is_where_numba_puts_the_kernels():
    from rnnkit import kernels
    from rnnkit.kernels import microkernel

    assert kernels.backend().name == "numba"  # the first probe refreshes the cache
    where = numba_cache.cache_dir()
    assert where is not None
    assert where == Path(microkernel.packed_gemm._cache._cache_path)
    assert (where / numba_cache.STAMP_NAME).exists()  # the kernels have been probed here
