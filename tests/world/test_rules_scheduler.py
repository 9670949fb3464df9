"""EventBridge Scheduler in the world (engine/schedules.py, rules/scheduler.py):
template.yaml's `DistributeImageSchedule` deployed as CloudFormation would (deploy_stack:
DISABLED, the template's expression and time zone, target the distribute-image state
machine, role DistributeImageScheduleRole), and fired as EventBridge Scheduler does when
its time comes: a DISABLED schedule invokes nothing; an ENABLED one starts the state
machine with the schedule's input AS its execution role (trust of
scheduler.amazonaws.com, states:StartExecution evaluated like every role's call); a
failed invocation starts nothing and is recorded.

Driven through boto3 against moto's server in this process with the "trust", "iam" and
"events" rule groups and the Step Functions engine installed. The hub's five state
machines are made as deploy() names them (ferry-<workflow>), with a Pass state: their
output is the input the schedule gave them."""
import json
import time

import pytest

from ferry_world.engine import config, deploy, faults
from ferry_world.rules import events as events_rule
from ferry_world.rules import iam as iam_rule
from ferry_world.rules import scheduler as scheduler_rule
from worldtest import REGION, as_account, aws_client, enable_step_functions, reset_world, stand_in_machines, template_workflows

WORLD_RULES = ("trust", "iam", "events")
HUB = "123456789012"
TEMPLATE = deploy.REPO_ROOT / "template.yaml"
WORKFLOWS = template_workflows()  # as template.yaml declares them
SCHEDULE = "ferry-distribute-image"
SCHEDULE_ROLE = "ferry-DistributeImageScheduleRole"
SCHEDULE_ROLE_ARN = f"arn:aws:iam::{HUB}:role/{SCHEDULE_ROLE}"
SELECTOR_INPUT = {"share": {"image": {"owner": "self", "namePattern": "golden-*"}, "accountIds": ["222233334444"]}}




@pytest.fixture(autouse=True)
def fresh_world(sfn_world):
    reset_world(sfn_world)
    enable_step_functions()
    config.reset()
    events_rule.reset()
    iam_rule.reset_usage()
    yield
    config.reset()


class Hub:
    """The hub: stand-ins for ferry's state machines (stand_in_machines),
    and template.yaml's plain resources deployed by deploy_stack."""

    def __init__(self, url):
        self.url = url
        self.iam = aws_client(url, "iam")
        self.sfn = aws_client(url, "stepfunctions")
        _, self.machines = stand_in_machines(url)
        # The operator: the account's admin (the world's stand-in OrganizationAccountAccessRole).
        self.scheduler = aws_client(url, "scheduler", as_account(url, HUB, "operator"))

    def deploy(self, **parameters):
        report = {}
        outputs = deploy.deploy_stack(TEMPLATE, self.url, HUB, REGION, parameters, "ferry", report=report)
        return outputs, report

    def schedule(self, name=SCHEDULE):
        return self.scheduler.get_schedule(Name=name)

    def set_state(self, state, name=SCHEDULE):
        """The operator enables / disables the schedule: UpdateSchedule with the whole
        definition (it replaces the schedule) and the new State."""
        s = self.schedule(name)
        keep = {k: s[k] for k in ("Description", "ScheduleExpressionTimezone", "StartDate", "EndDate",
                                  "KmsKeyArn", "ActionAfterCompletion") if s.get(k) is not None}
        self.scheduler.update_schedule(Name=name, GroupName=s["GroupName"], ScheduleExpression=s["ScheduleExpression"],
                                       FlexibleTimeWindow=s["FlexibleTimeWindow"], Target=s["Target"],
                                       State=state, **keep)

    def fire(self, name=SCHEDULE, **extra):
        status, answer = scheduler_rule.fire_request({"accountId": HUB, "region": REGION, "name": name, **extra})
        assert status == 200, answer
        return answer

    def executions(self, workflow="distribute-image", settle=0.3):
        time.sleep(settle)
        out = []
        for e in self.sfn.list_executions(stateMachineArn=self.machines[workflow])["executions"]:
            t0 = time.monotonic()
            while True:
                d = self.sfn.describe_execution(executionArn=e["executionArn"])
                if d["status"] != "RUNNING" or time.monotonic() - t0 > 10:
                    break
                time.sleep(0.05)
            out.append(d)
        return out

    def no_executions_anywhere(self):
        return all(self.executions(w, settle=0) == [] for w in WORKFLOWS)


