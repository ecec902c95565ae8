"""The stall detector: observations and times in, findings out, for one agent session.

Rule 1: The detector is pure. It never reads the clock, sleeps, logs or calls out: `observe(obs,
        now)` and `poll(now)` return findings and the asyncio shell acts on them.
Rule 2: Only agent audio reaching the output proves the caller heard something. Response, item and
        state events only tell the detector whether a response is open.
Rule 3: Each observation becomes zero or more triggers (`Trigger`), and triggers arm, refresh,
        suspend and disarm the rows of `TABLE`. Nothing else changes which verdicts are armed; the
        bookkeeping around the table (the reply owed, tool calls running, the open response, the
        reconnect window) only computes the triggers and the findings' facts.
Rule 4: Within a row, disarming wins over arming and refreshing. Arming restarts the row's clock
        with the timeout named in the row; refreshing restarts it only if the row is armed. Two
        arms are not restarts: the watchdog's own request does not postpone a deadline a newer
        turn armed, and a second warning about a reply already cut does not restart the grace.
Rule 5: An observation is applied before expired deadlines are judged: audio arriving a few
        milliseconds after a deadline, before the shell's timer ran, is evidence the agent is not
        silent, so it disarms instead of losing a race.
Rule 6: A verdict fires once per incident: firing disarms its row, and only an arming trigger (a new
        turn, a reply request, the watchdog's own request, new audio, a new warning) arms it again.
Rule 7: dead_session and a normal close are final: after either, the detector returns nothing.
Rule 8: Every observation costs O(1) and the state is bounded: audio frames only move timestamps
        (no timer per frame), and the reconnect window holds at most storm_reconnects + 1 times.
Rule 9: Open responses are a set keyed by id, bounded; the newest created is the one that plays. A
        lifecycle event that names no response, or a response.done for an id never created (done
        before created), cannot open one, and a late done of an older response does not close the
        newest: a phantom open response would make a complete reply look cut and get it answered
        twice.
Rule 10: A reply is in progress until its PLAYBACK ends, not until response.done: the real API
        sends audio faster than real time, so response.done comes while most of the reply is
        still to be played. audio_gap is armed by every frame and disarmed by the playback's end.

Rule 11: no_reply listens to the server's progress (three rows, one verdict). A reply owed must be
        acknowledged (response.created) within ack_timeout: the real API does so in about 0.3 s
        however slow the reply itself, so nothing by then means the request (or the turn, or our
        own re-issue into a dead socket) was lost. Once acknowledged, any server event is
        progress; none for progress_timeout means the reply stopped. A reply acknowledged and
        progressing but silent keeps the patient reply_timeout (a reasoning model, a slow first
        audio). A response that ends failed, or incomplete before the server sent any audio, is a
        lost reply at once; one cut (incomplete) after audio was sent is REPLY_INCOMPLETE from
        its first frame played (at once if it is playing).
        The same rows judge the watchdog's own request, so an unacknowledged re-issue goes to the
        next rung in ack_timeout, not recovery_timeout. A commit is not an acknowledgement: a
        server that commits the turn and never responds is the commonest lost reply.
        A request's acknowledgement is timed from when its response.create reaches the socket
        (REPLY_SENT), not from the ask: livekit queues a request made while its socket connects
        (ours after a reconnect or a failover, whose new socket may be handed over before it is
        up), and the connect is not the server's silence. The patient row bounds a request that
        never reaches the wire.

Rule 12: Audio of the reply the watchdog interrupted is not an answer to its request. A reply
        that stalled and then resumes (a network hiccup) can play a few frames between our cancel
        and the server's confirmation of it; those frames end mid-sentence. From the moment the
        watchdog interrupts (ReplyInterrupted, as its action starts: a resume that races the
        verdict lands in the action's wait for the cancel) until a response newer than the one
        current then is created, that response's audio is stale: it
        moves the audio clocks (the caller does hear it) but answers nothing, so the request's
        no_reply rows keep running and the incident stays open (the next rung, not a turn left
        unanswered).

Why no_reply is suspended while the caller speaks: a request (the watchdog's own, or the
application's) that lands while the caller talks must not be judged by the clock; the caller's
turn end re-arms the row with the full reply_timeout.

Why post_warning_silence is measured from the last frame: on livekit 1.5.11 the multi-message
warning arrives while the first item's audio may still be playing, and the lost item is the one that
should follow it. So the row's clock restarts with every frame of the reply the warning cut: it
fires once, after the warning, no frame has reached the output for a whole warning_grace. (Not from
PlaybackFinished: the output reports that only when livekit closes the generation, which after a
drop waits for the reconnect; frames are timed as audio_gap times them.) Audio of a response created
after the warning is a new reply and disarms it.

About 800 lines, over the house limit on purpose: the rules above, the vocabulary (triggers,
conditions, warning effects), the table and the engine that applies it are read together, as
h11's `_state.py` is. The consolidation may move the vocabulary and the table to their own module;
the engine would stay here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from realtime_supervisor._observations import (
    AgentAudioPlayed,
    AgentStateChanged,
    LivekitWarning,
    MessageItemAdded,
    Observation,
    PlaybackFinished,
    RealtimeError,
    ReplyInterrupted,
    ReplyRequested,
    ReplySent,
    ResponseCreated,
    ResponseDone,
    ServerIdleTimeout,
    ServerProgress,
    SessionClosed,
    SessionReconnected,
    ToolCallFinished,
    ToolCallStarted,
    TurnDeclined,
    UserSpeechStarted,
    UserSpeechStopped,
    WarningKind,
)
from realtime_supervisor._window import SlidingWindow
from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.kinds import StallKind

__all__ = [
    "INERT",
    "TABLE",
    "WARNING_EFFECTS",
    "Condition",
    "Detector",
    "Finding",
    "Heard",
    "ReplyExpected",
    "Row",
    "Stall",
    "StallKind",
    "Trigger",
    "WarningEffect",
]


class Trigger(StrEnum):
    """What an observation means to the table (one observation may mean several)."""

    USER_SPEAKING = "user speaking"  # UserSpeechStarted
    USER_TURN_ENDED = "user turn ended"  # UserSpeechStopped
    REPLY_REQUESTED = "reply requested"  # ReplyRequested(by_watchdog=False)
    RECOVERY_REQUESTED = "recovery requested"  # ReplyRequested(by_watchdog=True)
    REPLY_SENT = "the request sent"  # ReplySent: the request is on the wire (Rule 11)
    TOOL_STARTED = "tool started"  # ToolCallStarted
    TOOL_FINISHED = "tool finished"  # ToolCallFinished (livekit reports one per batch of calls)
    AGENT_AUDIO = "agent audio"  # AgentAudioPlayed, unless stale
    # AgentAudioPlayed of the response the watchdog's request interrupted, before any newer
    # response was created (Rule 12): it disarms nothing, on purpose
    STALE_AUDIO = "stale audio"
    # AgentAudioPlayed while a reply is in progress: its response open, or its playback not ended
    RESPONSE_AUDIO = "response audio"  # (Rule 10)
    NEW_REPLY_AUDIO = "new reply audio"  # audio that is not the reply a warning cut
    PLAYBACK_FINISHED = "playback finished"  # PlaybackFinished
    # PlaybackFinished (not interrupted) while the server still has the response open: livekit
    # ended the reply early (a stale response.done closes whatever generation is current)
    REPLY_CUT = "reply cut short"
    RESPONSE_DONE = "response done"  # ResponseDone of the open response
    TURN_DECLINED = "turn declined"  # TurnDeclined
    # ServerIdleTimeout: server VAD's idle timeout fired and the server will speak by itself
    SERVER_PROMPTED = "server prompted"
    ACKNOWLEDGED = "acknowledged"  # ResponseCreated while a reply is owed (Rule 11)
    PROGRESS = "progress"  # ServerProgress: any server event (Rule 11)
    # ResponseDone failed or incomplete while a reply is owed: nothing more will come (Rule 11)
    REPLY_FAILED = "reply failed"
    # ResponseDone incomplete (max_output_tokens, content_filter) after its audio began or was
    # sent (`voiced`): the server cut the answer mid-sentence; silence after its last frame is a
    # stall, as after a livekit warning that cut a reply
    REPLY_INCOMPLETE = "reply incomplete"
    WARNING_CUT = "warning: reply cut"  # LivekitWarning whose effect is CUT
    WARNING_LOST = (
        "warning: reply lost"  # LivekitWarning whose effect is LOST, while a reply is owed
    )
    FATAL = "fatal"  # RealtimeError(recoverable=False), FATAL warnings, SessionClosed(zombie=True)
    STORM = "storm"  # SessionReconnected beyond storm_reconnects in storm_window


class Condition(StrEnum):
    """A state during which a row's clock does not run."""

    TOOL_RUNNING = "a tool call runs"
    CALLER_SPEAKING = "the caller speaks"


