//! The use cases of the storefront, one file each. The JSON API (`http`) and the shopper pages
//! (`pages`) both call them, so a rule lives in one place; each takes the narrow dependencies
//! it needs (a tenant's stores, a cache, the bus) and returns a typed result.
//!
//! - [`checkout`]: cart → order, stock reserved, payment started, under an idempotency key.
//! - [`carts`]: guest and customer carts, priced from the current catalog.
//! - [`accounts`]: registration, sign-in, sessions, profile and password.
//! - [`catalog_admin`]: the merchant's product, category and stock writes.
//! - [`imports`] and [`exports`]: bulk product imports (jobs) and streamed exports.
//! - [`orders`]: history and lookups, the life cycle, payment provider events.
//! - [`store_settings`]: the merchant's shipping zones and rates.
//!
//! [`passwords`] (argon2 hashing) and [`session_cache`] (validated sessions in memory) serve
//! [`accounts`].

pub mod accounts;
pub mod carts;
pub mod catalog_admin;
pub mod checkout;
pub mod exports;
pub mod imports;
pub mod orders;
pub mod passwords;
pub mod session_cache;
pub mod staff;
pub mod store_settings;
