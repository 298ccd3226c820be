//! The cost step: gathers what the tenant uses ([`crate::cost::Usage`]) from the providers,
//! the cache and the plan, and prices it ([`crate::cost::estimate`], pure). Runs at most once
//! per tenant per `--cost-refresh-seconds`; between refreshes the status keeps the estimate it
//! has. Never fails the reconcile: a figure that cannot be read degrades to what the plan
//! says (or to 0), and its line says so.
//!
//! The pool's figures (the pool cluster's capacity, the pool tables' storage), shared by every
//! pooled tenant, are read once per refresh period for all of them ([`PoolReadings`]).

use std::time::{Duration, Instant};

use kube::ResourceExt as _;

use super::{
    Context,
    apply::quantity,
    build::{WORKLOAD_NAME, pool::POOL_NAME},
    tenant_data::{TenantData, database_request, tables_request},
    validate::ValidatedTenant,
};
use crate::{
    cost::{
        self, Component, Source, Usage,
        model::{AuroraUsage, ComputeUsage, DynamoUsage, LoadBalancerShare, Throughput},
    },
    crd::{CostStatus, Storefront, Tier},
    providers::{Capacity, ProviderError, TableStorage},
};

/// The pool's shared figures, read once per refresh period.
#[derive(Debug, Clone, Default)]
pub struct PoolReadings {
    capacity: Option<(Instant, Result<Option<Capacity>, String>)>,
    storage: Option<(Instant, Result<TableStorage, String>)>,
}

/// The estimate to record for this reconcile, or `None` to keep the one in the status.
pub(super) async fn refresh(
    ctx: &Context,
    storefront: &Storefront,
    tenant: &ValidatedTenant,
    data: &TenantData,
    ingress_group: Option<&str>,
    namespace: &str,
) -> Option<CostStatus> {
    let provisional = [&data.database, &data.tables, &data.queue]
        .iter()
        .any(|part| part.required_for_ready && !part.ready);
    let settings = &ctx.config.cost;
    if settings.refresh.is_zero() {
        return None;
    }
    let now = k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or_default();
    let remembered = ctx
        .written
        .lock()
        .get(&storefront.name_any())
        .and_then(|(_, status)| status.cost.clone());
    let previous = remembered.or_else(|| storefront.status.as_ref()?.cost.clone());
    if !cost::due(
        previous.as_ref(),
        &settings.prices,
        now,
        settings.refresh,
        provisional,
    ) {
        return None;
    }
    let usage = gather(ctx, storefront, tenant, data, ingress_group, namespace).await;
    let estimate = cost::estimate(&usage, &settings.prices);
    Some(cost::to_status(
        &estimate,
        &settings.prices,
        &now.to_string(),
        provisional,
    ))
}

/// Storefronts of the cache (this one included) for which `pick` holds.
fn tenants_where(
    ctx: &Context,
    storefront: &Storefront,
    pick: impl Fn(&Storefront) -> bool,
) -> u32 {
    let uid = storefront.uid();
    let others = ctx
        .cache
        .storefronts
        .state()
        .iter()
        .filter(|sf| sf.metadata.deletion_timestamp.is_none() && sf.uid() != uid)
        .filter(|sf| pick(sf))
        .count();
    u32::try_from(others).unwrap_or(u32::MAX).saturating_add(1)
}

