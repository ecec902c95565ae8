"""Audio for the chaos server: an energy VAD on what the caller says, and the marked reply tones.

Pure: PCM16 little-endian mono bytes in, events or bytes out. Time is counted in samples, never
read from a clock, so the same audio always gives the same events at the same offsets.

Rules of the VAD (a caricature of the Realtime API's server_vad):
1. Audio is judged in 10 ms windows by RMS; a window above `threshold_rms` is speech.
2. The first speech window while idle starts speech (`audio_start_ms` backs off by the prefix
   padding, as the real API reports it).
3. After speech, `silence_ms` of consecutive quiet windows stops it; `audio_end_ms` is where the
   quiet began.

Reply tones: answer items are 440 Hz, preambles 660 Hz (the contract's audio marking), and the
amplitude carries the response's sequence number in the session, so a recording sink can tell
not only that a turn was answered but by which response.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "AMPLITUDE_BASE",
    "AMPLITUDE_STEP",
    "ANSWER_HZ",
    "PREAMBLE_HZ",
    "EnergyVad",
    "SpeechStarted",
    "SpeechStopped",
    "ToneKind",
    "amplitude_for",
    "rms",
    "sequence_of",
    "tone",
    "tone_of",
]

ANSWER_HZ: Final = 440.0
PREAMBLE_HZ: Final = 660.0
AMPLITUDE_BASE: Final = 6000
AMPLITUDE_STEP: Final = 500
_AMPLITUDE_SLOTS: Final = 40  # 6000 .. 25500: loud enough to classify, far from clipping
_TONE_TOLERANCE: Final = 0.15  # 440 +- 66 and 660 +- 99 never overlap
_MIN_PEAK: Final = 500  # quieter than this is silence, not a tone

ToneKind = Literal["answer", "preamble"]


def _samples(pcm16: bytes | memoryview) -> array[int]:
    samples = array("h")
    data = bytes(pcm16)
    samples.frombytes(data[: len(data) - len(data) % 2])
    return samples


def rms(pcm16: bytes | memoryview) -> float:
    """Root mean square of PCM16 samples (0 for empty input)."""
    samples = _samples(pcm16)
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def amplitude_for(sequence: int) -> int:
    """The peak amplitude that marks response number `sequence` (1-based, cycling)."""
    return AMPLITUDE_BASE + AMPLITUDE_STEP * ((sequence - 1) % _AMPLITUDE_SLOTS)


def sequence_of(peak: int) -> int:
    """Inverse of `amplitude_for` modulo its cycle: the response number a peak marks."""
    return round((peak - AMPLITUDE_BASE) / AMPLITUDE_STEP) % _AMPLITUDE_SLOTS + 1


def tone(hz: float, *, start: int, count: int, amplitude: int, sample_rate: int = 24000) -> bytes:
    """`count` samples of a sine from sample `start` on: consecutive calls join without clicks."""
    step = 2.0 * math.pi * hz / sample_rate
    out = array("h", (round(amplitude * math.sin(step * i)) for i in range(start, start + count)))
    return out.tobytes()


def tone_of(pcm16: bytes | memoryview, sample_rate: int) -> ToneKind | None:
    """Classify a frame as the answer tone, the preamble tone, or neither (None).

    The frequency comes from interpolated zero crossings, which stays accurate on 10 ms frames
    where a plain crossing count would be off by a whole crossing.
    """
    samples = _samples(pcm16)
    if len(samples) < 4 or max(abs(s) for s in samples) < _MIN_PEAK:
        return None
    crossings: list[float] = []
    for i in range(1, len(samples)):
        a, b = samples[i - 1], samples[i]
        if (a < 0) != (b < 0):
            crossings.append(i - 1 + a / (a - b) if a != b else float(i))
    if len(crossings) < 3:
        return None
    span = crossings[-1] - crossings[0]
    hz = (len(crossings) - 1) * sample_rate / (2.0 * span)
    for kind, target in (("answer", ANSWER_HZ), ("preamble", PREAMBLE_HZ)):
        if abs(hz - target) <= target * _TONE_TOLERANCE:
            return "answer" if kind == "answer" else "preamble"
    return None


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Speech began; `audio_start_ms` counts from the start of the input audio."""

    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """Speech ended; `audio_end_ms` is where the closing silence began."""

    audio_end_ms: int


VadEvent = SpeechStarted | SpeechStopped


class EnergyVad:
    """Energy voice activity detection over a stream of PCM16 chunks."""

    def __init__(
        self,
        *,
        sample_rate: int = 24000,
        threshold_rms: float = 1000.0,
        silence_ms: int = 500,
        prefix_padding_ms: int = 300,
        window_ms: int = 10,
    ) -> None:
        self.sample_rate = sample_rate
        self.threshold_rms = threshold_rms
        self.silence_ms = silence_ms
        self.prefix_padding_ms = prefix_padding_ms
        self._window = sample_rate * window_ms // 1000
        self._pending = b""
        self._position = 0  # samples judged so far
        self._speaking = False
        self._quiet_since: int | None = None  # sample where the current quiet run began

    @property
    def speaking(self) -> bool:
        """True between a SpeechStarted and its SpeechStopped."""
        return self._speaking

    @property
    def position_ms(self) -> int:
        """How much audio has been judged, in milliseconds."""
        return self._ms(self._position)

    def _ms(self, samples: int) -> int:
        return samples * 1000 // self.sample_rate

    def reset(self) -> None:
        """Forget speech in progress (the input buffer was cleared); the time base stays."""
        self._pending = b""
        self._speaking = False
        self._quiet_since = None

    def feed(self, pcm16: bytes) -> list[VadEvent]:
        """Judge more audio; returns the events it caused, in order."""
        data = self._pending + pcm16
        size = self._window * 2
        events: list[VadEvent] = []
        offset = 0
        while offset + size <= len(data):
            loud = rms(data[offset : offset + size]) > self.threshold_rms
            offset += size
            start = self._position
            self._position += self._window
            if loud:
                self._quiet_since = None
                if not self._speaking:
                    self._speaking = True
                    begin = max(0, self._ms(start) - self.prefix_padding_ms)
                    events.append(SpeechStarted(audio_start_ms=begin))
            elif self._speaking:
                if self._quiet_since is None:
                    self._quiet_since = start
                if self._ms(self._position - self._quiet_since) >= self.silence_ms:
                    self._speaking = False
                    events.append(SpeechStopped(audio_end_ms=self._ms(self._quiet_since)))
                    self._quiet_since = None
        self._pending = data[offset:]
        return events
