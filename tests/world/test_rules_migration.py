"""The migration rules (ferry_world/rules/: image_states, create_image, instances,
instance_types, run_instances, elastic_ips), driven through boto3 against a moto server
that has only the migration group installed."""
import base64

import pytest
from botocore.exceptions import ClientError

from ferry_world.engine import clock, config
from worldtest import REGION, aws_client, reset_world

WORLD_RULES = ("migration",)
# Simulated time runs 600x real time: a slow call can take minutes of it. Every duration
# in these tests is therefore days long, and tests jump over them with clock.advance().
DAY = 86400
SLOW_WORLD = {
    "imagePendingMinutes": 10 * 24 * 60,
    "copyPendingMinutes": 20 * 24 * 60,
    "instancePendingSeconds": DAY,
    "instanceStoppingSeconds": DAY,
    "instanceShuttingDownSeconds": DAY,
    "statusInitializingSeconds": 2 * DAY,
    # Ids a create call just returned are NotFound by Describe* for an hour (rules/
    # consistency.py): tests that describe what they just made call propagated() first.
    "describeNotFoundAfterCreateSeconds": 3600,
}
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:ferry-migrate-instance:move/web-1"


@pytest.fixture(autouse=True)
def fresh_world(world_url):
    reset_world(world_url)
    config.reset()
    config.update(SLOW_WORLD)
    yield
    config.reset()


@pytest.fixture
def ec2(world_url):
    return aws_client(world_url)


def settle(seconds=100 * DAY):
    """Let simulated time pass."""
    clock.advance(seconds)


def propagated():
    """Let the ids just created propagate (EC2 eventual consistency, rules/consistency.py)."""
    settle(config.get("describeNotFoundAfterCreateSeconds") + 1)


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


@pytest.fixture
def net(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return {"vpc": vpc, "a": a, "b": b, "sg": sg, "ami": base}


def launch(ec2, net, subnet="a", settle_after=True, **kw):
    args = dict(ImageId=net["ami"], MinCount=1, MaxCount=1, InstanceType="t3.micro",
                SubnetId=net[subnet], SecurityGroupIds=[net["sg"]])
    args.update(kw)
    instance = ec2.run_instances(**args)["Instances"][0]
    if settle_after:
        settle(3 * DAY)
    return instance


def describe_instance(ec2, instance_id):
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


SOURCE_VOLUMES = [
    {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3", "Iops": 4000,
                                        "Throughput": 250, "Encrypted": True, "DeleteOnTermination": True}},
    {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 50, "VolumeType": "io2", "Iops": 5000,
                                       "DeleteOnTermination": False}},
]


@pytest.fixture
def source(ec2, net):
    """A running t3.micro with an encrypted gp3 root and an io2 data volume."""
    return launch(ec2, net, BlockDeviceMappings=SOURCE_VOLUMES)


def make_image(ec2, instance_id, name="ferry-image-1", **kw):
    return ec2.create_image(InstanceId=instance_id, Name=name, **kw)["ImageId"]


# ----------------------------------------------------------------- rules 1 and 2


def test_create_image_carries_every_volume_onto_snapshots_and_mappings(ec2, net, source):
    volumes = {v["Attachments"][0]["Device"]: v for v in ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [source["InstanceId"]]}])["Volumes"]}
    assert volumes["/dev/sda1"]["Iops"] == 4000 and volumes["/dev/sda1"]["Throughput"] == 250
    root_key = volumes["/dev/sda1"]["KmsKeyId"]
    assert volumes["/dev/sda1"]["Encrypted"] and root_key.startswith("arn:aws:kms:")

    image_id = make_image(ec2, source["InstanceId"])
    propagated()
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["RootDeviceType"] == "ebs" and image["RootDeviceName"] == "/dev/sda1"
    mappings = {m["DeviceName"]: m["Ebs"] for m in image["BlockDeviceMappings"]}
    assert set(mappings) == {"/dev/sda1", "/dev/sdf"}
    root, data = mappings["/dev/sda1"], mappings["/dev/sdf"]
    assert (root["VolumeSize"], root["VolumeType"], root["Iops"], root["Throughput"], root["Encrypted"],
            root["DeleteOnTermination"]) == (20, "gp3", 4000, 250, True, True)
    assert (data["VolumeSize"], data["VolumeType"], data["Iops"], data["Encrypted"],
            data["DeleteOnTermination"]) == (50, "io2", 5000, False, False)
    assert "Throughput" not in data

    snaps = {s["SnapshotId"]: s for s in ec2.describe_snapshots(
        SnapshotIds=[root["SnapshotId"], data["SnapshotId"]])["Snapshots"]}
    assert snaps[root["SnapshotId"]]["VolumeSize"] == 20
    assert snaps[root["SnapshotId"]]["Encrypted"] is True
    assert snaps[root["SnapshotId"]]["KmsKeyId"] == root_key
    assert snaps[root["SnapshotId"]]["VolumeId"] == volumes["/dev/sda1"]["VolumeId"]
    assert snaps[data["SnapshotId"]]["VolumeSize"] == 50
    assert snaps[data["SnapshotId"]]["Encrypted"] is False
    # Exactly one snapshot per volume: nothing extra (moto makes a 15 GiB one).
    own = ec2.describe_snapshots(Filters=[{"Name": "description", "Values": [f"*{image_id}*"]}])["Snapshots"]
    assert len(own) == 2


