"""In-process audio for an `AgentSession` without a LiveKit room.

`ScriptedCaller` is an audio input that speaks tone bursts on cue and is silent otherwise, paced
like a microphone; any server with voice detection hears it as a person taking turns.
`RecordingAudioOutput` is an audio sink that plays in real time (it holds livekit back the way a
room's audio source does) and records every frame that was actually played, so a test can say
what the caller heard and when.

    caller, speaker = ScriptedCaller(), RecordingAudioOutput()
    session.input.audio, session.output.audio = caller, speaker
    await session.start(agent, record=False)
    await caller.say(0.6)
    await speaker.wait_for_audio_after(t0)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents import __version__ as _lk_version
from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities

__all__ = [
    "PlayedFrame",
    "RecordingAudioOutput",
    "ScriptedCaller",
    "classify_tone",
    "session_options",
]

Clock = Callable[[], float]

# The chaos server marks its replies: answers are a 440 Hz tone, preambles 660 Hz, and the
# amplitude encodes the response's sequence number, so a recording tells what was heard.
_LK_18 = tuple(int(p) for p in _lk_version.split(".")[:2]) >= (1, 8)
_ANSWER_HZ = 440.0
_PREAMBLE_HZ = 660.0


def classify_tone(pcm: memoryview | bytes, sample_rate: int) -> str | None:
    """Name a chaos-server tone by its frequency: "answer", "preamble", or None."""
    samples = np.frombuffer(pcm, dtype=np.int16)
    n = len(samples)
    if n < 2 or int(np.abs(samples).max()) < 500:
        return None
    crossings = int(np.count_nonzero(np.diff(np.signbit(samples))))
    hz = crossings * sample_rate / (2.0 * n)
    if abs(hz - _ANSWER_HZ) < 60:
        return "answer"
    if abs(hz - _PREAMBLE_HZ) < 60:
        return "preamble"
    return None


def session_options() -> dict[str, Any]:
    """`AgentSession` keyword arguments for a realtime model with no room and no local VAD.

    Turn detection is the server's (`realtime_llm`); 1.8 would otherwise load its bundled local
    VAD and turn detector, which need a model download and a room.
    """
    opts: dict[str, Any] = {
        "turn_handling": {
            "turn_detection": "realtime_llm",
            "interruption": {"resume_false_interruption": False},
        }
    }
    if "vad" in inspect.signature(AgentSession.__init__).parameters and _LK_18:
        opts["vad"] = None
    return opts


def _peak(pcm: memoryview | bytes) -> int:
    samples = np.frombuffer(pcm, dtype=np.int16)
    return int(np.abs(samples.astype(np.int32)).max()) if len(samples) else 0


class ScriptedCaller(AudioInput):
    """A caller that speaks a tone when told to (`say`) and sends silence otherwise.

    Frames are paced in real time (`speed` > 1 runs faster), as a microphone would send them:
    the server's voice detection needs the silence after speech to end the turn.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 24000,
        frame_ms: int = 20,
        tone_hz: float = 220.0,
        amplitude: int = 8000,
        speed: float = 1.0,
        label: str = "scripted-caller",
    ) -> None:
        super().__init__(label=label)
        if speed <= 0 or not math.isfinite(speed):
            raise ValueError("speed: must be a finite number > 0")
        self._rate = sample_rate
        self._spf = sample_rate * frame_ms // 1000
        self._frame_s = frame_ms / 1000.0
        self._speed = speed
        self._silence = bytes(2 * self._spf)
        step = 2 * math.pi * tone_hz / sample_rate
        # one period-aligned buffer long enough to slice any frame from, built once
        period = max(1, round(sample_rate / tone_hz))
        tone = array("h", (int(amplitude * math.sin(step * i)) for i in range(self._spf + period)))
        self._tone = tone.tobytes()
        self._period = period
        self._phase = 0
        self._remaining = 0  # samples left in the current utterance
        self._done: asyncio.Future[None] | None = None
        self._t0: float | None = None
        self._sent = 0
        self._closed = False
        self.utterances = 0

    async def say(self, seconds: float) -> None:
        """Speak for `seconds`; returns when the last frame of the utterance has been sent."""
        if self._done is not None and not self._done.done():
            raise RuntimeError("the caller is already speaking")
        self._remaining = max(self._spf, int(seconds * self._rate))
        self._done = asyncio.get_running_loop().create_future()
        self.utterances += 1
        await self._done

    @property
    def speaking(self) -> bool:
        return self._remaining > 0

    def close(self) -> None:
        """End the stream: the session's audio input sees the end of the microphone."""
        self._closed = True

    async def __anext__(self) -> rtc.AudioFrame:
        if self._closed:
            raise StopAsyncIteration
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + self._sent * self._frame_s / self._speed
        if due > now:
            await asyncio.sleep(due - now)
        if self._closed:
            raise StopAsyncIteration
        self._sent += 1
        if self._remaining > 0:
            start = 2 * self._phase
            data = self._tone[start : start + 2 * self._spf]
            self._phase = (self._phase + self._spf) % self._period
            self._remaining -= self._spf
            if self._remaining <= 0:
                self._remaining = 0
                if self._done is not None and not self._done.done():
                    self._done.set_result(None)
        else:
            data = self._silence
        return rtc.AudioFrame(data, self._rate, 1, self._spf)


