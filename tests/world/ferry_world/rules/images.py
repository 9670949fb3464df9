"""AMIs across accounts (sharing rules 1, 5, 6, 7, 8 for images): which AMIs an account
sees and may launch (its own, public ones, and those whose launch permissions name its
account, organization or OU), who may read or change launch permissions (the owner),
what may be shared or made public, per-account tags, and the stored block device
mappings every image rule reads and writes; malformed AMI ids (InvalidAMIID.Malformed).

World extensions (not AWS APIs, documented as such):
- ModifyImageAttribute `ProductCodes=[...]` attaches product codes to an AMI you own (AWS
  documents the parameter as "not supported"; the world needs a way to make a
  Marketplace-like AMI).
- RegisterImage with `BlockDeviceMappings` referencing your own snapshots builds the AMI
  from those snapshots (stock moto ignores them), so tests can build AMIs whose
  snapshots are encrypted under a chosen key (create_image.py does it instead when the
  migration rules are installed).
"""
from __future__ import annotations

import re
from typing import Any

from .block_public_access import image_block_public_access_state
from .common import INSTALLED_GROUPS, find_in_region, find_visible, own_item, shared_by_others, wrap_get_tags
from .ebs_encryption import snapshot_under_aws_managed_key
from .errors import ERRORS, ec2_error
from .organizations import org_arn_of, ou_arns_of
from .snapshots import own_snapshot

IOPS_TYPES = ("io1", "io2", "gp3")  # EBS volume types with provisioned IOPS


# =================================================================================
# Finding an image; its stored block device mappings and snapshots
# =================================================================================
def find_image(backend: Any, image_id: str) -> Any:
    """The image with this id: the caller's own backend first, then any other account's
    backend in the same region (shared images; whether the caller may use it is
    for the sharing rules to say)."""
    return find_in_region(backend, "amis", image_id)


