"""IAM identity policies (rules/iam.py): every EC2/KMS/STS/IAM call made with an assumed
role's credentials is authorized by the role's identity policies (resource ARNs and
condition keys per EC2 action, tag-on-create, iam:PassRole, strict conditions, explicit
Deny), KMS key use combines key policies and grants with them (kms.py), and the
least-privilege report lists what a role was allowed and never used. Driven through
boto3 against moto's server with the world's rule groups installed.

Roles are made in the hub (moto's default account, plain "testing" keys, which are the
account root and never evaluated), trust the hub's root, and are assumed with STS."""
import json

import pytest
from botocore.exceptions import ClientError

from ferry_world.engine import clock, config, deploy
from ferry_world.rules import iam as iam_rule
from worldtest import REGION, aws_client, reset_for_authorization

WORLD_RULES = ("migration", "sharing", "trust", "iam")
HUB, B = "123456789012", "222222222222"
ORG_ROLE = "OrganizationAccountAccessRole"
SESSION = "ferry-test"


@pytest.fixture(autouse=True)
def fresh_world(world_url):
    reset_for_authorization(world_url)
    yield
    config.reset()


# ----------------------------------------------------------------------------- helpers
def settle(seconds=3600):
    clock.advance(seconds)


def allow(actions, resource="*", condition=None, sid=None, effect="Allow"):
    st = {"Effect": effect, "Action": actions, "Resource": resource}
    if condition:
        st["Condition"] = condition
    if sid:
        st["Sid"] = sid
    return st


def deny(actions, resource="*", condition=None, sid=None):
    return allow(actions, resource, condition, sid, effect="Deny")


def document(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class World:
    """The hub as its root (the "testing" keys) and roles made there."""

    def __init__(self, url):
        self.url = url
        self.iam = aws_client(url, "iam")
        self.ec2 = aws_client(url, "ec2")
        self.kms = aws_client(url, "kms")

    def role(self, name, *statements, path="/", trust=None):
        """A role of the hub trusting the hub's root, with `statements` as one inline
        policy ("identity"; none when no statements)."""
        trust = trust or document({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{HUB}:root"},
                                   "Action": "sts:AssumeRole"})
        arn = self.iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        if statements:
            self.set_policy(name, *statements)
        return arn

    def set_policy(self, name, *statements, policy="identity"):
        self.iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=document(*statements))

    def creds(self, role_arn, creds=None, **kw):
        return aws_client(self.url, "sts", creds).assume_role(RoleArn=role_arn, RoleSessionName=SESSION, **kw)[
            "Credentials"]

    def client(self, service, role_arn):
        return aws_client(self.url, service, self.creds(role_arn))

    def net(self):
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=REGION + "a")[
            "Subnet"]["SubnetId"]
        sg = self.ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
        ami = self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        return {"subnet": subnet, "sg": sg, "ami": ami}

    def launch(self, tags=None, ec2=None, net=None):
        """A running instance (launched by the root unless `ec2` is given)."""
        net = net or self.net()
        kw = {}
        if tags:
            kw["TagSpecifications"] = [{"ResourceType": "instance",
                                        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        instance = (ec2 or self.ec2).run_instances(
            ImageId=net["ami"], MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=net["subnet"],
            SecurityGroupIds=[net["sg"]], **kw)["Instances"][0]["InstanceId"]
        settle()
        return instance


@pytest.fixture
def world(world_url):
    return World(world_url)


def session_arn(role_name):
    return f"arn:aws:sts::{HUB}:assumed-role/{role_name}/{SESSION}"


def instance_arn(instance_id):
    return f"arn:aws:ec2:{REGION}:{HUB}:instance/{instance_id}"


def unauthorized(excinfo, action=None, resource=None):
    """EC2's UnauthorizedOperation (HTTP 403); its message."""
    e = excinfo.value.response
    assert e["Error"]["Code"] == "UnauthorizedOperation", e
    assert e["ResponseMetadata"]["HTTPStatusCode"] == 403, e
    msg = e["Error"]["Message"]
    assert msg.startswith("You are not authorized to perform this operation. User: arn:aws:sts::"), msg
    if action:
        assert f"is not authorized to perform: {action} on resource: " in msg, msg
    if resource:
        assert f" on resource: {resource} " in msg, msg
    return msg


def access_denied(excinfo, code="AccessDenied"):
    e = excinfo.value.response
    assert e["Error"]["Code"] == code, e
    assert e["ResponseMetadata"]["HTTPStatusCode"] in (400, 403), e
    return e["Error"]["Message"]


# ------------------------------------------------------------- EC2: action and resource
def test_an_action_the_policy_lacks_is_unauthorized_and_allowed_once_added(world):
    instance = world.launch()
    arn = world.role("operator", allow(["ec2:DescribeInstances", "ec2:StartInstances"]))
    ec2 = world.client("ec2", arn)
    assert ec2.describe_instances(InstanceIds=[instance])["Reservations"]
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[instance])
    msg = unauthorized(e)
    assert msg == (
        "You are not authorized to perform this operation. "
        f"User: {session_arn('operator')} is not authorized to perform: ec2:StopInstances "
        f"on resource: {instance_arn(instance)} "
        "because no identity-based policy allows the ec2:StopInstances action"
    )
    state = world.ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "running"  # nothing happened

    world.set_policy("operator", allow(["ec2:DescribeInstances", "ec2:StartInstances", "ec2:StopInstances"],
                                       f"arn:aws:ec2:{REGION}:{HUB}:instance/*"))
    ec2.stop_instances(InstanceIds=[instance])  # the same session: policies are read per call
    # a resource ARN of another account does not cover it
    world.set_policy("operator", allow("ec2:StartInstances", f"arn:aws:ec2:{REGION}:{B}:instance/*"))
    settle()
    with pytest.raises(ClientError) as e:
        ec2.start_instances(InstanceIds=[instance])
    unauthorized(e, "ec2:StartInstances", instance_arn(instance))
    # the root keys are never evaluated
    world.ec2.start_instances(InstanceIds=[instance])


def test_an_explicit_deny_wins_over_an_allow(world):
    instance = world.launch()
    arn = world.role("denied", allow("ec2:*"))
    # the Deny is in an attached managed policy: every identity policy counts
    pol = world.iam.create_policy(PolicyName="no-stop", PolicyDocument=document(
        deny(["ec2:StopInstances", "ec2:TerminateInstances"], f"arn:aws:ec2:*:{HUB}:instance/*")))["Policy"]["Arn"]
    world.iam.attach_role_policy(RoleName="denied", PolicyArn=pol)
    ec2 = world.client("ec2", arn)
    ec2.describe_instances(InstanceIds=[instance])
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[instance])
    msg = unauthorized(e, "ec2:StopInstances", instance_arn(instance))
    assert msg.endswith("with an explicit deny in an identity-based policy"), msg
    ec2.reboot_instances(InstanceIds=[instance])  # what is not denied stays allowed
    world.iam.detach_role_policy(RoleName="denied", PolicyArn=pol)
    ec2.stop_instances(InstanceIds=[instance])


