//! `/admin/imports`: upload a product file (Shopify CSV or JSON lines; a plain multipart form,
//! no script), see the jobs with their progress (the page of a running job reloads itself
//! every few seconds with `<meta http-equiv="refresh">`) and their row errors, and download
//! exports. The upload goes through the same import service as the merchant API.

use axum::{
    extract::{Multipart, Path, State, multipart::MultipartRejection},
    http::StatusCode,
    response::Response,
};
use maud::{Markup, html};
use uuid::Uuid;

use super::{StaffPage, alert};
use crate::{
    app::AppState,
    domain::staff::{Access, Permission},
    http::error::ApiError,
    pages::{PageError, status_of},
    services::imports::{self, files::Format},
    storage::imports::{ImportJob, RowError},
    workers::imports::jobs_of,
};

const CATALOG: Access = Access::Permission(Permission::Catalog);

fn progress(job: &ImportJob) -> Markup {
    html! {
        @let pct = if job.rows_total > 0 { (i64::from(job.rows_done) * 100 / i64::from(job.rows_total)).clamp(0, 100) } else { 0 };
        p {
            span class="status" { (job.status) } " · "
            (job.rows_done) " of " (job.rows_total) " rows done, "
            (job.rows_failed) " failed · "
            (job.products_written) " products written, " (job.products_unchanged) " unchanged"
        }
        progress max="100" value=(pct) aria-label="Rows done" { (pct) "%" }
    }
}

fn errors_table(errors: &[RowError]) -> Markup {
    html! {
        @if !errors.is_empty() {
            table {
                caption { "Rows that were not imported" }
                thead { tr { th scope="col" class="num" { "Row" } th scope="col" { "Field" } th scope="col" { "Problem" } } }
                tbody {
                    @for e in errors {
                        tr { td class="num" { (e.row) } td { (e.field) } td { (e.message) } }
                    }
                }
            }
        }
    }
}

fn upload_form(page: &StaffPage, message: Option<&str>) -> Markup {
    html! {
        (alert(message))
        form method="post" action="/admin/imports" enctype="multipart/form-data" {
            (page.csrf_field())
            label for="file" { "Product file (Shopify product CSV, or JSON lines: .jsonl)" }
            input type="file" id="file" name="file" accept=".csv,.jsonl,.ndjson,text/csv,application/x-ndjson" required;
            p class="hint" { "Products are matched by handle and SKU: importing a file again changes nothing." }
            button type="submit" { "Import" }
        }
    }
}

fn exports_list(page: &StaffPage) -> Markup {
    let actor = page.member.as_ref().map(|m| m.actor());
    let can_orders = actor.as_ref().is_some_and(|a| a.holds(Permission::Orders));
    html! {
        h2 { "Export" }
        ul {
            li { "Products: " a href="/admin/exports/products?format=csv" download { "CSV" } " · " a href="/admin/exports/products?format=jsonl" download { "JSON lines" } }
            @if can_orders {
                li { "Orders: " a href="/admin/exports/orders?format=csv" download { "CSV" } " · " a href="/admin/exports/orders?format=jsonl" download { "JSON lines" } }
                li { "Customers: " a href="/admin/exports/customers?format=csv" download { "CSV" } " · " a href="/admin/exports/customers?format=jsonl" download { "JSON lines" } }
            }
        }
    }
}

async fn render_list(
    page: &StaffPage,
    status: StatusCode,
    message: Option<&str>,
) -> Result<Response, PageError> {
    let jobs = jobs_of(&page.tenant).recent(20).await?;
    let main = html! {
        h1 { "Import products" }
        (upload_form(page, message))
        (exports_list(page))
        h2 { "Recent imports" }
        @if jobs.is_empty() {
            p { "No imports yet." }
        } @else {
            table {
                caption class="visually-hidden" { "Recent imports" }
                thead { tr { th scope="col" { "Started" } th scope="col" { "By" } th scope="col" { "Status" } th scope="col" class="num" { "Rows" } th scope="col" class="num" { "Failed" } } }
                tbody {
                    @for j in &jobs {
                        tr {
                            td { a href={ "/admin/imports/" (j.id) } { (j.created_at.format("%Y-%m-%d %H:%M:%S UTC")) } }
                            td { (j.created_by) }
                            td { (j.status) }
                            td class="num" { (j.rows_done) " / " (j.rows_total) }
                            td class="num" { (j.rows_failed) }
                        }
                    }
                }
            }
        }
    };
    Ok(page.render(status, "Import products", main))
}

pub async fn list(State(state): State<AppState>, page: StaffPage) -> Result<Response, PageError> {
    if let Err(r) = page.authorise(&state, CATALOG, "import.list", "").await {
        return Ok(*r);
    }
    render_list(&page, StatusCode::OK, None).await
}

