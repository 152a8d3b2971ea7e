//! The rules, one function per record kind. Each collects every error it finds rather than
//! stopping at the first, so a form can show them all at once.

use std::collections::HashSet;

use super::error::{ErrorCode, ValidationError};
use super::limits::*;
use crate::domain::{
    CheckStatus, Child, Comment, Elder, HomeVisit, IdCardRef, Millis, Record, RecordStatus, Review,
    ReviewState, RiskLevel, SCHEMA_VERSION, ServiceLog, ServiceType,
};

/// Collects the errors of one record.
#[derive(Debug, Default)]
pub(crate) struct Check {
    pub(crate) errors: Vec<ValidationError>,
}

fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

impl Check {
    fn push(&mut self, field: impl Into<String>, code: ErrorCode) {
        self.errors.push(ValidationError::new(field, code));
    }

    /// A required text: not blank, not longer than `max_chars`.
    fn required_text(&mut self, field: &str, text: &str, max_chars: usize) {
        if is_blank(text) {
            self.push(field, ErrorCode::Required);
        } else {
            self.max_chars(field, text, max_chars);
        }
    }

    fn max_chars(&mut self, field: &str, text: &str, max_chars: usize) {
        if chars(text) > max_chars {
            self.push(field, ErrorCode::TooLong { max_chars });
        }
    }

    fn optional_text(&mut self, field: &str, text: Option<&str>, max_chars: usize) {
        if let Some(text) = text {
            self.max_chars(field, text, max_chars);
        }
    }

    fn max_items(&mut self, field: &str, count: usize, max_items: usize) {
        if count > max_items {
            self.push(field, ErrorCode::TooMany { max_items });
        }
    }

    fn time(&mut self, field: &str, at: Millis) {
        if !(TIME_MILLIS_MIN..TIME_MILLIS_MAX).contains(&at) {
            self.push(field, ErrorCode::TimeOutOfRange);
        }
    }

    /// Kind, schema version and owning org unit: the root fields every record has.
    fn root(&mut self, record: &Record) {
        if record.kind() != record.type_kind() {
            self.push("kind", ErrorCode::WrongKind);
        }
        let version = record.schema_version();
        if version != SCHEMA_VERSION {
            self.push(
                "schemaVersion",
                ErrorCode::UnsupportedSchemaVersion { found: version },
            );
        }
        self.required_text("orgUnit", record.org_unit().as_str(), ID_CHARS_MAX);
    }

    fn review(&mut self, review: &Review) {
        let decided = matches!(review.state, ReviewState::Approved | ReviewState::Returned);
        if decided {
            if review
                .reviewer
                .as_ref()
                .is_none_or(|r| is_blank(r.as_str()))
            {
                self.push("review.reviewer", ErrorCode::ReviewerRequired);
            }
            if review.at.is_none() {
                self.push("review.at", ErrorCode::ReviewerRequired);
            }
        }
        if review.state == ReviewState::Returned && review.comment.as_deref().is_none_or(is_blank) {
            self.push("review.comment", ErrorCode::ReturnCommentRequired);
        }
        if let Some(reviewer) = &review.reviewer {
            self.max_chars("review.reviewer", reviewer.as_str(), ID_CHARS_MAX);
        }
        self.optional_text(
            "review.comment",
            review.comment.as_deref(),
            COMMENT_CHARS_MAX,
        );
        if let Some(at) = review.at {
            self.time("review.at", at);
        }
    }

    fn comments(&mut self, comments: &[Comment]) {
        self.max_items("comments", comments.len(), COMMENTS_MAX);
        let mut seen = HashSet::new();
        for (i, comment) in comments.iter().enumerate() {
            let id_field = format!("comments[{i}].id");
            self.required_text(&id_field, &comment.id, ID_CHARS_MAX);
            if !seen.insert(comment.id.as_str()) {
                self.push(id_field, ErrorCode::Duplicate);
            }
            self.required_text(
                &format!("comments[{i}].author"),
                comment.author.as_str(),
                ID_CHARS_MAX,
            );
            self.time(&format!("comments[{i}].at"), comment.at);
            self.required_text(
                &format!("comments[{i}].text"),
                &comment.text,
                COMMENT_CHARS_MAX,
            );
        }
    }

