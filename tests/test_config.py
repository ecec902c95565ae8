from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from realtime_supervisor._env import ConfigProblems
from realtime_supervisor.config import BOUNDS, ServiceConfig, WatchdogConfig
from realtime_supervisor.errors import ConfigError

P = "REALTIME_SUPERVISOR_"


def test_watchdog_defaults_match_the_contract() -> None:
    """An empty environment gives the documented watchdog defaults."""
    config = WatchdogConfig.from_env({})
    assert config == WatchdogConfig()
    assert config.enabled is True
    assert (config.reply_timeout, config.audio_gap_timeout, config.warning_grace) == (5.0, 3.0, 1.0)
    assert config.recovery_timeout == 5.0
    assert (config.budget_max_recoveries, config.budget_window) == (3, 60.0)
    assert (config.storm_reconnects, config.storm_window) == (5, 30.0)
    assert config.ladder == ("reissue", "reconnect")
    assert (config.reconnect_attempts, config.reconnect_backoff_max) == (3, 4.0)


def test_service_defaults_match_the_contract() -> None:
    """An empty environment gives the documented service defaults."""
    config = ServiceConfig.from_env({})
    assert config == ServiceConfig()
    assert (config.http_host, config.http_port) == ("0.0.0.0", 9464)
    assert (config.drain_escalations, config.drain_window) == (5, 300.0)
    assert (config.log_level, config.multiproc_dir) == ("INFO", None)


def test_every_watchdog_variable_is_read() -> None:
    """Each watchdog variable sets its field."""
    env = {
        P + "ENABLED": "false",
        P + "REPLY_TIMEOUT": "7.5",
        P + "AUDIO_GAP_TIMEOUT": "3",
        P + "WARNING_GRACE": "0.5",
        P + "RECOVERY_TIMEOUT": "6",
        P + "BUDGET_MAX_RECOVERIES": "4",
        P + "BUDGET_WINDOW": "120",
        P + "STORM_RECONNECTS": "2",
        P + "STORM_WINDOW": "10",
        P + "LADDER": "reconnect, reissue ,reissue",
        P + "RECONNECT_ATTEMPTS": "5",
        P + "RECONNECT_BACKOFF_MAX": "8",
    }
    config = WatchdogConfig.from_env(env)
    assert config == WatchdogConfig(
        enabled=False,
        reply_timeout=7.5,
        audio_gap_timeout=3.0,
        warning_grace=0.5,
        recovery_timeout=6.0,
        budget_max_recoveries=4,
        budget_window=120.0,
        storm_reconnects=2,
        storm_window=10.0,
        ladder=("reconnect", "reissue", "reissue"),
        reconnect_attempts=5,
        reconnect_backoff_max=8.0,
    )


def test_every_service_variable_is_read() -> None:
    """Each service variable (and PROMETHEUS_MULTIPROC_DIR) sets its field."""
    env = {
        P + "HTTP_HOST": "127.0.0.1",
        P + "HTTP_PORT": "9000",
        P + "DRAIN_ESCALATIONS": "2",
        P + "DRAIN_WINDOW": "60",
        P + "LOG_LEVEL": "debug",
        "PROMETHEUS_MULTIPROC_DIR": "/tmp/prom",
    }
    assert ServiceConfig.from_env(env) == ServiceConfig(
        http_host="127.0.0.1",
        http_port=9000,
        drain_escalations=2,
        drain_window=60.0,
        log_level="DEBUG",
        multiproc_dir="/tmp/prom",
    )


@pytest.mark.parametrize("text", ["true", "1", "YES", "on"])
def test_enabled_accepts_true_spellings(text: str) -> None:
    """ENABLED accepts the usual spellings of true."""
    assert WatchdogConfig.from_env({P + "ENABLED": text}).enabled is True


