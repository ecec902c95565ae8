"""AgentConfig: parsing the agent variables, validating them all at once, hiding secrets."""

from __future__ import annotations

import pytest

from realtime_supervisor.errors import ConfigError
from realtime_supervisor_agent.config import AgentConfig, AgentConfigError

# Pure logic: must hold on the oldest supported livekit too.
pytestmark = pytest.mark.compat

OPENAI_KEY = "sk-test-OPENAI-SECRET-0001"
AZURE_KEY = "azure-test-KEY-SECRET-0002"
AD_TOKEN = "eyJ-test-ENTRA-SECRET-0003"
LK_SECRET = "lk-test-SECRET-0004"
SECRETS = (OPENAI_KEY, AZURE_KEY, AD_TOKEN, LK_SECRET)

OPENAI = {"AGENT_PROVIDER": "openai", "OPENAI_API_KEY": OPENAI_KEY}
AZURE_GA = {
    "AGENT_PROVIDER": "azure",
    "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
    "AZURE_OPENAI_DEPLOYMENT": "gpt-realtime",
    "AZURE_OPENAI_API_KEY": AZURE_KEY,
}
AZURE_LEGACY = {**AZURE_GA, "OPENAI_API_VERSION": "2024-10-01-preview"}
LIVEKIT = {
    "LIVEKIT_URL": "wss://lk.example.com",
    "LIVEKIT_API_KEY": "APIkey",
    "LIVEKIT_API_SECRET": LK_SECRET,
}


def test_defaults_for_openai() -> None:
    """With only a key, the documented defaults apply."""
    cfg = AgentConfig.from_env(OPENAI)
    assert cfg.provider == "openai"
    assert cfg.agent_name == ""
    assert cfg.model == "gpt-realtime"
    assert cfg.voice == "alloy"
    assert cfg.modalities == ("audio",)
    assert cfg.architecture == "realtime"
    assert cfg.transcription_model == "gpt-4o-mini-transcribe"
    assert cfg.noise_reduction == "near_field"
    assert cfg.turn_detection == "server_vad"
    assert (cfg.vad_threshold, cfg.vad_prefix_padding_ms, cfg.vad_silence_duration_ms) == (
        0.5,
        300,
        500,
    )
    assert cfg.semantic_eagerness == "auto"
    assert cfg.openai_api_key == OPENAI_KEY
    assert not cfg.uses_legacy_azure


def test_provider_defaults_to_openai() -> None:
    """AGENT_PROVIDER unset means openai."""
    assert AgentConfig.from_env({"OPENAI_API_KEY": OPENAI_KEY}).provider == "openai"


def test_azure_ga() -> None:
    """Azure without OPENAI_API_VERSION is the GA path, with an API key."""
    cfg = AgentConfig.from_env(AZURE_GA)
    assert cfg.provider == "azure"
    assert cfg.azure_endpoint == "https://res.openai.azure.com"
    assert cfg.azure_deployment == "gpt-realtime"
    assert cfg.azure_api_key == AZURE_KEY
    assert cfg.api_version is None
    assert not cfg.uses_legacy_azure


def test_azure_legacy_api_version() -> None:
    """OPENAI_API_VERSION selects the legacy Azure path of the original report."""
    cfg = AgentConfig.from_env(AZURE_LEGACY)
    assert cfg.api_version == "2024-10-01-preview"
    assert cfg.uses_legacy_azure


def test_azure_entra_token_only() -> None:
    """An Entra token replaces the Azure API key."""
    env = {k: v for k, v in AZURE_GA.items() if k != "AZURE_OPENAI_API_KEY"}
    cfg = AgentConfig.from_env({**env, "AZURE_OPENAI_AD_TOKEN": AD_TOKEN})
    assert cfg.azure_ad_token == AD_TOKEN
    assert cfg.azure_api_key is None


def test_realtime_stt_and_all_options() -> None:
    """Every agent variable is read, case-insensitively for the choices."""
    cfg = AgentConfig.from_env(
        {
            **OPENAI,
            "AGENT_NAME": "support-agent",
            "AGENT_MODEL": "gpt-realtime-mini",
            "AGENT_VOICE": "marin",
            "AGENT_MODALITIES": "Audio , Text",
            "AGENT_INSTRUCTIONS": "Be brief.\nBe kind.",
            "AGENT_ARCHITECTURE": "realtime_stt",
            "AGENT_TRANSCRIPTION_MODEL": "gpt-4o-transcribe",
            "AGENT_NOISE_REDUCTION": "FAR_FIELD",
            "AGENT_TURN_DETECTION": "semantic_vad",
            "AGENT_SEMANTIC_EAGERNESS": "low",
        }
    )
    assert cfg.agent_name == "support-agent"
    assert cfg.model == "gpt-realtime-mini"
    assert cfg.voice == "marin"
    assert cfg.modalities == ("text", "audio")
    assert cfg.instructions == "Be brief.\nBe kind."
    assert cfg.architecture == "realtime_stt"
    assert cfg.transcription_model == "gpt-4o-transcribe"
    assert cfg.noise_reduction == "far_field"
    assert cfg.turn_detection == "semantic_vad"
    assert cfg.semantic_eagerness == "low"


