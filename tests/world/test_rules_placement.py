"""The placement-group rule (ferry_world/rules/placement_groups.py), driven through boto3
against a moto server that has only the migration group installed: Create/Describe/
DeletePlacementGroup(s), RunInstances into a group, and a cluster group that holds the
instances of one Availability Zone only."""
import re

import pytest
from botocore.exceptions import ClientError

from ferry_world.engine import clock, config
from worldtest import aws_client, reset_world

WORLD_RULES = ("migration",)
DAY = 86400
SLOW_WORLD = {  # as in test_rules_migration.py: durations are days, tests jump over them
    "instancePendingSeconds": DAY,
    "instanceStoppingSeconds": DAY,
    "instanceShuttingDownSeconds": DAY,
    "statusInitializingSeconds": 2 * DAY,
    "describeNotFoundAfterCreateSeconds": 3600,
}
CLUSTER_TYPE = "c5.large"  # DescribeInstanceTypes: PlacementGroupInfo lists "cluster"


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


def settle(seconds=3 * DAY):
    clock.advance(seconds)


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


@pytest.fixture
def net(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return {"vpc": vpc, "a": a, "b": b, "ami": base}


def launch(ec2, net, subnet="a", instance_type=CLUSTER_TYPE, settle_after=True, **kw):
    args = dict(ImageId=net["ami"], MinCount=1, MaxCount=1, InstanceType=instance_type, SubnetId=net[subnet])
    args.update(kw)
    instance = ec2.run_instances(**args)["Instances"][0]
    if settle_after:
        settle()
    return instance


def describe_instance(ec2, instance_id):
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def instance_count(ec2):
    return sum(len(r["Instances"]) for r in ec2.describe_instances()["Reservations"])


# ----------------------------------------------------------- the group itself


def test_create_placement_group_returns_the_group(ec2):
    group = ec2.create_placement_group(
        GroupName="hpc", Strategy="cluster",
        TagSpecifications=[{"ResourceType": "placement-group", "Tags": [{"Key": "team", "Value": "ml"}]}],
    )["PlacementGroup"]
    assert re.fullmatch(r"pg-[0-9a-f]{17}", group["GroupId"])
    assert group["GroupName"] == "hpc" and group["Strategy"] == "cluster" and group["State"] == "available"
    assert group["GroupArn"] == "arn:aws:ec2:us-east-1:123456789012:placement-group/hpc"
    assert group["Tags"] == [{"Key": "team", "Value": "ml"}]

    spread = ec2.create_placement_group(GroupName="web", Strategy="spread")["PlacementGroup"]
    assert spread["SpreadLevel"] == "rack"
    parts = ec2.create_placement_group(GroupName="hdfs", Strategy="partition", PartitionCount=3)["PlacementGroup"]
    assert parts["PartitionCount"] == 3


def test_describe_placement_groups_by_name_id_and_filters(ec2):
    hpc = ec2.create_placement_group(
        GroupName="hpc", Strategy="cluster",
        TagSpecifications=[{"ResourceType": "placement-group", "Tags": [{"Key": "team", "Value": "ml"}]}],
    )["PlacementGroup"]
    web = ec2.create_placement_group(GroupName="web", Strategy="spread")["PlacementGroup"]

    by_name = ec2.describe_placement_groups(GroupNames=["hpc"])["PlacementGroups"]
    assert [(g["GroupName"], g["GroupId"], g["Strategy"]) for g in by_name] == [("hpc", hpc["GroupId"], "cluster")]
    assert by_name[0]["Tags"] == [{"Key": "team", "Value": "ml"}]
    by_id = ec2.describe_placement_groups(GroupIds=[web["GroupId"]])["PlacementGroups"]
    assert [g["GroupName"] for g in by_id] == ["web"]
    assert {g["GroupName"] for g in ec2.describe_placement_groups()["PlacementGroups"]} == {"hpc", "web"}

    def names(*filters):
        groups = ec2.describe_placement_groups(Filters=[{"Name": n, "Values": v} for n, v in filters])
        return sorted(g["GroupName"] for g in groups["PlacementGroups"])

    assert names(("strategy", ["spread"])) == ["web"]
    assert names(("group-name", ["h*"])) == ["hpc"]
    assert names(("state", ["available"])) == ["hpc", "web"]
    assert names(("tag:team", ["ml"])) == ["hpc"]
    assert names(("tag-key", ["team"])) == ["hpc"]
    assert names(("group-arn", [web["GroupArn"]])) == ["web"]
    assert names(("strategy", ["cluster"]), ("state", ["deleted"])) == []
    # The group's tags are the account's tags of a placement-group resource.
    tags = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["placement-group"]}])["Tags"]
    assert [(t["ResourceId"], t["Key"]) for t in tags] == [(hpc["GroupId"], "team")]


