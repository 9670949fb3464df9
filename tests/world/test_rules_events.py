"""EventBridge in the world (rules/events.py): an event put on a bus starts the Step
Functions targets of every ENABLED rule it matches, AS the target's role (trust of
events.amazonaws.com, states:StartExecution evaluated like every role's call), with the
input the target's Input / InputPath / InputTransformer makes; another account puts
events on a bus only as the bus's resource policy allows (account ids, or "*" with
aws:PrincipalOrgID), else that entry fails with AccessDeniedException; a rule whose
target is another account's bus forwards the event unchanged, as its role and the
receiving bus's policy allow, and never on to a third bus.

Driven through boto3 against moto's server in this process with the "iam" and "events"
rule groups and the Step Functions engine installed. The state machines are Pass states:
their output is the input the event gave them."""
import json
import time

import pytest

from ferry_world.rules import events as events_rule
from worldtest import REGION, as_account, aws_client, enable_step_functions, reset_world

WORLD_RULES = ("iam", "events")
HUB, B, C = "123456789012", "222222222222", "333333333333"
EVENTS_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
     "Condition": {"StringEquals": {"aws:SourceAccount": HUB}}}]}
STATES_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
BUS = "ferry-requests"
BUS_ARN = f"arn:aws:events:{REGION}:{HUB}:event-bus/{BUS}"




@pytest.fixture(autouse=True)
def fresh_world(sfn_world):
    reset_world(sfn_world)
    enable_step_functions()
    events_rule.reset()
    yield


class Hub:
    def __init__(self, url):
        self.url = url
        self.iam = aws_client(url, "iam")
        self.sfn = aws_client(url, "stepfunctions")
        self.events = aws_client(url, "events")
        self.sm_role = self.iam.create_role(RoleName="sm", AssumeRolePolicyDocument=json.dumps(STATES_TRUST))[
            "Role"]["Arn"]
        self.events.create_event_bus(Name=BUS)

    def machine(self, name):
        return self.sfn.create_state_machine(name=name, definition=json.dumps(PASS), roleArn=self.sm_role)[
            "stateMachineArn"]

    def target_role(self, name, machine_arn, trust=None):
        arn = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust or EVENTS_TRUST))[
            "Role"]["Arn"]
        self.iam.put_role_policy(RoleName=name, PolicyName="start", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "states:StartExecution", "Resource": machine_arn}]}))
        return arn

    def rule(self, name, detail_type, target, state="ENABLED"):
        self.events.put_rule(Name=name, EventBusName=BUS, State=state, EventPattern=json.dumps(
            {"source": ["ferry.requests"], "detail-type": [detail_type]}))
        self.events.put_targets(Rule=name, EventBusName=BUS, Targets=[{"Id": "t", **target}])

    def executions(self, machine_arn, settle=0.3):
        time.sleep(settle)
        out = []
        for e in self.sfn.list_executions(stateMachineArn=machine_arn)["executions"]:
            t0 = time.monotonic()
            while True:
                d = self.sfn.describe_execution(executionArn=e["executionArn"])
                if d["status"] != "RUNNING" or time.monotonic() - t0 > 10:
                    break
                time.sleep(0.05)
            out.append(d)
        return out


@pytest.fixture
def hub(sfn_world):
    return Hub(sfn_world)


