"""learned: healthy latencies in, deadlines out (pure; time passed in, no sleeps)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from structlog.testing import capture_logs

from realtime_supervisor._detector import Detector, Heard, ReplyExpected, Stall, StallKind
from realtime_supervisor._learned import (
    LearnedDeadline,
    Learner,
    QuantileWindow,
    SessionLearning,
    TurnSampler,
    default_learner,
)
from realtime_supervisor._observations import (
    AgentAudioPlayed,
    PlaybackFinished,
    ResponseCreated,
    ResponseDone,
    ToolCallStarted,
    UserSpeechStarted,
    UserSpeechStopped,
)
from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.errors import ConfigError

CFG = WatchdogConfig(
    learned_min_samples=5,
    learned_window=20,
    learned_margin=2.0,
    learned_floor=1.5,
    learned_reply=True,  # the tests of the first-audio deadline need it on
)


def warm(learner: Learner, latency: str, values: list[float], where: tuple[str, str]) -> None:
    for v in values:
        learner.record(*where, latency, v)


def test_the_window_keeps_only_the_most_recent_samples_and_ranks_them() -> None:
    """Nearest-rank quantiles over a bounded ring: old samples age out."""
    w = QuantileWindow(4)
    assert w.quantile(0.99) is None
    for v in (9.0, 1.0, 2.0, 3.0, 4.0):  # 9.0 falls out
        w.add(v)
    assert len(w) == 4
    assert w.quantile(0.99) == 4.0
    assert w.quantile(0.5) == 2.0
    w.add(float("nan"))
    w.add(-1.0)
    assert len(w) == 4  # nothing learned from a broken measure


def test_the_window_ranks_exactly_what_a_sort_of_its_recent_samples_would() -> None:
    """The sorted copy kept beside the ring (no re-sort per sample) never drifts from it:
    duplicates, evictions of the smallest and the largest, thousands of samples."""
    import random

    rng = random.Random(7)
    w = QuantileWindow(50)
    recent: list[float] = []
    for i in range(3000):
        v = float(rng.choice([0.3, 0.5, 1.0])) if i % 3 else rng.uniform(0, 2)
        w.add(v)
        recent = [*recent, v][-50:]
        if i % 97 == 0 or i > 2990:
            ranked = sorted(recent)
            for q in (0.0, 0.5, 0.9, 0.99, 1.0):
                assert w.quantile(q) == ranked[max(0, math.ceil(q * len(ranked)) - 1)]


def test_cold_start_uses_the_fixed_timeout() -> None:
    """Fewer than learned_min_samples healthy turns: the configured value."""
    learner = Learner(CFG)
    warm(learner, "first_audio", [0.5] * 4, ("openai", "m"))
    assert learner.deadline("openai", "m", "reply_timeout", 5.0) == 5.0


def test_a_warm_deadline_is_the_margin_above_p99_within_floor_and_ceiling() -> None:
    """margin x p99, never below the floor nor above the fixed timeout."""
    learner = Learner(CFG)
    warm(learner, "first_audio", [0.5, 0.6, 0.7, 0.8, 1.0], ("openai", "m"))
    assert learner.deadline("openai", "m", "reply_timeout", 5.0) == pytest.approx(2.0)
    # fast: the floor (1.5 s by default) holds
    warm(learner, "ack", [0.1] * 5, ("openai", "m"))
    assert learner.deadline("openai", "m", "ack_timeout", 3.0) == CFG.learned_floor
    # slow: never above the configured timeout
    warm(learner, "first_audio", [4.0] * 5, ("azure", "slow"))
    assert learner.deadline("azure", "slow", "reply_timeout", 5.0) == 5.0


def test_deployments_learn_apart() -> None:
    """Per provider and model: a slow model's samples do not shorten a fast one's wait, nor
    the reverse."""
    learner = Learner(CFG)
    warm(learner, "first_audio", [0.5] * 5, ("openai", "fast"))
    warm(learner, "first_audio", [2.4] * 5, ("openai", "slow"))
    assert learner.deadline("openai", "fast", "reply_timeout", 5.0) == 1.5
    assert learner.deadline("openai", "slow", "reply_timeout", 5.0) == 4.8
    assert learner.deadline("azure", "fast", "reply_timeout", 5.0) == 5.0  # never seen


def test_disabled_learning_keeps_the_fixed_values_but_still_reports() -> None:
    """learned_enabled=False: the fixed timeouts, and the snapshot says nothing is applied."""
    learner = Learner(dataclasses.replace(CFG, learned_enabled=False))
    warm(learner, "first_audio", [0.5] * 5, ("openai", "m"))
    assert learner.deadline("openai", "m", "reply_timeout", 5.0) == 5.0
    snap = {d.deadline: d for d in learner.snapshot()}
    assert snap["reply_timeout"].samples == 5 and not snap["reply_timeout"].learned


def test_fields_no_latency_governs_are_never_changed() -> None:
    learner = Learner(CFG)
    warm(learner, "first_audio", [0.1] * 5, ("openai", "m"))
    assert learner.deadline("openai", "m", "audio_gap_timeout", 2.0) == 2.0
    with pytest.raises(ValueError, match="unknown latency"):
        learner.record("openai", "m", "tool", 1.0)


def test_the_snapshot_lists_every_deadline_of_every_deployment() -> None:
    learner = Learner(CFG)
    warm(learner, "first_audio", [0.5, 0.6, 0.7, 0.8, 1.0], ("openai", "m"))
    snap = learner.snapshot()
    assert [d.deadline for d in snap] == ["ack_timeout", "recovery_timeout", "reply_timeout"]
    assert not snap[0].learned and snap[0].samples == 0 and snap[0].seconds == CFG.ack_timeout
    reply = snap[2]
    assert reply == LearnedDeadline(
        provider="openai",
        model="m",
        deadline="reply_timeout",
        latency="first_audio",
        seconds=pytest.approx(2.0),
        fixed=5.0,
        p99=1.0,
        samples=5,
        learned=True,
    )


def _sampler(learner: Learner) -> tuple[TurnSampler, list[list[LearnedDeadline]]]:
    changes: list[list[LearnedDeadline]] = []
    learning = SessionLearning(learner, "openai", "m", on_change=changes.append)
    return TurnSampler(learning), changes


def test_a_healthy_turn_teaches_its_ack_and_first_audio_latency() -> None:
    learner = Learner(CFG)
    sampler, changes = _sampler(learner)
    sampler.finding(ReplyExpected(since=10.0))
    sampler.observe(ResponseCreated("r1"), 10.3)
    sampler.observe(ResponseCreated("r2"), 10.9)  # only the first acknowledges the turn
    sampler.finding(Heard(at=10.8, latency=0.8, stall=None))
    snap = {d.latency: d for d in learner.snapshot({"ack_timeout": 3.0, "reply_timeout": 5.0})}
    assert snap["ack"].p99 == pytest.approx(0.3) and snap["ack"].samples == 1
    assert snap["first_audio"].p99 == pytest.approx(0.8)
    assert changes  # the gauge hears of it


@pytest.mark.parametrize(
    "taint",
    [
        ToolCallStarted(),  # a tool's latency is the tool's
        UserSpeechStarted(),  # the caller talked over the wait
    ],
)
def test_unhealthy_turns_teach_nothing(taint: object) -> None:
    learner = Learner(CFG)
    sampler, _ = _sampler(learner)
    sampler.finding(ReplyExpected(since=0.0))
    sampler.observe(taint, 0.5)  # type: ignore[arg-type]
    sampler.finding(Heard(at=9.0, latency=9.0, stall=None))
    assert learner.snapshot() == []


def test_a_recovered_turn_teaches_nothing() -> None:
    """The reply came only after the watchdog acted: its latency is the incident's."""
    learner = Learner(CFG)
    sampler, _ = _sampler(learner)
    stall = Stall(StallKind.NO_REPLY, 0.0, 5.0, "x")
    sampler.finding(ReplyExpected(since=0.0))
    sampler.finding(stall)
    sampler.finding(Heard(at=6.0, latency=6.0, stall=stall))
    sampler.finding(Heard(at=7.0, latency=None, stall=None))  # audio with no turn owed
    assert learner.snapshot() == []


