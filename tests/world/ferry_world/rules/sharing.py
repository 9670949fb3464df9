"""AMI / snapshot sharing, cross-account copy and KMS key-use rules on top of moto 5.2.5.

Stock moto keeps every account's EC2 and KMS resources strictly separate: another
account's AMIs, snapshots and keys are invisible, CopyImage only looks in the caller's
own account, KMS never checks who may use a key, encrypted AMIs can be made public and
image block public access does not exist. This module patches moto (in process, before
the server starts) so that sharing works, and fails, the way AWS documents it.

Every rule is a named function with the AWS document it follows. `install()` applies
them; it is idempotent and composes with patches installed earlier (rules/migration.py
is installed first): every patch wraps the implementation it finds.

Error codes and messages chosen where AWS's exact wording is not documented are listed
in ERRORS below, with how sure we are of each, so they are changed in one place.

World extensions (not AWS APIs, documented as such):
- ModifyImageAttribute `ProductCodes=[...]` attaches product codes to an AMI you own (AWS
  documents the parameter as "not supported"; the world needs a way to make a
  Marketplace-like AMI).
- RegisterImage with `BlockDeviceMappings` referencing your own snapshots builds the AMI
  from those snapshots (stock moto ignores them), so tests can build AMIs whose
  snapshots are encrypted under a chosen key.
"""
from __future__ import annotations

import copy as _copy
import fnmatch
import hashlib
import json
import re
import threading
from .. import config
from ..policy import as_list as _as_list
from ..policy import conditions_hold

# ---------------------------------------------------------------------------------
# Settings this module reads (added to config.DEFAULTS by install()).
SETTINGS = {
    # Image block public access state of an account/Region nobody has set yet.
    # AWS: on by default for new accounts (EC2 UG, "Block public access to your AMIs").
    "imageBlockPublicAccessDefault": "block-new-sharing",
    # RunInstances / CopyImage with an AMI id that exists nowhere -> InvalidAMIID.NotFound
    # (AWS). Set false for stock moto's lenient behaviour.
    "rejectUnknownImageIds": True,
    # KMS operations the calling account must be allowed (key policy or grant) on the
    # key of every encrypted snapshot of an AMI to launch from it / copy it, and on the
    # destination key of a re-encrypting copy. EBS UG "Share the KMS key used to encrypt
    # a shared snapshot" lists DescribeKey, CreateGrant, Decrypt, ReEncrypt*,
    # GenerateDataKey*; the world requires the subset EBS cannot work without.
    "kmsLaunchOperations": ["Decrypt", "CreateGrant"],
    "kmsCopySourceOperations": ["Decrypt", "CreateGrant", "ReEncryptFrom"],
    "kmsCopyDestinationOperations": ["GenerateDataKeyWithoutPlaintext", "CreateGrant", "ReEncryptTo"],
}

# ---------------------------------------------------------------------------------
# Error codes/messages (code, message, confidence).
ERRORS = {
    # Rule 3. Message quoted by users and in aws-rules.md rule 4; code InvalidRequest:
    # fairly sure (it is what the CLI prints in the reports we know of).
    "copy_storage": ("InvalidRequest", "You do not have permission to access the storage of this ami"),
    # Rule 8. EC2 UG "Copy an AMI": an AMI with a billing product code shared from
    # another account cannot be copied. Code/message: moderately sure of the code,
    # wording is ours.
    "copy_product_codes": (
        "InvalidRequest",
        "Images with EC2 BillingProduct codes cannot be copied to another AWS account.",
    ),
    # Rule 5. EC2 UG "Make your AMI public": only AMIs without encrypted snapshots.
    # Code InvalidParameter: moderately sure; wording is ours.
    "public_encrypted": ("InvalidParameter", "Encrypted images cannot be made public."),
    # Rule 8 (public). Same document: AMIs with product codes cannot be made public.
    "public_product_codes": ("InvalidParameter", "Images with product codes cannot be made public."),
    # Rule 7. EC2 UG "Block public access to your AMIs". Code OperationNotPermitted and
    # wording: not confirmed (low confidence).
    "public_blocked": (
        "OperationNotPermitted",
        "Image block public access is enabled for this account and Region; the image cannot be made public.",
    ),
    # Rule 6 (AMI). Message quoted by EC2 Image Builder distribution errors (AWS
    # knowledge center), code InvalidParameter from aws-rules.md rule 1: fairly sure.
    "share_aws_managed_ami": (
        "InvalidParameter",
        "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.",
    ),
    # Rule 6 (snapshot). Quoted by users of ModifySnapshotAttribute: fairly sure.
    "share_aws_managed_snapshot": ("OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared"),
    # EBS UG: encrypted snapshots cannot be made public. Wording: ours (moderate).
    "public_encrypted_snapshot": ("OperationNotPermitted", "Encrypted snapshots cannot be made public"),
    # Attribute calls on a shared resource you do not own. Low-moderate confidence.
    "not_owner_image": ("AuthFailure", "Not authorized for image:{id}"),
    "not_owner_snapshot": ("AuthFailure", "Not authorized for snapshot:{id}"),
    # Rule 4, launch: the instance goes pending -> terminated with this StateReason
    # (documented in AWS re:Post / knowledge-center articles): sure.
    "launch_kms": ("Client.InternalError", "Client.InternalError: Client error on launch"),
    # Key disabled / pending deletion at launch: known EC2 StateReason, fairly sure.
    "launch_kms_state": (
        "Client.InvalidKMSKey.InvalidState",
        "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state",
    ),
    # Rule 4, copy: AWS documents that the KMS key of a copy is checked asynchronously
    # ("the action may appear to complete ... This action will eventually report
    # failure"): CopyImage returns an ImageId and the image becomes `failed`. The
    # StateReason wording is ours (EBS reports "Given key ID is not accessible" for
    # snapshot copies): low-moderate confidence.
    "copy_kms": ("Client.InternalError", "Client.InternalError: Given key ID is not accessible"),
    "copy_kms_state": (
        "Client.InvalidKMSKey.InvalidState",
        "Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state",
    ),
    # CopyImage ClientToken reused with other parameters (EC2 idempotency doc): sure of code.
    "idempotent_mismatch": (
        "IdempotentParameterMismatch",
        "The client token you provided is associated with a resource that is already deleted or has different parameters.",
    ),
}

AWS_MANAGED_EBS_ALIAS = "alias/aws/ebs"
VALID_GRANT_OPERATIONS = {
    "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom",
    "ReEncryptTo", "Sign", "Verify", "GetPublicKey", "CreateGrant", "RetireGrant", "DescribeKey",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac",
    "DeriveSharedSecret",
}

