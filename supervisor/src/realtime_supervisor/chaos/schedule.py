"""The chaos catalogue as data: which faults exist, their parameters, and the schedule syntax.

Pure: no asyncio, no I/O. The server asks `Schedule.fault_for(session, turn)` when the first
response of a user turn starts, and acts on the `Fault` it gets back (None means clean); what
each kind does on the wire is its hook object in `faults.py`'s `TABLE`.

Rules:
1. A schedule is comma-separated tokens applied to a session's user turns in rotation:
   turn 1 uses the first token, turn 2 the second, and so on, wrapping around.
2. A token is `clean`, a fault kind, `kind=value` for the kind's parameter, or `random:P`
   (a fault with probability P, its kind drawn from the recoverable catalogue), optionally
   restricted as `random:P:kind1|kind2=value`.
3. Random draws depend only on (seed, session, turn), so a run is reproducible whatever order
   sessions and turns interleave in.
4. Sticky kinds (`STICKY_KINDS`) last for the rest of the session once they bite: the account
   is out of quota, or every connection flaps. `random:P` never draws them.
5. Non-faults (`slow_first_audio`, `long_answer`, `tool_call`) change timing but never stall a
   turn. `tool_call=S` makes the turn's first response a function call to `TOOL_NAME` with
   arguments `{"seconds": S}`; the agent's tool is expected to take that long, and the response
   livekit asks for with the tool's output is the turn's (clean) answer.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final

from realtime_supervisor.errors import ConfigError

__all__ = [
    "COUNT_KINDS",
    "DEFAULTS",
    "FAULT_KINDS",
    "KINDS",
    "LATE_RESUME_DELTAS",
    "NON_FAULTS",
    "RECOVERABLE_KINDS",
    "STICKY_KINDS",
    "TOOL_NAME",
    "Fault",
    "Schedule",
    "parse_schedule",
]

FIELD: Final = "faults"

FAULT_KINDS: Final = (
    "multi_message",
    "multi_message_empty",
    "stall_mid",
    "drop_mid",
    "no_response",
    "failed_response",
    "error_event",
    "fatal_error",
    "flap",
    "late_resume",
    "dead_mid",
    "tcp_drop",
    "fatal_close",
    "session_limit",
    "incomplete",
    "content_filter",
)
NON_FAULTS: Final = ("slow_first_audio", "long_answer", "tool_call")
KINDS: Final = FAULT_KINDS + NON_FAULTS
# what `random:P` draws from: a retry in the same session can still get an answer after these
STICKY_KINDS: Final = ("fatal_error", "flap", "fatal_close")
RECOVERABLE_KINDS: Final = tuple(k for k in FAULT_KINDS if k not in STICKY_KINDS)

# the parameter of each parameterised kind: default, and whether it counts deltas or seconds
DEFAULTS: Final[dict[str, float]] = {
    "stall_mid": 3,  # audio deltas sent before the audio stops
    "drop_mid": 3,  # audio deltas sent before the socket is closed
    "slow_first_audio": 3.0,  # seconds before the first audio delta
    "long_answer": 12.0,  # seconds of answer audio
    "tool_call": 15.0,  # seconds the called tool is asked to take (its `seconds` argument)
    # seconds the connection freezes for, after LATE_RESUME_DELTAS deltas, before the original
    # reply resumes: the late original a re-issued reply must never overlap
    "late_resume": 2.5,
    "dead_mid": 3,  # audio deltas sent before the connection goes dead (no close, no pongs)
    "tcp_drop": 3,  # audio deltas sent before the TCP connection is aborted (no close frame)
    "session_limit": 3,  # audio deltas sent before the 60-minute limit closes the socket
    "incomplete": 3,  # audio deltas sent before max_output_tokens cuts the answer
    "content_filter": 3,  # audio deltas sent before the content filter cuts the answer
}
LATE_RESUME_DELTAS: Final = 3
TOOL_NAME: Final = "wait_for_backend"  # the function the tool_call response calls
COUNT_KINDS: Final = frozenset(
    {
        "stall_mid",
        "drop_mid",
        "dead_mid",
        "tcp_drop",
        "session_limit",
        "incomplete",
        "content_filter",
    }
)

_ACCEPTED: Final = (
    "comma-separated tokens: 'clean', a kind ("
    + ", ".join(KINDS)
    + "), 'kind=value' for "
    + ", ".join(DEFAULTS)
    + ", or 'random:P' / 'random:P:kind1|kind2' with 0 <= P <= 1"
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to inject into a turn's first response; `value` is the kind's parameter."""

    kind: str
    value: float | None = None

    @property
    def deltas(self) -> int:
        """Audio deltas before the fault bites (stall_mid, drop_mid, dead_mid, ...)."""
        return int(self.value if self.value is not None else DEFAULTS.get(self.kind, 0))

    @property
    def seconds(self) -> float:
        """The duration parameter (slow_first_audio, long_answer, tool_call)."""
        return float(self.value if self.value is not None else DEFAULTS.get(self.kind, 0.0))

    @property
    def is_fault(self) -> bool:
        """True for real faults, False for the timing-only non-faults."""
        return self.kind in FAULT_KINDS

    def __str__(self) -> str:
        if self.value is None:
            return self.kind
        return f"{self.kind}={self.value:g}"


