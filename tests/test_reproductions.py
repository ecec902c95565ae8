"""The stalls our users report, reproduced with the real livekit plugin and no watchdog.

Each test asserts the specific failure; each would fail if the chaos server stopped injecting
its fault (the turn would then be answered). test_watchdog_recovery.py runs the same faults
with the watchdog attached and asserts the recovery.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from .harness import LK_VERSION, start_call

pytestmark = [pytest.mark.livekit, pytest.mark.timeout(90)]

# how long a caller on a phone would wait before giving up on the turn: long enough that a
# late answer would have come, generous against a loaded machine
UNANSWERED_WINDOW = 8.0

only_18 = pytest.mark.skipif(LK_VERSION < (1, 8), reason="the 1.8.x behaviour")


@only_18
async def test_stall_mid_leaves_the_agent_speaking_with_no_audio() -> None:
    """Audio stops mid-reply and response.done never comes: livekit stays 'speaking' forever."""
    async with start_call("stall_mid=3") as call:
        t = await call.speak()
        await call.settle(UNANSWERED_WINDOW)
        (injection,) = call.chaos_record().injected
        assert injection.kind == "stall_mid"
        heard_after_stall = call.speaker.frames_after(injection.onset + 0.3)
        assert heard_after_stall == []
        assert call.state == "speaking"
        assert not call.speaker.heard_kind_after(t) or len(call.speaker.frames_after(t)) <= 3


@only_18
async def test_drop_mid_ends_the_reply_early_and_nothing_answers_the_turn() -> None:
    """The socket drops mid-reply: livekit reconnects, discards the reply and never asks again."""
    async with start_call("drop_mid=3", reply_seconds=1.5) as call:
        t = await call.speak()
        await call.settle(UNANSWERED_WINDOW)
        record = call.chaos_record()
        assert record.injected_kinds() == ["drop_mid"]
        assert record.connections >= 2  # the plugin reconnected
        assert call.logs.saw("in-progress generation discarded due to session reconnection")
        frames = call.speaker.frames_after(t)
        full_reply = 1.5
        assert sum(f.duration for f in frames) < full_reply / 2
        assert record.responses == 1  # nobody asked for the lost reply again
        assert call.state == "listening"


@only_18
async def test_no_response_leaves_the_turn_unanswered() -> None:
    """The server never starts a reply: the turn ends in silence."""
    async with start_call("no_response") as call:
        t = await call.speak()
        await call.settle(UNANSWERED_WINDOW)
        assert call.chaos_record().injected_kinds() == ["no_response"]
        assert call.speaker.frames_after(t) == []
        assert call.state == "listening"


@only_18
async def test_flap_loops_reconnecting() -> None:
    """A server that accepts then closes every connection: livekit reconnects without end."""
    async with start_call("flap") as call:
        await call.speak()
        await call.settle(4.0)
        first = call.chaos_record().connections
        await call.settle(2.0)
        record = call.chaos_record()
        assert record.injected_kinds()[:1] == ["flap"]
        assert first >= 5
        assert record.connections > first  # still going
        assert call.session is not None and call.state != "speaking"


@pytest.mark.compat
async def test_multi_message_reply_is_lost_before_1_5_12() -> None:
    """Two message items in one response: before 1.5.12 livekit warns and drops the answer."""
    async with start_call("multi_message") as call:
        t = await call.speak()
        await call.settle(5.0)
        assert call.chaos_record().injected_kinds() == ["multi_message"]
        warned = call.logs.saw(
            "expected to receive only one message generation from the realtime API"
        )
        heard_preamble = call.speaker.heard_kind_after(t, "preamble")
        heard_answer = call.speaker.heard_kind_after(t, "answer")
        if LK_VERSION < (1, 5, 12):
            # the original report: the warning, the preamble, then silence
            assert warned
            assert heard_preamble
            assert not heard_answer
        else:
            assert not warned
            assert heard_preamble and heard_answer


@pytest.mark.compat
async def test_fault_free_run_answers_every_turn_with_real_audio() -> None:
    """Twenty clean turns: every one answered, with frames played at the output."""
    async with start_call("clean", reply_seconds=0.5) as call:
        for _ in range(20):
            t = await call.speak(0.4)
            assert await call.answered_after(t, within=10.0)
            # let the reply play out before the next turn, as a person would
            await asyncio.sleep(0.7)
        record = call.chaos_record()
        assert record.turns == 20
        assert record.answered >= 19  # the last may still be closing
        assert len({f.segment for f in call.speaker.frames}) == 20
        assert all(f.kind == "answer" for f in call.speaker.frames)
        assert call.speaker.frames[-1].at <= time.monotonic()


# -- the production faults (realistic pacing: the reply is sent faster than it plays) -----------


@pytest.mark.compat
async def test_dead_mid_leaves_the_agent_speaking_with_nothing_to_say() -> None:
    """The connection freezes mid-reply without a close frame: livekit has no heartbeat, so it
    never notices; no reconnect, no answer, and the agent stays 'speaking'."""
    async with start_call("dead_mid=3") as call:
        t = await call.speak()
        onset = await call.fault_onset()
        await call.settle(UNANSWERED_WINDOW)
        record = call.chaos_record()
        assert record.injected_kinds() == ["dead_mid"]
        assert record.connections == 1  # nothing noticed the dead socket
        # the three deltas sent before the freeze play out within a second, then nothing
        assert call.speaker.frames_after(onset + 1.5) == []
        assert call.speaker.answer_seconds(t) < call.reply_seconds / 2
        assert call.state == "speaking"


@pytest.mark.compat
@pytest.mark.parametrize("fault", ["tcp_drop=3", "session_limit=3"])
async def test_a_connection_lost_mid_reply_is_reconnected_and_the_turn_lost(fault: str) -> None:
    """A TCP drop without a close frame, or the session-duration close: livekit reconnects,
    discards the reply in progress and never asks again."""
    async with start_call(fault) as call:
        t = await call.speak()
        await call.fault_onset()
        await call.settle(UNANSWERED_WINDOW)
        record = call.chaos_record()
        assert record.injected_kinds() == [fault.split("=")[0]]
        assert record.connections >= 2  # the plugin reconnected
        assert record.responses == 1  # nobody asked for the lost reply again
        assert call.speaker.answer_seconds(t) < call.reply_seconds / 2
        assert call.state == "listening"


@pytest.mark.compat
async def test_fatal_close_loses_every_turn() -> None:
    """The quota error and the close on every connection: 1.8 gives up at once (an
    unrecoverable error closes the session); 1.5 retries and every attempt fails the same way.
    Either way nothing answers."""
    async with start_call("fatal_close") as call:
        t = await call.speak()
        await call.fault_onset()
        await call.settle(UNANSWERED_WINDOW)
        assert call.chaos_record().injected_kinds()[:1] == ["fatal_close"]
        assert call.speaker.frames_after(t) == []
        if LK_VERSION >= (1, 8):
            assert call.chaos_record().connections == 1  # fatal code: no reconnect


@pytest.mark.compat
@pytest.mark.parametrize("fault", ["incomplete=3", "content_filter=3"])
async def test_an_incomplete_response_cuts_the_answer_and_nothing_follows(fault: str) -> None:
    """max_output_tokens or content_filter ends the response mid-answer: livekit plays what came
    and returns to listening (it only logs the status at debug level)."""
    async with start_call(fault, reply_seconds=1.5) as call:
        t = await call.speak()
        await call.fault_onset()
        await call.settle(UNANSWERED_WINDOW)
        record = call.chaos_record()
        assert record.injected_kinds() == [fault.split("=")[0]]
        assert 0 < call.speaker.answer_seconds(t) < 1.5 / 2
        assert record.responses == 1
        assert call.state == "listening"
