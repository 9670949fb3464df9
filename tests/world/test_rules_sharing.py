"""AMI/snapshot sharing, cross-account copy and KMS key-use rules (ferry_world/rules/:
images, snapshots, ebs_encryption, kms, kms_api, organizations, block_public_access,
copy_image, run_instances), driven through boto3 against moto's server with the sharing
group installed (FERRY_WORLD_ALL_RULES=1: every group).

Accounts A (owner), B and C (others) are reached with STS AssumeRole on
arn:aws:iam::<account>:role/OrganizationAccountAccessRole (rules/trust.py); moto then serves each request as that account."""
import json
import os

import pytest
from botocore.exceptions import ClientError

from ferry_world.engine import clock, config
from worldtest import REGION, aws_client, reset_world

WORLD_RULES = ("sharing",)
A, B, C = "111111111111", "222222222222", "333333333333"


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

    def ec2(self, account, region=REGION):
        return self.client(account, "ec2", region)

    def kms(self, account, region=REGION):
        return self.client(account, "kms", region)


@pytest.fixture
def world(world_url):
    reset_world(world_url)
    config.reset()
    # Shares reach their accounts at once here (test_rules_consistency.py tests the delay).
    config.update({"sharePropagationSeconds": 0})
    return World(world_url)  # fresh sessions: re-assume after every reset


# ----------------------------------------------------------------------------- helpers
def settle():
    """Let pending images/instances settle (when the migration rules time them)."""
    clock.advance(3600)


def propagated():
    """Let ids just created and KMS grants just made take effect (rules/consistency.py:
    EC2 and KMS are eventually consistent)."""
    clock.advance(max(config.get("describeNotFoundAfterCreateSeconds"), config.get("kmsGrantDelaySeconds")) + 1)


def err(excinfo):
    e = excinfo.value.response["Error"]
    return e["Code"], e.get("Message", "")


def make_ami(ec2, *, encrypted=False, kms_key_id=None, volumes=1, name="img"):
    """An AMI built from fresh snapshots (RegisterImage with BlockDeviceMappings)."""
    mappings = []
    for i in range(volumes):
        kw = {"Size": 8, "AvailabilityZone": REGION + "a"}
        if encrypted:
            kw["Encrypted"] = True
        if kms_key_id:
            kw["KmsKeyId"] = kms_key_id
        vol = ec2.create_volume(**kw)["VolumeId"]
        snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
        mappings.append({"DeviceName": f"/dev/sd{'abcdef'[i]}", "Ebs": {"SnapshotId": snap}})
    image = ec2.register_image(
        Name=f"{name}-{os.urandom(3).hex()}", RootDeviceName="/dev/sda",
        BlockDeviceMappings=mappings, Architecture="x86_64", VirtualizationType="hvm",
    )["ImageId"]
    settle()
    return image


def image_snapshot_ids(ec2, image_id):
    settle()
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]


def share(ec2, image_id, account, snapshots=True):
    settle()
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": account}]})
    if snapshots:
        for snap in image_snapshot_ids(ec2, image_id):
            ec2.modify_snapshot_attribute(
                SnapshotId=snap, Attribute="createVolumePermission",
                CreateVolumePermission={"Add": [{"UserId": account}]},
            )


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


def instance(ec2, instance_id):
    settle()
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def launch(ec2, image_id):
    return ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro")[
        "Instances"][0]


# ------------------------------------------------------------------- rule 1: visibility
def test_rule1_ami_shared_by_user_id_is_visible_only_to_that_account(world):
    a, b, c = world.ec2(A), world.ec2(B), world.ec2(C)
    image = make_ami(a)
    a.create_tags(Resources=[image], Tags=[{"Key": "team", "Value": "a"}])

    with pytest.raises(ClientError) as e:
        b.describe_images(ImageIds=[image])
    assert err(e)[0] == "InvalidAMIID.NotFound"
    assert image not in [i["ImageId"] for i in b.describe_images()["Images"]]

    a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": B}]})
    seen = b.describe_images(ImageIds=[image])["Images"][0]
    assert seen["OwnerId"] == A and seen["Public"] is False
    assert "Tags" not in seen or seen["Tags"] == []  # A's tags are A's
    assert image in [i["ImageId"] for i in b.describe_images()["Images"]]
    assert [i["ImageId"] for i in b.describe_images(ExecutableUsers=["self"])["Images"]] == [image]
    assert [i["ImageId"] for i in b.describe_images(Owners=[A])["Images"]] == [image]
    assert b.describe_images(Owners=["self"])["Images"] == []
    assert b.describe_images(ExecutableUsers=["all"], Owners=[A])["Images"] == []
    # A sees whom it shared with
    assert [i["ImageId"] for i in a.describe_images(ExecutableUsers=[B])["Images"]] == [image]
    attr = a.describe_image_attribute(ImageId=image, Attribute="launchPermission")
    assert attr["LaunchPermissions"] == [{"UserId": B}]

    with pytest.raises(ClientError) as e:
        c.describe_images(ImageIds=[image])
    assert err(e)[0] == "InvalidAMIID.NotFound"

    a.modify_image_attribute(ImageId=image, LaunchPermission={"Remove": [{"UserId": B}]})
    with pytest.raises(ClientError) as e:
        b.describe_images(ImageIds=[image])
    assert err(e)[0] == "InvalidAMIID.NotFound"
    assert a.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"] == []