@pytest.fixture
def hub(sfn_world):
    return Hub(sfn_world)


# ------------------------------------------------------------------ deploying
def test_the_template_deploys_the_schedule_disabled_with_its_expression_target_and_role(hub):
    outputs, report = hub.deploy()
    s = hub.schedule()
    assert s["State"] == "DISABLED"
    assert s["ScheduleExpression"] == "cron(0 3 * * ? *)" and s["ScheduleExpressionTimezone"] == "UTC"
    assert s["GroupName"] == "default" and s["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert s["Target"]["Arn"] == hub.machines["distribute-image"]
    assert s["Target"]["RoleArn"] == SCHEDULE_ROLE_ARN
    assert s["Target"]["Input"] == "{}"
    assert s["Target"]["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}
    assert s["Description"].startswith("Starts distribute-image")
    # !Ref of the schedule is its name (the stack output), GetAtt Arn its ARN.
    assert outputs["DistributeImageScheduleName"] == SCHEDULE
    assert report["schedules"] == {"DistributeImageSchedule": {
        "name": SCHEDULE, "group": "default", "arn": f"arn:aws:scheduler:{REGION}:{HUB}:schedule/default/{SCHEDULE}"}}
    # The role: trusts EventBridge Scheduler of this account, may start distribute-image only.
    role = hub.iam.get_role(RoleName=SCHEDULE_ROLE)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"] == [{
        "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": HUB}}}]
    policy = hub.iam.get_role_policy(RoleName=SCHEDULE_ROLE, PolicyName="start-distribute-image")["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    assert policy["Statement"] == [{"Effect": "Allow", "Action": "states:StartExecution",
                                    "Resource": hub.machines["distribute-image"]}]


def test_redeploying_updates_the_schedule_in_place(hub):
    hub.deploy()
    created = hub.schedule()["CreationDate"]
    hub.deploy(ScheduleExpression="rate(6 hours)", ScheduleTimezone="Europe/Berlin",
               ScheduleInput=json.dumps(SELECTOR_INPUT), ScheduleState="ENABLED")
    s = hub.schedule()
    assert (s["State"], s["ScheduleExpression"], s["ScheduleExpressionTimezone"]) == (
        "ENABLED", "rate(6 hours)", "Europe/Berlin")
    assert json.loads(s["Target"]["Input"]) == SELECTOR_INPUT
    assert s["CreationDate"] == created  # updated, not replaced
    assert [x["Name"] for x in hub.scheduler.list_schedules()["Schedules"]] == [SCHEDULE]
    hub.deploy()  # back to the defaults
    assert hub.schedule()["State"] == "DISABLED" and hub.schedule()["Target"]["Input"] == "{}"
    with pytest.raises(ValueError, match="ScheduleExpression"):
        hub.deploy(ScheduleExpression="every day")  # the parameter's AllowedPattern


