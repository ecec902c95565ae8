"""structlog configuration, per-session context, and secret redaction.

Library code only calls `structlog.get_logger()` and logs events with key-values
(`log.info("stall.detected", kind=...)`); `configure_logging` is for entry points (the agent CLI,
the chaos server), never for a library import. `bind_session` binds the session's identity once
per session task; asyncio copies the context into every task it starts, so the watchdog's timers
and actions log with it too.

Redaction runs last before rendering, after exceptions are formatted, so a secret in a traceback
is scrubbed as well:

- a value whose key names a secret (api_key, apikey, token, secret, password, authorization, key,
  as a word of the key: `OPENAI_API_KEY`, `accessToken`; not `input_tokens`) becomes "[redacted]";
- in every string, the event included and however deeply nested: OpenAI keys (`sk-...`),
  `Bearer ...` credentials, JWTs (LiveKit access tokens are JWTs), credentials in URL queries
  (`?api-key=...`), and the known secret values given to `configure_logging` (by default the
  values of secret-named environment variables, such as LIVEKIT_API_SECRET).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from contextvars import Token
from typing import Any, Final, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from .errors import ConfigError

__all__ = [
    "REDACTED",
    "Redactor",
    "bind_session",
    "configure_logging",
    "secrets_from_env",
]

REDACTED: Final = "[redacted]"
LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Shorter known values would redact ordinary words; real keys and secrets are far longer.
_MIN_KNOWN: Final = 8
_SECRET_WORDS: Final = frozenset(
    {"apikey", "key", "token", "secret", "password", "passwd", "authorization", "credentials"}
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_PATTERNS: Final = (
    # OpenAI keys: sk-..., sk-proj-..., sk-svcacct-...
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # JWT: base64url JSON header ("{"... encodes to "eyJ"), then payload and signature
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}"), REDACTED),
    (
        re.compile(
            r"(?i)([?&](?:api[-_]?key|access[-_]?token|token|key|sig|signature|secret)=)[^&#\s\"']+"
        ),
        rf"\1{REDACTED}",
    ),
)


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

    def _value(self, value: Any, depth: int = 0) -> Any:
        if depth > 20:  # a cycle or an absurd nesting: stop rather than recurse forever
            return REDACTED
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, bytes):
            return self.scrub(value.decode("utf-8", "replace"))
        if isinstance(value, Mapping):
            return {
                k: REDACTED if _secret_key(k) else self._value(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self._value(v, depth + 1) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        # Anything else is rendered by repr/str later: scrub that rendering now.
        return self.scrub(str(value))

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return {k: REDACTED if _secret_key(k) else self._value(v) for k, v in event_dict.items()}


def configure_logging(
    format: Literal["json", "console"] = "json",
    level: str = "INFO",
    *,
    secrets: Iterable[str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog for an entry point: JSON lines (production) or console (a terminal).

    `secrets` are known values to scrub wherever they appear; by default the values of the
    secret-named environment variables. `stream` defaults to sys.stdout at call time.
    """
    if format not in ("json", "console"):
        raise ConfigError("log_format", f"expected json or console, got {format!r}")
    name = str(level).upper()
    if name not in LEVELS:
        raise ConfigError("log_level", f"expected one of {', '.join(LEVELS)}, got {level!r}")
    redactor = Redactor(secrets_from_env() if secrets is None else secrets)
    renderer: Processor
    if format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        # Plain tracebacks: rich's would print local variables, secrets among them.
        renderer = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.plain_traceback,
            colors=(stream or sys.stdout).isatty(),
        )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(name)),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )


def bind_session(session_id: str, room: str, job_id: str) -> Mapping[str, Token[Any]]:
    """Bind the session's identity to every log event of this task (and tasks it starts).

    Returns the tokens for `structlog.contextvars.reset_contextvars(**tokens)`.
    """
    return structlog.contextvars.bind_contextvars(session_id=session_id, room=room, job_id=job_id)
