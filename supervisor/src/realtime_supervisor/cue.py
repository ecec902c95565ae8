"""The hold cue: a short pre-recorded sound ("one moment") played while a recovery runs.

In the library, not the worker: an application that attaches a `Supervisor` wants it too
(livekit/agents #5808, #6224 ask for exactly this), and only the binding can keep the cue from
counting as the answer: its audio tap skips frames played while the cue's `SpeechHandle` is the
session's current speech, so a stall "recovered" by the cue alone stays unrecovered.

    supervisor = Supervisor(session, config, hold_cue=HoldCue.chime())

Rules (tests/test_cue.py holds each):
1. Played only on `recovery_started`, after the action's own interrupt (a reissue interrupts
   every speech, which would cut the cue at once), never on a clean turn.
2. Never over the caller: not started while the caller speaks, and stopped when they start
   (`allow_interruptions=True` lets livekit stop it too).
3. Never over the answer: livekit plays one speech at a time, and a realtime reply's request is
   sent only once its speech may play. So the binding asks for the reply once the cue has ended
   (not before: the watchdog's acknowledgement deadline would run while livekit holds the request
   back), and the answer comes at most the cue's length later: the cue is short (the built-in
   chime is 0.6 s; a file is limited to `MAX_SECONDS`). A reply the server starts by itself waits
   in livekit's queue and plays right after the cue.
4. Not in the conversation: `add_to_chat_ctx=False`; no TTS is needed (`say` with `audio`).

livekit-free at import (the worker validates its settings before importing livekit); the
binding (`livekit/binding.py`) holds the `CuePlayer`.

The built-in chime is synthesised when asked for (two soft notes, E6 then G6, 24 kHz mono PCM16):
no binary file to ship, and its pitch (1.2-1.7 kHz) is told apart from the chaos server's tones
(440 and 660 Hz) by `chaos.tone_of`, so simulations never count it as an answer.
"""

from __future__ import annotations

import asyncio
import functools
import math
import wave
from array import array
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .chaos.tones import CUE_NOTES_HZ
from .errors import ConfigError

if TYPE_CHECKING:
    from livekit import rtc

__all__ = ["MAX_SECONDS", "CuePlayer", "HoldCue"]

SAMPLE_RATE: Final = 24000
FRAME_SECONDS: Final = 0.02
MAX_SECONDS: Final = 2.0  # the answer may wait this long behind the cue (rule 3)
_NOTE_SECONDS: Final = 0.3
_PEAK: Final = 4000  # soft: about a third of the chaos answers' loudness, far from clipping


@functools.cache  # built once per process, not per call
def _chime_pcm() -> bytes:
    """Two notes with a quick attack and an exponential decay, joined without a click."""
    samples = array("h")
    per_note = int(SAMPLE_RATE * _NOTE_SECONDS)
    attack = int(SAMPLE_RATE * 0.01)
    for hz in CUE_NOTES_HZ:
        step = 2.0 * math.pi * hz / SAMPLE_RATE
        for i in range(per_note):
            envelope = min(1.0, i / attack) * math.exp(-4.0 * i / per_note)
            samples.append(round(_PEAK * envelope * math.sin(step * i)))
    return samples.tobytes()


