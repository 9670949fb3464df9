"""The cold-start benchmark's stub: one process serving

(a) the Lambda Runtime API (2018-06-01) over plain HTTP on 127.0.0.1, as Lambda serves it
    to a runtime at AWS_LAMBDA_RUNTIME_API: `GET /runtime/invocation/next` hands out one
    event with the headers Lambda sets, `POST /runtime/invocation/{id}/response|error` and
    `POST /runtime/init/error` take the answer. A second `/next` is held open (the process
    then idles as a Lambda sandbox does between invocations) until the runner kills it;
(b) an HTTPS "AWS endpoint" (AWS_ENDPOINT_URL) under a self-signed CA made at start,
    answering the calls the three measured steps make with AWS's response shapes:
    EC2 query protocol DescribeImages (XML, namespace 2016-11-15) and Step Functions
    JSON 1.0 GetExecutionHistory / SendTaskSuccess / SendTaskFailure. Any credentials
    are accepted (no SigV4 check).

Every request is timed (time.monotonic_ns, the runner's clock) and recorded on the
current Sample, which the runner (run.py) sets before it starts a process: the time of the
first `/next` (end of init), of the first response (end of the cold start), the response
itself and the AWS calls made.

run.py imports this module and runs the Stub in its own process (so the stub's clock is
the runner's); `python stub.py` serves it alone, for trying a bootstrap by hand.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import os
import re
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenario  # noqa: E402

RUNTIME_PREFIX = "/2018-06-01/runtime"
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
SYSTEM_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"]


# ---------------------------------------------------------------------------------------
# One process's run
# ---------------------------------------------------------------------------------------
class Sample:
    """One process: the event it gets (None: init only, `/next` is never answered) and
    what the stub saw of it."""

    def __init__(self, event: dict | None, function_name: str = "ferry"):
        self.event = None if event is None else json.dumps(event).encode()
        self.function_name = function_name
        self.request_id = str(uuid.uuid4())
        self.t_next: int | None = None  # monotonic ns of the first /next
        self.t_response: int | None = None  # ... of the first response or error received
        self.response: bytes | None = None
        self.error: dict | None = None  # {"type": header, "body": ...}
        self.init_error: dict | None = None
        self.calls: list[tuple[str, str, dict]] = []  # (service, action, params)
        self.served = False
        self.first_next = threading.Event()
        self.done = threading.Event()  # a response, an error or an init error arrived
        self.idle = threading.Event()  # back in /next after its invocation
        self.release = threading.Event()  # lets held /next calls go (after the kill)
        self.lock = threading.Lock()

    def finish(self):
        self.release.set()


class _Idle(Sample):
    def __init__(self):
        super().__init__(None, "none")


# ---------------------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------------------
def make_certificates(directory: str) -> dict:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it (EC P-256,
    which rustls+ring and OpenSSL both take), and a bundle = the system's CA bundle plus
    this CA: both runtimes then load a trust store of a real size, as they do on Lambda."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferry bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = {name: os.path.join(directory, name)
             for name in ("ca.pem", "server.pem", "server.key", "bundle.pem")}
    ca_pem = ca.public_bytes(pem)
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca_pem)
    with open(paths["server.pem"], "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(paths["server.key"], "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    system = next((p for p in SYSTEM_BUNDLES if os.path.exists(p)), None)
    with open(paths["bundle.pem"], "wb") as f:
        if system:
            with open(system, "rb") as s:
                f.write(s.read().rstrip(b"\n") + b"\n")
        f.write(ca_pem)
    paths["systemBundle"] = system
    return paths


# ---------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------
class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        # A process killed mid-connection (after its answer) is expected; anything else
        # is printed as socketserver does.
        if isinstance(sys.exc_info()[1], (OSError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)

    def __init__(self, stub: "Stub", handler, tls: ssl.SSLContext | None = None):
        self.stub = stub
        self.tls = tls
        super().__init__(("127.0.0.1", 0), handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # TCP_NODELAY, and each answer in one write (below): no Nagle / delayed-ACK stalls
    # (up to 40 ms a round trip on Linux) that AWS's endpoints do not have.
    disable_nagle_algorithm = True

    def setup(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.server.tls is not None:  # the handshake runs in this connection's thread
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def log_message(self, *args):  # quiet
        pass

    def body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        # end_headers() would write the headers, then the body a second write: one instead
        self._headers_buffer.append(b"\r\n" + body)
        self.flush_headers()


# ---------------------------------------------------------------------------------------
# (a) Lambda Runtime API
# ---------------------------------------------------------------------------------------
class _RuntimeHandler(_Handler):
    def do_GET(self):
        now = time.monotonic_ns()
        stub = self.server.stub
        if self.path != f"{RUNTIME_PREFIX}/invocation/next":
            return self.send(404, b'{"errorType":"NotFound"}', "application/json")
        s = stub.current
        with s.lock:
            first = s.t_next is None
            if first:
                s.t_next = now
            give = s.event is not None and not s.served
            if give:
                s.served = True
        if first:
            s.first_next.set()
        if not give:
            if s.served:
                s.idle.set()
            # Nothing more for this process: hold the call as Lambda does while the
            # sandbox is frozen, until the runner has killed the process.
            s.release.wait(120)
            self.close_connection = True
            return
        deadline = int(time.time() * 1000) + 30_000
        epoch = int(time.time())
        trace = (f"Root=1-{epoch:08x}-{uuid.uuid4().hex[:24]};"
                 f"Parent={uuid.uuid4().hex[:16]};Sampled=0;Lineage=1:{uuid.uuid4().hex[:8]}:0")
        self.send(200, s.event, "application/json", {
            "Lambda-Runtime-Aws-Request-Id": s.request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline),
            "Lambda-Runtime-Invoked-Function-Arn":
                f"arn:aws:lambda:{scenario.REGION}:{scenario.ACCOUNT}:function:{s.function_name}",
            "Lambda-Runtime-Trace-Id": trace,
        })

    def do_POST(self):
        stub = self.server.stub
        body = self.body()
        now = time.monotonic_ns()
        s = stub.current
        m = re.fullmatch(rf"{RUNTIME_PREFIX}/invocation/([^/]+)/(response|error)", self.path)
        if m:
            if m.group(1) != s.request_id:
                return self.send(400, json.dumps({
                    "errorMessage": f"unknown request id {m.group(1)}",
                    "errorType": "InvalidRequestID"}).encode(), "application/json")
            with s.lock:
                if s.t_response is None:
                    s.t_response = now
                    if m.group(2) == "response":
                        s.response = body
                    else:
                        s.error = _error(self.headers, body)
            self.send(202, b'{"status":"OK"}', "application/json")
            s.done.set()
            return
        if self.path == f"{RUNTIME_PREFIX}/init/error":
            with s.lock:
                if s.t_response is None:
                    s.t_response = now
                s.init_error = _error(self.headers, body)
            self.send(202, b'{"status":"OK"}', "application/json")
            s.done.set()
            return
        self.send(404, b'{"errorType":"NotFound"}', "application/json")


def _error(headers, body: bytes) -> dict:
    """An error as Lambda reports it: errorType from the body (the Rust runtime's header
    says only "unhandled"), and the header as sent."""
    parsed = _json_or_text(body)
    kind = parsed.get("errorType") if isinstance(parsed, dict) else None
    return {"type": kind or headers.get("Lambda-Runtime-Function-Error-Type"),
            "header": headers.get("Lambda-Runtime-Function-Error-Type"), "body": parsed}


def _json_or_text(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


# ---------------------------------------------------------------------------------------
# (b) the AWS endpoint
# ---------------------------------------------------------------------------------------
class _AwsHandler(_Handler):
    def do_POST(self):
        body = self.body()
        s = self.server.stub.current
        target = self.headers.get("X-Amz-Target")
        if target:
            service, _, action = target.partition(".")
            params = json.loads(body or b"{}")
            with s.lock:
                s.calls.append(("sfn", action, params))
            if service != "AWSStepFunctions":
                return self._json_error(400, "UnknownOperationException", target)
            return self._sfn(action, params)
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode(),
                                                             keep_blank_values=True).items()}
        action = params.get("Action", "")
        with s.lock:
            s.calls.append(("ec2", action, params))
        if action == "DescribeImages":
            return self._describe_images(params)
        self._ec2_error(400, "InvalidAction", f"The action {action} is not valid for this web service.")

    do_GET = do_POST

    # ---- EC2 (query protocol, XML) ----
    def _ec2_error(self, status, code, message):
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
               f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error></Errors>"
               f"<RequestID>{uuid.uuid4()}</RequestID></Response>")
        self.send(status, xml.encode(), "text/xml;charset=UTF-8")

    def _describe_images(self, p: dict):
        ids = _indexed(p, "ImageId")
        owners = _indexed(p, "Owner")
        filters: dict[str, list[str]] = {}
        for n in range(1, 51):
            name = p.get(f"Filter.{n}.Name")
            if name is None:
                break
            filters[name] = _indexed(p, f"Filter.{n}.Value")
        images = list(scenario.IMAGES)
        if ids:
            for i in ids:
                if not re.fullmatch(r"ami-([0-9a-f]{8}|[0-9a-f]{17})", i):
                    return self._ec2_error(400, "InvalidAMIID.Malformed",
                                           f'Invalid id: "{i}" (expecting "ami-...")')
            missing = [i for i in ids if not any(img["imageId"] == i for img in images)]
            if missing:
                return self._ec2_error(400, "InvalidAMIID.NotFound",
                                       f"The image id '[{', '.join(missing)}]' does not exist")
            images = [img for img in images if img["imageId"] in ids]
        if owners:
            want = {scenario.ACCOUNT if o == "self" else o for o in owners}
            images = [img for img in images if img["ownerId"] in want]
        for name, values in filters.items():
            field = {"name": "name", "state": "state", "image-id": "imageId",
                     "owner-id": "ownerId"}.get(name)
            if field is None:
                continue
            pats = [re.compile(_wildcard(v)) for v in values]
            images = [img for img in images if any(pt.fullmatch(img[field]) for pt in pats)]
        start = int(p.get("NextToken") or 0)
        size = int(p.get("MaxResults") or 0) or len(images) or 1
        page, nxt = images[start:start + size], start + size
        items = "".join(_image_xml(img) for img in page)
        token = f"<nextToken>{nxt}</nextToken>" if "MaxResults" in p and nxt < len(images) else ""
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               f'<DescribeImagesResponse xmlns="{EC2_NS}">\n'
               f"    <requestId>{uuid.uuid4()}</requestId>\n"
               f"    <imagesSet>{items}\n    </imagesSet>{token}\n"
               "</DescribeImagesResponse>")
        self.send(200, xml.encode(), "text/xml;charset=UTF-8")

    # ---- Step Functions (JSON 1.0) ----
    def _json_error(self, status, code, message):
        body = json.dumps({"__type": code, "message": message}).encode()
        self.send(status, body, "application/x-amz-json-1.0",
                  {"x-amzn-RequestId": str(uuid.uuid4())})

    def _json(self, obj):
        self.send(200, json.dumps(obj).encode(), "application/x-amz-json-1.0",
                  {"x-amzn-RequestId": str(uuid.uuid4())})

    def _sfn(self, action, p):
        if action == "GetExecutionHistory":
            arn = p.get("executionArn", "")
            events = scenario.HISTORY.get(arn)
            if events is None:
                return self._json_error(400, "ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'")
            ordered = list(reversed(events)) if p.get("reverseOrder") else list(events)
            size = p.get("maxResults") or 100
            start = int(p.get("nextToken") or 0)
            page = ordered[start:start + size]
            if p.get("includeExecutionData") is False:
                page = [{k: ({dk: dv for dk, dv in v.items()
                              if dk not in ("input", "output", "inputDetails", "outputDetails")}
                             if k.endswith("EventDetails") else v) for k, v in e.items()}
                        for e in page]
            out = {"events": page}
            if start + size < len(ordered):
                out["nextToken"] = str(start + size)
            return self._json(out)
        if action in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
            if not p.get("taskToken"):
                return self._json_error(400, "InvalidToken", "Invalid Token: ''")
            return self._json({})
        return self._json_error(400, "UnknownOperationException", action)


def _indexed(p: dict, prefix: str) -> list[str]:
    out = []
    for n in range(1, 1001):
        v = p.get(f"{prefix}.{n}")
        if v is None:
            break
        out.append(v)
    return out


def _wildcard(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def _image_xml(img: dict) -> str:
    mappings = "".join(
        "\n                <item>\n"
        f"                    <deviceName>{'/dev/xvda' if n == 0 else f'/dev/sd{chr(102 + n)}'}</deviceName>\n"
        "                    <ebs>\n"
        f"                        <snapshotId>{snap}</snapshotId>\n"
        f"                        <volumeSize>{30 if n == 0 else 200}</volumeSize>\n"
        "                        <deleteOnTermination>true</deleteOnTermination>\n"
        "                        <volumeType>gp3</volumeType>\n"
        "                        <encrypted>true</encrypted>\n"
        "                    </ebs>\n"
        "                </item>"
        for n, snap in enumerate(img["snapshots"]))
    tags = "".join(f"\n                <item>\n                    <key>{escape(k)}</key>\n"
                   f"                    <value>{escape(v)}</value>\n                </item>"
                   for k, v in img["tags"].items())
    reason = ""
    if img.get("stateReason"):
        code, message = img["stateReason"]
        reason = (f"\n            <stateReason>\n                <code>{escape(code)}</code>\n"
                  f"                <message>{escape(message)}</message>\n            </stateReason>")
    deprecation = (f"\n            <deprecationTime>{img['deprecationTime']}</deprecationTime>"
                   if img.get("deprecationTime") else "")
    return f"""
        <item>
            <imageId>{img['imageId']}</imageId>
            <imageLocation>{img['ownerId']}/{escape(img['name'])}</imageLocation>
            <imageState>{img['state']}</imageState>
            <imageOwnerId>{img['ownerId']}</imageOwnerId>
            <creationDate>{img['creationDate']}</creationDate>
            <isPublic>false</isPublic>
            <architecture>x86_64</architecture>
            <imageType>machine</imageType>
            <sriovNetSupport>simple</sriovNetSupport>
            <name>{escape(img['name'])}</name>
            <description>{escape(img['name'])}</description>
            <rootDeviceType>ebs</rootDeviceType>
            <rootDeviceName>/dev/xvda</rootDeviceName>
            <blockDeviceMapping>{mappings}
            </blockDeviceMapping>
            <virtualizationType>hvm</virtualizationType>
            <tagSet>{tags}
            </tagSet>{reason}
            <hypervisor>xen</hypervisor>
            <enaSupport>true</enaSupport>
            <platformDetails>Linux/UNIX</platformDetails>
            <usageOperation>RunInstances</usageOperation>
            <bootMode>uefi-preferred</bootMode>
            <imdsSupport>v2.0</imdsSupport>{deprecation}
        </item>"""


# ---------------------------------------------------------------------------------------
# The stub
# ---------------------------------------------------------------------------------------
class Stub:
    """Both servers, in threads of this process. `current` is the Sample being run."""

    def __init__(self, workdir: str | None = None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="ferry-coldstart-")
        self.certs = make_certificates(self.workdir)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self.certs["server.pem"], self.certs["server.key"])
        tls.set_alpn_protocols(["http/1.1"])
        self.current: Sample = _Idle()
        self.runtime = _Server(self, _RuntimeHandler)
        self.aws = _Server(self, _AwsHandler, tls)
        self.threads = [threading.Thread(target=srv.serve_forever, daemon=True)
                        for srv in (self.runtime, self.aws)]
        for t in self.threads:
            t.start()

    @property
    def runtime_api(self) -> str:
        return f"127.0.0.1:{self.runtime.server_address[1]}"

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.aws.server_address[1]}"

    def begin(self, sample: Sample) -> Sample:
        self.current.finish()
        self.current = sample
        return sample

    def close(self):
        self.current.finish()
        for srv in (self.runtime, self.aws):
            srv.shutdown()
            srv.server_close()


def main():
    stub = Stub()
    step = sys.argv[1] if len(sys.argv) > 1 else "wait-image"
    spec = scenario.STEPS[step]
    print(f"AWS_LAMBDA_RUNTIME_API={stub.runtime_api}")
    print(f"AWS_ENDPOINT_URL={stub.endpoint}")
    print(f"SSL_CERT_FILE={stub.certs['bundle.pem']}  AWS_CA_BUNDLE={stub.certs['bundle.pem']}")
    print(f"serving one {step} event per process; Ctrl-C ends", flush=True)
    try:
        while True:
            s = stub.begin(Sample(spec["input"], spec["function"]))
            s.done.wait()
            print(json.dumps({"response": _json_or_text(s.response or b"null"),
                              "error": s.error, "initError": s.init_error,
                              "calls": [c[:2] for c in s.calls]}), flush=True)
    except KeyboardInterrupt:
        stub.close()


if __name__ == "__main__":
    main()
