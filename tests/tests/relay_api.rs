//! The relay's JSON API against the real process: login, throttling, token expiry and
//! revocation, review actions that sync back to the phone, and both exports.

// JSON answers are read with `value["key"]`, which yields `Null` rather than panicking.
#![allow(clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use anyhow::Context;
use caresync_core::domain::{Record, ReviewState};
use caresync_core::protocol::DocumentId;
use caresync_tests::RelayProcess;
use common::*;
use serde_json::json;

fn login_answer(relay: &RelayProcess, username: &str, password: &str) -> anyhow::Result<Answer> {
    post(
        &format!("{}/api/v1/login", relay.http_base()),
        None,
        &json!({"username": username, "password": password}),
    )
}

#[test]
fn login_gives_a_token_and_never_says_whether_an_account_exists() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    let ok = login_answer(&relay, "demo-director", PASSWORD)?;
    assert_eq!(ok.status, 200);
    let body = ok.json()?;
    let token = body["token"].as_str().context("no token")?;
    assert_eq!(token.len(), 64, "a 256-bit token in hex");
    assert!(body["expires_at"].as_u64().is_some(), "{body}");
    assert_eq!(body["account"]["role"], "village-child-director");
    let cookie = ok.set_cookie.context("no session cookie")?;
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    let me = get(&format!("{}/api/v1/me", relay.http_base()), Some(token))?;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()?["username"], "demo-director");

    let wrong_password = login_answer(&relay, "demo-director", "wrong")?;
    let unknown_account = login_answer(&relay, "nobody-here", "wrong")?;
    assert_eq!(wrong_password.status, 401);
    assert_eq!(unknown_account.status, 401);
    assert_eq!(wrong_password.body, unknown_account.body);

    assert_eq!(
        get(&format!("{}/api/v1/me", relay.http_base()), None)?.status,
        401
    );
    assert_eq!(
        get(
            &format!("{}/api/v1/me", relay.http_base()),
            Some(&"0".repeat(64))
        )?
        .status,
        401
    );
    Ok(())
}

