#!/usr/bin/env python3
"""bench/workflows.py: the world half of `make bench` (issue 10, parts 3.4-3.6).

    FERRY_WORLD_PORT=4592 FERRY_WORLD_STATE_DIR=/tmp/w tests/world/up
    .venv-world/bin/python bench/workflows.py --world-json /tmp/w/world.json

Needs an already running local AWS world (tests/world/up) with ferry deployed; starts
nothing else. It

1. deploys bench/baseline/migrate-instance-poll15.asl.json (migrate-instance whose
   WaitImage is a 15 s Wait + Task + Choice poll loop) next to ferry's machine, with the
   same role and the same DefinitionSubstitutions (template.yaml's MigrateInstanceStateMachine);
2. migrates one realistic source (tests/world/demo.py's setup) per case: image times of
   20 simulated minutes and 3 simulated hours x {ferry with EC2 events, ferry with EC2
   events dropped, the baseline}; per run it counts billed state transitions, the
   detection latency (the image's `available` event time -> WaitImage's exit), the
   durations, Lambda invocations, EC2 calls, and prices the run;
3. runs migrate-fleet over 100 small instances (AZ a -> AZ b): completion, durations,
   EC2 calls per instance, peak concurrent child migrations and pending images;

and writes bench/results/workflows.json (bench/report.py renders it). The world's
settings it changes (imagePendingMinutes, ec2EventsDropped, the clock's scale) are put
back at the end, also on failure.

How transitions are counted (Step Functions Standard bills "each state transition,
including retries"): from GetExecutionHistory, every `*StateEntered` event is one
transition, and within one state entry every Lambda/Task scheduling after the first
(`LambdaFunctionScheduled` or `TaskScheduled`: a Retry attempt, including the
States.Timeout re-attempts of ferry's callback WaitImage) is one more. Execution start
and end are not counted.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
import time
import traceback
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "world"))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

import demo as world_demo  # noqa: E402  (tests/world/demo.py: the realistic source)

BASELINE_FILE = HERE / "baseline" / "migrate-instance-poll15.asl.json"
BASELINE_NAME_SUFFIX = "-bench-migrate-instance-poll15"
# template.yaml, MigrateInstanceStateMachine.DefinitionSubstitutions: placeholder -> logical id
SUBSTITUTIONS = {
    "PreflightFunctionArn": "PreflightFunction",
    "CreateImageFunctionArn": "CreateImageFunction",
    "WaitImageFunctionArn": "WaitImageFunction",
    "LaunchInstanceFunctionArn": "LaunchInstanceFunction",
    "VerifyInstanceFunctionArn": "VerifyInstanceFunction",
    "FinalizeFunctionArn": "FinalizeFunction",
    "RollbackFunctionArn": "RollbackFunction",
}
PRICES = {
    "region": "us-east-1",
    "stepFunctionsStandardPerTransitionUsd": 0.025 / 1000,
    "stepFunctionsStandardPer1000TransitionsUsd": 0.025,
    "lambdaArm64PerGbSecondUsd": 0.0000133334,
    "lambdaPerMillionRequestsUsd": 0.20,
    "lambdaMemoryMb": 128,
    "sources": {
        "stepFunctions": "https://aws.amazon.com/step-functions/pricing/ (Standard workflows, "
                         "$0.025 per 1,000 state transitions, US East (N. Virginia))",
        "lambda": "https://aws.amazon.com/lambda/pricing/ (Arm, first 6 billion GB-seconds/month "
                  "$0.0000133334 per GB-second; requests $0.20 per 1M, US East (N. Virginia))",
    },
    "freeTierIgnored": True,
}
LAMBDA_EVENT_TYPES = ("LambdaFunctionScheduled", "TaskScheduled")


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(s: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


class World:
    def __init__(self, world: dict):
        self.world = world
        self.endpoint = world["endpoint"]
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name=world["region"])
        cfg = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=20)
        self.client = lambda name: session.client(name, endpoint_url=self.endpoint, config=cfg)  # noqa: E731
        self.sfn = self.client("stepfunctions")
        self.ec2 = self.client("ec2")
        self.sts = self.client("sts")

    def control(self, method: str, path: str, body=None, timeout: float = 60):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.endpoint}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)

    def config(self, **values):
        return self.control("POST", "/ferry-world/config", values)

    def scale(self, scale: float):
        return self.control("POST", "/ferry-world/clock/scale", {"scale": scale})

    def clock(self) -> dict:
        return self.control("GET", "/ferry-world/clock")

    def sim_now(self) -> dt.datetime:
        return parse_time(self.clock()["now"])

    def marker(self) -> int:
        """A GetCallerIdentity whose record's seq separates the calls before and after."""
        self.sts.get_caller_identity()
        calls = self.control("GET", "/ferry-world/calls?service=sts&action=GetCallerIdentity")["calls"]
        return max(c["seq"] for c in calls)

    def calls_between(self, start: int, end: int, service: str = "ec2") -> list[dict]:
        calls = self.control("GET", f"/ferry-world/calls?service={service}&since={start}", timeout=120)["calls"]
        return [c for c in calls if start < c["seq"] < end]

    def history(self, arn: str) -> list[dict]:
        events, kwargs = [], {"executionArn": arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events += page["events"]
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]