pub async fn show(
    State(state): State<AppState>,
    page: StaffPage,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    if let Err(r) = page.authorise(&state, CATALOG, "import.show", &id).await {
        return Ok(*r);
    }
    let id = Uuid::parse_str(&id).map_err(|_| PageError::NotFound)?;
    let job = jobs_of(&page.tenant)
        .get(id)
        .await?
        .ok_or(PageError::NotFound)?;
    let errors: Vec<RowError> = serde_json::from_value(job.errors.clone()).unwrap_or_default();
    let open = matches!(job.status.as_str(), "queued" | "running");
    let main = html! {
        h1 { "Import of " (job.created_at.format("%Y-%m-%d %H:%M:%S UTC")) }
        div role="status" { (progress(&job)) }
        @if let Some(f) = &job.failure { p class="alert" role="alert" { "The import failed: " (f) } }
        @if !job.ignored_columns.is_empty() {
            p class="hint" { "Columns not imported: " (job.ignored_columns.join(", ")) }
        }
        @if job.rows_failed > i32::try_from(errors.len()).unwrap_or(i32::MAX) {
            p class="hint" { "The first " (errors.len()) " row errors are shown." }
        }
        (errors_table(&errors))
        p { a href="/admin/imports" { "All imports" } }
    };
    let mut res = page.render(StatusCode::OK, "Import", main);
    if open {
        // Progress without a script: browsers reload a page that says `Refresh`.
        res.headers_mut()
            .insert("refresh", axum::http::HeaderValue::from_static("3"));
    }
    Ok(res)
}

#[derive(Debug, serde::Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
}

/// `/admin/exports/{products,orders,customers}`: the merchant API's exports for a signed-in
/// staff member (catalog for products, orders for orders and customers).
pub async fn export(
    State(state): State<AppState>,
    page: StaffPage,
    Path(kind): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ExportQuery>,
) -> Result<Response, PageError> {
    let access = match kind.as_str() {
        "products" => CATALOG,
        "orders" | "customers" => Access::Permission(Permission::Orders),
        _ => return Err(PageError::NotFound),
    };
    if let Err(r) = page
        .authorise(&state, access, "export.download", &kind)
        .await
    {
        return Ok(*r);
    }
    let format = match q.format.as_deref() {
        None => Format::Csv,
        Some(f) => {
            Format::parse(f).ok_or_else(|| ApiError::invalid("format", "must be csv or jsonl"))?
        }
    };
    let tenant = page.tenant.clone();
    Ok(match kind.as_str() {
        "products" => {
            let snap = state.catalog.snapshot(&tenant.catalog).await?;
            crate::http::imports::download(
                format,
                "products",
                crate::services::exports::products(snap, tenant.orders.clone(), format),
            )
        }
        "orders" => crate::http::imports::download(
            format,
            "orders",
            crate::services::exports::orders(jobs_of(&tenant), format),
        ),
        _ => crate::http::imports::download(
            format,
            "customers",
            crate::services::exports::customers(jobs_of(&tenant), format),
        ),
    })
}

/// The uploaded file's format: by its name's extension, else by the type the browser gave.
fn upload_format(name: Option<&str>, mime: Option<&str>) -> Option<Format> {
    let ext = name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("csv") => Some(Format::Csv),
        Some("jsonl" | "ndjson") => Some(Format::Jsonl),
        _ => mime.and_then(Format::of_media_type),
    }
}

pub async fn create(
    State(state): State<AppState>,
    page: StaffPage,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let mut form = form.map_err(|e| PageError::BadForm(e.body_text()))?;
    let mut csrf = String::new();
    let mut file: Option<(Option<Format>, axum::body::Bytes)> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(PageError::BadForm(e.body_text())),
        };
        match field.name() {
            Some("csrf") => {
                csrf = field
                    .text()
                    .await
                    .map_err(|e| PageError::BadForm(e.body_text()))?
            }
            Some("file") => {
                let format = upload_format(field.file_name(), field.content_type());
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| PageError::BadForm(e.body_text()))?;
                file = Some((format, bytes));
            }
            _ => {}
        }
    }
    page.check_csrf(&csrf)?;
    let who = match page.authorise(&state, CATALOG, "import.create", "").await {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let result: Result<ImportJob, ApiError> = async {
        let (format, body) =
            file.ok_or_else(|| ApiError::invalid("file", "choose a file to import"))?;
        let format = format.ok_or_else(|| {
            ApiError::invalid(
                "file",
                "must be a .csv (Shopify product CSV) or .jsonl (JSON lines) file",
            )
        })?;
        let snap = state.catalog.snapshot(&page.tenant.catalog).await?;
        Ok(imports::create(
            &jobs_of(&page.tenant),
            &snap,
            &who.actor.label(),
            format,
            &body,
        )
        .await?)
    }
    .await;
    match result {
        Ok(job) => {
            state.imports.wake();
            page.record(
                &state,
                &who.actor,
                "import.create",
                &job.id.to_string(),
                StatusCode::ACCEPTED,
            )
            .await;
            Ok(page.redirect(&format!("/admin/imports/{}", job.id)))
        }
        Err(e) => {
            let Some(message) = super::message_of(&e) else {
                return Err(e.into());
            };
            let status = status_of(&e);
            page.record(&state, &who.actor, "import.create", "", status)
                .await;
            render_list(&page, status, Some(&message)).await
        }
    }
}
