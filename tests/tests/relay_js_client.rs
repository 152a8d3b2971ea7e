//! The official JavaScript automerge-repo client (pinned in `tests/js/`), unmodified,
//! against the real relay: it reads what a Rust device wrote, its writes reach the Rust
//! device, and another village's record is unavailable to it.

// JSON answers are read with `value["key"]`, which yields `Null` rather than panicking.
#![allow(clippy::indexing_slicing)]

mod common;

use anyhow::Context;
use caresync_core::domain::Record;
use caresync_tests::RelayProcess;
use caresync_tests::js::{JsRead, js_read, js_write};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_client_reads_writes_and_is_kept_to_its_village() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    let director = login_as(&relay, "demo-director")?;
    let other_director = login_as(&relay, "demo-director-2")?;

    let rust_phone = phone(&relay, "rust phone", &director).await?;
    let child = rust_phone.create(&child_in(&director.org_unit, "赵小雨"))?;
    wait_synced(&rust_phone, &child).await?;

    let url = relay.ws_url(&director.token);
    let JsRead::Document(seen) = js_read(&url, &child).await? else {
        anyhow::bail!("the JS client was told the record is unavailable");
    };
    assert_eq!(seen["name"], "赵小雨", "{seen}");
    assert_eq!(seen["kind"], "child", "{seen}");
    assert_eq!(seen["orgUnit"], director.org_unit.as_str(), "{seen}");

    js_write(&url, &child, &json!({"path": ["name"], "value": "赵晓雨"})).await?;
    rust_phone
        .wait_until(WAIT, |d| {
            child_name(d.record(&child)).as_deref() == Some("赵晓雨")
        })
        .await
        .context("the Rust phone did not see the JS client's change")?;

    // The other village's director, through the JS client, cannot see this record.
    let other_url = relay.ws_url(&other_director.token);
    assert_eq!(js_read(&other_url, &child).await?, JsRead::Unavailable);
    assert!(matches!(rust_phone.record(&child), Some(Record::Child(_))));
    Ok(())
}
