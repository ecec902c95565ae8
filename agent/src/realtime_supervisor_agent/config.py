"""The agent's settings: which realtime model, how it listens, and how it is reached.

Rules:
1. The environment is read only by `AgentConfig.from_env`, from a mapping a test can replace,
   through the reader the watchdog's settings use too (`realtime_supervisor._env`); an empty
   value counts as unset (deployment templates often render an unset value as "").
2. Everything is validated before anything starts, and ALL problems are reported at once: one
   `AgentConfigError` (a `ConfigError`) whose `.field` is the first bad variable and whose message
   has one "VARIABLE: what is accepted" line per problem. A deploy that fails should fail once,
   with the whole list, not once per variable.
3. Secrets (API keys, Entra token, LiveKit secret) are never shown: not in `repr`, not in
   `redacted()`, not in errors.
4. A setting that is set but would be ignored is an error (AGENT_VAD_* with semantic_vad,
   AGENT_SEMANTIC_EAGERNESS with server_vad): a setting that silently does nothing is how a
   deployment drifts from what its owner believes it runs. The other provider's credentials are
   the exception (one secret often holds both), unless livekit's plugin would act on them.
5. `REALTIME_SUPERVISOR_*` is the watchdog's (supervisor/config.py) and is ignored here. Unknown
   `AGENT_*` variables are ignored too: CI runners (Azure Pipelines) set AGENT_ID, AGENT_OS, ...
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Literal
from urllib.parse import urlsplit

from realtime_supervisor import _env
from realtime_supervisor._env import ConfigProblems

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_MAX_CALLS",
    "MAX_CALLS",
    "NOISE_REDUCTIONS",
    "PROVIDERS",
    "SEMANTIC_EAGERNESS",
    "TURN_DETECTIONS",
    "AgentConfig",
    "AgentConfigError",
]

Provider = Literal["openai", "azure"]
Architecture = Literal["realtime", "realtime_stt"]
NoiseReduction = Literal["near_field", "far_field", "off"]
TurnDetection = Literal["server_vad", "semantic_vad"]
Eagerness = Literal["auto", "low", "medium", "high"]

PROVIDERS: tuple[Provider, ...] = ("openai", "azure")
ARCHITECTURES: tuple[Architecture, ...] = ("realtime", "realtime_stt")
NOISE_REDUCTIONS: tuple[NoiseReduction, ...] = ("near_field", "far_field", "off")
TURN_DETECTIONS: tuple[TurnDetection, ...] = ("server_vad", "semantic_vad")
SEMANTIC_EAGERNESS: tuple[Eagerness, ...] = ("auto", "low", "medium", "high")

DEFAULT_INSTRUCTIONS = (
    "You are a helpful voice assistant. Answer briefly and naturally, in the caller's language."
)

# Model, deployment and voice names: no spaces, no URL syntax. Azure deployment names allow
# letters, digits, '-', '_' and '.'; OpenAI model ids add ':' (fine-tunes).
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
_MODALITIES = {("audio",): ("audio",), ("audio", "text"): ("text", "audio")}

# The variable each field is read from (rule 1), in the order problems are reported.
_VARIABLES: dict[str, str] = {
    "provider": "AGENT_PROVIDER",
    "agent_name": "AGENT_NAME",
    "openai_api_key": "OPENAI_API_KEY",
    "azure_endpoint": "AZURE_OPENAI_ENDPOINT",
    "azure_deployment": "AZURE_OPENAI_DEPLOYMENT",
    "azure_api_key": "AZURE_OPENAI_API_KEY",
    "azure_ad_token": "AZURE_OPENAI_AD_TOKEN",
    "api_version": "OPENAI_API_VERSION",
    "model": "AGENT_MODEL",
    "voice": "AGENT_VOICE",
    "modalities": "AGENT_MODALITIES",
    "instructions": "AGENT_INSTRUCTIONS",
    "architecture": "AGENT_ARCHITECTURE",
    "transcription_model": "AGENT_TRANSCRIPTION_MODEL",
    "noise_reduction": "AGENT_NOISE_REDUCTION",
    "turn_detection": "AGENT_TURN_DETECTION",
    "vad_threshold": "AGENT_VAD_THRESHOLD",
    "vad_prefix_padding_ms": "AGENT_VAD_PREFIX_PADDING_MS",
    "vad_silence_duration_ms": "AGENT_VAD_SILENCE_DURATION_MS",
    "semantic_eagerness": "AGENT_SEMANTIC_EAGERNESS",
    "max_calls": "AGENT_MAX_CALLS",
    "hold_cue": "AGENT_HOLD_CUE",
}
_SECRET_FIELDS = frozenset({"openai_api_key", "azure_api_key", "azure_ad_token"})
_LIVEKIT_VARIABLES = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
_SERVER_VAD_FIELDS = ("vad_threshold", "vad_prefix_padding_ms", "vad_silence_duration_ms")

# Ranges for the server VAD. Threshold: OpenAI accepts 0.0..1.0, but 0 calls every frame speech
# (the agent is interrupted by line noise) and 1 calls nothing speech (no turn ever ends: a silent
# agent), so both ends are refused. Prefix padding: audio kept before detected speech; 0 clips
# first syllables, beyond 2 s it only adds latency. Silence: below 100 ms turns split mid-word
# (the server answers half-sentences), beyond 5 s the caller thinks the line is dead.
PREFIX_PADDING_MS = (1, 2000)
SILENCE_DURATION_MS = (100, 5000)
# Calls one worker takes at most (load.CapacityLoad): at this many its load reaches livekit's
# threshold. 0 would make a pod that never takes a call; beyond 1000 nothing fits in one pod.
MAX_CALLS = (1, 1000)
DEFAULT_MAX_CALLS = 20


class AgentConfigError(ConfigProblems):
    """Every problem found in the agent's settings; `.field` is the first one's variable."""


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Which realtime model the agent runs, how it listens, and the credentials to reach it."""

    provider: Provider = "openai"
    # "" = automatic dispatch (livekit's convention); a name = explicit dispatch only.
    agent_name: str = ""
    openai_api_key: str | None = field(default=None, repr=False)
    # Azure: https://NAME.openai.azure.com (the plugin appends /openai itself).
    azure_endpoint: str | None = None
    azure_deployment: str | None = None
    azure_api_key: str | None = field(default=None, repr=False)
    azure_ad_token: str | None = field(default=None, repr=False)
    # Set: the legacy Azure path (/openai/realtime?api-version=V&deployment=D, beta events), as in
    # the original report (2024-10-01-preview). Unset: Azure's GA path (/openai/v1/realtime).
    api_version: str | None = None
    # On Azure the deployment decides the model; this is then only a label.
    model: str = "gpt-realtime"
    voice: str = "alloy"
    # ("audio",) or ("text", "audio"): both make the plugin ask for audio replies with a
    # transcript (it sends output_modalities ["audio"]); text-only replies would need a TTS.
    modalities: tuple[str, ...] = ("audio",)
    instructions: str = DEFAULT_INSTRUCTIONS
    # realtime: the realtime model hears, thinks, speaks and transcribes the caller itself.
    # realtime_stt: it hears, thinks and speaks; a separate transcription model writes the
    # caller's transcript (what the user of the original report asked for).
    architecture: Architecture = "realtime"
    # The model that writes the caller's transcript (on Azure: the transcription deployment).
    transcription_model: str = "gpt-4o-mini-transcribe"
    # near_field by default: the original report was about noise, and phones and headsets are
    # close-talking microphones; far_field is for speakerphones and rooms.
    noise_reduction: NoiseReduction = "near_field"
    # server_vad by default: predictable (silence-based) and supported by every Azure api-version;
    # semantic_vad waits for a finished thought and may hold a turn open longer.
    turn_detection: TurnDetection = "server_vad"
    vad_threshold: float = 0.5
    vad_prefix_padding_ms: int = 300
    vad_silence_duration_ms: int = 500
    semantic_eagerness: Eagerness = "auto"
    # The calls that make this worker full (its load's calls part; docs/deploying.md, sizing).
    max_calls: int = DEFAULT_MAX_CALLS
    # off | chime | /path/to/cue.wav: a short sound while the watchdog recovers a stalled reply
    # (realtime_supervisor.cue); off by default: a deployment opts in to a sound its callers hear.
    hold_cue: str = "off"

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise AgentConfigError(problems)

    # -- validation (field names; from_env renames them to variables) ---------------------------

    def _problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []

        def choice(name: str, accepted: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in accepted:
                problems.append((name, f"expected one of {', '.join(accepted)}, got {value!r}"))

        def token(name: str, what: str, *, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            if not isinstance(value, str) or not _TOKEN.fullmatch(value):
                problems.append(
                    (name, f"expected {what} (letters, digits, '.', '_', ':', '-'), got {value!r}")
                )

        def secret(name: str) -> None:
            value = getattr(self, name)
            # Only the kind is named: a secret's value never reaches a message (rule 3).
            if value is not None and (not isinstance(value, str) or not value.strip()):
                problems.append((name, "expected a non-empty string or unset"))

        choice("provider", PROVIDERS)
        if self.agent_name != "":
            token("agent_name", 'an agent name or "" for automatic dispatch')
        for name in _SECRET_FIELDS:
            secret(name)
        token("model", "a model name")
        token("voice", "a voice name")
        token("transcription_model", "a transcription model or deployment name")
        if self.modalities not in _MODALITIES.values():
            problems.append(
                ("modalities", f"expected ('audio',) or ('text', 'audio'), got {self.modalities!r}")
            )
        if not isinstance(self.instructions, str) or not self.instructions.strip():
            problems.append(("instructions", "expected non-empty text"))
        choice("architecture", ARCHITECTURES)
        choice("noise_reduction", NOISE_REDUCTIONS)
        choice("turn_detection", TURN_DETECTIONS)
        choice("semantic_eagerness", SEMANTIC_EAGERNESS)
        low, high = MAX_CALLS
        calls = self.max_calls
        if isinstance(calls, bool) or not isinstance(calls, int) or not low <= calls <= high:
            problems.append(
                ("max_calls", f"expected an integer {low}..{high} (calls per pod), got {calls!r}")
            )
        problems += _vad_problems(self)
        problems += _hold_cue_problems(self.hold_cue)
        problems += self._provider_problems()
        order = list(_VARIABLES)
        return sorted(problems, key=lambda p: order.index(p[0]) if p[0] in order else len(order))

    def _provider_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.provider == "openai":
            if not self.openai_api_key:
                problems.append(("openai_api_key", "required when AGENT_PROVIDER=openai"))
            # livekit's plugin switches to Azure mode whenever an api-version is present, even
            # from the process environment (RealtimeModel.__init__ reads OPENAI_API_VERSION).
            if self.api_version is not None:
                problems.append(
                    (
                        "api_version",
                        "applies only to AGENT_PROVIDER=azure (livekit's plugin "
                        "would switch to Azure mode); unset it",
                    )
                )
        elif self.provider == "azure":
            if self.azure_endpoint is None:
                problems.append(
                    (
                        "azure_endpoint",
                        "required when AGENT_PROVIDER=azure: an https URL like "
                        "https://NAME.openai.azure.com",
                    )
                )
            elif not _is_http_url(self.azure_endpoint):
                # The value is not echoed: an endpoint URL may carry credentials.
                problems.append(
                    (
                        "azure_endpoint",
                        "expected an http(s) URL with a host and no user info, "
                        "like https://NAME.openai.azure.com",
                    )
                )
            if self.azure_deployment is None:
                problems.append(("azure_deployment", "required when AGENT_PROVIDER=azure"))
            else:
                token_ok = isinstance(self.azure_deployment, str) and _TOKEN.fullmatch(
                    self.azure_deployment
                )
                if not token_ok:
                    problems.append(
                        (
                            "azure_deployment",
                            f"expected a deployment name (letters, digits, "
                            f"'.', '_', '-'), got {self.azure_deployment!r}",
                        )
                    )
            if not self.azure_api_key and not self.azure_ad_token:
                problems.append(
                    (
                        "azure_api_key",
                        "AGENT_PROVIDER=azure needs AZURE_OPENAI_API_KEY or "
                        "AZURE_OPENAI_AD_TOKEN (Entra)",
                    )
                )
            if self.api_version is not None and (
                not isinstance(self.api_version, str)
                or not _API_VERSION.fullmatch(self.api_version)
            ):
                problems.append(
                    (
                        "api_version",
                        f"expected YYYY-MM-DD or YYYY-MM-DD-preview (e.g. "
                        f"2024-10-01-preview), got {self.api_version!r}",
                    )
                )
            if self.openai_api_key is not None and self.azure_ad_token and not self.azure_api_key:
                # With only an Entra token, livekit's plugin falls back to OPENAI_API_KEY and would
                # send the OpenAI key to Azure as the api-key header.
                problems.append(
                    (
                        "openai_api_key",
                        "must be unset when AGENT_PROVIDER=azure authenticates with "
                        "AZURE_OPENAI_AD_TOKEN only (livekit's plugin would send it to Azure)",
                    )
                )
        return problems

    # -- construction from the environment -------------------------------------------------------

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, require_livekit: bool = False
    ) -> AgentConfig:
        """Read the agent variables (default: os.environ); raise one AgentConfigError listing all.

        `require_livekit=True` (the `start` command) also checks that LIVEKIT_URL,
        LIVEKIT_API_KEY and LIVEKIT_API_SECRET are present; livekit reads them itself.
        """
        source = _env.source_of(env)
        kwargs, problems = _env.read(source, _ENV_VARIABLES)
        if require_livekit:
            problems += _livekit_problems(source)
        # Rule 4 by variable: setting a value equal to its default is still a mistake.
        if kwargs.get("turn_detection") == "semantic_vad":
            for name in _SERVER_VAD_FIELDS:
                if name in kwargs:
                    problems.append(
                        (
                            _VARIABLES[name],
                            "applies only to AGENT_TURN_DETECTION=server_vad; unset it",
                        )
                    )
        elif "semantic_eagerness" in kwargs:
            problems.append(
                (
                    _VARIABLES["semantic_eagerness"],
                    "applies only to AGENT_TURN_DETECTION=semantic_vad; unset it",
                )
            )
        # The shared reader builds the config and renames the dataclass's problems to variables;
        # fields that failed to parse keep their defaults, and their problems are not repeated.
        try:
            return _env.construct(cls, kwargs, _ENV_VARIABLES, problems)
        except _env.ConfigProblems as exc:
            raise AgentConfigError(list(exc.problems)) from None

    def redacted(self) -> dict[str, object]:
        """The settings for logs and /status: secrets replay as "<set>" or None, never a value."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS:
                value = None if value is None else "<set>"
            out[f.name] = value
        return out

    @property
    def uses_legacy_azure(self) -> bool:
        """True on Azure's api-version path (beta event names), as in the original report."""
        return self.provider == "azure" and self.api_version is not None


# -- helpers -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Bad:
    message: str


def _parser(name: str) -> Callable[[str], object]:
    def parse(raw: str) -> object:
        parsed = _parse(name, raw)
        if isinstance(parsed, _Bad):
            raise _env.Refused(parsed.message)
        return parsed

    return parse


def _parse(name: str, raw: str) -> object:
    """Turn one variable's text into its field's type, or a _Bad saying what is accepted."""
    text = raw.strip()
    if name == "vad_threshold":
        try:
            return float(text)
        except ValueError:
            return _Bad(f"expected a number between 0 and 1 (exclusive), got {text!r}")
    if name in ("vad_prefix_padding_ms", "vad_silence_duration_ms"):
        try:
            return int(text)
        except ValueError:
            low, high = PREFIX_PADDING_MS if "prefix" in name else SILENCE_DURATION_MS
            return _Bad(f"expected an integer number of milliseconds {low}..{high}, got {text!r}")
    if name == "max_calls":
        try:
            return int(text)
        except ValueError:
            low, high = MAX_CALLS
            return _Bad(f"expected an integer {low}..{high} (calls per pod), got {text!r}")
    if name == "modalities":
        parts = tuple(sorted(part.strip().lower() for part in text.split(",")))
        if parts in _MODALITIES:
            return _MODALITIES[parts]
        if parts == ("text",):
            return _Bad(
                "text-only replies need a TTS, which this agent does not configure; "
                "expected audio or text,audio"
            )
        return _Bad(f"expected audio or text,audio (any order), got {text!r}")
    if name in (
        "provider",
        "architecture",
        "noise_reduction",
        "turn_detection",
        "semantic_eagerness",
    ):
        return text.lower()
    if name == "instructions":
        return raw  # meaningful whitespace (line breaks) is kept
    return text


def _vad_problems(cfg: AgentConfig) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    threshold = cfg.vad_threshold
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
        or not 0 < threshold < 1
    ):
        problems.append(
            ("vad_threshold", f"expected a number between 0 and 1 (exclusive), got {threshold!r}")
        )
    for name, (low, high) in (
        ("vad_prefix_padding_ms", PREFIX_PADDING_MS),
        ("vad_silence_duration_ms", SILENCE_DURATION_MS),
    ):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(
                (name, f"expected an integer number of milliseconds {low}..{high}, got {value!r}")
            )
    defaults = {f.name: f.default for f in fields(AgentConfig)}
    if cfg.turn_detection == "semantic_vad":
        for name in _SERVER_VAD_FIELDS:
            if getattr(cfg, name) != defaults[name]:
                problems.append((name, "applies only to AGENT_TURN_DETECTION=server_vad; unset it"))
    elif cfg.semantic_eagerness != defaults["semantic_eagerness"]:
        problems.append(
            ("semantic_eagerness", "applies only to AGENT_TURN_DETECTION=semantic_vad; unset it")
        )
    return problems


