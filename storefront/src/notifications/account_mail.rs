//! Account mails: a password-reset link, an email-verification link, a staff invitation. Like
//! the order mails ([`super::mail`]) each has a plain-text and an HTML part in the store's name
//! and theme colour, every sentence from one localisation table. Pure: [`super::Notifier::send`]
//! hands the result to SES.

use std::{sync::Arc, time::Duration};

use maud::{DOCTYPE, html};

use super::{
    Notifier,
    mail::{Locale, Mail, Store},
};
use crate::{pages::theme::Palette, tenants::TenantRuntime};

/// The account mails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountMail {
    PasswordReset,
    VerifyEmail,
    StaffInvitation,
}

impl AccountMail {
    fn key(self) -> &'static str {
        match self {
            AccountMail::PasswordReset => "reset",
            AccountMail::VerifyEmail => "verify",
            AccountMail::StaffInvitation => "invite",
        }
    }
}

/// The sentences of the account mails, by key and locale. `{store}`, `{minutes}` and `{hours}`
/// are filled in.
pub fn text(locale: Locale, key: &str) -> &'static str {
    match (key, locale) {
        ("reset.subject", Locale::En) => "{store}: reset your password",
        ("reset.subject", Locale::De) => "{store}: Passwort zurücksetzen",
        ("reset.intro", Locale::En) => {
            "Someone asked to reset the password of your account at {store}. Use the link below \
             within {minutes} minutes to choose a new one; it works once. Every device signed in \
             to your account is signed out when you do."
        }
        ("reset.intro", Locale::De) => {
            "Jemand hat verlangt, das Passwort Ihres Kontos bei {store} zurückzusetzen. Über den \
             Link unten wählen Sie innerhalb von {minutes} Minuten ein neues; er funktioniert \
             einmal. Danach sind alle Geräte von Ihrem Konto abgemeldet."
        }
        ("reset.action", Locale::En) => "Choose a new password",
        ("reset.action", Locale::De) => "Neues Passwort wählen",
        ("reset.footer", Locale::En) => {
            "If you did not ask for this, ignore this mail: your password stays as it is."
        }
        ("reset.footer", Locale::De) => {
            "Wenn Sie das nicht waren, ignorieren Sie diese E-Mail: Ihr Passwort bleibt, wie es ist."
        }
        ("verify.subject", Locale::En) => "{store}: confirm your email address",
        ("verify.subject", Locale::De) => "{store}: Bestätigen Sie Ihre E-Mail-Adresse",
        ("verify.intro", Locale::En) => {
            "Please confirm that this address belongs to your account at {store}. The link works \
             once, for {hours} hours."
        }
        ("verify.intro", Locale::De) => {
            "Bitte bestätigen Sie, dass diese Adresse zu Ihrem Konto bei {store} gehört. Der Link \
             funktioniert einmal, {hours} Stunden lang."
        }
        ("verify.action", Locale::En) => "Confirm my email address",
        ("verify.action", Locale::De) => "E-Mail-Adresse bestätigen",
        ("verify.footer", Locale::En) => {
            "If you did not create an account or change your address at {store}, ignore this mail."
        }
        ("verify.footer", Locale::De) => {
            "Wenn Sie bei {store} kein Konto angelegt oder Ihre Adresse nicht geändert haben, \
             ignorieren Sie diese E-Mail."
        }
        ("invite.subject", Locale::En) => "{store}: you are invited to run the store",
        ("invite.subject", Locale::De) => "{store}: Einladung in das Team des Shops",
        ("invite.intro", Locale::En) => {
            "You are invited to the staff of {store}. Use the link below within {hours} hours to \
             choose your name and password; it works once."
        }
        ("invite.intro", Locale::De) => {
            "Sie sind in das Team von {store} eingeladen. Über den Link unten wählen Sie innerhalb \
             von {hours} Stunden Ihren Namen und Ihr Passwort; er funktioniert einmal."
        }
        ("invite.action", Locale::En) => "Accept the invitation",
        ("invite.action", Locale::De) => "Einladung annehmen",
        ("invite.footer", Locale::En) => "If you did not expect this, ignore this mail.",
        ("invite.footer", Locale::De) => {
            "Wenn Sie das nicht erwartet haben, ignorieren Sie diese E-Mail."
        }
        _ => "",
    }
}

fn fill(template: &str, store: &str, valid_for: Duration) -> String {
    let minutes = valid_for.as_secs() / 60;
    template
        .replace("{store}", store)
        .replace("{minutes}", &minutes.to_string())
        .replace("{hours}", &(minutes / 60).to_string())
}

