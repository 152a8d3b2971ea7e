//! Draft/final state, reviews and comments: what a township reviewer writes.
//!
//! Review state and comments are the "Review" and "Comments" parts of a record for the access
//! rules (`crate::access::Part`); everything else is the "Record" part. They live inside the
//! record's own document (design §3.5: "reviews and comments live where the reviewer may
//! write them"), and the relay checks that a reviewer's change touches only them.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::codec::string_enum;
use super::meta::AccountId;
use super::time::Millis;

string_enum! {
    /// Whether the worker has finished a record. Drafts are saved freely (offline work is
    /// interrupted); completeness rules apply once a record is final.
    pub enum RecordStatus {
        /// 草稿
        Draft => "draft",
        /// 已提交
        Final => "final",
    }
}

string_enum! {
    /// The reviewer's decision.
    pub enum ReviewState {
        /// 待审核: not reviewed yet (the state of every new record).
        Pending => "pending",
        /// 已通过
        Approved => "approved",
        /// 已退回: sent back to the worker with a comment saying what to change. The state
        /// stays `returned` while the worker edits; the reviewer sees the record changed
        /// after `at` and reviews it again.
        Returned => "returned",
    }
}

/// The review of a home visit or a service log.
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub state: ReviewState,
    /// Who decided; set with `approved` and `returned`.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<AccountId>,
    /// Why it was returned, or a remark on approval.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When the decision was made.
    #[autosurgeon(missing = "Default::default")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Millis>,
}

impl Default for Review {
    fn default() -> Self {
        Review {
            state: ReviewState::Pending,
            reviewer: None,
            comment: None,
            at: None,
        }
    }
}

impl Review {
    /// True for the review every new record starts with: nobody has reviewed it.
    pub fn is_untouched(&self) -> bool {
        *self == Review::default()
    }

    pub fn approve(reviewer: AccountId, at: Millis, comment: Option<String>) -> Self {
        Review {
            state: ReviewState::Approved,
            reviewer: Some(reviewer),
            comment,
            at: Some(at),
        }
    }

    pub fn send_back(reviewer: AccountId, at: Millis, comment: String) -> Self {
        Review {
            state: ReviewState::Returned,
            reviewer: Some(reviewer),
            comment: Some(comment),
            at: Some(at),
        }
    }
}

/// One comment on a record. Comments are keyed by `id`, so two comments added on two
/// devices at the same time both survive the merge (autosurgeon matches list items by key).
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    /// Unique within the record; clients use a random UUID or [`Comment::default_id`].
    #[key]
    pub id: String,
    pub author: AccountId,
    pub at: Millis,
    pub text: String,
}

impl Comment {
    /// An id built from author and time; unique unless one account comments twice in the
    /// same millisecond, which a person cannot do.
    pub fn default_id(author: &AccountId, at: Millis) -> String {
        format!("{}-{at}", author.as_str())
    }

    pub fn new(author: AccountId, at: Millis, text: impl Into<String>) -> Self {
        Comment {
            id: Comment::default_id(&author, at),
            author,
            at,
            text: text.into(),
        }
    }
}
