//! Accounts and roles. Passwords are not here: the server keeps their hashes and nothing
//! about them ever reaches `core` or a device.

use autosurgeon::{Hydrate, Reconcile};

use super::codec::string_enum;
use super::meta::{AccountId, OrgUnitCode, SubjectId};

string_enum! {
    /// What an account does; the access rules (`crate::access`) are written per role.
    pub enum Role {
        /// 儿童主任: one per village; keeps the child ledger and records home visits.
        VillageChildDirector => "village-child-director",
        /// 养老护理员: logs service hours for the elders assigned to them.
        CareWorker => "care-worker",
        /// 镇街儿童督导员: reviews the records of the villages of a township.
        TownshipReviewer => "township-reviewer",
        /// 民政局管理员: manages org units, accounts and devices; sees everything.
        BureauAdmin => "bureau-admin",
    }
}

impl Role {
    /// Township reviewers and the bureau follow the records of many villages, so their
    /// phones answer every change any of those villages makes; the relay gives their
    /// connections a larger message rate and a larger share of its engine.
    pub fn follows_many_villages(self) -> bool {
        match self {
            Role::TownshipReviewer | Role::BureauAdmin => true,
            Role::VillageChildDirector | Role::CareWorker => false,
        }
    }
}

/// An account as the access rules see it.
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile)]
pub struct Account {
    pub id: AccountId,
    /// The login name; it may change, so nothing refers to an account by it.
    pub username: String,
    pub role: Role,
    /// The areas the account works in: the village of a director, the township of a
    /// reviewer, the area a care worker may record service in. Admins need none.
    #[autosurgeon(rename = "orgUnits", missing = "Default::default")]
    pub org_units: Vec<OrgUnitCode>,
    /// For care workers: the elders they serve (ids of elder documents).
    #[autosurgeon(rename = "assignedElders", missing = "Default::default")]
    pub assigned_elders: Vec<SubjectId>,
    /// A disabled account may do nothing at all, whatever its role.
    #[autosurgeon(missing = "Default::default")]
    pub disabled: bool,
}

impl Account {
    /// An enabled account with no areas and no assigned elders.
    pub fn new(id: impl Into<String>, username: impl Into<String>, role: Role) -> Self {
        Account {
            id: AccountId(id.into()),
            username: username.into(),
            role,
            org_units: Vec::new(),
            assigned_elders: Vec::new(),
            disabled: false,
        }
    }

    #[must_use]
    pub fn with_org_units(mut self, units: impl IntoIterator<Item = OrgUnitCode>) -> Self {
        self.org_units.extend(units);
        self
    }

    #[must_use]
    pub fn with_assigned_elders(mut self, elders: impl IntoIterator<Item = SubjectId>) -> Self {
        self.assigned_elders.extend(elders);
        self
    }

    pub fn is_assigned(&self, elder: &SubjectId) -> bool {
        self.assigned_elders.contains(elder)
    }
}