_ctx = threading.local()
_installed = False
_copy_lock = threading.RLock()  # one CopyImage ClientToken at a time


# =================================================================================
# Request context: who is calling (set at the start of every request).
# =================================================================================
def _partition(region: str | None) -> str:
    from moto.utilities.utils import get_partition

    return get_partition(region or "us-east-1")


def _principal_for(account: str, access_key: str | None, region: str | None) -> str:
    """The IAM principal behind an access key: the assumed role's ARN, a user's ARN, or
    the account root."""
    part = _partition(region)
    root = f"arn:{part}:iam::{account}:root"
    try:
        from moto.iam.models import iam_backends

        if account not in list(iam_backends.keys()):
            return root
        iam = iam_backends[account][part]
        key = getattr(iam, "access_keys", {}).get(access_key) if access_key else None
        if key is not None:
            if getattr(key, "role_arn", None):
                return key.role_arn
            if getattr(key, "user_name", None):
                return f"arn:{part}:iam::{account}:user/{key.user_name}"
    except Exception:  # pragma: no cover - defensive: never break a request here
        pass
    return root


def _wrap_setup_class(prev):
    def setup_class(self, *args, **kwargs):
        result = prev(self, *args, **kwargs)
        try:
            account = self.current_account
            region = getattr(self, "region", None)
            _ctx.account = account
            _ctx.region = region
            _ctx.principal = _principal_for(account, getattr(self, "access_key", None), region)
        except Exception:  # pragma: no cover
            _ctx.account = None
            _ctx.principal = None
        return result

    setup_class._ferry_sharing = True
    return setup_class


def _caller_of(account: str, region: str | None = None) -> str:
    """The principal ARN making the current request when it acts as `account`, else the
    account root (calls made by the world itself, outside a request)."""
    if getattr(_ctx, "account", None) == account and getattr(_ctx, "principal", None):
        return _ctx.principal
    return f"arn:{_partition(region)}:iam::{account}:root"


# =================================================================================
# Backends without creating new ones
# =================================================================================
def _existing(backend_dict, account: str, region: str):
    if account not in list(backend_dict.keys()):
        return None
    regions = backend_dict[account]
    if region not in list(regions.keys()):
        return None
    return regions[region]


def _ec2_backends():
    from moto.ec2.models import ec2_backends

    return ec2_backends


def _kms_backends():
    from moto.kms.models import kms_backends

    return kms_backends


def _other_ec2_backends(backend):
    """EC2 backends of every other account that exists in `backend`'s region."""
    ec2 = _ec2_backends()
    out = []
    for account in list(ec2.keys()):
        if account == backend.account_id:
            continue
        other = _existing(ec2, account, backend.region_name)
        if other is not None:
            out.append(other)
    return out


# =================================================================================
# Organizations membership (moto's Organizations backend)
# =================================================================================
def _org_backend_of(account: str):
    """The Organizations backend of the management account of `account`'s organization.
    moto keeps `organizations_backends.master_accounts[member] = (management, partition)`
    for created/invited members; the management account holds `.org` itself."""
    try:
        from moto.organizations.models import organizations_backends as orgs
    except Exception:  # pragma: no cover
        return None
    entry = orgs.master_accounts.get(account)
    if entry:
        mgmt, partition = entry
        backend = _existing(orgs, mgmt, partition)
        if backend is not None and backend.org is not None:
            return backend
    for partition in ("aws", "aws-cn", "aws-us-gov"):
        backend = _existing(orgs, account, partition)
        if backend is not None and backend.org is not None:
            return backend
    return None


def _org_arn_of(account: str) -> str | None:
    backend = _org_backend_of(account)
    return backend.org.arn if backend else None


def _org_id_of(account: str) -> str | None:
    backend = _org_backend_of(account)
    return backend.org.id if backend else None


def _ou_arns_of(account: str) -> set[str]:
    """ARNs of every OU (and the root) that contains `account`, directly or through
    child OUs: sharing with an OU covers its child OUs (EC2 UG, "Share an AMI with
    organizations or OUs")."""
    backend = _org_backend_of(account)
    if backend is None:
        return set()
    member = next((a for a in backend.accounts if a.id == account), None)
    if member is None:
        return set()
    by_id = {ou.id: ou for ou in backend.ou}
    arns: set[str] = set()
    parent = member.parent_id
    seen = set()
    while parent and parent in by_id and parent not in seen:
        seen.add(parent)
        ou = by_id[parent]
        arns.add(ou.arn)
        parent = getattr(ou, "parent_id", None)
    return arns


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
        if lp.get("OrganizationArn") and lp["OrganizationArn"] == _org_arn_of(account):
            return True
        if lp.get("OrganizationalUnitArn") and lp["OrganizationalUnitArn"] in _ou_arns_of(account):
            return True
    return False


def _explicitly_shared_with(permissions, account: str) -> bool:
    """DescribeImages ExecutableUsers=self: AMIs shared with the account itself, its
    organization or OU (not merely public)."""
    return launch_permission_covers([lp for lp in permissions if lp.get("Group") != "all"], account)


def _owner_account(ami) -> str:
    return ami.ec2_backend.account_id


def _foreign_images(backend) -> list:
    """Rule 1: AMIs of other accounts (same Region) the backend's account may launch."""
    out = []
    for other in _other_ec2_backends(backend):
        for ami in list(other.amis.values()):
            # moto copies the default (amazon-owned) AMIs into every backend: only the
            # AMIs an account really owns count as its own.
            if ami.owner_id != other.account_id:
                continue
            if launch_permission_covers(ami.launch_permissions, backend.account_id):
                out.append(ami)
    return out


def find_visible_image(backend, image_id: str):
    """The AMI `image_id` as the backend's account sees it, or None."""
    own = backend.amis.get(image_id)
    if own is not None:
        return own
    for ami in _foreign_images(backend):
        if ami.id == image_id:
            return ami
    return None


def _image_exists_anywhere(region: str, image_id: str) -> bool:
    ec2 = _ec2_backends()
    for account in list(ec2.keys()):
        b = _existing(ec2, account, region)
        if b is not None and image_id in b.amis:
            return True
    return False


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
        malformed = [i for i in ami_ids if not str(i).startswith("ami-")]
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
# Snapshots of an AMI; encryption helpers
# =================================================================================
def image_block_device_mappings(ami) -> list[dict]:
    return list(ami.block_device_mappings)


def store_image_mappings(ami, mappings: list[dict]) -> None:
    """Where an image keeps its block device mappings: the same slot rules/migration.py
    uses (`set_image_mappings`), so both modules see one list."""
    ami.__dict__["_ferry_mappings"] = mappings


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


