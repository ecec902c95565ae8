"""Logging: stdlib `logging` under one name, structlog rendering, secret redaction, room privacy.

The library logs through the stdlib logger `realtime_supervisor` (livekit's plugins do the same
with theirs), so whatever the application set up applies: `logging.basicConfig`, livekit's CLI
(its JSON or colored formatter and `--log-level`), or `configure_logging` below. A record's
message is the event name (`stall.detected`); its fields ride as the record's extra attributes,
which livekit's formatters print as JSON fields, as they do for livekit's own records.

`get_logger` builds the library's logger: a structlog `BoundLogger` over that stdlib logger,
whose processors filter by the stdlib level (so a silenced logger costs nothing), merge the
context bound with `bind_session`, hash the room, redact, and hand the event to stdlib. Under
`structlog.testing.capture_logs` it defers to structlog's configuration, so an application can
assert our events the structlog way.

`configure_logging` is for entry points (simulate, the chaos server, an application without a
logging setup of its own): one root handler whose `structlog.stdlib.ProcessorFormatter` renders
every record, ours, the application's and livekit's, as one shape (livekit's JSON keys:
`message`, `level`, `name`, `timestamp`, then the fields) or as console lines; structlog's own
`get_logger()` is routed through stdlib too. `redact_logging` is for an entry point whose
handlers someone else installed (livekit's CLI): it puts the redacting filter on them.

Redaction (`Redactor` for event dicts, `RedactingFilter` for stdlib records):
- a value whose key names a secret (api_key, apikey, token, secret, password, authorization, key,
  as a word of the key: `OPENAI_API_KEY`, `accessToken`; not `input_tokens`) becomes "[redacted]";
- in every string, the message, the fields and the traceback included, however deeply nested:
  OpenAI keys (`sk-...`) and ephemeral client secrets (`ek_...`), `Bearer`/`Basic` credentials,
  JWTs (LiveKit access tokens), header- and assignment-style credentials (`api-key: <hex>`,
  `password=...`), URL userinfo (`wss://user:pass@host`), credentials and signatures in URL
  queries (`?api-key=`, `&sig=`, `X-Amz-Signature=`), and the known secret values (by default the
  values of secret-named environment variables, such as LIVEKIT_API_SECRET).
- Tracebacks are formatted by the stdlib (or structlog's plain formatter): no frame locals.

Room names (SIP rooms often carry the caller's number) are logged as a keyed hash,
`room=r-<12 hex>`, stable within a process; `configure_logging(plain_rooms=True)` (or
`redact_logging(plain_rooms=True)`) opts in to the plain name. The session id and job id
correlate a call's lines across processes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets as _secrets
import sys
import traceback
from collections.abc import Iterable, Mapping, MutableMapping
from contextvars import Token
from typing import Any, Final, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from .errors import ConfigError

__all__ = [
    "LOGGER_NAME",
    "REDACTED",
    "RedactingFilter",
    "Redactor",
    "bind_session",
    "configure_logging",
    "get_logger",
    "hash_room",
    "lazy_logger",
    "redact_logging",
    "secrets_from_env",
]

LOGGER_NAME: Final = "realtime_supervisor"
REDACTED: Final = "[redacted]"
LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Shorter known values would redact ordinary words; real keys and secrets are far longer.
_MIN_KNOWN: Final = 8
# not "pwd": the shell's PWD is a directory
_SECRET_WORDS: Final = frozenset(
    {"apikey", "key", "token", "secret", "password", "passwd", "authorization", "credentials"}
    | {"signature", "sig"}
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
# A credential's name in free text: `api-key`, `x-api-key`, `access_token`, `password`, ...
_CRED_NAME = (
    r"(?:x-)?(?:api[-_ ]?key|access[-_]?token|refresh[-_]?token|client[-_]?secret|secret|"
    r"token|password|passwd|pwd|key|sig|signature|x-amz-signature|x-goog-signature|"
    r"authorization|credentials?)"
)
_PATTERNS: Final = (
    # OpenAI keys (sk-..., sk-proj-..., sk-svcacct-...) and ephemeral client secrets (ek_...)
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), REDACTED),
    (re.compile(r"\bek_[A-Za-z0-9_-]{12,}"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # JWT: base64url JSON header ("{"... encodes to "eyJ"), then payload and signature
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}"), REDACTED),
    # URL userinfo: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), rf"\1{REDACTED}@"),
    # query parameters: ?api-key=..., &sig=..., &X-Amz-Signature=...
    (re.compile(rf"(?i)([?&;]{_CRED_NAME}=)[^&#\s\"']+"), rf"\1{REDACTED}"),
    # header or assignment style: `api-key: 0123...`, `password=hunter2`, `"token": "..."`
    (
        re.compile(
            rf"(?i)(\b{_CRED_NAME}[\"']?\s*[:=]\s*[\"']?)(?!{re.escape(REDACTED)})[^\s\"',;&]{{4,}}"
        ),
        rf"\1{REDACTED}",
    ),
)
# LogRecord's own attributes: everything else on a record is an extra field.
_RECORD_ATTRS: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)
_DONE: Final = "_realtime_supervisor_done"  # marks a record the filter (or our logger) handled
_OURS: Final = "_realtime_supervisor_handler"  # marks the root handler configure_logging added


def _secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    words = [w for w in _WORD_SPLIT.split(_CAMEL.sub("_", key).lower()) if w]
    joined = "".join(words)
    return any(w in _SECRET_WORDS for w in words) or "apikey" in joined


def secrets_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names say they are secrets (LIVEKIT_API_SECRET...)."""
    source = os.environ if env is None else env
    return [v for k, v in source.items() if _secret_key(k) and len(v) >= _MIN_KNOWN]


