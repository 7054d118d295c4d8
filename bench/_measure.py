"""A block of work or a command → its wall time, CPU time and peak memory, whole process tree included.

CPU and memory are read from /proc for every process of the tree (render workers are not our
direct children, so getrusage would miss them): `measured` for work done in this process,
`measured_command` for a command run as a user runs it, process start included.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class TreeSampler:
    """Peak summed RSS and CPU time of `root` (this process by default) and all its descendants,
    from /proc. Processes found outside the tree once are not read again: a scan must not steal a
    core from the build. `fresh`: count the root's CPU from zero (a process just started) instead
    of from the moment the sampler starts."""

    def __init__(self, root: int | None = None, *, every: float = 0.02, fresh: bool = False) -> None:
        self.root = os.getpid() if root is None else root
        self.every = every
        self.peak = 0
        self.foreign: set[int] = set()
        self.start: dict[int, int] = {} if fresh else _tree(self.root, self.foreign)[1]
        self.ticks: dict[int, int] = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu(self) -> float:
        used = sum(t - self.start.get(pid, 0) for pid, t in self.ticks.items())
        return used / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every)

    def _sample(self) -> None:
        rss, ticks = _tree(self.root, self.foreign)
        self.peak = max(self.peak, rss)
        self.ticks.update(ticks)


def _tree(root: int, foreign: set[int]) -> tuple[int, dict[int, int]]:
    """Summed RSS in bytes, and CPU ticks (user + system) per process, of root's tree; adds the
    processes found outside it to `foreign`."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    ticks: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in foreign:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parent[pid] = int(fields[1])
        rss[pid] = int(fields[21]) * page
        ticks[pid] = int(fields[11]) + int(fields[12])
    mine: dict[int, int] = {}
    total = 0
    for pid in parent:
        ancestor = pid
        while ancestor != root and ancestor in parent:
            ancestor = parent[ancestor]
        if ancestor == root:
            total += rss[pid]
            mine[pid] = ticks[pid]
        else:
            foreign.add(pid)
    return total, mine


@dataclass
class Result:
    label: str
    wall: float
    cpu: float
    peak: int
    pages: int
    size: int

    def line(self, reference: Result | None) -> str:
        text = (f"{self.label:<34} wall {self.wall:7.2f} s   cpu {self.cpu:7.2f} s   "
                f"peak {self.peak / 2**20:7.0f} MB   {self.pages:6d} pages "
                f"{self.size / 2**20:7.1f} MB")
        if reference:
            text += (f"   ×{self.wall / reference.wall:.3f} wall, "
                     f"×{self.peak / reference.peak:.3f} memory")
        return text


@contextmanager
def measured(label: str, sink: list[Result]) -> Iterator[Callable[[int, int], None]]:
    """Measures the block; it reports what it made with record(pages, bytes)."""
    out = {"pages": 0, "size": 0}

    def record(pages: int, size: int) -> None:
        out["pages"] += pages
        out["size"] += size

    t0 = time.perf_counter()
    with TreeSampler() as tree:
        yield record
    sink.append(Result(label, time.perf_counter() - t0, tree.cpu, tree.peak,
                       out["pages"], out["size"]))


@dataclass(frozen=True)
class Finished:
    code: int
    stdout: str
    stderr: str


def measured_command(label: str, command: Sequence[str], *, env: Mapping[str, str],
                     cwd: Path) -> tuple[Result, Finished]:
    """Runs the command and measures its process tree from its start to its exit. The CPU time
    is the larger of what /proc showed and what the kernel reports at exit for the command and
    the children it waited for: each misses a little (a worker's last ticks between two samples;
    the grandchildren nobody waited for)."""
    with open(os.devnull, "rb") as stdin, tempfile.TemporaryFile() as out, \
            tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        process = subprocess.Popen(list(command), stdin=stdin, stdout=out, stderr=err, env=dict(env),
                                   cwd=cwd)
        with TreeSampler(process.pid, fresh=True) as tree:
            _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - t0
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        finished = Finished(process.returncode, out.read().decode(), err.read().decode())
    cpu = max(tree.cpu, usage.ru_utime + usage.ru_stime)
    return Result(label, wall, cpu, tree.peak, 0, 0), finished