class WarningEffect(StrEnum):
    """What a livekit warning says about the reply."""

    CUT = "cut"  # the reply being played lost its rest: silence after its sound is a stall
    LOST = "lost"  # a requested reply was never generated: matters only while one is owed
    NOTED = "noted"  # counted, but says nothing new (a late response was already given up on)
    FATAL = "fatal"  # the session is dead
    # the connection went: the reply being played is CUT, a reply owed is LOST, else nothing
    DROPPED = "dropped"


WARNING_EFFECTS: Mapping[WarningKind, WarningEffect] = {
    WarningKind.MULTI_MESSAGE: WarningEffect.CUT,
    WarningKind.GENERATION_DISCARDED: WarningEffect.CUT,
    WarningKind.TEXT_WITH_AUDIO: WarningEffect.CUT,
    WarningKind.REPLY_TIMEOUT: WarningEffect.LOST,
    WarningKind.SCHEDULING_STOPPED: WarningEffect.LOST,
    WarningKind.EVENT_FAILED: WarningEffect.LOST,
    # Logged when a response arrives after livekit timed it out (reply_timeout was logged then) or
    # after a barge-in (normal): arming on it would only duplicate or invent a stall.
    WarningKind.LATE_RESPONSE: WarningEffect.NOTED,
    # Logged the moment the socket drops, before livekit reconnects and reports the generation
    # discarded: the silence is measured from here, not from the reconnect.
    WarningKind.CONNECTION_LOST: WarningEffect.DROPPED,
    WarningKind.UNRECOVERABLE_CLOSE: WarningEffect.FATAL,
    WarningKind.ACLOSE_ERROR: WarningEffect.FATAL,
}