def test_server_vad_values() -> None:
    """The server VAD variables are parsed as numbers."""
    cfg = AgentConfig.from_env(
        {
            **OPENAI,
            "AGENT_VAD_THRESHOLD": "0.7",
            "AGENT_VAD_PREFIX_PADDING_MS": "200",
            "AGENT_VAD_SILENCE_DURATION_MS": "800",
            "AGENT_NOISE_REDUCTION": "off",
        }
    )
    assert (cfg.vad_threshold, cfg.vad_prefix_padding_ms, cfg.vad_silence_duration_ms) == (
        0.7,
        200,
        800,
    )
    assert cfg.noise_reduction == "off"


@pytest.mark.parametrize("text", ["audio", "text,audio", "audio,text", " AUDIO , text "])
def test_modalities_order_insensitive(text: str) -> None:
    """AGENT_MODALITIES accepts audio and text+audio in any order and spacing."""
    cfg = AgentConfig.from_env({**OPENAI, "AGENT_MODALITIES": text})
    assert cfg.modalities == (("audio",) if "text" not in text.lower() else ("text", "audio"))


def test_empty_values_count_as_unset() -> None:
    """A template-rendered empty value keeps the default instead of failing."""
    cfg = AgentConfig.from_env({**OPENAI, "AGENT_VOICE": "", "AGENT_VAD_THRESHOLD": "  "})
    assert cfg.voice == "alloy"
    assert cfg.vad_threshold == 0.5


def test_supervisor_variables_ignored() -> None:
    """REALTIME_SUPERVISOR_* belongs to WatchdogConfig and does not disturb the agent config."""
    cfg = AgentConfig.from_env({**OPENAI, "REALTIME_SUPERVISOR_LADDER": "nonsense"})
    assert cfg.provider == "openai"


