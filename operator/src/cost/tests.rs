use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::{
    model::{
        AuroraUsage, Component, ComputeUsage, DynamoUsage, LoadBalancerShare, Source, Throughput,
        Usage, dollars, estimate,
    },
    *,
};

const GIB: f64 = 1_073_741_824.0;

/// The dedicated tenant of `docs/cost.md`'s first worked example.
fn dedicated_example() -> Usage {
    Usage {
        aurora: Some(AuroraUsage {
            acu: 0.5,
            acu_source: Source::Observed,
            sharing: 1,
            storage_gb: 10.0,
            io_millions: 5.0,
        }),
        dynamodb: Some(DynamoUsage {
            throughput: Throughput::OnDemand {
                read_millions: 20.0,
                write_millions: 2.0,
            },
            storage_bytes: 2.0 * GIB,
            storage_source: Source::Observed,
            storage_sharing: 1,
        }),
        load_balancer: Some(LoadBalancerShare {
            tenants_in_group: 50,
        }),
        compute: Some(ComputeUsage {
            replicas: 2.0,
            replicas_source: Source::Observed,
            vcpu_per_replica: 0.25,
            gib_per_replica: 0.5,
            sharing: 1,
        }),
        queue_request_millions: Some(1.0),
        bucket_gb: None,
        notes: Vec::new(),
    }
}

/// The pooled tenant of `docs/cost.md`'s second worked example: one of 200 pooled tenants.
fn pooled_example() -> Usage {
    Usage {
        aurora: Some(AuroraUsage {
            acu: 2.0,
            acu_source: Source::Observed,
            sharing: 200,
            storage_gb: 0.5,
            io_millions: 0.5,
        }),
        dynamodb: Some(DynamoUsage {
            throughput: Throughput::OnDemand {
                read_millions: 2.0,
                write_millions: 0.4,
            },
            storage_bytes: 40.0 * GIB,
            storage_source: Source::Observed,
            storage_sharing: 200,
        }),
        load_balancer: Some(LoadBalancerShare {
            tenants_in_group: 50,
        }),
        compute: Some(ComputeUsage {
            replicas: 4.0,
            replicas_source: Source::Observed,
            vcpu_per_replica: 0.5,
            gib_per_replica: 0.5,
            sharing: 200,
        }),
        queue_request_millions: Some(0.1),
        bucket_gb: None,
        notes: Vec::new(),
    }
}

/// `(component, USD/month)` rows of the worked example `name` in `docs/cost.md`, the total
/// last as `total`.
fn documented(name: &str) -> Vec<(String, String)> {
    let doc = include_str!("../../../docs/cost.md");
    let start = format!("<!-- worked-example: {name} -->");
    let section = doc
        .split_once(&start)
        .and_then(|(_, rest)| rest.split_once("<!-- end worked-example -->"))
        .map(|(section, _)| section)
        .unwrap_or_else(|| panic!("docs/cost.md has no worked example {name}"));
    section
        .lines()
        .filter(|line| line.starts_with('|') && !line.starts_with("| ---"))
        .skip(1) // the header
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let clean = |cell: &str| cell.trim_matches('*').trim().to_owned();
            (
                clean(cells.first().copied().unwrap_or_default()),
                clean(cells.last().copied().unwrap_or_default()),
            )
        })
        .collect()
}

fn computed(usage: &Usage) -> Vec<(String, String)> {
    let estimate = estimate(usage, &PriceBook::default());
    let mut rows: Vec<(String, String)> = estimate
        .lines
        .iter()
        .map(|l| (l.component.as_str().to_owned(), dollars(l.cents)))
        .collect();
    rows.push(("total".to_owned(), dollars(estimate.total_cents())));
    rows
}

#[test]
fn the_dedicated_worked_example_of_the_docs_is_what_the_model_computes() {
    let rows = computed(&dedicated_example());
    assert_eq!(documented("dedicated"), rows);
    assert_eq!(rows.last().map(|r| r.1.as_str()), Some("68.92"));
}

#[test]
fn the_pooled_worked_example_of_the_docs_is_what_the_model_computes() {
    let rows = computed(&pooled_example());
    assert_eq!(documented("pooled"), rows);
    assert_eq!(rows.last().map(|r| r.1.as_str()), Some("2.40"));
}

#[test]
fn the_chart_values_carry_the_built_in_price_book() {
    let values: serde_yaml::Value =
        serde_yaml::from_str(include_str!("../../../charts/emporium/values.yaml"))
            .expect("values.yaml is YAML");
    let book: PriceBook = serde_yaml::from_value(values["cost"]["priceBook"].clone())
        .expect("cost.priceBook is a complete price book");
    assert_eq!(book, PriceBook::default());
    assert_eq!(book.check(), Ok(()));
}

#[test]
fn the_breakdown_lists_every_component_and_adds_up() {
    let estimate = estimate(&dedicated_example(), &PriceBook::default());
    let components: Vec<Component> = estimate.lines.iter().map(|l| l.component).collect();
    assert_eq!(components, Component::ALL);
    let status = to_status(
        &estimate,
        &PriceBook::default(),
        "2026-12-07T00:00:00Z",
        false,
    );
    let sum: i64 = status
        .breakdown
        .iter()
        .map(|l| {
            let (whole, cents) = l.monthly.split_once('.').expect("a decimal");
            whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
        })
        .sum();
    assert_eq!(dollars(sum), status.monthly_estimate);
    assert_eq!(status.currency, "USD");
    assert_eq!(status.price_book, "us-east-1 list prices of 2026-12-07");
    let aurora = &status.breakdown[0];
    assert_eq!(aurora.basis, "0.5 ACU × 730 h × $0.12/ACU-h");
    assert_eq!(aurora.source, "Observed");
}

