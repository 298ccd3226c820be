//! Import and export files: Shopify's product CSV (its column names where the catalog has the
//! field; see `docs/merchant-guide.md`) and JSON lines, read into [`Entry`]s (one per product,
//! in file order) and written back from products, so an export imports as the same catalog.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{
    domain::{Invalid, catalog::Variant, inventory::check_stock, pricing::Money},
    pages::admin::{parse_price, price_input},
    storage::imports::RowError,
};

/// How an import file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "jsonl" => Some(Format::Jsonl),
            _ => None,
        }
    }

    /// The format a media type names (`text/csv`, `application/x-ndjson`, ...).
    pub fn of_media_type(mime: &str) -> Option<Format> {
        match mime {
            "text/csv" | "application/csv" => Some(Format::Csv),
            "application/x-ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines" => Some(Format::Jsonl),
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Jsonl => "application/x-ndjson",
        }
    }
}

/// The CSV columns the import reads (`OptionN Name` / `OptionN Value` besides).
pub const HANDLE: &str = "Handle";
pub const TITLE: &str = "Title";
pub const BODY: &str = "Body (HTML)";
pub const TYPE: &str = "Type";
/// Not Shopify's: the ids of every category the product is listed in, comma-separated.
pub const CATEGORIES: &str = "Categories";
pub const SKU: &str = "Variant SKU";
pub const PRICE: &str = "Variant Price";
/// Not Shopify's (a Shopify store has one currency): the price's ISO 4217 code.
pub const CURRENCY: &str = "Variant Currency";
pub const GRAMS: &str = "Variant Grams";
pub const QTY: &str = "Variant Inventory Qty";
pub const SHIPPING: &str = "Variant Requires Shipping";
pub const TAX: &str = "Variant Tax Code";
pub const VARIANT_IMAGE: &str = "Variant Image";
pub const IMAGE: &str = "Image Src";
const KNOWN: [&str; 14] = [
    HANDLE,
    TITLE,
    BODY,
    TYPE,
    CATEGORIES,
    SKU,
    PRICE,
    CURRENCY,
    GRAMS,
    QTY,
    SHIPPING,
    TAX,
    VARIANT_IMAGE,
    IMAGE,
];
/// Options (variant attributes) a CSV row may carry: Shopify has 3; the catalog allows 20.
pub const MAX_OPTIONS: usize = 20;
/// Rows an import file may hold.
pub const MAX_ROWS: usize = 500_000;

/// Why a file cannot be imported at all (rather than some of its rows).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileError {
    #[error("the file holds no rows")]
    Empty,
    #[error("line {line} is not UTF-8 text; save the file as UTF-8")]
    NotUtf8 { line: u64 },
    #[error("the header lacks the `{0}` column (Shopify product CSV column names)")]
    MissingColumn(&'static str),
    #[error("the header names `{0}` twice")]
    DuplicateColumn(String),
    #[error("the file holds more than {MAX_ROWS} rows; split it")]
    TooManyRows,
    #[error("line {line} cannot be read as CSV: {message}")]
    Csv { line: u64, message: String },
}

/// A variant as an import file gives it.
#[derive(Debug, Clone)]
pub struct ImportVariant {
    pub variant: Variant,
    /// Units to set as available (`None`: leave the stock as it is).
    pub inventory: Option<i32>,
    /// The line the variant is on.
    pub row: u32,
}

/// A product as an import file gives it, before it is checked against the catalog.
#[derive(Debug, Clone)]
pub struct ImportProduct {
    pub handle: String,
    pub title: String,
    pub description: String,
    pub categories: Vec<String>,
    /// Names for categories the import creates if missing (CSV `Type`).
    pub category_names: HashMap<String, String>,
    pub variants: Vec<ImportVariant>,
    /// The product's first line.
    pub row: u32,
}

/// One product of the file (all its rows): readable, or the first error in its rows.
#[derive(Debug, Clone)]
pub struct Entry {
    pub rows: u32,
    pub product: Result<ImportProduct, RowError>,
}

/// A file read into entries.
#[derive(Debug)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    pub rows_total: u32,
    pub ignored_columns: Vec<String>,
}

fn row_error(row: u32, field: impl Into<String>, message: impl Into<String>) -> RowError {
    RowError {
        row,
        field: field.into(),
        message: message.into(),
    }
}

