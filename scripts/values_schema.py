"""values.schema.json generated from the chart's values.yaml, its one annotated source.

Each key's schema is inferred from its default (a mapping becomes a closed object of its keys, a
string a string, 2 an integer, 0.5 a number, true a boolean, a list an array of its first item's
type) and merged with the `@schema {json}` annotation written in the comment lines right above the
key or at the end of its line. The comment lines above a key (annotations aside) become its
description. A key whose default is null needs an annotation giving its type.

Shared shapes (a Kubernetes quantity, a duration, a port, a probe...) live in DEFINITIONS below and
are used as `{"$ref": "#/definitions/NAME"}`. scripts/sync-chart-files.py writes the result;
tests/test_helm.py checks the committed file equals it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E)?$"
_DURATION = r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"
_SECURITY_CONTEXT: dict[str, Any] = {
    "type": "object",
    "description": "A container securityContext: non-root, unprivileged, no added capabilities.",
    "additionalProperties": False,
    "properties": {
        "runAsNonRoot": {"const": True},
        "runAsUser": {"type": "integer", "minimum": 1},
        "runAsGroup": {"type": "integer", "minimum": 1},
        "readOnlyRootFilesystem": {"type": "boolean"},
        "allowPrivilegeEscalation": {"const": False},
        "privileged": {"const": False},
        "capabilities": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "drop": {"type": "array", "items": {"type": "string"}},
                "add": {"type": "array", "maxItems": 0},
            },
        },
        "seccompProfile": {"$ref": "#/definitions/seccompProfile"},
    },
}

DEFINITIONS: dict[str, Any] = {
    "seconds": {
        "type": ["number", "string", "null"],
        "pattern": r"^[0-9]+(\.[0-9]+)?$",
        "exclusiveMinimum": 0,
    },
    "count": {"type": ["integer", "null"], "minimum": 1},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "quantity": {
        "description": 'A Kubernetes quantity: 2, 0.5, "500m", "2Gi".',
        "anyOf": [
            {"type": "string", "pattern": _QUANTITY},
            {"type": "number", "minimum": 0},
        ],
    },
    "optionalQuantity": {
        "anyOf": [{"const": ""}, {"$ref": "#/definitions/quantity"}],
    },
    "duration": {"type": "string", "pattern": _DURATION},
    "cidr": {"type": "string", "pattern": r"^[0-9a-fA-F:.]+/[0-9]{1,3}$"},
    "networkPort": {
        "type": "object",
        "additionalProperties": False,
        "required": ["port"],
        "properties": {
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "endPort": {"type": "integer", "minimum": 1, "maximum": 65535},
            "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
        },
    },
    "probe": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "periodSeconds": {"type": "integer", "minimum": 1},
            "timeoutSeconds": {"type": "integer", "minimum": 1},
            "failureThreshold": {"type": "integer", "minimum": 1},
            "initialDelaySeconds": {"type": "integer", "minimum": 0},
            "successThreshold": {"type": "integer", "minimum": 1},
        },
    },
    "seccompProfile": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "type": {"enum": ["RuntimeDefault", "Localhost"]},
            "localhostProfile": {"type": "string"},
        },
    },
    "securityContext": _SECURITY_CONTEXT,
    "container": {
        "type": "object",
        "description": "A Kubernetes Container; its securityContext is checked, the rest passes.",
        "required": ["name"],
        "additionalProperties": True,
        "properties": {"securityContext": {"$ref": "#/definitions/securityContext"}},
    },
    "severity": {
        "type": ["object", "null"],
        "additionalProperties": False,
        "required": ["for"],
        "properties": {
            "threshold": {"type": "number", "minimum": 0},
            "for": {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"},
        },
    },
    "alert": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "enabled": {"type": "boolean"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "warning": {"$ref": "#/definitions/severity"},
            "critical": {"$ref": "#/definitions/severity"},
        },
    },
}

_KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?P<rest>.*)$")
_ANNOTATION = re.compile(r"@schema\s+(?P<json>\{.*\})\s*$")


class SchemaSourceError(ValueError):
    """values.yaml cannot be turned into a schema (names the key and the line)."""


def _annotations(text: str) -> dict[tuple[str, ...], tuple[dict[str, Any], str]]:
    """{key path: (annotation, description)} read from the comments of values.yaml."""
    out: dict[tuple[str, ...], tuple[dict[str, Any], str]] = {}
    stack: list[tuple[int, str]] = []
    pending: dict[str, Any] = {}
    words: list[str] = []
    item_indent = -1  # inside a list item's block: its keys belong to the item, not the values
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped and not stripped.startswith("#") and item_indent >= 0:
            if indent > item_indent or (indent == item_indent and stripped.startswith("-")):
                continue
            item_indent = -1
        if stripped.startswith("-"):
            item_indent = indent
            continue
        if stripped.startswith("#"):
            match = _ANNOTATION.search(stripped)
            if match:
                pending.update(_load(match["json"], number))
            elif not stripped.startswith("# --"):
                words.append(stripped.lstrip("#").strip())
            continue
        if not stripped:
            words.clear()
            pending = {}
            continue
        key = _KEY.match(line)
        if key is None:
            continue  # a flow continuation: described by its key
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*(k for _, k in stack), key["key"])
        stack.append((indent, key["key"]))
        rest = key["rest"]
        if "#" in rest:
            comment = rest.split("#", 1)[1]
            match = _ANNOTATION.search(comment)
            if match:
                pending.update(_load(match["json"], number))
                comment = comment[: match.start()]
            words.append(comment.strip().rstrip(","))
        description = " ".join(w for w in words if w).strip()
        out[path] = (pending, description)
        pending, words = {}, []
    return out


def _load(text: str, number: int) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaSourceError(f"values.yaml line {number}: @schema is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SchemaSourceError(f"values.yaml line {number}: @schema must be a JSON object")
    return value


def _infer(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        schema: dict[str, Any] = {"type": "array"}
        if value and not isinstance(value[0], (dict, list)):
            schema["items"] = _infer(value[0])
        return schema
    if isinstance(value, dict):
        return {"type": "object"}
    return {}


def _node(
    value: Any,
    path: tuple[str, ...],
    notes: dict[tuple[str, ...], tuple[dict[str, Any], str]],
) -> dict[str, Any]:
    annotation, description = notes.get(path, ({}, ""))
    if "$ref" in annotation:
        return {"$ref": annotation["$ref"]}
    schema = _infer(value)
    if value is None and "type" not in annotation and "enum" not in annotation:
        where = ".".join(path)
        raise SchemaSourceError(f"values.yaml {where}: a null default needs an @schema type")
    if isinstance(value, dict) and value:
        given = annotation.get("properties", {})
        properties = {
            k: given[k] if k in given else _node(v, (*path, k), notes) for k, v in value.items()
        }
        properties.update(given)
        schema["properties"] = properties
        schema["additionalProperties"] = False
    elif isinstance(value, dict) and "properties" in annotation:
        schema["additionalProperties"] = False
    schema.update({k: v for k, v in annotation.items() if k != "properties"})
    if isinstance(value, dict) and "properties" in annotation and not value:
        schema["properties"] = annotation["properties"]
    if "enum" in annotation or "const" in annotation:
        schema.pop("type", None)
    if description:
        schema["description"] = description
    return schema


def generate(values_text: str) -> dict[str, Any]:
    """The values schema (draft-07) for the text of values.yaml."""
    values = yaml.safe_load(values_text)
    notes = _annotations(values_text)
    known = set()

    def paths(node: Any, path: tuple[str, ...]) -> None:
        known.add(path)
        if isinstance(node, dict):
            for key, child in node.items():
                paths(child, (*path, key))

    paths(values, ())
    stray = [".".join(p) for p in notes if p not in known]
    if stray:
        raise SchemaSourceError(f"values.yaml: annotated keys not in the values: {stray}")
    root = _node(values, (), notes)
    root.pop("description", None)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "realtime-supervisor-agent values",
        "description": "Generated from values.yaml by scripts/sync-chart-files.py; do not edit.",
        **root,
        "definitions": DEFINITIONS,
    }


def render(values_text: str) -> str:
    return json.dumps(generate(values_text), indent=2) + "\n"
