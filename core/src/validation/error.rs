//! Validation errors, with messages a field worker understands in Chinese and in English.

use std::fmt;

use crate::domain::DomainError;

/// What is wrong. The `as_str` names are stable: clients may key translations or form
/// highlighting on them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A required value is missing or blank.
    Required,
    /// Missing, and needed before the record can be final.
    RequiredForFinal,
    TooLong {
        max_chars: usize,
    },
    TooMany {
        max_items: usize,
    },
    /// The same entry appears twice in a list.
    Duplicate,
    /// A phone number, ID reference or code that is not in the expected form.
    InvalidFormat,
    /// A time before 2000 or after 2099: a wrong phone clock or a typing slip.
    TimeOutOfRange,
    /// A visit ends before it starts.
    EndBeforeStart,
    /// A service log checks out before it checks in.
    CheckOutBeforeCheckIn,
    VisitTooLong {
        max_minutes: i64,
    },
    /// A service of less than a minute, without an override.
    DurationZero,
    /// A service longer than the limit, without an override.
    DurationTooLong {
        max_minutes: i64,
    },
    /// A duration entered by hand without a reason.
    OverrideReasonRequired,
    OverrideOutOfRange {
        max_minutes: i64,
    },
    NextVisitBeforeVisit,
    /// A checklist area marked concern or serious without a note.
    NoteRequired,
    /// A red or yellow risk level without a reason.
    RiskReasonRequired,
    /// A review decision without reviewer or time.
    ReviewerRequired,
    /// A record sent back without saying what to change.
    ReturnCommentRequired,
    ConfirmationBeforeCheckIn,
    /// The `kind` field does not match the record.
    WrongKind,
    UnsupportedSchemaVersion {
        found: u32,
    },
    /// The document does not have the shape of a record at all.
    Unreadable {
        detail: String,
    },
}

impl ErrorCode {
    /// A stable kebab-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::Required => "required",
            ErrorCode::RequiredForFinal => "required-for-final",
            ErrorCode::TooLong { .. } => "too-long",
            ErrorCode::TooMany { .. } => "too-many",
            ErrorCode::Duplicate => "duplicate",
            ErrorCode::InvalidFormat => "invalid-format",
            ErrorCode::TimeOutOfRange => "time-out-of-range",
            ErrorCode::EndBeforeStart => "end-before-start",
            ErrorCode::CheckOutBeforeCheckIn => "check-out-before-check-in",
            ErrorCode::VisitTooLong { .. } => "visit-too-long",
            ErrorCode::DurationZero => "duration-zero",
            ErrorCode::DurationTooLong { .. } => "duration-too-long",
            ErrorCode::OverrideReasonRequired => "override-reason-required",
            ErrorCode::OverrideOutOfRange { .. } => "override-out-of-range",
            ErrorCode::NextVisitBeforeVisit => "next-visit-before-visit",
            ErrorCode::NoteRequired => "note-required",
            ErrorCode::RiskReasonRequired => "risk-reason-required",
            ErrorCode::ReviewerRequired => "reviewer-required",
            ErrorCode::ReturnCommentRequired => "return-comment-required",
            ErrorCode::ConfirmationBeforeCheckIn => "confirmation-before-check-in",
            ErrorCode::WrongKind => "wrong-kind",
            ErrorCode::UnsupportedSchemaVersion { .. } => "unsupported-schema-version",
            ErrorCode::Unreadable { .. } => "unreadable",
        }
    }
}

/// One problem with one field of a record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub struct ValidationError {
    /// The path of the field in the document, with document keys and list indices, e.g.
    /// `checkOut`, `guardians[1].phone`, `checklist.health.note`; empty for the whole record.
    pub field: String,
    pub code: ErrorCode,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message_en())
        } else {
            write!(f, "{}: {}", self.field, self.message_en())
        }
    }
}

fn hours(minutes: i64) -> i64 {
    minutes / 60
}

impl ValidationError {
    pub fn new(field: impl Into<String>, code: ErrorCode) -> Self {
        ValidationError {
            field: field.into(),
            code,
        }
    }

    /// The error to report for a document that does not load as a record, so that a client
    /// gets one kind of answer whether its record is unreadable or merely invalid.
    pub fn from_domain_error(error: &DomainError) -> Self {
        match error {
            DomainError::MissingField(key) => ValidationError::new(*key, ErrorCode::Required),
            DomainError::WrongKind { .. } => ValidationError::new("kind", ErrorCode::WrongKind),
            DomainError::UnknownKind(_) => ValidationError::new("kind", ErrorCode::InvalidFormat),
            other => ValidationError::new(
                "",
                ErrorCode::Unreadable {
                    detail: other.to_string(),
                },
            ),
        }
    }

    /// The field path without list indices: `guardians[1].phone` → `guardians.phone`. Two
    /// errors are "the same problem" when their codes and index-free paths are equal, so
    /// that inserting a guardian does not make an old error on a later one look new.
    pub fn field_without_indices(&self) -> String {
        strip_indices(&self.field)
    }

