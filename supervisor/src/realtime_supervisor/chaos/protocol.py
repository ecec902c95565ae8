"""The Realtime wire protocol as the chaos server speaks it: names, shapes, errors, limits.

Pure: dicts in, dicts out. Everything here follows the API reference and the `openai` SDK's
models (every event the server sends validates with `model_validate`, see the tests), on the GA
names and, for the legacy Azure api-versions, the beta names and shapes.

Rules:
1. Events are built with GA names; `to_beta` renames them (the inverse of livekit's
   `_AZURE_EVENT_MAPPING`) and renames assistant content parts for the legacy path.
2. A client event the server refuses raises `Invalid`; it becomes one `error` event naming the
   client's `event_id`, and the connection lives on.
3. Error codes and messages are the real API's where they are known: `invalid_json`,
   `invalid_event` for binary frames, `missing_required_parameter`, `unknown_parameter`,
   `invalid_type`, `invalid_value` listing the supported values, `server_error` with a null
   code and the session id in its message.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "AUDIO_FORMAT",
    "CLIENT_EVENT_TYPES",
    "FATAL_CLOSE_CODE",
    "GA_AZURE_API_VERSION",
    "MIN_COMMIT_MS",
    "QUOTA_MESSAGE",
    "SAMPLE_RATE",
    "SESSION_LIMIT_MESSAGE",
    "Ids",
    "Invalid",
    "Json",
    "is_beta",
    "require",
    "server_error_message",
    "to_beta",
    "unknown_type",
]

Json = dict[str, Any]

SAMPLE_RATE: Final = 24000
AUDIO_FORMAT: Final = {"type": "audio/pcm", "rate": SAMPLE_RATE}
MIN_COMMIT_MS: Final = 100  # the real API refuses to commit less than 100 ms of audio

SESSION_LIMIT_MESSAGE: Final = "Your session hit the maximum duration of 60 minutes."
QUOTA_MESSAGE: Final = (
    "You exceeded your current quota, please check your plan and billing details."
)
# a fatal error's close: the public capture shows a 3000/4000-range code with reason `type.code`
FATAL_CLOSE_CODE: Final = 4000

# the client events the GA API accepts, in the order its error message lists them
CLIENT_EVENT_TYPES: Final = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
    "output_audio_buffer.clear",
)

# Azure's first GA api-version: earlier ones (and every "-preview") speak the beta protocol
GA_AZURE_API_VERSION: Final = "2025-08-28"


def is_beta(api_version: str | None) -> bool:
    """Whether an Azure `api-version` speaks the legacy (beta) protocol; None is the GA path."""
    if api_version is None:
        return False
    return api_version.endswith("-preview") or api_version < GA_AZURE_API_VERSION


# GA name -> legacy (beta) name, the inverse of the plugin's _AZURE_EVENT_MAPPING
_BETA_NAMES: Final = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "conversation.item.added": "conversation.item.created",
}
_BETA_CONTENT: Final = {"output_audio": "audio", "output_text": "text"}


class Invalid(Exception):
    """A client event the server refuses: becomes an `error` event, the connection lives on."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = "invalid_value",
        param: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.type = type_


def missing(param: str) -> Invalid:
    """The real API's error for a missing field."""
    return Invalid(
        f"Missing required parameter: '{param}'.", code="missing_required_parameter", param=param
    )


def unknown_parameter(param: str) -> Invalid:
    """The real API's error for a field it does not know; the whole event is discarded."""
    return Invalid(f"Unknown parameter: '{param}'.", code="unknown_parameter", param=param)


def invalid_type(param: str, expected: str) -> Invalid:
    """The real API's error for a field of the wrong type."""
    return Invalid(
        f"Invalid type for '{param}': expected {expected}.", code="invalid_type", param=param
    )


def invalid_value(param: str, value: object, supported: tuple[str, ...]) -> Invalid:
    """The real API's error for a value outside its enum, listing the supported values."""
    listed = ", ".join(f"'{v}'" for v in supported)
    return Invalid(
        f"Invalid value: '{value}'. Supported values are: {listed}.",
        code="invalid_value",
        param=param,
    )


def unknown_type(type_: str) -> Invalid:
    """An unknown client event type: the message lists the supported ones."""
    return invalid_value("type", type_, CLIENT_EVENT_TYPES)


def server_error_message(session_id: str) -> str:
    """The real API's `server_error` message: long, with the session id (and a null code)."""
    return (
        "The server had an error while processing your request. Sorry about that! You can "
        "retry your request, or contact us through our help center at help.openai.com if you "
        f"keep seeing this error. (Please include the session ID {session_id} in your email.)"
    )


_TYPE_NAMES: Final = {str: "a string", dict: "an object", int: "an integer", bool: "a boolean"}


def require(
    event: Json,
    name: str,
    kind: type | tuple[type, ...],
    *,
    optional: bool = False,
    prefix: str = "",
) -> Any:
    """`event[name]` checked against `kind`; raises `Invalid` naming `prefix + name`."""
    param = prefix + name
    if name not in event or event[name] is None:
        if optional:
            return None
        raise missing(param)
    value = event[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python; the protocol never accepts one for the other
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise invalid_type(param, expected)
    return value


def to_beta(event: Json) -> Json:
    """Rename a GA event to the legacy (beta) protocol the old Azure api-versions speak."""
    out = dict(event)
    out["type"] = _BETA_NAMES.get(event["type"], event["type"])
    if isinstance(out.get("item"), dict):
        out["item"] = _beta_item(out["item"])
    if isinstance(out.get("part"), dict):
        out["part"] = _beta_part(out["part"])
    response = out.get("response")
    if isinstance(response, dict) and isinstance(response.get("output"), list):
        out["response"] = {**response, "output": [_beta_item(i) for i in response["output"]]}
    return out


def _beta_part(part: Json) -> Json:
    return {**part, "type": _BETA_CONTENT.get(str(part.get("type")), part.get("type"))}


def _beta_item(item: Json) -> Json:
    content = item.get("content")
    if not isinstance(content, list):
        return item
    parts = [_beta_part(p) if isinstance(p, dict) else p for p in content]
    return {**item, "content": parts}


class Ids:
    """Fresh ids in the real API's shapes (`event_...`, `item_...`, `resp_...`, ...)."""

    def __init__(self) -> None:
        self.event = _ids("event_")
        self.item = _ids("item_")
        self.response = _ids("resp_")
        self.conversation = _ids("conv_")
        self.session = _ids("sess_")
        self.call = _ids("call_")


def _ids(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    stamp = hashlib.sha1(str(time.time_ns()).encode()).hexdigest()[:6]
    return lambda: f"{prefix}{stamp}{next(counter):06d}"
