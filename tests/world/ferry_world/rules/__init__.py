"""The project's AWS rules on top of moto 5.2.5: ONE MODULE PER AWS AREA.

Each rule is a named function that cites the AWS document it follows and installs its
patches on moto (in process, before the server starts). Every patch wraps the
implementation it finds, so the ORDER below matters: rules that wrap a function another
rule also wraps (AmiBackend.copy_image, RunInstances, Ami.state, ...) compose in this
order, and some rules look at what is installed before them. `install_all()` is the one
entry the server uses; tests install single groups (`install("migration")`).

Modules (rules/):
  images.py               AMIs across accounts: visibility, launch permissions, describe/
                          modify/describe-attribute, product codes, RegisterImage from
                          snapshots, the stored block device mappings, malformed AMI ids
  snapshots.py            snapshots across accounts: visibility, createVolumePermission,
                          volumes restored from shared snapshots
  ebs_encryption.py       the account's default EBS key (aws/ebs), keys of snapshots
  kms.py                  KMS keys: lookup, AWS managed keys, key policy + grants = key use
  kms_api.py              the KMS API: cross-account use by ARN, authorization, grants,
                          well-formed key policies
  organizations.py        which organization / OUs an account is in
  block_public_access.py  image block public access
  copy_image.py           CopyImage across accounts (permissions, keys, tags, ClientToken)
  image_states.py         image/snapshot states on the simulated clock
  create_image.py         CreateImage, AMI names, snapshots in use, RegisterImage mappings
  instances.py            instance states on the clock, stop/termination protection
  instance_types.py       instance types offered per AZ
  run_instances.py        RunInstances: image, AZ, volumes, attributes, ClientToken, keys;
                          the volumes' keys at StartInstances
  placement_groups.py     placement groups: Create/Describe/DeletePlacementGroup(s), launch
                          into a group, a cluster group in one AZ only
  elastic_ips.py          Elastic IP reassociation
  consistency.py          eventual consistency: ids just created not found by Describe*
                          yet, KMS grants effective a while after CreateGrant (or with
                          their grant token)
  trust.py                STS AssumeRole: role trust policies
  iam.py                  IAM identity policies evaluated on every call a role makes
                          (moto's access-control hook), the authorizations each EC2
                          call needs, the calls Step Functions makes with a state
                          machine's role (Lambda Tasks, nested executions, the .sync
                          managed rule), and the least-privilege usage report
  events.py               EventBridge: events start Step Functions targets as the
                          target's role; another account's PutEvents follows the bus
                          policy
  ec2_events.py           EC2 AMI State Change / EC2 Instance State-change Notification
                          events on the default bus when image_states.py / instances.py
                          move a state on the clock (ec2EventsDropped,
                          ec2EventDelaySeconds); Lambda targets are events.py's
  scheduler.py            EventBridge Scheduler: a schedule fired on request (POST
                          /ferry-world/schedules/fire) invokes its Step Functions
                          target as its execution role, unless DISABLED (no patch on
                          moto: nothing to install)
  iam_policy.py           the IAM policy-language evaluator (statements, principals,
                          conditions) used by iam.py, kms.py and trust.py
  common.py, errors.py    shared helpers (backends, callers, clock); error codes/messages

"Rule N" in a docstring refers to the numbered rules of its group: the migration rules
(CreateImage ... Elastic IPs) and the sharing rules (1 visibility, 2 launch, 3 copy,
4 KMS key use, 5 encrypted never public, 6 aws/ebs never shared, 7 block public access,
8 product codes).
"""
from __future__ import annotations

import threading

from . import (
    block_public_access,
    common,
    consistency,
    copy_image,
    create_image,
    ebs_encryption,
    ec2_events,
    elastic_ips,
    events,
    iam,
    image_states,
    images,
    instance_types,
    instances,
    kms,
    kms_api,
    placement_groups,
    run_instances,
    snapshots,
    trust,
)

