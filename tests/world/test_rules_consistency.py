"""Eventual consistency, KMS key use when an instance starts or launches, and the tags a
cross-account CopyImage takes (ferry_world/rules/: consistency, run_instances,
copy_image), driven through boto3 against moto's server with the migration and sharing
groups installed (FERRY_WORLD_ALL_RULES=1: every group).

Accounts A (owner), B and C (others) are reached with STS AssumeRole on
arn:aws:iam::<account>:role/OrganizationAccountAccessRole, as in test_rules_sharing.py.

Simulated time runs 600x real time, so the windows below are set far longer than the
real time between two calls of a test (WINDOW: 30 simulated minutes = 3 s real) and the
tests jump over them with clock.advance()."""
import json
import os

import pytest
from botocore.exceptions import ClientError

from ferry_world.engine import clock, config
from worldtest import REGION, aws_client, reset_world

WORLD_RULES = ("migration", "sharing")
A, B, C = "111111111111", "222222222222", "333333333333"
WINDOW = 1800  # simulated seconds: describeNotFoundAfterCreateSeconds / kmsGrantDelaySeconds here
DAY = 86400


class World:
    def __init__(self, url):
        self.url = url
        self._creds = {}

    def creds(self, account):
        if account not in self._creds:
            self._creds[account] = aws_client(self.url, "sts").assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="ferry-test"
            )["Credentials"]
        return self._creds[account]

    def ec2(self, account, region=REGION):
        return aws_client(self.url, "ec2", self.creds(account), region=region)

    def kms(self, account, region=REGION):
        return aws_client(self.url, "kms", self.creds(account), region=region)


@pytest.fixture
def world(world_url):
    reset_world(world_url)
    config.reset()
    config.update({"describeNotFoundAfterCreateSeconds": WINDOW, "kmsGrantDelaySeconds": WINDOW,
                   "instancePendingSeconds": 3 * WINDOW, "instanceStoppingSeconds": 3 * WINDOW,
                   "sharePropagationSeconds": 0})  # test_a_new_share_reaches_its_account_after_a_while sets it
    yield World(world_url)
    config.reset()


def propagate(seconds=WINDOW + 1):
    """Let ids just created (and grants just made) propagate."""
    clock.advance(seconds)


def settle():
    """Let pending images and instances settle (default timings: minutes)."""
    clock.advance(DAY)


def err(excinfo):
    e = excinfo.value.response["Error"]
    return e["Code"], e.get("Message", "")


