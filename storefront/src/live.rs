//! Live stock: every replica LISTENs on each PostgreSQL database it serves, and fans the stock
//! changes it hears out to per-tenant broadcast channels that SSE streams subscribe to. Since
//! the changes travel through PostgreSQL, a purchase on any replica reaches shoppers on all.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::StreamExt as _;
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use crate::{
    domain::inventory::{StockChange, StockNotice},
    storage::orders::STOCK_CHANNEL,
};

/// Events a slow subscriber may fall behind before its stream ends (it then resumes with
/// `Last-Event-ID`).
const CHANNEL_CAPACITY: usize = 1024;
/// How long a new subscriber waits for the database listener to be up.
const LISTEN_WAIT: Duration = Duration::from_secs(3);

#[derive(Default)]
pub struct StockFeed {
    /// DSN → "LISTEN is active" flag of that database's listener task.
    listeners: Mutex<HashMap<String, watch::Receiver<bool>>>,
    tenants: Mutex<HashMap<String, broadcast::Sender<StockChange>>>,
}

impl StockFeed {
    /// Subscribes to a tenant's stock changes, starting its database's listener if needed, and
    /// waits (briefly) until that listener is active so no change after this call is missed.
    pub async fn subscribe(
        self: &Arc<Self>,
        tenant: &str,
        database_url: &str,
    ) -> broadcast::Receiver<StockChange> {
        let rx = self.sender(tenant).subscribe();
        let mut ready = {
            let mut listeners = self.listeners.lock();
            listeners
                .entry(database_url.to_owned())
                .or_insert_with(|| {
                    let (tx, rx) = watch::channel(false);
                    tokio::spawn(listen(self.clone(), database_url.to_owned(), tx));
                    rx
                })
                .clone()
        };
        if tokio::time::timeout(LISTEN_WAIT, ready.wait_for(|up| *up))
            .await
            .is_err()
        {
            tracing::warn!(tenant, "stock listener not up yet; live updates may lag");
        }
        rx
    }

    fn sender(&self, tenant: &str) -> broadcast::Sender<StockChange> {
        let mut tenants = self.tenants.lock();
        tenants
            .entry(tenant.to_owned())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .clone()
    }

    fn dispatch(&self, payload: &str) {
        let notice: StockNotice = match serde_json::from_str(payload) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable stock notice");
                return;
            }
        };
        let tenants = self.tenants.lock();
        if let Some(tx) = tenants.get(&notice.tenant) {
            // No receivers is fine: nobody is watching this tenant right now.
            let _ = tx.send(notice.change);
        }
    }
}

/// Keeps one LISTEN connection to a database, reconnecting after failures.
async fn listen(feed: Arc<StockFeed>, dsn: String, ready: watch::Sender<bool>) {
    loop {
        if let Err(e) = listen_once(&feed, &dsn, &ready).await {
            // The DSN holds a password: log only the error.
            tracing::warn!(error = %e, "stock listener lost its connection; reconnecting");
        }
        ready.send_replace(false);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_once(
    feed: &StockFeed,
    dsn: &str,
    ready: &watch::Sender<bool>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut conn) = tokio_postgres::connect(dsn, NoTls).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN {STOCK_CHANNEL}"))
        .await?;
    ready.send_replace(true);
    while let Some(n) = rx.recv().await {
        feed.dispatch(n.payload());
    }
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