class Redactor:
    """A structlog processor that scrubs secrets from keys, values and strings (see module doc)."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole.
        values = sorted({k for k in known if isinstance(k, str) and len(k) >= _MIN_KNOWN}, key=len)
        self._known = (
            re.compile("|".join(re.escape(v) for v in reversed(values))) if values else None
        )

    def scrub(self, text: str) -> str:
        """`text` with every secret-looking substring replaced."""
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def value(self, value: Any, depth: int = 0) -> Any:
        """`value` scrubbed: strings, and the values of mappings and sequences, recursively."""
        if depth > 20:  # a cycle or an absurd nesting: stop rather than recurse forever
            return REDACTED
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, bytes):
            return self.scrub(value.decode("utf-8", "replace"))
        if isinstance(value, Mapping):
            return {
                k: REDACTED if _secret_key(k) else self.value(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v, depth + 1) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, BaseException):
            return self.scrub(repr(value))
        # Anything else is rendered by repr/str later: scrub that rendering now.
        return self.scrub(str(value))

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return {
            k: REDACTED
            if _secret_key(k)
            else (v if k in ("exc_info", "stack_info") else self.value(v))
            for k, v in event_dict.items()
        }


# -- process-wide settings (set by the entry point) ----------------------------------------------

_KEY: Final = _secrets.token_bytes(16)  # keys the room hash; per process, never logged


class _Settings:
    redactor: Redactor | None = None  # built on first use from the environment's secrets
    plain_rooms: bool = False


def _redactor() -> Redactor:
    if _Settings.redactor is None:
        _Settings.redactor = Redactor(secrets_from_env())
    return _Settings.redactor


def hash_room(room: str) -> str:
    """The room name as logged: a keyed hash (`r-<12 hex>`), or the name itself if opted in."""
    if _Settings.plain_rooms or not room:
        return room
    return "r-" + hmac.new(_KEY, room.encode(), hashlib.sha256).hexdigest()[:12]


def _room_processor(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    room = event_dict.get("room")
    if isinstance(room, str):
        event_dict["room"] = hash_room(room)
    return event_dict


def _redact_processor(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    return _redactor()(logger, method_name, event_dict)


def _to_stdlib(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> tuple[tuple[str], dict[str, Any]]:
    """The last processor: the event as a stdlib record's message, the fields as its extras."""
    event = str(event_dict.pop("event", ""))
    kwargs: dict[str, Any] = {}
    for name in ("exc_info", "stack_info"):
        if name in event_dict:
            kwargs[name] = event_dict.pop(name)
    # a field named like a LogRecord attribute would make `makeRecord` raise: suffix it
    extra = {(f"{k}_" if k in _RECORD_ATTRS else k): v for k, v in event_dict.items()}
    extra[_DONE] = True  # redacted and room-hashed already
    kwargs["extra"] = extra
    if getattr(type(logger), "findCaller", None) is logging.Logger.findCaller:
        # (structlog's own logger class, set by its LoggerFactory, skips its frames itself)
        kwargs["stacklevel"] = _caller_level()
    return (event,), kwargs


