from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from realtime_supervisor import logs
from realtime_supervisor._observations import AgentAudioPlayed, UserSpeechStopped
from realtime_supervisor._watchdog import Watchdog
from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.errors import ConfigError
from realtime_supervisor.logs import (
    REDACTED,
    Redactor,
    bind_session,
    configure_logging,
    redact_logging,
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
def _reset_logging() -> Iterator[None]:
    """Each test starts from an unconfigured structlog and leaves the root logger as it was."""
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)
    logs._Settings.redactor = None
    logs._Settings.plain_rooms = False


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
    assert [line["message"] for line in lines] == [
        f"connecting with {REDACTED} and Bearer {REDACTED}",
        "session.failed",
    ]
    assert lines[0]["level"] == "INFO"
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


# -- free-text secret shapes, on every path a record can take ------------------------------------

HEX_KEY = "9c1f7e2a4b6d8f0a1c3e5a7b9d1f3e5a"
USERINFO_PASSWORD = "S3cretPassw0rdInUrl"
PASSWORD = "hunter2hunter2"
EPHEMERAL = "ek_68af1b2c3d4e5f60718293a4b5c6d7e8"
SIGNATURE = "9f86d081884c7d659a2feaa0c55ad015"
SIG_PARAM = "abcXYZ0987654321sig"
OPAQUE = "opaque-token-value-9876543210"
FREE_TEXT = (
    f"api-key: {HEX_KEY} | wss://agent:{USERINFO_PASSWORD}@realtime.example.com/v1 | "
    f"password={PASSWORD} | client secret {EPHEMERAL} | "
    f"https://b.s3.amazonaws.com/r.ogg?X-Amz-Algorithm=AWS4&X-Amz-Signature={SIGNATURE} | "
    f"https://cdn.example.com/a.wav?se=2026&sig={SIG_PARAM} | Authorization: Bearer {OPAQUE}"
)
PLANTED = (HEX_KEY, USERINFO_PASSWORD, PASSWORD, EPHEMERAL, SIGNATURE, SIG_PARAM, OPAQUE, "68af1b")


def test_free_text_secret_shapes_are_scrubbed() -> None:
    """Header- and assignment-style keys, URL userinfo, ek_ keys, signatures and Bearer go."""
    text = Redactor().scrub(FREE_TEXT)
    for secret in PLANTED:
        assert secret not in text, secret
    # what is not secret stays readable
    assert "realtime.example.com/v1" in text and "X-Amz-Algorithm=AWS4" in text
    assert Redactor().scrub("tokens: 12, keyframes=3, monkey: banana") == (
        "tokens: 12, keyframes=3, monkey: banana"
    )


def plant_everywhere() -> None:
    """Every path: a livekit stdlib record (message, args, extras, traceback), a structlog event
    and the library's own logger (fields and traceback)."""
    lk = logging.getLogger("livekit.agents")
    lk.warning("connecting %s", FREE_TEXT, extra={"url": FREE_TEXT, "api_key": HEX_KEY})
    try:
        raise RuntimeError(FREE_TEXT)
    except RuntimeError:
        lk.exception("failed to connect")
    structlog.get_logger("app").warning("app.event", detail=FREE_TEXT, headers={"x": FREE_TEXT})
    ours = logs.get_logger()
    ours.warning("stall.detected", detail=FREE_TEXT, room="sip-+15551234567")
    try:
        raise ValueError(FREE_TEXT)
    except ValueError as exc:
        ours.error("watchdog.error", error=repr(exc), exc_info=exc)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_no_planted_secret_reaches_configured_output(fmt: str) -> None:
    """configure_logging: stdlib and structlog records alike come out scrubbed, rooms hashed."""
    out = io.StringIO()
    configure_logging(fmt, "INFO", secrets=[], stream=out)  # type: ignore[arg-type]
    plant_everywhere()
    text = out.getvalue()
    for event in ("connecting", "failed to connect", "app.event", "stall.detected", "ValueError"):
        assert event in text, event
    for secret in (*PLANTED, "+15551234567"):
        assert secret not in text, secret


def test_no_planted_secret_reaches_livekit_handlers() -> None:
    """Under livekit's CLI (its JsonFormatter on the root), redact_logging scrubs every record;
    ours and livekit's share livekit's JSON shape."""
    from livekit.agents.cli.log import JsonFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    redact_logging(secrets=[])
    plant_everywhere()
    text = out.getvalue()
    for secret in (*PLANTED, "+15551234567"):
        assert secret not in text, secret
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 5
    for line in lines:  # one shape
        assert {"message", "level", "name", "timestamp"} <= line.keys()
    stall = next(line for line in lines if line["message"] == "stall.detected")
    assert stall["name"] == "realtime_supervisor" and stall["level"] == "WARNING"
    assert stall["room"].startswith("r-")
    assert next(ln for ln in lines if ln["message"] == "connecting [redacted]" or
                ln["message"].startswith("connecting"))["api_key"] == REDACTED  # fmt: skip


