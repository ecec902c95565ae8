"""One response on the wire: its plan of output items, the paced audio, and every way it ends.

A response runs as a task beside the connection's receive loop (so `response.cancel` and a
barge-in can end it mid-stream). Its fault's hook (`faults.TABLE`) is asked at each point of
its life: may it replace the reply, what items to say, before the first audio, before each
delta. Everything is sent through the connection, which renames for the legacy path.

Rules:
1. A reply item is `response.output_item.added`, `conversation.item.added`,
   `response.content_part.added`, transcript and audio deltas in turn, then
   `response.output_audio.done`, `response.output_audio_transcript.done`,
   `response.content_part.done`, `conversation.item.done`, `response.output_item.done`.
2. Audio deltas are `delta_seconds` long and sent at `pace` times real time (faster than they
   play by default, as the real API produces audio).
3. However a response ends (completed, cancelled, incomplete, failed), an item still open gets
   its `*.done` events first (status `incomplete`), then `response.done`; `rate_limits.updated`
   follows every `response.done`.
4. A turn is answered when the answer item of a response in it completes in full.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .protocol import AUDIO_FORMAT, SAMPLE_RATE, Json
from .schedule import TOOL_NAME, Fault
from .tones import amplitude_for, tone

if TYPE_CHECKING:
    from .connection import Connection
    from .faults import Hook

__all__ = ["ReplyItem", "Response", "cancel", "finish", "run", "send_tool_call"]

# tokens per second of audio, for the usage block (the real API bills about 10 per second)
_AUDIO_TOKENS_PER_ITEM: Final = 10


@dataclass(frozen=True, slots=True)
class ReplyItem:
    """One output item of a reply: `hz` None is an empty message item (no content at all)."""

    name: str  # "answer", "preamble", "empty": also the transcript's first word
    hz: float | None
    seconds: float


@dataclass(slots=True)
class Response:
    id: str
    turn: int
    fault: Fault | None
    hook: Hook
    metadata: dict[str, str] | None
    client_event_id: str | None
    sequence: int = 0  # response number in the session, marked in the tone's amplitude
    output: list[Json] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    finished: bool = False  # response.done was sent (or never will be, the socket went)
    part: Json | None = None  # where the content part streaming now is (ids and indexes)
    said: str = ""  # the transcript of that part sent so far
    audio: bool = True  # output_modalities include audio; else the reply is text only


def response_object(conn: Connection, r: Response, status: str, details: Json | None) -> Json:
    """The `response` object of response.created / response.done."""
    obj: Json = {
        "object": "realtime.response",
        "id": r.id,
        "status": status,
        "status_details": details,
        "output": [dict(item) for item in r.output],
        "conversation_id": conn.conversation_id,
        "max_output_tokens": "inf",
        "metadata": r.metadata,
        "usage": None,
    }
    if status != "in_progress":
        out_tokens = _AUDIO_TOKENS_PER_ITEM * sum(1 for item in r.output if item.get("content"))
        audio_tokens = out_tokens if r.audio else 0
        obj["usage"] = {
            "total_tokens": 20 + out_tokens,
            "input_tokens": 20,
            "output_tokens": out_tokens,
            "input_token_details": {"text_tokens": 10, "audio_tokens": 10, "cached_tokens": 0},
            "output_token_details": {
                "text_tokens": out_tokens - audio_tokens,
                "audio_tokens": audio_tokens,
            },
        }
    voice = conn.settings.voice
    modalities = ["audio"] if r.audio else ["text"]
    if conn.beta:
        obj.update(
            modalities=["audio", "text"] if r.audio else ["text"],
            voice=voice,
            output_audio_format="pcm16",
        )
    else:
        obj.update(
            output_modalities=modalities,
            audio={"output": {"format": dict(AUDIO_FORMAT), "voice": voice}},
        )
    return obj


async def run(conn: Connection, r: Response) -> None:
    """Stream the response's reply as its fault's hook shapes it, then end it."""
    hook = r.hook
    if await hook.replace_reply(conn, r):
        return
    server = conn.server
    plan = hook.plan(r.fault, server.reply_seconds, server.delta_seconds)
    loop = asyncio.get_running_loop()
    start: float | None = None  # loop time of the first delta, for pacing
    sent = 0  # audio deltas sent in this response
    amplitude = amplitude_for(r.sequence)
    for output_index, step in enumerate(plan):
        await hook.on_item(conn, r, output_index)
        item = await _add_item(conn, r, output_index)
        if step.hz is None:
            await _close_item(conn, r, item, output_index, "completed")
            continue
        part_type = "audio" if r.audio else "text"
        r.part = {
            "response_id": r.id,
            "item_id": item["id"],
            "output_index": output_index,
            "content_index": 0,
        }
        r.said = ""
        await conn.send(
            {
                "type": "response.content_part.added",
                **r.part,
                "part": {"type": part_type, "transcript": ""}
                if r.audio
                else {"type": "text", "text": ""},
            }
        )
        transcript = f"{step.name} t{r.turn}"
        words = transcript.split(" ")
        samples = round(server.delta_seconds * SAMPLE_RATE)
        count = max(1, round(step.seconds / server.delta_seconds))
        for i in range(count):
            if await hook.at_delta(conn, r, sent):
                return
            if start is None:
                await hook.before_first_audio(conn, r)
                start = loop.time()
            else:
                due = start + sent * server.delta_seconds / server.pace
                await asyncio.sleep(max(0.0, due - loop.time()))
            if i < len(words):
                await _say(conn, r, words[i] if i == 0 else " " + words[i])
            if r.audio:
                pcm = tone(step.hz, start=i * samples, count=samples, amplitude=amplitude)
                delta = base64.b64encode(pcm).decode("ascii")
                await conn.send({"type": "response.output_audio.delta", **r.part, "delta": delta})
            sent += 1
        for word in words[count:]:  # a reply shorter than its transcript still says it all
            await _say(conn, r, " " + word)
        if await hook.at_delta(conn, r, sent):
            return
        await close_part(conn, r, "completed")
    # the last plan step is always the answer, so the whole answer has now been sent
    s = conn.session
    if s.turn_open and s.turn == r.turn:
        s.turn_open = False
        s.record.answered += 1
    await finish(conn, r, "completed")


async def _say(conn: Connection, r: Response, text: str) -> None:
    assert r.part is not None
    r.said += text
    kind = "response.output_audio_transcript.delta" if r.audio else "response.output_text.delta"
    await conn.send({"type": kind, **r.part, "delta": text})


async def _add_item(conn: Connection, r: Response, output_index: int) -> Json:
    item: Json = {
        "id": conn.server.ids.item(),
        "object": "realtime.item",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    r.output.append(item)
    previous = conn.items[-1] if conn.items else None
    conn.items.append(item["id"])
    where = {"response_id": r.id, "output_index": output_index}
    await conn.send({"type": "response.output_item.added", **where, "item": dict(item)})
    await conn.send(
        {"type": "conversation.item.added", "previous_item_id": previous, "item": dict(item)}
    )
    conn.session.record.items += 1
    return item


async def _close_item(
    conn: Connection, r: Response, item: Json, output_index: int, status: str
) -> None:
    item["status"] = status
    await conn.send_item_done(item)
    where = {"response_id": r.id, "output_index": output_index}
    await conn.send({"type": "response.output_item.done", **where, "item": dict(item)})


async def close_part(conn: Connection, r: Response, status: str) -> None:
    """The `*.done` events of the content part and item streaming now, if any."""
    part, r.part = r.part, None
    if part is None:
        return
    said = r.said
    if r.audio:
        await conn.send({"type": "response.output_audio.done", **part})
        await conn.send(
            {"type": "response.output_audio_transcript.done", **part, "transcript": said}
        )
        done_part: Json = {"type": "audio", "transcript": said}
        content: Json = {"type": "output_audio", "transcript": said}
    else:
        await conn.send({"type": "response.output_text.done", **part, "text": said})
        done_part = {"type": "text", "text": said}
        content = {"type": "output_text", "text": said}
    await conn.send({"type": "response.content_part.done", **part, "part": done_part})
    item = r.output[part["output_index"]]
    item["content"] = [content]
    await _close_item(conn, r, item, part["output_index"], status)


async def finish(conn: Connection, r: Response, status: str, details: Json | None = None) -> None:
    """End `r` with `status`: an item still open gets its done events, then response.done."""
    if r.finished:
        return
    r.finished = True
    if conn.active is r:
        conn.active = None
    await close_part(conn, r, "completed" if status == "completed" else "incomplete")
    for item in r.output:
        if item["status"] == "in_progress":
            item["status"] = "incomplete"
    await conn.send(
        {"type": "response.done", "response": response_object(conn, r, status, details)}
    )
    await conn.send_rate_limits()


async def cancel(conn: Connection, r: Response, reason: str) -> None:
    """Stop `r`'s task and end it as cancelled (`turn_detected` or `client_cancelled`)."""
    if conn.active is r:
        conn.active = None
    task = r.task
    if task is not None and not task.done() and task is not asyncio.current_task():
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            # the response task was cancelled, not this one: keep going unless we are too
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
    if r.finished:
        return
    conn.session.record.cancelled += 1
    await finish(conn, r, "cancelled", {"type": "cancelled", "reason": reason})