@dataclass(frozen=True, slots=True)
class Row:
    """One verdict: what arms it (and with which timeout field), refreshes, suspends, disarms it.

    A timeout of None fires at once when armed.
    """

    kind: StallKind
    armed_by: Mapping[Trigger, str | None]
    refreshed_by: frozenset[Trigger]
    suspended_while: frozenset[Condition]
    disarmed_by: frozenset[Trigger]
    name: str = ""  # the row's own name, when several rows give one verdict (default: the kind)
    # The row's clock: its name, else its kind's. Computed once: the detector looks it up for
    # every row at every observation, and an enum's `.value` is a descriptor call each time.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.name or self.kind.value)


T = Trigger
# a request that must not postpone a deadline armed by a turn that ended while we recovered
_OURS_OR_SENT = frozenset({T.RECOVERY_REQUESTED, T.REPLY_SENT})
_OWED = frozenset({Condition.TOOL_RUNNING, Condition.CALLER_SPEAKING})
_ANSWERED = frozenset({T.AGENT_AUDIO, T.USER_SPEAKING, T.TURN_DECLINED})
TABLE: tuple[Row, ...] = (
    Row(
        StallKind.NO_REPLY,
        armed_by={
            T.USER_TURN_ENDED: "reply_timeout",
            T.REPLY_REQUESTED: "reply_timeout",
            T.TOOL_FINISHED: "reply_timeout",
            T.SERVER_PROMPTED: "reply_timeout",
            T.RECOVERY_REQUESTED: "recovery_timeout",
        },
        refreshed_by=frozenset(),
        suspended_while=_OWED,
        disarmed_by=_ANSWERED,
    ),
    Row(  # Rule 11: the request was never acknowledged
        StallKind.NO_REPLY,
        armed_by={
            T.USER_TURN_ENDED: "ack_timeout",
            T.REPLY_REQUESTED: "ack_timeout",
            T.TOOL_FINISHED: "ack_timeout",
            T.SERVER_PROMPTED: "ack_timeout",
            # timed from the wire, not from the ask: see Rule 11
            T.REPLY_SENT: "ack_timeout",
        },
        refreshed_by=frozenset(),
        suspended_while=_OWED,
        disarmed_by=_ANSWERED | {T.ACKNOWLEDGED},
        name="no_ack",
    ),
    Row(  # Rule 11: acknowledged, then nothing at all
        StallKind.NO_REPLY,
        armed_by={T.ACKNOWLEDGED: "progress_timeout"},
        refreshed_by=frozenset({T.PROGRESS}),
        suspended_while=_OWED,
        # A new request (a turn, a tool's result, ours) waits for its own acknowledgement; and
        # a clock suspended through a tool or the caller's speech must not fire on resuming.
        disarmed_by=_ANSWERED
        | {T.RECOVERY_REQUESTED, T.USER_TURN_ENDED, T.TOOL_STARTED, T.TOOL_FINISHED},
        name="no_progress",
    ),
    Row(  # Rule 11: the response ended without a sound
        StallKind.NO_REPLY,
        armed_by={T.REPLY_FAILED: None},
        refreshed_by=frozenset(),
        suspended_while=frozenset(),
        disarmed_by=frozenset(),
        name="reply_failed",
    ),
    Row(
        StallKind.AUDIO_GAP,
        # Every frame of a reply in progress re-arms: the clock measures the gap since the last
        # one. Not disarmed by response.done (Rule 10): only the end of the playback.
        armed_by={T.RESPONSE_AUDIO: "audio_gap_timeout"},
        refreshed_by=frozenset(),
        suspended_while=frozenset(),
        # a playback that ends with its response open is the next row's to judge
        disarmed_by=frozenset(
            {T.PLAYBACK_FINISHED, T.REPLY_CUT, T.USER_SPEAKING, T.RECOVERY_REQUESTED}
        ),
    ),
    Row(
        # A playback ended while its response is still open: livekit cut the reply (a stale
        # response.done closes whatever generation is current), or a reasoning model's preamble
        # item ended and the final answer is still being thought. Only the server can tell:
        # judged by its progress, as an acknowledged reply is (Rule 11).
        StallKind.AUDIO_GAP,
        armed_by={T.REPLY_CUT: "progress_timeout"},
        refreshed_by=frozenset({T.PROGRESS}),
        suspended_while=frozenset(),
        disarmed_by=frozenset(
            {T.AGENT_AUDIO, T.PLAYBACK_FINISHED, T.USER_SPEAKING, T.RECOVERY_REQUESTED}
        ),
        name="reply_cut",
    ),
    Row(
        StallKind.POST_WARNING_SILENCE,
        armed_by={
            T.WARNING_CUT: "warning_grace",
            T.WARNING_LOST: "warning_grace",
            T.REPLY_INCOMPLETE: "warning_grace",
        },
        refreshed_by=frozenset({T.AGENT_AUDIO}),
        suspended_while=frozenset(),
        disarmed_by=frozenset(
            {T.NEW_REPLY_AUDIO, T.USER_SPEAKING, T.TURN_DECLINED, T.RECOVERY_REQUESTED}
        ),
    ),
    Row(
        StallKind.DEAD_SESSION,
        armed_by={T.FATAL: None},
        refreshed_by=frozenset(),
        suspended_while=frozenset(),
        disarmed_by=frozenset(),
    ),
    Row(
        StallKind.RECONNECT_STORM,
        armed_by={T.STORM: None},
        refreshed_by=frozenset(),
        suspended_while=frozenset(),
        disarmed_by=frozenset(),
    ),
)
del T