# -- the baseline machine ---------------------------------------------------------------

def deploy_baseline(w: World) -> str:
    ferry_arn = w.world["stateMachines"]["migrate-instance"]
    role = w.sfn.describe_state_machine(stateMachineArn=ferry_arn)["roleArn"]
    definition = BASELINE_FILE.read_text()
    for placeholder, logical in SUBSTITUTIONS.items():
        definition = definition.replace("${" + placeholder + "}", w.world["functions"][logical]["arn"])
    if "${" in definition:
        raise SystemExit(f"workflows: a placeholder is left in {BASELINE_FILE}")
    name = w.world.get("stack", "ferry") + BASELINE_NAME_SUFFIX
    arn = ferry_arn.rsplit(":", 1)[0] + ":" + name
    try:
        w.sfn.describe_state_machine(stateMachineArn=arn)
        w.sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=role)
    except w.sfn.exceptions.StateMachineDoesNotExist:
        arn = w.sfn.create_state_machine(name=name, definition=definition, roleArn=role,
                                         type="STANDARD")["stateMachineArn"]
    return arn


# -- one execution's figures --------------------------------------------------------------

def count_transitions(events: list[dict]) -> dict:
    """Billed transitions: each *StateEntered, plus each scheduling of a Lambda/Task after
    the first within the same state entry (a Retry attempt)."""
    entered = retries = 0
    per_state: dict[str, int] = {}
    scheduled_in_entry = 0
    current = None
    for e in events:
        t = e["type"]
        if t.endswith("StateEntered"):
            entered += 1
            current = e["stateEnteredEventDetails"]["name"]
            per_state[current] = per_state.get(current, 0) + 1
            scheduled_in_entry = 0
        elif t in LAMBDA_EVENT_TYPES:
            scheduled_in_entry += 1
            if scheduled_in_entry > 1:
                retries += 1
                if current:
                    per_state[current] = per_state.get(current, 0) + 1
    return {"total": entered + retries, "statesEntered": entered, "retryAttempts": retries, "perState": per_state}


def lambda_invocations(events: list[dict]) -> int:
    n = 0
    for e in events:
        if e["type"] == "LambdaFunctionScheduled":
            n += 1
        elif e["type"] == "TaskScheduled":
            d = e.get("taskScheduledEventDetails", {})
            if d.get("resourceType") == "lambda":
                n += 1
    return n


def state_output(e: dict) -> dict:
    try:
        return json.loads(e["stateExitedEventDetails"].get("output") or "{}")
    except ValueError:
        return {}


def function_invocations(w: World, suffix: str) -> int:
    """Invocations of one function so far, summed over its sandboxes (the world's runner)."""
    return sum(s.get("invocations", 0) for s in w.control("GET", "/ferry-world/functions")["sandboxes"]
               if s["function"].endswith("-" + suffix))


