"""`simulate`: many supervised voice calls in one process, against a fake (or real) Realtime server.

Each session is a real `AgentSession` with the real livekit OpenAI plugin. Its microphone is a
`ScriptedCaller` (tone bursts a server's voice detection hears as a person taking turns) and its
speaker a `RecordingAudioOutput` (plays in real time and records what was heard). By default the
server is an embedded `ChaosServer` injecting the `--faults` schedule; `--realtime-url` or
`--azure-endpoint` point the same calls at any Realtime endpoint.

The caller behaves like a person:
1. It speaks for 0.6 s; the turn ends when it stops speaking.
2. It then listens. A turn is answered when a whole answer has played at the output: against the
   chaos server, `reply_seconds` of one response's answer tone (440 Hz) in one playback segment
   (a preamble alone, 660 Hz, does not answer); against another server, the whole audio of a
   response that completed, played to its end (`judge` has the rules).
3. Once answered it waits for the reply to finish playing, pauses briefly, and takes the next turn.
   When it hears nothing for `patience` seconds it gives up on the turn and speaks again.

Modes: `watchdog` (the Supervisor attached), `none` (the same run unsupervised) and `timer` (the
hand-written timer a user would write instead, `baseline.HandWrittenTimer`). `run(options)` is
the library entry point; `main(argv)` the CLI behind `realtime-supervisor simulate`.

The rooms: `options` (what a run is asked), `caller` (the person on the line), `judge` (what was
heard, measured: pure), `call` (one call: the shared assembly and its taps), `run` (N calls and
the summary), `view` (live view and final table), `cli` (flags, logging, exit status).
"""

from __future__ import annotations

from ..baseline import HandWrittenTimer
from .call import process_metrics
from .caller import TurnRecord
from .cli import build_parser, main, options_from_args, preflight
from .judge import Stats
from .options import MODES, Mode, SimulateOptions
from .run import RunState, Summary, metrics_endpoint, run
from .view import render_summaries, summary_title

__all__ = [
    "MODES",
    "HandWrittenTimer",
    "Mode",
    "RunState",
    "SimulateOptions",
    "Stats",
    "Summary",
    "TurnRecord",
    "build_parser",
    "main",
    "metrics_endpoint",
    "options_from_args",
    "preflight",
    "process_metrics",
    "render_summaries",
    "run",
    "summary_title",
]
