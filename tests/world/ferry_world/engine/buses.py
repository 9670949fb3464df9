"""Deploys a template's EventBridge resources into the world, as CloudFormation would
(called by deploy.deploy_stack after the template's plain IAM roles):

* AWS::Events::EventBus: the bus (Ref: its name; GetAtt Arn);
* AWS::Events::EventBusPolicy: the statements of every EventBusPolicy of a bus whose
  Condition holds make its resource policy (a bus none of them applies to has none);
* AWS::Events::Rule: the rule on its bus (EventPattern, State, Description) and exactly
  its Targets (Id, Arn, RoleArn, Input, InputPath, InputTransformer); a rule whose
  Condition is false is deleted;
* AWS::Lambda::Permission: a statement (Sid = its logical id) of the function's resource
  policy (Action, Principal, SourceArn, SourceAccount), as EventBridge needs to invoke a
  Lambda target (rules/events.py); one whose Condition is false is removed.

Idempotent; acts with the account's credentials given by the caller (`as_account`).
"""
from __future__ import annotations

import json


def deploy_event_resources(resources: dict, resolver, params: dict, created, as_account: dict) -> dict:
    """Deploy the template's buses, bus policies and rules. `params` gets each bus's
    and rule's Ref and `.Arn` (so later !Ref / !GetAtt resolve). Returns
    {"buses": {logical: arn}, "rules": {logical: arn}}."""
    import boto3

    kinds = {"AWS::Events::EventBus", "AWS::Events::EventBusPolicy", "AWS::Events::Rule",
             "AWS::Lambda::Permission"}
    if not any(res.get("Type") in kinds for res in resources.values()):
        return {"buses": {}, "rules": {}}
    events = boto3.client("events", **as_account)
    buses = {}
    for logical, res in resources.items():
        if res.get("Type") != "AWS::Events::EventBus" or not created(res):
            continue
        props = resolver.resolve(res.get("Properties") or {})
        name = props["Name"]
        try:
            arn = events.describe_event_bus(Name=name)["Arn"]
        except events.exceptions.ResourceNotFoundException:
            kwargs = {"Name": name}
            if props.get("Description"):
                kwargs["Description"] = props["Description"]
            arn = events.create_event_bus(**kwargs)["EventBusArn"]
        params[logical] = name
        params[f"{logical}.Arn"] = arn
        params[f"{logical}.Name"] = name
        buses[logical] = arn

    # Bus policies: one document per bus, from every created EventBusPolicy naming it.
    statements: dict[str, list] = {params[b]: [] for b in buses}
    for logical, res in resources.items():
        if res.get("Type") != "AWS::Events::EventBusPolicy" or not created(res):
            continue
        props = resolver.resolve(res.get("Properties") or {})
        bus = props.get("EventBusName") or "default"
        statement = {"Sid": props["StatementId"], **(props.get("Statement") or {})}
        statements.setdefault(bus, []).append(statement)
    for bus, sts in statements.items():
        if sts:
            events.put_permission(EventBusName=bus, Policy=json.dumps({"Version": "2012-10-17", "Statement": sts}))
        else:
            try:
                events.remove_permission(EventBusName=bus, RemoveAllPermissions=True)
            except events.exceptions.ResourceNotFoundException:
                pass

    rules = {}
    for logical, res in resources.items():
        if res.get("Type") != "AWS::Events::Rule":
            continue
        raw = res.get("Properties") or {}
        name = resolver.resolve(raw.get("Name")) or logical
        bus = resolver.resolve(raw.get("EventBusName")) or "default"
        if not created(res):
            try:
                targets = events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]
                if targets:
                    events.remove_targets(Rule=name, EventBusName=bus, Ids=[t["Id"] for t in targets])
                events.delete_rule(Name=name, EventBusName=bus)
            except events.exceptions.ResourceNotFoundException:
                pass
            continue
        props = resolver.resolve(raw)
        kwargs = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if props.get("EventPattern") is not None:
            kwargs["EventPattern"] = json.dumps(props["EventPattern"])
        if props.get("ScheduleExpression"):
            kwargs["ScheduleExpression"] = props["ScheduleExpression"]
        if props.get("Description"):
            kwargs["Description"] = props["Description"]
        arn = events.put_rule(**kwargs)["RuleArn"]
        wanted = []
        for target in props.get("Targets") or []:
            t = {k: target[k] for k in ("Id", "Arn", "RoleArn", "Input", "InputPath") if k in target}
            if "InputTransformer" in target:
                t["InputTransformer"] = target["InputTransformer"]
            wanted.append(t)
        existing = [t["Id"] for t in events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]]
        stale = [i for i in existing if i not in {t["Id"] for t in wanted}]
        if stale:
            events.remove_targets(Rule=name, EventBusName=bus, Ids=stale)
        if wanted:
            events.put_targets(Rule=name, EventBusName=bus, Targets=wanted)
        params[logical] = name
        params[f"{logical}.Arn"] = arn
        rules[logical] = arn
    deploy_lambda_permissions(resources, resolver, created, as_account)
    return {"buses": buses, "rules": rules}


def deploy_lambda_permissions(resources: dict, resolver, created, as_account: dict) -> None:
    """AWS::Lambda::Permission (CloudFormation: AddPermission on FunctionName with the
    logical id as StatementId); re-deploying replaces the statement."""
    import boto3
    from botocore.exceptions import ClientError

    permissions = {k: r for k, r in resources.items() if r.get("Type") == "AWS::Lambda::Permission"}
    if not permissions:
        return
    lam = boto3.client("lambda", **as_account)
    for logical, res in permissions.items():
        props = resolver.resolve(res.get("Properties") or {})
        function = props.get("FunctionName")
        if not function:
            continue
        try:
            lam.remove_permission(FunctionName=function, StatementId=logical)
        except ClientError:  # no such statement (or no policy) yet
            pass
        if not created(res):
            continue
        kwargs = {"FunctionName": function, "StatementId": logical, "Action": props["Action"],
                  "Principal": props["Principal"]}
        for key in ("SourceArn", "SourceAccount", "PrincipalOrgID"):
            if props.get(key):
                kwargs[key] = props[key]
        lam.add_permission(**kwargs)
