//! What the bindings can fail with. The JavaScript side receives each as an `Error` whose
//! `code` is [`PhoneError::code`] and, for invalid records, whose `errors` lists every rule
//! broken.

use caresync_core::domain::DomainError;
use caresync_core::protocol::DocumentId;
use caresync_core::sync::RepoError;
use caresync_core::validation::{ErrorCode, ValidationError};

#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    /// An argument from JavaScript does not have the documented shape.
    #[error("{what} is not valid: {detail}")]
    BadInput { what: &'static str, detail: String },
    /// The record breaks validation rules (or is not a record at all).
    #[error("the record is not valid: {}", summary(.0))]
    Invalid(Vec<ValidationError>),
    #[error("document {0} is not open: call open() and wait until loadState() is 'ready'")]
    NotOpen(DocumentId),
    // Boxed: `DomainError` is large and every result of the bindings carries this type.
    #[error("document {0} is not a readable record: {1}")]
    Unreadable(DocumentId, Box<DomainError>),
    #[error("the record could not be saved: {0}")]
    Save(Box<DomainError>),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("no random bytes for a document id: {0}")]
    Random(String),
}

impl PhoneError {
    /// A record from JavaScript that does not deserialise: reported like a record that
    /// breaks a rule, so that forms handle one kind of answer.
    pub fn unreadable_record(detail: impl Into<String>) -> PhoneError {
        PhoneError::Invalid(vec![ValidationError::new(
            "",
            ErrorCode::Unreadable {
                detail: detail.into(),
            },
        )])
    }

    /// A stable name for JavaScript's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            PhoneError::BadInput { .. } => "bad-input",
            PhoneError::Invalid(_) => "invalid",
            PhoneError::NotOpen(_) => "not-open",
            PhoneError::Unreadable(..) => "unreadable",
            PhoneError::Save(_) => "save-failed",
            PhoneError::Repo(RepoError::NotLoaded(_)) => "not-open",
            PhoneError::Repo(RepoError::AlreadyExists(_)) => "already-exists",
            PhoneError::Repo(RepoError::Change(_)) => "change-failed",
            PhoneError::Random(_) => "no-randomness",
        }
    }

    /// The validation errors, for [`PhoneError::Invalid`].
    pub fn validation_errors(&self) -> Option<&[ValidationError]> {
        match self {
            PhoneError::Invalid(errors) => Some(errors),
            _ => None,
        }
    }
}

fn summary(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
