"""State machines' execution roles (rules/iam.py, section "State machines' execution
roles"; engine/sfn.py install_role_authorization): the calls Step Functions makes with
a state machine's role are evaluated with that role's identity policies, by the same
evaluator as every other role's calls, and recorded in the least-privilege report.

* A Lambda Task (`Resource: <function ARN>`, `arn:aws:states:::lambda:invoke`) needs
  lambda:InvokeFunction on the function ARN as called (qualified or not); denied, it
  fails with Lambda.AWSLambdaException and AWS's AccessDenied cause, which Retry/Catch
  match by name.
* A nested execution (`arn:aws:states:::states:startExecution[.sync[:2]]`) needs
  states:StartExecution on the child; `.sync`/`.sync:2` also the EventBridge managed rule
  actions (checked at CreateStateMachine/UpdateStateMachine, AccessDeniedException
  "... is not authorized to create managed-rule.") and DescribeExecution/StopExecution
  on the child's executions; denied, the Task fails with
  StepFunctions.AWSStepFunctionsException and no child starts.

Driven through boto3 against moto's server in this process with the "iam" rule group and
the Step Functions engine installed; the interpreter calls back into that server. The
functions are moto's docker-less Lambda functions (Invoke answers a fixed payload): what
is tested is whether Step Functions may invoke them."""
import json
import re
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from ferry_world.rules import iam as iam_rule
from worldtest import REGION, aws_client, enable_step_functions, reset_world

WORLD_RULES = ("iam",)
HUB = "123456789012"
STATES_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
RULE_ARN = f"arn:aws:events:{REGION}:{HUB}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule"
SESSION = r"[A-Za-z]{32}"
REQUEST = r"Request ID: [0-9a-f-]{36}; Proxy: null\)"




@pytest.fixture(autouse=True)
def fresh_world(sfn_world):
    reset_world(sfn_world)
    enable_step_functions()
    iam_rule.reset_usage()
    yield


# ----------------------------------------------------------------------------- helpers
def allow(actions, resource="*", sid=None, effect="Allow"):
    st = {"Effect": effect, "Action": actions, "Resource": resource}
    if sid:
        st["Sid"] = sid
    return st


def document(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def nested_statements(child_name, *, start=True, follow=True, rule=True, child_for_follow=None):
    """The policy the Step Functions DG gives for a synchronous nested execution, with
    parts left out on request."""
    out = []
    if start:
        out.append(allow("states:StartExecution", f"arn:aws:states:{REGION}:{HUB}:stateMachine:{child_name}",
                         sid="StartNestedExecutions"))
    if follow:
        name = child_for_follow or child_name
        out.append(allow(["states:DescribeExecution", "states:StopExecution"],
                         f"arn:aws:states:{REGION}:{HUB}:execution:{name}:*", sid="FollowAndStopNestedExecutions"))
    if rule:
        out.append(allow(["events:PutTargets", "events:PutRule", "events:DescribeRule"], RULE_ARN,
                         sid="SyncIntegrationEventRule"))
    return out


class World:
    """The hub as its root: roles, functions and state machines, and runs."""

    def __init__(self, url):
        self.iam = aws_client(url, "iam")
        self.lam = aws_client(url, "lambda")
        self.sfn = aws_client(url, "stepfunctions")

    def role(self, name, *statements, trust=STATES_TRUST):
        arn = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        if statements:
            self.set_policy(name, *statements)
        return arn

    def set_policy(self, name, *statements, policy="identity"):
        self.iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=document(*statements))

    def function(self, name):
        try:
            role = self.iam.get_role(RoleName="fn-role")["Role"]["Arn"]
        except ClientError:
            role = self.role("fn-role", trust=LAMBDA_TRUST)
        return self.lam.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )["FunctionArn"]

    def machine(self, name, definition, role_arn):
        return self.sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                             roleArn=role_arn)["stateMachineArn"]

    def run(self, arn, payload=None, name=None, timeout=30.0):
        kw = {"name": name} if name else {}
        execution = self.sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload or {}), **kw)[
            "executionArn"]
        t0 = time.monotonic()
        while True:
            d = self.sfn.describe_execution(executionArn=execution)
            if d["status"] != "RUNNING":
                break
            assert time.monotonic() - t0 < timeout, f"{execution} still running after {timeout}s"
            time.sleep(0.05)
        events = self.sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        return d, events

    def executions(self, machine_arn):
        return self.sfn.list_executions(stateMachineArn=machine_arn)["executions"]


