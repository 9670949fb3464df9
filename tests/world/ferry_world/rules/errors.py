"""Errors the rules answer with, in one place.

ERRORS: the codes and messages chosen where AWS does not document its exact wording,
each with the document it follows and how sure we are of it, so they are changed here
only. The constructors build the error each protocol answers with: EC2 (query/XML), KMS
(JSON) and STS (awsQuery XML).
"""
from __future__ import annotations

# Error codes/messages (code, message, confidence), by the name the rules use.
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
    # Placement groups (placement_groups.py). Codes from API Reference "Error codes for the
    # Amazon EC2 API": sure. Wording: "is unknown" as EC2 answers in users' reports
    # (fairly sure); the rest ours.
    "placement_group_unknown": ("InvalidPlacementGroup.Unknown", "The Placement Group '{name}' is unknown."),
    "placement_group_id_malformed": (
        "InvalidPlacementGroupId.Malformed",
        "Invalid id: \"{id}\" (expecting \"pg-...\")",
    ),
    "placement_group_duplicate": ("InvalidPlacementGroup.Duplicate", "The Placement Group '{name}' already exists."),
    "placement_group_in_use": (
        "InvalidPlacementGroup.InUse",
        "The placement group '{name}' is in use and may not be deleted.",
    ),
    # RunInstances into a cluster group whose instances are in another AZ: the docs name
    # no error ("A cluster placement group can't span multiple Availability Zones"). Code
    # and wording as EC2 answers in users' reports (terraform#16183, bcbio-nextgen-vm#45):
    # a guess, moderate confidence (README "Where the world is a guess").
    "placement_group_other_az": (
        "InvalidPlacementGroup.InUse",
        "The placement group '{name}' is in use in another availability zone: {zone}",
    ),
    # RunInstances with a type that does not support the group's strategy: code and
    # wording as EC2 answers in users' reports (dstack#2872, aws-parallelcluster#1248),
    # not documented: fairly sure.
    "placement_group_type": (
        "InvalidParameterCombination",
        "{strategy} placement groups are not supported by the '{type}' instance type. Specify a "
        "supported instance type or change the placement group strategy, and try again.",
    ),
    # CreatePlacementGroup parameter checks: the usual EC2 codes, our wording (low-moderate).
    "placement_group_bad_value": (
        "InvalidParameterValue",
        "Value ({value}) for parameter {parameter} is invalid. {why}",
    ),
    "placement_group_combination": (
        "InvalidParameterCombination",
        "The parameter {parameter} is valid only when the strategy is {strategy}.",
    ),
}


def ec2_error(code: str, message: str) -> Exception:
    """An EC2 client error (HTTP 400, <Response><Errors><Error>)."""
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError(code, message)


def not_found(kind: str, ids: list[str]) -> Exception:
    """What EC2 answers for ids it does not know (API Reference "Error codes for the
    Amazon EC2 API"), worded as moto and the other rules word it: `kind` "image"
    (InvalidAMIID.NotFound), "instance" (InvalidInstanceID.NotFound) or "snapshot"
    (InvalidSnapshot.NotFound)."""
    from moto.ec2.exceptions import InvalidAMIIdError, InvalidInstanceIdError

    if kind == "image":
        return InvalidAMIIdError(list(ids))
    if kind == "instance":
        return InvalidInstanceIdError(list(ids))
    return ec2_error("InvalidSnapshot.NotFound", f"The snapshot '{ids[0]}' does not exist.")


def kms_access_denied(message: str):
    from moto.kms.exceptions import AccessDeniedException
    import json

    err = AccessDeniedException(message)
    err.description = json.dumps({"__type": "AccessDeniedException", "message": message})
    return err


def kms_not_found(message: str):
    from moto.kms.exceptions import NotFoundException

    return NotFoundException(message)


def kms_malformed_policy(message: str):
    """KMS's MalformedPolicyDocumentException (HTTP 400, JSON body)."""
    from moto.core.exceptions import JsonRESTError

    err = JsonRESTError("MalformedPolicyDocumentException", message)
    err.code = 400
    return err


def json_access_denied(message: str):
    """AccessDeniedException of a JSON-protocol service (Step Functions): HTTP 400,
    {"__type": "AccessDeniedException", "message": ...} (the API references' "Common
    Errors": "AccessDeniedException: You do not have sufficient access to perform this
    action. HTTP Status Code: 400")."""
    from moto.core.exceptions import JsonRESTError

    err = JsonRESTError("AccessDeniedException", message)
    err.code = 400
    return err


# awsQuery XML namespaces (API versions) of the services sts_access_denied answers for.
_QUERY_NAMESPACE_VERSION = {"iam": "2010-05-08", "cloudformation": "2010-05-15"}


def sts_access_denied(message: str, namespace: str = "sts"):
    """STS's (or IAM's, `namespace="iam"`, or CloudFormation's, `"cloudformation"`)
    AccessDenied: HTTP 403, code AccessDenied, a Sender fault."""
    from moto.core.exceptions import _RESTError

    class AccessDenied(_RESTError):
        code = 403

    err = AccessDenied("AccessDenied", message)
    # STS (awsQuery) errors are <ErrorResponse><Error>...</Error><RequestId/>, which
    # every SDK parses (moto's generic body nests <Errors><Error>, which the Rust SDK
    # does not read).
    from xml.sax.saxutils import escape
    import uuid

    err.description = (
        f'<ErrorResponse xmlns="https://{namespace}.amazonaws.com/doc/{_QUERY_NAMESPACE_VERSION.get(namespace, "2011-06-15")}/">'
        f"<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return err
