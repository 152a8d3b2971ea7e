//! Org units: the administrative hierarchy every record and account is placed in.
//!
//! The relay keeps the whole tree in memory ([`OrgTree`]) for access checks; the table is
//! its durable copy. Units are added parents first and each must sit exactly one level
//! below its parent, so that "is this village inside that township" can never be answered
//! from a malformed chain.

use std::io::Read;

use caresync_core::domain::{OrgLevel, OrgTree, OrgUnit, OrgUnitCode};
use rusqlite::{Connection, OptionalExtension, ffi, params};

use super::StoreError;

/// Adds one unit. A prefecture is the top and has no parent; every other unit names an
/// existing parent one level above it.
pub fn insert_org_unit(conn: &Connection, unit: &OrgUnit) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidOrgUnit {
        code: unit.code.as_str().to_owned(),
        reason,
    };
    if unit.code.as_str().is_empty() {
        return Err(invalid("the code is empty".to_owned()));
    }
    if unit.name.trim().is_empty() {
        return Err(invalid("the name is empty".to_owned()));
    }
    match (&unit.parent, unit.level) {
        (None, OrgLevel::Prefecture) => {}
        (Some(parent), OrgLevel::Prefecture) => {
            return Err(invalid(format!(
                "a prefecture is the top of the tree and cannot have a parent ({parent})"
            )));
        }
        (None, level) => {
            return Err(invalid(format!("a {level} needs a parent")));
        }
        (Some(parent), level) => {
            let parent_level: Option<String> = conn
                .prepare_cached("SELECT level FROM org_units WHERE code = ?1")?
                .query_row([parent.as_str()], |row| row.get(0))
                .optional()?;
            let Some(parent_level) = parent_level else {
                return Err(invalid(format!("its parent {parent} does not exist")));
            };
            let parent_level = OrgLevel::parse(&parent_level).ok_or_else(|| {
                StoreError::corrupt(
                    "org_units",
                    parent.as_str(),
                    format!("unknown level {parent_level:?}"),
                )
            })?;
            if parent_level.child_level() != Some(level) {
                return Err(invalid(format!(
                    "a {level} cannot be placed under the {parent_level} {parent}"
                )));
            }
        }
    }
    let result = conn
        .prepare_cached(
            "INSERT INTO org_units (code, name, level, parent) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            unit.code.as_str(),
            unit.name,
            unit.level.as_str(),
            unit.parent.as_ref().map(OrgUnitCode::as_str),
        ]);
    match result {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(error, _))
            if error.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Err(StoreError::OrgUnitExists(unit.code.as_str().to_owned()))
        }
        Err(error) => Err(error.into()),
    }
}

/// The whole hierarchy, for the access rules.
pub fn load_org_tree(conn: &Connection) -> Result<OrgTree, StoreError> {
    let mut statement = conn.prepare_cached("SELECT code, name, level, parent FROM org_units")?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, Option<String>>(3)?,
        ))
    })?;
    let mut units = Vec::new();
    for row in rows {
        let (code, name, level, parent) = row?;
        let level = OrgLevel::parse(&level).ok_or_else(|| {
            StoreError::corrupt("org_units", &code, format!("unknown level {level:?}"))
        })?;
        units.push(OrgUnit {
            code: OrgUnitCode(code),
            name,
            level,
            parent: parent.map(OrgUnitCode),
        });
    }
    Ok(OrgTree::from_units(units))
}

/// The header an org unit CSV file must start with.
const CSV_HEADER: [&str; 4] = ["code", "name", "level", "parent"];

/// Imports org units from CSV with the header `code,name,level,parent` (an empty parent for
/// the prefecture). All or nothing: one bad line and no unit is added. Lines may come in
/// any order; parents are inserted before their children. Errors name the line (the header
/// is line 1). Answers how many units were added.
pub fn import_org_units_csv(conn: &Connection, reader: impl Read) -> Result<usize, StoreError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header: Vec<String> = csv
        .headers()
        .map_err(|error| at_line(1, StoreError::BadCsv(error.to_string())))?
        .iter()
        .map(str::to_owned)
        .collect();
    if header != CSV_HEADER {
        return Err(at_line(
            1,
            StoreError::BadCsv(format!(
                "expected the header `{}`, found `{}`",
                CSV_HEADER.join(","),
                header.join(",")
            )),
        ));
    }
    let mut units: Vec<(u64, OrgUnit)> = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|error| {
            let line = error.position().map_or(0, csv::Position::line);
            at_line(line, StoreError::BadCsv(error.to_string()))
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let unit = parse_unit(&record).map_err(|error| at_line(line, error))?;
        units.push((line, unit));
    }
    // A stable sort by level puts every parent before its children whatever the file's
    // order, and keeps the file's order within a level so errors come in reading order.
    units.sort_by_key(|(_, unit)| OrgLevel::ALL.iter().position(|level| *level == unit.level));
    // Unchecked: the caller holds a shared reference; this fails cleanly if the caller
    // already has a transaction open on the connection.
    let tx = conn.unchecked_transaction()?;
    for (line, unit) in &units {
        insert_org_unit(&tx, unit).map_err(|error| at_line(*line, error))?;
    }
    tx.commit()?;
    Ok(units.len())
}