def key_policy(owner, *others, deny=None):
    statements = [{
        "Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{owner}:root"}, "Action": "kms:*", "Resource": "*",
    }]
    if others:
        statements.append({
            "Sid": "Allow use of the key", "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{o}:root" for o in others]},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                       "kms:DescribeKey", "kms:CreateGrant", "kms:ListGrants"],
            "Resource": "*",
        })
    if deny:
        statements.append({"Sid": "Deny", "Effect": "Deny", "Principal": {"AWS": "*"},
                           "Action": deny, "Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def make_ami(ec2, *, encrypted=False, kms_key_id=None, name="img"):
    """An available AMI built from a fresh snapshot (RegisterImage), every id propagated."""
    kw = {"Size": 8, "AvailabilityZone": REGION + "a"}
    if encrypted:
        kw["Encrypted"] = True
    if kms_key_id:
        kw["KmsKeyId"] = kms_key_id
    vol = ec2.create_volume(**kw)["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    image = ec2.register_image(
        Name=f"{name}-{os.urandom(3).hex()}", RootDeviceName="/dev/sda",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda", "Ebs": {"SnapshotId": snap}}],
        Architecture="x86_64", VirtualizationType="hvm",
    )["ImageId"]
    settle()
    return image


def share(ec2, image_id, account):
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": account}]})
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    for m in image["BlockDeviceMappings"]:
        ec2.modify_snapshot_attribute(
            SnapshotId=m["Ebs"]["SnapshotId"], Attribute="createVolumePermission",
            CreateVolumePermission={"Add": [{"UserId": account}]},
        )


def launch(ec2, image_id, **kw):
    return ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro", **kw)[
        "Instances"][0]


def instance(ec2, instance_id):
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def amazon_ami(ec2):
    return ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


# ------------------------------------------------------------------ eventual consistency (EC2)
def test_ids_just_created_are_not_found_by_id_for_a_while(world):
    """EC2 developer guide, "Eventual consistency in the Amazon EC2 API": describing a
    resource just created may answer that it does not exist (InvalidInstanceID.NotFound
    after RunInstances, ...). The world: for describeNotFoundAfterCreateSeconds the ids a
    create call returned are NotFound by id and not listed by filters."""
    a = world.ec2(A)
    started = launch(a, amazon_ami(a))
    iid = started["InstanceId"]
    with pytest.raises(ClientError) as e:
        a.describe_instances(InstanceIds=[iid])
    assert err(e) == ("InvalidInstanceID.NotFound", f"The instance ID '{iid}' does not exist")
    with pytest.raises(ClientError) as e:
        a.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")
    assert err(e)[0] == "InvalidInstanceID.NotFound"
    listed = [i["InstanceId"] for r in a.describe_instances()["Reservations"] for i in r["Instances"]]
    assert iid not in listed
    # DescribeInstanceStatus too (VerifyInstance polls with it alone).
    with pytest.raises(ClientError) as e:
        a.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)
    assert err(e)[0] == "InvalidInstanceID.NotFound"
    statuses = a.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"]
    assert iid not in [s["InstanceId"] for s in statuses]

    vol = a.create_volume(Size=8, AvailabilityZone=REGION + "a")["VolumeId"]
    snap = a.create_snapshot(VolumeId=vol)["SnapshotId"]
    with pytest.raises(ClientError) as e:
        a.describe_snapshots(SnapshotIds=[snap])
    assert err(e)[0] == "InvalidSnapshot.NotFound"
    with pytest.raises(ClientError) as e:
        a.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert err(e)[0] == "InvalidSnapshot.NotFound"
    assert snap not in [s["SnapshotId"] for s in a.describe_snapshots(OwnerIds=["self"])["Snapshots"]]

    propagate()
    assert instance(a, iid)["InstanceId"] == iid
    a.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")
    assert iid in [i["InstanceId"] for r in a.describe_instances()["Reservations"] for i in r["Instances"]]
    (found,) = a.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)["InstanceStatuses"]
    assert found["InstanceId"] == iid
    assert a.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["SnapshotId"] == snap
    assert snap in [s["SnapshotId"] for s in a.describe_snapshots(OwnerIds=["self"])["Snapshots"]]

    copied = a.copy_snapshot(SourceSnapshotId=snap, SourceRegion=REGION)["SnapshotId"]
    with pytest.raises(ClientError) as e:
        a.describe_snapshots(SnapshotIds=[copied])
    assert err(e)[0] == "InvalidSnapshot.NotFound"
    propagate()
    assert a.describe_snapshots(SnapshotIds=[copied])["Snapshots"][0]["SnapshotId"] == copied


def _not_found_yet(ec2, image_id):
    with pytest.raises(ClientError) as e:
        ec2.describe_images(ImageIds=[image_id])
    assert err(e) == ("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")
    with pytest.raises(ClientError) as e:
        ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert err(e)[0] == "InvalidAMIID.NotFound"
    assert image_id not in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]


def _found(ec2, image_id):
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["ImageId"] == image_id
    ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert image_id in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]


