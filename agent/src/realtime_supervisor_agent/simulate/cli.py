"""`realtime-supervisor simulate`: the argument parser, logging, and the exit status."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from realtime_supervisor._cli import Parser, count, port, seconds
from realtime_supervisor.config import WatchdogConfig
from realtime_supervisor.errors import ConfigError

from .call import process_metrics
from .options import MODES, Mode, SimulateOptions, agent_config, openai_base
from .run import Summary, metrics_endpoint
from .view import render_summaries, run_with_view, summary_title

__all__ = ["build_parser", "exit_status", "main", "options_from_args", "preflight"]


def build_parser() -> argparse.ArgumentParser:
    """The `realtime-supervisor simulate` argument parser."""
    p = Parser(
        prog="realtime-supervisor simulate",
        description="Run N supervised voice calls against the chaos server (or a Realtime "
        "endpoint) and summarise what the callers heard.",
    )
    p.add_argument("--sessions", type=count, default=4, help="concurrent calls (default 4)")
    p.add_argument("--turns", type=count, default=6, help="caller turns per call (default 6)")
    p.add_argument(
        "--faults",
        default=None,
        help="chaos schedule for the embedded server (default clean), e.g. "
        "clean,multi_message,stall_mid,drop_mid,no_response",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for random:P faults (default 0)")
    modes = p.add_mutually_exclusive_group()
    modes.add_argument(
        "--mode", choices=MODES, default=None, help="watchdog (default), none, or timer"
    )
    modes.add_argument(
        "--no-watchdog", action="store_true", help="the same run unsupervised (--mode none)"
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="run unsupervised, then with --mode (default watchdog), and print both",
    )
    p.add_argument(
        "--patience",
        type=seconds(),
        default=15.0,
        help="seconds of silence before the caller speaks again (default 15)",
    )
    p.add_argument(
        "--reply-seconds",
        type=seconds(),
        default=None,
        help="chaos server answer length (default 1.0); remote: the answer length to expect",
    )
    p.add_argument(
        "--timer-seconds",
        type=seconds(),
        default=5.0,
        help="--mode timer: seconds without agent audio before generate_reply (default 5)",
    )
    remote = p.add_mutually_exclusive_group()
    remote.add_argument("--realtime-url", help="an OpenAI-style Realtime URL (ws/wss/http/https)")
    remote.add_argument("--azure-endpoint", help="an Azure OpenAI endpoint (http/https)")
    p.add_argument("--azure-deployment", help="the Azure realtime deployment")
    p.add_argument(
        "--api-version", help="Azure api-version (the legacy path), e.g. 2024-10-01-preview"
    )
    p.add_argument(
        "--api-key",
        default="sk-simulate-{i}",
        help="API key per call; {i} is the call index (default sk-simulate-{i})",
    )
    p.add_argument("--model", default="gpt-realtime", help="model name (default gpt-realtime)")
    p.add_argument("--metrics-port", type=port, default=None, help="serve /metrics on this port")
    p.add_argument(
        "--metrics-host", default="127.0.0.1", help="metrics address (default 127.0.0.1)"
    )
    p.add_argument(
        "--hold",
        type=seconds(zero=True),
        default=0.0,
        help="keep /metrics up this long after the run (default 0)",
    )
    p.add_argument("--json", dest="json_path", default=None, help="write the summary here")
    p.add_argument(
        "--noise",
        type=seconds(),
        default=None,
        help="the caller makes a short loud noise this many seconds into each reply, and one in "
        "the silence before its next turn (default: never)",
    )
    p.add_argument(
        "--hold-cue",
        default="off",
        help="the supervised agent plays this while it recovers: off, chime or a PCM16 mono "
        ".wav path (default off); per-turn details then show first_sound_seconds",
    )
    p.add_argument(
        "--fallback",
        action="store_true",
        help="give the session a fallback model: a second, clean chaos server, joined to the "
        "primary by livekit's RealtimeModelFallbackAdapter as the worker does with "
        "AGENT_FALLBACK_* (embedded server, livekit 1.8+)",
    )
    p.add_argument(
        "--log-level",
        default=None,
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        help="show livekit's and the watchdog's logs on stderr at this level "
        "(default: INFO and above to the log file, none on screen)",
    )
    p.add_argument(
        "--log-file",
        default=None,
        help="write the logs here (default: a new file in the temporary directory, named at the "
        "end of the run)",
    )
    return p


def options_from_args(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> list[SimulateOptions]:
    """The runs the arguments ask for (two with --compare); ConfigError names the flag."""
    watchdog = WatchdogConfig.from_env(env)
    remote = args.realtime_url is not None or args.azure_endpoint is not None
    if remote and args.faults is not None:
        raise ConfigError("--faults", "applies only to the embedded chaos server")
    mode: Mode = "none" if args.no_watchdog else (args.mode or "watchdog")
    if args.compare and mode == "none":
        raise ConfigError("--compare", "compares none with --mode watchdog or timer")
    if not args.metrics_host.strip():
        raise ConfigError("--metrics-host", "expected a host name or address")
    if args.hold and args.metrics_port is None:
        raise ConfigError("--hold", "applies only with --metrics-port")
    reply: float | None = args.reply_seconds
    if reply is None and not remote:
        reply = 1.0
    base = SimulateOptions(
        sessions=args.sessions,
        turns=args.turns,
        mode=mode,
        faults=args.faults or "clean",
        seed=args.seed,
        patience=args.patience,
        reply_seconds=reply,
        realtime_url=args.realtime_url,
        azure_endpoint=args.azure_endpoint,
        azure_deployment=args.azure_deployment,
        api_version=args.api_version,
        api_key=args.api_key,
        model=args.model,
        watchdog=watchdog,
        timer_seconds=args.timer_seconds,
        noise=args.noise,
        hold_cue=args.hold_cue,
        fallback=args.fallback,
    )
    if args.compare:
        return [dataclasses.replace(base, mode="none"), base]
    return [base]


def preflight(options: SimulateOptions) -> None:
    """Build one session's model (no network) so a conflicting environment fails before a run."""
    from realtime_supervisor_agent.models import build_realtime_model

    url = options.realtime_url or ("ws://127.0.0.1:1/v1" if options.embedded else None)
    model = build_realtime_model(
        agent_config(options, options.api_key.format(i=0)),
        base_url=openai_base(url) if url is not None else None,
    )
    del model


