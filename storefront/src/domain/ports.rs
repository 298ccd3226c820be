//! What the domain needs from storage. Each adapter instance is bound to one tenant, so no
//! method can reach another tenant's data by passing the wrong id.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    accounts::{Customer, TokenPurpose},
    cart::Lines,
    catalog::{Category, Product},
    inventory::StockChange,
    orders::{
        Applied, CheckoutError, CheckoutOutcome, NewOrder, Order, OrderEvent, OrderStatus,
        OutboxEvent, RelayError, TransitionError,
    },
};

/// A storage failure the caller cannot fix; logged, shown to clients as 503/500. The cause is
/// kept as the [`source`](std::error::Error::source) where the backend gave an error value.
#[derive(Debug, thiserror::Error)]
#[error("{backend}: {source}")]
pub struct StoreError {
    pub backend: &'static str,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    /// A failure of `backend` described by `err`'s text: for causes that are not error values
    /// (a message, an SDK error wrapped for display).
    pub fn new(backend: &'static str, err: impl std::fmt::Display) -> Self {
        Self {
            backend,
            source: err.to_string().into(),
        }
    }

    /// A failure of `backend` caused by `err`, which stays reachable as the source.
    pub fn caused_by(
        backend: &'static str,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            backend,
            source: Box::new(err),
        }
    }
}

/// The email is already registered with this tenant.
#[derive(Debug, thiserror::Error)]
#[error("email already registered")]
pub struct EmailTaken;

/// A customer record with its password hash (never leaves the server).
#[derive(Debug, Clone)]
pub struct CustomerCredentials {
    pub customer: Customer,
    pub password_hash: String,
}

