"""The invoker role (issue 9): template.yaml's `InvokerRole`, which pipelines in other
accounts assume (with an ExternalId) to run ferry's five state machines, deployed into
the hub as CloudFormation would (deploy.deploy_stack: parameters, the Rules section,
conditions, !Ref / !GetAtt of the deployed state machines), and its calls evaluated as
AWS does (rules/iam.py): Step Functions actions on the state machine or execution the
request names (StartExecution / ListExecutions on the machine, DescribeExecution /
GetExecutionHistory / StopExecution on the execution), cloudformation:DescribeStacks on
the stack; a denied Step Functions call is AccessDeniedException (HTTP 400), a denied
CloudFormation call AccessDenied (HTTP 403). Its trust policy (rules/trust.py): the
listed accounts, or an Organization's accounts (aws:PrincipalOrgID), each only with the
ExternalId.

Driven through boto3 against moto's server with the world's rule groups installed. The
hub's five state machines are made as deploy() names them (ferry-<workflow>), with a Pass
state: what is tested is who may start and read them."""
import json

import pytest
from botocore.exceptions import ClientError

from ferry_world.engine import config, deploy
from ferry_world.rules import iam as iam_rule
from worldtest import REGION, as_account, aws_client, reset_world, stand_in_machines, template_workflows

WORLD_RULES = ("sharing", "trust", "iam")
HUB, B, C = "123456789012", "222233334444", "333344445555"
TEMPLATE = deploy.REPO_ROOT / "template.yaml"
WORKFLOWS = template_workflows()  # as template.yaml declares them
EXTERNAL_ID = "ferry-pipelines-7f3a"
INVOKER_ARN = f"arn:aws:iam::{HUB}:role/ferry-InvokerRole"
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture(autouse=True)
def fresh_world(world_url):
    reset_world(world_url)
    config.reset()
    iam_rule.reset_usage()
    yield
    config.reset()