@dataclass(frozen=True, slots=True)
class _Random:
    probability: float
    choices: tuple[Fault, ...]


_Token = Fault | _Random | None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: the fault (or None) for each (session, turn)."""

    tokens: tuple[_Token, ...]
    seed: int = 0
    text: str = "clean"

    def fault_for(self, session: str, turn: int) -> Fault | None:
        """The fault for `turn` (1-based) of `session`; None means a clean turn."""
        if turn < 1:
            raise ValueError("turns count from 1")
        token = self.tokens[(turn - 1) % len(self.tokens)]
        if not isinstance(token, _Random):
            return token
        # a string seed is hashed with sha512, so the draw is stable across processes
        rng = random.Random(f"{self.seed}/{session}/{turn}")
        if rng.random() >= token.probability:
            return None
        return rng.choice(token.choices)

    @property
    def is_clean(self) -> bool:
        """True when no token can ever produce a fault."""
        return all(t is None for t in self.tokens)


def _fail(message: str) -> ConfigError:
    return ConfigError(FIELD, f"{message}; accepted: {_ACCEPTED}")


def _parse_fault(token: str) -> Fault:
    kind, sep, raw = token.partition("=")
    kind = kind.strip()
    if kind not in KINDS:
        raise _fail(f"unknown fault kind {kind!r}")
    if not sep:
        return Fault(kind)
    if kind not in DEFAULTS:
        raise _fail(f"{kind!r} takes no value (got {token!r})")
    raw = raw.strip()
    try:
        value = int(raw) if kind in COUNT_KINDS else float(raw)
    except ValueError:
        what = "a whole number of deltas" if kind in COUNT_KINDS else "a number of seconds"
        raise _fail(f"{kind} needs {what}, got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (kind == "long_answer" and value == 0):
        raise _fail(f"{kind} value out of range: {raw!r}")
    return Fault(kind, value)


def _parse_random(token: str) -> _Random:
    parts = token.split(":", 2)
    raw_p = parts[1].strip() if len(parts) > 1 else ""
    try:
        probability = float(raw_p)
    except ValueError:
        raise _fail(f"random needs a probability, got {raw_p!r}") from None
    if not 0.0 <= probability <= 1.0:
        raise _fail(f"random probability must be within 0 and 1, got {raw_p!r}")
    if len(parts) == 3:
        names = [n.strip() for n in parts[2].split("|")]
        if not all(names):
            raise _fail(f"empty kind in {token!r}")
        choices = tuple(_parse_fault(n) for n in names)
    else:
        choices = tuple(Fault(k) for k in RECOVERABLE_KINDS)
    return _Random(probability, choices)


def parse_schedule(text: str, seed: int = 0) -> Schedule:
    """Parse the chaos schedule syntax; raises ConfigError naming `faults` when it is invalid."""
    if not isinstance(text, str):
        raise _fail(f"expected a string, got {type(text).__name__}")
    raw_tokens = [t.strip() for t in text.split(",")]
    if not text.strip() or not all(raw_tokens):
        raise _fail(f"empty token in {text!r}")
    tokens: list[_Token] = []
    for raw in raw_tokens:
        if raw == "clean":
            tokens.append(None)
        elif raw == "random" or raw.startswith("random:"):
            tokens.append(_parse_random(raw))
        else:
            tokens.append(_parse_fault(raw))
    return Schedule(tuple(tokens), seed=seed, text=text)
