"""Image and snapshot states on the world's clock (migration rule 3): CreateImage,
CopyImage and RegisterImage make a `pending` image whose snapshots complete with it
after simulated minutes, then `available` or `failed` (world setting failImages); a
pending image refuses attribute changes. A copy gets snapshots of its own here. Each
image's settling is an EC2 AMI State Change event (rules/ec2_events.py).
"""
from __future__ import annotations

import copy
import fnmatch
import uuid
from typing import Any

from ..engine import clock, config
from . import ec2_events
from .common import STATE_LOCK, later
from .errors import ec2_error
from .images import image_block_device_mappings, set_image_mappings
from .snapshots import find_snapshot


class FrozenVolume:
    """What a snapshot remembers of its source volume (id and size at snapshot time)."""

    def __init__(self, volume_id: str, size: int):
        self.id = volume_id
        self.size = size


def new_image_snapshot(backend: Any, volume: FrozenVolume, description: str, encrypted: bool,
                  kms_key_id: str | None, ami_id: str) -> Any:
    from moto.ec2.models.elastic_block_store import Snapshot
    from moto.ec2.utils import random_snapshot_id

    snap = Snapshot(backend, random_snapshot_id(), volume, description,
                    encrypted=encrypted, kms_key_id=kms_key_id, from_ami=ami_id)
    backend.snapshots[snap.id] = snap
    return snap


def images_and_snapshots_settle_on_the_clock() -> None:
    """EC2 User Guide, "Create an Amazon EBS-backed AMI" and API Reference "Image" /
    "StateReason" / "Snapshot": an image is `pending` while its snapshots are taken, then
    `available`, or `failed` with a StateReason; its snapshots go `pending` (with a
    Progress) to `completed` or `error`. Here: imagePendingMinutes of simulated time
    (copyPendingMinutes for CopyImage); images whose id or name matches a `failImages`
        glob fail with {Code: Client.InternalError, Message: failImageReason}. Each settling
    is reported once to rules/ec2_events.py (EC2 AMI State Change), at the simulated
    time the image settled, and a ticker there settles the image when the clock gets
    there even if nobody describes it."""
    from moto.ec2.models.amis import Ami
    from moto.ec2.models.elastic_block_store import Snapshot

    def _settle(ami: Any) -> None:
        until = ami.__dict__.get("_ferry_pending_until")
        if until is None or clock.now() < until:
            return
        with STATE_LOCK:
            if ami.__dict__.get("_ferry_pending_until") is None:
                return
            _settle_now(ami)
        # Once per transition (only the thread that cleared the pending time gets here),
        # from the state the image shows through every rule (copy_image.py's failures).
        ec2_events.image_state_changed(ami, until)

    def _settle_now(ami: Any) -> None:  # under STATE_LOCK
        ami.__dict__["_ferry_pending_until"] = None
        patterns = config.get("failImages") or []
        fails = any(
            fnmatch.fnmatchcase(str(v), p) for p in patterns for v in (ami.id, ami.name) if v
        )
        if fails:
            ami.__dict__["_ferry_state"] = "failed"
            ami.__dict__["_ferry_state_reason"] = {
                "Code": "Client.InternalError",
                "Message": config.get("failImageReason"),
            }
        else:
            ami.__dict__["_ferry_state"] = "available"

    def get_state(self: Any) -> str:
        _settle(self)
        return self.__dict__.get("_ferry_state", "available")

    def set_state(self: Any, value: str) -> None:
        self.__dict__["_ferry_pending_until"] = None
        self.__dict__["_ferry_state"] = value

    def get_state_reason(self: Any) -> dict[str, str] | None:
        _settle(self)
        return self.__dict__.get("_ferry_state_reason")

    Ami.state = property(get_state, set_state)
    Ami.state_reason = property(get_state_reason)

    original_init = Ami.__init__

    def __init__(self: Any, ec2_backend: Any, ami_id: str, *args: Any, **kwargs: Any) -> None:
        original_init(self, ec2_backend, ami_id, *args, **kwargs)
        # CreateImage, CopyImage and RegisterImage make an image here; the AMIs moto
        # loads at start (owner alias "amazon") are long available.
        if kwargs.get("owner_alias") or kwargs.get("state") not in (None, "pending"):
            return
        source = kwargs.get("source_ami") if "source_ami" in kwargs else (args[1] if len(args) > 1 else None)
        minutes = config.get("copyPendingMinutes" if source is not None else "imagePendingMinutes")
        self.creation_date = clock.now_naive()
        self.__dict__["_ferry_state"] = "pending"
        self.__dict__["_ferry_pending_until"] = later(float(minutes) * 60)
        self.__dict__["_ferry_pending_from"] = clock.now()
        self.__dict__["_ferry_request_id"] = str(uuid.uuid4())  # the event's RequestId
        # The EC2 AMI State Change event comes when the clock gets there, described or not.
        ec2_events.watch(self.__dict__["_ferry_pending_until"], lambda ami=self: ami.state)
        self.root_device_type = "ebs"
        if source is not None:
            self.__dict__["_ferry_source"] = (source.id, source.ec2_backend.region_name)
            _copy_mappings(self, source)
        link_snapshot(self.ebs_snapshot, self)

    Ami.__init__ = __init__

    def get_status(self: Any) -> str:
        ami = self.__dict__.get("_ferry_ami")
        if ami is not None:
            state = ami.state
            if state == "pending":
                return "pending"
            with STATE_LOCK:
                self.__dict__["_ferry_ami"] = None
                self.__dict__["_ferry_status"] = "error" if state == "failed" else "completed"
                if state == "failed":
                    self.__dict__["_ferry_status_message"] = config.get("failImageReason")
        return self.__dict__.get("_ferry_status", "completed")

    def set_status(self: Any, value: str) -> None:
        self.__dict__["_ferry_ami"] = None
        self.__dict__["_ferry_status"] = value

    def get_progress(self: Any) -> str:
        status = self.status
        if status == "completed":
            return "100%"
        ami = self.__dict__.get("_ferry_ami")
        if status == "pending" and ami is not None:
            start = ami.__dict__.get("_ferry_pending_from")
            until = ami.__dict__.get("_ferry_pending_until")
            if start and until and until > start:
                done = (clock.now() - start) / (until - start)
                return f"{max(0, min(99, int(done * 100)))}%"
        return "0%"

    def get_status_message(self: Any) -> str | None:
        self.status  # settle
        return self.__dict__.get("_ferry_status_message")

    Snapshot.status = property(get_status, set_status)
    Snapshot.progress = property(get_progress)
    Snapshot.state_message = property(get_status_message)


