//! Which tenant a request belongs to, decided from its `Host` header alone.

use std::collections::HashMap;

/// Lower-cases a `Host` value and strips the port and a trailing dot, so
/// `Shop.Example.com.:8080` and `shop.example.com` name the same store.
/// Returns `None` for values that cannot be a hostname.
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // IPv6 literal: `[::1]:8080`.
        let end = rest.find(']')?;
        &raw[..end + 2]
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':'));
    valid.then_some(host)
}

/// A host claimed by more than one tenant; the first tenant by id keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConflict {
    pub host: String,
    pub kept: String,
    pub refused: String,
}

/// Builds the host → tenant index. Tenants are visited in id order so a conflict always resolves
/// the same way on every replica.
pub fn index_hosts<'a, I>(tenants: I) -> (HashMap<String, String>, Vec<HostConflict>)
where
    I: IntoIterator<Item = (&'a str, &'a [String])>,
{
    let mut sorted: Vec<_> = tenants.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut index = HashMap::new();
    let mut conflicts = Vec::new();
    for (tenant, domains) in sorted {
        for domain in domains {
            let Some(host) = normalize_host(domain) else {
                continue;
            };
            match index.get(&host) {
                Some(kept) if kept != tenant => conflicts.push(HostConflict {
                    host: host.clone(),
                    kept: String::clone(kept),
                    refused: tenant.to_owned(),
                }),
                Some(_) => {}
                None => {
                    index.insert(host, tenant.to_owned());
                }
            }
        }
    }
    (index, conflicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_normalised() {
        assert_eq!(
            normalize_host("Shop.Example.COM:8080").as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(
            normalize_host("shop.example.com.").as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(normalize_host("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host(""), None);
        assert_eq!(normalize_host("bad host"), None);
    }

    #[test]
    fn conflicting_domains_go_to_the_first_tenant_by_id() {
        let a = vec!["a.test".to_owned(), "shared.test".to_owned()];
        let b = vec!["B.test".to_owned(), "shared.test".to_owned()];
        let (index, conflicts) = index_hosts([("zeta", b.as_slice()), ("alpha", a.as_slice())]);
        assert_eq!(index.get("shared.test").map(String::as_str), Some("alpha"));
        assert_eq!(index.get("b.test").map(String::as_str), Some("zeta"));
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].refused, "zeta");
    }
}
