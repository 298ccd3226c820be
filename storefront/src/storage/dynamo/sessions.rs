//! The sessions adapter: one tenant's sign-in sessions, each findable by its token hash and
//! listed under its customer.

use aws_sdk_dynamodb::Client;
use chrono::Utc;
use emporium_tenant_config::item_key_prefix;
use uuid::Uuid;

use super::{
    Table,
    attributes::{customer_pk, ddb_err, epoch, from_epoch, get_n, get_s, n, s},
};
use crate::domain::ports::{Session, SessionStore, StoreError};

/// One tenant's sessions. Each session is two items: the session keyed by its token hash (for
/// lookups) and an index item under the customer (so a password change can end the others).
#[derive(Clone)]
pub struct DynamoSessions {
    pub client: Client,
    pub table: String,
    pub tenant: String,
}

impl DynamoSessions {
    fn items(&self) -> Table<'_> {
        Table::new(&self.client, &self.table)
    }

    fn session_pk(&self, hash: &str) -> String {
        format!("{}SESSION#{hash}", item_key_prefix(&self.tenant))
    }

    fn customer_pk(&self, customer: Uuid) -> String {
        customer_pk(&self.tenant, customer)
    }

    async fn delete_pair(&self, hash: &str, customer: Uuid) -> Result<(), StoreError> {
        for (pk, sk) in [
            (self.session_pk(hash), "SESSION".to_owned()),
            (self.customer_pk(customer), format!("SESSION#{hash}")),
        ] {
            self.items().delete(pk, sk).send().await.map_err(ddb_err)?;
        }
        Ok(())
    }
}

impl SessionStore for DynamoSessions {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let exp = n(epoch(session.expires_at));
        self.items()
            .put(self.session_pk(&session.token_hash), "SESSION")
            .item("customer_id", s(session.customer_id.to_string()))
            .item("expires_at", exp.clone())
            .send()
            .await
            .map_err(ddb_err)?;
        self.items()
            .put(
                self.customer_pk(session.customer_id),
                format!("SESSION#{}", session.token_hash),
            )
            .item("expires_at", exp)
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(())
    }

    async fn get(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let out = self
            .items()
            .get(self.session_pk(token_hash), "SESSION")
            .send()
            .await
            .map_err(ddb_err)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let customer_id = get_s(&item, "customer_id").and_then(|v| Uuid::parse_str(v).ok());
        let expires_at = get_n(&item, "expires_at").map(from_epoch);
        Ok(match (customer_id, expires_at) {
            // DynamoDB deletes expired items lazily (up to days later): check the time here.
            (Some(customer_id), Some(expires_at)) if expires_at > Utc::now() => Some(Session {
                token_hash: token_hash.to_owned(),
                customer_id,
                expires_at,
            }),
            _ => None,
        })
    }

    async fn delete(&self, token_hash: &str, customer_id: Uuid) -> Result<(), StoreError> {
        self.delete_pair(token_hash, customer_id).await
    }

    async fn delete_others(
        &self,
        customer_id: Uuid,
        keep: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let mut hashes = Vec::new();
        self.items()
            .query_each(&self.customer_pk(customer_id), Some("SESSION#"), |item| {
                if let Some(hash) = get_s(&item, "sk").and_then(|sk| sk.strip_prefix("SESSION#")) {
                    hashes.push(hash.to_owned());
                }
            })
            .await?;
        hashes.retain(|h| Some(h.as_str()) != keep);
        for hash in &hashes {
            self.delete_pair(hash, customer_id).await?;
        }
        Ok(hashes)
    }
}
