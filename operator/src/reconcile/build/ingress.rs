//! The tenant's Ingress for the AWS Load Balancer Controller, joined to its assigned ALB
//! ingress group. Pooled tenants' Ingresses live in the pool namespace and point at the pool
//! Service; dedicated ones at their own.

use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

use super::{
    BuildError, BuildInput, WORKLOAD_NAME, config_secret_name, metadata, object, pool::POOL_NAME,
};
use crate::{config::OperatorConfig, crd::Tier};

/// `None` when the tenant has no domain of its own to route (all held by older tenants).
pub fn build(input: &BuildInput, config: &OperatorConfig) -> Result<Option<Ingress>, BuildError> {
    let Some(group) = &input.ingress_group else {
        return Ok(None);
    };
    if input.routed_domains.is_empty() {
        return Ok(None);
    }
    let (name, service) = match input.tier {
        Tier::Dedicated => (WORKLOAD_NAME.to_owned(), WORKLOAD_NAME),
        Tier::Pooled => (config_secret_name(&input.tenant), POOL_NAME),
    };
    let hosts: Vec<&str> = input.routed_domains.iter().map(|d| d.as_str()).collect();
    let mut annotations = serde_json::Map::new();
    let mut annotate = |key: &str, value: String| {
        annotations.insert(key.to_owned(), json!(value));
    };
    annotate("alb.ingress.kubernetes.io/group.name", group.clone());
    annotate(
        "alb.ingress.kubernetes.io/scheme",
        config.alb_scheme.clone(),
    );
    annotate("alb.ingress.kubernetes.io/target-type", "ip".to_owned());
    annotate(
        "alb.ingress.kubernetes.io/healthcheck-path",
        "/readyz".to_owned(),
    );
    annotate("external-dns.alpha.kubernetes.io/hostname", hosts.join(","));
    if config.certificate_arn.is_empty() {
        annotate(
            "alb.ingress.kubernetes.io/listen-ports",
            r#"[{"HTTP":80}]"#.to_owned(),
        );
    } else {
        annotate(
            "alb.ingress.kubernetes.io/certificate-arn",
            config.certificate_arn.clone(),
        );
        annotate(
            "alb.ingress.kubernetes.io/listen-ports",
            r#"[{"HTTP":80},{"HTTPS":443}]"#.to_owned(),
        );
        annotate("alb.ingress.kubernetes.io/ssl-redirect", "443".to_owned());
    }
    if !config.waf_acl_arn.is_empty() {
        annotate(
            "alb.ingress.kubernetes.io/wafv2-acl-arn",
            config.waf_acl_arn.clone(),
        );
    }
    let mut meta = metadata(input, config, &name);
    meta["annotations"] = json!(annotations);
    let rules: Vec<_> = hosts
        .iter()
        .map(|host| {
            json!({ "host": host, "http": { "paths": [{
                "path": "/",
                "pathType": "Prefix",
                "backend": { "service": { "name": service, "port": { "name": "http" } } },
            }] } })
        })
        .collect();
    object(
        "Ingress",
        &input.tenant,
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": meta,
            "spec": { "ingressClassName": config.ingress_class, "rules": rules },
        }),
    )
    .map(Some)
}
