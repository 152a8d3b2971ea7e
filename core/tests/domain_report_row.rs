//! The report projection: one row per record kind, and the derived columns (China-time
//! day, counted minutes, concerns) that reports and exports rely on.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use caresync_core::domain::*;
use caresync_core::validation::validate;

const T0: Millis = 1_714_536_000_000; // 2024-05-01T04:00:00Z, 12:00 in China
const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;

const CHILD_DOC: &str = "4NMNnkMhL8jXrdJ9jamS58PAVdXu";
const ELDER_DOC: &str = "3cAVsJLmGSkT5BFZAYnjrjbDKNVG";
const RECORD_DOC: &str = "2Ld9ZxQ8kS3hP1sLcH3JvBq9Fz7x";

fn village() -> OrgUnitCode {
    OrgUnitCode::new("370402001001")
}

fn date(text: &str) -> Date {
    Date::parse(text).unwrap()
}

fn final_visit(started_at: Millis) -> HomeVisit {
    let mut visit = HomeVisit::new(
        village(),
        AccountId::new("dir-1"),
        SubjectId::new(CHILD_DOC),
        started_at,
    );
    visit.ended_at = Some(started_at + 40 * MINUTE);
    visit.checklist = Checklist::all_ok();
    visit.status = RecordStatus::Final;
    visit
}

fn finished_log(check_in: Millis, minutes: i64) -> ServiceLog {
    let mut log = ServiceLog::new(
        village(),
        AccountId::new("worker-1"),
        SubjectId::new(ELDER_DOC),
        check_in,
    );
    log.check_out = Some(check_in + minutes * MINUTE);
    log.services = vec![ServiceType::Visiting, ServiceType::DailyCare];
    log
}

/// Every row in these tests is made from a record that would be accepted: a projection of
/// an invalid record would test nothing the relay ever stores.
fn row_of(document: &str, record: impl Into<Record>) -> ReportRow {
    let record = record.into();
    validate(&record).unwrap();
    report_row(document, &record)
}

#[test]
fn a_child_row_has_name_risk_and_ledger_state() {
    let mut child = Child::new(
        village(),
        "王小明",
        YearMonth::new(2014, 3).unwrap(),
        Gender::Male,
    );
    child.categories = vec![ChildCategory::LeftBehind];
    child.risk = Some(Risk {
        level: RiskLevel::Yellow,
        date: date("2024-04-30"),
        reason: Some("父母均在外务工".to_owned()),
    });
    let row = row_of(CHILD_DOC, child.clone());
    assert_eq!(row.document, CHILD_DOC);
    assert_eq!(row.kind, DocumentKind::Child);
    assert_eq!(row.org_unit, village());
    assert_eq!(row.title, "王小明");
    assert_eq!(row.risk, Some(RiskLevel::Yellow));
    assert!(row.active);
    assert_eq!(row.subject, None);
    assert_eq!(row.worker, None);
    assert_eq!(row.day, None);
    assert_eq!(row.record_status, None);
    assert_eq!(row.review_state, None);
    assert_eq!(row.minutes, None);
    assert!(row.needs_or_services.is_empty() && row.actions.is_empty());

    child.status = SubjectStatus::Closed;
    assert!(!row_of(CHILD_DOC, child).active);
}

#[test]
fn an_elder_row_has_name_and_ledger_state() {
    let mut elder = Elder::new(
        village(),
        "李大爷",
        YearMonth::new(1940, 11).unwrap(),
        Gender::Male,
        CareNeedsLevel::Moderate,
    );
    let row = row_of(ELDER_DOC, elder.clone());
    assert_eq!(row.kind, DocumentKind::Elder);
    assert_eq!(row.title, "李大爷");
    assert!(row.active);
    assert_eq!(row.risk, None);
    assert_eq!(row.subject, None);

    elder.status = SubjectStatus::Deceased;
    assert!(!row_of(ELDER_DOC, elder).active);
}

#[test]
fn a_home_visit_row_has_its_child_times_review_and_joined_columns() {
    let mut visit = final_visit(T0);
    visit.needs = vec!["课业辅导".to_owned(), "冬衣".to_owned()];
    visit.actions = vec!["联系班主任".to_owned()];
    visit.referrals = vec![
        Referral {
            to: "镇中心小学".to_owned(),
            reason: Some("缺课".to_owned()),
        },
        Referral {
            to: "镇卫生院".to_owned(),
            reason: None,
        },
    ];
    visit.next_visit_date = Some(date("2024-06-01"));
    visit.review = Review::send_back(AccountId::new("rev-1"), T0 + HOUR, "请写明缺课天数".into());
    let row = row_of(RECORD_DOC, visit);
    assert_eq!(row.kind, DocumentKind::HomeVisit);
    assert_eq!(row.subject, Some(SubjectId::new(CHILD_DOC)));
    assert_eq!(row.worker, Some(AccountId::new("dir-1")));
    assert_eq!(row.title, "");
    assert_eq!(row.day, Some(date("2024-05-01")));
    assert_eq!(row.started_at, Some(T0));
    assert_eq!(row.ended_at, Some(T0 + 40 * MINUTE));
    assert_eq!(row.minutes, None);
    assert_eq!(row.record_status, Some(RecordStatus::Final));
    assert_eq!(row.review_state, Some(ReviewState::Returned));
    assert_eq!(row.review_comment.as_deref(), Some("请写明缺课天数"));
    assert_eq!(row.next_visit, Some(date("2024-06-01")));
    assert!(row.active);
    assert_eq!(row.needs_or_services, "课业辅导；冬衣");
    assert_eq!(
        row.actions,
        "联系班主任；转介至镇中心小学（缺课）；转介至镇卫生院"
    );
    assert_eq!(row.concerns, "");
}

