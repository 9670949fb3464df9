"""RunInstances (migration rules 4, 5, 6, 8; sharing rules 2, 4 at launch and start): the
image must exist, be available to the caller (own, shared with it, or public) and be
`available`; the type must be offered in the AZ; volumes come from the image's snapshots
with the request's overrides; launch attributes come back as EC2 returns them;
ClientToken makes it idempotent; an instance launched without use of its snapshots' or
volumes' KMS keys goes pending -> terminated, and one started (StartInstances) without
use of its volumes' keys goes pending -> stopped, both with Client.InternalError.
"""
from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

from ..engine import config
from .common import STATE_LOCK, call_with_request, caller_of, with_client_token
from .ebs_encryption import snapshot_key
from .errors import ERRORS, ec2_error
from .images import IOPS_TYPES, find_image, find_visible_image, image_snapshots
from .instance_types import offered
from .kms import ec2_key_use_problem, resolve_key
from .snapshots import find_snapshot

BURSTABLE_DEFAULT_CREDITS = {"t2": "standard", "t3": "unlimited", "t3a": "unlimited", "t4g": "unlimited"}
_request = threading.local()  # the RunInstances request being served by this thread


def unknown_image_ids_are_refused() -> bool:
    """API Reference "RunInstances" / "Error codes for the Amazon EC2 API": AWS answers an
    AMI id that names no image InvalidAMIID.NotFound. The world does so while its setting
    `rejectUnknownImageIds` is on (the default) OR moto's own AMI validation is on
    (moto 5.2.5 InstanceBackend.run_instances: "The ImageId-parameter can be validated
    ... Enable this validation by setting the environment variable
    MOTO_ENABLE_AMI_VALIDATION=true", read as moto.settings.ENABLE_AMI_VALIDATION). With
    both off RunInstances is as lenient as stock moto and launches from the unknown id.
    An AMI that exists in another account but is not shared with the caller is refused
    whatever the settings (sharing rule 2); a malformed id is InvalidAMIID.Malformed
    (images.malformed_ami_ids_are_refused)."""
    from moto import settings

    return bool(config.get("rejectUnknownImageIds")) or bool(getattr(settings, "ENABLE_AMI_VALIDATION", False))


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

        def mismatch() -> Exception:
            return ec2_error(
                "IdempotentParameterMismatch",
                "Arguments on this idempotent request are inconsistent with arguments "
                "used in previous request(s).",
            )

        return with_client_token(
            self.ec2_backend, "_ferry_client_tokens", token, _fingerprint(params),
            STATE_LOCK if token else contextlib.nullcontext(), mismatch,
            lambda reservation: None if params.get("DryRun") else ActionResult(reservation),
            lambda: call_with_request(_request, "run", params, "reservation", lambda: original(self)),
        )

    InstanceResponse.run_instances = run_instances


