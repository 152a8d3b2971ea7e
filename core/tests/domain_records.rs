//! Records through automerge documents: round trips, documents written the way the
//! JavaScript library writes them, metadata, and the helpers records rely on.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use caresync_core::domain::*;

const T0: Millis = 1_714_536_000_000; // 2024-05-01T04:00:00Z, 12:00 in China
const MINUTE: Millis = 60_000;

fn village() -> OrgUnitCode {
    OrgUnitCode::new("370402001001")
}

fn sample_child() -> Child {
    let mut child = Child::new(
        village(),
        "王小明",
        YearMonth::new(2014, 3).unwrap(),
        Gender::Male,
    );
    child.categories = vec![ChildCategory::LeftBehind, ChildCategory::PoorFamily];
    child.risk = Some(Risk {
        level: RiskLevel::Yellow,
        date: Date::new(2024, 4, 30).unwrap(),
        reason: Some("父母均在外务工，祖母年迈".to_owned()),
    });
    child.guardians = vec![
        Guardian {
            name: "王奶奶".to_owned(),
            relation: GuardianRelation::Grandparent,
            phone: Some("13800000000".to_owned()),
        },
        Guardian {
            name: "王大明".to_owned(),
            relation: GuardianRelation::Father,
            phone: None,
        },
    ];
    child.id_card = Some(IdCardRef::from_full_number("11010519491231002X", "salt").unwrap());
    child.comments = vec![Comment::new(AccountId::new("rev-1"), T0, "请补充学校信息")];
    child
}

fn sample_elder() -> Elder {
    Elder::new(
        village(),
        "李大爷",
        YearMonth::new(1940, 11).unwrap(),
        Gender::Male,
        CareNeedsLevel::Moderate,
    )
}

