"""The Step Functions callback pattern (`.waitForTaskToken`) on the world's simulated clock
(engine/sfn.py, section "The callback pattern"; rules/iam.py TASK_RESPONSE_ACTIONS):

* a `.waitForTaskToken` Task waits for SendTaskSuccess / SendTaskFailure; its
  TimeoutSeconds / HeartbeatSeconds count simulated seconds from the moment the
  integration call returned; running out fails it with States.Timeout (TaskTimedOut),
  which Retry and Catch handle; each Retry attempt has a new token;
* SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat answer as the API reference
  says: InvalidToken for a token no task issued, TaskTimedOut for the token of a task
  that ended (timed out, answered, stopped), InvalidOutput for output that is not JSON;
* a role's SendTask* calls are authorized on the ARN of the state machine that issued
  the token (as CDK's grantTaskResponse grants them); GetExecutionHistory on the
  execution's ARN;
* the TaskScheduled event records the resolved Parameters, token included.

Driven through boto3 against moto's server in this process with the "iam" rule group and
the Step Functions engine (clock scale 600: one simulated minute is 0.1 s real). The
Tasks send an SQS message (`arn:aws:states:::sqs:sendMessage.waitForTaskToken`), from
which the test reads the token as a worker would; one test uses moto's docker-less
Lambda for the `lambda:invoke.waitForTaskToken` form."""
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from ferry_world.engine import clock
from ferry_world.rules import iam as iam_rule
from worldtest import REGION, aws_client, enable_step_functions, reset_world

WORLD_RULES = ("iam",)
HUB = "123456789012"
STATES_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
ACCOUNT_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{HUB}:root"}, "Action": "sts:AssumeRole"}]})
LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
TASK_TIMED_OUT = "Task Timed Out: 'Provided task does not exist anymore'"


@pytest.fixture(autouse=True)
def fresh_world(sfn_world):
    reset_world(sfn_world)
    enable_step_functions()
    iam_rule.reset_usage()
    yield


def document(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions, resource):
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