def _log_path(args: argparse.Namespace) -> str | None:
    """Where the logs go: None for stderr (`--log-level`), else the file (`--log-file` or new)."""
    if args.log_file is not None:
        return str(args.log_file)
    if args.log_level is not None:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"realtime-supervisor-simulate-{stamp}-{os.getpid()}.log"
    return os.path.join(tempfile.gettempdir(), name)


def _configure_logging(
    level: str | None, path: str | None, runs: Sequence[SimulateOptions]
) -> TextIO:
    """livekit's and our logs, keys scrubbed: to `path` (INFO and above unless `level` says),
    or to stderr at `level`. stdout carries only the start line, the view and the table."""
    from realtime_supervisor.logs import configure_logging, secrets_from_env

    stream: TextIO = sys.stderr if path is None else open(path, "a", encoding="utf-8")  # noqa: SIM115
    name = level or "INFO"
    keys = {o.api_key.format(i=i) for o in runs for i in range(o.sessions)}
    configure_logging(
        format="console", level=name, stream=stream, secrets=[*secrets_from_env(), *keys]
    )
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    for h in root.handlers:
        h.setLevel(name)
    # livekit's loggers at WARNING at least, so its lost-reply warnings reach the capture
    root.setLevel(min(logging.getLevelName(name), logging.WARNING))
    # Python's warnings and asyncio's unretrieved task errors are records too: not on screen
    logging.captureWarnings(True)
    return stream


