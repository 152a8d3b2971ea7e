//! Org-unit helpers the relay needs around core's `OrgTree`.

use std::collections::BTreeSet;

use caresync_core::domain::{OrgLevel, OrgTree, OrgUnitCode};

/// Every unit inside any of `areas`, the areas included, without duplicates. Depth is
/// bounded by the org levels (prefecture to village), so the walk is short.
pub fn units_within(tree: &OrgTree, areas: &[OrgUnitCode]) -> Vec<OrgUnitCode> {
    let mut found = BTreeSet::new();
    let mut frontier: Vec<OrgUnitCode> = areas.to_vec();
    while let Some(unit) = frontier.pop() {
        if !found.insert(unit.clone()) {
            continue;
        }
        frontier.extend(
            tree.children(&unit)
                .into_iter()
                .map(|child| child.code.clone()),
        );
    }
    found.into_iter().collect()
}

/// The villages inside any of `areas`.
pub fn villages_within(tree: &OrgTree, areas: &[OrgUnitCode]) -> Vec<OrgUnitCode> {
    units_within(tree, areas)
        .into_iter()
        .filter(|code| {
            tree.get(code)
                .is_some_and(|unit| unit.level == OrgLevel::Village)
        })
        .collect()
}