def entry(detail, detail_type="share-image", bus=BUS, source="ferry.requests"):
    return {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": bus}


# ------------------------------------------------------------------ delivery
def test_a_matching_event_starts_the_state_machine_as_the_target_role_with_the_detail(hub):
    sm = hub.machine("share")
    other = hub.machine("copy")
    role = hub.target_role("share-target", sm)
    hub.rule("share", "share-image", {"Arn": sm, "RoleArn": role, "InputPath": "$.detail"})
    hub.rule("copy", "copy-image", {"Arn": other, "RoleArn": hub.target_role("copy-target", other),
                                    "InputPath": "$.detail"})
    detail = {"imageId": "ami-0123456789abcdef0", "accountIds": [B], "dryRun": True}
    answer = hub.events.put_events(Entries=[entry(detail)])
    assert answer["FailedEntryCount"] == 0 and answer["Entries"][0]["EventId"], answer
    runs = hub.executions(sm)
    assert [(r["status"], json.loads(r["input"])) for r in runs] == [("SUCCEEDED", detail)], runs
    assert json.loads(runs[0]["output"]) == detail
    assert hub.executions(other, settle=0) == []  # its rule's detail-type did not match
    assert [d["roleArn"] for d in events_rule.DELIVERED] == [role]


def test_events_that_do_not_match_start_nothing(hub):
    sm = hub.machine("share")
    hub.rule("share", "share-image", {"Arn": sm, "RoleArn": hub.target_role("r", sm), "InputPath": "$.detail"})
    answer = hub.events.put_events(Entries=[
        entry({"a": 1}, source="someone.else"), entry({"a": 1}, detail_type="migrate-instance"),
        entry({"a": 1}, bus="default")])
    assert answer["FailedEntryCount"] == 0, answer
    assert hub.executions(sm) == []


def test_a_disabled_rule_starts_nothing(hub):
    sm = hub.machine("share")
    hub.rule("share", "share-image", {"Arn": sm, "RoleArn": hub.target_role("r", sm)}, state="DISABLED")
    assert hub.events.put_events(Entries=[entry({"a": 1})])["FailedEntryCount"] == 0
    assert hub.executions(sm) == []
    hub.events.enable_rule(Name="share", EventBusName=BUS)
    hub.events.put_events(Entries=[entry({"a": 1})])
    assert [r["status"] for r in hub.executions(sm)] == ["SUCCEEDED"]


def test_a_target_role_that_may_not_start_that_machine_starts_nothing(hub):
    sm = hub.machine("share")
    elsewhere = hub.machine("other")
    role = hub.target_role("other-only", elsewhere)  # StartExecution on another machine only
    hub.rule("share", "share-image", {"Arn": sm, "RoleArn": role, "InputPath": "$.detail"})
    answer = hub.events.put_events(Entries=[entry({"a": 1})])
    # PutEvents accepted the event; the invocation failed (AWS: FailedInvocations).
    assert answer["FailedEntryCount"] == 0, answer
    assert hub.executions(sm) == [] and hub.executions(elsewhere, settle=0) == []
    failed = events_rule.FAILED_INVOCATIONS
    assert [(f["targetArn"], f["roleArn"], f["error"]) for f in failed] == [(sm, role, "AccessDeniedException")]
    assert f"states:StartExecution on resource: {sm}" in failed[0]["cause"], failed


def test_a_target_role_that_does_not_trust_eventbridge_starts_nothing(hub):
    sm = hub.machine("share")
    role = hub.target_role("states-only", sm, trust=STATES_TRUST)
    hub.rule("share", "share-image", {"Arn": sm, "RoleArn": role})
    hub.events.put_events(Entries=[entry({"a": 1})])
    assert hub.executions(sm) == []
    assert [f["error"] for f in events_rule.FAILED_INVOCATIONS] == ["AccessDenied"]


def test_input_and_input_transformer_and_the_whole_event(hub):
    sm = hub.machine("share")
    role = hub.target_role("r", sm)
    hub.rule("constant", "constant", {"Arn": sm, "RoleArn": role, "Input": '{"fixed": true}'})
    hub.rule("transformed", "transformed", {"Arn": sm, "RoleArn": role, "InputTransformer": {
        "InputPathsMap": {"image": "$.detail.imageId"}, "InputTemplate": '{"imageId": "<image>", "dryRun": true}'}})
    hub.rule("whole", "whole", {"Arn": sm, "RoleArn": role})
    for kind in ("constant", "transformed", "whole"):
        hub.events.put_events(Entries=[entry({"imageId": "ami-1"}, detail_type=kind)])
    inputs = [json.loads(r["input"]) for r in hub.executions(sm)]
    assert {"fixed": True} in inputs and {"imageId": "ami-1", "dryRun": True} in inputs, inputs
    whole = [i for i in inputs if "detail-type" in i]
    assert len(inputs) == 3 and len(whole) == 1, inputs
    assert whole[0]["detail"] == {"imageId": "ami-1"} and whole[0]["account"] == HUB
    assert whole[0]["source"] == "ferry.requests" and whole[0]["detail-type"] == "whole"


# ------------------------------------------------------------------ the bus policy
def _policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_another_account_puts_events_only_as_the_bus_policy_allows(hub):
    sm = hub.machine("share")
    hub.rule("share", "share-image", {"Arn": sm, "RoleArn": hub.target_role("r", sm)})
    b_events = aws_client(hub.url, "events", as_account(hub.url, B))
    c_events = aws_client(hub.url, "events", as_account(hub.url, C))
    # No policy: B is refused, entry by entry.
    refused = b_events.put_events(Entries=[entry({"from": B}, bus=BUS_ARN)])
    assert refused["FailedEntryCount"] == 1, refused
    assert refused["Entries"][0]["ErrorCode"] == "AccessDeniedException", refused
    assert "events:PutEvents" in refused["Entries"][0]["ErrorMessage"]
    assert hub.executions(sm) == []

    hub.events.put_permission(EventBusName=BUS, Policy=_policy(
        {"Sid": "accounts", "Effect": "Allow", "Principal": {"AWS": [B]}, "Action": "events:PutEvents",
         "Resource": BUS_ARN}))
    accepted = b_events.put_events(Entries=[entry({"from": B}, bus=BUS_ARN)])
    assert accepted["FailedEntryCount"] == 0, accepted
    mixed = c_events.put_events(Entries=[entry({"from": C}, bus=BUS_ARN)])
    assert mixed["FailedEntryCount"] == 1 and mixed["Entries"][0]["ErrorCode"] == "AccessDeniedException"
    runs = hub.executions(sm)
    assert len(runs) == 1 and runs[0]["status"] == "SUCCEEDED", runs
    event = json.loads(runs[0]["input"])
    # The event on the hub's bus names the account that sent it.
    assert event["detail"] == {"from": B} and event["account"] == B, event


def _organization_with_a_member(hub):
    """An Organization of the hub with one new member account: (its id, the member)."""
    org = aws_client(hub.url, "organizations")
    org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    status = org.create_account(AccountName="member", Email="m@example.com")["CreateAccountStatus"]
    member = org.describe_create_account_status(CreateAccountRequestId=status["Id"])["CreateAccountStatus"][
        "AccountId"]
    return org_id, member


def test_an_organization_condition_admits_its_members_only(hub):
    org_id, member = _organization_with_a_member(hub)
    sm = hub.machine("share")
    hub.rule("share", "share-image", {"Arn": sm, "RoleArn": hub.target_role("r", sm), "InputPath": "$.detail"})
    hub.events.put_permission(EventBusName=BUS, Policy=_policy(
        {"Sid": "org", "Effect": "Allow", "Principal": "*", "Action": "events:PutEvents", "Resource": BUS_ARN,
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}}}))
    ok = aws_client(hub.url, "events", as_account(hub.url, member)).put_events(
        Entries=[entry({"from": "member"}, bus=BUS_ARN)])
    no = aws_client(hub.url, "events", as_account(hub.url, C)).put_events(
        Entries=[entry({"from": C}, bus=BUS_ARN)])
    assert ok["FailedEntryCount"] == 0 and no["FailedEntryCount"] == 1, (ok, no)
    assert [json.loads(r["input"]) for r in hub.executions(sm)] == [{"from": "member"}]


