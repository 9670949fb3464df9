"""AWS rules for moving an instance to another AZ (aws-rules.md, rules 10-15).

Each rule is a named function that installs its patches on moto 5.2.5 and cites the AWS
document it follows. Rules never look at which account calls: every piece of state lives
on the account/region backend moto already keeps (so `POST /moto-api/reset` clears it).
Waiting states (image pending, instance pending/stopping/shutting-down, status checks
initializing) are computed from the world's one simulated clock when they are read.

Extension points other rules may use (e.g. sharing.py re-encrypting a copied image's
snapshots): `image_mappings(ami)`, `set_image_mappings(ami, mappings)`, `find_image(...)`.
"""
from __future__ import annotations

import copy
import datetime as _dt
import fnmatch
import json
import re
import threading
from typing import Any

from .. import clock, config

_installed = False
_lock = threading.RLock()
_request = threading.local()  # the RunInstances request being served by this thread

STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}
BURSTABLE_DEFAULT_CREDITS = {"t2": "standard", "t3": "unlimited", "t3a": "unlimited", "t4g": "unlimited"}
IOPS_TYPES = ("io1", "io2", "gp3")


def _err(code: str, message: str) -> Exception:
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError(code, message)


def _later(seconds: float) -> _dt.datetime:
    return clock.now() + _dt.timedelta(seconds=float(seconds))


# --------------------------------------------------------------------------- helpers


def find_image(backend: Any, image_id: str) -> Any:
    """The image with this id: the caller's own backend first, then any other account's
    backend in the same region (shared images; whether the caller may use it is
    sharing.py's business)."""
    ami = backend.amis.get(image_id)
    if ami is not None:
        return ami
    from moto.ec2.models import ec2_backends

    for account_backends in list(ec2_backends.values()):
        other = dict.get(account_backends, backend.region_name)
        if other is not None and other is not backend and image_id in other.amis:
            return other.amis[image_id]
    return None


def find_snapshot(backend: Any, snapshot_id: str) -> Any:
    snap = backend.snapshots.get(snapshot_id)
    if snap is not None:
        return snap
    from moto.ec2.models import ec2_backends

    for account_backends in list(ec2_backends.values()):
        other = dict.get(account_backends, backend.region_name)
        if other is not None and snapshot_id in other.snapshots:
            return other.snapshots[snapshot_id]
    return None


class _FrozenVolume:
    """What a snapshot remembers of its source volume (id and size at snapshot time)."""

    def __init__(self, volume_id: str, size: int):
        self.id = volume_id
        self.size = size


def image_mappings(ami: Any) -> list[dict[str, Any]]:
    """The image's block device mappings as stored (dicts shaped like EC2's
    BlockDeviceMapping; keys starting with `ferry` are internal and never serialized)."""
    return ami.__dict__.get("_ferry_mappings") or []


def set_image_mappings(ami: Any, mappings: list[dict[str, Any]]) -> None:
    ami.__dict__["_ferry_mappings"] = mappings