def test_images_just_created_copied_or_registered_are_not_found_for_a_while(world):
    a = world.ec2(A)
    iid = launch(a, amazon_ami(a))["InstanceId"]
    settle()
    created = a.create_image(InstanceId=iid, Name="created")["ImageId"]
    _not_found_yet(a, created)
    propagate()
    _found(a, created)

    vol = a.create_volume(Size=8, AvailabilityZone=REGION + "a")["VolumeId"]
    snap = a.create_snapshot(VolumeId=vol)["SnapshotId"]
    registered = a.register_image(  # a snapshot just created can be registered at once
        Name="registered", RootDeviceName="/dev/sda", Architecture="x86_64", VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda", "Ebs": {"SnapshotId": snap}}])["ImageId"]
    _not_found_yet(a, registered)
    propagate()
    _found(a, registered)

    settle()  # available
    copied = a.copy_image(SourceImageId=registered, SourceRegion=REGION, Name="copied")["ImageId"]
    _not_found_yet(a, copied)
    # Only the caller's lookups are affected: another account never saw it anyway.
    with pytest.raises(ClientError) as e:
        world.ec2(B).describe_images(ImageIds=[copied])
    assert err(e)[0] == "InvalidAMIID.NotFound"
    propagate()
    _found(a, copied)

    # Each create call has its own window: with a fresh id among old ones, the call fails.
    fresh = a.create_image(InstanceId=iid, Name="created-again")["ImageId"]
    with pytest.raises(ClientError) as e:
        a.describe_images(ImageIds=[created, fresh])
    assert err(e) == ("InvalidAMIID.NotFound", f"The image id '[{fresh}]' does not exist")


def test_a_repeated_client_token_does_not_restart_the_window(world):
    a = world.ec2(A)
    image = amazon_ami(a)
    first = launch(a, image, ClientToken="tok-consistency")["InstanceId"]
    propagate()
    again = launch(a, image, ClientToken="tok-consistency")["InstanceId"]
    assert again == first
    assert instance(a, first)["InstanceId"] == first


def test_the_window_is_a_setting(world):
    config.update({"describeNotFoundAfterCreateSeconds": 0})
    a = world.ec2(A)
    iid = launch(a, amazon_ami(a))["InstanceId"]
    assert instance(a, iid)["InstanceId"] == iid
    assert config.DEFAULTS["describeNotFoundAfterCreateSeconds"] > 0  # AWS is never instant


# ------------------------------------------------------------------ eventual consistency (KMS)
def test_a_new_grant_takes_effect_after_a_delay_or_at_once_with_its_token(world):
    """KMS developer guide, "Using a grant token" / CreateGrant: a new grant "might not be
    effective immediately" (eventual consistency) and a request may fail with
    AccessDeniedException until it is; "To use the permissions in a new grant
    immediately, use the grant token". EC2 (launch, copy) cannot pass a token: it waits."""
    kms_a, kms_b = world.kms(A), world.kms(B)
    key = kms_a.create_key()["KeyMetadata"]["Arn"]
    grant = kms_a.create_grant(KeyId=key, GranteePrincipal=f"arn:aws:iam::{B}:root",
                               Operations=["Encrypt", "Decrypt", "DescribeKey"])
    with pytest.raises(ClientError) as e:
        kms_b.describe_key(KeyId=key)
    assert err(e)[0] == "AccessDeniedException"
    assert kms_b.describe_key(KeyId=key, GrantTokens=[grant["GrantToken"]])["KeyMetadata"]["Arn"] == key
    blob = kms_b.encrypt(KeyId=key, Plaintext=b"x", GrantTokens=["not-a-token", grant["GrantToken"]])[
        "CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        kms_b.decrypt(KeyId=key, CiphertextBlob=blob)
    assert err(e)[0] == "AccessDeniedException"
    # A retried CreateGrant (same Name) returns the same grant with a new token that works too.
    named = dict(KeyId=key, GranteePrincipal=f"arn:aws:iam::{C}:root", Operations=["DescribeKey"], Name="g-c")
    first = kms_a.create_grant(**named)
    again = kms_a.create_grant(**named)
    assert again["GrantId"] == first["GrantId"] and again["GrantToken"] != first["GrantToken"]
    assert world.kms(C).describe_key(KeyId=key, GrantTokens=[again["GrantToken"]])["KeyMetadata"]["Arn"] == key

    propagate()
    assert kms_b.decrypt(KeyId=key, CiphertextBlob=blob)["Plaintext"] == b"x"
    assert world.kms(C).describe_key(KeyId=key)["KeyMetadata"]["Arn"] == key


def test_a_new_share_reaches_its_account_after_a_while(world):
    """EC2 "Eventual consistency in the Amazon EC2 API": the result of a call (here
    ModifyImageAttribute / ModifySnapshotAttribute adding B) may not be visible to the
    next calls at once. For sharePropagationSeconds B neither sees the AMI nor may copy
    its snapshots; the owner sees its launch permissions at once; a removal is at once."""
    config.update({"sharePropagationSeconds": WINDOW})
    a, b = world.ec2(A), world.ec2(B)
    image = make_ami(a)
    share(a, image, B)
    assert a.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == [
        {"UserId": B}]
    with pytest.raises(ClientError) as e:
        b.describe_images(ImageIds=[image])
    assert err(e)[0] == "InvalidAMIID.NotFound"
    assert b.describe_images(ExecutableUsers=["self"])["Images"] == []
    with pytest.raises(ClientError) as e:
        b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="too-early")
    assert err(e)[0] == "InvalidAMIID.NotFound"
    snap = a.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert b.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"] == []

    propagate()
    assert b.describe_images(ImageIds=[image])["Images"][0]["ImageId"] == image
    assert [s["SnapshotId"] for s in b.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"]] == [snap]
    # Adding B again does not restart its window; removing B counts at once.
    share(a, image, B)
    assert b.describe_images(ImageIds=[image])["Images"][0]["ImageId"] == image
    a.modify_image_attribute(ImageId=image, LaunchPermission={"Remove": [{"UserId": B}]})
    with pytest.raises(ClientError):
        b.describe_images(ImageIds=[image])
    # A share added again after its removal waits again.
    share(a, image, B)
    with pytest.raises(ClientError):
        b.describe_images(ImageIds=[image])


def test_ec2_uses_a_new_grant_only_once_it_has_taken_effect(world):
    a, b, kms_a = world.ec2(A), world.ec2(B), world.kms(A)
    key = kms_a.create_key()["KeyMetadata"]["Arn"]
    image = make_ami(a, encrypted=True, kms_key_id=key)
    share(a, image, B)
    kms_a.create_grant(KeyId=key, GranteePrincipal=f"arn:aws:iam::{B}:root",
                       Operations=["Decrypt", "CreateGrant", "DescribeKey", "ReEncryptFrom"])
    early = launch(b, image)["InstanceId"]
    copy = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-early")["ImageId"]
    settle()
    got = instance(b, early)
    assert got["State"]["Name"] == "terminated"
    assert got["StateReason"] == {"Code": "Client.InternalError",
                                  "Message": "Client.InternalError: Client error on launch"}
    assert b.describe_images(ImageIds=[copy])["Images"][0]["State"] == "failed"

    later_launch = launch(b, image)["InstanceId"]
    later_copy = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-later")["ImageId"]
    settle()
    assert instance(b, later_launch)["State"]["Name"] == "running"
    assert b.describe_images(ImageIds=[later_copy])["Images"][0]["State"] == "available"


# ------------------------------------------------------------------ KMS key use at start and launch
def _running_with_volume_under(world, account, key_arn):
    ec2 = world.ec2(account)
    iid = launch(ec2, amazon_ami(ec2), BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10, "Encrypted": True, "KmsKeyId": key_arn}}])["InstanceId"]
    settle()
    assert instance(ec2, iid)["State"]["Name"] == "running"
    return ec2, iid


