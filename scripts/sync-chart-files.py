#!/usr/bin/env python3
"""Copy the dashboard and the Prometheus rules into the Helm chart, and derive its threshold table.

The chart cannot read files outside its own directory (`.Files.Get` is chart-relative, and a
packaged chart carries only what is inside it), so dashboards/ stays the source of truth and the
chart holds copies. tests/test_helm.py fails when the copies drift; run this script to refresh them:

    python scripts/sync-chart-files.py          # write the copies
    python scripts/sync-chart-files.py --check  # exit 1 and name the stale files (CI)

files/thresholds.json is parsed from the THRESHOLDS comment table at the top of rules.yaml (alert,
key, place, default). The chart's PrometheusRule template uses it to know which literal a
`prometheusRule.thresholds` override replaces.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "dashboards"
CHART_FILES = ROOT / "helm" / "realtime-supervisor-agent" / "files"
COPIED = ("rules.yaml", "realtime-supervisor.json")
THRESHOLDS = "thresholds.json"

# "#   AlertName   key   place   default   (note)"; continuation rows leave the alert out.
_ROW = re.compile(
    r"^#\s+(?:(?P<alert>[A-Z][A-Za-z0-9]+)\s+)?(?P<key>[a-z][a-z0-9_]*)\s+"
    r"(?P<place>expr|for)\s+(?P<default>\S+)"
)


def thresholds(rules_text: str) -> dict[str, dict[str, dict[str, str]]]:
    """Parse the THRESHOLDS table: {alert: {key: {"place": "expr"|"for", "default": "0.05"}}}."""
    lines = rules_text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("# THRESHOLDS"))
        header = next(
            i for i in range(start, len(lines)) if re.match(r"^#\s+alert\s+key\s+place", lines[i])
        )
    except StopIteration:
        raise SystemExit(
            "dashboards/rules.yaml: no '# THRESHOLDS' table with an 'alert key place default' "
            "header; the chart's threshold overrides need it"
        ) from None
    table: dict[str, dict[str, dict[str, str]]] = {}
    alert: str | None = None
    for line in lines[header + 1 :]:
        if not line.startswith("#") or not line[1:].strip():
            break  # the table ends at the first empty comment line
        match = _ROW.match(line)
        if match is None:
            raise SystemExit(f"dashboards/rules.yaml: cannot read threshold row {line!r}")
        alert = match["alert"] or alert
        if alert is None:
            raise SystemExit(f"dashboards/rules.yaml: threshold row without an alert: {line!r}")
        table.setdefault(alert, {})[match["key"]] = {
            "place": match["place"],
            "default": match["default"],
        }
    if not table:
        raise SystemExit("dashboards/rules.yaml: the THRESHOLDS table is empty")
    return table


def expected() -> dict[str, bytes]:
    """The chart's files/ content as it should be, by file name."""
    out: dict[str, bytes] = {}
    for name in COPIED:
        path = SOURCE / name
        if not path.is_file():
            raise SystemExit(f"{path.relative_to(ROOT)} is missing: nothing to copy")
        out[name] = path.read_bytes()
    table = thresholds(out["rules.yaml"].decode())
    out[THRESHOLDS] = (json.dumps(table, indent=2) + "\n").encode()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale copies")
    args = parser.parse_args(argv)
    stale = []
    for name, content in expected().items():
        target = CHART_FILES / name
        if target.is_file() and target.read_bytes() == content:
            continue
        stale.append(name)
        if not args.check:
            CHART_FILES.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    rel = CHART_FILES.relative_to(ROOT)
    if args.check and stale:
        print(
            f"stale in {rel}: {', '.join(stale)}; run scripts/sync-chart-files.py", file=sys.stderr
        )
        return 1
    print(f"{rel}: {'updated ' + ', '.join(stale) if stale else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
