"""KMS keys and who may use them (sharing rule 4, rule 6 support).

Keys found by id, alias or ARN (other accounts' keys by ARN only); the AWS managed keys
(aws/ebs) created on first use with the policy AWS gives them; and the key-use rule: the
key policy (evaluated by iam_policy.py) or a grant must allow the calling principal.
The KMS API calls themselves (cross-account use, authorization, grants) are in
kms_api.py; EBS's use of keys in ebs_encryption.py.
"""
from __future__ import annotations

import json
import re

from .common import existing_backend, kms_backends, partition
from .consistency import grant_in_effect
from .iam_policy import policy_decision, principal_matches, shown_principal
from .organizations import org_id_of

AWS_MANAGED_EBS_ALIAS = "alias/aws/ebs"


# =================================================================================
# Finding a key
# =================================================================================
def key_arn_parts(key_ref: str):
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
    parts = key_arn_parts(key_ref)
    if parts:
        backend = existing_backend(kms_backends(), parts["account"], parts["region"])
        if backend is None and parts["account"] == account:
            backend = kms_backends()[account][parts["region"]]
        if backend is None:
            return None
        name = parts["name"] if parts["type"] == "key" else "alias/" + parts["name"]
    else:
        backend = kms_backends()[account][region]
        name = key_ref
    try:
        if name.startswith("alias/"):
            if name.startswith("alias/aws/"):
                ensure_aws_managed_key(backend, name)
            key_id = backend.get_key_id_from_alias(name)
            return backend.keys.get(key_id) if key_id else None
        return backend.keys.get(name)
    except Exception:
        return None


def kms_lookup(response, key_ref: str):
    """(backend, key) for a KeyId parameter as the caller sees it; (None, None) when
    it does not name a key visible to the caller."""
    account, region = response.current_account, response.region
    parts = key_arn_parts(key_ref)
    if parts and parts["account"] != account:
        if parts["region"] != region:
            return None, None
        backend = existing_backend(kms_backends(), parts["account"], region)
        if backend is None:
            return None, None
        key = resolve_key(key_ref, account, region)
        return backend, key
    backend = kms_backends()[account][region]
    if parts and parts["region"] != region:
        return backend, None
    return backend, resolve_key(key_ref, account, region)


# =================================================================================
# AWS managed keys (rule 6 support)
# =================================================================================
def aws_managed_ebs_policy(account: str, region: str) -> str:
    """The key policy AWS gives the AWS managed key aws/ebs (KMS developer guide,
    "AWS managed keys"): usable only through EBS by principals of the owning account."""
    part = partition(region)
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


def ensure_aws_managed_key(kms_backend, alias: str):
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


def is_aws_managed_key(key) -> bool:
    return key is not None and getattr(key, "key_manager", "CUSTOMER") == "AWS"


def _wrap_generate_default_keys(prev):
    def _generate_default_keys(self, alias_name):
        from moto.kms.utils import RESERVED_ALIASES

        if alias_name in RESERVED_ALIASES:
            return ensure_aws_managed_key(self, alias_name).id
        return prev(self, alias_name)

    return _generate_default_keys


def aws_managed_keys_are_created_on_first_use() -> None:
    """Rule 6 support (ensure_aws_managed_key): moto's reserved aliases (aws/ebs, ...)
    resolve to an AWS managed key with AWS's policy."""
    from moto.kms.models import KmsBackend

    KmsBackend._generate_default_keys = _wrap_generate_default_keys(KmsBackend._generate_default_keys)


# =================================================================================
# Rule 4: may a principal use a KMS key (key policy + grants)
# =================================================================================
_KNOWN_CONDITION_KEYS = {
    "kms:grantoperations", "kms:granteeprincipal", "kms:retiringprincipal",
    "kms:calleraccount", "kms:viaservice", "kms:grantisforawsresource", "aws:principalaccount",
    "aws:principalarn", "aws:principalorgid",
}


