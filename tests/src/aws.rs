//! moto, the stack's AWS: subnets of its default VPC, and DynamoDB tables by prefix.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

/// Subnet ids of the default VPC of the moto at `endpoint` (moto checks that a DB subnet
/// group's subnets exist); an error when it has none.
pub async fn moto_subnets(endpoint: &str) -> anyhow::Result<Vec<String>> {
    let body = reqwest::Client::new()
        .post(endpoint)
        // moto routes by the service in the credential scope; it does not check the signature.
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .form(&[("Action", "DescribeSubnets"), ("Version", "2016-11-15")])
        .send()
        .await?
        .text()
        .await?;
    let ids: Vec<String> = body
        .split("<subnetId>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</subnetId>").map(|(id, _)| id.to_owned()))
        .collect();
    anyhow::ensure!(!ids.is_empty(), "moto's default VPC has no subnets: {body}");
    Ok(ids)
}

/// The tables whose names start with `prefix`, sorted.
pub async fn tables_with_prefix(dynamodb: &aws_sdk_dynamodb::Client, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = dynamodb
            .list_tables()
            .set_exclusive_start_table_name(start.clone())
            .send()
            .await
            .expect("list tables");
        names.extend(
            page.table_names()
                .iter()
                .filter(|n| n.starts_with(prefix))
                .cloned(),
        );
        start = page.last_evaluated_table_name().map(str::to_owned);
        if start.is_none() {
            names.sort();
            return names;
        }
    }
}

/// The tags of `table` as (key, value) pairs.
pub async fn table_tags(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Vec<(String, String)> {
    let arn = dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("describe")
        .table
        .and_then(|t| t.table_arn)
        .expect("arn");
    dynamodb
        .list_tags_of_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("tags")
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

/// Creates an on-demand table keyed by `keys` (the hash key, then the range key if any; string
/// attributes), as someone other than the operator would.
pub async fn create_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
    keys: &[&str],
) -> anyhow::Result<()> {
    let mut create = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (i, key) in keys.iter().enumerate() {
        let key_type = if i == 0 {
            KeyType::Hash
        } else {
            KeyType::Range
        };
        create = create
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*key)
                    .key_type(key_type)
                    .build()?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(*key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            );
    }
    create.send().await?;
    Ok(())
}
