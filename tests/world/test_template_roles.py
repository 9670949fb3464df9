"""The roles ferry ships, judged by the world's IAM evaluation (issue 8, 2.10: IAM tightened).

Each test takes a function's role exactly as `template.yaml` declares it, through SAM's own
transform (deploy.template_roles, the path the world's deploy takes), or the target role as
`target-account.yaml` declares it, and checks the call that role's step makes is allowed
while the same call outside the role's scope is refused with AWS's error:

- rollback may terminate / deregister only what a migration made and has not finished
  (`ferry:in-flight`), never the instance or image of an earlier, finished migration;
- share-apply may create KMS grants only for account roots, with exactly the operations
  ferry's share grants use;
- the launch role passes only this account's roles, and only to EC2;
- every ARN in every role is in the stack's partition (AWS::Partition);
- the target role trusts only the hub's copy roles (with the ExternalId) and may not encrypt
  or make data keys with the target key.

The identity policies are SAM's; only the trust policy of a hub role is replaced (by one
trusting the hub's root) so the test can assume it, since a function role trusts Lambda."""
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ferry_world.engine import clock, config, deploy
from ferry_world.rules import iam as iam_rule
from worldtest import REGION, aws_client, reset_for_authorization

WORLD_RULES = ("migration", "sharing", "trust", "iam")
HUB, B = "123456789012", "222222222222"
STACK = "ferry"
REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
TARGET_TEMPLATE = REPO / "target-account.yaml"
# ferry_core::share::grants::SHARE_GRANT_OPERATIONS
SHARE_GRANT_OPERATIONS = ["Decrypt", "DescribeKey", "CreateGrant", "ReEncryptFrom", "ReEncryptTo",
                          "GenerateDataKeyWithoutPlaintext"]
HUB_ROOT_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{HUB}:root"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture(autouse=True)
def fresh_world(world_url):
    reset_for_authorization(world_url)
    yield
    config.reset()


@pytest.fixture(scope="module")
def roles():
    return deploy.template_roles(TEMPLATE, REGION, HUB, STACK)


def assume(url, role_arn, creds=None, **kw):
    return aws_client(url, "sts", creds).assume_role(RoleArn=role_arn, RoleSessionName="ferry-test", **kw)["Credentials"]


def role_of(url, roles, function_logical):
    """The function's role made in the hub (SAM's identity policies, hub-root trust);
    its credentials."""
    role = roles[function_logical]
    arn = deploy.ensure_role(aws_client(url, "iam"), role["name"], HUB_ROOT_TRUST, role["policies"],
                             role["managed"], role["path"])
    return assume(url, arn)


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def launch(ec2, tags):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=REGION + "a")["Subnet"]["SubnetId"]
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    instance = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=subnet,
                                 TagSpecifications=spec)["Instances"][0]["InstanceId"]
    clock.advance(3600)
    return instance


def image_of(ec2, instance, name, tags):
    image = ec2.create_image(InstanceId=instance, Name=name, TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])["ImageId"]
    clock.advance(3600)
    return image


def test_rollback_removes_only_what_an_unfinished_migration_made(world_url, roles):
    """A finished migration's instance and image keep ferry:workflow and ferry:execution
    but lost ferry:in-flight (Finalize removed it): rollback's role cannot touch them."""
    root = aws_client(world_url)
    in_flight = {"ferry:workflow": "migrate-instance", "ferry:execution": "arn:x:run-2", "ferry:in-flight": "true"}
    finished = {"ferry:workflow": "migrate-instance", "ferry:execution": "arn:x:run-1"}
    mine, earlier = launch(root, in_flight), launch(root, finished)
    my_image, earlier_image = image_of(root, mine, "run-2", in_flight), image_of(root, earlier, "run-1", finished)
    ec2 = aws_client(world_url, "ec2", role_of(world_url, roles, "RollbackFunction"))

    for call in (lambda: ec2.terminate_instances(InstanceIds=[earlier]),
                 lambda: ec2.deregister_image(ImageId=earlier_image)):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "UnauthorizedOperation", e.value.response
    ec2.deregister_image(ImageId=my_image)
    ec2.terminate_instances(InstanceIds=[mine])
    states = {i["InstanceId"]: i["State"]["Name"] for r in root.describe_instances()["Reservations"]
              for i in r["Instances"]}
    assert states[earlier] == "running" and states[mine] in ("shutting-down", "terminated")
    assert [i["ImageId"] for i in root.describe_images(Owners=["self"])["Images"]] == [earlier_image]


def test_share_apply_grants_only_the_share_operations_to_account_roots(world_url, roles):
    kms = aws_client(world_url, "kms", role_of(world_url, roles, "ShareApplyFunction"))
    key = aws_client(world_url, "kms").create_key()["KeyMetadata"]["Arn"]
    account_root = f"arn:aws:iam::{B}:root"
    kms.create_grant(KeyId=key, GranteePrincipal=account_root, Operations=SHARE_GRANT_OPERATIONS, Name="ferry-share-x")
    for grantee, operations in (
        (account_root, SHARE_GRANT_OPERATIONS + ["Encrypt"]),
        (account_root, ["Decrypt", "GenerateDataKey"]),
        (f"arn:aws:iam::{B}:role/anyone", SHARE_GRANT_OPERATIONS),
    ):
        with pytest.raises(ClientError) as e:
            kms.create_grant(KeyId=key, GranteePrincipal=grantee, Operations=operations)
        assert code(e) == "AccessDeniedException", (grantee, operations, e.value.response)
    grants = aws_client(world_url, "kms").list_grants(KeyId=key)["Grants"]
    assert [(g["GranteePrincipal"], sorted(g["Operations"])) for g in grants] == [
        (account_root, sorted(SHARE_GRANT_OPERATIONS))]


