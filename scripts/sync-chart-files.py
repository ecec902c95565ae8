#!/usr/bin/env python3
"""Write the chart's generated files: the dashboard, the rules template and the values schema.

The chart cannot read files outside its own directory (`.Files.Get` is chart-relative, and a
packaged chart carries only what is inside it), so dashboards/ stays the source of truth and the
chart holds what is generated from it. tests/test_helm.py fails when they drift:

    python scripts/sync-chart-files.py          # write them
    python scripts/sync-chart-files.py --check  # exit 1 and name the stale files (CI)

- files/realtime-supervisor.json: dashboards/realtime-supervisor.json, byte for byte;
- files/rules.tpl: dashboards/rules.py's rules as a Go template over the prometheusRule values
  (the chart passes parameters; nothing rewrites PromQL);
- values.schema.json: generated from values.yaml and its @schema annotations
  (scripts/values_schema.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "dashboards"
CHART = ROOT / "helm" / "realtime-supervisor-agent"


def _module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def expected() -> dict[Path, bytes]:
    """Each generated file of the chart and its content as it should be."""
    rules = _module("dashboards_rules", SOURCE / "rules.py")
    schema = _module("values_schema", ROOT / "scripts" / "values_schema.py")
    return {
        CHART / "files" / "realtime-supervisor.json": (
            SOURCE / "realtime-supervisor.json"
        ).read_bytes(),
        CHART / "files" / "rules.tpl": rules.render_template().encode(),
        CHART / "values.schema.json": schema.render((CHART / "values.yaml").read_text()).encode(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    stale = []
    for target, content in expected().items():
        if target.is_file() and target.read_bytes() == content:
            continue
        stale.append(str(target.relative_to(ROOT)))
        if not args.check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    if args.check and stale:
        print(f"stale: {', '.join(stale)}; run scripts/sync-chart-files.py", file=sys.stderr)
        return 1
    print(f"{'updated ' + ', '.join(stale) if stale else 'chart files up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