def cost(transitions: int, invocations: int, lambda_ms: float) -> dict:
    gb_s = invocations * (PRICES["lambdaMemoryMb"] / 1024) * (lambda_ms / 1000)
    sfn = transitions * PRICES["stepFunctionsStandardPerTransitionUsd"]
    lam_req = invocations * PRICES["lambdaPerMillionRequestsUsd"] / 1e6
    lam_gb = gb_s * PRICES["lambdaArm64PerGbSecondUsd"]
    return {"stepFunctionsUsd": sfn, "lambdaRequestsUsd": lam_req, "lambdaComputeUsd": lam_gb,
            "lambdaGbSeconds": gb_s, "totalUsd": sfn + lam_req + lam_gb}


def wait_done(w: World, arn: str, timeout: float, on_poll=None) -> dict:
    t0 = time.monotonic()
    while True:
        d = w.sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        if on_poll:
            on_poll()
        if time.monotonic() - t0 > timeout:
            w.sfn.stop_execution(executionArn=arn, error="Bench.Timeout", cause=f"still running after {timeout}s real")
            return w.sfn.describe_execution(executionArn=arn)
        time.sleep(0.2)


def run_migration(w: World, machine: str, machine_arn: str, image_minutes: int, events: str,
                  scale: float, detection_scale: float | None, lambda_ms: float, timeout: float) -> dict:
    """One migrate-instance run of a fresh demo source; the clock runs at `scale`, and at
    `detection_scale` (if given) from 5 simulated minutes before the image is due until
    WaitImage is left, so that the Lambdas' real time hardly shows in the latency."""
    w.config(imagePendingMinutes=image_minutes, ec2EventsDropped=(events != "delivered"))
    d = world_demo.Demo(w.world)
    source = d.setup()
    request = {"sourceInstanceId": source["instance"], "targetSubnetId": source["targetSubnet"],
               "sourceAction": "stop", "stopSource": True, "tags": {"change": f"BENCH-{d.run_id}"}}
    w.scale(scale)
    start_marker = w.marker()
    image_event_before = function_invocations(w, "image-event")
    t0 = time.monotonic()
    arn = w.sfn.start_execution(stateMachineArn=machine_arn, name=f"bench-{machine}-{image_minutes}m-{events}-{d.run_id}",
                                input=json.dumps(request))["executionArn"]
    phase = {"due": None, "slow": False, "done": False}

    def on_poll():
        if detection_scale is None or phase["done"]:
            return
        hist = w.sfn.get_execution_history(executionArn=arn, maxResults=1000, reverseOrder=True)["events"]
        names = {(e["type"], (e.get("stateExitedEventDetails") or e.get("stateEnteredEventDetails") or {}).get("name"))
                 for e in hist}
        if phase["slow"] and (("TaskStateExited", "WaitImage") in names or any(
                t.endswith("StateEntered") and n == "LaunchInstance" for t, n in names)):
            w.scale(scale)
            phase["done"] = True
            return
        if phase["due"] is None:
            for e in hist:
                if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "CreateImage":
                    phase["due"] = e["timestamp"] + dt.timedelta(minutes=image_minutes)
        if phase["due"] is not None and not phase["slow"]:
            if w.sim_now() >= phase["due"] - dt.timedelta(minutes=5):
                w.scale(detection_scale)
                phase["slow"] = True

    desc = wait_done(w, arn, timeout, on_poll)
    real = time.monotonic() - t0
    w.scale(scale)
    end_marker = w.marker()
    events_h = w.history(arn)
    ec2_calls = w.calls_between(start_marker, end_marker, "ec2")

    image_id = None
    for e in events_h:
        if e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == "CreateImage":
            image_id = (state_output(e).get("image") or {}).get("imageId")
    available = None
    for rec in w.control("GET", "/ferry-world/events/invocations")["ec2Events"]:
        ev = rec["event"]
        if ev.get("detail-type") == "EC2 AMI State Change" and ev["detail"].get("ImageId") == image_id \
                and ev["detail"].get("State") == "available":
            available = {"time": parse_time(ev["time"]), "status": rec["status"]}
    wait_entered = next((e["timestamp"] for e in events_h if e["type"].endswith("StateEntered")
                         and e["stateEnteredEventDetails"]["name"] == "WaitImage"), None)
    detected = None
    for e in events_h:
        if not e["type"].endswith("StateExited"):
            continue
        name = e["stateExitedEventDetails"]["name"]
        if machine == "ferry" and name == "WaitImage":
            detected = e["timestamp"]
        if machine != "ferry" and name == "PollImage" and (state_output(e).get("image") or {}).get("state") == "available":
            detected = e["timestamp"]
    image_event_invocations = function_invocations(w, "image-event") - image_event_before
    trans = count_transitions(events_h)
    invocations = lambda_invocations(events_h)
    total_invocations = invocations + (image_event_invocations if machine == "ferry" else 0)
    c = cost(trans["total"], total_invocations, lambda_ms)
    by_action: dict[str, int] = {}
    for call in ec2_calls:
        key = f"{call.get('caller') or 'bench'}:{call['action']}"
        by_action[key] = by_action.get(key, 0) + 1
    start, stop = desc["startDate"], desc.get("stopDate") or desc["startDate"]
    return {
        "machine": machine, "imageMinutes": image_minutes, "events": events,
        "timeScale": scale, "detectionTimeScale": detection_scale,
        "transitions": trans["total"], "transitionDetail": trans,
        "imageWaitTransitions": sum(trans["perState"].get(n, 0) for n in ("WaitImage", "PollImage", "ImageReady?")),
        "detectionLatencySeconds": (detected - available["time"]).total_seconds() if detected and available else None,
        "imageWaitSeconds": (available["time"] - wait_entered).total_seconds() if available and wait_entered else None,
        "executionSeconds": {"simulated": (stop - start).total_seconds(), "real": round(real, 2)},
        "lambdaInvocations": total_invocations,
        "lambdaInvocationsInHistory": invocations,
        "imageEventInvocations": image_event_invocations,
        "ec2Calls": len(ec2_calls), "ec2CallsByCaller": dict(sorted(by_action.items())),
        "cost": c, "costUsd": round(c["totalUsd"], 8),
        "status": desc["status"], "error": desc.get("error"),
        "executionArn": arn, "imageId": image_id,
        "imageAvailableAt": iso(available["time"]) if available else None,
        "imageEventStatus": available["status"] if available else None,
        "waitImageEnteredAt": iso(wait_entered) if wait_entered else None,
        "detectedAt": iso(detected) if detected else None,
    }


