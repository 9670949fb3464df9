"""The data of the cold-start benchmark: one realistic situation per measured step, the
AWS state the stub answers from, and what each step must answer and call.

Shared by the stub (bench/coldstart/stub.py), which serves the images and the execution
history below, and the runner (bench/coldstart/run.py), which sends the events and checks
the answers. Shapes follow the Rust types: MigrationPlan (functions/core/src/migrate/plan.rs),
ImageInput (functions/core/src/migrate/io.rs), DistributePreflightInput
(functions/core/src/distribute/io.rs), and EventBridge's "EC2 AMI State Change".
"""

import copy
import hashlib
import json

ACCOUNT = "111122223333"
REGION = "eu-west-1"
AMAZON = "137112412989"  # another owner: `Owner.1=self` must leave its images out

MIGRATE_EXECUTION_ARN = (
    f"arn:aws:states:{REGION}:{ACCOUNT}:execution:ferry-migrate-instance:move-web-1"
)
MIGRATE_STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:ferry-migrate-instance"
DISTRIBUTE_EXECUTION_ARN = (
    f"arn:aws:states:{REGION}:{ACCOUNT}:execution:ferry-distribute-image:nightly-2026-12-02"
)
SOURCE_INSTANCE = "i-0a1b2c3d4e5f60718"
IMAGE_ID = "ami-0123456789abcdef0"
IMAGE_NAME = (
    f"ferry-{SOURCE_INSTANCE}-move-web-1-"
    + hashlib.sha256(MIGRATE_EXECUTION_ARN.encode()).hexdigest()[:10]
)
SNAPSHOTS = ["snap-0123456789abcdef0", "snap-0fedcba9876543210"]
CREATED_AT = 1796180000  # epoch seconds; the image is available, so rule 19 does not apply
CMK = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _token(seed: str, length: int = 688) -> str:
    """A task token of a real one's length and alphabet (Step Functions tokens are
    opaque base64-like strings of several hundred characters)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    out, n = [], 0
    while len(out) < length:
        digest = hashlib.sha256(f"{seed}:{n}".encode()).digest()
        out.extend(alphabet[b % 64] for b in digest)
        n += 1
    return "AQCEAAAAKgAAAAMAAAAAAAAAA" + "".join(out)[: length - 25]


# The token of wait-image's own attempt, and of the attempt the image event ends.
WAIT_TOKEN = _token("wait-image attempt 2")
OLD_TOKEN = _token("wait-image attempt 1")
EVENT_TOKEN = _token("wait-image attempt 3")

FERRY_TAGS = {
    "ferry:execution": MIGRATE_EXECUTION_ARN,
    "ferry:source-instance": SOURCE_INSTANCE,
    "ferry:workflow": "migrate-instance",
}

# A MigrationPlan as Preflight writes it for a web server (cf. the core's fixtures).
PLAN = {
    "workflow": "migrate-instance",
    "execution": {
        "executionArn": MIGRATE_EXECUTION_ARN,
        "executionName": "move-web-1",
        "stateMachineArn": MIGRATE_STATE_MACHINE_ARN,
        "startTime": "2026-11-29T05:41:00Z",
    },
    "request": {
        "sourceInstanceId": SOURCE_INSTANCE,
        "targetSubnetId": "subnet-0bbb2222cccc33334",
        "instanceType": None,
        "securityGroupIds": None,
        "noReboot": False,
        "stopSource": True,
        "sourceAction": "keep",
        "keepImage": False,
        "moveElasticIp": True,
        "tags": {"change": "CHG-2041"},
        "dryRun": False,
    },
    "source": {
        "instanceId": SOURCE_INSTANCE,
        "state": "running",
        "availabilityZone": "eu-west-1a",
        "subnetId": "subnet-0aaa1111bbbb22223",
        "vpcId": "vpc-0c0ffee0c0ffee000",
        "privateIp": "10.0.1.23",
        "publicIp": "34.250.10.20",
        "elasticIps": [
            {"allocationId": "eipalloc-0123456789abcdef0", "publicIp": "34.250.10.20",
             "privateIp": "10.0.1.23"}
        ],
    },
    "target": {
        "subnetId": "subnet-0bbb2222cccc33334",
        "availabilityZone": "eu-west-1b",
        "vpcId": "vpc-0c0ffee0c0ffee000",
    },
    "image": {
        "name": IMAGE_NAME,
        "description": f"ferry migrate-instance {SOURCE_INSTANCE} (move-web-1)",
        "noReboot": False,
        "tags": {"change": "CHG-2041", **FERRY_TAGS, "ferry:in-flight": "true"},
    },
    "launch": {
        "clientToken": "ferry-" + hashlib.sha256(b"move-web-1").hexdigest()[:32],
        "instanceType": "t3.large",
        "subnetId": "subnet-0bbb2222cccc33334",
        "securityGroupIds": ["sg-0123456789abcdef0", "sg-0fedcba9876543210"],
        "associatePublicIp": False,
        "iamInstanceProfileArn": f"arn:aws:iam::{ACCOUNT}:instance-profile/web",
        "keyName": "ops-2026",
        "volumes": [
            {"deviceName": "/dev/xvda", "sourceVolumeId": "vol-0123456789abcdef0",
             "volumeType": "gp3", "sizeGib": 30, "iops": 4000, "throughput": 250,
             "encrypted": True, "kmsKeyId": CMK, "deleteOnTermination": True,
             "tags": {"Name": "web-1-root"}},
            {"deviceName": "/dev/sdf", "sourceVolumeId": "vol-0fedcba9876543210",
             "volumeType": "io2", "sizeGib": 200, "iops": 10000, "throughput": None,
             "encrypted": True, "kmsKeyId": CMK, "deleteOnTermination": False,
             "tags": {"Name": "web-1-data"}},
        ],
        "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2,
                            "httpEndpoint": "enabled", "httpProtocolIpv6": "disabled",
                            "instanceMetadataTags": "disabled"},
        "monitoringEnabled": False,
        "userData": None,
        "ebsOptimized": True,
        "cpuCredits": "unlimited",
        "tenancy": "default",
        "placementGroup": None,
        "cpuOptions": {"coreCount": 1, "threadsPerCore": 2},
        "hibernationConfigured": False,
        "disableApiTermination": True,
        "disableApiStop": False,
        "instanceTags": {"Name": "web-1", "team": "storefront", "change": "CHG-2041",
                         **FERRY_TAGS, "ferry:in-flight": "true"},
        "volumeTags": {"change": "CHG-2041", **FERRY_TAGS},
    },
    "stopsSource": True,
    "ferryTags": FERRY_TAGS,
    "warnings": [
        "the new instance gets a new private IP in subnet-0bbb2222cccc33334 (was 10.0.1.23)"
    ],
    "dryRun": False,
}

# ImageRef as CreateImage handed it on (pending, not seen yet).
IMAGE_AS_CREATED = {"imageId": IMAGE_ID, "name": IMAGE_NAME, "state": "pending",
                    "snapshotIds": [], "createdAt": CREATED_AT}
# ImageRef once DescribeImages saw it available (what both steps report and send).
IMAGE_AVAILABLE = {"imageId": IMAGE_ID, "name": IMAGE_NAME, "state": "available",
                   "snapshotIds": SNAPSHOTS}


# ---------------------------------------------------------------------------------------
# EC2's images (DescribeImages answers from these)
# ---------------------------------------------------------------------------------------
def _img(image_id, name, owner, created, state="available", tags=None, deprecation=None,
         snapshots=None, reason=None):
    return {"imageId": image_id, "name": name, "ownerId": owner, "creationDate": created,
            "state": state, "tags": tags or {}, "deprecationTime": deprecation,
            "snapshots": snapshots or [], "stateReason": reason}


IMAGES = [
    _img(IMAGE_ID, IMAGE_NAME, ACCOUNT, "2026-12-02T09:41:07.000Z",
         tags={"change": "CHG-2041", **FERRY_TAGS, "ferry:in-flight": "true"},
         snapshots=SNAPSHOTS),
    # distribute-image's golden images: newest available, not deprecated one wins.
    _img("ami-00000000000000a01", "golden-al2023-2026-11-28", ACCOUNT, "2026-11-28T03:00:12.000Z",
         snapshots=["snap-00000000000000a01"]),
    _img("ami-00000000000000a02", "golden-al2023-2026-11-29", ACCOUNT, "2026-11-29T03:00:09.000Z",
         snapshots=["snap-00000000000000a02"]),
    _img("ami-00000000000000a03", "golden-al2023-2026-11-30", ACCOUNT, "2026-11-30T03:00:31.000Z",
         snapshots=["snap-00000000000000a03"]),
    _img("ami-00000000000000a04", "golden-al2023-2026-12-01", ACCOUNT, "2026-12-01T03:00:05.000Z",
         snapshots=["snap-00000000000000a04"]),
    # newer, but deprecated before the run started
    _img("ami-00000000000000a05", "golden-al2023-2026-12-01b", ACCOUNT, "2026-12-01T15:22:40.000Z",
         deprecation="2026-12-01T16:00:00.000Z", snapshots=["snap-00000000000000a05"]),
    # newest, but still pending (the state filter leaves it out)
    _img("ami-00000000000000a06", "golden-al2023-2026-12-02", ACCOUNT, "2026-12-02T03:00:02.000Z",
         state="pending", snapshots=["snap-00000000000000a06"]),
    # not matching the pattern
    _img("ami-00000000000000b01", "silver-al2023-2026-12-01", ACCOUNT, "2026-12-01T23:00:00.000Z",
         snapshots=["snap-00000000000000b01"]),
    # another owner's (Owner.1=self leaves it out)
    _img("ami-00000000000000c01", "golden-al2023-2026-12-02-amazon", AMAZON,
         "2026-12-02T01:00:00.000Z", snapshots=["snap-00000000000000c01"]),
]

RESOLVED_IMAGE = "ami-00000000000000a04"


# ---------------------------------------------------------------------------------------
# Step Functions: the migrate execution's history (oldest first)
# ---------------------------------------------------------------------------------------
def _wait_params(token: str) -> str:
    return json.dumps({
        "FunctionName": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ferry-wait-image",
        "Payload": {"plan": PLAN, "image": IMAGE_AS_CREATED, "taskToken": token},
    }, separators=(",", ":"))


def _history():
    t0 = 1796179260.0
    plan_out = json.dumps({"plan": PLAN}, separators=(",", ":"))
    request = json.dumps({"sourceInstanceId": SOURCE_INSTANCE,
                          "targetSubnetId": "subnet-0bbb2222cccc33334", "stopSource": True,
                          "tags": {"change": "CHG-2041"}}, separators=(",", ":"))
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ferry-"
    ev = []

    def add(kind, details_key=None, details=None):
        e = {"timestamp": t0 + len(ev) * 7.25, "type": kind, "id": len(ev) + 1,
             "previousEventId": len(ev)}
        if details_key:
            e[details_key] = details
        ev.append(e)

    add("ExecutionStarted", "executionStartedEventDetails",
        {"input": request, "inputDetails": {"truncated": False},
         "roleArn": f"arn:aws:iam::{ACCOUNT}:role/ferry-migrate-instance"})
    for state, function, out in [("Preflight", "preflight", plan_out),
                                 ("CreateImage", "create-image",
                                  json.dumps(IMAGE_AS_CREATED, separators=(",", ":")))]:
        add("TaskStateEntered", "stateEnteredEventDetails",
            {"name": state, "input": plan_out, "inputDetails": {"truncated": False}})
        add("TaskScheduled", "taskScheduledEventDetails",
            {"resourceType": "lambda", "resource": "invoke", "region": REGION,
             "parameters": json.dumps({"FunctionName": fn + function, "Payload": {"plan": PLAN}},
                                      separators=(",", ":"))})
        add("TaskStarted", "taskStartedEventDetails", {"resourceType": "lambda", "resource": "invoke"})
        add("TaskSucceeded", "taskSucceededEventDetails",
            {"resourceType": "lambda", "resource": "invoke", "output": out,
             "outputDetails": {"truncated": False}})
        add("TaskStateExited", "stateExitedEventDetails",
            {"name": state, "output": plan_out, "outputDetails": {"truncated": False}})
    add("TaskStateEntered", "stateEnteredEventDetails",
        {"name": "WaitImage", "input": plan_out, "inputDetails": {"truncated": False}})
    for token, last in [(OLD_TOKEN, False), (EVENT_TOKEN, True)]:
        add("TaskScheduled", "taskScheduledEventDetails",
            {"resourceType": "lambda", "resource": "invoke.waitForTaskToken", "region": REGION,
             "parameters": _wait_params(token), "timeoutInSeconds": 100})
        add("TaskStarted", "taskStartedEventDetails",
            {"resourceType": "lambda", "resource": "invoke.waitForTaskToken"})
        if not last:
            add("TaskTimedOut", "taskTimedOutEventDetails",
                {"resourceType": "lambda", "resource": "invoke.waitForTaskToken",
                 "error": "States.Timeout"})
    return ev


HISTORY = {MIGRATE_EXECUTION_ARN: _history()}


# ---------------------------------------------------------------------------------------
# The three measured steps: input, expected answer, expected AWS calls
# ---------------------------------------------------------------------------------------
WAIT_IMAGE_INPUT = {"plan": PLAN, "image": IMAGE_AS_CREATED, "taskToken": WAIT_TOKEN}

DISTRIBUTE_REQUEST = {
    "share": {"image": {"owner": "self", "namePattern": "golden-al2023-*"},
              "tags": {"team": "platform"}},
    "targets": [
        {"accountId": "444455556666", "region": "eu-west-1",
         "roleArn": "arn:aws:iam::444455556666:role/ferry-target"},
        {"accountId": "777788889999", "region": "eu-central-1",
         "roleArn": "arn:aws:iam::777788889999:role/ferry-target",
         "kmsKeyId": "arn:aws:kms:eu-central-1:777788889999:key/0000aaaa-11bb-22cc-33dd-444455556666"},
    ],
}
RESOLVE_IMAGE_INPUT = {
    "request": DISTRIBUTE_REQUEST,
    "context": {"executionArn": DISTRIBUTE_EXECUTION_ARN, "executionName": "nightly-2026-12-02",
                "stateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:ferry-distribute-image",
                "startTime": "2026-12-02T03:00:00.000Z"},
}


def _resolved_output():
    out = copy.deepcopy(DISTRIBUTE_REQUEST)
    del out["share"]["image"]
    out["share"]["imageId"] = RESOLVED_IMAGE
    winner = next(i for i in IMAGES if i["imageId"] == RESOLVED_IMAGE)
    out["resolvedImage"] = {"imageId": RESOLVED_IMAGE, "name": winner["name"],
                            "creationDate": winner["creationDate"], "ownerId": ACCOUNT,
                            "namePattern": "golden-al2023-*", "matched": 4}
    return out


IMAGE_EVENT_INPUT = {
    "version": "0",
    "id": "7e1a4f53-9d41-4b1c-8f2e-3a5b6c7d8e9f",
    "detail-type": "EC2 AMI State Change",
    "source": "aws.ec2",
    "account": ACCOUNT,
    "time": "2026-12-02T09:48:31Z",
    "region": REGION,
    "resources": [f"arn:aws:ec2:{REGION}::image/{IMAGE_ID}"],
    "detail": {"RequestId": "b6d1f6a3-7c1e-4a8e-9b43-2f1d0c9e8a77", "ImageId": IMAGE_ID,
               "State": "available", "ErrorMessage": ""},
}

STEPS = {
    "wait-image": {
        "function": "ferry-wait-image",
        "twinHandler": "wait_image.handler",
        "input": WAIT_IMAGE_INPUT,
        "output": IMAGE_AVAILABLE,
        # (service, action, {param: expected value}) in order
        "calls": [
            ("ec2", "DescribeImages", {"ImageId.1": IMAGE_ID}),
            ("sfn", "SendTaskSuccess", {"taskToken": WAIT_TOKEN, "output": IMAGE_AVAILABLE}),
        ],
    },
    "resolve-image": {
        "function": "ferry-resolve-image",
        "twinHandler": "resolve_image.handler",
        "input": RESOLVE_IMAGE_INPUT,
        "output": _resolved_output(),
        "calls": [
            ("ec2", "DescribeImages", {"Owner.1": "self", "Filter.1.Name": "name",
                                       "Filter.1.Value.1": "golden-al2023-*",
                                       "Filter.2.Name": "state",
                                       "Filter.2.Value.1": "available",
                                       "MaxResults": "1000"}),
        ],
    },
    "image-event": {
        "function": "ferry-image-event",
        "twinHandler": "image_event.handler",
        "input": IMAGE_EVENT_INPUT,
        "output": {"action": "completed", "imageId": IMAGE_ID,
                   "executionArn": MIGRATE_EXECUTION_ARN, "reason": "available"},
        "calls": [
            ("ec2", "DescribeImages", {"ImageId.1": IMAGE_ID}),
            ("sfn", "GetExecutionHistory", {"executionArn": MIGRATE_EXECUTION_ARN,
                                            "reverseOrder": True,
                                            "includeExecutionData": True,
                                            "maxResults": 100}),
            ("sfn", "SendTaskSuccess", {"taskToken": EVENT_TOKEN, "output": IMAGE_AVAILABLE}),
        ],
    },
}
