//! Size and range limits. They keep documents small on cheap phones and in the relay's
//! memory, and catch typing slips (a check-out a day late). Text lengths count characters
//! (Unicode scalar values), so one Chinese character counts as one.

use crate::domain::Millis;

/// A person's name (child, elder, guardian); long enough for ethnic-minority names.
pub const NAME_CHARS_MAX: usize = 50;
/// An identifier or code: org unit code, account id, document id, comment id.
pub const ID_CHARS_MAX: usize = 100;
/// A free-text note: a checklist note, a service log note.
pub const NOTE_CHARS_MAX: usize = 1000;
/// A reason: for a risk level, a duration override, a referral.
pub const REASON_CHARS_MAX: usize = 500;
/// A comment or a reviewer's remark.
pub const COMMENT_CHARS_MAX: usize = 1000;
/// One entry of the needs or actions of a visit.
pub const ITEM_CHARS_MAX: usize = 200;
/// The agency a case is referred to.
pub const AGENCY_CHARS_MAX: usize = 100;
/// The name of a locally configured service type (`other:<name>`).
pub const SERVICE_NAME_CHARS_MAX: usize = 20;
/// A phone number, with country code and separators.
pub const PHONE_CHARS_MAX: usize = 20;
/// The fewest digits a phone number can have (short rural extensions included).
pub const PHONE_DIGITS_MIN: usize = 5;

pub const GUARDIANS_MAX: usize = 6;
pub const NEEDS_MAX: usize = 20;
pub const ACTIONS_MAX: usize = 20;
pub const REFERRALS_MAX: usize = 10;
pub const SERVICES_MAX: usize = 10;
pub const COMMENTS_MAX: usize = 200;

/// A service longer than this is refused unless the duration is overridden with a reason:
/// no home-care visit lasts half a day; a forgotten check-out does.
pub const SERVICE_MINUTES_MAX: i64 = 12 * 60;
/// The longest duration that may be entered by hand.
pub const OVERRIDE_MINUTES_MAX: i64 = 24 * 60;
/// A home visit longer than this has a wrong end time.
pub const VISIT_MINUTES_MAX: i64 = 12 * 60;

/// 2000-01-01T00:00:00Z: an earlier time comes from a phone whose clock was reset.
pub const TIME_MILLIS_MIN: Millis = 946_684_800_000;
/// 2100-01-01T00:00:00Z: a later time is a typing or clock error.
pub const TIME_MILLIS_MAX: Millis = 4_102_444_800_000;
