"""`python -m realtime_supervisor.chaos`: run the chaos Realtime server until SIGINT or SIGTERM.

python -m realtime_supervisor.chaos --port 8765 --faults "clean,stall_mid=3" --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from realtime_supervisor._cli import Parser, port, seconds
from realtime_supervisor.errors import ConfigError

from .faults import parse_schedule
from .pace import DEFAULT_PACE, parse_pace
from .server import ChaosServer


def _pace(text: str) -> float:
    try:
        return parse_pace(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    p = Parser(prog="realtime-supervisor chaos", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=8765, help="port to bind; 0 = any (default 8765)")
    p.add_argument("--faults", default="clean", help="chaos schedule (default clean)")
    p.add_argument("--seed", type=int, default=0, help="seed for random:P draws (default 0)")
    p.add_argument(
        "--reply-seconds", type=seconds(), default=1.0, help="answer length (default 1.0)"
    )
    p.add_argument(
        "--pace",
        type=_pace,
        default=DEFAULT_PACE,
        help=f"audio produced per second of wall time: 'realtime' (1.0, for demos) or a factor "
        f"(default {DEFAULT_PACE:g}, faster than real time as the real API)",
    )
    p.add_argument(
        "--ping-interval",
        type=seconds(),
        default=20.0,
        help="seconds between server pings (default 20, as the real API)",
    )
    p.add_argument("--log-file", default=None, help="append JSON lines here too")
    return p


async def _serve(args: argparse.Namespace) -> None:
    server = ChaosServer(
        host=args.host,
        port=args.port,
        faults=args.faults,
        seed=args.seed,
        reply_seconds=args.reply_seconds,
        pace=args.pace,
        ping_interval=args.ping_interval,
        log_file=args.log_file,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        print(f"chaos server on {server.url} (azure endpoint {server.azure_endpoint})", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        parse_schedule(args.faults, args.seed)
    except ConfigError as e:
        parser.error(f"argument --faults: {e}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
