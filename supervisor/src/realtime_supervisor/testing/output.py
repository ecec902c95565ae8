"""The recording output: an audio sink that plays in real time and remembers what was played.

It behaves as a room's audio output does where livekit can tell: it holds livekit back until a
frame is about to play, reports each segment finished once it has played, drops what had not
played on `clear_buffer`, and can pause and resume (so livekit's false-interruption resume, on
by default, has an output that supports it, as it has in a room).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from livekit import rtc
from livekit.agents.voice.io import AudioOutput, AudioOutputCapabilities

from ..chaos import tone_of

__all__ = ["PlayedFrame", "RecordingAudioOutput", "classify_tone"]

Clock = Callable[[], float]

# The chaos server's tones are steady within a reply item, and `tone_of` is exact on 10 ms:
# classifying the first 20 ms of each frame costs a tenth of the whole frame, at every frame of
# every simulated call.
_CLASSIFY_SAMPLES: Final = 480


def classify_tone(pcm: memoryview | bytes, sample_rate: int) -> str | None:
    """Name a chaos-server tone by its frequency: "answer", "preamble", or None."""
    return tone_of(bytes(pcm[: 2 * _CLASSIFY_SAMPLES]), sample_rate)


def _peak(pcm: memoryview | bytes) -> int:
    samples = np.frombuffer(pcm, dtype=np.int16)
    return int(np.abs(samples.astype(np.int32)).max()) if len(samples) else 0


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
    played yet, cuts the frame playing short and reports an interruption. `pause` stops the
    playout clock (frames scheduled after it move later by the pause on `resume`; captures wait
    while paused).
    """

    def __init__(
        self,
        *,
        label: str = "recording",
        lookahead: float = 0.2,
        clock: Clock = time.monotonic,
        on_frame: Callable[[PlayedFrame], None] | None = None,
    ) -> None:
        super().__init__(label=label, capabilities=AudioOutputCapabilities(pause=True))
        self._lookahead = lookahead
        self._clock = clock
        self._on_frame = on_frame
        self.frames: list[PlayedFrame] = []
        self._play_end = 0.0  # when the last scheduled frame ends
        self._segment = 0
        self._segment_open = False  # frames captured since the last finish report
        self._segment_start = 0.0
        self._finish_task: asyncio.Task[None] | None = None
        self._flushed = False  # the open segment was flushed: finish it once played
        self._heard = asyncio.Event()
        self._paused_at: float | None = None
        self._playing = asyncio.Event()
        self._playing.set()
        self.interruptions = 0
        self.pauses = 0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._finish_task is not None:
            # a new segment began before the previous one finished playing: report it first
            self._finish_task.cancel()
            self._finish_task = None
            self._report_finished(interrupted=False)
        await self._playing.wait()
        now = self._clock()
        if not self._segment_open:
            self._segment_open = True
            self._flushed = False
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
        self._flushed = True
        if self._paused_at is None:
            self._finish_task = asyncio.get_running_loop().create_task(self._finish_when_played())

    async def _finish_when_played(self) -> None:
        delay = self._play_end - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
        self._finish_task = None
        self._report_finished(interrupted=False)

    def pause(self) -> None:
        super().pause()
        if self._paused_at is not None:
            return
        self._paused_at = self._clock()
        self._playing.clear()
        self.pauses += 1
        if self._finish_task is not None:
            self._finish_task.cancel()
            self._finish_task = None

    def resume(self) -> None:
        super().resume()
        paused_at, self._paused_at = self._paused_at, None
        if paused_at is None:
            return
        now = self._clock()
        held = now - paused_at
        # what was scheduled after the pause plays later by as long as the pause lasted
        self.frames = [
            dataclasses.replace(f, at=f.at + held) if f.at >= paused_at else f for f in self.frames
        ]
        if self._play_end > paused_at:
            self._play_end += held
        self._playing.set()
        if self._segment_open and self._flushed:
            self._finish_task = asyncio.get_running_loop().create_task(self._finish_when_played())

    def clear_buffer(self) -> None:
        if self._finish_task is not None:
            self._finish_task.cancel()
            self._finish_task = None
        if not self._segment_open:
            return
        # the playout clock stands still while paused
        now = self._clock() if self._paused_at is None else self._paused_at
        # what was scheduled but not yet played was never heard
        while self.frames and self.frames[-1].segment == self._segment and self.frames[-1].at > now:
            self.frames.pop()
        # and the frame playing is cut where it stands, as a room's audio source stops
        last = self.frames[-1] if self.frames else None
        if last is not None and last.segment == self._segment and last.at + last.duration > now:
            self.frames[-1] = dataclasses.replace(last, duration=now - last.at)
        self._play_end = min(self._play_end, now)
        self.interruptions += 1
        self._report_finished(interrupted=True)

    def _report_finished(self, *, interrupted: bool) -> None:
        if not self._segment_open:
            return
        self._segment_open = False
        self._flushed = False
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
        self._playing.set()  # a capture held by a pause must not outlive the output
        if self._finish_task is not None:
            self._finish_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._finish_task
            self._finish_task = None