def test_empty_value_counts_as_unset() -> None:
    """A variable rendered empty by a template keeps the default."""
    assert WatchdogConfig.from_env({P + "REPLY_TIMEOUT": " "}).reply_timeout == 5.0


def test_ladder_none_means_detect_and_escalate_only() -> None:
    """LADDER=none gives an empty ladder."""
    assert WatchdogConfig.from_env({P + "LADDER": "none"}).ladder == ()


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("ENABLED", "maybe", "true"),
        ("REPLY_TIMEOUT", "-1", "> 0"),
        ("REPLY_TIMEOUT", "0", "> 0"),
        ("REPLY_TIMEOUT", "nan", "finite"),
        ("AUDIO_GAP_TIMEOUT", "inf", "finite"),
        ("WARNING_GRACE", "soon", "cannot parse"),
        ("RECOVERY_TIMEOUT", "-0.1", "> 0"),
        ("BUDGET_MAX_RECOVERIES", "0", "1..20"),
        ("BUDGET_MAX_RECOVERIES", "2.5", "cannot parse"),
        ("BUDGET_WINDOW", "0", "> 0"),
        ("STORM_RECONNECTS", "-3", "1..100"),
        ("STORM_WINDOW", "-inf", "finite"),
        ("LADDER", "reissue,restart", "reissue, reconnect"),
        ("RECONNECT_ATTEMPTS", "0", "1..10"),
        ("RECONNECT_BACKOFF_MAX", "0", "> 0"),
    ],
)
def test_bad_watchdog_variable_names_the_variable(variable: str, value: str, accepted: str) -> None:
    """A bad watchdog value fails naming the variable and what it accepts."""
    with pytest.raises(ConfigError) as info:
        WatchdogConfig.from_env({P + variable: value})
    assert info.value.field == P + variable
    assert str(info.value).startswith(P + variable + ":")
    assert accepted in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("HTTP_PORT", "0", "1..65535"),
        ("HTTP_PORT", "65536", "1..65535"),
        ("HTTP_PORT", "http", "cannot parse"),
        ("DRAIN_ESCALATIONS", "0", "1..10000"),
        ("DRAIN_WINDOW", "nan", "finite"),
        ("LOG_LEVEL", "loud", "DEBUG"),
    ],
)
def test_bad_service_variable_names_the_variable(variable: str, value: str, accepted: str) -> None:
    """A bad service value fails naming the variable and what it accepts."""
    with pytest.raises(ConfigError) as info:
        ServiceConfig.from_env({P + variable: value})
    assert info.value.field == P + variable
    assert accepted in str(info.value)


@pytest.mark.parametrize("loader", [WatchdogConfig.from_env, ServiceConfig.from_env])
def test_unknown_variable_is_a_typo(loader: Any) -> None:
    """An unknown REALTIME_SUPERVISOR_* variable fails naming it and listing the known ones."""
    with pytest.raises(ConfigError) as info:
        loader({P + "REPLY_TIMOUT": "5"})
    assert info.value.field == P + "REPLY_TIMOUT"
    assert P + "REPLY_TIMEOUT" in str(info.value)
    assert P + "HTTP_PORT" in str(info.value)


def test_each_loader_accepts_the_others_variables() -> None:
    """Watchdog and service variables share one environment without tripping typo protection."""
    env = {P + "HTTP_PORT": "9000", P + "REPLY_TIMEOUT": "3"}
    assert WatchdogConfig.from_env(env).reply_timeout == 3.0
    assert ServiceConfig.from_env(env).http_port == 9000


