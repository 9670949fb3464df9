"""EventBridge: events put on a bus start Step Functions targets, and a bus's resource
policy decides who else may put events on it.

moto 5.2.5 stores buses, rules, targets and bus policies, matches event patterns, and
delivers to CloudWatch Logs, SQS (here: send_to_sqs_target, the whole event or the target
input), archives and other buses, but raises NotImplementedError
for a Step Functions target, delivers to DISABLED rules, and serves PutEvents with a bus
ARN of another account on the caller's own bus of that name, with no policy read. These
rules add what ferry's request bus needs (template.yaml, RequestBus):

* put_events_start_step_functions_targets: an event that matches an ENABLED rule starts
  each Step Functions target's execution AS the target's RoleArn: states:StartExecution
  on the state machine is evaluated with that role's identity policies (rules/iam.py), and
  the role must trust events.amazonaws.com; the execution's input is what the target's
  Input / InputPath / InputTransformer make of the event.
* Lambda function targets (same rule): invoked asynchronously (InvocationType Event)
  with the target input, through the world's Lambda API (the Lambda runner for ferry's
  functions), only when the function's resource-based policy allows lambda:InvokeFunction
  to events.amazonaws.com (with aws:SourceArn = the rule's ARN when the policy says so);
  moto itself raises NotImplementedError for them.
* put_events_to_another_accounts_bus_follows_its_policy: PutEvents naming a bus of another
  account by ARN is accepted only when that bus's resource policy allows events:PutEvents
  to the caller (account ids, account root ARNs, "*" with aws:PrincipalOrgID); otherwise
  the entry fails with AccessDeniedException and FailedEntryCount counts it.

* Event bus targets (forward_to_bus, same rule): a rule whose target is another bus
  (another account's, as a target account forwards its AMI events to the hub) hands the
  event on unchanged (moto re-puts it as the receiver's own event, without `resources`),
  as the target's RoleArn allows events:PutEvents there and the receiving bus's policy
  lets the sender in; an event that came from another bus is not sent on to a third.

Delivery failures (a role that may not start the execution, a role that does not trust
EventBridge, a state machine that does not exist) do not fail PutEvents, as on AWS: the
event was accepted; the world records them in FAILED_INVOCATIONS (GET
/ferry-world/events/invocations: "failed"), where AWS counts FailedInvocations in
CloudWatch and sends the event to the target's dead-letter queue when it has one.
start_execution_as is also how EventBridge Scheduler starts a schedule's Step Functions
target (rules/scheduler.py); its deliveries and failures are recorded in the same lists,
with "source": "scheduler".
"""
from __future__ import annotations

import json
import logging
import re
import threading

from .common import caller_of, partition

LOG = logging.getLogger("ferry_world.rules.events")

_lock = threading.Lock()
FAILED_INVOCATIONS: list[dict] = []
DELIVERED: list[dict] = []

_BUS_ARN = re.compile(r"^arn:(aws[\w-]*):events:([\w-]+):(\d{12}):event-bus/(.+)$")
_STATE_MACHINE_ARN = re.compile(r"^arn:(aws[\w-]*):states:([\w-]+):(\d{12}):stateMachine:([^:]+)$")
EVENTS_SERVICE_PRINCIPAL = "events.amazonaws.com"


def reset() -> None:
    with _lock:
        FAILED_INVOCATIONS.clear()
        DELIVERED.clear()


def record_failed(record: dict) -> None:
    """Record a failed target invocation (EventBridge's, or EventBridge Scheduler's:
    rules/scheduler.py); `record["source"]` says which."""
    LOG.warning("%s target invocation failed: %s",
                "EventBridge Scheduler" if record.get("source") == "scheduler" else "EventBridge", record)
    with _lock:
        FAILED_INVOCATIONS.append(record)


_failed = record_failed


