"""Placement groups (EC2 User Guide "Placement groups" / "Placement group rules and
limitations"; API Reference CreatePlacementGroup, DescribePlacementGroups,
DeletePlacementGroup, RunInstances `Placement`): moto 5.2.5 implements none of the calls
(HTTP 500 NotImplementedError), so the groups live here, per account and Region (on the
account's EC2 backend, gone with moto's reset). RunInstances into a group needs the group,
a type that supports its strategy, and, for a cluster group, the AZ of the group's other
instances; the instance then reports Placement.GroupName and GroupId.

Not modelled: the 500-groups quota, the seven running instances per AZ of a spread group
and the seven partitions per AZ of a partition group at launch, partition numbers
(Placement.PartitionNumber), shared groups (RAM), ModifyInstancePlacement, the
`precision-time` strategy, and the `deleted` state (a deleted group is gone at once).
"""
from __future__ import annotations

import re
from typing import Any

from .common import partition
from .errors import ERRORS, ec2_error

STRATEGIES = ("cluster", "spread", "partition")
MAX_PARTITIONS = 7  # EC2 UG: "a maximum of seven partitions per Availability Zone"
GROUP_ID = re.compile(r"pg-[0-9a-f]{8}([0-9a-f]{9})?\Z")
_SLOT = "_ferry_placement_groups"  # on each account/Region EC2 backend: {name: PlacementGroup}


class PlacementGroup:
    """One placement group of an account in a Region (API Reference "PlacementGroup")."""

    def __init__(self, backend: Any, name: str, strategy: str, partition_count: int | None,
                 spread_level: str | None):
        from moto.ec2.utils import random_id

        self.ec2_backend = backend
        self.id = random_id("pg")
        self.name = name
        self.strategy = strategy
        self.partition_count = partition_count
        self.spread_level = spread_level
        self.state = "available"
        # Service Authorization Reference (EC2 resource types): placement-group ARNs are by name.
        self.arn = (f"arn:{partition(backend.region_name)}:ec2:{backend.region_name}:"
                    f"{backend.account_id}:placement-group/{name}")

    def tags(self) -> list[dict[str, str]]:
        tags = self.ec2_backend.describe_tags(filters={"resource-id": [self.id]})
        return [{"Key": t["key"], "Value": t["value"]} for t in tags]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "GroupName": self.name, "State": self.state, "Strategy": self.strategy,
            "GroupId": self.id, "GroupArn": self.arn, "Tags": self.tags(),
        }
        if self.partition_count is not None:
            out["PartitionCount"] = self.partition_count
        if self.spread_level is not None:
            out["SpreadLevel"] = self.spread_level
        return out

    def matches(self, name: str, values: list[str]) -> bool:
        """DescribePlacementGroups Filter.N (API Reference): group-name, group-arn,
        spread-level, state, strategy, tag:<key>, tag-key; values may use * and ?."""
        from moto.ec2.utils import simple_aws_filter_to_re

        if name.startswith("tag:"):
            have = [t["Value"] for t in self.tags() if t["Key"] == name[4:]]
        elif name == "tag-key":
            have = [t["Key"] for t in self.tags()]
        else:
            attr = {"group-name": self.name, "group-arn": self.arn, "spread-level": self.spread_level,
                    "state": self.state, "strategy": self.strategy}
            if name not in attr:
                raise ec2_error("InvalidParameterValue", f"The filter '{name}' is invalid")
            have = [attr[name]] if attr[name] is not None else []
        patterns = [re.compile(simple_aws_filter_to_re(v)) for v in values]
        return any(p.match(h) for p in patterns for h in have)


def placement_groups(backend: Any) -> dict[str, PlacementGroup]:
    """The account's placement groups in the backend's Region, by name."""
    return backend.__dict__.setdefault(_SLOT, {})


def _error(which: str, /, **fmt: Any) -> Exception:
    code, message = ERRORS[which]
    return ec2_error(code, message.format(**fmt))


def find_group(backend: Any, name: str | None = None, group_id: str | None = None) -> PlacementGroup:
    """The account's group by name or by id: an unknown one is InvalidPlacementGroup.Unknown,
    an id not of the form pg-xxxxxxxxxxxxxxxxx InvalidPlacementGroupId.Malformed (API
    Reference "Error codes for the Amazon EC2 API")."""
    groups = placement_groups(backend)
    if group_id is not None:
        if not GROUP_ID.match(group_id):
            raise _error("placement_group_id_malformed", id=group_id)
        for group in groups.values():
            if group.id == group_id:
                return group
        raise _error("placement_group_unknown", name=group_id)
    group = groups.get(name or "")
    if group is None:
        raise _error("placement_group_unknown", name=name)
    return group


