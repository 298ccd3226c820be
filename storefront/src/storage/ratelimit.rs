//! Fixed-window counters in Redis, shared by every replica (login attempts per IP and per email).
//!
//! When Redis cannot be reached the limits still hold, per replica: attempts are counted in
//! this process until Redis answers again. A Redis outage therefore loosens the limit by at most
//! the number of replicas, and never turns logins off or lets a brute force through unlimited.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use redis::aio::ConnectionManager;

/// Most windows kept in memory while Redis is away; beyond it expired ones are dropped first,
/// then all (a flood of distinct keys must not grow memory without bound).
const MAX_LOCAL_WINDOWS: usize = 100_000;

pub struct RateLimiter {
    conn: ConnectionManager,
    local: Mutex<LocalWindows>,
    degraded: AtomicBool,
}

impl RateLimiter {
    pub fn new(conn: ConnectionManager) -> Self {
        Self {
            conn,
            local: Mutex::new(LocalWindows::default()),
            degraded: AtomicBool::new(false),
        }
    }

    /// Counts one attempt against `key`; `Err(retry_after_secs)` when it is over `limit` in the
    /// current window of `window_secs`.
    pub async fn hit(&self, key: &str, limit: u32, window_secs: u64) -> Result<(), u64> {
        match self.hit_redis(key, window_secs).await {
            Ok((count, ttl)) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!("redis answers again; login limits are shared by all replicas");
                }
                verdict(count, limit, ttl.max(1) as u64)
            }
            Err(e) => {
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "redis unreachable; counting login attempts in this replica until it answers");
                }
                let (count, left) = self.local.lock().hit(key, window_secs, Instant::now());
                verdict(count, limit, left.as_secs().max(1))
            }
        }
    }

    /// True while attempts are counted in this replica because Redis does not answer.
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    async fn hit_redis(&self, key: &str, window_secs: u64) -> redis::RedisResult<(u64, i64)> {
        let mut conn = self.conn.clone();
        redis::pipe()
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
    }
}

/// This replica's own fixed windows, used while Redis is away.
#[derive(Debug, Default)]
struct LocalWindows {
    windows: HashMap<String, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    count: u64,
    ends: Instant,
}

impl LocalWindows {
    /// Counts one attempt; returns the count in the current window and the time left in it.
    fn hit(&mut self, key: &str, window_secs: u64, now: Instant) -> (u64, Duration) {
        if self.windows.len() >= MAX_LOCAL_WINDOWS && !self.windows.contains_key(key) {
            self.windows.retain(|_, w| w.ends > now);
            if self.windows.len() >= MAX_LOCAL_WINDOWS {
                self.windows.clear();
            }
        }
        let fresh = Window {
            count: 0,
            ends: now + Duration::from_secs(window_secs),
        };
        let window = self.windows.entry(key.to_owned()).or_insert(fresh);
        if window.ends <= now {
            *window = fresh;
        }
        window.count += 1;
        (window.count, window.ends - now)
    }
}

fn verdict(count: u64, limit: u32, retry_after_secs: u64) -> Result<(), u64> {
    if count > u64::from(limit) {
        Err(retry_after_secs)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_windows_count_per_key_and_reset_when_the_window_ends() {
        let mut local = LocalWindows::default();
        let t0 = Instant::now();
        assert_eq!(local.hit("a", 60, t0).0, 1);
        assert_eq!(local.hit("a", 60, t0).0, 2);
        assert_eq!(local.hit("b", 60, t0).0, 1);
        let (count, left) = local.hit("a", 60, t0 + Duration::from_secs(59));
        assert_eq!((count, left), (3, Duration::from_secs(1)));
        assert_eq!(local.hit("a", 60, t0 + Duration::from_secs(60)).0, 1);
        assert_eq!(verdict(5, 5, 1), Ok(()));
        assert_eq!(verdict(6, 5, 7), Err(7));
    }

    #[test]
    fn local_windows_stay_bounded_under_a_flood_of_keys() {
        let mut local = LocalWindows::default();
        let t0 = Instant::now();
        for i in 0..MAX_LOCAL_WINDOWS * 2 {
            local.hit(&format!("k{i}"), 60, t0);
            assert!(local.windows.len() <= MAX_LOCAL_WINDOWS);
        }
    }

    #[test]
    fn expired_windows_are_dropped_before_live_ones() {
        let mut local = LocalWindows::default();
        let t0 = Instant::now();
        local.hit("live", 600, t0);
        for i in 1..MAX_LOCAL_WINDOWS {
            local.hit(&format!("k{i}"), 60, t0);
        }
        assert_eq!(local.windows.len(), MAX_LOCAL_WINDOWS);
        let later = t0 + Duration::from_secs(61);
        local.hit("new", 60, later);
        assert_eq!(local.windows.len(), 2);
        assert_eq!(local.hit("live", 600, later).0, 2);
    }
}
