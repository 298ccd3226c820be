//! Cross-replica notifications over Redis pub/sub: "this tenant's catalog changed" and "this
//! session was revoked". Delivery is best effort; the catalog's staleness bound and the session
//! cache's TTL cap how long a lost message can matter.

use std::sync::Arc;

use futures::StreamExt as _;
use redis::{
    AsyncCommands as _,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use crate::domain::ports::StoreError;

/// Longest wait for Redis to connect or answer one command.
pub const REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Connection attempts at start, a second apart, before the runtime gives up.
const CONNECT_ATTEMPTS: u32 = 10;

const CHANNEL: &str = "emporium:storefront:events";

/// Something another replica must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    CatalogChanged { tenant: String },
    SessionRevoked { tenant: String, token_hash: String },
}

impl Notice {
    fn encode(&self) -> String {
        match self {
            Notice::CatalogChanged { tenant } => format!("catalog\t{tenant}"),
            Notice::SessionRevoked { tenant, token_hash } => {
                format!("session\t{tenant}\t{token_hash}")
            }
        }
    }

    fn decode(raw: &str) -> Option<Self> {
        let mut parts = raw.split('\t');
        match (parts.next()?, parts.next()?, parts.next()) {
            ("catalog", tenant, None) => Some(Notice::CatalogChanged {
                tenant: tenant.to_owned(),
            }),
            ("session", tenant, Some(hash)) => Some(Notice::SessionRevoked {
                tenant: tenant.to_owned(),
                token_hash: hash.to_owned(),
            }),
            _ => None,
        }
    }
}

/// Publishes notices; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    conn: ConnectionManager,
    /// This replica's id, so it ignores its own notices.
    origin: String,
}

/// Called for every notice received, and with `None` after (re)subscribing, when notices may
/// have been missed.
pub type Handler = Arc<dyn Fn(Option<Notice>) + Send + Sync>;

impl Bus {
    pub async fn connect(client: &redis::Client) -> Result<Self, StoreError> {
        // Without timeouts a Redis that stops answering (paused, network partition) would hang
        // every login and publish; with them the callers fall back (see `ratelimit`) within 1 s.
        // No retries inside the manager: its backoff starts at 1 s and multiplies, and every
        // command waits for a reconnection in progress; the next command simply tries again.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(REDIS_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT)
            .set_number_of_retries(0)
            .set_max_delay(1000);
        let mut attempt = 0;
        let conn = loop {
            attempt += 1;
            match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                Ok(conn) => break conn,
                Err(e) if attempt < CONNECT_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "redis not reachable yet; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => return Err(StoreError::new("redis", e)),
            }
        };
        Ok(Self {
            conn,
            origin: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub async fn publish(&self, notice: &Notice) {
        let mut conn = self.conn.clone();
        if let Err(e) = conn
            .publish::<_, _, i64>(CHANNEL, format!("{}\t{}", self.origin, notice.encode()))
            .await
        {
            tracing::warn!(error = %e, "could not publish a notice; other replicas catch up within the staleness bound");
        }
    }

    /// Subscribes until the process ends, reconnecting after errors.
    pub fn subscribe(
        &self,
        client: redis::Client,
        handler: Handler,
    ) -> tokio::task::JoinHandle<()> {
        let own = format!("{}\t", self.origin);
        tokio::spawn(async move {
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => match pubsub.subscribe(CHANNEL).await {
                        Ok(()) => {
                            handler(None);
                            let mut messages = pubsub.on_message();
                            while let Some(msg) = messages.next().await {
                                let Ok(payload) = msg.get_payload::<String>() else {
                                    continue;
                                };
                                if payload.starts_with(&own) {
                                    continue;
                                }
                                let body = payload.split_once('\t').map_or("", |(_, b)| b);
                                if let Some(notice) = Notice::decode(body) {
                                    handler(Some(notice));
                                }
                            }
                            tracing::warn!("redis subscription ended; resubscribing");
                        }
                        Err(e) => tracing::warn!(error = %e, "redis subscribe failed"),
                    },
                    Err(e) => tracing::warn!(error = %e, "redis pubsub connection failed"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip() {
        for n in [
            Notice::CatalogChanged {
                tenant: "acme".into(),
            },
            Notice::SessionRevoked {
                tenant: "acme".into(),
                token_hash: "ab12".into(),
            },
        ] {
            assert_eq!(Notice::decode(&n.encode()), Some(n));
        }
        assert_eq!(Notice::decode("nonsense"), None);
    }
}
