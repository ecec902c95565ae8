from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from realtime_supervisor.errors import ConfigError
from realtime_supervisor.logs import (
    REDACTED,
    Redactor,
    bind_session,
    configure_logging,
    secrets_from_env,
)

OPENAI_KEY = "sk-proj-Abc123Def456Ghi789Jkl012Mno345"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZ2VudCIsInZpZGVvIjp7fX0."
    "c2lnbmF0dXJlLXNpZ25hdHVyZQ"
)
LK_SECRET = "Lk5ecretValueThatLooksLikeNothing42"
AZURE_KEY = "0123456789abcdef0123456789abcdef"
BEARER = "Bearer opaque-token-value-9876543210"
SECRETS = (OPENAI_KEY, JWT, LK_SECRET, AZURE_KEY, "opaque-token-value-9876543210")


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def log_everything(log: structlog.typing.FilteringBoundLogger) -> None:
    """Log secrets in every place a careless caller could put them."""
    log.info(
        f"connecting with {OPENAI_KEY} and {BEARER}",
        api_key=OPENAI_KEY,
        OPENAI_API_KEY=OPENAI_KEY,
        livekitApiSecret=LK_SECRET,
        headers={"Authorization": BEARER, "api-key": AZURE_KEY},
        url=f"wss://x.openai.azure.com/openai/realtime?api-key={AZURE_KEY}&deployment=gpt",
        token=JWT,
        nested=[{"note": f"joined with {JWT}"}, ("tuple", LK_SECRET)],
        blob=OPENAI_KEY.encode(),
        input_tokens=1234,
    )
    try:
        raise RuntimeError(f"auth failed for {LK_SECRET}")
    except RuntimeError:
        log.exception("session.failed", password="hunter2hunter2")


def test_secret_named_keys_are_redacted() -> None:
    """Values under api_key/token/secret/password/authorization/key-like keys become [redacted]."""
    with capture_logs(processors=[Redactor()]) as logs:
        structlog.get_logger().info(
            "x",
            api_key="a",
            apiKey="b",
            OPENAI_API_KEY="c",
            access_token="d",
            LIVEKIT_API_SECRET="e",
            password="f",
            Authorization="g",
            key="h",
            nested={"client_secret": {"value": "i"}, "items": [{"x-api-key": "j"}]},
            input_tokens=12,
            monkey="banana",
            keyframes=3,
        )
    event = logs[0]
    for k in ("api_key", "apiKey", "OPENAI_API_KEY", "access_token", "LIVEKIT_API_SECRET",
              "password", "Authorization", "key"):  # fmt: skip
        assert event[k] == REDACTED, k
    assert event["nested"] == {"client_secret": REDACTED, "items": [{"x-api-key": REDACTED}]}
    assert event["input_tokens"] == 12
    assert event["monkey"] == "banana"
    assert event["keyframes"] == 3


def test_secret_looking_values_are_redacted_anywhere() -> None:
    """OpenAI keys, Bearer credentials, JWTs and URL credentials are scrubbed from any string."""
    with capture_logs(processors=[Redactor()]) as logs:
        structlog.get_logger().info(
            f"using {OPENAI_KEY}",
            header=BEARER,
            deep={"a": [f"token {JWT} here", {"b": (f"({OPENAI_KEY})",)}]},
            url="wss://h/openai/realtime?deployment=gpt&api-key=abcdef123456&x=1",
            plain="the agent said sk-ip that turn",
        )
    event = logs[0]
    assert event["event"] == f"using {REDACTED}"
    assert event["header"] == f"Bearer {REDACTED}"
    assert event["deep"] == {"a": [f"token {REDACTED} here", {"b": [f"({REDACTED})"]}]}
    assert event["url"] == f"wss://h/openai/realtime?deployment=gpt&api-key={REDACTED}&x=1"
    assert event["plain"] == "the agent said sk-ip that turn"


