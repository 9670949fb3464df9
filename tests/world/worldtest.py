"""Support for the world's tests, written once: a free port, boto3 clients for a world
endpoint, and resetting a world. The world-server fixture is in conftest.py."""
from __future__ import annotations

import socket
import urllib.request

import boto3

REGION = "us-east-1"


def free_port() -> int:
    """A free TCP port; FERRY_WORLD_TEST_PORT pins it (a session confined to one port)."""
    import os

    pinned = os.environ.get("FERRY_WORLD_TEST_PORT")
    if pinned:
        return int(pinned)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aws_client(url: str, service: str = "ec2", creds: dict | None = None, *, account: str | None = None,
               region: str = REGION, config=None):
    """A boto3 client of the world at `url`: with `creds` (an STS Credentials dict) it
    acts as whoever they belong to, else with the plain "testing" keys (moto's default
    account 123456789012); `account` sends moto's x-moto-account-id header instead."""
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    if creds:
        keys = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds.get("SessionToken"),
        }
    c = boto3.client(service, endpoint_url=url, region_name=region, config=config, **keys)
    if account is not None:
        c.meta.events.register(
            "before-send.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account)
        )
    return c


def reset_world(url: str) -> None:
    """moto's reset: every account's resources are gone (the rules' state with them)."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).read()


# Windows other rules may open after a create (eventual consistency, KMS grant and share
# delays): closed by the modules about authorization.
CONSISTENCY_DELAYS = ("describeNotFoundAfterCreateSeconds", "kmsGrantDelaySeconds", "sharePropagationSeconds")


def reset_for_authorization(url: str) -> None:
    """A fresh world for tests about who may do what: moto reset, the world's config back
    to its defaults with the consistency delays closed, the IAM usage report emptied."""
    from ferry_world.engine import config
    from ferry_world.rules import iam as iam_rule

    reset_world(url)
    config.reset()
    config.update({k: 0 for k in CONSISTENCY_DELAYS if k in config.DEFAULTS})
    iam_rule.reset_usage()


def template_workflows() -> tuple[str, ...]:
    """The state machines of template.yaml by their short names (migrate-instance, ...),
    in template order: the tests that stand in for the deployed machines make these."""
    import re

    from ferry_world.engine import deploy

    template = deploy.load_template(deploy.REPO_ROOT / "template.yaml")
    return tuple(
        deploy.kebab(re.sub(r"StateMachine$", "", logical))
        for logical, res in (template.get("Resources") or {}).items()
        if res.get("Type") == "AWS::Serverless::StateMachine"
    )


def enable_step_functions() -> None:
    """moto runs state machines (the engine's interpreter) and no Lambda in docker."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})


def as_account(url: str, account: str, session: str = "ferry-test") -> dict:
    """Credentials acting as `account` through its stand-in admin role
    (OrganizationAccountAccessRole)."""
    return aws_client(url, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName=session)["Credentials"]


def stand_in_machines(url: str) -> tuple[str, dict]:
    """template.yaml's state machines as the hub's root creates stand-ins for them: Pass
    states named as deploy() names them (ferry-<workflow>), with a role Step Functions
    may assume. Returns (that role's ARN, {workflow: state machine ARN})."""
    import json

    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    passing = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    role = aws_client(url, "iam").create_role(
        RoleName="machines", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    sfn = aws_client(url, "stepfunctions")
    return role, {
        w: sfn.create_state_machine(name=f"ferry-{w}", definition=passing, roleArn=role)["stateMachineArn"]
        for w in template_workflows()
    }
