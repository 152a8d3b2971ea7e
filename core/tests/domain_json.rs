//! Records as JSON (serde): the JSON of a record is the document's root map as any
//! automerge client sees it, with the keys of `docs/schema.md`. The browser's bindings pass
//! records to JavaScript this way, so a difference here is a difference a web app sees.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;

use automerge::{AutoCommit, ScalarValue, hydrate};
use caresync_core::domain::*;
use serde_json::{Value as Json, json};

const T0: Millis = 1_714_536_000_000; // 2024-05-01T04:00:00Z, 12:00 in China
const MINUTE: Millis = 60_000;
const CHILD_ID: &str = "2Ld9ZxQ8kS3hP1sLcH3JvBq9Fz7x";

fn village() -> OrgUnitCode {
    OrgUnitCode::new("370402001001")
}

// ----- one example of each kind with every field of the schema set -------------------------

fn full_child() -> Child {
    let mut child = Child::new(
        village(),
        "王小明",
        YearMonth::new(2014, 3).unwrap(),
        Gender::Male,
    );
    child.categories = vec![ChildCategory::LeftBehind, ChildCategory::DeFactoUnattended];
    child.risk = Some(Risk {
        level: RiskLevel::Yellow,
        date: Date::new(2024, 4, 30).unwrap(),
        reason: Some("父母均在外务工".to_owned()),
    });
    child.guardians = vec![Guardian {
        name: "王奶奶".to_owned(),
        relation: GuardianRelation::Grandparent,
        phone: Some("13800000000".to_owned()),
    }];
    child.id_card = Some(IdCardRef::from_full_number("11010519491231002X", "salt").unwrap());
    child.comments = vec![Comment::new(AccountId::new("rev-1"), T0, "请补充学校信息")];
    child
}

fn full_elder() -> Elder {
    let mut elder = Elder::new(
        village(),
        "李大爷",
        YearMonth::new(1940, 11).unwrap(),
        Gender::Male,
        CareNeedsLevel::Moderate,
    );
    elder.comments = vec![Comment::new(AccountId::new("cw-1"), T0, "耳背，请大声说话")];
    elder
}

fn full_visit() -> HomeVisit {
    let mut visit = HomeVisit::new(
        village(),
        AccountId::new("dir-1"),
        SubjectId::new(CHILD_ID),
        T0,
    );
    visit.ended_at = Some(T0 + 45 * MINUTE);
    visit.checklist = Checklist::all_ok();
    visit.checklist.schooling = Some(ChecklistItem::with_note(CheckStatus::Concern, "经常缺课"));
    visit.needs = vec!["课业辅导".to_owned()];
    visit.actions = vec!["联系班主任".to_owned()];
    visit.referrals = vec![Referral {
        to: "镇中心小学".to_owned(),
        reason: Some("缺课".to_owned()),
    }];
    visit.next_visit_date = Some(Date::new(2024, 6, 1).unwrap());
    visit.status = RecordStatus::Final;
    visit.review = Review::send_back(
        AccountId::new("rev-1"),
        T0 + 86_400_000,
        "请写明缺课天数".to_owned(),
    );
    visit.comments = vec![Comment::new(AccountId::new("dir-1"), T0, "约每周两天")];
    visit
}

fn full_log() -> ServiceLog {
    let mut log = ServiceLog::new(
        village(),
        AccountId::new("cw-1"),
        SubjectId::new("3Xy7ElderDocId"),
        T0,
    );
    log.services = vec![
        ServiceType::DailyCare,
        ServiceType::Other("理发".to_owned()),
    ];
    log.check_out = Some(T0 + 90 * MINUTE);
    log.duration_override = Some(DurationOverride {
        minutes: 60,
        reason: Some("忘记签退".to_owned()),
    });
    log.confirmation = Some(Confirmation {
        confirmed: true,
        at: T0 + 89 * MINUTE,
        method: ConfirmationMethod::FamilyMember,
    });
    log.note = Some("老人精神状态良好".to_owned());
    log.review = Review::approve(AccountId::new("rev-1"), T0 + 86_400_000, Some("好".into()));
    log.comments = vec![Comment::new(AccountId::new("rev-1"), T0, "辛苦了")];
    log
}

fn full_records() -> Vec<Record> {
    vec![
        full_child().into(),
        full_elder().into(),
        full_visit().into(),
        full_log().into(),
    ]
}

// ----- round trips -------------------------------------------------------------------------

