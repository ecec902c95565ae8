"""The simulated caller: speaks, listens, judges what it heard, speaks again.

1. It speaks for 0.6 s; the turn ends when it stops speaking.
2. It then listens until the turn is answered (`judge.answer_in`) and the reply has played, or
   until it has heard nothing for `patience` seconds (it gives up on the turn).
3. It pauses briefly and takes the next turn.
With `barge_in`, on odd turns it cuts into the reply; with `noise`, it makes a short loud noise
that many seconds into each reply, and another in the silence before its next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .judge import Response, answer_in, longest_gap, overlapping, reply_started

if TYPE_CHECKING:
    from realtime_supervisor.livekit.binding import Supervisor
    from realtime_supervisor.testing import RecordingAudioOutput, ScriptedCaller

    from ..baseline import HandWrittenTimer
    from .options import SimulateOptions

__all__ = ["CallState", "TurnRecord", "caller_loop"]

SPEAK_SECONDS: Final = 0.6  # one caller utterance: long enough for any server VAD
PAUSE_SECONDS: Final = 0.5  # the caller's pause after a reply, before speaking again
READY_TIMEOUT: Final = 15.0  # session.start() to the agent listening
SAY_SLACK: Final = 2.0  # an utterance not consumed within this much longer: the session is gone
NOISE_SECONDS: Final = 0.15  # a knock, a cough: short, loud, not speech
QUIET_SECONDS: Final = 1.0  # after a noise in the silence: this long without agent audio


@dataclass(slots=True)
class TurnRecord:
    """What the caller lived through in one turn."""

    session: int
    turn: int
    ended_at: float  # monotonic: the caller stopped speaking
    first_audio_at: float | None = None  # first agent audio played after the turn ended
    answer_at: float | None = None  # start of the answer audio that answered the turn
    heard_at: float | None = None  # when the whole answer had been heard (its playback ended)
    answered: bool = False
    silence: float = 0.0  # turn end -> answer_at, or patience when unanswered
    overlapping: bool = False  # two responses' audio interleaved at the output
    fault: str | None = None  # what the chaos server injected in this turn (embedded)
    # the longest stretch without agent audio from turn end until the answer had played (the
    # silence the caller lived through, gaps inside a reply included), or patience when unanswered
    gap: float = 0.0
    interrupted: bool = False  # the caller spoke again into the reply on purpose (barge_in)
    fault_onset: float | None = None  # monotonic: when the chaos server's fault took effect
    # the watchdog's verdicts in this turn: (kind, silence_since, detected_at), monotonic
    detections: list[tuple[str, float, float]] = field(default_factory=list)


@dataclass(slots=True)
class CallState:
    """One simulated call's state, shared by its caller loop, its taps and the view."""

    index: int
    key: str
    turns: list[TurnRecord] = field(default_factory=list)
    warnings: list[tuple[float, str]] = field(default_factory=list)
    # playback segments: number -> (finished at, interrupted)
    finished: dict[int, tuple[float, bool]] = field(default_factory=dict)
    segments_started: int = 0
    # the server's responses, by id, in order (rule 2 of the judge)
    responses: dict[str, Response] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    timer: HandWrittenTimer | None = None
    supervisor: Supervisor | None = None
    escalations: int = 0
    timed_out: bool = False
    crashed: bool = False
    noises: int = 0  # noise bursts the caller made
    done: bool = False
    detections: list[tuple[str, float, float]] = field(default_factory=list)


async def _wait_changed(call: CallState, seconds: float) -> None:
    """Until something is heard or played out, at most `seconds`."""
    call.changed.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(call.changed.wait(), max(0.0, seconds))


async def caller_loop(
    call: CallState,
    caller: ScriptedCaller,
    speaker: RecordingAudioOutput,
    session: Any,
    options: SimulateOptions,
) -> None:
    await _until_listening(session)
    for number in range(1, options.turns + 1):
        with contextlib.suppress(TimeoutError):
            # nobody reads the microphone of a session livekit has torn down: the caller then
            # speaks into a dead line, and hears nothing for a whole patience
            await asyncio.wait_for(caller.say(SPEAK_SECONDS), SPEAK_SECONDS + SAY_SLACK)
        record = TurnRecord(call.index, number, ended_at=time.monotonic())
        call.turns.append(record)
        if options.barge_in is not None and number % 2 == 1 and number < options.turns:
            await _barge_in(call, speaker, record, options)
            continue
        await _listen(call, caller, speaker, record, options)
        call.changed.set()
        if options.noise is not None and number < options.turns:
            await _noise_in_silence(call, caller, speaker, options)
    if options.final_silence > 0:
        await asyncio.sleep(options.final_silence)