def test_create_image_rejects_an_instance_that_is_not_running_or_stopped(ec2, net):
    pending = launch(ec2, net, settle_after=False)
    with pytest.raises(ClientError) as e:
        make_image(ec2, pending["InstanceId"])
    assert code_of(e)[0] == "InvalidParameterValue"


def test_instance_store_root_follows_the_ami_and_cannot_be_imaged(ec2, net):
    # moto's catalogue: ami-04681a1dbd79675b6 has an instance-store root device.
    instance = launch(ec2, net, ImageId="ami-04681a1dbd79675b6", InstanceType="m3.medium")
    assert describe_instance(ec2, instance["InstanceId"])["RootDeviceType"] == "instance-store"
    with pytest.raises(ClientError) as e:
        make_image(ec2, instance["InstanceId"])
    assert code_of(e)[0] == "InvalidParameterValue"
    assert "EBS root device" in code_of(e)[1]


def test_create_image_tags_the_image_and_its_snapshots(ec2, net, source):
    tags = [{"Key": "ferry:execution", "Value": EXECUTION}, {"Key": "Name", "Value": "web"}]
    image_id = make_image(ec2, source["InstanceId"], TagSpecifications=[
        {"ResourceType": "image", "Tags": tags}, {"ResourceType": "snapshot", "Tags": tags}])
    propagated()
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert {t["Key"]: t["Value"] for t in image["Tags"]}["ferry:execution"] == EXECUTION
    for m in image["BlockDeviceMappings"]:
        snap = ec2.describe_snapshots(SnapshotIds=[m["Ebs"]["SnapshotId"]])["Snapshots"][0]
        assert {t["Key"]: t["Value"] for t in snap["Tags"]} == {"ferry:execution": EXECUTION, "Name": "web"}


# ----------------------------------------------------------------------- rule 3


def test_image_is_pending_for_the_configured_time_then_available(ec2, net, source):
    config.update({"imagePendingMinutes": 10 * 24 * 60})
    image_id = make_image(ec2, source["InstanceId"])
    propagated()
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["State"] == "pending" and "StateReason" not in image
    snap_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snap = ec2.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"][0]
    assert snap["State"] == "pending" and snap["Progress"] != "100%"
    assert ec2.describe_images(Owners=["self"], Filters=[{"Name": "state", "Values": ["pending"]}])["Images"]

    settle(5 * DAY)
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "pending"
    settle(5 * DAY + 3600)
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"
    snap = ec2.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"][0]
    assert (snap["State"], snap["Progress"]) == ("completed", "100%")


def test_image_named_in_fail_images_fails_with_a_state_reason(ec2, net, source):
    config.update({"failImages": ["doomed-*"], "failImageReason": "Client.InternalError: boom"})
    image_id = make_image(ec2, source["InstanceId"], name="doomed-1")
    ok_id = make_image(ec2, source["InstanceId"], name="fine-1")
    settle()
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["State"] == "failed"
    assert image["StateReason"] == {"Code": "Client.InternalError", "Message": "Client.InternalError: boom"}
    snap = ec2.describe_snapshots(SnapshotIds=[image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]])["Snapshots"][0]
    assert snap["State"] == "error"
    assert ec2.describe_images(ImageIds=[ok_id])["Images"][0]["State"] == "available"


def test_fail_images_matches_image_ids_too(ec2, net, source):
    image_id = make_image(ec2, source["InstanceId"])
    config.update({"failImages": [image_id]})
    settle()
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "failed"


