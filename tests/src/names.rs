//! Unique names, so tests that share one stack (one API server, one PostgreSQL server, one moto)
//! never see each other's objects.

/// `prefix` followed by 10 random lowercase hex digits (40 bits from a v4 UUID, so two names
/// collide only after about a million of them).
///
/// The suffix is valid in every name the tests make: Kubernetes names and DNS labels (lowercase,
/// at most 63 characters: keep prefixes short, e.g. a Storefront's namespace is `store-<name>`),
/// unquoted PostgreSQL identifiers and roles (with a prefix such as `sf_app_`), RDS identifiers
/// and DynamoDB table names. The prefix must itself be valid where the name is used; end it with
/// `-` or `_` to separate the suffix.
pub fn unique(prefix: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    // The first 12 hex digits of a v4 UUID are random; the 13th is its version.
    format!("{prefix}{}", &random[..10])
}

#[cfg(test)]
mod tests {
    use super::unique;

    #[test]
    fn names_are_the_prefix_and_ten_lowercase_hex_digits() {
        let name = unique("shop-");
        let suffix = name.strip_prefix("shop-").expect("the prefix comes first");
        assert_eq!(suffix.len(), 10);
        assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "{name}"
        );
    }

    #[test]
    fn names_do_not_repeat() {
        let names: std::collections::HashSet<String> = (0..10_000).map(|_| unique("t")).collect();
        assert_eq!(names.len(), 10_000);
    }
}