def test_library_records_are_scrubbed_under_a_plain_basic_config() -> None:
    """With only logging.basicConfig (no filter of ours on its handler), the library's own
    records, tracebacks included, are scrubbed by the filter on its logger."""
    out = io.StringIO()
    logging.basicConfig(stream=out, level=logging.INFO, format="%(message)s %(detail)s", force=True)
    ours = logs.get_logger()
    ours.warning("stall.detected", detail=FREE_TEXT)
    try:
        raise ValueError(FREE_TEXT)
    except ValueError as exc:
        ours.error("watchdog.error", detail="x", exc_info=exc)
    text = out.getvalue()
    assert "stall.detected" in text and "ValueError" in text
    for secret in PLANTED:
        assert secret not in text, secret


def test_rooms_are_hashed_by_default_and_plain_on_request() -> None:
    """A room name (a caller's number, often) is logged as a stable keyed hash unless opted in."""
    out = io.StringIO()
    configure_logging("json", stream=out, secrets=[])
    bind_session("s1", "sip-+15551234567", "j1")
    logs.get_logger().info("a")
    logs.get_logger().info("b")
    configure_logging("json", stream=out, secrets=[], plain_rooms=True)
    logs.get_logger().info("c")
    a, b, c = (json.loads(line) for line in out.getvalue().splitlines())
    assert a["room"] == b["room"] != "sip-+15551234567"
    assert a["room"].startswith("r-") and a["session_id"] == "s1"
    assert c["room"] == "sip-+15551234567"


# -- the watchdog's events through plain stdlib logging ------------------------------------------


class _Scripted:
    """reissue: the agent stays silent; reconnect: raises; so the incident climbs to escalation,
    then (second incident) a reissue that speaks."""

    def __init__(self) -> None:
        self.watchdog: Any = None
        self.speak = False

    async def reissue(self, instructions: str | None) -> None:
        if self.speak:
            asyncio.get_running_loop().call_soon(self.watchdog.observe, AgentAudioPlayed())

    async def reconnect(self) -> None:
        raise RuntimeError(f"reconnect failed: api-key: {HEX_KEY}")

    async def escalate(self, stall: Any, reason: str) -> None:
        return None


async def test_plain_basic_config_sees_every_watchdog_event() -> None:
    """stall.detected, recovery.started/failed/retrying/succeeded, escalation and watchdog.error
    reach a plain `logging.basicConfig` handler, with their fields as record extras."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logging.basicConfig(level=logging.INFO, handlers=[Keep()], force=True)
    config = WatchdogConfig(
        reply_timeout=0.2, recovery_timeout=0.2, reconnect_attempts=2, reconnect_backoff_max=0.01
    )
    actions = _Scripted()
    sleep_calls: list[float] = []

    async def no_sleep(seconds: float) -> None:
        sleep_calls.append(seconds)

    wd = Watchdog(config, actions, context={"session_id": "s1"}, sleep=no_sleep)
    actions.watchdog = wd
    async with wd:
        wd.observe(UserSpeechStopped())
        await _until(lambda: wd.counters.escalations == 1)
        wd.observe(AgentAudioPlayed())  # the caller hears the agent: the incident is over
        actions.speak = True
        wd.observe(UserSpeechStopped())
        await _until(lambda: wd.counters.recoveries_succeeded == 1)
    by_name = {r.getMessage(): r for r in records if r.name == "realtime_supervisor"}
    assert {
        "stall.detected",
        "recovery.started",
        "recovery.failed",
        "recovery.retrying",
        "recovery.succeeded",
        "escalation",
        "watchdog.error",
    } <= set(by_name)
    stall = by_name["stall.detected"]
    assert stall.levelno == logging.WARNING
    assert vars(stall)["kind"] == "no_reply" and vars(stall)["session_id"] == "s1"
    assert vars(by_name["escalation"])["reason"]
    assert HEX_KEY not in repr([vars(r) for r in records])


async def _until(check: Any) -> None:
    """Poll `check` on the loop; the limit is only a guard against a hung watchdog."""
    async with asyncio.timeout(10):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


def test_records_point_at_the_caller_not_at_structlog() -> None:
    """livekit's JSON prints a record's file and line: they are the code that logged."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logging.basicConfig(level=logging.INFO, handlers=[Keep()], force=True)
    logs.get_logger().warning("here")
    assert records[0].pathname == __file__
    assert records[0].funcName == "test_records_point_at_the_caller_not_at_structlog"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_carry_no_frame_locals(fmt: str) -> None:
    """A secret held in a local variable of a failing frame never reaches the output (rich's
    tracebacks would print it; ours are plain)."""
    out = io.StringIO()
    configure_logging(fmt, "INFO", secrets=[], stream=out)  # type: ignore[arg-type]

    def handle_event() -> None:
        payload = {"note": "a server event", "held": "QmFzZTY0SGVsZExvY2FsVmFsdWU"}
        raise KeyError(len(payload))

    try:
        handle_event()
    except KeyError:
        structlog.get_logger("app").exception("failed to handle event")
        logging.getLogger("livekit.agents").exception("failed to handle event")
    text = out.getvalue()
    assert text.count("KeyError") >= 2 and "handle_event" in text
    assert "QmFzZTY0SGVsZExvY2FsVmFsdWU" not in text