def _context(account: str, principal: str, region: str, via_ec2: bool) -> dict:
    ctx = {
        "kms:calleraccount": account,
        "aws:principalaccount": account,
        "aws:principalarn": principal,
    }
    org_id = org_id_of(account)
    if org_id:
        ctx["aws:principalorgid"] = org_id
    if via_ec2:
        ctx["kms:viaservice"] = f"ec2.{region}.amazonaws.com"
        ctx["kms:grantisforawsresource"] = "true"
    return ctx


def kms_key_allows(key, account: str, principal: str, action: str, via_ec2: bool = False,
                   extra_context: dict | None = None) -> bool:
    """Rule 4. KMS developer guide, "Determining access to a KMS key": an explicit Deny
    in the key policy wins; otherwise the key policy must allow the principal, or a
    grant must name the principal (or its account) as grantee with the operation.
    Retired/revoked grants are gone; a grant just made counts only once it has taken
    effect (consistency.grant_in_effect: eventual consistency, grant tokens). Grant
    constraints (encryption context) are not checked.

    Identity policies (rules/iam.py): a key policy statement that names the caller's
    role (or `*`) allows a caller of the key's own account by itself; one that allows
    only the account (its root ARN or id: the "Enable IAM policies" statement) and
    every use from another account also need the caller's identity policy to allow
    the action on the key (KMS developer guide, "Key policies" and "Allowing users in
    other accounts to use a KMS key"). A grant naming the role needs no identity
    policy; a grant to the role's whole account is read like an account principal."""
    from .iam import identity_allows, identity_is_evaluated

    try:
        policy = json.loads(key.policy) if key.policy else {}
    except (ValueError, TypeError):
        policy = {}
    context = _context(account, principal, key.region, via_ec2)
    context.update({k.lower(): v for k, v in (extra_context or {}).items()})
    decision = policy_decision(
        policy, action=action, account=account, principal=principal,
        context=context, known_keys=_KNOWN_CONDITION_KEYS, resource=key.arn,
    )
    if decision == "Deny":
        return False
    if decision == "Allow":
        if not identity_is_evaluated(account, principal):
            return True
        # The same policy with the account principals taken out: does it name the role?
        names_the_role = policy_decision(
            policy, action=action, account="-", principal=principal,
            context=context, known_keys=_KNOWN_CONDITION_KEYS, resource=key.arn,
        ) == "Allow"
        if names_the_role and key.account_id == account:
            return True
        if identity_allows(account, principal, action, key.arn, context, key.region):
            return True
    op = action.split(":", 1)[-1]
    for grant in list(key.grants.values()):
        if op not in (grant.operations or []) or not principal_matches(grant.grantee_principal, account, principal):
            continue
        if not grant_in_effect(grant):  # a grant just made counts a while later (consistency.py)
            continue
        # A grant to the role itself needs nothing else; a grant to a whole account is
        # delegated like a key policy's account principal: the role's identity policy
        # must allow the operation too (the stricter reading; see README).
        if principal_matches(grant.grantee_principal, "-", principal) or not identity_is_evaluated(account, principal):
            return True
        if identity_allows(account, principal, action, key.arn, context, key.region):
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
    if not ec2_may_use_key(key, account, principal, operations):
        return f"{kind}_kms"
    return None


def ec2_may_use_key(key, account: str, principal: str, operations) -> bool:
    """Rule 4, the one question EC2 asks when it uses a key on a caller's behalf (launch,
    start, copy): may `principal` of `account` use `key` for every one of `operations`
    (KMS API names: "Decrypt", "CreateGrant", ...) through EC2 (kms:ViaService
    ec2.<region>.amazonaws.com, kms:GrantIsForAWSResource)? kms_key_allows decides: key
    policy, grants in effect and, where rules/iam.py evaluates the caller, its identity
    policies. (The key's state is ec2_key_use_problem's business.)"""
    return all(kms_key_allows(key, account, principal, f"kms:{op}", via_ec2=True) for op in operations)


def denied_message(principal: str, action: str, key_arn: str) -> str:
    return (
        f"User: {shown_principal(principal)} is not authorized to perform: {action} on resource: {key_arn} "
        f"because no resource-based policy allows the {action} action"
    )
