//! A DNS hostname a store answers on, validated by the API server.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Lowercase DNS hostname (RFC 1123 labels, at least two of them), e.g. `shop.example.com`.
///
/// Refused by the API server, each with its own message: IP literals (a top-level label of
/// digits only, e.g. `127.0.0.1`), single-label hosts (`localhost`) and wildcards
/// (`*.example.com`): the runtime picks a tenant by exact `Host`, so every hostname a store
/// answers on is listed and held by exactly one Storefront.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hostname(pub String);

impl Hostname {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Hostname {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for Hostname {
    fn schema_name() -> Cow<'static, str> {
        "Hostname".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": 253,
            "x-kubernetes-validations": [
                {
                    "rule": "self.matches('^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\\\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')",
                    "message": "must be a lowercase DNS hostname such as shop.example.com: dot-separated labels of letters, digits and hyphens, each starting and ending with a letter or digit"
                },
                {
                    "rule": "self.contains('.')",
                    "message": "must be a fully qualified hostname such as shop.example.com: a single-label host (localhost, intranet names) is not routable on the internet"
                },
                {
                    "rule": "!self.startsWith('*')",
                    "message": "wildcard hostnames are not supported: list every hostname the store answers on (each is held by exactly one Storefront)"
                },
                {
                    "rule": "!self.matches('(^|\\\\.)[0-9]+$')",
                    "message": "must be a DNS name, not an IP address: a top-level label of digits only (as in 127.0.0.1) is refused"
                }
            ]
        })
    }
}