def test_copy_and_register_image_are_pending_too(ec2, net, source):
    config.update({"imagePendingMinutes": 5 * 24 * 60, "copyPendingMinutes": 30 * 24 * 60})
    image_id = make_image(ec2, source["InstanceId"])
    settle(6 * DAY)
    copy_id = ec2.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="ferry-copy-1")["ImageId"]
    propagated()
    copy = ec2.describe_images(ImageIds=[copy_id])["Images"][0]
    assert copy["State"] == "pending"
    # The copy has its own snapshots, same sizes and encryption as the source's.
    sizes = sorted((m["Ebs"]["VolumeSize"], m["Ebs"]["Encrypted"]) for m in copy["BlockDeviceMappings"])
    assert sizes == [(20, True), (50, False)]
    source_snaps = {m["Ebs"]["SnapshotId"] for m in
                    ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]}
    assert not source_snaps & {m["Ebs"]["SnapshotId"] for m in copy["BlockDeviceMappings"]}
    settle(20 * DAY)
    assert ec2.describe_images(ImageIds=[copy_id])["Images"][0]["State"] == "pending"
    settle(11 * DAY)
    assert ec2.describe_images(ImageIds=[copy_id])["Images"][0]["State"] == "available"

    snap = next(iter(source_snaps))
    reg_id = ec2.register_image(Name="ferry-registered", RootDeviceName="/dev/xvda",
                                BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}])["ImageId"]
    propagated()
    reg = ec2.describe_images(ImageIds=[reg_id])["Images"][0]
    assert reg["State"] == "pending" and reg["RootDeviceName"] == "/dev/xvda"
    assert reg["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snap
    settle(6 * DAY)
    assert ec2.describe_images(ImageIds=[reg_id])["Images"][0]["State"] == "available"


def test_pending_image_refuses_attribute_changes(ec2, net):
    plain = launch(ec2, net)  # unencrypted: sharing it is allowed once available
    image_id = make_image(ec2, plain["InstanceId"])
    with pytest.raises(ClientError) as e:
        ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": "111122223333"}]})
    assert code_of(e)[0] == "InvalidAMIID.Unavailable"
    settle()
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": "111122223333"}]})


# ----------------------------------------------------------------------- rule 4


def test_run_instances_from_a_pending_failed_or_unknown_image_fails(ec2, net, source):
    image_id = make_image(ec2, source["InstanceId"])
    with pytest.raises(ClientError) as e:
        launch(ec2, net, subnet="b", ImageId=image_id)
    assert code_of(e) == ("InvalidAMIID.Unavailable", f"AMI '{image_id}' is pending, and cannot be run")

    config.update({"failImages": ["bad-*"]})
    bad = make_image(ec2, source["InstanceId"], name="bad-image")
    settle()
    with pytest.raises(ClientError) as e:
        launch(ec2, net, subnet="b", ImageId=bad)
    assert code_of(e)[0] == "InvalidAMIID.Unavailable"

    with pytest.raises(ClientError) as e:
        launch(ec2, net, subnet="b", ImageId="ami-0123456789abcdef0")
    assert code_of(e) == ("InvalidAMIID.NotFound", "The image id '[ami-0123456789abcdef0]' does not exist")

    # Once available, the launch works.
    launch(ec2, net, subnet="b", ImageId=image_id)


# ----------------------------------------------------------------------- rule 5


def test_client_token_returns_the_same_instance_and_launches_nothing_new(ec2, net):
    first = launch(ec2, net, ClientToken="ferry-token-1")
    again = launch(ec2, net, ClientToken="ferry-token-1")
    assert again["InstanceId"] == first["InstanceId"]
    all_ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert all_ids == [first["InstanceId"]]
    by_token = ec2.describe_instances(Filters=[{"Name": "client-token", "Values": ["ferry-token-1"]}])
    assert [i["InstanceId"] for r in by_token["Reservations"] for i in r["Instances"]] == [first["InstanceId"]]
    assert describe_instance(ec2, first["InstanceId"])["ClientToken"] == "ferry-token-1"

    ec2.terminate_instances(InstanceIds=[first["InstanceId"]])
    settle()
    after = ec2.run_instances(ImageId=net["ami"], MinCount=1, MaxCount=1, InstanceType="t3.micro",
                              SubnetId=net["a"], SecurityGroupIds=[net["sg"]], ClientToken="ferry-token-1")
    assert after["Instances"][0]["InstanceId"] == first["InstanceId"]
    assert len(ec2.describe_instances()["Reservations"]) == 1


def test_client_token_with_other_parameters_is_a_mismatch(ec2, net):
    launch(ec2, net, ClientToken="ferry-token-2")
    with pytest.raises(ClientError) as e:
        launch(ec2, net, ClientToken="ferry-token-2", InstanceType="t3.small")
    assert code_of(e) == ("IdempotentParameterMismatch",
                          "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
    # A different token launches another instance.
    launch(ec2, net, ClientToken="ferry-token-3")
    assert len(ec2.describe_instances()["Reservations"]) == 2


# ----------------------------------------------------------------------- rule 6


def test_run_instances_builds_volumes_from_the_image_with_overrides(ec2, net, source):
    image_id = make_image(ec2, source["InstanceId"])
    settle()
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    snaps = {m["DeviceName"]: m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]}
    root_key = ec2.describe_snapshots(SnapshotIds=[snaps["/dev/sda1"]])["Snapshots"][0]["KmsKeyId"]
    kms = aws_client(ec2.meta.endpoint_url, "kms")
    other_key = kms.create_key(Description="cmk-b")["KeyMetadata"]["Arn"]

    new = launch(ec2, net, subnet="b", ImageId=image_id, BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3", "Iops": 6000,
                                            "Throughput": 500, "DeleteOnTermination": True}},
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeType": "gp3", "Encrypted": True, "KmsKeyId": other_key,
                                           "DeleteOnTermination": True}},
    ], TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "ferry:execution", "Value": EXECUTION}]},
                          {"ResourceType": "volume", "Tags": [{"Key": "ferry:execution", "Value": EXECUTION}]}])
    inst = describe_instance(ec2, new["InstanceId"])
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert {t["Key"]: t["Value"] for t in inst["Tags"]} == {"ferry:execution": EXECUTION}
    dot = {m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in inst["BlockDeviceMappings"]}
    assert dot == {"/dev/sda1": True, "/dev/sdf": True}
    vols = {v["Attachments"][0]["Device"]: v for v in ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [new["InstanceId"]]}])["Volumes"]}
    root, data = vols["/dev/sda1"], vols["/dev/sdf"]
    assert (root["Size"], root["VolumeType"], root["Iops"], root["Throughput"]) == (30, "gp3", 6000, 500)
    assert root["SnapshotId"] == snaps["/dev/sda1"] and root["AvailabilityZone"] == "us-east-1b"
    assert root["Encrypted"] is True and root["KmsKeyId"] == root_key  # the snapshot's key
    assert (data["Size"], data["VolumeType"], data["Iops"], data["Throughput"]) == (50, "gp3", 3000, 125)
    assert data["Encrypted"] is True and data["KmsKeyId"] == other_key
    for v in (root, data):
        assert {t["Key"]: t["Value"] for t in v["Tags"]} == {"ferry:execution": EXECUTION}