def test_resource_tag_condition_allows_only_tagged_instances(world):
    net = world.net()
    untagged = world.launch(net=net)
    tagged = world.launch({"ferry:workflow": "migrate-instance"}, net=net)
    other = world.launch({"ferry:workflow": "copy-image"}, net=net)
    arn = world.role("terminator", allow("ec2:TerminateInstances", "*", {
        "StringEquals": {"aws:ResourceTag/ferry:workflow": "migrate-instance"}}))
    ec2 = world.client("ec2", arn)
    for refused in (untagged, other):
        with pytest.raises(ClientError) as e:
            ec2.terminate_instances(InstanceIds=[refused])
        unauthorized(e, "ec2:TerminateInstances", instance_arn(refused))
    # one refused instance refuses the whole call
    with pytest.raises(ClientError) as e:
        ec2.terminate_instances(InstanceIds=[tagged, untagged])
    unauthorized(e, "ec2:TerminateInstances", instance_arn(untagged))
    assert ec2.terminate_instances(InstanceIds=[tagged])["TerminatingInstances"][0]["InstanceId"] == tagged
    states = {i["InstanceId"]: i["State"]["Name"] for r in world.ec2.describe_instances(
        InstanceIds=[untagged, other])["Reservations"] for i in r["Instances"]}
    assert set(states.values()) == {"running"}


def test_tag_on_create_needs_create_tags_with_the_create_action(world):
    instance = world.launch()
    tags = [{"ResourceType": "image", "Tags": [{"Key": "ferry:workflow", "Value": "migrate-instance"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "ferry:workflow", "Value": "migrate-instance"}]}]
    arn = world.role("imager", allow(["ec2:CreateImage", "ec2:DescribeImages"]))
    ec2 = world.client("ec2", arn)
    with pytest.raises(ClientError) as e:
        ec2.create_image(InstanceId=instance, Name="tagged-1", TagSpecifications=tags)
    unauthorized(e, "ec2:CreateTags", f"arn:aws:ec2:{REGION}::image/*")
    # ec2:CreateAction of another action does not help
    world.set_policy("imager", allow(["ec2:CreateImage", "ec2:DescribeImages"]),
                     allow("ec2:CreateTags", "*", {"StringEquals": {"ec2:CreateAction": "RunInstances"}}))
    with pytest.raises(ClientError) as e:
        ec2.create_image(InstanceId=instance, Name="tagged-2", TagSpecifications=tags)
    unauthorized(e, "ec2:CreateTags")
    # without tags, CreateImage alone is enough
    ec2.create_image(InstanceId=instance, Name="untagged")
    world.set_policy("imager", allow(["ec2:CreateImage", "ec2:DescribeImages"]),
                     allow("ec2:CreateTags", "*", {"StringEquals": {"ec2:CreateAction": "CreateImage"}}))
    image = ec2.create_image(InstanceId=instance, Name="tagged-3", TagSpecifications=tags)["ImageId"]
    got = ec2.describe_images(ImageIds=[image])["Images"][0]
    assert {"Key": "ferry:workflow", "Value": "migrate-instance"} in got["Tags"]
    # ...but tagging an existing resource afterwards is not tag-on-create
    with pytest.raises(ClientError) as e:
        ec2.create_tags(Resources=[image], Tags=[{"Key": "x", "Value": "y"}])
    unauthorized(e, "ec2:CreateTags", f"arn:aws:ec2:{REGION}::image/{image}")