def test_rule1_only_the_owner_changes_or_reads_launch_permissions(world):
    a, b = world.ec2(A), world.ec2(B)
    image = make_ami(a)
    share(a, image, B)
    with pytest.raises(ClientError) as e:
        b.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": C}]})
    assert err(e) == ("AuthFailure", f"Not authorized for image:{image}")
    with pytest.raises(ClientError) as e:
        b.describe_image_attribute(ImageId=image, Attribute="launchPermission")
    assert err(e)[0] == "AuthFailure"
    with pytest.raises(ClientError) as e:
        a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": "123"}]})
    assert err(e)[0] == "InvalidAMIAttributeItemValue"


def test_rule1_public_ami_is_visible_to_every_account(world):
    a, c = world.ec2(A), world.ec2(C)
    a.disable_image_block_public_access()
    image = make_ami(a)
    a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    seen = c.describe_images(ImageIds=[image])["Images"][0]
    assert seen["Public"] is True and seen["OwnerId"] == A
    assert image in [i["ImageId"] for i in c.describe_images(ExecutableUsers=["all"], Owners=[A])["Images"]]
    assert c.describe_images(ExecutableUsers=["self"], Owners=[A])["Images"] == []
    assert a.describe_image_attribute(ImageId=image, Attribute="launchPermission")[
        "LaunchPermissions"] == [{"Group": "all"}]


def test_rule1_ami_shared_with_an_organization_or_ou(world):
    org = world.client(A, "organizations")
    org.create_organization(FeatureSet="ALL")
    org_arn = org.describe_organization()["Organization"]["Arn"]
    root = org.list_roots()["Roots"][0]["Id"]
    ids = []
    for name in ("member-in-ou", "member-at-root"):
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        ids.append(org.describe_create_account_status(CreateAccountRequestId=status["Id"])[
            "CreateAccountStatus"]["AccountId"])
    in_ou, at_root = ids
    ou = org.create_organizational_unit(ParentId=root, Name="apps")["OrganizationalUnit"]
    child = org.create_organizational_unit(ParentId=ou["Id"], Name="prod")["OrganizationalUnit"]
    org.move_account(AccountId=in_ou, SourceParentId=root, DestinationParentId=child["Id"])

    a = world.ec2(A)
    image = make_ami(a)

    def visible(account):
        try:
            world.ec2(account).describe_images(ImageIds=[image])
            return True
        except ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidAMIID.NotFound"
            return False

    # An OU covers its child OUs.
    a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"OrganizationalUnitArn": ou["Arn"]}]})
    assert (visible(in_ou), visible(at_root), visible(C)) == (True, False, False)
    assert [i["ImageId"] for i in world.ec2(in_ou).describe_images(ExecutableUsers=["self"])["Images"]] == [image]

    a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"OrganizationArn": org_arn}]})
    assert (visible(in_ou), visible(at_root), visible(C)) == (True, True, False)
    perms = a.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"]
    assert {"OrganizationalUnitArn": ou["Arn"]} in perms and {"OrganizationArn": org_arn} in perms

    a.modify_image_attribute(ImageId=image, LaunchPermission={"Remove": [
        {"OrganizationArn": org_arn}, {"OrganizationalUnitArn": ou["Arn"]}]})
    assert (visible(in_ou), visible(at_root)) == (False, False)


def test_rule1_snapshot_create_volume_permission(world):
    a, b, c = world.ec2(A), world.ec2(B), world.ec2(C)
    vol = a.create_volume(Size=8, AvailabilityZone=REGION + "a")["VolumeId"]
    snap = a.create_snapshot(VolumeId=vol)["SnapshotId"]
    propagated()

    with pytest.raises(ClientError) as e:
        b.describe_snapshots(SnapshotIds=[snap])
    assert err(e)[0] == "InvalidSnapshot.NotFound"
    assert b.describe_snapshots(RestorableByUserIds=["self"], OwnerIds=[A])["Snapshots"] == []

    a.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                CreateVolumePermission={"Add": [{"UserId": B}]})
    assert a.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == [{"UserId": B}]
    got = b.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert got["OwnerId"] == A
    assert [s["SnapshotId"] for s in b.describe_snapshots(RestorableByUserIds=["self"], OwnerIds=[A])["Snapshots"]] == [snap]
    assert [s["SnapshotId"] for s in a.describe_snapshots(RestorableByUserIds=[B])["Snapshots"]] == [snap]
    with pytest.raises(ClientError) as e:
        c.describe_snapshots(SnapshotIds=[snap])
    assert err(e)[0] == "InvalidSnapshot.NotFound"
    with pytest.raises(ClientError) as e:
        b.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                    CreateVolumePermission={"Add": [{"UserId": C}]})
    assert err(e)[0] == "AuthFailure"
    # B can restore the shared snapshot into a volume of its own.
    restored = b.create_volume(SnapshotId=snap, AvailabilityZone=REGION + "a")
    assert restored["SnapshotId"] == snap

    a.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                OperationType="remove", UserIds=[B])
    assert b.describe_snapshots(RestorableByUserIds=["self"], OwnerIds=[A])["Snapshots"] == []


