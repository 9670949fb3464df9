"""EventBridge Scheduler: a schedule whose time has come invokes its target AS the
schedule's execution role.

moto 5.2.5 stores schedules (CreateSchedule / GetSchedule / UpdateSchedule /
DeleteSchedule / ListSchedules, served by the world's server like any other service) but
never invokes one. The world invokes a schedule when asked to, as if its time had come
(ferry's scheduled distribute-image: template.yaml, DistributeImageSchedule):

* fire_schedule: what EventBridge Scheduler does at one of the schedule's times.
  - EventBridge Scheduler User Guide, "Changing the schedule state" (managing-schedule-
    state): a schedule is ENABLED or DISABLED; a DISABLED schedule does not invoke its
    target. (UpdateSchedule replaces the whole schedule, "If you do not specify a
    parameter that you've previously set, it defaults to null"; a schedule without a
    State, as moto stores one updated without it, is taken as ENABLED, the default of
    CreateSchedule.) A schedule whose StartDate is after, or EndDate before, the
    scheduled time does not invoke it either (API Reference, CreateSchedule: StartDate /
    EndDate bound the recurring schedule's invocations).
  - User Guide, "Setting up Amazon EventBridge Scheduler" / "Set up the execution role":
    EventBridge Scheduler invokes the target with the execution role (Target.RoleArn),
    which it assumes as the service principal scheduler.amazonaws.com: the role's trust
    policy must allow sts:AssumeRole to that principal (conditions on aws:SourceAccount
    read against the schedule's account), and its permissions policy must allow the
    target's API operation.
  - User Guide, "Using templated targets" (managing-targets-templated): a Target.Arn that
    is a state machine ARN is the templated target Step Functions StartExecution; the
    execution's input is Target.Input (JSON text; without Input, {}). The universal
    target arn:aws:scheduler:::aws-sdk:sfn:startExecution ("Using universal targets")
    takes the StartExecution request as its Input ({"StateMachineArn": ..., "Input":
    "<JSON text>"}) and is treated alike. Other targets are not modelled (the answer
    says so; nothing is invoked).
  - User Guide, "Adding context attributes" (managing-schedule-context-attributes):
    <aws.scheduler.schedule-arn>, <aws.scheduler.scheduled-time> (e.g.
    2022-03-22T18:59:43Z), <aws.scheduler.execution-id> and
    <aws.scheduler.attempt-number> in the Input are replaced by their values first.

  The start itself is rules/events.py's start_execution_as with service
  scheduler.amazonaws.com, shared with EventBridge rules: the trust check, the role's
  identity policies evaluated for states:StartExecution on the state machine (rules/
  iam.py, when the "iam" group is installed), and the record of the outcome in
  events.DELIVERED / events.FAILED_INVOCATIONS (entries with "source": "scheduler").
  A failed invocation (role not trusted: "AccessDenied"; states:StartExecution not
  allowed: "AccessDeniedException"; input that is not JSON: "InvalidExecutionInput",
  what StartExecution answers; a state machine that does not exist:
  "StateMachineDoesNotExist") starts nothing; on AWS it counts in the schedule's
  CloudWatch metrics and goes to the target's dead-letter queue when it has one (not
  modelled, nor are retries: RetryPolicy is stored only).

Control endpoint (engine/faults.py), for the world's tests and the Rust e2e tests:

  POST /ferry-world/schedules/fire
  request:  {"name": "ferry-distribute-image",   the schedule's name
             "group": "default",                 optional (default "default")
             "accountId": "123456789012",        optional (default: the hub, 123456789012)
             "region": "us-east-1",              optional (default us-east-1)
             "scheduledTime": "2026-12-02T03:00:00Z"}  optional (default: the world's clock)
            or {"arn": "arn:aws:scheduler:<region>:<account>:schedule/<group>/<name>", ...}
  200:      {"scheduleArn": "...", "name": "...", "group": "...", "state": "ENABLED",
             "scheduledTime": "...Z", "executionId": "<16 chars>",
             "invoked": true,                    false: the target was not called
             "reason": null,                     why not invoked ("DISABLED", outside
                                                 StartDate/EndDate), else null
             "targetArn": "<state machine ARN>", "roleArn": "<Target.RoleArn>",
             "input": {...} | null,              the execution input sent (parsed JSON)
             "executionArn": "arn:aws:states:...:execution:..." | null,
             "failure": null | {"error": "AccessDeniedException", "cause": "...", ...}}
            invoked=true and executionArn=null means the invocation failed (see failure;
            the same record is in GET /ferry-world/events/invocations "failed").
  404:      {"error": "ResourceNotFoundException", "message": "Schedule <name> does not exist."}
  400:      {"error": "..."} for a malformed request or a target the world does not model.
"""
from __future__ import annotations

import datetime as _dt
import json
import random
import re
import string

from . import events
from .common import existing_backend

SCHEDULER_SERVICE_PRINCIPAL = "scheduler.amazonaws.com"
HUB_ACCOUNT_ID = "123456789012"
UNIVERSAL_SFN_START = re.compile(r"^arn:aws[\w-]*:scheduler:::aws-sdk:sfn:startExecution$")
_SCHEDULE_ARN = re.compile(r"^arn:aws[\w-]*:scheduler:([\w-]+):(\d{12}):schedule/([^/]+)/([^/]+)$")


class ScheduleNotFound(Exception):
    pass


