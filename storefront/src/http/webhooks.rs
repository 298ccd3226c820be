//! The merchant's webhook subscriptions (`admin/webhooks`) and the delivery log of mails and
//! webhooks (`admin/notifications/deliveries`). Signing scheme: `notifications::webhook`.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    admin_auth::{Admin, perm},
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ApiQuery},
};
use crate::{
    app::AppState,
    notifications::{Notifier, webhook},
    storage::notifications::{DeliveryLogEntry, WebhookSubscription},
};

/// The order event types a subscription can name (or `*` for all of them).
pub const EVENT_TYPES: &[&str] = &[
    "order.created",
    "order.paid",
    "order.payment_failed",
    "order.fulfilled",
    "order.cancelled",
    "order.expired",
    "order.refunded",
    "order.partially_refunded",
    "order.late_payment_refunded",
];

/// Most subscriptions a store may have.
const MAX_SUBSCRIPTIONS: usize = 20;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where events are POSTed: `https://…` (plain `http` only to loopback when the runtime
    /// allows it, for development).
    #[schema(max_length = 2000)]
    pub url: String,
    /// Event types to receive (`order.created`, `order.paid`, `order.payment_failed`,
    /// `order.fulfilled`, `order.cancelled`, `order.expired`, `order.refunded`,
    /// `order.partially_refunded`, `order.late_payment_refunded`), or `["*"]` for all.
    #[schema(min_items = 1, max_items = 20)]
    pub event_types: Vec<String>,
}

/// A new subscription with its signing secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedSubscription {
    #[serde(flatten)]
    pub subscription: WebhookSubscription,
    /// HMAC-SHA256 key of the `Emporium-Signature` header (see docs/api.md, "Webhooks").
    pub secret: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionChange {
    /// `true` enables a subscription again (its failure count restarts at 0).
    pub enabled: bool,
}

