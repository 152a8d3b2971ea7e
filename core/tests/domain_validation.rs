//! Validation rules: each error case with its messages, transitions judged by what they
//! change, and merged states flagged rather than refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use automerge::AutoCommit;
use caresync_core::domain::*;
use caresync_core::validation::limits::*;
use caresync_core::validation::{
    ErrorCode, ValidationError, errors, merged_state_flags, validate, validate_transition,
};

const T0: Millis = 1_714_536_000_000; // 2024-05-01 12:00 in China
const MINUTE: Millis = 60_000;

fn village() -> OrgUnitCode {
    OrgUnitCode::new("370402001001")
}

fn child() -> Child {
    let mut child = Child::new(
        village(),
        "王小明",
        YearMonth::new(2014, 3).unwrap(),
        Gender::Male,
    );
    child.categories = vec![ChildCategory::LeftBehind];
    child
}

fn elder() -> Elder {
    Elder::new(
        village(),
        "李大爷",
        YearMonth::new(1940, 11).unwrap(),
        Gender::Male,
        CareNeedsLevel::Mild,
    )
}

fn visit() -> HomeVisit {
    let mut visit = HomeVisit::new(
        village(),
        AccountId::new("dir-1"),
        SubjectId::new("child-doc"),
        T0,
    );
    visit.ended_at = Some(T0 + 40 * MINUTE);
    visit.checklist = Checklist::all_ok();
    visit.status = RecordStatus::Final;
    visit
}

fn log() -> ServiceLog {
    let mut log = ServiceLog::new(
        village(),
        AccountId::new("cw-1"),
        SubjectId::new("elder-doc"),
        T0,
    );
    log.services = vec![ServiceType::Visiting];
    log.check_out = Some(T0 + 60 * MINUTE);
    log
}

/// Asserts that `record` has exactly the errors `expected` (field, code), each with
/// non-empty Chinese and English messages and a known field label.
fn assert_errors(record: impl Into<Record>, expected: &[(&str, ErrorCode)]) {
    let record = record.into();
    let found = errors(&record);
    let found_pairs: Vec<(String, ErrorCode)> = found
        .iter()
        .map(|e| (e.field.clone(), e.code.clone()))
        .collect();
    let expected_pairs: Vec<(String, ErrorCode)> = expected
        .iter()
        .map(|(f, c)| ((*f).to_owned(), c.clone()))
        .collect();
    assert_eq!(found_pairs, expected_pairs);
    for error in &found {
        assert!(!error.message_zh().is_empty(), "{error:?}");
        assert!(!error.message_en().is_empty(), "{error:?}");
        assert_ne!(
            error.label_zh(),
            "内容",
            "no Chinese label for {}",
            error.field
        );
        assert_ne!(
            error.label_en(),
            "value",
            "no English label for {}",
            error.field
        );
        assert!(!error.code.as_str().is_empty());
    }
}

#[test]
fn valid_records_pass() {
    assert_eq!(validate(&child().into()), Ok(()));
    assert_eq!(validate(&elder().into()), Ok(()));
    assert_eq!(validate(&visit().into()), Ok(()));
    assert_eq!(validate(&log().into()), Ok(()));
    // A draft visit needs no end time or checklist yet.
    let draft = HomeVisit::new(village(), AccountId::new("dir-1"), SubjectId::new("c"), T0);
    assert_eq!(validate(&draft.into()), Ok(()));
}

#[test]
fn end_before_start_speaks_the_workers_language() {
    let mut v = visit();
    v.ended_at = Some(T0 - MINUTE);
    assert_errors(v.clone(), &[("endedAt", ErrorCode::EndBeforeStart)]);
    let error = &errors(&v.into())[0];
    assert_eq!(error.message_zh(), "结束时间不能早于开始时间");
    assert_eq!(
        error.message_en(),
        "The end time cannot be before the start time."
    );
}