_STRUCTLOG_DIR: Final = os.path.dirname(structlog.__file__)


def _caller_level() -> int:
    """The record's file and line (livekit's JSON prints them) are our caller's, not structlog's:
    the stdlib `stacklevel` from the structlog frame that calls the stdlib logger (level 1) to
    the first frame outside structlog and this module. 1 if the stack is not as expected."""
    frame = sys._getframe(1)
    calling: int | None = None
    depth = 0
    while frame is not None:
        path = frame.f_code.co_filename
        if not (path.startswith(_STRUCTLOG_DIR) or path == __file__):
            break
        if calling is None and frame.f_code.co_name == "_proxy_to_logger":
            calling = depth
        frame = frame.f_back  # type: ignore[assignment]
        depth += 1
    return 1 if calling is None or frame is None else depth - calling + 1


_CHAIN: Final[list[Processor]] = [
    structlog.stdlib.filter_by_level,
    structlog.contextvars.merge_contextvars,
    _room_processor,
    _redact_processor,
    _to_stdlib,
]


def _capturing() -> bool:
    return any(
        isinstance(p, structlog.testing.LogCapture)
        for p in structlog.get_config().get("processors", ())
    )


def get_logger(name: str = LOGGER_NAME, **context: Any) -> Any:
    """The library's logger: structlog over the stdlib logger `name` (see the module doc).

    The stdlib logger gets a `RedactingFilter` of its own, so its records are scrubbed (the
    traceback included) before any handler sees them, whoever installed the handlers.
    """
    if _capturing():
        return structlog.get_logger(name).bind(**context)
    stdlib = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in stdlib.filters):
        stdlib.addFilter(RedactingFilter())
    return structlog.wrap_logger(
        stdlib,
        processors=_CHAIN,
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
    ).bind(**context)


class _LazyLogger:
    """`get_logger(name)` resolved at each call: for module-level loggers, which exist before the
    application (or a test's `capture_logs`) has set logging up."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, method: str) -> Any:
        return getattr(get_logger(self._name), method)


def lazy_logger(name: str = LOGGER_NAME) -> Any:
    """A module-level logger for library code: see `get_logger`."""
    return _LazyLogger(name)


class RedactingFilter(logging.Filter):
    """A handler filter that scrubs every record it passes: message, args, extras, traceback.

    On a handler it sees every record that reaches that handler, livekit's included (a filter on
    a logger would see only that logger's own records). The traceback is formatted here, by the
    stdlib (no frame locals), scrubbed into `exc_text`, and `exc_info` dropped, so no formatter
    can print the raw one. Never raises: a record it cannot scrub is passed on as it is.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._given = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _DONE, None) == "filtered":
            return True
        redactor = self._given or _redactor()
        try:
            ours = getattr(record, _DONE, False) is True
            if isinstance(record.msg, dict):  # livekit's JsonFormatter accepts dict messages
                record.msg = redactor(None, "", dict(record.msg))
            else:
                record.msg = redactor.scrub(record.getMessage())
                record.args = ()
            if record.exc_info:
                text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
                record.exc_text = redactor.scrub(text)
                record.exc_info = None
            elif record.exc_text:
                record.exc_text = redactor.scrub(record.exc_text)
            if record.stack_info:
                record.stack_info = redactor.scrub(record.stack_info)
            fields: MutableMapping[str, Any] = vars(record)
            for key in [k for k in fields if k not in _RECORD_ATTRS and not k.startswith("_")]:
                value = fields[key]
                if _secret_key(key):
                    fields[key] = REDACTED
                elif key == "room" and isinstance(value, str) and not ours:
                    fields[key] = hash_room(value)
                else:
                    fields[key] = redactor.value(value)
            setattr(record, _DONE, "filtered")
        except Exception:  # never break the application's logging for it
            pass
        return True


