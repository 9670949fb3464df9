"""STS AssumeRole and role trust policies: who may assume which IAM role, on top of moto 5.2.5.

Stock moto lets anyone assume any role ARN, even one that does not exist ("the role does
not need to exist", moto's docstring): that is how the world switches accounts, and it
would let a workflow that forgets the target's trust policy or ExternalId pass here and
fail on AWS. This module makes AssumeRole follow the role's trust policy.

Rule (IAM User Guide, "Granting a user permissions to switch roles" / "How to use an
external ID when granting access to your AWS resources to a third party"; STS API
Reference, AssumeRole): the role must exist in the account of its ARN; its trust policy
(AssumeRolePolicyDocument) must allow `sts:AssumeRole` to the calling principal -- the
caller's account (`"AWS": "<id>"` or `arn:aws:iam::<id>:root`), the caller's own role or
user ARN, or `*` -- with every condition on a key the world knows holding (`sts:ExternalId`,
`aws:PrincipalArn`, `aws:PrincipalAccount`, and `aws:PrincipalOrgID`, the caller's
organization: `"AWS": "*"` with that condition is how a trust policy admits one
Organization's accounts, as CDK's OrganizationPrincipal writes it); an explicit Deny wins. Otherwise STS answers
`AccessDenied` (HTTP 403): "User: <caller> is not authorized to perform: sts:AssumeRole on
resource: <role ARN>" (the message AWS gives; an ExternalId mismatch and a missing role
give the same answer, so a caller cannot probe which roles exist).

World extension: `arn:aws:iam::<any account>:role/OrganizationAccountAccessRole` can
always be assumed, by anyone, without the role existing. It stands in for the role AWS
Organizations creates in member accounts (which trusts the management account); tests
use it to act as any account.

Not modelled: the caller's own IAM identity policy (which must also allow sts:AssumeRole
for a cross-account role: the world takes it as allowing, as it does for every identity
policy), session policies, session tags, MFA, source identity, and conditions on keys
other than the four above (taken as satisfied).
"""
from __future__ import annotations

import json
import re
from urllib.parse import unquote

from .common import principal_for
from .errors import sts_access_denied
from .iam_policy import policy_decision, shown_principal  # noqa: F401 - shown_principal: part of this rule's API

ORGANIZATION_ACCESS_ROLE = "OrganizationAccountAccessRole"
KNOWN_CONDITION_KEYS = {"sts:externalid", "aws:principalarn", "aws:principalaccount", "aws:principalorgid"}

_ROLE_ARN = re.compile(r"^arn:(aws[\w-]*):iam::(\d{12}):role/(?:(.*)/)?([^/]+)$")


def caller_principal(account: str, access_key: str | None) -> str:
    """The caller's principal ARN: the role it assumed, its IAM user, or its account root."""
    try:
        return principal_for(account, access_key, "us-east-1")
    except Exception:  # pragma: no cover - defensive
        return f"arn:aws:iam::{account}:root"


def trust_allows(policy_document, caller_account: str, caller: str, external_id: str | None) -> bool:
    """The trust rule (module docstring) for one parsed or JSON trust policy: an Allow
    statement for sts:AssumeRole whose principal covers the caller and whose known
    conditions hold, and no such Deny (iam_policy.policy_decision; trust policies have
    no Resource, NotAction/NotPrincipal are not read and a session ARN principal does
    not stand for its role)."""
    if isinstance(policy_document, str):
        text = policy_document
        try:
            doc = json.loads(text)
        except ValueError:
            doc = json.loads(unquote(text))
    else:
        doc = policy_document or {}
    context = {
        "aws:principalarn": caller,
        "aws:principalaccount": caller_account,
    }
    from .organizations import org_id_of

    org = org_id_of(caller_account)
    if org:  # absent for an account in no organization: a condition on it fails
        context["aws:principalorgid"] = org
    if external_id is not None:
        context["sts:externalid"] = external_id
    decision = policy_decision(
        doc, action="sts:AssumeRole", account=caller_account, principal=caller, context=context,
        known_keys=KNOWN_CONDITION_KEYS, not_elements=False, session_arns=False,
    )
    return decision == "Allow"


def find_role(role_arn: str):
    """The IAM role an ARN names, or None (its account has no such role)."""
    m = _ROLE_ARN.match(role_arn or "")
    if not m:
        return None
    partition, account = m.group(1), m.group(2)
    from moto.iam.models import iam_backends

    if account not in list(iam_backends.keys()):
        return None
    backend = iam_backends[account][partition]
    for role in list(backend.roles.values()):
        if role.arn == role_arn:
            return role
    return None


def assume_role_problem(role_arn: str, caller_account: str, caller: str, external_id: str | None) -> str | None:
    """None when the caller may assume the role, else the AccessDenied message."""
    m = _ROLE_ARN.match(role_arn or "")
    if m and m.group(4) == ORGANIZATION_ACCESS_ROLE:
        return None
    denied = (
        f"User: {shown_principal(caller)} is not authorized to perform: sts:AssumeRole "
        f"on resource: {role_arn}"
    )
    role = find_role(role_arn)
    if role is None:
        return denied
    if not trust_allows(role.assume_role_policy_document, caller_account, caller, external_id):
        return denied
    return None


def _wrap_assume_role(prev):
    def assume_role(self):
        """STS AssumeRole under the trust rule (module docstring)."""
        role_arn = self._get_param("RoleArn")
        external_id = self._get_param("ExternalId")
        caller_account = self.current_account
        caller = caller_principal(caller_account, getattr(self, "access_key", None) or self.get_access_key())
        problem = assume_role_problem(role_arn, caller_account, caller, external_id)
        if problem:
            raise sts_access_denied(problem)
        return prev(self)

    assume_role._ferry_trust = True
    return assume_role


def assume_role_follows_the_trust_policy() -> None:
    """The trust rule (module docstring) on STS AssumeRole."""
    from moto.sts.responses import TokenResponse

    TokenResponse.assume_role = _wrap_assume_role(TokenResponse.assume_role)