def test_start_without_use_of_a_volume_key_goes_pending_then_stopped(world):
    """AWS knowledge center "kms-iam-ec2-permission": an instance with an EBS volume
    encrypted under a KMS key "changed from the Pending state to Stopped" when the
    principal calling StartInstances may not use the key (kms:CreateGrant for EC2); its
    StateReason is Client.InternalError, "Client.InternalError: Client error on launch".
    StartInstances itself succeeds."""
    kms_a = world.kms(A)
    key = kms_a.create_key(Policy=key_policy(A))["KeyMetadata"]["Arn"]
    a, iid = _running_with_volume_under(world, A, key)
    a.stop_instances(InstanceIds=[iid])
    settle()
    kms_a.put_key_policy(KeyId=key, PolicyName="default", Policy=key_policy(A, deny=["kms:CreateGrant"]))

    out = a.start_instances(InstanceIds=[iid])["StartingInstances"][0]
    assert out["PreviousState"]["Name"] == "stopped" and out["CurrentState"]["Name"] == "pending"
    assert instance(a, iid)["State"]["Name"] == "pending"
    settle()
    got = instance(a, iid)
    assert got["State"]["Name"] == "stopped"
    assert got["StateReason"] == {"Code": "Client.InternalError",
                                  "Message": "Client.InternalError: Client error on launch"}

    # With use of the key again, the instance starts (and the failure is gone).
    kms_a.put_key_policy(KeyId=key, PolicyName="default", Policy=key_policy(A))
    a.start_instances(InstanceIds=[iid])
    settle()
    got = instance(a, iid)
    assert got["State"]["Name"] == "running"
    assert got.get("StateReason", {}).get("Code") != "Client.InternalError"