# At most this many responses are open at once (the real API has one; a leak stays bounded).
_MAX_OPEN = 8

# Observations that change nothing the table reads (no trigger, no bookkeeping): the shell may drop
# them unseen. They are frequent (every agent state change, every output item).
INERT: frozenset[type[Observation]] = frozenset({AgentStateChanged, MessageItemAdded})

# Server errors that no retry on the same account can fix (livekit 1.8's own list); livekit 1.5
# reports them as recoverable and retries forever, so the detector reads the code, not the flag.
FATAL_CODES: frozenset[str] = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "invalid_api_key",
        "account_deactivated",
        "billing_hard_limit_reached",
    }
)
# How a response may end without its reply: nothing more will come for it (Rule 11).
_LOST_STATUSES = frozenset({"failed", "incomplete"})

# The rows that give each verdict: firing one disarms them all (Rule 6).
_SIBLINGS: Mapping[StallKind, tuple[str, ...]] = {
    kind: tuple(row.key for row in TABLE if row.kind is kind) for kind in StallKind
}

# The triggers a row reacts to at all: an observation skips the rows it cannot touch.
_TOUCHED_BY: Mapping[str, frozenset[Trigger]] = {
    row.key: frozenset(row.armed_by) | row.refreshed_by | row.disarmed_by for row in TABLE
}

_TOUCHING: dict[tuple[Trigger, ...], tuple[Row, ...]] = {}


def _touching(triggers: tuple[Trigger, ...]) -> tuple[Row, ...]:
    """The rows these triggers touch, in table order: computed once per combination (a handful
    occur), as the detector asks at every observation."""
    rows = _TOUCHING.get(triggers)
    if rows is None:
        rows = tuple(row for row in TABLE if not _TOUCHED_BY[row.key].isdisjoint(triggers))
        _TOUCHING[triggers] = rows
    return rows


@dataclass(frozen=True, slots=True)
class Stall:
    """A verdict: the agent is silent when it should speak (or the session cannot speak)."""

    kind: StallKind
    silence_since: float  # when the agent should have started (or continued) speaking
    detected_at: float
    detail: str
    warning: WarningKind | None = None  # the livekit warning behind it, if any


@dataclass(frozen=True, slots=True)
class Heard:
    """The first agent audio after a reply was owed or a stall was found."""

    at: float
    latency: float | None  # turn end (or the app's request) -> this audio; None if not a turn's
    stall: Stall | None  # the stall that opened the incident this audio closes, if any


@dataclass(frozen=True, slots=True)
class ReplyExpected:
    """A user turn ended (or the application asked for a reply): a new turn expects an answer."""

    since: float


Finding = Stall | Heard | ReplyExpected


class _Clock:
    """One row's clock: armed since `since` for `timeout` seconds (None: at once)."""

    __slots__ = ("armed", "cause", "since", "timeout")

    def __init__(self) -> None:
        self.armed = False
        self.since = 0.0
        self.timeout: float | None = None
        self.cause: Trigger | None = None