def test_run_instances_keeps_the_image_mapping_when_not_overridden(ec2, net, source):
    image_id = make_image(ec2, source["InstanceId"])
    settle()
    new = launch(ec2, net, subnet="b", ImageId=image_id)
    inst = describe_instance(ec2, new["InstanceId"])
    dot = {m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in inst["BlockDeviceMappings"]}
    assert dot == {"/dev/sda1": True, "/dev/sdf": False}
    vols = {v["Attachments"][0]["Device"]: v for v in ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [new["InstanceId"]]}])["Volumes"]}
    assert (vols["/dev/sda1"]["Size"], vols["/dev/sda1"]["Iops"], vols["/dev/sda1"]["Throughput"]) == (20, 4000, 250)
    assert (vols["/dev/sdf"]["VolumeType"], vols["/dev/sdf"]["Iops"], vols["/dev/sdf"]["Encrypted"]) == ("io2", 5000, False)
    # Terminating deletes only the DeleteOnTermination volume.
    ec2.terminate_instances(InstanceIds=[new["InstanceId"]])
    left = ec2.describe_volumes(VolumeIds=[vols["/dev/sdf"]["VolumeId"]])["Volumes"][0]
    assert left["State"] == "available"
    with pytest.raises(ClientError):
        ec2.describe_volumes(VolumeIds=[vols["/dev/sda1"]["VolumeId"]])


def test_run_instances_refuses_a_volume_smaller_than_its_snapshot(ec2, net, source):
    image_id = make_image(ec2, source["InstanceId"])
    settle()
    snap = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    with pytest.raises(ClientError) as e:
        launch(ec2, net, subnet="b", ImageId=image_id,
               BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 10}}])
    assert code_of(e) == ("InvalidBlockDeviceMapping",
                          f"Volume of size 10GB is smaller than snapshot '{snap}', expect size >= 20GB")


def test_encrypted_request_on_an_unencrypted_snapshot_uses_the_default_key(ec2, net, source):
    image_id = make_image(ec2, source["InstanceId"])
    settle()
    new = launch(ec2, net, subnet="b", ImageId=image_id,
                 BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"Encrypted": True}}])
    vol = next(v for v in ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [new["InstanceId"]]}])["Volumes"]
        if v["Attachments"][0]["Device"] == "/dev/sdf")
    assert vol["Encrypted"] is True and vol["KmsKeyId"].startswith("arn:aws:kms:")


