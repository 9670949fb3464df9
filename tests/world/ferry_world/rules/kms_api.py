"""The KMS API under the key-use rule (sharing rule 4): operations marked "Cross-account
use: Yes" accept another account's key ARN, every call on a key is authorized by its key
policy or grants (kms.py), and grants are created idempotently by name, retired by
their retiring principal or grantee, and listed as retirable across accounts. Key
policies that are not well-formed are refused by CreateKey / PutKeyPolicy.
"""
from __future__ import annotations

import json

from .common import caller_of, existing_backend, kms_backends
from .errors import kms_access_denied, kms_malformed_policy, kms_not_found
from .iam_policy import principal_matches
from .kms import denied_message, key_arn_parts, kms_key_allows, kms_lookup

VALID_GRANT_OPERATIONS = {
    "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom",
    "ReEncryptTo", "Sign", "Verify", "GetPublicKey", "CreateGrant", "RetireGrant", "DescribeKey",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac",
    "DeriveSharedSecret",
}

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
        principal = caller_of(account, self.region)
        parts = key_arn_parts(key_ref)
        foreign = bool(parts and parts["account"] != account)
        backend, key = kms_lookup(self, key_ref)
        extra = _request_context(self, method_name)
        if foreign:
            if key is None:
                raise kms_not_found(f"Key '{key_ref}' does not exist")
            if not cross_ok or not kms_key_allows(key, account, principal, action, extra_context=extra):
                raise kms_access_denied(denied_message(principal, action, key.arn))
            self._ferry_kms_backend = backend
            try:
                return prev(self)
            finally:
                self._ferry_kms_backend = None
        if key is not None and not kms_key_allows(key, account, principal, action, extra_context=extra):
            raise kms_access_denied(denied_message(principal, action, key.arn))
        return prev(self)

    method.__name__ = method_name
    return method


def _request_context(response, method_name: str) -> dict:
    """KMS condition keys of the request itself (KMS developer guide, "Condition keys
    for AWS KMS"): a CreateGrant names its operations, grantee and retiring principal;
    a call made directly (not through an AWS service) is not for an AWS resource."""
    if method_name != "create_grant":
        return {}
    ctx = {
        "kms:grantoperations": list(response._get_param("Operations") or []),
        "kms:granteeprincipal": response._get_param("GranteePrincipal"),
        "kms:grantisforawsresource": "false",
    }
    retiring = response._get_param("RetiringPrincipal")
    if retiring:
        ctx["kms:retiringprincipal"] = retiring
    return ctx


def kms_backend_property(prev_prop):
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
    _backend, key = kms_lookup(response, response._get_param("KeyId") or "")
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
    principal = caller_of(account, region)
    token = self._get_param("GrantToken")
    key_ref = self._get_param("KeyId")
    grant_id = self._get_param("GrantId")
    found = None
    if token:
        for acct in list(kms_backends().keys()):
            backend = existing_backend(kms_backends(), acct, region)
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
        _backend, key = kms_lookup(self, key_ref)
        if key is None:
            raise kms_not_found(f"Key '{key_ref}' does not exist")
        grant = key.grants.get(grant_id)
        if grant is None:
            raise kms_not_found(f"Grant ID {grant_id} not found")
        found = (key, grant)
    key, grant = found
    may = (
        key.account_id == account
        or (grant.retiring_principal and principal_matches(grant.retiring_principal, account, principal))
        or ("RetireGrant" in (grant.operations or []) and principal_matches(grant.grantee_principal, account, principal))
    )
    if not may:
        raise kms_access_denied(denied_message(principal, "kms:RetireGrant", key.arn))
    key.grants.pop(grant.id, None)
    return "{}"


def list_retirable_grants(self):
    """KMS API Reference, ListRetirableGrants: grants (in any account) whose retiring
    principal is the given principal."""
    wanted = self._get_param("RetiringPrincipal")
    grants = []
    for acct in list(kms_backends().keys()):
        backend = existing_backend(kms_backends(), acct, self.region)
        if backend is None:
            continue
        for key in backend.keys.values():
            grants += [g for g in key.grants.values() if g.retiring_principal == wanted]
    return json.dumps({"Grants": [g.to_json() for g in grants], "Truncated": False})