#[test]
fn visit_rules() {
    let mut v = visit();
    v.ended_at = Some(T0 + (VISIT_MINUTES_MAX + 1) * MINUTE);
    assert_errors(
        v,
        &[(
            "endedAt",
            ErrorCode::VisitTooLong {
                max_minutes: VISIT_MINUTES_MAX,
            },
        )],
    );

    let mut v = visit();
    v.next_visit_date = Some(Date::new(2024, 4, 30).unwrap());
    assert_errors(v, &[("nextVisitDate", ErrorCode::NextVisitBeforeVisit)]);
    let mut v = visit();
    v.next_visit_date = Some(Date::new(2024, 5, 1).unwrap());
    assert_errors(v, &[]);

    // Final visits must be complete and explain every problem they mark.
    let mut v = visit();
    v.ended_at = None;
    v.checklist.safety = None;
    v.checklist.health = Some(ChecklistItem::with_note(CheckStatus::Serious, "  "));
    assert_errors(
        v.clone(),
        &[
            ("endedAt", ErrorCode::RequiredForFinal),
            ("checklist.health.note", ErrorCode::NoteRequired),
            ("checklist.safety", ErrorCode::RequiredForFinal),
        ],
    );
    v.status = RecordStatus::Draft;
    assert_errors(v, &[]);

    let mut v = visit();
    v.needs = vec!["".to_owned(); NEEDS_MAX + 1];
    v.actions = vec!["字".repeat(ITEM_CHARS_MAX + 1)];
    v.referrals = vec![Referral {
        to: " ".to_owned(),
        reason: None,
    }];
    v.checklist.living = Some(ChecklistItem::with_note(
        CheckStatus::Ok,
        "字".repeat(NOTE_CHARS_MAX + 1),
    ));
    let mut expected = vec![(
        "checklist.living.note".to_owned(),
        ErrorCode::TooLong {
            max_chars: NOTE_CHARS_MAX,
        },
    )];
    expected.push((
        "needs".to_owned(),
        ErrorCode::TooMany {
            max_items: NEEDS_MAX,
        },
    ));
    for i in 0..=NEEDS_MAX {
        expected.push((format!("needs[{i}]"), ErrorCode::Required));
    }
    expected.push((
        "actions[0]".to_owned(),
        ErrorCode::TooLong {
            max_chars: ITEM_CHARS_MAX,
        },
    ));
    expected.push(("referrals[0].to".to_owned(), ErrorCode::Required));
    let expected: Vec<(&str, ErrorCode)> = expected
        .iter()
        .map(|(f, c)| (f.as_str(), c.clone()))
        .collect();
    assert_errors(v, &expected);
}

#[test]
fn service_log_time_rules() {
    let mut l = log();
    l.check_out = Some(T0 - MINUTE);
    assert_errors(l.clone(), &[("checkOut", ErrorCode::CheckOutBeforeCheckIn)]);
    assert_eq!(
        errors(&l.into())[0].message_zh(),
        "签退时间不能早于签到时间"
    );

    let mut l = log();
    l.check_out = Some(T0 + 30_000);
    assert_errors(l, &[("checkOut", ErrorCode::DurationZero)]);

    let mut l = log();
    l.check_out = Some(T0 + (SERVICE_MINUTES_MAX + 1) * MINUTE);
    assert_errors(
        l.clone(),
        &[(
            "checkOut",
            ErrorCode::DurationTooLong {
                max_minutes: SERVICE_MINUTES_MAX,
            },
        )],
    );
    // An override without a reason is refused; with a reason the long log is accepted.
    l.duration_override = Some(DurationOverride {
        minutes: 120,
        reason: None,
    });
    assert_errors(
        l.clone(),
        &[("durationOverride.reason", ErrorCode::OverrideReasonRequired)],
    );
    l.duration_override = Some(DurationOverride {
        minutes: 120,
        reason: Some("忘记签退，实际服务两小时".to_owned()),
    });
    assert_errors(l.clone(), &[]);
    l.duration_override = Some(DurationOverride {
        minutes: 0,
        reason: Some("x".to_owned()),
    });
    assert_errors(
        l,
        &[(
            "durationOverride.minutes",
            ErrorCode::OverrideOutOfRange {
                max_minutes: OVERRIDE_MINUTES_MAX,
            },
        )],
    );

    let mut l = log();
    l.confirmation = Some(Confirmation {
        confirmed: true,
        at: T0 - MINUTE,
        method: ConfirmationMethod::Verbal,
    });
    assert_errors(
        l,
        &[("confirmation.at", ErrorCode::ConfirmationBeforeCheckIn)],
    );

    let mut l = log();
    l.check_in = 0;
    l.check_out = None;
    assert_errors(l, &[("checkIn", ErrorCode::TimeOutOfRange)]);
}

#[test]
fn service_log_service_rules() {
    let mut l = log();
    l.services.clear();
    assert_errors(l.clone(), &[("services", ErrorCode::Required)]);
    l.check_out = None; // still in progress: services may come later
    assert_errors(l, &[]);

    let mut l = log();
    l.services = vec![
        ServiceType::Laundry,
        ServiceType::Other(String::new()),
        ServiceType::Laundry,
        ServiceType::Other("x".repeat(SERVICE_NAME_CHARS_MAX + 1)),
    ];
    l.note = Some("字".repeat(NOTE_CHARS_MAX + 1));
    assert_errors(
        l,
        &[
            ("services[1]", ErrorCode::Required),
            ("services[2]", ErrorCode::Duplicate),
            (
                "services[3]",
                ErrorCode::TooLong {
                    max_chars: SERVICE_NAME_CHARS_MAX,
                },
            ),
            (
                "note",
                ErrorCode::TooLong {
                    max_chars: NOTE_CHARS_MAX,
                },
            ),
        ],
    );
}