def test_unrelated_variables_are_ignored() -> None:
    """Variables outside the prefix are not ours to judge."""
    assert WatchdogConfig.from_env({"PATH": "/bin", "REALTIME_OTHER": "x"}) == WatchdogConfig()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"enabled": "yes"}, "enabled"),
        ({"reply_timeout": 0}, "reply_timeout"),
        ({"audio_gap_timeout": math.nan}, "audio_gap_timeout"),
        ({"warning_grace": math.inf}, "warning_grace"),
        ({"recovery_timeout": -1.0}, "recovery_timeout"),
        ({"recovery_timeout": True}, "recovery_timeout"),
        ({"budget_max_recoveries": 0}, "budget_max_recoveries"),
        ({"budget_max_recoveries": 1.5}, "budget_max_recoveries"),
        ({"budget_window": "60"}, "budget_window"),
        ({"storm_reconnects": 0}, "storm_reconnects"),
        ({"storm_window": 0.0}, "storm_window"),
        ({"ladder": ("reissue", "pray")}, "ladder"),
        ({"ladder": "reissue"}, "ladder"),
        ({"reconnect_attempts": 0}, "reconnect_attempts"),
        ({"reconnect_backoff_max": -2}, "reconnect_backoff_max"),
    ],
)
def test_bad_watchdog_field_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    """A bad value given to the dataclass fails naming the field."""
    with pytest.raises(ConfigError) as info:
        WatchdogConfig(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"http_host": ""}, "http_host"),
        ({"http_port": -1}, "http_port"),
        ({"http_port": 70000}, "http_port"),
        ({"drain_escalations": 0}, "drain_escalations"),
        ({"drain_window": -5}, "drain_window"),
        ({"log_level": "info"}, "log_level"),
        ({"multiproc_dir": ""}, "multiproc_dir"),
    ],
)
def test_bad_service_field_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    """A bad value given to the service dataclass fails naming the field."""
    with pytest.raises(ConfigError) as info:
        ServiceConfig(**kwargs)
    assert info.value.field == field


def test_numbers_are_normalised_and_ladder_is_a_tuple() -> None:
    """Integer seconds become floats and a list ladder becomes a tuple, so equality is by value."""
    config = WatchdogConfig(reply_timeout=5, ladder=["reconnect"])  # type: ignore[arg-type]
    assert isinstance(config.reply_timeout, float)
    assert config.ladder == ("reconnect",)


def test_port_zero_is_accepted_programmatically() -> None:
    """Tests may ask the service for any free port; the environment may not."""
    assert ServiceConfig(http_port=0).http_port == 0


def test_config_is_frozen() -> None:
    """Settings cannot change under a running watchdog."""
    config = WatchdogConfig()
    with pytest.raises(AttributeError):
        config.reply_timeout = 1.0  # type: ignore[misc]


# -- bounds, overflow, contradictions: every setting refused by name before start ----------------

BOUNDED = sorted(BOUNDS.items())


