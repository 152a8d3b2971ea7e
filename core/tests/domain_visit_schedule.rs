//! The visit schedule: which visit counts as a child's latest and when the next one is due.
//! The phone's children list and the relay's overdue report both rely on it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use caresync_core::domain::*;

const T0: Millis = 1_714_536_000_000; // 2024-05-01T04:00:00Z, 12:00 in China
const DAY: Millis = 24 * 60 * 60 * 1000;
const HOUR: Millis = 60 * 60 * 1000;

fn village() -> OrgUnitCode {
    OrgUnitCode::new("370402001001")
}

fn date(text: &str) -> Date {
    Date::parse(text).unwrap()
}

fn child_row(document: &str, risk: Option<RiskLevel>) -> ReportRow {
    let mut child = Child::new(
        village(),
        "王小明",
        YearMonth::new(2014, 3).unwrap(),
        Gender::Male,
    );
    child.risk = risk.map(|level| Risk {
        level,
        date: date("2024-04-01"),
        reason: None,
    });
    report_row(document, &Record::from(child))
}

fn visit_row(document: &str, child: &str, started_at: Millis, next: Option<&str>) -> ReportRow {
    let mut visit = HomeVisit::new(
        village(),
        AccountId::new("dir-1"),
        SubjectId::new(child),
        started_at,
    );
    visit.next_visit_date = next.map(date);
    report_row(document, &Record::from(visit))
}

#[test]
fn the_interval_follows_the_risk() {
    assert_eq!(visit_interval_days(Some(RiskLevel::Red)), 30);
    assert_eq!(visit_interval_days(Some(RiskLevel::Yellow)), 60);
    assert_eq!(visit_interval_days(Some(RiskLevel::Blue)), 90);
    assert_eq!(visit_interval_days(Some(RiskLevel::Green)), 90);
    assert_eq!(visit_interval_days(None), 90);
}

#[test]
fn a_planned_date_wins_over_the_interval() {
    let last = date("2024-05-01");
    assert_eq!(
        next_visit_due(Some(RiskLevel::Red), last, None),
        Some(date("2024-05-31"))
    );
    assert_eq!(
        next_visit_due(Some(RiskLevel::Red), last, Some(date("2024-05-10"))),
        Some(date("2024-05-10"))
    );
    assert_eq!(next_visit_due(None, last, None), Some(date("2024-07-30")));
}

#[test]
fn the_latest_visit_is_by_day_then_start_time_then_id_whatever_the_order() {
    let child = child_row("child-a", Some(RiskLevel::Yellow));
    // Two visits on the same (China) day: the later start wins, and of two starting at
    // the same moment the greater document id, so every device picks the same one.
    let early = visit_row("v1", "child-a", T0, Some("2024-06-01"));
    let late = visit_row("v2", "child-a", T0 + HOUR, Some("2024-06-20"));
    let tie = visit_row("v3", "child-a", T0 + HOUR, None);
    let older = visit_row("v9", "child-a", T0 - 10 * DAY, Some("2025-01-01"));
    let orders = [
        vec![early.clone(), late.clone(), tie.clone(), older.clone()],
        vec![tie.clone(), older.clone(), late.clone(), early.clone()],
        vec![older.clone(), tie.clone(), early.clone(), late.clone()],
    ];
    for visits in orders {
        let due = visits_due(std::slice::from_ref(&child), &visits);
        assert_eq!(
            due,
            vec![VisitDue {
                child: "child-a".to_owned(),
                last_visit: Some("v3".to_owned()),
                last_visit_day: Some(date("2024-05-01")),
                // v3 planned nothing: yellow risk, 60 days after 2024-05-01.
                due: Some(date("2024-06-30")),
            }]
        );
    }
    assert!(is_later_visit(&tie, &late));
    assert!(is_later_visit(&late, &early));
    assert!(!is_later_visit(&older, &early));
}

#[test]
fn a_child_never_visited_is_overdue_at_once_and_other_rows_are_ignored() {
    let children = [child_row("child-a", None), child_row("child-b", None)];
    let rows = [
        visit_row("v1", "child-b", T0, Some("2024-05-20")),
        // Rows of other kinds and other children do not count for child-a.
        child_row("child-c", None),
        visit_row("v2", "child-c", T0, None),
    ];
    let due = visits_due(&children, &rows);
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].child, "child-a");
    assert_eq!(due[0].last_visit, None);
    assert_eq!(due[0].due, None);
    assert!(due[0].is_overdue(date("2000-01-01")));
    assert_eq!(due[1].last_visit.as_deref(), Some("v1"));
    assert_eq!(due[1].due, Some(date("2024-05-20")));
}

#[test]
fn a_child_is_overdue_only_after_the_due_day() {
    let children = [child_row("child-a", Some(RiskLevel::Red))];
    let due = visits_due(&children, &[visit_row("v1", "child-a", T0, None)]);
    let due = &due[0];
    assert_eq!(due.due, Some(date("2024-05-31")));
    assert!(!due.is_overdue(date("2024-05-30")));
    assert!(!due.is_overdue(date("2024-05-31")));
    assert!(due.is_overdue(date("2024-06-01")));
}
