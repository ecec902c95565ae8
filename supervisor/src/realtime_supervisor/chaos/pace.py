"""How fast the chaos server produces reply audio, relative to how long it takes to play.

The real Realtime API produces audio faster than real time (the `openai` SDK's docstring for
`conversation.item.truncate`: "the server will produce audio faster than realtime";
`idle_timeout_ms` counts from "`response.done` time plus audio playback duration"). So in
production `response.done` arrives while most of the reply is still to be played, and "the
response is open" is not "the reply is playing". A test double that streams in real time gives
a watchdog coverage production lacks.

`DEFAULT_PACE` is 4: audio is produced four times faster than it plays. It is a conservative
reading of "faster than realtime" (captures show whole replies arriving in a fraction of their
length), fast enough that `response.done` comes with three quarters of any reply still to play,
and slow enough that a reply still streams over several deltas, so a fault placed after N
deltas lands mid-stream. `pace="realtime"` (1.0) keeps the old behaviour for demos, where a
reply should be heard as it is sent.
"""

from __future__ import annotations

import math
from typing import Final

from realtime_supervisor.errors import ConfigError

__all__ = ["DEFAULT_PACE", "REALTIME", "Pace", "parse_pace"]

DEFAULT_PACE: Final = 4.0
REALTIME: Final = "realtime"

Pace = float | str

_ACCEPTED: Final = "'realtime' (1.0) or a number > 0: audio seconds produced per second"


def parse_pace(value: Pace) -> float:
    """The pace as a factor of real time; raises ConfigError naming `pace` when invalid."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == REALTIME:
            return 1.0
        try:
            factor = float(text)
        except ValueError:
            raise ConfigError("pace", f"got {value!r}; accepted: {_ACCEPTED}") from None
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError("pace", f"got {value!r}; accepted: {_ACCEPTED}")
    else:
        factor = float(value)
    if not math.isfinite(factor) or factor <= 0:
        raise ConfigError("pace", f"got {value!r}; accepted: {_ACCEPTED}")
    return factor
