//! Checkout: turns a cart into an order in `pending_payment`, priced from the catalog at this
//! instant, with its stock reserved and its payment started, under an `Idempotency-Key` (a retry
//! with the same key and request gets the first reply again).
//!
//! A cart becomes an order once. Once the order commits, the cart is deleted: the order holds
//! the lines, and the shopper's next visit starts an empty cart. Checking the same cart out
//! again under another key is refused naming the order ([`CheckoutError::CartCheckedOut`]),
//! even while the first checkout is still in flight; if that order later fails, expires or is
//! cancelled, the shopper fills a new cart (the order's lines are not put back).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::store_settings::{SHIPPING, TAX, load_settings, load_two};
use crate::{
    catalog::{CatalogCache, CatalogSource, Snapshot},
    domain::{
        Invalid,
        inventory::{checkout_fingerprint, reservation_expiry},
        orders::{
            CheckoutError, CheckoutOutcome, NewOrder, Order, OrderLine, OrderTax, PromotionClaim,
            ShippingLine,
        },
        ports::{CartStore, CheckoutStore, PromotionStore, SettingsStore, StoreError, StoredCart},
        pricing::{self, Money, PricingError},
        promotions::{CodeRefused, Discount, normalise_code},
        shipping::{self, Address, ShippingOption, ShippingSettings},
        totals::{Charge, STANDARD_CLASS, TaxPlace, TaxSettings, Totals, order_totals},
    },
    payments::{PaymentError, PaymentProvider as _, Provider},
};

/// Optional checkout details.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// Where the receipt goes (guests); at most 254 characters.
    #[serde(default)]
    pub email: Option<String>,
    /// Required when the store ships (has shipping zones) and the cart holds goods to ship.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    /// Defaults to the shipping address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    /// The id of a method `carts/{id}/shipping-options` offers for the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_method: Option<String>,
    /// A discount code (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_code: Option<String>,
}

/// A cart priced from the catalog as it is now: the order keeps these prices whatever happens
/// later.
struct Basket {
    lines: Vec<OrderLine>,
    subtotal: Money,
    weight_grams: u64,
    /// Some line is a physical good.
    ships: bool,
}

fn basket(snap: &Snapshot, cart: &StoredCart) -> Result<Basket, PlaceOrderError> {
    let mut lines = Vec::with_capacity(cart.lines.len());
    let (mut weight_grams, mut ships) = (0u64, false);
    for (sku, qty) in &cart.lines {
        let variant = snap
            .catalog
            .variant(sku)
            .ok_or_else(|| PlaceOrderError::NoLongerSold { sku: sku.clone() })?;
        weight_grams += u64::from(variant.weight_grams) * u64::from(*qty);
        ships |= variant.requires_shipping;
        lines.push(OrderLine {
            sku: sku.clone(),
            product_id: variant.item.id,
            title: variant.item.title(),
            quantity: i32::try_from(*qty).map_err(|_| Invalid::new("quantity", "too large"))?,
            unit_price: variant.price(),
        });
    }
    let line_totals = lines
        .iter()
        .map(|l| pricing::line_total(&l.unit_price, l.quantity.unsigned_abs()))
        .collect::<Result<Vec<Money>, _>>()?;
    let subtotal = pricing::sum(&line_totals)?.ok_or(PlaceOrderError::EmptyCart)?;
    Ok(Basket {
        lines,
        subtotal,
        weight_grams,
        ships,
    })
}

/// The variant's tax class, read from its product (only when the store taxes anything).
fn tax_class(snap: &Snapshot, sku: &str) -> String {
    snap.catalog
        .variant(sku)
        .and_then(|v| {
            v.item
                .product()
                .variants
                .into_iter()
                .find(|pv| pv.sku == sku)
                .and_then(|pv| pv.tax_class)
        })
        .unwrap_or_else(|| STANDARD_CLASS.to_owned())
}

