"""Behaviours the README promises, each held by a test that fails without it.

1. A re-issue waits for the interrupted response to close before asking for a new one.
2. A reply asked for while livekit reconnects waits for the new socket.
3. Secret-named keys are redacted in camelCase too (`accessToken`, `clientSecret`).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.logs import REDACTED, Redactor

from .harness import LK_VERSION, start_call

ANSWER_GUARD = 25.0
# a pause the watchdog does not wait out: found at audio_gap_timeout, the original resumes
# about 0.5 s after the re-issue (the default 3 s gap waits out shorter network hiccups)
LATE_RESUME = WatchdogConfig().audio_gap_timeout + 0.8


@pytest.mark.livekit
@pytest.mark.timeout(90)
@pytest.mark.skipif(LK_VERSION < (1, 8), reason="as test_recovery's late-original test: 1.8")
async def test_the_reissue_waits_for_the_interrupted_response_to_close() -> None:
    """The stalled original ignores the cancel and finishes late: the re-issued reply is asked
    for only once it has, so the original's late end cannot cut it short. One stall, one
    re-issue, and the re-issued reply heard whole. (Without the wait livekit lets the late
    `response.done` close the re-issued reply half-way: a second stall and a second re-issue.)
    """
    async with start_call(f"late_resume={LATE_RESUME:g}", supervised=True) as call:
        await call.speak()
        onset = await call.fault_onset()
        assert await call.answered_after(onset, within=ANSWER_GUARD)
        await asyncio.sleep(3.5)  # the original's late audio has come and gone
        counters = call.supervisor.watchdog.counters
        assert counters.stalls_by_kind == {"audio_gap": 1}
        assert counters.recoveries == {"reissue": {"success": 1, "failure": 0}}
        assert not call.logs.saw("failed to handle event")


@pytest.mark.livekit
@pytest.mark.timeout(90)
async def test_a_reply_asked_for_during_a_reconnect_waits_for_the_new_socket() -> None:
    """The server goes away mid-reply and comes back 3 s later. The watchdog's re-issue comes
    while livekit is still reconnecting (livekit's retries: 0.1 s, then every 2 s): it waits for
    the new socket, and the reply is asked for there. (Asked for on the dead connection, livekit
    fails it when it reconnects, "failed to generate a reply: pending response discarded"; the
    caller then hears a reply only if the queued request happens to survive the reconnect.)
    """
    async with start_call("clean", supervised=True, reply_seconds=3.0) as call:
        t = await call.speak()
        await call.speaker.wait_for_audio_after(t, kind="answer")
        await asyncio.sleep(0.3)
        await call.server.aclose()  # close frames, then nothing listens on the port
        gone = time.monotonic()
        await asyncio.sleep(3.0)
        await call.server.start()  # the same port: livekit's next retry connects
        assert await call.answered_after(gone, within=ANSWER_GUARD)
        counters = call.supervisor.watchdog.counters
        assert counters.recoveries.get("reissue") == {"success": 1, "failure": 0}, (
            counters.recoveries
        )
        assert call.escalations == []
        assert call.logs.saw("connection failed, retrying in")  # the re-issue came meanwhile
        assert not call.logs.saw("failed to generate a reply")


def test_camel_case_secret_keys_are_redacted() -> None:
    """accessToken, clientSecret, refreshToken, apiKey: the words of a camelCase key count."""
    with capture_logs(processors=[Redactor()]) as logs:
        import structlog

        structlog.get_logger().info(
            "connected",
            accessToken="opaque-1234",
            clientSecret="opaque-5678",
            refreshToken="opaque-9012",
            apiKey="opaque-3456",
            inputTokens=12,
        )
    (event,) = logs
    for key in ("accessToken", "clientSecret", "refreshToken", "apiKey"):
        assert event[key] == REDACTED, key
    assert event["inputTokens"] == 12