def test_the_acknowledgement_deadline_is_learned_by_default() -> None:
    """Default settings: a deployment that acknowledges in 0.2 s is judged lost at the 1 s floor
    when nothing acknowledges the turn, not at the fixed ack_timeout."""
    cfg = dataclasses.replace(CFG, learned_reply=False, learned_floor=1.0)
    learner = Learner(cfg)
    warm(learner, "ack", [0.2] * 5, ("openai", "m"))
    warm(learner, "first_audio", [0.5] * 5, ("openai", "m"))
    det = Detector(cfg, SessionLearning(learner, "openai", "m").timeout)
    det.observe(UserSpeechStopped(), 100.0)
    assert det.next_deadline() == pytest.approx(101.0)
    (stall,) = det.poll(101.0)
    assert stall.kind is StallKind.NO_REPLY
    # acknowledged: the patient deadlines stay the configured ones (learned_reply is off)
    det2 = Detector(cfg, SessionLearning(learner, "openai", "m").timeout)
    det2.observe(UserSpeechStopped(), 0.0)
    det2.observe(ResponseCreated("r1"), 0.2)
    assert det2.next_deadline() == pytest.approx(cfg.reply_timeout)


def test_with_learned_reply_the_patient_deadline_is_learned_too() -> None:
    """learned_reply: warm on fast turns, an acknowledged but silent reply is judged at margin x
    p99 of first audio (here the 1.5 s floor), not at reply_timeout."""
    learner = Learner(CFG)
    warm(learner, "first_audio", [0.5] * 5, ("openai", "m"))
    learning = SessionLearning(learner, "openai", "m")
    det = Detector(CFG, learning.timeout)
    det.observe(UserSpeechStopped(), 100.0)
    det.observe(ResponseCreated("r1"), 100.1)
    assert det.next_deadline() == pytest.approx(101.5)
    assert det.poll(101.4) == []
    (stall,) = det.poll(101.5)
    assert stall.kind is StallKind.NO_REPLY and "1.5 s" in stall.detail
    # a cold deployment keeps the configured timeout
    cold = Detector(CFG, SessionLearning(learner, "azure", "other").timeout)
    cold.observe(UserSpeechStopped(), 0.0)
    cold.observe(ResponseCreated("r1"), 0.1)
    assert cold.next_deadline() == pytest.approx(CFG.reply_timeout)


