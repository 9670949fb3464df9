#!/usr/bin/env python3
"""Cold start and memory of ferry's Lambda bootstraps against Python 3 + boto3 twins
(issue 10, parts 3.1 and 3.2).

For each measured step (wait-image, resolve-image, image-event), ferry's release
bootstrap and its twin (bench/twins/, run by bench/twins/bootstrap.py): N cold starts
each, alternating ferry and twin, a fresh process per sample that gets one invocation
from the stub's Lambda Runtime API and calls the stub's HTTPS AWS endpoint; then it is
killed. Per sample: exec -> first /next (init), exec -> first response received by the
stub (cold start), whether the answer is right (not an error, the expected output, the
expected AWS calls in order) and the process's peak RSS (VmHWM, read once the process
is back in /next after its response, before the kill). For every other bootstrap in
--bootstraps: init only (exec -> first /next, no invocation) and VmHWM then.

    .venv-bench/bin/python bench/coldstart/run.py --bootstraps target/lambda \
        [--samples 30] [--out bench/results/coldstart.json]

--bootstraps holds <binary-name>/bootstrap, as `cargo lambda build` writes it.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
TWINS = os.path.join(BENCH, "twins")
sys.path.insert(0, HERE)

import scenario  # noqa: E402
from stub import Sample, Stub  # noqa: E402

MEASURED = ["wait-image", "resolve-image", "image-event"]
GOAL = 1 / 25
TIMEOUT = 60.0


# ---------------------------------------------------------------------------------------
# Environments: what Lambda sets, plus the stub's endpoint and CA
# ---------------------------------------------------------------------------------------
def lambda_env(stub: Stub, function: str, home: str) -> dict:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": home,  # empty: no ~/.aws of this machine is read
        "AWS_LAMBDA_RUNTIME_API": stub.runtime_api,
        "AWS_ENDPOINT_URL": stub.endpoint,
        "AWS_REGION": scenario.REGION,
        "AWS_DEFAULT_REGION": scenario.REGION,
        # fake credentials (AWS's documentation example); the stub checks no signature
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "bench-session-token",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/02/[$LATEST]0123456789abcdef0123456789abcdef",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        # As template.yaml sets it for ImageEvent (stack "ferry"): the machines whose
        # executions' image waits are event-driven. Without it ImageEvent ignores every
        # image (a fresh-clone make bench failed the image-event check on that).
        "FERRY_WAITING_MACHINES": "ferry-migrate-instance,ferry-share-image",
    }


def runs_here(path: str) -> bool:
    """Whether an ELF bootstrap is of this host's machine (e_machine): with `make bench
    ARCH=arm64` on an x86_64 host, target/lambda holds the arm64 builds of every function
    but the measured ones (built again for the host); those cannot be run here."""
    import platform
    import struct

    machines = {"x86_64": 62, "aarch64": 183, "arm64": 183}
    with open(path, "rb") as f:
        header = f.read(20)
    if header[:4] != b"\x7fELF":
        return False
    e_machine = struct.unpack("<H" if header[5] == 1 else ">H", header[18:20])[0]
    return e_machine == machines.get(platform.machine())


def ferry_cmd(bootstraps: str, name: str, stub: Stub, home: str):
    env = lambda_env(stub, f"ferry-{name}", home)
    env["SSL_CERT_FILE"] = stub.certs["bundle.pem"]  # rustls-native-certs reads it
    return [os.path.join(bootstraps, name, "bootstrap")], env


def twin_cmd(python: str, name: str, stub: Stub, home: str):
    env = lambda_env(stub, f"twin-{name}", home)
    env.update({
        "AWS_CA_BUNDLE": stub.certs["bundle.pem"],  # botocore's CA bundle
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3",
        "_HANDLER": scenario.STEPS[name]["twinHandler"],
        "LAMBDA_TASK_ROOT": TWINS,
        "LAMBDA_RUNTIME_DIR": TWINS,
        # PYTHONDONTWRITEBYTECODE is left out: the twins run from bytecode, as a Lambda
        # deployment ships it (the warm-up run writes it).
    })
    return [python, os.path.join(TWINS, "bootstrap.py")], env


# ---------------------------------------------------------------------------------------
# One sample
# ---------------------------------------------------------------------------------------
def vm_hwm_kib(pid: int):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_sample(stub: Stub, cmd, env, log, event, function) -> dict:
    s = stub.begin(Sample(event, function))
    t0 = time.monotonic_ns()
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT, cwd=os.path.dirname(cmd[-1]))
    try:
        started = s.first_next.wait(TIMEOUT)
        if event is None:
            finished = started
        else:
            finished = started and s.done.wait(TIMEOUT)
            if finished:
                # back in /next (idle, as Lambda freezes it): the invocation is over
                s.idle.wait(5)
        rss = vm_hwm_kib(p.pid) if p.poll() is None else None
    finally:
        p.kill()
        p.wait()
        s.finish()
    return {
        "initMs": (s.t_next - t0) / 1e6 if s.t_next else None,
        "coldStartMs": (s.t_response - t0) / 1e6 if s.t_response else None,
        "peakRssKiB": rss,
        "finished": finished,
        "idle": s.idle.is_set(),
        "exitCode": p.returncode,
        "response": json.loads(s.response) if s.response else None,
        "error": s.error,
        "initError": s.init_error,
        "calls": s.calls,
    }


def _same(expected, actual) -> bool:
    if isinstance(expected, (dict, list)) and isinstance(actual, str):
        try:
            actual = json.loads(actual)
        except ValueError:
            return False
    return expected == actual


def check(step: str, r: dict) -> list[str]:
    """What is wrong with a sample's answer (empty: it is right)."""
    spec = scenario.STEPS[step]
    problems = []
    if not r["finished"]:
        problems.append(f"no answer within {TIMEOUT}s (exit code {r['exitCode']})")
    if r["initError"]:
        problems.append(f"init error: {r['initError']}")
    if r["error"]:
        problems.append(f"error: {r['error']}")
    if r["response"] is not None and r["response"] != spec["output"]:
        problems.append(f"output {json.dumps(r['response'])} is not {json.dumps(spec['output'])}")
    made = [(svc, act) for svc, act, _ in r["calls"]]
    want = [(svc, act) for svc, act, _ in spec["calls"]]
    if made != want:
        problems.append(f"AWS calls {made}, expected {want}")
    else:
        for (_, act, params), (_, _, expected) in zip(r["calls"], spec["calls"]):
            for k, v in expected.items():
                if not _same(v, params.get(k)):
                    problems.append(f"{act} {k}={str(params.get(k))[:80]!r}, expected {str(v)[:80]!r}")
    return problems


# ---------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------
def dist(values) -> dict:
    v = sorted(x for x in values if x is not None)
    if not v:
        return {"median": None, "p90": None, "min": None, "max": None}
    p90 = statistics.quantiles(v, n=10, method="inclusive")[-1] if len(v) > 1 else v[0]
    return {"median": round(statistics.median(v), 2), "p90": round(p90, 2),
            "min": round(v[0], 2), "max": round(v[-1], 2)}


def rss(values) -> dict:
    v = [x for x in values if x is not None]
    if not v:
        return {"median": None, "max": None}
    return {"median": int(statistics.median(v)), "max": max(v)}


def summary(samples, problems) -> dict:
    return {
        "coldStartMs": dist(s["coldStartMs"] for s in samples),
        "initMs": dist(s["initMs"] for s in samples),
        "peakRssKiB": rss(s["peakRssKiB"] for s in samples),
        "ok": not problems and len(samples) > 0,
        "samples": len(samples),
        **({"problems": problems[:5]} if problems else {}),
    }


# ---------------------------------------------------------------------------------------
# Host
# ---------------------------------------------------------------------------------------
def host(python: str) -> dict:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    twin_python = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                                 capture_output=True, text=True).stdout.strip()

    def version(pkg):
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {"cpu": cpu, "cores": os.cpu_count(), "arch": platform.machine(),
            "kernel": platform.release(), "python": twin_python, "boto3": version("boto3"),
            "botocore": version("botocore")}


# ---------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstraps", required=True,
                    help="directory of <binary-name>/bootstrap (cargo lambda build's target/lambda)")
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--out", default=os.path.join(BENCH, "results", "coldstart.json"))
    ap.add_argument("--python", default=sys.executable,
                    help="the twins' interpreter (default: this one; it needs boto3)")
    ap.add_argument("--steps", default=",".join(MEASURED),
                    help="measured steps, comma-separated (default: all three)")
    ap.add_argument("--no-init-only", action="store_true",
                    help="skip the init-only runs of the other bootstraps")
    args = ap.parse_args(argv)
    bootstraps = os.path.abspath(args.bootstraps)
    steps = [s for s in args.steps.split(",") if s]
    for s in steps:
        if s not in MEASURED:
            ap.error(f"unknown step {s}")
    missing = [s for s in steps if not os.access(os.path.join(bootstraps, s, "bootstrap"), os.X_OK)]
    if missing:
        ap.error(f"no executable bootstrap for {missing} in {bootstraps}")
    n = args.samples

    load_start = os.getloadavg()[0]
    stub = Stub()
    work = stub.workdir
    home = os.path.join(work, "home")
    os.makedirs(home, exist_ok=True)
    logs = {}

    def log(name):
        if name not in logs:
            logs[name] = open(os.path.join(work, f"{name}.log"), "ab")
        return logs[name]

    notes = []
    results = []
    failed = False
    try:
        for step in steps:
            spec = scenario.STEPS[step]
            cmds = {"ferry": ferry_cmd(bootstraps, step, stub, home),
                    "twin": twin_cmd(args.python, step, stub, home)}
            samples = {"ferry": [], "twin": []}
            problems = {"ferry": [], "twin": []}
            # Warm-up, not counted: the twin writes its bytecode; both get their files into
            # the page cache (a Lambda sandbox's code is local too).
            for impl, (cmd, env) in cmds.items():
                r = run_sample(stub, cmd, env, log(f"{impl}-{step}"), spec["input"], spec["function"])
                bad = check(step, r)
                if bad:
                    print(f"{step} {impl} warm-up: {bad} (log: {work}/{impl}-{step}.log)", file=sys.stderr)
            for i in range(n):
                for impl, (cmd, env) in cmds.items():
                    r = run_sample(stub, cmd, env, log(f"{impl}-{step}"), spec["input"], spec["function"])
                    bad = check(step, r)
                    problems[impl].extend(f"sample {i}: {b}" for b in bad)
                    samples[impl].append(r)
            ferry, twin = summary(samples["ferry"], problems["ferry"]), summary(samples["twin"], problems["twin"])
            ferry["bootstrapBytes"] = os.path.getsize(cmds["ferry"][0][0])
            fm, tm = ferry["coldStartMs"]["median"], twin["coldStartMs"]["median"]
            ratio = fm / tm if fm and tm else None
            results.append({
                "step": step, "ferry": ferry, "twin": twin,
                "ratio": round(ratio, 4) if ratio else None,
                "goal": "<= 1/25",
                "met": bool(ratio is not None and ratio <= GOAL and ferry["ok"] and twin["ok"]),
                "initRatio": (round(ferry["initMs"]["median"] / twin["initMs"]["median"], 4)
                              if ferry["initMs"]["median"] and twin["initMs"]["median"] else None),
                "rssRatio": (round(ferry["peakRssKiB"]["median"] / twin["peakRssKiB"]["median"], 4)
                             if ferry["peakRssKiB"]["median"] and twin["peakRssKiB"]["median"] else None),
                "awsCalls": [f"{svc}:{act}" for svc, act, _ in spec["calls"]],
            })
            failed |= not (ferry["ok"] and twin["ok"])
            print(f"{step}: ferry {fm} ms / twin {tm} ms = {ratio and round(ratio, 4)} "
                  f"(RSS {ferry['peakRssKiB']['median']} / {twin['peakRssKiB']['median']} KiB)"
                  f"{'' if ferry['ok'] and twin['ok'] else '  NOT OK'}", flush=True)

        init_only = []
        others = [] if args.no_init_only else sorted(
            d for d in os.listdir(bootstraps)
            if d not in MEASURED and os.access(os.path.join(bootstraps, d, "bootstrap"), os.X_OK)
            and runs_here(os.path.join(bootstraps, d, "bootstrap")))
        foreign = [] if args.no_init_only else sorted(
            d for d in os.listdir(bootstraps)
            if d not in MEASURED and d not in others and os.path.isfile(os.path.join(bootstraps, d, "bootstrap")))
        if foreign:
            print(f"init only: {len(foreign)} bootstraps of another architecture not run here "
                  f"({', '.join(foreign)})", flush=True)
        for name in others:
            cmd, env = ferry_cmd(bootstraps, name, stub, home)
            run_sample(stub, cmd, env, log(f"ferry-{name}"), None, f"ferry-{name}")  # warm-up
            rs = [run_sample(stub, cmd, env, log(f"ferry-{name}"), None, f"ferry-{name}")
                  for _ in range(n)]
            bad = [f"sample {i}: no /next within {TIMEOUT}s" for i, r in enumerate(rs) if not r["finished"]]
            init_only.append({"function": name, "initMs": dist(r["initMs"] for r in rs),
                              "peakRssKiB": rss(r["peakRssKiB"] for r in rs),
                              "bootstrapBytes": os.path.getsize(cmd[0]), "ok": not bad,
                              **({"problems": bad[:5]} if bad else {})})
            failed |= bool(bad)
            print(f"{name}: init {init_only[-1]['initMs']['median']} ms, "
                  f"RSS {init_only[-1]['peakRssKiB']['median']} KiB", flush=True)
    finally:
        stub.close()
        for f in logs.values():
            f.close()
        if not failed:
            shutil.rmtree(work, ignore_errors=True)

    h = host(args.python)
    # Other work on the machine slows both sides; the load average shows whether there was any.
    h["loadAvg1m"] = {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}
    notes += [
        f"Host {h['arch']} ({h['cpu']}, {h['cores']} cores), not Lambda's Firecracker microVM: "
        "absolute numbers are this machine's; Lambda's 128 MB size also gets a fraction of a "
        "vCPU, which slows both sides (the twin more, in absolute terms). template.yaml "
        "deploys arm64 by default; these are the x86_64 builds.",
        "exec -> first /next (init) and exec -> first response received (cold start) are "
        "time.monotonic_ns in the runner, taken just before subprocess.Popen and when the "
        "stub has read the request (the response: its whole body); Popen's fork/exec "
        "(~1 ms) is in both sides' numbers. Lambda's own sandbox creation and code download "
        "are not part of either.",
        "The stub is local (loopback, Python http.server in threads of the runner): no "
        "network latency, and the stub's own handling time is in both sides' numbers (it "
        "adds the same milliseconds to both, so it raises ferry's ratio). It answers each "
        "request in one write with TCP_NODELAY: without that, Nagle and delayed ACKs added "
        "40-90 ms to every ferry cold start, stalls AWS's endpoints do not have. "
        "The AWS endpoint is HTTPS (TLS 1.3, EC P-256 certificate from a CA made at start); "
        "both sides trust the system CA bundle plus that CA (ferry: SSL_CERT_FILE, which "
        "rustls-native-certs honours; twin: AWS_CA_BUNDLE), so each loads a real-size "
        "trust store.",
        "Each sample is a fresh process (ferry and twin alternate), killed after its one "
        "invocation; one uncounted warm-up run per side and step first (the twin then runs "
        "from the bytecode the warm-up wrote, as a deployment ships it; file pages are in "
        "the page cache for both).",
        "Peak RSS is VmHWM from /proc/<pid>/status once the process is back in /next after "
        "its response (init only: at its first /next). The Python figure includes the "
        "interpreter; Lambda bills the sandbox's memory, which these approximate from below.",
        "The twins create only the boto3 clients their step calls (ec2, and stepfunctions "
        "where it is called), at module import (init) as usual in Python Lambdas; the Rust "
        "steps build ec2, kms, sts and sfn clients in init. The twins check the input's "
        "shape less deeply than serde does (required plan fields, not every nested type).",
        "The Python runtime is bench/twins/bootstrap.py (http.client), a minimal loop like "
        "AWS's awslambdaric without its logging setup: if anything, faster than AWS's.",
        f"Ratio = ferry median / twin median of the cold start; goal <= 1/25 = {GOAL}.",
    ]
    if not init_only:
        notes.append("initOnly is empty: --bootstraps held no bootstrap besides the measured "
                     "steps (build the others with cargo lambda build to fill it).")
    if failed:
        notes.append(f"Some samples were not right: see each side's problems; logs were in {work}.")
    out = {
        "generatedAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": h,
        "samples": n,
        "steps": results,
        "initOnly": init_only,
        "notes": notes,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