/// Reads a whole file. Deterministic: the same bytes give the same entries in the same order,
/// which is what a resumed job's checkpoint counts.
pub fn parse(
    format: Format,
    body: &[u8],
    default_currency: Option<&str>,
) -> Result<Parsed, FileError> {
    match format {
        Format::Csv => parse_csv(body, default_currency),
        Format::Jsonl => parse_jsonl(body),
    }
}

/// A category id from a `Type` name: lower-case letters, digits and dashes.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    trimmed.chars().take(64).collect::<String>()
}

fn check_handle(row: u32, field: &str, handle: &str) -> Result<(), RowError> {
    if handle.is_empty() {
        return Err(row_error(row, field, "required: the product's handle"));
    }
    if handle.len() > 255 || handle.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(row_error(
            row,
            field,
            "must be 1-255 characters without spaces (such as `blue-mug`)",
        ));
    }
    Ok(())
}

/// One CSV row's cells by column name.
struct Cells<'a> {
    index: &'a HashMap<String, usize>,
    record: &'a csv::StringRecord,
}

impl<'a> Cells<'a> {
    /// The cell as written ("" when the column is absent).
    fn raw(&self, name: &str) -> &'a str {
        self.index
            .get(name)
            .and_then(|&i| self.record.get(i))
            .unwrap_or("")
    }

    /// The cell without surrounding spaces.
    fn get(&self, name: &str) -> &'a str {
        self.raw(name).trim()
    }
}

/// A product being read from its CSV rows.
struct Building {
    rows: u32,
    error: Option<RowError>,
    product: ImportProduct,
    option_names: Vec<String>,
    /// Images on rows before the product's first variant.
    pending_images: Vec<String>,
}

fn truthy(row: u32, field: &str, text: &str) -> Result<bool, RowError> {
    match text.to_ascii_lowercase().as_str() {
        "" | "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(row_error(row, field, "must be TRUE or FALSE")),
    }
}

fn push_image(images: &mut Vec<String>, url: &str) {
    if !url.is_empty() && !images.iter().any(|i| i == url) {
        images.push(url.to_owned());
    }
}

