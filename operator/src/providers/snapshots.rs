//! Where the offboarding export of a pooled tenant goes: objects in an S3 bucket (any
//! S3-compatible endpoint through `AWS_ENDPOINT_URL`, moto in tests). One export is a
//! directory `<prefix>/<storefront>/<tenant id>/` of JSON-lines parts, one set per PostgreSQL
//! table and DynamoDB table, and a `manifest.json` written last: an export with a manifest is
//! complete, one without is redone from the start.

use aws_config::SdkConfig;
use aws_sdk_s3::{Client, primitives::ByteStream};

use super::{
    ProviderError,
    aws::{AwsApi, retry_config, sdk_error},
};

/// Operator-level settings of the snapshot store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSettings {
    /// The bucket exports are written to; it must exist (the operator never creates or
    /// deletes it: retention and encryption are the platform's).
    pub bucket: String,
    /// Key prefix of every export.
    pub prefix: String,
    pub max_attempts: u32,
}

/// The S3 bucket offboarding exports go to.
pub struct SnapshotStore {
    client: Client,
    api: AwsApi,
    settings: SnapshotSettings,
}

impl SnapshotStore {
    pub fn new(sdk: &SdkConfig, settings: SnapshotSettings) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .retry_config(retry_config(settings.max_attempts))
            // Path-style addressing works with every S3-compatible endpoint (moto included).
            .force_path_style(true)
            .build();
        Self {
            client: Client::from_conf(config),
            api: AwsApi::new(sdk, "S3", "S3"),
            settings,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    /// The key of `file` in the export of tenant `tenant_id` (Storefront `name`).
    pub fn key(&self, name: &str, tenant_id: &str, file: &str) -> String {
        let prefix = self.settings.prefix.trim_end_matches('/');
        if prefix.is_empty() {
            format!("{name}/{tenant_id}/{file}")
        } else {
            format!("{prefix}/{name}/{tenant_id}/{file}")
        }
    }

    /// Writes (or overwrites) one object.
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ProviderError> {
        self.client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| sdk_error(&self.api, "PutObject", &self.location(key), e))?;
        Ok(())
    }

    /// Whether the object exists.
    pub async fn exists(&self, key: &str) -> Result<bool, ProviderError> {
        match self
            .client
            .head_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
            Err(e) => Err(sdk_error(&self.api, "HeadObject", &self.location(key), e)),
        }
    }

    /// `s3://bucket/key`, for messages.
    pub fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.settings.bucket)
    }
}
