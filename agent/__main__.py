"""`python -m agent`: `simulate` here; `start`, `dev`, `console` are livekit's CLI (agent.worker).

python -m agent simulate --compare --sessions 8 --turns 6 --faults clean,stall_mid --seed 7
python -m agent start
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

USAGE = """usage: python -m agent {simulate,start,dev,console,...} [options]

  simulate   run simulated calls against the chaos server (python -m agent simulate --help)
  start|dev|console|...   livekit's worker CLI (agent.worker)
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch `simulate` to agent.simulate and everything else to agent.worker."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="", file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] == "simulate":
        from agent.simulate import main as simulate

        return simulate(args[1:])
    try:
        worker = importlib.import_module("agent.worker")
    except ModuleNotFoundError as exc:
        if exc.name not in ("agent.worker",):
            raise
        print(
            f"python -m agent: error: {args[0]!r} is the livekit worker's command, and "
            "agent/worker.py is not there yet; only 'simulate' is available",
            file=sys.stderr,
        )
        return 2
    # livekit's CLI reads sys.argv itself: keep the subcommand where it expects it
    sys.argv = [sys.argv[0], *args]
    result = worker.main()
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
