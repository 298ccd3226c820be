//! The merchant's store settings (shipping zones and rates, tax rates, discount codes) and
//! customers' address books: read with defaults, validated by the domain before they are stored.

use serde::{Serialize, de::DeserializeOwned};

use uuid::Uuid;

use crate::domain::{
    Invalid,
    ports::{AddressBookStore, PromotionStore, SettingsStore, StoreError},
    promotions::{Promotion, PromotionDraft, normalise_code},
    shipping::{AddressBook, ShippingSettings},
    totals::TaxSettings,
};

/// The settings document of shipping zones.
pub const SHIPPING: &str = "shipping";
/// The settings document of tax rates.
pub const TAX: &str = "tax";

/// Why settings could not be read or stored.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A settings document, or its default when the merchant never set it.
pub async fn load_settings<T: DeserializeOwned + Default>(
    store: &impl SettingsStore,
    name: &str,
) -> Result<T, StoreError> {
    match store.settings(name).await? {
        None => Ok(T::default()),
        Some(doc) => serde_json::from_value(doc)
            .map_err(|e| StoreError::new("postgres", format!("stored `{name}` settings: {e}"))),
    }
}

fn parse<T: DeserializeOwned + Default>(
    name: &str,
    doc: Option<serde_json::Value>,
) -> Result<T, StoreError> {
    match doc {
        None => Ok(T::default()),
        Some(doc) => serde_json::from_value(doc)
            .map_err(|e| StoreError::new("postgres", format!("stored `{name}` settings: {e}"))),
    }
}

/// Two settings documents in one read (checkout needs shipping and tax together).
pub async fn load_two<A: DeserializeOwned + Default, B: DeserializeOwned + Default>(
    store: &impl SettingsStore,
    a: &str,
    b: &str,
) -> Result<(A, B), StoreError> {
    let mut docs = store.settings_many(&[a, b]).await?;
    Ok((parse(a, docs.remove(a))?, parse(b, docs.remove(b))?))
}

async fn save<T: Serialize>(
    store: &impl SettingsStore,
    name: &str,
    doc: &T,
) -> Result<(), StoreError> {
    let value = serde_json::to_value(doc).map_err(|e| StoreError::new("settings", e))?;
    store.put_settings(name, &value).await
}

/// What store settings need: the tenant's settings store.
pub struct StoreSettings<'a, S> {
    pub store: &'a S,
}

impl<S: SettingsStore> StoreSettings<'_, S> {
    pub async fn shipping(&self) -> Result<ShippingSettings, SettingsError> {
        Ok(load_settings(self.store, SHIPPING).await?)
    }

    pub async fn tax(&self) -> Result<TaxSettings, SettingsError> {
        Ok(load_settings(self.store, TAX).await?)
    }

    /// Replaces the tax settings; the next checkout uses them.
    pub async fn set_tax(&self, settings: TaxSettings) -> Result<TaxSettings, SettingsError> {
        settings.validate()?;
        save(self.store, TAX, &settings).await?;
        Ok(settings)
    }

    /// Replaces the shipping zones; the next checkout uses them.
    pub async fn set_shipping(
        &self,
        settings: ShippingSettings,
    ) -> Result<ShippingSettings, SettingsError> {
        settings.validate()?;
        save(self.store, SHIPPING, &settings).await?;
        Ok(settings)
    }
}

impl<S: AddressBookStore> StoreSettings<'_, S> {
    /// The customer's saved addresses (none yet: an empty book).
    pub async fn address_book(&self, customer: Uuid) -> Result<AddressBook, SettingsError> {
        match self.store.address_book(customer).await? {
            None => Ok(AddressBook::default()),
            Some(doc) => Ok(serde_json::from_value(doc)
                .map_err(|e| StoreError::new("postgres", format!("stored address book: {e}")))?),
        }
    }

    /// Replaces the customer's saved addresses.
    pub async fn set_address_book(
        &self,
        customer: Uuid,
        book: AddressBook,
    ) -> Result<AddressBook, SettingsError> {
        book.validate()?;
        let doc = serde_json::to_value(&book).map_err(|e| StoreError::new("settings", e))?;
        self.store.set_address_book(customer, &doc).await?;
        Ok(book)
    }
}

impl<S: PromotionStore> StoreSettings<'_, S> {
    pub async fn promotions(&self) -> Result<Vec<Promotion>, SettingsError> {
        Ok(self.store.promotions().await?)
    }

    /// Creates or replaces the code (case-insensitive; its use count stays).
    pub async fn set_promotion(
        &self,
        code: &str,
        draft: PromotionDraft,
    ) -> Result<Promotion, SettingsError> {
        let code = normalise_code(code).map_err(|mut i| {
            i.field = "code".into();
            i
        })?;
        draft.validate()?;
        Ok(self.store.put_promotion(&code, &draft).await?)
    }
}
