//! Shipping: addresses, the merchant's zones (countries, optionally regions) with their methods
//! and rates, and what shipping a cart to an address costs. Pure: no clock, no storage.
//!
//! A method's price is `price + per_kg × started kilograms`, and nothing when the order's
//! subtotal reaches `free_over`: that covers flat rates, rates by weight and free shipping over a
//! threshold, alone or together. A store without zones does not ship (collection, or digital
//! goods only): its orders need no address.

use serde::{Deserialize, Serialize};

use super::{
    Invalid, check_len,
    pricing::{Money, PricingError},
};

/// A postal address. `country` is an ISO 3166-1 alpha-2 code, `region` the subdivision part of
/// an ISO 3166-2 code (`BY` for Bavaria in `DE`), where the merchant's zones need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(min_length = 1, max_length = 200)]
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z0-9]{1,3}$")]
    pub region: Option<String>,
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

fn is_code(s: &str, min: usize, max: usize, letters_only: bool) -> bool {
    (min..=max).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || (!letters_only && c.is_ascii_digit()))
}

impl Address {
    pub fn validate(&self, at: &str) -> Result<(), Invalid> {
        check_len(&format!("{at}.name"), self.name.trim(), 1, 200)?;
        check_len(&format!("{at}.line1"), self.line1.trim(), 1, 200)?;
        if let Some(l) = &self.line2 {
            check_len(&format!("{at}.line2"), l, 0, 200)?;
        }
        check_len(&format!("{at}.city"), self.city.trim(), 1, 100)?;
        if let Some(p) = &self.postal_code {
            check_len(&format!("{at}.postal_code"), p.trim(), 1, 20)?;
        }
        if !is_code(&self.country, 2, 2, true) {
            return Err(Invalid::new(
                format!("{at}.country"),
                "must be an ISO 3166-1 alpha-2 code such as DE",
            ));
        }
        if let Some(r) = &self.region
            && !is_code(r, 1, 3, false)
        {
            return Err(Invalid::new(
                format!("{at}.region"),
                "must be the subdivision part of an ISO 3166-2 code, such as BY for DE-BY",
            ));
        }
        if let Some(p) = &self.phone {
            check_len(&format!("{at}.phone"), p.trim(), 3, 40)?;
        }
        Ok(())
    }
}

/// Most addresses a customer keeps.
pub const MAX_SAVED_ADDRESSES: usize = 20;

/// A signed-in customer's saved addresses; the first is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBook {
    pub addresses: Vec<Address>,
}

impl AddressBook {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.addresses.len() > MAX_SAVED_ADDRESSES {
            return Err(Invalid::new(
                "addresses",
                format!("at most {MAX_SAVED_ADDRESSES} addresses"),
            ));
        }
        for (i, a) in self.addresses.iter().enumerate() {
            a.validate(&format!("addresses[{i}]"))?;
        }
        Ok(())
    }
}

/// A way to ship and its rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingMethod {
    /// Unique in the store, e.g. `standard`.
    #[schema(pattern = "^[a-z0-9-]{1,40}$")]
    pub id: String,
    pub name: String,
    /// The base price of a parcel.
    pub price: Money,
    /// Added per started kilogram of the order's weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_kg: Option<Money>,
    /// Shipping is free when the order's subtotal (before discounts) is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_over: Option<Money>,
}

/// Where the merchant ships, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingZone {
    #[schema(pattern = "^[a-z0-9-]{1,40}$")]
    pub id: String,
    pub name: String,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    /// Optional: only these regions of the countries (ISO 3166-2 subdivision part, `BY`). A
    /// zone with regions wins over one without for an address in one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    pub methods: Vec<ShippingMethod>,
}

/// The merchant's shipping settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingSettings {
    pub zones: Vec<ShippingZone>,
}

