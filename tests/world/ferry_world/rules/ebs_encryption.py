"""EBS encryption (EBS UG "Amazon EBS encryption", "Encryption by default"): the account's
default key (the one set with ModifyEbsDefaultKmsKeyId, else the AWS managed key aws/ebs),
the key of an encrypted snapshot, snapshots that keep their volume's key, and the
GetEbsDefaultKmsKeyId / ResetEbsDefaultKmsKeyId calls moto lacks.
"""
from __future__ import annotations

from .common import kms_backends
from .kms import AWS_MANAGED_EBS_ALIAS, ensure_aws_managed_key, is_aws_managed_key, resolve_key


def _use_aws_ebs_key(ec2_backend) -> str:
    kms = kms_backends()[ec2_backend.account_id][ec2_backend.region_name]
    key = ensure_aws_managed_key(kms, AWS_MANAGED_EBS_ALIAS)
    ec2_backend.default_kms_key_id = key.arn
    return key.arn


def ebs_default_key_arn(ec2_backend) -> str:
    """EBS UG "Encryption by default": the account's default key is the one set with
    ModifyEbsDefaultKmsKeyId, else the AWS managed key aws/ebs (created on demand)."""
    if ec2_backend.default_kms_key_id:
        return ec2_backend.default_kms_key_id
    return _use_aws_ebs_key(ec2_backend)


def _create_default_encryption_key(self) -> str:
    return _use_aws_ebs_key(self)


def snapshot_key(snapshot):
    """The KMS key of an encrypted snapshot (None when unencrypted). Snapshots moto made
    encrypted without a key id are under the owner's aws/ebs key."""
    if not snapshot.encrypted:
        return None
    backend = snapshot.ec2_backend
    ref = snapshot.kms_key_id or ebs_default_key_arn(backend)
    return resolve_key(ref, backend.account_id, backend.region_name)


def snapshot_under_aws_managed_key(snapshot) -> bool:
    """Rule 6: encrypted under the AWS managed key (aws/ebs)."""
    if not snapshot.encrypted:
        return False
    key = snapshot_key(snapshot)
    return key is None or is_aws_managed_key(key)


def _wrap_create_snapshot(prev):
    def create_snapshot(self, volume_id, description, owner_id=None, from_ami=None):
        """A snapshot of an encrypted volume is encrypted under the volume's key (EBS UG
        "How EBS encryption works"); stock moto drops the key id."""
        snap = prev(self, volume_id, description, owner_id=owner_id, from_ami=from_ami)
        vol = snap.volume
        if getattr(vol, "encrypted", False):
            snap.encrypted = True
            if not snap.kms_key_id:
                snap.kms_key_id = vol.kms_key_id or ebs_default_key_arn(self)
        return snap

    return create_snapshot


def get_ebs_default_kms_key_id(self):
    """EC2 API Reference, GetEbsDefaultKmsKeyId (missing in moto): the key set with
    ModifyEbsDefaultKmsKeyId, else alias/aws/ebs."""
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    return ActionResult({"KmsKeyId": self.ec2_backend.default_kms_key_id or AWS_MANAGED_EBS_ALIAS})


def reset_ebs_default_kms_key_id(self):
    """EC2 API Reference, ResetEbsDefaultKmsKeyId: back to the AWS managed key."""
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    self.ec2_backend.default_kms_key_id = ""
    return ActionResult({"KmsKeyId": ebs_default_key_arn(self.ec2_backend)})


def ebs_encrypts_under_the_default_key() -> None:
    """The account's default EBS key is aws/ebs unless set (ebs_default_key_arn); a
    snapshot of an encrypted volume keeps the volume's key (_wrap_create_snapshot)."""
    from moto.ec2.models.elastic_block_store import EBSBackend

    EBSBackend._create_default_encryption_key = _create_default_encryption_key
    EBSBackend.create_snapshot = _wrap_create_snapshot(EBSBackend.create_snapshot)


def ebs_default_kms_key_calls() -> None:
    """EC2 API Reference, GetEbsDefaultKmsKeyId and ResetEbsDefaultKmsKeyId."""
    from moto.ec2.responses import EC2Response

    EC2Response.get_ebs_default_kms_key_id = get_ebs_default_kms_key_id
    EC2Response.reset_ebs_default_kms_key_id = reset_ebs_default_kms_key_id
