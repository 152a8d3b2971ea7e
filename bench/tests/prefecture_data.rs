//! The generated prefecture is data the real relay serves: a village director's phone on a
//! relay started on a generated file receives every record of the village, as generated.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::time::Duration;

use caresync_core::domain::{DocumentKind, ReportRow, report_row};
use caresync_server::bench_data::{self, Shape};
use caresync_tests::{Device, RelayProcess, login};

/// Generous: the suite runs on a shared 2-core machine.
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directors_phone_receives_the_generated_records_of_the_village() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("prefecture.db");
    let shape = Shape {
        districts: 1,
        townships_per_district: 1,
        villages_per_township: 2,
    };
    bench_data::generate(&db, shape, 2, &mut |_| {})?;

    // What the generator made for the first village that its director may read (children
    // and their visits; elders and service logs are the care workers'), as report rows.
    let township = bench_data::make_township(&shape, 0)?;
    let village = shape.village_code(0, 0);
    let expected: BTreeMap<_, ReportRow> = township
        .documents
        .iter()
        .filter(|document| document.meta.owner == village)
        .filter(|document| {
            matches!(
                document.meta.kind,
                DocumentKind::Child | DocumentKind::HomeVisit
            )
        })
        .map(|document| (document.id, document.report.clone()))
        .collect();
    assert!(expected.len() > 50, "{} documents", expected.len());

    let relay = RelayProcess::start_on(&db, &[])?;
    let token = login(
        &relay.http_base(),
        &bench_data::director_username(&village),
        bench_data::BENCH_PASSWORD,
    )?;
    let phone = Device::new("director");
    phone.connect(&relay.ws_url(&token)).await?;
    // Cheap first (every record arrived), then the full comparison: reading every record
    // on each of the phone's hundreds of events took minutes on a loaded machine.
    phone
        .wait_until(WAIT, |device| {
            expected.keys().all(|id| !device.heads(id).is_empty())
        })
        .await?;
    phone
        .wait_until(WAIT, |device| {
            expected.iter().all(|(id, row)| {
                device
                    .record(id)
                    .is_some_and(|record| report_row(&id.to_string(), &record) == *row)
            })
        })
        .await?;
    // Nothing of other villages: the scope is the director's village.
    for id in phone.documents() {
        assert!(expected.contains_key(&id), "{id} is not of the village");
    }
    Ok(())
}
