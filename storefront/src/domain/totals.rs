//! What an order costs: its lines, less discounts, plus shipping and tax, to the minor unit.
//! Pure: the checkout service gathers the inputs (prices, the merchant's tax settings, a
//! discount) and stores what this returns.
//!
//! Tax is computed per rate over the order, as an EU invoice shows it (one line per VAT rate),
//! rounding half away from zero once per rate, never per item. With tax-inclusive prices the
//! tax is the part of each rate's gross already in the prices (`gross − round(gross / (1 +
//! rate))`) and the total does not grow; with tax-exclusive prices the tax is added. A discount
//! is spread over the lines in proportion to their amounts (largest remainder, so the parts add
//! up to the discount exactly) before tax, so tax is charged on what the shopper pays.
//! Shipping is taxed at the rate of the merchant's shipping tax class.
//!
//! Always: `subtotal − discount + shipping + added tax = total`, and the tax lines add up to
//! `tax_total` (a property test checks both for random orders).

use serde::{Deserialize, Serialize};

use super::{
    Invalid, check_len,
    pricing::{Money, PricingError},
};

/// The class a variant names when it names none.
pub const STANDARD_CLASS: &str = "standard";
/// Rates are in basis points: 1900 is 19 %.
pub const MAX_RATE_BP: u32 = 10_000;

/// One tax rate of the merchant's: where it applies and to which class of goods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxRate {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Optional ISO 3166-2 subdivision part; a rate naming the region wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The tax class it applies to (`standard`, `reduced`, ...).
    #[serde(default = "standard")]
    pub class: String,
    /// Basis points: 1900 = 19 %.
    #[schema(maximum = 10000)]
    pub rate_bp: u32,
    /// What the order and invoice call it (`MwSt. 19 %`).
    pub name: String,
}

fn standard() -> String {
    STANDARD_CLASS.to_owned()
}

/// The merchant's tax settings. Without rates nothing is taxed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxSettings {
    /// Prices (and shipping rates) are entered with tax included (EU B2C) or without (US).
    #[serde(default)]
    pub prices_include_tax: bool,
    /// Where orders without an address are taxed (the store's own country); none: untaxed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_country: Option<String>,
    /// The class shipping is taxed as.
    #[serde(default = "standard")]
    pub shipping_tax_class: String,
    #[serde(default)]
    pub rates: Vec<TaxRate>,
}

fn is_code(s: &str, min: usize, max: usize, letters_only: bool) -> bool {
    (min..=max).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || (!letters_only && c.is_ascii_digit()))
}

fn is_class(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Checks a tax class name (`standard`, `reduced`, `zero-rated`).
pub fn check_class(field: &str, class: &str) -> Result<(), Invalid> {
    if is_class(class) {
        Ok(())
    } else {
        Err(Invalid::new(field, "must be 1-40 of a-z, 0-9 and -"))
    }
}

impl TaxSettings {
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(c) = &self.default_country
            && !is_code(c, 2, 2, true)
        {
            return Err(Invalid::new(
                "default_country",
                "must be an ISO 3166-1 alpha-2 code",
            ));
        }
        check_class("shipping_tax_class", &self.shipping_tax_class)?;
        if self.rates.len() > 500 {
            return Err(Invalid::new("rates", "at most 500 rates"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.rates.iter().enumerate() {
            let at = format!("rates[{i}]");
            if !is_code(&r.country, 2, 2, true) {
                return Err(Invalid::new(
                    format!("{at}.country"),
                    "must be an ISO 3166-1 alpha-2 code",
                ));
            }
            if let Some(reg) = &r.region
                && !is_code(reg, 1, 3, false)
            {
                return Err(Invalid::new(
                    format!("{at}.region"),
                    "must be an ISO 3166-2 subdivision part",
                ));
            }
            check_class(&format!("{at}.class"), &r.class)?;
            if r.rate_bp > MAX_RATE_BP {
                return Err(Invalid::new(
                    format!("{at}.rate_bp"),
                    "must be 0 to 10000 (100 %)",
                ));
            }
            check_len(&format!("{at}.name"), r.name.trim(), 1, 60)?;
            if !seen.insert((&r.country, &r.region, &r.class)) {
                return Err(Invalid::new(
                    at,
                    "a rate for this country, region and class exists",
                ));
            }
        }
        Ok(())
    }

    /// The rate for goods of `class` delivered to `country` (and `region`).
    pub fn rate_for(&self, country: &str, region: Option<&str>, class: &str) -> Option<&TaxRate> {
        let matches = |r: &&TaxRate| r.country == country && r.class == class;
        self.rates
            .iter()
            .filter(matches)
            .find(|r| region.is_some() && r.region.as_deref() == region)
            .or_else(|| {
                self.rates
                    .iter()
                    .filter(matches)
                    .find(|r| r.region.is_none())
            })
    }
}

/// The tax of one rate on an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaxLine {
    pub name: String,
    pub rate_bp: u32,
    /// The net amount taxed at this rate (after discounts).
    pub taxable: Money,
    pub amount: Money,
}

/// An amount to price and tax: a line's total, or shipping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub amount_minor: i64,
    pub tax_class: String,
}

/// Where the goods go, for tax: the shipping address, else the billing address, else the
/// store's own country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxPlace<'a> {
    pub country: &'a str,
    pub region: Option<&'a str>,
}