def find_schedule(account: str, region: str, group: str, name: str):
    """moto's stored schedule, or ScheduleNotFound (the API's ResourceNotFoundException)."""
    from moto.scheduler.models import scheduler_backends

    backend = existing_backend(scheduler_backends, account, region)
    groups = getattr(backend, "schedule_groups", {}) if backend is not None else {}
    schedule = (groups.get(group).schedules.get(name) if group in groups else None)
    if schedule is None:
        raise ScheduleNotFound(f"Schedule {name} does not exist.")
    return schedule


def _as_time(value) -> _dt.datetime | None:
    """StartDate / EndDate as moto stores them (epoch seconds from the API, or text)."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) or re.fullmatch(r"\d+(\.\d+)?", str(value)):
        return _dt.datetime.fromtimestamp(float(value), tz=_dt.timezone.utc)
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
    parsed = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_dt.timezone.utc)


def _context(text: str, values: dict) -> str:
    for key, value in values.items():
        text = text.replace(f"<aws.scheduler.{key}>", value)
    return text


def fire_schedule(account: str, region: str, name: str, group: str = "default",
                  scheduled_time: _dt.datetime | None = None) -> dict:
    """Invoke the schedule as EventBridge Scheduler does when its time comes (module
    docstring). Returns the answer of POST /ferry-world/schedules/fire; raises
    ScheduleNotFound, or ValueError for a target the world does not model."""
    from ..engine import clock

    schedule = find_schedule(account, region, group, name)
    when = scheduled_time or clock.now()
    when = when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)
    execution_id = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(16))
    target = dict(schedule.target or {})
    state = schedule.state or "ENABLED"
    answer = {
        "scheduleArn": schedule.arn, "name": schedule.name, "group": schedule.group_name, "state": state,
        "scheduledTime": when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "executionId": execution_id, "invoked": False, "reason": None,
        "targetArn": target.get("Arn"), "roleArn": target.get("RoleArn"),
        "input": None, "executionArn": None, "failure": None,
    }
    if state == "DISABLED":
        answer["reason"] = "the schedule is DISABLED: EventBridge Scheduler does not invoke its target"
        return answer
    start, end = _as_time(schedule.start_date), _as_time(schedule.end_date)
    if (start and when < start) or (end and when > end):
        answer["reason"] = "the scheduled time is outside the schedule's StartDate/EndDate"
        return answer

    context = {"schedule-arn": schedule.arn, "scheduled-time": answer["scheduledTime"],
               "execution-id": execution_id, "attempt-number": "1"}
    origin = {"source": "scheduler", "schedule": schedule.arn, "executionId": execution_id,
              "scheduledTime": answer["scheduledTime"]}
    arn = str(target.get("Arn") or "")
    text = target.get("Input")
    if UNIVERSAL_SFN_START.match(arn):
        # The universal target's Input is the StartExecution request.
        try:
            request = json.loads(_context(text or "{}", context))
        except ValueError as exc:
            return _failed_answer(answer, origin, target, "InvalidExecutionInput",
                                  f"the universal target's Input is not JSON: {exc}")
        arn = str(request.get("StateMachineArn") or "")
        text = request.get("Input")
        answer["targetArn"] = arn
    elif not events._STATE_MACHINE_ARN.match(arn):
        raise ValueError(f"the world fires Step Functions targets only (templated state machine ARN or "
                         f"arn:aws:scheduler:::aws-sdk:sfn:startExecution), not {arn!r}")
    if text is None:
        execution_input = {}
    else:
        try:
            execution_input = json.loads(_context(text, context))
        except ValueError as exc:
            # StartExecution refuses input that is not JSON (InvalidExecutionInput).
            return _failed_answer(answer, origin, {**target, "Arn": arn}, "InvalidExecutionInput",
                                  f"Invalid State Machine Execution Input: {exc}")
    answer["input"] = execution_input
    answer["invoked"] = True
    execution_arn = events.start_execution_as(
        target.get("RoleArn"), arn, execution_input, SCHEDULER_SERVICE_PRINCIPAL, origin)
    answer["executionArn"] = execution_arn
    if execution_arn is None:
        answer["failure"] = next(
            (f for f in reversed(list(events.FAILED_INVOCATIONS)) if f.get("executionId") == execution_id), None)
    return answer


def _failed_answer(answer: dict, origin: dict, target: dict, error: str, cause: str) -> dict:
    record = {**origin, "targetArn": target.get("Arn"), "roleArn": target.get("RoleArn"),
              "error": error, "cause": cause}
    events.record_failed(record)
    answer.update(invoked=True, failure=record)
    return answer


def fire_request(body: dict) -> tuple[int, dict]:
    """POST /ferry-world/schedules/fire (module docstring): (HTTP status, answer)."""
    if body.get("arn"):
        m = _SCHEDULE_ARN.match(str(body["arn"]))
        if not m:
            raise ValueError(f"not a schedule ARN: {body['arn']!r}")
        region, account, group, name = m.groups()
    else:
        if not body.get("name"):
            raise ValueError('give the schedule\'s "name" (with optional "group", "accountId", "region") or "arn"')
        name = str(body["name"])
        group = str(body.get("group") or "default")
        account = str(body.get("accountId") or HUB_ACCOUNT_ID)
        region = str(body.get("region") or "us-east-1")
    when = None
    if body.get("scheduledTime"):
        when = _as_time(body["scheduledTime"])
    try:
        return 200, fire_schedule(account, region, name, group, when)
    except ScheduleNotFound as exc:
        return 404, {"error": "ResourceNotFoundException", "message": str(exc)}