#[test]
fn every_kind_round_trips_through_json() {
    for record in full_records() {
        let text = serde_json::to_string(&record).unwrap();
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record, "{text}");
    }
}

#[test]
fn new_records_round_trip_through_json() {
    // Fresh records: no optional field set, lists empty, review untouched.
    let records: Vec<Record> = vec![
        Child::new(
            village(),
            "a",
            YearMonth::new(2015, 1).unwrap(),
            Gender::Female,
        )
        .into(),
        HomeVisit::new(
            village(),
            AccountId::new("dir-1"),
            SubjectId::new(CHILD_ID),
            T0,
        )
        .into(),
        ServiceLog::new(village(), AccountId::new("cw-1"), SubjectId::new("e"), T0).into(),
    ];
    for record in records {
        let value = serde_json::to_value(&record).unwrap();
        let back: Record = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(back, record, "{value}");
    }
}

#[test]
fn kind_appears_once_and_chooses_the_type() {
    let text = serde_json::to_string(&Record::from(full_visit())).unwrap();
    assert_eq!(text.matches("\"kind\"").count(), 1, "{text}");
    let value: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(value["kind"], "home-visit");
    let back: Record = serde_json::from_value(value).unwrap();
    assert!(matches!(back, Record::HomeVisit(_)));
}

// ----- the JSON is the document ------------------------------------------------------------

/// The JSON a JavaScript client would see for a document: maps as objects, lists as
/// arrays, text and scalar strings as strings, ints as numbers.
fn document_json(doc: &mut AutoCommit) -> Json {
    fn convert(value: &hydrate::Value) -> Json {
        match value {
            hydrate::Value::Map(map) => Json::Object(
                map.iter()
                    .map(|(key, entry)| (key.clone(), convert(&entry.value)))
                    .collect(),
            ),
            hydrate::Value::List(list) => {
                Json::Array(list.iter().map(|item| convert(&item.value)).collect())
            }
            hydrate::Value::Text(text) => Json::String(text.to_string()),
            hydrate::Value::Scalar(scalar) => match scalar {
                ScalarValue::Str(text) => Json::String(text.to_string()),
                ScalarValue::Int(i) => json!(i),
                ScalarValue::Uint(u) => json!(u),
                ScalarValue::Boolean(b) => json!(b),
                ScalarValue::Null => Json::Null,
                other => panic!("unexpected scalar {other:?} in a record document"),
            },
        }
    }
    convert(&doc.document().hydrate(None))
}

#[test]
fn the_json_of_a_record_is_its_document() {
    for record in full_records() {
        let mut doc = AutoCommit::new();
        record.save(&mut doc).unwrap();
        assert_eq!(
            serde_json::to_value(&record).unwrap(),
            document_json(&mut doc),
            "{:?}",
            record.kind()
        );
    }
}

#[test]
fn the_json_of_a_new_record_is_its_document() {
    // Absent optional values must be absent keys (Rust deletes them), not `null`.
    let record = Record::from(ServiceLog::new(
        village(),
        AccountId::new("cw-1"),
        SubjectId::new("e"),
        T0,
    ));
    let mut doc = AutoCommit::new();
    record.save(&mut doc).unwrap();
    let value = serde_json::to_value(&record).unwrap();
    assert_eq!(value, document_json(&mut doc));
    assert!(value.get("checkOut").is_none(), "{value}");
}

// ----- the keys are the schema's -----------------------------------------------------------

/// The key paths of `docs/schema.md` for one kind, as `a`, `a.b`, `a[].b` and `a.*.b`.
fn schema_keys(kind: &str) -> BTreeSet<String> {
    let schema = include_str!("../../docs/schema.md");
    let mut keys = BTreeSet::new();
    let mut section = "";
    for line in schema.lines() {
        if let Some(title) = line.strip_prefix("## ").or(line.strip_prefix("### ")) {
            section = title;
            continue;
        }
        let Some(cell) = line.strip_prefix("| `") else {
            continue;
        };
        let Some(key) = cell.split('`').next() else {
            continue;
        };
        let wanted = match section {
            "Root fields of every document" => {
                key != "worker" || matches!(kind, "home-visit" | "service-log")
            }
            s if s.starts_with("Review (`review`") => {
                keys.insert(format!("review.{key}"));
                false
            }
            s if s.starts_with("Comment (items of `comments`") => {
                keys.insert(format!("comments[].{key}"));
                false
            }
            s => s.starts_with(&format!("`{kind}`")),
        };
        if wanted {
            keys.insert(key.to_owned());
        }
    }
    // Review and comment keys were collected for every kind; keep them where the kind has
    // the parent key.
    keys.retain(|key| match key.split(['.', '[']).next() {
        Some("review") => kind == "home-visit" || kind == "service-log",
        _ => true,
    });
    keys
}