#[test]
fn child_rules() {
    let mut c = child();
    c.name = " ".to_owned();
    c.categories = vec![];
    assert_errors(
        c,
        &[
            ("name", ErrorCode::Required),
            ("categories", ErrorCode::Required),
        ],
    );

    let mut c = child();
    c.name = "名".repeat(NAME_CHARS_MAX + 1);
    c.categories = vec![ChildCategory::Orphan, ChildCategory::Orphan];
    c.risk = Some(Risk {
        level: RiskLevel::Red,
        date: Date::new(2024, 5, 1).unwrap(),
        reason: None,
    });
    assert_errors(
        c,
        &[
            (
                "name",
                ErrorCode::TooLong {
                    max_chars: NAME_CHARS_MAX,
                },
            ),
            ("categories[1]", ErrorCode::Duplicate),
            ("risk.reason", ErrorCode::RiskReasonRequired),
        ],
    );

    // Green needs no reason.
    let mut c = child();
    c.risk = Some(Risk {
        level: RiskLevel::Green,
        date: Date::new(2024, 5, 1).unwrap(),
        reason: None,
    });
    assert_errors(c, &[]);

    let guardian = |phone: Option<&str>| Guardian {
        name: "监护人".to_owned(),
        relation: GuardianRelation::Mother,
        phone: phone.map(str::to_owned),
    };
    let mut c = child();
    c.guardians = vec![guardian(Some("abc")); GUARDIANS_MAX + 1];
    c.guardians[0] = guardian(Some("+86 138-0000-0000"));
    c.guardians[1].name = String::new();
    c.id_card = Some(IdCardRef {
        last4: "12".to_owned(),
        sha256: "nothex".to_owned(),
    });
    let mut expected = vec![
        (
            "guardians".to_owned(),
            ErrorCode::TooMany {
                max_items: GUARDIANS_MAX,
            },
        ),
        ("guardians[1].name".to_owned(), ErrorCode::Required),
    ];
    for i in 1..=GUARDIANS_MAX {
        expected.push((format!("guardians[{i}].phone"), ErrorCode::InvalidFormat));
    }
    expected.push(("idCard.last4".to_owned(), ErrorCode::InvalidFormat));
    expected.push(("idCard.sha256".to_owned(), ErrorCode::InvalidFormat));
    let expected: Vec<(&str, ErrorCode)> = expected
        .iter()
        .map(|(f, c)| (f.as_str(), c.clone()))
        .collect();
    assert_errors(c, &expected);
}

#[test]
fn review_and_comment_rules() {
    let mut v = visit();
    v.review = Review {
        state: ReviewState::Returned,
        reviewer: None,
        comment: None,
        at: None,
    };
    assert_errors(
        v.clone(),
        &[
            ("review.reviewer", ErrorCode::ReviewerRequired),
            ("review.at", ErrorCode::ReviewerRequired),
            ("review.comment", ErrorCode::ReturnCommentRequired),
        ],
    );
    let error = ValidationError::new("review.comment", ErrorCode::ReturnCommentRequired);
    assert_eq!(error.message_zh(), "退回记录时，请写明需要修改的地方");

    let mut e = elder();
    e.comments = vec![
        Comment::new(AccountId::new("rev-1"), T0, ""),
        Comment::new(AccountId::new("rev-1"), T0, "ok"),
    ];
    assert_errors(
        e,
        &[
            ("comments[0].text", ErrorCode::Required),
            ("comments[1].id", ErrorCode::Duplicate),
        ],
    );
}

#[test]
fn root_rules() {
    let mut e = elder();
    e.schema_version = 2;
    e.kind = DocumentKind::Child;
    e.org_unit = OrgUnitCode::new("");
    assert_errors(
        e,
        &[
            ("kind", ErrorCode::WrongKind),
            (
                "schemaVersion",
                ErrorCode::UnsupportedSchemaVersion { found: 2 },
            ),
            ("orgUnit", ErrorCode::Required),
        ],
    );
}

#[test]
fn load_errors_become_validation_errors() {
    let mut doc = AutoCommit::new();
    Record::from(elder()).save(&mut doc).unwrap();
    automerge::transaction::Transactable::delete(&mut doc, automerge::ROOT, "name").unwrap();
    let error = ValidationError::from_domain_error(&Record::load(&doc).unwrap_err());
    assert_eq!(error, ValidationError::new("name", ErrorCode::Required));
    assert_eq!(error.message_zh(), "请填写姓名");
    assert_eq!(error.message_en(), "Please fill in the name.");

    automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "name", 5_i64).unwrap();
    let error = ValidationError::from_domain_error(&Record::load(&doc).unwrap_err());
    assert_eq!(error.code.as_str(), "unreadable");
    assert!(!error.message_zh().is_empty() && !error.message_en().is_empty());
}

