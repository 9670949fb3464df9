"""ferry's local AWS world: moto in server mode plus the project's own AWS rules, a
simulated clock, faults on demand and a Lambda runner for the real Rust binaries.

Layout (engine apart from the AWS rules):

    ferry_world/
      server.py, deploy.py   entry points: `python -m ferry_world.server` / `.deploy`
      engine/                the machinery: server, faults + control API, clock, config,
                             Step Functions on the clock, Lambda runner, deployer
      rules/                 the AWS rules, ONE MODULE PER AWS AREA (see rules/__init__.py
                             for the list and the order they are installed in):
                             images, snapshots, ebs_encryption, kms, kms_api,
                             organizations, block_public_access, copy_image, image_states,
                             create_image, instances, instance_types, run_instances,
                             elastic_ips, trust (STS AssumeRole), iam_policy (the IAM
                             policy-language evaluator: statements, principals,
                             conditions), common/errors (shared helpers)

IAM identity-policy evaluation, when it comes, goes in rules/iam.py, next to
rules/iam_policy.py whose evaluator it uses.
"""
