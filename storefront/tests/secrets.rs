//! Tenants learnt from the operator's Secrets on the local control plane: served without a
//! restart when a Secret appears, 404 once it is deleted.

mod common;

use std::time::Duration;

use common::{TestApp, app_database, tenant, test_settings, unique};
use emporium_integration_tests::{Stack, TestNamespace, eventually};
use emporium_storefront::tenants::watch;
use emporium_tenant_config::{TENANT_CONFIG_KEY, TENANT_LABEL, TENANT_SECRET_LABEL};
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use reqwest::Method;

#[tokio::test]
async fn tenant_secrets_are_served_and_withdrawn_without_restart() {
    let client = Stack::get().kube().await.expect("kube client");
    let ns = TestNamespace::create(&client, "sf-watch")
        .await
        .expect("namespace");
    let dsn = app_database().await;
    let t = tenant("watched", &dsn, &unique("sf-watch-"));
    let app = TestApp::start(test_settings(), &[]).await;
    let h = t.domains[0].clone();

    let (registry, state) = (app.state.tenants.clone(), app.state.clone());
    let (watch_client, namespace) = (client.clone(), ns.name.clone());
    tokio::spawn(async move {
        watch::run(watch_client, Some(&namespace), registry, move |id| {
            state.tenant_removed(id)
        })
        .await;
    });
    assert_eq!(
        app.call(Method::GET, &h, "/api/v1/products", None, None)
            .await
            .0,
        404
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("tenant-config".into()),
            labels: Some(
                [
                    (TENANT_SECRET_LABEL.to_owned(), "true".to_owned()),
                    (TENANT_LABEL.to_owned(), t.tenant_id.clone()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        data: Some([(TENANT_CONFIG_KEY.to_owned(), ByteString(t.to_secret_data()))].into()),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
    eventually(
        "the new tenant is served",
        Duration::from_secs(20),
        || async {
            Ok((app
                .call(Method::GET, &h, "/api/v1/products", None, None)
                .await
                .0
                == 200)
                .then_some(()))
        },
    )
    .await
    .unwrap();

    secrets
        .delete("tenant-config", &DeleteParams::default())
        .await
        .expect("delete secret");
    eventually(
        "the deleted tenant is withdrawn",
        Duration::from_secs(20),
        || async {
            let (status, body, _) = app
                .call(Method::GET, &h, "/api/v1/products", None, None)
                .await;
            Ok(
                (status == 404 && body["type"] == "https://emporium.dev/problems/unknown-host")
                    .then_some(()),
            )
        },
    )
    .await
    .unwrap();
}