pub trait CustomerStore: Send + Sync {
    fn create(
        &self,
        email: &str,
        password_hash: &str,
        name: &str,
    ) -> impl Future<Output = Result<Result<Customer, EmailTaken>, StoreError>> + Send;
    fn by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<CustomerCredentials>, StoreError>> + Send;
    fn by_id(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<CustomerCredentials>, StoreError>> + Send;
    fn update_profile(
        &self,
        id: Uuid,
        email: Option<&str>,
        name: Option<&str>,
    ) -> impl Future<Output = Result<Result<Option<Customer>, EmailTaken>, StoreError>> + Send;
    fn set_password_hash(
        &self,
        id: Uuid,
        hash: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stores a single-use link for `purpose` mailed to `email` (by its token's hash) and
    /// deletes the customer's earlier links of that purpose.
    fn issue_token(
        &self,
        customer: Uuid,
        purpose: TokenPurpose,
        email: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The customer a live (unused, unexpired) link of `purpose` belongs to.
    fn token_holder(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
    ) -> impl Future<Output = Result<Option<Uuid>, StoreError>> + Send;
    /// Uses a password-reset link: in one transaction deletes it (and the customer's other
    /// reset links), sets the password hash and marks the email verified. `None`: the link is
    /// unknown, used, expired, or was mailed to an address the customer no longer has.
    fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
    ) -> impl Future<Output = Result<Option<Uuid>, StoreError>> + Send;
    /// Uses a verification link: the address it was mailed to becomes the verified `email`
    /// (replacing the old one when it was the pending one). `None`: the link is unknown, used,
    /// expired or superseded; `EmailTaken`: another customer registered the address meanwhile.
    fn verify_email(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = Result<Result<Option<Customer>, EmailTaken>, StoreError>> + Send;
    /// Sets the address waiting for verification and stores its link (replacing earlier ones);
    /// the customer's reset links, mailed to the current address, stay valid.
    fn request_email_change(
        &self,
        id: Uuid,
        new_email: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Customer>, StoreError>> + Send;
}

/// A signed-in session, keyed by the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub customer_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

pub trait SessionStore: Send + Sync {
    fn create(&self, session: &Session) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The session if it exists and has not expired.
    fn get(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;
    fn delete(
        &self,
        token_hash: &str,
        customer_id: Uuid,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deletes every session of the customer except `keep`; returns the deleted token hashes.
    fn delete_others(
        &self,
        customer_id: Uuid,
        keep: Option<&str>,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// A cart as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCart {
    pub id: Uuid,
    pub owner: Option<Uuid>,
    pub lines: Lines,
    pub expires_at: DateTime<Utc>,
}

/// Why a cart write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CartWriteError {
    #[error("no such cart")]
    NotFound,
    #[error("the cart belongs to another customer")]
    NotOwner,
    #[error("no such line")]
    NoLine,
    #[error("the cart is full or the quantity too large")]
    Limit,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub trait CartStore: Send + Sync {
    fn create(
        &self,
        id: Uuid,
        owner: Option<Uuid>,
    ) -> impl Future<Output = Result<StoredCart, StoreError>> + Send;
    fn get(&self, id: Uuid) -> impl Future<Output = Result<Option<StoredCart>, StoreError>> + Send;
    /// Adds `quantity` to the SKU's line in one conditional write.
    fn add_line(
        &self,
        id: Uuid,
        caller: Option<Uuid>,
        sku: &str,
        quantity: u32,
    ) -> impl Future<Output = Result<StoredCart, CartWriteError>> + Send;
    fn set_line(
        &self,
        id: Uuid,
        caller: Option<Uuid>,
        sku: &str,
        quantity: u32,
    ) -> impl Future<Output = Result<StoredCart, CartWriteError>> + Send;
    fn remove_line(
        &self,
        id: Uuid,
        caller: Option<Uuid>,
        sku: &str,
    ) -> impl Future<Output = Result<StoredCart, CartWriteError>> + Send;
    /// Overwrites the lines and owner of a cart (used when merging).
    fn replace(&self, cart: &StoredCart) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn delete(&self, id: Uuid) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn customer_cart(
        &self,
        customer: Uuid,
    ) -> impl Future<Output = Result<Option<Uuid>, StoreError>> + Send;
    fn set_customer_cart(
        &self,
        customer: Uuid,
        cart: Uuid,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A tenant's catalog as stored: one JSON document per product and per category, parsed by
/// [`CatalogDocs::parse`] (off the async workers: it is the bulk of a load's CPU).
#[derive(Debug, Default)]
pub struct CatalogDocs {
    pub products: Vec<String>,
    pub categories: Vec<String>,
}

impl CatalogDocs {
    /// One document; an unreadable one is skipped (and logged).
    pub fn parse_doc<T: serde::de::DeserializeOwned>(
        tenant: &str,
        kind: &str,
        doc: &str,
    ) -> Option<T> {
        match serde_json::from_str(doc) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(tenant, kind, error = %e, "skipping unreadable catalog item");
                None
            }
        }
    }

    /// The categories, and the products parsed one by one as the iterator is consumed.
    pub fn parse(self, tenant: &str) -> (impl Iterator<Item = Product>, Vec<Category>) {
        let categories = self
            .categories
            .iter()
            .filter_map(|d| Self::parse_doc(tenant, "category", d))
            .collect();
        let tenant = tenant.to_owned();
        let products = self
            .products
            .into_iter()
            .filter_map(move |d| Self::parse_doc(&tenant, "product", &d));
        (products, categories)
    }
}

/// What one counted catalog write changed: the ids of the products and categories it stored or
/// deleted. Replicas re-read exactly these items to bring their snapshot up to date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogChange {
    pub products: Vec<Uuid>,
    pub categories: Vec<String>,
}

impl CatalogChange {
    pub fn product(id: Uuid) -> Self {
        Self {
            products: vec![id],
            categories: Vec::new(),
        }
    }

    pub fn category(id: impl Into<String>) -> Self {
        Self {
            products: Vec::new(),
            categories: vec![id.into()],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.products.is_empty() && self.categories.is_empty()
    }

    /// Adds `other`'s ids, keeping each id once (in the order first seen).
    pub fn merge(&mut self, other: CatalogChange) {
        self.products.extend(other.products);
        self.categories.extend(other.categories);
        let mut seen = std::collections::HashSet::new();
        self.products.retain(|id| seen.insert(*id));
        let mut seen = std::collections::HashSet::new();
        self.categories.retain(|id| seen.insert(id.clone()));
    }
}

/// The stored documents of a change's ids as they are now: `None` where the item was deleted.
#[derive(Debug, Default)]
pub struct ChangedDocs {
    pub products: Vec<(Uuid, Option<String>)>,
    pub categories: Vec<(String, Option<String>)>,
}

/// The catalog's source of truth, and its change feed: every write is stored first, then
/// counted by [`CatalogStore::record_change`], which gives it the next catalog version and keeps
/// the changed ids under that version. A replica tells whether its snapshot is current by
/// reading one counter ([`CatalogStore::version`]), and brings it up to date by re-reading only
/// what the versions since its own changed ([`CatalogStore::changes`],
/// [`CatalogStore::fetch_changed`]).
pub trait CatalogStore: Send + Sync {
    fn load(&self) -> impl Future<Output = Result<CatalogDocs, StoreError>> + Send;
    /// The tenant's catalog version: 0 before the first counted write.
    fn version(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Counts a write (after it is stored) in the change feed; returns its version (a large
    /// change may be split over several consecutive versions: the last is returned).
    fn record_change(
        &self,
        change: &CatalogChange,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The ids changed by versions `after + 1 ..= upto`, merged; `None` when the feed no longer
    /// holds every one of them (trimmed, or a version counted without a feed entry), so the
    /// caller must load the whole catalog.
    fn changes(
        &self,
        after: u64,
        upto: u64,
    ) -> impl Future<Output = Result<Option<CatalogChange>, StoreError>> + Send;
    /// The current documents of `change`'s ids (consistent reads).
    fn fetch_changed(
        &self,
        change: &CatalogChange,
    ) -> impl Future<Output = Result<ChangedDocs, StoreError>> + Send;
    fn put_product(&self, product: &Product)
    -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stores many products (one batched write per 25).
    fn put_products(
        &self,
        products: &[Product],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// False when there was no such product.
    fn delete_product(&self, id: Uuid) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn put_category(
        &self,
        category: &Category,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn delete_category(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A tenant's stock levels and their change log. Every change is numbered and published (see
/// [`StockChange`]).
pub trait InventoryStore: Send + Sync {
    /// Sets a SKU's available units (the merchant's count).
    fn set_stock(
        &self,
        sku: &str,
        available: i32,
    ) -> impl Future<Output = Result<StockChange, StoreError>> + Send;
    /// Available units of a SKU (`None` when the merchant never set any).
    fn stock(&self, sku: &str) -> impl Future<Output = Result<Option<i32>, StoreError>> + Send;
    /// Stock changes after `seq`, oldest first (resuming a live feed).
    fn stock_events_after(
        &self,
        seq: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<StockChange>, StoreError>> + Send;
}

/// Turns a priced cart into an order under an `Idempotency-Key`, atomically: the key, the stock
/// reservation, the order and the reply recorded for retries commit together or not at all.
pub trait CheckoutStore: Send + Sync {
    /// What a key records: the first request's fingerprint and the reply it got.
    type Reply: Send;
    /// The reply recorded under `key` for a request with this `fingerprint` (a cheap check
    /// before side effects); [`CheckoutError::KeyReused`] when the key was used differently,
    /// [`CheckoutError::CartCheckedOut`] when another request already made `cart` an order.
    fn replay(
        &self,
        key: &str,
        fingerprint: &str,
        cart: Uuid,
    ) -> impl Future<Output = Result<Option<Self::Reply>, CheckoutError>> + Send;
    /// Claims the key and the cart (a cart becomes one order), reserves the stock, creates the
    /// order and records `reply(order)`.
    fn checkout(
        &self,
        key: &str,
        fingerprint: &str,
        new: NewOrder,
        reply: impl FnOnce(&Order) -> Self::Reply + Send,
    ) -> impl Future<Output = Result<CheckoutOutcome<Self::Reply>, CheckoutError>> + Send;
}

/// A tenant's orders: lookups and life-cycle changes.
pub trait OrderStore: Send + Sync {
    fn order(&self, id: Uuid) -> impl Future<Output = Result<Option<Order>, StoreError>> + Send;
    /// Newest first; `before` is the last id of the previous page.
    fn list(
        &self,
        customer: Option<Uuid>,
        status: Option<OrderStatus>,
        before: Option<Uuid>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Order>, StoreError>> + Send;
    /// Applies an event: state machine, stock effect and outbox in one transaction. With
    /// `payment_event` (provider event id, kind), an id seen before changes nothing.
    fn apply(
        &self,
        order_id: Uuid,
        event: OrderEvent,
        payment_event: Option<(&str, &str)>,
    ) -> impl Future<Output = Result<Applied, TransitionError>> + Send;
    /// Records that a payment which arrived for an order that could no longer take it was
    /// refunded: the event id and an order event, together; false when the id was seen before.
    fn record_late_refund(
        &self,
        order_id: Uuid,
        event_id: &str,
        kind: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Points the order at the provider payment that pays it.
    fn set_payment_ref(
        &self,
        order_id: Uuid,
        reference: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records a payment event id without changing any order; false when seen before.
    fn record_payment_event(
        &self,
        event_id: &str,
        kind: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Pending orders whose reservation ran out.
    fn expired_reservations(
        &self,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Uuid>, StoreError>> + Send;
}

/// The merchant's settings documents by name (`shipping`, ...), stored as the domain validated
/// them.
pub trait SettingsStore: Send + Sync {
    fn settings(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<serde_json::Value>, StoreError>> + Send;
    fn put_settings(
        &self,
        name: &str,
        doc: &serde_json::Value,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Several documents in one read, by name (absent ones are missing from the map).
    fn settings_many(
        &self,
        names: &[&str],
    ) -> impl Future<
        Output = Result<std::collections::HashMap<String, serde_json::Value>, StoreError>,
    > + Send;
}

/// Refunds of part or all of an order, recorded around the provider call.
pub trait RefundStore: Send + Sync {
    /// Records the refund as pending under `key` (or finds the key's refund), after checking
    /// the order can be refunded and `planned` fits in what is left.
    fn begin_refund(
        &self,
        order_id: Uuid,
        key: &str,
        planned: &super::orders::PlannedRefund,
        reason: &str,
        restock: bool,
    ) -> impl Future<Output = Result<super::orders::RefundStart, super::orders::RefundError>> + Send;
    /// Marks it done (the provider gave the money back): restocks when asked, and the order
    /// turns refunded once its whole total is.
    fn complete_refund(
        &self,
        order_id: Uuid,
        refund_id: Uuid,
        provider_ref: Option<&str>,
    ) -> impl Future<Output = Result<Order, StoreError>> + Send;
    /// Forgets a pending refund the provider refused.
    fn abandon_refund(
        &self,
        refund_id: Uuid,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records how the order was sent.
    fn set_fulfilment(
        &self,
        order_id: Uuid,
        fulfilment: &super::orders::Fulfilment,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The merchant's discount codes and how often each was used.
pub trait PromotionStore: Send + Sync {
    fn promotion(
        &self,
        code: &str,
    ) -> impl Future<Output = Result<Option<super::promotions::Promotion>, StoreError>> + Send;
    fn promotions(
        &self,
    ) -> impl Future<Output = Result<Vec<super::promotions::Promotion>, StoreError>> + Send;
    /// Creates or replaces a code (its use count stays).
    fn put_promotion(
        &self,
        code: &str,
        draft: &super::promotions::PromotionDraft,
    ) -> impl Future<Output = Result<super::promotions::Promotion, StoreError>> + Send;
}

/// Signed-in customers' saved addresses, one document per customer.
pub trait AddressBookStore: Send + Sync {
    fn address_book(
        &self,
        customer: Uuid,
    ) -> impl Future<Output = Result<Option<serde_json::Value>, StoreError>> + Send;
    fn set_address_book(
        &self,
        customer: Uuid,
        doc: &serde_json::Value,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Order events written with the changes that caused them, waiting to be sent.
pub trait OutboxStore: Send + Sync {
    /// Hands up to `limit` unsent events (oldest first) to `send` and marks them sent only when
    /// it succeeds; returns how many were sent.
    fn relay_outbox<F, Fut, E>(
        &self,
        limit: i64,
        send: F,
    ) -> impl Future<Output = Result<usize, RelayError<E>>> + Send
    where
        F: FnOnce(Vec<OutboxEvent>) -> Fut + Send,
        Fut: Future<Output = Result<(), E>> + Send,
        E: Send;

    /// The unsent events: how many, and the id (a UUIDv7, so its time) of the oldest.
    fn outbox_backlog(
        &self,
    ) -> impl Future<Output = Result<(i64, Option<uuid::Uuid>), StoreError>> + Send;
}