def test_group_names_are_unique_per_account_and_region(world_url, ec2):
    ec2.create_placement_group(GroupName="hpc", Strategy="cluster")
    with pytest.raises(ClientError) as e:
        ec2.create_placement_group(GroupName="hpc", Strategy="spread")
    assert code_of(e)[0] == "InvalidPlacementGroup.Duplicate"
    # Another account, or another Region, may use the same name.
    other = aws_client(world_url, account="111122223333")
    assert other.create_placement_group(GroupName="hpc", Strategy="cluster")["PlacementGroup"]["GroupArn"] == (
        "arn:aws:ec2:us-east-1:111122223333:placement-group/hpc")
    west = aws_client(world_url, region="us-west-2")
    assert west.create_placement_group(GroupName="hpc", Strategy="spread")["PlacementGroup"]["Strategy"] == "spread"
    # ... and sees only its own groups.
    assert [g["Strategy"] for g in west.describe_placement_groups()["PlacementGroups"]] == ["spread"]
    with pytest.raises(ClientError) as e:
        other.describe_placement_groups(GroupIds=[
            ec2.describe_placement_groups(GroupNames=["hpc"])["PlacementGroups"][0]["GroupId"]])
    assert code_of(e)[0] == "InvalidPlacementGroup.Unknown"


def test_unknown_and_malformed_groups_are_refused(ec2):
    with pytest.raises(ClientError) as e:
        ec2.describe_placement_groups(GroupNames=["nope"])
    assert code_of(e)[0] == "InvalidPlacementGroup.Unknown" and "nope" in code_of(e)[1]
    with pytest.raises(ClientError) as e:
        ec2.describe_placement_groups(GroupIds=["pg-0123456789abcdef0"])
    assert code_of(e)[0] == "InvalidPlacementGroup.Unknown"
    with pytest.raises(ClientError) as e:
        ec2.describe_placement_groups(GroupIds=["pg-xyz"])
    assert code_of(e)[0] == "InvalidPlacementGroupId.Malformed"
    with pytest.raises(ClientError) as e:
        ec2.delete_placement_group(GroupName="nope")
    assert code_of(e)[0] == "InvalidPlacementGroup.Unknown"


def test_create_checks_its_parameters(ec2):
    for kwargs, code in (
        ({"GroupName": "x", "Strategy": "clustered"}, "InvalidParameterValue"),
        ({"GroupName": "x", "Strategy": "partition", "PartitionCount": 8}, "InvalidParameterValue"),  # max 7
        ({"GroupName": "x", "Strategy": "cluster", "PartitionCount": 2}, "InvalidParameterCombination"),
        ({"GroupName": "x", "Strategy": "cluster", "SpreadLevel": "rack"}, "InvalidParameterCombination"),
        ({"GroupName": "x", "Strategy": "spread", "SpreadLevel": "host"}, "InvalidParameterValue"),  # Outposts only
        ({"GroupName": "x" * 256, "Strategy": "spread"}, "InvalidParameterValue"),  # up to 255 characters
        ({"GroupName": "x"}, "MissingParameter"),
    ):
        with pytest.raises(ClientError) as e:
            ec2.create_placement_group(**kwargs)
        assert code_of(e)[0] == code, kwargs
    with pytest.raises(ClientError) as e:
        ec2.create_placement_group(GroupName="x", Strategy="cluster", DryRun=True)
    assert code_of(e)[0] == "DryRunOperation"
    assert ec2.describe_placement_groups()["PlacementGroups"] == []


def test_delete_refuses_a_group_in_use_until_its_instances_are_terminated(ec2, net):
    ec2.create_placement_group(GroupName="hpc", Strategy="cluster")
    iid = launch(ec2, net, Placement={"GroupName": "hpc"})["InstanceId"]
    ec2.stop_instances(InstanceIds=[iid])
    settle()
    with pytest.raises(ClientError) as e:  # a stopped instance is still in the group
        ec2.delete_placement_group(GroupName="hpc")
    assert code_of(e)[0] == "InvalidPlacementGroup.InUse"
    ec2.terminate_instances(InstanceIds=[iid])
    with pytest.raises(ClientError) as e:  # shutting-down: not terminated yet
        ec2.delete_placement_group(GroupName="hpc")
    assert code_of(e)[0] == "InvalidPlacementGroup.InUse"
    settle()
    ec2.delete_placement_group(GroupName="hpc")
    with pytest.raises(ClientError) as e:
        ec2.describe_placement_groups(GroupNames=["hpc"])
    assert code_of(e)[0] == "InvalidPlacementGroup.Unknown"
    ec2.create_placement_group(GroupName="hpc", Strategy="spread")  # the name is free again


# ----------------------------------------------------- instances in a group