def _hold_cue_problems(value: object) -> list[tuple[str, str]]:
    """The cue is loaded once here (a WAV's format and length), so a bad file fails at start."""
    from realtime_supervisor.cue import HoldCue
    from realtime_supervisor.errors import ConfigError

    if not isinstance(value, str):
        return [("hold_cue", f"expected off, chime or a path to a .wav file, got {value!r}")]
    try:
        HoldCue.from_setting(value, field="hold_cue")
    except ConfigError as exc:
        return [("hold_cue", str(exc).removeprefix("hold_cue: "))]
    return []


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.username is None
        and not parts.query
        and not parts.fragment
    )


def _livekit_problems(source: Mapping[str, str]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    url = source.get("LIVEKIT_URL", "").strip()
    if not url:
        problems.append(("LIVEKIT_URL", "required to connect the worker (wss://HOST or ws://HOST)"))
    else:
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("ws", "wss", "http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            problems.append(("LIVEKIT_URL", "expected a ws://, wss://, http:// or https:// URL"))
    for variable in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        if not source.get(variable, "").strip():
            problems.append((variable, "required to connect the worker"))
    return problems


# Each variable through the shared reader (`realtime_supervisor._env`), in reporting order.
_ENV_VARIABLES = tuple(
    _env.Variable(variable, name, _parser(name)) for name, variable in _VARIABLES.items()
)