fn parse_csv(body: &[u8], default_currency: Option<&str>) -> Result<Parsed, FileError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(body);
    let headers = reader
        .byte_headers()
        .map_err(|e| FileError::Csv {
            line: 1,
            message: e.to_string(),
        })?
        .clone();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut ignored = Vec::new();
    for (i, raw) in headers.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .map_err(|_| FileError::NotUtf8 { line: 1 })?
            .trim()
            .to_owned();
        let is_option = name
            .strip_prefix("Option")
            .and_then(|r| r.strip_suffix(" Name").or_else(|| r.strip_suffix(" Value")))
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| (1..=MAX_OPTIONS).contains(&n));
        if !(KNOWN.contains(&name.as_str()) || is_option) {
            if !name.is_empty() {
                ignored.push(name);
            }
            continue;
        }
        if index.insert(name.clone(), i).is_some() {
            return Err(FileError::DuplicateColumn(name));
        }
    }
    for required in [HANDLE, TITLE, SKU, PRICE] {
        if !index.contains_key(required) {
            return Err(FileError::MissingColumn(required));
        }
    }
    let options: usize = (1..=MAX_OPTIONS)
        .filter(|n| index.contains_key(&format!("Option{n} Value")))
        .max()
        .unwrap_or(0);

    let mut building: Vec<Building> = Vec::new();
    let mut by_handle: HashMap<String, usize> = HashMap::new();
    let mut rows_total: u32 = 0;
    let mut bad_rows: Vec<(usize, RowError)> = Vec::new();
    for record in reader.byte_records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(FileError::Csv {
                    line,
                    message: e.to_string(),
                });
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let row = u32::try_from(line).unwrap_or(u32::MAX);
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        rows_total += 1;
        if rows_total as usize > MAX_ROWS {
            return Err(FileError::TooManyRows);
        }
        let record =
            csv::StringRecord::from_byte_record(record).map_err(|_| FileError::NotUtf8 { line })?;
        let cells = Cells {
            index: &index,
            record: &record,
        };
        let get = |name: &str| cells.get(name);
        let raw = |name: &str| cells.raw(name);
        let handle = get(HANDLE).to_owned();
        if let Err(e) = check_handle(row, HANDLE, &handle) {
            bad_rows.push((building.len(), e));
            continue;
        }
        let at = match by_handle.get(&handle) {
            Some(&at) => at,
            None => {
                by_handle.insert(handle.clone(), building.len());
                let mut b = Building {
                    rows: 0,
                    error: None,
                    product: ImportProduct {
                        handle: handle.clone(),
                        title: get(TITLE).to_owned(),
                        description: raw(BODY).to_owned(),
                        categories: Vec::new(),
                        category_names: HashMap::new(),
                        variants: Vec::new(),
                        row,
                    },
                    option_names: (1..=options)
                        .map(|n| get(&format!("Option{n} Name")).to_owned())
                        .collect(),
                    pending_images: Vec::new(),
                };
                if b.product.title.is_empty() {
                    b.error = Some(row_error(
                        row,
                        TITLE,
                        "required on the first row of a product",
                    ));
                }
                let type_name = get(TYPE);
                let listed: Vec<String> = get(CATEGORIES)
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect();
                if !listed.is_empty() {
                    if !type_name.is_empty() {
                        b.product
                            .category_names
                            .insert(listed[0].clone(), type_name.to_owned());
                    }
                    b.product.categories = listed;
                } else if !type_name.is_empty() {
                    let id = slug(type_name);
                    if id.is_empty() {
                        b.error.get_or_insert(row_error(
                            row,
                            TYPE,
                            "needs at least one letter or digit",
                        ));
                    } else {
                        b.product
                            .category_names
                            .insert(id.clone(), type_name.to_owned());
                        b.product.categories = vec![id];
                    }
                }
                building.push(b);
                building.len() - 1
            }
        };
        let b = &mut building[at];
        b.rows += 1;
        if b.error.is_some() {
            continue;
        }
        if let Err(e) = csv_row(b, row, &cells, options, default_currency) {
            b.error = Some(e);
        }
    }
    // Rows without a usable handle are entries of their own, placed where they were read.
    let mut entries: Vec<Entry> = Vec::with_capacity(building.len() + bad_rows.len());
    let mut bad = bad_rows.into_iter().peekable();
    for (i, b) in building.into_iter().enumerate() {
        while let Some((_, e)) = bad.next_if(|(before, _)| *before <= i) {
            entries.push(Entry {
                rows: 1,
                product: Err(e),
            });
        }
        let product = match b.error {
            Some(e) => Err(e),
            None if b.product.variants.is_empty() => Err(row_error(
                b.product.row,
                SKU,
                "a product needs at least one row with a Variant SKU",
            )),
            None => Ok(b.product),
        };
        entries.push(Entry {
            rows: b.rows,
            product,
        });
    }
    entries.extend(bad.map(|(_, e)| Entry {
        rows: 1,
        product: Err(e),
    }));
    if rows_total == 0 {
        return Err(FileError::Empty);
    }
    Ok(Parsed {
        entries,
        rows_total,
        ignored_columns: ignored,
    })
}

/// Adds one CSV row to its product: a variant (a row with a SKU), or an image (a row with only
/// `Image Src`: it goes to the variant before it).
fn csv_row(
    b: &mut Building,
    row: u32,
    cells: &Cells<'_>,
    options: usize,
    default_currency: Option<&str>,
) -> Result<(), RowError> {
    let get = |name: &str| cells.get(name);
    let sku = get(SKU);
    if sku.is_empty() {
        if !get(PRICE).is_empty() || !get(QTY).is_empty() {
            return Err(row_error(row, SKU, "required on a row with a variant"));
        }
        let image = get(IMAGE);
        match b.product.variants.last_mut() {
            Some(v) => push_image(&mut v.variant.images, image),
            None => push_image(&mut b.pending_images, image),
        }
        return Ok(());
    }
    let currency = match get(CURRENCY) {
        "" => b
            .product
            .variants
            .first()
            .map(|v| v.variant.price.currency.clone())
            .or_else(|| default_currency.map(str::to_owned))
            .ok_or_else(|| {
                row_error(
                    row,
                    CURRENCY,
                    "required while the catalog has no prices to take a currency from (such as EUR)",
                )
            })?,
        c => c.to_ascii_uppercase(),
    };
    let amount_minor = parse_price(PRICE, get(PRICE), &currency).map_err(|e| at(row, PRICE, e))?;
    let weight_grams = match get(GRAMS) {
        "" => 0,
        g => g
            .parse::<f64>()
            .ok()
            .filter(|g| g.is_finite() && *g >= 0.0 && *g <= f64::from(u32::MAX))
            .map(|g| g.round() as u32)
            .ok_or_else(|| row_error(row, GRAMS, "must be a weight in grams such as 250"))?,
    };
    let inventory = match get(QTY) {
        "" => None,
        q => {
            let n: i64 = q
                .parse()
                .map_err(|_| row_error(row, QTY, "must be a whole number of units"))?;
            Some(check_stock(n).map_err(|e| at(row, QTY, e))?)
        }
    };
    let requires_shipping = truthy(row, SHIPPING, get(SHIPPING))?;
    let tax_class = Some(get(TAX)).filter(|t| !t.is_empty()).map(str::to_owned);
    let mut attributes = BTreeMap::new();
    for n in 1..=options {
        let value = get(&format!("Option{n} Value"));
        if value.is_empty() {
            continue;
        }
        let name = match get(&format!("Option{n} Name")) {
            "" => b.option_names.get(n - 1).map(String::as_str).unwrap_or(""),
            name => name,
        };
        if name.is_empty() {
            return Err(row_error(
                row,
                format!("Option{n} Name"),
                "a value needs its option's name (on this row or the product's first)",
            ));
        }
        // Shopify's placeholder for a product without options.
        if name == "Title" && value == "Default Title" {
            continue;
        }
        attributes.insert(name.to_owned(), value.to_owned());
    }
    let mut images = Vec::new();
    if b.product.variants.is_empty() {
        images.append(&mut b.pending_images);
    }
    push_image(&mut images, get(VARIANT_IMAGE));
    push_image(&mut images, get(IMAGE));
    b.product.variants.push(ImportVariant {
        variant: Variant {
            sku: sku.to_owned(),
            price: Money {
                amount_minor,
                currency,
            },
            attributes,
            images,
            weight_grams,
            requires_shipping,
            tax_class,
        },
        inventory,
        row,
    });
    Ok(())
}