def _key_arn_parts(key_ref: str):
    m = re.match(r"^arn:aws[\w-]*:kms:([\w-]+):(\d{12}):(key|alias)/(.+)$", key_ref or "")
    if not m:
        return None
    return {"region": m.group(1), "account": m.group(2), "type": m.group(3), "name": m.group(4)}


def resolve_key(key_ref: str | None, account: str, region: str):
    """A KMS Key from a key id, key ARN, alias name or alias ARN, or None. Keys of
    other accounts are found by ARN only (KMS developer guide: "To specify a KMS key in
    a different AWS account, you must use the key ARN or alias ARN")."""
    if not key_ref:
        return None
    parts = _key_arn_parts(key_ref)
    if parts:
        backend = _existing(_kms_backends(), parts["account"], parts["region"])
        if backend is None and parts["account"] == account:
            backend = _kms_backends()[account][parts["region"]]
        if backend is None:
            return None
        name = parts["name"] if parts["type"] == "key" else "alias/" + parts["name"]
    else:
        backend = _kms_backends()[account][region]
        name = key_ref
    try:
        if name.startswith("alias/"):
            if name.startswith("alias/aws/"):
                _ensure_aws_managed_key(backend, name)
            key_id = backend.get_key_id_from_alias(name)
            return backend.keys.get(key_id) if key_id else None
        return backend.keys.get(name)
    except Exception:
        return None


def aws_managed_ebs_policy(account: str, region: str) -> str:
    """The key policy AWS gives the AWS managed key aws/ebs (KMS developer guide,
    "AWS managed keys"): usable only through EBS by principals of the owning account."""
    part = _partition(region)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "auto-ebs-2",
            "Statement": [
                {
                    "Sid": "Allow access through EBS for all principals in the account that are authorized to use EBS",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                        "kms:CreateGrant", "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account,
                            "kms:ViaService": f"ec2.{region}.amazonaws.com",
                        }
                    },
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{part}:iam::{account}:root"},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                    "Resource": "*",
                },
            ],
        }
    )


def _ensure_aws_managed_key(kms_backend, alias: str):
    """Rule 6 support. KMS developer guide, "AWS managed keys": created on first use by
    the service, KeyManager AWS, fixed policy."""
    for key in kms_backend.keys.values():
        if alias in key.aliases:
            return key
    key = kms_backend.create_key(
        policy=None,
        key_usage="ENCRYPT_DECRYPT",
        key_spec="SYMMETRIC_DEFAULT",
        description=(
            "Default key that protects my EBS volumes when no other key is defined"
            if alias == AWS_MANAGED_EBS_ALIAS
            else f"Default key that protects my {alias.split('/')[-1]} resources"
        ),
        tags=None,
    )
    key.key_manager = "AWS"
    if alias == AWS_MANAGED_EBS_ALIAS:
        key.policy = aws_managed_ebs_policy(kms_backend.account_id, kms_backend.region_name)
    kms_backend.create_alias(key.id, alias)
    return key


def _wrap_generate_default_keys(prev):
    def _generate_default_keys(self, alias_name):
        from moto.kms.utils import RESERVED_ALIASES

        if alias_name in RESERVED_ALIASES:
            return _ensure_aws_managed_key(self, alias_name).id
        return prev(self, alias_name)

    return _generate_default_keys


def ebs_default_key_arn(ec2_backend) -> str:
    """EBS UG "Encryption by default": the account's default key is the one set with
    ModifyEbsDefaultKmsKeyId, else the AWS managed key aws/ebs (created on demand)."""
    if ec2_backend.default_kms_key_id:
        return ec2_backend.default_kms_key_id
    kms = _kms_backends()[ec2_backend.account_id][ec2_backend.region_name]
    key = _ensure_aws_managed_key(kms, AWS_MANAGED_EBS_ALIAS)
    ec2_backend.default_kms_key_id = key.arn
    return key.arn


def _create_default_encryption_key(self) -> str:
    kms = _kms_backends()[self.account_id][self.region_name]
    key = _ensure_aws_managed_key(kms, AWS_MANAGED_EBS_ALIAS)
    self.default_kms_key_id = key.arn
    return key.arn


def snapshot_key(snapshot):
    """The KMS key of an encrypted snapshot (None when unencrypted). Snapshots moto made
    encrypted without a key id are under the owner's aws/ebs key."""
    if not snapshot.encrypted:
        return None
    backend = snapshot.ec2_backend
    ref = snapshot.kms_key_id or ebs_default_key_arn(backend)
    return resolve_key(ref, backend.account_id, backend.region_name)


def is_aws_managed_key(key) -> bool:
    return key is not None and getattr(key, "key_manager", "CUSTOMER") == "AWS"


def snapshot_under_aws_managed_key(snapshot) -> bool:
    """Rule 6: encrypted under the AWS managed key (aws/ebs)."""
    if not snapshot.encrypted:
        return False
    key = snapshot_key(snapshot)
    return key is None or is_aws_managed_key(key)


# =================================================================================
# Rule 4: may a principal use a KMS key (key policy + grants)
# =================================================================================
def _action_matches(patterns, action: str) -> bool:
    action = action.lower()
    return any(fnmatch.fnmatchcase(action, str(p).lower()) for p in _as_list(patterns))


def _statement_action_applies(st: dict, action: str) -> bool:
    if "NotAction" in st:
        return not _action_matches(st["NotAction"], action)
    return _action_matches(st.get("Action"), action)


def _resource_applies(st: dict, key_arn: str) -> bool:
    if "NotResource" in st:
        return not any(fnmatch.fnmatchcase(key_arn, r) for r in _as_list(st["NotResource"]))
    resources = _as_list(st.get("Resource", "*"))
    return any(r == "*" or fnmatch.fnmatchcase(key_arn, r) for r in resources)


def principal_matches(value: str, account: str, principal: str) -> bool:
    """A policy principal or grantee `value` covers the caller (`principal` of
    `account`): `*`, the account id, the account root ARN (the whole account), or the
    caller's own role/user ARN."""
    if value == "*" or value == account:
        return True
    m = re.match(r"^arn:aws[\w-]*:iam::(\d{12}):root$", value)
    if m:
        return m.group(1) == account
    if value == principal:
        return True
    # an assumed-role session ARN given for a role
    m = re.match(r"^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([^/]+)/", value)
    if m and m.group(2) == account and principal.endswith(":role/" + m.group(3)):
        return True
    return False


def _statement_principal_applies(st: dict, account: str, principal: str) -> bool:
    if "NotPrincipal" in st:
        p = st["NotPrincipal"]
        values = _as_list(p.get("AWS")) if isinstance(p, dict) else _as_list(p)
        return not any(principal_matches(v, account, principal) for v in values)
    p = st.get("Principal")
    if p == "*":
        return True
    if isinstance(p, dict):
        return any(principal_matches(v, account, principal) for v in _as_list(p.get("AWS")))
    return False


