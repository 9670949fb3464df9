"""Twin of ferry's `image-event` (functions/steps/src/waits.rs `image_event`, the pure half
in functions/core/src/waits.rs): an "EC2 AMI State Change" to available/failed ends the
`.waitForTaskToken` wait of the execution that made the image (its ferry:execution tag):
DescribeImages, GetExecutionHistory (newest first, up to 3 pages) for the waiting task's
token, then SendTaskSuccess (or SendTaskFailure with Ferry.ImageFailed).
"""

import json
import os

import boto3

import ferry_twin as f

ec2 = boto3.client("ec2")
sfn = boto3.client("stepfunctions")

AMI_STATE_CHANGE = "EC2 AMI State Change"
EC2_SOURCE = "aws.ec2"
HISTORY_PAGES = 3
_ENDED = ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut")


def _parse(event):
    if not isinstance(event, dict) or event.get("source") != EC2_SOURCE \
            or event.get("detail-type") != AMI_STATE_CHANGE:
        return None
    detail = event.get("detail")
    detail = detail if isinstance(detail, dict) else {}

    def field(name):
        v = detail.get(name)
        return v if isinstance(v, str) and v else None

    image_id = field("ImageId")
    if image_id is None:
        raise f.invalid_input(f"{AMI_STATE_CHANGE} event without detail.ImageId")
    if not f.is_resource_id("ami", image_id):
        raise f.invalid_input(f"{AMI_STATE_CHANGE} event for {f.rust_debug(image_id)}, which is not an AMI id")
    state = field("State")
    if state is None:
        raise f.invalid_input(f"{AMI_STATE_CHANGE} event for {image_id} without detail.State")
    return image_id, state, field("ErrorMessage")


# The machines whose executions are followed (FERRY_WAITING_MACHINES, as for ImageEvent).
WAITING_MACHINES = [m.strip() for m in os.environ.get("FERRY_WAITING_MACHINES", "").split(",") if m.strip()]


def _execution_arn_of(tag):
    if tag is None:
        return None
    parts = tag.split(":")
    ok = (len(parts) == 8 and parts[0] == "arn" and parts[2] == "states"
          and parts[5] == "execution" and parts[6] in WAITING_MACHINES and parts[7])
    return tag if ok else None


def _token_for_image(parameters, image_id):
    try:
        value = json.loads(parameters)
    except ValueError:
        return None
    payload = value.get("Payload") if isinstance(value, dict) else None
    if not isinstance(payload, dict):
        return None
    image = payload.get("image")
    waits_for = image.get("imageId") if isinstance(image, dict) else None
    if not isinstance(waits_for, str) or waits_for != image_id:
        return None
    token = payload.get("taskToken")
    return token if isinstance(token, str) and token else None


def _find_waiter(events, image_id):
    for e in events:
        kind = e.get("type")
        if kind in _ENDED:
            return ("ended", None)
        if kind == "TaskScheduled":
            params = (e.get("taskScheduledEventDetails") or {}).get("parameters")
            token = _token_for_image(params, image_id) if params is not None else None
            if token:
                return ("token", token)
    return ("not-waiting", None)


def _waiter(arn, image_id):
    next_token = None
    for _ in range(HISTORY_PAGES):
        args = {"executionArn": arn, "reverseOrder": True, "includeExecutionData": True,
                "maxResults": 100}
        if next_token:
            args["nextToken"] = next_token
        try:
            page = sfn.get_execution_history(**args)
        except Exception as e:  # noqa: BLE001
            raise f.aws_error("GetExecutionHistory", e) from e
        found = _find_waiter(page.get("events", []), image_id)
        if found[0] != "not-waiting":
            return found
        next_token = page.get("nextToken")
        if not next_token:
            break
    return ("not-waiting", None)


def _outcome(action, image_id, arn, reason):
    out = {"action": action}
    if image_id is not None:
        out["imageId"] = image_id
    if arn is not None:
        out["executionArn"] = arn
    out["reason"] = reason
    return out


def handler(event, context):
    change = _parse(event)
    if change is None:
        return _outcome("ignored", None, None, "not an EC2 AMI State Change event")
    image_id, state_now, _message = change
    if state_now not in ("available", "failed"):
        return _outcome("ignored", image_id, None, f"state {state_now}")
    img = f.image(ec2, image_id)
    if img is None:
        return _outcome("ignored", image_id, None, "DescribeImages does not see it (yet)")
    tags = {t.get("Key"): t.get("Value") or "" for t in img.get("Tags", []) if t.get("Key")}
    arn = _execution_arn_of(tags.get(f.TAG_EXECUTION))
    if arn is None:
        return _outcome("ignored", image_id, None, "not an image that a waiting ferry execution made")
    kind, token = _waiter(arn, image_id)
    if kind == "ended":
        return _outcome("ignored", image_id, arn, "the execution has ended")
    if kind == "not-waiting":
        return _outcome("ignored", image_id, arn, "no task waits for this image")
    state = f.image_state(img)
    reason = (img.get("StateReason") or {}).get("Message")
    try:
        poll = f.image_poll(image_id, state, reason)
    except f.FerryError as e:
        ended, action, why = f.fail(sfn, token, e), "failed", e.message
    else:
        if poll == f.NOT_READY:
            return _outcome("ignored", image_id, arn,
                            f"the event says {state_now}, DescribeImages still {state}")
        ended, action, why = f.complete(sfn, token, f.image_ref(img)), "completed", "available"
    if ended == f.ALREADY:
        action = "alreadyEnded"
    print(f"image event image_id={image_id} execution_arn={arn} action={action}")
    return _outcome(action, image_id, arn, why)
