//! The OpenAPI document, generated from the handlers' annotations and served at `/openapi.json`.
//! `docs/openapi.json` is a checked-in copy; a test fails when it is stale.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::http;

#[derive(OpenApi)]
#[openapi(
    info(title = "Emporium storefront API", description = "One API for every store; the Host header picks the store. Errors are RFC 9457 problem documents."),
    paths(
        http::auth::register, http::auth::login, http::auth::logout,
        http::auth::request_password_reset, http::auth::confirm_password_reset, http::auth::verify_email,
        http::me::show, http::me::update, http::me::change_password, http::me::resend_verification,
        http::catalog::list_products, http::catalog::show_product, http::catalog::list_categories,
        http::search::search,
        http::carts::create, http::carts::show, http::carts::add_item, http::carts::set_item, http::carts::remove_item,
        http::admin::create_product, http::admin::replace_product, http::admin::delete_product,
        http::admin::create_category, http::admin::replace_category, http::admin::delete_category,
        http::checkout::checkout, http::orders::my_orders, http::orders::show, http::orders::admin_list, http::orders::admin_show,
        http::orders::fulfil, http::orders::cancel, http::orders::refund, http::orders::mark_paid,
        http::orders::refund_part,
        http::payments::webhook, http::inventory::events, http::inventory::set_stock, http::inventory::get_stock,
        http::store_settings::show_shipping, http::store_settings::set_shipping, http::store_settings::shipping_options,
        http::store_settings::show_address_book, http::store_settings::set_address_book,
        http::store_settings::show_tax, http::store_settings::set_tax,
        http::store_settings::list_promotions, http::store_settings::set_promotion,
        http::staff::list, http::staff::invite, http::staff::set_permissions, http::staff::remove,
        http::staff::owner_invitation, http::staff::list_tokens, http::staff::create_token,
        http::staff::rotate_token, http::staff::delete_token, http::staff::retire_admin_key,
        http::staff::audit,
        http::webhooks::create, http::webhooks::list, http::webhooks::update, http::webhooks::remove,
        http::webhooks::deliveries,
        http::imports::create, http::imports::list, http::imports::show,
        http::imports::export_products, http::imports::export_orders, http::imports::export_customers,
    ),
    components(schemas(crate::domain::catalog::Sort, crate::storage::imports::RowError)),
    modifiers(&Security, &CommonResponses),
    tags(
        (name = "accounts", description = "Registration, sessions, profile, password reset and email verification by mailed single-use links"),
        (name = "catalog", description = "Products, categories, search"),
        (name = "carts", description = "Guest and customer carts"),
        (name = "admin", description = "Merchant API: `Authorization: Bearer` with the store's admin key or a scoped API token; each route needs one permission (catalog, orders, refunds, settings) and answers 403 without it"),
        (name = "staff", description = "Staff, their permissions and invitations, API tokens, the audit log"),
        (name = "orders", description = "Checkout, orders, payment webhooks, live stock events"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer =
            || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("session", bearer());
        components.add_security_scheme("admin_key", bearer());
    }
}

/// Responses every operation can give, documented once here rather than on each handler: 404
/// for an unknown host, 400 for an undecodable query or body, 413/415 for bodies, 401 for an
/// invalid bearer token on endpoints that take an optional session.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                let mut add = |code: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| problem(description).into());
                };
                add("400", "the query string or body cannot be decoded");
                add("404", "no store answers on this host");
                if path.starts_with("/api/v1/carts") {
                    add("401", "the bearer token is not a session of this store");
                }
                if op.request_body.is_some() {
                    add("413", "the body is larger than the limit");
                    add("415", "the body is not application/json");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regenerate with `UPDATE_OPENAPI=1 cargo test -p emporium-storefront openapi`.
    #[test]
    fn checked_in_openapi_is_current() {
        let generated = ApiDoc::openapi().to_pretty_json().unwrap() + "\n";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "docs/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p emporium-storefront openapi"
        );
    }
}