# -- the fleet ----------------------------------------------------------------------------

def run_fleet(w: World, size: int, max_concurrency: int, image_minutes: int, scale: float, timeout: float) -> dict:
    ec2 = w.ec2
    w.config(imagePendingMinutes=image_minutes, ec2EventsDropped=False)
    d = world_demo.Demo(w.world)
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16", TagSpecifications=d.tags("vpc", f"bench-fleet-{d.run_id}"))["Vpc"]["VpcId"]
    sub_a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.0.0/20", AvailabilityZone=azs[0])["Subnet"]["SubnetId"]
    sub_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.16.0/20", AvailabilityZone=azs[1])["Subnet"]["SubnetId"]
    image = d.pick_image()
    ids = ec2.run_instances(ImageId=image["ImageId"], InstanceType="t3.micro", MinCount=size, MaxCount=size,
                            SubnetId=sub_a, TagSpecifications=d.tags("instance", "bench-fleet-member"))["Instances"]
    ids = [i["InstanceId"] for i in ids]
    for i in ids:
        d.wait_instance(i, "running", timeout=120)
    request = {"migrations": [{"sourceInstanceId": i, "targetSubnetId": sub_b} for i in ids],
               "maxConcurrency": max_concurrency}
    w.scale(scale)
    start_marker = w.marker()
    t0 = time.monotonic()
    fleet_arn = w.sfn.start_execution(stateMachineArn=w.world["stateMachines"]["migrate-fleet"],
                                      name=f"bench-fleet-{d.run_id}", input=json.dumps(request))["executionArn"]
    desc = wait_done(w, fleet_arn, timeout)
    real = time.monotonic() - t0
    end_marker = w.marker()
    ec2_calls = w.calls_between(start_marker, end_marker, "ec2")
    by_action: dict[str, int] = {}
    for call in ec2_calls:
        key = f"{call.get('caller') or 'bench'}:{call['action']}"
        by_action[key] = by_action.get(key, 0) + 1

    # child executions: migrate-instance executions started during the fleet run
    children = []
    kwargs = {"stateMachineArn": w.world["stateMachines"]["migrate-instance"], "maxResults": 1000}
    while True:
        page = w.sfn.list_executions(**kwargs)
        children += [e for e in page["executions"] if e["startDate"] >= desc["startDate"]]
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    statuses: dict[str, int] = {}
    for ch in children:
        statuses[ch["status"]] = statuses.get(ch["status"], 0) + 1

    def peak(intervals):
        points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda p: (p[0], p[1]))
        cur = best = 0
        for _, delta in points:
            cur += delta
            best = max(best, cur)
        return best

    end_default = desc.get("stopDate") or w.sim_now()
    peak_children = peak([(c["startDate"], c.get("stopDate") or end_default) for c in children])
    # images pending at once: CreateImage call (world record, simulated time) -> available event
    created = {}
    for call in ec2_calls:
        if call["action"] == "CreateImage" and call.get("status") == 200:
            created.setdefault(call["seq"], parse_time(call["time"]))
    avail_times = []
    for rec in w.control("GET", "/ferry-world/events/invocations")["ec2Events"]:
        ev = rec["event"]
        t = parse_time(ev["time"])
        if ev.get("detail-type") == "EC2 AMI State Change" and ev["detail"].get("State") in ("available", "failed") \
                and desc["startDate"] <= t <= end_default:
            avail_times.append(t)
    create_times = sorted(created.values())
    avail_times.sort()
    pending_peak = None
    if create_times and len(create_times) == len(avail_times):
        # each image's pending time is the same (imagePendingMinutes); pair in order
        pending_peak = peak(list(zip(create_times, avail_times)))
    elif create_times:
        pending_peak = peak([(t, t + dt.timedelta(minutes=image_minutes)) for t in create_times])
    output = json.loads(desc.get("output") or "null")
    stop = desc.get("stopDate") or desc["startDate"]
    return {
        "instances": size, "maxConcurrency": max_concurrency, "imageMinutes": image_minutes, "timeScale": scale,
        "status": desc["status"], "error": desc.get("error"), "completes": desc["status"] == "SUCCEEDED",
        "executionSeconds": {"simulated": (stop - desc["startDate"]).total_seconds(), "real": round(real, 2)},
        "childExecutions": len(children), "childStatuses": statuses,
        "succeededMigrations": (output or {}).get("succeeded") if isinstance(output, dict) else None,
        "ec2Calls": len(ec2_calls), "ec2CallsPerInstance": round(len(ec2_calls) / size, 2),
        "ec2CallsByCaller": dict(sorted(by_action.items())),
        "peakConcurrentChildMigrations": peak_children,
        "peakConcurrentPendingImages": pending_peak,
        "imagesCreated": len(create_times),
        "executionArn": fleet_arn,
        "outputSummary": {k: v for k, v in (output or {}).items() if not isinstance(v, list)} if isinstance(output, dict) else None,
    }


