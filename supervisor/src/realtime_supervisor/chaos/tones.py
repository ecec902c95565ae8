"""The chaos server's reply tones: answers at 440 Hz, preambles at 660 Hz, numbered by amplitude.

`tone_of` also names the hold cue's chime ("cue": 1.2-1.7 kHz, `realtime_supervisor.cue`),
so a recording can tell the cue from an answer: a cue is never an answer.

Pure: PCM16 little-endian mono bytes in and out. The amplitude carries the response's sequence
number in the session, so a recording sink can tell not only that a turn was answered but by
which response; `tone_of` reads a frame back as "answer", "preamble" or neither.
"""

from __future__ import annotations

import math
from array import array
from typing import Final, Literal

__all__ = [
    "AMPLITUDE_BASE",
    "AMPLITUDE_STEP",
    "ANSWER_HZ",
    "CUE_MIN_HZ",
    "CUE_NOTES_HZ",
    "PREAMBLE_HZ",
    "ToneKind",
    "amplitude_for",
    "rms",
    "sequence_of",
    "tone",
    "tone_of",
]

ANSWER_HZ: Final = 440.0
PREAMBLE_HZ: Final = 660.0
# The hold cue's chime (E6 then G6) and the band read as a cue: far above both reply tones.
CUE_NOTES_HZ: Final = (1318.5, 1568.0)
CUE_MIN_HZ: Final = 1200.0
_CUE_MAX_HZ: Final = 1700.0
AMPLITUDE_BASE: Final = 6000
AMPLITUDE_STEP: Final = 500
_AMPLITUDE_SLOTS: Final = 40  # 6000 .. 25500: loud enough to classify, far from clipping
_TONE_TOLERANCE: Final = 0.15  # 440 +- 66 and 660 +- 99 never overlap
_MIN_PEAK: Final = 500  # quieter than this is silence, not a tone

ToneKind = Literal["answer", "preamble", "cue"]


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
    """Classify a frame as the answer tone, the preamble tone, the hold cue, or none (None).

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
    if CUE_MIN_HZ <= hz <= _CUE_MAX_HZ:
        return "cue"
    return None