def test_a_schedule_whose_condition_is_false_is_deleted(hub, tmp_path):
    text = TEMPLATE.read_text().replace(
        "  DistributeImageSchedule:\n    Type: AWS::Scheduler::Schedule\n",
        "  DistributeImageSchedule:\n    Type: AWS::Scheduler::Schedule\n    Condition: HasInvokerOrganization\n")
    text = text.replace("    Value: !Ref DistributeImageSchedule\n",
                        "    Condition: HasInvokerOrganization\n    Value: !Ref DistributeImageSchedule\n")
    conditional = tmp_path / "template.yaml"
    conditional.write_text(text)
    (tmp_path / "statemachines").symlink_to(deploy.REPO_ROOT / "statemachines")
    deploy.deploy_stack(conditional, hub.url, HUB, REGION, {
        "InvokerOrganizationId": "o-abcdefghij", "InvokerExternalId": "x-123"}, "ferry")
    assert hub.schedule()["State"] == "DISABLED"
    outputs = deploy.deploy_stack(conditional, hub.url, HUB, REGION, {}, "ferry")
    assert "DistributeImageScheduleName" not in outputs
    assert hub.scheduler.list_schedules()["Schedules"] == []


# ------------------------------------------------------------------ firing
def test_a_disabled_schedule_starts_nothing(hub):
    hub.deploy(ScheduleInput=json.dumps(SELECTOR_INPUT))
    answer = hub.fire()
    assert answer["invoked"] is False and answer["state"] == "DISABLED", answer
    assert "DISABLED" in answer["reason"] and answer["executionArn"] is None
    assert hub.no_executions_anywhere()
    assert events_rule.DELIVERED == [] and events_rule.FAILED_INVOCATIONS == []


def test_once_enabled_it_starts_one_distribute_image_with_the_schedules_input(hub):
    hub.deploy(ScheduleInput=json.dumps(SELECTOR_INPUT))
    assert hub.fire()["invoked"] is False
    hub.set_state("ENABLED")
    answer = hub.fire()
    assert answer["invoked"] is True and answer["failure"] is None, answer
    assert answer["input"] == SELECTOR_INPUT and answer["roleArn"] == SCHEDULE_ROLE_ARN
    runs = hub.executions()
    assert [(r["executionArn"], r["status"], json.loads(r["input"])) for r in runs] == [
        (answer["executionArn"], "SUCCEEDED", SELECTOR_INPUT)], runs
    assert all(hub.executions(w, settle=0) == [] for w in WORKFLOWS if w != "distribute-image")
    assert [(d["source"], d["roleArn"], d["executionArn"]) for d in events_rule.DELIVERED] == [
        ("scheduler", SCHEDULE_ROLE_ARN, answer["executionArn"])]
    # The role's identity policy was evaluated, and its one permission used.
    usage = iam_rule.usage_report()[SCHEDULE_ROLE_ARN]
    assert usage["unused"] == [] and usage["calls"], usage
    # Disabled again: nothing more.
    hub.set_state("DISABLED")
    assert hub.fire()["invoked"] is False
    assert len(hub.executions(settle=0)) == 1


def test_context_attributes_in_the_input_are_replaced(hub):
    hub.deploy(ScheduleState="ENABLED", ScheduleInput=json.dumps(
        {"requestedBy": "<aws.scheduler.schedule-arn>", "at": "<aws.scheduler.scheduled-time>",
         "attempt": "<aws.scheduler.attempt-number>", "id": "<aws.scheduler.execution-id>"}))
    answer = hub.fire(scheduledTime="2026-12-03T03:00:00Z")
    assert answer["input"] == {"requestedBy": answer["scheduleArn"], "at": "2026-12-03T03:00:00Z",
                               "attempt": "1", "id": answer["executionId"]}, answer
    assert [json.loads(r["input"]) for r in hub.executions()] == [answer["input"]]


def test_a_role_without_states_start_execution_starts_nothing(hub):
    hub.deploy(ScheduleState="ENABLED")
    hub.iam.delete_role_policy(RoleName=SCHEDULE_ROLE, PolicyName="start-distribute-image")
    answer = hub.fire()
    assert answer["invoked"] is True and answer["executionArn"] is None, answer
    assert answer["failure"]["error"] == "AccessDeniedException", answer
    assert f"states:StartExecution on resource: {hub.machines['distribute-image']}" in answer["failure"]["cause"]
    assert hub.no_executions_anywhere()
    failed = events_rule.FAILED_INVOCATIONS
    assert [(f["source"], f["schedule"], f["targetArn"], f["roleArn"], f["error"]) for f in failed] == [
        ("scheduler", answer["scheduleArn"], hub.machines["distribute-image"], SCHEDULE_ROLE_ARN,
         "AccessDeniedException")]
    assert events_rule.DELIVERED == []