# ------------------------------------------------------------------- rule 2: launch
def test_rule2_run_instances_from_shared_ami_only(world):
    a, b = world.ec2(A), world.ec2(B)
    image = make_ami(a)
    with pytest.raises(ClientError) as e:
        launch(b, image)
    assert err(e)[0] == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as e:
        launch(b, "ami-0123456789abcdef0")
    assert err(e)[0] == "InvalidAMIID.NotFound"

    share(a, image, B, snapshots=False)  # launching needs no snapshot permission
    started = launch(b, image)
    assert started["ImageId"] == image
    assert instance(b, started["InstanceId"])["State"]["Name"] in ("pending", "running")


# ------------------------------------------------------------------- rule 3: copy
def test_rule3_copy_needs_read_access_to_every_snapshot(world):
    a, b = world.ec2(A), world.ec2(B)
    image = make_ami(a, volumes=2)
    snaps = image_snapshot_ids(a, image)
    with pytest.raises(ClientError) as e:
        b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy")
    assert err(e)[0] == "InvalidAMIID.NotFound"  # not even shared

    share(a, image, B, snapshots=False)
    a.modify_snapshot_attribute(SnapshotId=snaps[0], Attribute="createVolumePermission",
                                CreateVolumePermission={"Add": [{"UserId": B}]})
    with pytest.raises(ClientError) as e:
        b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy")
    assert err(e) == ("InvalidRequest", "You do not have permission to access the storage of this ami")

    a.modify_snapshot_attribute(SnapshotId=snaps[1], Attribute="createVolumePermission",
                                CreateVolumePermission={"Add": [{"UserId": B}]})
    copied = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy")["ImageId"]
    propagated()
    mine = b.describe_images(ImageIds=[copied])["Images"][0]
    assert mine["OwnerId"] == B
    new_snaps = [m["Ebs"]["SnapshotId"] for m in mine["BlockDeviceMappings"]]
    assert len(new_snaps) == 2 and not set(new_snaps) & set(snaps)
    owned = b.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert set(new_snaps) <= {s["SnapshotId"] for s in owned}
    assert b.describe_image_attribute(ImageId=copied, Attribute="launchPermission")["LaunchPermissions"] == []
    # A does not see B's copy.
    with pytest.raises(ClientError):
        a.describe_images(ImageIds=[copied])


def test_rule3_copy_tags_only_with_copy_image_tags_and_only_callers_tags(world):
    a, b = world.ec2(A), world.ec2(B)
    image = make_ami(a)
    a.create_tags(Resources=[image], Tags=[{"Key": "owner-tag", "Value": "a"}])
    share(a, image, B)
    b.create_tags(Resources=[image], Tags=[{"Key": "b-tag", "Value": "b"}])
    assert b.describe_images(ImageIds=[image])["Images"][0]["Tags"] == [{"Key": "b-tag", "Value": "b"}]
    assert a.describe_images(ImageIds=[image])["Images"][0]["Tags"] == [{"Key": "owner-tag", "Value": "a"}]

    plain = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="plain")["ImageId"]
    propagated()
    assert b.describe_images(ImageIds=[plain])["Images"][0].get("Tags", []) == []
    tagged = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="tagged", CopyImageTags=True,
                          TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "x", "Value": "1"}]}])["ImageId"]
    propagated()
    tags = {t["Key"]: t["Value"] for t in b.describe_images(ImageIds=[tagged])["Images"][0]["Tags"]}
    assert tags == {"b-tag": "b", "x": "1"}

    # Within one account CopyImageTags copies the owner's tags.
    own = a.copy_image(SourceImageId=image, SourceRegion=REGION, Name="own", CopyImageTags=True)["ImageId"]
    propagated()
    assert a.describe_images(ImageIds=[own])["Images"][0]["Tags"] == [{"Key": "owner-tag", "Value": "a"}]


def test_rule3_copy_is_idempotent_with_client_token(world):
    a, b = world.ec2(A), world.ec2(B)
    image = make_ami(a)
    share(a, image, B)
    first = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-c", ClientToken="tok-1")["ImageId"]
    again = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-c", ClientToken="tok-1")["ImageId"]
    assert first == again
    propagated()
    assert [i["ImageId"] for i in b.describe_images(Owners=["self"])["Images"]] == [first]
    with pytest.raises(ClientError) as e:
        b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="other", ClientToken="tok-1")
    assert err(e)[0] == "IdempotentParameterMismatch"