def _rows() -> list[tuple[dict[str, str], set[str]]]:
    """(environment, the variables its refusal must name): for every bounded setting its value
    below the floor, above the ceiling, overflowing and not finite; then contradictions."""
    rows: list[tuple[dict[str, str], set[str]]] = []
    for variable, bound in BOUNDED:
        low = bound.floor / 2 if bound.kind != "count" else bound.floor - 1
        high = bound.ceiling * 2 if bound.kind != "count" else bound.ceiling + 1
        values = [f"{low:g}", f"{high:g}", "9223372036854775807", "1e999", "9" * 5000, "-1"]
        if bound.kind == "count":
            values += ["1e6", "2.5"]
        else:
            values += ["nan", "-inf", "0.001" if bound.kind == "seconds" else "0.5"]
        rows += [({variable: value}, {variable}) for value in values]
    rows += [
        ({P + "HTTP_PORT": "0"}, {P + "HTTP_PORT"}),
        ({P + "HTTP_PORT": "99999999999999999999"}, {P + "HTTP_PORT"}),
        ({P + "HTTP_HOST": "not a host"}, {P + "HTTP_HOST"}),
        ({P + "LADDER": ",".join(["reissue"] * 11)}, {P + "LADDER"}),
        # Contradictions (each value fine on its own):
        (
            {P + "LEARNED_MIN_SAMPLES": "300", P + "LEARNED_WINDOW": "200"},
            {P + "LEARNED_MIN_SAMPLES", P + "LEARNED_WINDOW"},
        ),
        (
            {P + "WARNING_GRACE": "6", P + "REPLY_TIMEOUT": "5"},
            {P + "WARNING_GRACE", P + "REPLY_TIMEOUT"},
        ),
        (
            {P + "REPLY_TIMEOUT": "40", P + "RECOVERY_TIMEOUT": "30", P + "BUDGET_WINDOW": "60"},
            {P + "BUDGET_WINDOW", P + "REPLY_TIMEOUT", P + "RECOVERY_TIMEOUT"},
        ),
        (
            {P + "RECONNECT_ATTEMPTS": "10", P + "RECOVERY_TIMEOUT": "10"},
            {P + "RECONNECT_ATTEMPTS", P + "RECOVERY_TIMEOUT"},
        ),
        # The issue's own examples.
        ({P + "REPLY_TIMEOUT": "120", P + "BUDGET_WINDOW": "1"}, {P + "REPLY_TIMEOUT"}),
        (
            {P + "RECONNECT_ATTEMPTS": "1000000", P + "RECONNECT_BACKOFF_MAX": "1e-9"},
            {P + "RECONNECT_ATTEMPTS", P + "RECONNECT_BACKOFF_MAX"},
        ),
        ({P + "STORM_RECONNECTS": "9223372036854775807", P + "ENABLED": "false"}, set()),
    ]
    rows[-1] = (rows[-1][0], {P + "STORM_RECONNECTS"})
    return rows


ROWS = _rows()


@pytest.mark.parametrize(
    ("env", "named"),
    ROWS,
    ids=[",".join(f"{k[len(P) :]}={v[:12]}" for k, v in e.items()) for e, _ in ROWS],
)
def test_every_bad_setting_is_refused_by_name_before_start(
    env: dict[str, str], named: set[str]
) -> None:
    """Out-of-range, overflowing and contradictory values are all refused, each problem naming
    its variables, by the worker's settings loader and start checks (what runs before any call)."""
    from realtime_supervisor_agent import worker

    full = {"OPENAI_API_KEY": "sk-test", **env}
    with pytest.raises(ConfigError) as info:
        settings = worker.load_settings(full)
        worker.check_start(settings)
    problems = info.value.problems if isinstance(info.value, ConfigProblems) else ()
    mentioned = {part for name, _ in problems for part in name.split("/")}
    assert named <= mentioned, str(info.value)
    assert "Traceback" not in str(info.value)


def test_every_numeric_setting_has_bounds() -> None:
    """A new number setting without a floor and a ceiling fails here (add it with _seconds or
    _count in config.py)."""
    for cls in (WatchdogConfig, ServiceConfig):
        for f in dataclasses.fields(cls):
            if f.type in ("float", "int") and f.name != "http_port":
                assert "bound" in f.metadata, f"{cls.__name__}.{f.name} has no bound"


def test_defaults_are_inside_their_bounds_and_deployable() -> None:
    """The defaults pass the floors a deployment is held to."""
    assert WatchdogConfig().deployment_problems() == []
    assert ServiceConfig().deployment_problems() == []
    assert ServiceConfig(http_port=0).deployment_problems() != []


def test_floors_apply_to_the_environment_not_to_compressed_tests() -> None:
    """A test may run the watchdog at 50 ms; the environment may not, and says which floor."""
    fast = WatchdogConfig(reply_timeout=0.05, warning_grace=0.03, recovery_timeout=0.05)
    assert {name for name, _ in fast.deployment_problems()} == {
        "reply_timeout",
        "warning_grace",
        "recovery_timeout",
    }
    with pytest.raises(ConfigError, match=r"REPLY_TIMEOUT: expected a number of seconds 1.5\.\.60"):
        WatchdogConfig.from_env({P + "REPLY_TIMEOUT": "0.05"})