def test_launch_passes_only_this_accounts_roles_and_only_to_ec2(world_url, roles):
    creds = role_of(world_url, roles, "LaunchInstanceFunction")
    caller = iam_rule.caller_for(HUB, creds["AccessKeyId"], REGION)

    def decision(role_arn, service):
        return iam_rule.identity_decision(caller, "iam:PassRole", role_arn, {"iam:passedtoservice": service})

    assert decision(f"arn:aws:iam::{HUB}:role/web-server", "ec2.amazonaws.com") == "Allow"
    assert decision("arn:aws:iam::999999999999:role/web-server", "ec2.amazonaws.com") != "Allow"
    assert decision(f"arn:aws:iam::{HUB}:role/web-server", "lambda.amazonaws.com") != "Allow"


def _arns(value):
    if isinstance(value, str):
        if value.startswith("arn:"):
            yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _arns(v)
    elif isinstance(value, list):
        for v in value:
            yield from _arns(v)


def test_every_role_arn_is_in_the_stacks_partition():
    """Deployed in aws-cn, no role names an arn:aws: resource (AWS::Partition, not a
    literal). Trust principals and the target role too."""
    cn = deploy.template_roles(TEMPLATE, "cn-north-1", HUB, STACK, partition="aws-cn")
    seen = []
    for owner, role in cn.items():
        for name, doc in role["policies"]:
            for arn in _arns(doc):
                seen.append(arn)
                assert arn.startswith("arn:aws-cn:"), (owner, name, arn)
        for arn in _arns(role["trust"]):
            assert arn.startswith("arn:aws-cn:"), (owner, "trust", arn)
    assert len(seen) > 20, seen  # the template's scoped ARNs were found at all

    template = deploy.load_template(TARGET_TEMPLATE)
    params = {**deploy.pseudo_parameters("cn-north-1", B, "t", "aws-cn"), "HubAccountId": HUB,
              "ExternalId": "ext", "TargetKmsKeyArn": f"arn:aws-cn:kms:cn-north-1:{B}:key/1",
              "SourceKmsKeyArn": f"arn:aws-cn:kms:cn-north-1:{HUB}:key/2", "RoleName": "ferry-target",
              "HubStackName": STACK, "AdditionalTargetKmsKeyArns": []}
    role = deploy.Resolver(template, params).resolve(template["Resources"]["FerryTargetRole"]["Properties"])
    arns = list(_arns(role))
    assert arns and all(a.startswith("arn:aws-cn:") for a in arns), arns


def test_the_target_role_trusts_only_the_hubs_copy_roles_and_cannot_encrypt(world_url):
    org_b = assume(world_url, f"arn:aws:iam::{B}:role/{iam_rule.ORGANIZATION_ACCESS_ROLE}")
    target_key = aws_client(world_url, "kms", org_b).create_key()["KeyMetadata"]["Arn"]
    deploy.deploy_stack(TARGET_TEMPLATE, world_url, B, REGION,
                        {"HubAccountId": HUB, "ExternalId": "ferry-ext-1", "TargetKmsKeyArn": target_key})
    target = f"arn:aws:iam::{B}:role/ferry/ferry-target"
    iam = aws_client(world_url, "iam")

    def hub_role(name):
        """A hub role allowed to assume ferry's target roles (its identity side is open)."""
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/ferry/*"}]}
        arn = deploy.ensure_role(iam, name, HUB_ROOT_TRUST, [("assume", policy)], [])
        return assume(world_url, arn)

    # Another of the hub's roles (share-apply's, say), with the right ExternalId: refused.
    with pytest.raises(ClientError) as e:
        assume(world_url, target, hub_role(f"{STACK}-ShareApplyFunctionRole"), ExternalId="ferry-ext-1")
    assert code(e) == "AccessDenied", e.value.response
    creds = assume(world_url, target, hub_role(f"{STACK}-CopyStartFunctionRole"), ExternalId="ferry-ext-1")
    kms = aws_client(world_url, "kms", creds)
    kms.describe_key(KeyId=target_key)
    for call in (lambda: kms.encrypt(KeyId=target_key, Plaintext=b"x"),
                 lambda: kms.generate_data_key(KeyId=target_key, KeySpec="AES_256")):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "AccessDeniedException", e.value.response
    # Not even through EC2's ViaService: encrypting is not part of copying.
    caller = iam_rule.caller_for(B, creds["AccessKeyId"], REGION)
    assert iam_rule.identity_decision(caller, "kms:Encrypt", target_key,
                                      {"kms:viaservice": f"ec2.{REGION}.amazonaws.com"}) != "Allow"
