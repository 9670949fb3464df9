"""Deploys a template's EventBridge Scheduler schedules into the world, as CloudFormation
would (called by deploy.deploy_stack after the template's plain IAM roles, next to
buses.py):

* AWS::Scheduler::Schedule: the schedule (Name, default `<stack>-<logical id>` as
  CloudFormation generates one, without its random suffix; GroupName, default
  `default`; ScheduleExpression, ScheduleExpressionTimezone, State, FlexibleTimeWindow,
  Description, StartDate, EndDate, KmsKeyArn, ActionAfterCompletion, and the Target:
  Arn, RoleArn, Input, RetryPolicy, DeadLetterConfig and the per-target parameters) in
  moto's scheduler backend, through the `scheduler` API as the account. Ref: its name;
  GetAtt Arn. Created when it does not exist, else updated with the whole definition
  (UpdateSchedule replaces the schedule: EventBridge Scheduler User Guide, "Changing the
  schedule state"); a schedule whose Condition is false is deleted.

The schedule is only stored: moto never invokes a schedule. The world invokes it on
request (POST /ferry-world/schedules/fire, rules/scheduler.py).

Idempotent; acts with the account's credentials given by the caller (`as_account`).
"""
from __future__ import annotations

SCHEDULE = "AWS::Scheduler::Schedule"
_TARGET_KEYS = (
    "Arn", "RoleArn", "Input", "RetryPolicy", "DeadLetterConfig", "EcsParameters",
    "EventBridgeParameters", "KinesisParameters", "SageMakerPipelineParameters", "SqsParameters",
)
_OPTIONAL = ("Description", "ScheduleExpressionTimezone", "StartDate", "EndDate", "KmsKeyArn",
             "ActionAfterCompletion")


def _target(props: dict) -> dict:
    target = {k: props[k] for k in _TARGET_KEYS if props.get(k) is not None}
    retry = target.get("RetryPolicy")
    if retry:
        # A parameter or !Ref may give the numbers as text; the API takes integers.
        target["RetryPolicy"] = {k: int(v) for k, v in retry.items()}
    if target.get("Input") is not None and not isinstance(target["Input"], str):
        import json

        target["Input"] = json.dumps(target["Input"])
    return target


def deploy_schedules(resources: dict, resolver, params: dict, created, as_account: dict) -> dict:
    """Deploy the template's schedules. `params` gets each schedule's Ref (its name) and
    `.Arn`. Returns {logical: {"name", "group", "arn"}}."""
    if not any(res.get("Type") == SCHEDULE for res in resources.values()):
        return {}
    import boto3

    scheduler = boto3.client("scheduler", **as_account)
    stack = params["AWS::StackName"]
    out = {}
    for logical, res in resources.items():
        if res.get("Type") != SCHEDULE:
            continue
        raw = res.get("Properties") or {}
        name = resolver.resolve(raw.get("Name")) or f"{stack}-{logical}"[:64]
        group = resolver.resolve(raw.get("GroupName")) or "default"
        if not created(res):
            try:
                scheduler.delete_schedule(Name=name, GroupName=group)
            except scheduler.exceptions.ResourceNotFoundException:
                pass
            continue
        props = resolver.resolve(raw)
        kwargs = {
            "Name": name,
            "GroupName": group,
            "ScheduleExpression": props["ScheduleExpression"],
            "FlexibleTimeWindow": props.get("FlexibleTimeWindow") or {"Mode": "OFF"},
            "Target": _target(props["Target"]),
            # CloudFormation UG, AWS::Scheduler::Schedule, State: ENABLED unless given.
            "State": props.get("State") or "ENABLED",
        }
        for key in _OPTIONAL:
            if props.get(key) is not None:
                kwargs[key] = props[key]
        if str(kwargs["FlexibleTimeWindow"].get("MaximumWindowInMinutes", "")).isdigit():
            kwargs["FlexibleTimeWindow"] = {
                **kwargs["FlexibleTimeWindow"],
                "MaximumWindowInMinutes": int(kwargs["FlexibleTimeWindow"]["MaximumWindowInMinutes"]),
            }
        try:
            scheduler.get_schedule(Name=name, GroupName=group)
            exists = True
        except scheduler.exceptions.ResourceNotFoundException:
            exists = False
        if exists:
            arn = scheduler.update_schedule(**kwargs)["ScheduleArn"]
        else:
            arn = scheduler.create_schedule(**kwargs)["ScheduleArn"]
        params[logical] = name
        params[f"{logical}.Arn"] = arn
        out[logical] = {"name": name, "group": group, "arn": arn}
    return out
