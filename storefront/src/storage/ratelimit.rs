//! Fixed-window counters in Redis, shared by every replica (login attempts per IP and per email).

use redis::aio::ConnectionManager;

use crate::domain::ports::StoreError;

#[derive(Clone)]
pub struct RateLimiter {
    conn: ConnectionManager,
}

impl RateLimiter {
    pub fn new(conn: ConnectionManager) -> Self {
        Self { conn }
    }

    /// Counts one attempt against `key`; `Err(retry_after_secs)` when it is over `limit` in the
    /// current window of `window_secs`.
    pub async fn hit(
        &self,
        key: &str,
        limit: u32,
        window_secs: u64,
    ) -> Result<Result<(), u64>, StoreError> {
        let mut conn = self.conn.clone();
        let (count, ttl): (u64, i64) = redis::pipe()
            .atomic()
            .incr(key, 1)
            .cmd("EXPIRE")
            .arg(key)
            .arg(window_secs)
            .arg("NX")
            .ignore()
            .ttl(key)
            .query_async(&mut conn)
            .await
            .map_err(|e| StoreError::new("redis", e))?;
        if count > u64::from(limit) {
            return Ok(Err(ttl.max(1) as u64));
        }
        Ok(Ok(()))
    }
}
