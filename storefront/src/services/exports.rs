//! Exports of products, orders and customers as CSV or JSON lines, streamed: a task writes the
//! file in chunks (a few hundred records each) into a small channel the response body reads,
//! so memory stays bounded by the chunk, not the store. Products come from one catalog
//! snapshot (a consistent view) with their stock; orders and customers from PostgreSQL pages
//! by id. No secrets: customers' password hashes, payment references and staff data are never
//! written.

use std::{collections::HashMap, sync::Arc};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::imports::{
    export_handle,
    files::{self, ExportProduct, Format},
};
use crate::{
    catalog::Snapshot,
    domain::{catalog::Product, ports::StoreError},
    pages::admin::price_input,
    storage::{imports::PgImports, orders::PgOrders},
};

/// Records per chunk (and per PostgreSQL page).
const CHUNK: usize = 500;

/// Why an export stopped half-way (the response is cut off; the error is logged).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("export encoding: {0}")]
    Encode(String),
}

type Chunk = Result<Bytes, std::io::Error>;

/// The body stream of an export whose chunks `produce` sends.
fn stream<F, Fut>(what: &'static str, produce: F) -> impl Stream<Item = Chunk> + Send + 'static
where
    F: FnOnce(mpsc::Sender<Chunk>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), ExportError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Chunk>(4);
    let failed = tx.clone();
    tokio::spawn(async move {
        if let Err(e) = produce(tx).await {
            tracing::warn!(export = what, error = %e, "export stopped");
            let _ = failed.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

/// Sends a chunk; false when the client went away (stop producing).
async fn send(tx: &mpsc::Sender<Chunk>, bytes: Vec<u8>) -> bool {
    tx.send(Ok(Bytes::from(bytes))).await.is_ok()
}

fn csv_chunk(rows: &[Vec<String>]) -> Result<Vec<u8>, ExportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(r)
            .map_err(|e| ExportError::Encode(e.to_string()))?;
    }
    w.into_inner()
        .map_err(|e| ExportError::Encode(e.to_string()))
}

/// The tenant's products, oldest first, in `format`; `orders` reads their stock.
pub fn products(
    snap: Arc<Snapshot>,
    orders: PgOrders,
    format: Format,
) -> impl Stream<Item = Chunk> + Send + 'static {
    stream("products", move |tx| async move {
        let catalog = &snap.catalog;
        let names: HashMap<&str, &str> = catalog
            .categories()
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str()))
            .collect();
        let positions: Vec<u32> = catalog.newest().iter().rev().copied().collect();
        let options = if format == Format::Csv {
            positions
                .iter()
                .filter_map(|&p| catalog.item(p))
                .map(|i| {
                    i.product()
                        .variants
                        .iter()
                        .map(|v| v.attributes.len())
                        .max()
                        .unwrap_or(0)
                })
                .max()
                .unwrap_or(0)
                .max(1)
        } else {
            0
        };
        if format == Format::Csv && !send(&tx, csv_chunk(&[files::csv_header(options)])?).await {
            return Ok(());
        }
        for chunk in positions.chunks(CHUNK) {
            let products: Vec<Product> = chunk
                .iter()
                .filter_map(|&p| catalog.item(p).map(|i| i.product()))
                .collect();
            let skus: Vec<String> = products
                .iter()
                .flat_map(|p| p.variants.iter().map(|v| v.sku.clone()))
                .collect();
            let stock = orders.stocks(&skus).await?;
            let mut out = Vec::new();
            let mut rows = Vec::new();
            for p in &products {
                let e = ExportProduct {
                    product: p,
                    handle: export_handle(p),
                    type_name: p
                        .categories
                        .first()
                        .and_then(|c| names.get(c.as_str()).copied()),
                    stock: &stock,
                };
                match format {
                    Format::Csv => rows.extend(files::csv_rows(&e, options)),
                    Format::Jsonl => {
                        out.extend(
                            files::json_line_of(&e)
                                .map_err(|e| ExportError::Encode(e.to_string()))?
                                .into_bytes(),
                        );
                        out.push(b'\n');
                    }
                }
            }
            if format == Format::Csv {
                out = csv_chunk(&rows)?;
            }
            if !send(&tx, out).await {
                return Ok(());
            }
        }
        Ok(())
    })
}

