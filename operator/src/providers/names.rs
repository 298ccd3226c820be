//! Deterministic names for everything the providers create, derived from the tenant (the
//! `Storefront`'s name). Idempotency rests on these: a restarted operator finds what it made
//! by name, so the functions must never change their output for an existing tenant.
//!
//! A name that had to be altered to be valid (characters replaced, shortened) gets an 8-hex
//! suffix from the SHA-256 of the unaltered name, so two tenants never map to one name.

use sha2::{Digest as _, Sha256};

/// The default prefix of every name.
pub const DEFAULT_PREFIX: &str = "emporium";
/// RDS identifiers (clusters, instances, snapshots) and PostgreSQL identifiers are at most 63.
pub const MAX_IDENTIFIER_LEN: usize = 63;
const MAX_TABLE_NAME_LEN: usize = 255;
const HASH_LEN: usize = 8;

/// The dedicated Aurora cluster of `tenant`: `<prefix>-<tenant>`.
pub fn cluster_identifier(prefix: &str, tenant: &str) -> String {
    rds_identifier(&format!("{prefix}-{tenant}"))
}

/// The writer instance of a cluster: `<cluster>-writer`.
pub fn writer_instance_identifier(cluster: &str) -> String {
    rds_identifier(&format!("{cluster}-writer"))
}

/// The final snapshot taken before deleting a cluster: `<cluster>-final`.
pub fn final_snapshot_identifier(cluster: &str) -> String {
    rds_identifier(&format!("{cluster}-final"))
}

/// The DB subnet group name is used as given by the operator's configuration, but RDS stores
/// it lowercased; compare with this.
pub fn subnet_group_name(configured: &str) -> String {
    configured.to_ascii_lowercase()
}

/// Makes `raw` a valid RDS identifier: 1–63 letters, digits and hyphens, starting with a
/// letter, not ending with a hyphen, no two consecutive hyphens, lowercase.
pub fn rds_identifier(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_end_matches('-').to_owned();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "x-");
    }
    if out == raw && out.len() <= MAX_IDENTIFIER_LEN {
        return out;
    }
    with_hash_suffix(&out, raw, MAX_IDENTIFIER_LEN)
}

/// The part of a tenant's data key that names what is its alone and must never pass to a new
/// Storefront of the same name (its login role, its order-event queue): the first 8 letters and
/// digits of `tenant_id`. `None` for a tenant keyed by its name (created before identities).
pub fn identity_key(tenant: &str, tenant_id: &str) -> Option<String> {
    let key: String = tenant_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    (tenant_id != tenant && !key.is_empty()).then_some(key)
}

/// A PostgreSQL database or role name for `tenant` (used double-quoted, so `-` and `.` are
/// fine): `<prefix>-<tenant>`, shortened with a hash past 63 bytes.
pub fn postgres_identifier(prefix: &str, tenant: &str) -> String {
    let raw = format!("{prefix}-{tenant}");
    if raw.len() <= MAX_IDENTIFIER_LEN && raw.is_ascii() {
        raw
    } else {
        let ascii: String = raw
            .chars()
            .map(|c| if c.is_ascii() { c } else { '-' })
            .collect();
        with_hash_suffix(&ascii, &raw, MAX_IDENTIFIER_LEN)
    }
}

/// The shared pool's PostgreSQL database and role. The underscore cannot occur in a
/// Kubernetes name, so no tenant's [`postgres_identifier`] can collide with it.
pub fn postgres_pool_identifier(prefix: &str) -> String {
    format!("{prefix}_pool")
}

/// A dedicated tenant's DynamoDB table: `<prefix>-<tenant>-<kind>`.
pub fn table_name(prefix: &str, tenant: &str, kind: &str) -> String {
    let raw = format!("{prefix}-{tenant}-{kind}");
    let valid: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if valid == raw && raw.len() <= MAX_TABLE_NAME_LEN {
        raw
    } else {
        // Keep the kind readable at the end.
        let head = with_hash_suffix(
            &format!("{prefix}-{tenant}"),
            &raw,
            MAX_TABLE_NAME_LEN - kind.len() - 1,
        );
        format!("{head}-{kind}")
    }
}