def test_a_role_that_does_not_trust_the_scheduler_starts_nothing(hub):
    hub.deploy(ScheduleState="ENABLED")
    # EventBridge's principal, not EventBridge Scheduler's.
    hub.iam.update_assume_role_policy(RoleName=SCHEDULE_ROLE, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    answer = hub.fire()
    assert answer["executionArn"] is None and answer["failure"]["error"] == "AccessDenied", answer
    assert "scheduler.amazonaws.com is not authorized to perform: sts:AssumeRole" in answer["failure"]["cause"]
    assert hub.no_executions_anywhere()
    assert [f["error"] for f in events_rule.FAILED_INVOCATIONS] == ["AccessDenied"]


def test_a_trust_for_another_source_account_starts_nothing(hub):
    hub.deploy(ScheduleState="ENABLED")
    hub.iam.update_assume_role_policy(RoleName=SCHEDULE_ROLE, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
             "Condition": {"StringEquals": {"aws:SourceAccount": "999999999999"}}}]}))
    assert hub.fire()["failure"]["error"] == "AccessDenied"
    assert hub.no_executions_anywhere()


def test_an_input_that_is_not_json_is_a_failed_invocation(hub):
    hub.deploy(ScheduleState="ENABLED", ScheduleInput="share golden-* please")
    answer = hub.fire()
    assert answer["executionArn"] is None and answer["failure"]["error"] == "InvalidExecutionInput", answer
    assert hub.no_executions_anywhere()
    assert [f["error"] for f in events_rule.FAILED_INVOCATIONS] == ["InvalidExecutionInput"]


def test_outside_start_and_end_date_it_starts_nothing(hub):
    hub.deploy(ScheduleState="ENABLED")
    s = hub.schedule()
    hub.scheduler.update_schedule(
        Name=SCHEDULE, ScheduleExpression=s["ScheduleExpression"], FlexibleTimeWindow=s["FlexibleTimeWindow"],
        Target=s["Target"], State="ENABLED", EndDate="2026-01-01T00:00:00Z")
    answer = hub.fire(scheduledTime="2026-06-01T03:00:00Z")
    assert answer["invoked"] is False and "EndDate" in answer["reason"], answer
    assert hub.fire(scheduledTime="2025-12-31T03:00:00Z")["executionArn"]
    assert len(hub.executions()) == 1


def test_a_schedule_that_does_not_exist_and_the_control_endpoint(hub):
    hub.deploy()
    world = faults.WorldMiddleware(None, 0)
    status, answer = world._route("POST", "/ferry-world/schedules/fire", {}, {"name": "nope"})
    assert (status, answer["error"]) == (404, "ResourceNotFoundException"), answer
    status, answer = world._route("POST", "/ferry-world/schedules/fire", {},
                                  {"accountId": HUB, "region": REGION, "name": SCHEDULE, "group": "default"})
    assert status == 200 and answer["invoked"] is False and answer["state"] == "DISABLED", answer
    hub.set_state("ENABLED")
    status, answer = world._route("POST", "/ferry-world/schedules/fire", {}, {"arn": answer["scheduleArn"]})
    assert status == 200 and answer["executionArn"], answer
    status, seen = world._route("GET", "/ferry-world/events/invocations", {}, {})
    assert [d["executionArn"] for d in seen["delivered"]] == [answer["executionArn"]]
    with pytest.raises(ValueError):
        world._route("POST", "/ferry-world/schedules/fire", {}, {})
