"""ferry's migrate-instance workflow, end to end, in the local AWS world.

    tests/world/up && .venv-world/bin/python tests/world/demo.py [--source-action stop|keep|terminate]

Sets up a realistic source in the hub account (VPC, subnets in two AZs, security groups,
a KMS customer-managed key, an instance profile, a key pair, a t3.micro with an encrypted
root and an encrypted data volume, tags, user data, IMDSv2 required, an Elastic IP), starts
``ferry-migrate-instance`` to move it to the other AZ, waits for the end and prints the new
instance and the execution's states with their simulated durations. Exits 1 if the
execution did not succeed (saying where and why), 2 if the world is not there.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]
DEMO_TAG = "ferry-demo"


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


class Demo:
    def __init__(self, world: dict):
        self.world = world
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=world["region"]
        )
        cfg = Config(retries={"mode": "standard", "max_attempts": 3})
        self.client = lambda name: session.client(name, endpoint_url=world["endpoint"], config=cfg)  # noqa: E731
        self.ec2 = self.client("ec2")
        self.kms = self.client("kms")
        self.iam = self.client("iam")
        self.sfn = self.client("stepfunctions")
        self.run_id = uuid.uuid4().hex[:6]

    def control(self, path: str):
        with urllib.request.urlopen(f"{self.world['endpoint']}{path}", timeout=10) as r:
            return json.load(r)

    # -- the source ------------------------------------------------------------------

    def tags(self, resource: str, name: str, **extra) -> list[dict]:
        tags = {"Name": name, "app": DEMO_TAG, "env": "demo", "demo-run": self.run_id, **extra}
        return [{"ResourceType": resource, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]

    def security_group(self, vpc: str, name: str, description: str, port: int, cidr: str) -> str:
        """A security group of the demo VPC open on one TCP port to one CIDR."""
        group = self.ec2.create_security_group(
            GroupName=f"ferry-demo-{name}-{self.run_id}", Description=description, VpcId=vpc,
            TagSpecifications=self.tags("security-group", name),
        )["GroupId"]
        self.ec2.authorize_security_group_ingress(
            GroupId=group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                                           "IpRanges": [{"CidrIp": cidr}]}])
        return group

    def setup(self) -> dict:
        ec2, r = self.ec2, self.run_id
        azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]
               if z.get("State", "available") == "available"][:2]
        if len(azs) < 2:
            raise SystemExit("demo: the region needs two availability zones")
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16", TagSpecifications=self.tags("vpc", f"ferry-demo-{r}"))["Vpc"]["VpcId"]
        source_subnet = ec2.create_subnet(
            VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone=azs[0],
            TagSpecifications=self.tags("subnet", f"ferry-demo-{r}-{azs[0]}"),
        )["Subnet"]["SubnetId"]
        target_subnet = ec2.create_subnet(
            VpcId=vpc, CidrBlock="10.42.2.0/24", AvailabilityZone=azs[1],
            TagSpecifications=self.tags("subnet", f"ferry-demo-{r}-{azs[1]}"),
        )["Subnet"]["SubnetId"]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)

        web = self.security_group(vpc, "web", "web", 443, "0.0.0.0/0")
        admin = self.security_group(vpc, "admin", "admin ssh", 22, "10.0.0.0/8")

        key = self.kms.create_key(Description=f"ferry demo EBS key {r}", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
        self.kms.create_alias(AliasName=f"alias/ferry-demo-{r}", TargetKeyId=key["KeyId"])

        role = f"ferry-demo-app-{r}"
        self.iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
        }))
        profile = self.iam.create_instance_profile(InstanceProfileName=role)["InstanceProfile"]
        self.iam.add_role_to_instance_profile(InstanceProfileName=role, RoleName=role)
        key_name = f"ferry-demo-{r}"
        ec2.create_key_pair(KeyName=key_name)

        image = self.pick_image()
        user_data = "#!/bin/bash\necho 'hello from the ferry demo' > /etc/motd\nsystemctl enable --now nginx\n"
        instance = ec2.run_instances(
            ImageId=image["ImageId"], InstanceType="t3.micro", MinCount=1, MaxCount=1,
            SubnetId=source_subnet, SecurityGroupIds=[web, admin], KeyName=key_name,
            IamInstanceProfile={"Arn": profile["Arn"]},
            UserData=user_data,  # boto3 base64-encodes it
            MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 2},
            BlockDeviceMappings=[
                {"DeviceName": image["RootDeviceName"],
                 "Ebs": {"VolumeSize": 16, "VolumeType": "gp3", "Encrypted": True, "KmsKeyId": key["Arn"],
                         "DeleteOnTermination": True}},
                {"DeviceName": "/dev/sdf",
                 "Ebs": {"VolumeSize": 32, "VolumeType": "gp3", "Iops": 3000, "Throughput": 125, "Encrypted": True,
                         "KmsKeyId": key["Arn"], "DeleteOnTermination": False}},
            ],
            TagSpecifications=self.tags("instance", "ferry-demo-web-1", team="platform", backup="daily")
            + self.tags("volume", "ferry-demo-web-1-disk"),
        )["Instances"][0]["InstanceId"]
        self.wait_instance(instance, "running")
        allocation = ec2.allocate_address(
            Domain="vpc", TagSpecifications=self.tags("elastic-ip", "ferry-demo-web-1-eip"))
        ec2.associate_address(AllocationId=allocation["AllocationId"], InstanceId=instance)
        return {
            "vpc": vpc, "azs": azs, "sourceSubnet": source_subnet, "targetSubnet": target_subnet,
            "securityGroups": [web, admin], "kmsKey": key["Arn"], "instanceProfile": profile["Arn"],
            "keyName": key_name, "image": image["ImageId"], "instance": instance,
            "eip": allocation["PublicIp"], "allocationId": allocation["AllocationId"],
        }

    def pick_image(self) -> dict:
        images = self.ec2.describe_images(
            Owners=["amazon"],
            Filters=[{"Name": "root-device-type", "Values": ["ebs"]},
                     {"Name": "architecture", "Values": ["x86_64"]},
                     {"Name": "state", "Values": ["available"]}],
        )["Images"]
        preferred = [i for i in images if "al2023" in (i.get("Name") or "") or "amzn2" in (i.get("Name") or "")]
        chosen = (preferred or images or [None])[0]
        if chosen is None:
            raise SystemExit("demo: the world has no Amazon EBS image to launch from")
        return chosen

    def wait_instance(self, instance_id: str, state: str, timeout: float = 60) -> None:
        t0 = time.monotonic()
        while True:
            try:
                got = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]
            except ClientError as e:  # just launched: EC2 is eventually consistent (rules/consistency.py)
                if e.response["Error"]["Code"] != "InvalidInstanceID.NotFound":
                    raise
                got = "not visible yet"
            if got == state:
                return
            if time.monotonic() - t0 > timeout:
                raise SystemExit(f"demo: {instance_id} is {got}, not {state}, after {timeout}s")
            time.sleep(0.05)

    # -- the run -----------------------------------------------------------------------

    def migrate(self, source: dict, source_action: str, timeout: float) -> tuple[dict, list, float]:
        request = {
            "sourceInstanceId": source["instance"],
            "targetSubnetId": source["targetSubnet"],
            "sourceAction": source_action,
            "stopSource": True,
            "tags": {"change": f"CHG-{self.run_id}"},
        }
        print(f"\nstarting ferry-migrate-instance with {json.dumps(request)}")
        t0 = time.monotonic()
        arn = self.sfn.start_execution(
            stateMachineArn=self.world["stateMachines"]["migrate-instance"],
            name=f"demo-{self.run_id}", input=json.dumps(request),
        )["executionArn"]
        while True:
            d = self.sfn.describe_execution(executionArn=arn)
            if d["status"] != "RUNNING":
                break
            if time.monotonic() - t0 > timeout:
                self.sfn.stop_execution(executionArn=arn, error="Demo.Timeout", cause=f"still running after {timeout}s real")
                d = self.sfn.describe_execution(executionArn=arn)
                break
            time.sleep(0.1)
        real = time.monotonic() - t0
        events = []
        kwargs = {"executionArn": arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events += page["events"]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        return d, events, real


def state_table(events: list) -> tuple[list[dict], dict | None]:
    """Per state: entered time, duration, Lambda attempts and the errors they raised."""
    rows, open_ = [], {}
    last_failure = None
    start = events[0]["timestamp"]
    current = None
    for e in events:
        t = e["type"]
        if t.endswith("StateEntered"):
            name = e["stateEnteredEventDetails"]["name"]
            current = {"state": name, "entered": e["timestamp"], "attempts": 0, "errors": [], "exited": None}
            open_[name] = current
            rows.append(current)
        elif t.endswith("StateExited"):
            name = e["stateExitedEventDetails"]["name"]
            if name in open_:
                open_.pop(name)["exited"] = e["timestamp"]
        elif t == "LambdaFunctionScheduled" and current:
            current["attempts"] += 1
        elif t in ("LambdaFunctionFailed", "LambdaFunctionTimedOut", "TaskFailed") and current:
            details = next((v for k, v in e.items() if k.endswith("EventDetails")), {})
            current["errors"].append(details.get("error"))
            last_failure = {"state": current["state"], **details}
    end = events[-1]["timestamp"]
    for row in rows:
        row["offset"] = (row["entered"] - start).total_seconds()
        row["duration"] = ((row["exited"] or end) - row["entered"]).total_seconds()
    return rows, last_failure


def describe_new_instance(demo: Demo, instance_id: str) -> None:
    ec2 = demo.ec2
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    print(f"\nnew instance {instance_id}")
    print(f"  state {inst['State']['Name']}, type {inst['InstanceType']}, AZ {inst['Placement']['AvailabilityZone']}, "
          f"subnet {inst.get('SubnetId')}, private IP {inst.get('PrivateIpAddress')}, public IP {inst.get('PublicIpAddress')}")
    print(f"  image {inst.get('ImageId')}, key {inst.get('KeyName')}, profile {inst.get('IamInstanceProfile', {}).get('Arn')}, "
          f"IMDS tokens {inst.get('MetadataOptions', {}).get('HttpTokens')}")
    print(f"  security groups {[g['GroupId'] for g in inst.get('SecurityGroups', [])]}")
    tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
    print(f"  tags {json.dumps(tags, sort_keys=True)}")
    vol_ids = [m["Ebs"]["VolumeId"] for m in inst.get("BlockDeviceMappings", []) if "Ebs" in m]
    devices = {m["Ebs"]["VolumeId"]: m["DeviceName"] for m in inst.get("BlockDeviceMappings", []) if "Ebs" in m}
    if vol_ids:
        for v in ec2.describe_volumes(VolumeIds=vol_ids)["Volumes"]:
            vtags = {t["Key"]: t["Value"] for t in v.get("Tags", [])}
            print(f"  volume {v['VolumeId']} {devices.get(v['VolumeId'])}: {v['VolumeType']} {v['Size']} GiB, "
                  f"encrypted {v['Encrypted']}, KMS {v.get('KmsKeyId')}, AZ {v['AvailabilityZone']}, tags {json.dumps(vtags, sort_keys=True)}")
    addrs = ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [instance_id]}])["Addresses"]
    for a in addrs:
        print(f"  elastic IP {a['PublicIp']} ({a['AllocationId']})")
    if not addrs:
        print("  elastic IP: none")
    try:
        ud = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"].get("Value")
        print(f"  user data: {base64.b64decode(ud).decode().splitlines()[1] + ' ...' if ud else 'none'}")
    except Exception as exc:  # noqa: BLE001 - informative only
        print(f"  user data: ({exc})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", default=str(ROOT / ".local" / "world.json"))
    parser.add_argument("--source-action", choices=["keep", "stop", "terminate"], default="stop")
    parser.add_argument("--timeout", type=float, default=300.0, help="real seconds to wait for the execution")
    parser.add_argument("--fault", action="append", default=[], metavar="JSON",
                        help='arm a fault before the run, e.g. \'{"service": "ec2", "action": "RunInstances", '
                             '"count": 20, "code": "InsufficientInstanceCapacity"}\' (repeatable)')
    args = parser.parse_args(argv)

    try:
        world = json.loads(Path(args.world).read_text())
    except FileNotFoundError:
        print(f"demo: {args.world} not found: run tests/world/up first", file=sys.stderr)
        return 2
    demo = Demo(world)
    try:
        health = demo.control("/ferry-world/health")
    except OSError as exc:
        print(f"demo: the world at {world['endpoint']} does not answer ({exc}): run tests/world/up", file=sys.stderr)
        return 2
    if not health.get("rules"):
        print(f"demo: WARNING: {health.get('rulesError')}", file=sys.stderr)

    t0 = time.monotonic()
    source = demo.setup()
    print(f"source ready in {time.monotonic() - t0:.2f}s real:")
    for k, v in source.items():
        print(f"  {k}: {v}")

    for fault in args.fault:
        req = urllib.request.Request(f"{world['endpoint']}/ferry-world/faults", data=fault.encode(), method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            print(f"armed fault: {json.load(r)['faults']}")

    calls_before = max((c["seq"] for c in demo.control("/ferry-world/calls")["calls"]), default=0)
    d, events, real = demo.migrate(source, args.source_action, args.timeout)
    simulated = (d.get("stopDate", d["startDate"]) - d["startDate"]).total_seconds()
    rows, failure = state_table(events)

    print(f"\nexecution {d['executionArn']}")
    print(f"  status {d['status']}: {real:.2f}s real, {fmt_duration(simulated)} simulated "
          f"(time scale {world.get('timeScale')})")
    print(f"\n  {'state':<18}{'entered at':>12}{'duration':>12}{'attempts':>10}  errors")
    for row in rows:
        errors = ", ".join(f"{e}" for e in row["errors"]) if row["errors"] else ""
        if len(row["errors"]) > 3:
            from collections import Counter

            errors = ", ".join(f"{k} x{n}" for k, n in Counter(row["errors"]).items())
        print(f"  {row['state']:<18}{'+' + fmt_duration(row['offset']):>12}{fmt_duration(row['duration']):>12}"
              f"{row['attempts'] or '':>10}  {errors}")

    calls = demo.control(f"/ferry-world/calls?since={calls_before}")["calls"]
    by_caller: dict = {}
    for c in calls:
        if c.get("caller") and c["caller"] != "stepfunctions":
            key = (c["caller"], c["service"], c["action"])
            by_caller[key] = by_caller.get(key, 0) + 1
    if by_caller:
        print("\n  AWS calls made by the Lambdas:")
        for (caller, service, action), n in sorted(by_caller.items()):
            print(f"    {caller:<22} {service}:{action} x{n}")

    if d["status"] == "SUCCEEDED":
        output = json.loads(d.get("output") or "{}")
        print(f"\nresult: {json.dumps(output, indent=2)}")
        if output.get("newInstanceId"):
            describe_new_instance(demo, output["newInstanceId"])
        src = demo.ec2.describe_instances(InstanceIds=[source["instance"]])["Reservations"][0]["Instances"][0]
        print(f"\nsource {source['instance']} is now {src['State']['Name']} in {src['Placement']['AvailabilityZone']}")
        return 0

    print(f"\nFAILED: {d.get('error')}")
    cause = d.get("cause") or ""
    try:
        cause_doc = json.loads(cause)
        cause = f"{cause_doc.get('errorType')}: {cause_doc.get('errorMessage')}"
    except ValueError:
        pass
    print(f"  cause: {cause}")
    if failure:
        print(f"  first failing state: {failure['state']} ({failure.get('error')})")
    rollback = next((r for r in rows if r["state"] == "Rollback"), None)
    if rollback:
        print(f"  rollback ran ({rollback['attempts']} attempt(s), errors: {rollback['errors'] or 'none'})")
    print(f"  Lambda logs: {world.get('logs')}/<function>.log; world log: {world.get('logs')}/world.log")
    return 1


if __name__ == "__main__":
    sys.exit(main())