@dataclass(frozen=True, slots=True)
class PlayedFrame:
    """One frame the caller heard: when it started playing, for how long, and what it was."""

    at: float
    duration: float
    kind: str | None  # "answer" / "preamble" for chaos-server tones, else None
    level: int  # peak amplitude; the chaos server encodes the response number in it
    segment: int  # which playback segment (one per agent speech) it belongs to


class RecordingAudioOutput(AudioOutput):
    """An audio sink that plays in real time and remembers every frame that was played.

    `capture_frame` holds the caller back until the frame is within `lookahead` of being
    played, as a room's audio source does, so livekit's own notion of playout is honest.
    `flush` reports the segment finished once it has played; `clear_buffer` drops what has not
    played yet and reports an interruption.
    """

    def __init__(
        self,
        *,
        label: str = "recording",
        lookahead: float = 0.2,
        clock: Clock = time.monotonic,
        on_frame: Callable[[PlayedFrame], None] | None = None,
    ) -> None:
        super().__init__(label=label, capabilities=AudioOutputCapabilities(pause=False))
        self._lookahead = lookahead
        self._clock = clock
        self._on_frame = on_frame
        self.frames: list[PlayedFrame] = []
        self._play_end = 0.0  # when the last scheduled frame ends
        self._segment = 0
        self._segment_open = False  # frames captured since the last finish report
        self._segment_start = 0.0
        self._finish_task: asyncio.Task[None] | None = None
        self._heard = asyncio.Event()
        self.interruptions = 0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._finish_task is not None:
            # a new segment began before the previous one finished playing: report it first
            self._finish_task.cancel()
            self._finish_task = None
            self._report_finished(interrupted=False)
        now = self._clock()
        if not self._segment_open:
            self._segment_open = True
            self._segment += 1
            self._segment_start = max(now, self._play_end)
            # livekit moves the agent to "speaking" on this, as a room's output would
            self.on_playback_started(created_at=time.time())
        at = max(now, self._play_end)
        self._play_end = at + frame.duration
        samples = frame.data
        played = PlayedFrame(
            at=at,
            duration=frame.duration,
            kind=classify_tone(samples, frame.sample_rate),
            level=_peak(samples),
            segment=self._segment,
        )
        self.frames.append(played)
        self._heard.set()
        if self._on_frame is not None:
            self._on_frame(played)
        wait = at - self._lookahead - now
        if wait > 0:
            await asyncio.sleep(wait)

    def flush(self) -> None:
        super().flush()
        if not self._segment_open or self._finish_task is not None:
            return
        self._finish_task = asyncio.get_running_loop().create_task(self._finish_when_played())

    async def _finish_when_played(self) -> None:
        delay = self._play_end - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
        self._finish_task = None
        self._report_finished(interrupted=False)

    def clear_buffer(self) -> None:
        if self._finish_task is not None:
            self._finish_task.cancel()
            self._finish_task = None
        if not self._segment_open:
            return
        now = self._clock()
        # what was scheduled but not yet played was never heard
        while self.frames and self.frames[-1].segment == self._segment and self.frames[-1].at > now:
            self.frames.pop()
        self._play_end = min(self._play_end, now)
        self.interruptions += 1
        self._report_finished(interrupted=True)

    def _report_finished(self, *, interrupted: bool) -> None:
        if not self._segment_open:
            return
        self._segment_open = False
        position = max(0.0, min(self._play_end, self._clock()) - self._segment_start)
        self.on_playback_finished(playback_position=position, interrupted=interrupted)

    # what a test asks about what was heard

    def frames_after(self, t: float) -> list[PlayedFrame]:
        return [f for f in self.frames if f.at >= t]

    def heard_kind_after(self, t: float, kind: str = "answer") -> bool:
        return any(f.kind == kind for f in self.frames if f.at >= t)

    def answer_seconds(self, t: float) -> float:
        """The longest stretch of answer audio in one segment that started playing at/after `t`."""
        per_segment: dict[int, float] = {}
        for f in reversed(self.frames):
            if f.at < t:
                break
            if f.kind == "answer":
                per_segment[f.segment] = per_segment.get(f.segment, 0.0) + f.duration
        return max(per_segment.values(), default=0.0)

    async def wait_for_audio_after(self, t: float, *, kind: str | None = None) -> PlayedFrame:
        """Wait until a frame (of `kind`, if given) plays at or after `t`; return the first."""
        while True:
            found = None
            for f in reversed(self.frames):
                if f.at < t:
                    break
                if kind is None or f.kind == kind:
                    found = f
            if found is not None:
                return found
            self._heard.clear()
            await self._heard.wait()

    async def wait_for_answer(self, t: float, *, seconds: float) -> None:
        """Wait until `seconds` of answer audio, in one segment, played after `t`."""
        while self.answer_seconds(t) < seconds - 1e-6:
            self._heard.clear()
            await self._heard.wait()

    async def aclose(self) -> None:
        if self._finish_task is not None:
            self._finish_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._finish_task
            self._finish_task = None
