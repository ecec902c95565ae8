"""simulate's judge: the answered rule, the caller's longest silence, overlapping replies.

Pure functions over played frames (the recording output's `PlayedFrame`), so each rule is held
by a small hand-made recording. Also: the settings tests and simulate run are the worker's.
"""

from __future__ import annotations

import pytest

from realtime_supervisor.chaos import amplitude_for
from realtime_supervisor.testing import PlayedFrame, session_options
from realtime_supervisor_agent.simulate.judge import (
    Response,
    Stats,
    answer_in,
    longest_gap,
    lost_reply,
    overlapping,
    reply_started,
)

REPLY = 1.0  # the chaos server's answer length in these recordings


def tone_run(
    start: float,
    seconds: float,
    *,
    kind: str | None = "answer",
    response: int = 1,
    segment: int = 1,
) -> list[PlayedFrame]:
    """`seconds` of 100 ms frames from `start`: one response's audio as the caller heard it."""
    level = amplitude_for(response) if kind is not None else 3000
    n = round(seconds / 0.1)
    return [PlayedFrame(start + 0.1 * i, 0.1, kind, level, segment) for i in range(n)]


# -- rule 1: the chaos server's tones -------------------------------------------------------------


def test_a_whole_answer_of_one_response_answers_the_turn() -> None:
    """reply_seconds of one response's answer tone in one segment: answered, at its first frame."""
    frames = tone_run(10.5, 1.0)
    assert answer_in(frames, after=10.0, reply_seconds=REPLY, finished={}) == (10.5, 1)


def test_part_of_an_answer_does_not_answer() -> None:
    """40 % of an answer (a reply cut short) is not an answer."""
    frames = tone_run(10.5, 0.4)
    assert answer_in(frames, after=10.0, reply_seconds=REPLY, finished={}) == (None, None)


def test_a_preamble_alone_does_not_answer() -> None:
    """However long, the preamble tone is not the answer."""
    frames = tone_run(10.5, 2.0, kind="preamble")
    assert answer_in(frames, after=10.0, reply_seconds=REPLY, finished={}) == (None, None)


def test_two_responses_halves_do_not_add_up_to_an_answer() -> None:
    """Half of response 1 then half of response 2 in one segment: neither was heard whole."""
    frames = tone_run(10.5, 0.5, response=1) + tone_run(11.0, 0.5, response=2)
    assert answer_in(frames, after=10.0, reply_seconds=REPLY, finished={}) == (None, None)
    # the second response heard whole does answer, at its own start
    frames = tone_run(10.5, 0.5, response=1) + tone_run(11.0, 1.0, response=2)
    assert answer_in(frames, after=10.0, reply_seconds=REPLY, finished={}) == (11.0, 1)


def test_audio_before_the_turn_ended_is_not_its_answer() -> None:
    """The previous turn's answer, played before this turn ended, does not answer it."""
    frames = tone_run(8.0, 1.0)
    assert answer_in(frames, after=10.0, reply_seconds=REPLY, finished={}) == (None, None)


# -- rule 2: another endpoint, no tones -----------------------------------------------------------


def voice(start: float, seconds: float, segment: int = 1) -> list[PlayedFrame]:
    return tone_run(start, seconds, kind=None, segment=segment)


def test_a_completed_response_played_whole_answers() -> None:
    """A completed response whose whole audio played, to the end, not interrupted: answered."""
    frames = voice(10.5, 1.5)
    done = {1: (12.0, False)}
    responses = [Response("r1", 10.4, audio_seconds=1.5, status="completed")]
    got = answer_in(frames, after=10.0, reply_seconds=None, finished=done, responses=responses)
    assert got == (10.5, 1)
    # still playing: not yet
    got = answer_in(frames, after=10.0, reply_seconds=None, finished={}, responses=responses)
    assert got == (None, None)


def test_a_preamble_alone_is_not_an_answer_from_a_real_endpoint() -> None:
    """The preamble played (0.6 s) but the response carried 2.6 s: the answer was never heard."""
    frames = voice(10.5, 0.6)
    done = {1: (11.1, False)}
    responses = [Response("r1", 10.4, audio_seconds=2.6, status="completed")]
    got = answer_in(frames, after=10.0, reply_seconds=None, finished=done, responses=responses)
    assert got == (None, None)


