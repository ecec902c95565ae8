"""The command lines' shared argparse pieces (`realtime-supervisor chaos`, `simulate`, bench).

One parser class and one set of value types, so every flag refuses bad input the same way: the
flag named by argparse, what is accepted, what was given, exit status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

__all__ = ["Parser", "count", "port", "seconds"]


class Parser(argparse.ArgumentParser):
    """argparse's parser with its error path written out: usage, one line, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse already names the flag; keep its wording, exit 2 as it does
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def port(text: str) -> int:
    """A TCP port, 0 (any) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return value


def count(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def seconds(*, zero: bool = False) -> Callable[[str], float]:
    """A finite duration in seconds, > 0 (or >= 0 with `zero`)."""
    what = ">= 0" if zero else "> 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seconds {what}, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"expected seconds {what}, got {text!r}")
        return value

    return parse
