//! Hostname handover: when the Storefront holding a hostname goes, the oldest one waiting for
//! it gets it within seconds (watch-driven, not at a resync), with an Event on both.

mod common;

use std::time::{Duration, Instant};

use common::{plan, start_operator, storefront};
use emporium_integration_tests::{Stack, apply, eventually, install_crds, unique};
use emporium_operator::crd::{Storefront, StorefrontPlan};
use k8s_openapi::api::events::v1::Event;
use kube::{
    Api,
    api::{DeleteParams, ListParams},
};

const WAIT: Duration = Duration::from_secs(60);
const HANDOVER: Duration = Duration::from_secs(5);

fn reason_of(sf: &Storefront, type_: &str) -> Option<String> {
    sf.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.reason.clone())
}

async fn event_note(client: &kube::Client, regarding: &str, reason: &str) -> Option<String> {
    let events: Api<Event> = Api::all(client.clone());
    let list = events.list(&ListParams::default()).await.ok()?;
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(regarding))
        .find(|e| e.reason.as_deref() == Some(reason))
        .and_then(|e| e.note)
}

#[tokio::test]
async fn a_freed_hostname_goes_to_the_oldest_waiting_storefront_within_seconds()
-> anyhow::Result<()> {
    let client = Stack::get().kube().await?;
    install_crds(&client).await?;
    let run = unique("handover-");
    let plans: Api<StorefrontPlan> = Api::all(client.clone());
    let storefronts: Api<Storefront> = Api::all(client.clone());
    let operator = start_operator(&client, &run);
    apply(&plans, &run, plan(&run, "dedicated", 2)).await?;

    let shared = format!("{run}.example.com");
    let holder = format!("{run}-a");
    let waiting = format!("{run}-b");
    apply(
        &storefronts,
        &holder,
        storefront(&holder, &run, &run, &[&shared]),
    )
    .await?;
    eventually("the holder routes the hostname", WAIT, || async {
        let sf = storefronts.get(&holder).await?;
        Ok((reason_of(&sf, "RoutingReady").as_deref() == Some("IngressApplied")).then_some(()))
    })
    .await?;
    apply(
        &storefronts,
        &waiting,
        storefront(&waiting, &run, &run, &[&shared]),
    )
    .await?;
    eventually("the second one waits for it", WAIT, || async {
        let sf = storefronts.get(&waiting).await?;
        Ok((reason_of(&sf, "RoutingReady").as_deref() == Some("HostnameConflict")).then_some(()))
    })
    .await?;

    let deleted = Instant::now();
    storefronts
        .delete(&holder, &DeleteParams::default())
        .await?;
    let url = eventually(
        "the waiting one takes the hostname over",
        HANDOVER,
        || async {
            let sf = storefronts.get(&waiting).await?;
            let routed = reason_of(&sf, "RoutingReady").as_deref() == Some("IngressApplied");
            Ok(routed.then(|| sf.status.and_then(|s| s.url)).flatten())
        },
    )
    .await?;
    println!("hostname handed over in {:?}", deleted.elapsed());
    assert_eq!(url, format!("https://{shared}"));

    let released = eventually("HostnameReleased on the holder", WAIT, || async {
        Ok(event_note(&client, &holder, "HostnameReleased").await)
    })
    .await?;
    assert!(released.contains(&format!("`{waiting}`")), "{released}");
    let acquired = eventually("HostnameAcquired on the new holder", WAIT, || async {
        Ok(event_note(&client, &waiting, "HostnameAcquired").await)
    })
    .await?;
    assert!(acquired.contains(&shared), "{acquired}");

    storefronts
        .delete(&waiting, &DeleteParams::default())
        .await?;
    eventually("Storefronts gone", WAIT, || async {
        let a = storefronts.get_opt(&holder).await?;
        let b = storefronts.get_opt(&waiting).await?;
        Ok((a.is_none() && b.is_none()).then_some(()))
    })
    .await?;
    plans.delete(&run, &DeleteParams::default()).await?;
    operator.abort();
    Ok(())
}
