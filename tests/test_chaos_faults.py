"""The chaos catalogue, its hook table and the schedule syntax (chaos/schedule.py, faults.py)."""

from __future__ import annotations

import pytest

from realtime_supervisor.chaos import faults
from realtime_supervisor.chaos.faults import (
    DEFAULTS,
    FAULT_KINDS,
    KINDS,
    NON_FAULTS,
    RECOVERABLE_KINDS,
    STICKY_KINDS,
    TABLE,
    Fault,
    Hook,
    hook_for,
    parse_schedule,
)
from realtime_supervisor.errors import ConfigError


def test_tokens_rotate_over_turns() -> None:
    """Turn n uses token (n-1) mod len, so the schedule repeats per session."""
    s = parse_schedule("clean,stall_mid=5,drop_mid")
    got = [s.fault_for("a", t) for t in range(1, 7)]
    assert got == [
        None,
        Fault("stall_mid", 5),
        Fault("drop_mid"),
        None,
        Fault("stall_mid", 5),
        Fault("drop_mid"),
    ]


def test_defaults_apply_when_no_value() -> None:
    """A bare parameterised kind uses the catalogue default."""
    assert Fault("stall_mid").deltas == DEFAULTS["stall_mid"] == 3
    assert Fault("drop_mid").deltas == 3
    assert Fault("slow_first_audio").seconds == 3.0
    assert Fault("long_answer").seconds == 12.0
    assert Fault("stall_mid", 7).deltas == 7
    assert Fault("long_answer", 2.5).seconds == 2.5


def test_every_kind_parses() -> None:
    """Every catalogue kind is accepted as a token; non-faults are not faults."""
    for kind in FAULT_KINDS + NON_FAULTS:
        fault = parse_schedule(kind).fault_for("s", 1)
        assert fault == Fault(kind)
        assert fault.is_fault == (kind in FAULT_KINDS)


def test_every_kind_has_one_hook_and_a_line_in_the_catalogue() -> None:
    """TABLE maps each schedulable kind to its own hook, documented in faults.py's docstring."""
    assert set(TABLE) == set(KINDS)
    assert all(TABLE[k].kind == k and isinstance(TABLE[k], Hook) for k in KINDS)
    assert len({id(h) for h in TABLE.values()}) == len(KINDS)
    assert type(hook_for(None)) is Hook  # a clean turn: every point a no-op
    doc = faults.__doc__ or ""
    assert all(f"`{k}" in doc for k in KINDS), [k for k in KINDS if f"`{k}" not in doc]


def test_recoverable_catalogue_excludes_sticky_kinds_and_non_faults() -> None:
    """random:P never draws fatal_error, fatal_close, flap or the non-faults."""
    assert set(STICKY_KINDS) == {"fatal_error", "fatal_close", "flap"}
    assert not set(STICKY_KINDS) & set(RECOVERABLE_KINDS)
    assert not set(NON_FAULTS) & set(RECOVERABLE_KINDS)
    s = parse_schedule("random:1", seed=3)
    drawn = {s.fault_for(f"s{i}", t).kind for i in range(20) for t in range(1, 20)}  # type: ignore[union-attr]
    assert drawn == set(RECOVERABLE_KINDS)


def test_random_is_reproducible_with_the_seed() -> None:
    """The same seed gives the same faults per (session, turn); another seed differs."""
    a = parse_schedule("random:0.5", seed=7)
    b = parse_schedule("random:0.5", seed=7)
    c = parse_schedule("random:0.5", seed=8)
    turns = [(s, t) for s in ("x", "y") for t in range(1, 41)]
    run_a = [a.fault_for(s, t) for s, t in turns]
    assert run_a == [b.fault_for(s, t) for s, t in reversed(turns)][::-1]
    assert run_a != [c.fault_for(s, t) for s, t in turns]
    faulted = sum(f is not None for f in run_a)
    assert 20 < faulted < 60  # about half of 80


def test_random_probability_bounds() -> None:
    """random:0 never faults and random:1 always does."""
    never = parse_schedule("random:0")
    always = parse_schedule("random:1")
    assert all(never.fault_for("s", t) is None for t in range(1, 50))
    assert all(always.fault_for("s", t) is not None for t in range(1, 50))


def test_random_restricted_kinds() -> None:
    """random:P:k1|k2=v draws only from the listed kinds, with their values."""
    s = parse_schedule("random:1:stall_mid=2|no_response", seed=1)
    drawn = {s.fault_for("s", t) for t in range(1, 40)}
    assert drawn == {Fault("stall_mid", 2), Fault("no_response")}


def test_clean_schedule() -> None:
    """'clean' never faults."""
    s = parse_schedule("clean")
    assert s.is_clean
    assert s.fault_for("s", 1) is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("stall", "unknown fault kind 'stall'"),
        ("clean,bogus", "unknown fault kind 'bogus'"),
        ("random:1.5", "probability"),
        ("random:x", "probability"),
        ("random", "probability"),
        ("random:0.5:fatal|stall_mid", "unknown fault kind 'fatal'"),
        ("stall_mid=abc", "whole number"),
        ("stall_mid=1.5", "whole number"),
        ("drop_mid=-1", "out of range"),
        ("slow_first_audio=soon", "seconds"),
        ("long_answer=0", "out of range"),
        ("long_answer=nan", "out of range"),
        ("flap=3", "takes no value"),
        ("", "empty token"),
        ("clean,,clean", "empty token"),
    ],
)
def test_bad_schedules_raise_config_error_naming_faults(text: str, needle: str) -> None:
    """A bad kind, probability or value raises ConfigError naming `faults` and what is accepted."""
    with pytest.raises(ConfigError) as info:
        parse_schedule(text)
    assert info.value.field == "faults"
    assert str(info.value).startswith("faults: ")
    assert needle in str(info.value)
    assert "accepted:" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_fault_str_round_trips() -> None:
    """A fault prints in schedule syntax."""
    assert str(Fault("stall_mid", 4)) == "stall_mid=4"
    assert str(Fault("flap")) == "flap"
    assert parse_schedule(str(Fault("slow_first_audio", 1.5))).fault_for("s", 1) == Fault(
        "slow_first_audio", 1.5
    )