# =================================================================================
# A target's input
# =================================================================================
def target_input(target: dict, event: dict):
    """EventBridge UG, "Transforming target input" / API Reference, Target (Input,
    InputPath, InputTransformer): at most one of them; `Input` is constant JSON text
    passed as it is, `InputPath` a JSONPath selecting part of the event (e.g. `$.detail`),
    `InputTransformer` the InputPathsMap placed into the InputTemplate (moto's own
    template parser), and without any of them the whole event."""
    if target.get("Input") is not None:
        return json.loads(target["Input"])
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse

        found = [m.value for m in parse(target["InputPath"]).find(event)]
        return found[0] if found else None
    if target.get("InputTransformer"):
        from moto.events.utils import EventTemplateParser

        transformer = target["InputTransformer"]
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
    # moto keeps its "ingestion-time" in the event it hands to targets; no AWS event has it.
    return {k: v for k, v in event.items() if k != "ingestion-time"}


# =================================================================================
# Starting a state machine as the target's role
# =================================================================================
def role_trusts_service(role_arn: str, service: str) -> bool:
    """IAM UG, "Creating a role to delegate permissions to an AWS service": the service
    assumes the role only when its trust policy allows sts:AssumeRole to the service
    principal (conditions on aws:SourceAccount / aws:SourceArn are read against the
    rule's or schedule's account; other keys are not known here and pass)."""
    from .trust import find_role

    role = find_role(role_arn)
    if role is None:
        return False
    doc = role.assume_role_policy_document
    if isinstance(doc, str):
        from urllib.parse import unquote

        try:
            doc = json.loads(doc)
        except ValueError:
            doc = json.loads(unquote(doc))
    account = role_arn.split(":")[4]
    allowed = False
    for st in (doc or {}).get("Statement") or []:
        actions = st.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if "sts:AssumeRole" not in actions and "sts:*" not in actions:
            continue
        principal = st.get("Principal") or {}
        services = principal.get("Service") if isinstance(principal, dict) else None
        services = services if isinstance(services, list) else [services]
        if service not in services:
            continue
        cond = st.get("Condition") or {}
        ok = True
        for op, kv in cond.items():
            for key, value in kv.items():
                values = value if isinstance(value, list) else [value]
                if key.lower() == "aws:sourceaccount" and account not in [str(v) for v in values]:
                    ok = False
        if not ok:
            continue
        if str(st.get("Effect")).lower() == "deny":
            return False
        allowed = True
    return allowed


def start_execution_as(role_arn: str | None, state_machine_arn: str, execution_input, service: str,
                       origin: dict) -> str | None:
    """Start `state_machine_arn` with `execution_input` as `role_arn`, the role the
    service (events.amazonaws.com, scheduler.amazonaws.com) assumes: the role must trust
    the service, and its identity policies must allow states:StartExecution on the state
    machine (Step Functions DG, "Starting a state machine execution in response to
    Amazon EventBridge events"; EventBridge UG, "Using IAM roles to send events to
    targets"). Returns the execution ARN, or None after recording the failure."""
    from . import iam

    record = {**origin, "targetArn": state_machine_arn, "roleArn": role_arn}
    m = _STATE_MACHINE_ARN.match(state_machine_arn or "")
    if not m:
        _failed({**record, "error": "InvalidArn"})
        return None
    _part, region, account, _name = m.groups()
    if not role_arn:
        _failed({**record, "error": "NoRoleArn"})
        return None
    if not role_trusts_service(role_arn, service):
        _failed({**record, "error": "AccessDenied",
                 "cause": f"{service} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"})
        return None
    caller = iam.state_machine_caller(role_arn, region)
    if caller is not None:
        denial = iam._first_denial(caller, [("states:StartExecution", state_machine_arn, {})])
        if denial is not None:
            _failed({**record, "error": "AccessDeniedException", "cause": denial[2]})
            return None
    from moto.stepfunctions.responses import get_backend

    try:
        execution = get_backend(account, region).start_execution(
            state_machine_arn, None, json.dumps(execution_input), None)
    except Exception as exc:  # noqa: BLE001 - a failed invocation, as AWS records it
        _failed({**record, "error": type(exc).__name__, "cause": str(exc)})
        return None
    arn = getattr(execution, "exec_arn", None) or getattr(execution, "execution_arn", None)
    with _lock:
        DELIVERED.append({**record, "executionArn": arn})
    return arn