BAD_VALUES = [
    # (overrides on top of a base env, base, variable named first)
    ({"AGENT_PROVIDER": "anthropic"}, OPENAI, "AGENT_PROVIDER"),
    ({"AGENT_NAME": "has space"}, OPENAI, "AGENT_NAME"),
    ({"OPENAI_API_KEY": ""}, {"AGENT_PROVIDER": "openai"}, "OPENAI_API_KEY"),
    ({"OPENAI_API_VERSION": "2024-10-01-preview"}, OPENAI, "OPENAI_API_VERSION"),
    ({"AZURE_OPENAI_ENDPOINT": "ftp://res.openai.azure.com"}, AZURE_GA, "AZURE_OPENAI_ENDPOINT"),
    ({"AZURE_OPENAI_ENDPOINT": "res.openai.azure.com"}, AZURE_GA, "AZURE_OPENAI_ENDPOINT"),
    ({"AZURE_OPENAI_ENDPOINT": ""}, AZURE_GA, "AZURE_OPENAI_ENDPOINT"),
    ({"AZURE_OPENAI_DEPLOYMENT": "my deployment"}, AZURE_GA, "AZURE_OPENAI_DEPLOYMENT"),
    ({"AZURE_OPENAI_DEPLOYMENT": ""}, AZURE_GA, "AZURE_OPENAI_DEPLOYMENT"),
    ({"AZURE_OPENAI_API_KEY": ""}, AZURE_GA, "AZURE_OPENAI_API_KEY"),
    ({"OPENAI_API_VERSION": "2024-10-01-beta"}, AZURE_GA, "OPENAI_API_VERSION"),
    ({"OPENAI_API_VERSION": "v1"}, AZURE_GA, "OPENAI_API_VERSION"),
    ({"AGENT_MODEL": "gpt realtime"}, OPENAI, "AGENT_MODEL"),
    ({"AGENT_VOICE": "al/loy"}, OPENAI, "AGENT_VOICE"),
    ({"AGENT_MODALITIES": "text"}, OPENAI, "AGENT_MODALITIES"),
    ({"AGENT_MODALITIES": "audio,audio"}, OPENAI, "AGENT_MODALITIES"),
    ({"AGENT_MODALITIES": "video"}, OPENAI, "AGENT_MODALITIES"),
    ({"AGENT_ARCHITECTURE": "cascade"}, OPENAI, "AGENT_ARCHITECTURE"),
    ({"AGENT_TRANSCRIPTION_MODEL": "whisper 1"}, OPENAI, "AGENT_TRANSCRIPTION_MODEL"),
    ({"AGENT_NOISE_REDUCTION": "strong"}, OPENAI, "AGENT_NOISE_REDUCTION"),
    ({"AGENT_TURN_DETECTION": "none"}, OPENAI, "AGENT_TURN_DETECTION"),
    ({"AGENT_VAD_THRESHOLD": "loud"}, OPENAI, "AGENT_VAD_THRESHOLD"),
    ({"AGENT_VAD_THRESHOLD": "0"}, OPENAI, "AGENT_VAD_THRESHOLD"),
    ({"AGENT_VAD_THRESHOLD": "1"}, OPENAI, "AGENT_VAD_THRESHOLD"),
    ({"AGENT_VAD_THRESHOLD": "nan"}, OPENAI, "AGENT_VAD_THRESHOLD"),
    ({"AGENT_VAD_PREFIX_PADDING_MS": "0"}, OPENAI, "AGENT_VAD_PREFIX_PADDING_MS"),
    ({"AGENT_VAD_PREFIX_PADDING_MS": "2001"}, OPENAI, "AGENT_VAD_PREFIX_PADDING_MS"),
    ({"AGENT_VAD_PREFIX_PADDING_MS": "0.3s"}, OPENAI, "AGENT_VAD_PREFIX_PADDING_MS"),
    ({"AGENT_VAD_SILENCE_DURATION_MS": "50"}, OPENAI, "AGENT_VAD_SILENCE_DURATION_MS"),
    ({"AGENT_VAD_SILENCE_DURATION_MS": "5001"}, OPENAI, "AGENT_VAD_SILENCE_DURATION_MS"),
    ({"AGENT_SEMANTIC_EAGERNESS": "eager"}, OPENAI, "AGENT_SEMANTIC_EAGERNESS"),
    # set but ignored by the chosen turn detection
    ({"AGENT_SEMANTIC_EAGERNESS": "low"}, OPENAI, "AGENT_SEMANTIC_EAGERNESS"),
    (
        {"AGENT_TURN_DETECTION": "semantic_vad", "AGENT_VAD_THRESHOLD": "0.5"},
        OPENAI,
        "AGENT_VAD_THRESHOLD",
    ),
    (
        {"AGENT_TURN_DETECTION": "semantic_vad", "AGENT_VAD_SILENCE_DURATION_MS": "700"},
        OPENAI,
        "AGENT_VAD_SILENCE_DURATION_MS",
    ),
]


@pytest.mark.parametrize(("overrides", "base", "variable"), BAD_VALUES)
def test_bad_value_names_its_variable(
    overrides: dict[str, str], base: dict[str, str], variable: str
) -> None:
    """Each bad value fails with a ConfigError naming its variable and what is accepted."""
    with pytest.raises(ConfigError) as info:
        AgentConfig.from_env({**base, **overrides})
    assert info.value.field == variable
    assert str(info.value).startswith(f"{variable}: ")
    assert isinstance(info.value, ValueError)


def test_blank_instructions_keep_the_default() -> None:
    """A blank AGENT_INSTRUCTIONS is unset, like every other empty value."""
    assert AgentConfig.from_env({**OPENAI, "AGENT_INSTRUCTIONS": " \n "}).instructions


def test_entra_only_with_openai_key_is_refused() -> None:
    """OPENAI_API_KEY beside an Entra-only Azure config fails: the plugin would send it to Azure."""
    env = {k: v for k, v in AZURE_GA.items() if k != "AZURE_OPENAI_API_KEY"}
    with pytest.raises(ConfigError) as info:
        AgentConfig.from_env({**env, "AZURE_OPENAI_AD_TOKEN": AD_TOKEN, "OPENAI_API_KEY": "sk-1"})
    assert info.value.field == "OPENAI_API_KEY"


def test_other_providers_credentials_are_tolerated() -> None:
    """A shared secret holding both providers' keys does not fail either provider."""
    both = {**AZURE_GA, "OPENAI_API_KEY": OPENAI_KEY}
    assert AgentConfig.from_env(both).provider == "azure"
    assert AgentConfig.from_env({**both, "AGENT_PROVIDER": "openai"}).provider == "openai"