/// Every key path in a JSON record, in the notation of [`schema_keys`].
fn json_keys(value: &Json, prefix: &str, out: &mut BTreeSet<String>) {
    if let Json::Object(map) = value {
        for (key, entry) in map {
            let path = format!("{prefix}{key}");
            match entry {
                Json::Object(_) => json_keys(entry, &format!("{path}."), out),
                Json::Array(items) => {
                    for item in items {
                        json_keys(item, &format!("{path}[]."), out);
                    }
                }
                _ => {}
            }
            out.insert(path);
        }
    }
}

/// True when `path` is `pattern`, where a `*` segment of the pattern stands for any key.
fn matches_pattern(path: &str, pattern: &str) -> bool {
    let path: Vec<&str> = path.split('.').collect();
    let pattern: Vec<&str> = pattern.split('.').collect();
    path.len() == pattern.len() && path.iter().zip(&pattern).all(|(p, q)| *q == "*" || p == q)
}

#[test]
fn the_json_keys_are_the_schema_keys() {
    for record in full_records() {
        let kind = record.kind().as_str();
        let schema = schema_keys(kind);
        assert!(
            schema.len() > 5,
            "{kind}: schema keys not found: {schema:?}"
        );
        let mut found = BTreeSet::new();
        json_keys(&serde_json::to_value(&record).unwrap(), "", &mut found);
        for path in &found {
            assert!(
                schema.iter().any(|key| matches_pattern(path, key)),
                "{kind}: `{path}` is not in docs/schema.md (schema: {schema:?})"
            );
        }
        // The examples set every field, so every key of the schema must show.
        for key in &schema {
            assert!(
                found.iter().any(|path| matches_pattern(path, key)),
                "{kind}: `{key}` of docs/schema.md is missing from the JSON {found:?}"
            );
        }
    }
}

#[test]
fn values_are_stored_strings() {
    let child = serde_json::to_value(Record::from(full_child())).unwrap();
    assert_eq!(child["birthYearMonth"], "2014-03");
    assert_eq!(child["risk"]["date"], "2024-04-30");
    assert_eq!(
        child["categories"],
        json!(["left-behind", "de-facto-unattended"])
    );
    assert_eq!(child["guardians"][0]["relation"], "grandparent");
    assert_eq!(child["schemaVersion"], 1);
    let log = serde_json::to_value(Record::from(full_log())).unwrap();
    assert_eq!(log["services"], json!(["daily-care", "other:理发"]));
    assert_eq!(log["confirmation"]["method"], "family-member");
    assert_eq!(log["checkIn"], T0);
}

// ----- absent and null fields --------------------------------------------------------------

fn minimal_json() -> Vec<(Json, Record)> {
    let child = json!({
        "kind": "child", "schemaVersion": 1, "orgUnit": "370402001001",
        "name": "王小明", "birthYearMonth": "2014-03", "gender": "male", "status": "active",
    });
    let elder = json!({
        "kind": "elder", "schemaVersion": 1, "orgUnit": "370402001001", "name": "李大爷",
        "birthYearMonth": "1940-11", "gender": "male", "careNeeds": "moderate",
        "status": "active",
    });
    let visit = json!({
        "kind": "home-visit", "schemaVersion": 1, "orgUnit": "370402001001",
        "worker": "dir-1", "childId": CHILD_ID, "startedAt": T0, "status": "draft",
    });
    let log = json!({
        "kind": "service-log", "schemaVersion": 1, "orgUnit": "370402001001",
        "worker": "cw-1", "elderId": "3Xy7ElderDocId", "checkIn": T0,
    });
    vec![
        (
            child,
            Child::new(
                village(),
                "王小明",
                YearMonth::new(2014, 3).unwrap(),
                Gender::Male,
            )
            .into(),
        ),
        (
            elder,
            Elder::new(
                village(),
                "李大爷",
                YearMonth::new(1940, 11).unwrap(),
                Gender::Male,
                CareNeedsLevel::Moderate,
            )
            .into(),
        ),
        (
            visit,
            HomeVisit::new(
                village(),
                AccountId::new("dir-1"),
                SubjectId::new(CHILD_ID),
                T0,
            )
            .into(),
        ),
        (
            log,
            ServiceLog::new(
                village(),
                AccountId::new("cw-1"),
                SubjectId::new("3Xy7ElderDocId"),
                T0,
            )
            .into(),
        ),
    ]
}

