//! Rollback decisions: what to undo after a failed migration, from what is observed now.
//!
//! Safety rules: only what this execution created (found by its ferry tags) is removed;
//! a source this run stopped is started again; and if the source is gone, nothing is
//! removed, because the new instance or the image may be the only copy left.

use super::plan::MigrationPlan;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObservedInstance {
    pub instance_id: String,
    pub state: String,
    pub device_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObservedImage {
    pub image_id: String,
    pub state: String,
    pub snapshot_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RollbackObservation {
    /// The source's state now, `None` if it no longer exists.
    pub source_state: Option<String>,
    /// Its StateReason (code and message), e.g. why it stopped.
    #[serde(default)]
    pub source_state_reason: Option<String>,
    /// Instances tagged with this execution.
    pub new_instances: Vec<ObservedInstance>,
    /// Images tagged with this execution (or named as planned).
    pub images: Vec<ObservedImage>,
    /// Snapshots tagged with this execution.
    pub snapshot_ids: Vec<String>,
    /// For each of the plan's Elastic IPs: the instance it is associated with now.
    pub elastic_ip_owners: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum RollbackAction {
    #[serde(rename_all = "camelCase")]
    ReassociateElasticIp {
        allocation_id: String,
        instance_id: String,
    },
    #[serde(rename_all = "camelCase")]
    StartSource { instance_id: String },
    /// Clear termination/stop protection, set DeleteOnTermination on every volume, terminate.
    #[serde(rename_all = "camelCase")]
    TerminateInstance {
        instance_id: String,
        device_names: Vec<String>,
    },
    #[serde(rename_all = "camelCase")]
    DeregisterImage { image_id: String },
    #[serde(rename_all = "camelCase")]
    DeleteSnapshot { snapshot_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RollbackDecision {
    pub actions: Vec<RollbackAction>,
    /// What is left alone, and why.
    pub kept: Vec<String>,
    /// Something must settle first (the source still stopping or starting, the image
    /// still pending): the step does what it can, then asks to be retried.
    pub wait_for: Option<String>,
    /// The source could not be brought back: the step does everything else, then says so
    /// (`Ferry.SourceNotRestored`).
    pub source_not_restored: Option<String>,
}

/// Rule 21 (re:Post "kms-iam-ec2-permission"; EC2 UG "Troubleshoot instance launch
/// issues", "Instance terminates immediately"): an instance whose start could not use
/// its volumes' KMS key goes back to `stopped` with a `Client.InternalError` state reason.
pub fn start_failed(state: &str, state_reason: Option<&str>) -> bool {
    state == "stopped" && state_reason.is_some_and(|r| r.contains("Client.InternalError"))
}

fn is_gone(state: &str) -> bool {
    matches!(state, "terminated" | "shutting-down")
}

pub fn decide_rollback(plan: &MigrationPlan, seen: &RollbackObservation) -> RollbackDecision {
    let mut d = RollbackDecision::default();
    let source_id = &plan.source.instance_id;
    let source_alive = seen.source_state.as_deref().is_some_and(|s| !is_gone(s));
    if !source_alive {
        d.kept.push(format!(
            "the source {source_id} is {}: the new instance and the image are kept, they may be the only copy",
            seen.source_state.as_deref().unwrap_or("gone")
        ));
        return d;
    }
    let ours: Vec<&str> = seen
        .new_instances
        .iter()
        .map(|i| i.instance_id.as_str())
        .collect();

    if plan.request.move_elastic_ip {
        for (allocation_id, owner) in &seen.elastic_ip_owners {
            let moved = match owner {
                None => true,
                Some(owner) => ours.contains(&owner.as_str()),
            };
            if moved {
                d.actions.push(RollbackAction::ReassociateElasticIp {
                    allocation_id: allocation_id.clone(),
                    instance_id: source_id.clone(),
                });
            }
        }
    }

    if plan.source.state == "running" {
        let reason = seen.source_state_reason.as_deref();
        match seen.source_state.as_deref() {
            Some(state) if start_failed(state, reason) => {
                d.source_not_restored = Some(format!(
                    "the source {source_id} was started again but is stopped: {}. If its volumes are under a customer-managed KMS key, the rollback role needs kms:CreateGrant and kms:Decrypt on it through EC2; start it by hand",
                    reason.unwrap_or_default()
                ))
            }
            Some("stopped") => {
                d.actions.push(RollbackAction::StartSource {
                    instance_id: source_id.clone(),
                });
                // and see it running (or failing to) on the next attempt
                d.wait_for = Some(format!("the source {source_id} to be running again"));
            }
            Some("stopping") => {
                d.wait_for = Some(format!("the source {source_id} to finish stopping"))
            }
            // Started by an earlier attempt: wait until it runs (or fails to).
            Some("pending") => {
                d.wait_for = Some(format!("the source {source_id} to be running again"))
            }
            _ => {}
        }
    }

    for instance in &seen.new_instances {
        if !is_gone(&instance.state) {
            d.actions.push(RollbackAction::TerminateInstance {
                instance_id: instance.instance_id.clone(),
                device_names: instance.device_names.clone(),
            });
        }
    }

    if plan.request.keep_image {
        for image in &seen.images {
            d.kept.push(format!("image {} (keepImage)", image.image_id));
        }
        return d;
    }
    let mut snapshots: Vec<String> = seen.snapshot_ids.clone();
    let mut pending = false;
    for image in &seen.images {
        snapshots.extend(image.snapshot_ids.iter().cloned());
        match image.state.as_str() {
            "pending" => {
                pending = true;
                d.wait_for
                    .get_or_insert(format!("image {} to leave pending", image.image_id));
            }
            "deregistered" => {}
            _ => d.actions.push(RollbackAction::DeregisterImage {
                image_id: image.image_id.clone(),
            }),
        }
    }
    if !pending {
        snapshots.sort();
        snapshots.dedup();
        for snapshot_id in snapshots {
            d.actions
                .push(RollbackAction::DeleteSnapshot { snapshot_id });
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::fixtures::{plan_for, request, web_server};
    use serde_json::json;

    fn plan(extra: serde_json::Value) -> MigrationPlan {
        let mut s = web_server();
        s.disable_api_termination = false;
        plan_for(&request(extra), &s).unwrap()
    }

    fn seen() -> RollbackObservation {
        RollbackObservation {
            source_state: Some("running".into()),
            source_state_reason: None,
            new_instances: vec![ObservedInstance {
                instance_id: "i-0new0000000000001".into(),
                state: "running".into(),
                device_names: vec!["/dev/xvda".into(), "/dev/sdf".into()],
            }],
            images: vec![ObservedImage {
                image_id: "ami-0new0000000000001".into(),
                state: "available".into(),
                snapshot_ids: vec!["snap-1".into(), "snap-2".into()],
            }],
            snapshot_ids: vec!["snap-2".into()],
            elastic_ip_owners: vec![(
                "eipalloc-0123456789abcdef0".into(),
                Some("i-0new0000000000001".into()),
            )],
        }
    }

    #[test]
    fn undoes_everything_this_run_made() {
        let d = decide_rollback(&plan(json!({})), &seen());
        assert_eq!(
            d.actions,
            vec![
                RollbackAction::ReassociateElasticIp {
                    allocation_id: "eipalloc-0123456789abcdef0".into(),
                    instance_id: "i-0a1b2c3d4e5f60718".into()
                },
                RollbackAction::TerminateInstance {
                    instance_id: "i-0new0000000000001".into(),
                    device_names: vec!["/dev/xvda".into(), "/dev/sdf".into()]
                },
                RollbackAction::DeregisterImage {
                    image_id: "ami-0new0000000000001".into()
                },
                RollbackAction::DeleteSnapshot {
                    snapshot_id: "snap-1".into()
                },
                RollbackAction::DeleteSnapshot {
                    snapshot_id: "snap-2".into()
                },
            ]
        );
        assert_eq!(d.wait_for, None);
    }

    #[test]
    fn keeps_everything_when_the_source_is_gone() {
        let mut s = seen();
        s.source_state = Some("terminated".into());
        let d = decide_rollback(&plan(json!({"sourceAction": "terminate"})), &s);
        assert!(d.actions.is_empty());
        assert!(d.kept[0].contains("only copy"));
        s.source_state = None;
        assert!(decide_rollback(&plan(json!({})), &s).actions.is_empty());
    }

    #[test]
    fn starts_a_source_that_was_running_and_leaves_one_that_was_stopped() {
        let mut s = seen();
        s.source_state = Some("stopped".into());
        let d = decide_rollback(&plan(json!({"stopSource": true})), &s);
        assert!(d.actions.contains(&RollbackAction::StartSource {
            instance_id: "i-0a1b2c3d4e5f60718".into()
        }));
        assert!(
            d.wait_for.unwrap().contains("running again"),
            "and waits to see it run"
        );
        s.source_state = Some("stopping".into());
        assert!(decide_rollback(&plan(json!({})), &s)
            .wait_for
            .unwrap()
            .contains("stopping"));

        let mut stopped_source = web_server();
        stopped_source.state = "stopped".into();
        let p = plan_for(&request(json!({})), &stopped_source).unwrap();
        let mut s = seen();
        s.source_state = Some("stopped".into());
        assert!(!decide_rollback(&p, &s)
            .actions
            .iter()
            .any(|a| matches!(a, RollbackAction::StartSource { .. })));
    }

    /// Rule 21 / issue 2.1: a restarted source is waited for until it runs; one that went
    /// back to stopped with Client.InternalError is reported, not restarted forever, and
    /// everything else is still undone.
    #[test]
    fn waits_for_the_restarted_source_and_says_when_it_did_not_come_back() {
        let p = plan(json!({"stopSource": true}));
        let mut s = seen();
        s.source_state = Some("pending".into());
        let d = decide_rollback(&p, &s);
        assert!(d.wait_for.unwrap().contains("running again"));
        assert!(d.source_not_restored.is_none());

        s.source_state = Some("stopped".into());
        s.source_state_reason = Some("Client.InternalError: Client error on launch".into());
        let d = decide_rollback(&p, &s);
        assert!(!d
            .actions
            .iter()
            .any(|a| matches!(a, RollbackAction::StartSource { .. })));
        let why = d.source_not_restored.unwrap();
        assert!(
            why.contains("Client.InternalError") && why.contains("kms:CreateGrant"),
            "{why}"
        );
        assert!(
            d.actions
                .iter()
                .any(|a| matches!(a, RollbackAction::TerminateInstance { .. })),
            "the new instance still goes"
        );
        // stopped for another reason (ferry stopped it): start it
        s.source_state_reason =
            Some("Client.UserInitiatedShutdown: User initiated shutdown".into());
        assert!(decide_rollback(&p, &s)
            .actions
            .iter()
            .any(|a| matches!(a, RollbackAction::StartSource { .. })));
    }

    #[test]
    fn leaves_an_elastic_ip_someone_else_took() {
        let mut s = seen();
        s.elastic_ip_owners = vec![(
            "eipalloc-0123456789abcdef0".into(),
            Some("i-0someoneelse00001".into()),
        )];
        let d = decide_rollback(&plan(json!({})), &s);
        assert!(!d
            .actions
            .iter()
            .any(|a| matches!(a, RollbackAction::ReassociateElasticIp { .. })));
        s.elastic_ip_owners = vec![(
            "eipalloc-0123456789abcdef0".into(),
            Some("i-0a1b2c3d4e5f60718".into()),
        )];
        assert!(!decide_rollback(&plan(json!({})), &s)
            .actions
            .iter()
            .any(|a| matches!(a, RollbackAction::ReassociateElasticIp { .. })));
    }

    #[test]
    fn keep_image_and_pending_image() {
        let d = decide_rollback(&plan(json!({"keepImage": true})), &seen());
        assert!(!d.actions.iter().any(|a| matches!(
            a,
            RollbackAction::DeregisterImage { .. } | RollbackAction::DeleteSnapshot { .. }
        )));
        let mut s = seen();
        s.images[0].state = "pending".into();
        let d = decide_rollback(&plan(json!({})), &s);
        assert!(d.wait_for.unwrap().contains("pending"));
        assert!(!d
            .actions
            .iter()
            .any(|a| matches!(a, RollbackAction::DeleteSnapshot { .. })));
        assert!(d
            .actions
            .iter()
            .any(|a| matches!(a, RollbackAction::TerminateInstance { .. })));
    }

    #[test]
    fn terminated_instances_are_not_terminated_again() {
        let mut s = seen();
        s.new_instances[0].state = "terminated".into();
        let d = decide_rollback(&plan(json!({})), &s);
        assert!(!d
            .actions
            .iter()
            .any(|a| matches!(a, RollbackAction::TerminateInstance { .. })));
    }
}
