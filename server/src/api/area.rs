//! Which villages an API request may look at: township staff see the villages of their
//! area, the bureau sees all; `township` and `village` parameters narrow that down and are
//! refused when they point outside it.

use caresync_core::domain::{Account, OrgLevel, OrgTree, OrgUnitCode, Role};

use super::auth::Authenticated;
use super::error::ApiError;
use crate::org::villages_within;
use crate::state::AppState;

/// [`reporting_villages`] for the account of a request, with the relay's current tree.
pub fn request_villages(
    state: &AppState,
    session: &Authenticated,
    township: Option<&str>,
    village: Option<&str>,
) -> Result<Vec<OrgUnitCode>, ApiError> {
    reporting_villages(&session.account, &state.tree(), township, village)
}

/// The villages the report and review APIs may show `account`, narrowed by the optional
/// `township` (any org unit) and `village` parameters.
pub fn reporting_villages(
    account: &Account,
    tree: &OrgTree,
    township: Option<&str>,
    village: Option<&str>,
) -> Result<Vec<OrgUnitCode>, ApiError> {
    let areas: Vec<OrgUnitCode> = match account.role {
        Role::TownshipReviewer => account.org_units.clone(),
        Role::BureauAdmin => all_roots(tree, account),
        Role::VillageChildDirector | Role::CareWorker => {
            return Err(ApiError::forbidden(
                "审核与报表仅限乡镇督导员和民政局 / review and reports are for township staff",
            ));
        }
    };
    let narrowed: Vec<OrgUnitCode> = match township.filter(|t| !t.is_empty()) {
        Some(unit) => {
            let unit = OrgUnitCode::new(unit);
            if tree.get(&unit).is_none() || !tree.is_within_any(&unit, &areas) {
                return Err(ApiError::forbidden("不在您的辖区 / outside your area"));
            }
            vec![unit]
        }
        None => areas,
    };
    let mut villages = villages_within(tree, &narrowed);
    if let Some(village) = village.filter(|v| !v.is_empty()) {
        let village = OrgUnitCode::new(village);
        if !villages.contains(&village) {
            return Err(ApiError::forbidden("不在您的辖区 / outside your area"));
        }
        villages = vec![village];
    }
    Ok(villages)
}

/// The bureau's areas: its own org units, or the top of the tree when it names none.
fn all_roots(tree: &OrgTree, account: &Account) -> Vec<OrgUnitCode> {
    if !account.org_units.is_empty() {
        return account.org_units.clone();
    }
    tree.units()
        .filter(|unit| unit.parent.is_none() || unit.level == OrgLevel::Prefecture)
        .map(|unit| unit.code.clone())
        .collect()
}