#[test]
fn a_change_that_keeps_an_old_error_is_accepted() {
    // A record made by an older app: the guardian's phone is malformed.
    let mut before = child();
    before.guardians = vec![Guardian {
        name: "王奶奶".to_owned(),
        relation: GuardianRelation::Grandparent,
        phone: Some("不详".to_owned()),
    }];
    assert!(validate(&before.clone().into()).is_err());

    // A change that fixes nothing but touches something else is accepted.
    let mut after = before.clone();
    after.status = SubjectStatus::Moved;
    assert_eq!(
        validate_transition(Some(&before.clone().into()), &after.clone().into()),
        Ok(())
    );

    // Inserting a guardian in front shifts the old error's index; it is still old.
    let mut shifted = before.clone();
    shifted.guardians.insert(
        0,
        Guardian {
            name: "王大明".to_owned(),
            relation: GuardianRelation::Father,
            phone: None,
        },
    );
    assert_eq!(
        validate_transition(Some(&before.clone().into()), &shifted.into()),
        Ok(())
    );

    // A change that adds an error is refused, and only the new error is reported.
    let mut worse = after.clone();
    worse.name = String::new();
    let refused = validate_transition(Some(&after.into()), &worse.into()).unwrap_err();
    assert_eq!(
        refused,
        vec![ValidationError::new("name", ErrorCode::Required)]
    );

    // A second malformed phone is a new error even though one was there before.
    let mut second = before.clone();
    second.guardians.push(second.guardians[0].clone());
    let refused = validate_transition(Some(&before.clone().into()), &second.into()).unwrap_err();
    assert_eq!(
        refused,
        vec![ValidationError::new(
            "guardians[1].phone",
            ErrorCode::InvalidFormat
        )]
    );

    // A new document is judged whole.
    assert!(validate_transition(None, &before.into()).is_err());
}

#[test]
fn two_valid_concurrent_edits_merge_into_a_flagged_state() {
    let mut doc = AutoCommit::new();
    let original = log();
    original.save(&mut doc).unwrap();
    doc.commit();
    let mut other = doc.fork();

    // Phone A: the check-in was really 50 minutes later (valid: 10 minutes of service).
    let mut a = original.clone();
    a.check_in = T0 + 50 * MINUTE;
    assert_eq!(
        validate_transition(Some(&original.clone().into()), &a.clone().into()),
        Ok(())
    );
    a.save(&mut doc).unwrap();
    doc.commit();

    // Phone B: the check-out was really after 30 minutes (valid: 30 minutes of service).
    let mut b = original.clone();
    b.check_out = Some(T0 + 30 * MINUTE);
    assert_eq!(
        validate_transition(Some(&original.clone().into()), &b.clone().into()),
        Ok(())
    );
    b.save(&mut other).unwrap();
    other.commit();

    doc.merge(&mut other).unwrap();
    let merged = Record::load(&doc).unwrap();
    let flags = merged_state_flags(&merged);
    assert_eq!(
        flags,
        vec![ValidationError::new(
            "checkOut",
            ErrorCode::CheckOutBeforeCheckIn
        )]
    );
}

#[test]
fn document_changes_are_loaded_and_judged() {
    use caresync_core::validation::validate_document_change;
    let empty = AutoCommit::new();
    let mut doc = AutoCommit::new();
    log().save(&mut doc).unwrap();
    doc.commit();

    // A new document is judged whole, and the loaded records come back for the access check.
    let loaded = validate_document_change(&empty, &doc).unwrap();
    assert_eq!(loaded.before, None);
    assert_eq!(loaded.after, Record::from(log()));

    // An invalid edit is refused with the worker-facing error.
    let before = doc.clone();
    let mut bad = log();
    bad.check_out = Some(T0 - MINUTE);
    bad.save(&mut doc).unwrap();
    doc.commit();
    let refused = validate_document_change(&before, &doc).unwrap_err();
    assert_eq!(
        refused,
        vec![ValidationError::new(
            "checkOut",
            ErrorCode::CheckOutBeforeCheckIn
        )]
    );

    // A document that does not load is refused with one error naming the problem.
    let mut broken = before.clone();
    automerge::transaction::Transactable::delete(&mut broken, automerge::ROOT, "checkIn").unwrap();
    let refused = validate_document_change(&before, &broken).unwrap_err();
    assert_eq!(
        refused,
        vec![ValidationError::new("checkIn", ErrorCode::Required)]
    );
}
