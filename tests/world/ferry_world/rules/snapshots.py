"""EBS snapshots across accounts (sharing rules 1, 2, 6 for snapshots): which snapshots an
account sees and may restore (its own, public ones, and those with createVolumePermission
for it), who may change createVolumePermission (the owner), which snapshots may be
shared (not aws/ebs-encrypted ones, never encrypted ones publicly), and volumes restored
from shared or encrypted snapshots.
"""
from __future__ import annotations

from .common import find_in_region, find_visible, own_item, shared_by_others, wrap_get_tags
from .ebs_encryption import ebs_default_key_arn, snapshot_under_aws_managed_key
from .errors import ERRORS, ec2_error


def find_snapshot(backend, snapshot_id: str):
    """The snapshot with this id in any account of the region (whether the caller may
    use it is for the sharing rules to say), or None."""
    return find_in_region(backend, "snapshots", snapshot_id)


def find_visible_snapshot(backend, snapshot_id):
    """The snapshot `snapshot_id` as the backend's account sees it, or None."""
    return find_visible(backend, "snapshots", snapshot_id, snapshot_shared_with)


def _foreign_snapshots(backend) -> list:
    """Snapshots of other accounts (same Region) shared with the backend's account."""
    return shared_by_others(backend, "snapshots", snapshot_shared_with)


def _wrap_create_volume(prev):
    def create_volume(self, size, zone_name, snapshot_id=None, encrypted=False, kms_key_id=None, *args, **kwargs):
        """EBS UG "Encryption by default": with it enabled every new volume is encrypted
        with the default key. A volume restored from an encrypted snapshot keeps the
        snapshot's key unless another is given; a snapshot shared by another account
        (createVolumePermission) can be restored."""
        if getattr(self, "ebs_encryption_by_default", False) and not encrypted:
            encrypted = True
        snap = None
        foreign = False
        if snapshot_id:
            snap = find_visible_snapshot(self, snapshot_id)
            foreign = snap is not None and snapshot_id not in self.snapshots
            if snap is not None and snap.encrypted:
                encrypted = True
                if not kms_key_id and not foreign:
                    kms_key_id = snap.kms_key_id
        if encrypted and not kms_key_id:
            kms_key_id = ebs_default_key_arn(self)
        if foreign:
            vol = prev(self, size if size is not None else snap.volume.size, zone_name, None, encrypted, kms_key_id, *args, **kwargs)
            vol.snapshot_id = snapshot_id
            return vol
        return prev(self, size, zone_name, snapshot_id, encrypted, kms_key_id, *args, **kwargs)

    return create_volume


def snapshot_shared_with(snap, account: str) -> bool:
    """As `account` sees it: only the permissions that reached it (consistency.py)."""
    from .consistency import permission_in_effect

    if "all" in snap.create_volume_permission_groups and permission_in_effect(snap, ("Group", "all")):
        return True
    return account in snap.create_volume_permission_userids and permission_in_effect(snap, ("UserId", account))


def describe_snapshots_visible(self, snapshot_ids=None, filters=None, owner_ids=None, restorable_by=None):
    """Rule 1 (snapshots). EC2 API Reference, DescribeSnapshots: "The snapshots
    available to you include public snapshots, private snapshots that you own, and
    private snapshots owned by other AWS accounts for which you have explicit create
    volume permissions." OwnerIds (`self`, `amazon`, ids) and RestorableByUserIds
    (`self` = owned or explicitly shared, `all` = public, an id = your snapshots shared
    with it) narrow the result."""
    from moto.ec2.utils import generic_filter

    me = self.account_id
    snaps = list(self.snapshots.values())
    snaps += [s for s in _foreign_snapshots(self) if s.id not in self.snapshots]
    if snapshot_ids:
        snaps = [s for s in snaps if s.id in snapshot_ids]
        found = {s.id for s in snaps}
        missing = [i for i in snapshot_ids if i not in found]
        if missing:
            raise ec2_error("InvalidSnapshot.NotFound", f"The snapshot '{missing[0]}' does not exist.")
    if owner_ids:
        owners = [me if o == "self" else o for o in owner_ids]
        snaps = [s for s in snaps if s.owner_id in owners or ("amazon" in owners and s.owner_id != me and s.from_ami and s.ec2_backend.account_id == me)]
    if restorable_by:
        keep = []
        for s in snaps:
            for user in restorable_by:
                if user == "all":
                    ok = "all" in s.create_volume_permission_groups
                elif user in ("self", me):
                    ok = s.owner_id == me or me in s.create_volume_permission_userids
                else:
                    ok = s.owner_id == me and user in s.create_volume_permission_userids
                if ok:
                    keep.append(s)
                    break
        snaps = keep
    if filters:
        snaps = generic_filter(filters, snaps)
    return snaps