@pytest.fixture
def world(sfn_world):
    return World(sfn_world)


def task(resource, **extra):
    return {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": resource, "End": True, **extra}}}


def events_of(events, kind):
    return [e for e in events if e["type"] == kind]


def details(event):
    return next(v for k, v in event.items() if k.endswith("EventDetails"))


def unused_actions(role_arn):
    return {u["action"] for u in iam_rule.usage_report()[role_arn]["unused"]}


def invoke_denied_cause(role_name, resource, why=None):
    why = why or "because no identity-based policy allows the lambda:InvokeFunction action"
    return re.compile(
        rf"^User: arn:aws:sts::{HUB}:assumed-role/{role_name}/{SESSION} is not authorized to perform: "
        rf"lambda:InvokeFunction on resource: {re.escape(resource)} {re.escape(why)} "
        rf"\(Service: AWSLambda; Status Code: 403; Error Code: AccessDeniedException; {REQUEST}$"
    )


# ------------------------------------------------------------------ Lambda Tasks
def test_a_lambda_task_whose_role_may_not_invoke_the_function_fails_with_awslambdaexception(world):
    fn = world.function("step")
    role = world.role("sm-other-function",
                      allow("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{HUB}:function:other*"))
    d, events = world.run(world.machine("no-invoke", task(fn), role))
    assert d["status"] == "FAILED", d
    assert d["error"] == "Lambda.AWSLambdaException", d
    assert invoke_denied_cause("sm-other-function", fn).match(d["cause"]), d["cause"]
    failed = events_of(events, "LambdaFunctionFailed")
    assert len(failed) == 1 and details(failed[0])["error"] == "Lambda.AWSLambdaException", events
    assert not events_of(events, "LambdaFunctionSucceeded")
    assert iam_rule.usage_report()[role]["calls"] == {"evaluated": 1, "denied": 1}


def test_a_role_without_any_policy_may_not_invoke_either(world):
    fn = world.function("step")
    d, _ = world.run(world.machine("bare", task(fn), world.role("sm-bare")))
    assert d["error"] == "Lambda.AWSLambdaException", d
    assert invoke_denied_cause("sm-bare", fn).match(d["cause"]), d["cause"]


def test_a_lambda_task_runs_with_sams_lambda_invoke_policy_and_the_use_is_recorded(world):
    fn = world.function("step")
    # SAM's LambdaInvokePolicy: lambda:InvokeFunction on function:<name>* (no Sid).
    role = world.role("sm-invoke", allow("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{HUB}:function:step*"),
                      allow("lambda:GetFunction", "*", sid="NeverUsed"))
    d, events = world.run(world.machine("invoke", task(fn), role))
    assert d["status"] == "SUCCEEDED", d
    assert events_of(events, "LambdaFunctionSucceeded")
    assert unused_actions(role) == {"lambda:GetFunction"}
    assert iam_rule.usage_report()[role]["calls"] == {"evaluated": 1, "denied": 0}


def test_an_explicit_deny_wins_over_an_allow(world):
    fn = world.function("step")
    role = world.role("sm-denied", allow("lambda:*"), allow("lambda:InvokeFunction", fn, effect="Deny"))
    d, _ = world.run(world.machine("denied", task(fn), role))
    assert d["error"] == "Lambda.AWSLambdaException", d
    assert invoke_denied_cause("sm-denied", fn, "with an explicit deny in an identity-based policy").match(
        d["cause"]), d["cause"]


def test_retry_and_catch_match_the_denial_by_its_name(world):
    fn = world.function("step")
    definition = task(fn, Retry=[{"ErrorEquals": ["Lambda.AWSLambdaException"], "IntervalSeconds": 1,
                                  "MaxAttempts": 2, "BackoffRate": 1}],
                      Catch=[{"ErrorEquals": ["Lambda.AWSLambdaException"], "ResultPath": "$.error",
                              "Next": "Caught"}])
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    d, events = world.run(world.machine("caught", definition, world.role("sm-caught")), {"keep": 1})
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    assert out["keep"] == 1 and out["error"]["Error"] == "Lambda.AWSLambdaException", out
    assert len(events_of(events, "LambdaFunctionFailed")) == 3  # the attempt and 2 retries


def test_a_qualified_invoke_is_authorized_on_the_qualified_arn(world):
    """Lambda DG, function ARNs in policies: the unqualified ARN does not cover a call
    with a qualifier, `function:f:*` does not cover an unqualified call."""
    fn = world.function("step")
    qualified = task("arn:aws:states:::lambda:invoke",
                     Parameters={"FunctionName": "step", "Qualifier": "$LATEST", "Payload": {}})
    role = world.role("sm-unqualified", allow("lambda:InvokeFunction", fn))
    d, _ = world.run(world.machine("qualified", qualified, role))
    assert d["error"] == "Lambda.AWSLambdaException", d
    assert invoke_denied_cause("sm-unqualified", f"{fn}:$LATEST").match(d["cause"]), d["cause"]

    world.set_policy("sm-unqualified", allow("lambda:InvokeFunction", f"{fn}:*"))
    d, _ = world.run(world.machine("qualified-ok", qualified, role))
    assert d["status"] == "SUCCEEDED", d
    d, _ = world.run(world.machine("unqualified", task(fn), role))
    assert d["error"] == "Lambda.AWSLambdaException", d
    assert invoke_denied_cause("sm-unqualified", fn).match(d["cause"]), d["cause"]


def test_the_lambda_invoke_integration_is_authorized_the_same_way(world):
    fn = world.function("step")
    definition = task("arn:aws:states:::lambda:invoke", Parameters={"FunctionName": "step", "Payload": {}})
    d, events = world.run(world.machine("integration", definition, world.role("sm-integration")))
    assert d["error"] == "Lambda.AWSLambdaException", d
    assert invoke_denied_cause("sm-integration", fn).match(d["cause"]), d["cause"]
    failed = details(events_of(events, "TaskFailed")[0])
    assert (failed["resourceType"], failed["resource"]) == ("lambda", "invoke"), failed

    world.set_policy("sm-integration", allow("lambda:InvokeFunction", fn))
    d, _ = world.run(world.machine("integration-ok", definition, f"arn:aws:iam::{HUB}:role/sm-integration"))
    assert d["status"] == "SUCCEEDED", d


def test_a_role_the_world_does_not_have_is_not_evaluated(world):
    fn = world.function("step")
    d, _ = world.run(world.machine("unknown-role", task(fn), f"arn:aws:iam::{HUB}:role/not-in-iam"))
    assert d["status"] == "SUCCEEDED", d


# ------------------------------------------------------------------ nested executions
@pytest.fixture
def child(world):
    return world.machine("child", {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": {"ok": True},
                                                                           "End": True}}},
                         world.role("child-role"))