async def _barge_in(
    call: CallState, speaker: RecordingAudioOutput, record: TurnRecord, options: SimulateOptions
) -> None:
    """Wait for the reply to start, then let it play `barge_in` seconds: the caller cuts in."""
    assert options.barge_in is not None
    t = record.ended_at
    deadline = t + options.patience
    while not speaker.frames_after(t) and time.monotonic() < deadline:
        await _wait_changed(call, deadline - time.monotonic())
    frames = speaker.frames_after(t)
    record.interrupted = True
    if frames:
        record.first_audio_at = frames[0].at
        record.silence = record.gap = max(0.0, frames[0].at - t)
        await asyncio.sleep(max(0.0, frames[0].at + options.barge_in - time.monotonic()))
    else:
        record.silence = record.gap = options.patience


async def _until_listening(session: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while str(getattr(session, "agent_state", "listening")) != "listening":
        if time.monotonic() > deadline:
            break  # speak anyway: a session that never listens is what the run measures
        await asyncio.sleep(0.05)


async def _listen(
    call: CallState,
    caller: ScriptedCaller,
    speaker: RecordingAudioOutput,
    record: TurnRecord,
    options: SimulateOptions,
) -> None:
    """Listen after a turn until it is answered and the reply has played, or patience runs out."""
    t = record.ended_at
    noise: asyncio.Task[None] | None = None
    try:
        while True:
            frames = speaker.frames_after(t)
            if frames and record.first_audio_at is None:
                record.first_audio_at = frames[0].at  # first sound, the hold cue included
            if options.noise is not None and noise is None:
                # into the reply: the hold cue is not the reply, its frames do not start the clock
                began = reply_started(frames)
                if began is not None:
                    noise = asyncio.create_task(
                        _noise_at(call, caller, began + options.noise), name="simulate-noise"
                    )
            answer_at, segment = answer_in(
                frames,
                after=t,
                reply_seconds=options.reply_seconds,
                finished=call.finished,
                responses=list(call.responses.values()),
            )
            now = time.monotonic()
            if answer_at is not None and segment is not None:
                record.answered = True
                record.answer_at = answer_at
                record.silence = max(0.0, answer_at - t)
                # up to the end of the answer heard so far: a pause inside the answer is lived too
                heard_until = max(f.at + f.duration for f in frames if f.segment == segment)
                record.gap = longest_gap(frames, t, heard_until)
                await _until_played(call, speaker, segment, options)
                finished = call.finished.get(segment)
                record.heard_at = (
                    finished[0]
                    if finished is not None
                    else max(
                        f.at + f.duration for f in speaker.frames_after(t) if f.segment == segment
                    )
                )
                break
            last_sound = max([t] + [f.at + f.duration for f in frames])
            if last_sound > now:
                await _wait_changed(call, last_sound - now + 0.05)
                continue
            give_up = last_sound + options.patience
            if now >= give_up:
                record.silence = record.gap = options.patience
                break
            await _wait_changed(call, give_up - now)
    finally:
        if noise is not None and not noise.done():
            noise.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await noise
    record.overlapping = overlapping(speaker.frames_after(t))


async def _noise_at(call: CallState, caller: ScriptedCaller, at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    with contextlib.suppress(RuntimeError, TimeoutError):  # already speaking; a dead line
        call.noises += 1
        await asyncio.wait_for(caller.noise(NOISE_SECONDS), NOISE_SECONDS + SAY_SLACK)


async def _noise_in_silence(
    call: CallState, caller: ScriptedCaller, speaker: RecordingAudioOutput, options: SimulateOptions
) -> None:
    """A noise while the agent is silent; then wait until it has been quiet a while."""
    await _noise_at(call, caller, time.monotonic())
    await asyncio.sleep(QUIET_SECONDS)  # a server answering the noise has started by then
    deadline = time.monotonic() + options.patience
    while (now := time.monotonic()) < deadline:
        last = max((f.at + f.duration for f in speaker.frames[-1:]), default=0.0)
        if now - last >= QUIET_SECONDS:
            break
        await _wait_changed(call, last + QUIET_SECONDS - now)


async def _until_played(
    call: CallState, speaker: RecordingAudioOutput, segment: int, options: SimulateOptions
) -> None:
    """The caller lets the reply finish (bounded by patience), then pauses before speaking."""
    deadline = time.monotonic() + options.patience
    while segment not in call.finished and time.monotonic() < deadline:
        frames = speaker.frames
        end = max((f.at + f.duration for f in frames[-1:]), default=0.0)
        await _wait_changed(
            call, min(deadline, max(end, time.monotonic() + 0.1)) - time.monotonic()
        )
    await asyncio.sleep(PAUSE_SECONDS)