class Hub:
    """The hub as its root ("testing" keys): ferry's state machines, one more state
    machine that is not ferry's, the `ferry` stack's outputs, and the invoker role."""

    def __init__(self, url):
        self.url = url
        self.iam = aws_client(url, "iam")
        self.sfn = aws_client(url, "stepfunctions")
        role, self.machines = stand_in_machines(url)
        self.other = self.sfn.create_state_machine(name="payroll", definition=PASS, roleArn=role)["stateMachineArn"]
        deploy.publish_stack_outputs(url, REGION, "ferry", {
            "CopyImageStateMachineArn": self.machines["copy-image"]})

    def deploy(self, stack="ferry", **parameters):
        return deploy.deploy_stack(TEMPLATE, self.url, HUB, REGION, parameters, stack)

    def policy(self):
        doc = self.iam.get_role_policy(RoleName="ferry-InvokerRole", PolicyName="ferry-invoke")["PolicyDocument"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        return {st["Sid"]: st for st in doc["Statement"]}

    def trust(self):
        doc = self.iam.get_role(RoleName="ferry-InvokerRole")["Role"]["AssumeRolePolicyDocument"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        return {st["Sid"]: st for st in doc["Statement"]}


@pytest.fixture
def hub(world_url):
    return Hub(world_url)


def invoker(url, account, external_id=EXTERNAL_ID, role_arn=INVOKER_ARN):
    """The invoker role's credentials, assumed by a pipeline in `account`."""
    kw = {"ExternalId": external_id} if external_id is not None else {}
    return aws_client(url, "sts", as_account(url, account, "pipeline")).assume_role(
        RoleArn=role_arn, RoleSessionName="ferry-cli", **kw)["Credentials"]


def error_of(excinfo):
    e = excinfo.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Message"]


def execution_arns(sfn, machine_arn):
    return [e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine_arn)["executions"]]


# --------------------------------------------------------------- deploying the role
def test_the_invoker_role_is_made_from_template_yaml_with_the_deployed_machines(hub):
    out = hub.deploy(InvokerAccountIds=f"{B},{C}", InvokerExternalId=EXTERNAL_ID)
    assert out["InvokerRoleArn"] == INVOKER_ARN
    assert out["CopyImageStateMachineArn"] == hub.machines["copy-image"]
    statements = hub.policy()
    assert set(statements) == {"StartAndListFerryWorkflows", "FollowFerryExecutions", "FindTheStateMachines"}
    start = statements["StartAndListFerryWorkflows"]
    assert start["Action"] == ["states:StartExecution", "states:ListExecutions"]
    assert start["Resource"] == [hub.machines[w] for w in WORKFLOWS]
    follow = statements["FollowFerryExecutions"]
    assert follow["Action"] == ["states:DescribeExecution", "states:GetExecutionHistory"]
    assert follow["Resource"] == [f"arn:aws:states:{REGION}:{HUB}:execution:ferry-{w}:*" for w in WORKFLOWS]
    assert statements["FindTheStateMachines"]["Resource"] == f"arn:aws:cloudformation:{REGION}:{HUB}:stack/ferry/*"
    trust = hub.trust()
    assert set(trust) == {"ListedAccountsWithTheExternalId"}  # no Organization given: no org statement
    assert trust["ListedAccountsWithTheExternalId"]["Principal"] == {"AWS": [B, C]}
    assert trust["ListedAccountsWithTheExternalId"]["Condition"] == {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}


def test_no_account_and_no_organization_no_role_and_the_rules_refuse_a_role_without_external_id(hub):
    out = hub.deploy()
    assert "InvokerRoleArn" not in out
    assert "ferry-InvokerRole" not in [r["RoleName"] for r in hub.iam.list_roles()["Roles"]]
    hub.deploy(InvokerAccountIds=B, InvokerExternalId=EXTERNAL_ID)
    hub.iam.get_role(RoleName="ferry-InvokerRole")
    hub.deploy()  # the accounts removed: the stack update deletes the role
    with pytest.raises(ClientError):
        hub.iam.get_role(RoleName="ferry-InvokerRole")
    for bad, why in (
        ({"InvokerAccountIds": B}, "InvokerExternalId is required"),
        ({"InvokerOrganizationId": "o-abcdefghij"}, "InvokerExternalId is required"),
        ({"InvokerAccountIds": f"{B},12345", "InvokerExternalId": EXTERNAL_ID}, "item '12345'"),
        ({"InvokerOrganizationId": "org-1", "InvokerExternalId": EXTERNAL_ID}, "InvokerOrganizationId"),
        ({"InvokerAccountIds": B, "InvokerExternalId": "x"}, "InvokerExternalId"),
    ):
        with pytest.raises(ValueError, match=why):
            hub.deploy(**bad)
    with pytest.raises(ClientError):
        hub.iam.get_role(RoleName="ferry-InvokerRole")
    # A stack whose state machines were never deployed: its !Ref would name nothing.
    with pytest.raises(ValueError, match="not deployed"):
        hub.deploy(stack="ferry-staging", InvokerAccountIds=B, InvokerExternalId=EXTERNAL_ID)


# --------------------------------------------------------------------------- trust
def test_only_the_listed_accounts_with_the_external_id_assume_it(hub, world_url):
    hub.deploy(InvokerAccountIds=B, InvokerExternalId=EXTERNAL_ID)
    assert invoker(world_url, B)["AccessKeyId"]
    for account, external_id in ((B, None), (B, "not-the-secret"), (C, EXTERNAL_ID)):
        with pytest.raises(ClientError) as e:
            invoker(world_url, account, external_id)
        code, status, message = error_of(e)
        assert (code, status) == ("AccessDenied", 403)
        assert f"is not authorized to perform: sts:AssumeRole on resource: {INVOKER_ARN}" in message


def test_an_organization_admits_its_accounts_only_with_the_external_id(hub, world_url):
    org = aws_client(world_url, "organizations")
    org.create_organization(FeatureSet="ALL")
    org_id = org.describe_organization()["Organization"]["Id"]
    status = org.create_account(AccountName="pipelines", Email="pipelines@example.com")["CreateAccountStatus"]
    member = org.describe_create_account_status(CreateAccountRequestId=status["Id"])["CreateAccountStatus"][
        "AccountId"]
    hub.deploy(InvokerOrganizationId=org_id, InvokerExternalId=EXTERNAL_ID)
    trust = hub.trust()
    assert set(trust) == {"OrganizationAccountsWithTheExternalId"}
    assert trust["OrganizationAccountsWithTheExternalId"]["Principal"] == {"AWS": "*"}
    assert trust["OrganizationAccountsWithTheExternalId"]["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": org_id, "sts:ExternalId": EXTERNAL_ID}}
    creds = invoker(world_url, member)
    aws_client(world_url, "stepfunctions", creds).start_execution(stateMachineArn=hub.machines["share-image"])
    for account, external_id in ((C, EXTERNAL_ID), (member, None)):  # C is in no organization
        with pytest.raises(ClientError) as e:
            invoker(world_url, account, external_id)
        assert error_of(e)[:2] == ("AccessDenied", 403)