def test_rule3_copy_reencrypts_under_the_callers_key(world):
    a, b = world.ec2(A), world.ec2(B)
    key_b = world.kms(B).create_key()["KeyMetadata"]["Arn"]
    image = make_ami(a)
    share(a, image, B)
    copied = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="enc",
                          Encrypted=True, KmsKeyId=key_b)["ImageId"]
    propagated()
    mappings = b.describe_images(ImageIds=[copied])["Images"][0]["BlockDeviceMappings"]
    assert mappings[0]["Ebs"]["Encrypted"] is True
    snap = b.describe_snapshots(SnapshotIds=[mappings[0]["Ebs"]["SnapshotId"]])["Snapshots"][0]
    assert snap["Encrypted"] is True and snap["KmsKeyId"] == key_b and snap["OwnerId"] == B
    with pytest.raises(ClientError) as e:
        b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-x", KmsKeyId=key_b)
    assert err(e)[0] == "InvalidParameterDependency"


# ------------------------------------------------------------------- rule 4: KMS keys
def _encrypted_shared_ami(world, key_policy_json=None):
    kms_a = world.kms(A)
    kw = {"Policy": key_policy_json} if key_policy_json else {}
    key_a = kms_a.create_key(**kw)["KeyMetadata"]["Arn"]
    a = world.ec2(A)
    image = make_ami(a, encrypted=True, kms_key_id=key_a)
    share(a, image, B)
    return key_a, image


def test_rule4_launch_without_key_access_terminates_with_client_error(world):
    key_a, image = _encrypted_shared_ami(world)
    b = world.ec2(B)
    started = launch(b, image)
    assert started["State"]["Name"] == "pending"
    propagated()
    early = b.describe_instances(InstanceIds=[started["InstanceId"]])["Reservations"][0]["Instances"][0]
    if early["State"]["Name"] == "pending":  # instance states on the clock (rules/instances.py)
        assert early.get("StateReason", {}).get("Code") not in ("Client.InternalError", "Client.UserInitiatedShutdown")
    else:
        assert early["State"]["Name"] == "terminated"
    got = instance(b, started["InstanceId"])
    assert got["State"]["Name"] == "terminated"
    assert got["StateReason"] == {"Code": "Client.InternalError",
                                  "Message": "Client.InternalError: Client error on launch"}

    # The key policy lets B use the key: the launch works.
    world.kms(A).put_key_policy(KeyId=key_a, PolicyName="default", Policy=key_policy(A, B))
    ok = launch(b, image)
    assert instance(b, ok["InstanceId"])["State"]["Name"] in ("pending", "running")
    # The owner itself always could.
    assert instance(world.ec2(A), launch(world.ec2(A), image)["InstanceId"])["State"]["Name"] != "terminated"


def test_rule4_kms_grant_gives_and_retiring_takes_key_access(world):
    key_a, image = _encrypted_shared_ami(world)
    kms_a, kms_b, b = world.kms(A), world.kms(B), world.ec2(B)
    grant = kms_a.create_grant(KeyId=key_a, GranteePrincipal=f"arn:aws:iam::{B}:root",
                               Operations=["Decrypt", "CreateGrant", "DescribeKey", "ReEncryptFrom"],
                               Name="share-with-b", RetiringPrincipal=f"arn:aws:iam::{B}:root")
    listed = kms_a.list_grants(KeyId=key_a)["Grants"]
    assert [g["GrantId"] for g in listed] == [grant["GrantId"]]
    assert listed[0]["GranteePrincipal"] == f"arn:aws:iam::{B}:root" and listed[0]["Name"] == "share-with-b"
    propagated()  # a new grant takes effect a while later (KMS eventual consistency)

    assert instance(b, launch(b, image)["InstanceId"])["State"]["Name"] != "terminated"
    assert kms_b.describe_key(KeyId=key_a)["KeyMetadata"]["Arn"] == key_a
    copied = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-c")["ImageId"]
    settle()
    assert b.describe_images(ImageIds=[copied])["Images"][0]["State"] != "failed"

    kms_b.retire_grant(GrantToken=grant["GrantToken"])
    assert kms_a.list_grants(KeyId=key_a)["Grants"] == []
    assert instance(b, launch(b, image)["InstanceId"])["State"]["Name"] == "terminated"

    # A grant with too few operations is not enough; a revoked grant is gone.
    g2 = kms_a.create_grant(KeyId=key_a, GranteePrincipal=f"arn:aws:iam::{B}:role/OrganizationAccountAccessRole",
                            Operations=["Decrypt"])
    propagated()
    assert instance(b, launch(b, image)["InstanceId"])["State"]["Name"] == "terminated"
    kms_a.revoke_grant(KeyId=key_a, GrantId=g2["GrantId"])
    g3 = kms_a.create_grant(KeyId=key_a, GranteePrincipal=f"arn:aws:iam::{B}:role/OrganizationAccountAccessRole",
                            Operations=["Decrypt", "CreateGrant"])
    propagated()
    assert instance(b, launch(b, image)["InstanceId"])["State"]["Name"] != "terminated"
    # C may not retire B's grant; B (grantee without RetireGrant, not retiring principal) neither.
    with pytest.raises(ClientError) as e:
        world.kms(C).retire_grant(KeyId=key_a, GrantId=g3["GrantId"])
    assert err(e)[0] in ("AccessDeniedException", "NotFoundException")
    with pytest.raises(ClientError) as e:
        kms_b.retire_grant(KeyId=key_a, GrantId=g3["GrantId"])
    assert err(e)[0] == "AccessDeniedException"
    kms_a.retire_grant(KeyId=key_a, GrantId=g3["GrantId"])  # the key's account may
    with pytest.raises(ClientError) as e:
        kms_a.create_grant(KeyId=key_a, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=["Fly"])
    assert err(e)[0] == "ValidationException"


