"""A minimal Python Lambda runtime, doing what AWS's Python runtime does: import the
handler named by _HANDLER ("module.function") from LAMBDA_TASK_ROOT (its import, with the
module's boto3 clients, is the init phase; a failure is POSTed to /runtime/init/error),
then loop: GET /runtime/invocation/next -> handler(event, context) -> POST
/runtime/invocation/{id}/response, or /error with Lambda-Runtime-Function-Error-Type.
A handler's exception with an `error_type` (the twins' FerryError: "Ferry.ImageFailed"...)
is reported under that name, as the Rust steps report theirs.
"""

import http.client
import importlib
import json
import os
import sys
import time
import traceback


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def _error_body(e):
    return {"errorMessage": str(e), "errorType": getattr(e, "error_type", type(e).__name__),
            "requestId": "", "stackTrace": traceback.format_tb(e.__traceback__)}


def main():
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    base = "/2018-06-01/runtime"
    conn = http.client.HTTPConnection(api)

    def post(path, body, headers=None):
        data = json.dumps(body).encode()
        conn.request("POST", base + path, body=data,
                     headers={"Content-Type": "application/json", **(headers or {})})
        conn.getresponse().read()

    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", os.path.dirname(os.path.abspath(__file__))))
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as e:  # noqa: BLE001 - reported to Lambda as the runtime does
        body = _error_body(e)
        body["errorType"] = "Runtime.ImportModuleError"
        post("/init/error", body, {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
        sys.exit(1)
    while True:
        conn.request("GET", base + "/invocation/next")
        r = conn.getresponse()
        event = json.loads(r.read())
        context = Context(r.headers)
        os.environ["_X_AMZN_TRACE_ID"] = r.headers.get("Lambda-Runtime-Trace-Id", "")
        try:
            result = handler(event, context)
        except Exception as e:  # noqa: BLE001
            body = _error_body(e)
            body["requestId"] = context.aws_request_id
            post(f"/invocation/{context.aws_request_id}/error", body,
                 {"Lambda-Runtime-Function-Error-Type": body["errorType"]})
            continue
        post(f"/invocation/{context.aws_request_id}/response", result)


if __name__ == "__main__":
    main()