/// What an order costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Totals {
    pub subtotal: Money,
    pub discount: Money,
    pub shipping: Money,
    pub prices_include_tax: bool,
    pub tax_lines: Vec<TaxLine>,
    pub tax_total: Money,
    pub total: Money,
}

/// `a × b / c`, rounded half away from zero, for non-negative inputs.
fn mul_div_round(a: i64, b: i64, c: i64) -> Result<i64, PricingError> {
    let (a, b, c) = (i128::from(a), i128::from(b), i128::from(c));
    let q = (2 * a * b + c) / (2 * c);
    i64::try_from(q).map_err(|_| PricingError::Overflow)
}

/// Splits `total` over `weights` in proportion, by largest remainder: the parts add up to
/// `total` exactly, and none exceeds its weight when `total` ≤ the weights' sum.
pub fn allocate(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if sum <= 0 || total <= 0 {
        return vec![0; weights.len()];
    }
    let total = i128::from(total.min(i64::try_from(sum).unwrap_or(i64::MAX)));
    let mut parts: Vec<i128> = weights
        .iter()
        .map(|w| total * i128::from(*w) / sum)
        .collect();
    let mut left = total - parts.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest remainder first; ties to the earlier line, so the result is deterministic.
    order.sort_by_key(|&i| std::cmp::Reverse(total * i128::from(weights[i]) % sum));
    for i in order {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts.into_iter().map(|p| p as i64).collect()
}

fn checked_sum(xs: impl IntoIterator<Item = i64>) -> Result<i64, PricingError> {
    xs.into_iter()
        .try_fold(0i64, |acc, x| acc.checked_add(x))
        .ok_or(PricingError::Overflow)
}

fn money(amount_minor: i64, currency: &str) -> Money {
    Money {
        amount_minor,
        currency: currency.to_owned(),
    }
}

/// Prices an order: `lines` are the line totals with their tax classes, `discount` at most
/// their sum (the caller caps it), `shipping` after any free-shipping discount.
pub fn order_totals(
    currency: &str,
    lines: &[Charge],
    discount_minor: i64,
    shipping: Option<&Charge>,
    tax: &TaxSettings,
    place: Option<TaxPlace<'_>>,
) -> Result<Totals, PricingError> {
    let subtotal = checked_sum(lines.iter().map(|l| l.amount_minor))?;
    let discount = discount_minor.clamp(0, subtotal);
    let shares = allocate(
        discount,
        &lines.iter().map(|l| l.amount_minor).collect::<Vec<_>>(),
    );
    let shipping_minor = shipping.map_or(0, |s| s.amount_minor);

    // Gross (or net, for exclusive prices) per rate, in first-seen order.
    let mut groups: Vec<(&TaxRate, i64)> = Vec::new();
    let mut add = |class: &str, amount: i64| -> Result<(), PricingError> {
        let Some(p) = place else { return Ok(()) };
        let Some(rate) = tax.rate_for(p.country, p.region, class) else {
            return Ok(());
        };
        match groups
            .iter_mut()
            .find(|(r, _)| r.name == rate.name && r.rate_bp == rate.rate_bp)
        {
            Some((_, base)) => *base = base.checked_add(amount).ok_or(PricingError::Overflow)?,
            None => groups.push((rate, amount)),
        }
        Ok(())
    };
    for (l, share) in lines.iter().zip(&shares) {
        add(&l.tax_class, l.amount_minor - share)?;
    }
    if let Some(s) = shipping {
        add(&s.tax_class, s.amount_minor)?;
    }

    let mut tax_lines = Vec::with_capacity(groups.len());
    for (rate, base) in groups {
        let bp = i64::from(rate.rate_bp);
        let (taxable, amount) = if tax.prices_include_tax {
            let net = mul_div_round(base, 10_000, 10_000 + bp)?;
            (net, base - net)
        } else {
            (base, mul_div_round(base, bp, 10_000)?)
        };
        tax_lines.push(TaxLine {
            name: rate.name.clone(),
            rate_bp: rate.rate_bp,
            taxable: money(taxable, currency),
            amount: money(amount, currency),
        });
    }
    // Highest rate first, as invoices list them; whatever order the lines came in.
    tax_lines.sort_by(|a, b| b.rate_bp.cmp(&a.rate_bp).then_with(|| a.name.cmp(&b.name)));
    let tax_total = checked_sum(tax_lines.iter().map(|t| t.amount.amount_minor))?;
    let added_tax = if tax.prices_include_tax { 0 } else { tax_total };
    let total = checked_sum([subtotal - discount, shipping_minor, added_tax])?;
    Ok(Totals {
        subtotal: money(subtotal, currency),
        discount: money(discount, currency),
        shipping: money(shipping_minor, currency),
        prices_include_tax: tax.prices_include_tax,
        tax_lines,
        tax_total: money(tax_total, currency),
        total: money(total, currency),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Germany: 19 % standard, 7 % reduced (books, food).
    fn german_vat(prices_include_tax: bool) -> TaxSettings {
        let rate = |class: &str, bp, name: &str| TaxRate {
            country: "DE".into(),
            region: None,
            class: class.into(),
            rate_bp: bp,
            name: name.into(),
        };
        TaxSettings {
            prices_include_tax,
            default_country: Some("DE".into()),
            shipping_tax_class: STANDARD_CLASS.into(),
            rates: vec![
                rate("standard", 1900, "MwSt. 19 %"),
                rate("reduced", 700, "MwSt. 7 %"),
            ],
        }
    }

    fn charge(amount_minor: i64, class: &str) -> Charge {
        Charge {
            amount_minor,
            tax_class: class.into(),
        }
    }

    const DE: Option<TaxPlace<'static>> = Some(TaxPlace {
        country: "DE",
        region: None,
    });

    #[test]
    fn german_vat_inclusive_prices_one_line_per_rate() {
        // A mug at 11.90 (19 %), a book at 10.70 (7 %), shipping 4.90 (taxed as standard).
        let t = order_totals(
            "EUR",
            &[charge(1190, "standard"), charge(1070, "reduced")],
            0,
            Some(&charge(490, "standard")),
            &german_vat(true),
            DE,
        )
        .unwrap();
        assert_eq!(
            t.total.amount_minor, 2750,
            "inclusive: the shopper pays the prices"
        );
        // 16.80 gross at 19 %: net 14.12, VAT 2.68; 10.70 at 7 %: net 10.00, VAT 0.70.
        let lines: Vec<_> = t
            .tax_lines
            .iter()
            .map(|l| {
                (
                    l.name.as_str(),
                    l.taxable.amount_minor,
                    l.amount.amount_minor,
                )
            })
            .collect();
        assert_eq!(lines, [("MwSt. 19 %", 1412, 268), ("MwSt. 7 %", 1000, 70)]);
        assert_eq!(t.tax_total.amount_minor, 338);
    }

    #[test]
    fn german_vat_exclusive_prices_add_the_tax() {
        // Net prices (a B2B shop): 10.00 at 19 % and 10.00 at 7 %, no shipping.
        let t = order_totals(
            "EUR",
            &[charge(1000, "standard"), charge(1000, "reduced")],
            0,
            None,
            &german_vat(false),
            DE,
        )
        .unwrap();
        assert_eq!(t.tax_total.amount_minor, 190 + 70);
        assert_eq!(t.total.amount_minor, 2260);
    }

    #[test]
    fn a_discount_lowers_the_taxed_amount_in_proportion() {
        // 10 % off 11.90 + 10.70 = 2.26, split 1.19 / 1.07.
        let t = order_totals(
            "EUR",
            &[charge(1190, "standard"), charge(1070, "reduced")],
            226,
            None,
            &german_vat(true),
            DE,
        )
        .unwrap();
        assert_eq!(t.total.amount_minor, 2260 - 226);
        let gross: Vec<i64> = t
            .tax_lines
            .iter()
            .map(|l| l.taxable.amount_minor + l.amount.amount_minor)
            .collect();
        assert_eq!(gross, [1071, 963]);
    }

    #[test]
    fn no_place_or_no_rate_means_no_tax() {
        let t = order_totals(
            "EUR",
            &[charge(1000, "standard")],
            0,
            None,
            &german_vat(false),
            None,
        )
        .unwrap();
        assert!(t.tax_lines.is_empty());
        assert_eq!(t.total.amount_minor, 1000);
        let fr = Some(TaxPlace {
            country: "FR",
            region: None,
        });
        let t = order_totals(
            "EUR",
            &[charge(1000, "standard")],
            0,
            None,
            &german_vat(false),
            fr,
        )
        .unwrap();
        assert_eq!(t.total.amount_minor, 1000);
    }

    #[test]
    fn a_region_rate_wins_over_the_country_rate() {
        let mut s = german_vat(false);
        s.rates.push(TaxRate {
            country: "DE".into(),
            region: Some("HL".into()),
            class: "standard".into(),
            rate_bp: 0,
            name: "Heligoland: no VAT".into(),
        });
        s.validate().unwrap();
        assert_eq!(s.rate_for("DE", Some("HL"), "standard").unwrap().rate_bp, 0);
        assert_eq!(
            s.rate_for("DE", Some("BY"), "standard").unwrap().rate_bp,
            1900
        );
        s.rates.push(s.rates[0].clone());
        assert_eq!(s.validate().unwrap_err().field, "rates[3]");
    }

    #[test]
    fn allocation_adds_up_and_favours_the_largest_remainders() {
        assert_eq!(allocate(10, &[10, 10, 10]), [4, 3, 3]);
        assert_eq!(allocate(0, &[5, 5]), [0, 0]);
        assert_eq!(
            allocate(100, &[30, 20]),
            [30, 20],
            "never more than a line's amount"
        );
    }

    /// Lines (amount, reduced rate?), discount, shipping, inclusive prices?, taxed place?
    type ArbOrder = (Vec<(i64, bool)>, i64, Option<(i64, bool)>, bool, bool);

    fn arb_order() -> impl Strategy<Value = ArbOrder> {
        (
            prop::collection::vec((0i64..10_000_000, any::<bool>()), 1..30),
            0i64..50_000_000,
            prop::option::of((0i64..100_000, any::<bool>())),
            any::<bool>(),
            any::<bool>(),
        )
    }

    proptest! {
        /// For random carts, discounts, shipping and both price modes: the parts reconcile with
        /// the total to the minor unit, tax lines add up, and no amount is negative.
        #[test]
        fn totals_reconcile_to_the_minor_unit((lines, discount, shipping, inclusive, taxed) in arb_order()) {
            let class = |reduced: bool| if reduced { "reduced" } else { "standard" };
            let lines: Vec<Charge> = lines.iter().map(|(a, r)| charge(*a, class(*r))).collect();
            let shipping = shipping.map(|(a, r)| charge(a, class(r)));
            let t = order_totals("EUR", &lines, discount, shipping.as_ref(), &german_vat(inclusive), taxed.then_some(DE.unwrap())).unwrap();
            let sum: i64 = lines.iter().map(|l| l.amount_minor).sum();
            prop_assert_eq!(t.subtotal.amount_minor, sum);
            prop_assert!(t.discount.amount_minor >= 0 && t.discount.amount_minor <= sum);
            let added = if inclusive { 0 } else { t.tax_total.amount_minor };
            prop_assert_eq!(
                t.subtotal.amount_minor - t.discount.amount_minor + t.shipping.amount_minor + added,
                t.total.amount_minor
            );
            prop_assert_eq!(t.tax_lines.iter().map(|l| l.amount.amount_minor).sum::<i64>(), t.tax_total.amount_minor);
            // Every taxed minor unit is accounted for: taxable (+ tax when inclusive) is what
            // the shopper pays for goods and shipping.
            let taxed_gross: i64 = t.tax_lines.iter().map(|l| l.taxable.amount_minor + if inclusive { l.amount.amount_minor } else { 0 }).sum();
            if taxed {
                prop_assert_eq!(taxed_gross, sum - t.discount.amount_minor + t.shipping.amount_minor);
            } else {
                prop_assert!(t.tax_lines.is_empty());
            }
            for l in &t.tax_lines {
                prop_assert!(l.amount.amount_minor >= 0 && l.taxable.amount_minor >= 0);
            }
        }

        #[test]
        fn allocation_always_adds_up(total in 0i64..1_000_000_000, weights in prop::collection::vec(0i64..10_000_000, 1..40)) {
            let parts = allocate(total, &weights);
            let sum: i64 = weights.iter().sum();
            prop_assert_eq!(parts.iter().sum::<i64>(), total.min(sum));
            for (p, w) in parts.iter().zip(&weights) {
                prop_assert!(*p >= 0 && p <= w);
            }
        }
    }
}