    /// The field's name as shown on the form, in Chinese.
    pub fn label_zh(&self) -> &'static str {
        labels(&self.field_without_indices()).0
    }

    /// The field's name as shown on the form, in English (lowercase, to sit in a sentence).
    pub fn label_en(&self) -> &'static str {
        labels(&self.field_without_indices()).1
    }

    /// The message in Chinese, for the worker who made the record.
    pub fn message_zh(&self) -> String {
        let label = self.label_zh();
        match &self.code {
            ErrorCode::Required => format!("请填写{label}"),
            ErrorCode::RequiredForFinal => format!("提交前请填写{label}"),
            ErrorCode::TooLong { max_chars } => format!("{label}不能超过{max_chars}个字"),
            ErrorCode::TooMany { max_items } => format!("{label}最多只能有{max_items}项"),
            ErrorCode::Duplicate => format!("{label}中有重复的项，请删去一项"),
            ErrorCode::InvalidFormat => format!("{label}的格式不正确，请检查"),
            ErrorCode::TimeOutOfRange => format!("{label}不是有效的时间，请检查手机的日期和时间"),
            ErrorCode::EndBeforeStart => "结束时间不能早于开始时间".to_owned(),
            ErrorCode::CheckOutBeforeCheckIn => "签退时间不能早于签到时间".to_owned(),
            ErrorCode::VisitTooLong { max_minutes } => {
                format!("走访时长超过{}小时，请检查结束时间", hours(*max_minutes))
            }
            ErrorCode::DurationZero => {
                "服务时长不足1分钟。如确实提供了服务，请手动填写时长并说明原因".to_owned()
            }
            ErrorCode::DurationTooLong { max_minutes } => format!(
                "服务时长超过{}小时，可能忘记签退。如时长属实，请手动填写时长并说明原因",
                hours(*max_minutes)
            ),
            ErrorCode::OverrideReasonRequired => "手动修改服务时长时，必须说明原因".to_owned(),
            ErrorCode::OverrideOutOfRange { max_minutes } => {
                format!("手动填写的时长应在1分钟到{}小时之间", hours(*max_minutes))
            }
            ErrorCode::NextVisitBeforeVisit => "下次走访日期不能早于本次走访日期".to_owned(),
            ErrorCode::NoteRequired => format!("发现问题时，请在{label}中写明具体情况"),
            ErrorCode::RiskReasonRequired => "风险等级为红色或黄色时，请写明原因".to_owned(),
            ErrorCode::ReviewerRequired => "审核结果需要注明审核人和审核时间".to_owned(),
            ErrorCode::ReturnCommentRequired => "退回记录时，请写明需要修改的地方".to_owned(),
            ErrorCode::ConfirmationBeforeCheckIn => "服务对象确认时间不能早于签到时间".to_owned(),
            ErrorCode::WrongKind => "记录类型与记录内容不符".to_owned(),
            ErrorCode::UnsupportedSchemaVersion { found } => {
                format!("这条记录使用的格式版本（{found}）本应用不支持，请更新应用")
            }
            ErrorCode::Unreadable { detail } => {
                format!("记录格式不正确，无法读取（技术信息：{detail}）")
            }
        }
    }

    /// The message in English.
    pub fn message_en(&self) -> String {
        let label = self.label_en();
        match &self.code {
            ErrorCode::Required => format!("Please fill in the {label}."),
            ErrorCode::RequiredForFinal => {
                format!("Fill in the {label} before you submit the record.")
            }
            ErrorCode::TooLong { max_chars } => {
                format!("The {label} cannot be longer than {max_chars} characters.")
            }
            ErrorCode::TooMany { max_items } => {
                format!("The {label} can have at most {max_items} entries.")
            }
            ErrorCode::Duplicate => {
                format!("The {label} list has the same entry twice; remove one.")
            }
            ErrorCode::InvalidFormat => format!("The {label} is not in the right form; check it."),
            ErrorCode::TimeOutOfRange => {
                format!("The {label} is not a valid time; check the phone's date and time.")
            }
            ErrorCode::EndBeforeStart => "The end time cannot be before the start time.".to_owned(),
            ErrorCode::CheckOutBeforeCheckIn => {
                "The check-out time cannot be before the check-in time.".to_owned()
            }
            ErrorCode::VisitTooLong { max_minutes } => format!(
                "The visit lasts more than {} hours; check the end time.",
                hours(*max_minutes)
            ),
            ErrorCode::DurationZero => "The service lasted less than a minute. If you did serve, \
                 enter the duration by hand and give the reason."
                .to_owned(),
            ErrorCode::DurationTooLong { max_minutes } => format!(
                "The service lasted more than {} hours; perhaps the check-out was forgotten. \
                 If the duration is right, enter it by hand and give the reason.",
                hours(*max_minutes)
            ),
            ErrorCode::OverrideReasonRequired => {
                "When you change the duration by hand, you must give the reason.".to_owned()
            }
            ErrorCode::OverrideOutOfRange { max_minutes } => format!(
                "A duration entered by hand must be between 1 minute and {} hours.",
                hours(*max_minutes)
            ),
            ErrorCode::NextVisitBeforeVisit => {
                "The next visit date cannot be before the date of this visit.".to_owned()
            }
            ErrorCode::NoteRequired => {
                format!("You marked a problem: describe what you found in the {label}.")
            }
            ErrorCode::RiskReasonRequired => {
                "For a red or yellow risk level, give the reason.".to_owned()
            }
            ErrorCode::ReviewerRequired => {
                "A review decision needs the reviewer and the time of the decision.".to_owned()
            }
            ErrorCode::ReturnCommentRequired => {
                "When you send a record back, say what needs to change.".to_owned()
            }
            ErrorCode::ConfirmationBeforeCheckIn => {
                "The confirmation by the person served cannot be before the check-in time."
                    .to_owned()
            }
            ErrorCode::WrongKind => "The record's type does not match its content.".to_owned(),
            ErrorCode::UnsupportedSchemaVersion { found } => format!(
                "This record uses format version {found}, which this app does not support; \
                 please update the app."
            ),
            ErrorCode::Unreadable { detail } => {
                format!("The record cannot be read because its format is wrong ({detail}).")
            }
        }
    }
}

