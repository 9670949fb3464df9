"""Tests of the local AWS world's engine: faults, call recording, the simulated clock in
Step Functions (Wait, Retry), the Lambda runner and errorType reaching the ASL.

The world is started once per session with tests/world/up (on a free port, its own state
dir and a time scale of 3600: one simulated hour per real second) and stopped with
tests/world/down, which must leave no process behind.

    .venv-world/bin/python -m pytest tests/world/test_engine.py
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from worldtest import aws_client, free_port

ROOT = Path(__file__).resolve().parents[2]
WORLD_DIR = ROOT / "tests" / "world"
HUB = "123456789012"
SCALE = 3600.0
ROLE = f"arn:aws:iam::{HUB}:role/ferry-world-test"


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    state = tmp_path_factory.mktemp("world-state")
    port = free_port()
    env = dict(os.environ)
    env.update(
        FERRY_WORLD_PORT=str(port),
        FERRY_WORLD_STATE_DIR=str(state),
        FERRY_WORLD_TIME_SCALE=str(SCALE),
    )
    env.pop("MOTO_ACCOUNT_ID", None)
    t0 = time.monotonic()
    up = subprocess.run([str(WORLD_DIR / "up")], env=env, capture_output=True, text=True, timeout=600)
    if up.returncode != 0:
        pytest.fail(f"tests/world/up failed:\n{up.stdout}\n{up.stderr}")
    sys.stderr.write(f"\n[world] up in {time.monotonic() - t0:.2f}s: {up.stderr.strip()}\n")
    info = json.loads((state / "world.json").read_text())
    info["state"] = state
    info["port"] = port
    try:
        yield info
    finally:
        down = subprocess.run([str(WORLD_DIR / "down")], env=env, capture_output=True, text=True, timeout=120)
        sys.stderr.write(f"[world] {down.stdout.strip()} {down.stderr.strip()}\n")
        assert down.returncode == 0, down.stderr
        assert not (state / "world.pid").exists()


def _control(world, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{world['endpoint']}{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def _client(world, service: str, creds: dict | None = None):
    """A client of the engine tests' world that does not retry (faults must show)."""
    return aws_client(world["endpoint"], service, creds, region=world["region"],
                      config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


def _run(world, definition: dict, payload: dict | None = None, timeout: float = 60.0):
    """Creates a state machine, runs it to its end; returns (describe, events, real s)."""
    sfn = _client(world, "stepfunctions")
    arn = sfn.create_state_machine(
        name=f"test-{uuid.uuid4().hex[:10]}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    return _execute(world, arn, payload or {}, timeout)


def _execute(world, arn: str, payload: dict, timeout: float = 60.0):
    sfn = _client(world, "stepfunctions")
    t0 = time.monotonic()
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
    while True:
        d = sfn.describe_execution(executionArn=execution)
        if d["status"] != "RUNNING":
            break
        assert time.monotonic() - t0 < timeout, f"execution still running after {timeout}s"
        time.sleep(0.05)
    real = time.monotonic() - t0
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    return d, events, real


def _gap(events, first_type: str, second_type: str) -> float:
    a = next(e["timestamp"] for e in events if e["type"] == first_type)
    b = next(e["timestamp"] for e in events if e["type"] == second_type)
    return (b - a).total_seconds()


# ---------------------------------------------------------------------------------------
# Faults and call recording
# ---------------------------------------------------------------------------------------


def test_fault_fails_exactly_count_calls_then_succeeds(world):
    _control(world, "DELETE", "/ferry-world/calls")
    started = time.time()
    armed = _control(
        world,
        "POST",
        "/ferry-world/faults",
        {"service": "ec2", "action": "DescribeImages", "count": 2, "code": "RequestLimitExceeded",
         "message": "Request limit exceeded (test)"},
    )["faults"]
    assert armed[0]["status"] == 503
    ec2 = _client(world, "ec2")
    for _ in range(2):
        with pytest.raises(ClientError) as err:
            ec2.describe_images(Owners=["self"])
        assert err.value.response["Error"]["Code"] == "RequestLimitExceeded"
        assert err.value.response["Error"]["Message"] == "Request limit exceeded (test)"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    ec2.describe_images(Owners=["self"])  # the third succeeds
    ec2.describe_images(Owners=["self"])
    assert _control(world, "GET", "/ferry-world/faults")["faults"] == []

    calls = _control(world, "GET", "/ferry-world/calls?service=ec2&action=DescribeImages")["calls"]
    assert [c["status"] for c in calls] == [503, 503, 200, 200]
    assert [c.get("errorCode") for c in calls] == ["RequestLimitExceeded"] * 2 + [None] * 2
    assert all(c["account"] == HUB and c["region"] == world["region"] for c in calls)
    times = [dt.datetime.fromisoformat(c["time"]) for c in calls]
    assert times == sorted(times)
    # "wall": the real seconds each answer was ready, whatever the simulated clock's scale.
    walls = [c["wall"] for c in calls]
    assert walls == sorted(walls) and started <= walls[0] and walls[-1] <= time.time()


def test_json_protocol_fault_and_other_account_recorded(world):
    # A JSON-protocol fault (KMS) is answered as {"__type", "message"}.
    _control(world, "POST", "/ferry-world/faults",
             {"service": "kms", "action": "ListKeys", "count": 1, "code": "KMSInternalException"})
    kms = _client(world, "kms")
    with pytest.raises(ClientError) as err:
        kms.list_keys()
    assert err.value.response["Error"]["Code"] == "KMSInternalException"
    kms.list_keys()

    # AssumeRole into another account: calls with those keys are recorded as that account.
    creds = _client(world, "sts").assume_role(
        RoleArn="arn:aws:iam::210987654321:role/OrganizationAccountAccessRole", RoleSessionName="ferry-world-test"
    )["Credentials"]
    spoke = _client(world, "ec2", creds)
    spoke.describe_vpcs()
    calls = _control(world, "GET", "/ferry-world/calls?service=ec2&action=DescribeVpcs")["calls"]
    assert calls[-1]["account"] == "210987654321"
    kms_calls = _control(world, "GET", "/ferry-world/calls?service=kms&action=ListKeys")["calls"]
    assert [c["status"] for c in kms_calls[-2:]] == [500, 200]


# ---------------------------------------------------------------------------------------
# Step Functions on the simulated clock
# ---------------------------------------------------------------------------------------


def test_wait_an_hour_takes_a_real_second(world):
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "Seconds": 3600, "Next": "WaitPath"},
            "WaitPath": {"Type": "Wait", "SecondsPath": "$.more", "Next": "Done"},
            "Done": {"Type": "Pass", "End": True},
        },
    }
    d, events, real = _run(world, definition, {"more": 1800})
    assert d["status"] == "SUCCEEDED"
    assert real < 5, f"a 1.5 h wait took {real:.1f}s real"
    waits = [e["timestamp"] for e in events if e["type"] in ("WaitStateEntered", "WaitStateExited")]
    first = (waits[1] - waits[0]).total_seconds()
    second = (waits[3] - waits[2]).total_seconds()
    # Never shorter than asked; longer only by real processing time times the scale
    # (half a real second of slack: the machine may be busy).
    slack = 0.5 * SCALE
    assert 3600 <= first < 3600 + slack, first
    assert 1800 <= second < 1800 + slack, second
    # Execution start/stop dates are on the same clock.
    assert (d["stopDate"] - d["startDate"]).total_seconds() >= 5400