/// The order's totals: lines less `discount_minor`, shipping, and tax for where it goes.
fn price_order(
    snap: &Snapshot,
    basket: &Basket,
    shipping: Option<&ShippingLine>,
    destination: Option<&Address>,
    tax: &TaxSettings,
    discount_minor: i64,
) -> Result<Totals, PlaceOrderError> {
    let taxes = !tax.rates.is_empty();
    let charges = basket
        .lines
        .iter()
        .map(|l| {
            Ok(Charge {
                amount_minor: pricing::line_total(&l.unit_price, l.quantity.unsigned_abs())?
                    .amount_minor,
                tax_class: if taxes {
                    tax_class(snap, &l.sku)
                } else {
                    STANDARD_CLASS.to_owned()
                },
            })
        })
        .collect::<Result<Vec<_>, PricingError>>()?;
    let shipping = shipping.map(|s| Charge {
        amount_minor: s.price.amount_minor,
        tax_class: tax.shipping_tax_class.clone(),
    });
    let place = match destination {
        Some(a) => Some(TaxPlace {
            country: &a.country,
            region: a.region.as_deref(),
        }),
        None => tax.default_country.as_deref().map(|country| TaxPlace {
            country,
            region: None,
        }),
    };
    Ok(order_totals(
        &basket.subtotal.currency,
        &charges,
        discount_minor,
        shipping.as_ref(),
        tax,
        place,
    )?)
}

/// The shipping the request chose, checked against the merchant's zones: required when the
/// store ships and the basket holds physical goods, refused otherwise.
fn chosen_shipping(
    settings: &ShippingSettings,
    basket: &Basket,
    req: &CheckoutRequest,
) -> Result<Option<ShippingLine>, PlaceOrderError> {
    if let Some(a) = &req.billing_address {
        a.validate("billing_address")?;
    }
    if !(settings.ships() && basket.ships) {
        if req.shipping_method.is_some() {
            return Err(Invalid::new("shipping_method", "nothing in this order ships").into());
        }
        if let Some(a) = &req.shipping_address {
            a.validate("shipping_address")?;
        }
        return Ok(None);
    }
    let address = req.shipping_address.as_ref().ok_or_else(|| {
        Invalid::new(
            "shipping_address",
            "is required: the cart holds goods to ship",
        )
    })?;
    address.validate("shipping_address")?;
    let zone = settings.zone_for(address).ok_or_else(|| {
        Invalid::new(
            "shipping_address.country",
            format!("the store does not ship to {}", address.country),
        )
    })?;
    let wanted = req.shipping_method.as_deref().ok_or_else(|| {
        Invalid::new(
            "shipping_method",
            "is required: choose one of carts/{id}/shipping-options",
        )
    })?;
    let method = zone
        .methods
        .iter()
        .find(|m| m.id == wanted)
        .ok_or_else(|| {
            Invalid::new(
                "shipping_method",
                format!("`{wanted}` is not offered for this address"),
            )
        })?;
    Ok(Some(ShippingLine {
        method_id: method.id.clone(),
        name: method.name.clone(),
        price: shipping::method_price(method, basket.weight_grams, &basket.subtotal)?,
    }))
}

/// How the shopper pays for the order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentView {
    /// `manual` or `stripe`.
    pub provider: String,
    /// The provider's payment id (a Stripe PaymentIntent id).
    pub reference: Option<String>,
    /// For Stripe.js to confirm the payment in the browser.
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckoutResponse {
    pub order: Order,
    pub payment: PaymentView,
}