def test_rule4_cross_account_kms_calls_by_key_arn(world):
    kms_a, kms_b = world.kms(A), world.kms(B)
    key_a = kms_a.create_key(Description="cmk-a")["KeyMetadata"]["Arn"]
    with pytest.raises(ClientError) as e:
        kms_b.describe_key(KeyId=key_a)
    code, message = err(e)
    assert code == "AccessDeniedException" and "kms:DescribeKey" in message
    with pytest.raises(ClientError) as e:
        kms_b.describe_key(KeyId=key_a.split("/")[-1])  # a bare id is looked up in B
    assert err(e)[0] == "NotFoundException"
    with pytest.raises(ClientError) as e:
        kms_b.create_grant(KeyId=key_a, GranteePrincipal=f"arn:aws:iam::{B}:root", Operations=["Decrypt"])
    assert err(e)[0] == "AccessDeniedException"

    # A grant allows exactly its operations.
    kms_a.create_grant(KeyId=key_a, GranteePrincipal=f"arn:aws:iam::{B}:root",
                       Operations=["GenerateDataKeyWithoutPlaintext"])
    propagated()
    assert kms_b.generate_data_key_without_plaintext(KeyId=key_a, KeySpec="AES_256")["KeyId"] == key_a
    with pytest.raises(ClientError) as e:
        kms_b.generate_data_key(KeyId=key_a, KeySpec="AES_256")
    assert err(e)[0] == "AccessDeniedException"

    kms_a.put_key_policy(KeyId=key_a, PolicyName="default", Policy=key_policy(A, B))
    meta = kms_b.describe_key(KeyId=key_a)["KeyMetadata"]
    assert meta["AWSAccountId"] == A and meta["Description"] == "cmk-a"
    blob = kms_b.encrypt(KeyId=key_a, Plaintext=b"x")["CiphertextBlob"]
    assert kms_b.decrypt(KeyId=key_a, CiphertextBlob=blob)["Plaintext"] == b"x"
    # B's own grants on A's key (kms:CreateGrant is in A's policy for B).
    grant = kms_b.create_grant(KeyId=key_a, GranteePrincipal=f"arn:aws:iam::{B}:role/ebs",
                               Operations=["Decrypt"], RetiringPrincipal=f"arn:aws:iam::{B}:root")
    assert grant["GrantId"] in [g["GrantId"] for g in kms_b.list_grants(KeyId=key_a)["Grants"]]
    assert [g["GrantId"] for g in kms_b.list_retirable_grants(RetiringPrincipal=f"arn:aws:iam::{B}:root")["Grants"]] == [grant["GrantId"]]
    with pytest.raises(ClientError) as e:
        kms_b.revoke_grant(KeyId=key_a, GrantId=grant["GrantId"])  # not in A's policy for B
    assert err(e)[0] == "AccessDeniedException"
    kms_a.revoke_grant(KeyId=key_a, GrantId=grant["GrantId"])
    with pytest.raises(ClientError) as e:
        kms_b.get_key_policy(KeyId=key_a, PolicyName="default")  # not cross-account
    assert err(e)[0] == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        world.kms(C).describe_key(KeyId=key_a)
    assert err(e)[0] == "AccessDeniedException"