# =================================================================================
# Rules
# =================================================================================
def put_events_start_step_functions_targets() -> None:
    """EventBridge UG, "Amazon EventBridge rules" / "Event patterns" and "Amazon
    EventBridge targets" (Step Functions state machine, Lambda function): an event put on
    a bus goes to every ENABLED rule of that bus whose event pattern matches it (moto's
    own pattern matcher); for a state machine target EventBridge assumes the target's
    RoleArn and calls StartExecution with the target input (target_input); a Lambda
    function target is invoked asynchronously (invoke_lambda_target) as its resource
    policy allows. A DISABLED rule receives nothing (PutRule, State). Other targets keep
    moto's delivery (moto 5.2.5 raises NotImplementedError for a Lambda target)."""
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    prev = Rule.send_to_targets
    if getattr(prev, "_ferry_events", False):
        return

    def send_to_targets(self, original_event, transform_input=True):
        if self.state != "ENABLED":
            return None
        sender = getattr(_tls, "sender", None)
        if sender:
            original_event = {**original_event, "account": sender}
        if not self.event_pattern.matches_event(original_event):
            return None
        # moto's own targets read "time" as a Unix time (PutEvents' own); AWS events, and
        # the targets served here, have it as ISO 8601 text (rules/ec2_events.py's too).
        moto_event = {**original_event, "time": _unix_time(original_event.get("time"))}
        original_event = {**original_event, "time": _iso_time(original_event.get("time"))}
        others = []
        for target in self.targets:
            service = parse_arn(target["Arn"]).service
            if service == "sqs":
                send_to_sqs_target(self.arn, target, original_event)
            elif service == "states":
                start_execution_as(
                    target.get("RoleArn"), target["Arn"], target_input(target, original_event),
                    EVENTS_SERVICE_PRINCIPAL,
                    {"source": "events", "rule": self.arn, "eventId": original_event.get("id")},
                )
            elif service == "lambda":
                invoke_lambda_target(
                    self.arn, target["Arn"], target_input(target, original_event),
                    {"source": "events", "rule": self.arn, "eventId": original_event.get("id")},
                )
            elif _BUS_ARN.match(str(target["Arn"])):
                forward_to_bus(self, target, original_event)
            else:
                others.append(target)
        if others:
            saved = self.targets
            self.targets = others
            try:
                return prev(self, moto_event, transform_input)
            finally:
                self.targets = saved
        return None

    send_to_targets._ferry_events = True
    Rule.send_to_targets = send_to_targets


def _iso_time(value):
    if isinstance(value, (int, float)):
        import datetime as _dt

        return _dt.datetime.fromtimestamp(float(value), _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _unix_time(value):
    if isinstance(value, str):
        import datetime as _dt

        try:
            at = _dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc)
        except ValueError:
            return value
        return at.timestamp()
    return value


def send_to_sqs_target(rule_arn: str, target: dict, event: dict) -> bool:
    """EventBridge UG, "Amazon EventBridge targets" (SQS queue) and "Transforming target
    input": the queue gets the target input (target_input: Input, InputPath,
    InputTransformer or the whole event, with its `account`) as the message body; a FIFO
    queue needs SqsParameters.MessageGroupId and content-based deduplication. (moto 5.2.5
    delivers only an InputTransformer's output or its own template of the event, which
    drops `account`.) A queue that does not exist is a failed invocation."""
    from moto.sqs import sqs_backends
    from moto.utilities.arns import parse_arn

    arn = parse_arn(target["Arn"])
    record = {"source": "events", "rule": rule_arn, "eventId": event.get("id"), "targetArn": target["Arn"]}
    payload = target_input(target, event)
    body = target["Input"] if target.get("Input") is not None else json.dumps(payload)
    group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
    try:
        backend = sqs_backends[arn.account][arn.region]
        if arn.resource_id.endswith(".fifo"):
            attrs = backend.get_queue_attributes(queue_name=arn.resource_id,
                                                 attribute_names=["ContentBasedDeduplication"])
            if not group_id or attrs.get("ContentBasedDeduplication") == "false":
                _failed({**record, "error": "InvalidParameter",
                         "cause": "a FIFO queue target needs MessageGroupId and content-based deduplication"})
                return False
        backend.send_message(queue_name=arn.resource_id, message_body=body, group_id=group_id)
    except Exception as exc:  # noqa: BLE001 - a failed invocation
        _failed({**record, "error": type(exc).__name__, "cause": str(exc)})
        return False
    with _lock:
        DELIVERED.append(record)
    return True