fn at(row: u32, column: &str, e: Invalid) -> RowError {
    row_error(row, column, e.message)
}

/// A product line of a JSON lines file (and of a JSON lines export).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonProduct {
    pub handle: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub categories: Vec<String>,
    pub variants: Vec<JsonVariant>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JsonVariant {
    #[serde(flatten)]
    pub variant: Variant,
    /// Units available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<i64>,
}

fn parse_jsonl(body: &[u8]) -> Result<Parsed, FileError> {
    let mut entries = Vec::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut rows_total = 0u32;
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = std::str::from_utf8(line).map_err(|_| FileError::NotUtf8 {
            line: u64::from(row),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        rows_total += 1;
        if rows_total as usize > MAX_ROWS {
            return Err(FileError::TooManyRows);
        }
        let product = json_line(row, line, &mut seen);
        entries.push(Entry { rows: 1, product });
    }
    if rows_total == 0 {
        return Err(FileError::Empty);
    }
    Ok(Parsed {
        entries,
        rows_total,
        ignored_columns: Vec::new(),
    })
}

fn json_line(
    row: u32,
    line: &str,
    seen: &mut HashMap<String, u32>,
) -> Result<ImportProduct, RowError> {
    let de = &mut serde_json::Deserializer::from_str(line);
    let p: JsonProduct = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if let Some(deeper) = variant_error(line, &path) {
            return row_error(row, deeper.0, deeper.1);
        }
        let field = if path == "." { "line".to_owned() } else { path };
        row_error(row, field, e.into_inner().to_string())
    })?;
    let handle = p.handle.trim().to_owned();
    check_handle(row, "handle", &handle)?;
    if let Some(first) = seen.insert(handle.clone(), row) {
        seen.insert(handle.clone(), first);
        return Err(row_error(
            row,
            "handle",
            format!("`{handle}` is on line {first} already; one line per product"),
        ));
    }
    let mut variants = Vec::with_capacity(p.variants.len());
    for (i, v) in p.variants.into_iter().enumerate() {
        let inventory = match v.inventory {
            None => None,
            Some(n) => Some(
                check_stock(n)
                    .map_err(|e| row_error(row, format!("variants[{i}].inventory"), e.message))?,
            ),
        };
        variants.push(ImportVariant {
            variant: v.variant,
            inventory,
            row,
        });
    }
    Ok(ImportProduct {
        handle,
        title: p.title,
        description: p.description,
        categories: p.categories,
        category_names: HashMap::new(),
        variants,
        row,
    })
}