fn sample_visit() -> HomeVisit {
    let mut visit = HomeVisit::new(
        village(),
        AccountId::new("dir-1"),
        SubjectId::new("2Ld9ZxQ8kS3hP1sLcH3JvBq9Fz7x"),
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
    visit.comments = vec![Comment::new(
        AccountId::new("dir-1"),
        T0 + 90_000_000,
        "约每周两天",
    )];
    visit
}

fn sample_log() -> ServiceLog {
    let mut log = ServiceLog::new(
        village(),
        AccountId::new("cw-1"),
        SubjectId::new("3Xy7ElderDocId"),
        T0,
    );
    log.services = vec![
        ServiceType::DailyCare,
        ServiceType::Laundry,
        ServiceType::Other("理发".to_owned()),
    ];
    log.check_out = Some(T0 + 90 * MINUTE);
    log.confirmation = Some(Confirmation {
        confirmed: true,
        at: T0 + 89 * MINUTE,
        method: ConfirmationMethod::Signature,
    });
    log.note = Some("老人精神状态良好".to_owned());
    log.review = Review::approve(AccountId::new("rev-1"), T0 + 86_400_000, None);
    log
}

fn round_trip(record: &Record) -> Record {
    let mut doc = AutoCommit::new();
    record.save(&mut doc).unwrap();
    // Through bytes too: what a peer receives.
    let bytes = doc.save();
    let loaded = automerge::Automerge::load(&bytes).unwrap();
    Record::load(&loaded).unwrap()
}

#[test]
fn every_record_kind_round_trips() {
    for record in [
        Record::from(sample_child()),
        Record::from(sample_elder()),
        Record::from(sample_visit()),
        Record::from(sample_log()),
    ] {
        assert_eq!(round_trip(&record), record);
    }
}

/// Each comment's id and the automerge object that holds it.
fn comment_objects(doc: &AutoCommit) -> std::collections::HashMap<String, ObjId> {
    let mut objects = std::collections::HashMap::new();
    if let Some((_, list)) = doc.get(automerge::ROOT, "comments").unwrap() {
        for index in 0..doc.length(&list) {
            let (_, comment) = doc.get(&list, index).unwrap().unwrap();
            let (id, _) = doc.get(&comment, "id").unwrap().unwrap();
            objects.insert(id.as_str().unwrap().to_owned(), comment);
        }
    }
    objects
}

/// Each save reconciles against what the document holds, and the reader and writer keep
/// what they have read of each object; a save that grows, shrinks, reorders or clears
/// lists and nested objects must still leave exactly the record it was given.
#[test]
fn successive_saves_into_one_document_each_load_back_as_saved() {
    let first = sample_child();
    let mut more_guardians = first.clone();
    more_guardians.guardians.insert(
        1,
        Guardian {
            name: "王二姨".to_owned(),
            relation: GuardianRelation::OtherRelative,
            phone: None,
        },
    );
    more_guardians.guardians[0].phone = None;
    more_guardians.categories.reverse();
    more_guardians
        .comments
        .push(Comment::new(AccountId::new("dir-1"), T0 + MINUTE, "已补充"));
    let mut cleared = more_guardians.clone();
    cleared.guardians.remove(0);
    cleared.risk = None;
    cleared.id_card = None;
    cleared.name = "王小明明".to_owned();
    let mut risk_again = cleared.clone();
    risk_again.risk = Some(Risk {
        level: RiskLevel::Red,
        date: Date::new(2024, 5, 2).unwrap(),
        reason: Some("祖母住院".to_owned()),
    });
    risk_again.guardians.clear();
    risk_again.categories = vec![ChildCategory::DeFactoUnattended];
    // Comments are matched by id, so these are inserts and deletes inside the list, after
    // which the entries behind them are read again at their new places.
    let mut comment_first = risk_again.clone();
    comment_first.comments.insert(
        0,
        Comment::new(AccountId::new("rev-2"), T0 + 2 * MINUTE, "请核实"),
    );
    let mut comment_gone = comment_first.clone();
    comment_gone.comments.remove(1);

    let mut doc = AutoCommit::new();
    for version in [
        &first,
        &more_guardians,
        &cleared,
        &risk_again,
        &comment_first,
        &comment_gone,
        &first,
    ] {
        let comments_before = comment_objects(&doc);
        version.save(&mut doc).unwrap();
        assert_eq!(&Child::load(&doc).unwrap(), version);
        // A comment that stays is the same object, so an edit made to it elsewhere at the
        // same time still lands on it after the merge.
        for (id, object) in comment_objects(&doc) {
            if let Some(before) = comments_before.get(&id) {
                assert_eq!(&object, before, "comment {id} was written anew");
            }
        }
        doc.commit();
        let reloaded = automerge::Automerge::load(&doc.save()).unwrap();
        assert_eq!(&Child::load(&reloaded).unwrap(), version);
    }

    let mut visit = sample_visit();
    let mut doc = AutoCommit::new();
    visit.save(&mut doc).unwrap();
    visit.checklist.schooling = None;
    visit.needs = vec![
        "心理疏导".to_owned(),
        "课业辅导".to_owned(),
        "营养".to_owned(),
    ];
    visit.referrals.clear();
    visit.review = Review::default();
    visit.save(&mut doc).unwrap();
    assert_eq!(HomeVisit::load(&doc).unwrap(), visit);
}

/// The reader keeps the entries of small maps only; a record whose root carries many keys
/// it does not know (a newer client's, or a crafted document's) still reads and saves.
#[test]
fn a_record_among_many_unknown_root_keys_loads_and_saves() {
    let mut doc = AutoCommit::new();
    let mut child = sample_child();
    child.save(&mut doc).unwrap();
    for index in 0..200 {
        doc.put(automerge::ROOT, format!("extra{index:03}"), index)
            .unwrap();
    }
    assert_eq!(Child::load(&doc).unwrap(), child);
    child.name = "王小明明".to_owned();
    child.guardians.remove(0);
    child.save(&mut doc).unwrap();
    assert_eq!(Child::load(&doc).unwrap(), child);
    assert_eq!(
        doc.get(automerge::ROOT, "extra199")
            .unwrap()
            .unwrap()
            .0
            .as_i64(),
        Some(199)
    );
}

#[test]
fn typed_load_round_trips_and_refuses_other_kinds() {
    let mut doc = AutoCommit::new();
    sample_log().save(&mut doc).unwrap();
    assert_eq!(ServiceLog::load(&doc).unwrap(), sample_log());
    match HomeVisit::load(&doc) {
        Err(DomainError::WrongKind { expected, found }) => {
            assert_eq!(expected, DocumentKind::HomeVisit);
            assert_eq!(found, "service-log");
        }
        other => panic!("expected WrongKind, got {other:?}"),
    }
    // Saving another kind into an existing document is refused too: kinds never change.
    assert!(matches!(
        sample_visit().save(&mut doc),
        Err(DomainError::WrongKind { .. })
    ));
}

#[test]
fn saved_documents_have_the_documented_shape() {
    let mut doc = AutoCommit::new();
    let mut log = sample_log();
    log.duration_override = None;
    log.note = None;
    log.save(&mut doc).unwrap();
    let root = automerge::ROOT;
    let scalar = |key: &str| match doc.get(&root, key).unwrap() {
        Some((Value::Scalar(s), _)) => s.into_owned(),
        other => panic!("{key}: expected a scalar, got {other:?}"),
    };
    assert_eq!(scalar("kind"), ScalarValue::from("service-log"));
    assert_eq!(scalar("schemaVersion"), ScalarValue::Int(1));
    assert_eq!(scalar("orgUnit"), ScalarValue::from("370402001001"));
    assert_eq!(scalar("checkIn"), ScalarValue::Int(T0));
    // `None` is an absent key, not null.
    assert!(doc.get(&root, "note").unwrap().is_none());
    assert!(doc.get(&root, "durationOverride").unwrap().is_none());
    // Services are strings, with locally configured ones prefixed.
    let (_, services) = doc.get(&root, "services").unwrap().unwrap();
    let third = doc.get(&services, 2).unwrap().unwrap().0;
    assert_eq!(
        third,
        Value::Scalar(std::borrow::Cow::Owned(ScalarValue::from("other:理发")))
    );
    let meta = read_meta(&doc).unwrap();
    assert_eq!(meta, Record::from(log).meta());
}

fn put_text(doc: &mut AutoCommit, obj: &ObjId, key: &str, text: &str) {
    let id = doc.put_object(obj, key, ObjType::Text).unwrap();
    doc.splice_text(&id, 0, 0, text).unwrap();
}

fn insert_text(doc: &mut AutoCommit, list: &ObjId, index: usize, text: &str) {
    let id = doc.insert_object(list, index, ObjType::Text).unwrap();
    doc.splice_text(&id, 0, 0, text).unwrap();
}

/// A home visit as `Automerge.change(doc, d => { d.kind = "home-visit"; ... })` writes it
/// with @automerge/automerge 2.x/3.x: every string a Text object, numbers as ints (one
/// float, one timestamp for good measure).
fn js_style_visit() -> AutoCommit {
    let mut doc = AutoCommit::new();
    let root = automerge::ROOT;
    put_text(&mut doc, &root, "kind", "home-visit");
    doc.put(&root, "schemaVersion", ScalarValue::F64(1.0))
        .unwrap();
    put_text(&mut doc, &root, "orgUnit", "370402001001");
    put_text(&mut doc, &root, "worker", "dir-1");
    put_text(&mut doc, &root, "childId", "2Ld9ZxQ8kS3hP1sLcH3JvBq9Fz7x");
    doc.put(&root, "startedAt", ScalarValue::Int(T0)).unwrap();
    doc.put(&root, "endedAt", ScalarValue::Timestamp(T0 + 30 * MINUTE))
        .unwrap();
    let checklist = doc.put_object(&root, "checklist", ObjType::Map).unwrap();
    for key in ["guardianship", "schooling", "health", "safety", "living"] {
        let item = doc.put_object(&checklist, key, ObjType::Map).unwrap();
        put_text(
            &mut doc,
            &item,
            "status",
            if key == "health" { "serious" } else { "ok" },
        );
        if key == "health" {
            put_text(&mut doc, &item, "note", "发烧三天未就医");
        }
    }
    let needs = doc.put_object(&root, "needs", ObjType::List).unwrap();
    insert_text(&mut doc, &needs, 0, "就医");
    let actions = doc.put_object(&root, "actions", ObjType::List).unwrap();
    insert_text(&mut doc, &actions, 0, "陪同去卫生院");
    let referrals = doc.put_object(&root, "referrals", ObjType::List).unwrap();
    let referral = doc.insert_object(&referrals, 0, ObjType::Map).unwrap();
    put_text(&mut doc, &referral, "to", "镇卫生院");
    doc.put(&root, "nextVisitDate", ScalarValue::Null).unwrap();
    put_text(&mut doc, &root, "status", "final");
    let review = doc.put_object(&root, "review", ObjType::Map).unwrap();
    put_text(&mut doc, &review, "state", "pending");
    let comments = doc.put_object(&root, "comments", ObjType::List).unwrap();
    let comment = doc.insert_object(&comments, 0, ObjType::Map).unwrap();
    put_text(&mut doc, &comment, "id", "c1");
    put_text(&mut doc, &comment, "author", "dir-1");
    doc.put(&comment, "at", ScalarValue::Int(T0)).unwrap();
    put_text(&mut doc, &comment, "text", "已联系家属");
    // A key from a newer client: must survive a save by this version.
    put_text(&mut doc, &root, "futureField", "kept");
    doc.commit();
    doc
}

#[test]
fn a_js_style_document_with_text_strings_hydrates() {
    let doc = js_style_visit();
    let visit = HomeVisit::load(&doc).unwrap();
    assert_eq!(visit.kind, DocumentKind::HomeVisit);
    assert_eq!(visit.schema_version, 1);
    assert_eq!(visit.org_unit.as_str(), "370402001001");
    assert_eq!(visit.worker.as_str(), "dir-1");
    assert_eq!(visit.ended_at, Some(T0 + 30 * MINUTE));
    let health = visit.checklist.health.clone().unwrap();
    assert_eq!(health.status, CheckStatus::Serious);
    assert_eq!(health.note.as_deref(), Some("发烧三天未就医"));
    assert_eq!(visit.needs, vec!["就医".to_owned()]);
    assert_eq!(visit.referrals[0].to, "镇卫生院");
    assert_eq!(visit.referrals[0].reason, None);
    assert_eq!(visit.next_visit_date, None);
    assert_eq!(visit.status, RecordStatus::Final);
    assert!(visit.review.is_untouched());
    assert_eq!(visit.comments[0].text, "已联系家属");
    assert!(caresync_core::validation::validate(&Record::from(visit)).is_ok());

    let meta = read_meta(&doc).unwrap();
    assert_eq!(meta.kind, DocumentKind::HomeVisit);
    assert_eq!(meta.schema_version, 1);
    assert_eq!(meta.owner.as_str(), "370402001001");
    assert_eq!(meta.worker, Some(AccountId::new("dir-1")));
    assert_eq!(
        meta.subject,
        Some(SubjectId::new("2Ld9ZxQ8kS3hP1sLcH3JvBq9Fz7x"))
    );
    assert!(matches!(Record::load(&doc).unwrap(), Record::HomeVisit(_)));
}

#[test]
fn saving_an_unchanged_js_record_writes_nothing() {
    let mut doc = js_style_visit();
    let heads = doc.get_heads();
    let visit = HomeVisit::load(&doc).unwrap();
    visit.save(&mut doc).unwrap();
    assert_eq!(
        doc.pending_ops(),
        0,
        "an unchanged record must not produce operations"
    );
    doc.commit();
    assert_eq!(doc.get_heads(), heads);
    // The JavaScript client's Text objects are still Text objects.
    let (kind, _) = doc.get(automerge::ROOT, "kind").unwrap().unwrap();
    assert_eq!(kind, Value::Object(ObjType::Text));
}

#[test]
fn saving_a_changed_js_record_touches_only_the_change_and_keeps_unknown_keys() {
    let mut doc = js_style_visit();
    let mut visit = HomeVisit::load(&doc).unwrap();
    visit.actions.push("通知村医".to_owned());
    visit.save(&mut doc).unwrap();
    doc.commit();
    let (name, _) = doc.get(automerge::ROOT, "worker").unwrap().unwrap();
    assert_eq!(
        name,
        Value::Object(ObjType::Text),
        "unchanged fields keep their Text"
    );
    assert_eq!(HomeVisit::load(&doc).unwrap(), visit);
    let (future, id) = doc.get(automerge::ROOT, "futureField").unwrap().unwrap();
    assert_eq!(future, Value::Object(ObjType::Text));
    assert_eq!(doc.text(&id).unwrap(), "kept");
}

#[test]
fn concurrent_comments_both_survive_a_merge() {
    let mut doc = AutoCommit::new();
    let visit = sample_visit();
    visit.save(&mut doc).unwrap();
    doc.commit();
    let mut other = doc.fork();

    let mut mine = visit.clone();
    mine.comments.push(Comment::new(
        AccountId::new("dir-1"),
        T0 + 1,
        "补充：已联系学校",
    ));
    mine.save(&mut doc).unwrap();
    doc.commit();

    let mut theirs = visit.clone();
    theirs
        .comments
        .push(Comment::new(AccountId::new("rev-1"), T0 + 2, "收到"));
    theirs.save(&mut other).unwrap();
    other.commit();

    doc.merge(&mut other).unwrap();
    let merged = HomeVisit::load(&doc).unwrap();
    assert_eq!(merged.comments.len(), visit.comments.len() + 2);
}

#[test]
fn missing_required_fields_and_unknown_values_are_named() {
    let mut doc = AutoCommit::new();
    sample_elder().save(&mut doc).unwrap();
    doc.delete(automerge::ROOT, "careNeeds").unwrap();
    assert!(matches!(
        Elder::load(&doc),
        Err(DomainError::MissingField("careNeeds"))
    ));

    let mut doc = AutoCommit::new();
    sample_elder().save(&mut doc).unwrap();
    doc.put(automerge::ROOT, "careNeeds", "very-high").unwrap();
    let error = Elder::load(&doc).unwrap_err();
    assert!(error.to_string().contains("very-high"), "{error}");

    let empty = AutoCommit::new();
    assert!(matches!(
        Record::load(&empty),
        Err(DomainError::MissingField("kind"))
    ));
    assert!(matches!(read_meta(&empty), Err(MetaError::Missing("kind"))));

    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "kind", "pet").unwrap();
    assert!(matches!(Record::load(&doc), Err(DomainError::UnknownKind(k)) if k == "pet"));
    assert!(matches!(read_meta(&doc), Err(MetaError::UnknownKind(k)) if k == "pet"));
}