# EC2 UG "Resource IDs": `ami-` then 8 (IDs from before 2016) or 17 characters, lowercase
# hexadecimal (the pattern the AWS APIs give AMI ids, e.g. (ami-[0-9a-f]{8})|(ami-[0-9a-f]{17})).
AMI_ID = re.compile(r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$")


def malformed_ami_ids(backend: Any, ami_ids: list[str]) -> list[str]:
    """The ids that are not AMI ids. An image the world holds is never malformed: moto
    preloads a few fake AMIs whose ids are not hex (ami-ekslinux, ...)."""
    return [i for i in ami_ids if i and not AMI_ID.match(str(i)) and find_image(backend, str(i)) is None]


def _refuse_malformed_ami_ids(prev, param: str):
    def method(self):
        value = self._get_param(param)
        ids = list(value) if isinstance(value, list) else ([value] if value else [])
        bad = malformed_ami_ids(self.ec2_backend, ids)
        if bad:
            from moto.ec2.exceptions import MalformedAMIIdError

            raise MalformedAMIIdError(bad)  # 'Invalid id: "<first bad id>" (expecting "ami-...")'
        return prev(self)

    method.__name__ = getattr(prev, "__name__", param)
    return method


def malformed_ami_ids_are_refused() -> None:
    """EC2 API Reference "Error codes for the Amazon EC2 API" (InvalidAMIID.Malformed vs
    InvalidAMIID.NotFound) and EC2 User Guide "Resource IDs": an id that is not `ami-` +
    8 or 17 lowercase hex digits is InvalidAMIID.Malformed on every call naming an AMI
    (DescribeImages ImageIds, RunInstances ImageId, CopyImage SourceImageId,
    Describe/ModifyImageAttribute, DeregisterImage), before any lookup; a well-formed id
    that names no image stays InvalidAMIID.NotFound (the rules behind each call)."""
    from moto.ec2.responses.amis import AmisResponse
    from moto.ec2.responses.instances import InstanceResponse

    for cls, name, param in (
        (AmisResponse, "describe_images", "ImageIds"),
        (AmisResponse, "copy_image", "SourceImageId"),
        (AmisResponse, "describe_image_attribute", "ImageId"),
        (AmisResponse, "modify_image_attribute", "ImageId"),
        (AmisResponse, "deregister_image", "ImageId"),
        (InstanceResponse, "run_instances", "ImageId"),
    ):
        setattr(cls, name, _refuse_malformed_ami_ids(getattr(cls, name), param))


def find_visible_image(backend, image_id: str):
    """The AMI `image_id` as the backend's account sees it, or None."""
    return find_visible(backend, "amis", image_id, _shared_with)


def image_mappings(ami: Any) -> list[dict[str, Any]]:
    """The image's block device mappings as stored (dicts shaped like EC2's
    BlockDeviceMapping; keys starting with `ferry` are internal and never serialized)."""
    return ami.__dict__.get("_ferry_mappings") or []


def set_image_mappings(ami: Any, mappings: list[dict[str, Any]]) -> None:
    """Where an image keeps its block device mappings: the one slot every image rule
    (create_image.py, image_states.py, copy_image.py, this module) reads and writes."""
    ami.__dict__["_ferry_mappings"] = mappings


def image_block_device_mappings(ami) -> list[dict]:
    """The mappings DescribeImages shows (stored ones, else moto's)."""
    return list(ami.block_device_mappings)


def image_snapshots(ami) -> list:
    """The EBS snapshots behind an AMI (resolved in the owner's backend)."""
    out = []
    seen = set()
    for m in image_block_device_mappings(ami):
        snap_id = (m.get("Ebs") or {}).get("SnapshotId")
        if not snap_id or snap_id in seen:
            continue
        seen.add(snap_id)
        snap = ami.ec2_backend.snapshots.get(snap_id)
        if snap is not None:
            out.append(snap)
    return out


def snapshot_mapping(device: str, snap: Any, volume_type: str, size: int, delete: bool,
                      iops: int | None, throughput: int | None) -> dict[str, Any]:
    ebs: dict[str, Any] = {
        "DeleteOnTermination": bool(delete),
        "SnapshotId": snap.id,
        "VolumeSize": int(size),
        "VolumeType": volume_type,
        "Encrypted": bool(snap.encrypted),
    }
    if volume_type in IOPS_TYPES and iops:
        ebs["Iops"] = int(iops)
    if volume_type == "gp3" and throughput:
        ebs["Throughput"] = int(throughput)
    return {"DeviceName": device, "Ebs": ebs}


# =================================================================================
# Rule 1: launch permissions and who can see an AMI
# =================================================================================
def launch_permission_covers(permissions: list[dict[str, str]], account: str) -> bool:
    """Rule 1. EC2 UG "Share an AMI with specific AWS accounts" / "Share an AMI with
    organizations or OUs" / "Make your AMI public": an account may launch an AMI whose
    launch permissions name its account id, an organization or OU that contains it, or
    the group `all`."""
    for lp in permissions:
        if lp.get("Group") == "all" or lp.get("UserId") == account:
            return True
        if lp.get("OrganizationArn") and lp["OrganizationArn"] == org_arn_of(account):
            return True
        if lp.get("OrganizationalUnitArn") and lp["OrganizationalUnitArn"] in ou_arns_of(account):
            return True
    return False


def _explicitly_shared_with(permissions, account: str) -> bool:
    """DescribeImages ExecutableUsers=self: AMIs shared with the account itself, its
    organization or OU (not merely public)."""
    return launch_permission_covers([lp for lp in permissions if lp.get("Group") != "all"], account)


def owner_account(ami) -> str:
    return ami.ec2_backend.account_id


def _shared_with(ami, account: str) -> bool:
    """As `account` sees it: only the permissions that reached it (consistency.py)."""
    from .consistency import effective_launch_permissions

    return launch_permission_covers(effective_launch_permissions(ami), account)


def _foreign_images(backend) -> list:
    """Rule 1: AMIs of other accounts (same Region) the backend's account may launch."""
    return shared_by_others(backend, "amis", _shared_with)


def describe_images_visible(self, ami_ids=None, filters=None, exec_users=None, owners=None):
    """Rule 1. EC2 API Reference, DescribeImages: "The images available to you include
    public images, private images that you own, and private images owned by other AWS
    accounts for which you have explicit launch permissions." ImageIds that are not
    available to the caller -> InvalidAMIID.NotFound. ExecutableUsers: `self`/own id =
    AMIs shared with the account, its organization or OU; another id = AMIs shared with
    that id; `all` = public AMIs."""
    from moto.ec2.exceptions import InvalidAMIIdError, MalformedAMIIdError
    from moto.ec2.utils import generic_filter

    me = self.account_id
    images = list(self.amis.copy().values())
    images += [a for a in _foreign_images(self) if a.id not in self.amis]

    if ami_ids:
        malformed = malformed_ami_ids(self, ami_ids)
        if malformed:
            raise MalformedAMIIdError(malformed)
        images = [a for a in images if a.id in ami_ids]
        found = {a.id for a in images}
        missing = [i for i in ami_ids if i not in found and i not in self.deleted_amis]
        if missing:
            raise InvalidAMIIdError(missing)

    if exec_users:
        keep = []
        for ami in images:
            for user in exec_users:
                if user == "all":
                    ok = ami.is_public
                elif user in ("self", me):
                    ok = _explicitly_shared_with(ami.launch_permissions, me)
                else:
                    ok = any(lp.get("UserId") == user for lp in ami.launch_permissions)
                if ok:
                    keep.append(ami)
                    break
        images = keep

    if owners:
        owners = [me if o == "self" else o for o in owners]
        images = [a for a in images if a.owner_id in owners or a.owner_alias in owners]

    if filters:
        images = generic_filter(filters, images)
    return images


# =================================================================================
# ModifyImageAttribute / DescribeImageAttribute (rules 1, 5, 6, 7, 8)
# =================================================================================
_ORG_ARN = re.compile(r"^arn:aws[\w-]*:organizations::\d{12}:organization/o-[a-z0-9]{10,32}$")
_OU_ARN = re.compile(r"^arn:aws[\w-]*:organizations::\d{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$")


def own_image(backend, ami_id):
    from moto.ec2.exceptions import InvalidAMIIdError

    return own_item(backend, "amis", ami_id, _shared_with, "not_owner_image", lambda: InvalidAMIIdError(ami_id))


def validate_launch_permissions(permissions) -> None:
    """Rule 1 / aws-rules.md rule 9: UserId (12 digits), Group `all`,
    OrganizationArn, OrganizationalUnitArn."""
    from moto.ec2.exceptions import InvalidAMIAttributeItemValueError

    for lp in permissions:
        if "UserId" in lp and not (len(str(lp["UserId"])) == 12 and str(lp["UserId"]).isdigit()):
            raise InvalidAMIAttributeItemValueError("userId", lp["UserId"])
        if "Group" in lp and lp["Group"] != "all":
            raise InvalidAMIAttributeItemValueError("UserGroup", lp["Group"])
        if "OrganizationArn" in lp and not _ORG_ARN.match(str(lp["OrganizationArn"])):
            raise InvalidAMIAttributeItemValueError("organizationArn", lp["OrganizationArn"])
        if "OrganizationalUnitArn" in lp and not _OU_ARN.match(str(lp["OrganizationalUnitArn"])):
            raise InvalidAMIAttributeItemValueError("organizationalUnitArn", lp["OrganizationalUnitArn"])


def image_may_be_public(backend, ami) -> None:
    """Rules 5, 7, 8. EC2 UG "Make your AMI public": only AMIs without encrypted
    snapshots or product codes can be public, and not while block public access for
    AMIs is on in the account/Region."""
    if image_block_public_access_state(backend) == "block-new-sharing":
        raise ec2_error(*ERRORS["public_blocked"])
    if any(s.encrypted for s in image_snapshots(ami)):
        raise ec2_error(*ERRORS["public_encrypted"])
    if ami.product_codes:
        raise ec2_error(*ERRORS["public_product_codes"])


def image_may_be_shared(ami) -> None:
    """Rule 6. EC2 UG "Share an AMI with specific AWS accounts": AMIs with snapshots
    encrypted under the AWS managed key aws/ebs cannot be shared."""
    if any(snapshot_under_aws_managed_key(s) for s in image_snapshots(ami)):
        raise ec2_error(*ERRORS["share_aws_managed_ami"])


def _wrap_modify_image_attribute(prev):
    def modify_image_attribute(self, ami_id, launch_permissions_to_add, launch_permissions_to_remove, *args, **kwargs):
        """Rules 1, 5, 6, 7, 8: only the owner changes launch permissions; targets must be
        valid; public needs an unencrypted AMI without product codes and image block
        public access off; sharing needs no aws/ebs-encrypted snapshot."""
        ami = own_image(self, ami_id)
        add = [dict(lp) for lp in launch_permissions_to_add or []]
        remove = [dict(lp) for lp in launch_permissions_to_remove or []]
        validate_launch_permissions(add)
        validate_launch_permissions(remove)
        if any(lp.get("Group") == "all" for lp in add) and not ami.is_public:
            image_may_be_public(self, ami)
        if any(k in lp for lp in add for k in ("UserId", "OrganizationArn", "OrganizationalUnitArn")):
            image_may_be_shared(ami)
        return prev(self, ami_id, add, remove, *args, **kwargs)

    return modify_image_attribute


def modify_image_attribute_response(prev):
    """World extension: ProductCodes=[...] attaches product codes (owner only)."""

    def method(self):
        codes = self._get_param("ProductCodes") or []
        lp = self._get_param("LaunchPermission") or {}
        has_lp = bool(lp) or self._get_param("OperationType") or self._get_param("UserIds") or self._get_param("UserGroups")
        if codes:
            from moto.core.responses import EmptyResult

            self.error_on_dryrun()
            ami = own_image(self.ec2_backend, self._get_param("ImageId"))
            ami.product_codes = set(ami.product_codes or set()) | set(codes)
            if not has_lp:
                return EmptyResult()
        return prev(self)

    return method


def _wrap_describe_image_attribute(prev):
    def describe_image_attribute(self, ami_id, attribute_name):
        own_image(self, ami_id)
        return prev(self, ami_id, attribute_name)

    return describe_image_attribute


def shared_images_are_visible_and_only_their_owner_shares_them() -> None:
    """Rules 1, 5, 6, 7, 8 (describe_images_visible, _wrap_modify_image_attribute,
    _wrap_describe_image_attribute)."""
    from moto.ec2.models.amis import AmiBackend

    AmiBackend.describe_images = describe_images_visible
    AmiBackend.modify_image_attribute = _wrap_modify_image_attribute(AmiBackend.modify_image_attribute)
    AmiBackend.describe_image_attribute = _wrap_describe_image_attribute(AmiBackend.describe_image_attribute)


def _wrap_block_device_mappings(prev_prop):
    def fget(self):
        stored = self.__dict__.get("_ferry_mappings")
        maps = stored if stored is not None else prev_prop.fget(self)
        for m in maps:
            ebs = m.get("Ebs")
            if ebs and ebs.get("SnapshotId") and "Encrypted" not in ebs:
                snap = self.ec2_backend.snapshots.get(ebs["SnapshotId"])
                if snap is not None:
                    ebs["Encrypted"] = bool(snap.encrypted)
        return maps

    return property(fget)


def image_mappings_show_encryption_and_tags_are_per_account() -> None:
    """Mappings say whether each snapshot is encrypted; tags are per account (common.py)."""
    from moto.ec2.models.amis import Ami

    Ami.block_device_mappings = _wrap_block_device_mappings(Ami.block_device_mappings)
    Ami.get_tags = wrap_get_tags(Ami.get_tags)


def register_image_response(prev):
    """World extension: RegisterImage with BlockDeviceMappings that reference the
    caller's snapshots builds the AMI from them (stock moto ignores the mappings)."""

    def register_image(self):
        from moto.core.responses import ActionResult

        bdms = self._get_param("BlockDeviceMappings") or []
        if "migration" in INSTALLED_GROUPS or not any((m.get("Ebs") or {}).get("SnapshotId") for m in bdms):
            return prev(self)  # create_image.py builds images from snapshots itself
        self.error_on_dryrun()
        backend = self.ec2_backend
        snaps = []
        for m in bdms:
            sid = (m.get("Ebs") or {}).get("SnapshotId")
            if sid:
                snaps.append(own_snapshot(backend, sid))
        ami = backend.register_image(self._get_param("Name"), self._get_param("Description", ""))
        root = self._get_param("RootDeviceName") or bdms[0].get("DeviceName") or ami.root_device_name
        ami.root_device_name = root
        ami.root_device_type = "ebs"
        for attr, param in (("architecture", "Architecture"), ("virtualization_type", "VirtualizationType"), ("boot_mode", "BootMode")):
            if self._get_param(param):
                setattr(ami, attr, self._get_param(param))
        maps = []
        for m in bdms:
            entry = {"DeviceName": m.get("DeviceName")}
            ebs = m.get("Ebs")
            if ebs:
                snap = backend.snapshots.get(ebs.get("SnapshotId")) if ebs.get("SnapshotId") else None
                entry["Ebs"] = {
                    "SnapshotId": ebs.get("SnapshotId"),
                    "VolumeSize": int(ebs.get("VolumeSize") or (snap.volume.size if snap else 8)),
                    "DeleteOnTermination": bool(ebs.get("DeleteOnTermination", True)),
                    "VolumeType": ebs.get("VolumeType", "gp2"),
                }
            elif "VirtualName" in m:
                entry["VirtualName"] = m["VirtualName"]
            maps.append(entry)
        set_image_snapshots(backend, ami, maps, snaps)
        tags = self._parse_tag_specification().get("image", {})
        ami.add_tags(tags)
        return ActionResult({"ImageId": ami.id})

    return register_image


def set_image_snapshots(backend, ami, maps, snaps):
    auto = getattr(ami, "ebs_snapshot", None)
    set_image_mappings(ami, maps)
    if snaps:
        ami.ebs_snapshot = snaps[0]
        for s in snaps:
            if not s.from_ami:
                s.from_ami = ami.id
    if auto is not None and auto not in snaps and auto.id in backend.snapshots:
        backend.snapshots.pop(auto.id, None)


def product_codes_and_images_from_snapshots() -> None:
    """The two world extensions of the module docstring."""
    from moto.ec2.responses.amis import AmisResponse

    AmisResponse.modify_image_attribute = modify_image_attribute_response(AmisResponse.modify_image_attribute)
    AmisResponse.register_image = register_image_response(AmisResponse.register_image)
