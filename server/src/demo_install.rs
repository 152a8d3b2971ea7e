//! Installs the demo prefecture (`demo.rs`) into an empty database for `serve --demo`.

use std::path::Path;

use anyhow::Context;
use caresync_core::domain::Date;

use crate::auth::password::hash_password;
use crate::demo::{DemoData, DemoError, demo_data, demo_data_with_village_records};
use crate::store::{self, DocumentStore, WriteOp};

/// Writes org units, accounts and documents when the database has no accounts yet, and
/// returns the accounts' descriptions to print; `None` when it left the database alone.
pub fn install_if_empty(db: &Path, today: Date) -> anyhow::Result<Option<Vec<String>>> {
    install_built_if_empty(db, || demo_data(today))
}

/// The same with the first village grown to `records` documents
/// ([`demo_data_with_village_records`]), for benchmarks.
pub fn install_with_village_records_if_empty(
    db: &Path,
    today: Date,
    records: usize,
) -> anyhow::Result<Option<Vec<String>>> {
    install_built_if_empty(db, || demo_data_with_village_records(today, records))
}

fn install_built_if_empty(
    db: &Path,
    build: impl FnOnce() -> Result<DemoData, DemoError>,
) -> anyhow::Result<Option<Vec<String>>> {
    let connection = store::open_connection(db)?;
    if !store::list_accounts(&connection)?.is_empty() {
        return Ok(None);
    }
    let data = build().context("cannot build the demo data")?;
    for unit in &data.units {
        store::insert_org_unit(&connection, unit)
            .with_context(|| format!("cannot add org unit {}", unit.code))?;
    }
    let now = i64::try_from(crate::clock::now_ms()).unwrap_or(i64::MAX);
    let mut described = Vec::new();
    for demo in &data.accounts {
        let hash = hash_password(demo.password)?;
        store::insert_account(&connection, &demo.account, &hash, now)
            .with_context(|| format!("cannot add account {}", demo.account.username))?;
        described.push(format!(
            "{:<18} {:<24} {}",
            demo.account.username,
            demo.account.role.as_str(),
            demo.account
                .org_units
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    drop(connection);
    let mut documents = DocumentStore::open(db)?;
    let ops: Vec<WriteOp> = data
        .documents
        .into_iter()
        .map(|document| WriteOp::PutChanges {
            document: document.id,
            meta: Some(document.meta),
            changes: document.changes,
            heads: document.heads,
            report: Some(document.report),
        })
        .collect();
    let count = ops.len();
    documents
        .write_batch(&ops)
        .context("cannot store the demo documents")?;
    described.push(format!("({count} demo documents stored)"));
    Ok(Some(described))
}