# Install order within each group (and ORDER across groups): do not reorder lightly.
GROUPS = {
    # Moving an instance to another AZ.
    "migration": [
        image_states.images_and_snapshots_settle_on_the_clock,
        create_image.create_image_captures_every_volume,
        create_image.ami_names_unique_and_snapshots_in_use,
        create_image.snapshots_stay_in_use_after_deregister,
        image_states.pending_images_refuse_attribute_changes,
        instances.instances_change_state_on_the_clock,
        instance_types.instance_type_offerings_per_az,
        run_instances.run_instances_honours_image_and_launch_parameters,
        run_instances.cpu_options_only_where_the_type_supports_them,  # after: checks first
        run_instances.run_instances_is_idempotent_with_a_client_token,  # after: its wrapper runs first
        run_instances.block_device_mappings_say_what_they_map,  # after run_instances_honours_...: wraps its check
        placement_groups.placement_groups_exist_and_cluster_groups_stay_in_one_az,  # after the RunInstances rules: checks first
        elastic_ips.elastic_ip_moves_with_allow_reassociation,
        # On moto's dispatch: sees every create/Describe* call whatever rule serves it,
        # so anywhere in the order; listed in both groups, installed once.
        consistency.describe_finds_new_ids_only_after_a_while,
    ],
    # Sharing and copying AMIs and snapshots across accounts, and the KMS keys under them.
    "sharing": [
        common.every_request_knows_its_caller,
        kms.aws_managed_keys_are_created_on_first_use,
        kms_api.key_policies_must_be_well_formed,  # before: PutKeyPolicy is authorized first
        kms_api.kms_calls_follow_key_policies_and_grants,
        consistency.new_kms_grants_take_effect_after_a_while,  # on moto's dispatch: reads GrantTokens, stamps new grants
        ebs_encryption.ebs_encrypts_under_the_default_key,
        snapshots.shared_snapshots_are_visible_and_restorable,
        images.shared_images_are_visible_and_only_their_owner_shares_them,
        copy_image.copy_image_across_accounts,
        images.image_mappings_show_encryption_and_tags_are_per_account,
        copy_image.copies_fail_and_read_every_copy_parameter,  # after image_states: wraps its Ami.state
        images.product_codes_and_images_from_snapshots,
        block_public_access.image_block_public_access,
        ebs_encryption.ebs_default_kms_key_calls,
        run_instances.launch_needs_a_visible_image_and_its_keys,
        run_instances.start_needs_use_of_the_volume_keys,  # after: shares its StateReason property
        consistency.describe_finds_new_ids_only_after_a_while,  # once, if "migration" did not install it
        consistency.shares_reach_grantees_after_a_while,  # wraps the backends' permission changes, after their rules
        images.malformed_ami_ids_are_refused,  # last: checks the id before any other rule
    ],
    # Cross-account trust.
    "trust": [
        trust.assume_role_follows_the_trust_policy,
    ],
    # IAM identity policies of the roles callers assume (key use asks iam.py from kms.py
    # whether or not this group is installed: a role with no policy may use a key only
    # by a key policy naming it or a grant).
    "iam": [
        iam.identity_policies_are_evaluated,
        # State machines' roles: CreateStateMachine/UpdateStateMachine of a .sync nested
        # execution need the EventBridge managed rule; the Tasks' own calls (Lambda
        # invoke, nested starts) are authorized by the engine (engine/sfn.py) through
        # iam.lambda_task_denial / iam.nested_start_denial.
        iam.sync_integrations_need_the_managed_rule,
    ],
    # EventBridge: Step Functions targets started as their role, Lambda targets as their
    # resource policy allows, bus policies across accounts (after "iam": delivery
    # evaluates the target role's identity policies), EC2's state-change events.
    "events": [
        events.put_events_start_step_functions_targets,
        events.put_events_to_another_accounts_bus_follows_its_policy,
        # EC2's state-change events on the default bus (the states move on the clock
        # only with the "migration" group; without it only DeregisterImage is announced).
        ec2_events.ec2_state_changes_are_sent_to_eventbridge,
    ],
}
ORDER = ("migration", "sharing", "trust", "iam", "events")

_lock = threading.RLock()


def install(*groups: str) -> None:
    """Install the named rule groups (once per process each), in the order given."""
    with _lock:
        for group in groups:
            if group in common.INSTALLED_GROUPS:
                continue
            for rule in GROUPS[group]:
                rule()
            common.INSTALLED_GROUPS.add(group)


def install_all() -> None:
    install(*ORDER)
