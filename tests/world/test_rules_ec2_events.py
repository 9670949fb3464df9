"""EC2 state-change events on EventBridge (rules/ec2_events.py): images and instances
announce their state changes on the default bus of their account and Region when the
world's clock gets there (described or not): "EC2 AMI State Change" (available, failed,
deregistered) and "EC2 Instance State-change Notification" (every instance state); the
world can drop them all (ec2EventsDropped) or deliver them late (ec2EventDelaySeconds).
Rules on the default bus deliver them to SQS (moto) and to Lambda functions
(rules/events.py: asynchronously, as the function's resource policy allows).

Driven through boto3 against moto's server in this process with the "migration" and
"events" rule groups; the Lambda target is a tiny provided.al2023 function (a Python
bootstrap speaking the Lambda Runtime API) run by the world's Lambda runner, which
writes each event it gets to a file."""
import io
import json
import os
import re
import sys
import time
import zipfile

import pytest

from ferry_world.engine import clock, config
from ferry_world.rules import ec2_events
from ferry_world.rules import events as events_rule
from worldtest import REGION, aws_client, reset_world

WORLD_RULES = ("migration", "events")
ACCOUNT = "123456789012"
DAY = 86400
# Every duration is days long: tests jump over them with clock.advance() (see
# test_rules_migration.py), so nothing settles while a call is slow.
SLOW_WORLD = {
    "imagePendingMinutes": 10 * 24 * 60,
    "copyPendingMinutes": 20 * 24 * 60,
    "instancePendingSeconds": DAY,
    "instanceStoppingSeconds": DAY,
    "instanceShuttingDownSeconds": DAY,
    "statusInitializingSeconds": 2 * DAY,
    "describeNotFoundAfterCreateSeconds": 0,
}
AMI_PATTERN = {"source": ["aws.ec2"], "detail-type": ["EC2 AMI State Change"]}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(autouse=True)
def fresh_world(world_url):
    reset_world(world_url)
    config.reset()
    config.update(SLOW_WORLD)
    events_rule.reset()
    ec2_events.reset()
    yield
    config.reset()


@pytest.fixture
def ec2(world_url):
    return aws_client(world_url)


@pytest.fixture
def net(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return {"subnet": subnet, "ami": base}


def launch(ec2, net):
    return ec2.run_instances(ImageId=net["ami"], MinCount=1, MaxCount=1, InstanceType="t3.micro",
                             SubnetId=net["subnet"])["Instances"][0]["InstanceId"]


def running_instance(ec2, net):
    iid = launch(ec2, net)
    clock.advance(2 * DAY)
    assert ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"
    return iid


class Listener:
    """A rule on the default bus with an SQS queue as its target."""

    def __init__(self, url, pattern, name="ec2-events"):
        self.events = aws_client(url, "events")
        self.sqs = aws_client(url, "sqs")
        self.queue = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.rule_arn = self.events.put_rule(Name=name, EventPattern=json.dumps(pattern))["RuleArn"]
        self.events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
        self.got: list[dict] = []

    def receive(self, count, timeout=5.0, quiet=0.3):
        """Events until `count` have come (then `quiet` more seconds, to catch extras)."""
        deadline = time.monotonic() + timeout
        extra_until = None
        while True:
            for m in self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=0).get("Messages", []):
                self.got.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])
            now = time.monotonic()
            if len(self.got) >= count and extra_until is None:
                extra_until = now + quiet
            if (extra_until is not None and now >= extra_until) or now >= deadline:
                return list(self.got)
            time.sleep(0.05)


def ami_event(image_id, state, message=""):
    return {"ImageId": image_id, "State": state, "ErrorMessage": message}


def check_shape(event, detail_type, resource):
    assert event["version"] == "0" and event["id"]
    assert event["source"] == "aws.ec2" and event["detail-type"] == detail_type
    assert event["account"] == ACCOUNT and event["region"] == REGION
    assert event["resources"] == [resource]
    assert TIME.match(event["time"]), event["time"]


