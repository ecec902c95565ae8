"""The hold cue: played only during a recovery, never counted as the answer, never over it.

Real sessions against the chaos server, heard through the recording output; the judge's rule 5
(the cue is not an answer) and the cue's settings are pure.
"""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from realtime_supervisor.chaos import tone_of
from realtime_supervisor.cue import MAX_SECONDS, HoldCue
from realtime_supervisor.errors import ConfigError
from realtime_supervisor.testing import PlayedFrame
from realtime_supervisor_agent.simulate.judge import answer_in, overlapping

from .harness import start_call

CHIME = HoldCue.chime()


async def until(check: Any, limit: float = 20.0) -> None:
    """Poll `check` on the loop; the limit only guards against a hung watchdog."""
    async with asyncio.timeout(limit):
        while True:
            if check():
                return
            await asyncio.sleep(0.02)


# -- the sound ----------------------------------------------------------------------------------


def test_the_chime_is_short_soft_and_never_read_as_a_chaos_tone() -> None:
    """0.6 s of 24 kHz PCM16; every loud frame reads as "cue", none as answer or preamble."""
    assert CHIME.sample_rate == 24000 and abs(CHIME.seconds - 0.6) < 0.01
    kinds = {tone_of(f.data.tobytes()[:960], 24000) for f in CHIME.audio_frames()}
    assert "cue" in kinds
    assert not kinds & {"answer", "preamble"}


# -- the judge's rule 5 -------------------------------------------------------------------------


def frames(start: float, seconds: float, kind: str | None, segment: int) -> list[PlayedFrame]:
    level = 4000 if kind == "cue" else 6000
    return [
        PlayedFrame(start + 0.1 * i, 0.1, kind, level, segment) for i in range(round(seconds / 0.1))
    ]


def test_the_judge_never_takes_the_cue_for_the_answer() -> None:
    """A cue segment (with its quiet, toneless tail) answers nothing, by tones (rule 1) or by a
    completed response heard whole (rule 2); the answer after it is the answer."""
    cue = frames(10.2, 0.5, "cue", 1) + frames(10.7, 0.1, None, 1)
    from realtime_supervisor_agent.simulate.judge import Response

    done = [Response("r1", created_at=10.1, audio_seconds=0.6, status="completed")]
    finished = {1: (10.8, False)}
    assert answer_in(cue, after=10.0, reply_seconds=1.0, finished=finished) == (None, None)
    assert answer_in(cue, after=10.0, reply_seconds=None, finished=finished, responses=done) == (
        None,
        None,
    )
    # rule 2 (no chaos tones): a cue played after the response was created does not add to
    # the response's audio heard whole
    cut = frames(11.0, 0.4, None, 2)
    both = {1: (10.8, False), 2: (11.4, False)}
    long_done = [Response("r1", created_at=10.1, audio_seconds=1.0, status="completed")]
    kw: dict[str, Any] = {"after": 10.0, "reply_seconds": None, "responses": long_done}
    assert answer_in(cue + cut, finished=both, **kw) == (None, None)
    whole = frames(11.0, 1.0, None, 2)
    assert answer_in(cue + whole, finished={**both, 2: (12.0, False)}, **kw) == (11.0, 2)
    answer = frames(11.0, 1.0, "answer", 2)
    got = answer_in(cue + answer, after=10.0, reply_seconds=1.0, finished=finished)
    assert got == (11.0, 2)
    assert not overlapping(cue + answer)  # the cue is not a numbered response
    assert overlapping(cue + frames(10.5, 1.0, "answer", 2))  # but over the answer it overlaps


# -- the setting --------------------------------------------------------------------------------