def link_snapshot(snap: Any, ami: Any) -> None:
    """The snapshot completes (or errs) when its image settles."""
    snap.__dict__["_ferry_ami"] = ami
    snap.start_time = clock.now_naive()


def _copy_mappings(ami: Any, source: Any) -> None:
    """CopyImage: the copy gets its own snapshots, one per source snapshot, with the same
    size, type and encryption (copy_image.py may re-encrypt them under another key)."""
    backend = ami.ec2_backend
    mappings = []
    first = True
    for m in image_block_device_mappings(source):
        ebs = m.get("Ebs") or {}
        src_snap = find_snapshot(source.ec2_backend, ebs.get("SnapshotId", ""))
        if src_snap is None:
            continue
        description = f"Copied for DestinationAmi {ami.id} from SourceAmi {source.id} for SourceSnapshot {src_snap.id}"
        if first:
            snap = ami.ebs_snapshot
            snap.volume = FrozenVolume("vol-ffffffff", src_snap.volume_size)
            snap.description = description
            snap.encrypted = bool(src_snap.encrypted)
            snap.kms_key_id = src_snap.kms_key_id
            first = False
        else:
            snap = new_image_snapshot(backend, FrozenVolume("vol-ffffffff", src_snap.volume_size),
                                 description, bool(src_snap.encrypted), src_snap.kms_key_id, ami.id)
            link_snapshot(snap, ami)
        new = copy.deepcopy(m)
        new["Ebs"]["SnapshotId"] = snap.id
        new["Ebs"]["Encrypted"] = bool(snap.encrypted)
        mappings.append(new)
    if mappings:
        ami.root_device_name = source.root_device_name
        set_image_mappings(ami, mappings)


def pending_images_refuse_attribute_changes() -> None:
    """Seen from EC2 (error InvalidAMIID.Unavailable, "The AMI ID '...' is currently
    pending and may not be used for this operation"): ModifyImageAttribute waits for the
    image to be available."""
    from moto.ec2.models.amis import AmiBackend

    original = AmiBackend.modify_image_attribute

    def modify_image_attribute(self: Any, ami_id: str, *args: Any, **kwargs: Any) -> Any:
        ami = self.amis.get(ami_id)
        if ami is not None and ami.state == "pending":
            raise ec2_error(
                "InvalidAMIID.Unavailable",
                f"The AMI ID '{ami_id}' is currently pending and may not be used for this operation",
            )
        return original(self, ami_id, *args, **kwargs)

    AmiBackend.modify_image_attribute = modify_image_attribute

