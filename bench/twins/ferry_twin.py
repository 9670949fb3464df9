"""What the Python twins share, mirroring ferry-steps' shared code: named errors
(ferry_core::errors), the AWS error mapping (ferry_steps::aws), image reads
(ferry_steps::images / migrate::describe), the image poll rules (ferry_core::rules::polls)
and the SendTask* calls (ferry_steps::waits). Only what the three twinned steps use.
"""

import json
import time

from botocore.exceptions import (
    ClientError,
    ConnectionError as BotoConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
)

TAG_EXECUTION = "ferry:execution"
NOT_VISIBLE_GRACE_SECONDS = 300


class FerryError(Exception):
    """A step's failure; `name` is the errorType the state machine's Retry/Catch match
    (the bootstrap reports it instead of the class name)."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name
        self.message = message

    @property
    def error_type(self) -> str:
        return self.name


def invalid_input(message: str) -> FerryError:
    return FerryError("Ferry.InvalidInput", message)


_THROTTLED = {"RequestLimitExceeded", "Throttling", "ThrottlingException",
              "TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
              "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
              "BandwidthLimitExceeded"}
_TRANSIENT = {"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable",
              "RequestTimeout", "RequestTimeoutException", "KMSInternalException",
              "DependencyTimeoutException"}
_CAPACITY = {"InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientCapacity"}


def classify_aws_code(code):
    if code in _THROTTLED:
        return "Ferry.Throttled"
    if code in _TRANSIENT:
        return "Ferry.Transient"
    if code in _CAPACITY:
        return "Ferry.InsufficientCapacity"
    return "Ferry.AwsError"


def error_code(e: Exception):
    if isinstance(e, ClientError):
        return e.response.get("Error", {}).get("Code")
    return None


def aws_error(operation: str, e: Exception) -> FerryError:
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = err.get("Code")
        return FerryError(classify_aws_code(code),
                          f"{operation}: {code or 'Unknown'}: {err.get('Message') or 'no message'}")
    if isinstance(e, (BotoConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        return FerryError("Ferry.Transient", f"{operation}: {e}")
    return FerryError("Ferry.AwsError", f"{operation}: {e}")


def is_resource_id(prefix: str, value: str) -> bool:
    if not isinstance(value, str) or not value.startswith(prefix + "-"):
        return False
    rest = value[len(prefix) + 1:]
    return len(rest) in (8, 17) and all(c in "0123456789abcdef" for c in rest)


def rust_debug(s: str) -> str:
    """Rust's `{:?}` of a string (for error messages worded as the Rust step words them)."""
    return json.dumps(s, ensure_ascii=False)


# ---- images -------------------------------------------------------------------------
def image(ec2, image_id: str):
    """One image by id, or None if it does not exist for the caller (any visible owner)."""
    try:
        out = ec2.describe_images(ImageIds=[image_id])
    except ClientError as e:
        if error_code(e) in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable",
                             "InvalidAMIID.Malformed"):
            return None
        raise aws_error("DescribeImages", e) from e
    except Exception as e:  # noqa: BLE001 - network failures are named too
        raise aws_error("DescribeImages", e) from e
    return next((i for i in out.get("Images", []) if i.get("ImageId") == image_id), None)


def image_state(img) -> str:
    return img.get("State") or ""


def snapshot_ids(img) -> list:
    out = []
    for m in img.get("BlockDeviceMappings", []):
        snap = (m.get("Ebs") or {}).get("SnapshotId")
        if snap and snap not in out:
            out.append(snap)
    return out


def image_ref(img) -> dict:
    return {"imageId": img.get("ImageId") or "", "name": img.get("Name") or "",
            "state": image_state(img), "snapshotIds": snapshot_ids(img)}


# ---- polls ----------------------------------------------------------------------------
AVAILABLE, NOT_READY = "available", "not-ready"


def image_poll(image_id: str, state: str, reason):
    if state == "available":
        return AVAILABLE
    if state == "pending":
        return NOT_READY
    raise FerryError("Ferry.ImageFailed",
                     f"image {image_id} is {state}: {reason or 'no state reason given'}")


def image_not_ready(image_id: str, state: str) -> FerryError:
    return FerryError("Ferry.ImageNotReady", f"image {image_id} is {state}")


def missing_after_create(what, created_at, now, not_ready, gone) -> FerryError:
    if created_at is not None and max(now - created_at, 0) < NOT_VISIBLE_GRACE_SECONDS:
        return FerryError(not_ready, f"{what} is not visible yet ({max(now - created_at, 0)}s "
                                     "after it was created; EC2 is eventually consistent)")
    if created_at is not None:
        return FerryError(gone, f"{what} no longer exists ({max(now - created_at, 0)}s after it was created)")
    return FerryError(gone, f"{what} no longer exists")


def epoch_seconds() -> int:
    return int(time.time())


# ---- waits ----------------------------------------------------------------------------
NOW, ALREADY = "now", "already"
_CLOSED = ("TaskTimedOut", "TaskDoesNotExist")


def _end_wait(operation: str, send) -> str:
    """One SendTask* call; a task that no longer waits is not an error."""
    try:
        send()
        return NOW
    except ClientError as e:
        if error_code(e) in _CLOSED:
            return ALREADY
        raise aws_error(operation, e) from e
    except Exception as e:  # noqa: BLE001
        raise aws_error(operation, e) from e


def complete(sfn, token: str, output) -> str:
    """SendTaskSuccess with the Task's result."""
    return _end_wait("SendTaskSuccess", lambda: sfn.send_task_success(
        taskToken=token, output=json.dumps(output, separators=(",", ":"))))


def fail(sfn, token: str, error: FerryError) -> str:
    """SendTaskFailure with the error's name (the Task's error) and message."""
    return _end_wait("SendTaskFailure", lambda: sfn.send_task_failure(
        taskToken=token, error=error.name, cause=error.message[:32768]))


def check_str(obj: dict, key: str, where: str, optional: bool = False):
    v = obj.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise invalid_input(f"step input: {where}.{key}: expected a string")
    return v
