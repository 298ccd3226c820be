//! Proof that the local stack is real: the upstream API server and controller manager, kubectl,
//! moto's DynamoDB and PostgreSQL all answer and behave as they do in production.

use std::time::Duration;

use emporium_integration_tests::{
    Stack, TestNamespace, create_table, eventually, try_kubectl, unique,
};
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::ConfigMap,
};
use kube::{
    Api,
    api::{DeleteParams, ListParams, PostParams},
};

const WAIT: Duration = Duration::from_secs(60);

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "web", "image": "registry.invalid/web:1" }] }
            }
        }
    }))
    .expect("a valid Deployment")
}

#[tokio::test]
async fn controller_manager_creates_and_garbage_collects_replicasets() -> anyhow::Result<()> {
    let client = Stack::get().kube().await?;
    let ns = TestNamespace::create(&client, "stack-gc").await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns.name);

    let created = deployments
        .create(&PostParams::default(), &deployment("web"))
        .await?;
    let uid = created
        .metadata
        .uid
        .clone()
        .expect("the API server assigns a uid");

    // The deployment controller creates a ReplicaSet owned by the Deployment.
    let rs_name = eventually(
        "ReplicaSet created by the deployment controller",
        WAIT,
        || async {
            let list = replicasets.list(&ListParams::default()).await?;
            Ok(list.items.into_iter().find_map(|rs| {
                let owned = rs
                    .metadata
                    .owner_references
                    .as_ref()?
                    .iter()
                    .any(|o| o.uid == uid);
                owned.then(|| rs.metadata.name.clone()).flatten()
            }))
        },
    )
    .await?;

    // Background deletion: the garbage collector, not the client, removes the ReplicaSet.
    deployments
        .delete("web", &DeleteParams::background())
        .await?;
    eventually(
        "ReplicaSet removed by the garbage collector",
        WAIT,
        || async { Ok(replicasets.get_opt(&rs_name).await?.is_none().then_some(())) },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn kubectl_talks_to_the_same_api_server() -> anyhow::Result<()> {
    assert_eq!(try_kubectl(&["get", "--raw", "/readyz"])?.trim(), "ok");

    let version: serde_json::Value =
        serde_json::from_str(&try_kubectl(&["version", "-o", "json"])?)?;
    let server = version["serverVersion"]["gitVersion"]
        .as_str()
        .unwrap_or_default();
    assert!(server.starts_with("v1.37."), "server version {server}");

    let client = Stack::get().kube().await?;
    let ns = TestNamespace::create(&client, "stack-kubectl").await?;
    let manifest = std::env::temp_dir().join(format!("{}.yaml", ns.name));
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\n  namespace: {}\ndata:\n  hello: world\n",
            ns.name
        ),
    )?;
    let applied = try_kubectl(&[
        "apply",
        "--server-side",
        "-f",
        manifest.to_str().unwrap_or_default(),
    ]);
    let _ = std::fs::remove_file(&manifest);
    assert!(applied?.contains("serverside-applied"));

    let cm = Api::<ConfigMap>::namespaced(client, &ns.name)
        .get("greeting")
        .await?;
    assert_eq!(
        cm.data.unwrap_or_default().get("hello").map(String::as_str),
        Some("world")
    );
    Ok(())
}

#[tokio::test]
async fn moto_creates_and_describes_a_dynamodb_table() -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::BillingMode;

    let dynamodb = Stack::get().dynamodb().await?;
    let name = unique("stack-test-");
    create_table(&dynamodb, &name, &["pk"]).await?;
    let described = dynamodb.describe_table().table_name(&name).send().await?;
    let table = described.table.expect("DescribeTable returns the table");
    assert_eq!(table.table_name.as_deref(), Some(name.as_str()));
    assert_eq!(
        table.billing_mode_summary.and_then(|b| b.billing_mode),
        Some(BillingMode::PayPerRequest)
    );
    dynamodb.delete_table().table_name(&name).send().await?;
    Ok(())
}

#[tokio::test]
async fn postgres_answers_a_query() -> anyhow::Result<()> {
    let (client, connection) =
        tokio_postgres::connect(Stack::get().var("DATABASE_URL")?, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let row = client.query_one("SELECT current_user, 6 * 7", &[]).await?;
    assert_eq!(row.get::<_, String>(0), "emporium");
    assert_eq!(row.get::<_, i32>(1), 42);
    Ok(())
}

#[tokio::test]
async fn pods_on_kwok_fake_nodes_become_ready() -> anyhow::Result<()> {
    let client = Stack::get().kube().await?;
    let ns = TestNamespace::create(&client, "stack-kwok").await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    deployments
        .create(&PostParams::default(), &deployment("web"))
        .await?;

    // Scheduler binds the pod to a fake node; kwok marks it Running and Ready; the deployment
    // controller then counts it available.
    eventually("Deployment available on a kwok node", WAIT, || async {
        let d = deployments.get("web").await?;
        let available = d.status.and_then(|s| s.available_replicas).unwrap_or(0);
        Ok((available == 1).then_some(()))
    })
    .await?;
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client, &ns.name)
        .list(&ListParams::default())
        .await?;
    let node = pods.items[0]
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    assert!(node.starts_with("kwok-node-"), "scheduled on {node}");
    Ok(())
}
