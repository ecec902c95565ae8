"""The chaos server's energy VAD and reply tones (supervisor/chaos/vad.py)."""

from __future__ import annotations

import pytest

from realtime_supervisor.chaos.vad import (
    ANSWER_HZ,
    PREAMBLE_HZ,
    EnergyVad,
    SpeechStarted,
    SpeechStopped,
    amplitude_for,
    rms,
    sequence_of,
    tone,
    tone_of,
)

RATE = 24000


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (RATE * ms // 1000)


def burst(ms: int, hz: float = 300.0, amplitude: int = 8000) -> bytes:
    return tone(hz, start=0, count=RATE * ms // 1000, amplitude=amplitude)


def chunks(pcm: bytes, ms: int = 100) -> list[bytes]:
    size = RATE * ms // 1000 * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def test_burst_then_silence_starts_and_stops_speech() -> None:
    """A tone burst then 600 ms of silence gives speech_started then speech_stopped at 500 ms."""
    vad = EnergyVad()
    events = []
    for chunk in chunks(silence(400) + burst(800) + silence(600)):
        events += vad.feed(chunk)
    assert events == [SpeechStarted(audio_start_ms=100), SpeechStopped(audio_end_ms=1200)]
    assert not vad.speaking


def test_silence_shorter_than_threshold_keeps_speech_open() -> None:
    """A pause under silence_ms does not end speech."""
    vad = EnergyVad(silence_ms=500)
    events = []
    for chunk in chunks(burst(300) + silence(400) + burst(300)):
        events += vad.feed(chunk)
    assert events == [SpeechStarted(audio_start_ms=0)]
    assert vad.speaking


def test_time_is_counted_in_samples_whatever_the_chunking() -> None:
    """Odd chunk sizes give the same events as 100 ms chunks: time comes from sample counts."""
    pcm = silence(250) + burst(500) + silence(700)
    a, b = EnergyVad(prefix_padding_ms=0), EnergyVad(prefix_padding_ms=0)
    ev_a = [e for c in chunks(pcm) for e in a.feed(c)]
    ev_b = [e for i in range(0, len(pcm), 777) for e in b.feed(pcm[i : i + 777])]
    assert ev_a == ev_b == [SpeechStarted(250), SpeechStopped(750)]
    assert a.position_ms == b.position_ms == 1450


def test_quiet_audio_is_not_speech() -> None:
    """Audio under the RMS threshold never starts speech."""
    vad = EnergyVad(threshold_rms=1000)
    assert vad.feed(burst(1000, amplitude=1000)) == []  # RMS about 707


def test_reset_forgets_speech() -> None:
    """After reset, silence alone does not emit a stop."""
    vad = EnergyVad()
    assert vad.feed(burst(200)) == [SpeechStarted(0)]
    vad.reset()
    assert vad.feed(silence(1000)) == []


def test_rms() -> None:
    """RMS of a full-scale square is its amplitude; of nothing, zero."""
    square = (b"\x10\x27" + b"\xf0\xd8") * 100  # +10000, -10000
    assert rms(square) == pytest.approx(10000)
    assert rms(b"") == 0.0


@pytest.mark.parametrize("frame_ms", [10, 20, 100])
@pytest.mark.parametrize("rate", [24000, 48000, 16000])
def test_tone_of_classifies_answer_and_preamble(frame_ms: int, rate: int) -> None:
    """tone_of names 440 Hz 'answer' and 660 Hz 'preamble' on short frames at any rate."""
    n = rate * frame_ms // 1000
    for start in (0, 17, 1000):
        answer = tone(ANSWER_HZ, start=start, count=n, amplitude=6000, sample_rate=rate)
        preamble = tone(PREAMBLE_HZ, start=start, count=n, amplitude=6000, sample_rate=rate)
        assert tone_of(answer, rate) == "answer"
        assert tone_of(preamble, rate) == "preamble"


def test_tone_of_rejects_other_sounds() -> None:
    """Silence, quiet tones and other frequencies are not chaos tones."""
    assert tone_of(silence(20), RATE) is None
    assert tone_of(tone(440, start=0, count=480, amplitude=300), RATE) is None
    assert tone_of(tone(300, start=0, count=480, amplitude=6000), RATE) is None
    assert tone_of(tone(1000, start=0, count=480, amplitude=6000), RATE) is None
    assert tone_of(b"", RATE) is None


def test_tones_join_without_clicks() -> None:
    """Consecutive tone() calls continue the phase: joined equals one long call."""
    a = tone(440, start=0, count=100, amplitude=5000)
    b = tone(440, start=100, count=100, amplitude=5000)
    assert a + b == tone(440, start=0, count=200, amplitude=5000)


def test_amplitude_marks_the_response_sequence() -> None:
    """amplitude_for and sequence_of invert each other over their cycle."""
    for seq in range(1, 41):
        assert sequence_of(amplitude_for(seq)) == seq
    assert amplitude_for(1) != amplitude_for(2)
    assert max(amplitude_for(s) for s in range(1, 100)) < 32767