# -- main ---------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--world-json", required=True, help="world.json written by tests/world/up")
    p.add_argument("--out", default=str(HERE / "results" / "workflows.json"))
    p.add_argument("--lambda-ms", type=float, default=25.0,
                   help="billed duration per invocation, ms (default 25: the measured release cold start)")
    p.add_argument("--cases", default="20,180", help="image minutes, comma separated")
    p.add_argument("--machines", default="ferry-delivered,ferry-dropped,baseline")
    p.add_argument("--scale-20", type=float, default=30)
    p.add_argument("--scale-180", type=float, default=100)
    p.add_argument("--baseline-scale-180", type=float, default=30,
                   help="the baseline's scale for 3 h images: its 15 s loop carries the poll Lambda's real time x scale")
    p.add_argument("--detection-scale", type=float, default=10,
                   help="clock scale from 5 simulated minutes before the image is due until WaitImage is left")
    p.add_argument("--fleet", type=int, default=100, help="fleet size (0: no fleet)")
    p.add_argument("--fleet-concurrency", type=int, default=100)
    p.add_argument("--fleet-image-minutes", type=int, default=20)
    p.add_argument("--fleet-scale", type=float, default=30)
    p.add_argument("--reuse-migrations", metavar="PATH",
                   help="take the single-migration results from this earlier workflows.json (use with --cases '')")
    p.add_argument("--fleet-timeout", type=float, default=1200, help="real seconds for the fleet execution")
    p.add_argument("--timeout", type=float, default=900, help="real seconds per execution")
    args = p.parse_args(argv)

    w = World(json.loads(Path(args.world_json).read_text()))
    health = w.control("GET", "/ferry-world/health")
    cfg0 = w.control("GET", "/ferry-world/config")
    scale0 = w.clock()["scale"]
    out_path = Path(args.out)
    result = {
        "generatedAt": iso(dt.datetime.now(dt.timezone.utc)),
        "world": {"endpoint": w.endpoint, "region": w.world["region"], "stack": w.world.get("stack"),
                  "binaries": "debug (target/debug) as tests/world/up deploys them",
                  "defaultTimeScale": scale0, "rules": health.get("rules"),
                  "ec2EventDelaySeconds": cfg0.get("ec2EventDelaySeconds")},
        "prices": {**PRICES, "lambdaBilledMsPerInvocation": args.lambda_ms,
                   "lambdaBilledMsSource": "--lambda-ms (default 25 ms: the measured cold start of the release "
                                           "arm64 binaries; the world runs debug binaries, whose times are not billed figures)"},
        "transitionCounting": "GetExecutionHistory: every *StateEntered event is one transition; within one state entry "
                              "every LambdaFunctionScheduled/TaskScheduled after the first (a Retry attempt, incl. the "
                              "States.Timeout re-attempts of the callback WaitImage) is one more. Start/end not counted.",
        "migrations": [], "goals": [], "fleet": None, "notes": [],
    }
    notes = result["notes"]

    def save():
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2, default=str) + "\n")

    if args.reuse_migrations:
        earlier = json.loads(Path(args.reuse_migrations).read_text())
        result["migrations"] = earlier.get("migrations", [])
        result["world"]["baselineStateMachine"] = earlier.get("world", {}).get("baselineStateMachine")
        notes.append(f"single-migration figures reused from the run generated at {earlier.get('generatedAt')}")
    try:
        baseline_arn = deploy_baseline(w)
        result["world"]["baselineStateMachine"] = baseline_arn
        machines = {
            "ferry-delivered": ("ferry", w.world["stateMachines"]["migrate-instance"], "delivered"),
            "ferry-dropped": ("ferry", w.world["stateMachines"]["migrate-instance"], "dropped"),
            "baseline": ("baseline-poll-15s", baseline_arn, "n/a"),
        }
        for minutes in [int(x) for x in args.cases.split(",") if x]:
            for key in args.machines.split(","):
                machine, arn, events = machines[key]
                scale = args.scale_20 if minutes <= 20 else (
                    args.baseline_scale_180 if key == "baseline" else args.scale_180)
                label = "ferry" if machine == "ferry" else machine
                print(f"workflows: {label} {minutes} min events {events} at scale {scale} ...", flush=True)
                try:
                    r = run_migration(w, "ferry" if machine == "ferry" else "baseline", arn, minutes, events, scale,
                                      args.detection_scale, args.lambda_ms, args.timeout)
                    r["machine"] = machine
                except Exception as exc:  # noqa: BLE001 - recorded, the rest still runs
                    traceback.print_exc()
                    r = {"machine": machine, "imageMinutes": minutes, "events": events, "status": "ERROR",
                         "error": f"{type(exc).__name__}: {exc}"}
                result["migrations"].append(r)
                print(f"  -> {r.get('status')} transitions {r.get('transitions')} latency {r.get('detectionLatencySeconds')} "
                      f"ec2 {r.get('ec2Calls')} real {r.get('executionSeconds', {}).get('real')}", flush=True)
                save()
        w.scale(scale0)
        if args.fleet:
            print(f"workflows: fleet of {args.fleet}, maxConcurrency {args.fleet_concurrency} ...", flush=True)
            try:
                result["fleet"] = run_fleet(w, args.fleet, args.fleet_concurrency, args.fleet_image_minutes,
                                            args.fleet_scale, args.fleet_timeout)
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                result["fleet"] = {"status": "ERROR", "error": f"{type(exc).__name__}: {exc}", "completes": False}
            print(f"  -> {json.dumps({k: v for k, v in result['fleet'].items() if k != 'ec2CallsByCaller'}, default=str)}", flush=True)
    finally:
        w.scale(scale0)
        w.config(imagePendingMinutes=cfg0["imagePendingMinutes"], ec2EventsDropped=cfg0["ec2EventsDropped"])

    result["goals"] = goals(result)
    notes.extend(standard_notes(result, args))
    save()
    print(json.dumps(result["goals"], indent=2))
    return 0