async def cut(conn: Connection, r: Response, reason: str) -> None:
    """End `r` as `incomplete` mid-answer (`max_output_tokens`, `content_filter`)."""
    await finish(conn, r, "incomplete", {"type": "incomplete", "reason": reason})


async def send_tool_call(conn: Connection, r: Response, seconds: float) -> None:
    """One function_call item calling TOOL_NAME with `{"seconds": seconds}`."""
    item_id = conn.server.ids.item()
    arguments = json.dumps({"seconds": seconds})
    item: Json = {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": "in_progress",
        "call_id": "call_" + item_id,
        "name": TOOL_NAME,
        "arguments": "",
    }
    r.output.append(item)
    previous = conn.items[-1] if conn.items else None
    conn.items.append(item_id)
    where = {"response_id": r.id, "output_index": 0}
    await conn.send({"type": "response.output_item.added", **where, "item": dict(item)})
    await conn.send(
        {"type": "conversation.item.added", "previous_item_id": previous, "item": dict(item)}
    )
    call = {**where, "item_id": item_id, "call_id": item["call_id"]}
    await conn.send({"type": "response.function_call_arguments.delta", **call, "delta": arguments})
    done: dict[str, Any] = {**call, "arguments": arguments}
    if not conn.beta:
        done["name"] = TOOL_NAME  # the GA event names the function; the beta one does not
    await conn.send({"type": "response.function_call_arguments.done", **done})
    item.update(arguments=arguments)
    conn.session.record.items += 1
    await _close_item(conn, r, item, 0, "completed")