/// A document holding exactly the JSON's keys, written the way automerge clients write
/// them, loaded through autosurgeon.
fn load_from_document(value: &Json) -> Record {
    use automerge::transaction::Transactable;
    let mut doc = AutoCommit::new();
    for (key, entry) in value.as_object().unwrap() {
        match entry {
            Json::String(text) => doc.put(automerge::ROOT, key, text.as_str()).unwrap(),
            Json::Number(number) => doc
                .put(automerge::ROOT, key, number.as_i64().unwrap())
                .unwrap(),
            Json::Null => doc.put(automerge::ROOT, key, ScalarValue::Null).unwrap(),
            other => panic!("unexpected {other}"),
        }
    }
    Record::load(&doc).unwrap()
}

#[test]
fn missing_optional_fields_take_their_defaults() {
    for (value, expected) in minimal_json() {
        let record: Record = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(record, expected, "{value}");
        // The same defaults as autosurgeon's `missing = "Default::default"`.
        assert_eq!(record, load_from_document(&value), "{value}");
    }
}

#[test]
fn null_means_absent() {
    let nullable = [
        "risk",
        "guardians",
        "categories",
        "idCard",
        "comments",
        "endedAt",
        "checklist",
        "needs",
        "actions",
        "referrals",
        "nextVisitDate",
        "review",
        "services",
        "checkOut",
        "durationOverride",
        "confirmation",
        "note",
    ];
    for (mut value, expected) in minimal_json() {
        let kind = value["kind"].as_str().unwrap().to_owned();
        let schema = schema_keys(&kind);
        for key in nullable.iter().filter(|key| schema.contains(**key)) {
            value[*key] = Json::Null;
        }
        let record: Record = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(record, expected, "{value}");
        assert_eq!(record, load_from_document(&value), "{value}");
    }
}

#[test]
fn invalid_json_is_refused_with_a_reason() {
    let cases = [
        (json!({"kind": "parcel"}), "parcel"),
        (
            json!({"kind": "child", "schemaVersion": 1, "orgUnit": "1", "name": "a",
                   "birthYearMonth": "2014-3", "gender": "male", "status": "active"}),
            "YYYY-MM",
        ),
        (
            json!({"kind": "child", "schemaVersion": 1, "orgUnit": "1", "name": "a",
                   "birthYearMonth": "2014-03", "gender": "boy", "status": "active"}),
            "boy",
        ),
        (
            json!({"kind": "elder", "schemaVersion": 1, "orgUnit": "1", "name": "a",
                   "birthYearMonth": "2014-03", "gender": "male", "status": "active"}),
            "careNeeds",
        ),
        (
            json!({"kind": "service-log", "schemaVersion": 1, "orgUnit": "1", "worker": "w",
                   "elderId": "e", "checkIn": T0, "services": ["juggling"]}),
            "juggling",
        ),
    ];
    for (value, mentioned) in cases {
        let error = serde_json::from_value::<Record>(value.clone()).unwrap_err();
        assert!(
            error.to_string().contains(mentioned),
            "{value}: {error} should mention {mentioned}"
        );
    }
}

#[test]
fn report_rows_and_metadata_have_camel_case_json() {
    let record = Record::from(full_log());
    let row = serde_json::to_value(report_row("doc-1", &record)).unwrap();
    assert_eq!(row["document"], "doc-1");
    assert_eq!(row["kind"], "service-log");
    assert_eq!(row["orgUnit"], "370402001001");
    assert_eq!(row["minutes"], 60);
    assert_eq!(row["recordStatus"], "final");
    assert_eq!(row["reviewState"], "approved");
    assert_eq!(row["day"], "2024-05-01");
    assert_eq!(row["needsOrServices"], "日常护理、理发");
    assert_eq!(row["risk"], Json::Null);
    let back: ReportRow = serde_json::from_value(row).unwrap();
    assert_eq!(back, report_row("doc-1", &record));

    let meta = serde_json::to_value(record.meta()).unwrap();
    assert_eq!(
        meta,
        json!({"kind": "service-log", "schemaVersion": 1, "owner": "370402001001",
               "worker": "cw-1", "subject": "3Xy7ElderDocId"})
    );
    assert_eq!(
        serde_json::from_value::<DocumentMeta>(meta).unwrap(),
        record.meta()
    );
}