def _start_line(runs: Sequence[SimulateOptions], path: str | None) -> str:
    o = runs[-1]
    where = (
        f"the embedded chaos server (faults {o.faults}, seed {o.seed})"
        if o.embedded
        else f"the {o.provider} endpoint"
    )
    modes = " then ".join("unsupervised" if r.mode == "none" else r.mode for r in runs)
    logs = f"logs in {path}" if path is not None else "logs on stderr"
    return f"simulate: {o.sessions} calls x {o.turns} turns against {where}, {modes}; {logs}"


def exit_status(summaries: Sequence[Summary]) -> tuple[int, str | None]:
    """1 when a call crashed or a supervised turn went unanswered (with the reason), else 0.

    An unsupervised run's unanswered turns are what it is there to show (`--compare`).
    """
    crashed = sum(s.sessions_crashed for s in summaries)
    if crashed:
        return 1, f"{crashed} call(s) crashed (see the logs)"
    for s in summaries:
        if s.mode != "none" and s.turns_unanswered:
            return 1, f"{s.turns_unanswered} turn(s) unanswered with mode {s.mode}"
    return 0, None


async def _main_async(
    runs: Sequence[SimulateOptions], args: argparse.Namespace, log_path: str | None
) -> int:
    from rich.console import Console

    console = Console()
    live = sys.stdout.isatty()
    summaries: list[Summary] = []
    async with contextlib.AsyncExitStack() as stack:
        if args.metrics_port is not None:
            process_metrics()  # the series exist from the first scrape on
            try:
                url = await stack.enter_async_context(
                    metrics_endpoint(args.metrics_host, args.metrics_port)
                )
            except OSError as exc:
                print(
                    f"realtime-supervisor simulate: error: argument --metrics-port: cannot bind "
                    f"{args.metrics_host}:{args.metrics_port}: {exc.strerror or exc}",
                    file=sys.stderr,
                )
                return 2
            print(f"metrics on {url}", file=sys.stderr, flush=True)
        print(_start_line(runs, log_path), flush=True)
        for options in runs:
            summaries.append(await run_with_view(options, console, live))
        console.print(summary_title(summaries[0]), highlight=False, soft_wrap=True)
        console.print(render_summaries(summaries))
        if args.json_path is not None:
            if len(summaries) == 1:
                doc: dict[str, Any] = summaries[0].to_dict()
            else:
                doc = {"compare": True, **{s.mode: s.to_dict() for s in summaries}}
            text = json.dumps(doc, indent=2) + "\n"
            await asyncio.to_thread(_write, args.json_path, text)
        if args.metrics_port is not None and args.hold > 0:
            print(f"holding /metrics for {args.hold:g} s", file=sys.stderr, flush=True)
            await asyncio.sleep(args.hold)
    code, reason = exit_status(summaries)
    if log_path is not None:
        print(f"logs: {log_path}", flush=True)
    if reason is not None:
        print(f"simulate: {reason}; exit status {code}", flush=True)
    return code


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    """`realtime-supervisor simulate ...`: the exit status (2 for bad flags or environment)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        runs = options_from_args(args, os.environ)
    except ConfigError as exc:
        flag = exc.field
        message = str(exc).removeprefix(f"{flag}: ")
        where = f"argument {flag}" if flag.startswith("--") else f"environment {flag}"
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {where}: {message}", file=sys.stderr)
        return 2
    if args.json_path is not None:
        directory = os.path.dirname(os.path.abspath(args.json_path))
        if not os.path.isdir(directory):
            parser.error(f"argument --json: no such directory: {directory}")
    try:
        preflight(runs[-1])
    except ConfigError as exc:
        # livekit's plugin reads some variables itself (agent/models.py refuses a conflict)
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: environment {exc}", file=sys.stderr)
        return 2
    log_path = _log_path(args)
    try:
        stream = _configure_logging(args.log_level, log_path, runs)
    except OSError as exc:
        parser.error(f"argument --log-file: cannot write {log_path}: {exc.strerror or exc}")
    try:
        return asyncio.run(_main_async(runs, args, log_path))
    except KeyboardInterrupt:
        return 130
    finally:
        logging.shutdown()
        if stream is not sys.stderr:
            stream.close()
