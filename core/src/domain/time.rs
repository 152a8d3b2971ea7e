//! Times and calendar dates as documents store them.
//!
//! - An instant (a visit's start, a check-in) is an `i64` count of milliseconds since the
//!   Unix epoch, UTC: what JavaScript's `Date.now()` returns, so a browser can write it
//!   without conversion, and a plain int in automerge.
//! - A calendar date (the next visit, the date of a risk assessment) is a `YYYY-MM-DD`
//!   string. It is a date in China Standard Time (UTC+8, no daylight saving), the only time
//!   zone the product serves; [`Date::of_instant`] converts an instant to that date.
//! - A birth month is a `YYYY-MM` string ([`YearMonth`]): the minimal-data rule (PIPL) keeps
//!   the day of birth off devices.
//!
//! Core never reads a clock: "today" is always passed in by the caller.

use std::fmt;

use autosurgeon::{Hydrate, HydrateError, Reconcile, Reconciler};

use super::codec::serde_via_str;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// China Standard Time is UTC+8 all year round.
pub const CHINA_OFFSET_MILLIS: Millis = 8 * 60 * 60 * 1000;

const MILLIS_PER_DAY: Millis = 24 * 60 * 60 * 1000;

/// A calendar date, stored as `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// A date if `year`-`month`-`day` exists in the Gregorian calendar (years 1000 to 9999,
    /// the range a four-digit string can hold).
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        let valid = (1000..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        valid.then_some(Date { year, month, day })
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    pub fn day(self) -> u8 {
        self.day
    }

    /// Reads exactly `YYYY-MM-DD`; anything else (including `2024-5-1`) is `None`, so that
    /// every client writes the same string for the same date and strings sort as dates.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
            return None;
        }
        let year = digits(text.get(0..4)?)?;
        let month = digits(text.get(5..7)?)?;
        let day = digits(text.get(8..10)?)?;
        Date::new(
            u16::try_from(year).ok()?,
            u8::try_from(month).ok()?,
            u8::try_from(day).ok()?,
        )
    }

    /// Days since 1970-01-01 (negative before it).
    pub fn days_since_epoch(self) -> i64 {
        days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        )
    }

    /// The date `days` after 1970-01-01, if it has a four-digit year.
    pub fn from_days_since_epoch(days: i64) -> Option<Self> {
        let (year, month, day) = civil_from_days(days);
        Date::new(
            u16::try_from(year).ok()?,
            u8::try_from(month).ok()?,
            u8::try_from(day).ok()?,
        )
    }

    /// The date in China Standard Time at `instant`.
    pub fn of_instant(instant: Millis) -> Option<Self> {
        let local = instant.checked_add(CHINA_OFFSET_MILLIS)?;
        Date::from_days_since_epoch(local.div_euclid(MILLIS_PER_DAY))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

serde_via_str!(Date, "a date as YYYY-MM-DD");

impl Hydrate for Date {
    fn hydrate_string(text: &str) -> Result<Self, HydrateError> {
        Date::parse(text)
            .ok_or_else(|| HydrateError::unexpected("a date as YYYY-MM-DD", format!("{text:?}")))
    }
}

impl Reconcile for Date {
    type Key<'a> = autosurgeon::reconcile::NoKey;

    fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(self.to_string())
    }
}

/// A year and month, stored as `YYYY-MM`: a birth month without the day (PIPL minimal data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    year: u16,
    month: u8,
}

impl YearMonth {
    pub fn new(year: u16, month: u8) -> Option<Self> {
        ((1000..=9999).contains(&year) && (1..=12).contains(&month))
            .then_some(YearMonth { year, month })
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    /// Reads exactly `YYYY-MM`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 7 || text.as_bytes().get(4) != Some(&b'-') {
            return None;
        }
        let year = digits(text.get(0..4)?)?;
        let month = digits(text.get(5..7)?)?;
        YearMonth::new(u16::try_from(year).ok()?, u8::try_from(month).ok()?)
    }

    /// Whole years of age on `today`, counting a birthday as reached on the first day of the
    /// birth month (the day is not known).
    pub fn age_on(self, today: Date) -> i32 {
        let years = i32::from(today.year()) - i32::from(self.year);
        if today.month() < self.month {
            years - 1
        } else {
            years
        }
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

serde_via_str!(YearMonth, "a year and month as YYYY-MM");

impl Hydrate for YearMonth {
    fn hydrate_string(text: &str) -> Result<Self, HydrateError> {
        YearMonth::parse(text).ok_or_else(|| {
            HydrateError::unexpected("a year and month as YYYY-MM", format!("{text:?}"))
        })
    }
}

impl Reconcile for YearMonth {
    type Key<'a> = autosurgeon::reconcile::NoKey;

    fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(self.to_string())
    }
}

/// Parses ASCII digits only: `str::parse` would also accept a leading `+`.
fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`: exact for the whole proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