fn validate(new: &NewSubscription, allow_loopback_http: bool) -> Result<(), ApiError> {
    let url = reqwest::Url::parse(&new.url)
        .map_err(|e| ApiError::invalid("url", format!("not a URL: {e}")))?;
    if new.url.len() > 2000 {
        return Err(ApiError::invalid("url", "at most 2000 characters"));
    }
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    let ip = host.parse::<std::net::IpAddr>().ok();
    let loopback = host == "localhost" || ip.is_some_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback_http && loopback => {}
        _ => {
            return Err(ApiError::invalid(
                "url",
                "must be an https:// URL (events carry customer data)",
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid(
            "url",
            "must not hold credentials; verify the signature instead",
        ));
    }
    // Requests to the cluster's or the cloud's own addresses would let a merchant reach them.
    let private = match ip {
        Some(std::net::IpAddr::V4(ip)) => {
            ip.is_private() || ip.is_link_local() || ip.is_loopback() || ip.is_unspecified()
        }
        Some(std::net::IpAddr::V6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || ip.to_ipv4_mapped().is_some()
        }
        None => {
            host.is_empty()
                || host == "localhost"
                || host.ends_with(".internal")
                || host.ends_with(".local")
                || !host.contains('.')
        }
    };
    if private && !(allow_loopback_http && loopback) {
        return Err(ApiError::invalid(
            "url",
            "must name a public host (not a private, loopback or link-local address)",
        ));
    }
    if new.event_types.is_empty() || new.event_types.len() > 20 {
        return Err(ApiError::invalid(
            "event_types",
            "name 1 to 20 event types, or [\"*\"]",
        ));
    }
    for (i, t) in new.event_types.iter().enumerate() {
        if t != "*" && !EVENT_TYPES.contains(&t.as_str()) {
            return Err(ApiError::invalid(
                &format!("event_types[{i}]"),
                format!(
                    "`{}` is not an event type; one of {}, or *",
                    t.chars().take(40).collect::<String>(),
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/admin/webhooks", tag = "admin", security(("admin_key" = [])),
    request_body = NewSubscription,
    responses((status = 201, body = CreatedSubscription, description = "the secret is shown only here"),
              (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "the store has 20 subscriptions already"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "the URL or an event type is invalid (named)")))]
pub async fn create(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Settings>,
    ApiJson(new): ApiJson<NewSubscription>,
) -> ApiResult<(StatusCode, Json<CreatedSubscription>)> {
    validate(&new, state.settings.notifications.allow_loopback_webhooks)?;
    let store = Notifier::store(&tenant);
    if store.subscriptions().await?.len() >= MAX_SUBSCRIPTIONS {
        return Err(ApiError::Conflict {
            field: None,
            detail: format!(
                "a store has at most {MAX_SUBSCRIPTIONS} webhook subscriptions; delete one first"
            ),
        });
    }
    let secret = webhook::new_secret();
    let mut types = new.event_types;
    types.sort();
    types.dedup();
    let subscription = store.create_subscription(&new.url, &types, &secret).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSubscription {
            subscription,
            secret,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/admin/webhooks", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, body = Vec<WebhookSubscription>), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(_state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Settings>,
) -> ApiResult<Json<Vec<WebhookSubscription>>> {
    Ok(Json(Notifier::store(&tenant).subscriptions().await?))
}

#[utoipa::path(patch, path = "/api/v1/admin/webhooks/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = Uuid, Path)), request_body = SubscriptionChange,
    responses((status = 200, body = WebhookSubscription), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(_state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Settings>,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<SubscriptionChange>,
) -> ApiResult<Json<WebhookSubscription>> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("webhook subscription"))?;
    Notifier::store(&tenant)
        .set_enabled(id, change.enabled)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("webhook subscription"))
}

#[utoipa::path(delete, path = "/api/v1/admin/webhooks/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn remove(
    State(_state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Settings>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("webhook subscription"))?;
    if Notifier::store(&tenant).delete_subscription(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("webhook subscription"))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// `email` or `webhook`.
    pub channel: Option<String>,
    /// Only this order event's deliveries.
    pub event_id: Option<Uuid>,
    /// At most this many, newest first (1-200, default 50).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/admin/notifications/deliveries", tag = "admin", security(("admin_key" = [])),
    params(LogQuery),
    responses((status = 200, body = Vec<DeliveryLogEntry>, description = "newest first, each with its attempts"),
              (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn deliveries(
    State(_state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Settings>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Json<Vec<DeliveryLogEntry>>> {
    if let Some(c) = q.channel.as_deref()
        && c != "email"
        && c != "webhook"
    {
        return Err(ApiError::invalid("channel", "`email` or `webhook`"));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "between 1 and 200"));
    }
    Ok(Json(
        Notifier::store(&tenant)
            .delivery_log(q.channel.as_deref(), q.event_id, limit)
            .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(url: &str, types: &[&str]) -> NewSubscription {
        NewSubscription {
            url: url.into(),
            event_types: types.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn field(r: Result<(), ApiError>) -> Option<String> {
        match r {
            Err(ApiError::Invalid(i)) => Some(i.field),
            _ => None,
        }
    }

    #[test]
    fn subscriptions_need_a_public_https_url_and_known_event_types() {
        assert!(validate(&new("https://hooks.example.com/x", &["*"]), false).is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "https://10.0.0.1/x",
            "https://169.254.169.254/latest",
            "https://127.0.0.1:9/x",
            "https://user:pw@hooks.example.com/",
            "https://kubernetes/",
            "not a url",
        ] {
            assert_eq!(
                field(validate(&new(bad, &["*"]), false)),
                Some("url".into()),
                "{bad}"
            );
        }
        assert!(validate(&new("http://127.0.0.1:9/x", &["*"]), true).is_ok());
        assert_eq!(
            field(validate(
                &new(
                    "https://hooks.example.com/",
                    &["order.created", "order.nope"]
                ),
                false
            )),
            Some("event_types[1]".into())
        );
        assert_eq!(
            field(validate(&new("https://hooks.example.com/", &[]), false)),
            Some("event_types".into())
        );
    }
}
