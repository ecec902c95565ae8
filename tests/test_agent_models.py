"""agent.models: the real livekit models built from AgentConfig, on livekit-agents 1.8 and 1.5."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.agents import AgentSession
from livekit.agents import stt as lk_stt
from livekit.plugins import openai as lk_openai
from livekit.plugins.openai.realtime import realtime_model as plugin_module
from openai.types.realtime.realtime_audio_input_turn_detection import SemanticVad, ServerVad

from realtime_supervisor.errors import ConfigError
from realtime_supervisor_agent import models
from realtime_supervisor_agent.config import AgentConfig

OPENAI = {"AGENT_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test"}
AZURE_GA = {
    "AGENT_PROVIDER": "azure",
    "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com/",
    "AZURE_OPENAI_DEPLOYMENT": "my-realtime",
    "AZURE_OPENAI_API_KEY": "azure-key",
}
AZURE_LEGACY = {**AZURE_GA, "OPENAI_API_VERSION": "2024-10-01-preview"}
AZURE_ENTRA = {
    **{k: v for k, v in AZURE_GA.items() if k != "AZURE_OPENAI_API_KEY"},
    "AZURE_OPENAI_AD_TOKEN": "entra-token",
}
# Read by the plugin itself when an argument is None: keep the test process clean of them.
PLUGIN_ENV = (
    "OPENAI_API_VERSION",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_AD_TOKEN",
)


@pytest.fixture(autouse=True)
def _clean_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)


def cfg(env: dict[str, str], **overrides: str) -> AgentConfig:
    return AgentConfig.from_env({**env, **overrides})


def ws_url(model: Any) -> str:
    """The URL the plugin would connect to, computed by its own helper from its own options."""
    opts = model._opts
    url: str = plugin_module.process_base_url(
        opts.base_url,
        opts.model,
        is_azure=opts.is_azure,
        azure_deployment=opts.azure_deployment,
        api_version=opts.api_version,
    )
    return url


@pytest.mark.compat
def test_openai_realtime_model() -> None:
    """OpenAI: the model, voice, VAD, noise reduction and input transcription reach the plugin."""
    model = models.build_realtime_model(cfg(OPENAI, AGENT_VOICE="marin"))
    assert isinstance(model, lk_openai.realtime.RealtimeModel)
    opts = model._opts
    assert ws_url(model) == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert not opts.is_azure
    assert opts.api_key == "sk-test"
    assert opts.model == "gpt-realtime"
    assert opts.voice == "marin"
    assert opts.modalities == ["audio"]
    assert opts.turn_detection == ServerVad(
        type="server_vad",
        threshold=0.5,
        prefix_padding_ms=300,
        silence_duration_ms=500,
        create_response=True,
        interrupt_response=True,
    )
    assert opts.input_audio_noise_reduction is not None
    assert opts.input_audio_noise_reduction.type == "near_field"
    assert opts.input_audio_transcription is not None
    assert opts.input_audio_transcription.model == "gpt-4o-mini-transcribe"
    assert model.capabilities.user_transcription
    assert model.capabilities.turn_detection


@pytest.mark.compat
def test_semantic_vad_and_no_noise_reduction() -> None:
    """semantic_vad carries its eagerness; noise reduction off sends none."""
    model = models.build_realtime_model(
        cfg(
            OPENAI,
            AGENT_TURN_DETECTION="semantic_vad",
            AGENT_SEMANTIC_EAGERNESS="high",
            AGENT_NOISE_REDUCTION="off",
            AGENT_MODALITIES="audio,text",
        )
    )
    assert model._opts.turn_detection == SemanticVad(
        type="semantic_vad", eagerness="high", create_response=True, interrupt_response=True
    )
    assert model._opts.input_audio_noise_reduction is None
    assert model._opts.modalities == ["text", "audio"]


@pytest.mark.compat
def test_openai_base_url_override() -> None:
    """base_url (the chaos server) replaces OpenAI's URL."""
    model = models.build_realtime_model(cfg(OPENAI), base_url="ws://127.0.0.1:8765/v1")
    assert ws_url(model) == "ws://127.0.0.1:8765/v1/realtime?model=gpt-realtime"