def test_all_problems_reported_at_once() -> None:
    """Several bad variables fail once, listing each; the field is the first one."""
    with pytest.raises(AgentConfigError) as info:
        AgentConfig.from_env(
            {
                "AGENT_PROVIDER": "azure",
                "AGENT_VOICE": "bad voice",
                "AGENT_VAD_THRESHOLD": "2",
                "AGENT_ARCHITECTURE": "nope",
            }
        )
    variables = [variable for variable, _ in info.value.problems]
    assert variables == [
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_DEPLOYMENT",
        "AZURE_OPENAI_API_KEY",
        "AGENT_VOICE",
        "AGENT_ARCHITECTURE",
        "AGENT_VAD_THRESHOLD",
    ]
    assert info.value.field == "AZURE_OPENAI_ENDPOINT"
    lines = str(info.value).splitlines()
    assert [line.split(":", 1)[0] for line in lines] == variables


def test_unparsable_value_is_reported_once() -> None:
    """A value that fails to parse is not reported again by the field checks."""
    with pytest.raises(AgentConfigError) as info:
        AgentConfig.from_env({**OPENAI, "AGENT_VAD_SILENCE_DURATION_MS": "soon"})
    assert [v for v, _ in info.value.problems] == ["AGENT_VAD_SILENCE_DURATION_MS"]


def test_livekit_variables_checked_only_when_required() -> None:
    """LIVEKIT_* are required for `start` only, and named when missing or malformed."""
    assert AgentConfig.from_env(OPENAI).provider == "openai"
    assert AgentConfig.from_env({**OPENAI, **LIVEKIT}, require_livekit=True)
    with pytest.raises(AgentConfigError) as info:
        AgentConfig.from_env({**OPENAI, "LIVEKIT_URL": "lk.example.com"}, require_livekit=True)
    assert [v for v, _ in info.value.problems] == [
        "LIVEKIT_URL",
        "LIVEKIT_API_KEY",
        "LIVEKIT_API_SECRET",
    ]


def test_secrets_never_shown() -> None:
    """Keys, tokens and the LiveKit secret appear in no repr, str, redacted view or error."""
    configs = [
        AgentConfig.from_env({**OPENAI, **LIVEKIT}, require_livekit=True),
        AgentConfig.from_env(AZURE_LEGACY),
        AgentConfig.from_env(
            {
                **{k: v for k, v in AZURE_GA.items() if k != "AZURE_OPENAI_API_KEY"},
                "AZURE_OPENAI_AD_TOKEN": AD_TOKEN,
            }
        ),
    ]
    for cfg in configs:
        shown = repr(cfg) + str(cfg) + repr(cfg.redacted())
        for secret in SECRETS:
            assert secret not in shown
    assert configs[0].redacted()["openai_api_key"] == "<set>"
    assert configs[0].redacted()["azure_api_key"] is None

    bad_envs = [
        {**AZURE_GA, "AZURE_OPENAI_ENDPOINT": "nope", "OPENAI_API_KEY": OPENAI_KEY},
        {
            **{k: v for k, v in AZURE_GA.items() if k != "AZURE_OPENAI_API_KEY"},
            "AZURE_OPENAI_AD_TOKEN": AD_TOKEN,
            "OPENAI_API_KEY": OPENAI_KEY,
            "AGENT_VOICE": "bad voice",
        },
        {**OPENAI, **LIVEKIT, "LIVEKIT_URL": "", "AGENT_PROVIDER": "x"},
    ]
    for env in bad_envs:
        with pytest.raises(ConfigError) as info:
            AgentConfig.from_env(env, require_livekit=True)
        for secret in SECRETS:
            assert secret not in str(info.value)
            assert secret not in repr(info.value)


def test_endpoint_with_credentials_is_refused_without_echo() -> None:
    """An endpoint carrying user info fails and the message does not repeat it."""
    env = {**AZURE_GA, "AZURE_OPENAI_ENDPOINT": "https://user:pw-SECRET@res.openai.azure.com"}
    with pytest.raises(ConfigError) as info:
        AgentConfig.from_env(env)
    assert info.value.field == "AZURE_OPENAI_ENDPOINT"
    assert "pw-SECRET" not in str(info.value)


def test_direct_construction_validates_by_field() -> None:
    """Building AgentConfig in code is validated too, naming the field."""
    with pytest.raises(AgentConfigError) as info:
        AgentConfig(openai_api_key=OPENAI_KEY, vad_threshold=0.0, voice="")
    assert [f for f, _ in info.value.problems] == ["voice", "vad_threshold"]
    assert AgentConfig(openai_api_key="chaos").provider == "openai"


def test_frozen() -> None:
    """The config cannot be changed after validation."""
    cfg = AgentConfig.from_env(OPENAI)
    with pytest.raises(AttributeError):
        cfg.voice = "marin"  # type: ignore[misc]