#[test]
fn repeated_failures_lock_an_account_even_for_the_right_password() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    for attempt in 0..5 {
        let answer = login_answer(&relay, "demo-worker", "guess")?;
        assert_eq!(answer.status, 401, "attempt {attempt}");
    }
    let locked = login_answer(&relay, "demo-worker", PASSWORD)?;
    assert_eq!(locked.status, 429);
    let retry: u64 = locked
        .retry_after
        .context("no Retry-After")?
        .parse()
        .context("Retry-After is not seconds")?;
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    // Other accounts are not affected.
    assert_eq!(login_answer(&relay, "demo-director", PASSWORD)?.status, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_by_the_api_and_by_sync() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo", "--session-ttl-secs", "2"])?;
    let director = login_as(&relay, "demo-director")?;
    let me = format!("{}/api/v1/me", relay.http_base());
    assert_eq!(get(&me, Some(&director.token))?.status, 200);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(get(&me, Some(&director.token))?.status, 401);
    let device = caresync_tests::Device::new("expired");
    let refused = device.connect(&relay.ws_url(&director.token)).await;
    assert!(
        refused.is_err(),
        "a sync socket opened with an expired token"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_disabling_an_account_revoke_its_tokens() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    let me = format!("{}/api/v1/me", relay.http_base());

    let director = login_as(&relay, "demo-director")?;
    let out = post(
        &format!("{}/api/v1/logout", relay.http_base()),
        Some(&director.token),
        &json!({}),
    )?;
    assert_eq!(out.status, 200);
    assert_eq!(get(&me, Some(&director.token))?.status, 401);
    let device = caresync_tests::Device::new("after logout");
    assert!(
        device
            .connect(&relay.ws_url(&director.token))
            .await
            .is_err()
    );

    let other = login_as(&relay, "demo-director-2")?;
    assert_eq!(get(&me, Some(&other.token))?.status, 200);
    let db = relay.db_path();
    let db = db.to_str().context("temp path is UTF-8")?;
    relay.cli(
        &[
            "user",
            "disable",
            "--db",
            db,
            "--username",
            "demo-director-2",
        ],
        "",
    )?;
    assert_eq!(get(&me, Some(&other.token))?.status, 401);
    assert_eq!(
        login_answer(&relay, "demo-director-2", PASSWORD)?.status,
        401
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_visit_reaches_the_phone_with_its_comment() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    let director = login_as(&relay, "demo-director")?;
    let reviewer = login_as(&relay, "demo-reviewer")?;
    let base = relay.http_base();

    // The review queue lists the demo's pending visits of the director's village.
    let queue = get(
        &format!(
            "{base}/api/v1/records?village={}&kind=home-visit&review_state=pending",
            director.org_unit
        ),
        Some(&reviewer.token),
    )?;
    assert_eq!(
        queue.status,
        200,
        "{}",
        String::from_utf8_lossy(&queue.body)
    );
    let queue = queue.json()?;
    let item = &queue["items"][0];
    let id = item["id"]
        .as_str()
        .context("no pending visit in the demo village")?;
    assert_eq!(item["url"], format!("automerge:{id}"));
    assert_eq!(item["kind"], "home-visit");
    assert_eq!(item["village"], director.org_unit.as_str());
    assert_eq!(item["review_state"], "pending");
    let visit: DocumentId = id.parse().context("the id is a document id")?;

    let field = phone(&relay, "director", &director).await?;
    field.open(&visit);
    wait_record(&field, &visit).await?;

    // Directors may not use the review API.
    let denied = post(
        &format!("{base}/api/v1/records/{id}/review"),
        Some(&director.token),
        &json!({"action": "approve"}),
    )?;
    assert_eq!(denied.status, 403);
    // Returning needs a comment.
    let no_comment = post(
        &format!("{base}/api/v1/records/{id}/review"),
        Some(&reviewer.token),
        &json!({"action": "return"}),
    )?;
    assert_eq!(no_comment.status, 400);

    let returned = post(
        &format!("{base}/api/v1/records/{id}/review"),
        Some(&reviewer.token),
        &json!({"action": "return", "comment": "请补充监护人电话"}),
    )?;
    assert_eq!(
        returned.status,
        200,
        "{}",
        String::from_utf8_lossy(&returned.body)
    );
    assert_eq!(returned.json()?["review_state"], "returned");

    field
        .wait_until(WAIT, |d| match d.record(&visit) {
            Some(Record::HomeVisit(v)) => {
                v.review.state == ReviewState::Returned
                    && v.review.comment.as_deref() == Some("请补充监护人电话")
            }
            _ => false,
        })
        .await
        .context("the phone did not receive the return and its comment")?;

    let listed = get(
        &format!(
            "{base}/api/v1/records?village={}&kind=home-visit&review_state=returned",
            director.org_unit
        ),
        Some(&reviewer.token),
    )?
    .json()?;
    let items = listed["items"].as_array().context("no items")?;
    assert!(items.iter().any(|i| i["id"] == id), "{listed}");

    let approved = post(
        &format!("{base}/api/v1/records/{id}/review"),
        Some(&reviewer.token),
        &json!({"action": "approve"}),
    )?;
    assert_eq!(approved.json()?["review_state"], "approved");
    Ok(())
}

#[test]
fn reports_and_both_exports_hold_the_months_rows() -> anyhow::Result<()> {
    let relay = RelayProcess::start_with(&["--demo"])?;
    let reviewer = login_as(&relay, "demo-reviewer")?;
    let director = login_as(&relay, "demo-director")?;
    let base = relay.http_base();

    // The month of the newest demo visit in the reviewer's township.
    let newest = get(
        &format!("{base}/api/v1/records?kind=home-visit&page_size=1"),
        Some(&reviewer.token),
    )?
    .json()?;
    let day = newest["items"][0]["day"]
        .as_str()
        .context("no demo visit")?;
    let month = day.get(..7).context("a YYYY-MM-DD day")?.to_owned();
    let in_month = get(
        &format!("{base}/api/v1/records?kind=home-visit&month={month}&page_size=1"),
        Some(&reviewer.token),
    )?
    .json()?;
    let visits = in_month["total"].as_u64().context("no total")?;
    assert!(visits > 0);

    let csv = get(
        &format!("{base}/api/v1/exports/visits.csv?month={month}"),
        Some(&reviewer.token),
    )?;
    assert_eq!(csv.status, 200);
    let text = String::from_utf8(csv.body.clone()).context("CSV is UTF-8")?;
    let mut reader =
        csv::ReaderBuilder::new().from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = reader.headers()?.clone();
    assert!(headers.iter().any(|h| h == "走访日期"), "{headers:?}");
    let rows = reader.records().count();
    assert_eq!(
        u64::try_from(rows)?,
        visits,
        "one CSV row per visit of the month"
    );

    let logs = get(
        &format!("{base}/api/v1/exports/service-logs.csv?month={month}"),
        Some(&reviewer.token),
    )?;
    assert_eq!(logs.status, 200);

    let xlsx = get(
        &format!("{base}/api/v1/exports/month.xlsx?month={month}"),
        Some(&reviewer.token),
    )?;
    assert_eq!(xlsx.status, 200);
    use calamine::Reader as _;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(xlsx.body))?;
    let sheet = book.worksheet_range("家庭走访")?;
    assert_eq!(
        u64::try_from(sheet.height())?,
        visits + 1,
        "a header row and one row per visit"
    );

    let coverage = get(
        &format!("{base}/api/v1/reports/coverage"),
        Some(&reviewer.token),
    )?
    .json()?;
    let villages = coverage["villages"].as_array().context("no villages")?;
    assert!(
        villages
            .iter()
            .any(|v| v["village"] == director.org_unit.as_str()),
        "{coverage}"
    );
    assert!(villages.iter().all(|v| v["children"].as_u64().is_some()));
    let overdue = get(
        &format!("{base}/api/v1/reports/overdue"),
        Some(&reviewer.token),
    )?
    .json()?;
    assert!(
        !overdue.as_array().context("a list")?.is_empty(),
        "the demo has overdue children"
    );
    let hours = get(
        &format!("{base}/api/v1/reports/hours?month={month}"),
        Some(&reviewer.token),
    )?
    .json()?;
    assert!(hours["workers"].as_array().is_some(), "{hours}");

    // Field accounts do not get the township's reports.
    let denied = get(
        &format!("{base}/api/v1/exports/month.xlsx?month={month}"),
        Some(&director.token),
    )?;
    assert_eq!(denied.status, 403);
    Ok(())
}