def test_the_detector_learns_nothing_faster_than_a_slow_healthy_deployment() -> None:
    """A deployment whose healthy replies take 4 s keeps its patience (up to the fixed value)."""
    learner = Learner(CFG)
    learning = SessionLearning(learner, "openai", "m")
    sampler = TurnSampler(learning)
    det = Detector(CFG, learning.timeout)
    t = 0.0
    for n in range(CFG.learned_min_samples):
        for obs, at in (
            (UserSpeechStopped(), t),
            (ResponseCreated(f"r{n}"), t + 0.2),
            (AgentAudioPlayed(), t + 4.0),
            (ResponseDone(f"r{n}", "completed"), t + 4.1),
            (PlaybackFinished(interrupted=False), t + 5.0),
        ):
            sampler.observe(obs, at)
            for f in det.observe(obs, at):
                sampler.finding(f)
        t += 10.0
    assert {d.samples for d in learner.snapshot()} == {CFG.learned_min_samples}
    det.observe(UserSpeechStopped(), t)
    det.observe(ResponseCreated("last"), t + 0.2)
    assert det.next_deadline() == pytest.approx(t + CFG.reply_timeout)


def test_one_learner_per_process_and_learning_settings() -> None:
    a = default_learner(CFG)
    assert default_learner(dataclasses.replace(CFG, reply_timeout=CFG.reply_timeout)) is a
    assert default_learner(dataclasses.replace(CFG, learned_margin=3.0)) is not a


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("learned_margin", 11.0, "at most 10"),
        ("learned_floor", 0.0, "> 0"),
        ("learned_window", 10_001, "1..10000"),
        ("learned_enabled", "yes", "bool"),
        ("learned_reply", 1, "bool"),
    ],
)
def test_learning_settings_are_bounded(field: str, value: object, message: str) -> None:
    """Out of range or of the wrong type whatever the source (ceilings, types)."""
    with pytest.raises(ConfigError, match=field) as info:
        WatchdogConfig(**{field: value})  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LEARNED_MARGIN", "0.5", "1..10"),
        ("LEARNED_WINDOW", "5", "20..10000"),
        ("LEARNED_MIN_SAMPLES", "500", "must not exceed learned_window"),
    ],
)
def test_learning_floors_and_contradictions_are_refused_from_the_environment(
    variable: str, value: str, message: str
) -> None:
    """Floors and cross-field checks apply where a deployment's settings come from (config rule
    3); a config built in code reports them in deployment_problems()."""
    with pytest.raises(ConfigError, match="REALTIME_SUPERVISOR_" + variable) as info:
        WatchdogConfig.from_env({"REALTIME_SUPERVISOR_" + variable: value})
    assert message in str(info.value)
    field = variable.lower()
    built = WatchdogConfig(**{field: float(value) if "MARGIN" in variable else int(value)})  # type: ignore[arg-type]
    assert any(field in name for name, _ in built.deployment_problems())


