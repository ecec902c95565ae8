"""The optional fallback realtime model: a second deployment the watchdog can fail over to.

Configured by environment, all optional; unset `AGENT_FALLBACK_PROVIDER` means no fallback and
behaviour as without this module:

    AGENT_FALLBACK_PROVIDER          openai | azure (set = a fallback is configured)
    AGENT_FALLBACK_MODEL             the model (OpenAI) or label (Azure); default: the primary's
    AGENT_FALLBACK_AZURE_ENDPOINT    Azure: https://NAME.openai.azure.com (another region, say)
    AGENT_FALLBACK_AZURE_DEPLOYMENT  Azure: the deployment
    AGENT_FALLBACK_API_KEY           its key; default: the primary's key for that provider
                                     (OPENAI_API_KEY / AZURE_OPENAI_API_KEY)
    AGENT_FALLBACK_API_VERSION       Azure's legacy api-version path, as OPENAI_API_VERSION

Everything else (voice, instructions, turn detection, architecture) is the primary's: the call
must sound and behave the same on either model, and livekit's adapter requires both to agree on
turn detection and audio output. The fallback is validated as a whole AgentConfig, and its
problems are reported under the AGENT_FALLBACK_* names.

On livekit-agents 1.8 `models.build_llm` wraps both in `RealtimeModelFallbackAdapter`; the
watchdog's failover rung switches to it with `restart_session(switch_model=True)`, keeping the
conversation. livekit 1.5 has no adapter: the fallback is then refused at start (the worker
would otherwise believe in a failover that cannot happen).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from realtime_supervisor.errors import ConfigError
from realtime_supervisor_agent.config import PROVIDERS, AgentConfig, AgentConfigError

__all__ = ["FALLBACK_VARIABLES", "fallback_from_env", "has_fallback_adapter"]

FALLBACK_VARIABLES: dict[str, str] = {
    "provider": "AGENT_FALLBACK_PROVIDER",
    "model": "AGENT_FALLBACK_MODEL",
    "azure_endpoint": "AGENT_FALLBACK_AZURE_ENDPOINT",
    "azure_deployment": "AGENT_FALLBACK_AZURE_DEPLOYMENT",
    "api_key": "AGENT_FALLBACK_API_KEY",
    "api_version": "AGENT_FALLBACK_API_VERSION",
}
# AgentConfig's field -> the fallback variable its problems are reported under
_FIELD_VARIABLE = {
    "provider": "AGENT_FALLBACK_PROVIDER",
    "model": "AGENT_FALLBACK_MODEL",
    "azure_endpoint": "AGENT_FALLBACK_AZURE_ENDPOINT",
    "azure_deployment": "AGENT_FALLBACK_AZURE_DEPLOYMENT",
    "openai_api_key": "AGENT_FALLBACK_API_KEY",
    "azure_api_key": "AGENT_FALLBACK_API_KEY",
    "azure_ad_token": "AGENT_FALLBACK_API_KEY",
    "api_version": "AGENT_FALLBACK_API_VERSION",
}


def has_fallback_adapter() -> bool:
    """This livekit-agents has `RealtimeModelFallbackAdapter` (1.8; not 1.5)."""
    try:
        from livekit.agents.llm import RealtimeModelFallbackAdapter  # noqa: F401
    except ImportError:
        return False
    return True


def fallback_from_env(
    primary: AgentConfig, env: Mapping[str, str] | None = None
) -> AgentConfig | None:
    """The fallback model's settings from AGENT_FALLBACK_* (default os.environ), or None.

    Raises ConfigError naming the AGENT_FALLBACK_* variable when the fallback is incomplete or
    wrong, or when this livekit-agents cannot fail over at all.
    """
    source: Mapping[str, str] = os.environ if env is None else env
    raw = {k: (source.get(v) or "").strip() for k, v in FALLBACK_VARIABLES.items()}
    if not raw["provider"]:
        others = [FALLBACK_VARIABLES[k] for k, v in raw.items() if v and k != "provider"]
        if others:
            raise ConfigError(
                others[0], "applies only with AGENT_FALLBACK_PROVIDER set (openai or azure)"
            )
        return None
    provider = raw["provider"].lower()
    if provider not in PROVIDERS:
        raise ConfigError(
            "AGENT_FALLBACK_PROVIDER", f"expected one of {', '.join(PROVIDERS)}, got {provider!r}"
        )
    if not has_fallback_adapter():
        import livekit.agents as lk

        raise ConfigError(
            "AGENT_FALLBACK_PROVIDER",
            f"livekit-agents {lk.__version__} has no RealtimeModelFallbackAdapter (1.8+): "
            "a fallback model cannot be used; unset it",
        )
    changes: dict[str, Any] = {"provider": provider}
    if raw["model"]:
        changes["model"] = raw["model"]
    changes["api_version"] = raw["api_version"] or None
    if provider == "azure":
        changes["azure_endpoint"] = raw["azure_endpoint"] or None
        changes["azure_deployment"] = raw["azure_deployment"] or None
        changes["azure_api_key"] = raw["api_key"] or source.get("AZURE_OPENAI_API_KEY") or None
        changes["azure_ad_token"] = None if raw["api_key"] else primary.azure_ad_token
    else:
        for name in ("azure_endpoint", "azure_deployment"):
            if raw[name]:
                raise ConfigError(
                    FALLBACK_VARIABLES[name], "applies only to AGENT_FALLBACK_PROVIDER=azure"
                )
        changes["openai_api_key"] = raw["api_key"] or source.get("OPENAI_API_KEY") or None
    try:
        return dataclasses.replace(primary, **changes)
    except AgentConfigError as exc:
        problems = [(_FIELD_VARIABLE.get(name, name), text) for name, text in exc.problems]
        # the primary's variables named inside a message are the fallback's here
        problems = [
            (variable, text.replace("AGENT_PROVIDER", "AGENT_FALLBACK_PROVIDER"))
            for variable, text in problems
        ]
        first, message = problems[0]
        rest = "".join(f"\n{name}: {text}" for name, text in problems[1:])
        raise ConfigError(first, message + rest) from exc
