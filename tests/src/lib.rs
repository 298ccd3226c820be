//! Shared harness for the integration tests of every crate: finds the running local stack
//! (started by `scripts/stack.sh`, which `make test` runs) through its env file and hands out
//! clients, unique names, child processes and the waits and clean-ups the tests share.
//!
//! A test that cannot find the stack fails with a message saying how to start it; it never
//! skips silently. Crate-specific helpers live in `<crate>/tests/common/`.

mod aws;
mod browser;
mod chart;
mod cluster;
mod http;
mod names;
mod node;
mod operator;
mod postgres;
mod process;
mod stack;
mod tenant;
mod wait;

pub use self::{
    aws::{create_table, moto_subnets, table_tags, tables_with_prefix},
    browser::{BrowserStore, ensure_browser, run_journey, seed_journey_shop},
    chart::{helm, helm_template},
    cluster::{
        TestNamespace, apply, create_namespace, install_crds, install_storefront_api,
        install_storefront_api_with, kubectl, kubectl_output, remove_storefronts, try_kubectl,
    },
    http::{SseEvent, StoreClient, next_sse_event},
    names::unique,
    node::{RealNode, assert_serves_shopper, node_env, pod_ready, real_node},
    operator::{operator_args, storefront_manifest, write_manifests},
    postgres::{
        app_database, databases_like, postgres_admin, postgres_admin_url, roles_like,
        scratch_database,
    },
    process::{Process, binaries_dir, free_port},
    stack::{Stack, child_env, stack_env, workspace_root},
    tenant::tenant,
    wait::{eventually, eventually_while_running},
};
