"""The judge: what the caller heard, measured. Pure functions over played frames.

Rules (tests/test_judge.py holds each):
1. Answered, against the chaos server (its tones mark the audio): a playback segment in which
   ONE response (the tone's amplitude names it) played `reply_seconds` of answer tone. A
   preamble (660 Hz) is not an answer; two responses' halves do not add up to one.
2. Answered, against any other endpoint (no tones to read): the playback segment that finished
   playing, without interruption, the whole audio of a response that completed (`response.done`
   with status `completed`), created after the turn ended (livekit 1.8 plays a response's
   message items as consecutive segments: they add up). A preamble alone (the rest of the
   response unplayed), or the first part of a response that was then cancelled, is not an
   answer. A reply that recovered a lost one is the answer: what livekit logged in between does
   not matter, what was heard does.
3. The caller's longest silence: the longest stretch in [start, end] with no frame playing.
4. Overlapping replies: two responses interleaved (A, B, A) or two segments playing at once.
5. The hold cue is not an answer: a playback segment with any frame of the cue's chime (kind
   "cue", see `realtime_supervisor.cue`) is skipped by rules 1 and 2, whatever else it
   holds (its quiet tail reads as no tone at all); it still counts as sound for rule 3 and as a
   segment for rule 4 (a cue over an answer is an overlap).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from realtime_supervisor.chaos import sequence_of
from realtime_supervisor.kinds import WARNING_PREFIXES, WarningKind

__all__ = [
    "ANSWER_TOLERANCE",
    "LOST_REPLY",
    "Frame",
    "Response",
    "Stats",
    "answer_in",
    "longest_gap",
    "lost_reply",
    "overlapping",
    "reply_started",
]

ANSWER_TOLERANCE: Final = 1e-6
# a response's audio played whole: frames are cut at 10-20 ms, the server's deltas elsewhere
WHOLE_TOLERANCE: Final = 0.05

# livekit's messages that mean a reply was lost (the vocabulary's prefixes, less those about the
# connection or the watchdog's own bookkeeping): counted in the summary, next to what was heard.
_LOST_KINDS: Final = frozenset(
    {
        WarningKind.MULTI_MESSAGE,
        WarningKind.GENERATION_DISCARDED,
        WarningKind.REPLY_TIMEOUT,
        WarningKind.SCHEDULING_STOPPED,
        WarningKind.TEXT_WITH_AUDIO,
        WarningKind.LATE_RESPONSE,
        WarningKind.UNRECOVERABLE_CLOSE,
    }
)
_REPLY_TONES: Final = frozenset({"answer", "preamble"})  # numbered by amplitude (rule 4)
LOST_REPLY: Final = tuple(prefix for prefix, kind in WARNING_PREFIXES if kind in _LOST_KINDS)


def lost_reply(message: str) -> str | None:
    """The lost-reply prefix `message` carries, if any."""
    return next((prefix for prefix in LOST_REPLY if prefix in message), None)


class Frame(Protocol):
    """A played frame, as `realtime_supervisor.testing.PlayedFrame` has it."""

    @property
    def at(self) -> float: ...
    @property
    def duration(self) -> float: ...
    @property
    def kind(self) -> str | None: ...
    @property
    def level(self) -> int: ...
    @property
    def segment(self) -> int: ...


@dataclass(slots=True)
class Response:
    """One response as the server reported it: when created, how much audio, how it ended."""

    id: str
    created_at: float  # monotonic
    audio_seconds: float = 0.0
    status: str | None = None  # response.done's status; None while open


@dataclass(frozen=True, slots=True)
class Stats:
    """p50, p95 and max of a sample (nearest rank); None when there were no samples."""

    p50: float | None = None
    p95: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            return cls()
        ordered = sorted(values)

        def rank(p: float) -> float:
            return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 3)

        return cls(rank(0.50), rank(0.95), round(ordered[-1], 3))


def overlapping(frames: Sequence[Frame]) -> bool:
    """Two responses interleaved: A, then B, then A again; or two segments at the same time."""
    seen: list[int] = []
    for f in frames:
        if f.kind not in _REPLY_TONES:
            continue
        seq = sequence_of(f.level)
        if seen and seen[-1] == seq:
            continue
        if seq in seen:
            return True
        seen.append(seq)
    ordered = sorted(frames, key=lambda f: f.at)
    return any(
        b.segment != a.segment and b.at < a.at + a.duration - 1e-3
        for a, b in itertools.pairwise(ordered)
    )


def longest_gap(frames: Sequence[Frame], start: float, end: float) -> float:
    """The longest stretch in [start, end] with no frame playing."""
    longest, covered = 0.0, start
    for f in sorted(frames, key=lambda f: f.at):
        if f.at >= end:
            break
        longest = max(longest, f.at - covered)
        covered = max(covered, f.at + f.duration)
    return round(max(longest, end - covered), 6)


def reply_started(frames: Sequence[Frame]) -> float | None:
    """When the first playback segment that is not the hold cue began (rule 5), if one has.

    The cue's segment includes its quiet tail, so a frame's own tone does not decide it."""
    cue_segments = {f.segment for f in frames if f.kind == "cue"}
    return next((f.at for f in frames if f.segment not in cue_segments), None)


def answer_in(
    frames: Sequence[Frame],
    *,
    after: float,
    reply_seconds: float | None,
    finished: Mapping[int, tuple[float, bool]],
    responses: Sequence[Response] = (),
) -> tuple[float | None, int | None]:
    """(start of the answer audio, its segment) of the first answer after `after` (rules 1, 2).

    `finished`: segment -> (when it finished playing, whether it was interrupted).
    `responses`: what the server reported (rule 2).
    """
    cue_segments = {f.segment for f in frames if f.kind == "cue"}  # rule 5
    by_segment: dict[int, list[Frame]] = {}
    for f in frames:
        if f.at >= after and f.segment not in cue_segments:
            by_segment.setdefault(f.segment, []).append(f)
    for segment, seg_frames in sorted(by_segment.items()):
        answer = [f for f in seg_frames if f.kind == "answer"]
        tones = any(f.kind is not None for f in seg_frames)
        if tones and reply_seconds is not None:
            # rule 1: enough answer tone of one response in one segment
            per_response: dict[int, list[Frame]] = {}
            for f in answer:
                per_response.setdefault(sequence_of(f.level), []).append(f)
            for heard in per_response.values():
                if sum(f.duration for f in heard) >= reply_seconds - ANSWER_TOLERANCE:
                    return heard[0].at, segment
            continue
        # rule 2: the earliest segment that completes a response heard whole
        if tones and not answer:
            continue  # a preamble alone
        if _completes_a_response(segment, by_segment, finished, responses, after):
            first = answer[0] if answer else seg_frames[0]
            return first.at, segment
    return None, None


def _completes_a_response(
    segment: int,
    by_segment: Mapping[int, Sequence[Frame]],
    finished: Mapping[int, tuple[float, bool]],
    responses: Sequence[Response],
    after: float,
) -> bool:
    """Whether `segment` ends the playback of a completed response's whole audio.

    livekit may play one response's message items as consecutive segments (1.8 does), so a
    response is heard whole across the segments that started after it was created, up to this
    one, each played to its end. An interrupted segment cuts the response it belongs to.
    """
    for r in responses:
        if r.status != "completed" or r.audio_seconds <= 0 or r.created_at < after:
            continue
        played = 0.0
        for number, seg_frames in sorted(by_segment.items()):
            if number > segment:
                break
            if seg_frames[0].at < r.created_at:
                continue
            done = finished.get(number)
            if done is None or done[1]:
                played = 0.0  # still playing, or cut: what came before does not add up
                continue
            played += sum(f.duration for f in seg_frames)
        if played >= r.audio_seconds - WHOLE_TOLERANCE:
            return True
    return False
