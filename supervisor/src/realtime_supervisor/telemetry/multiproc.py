"""prometheus_client's multiprocess directory, kept as small as the set of live processes.

Every job process writes its own files (`counter_<pid>.db`, `histogram_<pid>.db`,
`gauge_<mode>_<pid>.db`); livekit never removes them, so a worker that served 10,000 calls would
merge 40,000 files per scrape. Here, in the worker's main process (the only reader):

1. `sweep` finds the processes that have files but no longer run (zombies count as dead: a job
   process livekit has not reaped yet writes nothing more).
2. Each dead process is folded: its counters, histograms and summaries are ADDED into one archive
   file per type (`counter_archive.db`, ...), in prometheus_client's own format, so the merge reads
   it like any process file and every total stays exact and monotonic; its `sum`, `min`, `max` and
   `mostrecent` gauges are combined the same way their mode merges them; its `all` and `live*`
   gauges are dropped (what a dead process measured is over). Then its files are deleted.
3. `families()` merges the remaining files, under the same lock as the fold, so a reader never
   sees a process both folded and still on disk (a double count), or neither (a counter going
   backwards, which Prometheus reads as a reset).

The file count then follows the live processes (plus at most one archive per type), whatever the
number of calls served. A pid reused between the liveness check and the fold is the one race left:
its new process would open the old file and keep counting into it; the fold runs a few ms after the
check, and Linux hands pids out in increasing order, so this needs a full wrap of the pid space.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["ARCHIVE", "MultiprocDir", "pid_alive", "prepare_multiproc_dir"]

ARCHIVE: Final = "archive"
# counter_123.db, histogram_123.db, summary_123.db, gauge_livesum_123.db, ...
_PROCESS_FILE: Final = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_(\d+)\.db$")
_ADDED: Final = frozenset({"counter", "histogram", "summary", "gauge_sum"})
_COMBINED: Final = {"gauge_max": max, "gauge_min": min}

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: str) -> threading.Lock:
    """One lock per directory in this process, however many objects read it."""
    key = os.path.realpath(path)
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs: it exists and is not a zombie (exited, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, someone else's
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS) or gone meanwhile: trust kill()
        return Path("/proc").is_dir() is False
    # "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def prepare_multiproc_dir(path: str | os.PathLike[str]) -> Path:
    """Create the directory if missing and delete its *.db files (a previous run's values).

    Call it in the worker's main process before any job process starts and before any metric is
    built there: a process keeps writing to the files it opened, deleted or not.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for db in directory.glob("*.db"):
        db.unlink(missing_ok=True)
    return directory


class MultiprocDir:
    """The directory seen from the worker's main process: sweep, fold, merge (thread-safe)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        alive: Callable[[int], bool] = pid_alive,
        own_pid: Callable[[], int] = os.getpid,
    ) -> None:
        self.path = os.fspath(path)
        self._alive = alive
        self._own_pid = own_pid
        self._lock = _lock_for(self.path)
        self.folded = 0  # processes folded by this object

    def _process_files(self) -> Iterator[tuple[str, int, str]]:
        for name in os.listdir(self.path):
            if match := _PROCESS_FILE.match(name):
                yield match.group(1), int(match.group(2)), os.path.join(self.path, name)

    def sweep(self) -> list[int]:
        """Fold every process that has files but no longer runs; return their pids."""
        with self._lock:
            files: dict[int, list[tuple[str, str]]] = {}
            for kind, pid, path in self._process_files():
                files.setdefault(pid, []).append((kind, path))
            me = self._own_pid()
            dead = sorted(pid for pid in files if pid != me and not self._alive(pid))
            for pid in dead:
                self._fold(files[pid])
            self.folded += len(dead)
            return dead

    def _fold(self, files: Iterable[tuple[str, str]]) -> None:
        for kind, path in files:
            if kind in _ADDED or kind in _COMBINED or kind == "gauge_mostrecent":
                with contextlib.suppress(FileNotFoundError):
                    self._into_archive(kind, path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _into_archive(self, kind: str, path: str) -> None:
        values = list(MmapedDict.read_all_values_from_file(path))  # type: ignore[no-untyped-call]
        if not values:
            return
        archive = MmapedDict(os.path.join(self.path, f"{kind}_{ARCHIVE}.db"))  # type: ignore[no-untyped-call]
        try:
            for key, value, timestamp, _ in values:
                old, old_ts = archive.read_value(key)  # type: ignore[no-untyped-call]
                new, new_ts = _combine(kind, old, old_ts, value, timestamp)
                archive.write_value(key, new, new_ts)  # type: ignore[no-untyped-call]
        finally:
            archive.close()  # type: ignore[no-untyped-call]

    def file_count(self) -> int:
        return sum(1 for name in os.listdir(self.path) if name.endswith(".db"))

    def families(self, pattern: str = "*.db") -> list[Metric]:
        """Merge the directory's files (matching `pattern`) as prometheus_client does."""
        with self._lock:
            paths = glob.glob(os.path.join(self.path, pattern))
            merged: Any = MultiProcessCollector.merge(paths, accumulate=True)  # type: ignore[no-untyped-call]
            return list(merged)


def _combine(
    kind: str, old: float, old_ts: float, value: float, timestamp: float
) -> tuple[float, float]:
    """The archive's new (value, timestamp) for one key, as the merge would combine the two."""
    if kind in _ADDED:
        return old + value, max(old_ts, timestamp)
    if kind == "gauge_mostrecent":
        return (value, timestamp) if timestamp >= old_ts else (old, old_ts)
    pick = _COMBINED[kind]
    # A key new to the archive reads (0.0, 0.0): a fresh key takes the value as it is.
    if old == 0.0 and old_ts == 0.0:
        return value, timestamp
    return pick(old, value), max(old_ts, timestamp)