pub(crate) fn strip_indices(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut in_index = false;
    for c in field.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

/// (Chinese, English) names of the fields, by index-free path.
fn labels(path: &str) -> (&'static str, &'static str) {
    match path {
        "" => ("记录", "record"),
        "kind" => ("记录类型", "record type"),
        "schemaVersion" => ("格式版本", "format version"),
        "orgUnit" => ("所属村（社区）", "village"),
        "name" => ("姓名", "name"),
        "birthYearMonth" => ("出生年月", "month of birth"),
        "gender" => ("性别", "gender"),
        "status" => ("状态", "status"),
        "categories" => ("儿童类别", "categories"),
        "risk" => ("风险等级", "risk level"),
        "risk.date" => ("评估日期", "assessment date"),
        "risk.reason" => ("风险原因", "reason for the risk level"),
        "guardians" => ("监护人", "guardians"),
        "guardians.name" => ("监护人姓名", "guardian's name"),
        "guardians.relation" => ("与儿童关系", "guardian's relation"),
        "guardians.phone" => ("监护人电话", "guardian's phone number"),
        "idCard" | "idCard.last4" => ("身份证后四位", "last four characters of the ID number"),
        "idCard.sha256" => ("身份证校验值", "ID number check value"),
        "careNeeds" => ("护理需求等级", "care needs level"),
        "worker" => ("工作人员", "worker"),
        "childId" => ("走访的儿童", "child visited"),
        "elderId" => ("服务对象", "person served"),
        "startedAt" => ("开始时间", "start time"),
        "endedAt" => ("结束时间", "end time"),
        "checklist.guardianship" => ("监护情况", "guardianship check"),
        "checklist.schooling" => ("就学情况", "schooling check"),
        "checklist.health" => ("健康情况", "health check"),
        "checklist.safety" => ("安全情况", "safety check"),
        "checklist.living" => ("生活情况", "living conditions check"),
        "checklist.guardianship.note" => ("监护情况说明", "note on guardianship"),
        "checklist.schooling.note" => ("就学情况说明", "note on schooling"),
        "checklist.health.note" => ("健康情况说明", "note on health"),
        "checklist.safety.note" => ("安全情况说明", "note on safety"),
        "checklist.living.note" => ("生活情况说明", "note on living conditions"),
        "needs" => ("发现的需求", "needs found"),
        "actions" => ("采取的措施", "actions taken"),
        "referrals" => ("转介", "referrals"),
        "referrals.to" => ("转介机构", "agency referred to"),
        "referrals.reason" => ("转介原因", "reason for the referral"),
        "nextVisitDate" => ("下次走访日期", "next visit date"),
        "services" => ("服务项目", "services"),
        "checkIn" => ("签到时间", "check-in time"),
        "checkOut" => ("签退时间", "check-out time"),
        "durationOverride.minutes" => ("手动填写的时长", "duration entered by hand"),
        "durationOverride.reason" => ("修改时长的原因", "reason for changing the duration"),
        "confirmation.at" => ("确认时间", "confirmation time"),
        "note" => ("备注", "note"),
        "review.reviewer" => ("审核人", "reviewer"),
        "review.at" => ("审核时间", "review time"),
        "review.comment" => ("审核意见", "review comment"),
        "comments" => ("留言", "comments"),
        "comments.id" => ("留言编号", "comment number"),
        "comments.author" => ("留言人", "comment author"),
        "comments.at" => ("留言时间", "comment time"),
        "comments.text" => ("留言内容", "comment"),
        _ => ("内容", "value"),
    }
}
