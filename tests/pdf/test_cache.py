"""delivery.pdf.cache: rendered volumes on disk, bounded, least recently used first."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from delivery.errors import RenderError
from delivery.pdf.cache import VolumeCache

DAY = 86_400.0


def aged(cache: VolumeCache, key: str, days: float) -> None:
    stamp = time.time() - days * DAY
    os.utime(cache.path(key), (stamp, stamp))


def test_round_trip_and_touch(tmp_path: Path) -> None:
    cache = VolumeCache(tmp_path / "c", limit=10_000)
    assert cache.get("a" * 64) is None and not cache.touch("a" * 64) and cache.size("a" * 64) == 0
    assert cache.put("a" * 64, b"%PDF-1")
    assert cache.get("a" * 64) == b"%PDF-1" and cache.size("a" * 64) == 6
    aged(cache, "a" * 64, 3)
    assert cache.touch("a" * 64)
    assert time.time() - cache.path("a" * 64).stat().st_mtime < 60
    assert not list((tmp_path / "c").glob("*.tmp"))


def test_eviction_drops_the_least_recently_used_down_to_the_limit(tmp_path: Path) -> None:
    cache = VolumeCache(tmp_path, limit=250)
    for i, key in enumerate(["old", "older", "oldest", "new"]):
        cache.put(key, bytes(100))
        if key != "new":
            aged(cache, key, 2 + i)
    cache.get("oldest")  # a hit makes it recent again
    cache.evict()
    assert sorted(p.stem for p in tmp_path.glob("*.pdf")) == ["new", "oldest"]


def test_entries_used_within_the_grace_period_survive_eviction(tmp_path: Path) -> None:
    cache = VolumeCache(tmp_path, limit=0, grace=600)
    cache.put("recent", bytes(100))
    cache.put("stale", bytes(100))
    aged(cache, "stale", 1)
    cache.evict()
    assert [p.stem for p in tmp_path.glob("*.pdf")] == ["recent"]


def test_a_failed_write_is_reported_and_leaves_nothing(tmp_path: Path) -> None:
    cache = VolumeCache(tmp_path / "c", limit=10_000)
    shutil.rmtree(tmp_path / "c")
    assert not cache.put("k", b"data")
    assert not (tmp_path / "c").exists()


def test_an_unusable_folder_is_a_render_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RenderError, match="cache folder"):
        VolumeCache(tmp_path / "file" / "c", limit=1)


def test_writers_racing_on_one_key_never_show_a_reader_part_of_a_file(tmp_path: Path) -> None:
    cache = VolumeCache(tmp_path, limit=10**9)
    data = bytes(range(256)) * 4096  # 1 MB
    seen: list[int] = []
    stop = threading.Event()

    def write() -> None:
        for _ in range(20):
            assert cache.put("k", data)

    def read() -> None:
        while not stop.is_set():
            got = cache.get("k")
            if got is not None:
                seen.append(len(got))

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write) for _ in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    reader.join()
    assert seen and set(seen) == {len(data)}
    assert [p.name for p in tmp_path.iterdir()] == ["k.pdf"]
