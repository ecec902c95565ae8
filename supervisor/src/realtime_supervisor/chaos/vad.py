"""An energy VAD on what the caller says: the chaos server's stand-in for server_vad.

Pure: PCM16 little-endian mono bytes in, events out. Time is counted in samples, never read from
a clock, so the same audio always gives the same events at the same offsets.

Rules of the VAD (a caricature of the Realtime API's server_vad):
1. Audio is judged in 10 ms windows by RMS; a window above `threshold_rms` is speech.
2. The first speech window while idle starts speech (`audio_start_ms` backs off by the prefix
   padding, as the real API reports it).
3. After speech, `silence_ms` of consecutive quiet windows stops it; `audio_end_ms` is where the
   quiet began.

The reply tones live in `tones.py`; their names are re-exported here for older imports.
"""

from __future__ import annotations

from dataclasses import dataclass

from .tones import (
    AMPLITUDE_BASE,
    AMPLITUDE_STEP,
    ANSWER_HZ,
    PREAMBLE_HZ,
    ToneKind,
    amplitude_for,
    rms,
    sequence_of,
    tone,
    tone_of,
)

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
