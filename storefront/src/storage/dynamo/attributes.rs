//! DynamoDB attribute values and keys as the adapters write and read them: strings, numbers,
//! epoch-second timestamps, the shared key formats, and the error every SDK failure becomes.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    error::{DisplayErrorContext, SdkError},
    types::AttributeValue,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::ports::StoreError;

/// One stored item: attribute name → value.
pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn ddb_err<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> StoreError {
    StoreError::new("dynamodb", DisplayErrorContext(e))
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(super) fn get_n(item: &Item, key: &str) -> Option<i64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// A non-negative counter attribute, 0 when the item or the attribute is missing.
pub(super) fn get_count(item: Option<&Item>, key: &str) -> u64 {
    item.and_then(|i| get_n(i, key))
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(0)
}

pub(super) fn epoch(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub(super) fn from_epoch(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// The partition of a customer's items (its sessions index in the sessions table, its cart
/// pointer in the carts table).
pub(super) fn customer_pk(tenant: &str, customer: Uuid) -> String {
    format!(
        "{}CUSTOMER#{customer}",
        emporium_tenant_config::item_key_prefix(tenant)
    )
}