def test_launch_attributes_come_back_as_ec2_returns_them(world_url, ec2, net):
    iam = aws_client(world_url, "iam")
    profile = iam.create_instance_profile(InstanceProfileName="web")["InstanceProfile"]
    user_data = "#!/bin/sh\necho hello\n"
    args = dict(
        ImageId=net["ami"], MinCount=1, MaxCount=1, InstanceType="t3.micro",
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": net["b"], "Groups": [net["sg"]],
                            "AssociatePublicIpAddress": True, "DeleteOnTermination": True}],
        MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled",
                         "InstanceMetadataTags": "enabled"},
        CreditSpecification={"CpuCredits": "standard"},
        Monitoring={"Enabled": True},
        IamInstanceProfile={"Arn": profile["Arn"]},
        UserData=user_data,
        DisableApiStop=True,
        DisableApiTermination=True,
        EbsOptimized=True,
        CpuOptions={"CoreCount": 1, "ThreadsPerCore": 1},
        Placement={"Tenancy": "dedicated"},
    )
    iid = ec2.run_instances(**args)["Instances"][0]["InstanceId"]
    settle(3 * DAY)
    inst = describe_instance(ec2, iid)
    assert inst["SubnetId"] == net["b"] and inst["VpcId"] == net["vpc"]
    assert [g["GroupId"] for g in inst["SecurityGroups"]] == [net["sg"]]
    assert [g["GroupId"] for g in inst["NetworkInterfaces"][0]["Groups"]] == [net["sg"]]
    assert inst.get("PublicIpAddress")
    assert inst["NetworkInterfaces"][0]["Attachment"]["DeleteOnTermination"] is True
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    assert inst["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert inst["MetadataOptions"]["InstanceMetadataTags"] == "enabled"
    assert inst["Monitoring"]["State"] in ("enabled", "pending")
    assert inst["IamInstanceProfile"] == {"Arn": profile["Arn"], "Id": profile["InstanceProfileId"]}
    assert inst["EbsOptimized"] is True
    assert inst["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 1}
    assert inst["Placement"]["Tenancy"] == "dedicated"
    assert inst["HibernationOptions"] == {"Configured": False}

    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
    assert base64.b64decode(attr["UserData"]["Value"]).decode() == user_data
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiStop")["DisableApiStop"]["Value"] is True
    assert ec2.describe_instance_attribute(
        InstanceId=iid, Attribute="disableApiTermination")["DisableApiTermination"]["Value"] is True
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="ebsOptimized")["EbsOptimized"]["Value"] is True
    credits = ec2.describe_instance_credit_specifications(InstanceIds=[iid])["InstanceCreditSpecifications"]
    assert credits == [{"InstanceId": iid, "CpuCredits": "standard"}]


def test_cpu_options_only_for_types_that_support_them(ec2, net):
    """aws-rules.md 22: CpuOptions on a T2 (no ValidCores) or a bare-metal type is
    UnsupportedOperation and launches nothing; on a type with ValidCores it is kept."""
    before = len(ec2.describe_instances()["Reservations"])
    for instance_type in ("t2.micro", "t2.2xlarge", "m5.metal"):
        with pytest.raises(ClientError) as e:
            launch(ec2, net, InstanceType=instance_type, settle_after=False,
                   CpuOptions={"CoreCount": 1, "ThreadsPerCore": 1})
        assert e.value.response["Error"]["Code"] == "UnsupportedOperation", instance_type
    assert len(ec2.describe_instances()["Reservations"]) == before
    t2 = launch(ec2, net, InstanceType="t2.micro")["InstanceId"]  # without CpuOptions: fine
    assert describe_instance(ec2, t2)["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 1}
    c7g = launch(ec2, net, InstanceType="c7g.large", CpuOptions={"CoreCount": 1, "ThreadsPerCore": 1})
    assert describe_instance(ec2, c7g["InstanceId"])["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 1}


def test_cpu_options_and_credits_default_from_the_instance_type(ec2, net):
    t3 = launch(ec2, net)["InstanceId"]
    assert describe_instance(ec2, t3)["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 2}
    assert describe_instance(ec2, t3)["Placement"]["Tenancy"] == "default"
    assert ec2.describe_instance_credit_specifications(
        InstanceIds=[t3])["InstanceCreditSpecifications"][0]["CpuCredits"] == "unlimited"
    t2 = launch(ec2, net, InstanceType="t2.micro")["InstanceId"]
    assert ec2.describe_instance_credit_specifications(
        InstanceIds=[t2])["InstanceCreditSpecifications"][0]["CpuCredits"] == "standard"
    m5 = launch(ec2, net, InstanceType="m5.large")["InstanceId"]
    with pytest.raises(ClientError):
        ec2.describe_instance_credit_specifications(InstanceIds=[m5])


def test_unknown_instance_profile_and_foreign_security_group_are_refused(ec2, net):
    with pytest.raises(ClientError) as e:
        launch(ec2, net, IamInstanceProfile={"Arn": "arn:aws:iam::123456789012:instance-profile/nope"})
    assert code_of(e)[0] == "InvalidParameterValue"
    other_vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    foreign = ec2.create_security_group(GroupName="x", Description="x", VpcId=other_vpc)["GroupId"]
    with pytest.raises(ClientError) as e:
        launch(ec2, net, SecurityGroupIds=[foreign])
    assert code_of(e)[0] == "InvalidParameter"
    with pytest.raises(ClientError) as e:
        launch(ec2, net, SecurityGroupIds=["sg-0123456789abcdef0"])
    assert code_of(e)[0] == "InvalidGroup.NotFound"


# ----------------------------------------------------------------------- rule 7


def test_instance_lifecycle_follows_the_clock(ec2, net):
    config.update({"instancePendingSeconds": 4 * DAY, "instanceStoppingSeconds": 6 * DAY,
                   "statusInitializingSeconds": 12 * DAY, "instanceShuttingDownSeconds": 3 * DAY})
    iid = launch(ec2, net, settle_after=False)["InstanceId"]
    propagated()
    assert describe_instance(ec2, iid)["State"] == {"Code": 0, "Name": "pending"}
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[iid])
    assert code_of(e)[0] == "IncorrectInstanceState"
    settle(4 * DAY + 3600)
    assert describe_instance(ec2, iid)["State"] == {"Code": 16, "Name": "running"}

    def status():
        s = ec2.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)["InstanceStatuses"][0]
        return s["InstanceState"]["Name"], s["InstanceStatus"]["Status"], s["SystemStatus"]["Status"]

    assert status() == ("running", "initializing", "initializing")
    settle(12 * DAY)
    assert status() == ("running", "ok", "ok")

    out = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"][0]
    assert out["CurrentState"]["Name"] == "stopping" and out["PreviousState"]["Name"] == "running"
    assert describe_instance(ec2, iid)["State"]["Name"] == "stopping"
    assert status() == ("stopping", "not-applicable", "not-applicable")
    assert ec2.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"] == []
    with pytest.raises(ClientError) as e:
        ec2.start_instances(InstanceIds=[iid])
    assert code_of(e) == ("IncorrectInstanceState",
                          f"The instance '{iid}' is not in a state from which it can be started.")
    settle(6 * DAY + 3600)
    assert describe_instance(ec2, iid)["State"] == {"Code": 80, "Name": "stopped"}
    assert describe_instance(ec2, iid)["StateReason"]["Code"] == "Client.UserInitiatedShutdown"

    out = ec2.start_instances(InstanceIds=[iid])["StartingInstances"][0]
    assert out["PreviousState"]["Name"] == "stopped"
    assert describe_instance(ec2, iid)["State"]["Name"] == "pending"
    settle(4 * DAY + 3600)
    assert status() == ("running", "initializing", "initializing")

    out = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
    assert out["CurrentState"]["Name"] == "shutting-down" and out["PreviousState"]["Name"] == "running"
    assert describe_instance(ec2, iid)["State"] == {"Code": 32, "Name": "shutting-down"}
    settle(3 * DAY + 3600)
    assert describe_instance(ec2, iid)["State"] == {"Code": 48, "Name": "terminated"}
    with pytest.raises(ClientError) as e:
        ec2.start_instances(InstanceIds=[iid])
    assert code_of(e)[0] == "IncorrectInstanceState"


def test_stop_and_termination_protection(ec2, net):
    iid = launch(ec2, net, DisableApiTermination=True, DisableApiStop=True)["InstanceId"]
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[iid])
    assert code_of(e) == ("OperationNotPermitted",
                          f"The instance '{iid}' may not be stopped. Modify its 'disableApiStop' "
                          "instance attribute and try again.")
    with pytest.raises(ClientError) as e:
        ec2.terminate_instances(InstanceIds=[iid])
    assert code_of(e) == ("OperationNotPermitted",
                          f"The instance '{iid}' may not be terminated. Modify its 'disableApiTermination' "
                          "instance attribute and try again.")
    assert describe_instance(ec2, iid)["State"]["Name"] == "running"
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiStop={"Value": False})
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
    ec2.stop_instances(InstanceIds=[iid])
    ec2.terminate_instances(InstanceIds=[iid])
    assert describe_instance(ec2, iid)["State"]["Name"] == "shutting-down"


