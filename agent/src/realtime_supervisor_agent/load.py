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
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from realtime_supervisor.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_CALLS",
    "LOAD_THRESHOLD",
    "MAX_CALLS_BOUNDS",
    "MAX_CALLS_VARIABLE",
    "CapacityLoad",
    "LoadParts",
    "max_calls_from_env",
    "memory_fraction",
]

MAX_CALLS_VARIABLE: Final = "AGENT_MAX_CALLS"
DEFAULT_MAX_CALLS: Final = 20
MAX_CALLS_BOUNDS: Final = (1, 1000)
# livekit's production load_threshold: the load at which LiveKit stops dispatching here.
LOAD_THRESHOLD: Final = 0.7
CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
# cgroup v1 reports "no limit" as a page-rounded 2**63 - 1.
_NO_LIMIT_V1: Final = 1 << 60


def max_calls_from_env(env: Mapping[str, str] | None = None) -> int:
    """AGENT_MAX_CALLS (1..1000, default 20); a ConfigError naming the variable otherwise."""
    source = os.environ if env is None else env
    raw = source.get(MAX_CALLS_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MAX_CALLS
    low, high = MAX_CALLS_BOUNDS
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            MAX_CALLS_VARIABLE, f"expected an integer {low}..{high} (calls per pod), got {raw!r}"
        ) from None
    if not low <= value <= high:
        raise ConfigError(
            MAX_CALLS_VARIABLE, f"expected an integer {low}..{high} (calls per pod), got {value}"
        )
    return value


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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CapacityLoad:
        return cls(max_calls_from_env(env))

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