def standard_notes(result: dict, args) -> list[str]:
    notes = [
        "The world runs the debug binaries; a Lambda's real time passes on the simulated clock x the time scale. "
        f"Each single migration ran at timeScale, and at detectionTimeScale ({args.detection_scale}) from 5 simulated "
        "minutes before the image was due until WaitImage (the baseline: the poll loop) was left, so the detection "
        "latency carries at most ~detectionTimeScale x the real time of the last Lambda (ImageEvent / the poll).",
        "Detection latency = StateExited of WaitImage (ferry) or of the PollImage that returned the available image "
        "(baseline) minus the time of the image's 'EC2 AMI State Change' available event (the world's ec2Events record, "
        "simulated; ec2EventDelaySeconds 0). imageWaitSeconds = that event time minus WaitImage's first StateEntered.",
        "The baseline ran with EC2 events dropped: template.yaml's ImageEvent rule (which a baseline deployment would not "
        "have) then does nothing for it; the poll loop does not use events. ferry's Lambda invocations include the "
        "ImageEvent invocations (outside the execution history; the world's per-function counts).",
        "EC2 calls: every EC2 call the world recorded between an STS marker before StartExecution and one after the end "
        "(all by ferry's Lambdas: the bench makes none meanwhile; calls by caller in ec2CallsByCaller).",
        "Cost covers Step Functions transitions and Lambda requests + GB-seconds only (not X-Ray tracing, CloudWatch "
        "Logs, EventBridge (AWS service events on the default bus are free), EBS snapshots or instances).",
    ]
    runs = [m for m in result["migrations"] if m.get("status") == "SUCCEEDED"]
    for minutes in sorted({m["imageMinutes"] for m in runs}):
        base = next((m for m in runs if m["machine"] == "baseline-poll-15s" and m["imageMinutes"] == minutes), None)
        for f in (m for m in runs if m["machine"] == "ferry" and m["imageMinutes"] == minutes):
            if base and base.get("imageWaitTransitions"):
                notes.append(
                    f"{minutes} min image, events {f['events']}: the image wait alone takes {f['imageWaitTransitions']} "
                    f"transitions in ferry vs {base['imageWaitTransitions']} in the baseline "
                    f"({f['imageWaitTransitions'] / base['imageWaitTransitions']:.3f}); the rest of the machine is the "
                    f"same in both ({f['transitions'] - f['imageWaitTransitions']} vs "
                    f"{base['transitions'] - base['imageWaitTransitions']}: Preflight, CreateImage's polls while the "
                    "source stops, LaunchInstance, VerifyInstance's polls, Finalize).")
    fleet = result.get("fleet") or {}
    if fleet.get("ec2CallsByCaller") and fleet.get("instances"):
        per: dict[str, float] = {}
        for key, n in fleet["ec2CallsByCaller"].items():
            fn = key.split(":", 1)[0]
            per[fn] = per.get(fn, 0) + n / fleet["instances"]
        notes.append("fleet EC2 calls per instance by function: " + ", ".join(
            f"{fn} {v:.1f}" for fn, v in sorted(per.items(), key=lambda kv: -kv[1])))
    for m in result["migrations"]:
        if m.get("machine") == "baseline-poll-15s" and m.get("imageWaitSeconds") and m.get("transitionDetail"):
            loops = m["transitionDetail"]["perState"].get("PollImage", 0)
            if loops:
                notes.append(
                    f"baseline, {m['imageMinutes']} min image: {loops} polls over {m['imageWaitSeconds']:.0f} s, one per "
                    f"{m['imageWaitSeconds'] / loops:.1f} simulated s (15 s Wait + the poll Lambda's real time x scale); "
                    f"in AWS a loop takes ~15.1 s, so about {int(m['imageWaitSeconds'] // 15.1)} polls and "
                    f"{3 * int(m['imageWaitSeconds'] // 15.1) - 3 * loops:+d} transitions more than measured: the "
                    "measured baseline is if anything cheaper than the real one.")
    return notes


