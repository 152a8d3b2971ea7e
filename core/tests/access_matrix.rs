//! The access rules as a table: every role × document kind × mode × (own area, other area),
//! plus disabled accounts, each cell written out by hand. The expected values are literals,
//! not computed by the rules under test, so a change of rule shows up as a changed cell.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;

use caresync_core::access::{
    Decision, DenyReason, Mode, Part, changed_parts, decide, decide_change,
};
use caresync_core::domain::*;

// Area layout: prefecture 3704 > district 370402 > townships T1, T2 > villages V1, V2.
const PREFECTURE: &str = "3704";
const T1: &str = "370402001";
const V1: &str = "370402001001";
const V2: &str = "370402002001";

fn tree() -> OrgTree {
    let unit = |code: &str, level, parent: Option<&str>| OrgUnit {
        code: OrgUnitCode::new(code),
        name: code.to_owned(),
        level,
        parent: parent.map(OrgUnitCode::new),
    };
    OrgTree::from_units([
        unit(PREFECTURE, OrgLevel::Prefecture, None),
        unit("370402", OrgLevel::District, Some(PREFECTURE)),
        unit(T1, OrgLevel::Township, Some("370402")),
        unit(V1, OrgLevel::Village, Some(T1)),
        unit("370402002", OrgLevel::Township, Some("370402")),
        unit(V2, OrgLevel::Village, Some("370402002")),
    ])
}

