"""The scripted caller: a microphone that speaks tone bursts (or makes noises) on cue.

Any server with voice detection hears the bursts as a person taking turns; the noises are short,
loud and broadband (a door, a cough, a dropped cup), which a server's energy-based voice
detection hears as speech starting even though nobody said anything.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from typing import Final

import numpy as np
from livekit import rtc
from livekit.agents.voice.io import AudioInput

__all__ = ["NOISE_AMPLITUDE", "ScriptedCaller"]

NOISE_AMPLITUDE: Final = 12000  # peak of a noise burst: well over any server VAD's threshold
_NOISE_SEED: Final = 20251201  # the same noise every run: a test hears what the last one heard


class ScriptedCaller(AudioInput):
    """A caller that speaks a tone when told to (`say`), makes a noise (`noise`), else is silent.

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
        rng = np.random.default_rng(_NOISE_SEED)
        noise = rng.uniform(-NOISE_AMPLITUDE, NOISE_AMPLITUDE, self._spf).astype(np.int16)
        self._noise = noise.tobytes()
        self._noisy = False  # the current utterance is a noise, not speech
        self._phase = 0
        self._remaining = 0  # samples left in the current utterance
        self._done: asyncio.Future[None] | None = None
        self._t0: float | None = None
        self._sent = 0
        self._closed = False
        self.utterances = 0
        self.noises = 0

    async def say(self, seconds: float) -> None:
        """Speak for `seconds`; returns when the last frame of the utterance has been sent."""
        await self._utter(seconds, noisy=False)

    async def noise(self, seconds: float = 0.15) -> None:
        """Make a short loud non-speech noise; returns when it has been sent."""
        await self._utter(seconds, noisy=True)

    async def _utter(self, seconds: float, *, noisy: bool) -> None:
        if self._done is not None and not self._done.done():
            raise RuntimeError("the caller is already speaking")
        self._noisy = noisy
        self._remaining = max(self._spf, int(seconds * self._rate))
        self._done = asyncio.get_running_loop().create_future()
        if noisy:
            self.noises += 1
        else:
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
            if self._noisy:
                data = self._noise
            else:
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