# ------------------------------------------------------------- what the role may do
def test_the_invoker_starts_and_follows_ferrys_machines_only(hub, world_url):
    hub.deploy(InvokerAccountIds=B, InvokerExternalId=EXTERNAL_ID)
    sfn = aws_client(world_url, "stepfunctions", invoker(world_url, B))
    copy = hub.machines["copy-image"]
    started = sfn.start_execution(stateMachineArn=copy, name="pipeline-42")["executionArn"]
    assert started == f"arn:aws:states:{REGION}:{HUB}:execution:ferry-copy-image:pipeline-42"
    assert sfn.describe_execution(executionArn=started)["stateMachineArn"] == copy
    sfn.get_execution_history(executionArn=started)
    assert started in execution_arns(sfn, copy)

    # Another state machine of the hub: not started, not listed, its executions not read.
    with pytest.raises(ClientError) as e:
        sfn.start_execution(stateMachineArn=hub.other, name="pipeline-42")
    code, status, message = error_of(e)
    assert (code, status) == ("AccessDeniedException", 400)
    assert message == (
        f"User: arn:aws:sts::{HUB}:assumed-role/ferry-InvokerRole/ferry-cli is not authorized to perform: "
        f"states:StartExecution on resource: {hub.other} because no identity-based policy allows the "
        "states:StartExecution action")
    assert execution_arns(hub.sfn, hub.other) == [], "nothing started"
    with pytest.raises(ClientError) as e:
        sfn.list_executions(stateMachineArn=hub.other)
    assert error_of(e)[0] == "AccessDeniedException"
    theirs = hub.sfn.start_execution(stateMachineArn=hub.other, name="payday")["executionArn"]
    for call in (sfn.describe_execution, sfn.get_execution_history):
        with pytest.raises(ClientError) as e:
            call(executionArn=theirs)
        code, _, message = error_of(e)
        assert code == "AccessDeniedException" and f"on resource: {theirs} " in message, message
    # Not granted even on ferry's own machines: stopping, describing the machine, listing.
    with pytest.raises(ClientError) as e:
        sfn.stop_execution(executionArn=started)
    assert f"states:StopExecution on resource: {started} " in error_of(e)[2]
    with pytest.raises(ClientError) as e:
        sfn.describe_state_machine(stateMachineArn=copy)
    assert "states:DescribeStateMachine" in error_of(e)[2]
    with pytest.raises(ClientError) as e:
        sfn.list_state_machines()
    assert "states:ListStateMachines on resource: *" in error_of(e)[2]
    # Nor anything else of the hub.
    with pytest.raises(ClientError) as e:
        aws_client(world_url, "ec2", invoker(world_url, B)).describe_instances()
    assert error_of(e)[0] == "UnauthorizedOperation"


def test_the_invoker_reads_only_the_ferry_stack(hub, world_url):
    hub.deploy(InvokerAccountIds=B, InvokerExternalId=EXTERNAL_ID)
    deploy.publish_stack_outputs(world_url, REGION, "payroll", {"Secret": "x"})
    cfn = aws_client(world_url, "cloudformation", invoker(world_url, B))
    outputs = cfn.describe_stacks(StackName="ferry")["Stacks"][0]["Outputs"]
    assert {o["OutputKey"]: o["OutputValue"] for o in outputs} == {
        "CopyImageStateMachineArn": hub.machines["copy-image"]}
    payroll = aws_client(world_url, "cloudformation").describe_stacks(StackName="payroll")["Stacks"][0]["StackId"]
    for name, resource in (("payroll", payroll), (None, f"arn:aws:cloudformation:{REGION}:{HUB}:stack/*/*"),
                           ("nope", f"arn:aws:cloudformation:{REGION}:{HUB}:stack/nope/*")):
        with pytest.raises(ClientError) as e:
            cfn.describe_stacks(**({"StackName": name} if name else {}))
        code, status, message = error_of(e)
        assert (code, status) == ("AccessDenied", 403)
        assert f"cloudformation:DescribeStacks on resource: {resource} " in message, message


def test_the_resource_each_call_is_authorized_on_units():
    """cloudformation_stack_resource: a stack name not deployed, an ARN, every stack."""
    assert iam_rule.cloudformation_stack_resource(REGION, HUB, "ghost") == (
        f"arn:aws:cloudformation:{REGION}:{HUB}:stack/ghost/*")
    arn = f"arn:aws:cloudformation:{REGION}:{HUB}:stack/ferry/0f0e"
    assert iam_rule.cloudformation_stack_resource(REGION, HUB, arn) == arn
    assert iam_rule.cloudformation_stack_resource(REGION, HUB, None).endswith(":stack/*/*")
    assert iam_rule.STATES_AUTHORIZATIONS["GetExecutionHistory"] == ("executionArn",)
    assert iam_rule.STATES_AUTHORIZATIONS["ListExecutions"][0] == "stateMachineArn"