def test_run_instances_authorizes_every_resource_and_pass_role(world):
    net = world.net()
    launch = dict(ImageId=net["ami"], MinCount=1, MaxCount=1, InstanceType="t3.micro",
                  SubnetId=net["subnet"], SecurityGroupIds=[net["sg"]])
    arn = world.role("launcher", allow("ec2:RunInstances", f"arn:aws:ec2:{REGION}:{HUB}:instance/*"))
    ec2 = world.client("ec2", arn)
    with pytest.raises(ClientError) as e:
        ec2.run_instances(**launch)
    msg = unauthorized(e, "ec2:RunInstances")
    assert "instance/" not in msg.split(" on resource: ")[1].split(" ")[0], msg  # another resource refused
    live = [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
    assert not world.ec2.describe_instances(Filters=live)["Reservations"]  # nothing was launched

    # instance + volume + network interface, but not the image, subnet, security group
    world.set_policy("launcher", allow("ec2:RunInstances", [
        f"arn:aws:ec2:{REGION}:{HUB}:{kind}/*" for kind in ("instance", "volume", "network-interface")]))
    with pytest.raises(ClientError) as e:
        ec2.run_instances(**launch)
    unauthorized(e, "ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/{net['ami']}")
    world.set_policy("launcher", allow("ec2:RunInstances", [
        f"arn:aws:ec2:{REGION}:{HUB}:{kind}/*" for kind in ("instance", "volume", "network-interface", "subnet")
    ] + [f"arn:aws:ec2:{REGION}::image/*"]))
    with pytest.raises(ClientError) as e:
        ec2.run_instances(**launch)
    unauthorized(e, "ec2:RunInstances", f"arn:aws:ec2:{REGION}:{HUB}:security-group/{net['sg']}")

    world.set_policy("launcher", allow("ec2:RunInstances"))
    assert ec2.run_instances(**launch)["Instances"]

    # ec2:InstanceType is in the context of the instance
    world.set_policy("launcher", allow("ec2:RunInstances", "*", {
        "StringEqualsIfExists": {"ec2:InstanceType": ["t3.micro"]}}))
    ec2.run_instances(**launch)
    with pytest.raises(ClientError) as e:
        ec2.run_instances(**{**launch, "InstanceType": "m5.large"})
    unauthorized(e, "ec2:RunInstances", f"arn:aws:ec2:{REGION}:{HUB}:instance/*")

    # An instance profile: iam:PassRole on its role, passed to EC2.
    app = world.role("app", trust=document({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                            "Action": "sts:AssumeRole"}))
    world.iam.create_instance_profile(InstanceProfileName="app-profile")
    world.iam.add_role_to_instance_profile(InstanceProfileName="app-profile", RoleName="app")
    with_profile = {**launch, "IamInstanceProfile": {"Name": "app-profile"}}
    world.set_policy("launcher", allow("ec2:RunInstances"))
    with pytest.raises(ClientError) as e:
        ec2.run_instances(**with_profile)
    msg = unauthorized(e, "iam:PassRole", app)
    assert msg.endswith("because no identity-based policy allows the iam:PassRole action"), msg
    world.set_policy("launcher", allow("ec2:RunInstances"),
                     allow("iam:PassRole", app, {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}))
    with pytest.raises(ClientError) as e:
        ec2.run_instances(**with_profile)
    unauthorized(e, "iam:PassRole", app)
    world.set_policy("launcher", allow("ec2:RunInstances"),
                     allow("iam:PassRole", app, {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}))
    profile_arn = world.iam.get_instance_profile(InstanceProfileName="app-profile")["InstanceProfile"]["Arn"]
    got = ec2.run_instances(**with_profile)["Instances"][0]
    assert got["IamInstanceProfile"]["Arn"] == profile_arn
    ec2.run_instances(**{**launch, "IamInstanceProfile": {"Arn": profile_arn}})  # by ARN too


# ------------------------------------------------------------------ strict conditions
def test_conditions_on_keys_the_request_lacks_fail_unless_if_exists(world):
    instance = world.launch()
    arn = world.role("strict", allow("ec2:StopInstances", "*", {"StringEquals": {"aws:RequestTag/team": "ops"}}))
    ec2 = world.client("ec2", arn)
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[instance])
    unauthorized(e, "ec2:StopInstances")
    world.set_policy("strict", allow("ec2:StopInstances", "*", {
        "StringEqualsIfExists": {"aws:RequestTag/team": "ops"}}))
    ec2.stop_instances(InstanceIds=[instance])
    settle()
    # a key no request in the world has (aws:MultiFactorAuthPresent): absent, fails
    world.set_policy("strict", allow("ec2:StartInstances", "*", {"Bool": {"aws:MultiFactorAuthPresent": "true"}}))
    with pytest.raises(ClientError) as e:
        ec2.start_instances(InstanceIds=[instance])
    unauthorized(e, "ec2:StartInstances")
    # an operator the world does not evaluate fails (never taken as satisfied)
    world.set_policy("strict", allow("ec2:StartInstances", "*", {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}))
    with pytest.raises(ClientError) as e:
        ec2.start_instances(InstanceIds=[instance])
    unauthorized(e, "ec2:StartInstances")
    # negated operators and Null hold for an absent key; keys the world sets are read
    world.set_policy("strict", allow("ec2:StartInstances", "*", {
        "StringNotEquals": {"aws:ResourceTag/env": "prod"},
        "Null": {"aws:RequestTag/team": "true"},
        "StringEquals": {"aws:RequestedRegion": REGION, "aws:PrincipalAccount": HUB},
        "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{HUB}:role/str*"},
    }))
    ec2.start_instances(InstanceIds=[instance])