#[test]
fn a_tenant_without_aws_data_costs_its_pods_and_its_load_balancer_share() {
    let usage = Usage {
        aurora: None,
        dynamodb: None,
        queue_request_millions: None,
        ..dedicated_example()
    };
    let estimate = estimate(&usage, &PriceBook::default());
    assert_eq!(dollars(estimate.total_cents()), "18.47");
    let aurora = estimate.line(Component::AuroraCapacity).unwrap();
    assert_eq!((aurora.cents, aurora.source), (0, Source::NotUsed));
    assert!(aurora.basis.contains("not aurora"), "{}", aurora.basis);
}

#[test]
fn an_unreadable_figure_counts_zero_and_says_why() {
    let mut usage = dedicated_example();
    if let Some(d) = usage.dynamodb.as_mut() {
        d.storage_source = Source::Unavailable;
    }
    usage.notes.push((
        Component::DynamodbStorage,
        "DescribeTable failed: throttled".into(),
    ));
    let estimate = estimate(&usage, &PriceBook::default());
    let line = estimate.line(Component::DynamodbStorage).unwrap();
    assert_eq!((line.cents, line.source), (0, Source::Unavailable));
    assert!(
        line.basis.ends_with("(DescribeTable failed: throttled)"),
        "{}",
        line.basis
    );
    assert_eq!(dollars(estimate.total_cents()), "68.42");
}

#[test]
fn provisioned_tables_are_priced_per_capacity_unit_hour() {
    let mut usage = dedicated_example();
    if let Some(d) = usage.dynamodb.as_mut() {
        d.throughput = Throughput::Provisioned {
            rcu: 5.0,
            wcu: 5.0,
            tables: 3,
        };
    }
    let line = estimate(&usage, &PriceBook::default())
        .line(Component::DynamodbRequests)
        .cloned()
        .unwrap();
    // 3 × 730 × (5 × 0.00013 + 5 × 0.00065) = 8.541
    assert_eq!(line.cents, 854);
}

#[test]
fn cents_print_as_decimal_strings() {
    assert_eq!(dollars(0), "0.00");
    assert_eq!(dollars(5), "0.05");
    assert_eq!(dollars(4380), "43.80");
    assert_eq!(dollars(-120), "-1.20");
}

#[test]
fn an_estimate_is_recomputed_only_when_due() {
    let prices = PriceBook::default();
    let hour = Duration::from_secs(3600);
    let at = |text: &str| text.parse::<Timestamp>().unwrap();
    let made = to_status(
        &estimate(&dedicated_example(), &prices),
        &prices,
        "2026-12-07T10:00:00Z",
        false,
    );
    assert!(due(None, &prices, at("2026-12-07T10:00:00Z"), hour, false));
    assert!(!due(
        Some(&made),
        &prices,
        at("2026-12-07T10:59:59Z"),
        hour,
        false
    ));
    assert!(due(
        Some(&made),
        &prices,
        at("2026-12-07T11:00:00Z"),
        hour,
        false
    ));
    // A clock that went backwards, an unreadable time or another price book: recompute.
    assert!(due(
        Some(&made),
        &prices,
        at("2026-12-07T09:00:00Z"),
        hour,
        false
    ));
    let garbled = CostStatus {
        computed_at: "yesterday".into(),
        ..made.clone()
    };
    assert!(due(
        Some(&garbled),
        &prices,
        at("2026-12-07T10:00:01Z"),
        hour,
        false
    ));
    let newer = PriceBook {
        taken_on: "2027-01-01".into(),
        ..prices.clone()
    };
    assert!(due(
        Some(&made),
        &newer,
        at("2026-12-07T10:00:01Z"),
        hour,
        false
    ));
    // While the data is provisioned: at most every minute; once it is ready: at once.
    let early = CostStatus {
        provisional: true,
        ..made.clone()
    };
    assert!(!due(
        Some(&early),
        &prices,
        at("2026-12-07T10:00:59Z"),
        hour,
        true
    ));
    assert!(due(
        Some(&early),
        &prices,
        at("2026-12-07T10:01:00Z"),
        hour,
        true
    ));
    assert!(due(
        Some(&early),
        &prices,
        at("2026-12-07T10:00:01Z"),
        hour,
        false
    ));
}

#[test]
fn a_price_book_with_a_negative_price_or_a_missing_field_is_refused() {
    let bad = PriceBook {
        alb_hour: -1.0,
        ..PriceBook::default()
    };
    assert!(bad.check().unwrap_err().contains("albHour"));
    let dir = std::env::temp_dir().join(format!("emporium-prices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("prices.yaml");
    std::fs::write(&path, "currency: USD\nregion: us-east-1\n").unwrap();
    let error = PriceBook::from_file(&path).unwrap_err().to_string();
    assert!(error.contains("not a valid price book"), "{error}");
    let missing = PriceBook::from_file(&dir.join("absent.yaml"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("cannot read the price book"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_half_cent_rounds_up_despite_binary_noise() {
    // (0.0225 + 0.008) × 730 = 22.265 exactly on paper, 22.264999... in binary.
    let usage = Usage {
        load_balancer: Some(LoadBalancerShare {
            tenants_in_group: 1,
        }),
        ..Usage::default()
    };
    let line = estimate(&usage, &PriceBook::default())
        .line(Component::LoadBalancer)
        .cloned()
        .unwrap();
    assert_eq!(dollars(line.cents), "22.27");
    assert_eq!(
        line.basis,
        "($0.0225/h + 1 LCU assumed × $0.008/LCU-h) × 730 h"
    );
}