def test_the_first_part_of_a_cancelled_response_is_not_an_answer() -> None:
    """A response cancelled after its first part played: its segment ended, it answered nothing."""
    frames = voice(10.5, 0.5)
    done = {1: (11.0, False)}
    responses = [Response("r1", 10.4, audio_seconds=0.5, status="cancelled")]
    got = answer_in(frames, after=10.0, reply_seconds=None, finished=done, responses=responses)
    assert got == (None, None)
    # nor is an interrupted segment, whatever the response says
    done = {1: (11.0, True)}
    responses = [Response("r1", 10.4, audio_seconds=0.5, status="completed")]
    got = answer_in(frames, after=10.0, reply_seconds=None, finished=done, responses=responses)
    assert got == (None, None)


def test_a_reply_that_recovered_a_lost_one_is_the_answer() -> None:
    """Lost reply (a preamble, its answer dropped), then the re-issued reply heard whole: the
    turn is answered by the second, whatever livekit logged in between."""
    frames = voice(10.5, 0.6, segment=1) + voice(13.0, 1.5, segment=2)
    done = {1: (11.1, False), 2: (14.5, False)}
    responses = [
        Response("lost", 10.4, audio_seconds=2.6, status="completed"),
        Response("reissued", 12.9, audio_seconds=1.5, status="completed"),
    ]
    got = answer_in(frames, after=10.0, reply_seconds=None, finished=done, responses=responses)
    assert got == (13.0, 2)


def test_a_response_played_as_two_segments_answers_at_the_second() -> None:
    """livekit 1.8 plays a preamble item and the answer item as two segments: heard whole."""
    frames = voice(10.5, 0.6, segment=1) + voice(11.2, 2.0, segment=2)
    responses = [Response("r1", 10.4, audio_seconds=2.6, status="completed")]
    done = {1: (11.1, False)}
    got = answer_in(frames, after=10.0, reply_seconds=None, finished=done, responses=responses)
    assert got == (None, None)  # the answer item is still playing
    done = {1: (11.1, False), 2: (13.2, False)}
    got = answer_in(frames, after=10.0, reply_seconds=None, finished=done, responses=responses)
    assert got == (11.2, 2)
    # cut short, the second segment completes nothing
    done = {1: (11.1, False), 2: (12.0, True)}
    got = answer_in(frames, after=10.0, reply_seconds=None, finished=done, responses=responses)
    assert got == (None, None)


def test_a_cut_between_two_segments_breaks_a_response() -> None:
    """Item 1 played, item 2 cut, then other audio: the response was not heard whole, however
    much audio came before and after the cut."""
    frames = voice(10.5, 1.0, segment=1) + voice(11.5, 0.5, segment=2) + voice(12.5, 1.0, 3)
    done = {1: (11.5, False), 2: (12.0, True), 3: (13.5, False)}
    responses = [Response("r1", 10.4, audio_seconds=2.0, status="completed")]
    got = answer_in(frames, after=10.0, reply_seconds=None, finished=done, responses=responses)
    assert got == (None, None)


def test_a_marked_preamble_is_not_an_answer_even_as_a_whole_response() -> None:
    """Where the audio carries the chaos server's marks, a preamble is never the answer."""
    frames = tone_run(10.5, 0.6, kind="preamble")
    done = {1: (11.1, False)}
    responses = [Response("r1", 10.4, audio_seconds=0.6, status="completed")]
    got = answer_in(frames, after=10.0, reply_seconds=None, finished=done, responses=responses)
    assert got == (None, None)


def test_a_response_created_before_the_turn_ended_does_not_answer_it() -> None:
    """Only a response created after the turn ended is its answer."""
    frames = voice(10.5, 1.0)
    done = {1: (11.5, False)}
    responses = [Response("old", 9.0, audio_seconds=1.0, status="completed")]
    got = answer_in(frames, after=10.0, reply_seconds=None, finished=done, responses=responses)
    assert got == (None, None)


# -- the caller's longest silence ----------------------------------------------------------------


def test_longest_gap_measures_the_silence_before_and_inside_a_reply() -> None:
    """2 s before the reply, then 0.5 s, 3 s inside it: the longest is 3 s."""
    frames = voice(12.0, 0.5) + voice(15.5, 1.0)
    assert longest_gap(frames, 10.0, 16.5) == pytest.approx(3.0)