def _record_fields(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """ProcessorFormatter pre-chain: a record's extras become fields, its exc_text `exc_info`."""
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                # `_to_stdlib` suffixed fields named like a record attribute: unsuffix them
                name = key[:-1] if key.endswith("_") and key[:-1] in _RECORD_ATTRS else key
                event_dict.setdefault(name, value)
        if record.exc_text and "exc_info" not in event_dict:
            event_dict["exception"] = record.exc_text
        event_dict["name"] = record.name
    return event_dict


def _livekit_shape(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """livekit's JSON keys: `message`, `level` in capitals, `name`, `timestamp` first."""
    shaped: EventDict = {
        "message": event_dict.pop("event", ""),
        "level": str(event_dict.pop("level", method_name)).upper(),
        "name": event_dict.pop("name", None) or event_dict.pop("logger", LOGGER_NAME),
        "timestamp": event_dict.pop("timestamp", None),
    }
    shaped.update(event_dict)
    return shaped


def configure_logging(
    format: Literal["json", "console"] = "json",
    level: str = "INFO",
    *,
    secrets: Iterable[str] | None = None,
    stream: TextIO | None = None,
    plain_rooms: bool = False,
) -> logging.Handler:
    """For an entry point: one root handler rendering every record as JSON lines or console.

    `secrets` are known values to scrub wherever they appear; by default the values of the
    secret-named environment variables. `stream` defaults to sys.stdout at call time. Calling it
    again replaces the handler it installed. Returns the handler.
    """
    if format not in ("json", "console"):
        raise ConfigError("log_format", f"expected json or console, got {format!r}")
    name = str(level).upper()
    if name not in LEVELS:
        raise ConfigError("log_level", f"expected one of {', '.join(LEVELS)}, got {level!r}")
    redactor = _set_redaction(secrets, plain_rooms)
    renderer: Processor
    if format == "json":
        renderer = structlog.processors.JSONRenderer(default=str)
    else:
        # Plain tracebacks: rich's would print local variables, secrets among them.
        renderer = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.plain_traceback,
            colors=(stream or sys.stdout).isatty(),
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            _record_fields,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redactor,
            *([_livekit_shape] if format == "json" else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter(redactor))
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(name)
    _route_structlog()
    return handler


def redact_logging(
    secrets: Iterable[str] | None = None,
    *,
    plain_rooms: bool = False,
    handlers: Iterable[logging.Handler] | None = None,
) -> None:
    """Scrub every record reaching `handlers` (default: the root logger's, livekit's CLI's).

    Also routes structlog's `get_logger()` through stdlib, so those handlers render it.
    """
    redactor = _set_redaction(secrets, plain_rooms)
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(redactor))
    _route_structlog()


def _set_redaction(secrets: Iterable[str] | None, plain_rooms: bool) -> Redactor:
    redactor = Redactor(secrets_from_env() if secrets is None else secrets)
    _Settings.redactor = redactor
    _Settings.plain_rooms = plain_rooms
    return redactor


def _route_structlog() -> None:
    """structlog's `get_logger()` (the agent's own events) through the same stdlib chain."""
    structlog.configure(
        processors=list(_CHAIN),
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=False,
    )


def bind_session(session_id: str, room: str, job_id: str) -> Mapping[str, Token[Any]]:
    """Bind the session's identity to every log event of this task (and tasks it starts).

    The room is hashed when logged (see the module doc). Returns the tokens for
    `structlog.contextvars.reset_contextvars(**tokens)`.
    """
    return structlog.contextvars.bind_contextvars(session_id=session_id, room=room, job_id=job_id)