def test_an_instance_launched_into_a_group_reports_it(ec2, net):
    group = ec2.create_placement_group(GroupName="web", Strategy="spread")["PlacementGroup"]
    by_name = launch(ec2, net, Placement={"GroupName": "web"})
    assert by_name["Placement"]["GroupName"] == "web"
    inst = describe_instance(ec2, by_name["InstanceId"])
    assert inst["Placement"]["GroupName"] == "web" and inst["Placement"]["GroupId"] == group["GroupId"]
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1a"
    by_id = launch(ec2, net, subnet="b", Placement={"GroupId": group["GroupId"]})
    inst = describe_instance(ec2, by_id["InstanceId"])
    assert inst["Placement"]["GroupName"] == "web" and inst["Placement"]["GroupId"] == group["GroupId"]
    found = ec2.describe_instances(Filters=[{"Name": "placement-group-name", "Values": ["web"]}])["Reservations"]
    assert sorted(i["InstanceId"] for r in found for i in r["Instances"]) == sorted(
        [by_name["InstanceId"], by_id["InstanceId"]])
    # Without a group: no group.
    plain = describe_instance(ec2, launch(ec2, net)["InstanceId"])
    assert not plain["Placement"].get("GroupName") and not plain["Placement"].get("GroupId")


def test_launch_into_an_unknown_group_is_refused_and_launches_nothing(ec2, net):
    before = instance_count(ec2)
    for placement in ({"GroupName": "nope"}, {"GroupId": "pg-0123456789abcdef0"}):
        with pytest.raises(ClientError) as e:
            launch(ec2, net, Placement=placement, settle_after=False)
        assert code_of(e)[0] == "InvalidPlacementGroup.Unknown", placement
    group = ec2.create_placement_group(GroupName="web", Strategy="spread")["PlacementGroup"]
    with pytest.raises(ClientError) as e:  # "GroupId or GroupName, but not both"
        launch(ec2, net, Placement={"GroupName": "web", "GroupId": group["GroupId"]}, settle_after=False)
    assert code_of(e)[0] == "InvalidParameterCombination"
    assert instance_count(ec2) == before


def test_a_cluster_group_holds_the_instances_of_one_availability_zone(ec2, net):
    ec2.create_placement_group(GroupName="hpc", Strategy="cluster")
    first = launch(ec2, net, subnet="a", Placement={"GroupName": "hpc"})["InstanceId"]
    launch(ec2, net, subnet="a", Placement={"GroupName": "hpc"})  # same AZ: fine
    before = instance_count(ec2)
    with pytest.raises(ClientError) as e:
        launch(ec2, net, subnet="b", Placement={"GroupName": "hpc"}, settle_after=False)
    code, message = code_of(e)
    assert code == "InvalidPlacementGroup.InUse"
    assert "hpc" in message and "us-east-1a" in message
    assert instance_count(ec2) == before
    # An AZ named in Placement (no subnet) counts the same way.
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=net["ami"], MinCount=1, MaxCount=1, InstanceType=CLUSTER_TYPE,
                          Placement={"GroupName": "hpc", "AvailabilityZone": "us-east-1b"})
    assert code_of(e)[0] == "InvalidPlacementGroup.InUse"
    # Once every instance of the group is terminated, the group may be used in another AZ.
    ids = [i["InstanceId"] for r in ec2.describe_instances(
        Filters=[{"Name": "placement-group-name", "Values": ["hpc"]}])["Reservations"] for i in r["Instances"]]
    assert first in ids
    ec2.terminate_instances(InstanceIds=ids)
    settle()
    moved = launch(ec2, net, subnet="b", Placement={"GroupName": "hpc"})["InstanceId"]
    assert describe_instance(ec2, moved)["Placement"]["AvailabilityZone"] == "us-east-1b"


def test_a_cluster_group_takes_only_the_types_that_support_it(ec2, net):
    ec2.create_placement_group(GroupName="hpc", Strategy="cluster")
    ec2.create_placement_group(GroupName="web", Strategy="spread")
    with pytest.raises(ClientError) as e:
        launch(ec2, net, instance_type="t3.micro", Placement={"GroupName": "hpc"}, settle_after=False)
    code, message = code_of(e)
    assert code == "InvalidParameterCombination" and "t3.micro" in message
    launch(ec2, net, instance_type="t3.micro", Placement={"GroupName": "web"})  # spread: fine


def test_spread_and_partition_groups_span_availability_zones(ec2, net):
    ec2.create_placement_group(GroupName="web", Strategy="spread")
    ec2.create_placement_group(GroupName="hdfs", Strategy="partition", PartitionCount=2)
    for group in ("web", "hdfs"):
        a = launch(ec2, net, subnet="a", instance_type="t3.micro", Placement={"GroupName": group})["InstanceId"]
        b = launch(ec2, net, subnet="b", instance_type="t3.micro", Placement={"GroupName": group})["InstanceId"]
        zones = {describe_instance(ec2, i)["Placement"]["AvailabilityZone"] for i in (a, b)}
        assert zones == {"us-east-1a", "us-east-1b"}, group
