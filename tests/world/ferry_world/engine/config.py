"""World settings that rules read and the control endpoint changes at run time."""
import threading

_lock = threading.Lock()

DEFAULTS = {
    # Simulated minutes an image (CreateImage / CopyImage) stays pending.
    "imagePendingMinutes": 12,
    "copyPendingMinutes": 20,
    # Image ids or names (glob) that become `failed` instead of `available`,
    # with this StateReason message.
    "failImages": [],
    "failImageReason": "Client.InternalError: Snapshot creation failed (simulated)",
    # Simulated seconds an instance spends pending / stopping / shutting-down,
    # and until its status checks are ok after running.
    "instancePendingSeconds": 45,
    "instanceStoppingSeconds": 60,
    "statusInitializingSeconds": 180,
    # Simulated seconds a terminated instance spends shutting-down.
    "instanceShuttingDownSeconds": 30,
    # Simulated seconds the snapshots of a just-deregistered image stay in use
    # (DeleteSnapshot: InvalidSnapshot.InUse). See rules/create_image.py.
    "snapshotInUseAfterDeregisterSeconds": 120,
    # Instance types offered per AZ: {"us-east-1c": ["t3.micro", ...]}. An AZ not
    # listed offers every type moto knows.
    "instanceTypeOfferings": {},
    # --- the sharing rules (rules/block_public_access.py, run_instances.py, copy_image.py) ---
    # Image block public access of an account/Region that never set it (AWS: on by
    # default for new accounts): "block-new-sharing" or "unblocked".
    "imageBlockPublicAccessDefault": "block-new-sharing",
    # RunInstances with an AMI id that exists nowhere -> InvalidAMIID.NotFound (AWS);
    # false = stock moto's leniency, unless moto's own MOTO_ENABLE_AMI_VALIDATION is on
    # (AMIs of other accounts are always checked; malformed ids are always
    # InvalidAMIID.Malformed). See rules/run_instances.py unknown_image_ids_are_refused.
    "rejectUnknownImageIds": True,
    # KMS operations an account must be allowed (key policy or grant) on the key of
    # each encrypted snapshot to launch from / copy an AMI, and on the copy's key.
    "kmsLaunchOperations": ["Decrypt", "CreateGrant"],
    # ... and the caller of StartInstances on the key of each encrypted volume of the
    # instance (AWS knowledge center "kms-iam-ec2-permission": kms:CreateGrant for EC2;
    # EBS UG "Requirements for Amazon EBS encryption": kms:Decrypt). Else the instance
    # goes pending -> stopped with Client.InternalError. See rules/run_instances.py.
    "kmsStartOperations": ["CreateGrant", "Decrypt"],
    # --- eventual consistency (rules/consistency.py) ---
    # Simulated seconds after a create call (CreateImage, CopyImage, RegisterImage,
    # RunInstances, CreateSnapshot, CopySnapshot) during which the ids it returned are
    # not found by the creating account's Describe* by id (InvalidAMIID.NotFound,
    # InvalidInstanceID.NotFound, InvalidSnapshot.NotFound) nor listed by filters.
    # EC2 developer guide "Eventual consistency in the Amazon EC2 API" gives no figure
    # ("starting with a couple of seconds of wait time"); 0 = consistent at once.
    "describeNotFoundAfterCreateSeconds": 5,
    # Simulated seconds before a new KMS grant takes effect for its grantee, unless the
    # request passes the grant's token (KMS developer guide "Using a grant token": "It
    # typically takes less than a few seconds ... in some cases it can take several
    # minutes"). EC2 using a key on the caller's behalf cannot pass a token: it waits.
    "kmsGrantDelaySeconds": 5,
    # Simulated seconds before a launch permission / createVolumePermission just added
    # reaches the accounts it names (EC2 "Eventual consistency": no figure given).
    "sharePropagationSeconds": 5,
    "kmsCopySourceOperations": ["Decrypt", "CreateGrant", "ReEncryptFrom"],
    "kmsCopyDestinationOperations": ["GenerateDataKeyWithoutPlaintext", "CreateGrant", "ReEncryptTo"],
    # --- EC2 events on EventBridge (rules/ec2_events.py) ---
    # EC2 AMI State Change / EC2 Instance State-change Notification events are "generated
    # on a best effort basis" (EC2 UG): true = every one is dropped (recorded as dropped,
    # GET /ferry-world/events/invocations "ec2Events"), as if EventBridge never got it.
    "ec2EventsDropped": False,
    # Simulated seconds between a state change and its event's delivery to the rules of
    # the default bus (AWS gives no figure; usually seconds).
    "ec2EventDelaySeconds": 0,
    # --- Step Functions (engine/sfn.py) ---
    # Largest payload (state input after Parameters, state output, Task/connector result),
    # in bytes of its UTF-8 JSON text, before States.DataLimitExceeded. AWS "Step Functions
    # service quotas": 256 KiB = 262,144 bytes, a hard quota. Tests may lower it.
    "sfnPayloadLimitBytes": 262144,
}

_settings = {k: (v.copy() if isinstance(v, (list, dict)) else v) for k, v in DEFAULTS.items()}


def get(key):
    with _lock:
        return _settings[key]


def update(values: dict) -> dict:
    with _lock:
        for k, v in values.items():
            if k not in DEFAULTS:
                raise KeyError(f"unknown world setting {k!r}")
            _settings[k] = v
        return dict(_settings)


def reset() -> None:
    with _lock:
        _settings.clear()
        _settings.update({k: (v.copy() if isinstance(v, (list, dict)) else v) for k, v in DEFAULTS.items()})


def snapshot() -> dict:
    with _lock:
        return dict(_settings)