async fn gather(
    ctx: &Context,
    storefront: &Storefront,
    tenant: &ValidatedTenant,
    data: &TenantData,
    ingress_group: Option<&str>,
    namespace: &str,
) -> Usage {
    let plan = &tenant.plan;
    let expected = plan.expected_usage.clone().unwrap_or_default();
    let pooled_tenants = match tenant.tier {
        Tier::Pooled => tenants_where(ctx, storefront, |sf| {
            sf.status.as_ref().and_then(|s| s.tier) == Some(Tier::Pooled)
        }),
        Tier::Dedicated => 1,
    };
    let mut usage = Usage::default();

    // Aurora: the cluster's configured capacity as RDS reports it, else the plan's (or the
    // pool's configured) minimum.
    if let Some(provider) = &ctx.providers.database {
        if provider.kind() == "aurora" {
            let declared = match tenant.tier {
                Tier::Dedicated => storefront
                    .spec
                    .database
                    .min_capacity
                    .unwrap_or(plan.database.min_capacity),
                Tier::Pooled => ctx.config.data.aurora_pool_min_acu,
            };
            // Not while the provider is still making it (or cannot reach AWS): the reading
            // could not exist yet, and an outage would cost every reconcile a second timeout.
            let reading = match database_request(storefront, tenant.tier, Some(plan)) {
                Ok(_) if !data.database.ready => Err(format!(
                    "not read: the database is not ready ({})",
                    data.database.reason
                )),
                Ok(request) => match tenant.tier {
                    Tier::Dedicated => provider
                        .capacity(&request)
                        .await
                        .map_err(|e| format!("DescribeDBClusters failed: {e}")),
                    Tier::Pooled => pool_capacity(ctx, &request).await,
                },
                Err(error) => Err(error.to_string()),
            };
            let (acu, source) = match reading {
                Ok(Some(capacity)) => (capacity.min_acu, Source::Observed),
                Ok(None) => {
                    usage.notes.push((
                        Component::AuroraCapacity,
                        "no cluster found yet: the configured minimum".into(),
                    ));
                    (declared, Source::Declared)
                }
                Err(error) => {
                    usage.notes.push((
                        Component::AuroraCapacity,
                        format!("{}; so the configured minimum", clip(&error)),
                    ));
                    (declared, Source::Declared)
                }
            };
            if source == Source::Observed {
                usage.notes.push((
                    Component::AuroraCapacity,
                    "the cluster's minimum capacity from DescribeDBClusters: its idle floor".into(),
                ));
            }
            usage.aurora = Some(AuroraUsage {
                acu,
                acu_source: source,
                sharing: pooled_tenants,
                storage_gb: expected.database_storage_gb,
                io_millions: expected.database_io_millions,
            });
        } else {
            for component in [
                Component::AuroraCapacity,
                Component::AuroraStorage,
                Component::AuroraIo,
            ] {
                usage.notes.push((
                    component,
                    format!(
                        "database on a {} server the operator does not price",
                        provider.kind()
                    ),
                ));
            }
        }
    }

    // DynamoDB: stored bytes from DescribeTable; requests as the plan expects them.
    if let Some(provider) = &ctx.providers.tables {
        let request = tables_request(storefront, tenant.tier, Some(plan));
        let reading = match tenant.tier {
            _ if !data.tables.ready => Err(format!(
                "not read: the tables are not ready ({})",
                data.tables.reason
            )),
            Tier::Dedicated => provider
                .stored(&request)
                .await
                .map_err(|e| format!("DescribeTable failed: {e}")),
            Tier::Pooled => pool_storage(ctx, &request).await,
        };
        let (bytes, source) = match reading {
            Ok(storage) => (storage.bytes as f64, Source::Observed),
            Err(error) => {
                usage.notes.push((Component::DynamodbStorage, clip(&error)));
                (0.0, Source::Unavailable)
            }
        };
        let throughput = match (tenant.tier, storefront.spec.catalog.on_demand) {
            (Tier::Dedicated, false) => Throughput::Provisioned {
                rcu: plan.tables.read_capacity_units as f64,
                wcu: plan.tables.write_capacity_units as f64,
                tables: 3,
            },
            _ => Throughput::OnDemand {
                read_millions: expected.dynamodb_read_millions,
                write_millions: expected.dynamodb_write_millions,
            },
        };
        usage.dynamodb = Some(DynamoUsage {
            throughput,
            storage_bytes: bytes,
            storage_source: source,
            storage_sharing: pooled_tenants,
        });
    }

    // The ALB of the tenant's ingress group, split over the Storefronts in the group.
    if let Some(group) = ingress_group {
        let in_group = tenants_where(ctx, storefront, |sf| {
            sf.status.as_ref().and_then(|s| s.ingress_group.as_deref()) == Some(group)
        });
        usage.load_balancer = Some(LoadBalancerShare {
            tenants_in_group: in_group,
        });
    }

    // Pods: the tenant's own Deployment, or the pool's split over the pooled tenants, at
    // their CPU and memory requests.
    let (deployment_namespace, deployment, resources, floor) = match tenant.tier {
        Tier::Dedicated => (
            namespace,
            WORKLOAD_NAME,
            plan.resources.requests.clone(),
            plan.replicas.min,
        ),
        Tier::Pooled => (
            ctx.config.pool_namespace.as_str(),
            POOL_NAME,
            super::build::pool::pool_resources().requests,
            ctx.config.pool_min_replicas,
        ),
    };
    let observed = ctx
        .cache
        .deployments
        .get(deployment_namespace, deployment)
        .and_then(|d| d.status.as_ref()?.replicas);
    let (replicas, replicas_source) = match observed {
        Some(replicas) => (f64::from(replicas), Source::Observed),
        None => {
            usage.notes.push((
                Component::Compute,
                "no replicas observed yet: the minimum".into(),
            ));
            (f64::from(floor), Source::Declared)
        }
    };
    usage.compute = Some(ComputeUsage {
        replicas,
        replicas_source,
        vcpu_per_replica: quantity(&resources.cpu).unwrap_or(0.0),
        gib_per_replica: quantity(&resources.memory).unwrap_or(0.0) / f64::from(1u32 << 30),
        sharing: pooled_tenants,
    });

    if ctx.providers.queues.is_some() {
        usage.queue_request_millions = Some(expected.sqs_request_millions);
    }
    usage
}

/// The pool cluster's capacity, read at most once per refresh period for every pooled tenant.
async fn pool_capacity(
    ctx: &Context,
    request: &crate::providers::TenantDatabase,
) -> Result<Option<Capacity>, String> {
    let refresh = ctx.config.cost.refresh;
    if let Some((at, reading)) = ctx.pool_readings.lock().capacity.clone()
        && fresh(at, refresh)
    {
        return reading;
    }
    let Some(provider) = &ctx.providers.database else {
        return Ok(None);
    };
    let reading = provider
        .capacity(request)
        .await
        .map_err(|e: ProviderError| format!("DescribeDBClusters failed: {e}"));
    ctx.pool_readings.lock().capacity = Some((Instant::now(), reading.clone()));
    reading
}

/// The pool tables' storage, read at most once per refresh period for every pooled tenant.
async fn pool_storage(
    ctx: &Context,
    request: &crate::providers::TenantTables,
) -> Result<TableStorage, String> {
    let refresh = ctx.config.cost.refresh;
    if let Some((at, reading)) = ctx.pool_readings.lock().storage.clone()
        && fresh(at, refresh)
    {
        return reading;
    }
    let Some(provider) = &ctx.providers.tables else {
        return Ok(TableStorage::default());
    };
    let reading = provider
        .stored(request)
        .await
        .map_err(|e| format!("DescribeTable failed: {e}"));
    ctx.pool_readings.lock().storage = Some((Instant::now(), reading.clone()));
    reading
}

fn fresh(at: Instant, refresh: Duration) -> bool {
    at.elapsed() < refresh
}

/// An error message short enough for a basis.
fn clip(text: &str) -> String {
    const MAX: usize = 160;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(MAX - 1).collect();
        s.push('…');
        s
    }
}