def test_a_bus_of_another_account_that_does_not_exist(hub):
    answer = aws_client(hub.url, "events", as_account(hub.url, B)).put_events(
        Entries=[entry({"a": 1}, bus=f"arn:aws:events:{REGION}:{HUB}:event-bus/nope")])
    assert answer["FailedEntryCount"] == 1 and answer["Entries"][0]["ErrorCode"] == "ResourceNotFoundException"


# ------------------------------------------------------- forwarding to another bus
def _forwarding(hub, *, bus_policy=True, role="events", org_only=False, sender=B):
    """B's rule on its default bus forwarding ferry.test events to the hub's bus, and the
    hub's rule starting a Pass machine with the whole event. `role`: "events" (a role of
    B trusting EventBridge, allowed events:PutEvents on the hub's bus), "no-put" (the
    same without that permission), "untrusting" (trusting no service) or None."""
    sm = hub.machine("copy-events")
    hub.events.put_rule(Name="from-targets", EventBusName=BUS, EventPattern=json.dumps({"source": ["ferry.test"]}))
    hub.events.put_targets(Rule="from-targets", EventBusName=BUS, Targets=[
        {"Id": "t", "Arn": sm, "RoleArn": hub.target_role("from-targets", sm)}])
    if bus_policy:
        principal = "*" if org_only else {"AWS": [sender]}
        statement = {"Sid": "targets", "Effect": "Allow", "Principal": principal, "Action": "events:PutEvents",
                     "Resource": BUS_ARN}
        if org_only:
            statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": bus_policy}}
        hub.events.put_permission(EventBusName=BUS, Policy=_policy(statement))
    creds = as_account(hub.url, sender)
    b_iam, b_events = aws_client(hub.url, "iam", creds), aws_client(hub.url, "events", creds)
    target = {"Id": "hub", "Arn": BUS_ARN}
    if role:
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com" if role != "untrusting"
                                              else "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        arn = b_iam.create_role(RoleName="forward", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        allowed = BUS_ARN if role != "no-put" else f"arn:aws:events:{REGION}:{HUB}:event-bus/other"
        b_iam.put_role_policy(RoleName="forward", PolicyName="put", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": allowed}]}))
        target["RoleArn"] = arn
    b_events.put_rule(Name="to-hub", EventPattern=json.dumps({"source": ["ferry.test"]}))
    b_events.put_targets(Rule="to-hub", Targets=[target])
    return sm, b_events


def _put_in_b(b_events):
    answer = b_events.put_events(Entries=[{
        "Source": "ferry.test", "DetailType": "Copy State Change", "Detail": json.dumps({"ImageId": "ami-1"}),
        "Resources": [f"arn:aws:ec2:{REGION}::image/ami-1"]}])
    assert answer["FailedEntryCount"] == 0, answer
    return answer["Entries"][0]["EventId"]


def test_a_rule_forwards_an_event_as_it_is_to_another_accounts_bus(hub):
    sm, b_events = _forwarding(hub)
    event_id = _put_in_b(b_events)
    runs = hub.executions(sm)
    assert len(runs) == 1 and runs[0]["status"] == "SUCCEEDED", runs
    event = json.loads(runs[0]["input"])
    # B's event, unchanged: its account, id, resources and detail (moto would re-put it
    # as the hub's own event without resources).
    assert (event["account"], event["id"], event["resources"], event["detail"], event["source"]) == (
        B, event_id, [f"arn:aws:ec2:{REGION}::image/ami-1"], {"ImageId": "ami-1"}, "ferry.test"), event
    forwarded = [d for d in events_rule.DELIVERED if d.get("forwarded")]
    assert [d["targetArn"] for d in forwarded] == [BUS_ARN] and events_rule.FAILED_INVOCATIONS == []


@pytest.mark.parametrize("setup, error", [
    ({"bus_policy": False}, "AccessDeniedException"),  # the hub's bus does not let B in
    ({"role": "no-put"}, "AccessDeniedException"),  # B's role may not put on the hub's bus
    ({"role": "untrusting"}, "AccessDenied"),  # EventBridge cannot assume B's role
])
def test_a_forward_the_receiver_or_the_senders_role_does_not_allow_delivers_nothing(hub, setup, error):
    sm, b_events = _forwarding(hub, **setup)
    _put_in_b(b_events)
    assert hub.executions(sm) == []
    assert [f["error"] for f in events_rule.FAILED_INVOCATIONS] == [error], events_rule.FAILED_INVOCATIONS


def test_an_organization_policy_lets_in_a_member_that_forwards_with_a_role_only(hub):
    org_id, member = _organization_with_a_member(hub)
    sm, member_events = _forwarding(hub, bus_policy=org_id, org_only=True, role=None, sender=member)
    _put_in_b(member_events)
    assert hub.executions(sm) == []
    assert [f["error"] for f in events_rule.FAILED_INVOCATIONS] == ["AccessDeniedException"]

    events_rule.reset()
    member_iam = aws_client(hub.url, "iam", as_account(hub.url, member))
    role = member_iam.create_role(RoleName="forward", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                                               "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    member_iam.put_role_policy(RoleName="forward", PolicyName="put", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "events:PutEvents",
                                               "Resource": BUS_ARN}]}))
    member_events.put_targets(Rule="to-hub", Targets=[{"Id": "hub", "Arn": BUS_ARN, "RoleArn": role}])
    _put_in_b(member_events)
    runs = hub.executions(sm)
    assert [json.loads(r["input"])["account"] for r in runs] == [member], runs


