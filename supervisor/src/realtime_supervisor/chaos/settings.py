"""A connection's session settings, and `session.update` validated as the real API does.

Pure: `Settings.updated(session, beta=...)` returns new settings or raises `Invalid`; the old
settings are untouched either way, so an update is applied whole or not at all.

Rules:
1. GA: `session.type` is required and must be "realtime"; the legacy (beta) shape has no type.
2. A field the API does not know is refused with `unknown_parameter`, naming its dotted path
   (`session.audio.input.foo`), and the whole update is discarded.
3. A known field of the wrong type or value is refused naming it, and the whole update is
   discarded. Fields the chaos server does not act on (tools, tracing, noise reduction,
   truncation, ...) are accepted when their type is right.
4. Input transcription is off unless configured (`audio.input.transcription` /
   `input_audio_transcription`); `output_modalities` (`modalities` on beta) of `["text"]` makes
   replies text only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final

from .protocol import (
    AUDIO_FORMAT,
    Json,
    invalid_type,
    invalid_value,
    missing,
    require,
    unknown_parameter,
)

__all__ = ["DEFAULT_TURN_DETECTION", "Settings", "response_params"]

DEFAULT_TURN_DETECTION: Final[Json] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}

# the fields each object accepts (the `openai` SDK's models of the same names)
_GA_SESSION: Final = frozenset(
    {
        "type",
        "audio",
        "include",
        "instructions",
        "max_output_tokens",
        "model",
        "output_modalities",
        "parallel_tool_calls",
        "prompt",
        "reasoning",
        "tool_choice",
        "tools",
        "tracing",
        "truncation",
    }
)
_BETA_SESSION: Final = frozenset(
    {
        "client_secret",
        "input_audio_format",
        "input_audio_noise_reduction",
        "input_audio_transcription",
        "instructions",
        "max_response_output_tokens",
        "modalities",
        "model",
        "output_audio_format",
        "speed",
        "temperature",
        "tool_choice",
        "tools",
        "tracing",
        "turn_detection",
        "voice",
    }
)
_AUDIO: Final = frozenset({"input", "output"})
_AUDIO_INPUT: Final = frozenset({"format", "noise_reduction", "transcription", "turn_detection"})
_AUDIO_OUTPUT: Final = frozenset({"format", "speed", "voice"})
_TURN_DETECTION: Final = {
    "server_vad": frozenset(
        {
            "type",
            "threshold",
            "prefix_padding_ms",
            "silence_duration_ms",
            "create_response",
            "interrupt_response",
            "idle_timeout_ms",
        }
    ),
    "semantic_vad": frozenset({"type", "eagerness", "create_response", "interrupt_response"}),
}
_MODALITIES: Final = ("text", "audio")
# the fields `response.create`'s `response` may carry (GA and beta names together)
_RESPONSE: Final = frozenset(
    {
        "audio",
        "conversation",
        "input",
        "instructions",
        "max_output_tokens",
        "max_response_output_tokens",
        "metadata",
        "modalities",
        "output_audio_format",
        "output_modalities",
        "prompt",
        "temperature",
        "tool_choice",
        "tools",
        "voice",
    }
)
# fields accepted and echoed as given, with the type each must have
_PASSTHROUGH: Final[dict[str, type | tuple[type, ...]]] = {
    "tools": list,
    "tool_choice": (str, dict),
    "tracing": (str, dict),
    "truncation": (str, dict),
    "include": list,
    "prompt": dict,
    "reasoning": dict,
    "parallel_tool_calls": bool,
    "temperature": (int, float),
    "speed": (int, float),
    "input_audio_noise_reduction": dict,
    "client_secret": dict,
    "max_output_tokens": (int, str),
    "max_response_output_tokens": (int, str),
    "input_audio_format": str,
    "output_audio_format": str,
}


def _known(obj: Json, allowed: frozenset[str], prefix: str) -> None:
    for key in obj:
        if key not in allowed:
            raise unknown_parameter(prefix + key)


def _object(value: object, param: str) -> Json:
    if not isinstance(value, dict):
        raise invalid_type(param, "an object")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """What `session.update` configures; the defaults are the real API's."""

    model: str = "gpt-realtime"
    instructions: str = ""
    voice: str = "alloy"
    speed: float = 1.0
    output_modalities: tuple[str, ...] = ("audio",)
    turn_detection: Json | None = field(default_factory=lambda: dict(DEFAULT_TURN_DETECTION))
    transcription: Json | None = None  # off by default
    tools: list[Any] = field(default_factory=list)
    tool_choice: Any = "auto"

    @property
    def audio_out(self) -> bool:
        """Replies carry audio (else text only)."""
        return "audio" in self.output_modalities

    def updated(self, session: Json, *, beta: bool) -> Settings:
        """These settings with `session` applied; raises `Invalid` and changes nothing."""
        changes: dict[str, Any] = {}
        p = "session."
        if beta:
            _known(session, _BETA_SESSION, p)
        else:
            _known(session, _GA_SESSION, p)
            kind = session.get("type")
            if kind is None:
                raise missing("session.type")
            if kind != "realtime":
                raise invalid_value("session.type", kind, ("realtime",))
        for key, types in _PASSTHROUGH.items():
            if key in session and session[key] is not None:
                require(session, key, types, prefix=p)
        if session.get("tools") is not None:
            changes["tools"] = list(session["tools"])
        if session.get("tool_choice") is not None:
            changes["tool_choice"] = session["tool_choice"]
        if session.get("instructions") is not None:
            changes["instructions"] = require(session, "instructions", str, prefix=p)
        if session.get("model") is not None:
            changes["model"] = require(session, "model", str, prefix=p)
        modalities_key = "modalities" if beta else "output_modalities"
        if session.get(modalities_key) is not None:
            changes["output_modalities"] = _modalities(session[modalities_key], p + modalities_key)
        if beta:
            self._beta_audio(session, changes)
        elif session.get("audio") is not None:
            self._ga_audio(_object(session["audio"], "session.audio"), changes)
        return dataclasses.replace(self, **changes)

    def _ga_audio(self, audio: Json, changes: dict[str, Any]) -> None:
        _known(audio, _AUDIO, "session.audio.")
        if audio.get("input") is not None:
            p = "session.audio.input."
            audio_in = _object(audio["input"], p[:-1])
            _known(audio_in, _AUDIO_INPUT, p)
            _format(audio_in.get("format"), p + "format")
            if "turn_detection" in audio_in:
                changes["turn_detection"] = _turn_detection(
                    audio_in["turn_detection"], p + "turn_detection"
                )
            if "transcription" in audio_in:
                changes["transcription"] = _transcription(
                    audio_in["transcription"], p + "transcription"
                )
            if audio_in.get("noise_reduction") is not None:
                _object(audio_in["noise_reduction"], p + "noise_reduction")
        if audio.get("output") is not None:
            p = "session.audio.output."
            audio_out = _object(audio["output"], p[:-1])
            _known(audio_out, _AUDIO_OUTPUT, p)
            _format(audio_out.get("format"), p + "format")
            if audio_out.get("voice") is not None:
                changes["voice"] = require(audio_out, "voice", str, prefix=p)
            if audio_out.get("speed") is not None:
                changes["speed"] = float(require(audio_out, "speed", (int, float), prefix=p))

    def _beta_audio(self, session: Json, changes: dict[str, Any]) -> None:
        p = "session."
        if "turn_detection" in session:
            changes["turn_detection"] = _turn_detection(
                session["turn_detection"], p + "turn_detection"
            )
        if "input_audio_transcription" in session:
            changes["transcription"] = _transcription(
                session["input_audio_transcription"], p + "input_audio_transcription"
            )
        if session.get("voice") is not None:
            changes["voice"] = require(session, "voice", str, prefix=p)
        if session.get("speed") is not None:
            changes["speed"] = float(session["speed"])
        for key in ("input_audio_format", "output_audio_format"):
            value = session.get(key)
            if value is not None and value != "pcm16":
                raise invalid_value(p + key, value, ("pcm16",))

    def to_json(self, *, beta: bool, session_id: str) -> Json:
        """The session object of session.created / session.updated."""
        if beta:
            return {
                "id": session_id,
                "modalities": ["audio", "text"] if self.audio_out else ["text"],
                "instructions": self.instructions,
                "voice": self.voice,
                "input_audio_format": "pcm16",
                "output_audio_format": "pcm16",
                "input_audio_transcription": self.transcription,
                "turn_detection": self.turn_detection,
                "tool_choice": self.tool_choice if isinstance(self.tool_choice, str) else "auto",
                "tools": [],
                "max_response_output_tokens": "inf",
            }
        audio_in: Json = {"format": dict(AUDIO_FORMAT), "turn_detection": self.turn_detection}
        if self.transcription is not None:
            audio_in["transcription"] = self.transcription
        return {
            "type": "realtime",
            "model": self.model,
            "output_modalities": list(self.output_modalities),
            "instructions": self.instructions,
            "audio": {
                "input": audio_in,
                "output": {"format": dict(AUDIO_FORMAT), "voice": self.voice, "speed": self.speed},
            },
            "tool_choice": self.tool_choice if isinstance(self.tool_choice, str) else "auto",
            "tools": [],
            "max_output_tokens": "inf",
        }


