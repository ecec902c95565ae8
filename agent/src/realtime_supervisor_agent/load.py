"""The worker's load: the highest of CPU, memory against the container limit, and calls.

livekit asks the worker for its load every 0.5 s and before answering each job request, reports
it to LiveKit (and as `lk_agents_worker_load`), and LiveKit stops dispatching calls to a worker
whose load reaches `load_threshold` (0.7 in production). livekit's default load is CPU only. A
realtime agent's calls cost little CPU (the model hears and speaks server-side) and 150-250 MiB
of memory each, so a CPU-only load keeps dispatching into a pod headed for an OOM kill, which
ends every call in it. `CapacityLoad` reports, each as a fraction where livekit's threshold
means full:

- cpu: livekit's own default (CPU used over NUM_CPUS);
- memory: the container's working set (usage minus reclaimable inactive file cache, as the
  kubelet counts it) over its limit, read from cgroup v2 (`memory.max`, `memory.current`,
  `memory.stat`) or v1 (`memory.limit_in_bytes`, `memory.usage_in_bytes`); no limit = 0. The
  threshold (0.7) of the limit is full: the rest is headroom for the calls already running;
- calls: active jobs over AGENT_MAX_CALLS, scaled so that exactly AGENT_MAX_CALLS calls reach
  the threshold: the setting is the number of calls a pod takes.

Every read failure degrades to "this part unknown" (0), never to an exception: a broken load
function would stop the worker from answering job requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from realtime_supervisor_agent.config import DEFAULT_MAX_CALLS, MAX_CALLS

__all__ = [
    "DEFAULT_MAX_CALLS",
    "LOAD_THRESHOLD",
    "MAX_CALLS_BOUNDS",
    "CapacityLoad",
    "LoadParts",
    "memory_fraction",
]

# AGENT_MAX_CALLS is read and checked with the agent's settings (AgentConfig.max_calls).
MAX_CALLS_BOUNDS: Final = MAX_CALLS
# livekit's production load_threshold: the load at which LiveKit stops dispatching here.
LOAD_THRESHOLD: Final = 0.7
CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
# cgroup v1 reports "no limit" as a page-rounded 2**63 - 1.
_NO_LIMIT_V1: Final = 1 << 60


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _stat(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def memory_fraction(root: Path = CGROUP_ROOT) -> float:
    """The container's working set over its memory limit (0 when no limit is readable)."""
    if (root / "memory.max").exists():  # cgroup v2 (unified)
        limit = _read_int(root / "memory.max")
        usage = _read_int(root / "memory.current")
        inactive = _stat(root / "memory.stat", "inactive_file")
    else:  # cgroup v1
        v1 = root / "memory"
        limit = _read_int(v1 / "memory.limit_in_bytes")
        usage = _read_int(v1 / "memory.usage_in_bytes")
        inactive = _stat(v1 / "memory.stat", "total_inactive_file")
        if limit is not None and limit >= _NO_LIMIT_V1:
            limit = None
    if not limit or usage is None:
        return 0.0
    return max(0.0, usage - inactive) / limit


@dataclass(frozen=True, slots=True)
class LoadParts:
    """The three parts of one load reading, each already scaled (threshold = full)."""

    cpu: float
    memory: float
    calls: float

    @property
    def load(self) -> float:
        value = max(self.cpu, self.memory, self.calls)
        return min(1.0, value) if math.isfinite(value) else 1.0


class CapacityLoad:
    """livekit's `load_fnc`: the highest of CPU, memory and calls (see the module docstring)."""

    def __init__(
        self,
        max_calls: int = DEFAULT_MAX_CALLS,
        *,
        cpu: Callable[[object | None], float] | None = None,
        cgroup_root: Path = CGROUP_ROOT,
        threshold: float = LOAD_THRESHOLD,
    ) -> None:
        low, high = MAX_CALLS_BOUNDS
        if not low <= max_calls <= high:
            raise ValueError(f"max_calls must be {low}..{high}, got {max_calls!r}")
        self.max_calls = max_calls
        self.threshold = threshold
        self._cpu = cpu
        self._root = cgroup_root

    def parts(self, server: object | None = None) -> LoadParts:
        return LoadParts(
            cpu=self._cpu_load(server),
            memory=self._memory_load(),
            calls=self.threshold * _active_calls(server) / self.max_calls,
        )

    def __call__(self, server: object | None = None) -> float:
        return self.parts(server).load

    def _cpu_load(self, server: object | None) -> float:
        try:
            if self._cpu is not None:
                return float(self._cpu(server))
            from realtime_supervisor.service import livekit_default_load

            return livekit_default_load(server)
        except Exception:  # the CPU part unknown: the other parts still hold
            return 0.0

    def _memory_load(self) -> float:
        try:
            return memory_fraction(self._root)
        except Exception:
            return 0.0


def _active_calls(server: object | None) -> int:
    """livekit's running jobs (AgentServer.active_jobs, 1.5.11 and 1.8.9); 0 when unknown."""
    try:
        return len(server.active_jobs)  # type: ignore[union-attr]
    except Exception:
        return 0