def test_an_event_from_another_bus_is_not_sent_on_to_a_third(hub):
    sm, b_events = _forwarding(hub)
    # The hub forwards what its bus receives to C's default bus (C lets the hub in).
    c_creds = as_account(hub.url, C)
    c_events = aws_client(hub.url, "events", c_creds)
    c_bus = f"arn:aws:events:{REGION}:{C}:event-bus/default"
    c_events.put_permission(Policy=_policy({"Sid": "hub", "Effect": "Allow", "Principal": {"AWS": [HUB]},
                                            "Action": "events:PutEvents", "Resource": c_bus}))
    hub.events.put_rule(Name="on-to-c", EventBusName=BUS, EventPattern=json.dumps({"source": ["ferry.test"]}))
    hub.events.put_targets(Rule="on-to-c", EventBusName=BUS, Targets=[{"Id": "c", "Arn": c_bus}])
    _put_in_b(b_events)
    assert len(hub.executions(sm)) == 1  # the hub's own targets still get it
    assert [f["error"] for f in events_rule.FAILED_INVOCATIONS] == ["NotForwardedAgain"]
    # An event put on the hub's bus by the hub itself does go on to C.
    events_rule.reset()
    hub.events.put_events(Entries=[{"Source": "ferry.test", "DetailType": "x", "Detail": "{}", "EventBusName": BUS}])
    assert [d["targetArn"] for d in events_rule.DELIVERED if d.get("forwarded")] == [c_bus]
