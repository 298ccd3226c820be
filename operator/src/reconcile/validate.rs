//! Validate: what the API server's schema cannot check, because it spans objects. A failure
//! here is the user's to fix; it becomes a `Ready=False` condition, never a retry storm.

use kube::ResourceExt as _;

use crate::crd::{Hostname, Storefront, StorefrontPlan, StorefrontPlanSpec, Tier};

/// A Storefront whose cross-object rules hold.
#[derive(Debug, Clone)]
pub struct ValidatedTenant {
    pub name: String,
    pub tier: Tier,
    pub plan_name: String,
    pub plan: StorefrontPlanSpec,
    /// Domains this tenant may route: its own minus those held by older Storefronts.
    pub routed_domains: Vec<Hostname>,
    /// Domains held by another tenant, with that tenant's name.
    pub conflicts: Vec<(Hostname, String)>,
}

/// Why a Storefront cannot be reconciled as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error(
        "StorefrontPlan `{0}` does not exist; create it or set spec.plan to an existing plan (`kubectl get sfplan`)"
    )]
    PlanNotFound(String),
    #[error(
        "the Storefront runs on the {current} tier but plan `{plan}` is {requested}; moving between tiers moves data and is not supported: choose a {current} plan"
    )]
    TierChange {
        plan: String,
        current: Tier,
        requested: Tier,
    },
    #[error(
        "spec.{field} adopts a resource of the tenant's own, which only the dedicated tier has; plan `{plan}` is pooled: remove spec.{field} or choose a dedicated plan"
    )]
    DedicatedOnlyField { field: &'static str, plan: String },
    #[error(
        "spec.payments.secretRef.namespace is `{namespace}`, not the tenant's own namespace `{own}`; leave it out (the tenant's own namespace) or copy the Secret into `{own}`"
    )]
    PaymentsSecretNamespace { namespace: String, own: String },
}

impl Invalid {
    /// The condition reason for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Invalid::PlanNotFound(_) => "PlanNotFound",
            Invalid::TierChange { .. } => "TierChangeUnsupported",
            Invalid::DedicatedOnlyField { .. } => "DedicatedOnlyField",
            Invalid::PaymentsSecretNamespace { .. } => "PaymentsSecretNamespaceRefused",
        }
    }
}

/// Checks `storefront` against its plan and the other tenants. `others` may include
/// `storefront` itself; it is skipped.
pub fn validate<'a>(
    storefront: &Storefront,
    plan: Option<&StorefrontPlan>,
    others: impl IntoIterator<Item = &'a Storefront>,
) -> Result<ValidatedTenant, Invalid> {
    let plan_name = storefront.spec.plan.clone();
    let plan = plan.ok_or_else(|| Invalid::PlanNotFound(plan_name.clone()))?;
    if let Some(current) = storefront.status.as_ref().and_then(|s| s.tier)
        && current != plan.spec.tier
    {
        return Err(Invalid::TierChange {
            plan: plan_name,
            current,
            requested: plan.spec.tier,
        });
    }
    if plan.spec.tier == Tier::Pooled {
        let spec = &storefront.spec;
        let field = if spec.database.existing_cluster_identifier.is_some() {
            Some("database.existingClusterIdentifier")
        } else if spec.catalog.existing_tables.is_some() {
            Some("catalog.existingTables")
        } else {
            None
        };
        if let Some(field) = field {
            return Err(Invalid::DedicatedOnlyField {
                field,
                plan: plan_name,
            });
        }
    }
    // The API server refuses this too; Storefronts stored before that rule existed are
    // caught here.
    let own = format!("store-{}", storefront.name_any());
    if let Some(namespace) = storefront
        .spec
        .payments
        .secret_ref
        .as_ref()
        .and_then(|r| r.namespace.clone())
        && namespace != own
    {
        return Err(Invalid::PaymentsSecretNamespace { namespace, own });
    }
    let me = claim_order(storefront);
    let older: Vec<&Storefront> = others
        .into_iter()
        .filter(|other| {
            other.name_any() != storefront.name_any() && other.metadata.deletion_timestamp.is_none()
        })
        .filter(|other| claim_order(other) < me)
        .collect();
    let mut routed_domains = Vec::new();
    let mut conflicts = Vec::new();
    for domain in &storefront.spec.domains {
        match older
            .iter()
            .find(|other| other.spec.domains.contains(domain))
        {
            Some(holder) => conflicts.push((domain.clone(), holder.name_any())),
            None => routed_domains.push(domain.clone()),
        }
    }
    Ok(ValidatedTenant {
        name: storefront.name_any(),
        tier: plan.spec.tier,
        plan_name,
        plan: plan.spec.clone(),
        routed_domains,
        conflicts,
    })
}

/// The Storefront that gets `domain` when `releasing` lets go of it: the oldest other live
/// Storefront listing it.
pub fn next_holder<'a>(
    domain: &Hostname,
    releasing: &Storefront,
    others: impl IntoIterator<Item = &'a Storefront>,
) -> Option<&'a Storefront> {
    others
        .into_iter()
        .filter(|other| {
            other.name_any() != releasing.name_any()
                && other.metadata.deletion_timestamp.is_none()
                && other.spec.domains.contains(domain)
        })
        .min_by_key(|other| claim_order(other))
}