/// Why a cart did not become an order.
#[derive(Debug, thiserror::Error)]
pub enum PlaceOrderError {
    #[error("no such cart")]
    CartNotFound,
    #[error("the cart belongs to another customer")]
    NotOwner,
    #[error("the cart is empty")]
    EmptyCart,
    #[error("`{sku}` is no longer sold")]
    NoLongerSold { sku: String },
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The discount code does not apply (unknown, expired, below its minimum, used up, ...).
    #[error(transparent)]
    Code(#[from] CodeRefused),
    #[error(transparent)]
    Pricing(#[from] PricingError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Checkout(#[from] CheckoutError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What placing an order came to: a new order (and the reply recorded for its key), or the
/// reply recorded for an earlier request with the same key.
pub enum Placed<R> {
    New {
        receipt: Box<CheckoutResponse>,
        reply: R,
    },
    Replayed(R),
}

/// What checkout needs: the tenant's carts, orders, catalog and payment provider.
pub struct Checkout<'a, C, O, S> {
    pub carts: &'a C,
    pub orders: &'a O,
    pub catalog: &'a Arc<CatalogCache>,
    pub catalog_source: &'a S,
    pub payments: &'a emporium_tenant_config::Payments,
    pub payments_http: &'a reqwest::Client,
    /// How long checkout holds stock for an unpaid order paid through a provider.
    pub reservation_ttl: Duration,
    /// How long a manual-payment order holds its stock; `None`: until the merchant marks it
    /// paid or cancels it (the shopper pays by bank transfer or on collection, which takes
    /// days, not minutes).
    pub manual_payment_hold: Option<Duration>,
}

impl<C: CartStore, O: CheckoutStore + SettingsStore + PromotionStore, S: CatalogSource>
    Checkout<'_, C, O, S>
{
    /// The discount `code` gives this basket, and the claim checkout redeems in the order's
    /// transaction (where the usage limits are enforced under concurrency).
    async fn discount(
        &self,
        code: &str,
        basket: &Basket,
        ships: bool,
        customer: Option<Uuid>,
        email: Option<&str>,
    ) -> Result<(Discount, PromotionClaim), PlaceOrderError> {
        let code = normalise_code(code)?;
        let promotion = self
            .orders
            .promotion(&code)
            .await?
            .ok_or(CodeRefused::Unknown)?;
        let discount = promotion
            .terms
            .discount(Utc::now(), &basket.subtotal, ships)?;
        let customer_key = match (customer, email) {
            (Some(id), _) => Some(format!("customer:{id}")),
            (None, Some(e)) => Some(format!("email:{}", e.trim().to_lowercase())),
            (None, None) => None,
        };
        if promotion.terms.max_uses_per_customer.is_some() && customer_key.is_none() {
            return Err(CodeRefused::NeedsCustomer.into());
        }
        Ok((discount, PromotionClaim { code, customer_key }))
    }

    /// The shipping methods the store offers for the cart at `address`, priced for it (empty
    /// when nothing in the cart ships or the store does not ship there).
    pub async fn shipping_options(
        &self,
        cart_id: Uuid,
        caller: Option<Uuid>,
        address: &Address,
    ) -> Result<Vec<ShippingOption>, PlaceOrderError> {
        let cart = self
            .carts
            .get(cart_id)
            .await?
            .ok_or(PlaceOrderError::CartNotFound)?;
        if cart.owner.is_some() && cart.owner != caller {
            return Err(PlaceOrderError::NotOwner);
        }
        if cart.lines.is_empty() {
            return Err(PlaceOrderError::EmptyCart);
        }
        let snap = self.catalog.snapshot(self.catalog_source).await?;
        let basket = basket(&snap, &cart)?;
        if !basket.ships {
            return Ok(Vec::new());
        }
        let settings: ShippingSettings = load_settings(self.orders, SHIPPING).await?;
        Ok(shipping::options(
            &settings,
            address,
            basket.weight_grams,
            &basket.subtotal,
        )?)
    }

    /// Places the order for `cart_id` under `key` (already checked). `reply` makes the reply
    /// recorded under the key from the checkout's answer and the request's fingerprint.
    pub async fn place(
        &self,
        key: &str,
        cart_id: Uuid,
        customer: Option<Uuid>,
        req: CheckoutRequest,
        reply: impl FnOnce(&str, &CheckoutResponse) -> O::Reply + Send,
    ) -> Result<Placed<O::Reply>, PlaceOrderError> {
        if let Some(email) = &req.email {
            crate::domain::check_len("email", email, 3, 254)?;
            if !email.contains('@') {
                return Err(Invalid::new("email", "must be an email address").into());
            }
        }
        // Fingerprint the parsed request, so whitespace or key order do not make it "different".
        let canonical = serde_json::to_vec(&req).unwrap_or_default();
        let fingerprint = checkout_fingerprint(&cart_id, &canonical);
        if let Some(stored) = self.orders.replay(key, &fingerprint, cart_id).await? {
            return Ok(Placed::Replayed(stored));
        }

        let Some(cart) = self.carts.get(cart_id).await? else {
            // A concurrent checkout may have just made it an order (and deleted it): say so,
            // or replay it when it was this very request under this key.
            return match self.orders.replay(key, &fingerprint, cart_id).await? {
                Some(stored) => Ok(Placed::Replayed(stored)),
                None => Err(PlaceOrderError::CartNotFound),
            };
        };
        if cart.owner.is_some() && cart.owner != customer {
            return Err(PlaceOrderError::NotOwner);
        }
        if cart.lines.is_empty() {
            return Err(PlaceOrderError::EmptyCart);
        }

        let snap = self.catalog.snapshot(self.catalog_source).await?;
        let basket = basket(&snap, &cart)?;
        let (shipping_settings, tax_settings): (ShippingSettings, TaxSettings) =
            load_two(self.orders, SHIPPING, TAX).await?;
        let mut shipping = chosen_shipping(&shipping_settings, &basket, &req)?;
        let (discount, promotion) = match &req.discount_code {
            Some(code) => {
                let (d, claim) = self
                    .discount(
                        code,
                        &basket,
                        shipping.is_some(),
                        customer,
                        req.email.as_deref(),
                    )
                    .await?;
                (d, Some(claim))
            }
            None => (
                Discount {
                    amount_minor: 0,
                    free_shipping: false,
                },
                None,
            ),
        };
        if discount.free_shipping
            && let Some(s) = &mut shipping
        {
            s.price.amount_minor = 0;
        }
        let ship_to = shipping.as_ref().and(req.shipping_address.clone());
        let billing_address = req.billing_address.clone().or_else(|| ship_to.clone());
        let totals = price_order(
            &snap,
            &basket,
            shipping.as_ref(),
            ship_to.as_ref().or(billing_address.as_ref()),
            &tax_settings,
            discount.amount_minor,
        )?;
        let total = totals.total.clone();

        let order_id = Uuid::now_v7();
        let provider = Provider::for_tenant(self.payments, self.payments_http)?;
        // The payment starts before the order's transaction (a network call must not hold row
        // locks); if the transaction then fails, the unconfirmed intent is simply never paid.
        let payment = provider
            .start(order_id, &total, &format!("order-{order_id}"))
            .await?;
        let new = NewOrder {
            id: order_id,
            customer_id: customer,
            cart_id,
            email: req.email.clone(),
            lines: basket.lines,
            subtotal: basket.subtotal,
            shipping_address: ship_to,
            billing_address,
            shipping,
            discount: totals.discount,
            promotion,
            tax: OrderTax {
                prices_include_tax: totals.prices_include_tax,
                lines: totals.tax_lines,
            },
            total,
            payment_provider: provider.name().to_owned(),
            payment_ref: payment.reference.clone(),
            reserved_until: match &provider {
                Provider::Manual(_) => self.manual_payment_hold,
                Provider::Stripe(_) => Some(self.reservation_ttl),
            }
            .map(|ttl| reservation_expiry(Utc::now(), ttl)),
        };
        let receipt = |order: &Order| CheckoutResponse {
            order: order.clone(),
            payment: PaymentView {
                provider: provider.name().to_owned(),
                reference: payment.reference.clone(),
                client_secret: payment.client_secret.clone(),
            },
        };
        let recorded = |order: &Order| reply(&fingerprint, &receipt(order));
        match self
            .orders
            .checkout(key, &fingerprint, new, recorded)
            .await?
        {
            CheckoutOutcome::Created { order, reply } => {
                // The order holds the lines now. Best effort: `cart_orders` already refuses a
                // second checkout of this cart, so a failed delete only leaves a stale cart.
                if let Err(e) = self.carts.delete(cart_id).await {
                    tracing::warn!(cart = %cart_id, error = %e, "checked-out cart not deleted");
                }
                Ok(Placed::New {
                    receipt: Box::new(receipt(order.as_ref())),
                    reply,
                })
            }
            CheckoutOutcome::Replayed(stored) => Ok(Placed::Replayed(stored)),
        }
    }
}