fn is_id(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl ShippingSettings {
    /// True when the store ships at all (has a zone).
    pub fn ships(&self) -> bool {
        !self.zones.is_empty()
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if self.zones.len() > 100 {
            return Err(Invalid::new("zones", "at most 100 zones"));
        }
        let mut zone_ids = std::collections::HashSet::new();
        let mut method_ids = std::collections::HashSet::new();
        for (i, z) in self.zones.iter().enumerate() {
            let at = format!("zones[{i}]");
            if !is_id(&z.id) || !zone_ids.insert(z.id.as_str()) {
                return Err(Invalid::new(
                    format!("{at}.id"),
                    "must be a unique id of a-z, 0-9 and -",
                ));
            }
            check_len(&format!("{at}.name"), z.name.trim(), 1, 100)?;
            if z.countries.is_empty() {
                return Err(Invalid::new(
                    format!("{at}.countries"),
                    "must name a country",
                ));
            }
            for (j, c) in z.countries.iter().enumerate() {
                if !is_code(c, 2, 2, true) {
                    return Err(Invalid::new(
                        format!("{at}.countries[{j}]"),
                        "must be an ISO 3166-1 alpha-2 code such as DE",
                    ));
                }
            }
            for (j, r) in z.regions.iter().enumerate() {
                if !is_code(r, 1, 3, false) {
                    return Err(Invalid::new(
                        format!("{at}.regions[{j}]"),
                        "must be the subdivision part of an ISO 3166-2 code, such as BY",
                    ));
                }
            }
            if z.methods.is_empty() {
                return Err(Invalid::new(format!("{at}.methods"), "must offer a method"));
            }
            for (k, m) in z.methods.iter().enumerate() {
                let at = format!("{at}.methods[{k}]");
                if !is_id(&m.id) || !method_ids.insert(m.id.as_str()) {
                    return Err(Invalid::new(
                        format!("{at}.id"),
                        "must be an id of a-z, 0-9 and -, unique in the store",
                    ));
                }
                check_len(&format!("{at}.name"), m.name.trim(), 1, 100)?;
                m.price.validate(&format!("{at}.price"))?;
                for (name, extra) in [("per_kg", &m.per_kg), ("free_over", &m.free_over)] {
                    if let Some(x) = extra {
                        x.validate(&format!("{at}.{name}"))?;
                        if x.currency != m.price.currency {
                            return Err(Invalid::new(
                                format!("{at}.{name}.currency"),
                                "must be the method's price currency",
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The zone that ships to `address`: one naming its region first, else one naming its
    /// country without regions.
    pub fn zone_for(&self, address: &Address) -> Option<&ShippingZone> {
        let in_country = |z: &&ShippingZone| z.countries.contains(&address.country);
        self.zones
            .iter()
            .filter(in_country)
            .find(|z| {
                address
                    .region
                    .as_ref()
                    .is_some_and(|r| z.regions.contains(r))
            })
            .or_else(|| {
                self.zones
                    .iter()
                    .filter(in_country)
                    .find(|z| z.regions.is_empty())
            })
    }
}

/// A method offered for a cart, priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShippingOption {
    pub id: String,
    pub name: String,
    pub price: Money,
}

/// What the method costs for an order of `weight_grams` whose subtotal is `subtotal`.
pub fn method_price(
    method: &ShippingMethod,
    weight_grams: u64,
    subtotal: &Money,
) -> Result<Money, PricingError> {
    if method.price.currency != subtotal.currency {
        return Err(PricingError::MixedCurrency(
            method.price.currency.clone(),
            subtotal.currency.clone(),
        ));
    }
    if method
        .free_over
        .as_ref()
        .is_some_and(|f| subtotal.amount_minor >= f.amount_minor)
    {
        return Ok(Money {
            amount_minor: 0,
            currency: subtotal.currency.clone(),
        });
    }
    let kilos = i64::try_from(weight_grams.div_ceil(1000)).map_err(|_| PricingError::Overflow)?;
    let by_weight = match &method.per_kg {
        Some(per) => per
            .amount_minor
            .checked_mul(kilos)
            .ok_or(PricingError::Overflow)?,
        None => 0,
    };
    Ok(Money {
        amount_minor: method
            .price
            .amount_minor
            .checked_add(by_weight)
            .ok_or(PricingError::Overflow)?,
        currency: method.price.currency.clone(),
    })
}

/// The methods that ship to `address`, priced for the order.
pub fn options(
    settings: &ShippingSettings,
    address: &Address,
    weight_grams: u64,
    subtotal: &Money,
) -> Result<Vec<ShippingOption>, PricingError> {
    let Some(zone) = settings.zone_for(address) else {
        return Ok(Vec::new());
    };
    zone.methods
        .iter()
        .map(|m| {
            Ok(ShippingOption {
                id: m.id.clone(),
                name: m.name.clone(),
                price: method_price(m, weight_grams, subtotal)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount_minor: i64) -> Money {
        Money {
            amount_minor,
            currency: "EUR".into(),
        }
    }

    pub(crate) fn address(country: &str, region: Option<&str>) -> Address {
        Address {
            name: "Ann Example".into(),
            line1: "Hauptstr. 1".into(),
            line2: None,
            city: "München".into(),
            postal_code: Some("80331".into()),
            region: region.map(str::to_owned),
            country: country.into(),
            phone: None,
        }
    }

    fn settings() -> ShippingSettings {
        let method =
            |id: &str, price, per_kg: Option<i64>, free_over: Option<i64>| ShippingMethod {
                id: id.into(),
                name: id.into(),
                price: eur(price),
                per_kg: per_kg.map(eur),
                free_over: free_over.map(eur),
            };
        ShippingSettings {
            zones: vec![
                ShippingZone {
                    id: "de".into(),
                    name: "Germany".into(),
                    countries: vec!["DE".into()],
                    regions: vec![],
                    methods: vec![
                        method("standard", 490, None, Some(5000)),
                        method("heavy", 500, Some(150), None),
                    ],
                },
                ShippingZone {
                    id: "islands".into(),
                    name: "Heligoland".into(),
                    countries: vec!["DE".into()],
                    regions: vec!["HL".into()],
                    methods: vec![method("boat", 1500, None, None)],
                },
            ],
        }
    }

    #[test]
    fn flat_by_weight_and_free_over_a_threshold() {
        let s = settings();
        let de = address("DE", Some("BY"));
        let opts = options(&s, &de, 2500, &eur(4999)).unwrap();
        assert_eq!(opts[0].price, eur(490), "flat under the threshold");
        assert_eq!(opts[1].price, eur(500 + 3 * 150), "3 started kilograms");
        let opts = options(&s, &de, 0, &eur(5000)).unwrap();
        assert_eq!(opts[0].price, eur(0), "free from 50 EUR");
    }

    #[test]
    fn a_region_zone_wins_and_unknown_countries_get_nothing() {
        let s = settings();
        let opts = options(&s, &address("DE", Some("HL")), 100, &eur(100)).unwrap();
        assert_eq!(
            opts.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
            ["boat"]
        );
        assert!(
            options(&s, &address("FR", None), 100, &eur(100))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn settings_and_addresses_are_validated_naming_the_field() {
        let mut s = settings();
        s.validate().unwrap();
        s.zones[1].methods[0].id = "standard".into();
        assert_eq!(s.validate().unwrap_err().field, "zones[1].methods[0].id");
        let mut s = settings();
        s.zones[0].countries[0] = "Germany".into();
        assert_eq!(s.validate().unwrap_err().field, "zones[0].countries[0]");
        let mut a = address("de", None);
        assert_eq!(
            a.validate("shipping_address").unwrap_err().field,
            "shipping_address.country"
        );
        a.country = "DE".into();
        a.line1 = " ".into();
        assert_eq!(
            a.validate("shipping_address").unwrap_err().field,
            "shipping_address.line1"
        );
    }
}