# KMS Developer Guide "Creating a key policy" (Key policy format): printable ASCII, printable
# Basic Latin / Latin-1 Supplement characters, and tab, line feed, carriage return.
def _allowed_policy_char(c: str) -> bool:
    o = ord(c)
    return c in "\t\n\r" or 0x20 <= o <= 0x7E or 0xA0 <= o <= 0xFF


POLICY_VERSIONS = ("2012-10-17", "2008-10-17")  # IAM JSON policy elements: Version


def key_policy_problem(policy: str) -> str | None:
    """Why a key policy document is malformed, or None. KMS API Reference CreateKey /
    PutKeyPolicy (`Policy`) and KMS Developer Guide "Creating a key policy" (Key policy
    format; Elements in a key policy): only the documented characters; a JSON document
    with a Version (IAM "Version": 2012-10-17 or 2008-10-17) and a Statement of at least
    one statement (an object, or a list of them); every statement has an Effect of Allow
    or Deny and "must contain one or more principals". A statement missing Action or
    Resource is NOT refused: "the CreateKey and PutKeyPolicy API requests succeed, even
    though the policy statement is ineffective". (Messages are ours: AWS documents only
    the exception, "not syntactically or semantically correct".)"""
    bad = next((c for c in policy if not _allowed_policy_char(c)), None)
    if bad is not None:
        return f"The key policy contains a character that is not allowed: U+{ord(bad):04X}."
    try:
        doc = json.loads(policy)
    except ValueError:
        return "The key policy is not a valid JSON document."
    if not isinstance(doc, dict):
        return "The key policy must be a JSON object."
    if doc.get("Version") not in POLICY_VERSIONS:
        return "The key policy must have a Version of 2012-10-17 or 2008-10-17."
    statements = doc.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        return "The key policy must have a Statement with at least one statement."
    for i, st in enumerate(statements):
        if not isinstance(st, dict):
            return f"Statement {i} of the key policy is not a policy statement."
        if st.get("Effect") not in ("Allow", "Deny"):
            return f"Statement {i} of the key policy must have an Effect of Allow or Deny."
        if not st.get("Principal") and not st.get("NotPrincipal"):
            return f"Statement {i} of the key policy must contain one or more principals."
    return None


def _refuse_malformed_policy(prev):
    def method(self):
        policy = self._get_param("Policy")
        if policy is not None:
            problem = key_policy_problem(policy)
            if problem:
                raise kms_malformed_policy(problem)
        return prev(self)

    method.__name__ = prev.__name__
    return method


def key_policies_must_be_well_formed() -> None:
    """KMS API Reference "CreateKey" / "PutKeyPolicy" (Errors:
    MalformedPolicyDocumentException, HTTP 400, "The request was rejected because the
    specified policy is not syntactically or semantically correct") and KMS Developer
    Guide "Creating a key policy": a malformed policy (key_policy_problem) is refused at
    the call; no key is created, the stored policy is unchanged. Installed before
    kms_calls_follow_key_policies_and_grants, so PutKeyPolicy is authorized first."""
    from moto.kms.responses import KmsResponse

    KmsResponse.create_key = _refuse_malformed_policy(KmsResponse.create_key)
    KmsResponse.put_key_policy = _refuse_malformed_policy(KmsResponse.put_key_policy)


def kms_calls_follow_key_policies_and_grants() -> None:
    """Rule 4 (KMS API): kms_authorize on every operation of KMS_OPERATIONS (CreateGrant
    validated and idempotent by name first) and ReEncrypt; RetireGrant and
    ListRetirableGrants across accounts."""
    from moto.kms.responses import KmsResponse

    KmsResponse.kms_backend = kms_backend_property(KmsResponse.kms_backend)
    for name, (action, cross_ok) in KMS_OPERATIONS.items():
        prev = getattr(KmsResponse, name)
        if name == "create_grant":
            prev = create_grant_checked(prev)
        setattr(KmsResponse, name, kms_authorize(prev, name, action, cross_ok))
    KmsResponse.re_encrypt = kms_authorize(KmsResponse.re_encrypt, "re_encrypt", "kms:ReEncryptTo", True)
    KmsResponse.retire_grant = retire_grant
    KmsResponse.list_retirable_grants = list_retirable_grants
