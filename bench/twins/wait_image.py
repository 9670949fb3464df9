"""Twin of ferry's `wait-image` (functions/steps/src/migrate/wait_image.rs): one
DescribeImages; `available` ends the wait (SendTaskSuccess with the image when the input
carries a task token), `pending` is Ferry.ImageNotReady (or, with a token, the input image
back: the event or the next attempt ends the wait), anything else Ferry.ImageFailed.
"""

import boto3

import ferry_twin as f

# Clients at init, as a Python Lambda makes them (the Rust step builds its clients in
# init too). Only the two this step calls: the favourable choice for the twin.
ec2 = boto3.client("ec2")
sfn = boto3.client("stepfunctions")

# MigrationPlan's required fields (functions/core/src/migrate/plan.rs), checked as serde
# would refuse a payload without them.
_PLAN_KEYS = {
    "": ("workflow", "execution", "request", "source", "target", "image", "launch",
         "stopsSource", "ferryTags", "warnings"),
    "execution": ("executionArn", "executionName"),
    "request": ("sourceInstanceId", "targetSubnetId", "noReboot", "stopSource", "sourceAction",
                "keepImage", "moveElasticIp", "tags"),
    "source": ("instanceId", "state", "availabilityZone", "subnetId", "vpcId", "elasticIps"),
    "target": ("subnetId", "availabilityZone", "vpcId"),
    "image": ("name", "description", "noReboot", "tags"),
    "launch": ("clientToken", "instanceType", "subnetId", "securityGroupIds", "associatePublicIp",
               "volumes", "monitoringEnabled", "ebsOptimized", "hibernationConfigured",
               "disableApiTermination", "disableApiStop", "instanceTags", "volumeTags"),
}


def _parse(event):
    if not isinstance(event, dict):
        raise f.invalid_input("step input: expected an object with plan and image")
    plan = event.get("plan")
    if not isinstance(plan, dict):
        raise f.invalid_input("step input: missing field `plan`")
    for part, keys in _PLAN_KEYS.items():
        obj = plan if not part else plan.get(part)
        if not isinstance(obj, dict):
            raise f.invalid_input(f"step input: plan.{part}: expected an object")
        for k in keys:
            if k not in obj:
                raise f.invalid_input(f"step input: missing field `{k}`")
    image = event.get("image")
    if not isinstance(image, dict):
        raise f.invalid_input("step input: missing field `image`")
    for k in ("imageId", "name", "state"):
        f.check_str(image, k, "image")
    created_at = image.get("createdAt")
    if created_at is not None and not isinstance(created_at, int):
        raise f.invalid_input("step input: image.createdAt: expected u64")
    token = event.get("taskToken")
    if token is not None and not isinstance(token, str):
        raise f.invalid_input("step input: taskToken: expected a string")
    return image, token


def _poll(image):
    image_id = image["imageId"]
    img = f.image(ec2, image_id)
    if img is None:
        raise f.missing_after_create(f"image {image_id}", image.get("createdAt"), f.epoch_seconds(),
                                     "Ferry.ImageNotReady", "Ferry.ImageFailed")
    state = f.image_state(img)
    reason = (img.get("StateReason") or {}).get("Message")
    if f.image_poll(image_id, state, reason) == f.AVAILABLE:
        return f.image_ref(img)
    raise f.image_not_ready(image_id, state)


def handler(event, context):
    image, token = _parse(event)
    if token is None:
        return _poll(image)
    try:
        ready = _poll(image)
    except f.FerryError as e:
        if e.name == "Ferry.ImageNotReady":
            return image  # the event or the next attempt ends the wait
        raise
    f.complete(sfn, token, ready)
    return ready