/// Older Storefronts hold a hostname first; the name breaks ties in the same second.
fn claim_order(storefront: &Storefront) -> (Option<String>, String) {
    (
        storefront
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string()),
        storefront.name_any(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::build::tests::{sample_plan, sample_storefront};

    fn created_at(mut storefront: Storefront, at: &str) -> Storefront {
        storefront.metadata.creation_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at.parse().expect("a timestamp")),
        );
        storefront
    }

    #[test]
    fn a_missing_plan_is_named() {
        let err = validate(&sample_storefront("acme", "premium"), None, []).expect_err("no plan");
        assert_eq!(err, Invalid::PlanNotFound("premium".into()));
        assert!(err.to_string().contains("kubectl get sfplan"));
    }

    #[test]
    fn the_later_tenant_loses_a_shared_hostname_and_learns_who_holds_it() {
        let plan = sample_plan("premium", Tier::Dedicated);
        let older = created_at(sample_storefront("acme", "premium"), "2026-01-01T00:00:00Z");
        let mut newer = created_at(
            sample_storefront("copycat", "premium"),
            "2026-02-01T00:00:00Z",
        );
        newer
            .spec
            .domains
            .push(Hostname("copycat.example.com".into()));
        newer.spec.domains[0] = older.spec.domains[0].clone();

        let validated = validate(&newer, Some(&plan), [&older, &newer]).expect("valid");
        assert_eq!(
            validated.conflicts,
            vec![(older.spec.domains[0].clone(), "acme".to_owned())]
        );
        assert_eq!(
            validated.routed_domains,
            vec![Hostname("copycat.example.com".into())]
        );

        let holder = validate(&older, Some(&plan), [&older, &newer]).expect("valid");
        assert!(holder.conflicts.is_empty());
    }

    #[test]
    fn adoption_on_a_pooled_plan_is_refused_naming_the_field() {
        let plan = sample_plan("basic", Tier::Pooled);
        let mut storefront = sample_storefront("acme", "basic");
        storefront.spec.catalog.existing_tables = Some(crate::crd::ExistingTables {
            catalog: Some("legacy-catalog".into()),
            ..Default::default()
        });
        let err = validate(&storefront, Some(&plan), []).expect_err("pooled adoption");
        assert_eq!(err.reason(), "DedicatedOnlyField");
        assert!(err.to_string().contains("spec.catalog.existingTables"));

        storefront.spec.catalog.existing_tables = None;
        storefront.spec.database.existing_cluster_identifier = Some("legacy".into());
        let err = validate(&storefront, Some(&plan), []).expect_err("pooled adoption");
        assert!(
            err.to_string()
                .contains("spec.database.existingClusterIdentifier")
        );
    }

    #[test]
    fn a_payments_secret_outside_the_tenant_namespace_is_refused() {
        let plan = sample_plan("premium", Tier::Dedicated);
        let mut storefront = sample_storefront("acme", "premium");
        let reference = |namespace: Option<&str>| crate::crd::SecretReference {
            namespace: namespace.map(str::to_owned),
            name: "stripe".into(),
        };
        storefront.spec.payments.secret_ref = Some(reference(Some("kube-system")));
        let err = validate(&storefront, Some(&plan), []).expect_err("foreign namespace");
        assert_eq!(err.reason(), "PaymentsSecretNamespaceRefused");
        storefront.spec.payments.secret_ref = Some(reference(Some("store-acme")));
        validate(&storefront, Some(&plan), []).expect("own namespace");
        storefront.spec.payments.secret_ref = Some(reference(None));
        validate(&storefront, Some(&plan), []).expect("left out");
    }

    #[test]
    fn the_oldest_waiting_storefront_is_the_next_holder() {
        let holder = created_at(sample_storefront("acme", "premium"), "2026-01-01T00:00:00Z");
        let domain = holder.spec.domains[0].clone();
        let waiting = |name: &str, at: &str| {
            let mut sf = created_at(sample_storefront(name, "premium"), at);
            sf.spec.domains = vec![domain.clone()];
            sf
        };
        let newer = waiting("newer", "2026-03-01T00:00:00Z");
        let older = waiting("older", "2026-02-01T00:00:00Z");
        let next = next_holder(&domain, &holder, [&holder, &newer, &older]).expect("a waiter");
        assert_eq!(next.name_any(), "older");
    }

    #[test]
    fn moving_between_tiers_is_refused() {
        let mut storefront = sample_storefront("acme", "basic");
        storefront.status = Some(crate::crd::StorefrontStatus {
            tier: Some(Tier::Dedicated),
            ..Default::default()
        });
        let err = validate(&storefront, Some(&sample_plan("basic", Tier::Pooled)), [])
            .expect_err("tier change");
        assert_eq!(err.reason(), "TierChangeUnsupported");
    }
}
