"""What a `simulate` run is asked to do: `SimulateOptions`, validated, errors naming the flag."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlsplit

from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.errors import ConfigError

if TYPE_CHECKING:
    from realtime_supervisor_agent.config import AgentConfig

__all__ = ["MODES", "Mode", "SimulateOptions", "agent_config", "credential_keys", "openai_base"]

Mode = Literal["watchdog", "none", "timer"]
MODES: Final[tuple[Mode, ...]] = ("watchdog", "none", "timer")


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    """One simulation run. Validated on construction; errors name the CLI flag."""

    sessions: int = 4
    turns: int = 6
    mode: Mode = "watchdog"
    # the chaos schedule (embedded server only); see supervisor/chaos/faults.py
    faults: str = "clean"
    seed: int = 0
    # seconds of silence after which the caller gives up on a turn and speaks again
    patience: float = 15.0
    # embedded: the chaos server's answer length. Remote: the answer length to expect (None = a
    # reply that plays to its end answers, whatever its length).
    reply_seconds: float | None = 1.0
    # remote endpoints (at most one); None = the embedded chaos server
    realtime_url: str | None = None
    azure_endpoint: str | None = None
    azure_deployment: str | None = None
    api_version: str | None = None
    # per session; `{i}` is the session index. Distinct keys keep chaos sessions apart.
    api_key: str = "sk-simulate-{i}"
    model: str = "gpt-realtime"
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    # the hand-written timer's wait (mode timer)
    timer_seconds: float = 5.0
    # the caller speaks again this long into the agent's reply, on odd turns (None: never)
    barge_in: float | None = None
    # after its last turn the caller stays on the line, silent, this long before hanging up
    final_silence: float = 0.0
    # the caller makes a short loud noise this long into each reply, and another in the silence
    # before its next turn (None: never)
    noise: float | None = None
    # a fallback model: a second, clean chaos server behind livekit's
    # RealtimeModelFallbackAdapter, as the worker builds it with AGENT_FALLBACK_* (1.8+)
    fallback: bool = False
    # the hold cue the supervised agent plays while it recovers: off | chime | a .wav path
    hold_cue: str = "off"

    def __post_init__(self) -> None:
        def positive_int(flag: str, value: object) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(flag, f"expected an integer >= 1, got {value!r}")

        def seconds(flag: str, value: object) -> None:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigError(flag, f"expected a number of seconds > 0, got {value!r}")

        positive_int("--sessions", self.sessions)
        positive_int("--turns", self.turns)
        if self.mode not in MODES:
            raise ConfigError("--mode", f"expected one of {', '.join(MODES)}, got {self.mode!r}")
        seconds("--patience", self.patience)
        seconds("--timer-seconds", self.timer_seconds)
        if self.barge_in is not None:
            seconds("--barge-in", self.barge_in)
        if self.noise is not None:
            seconds("--noise", self.noise)
        if self.final_silence != 0.0:
            seconds("--final-silence", self.final_silence)
        if self.reply_seconds is not None:
            seconds("--reply-seconds", self.reply_seconds)
        if self.embedded and self.reply_seconds is None:
            raise ConfigError("--reply-seconds", "the embedded chaos server needs a reply length")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError("--seed", f"expected an integer, got {self.seed!r}")
        if self.realtime_url is not None and self.azure_endpoint is not None:
            raise ConfigError("--realtime-url", "give either --realtime-url or --azure-endpoint")
        if self.realtime_url is not None:
            check_url("--realtime-url", self.realtime_url, ("ws", "wss", "http", "https"))
        if self.azure_endpoint is not None:
            check_url("--azure-endpoint", self.azure_endpoint, ("http", "https"))
            if not self.azure_deployment:
                raise ConfigError("--azure-deployment", "required with --azure-endpoint")
        elif self.azure_deployment is not None or self.api_version is not None:
            flag = "--azure-deployment" if self.azure_deployment is not None else "--api-version"
            raise ConfigError(flag, "applies only with --azure-endpoint")
        if self.embedded:
            from realtime_supervisor.chaos.faults import parse_schedule

            try:
                parse_schedule(self.faults, self.seed)
            except ConfigError as exc:
                raise ConfigError("--faults", str(exc).removeprefix("faults: ")) from exc
        try:
            keys = {self.api_key.format(i=i) for i in range(min(self.sessions, 2))}
        except (KeyError, IndexError, ValueError, AttributeError):
            # the template is not echoed: it may be a real key
            raise ConfigError(
                "--api-key", "expected a key, or a template whose only field is {i}"
            ) from None
        if not all(k.strip() for k in keys):
            raise ConfigError("--api-key", "expected a non-empty key")
        if not isinstance(self.fallback, bool):
            raise ConfigError("--fallback", f"expected true or false, got {self.fallback!r}")
        if self.fallback:
            check_fallback(self.embedded)
        if not isinstance(self.watchdog, WatchdogConfig):
            raise ConfigError("watchdog", "expected a WatchdogConfig")
        from realtime_supervisor.cue import HoldCue

        HoldCue.from_setting(self.hold_cue, field="--hold-cue")

    @property
    def embedded(self) -> bool:
        """True when the run brings its own chaos server."""
        return self.realtime_url is None and self.azure_endpoint is None

    @property
    def provider(self) -> str:
        return "azure" if self.azure_endpoint is not None else "openai"

    @property
    def model_label(self) -> str:
        return self.azure_deployment or self.model


def check_fallback(embedded: bool) -> None:
    """A fallback model is simulated with a second chaos server, through livekit's adapter."""
    if not embedded:
        raise ConfigError("--fallback", "applies only to the embedded chaos server")
    from realtime_supervisor_agent.fallback import has_fallback_adapter

    if not has_fallback_adapter():
        import livekit.agents as lk

        raise ConfigError(
            "--fallback",
            f"livekit-agents {lk.__version__} has no RealtimeModelFallbackAdapter (1.8+): "
            "a fallback model cannot be simulated",
        )


def check_url(flag: str, value: str, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(value)
        ok = (
            parts.scheme in schemes
            and bool(parts.hostname)
            and parts.username is None
            and not parts.query
            and not parts.fragment
        )
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        ok = False
    if not ok:
        # the value is not echoed: a URL may carry credentials
        accepted = ", ".join(s + "://" for s in schemes)
        raise ConfigError(flag, f"expected a URL with a host and no query ({accepted})")


def agent_config(options: SimulateOptions, key: str) -> AgentConfig:
    """The agent settings one simulated call runs with (its own key)."""
    from realtime_supervisor_agent.config import AgentConfig

    if options.azure_endpoint is not None:
        return AgentConfig(
            provider="azure",
            azure_endpoint=options.azure_endpoint,
            azure_deployment=options.azure_deployment,
            azure_api_key=key,
            api_version=options.api_version,
            model=options.model_label,
        )
    return AgentConfig(provider="openai", openai_api_key=key, model=options.model)


def openai_base(url: str) -> str:
    """The plugin's base_url: it appends `/realtime`, so a URL given with it is trimmed."""
    url = url.rstrip("/")
    return url.removesuffix("/realtime")


def credential_keys(key: str) -> tuple[str, ...]:
    """The chaos server's session keys for this credential (it hashes the header it receives)."""
    values = (f"Bearer {key}", key)
    return tuple("cred-" + hashlib.sha256(v.encode()).hexdigest()[:12] for v in values)