def own_snapshot(backend, snapshot_id):
    from moto.ec2.exceptions import InvalidSnapshotIdError

    return own_item(backend, "snapshots", snapshot_id, snapshot_shared_with, "not_owner_snapshot", InvalidSnapshotIdError)


def snapshot_sharing_allowed(snap, user_ids, groups) -> None:
    """Rule 6 / rule 2 for snapshots. EBS UG "Share an Amazon EBS snapshot": snapshots
    encrypted with the AWS managed key cannot be shared; encrypted snapshots cannot be
    made public."""
    from moto.ec2.exceptions import InvalidAMIAttributeItemValueError

    for uid in user_ids or []:
        if not (isinstance(uid, str) and len(uid) == 12 and uid.isdigit()):
            raise InvalidAMIAttributeItemValueError("userId", uid)
    if groups and "all" in groups and snap.encrypted:
        raise ec2_error(*ERRORS["public_encrypted_snapshot"])
    if user_ids and snapshot_under_aws_managed_key(snap):
        raise ec2_error(*ERRORS["share_aws_managed_snapshot"])


def _wrap_add_cvp(prev):
    def add_create_volume_permission(self, snapshot_id, user_ids, groups):
        snap = own_snapshot(self, snapshot_id)
        snapshot_sharing_allowed(snap, user_ids, groups)
        return prev(self, snapshot_id, user_ids=user_ids, groups=groups)

    return add_create_volume_permission


def _wrap_remove_cvp(prev):
    def remove_create_volume_permission(self, snapshot_id, user_ids=None, groups=None):
        own_snapshot(self, snapshot_id)
        return prev(self, snapshot_id, user_ids=user_ids, groups=groups or [])

    return remove_create_volume_permission


def _wrap_get_cvp(prev):
    def getter(self, snapshot_id):
        own_snapshot(self, snapshot_id)
        return prev(self, snapshot_id)

    return getter


def modify_snapshot_attribute_response(prev):
    """ModifySnapshotAttribute with CreateVolumePermission={Add:[..], Remove:[..]}
    (what boto3 and the Rust SDK send); stock moto only reads OperationType/UserIds."""

    def modify_snapshot_attribute(self):
        from moto.core.responses import EmptyResult

        cvp = self._get_param("CreateVolumePermission") or {}
        if not cvp:
            return prev(self)
        self.error_on_dryrun()
        snapshot_id = self._get_param("SnapshotId")
        for op in ("Add", "Remove"):
            entries = cvp.get(op) or []
            users = [e["UserId"] for e in entries if e.get("UserId")]
            groups = [e["Group"] for e in entries if e.get("Group")]
            if not users and not groups:
                continue
            if op == "Add":
                self.ec2_backend.add_create_volume_permission(snapshot_id, user_ids=users, groups=groups)
            else:
                self.ec2_backend.remove_create_volume_permission(snapshot_id, user_ids=users, groups=groups)
        return EmptyResult()

    return modify_snapshot_attribute


def describe_snapshots_response(self):
    from moto.core.responses import ActionResult

    snapshots = self.ec2_backend.describe_snapshots(
        snapshot_ids=self._get_param("SnapshotIds", []),
        filters=self._filters_from_querystring(),
        owner_ids=self._get_param("OwnerIds", []),
        restorable_by=self._get_param("RestorableByUserIds", []),
    )
    return ActionResult({"Snapshots": snapshots})


def shared_snapshots_are_visible_and_restorable() -> None:
    """Rules 1, 2, 6 for snapshots (the functions above): restoring, describing and
    sharing snapshots across accounts; tags per account."""
    from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    EBSBackend.create_volume = _wrap_create_volume(EBSBackend.create_volume)
    EBSBackend.describe_snapshots = describe_snapshots_visible
    EBSBackend.add_create_volume_permission = _wrap_add_cvp(EBSBackend.add_create_volume_permission)
    EBSBackend.remove_create_volume_permission = _wrap_remove_cvp(EBSBackend.remove_create_volume_permission)
    EBSBackend.get_create_volume_permission_groups = _wrap_get_cvp(EBSBackend.get_create_volume_permission_groups)
    EBSBackend.get_create_volume_permission_userids = _wrap_get_cvp(EBSBackend.get_create_volume_permission_userids)
    ElasticBlockStore.describe_snapshots = describe_snapshots_response
    ElasticBlockStore.modify_snapshot_attribute = modify_snapshot_attribute_response(
        ElasticBlockStore.modify_snapshot_attribute
    )
    Snapshot.get_tags = wrap_get_tags(Snapshot.get_tags)