_KNOWN_CONDITION_KEYS = {
    "kms:calleraccount", "kms:viaservice", "kms:grantisforawsresource", "aws:principalaccount",
    "aws:principalarn", "aws:principalorgid",
}


def _context(account: str, principal: str, region: str, via_ec2: bool) -> dict:
    ctx = {
        "kms:calleraccount": account,
        "aws:principalaccount": account,
        "aws:principalarn": principal,
    }
    org_id = _org_id_of(account)
    if org_id:
        ctx["aws:principalorgid"] = org_id
    if via_ec2:
        ctx["kms:viaservice"] = f"ec2.{region}.amazonaws.com"
        ctx["kms:grantisforawsresource"] = "true"
    return ctx


def kms_key_allows(key, account: str, principal: str, action: str, via_ec2: bool = False) -> bool:
    """Rule 4. KMS developer guide, "Determining access to a KMS key": an explicit Deny
    in the key policy wins; otherwise the key policy must allow the principal (the
    account root ARN as principal allows the whole account), or a grant must name the
    principal (or its account) as grantee with the operation. Retired/revoked grants
    are gone. IAM identity policies are not modelled (the world takes them as
    allowing). Grant constraints (encryption context) are not checked."""
    try:
        policy = json.loads(key.policy) if key.policy else {}
    except (ValueError, TypeError):
        policy = {}
    ctx = _context(account, principal, key.region, via_ec2)
    allowed = False
    for st in _as_list(policy.get("Statement")):
        if not isinstance(st, dict):
            continue
        if not (_statement_action_applies(st, action) and _resource_applies(st, key.arn)):
            continue
        if not _statement_principal_applies(st, account, principal):
            continue
        if not conditions_hold(st.get("Condition"), ctx, _KNOWN_CONDITION_KEYS):
            continue
        if str(st.get("Effect", "")).lower() == "deny":
            return False
        allowed = True
    if allowed:
        return True
    op = action.split(":", 1)[-1]
    for grant in list(key.grants.values()):
        if op in (grant.operations or []) and principal_matches(grant.grantee_principal, account, principal):
            return True
    return False


def ec2_key_use_problem(key_ref, account: str, principal: str, region: str, operations, kind: str):
    """Rule 4 for EC2/EBS using a key on the caller's behalf (kms:ViaService ec2).
    Returns None or an ERRORS entry name."""
    key = resolve_key(key_ref, account, region) if isinstance(key_ref, str) else key_ref
    if key is None:
        return f"{kind}_kms"
    if getattr(key, "key_state", "Enabled") != "Enabled":
        return f"{kind}_kms_state"
    for op in operations:
        if not kms_key_allows(key, account, principal, f"kms:{op}", via_ec2=True):
            return f"{kind}_kms"
    return None


# ---------------------------------------------------------------------------------
# KMS API: cross-account use by key ARN, authorization, grants
# ---------------------------------------------------------------------------------
def _kms_access_denied(message: str):
    from moto.kms.exceptions import AccessDeniedException

    err = AccessDeniedException(message)
    err.description = json.dumps({"__type": "AccessDeniedException", "message": message})
    return err


def _kms_not_found(message: str):
    from moto.kms.exceptions import NotFoundException

    return NotFoundException(message)


def _denied_message(principal: str, action: str, key_arn: str) -> str:
    shown = principal
    m = re.match(r"^arn:(aws[\w-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)$", principal)
    if m:
        shown = f"arn:{m.group(1)}:sts::{m.group(2)}:assumed-role/{m.group(3)}/session"
    return (
        f"User: {shown} is not authorized to perform: {action} on resource: {key_arn} "
        f"because no resource-based policy allows the {action} action"
    )


# API action -> (permission checked on the key, usable across accounts)
# KMS API Reference: "Cross-account use: Yes/No" of each operation.
KMS_OPERATIONS = {
    "describe_key": ("kms:DescribeKey", True),
    "create_grant": ("kms:CreateGrant", True),
    "list_grants": ("kms:ListGrants", True),
    "revoke_grant": ("kms:RevokeGrant", True),
    "encrypt": ("kms:Encrypt", True),
    "decrypt": ("kms:Decrypt", True),
    "generate_data_key": ("kms:GenerateDataKey", True),
    "generate_data_key_without_plaintext": ("kms:GenerateDataKeyWithoutPlaintext", True),
    "get_key_rotation_status": ("kms:GetKeyRotationStatus", True),
    "sign": ("kms:Sign", True),
    "verify": ("kms:Verify", True),
    "get_public_key": ("kms:GetPublicKey", True),
    "get_key_policy": ("kms:GetKeyPolicy", False),
    "put_key_policy": ("kms:PutKeyPolicy", False),
    "enable_key": ("kms:EnableKey", False),
    "disable_key": ("kms:DisableKey", False),
    "schedule_key_deletion": ("kms:ScheduleKeyDeletion", False),
    "cancel_key_deletion": ("kms:CancelKeyDeletion", False),
    "enable_key_rotation": ("kms:EnableKeyRotation", False),
    "disable_key_rotation": ("kms:DisableKeyRotation", False),
    "update_key_description": ("kms:UpdateKeyDescription", False),
    "tag_resource": ("kms:TagResource", False),
    "untag_resource": ("kms:UntagResource", False),
    "list_resource_tags": ("kms:ListResourceTags", False),
}


def _kms_lookup(response, key_ref: str):
    """(backend, key) for a KeyId parameter as the caller sees it; (None, None) when
    it does not name a key visible to the caller."""
    account, region = response.current_account, response.region
    parts = _key_arn_parts(key_ref)
    if parts and parts["account"] != account:
        if parts["region"] != region:
            return None, None
        backend = _existing(_kms_backends(), parts["account"], region)
        if backend is None:
            return None, None
        key = resolve_key(key_ref, account, region)
        return backend, key
    backend = _kms_backends()[account][region]
    if parts and parts["region"] != region:
        return backend, None
    return backend, resolve_key(key_ref, account, region)