fn parse_unit(record: &csv::StringRecord) -> Result<OrgUnit, StoreError> {
    let field = |index: usize| record.get(index).unwrap_or_default();
    let level_text = field(2);
    let level = OrgLevel::parse(level_text).ok_or_else(|| {
        let known: Vec<&str> = OrgLevel::ALL.iter().map(|level| level.as_str()).collect();
        StoreError::BadCsv(format!(
            "unknown level {level_text:?}; expected one of {}",
            known.join(", ")
        ))
    })?;
    let parent = field(3);
    Ok(OrgUnit {
        code: OrgUnitCode::new(field(0)),
        name: field(1).to_owned(),
        level,
        parent: (!parent.is_empty()).then(|| OrgUnitCode::new(parent)),
    })
}

fn at_line(line: u64, source: StoreError) -> StoreError {
    StoreError::AtLine {
        line,
        source: Box::new(source),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::test_support::open_temp;

    fn unit(code: &str, level: OrgLevel, parent: Option<&str>) -> OrgUnit {
        OrgUnit {
            code: OrgUnitCode::new(code),
            name: format!("unit {code}"),
            level,
            parent: parent.map(OrgUnitCode::new),
        }
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM org_units", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn units_need_a_parent_one_level_up() {
        let (_dir, conn) = open_temp();
        insert_org_unit(&conn, &unit("3704", OrgLevel::Prefecture, None)).unwrap();
        insert_org_unit(&conn, &unit("370402", OrgLevel::District, Some("3704"))).unwrap();
        let orphan = insert_org_unit(
            &conn,
            &unit("370402001", OrgLevel::Township, Some("370403")),
        );
        assert!(
            matches!(&orphan, Err(StoreError::InvalidOrgUnit { reason, .. }) if reason.contains("does not exist")),
            "{orphan:?}"
        );
        let skipping = insert_org_unit(
            &conn,
            &unit("370402001001", OrgLevel::Village, Some("370402")),
        );
        assert!(matches!(skipping, Err(StoreError::InvalidOrgUnit { .. })));
        let rootless = insert_org_unit(&conn, &unit("370403", OrgLevel::District, None));
        assert!(matches!(rootless, Err(StoreError::InvalidOrgUnit { .. })));
        let again = insert_org_unit(&conn, &unit("370402", OrgLevel::District, Some("3704")));
        assert!(matches!(again, Err(StoreError::OrgUnitExists(code)) if code == "370402"));
        assert_eq!(count(&conn), 2);

        let tree = load_org_tree(&conn).unwrap();
        assert_eq!(tree.len(), 2);
        assert!(tree.is_within(&OrgUnitCode::new("370402"), &OrgUnitCode::new("3704")));
    }

    #[test]
    fn csv_import_accepts_any_order() {
        let (_dir, conn) = open_temp();
        let file = "code,name,level,parent\n\
                    370402001001,东村,village,370402001\n\
                    370402001,某镇,township,370402\n\
                    3704,枣庄市,prefecture,\n\
                    370402,市中区,district,3704\n";
        assert_eq!(import_org_units_csv(&conn, file.as_bytes()).unwrap(), 4);
        let tree = load_org_tree(&conn).unwrap();
        let village = tree.get(&OrgUnitCode::new("370402001001")).unwrap();
        assert_eq!(village.name, "东村");
        assert!(tree.is_within(&village.code, &OrgUnitCode::new("3704")));
    }

    #[test]
    fn a_bad_csv_line_is_named_and_nothing_is_added() {
        let (_dir, conn) = open_temp();
        let file = "code,name,level,parent\n\
                    3704,枣庄市,prefecture,\n\
                    370402,市中区,district,3704\n\
                    370402001,某镇,hamlet,370402\n";
        match import_org_units_csv(&conn, file.as_bytes()) {
            Err(StoreError::AtLine { line, source }) => {
                assert_eq!(line, 4);
                assert!(source.to_string().contains("hamlet"), "{source}");
            }
            other => panic!("expected an error at line 4, got {other:?}"),
        }
        assert_eq!(count(&conn), 0);

        let missing_parent =
            "code,name,level,parent\n3704,枣庄市,prefecture,\n370402,市中区,district,9999\n";
        match import_org_units_csv(&conn, missing_parent.as_bytes()) {
            Err(StoreError::AtLine { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected an error at line 3, got {other:?}"),
        }
        assert_eq!(count(&conn), 0, "the prefecture of line 2 was rolled back");
    }

    #[test]
    fn a_wrong_header_is_refused() {
        let (_dir, conn) = open_temp();
        let file = "code,name,parent,level\n3704,枣庄市,,prefecture\n";
        assert!(matches!(
            import_org_units_csv(&conn, file.as_bytes()),
            Err(StoreError::AtLine { line: 1, .. })
        ));
    }
}