# ----------------------------------------------------------------------- rule 8


def test_instance_type_offerings_are_configurable_per_az(ec2, net):
    config.update({"instanceTypeOfferings": {"us-east-1b": ["m5.large", "t3.small"]}})

    def offered(az, types=None):
        filters = [{"Name": "location", "Values": [az]}]
        if types:
            filters.append({"Name": "instance-type", "Values": types})
        out = ec2.describe_instance_type_offerings(LocationType="availability-zone", Filters=filters)
        return sorted(o["InstanceType"] for o in out["InstanceTypeOfferings"])

    assert offered("us-east-1b") == ["m5.large", "t3.small"]
    assert offered("us-east-1b", ["t3.micro"]) == []
    assert offered("us-east-1b", ["t3.small"]) == ["t3.small"]
    assert offered("us-east-1a", ["t3.micro"]) == ["t3.micro"]  # not configured: moto's list
    loc = ec2.describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "location", "Values": ["us-east-1b"]}])
    assert all(o["LocationType"] == "availability-zone" and o["Location"] == "us-east-1b"
               for o in loc["InstanceTypeOfferings"])

    with pytest.raises(ClientError) as e:
        launch(ec2, net, subnet="b", InstanceType="t3.micro")
    code, message = code_of(e)
    assert code == "Unsupported"
    assert message.startswith("Your requested instance type (t3.micro) is not supported in your requested "
                              "Availability Zone (us-east-1b). Please retry your request by not specifying an "
                              "Availability Zone or choosing us-east-1a")
    assert "us-east-1b," not in message
    launch(ec2, net, subnet="b", InstanceType="t3.small")
    launch(ec2, net, subnet="a", InstanceType="t3.micro")