@dataclass(frozen=True, slots=True)
class HoldCue:
    """The cue's PCM16 mono audio; `frames()` yields it as livekit audio frames."""

    pcm: bytes
    sample_rate: int = SAMPLE_RATE

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate

    @classmethod
    def chime(cls) -> HoldCue:
        """The built-in soft two-note chime (0.6 s)."""
        return cls(_chime_pcm())

    @classmethod
    def from_wav(cls, path: str | Path, *, field: str = "hold_cue") -> HoldCue:
        """A cue from a WAV file: PCM 16-bit, mono, 8-48 kHz, at most `MAX_SECONDS` long.

        Any problem is a `ConfigError` naming `field` (the worker passes its variable).
        """
        try:
            with wave.open(str(path), "rb") as wav:
                width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
                pcm = wav.readframes(wav.getnframes())
        except FileNotFoundError:
            raise ConfigError(field, f"{str(path)!r} does not exist") from None
        except (OSError, wave.Error, EOFError) as exc:
            raise ConfigError(
                field, f"{str(path)!r} is not a readable WAV file ({exc}); expected PCM16 mono"
            ) from None
        problems = []
        if width != 2:
            problems.append(f"{8 * width}-bit samples (expected 16-bit PCM)")
        if channels != 1:
            problems.append(f"{channels} channels (expected mono)")
        if not 8000 <= rate <= 48000:
            problems.append(f"{rate} Hz (expected 8000 to 48000)")
        if not pcm:
            problems.append("no audio")
        if problems:
            raise ConfigError(field, f"{str(path)!r} has " + ", ".join(problems))
        cue = cls(pcm, rate)
        if cue.seconds > MAX_SECONDS:
            raise ConfigError(
                field,
                f"{str(path)!r} lasts {cue.seconds:.2f} s; a hold cue is at most {MAX_SECONDS} s "
                "(the answer waits for it to finish)",
            )
        return cue

    @classmethod
    def from_setting(cls, value: str | None, *, field: str = "hold_cue") -> HoldCue | None:
        """`off` (or unset) -> None, `chime` -> the chime, else a path to a WAV file."""
        text = (value or "").strip()
        if text.lower() in ("", "off"):
            return None
        if text.lower() == "chime":
            return cls.chime()
        if not text.lower().endswith(".wav"):
            raise ConfigError(
                field, f"{text!r} is not accepted; expected off, chime or a path to a .wav file"
            )
        return cls.from_wav(text, field=field)

    def audio_frames(self) -> Sequence[rtc.AudioFrame]:
        from livekit import rtc  # here: settings are checked before livekit is imported

        per = int(self.sample_rate * FRAME_SECONDS)
        step = 2 * per
        return [
            rtc.AudioFrame(
                self.pcm[i : i + step],
                sample_rate=self.sample_rate,
                num_channels=1,
                samples_per_channel=len(self.pcm[i : i + step]) // 2,
            )
            for i in range(0, len(self.pcm), step)
        ]

    async def frames(self) -> AsyncIterator[rtc.AudioFrame]:
        for frame in self.audio_frames():
            yield frame


class CuePlayer:
    """Plays a `HoldCue` on one session when the binding says so; knows the cue's speech.

    The binding arms it on `recovery_started` and plays it right after the action's interrupt
    (rule 1); `is_current` tells the audio tap that the frames it sees are the cue's (public
    `AgentSession.current_speech`: livekit plays one speech at a time).
    """

    def __init__(self, session: Any, cue: HoldCue) -> None:
        self._session = session
        self.cue = cue
        self._handle: Any | None = None
        self._due = False
        self.played = 0  # cues started (tests, simulate)

    def arm(self) -> None:
        """A recovery started: play the cue at the next `play_if_due`."""
        self._due = True

    def disarm(self) -> None:
        self._due = False

    def play_if_due(self, *, may_speak: bool) -> bool:
        """Start the cue if armed, the caller is silent and no cue plays yet (rule 2)."""
        due, self._due = self._due, False
        if not due or not may_speak or self.playing:
            return False
        try:
            self._handle = self._session.say(
                "",
                audio=self.cue.frames(),
                add_to_chat_ctx=False,
                allow_interruptions=True,
            )
        except RuntimeError:  # livekit's "isn't running" / "is closing": nothing to hold
            return False
        self.played += 1
        return True

    async def wait(self, limit: float) -> None:
        """Until the cue has finished (or was stopped); stopped if it outlasts `limit`."""
        handle = self._handle
        if handle is None or handle.done():
            return
        done = asyncio.Event()
        handle.add_done_callback(lambda _h: done.set())
        try:
            await asyncio.wait_for(done.wait(), limit)
        except TimeoutError:
            self.stop()

    @property
    def playing(self) -> bool:
        handle = self._handle
        return handle is not None and not handle.done()

    def is_current(self) -> bool:
        """The session is playing the cue now (its frames are not the answer)."""
        handle = self._handle
        return handle is not None and not handle.done() and self._session.current_speech is handle

    def stop(self) -> None:
        """Stop the cue now (the caller speaks, the watchdog escalated) and drop an armed one."""
        self._due = False
        handle = self._handle
        if handle is not None and not handle.done():
            handle.interrupt()