def test_request_tags_and_for_all_values_tag_keys(world):
    instance = world.launch()
    arn = world.role("tagger", allow("ec2:CreateTags", "*", {
        "StringEquals": {"aws:RequestTag/team": "ops"},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["team", "Name"]},
    }))
    ec2 = world.client("ec2", arn)
    ec2.create_tags(Resources=[instance], Tags=[{"Key": "team", "Value": "ops"}])
    ec2.create_tags(Resources=[instance], Tags=[{"Key": "team", "Value": "ops"}, {"Key": "Name", "Value": "web"}])
    for tags in ([{"Key": "team", "Value": "dev"}],  # aws:RequestTag/team
                 [{"Key": "Name", "Value": "web"}],  # no aws:RequestTag/team
                 [{"Key": "team", "Value": "ops"}, {"Key": "owner", "Value": "me"}]):  # a key not in the set
        with pytest.raises(ClientError) as e:
            ec2.create_tags(Resources=[instance], Tags=tags)
        unauthorized(e, "ec2:CreateTags", instance_arn(instance))
    # ForAnyValue: one of the keys is enough
    world.set_policy("tagger", allow("ec2:CreateTags", "*", {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}))
    ec2.create_tags(Resources=[instance], Tags=[{"Key": "team", "Value": "x"}, {"Key": "owner", "Value": "me"}])
    with pytest.raises(ClientError) as e:
        ec2.create_tags(Resources=[instance], Tags=[{"Key": "owner", "Value": "me"}])
    unauthorized(e, "ec2:CreateTags")
    # A Deny on ForAnyValue:StringNotEquals: tags outside the set are denied; a call
    # with no tags at all is not (ForAnyValue on an empty or absent key is false).
    world.set_policy("tagger", allow(["ec2:CreateTags", "ec2:StopInstances"]),
                     deny("ec2:*", "*", {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["team", "Name"]}}))
    ec2.create_tags(Resources=[instance], Tags=[{"Key": "team", "Value": "ops"}])
    with pytest.raises(ClientError) as e:
        ec2.create_tags(Resources=[instance], Tags=[{"Key": "team", "Value": "ops"}, {"Key": "owner", "Value": "me"}])
    assert unauthorized(e, "ec2:CreateTags").endswith("with an explicit deny in an identity-based policy")
    ec2.stop_instances(InstanceIds=[instance])