#[test]
fn a_service_log_row_has_its_elder_times_minutes_and_chinese_service_names() {
    let mut log = finished_log(T0, 45);
    log.services = vec![
        ServiceType::Visiting,
        ServiceType::Laundry,
        ServiceType::Other("理发".to_owned()),
    ];
    log.review = Review::approve(AccountId::new("rev-1"), T0 + HOUR, None);
    let row = row_of(RECORD_DOC, log);
    assert_eq!(row.kind, DocumentKind::ServiceLog);
    assert_eq!(row.subject, Some(SubjectId::new(ELDER_DOC)));
    assert_eq!(row.worker, Some(AccountId::new("worker-1")));
    assert_eq!(row.day, Some(date("2024-05-01")));
    assert_eq!(row.started_at, Some(T0));
    assert_eq!(row.ended_at, Some(T0 + 45 * MINUTE));
    assert_eq!(row.minutes, Some(45));
    assert_eq!(row.record_status, Some(RecordStatus::Final));
    assert_eq!(row.review_state, Some(ReviewState::Approved));
    assert_eq!(row.review_comment, None);
    assert_eq!(row.needs_or_services, "探视访问、衣物清洗、理发");
    assert_eq!(row.next_visit, None);
    assert!(row.actions.is_empty() && row.concerns.is_empty());
}

#[test]
fn a_service_log_in_progress_is_a_draft_without_minutes() {
    let mut log = ServiceLog::new(
        village(),
        AccountId::new("worker-1"),
        SubjectId::new(ELDER_DOC),
        T0,
    );
    log.services = vec![ServiceType::Counselling];
    let row = row_of(RECORD_DOC, log);
    assert_eq!(row.record_status, Some(RecordStatus::Draft));
    assert_eq!(row.minutes, None);
    assert_eq!(row.ended_at, None);
    assert_eq!(row.review_state, Some(ReviewState::Pending));
}

#[test]
fn the_day_is_the_china_day_of_an_instant_near_midnight_utc() {
    // 2024-05-01T23:30:00Z is 07:30 on 2 May in China; 2024-05-01T15:59:00Z is 23:59 on
    // 1 May, one minute before the China day changes.
    let late_utc = 1_714_606_200_000;
    assert_eq!(
        row_of(RECORD_DOC, final_visit(late_utc)).day,
        Some(date("2024-05-02"))
    );
    assert_eq!(
        row_of(RECORD_DOC, finished_log(late_utc, 30)).day,
        Some(date("2024-05-02"))
    );
    let before_china_midnight = 1_714_579_140_000;
    assert_eq!(
        row_of(RECORD_DOC, final_visit(before_china_midnight)).day,
        Some(date("2024-05-01"))
    );
    assert_eq!(
        row_of(RECORD_DOC, final_visit(before_china_midnight + MINUTE)).day,
        Some(date("2024-05-02"))
    );
}

#[test]
fn service_log_minutes_honour_the_duration_override() {
    // The worker forgot to check out: the measured time is 13 hours, the override 50 min.
    let mut log = finished_log(T0, 13 * 60);
    log.duration_override = Some(DurationOverride {
        minutes: 50,
        reason: Some("忘记签退，实际服务50分钟".to_owned()),
    });
    assert_eq!(log.measured_minutes(), Some(13 * 60));
    assert_eq!(row_of(RECORD_DOC, log).minutes, Some(50));
}

#[test]
fn concerns_list_only_the_checklist_items_that_are_not_ok() {
    let mut visit = final_visit(T0);
    visit.checklist.schooling = Some(ChecklistItem::with_note(
        CheckStatus::Concern,
        "本学期经常缺课",
    ));
    visit.checklist.safety = Some(ChecklistItem::with_note(CheckStatus::Serious, "房屋漏雨"));
    // An `ok` item with a note is still not a concern.
    visit.checklist.health = Some(ChecklistItem::with_note(CheckStatus::Ok, "身体健康"));
    let row = row_of(RECORD_DOC, visit);
    assert_eq!(
        row.concerns,
        "就学情况：需关注（本学期经常缺课）；安全情况：严重（房屋漏雨）"
    );
    assert!(!row.concerns.contains("健康"));

    let all_ok = row_of(RECORD_DOC, final_visit(T0));
    assert_eq!(all_ok.concerns, "");
}

#[test]
fn service_types_have_chinese_names() {
    let names: Vec<&str> = ServiceType::STANDARD
        .iter()
        .map(ServiceType::name_zh)
        .collect();
    assert_eq!(
        names,
        ["探视访问", "日常护理", "心理疏导", "精神慰藉", "衣物清洗"]
    );
    assert_eq!(ServiceType::parse("other:理发").unwrap().name_zh(), "理发");
}
