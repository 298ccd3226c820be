//! Carts: guest and customer carts, priced from the current catalog on every read (a client
//! never sends a price), and the guest cart's merge into the customer's at sign-in.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    catalog::{CatalogCache, CatalogSource, Snapshot},
    domain::{
        Invalid,
        cart::{self, CurrentPrice, PricedLine},
        catalog::is_sku,
        ports::{CartStore, CartWriteError, StoreError, StoredCart},
        pricing::{Money, PricingError},
    },
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CartView {
    pub id: Uuid,
    /// True when the cart belongs to a signed-in customer.
    pub owned: bool,
    pub lines: Vec<PricedLine>,
    pub item_count: u32,
    /// Sum of the available lines at current prices; absent for an empty cart.
    pub total: Option<Money>,
    pub expires_at: DateTime<Utc>,
}

/// Why a cart could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum CartError {
    #[error(transparent)]
    Write(#[from] CartWriteError),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Pricing(#[from] PricingError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CartError {
    /// The cart is gone or belongs to someone else: the shopper has no usable cart there.
    pub fn is_unusable_cart(&self) -> bool {
        matches!(
            self,
            CartError::Write(CartWriteError::NotFound | CartWriteError::NotOwner)
        )
    }
}

/// A cart the service created or found: `created` is false for a customer's existing cart.
pub struct Opened {
    pub cart: CartView,
    pub created: bool,
}

fn price(snap: &Snapshot, cart: &StoredCart) -> Result<CartView, PricingError> {
    let lookup = |sku: &str| {
        snap.catalog.variant(sku).map(|v| CurrentPrice {
            product_id: v.item.id,
            title: v.item.title(),
            unit_price: v.price(),
        })
    };
    let (lines, total) = cart::price_lines(&cart.lines, lookup)?;
    Ok(CartView {
        id: cart.id,
        owned: cart.owner.is_some(),
        item_count: lines.iter().map(|l| l.quantity).sum(),
        lines,
        total,
        expires_at: cart.expires_at,
    })
}

/// What carts need: the tenant's cart store and its catalog (for prices).
pub struct Carts<'a, C, S> {
    pub carts: &'a C,
    pub catalog: &'a Arc<CatalogCache>,
    pub catalog_source: &'a S,
}

impl<C: CartStore, S: CatalogSource> Carts<'_, C, S> {
    async fn view(&self, cart: &StoredCart) -> Result<CartView, CartError> {
        let snap = self.catalog.snapshot(self.catalog_source).await?;
        Ok(price(&snap, cart)?)
    }

    /// A new cart (owned when `owner` is signed in), or the customer's existing one.
    pub async fn open(&self, owner: Option<Uuid>) -> Result<Opened, CartError> {
        if let Some(customer) = owner
            && let Some(id) = self.carts.customer_cart(customer).await?
            && let Some(cart) = self.carts.get(id).await?
        {
            return Ok(Opened {
                cart: self.view(&cart).await?,
                created: false,
            });
        }
        let cart = self.carts.create(Uuid::new_v4(), owner).await?;
        if let Some(customer) = owner {
            self.carts.set_customer_cart(customer, cart.id).await?;
        }
        Ok(Opened {
            cart: self.view(&cart).await?,
            created: true,
        })
    }

    /// The cart, priced now; a customer's cart is theirs alone.
    pub async fn show(&self, id: Uuid, caller: Option<Uuid>) -> Result<CartView, CartError> {
        let cart = self.carts.get(id).await?.ok_or(CartWriteError::NotFound)?;
        if cart.owner.is_some() && cart.owner != caller {
            return Err(CartWriteError::NotOwner.into());
        }
        self.view(&cart).await
    }

    /// Adds `quantity` of a SKU the catalog sells; a cart holds one currency.
    pub async fn add_item(
        &self,
        id: Uuid,
        caller: Option<Uuid>,
        sku: &str,
        quantity: u32,
    ) -> Result<CartView, CartError> {
        cart::check_quantity(quantity)?;
        let snap = self.catalog.snapshot(self.catalog_source).await?;
        if !is_sku(sku) || snap.catalog.variant(sku).is_none() {
            return Err(Invalid::new("sku", "no product sells this SKU").into());
        }
        let cart = self.carts.add_line(id, caller, sku, quantity).await?;
        match price(&snap, &cart) {
            Ok(v) => Ok(v),
            Err(PricingError::MixedCurrency(..)) => {
                // Undo: a cart holds one currency.
                let before = cart
                    .lines
                    .get(sku)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(quantity);
                if before == 0 {
                    self.carts.remove_line(id, caller, sku).await?;
                } else {
                    self.carts.set_line(id, caller, sku, before).await?;
                }
                Err(Invalid::new("sku", "is priced in another currency than the cart").into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sets a line's quantity.
    pub async fn set_item(
        &self,
        id: Uuid,
        caller: Option<Uuid>,
        sku: &str,
        quantity: u32,
    ) -> Result<CartView, CartError> {
        cart::check_quantity(quantity)?;
        let sku = line_sku(sku)?;
        let cart = self.carts.set_line(id, caller, sku, quantity).await?;
        self.view(&cart).await
    }

    /// Removes a line.
    pub async fn remove_item(
        &self,
        id: Uuid,
        caller: Option<Uuid>,
        sku: &str,
    ) -> Result<CartView, CartError> {
        let sku = line_sku(sku)?;
        let cart = self.carts.remove_line(id, caller, sku).await?;
        self.view(&cart).await
    }
}

/// A line is named by its SKU; anything else names no line.
fn line_sku(raw: &str) -> Result<&str, CartWriteError> {
    if is_sku(raw) {
        Ok(raw)
    } else {
        Err(CartWriteError::NoLine)
    }
}

/// At sign-in: merges the guest cart into the customer's cart (or adopts it when they have
/// none) and returns the customer's cart id.
pub async fn adopt_on_login(
    carts: &impl CartStore,
    customer: Uuid,
    guest_cart: Option<Uuid>,
) -> Result<Option<Uuid>, CartWriteError> {
    let own = match carts.customer_cart(customer).await? {
        Some(id) => carts.get(id).await?,
        None => None,
    };
    let guest = match guest_cart {
        Some(id) => carts
            .get(id)
            .await?
            .filter(|g| g.owner.is_none_or(|o| o == customer)),
        None => None,
    };
    match (own, guest) {
        (Some(mut own), Some(guest)) if own.id != guest.id => {
            own.lines = cart::merge(&own.lines, &guest.lines);
            carts.replace(&own).await?;
            carts.delete(guest.id).await?;
            Ok(Some(own.id))
        }
        (Some(own), _) => Ok(Some(own.id)),
        (None, Some(mut guest)) => {
            guest.owner = Some(customer);
            carts.replace(&guest).await?;
            carts.set_customer_cart(customer, guest.id).await?;
            Ok(Some(guest.id))
        }
        (None, None) => Ok(None),
    }
}
