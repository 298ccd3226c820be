//! The price book: unit prices the cost model multiplies usage by. Operator configuration
//! (the chart's `cost.priceBook` values, mounted as a file and read with `--price-book`),
//! never hard-wired into the estimate: a price change is a values edit, not a release.

use serde::{Deserialize, Serialize};

/// Unit prices in [`PriceBook::currency`], plus the few assumptions the model cannot observe.
/// The defaults are AWS's public on-demand list prices for us-east-1 as of
/// [`PriceBook::taken_on`]; they are list prices, not what any account pays (no free tier,
/// savings plans or negotiated discounts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceBook {
    /// ISO 4217 code of every price here (`USD`).
    pub currency: String,
    /// The AWS region the prices are for.
    pub region: String,
    /// The date (YYYY-MM-DD) the prices were taken from the public price lists.
    pub taken_on: String,
    /// Hours in the billing month the estimate is for (AWS uses 730).
    pub hours_per_month: f64,
    /// Aurora Serverless v2 (Aurora Standard), per ACU-hour.
    pub aurora_acu_hour: f64,
    /// Aurora Standard storage, per GB-month.
    pub aurora_storage_gb_month: f64,
    /// Aurora Standard I/O, per million requests.
    pub aurora_io_per_million: f64,
    /// DynamoDB on-demand, per million read request units.
    pub dynamodb_read_per_million: f64,
    /// DynamoDB on-demand, per million write request units.
    pub dynamodb_write_per_million: f64,
    /// DynamoDB provisioned, per read capacity unit-hour.
    pub dynamodb_rcu_hour: f64,
    /// DynamoDB provisioned, per write capacity unit-hour.
    pub dynamodb_wcu_hour: f64,
    /// DynamoDB Standard table class storage, per GB-month.
    pub dynamodb_storage_gb_month: f64,
    /// Application Load Balancer, per ALB-hour.
    pub alb_hour: f64,
    /// Application Load Balancer, per LCU-hour.
    pub alb_lcu_hour: f64,
    /// ASSUMPTION, not a price: the average LCUs one ALB (one ingress group) consumes. The
    /// operator does not read CloudWatch, so this stands in for the measured figure.
    pub alb_average_lcu: f64,
    /// SQS standard queue, per million requests.
    pub sqs_per_million: f64,
    /// S3 Standard storage, per GB-month.
    pub s3_storage_gb_month: f64,
    /// Pod CPU requests, per vCPU-hour (Fargate Linux/x86 on-demand: a public per-vCPU rate;
    /// EC2 nodes cost what their instance type costs, so override it to your nodes' rate).
    pub vcpu_hour: f64,
    /// Pod memory requests, per GiB-hour (Fargate Linux/x86 on-demand, as above).
    pub memory_gib_hour: f64,
}

impl Default for PriceBook {
    /// Keep in step with `cost.priceBook` in `charts/emporium/values.yaml` (a test compares
    /// them) and the table in `docs/cost.md`.
    fn default() -> Self {
        Self {
            currency: "USD".to_owned(),
            region: "us-east-1".to_owned(),
            taken_on: "2026-12-07".to_owned(),
            hours_per_month: 730.0,
            aurora_acu_hour: 0.12,
            aurora_storage_gb_month: 0.10,
            aurora_io_per_million: 0.20,
            dynamodb_read_per_million: 0.125,
            dynamodb_write_per_million: 0.625,
            dynamodb_rcu_hour: 0.00013,
            dynamodb_wcu_hour: 0.00065,
            dynamodb_storage_gb_month: 0.25,
            alb_hour: 0.0225,
            alb_lcu_hour: 0.008,
            alb_average_lcu: 1.0,
            sqs_per_million: 0.40,
            s3_storage_gb_month: 0.023,
            vcpu_hour: 0.04048,
            memory_gib_hour: 0.004445,
        }
    }
}

/// Why a price book cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PriceBookError {
    #[error(
        "cannot read the price book {path}: {source}; mount the chart's cost ConfigMap there or leave --price-book out for the built-in us-east-1 list prices"
    )]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the price book {path} is not a valid price book: {source}; every field of `cost.priceBook` in the chart's values is required (see docs/cost.md)"
    )]
    Parse {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("the price book {path} is unusable: {problem}")]
    Invalid { path: String, problem: String },
}

impl PriceBook {
    /// Reads a price book from a YAML (or JSON) file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, PriceBookError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PriceBookError::Read {
            path: shown.clone(),
            source,
        })?;
        let book: PriceBook =
            serde_yaml::from_str(&text).map_err(|source| PriceBookError::Parse {
                path: shown.clone(),
                source,
            })?;
        book.check().map_err(|problem| PriceBookError::Invalid {
            path: shown,
            problem,
        })?;
        Ok(book)
    }

    /// Every price finite and not negative, a month of some hours, a date to show.
    pub fn check(&self) -> Result<(), String> {
        let prices = [
            ("hoursPerMonth", self.hours_per_month),
            ("auroraAcuHour", self.aurora_acu_hour),
            ("auroraStorageGbMonth", self.aurora_storage_gb_month),
            ("auroraIoPerMillion", self.aurora_io_per_million),
            ("dynamodbReadPerMillion", self.dynamodb_read_per_million),
            ("dynamodbWritePerMillion", self.dynamodb_write_per_million),
            ("dynamodbRcuHour", self.dynamodb_rcu_hour),
            ("dynamodbWcuHour", self.dynamodb_wcu_hour),
            ("dynamodbStorageGbMonth", self.dynamodb_storage_gb_month),
            ("albHour", self.alb_hour),
            ("albLcuHour", self.alb_lcu_hour),
            ("albAverageLcu", self.alb_average_lcu),
            ("sqsPerMillion", self.sqs_per_million),
            ("s3StorageGbMonth", self.s3_storage_gb_month),
            ("vcpuHour", self.vcpu_hour),
            ("memoryGibHour", self.memory_gib_hour),
        ];
        if let Some((name, value)) = prices.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
            return Err(format!(
                "{name} is {value}; prices must be numbers of at least 0"
            ));
        }
        if self.hours_per_month <= 0.0 {
            return Err("hoursPerMonth must be more than 0 (AWS bills 730)".into());
        }
        if self.taken_on.trim().is_empty() || self.currency.trim().is_empty() {
            return Err(
                "takenOn and currency must be set: the status shows them next to every figure"
                    .into(),
            );
        }
        Ok(())
    }

    /// How the status names the book: `us-east-1 list prices of 2026-12-07`.
    pub fn label(&self) -> String {
        format!("{} list prices of {}", self.region, self.taken_on)
    }
}
