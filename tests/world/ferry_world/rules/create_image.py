"""CreateImage, AMI names and RegisterImage from snapshots (migration rules 1, 2, 9):
CreateImage snapshots every EBS volume of a running/stopping/stopped EBS-backed
instance, keeping size, type, IOPS, throughput, encryption and key per device, and tags
image and snapshots; AMI names are valid and unique per account and Region (CreateImage,
CopyImage, RegisterImage); a snapshot behind an AMI cannot be deleted; RegisterImage
with BlockDeviceMappings stands on the caller's snapshots.
"""
from __future__ import annotations

import re
import threading
from typing import Any

from ..engine import clock, config
from .errors import ec2_error
from .image_states import FrozenVolume, link_snapshot, new_image_snapshot
from .images import image_mappings, set_image_mappings, snapshot_mapping

_request = threading.local()  # the RegisterImage request being served by this thread


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
            raise ec2_error(
                "InvalidParameterValue",
                f"Invalid value '{instance_id}' for instanceId. Instance is not in state "
                "'running' or 'stopping' or 'stopped'",
            )
        if getattr(instance, "root_device_type", "ebs") != "ebs":
            # EC2 UG, "Create an Amazon EBS-backed AMI": CreateImage works on EBS-backed
            # instances only; instance-store-backed AMIs are bundled, not imaged.
            # (The exact error wording is not documented; this one is the world's.)
            raise ec2_error(
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
        frozen = FrozenVolume(volume.id, volume.size)
        description = f"Created by CreateImage({instance.id}) for {ami.id}"
        if i == 0:
            snap = ami.ebs_snapshot
            snap.volume = frozen
            snap.description = description
            snap.encrypted = bool(volume.encrypted)
            snap.kms_key_id = volume.kms_key_id if volume.encrypted else None
        else:
            snap = new_image_snapshot(backend, frozen, description, bool(volume.encrypted),
                                 volume.kms_key_id if volume.encrypted else None, ami.id)
            link_snapshot(snap, ami)
        snap.add_tags(snapshot_tags)
        mappings.append(
            snapshot_mapping(device, snap, volume.volume_type, volume.size,
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
        raise ec2_error(
            "InvalidAMIName.Malformed",
            "AMI names must be between 3 and 128 characters long, and may contain letters, "
            "numbers, '(', ')', '[', ']', ' ', '.', '/', '-', ''', '@' and '_'",
        )
    for ami in list(backend.amis.values()):
        if ami.name == name and ami.owner_id == backend.account_id:
            raise ec2_error("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami.id}")


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
                raise ec2_error("InvalidSnapshot.InUse", f"The snapshot {snapshot_id} is currently in use by {ami.id}")
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


_released: dict[str, tuple[str, float]] = {}  # snapshot id -> (its image, in use until: simulated epoch)
_released_lock = threading.Lock()


def image_snapshot_ids(ami: Any) -> list[str]:
    return [sid for m in image_mappings(ami) if (sid := (m.get("Ebs") or {}).get("SnapshotId"))]


def _used_by_other_image(backend: Any, snapshot_id: str, ami_id: str) -> bool:
    return any(a.id != ami_id and snapshot_id in image_snapshot_ids(a) for a in list(backend.amis.values()))


def snapshots_stay_in_use_after_deregister() -> None:
    """aws-rules.md 20. EC2 User Guide "Deregister an Amazon EC2 AMI" and API Reference
    "DeregisterImage": a snapshot can be deleted only once no AMI uses it, and right after
    DeregisterImage EC2 may still count it as in use: DeleteSnapshot answers
    InvalidSnapshot.InUse for a while (the world: `snapshotInUseAfterDeregisterSeconds`
    of simulated time). DeregisterImage with DeleteAssociatedSnapshots=true deletes the
    image's snapshots as part of the deregistration and says so per snapshot in
    DeleteSnapshotResults (ReturnCode `success`); a snapshot that another AMI also uses
    is not deleted ("if a snapshot is associated with multiple AMIs, it won't be deleted
    even if specified for deletion, although the AMI will still be deregistered":
    ReturnCode `warn-skipped`)."""
    from moto.core.responses import ActionResult
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.ec2.responses.amis import AmisResponse

    inner_deregister = AmiBackend.deregister_image

    def deregister_image(self: Any, ami_id: str) -> Any:
        ami = self.amis.get(ami_id)
        snapshot_ids = image_snapshot_ids(ami) if ami is not None else []
        result = inner_deregister(self, ami_id)
        until = clock.now().timestamp() + float(config.get("snapshotInUseAfterDeregisterSeconds"))
        with _released_lock:
            for sid in snapshot_ids:
                _released[sid] = (ami_id, until)
        return result

    AmiBackend.deregister_image = deregister_image

    inner_delete = EBSBackend.delete_snapshot

    def delete_snapshot(self: Any, snapshot_id: str) -> Any:
        with _released_lock:
            held = _released.get(snapshot_id)
        if held is not None and clock.now().timestamp() < held[1]:
            raise ec2_error("InvalidSnapshot.InUse", f"The snapshot {snapshot_id} is currently in use by {held[0]}")
        return inner_delete(self, snapshot_id)

    EBSBackend.delete_snapshot = delete_snapshot

    def deregister_image_response(self: Any) -> Any:
        ami_id = self._get_param("ImageId")
        self.error_on_dryrun()
        with_snapshots = str(self._get_param("DeleteAssociatedSnapshots", "false")).lower() == "true"
        ami = self.ec2_backend.amis.get(ami_id)
        snapshot_ids = image_snapshot_ids(ami) if (with_snapshots and ami is not None) else []
        self.ec2_backend.deregister_image(ami_id)
        results = []
        for sid in snapshot_ids:
            if _used_by_other_image(self.ec2_backend, sid, ami_id):
                results.append({"SnapshotId": sid, "ReturnCode": "warn-skipped"})
                continue
            with _released_lock:
                _released.pop(sid, None)  # deleted with the image: not "in use"
            try:
                inner_delete(self.ec2_backend, sid)
                results.append({"SnapshotId": sid, "ReturnCode": "success"})
            except Exception:  # noqa: BLE001 - reported per snapshot, as EC2 does
                results.append({"SnapshotId": sid, "ReturnCode": "client-error"})
        body: dict[str, Any] = {"Return": True}
        if with_snapshots:
            body["DeleteSnapshotResults"] = results
        return ActionResult(body)

    AmisResponse.deregister_image = deregister_image_response


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
            raise ec2_error("InvalidSnapshot.NotFound", f"The snapshot '{snap_id}' does not exist.")
        volume_type = ebs.get("VolumeType") or "gp2"
        iops = ebs.get("Iops") or (3000 if volume_type == "gp3" else None)
        throughput = ebs.get("Throughput") or (125 if volume_type == "gp3" else None)
        mappings.append(
            snapshot_mapping(m["DeviceName"], snap, volume_type,
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