/// A variant's fields are read through `#[serde(flatten)]`, which reports errors at the
/// variant: read that variant alone to name the field (`variants[0].price`).
fn variant_error(line: &str, path: &str) -> Option<(String, String)> {
    let i: usize = path
        .strip_prefix("variants[")?
        .strip_suffix(']')?
        .parse()
        .ok()?;
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let variant = value.get("variants")?.get(i)?;
    let err = serde_path_to_error::deserialize::<_, Variant>(variant).err()?;
    let inner = err.path().to_string();
    let field = if inner == "." {
        path.to_owned()
    } else {
        format!("{path}.{inner}")
    };
    Some((field, err.into_inner().to_string()))
}

/// The CSV column a validation error of a product draft (`variants[1].price.currency`) is in,
/// and which of the product's variants it is about.
pub fn csv_column(field: &str) -> (Option<usize>, String) {
    if let Some(rest) = field.strip_prefix("variants[") {
        let (idx, tail) = rest.split_once(']').unwrap_or((rest, ""));
        let column = match tail.trim_start_matches('.') {
            t if t.starts_with("sku") || t.is_empty() => SKU.to_owned(),
            t if t.starts_with("price.currency") => CURRENCY.to_owned(),
            t if t.starts_with("price") => PRICE.to_owned(),
            t if t.starts_with("weight_grams") => GRAMS.to_owned(),
            t if t.starts_with("tax_class") => TAX.to_owned(),
            t if t.starts_with("images") => IMAGE.to_owned(),
            t if t.starts_with("attributes") => "Option Value".to_owned(),
            t => t.to_owned(),
        };
        return (idx.parse().ok(), column);
    }
    let column = match field {
        "title" => TITLE,
        "description" => BODY,
        f if f.starts_with("categories") => CATEGORIES,
        "variants" => SKU,
        f => f,
    };
    (None, column.to_owned())
}

/// A product with its stock, as an export writes it.
pub struct ExportProduct<'a> {
    pub product: &'a crate::domain::catalog::Product,
    /// Handle to write (the product's, or its id when it has none).
    pub handle: String,
    /// Name of the product's first category (CSV `Type`).
    pub type_name: Option<&'a str>,
    pub stock: &'a HashMap<String, i32>,
}

/// The CSV header of a product export with `options` option columns.
pub fn csv_header(options: usize) -> Vec<String> {
    let mut h: Vec<String> = [HANDLE, TITLE, BODY, TYPE, CATEGORIES]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for n in 1..=options {
        h.push(format!("Option{n} Name"));
        h.push(format!("Option{n} Value"));
    }
    h.extend(
        [
            SKU,
            PRICE,
            CURRENCY,
            GRAMS,
            QTY,
            SHIPPING,
            TAX,
            VARIANT_IMAGE,
            IMAGE,
        ]
        .iter()
        .map(|s| (*s).to_owned()),
    );
    h
}

/// A product's CSV rows: one per variant (product fields on the first), then one per further
/// image of a variant (`Image Src` only), which the import gives back to that variant.
pub fn csv_rows(p: &ExportProduct<'_>, options: usize) -> Vec<Vec<String>> {
    let width = csv_header(options).len();
    let mut rows = Vec::new();
    for (i, v) in p.product.variants.iter().enumerate() {
        let mut r: Vec<String> = Vec::with_capacity(width);
        r.push(p.handle.clone());
        if i == 0 {
            r.push(p.product.title.clone());
            r.push(p.product.description.clone());
            r.push(p.type_name.unwrap_or("").to_owned());
            r.push(p.product.categories.join(","));
        } else {
            r.extend(std::iter::repeat_n(String::new(), 4));
        }
        let mut attrs = v.attributes.iter();
        for _ in 0..options {
            match attrs.next() {
                Some((k, val)) => {
                    r.push(k.clone());
                    r.push(val.clone());
                }
                None => r.extend([String::new(), String::new()]),
            }
        }
        r.push(v.sku.clone());
        r.push(price_input(v.price.amount_minor, &v.price.currency));
        r.push(v.price.currency.clone());
        r.push(v.weight_grams.to_string());
        r.push(p.stock.get(&v.sku).map(i32::to_string).unwrap_or_default());
        r.push(if v.requires_shipping { "TRUE" } else { "FALSE" }.to_owned());
        r.push(v.tax_class.clone().unwrap_or_default());
        r.push(v.images.first().cloned().unwrap_or_default());
        r.push(String::new());
        rows.push(r);
        for image in v.images.iter().skip(1) {
            let mut extra = vec![String::new(); width];
            extra[0] = p.handle.clone();
            extra[width - 1] = image.clone();
            rows.push(extra);
        }
    }
    rows
}