# ------------------------------------------------------------------------- STS / IAM
def test_assume_role_needs_the_callers_identity_policy_and_reads_external_id(world):
    target = world.role("target")  # trusts the hub's root, no ExternalId
    a = world.role("caller-a", allow("ec2:Describe*"))
    creds_a = world.creds(a)
    with pytest.raises(ClientError) as e:
        world.creds(target, creds_a)
    msg = access_denied(e)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert msg == (f"User: {session_arn('caller-a')} is not authorized to perform: sts:AssumeRole on resource: "
                   f"{target} because no identity-based policy allows the sts:AssumeRole action"), msg
    # sts:GetCallerIdentity needs no permission
    assert aws_client(world.url, "sts", creds_a).get_caller_identity()["Arn"] == session_arn("caller-a")

    world.set_policy("caller-a", allow("sts:AssumeRole", target, {"StringEquals": {"sts:ExternalId": "ext-1"}}))
    for kw in ({}, {"ExternalId": "ext-2"}):
        with pytest.raises(ClientError) as e:
            world.creds(target, creds_a, **kw)
        assert "sts:AssumeRole" in access_denied(e)
    creds_t = world.creds(target, creds_a, ExternalId="ext-1")
    assert aws_client(world.url, "sts", creds_t).get_caller_identity()["Arn"] == (
        f"arn:aws:sts::{HUB}:assumed-role/target/{SESSION}")
    # an Allow on another role does not cover this one
    world.set_policy("caller-a", allow("sts:AssumeRole", f"arn:aws:iam::{HUB}:role/ferry/*"))
    with pytest.raises(ClientError) as e:
        world.creds(target, creds_a)
    access_denied(e)


def test_iam_calls_are_evaluated_too(world):
    # (IAM actions are not modelled per resource: the world authorizes them on "*")
    arn = world.role("reader", allow(["iam:GetRole", "iam:ListRoles"]))
    iam = world.client("iam", arn)
    assert iam.get_role(RoleName="reader")["Role"]["Arn"] == arn
    with pytest.raises(ClientError) as e:
        iam.create_role(RoleName="escalate", AssumeRolePolicyDocument=document(
            {"Effect": "Allow", "Principal": {"AWS": HUB}, "Action": "sts:AssumeRole"}))
    assert "iam:CreateRole" in access_denied(e)
    with pytest.raises(ClientError):
        world.iam.get_role(RoleName="escalate")


def test_put_events_is_authorized_on_each_entrys_event_bus(world):
    """Service Authorization Reference (EventBridge): events:PutEvents on resource type
    event-bus; an entry without EventBusName goes to the `default` bus."""
    events = aws_client(world.url, "events")
    events.create_event_bus(Name="requests")
    bus = f"arn:aws:events:{REGION}:{HUB}:event-bus/requests"
    arn = world.role("putter", allow(["events:PutEvents"], resource=bus))
    client = world.client("events", arn)
    entry = {"Source": "ferry.requests", "DetailType": "share-image", "Detail": "{}"}
    assert client.put_events(Entries=[{**entry, "EventBusName": "requests"}])["FailedEntryCount"] == 0
    assert client.put_events(Entries=[{**entry, "EventBusName": bus}])["FailedEntryCount"] == 0
    with pytest.raises(ClientError) as e:
        client.put_events(Entries=[entry])
    assert f"events:PutEvents on resource: arn:aws:events:{REGION}:{HUB}:event-bus/default" in access_denied(
        e, code="AccessDeniedException")


# ------------------------------------------------------------------------------- KMS
def test_kms_account_root_key_policy_needs_the_identity_policy(world):
    key = world.kms.create_key()["KeyMetadata"]["Arn"]  # moto's default: the root, kms:*
    arn = world.role("kms-user", allow("ec2:DescribeInstances"))
    kms = world.client("kms", arn)
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=key)
    msg = access_denied(e, "AccessDeniedException")
    assert "kms:DescribeKey" in msg and key in msg, msg
    # a key ARN pattern of the identity policy covers it
    world.set_policy("kms-user", allow(["kms:DescribeKey", "kms:Encrypt"], f"arn:aws:kms:{REGION}:{HUB}:key/*"))
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"] == key
    kms.encrypt(KeyId=key, Plaintext=b"x")
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"], KeyId=key)
    assert "kms:Decrypt" in access_denied(e, "AccessDeniedException")
    # a key without a key: kms:CreateKey is an identity-policy decision
    with pytest.raises(ClientError) as e:
        kms.create_key()
    assert "kms:CreateKey" in access_denied(e, "AccessDeniedException")


def test_kms_key_policy_naming_the_role_needs_no_identity_policy(world):
    arn = world.role("named")  # no identity policy at all
    key = world.kms.create_key(Policy=document(
        {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{HUB}:root"}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "role", "Effect": "Allow", "Principal": {"AWS": arn},
         "Action": ["kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"], "Resource": "*"},
    ))["KeyMetadata"]["Arn"]
    kms = world.client("kms", arn)
    kms.describe_key(KeyId=key)
    kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    with pytest.raises(ClientError) as e:  # only through the root statement: needs identity policy
        kms.get_key_rotation_status(KeyId=key)
    assert "kms:GetKeyRotationStatus" in access_denied(e, "AccessDeniedException")


