"""CopyImage across Regions as well as accounts (ferry_world/rules/copy_image.py, with
images, snapshots, kms and iam): the copy an account makes with SourceRegion set to
another Region lands in the Region it called, under a key of that Region; a key of
another Region fails the copy; and IAM authorizes the source AMI in its own Region.

EC2 UG "Copy an AMI" (copying across Regions and accounts); EC2 API Reference, CopyImage
(SourceRegion: "The name of the Region that contains the AMI to copy"; KmsKeyId: "The
specified KMS key must exist in the destination Region"); EC2 UG "Grant permissions to
copy Amazon EC2 AMIs" (resource-level permissions on the source AMI since 2024-10-28).

Accounts A (owner) and B (copier) act through STS AssumeRole on their
OrganizationAccountAccessRole (rules/trust.py)."""
import json
import os

import pytest
from botocore.exceptions import ClientError

from ferry_world.engine import clock, config
from worldtest import REGION, aws_client, reset_world

WORLD_RULES = ("migration", "sharing", "trust", "iam")
A, B = "111111111111", "222222222222"
OTHER = "us-west-2"
assert OTHER != REGION


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

    def client(self, account, service, region=REGION):
        return aws_client(self.url, service, self.creds(account), region=region)


@pytest.fixture
def world(world_url):
    reset_world(world_url)
    config.reset()
    yield World(world_url)
    config.reset()


def settle():
    """Let new ids, grants and pending images settle (rules/consistency.py, image_states.py)."""
    clock.advance(3600)


def err(excinfo):
    e = excinfo.value.response["Error"]
    return e["Code"], e.get("Message", "")


def shared_ami(world, *, key=None):
    """An AMI of A in REGION (its snapshot under `key` when given), shared with B:
    launch permission, createVolumePermission, and a grant on the key for B."""
    a = world.client(A, "ec2")
    kw = {"Encrypted": True, "KmsKeyId": key} if key else {}
    vol = a.create_volume(Size=8, AvailabilityZone=REGION + "a", **kw)["VolumeId"]
    snap = a.create_snapshot(VolumeId=vol)["SnapshotId"]
    settle()
    image = a.register_image(
        Name=f"src-{os.urandom(3).hex()}", RootDeviceName="/dev/xvda", Architecture="x86_64",
        VirtualizationType="hvm", BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
    )["ImageId"]
    settle()
    a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": B}]})
    a.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                CreateVolumePermission={"Add": [{"UserId": B}]})
    if key:
        world.client(A, "kms").create_grant(
            KeyId=key, GranteePrincipal=f"arn:aws:iam::{B}:root",
            Operations=["Decrypt", "DescribeKey", "CreateGrant", "ReEncryptFrom"])
    settle()
    return image, snap


def test_a_copy_from_another_region_lands_in_the_callers_region_under_its_key(world):
    key_a = world.client(A, "kms").create_key()["KeyMetadata"]["Arn"]
    image, source_snap = shared_ami(world, key=key_a)
    here, there = world.client(B, "ec2"), world.client(B, "ec2", OTHER)
    key_there = world.client(B, "kms", OTHER).create_key()["KeyMetadata"]["Arn"]
    assert key_there.startswith(f"arn:aws:kms:{OTHER}:{B}:key/")

    copied = there.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-there",
                              Encrypted=True, KmsKeyId=key_there)["ImageId"]
    settle()
    got = there.describe_images(ImageIds=[copied])["Images"][0]
    assert got["State"] == "available" and got["OwnerId"] == B
    snap_id = got["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert snap_id != source_snap
    snap = there.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"][0]
    assert (snap["OwnerId"], snap["Encrypted"], snap["KmsKeyId"]) == (B, True, key_there)
    # Only there: B has no image or snapshot of its own in the source's Region.
    with pytest.raises(ClientError) as e:
        here.describe_images(ImageIds=[copied])
    assert err(e)[0] == "InvalidAMIID.NotFound"
    assert here.describe_images(Owners=["self"])["Images"] == []
    assert here.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert [s["SnapshotId"] for s in there.describe_snapshots(OwnerIds=["self"])["Snapshots"]] == [snap_id]
    # The source is where it was, A's, untouched.
    assert world.client(A, "ec2").describe_images(ImageIds=[image])["Images"][0]["State"] == "available"


def test_a_key_of_another_region_fails_the_copy(world):
    """KmsKeyId must name a key of the destination Region; EC2 checks it asynchronously:
    the call answers an ImageId, the copy then fails (as for a key B may not use)."""
    image, _ = shared_ami(world)
    there = world.client(B, "ec2", OTHER)
    key_here = world.client(B, "kms").create_key()["KeyMetadata"]["Arn"]  # B's, in REGION

    copied = there.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-wrong-region",
                              Encrypted=True, KmsKeyId=key_here)["ImageId"]
    settle()
    got = there.describe_images(ImageIds=[copied])["Images"][0]
    assert got["State"] == "failed", got
    assert got["StateReason"]["Code"] == "Client.InternalError", got
    # The same key is good for a copy into its own Region.
    ok = world.client(B, "ec2").copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-here",
                                           Encrypted=True, KmsKeyId=key_here)["ImageId"]
    settle()
    assert world.client(B, "ec2").describe_images(ImageIds=[ok])["Images"][0]["State"] == "available"


def test_iam_authorizes_the_new_image_here_and_the_source_image_in_its_region(world):
    image, _ = shared_ami(world)
    iam_b = world.client(B, "iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B}:root"}, "Action": "sts:AssumeRole"}]})
    role = iam_b.create_role(RoleName="copier", AssumeRolePolicyDocument=trust)["Role"]["Arn"]

    def allow_copy(*resources):
        iam_b.put_role_policy(RoleName="copier", PolicyName="copy", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "ec2:CopyImage", "Resource": list(resources)}]}))

    def copier():
        creds = aws_client(world.url, "sts", world.creds(B)).assume_role(
            RoleArn=role, RoleSessionName="copier")["Credentials"]
        return aws_client(world.url, "ec2", creds, region=OTHER)

    new_there = f"arn:aws:ec2:{OTHER}::image/*"
    source_arn = f"arn:aws:ec2:{REGION}::image/{image}"
    allow_copy(new_there, f"arn:aws:ec2:{OTHER}::image/{image}")  # the source, but in the wrong Region
    with pytest.raises(ClientError) as e:
        copier().copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-iam")
    code, message = err(e)
    assert code == "UnauthorizedOperation" and f"ec2:CopyImage on resource: {source_arn} " in message, message
    allow_copy(f"arn:aws:ec2:{REGION}::image/*", source_arn)  # the new image, but in the wrong Region
    with pytest.raises(ClientError) as e:
        copier().copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-iam")
    code, message = err(e)
    assert code == "UnauthorizedOperation" and f"on resource: {new_there} " in message, message

    allow_copy(new_there, source_arn)
    copied = copier().copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-iam")["ImageId"]
    settle()
    assert world.client(B, "ec2", OTHER).describe_images(ImageIds=[copied])["Images"][0]["OwnerId"] == B