def _modalities(value: object, param: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise invalid_type(param, "a non-empty array")
    for v in value:
        if v not in _MODALITIES:
            raise invalid_value(param, v, _MODALITIES)
    # the API takes one output modality; audio always comes with its transcript
    return ("audio",) if "audio" in value else ("text",)


def _format(value: object, param: str) -> None:
    if value is None:
        return
    fmt = _object(value, param)
    kind = fmt.get("type")
    if kind is not None and kind != "audio/pcm":
        raise invalid_value(param + ".type", kind, ("audio/pcm",))
    rate = fmt.get("rate")
    if rate is not None and rate != AUDIO_FORMAT["rate"]:
        raise invalid_value(param + ".rate", rate, (str(AUDIO_FORMAT["rate"]),))


def _transcription(value: object, param: str) -> Json | None:
    if value is None:
        return None
    config = _object(value, param)
    _known(config, frozenset({"model", "language", "prompt"}), param + ".")
    if config.get("model") is not None:
        require(config, "model", str, prefix=param + ".")
    return dict(config)


def _turn_detection(value: object, param: str) -> Json | None:
    if value is None:
        return None
    td = _object(value, param)
    kind = td.get("type", "server_vad")
    if kind not in _TURN_DETECTION:
        raise invalid_value(param + ".type", kind, tuple(_TURN_DETECTION))
    _known(td, _TURN_DETECTION[kind], param + ".")
    keys: dict[str, type | tuple[type, ...]] = {
        "create_response": bool,
        "interrupt_response": bool,
    }
    if kind == "server_vad":
        keys.update(
            threshold=(int, float),
            prefix_padding_ms=int,
            silence_duration_ms=int,
            idle_timeout_ms=int,
        )
    else:
        keys.update(eagerness=str)
    out: Json = {"type": kind, "create_response": True, "interrupt_response": True}
    for key, types in keys.items():
        if td.get(key) is not None:
            out[key] = require(td, key, types, prefix=param + ".")
    return out


def response_params(params: Json, *, beta: bool, audio: bool) -> tuple[dict[str, str] | None, bool]:
    """`response.create`'s overrides: its metadata, and whether the reply carries audio."""
    _known(params, _RESPONSE, "response.")
    metadata = params.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise invalid_type("response.metadata", "a map of strings")
    key = "modalities" if beta else "output_modalities"
    if params.get(key) is not None:
        audio = "audio" in _modalities(params[key], f"response.{key}")
    return metadata, audio