def kms_authorize(prev, method_name: str, action: str, cross_ok: bool):
    """Rule 4 (KMS API). KMS API Reference: operations marked "Cross-account use: Yes"
    accept another account's key ARN and are allowed by that key's policy or grants;
    others fail for keys of other accounts. Same-account calls are checked against the
    key policy too (an explicit Deny, or a policy that does not allow the caller)."""

    def method(self):
        if getattr(self, "_ferry_kms_checked", False):  # nested call (e.g. WithoutPlaintext)
            return prev(self)
        key_ref = self._get_param("KeyId")
        if method_name == "re_encrypt":
            key_ref = self._get_param("DestinationKeyId")
        if not key_ref:
            return prev(self)
        self._ferry_kms_checked = True
        try:
            return _checked(self, key_ref)
        finally:
            self._ferry_kms_checked = False

    def _checked(self, key_ref):
        account = self.current_account
        principal = _caller_of(account, self.region)
        parts = _key_arn_parts(key_ref)
        foreign = bool(parts and parts["account"] != account)
        backend, key = _kms_lookup(self, key_ref)
        if foreign:
            if key is None:
                raise _kms_not_found(f"Key '{key_ref}' does not exist")
            if not cross_ok or not kms_key_allows(key, account, principal, action):
                raise _kms_access_denied(_denied_message(principal, action, key.arn))
            self._ferry_kms_backend = backend
            try:
                return prev(self)
            finally:
                self._ferry_kms_backend = None
        if key is not None and not kms_key_allows(key, account, principal, action):
            raise _kms_access_denied(_denied_message(principal, action, key.arn))
        return prev(self)

    method.__name__ = method_name
    return method


def _kms_backend_property(prev_prop):
    def fget(self):
        override = getattr(self, "_ferry_kms_backend", None)
        if override is not None:
            return override
        return prev_prop.fget(self)

    return property(fget)


def create_grant_checked(prev):
    """Rule 4. KMS API Reference, CreateGrant: GranteePrincipal and Operations are
    required; every operation must be a grant operation (ValidationException)."""
    from moto.kms.exceptions import ValidationException

    def create_grant(self):
        grantee = self._get_param("GranteePrincipal")
        operations = self._get_param("Operations") or []
        if not grantee:
            raise ValidationException("1 validation error detected: Value null at 'granteePrincipal' failed to satisfy constraint: Member must not be null")
        if not operations:
            raise ValidationException("1 validation error detected: Value null at 'operations' failed to satisfy constraint: Member must not be null")
        bad = [o for o in operations if o not in VALID_GRANT_OPERATIONS]
        if bad:
            raise ValidationException(
                f"1 validation error detected: Value '{bad}' at 'operations' failed to satisfy constraint: "
                f"Member must satisfy constraint: [Member must satisfy enum value set: {sorted(VALID_GRANT_OPERATIONS)}]"
            )
        same = grant_with_same_name(self, grantee, operations)
        if same is not None:
            from moto.moto_api._internal import mock_random

            return json.dumps({"GrantId": same.id, "GrantToken": mock_random.get_random_hex()})
        return prev(self)

    return create_grant


def grant_with_same_name(response, grantee: str, operations: list):
    """Rule 4. KMS API Reference, CreateGrant `Name`: "When this value is present, you can
    retry a CreateGrant request with identical parameters; if the grant already exists,
    the original GrantId is returned without creating a new grant. Note that the returned
    grant token is unique with every CreateGrant request, even when a duplicate GrantId is
    returned." Identical: same name, grantee, operations, retiring principal and
    constraints on the same key. Stock moto always makes a new grant."""
    name = response._get_param("Name")
    if not name:
        return None
    _backend, key = _kms_lookup(response, response._get_param("KeyId") or "")
    if key is None:
        return None
    retiring = response._get_param("RetiringPrincipal")
    constraints = response._get_param("Constraints")
    for grant in list(key.grants.values()):
        if (
            grant.name == name
            and grant.grantee_principal == grantee
            and sorted(grant.operations or []) == sorted(operations)
            and (grant.retiring_principal or None) == (retiring or None)
            and (grant.constraints or None) == (constraints or None)
        ):
            return grant
    return None


def retire_grant(self):
    """Rule 4. KMS API Reference, RetireGrant: identify the grant by GrantToken, or by
    KeyId (key ARN across accounts) + GrantId. Allowed for the grant's retiring
    principal, its grantee when the grant includes RetireGrant, and the account that
    owns the key. Unknown token -> InvalidGrantTokenException, unknown id ->
    NotFoundException."""
    from moto.core.exceptions import JsonRESTError

    account, region = self.current_account, self.region
    principal = _caller_of(account, region)
    token = self._get_param("GrantToken")
    key_ref = self._get_param("KeyId")
    grant_id = self._get_param("GrantId")
    found = None
    if token:
        for acct in list(_kms_backends().keys()):
            backend = _existing(_kms_backends(), acct, region)
            if backend is None:
                continue
            for key in backend.keys.values():
                for grant in key.grants.values():
                    if grant.token == token:
                        found = (key, grant)
        if found is None:
            raise JsonRESTError("InvalidGrantTokenException", "The grant token is not valid.")
    else:
        if not key_ref or not grant_id:
            from moto.kms.exceptions import ValidationException

            raise ValidationException("Either GrantToken or both KeyId and GrantId must be specified")
        _backend, key = _kms_lookup(self, key_ref)
        if key is None:
            raise _kms_not_found(f"Key '{key_ref}' does not exist")
        grant = key.grants.get(grant_id)
        if grant is None:
            raise _kms_not_found(f"Grant ID {grant_id} not found")
        found = (key, grant)
    key, grant = found
    may = (
        key.account_id == account
        or (grant.retiring_principal and principal_matches(grant.retiring_principal, account, principal))
        or ("RetireGrant" in (grant.operations or []) and principal_matches(grant.grantee_principal, account, principal))
    )
    if not may:
        raise _kms_access_denied(_denied_message(principal, "kms:RetireGrant", key.arn))
    key.grants.pop(grant.id, None)
    return "{}"


def list_retirable_grants(self):
    """KMS API Reference, ListRetirableGrants: grants (in any account) whose retiring
    principal is the given principal."""
    wanted = self._get_param("RetiringPrincipal")
    grants = []
    for acct in list(_kms_backends().keys()):
        backend = _existing(_kms_backends(), acct, self.region)
        if backend is None:
            continue
        for key in backend.keys.values():
            grants += [g for g in key.grants.values() if g.retiring_principal == wanted]
    return json.dumps({"Grants": [g.to_json() for g in grants], "Truncated": False})


# =================================================================================
# EBS: snapshot keys, default encryption, snapshot visibility and sharing
# =================================================================================
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


def _find_visible_snapshot(backend, snapshot_id):
    own = backend.snapshots.get(snapshot_id)
    if own is not None:
        return own
    for snap in _foreign_snapshots(backend):
        if snap.id == snapshot_id:
            return snap
    return None


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
            snap = _find_visible_snapshot(self, snapshot_id)
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


def _snapshot_shared_with(snap, account: str) -> bool:
    return "all" in snap.create_volume_permission_groups or account in snap.create_volume_permission_userids