# ----------------------------------------------------------------------- rule 9


def test_ami_names_are_unique_and_snapshots_in_use_cannot_be_deleted(ec2, net, source):
    image_id = make_image(ec2, source["InstanceId"], name="ferry-same")
    with pytest.raises(ClientError) as e:
        make_image(ec2, source["InstanceId"], name="ferry-same")
    assert code_of(e) == ("InvalidAMIName.Duplicate", f"AMI name ferry-same is already in use by AMI {image_id}")
    settle()
    with pytest.raises(ClientError) as e:
        ec2.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="ferry-same")
    assert code_of(e)[0] == "InvalidAMIName.Duplicate"

    snaps = [m["Ebs"]["SnapshotId"] for m in
             ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]]
    for snap in snaps:
        with pytest.raises(ClientError) as e:
            ec2.delete_snapshot(SnapshotId=snap)
        assert code_of(e) == ("InvalidSnapshot.InUse", f"The snapshot {snap} is currently in use by {image_id}")
    ec2.deregister_image(ImageId=image_id)
    settle(config.get("snapshotInUseAfterDeregisterSeconds") + 1)  # rule 20: see the next test
    for snap in snaps:
        ec2.delete_snapshot(SnapshotId=snap)
    assert not ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": snaps}])["Snapshots"]
    # The name is free again.
    make_image(ec2, source["InstanceId"], name="ferry-same")


def test_snapshots_stay_in_use_for_a_while_after_deregister(ec2, net, source):
    """aws-rules.md 20: DeleteSnapshot right after DeregisterImage is InvalidSnapshot.InUse
    until some time has passed; DeregisterImage with DeleteAssociatedSnapshots deletes them
    at once, except a snapshot another AMI still uses (warn-skipped)."""
    image_id = make_image(ec2, source["InstanceId"], name="ferry-released")
    settle()
    snaps = [m["Ebs"]["SnapshotId"] for m in
             ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]]
    ec2.deregister_image(ImageId=image_id)
    with pytest.raises(ClientError) as e:
        ec2.delete_snapshot(SnapshotId=snaps[0])
    assert code_of(e) == ("InvalidSnapshot.InUse", f"The snapshot {snaps[0]} is currently in use by {image_id}")
    settle(config.get("snapshotInUseAfterDeregisterSeconds") + 1)
    ec2.delete_snapshot(SnapshotId=snaps[0])

    # With DeleteAssociatedSnapshots: gone with the image, nothing left to delete.
    image_id = make_image(ec2, source["InstanceId"], name="ferry-with-snapshots")
    settle()
    snaps = [m["Ebs"]["SnapshotId"] for m in
             ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]]
    out = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert sorted((r["SnapshotId"], r["ReturnCode"]) for r in out["DeleteSnapshotResults"]) == \
        sorted((s, "success") for s in snaps)
    assert not ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": snaps}])["Snapshots"]
    assert not ec2.describe_images(Filters=[{"Name": "image-id", "Values": [image_id]}])["Images"]

    # A snapshot another AMI also uses stays (and so does that AMI).
    image_id = make_image(ec2, source["InstanceId"], name="ferry-first")
    settle()
    mapping = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]
    other = ec2.register_image(Name="ferry-second", RootDeviceName=mapping[0]["DeviceName"],
                               BlockDeviceMappings=[{"DeviceName": mapping[0]["DeviceName"],
                                                     "Ebs": {"SnapshotId": mapping[0]["Ebs"]["SnapshotId"]}}],
                               VirtualizationType="hvm", Architecture="x86_64")["ImageId"]
    out = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    codes = {r["SnapshotId"]: r["ReturnCode"] for r in out["DeleteSnapshotResults"]}
    assert codes[mapping[0]["Ebs"]["SnapshotId"]] == "warn-skipped"
    assert ec2.describe_snapshots(SnapshotIds=[mapping[0]["Ebs"]["SnapshotId"]])["Snapshots"]
    propagated()
    assert ec2.describe_images(ImageIds=[other])["Images"]


def test_ami_names_are_per_account(world_url, ec2, net, source):
    make_image(ec2, source["InstanceId"], name="ferry-shared-name")
    other = aws_client(world_url, account="111122223333")
    vpc = other.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = other.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    base = other.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    iid = other.run_instances(ImageId=base, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                              SubnetId=subnet)["Instances"][0]["InstanceId"]
    settle(3 * DAY)
    image_id = other.create_image(InstanceId=iid, Name="ferry-shared-name")["ImageId"]
    propagated()
    assert other.describe_images(ImageIds=[image_id])["Images"][0]["OwnerId"] == "111122223333"


# ---------------------------------------------------------------------- rule 10


