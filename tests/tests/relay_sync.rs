//! The real relay process with several native devices: offline edits merge, a restart
//! loses nothing, villages are kept apart, reviewers write only review fields.

// JSON answers are read with `value["key"]`, which yields `Null` rather than panicking.
#![allow(clippy::indexing_slicing)]

mod common;

use anyhow::Context;
use caresync_core::domain::{Guardian, GuardianRelation, Record};
use caresync_tests::{Device, RelayProcess};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_on_two_phones_merge_and_a_restart_loses_nothing() -> anyhow::Result<()> {
    let mut relay = RelayProcess::start_with(&["--demo"])?;
    let director = login_as(&relay, "demo-director")?;
    let village = director.org_unit.clone();

    let first = phone(&relay, "first phone", &director).await?;
    let child = first.create(&child_in(&village, "王小花"))?;
    wait_synced(&first, &child).await?;

    let second = phone(&relay, "second phone", &director).await?;
    second.open(&child);
    assert_eq!(
        child_name(Some(wait_record(&second, &child).await?)).as_deref(),
        Some("王小花")
    );

    // Both phones go offline and edit different fields of the same record.
    first.disconnect().await;
    second.disconnect().await;
    first
        .change(&child, |record| {
            if let Record::Child(child) = record {
                child.name = "王晓花".to_owned();
            }
        })
        .await?;
    second
        .change(&child, |record| {
            if let Record::Child(child) = record {
                child.guardians.push(Guardian {
                    name: "王奶奶".to_owned(),
                    relation: GuardianRelation::Grandparent,
                    phone: None,
                });
            }
        })
        .await?;

    first.connect(&relay.ws_url(&director.token)).await?;
    second.connect(&relay.ws_url(&director.token)).await?;
    let merged = |device: &Device| match device.record(&child) {
        Some(Record::Child(c)) => c.name == "王晓花" && c.guardians.len() == 1,
        _ => false,
    };
    for device in [&first, &second] {
        device
            .wait_until(WAIT, |d| merged(d) && d.is_synced(&child))
            .await
            .with_context(|| format!("{} did not converge", device.name()))?;
    }
    assert_eq!(first.heads(&child), second.heads(&child));
    let acknowledged = first.heads(&child);

    // A clean restart (SIGTERM) keeps everything the relay acknowledged.
    first.disconnect().await;
    second.disconnect().await;
    relay.restart()?;
    let third = phone(&relay, "third phone", &director).await?;
    third.open(&child);
    third
        .wait_until(WAIT, |d| merged(d))
        .await
        .context("after a restart the merged record is gone")?;
    assert_eq!(third.heads(&child), acknowledged);

    // So does a crash (SIGKILL) right after an acknowledged change.
    third
        .change(&child, |record| {
            if let Record::Child(child) = record {
                child.name = "王晓华".to_owned();
            }
        })
        .await?;
    wait_synced(&third, &child).await?;
    let acknowledged = third.heads(&child);
    third.disconnect().await;
    relay.kill9()?;
    relay.restart()?;
    let fourth = phone(&relay, "fourth phone", &director).await?;
    fourth.open(&child);
    fourth
        .wait_until(WAIT, |d| d.heads(&child) == acknowledged)
        .await
        .context("an acknowledged change was lost in a crash")?;
    assert_eq!(child_name(fourth.record(&child)).as_deref(), Some("王晓华"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_director_can_neither_read_nor_write_another_villages_records() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    let director_a = login_as(&relay, "demo-director")?;
    let director_b = login_as(&relay, "demo-director-2")?;
    assert_ne!(director_a.org_unit, director_b.org_unit);

    let phone_a = phone(&relay, "village A", &director_a).await?;
    let child_a = phone_a.create(&child_in(&director_a.org_unit, "李明"))?;
    wait_synced(&phone_a, &child_a).await?;

    // Reading: B's phone asks for A's record by id and is told it does not exist.
    let phone_b = phone(&relay, "village B", &director_b).await?;
    phone_b.open(&child_a);
    phone_b
        .wait_until(WAIT, |d| d.unavailable().contains(&child_a))
        .await
        .context("village B was not told the record is unavailable")?;
    assert!(
        phone_b.record(&child_a).is_none(),
        "village B read village A's record"
    );

    // Writing: B creates a record that claims to belong to village A.
    let planted = phone_b.create(&child_in(&director_a.org_unit, "冒名"))?;
    phone_b
        .wait_until(WAIT, |d| d.refusals().iter().any(|r| r.document == planted))
        .await
        .context("the relay did not refuse a record in another village")?;
    let refusal = phone_b
        .refusals()
        .into_iter()
        .find(|r| r.document == planted)
        .context("no refusal")?;
    assert_eq!(refusal.code, "forbidden", "{refusal:?}");

    // And it was not stored: village A's own director cannot find it either.
    phone_a.open(&planted);
    phone_a
        .wait_until(WAIT, |d| d.unavailable().contains(&planted))
        .await
        .context("the refused record was stored")?;

    // The refusal is in the audit log, with the account and the document.
    let line = wait_audit_line(&relay, |line| {
        line.contains("change-refused") && line.contains(&planted.to_string())
    })
    .await
    .context("no audit entry for the refused record")?;
    assert!(line.contains("acct-demo-director-2"), "{line}");
    let metrics = get(&format!("{}/metrics", relay.http_base()), None)?;
    let metrics = String::from_utf8(metrics.body)?;
    let value = |name: &str| -> Option<u64> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
    };
    assert!(value("caresync_sync_errors_total") >= Some(1), "{metrics}");
    assert!(
        value("caresync_changes_stored_total") >= Some(1),
        "{metrics}"
    );
    assert_eq!(value("caresync_connections"), Some(2), "{metrics}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_may_review_but_not_rewrite_a_visit() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    let director = login_as(&relay, "demo-director")?;
    let reviewer = login_as(&relay, "demo-reviewer")?;

    let field = phone(&relay, "director", &director).await?;
    let child = field.create(&child_in(&director.org_unit, "张强"))?;
    let visit = field.create(&visit_to(
        &director.org_unit,
        &director.account_id,
        &child,
        1_790_000_000_000,
    ))?;
    wait_synced(&field, &visit).await?;

    let desk = phone(&relay, "reviewer", &reviewer).await?;
    desk.open(&visit);
    wait_record(&desk, &visit).await?;
    let before = desk.heads(&visit);

    // Outside the review fields: refused, with a reason, and not stored.
    desk.change(&visit, |record| {
        if let Record::HomeVisit(visit) = record {
            visit.needs.push("由督导员添加".to_owned());
        }
    })
    .await?;
    desk.wait_until(WAIT, |d| d.refusals().iter().any(|r| r.document == visit))
        .await
        .context("the reviewer's edit of the record part was not refused")?;
    let refusal = desk
        .refusals()
        .into_iter()
        .find(|r| r.document == visit)
        .context("no refusal")?;
    assert_eq!(refusal.code, "forbidden", "{refusal:?}");
    assert!(refusal.message.contains(&visit.to_string()), "{refusal:?}");
    desk.wait_until(WAIT, |d| d.heads(&visit) == before)
        .await
        .context("the reviewer's phone did not return to the relay's state")?;

    let check = phone(&relay, "fresh phone", &director).await?;
    check.open(&visit);
    let stored = wait_record(&check, &visit).await?;
    match stored {
        Record::HomeVisit(stored) => assert!(stored.needs.is_empty(), "{:?}", stored.needs),
        other => anyhow::bail!("not a visit: {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_learns_its_scope_and_a_reconnect_syncs_only_what_changed() -> anyhow::Result<()> {
    use caresync_core::sync::Notification;
    let relay = RelayProcess::start_with(&["--demo"])?;
    let director = login_as(&relay, "demo-director")?;
    let reviewer = login_as(&relay, "demo-reviewer")?;
    let scope_syncs = |d: &Device| {
        d.notifications()
            .iter()
            .filter(|n| matches!(n, Notification::ScopeSynced { .. }))
            .count()
    };

    // First connection: the whole village arrives without asking for any id.
    let field = phone(&relay, "director", &director).await?;
    field
        .wait_until(WAIT, |d| scope_syncs(d) >= 1)
        .await
        .context("the first scope sync did not finish")?;
    let documents = field.documents();
    assert!(
        documents.len() > 20,
        "only {} documents arrived",
        documents.len()
    );
    let visits: Vec<_> = documents
        .iter()
        .filter(|id| matches!(field.record(id), Some(Record::HomeVisit(_))))
        .copied()
        .collect();
    let (Some(&changed), true) = (visits.first(), visits.iter().all(|v| field.is_synced(v))) else {
        anyhow::bail!("no synced visit among {} documents", documents.len());
    };

    // Offline, one record changes on the relay (a reviewer approves it).
    field.disconnect().await;
    let approved = post(
        &format!("{}/api/v1/records/{changed}/review", relay.http_base()),
        Some(&reviewer.token),
        &serde_json::json!({"action": "approve"}),
    )?;
    assert_eq!(
        approved.status,
        200,
        "{}",
        String::from_utf8_lossy(&approved.body)
    );

    field.reset_traffic();
    field.connect(&relay.ws_url(&director.token)).await?;
    field
        .wait_until(WAIT, |d| {
            scope_syncs(d) >= 2
                && matches!(d.record(&changed), Some(Record::HomeVisit(v))
                    if v.review.state == caresync_core::domain::ReviewState::Approved)
        })
        .await
        .context("the reconnect did not bring the approval")?;
    let traffic = field.traffic();
    // join/peer, scope request/answer, and one document's sync exchange: not the village.
    assert!(
        traffic.frames_received <= 6 && traffic.frames_sent <= 6,
        "reconnect with one change cost {traffic:?} for {} documents",
        documents.len()
    );
    Ok(())
}
