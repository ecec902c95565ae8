"""The vocabulary is written once: everything that names a kind derives from kinds.py."""

from __future__ import annotations

from realtime_supervisor import config, metrics
from realtime_supervisor._detector import StallKind as DetectorStallKind
from realtime_supervisor._observations import WarningKind as ObservedWarningKind
from realtime_supervisor.kinds import (
    WARNING_PREFIXES,
    EscalationReason,
    Outcome,
    Rung,
    StallKind,
    WarningKind,
)


def test_every_warning_kind_has_exactly_one_message_prefix() -> None:
    """The binding matches livekit's messages by these prefixes: one per kind, none shadowed."""
    kinds = [kind for _, kind in WARNING_PREFIXES]
    assert sorted(kinds) == sorted(WarningKind)
    prefixes = [prefix for prefix, _ in WARNING_PREFIXES]
    for p in prefixes:
        assert [q for q in prefixes if q in p] == [p], p


def test_labels_config_and_engine_use_the_same_enums() -> None:
    """Metric labels, the ladder's rungs and the engine's enums are the vocabulary's."""
    assert tuple(StallKind) == metrics.STALL_KINDS
    assert tuple(WarningKind) == metrics.WARNING_KINDS
    assert tuple(Rung) == metrics.ACTIONS
    # failover is decided (instead of escalating), never configured as a rung of the ladder
    assert tuple(r for r in Rung if r is not Rung.FAILOVER) == config.LADDER_RUNGS
    assert tuple(Outcome) == metrics.OUTCOMES
    assert tuple(EscalationReason) == metrics.ESCALATION_REASONS
    assert DetectorStallKind is StallKind and ObservedWarningKind is WarningKind
