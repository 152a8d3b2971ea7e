//! Org units: the administrative areas work is organised and scoped by.

use std::collections::HashMap;

use autosurgeon::{Hydrate, Reconcile};

use super::codec::string_enum;
use super::meta::OrgUnitCode;

string_enum! {
    /// The levels of the administrative hierarchy the product covers, from the top.
    pub enum OrgLevel {
        /// 地级市, the bureau's level (e.g. Zaozhuang).
        Prefecture => "prefecture",
        /// 区/县, district or county.
        District => "district",
        /// 乡镇/街道, township or sub-district: the reviewers' level.
        Township => "township",
        /// 村/社区, village or community: where records are made.
        Village => "village",
    }
}

impl OrgLevel {
    /// The level directly below this one, if any.
    pub fn child_level(self) -> Option<OrgLevel> {
        match self {
            OrgLevel::Prefecture => Some(OrgLevel::District),
            OrgLevel::District => Some(OrgLevel::Township),
            OrgLevel::Township => Some(OrgLevel::Village),
            OrgLevel::Village => None,
        }
    }
}

/// One org unit. `parent` is `None` only for the top of the tree.
#[derive(Clone, Debug, PartialEq, Eq, Hydrate, Reconcile)]
pub struct OrgUnit {
    pub code: OrgUnitCode,
    pub name: String,
    pub level: OrgLevel,
    #[autosurgeon(missing = "Default::default")]
    pub parent: Option<OrgUnitCode>,
}

/// An in-memory index of org units answering "is unit X inside area Y".
///
/// Access rules ask this for every message, so lookups are hash-map walks up at most a few
/// parent links (the hierarchy has four levels).
#[derive(Clone, Debug, Default)]
pub struct OrgTree {
    units: HashMap<OrgUnitCode, OrgUnit>,
}

/// Deeper than any real hierarchy: a walk that goes further has met a cycle in bad data.
const MAX_DEPTH: usize = 16;

impl OrgTree {
    pub fn new() -> Self {
        OrgTree::default()
    }

    pub fn from_units(units: impl IntoIterator<Item = OrgUnit>) -> Self {
        let mut tree = OrgTree::new();
        for unit in units {
            tree.insert(unit);
        }
        tree
    }

    /// Adds or replaces a unit.
    pub fn insert(&mut self, unit: OrgUnit) {
        self.units.insert(unit.code.clone(), unit);
    }

    pub fn get(&self, code: &OrgUnitCode) -> Option<&OrgUnit> {
        self.units.get(code)
    }

    /// Every unit, in no particular order.
    pub fn units(&self) -> impl Iterator<Item = &OrgUnit> {
        self.units.values()
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// True when `unit` is `area` itself or lies below it. A unit the tree does not know is
    /// inside only itself: unknown codes must never widen anyone's access.
    pub fn is_within(&self, unit: &OrgUnitCode, area: &OrgUnitCode) -> bool {
        let mut current = unit;
        for _ in 0..MAX_DEPTH {
            if current == area {
                return true;
            }
            match self.units.get(current).and_then(|u| u.parent.as_ref()) {
                Some(parent) => current = parent,
                None => return false,
            }
        }
        false
    }

    /// True when `unit` lies within any of `areas`.
    pub fn is_within_any(&self, unit: &OrgUnitCode, areas: &[OrgUnitCode]) -> bool {
        areas.iter().any(|area| self.is_within(unit, area))
    }

    /// The chain from `unit` up to the top, starting with `unit` itself.
    pub fn ancestry(&self, unit: &OrgUnitCode) -> Vec<&OrgUnit> {
        let mut chain = Vec::new();
        let mut current = self.units.get(unit);
        while let Some(found) = current {
            if chain.len() >= MAX_DEPTH {
                break;
            }
            chain.push(found);
            current = found.parent.as_ref().and_then(|p| self.units.get(p));
        }
        chain
    }

    /// The units directly below `unit`, in code order.
    pub fn children(&self, unit: &OrgUnitCode) -> Vec<&OrgUnit> {
        let mut children: Vec<&OrgUnit> = self
            .units
            .values()
            .filter(|u| u.parent.as_ref() == Some(unit))
            .collect();
        children.sort_by(|a, b| a.code.cmp(&b.code));
        children
    }
}