# ------------------------------------------------------------------- AMI events
def test_create_image_sends_one_available_event_when_the_clock_gets_there(world_url, ec2, net):
    iid = running_instance(ec2, net)
    listener = Listener(world_url, AMI_PATTERN)
    image_id = ec2.create_image(InstanceId=iid, Name="ferry-image-1")["ImageId"]
    created = clock.now()
    assert listener.receive(1, timeout=0.5, quiet=0) == []  # still pending (10 simulated days)
    advanced = time.time()
    clock.advance(11 * DAY)
    # Nobody describes the image: the event comes anyway.
    got = listener.receive(1)
    # Its record says when (real seconds) it was handed to the rules.
    (record,) = [r for r in ec2_events.EMITTED if r["event"]["detail"].get("ImageId") == image_id]
    assert advanced <= record["deliveredWall"] <= time.time(), record
    assert len(got) == 1, got
    event = got[0]
    check_shape(event, "EC2 AMI State Change", f"arn:aws:ec2:{REGION}::image/{image_id}")
    assert {k: v for k, v in event["detail"].items() if k != "RequestId"} == ami_event(image_id, "available")
    assert event["detail"]["RequestId"]
    # The simulated time the image became available: 10 days after CreateImage.
    at = clock._dt.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=clock._dt.timezone.utc)
    assert abs((at - created).total_seconds() - 10 * DAY) < 120, (at, created)
    # Describing it afterwards settles nothing new: still one event.
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"
    assert listener.receive(2, timeout=0.5, quiet=0) == [event]

    ec2.deregister_image(ImageId=image_id)
    got = listener.receive(2)
    assert len(got) == 2, got
    check_shape(got[1], "EC2 AMI State Change", f"arn:aws:ec2:{REGION}::image/{image_id}")
    assert {k: v for k, v in got[1]["detail"].items() if k != "RequestId"} == ami_event(image_id, "deregistered")
    assert [r["status"] for r in ec2_events.EMITTED if r["event"]["detail-type"] == "EC2 AMI State Change"] == [
        "delivered", "delivered"]


def test_a_failed_image_sends_failed_with_its_error_message(world_url, ec2, net):
    config.update({"failImages": ["doomed-*"], "failImageReason": "Client.InternalError: boom"})
    iid = running_instance(ec2, net)
    listener = Listener(world_url, AMI_PATTERN)
    image_id = ec2.create_image(InstanceId=iid, Name="doomed-1")["ImageId"]
    clock.advance(11 * DAY)
    got = listener.receive(1)
    assert [e["detail"]["State"] for e in got] == ["failed"], got
    assert {k: v for k, v in got[0]["detail"].items() if k != "RequestId"} == ami_event(
        image_id, "failed", "Client.InternalError: boom")
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["StateReason"]["Message"] == "Client.InternalError: boom"


def test_copy_and_register_image_send_available(world_url, ec2, net):
    iid = running_instance(ec2, net)
    image_id = ec2.create_image(InstanceId=iid, Name="ferry-src")["ImageId"]
    clock.advance(11 * DAY)
    listener = Listener(world_url, AMI_PATTERN)
    time.sleep(0.2)  # the source's own event went nowhere (no rule yet)
    copy_id = ec2.copy_image(SourceImageId=image_id, SourceRegion=REGION, Name="ferry-copy")["ImageId"]
    snap = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    reg_id = ec2.register_image(Name="ferry-registered", RootDeviceName="/dev/sda1", BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snap}}])["ImageId"]
    clock.advance(21 * DAY)
    got = listener.receive(2)
    assert sorted((e["detail"]["ImageId"], e["detail"]["State"]) for e in got) == sorted(
        [(copy_id, "available"), (reg_id, "available")]), got


