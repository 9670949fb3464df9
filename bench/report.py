#!/usr/bin/env python3
"""bench/report.py: bench/REPORT.md and its PNG charts from the measurements that
`make bench` wrote under bench/results/:

  coldstart.json   bench/coldstart/run.py: exec -> first response through a local Lambda
                   Runtime API stub with an HTTPS AWS endpoint, ferry vs Python/boto3 twins
  sizes.json       tests/tools/artifact-sizes --json: each function's bootstrap and zip,
                   as `make sam-build` built them
  workflows.json   bench/workflows.py: transitions, detection latency, cost per run in the
                   local world, ferry vs the 15 s poll baseline; the 100-instance fleet

Every figure is printed beside its goal (issue 10) and whether it is met. A missing input
is reported as not measured, never invented. Charts need matplotlib (bench/requirements.txt).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
ZIP_GOAL_BYTES = int(2.5 * 1000 * 1000)  # "≤ 2.5 MB each"
COLD_START_GOAL = 1 / 25


def load(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def met(flag) -> str:
    if flag is None:
        return "not measured"
    return "met" if flag else "**not met**"


def ms(v) -> str:
    return "-" if v is None else f"{v:.1f} ms"


def mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def pyplot():
    """matplotlib's pyplot, drawing to files only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(plt, fig, out: Path) -> str:
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out.name


def chart_coldstart(cold: dict, out: Path) -> str | None:
    plt = pyplot()
    steps = cold.get("steps") or []
    if not steps:
        return None
    names = [s["step"] for s in steps]
    ferry = [s["ferry"]["coldStartMs"]["median"] for s in steps]
    twin = [s["twin"]["coldStartMs"]["median"] for s in steps]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    y = range(len(names))
    ax.barh([i + 0.2 for i in y], twin, height=0.4, label="Python 3 + boto3 twin", color="#bbbbbb")
    ax.barh([i - 0.2 for i in y], ferry, height=0.4, label="ferry (Rust)", color="#1f77b4")
    ax.set_yticks(list(y), names)
    ax.set_xscale("log")
    ax.set_xlabel("cold start: exec to first response, median ms (log scale)")
    for i, (f, t) in enumerate(zip(ferry, twin)):
        ax.text(f, i - 0.2, f" {f:.0f}", va="center", fontsize=8)
        ax.text(t, i + 0.2, f" {t:.0f}", va="center", fontsize=8)
    ax.legend(loc="lower right", fontsize=8)
    return save(plt, fig, out)


def chart_sizes(sizes: dict, out: Path) -> str | None:
    plt = pyplot()
    rows = sorted(sizes.get("functions") or [], key=lambda r: r["zipBytes"])
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(rows) + 1.2))
    colors = ["#1f77b4" if r["zipBytes"] <= ZIP_GOAL_BYTES else "#d62728" for r in rows]
    ax.barh([r["function"] for r in rows], [r["zipBytes"] / 1e6 for r in rows], color=colors)
    ax.axvline(ZIP_GOAL_BYTES / 1e6, color="black", linestyle="--", linewidth=1, label="goal 2.5 MB")
    ax.set_xlabel(f"deployment zip, MB ({rows[0]['arch']})")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=8)
    return save(plt, fig, out)


def chart_transitions(wf: dict, out: Path) -> str | None:
    plt = pyplot()
    runs = [r for r in wf.get("migrations") or [] if r.get("transitions") is not None]
    if not runs:
        return None
    labels, values, colors = [], [], []
    for r in sorted(runs, key=lambda r: (r["imageMinutes"], r["machine"], r.get("events", ""))):
        label = f"{r['imageMinutes']} min image\n{r['machine']}"
        if r["machine"] != "baseline-poll-15s":
            label += f" (events {r.get('events')})"
        labels.append(label)
        values.append(r["transitions"])
        colors.append("#bbbbbb" if r["machine"].startswith("baseline") else "#1f77b4")
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1))
    ax.barh(labels, values, color=colors)
    ax.set_xscale("log")
    ax.set_xlabel("state transitions per migration (log scale)")
    ax.tick_params(axis="y", labelsize=7)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v}", va="center", fontsize=8)
    return save(plt, fig, out)