def goals(result: dict) -> list[dict]:
    out = []
    runs = [m for m in result["migrations"] if m.get("status") == "SUCCEEDED"]

    def find(machine, minutes, events):
        return next((m for m in runs if m["machine"] == machine and m["imageMinutes"] == minutes and m["events"] == events), None)

    for minutes in sorted({m["imageMinutes"] for m in result["migrations"]}):
        base = find("baseline-poll-15s", minutes, "n/a")
        for events in ("delivered", "dropped"):
            f = find("ferry", minutes, events)
            if f and base:
                ratio = f["transitions"] / base["transitions"]
                out.append({"name": f"transitions, ferry (events {events}) vs baseline, {minutes} min image",
                            "goal": "<= 1/10 of the baseline's", "value": f"{f['transitions']} vs {base['transitions']} "
                            f"({ratio:.3f})", "met": ratio <= 0.1})
        f = find("ferry", minutes, "delivered")
        if f and f.get("detectionLatencySeconds") is not None:
            out.append({"name": f"detection latency, events delivered, {minutes} min image",
                        "goal": "<= 5 simulated s after the event", "value": f["detectionLatencySeconds"],
                        "met": f["detectionLatencySeconds"] <= 5})
        f = find("ferry", minutes, "dropped")
        if f and f.get("detectionLatencySeconds") is not None and f.get("imageWaitSeconds"):
            share = f["detectionLatencySeconds"] / f["imageWaitSeconds"]
            out.append({"name": f"detection latency, events dropped, {minutes} min image",
                        "goal": "<= 10 % of the image's wait", "value": f"{f['detectionLatencySeconds']:.1f} s of "
                        f"{f['imageWaitSeconds']:.0f} s ({100 * share:.1f} %)", "met": share <= 0.1})
    fleet = result.get("fleet")
    if fleet:
        out.append({"name": f"fleet of {fleet.get('instances')} completes", "goal": "SUCCEEDED, every migration",
                    "value": f"{fleet.get('status')}, children {fleet.get('childStatuses')}",
                    "met": bool(fleet.get("completes")) and fleet.get("childStatuses", {}).get("SUCCEEDED") == fleet.get("instances")})
        if fleet.get("ec2CallsPerInstance") is not None:
            out.append({"name": "fleet EC2 calls per instance (polls included)", "goal": "<= 25 on average",
                        "value": fleet["ec2CallsPerInstance"], "met": fleet["ec2CallsPerInstance"] <= 25})
    return out


if __name__ == "__main__":
    sys.exit(main())