def test_elastic_ip_moves_with_allow_reassociation(ec2, net):
    old = launch(ec2, net)["InstanceId"]
    new = launch(ec2, net, subnet="b")["InstanceId"]
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=old)
    assert describe_instance(ec2, old)["PublicIpAddress"] == alloc["PublicIp"]
    with pytest.raises(ClientError) as e:
        ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=new)
    assert code_of(e)[0] == "Resource.AlreadyAssociated"

    ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=new, AllowReassociation=True)
    address = ec2.describe_addresses(AllocationIds=[alloc["AllocationId"]])["Addresses"][0]
    assert address["InstanceId"] == new
    assert ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [old]}])["Addresses"] == []
    assert describe_instance(ec2, new)["PublicIpAddress"] == alloc["PublicIp"]
    assert describe_instance(ec2, old).get("PublicIpAddress") != alloc["PublicIp"]


# ---------------------------------------------------------------------- rule 11


def test_tag_filters_accept_execution_arns(ec2, net, source):
    tags = [{"Key": "ferry:execution", "Value": EXECUTION}]
    other = EXECUTION.replace("web-1", "web-2")
    iid = launch(ec2, net, subnet="b", TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["InstanceId"]
    image_id = make_image(ec2, source["InstanceId"], TagSpecifications=[
        {"ResourceType": "image", "Tags": tags}, {"ResourceType": "snapshot", "Tags": tags}])
    flt = [{"Name": "tag:ferry:execution", "Values": [EXECUTION]}]
    miss = [{"Name": "tag:ferry:execution", "Values": [other]}]
    propagated()

    found = [i["InstanceId"] for r in ec2.describe_instances(Filters=flt)["Reservations"] for i in r["Instances"]]
    assert found == [iid]
    assert ec2.describe_instances(Filters=miss)["Reservations"] == []
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"], Filters=flt)["Images"]] == [image_id]
    assert ec2.describe_images(Owners=["self"], Filters=miss)["Images"] == []
    snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=flt)["Snapshots"]
    assert len(snaps) == 2
    assert ec2.describe_snapshots(OwnerIds=["self"], Filters=miss)["Snapshots"] == []


# ------------------------------------------------------------- unknown images, mappings


def test_unknown_image_ids_follow_the_reject_setting(ec2, net, monkeypatch):
    """API Reference "RunInstances" / "Error codes for the Amazon EC2 API": an AMI id that
    names no image is InvalidAMIID.NotFound. The world does that while its setting
    rejectUnknownImageIds is on (default) or moto's own AMI validation is
    (settings.ENABLE_AMI_VALIDATION, env MOTO_ENABLE_AMI_VALIDATION); with both off it is
    as lenient as stock moto: the instance is launched from the unknown id."""
    from moto import settings

    unknown = "ami-0abcdef1234567890"
    with pytest.raises(ClientError) as e:
        launch(ec2, net, ImageId=unknown, settle_after=False)
    assert code_of(e) == ("InvalidAMIID.NotFound", f"The image id '[{unknown}]' does not exist")

    config.update({"rejectUnknownImageIds": False})
    monkeypatch.setattr(settings, "ENABLE_AMI_VALIDATION", True)
    with pytest.raises(ClientError) as e:
        launch(ec2, net, ImageId=unknown, settle_after=False)
    assert code_of(e)[0] == "InvalidAMIID.NotFound"

    monkeypatch.setattr(settings, "ENABLE_AMI_VALIDATION", False)
    started = launch(ec2, net, ImageId=unknown)
    assert started["ImageId"] == unknown
    assert describe_instance(ec2, started["InstanceId"])["State"]["Name"] == "running"
    # Known images launch as always.
    assert launch(ec2, net)["ImageId"] == net["ami"]


def test_a_block_device_mapping_with_only_a_device_name_is_missing_a_parameter(ec2, net):
    """API Reference "BlockDeviceMapping": a mapping is an EBS volume (Ebs), an instance
    store volume (VirtualName) or the removal of a device (NoDevice); one with only a
    DeviceName is MissingParameter (the wording is moto's / EC2's "The request must
    contain the parameter ebs") and launches nothing."""
    before = len(ec2.describe_instances()["Reservations"])
    with pytest.raises(ClientError) as e:
        launch(ec2, net, settle_after=False, BlockDeviceMappings=[{"DeviceName": "/dev/sdg"}])
    assert code_of(e) == ("MissingParameter", "The request must contain the parameter ebs")
    with pytest.raises(ClientError) as e:
        launch(ec2, net, settle_after=False, BlockDeviceMappings=[
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10}}, {"DeviceName": "/dev/sdg"}])
    assert code_of(e)[0] == "MissingParameter"
    assert len(ec2.describe_instances()["Reservations"]) == before
    # Ebs, VirtualName and NoDevice mappings are all fine.
    started = launch(ec2, net, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10}},
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        {"DeviceName": "/dev/sdh", "NoDevice": ""},
    ])
    devices = [m["DeviceName"] for m in describe_instance(ec2, started["InstanceId"])["BlockDeviceMappings"]]
    assert "/dev/sdf" in devices and "/dev/sdg" not in devices
