"""AWS Organizations as the sharing rules see it: which organization and which OUs an
account belongs to (from moto's Organizations backend). Used by AMI launch permissions
(images.py) and the aws:PrincipalOrgID condition of key policies (kms.py)."""
from __future__ import annotations

from .common import existing_backend


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
        backend = existing_backend(orgs, mgmt, partition)
        if backend is not None and backend.org is not None:
            return backend
    for partition in ("aws", "aws-cn", "aws-us-gov"):
        backend = existing_backend(orgs, account, partition)
        if backend is not None and backend.org is not None:
            return backend
    return None


def org_arn_of(account: str) -> str | None:
    backend = _org_backend_of(account)
    return backend.org.arn if backend else None


def org_id_of(account: str) -> str | None:
    backend = _org_backend_of(account)
    return backend.org.id if backend else None


def ou_arns_of(account: str) -> set[str]:
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
