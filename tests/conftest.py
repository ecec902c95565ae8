"""Fixtures every test module shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from realtime_supervisor import _learned as learned


@pytest.fixture(autouse=True)
def _fresh_learners() -> Iterator[None]:
    """Each test starts with no learned thresholds: a Supervisor built without a learner uses
    the process's, which earlier tests' healthy turns would otherwise have warmed."""
    learned._learners.clear()
    yield
    learned._learners.clear()
