"""Cross-account trust (rules/trust.py): STS AssumeRole follows the role's trust policy
and ExternalId, except the world's OrganizationAccountAccessRole stand-in, driven
through boto3 against moto's server with the trust rule installed.

The hub (moto's default account, plain "testing" keys) is 123456789012."""
import json

import pytest
from botocore.exceptions import ClientError

from ferry_world.rules import trust
from worldtest import aws_client

WORLD_RULES = ("trust",)
HUB, B, C = "123456789012", "222222222222", "333333333333"
ORG_ROLE = "OrganizationAccountAccessRole"


def assume(world_url, role_arn, creds=None, **kw):
    return aws_client(world_url, "sts", creds).assume_role(RoleArn=role_arn, RoleSessionName="ferry-test", **kw)["Credentials"]


def as_account(world_url, account):
    return assume(world_url, f"arn:aws:iam::{account}:role/{ORG_ROLE}")


def trust_policy(principal, external_id=None, effect="Allow", extra=None):
    st = {"Effect": effect, "Principal": principal, "Action": "sts:AssumeRole"}
    if external_id is not None:
        st["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [st] + (extra or [])})


def make_role(world_url, account, name, policy, path="/"):
    iam = aws_client(world_url, "iam", as_account(world_url, account))
    return iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=policy)["Role"]["Arn"]


def denied(excinfo, role_arn):
    e = excinfo.value.response
    assert e["Error"]["Code"] == "AccessDenied", e
    assert e["ResponseMetadata"]["HTTPStatusCode"] == 403, e
    msg = e["Error"]["Message"]
    assert msg.startswith("User: arn:aws:") and "is not authorized to perform: sts:AssumeRole on resource: " + role_arn in msg, msg
    return msg


def test_organization_access_role_is_the_worlds_way_into_any_account(world_url):
    creds = as_account(world_url, B)
    assert aws_client(world_url, "sts", creds).get_caller_identity()["Account"] == B
    # from one member account into another, too
    creds_c = assume(world_url, f"arn:aws:iam::{C}:role/{ORG_ROLE}", creds)
    assert aws_client(world_url, "sts", creds_c).get_caller_identity()["Account"] == C


def test_a_role_that_does_not_exist_cannot_be_assumed(world_url):
    arn = f"arn:aws:iam::{B}:role/ferry/missing"
    with pytest.raises(ClientError) as e:
        assume(world_url, arn, ExternalId="x-1")
    msg = denied(e, arn)
    assert f"arn:aws:iam::{HUB}:root" in msg


def test_trust_in_the_hub_account_with_external_id(world_url):
    arn = make_role(world_url, B, "ferry-target", trust_policy({"AWS": f"arn:aws:iam::{HUB}:root"}, "ext-123"), "/ferry/")
    assert arn == f"arn:aws:iam::{B}:role/ferry/ferry-target"
    creds = assume(world_url, arn, ExternalId="ext-123")
    assert aws_client(world_url, "sts", creds).get_caller_identity()["Account"] == B
    with pytest.raises(ClientError) as e:
        assume(world_url, arn)  # no ExternalId
    denied(e, arn)
    with pytest.raises(ClientError) as e:
        assume(world_url, arn, ExternalId="ext-124")
    denied(e, arn)
    # another account is not trusted, even with the right ExternalId
    with pytest.raises(ClientError) as e:
        assume(world_url, arn, as_account(world_url, C), ExternalId="ext-123")
    msg = denied(e, arn)
    assert f"arn:aws:sts::{C}:assumed-role/{ORG_ROLE}/" in msg


def test_account_id_principal_and_star(world_url):
    by_id = make_role(world_url, B, "by-id", trust_policy({"AWS": HUB}))
    assume(world_url, by_id)
    star = make_role(world_url, B, "anyone", trust_policy("*"))
    assume(world_url, star, as_account(world_url, C))


def test_trust_in_one_role_of_the_hub(world_url):
    hub_fn = make_role(world_url, HUB, "hub-fn", trust_policy({"AWS": f"arn:aws:iam::{HUB}:root"}))
    target = make_role(world_url, B, "only-hub-fn", trust_policy({"AWS": hub_fn}, "e-1"))
    with pytest.raises(ClientError) as e:
        assume(world_url, target, ExternalId="e-1")  # the hub's root is not that role
    denied(e, target)
    fn_creds = assume(world_url, hub_fn)
    creds = assume(world_url, target, fn_creds, ExternalId="e-1")
    assert aws_client(world_url, "sts", creds).get_caller_identity()["Account"] == B


def test_service_principals_and_deny(world_url):
    lam = make_role(world_url, B, "lambda-only", trust_policy({"Service": "lambda.amazonaws.com"}))
    with pytest.raises(ClientError) as e:
        assume(world_url, lam)
    denied(e, lam)
    deny = {"Effect": "Deny", "Principal": {"AWS": HUB}, "Action": "sts:*"}
    both = make_role(world_url, B, "allow-then-deny", trust_policy({"AWS": f"arn:aws:iam::{HUB}:root"}, extra=[deny]))
    with pytest.raises(ClientError) as e:
        assume(world_url, both)
    denied(e, both)


def test_trust_rule_units():
    pol = json.loads(trust_policy({"AWS": [f"arn:aws:iam::{HUB}:root"]}, "x"))
    assert trust.trust_allows(pol, HUB, f"arn:aws:iam::{HUB}:root", "x")
    assert not trust.trust_allows(pol, HUB, f"arn:aws:iam::{HUB}:root", None)
    like = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": HUB}, "Action": "sts:AssumeRole",
                           "Condition": {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{HUB}:role/ferry-*"}}}]}
    assert trust.trust_allows(like, HUB, f"arn:aws:iam::{HUB}:role/ferry-copy", None)
    assert not trust.trust_allows(like, HUB, f"arn:aws:iam::{HUB}:role/other", None)
    assert trust.assume_role_problem(f"arn:aws:iam::{B}:role/{ORG_ROLE}", C, f"arn:aws:iam::{C}:root", None) is None
    assert trust.shown_principal(f"arn:aws:iam::{B}:role/x/y") == f"arn:aws:sts::{B}:assumed-role/y/session"