def run_instances_honours_image_and_launch_parameters() -> None:
    """API Reference "RunInstances" and EC2 User Guide "Block device mappings for volumes
    on Amazon EC2 instances" / "Amazon EBS encryption":
    - the image must exist (InvalidAMIID.NotFound, as long as unknown_image_ids_are_refused)
      and be `available` (a pending image "is pending, and cannot be run":
      InvalidAMIID.Unavailable);
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

            if not image_id or unknown_image_ids_are_refused():
                raise InvalidAMIIdError(image_id or "")
            # Both settings off: stock moto's leniency, launched from the unknown id.
            reservation = original(self, image_id, count, user_data, security_group_names, **kwargs)
            _request.reservation = reservation
            return reservation
        state = image.state
        if state != "available":
            raise ec2_error("InvalidAMIID.Unavailable", f"AMI '{image_id}' is {state}, and cannot be run")
        az, subnet = _launch_zone(self, kwargs)
        _check_groups(self, params, kwargs, subnet)
        instance_type = kwargs.get("instance_type") or "m1.small"
        if az and not offered(self, az, instance_type):
            others = [z.name for z in self.describe_availability_zones()
                      if z.name != az and offered(self, z.name, instance_type)]
            raise ec2_error(
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
                    raise ec2_error(
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
                    raise ec2_error(
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


def block_device_mappings_say_what_they_map() -> None:
    """API Reference "BlockDeviceMapping" (RunInstances BlockDeviceMapping.N): a mapping
    gives an EBS volume (Ebs), an instance store volume (VirtualName) or removes a device
    of the AMI (NoDevice, "" only); one with only a DeviceName is refused with
    MissingParameter before anything is launched, as EC2 (and moto upstream's
    _validate_block_device_mapping) answers: "The request must contain the parameter
    ebs". Installed after run_instances_honours_image_and_launch_parameters, whose
    mapping validation (partial overrides of the image's devices) it wraps."""
    from moto.ec2.exceptions import MissingParameterError
    from moto.ec2.responses.instances import InstanceResponse

    inner = InstanceResponse._validate_block_device_mapping

    def _validate_block_device_mapping(device_mapping: dict[str, Any]) -> None:
        if "NoDevice" not in device_mapping and not device_mapping.get("VirtualName") and "Ebs" not in device_mapping:
            raise MissingParameterError("ebs")
        inner(device_mapping)

    InstanceResponse._validate_block_device_mapping = staticmethod(_validate_block_device_mapping)


def _resolve_kms_key(backend: Any, key: str | None) -> str | None:
    """EC2 stores the key ARN whatever form (id, alias, ARN) the caller used."""
    if not key or key.startswith("arn:"):
        return key
    try:
        from moto.kms import kms_backends

        return kms_backends[backend.account_id][backend.region_name].describe_key(key).arn
    except Exception:  # unknown key: leave it as given (KMS rules are kms.py's)
        return key


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
            raise ec2_error("InvalidGroup.NotFound", f"The security group '{group_id}' does not exist")
        if subnet is not None and group.vpc_id and group.vpc_id != subnet.vpc_id:
            raise ec2_error("InvalidParameter",
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
            raise ec2_error("InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.")
        snap_size = snap.volume_size if snap is not None else None
        size = req.get("VolumeSize") or image_ebs.get("VolumeSize") or snap_size
        if size is None:
            raise ec2_error("MissingParameter", "The request must contain the parameter size or snapshotId")
        if snap_size is not None and int(size) < int(snap_size):
            raise ec2_error(
                "InvalidBlockDeviceMapping",
                f"Volume of size {size}GB is smaller than snapshot '{snap.id}', expect size >= {snap_size}GB",
            )
        volume_type = req.get("VolumeType") or image_ebs.get("VolumeType") or "gp2"
        iops = req.get("Iops")
        if iops is None and volume_type == image_ebs.get("VolumeType"):
            iops = image_ebs.get("Iops")
        if iops and volume_type not in IOPS_TYPES:
            raise ec2_error("InvalidParameterCombination",
                       f"The parameter iops is not supported for {volume_type} volumes.")
        if volume_type in ("io1", "io2") and not iops:
            raise ec2_error("InvalidParameterCombination",
                       f"The parameter iops must be specified for {volume_type} volumes.")
        if volume_type == "gp3" and not iops:
            iops = 3000
        throughput = req.get("Throughput")
        if throughput is None and volume_type == image_ebs.get("VolumeType"):
            throughput = image_ebs.get("Throughput")
        if throughput and volume_type != "gp3":
            raise ec2_error("InvalidParameterCombination",
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
                raise ec2_error("InvalidParameterDependency",
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


def cpu_options_problem(instance_type: str, cpu_options: dict[str, Any] | None) -> Exception | None:
    """EC2 User Guide "Rules for specifying CPU options" / "Supported CPU options for Amazon
    EC2 instance types" (aws-rules.md 22): CPU options can be given only for types that
    list valid core counts (DescribeInstanceTypes VCpuInfo.ValidCores: T2 and other older
    types have none) and never for bare metal; RunInstances with CpuOptions for any other
    type is UnsupportedOperation. (The message wording is ours: AWS does not document it.)"""
    if not cpu_options:
        return None
    info = _type_info(instance_type)
    if info.get("BareMetal") or instance_type.endswith(".metal") or not (info.get("VCpuInfo") or {}).get("ValidCores"):
        return ec2_error(
            "UnsupportedOperation",
            f"The instance type {instance_type} does not support specifying CPU options.",
        )
    return None


def cpu_options_only_where_the_type_supports_them() -> None:
    """RunInstances with CpuOptions is refused, before anything is launched, for a type
    that does not support CPU options (see cpu_options_problem)."""
    from moto.ec2.models.instances import InstanceBackend

    inner = InstanceBackend.run_instances

    def run_instances(self: Any, image_id: str, count: int, user_data: Any,
                      security_group_names: list[str], **kwargs: Any) -> Any:
        params = getattr(_request, "run", None) or {}
        problem = cpu_options_problem(kwargs.get("instance_type") or "m1.small", params.get("CpuOptions"))
        if problem is not None:
            raise problem
        return inner(self, image_id, count, user_data, security_group_names, **kwargs)

    InstanceBackend.run_instances = run_instances


def _type_info(instance_type: str) -> dict[str, Any]:
    """What moto's catalogue (DescribeInstanceTypes data) says of a type; {} if unknown."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    return INSTANCE_TYPES.get(instance_type) or {}


def _vcpu_info(instance_type: str) -> dict[str, Any] | None:
    return _type_info(instance_type).get("VCpuInfo")


# =================================================================================
# Sharing rules 2 and 4 at launch and start
# =================================================================================
def volume_kms_problem(backend, instance, operations):
    """Rule 4 for the instance's own EBS volumes: the caller must be allowed `operations`
    through EC2 on the key of every encrypted volume attached to it (a volume encrypted
    without a key id is under the owner's default EBS key). None or an ERRORS name."""
    from .ebs_encryption import ebs_default_key_arn

    me, region = backend.account_id, backend.region_name
    principal = caller_of(me, region)
    seen = set()
    for _device, bdt in instance.get_block_device_mapping:
        volume = backend.volumes.get(getattr(bdt, "volume_id", None))
        if volume is None or not volume.encrypted:
            continue
        ref = volume.kms_key_id or ebs_default_key_arn(backend)
        if ref in seen:
            continue
        seen.add(ref)
        key = resolve_key(ref, me, region)
        problem = ec2_key_use_problem(key if key is not None else ref, me, principal, region, operations, "launch")
        if problem:
            return problem
    return None


def launch_kms_problem(backend, ami, block_device_mappings=None):
    """Rule 4 (launch). EC2 UG "Share an AMI" / EBS UG: launching from an AMI with
    encrypted snapshots needs use of every snapshot's key (and of any KmsKeyId given in
    the launch's block device mappings), else the instance goes from pending to
    terminated with StateReason Client.InternalError. (The keys of the volumes the
    launch made, e.g. under the default key of encryption by default, are
    volume_kms_problem's.)"""
    me = backend.account_id
    region = backend.region_name
    principal = caller_of(me, region)
    ops = config.get("kmsLaunchOperations")
    for snap in image_snapshots(ami):
        if snap.encrypted:
            problem = ec2_key_use_problem(snapshot_key(snap), me, principal, region, ops, "launch")
            if problem:
                return problem
    for m in block_device_mappings or []:
        key_ref = (m.get("Ebs") or {}).get("KmsKeyId")
        if key_ref:
            problem = ec2_key_use_problem(key_ref, me, principal, region, ops, "launch")
            if problem:
                return problem
    return None


def fail_launch(backend, instance, problem) -> None:
    """The instance is torn down (volumes, interfaces) and shows `pending` then
    `terminated` with the StateReason; with instances.py's clock states it stays
    `pending` for instancePendingSeconds first, otherwise it is `terminated` at once
    (the RunInstances response itself always says `pending`)."""
    code, message = ERRORS[problem]
    before = instance.__dict__.get("_ferry_raw_state_reason")
    instance.__dict__["ferry_launch_failure"] = (code, message)
    try:
        backend.terminate_instances([instance.id])
    except Exception:
        instance.terminate()
    instance.state_reason = before  # not "user initiated": shown once terminated
    state = instance._state
    if hasattr(state, "go"):
        state.go("pending", "terminated", config.get("instancePendingSeconds"))
    instance._reason = ""


def fail_start(backend, instance, problem) -> None:
    """A start refused for its keys: the instance shows `pending` then `stopped` with the
    StateReason; with instances.py's clock states it stays `pending` for
    instancePendingSeconds first, otherwise it is `stopped` at once (StartInstances
    itself answers `pending`). Its volumes stay attached."""
    code, message = ERRORS[problem]
    instance.__dict__["ferry_start_failure"] = (code, message)
    state = instance._state
    if hasattr(state, "go"):
        state.go("pending", "stopped", config.get("instancePendingSeconds"))
    else:
        state.name, state.code = "stopped", 80


def _instance_state_reason_property():
    """An instance whose launch failed shows the failure's StateReason once it is
    terminated, one whose start failed once it is stopped again (before that, whatever
    moto / instances.py set)."""

    def fget(self):
        failure = self.__dict__.get("ferry_launch_failure")
        ends_in = "terminated"
        if not failure:
            failure, ends_in = self.__dict__.get("ferry_start_failure"), "stopped"
        if failure and self.state == ends_in:
            from moto.ec2.models.instances import StateReason

            return StateReason(failure[1], failure[0])
        return self.__dict__.get("_ferry_raw_state_reason")

    def fset(self, value):
        self.__dict__["_ferry_raw_state_reason"] = value

    return property(fget, fset)


def _wrap_run_instances(prev):
    def run_instances(self, image_id, count, user_data, security_group_names, **kwargs):
        """Rule 2. EC2 API Reference, RunInstances: the AMI must be available to the
        caller (own, shared with it, or public) -> else InvalidAMIID.NotFound."""
        from moto.ec2.exceptions import InvalidAMIIdError

        ami = None
        if image_id and str(image_id).startswith("ami-"):
            ami = find_visible_image(self, image_id)
            if ami is None and (
                unknown_image_ids_are_refused() or find_image(self, image_id) is not None
            ):
                raise InvalidAMIIdError(image_id)
        reservation = prev(self, image_id, count, user_data, security_group_names, **kwargs)
        image_problem = launch_kms_problem(self, ami, kwargs.get("block_device_mappings")) if ami is not None else None
        for instance in reservation.instances:
            problem = image_problem or volume_kms_problem(self, instance, config.get("kmsLaunchOperations"))
            if problem:
                fail_launch(self, instance, problem)
        return reservation

    return run_instances


def launch_needs_a_visible_image_and_its_keys() -> None:
    """Sharing rules 2 and 4 at launch (_wrap_run_instances, fail_launch): the keys of
    the image's snapshots, of the request's KmsKeyIds and of every encrypted volume the
    launch made (AWS knowledge center "encrypted-volumes-stops-immediately": an instance
    launched with encrypted volumes whose key the launching principal may not use goes
    from pending to terminated, StateReason Client.InternalError, "Client.InternalError:
    Client error on launch"; RunInstances itself succeeds)."""
    from moto.ec2.models.instances import Instance, InstanceBackend

    InstanceBackend.run_instances = _wrap_run_instances(InstanceBackend.run_instances)
    if not isinstance(Instance.__dict__.get("state_reason"), property):
        Instance.state_reason = _instance_state_reason_property()


def _wrap_start_instances(prev):
    def start_instances(self, instance_ids):
        started = prev(self, instance_ids)
        for instance, previous in started:
            if getattr(previous, "name", None) != "stopped":
                continue  # already pending/running: nothing was started
            problem = volume_kms_problem(self, instance, config.get("kmsStartOperations"))
            if problem:
                fail_start(self, instance, problem)
            else:
                instance.__dict__.pop("ferry_start_failure", None)
        return started

    return start_instances


def start_needs_use_of_the_volume_keys() -> None:
    """Rule 4 at start. AWS knowledge center "kms-iam-ec2-permission" ("I tried to start
    the instance, but it changed from the Pending state to Stopped"): "If you encrypted
    the EBS volume with an AWS Key Management Service (AWS KMS) key ... The IAM principal
    that calls the StartInstances API action must have kms:CreateGrant permissions to
    create a grant for Amazon EC2. The grant allows Amazon EC2 to decrypt the volume's
    data key"; describe-instances then shows StateReason {Code Client.InternalError,
    Message "Client.InternalError: Client error on launch"}. EBS UG "Requirements for
    Amazon EBS encryption" adds kms:Decrypt. So StartInstances succeeds (`pending`), and
    an instance with an encrypted volume whose key the caller may not use for
    `kmsStartOperations` through EC2 (kms.ec2_may_use_key) goes back to `stopped` with
    that StateReason (fail_start); a disabled key or one pending deletion gives
    Client.InvalidKMSKey.InvalidState. Installed after
    launch_needs_a_visible_image_and_its_keys (its StateReason property)."""
    from moto.ec2.models.instances import Instance, InstanceBackend

    InstanceBackend.start_instances = _wrap_start_instances(InstanceBackend.start_instances)
    if not isinstance(Instance.__dict__.get("state_reason"), property):
        Instance.state_reason = _instance_state_reason_property()
