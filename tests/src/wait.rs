//! Waiting for the system under test: poll until a check passes or a deadline is reached.

use std::{future::Future, time::Duration};

use anyhow::anyhow;

use crate::Process;

/// Polls `check` every 200 ms until it returns `Some`, or fails after `timeout` (with the last
/// error `check` returned, if any).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(match last_error {
                Some(e) => e.context(format!("{what}: not within {timeout:?}")),
                None => anyhow!("{what}: not within {timeout:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// [`eventually`] while a child process must keep running: fails the test at once, with the end
/// of its log, when `process` exits, and after `timeout` saying where its log is.
pub async fn eventually_while_running<T, F, Fut>(
    what: &str,
    timeout: Duration,
    process: &Process,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    eventually(what, timeout, || {
        process.assert_running();
        check()
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}; logs in {}", process.log_dir().display()))
}