def write_wav(path: Path, *, seconds: float, channels: int = 1, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(16000)
        w.writeframes(b"\x01\x00" * int(16000 * seconds) * channels * (width // 2 or 1))
    return path


def test_the_setting_accepts_off_chime_and_a_short_mono_wav(tmp_path: Path) -> None:
    assert HoldCue.from_setting(None) is None and HoldCue.from_setting("off") is None
    assert HoldCue.from_setting("chime") == CHIME
    cue = HoldCue.from_setting(str(write_wav(tmp_path / "ok.wav", seconds=0.5)))
    assert cue is not None and cue.sample_rate == 16000 and abs(cue.seconds - 0.5) < 1e-3


@pytest.mark.parametrize(
    ("name", "make", "said"),
    [
        ("beep", None, "expected off, chime or a path to a .wav file"),
        ("missing.wav", None, "does not exist"),
        ("long.wav", {"seconds": MAX_SECONDS + 1}, f"at most {MAX_SECONDS} s"),
        ("stereo.wav", {"seconds": 0.2, "channels": 2}, "2 channels (expected mono)"),
    ],
)
def test_a_bad_setting_names_the_variable_and_what_is_accepted(
    tmp_path: Path, name: str, make: dict[str, Any] | None, said: str
) -> None:
    value = name if make is None and "." not in name else str(tmp_path / name)
    if make is not None:
        write_wav(tmp_path / name, **make)
    with pytest.raises(ConfigError) as err:
        HoldCue.from_setting(value, field="AGENT_HOLD_CUE")
    assert err.value.field == "AGENT_HOLD_CUE"
    assert said in str(err.value)


def test_the_worker_refuses_a_bad_agent_hold_cue_naming_the_variable(tmp_path: Path) -> None:
    """AGENT_HOLD_CUE is read with the other AGENT_* settings: one error line naming it."""
    from realtime_supervisor_agent.worker import SettingsError, load_settings

    env = {"OPENAI_API_KEY": "sk-test", "AGENT_HOLD_CUE": "beep"}
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert "AGENT_HOLD_CUE: 'beep' is not accepted; expected off, chime" in str(err.value)
    stereo = write_wav(tmp_path / "s.wav", seconds=0.2, channels=2)
    with pytest.raises(SettingsError, match=r"AGENT_HOLD_CUE: .*expected mono"):
        load_settings({**env, "AGENT_HOLD_CUE": str(stereo)})
    assert load_settings({**env, "AGENT_HOLD_CUE": "chime"}).agent.hold_cue == "chime"
    assert load_settings({"OPENAI_API_KEY": "sk-test"}).agent.hold_cue == "off"


def test_simulate_refuses_a_bad_hold_cue_naming_the_flag() -> None:
    from realtime_supervisor_agent.simulate.options import SimulateOptions

    assert SimulateOptions(hold_cue="chime").hold_cue == "chime"
    with pytest.raises(ConfigError) as err:
        SimulateOptions(hold_cue="loud")
    assert err.value.field == "--hold-cue"


@pytest.mark.livekit
async def test_the_worker_attaches_the_cue_only_when_set() -> None:
    """`supervise` gives the Supervisor the cue of AGENT_HOLD_CUE, and none when off."""
    from livekit.agents import AgentSession

    from realtime_supervisor_agent.worker import load_settings, supervise

    for value, expected in (("chime", CHIME), ("off", None)):
        settings = load_settings({"OPENAI_API_KEY": "sk-test", "AGENT_HOLD_CUE": value})
        sup = supervise(AgentSession(), settings, context={}, metrics=None)
        assert (sup.cue.cue if sup.cue is not None else None) == expected
        await sup.aclose()


# -- real sessions ------------------------------------------------------------------------------


@pytest.mark.livekit
@pytest.mark.compat
@pytest.mark.timeout(90)
async def test_a_recovered_turn_plays_the_cue_then_the_answer_and_counts_only_the_answer() -> None:
    """no_response, cue on: the caller hears the cue during the recovery, then the answer, in
    separate playbacks that never overlap; the recovery succeeded at the answer's first frame,
    not the cue's (the tap skipped the cue)."""
    finished: list[Any] = []
    async with start_call("no_response", supervised=True, hold_cue=CHIME) as call:
        sup = call.supervisor
        assert sup is not None and sup.cue is not None
        sup.on("recovery_finished", finished.append)
        ended = await call.speak()
        assert await call.answered_after(ended, within=30)
        await until(lambda: sup.watchdog.counters.recoveries_succeeded == 1)
        heard = call.speaker.frames_after(ended)
    assert sup.cue.played == 1
    cue = [f for f in heard if f.kind == "cue"]
    answer = [f for f in heard if f.kind == "answer"]
    assert cue and answer
    assert {f.segment for f in cue}.isdisjoint({f.segment for f in answer})
    cue_end = max(f.at + f.duration for f in cue)
    assert cue_end <= answer[0].at + 1e-3  # the answer after the cue, never over it
    assert not overlapping(heard)
    (done,) = finished
    assert done.outcome == "success" and done.seconds is not None
    # Judged at the answer's audio, not the cue's: frames are handed to the output up to 0.2 s
    # before they play, so a success judged on the cue would fall before cue[0].at, one judged
    # on the answer after the cue's end less that lookahead.
    assert done.at >= cue[0].at + 0.3
    assert sup.watchdog.audio_at is not None and sup.watchdog.audio_at >= answer[0].at - 0.25


@pytest.mark.livekit
@pytest.mark.compat
@pytest.mark.timeout(60)
async def test_a_clean_turn_with_the_cue_on_plays_no_cue() -> None:
    async with start_call("clean", supervised=True, hold_cue=CHIME) as call:
        ended = await call.speak()
        assert await call.answered_after(ended, within=20)
        await asyncio.sleep(0.5)
        heard = call.speaker.frames_after(ended)
        sup = call.supervisor
    assert sup is not None and sup.cue is not None and sup.cue.played == 0
    assert not [f for f in heard if f.kind == "cue"]
    assert sup.watchdog.counters.stalls == 0


@pytest.mark.compat
def test_livekit_still_offers_what_the_cue_uses() -> None:
    """Canary (public API, 1.5.11 and 1.8.9): `say` with audio and no chat entry, the session's
    current speech (how the tap tells the cue's frames), and a handle's done/interrupt."""
    import inspect

    from livekit.agents import AgentSession
    from livekit.agents.voice import SpeechHandle

    params = inspect.signature(AgentSession.say).parameters
    assert {"audio", "add_to_chat_ctx", "allow_interruptions"} <= set(params)
    assert isinstance(inspect.getattr_static(AgentSession, "current_speech"), property)
    assert callable(SpeechHandle.done) and callable(SpeechHandle.interrupt)


@pytest.mark.livekit
@pytest.mark.compat
@pytest.mark.timeout(90)
async def test_the_cue_stops_when_the_caller_speaks() -> None:
    """A 2 s cue, and the caller speaks 0.3 s into it: the cue stops (never over the caller)
    long before its end, and the caller's turn is answered after it."""
    from realtime_supervisor.chaos import tone

    long_cue = HoldCue(tone(1400.0, start=0, count=2 * 24000, amplitude=4000))
    async with start_call("clean", supervised=True, hold_cue=long_cue) as call:
        sup = call.supervisor
        assert sup is not None and sup.cue is not None
        # livekit 1.8 discards the caller's audio during the session's first agent speech
        # (its AEC warm-up, 3 s): a first turn, answered, before the cue
        assert await call.answered_after(await call.speak(), within=20)
        await asyncio.sleep(3.5)
        start = time.monotonic()
        sup.cue.arm()  # as recovery_started does
        assert sup.cue.play_if_due(may_speak=True)
        first = await asyncio.wait_for(call.speaker.wait_for_audio_after(start, kind="cue"), 20)
        await asyncio.sleep(max(0.0, first.at + 0.3 - time.monotonic()))
        ended = await call.speak()
        assert await call.answered_after(ended, within=30)
        heard = call.speaker.frames_after(start)
        assert not sup.cue.playing
    cue = [f for f in heard if f.kind == "cue"]
    answer = [f for f in heard if f.kind == "answer"]
    cue_end = max(f.at + f.duration for f in cue)
    assert cue_end < first.at + 1.5  # cut: played whole it would end at first.at + 2
    assert cue_end <= answer[0].at + 1e-3
    assert sup.watchdog.counters.stalls == 0


@pytest.mark.livekit
@pytest.mark.timeout(90)
async def test_simulate_measures_the_first_sound_apart_from_the_answer() -> None:
    """simulate --hold-cue chime: on the recovered turn the first sound (the cue) comes before
    the answer and is not the answer; on the clean turn there is no cue, so they coincide."""
    import realtime_supervisor_agent.models  # noqa: F401 - imported outside the run's loop
    from realtime_supervisor_agent.simulate import SimulateOptions, run

    summary = await run(
        SimulateOptions(
            sessions=1,
            turns=2,
            patience=9.0,
            faults="no_response,clean",
            hold_cue="chime",
            api_key="sk-cue-{i}",
        )
    )
    assert summary.turns_answered == 2 and summary.overlapping_replies == 0
    faulted, clean = summary.turn_details
    assert faulted["fault"] == "no_response" and clean["fault"] is None
    # nothing played before the recovery: the first sound is the cue, then the answer
    assert faulted["first_sound_seconds"] + 0.5 <= faulted["silence_seconds"]
    assert clean["first_sound_seconds"] == clean["silence_seconds"]


@pytest.mark.livekit
@pytest.mark.compat
@pytest.mark.timeout(90)
async def test_a_reply_stalled_mid_way_gets_the_cue_between_the_stuck_part_and_the_answer() -> None:
    """stall_mid, cue on: the stuck reply's first deltas, then the cue (its own playback, after
    the interrupt), then the whole answer; nothing overlaps; the recovery succeeded after the
    cue ended."""
    finished: list[Any] = []
    async with start_call("stall_mid", supervised=True, hold_cue=CHIME) as call:
        sup = call.supervisor
        assert sup is not None and sup.cue is not None
        sup.on("recovery_finished", finished.append)
        ended = await call.speak()
        onset = await call.fault_onset()
        assert await call.answered_after(onset, within=30)
        await until(lambda: sup.watchdog.counters.recoveries_succeeded == 1)
        heard = call.speaker.frames_after(ended)
    cue = [f for f in heard if f.kind == "cue"]
    answer = [f for f in heard if f.kind == "answer"]
    stuck = [f for f in answer if f.segment < cue[0].segment]
    after = [f for f in answer if f.segment > cue[-1].segment]
    assert stuck and after and sup.cue.played == 1
    assert max(f.at + f.duration for f in stuck) <= cue[0].at + 1e-3
    assert max(f.at + f.duration for f in cue) <= after[0].at + 1e-3
    assert not overlapping(heard)
    (done,) = finished
    assert done.outcome == "success" and done.at >= cue[0].at + 0.3
