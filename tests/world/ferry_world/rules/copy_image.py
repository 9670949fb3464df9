"""CopyImage across accounts (sharing rule 3, with rules 4 and 8): the copy needs the AMI
shared with the caller and read access (createVolumePermission) to every snapshot, no
billing product codes, and use of the source and destination KMS keys; it belongs to the
caller with snapshots of its own, encrypted as EC2 documents; tags only with
CopyImageTags; idempotent by ClientToken. A copy refused for its keys becomes `failed`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import threading

from ..engine import config
from .common import call_with_request, caller_of, ec2_backends, with_client_token
from .ebs_encryption import ebs_default_key_arn, snapshot_key
from .errors import ERRORS, ec2_error
from .images import (
    find_visible_image,
    image_block_device_mappings,
    image_snapshots,
    owner_account,
    set_image_snapshots,
)
from .kms import ec2_key_use_problem, resolve_key
from .snapshots import snapshot_shared_with

_request = threading.local()  # the CopyImage request this thread serves: opts and new id
_copy_lock = threading.RLock()  # one CopyImage ClientToken at a time


def copy_image_response(prev):
    """Reads the CopyImage parameters stock moto ignores (Encrypted, KmsKeyId,
    ClientToken, CopyImageTags, TagSpecifications). Rule 3 idempotency: EC2 API
    Reference, "Ensuring idempotency": the same ClientToken returns the same ImageId
    and makes no second copy; the same token with other parameters ->
    IdempotentParameterMismatch."""

    def copy_image(self):
        from moto.core.responses import ActionResult

        opts = {
            "source_image_id": self._get_param("SourceImageId"),
            "source_region": self._get_param("SourceRegion"),
            "name": self._get_param("Name"),
            "description": self._get_param("Description"),
            "encrypted": bool(self._get_param("Encrypted")),
            "kms_key_id": self._get_param("KmsKeyId"),
            "copy_image_tags": bool(self._get_param("CopyImageTags")),
            "tags": self._parse_tag_specification(),
        }
        digest = hashlib.sha256(json.dumps(opts, sort_keys=True, default=str).encode()).hexdigest()

        return with_client_token(
            self.ec2_backend, "ferry_copy_tokens", self._get_param("ClientToken"), digest, _copy_lock,
            lambda: ec2_error(*ERRORS["idempotent_mismatch"]),
            lambda image_id: ActionResult({"ImageId": image_id}),
            lambda: call_with_request(_request, "copy", opts, "last_copy", lambda: prev(self)),
        )

    return copy_image


def copy_allowed(backend, source, snaps) -> None:
    """Rules 3 and 8. EC2 UG "Copy an AMI" (cross-account copying): the AMI must be
    shared with you and the owner must grant read access to every backing snapshot
    (createVolumePermission for your account, or public); AMIs with billing product
    codes shared by another account cannot be copied."""
    me = backend.account_id
    if owner_account(source) == me:
        return
    if source.product_codes:
        raise ec2_error(*ERRORS["copy_product_codes"])
    for snap in snaps:
        if not snapshot_shared_with(snap, me):
            raise ec2_error(*ERRORS["copy_storage"])


def copy_kms_problem(backend, source, snaps, dest_key, opts):
    """Rule 4 (copy). EC2 UG "Copy an AMI" / EBS UG "Share the KMS key": copying an AMI
    with encrypted snapshots needs use of every source key, and of the destination
    key when re-encrypting."""
    me = backend.account_id
    region = backend.region_name
    principal = caller_of(me, region)
    for snap in snaps:
        if snap.encrypted:
            problem = ec2_key_use_problem(
                snapshot_key(snap), me, principal, region, config.get("kmsCopySourceOperations"), "copy"
            )
            if problem:
                return problem
    if dest_key is not None or opts.get("kms_key_id"):
        return ec2_key_use_problem(
            dest_key, me, principal, region, config.get("kmsCopyDestinationOperations"), "copy"
        )
    return None


def _wrap_copy_image(prev):
    def copy_image(self, source_image_id, source_region, name=None, description=None):
        """Rule 3. The copy belongs to the caller, gets new snapshots in the caller's
        account, no launch permissions, tags only with CopyImageTags (never other
        accounts' tags: EC2 API Reference, CopyImage CopyImageTags), and is encrypted
        under KmsKeyId / the caller's default EBS key when Encrypted=true or when the
        source is encrypted and owned by another account."""
        from moto.ec2.exceptions import InvalidAMIIdError, InvalidParameterDependency

        opts = getattr(_request, "copy", None) or {}
        source_region = source_region or self.region_name
        view = ec2_backends()[self.account_id][source_region]
        source = find_visible_image(view, source_image_id)
        if source is None:
            raise InvalidAMIIdError(source_image_id)
        if opts.get("kms_key_id") and not opts.get("encrypted"):
            raise InvalidParameterDependency("KmsKeyId", "Encrypted")
        snaps = image_snapshots(source)
        copy_allowed(self, source, snaps)
        cross = owner_account(source) != self.account_id
        dest_key = None
        if opts.get("kms_key_id"):
            dest_key = resolve_key(opts["kms_key_id"], self.account_id, self.region_name)
            if dest_key is not None and dest_key.region != self.region_name:
                # EC2 API Reference, CopyImage, KmsKeyId: "The specified KMS key must
                # exist in the destination Region", and "Amazon Web Services
                # authenticates the KMS key asynchronously ... the action can appear to
                # complete, but eventually fails" (EC2 UG "Copy an AMI": a copy to
                # another Region is encrypted under a key of that Region). A key ARN of
                # another Region (the source's, say) is no key here: the copy fails.
                dest_key = None
        problem = copy_kms_problem(self, source, snaps, dest_key, opts)

        new = prev(self, source_image_id, source_region, name, description)
        new.launch_permissions = []
        _rekey_copy_snapshots(self, new, source, snaps, opts, dest_key, cross, problem)

        if opts.get("copy_image_tags"):
            if cross:
                vb = self if source_region == self.region_name else ec2_backends()[self.account_id][source_region]
                tags = vb.describe_tags(filters={"resource-id": [source.id]})
            else:
                tags = source.ec2_backend.describe_tags(filters={"resource-id": [source.id]})
            for t in tags:
                key = t.get("Key", t.get("key"))
                if key and not key.startswith("aws:"):
                    new.add_tag(key, t.get("Value", t.get("value")))
        tag_specs = opts.get("tags") or {}
        new.add_tags(tag_specs.get("image", {}))
        for s in image_snapshots(new):
            s.add_tags(tag_specs.get("snapshot", {}))

        if problem:
            mark_image_failed(new, problem)
        _request.last_copy = new.id
        return new

    return copy_image


def _copy_key_arn(backend, src, opts, dest_key, cross):
    """EC2 UG "Copy an AMI" (encryption and copying): Encrypted + KmsKeyId -> that key;
    Encrypted alone, or an encrypted AMI of another account -> the caller's default EBS
    key; an encrypted AMI of the caller's own -> the same key."""
    encrypted = bool(src.encrypted or opts.get("encrypted"))
    if not encrypted:
        return False, None
    if dest_key is not None:
        return True, dest_key.arn
    if opts.get("kms_key_id"):
        return True, opts["kms_key_id"]
    if src.encrypted and not cross and not opts.get("encrypted"):
        return True, src.kms_key_id or ebs_default_key_arn(backend)
    return True, ebs_default_key_arn(backend)


def _rekey_copy_snapshots(backend, new, source, snaps, opts, dest_key, cross, problem):
    """Give the copy one snapshot of its own per source snapshot, encrypted as
    _copy_key_arn says. image_states.py (when the migration rules are installed) has
    already made them (with pending timing): they are re-keyed in place; otherwise they
    are made here."""
    from moto.ec2.models.elastic_block_store import Snapshot
    from moto.ec2.utils import random_snapshot_id

    by_id = {s.id: s for s in snaps}
    src_maps = [m for m in image_block_device_mappings(source)]
    cur_maps = [copy.deepcopy(m) for m in image_block_device_mappings(new)]
    cur_snaps = [backend.snapshots.get((m.get("Ebs") or {}).get("SnapshotId")) for m in cur_maps]
    src_with_snap = [m for m in src_maps if by_id.get((m.get("Ebs") or {}).get("SnapshotId"))]
    reuse = (
        len(cur_maps) == len(src_maps)
        and all(c is not None for c, m in zip(cur_snaps, cur_maps) if (m.get("Ebs") or {}).get("SnapshotId"))
        and sum(1 for c in cur_snaps if c is not None) == len(src_with_snap)
    )
    maps, new_snaps = [], []
    for i, m in enumerate(src_maps):
        entry = copy.deepcopy(cur_maps[i]) if reuse else copy.deepcopy(m)
        ebs = entry.get("Ebs") or {}
        src = by_id.get((m.get("Ebs") or {}).get("SnapshotId"))
        if src is not None:
            encrypted, key_arn = _copy_key_arn(backend, src, opts, dest_key, cross)
            snap = cur_snaps[i] if reuse else None
            if snap is None:
                snap = Snapshot(
                    backend,
                    random_snapshot_id(),
                    volume=src.volume,
                    description=f"Copied for DestinationAmi {new.id} from SourceAmi {source.id} for SourceSnapshot {src.id}",
                    encrypted=encrypted,
                    kms_key_id=key_arn,
                    owner_id=backend.account_id,
                    from_ami=new.id,
                )
                backend.snapshots[snap.id] = snap
            snap.encrypted = encrypted
            snap.kms_key_id = key_arn
            snap.owner_id = backend.account_id
            new_snaps.append(snap)
            ebs["SnapshotId"] = snap.id
            ebs["Encrypted"] = encrypted
            ebs.pop("KmsKeyId", None)
            entry["Ebs"] = ebs
        maps.append(entry)
    set_image_snapshots(backend, new, maps, new_snaps)
    if problem:
        for snap in new_snaps:
            snap.status = "error"


def mark_image_failed(ami, problem) -> None:
    """The copy settles as `failed` with the ERRORS[problem] StateReason: after its
    pending time when image_states.py times images (see _wrap_image_state), at once
    otherwise."""
    code, message = ERRORS[problem]
    ami.__dict__["ferry_failure"] = {"Code": code, "Message": message}
    from moto.ec2.models.amis import Ami

    if not isinstance(Ami.__dict__.get("state"), property):
        ami.state = "failed"
        ami.state_reason = {"Code": code, "Message": message}


def _wrap_image_state(prev_state, prev_reason):
    """When image state is a clock-driven property (image_states.py), an image
    marked with a sharing failure becomes `failed` where it would become `available`."""

    def get_state(self):
        state = prev_state.fget(self)
        if state == "available" and self.__dict__.get("ferry_failure"):
            return "failed"
        return state

    def set_state(self, value):
        if prev_state.fset is None:
            raise AttributeError("state")
        prev_state.fset(self, value)

    def get_reason(self):
        failure = self.__dict__.get("ferry_failure")
        if failure and get_state(self) == "failed":
            return failure
        return prev_reason.fget(self) if prev_reason is not None else self.__dict__.get("state_reason")

    return property(get_state, set_state), property(get_reason)


def copy_image_across_accounts() -> None:
    """Rules 3, 4, 8 on the backend's CopyImage (_wrap_copy_image)."""
    from moto.ec2.models.amis import AmiBackend

    AmiBackend.copy_image = _wrap_copy_image(AmiBackend.copy_image)


def copies_fail_and_read_every_copy_parameter() -> None:
    """A copy refused for its keys settles as `failed` (_wrap_image_state, when image
    states run on the clock); CopyImage reads Encrypted, KmsKeyId, ClientToken,
    CopyImageTags and TagSpecifications (copy_image_response)."""
    from moto.ec2.models.amis import Ami
    from moto.ec2.responses.amis import AmisResponse

    if isinstance(Ami.__dict__.get("state"), property):
        Ami.state, Ami.state_reason = _wrap_image_state(Ami.__dict__["state"], Ami.__dict__.get("state_reason"))
    AmisResponse.copy_image = copy_image_response(AmisResponse.copy_image)