def test_execution_history_pages_newest_first_and_without_data_on_request(world):
    """Step Functions API Reference, GetExecutionHistory: reverseOrder, maxResults with
    nextToken, includeExecutionData (the ferry CLI's watch reads newest first)."""
    definition = {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Result": {"x": 1}, "End": True}}}
    d, events, _ = _run(world, definition, {"secret": "s"})
    assert d["status"] == "SUCCEEDED"
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(ids) >= 6
    sfn = _client(world, "stepfunctions")
    arn = d["executionArn"]
    newest = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=2)
    assert [e["id"] for e in newest["events"]] == ids[::-1][:2]
    assert newest["events"][0]["type"] == "ExecutionSucceeded"
    seen, token = [], None
    while True:
        kw = {"nextToken": token} if token else {}
        page = sfn.get_execution_history(executionArn=arn, maxResults=2, **kw)
        seen += [e["id"] for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == ids
    bare = sfn.get_execution_history(executionArn=arn, includeExecutionData=False, maxResults=1000)["events"]
    assert "secret" not in json.dumps(bare, default=str)
    assert any("stateEnteredEventDetails" in e and e["stateEnteredEventDetails"]["name"] == "A" for e in bare)
    assert "secret" in json.dumps(events, default=str)


def test_wait_timestamp_uses_simulated_now(world):
    clock = _control(world, "GET", "/ferry-world/clock")
    now = dt.datetime.fromisoformat(clock["now"])
    target = (now + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    definition = {
        "StartAt": "Until",
        "States": {"Until": {"Type": "Wait", "TimestampPath": "$.at", "End": True}},
    }
    d, events, real = _run(world, definition, {"at": target})
    assert d["status"] == "SUCCEEDED" and real < 5
    exited = next(e["timestamp"] for e in events if e["type"] == "WaitStateExited")
    assert abs((exited - dt.datetime.fromisoformat(target.replace("Z", "+00:00"))).total_seconds()) < 120


def test_the_time_scale_can_change_while_the_world_runs(world):
    """POST /ferry-world/clock/scale: the clock goes on from where it is (no jump), at the
    new rate; reset puts the start-up scale back."""
    before = _control(world, "GET", "/ferry-world/clock", None)
    try:
        changed = _control(world, "POST", "/ferry-world/clock/scale", {"scale": 6})
        assert changed["scale"] == 6
        t0 = dt.datetime.fromisoformat(changed["now"])
        assert t0 >= dt.datetime.fromisoformat(before["now"])
        time.sleep(0.5)
        t1 = dt.datetime.fromisoformat(_control(world, "GET", "/ferry-world/clock", None)["now"])
        # 0.5 s real at 6x is about 3 simulated seconds (not 300, as at 600x).
        assert 2.5 <= (t1 - t0).total_seconds() < 30, (t0, t1)
        with pytest.raises(Exception):
            _control(world, "POST", "/ferry-world/clock/scale", {"scale": 0})
    finally:
        _control(world, "POST", "/ferry-world/clock/scale", {"scale": before["scale"]})
    assert _control(world, "GET", "/ferry-world/clock", None)["scale"] == before["scale"]


def test_stop_execution_interrupts_a_wait_and_advance_shortens_one(world):
    sfn = _client(world, "stepfunctions")
    definition = {"StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 864000, "End": True}}}
    arn = sfn.create_state_machine(name=f"test-{uuid.uuid4().hex[:10]}", definition=json.dumps(definition),
                                   roleArn=ROLE)["stateMachineArn"]
    # StopExecution ends a 10-day wait at once.
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    time.sleep(0.2)
    sfn.stop_execution(executionArn=execution, error="Test.Stop", cause="stopped by the test")
    t0 = time.monotonic()
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() - t0 < 5, "StopExecution did not end the Wait"
        time.sleep(0.05)
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    # Advancing the clock 10 days ends the same wait (it is measured on the clock).
    t0 = time.monotonic()
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    time.sleep(0.2)
    _control(world, "POST", "/ferry-world/clock/advance", {"seconds": 864000})
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() - t0 < 5, "clock/advance did not end the Wait"
        time.sleep(0.05)
    d = sfn.describe_execution(executionArn=execution)
    assert d["status"] == "SUCCEEDED"
    assert (d["stopDate"] - d["startDate"]).total_seconds() >= 864000


def _failing_preflight(world, **retry):
    """A state machine of one Task that always fails, retried as `retry` says: the real
    preflight binary refuses a non-object request with Ferry.InvalidInput before any AWS
    call (a deterministic failing Task)."""
    preflight = world["functions"]["PreflightFunction"]["arn"]
    return {
        "StartAt": "Fail",
        "States": {
            "Fail": {
                "Type": "Task",
                "Resource": preflight,
                "Retry": [{"ErrorEquals": ["Ferry.InvalidInput"], **retry}],
                "End": True,
            }
        },
    }


def test_retry_intervals_backoff_and_max_delay_on_the_clock(world):
    definition = _failing_preflight(world, IntervalSeconds=600, BackoffRate=2, MaxDelaySeconds=1000, MaxAttempts=3)
    d, events, real = _run(world, definition, {"request": 42})
    assert d["status"] == "FAILED" and d["error"] == "Ferry.InvalidInput"
    assert real < 10, f"3 retries of 10+ minutes took {real:.1f}s real"
    failed = [e["timestamp"] for e in events if e["type"] == "LambdaFunctionFailed"]
    scheduled = [e["timestamp"] for e in events if e["type"] == "LambdaFunctionScheduled"]
    assert len(failed) == 4 and len(scheduled) == 4  # 1 attempt + 3 retries
    gaps = [(scheduled[i + 1] - failed[i]).total_seconds() for i in range(3)]
    # IntervalSeconds 600, x2 -> 1200 capped at MaxDelaySeconds 1000, then 1000 again.
    for gap, want in zip(gaps, [600, 1000, 1000]):
        assert want <= gap < want + 0.5 * SCALE, gaps  # exact delays are checked below
    retries = _control(world, "GET", f"/ferry-world/sfn/retries?executionArn={d['executionArn']}")["retries"]
    assert [r["delaySeconds"] for r in retries] == [600, 1000, 1000]


def test_full_jitter_stays_within_the_capped_delay(world):
    definition = _failing_preflight(world, IntervalSeconds=300, BackoffRate=3, MaxDelaySeconds=900, MaxAttempts=4,
                                    JitterStrategy="FULL")
    d, events, real = _run(world, definition, {"request": 42})
    assert d["status"] == "FAILED" and real < 10
    retries = _control(world, "GET", f"/ferry-world/sfn/retries?executionArn={d['executionArn']}")["retries"]
    delays = [r["delaySeconds"] for r in retries]
    caps = [300, 900, 900, 900]
    assert len(delays) == 4
    assert all(0 <= got <= cap for got, cap in zip(delays, caps)), delays
    assert delays != [300, 900, 900, 900], "FULL jitter should randomise the delays"


# ---------------------------------------------------------------------------------------
# Lambda: the real binaries, errorType into the ASL
# ---------------------------------------------------------------------------------------


def test_migrate_instance_fails_with_the_lambdas_error_type(world):
    arn = world["stateMachines"]["migrate-instance"]
    _control(world, "DELETE", "/ferry-world/calls")
    d, events, real = _execute(world, arn, {"sourceInstanceId": "i-123"})
    assert d["status"] == "FAILED", d
    assert d["error"] == "Ferry.InvalidInput", d
    cause = json.loads(d["cause"])
    assert cause["errorType"] == "Ferry.InvalidInput" and "targetSubnetId" in cause["errorMessage"]
    failed = [e for e in events if e["type"] == "LambdaFunctionFailed"]
    assert failed[0]["lambdaFunctionFailedEventDetails"]["error"] == "Ferry.InvalidInput"
    # Preflight refused before any AWS call: the only calls are the interpreter's Invoke.
    calls = _control(world, "GET", "/ferry-world/calls")["calls"]
    assert not [c for c in calls if c.get("caller") == "ferry-preflight"], calls
    invokes = [c for c in calls if c["service"] == "lambda" and c["action"] == "Invoke"]
    assert invokes and invokes[0]["caller"] == "stepfunctions"


def test_direct_invoke_answers_like_lambda(world):
    lam = _client(world, "lambda")
    r = lam.invoke(FunctionName=world["functions"]["PreflightFunction"]["name"],
                   Payload=b'{"request": {}, "context": {}}', LogType="Tail")
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    body = json.loads(r["Payload"].read())
    assert set(body) >= {"errorType", "errorMessage"} and body["errorType"] == "Ferry.InvalidInput"
    import base64

    assert "START RequestId" in base64.b64decode(r["LogResult"]).decode()


def test_faults_reach_the_rust_lambdas_calls(world):
    """A fault on EC2 hits the preflight binary's DescribeInstances (same port), which
    the call log attributes to the function."""
    _control(world, "DELETE", "/ferry-world/calls")
    _control(world, "POST", "/ferry-world/faults",
             {"service": "ec2", "action": "DescribeInstances", "count": 1, "code": "UnauthorizedOperation",
              "status": 403, "message": "You are not authorized (test)"})
    arn = world["stateMachines"]["migrate-instance"]
    d, events, real = _execute(
        world, arn, {"sourceInstanceId": "i-0123456789abcdef0", "targetSubnetId": "subnet-0123456789abcdef0"}
    )
    assert d["status"] == "FAILED"
    assert d["error"] == "Ferry.AwsError", d
    assert "You are not authorized (test)" in d["cause"]
    calls = _control(world, "GET", "/ferry-world/calls?service=ec2&action=DescribeInstances")["calls"]
    assert calls and calls[0]["caller"] == "ferry-preflight" and calls[0]["status"] == 403
    assert calls[0]["account"] == HUB


def test_lambda_service_errors_are_named_lambda_code_for_retry(world):
    """An Invoke that AWS Lambda itself rejects (throttled) is `Lambda.TooManyRequestsException`
    to the ASL, which the Preflight Retry handles; then the function's own error ends it."""
    _control(world, "POST", "/ferry-world/faults",
             {"service": "lambda", "action": "Invoke", "count": 1, "code": "TooManyRequestsException",
              "caller": "stepfunctions"})
    arn = world["stateMachines"]["migrate-instance"]
    d, events, real = _execute(world, arn, {"sourceInstanceId": "i-123"})
    assert d["error"] == "Ferry.InvalidInput"
    errors = [e["lambdaFunctionFailedEventDetails"]["error"] for e in events if e["type"] == "LambdaFunctionFailed"]
    assert errors == ["Lambda.TooManyRequestsException", "Ferry.InvalidInput"]


# ---------------------------------------------------------------------------------------
# The runner with a tiny custom runtime (Python bootstrap): timeout, crash, concurrency
# ---------------------------------------------------------------------------------------

_BOOTSTRAP = textwrap.dedent(
    """\
    #!/usr/bin/env python3
    import json, os, sys, time, urllib.request
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
    while True:
        with urllib.request.urlopen(api + "/invocation/next") as r:
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            deadline = int(r.headers["Lambda-Runtime-Deadline-Ms"])
            arn = r.headers["Lambda-Runtime-Invoked-Function-Arn"]
            trace = r.headers["Lambda-Runtime-Trace-Id"]
            event = json.load(r)
        if event.get("crash"):
            sys.exit(3)
        if event.get("kms_create_key"):  # one AWS call with the sandbox's credentials
            env = os.environ
            req = urllib.request.Request(env["AWS_ENDPOINT_URL"] + "/", method="POST", headers={
                "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.CreateKey",
                "X-Amz-Security-Token": env.get("AWS_SESSION_TOKEN", ""),
                "Authorization": "AWS4-HMAC-SHA256 Credential=" + env["AWS_ACCESS_KEY_ID"] + "/20260101/"
                                 + env["AWS_REGION"] + "/kms/aws4_request, SignedHeaders=host, Signature=0"},
                data=json.dumps({"Description": event["kms_create_key"]}).encode())
            event["keyId"] = json.load(urllib.request.urlopen(req))["KeyMetadata"]["KeyId"]
        time.sleep(event.get("sleep", 0))
        if event.get("big"):
            url, body = api + f"/invocation/{rid}/response", {"big": "x" * event["big"]}
        elif event.get("fail"):
            url, body = api + f"/invocation/{rid}/error", {"errorType": "Test.Failure", "errorMessage": event["fail"]}
        else:
            url, body = api + f"/invocation/{rid}/response", {
                "echo": event, "pid": os.getpid(), "arn": arn, "trace": trace, "deadline": deadline,
                "env": {k: os.environ.get(k) for k in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_ENDPOINT_URL",
                        "AWS_REGION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
                        "GREETING")}}
        urllib.request.urlopen(urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")).read()
    """
)


@pytest.fixture(scope="module")
def echo_function(world):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100755 << 16
        zf.writestr(info, _BOOTSTRAP)
    iam = _client(world, "iam")
    role = iam.create_role(RoleName="echo-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    lam = _client(world, "lambda")
    lam.create_function(FunctionName="echo", Runtime="provided.al2023", Handler="bootstrap", Role=role,
                        Code={"ZipFile": buf.getvalue()}, Timeout=2, MemorySize=256,
                        Environment={"Variables": {"GREETING": "hello"}})
    return "echo"


def test_runner_answers_with_the_runtime_api_contract(world, echo_function):
    lam = _client(world, "lambda")
    r = lam.invoke(FunctionName=echo_function, Payload=json.dumps({"x": 1}))
    assert "FunctionError" not in r
    body = json.loads(r["Payload"].read())
    assert body["echo"] == {"x": 1}
    assert body["arn"].endswith(":function:echo")
    assert body["trace"].startswith("Root=1-")
    assert body["deadline"] > time.time() * 1000
    assert body["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": "echo", "AWS_ENDPOINT_URL": world["endpoint"],
        "AWS_REGION": world["region"], "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "GREETING": "hello",
    }
    warm = json.loads(lam.invoke(FunctionName=echo_function, Payload=b"{}")["Payload"].read())
    assert warm["pid"] == body["pid"], "the second invoke should reuse the warm sandbox"

    r = lam.invoke(FunctionName=echo_function, Payload=json.dumps({"fail": "nope"}))
    assert r["FunctionError"] == "Unhandled"
    assert json.loads(r["Payload"].read()) == {"errorType": "Test.Failure", "errorMessage": "nope"}


def test_runner_enforces_the_timeout_and_reports_crashes(world, echo_function):
    lam = _client(world, "lambda")
    t0 = time.monotonic()
    r = lam.invoke(FunctionName=echo_function, Payload=json.dumps({"sleep": 30}))
    took = time.monotonic() - t0
    assert r["FunctionError"] == "Unhandled"
    assert json.loads(r["Payload"].read())["errorType"] == "Sandbox.Timedout"
    assert 1.9 < took < 6, took

    r = lam.invoke(FunctionName=echo_function, Payload=json.dumps({"crash": True}))
    assert r["FunctionError"] == "Unhandled"
    assert json.loads(r["Payload"].read())["errorType"] == "Runtime.ExitError"
    # and the next invoke gets a fresh sandbox
    assert "echo" in json.loads(lam.invoke(FunctionName=echo_function, Payload=b"{}")["Payload"].read())


def test_concurrent_invokes_start_more_sandboxes(world, echo_function):
    from concurrent.futures import ThreadPoolExecutor

    lam = _client(world, "lambda")

    def call(_):
        return json.loads(lam.invoke(FunctionName=echo_function, Payload=json.dumps({"sleep": 0.5}))["Payload"].read())["pid"]

    with ThreadPoolExecutor(3) as pool:
        pids = set(pool.map(call, range(3)))
    assert len(pids) == 3
    sandboxes = _control(world, "GET", "/ferry-world/functions")["sandboxes"]
    assert len([s for s in sandboxes if s["function"] == "echo" and not s["dead"]]) >= 3


def _keys_described(world, description: str) -> list[str]:
    kms = _client(world, "kms")
    return [k["KeyId"] for k in kms.list_keys()["Keys"]
            if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"].get("Description") == description]


def test_kill_fault_kills_the_calling_sandbox_after_the_call_took_effect(world, echo_function):
    """A Lambda killed mid-step: "mode": "kill" lets the call through, then SIGKILLs the
    sandbox that made it; Invoke answers Runtime.ExitError, a Task fails with that error
    (a Retry on the Lambda service exceptions does not match it), and the next invoke
    gets a fresh sandbox. Calls by anything but a sandbox never match a kill fault."""
    iam = _client(world, "iam")
    iam.put_role_policy(RoleName="echo-role", PolicyName="create-keys", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"}]}))
    lam = _client(world, "lambda")
    warm = json.loads(lam.invoke(FunctionName=echo_function, Payload=b"{}")["Payload"].read())["pid"]
    _control(world, "DELETE", "/ferry-world/calls")
    armed = _control(world, "POST", "/ferry-world/faults",
                     {"service": "kms", "action": "CreateKey", "mode": "kill", "count": 1})["faults"][0]
    assert armed["mode"] == "kill" and armed["code"] == "SandboxKilled"

    # The test's own CreateKey is not a sandbox's: it goes through, the fault stays armed.
    _client(world, "kms").create_key(Description="not-a-sandbox")
    assert [f["id"] for f in _control(world, "GET", "/ferry-world/faults")["faults"]] == [armed["id"]]

    description = f"killed-{uuid.uuid4().hex[:8]}"
    r = lam.invoke(FunctionName=echo_function, Payload=json.dumps({"kms_create_key": description}))
    assert r["FunctionError"] == "Unhandled"
    body = json.loads(r["Payload"].read())
    assert body["errorType"] == "Runtime.ExitError", body
    assert "Runtime exited with error: signal: killed" in body["errorMessage"], body
    assert _control(world, "GET", "/ferry-world/faults")["faults"] == []
    # The call took effect before the sandbox died, and its record says who was killed.
    assert len(_keys_described(world, description)) == 1
    killed = [c for c in _control(world, "GET", "/ferry-world/calls?service=kms&action=CreateKey")["calls"]
              if c.get("fault") == armed["id"]]
    assert len(killed) == 1 and killed[0]["caller"] == echo_function
    assert killed[0]["killed"] == {"function": echo_function, "pid": warm}
    sandboxes = _control(world, "GET", "/ferry-world/functions")["sandboxes"]
    assert warm not in [s["pid"] for s in sandboxes if s["function"] == echo_function and not s["dead"]]
    fresh = json.loads(lam.invoke(FunctionName=echo_function, Payload=b"{}")["Payload"].read())
    assert fresh["pid"] != warm

    # In a state machine: the Task fails with Runtime.ExitError; ferry's Retry list (the
    # Lambda service exceptions, Ferry.*) does not match it, so there is one attempt.
    _control(world, "POST", "/ferry-world/faults",
             {"service": "kms", "action": "CreateKey", "mode": "kill", "count": 1, "caller": echo_function})
    arn = f"arn:aws:lambda:{world['region']}:{HUB}:function:{echo_function}"
    retry = {"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                             "Lambda.TooManyRequestsException", "Ferry.Throttled", "Ferry.Transient"],
             "IntervalSeconds": 2, "MaxAttempts": 3}
    d, events, _ = _run(world, {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": arn,
                                                                 "Retry": [retry], "End": True}}},
                        {"kms_create_key": description + "-sfn"})
    assert d["status"] == "FAILED" and d["error"] == "Runtime.ExitError", d
    assert "signal: killed" in d["cause"]
    failed = [e for e in events if e["type"] == "LambdaFunctionFailed"]
    assert [e["lambdaFunctionFailedEventDetails"]["error"] for e in failed] == ["Runtime.ExitError"]
    assert len(_keys_described(world, description + "-sfn")) == 1


# ---------------------------------------------------------------------------------------
# States.DataLimitExceeded: the 256 KiB payload quota (ferry_world/engine/sfn.py)
# ---------------------------------------------------------------------------------------

LIMIT = 262144  # engine/config.py sfnPayloadLimitBytes, AWS's "256 KiB as a UTF-8 encoded string"


@pytest.fixture
def payload_limit(world):
    """Restores the world's payload limit after a test that changes it."""
    yield lambda n: _control(world, "POST", "/ferry-world/config", {"sfnPayloadLimitBytes": n})
    _control(world, "POST", "/ferry-world/config", {"sfnPayloadLimitBytes": LIMIT})


def _catch_all(next_state="Caught"):
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": next_state}]


def _data_limit_failure(d, events):
    assert d["status"] == "FAILED", d["status"]
    assert d["error"] == "States.DataLimitExceeded", (d["error"], d.get("cause", "")[:600])
    assert not [e for e in events if e["type"] == "PassStateEntered"
                and e["stateEnteredEventDetails"]["name"] == "Caught"], "a Catch handled DataLimitExceeded"


def test_pass_output_over_the_limit_fails_the_execution_despite_catch_all(world):
    """A Pass state's output over 256 KiB (here inside a Parallel branch, whose Catch has
    States.ALL) is States.DataLimitExceeded, which States.ALL does not catch."""
    big = "x" * (LIMIT + 10)
    definition = {
        "StartAt": "Par",
        "States": {
            "Par": {"Type": "Parallel", "Branches": [{"StartAt": "Big", "States": {
                "Big": {"Type": "Pass", "Result": big, "End": True}}}],
                "Catch": _catch_all(), "End": True},
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    d, events, _ = _run(world, definition)
    _data_limit_failure(d, events)
    assert "'Big'" in d["cause"], d["cause"]
    # The same from a Map iteration, under the Map's Catch States.ALL.
    definition["States"]["Par"] = {
        "Type": "Map", "ItemsPath": "$.items", "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Big", "States": {"Big": {"Type": "Pass", "Result": big, "End": True}}},
        "Catch": _catch_all(), "End": True}
    d, events, _ = _run(world, definition, {"items": [1]})
    _data_limit_failure(d, events)


def test_lambda_result_over_the_limit_fails_the_execution_despite_catch_all(world, echo_function):
    """A Lambda Task whose result is larger than 256 KiB: States.DataLimitExceeded, not
    caught by States.ALL nor retried by a States.ALL Retrier."""
    arn = f"arn:aws:lambda:{world['region']}:{HUB}:function:{echo_function}"
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {"Type": "Task", "Resource": arn,
                     "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1}],
                     "Catch": _catch_all(), "End": True},
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    d, events, _ = _run(world, definition, {"big": LIMIT + 100})
    _data_limit_failure(d, events)
    assert arn in d["cause"], d["cause"]
    assert len([e for e in events if e["type"] == "LambdaFunctionScheduled"]) == 1, "DataLimitExceeded was retried"


def test_payload_at_the_limit_passes_and_one_byte_more_fails(world):
    """The quota counts UTF-8 bytes of the JSON text: an output of exactly 262,144 bytes
    (with 2-byte characters in it) passes; 262,145 bytes fails."""
    def machine(n_bytes):
        # Output {"r":"é...éx..."}: 8 bytes of JSON around the string.
        accents = 1000
        value = "\u00e9" * accents + "x" * (n_bytes - 8 - 2 * accents)
        assert len(json.dumps({"r": value}, separators=(",", ":"), ensure_ascii=False).encode()) == n_bytes
        return {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": value, "ResultPath": "$.r", "End": True}}}

    d, _, _ = _run(world, machine(LIMIT))
    assert d["status"] == "SUCCEEDED", d
    assert len(d["output"].encode()) >= LIMIT
    d, events, _ = _run(world, machine(LIMIT + 1))
    _data_limit_failure(d, events)


def test_input_after_parameters_over_the_limit_fails(world, echo_function, payload_limit):
    """A state's input after Parameters larger than the quota: States.DataLimitExceeded,
    even when the state's output would be small (Pass with Result) and, for a Task, before
    the function is called. The limit is a world setting (lowered here)."""
    pad = "y" * 150000
    definition = {
        "StartAt": "Dup",
        "States": {"Dup": {"Type": "Pass", "Parameters": {"a.$": "$.pad", "b.$": "$.pad"},
                           "Result": {"small": True}, "End": True}},
    }
    d, events, _ = _run(world, definition, {"pad": pad})
    _data_limit_failure(d, events)
    assert "'Dup'" in d["cause"], d["cause"]

    payload_limit(2000)
    arn = f"arn:aws:lambda:{world['region']}:{HUB}:function:{echo_function}"
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {"Type": "Task", "Resource": arn, "Parameters": {"a.$": "$.pad", "b.$": "$.pad"},
                     "Catch": _catch_all(), "End": True},
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    d, events, _ = _run(world, definition, {"pad": "z" * 1500})
    _data_limit_failure(d, events)
    assert "'Call'" in d["cause"], d["cause"]
    assert not [e for e in events if e["type"] == "LambdaFunctionScheduled"], "the function was called"
    # Under the lowered limit, a small payload still runs.
    d, _, _ = _run(world, definition, {"pad": "z" * 100})
    assert d["status"] == "SUCCEEDED", d


# ---------------------------------------------------------------------------------------
# EventBridge Scheduler: the deployed schedule, fired over HTTP (rules/scheduler.py)
# ---------------------------------------------------------------------------------------


def test_the_deployed_schedule_fires_over_http_only_when_enabled(world):
    schedule = world["schedules"]["DistributeImageSchedule"]
    assert schedule["name"] == f"{world['stack']}-distribute-image" and schedule["group"] == "default"
    fire = {"accountId": world["hubAccountId"], "region": world["region"], "name": schedule["name"]}
    machine = world["stateMachines"]["distribute-image"]
    sfn = _client(world, "stepfunctions")
    before = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]}

    answer = _control(world, "POST", "/ferry-world/schedules/fire", fire)
    assert answer["invoked"] is False and answer["state"] == "DISABLED" and answer["executionArn"] is None, answer
    assert {e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]} == before

    scheduler = _client(world, "scheduler")
    s = scheduler.get_schedule(Name=schedule["name"])
    update = {k: s[k] for k in ("Name", "GroupName", "ScheduleExpression", "ScheduleExpressionTimezone",
                                "FlexibleTimeWindow", "Target", "Description")}
    scheduler.update_schedule(**update, State="ENABLED")
    try:
        answer = _control(world, "POST", "/ferry-world/schedules/fire", {"arn": schedule["arn"]})
    finally:
        scheduler.update_schedule(**update, State="DISABLED")
    assert answer["invoked"] is True and answer["failure"] is None and answer["input"] == {}, answer
    assert answer["targetArn"] == machine and answer["executionArn"].startswith(
        machine.replace(":stateMachine:", ":execution:"))
    d = sfn.describe_execution(executionArn=answer["executionArn"])
    assert json.loads(d["input"]) == {}
    # Let the started run end (its empty input fails ResolveImage/Preflight): one left
    # running into the next test invoked a Lambda after that test's reset (seen in CI:
    # a sandbox of ferry-distribute-preflight right after /ferry-world/reset).
    t0 = time.monotonic()
    while sfn.describe_execution(executionArn=answer["executionArn"])["status"] == "RUNNING":
        assert time.monotonic() - t0 < 60, "the scheduled run is still running after 60 s"
        time.sleep(0.05)
    seen = _control(world, "GET", "/ferry-world/events/invocations")
    assert answer["executionArn"] in [x.get("executionArn") for x in seen["delivered"] if x["source"] == "scheduler"]

    with pytest.raises(urllib.error.HTTPError) as e:
        _control(world, "POST", "/ferry-world/schedules/fire", {**fire, "name": "no-such-schedule"})
    assert e.value.code == 404 and json.load(e.value)["error"] == "ResourceNotFoundException"


# ---------------------------------------------------------------------------------------
# Reset (last: it empties the world, then redeploys ferry)
# ---------------------------------------------------------------------------------------


def test_reset_empties_the_world_and_deploy_restores_ferry(world):
    _control(world, "POST", "/ferry-world/config", {"imagePendingMinutes": 1})
    _control(world, "POST", "/ferry-world/faults", {"service": "ec2", "action": "RunInstances", "code": "InsufficientInstanceCapacity"})
    assert _control(world, "GET", "/ferry-world/functions")["sandboxes"]
    assert _control(world, "POST", "/ferry-world/reset", {})["reset"] is True
    assert _control(world, "GET", "/ferry-world/faults")["faults"] == []
    assert _control(world, "GET", "/ferry-world/config")["imagePendingMinutes"] == 12
    assert _control(world, "GET", "/ferry-world/functions")["sandboxes"] == []
    assert _client(world, "lambda").list_functions()["Functions"] == []
    assert _client(world, "stepfunctions").list_state_machines()["stateMachines"] == []

    env = dict(os.environ, PYTHONPATH=str(WORLD_DIR))
    subprocess.run(
        [sys.executable, "-m", "ferry_world.deploy", "--endpoint", world["endpoint"],
         "--out", str(world["state"] / "world.json")],
        env=env, check=True, capture_output=True, timeout=120,
    )
    d, events, real = _execute(world, world["stateMachines"]["migrate-instance"], {"sourceInstanceId": "i-123"})
    assert d["error"] == "Ferry.InvalidInput"


def test_nested_execution_sync2_success_and_failure(world):
    """arn:aws:states:::states:startExecution.sync:2 (ferry_world/sfn.py): the parent
    gets the child's DescribeExecution with AWS's capitalised fields and Output parsed;
    a failed child is States.TaskFailed whose Cause carries the child's Error/Cause."""
    sfn = _client(world, "stepfunctions")
    child = sfn.create_state_machine(
        name=f"child-{uuid.uuid4().hex[:8]}", roleArn=ROLE,
        definition=json.dumps({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [
            {"Variable": "$.fail", "BooleanEquals": True, "Next": "Boom"}], "Default": "Ok"},
            "Ok": {"Type": "Pass", "Result": {"done": True}, "End": True},
            "Boom": {"Type": "Fail", "Error": "Ferry.TargetAccessDenied", "Cause": "no role"}}}),
    )["stateMachineArn"]
    parent = {
        "StartAt": "Run",
        "States": {
            "Run": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                    "Parameters": {"StateMachineArn": child, "Name.$": "$.name", "Input": {"fail.$": "$.fail"}},
                    "ResultSelector": {"arn.$": "$.ExecutionArn", "status.$": "$.Status", "out.$": "$.Output"},
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
                    "End": True},
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    d, _, _ = _run(world, parent, {"name": f"ok-{uuid.uuid4().hex[:8]}", "fail": False})
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    assert out["status"] == "SUCCEEDED" and out["out"] == {"done": True}
    assert out["arn"].startswith(child.replace(":stateMachine:", ":execution:"))
    d, _, _ = _run(world, parent, {"name": f"ko-{uuid.uuid4().hex[:8]}", "fail": True})
    out = json.loads(d["output"])
    assert out["error"]["Error"] == "States.TaskFailed", out
    cause = json.loads(out["error"]["Cause"])
    assert cause["Status"] == "FAILED" and cause["Error"] == "Ferry.TargetAccessDenied", cause


# ---------------------------------------------------------------------------------------
# Where the world looks for the Lambda binaries
# ---------------------------------------------------------------------------------------

def test_binaries_are_found_where_cargo_target_dir_puts_them(monkeypatch, tmp_path):
    from ferry_world.engine import deploy

    monkeypatch.delenv("FERRY_WORLD_BINARIES", raising=False)
    monkeypatch.delenv("CARGO_TARGET_DIR", raising=False)
    assert deploy.default_binaries_dir() == ROOT / "target" / "debug"
    monkeypatch.setenv("CARGO_TARGET_DIR", str(tmp_path))
    assert deploy.default_binaries_dir() == tmp_path / "debug"
    monkeypatch.setenv("CARGO_TARGET_DIR", "build/out")  # relative: from the repository root
    assert deploy.default_binaries_dir() == ROOT / "build" / "out" / "debug"
    monkeypatch.setenv("FERRY_WORLD_BINARIES", str(tmp_path / "bins"))
    assert deploy.default_binaries_dir() == tmp_path / "bins"


def test_up_names_the_directory_it_searched(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FERRY_WORLD_BINARIES"}
    env.update(CARGO_TARGET_DIR=str(tmp_path), FERRY_WORLD_PORT=str(free_port()),
               FERRY_WORLD_STATE_DIR=str(tmp_path / "state"))
    out = subprocess.run([str(WORLD_DIR / "up")], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert f"searched $CARGO_TARGET_DIR/debug = {tmp_path}/debug" in out.stderr, out.stderr
    assert "make bins" in out.stderr
    assert not (tmp_path / "state" / "world.pid").exists()