const ORDER_COLUMNS: [&str; 13] = [
    "Order ID",
    "Created At",
    "Status",
    "Email",
    "Customer ID",
    "Currency",
    "Total",
    "Payment Provider",
    "Line SKU",
    "Line Product ID",
    "Line Title",
    "Line Quantity",
    "Line Unit Price",
];

/// The tenant's orders by id, in `format`: CSV has one row per order line (order columns
/// repeated), JSON lines one order per line with its lines.
pub fn orders(jobs: PgImports, format: Format) -> impl Stream<Item = Chunk> + Send + 'static {
    stream("orders", move |tx| async move {
        if format == Format::Csv {
            let header: Vec<String> = ORDER_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
            if !send(&tx, csv_chunk(&[header])?).await {
                return Ok(());
            }
        }
        let mut after: Option<Uuid> = None;
        loop {
            let page = jobs.orders_page(after, CHUNK as i64).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.id);
            let out = match format {
                Format::Jsonl => {
                    let mut out = Vec::new();
                    for o in &page {
                        serde_json::to_writer(&mut out, o)
                            .map_err(|e| ExportError::Encode(e.to_string()))?;
                        out.push(b'\n');
                    }
                    out
                }
                Format::Csv => {
                    let mut rows = Vec::new();
                    for o in &page {
                        let head = vec![
                            o.id.to_string(),
                            o.created_at.to_rfc3339(),
                            o.status.clone(),
                            o.email.clone().unwrap_or_default(),
                            o.customer_id.map(|c| c.to_string()).unwrap_or_default(),
                            o.currency.clone(),
                            price_input(o.total_minor, &o.currency),
                            o.payment_provider.clone(),
                        ];
                        if o.lines.is_empty() {
                            let mut r = head.clone();
                            r.extend(std::iter::repeat_n(String::new(), 5));
                            rows.push(r);
                        }
                        for l in &o.lines {
                            let mut r = head.clone();
                            r.extend([
                                l.sku.clone(),
                                l.product_id.to_string(),
                                l.title.clone(),
                                l.quantity.to_string(),
                                price_input(l.unit_minor, &o.currency),
                            ]);
                            rows.push(r);
                        }
                    }
                    csv_chunk(&rows)?
                }
            };
            if !send(&tx, out).await {
                return Ok(());
            }
        }
    })
}

/// The tenant's customers by id: id, email, name, when they registered.
pub fn customers(jobs: PgImports, format: Format) -> impl Stream<Item = Chunk> + Send + 'static {
    stream("customers", move |tx| async move {
        if format == Format::Csv {
            let header = ["ID", "Email", "Name", "Created At"]
                .map(str::to_owned)
                .to_vec();
            if !send(&tx, csv_chunk(&[header])?).await {
                return Ok(());
            }
        }
        let mut after: Option<Uuid> = None;
        loop {
            let page = jobs.customers_page(after, CHUNK as i64).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.id);
            let out = match format {
                Format::Jsonl => {
                    let mut out = Vec::new();
                    for c in &page {
                        serde_json::to_writer(&mut out, c)
                            .map_err(|e| ExportError::Encode(e.to_string()))?;
                        out.push(b'\n');
                    }
                    out
                }
                Format::Csv => csv_chunk(
                    &page
                        .iter()
                        .map(|c| {
                            vec![
                                c.id.to_string(),
                                c.email.clone(),
                                c.name.clone(),
                                c.created_at.to_rfc3339(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                )?,
            };
            if !send(&tx, out).await {
                return Ok(());
            }
        }
    })
}
