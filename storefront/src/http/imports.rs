//! Bulk import jobs (`admin/imports`) and exports (`admin/exports/...`). An import is answered
//! `202` with its job as soon as the file is stored; the import runner does the work and `GET`
//! shows its progress. This route takes bodies up to `--import-body-limit-bytes` (32 MiB by
//! default); every other route keeps the small general limit.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    admin_auth::{Admin, perm},
    error::{ApiError, ApiResult, Problem},
    extract::ApiQuery,
};
use crate::{
    app::AppState,
    services::{
        exports,
        imports::{self, ImportError, files::Format},
    },
    storage::imports::ImportJob,
    workers::imports::jobs_of,
};

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            e @ ImportError::File(_) => ApiError::invalid("body", e.to_string()),
            ImportError::NotFound => ApiError::NotFound("import job"),
            ImportError::Store(s) => ApiError::Store(s),
        }
    }
}

/// The import format a request's `Content-Type` names.
fn format_of(headers: &HeaderMap) -> ApiResult<Format> {
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    Format::of_media_type(&mime).ok_or(ApiError::UnsupportedMediaTypeOf(
        "send the file as text/csv (Shopify product CSV) or application/x-ndjson (JSON lines)",
    ))
}

/// Starts an import of the request body: Shopify product CSV (`text/csv`) or JSON lines
/// (`application/x-ndjson`), by `Content-Type`.
#[utoipa::path(post, path = "/api/v1/admin/imports", tag = "admin", security(("admin_key" = [])),
    request_body(content((String = "text/csv"), (String = "application/x-ndjson")),
        description = "The file: Shopify product CSV (`text/csv`) or JSON lines, one product a line (`application/x-ndjson`)"),
    responses((status = 202, body = ImportJob, description = "queued; `GET` the `Location` for progress"),
              (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 413, body = Problem, content_type = "application/problem+json", description = "larger than the import limit"),
              (status = 415, body = Problem, content_type = "application/problem+json", description = "neither text/csv nor application/x-ndjson"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "the file cannot be imported at all (no header, a required column missing, no rows)")))]
pub async fn create(
    State(state): State<AppState>,
    Admin { tenant, actor, .. }: Admin<perm::Catalog>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let format = format_of(&headers)?;
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    let job = imports::create(&jobs_of(&tenant), &snap, &actor.label(), format, &body).await?;
    state.imports.wake();
    let mut res = (StatusCode::ACCEPTED, Json(&job)).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/admin/imports/{}", job.id)) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(res)
}

/// The newest import jobs (20).
#[utoipa::path(get, path = "/api/v1/admin/imports", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, body = Vec<ImportJob>), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list(Admin { tenant, .. }: Admin<perm::Catalog>) -> ApiResult<Json<Vec<ImportJob>>> {
    Ok(Json(jobs_of(&tenant).recent(20).await?))
}

/// An import job: status, rows done and failed, the row errors.
#[utoipa::path(get, path = "/api/v1/admin/imports/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ImportJob), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn show(
    Admin { tenant, .. }: Admin<perm::Catalog>,
    Path(id): Path<String>,
) -> ApiResult<Json<ImportJob>> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("import job"))?;
    jobs_of(&tenant)
        .get(id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("import job"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `csv` (the default) or `jsonl`.
    pub format: Option<String>,
}

fn export_format(q: &ExportQuery) -> ApiResult<Format> {
    match q.format.as_deref() {
        None => Ok(Format::Csv),
        Some(f) => {
            Format::parse(f).ok_or_else(|| ApiError::invalid("format", "must be csv or jsonl"))
        }
    }
}

/// A streamed file download.
pub fn download(
    format: Format,
    name: &str,
    body: impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Response {
    let mut res = Body::from_stream(body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    let file = format!("attachment; filename=\"{name}.{}\"", format.as_str());
    if let Ok(v) = HeaderValue::from_str(&file) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Every product with its variants and stock, in the import's format (it imports back as the
/// same catalog).
#[utoipa::path(get, path = "/api/v1/admin/exports/products", tag = "admin", security(("admin_key" = [])),
    params(ExportQuery),
    responses((status = 200, description = "Shopify product CSV, or JSON lines with `format=jsonl`", content((String = "text/csv"), (String = "application/x-ndjson"))),
              (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn export_products(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Catalog>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let format = export_format(&q)?;
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    Ok(download(
        format,
        "products",
        exports::products(snap, tenant.orders.clone(), format),
    ))
}

/// Every order with its lines (CSV: one row per line).
#[utoipa::path(get, path = "/api/v1/admin/exports/orders", tag = "admin", security(("admin_key" = [])),
    params(ExportQuery),
    responses((status = 200, description = "CSV, or JSON lines with `format=jsonl`", content((String = "text/csv"), (String = "application/x-ndjson"))),
              (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn export_orders(
    Admin { tenant, .. }: Admin<perm::Orders>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let format = export_format(&q)?;
    Ok(download(
        format,
        "orders",
        exports::orders(jobs_of(&tenant), format),
    ))
}

/// Every customer: id, email, name, when they registered (never a password hash). Needs the
/// orders permission: customers are who orders come from.
#[utoipa::path(get, path = "/api/v1/admin/exports/customers", tag = "admin", security(("admin_key" = [])),
    params(ExportQuery),
    responses((status = 200, description = "CSV, or JSON lines with `format=jsonl`", content((String = "text/csv"), (String = "application/x-ndjson"))),
              (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn export_customers(
    Admin { tenant, .. }: Admin<perm::Orders>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let format = export_format(&q)?;
    Ok(download(
        format,
        "customers",
        exports::customers(jobs_of(&tenant), format),
    ))
}