@pytest.mark.compat
def test_azure_legacy_url() -> None:
    """Azure with OPENAI_API_VERSION uses the legacy path with api-version and deployment."""
    model = models.build_realtime_model(cfg(AZURE_LEGACY, AGENT_NOISE_REDUCTION="far_field"))
    opts = model._opts
    assert opts.is_azure
    assert ws_url(model) == (
        "wss://res.openai.azure.com/openai/realtime"
        "?api-version=2024-10-01-preview&deployment=my-realtime"
    )
    assert opts.api_key == "azure-key"
    assert opts.entra_token is None
    # explicit settings, not with_azure's Azure defaults (server_vad 200 ms, whisper-1)
    assert isinstance(opts.turn_detection, ServerVad)
    assert opts.turn_detection.silence_duration_ms == 500
    assert opts.input_audio_transcription.model == "gpt-4o-mini-transcribe"
    assert opts.input_audio_noise_reduction.type == "far_field"


@pytest.mark.compat
def test_azure_ga_url_with_entra_token() -> None:
    """Azure without an api-version uses the GA path; an Entra token is the only credential."""
    model = models.build_realtime_model(cfg(AZURE_ENTRA))
    opts = model._opts
    assert ws_url(model) == "wss://res.openai.azure.com/openai/v1/realtime?model=my-realtime"
    assert opts.entra_token == "entra-token"
    assert opts.api_key is None


@pytest.mark.compat
def test_azure_base_url_override() -> None:
    """base_url replaces the Azure endpoint (the caller includes /openai)."""
    model = models.build_realtime_model(cfg(AZURE_LEGACY), base_url="http://127.0.0.1:9/openai")
    assert ws_url(model) == (
        "ws://127.0.0.1:9/openai/realtime?api-version=2024-10-01-preview&deployment=my-realtime"
    )


@pytest.mark.compat
def test_realtime_stt_turns_model_transcription_off() -> None:
    """realtime_stt builds the realtime model without its own input transcription."""
    model = models.build_realtime_model(cfg(OPENAI, AGENT_ARCHITECTURE="realtime_stt"))
    assert model._opts.input_audio_transcription is None
    assert not model.capabilities.user_transcription
    # the realtime model still ends turns with its server VAD
    assert model.capabilities.turn_detection


@pytest.mark.compat
def test_openai_stt_is_streaming() -> None:
    """On OpenAI the separate transcription model is the plugin's streaming STT."""
    stt = models.build_stt(cfg(OPENAI, AGENT_ARCHITECTURE="realtime_stt"))
    assert isinstance(stt, lk_openai.STT)
    assert stt.capabilities.streaming
    assert stt.model == "gpt-4o-mini-transcribe"
    assert models.build_stt(cfg(OPENAI)) is None


def test_azure_stt_is_adapted_rest_on_1_8() -> None:
    """On Azure (1.8) the REST transcription model is wrapped with the bundled local VAD."""
    stt = models.build_stt(cfg(AZURE_LEGACY, AGENT_ARCHITECTURE="realtime_stt"))
    assert isinstance(stt, lk_stt.StreamAdapter)
    assert stt.capabilities.streaming
    inner = stt.wrapped_stt
    assert isinstance(inner, lk_openai.STT)
    assert not inner.capabilities.streaming
    client = inner._client
    # the transcription deployment, and an api-version new enough for gpt-4o-mini-transcribe
    assert "/openai/deployments/gpt-4o-mini-transcribe" in str(client.base_url)
    assert client._api_version == models.STT_AZURE_API_VERSION


