//! Review actions of township staff, written into the record's own document by the relay
//! so that they sync back to the field device like any other change (design §3.5).
//!
//! The HTTP handler sends a [`ReviewRequest`] to the engine thread and waits for the reply.
//! The engine loads the document if needed, checks the account with the same rules and
//! validation that judge a device's change, makes the change, and answers only once
//! storage has committed it.

use std::collections::HashMap;

use automerge::{Automerge, AutomergeError, ChangeHash};
use caresync_core::access::{self, Mode, Part};
use caresync_core::domain::{Account, Comment, Record, Review, ReviewState};
use caresync_core::protocol::DocumentId;
use caresync_core::relay_policy::RelayPolicy;
use caresync_core::sync::{LoadState, Policy, Repo};
use tokio::sync::oneshot;

/// What the reviewer decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReviewAction {
    Approve { comment: Option<String> },
    Return { comment: String },
}

#[derive(Debug)]
pub struct ReviewRequest {
    pub account: Account,
    pub document: DocumentId,
    pub action: ReviewAction,
    pub reply: oneshot::Sender<Result<ReviewDone, ReviewError>>,
}

impl ReviewRequest {
    pub fn refuse_shutting_down(self) {
        let _ = self.reply.send(Err(ReviewError::ShuttingDown));
    }

    fn answer(self, result: Result<ReviewDone, ReviewError>) {
        // The HTTP client may have gone; the change stands either way.
        let _ = self.reply.send(result);
    }
}

/// The committed review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewDone {
    pub state: ReviewState,
    pub heads: Vec<ChangeHash>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Missing, or not visible to the account: the two are not told apart.
    #[error("no such record")]
    NotFound,
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("children and elders are not reviewed; visits and service logs are")]
    NotReviewable,
    #[error("the review breaks a rule: {0}")]
    Invalid(String),
    #[error("the review could not be stored: {0}")]
    Storage(String),
    #[error("the relay is shutting down")]
    ShuttingDown,
}

/// Review requests in progress, by document.
#[derive(Debug, Default)]
pub struct Reviews {
    loading: HashMap<DocumentId, Vec<ReviewRequest>>,
    saving: HashMap<DocumentId, Vec<(ReviewRequest, ReviewState)>>,
}

impl Reviews {
    pub fn requested(&mut self, repo: &mut Repo<RelayPolicy>, now_ms: u64, request: ReviewRequest) {
        if repo.load_state(&request.document) == LoadState::NotLoaded {
            repo.open(now_ms, request.document);
        }
        self.loading
            .entry(request.document)
            .or_default()
            .push(request);
    }

    /// Applies the requests whose documents have loaded.
    pub fn progress(&mut self, repo: &mut Repo<RelayPolicy>, now_ms: u64) {
        let mut ready = Vec::new();
        for document in self.loading.keys() {
            match repo.load_state(document) {
                LoadState::Ready | LoadState::Missing => ready.push(*document),
                LoadState::Loading => {}
                // Evicted again before we got to it (a tick in the same batch): load again.
                LoadState::NotLoaded => repo.open(now_ms, *document),
            }
        }
        for document in ready {
            let Some(requests) = self.loading.remove(&document) else {
                continue;
            };
            for request in requests {
                match apply(repo, now_ms, &request) {
                    // Nothing changed (the same review twice): it is already durable.
                    Ok((state, false)) => {
                        let heads = repo.stored_heads(&document);
                        request.answer(Ok(ReviewDone {
                            state,
                            heads: heads.unwrap_or_default(),
                        }));
                    }
                    Ok((state, true)) => self
                        .saving
                        .entry(document)
                        .or_default()
                        .push((request, state)),
                    Err(error) => request.answer(Err(error)),
                }
            }
        }
    }

    pub fn saved(&mut self, document: &DocumentId, heads: &[ChangeHash]) {
        for (request, state) in self.saving.remove(document).unwrap_or_default() {
            request.answer(Ok(ReviewDone {
                state,
                heads: heads.to_vec(),
            }));
        }
    }

    pub fn failed(&mut self, document: &DocumentId, reason: &str) {
        for (request, _) in self.saving.remove(document).unwrap_or_default() {
            request.answer(Err(ReviewError::Storage(reason.to_owned())));
        }
    }
}

fn apply(
    repo: &mut Repo<RelayPolicy>,
    now_ms: u64,
    request: &ReviewRequest,
) -> Result<(ReviewState, bool), ReviewError> {
    let document = request.document;
    let account = &request.account;
    let (Some(recorded), Some(latest)) = (repo.recorded_meta(&document), repo.latest(&document))
    else {
        return Err(ReviewError::NotFound);
    };
    let recorded = recorded.clone();
    let target = recorded.clone().with_document_id(&document.to_string());
    let tree = &repo.policy().tree;
    if !access::decide(account, tree, &target, Mode::Read).is_allowed() {
        return Err(ReviewError::NotFound);
    }
    if let access::Decision::Deny(reason) =
        access::decide(account, tree, &target, Mode::Write(Part::Review))
    {
        return Err(ReviewError::Forbidden(format!("{reason:?}")));
    }
    let mut record =
        Record::load(latest).map_err(|error| ReviewError::Invalid(error.to_string()))?;
    let at = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let (review, comment) = match &request.action {
        ReviewAction::Approve { comment } => (
            Review::approve(account.id.clone(), at, comment.clone()),
            comment.clone(),
        ),
        ReviewAction::Return { comment } => (
            Review::send_back(account.id.clone(), at, comment.clone()),
            Some(comment.clone()),
        ),
    };
    let state = review.state;
    match &mut record {
        Record::HomeVisit(visit) => {
            visit.review = review;
            if let Some(text) = comment {
                visit
                    .comments
                    .push(Comment::new(account.id.clone(), at, text));
            }
        }
        Record::ServiceLog(log) => {
            log.review = review;
            if let Some(text) = comment {
                log.comments
                    .push(Comment::new(account.id.clone(), at, text));
            }
        }
        Record::Child(_) | Record::Elder(_) => return Err(ReviewError::NotReviewable),
    }
    // Judge the change exactly as a device's change would be judged.
    let mut after: Automerge = latest.clone();
    let mut transaction = after.transaction();
    record
        .save(&mut transaction)
        .map_err(|error| ReviewError::Invalid(error.to_string()))?;
    transaction.commit();
    if after.get_heads() == latest.get_heads() {
        return Ok((state, false));
    }
    let policy = repo.policy();
    let before = policy.read_before(&document, latest);
    policy
        .check_change(account, &document, Some(&recorded), before, &after)
        .map_err(|refusal| ReviewError::Invalid(refusal.to_string()))?;
    let mut save_error = None;
    repo.change(now_ms, document, |transaction| {
        record.save(transaction).map_err(|error| {
            save_error = Some(error.to_string());
            AutomergeError::Fail
        })
    })
    .map_err(|error| ReviewError::Storage(save_error.unwrap_or_else(|| error.to_string())))?;
    Ok((state, true))
}