def test_all_problems_are_reported_at_once() -> None:
    """Several bad watchdog values give one error listing each, in the table's order."""
    with pytest.raises(ConfigProblems) as info:
        WatchdogConfig.from_env(
            {P + "STORM_WINDOW": "0", P + "REPLY_TIMEOUT": "x", P + "LADDER": "pray"}
        )
    assert [name for name, _ in info.value.problems] == [
        P + "REPLY_TIMEOUT",
        P + "STORM_WINDOW",
        P + "LADDER",
    ]


def kubernetes_links(
    service: str, port: int, port_name: str, ip: str = "10.96.12.34"
) -> dict[str, str]:
    """The variables Kubernetes injects into every pod for a Service (enableServiceLinks)."""
    name = service.upper().replace("-", "_")
    port_key = f"{name}_PORT_{port}_TCP"
    return {
        f"{name}_SERVICE_HOST": ip,
        f"{name}_SERVICE_PORT": str(port),
        f"{name}_SERVICE_PORT_{port_name.upper().replace('-', '_')}": str(port),
        f"{name}_PORT": f"tcp://{ip}:{port}",
        port_key: f"tcp://{ip}:{port}",
        f"{port_key}_PROTO": "tcp",
        f"{port_key}_PORT": str(port),
        f"{port_key}_ADDR": ip,
    }


@pytest.mark.parametrize(
    "service",
    [
        # release `realtime-supervisor`: the chart's Service (RELEASE-CHART-metrics) ...
        "realtime-supervisor-realtime-supervisor-agent-metrics",
        # ... and Services a neighbour may name after the project
        "realtime-supervisor",
        "realtime-supervisor-metrics",
    ],
)
def test_kubernetes_service_links_are_not_mistaken_for_settings(service: str) -> None:
    """With the release name `realtime-supervisor`, the REALTIME_SUPERVISOR_*_SERVICE_HOST/_PORT*
    variables Kubernetes injects load cleanly, in both configurations and the worker's loader."""
    from realtime_supervisor_agent import worker

    env = {"OPENAI_API_KEY": "sk-test", **kubernetes_links(service, 9464, "metrics")}
    assert all(name.startswith(P) for name in env if name != "OPENAI_API_KEY")
    assert WatchdogConfig.from_env(env) == WatchdogConfig()
    assert ServiceConfig.from_env(env) == ServiceConfig()
    worker.load_settings(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "9464"),  # a typo for HTTP_PORT: the value is not a service link's
        ("SERVICE_HOST", "my host"),
        ("AGENT_PORT_9464_TCP", "http://10.0.0.1:9464"),
        ("HTTP_PORTT", "9464"),
    ],
)
def test_link_shaped_typos_are_still_refused(name: str, value: str) -> None:
    """Only the name AND value shapes of a service link are tolerated."""
    with pytest.raises(ConfigError) as info:
        ServiceConfig.from_env({P + name: value})
    assert info.value.field == P + name


def test_the_configuration_docs_list_every_variable_with_its_bounds() -> None:
    """docs/configuration.md shows each bounded variable's accepted range."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line for line in docs.splitlines() if line.startswith("| `")
    }
    for variable, bound in BOUNDS.items():
        assert variable in rows, variable
        assert f"{bound.floor:g}..{bound.ceiling:g}" in rows[variable], variable


def test_contradictions_are_deployment_problems_of_a_config_built_in_code() -> None:
    """A compressed config built in code is accepted; deployment_problems() names its floors and
    its contradictions, as the environment would refuse them."""
    config = WatchdogConfig(reply_timeout=0.2, recovery_timeout=0.2)
    names = {name for name, _ in config.deployment_problems()}
    assert {"reply_timeout", "recovery_timeout", "warning_grace/reply_timeout"} <= names
    assert WatchdogConfig().deployment_problems() == []