# -------------------------------------------------------------- instance events
def test_instance_launch_stop_start_and_terminate_send_each_state_once(world_url, ec2, net):
    listener = Listener(world_url, {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]})
    iid = launch(ec2, net)
    time.sleep(0.2)
    clock.advance(2 * DAY)
    assert [e["detail"]["state"] for e in listener.receive(2)] == ["pending", "running"]
    ec2.stop_instances(InstanceIds=[iid])
    time.sleep(0.2)
    clock.advance(2 * DAY)
    ec2.start_instances(InstanceIds=[iid])
    # No pause: the clock jumps over pending before the ticker saw it; pending is still told.
    clock.advance(2 * DAY)
    got = listener.receive(6)
    assert [e["detail"] for e in got] == [{"instance-id": iid, "state": s} for s in
                                         ("pending", "running", "stopping", "stopped", "pending", "running")], got
    for e in got:
        check_shape(e, "EC2 Instance State-change Notification", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{iid}")
    times = [e["time"] for e in got]
    assert times == sorted(times), times
    ec2.terminate_instances(InstanceIds=[iid])
    clock.advance(2 * DAY)
    assert [e["detail"]["state"] for e in listener.receive(8)[6:]] == ["shutting-down", "terminated"]


# ------------------------------------------------------------ drop and delay switches
def test_dropped_events_are_recorded_and_never_delivered(world_url, ec2, net):
    iid = running_instance(ec2, net)
    listener = Listener(world_url, {"source": ["aws.ec2"]})
    config.update({"ec2EventsDropped": True})
    image_id = ec2.create_image(InstanceId=iid, Name="ferry-image-1")["ImageId"]
    ec2.stop_instances(InstanceIds=[iid])
    clock.advance(11 * DAY)
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"
    assert listener.receive(1, timeout=1.0, quiet=0) == []
    dropped = [(r["event"]["detail-type"], r["event"]["detail"].get("State") or r["event"]["detail"].get("state"))
               for r in ec2_events.EMITTED if r["status"] == "dropped"]
    assert sorted(dropped) == sorted([("EC2 AMI State Change", "available"),
                                      ("EC2 Instance State-change Notification", "stopping"),
                                      ("EC2 Instance State-change Notification", "stopped")]), ec2_events.EMITTED


def test_a_delay_holds_events_back_on_the_clock(world_url, ec2, net):
    iid = running_instance(ec2, net)
    listener = Listener(world_url, AMI_PATTERN)
    config.update({"ec2EventDelaySeconds": 5 * DAY})
    image_id = ec2.create_image(InstanceId=iid, Name="ferry-image-1")["ImageId"]
    clock.advance(11 * DAY)
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"
    assert listener.receive(1, timeout=0.5, quiet=0) == []
    clock.advance(5 * DAY)
    assert [e["detail"]["State"] for e in listener.receive(1)] == ["available"]


def test_a_disabled_rule_gets_nothing(world_url, ec2, net):
    iid = running_instance(ec2, net)
    listener = Listener(world_url, AMI_PATTERN)
    listener.events.disable_rule(Name="ec2-events")
    ec2.create_image(InstanceId=iid, Name="ferry-image-1")
    clock.advance(11 * DAY)
    assert listener.receive(1, timeout=1.0, quiet=0) == []
    assert [r["status"] for r in ec2_events.EMITTED if r["event"]["detail-type"] == "EC2 AMI State Change"] == [
        "delivered"]


# ------------------------------------------------------------------ Lambda targets
BOOTSTRAP = """#!{python}
import os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    r = urllib.request.urlopen(api + "next")
    request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
    body = r.read()
    with open(os.environ["EVENTS_FILE"], "ab") as f:
        f.write(body.replace(b"\\n", b" ") + b"\\n")
    urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=b"{{}}", method="POST")).read()
"""


@pytest.fixture(scope="module")
def runner(world_url, tmp_path_factory):
    from moto.moto_api._internal.models import moto_api_backend

    from ferry_world.engine import lambda_runner

    if lambda_runner.RUNNER is None:
        os.environ.setdefault("FERRY_WORLD_STATE_DIR", str(tmp_path_factory.mktemp("world-state")))
    r = lambda_runner.install(int(world_url.rsplit(":", 1)[1]))
    moto_api_backend.set_config({"lambda": {"use_docker": False}})
    yield r
    r.shutdown(graceful=True)


@pytest.fixture
def recorder(world_url, runner, tmp_path):
    """A function that writes every event it gets to a file; (function ARN, file)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.set_config({"lambda": {"use_docker": False}})
    iam = aws_client(world_url, "iam")
    role = iam.create_role(RoleName="recorder", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        zf.writestr(info, BOOTSTRAP.format(python=sys.executable))
    out = tmp_path / "events.jsonl"
    out.write_bytes(b"")
    fn = aws_client(world_url, "lambda").create_function(
        FunctionName="recorder", Runtime="provided.al2023", Role=role, Handler="bootstrap",
        Code={"ZipFile": buf.getvalue()}, Timeout=10, Environment={"Variables": {"EVENTS_FILE": str(out)}})
    return fn["FunctionArn"], out


def recorded(path, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        if len(lines) >= count or time.monotonic() >= deadline:
            return lines
        time.sleep(0.05)


def lambda_rule(world_url, function_arn, name="ami-to-lambda"):
    events = aws_client(world_url, "events")
    arn = events.put_rule(Name=name, EventPattern=json.dumps(AMI_PATTERN))["RuleArn"]
    events.put_targets(Rule=name, Targets=[{"Id": "fn", "Arn": function_arn}])
    return arn


def test_a_lambda_target_without_a_policy_for_eventbridge_is_not_invoked(world_url, ec2, net, runner, recorder):
    function_arn, out = recorder
    lam = aws_client(world_url, "lambda")
    rule_arn = lambda_rule(world_url, function_arn)
    # A permission for another rule does not do.
    lam.add_permission(FunctionName="recorder", StatementId="other-rule", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=rule_arn + "-other")
    iid = running_instance(ec2, net)
    image_id = ec2.create_image(InstanceId=iid, Name="ferry-image-1")["ImageId"]
    clock.advance(11 * DAY)
    deadline = time.monotonic() + 5
    while not events_rule.FAILED_INVOCATIONS and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(f["rule"], f["targetArn"], f["error"]) for f in events_rule.FAILED_INVOCATIONS] == [
        (rule_arn, function_arn, "AccessDeniedException")], events_rule.FAILED_INVOCATIONS
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"
    time.sleep(0.3)
    assert recorded(out, 1, timeout=0) == []
    assert runner.describe()["stats"].get("recorder", {}).get("invocations", 0) == 0


def test_a_lambda_target_allowed_by_its_policy_gets_the_event(world_url, ec2, net, runner, recorder):
    function_arn, out = recorder
    lam = aws_client(world_url, "lambda")
    rule_arn = lambda_rule(world_url, function_arn)
    lam.add_permission(FunctionName="recorder", StatementId="ami-events", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=rule_arn)
    iid = running_instance(ec2, net)
    image_id = ec2.create_image(InstanceId=iid, Name="ferry-image-1")["ImageId"]
    clock.advance(11 * DAY)
    got = recorded(out, 1)
    assert len(got) == 1, got
    check_shape(got[0], "EC2 AMI State Change", f"arn:aws:ec2:{REGION}::image/{image_id}")
    assert got[0]["detail"]["ImageId"] == image_id and got[0]["detail"]["State"] == "available"
    assert [(d["rule"], d["targetArn"], d.get("invocationType")) for d in events_rule.DELIVERED] == [
        (rule_arn, function_arn, "Event")]
    assert events_rule.FAILED_INVOCATIONS == []
    # An event of one's own (PutEvents) reaches a Lambda target the same way.
    events = aws_client(world_url, "events")
    own_rule = events.put_rule(Name="own", EventPattern=json.dumps({"source": ["ferry.test"]}))["RuleArn"]
    events.put_targets(Rule="own", Targets=[{"Id": "fn", "Arn": function_arn, "InputPath": "$.detail"}])
    lam.add_permission(FunctionName="recorder", StatementId="own-events", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=own_rule)
    events.put_events(Entries=[{"Source": "ferry.test", "DetailType": "t", "Detail": json.dumps({"a": 1})}])
    got = recorded(out, 2)
    assert got[1:] == [{"a": 1}], got
    deadline = time.monotonic() + 5
    while runner.describe()["stats"].get("recorder", {}).get("invocations", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.describe()["stats"]["recorder"]["invocations"] == 2


PERMISSION_TEMPLATE = """
Parameters:
  FunctionArn:
    Type: String
Resources:
  AmiEvents:
    Type: AWS::Events::Rule
    Properties:
      Name: ami-events
      EventPattern:
        source: [aws.ec2]
        detail-type: [EC2 AMI State Change]
      Targets:
        - Id: fn
          Arn: !Ref FunctionArn
  AmiEventsPermission:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !Ref FunctionArn
      Action: lambda:InvokeFunction
      Principal: events.amazonaws.com
      SourceArn: !GetAtt AmiEvents.Arn
"""


def test_a_deployed_rule_and_lambda_permission_deliver(world_url, ec2, net, runner, recorder, tmp_path):
    """engine/buses.py deploys AWS::Lambda::Permission (idempotently) next to the rule."""
    from ferry_world.engine.deploy import deploy_stack

    function_arn, out = recorder
    template = tmp_path / "events.yaml"
    template.write_text(PERMISSION_TEMPLATE)
    for _ in range(2):
        deploy_stack(template, world_url, ACCOUNT, REGION, {"FunctionArn": function_arn}, stack="ec2-events")
    policy = json.loads(aws_client(world_url, "lambda").get_policy(FunctionName="recorder")["Policy"])
    assert [st["Sid"] for st in policy["Statement"]] == ["AmiEventsPermission"], policy
    iid = running_instance(ec2, net)
    image_id = ec2.create_image(InstanceId=iid, Name="ferry-image-1")["ImageId"]
    clock.advance(11 * DAY)
    got = recorded(out, 1)
    assert [(e["detail"]["ImageId"], e["detail"]["State"]) for e in got] == [(image_id, "available")], got
    assert events_rule.FAILED_INVOCATIONS == []