def group_instances(backend: Any, group: PlacementGroup) -> list[Any]:
    """The instances in the group: every one launched into it and not yet `terminated`
    (a stopped or shutting-down instance is still in its group: EC2 UG "Cluster placement
    groups": a stopped instance started again "still runs in the placement group";
    DeletePlacementGroup: "You must terminate all instances in the placement group")."""
    return [i for i in backend.all_instances()
            if getattr(i.placement, "group_id", None) == group.id and i.state != "terminated"]


# =================================================================================
# The calls
# =================================================================================
def create_placement_group(self: Any) -> Any:
    """API Reference "CreatePlacementGroup": GroupName (up to 255 ASCII characters, unique
    within the account for the Region, else InvalidPlacementGroup.Duplicate), Strategy
    cluster | spread | partition, PartitionCount ("Valid only when Strategy is set to
    partition"; EC2 UG: at most seven per AZ), SpreadLevel (spread only; "host" only for
    Outpost groups, which the world has none of; a spread group is at rack level),
    TagSpecifications (ResourceType placement-group). Answers the new group, `available`.
    Guesses (ERRORS): the API Reference marks GroupName and Strategy optional without
    saying what EC2 does without them; the world requires both (MissingParameter)."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import MissingParameterError

    self.error_on_dryrun()
    name = self._get_param("GroupName")
    strategy = self._get_param("Strategy")
    count = self._get_param("PartitionCount")
    spread_level = self._get_param("SpreadLevel")
    if not name:
        raise MissingParameterError("groupName")
    if not strategy:
        raise MissingParameterError("strategy")
    if len(name) > 255 or not name.isascii():
        raise _error("placement_group_bad_value", value=name, parameter="groupName",
                     why="Up to 255 ASCII characters")
    if strategy not in STRATEGIES:
        raise _error("placement_group_bad_value", value=strategy, parameter="strategy",
                     why="Expected: " + ", ".join(STRATEGIES))
    if count is not None:
        if strategy != "partition":
            raise _error("placement_group_combination", parameter="partitionCount", strategy="partition")
        if not 1 <= int(count) <= MAX_PARTITIONS:
            raise _error("placement_group_bad_value", value=count, parameter="partitionCount",
                         why=f"Partition count must be between 1 and {MAX_PARTITIONS}")
        count = int(count)
    if spread_level is not None:
        if strategy != "spread":
            raise _error("placement_group_combination", parameter="spreadLevel", strategy="spread")
        if spread_level != "rack":
            raise _error("placement_group_bad_value", value=spread_level, parameter="spreadLevel",
                         why="Only Outpost placement groups can be spread across hosts")
    elif strategy == "spread":
        spread_level = "rack"
    tags = (self._parse_tag_specification(expected_type="placement-group") or {}).get("placement-group", {})
    backend = self.ec2_backend
    groups = placement_groups(backend)
    if name in groups:
        raise _error("placement_group_duplicate", name=name)
    group = PlacementGroup(backend, name, strategy, count, spread_level)
    groups[name] = group
    if tags:
        backend.create_tags([group.id], tags)
    return ActionResult({"PlacementGroup": group.describe()})


def describe_placement_groups(self: Any) -> Any:
    """API Reference "DescribePlacementGroups": the account's groups, or those named
    (GroupNames: an unknown name is InvalidPlacementGroup.Unknown) or given by id
    (GroupIds), narrowed by Filter.N (PlacementGroup.matches)."""
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    backend = self.ec2_backend
    names = self._get_param("GroupNames") or []
    ids = self._get_param("GroupIds") or []
    if names or ids:
        chosen = [find_group(backend, name=n) for n in names] + [find_group(backend, group_id=i) for i in ids]
    else:
        chosen = list(placement_groups(backend).values())
    unique = list({g.id: g for g in chosen}.values())  # a group named twice is listed once
    for name, values in self._filters_from_querystring().items():
        unique = [g for g in unique if g.matches(name, values)]
    return ActionResult({"PlacementGroups": [g.describe() for g in unique]})


def delete_placement_group(self: Any) -> Any:
    """API Reference "DeletePlacementGroup": "You must terminate all instances in the
    placement group before you can delete the placement group" (else
    InvalidPlacementGroup.InUse, "ensure that its instances have been terminated"); an
    unknown name is InvalidPlacementGroup.Unknown. The group and its tags are gone."""
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    backend = self.ec2_backend
    group = find_group(backend, name=self._get_param("GroupName"))
    if group_instances(backend, group):
        raise _error("placement_group_in_use", name=group.name)
    placement_groups(backend).pop(group.name, None)
    backend.tags.pop(group.id, None)
    return ActionResult({})


# =================================================================================
# RunInstances into a group
# =================================================================================
def launch_group(backend: Any, params: dict[str, Any], kwargs: dict[str, Any]) -> PlacementGroup | None:
    """The group a RunInstances request launches into (None: none), refusing the launch
    before anything is made when:
    - Placement names both GroupName and GroupId (API Reference "Placement": "you can
      specify GroupId or GroupName, but not both"; InvalidParameterCombination, our wording);
    - the group is unknown (InvalidPlacementGroup.Unknown);
    - the instance type does not support the group's strategy (DescribeInstanceTypes
      PlacementGroupInfo.SupportedStrategies; EC2 UG: cluster groups take current
      generation types except burstable ones (T2, T3, ...) and Mac1): the code and
      message are those EC2 answers in users' reports ("Cluster placement groups are not
      supported by the 't3.xlarge' instance type. ..."), not documented;
    - the group is a cluster group whose instances are in another AZ (EC2 UG: "A cluster
      placement group can't span multiple Availability Zones"). The docs name no error for
      this; the world answers InvalidPlacementGroup.InUse, "The placement group 'X' is in
      use in another availability zone: us-east-1a", as EC2 does in users' reports: a
      guess (ERRORS "placement_group_other_az")."""
    from .run_instances import _launch_zone, _type_info

    placement = params.get("Placement") or {}
    name, group_id = placement.get("GroupName"), placement.get("GroupId")
    if not name and not group_id:
        return None
    if name and group_id:
        raise ec2_error("InvalidParameterCombination",
                        "The parameter groupName cannot be used with the parameter groupId")
    group = find_group(backend, name=name or None, group_id=group_id or None)
    instance_type = kwargs.get("instance_type") or "m1.small"
    supported = (_type_info(instance_type).get("PlacementGroupInfo") or {}).get("SupportedStrategies")
    if supported is not None and group.strategy not in supported:
        raise _error("placement_group_type", strategy=group.strategy.capitalize(), type=instance_type)
    if group.strategy == "cluster":
        az = _launch_zone(backend, kwargs)[0]
        zones = sorted({i.placement.zone for i in group_instances(backend, group)})
        if zones and az not in zones:
            raise _error("placement_group_other_az", name=group.name, zone=zones[0])
    return group


def _wrap_run_instances(prev):
    def run_instances(self: Any, image_id: str, count: int, user_data: Any,
                      security_group_names: list[str], **kwargs: Any) -> Any:
        from .run_instances import _request

        params = getattr(_request, "run", None) or {}
        group = launch_group(self, params, kwargs)
        reservation = prev(self, image_id, count, user_data, security_group_names, **kwargs)
        for instance in reservation.instances:
            # What DescribeInstances serializes as Placement.GroupName / GroupId.
            instance.placement.group_name = group.name if group is not None else ""
            instance.placement.group_id = group.id if group is not None else None
        return reservation

    return run_instances


def placement_groups_exist_and_cluster_groups_stay_in_one_az() -> None:
    """EC2 UG "Placement groups" and the API Reference calls above: CreatePlacementGroup,
    DescribePlacementGroups and DeletePlacementGroup (per account and Region); RunInstances
    with Placement.GroupName or GroupId launches into an existing group only, with a type
    that supports its strategy, and into a cluster group only in the AZ of the group's
    instances (launch_group); spread and partition groups span AZs. The instance reports
    the group in DescribeInstances (Placement.GroupName, Placement.GroupId; filter
    `placement-group-name`), and DescribeTags knows `pg-` ids as `placement-group`.
    Installed after the other RunInstances rules of the migration group: its check runs
    before theirs (the order AWS checks in is not documented)."""
    from moto.ec2 import utils as ec2_utils
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.responses import EC2Response

    EC2Response.create_placement_group = create_placement_group
    EC2Response.describe_placement_groups = describe_placement_groups
    EC2Response.delete_placement_group = delete_placement_group
    InstanceBackend.run_instances = _wrap_run_instances(InstanceBackend.run_instances)
    ec2_utils.EC2_RESOURCE_TO_PREFIX.setdefault("placement-group", "pg")
    ec2_utils.EC2_PREFIX_TO_RESOURCE.setdefault("pg", "placement-group")
    ec2_utils.filter_dict_attribute_mapping.setdefault("placement-group-name", "placement.group_name")