class Detector:
    """Finds stalls in one session's observations; see the module's rules and `TABLE`."""

    def __init__(
        self, config: WatchdogConfig, timeouts: Callable[[str], float] | None = None
    ) -> None:
        self._config = config
        # A row's timeout field -> seconds, asked at each arming: the config's value, unless the
        # shell resolves it otherwise (learned thresholds: realtime_supervisor._learned).
        self._timeout: Callable[[str], float] = timeouts or (
            lambda field: float(getattr(config, field))
        )
        self._clocks: dict[str, _Clock] = {row.key: _Clock() for row in TABLE}
        self._ended = False
        # A tool call runs. Not a count: livekit reports one `function_tools_executed` per batch of
        # calls, so counting starts against finishes would suspend no_reply forever after a batch.
        self._tool_running = False
        # Open responses, oldest first (Rule 9); a dict keeps insertion order.
        self._open: dict[str, None] = {}
        # Ids closed before they were created (done before created): never opened afterwards.
        self._closed_early: deque[str] = deque(maxlen=_MAX_OPEN)
        self._current: str | None = None  # the newest response created
        # A response's audio began playing and its playback has not ended (Rule 10). Audio with no
        # response behind it (a greeting spoken by a TTS, say) is not a reply in progress.
        self._playing = False
        self._caller_speaking = False
        self._cut_response: str | None = None  # the response whose playback livekit ended early
        # ended incomplete after sending audio, none of it played yet: cut from its first frame
        self._cut_unplayed: str | None = None
        self._last_audio: float | None = None
        self._last_answer: float | None = None  # the last frame that was not stale (Rule 12)
        # The reply owed: since when, and whether a turn (not a tool or the watchdog) asked for it.
        self._owed_since: float | None = None
        self._owed_by_turn = False
        # The warning behind post_warning_silence and the response playing when it came.
        self._warning: WarningKind | None = None
        self._warning_effect: WarningEffect | None = None  # CUT or LOST, as it applied
        self._warning_response: str | None = None
        self._incident: Stall | None = None
        # The response current when the watchdog interrupted to recover, until a newer one is
        # created: its audio is stale (Rule 12).
        self._asked_over: str | None = None
        # What the next immediate verdict (dead_session, reconnect_storm) reports.
        self._detail = ""
        self._fatal_warning: WarningKind | None = None
        # a storm is storm_reconnects + 1 of them: older ones never matter
        self._reconnects = SlidingWindow(config.storm_window, cap=config.storm_reconnects + 1)

    # -- read-only facts for the shell ---------------------------------------------------------

    @property
    def ended(self) -> bool:
        """A dead_session verdict or a normal close ended the session: no more verdicts."""
        return self._ended

    @property
    def reply_expected(self) -> bool:
        """A reply is owed and no agent audio has come since."""
        return self._owed_since is not None

    @property
    def expected_since(self) -> float | None:
        """When the reply owed began to be owed (turn end, request, tool finish)."""
        return self._owed_since

    @property
    def last_audio_at(self) -> float | None:
        """When agent audio last reached the output."""
        return self._last_audio

    @property
    def response_open(self) -> bool:
        """The server has a response open (created, not done)."""
        return self._open_response is not None

    @property
    def reply_in_progress(self) -> bool:
        """A response is open or its audio is still playing (Rule 10)."""
        return self._open_response is not None or self._playing

    @property
    def caller_speaking(self) -> bool:
        """The server's VAD heard the caller start and not yet stop."""
        return self._caller_speaking

    @property
    def _open_response(self) -> str | None:
        """The newest response, if still open: the one whose audio plays (older ones cannot)."""
        current = self._current
        return current if current is not None and current in self._open else None

    @property
    def incident(self) -> Stall | None:
        """The stall that opened the current incident (no agent audio since), if any."""
        return self._incident

    def heard_since(self, t: float) -> bool:
        """Agent audio reached the output at or after `t`, other than a fragment of a reply the
        watchdog interrupted (Rule 12)."""
        return self._last_answer is not None and self._last_answer >= t

    def next_deadline(self) -> float | None:
        """The earliest time `poll` could find a stall, or None if nothing is armed."""
        deadline: float | None = None
        for row in TABLE:
            if not self._clocks[row.key].armed:
                continue
            at = self._deadline(row)
            if at is not None and (deadline is None or at < deadline):
                deadline = at
        return deadline

    # -- input ---------------------------------------------------------------------------------

    def observe(self, obs: Observation, now: float) -> list[Finding]:
        """Apply one observation at time `now`, then judge expired deadlines."""
        if self._ended:
            return []
        findings: list[Finding] = []
        triggers = self._triggers(obs, now)
        if triggers:
            self._settle_reply(triggers, now, findings)
            for row in _touching(triggers):
                self._apply(row, triggers, now, findings)
        if isinstance(obs, SessionClosed) and not obs.zombie:
            self._end()
        findings.extend(self.poll(now))
        return findings

    def poll(self, now: float) -> list[Stall]:
        """Return the stalls whose deadlines are at or before `now` (each fires once)."""
        if self._ended:
            return []
        due: list[tuple[float, Row]] = []
        for row in TABLE:
            if not self._clocks[row.key].armed:
                continue  # the common case, without a call
            at = self._deadline(row)
            if at is not None and at <= now:
                due.append((at, row))
        if not due:
            return []
        due.sort(key=lambda pair: pair[0])
        # a row a sibling's verdict disarmed a moment ago does not fire too (Rule 6)
        return [self._fire(row, now) for _, row in due if self._clocks[row.key].armed]

    # -- internals -----------------------------------------------------------------------------

    def _triggers(self, obs: Observation, now: float) -> tuple[Trigger, ...]:
        """Translate one observation into triggers, updating the bookkeeping they depend on."""
        match obs:
            case AgentStateChanged() | MessageItemAdded():
                return ()  # frequent, and say nothing about what is armed
            case AgentAudioPlayed():
                self._last_audio = now
                if self._open_response is not None:
                    self._playing = True  # a response's playback began: in progress to its end
                stale = self._asked_over is not None and self._current == self._asked_over
                if not stale:
                    self._last_answer = now
                triggers = [Trigger.STALE_AUDIO if stale else Trigger.AGENT_AUDIO]
                if self._playing:  # Rule 10
                    triggers.append(Trigger.RESPONSE_AUDIO)
                if self._is_new_reply():
                    triggers.append(Trigger.NEW_REPLY_AUDIO)
                cut, self._cut_unplayed = self._cut_unplayed, None
                if cut is not None and cut == self._current and not stale:
                    self._cut_by_server(cut)  # the first frame of a reply the server had cut
                    triggers.append(Trigger.REPLY_INCOMPLETE)
                return tuple(triggers)
            case UserSpeechStarted():
                self._caller_speaking = True
                self._asked_over = None  # the caller moved on: whatever plays next is news
                return (Trigger.USER_SPEAKING,)
            case UserSpeechStopped():
                self._caller_speaking = False
                return (Trigger.USER_TURN_ENDED,)
            case ReplyInterrupted():
                self._asked_over = self._current
                return ()
            case ReplyRequested(by_watchdog=by_watchdog):
                if by_watchdog:
                    self._asked_over = self._current
                return (Trigger.RECOVERY_REQUESTED if by_watchdog else Trigger.REPLY_REQUESTED,)
            case ReplySent():
                return (Trigger.REPLY_SENT,)
            case ToolCallStarted():
                self._tool_running = True
                return (Trigger.TOOL_STARTED,)
            case ToolCallFinished():
                self._tool_running = False
                return (Trigger.TOOL_FINISHED,)
            case ResponseCreated(response_id=response_id):
                if response_id != self._asked_over:
                    self._asked_over = None  # a newer response (even a malformed one) plays next
                if response_id and response_id not in self._closed_early:
                    self._open[response_id] = None
                    self._current = response_id
                    if len(self._open) > _MAX_OPEN:  # bounded: the oldest is long gone
                        del self._open[next(iter(self._open))]
                # even a malformed one (Rule 9: it opens nothing) says the server answered
                if self._owed_since is not None and response_id not in self._closed_early:
                    return (Trigger.ACKNOWLEDGED, Trigger.PROGRESS)
                return (Trigger.PROGRESS,)
            case ResponseDone(error_code=code) if code in FATAL_CODES:
                # quota exhausted and the like: the response says so before the error event does
                self._open.pop(obs.response_id, None)
                self._detail = f"response failed with unrecoverable error {code}"
                return (Trigger.FATAL,)
            case ResponseDone(response_id=response_id, status=status, voiced=voiced):
                if response_id not in self._open:
                    if response_id:
                        self._closed_early.append(response_id)
                    return (Trigger.PROGRESS,)
                del self._open[response_id]
                if response_id == self._cut_response:
                    # the server finished a reply the caller stopped hearing: still silent
                    return (Trigger.PROGRESS,)
                if status == "incomplete" and response_id == self._current:
                    # cut mid-answer: what the server sent plays out, then silence
                    if self._playing:
                        self._cut_by_server(response_id)
                        return (Trigger.REPLY_INCOMPLETE, Trigger.PROGRESS)
                    if voiced:
                        # sent, not played yet (audio comes faster than real time): the cut
                        # counts from its first frame. Judged a lost reply now, the re-ask
                        # would race the fragment, be held back by it, and the fragment pass
                        # for the answer. Never played: still owed, the no_reply rows judge it.
                        self._cut_unplayed = response_id
                        return (Trigger.RESPONSE_DONE, Trigger.PROGRESS)
                if status in _LOST_STATUSES and self._owed_since is not None:
                    self._detail = f"response {response_id} ended {status} before any audio"
                    return (Trigger.REPLY_FAILED,)
                return (Trigger.RESPONSE_DONE, Trigger.PROGRESS)
            case ServerProgress():
                return (Trigger.PROGRESS,)
            case ServerIdleTimeout():
                return (Trigger.SERVER_PROMPTED,)
            case PlaybackFinished(interrupted=interrupted):
                self._playing = False
                if not interrupted and self._open_response is not None:
                    self._cut_response = self._open_response
                    return (Trigger.REPLY_CUT,)
                return (Trigger.PLAYBACK_FINISHED,)
            case TurnDeclined():
                return (Trigger.TURN_DECLINED,)
            case LivekitWarning(kind=kind):
                return self._warning_triggers(kind)
            case RealtimeError(recoverable=recoverable, code=code) if (
                not recoverable or code in FATAL_CODES
            ):
                self._detail = f"unrecoverable realtime error {code or '(no code)'}"
                return (Trigger.FATAL,)
            case SessionClosed(zombie=True):
                self._detail = "the session stopped working without closing (zombie)"
                return (Trigger.FATAL,)
            case SessionReconnected():
                # responses of the old connection will never finish: none is open any more, and
                # the new connection's VAD starts afresh
                self._open.clear()
                self._caller_speaking = False
                return self._reconnected(now)
            case _:
                # a recoverable RealtimeError, a normal close: neither changes what is armed (a
                # close is final, handled by `observe`)
                return ()

    def _warning_triggers(self, kind: WarningKind) -> tuple[Trigger, ...]:
        effect = WARNING_EFFECTS[kind]
        if effect is WarningEffect.FATAL:
            self._detail = f"livekit warning {kind.value}"
            self._fatal_warning = kind
            return (Trigger.FATAL,)
        if effect is WarningEffect.DROPPED:
            effect = WarningEffect.CUT if self._open_response is not None else WarningEffect.LOST
        if effect is WarningEffect.LOST and self._owed_since is None:
            return ()  # stale: no reply is owed
        if effect is WarningEffect.CUT and self._repeats_cut():
            return ()
        if effect in (WarningEffect.CUT, WarningEffect.LOST):
            self._warning = kind
            self._warning_effect = effect
            self._warning_response = self._open_response
            return (Trigger.WARNING_CUT if effect is WarningEffect.CUT else Trigger.WARNING_LOST,)
        return ()

    def _repeats_cut(self) -> bool:
        """The armed warning already cut the reply now open: a second report of the same cut.

        A drop is logged when the socket goes and again, as a discarded generation, once livekit
        has reconnected; restarting the clock at the second would postpone the verdict.
        """
        return (
            self._clocks[StallKind.POST_WARNING_SILENCE].armed
            and self._warning_effect is WarningEffect.CUT
            and self._open_response is not None
            and self._open_response == self._warning_response
        )

    def _cut_by_server(self, response_id: str) -> None:
        """`response_id` ended incomplete mid-answer: post_warning_silence follows its audio."""
        self._warning = None
        self._warning_effect = WarningEffect.CUT
        self._warning_response = response_id

    def _is_new_reply(self) -> bool:
        """Audio now would not be the rest of the reply the armed warning cut."""
        if not self._clocks[StallKind.POST_WARNING_SILENCE].armed or self._warning_effect is None:
            return False
        if self._warning_effect is not WarningEffect.CUT:
            return True
        return self._open_response is not None and self._open_response != self._warning_response

    def _reconnected(self, now: float) -> tuple[Trigger, ...]:
        window = self._reconnects
        window.record(now)
        count = window.count(now)
        if count <= self._config.storm_reconnects:
            return ()
        oldest = window.oldest(now)
        span = 0.0 if oldest is None else now - oldest
        self._detail = (
            f"{count} reconnects in {span:.1f} s "
            f"(limit {self._config.storm_reconnects} in {self._config.storm_window:g} s)"
        )
        # The storm is this incident: a new one needs storm_reconnects + 1 more reconnects.
        window.clear()
        return (Trigger.STORM,)

    def _settle_reply(self, triggers: tuple[Trigger, ...], now: float, out: list[Finding]) -> None:
        """Keep the reply owed (and the incident) in step with the triggers; report audio heard."""
        if Trigger.AGENT_AUDIO in triggers:
            if self._owed_since is not None or self._incident is not None:
                latency = None
                if self._owed_since is not None and self._owed_by_turn:
                    latency = now - self._owed_since
                out.append(Heard(at=now, latency=latency, stall=self._incident))
            self._owed_since = None
            self._incident = None
            return
        if Trigger.USER_SPEAKING in triggers or Trigger.TURN_DECLINED in triggers:
            self._owed_since = None
        elif Trigger.USER_TURN_ENDED in triggers:
            self._owe(now, by_turn=True, fresh=True, out=out)
        elif Trigger.REPLY_REQUESTED in triggers:
            self._owe(now, by_turn=True, fresh=False, out=out)
        elif (
            Trigger.TOOL_FINISHED in triggers
            or Trigger.RECOVERY_REQUESTED in triggers
            or Trigger.REPLY_SENT in triggers
            or Trigger.SERVER_PROMPTED in triggers
        ):
            self._owe(now, by_turn=False, fresh=False, out=out)

    def _owe(self, now: float, *, by_turn: bool, fresh: bool, out: list[Finding]) -> None:
        """A reply is owed from `now`, unless one already is (and this is not a new turn)."""
        if self._owed_since is not None and not fresh:
            return
        self._owed_since = now
        self._owed_by_turn = by_turn
        if by_turn:
            out.append(ReplyExpected(since=now))

    def _apply(
        self, row: Row, triggers: tuple[Trigger, ...], now: float, out: list[Finding]
    ) -> None:
        clock = self._clocks[row.key]
        if not row.disarmed_by.isdisjoint(triggers):
            clock.armed = False
            return
        for trigger in triggers:
            if trigger in row.armed_by:
                field = row.armed_by[trigger]
                if trigger in _OURS_OR_SENT and self._armed_during_recovery(clock):
                    return
                clock.armed = True
                clock.since = now
                clock.cause = trigger
                clock.timeout = None if field is None else self._timeout(field)
                if clock.timeout is None:
                    out.append(self._fire(row, now))
                return
        if clock.armed and not row.refreshed_by.isdisjoint(triggers):
            clock.since = now

    def _armed_during_recovery(self, clock: _Clock) -> bool:
        """Armed after the current incident's verdict: by a turn that ended while we recovered.

        That turn keeps its own deadline; the watchdog's request, made for the older silence,
        must not postpone it.
        """
        incident = self._incident
        return clock.armed and incident is not None and clock.since > incident.detected_at

    def _deadline(self, row: Row) -> float | None:
        clock = self._clocks[row.key]
        if not clock.armed or clock.timeout is None:
            return None
        if Condition.TOOL_RUNNING in row.suspended_while and self._tool_running:
            return None
        if Condition.CALLER_SPEAKING in row.suspended_while and self._caller_speaking:
            return None
        return clock.since + clock.timeout

    def _fire(self, row: Row, now: float) -> Stall:
        clock = self._clocks[row.key]
        # Rule 6, for a verdict several rows give (Rule 11): one incident fires one verdict
        for sibling in _SIBLINGS[row.kind]:
            self._clocks[sibling].armed = False
        kind = row.kind
        warning: WarningKind | None = None
        silence_since = self._owed_since if self._owed_since is not None else clock.since
        if row.key == "no_ack":
            cause = clock.cause.value if clock.cause else "a request"
            detail = f"the server did not acknowledge {cause} within {clock.timeout:g} s"
        elif row.key == "no_progress":
            detail = f"acknowledged, then no server event for {clock.timeout:g} s"
        elif row.key == "reply_failed":
            detail = self._detail
        elif kind is StallKind.NO_REPLY:
            cause = clock.cause.value if clock.cause else "a request"
            detail = f"no agent audio {clock.timeout:g} s after {cause}"
        elif kind is StallKind.AUDIO_GAP:
            silence_since = clock.since
            playing = self._open_response or "played out by the server"
            detail = f"reply in progress ({playing}) sent no audio for {clock.timeout:g} s"
            if row.key == "reply_cut":
                detail = (
                    f"playback ended with the response open, no progress for {clock.timeout:g} s"
                )
        elif kind is StallKind.POST_WARNING_SILENCE:
            silence_since = clock.since
            warning = self._warning
            if clock.cause is Trigger.REPLY_INCOMPLETE:
                detail = f"response incomplete mid-answer, then {clock.timeout:g} s without audio"
            else:
                label = warning.value if warning else "livekit"
                detail = f"{label} warning, then {clock.timeout:g} s without agent audio"
        else:
            detail = self._detail
            warning = self._fatal_warning if kind is StallKind.DEAD_SESSION else None
            if kind is StallKind.DEAD_SESSION:
                self._end()
            if self._owed_since is None:
                silence_since = now
        stall = Stall(
            kind=kind, silence_since=silence_since, detected_at=now, detail=detail, warning=warning
        )
        if self._incident is None:
            self._incident = stall
        return stall

    def _end(self) -> None:
        self._ended = True
        for clock in self._clocks.values():
            clock.armed = False