_FUNCTION_ARN = re.compile(r"^arn:(aws[\w-]*):lambda:([\w-]+):(\d{12}):function:([^:]+)(?::([^:]+))?$")


def lambda_policy_allows(fn, function_arn: str, rule_arn: str, service: str = EVENTS_SERVICE_PRINCIPAL) -> bool:
    """EventBridge UG, "Using resource-based policies for Amazon EventBridge" (Lambda
    permissions) and Lambda DG, "Working with resource-based IAM policies in Lambda"
    (AddPermission / AWS::Lambda::Permission): EventBridge may invoke the function only
    when its resource-based policy has a statement allowing lambda:InvokeFunction to the
    service principal events.amazonaws.com on the invoked ARN, whose conditions
    (aws:SourceArn = the rule's ARN, aws:SourceAccount = the rule's account) hold, and no
    statement denies it. No policy: not allowed."""
    from .iam_policy import action_matches, as_list, conditions_hold, resource_applies

    statements = list(getattr(getattr(fn, "policy", None), "statements", None) or [])
    context = {"aws:sourcearn": rule_arn, "aws:sourceaccount": rule_arn.split(":")[4]}
    allowed = False
    for st in statements:
        if not isinstance(st, dict) or not action_matches(st.get("Action"), "lambda:InvokeFunction"):
            continue
        principal = st.get("Principal")
        if principal != "*":
            services = as_list(principal.get("Service")) if isinstance(principal, dict) else []
            if service not in services and "*" not in services:
                continue
        if not resource_applies(st, function_arn):
            continue
        if not conditions_hold(st.get("Condition"), context, {"aws:sourcearn", "aws:sourceaccount"}):
            continue
        if str(st.get("Effect", "Allow")).lower() == "deny":
            return False
        allowed = True
    return allowed


def invoke_lambda_target(rule_arn: str, function_arn: str, payload, origin: dict) -> bool:
    """EventBridge UG, "Amazon EventBridge targets" (Lambda function) and Lambda DG,
    "Invoking a Lambda function asynchronously": EventBridge invokes a Lambda target
    asynchronously (InvocationType Event) with the target input as the payload, as the
    function's resource-based policy allows (lambda_policy_allows). The invocation goes
    through the world's Lambda API (moto's Lambda backend, whose Invoke the Lambda runner,
    engine/lambda_runner.py, serves for ferry's functions, on a thread of its own for
    InvocationType Event), so delivery never waits for the function. A function that
    does not exist or does not allow EventBridge is a failed invocation
    (FAILED_INVOCATIONS); the function's own errors are Lambda's asynchronous retries'
    business, not EventBridge's, and are not recorded here."""
    record = {**origin, "targetArn": function_arn}
    m = _FUNCTION_ARN.match(function_arn or "")
    if not m:
        _failed({**record, "error": "InvalidArn"})
        return False
    _part, region, account, name, qualifier = m.groups()
    from moto.awslambda.utils import get_backend

    backend = get_backend(account, region)
    try:
        fn = backend.get_function(name, qualifier)
    except Exception as exc:  # noqa: BLE001 - a failed invocation, as AWS records it
        _failed({**record, "error": "ResourceNotFoundException", "cause": str(exc) or type(exc).__name__})
        return False
    if not lambda_policy_allows(fn, function_arn, rule_arn):
        _failed({**record, "error": "AccessDeniedException",
                 "cause": (f"{EVENTS_SERVICE_PRINCIPAL} is not authorized to perform: lambda:InvokeFunction on "
                           f"resource: {function_arn} because no resource-based policy allows it")})
        return False
    body = json.dumps(payload).encode("utf-8")
    try:
        backend.invoke(name, qualifier, body, {"X-Amz-Invocation-Type": "Event"}, {})
    except Exception as exc:  # noqa: BLE001
        _failed({**record, "error": type(exc).__name__, "cause": str(exc)})
        return False
    with _lock:
        DELIVERED.append({**record, "invocationType": "Event"})
    return True