@pytest.mark.compat
def test_azure_stt_needs_a_local_vad() -> None:
    """On Azure, realtime_stt needs a local VAD: bundled on 1.8, a clear ConfigError without one."""
    config = cfg(AZURE_GA, AGENT_ARCHITECTURE="realtime_stt")
    try:
        from livekit.agents.inference import VAD  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError) as info:
            models.build_stt(config)
        assert info.value.field == "AGENT_ARCHITECTURE"
        assert "livekit-plugins-silero" in str(info.value)
    else:
        assert isinstance(models.build_stt(config), lk_stt.StreamAdapter)


@pytest.mark.compat
@pytest.mark.parametrize(
    ("env", "architecture"),
    [(OPENAI, "realtime"), (OPENAI, "realtime_stt"), (AZURE_LEGACY, "realtime")],
)
async def test_session_kwargs_build_an_agent_session(
    env: dict[str, str], architecture: str
) -> None:
    """session_kwargs are accepted by AgentSession; turns stay with the server VAD."""
    kwargs = models.session_kwargs(cfg(env, AGENT_ARCHITECTURE=architecture))
    assert kwargs["vad"] is None
    assert kwargs["turn_handling"] == {"turn_detection": "realtime_llm"}
    assert ("stt" in kwargs) == (architecture == "realtime_stt")
    session: AgentSession[Any] = AgentSession(**kwargs)
    assert session.llm is kwargs["llm"]
    assert session.stt is kwargs.get("stt")
    assert session.vad is None
    assert session.turn_detection == "realtime_llm"


@pytest.mark.compat
def test_session_kwargs_use_a_given_model() -> None:
    """A prebuilt (possibly wrapped) model is used as given."""
    config = cfg(OPENAI)
    model = models.build_realtime_model(config)
    assert models.session_kwargs(config, llm=model)["llm"] is model


@pytest.mark.compat
def test_session_kwargs_refuse_a_transcribing_model_for_realtime_stt() -> None:
    """realtime_stt with a model that transcribes itself fails: livekit would drop the STT text."""
    transcribing = models.build_realtime_model(cfg(OPENAI))
    with pytest.raises(ConfigError) as info:
        models.session_kwargs(cfg(OPENAI, AGENT_ARCHITECTURE="realtime_stt"), llm=transcribing)
    assert info.value.field == "AGENT_ARCHITECTURE"


@pytest.mark.compat
def test_process_api_version_switches_plugin_to_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Canary: the plugin reads OPENAI_API_VERSION from the process, which the guard exists for."""
    monkeypatch.setenv("OPENAI_API_VERSION", "")
    with pytest.raises(ValueError, match="Azure endpoint"):
        lk_openai.realtime.RealtimeModel(api_key="sk-test")


@pytest.mark.compat
@pytest.mark.parametrize(
    ("env", "environ", "variable"),
    [
        (OPENAI, {"OPENAI_API_VERSION": ""}, "OPENAI_API_VERSION"),
        (AZURE_GA, {"OPENAI_API_VERSION": "2024-10-01-preview"}, "OPENAI_API_VERSION"),
        (AZURE_ENTRA, {"OPENAI_API_KEY": "sk-other"}, "OPENAI_API_KEY"),
        (AZURE_ENTRA, {"AZURE_OPENAI_API_KEY": "k2"}, "AZURE_OPENAI_API_KEY"),
    ],
)
def test_process_environment_guard(
    env: dict[str, str], environ: dict[str, str], variable: str
) -> None:
    """Variables the plugin would read behind the config's back fail, naming the variable."""
    with pytest.raises(ConfigError) as info:
        models.build_realtime_model(cfg(env), environ=environ)
    assert info.value.field == variable
    assert "sk-other" not in str(info.value)
    assert "k2" not in str(info.value)


@pytest.mark.compat
def test_process_environment_guard_allows_agreeing_values() -> None:
    """The same api-version in the process and the config, or an Azure key, is fine."""
    model = models.build_realtime_model(
        cfg(AZURE_LEGACY),
        environ={"OPENAI_API_VERSION": "2024-10-01-preview", "OPENAI_API_KEY": "sk-other"},
    )
    assert model._opts.api_key == "azure-key"
