"""The IAM policy language, evaluated for the world's rules: statements (Effect, Action,
NotAction, Resource, NotResource, Principal, NotPrincipal), principals and conditions.

Used by the resource-based policies the world enforces: KMS key policies and grantees
(kms.py, kms_api.py) and role trust policies (trust.py). IAM identity-policy evaluation,
when it comes, belongs in rules/iam.py and builds on these functions.
"""
from __future__ import annotations

import fnmatch
import re


def as_list(v) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


class _EveryKey:
    """`known_keys` for strict evaluation: every condition key is read (a key the request
    does not have is absent, so only ...IfExists, Null and negated operators hold)."""

    def __contains__(self, key) -> bool:
        return True


EVERY_KEY = _EveryKey()


def _operator_hits(op: str, actual: str, expected: list) -> bool | None:
    """Does one request value meet one operator (its positive form)? None: an operator
    the world does not evaluate."""
    if op in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
        return actual in expected
    if op in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return actual.lower() in [e.lower() for e in expected]
    if op in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        return any(fnmatch.fnmatchcase(actual, e) for e in expected)
    if op == "Bool":
        return actual.lower() in [e.lower() for e in expected]
    return None


def conditions_hold(conditions: dict | None, context: dict, known_keys, strict: bool = False) -> bool:
    """IAM condition evaluation (IAM User Guide, "IAM JSON policy elements: Condition
    operators") for the keys in `known_keys`, looked up lower-cased in `context`;
    conditions on other keys are taken as satisfied.

    A context value may be a list (a multivalued key: aws:TagKeys, kms:GrantOperations):
    `ForAllValues:` holds when every value matches (and for no values), `ForAnyValue:`
    when one does; a plain operator on a list is read as ForAnyValue. With `strict`
    (identity policies, rules/iam.py), an operator the world does not evaluate (Numeric*,
    Date*, IpAddress...) fails the statement instead of being taken as satisfied."""
    if not conditions:
        return True
    for operator, pairs in conditions.items():
        op = operator
        if_exists = op.endswith("IfExists")
        if if_exists:
            op = op[: -len("IfExists")]
        qualifier = ""
        if ":" in op:
            qualifier, op = op.split(":", 1)
        for key, expected in (pairs or {}).items():
            k = key.lower()
            if k not in known_keys:
                continue
            actual = context.get(k)
            negated = "Not" in op
            if op == "Null":
                if (actual is None) != (str(as_list(expected)[0]).lower() == "true"):
                    return False
                continue
            if qualifier == "ForAllValues":
                values = [str(a) for a in as_list(actual)]
                hits = [_operator_hits(op, a, [str(e) for e in as_list(expected)]) for a in values]
                if any(h is None for h in hits):
                    if strict:
                        return False
                    continue
                # ForAllValues:StringNotEquals etc.: every value must avoid the list.
                if not all((not h) if negated else h for h in hits):
                    return False
                continue
            if qualifier == "ForAnyValue" and not as_list(actual) and not if_exists:
                # IAM UG "Creating a condition that tests multiple key values": when the
                # key's values in the request are empty (or absent), "a condition operator
                # modified by ForAnyValue returns false", a negated one included.
                return False
            if actual is None:
                if if_exists or negated:
                    continue
                return False
            exp = [str(e) for e in as_list(expected)]
            values = [str(a) for a in as_list(actual)]
            hits = [_operator_hits(op, a, exp) for a in values]
            if any(h is None for h in hits):
                if strict:
                    return False
                continue
            # ForAnyValue (and a plain operator on a list): one request value meets the
            # operator; for a negated one (ForAnyValue:StringNotEquals...), one value
            # matches none of the policy's values.
            if not any((not h) if negated else h for h in hits):
                return False
    return True


# =================================================================================
# Principals
# =================================================================================
_ROOT_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):root$")
_SESSION_ARN = re.compile(r"^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([^/]+)/")
_ROLE_ARN = re.compile(r"^arn:(aws[\w-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)$")