def forward_to_bus(rule, target: dict, event: dict) -> bool:
    """EventBridge UG, "Sending and receiving events between AWS accounts" and "Sending
    events between event buses in the same account and Region" (rule targets that are
    event buses):

    * the event reaches the receiving bus as it is: its `account` (the account where it
      happened), `region`, `source`, `detail-type`, `detail`, `resources` and `id` stay,
      and the receiving bus's rules match it (moto re-puts it as the receiver's own
      event, without `resources`);
    * the target's RoleArn, when given, is the sender's: it must trust
      events.amazonaws.com and allow events:PutEvents on the receiving bus;
    * a bus of another account must allow the sender in its resource-based policy (the
      role, or the sending account); when only the Organization is allowed, the sender
      must use a role ("the sending event bus must have IAM roles attached to them");
    * an event that came from another bus is not forwarded again ("If a receiver account
      sets up a rule that sends events received from a sender account on to a third
      account, these events are not sent to the third account"; the same for a third
      bus of one account).

    A failed forward is a failed invocation (FAILED_INVOCATIONS), as on AWS."""
    from moto.events import models

    from . import iam

    bus_arn = target["Arn"]
    record = {"source": "events", "rule": rule.arn, "eventId": event.get("id"), "targetArn": bus_arn,
              "roleArn": target.get("RoleArn")}
    if getattr(_tls, "forwarded", False):
        _failed({**record, "error": "NotForwardedAgain",
                 "cause": "an event received from another event bus is not sent on to a third bus"})
        return False
    _part, region, owner, name = _BUS_ARN.match(bus_arn).groups()
    sender = rule.arn.split(":")[4]
    role_arn = target.get("RoleArn")
    if role_arn:
        if not role_trusts_service(role_arn, EVENTS_SERVICE_PRINCIPAL):
            _failed({**record, "error": "AccessDenied",
                     "cause": f"{EVENTS_SERVICE_PRINCIPAL} is not authorized to perform: sts:AssumeRole on "
                              f"resource: {role_arn}"})
            return False
        caller = iam.state_machine_caller(role_arn, region)
        if caller is not None:
            denial = iam._first_denial(caller, [("events:PutEvents", bus_arn, {})])
            if denial is not None:
                _failed({**record, "error": "AccessDeniedException", "cause": denial[2]})
                return False
    try:
        receiver = models.events_backends[owner][region]
        bus = receiver._get_event_bus(name)
    except Exception:  # noqa: BLE001
        _failed({**record, "error": "ResourceNotFoundException", "cause": f"Event bus {name} does not exist."})
        return False
    if owner != sender:
        principal = role_arn or f"arn:{partition(region)}:iam::{sender}:root"
        # Without a role, a policy that lets in the Organization does not let in the sender.
        if not bus_policy_allows(bus, sender, principal, organization=bool(role_arn)):
            _failed({**record, "error": "AccessDeniedException",
                     "cause": f"events:PutEvents on {bus_arn} is not allowed to {principal} by the bus's "
                              "resource-based policy"})
            return False
    with _lock:
        DELIVERED.append({**record, "forwarded": True})
    _tls.forwarded = True
    try:
        for receiving_rule in list(bus.rules.values()):
            receiving_rule.send_to_targets(dict(event))
    finally:
        _tls.forwarded = False
    return True