/// A product's JSON line (without the newline).
pub fn json_line_of(p: &ExportProduct<'_>) -> serde_json::Result<String> {
    serde_json::to_string(&JsonProduct {
        handle: p.handle.clone(),
        title: p.product.title.clone(),
        description: p.product.description.clone(),
        categories: p.product.categories.clone(),
        variants: p
            .product
            .variants
            .iter()
            .map(|v| JsonVariant {
                variant: v.clone(),
                inventory: p.stock.get(&v.sku).map(|n| i64::from(*n)),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "Handle,Title,Body (HTML),Vendor,Type,Option1 Name,Option1 Value,Variant SKU,Variant Price,Variant Inventory Qty,Image Src\n\
        mug,Blue Mug,<p>Nice</p>,Acme,Kitchen Ware,Size,Small,MUG-S,12.50,5,https://img.example.com/m.jpg\n\
        mug,,,,,,Large,MUG-L,14.00,,\n\
        mug,,,,,,,,,,https://img.example.com/m2.jpg\n\
        ,No handle,,,,,,X-1,1.00,,\n\
        cup,Cup,,,,,,CUP-1,abc,,\n";

    #[test]
    fn shopify_rows_become_products_with_variants_and_row_errors() {
        let parsed = parse(Format::Csv, CSV.as_bytes(), Some("EUR")).unwrap();
        assert_eq!(parsed.rows_total, 5);
        assert_eq!(parsed.ignored_columns, vec!["Vendor".to_owned()]);
        assert_eq!(parsed.entries.len(), 3);
        let mug = parsed.entries[0].product.as_ref().unwrap();
        assert_eq!(parsed.entries[0].rows, 3);
        assert_eq!(mug.categories, vec!["kitchen-ware".to_owned()]);
        assert_eq!(mug.category_names["kitchen-ware"], "Kitchen Ware");
        assert_eq!(mug.variants.len(), 2);
        assert_eq!(mug.variants[0].variant.price.amount_minor, 1250);
        assert_eq!(mug.variants[0].inventory, Some(5));
        assert_eq!(mug.variants[1].variant.attributes["Size"], "Large");
        assert_eq!(mug.variants[1].inventory, None);
        assert_eq!(
            mug.variants[1].variant.images,
            vec!["https://img.example.com/m2.jpg".to_owned()]
        );
        let no_handle = parsed.entries[1].product.as_ref().unwrap_err();
        assert_eq!((no_handle.row, no_handle.field.as_str()), (5, HANDLE));
        let cup = parsed.entries[2].product.as_ref().unwrap_err();
        assert_eq!((cup.row, cup.field.as_str()), (6, PRICE));
    }

    #[test]
    fn files_that_cannot_be_imported_say_why() {
        assert_eq!(
            parse(Format::Csv, b"Handle,Title,Variant SKU\n", None).unwrap_err(),
            FileError::MissingColumn(PRICE)
        );
        assert_eq!(
            parse(Format::Jsonl, b"\n \n", None).unwrap_err(),
            FileError::Empty
        );
    }

    #[test]
    fn json_lines_name_the_path_at_fault() {
        let body = b"{\"handle\":\"a\",\"title\":\"A\",\"variants\":[{\"sku\":\"A-1\",\"price\":{\"amount_minor\":100,\"currency\":\"EUR\"},\"inventory\":3}]}\n{\"handle\":\"b\",\"title\":\"B\",\"variants\":[{\"sku\":\"B-1\",\"price\":\"x\"}]}\n{\"handle\":\"a\",\"title\":\"A again\",\"variants\":[]}\n";
        let parsed = parse(Format::Jsonl, body, None).unwrap();
        assert_eq!(
            parsed.entries[0].product.as_ref().unwrap().variants[0].inventory,
            Some(3)
        );
        let b = parsed.entries[1].product.as_ref().unwrap_err();
        assert_eq!((b.row, b.field.as_str()), (2, "variants[0].price"));
        let again = parsed.entries[2].product.as_ref().unwrap_err();
        assert_eq!((again.row, again.field.as_str()), (3, "handle"));
    }

    #[test]
    fn draft_fields_map_to_csv_columns() {
        assert_eq!(
            csv_column("variants[2].price.currency"),
            (Some(2), CURRENCY.into())
        );
        assert_eq!(csv_column("variants[0].sku"), (Some(0), SKU.into()));
        assert_eq!(csv_column("categories[0]"), (None, CATEGORIES.into()));
        assert_eq!(slug("Kitchen & Bath "), "kitchen-bath");
    }
}