def section_coldstart(cold: dict | None, lines: list[str]) -> None:
    lines.append("## 1-2. Cold start and memory: ferry vs Python 3 + boto3 twins")
    if not cold:
        lines += ["", "Not measured (bench/results/coldstart.json is missing).", ""]
        return
    host = cold.get("host") or {}
    lines += [
        "",
        f"Exec of the release bootstrap to its first response through a local Lambda Runtime "
        f"API stub whose AWS endpoint is HTTPS; median of {cold.get('samples', '?')} cold starts "
        f"each. Host: {host.get('cpu', '?')}, {host.get('cores', '?')} cores; "
        f"Python {host.get('python', '?')}, boto3 {host.get('boto3', '?')}.",
        "",
        "| step | ferry cold start | twin cold start | ratio | goal ≤ 1/25 | ferry peak RSS | twin peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in cold.get("steps") or []:
        f, t = s["ferry"], s["twin"]
        ratio = s.get("ratio")
        lines.append(
            f"| {s['step']} | {ms(f['coldStartMs']['median'])} | {ms(t['coldStartMs']['median'])} | "
            f"1/{1 / ratio:.0f} | {met(s.get('met'))} | {f['peakRssKiB']['median'] / 1024:.1f} MiB | "
            f"{t['peakRssKiB']['median'] / 1024:.1f} MiB |"
        )
    init = cold.get("initOnly") or []
    if init:
        medians = sorted(r["initMs"]["median"] for r in init)
        rss = sorted(r["peakRssKiB"]["median"] for r in init)
        lines += [
            "",
            f"Every other function, exec to its first `/next` (init only, no invocation): "
            f"{len(init)} functions, medians {medians[0]:.1f}-{medians[-1]:.1f} ms, "
            f"peak RSS {rss[0] / 1024:.1f}-{rss[-1] / 1024:.1f} MiB.",
        ]
    for note in cold.get("notes") or []:
        lines.append(f"- {note}")
    lines.append("")


def section_sizes(sizes: dict | None, lines: list[str]) -> None:
    lines.append("## 3. Zip size per function")
    if not sizes or not sizes.get("functions"):
        lines += ["", "Not measured (bench/results/sizes.json is missing: `make sam-build` did not run).", ""]
        return
    rows = sizes["functions"]
    arch = rows[0]["arch"]
    over = [r for r in rows if r["zipBytes"] > ZIP_GOAL_BYTES]
    lines += [
        "",
        f"{len(rows)} functions built by `make sam-build` ({arch}); zips "
        f"{mb(min(r['zipBytes'] for r in rows))}-{mb(max(r['zipBytes'] for r in rows))}; "
        f"goal ≤ 2.5 MB each: {met(not over)}"
        + (f" ({len(over)} over: {', '.join(r['function'] for r in over)})" if over else "") + ".",
        "",
    ]
    if arch != "arm64":
        lines += ["", f"The goal is stated for arm64, the template's default; these are {arch} builds "
                      "(`make sam-build ARCH=" + arch + "`), so they do not settle it either way."]
    lines += [
        "",
        "| function | bootstrap | zip |",
        "|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: -r["zipBytes"]):
        lines.append(f"| {r['function']} | {mb(r['bootstrapBytes'])} | {mb(r['zipBytes'])} |")
    lines.append("")


def section_workflows(wf: dict | None, lines: list[str]) -> None:
    lines.append("## 4-6. Transitions, detection latency, fleet and cost (local world)")
    if not wf:
        lines += ["", "Not measured (bench/results/workflows.json is missing).", ""]
        return
    lines += [
        "",
        "| machine | image | events | transitions (of them the image wait) | detection latency | image wait | Lambda invocations | EC2 calls | cost per run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in wf.get("migrations") or []:
        lat = r.get("detectionLatencySeconds")
        if r.get("transitions") is None:
            lines.append(f"| {r['machine']} | {r['imageMinutes']} min | {r.get('events', '-')} | "
                         f"failed: {r.get('status')} {r.get('error') or ''} | | | | | |")
            continue
        lines.append(
            f"| {r['machine']} | {r['imageMinutes']} min | {r.get('events', '-')} | {r['transitions']} "
            f"({r.get('imageWaitTransitions', '?')}) | "
            f"{'-' if lat is None else f'{lat:.1f} s'} | {r.get('imageWaitSeconds', 0):.0f} s | "
            f"{r.get('lambdaInvocations', '-')} | {r.get('ec2Calls', '-')} | ${r.get('costUsd', 0):.6f} |"
        )
    goals = wf.get("goals") or []
    if goals:
        lines += ["", "| goal | target | measured | |", "|---|---|---|---|"]
        for g in goals:
            lines.append(f"| {g['name']} | {g['goal']} | {g['value']} | {met(g.get('met'))} |")
    fleet = wf.get("fleet")
    if fleet:
        lines += ["", "Fleet: " + ", ".join(f"{k} {v}" for k, v in fleet.items() if not isinstance(v, (dict, list)))]
    prices = wf.get("prices")
    if prices:
        lines += ["", "Prices: " + ", ".join(f"{k} {v}" for k, v in prices.items() if not isinstance(v, (dict, list)))]
    for note in wf.get("notes") or []:
        lines.append(f"- {note}")
    lines.append("")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--out", type=Path, default=HERE / "REPORT.md")
    args = ap.parse_args()
    cold = load(args.results / "coldstart.json")
    sizes = load(args.results / "sizes.json")
    wf = load(args.results / "workflows.json")
    charts = args.out.parent / "charts"
    charts.mkdir(parents=True, exist_ok=True)
    made = []
    for fn, data, name in [
        (chart_coldstart, cold, "coldstart.png"),
        (chart_sizes, sizes, "zip-sizes.png"),
        (chart_transitions, wf, "transitions.png"),
    ]:
        if data:
            out = fn(data, charts / name)
            if out:
                made.append(f"charts/{out}")
    lines = [
        "# ferry benchmarks",
        "",
        f"Written by `bench/report.py` (the last step of `make bench`) on "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC from `bench/results/`; "
        "each part's file there records how and when it was measured. "
        "Each figure stands beside its goal from issue 10, met or not.",
        "",
    ]
    lines += [f"![{Path(c).stem}]({c})" for c in made] + [""]
    section_coldstart(cold, lines)
    section_sizes(sizes, lines)
    section_workflows(wf, lines)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"report: {args.out} ({len(made)} charts)")


if __name__ == "__main__":
    main()