#[test]
fn document_kind_strings() {
    for kind in DocumentKind::ALL {
        assert_eq!(DocumentKind::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(DocumentKind::HomeVisit.as_str(), "home-visit");
    assert_eq!(DocumentKind::parse("HomeVisit"), None);
    assert_eq!(
        ChildCategory::DeFactoUnattended.as_str(),
        "de-facto-unattended"
    );
    assert_eq!(
        ServiceType::parse("other:理发"),
        Some(ServiceType::Other("理发".to_owned()))
    );
    assert_eq!(ServiceType::parse("massage"), None);
}

#[test]
fn subject_meta_takes_the_document_id() {
    let mut doc = AutoCommit::new();
    sample_elder().save(&mut doc).unwrap();
    let meta = read_meta(&doc).unwrap();
    assert_eq!(meta.subject, None);
    assert_eq!(meta.worker, None);
    let meta = meta.with_document_id("3Xy7ElderDocId");
    assert_eq!(meta.subject, Some(SubjectId::new("3Xy7ElderDocId")));
}

#[test]
fn id_card_reference_keeps_no_full_number() {
    let id = IdCardRef::from_full_number(" 11010519491231002x ", "salt-A").unwrap();
    assert_eq!(id.last4, "002X");
    assert_eq!(id.sha256.len(), 64);
    assert!(!id.sha256.contains("11010519491231002X"));
    // SHA-256("salt-A" + "11010519491231002X"), computed independently with Python's hashlib.
    assert_eq!(
        id.sha256,
        "ad1016608d00855721f76d46f3fc94408c5b8ef960aee9642d29019eb20a71f0"
    );
    assert!(id.matches("11010519491231002X", "salt-A"));
    assert!(!id.matches("11010519491231002X", "salt-B"));
    assert_eq!(
        IdCardRef::from_full_number("110105194912310021", "s"),
        Err(IdCardError::Checksum)
    );
    assert_eq!(
        IdCardRef::from_full_number("1101051949", "s"),
        Err(IdCardError::Length)
    );
    assert_eq!(
        IdCardRef::from_full_number("1101051949123100AX", "s"),
        Err(IdCardError::Character)
    );
}

#[test]
fn dates_and_instants() {
    assert_eq!(Date::parse("2024-02-29"), Date::new(2024, 2, 29));
    assert_eq!(Date::parse("2023-02-29"), None);
    assert_eq!(Date::parse("2024-5-01"), None);
    assert_eq!(Date::parse("+024-05-01"), None);
    assert_eq!(Date::new(2024, 5, 1).unwrap().to_string(), "2024-05-01");
    assert_eq!(Date::new(1970, 1, 1).unwrap().days_since_epoch(), 0);
    assert_eq!(Date::from_days_since_epoch(19_844), Date::new(2024, 5, 1));
    // 2024-04-30T16:00Z is midnight of May 1st in China.
    assert_eq!(Date::of_instant(1_714_492_800_000), Date::new(2024, 5, 1));
    assert_eq!(Date::of_instant(1_714_492_799_999), Date::new(2024, 4, 30));
    assert_eq!(YearMonth::parse("2014-03"), YearMonth::new(2014, 3));
    assert_eq!(YearMonth::parse("2014-13"), None);
    assert_eq!(
        YearMonth::new(2014, 3)
            .unwrap()
            .age_on(Date::new(2024, 2, 28).unwrap()),
        9
    );
    assert_eq!(
        YearMonth::new(2014, 3)
            .unwrap()
            .age_on(Date::new(2024, 3, 1).unwrap()),
        10
    );
}

#[test]
fn org_tree_answers_containment() {
    let unit = |code: &str, level, parent: Option<&str>| OrgUnit {
        code: OrgUnitCode::new(code),
        name: code.to_owned(),
        level,
        parent: parent.map(OrgUnitCode::new),
    };
    let tree = OrgTree::from_units([
        unit("3704", OrgLevel::Prefecture, None),
        unit("370402", OrgLevel::District, Some("3704")),
        unit("370402001", OrgLevel::Township, Some("370402")),
        unit("370402001001", OrgLevel::Village, Some("370402001")),
        unit("370402002", OrgLevel::Township, Some("370402")),
        unit("370402002001", OrgLevel::Village, Some("370402002")),
    ]);
    let code = OrgUnitCode::new;
    assert!(tree.is_within(&code("370402001001"), &code("370402001")));
    assert!(tree.is_within(&code("370402001001"), &code("3704")));
    assert!(tree.is_within(&code("370402001"), &code("370402001")));
    assert!(!tree.is_within(&code("370402002001"), &code("370402001")));
    assert!(!tree.is_within(&code("370402001"), &code("370402001001")));
    // Unknown codes are inside only themselves.
    assert!(!tree.is_within(&code("999"), &code("3704")));
    assert!(tree.is_within(&code("999"), &code("999")));
    assert_eq!(tree.ancestry(&code("370402001001")).len(), 4);
    assert_eq!(tree.children(&code("370402")).len(), 2);
    assert_eq!(OrgLevel::Township.child_level(), Some(OrgLevel::Village));
}

#[test]
fn duration_is_derived_and_overridable() {
    let mut log = sample_log();
    assert_eq!(log.measured_minutes(), Some(90));
    assert_eq!(log.duration_minutes(), Some(90));
    log.duration_override = Some(DurationOverride {
        minutes: 60,
        reason: Some("忘记签退".to_owned()),
    });
    assert_eq!(log.duration_minutes(), Some(60));
    log.check_out = None;
    assert_eq!(log.measured_minutes(), None);
}

#[test]
fn clearing_an_optional_field_removes_its_key() {
    let mut doc = AutoCommit::new();
    let mut log = sample_log();
    log.save(&mut doc).unwrap();
    let (_, review) = doc.get(automerge::ROOT, "review").unwrap().unwrap();
    assert!(doc.get(&review, "reviewer").unwrap().is_some());

    log.review = Review::default();
    log.note = None;
    log.save(&mut doc).unwrap();
    let (_, review) = doc.get(automerge::ROOT, "review").unwrap().unwrap();
    assert!(doc.get(&review, "reviewer").unwrap().is_none());
    assert!(doc.get(&review, "at").unwrap().is_none());
    assert!(doc.get(automerge::ROOT, "note").unwrap().is_none());
    assert_eq!(ServiceLog::load(&doc).unwrap(), log);
}

#[test]
fn a_js_style_elder_with_null_optionals_hydrates() {
    let mut doc = AutoCommit::new();
    let root = automerge::ROOT;
    put_text(&mut doc, &root, "kind", "elder");
    doc.put(&root, "schemaVersion", ScalarValue::Int(1))
        .unwrap();
    put_text(&mut doc, &root, "orgUnit", "370402001001");
    put_text(&mut doc, &root, "name", "李大爷");
    put_text(&mut doc, &root, "birthYearMonth", "1940-11");
    put_text(&mut doc, &root, "gender", "male");
    put_text(&mut doc, &root, "careNeeds", "moderate");
    put_text(&mut doc, &root, "status", "active");
    // JavaScript may write null for an empty optional field.
    doc.put(&root, "comments", ScalarValue::Null).unwrap();
    assert_eq!(Elder::load(&doc).unwrap(), sample_elder());
    let meta = read_meta(&doc).unwrap();
    assert_eq!(meta.kind, DocumentKind::Elder);
    assert_eq!(meta.worker, None);
}
