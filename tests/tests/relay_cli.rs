//! Account and org-unit management from the command line, against a relay's database.

// JSON answers are read with `value["key"]`, which yields `Null` rather than panicking.
#![allow(clippy::indexing_slicing)]

mod common;

use anyhow::Context;
use caresync_tests::RelayProcess;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_units_and_accounts_added_while_serving_can_log_in_and_sync() -> anyhow::Result<()> {
    let relay = RelayProcess::start()?;
    let db = relay.db_path();
    let db = db.to_str().context("temp path is UTF-8")?;
    let csv = relay.dir().join("units.csv");
    std::fs::write(
        &csv,
        "code,name,level,parent\n\
         370400,枣庄市,prefecture,\n\
         370402,市中区,district,370400\n\
         370402001,中心街道,township,370402\n\
         370402001001,东村,village,370402001\n",
    )?;
    let csv = csv.to_str().context("temp path is UTF-8")?;
    let imported = relay.cli(&["org", "import", "--db", db, "--csv", csv], "")?;
    assert!(imported.contains("imported 4"), "{imported}");
    relay.cli(
        &[
            "org",
            "add",
            "--db",
            db,
            "--code",
            "370402001002",
            "--name",
            "西村",
            "--level",
            "village",
            "--parent",
            "370402001",
        ],
        "",
    )?;
    // A unit whose parent does not exist is refused.
    assert!(
        relay
            .cli(
                &[
                    "org", "add", "--db", db, "--code", "9", "--name", "x", "--level", "village",
                    "--parent", "8"
                ],
                ""
            )
            .is_err()
    );

    relay.cli(
        &[
            "user",
            "add",
            "--db",
            db,
            "--username",
            "li-director",
            "--role",
            "village-child-director",
            "--org-unit",
            "370402001002",
        ],
        "s3cret-passw0rd\n",
    )?;
    // An unknown org unit and a duplicate username are refused.
    assert!(
        relay
            .cli(
                &[
                    "user",
                    "add",
                    "--db",
                    db,
                    "--username",
                    "x",
                    "--role",
                    "care-worker",
                    "--org-unit",
                    "404"
                ],
                "pw\n"
            )
            .is_err()
    );
    assert!(
        relay
            .cli(
                &[
                    "user",
                    "add",
                    "--db",
                    db,
                    "--username",
                    "li-director",
                    "--role",
                    "care-worker",
                    "--org-unit",
                    "370402001"
                ],
                "pw\n"
            )
            .is_err()
    );

    let answer = post(
        &format!("{}/api/v1/login", relay.http_base()),
        None,
        &serde_json::json!({"username": "li-director", "password": "s3cret-passw0rd"}),
    )?;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()?["account"]["org_units"][0], "370402001002");
    let listed = relay.cli(&["user", "list", "--db", db], "")?;
    assert!(listed.contains("li-director"), "{listed}");

    // The relay started before these units existed. A director's own village needs no
    // tree, but a township reviewer reads the village's records only through the tree
    // (village within township), so this shows the relay picked the new units up while
    // serving (it re-reads them every few seconds).
    relay.cli(
        &[
            "user",
            "add",
            "--db",
            db,
            "--username",
            "li-reviewer",
            "--role",
            "township-reviewer",
            "--org-unit",
            "370402001",
        ],
        "s3cret-passw0rd\n",
    )?;
    let token = answer.json()?["token"]
        .as_str()
        .context("no token")?
        .to_owned();
    let director = caresync_tests::Device::new("new village");
    director.connect(&relay.ws_url(&token)).await?;
    let child = director.create(&child_in("370402001002", "新登记"))?;
    wait_synced(&director, &child).await?;

    let reviewer_token =
        caresync_tests::login(&relay.http_base(), "li-reviewer", "s3cret-passw0rd")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let reviewer = caresync_tests::Device::new("township reviewer");
        reviewer.connect(&relay.ws_url(&reviewer_token)).await?;
        reviewer.open(&child);
        reviewer
            .wait_until(WAIT, |d| {
                d.record(&child).is_some() || d.unavailable().contains(&child)
            })
            .await?;
        if reviewer.record(&child).is_some() {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the relay never used the org units added while it served"
        );
        reviewer.disconnect().await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Ok(())
}
