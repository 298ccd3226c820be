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
}

impl Invalid {
    /// The condition reason for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Invalid::PlanNotFound(_) => "PlanNotFound",
            Invalid::TierChange { .. } => "TierChangeUnsupported",
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
