"""`conversation.item.create`'s item, validated; the echo is what the real API would add.

Pure. An item the real API would refuse raises `Invalid` naming the field, so the server never
echoes an item its own clients (and the `openai` SDK's models) would reject.

Rules:
1. `type` is `message`, `function_call` or `function_call_output`; each has its required
   fields (`role` and `content`; `name` and `arguments`; `call_id` and `output`).
2. A message's content parts have the types its role allows (user: input text, audio or image;
   assistant: output text or audio, `text`/`audio` on the legacy path; system: input text).
3. Unknown fields are refused with `unknown_parameter`.
4. The echo has `object: "realtime.item"` and `status: "completed"`.
"""

from __future__ import annotations

from typing import Final

from .protocol import Invalid, Json, invalid_type, invalid_value, require, unknown_parameter

__all__ = ["validate_item"]

_ITEM_TYPES: Final = ("message", "function_call", "function_call_output")
_ROLES: Final = ("user", "assistant", "system")
_FIELDS: Final = {
    "message": frozenset({"id", "type", "object", "status", "role", "content"}),
    "function_call": frozenset({"id", "type", "object", "status", "call_id", "name", "arguments"}),
    "function_call_output": frozenset({"id", "type", "object", "status", "call_id", "output"}),
}
_PART_TYPES: Final = {
    ("user", False): ("input_text", "input_audio", "input_image"),
    ("assistant", False): ("output_text", "output_audio"),
    ("system", False): ("input_text",),
    ("user", True): ("input_text", "input_audio", "item_reference"),
    ("assistant", True): ("text", "audio"),
    ("system", True): ("input_text",),
}
_PART_FIELDS: Final = frozenset(
    {"type", "text", "audio", "transcript", "image_url", "detail", "id"}
)


def validate_item(item: Json, *, beta: bool) -> Json:
    """The item as the server echoes it; raises `Invalid` naming the first bad field."""
    p = "item."
    kind = require(item, "type", str, prefix=p)
    if kind not in _ITEM_TYPES:
        raise invalid_value("item.type", kind, _ITEM_TYPES)
    for key in item:
        if key not in _FIELDS[kind]:
            raise unknown_parameter(p + key)
    require(item, "id", str, optional=True, prefix=p)
    echoed: Json = {**item, "object": "realtime.item", "status": "completed"}
    if kind == "function_call":
        require(item, "name", str, prefix=p)
        require(item, "arguments", str, prefix=p)
        require(item, "call_id", str, optional=True, prefix=p)
        return echoed
    if kind == "function_call_output":
        require(item, "call_id", str, prefix=p)
        require(item, "output", str, prefix=p)
        return echoed
    role = require(item, "role", str, prefix=p)
    if role not in _ROLES:
        raise invalid_value("item.role", role, _ROLES)
    content = require(item, "content", list, prefix=p)
    allowed = _PART_TYPES[(role, beta)]
    parts = []
    for i, part in enumerate(content):
        where = f"item.content[{i}]"
        if not isinstance(part, dict):
            raise invalid_type(where, "an object")
        for key in part:
            if key not in _PART_FIELDS:
                raise unknown_parameter(f"{where}.{key}")
        part_type = require(part, "type", str, prefix=where + ".")
        if part_type not in allowed:
            raise invalid_value(where + ".type", part_type, allowed)
        for key in ("text", "audio", "transcript", "image_url"):
            if part.get(key) is not None and not isinstance(part[key], str):
                raise invalid_type(f"{where}.{key}", "a string")
        if part_type.endswith("text") and part.get("text") is None:
            raise Invalid(
                f"Missing required parameter: '{where}.text'.",
                code="missing_required_parameter",
                param=f"{where}.text",
            )
        parts.append(dict(part))
    echoed["content"] = parts
    return echoed