def test_learning_settings_come_from_the_environment() -> None:
    cfg = WatchdogConfig.from_env(
        {
            "REALTIME_SUPERVISOR_LEARNED_ENABLED": "false",
            "REALTIME_SUPERVISOR_LEARNED_REPLY": "true",
            "REALTIME_SUPERVISOR_LEARNED_MARGIN": "3",
            "REALTIME_SUPERVISOR_LEARNED_FLOOR": "2",
            "REALTIME_SUPERVISOR_LEARNED_WINDOW": "100",
            "REALTIME_SUPERVISOR_LEARNED_MIN_SAMPLES": "10",
        }
    )
    assert (cfg.learned_enabled, cfg.learned_margin, cfg.learned_floor) == (False, 3.0, 2.0)
    assert cfg.learned_reply
    assert (cfg.learned_window, cfg.learned_min_samples) == (100, 10)
    with pytest.raises(ConfigError, match="REALTIME_SUPERVISOR_LEARNED_WINDOW"):
        WatchdogConfig.from_env({"REALTIME_SUPERVISOR_LEARNED_WINDOW": "3"})


def test_a_session_keeps_its_own_fixed_timeouts_on_a_shared_learner() -> None:
    """Two sessions configured differently share one learner (same learning settings): each is
    capped by its own configured timeout."""
    learner = default_learner(CFG)
    patient = dataclasses.replace(CFG, ack_timeout=3.0)
    assert default_learner(patient) is learner
    assert SessionLearning(learner, "p", "m", config=patient).timeout("ack_timeout") == 3.0
    assert SessionLearning(learner, "p", "m").timeout("ack_timeout") == CFG.ack_timeout


# -- with real livekit: the learned deadline is the one armed, and it is shown -------------------


@pytest.mark.livekit
@pytest.mark.timeout(90)
async def test_a_warm_deployment_is_judged_at_its_learned_acknowledgement_deadline() -> None:
    """A real session on a deployment that acknowledged its last turns promptly: the turn the
    server never acknowledges is judged at the learned deadline (the floor), not the fixed
    ack_timeout; the turn is answered, and the gauge shows what the watchdog waited for."""
    from prometheus_client import CollectorRegistry

    from realtime_supervisor.metrics import Metrics

    from .harness import start_call

    config = WatchdogConfig()
    learner = default_learner(config)  # the process's: the Supervisor below takes it
    warm(learner, "ack", [0.05] * config.learned_min_samples, ("openai", "gpt-realtime"))
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    with capture_logs() as logs:
        async with start_call(
            "clean,no_response", supervised=True, watchdog=config, metrics=metrics
        ) as c:
            t = await c.speak()  # a healthy turn: one more sample, and the gauge is set
            assert await c.answered_after(t, within=20)
            await c.until_state("listening")
            gauge = registry.get_sample_value(
                "realtime_supervisor_learned_deadline_seconds",
                {"provider": "openai", "model": "gpt-realtime", "deadline": "ack_timeout"},
            )
            assert gauge == config.learned_floor
            t = await c.speak()  # never acknowledged
            assert await c.answered_after(t, within=20)
    stalls_seen = [e for e in logs if e["event"] == "stall.detected"]
    assert stalls_seen, logs
    assert stalls_seen[0]["detail"].endswith(f"within {config.learned_floor:g} s"), stalls_seen
    ack = [d for d in learner.snapshot() if d.deadline == "ack_timeout"]
    assert ack[0].seconds == config.learned_floor < config.ack_timeout
