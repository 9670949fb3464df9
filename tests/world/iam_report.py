"""The least-privilege report: per ferry role, the actions its policies allow that no
call in the run used (the world records every Allow that decided a call:
rules/iam.py usage_report). Run after the tests, while the world is up:

    .venv-world/bin/python tests/world/iam_report.py [--world .local/world.json]

Prints a Markdown table. Roles of the same name in several accounts (the target role
each target account deploys) are merged: an action counts as used if any of them used it.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", default=str(REPO / ".local" / "world.json"))
    args = parser.parse_args(argv)
    endpoint = json.loads(Path(args.world).read_text())["endpoint"]
    with urllib.request.urlopen(f"{endpoint}/ferry-world/iam/usage", timeout=30) as r:
        roles = json.load(r)["roles"]
    merged: dict[str, dict] = {}
    for arn, info in roles.items():
        name = arn.rsplit("/", 1)[-1]
        if not (name.startswith("ferry-") or name == "ferry-target"):
            continue  # roles the tests made for themselves
        m = merged.setdefault(name, {"accounts": 0, "evaluated": 0, "denied": 0, "unused": None})
        m["accounts"] += 1
        m["evaluated"] += info["calls"].get("evaluated", 0)
        m["denied"] += info["calls"].get("denied", 0)
        unused = {(u["statement"], u["action"]) for u in info["unused"]}
        m["unused"] = unused if m["unused"] is None else (m["unused"] & unused)
    print("| Role | Calls evaluated (denied) | Allowed but never used in the tests |")
    print("|---|---|---|")
    for name in sorted(merged):
        m = merged[name]
        unused = ", ".join(f"{a} ({s})" for s, a in sorted(m["unused"] or [], key=lambda x: (str(x[0]), x[1])))
        where = f" ×{m['accounts']} accounts" if m["accounts"] > 1 else ""
        print(f"| {name}{where} | {m['evaluated']} ({m['denied']}) | {unused or '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
