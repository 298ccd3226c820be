//! The tenant's identity: the data key every row and item of the tenant carries. It is the
//! Storefront's `metadata.uid`, which Kubernetes never hands to another object, so a new
//! Storefront with a deleted one's name starts with nothing of the old data. A tenant created
//! before identities existed keeps its name as its key (recorded in status on the first
//! reconcile, so nothing moves). See `docs/decisions/0016-tenant-identity.md`.
//!
//! Pure: the answer depends on the Storefront alone, so every reconcile, every replica and a
//! restarted operator all arrive at the same key, and it is written with every status.

use kube::ResourceExt as _;

use super::Error;
use crate::crd::Storefront;

/// How the tenant's data key was arrived at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `status.tenantId` already holds it.
    Recorded,
    /// A status written before identities (it has no `tenantId`): the name, as the data was
    /// keyed then.
    Legacy,
    /// A Storefront the operator has not written a status for yet: its UID.
    New,
}

/// The data key of one tenant and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantIdentity {
    pub tenant_id: String,
    pub origin: Origin,
}

/// The tenant's data key: the recorded one, else the name for a Storefront an older operator
/// already reconciled, else its UID.
pub fn resolve(storefront: &Storefront) -> Result<TenantIdentity, Error> {
    let status = storefront.status.as_ref();
    if let Some(recorded) = status.and_then(|s| s.tenant_id.clone()) {
        return Ok(TenantIdentity {
            tenant_id: recorded,
            origin: Origin::Recorded,
        });
    }
    // Every status this operator writes carries `tenantId`, so a status without one was
    // written by a version that keyed the data by name.
    let written_before =
        status.is_some_and(|s| s.phase.is_some() || s.observed_generation.is_some());
    if written_before {
        return Ok(TenantIdentity {
            tenant_id: storefront.name_any(),
            origin: Origin::Legacy,
        });
    }
    let uid = storefront.uid().ok_or(Error::MissingMetadata)?;
    Ok(TenantIdentity {
        tenant_id: uid,
        origin: Origin::New,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Phase, StorefrontSpec, StorefrontStatus};

    fn storefront(status: Option<StorefrontStatus>) -> Storefront {
        let spec: StorefrontSpec = serde_json::from_value(serde_json::json!({
            "displayName": "Hidden", "domains": ["hidden.example.com"], "plan": "basic"
        }))
        .expect("a valid spec");
        let mut sf = Storefront::new("hidden-shop", spec);
        sf.metadata.uid = Some("6f1c2a9e-0d3b-4c55-8e7f-1a2b3c4d5e6f".into());
        sf.status = status;
        sf
    }

    #[test]
    fn a_new_storefront_is_keyed_by_its_uid() {
        let id = resolve(&storefront(None)).unwrap();
        assert_eq!(id.tenant_id, "6f1c2a9e-0d3b-4c55-8e7f-1a2b3c4d5e6f");
        assert_eq!(id.origin, Origin::New);
        // A recreated Storefront of the same name has another UID, hence another key.
        let mut again = storefront(None);
        again.metadata.uid = Some("0a0a0a0a-1111-4222-8333-444455556666".into());
        assert_ne!(resolve(&again).unwrap().tenant_id, id.tenant_id);
    }

    #[test]
    fn a_tenant_reconciled_before_identities_keeps_its_name() {
        let old = StorefrontStatus {
            phase: Some(Phase::Ready),
            observed_generation: Some(3),
            ..Default::default()
        };
        let id = resolve(&storefront(Some(old))).unwrap();
        assert_eq!(
            (id.tenant_id.as_str(), id.origin),
            ("hidden-shop", Origin::Legacy)
        );
    }

    #[test]
    fn a_recorded_identity_wins() {
        let recorded = StorefrontStatus {
            phase: Some(Phase::Ready),
            tenant_id: Some("hidden-shop".into()),
            ..Default::default()
        };
        let id = resolve(&storefront(Some(recorded))).unwrap();
        assert_eq!(
            (id.tenant_id.as_str(), id.origin),
            ("hidden-shop", Origin::Recorded)
        );
    }

    #[test]
    fn an_empty_status_is_not_a_legacy_one() {
        let id = resolve(&storefront(Some(StorefrontStatus::default()))).unwrap();
        assert_eq!(id.origin, Origin::New);
    }

    #[test]
    fn a_storefront_without_uid_is_refused() {
        let mut sf = storefront(None);
        sf.metadata.uid = None;
        assert!(matches!(resolve(&sf), Err(Error::MissingMetadata)));
    }
}
