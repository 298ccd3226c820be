//! The outcome ranking of several tables and which tables expire.

use super::*;

#[test]
fn terminal_outranks_progressing_outranks_ready() {
    let ready = Outcome::Ready(());
    let busy = Outcome::progressing("Creating", "table a is CREATING");
    let failed = Outcome::terminal("Terminal", "table b is ARCHIVED");
    assert_eq!(
        combine(vec![ready.clone(), ready.clone()]),
        Outcome::Ready(())
    );
    assert!(matches!(
        combine(vec![ready.clone(), busy.clone()]),
        Outcome::Progressing {
            reason: "Creating",
            ..
        }
    ));
    assert!(matches!(
        combine(vec![busy, failed, ready]),
        Outcome::Terminal {
            reason: "Terminal",
            ..
        }
    ));
}

#[test]
fn only_carts_and_sessions_expire() {
    assert_eq!(TableKind::Catalog.ttl_attribute(), None);
    assert_eq!(TableKind::Carts.ttl_attribute(), Some("expires_at"));
    assert_eq!(TableKind::Sessions.ttl_attribute(), Some("expires_at"));
}