def principal_matches(value, account: str, principal: str, *, session_arns: bool = True) -> bool:
    """IAM User Guide, "AWS JSON policy elements: Principal": a policy principal (or a
    KMS grantee / retiring principal) `value` covers the caller `principal` of `account`
    when it is `*`, the account id or the account root ARN (the whole account), or the
    caller's own role/user ARN. With `session_arns`, an assumed-role session ARN
    (`arn:aws:sts::<id>:assumed-role/<role>/<session>`) covers that role's callers too:
    key policies and grants (kms.py) use that; trust policies (trust.py) pass False.
    A non-string value is compared as its string."""
    value = str(value)
    if value == "*" or value == account:
        return True
    m = _ROOT_ARN.match(value)
    if m:
        return m.group(1) == account
    if value == principal:
        return True
    if session_arns:
        # an assumed-role session ARN given for a role
        m = _SESSION_ARN.match(value)
        if m and m.group(2) == account and principal.endswith(":role/" + m.group(3)):
            return True
    return False


def shown_principal(principal: str) -> str:
    """How AWS names the caller in an AccessDenied message: an assumed role as its
    session ARN."""
    m = _ROLE_ARN.match(principal)
    if m:
        return f"arn:{m.group(1)}:sts::{m.group(2)}:assumed-role/{m.group(3)}/session"
    return principal


# =================================================================================
# Statements and one resource-based policy
# =================================================================================
def action_matches(patterns, action: str) -> bool:
    action = action.lower()
    return any(fnmatch.fnmatchcase(action, str(p).lower()) for p in as_list(patterns))


def statement_action_applies(st: dict, action: str, *, not_elements: bool = True) -> bool:
    if not_elements and "NotAction" in st:
        return not action_matches(st["NotAction"], action)
    return action_matches(st.get("Action"), action)


def resource_applies(st: dict, resource_arn: str) -> bool:
    if "NotResource" in st:
        return not any(fnmatch.fnmatchcase(resource_arn, r) for r in as_list(st["NotResource"]))
    resources = as_list(st.get("Resource", "*"))
    return any(r == "*" or fnmatch.fnmatchcase(resource_arn, r) for r in resources)


def statement_principal_applies(st: dict, account: str, principal: str, *, not_elements: bool = True,
                                session_arns: bool = True) -> bool:
    if not_elements and "NotPrincipal" in st:
        p = st["NotPrincipal"]
        values = as_list(p.get("AWS")) if isinstance(p, dict) else as_list(p)
        return not any(principal_matches(v, account, principal, session_arns=session_arns) for v in values)
    p = st.get("Principal")
    if p == "*":
        return True
    if isinstance(p, dict):
        return any(principal_matches(v, account, principal, session_arns=session_arns) for v in as_list(p.get("AWS")))
    return False


def policy_decision(document: dict, *, action: str, account: str, principal: str, context: dict,
                    known_keys: set, resource: str | None = None, not_elements: bool = True,
                    session_arns: bool = True) -> str | None:
    """IAM User Guide, "Policy evaluation logic", for one resource-based policy: "Deny"
    when a Deny statement applies (an explicit deny wins), else "Allow" when an Allow
    statement applies, else None (no statement applies: implicitly denied unless
    something else, e.g. a KMS grant, allows).

    A statement applies when its action, resource (only when `resource` is given; trust
    policies have no Resource), principal and every known condition match. Key policies
    (kms.py) use the defaults; trust policies (trust.py) pass `not_elements=False`
    (NotAction/NotPrincipal are not read: a statement with only those never applies)
    and `session_arns=False` (see principal_matches)."""
    allowed = False
    for st in as_list(document.get("Statement")):
        if not isinstance(st, dict):
            continue
        if not statement_action_applies(st, action, not_elements=not_elements):
            continue
        if resource is not None and not resource_applies(st, resource):
            continue
        if not statement_principal_applies(st, account, principal, not_elements=not_elements,
                                           session_arns=session_arns):
            continue
        if not conditions_hold(st.get("Condition"), context, known_keys):
            continue
        if str(st.get("Effect", "")).lower() == "deny":
            return "Deny"
        allowed = True
    return "Allow" if allowed else None