def test_rule4_copy_without_key_access_fails_the_copy(world):
    key_a, image = _encrypted_shared_ami(world)
    b = world.ec2(B)
    copied = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-c")["ImageId"]
    settle()
    got = b.describe_images(ImageIds=[copied])["Images"][0]
    assert got["State"] == "failed"
    assert got["StateReason"] == {"Code": "Client.InternalError",
                                  "Message": "Client.InternalError: Given key ID is not accessible"}

    world.kms(A).put_key_policy(KeyId=key_a, PolicyName="default", Policy=key_policy(A, B))
    ok = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-c2")["ImageId"]
    settle()
    got = b.describe_images(ImageIds=[ok])["Images"][0]
    assert got["State"] != "failed"
    # Encrypted source from another account, no KmsKeyId: B's default EBS key.
    snap = b.describe_snapshots(SnapshotIds=[got["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]])["Snapshots"][0]
    key = world.kms(B).describe_key(KeyId=snap["KmsKeyId"])["KeyMetadata"]
    assert snap["Encrypted"] and key["AWSAccountId"] == B and key["KeyManager"] == "AWS"
    # A destination key B may not use fails the copy too.
    key_c = world.kms(C).create_key()["KeyMetadata"]["Arn"]
    bad = b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-c3", Encrypted=True, KmsKeyId=key_c)["ImageId"]
    settle()
    assert b.describe_images(ImageIds=[bad])["Images"][0]["State"] == "failed"


def test_rule4_key_policy_deny_applies_within_the_account(world):
    kms_a, a = world.kms(A), world.ec2(A)
    key = kms_a.create_key(Policy=key_policy(A, deny=["kms:Decrypt"]))["KeyMetadata"]["Arn"]
    image = make_ami(a, encrypted=True, kms_key_id=key)
    got = instance(a, launch(a, image)["InstanceId"])
    assert got["State"]["Name"] == "terminated" and got["StateReason"]["Code"] == "Client.InternalError"
    blob = kms_a.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        kms_a.decrypt(KeyId=key, CiphertextBlob=blob)
    assert err(e)[0] == "AccessDeniedException"
    # A disabled key fails the launch with InvalidKMSKey.InvalidState.
    other = kms_a.create_key()["KeyMetadata"]["Arn"]
    image2 = make_ami(a, encrypted=True, kms_key_id=other)
    kms_a.disable_key(KeyId=other.split("/")[-1])
    got = instance(a, launch(a, image2)["InstanceId"])
    assert got["StateReason"]["Code"] == "Client.InvalidKMSKey.InvalidState"


# ------------------------------------------------------------------- rule 5: public
def test_rule5_encrypted_ami_cannot_be_public(world):
    a = world.ec2(A)
    a.disable_image_block_public_access()
    key = world.kms(A).create_key()["KeyMetadata"]["Arn"]
    image = make_ami(a, encrypted=True, kms_key_id=key)
    with pytest.raises(ClientError) as e:
        a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    assert err(e) == ("InvalidParameter", "Encrypted images cannot be made public.")
    snap = image_snapshot_ids(a, image)[0]
    with pytest.raises(ClientError) as e:
        a.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                    CreateVolumePermission={"Add": [{"Group": "all"}]})
    assert err(e)[0] == "OperationNotPermitted"
    share(a, image, B)  # sharing with an account is fine under a CMK


# ------------------------------------------------------------------- rule 6: aws/ebs
def test_rule6_aws_managed_key_snapshots_are_never_shared(world):
    a, kms_a = world.ec2(A), world.kms(A)
    image = make_ami(a, encrypted=True)  # Encrypted without KmsKeyId: aws/ebs
    snap_id = image_snapshot_ids(a, image)[0]
    snap = a.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"][0]
    meta = kms_a.describe_key(KeyId=snap["KmsKeyId"])["KeyMetadata"]
    assert meta["KeyManager"] == "AWS"
    assert meta["KeyId"] == kms_a.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["KeyId"]

    with pytest.raises(ClientError) as e:
        a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": B}]})
    assert err(e) == ("InvalidParameter",
                      "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.")
    with pytest.raises(ClientError) as e:
        a.modify_image_attribute(ImageId=image, LaunchPermission={
            "Add": [{"OrganizationArn": "arn:aws:organizations::111111111111:organization/o-abcdefghij"}]})
    assert err(e)[0] == "InvalidParameter"
    with pytest.raises(ClientError) as e:
        a.modify_snapshot_attribute(SnapshotId=snap_id, Attribute="createVolumePermission",
                                    CreateVolumePermission={"Add": [{"UserId": B}]})
    assert err(e) == ("OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared")
    # The AWS managed key cannot be used directly or by another account.
    with pytest.raises(ClientError) as e:
        kms_a.encrypt(KeyId="alias/aws/ebs", Plaintext=b"x")
    assert err(e)[0] == "AccessDeniedException"

    # Remedy (AWSSupport-ShareEncryptedAMIOrEBSSnapshot): copy under a CMK, share the copy.
    cmk = kms_a.create_key()["KeyMetadata"]["Arn"]
    copy = a.copy_image(SourceImageId=image, SourceRegion=REGION, Name="cmk-copy", Encrypted=True, KmsKeyId=cmk)["ImageId"]
    share(a, copy, B)
    assert world.ec2(B).describe_images(ImageIds=[copy])["Images"][0]["OwnerId"] == A


def test_rule6_ebs_encryption_by_default_uses_aws_ebs(world):
    a = world.ec2(A)
    assert a.get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"
    a.enable_ebs_encryption_by_default()
    assert a.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    vol = a.create_volume(Size=8, AvailabilityZone=REGION + "a")
    assert vol["Encrypted"] is True
    key = world.kms(A).describe_key(KeyId=vol["KmsKeyId"])["KeyMetadata"]
    assert key["KeyManager"] == "AWS" and key["AWSAccountId"] == A
    image = make_ami(a)  # volumes are encrypted by default now
    with pytest.raises(ClientError) as e:
        a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": B}]})
    assert err(e)[0] == "InvalidParameter"
    # A customer managed default key makes shareable AMIs.
    cmk = world.kms(A).create_key()["KeyMetadata"]["Arn"]
    a.modify_ebs_default_kms_key_id(KmsKeyId=cmk)
    assert a.get_ebs_default_kms_key_id()["KmsKeyId"] == cmk
    share(a, make_ami(a), B)
    a.reset_ebs_default_kms_key_id()
    assert world.kms(A).describe_key(KeyId=a.get_ebs_default_kms_key_id()["KmsKeyId"])[
        "KeyMetadata"]["KeyManager"] == "AWS"


# ------------------------------------------------------------------- rule 7: block public access
def test_rule7_image_block_public_access(world):
    a, a_west, b = world.ec2(A), world.ec2(A, "us-west-2"), world.ec2(B)
    assert a.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "block-new-sharing"
    image = make_ami(a)
    with pytest.raises(ClientError) as e:
        a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    assert err(e)[0] == "OperationNotPermitted"
    share(a, image, B)  # sharing with accounts is not public sharing

    assert a.disable_image_block_public_access()["ImageBlockPublicAccessState"] == "unblocked"
    assert a.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    # per Region and per account
    assert a_west.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "block-new-sharing"
    assert b.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "block-new-sharing"
    a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    # re-enabling keeps existing public AMIs public but blocks new ones
    assert a.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")[
        "ImageBlockPublicAccessState"] == "block-new-sharing"
    assert world.ec2(C).describe_images(ImageIds=[image])["Images"][0]["Public"] is True
    with pytest.raises(ClientError) as e:
        a.modify_image_attribute(ImageId=make_ami(a), LaunchPermission={"Add": [{"Group": "all"}]})
    assert err(e)[0] == "OperationNotPermitted"

    config.update({"imageBlockPublicAccessDefault": "unblocked"})
    assert world.ec2(C).get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"


# ------------------------------------------------------------------- rule 8: product codes
def test_rule8_product_codes_block_copy_and_public(world):
    a, b = world.ec2(A), world.ec2(B)
    a.disable_image_block_public_access()
    image = make_ami(a)
    a.modify_image_attribute(ImageId=image, ProductCodes=["abcdefghijklmnopqrstuvwxy"])
    codes = a.describe_image_attribute(ImageId=image, Attribute="productCodes")["ProductCodes"]
    assert codes == [{"ProductCodeId": "abcdefghijklmnopqrstuvwxy", "ProductCodeType": "marketplace"}]
    share(a, image, B)
    with pytest.raises(ClientError) as e:
        b.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-c")
    assert err(e) == ("InvalidRequest", "Images with EC2 BillingProduct codes cannot be copied to another AWS account.")
    assert launch(b, image)["ImageId"] == image  # launching a shared product-code AMI is fine
    with pytest.raises(ClientError) as e:
        a.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
    assert err(e)[0] == "InvalidParameter"
    # the owner may still copy its own
    a.copy_image(SourceImageId=image, SourceRegion=REGION, Name="own")


def test_rule4_create_grant_with_a_name_is_idempotent(world):
    """KMS API Reference, CreateGrant Name: a retry with identical parameters returns the
    original GrantId (with a new token) and creates no second grant; other parameters
    make a new grant."""
    kms_a = world.kms(A)
    key = kms_a.create_key()["KeyMetadata"]["Arn"]
    args = dict(KeyId=key, GranteePrincipal=f"arn:aws:iam::{B}:root",
                Operations=["Decrypt", "DescribeKey", "CreateGrant"], Name="ferry-share-x-b")
    first = kms_a.create_grant(**args)
    again = kms_a.create_grant(**{**args, "Operations": ["CreateGrant", "Decrypt", "DescribeKey"]})
    assert again["GrantId"] == first["GrantId"] and again["GrantToken"] != first["GrantToken"]
    assert len(kms_a.list_grants(KeyId=key)["Grants"]) == 1
    other = kms_a.create_grant(**{**args, "GranteePrincipal": f"arn:aws:iam::{C}:root"})
    assert other["GrantId"] != first["GrantId"]
    unnamed = {k: v for k, v in args.items() if k != "Name"}
    assert kms_a.create_grant(**unnamed)["GrantId"] != kms_a.create_grant(**unnamed)["GrantId"]
    assert len(kms_a.list_grants(KeyId=key)["Grants"]) == 4


# ------------------------------------------------------------------- AMI ids
MALFORMED_AMI_IDS = ("ami-xyz", "foo", "ami-12345", "ami-ABCDEF12", "ami-0123456789abcdef", "ami-0123456789abcdef00")


def test_malformed_ami_ids_are_refused_as_malformed(world):
    """EC2 API Reference "Error codes for the Amazon EC2 API" / EC2 UG "Resource IDs": an
    AMI id is `ami-` + 8 or 17 lowercase hex digits; anything else is
    InvalidAMIID.Malformed on every call that names an AMI, while a well-formed id that
    does not exist stays InvalidAMIID.NotFound."""
    a = world.ec2(A)
    image = make_ami(a)
    calls = {
        "DescribeImages": lambda i: a.describe_images(ImageIds=[i]),
        "RunInstances": lambda i: launch(a, i),
        "CopyImage": lambda i: a.copy_image(SourceImageId=i, SourceRegion=REGION, Name="copy-malformed"),
        "DescribeImageAttribute": lambda i: a.describe_image_attribute(ImageId=i, Attribute="launchPermission"),
        "ModifyImageAttribute": lambda i: a.modify_image_attribute(
            ImageId=i, LaunchPermission={"Add": [{"UserId": B}]}),
        "DeregisterImage": lambda i: a.deregister_image(ImageId=i),
    }
    for name, call in calls.items():
        for bad in MALFORMED_AMI_IDS:
            with pytest.raises(ClientError) as e:
                call(bad)
            assert err(e) == ("InvalidAMIID.Malformed", f'Invalid id: "{bad}" (expecting "ami-...")'), (name, bad)
        for unknown in ("ami-0123456789abcdef0", "ami-1234abcd"):
            with pytest.raises(ClientError) as e:
                call(unknown)
            assert err(e)[0] == "InvalidAMIID.NotFound", (name, unknown)
    # One malformed id among good ones: the whole DescribeImages is malformed.
    with pytest.raises(ClientError) as e:
        a.describe_images(ImageIds=[image, "ami-xyz"])
    assert err(e)[0] == "InvalidAMIID.Malformed"
    # Well-formed ids that exist work; so do the fake AMIs moto preloads (ami-ekslinux).
    assert [i["ImageId"] for i in a.describe_images(ImageIds=[image])["Images"]] == [image]
    assert a.describe_images(ImageIds=["ami-ekslinux"])["Images"][0]["ImageId"] == "ami-ekslinux"
    assert launch(a, image)["ImageId"] == image
    a.describe_image_attribute(ImageId=image, Attribute="launchPermission")
    a.deregister_image(ImageId=image)


# ------------------------------------------------------------------- KMS key policies
def test_rule4_malformed_key_policies_are_refused_at_the_call(world):
    """KMS API Reference CreateKey / PutKeyPolicy `Policy` and KMS Developer Guide
    "Creating a key policy" (Key policy format, Elements in a key policy): a policy that is
    not JSON, has no Version or no Statement, a Statement that is not a statement (or
    list of at least one), a statement without Effect Allow/Deny or without a principal,
    or characters outside printable ASCII / Latin-1 / tab, LF, CR is refused with
    MalformedPolicyDocumentException (HTTP 400); nothing is created or changed. A
    statement missing Action or Resource is accepted (it has no effect)."""
    kms_a = world.kms(A)
    owner = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"}
    malformed = [
        "not json",
        "{",
        json.dumps(["Version", "Statement"]),
        json.dumps({"Statement": [owner]}),  # no Version
        json.dumps({"Version": "2012-10-17"}),  # no Statement
        json.dumps({"Version": "2012-10-17", "Statement": []}),
        json.dumps({"Version": "2012-10-17", "Statement": "allow everything"}),
        json.dumps({"Version": "2012-10-17", "Statement": [{k: v for k, v in owner.items() if k != "Effect"}]}),
        json.dumps({"Version": "2012-10-17", "Statement": [{**owner, "Effect": "Maybe"}]}),
        json.dumps({"Version": "2012-10-17", "Statement": [{k: v for k, v in owner.items() if k != "Principal"}]}),
        json.dumps({"Version": "2012-10-17", "Statement": [owner, "not a statement"]}),
        json.dumps({"Version": "2012-10-17", "Statement": [{**owner, "Sid": "caf\u00e9 \u2603"}]}, ensure_ascii=False),
    ]
    keys_before = len(kms_a.list_keys()["Keys"])
    for policy in malformed:
        with pytest.raises(ClientError) as e:
            kms_a.create_key(Policy=policy)
        assert err(e)[0] == "MalformedPolicyDocumentException", policy
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(kms_a.list_keys()["Keys"]) == keys_before

    good = key_policy(A, B)
    key = kms_a.create_key(Policy=good)["KeyMetadata"]["KeyId"]
    for policy in malformed:
        with pytest.raises(ClientError) as e:
            kms_a.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)
        assert err(e)[0] == "MalformedPolicyDocumentException", policy
    assert json.loads(kms_a.get_key_policy(KeyId=key, PolicyName="default")["Policy"]) == json.loads(good)
    kms_a.describe_key(KeyId=key)  # the stored policy still allows the owner

    # Accepted: a single statement object, Latin-1 text, a statement without Action or
    # Resource (ineffective, but the call succeeds), the 2008 policy language.
    for policy in (
        json.dumps({"Version": "2012-10-17", "Statement": owner}),
        json.dumps({"Version": "2012-10-17", "Statement": [{**owner, "Sid": "caf\u00e9 key"}]}, ensure_ascii=False),
        json.dumps({"Version": "2012-10-17", "Statement": [owner, {"Effect": "Deny", "Principal": "*"}]}),
        json.dumps({"Version": "2008-10-17", "Statement": [owner]}),
    ):
        kms_a.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)
        kms_a.create_key(Policy=policy)
    kms_a.describe_key(KeyId=key)