def nested(child_arn, resource="arn:aws:states:::states:startExecution.sync:2", **extra):
    # ResultSelector, as ferry's nested Tasks: the child's whole DescribeExecution (with
    # its dates) is not what these tests are about.
    selector = {"ExecutionArn.$": "$.ExecutionArn"}
    if ".sync" in resource:
        selector.update({"Status.$": "$.Status", "Output.$": "$.Output"})
    return task(resource, Parameters={"StateMachineArn": child_arn, "Name.$": "$.name", "Input": {}},
                ResultSelector=selector, **extra)


def test_a_sync_nested_start_cannot_be_created_without_the_events_rule_permissions(world, child):
    role = world.role("parent-no-rule", *nested_statements("child", rule=False))
    for resource in ("arn:aws:states:::states:startExecution.sync:2", "arn:aws:states:::states:startExecution.sync"):
        with pytest.raises(ClientError) as err:
            world.machine("parent", nested(child, resource), role)
        e = err.value.response
        assert e["Error"]["Code"] == "AccessDeniedException", e
        assert e["Error"]["Message"] == f"'{role}' is not authorized to create managed-rule.", e
        assert e["ResponseMetadata"]["HTTPStatusCode"] == 400, e
    # Nested one level down (a Map's item processor) is found too.
    mapped = {"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemsPath": "$.items", "End": True,
                                                    "ItemProcessor": {"StartAt": "Call", "States": nested(child)["States"]}}}}
    with pytest.raises(ClientError):
        world.machine("parent-map", mapped, role)
    # Asynchronous starts need no rule; switching one to .sync:2 is refused the same way.
    parent = world.machine("parent-async", nested(child, "arn:aws:states:::states:startExecution"), role)
    with pytest.raises(ClientError) as err:
        world.sfn.update_state_machine(stateMachineArn=parent, definition=json.dumps(nested(child)))
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    # With the rule's three actions it is created.
    world.set_policy("parent-no-rule", *nested_statements("child"))
    world.machine("parent", nested(child), role)


