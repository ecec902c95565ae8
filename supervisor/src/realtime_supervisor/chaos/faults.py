"""What each chaos fault does on the wire: one small hook object per kind, in `TABLE`.

The schedule (`schedule.py`) says which fault a turn's first response meets; the fault's hook
says what happens. A hook is asked at fixed points of a connection's and a response's life and
does nothing unless it overrides that point (the detector's `TABLE` does the same for verdicts):

| point | when | a True return means |
|---|---|---|
| `on_connect` | a sticky fault's session opens a new websocket | the socket was torn down |
| `before_response` | a `response.create` (or a VAD turn) asks for a response | no response at all |
| `replace_reply` | `response.created` was sent | the hook ended the response itself |
| `plan` | the reply's output items are chosen | (returns the items) |
| `on_item` | an output item starts | |
| `before_first_audio` | the first audio delta is due | |
| `at_delta` | before each audio delta, and once after an item's last | stop streaming |

The catalogue (a production failure each fault stands for, and what livekit meets):
- `multi_message` / `multi_message_empty`: a preamble (or an empty item) then the answer, two
  message items in one response, as gpt-realtime-2's preambles are.
- `stall_mid=N`: after N deltas the audio stops; the socket and the response stay open, pongs,
  cancels and new requests are still answered.
- `drop_mid=N`: after N deltas the server closes the socket with a close frame (1011).
- `dead_mid=N`: after N deltas the connection goes dead without a close frame: nothing more is
  sent, pings and pongs go unanswered, requests are ignored, the socket stays open.
- `tcp_drop=N`: after N deltas the TCP connection is aborted: no close frame, no response.done.
- `no_response`: the request is never answered. `error_event`: an `error` (server_error, null
  code) instead of a response. `failed_response`: `response.done` failed with server_error.
- `fatal_error` (sticky): every response fails with `insufficient_quota`, the socket stays open.
- `fatal_close` (sticky): as the real API ends an account out of quota: an `error`
  (`insufficient_quota`) and the close in the same millisecond, and every reconnect is accepted
  then torn down the same way.
- `flap` (sticky): the socket closes, and every new connection of the session closes at once.
- `session_limit=N`: after N deltas, the 60-minute session limit: `error` session_expired and
  a close 1001 "Your session hit the maximum duration of 60 minutes." mid-reply.
- `incomplete=N` / `content_filter=N`: after N deltas the answer stops mid-sentence and the
  response ends `incomplete` (`max_output_tokens` / `content_filter`), its `*.done` events sent.
- `late_resume=S`: after 3 deltas the connection freezes both ways for S seconds (a network
  hiccup), then the original reply resumes; what the client sent meanwhile is handled after, so
  a re-issue meets the original still open or cancelled, never beside it.
- Non-faults: `slow_first_audio=S` (first audio S seconds late), `long_answer=S` (an S-second
  answer), `tool_call=S` (a function call to TOOL_NAME that takes S seconds).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, ClassVar, Final

from aiohttp import WSCloseCode

from . import response as _response
from .protocol import SESSION_LIMIT_MESSAGE, server_error_message
from .response import ReplyItem, Response
from .schedule import (
    DEFAULTS,
    FAULT_KINDS,
    KINDS,
    LATE_RESUME_DELTAS,
    NON_FAULTS,
    RECOVERABLE_KINDS,
    STICKY_KINDS,
    TOOL_NAME,
    Fault,
    Schedule,
    parse_schedule,
)
from .tones import ANSWER_HZ, PREAMBLE_HZ

if TYPE_CHECKING:
    from .connection import Connection

__all__ = [
    "DEFAULTS",
    "FAULT_KINDS",
    "KINDS",
    "NON_FAULTS",
    "RECOVERABLE_KINDS",
    "STICKY_KINDS",
    "TABLE",
    "TOOL_NAME",
    "Fault",
    "Hook",
    "Schedule",
    "hook_for",
    "parse_schedule",
]


class Hook:
    """A clean turn: every point is a no-op. Fault hooks override the points they act at."""

    kind: ClassVar[str] = "clean"

    async def on_connect(self, conn: Connection) -> bool:
        return False

    async def before_response(self, conn: Connection, fault: Fault, event_id: str | None) -> bool:
        return False

    async def replace_reply(self, conn: Connection, r: Response) -> bool:
        return False

    def plan(
        self, fault: Fault | None, reply_seconds: float, delta_seconds: float
    ) -> list[ReplyItem]:
        return [ReplyItem("answer", ANSWER_HZ, reply_seconds)]

    async def on_item(self, conn: Connection, r: Response, index: int) -> None:
        return None

    async def before_first_audio(self, conn: Connection, r: Response) -> None:
        return None

    async def at_delta(self, conn: Connection, r: Response, sent: int) -> bool:
        return False


class _MidReply(Hook):
    """A fault that bites after `fault.deltas` audio deltas of the reply."""

    async def at_delta(self, conn: Connection, r: Response, sent: int) -> bool:
        if r.fault is None or sent != r.fault.deltas:
            return False
        conn.inject(r.fault, r)
        await self.bite(conn, r)
        return True

    async def bite(self, conn: Connection, r: Response) -> None:
        raise NotImplementedError


async def _forever() -> None:
    await asyncio.Event().wait()  # only response.cancel, or the socket closing, ends this


class MultiMessage(Hook):
    kind = "multi_message"

    def plan(
        self, fault: Fault | None, reply_seconds: float, delta_seconds: float
    ) -> list[ReplyItem]:
        preamble = ReplyItem("preamble", PREAMBLE_HZ, max(delta_seconds, reply_seconds / 2))
        return [preamble, *super().plan(fault, reply_seconds, delta_seconds)]

    async def on_item(self, conn: Connection, r: Response, index: int) -> None:
        if index == 1 and r.fault is not None:
            conn.inject(r.fault, r)  # the response turns multi-message here


class MultiMessageEmpty(MultiMessage):
    kind = "multi_message_empty"

    def plan(
        self, fault: Fault | None, reply_seconds: float, delta_seconds: float
    ) -> list[ReplyItem]:
        return [ReplyItem("empty", None, 0.0), ReplyItem("answer", ANSWER_HZ, reply_seconds)]


class StallMid(_MidReply):
    kind = "stall_mid"

    async def bite(self, conn: Connection, r: Response) -> None:
        await _forever()


class DropMid(_MidReply):
    kind = "drop_mid"

    async def bite(self, conn: Connection, r: Response) -> None:
        r.finished = True  # the socket goes; no response.done will ever follow
        await conn.close(WSCloseCode.INTERNAL_ERROR, "chaos: drop")


class DeadMid(_MidReply):
    kind = "dead_mid"

    async def bite(self, conn: Connection, r: Response) -> None:
        conn.go_dead()  # nothing more is sent or answered; the socket stays open
        await _forever()


class TcpDrop(_MidReply):
    kind = "tcp_drop"

    async def bite(self, conn: Connection, r: Response) -> None:
        r.finished = True
        conn.abort()  # no close frame: the TCP connection is simply gone


class SessionLimit(_MidReply):
    kind = "session_limit"

    async def bite(self, conn: Connection, r: Response) -> None:
        r.finished = True  # the close ends it; the real API sends no response.done
        await conn.send_error(SESSION_LIMIT_MESSAGE, code="session_expired")
        await conn.close(WSCloseCode.GOING_AWAY, SESSION_LIMIT_MESSAGE)


class Incomplete(_MidReply):
    kind = "incomplete"
    reason: ClassVar[str] = "max_output_tokens"

    async def bite(self, conn: Connection, r: Response) -> None:
        await _response.cut(conn, r, self.reason)


class ContentFilter(Incomplete):
    kind = "content_filter"
    reason = "content_filter"


class LateResume(Hook):
    kind = "late_resume"

    async def at_delta(self, conn: Connection, r: Response, sent: int) -> bool:
        if r.fault is not None and sent == LATE_RESUME_DELTAS:
            conn.inject(r.fault, r)
            await conn.freeze(r.fault.seconds)
        return False


class NoResponse(Hook):
    kind = "no_response"

    async def before_response(self, conn: Connection, fault: Fault, event_id: str | None) -> bool:
        conn.inject(fault, None)
        return True


class ErrorEvent(Hook):
    kind = "error_event"

    async def before_response(self, conn: Connection, fault: Fault, event_id: str | None) -> bool:
        conn.inject(fault, None)
        await conn.send_error(
            server_error_message(conn.session_id), type_="server_error", event_id=event_id
        )
        return True


class FailedResponse(Hook):
    kind = "failed_response"

    async def replace_reply(self, conn: Connection, r: Response) -> bool:
        assert r.fault is not None
        conn.inject(r.fault, r)
        error = {"type": "server_error", "code": None, "message": "The server had an error."}
        await _response.finish(conn, r, "failed", {"type": "failed", "error": error})
        return True


class FatalError(Hook):
    kind = "fatal_error"

    async def replace_reply(self, conn: Connection, r: Response) -> bool:
        assert r.fault is not None
        conn.session.sticky = r.fault
        conn.inject(r.fault, r)
        error = {
            "type": "insufficient_quota",
            "code": "insufficient_quota",
            "message": conn.quota_message,
        }
        await _response.finish(conn, r, "failed", {"type": "failed", "error": error})
        await conn.send_error(
            conn.quota_message,
            type_="insufficient_quota",
            code="insufficient_quota",
            event_id=r.client_event_id,
        )
        return True


class FatalClose(Hook):
    kind = "fatal_close"

    async def on_connect(self, conn: Connection) -> bool:
        await conn.send_session_created()  # accepted, then torn down as it opens
        await conn.fatal_teardown(event_id=None)
        return True

    async def before_response(self, conn: Connection, fault: Fault, event_id: str | None) -> bool:
        conn.session.sticky = fault
        conn.inject(fault, None)
        await conn.fatal_teardown(event_id=event_id)
        return True


class Flap(Hook):
    kind = "flap"

    async def on_connect(self, conn: Connection) -> bool:
        await conn.close(WSCloseCode.GOING_AWAY, "chaos: flap")
        return True

    async def before_response(self, conn: Connection, fault: Fault, event_id: str | None) -> bool:
        conn.session.sticky = fault
        conn.inject(fault, None)
        await conn.close(WSCloseCode.GOING_AWAY, "chaos: flap")
        return True


class SlowFirstAudio(Hook):
    kind = "slow_first_audio"

    async def before_first_audio(self, conn: Connection, r: Response) -> None:
        assert r.fault is not None
        conn.inject(r.fault, r)
        await asyncio.sleep(r.fault.seconds)


class LongAnswer(Hook):
    kind = "long_answer"

    def plan(
        self, fault: Fault | None, reply_seconds: float, delta_seconds: float
    ) -> list[ReplyItem]:
        seconds = fault.seconds if fault is not None else reply_seconds
        return [ReplyItem("answer", ANSWER_HZ, seconds)]

    async def before_first_audio(self, conn: Connection, r: Response) -> None:
        assert r.fault is not None
        conn.inject(r.fault, r)


class ToolCall(Hook):
    """Not a fault: the turn stays open for the reply livekit asks for with the output."""

    kind = "tool_call"

    async def replace_reply(self, conn: Connection, r: Response) -> bool:
        assert r.fault is not None
        conn.inject(r.fault, r)
        await _response.send_tool_call(conn, r, r.fault.seconds)
        await _response.finish(conn, r, "completed")
        return True


CLEAN: Final = Hook()

TABLE: Final[dict[str, Hook]] = {
    hook.kind: hook
    for hook in (
        MultiMessage(),
        MultiMessageEmpty(),
        StallMid(),
        DropMid(),
        NoResponse(),
        FailedResponse(),
        ErrorEvent(),
        FatalError(),
        Flap(),
        LateResume(),
        DeadMid(),
        TcpDrop(),
        FatalClose(),
        SessionLimit(),
        Incomplete(),
        ContentFilter(),
        SlowFirstAudio(),
        LongAnswer(),
        ToolCall(),
    )
}
# every kind a schedule can name has its hook, and no hook is unreachable
assert set(TABLE) == set(KINDS), set(TABLE) ^ set(KINDS)


def hook_for(fault: Fault | None) -> Hook:
    """The hook of `fault` (the clean hook for None)."""
    return CLEAN if fault is None else TABLE[fault.kind]
