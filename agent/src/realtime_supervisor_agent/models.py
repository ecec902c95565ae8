"""Build livekit's realtime model, the optional transcription model and the AgentSession kwargs.

Works on livekit-agents 1.8.x (engine in `livekit/agents/llm/_realtime/openai.py`, re-exported by
the plugin) and 1.5.x (engine in `livekit/plugins/openai/realtime/realtime_model.py`): both take
the same constructor arguments for what we set, and both accept the openai SDK's GA types
(`openai.types.realtime`), which they keep as is (`to_turn_detection`, `to_audio_transcription`).
Nothing here connects: constructing a RealtimeModel or an STT opens no socket.

Architectures (what livekit does with each is verified in README "Realtime vs realtime_stt"):
- realtime: `llm=` the realtime model, which also transcribes the caller
  (`input_audio_transcription`).
- realtime_stt: `llm=` the realtime model with its own transcription off, `stt=` a separate
  transcription model. The realtime model still hears the caller's audio and the server VAD still
  ends turns; the STT only writes the caller's transcript.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from livekit.agents import NOT_GIVEN
from livekit.agents import stt as lk_stt
from livekit.agents import vad as lk_vad
from livekit.plugins import openai as lk_openai
from livekit.plugins.openai import realtime as oai_realtime
from openai.types.realtime import AudioTranscription
from openai.types.realtime.realtime_audio_input_turn_detection import SemanticVad, ServerVad

from realtime_supervisor.errors import ConfigError
from realtime_supervisor_agent.config import AgentConfig

__all__ = [
    "STT_AZURE_API_VERSION",
    "build_llm",
    "build_realtime_model",
    "build_stt",
    "session_kwargs",
    "turn_detection_options",
]

# Azure's transcriptions endpoint serves the gpt-4o(-mini)-transcribe models from this api-version
# on; the realtime path's older version (2024-10-01-preview in the original report) is too old.
STT_AZURE_API_VERSION = "2025-03-01-preview"


def turn_detection_options(cfg: AgentConfig) -> ServerVad | SemanticVad:
    """The server-side turn detection, explicit so neither plugin applies its own defaults.

    Explicit also matters on 1.8: a model built without `turn_detection` lets AgentSession switch
    the server VAD off when a local VAD is configured (`can_disable_turn_detection`).
    """
    if cfg.turn_detection == "semantic_vad":
        return SemanticVad(
            type="semantic_vad",
            eagerness=cfg.semantic_eagerness,
            create_response=True,
            interrupt_response=True,
        )
    return ServerVad(
        type="server_vad",
        threshold=cfg.vad_threshold,
        prefix_padding_ms=cfg.vad_prefix_padding_ms,
        silence_duration_ms=cfg.vad_silence_duration_ms,
        create_response=True,
        interrupt_response=True,
    )


def build_realtime_model(
    cfg: AgentConfig,
    *,
    base_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> oai_realtime.RealtimeModel:
    """Construct the livekit RealtimeModel for `cfg` (no network).

    `base_url` replaces the provider's URL (the chaos server); on Azure it replaces the endpoint
    (`.../openai` is then the caller's to include). `environ` (default os.environ) is checked for
    variables livekit's plugin reads behind our back (see `_plugin_environment_problems`).
    """
    _check_plugin_environment(cfg, os.environ if environ is None else environ)
    common: dict[str, Any] = {
        "voice": cfg.voice,
        "modalities": list(cfg.modalities),
        "turn_detection": turn_detection_options(cfg),
        # A plain NoiseReductionType literal: the only form both constructors and both versions
        # type-accept (with_azure does not list the GA NoiseReduction model).
        "input_audio_noise_reduction": None
        if cfg.noise_reduction == "off"
        else cfg.noise_reduction,
        # None turns the model's own transcription off: with an STT beside it, livekit would
        # otherwise drop every STT transcript (AgentActivity.on_final_transcript returns early
        # while the model's `user_transcription` capability is on).
        "input_audio_transcription": (
            AudioTranscription(model=cfg.transcription_model)
            if cfg.architecture == "realtime"
            else None
        ),
    }
    if cfg.provider == "azure":
        assert cfg.azure_deployment is not None  # guaranteed by AgentConfig
        azure: dict[str, Any] = {
            "azure_deployment": cfg.azure_deployment,
            "api_key": cfg.azure_api_key,
            "entra_token": cfg.azure_ad_token,
        }
        if base_url is not None:
            azure["base_url"] = base_url
        else:
            azure["azure_endpoint"] = cfg.azure_endpoint
        if cfg.api_version is not None:
            # Goes through **kwargs on both versions (logged as deprecated there).
            azure["api_version"] = cfg.api_version
        return oai_realtime.RealtimeModel.with_azure(**azure, **common)
    openai_kwargs: dict[str, Any] = {"model": cfg.model, "api_key": cfg.openai_api_key}
    if base_url is not None:
        openai_kwargs["base_url"] = base_url
    return oai_realtime.RealtimeModel(**openai_kwargs, **common)


def build_llm(
    cfg: AgentConfig,
    *,
    fallback: AgentConfig | None = None,
    base_url: str | None = None,
    fallback_base_url: str | None = None,
) -> Any:
    """The session's realtime model: `cfg`'s, or on livekit 1.8 with a fallback configured
    (realtime_supervisor_agent.fallback), livekit's `RealtimeModelFallbackAdapter([primary,
    fallback])`, which the watchdog's failover rung switches over keeping the conversation.

    No network. Without a fallback, or on a livekit without the adapter (1.5), the primary alone.
    """
    primary = build_realtime_model(cfg, base_url=base_url)
    if fallback is None:
        return primary
    try:
        from livekit.agents.llm import RealtimeModelFallbackAdapter
    except ImportError:  # 1.5: fallback_from_env refuses the setting; a caller here gets as is
        return primary
    second = build_realtime_model(fallback, base_url=fallback_base_url)
    return RealtimeModelFallbackAdapter([primary, second])


def build_stt(cfg: AgentConfig) -> lk_stt.STT[Any] | None:
    """The separate transcription model for realtime_stt (None for realtime); no network.

    OpenAI: the plugin's streaming STT (`use_realtime=True`, a transcription-only realtime socket
    with its own server VAD), so AgentSession needs no local VAD. Azure: the plugin's streaming
    path cannot reach Azure (it sends `Authorization: Bearer <key>` and no api-version), so the
    REST transcriptions endpoint is used, wrapped in a StreamAdapter whose local VAD only cuts
    the audio into utterances; turns are still the server VAD's.
    """
    if cfg.architecture != "realtime_stt":
        return None
    if cfg.provider == "openai":
        assert cfg.openai_api_key is not None  # guaranteed by AgentConfig
        # detect_language: the plugin's default language is "en"; the realtime model detects.
        return lk_openai.STT(
            model=cfg.transcription_model,
            api_key=cfg.openai_api_key,
            detect_language=True,
            use_realtime=True,
            noise_reduction_type=NOT_GIVEN if cfg.noise_reduction == "off" else cfg.noise_reduction,
        )
    api_version = cfg.api_version
    if api_version is None or api_version < STT_AZURE_API_VERSION:
        api_version = STT_AZURE_API_VERSION
    rest = lk_openai.STT.with_azure(
        model=cfg.transcription_model,
        azure_endpoint=cfg.azure_endpoint,
        # On Azure the transcription model is named by its deployment.
        azure_deployment=cfg.transcription_model,
        api_version=api_version,
        api_key=cfg.azure_api_key,
        azure_ad_token=cfg.azure_ad_token,
        detect_language=True,
        use_realtime=False,
    )
    return lk_stt.StreamAdapter(stt=rest, vad=_local_vad())


def session_kwargs(
    cfg: AgentConfig,
    *,
    llm: Any = None,
    base_url: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `AgentSession(...)` on livekit-agents 1.5 and 1.8.

    `llm`: a model built by `build_realtime_model(cfg)` and possibly wrapped (for example by
    `supervisor.reconnectable`); built here when omitted. `base_url` reaches only the realtime
    model. Turn taking is the realtime model's server VAD in both architectures:
    `vad=None` (1.8 would otherwise load its bundled VAD only to leave it unused) and
    `turn_detection="realtime_llm"` (1.8's default TurnDetector warns without a VAD).
    """
    model = build_realtime_model(cfg, base_url=base_url) if llm is None else llm
    kwargs: dict[str, Any] = {
        "llm": model,
        "vad": None,
        "turn_handling": {"turn_detection": "realtime_llm"},
    }
    if cfg.architecture == "realtime_stt":
        capabilities = getattr(model, "capabilities", None)
        if getattr(capabilities, "user_transcription", False):
            raise ConfigError(
                "AGENT_ARCHITECTURE",
                "realtime_stt needs a realtime model with its own input transcription off "
                "(build it with build_realtime_model(cfg)); "
                "livekit drops STT transcripts otherwise",
            )
        kwargs["stt"] = build_stt(cfg)
    return kwargs


# -- environment livekit's plugin reads itself ---------------------------------------------------


def _plugin_environment_problems(cfg: AgentConfig, environ: Mapping[str, str]) -> list[str]:
    """Variables in the process environment that would make the plugin do other than `cfg` says.

    Both versions read them in RealtimeModel.__init__ / with_azure when an argument is None:
    OPENAI_API_VERSION (present at all, even "", turns on Azure mode), and, when Azure
    authenticates with an Entra token only, AZURE_OPENAI_API_KEY then OPENAI_API_KEY (sent to
    Azure as the api-key header).
    """
    problems: list[str] = []
    version = environ.get("OPENAI_API_VERSION")
    if cfg.provider == "openai" and version is not None:
        problems.append(
            "OPENAI_API_VERSION: set in the process environment; livekit's RealtimeModel reads it "
            "and switches to Azure mode: unset it for AGENT_PROVIDER=openai"
        )
    if cfg.provider == "azure":
        if cfg.api_version is None and version:
            problems.append(
                f"OPENAI_API_VERSION: the process environment has {version!r} but the agent's "
                "config has none; livekit's plugin would take the legacy Azure path: "
                "make them agree"
            )
        if not cfg.azure_api_key:
            for variable in ("AZURE_OPENAI_API_KEY", "OPENAI_API_KEY"):
                if environ.get(variable):
                    problems.append(
                        f"{variable}: set in the process environment while the agent's config "
                        "authenticates with an Entra token only; livekit's plugin would send it "
                        "to Azure as the api-key header: unset it"
                    )
    return problems


def _check_plugin_environment(cfg: AgentConfig, environ: Mapping[str, str]) -> None:
    problems = _plugin_environment_problems(cfg, environ)
    if problems:
        variable, _, message = problems[0].partition(": ")
        rest = "".join(f"\n{p}" for p in problems[1:])
        raise ConfigError(variable, message + rest)


def _local_vad() -> lk_vad.VAD:
    """A local VAD for the Azure STT's StreamAdapter: 1.8 bundles one; 1.5 needs silero."""
    try:
        from livekit.agents.inference import VAD  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        pass
    else:
        vad: lk_vad.VAD = VAD(model="silero")
        return vad
    try:
        from livekit.plugins import silero  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        raise ConfigError(
            "AGENT_ARCHITECTURE",
            "realtime_stt on AGENT_PROVIDER=azure needs a local VAD to cut the caller's audio for "
            "Azure's transcriptions endpoint, and this livekit-agents bundles none: install "
            "livekit-plugins-silero, or use AGENT_ARCHITECTURE=realtime",
        ) from exc
    loaded: lk_vad.VAD = silero.VAD.load()
    return loaded