def test_longest_gap_counts_the_silence_until_the_end() -> None:
    """Nothing heard after 11 s, until 16 s: 5 s of silence."""
    frames = voice(10.5, 0.5)
    assert longest_gap(frames, 10.0, 16.0) == pytest.approx(5.0)
    assert longest_gap([], 10.0, 16.0) == pytest.approx(6.0)


def test_longest_gap_of_continuous_audio_is_the_wait_for_it() -> None:
    frames = voice(10.25, 2.0)
    assert longest_gap(frames, 10.0, 12.25) == pytest.approx(0.25)


# -- overlapping replies ---------------------------------------------------------------------------


def test_two_responses_interleaved_overlap() -> None:
    """A, then B, then A again: the caller heard two replies over each other."""
    frames = (
        tone_run(10.0, 0.3, response=1)
        + tone_run(10.3, 0.3, response=2)
        + tone_run(10.6, 0.3, response=1)
    )
    assert overlapping(frames)


def test_one_reply_after_another_does_not_overlap() -> None:
    """A, then B (a re-issued reply after the lost one): one after the other, no overlap."""
    frames = tone_run(10.0, 0.3, response=1) + tone_run(11.0, 1.0, response=2, segment=2)
    assert not overlapping(frames)


def test_two_segments_playing_at_once_overlap() -> None:
    """Two segments whose frames play at the same time overlap, tones or not."""
    frames = voice(10.0, 1.0, segment=1) + voice(10.5, 1.0, segment=2)
    assert overlapping(frames)


# -- smaller parts ------------------------------------------------------------------------------


def test_lost_reply_names_livekits_messages() -> None:
    assert lost_reply("expected to receive only one message generation from the realtime API")
    assert lost_reply("in-progress generation discarded due to session reconnection")
    assert lost_reply("connected to the realtime API") is None


def test_the_reply_starts_after_the_hold_cue_and_its_quiet_tail() -> None:
    """The caller's noise is timed into the reply: the cue (rule 5), tail included, is not it."""
    cue = tone_run(10.0, 0.5, kind="cue", segment=1) + tone_run(10.5, 0.2, kind=None, segment=1)
    assert reply_started(cue) is None
    assert reply_started(cue + tone_run(11.0, 1.0, segment=2)) == pytest.approx(11.0)
    assert reply_started(tone_run(12.0, 1.0, kind=None, segment=3)) == pytest.approx(12.0)


def test_stats_are_nearest_rank() -> None:
    s = Stats.of([1.0, 2.0, 3.0, 4.0, 10.0])
    assert (s.p50, s.p95, s.max) == (3.0, 10.0, 10.0)
    assert Stats.of([]) == Stats()


# -- the settings tests and simulate run are the worker's ---------------------------------------


def test_tests_run_the_session_settings_the_worker_ships() -> None:
    """`session_options()` is what `agent/models.py` gives the worker's AgentSession, and keeps
    livekit's interruption defaults (false-interruption resume on)."""
    from realtime_supervisor_agent.config import AgentConfig
    from realtime_supervisor_agent.models import session_kwargs

    cfg = AgentConfig(provider="openai", openai_api_key="sk-judge-test", model="gpt-realtime")
    shipped = session_kwargs(cfg, llm=object())
    del shipped["llm"]
    assert session_options() == shipped
    assert "interruption" not in session_options()["turn_handling"]


def test_the_recording_output_can_pause_as_a_rooms_output_can() -> None:
    """livekit resumes a falsely interrupted reply only on an output that can pause."""
    from realtime_supervisor.testing import RecordingAudioOutput

    assert RecordingAudioOutput().can_pause


async def test_an_interrupt_cuts_the_frame_playing_so_the_next_reply_does_not_overlap_it() -> None:
    """A room's source stops the frame it is playing on clear_buffer: the re-issued reply that
    starts 17 ms after the interrupt is not heard over the last 83 ms of the frame it cut."""
    from livekit import rtc

    from realtime_supervisor.testing import RecordingAudioOutput

    now = [100.0]
    out = RecordingAudioOutput(clock=lambda: now[0], lookahead=1.0)
    frame = rtc.AudioFrame.create(24000, 1, 2400)  # 100 ms
    await out.capture_frame(frame)  # plays 100.000-100.100
    now[0] = 100.017
    out.clear_buffer()
    await out.capture_frame(frame)  # the next segment, from 100.017
    first, second = out.frames
    assert first.duration == pytest.approx(0.017) and second.at == pytest.approx(100.017)
    assert not overlapping(out.frames)