    fn id_card(&mut self, id_card: &IdCardRef) {
        let last4_ok = id_card.last4.chars().count() == 4
            && id_card
                .last4
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || (i == 3 && c == 'X'));
        if !last4_ok {
            self.push("idCard.last4", ErrorCode::InvalidFormat);
        }
        let hash_ok = id_card.sha256.len() == 64
            && id_card
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hash_ok {
            self.push("idCard.sha256", ErrorCode::InvalidFormat);
        }
    }

    fn phone(&mut self, field: &str, phone: &str) {
        let allowed = phone
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'));
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        if chars(phone) > PHONE_CHARS_MAX {
            self.push(
                field,
                ErrorCode::TooLong {
                    max_chars: PHONE_CHARS_MAX,
                },
            );
        } else if !allowed || digits < PHONE_DIGITS_MIN {
            self.push(field, ErrorCode::InvalidFormat);
        }
    }

    fn text_list(&mut self, field: &str, items: &[String], max_items: usize, max_chars: usize) {
        self.max_items(field, items.len(), max_items);
        for (i, item) in items.iter().enumerate() {
            self.required_text(&format!("{field}[{i}]"), item, max_chars);
        }
    }
}

pub(crate) fn check_record(record: &Record) -> Vec<ValidationError> {
    let mut check = Check::default();
    check.root(record);
    match record {
        Record::Child(child) => check_child(&mut check, child),
        Record::Elder(elder) => check_elder(&mut check, elder),
        Record::HomeVisit(visit) => check_home_visit(&mut check, visit),
        Record::ServiceLog(log) => check_service_log(&mut check, log),
    }
    check.errors
}

fn check_child(check: &mut Check, child: &Child) {
    check.required_text("name", &child.name, NAME_CHARS_MAX);
    if child.categories.is_empty() {
        check.push("categories", ErrorCode::Required);
    }
    let mut seen = HashSet::new();
    for (i, category) in child.categories.iter().enumerate() {
        if !seen.insert(*category) {
            check.push(format!("categories[{i}]"), ErrorCode::Duplicate);
        }
    }
    if let Some(risk) = &child.risk {
        let needs_reason = matches!(risk.level, RiskLevel::Red | RiskLevel::Yellow);
        if needs_reason && risk.reason.as_deref().is_none_or(is_blank) {
            check.push("risk.reason", ErrorCode::RiskReasonRequired);
        }
        check.optional_text("risk.reason", risk.reason.as_deref(), REASON_CHARS_MAX);
    }
    check.max_items("guardians", child.guardians.len(), GUARDIANS_MAX);
    for (i, guardian) in child.guardians.iter().enumerate() {
        check.required_text(
            &format!("guardians[{i}].name"),
            &guardian.name,
            NAME_CHARS_MAX,
        );
        if let Some(phone) = &guardian.phone {
            check.phone(&format!("guardians[{i}].phone"), phone);
        }
    }
    if let Some(id_card) = &child.id_card {
        check.id_card(id_card);
    }
    check.comments(&child.comments);
}

fn check_elder(check: &mut Check, elder: &Elder) {
    check.required_text("name", &elder.name, NAME_CHARS_MAX);
    check.comments(&elder.comments);
}