def _foreign_snapshots(backend) -> list:
    out = []
    for other in _other_ec2_backends(backend):
        for snap in list(other.snapshots.values()):
            if snap.owner_id != other.account_id:
                continue
            if _snapshot_shared_with(snap, backend.account_id):
                out.append(snap)
    return out


def describe_snapshots_visible(self, snapshot_ids=None, filters=None, owner_ids=None, restorable_by=None):
    """Rule 1 (snapshots). EC2 API Reference, DescribeSnapshots: "The snapshots
    available to you include public snapshots, private snapshots that you own, and
    private snapshots owned by other AWS accounts for which you have explicit create
    volume permissions." OwnerIds (`self`, `amazon`, ids) and RestorableByUserIds
    (`self` = owned or explicitly shared, `all` = public, an id = your snapshots shared
    with it) narrow the result."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.utils import generic_filter

    me = self.account_id
    snaps = list(self.snapshots.values())
    snaps += [s for s in _foreign_snapshots(self) if s.id not in self.snapshots]
    if snapshot_ids:
        snaps = [s for s in snaps if s.id in snapshot_ids]
        found = {s.id for s in snaps}
        missing = [i for i in snapshot_ids if i not in found]
        if missing:
            raise EC2ClientError("InvalidSnapshot.NotFound", f"The snapshot '{missing[0]}' does not exist.")
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


def _own_snapshot(backend, snapshot_id):
    from moto.ec2.exceptions import EC2ClientError, InvalidSnapshotIdError

    snap = backend.snapshots.get(snapshot_id)
    if snap is not None:
        return snap
    if _find_visible_snapshot(backend, snapshot_id) is not None:
        code, msg = ERRORS["not_owner_snapshot"]
        raise EC2ClientError(code, msg.format(id=snapshot_id))
    raise InvalidSnapshotIdError()


def snapshot_sharing_allowed(snap, user_ids, groups) -> None:
    """Rule 6 / rule 2 for snapshots. EBS UG "Share an Amazon EBS snapshot": snapshots
    encrypted with the AWS managed key cannot be shared; encrypted snapshots cannot be
    made public."""
    from moto.ec2.exceptions import EC2ClientError, InvalidAMIAttributeItemValueError

    for uid in user_ids or []:
        if not (isinstance(uid, str) and len(uid) == 12 and uid.isdigit()):
            raise InvalidAMIAttributeItemValueError("userId", uid)
    if groups and "all" in groups and snap.encrypted:
        raise EC2ClientError(*ERRORS["public_encrypted_snapshot"])
    if user_ids and snapshot_under_aws_managed_key(snap):
        raise EC2ClientError(*ERRORS["share_aws_managed_snapshot"])


def _wrap_add_cvp(prev):
    def add_create_volume_permission(self, snapshot_id, user_ids, groups):
        snap = _own_snapshot(self, snapshot_id)
        snapshot_sharing_allowed(snap, user_ids, groups)
        return prev(self, snapshot_id, user_ids=user_ids, groups=groups)

    return add_create_volume_permission


def _wrap_remove_cvp(prev):
    def remove_create_volume_permission(self, snapshot_id, user_ids=None, groups=None):
        _own_snapshot(self, snapshot_id)
        return prev(self, snapshot_id, user_ids=user_ids, groups=groups or [])

    return remove_create_volume_permission


def _wrap_get_cvp(prev):
    def getter(self, snapshot_id):
        _own_snapshot(self, snapshot_id)
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


# =================================================================================
# Rule 7: image block public access
# =================================================================================
def image_block_public_access_state(backend) -> str:
    """Rule 7. EC2 UG "Block public access to your AMIs": per account and Region,
    `block-new-sharing` or `unblocked`; on by default for new accounts (world setting
    imageBlockPublicAccessDefault). Changes apply at once (AWS: up to 10 minutes)."""
    state = getattr(backend, "ferry_image_bpa", None)
    if state is None:
        state = config.get("imageBlockPublicAccessDefault")
    return state


def get_image_block_public_access_state(self):
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    return ActionResult(
        {"ImageBlockPublicAccessState": image_block_public_access_state(self.ec2_backend), "ManagedBy": "account"}
    )


def enable_image_block_public_access(self):
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError

    self.error_on_dryrun()
    state = self._get_param("ImageBlockPublicAccessState")
    if state != "block-new-sharing":
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Value ({state}) for parameter ImageBlockPublicAccessState is invalid. Expected: 'block-new-sharing'.",
        )
    self.ec2_backend.ferry_image_bpa = "block-new-sharing"
    return ActionResult({"ImageBlockPublicAccessState": "block-new-sharing"})


def disable_image_block_public_access(self):
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    self.ec2_backend.ferry_image_bpa = "unblocked"
    return ActionResult({"ImageBlockPublicAccessState": "unblocked"})


# =================================================================================
# ModifyImageAttribute / DescribeImageAttribute (rules 1, 5, 6, 7, 8)
# =================================================================================
_ORG_ARN = re.compile(r"^arn:aws[\w-]*:organizations::\d{12}:organization/o-[a-z0-9]{10,32}$")
_OU_ARN = re.compile(r"^arn:aws[\w-]*:organizations::\d{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$")


def _own_image(backend, ami_id):
    from moto.ec2.exceptions import EC2ClientError, InvalidAMIIdError

    ami = backend.amis.get(ami_id)
    if ami is not None:
        return ami
    if find_visible_image(backend, ami_id) is not None:
        code, msg = ERRORS["not_owner_image"]
        raise EC2ClientError(code, msg.format(id=ami_id))
    raise InvalidAMIIdError(ami_id)


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
    from moto.ec2.exceptions import EC2ClientError

    if image_block_public_access_state(backend) == "block-new-sharing":
        raise EC2ClientError(*ERRORS["public_blocked"])
    if any(s.encrypted for s in image_snapshots(ami)):
        raise EC2ClientError(*ERRORS["public_encrypted"])
    if ami.product_codes:
        raise EC2ClientError(*ERRORS["public_product_codes"])


def image_may_be_shared(ami) -> None:
    """Rule 6. EC2 UG "Share an AMI with specific AWS accounts": AMIs with snapshots
    encrypted under the AWS managed key aws/ebs cannot be shared."""
    from moto.ec2.exceptions import EC2ClientError

    if any(snapshot_under_aws_managed_key(s) for s in image_snapshots(ami)):
        raise EC2ClientError(*ERRORS["share_aws_managed_ami"])


def _wrap_modify_image_attribute(prev):
    def modify_image_attribute(self, ami_id, launch_permissions_to_add, launch_permissions_to_remove, *args, **kwargs):
        """Rules 1, 5, 6, 7, 8: only the owner changes launch permissions; targets must be
        valid; public needs an unencrypted AMI without product codes and image block
        public access off; sharing needs no aws/ebs-encrypted snapshot."""
        ami = _own_image(self, ami_id)
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
            ami = _own_image(self.ec2_backend, self._get_param("ImageId"))
            ami.product_codes = set(ami.product_codes or set()) | set(codes)
            if not has_lp:
                return EmptyResult()
        return prev(self)

    return method


def _wrap_describe_image_attribute(prev):
    def describe_image_attribute(self, ami_id, attribute_name):
        _own_image(self, ami_id)
        return prev(self, ami_id, attribute_name)

    return describe_image_attribute


def _wrap_get_tags(prev):
    def get_tags(self):
        """Tags are per account (EC2 UG "Tag your resources": tags on a shared AMI or
        snapshot are visible only to the account that added them)."""
        viewer = getattr(_ctx, "account", None)
        owner = self.ec2_backend
        if viewer and viewer != owner.account_id and getattr(self, "id", None):
            vb = _existing(_ec2_backends(), viewer, owner.region_name)
            return vb.describe_tags(filters={"resource-id": [self.id]}) if vb is not None else []
        return prev(self)

    return get_tags


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


def _migration_installed() -> bool:
    import sys

    mod = sys.modules.get(__name__.rsplit(".", 1)[0] + ".migration")
    return bool(mod is not None and getattr(mod, "_installed", False))


def register_image_response(prev):
    """World extension: RegisterImage with BlockDeviceMappings that reference the
    caller's snapshots builds the AMI from them (stock moto ignores the mappings)."""

    def register_image(self):
        from moto.core.responses import ActionResult

        bdms = self._get_param("BlockDeviceMappings") or []
        if _migration_installed() or not any((m.get("Ebs") or {}).get("SnapshotId") for m in bdms):
            return prev(self)  # rules/migration.py builds images from snapshots itself
        self.error_on_dryrun()
        backend = self.ec2_backend
        snaps = []
        for m in bdms:
            sid = (m.get("Ebs") or {}).get("SnapshotId")
            if sid:
                snaps.append(_own_snapshot(backend, sid))
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
        _set_image_snapshots(backend, ami, maps, snaps)
        tags = self._parse_tag_specification().get("image", {})
        ami.add_tags(tags)
        return ActionResult({"ImageId": ami.id})

    return register_image


