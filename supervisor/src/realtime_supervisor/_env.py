"""One environment reader for every settings class: the watchdog's, the service's, the agent's.

Rules:
1. The environment is a mapping a test can replace (os.environ by default); an empty value counts
   as unset (deployment templates often render an unset value as "").
2. Every problem is collected, never just the first: one `ConfigProblems` (a `ConfigError`) whose
   `.field` is the first bad variable and whose message has one "VARIABLE: what is accepted" line
   per problem. A deploy that fails should fail once, with the whole list.
3. A field that failed to parse keeps its default, so the rest is still checked; the dataclass's
   own problems with that field are dropped (they would only repeat the parse error).
4. Under a prefix we own (`REALTIME_SUPERVISOR_`), an unknown variable is refused: a typo would
   otherwise silently keep a default. Kubernetes' service-link variables are not ours and are
   never mistaken for ours (`is_service_link`): a Service named `realtime-supervisor-...`
   injects `REALTIME_SUPERVISOR_..._SERVICE_HOST` and friends into every pod of its namespace.

No pydantic-settings: its errors stop at the model, with field names; ours must name variables,
collect across three settings classes and refuse unknown names, which is most of this module.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from realtime_supervisor.errors import ConfigError

__all__ = [
    "ConfigProblems",
    "Problem",
    "Refused",
    "Variable",
    "construct",
    "is_service_link",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_str",
    "parse_upper",
    "read",
    "source_of",
    "unknown",
]

Problem = tuple[str, str]  # (field or variable, what is accepted)
_T = TypeVar("_T")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigProblems(ConfigError):
    """Every problem found in one or more settings; `.field` is the first one's name."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        first, message = problems[0]
        rest = "".join(f"\n{name}: {text}" for name, text in problems[1:])
        super().__init__(first, message + rest)
        self.problems: tuple[Problem, ...] = tuple(problems)


class Refused(ValueError):
    """A parser's complete message: `read` shows it as is, without echoing the value."""


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: the field it sets and how its text becomes the field's type."""

    name: str
    field: str
    parse: Callable[[str], object]


# -- parsers (raise ValueError saying what is accepted) ------------------------------------------


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE)}")


def parse_float(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value):  # "1e999" parses as inf: say so here, not as a range error
        raise ValueError("expected a finite number")
    return value


def parse_int(text: str) -> int:
    # int() refuses more than 4,300 digits itself (ValueError); ranges are the dataclass's job.
    return int(text.strip())


def parse_str(text: str) -> str:
    return text.strip()


def parse_upper(text: str) -> str:
    return text.strip().upper()


# -- reading -------------------------------------------------------------------------------------