def bus_policy_allows(bus, caller_account: str, principal: str, organization: bool = True) -> bool:
    """EventBridge UG, "Permissions for event buses in Amazon EventBridge" and "Sending
    and receiving events between AWS accounts": another account may put events on a bus
    only when the bus's resource-based policy allows events:PutEvents on the bus to it
    (an account id, its root ARN or a role of it as Principal, or "*" with a condition
    such as aws:PrincipalOrgID), and no statement denies it."""
    from .iam_policy import policy_decision
    from .organizations import org_id_of

    text = bus.policy
    if not text:
        return False
    doc = json.loads(text) if isinstance(text, str) else text
    context = {"aws:principalaccount": caller_account, "aws:principalarn": principal}
    org = org_id_of(caller_account) if organization else None
    if org:
        context["aws:principalorgid"] = org
    decision = policy_decision(
        doc, action="events:PutEvents", account=caller_account, principal=principal, context=context,
        known_keys={"aws:principalorgid", "aws:principalaccount", "aws:principalarn"}, resource=bus.arn,
    )
    return decision == "Allow"


def put_events_to_another_accounts_bus_follows_its_policy() -> None:
    """EventBridge API Reference, PutEvents (EventBusName: "the name or ARN of the event
    bus to receive the event") and PutEventsResultEntry (ErrorCode AccessDeniedException:
    "You do not have sufficient access to perform this action"); EventBridge UG,
    "Permissions for event buses": an entry naming another account's bus by ARN reaches
    that bus, with `account` = the sender's account, when the bus policy allows the
    sender (bus_policy_allows); otherwise that entry fails (ErrorCode
    AccessDeniedException, FailedEntryCount counts it) and the others go on. A bus that
    does not exist fails its entry with ResourceNotFoundException (the world's guess of
    the per-entry code)."""
    from moto.events import models

    prev = models.EventsBackend.put_events
    if getattr(prev, "_ferry_events", False):
        return

    def put_events(self, events):
        results = [None] * len(events)
        local = []
        for i, event in enumerate(events):
            m = _BUS_ARN.match(str(event.get("EventBusName") or ""))
            if not m or (m.group(3) == self.account_id and m.group(2) == self.region_name):
                local.append(i)
                continue
            _part, region, owner, name = m.groups()
            principal = caller_of(self.account_id, self.region_name)
            try:
                owner_backend = models.events_backends[owner][region]
                bus = owner_backend._get_event_bus(name)
            except Exception:  # noqa: BLE001
                results[i] = {"ErrorCode": "ResourceNotFoundException",
                              "ErrorMessage": f"Event bus {name} does not exist."}
                continue
            if owner != self.account_id and not bus_policy_allows(bus, self.account_id, principal):
                from .iam_policy import shown_principal

                results[i] = {
                    "ErrorCode": "AccessDeniedException",
                    "ErrorMessage": (f"User: {shown_principal(principal)} is not authorized to perform: "
                                     f"events:PutEvents on resource: {bus.arn} because no resource-based "
                                     "policy allows the events:PutEvents action"),
                }
                continue
            # The owner's PutEvents, the event's `account` being the sender's (EventBridge
            # UG, "Amazon EventBridge events": account, the account that sent it).
            _tls.sender = self.account_id
            try:
                results[i] = prev(owner_backend, [{**event, "EventBusName": name}])[0]
            finally:
                _tls.sender = None
        if local:
            for i, entry in zip(local, prev(self, [events[i] for i in local])):
                results[i] = entry
        return results

    put_events._ferry_events = True
    models.EventsBackend.put_events = put_events


_tls = threading.local()  # the sending account of a cross-account entry being delivered


def install() -> None:
    """Both rules, in order (delivery first: the cross-account rule hands accepted
    entries to moto's PutEvents of the owner, whose delivery is the first rule's)."""
    put_events_start_step_functions_targets()
    put_events_to_another_accounts_bus_follows_its_policy()