class World:
    """The hub as its root: a queue, a role for the machines, machines, runs."""

    def __init__(self, url):
        self.url = url
        self.iam = aws_client(url, "iam")
        self.sqs = aws_client(url, "sqs")
        self.sfn = aws_client(url, "stepfunctions")
        self.queue = self.sqs.create_queue(QueueName=f"tokens-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        self.machine_role = self.iam.create_role(
            RoleName="machine", AssumeRolePolicyDocument=STATES_TRUST)["Role"]["Arn"]

    def callback_task(self, **extra):
        return {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": self.queue,
                "MessageBody": {"token.$": "$$.Task.Token", "image.$": "$.image"},
            },
            **extra,
        }

    def machine(self, states, name=None, start="Wait"):
        definition = {"StartAt": start, "States": states}
        return self.sfn.create_state_machine(
            name=name or f"m-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition),
            roleArn=self.machine_role)["stateMachineArn"]

    def start(self, machine_arn, payload=None):
        return self.sfn.start_execution(
            stateMachineArn=machine_arn, input=json.dumps(payload or {"image": "ami-1"}))["executionArn"]

    def next_token(self, timeout=10.0):
        """The token of the next message the Task sent (as a worker reads it)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            msgs = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=1).get("Messages", [])
            if msgs:
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=msgs[0]["ReceiptHandle"])
                return json.loads(msgs[0]["Body"])["token"]
            time.sleep(0.01)
        raise AssertionError(f"no message in {timeout}s")

    def wait_done(self, execution, timeout=10.0):
        t0 = time.monotonic()
        while True:
            d = self.sfn.describe_execution(executionArn=execution)
            if d["status"] != "RUNNING":
                return d, time.monotonic() - t0
            assert time.monotonic() - t0 < timeout, f"{execution} still running after {timeout}s"
            time.sleep(0.005)

    def history(self, execution, sfn=None):
        return (sfn or self.sfn).get_execution_history(executionArn=execution, maxResults=1000)["events"]

    def responder(self, name, *statements):
        """Credentials of a role the world evaluates, with these identity statements."""
        self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=ACCOUNT_TRUST)
        if statements:
            self.iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=document(*statements))
        creds = aws_client(self.url, "sts").assume_role(
            RoleArn=f"arn:aws:iam::{HUB}:role/{name}", RoleSessionName="responder")["Credentials"]
        return aws_client(self.url, "stepfunctions", creds)


@pytest.fixture
def world(sfn_world):
    return World(sfn_world)


def of_type(events, kind):
    return [e for e in events if e["type"] == kind]


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


# ----------------------------------------------------------------------------- success
def test_send_task_success_completes_the_task_with_its_output_at_once(world):
    arn = world.machine({"Wait": world.callback_task(ResultPath="$.ami", End=True)})
    execution = world.start(arn)
    token = world.next_token()
    time.sleep(0.05)  # 30 simulated seconds: still waiting
    assert world.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"

    t0 = time.monotonic()
    world.sfn.send_task_success(taskToken=token, output=json.dumps({"ImageId": "ami-123", "State": "available"}))
    d, _ = world.wait_done(execution)
    answered = time.monotonic() - t0
    assert d["status"] == "SUCCEEDED"
    assert json.loads(d["output"]) == {"image": "ami-1", "ami": {"ImageId": "ami-123", "State": "available"}}
    # ~0.02 s measured (HTTP calls and this loop's polling); a wait that noticed the
    # answer only at the end of a slice would take up to that slice.
    assert answered < 0.15, f"the Task took {answered:.3f}s real to see SendTaskSuccess"
    events = world.history(execution)
    succeeded = of_type(events, "TaskSucceeded")[0]["taskSucceededEventDetails"]
    assert succeeded["resource"] == "sendMessage.waitForTaskToken" and succeeded["resourceType"] == "sqs"
    assert json.loads(succeeded["output"]) == {"ImageId": "ami-123", "State": "available"}

    # The task is closed: answering it again is TaskTimedOut (API reference, SendTaskSuccess).
    for call in (lambda: world.sfn.send_task_success(taskToken=token, output="{}"),
                 lambda: world.sfn.send_task_failure(taskToken=token, error="X"),
                 lambda: world.sfn.send_task_heartbeat(taskToken=token)):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == ("TaskTimedOut", 400)
        assert e.value.response["Error"]["Message"] == TASK_TIMED_OUT


def test_send_task_failure_is_the_tasks_error_and_catch_matches_its_name(world):
    arn = world.machine({
        "Wait": world.callback_task(
            Catch=[{"ErrorEquals": ["Ami.Failed"], "ResultPath": "$.failure", "Next": "Failed"}], End=True),
        "Failed": {"Type": "Pass", "End": True},
    })
    execution = world.start(arn)
    world.sfn.send_task_failure(taskToken=world.next_token(), error="Ami.Failed", cause="image ami-1 failed")
    d, _ = world.wait_done(execution)
    assert d["status"] == "SUCCEEDED"
    assert json.loads(d["output"])["failure"] == {"Error": "Ami.Failed", "Cause": "image ami-1 failed"}
    failed = of_type(world.history(execution), "TaskFailed")[0]["taskFailedEventDetails"]
    assert (failed["error"], failed["cause"]) == ("Ami.Failed", "image ami-1 failed")
    assert (failed["resource"], failed["resourceType"]) == ("sendMessage.waitForTaskToken", "sqs")


def test_an_uncaught_send_task_failure_fails_the_execution_with_that_error(world):
    arn = world.machine({"Wait": world.callback_task(End=True)})
    execution = world.start(arn)
    world.sfn.send_task_failure(taskToken=world.next_token(), error="Ami.Failed", cause="why")
    d, _ = world.wait_done(execution)
    assert (d["status"], d.get("error"), d.get("cause")) == ("FAILED", "Ami.Failed", "why")


# ----------------------------------------------------------------------------- timeouts
def test_timeout_seconds_count_simulated_seconds_and_fail_with_states_timeout(world):
    arn = world.machine({"Wait": world.callback_task(TimeoutSeconds=120, End=True)})
    t0 = time.monotonic()
    execution = world.start(arn)
    d, _ = world.wait_done(execution, timeout=5.0)
    real = time.monotonic() - t0
    assert (d["status"], d.get("error")) == ("FAILED", "States.Timeout")
    assert real < 5.0
    events = world.history(execution)
    timed_out = of_type(events, "TaskTimedOut")
    assert len(timed_out) == 1
    details = timed_out[0]["taskTimedOutEventDetails"]
    assert details["error"] == "States.Timeout"
    assert (details["resource"], details["resourceType"]) == ("sendMessage.waitForTaskToken", "sqs")
    # The clock starts once SendMessage returned: at least 120 simulated seconds after it.
    submitted = of_type(events, "TaskSubmitted")[0]["timestamp"]
    waited = (timed_out[0]["timestamp"] - submitted).total_seconds()
    assert 120 <= waited < 120 + 60, waited
    # The token of the timed-out task answers TaskTimedOut.
    with pytest.raises(ClientError) as e:
        world.sfn.send_task_success(taskToken=world.next_token(), output="{}")
    assert error_code(e) == ("TaskTimedOut", 400)


def test_timeout_seconds_path_and_catch_on_states_timeout(world):
    arn = world.machine({
        "Wait": world.callback_task(
            TimeoutSecondsPath="$.timeout",
            Catch=[{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.failure", "Next": "Poll"}], End=True),
        "Poll": {"Type": "Pass", "End": True},
    })
    t0 = time.monotonic()
    execution = world.start(arn, {"image": "ami-1", "timeout": 300})
    d, _ = world.wait_done(execution, timeout=5.0)
    assert time.monotonic() - t0 < 5.0
    assert d["status"] == "SUCCEEDED"
    assert json.loads(d["output"])["failure"]["Error"] == "States.Timeout"
    events = world.history(execution)
    waited = (of_type(events, "TaskTimedOut")[0]["timestamp"]
              - of_type(events, "TaskSubmitted")[0]["timestamp"]).total_seconds()
    assert 300 <= waited < 360, waited


def test_heartbeat_seconds_count_simulated_seconds_and_heartbeats_keep_the_task(world):
    arn = world.machine({"Wait": world.callback_task(TimeoutSeconds=36000, HeartbeatSeconds=600, End=True)})
    execution = world.start(arn)
    token = world.next_token()
    # 600 simulated s = 1 s real; beat every ~0.3 s real for ~2 s real (1200 simulated s).
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.0:
        world.sfn.send_task_heartbeat(taskToken=token)
        time.sleep(0.3)
    assert world.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    d, real = world.wait_done(execution, timeout=5.0)  # no more beats: times out
    assert (d["status"], d.get("error")) == ("FAILED", "States.Timeout")
    assert real < 2.0
    with pytest.raises(ClientError) as e:
        world.sfn.send_task_heartbeat(taskToken=token)
    assert error_code(e) == ("TaskTimedOut", 400)


def test_retry_on_states_timeout_issues_a_new_token_and_the_old_one_timed_out(world):
    arn = world.machine({"Wait": world.callback_task(
        TimeoutSeconds=3600, ResultPath="$.ami", End=True,
        Retry=[{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 60, "MaxAttempts": 2}])})
    execution = world.start(arn)
    first = world.next_token()
    clock.advance(3600)  # the first attempt's hour is over
    second = world.next_token()
    assert second != first
    with pytest.raises(ClientError) as e:
        world.sfn.send_task_success(taskToken=first, output="{}")
    assert error_code(e) == ("TaskTimedOut", 400)
    world.sfn.send_task_success(taskToken=second, output=json.dumps({"ImageId": "ami-2"}))
    d, _ = world.wait_done(execution)
    assert d["status"] == "SUCCEEDED"
    assert json.loads(d["output"])["ami"] == {"ImageId": "ami-2"}
    events = world.history(execution)
    assert len(of_type(events, "TaskTimedOut")) == 1
    tokens = [json.loads(e["taskScheduledEventDetails"]["parameters"])["MessageBody"]["token"]
              for e in of_type(events, "TaskScheduled")]
    assert tokens == [first, second]


def test_retries_exhausted_on_timeout_reach_the_catch(world):
    arn = world.machine({
        "Wait": world.callback_task(
            TimeoutSeconds=60, Retry=[{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 30, "MaxAttempts": 2}],
            Catch=[{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.failure", "Next": "Poll"}], End=True),
        "Poll": {"Type": "Pass", "End": True},
    })
    execution = world.start(arn)
    d, real = world.wait_done(execution, timeout=5.0)
    assert d["status"] == "SUCCEEDED" and real < 5.0
    events = world.history(execution)
    assert len(of_type(events, "TaskTimedOut")) == 3
    tokens = {world.next_token() for _ in range(3)}
    assert len(tokens) == 3


def test_stop_execution_interrupts_the_wait_and_closes_the_token(world):
    arn = world.machine({"Wait": world.callback_task(End=True)})
    execution = world.start(arn)
    token = world.next_token()
    t0 = time.monotonic()
    world.sfn.stop_execution(executionArn=execution, error="Operator", cause="stop")
    d, _ = world.wait_done(execution)
    assert d["status"] == "ABORTED"
    time.sleep(0.1)
    with pytest.raises(ClientError) as e:
        world.sfn.send_task_success(taskToken=token, output="{}")
    assert error_code(e) == ("TaskTimedOut", 400)
    assert time.monotonic() - t0 < 1.0
    events = world.history(execution)
    assert not of_type(events, "TaskTimedOut") and not of_type(events, "TaskFailed")


# ----------------------------------------------------------------------------- the API's errors
def test_a_token_no_task_issued_is_invalid_token(world):
    for call in (lambda: world.sfn.send_task_success(taskToken="garbage", output="{}"),
                 lambda: world.sfn.send_task_failure(taskToken="garbage", error="E", cause="C"),
                 lambda: world.sfn.send_task_heartbeat(taskToken="garbage")):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == ("InvalidToken", 400)


def test_output_that_is_not_json_is_invalid_output_and_the_task_keeps_waiting(world):
    arn = world.machine({"Wait": world.callback_task(End=True)})
    execution = world.start(arn)
    token = world.next_token()
    with pytest.raises(ClientError) as e:
        world.sfn.send_task_success(taskToken=token, output="not json")
    assert error_code(e) == ("InvalidOutput", 400)
    world.sfn.send_task_success(taskToken=token, output='{"done": true}')
    d, _ = world.wait_done(execution)
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == {"done": True}


# ----------------------------------------------------------------------------- identity policies
def test_send_task_success_needs_the_action_on_the_state_machine_arn(world):
    arn = world.machine({"Wait": world.callback_task(End=True)}, name="wait-for-ami")
    other = world.machine({"Wait": world.callback_task(End=True)}, name="other")
    execution = world.start(arn)
    token = world.next_token()

    for name, statements in (
        ("nothing", ()),
        ("only-heartbeat", (allow("states:SendTaskHeartbeat", arn),)),
        ("other-machine", (allow(["states:SendTaskSuccess", "states:SendTaskFailure"], other),)),
    ):
        sfn = world.responder(name, *statements)
        with pytest.raises(ClientError) as e:
            sfn.send_task_success(taskToken=token, output="{}")
        assert error_code(e) == ("AccessDeniedException", 400)
        assert e.value.response["Error"]["Message"] == (
            f"User: arn:aws:sts::{HUB}:assumed-role/{name}/responder is not authorized to perform: "
            f"states:SendTaskSuccess on resource: {arn} because no identity-based policy allows the "
            "states:SendTaskSuccess action")
    assert world.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"

    # CDK's grantTaskResponse: the three actions on the state machine's ARN.
    granted = world.responder(
        "granted", allow(["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"], arn))
    granted.send_task_heartbeat(taskToken=token)
    granted.send_task_success(taskToken=token, output='{"ok": true}')
    d, _ = world.wait_done(execution)
    assert d["status"] == "SUCCEEDED"
    # ...and an explicit Deny wins.
    execution = world.start(arn)
    token = world.next_token()
    denied = world.responder(
        "denied", allow("states:SendTaskFailure", arn),
        {"Effect": "Deny", "Action": "states:SendTaskFailure", "Resource": "*"})
    with pytest.raises(ClientError) as e:
        denied.send_task_failure(taskToken=token, error="E")
    assert error_code(e) == ("AccessDeniedException", 400)
    assert "with an explicit deny in an identity-based policy" in e.value.response["Error"]["Message"]


def test_get_execution_history_needs_the_action_on_the_execution_arn(world):
    arn = world.machine({"Wait": world.callback_task(End=True)}, name="wait-for-ami")
    execution = world.start(arn)
    world.next_token()
    sfn = world.responder("no-history", allow("states:SendTaskSuccess", arn))
    with pytest.raises(ClientError) as e:
        sfn.get_execution_history(executionArn=execution)
    assert error_code(e) == ("AccessDeniedException", 400)
    assert f"states:GetExecutionHistory on resource: {execution} " in e.value.response["Error"]["Message"]
    reader = world.responder("history", allow("states:GetExecutionHistory",
                                              f"arn:aws:states:{REGION}:{HUB}:execution:wait-for-ami:*"))
    assert of_type(world.history(execution, reader), "TaskScheduled")
    world.sfn.stop_execution(executionArn=execution)


# ----------------------------------------------------------------------------- history
def test_task_scheduled_records_the_resolved_parameters_with_the_token(world):
    arn = world.machine({"Wait": world.callback_task(TimeoutSeconds=600, End=True)})
    execution = world.start(arn)
    token = world.next_token()
    world.sfn.send_task_success(taskToken=token, output="{}")
    world.wait_done(execution)
    scheduled = of_type(world.history(execution), "TaskScheduled")[0]["taskScheduledEventDetails"]
    assert (scheduled["resource"], scheduled["resourceType"]) == ("sendMessage.waitForTaskToken", "sqs")
    assert scheduled["region"] == REGION and scheduled["timeoutInSeconds"] == 600
    assert json.loads(scheduled["parameters"]) == {
        "QueueUrl": world.queue, "MessageBody": {"token": token, "image": "ami-1"}}


def test_lambda_invoke_wait_for_task_token_records_function_name_and_payload(world):
    world.iam.put_role_policy(RoleName="machine", PolicyName="invoke", PolicyDocument=document(
        allow("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{HUB}:function:ami-waiter*")))
    fn_role = world.iam.create_role(RoleName="fn", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    function = aws_client(world.url, "lambda").create_function(
        FunctionName="ami-waiter", Runtime="python3.12", Role=fn_role, Handler="index.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})["FunctionArn"]
    arn = world.machine({"Wait": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": function, "Payload": {"taskToken.$": "$$.Task.Token", "image.$": "$.image"}},
        "TimeoutSeconds": 3600, "End": True}})
    execution = world.start(arn)
    t0 = time.monotonic()
    while not of_type(world.history(execution), "TaskSubmitted"):
        assert time.monotonic() - t0 < 10, "the Invoke never returned"
        time.sleep(0.01)
    scheduled = of_type(world.history(execution), "TaskScheduled")[0]["taskScheduledEventDetails"]
    assert (scheduled["resource"], scheduled["resourceType"]) == ("invoke.waitForTaskToken", "lambda")
    parameters = json.loads(scheduled["parameters"])
    assert parameters["FunctionName"] == function
    token = parameters["Payload"]["taskToken"]
    assert parameters["Payload"] == {"taskToken": token, "image": "ami-1"}
    world.sfn.send_task_success(taskToken=token, output=json.dumps({"ImageId": "ami-9"}))
    d, _ = world.wait_done(execution)
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == {"ImageId": "ami-9"}
