//! Shopper mails: one template per kind, each rendered as a plain-text and an HTML part, in
//! the store's name and theme colour, every sentence from one localisation table ([`text`]).
//! Pure: the dispatcher hands the result to SES.

use maud::{DOCTYPE, Markup, html};

use crate::{
    domain::orders::Order,
    pages::{money, theme::Palette},
};

/// The mails order events send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    OrderConfirmation,
    OrderShipped,
    OrderRefunded,
}

impl Template {
    pub fn as_str(self) -> &'static str {
        match self {
            Template::OrderConfirmation => "order_confirmation",
            Template::OrderShipped => "order_shipped",
            Template::OrderRefunded => "order_refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Template> {
        [
            Template::OrderConfirmation,
            Template::OrderShipped,
            Template::OrderRefunded,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A language mails are written in (`--mail-locale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Locale {
    #[default]
    En,
    De,
}

/// The sentences of every mail, by key and locale: adding a language is adding a column here.
/// `{store}`, `{order}`, `{carrier}`, `{tracking}` and `{amount}` are filled in by [`fill`].
pub fn text(locale: Locale, key: &str) -> &'static str {
    match (key, locale) {
        ("confirmation.subject", Locale::En) => "{store}: your order {order}",
        ("confirmation.subject", Locale::De) => "{store}: Ihre Bestellung {order}",
        ("confirmation.intro", Locale::En) => "Thank you for your order. This is your receipt.",
        ("confirmation.intro", Locale::De) => {
            "Vielen Dank für Ihre Bestellung. Dies ist Ihre Quittung."
        }
        ("shipped.subject", Locale::En) => "{store}: order {order} is on its way",
        ("shipped.subject", Locale::De) => "{store}: Bestellung {order} ist unterwegs",
        ("shipped.intro", Locale::En) => {
            "Your order was handed to {carrier}. Tracking number: {tracking}."
        }
        ("shipped.intro", Locale::De) => {
            "Ihre Bestellung wurde an {carrier} übergeben. Sendungsnummer: {tracking}."
        }
        ("refunded.subject", Locale::En) => "{store}: refund for order {order}",
        ("refunded.subject", Locale::De) => "{store}: Erstattung zu Bestellung {order}",
        ("refunded.intro", Locale::En) => "We refunded {amount} to your original payment method.",
        ("refunded.intro", Locale::De) => {
            "Wir haben {amount} auf Ihr ursprüngliches Zahlungsmittel erstattet."
        }
        ("order", Locale::En) => "Order",
        ("order", Locale::De) => "Bestellung",
        ("item", Locale::En) => "Item",
        ("item", Locale::De) => "Artikel",
        ("quantity", Locale::En) => "Qty",
        ("quantity", Locale::De) => "Menge",
        ("price", Locale::En) => "Price",
        ("price", Locale::De) => "Preis",
        ("subtotal", Locale::En) => "Subtotal",
        ("subtotal", Locale::De) => "Zwischensumme",
        ("discount", Locale::En) => "Discount",
        ("discount", Locale::De) => "Rabatt",
        ("shipping", Locale::En) => "Shipping",
        ("shipping", Locale::De) => "Versand",
        ("tax_included", Locale::En) => "incl.",
        ("tax_included", Locale::De) => "enthalten:",
        ("total", Locale::En) => "Total",
        ("total", Locale::De) => "Gesamt",
        ("refunded_total", Locale::En) => "Refunded so far",
        ("refunded_total", Locale::De) => "Bisher erstattet",
        ("footer", Locale::En) => "You receive this mail because you ordered at {store}.",
        ("footer", Locale::De) => "Sie erhalten diese E-Mail, weil Sie bei {store} bestellt haben.",
        _ => "",
    }
}

/// Replaces each `{name}` in `template` by its value.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_owned(), |s, (k, v)| {
        s.replace(&format!("{{{k}}}"), v)
    })
}

/// The store a mail is sent for.
#[derive(Debug, Clone)]
pub struct Store<'a> {
    pub name: &'a str,
    pub theme_color: Option<&'a str>,
}

/// A mail ready for SES.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The short order number shoppers see (the first 8 characters of its id).
fn order_number(order: &Order) -> String {
    order.id.simple().to_string()[..8].to_uppercase()
}

/// Renders `template` for `order` of `store`.
pub fn render(template: Template, order: &Order, store: &Store<'_>, locale: Locale) -> Mail {
    let t = |k: &str| text(locale, k);
    let number = order_number(order);
    let tracking = order.fulfilment.as_ref();
    let last_refund = order
        .refunds
        .last()
        .map(|r| money(&r.amount))
        .unwrap_or_else(|| money(&order.refunded));
    let values = [
        ("store", store.name),
        ("order", number.as_str()),
        ("carrier", tracking.map_or("", |f| f.carrier.as_str())),
        (
            "tracking",
            tracking.map_or("", |f| f.tracking_number.as_str()),
        ),
        ("amount", last_refund.as_str()),
    ];
    let (subject_key, intro_key) = match template {
        Template::OrderConfirmation => ("confirmation.subject", "confirmation.intro"),
        Template::OrderShipped => ("shipped.subject", "shipped.intro"),
        Template::OrderRefunded => ("refunded.subject", "refunded.intro"),
    };
    let subject = fill(t(subject_key), &values);
    let intro = fill(t(intro_key), &values);
    let footer = fill(t("footer"), &values);
    let rows = summary_rows(order, locale);

    let mut text_part = format!("{}\n\n{intro}\n\n{} {number}\n", store.name, t("order"));
    for l in &order.lines {
        text_part.push_str(&format!(
            "  {} × {}  {}\n",
            l.quantity,
            l.title,
            money(&l.unit_price)
        ));
    }
    text_part.push('\n');
    for (label, value) in &rows {
        text_part.push_str(&format!("{label}: {value}\n"));
    }
    text_part.push_str(&format!("\n{footer}\n"));

    let palette = Palette::for_theme(store.theme_color);
    let html_part = html_mail(
        store,
        &palette,
        &intro,
        &format!("{} {number}", t("order")),
        order,
        &rows,
        &footer,
        locale,
    );
    Mail {
        subject,
        text: text_part,
        html: html_part.into_string(),
    }
}

/// The totals under the lines, as (label, amount): subtotal, discount, shipping, tax, total,
/// and what was refunded.
fn summary_rows(order: &Order, locale: Locale) -> Vec<(String, String)> {
    let t = |k: &str| text(locale, k);
    let mut rows = vec![(t("subtotal").to_owned(), money(&order.subtotal))];
    if order.discount.amount_minor > 0 {
        let label = match &order.discount_code {
            Some(code) => format!("{} ({code})", t("discount")),
            None => t("discount").to_owned(),
        };
        rows.push((label, format!("-{}", money(&order.discount))));
    }
    if let Some(s) = &order.shipping {
        rows.push((format!("{} ({})", t("shipping"), s.name), money(&s.price)));
    }
    for line in &order.tax.lines {
        let rate = format!("{}.{:02}%", line.rate_bp / 100, line.rate_bp % 100);
        let label = if order.tax.prices_include_tax {
            format!("{} {} {rate}", t("tax_included"), line.name)
        } else {
            format!("{} {rate}", line.name)
        };
        rows.push((label, money(&line.amount)));
    }
    rows.push((t("total").to_owned(), money(&order.total)));
    if order.refunded.amount_minor > 0 {
        rows.push((t("refunded_total").to_owned(), money(&order.refunded)));
    }
    rows
}

#[allow(clippy::too_many_arguments)]
fn html_mail(
    store: &Store<'_>,
    palette: &Palette,
    intro: &str,
    heading: &str,
    order: &Order,
    rows: &[(String, String)],
    footer: &str,
    locale: Locale,
) -> Markup {
    let t = |k: &str| text(locale, k);
    let lang = match locale {
        Locale::En => "en",
        Locale::De => "de",
    };
    // Mail clients ignore stylesheets: every style is inline.
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head { meta charset="utf-8"; title { (store.name) } }
            body style="font-family:sans-serif;color:#111827;margin:0" {
                div style=(format!("background:{};color:{};padding:16px;font-size:20px;font-weight:bold", palette.brand.hex(), palette.on_brand.hex())) {
                    (store.name)
                }
                div style="padding:16px" {
                    p { (intro) }
                    h2 style=(format!("color:{}", palette.accent.hex())) { (heading) }
                    table style="border-collapse:collapse;width:100%" {
                        thead { tr {
                            th style="text-align:left" { (t("item")) }
                            th style="text-align:right" { (t("quantity")) }
                            th style="text-align:right" { (t("price")) }
                        } }
                        tbody {
                            @for l in &order.lines {
                                tr {
                                    td { (l.title) " (" (l.sku) ")" }
                                    td style="text-align:right" { (l.quantity) }
                                    td style="text-align:right" { (money(&l.unit_price)) }
                                }
                            }
                        }
                    }
                    table style="border-collapse:collapse;width:100%;margin-top:12px" {
                        @for (label, value) in rows {
                            tr {
                                td { (label) }
                                td style="text-align:right" class="amount" { (value) }
                            }
                        }
                    }
                    p style="color:#6b7280;font-size:12px;margin-top:24px" { (footer) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifications::event::{OrderEventMessage, tests::event_body};

    fn order() -> Order {
        OrderEventMessage::parse(&event_body("order.created", "t", "manual"), "t")
            .expect("event")
            .0
            .order
    }

    #[test]
    fn the_receipt_has_lines_shipping_tax_and_total_in_both_parts() {
        let store = Store {
            name: "Acme <Mugs>",
            theme_color: Some("#0f766e"),
        };
        let mail = render(Template::OrderConfirmation, &order(), &store, Locale::En);
        assert!(mail.subject.starts_with("Acme <Mugs>: your order "));
        for part in [&mail.text, &mail.html] {
            for needle in [
                "Mug",
                "12.50 EUR",
                "Standard",
                "4.90 EUR",
                "VAT",
                "4.78 EUR",
                "29.90 EUR",
            ] {
                assert!(part.contains(needle), "{needle} missing in {part}");
            }
        }
        assert!(mail.text.contains("Total: 29.90 EUR"), "{}", mail.text);
        assert!(mail.html.contains("#0f766e"), "theme colour");
        assert!(
            mail.html.contains("Acme &lt;Mugs&gt;"),
            "escaped store name"
        );
    }

    #[test]
    fn every_key_has_every_language_and_the_shipped_mail_names_the_tracking_number() {
        for key in [
            "confirmation.subject",
            "confirmation.intro",
            "shipped.subject",
            "shipped.intro",
            "refunded.subject",
            "refunded.intro",
            "order",
            "item",
            "quantity",
            "price",
            "subtotal",
            "discount",
            "shipping",
            "tax_included",
            "total",
            "refunded_total",
            "footer",
        ] {
            for locale in [Locale::En, Locale::De] {
                assert!(!text(locale, key).is_empty(), "{key} {locale:?}");
            }
        }
        let store = Store {
            name: "Acme",
            theme_color: None,
        };
        let mail = render(Template::OrderShipped, &order(), &store, Locale::De);
        assert!(
            mail.text.contains("DHL") && mail.text.contains("JD0001"),
            "{}",
            mail.text
        );
        assert!(mail.subject.contains("unterwegs"));
    }
}