def test_start_of_an_instance_under_another_accounts_key_needs_its_grant(world):
    """B's instance launched from A's shared AMI has volumes under A's key: B starts it
    again only while A's grant (or key policy) lets B use the key."""
    kms_a, a, b = world.kms(A), world.ec2(A), world.ec2(B)
    key = kms_a.create_key()["KeyMetadata"]["Arn"]
    image = make_ami(a, encrypted=True, kms_key_id=key)
    share(a, image, B)
    grant = kms_a.create_grant(KeyId=key, GranteePrincipal=f"arn:aws:iam::{B}:root",
                               Operations=["Decrypt", "CreateGrant", "DescribeKey"])
    propagate()
    iid = launch(b, image)["InstanceId"]
    settle()
    assert instance(b, iid)["State"]["Name"] == "running"
    b.stop_instances(InstanceIds=[iid])
    settle()
    kms_a.revoke_grant(KeyId=key, GrantId=grant["GrantId"])
    b.start_instances(InstanceIds=[iid])
    settle()
    got = instance(b, iid)
    assert got["State"]["Name"] == "stopped" and got["StateReason"]["Code"] == "Client.InternalError"


def test_launch_with_volumes_encrypted_by_default_under_a_key_the_caller_cannot_use(world):
    """EC2 API Reference ModifyEbsDefaultKmsKeyId: with encryption by default, new volumes
    are encrypted under the default key; AWS knowledge center
    "encrypted-volumes-stops-immediately": a launch whose encrypted volumes' key the
    caller may not use goes from pending to terminated, Client.InternalError "Client
    error on launch" (RunInstances itself succeeds)."""
    a, kms_a = world.ec2(A), world.kms(A)
    key = kms_a.create_key(Policy=key_policy(A, deny=["kms:CreateGrant"]))["KeyMetadata"]["Arn"]
    a.enable_ebs_encryption_by_default()
    a.modify_ebs_default_kms_key_id(KmsKeyId=key)
    started = launch(a, amazon_ami(a))
    assert started["State"]["Name"] == "pending"
    settle()
    got = instance(a, started["InstanceId"])
    assert got["State"]["Name"] == "terminated"
    assert got["StateReason"] == {"Code": "Client.InternalError",
                                  "Message": "Client.InternalError: Client error on launch"}
    # Explicitly encrypted under that key: the same.
    a.disable_ebs_encryption_by_default()
    started = launch(a, amazon_ami(a), BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10, "Encrypted": True, "KmsKeyId": key}}])
    settle()
    assert instance(a, started["InstanceId"])["State"]["Name"] == "terminated"