/// Renders `kind` with its single-use `link`, which works for `valid_for`.
pub fn render(
    kind: AccountMail,
    link: &str,
    valid_for: Duration,
    store: &Store<'_>,
    locale: Locale,
) -> Mail {
    let t = |part: &str| {
        fill(
            text(locale, &format!("{}.{part}", kind.key())),
            store.name,
            valid_for,
        )
    };
    let (subject, intro, action, footer) = (t("subject"), t("intro"), t("action"), t("footer"));
    let text_part = format!(
        "{}\n\n{intro}\n\n{action}:\n{link}\n\n{footer}\n",
        store.name
    );
    let palette = Palette::for_theme(store.theme_color);
    let lang = match locale {
        Locale::En => "en",
        Locale::De => "de",
    };
    // Mail clients ignore stylesheets: every style is inline.
    let html_part = html! {
        (DOCTYPE)
        html lang=(lang) {
            head { meta charset="utf-8"; title { (store.name) } }
            body style="font-family:sans-serif;color:#111827;margin:0" {
                div style=(format!("background:{};color:{};padding:16px;font-size:20px;font-weight:bold", palette.brand.hex(), palette.on_brand.hex())) {
                    (store.name)
                }
                div style="padding:16px" {
                    p { (intro) }
                    p {
                        a href=(link) style=(format!("display:inline-block;background:{};color:{};padding:10px 16px;text-decoration:none;border-radius:4px", palette.brand.hex(), palette.on_brand.hex())) { (action) }
                    }
                    p style="font-size:12px;word-break:break-all" { (link) }
                    p style="color:#6b7280;font-size:12px;margin-top:24px" { (footer) }
                }
            }
        }
    };
    Mail {
        subject,
        text: text_part,
        html: html_part.into_string(),
    }
}

/// Sends one tenant's account mails (owned, so a mail can be sent after the request ended).
#[derive(Clone)]
pub struct AccountMailer {
    notifier: Arc<Notifier>,
    tenant: String,
    store_name: String,
    theme_color: Option<String>,
}

impl AccountMailer {
    pub fn new(notifier: Arc<Notifier>, tenant: &TenantRuntime) -> Self {
        Self {
            notifier,
            tenant: tenant.name().to_owned(),
            store_name: tenant.config.display_name.clone(),
            theme_color: tenant.config.theme_color.clone(),
        }
    }

    /// Renders and sends `kind` to `to`. A failure is logged (never the link: it is a
    /// credential) and not retried: the shopper asks for a new link.
    pub async fn send(&self, kind: AccountMail, to: &str, link: &str, valid_for: Duration) {
        let store = Store {
            name: &self.store_name,
            theme_color: self.theme_color.as_deref(),
        };
        let m = render(
            kind,
            link,
            valid_for,
            &store,
            self.notifier.settings.mail_locale,
        );
        if let Err(e) = self.notifier.send(&self.store_name, to, m).await {
            self.notifier.account_mails_failed.inc();
            tracing::warn!(tenant = self.tenant, mail = ?kind, error = %e, "account mail not sent");
        } else {
            self.notifier.account_mails_sent.inc();
        }
    }

    /// [`send`](Self::send) in the background: the caller's answer does not wait for SES.
    pub fn spawn(&self, kind: AccountMail, to: String, link: String, valid_for: Duration) {
        let mailer = self.clone();
        tokio::spawn(async move { mailer.send(kind, &to, &link, valid_for).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mail_has_every_sentence_in_every_language() {
        for kind in [
            AccountMail::PasswordReset,
            AccountMail::VerifyEmail,
            AccountMail::StaffInvitation,
        ] {
            for part in ["subject", "intro", "action", "footer"] {
                for locale in [Locale::En, Locale::De] {
                    let key = format!("{}.{part}", kind.key());
                    assert!(!text(locale, &key).is_empty(), "{key} {locale:?}");
                }
            }
        }
    }

    #[test]
    fn the_reset_mail_carries_the_link_in_both_parts_and_escapes_the_store_name() {
        let store = Store {
            name: "Acme <Mugs>",
            theme_color: Some("#0f766e"),
        };
        let link = "https://acme.example.com/reset-password?token=abc_DEF-123";
        let mail = render(
            AccountMail::PasswordReset,
            link,
            Duration::from_secs(1800),
            &store,
            Locale::En,
        );
        assert_eq!(mail.subject, "Acme <Mugs>: reset your password");
        assert!(mail.text.contains(link) && mail.html.contains(link));
        assert!(mail.text.contains("30 minutes"), "{}", mail.text);
        assert!(mail.html.contains("Acme &lt;Mugs&gt;") && mail.html.contains("#0f766e"));
        let de = render(
            AccountMail::VerifyEmail,
            link,
            Duration::from_secs(48 * 3600),
            &store,
            Locale::De,
        );
        assert!(de.text.contains("48 Stunden"), "{}", de.text);
        assert!(de.subject.contains("Bestätigen"), "{}", de.subject);
    }
}