def test_kms_grant_operations_condition_and_grants_to_the_role(world):
    key = world.kms.create_key()["KeyMetadata"]["Arn"]
    grantee = world.role("grantee")  # no identity policy
    granter = world.role("granter", allow("kms:CreateGrant", key, {
        "ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "GenerateDataKey", "DescribeKey"]}}))
    kms_granter = world.client("kms", granter)
    with pytest.raises(ClientError) as e:
        kms_granter.create_grant(KeyId=key, GranteePrincipal=grantee, Operations=["Encrypt", "Decrypt"])
    assert "kms:CreateGrant" in access_denied(e, "AccessDeniedException")
    assert not world.kms.list_grants(KeyId=key)["Grants"]

    kms_grantee = world.client("kms", grantee)
    with pytest.raises(ClientError) as e:  # before the grant
        kms_grantee.generate_data_key(KeyId=key, KeySpec="AES_256")
    access_denied(e, "AccessDeniedException")
    kms_granter.create_grant(KeyId=key, GranteePrincipal=grantee, Operations=["Encrypt", "GenerateDataKey"])
    kms_grantee.generate_data_key(KeyId=key, KeySpec="AES_256")
    blob = kms_grantee.encrypt(KeyId=key, Plaintext=b"secret")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:  # not a granted operation
        kms_grantee.decrypt(CiphertextBlob=blob, KeyId=key)
    assert "kms:Decrypt" in access_denied(e, "AccessDeniedException")
    with pytest.raises(ClientError) as e:
        kms_grantee.describe_key(KeyId=key)
    access_denied(e, "AccessDeniedException")


def test_keys_used_through_ec2_at_launch_need_the_identity_policy(world):
    """A volume encrypted under a key whose policy allows only the account root: the
    launching role's identity policy must allow EC2 to use the key on its behalf
    (kms:ViaService, kms:GrantIsForAWSResource), else the instance goes from pending to
    terminated (Client.InternalError), as on AWS."""
    net = world.net()
    key = world.kms.create_key()["KeyMetadata"]["Arn"]
    launch = dict(ImageId=net["ami"], MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=net["subnet"],
                  SecurityGroupIds=[net["sg"]], BlockDeviceMappings=[
                      {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 20, "Encrypted": True, "KmsKeyId": key}}])
    ec2_only = allow(["ec2:RunInstances", "ec2:DescribeInstances"])
    arn = world.role("kms-launcher", ec2_only)
    ec2 = world.client("ec2", arn)

    def launched():
        instance = ec2.run_instances(**launch)["Instances"][0]["InstanceId"]
        settle()
        return ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]

    got = launched()
    assert got["State"]["Name"] == "terminated"
    assert got["StateReason"]["Code"] == "Client.InternalError", got
    # a key statement conditioned on another service does not help
    other = {"StringEquals": {"kms:ViaService": "rds.us-east-1.amazonaws.com"}}
    world.set_policy("kms-launcher", ec2_only, allow(["kms:Decrypt", "kms:CreateGrant"], key, other))
    assert launched()["State"]["Name"] == "terminated"
    via_ec2 = {"StringEquals": {"kms:ViaService": f"ec2.{REGION}.amazonaws.com"}}
    world.set_policy("kms-launcher", ec2_only, allow("kms:Decrypt", key, via_ec2),
                     allow("kms:CreateGrant", key, {**via_ec2, "Bool": {"kms:GrantIsForAWSResource": "true"}}))
    assert launched()["State"]["Name"] == "running"


# ---------------------------------------------------------------------- not evaluated
def test_root_keys_and_the_organization_access_role_are_not_evaluated(world):
    net = world.net()
    # the stand-in admin role, even when it exists with a policy that allows nothing
    world.role(ORG_ROLE, deny("*"))
    org = f"arn:aws:iam::{HUB}:role/{ORG_ROLE}"
    ec2 = world.client("ec2", org)
    instance = world.launch(ec2=ec2, net=net)
    ec2.stop_instances(InstanceIds=[instance])
    kms = world.client("kms", org)
    key = kms.create_key()["KeyMetadata"]["Arn"]
    kms.describe_key(KeyId=key)
    world.client("iam", org).create_role(RoleName="made-by-org", AssumeRolePolicyDocument=document(
        {"Effect": "Allow", "Principal": {"AWS": HUB}, "Action": "sts:AssumeRole"}))
    # ...in any account, where it does not exist
    b_ec2 = world.client("ec2", f"arn:aws:iam::{B}:role/{ORG_ROLE}")
    b_ami = b_ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    b_ec2.run_instances(ImageId=b_ami, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    # the root keys
    world.ec2.terminate_instances(InstanceIds=[instance])
    assert f"arn:aws:iam::{HUB}:role/{ORG_ROLE}" not in iam_rule.usage_report()


# ---------------------------------------------------------------------- least privilege
def test_usage_report_lists_allowed_actions_no_call_used(world):
    instance = world.launch()
    arn = world.role(
        "reported",
        allow(["ec2:DescribeInstances", "ec2:StopInstances"], sid="Operate"),
        allow(["ec2:TerminateInstances", "ec2:RebootInstances"], sid="NeverUsed"),
        deny("ec2:DeleteVolume", sid="NoDeletes"),
    )
    ec2 = world.client("ec2", arn)
    ec2.describe_instances()
    ec2.stop_instances(InstanceIds=[instance])
    with pytest.raises(ClientError):
        ec2.start_instances(InstanceIds=[instance])
    report = iam_rule.usage_report()
    assert arn in report, report
    entry = report[arn]
    assert entry["calls"] == {"evaluated": 3, "denied": 1}, entry
    unused = {(u["statement"], u["action"]) for u in entry["unused"]}
    assert unused == {("NeverUsed", "ec2:TerminateInstances"), ("NeverUsed", "ec2:RebootInstances")}, entry
    assert {u["policy"] for u in entry["unused"]} == {"identity"}
    ec2.reboot_instances(InstanceIds=[instance])
    unused = {u["action"] for u in iam_rule.usage_report()[arn]["unused"]}
    assert unused == {"ec2:TerminateInstances"}
    # a role that made no call is not reported
    world.role("idle", allow("ec2:*"))
    assert f"arn:aws:iam::{HUB}:role/idle" not in iam_rule.usage_report()


# ------------------------------------------------------------ target-account.yaml
TARGET_TEMPLATE = deploy.REPO_ROOT / "target-account.yaml"


def _statements(iam_b, role_name="ferry-target"):
    doc = iam_b.get_role_policy(RoleName=role_name, PolicyName="ferry-copy-image")["PolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    return {st.get("Sid"): st for st in doc["Statement"]}


def test_target_account_template_deploys_the_role_with_its_conditions(world):
    org_b = aws_client(world.url, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{B}:role/{ORG_ROLE}", RoleSessionName="setup")["Credentials"]
    kms_b, iam_b, ec2_b = (aws_client(world.url, s, org_b) for s in ("kms", "iam", "ec2"))
    target_key = kms_b.create_key()["KeyMetadata"]["Arn"]
    source_key = world.kms.create_key()["KeyMetadata"]["Arn"]  # the hub stands in for the source
    params = {"HubAccountId": HUB, "ExternalId": "ferry-ext-1", "TargetKmsKeyArn": target_key}

    out = deploy.deploy_stack(TARGET_TEMPLATE, world.url, B, REGION, params)
    role_arn = f"arn:aws:iam::{B}:role/ferry/ferry-target"
    assert out == {"RoleArn": role_arn, "RoleName": "ferry-target"}
    assert iam_b.get_role(RoleName="ferry-target")["Role"]["Path"] == "/ferry/"
    sids = _statements(iam_b)
    assert "ReadTheSourceKey" not in sids and "GrantsOnTheSourceKeyOnlyForAwsResources" not in sids
    assert sids["UseTheTargetKeyThroughEc2"]["Resource"] == [target_key]
    assert sids["TagCopiesWhileCreatingThem"]["Resource"] == ["arn:aws:ec2:*::image/*", "arn:aws:ec2:*::snapshot/*"]
    assert None not in sids  # no statement left behind by !Ref AWS::NoValue

    deploy.deploy_stack(TARGET_TEMPLATE, world.url, B, REGION, {**params, "SourceKmsKeyArn": source_key})
    sids = _statements(iam_b)
    assert sids["ReadTheSourceKey"]["Resource"] == source_key
    assert sids["GrantsOnTheSourceKeyOnlyForAwsResources"]["Resource"] == source_key
    assert sids["GrantsOnTheSourceKeyOnlyForAwsResources"]["Condition"]["Bool"] == {
        "kms:GrantIsForAWSResource": "true"}

    for bad in ({**params, "HubAccountId": "12345"}, {**params, "SourceKmsKeyArn": "alias/source"},
                {**params, "TargetKmsKeyArn": "not-an-arn"}, {**params, "Unknown": "x"},
                {k: v for k, v in params.items() if k != "ExternalId"}):
        with pytest.raises(ValueError):
            deploy.deploy_stack(TARGET_TEMPLATE, world.url, B, REGION, bad)

    # The role as the hub's copy step uses it (a hub role named like the copy
    # functions' roles, allowed to assume /ferry/ roles): with the ExternalId, and
    # only what the policy allows.
    copier = world.role("ferry-CopyImageFunctionRole", allow("sts:AssumeRole", "arn:aws:iam::*:role/ferry/*"))
    copier_creds = world.creds(copier)
    with pytest.raises(ClientError) as e:
        world.creds(role_arn, copier_creds)
    access_denied(e)
    creds = world.creds(role_arn, copier_creds, ExternalId="ferry-ext-1")
    ec2, kms = aws_client(world.url, "ec2", creds), aws_client(world.url, "kms", creds)
    ec2.describe_images(Owners=["self"])
    with pytest.raises(ClientError) as e:  # CreateGrant only for AWS resources (via EC2)
        kms.create_grant(KeyId=target_key, GranteePrincipal=role_arn, Operations=["Decrypt"])
    assert "kms:CreateGrant" in access_denied(e, "AccessDeniedException")
    with pytest.raises(ClientError) as e:  # no key but the two the template names
        kms.describe_key(KeyId=kms_b.create_key()["KeyMetadata"]["Arn"])
    assert "kms:DescribeKey" in access_denied(e, "AccessDeniedException")
    image = ec2_b.register_image(Name="copied", RootDeviceName="/dev/sda1", Architecture="x86_64",
                                 VirtualizationType="hvm", BlockDeviceMappings=[
                                     {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}])["ImageId"]
    with pytest.raises(ClientError) as e:  # not tagged by copy-image
        ec2.deregister_image(ImageId=image)
    unauthorized(e, "ec2:DeregisterImage", f"arn:aws:ec2:{REGION}::image/{image}")
    with pytest.raises(ClientError) as e:  # tags only while CopyImage creates the image
        ec2.create_tags(Resources=[image], Tags=[{"Key": "ferry:workflow", "Value": "copy-image"}])
    unauthorized(e, "ec2:CreateTags")
    ec2_b.create_tags(Resources=[image], Tags=[{"Key": "ferry:workflow", "Value": "copy-image"}])
    settle()
    ec2.deregister_image(ImageId=image)
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    unauthorized(e, "ec2:RunInstances")


# ------------------------------------------------------------------ evaluator units
def test_condition_set_operators_units():
    """iam_policy.conditions_hold as identity policies use it (strict, every key)."""
    from ferry_world.rules.iam_policy import EVERY_KEY, conditions_hold

    def holds(cond, ctx):
        return conditions_hold(cond, ctx, EVERY_KEY, strict=True)

    keys = {"aws:tagkeys": ["team", "owner"]}
    assert holds({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["team", "Name"]}}, keys)  # owner
    assert not holds({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["team", "owner"]}}, keys)
    assert not holds({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["team"]}}, keys)
    assert holds({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["Name"]}}, keys)
    # an absent multivalued key: ForAllValues true, ForAnyValue false (negated too)
    assert holds({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, {})
    assert not holds({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}, {})
    assert not holds({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["team"]}}, {})
    # single-valued keys: absent fails, except negated / IfExists / Null
    assert not holds({"StringEquals": {"aws:RequestTag/team": "ops"}}, {})
    assert holds({"StringNotEquals": {"aws:RequestTag/team": "ops"}}, {})
    assert holds({"StringEqualsIfExists": {"aws:RequestTag/team": "ops"}}, {})
    assert holds({"Null": {"aws:RequestTag/team": "true"}}, {})
    assert not holds({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, {"aws:multifactorauthage": "10"})


def test_target_account_template_takes_a_key_per_region():
    """Issue 8, 2.6: target-account.yaml lets the role use one key per Region its copies
    land in (AdditionalTargetKmsKeyArns), resolved as CloudFormation would."""
    from pathlib import Path

    from ferry_world.engine.deploy import Resolver, load_template

    template = load_template(Path(__file__).resolve().parents[2] / "target-account.yaml")
    base = {
        "AWS::Region": "us-east-1", "AWS::AccountId": "222233334444", "AWS::StackName": "t",
        "AWS::Partition": "aws", "HubAccountId": "123456789012", "ExternalId": "ext",
        "TargetKmsKeyArn": "arn:aws:kms:us-east-1:222233334444:key/1", "SourceKmsKeyArn": "",
        "RoleName": "ferry-target", "HubStackName": "ferry",
    }
    for extra, keys in (
        ([], ["arn:aws:kms:us-east-1:222233334444:key/1"]),
        (["arn:aws:kms:eu-west-1:222233334444:key/2"],
         ["arn:aws:kms:us-east-1:222233334444:key/1", "arn:aws:kms:eu-west-1:222233334444:key/2"]),
    ):
        props = Resolver(template, {**base, "AdditionalTargetKmsKeyArns": extra}).resolve(
            template["Resources"]["FerryTargetRole"]["Properties"]
        )
        statements = props["Policies"][0]["PolicyDocument"]["Statement"]
        on_keys = {st["Sid"]: st["Resource"] for st in statements if st["Sid"] in (
            "UseTheTargetKeyThroughEc2", "DescribeTheTargetKey", "GrantsOnTheTargetKeyOnlyForAwsResources")}
        assert len(on_keys) == 3
        assert all(r == keys for r in on_keys.values()), on_keys