def test_ec2_key_use_is_one_function(world):
    """kms.ec2_may_use_key: may this principal use this key for these operations through
    EC2 (key policy + grants, kms:ViaService ec2)."""
    from ferry_world.rules import kms

    kms_a = world.kms(A)
    key_arn = kms_a.create_key(Policy=key_policy(A, B, deny=["kms:ReEncryptFrom"]))["KeyMetadata"]["Arn"]
    key = kms.resolve_key(key_arn, A, REGION)
    assert kms.ec2_may_use_key(key, B, f"arn:aws:iam::{B}:root", ["Decrypt", "CreateGrant"])
    assert not kms.ec2_may_use_key(key, B, f"arn:aws:iam::{B}:root", ["Decrypt", "ReEncryptFrom"])
    assert not kms.ec2_may_use_key(key, C, f"arn:aws:iam::{C}:root", ["Decrypt"])


# ------------------------------------------------------------------ CopyImage tags
def test_copy_image_tags_copies_only_the_callers_own_tags_of_a_shared_ami(world):
    """EC2 API Reference, CopyImage `CopyImageTags`: "Indicates whether to include your
    user-defined AMI tags when copying the AMI. The following tags will not be copied:
    System tags (prefixed with aws:); For public and shared AMIs, user-defined tags that
    are attached by other Amazon Web Services accounts". Tags are per account (EC2 UG)."""
    a, b, c = world.ec2(A), world.ec2(B), world.ec2(C)
    image = make_ami(a)
    snap = a.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    a.create_tags(Resources=[image, snap], Tags=[{"Key": "owner-tag", "Value": "a"},
                                                {"Key": "shared-key", "Value": "from-a"}])
    share(a, image, B)
    share(a, image, C)
    c.create_tags(Resources=[image], Tags=[{"Key": "c-tag", "Value": "c"}])
    b.create_tags(Resources=[image], Tags=[{"Key": "b-tag", "Value": "b"},
                                          {"Key": "shared-key", "Value": "from-b"}])

    tagged = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="tagged", CopyImageTags=True)["ImageId"]
    propagate()
    got = b.describe_images(ImageIds=[tagged])["Images"][0]
    assert {t["Key"]: t["Value"] for t in got.get("Tags", [])} == {"b-tag": "b", "shared-key": "from-b"}
    # The copy's snapshots take no tags from the source's (only TagSpecifications tag them).
    copy_snap = got["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert b.describe_snapshots(SnapshotIds=[copy_snap])["Snapshots"][0].get("Tags", []) == []
    # Without CopyImageTags nothing is copied.
    plain = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="plain")["ImageId"]
    propagate()
    assert b.describe_images(ImageIds=[plain])["Images"][0].get("Tags", []) == []
    # From another Region too: only B's tags in the source Region.
    b_west, a_west = world.ec2(B, "us-west-2"), world.ec2(A, "us-west-2")
    west = make_ami(a_west)
    a_west.create_tags(Resources=[west], Tags=[{"Key": "owner-tag", "Value": "a"}])
    share(a_west, west, B)
    b_west.create_tags(Resources=[west], Tags=[{"Key": "b-west", "Value": "b"}])
    across = b.copy_image(SourceImageId=west, SourceRegion="us-west-2", Name="across", CopyImageTags=True)["ImageId"]
    propagate()
    assert b.describe_images(ImageIds=[across])["Images"][0].get("Tags", []) == [{"Key": "b-west", "Value": "b"}]
    # The owner copying its own AMI copies its own tags.
    own = a.copy_image(SourceImageId=image, SourceRegion=REGION, Name="own", CopyImageTags=True)["ImageId"]
    propagate()
    assert {t["Key"]: t["Value"] for t in a.describe_images(ImageIds=[own])["Images"][0]["Tags"]} == {
        "owner-tag": "a", "shared-key": "from-a"}