def _set_image_snapshots(backend, ami, maps, snaps):
    auto = getattr(ami, "ebs_snapshot", None)
    store_image_mappings(ami, maps)
    if snaps:
        ami.ebs_snapshot = snaps[0]
        for s in snaps:
            if not s.from_ami:
                s.from_ami = ami.id
    if auto is not None and auto not in snaps and auto.id in backend.snapshots:
        backend.snapshots.pop(auto.id, None)


# =================================================================================
# Rule 3 (+4, 8): CopyImage across accounts
# =================================================================================
def copy_image_response(prev):
    """Reads the CopyImage parameters stock moto ignores (Encrypted, KmsKeyId,
    ClientToken, CopyImageTags, TagSpecifications). Rule 3 idempotency: EC2 API
    Reference, "Ensuring idempotency": the same ClientToken returns the same ImageId
    and makes no second copy; the same token with other parameters ->
    IdempotentParameterMismatch."""

    def copy_image(self):
        from moto.core.responses import ActionResult
        from moto.ec2.exceptions import EC2ClientError

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
        token = self._get_param("ClientToken")
        backend = self.ec2_backend
        tokens = backend.__dict__.setdefault("ferry_copy_tokens", {})
        digest = hashlib.sha256(json.dumps(opts, sort_keys=True, default=str).encode()).hexdigest()
        with _copy_lock:
            if token and token in tokens:
                image_id, previous = tokens[token]
                if previous != digest:
                    raise EC2ClientError(*ERRORS["idempotent_mismatch"])
                return ActionResult({"ImageId": image_id})
            _ctx.copy = opts
            _ctx.last_copy = None
            try:
                result = prev(self)
            finally:
                _ctx.copy = None
            new_id = getattr(_ctx, "last_copy", None)
            if token and new_id:
                tokens[token] = (new_id, digest)
            return result

    return copy_image


def copy_allowed(backend, source, snaps) -> None:
    """Rules 3 and 8. EC2 UG "Copy an AMI" (cross-account copying): the AMI must be
    shared with you and the owner must grant read access to every backing snapshot
    (createVolumePermission for your account, or public); AMIs with billing product
    codes shared by another account cannot be copied."""
    from moto.ec2.exceptions import EC2ClientError

    me = backend.account_id
    if _owner_account(source) == me:
        return
    if source.product_codes:
        raise EC2ClientError(*ERRORS["copy_product_codes"])
    for snap in snaps:
        if not _snapshot_shared_with(snap, me):
            raise EC2ClientError(*ERRORS["copy_storage"])


def copy_kms_problem(backend, source, snaps, dest_key, opts):
    """Rule 4 (copy). EC2 UG "Copy an AMI" / EBS UG "Share the KMS key": copying an AMI
    with encrypted snapshots needs use of every source key, and of the destination
    key when re-encrypting."""
    me = backend.account_id
    region = backend.region_name
    principal = _caller_of(me, region)
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

        opts = getattr(_ctx, "copy", None) or {}
        source_region = source_region or self.region_name
        view = _ec2_backends()[self.account_id][source_region]
        source = find_visible_image(view, source_image_id)
        if source is None:
            raise InvalidAMIIdError(source_image_id)
        if opts.get("kms_key_id") and not opts.get("encrypted"):
            raise InvalidParameterDependency("KmsKeyId", "Encrypted")
        snaps = image_snapshots(source)
        copy_allowed(self, source, snaps)
        cross = _owner_account(source) != self.account_id
        dest_key = None
        if opts.get("kms_key_id"):
            dest_key = resolve_key(opts["kms_key_id"], self.account_id, self.region_name)
        problem = copy_kms_problem(self, source, snaps, dest_key, opts)

        new = prev(self, source_image_id, source_region, name, description)
        new.launch_permissions = []
        _rekey_copy_snapshots(self, new, source, snaps, opts, dest_key, cross, problem)

        if opts.get("copy_image_tags"):
            if cross:
                vb = self if source_region == self.region_name else _ec2_backends()[self.account_id][source_region]
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
        _ctx.last_copy = new.id
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
    _copy_key_arn says. rules/migration.py (when installed) has already made them (with
    pending timing): they are re-keyed in place; otherwise they are made here."""
    from moto.ec2.models.elastic_block_store import Snapshot
    from moto.ec2.utils import random_snapshot_id

    by_id = {s.id: s for s in snaps}
    src_maps = [m for m in image_block_device_mappings(source)]
    cur_maps = [_copy.deepcopy(m) for m in image_block_device_mappings(new)]
    cur_snaps = [backend.snapshots.get((m.get("Ebs") or {}).get("SnapshotId")) for m in cur_maps]
    src_with_snap = [m for m in src_maps if by_id.get((m.get("Ebs") or {}).get("SnapshotId"))]
    reuse = (
        len(cur_maps) == len(src_maps)
        and all(c is not None for c, m in zip(cur_snaps, cur_maps) if (m.get("Ebs") or {}).get("SnapshotId"))
        and sum(1 for c in cur_snaps if c is not None) == len(src_with_snap)
    )
    maps, new_snaps = [], []
    for i, m in enumerate(src_maps):
        entry = _copy.deepcopy(cur_maps[i]) if reuse else _copy.deepcopy(m)
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
    _set_image_snapshots(backend, new, maps, new_snaps)
    if problem:
        for snap in new_snaps:
            snap.status = "error"


def mark_image_failed(ami, problem) -> None:
    """The copy settles as `failed` with the ERRORS[problem] StateReason: after its
    pending time when rules/migration.py times images (see _wrap_image_state), at once
    otherwise."""
    code, message = ERRORS[problem]
    ami.__dict__["ferry_failure"] = {"Code": code, "Message": message}
    from moto.ec2.models.amis import Ami

    if not isinstance(Ami.__dict__.get("state"), property):
        ami.state = "failed"
        ami.state_reason = {"Code": code, "Message": message}


def _wrap_image_state(prev_state, prev_reason):
    """When image state is a clock-driven property (rules/migration.py), an image
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


