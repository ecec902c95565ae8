"""The `realtime-supervisor` command (also `python -m realtime_supervisor_agent`).

realtime-supervisor simulate --compare --sessions 8 --turns 6 --faults clean,stall_mid --seed 7
realtime-supervisor chaos --port 8765 --faults "clean,stall_mid=3"
realtime-supervisor start          # livekit's worker CLI: start, dev, console, ...
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: realtime-supervisor {simulate,chaos,start,dev,console,...} [options]

  simulate   run supervised calls against the chaos server (realtime-supervisor simulate --help)
  chaos      run the chaos Realtime server alone (realtime-supervisor chaos --help)
  start|dev|console|...   livekit's worker CLI (the reference worker)
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch `simulate` and `chaos`; everything else goes to livekit's worker CLI."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="", file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] == "simulate":
        from realtime_supervisor_agent.simulate import main as simulate

        return simulate(args[1:])
    if args[0] == "chaos":
        from realtime_supervisor.chaos.__main__ import main as chaos

        return chaos(args[1:])
    from realtime_supervisor_agent import worker

    # livekit's CLI reads sys.argv itself: keep the subcommand where it expects it
    sys.argv = [sys.argv[0], *args]
    result = worker.main()
    return int(result) if isinstance(result, int) else 0


def run() -> None:
    """The console script's entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