def test_a_sync_nested_start_runs_with_the_documented_policy_and_uses_all_of_it(world, child):
    role = world.role("parent-full", *nested_statements("child"))
    parent = world.machine("parent", nested(child), role)
    d, _ = world.run(parent, {"name": "run-1"})
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    assert out["Status"] == "SUCCEEDED" and out["Output"] == {"ok": True}, out
    assert out["ExecutionArn"] == f"arn:aws:states:{REGION}:{HUB}:execution:child:run-1", out
    assert unused_actions(role) == set()


def test_a_sync_nested_start_fails_when_the_role_lost_the_events_rule_permissions(world, child):
    role = world.role("parent-lost-rule", *nested_statements("child"))
    parent = world.machine("parent", nested(child), role)
    world.set_policy("parent-lost-rule", *nested_statements("child", rule=False))
    d, events = world.run(parent, {"name": "run-1"})
    assert d["status"] == "FAILED", d
    assert d["error"] == "StepFunctions.AWSStepFunctionsException", d
    assert re.match(rf"^'{re.escape(role)}' is not authorized to create managed-rule\. \(Service: AWSStepFunctions; "
                    rf"Status Code: 400; Error Code: AccessDeniedException; {REQUEST}$", d["cause"]), d["cause"]
    failed = details(events_of(events, "TaskFailed")[0])
    assert (failed["resourceType"], failed["resource"]) == ("states", "startExecution.sync:2"), failed
    assert world.executions(child) == []


def test_a_nested_start_needs_start_execution_on_the_child(world, child):
    role = world.role("parent-no-start", *nested_statements("child", start=False),
                      allow("states:StartExecution", f"arn:aws:states:{REGION}:{HUB}:stateMachine:other"))
    parent = world.machine("parent", nested(child), role)
    d, _ = world.run(parent, {"name": "run-1"})
    assert d["error"] == "StepFunctions.AWSStepFunctionsException", d
    assert re.match(
        rf"^User: arn:aws:sts::{HUB}:assumed-role/parent-no-start/{SESSION} is not authorized to perform: "
        rf"states:StartExecution on resource: {re.escape(child)} because no identity-based policy allows the "
        rf"states:StartExecution action \(Service: AWSStepFunctions; Status Code: 400; Error Code: "
        rf"AccessDeniedException; {REQUEST}$", d["cause"]), d["cause"]
    assert world.executions(child) == []


def test_a_sync_nested_start_needs_describe_and_stop_on_the_childs_executions(world, child):
    role = world.role("parent-no-follow", *nested_statements("child", child_for_follow="other"))
    parent = world.machine("parent", nested(child), role)
    d, _ = world.run(parent, {"name": "run-1"})
    assert d["error"] == "StepFunctions.AWSStepFunctionsException", d
    assert (f"is not authorized to perform: states:DescribeExecution on resource: "
            f"arn:aws:states:{REGION}:{HUB}:execution:child:run-1 because") in d["cause"], d["cause"]
    assert world.executions(child) == []


def test_the_denial_of_a_nested_start_is_caught_as_a_task_failure(world, child):
    """distribute-image's Share state catches States.TaskFailed: it matches this error."""
    role = world.role("parent-caught", *nested_statements("child", start=False))
    definition = nested(child, Catch=[{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error",
                                       "Next": "Caught"}])
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    d, _ = world.run(world.machine("parent", definition, role), {"name": "run-1"})
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"])["error"]["Error"] == "StepFunctions.AWSStepFunctionsException"


def test_an_asynchronous_nested_start_needs_only_start_execution(world, child):
    role = world.role("parent-async", *nested_statements("child", follow=False, rule=False))
    parent = world.machine("parent", nested(child, "arn:aws:states:::states:startExecution"), role)
    name = f"run-{uuid.uuid4().hex[:8]}"
    d, _ = world.run(parent, {"name": name})
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"])["ExecutionArn"].endswith(f":execution:child:{name}")
    assert unused_actions(role) == set()
