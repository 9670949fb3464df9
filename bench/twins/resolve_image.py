"""Twin of ferry's `resolve-image` (functions/steps/src/distribute/resolve_image.rs and
functions/core/src/distribute/resolve.rs): a request naming `share.image` gets the newest
available, not deprecated image of this account whose name matches (DescribeImages with
filters, every page), as `share.imageId`, and `resolvedImage` recording the choice.
"""

import copy

import boto3

import ferry_twin as f

ec2 = boto3.client("ec2")

PAGE_SIZE = 1000
MAX_NAME_PATTERN = 128
_NAME_CHARS = set("()[] ./-'@_")


def _execution_account(arn: str):
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


def _is_name_char(c: str) -> bool:
    return (c.isascii() and c.isalnum()) or c in _NAME_CHARS


def _check_name_pattern(pattern: str):
    field = "share.image.namePattern"
    if not pattern or len(pattern) > MAX_NAME_PATTERN:
        raise f.invalid_input(f"{field}: 1 to {MAX_NAME_PATTERN} characters (got {len(pattern)})")
    bad = next((c for c in pattern if not (_is_name_char(c) or c in "*?")), None)
    if bad is not None:
        raise f.invalid_input(
            f"{field}: '{bad}' cannot be part of an AMI name (letters, digits, ( ) [ ] . / - ' @ _ "
            "and spaces; * and ? as wildcards)")
    if all(c in "*?" for c in pattern):
        raise f.invalid_input(
            f"{field}: {f.rust_debug(pattern)} matches any image; give part of the name (e.g. golden-*)")


def _parse_selector(value, hub):
    expected = ' (expected {"owner": "self", "namePattern": "golden-*"})'
    if not isinstance(value, dict):
        raise f.invalid_input("share.image: invalid type" + expected)
    unknown = [k for k in value if k not in ("owner", "namePattern")]
    if unknown:
        raise f.invalid_input(f"share.image: unknown field `{unknown[0]}`" + expected)
    if "namePattern" not in value:
        raise f.invalid_input("share.image: missing field `namePattern`" + expected)
    owner = value.get("owner", "self")
    pattern = value["namePattern"]
    if not isinstance(owner, str) or not isinstance(pattern, str):
        raise f.invalid_input("share.image: invalid type" + expected)
    if owner != "self":
        if not (len(owner) == 12 and owner.isdigit() and owner.isascii()):
            raise f.invalid_input(
                f"share.image.owner: {f.rust_debug(owner)} is not an AWS account id (12 digits)")
        if hub is not None and hub != owner:
            raise f.invalid_input(
                f"share.image.owner: {owner} is another account; distribute-image shares the image, "
                f"which only its owner can: use \"self\" (this account, {hub})")
    _check_name_pattern(pattern)
    return owner, pattern


def _selector_of(request, hub):
    share = request.get("share") if isinstance(request, dict) else None
    if not isinstance(share, dict):
        return None
    has_id, has_image = "imageId" in share, "image" in share
    if has_id and has_image:
        raise f.invalid_input("share: give imageId or image (a selector), not both")
    if has_image:
        return _parse_selector(share["image"], hub)
    return None


def _name_matches(pattern: str, name: str) -> bool:
    p, n = pattern, name
    i = j = 0
    star = None
    while j < len(n):
        if i < len(p) and (p[i] == "?" or p[i] == n[j]):
            i += 1
            j += 1
        elif i < len(p) and p[i] == "*":
            star = (i, j)
            i += 1
        elif star is not None:
            si, sj = star
            i, j = si + 1, sj + 1
            star = (si, sj + 1)
        else:
            return False
    return all(c == "*" for c in p[i:])


def _utc_sort_key(ts):
    if not isinstance(ts, str):
        return None
    if ts.endswith("Z"):
        t = ts[:-1]
    elif ts.endswith("+00:00"):
        t = ts[:-6]
    else:
        return None
    whole, _, fraction = t.partition(".")
    if len(whole) != 19 or not whole.isascii():
        return None
    for i, c in enumerate(whole):
        ok = {4: c == "-", 7: c == "-", 10: c == "T", 13: c == ":", 16: c == ":"}.get(i, c.isdigit())
        if not ok:
            return None
    if not all(c.isdigit() and c.isascii() for c in fraction):
        return None
    return f"{whole}.{(fraction + '000')[:3]}"


def _qualifies(owner, pattern, hub, c, now):
    want = hub if owner == "self" else owner
    now_key = _utc_sort_key(now)
    deprecated = False
    if c["deprecationTime"] is not None and now_key is not None:
        t = _utc_sort_key(c["deprecationTime"])
        deprecated = t is not None and t <= now_key
    return (c["ownerId"] == want and c["state"] == "available"
            and _name_matches(pattern, c["name"])
            and _utc_sort_key(c["creationDate"]) is not None and not deprecated)


def _candidate(img):
    if not img.get("ImageId"):
        return None
    return {"imageId": img["ImageId"], "name": img.get("Name") or "",
            "ownerId": img.get("OwnerId") or "", "state": img.get("State") or "",
            "creationDate": img.get("CreationDate") or "",
            "deprecationTime": img.get("DeprecationTime")}


def handler(event, context):
    if not isinstance(event, dict) or "request" not in event or not isinstance(event.get("context"), dict):
        raise f.invalid_input("step input: missing field `request` or `context`")
    request, ctx = event["request"], event["context"]
    arn = f.check_str(ctx, "executionArn", "context")
    f.check_str(ctx, "executionName", "context")
    start_time = f.check_str(ctx, "startTime", "context", optional=True)
    hub = _execution_account(arn)
    if hub is None:
        raise f.invalid_input(f"context: {f.rust_debug(arn)} is not an execution ARN")
    selector = _selector_of(request, hub)
    if selector is None:
        raise f.invalid_input("share.image: ResolveImage needs a request that names share.image")
    owner, pattern = selector
    now = start_time or ""
    candidates = []
    try:
        pages = ec2.get_paginator("describe_images").paginate(
            Owners=[owner],
            Filters=[{"Name": "name", "Values": [pattern]},
                     {"Name": "state", "Values": ["available"]}],
            MaxResults=PAGE_SIZE)
        for page in pages:
            candidates.extend(c for c in map(_candidate, page.get("Images", [])) if c)
    except Exception as e:  # noqa: BLE001
        raise f.aws_error("DescribeImages", e) from e
    matching = [c for c in candidates if _qualifies(owner, pattern, hub, c, now)]
    if not matching:
        raise f.FerryError(
            "Ferry.ImageNotFound",
            f"share.image: no available, not deprecated image owned by {hub if owner == 'self' else owner} "
            f"matches {f.rust_debug(pattern)} ({len(candidates)} image(s) listed)")
    newest = max(matching, key=lambda c: (_utc_sort_key(c["creationDate"]), c["imageId"]))
    resolved = {"imageId": newest["imageId"], "name": newest["name"],
                "creationDate": newest["creationDate"], "ownerId": newest["ownerId"],
                "namePattern": pattern, "matched": len(matching)}
    print(f"resolved share.image image_id={resolved['imageId']} name={resolved['name']} "
          f"matched={resolved['matched']}")
    out = copy.deepcopy(request)
    share = out.get("share")
    if isinstance(share, dict):
        share.pop("image", None)
        share["imageId"] = resolved["imageId"]
    out["resolvedImage"] = resolved
    return out