fn check_home_visit(check: &mut Check, visit: &HomeVisit) {
    let is_final = visit.status == RecordStatus::Final;
    check.required_text("worker", visit.worker.as_str(), ID_CHARS_MAX);
    check.required_text("childId", visit.child_id.as_str(), ID_CHARS_MAX);
    check.time("startedAt", visit.started_at);
    match visit.ended_at {
        Some(ended) => {
            check.time("endedAt", ended);
            if ended < visit.started_at {
                check.push("endedAt", ErrorCode::EndBeforeStart);
            } else if ended.saturating_sub(visit.started_at) > VISIT_MINUTES_MAX * 60_000 {
                check.push(
                    "endedAt",
                    ErrorCode::VisitTooLong {
                        max_minutes: VISIT_MINUTES_MAX,
                    },
                );
            }
        }
        None if is_final => check.push("endedAt", ErrorCode::RequiredForFinal),
        None => {}
    }
    for (key, item) in visit.checklist.items() {
        match item {
            Some(item) => {
                let note_field = format!("checklist.{key}.note");
                check.optional_text(&note_field, item.note.as_deref(), NOTE_CHARS_MAX);
                let problem = item.status != CheckStatus::Ok;
                if is_final && problem && item.note.as_deref().is_none_or(is_blank) {
                    check.push(note_field, ErrorCode::NoteRequired);
                }
            }
            None if is_final => check.push(format!("checklist.{key}"), ErrorCode::RequiredForFinal),
            None => {}
        }
    }
    check.text_list("needs", &visit.needs, NEEDS_MAX, ITEM_CHARS_MAX);
    check.text_list("actions", &visit.actions, ACTIONS_MAX, ITEM_CHARS_MAX);
    check.max_items("referrals", visit.referrals.len(), REFERRALS_MAX);
    for (i, referral) in visit.referrals.iter().enumerate() {
        check.required_text(
            &format!("referrals[{i}].to"),
            &referral.to,
            AGENCY_CHARS_MAX,
        );
        check.optional_text(
            &format!("referrals[{i}].reason"),
            referral.reason.as_deref(),
            REASON_CHARS_MAX,
        );
    }
    if let (Some(next), Some(visited)) = (visit.next_visit_date, visit.visit_date())
        && next < visited
    {
        check.push("nextVisitDate", ErrorCode::NextVisitBeforeVisit);
    }
    check.review(&visit.review);
    check.comments(&visit.comments);
}

fn check_service_log(check: &mut Check, log: &ServiceLog) {
    check.required_text("worker", log.worker.as_str(), ID_CHARS_MAX);
    check.required_text("elderId", log.elder_id.as_str(), ID_CHARS_MAX);
    check.max_items("services", log.services.len(), SERVICES_MAX);
    // Services may be chosen during the visit; a finished visit must say what was done.
    if log.services.is_empty() && log.check_out.is_some() {
        check.push("services", ErrorCode::Required);
    }
    let mut seen = HashSet::new();
    for (i, service) in log.services.iter().enumerate() {
        let field = format!("services[{i}]");
        if let ServiceType::Other(name) = service {
            check.required_text(&field, name, SERVICE_NAME_CHARS_MAX);
        }
        if !seen.insert(service) {
            check.push(field, ErrorCode::Duplicate);
        }
    }
    check.time("checkIn", log.check_in);
    if let Some(out) = log.check_out {
        check.time("checkOut", out);
        if out < log.check_in {
            check.push("checkOut", ErrorCode::CheckOutBeforeCheckIn);
        }
    }
    match &log.duration_override {
        Some(manual) => {
            if manual.reason.as_deref().is_none_or(is_blank) {
                check.push("durationOverride.reason", ErrorCode::OverrideReasonRequired);
            }
            check.optional_text(
                "durationOverride.reason",
                manual.reason.as_deref(),
                REASON_CHARS_MAX,
            );
            if !(1..=OVERRIDE_MINUTES_MAX).contains(&manual.minutes) {
                check.push(
                    "durationOverride.minutes",
                    ErrorCode::OverrideOutOfRange {
                        max_minutes: OVERRIDE_MINUTES_MAX,
                    },
                );
            }
        }
        None => match log.measured_minutes() {
            Some(0) => check.push("checkOut", ErrorCode::DurationZero),
            Some(minutes) if minutes > SERVICE_MINUTES_MAX => check.push(
                "checkOut",
                ErrorCode::DurationTooLong {
                    max_minutes: SERVICE_MINUTES_MAX,
                },
            ),
            _ => {}
        },
    }
    if let Some(confirmation) = &log.confirmation {
        check.time("confirmation.at", confirmation.at);
        if confirmation.at < log.check_in {
            check.push("confirmation.at", ErrorCode::ConfirmationBeforeCheckIn);
        }
    }
    check.optional_text("note", log.note.as_deref(), NOTE_CHARS_MAX);
    check.review(&log.review);
    check.comments(&log.comments);
}