fn account(role: Role) -> Account {
    match role {
        Role::VillageChildDirector => {
            Account::new("dir-1", "director", role).with_org_units([OrgUnitCode::new(V1)])
        }
        Role::CareWorker => Account::new("cw-1", "worker", role)
            .with_org_units([OrgUnitCode::new(T1)])
            .with_assigned_elders([SubjectId::new("elder-own")]),
        Role::TownshipReviewer => {
            Account::new("rev-1", "reviewer", role).with_org_units([OrgUnitCode::new(T1)])
        }
        Role::BureauAdmin => {
            Account::new("admin-1", "admin", role).with_org_units([OrgUnitCode::new(PREFECTURE)])
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Area {
    /// The account's village/township; for workers, their own record of an assigned elder.
    Own,
    /// Another township's village; another worker's record of an unassigned elder.
    Other,
}

fn target(kind: DocumentKind, area: Area) -> DocumentMeta {
    let (owner, director, worker, child, elder) = match area {
        Area::Own => (V1, "dir-1", "cw-1", "child-own", "elder-own"),
        Area::Other => (V2, "dir-9", "cw-9", "child-other", "elder-other"),
    };
    let (worker, subject) = match kind {
        DocumentKind::Child => (None, Some(child)),
        DocumentKind::Elder => (None, Some(elder)),
        DocumentKind::HomeVisit => (Some(director), Some(child)),
        DocumentKind::ServiceLog => (Some(worker), Some(elder)),
    };
    DocumentMeta {
        kind,
        schema_version: SCHEMA_VERSION,
        owner: OrgUnitCode::new(owner),
        worker: worker.map(AccountId::new),
        subject: subject.map(SubjectId::new),
    }
}

const MODES: [Mode; 4] = [
    Mode::Read,
    Mode::Write(Part::Record),
    Mode::Write(Part::Review),
    Mode::Write(Part::Comments),
];

const A: Decision = Decision::Allow;
const OUTSIDE: Decision = Decision::Deny(DenyReason::OutsideArea);
const PART: Decision = Decision::Deny(DenyReason::PartNotAllowed);
const KIND: Decision = Decision::Deny(DenyReason::KindNotAllowed);
const NOT_OWN: Decision = Decision::Deny(DenyReason::NotOwnRecord);
const UNASSIGNED: Decision = Decision::Deny(DenyReason::SubjectNotAssigned);
const DISABLED: Decision = Decision::Deny(DenyReason::AccountDisabled);

use DocumentKind::{Child as C, Elder as E, HomeVisit as V, ServiceLog as L};
use Role::{
    BureauAdmin as ADMIN, CareWorker as WORKER, TownshipReviewer as REVIEWER,
    VillageChildDirector as DIRECTOR,
};

/// role, kind, area, then the decisions for Read, Write(Record), Write(Review), Write(Comments).
type Row = (Role, DocumentKind, Area, [Decision; 4]);

#[rustfmt::skip]
const MATRIX: &[Row] = &[
    //  role      kind area          Read       Record     Review     Comments
    (DIRECTOR, C, Area::Own,   [A,         A,         PART,      A        ]),
    (DIRECTOR, C, Area::Other, [OUTSIDE,   OUTSIDE,   PART,      OUTSIDE  ]),
    (DIRECTOR, E, Area::Own,   [KIND,      KIND,      KIND,      KIND     ]),
    (DIRECTOR, E, Area::Other, [KIND,      KIND,      KIND,      KIND     ]),
    (DIRECTOR, V, Area::Own,   [A,         A,         PART,      A        ]),
    (DIRECTOR, V, Area::Other, [OUTSIDE,   OUTSIDE,   PART,      OUTSIDE  ]),
    (DIRECTOR, L, Area::Own,   [KIND,      KIND,      KIND,      KIND     ]),
    (DIRECTOR, L, Area::Other, [KIND,      KIND,      KIND,      KIND     ]),

    (WORKER,   C, Area::Own,   [KIND,      KIND,      KIND,      KIND     ]),
    (WORKER,   C, Area::Other, [KIND,      KIND,      KIND,      KIND     ]),
    (WORKER,   E, Area::Own,   [A,         PART,      PART,      PART     ]),
    (WORKER,   E, Area::Other, [UNASSIGNED, PART,     PART,      PART     ]),
    (WORKER,   V, Area::Own,   [KIND,      KIND,      KIND,      KIND     ]),
    (WORKER,   V, Area::Other, [KIND,      KIND,      KIND,      KIND     ]),
    (WORKER,   L, Area::Own,   [A,         A,         PART,      A        ]),
    (WORKER,   L, Area::Other, [NOT_OWN,   NOT_OWN,   PART,      NOT_OWN  ]),

    (REVIEWER, C, Area::Own,   [A,         PART,      A,         A        ]),
    (REVIEWER, C, Area::Other, [OUTSIDE,   PART,      OUTSIDE,   OUTSIDE  ]),
    (REVIEWER, E, Area::Own,   [A,         PART,      A,         A        ]),
    (REVIEWER, E, Area::Other, [OUTSIDE,   PART,      OUTSIDE,   OUTSIDE  ]),
    (REVIEWER, V, Area::Own,   [A,         PART,      A,         A        ]),
    (REVIEWER, V, Area::Other, [OUTSIDE,   PART,      OUTSIDE,   OUTSIDE  ]),
    (REVIEWER, L, Area::Own,   [A,         PART,      A,         A        ]),
    (REVIEWER, L, Area::Other, [OUTSIDE,   PART,      OUTSIDE,   OUTSIDE  ]),

    (ADMIN,    C, Area::Own,   [A,         A,         A,         A        ]),
    (ADMIN,    C, Area::Other, [A,         A,         A,         A        ]),
    (ADMIN,    E, Area::Own,   [A,         A,         A,         A        ]),
    (ADMIN,    E, Area::Other, [A,         A,         A,         A        ]),
    (ADMIN,    V, Area::Own,   [A,         A,         A,         A        ]),
    (ADMIN,    V, Area::Other, [A,         A,         A,         A        ]),
    (ADMIN,    L, Area::Own,   [A,         A,         A,         A        ]),
    (ADMIN,    L, Area::Other, [A,         A,         A,         A        ]),
];

/// The same accounts, disabled: every cell is a denial.
#[rustfmt::skip]
const DISABLED_MATRIX: &[Row] = &[
    (DIRECTOR, C, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (DIRECTOR, C, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (DIRECTOR, E, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (DIRECTOR, E, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (DIRECTOR, V, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (DIRECTOR, V, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (DIRECTOR, L, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (DIRECTOR, L, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (WORKER,   C, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (WORKER,   C, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (WORKER,   E, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (WORKER,   E, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (WORKER,   V, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (WORKER,   V, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (WORKER,   L, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (WORKER,   L, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (REVIEWER, C, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (REVIEWER, C, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (REVIEWER, E, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (REVIEWER, E, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (REVIEWER, V, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (REVIEWER, V, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (REVIEWER, L, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (REVIEWER, L, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (ADMIN,    C, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (ADMIN,    C, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (ADMIN,    E, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (ADMIN,    E, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (ADMIN,    V, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (ADMIN,    V, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
    (ADMIN,    L, Area::Own,   [DISABLED, DISABLED, DISABLED, DISABLED]),
    (ADMIN,    L, Area::Other, [DISABLED, DISABLED, DISABLED, DISABLED]),
];

fn check_table(table: &[Row], disabled: bool) -> usize {
    let tree = tree();
    let mut mismatches = Vec::new();
    let mut cells = 0;
    for (role, kind, area, expected) in table {
        let mut who = account(*role);
        who.disabled = disabled;
        let meta = target(*kind, *area);
        for (mode, want) in MODES.iter().zip(expected) {
            cells += 1;
            let got = decide(&who, &tree, &meta, *mode);
            if got != *want {
                mismatches.push(format!(
                    "{role:?} {kind:?} {area:?} {mode:?}: expected {want:?}, got {got:?}"
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} cells differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    cells
}

fn assert_complete(table: &[Row]) {
    let combos: BTreeSet<(Role, DocumentKind, Area)> =
        table.iter().map(|(r, k, a, _)| (*r, *k, *a)).collect();
    assert_eq!(combos.len(), table.len(), "a combination appears twice");
    for role in Role::ALL {
        for kind in DocumentKind::ALL {
            for area in [Area::Own, Area::Other] {
                assert!(
                    combos.contains(&(*role, kind, area)),
                    "missing {role:?} {kind:?} {area:?}"
                );
            }
        }
    }
}

#[test]
fn every_role_kind_mode_and_area() {
    assert_complete(MATRIX);
    assert_eq!(check_table(MATRIX, false), 4 * 4 * 2 * 4);
}

#[test]
fn disabled_accounts_may_do_nothing() {
    assert_complete(DISABLED_MATRIX);
    assert_eq!(check_table(DISABLED_MATRIX, true), 4 * 4 * 2 * 4);
}

/// Care workers' service logs: own record, area and assignment are separate conditions.
#[test]
fn care_worker_log_conditions_one_at_a_time() {
    let tree = tree();
    let worker = account(Role::CareWorker);
    let log = |owner: &str, worker: &str, elder: &str| DocumentMeta {
        kind: DocumentKind::ServiceLog,
        schema_version: SCHEMA_VERSION,
        owner: OrgUnitCode::new(owner),
        worker: Some(AccountId::new(worker)),
        subject: Some(SubjectId::new(elder)),
    };
    #[rustfmt::skip]
    let rows: [(&str, DocumentMeta, [Decision; 4]); 4] = [
        ("own log, elder not assigned", log(V1, "cw-1", "elder-other"), [A, UNASSIGNED, PART, A]),
        ("own log, outside area",       log(V2, "cw-1", "elder-own"),   [A, OUTSIDE,    PART, A]),
        ("colleague's log, same elder", log(V1, "cw-2", "elder-own"),   [NOT_OWN, NOT_OWN, PART, NOT_OWN]),
        ("own log, everything in place", log(V1, "cw-1", "elder-own"),  [A, A, PART, A]),
    ];
    for (name, meta, expected) in rows {
        for (mode, want) in MODES.iter().zip(expected) {
            assert_eq!(
                decide(&worker, &tree, &meta, *mode),
                want,
                "{name}, {mode:?}"
            );
        }
    }
    // An elder whose document id the caller did not fill in is not readable.
    let mut elder = target(DocumentKind::Elder, Area::Own);
    elder.subject = None;
    assert_eq!(decide(&worker, &tree, &elder, Mode::Read), UNASSIGNED);
}

const T0: Millis = 1_714_536_000_000;

fn visit_in(village: &str) -> HomeVisit {
    let mut visit = HomeVisit::new(
        OrgUnitCode::new(village),
        AccountId::new("dir-1"),
        SubjectId::new("child-own"),
        T0,
    );
    visit.ended_at = Some(T0 + 1_800_000);
    visit.checklist = Checklist::all_ok();
    visit.status = RecordStatus::Final;
    visit
}

#[test]
fn changed_parts_of_changes() {
    let before = Record::from(visit_in(V1));
    assert_eq!(changed_parts(None, &before), vec![Part::Record]);
    assert_eq!(changed_parts(Some(&before), &before), Vec::<Part>::new());

    let mut reviewed = visit_in(V1);
    reviewed.review = Review::approve(AccountId::new("rev-1"), T0 + 1, None);
    assert_eq!(
        changed_parts(Some(&before), &reviewed.clone().into()),
        vec![Part::Review]
    );
    assert_eq!(
        changed_parts(None, &reviewed.into()),
        vec![Part::Record, Part::Review]
    );

    let mut commented = visit_in(V1);
    commented
        .comments
        .push(Comment::new(AccountId::new("dir-1"), T0 + 2, "已补充"));
    assert_eq!(
        changed_parts(Some(&before), &commented.into()),
        vec![Part::Comments]
    );

    let mut everything = visit_in(V1);
    everything.needs.push("助学".to_owned());
    everything.review = Review::approve(AccountId::new("rev-1"), T0 + 1, None);
    everything
        .comments
        .push(Comment::new(AccountId::new("rev-1"), T0 + 2, "好"));
    assert_eq!(
        changed_parts(Some(&before), &everything.into()),
        vec![Part::Record, Part::Review, Part::Comments]
    );
}

#[test]
fn whole_changes_are_judged_by_what_they_do() {
    let tree = tree();
    let director = account(Role::VillageChildDirector);
    let reviewer = account(Role::TownshipReviewer);
    let admin = account(Role::BureauAdmin);
    let before_visit = visit_in(V1);
    let before = Record::from(before_visit.clone());
    let meta = before.meta();

    // A reviewer approves in their own name: allowed.
    let mut approved = before_visit.clone();
    approved.review = Review::approve(AccountId::new("rev-1"), T0 + 1, None);
    assert_eq!(
        decide_change(
            &reviewer,
            &tree,
            &meta,
            Some(&before),
            &approved.clone().into()
        ),
        A
    );
    // ... in someone else's name: refused.
    let mut forged = before_visit.clone();
    forged.review = Review::approve(AccountId::new("rev-2"), T0 + 1, None);
    assert_eq!(
        decide_change(&reviewer, &tree, &meta, Some(&before), &forged.into()),
        Decision::Deny(DenyReason::ReviewerMismatch)
    );
    // ... while also editing the record: refused.
    let mut edited = approved.clone();
    edited.needs.push("改了记录".to_owned());
    assert_eq!(
        decide_change(&reviewer, &tree, &meta, Some(&before), &edited.into()),
        PART
    );

    // The director answers a comment: allowed; approves their own visit: refused.
    let with_reviewer_comment = {
        let mut v = before_visit.clone();
        v.comments
            .push(Comment::new(AccountId::new("rev-1"), T0 + 3, "请补充"));
        Record::from(v)
    };
    let mut answered = match &with_reviewer_comment {
        Record::HomeVisit(v) => v.clone(),
        _ => unreachable!(),
    };
    answered
        .comments
        .push(Comment::new(AccountId::new("dir-1"), T0 + 4, "已补充"));
    assert_eq!(
        decide_change(
            &director,
            &tree,
            &meta,
            Some(&with_reviewer_comment),
            &answered.clone().into()
        ),
        A
    );
    let mut rewritten = answered.clone();
    rewritten.comments[0].text = "改掉督导的话".to_owned();
    assert_eq!(
        decide_change(
            &director,
            &tree,
            &meta,
            Some(&with_reviewer_comment),
            &rewritten.into()
        ),
        Decision::Deny(DenyReason::CommentNotOwn)
    );
    let mut removed = answered.clone();
    removed.comments.remove(0);
    assert_eq!(
        decide_change(
            &director,
            &tree,
            &meta,
            Some(&with_reviewer_comment),
            &removed.into()
        ),
        Decision::Deny(DenyReason::CommentNotOwn)
    );
    let mut impersonated = before_visit.clone();
    impersonated
        .comments
        .push(Comment::new(AccountId::new("rev-1"), T0 + 5, "通过"));
    assert_eq!(
        decide_change(&director, &tree, &meta, Some(&before), &impersonated.into()),
        Decision::Deny(DenyReason::CommentNotOwn)
    );
    assert_eq!(
        decide_change(&director, &tree, &meta, Some(&before), &approved.into()),
        PART
    );

    // Creating a visit in someone else's name is refused.
    let mut foreign = visit_in(V1);
    foreign.worker = AccountId::new("dir-9");
    let foreign = Record::from(foreign);
    assert_eq!(
        decide_change(&director, &tree, &foreign.meta(), None, &foreign),
        NOT_OWN
    );
    assert_eq!(decide_change(&director, &tree, &meta, None, &before), A);

    // Moving a visit to another township's village needs write access on both sides.
    let moved = Record::from(visit_in(V2));
    assert_eq!(
        decide_change(&director, &tree, &meta, Some(&before), &moved),
        Decision::Deny(DenyReason::TransferNotAllowed)
    );
    assert_eq!(
        decide_change(&admin, &tree, &meta, Some(&before), &moved),
        A
    );

    // A change that touches no known part is judged as a record write.
    assert_eq!(
        decide_change(&reviewer, &tree, &meta, Some(&before), &before),
        PART
    );
    assert_eq!(
        decide_change(&director, &tree, &meta, Some(&before), &before),
        A
    );

    // A disabled account may change nothing.
    let mut disabled = director.clone();
    disabled.disabled = true;
    assert_eq!(
        decide_change(&disabled, &tree, &meta, None, &before),
        DISABLED
    );
}

#[test]
fn care_workers_create_logs_for_assigned_elders_only() {
    let tree = tree();
    let worker = account(Role::CareWorker);
    let mut log = ServiceLog::new(
        OrgUnitCode::new(V1),
        AccountId::new("cw-1"),
        SubjectId::new("elder-own"),
        T0,
    );
    log.services = vec![ServiceType::Visiting];
    let record = Record::from(log.clone());
    assert_eq!(
        decide_change(&worker, &tree, &record.meta(), None, &record),
        A
    );

    log.elder_id = SubjectId::new("elder-other");
    let record = Record::from(log);
    assert_eq!(
        decide_change(&worker, &tree, &record.meta(), None, &record),
        UNASSIGNED
    );
}