/// A shared pool table: `<prefix>_pool-<kind>` (the underscore keeps it apart from every
/// tenant's [`table_name`]).
pub fn pool_table_name(prefix: &str, kind: &str) -> String {
    format!("{prefix}_pool-{kind}")
}

/// The on-demand backup taken before deleting a table: `<table>-final`.
pub fn final_backup_name(table: &str) -> String {
    let raw = format!("{table}-final");
    if raw.len() <= MAX_TABLE_NAME_LEN {
        raw
    } else {
        with_hash_suffix(table, &raw, MAX_TABLE_NAME_LEN - 6) + "-final"
    }
}

fn with_hash_suffix(cleaned: &str, raw: &str, max: usize) -> String {
    let hash = Sha256::digest(raw.as_bytes());
    let hex: String = hash
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    let keep = max - HASH_LEN - 1;
    let mut head: String = cleaned.chars().take(keep).collect();
    while head.ends_with('-') {
        head.pop();
    }
    format!("{head}-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_valid_rds(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= 63
            && id.starts_with(|c: char| c.is_ascii_lowercase())
            && !id.ends_with('-')
            && !id.contains("--")
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }

    #[test]
    fn a_plain_tenant_keeps_a_readable_name() {
        assert_eq!(cluster_identifier("emporium", "acme"), "emporium-acme");
        assert_eq!(
            writer_instance_identifier("emporium-acme"),
            "emporium-acme-writer"
        );
        assert_eq!(
            final_snapshot_identifier("emporium-acme"),
            "emporium-acme-final"
        );
        assert_eq!(
            table_name("emporium", "acme", "carts"),
            "emporium-acme-carts"
        );
        assert_eq!(postgres_identifier("emporium", "acme"), "emporium-acme");
    }

    #[test]
    fn altered_names_are_valid_and_do_not_collide() {
        let dotted = cluster_identifier("emporium", "shop.example");
        let dashed = cluster_identifier("emporium", "shop-example");
        let doubled = cluster_identifier("emporium", "shop--example");
        assert!(
            is_valid_rds(&dotted) && is_valid_rds(&doubled),
            "{dotted} {doubled}"
        );
        assert_eq!(dashed, "emporium-shop-example");
        assert_ne!(dotted, dashed);
        assert_ne!(doubled, dashed);
        assert_ne!(dotted, doubled);
    }

    #[test]
    fn long_names_are_shortened_with_a_stable_hash() {
        let long = "a".repeat(200);
        let id = cluster_identifier("emporium", &long);
        assert!(is_valid_rds(&id), "{id}");
        assert_eq!(id.len(), 63);
        assert_eq!(id, cluster_identifier("emporium", &long), "deterministic");
        assert_ne!(id, cluster_identifier("emporium", &"a".repeat(199)));
        let writer = writer_instance_identifier(&id);
        assert!(is_valid_rds(&writer) && writer != id, "{writer}");
        let pg = postgres_identifier("emporium", &long);
        assert!(pg.len() <= 63 && pg != postgres_identifier("emporium", &"a".repeat(199)));
        let table = table_name("emporium", &"b".repeat(253), "sessions");
        assert!(
            table.len() <= 255 && table.ends_with("-sessions"),
            "{table}"
        );
    }

    #[test]
    fn identifiers_start_with_a_letter() {
        assert!(is_valid_rds(&rds_identifier("9lives")));
        assert!(is_valid_rds(&rds_identifier("-x-")));
        assert!(is_valid_rds(&rds_identifier("UPPER")));
    }

    #[test]
    fn pool_names_cannot_be_a_tenant_name() {
        // Kubernetes names have no underscore, so no tenant maps onto the pool's names.
        assert_eq!(
            pool_table_name("emporium", "catalog"),
            "emporium_pool-catalog"
        );
        assert_eq!(postgres_pool_identifier("emporium"), "emporium_pool");
        assert_ne!(
            table_name("emporium", "pool", "catalog"),
            pool_table_name("emporium", "catalog")
        );
    }
}