def source_of(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def read(
    source: Mapping[str, str], variables: Iterable[Variable]
) -> tuple[dict[str, Any], list[Problem]]:
    """Parse each set variable into its field; return the kwargs and the problems (by variable)."""
    kwargs: dict[str, Any] = {}
    problems: list[Problem] = []
    for var in variables:
        raw = source.get(var.name)
        if raw is None or not raw.strip():
            continue
        try:
            kwargs[var.field] = var.parse(raw)
        except Refused as exc:
            problems.append((var.name, str(exc)))
        except (ValueError, OverflowError) as exc:
            shown = raw.strip()
            shown = shown if len(shown) <= 40 else shown[:40] + "..."
            problems.append((var.name, f"cannot parse {shown!r}: {exc}"))
    return kwargs, problems


def construct(
    cls: Callable[..., _T],
    kwargs: dict[str, Any],
    variables: Iterable[Variable],
    problems: Sequence[Problem] = (),
    also: Callable[[_T], Sequence[Problem]] | None = None,
) -> _T:
    """`cls(**kwargs)`, or one ConfigProblems: `problems` plus the dataclass's, named by variable.

    The dataclass raises a ConfigProblems (or a plain ConfigError) naming fields, and `also` may
    add problems of the built instance; they are renamed to their variables here. A field whose
    variable is already in `problems` keeps quiet (rule 3).
    """
    variables = tuple(variables)
    to_variable = {var.field: var.name for var in variables}
    found = list(problems)
    bad = {name for name, _ in found}
    try:
        instance = cls(**kwargs)
    except ConfigProblems as exc:
        own = list(exc.problems)
    except ConfigError as exc:
        own = [(exc.field, str(exc).removeprefix(f"{exc.field}: "))]
    else:
        # Checks that need the whole instance (cross-field), named by field like the rest.
        own = list(also(instance)) if also is not None else []
        if not found and not own:
            return instance
    for name, message in own:
        # A cross-field problem names "a/b": rename each part.
        renamed = "/".join(to_variable.get(part, part) for part in name.split("/"))
        if not bad.intersection(renamed.split("/")):
            found.append((renamed, message))
    # In the variables' order (unknown names last): the first line is the first setting.
    rank = {var.name: i for i, var in enumerate(variables)}
    found.sort(key=lambda p: rank.get(p[0].split("/")[0], len(rank)))
    raise ConfigProblems(found)


# -- unknown variables ---------------------------------------------------------------------------

# Kubernetes injects, for every Service in the namespace (enableServiceLinks, on by default),
#   NAME_SERVICE_HOST=10.0.0.1  NAME_SERVICE_PORT=9464  NAME_SERVICE_PORT_<PORTNAME>=9464
#   NAME_PORT=tcp://10.0.0.1:9464  NAME_PORT_9464_TCP=tcp://10.0.0.1:9464
#   NAME_PORT_9464_TCP_PROTO=tcp  NAME_PORT_9464_TCP_PORT=9464  NAME_PORT_9464_TCP_ADDR=10.0.0.1
# with NAME the Service's name upper-cased, '-' as '_'. Both the name's shape and the value's must
# match, so a typo such as REALTIME_SUPERVISOR_PORT=9464 (for HTTP_PORT) is still refused.
_LINK_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?:[A-Z0-9_]+_)?SERVICE_HOST"), "address"),
    (re.compile(r"(?:[A-Z0-9_]+_)?SERVICE_PORT(?:_[A-Z0-9_]+)?"), "port"),
    (re.compile(r"(?:[A-Z0-9_]+_)?PORT"), "url"),
    (re.compile(r"(?:[A-Z0-9_]+_)?PORT_\d{1,5}_(?:TCP|UDP|SCTP)"), "url"),
    (re.compile(r"(?:[A-Z0-9_]+_)?PORT_\d{1,5}_(?:TCP|UDP|SCTP)_PROTO"), "proto"),
    (re.compile(r"(?:[A-Z0-9_]+_)?PORT_\d{1,5}_(?:TCP|UDP|SCTP)_PORT"), "port"),
    (re.compile(r"(?:[A-Z0-9_]+_)?PORT_\d{1,5}_(?:TCP|UDP|SCTP)_ADDR"), "address"),
)
_LINK_URL = re.compile(r"(?:tcp|udp|sctp)://(?:\[[0-9a-fA-F:.]+\]|[0-9.]+):\d{1,5}")


def _address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_LINK_VALUES: dict[str, Callable[[str], bool]] = {
    "address": _address,
    "port": lambda text: text.isdigit() and 0 < int(text) < 65536,
    "url": lambda text: _LINK_URL.fullmatch(text) is not None,
    "proto": lambda text: text in ("tcp", "udp", "sctp"),
}


def is_service_link(name: str, value: str, prefix: str = "") -> bool:
    """Whether `name=value` has the shape of a variable Kubernetes injects for a Service."""
    rest = name.removeprefix(prefix)
    value = value.strip()
    return any(
        pattern.fullmatch(rest) is not None and _LINK_VALUES[kind](value)
        for pattern, kind in _LINK_SHAPES
    )


def unknown(source: Mapping[str, str], prefix: str, known: Iterable[str]) -> list[Problem]:
    """One problem per `prefix*` variable that is neither known nor a Kubernetes service link."""
    names = set(known)
    listing = ", ".join(sorted(names))
    return [
        (name, f"unknown variable (a typo?); known ones: {listing}")
        for name in sorted(source)
        if name.startswith(prefix)
        and name not in names
        and not is_service_link(name, source[name], prefix)
    ]