def test_known_values_are_redacted_and_short_ones_ignored() -> None:
    """Known secret values are scrubbed wherever they appear; values under 8 chars are ignored."""
    redactor = Redactor([LK_SECRET, "abc", LK_SECRET[:12]])
    assert redactor.scrub(f"secret={LK_SECRET}!") == f"secret={REDACTED}!"
    assert redactor.scrub(f"prefix {LK_SECRET[:12]}") == f"prefix {REDACTED}"
    assert redactor.scrub("abc abc") == "abc abc"


def test_secrets_from_env_takes_secret_named_variables() -> None:
    """The values of secret-named variables are the known secrets; other variables are not."""
    env = {
        "LIVEKIT_API_SECRET": LK_SECRET,
        "LIVEKIT_API_KEY": "APIabcdefgh",
        "AZURE_OPENAI_AD_TOKEN": JWT,
        "LIVEKIT_URL": "wss://example.livekit.cloud",
        "AGENT_MODEL": "gpt-realtime",
        "SHORT_SECRET": "x",
    }
    assert sorted(secrets_from_env(env)) == sorted([LK_SECRET, "APIabcdefgh", JWT])


def test_rendered_json_lines_never_contain_a_secret() -> None:
    """The JSON output (exceptions included) carries the events but none of the secrets."""
    out = io.StringIO()
    configure_logging("json", "INFO", secrets=[LK_SECRET, AZURE_KEY], stream=out)
    log = structlog.get_logger()
    log_everything(log)
    log.debug("hidden.at.info")
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["event"] for line in lines] == [
        f"connecting with {REDACTED} and Bearer {REDACTED}",
        "session.failed",
    ]
    assert lines[0]["level"] == "info"
    assert "timestamp" in lines[0]
    assert lines[0]["input_tokens"] == 1234
    assert "RuntimeError" in lines[1]["exception"]
    for secret in (*SECRETS, "hunter2hunter2"):
        assert secret not in text, secret


def test_rendered_console_output_never_contains_a_secret() -> None:
    """The console renderer gets the same redaction, tracebacks included."""
    out = io.StringIO()
    configure_logging("console", "debug", secrets=[LK_SECRET, AZURE_KEY], stream=out)
    log_everything(structlog.get_logger())
    text = out.getvalue()
    assert "session.failed" in text
    assert "RuntimeError" in text
    for secret in (*SECRETS, "hunter2hunter2"):
        assert secret not in text, secret


def test_configure_logging_uses_environment_secrets_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without explicit secrets, the secret-named environment variables' values are scrubbed."""
    monkeypatch.setenv("LIVEKIT_API_SECRET", LK_SECRET)
    out = io.StringIO()
    configure_logging(stream=out)
    structlog.get_logger().warning("worker.config", detail=f"secret is {LK_SECRET}")
    assert LK_SECRET not in out.getvalue()
    assert json.loads(out.getvalue())["detail"] == f"secret is {REDACTED}"


def test_configure_logging_rejects_unknown_format_and_level() -> None:
    """A bad format or level is a ConfigError naming the field."""
    with pytest.raises(ConfigError) as fmt:
        configure_logging("xml")  # type: ignore[arg-type]
    assert fmt.value.field == "log_format"
    with pytest.raises(ConfigError) as lvl:
        configure_logging("json", "LOUD")
    assert lvl.value.field == "log_level"


async def test_bind_session_binds_context_for_its_task_only() -> None:
    """Context bound in one session task appears on its events and its subtasks', not others'."""

    async def session(sid: str) -> None:
        bind_session(sid, f"room-{sid}", f"job-{sid}")
        structlog.get_logger().info("turn.start")
        await asyncio.create_task(asyncio.to_thread(lambda: None))
        await asyncio.create_task(_child())

    async def _child() -> None:
        structlog.get_logger().info("timer.fired")

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await asyncio.gather(session("a"), session("b"))
        structlog.get_logger().info("outside")
    by_event: dict[str, list[dict[str, object]]] = {}
    for event in logs:
        by_event.setdefault(str(event["event"]), []).append(event)
    assert sorted(e["session_id"] for e in by_event["turn.start"]) == ["a", "b"]
    for event in by_event["timer.fired"]:
        assert event["room"] == f"room-{event['session_id']}"
        assert event["job_id"] == f"job-{event['session_id']}"
    assert "session_id" not in by_event["outside"][0]