# =================================================================================
# Rules 2 and 4: RunInstances
# =================================================================================
def launch_kms_problem(backend, ami, block_device_mappings=None):
    """Rule 4 (launch). EC2 UG "Share an AMI" / EBS UG: launching from an AMI with
    encrypted snapshots needs use of every snapshot's key (and of any KmsKeyId given in
    the launch's block device mappings), else the instance goes from pending to
    terminated with StateReason Client.InternalError."""
    me = backend.account_id
    region = backend.region_name
    principal = _caller_of(me, region)
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
    `terminated` with the StateReason; with rules/migration.py's clock states it stays
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


def _instance_state_reason_property():
    """An instance whose launch failed shows the failure's StateReason once it is
    terminated (before that, whatever moto / rules/migration.py set)."""

    def fget(self):
        failure = self.__dict__.get("ferry_launch_failure")
        if failure and self.state == "terminated":
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
                config.get("rejectUnknownImageIds") or _image_exists_anywhere(self.region_name, image_id)
            ):
                raise InvalidAMIIdError(image_id)
        reservation = prev(self, image_id, count, user_data, security_group_names, **kwargs)
        if ami is not None:
            problem = launch_kms_problem(self, ami, kwargs.get("block_device_mappings"))
            if problem:
                for instance in reservation.instances:
                    fail_launch(self, instance, problem)
        return reservation

    return run_instances


# =================================================================================
# install
# =================================================================================
def install() -> None:
    """Apply every sharing rule to moto (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True

    # The settings live in config.DEFAULTS; add any that are missing (older config.py).
    missing = {k: v for k, v in SETTINGS.items() if k not in config.DEFAULTS}
    if missing:
        config.DEFAULTS.update(_copy.deepcopy(missing))
        with config._lock:  # noqa: SLF001 - same package
            for k, v in missing.items():
                config._settings.setdefault(k, _copy.deepcopy(v))  # noqa: SLF001

    from moto.core.responses import BaseResponse
    from moto.ec2.models.amis import Ami, AmiBackend
    from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
    from moto.ec2.models.instances import Instance, InstanceBackend
    from moto.ec2.responses import EC2Response
    from moto.ec2.responses.amis import AmisResponse
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore
    from moto.kms.models import KmsBackend
    from moto.kms.responses import KmsResponse

    # who is calling
    BaseResponse.setup_class = _wrap_setup_class(BaseResponse.setup_class)

    # KMS
    KmsBackend._generate_default_keys = _wrap_generate_default_keys(KmsBackend._generate_default_keys)
    KmsResponse.kms_backend = _kms_backend_property(KmsResponse.kms_backend)
    for name, (action, cross_ok) in KMS_OPERATIONS.items():
        prev = getattr(KmsResponse, name)
        if name == "create_grant":
            prev = create_grant_checked(prev)
        setattr(KmsResponse, name, kms_authorize(prev, name, action, cross_ok))
    KmsResponse.re_encrypt = kms_authorize(KmsResponse.re_encrypt, "re_encrypt", "kms:ReEncryptTo", True)
    KmsResponse.retire_grant = retire_grant
    KmsResponse.list_retirable_grants = list_retirable_grants

    # EBS
    EBSBackend._create_default_encryption_key = _create_default_encryption_key
    EBSBackend.create_snapshot = _wrap_create_snapshot(EBSBackend.create_snapshot)
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
    Snapshot.get_tags = _wrap_get_tags(Snapshot.get_tags)

    # AMIs
    AmiBackend.describe_images = describe_images_visible
    AmiBackend.modify_image_attribute = _wrap_modify_image_attribute(AmiBackend.modify_image_attribute)
    AmiBackend.describe_image_attribute = _wrap_describe_image_attribute(AmiBackend.describe_image_attribute)
    AmiBackend.copy_image = _wrap_copy_image(AmiBackend.copy_image)
    Ami.block_device_mappings = _wrap_block_device_mappings(Ami.block_device_mappings)
    Ami.get_tags = _wrap_get_tags(Ami.get_tags)
    if isinstance(Ami.__dict__.get("state"), property):
        Ami.state, Ami.state_reason = _wrap_image_state(Ami.__dict__["state"], Ami.__dict__.get("state_reason"))
    AmisResponse.copy_image = copy_image_response(AmisResponse.copy_image)
    AmisResponse.modify_image_attribute = modify_image_attribute_response(AmisResponse.modify_image_attribute)
    AmisResponse.register_image = register_image_response(AmisResponse.register_image)

    # new EC2 actions
    EC2Response.get_image_block_public_access_state = get_image_block_public_access_state
    EC2Response.enable_image_block_public_access = enable_image_block_public_access
    EC2Response.disable_image_block_public_access = disable_image_block_public_access
    EC2Response.get_ebs_default_kms_key_id = get_ebs_default_kms_key_id
    EC2Response.reset_ebs_default_kms_key_id = reset_ebs_default_kms_key_id

    # instances
    InstanceBackend.run_instances = _wrap_run_instances(InstanceBackend.run_instances)
    if not isinstance(Instance.__dict__.get("state_reason"), property):
        Instance.state_reason = _instance_state_reason_property()
