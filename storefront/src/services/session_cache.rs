//! A short-lived in-process cache of validated sessions, so an authenticated request does not
//! cost a DynamoDB read. Bound: a revoked session may be honoured for at most the cache TTL on a
//! replica that missed the revocation notice; normally notices drop it at once.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use parking_lot::Mutex;

use crate::domain::ports::Session;

const MAX_ENTRIES: usize = 100_000;

pub struct SessionCache {
    ttl: Duration,
    entries: Mutex<HashMap<(String, String), (Session, Instant)>>,
}

impl SessionCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    pub fn get(&self, tenant: &str, token_hash: &str) -> Option<Session> {
        let entries = self.entries.lock();
        let (session, cached_at) = entries.get(&(tenant.to_owned(), token_hash.to_owned()))?;
        (cached_at.elapsed() < self.ttl && session.expires_at > chrono::Utc::now())
            .then(|| session.clone())
    }

    pub fn put(&self, tenant: &str, session: Session) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            (tenant.to_owned(), session.token_hash.clone()),
            (session, Instant::now()),
        );
    }

    pub fn revoke(&self, tenant: &str, token_hash: &str) {
        self.entries
            .lock()
            .remove(&(tenant.to_owned(), token_hash.to_owned()));
    }
}
