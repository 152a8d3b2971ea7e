//! Times reading and saving a record, against automerge's own per-key read of the same
//! document, in the same run. Not a test: it prints figures.
//!
//! `cargo run --release -p caresync-core --example record_read`

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

use automerge::{AutoCommit, ROOT, ReadDoc};
use caresync_core::domain::{Child, ChildCategory, Gender, OrgUnitCode, Record, YearMonth};

/// Edits made to the record before timing: about what a record gathers in the benchmark's
/// ten seconds of (a).
const EDITS_BEFORE: usize = 30;
const READS: usize = 20_000;
const SAVES: usize = 5_000;

fn main() -> Result<(), Box<dyn Error>> {
    let born = YearMonth::new(2016, 5).ok_or("a valid month")?;
    let mut child = Child::new(OrgUnitCode::new("370402001001"), "c0", born, Gender::Female);
    child.categories.push(ChildCategory::LeftBehind);
    let mut doc = AutoCommit::new();
    child.save(&mut doc)?;
    doc.commit();
    for edit in 0..EDITS_BEFORE {
        child.name = format!("r{edit}");
        child.save(&mut doc)?;
        doc.commit();
    }

    let per_op =
        |started: Instant, count: usize| started.elapsed().as_secs_f64() * 1e6 / count as f64;

    let started = Instant::now();
    for _ in 0..READS {
        black_box(Record::load(&doc)?);
    }
    let load_us = per_op(started, READS);

    let keys: Vec<String> = doc.keys(ROOT).collect();
    let started = Instant::now();
    for _ in 0..READS {
        for key in &keys {
            black_box(doc.get(ROOT, key.as_str())?);
        }
    }
    let per_key_us = per_op(started, READS);

    let started = Instant::now();
    for _ in 0..READS {
        black_box(doc.map_range(ROOT, ..).count());
    }
    let one_pass_us = per_op(started, READS);

    let started = Instant::now();
    for save in 0..SAVES {
        let mut record = Record::load(&doc)?;
        if let Record::Child(child) = &mut record {
            child.name = format!("s{save}");
        }
        record.save(&mut doc)?;
        doc.commit();
    }
    let edit_us = per_op(started, SAVES);

    println!(
        "a child record after {EDITS_BEFORE} edits, {} root keys:",
        keys.len()
    );
    println!("  Record::load                                {load_us:8.1} us");
    println!("  automerge get of each root key, one by one  {per_key_us:8.1} us");
    println!("  automerge map_range over the root, one pass {one_pass_us:8.1} us");
    println!("  load, rename, save and commit (a phone's edit) {edit_us:5.1} us");
    Ok(())
}
