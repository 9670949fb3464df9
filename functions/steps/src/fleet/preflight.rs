//! State `Preflight` of migrate-fleet: the request checked (every migration as
//! migrate-instance checks it, no source twice), a selector's instances found
//! (DescribeInstances: every tag, the Availability Zone, running or stopped) and each
//! given its target subnet (DescribeSubnets), then the waves. Read only.

use crate::aws::{aws_error, Clients};
use aws_sdk_ec2::types::Filter;
use ferry_core::fleet::plan::{listed_migrations, FleetPreflightInput, FleetState};
use ferry_core::fleet::request::{
    assign_subnets, migration_for, FleetRequest, InstanceFact, Source, SubnetFact,
};
use ferry_core::FerryError;

pub async fn handle(
    clients: Clients,
    input: FleetPreflightInput,
) -> Result<FleetState, FerryError> {
    let request = FleetRequest::parse(&input.request)?;
    if let Some(migrations) = listed_migrations(&request) {
        return FleetState::new(&request, migrations, Vec::new(), &input.context);
    }
    let Source::Selector {
        selector,
        target_subnet_ids,
        options,
    } = &request.source
    else {
        unreachable!("a request is a list of migrations or a selector")
    };
    let mut describe = clients.ec2.describe_instances().filters(
        Filter::builder()
            .name("instance-state-name")
            .values("running")
            .values("stopped")
            .build(),
    );
    for (key, value) in &selector.tags {
        describe = describe.filters(
            Filter::builder()
                .name(format!("tag:{key}"))
                .values(value)
                .build(),
        );
    }
    if let Some(az) = &selector.availability_zone {
        describe = describe.filters(
            Filter::builder()
                .name("availability-zone")
                .values(az)
                .build(),
        );
    }
    let mut pages = describe.max_results(1000).into_paginator().send();
    let mut instances = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("DescribeInstances", e))?;
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            instances.push(InstanceFact {
                instance_id: i.instance_id().unwrap_or_default().to_string(),
                availability_zone: i
                    .placement()
                    .and_then(|p| p.availability_zone())
                    .unwrap_or_default()
                    .to_string(),
                vpc_id: i.vpc_id().unwrap_or_default().to_string(),
            });
        }
    }
    // One call per target subnet (a handful): an unknown id fails a call naming several,
    // and assign_subnets names the one that does not exist.
    let mut subnets: Vec<SubnetFact> = Vec::new();
    for id in target_subnet_ids {
        match clients.ec2.describe_subnets().subnet_ids(id).send().await {
            Ok(out) => subnets.extend(out.subnets().iter().map(|s| SubnetFact {
                subnet_id: s.subnet_id().unwrap_or_default().to_string(),
                availability_zone: s.availability_zone().unwrap_or_default().to_string(),
                vpc_id: s.vpc_id().unwrap_or_default().to_string(),
            })),
            Err(e) if crate::aws::error_code(&e) == Some("InvalidSubnetID.NotFound") => {}
            Err(e) => return Err(aws_error("DescribeSubnets", e)),
        }
    }
    let (assigned, unassigned) = assign_subnets(&instances, target_subnet_ids, &subnets)?;
    let migrations = assigned
        .iter()
        .map(|(instance, subnet)| migration_for(instance, subnet, options, request.dry_run))
        .collect();
    FleetState::new(&request, migrations, unassigned, &input.context)
}
