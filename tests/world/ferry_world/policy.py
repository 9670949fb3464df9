"""IAM policy language pieces the world's rules share (key policies, trust policies)."""
import fnmatch


def as_list(v) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def conditions_hold(conditions: dict | None, context: dict, known_keys: set) -> bool:
    """IAM condition evaluation (IAM User Guide, "IAM JSON policy elements: Condition
    operators") for the keys in `known_keys`, looked up lower-cased in `context`;
    conditions on other keys are taken as satisfied."""
    if not conditions:
        return True
    for operator, pairs in conditions.items():
        op = operator
        if_exists = op.endswith("IfExists")
        if if_exists:
            op = op[: -len("IfExists")]
        if ":" in op:  # ForAnyValue:/ForAllValues: on single-valued keys
            op = op.split(":", 1)[1]
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
            if actual is None:
                if if_exists or negated:
                    continue
                return False
            exp = [str(e) for e in as_list(expected)]
            a = str(actual)
            if op in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
                hit = a in exp
            elif op in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
                hit = a.lower() in [e.lower() for e in exp]
            elif op in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
                hit = any(fnmatch.fnmatchcase(a, e) for e in exp)
            elif op == "Bool":
                hit = a.lower() in [e.lower() for e in exp]
            else:
                continue
            if hit == negated:
                return False
    return True
