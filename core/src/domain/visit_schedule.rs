//! When a child's next home visit is due. The phone's children list and the relay's overdue
//! report both follow this rule, so a director and the township reviewer never disagree
//! about which child is late.
//!
//! The rule reads report rows ([`ReportRow`]) rather than whole records: they are what a
//! phone lists and what the relay's tables hold, and they carry every fact the rule needs.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::child::RiskLevel;
use super::meta::DocumentKind;
use super::report_row::ReportRow;
use super::time::Date;

/// Days between home visits when the last visit did not plan the next one: the higher a
/// child's risk, the sooner someone must look again. Red (high risk) every 30 days, yellow
/// every 60, blue, green or not yet assessed every 90.
pub fn visit_interval_days(risk: Option<RiskLevel>) -> i64 {
    match risk {
        Some(RiskLevel::Red) => 30,
        Some(RiskLevel::Yellow) => 60,
        Some(RiskLevel::Blue | RiskLevel::Green) | None => 90,
    }
}

/// When the next visit is due after a visit on `last_visit_day`: the day that visit
/// planned, if it planned one, else [`visit_interval_days`] later. `None` only if the date
/// would leave the calendar `Date` can hold.
pub fn next_visit_due(
    risk: Option<RiskLevel>,
    last_visit_day: Date,
    planned: Option<Date>,
) -> Option<Date> {
    match planned {
        Some(planned) => Some(planned),
        None => Date::from_days_since_epoch(
            last_visit_day.days_since_epoch() + visit_interval_days(risk),
        ),
    }
}

/// Whether visit row `a` counts as later than `b` for the schedule: by visit day, then start
/// time, then document id, so that two devices (and the relay's SQL, which orders by the
/// same columns) always pick the same "latest visit" even for two visits on one day.
pub fn is_later_visit(a: &ReportRow, b: &ReportRow) -> bool {
    (a.day, a.started_at, &a.document) > (b.day, b.started_at, &b.document)
}

/// Where a child stands in the visit schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VisitDue {
    /// The child's document id.
    pub child: String,
    /// The latest visit's document id; `None` if the child was never visited.
    pub last_visit: Option<String>,
    /// The latest visit's day.
    pub last_visit_day: Option<Date>,
    /// When the next visit is due; `None` if never visited (due at once).
    pub due: Option<Date>,
}

impl VisitDue {
    /// Whether the child should have been visited before `today`. A child never visited is
    /// always overdue: nobody has looked yet.
    pub fn is_overdue(&self, today: Date) -> bool {
        match (&self.last_visit, self.due) {
            (None, _) => true,
            (Some(_), Some(due)) => due < today,
            (Some(_), None) => false,
        }
    }
}

/// The schedule of each child row in `children`, in their order, from the visit rows in
/// `visits`. Rows of other kinds, visits without a day and visits of other children are
/// ignored, so a caller may pass every row it has.
pub fn visits_due(children: &[ReportRow], visits: &[ReportRow]) -> Vec<VisitDue> {
    let mut latest: HashMap<&str, &ReportRow> = HashMap::new();
    for visit in visits {
        if visit.kind != DocumentKind::HomeVisit || visit.day.is_none() {
            continue;
        }
        let Some(subject) = &visit.subject else {
            continue;
        };
        let best = latest.entry(subject.0.as_str()).or_insert(visit);
        if is_later_visit(visit, best) {
            *best = visit;
        }
    }
    children
        .iter()
        .map(|child| {
            let last = latest.get(child.document.as_str());
            let last_visit_day = last.and_then(|visit| visit.day);
            let due = last.and_then(|visit| {
                visit
                    .day
                    .and_then(|day| next_visit_due(child.risk, day, visit.next_visit))
            });
            VisitDue {
                child: child.document.clone(),
                last_visit: last.map(|visit| visit.document.clone()),
                last_visit_day,
                due,
            }
        })
        .collect()
}