def _snapshot_mapping(device: str, snap: Any, volume_type: str, size: int, delete: bool,
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


def _new_snapshot(backend: Any, volume: _FrozenVolume, description: str, encrypted: bool,
                  kms_key_id: str | None, ami_id: str) -> Any:
    from moto.ec2.models.elastic_block_store import Snapshot
    from moto.ec2.utils import random_snapshot_id

    snap = Snapshot(backend, random_snapshot_id(), volume, description,
                    encrypted=encrypted, kms_key_id=kms_key_id, from_ami=ami_id)
    backend.snapshots[snap.id] = snap
    return snap


def _resolve_kms_key(backend: Any, key: str | None) -> str | None:
    """EC2 stores the key ARN whatever form (id, alias, ARN) the caller used."""
    if not key or key.startswith("arn:"):
        return key
    try:
        from moto.kms import kms_backends

        return kms_backends[backend.account_id][backend.region_name].describe_key(key).arn
    except Exception:  # unknown key: leave it as given (KMS rules are sharing.py's)
        return key


# ------------------------------------------------------------- rule 3: pending images


def images_and_snapshots_settle_on_the_clock() -> None:
    """EC2 User Guide, "Create an Amazon EBS-backed AMI" and API Reference "Image" /
    "StateReason" / "Snapshot": an image is `pending` while its snapshots are taken, then
    `available`, or `failed` with a StateReason; its snapshots go `pending` (with a
    Progress) to `completed` or `error`. Here: imagePendingMinutes of simulated time
    (copyPendingMinutes for CopyImage); images whose id or name matches a `failImages`
    glob fail with {Code: Client.InternalError, Message: failImageReason}."""
    from moto.ec2.models.amis import Ami
    from moto.ec2.models.elastic_block_store import Snapshot

    def _settle(ami: Any) -> None:
        until = ami.__dict__.get("_ferry_pending_until")
        if until is None or clock.now() < until:
            return
        with _lock:
            if ami.__dict__.get("_ferry_pending_until") is None:
                return
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
        self.__dict__["_ferry_pending_until"] = _later(float(minutes) * 60)
        self.__dict__["_ferry_pending_from"] = clock.now()
        self.root_device_type = "ebs"
        if source is not None:
            self.__dict__["_ferry_source"] = (source.id, source.ec2_backend.region_name)
            _copy_mappings(self, source)
        _link_snapshot(self.ebs_snapshot, self)

    Ami.__init__ = __init__

    def get_status(self: Any) -> str:
        ami = self.__dict__.get("_ferry_ami")
        if ami is not None:
            state = ami.state
            if state == "pending":
                return "pending"
            with _lock:
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


def _link_snapshot(snap: Any, ami: Any) -> None:
    """The snapshot completes (or errs) when its image settles."""
    snap.__dict__["_ferry_ami"] = ami
    snap.start_time = clock.now_naive()


def _copy_mappings(ami: Any, source: Any) -> None:
    """CopyImage: the copy gets its own snapshots, one per source snapshot, with the same
    size, type and encryption (sharing.py may re-encrypt them under another key)."""
    backend = ami.ec2_backend
    mappings = []
    first = True
    for m in _public_mappings(source):
        ebs = m.get("Ebs") or {}
        src_snap = find_snapshot(source.ec2_backend, ebs.get("SnapshotId", ""))
        if src_snap is None:
            continue
        description = f"Copied for DestinationAmi {ami.id} from SourceAmi {source.id} for SourceSnapshot {src_snap.id}"
        if first:
            snap = ami.ebs_snapshot
            snap.volume = _FrozenVolume("vol-ffffffff", src_snap.volume_size)
            snap.description = description
            snap.encrypted = bool(src_snap.encrypted)
            snap.kms_key_id = src_snap.kms_key_id
            first = False
        else:
            snap = _new_snapshot(backend, _FrozenVolume("vol-ffffffff", src_snap.volume_size),
                                 description, bool(src_snap.encrypted), src_snap.kms_key_id, ami.id)
            _link_snapshot(snap, ami)
        new = copy.deepcopy(m)
        new["Ebs"]["SnapshotId"] = snap.id
        new["Ebs"]["Encrypted"] = bool(snap.encrypted)
        mappings.append(new)
    if mappings:
        ami.root_device_name = source.root_device_name
        set_image_mappings(ami, mappings)


def _public_mappings(ami: Any) -> list[dict[str, Any]]:
    return ami.block_device_mappings


# ------------------------------------------------- rules 1, 2, 9: CreateImage and names


def create_image_captures_every_volume() -> None:
    """EC2 User Guide, "Create an Amazon EBS-backed AMI" and API Reference "CreateImage" /
    "EbsBlockDevice": CreateImage snapshots every EBS volume attached to the instance;
    each snapshot keeps the volume's size and encryption (and KMS key), and the image's
    block device mapping records per device the snapshot, size, volume type, iops,
    throughput, encryption and the instance's DeleteOnTermination. The instance must be
    `running`, `stopping` or `stopped` (InvalidParameterValue otherwise).
    TagSpecifications may tag the image, the snapshots, or both."""
    from moto.ec2.models.amis import Ami, AmiBackend

    original_bdm = Ami.block_device_mappings

    def block_device_mappings(self: Any) -> list[dict[str, Any]]:
        mappings = self.__dict__.get("_ferry_mappings")
        if mappings is not None:
            return mappings
        stock = original_bdm.fget(self)
        # Public AMIs delete their root volume on termination; moto says False.
        for m in stock:
            m["Ebs"]["DeleteOnTermination"] = True
            m["Ebs"]["Encrypted"] = bool(self.ebs_snapshot.encrypted)
            m["Ebs"]["VolumeSize"] = self.ebs_snapshot.volume_size
        return stock

    Ami.block_device_mappings = property(block_device_mappings)

    original_create = AmiBackend.create_image

    def create_image(self: Any, instance_id: str, name: str, description: str,
                     tag_specifications: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        instance = self.get_instance(instance_id)
        if instance.state not in ("running", "stopping", "stopped"):
            raise _err(
                "InvalidParameterValue",
                f"Invalid value '{instance_id}' for instanceId. Instance is not in state "
                "'running' or 'stopping' or 'stopped'",
            )
        if getattr(instance, "root_device_type", "ebs") != "ebs":
            # EC2 UG, "Create an Amazon EBS-backed AMI": CreateImage works on EBS-backed
            # instances only; instance-store-backed AMIs are bundled, not imaged.
            # (The exact error wording is not documented; this one is the world's.)
            raise _err(
                "InvalidParameterValue",
                f"Invalid value '{instance_id}' for instanceId. CreateImage supports only "
                "instances with an EBS root device",
            )
        _check_image_name(self, name)
        image_specs, snapshot_tags = [], {}
        for spec in tag_specifications or []:
            if spec.get("ResourceType") == "snapshot":
                snapshot_tags.update({t["Key"]: t["Value"] for t in spec.get("Tags", [])})
            else:
                image_specs.append(spec)
        ami = original_create(self, instance_id, name, description, image_specs, *args, **kwargs)
        _capture_volumes(self, ami, instance, snapshot_tags)
        return ami

    AmiBackend.create_image = create_image


def _capture_volumes(backend: Any, ami: Any, instance: Any, snapshot_tags: dict[str, str]) -> None:
    ami.root_device_name = instance.root_device_name
    ami.root_device_type = "ebs"
    devices = instance.get_block_device_mapping
    # The root device first: it reuses the snapshot moto made for the image.
    devices.sort(key=lambda d: d[0] != instance.root_device_name)
    mappings = []
    for i, (device, bdt) in enumerate(devices):
        volume = backend.volumes.get(bdt.volume_id)
        if volume is None:
            continue
        frozen = _FrozenVolume(volume.id, volume.size)
        description = f"Created by CreateImage({instance.id}) for {ami.id}"
        if i == 0:
            snap = ami.ebs_snapshot
            snap.volume = frozen
            snap.description = description
            snap.encrypted = bool(volume.encrypted)
            snap.kms_key_id = volume.kms_key_id if volume.encrypted else None
        else:
            snap = _new_snapshot(backend, frozen, description, bool(volume.encrypted),
                                 volume.kms_key_id if volume.encrypted else None, ami.id)
            _link_snapshot(snap, ami)
        snap.add_tags(snapshot_tags)
        mappings.append(
            _snapshot_mapping(device, snap, volume.volume_type, volume.size,
                              bdt.delete_on_termination, volume.iops, volume.throughput)
        )
    if not mappings:
        # No EBS volume at all (moto instances always have one, but be safe).
        ami.ebs_snapshot.add_tags(snapshot_tags)
        return
    set_image_mappings(ami, mappings)


AMI_NAME = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")


def _check_image_name(backend: Any, name: str | None) -> None:
    if name is None:
        return
    if not AMI_NAME.match(name):
        raise _err(
            "InvalidAMIName.Malformed",
            "AMI names must be between 3 and 128 characters long, and may contain letters, "
            "numbers, '(', ')', '[', ']', ' ', '.', '/', '-', ''', '@' and '_'",
        )
    for ami in list(backend.amis.values()):
        if ami.name == name and ami.owner_id == backend.account_id:
            raise _err("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami.id}")


def ami_names_unique_and_snapshots_in_use() -> None:
    """API Reference "CreateImage"/"CopyImage"/"RegisterImage" (Name must be unique in the
    account and Region: InvalidAMIName.Duplicate) and EC2 User Guide "Deregister an AMI":
    a snapshot behind a registered AMI cannot be deleted (InvalidSnapshot.InUse);
    deregister first, then delete the snapshots."""
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.models.elastic_block_store import EBSBackend

    original_copy = AmiBackend.copy_image

    def copy_image(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("name", args[2] if len(args) > 2 else None)
        _check_image_name(self, name)
        return original_copy(self, *args, **kwargs)

    AmiBackend.copy_image = copy_image

    original_register = AmiBackend.register_image

    def register_image(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("name", args[0] if args else None)
        _check_image_name(self, name)
        ami = original_register(self, *args, **kwargs)
        _apply_register_request(self, ami)
        return ami

    AmiBackend.register_image = register_image

    original_delete = EBSBackend.delete_snapshot

    def delete_snapshot(self: Any, snapshot_id: str) -> Any:
        for ami in list(self.amis.values()):
            if any((m.get("Ebs") or {}).get("SnapshotId") == snapshot_id for m in image_mappings(ami)):
                raise _err("InvalidSnapshot.InUse", f"The snapshot {snapshot_id} is currently in use by {ami.id}")
        return original_delete(self, snapshot_id)

    EBSBackend.delete_snapshot = delete_snapshot

    from moto.ec2.responses.amis import AmisResponse

    original_response = AmisResponse.register_image

    def register_image_response(self: Any) -> Any:
        _request.register = dict(self.params)
        try:
            return original_response(self)
        finally:
            _request.register = None

    AmisResponse.register_image = register_image_response


def _apply_register_request(backend: Any, ami: Any) -> None:
    """RegisterImage with BlockDeviceMappings: the image uses the given snapshots."""
    params = getattr(_request, "register", None) or {}
    requested = params.get("BlockDeviceMappings") or []
    if not requested:
        return
    mappings = []
    for m in requested:
        ebs = m.get("Ebs") or {}
        snap_id = ebs.get("SnapshotId")
        if not snap_id:
            continue
        snap = backend.snapshots.get(snap_id)
        if snap is None:
            raise _err("InvalidSnapshot.NotFound", f"The snapshot '{snap_id}' does not exist.")
        volume_type = ebs.get("VolumeType") or "gp2"
        iops = ebs.get("Iops") or (3000 if volume_type == "gp3" else None)
        throughput = ebs.get("Throughput") or (125 if volume_type == "gp3" else None)
        mappings.append(
            _snapshot_mapping(m["DeviceName"], snap, volume_type,
                              ebs.get("VolumeSize") or snap.volume_size,
                              ebs.get("DeleteOnTermination", True), iops, throughput)
        )
    if not mappings:
        return
    # The image stands on the caller's snapshots: drop the one moto made for it.
    backend.snapshots.pop(ami.ebs_snapshot.id, None)
    ami.ebs_snapshot = backend.snapshots[mappings[0]["Ebs"]["SnapshotId"]]
    ami.root_device_name = params.get("RootDeviceName") or mappings[0]["DeviceName"]
    ami.root_device_type = "ebs"
    for key, attr in (("Architecture", "architecture"), ("VirtualizationType", "virtualization_type"),
                      ("BootMode", "boot_mode")):
        if params.get(key):
            setattr(ami, attr, params[key])
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
            raise _err(
                "InvalidAMIID.Unavailable",
                f"The AMI ID '{ami_id}' is currently pending and may not be used for this operation",
            )
        return original(self, ami_id, *args, **kwargs)

    AmiBackend.modify_image_attribute = modify_image_attribute


# ----------------------------------------------------- rule 7: instance lifecycle


class _ClockState:
    """An instance state that moves on to its next state on the simulated clock.

    Behaves like moto's InstanceState (`name`, `code`); moto's own code assigning a name
    cancels any transition. copy.copy() gives a plain, frozen InstanceState."""

    def __init__(self, instance: Any, name: str):
        self._instance = instance
        self._name = name
        self._code = STATE_CODES[name]
        self._next: tuple[str, _dt.datetime] | None = None

    def go(self, now_name: str, next_name: str, seconds: float) -> None:
        at = _later(seconds)
        self._name, self._code = now_name, STATE_CODES[now_name]
        self._next = (next_name, at)
        if next_name == "running":
            self._instance.__dict__["_ferry_running_since"] = at

    def _settle(self) -> None:
        nxt = self._next
        if nxt is not None and clock.now() >= nxt[1]:
            self._next = None
            self._name, self._code = nxt[0], STATE_CODES[nxt[0]]

    @property
    def name(self) -> str:
        self._settle()
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._settle()
        if value == "running" and self._name != "running":
            self._instance.__dict__["_ferry_running_since"] = clock.now()
        self._next = None
        self._name = value

    @property
    def code(self) -> int:
        self._settle()
        return self._code

    @code.setter
    def code(self, value: int) -> None:
        self._code = value

    def __copy__(self) -> Any:
        from moto.ec2.models.instances import InstanceState

        return InstanceState(self.name, self.code)


def instances_change_state_on_the_clock() -> None:
    """EC2 User Guide, "Amazon EC2 instance state changes" (lifecycle: pending -> running,
    stopping -> stopped, shutting-down -> terminated), "Status checks for Amazon EC2
    instances" (checks report `initializing` after launch, then `ok`), "Enable
    termination protection" and "Enable stop protection" (OperationNotPermitted).
    Simulated durations: instancePendingSeconds, instanceStoppingSeconds,
    instanceShuttingDownSeconds, statusInitializingSeconds."""
    from moto.ec2.models.instances import Instance, InstanceBackend

    original_init = Instance.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.launch_time = clock.now_naive()
        self._state = _ClockState(self, "pending")
        self._state.go("pending", "running", config.get("instancePendingSeconds"))

    Instance.__init__ = __init__

    def _status(self: Any) -> dict[str, Any]:
        if self.state != "running":
            return {"Status": "not-applicable"}
        since = self.__dict__.get("_ferry_running_since") or clock.now()
        ready = since + _dt.timedelta(seconds=float(config.get("statusInitializingSeconds")))
        if clock.now() < ready:
            return {"Status": "initializing", "Details": [{"Name": "reachability", "Status": "initializing"}]}
        return {"Status": "ok", "Details": [{"Name": "reachability", "Status": "passed"}]}

    Instance.instance_status = property(_status)
    Instance.system_status = property(_status)

    original_start, original_stop, original_terminate = Instance.start, Instance.stop, Instance.terminate

    def start(self: Any) -> Any:
        previous = copy.copy(self._state)
        if previous.name in ("pending", "running"):
            return previous
        if previous.name != "stopped":
            raise _err("IncorrectInstanceState",
                       f"The instance '{self.id}' is not in a state from which it can be started.")
        original_start(self)
        self._state.go("pending", "running", config.get("instancePendingSeconds"))
        return previous

    def stop(self: Any) -> Any:
        previous = copy.copy(self._state)
        if previous.name in ("stopping", "stopped"):
            return previous
        original_stop(self)
        self._state.go("stopping", "stopped", config.get("instanceStoppingSeconds"))
        return previous

    def terminate(self: Any) -> Any:
        previous = copy.copy(self._state)
        if previous.name in ("shutting-down", "terminated"):
            return previous  # TerminateInstances is idempotent
        original_terminate(self)
        self._state.go("shutting-down", "terminated", config.get("instanceShuttingDownSeconds"))
        return previous

    Instance.start, Instance.stop, Instance.terminate = start, stop, terminate

    def stop_instances(self: Any, instance_ids: list[str]) -> list[Any]:
        # All or nothing: every instance is checked before any is stopped.
        instances = self.get_multi_instances_by_id(instance_ids)
        for instance in instances:
            state = instance.state
            if state in ("stopped", "stopping"):
                continue
            if instance.disable_api_stop is True:
                raise _err(
                    "OperationNotPermitted",
                    f"The instance '{instance.id}' may not be stopped. Modify its "
                    "'disableApiStop' instance attribute and try again.",
                )
            if state == "pending":
                raise _err("IncorrectInstanceState",
                           f"Instance '{instance.id}' cannot be stopped as it has never reached the 'running' state.")
            if state != "running":
                raise _err("IncorrectInstanceState",
                           f"This instance '{instance.id}' is not in a state from which it can be stopped.")
        return [(instance, instance.stop()) for instance in instances]

    InstanceBackend.stop_instances = stop_instances

    original_terminate_instances = InstanceBackend.terminate_instances

    def terminate_instances(self: Any, instance_ids: list[str]) -> list[Any]:
        # All or nothing: check protection on every instance before terminating any.
        if instance_ids:
            for instance in self.get_multi_instances_by_id(instance_ids):
                if instance.disable_api_termination is True:
                    raise _err(
                        "OperationNotPermitted",
                        f"The instance '{instance.id}' may not be terminated. Modify its "
                        "'disableApiTermination' instance attribute and try again.",
                    )
        return original_terminate_instances(self, instance_ids)

    InstanceBackend.terminate_instances = terminate_instances

    from moto.ec2.responses.instances import InstanceResponse

    def current_state(method_name: str, key: str) -> None:
        # moto answers a fixed CurrentState; EC2 answers the state the call left
        # (e.g. `stopped` for StopInstances on a stopped instance).
        original = getattr(InstanceResponse, method_name)

        def method(self: Any) -> Any:
            result = original(self)
            for item in (getattr(result, "result", None) or {}).get(key, []):
                instance = self.ec2_backend.get_instance(item["InstanceId"])
                item["CurrentState"] = {"Code": instance.state_code, "Name": instance.state}
            return result

        setattr(InstanceResponse, method_name, method)

    current_state("start_instances", "StartingInstances")
    current_state("stop_instances", "StoppingInstances")
    current_state("terminate_instances", "TerminatingInstances")


# ---------------------------------------------- rules 4, 5, 6, 8: RunInstances


def _offered(backend: Any, az: str, instance_type: str) -> bool:
    configured = (config.get("instanceTypeOfferings") or {}).get(az)
    if configured is not None:
        return instance_type in configured
    return True  # AZs not configured offer every type moto knows


def instance_type_offerings_per_az() -> None:
    """API Reference "DescribeInstanceTypeOfferings" (LocationType availability-zone,
    filters `location` and `instance-type`) and EC2 User Guide "Troubleshoot Amazon EC2
    instance launch issues" (Unsupported: "Your requested instance type (X) is not
    supported in your requested Availability Zone (Y)..."). The world setting
    `instanceTypeOfferings` {az: [types]} replaces moto's list for the AZs it names."""
    from moto.ec2.models.instance_types import InstanceTypeOfferingBackend

    original = InstanceTypeOfferingBackend.describe_instance_type_offerings

    def describe_instance_type_offerings(self: Any, location_type: str | None = None,
                                         filters: dict[str, Any] | None = None) -> list[Any]:
        location_type = location_type or "region"
        configured = {
            az: types for az, types in (config.get("instanceTypeOfferings") or {}).items()
            if self.get_zone_by_name(az) is not None
        }
        if not configured or location_type == "region":
            result = original(self, location_type, filters)
            if configured and location_type == "region":
                have = {o["InstanceType"] for o in result}
                extra = sorted({t for types in configured.values() for t in types} - have)
                for t in extra:
                    o = {"InstanceType": t, "LocationType": "region", "Location": self.region_name}
                    if self.matches_filters(o, filters or {}, location_type):
                        result.append(o)
            return result
        zone_ids = {z.name: z.zone_id for z in self.describe_availability_zones()}
        names = {v: k for k, v in zone_ids.items()}
        stock = original(self, location_type, filters)

        def az_of(o: dict[str, Any]) -> str:
            loc = o["Location"]
            return names.get(loc, loc) if location_type == "availability-zone-id" else loc

        result = [o for o in stock if az_of(o) not in configured]
        for az, types in sorted(configured.items()):
            for t in types:
                location = zone_ids.get(az, az) if location_type == "availability-zone-id" else az
                o = {"InstanceType": t, "LocationType": location_type, "Location": location}
                if self.matches_filters(o, filters or {}, location_type):
                    result.append(o)
        return result

    InstanceTypeOfferingBackend.describe_instance_type_offerings = describe_instance_type_offerings


def _fingerprint(params: dict[str, Any]) -> str:
    significant = {k: v for k, v in params.items() if k not in ("ClientToken", "DryRun", "Action", "Version")}
    return json.dumps(significant, sort_keys=True, default=str)


def run_instances_is_idempotent_with_a_client_token() -> None:
    """EC2 API "Ensuring idempotency in Amazon EC2 API requests": RunInstances repeated
    with the same ClientToken and the same parameters returns the original reservation
    (only the instance state may differ; the token stays valid after the instance is
    terminated) and launches nothing; the same token with other parameters fails with
    IdempotentParameterMismatch. DescribeInstances filter `client-token` (API Reference
    "DescribeInstances")."""
    from moto.ec2 import utils as ec2_utils
    from moto.ec2.responses.instances import InstanceResponse

    ec2_utils.filter_dict_attribute_mapping.setdefault("client-token", "client_token")

    original = InstanceResponse.run_instances

    def run_instances(self: Any) -> Any:
        from moto.core.responses import ActionResult

        params = dict(self.params)
        token = params.get("ClientToken")
        backend = self.ec2_backend
        tokens = backend.__dict__.setdefault("_ferry_client_tokens", {})
        with _lock if token else _nolock:
            if token and token in tokens:
                fingerprint, reservation = tokens[token]
                if fingerprint != _fingerprint(params):
                    raise _err(
                        "IdempotentParameterMismatch",
                        "Arguments on this idempotent request are inconsistent with arguments "
                        "used in previous request(s).",
                    )
                if not params.get("DryRun"):
                    return ActionResult(reservation)
            _request.run = params
            _request.reservation = None
            try:
                result = original(self)
            finally:
                _request.run = None
            reservation = _request.reservation
            _request.reservation = None
            if token and reservation is not None:
                tokens[token] = (_fingerprint(params), reservation)
            return result

    InstanceResponse.run_instances = run_instances


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


_nolock = _NoLock()


def run_instances_honours_image_and_launch_parameters() -> None:
    """API Reference "RunInstances" and EC2 User Guide "Block device mappings for volumes
    on Amazon EC2 instances" / "Amazon EBS encryption":
    - the image must exist (InvalidAMIID.NotFound) and be `available` (a pending image
      "is pending, and cannot be run": InvalidAMIID.Unavailable);
    - the type must be offered in the subnet's AZ (Unsupported, rule 8);
    - every volume of the image's mapping is created from its snapshot, with the
      request's overrides (type, size, iops, throughput, encrypted, KmsKeyId,
      DeleteOnTermination); a size below the snapshot's is InvalidBlockDeviceMapping;
      a volume from an encrypted snapshot is encrypted under the snapshot's key unless
      KmsKeyId names another;
    - instance and volume tags, security groups of the primary interface, CPU options,
      tenancy, credit specification, hibernation, termination protection and the IAM
      instance profile come back from DescribeInstances / DescribeInstanceAttribute /
      DescribeInstanceCreditSpecifications as EC2 returns them."""
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.responses.instances import InstanceResponse

    original = InstanceBackend.run_instances

    def run_instances(self: Any, image_id: str, count: int, user_data: Any,
                      security_group_names: list[str], **kwargs: Any) -> Any:
        params = getattr(_request, "run", None)
        if params is None or kwargs.get("launch_template"):
            reservation = original(self, image_id, count, user_data, security_group_names, **kwargs)
            _request.reservation = reservation
            return reservation
        image = find_image(self, image_id) if image_id else None
        if image is None:
            from moto.ec2.exceptions import InvalidAMIIdError

            raise InvalidAMIIdError(image_id or "")
        state = image.state
        if state != "available":
            raise _err("InvalidAMIID.Unavailable", f"AMI '{image_id}' is {state}, and cannot be run")
        az, subnet = _launch_zone(self, kwargs)
        _check_groups(self, params, kwargs, subnet)
        instance_type = kwargs.get("instance_type") or "m1.small"
        if az and not _offered(self, az, instance_type):
            others = [z.name for z in self.describe_availability_zones()
                      if z.name != az and _offered(self, z.name, instance_type)]
            raise _err(
                "Unsupported",
                f"Your requested instance type ({instance_type}) is not supported in your "
                f"requested Availability Zone ({az}). Please retry your request by not "
                f"specifying an Availability Zone or choosing {', '.join(others)}.",
            )
        volumes = _plan_volumes(self, image, params.get("BlockDeviceMappings") or [])
        kwargs["block_device_mappings"] = []  # moto makes no volume: we do, below
        reservation = original(self, image_id, count, user_data, security_group_names, **kwargs)
        volume_tags = (kwargs.get("tags") or {}).get("volume", {})
        for instance in reservation.instances:
            _finish_instance(self, instance, image, params, volumes, volume_tags)
        _request.reservation = reservation
        return reservation

    InstanceBackend.run_instances = run_instances

    original_response = InstanceResponse.run_instances

    def run_instances_response(self: Any) -> Any:
        profile = self._get_param("IamInstanceProfile") or {}
        for key, label in (("Arn", "arn"), ("Name", "name")):
            if profile.get(key):
                try:
                    from moto.ec2.utils import filter_iam_instance_profiles

                    filter_iam_instance_profiles(
                        self.current_account, partition=self.partition,
                        iam_instance_profile_arn=profile.get("Arn"),
                        iam_instance_profile_name=profile.get("Name"),
                    )
                except Exception:
                    raise _err(
                        "InvalidParameterValue",
                        f"Value ({profile[key]}) for parameter iamInstanceProfile.{label} is "
                        f"invalid. Invalid IAM Instance Profile {label}",
                    )
        return original_response(self)

    InstanceResponse.run_instances = run_instances_response

    def _validate_block_device_mapping(device_mapping: dict[str, Any]) -> None:
        # A mapping may override only some fields of a device the image already maps
        # (no size, no snapshot): _plan_volumes checks what is really missing.
        from moto.ec2.exceptions import InvalidRequest

        if "NoDevice" in device_mapping and device_mapping["NoDevice"] != "":
            raise InvalidRequest()

    InstanceResponse._validate_block_device_mapping = staticmethod(_validate_block_device_mapping)

    from moto.ec2.models.iam_instance_profile import IamInstanceProfileAssociation

    original_assoc = IamInstanceProfileAssociation.__init__

    def assoc_init(self: Any, ec2_backend: Any, association_id: str, instance: Any,
                   iam_instance_profile: Any) -> None:
        original_assoc(self, ec2_backend, association_id, instance, iam_instance_profile)
        # DescribeInstances shows the profile's own id (AIPA...), not the association's.
        if instance is not None:
            instance.iam_instance_profile = {"Arn": iam_instance_profile.arn, "Id": iam_instance_profile.id}

    IamInstanceProfileAssociation.__init__ = assoc_init

    def describe_instance_credit_specifications(self: Any) -> Any:
        from moto.core.responses import ActionResult

        instance_ids = self._get_param("InstanceIds", [])
        backend = self.ec2_backend
        if instance_ids:
            instances = backend.get_multi_instances_by_id(instance_ids)
            for instance in instances:
                if _credits(instance) is None:
                    raise _err(
                        "InvalidParameterValue",
                        f"The instance ID '{instance.id}' is not valid. The instance is not a "
                        "burstable performance instance.",
                    )
        else:
            instances = [i for i in backend.all_instances() if _credits(i) == "unlimited"]
        return ActionResult({
            "InstanceCreditSpecifications": [
                {"InstanceId": i.id, "CpuCredits": _credits(i)} for i in instances
            ]
        })

    InstanceResponse.describe_instance_credit_specifications = describe_instance_credit_specifications


def _credits(instance: Any) -> str | None:
    chosen = instance.__dict__.get("_ferry_cpu_credits")
    if chosen:
        return chosen
    return BURSTABLE_DEFAULT_CREDITS.get(str(instance.instance_type).split(".")[0])


def _launch_zone(backend: Any, kwargs: dict[str, Any]) -> tuple[str | None, Any]:
    subnet_id = kwargs.get("subnet_id")
    if not subnet_id:
        for nic in kwargs.get("nics") or []:
            if int(nic.get("DeviceIndex", -1)) == 0 and nic.get("SubnetId"):
                subnet_id = nic["SubnetId"]
    if subnet_id:
        subnet = backend.get_subnet(subnet_id)
        return subnet.availability_zone, subnet
    if kwargs.get("placement"):
        return kwargs["placement"], None
    return backend.region_name + "a", None


def _check_groups(backend: Any, params: dict[str, Any], kwargs: dict[str, Any], subnet: Any) -> None:
    """Groups named on the primary interface must exist and be in the subnet's VPC."""
    ids = list(params.get("SecurityGroupIds") or [])
    for nic in params.get("NetworkInterfaces") or []:
        ids.extend(nic.get("Groups") or [])
    for group_id in ids:
        group = backend.get_security_group_from_id(group_id)
        if group is None:
            raise _err("InvalidGroup.NotFound", f"The security group '{group_id}' does not exist")
        if subnet is not None and group.vpc_id and group.vpc_id != subnet.vpc_id:
            raise _err("InvalidParameter",
                       f"Security group {group_id} and subnet {subnet.id} belong to different networks.")


def _plan_volumes(backend: Any, image: Any, requested: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The volumes to create: the image's mappings merged with the request's, by device."""
    by_device: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for m in image.block_device_mappings:
        if not m.get("Ebs"):
            continue
        by_device[m["DeviceName"]] = {"DeviceName": m["DeviceName"], "image": dict(m["Ebs"]), "req": {}}
        order.append(m["DeviceName"])
    for m in requested:
        device = m.get("DeviceName")
        if m.get("NoDevice") is not None:
            if device in by_device:
                order.remove(device)
                del by_device[device]
            continue
        if m.get("VirtualName") or "Ebs" not in m:
            continue  # instance store: not an EBS volume
        if device not in by_device:
            by_device[device] = {"DeviceName": device, "image": {}, "req": {}}
            order.append(device)
        by_device[device]["req"] = dict(m["Ebs"])

    planned = []
    for device in order:
        image_ebs, req = by_device[device]["image"], by_device[device]["req"]
        snapshot_id = req.get("SnapshotId") or image_ebs.get("SnapshotId")
        snap = find_snapshot(backend, snapshot_id) if snapshot_id else None
        if snapshot_id and snap is None:
            raise _err("InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.")
        snap_size = snap.volume_size if snap is not None else None
        size = req.get("VolumeSize") or image_ebs.get("VolumeSize") or snap_size
        if size is None:
            raise _err("MissingParameter", "The request must contain the parameter size or snapshotId")
        if snap_size is not None and int(size) < int(snap_size):
            raise _err(
                "InvalidBlockDeviceMapping",
                f"Volume of size {size}GB is smaller than snapshot '{snap.id}', expect size >= {snap_size}GB",
            )
        volume_type = req.get("VolumeType") or image_ebs.get("VolumeType") or "gp2"
        iops = req.get("Iops")
        if iops is None and volume_type == image_ebs.get("VolumeType"):
            iops = image_ebs.get("Iops")
        if iops and volume_type not in IOPS_TYPES:
            raise _err("InvalidParameterCombination",
                       f"The parameter iops is not supported for {volume_type} volumes.")
        if volume_type in ("io1", "io2") and not iops:
            raise _err("InvalidParameterCombination",
                       f"The parameter iops must be specified for {volume_type} volumes.")
        if volume_type == "gp3" and not iops:
            iops = 3000
        throughput = req.get("Throughput")
        if throughput is None and volume_type == image_ebs.get("VolumeType"):
            throughput = image_ebs.get("Throughput")
        if throughput and volume_type != "gp3":
            raise _err("InvalidParameterCombination",
                       f"The parameter throughput is not supported for {volume_type} volumes.")
        if volume_type == "gp3" and not throughput:
            throughput = 125
        if volume_type == "gp2":
            iops = min(16000, max(100, 3 * int(size)))
        kms_key_id = _resolve_kms_key(backend, req.get("KmsKeyId"))
        if snap is not None and snap.encrypted:
            encrypted = True
            kms_key_id = kms_key_id or snap.kms_key_id
        else:
            encrypted = bool(req.get("Encrypted")) or bool(getattr(backend, "ebs_encryption_by_default", False))
            if kms_key_id and not req.get("Encrypted"):
                raise _err("InvalidParameterDependency",
                           "The parameter KmsKeyId requires the parameter Encrypted to be set.")
        if "DeleteOnTermination" in req:
            delete = bool(req["DeleteOnTermination"])
        elif "DeleteOnTermination" in image_ebs:
            delete = bool(image_ebs["DeleteOnTermination"])
        else:
            delete = True
        planned.append({
            "device": device, "snapshot": snap, "size": int(size), "type": volume_type,
            "iops": iops, "throughput": throughput, "encrypted": encrypted,
            "kms_key_id": kms_key_id, "delete": delete,
        })
    return planned


def _finish_instance(backend: Any, instance: Any, image: Any, params: dict[str, Any],
                     volumes: list[dict[str, Any]], volume_tags: dict[str, str]) -> None:
    # What moto read from the caller's own images only.
    instance.root_device_name = image.root_device_name
    # EC2 UG, "Root device volume": an instance's root device type is its AMI's.
    instance.root_device_type = getattr(image, "root_device_type", None) or "ebs"
    instance.architecture = image.architecture or instance.architecture
    instance.platform = image.platform
    instance.virtualization_type = image.virtualization_type or instance.virtualization_type

    for v in volumes:
        volume = backend.create_volume(
            size=v["size"], zone_name=instance.placement.zone,
            encrypted=v["encrypted"], kms_key_id=v["kms_key_id"],
            volume_type=v["type"], iops=v["iops"] if v["type"] in IOPS_TYPES else None,
            throughput=v["throughput"] if v["type"] == "gp3" else None,
        )
        if v["type"] == "gp2":
            volume.iops = v["iops"]
        if v["snapshot"] is not None:
            volume.snapshot_id = v["snapshot"].id
        volume.add_tags(volume_tags)
        backend.attach_volume(volume.id, instance.id, v["device"], v["delete"])

    if params.get("DisableApiTermination") is not None:
        instance.disable_api_termination = bool(params["DisableApiTermination"])
    if params.get("DisableApiStop") is not None:
        instance.disable_api_stop = bool(params["DisableApiStop"])
    placement = params.get("Placement") or {}
    instance.placement.tenancy = placement.get("Tenancy") or "default"
    if placement.get("GroupName"):
        instance.placement.group_name = placement["GroupName"]
    vcpu = _vcpu_info(instance.instance_type)
    cpu = params.get("CpuOptions") or {}
    if vcpu or cpu:
        instance.cpu_options = {
            "CoreCount": int(cpu.get("CoreCount") or (vcpu or {}).get("DefaultCores") or 1),
            "ThreadsPerCore": int(cpu.get("ThreadsPerCore") or (vcpu or {}).get("DefaultThreadsPerCore") or 1),
        }
    credits = (params.get("CreditSpecification") or {}).get("CpuCredits")
    if credits:
        instance.__dict__["_ferry_cpu_credits"] = credits
    hibernation = params.get("HibernationOptions") or {}
    instance.hibernation_options = {"Configured": bool(hibernation.get("Configured", False))}
    if not instance.security_groups and instance.nics.get(0) is not None:
        instance.security_groups = list(instance.nics[0]._group_set)


def _vcpu_info(instance_type: str) -> dict[str, Any] | None:
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    return (INSTANCE_TYPES.get(instance_type) or {}).get("VCpuInfo")


# ------------------------------------------------- rule 10: Elastic IP reassociation


def elastic_ip_moves_with_allow_reassociation() -> None:
    """API Reference "AssociateAddress": with AllowReassociation an Elastic IP already
    associated with another instance moves to the new one; EC2 User Guide "Elastic IP
    addresses": the instance it left keeps no public IP (or gets a new auto-assigned one
    if its interface auto-assigns), and DescribeAddresses shows the new InstanceId."""
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend

    original = ElasticAddressBackend.associate_address

    def associate_address(self: Any, instance: Any = None, eni: Any = None, address: str | None = None,
                          allocation_id: str | None = None, reassociate: bool = False) -> Any:
        eips = self.address_by_ip([address]) if address else (
            self.address_by_allocation([allocation_id]) if allocation_id else [])
        old_eni = eips[0].eni if eips else None
        eip = original(self, instance=instance, eni=eni, address=address,
                       allocation_id=allocation_id, reassociate=reassociate)
        if old_eni is not None and old_eni is not eip.eni:
            old_eni.public_ip = None
            if old_eni.instance is not None and old_eni.instance.state == "running":
                old_eni.check_auto_public_ip()
        return eip

    ElasticAddressBackend.associate_address = associate_address


# ------------------------------------------------------------------- installation

RULES = [
    images_and_snapshots_settle_on_the_clock,
    create_image_captures_every_volume,
    ami_names_unique_and_snapshots_in_use,
    pending_images_refuse_attribute_changes,
    instances_change_state_on_the_clock,
    instance_type_offerings_per_az,
    run_instances_honours_image_and_launch_parameters,
    run_instances_is_idempotent_with_a_client_token,  # after: its wrapper runs first
    elastic_ip_moves_with_allow_reassociation,
]


def install() -> None:
    """Install every migration rule (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        for rule in RULES:
            rule()
        _installed = True
