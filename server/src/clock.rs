//! The relay reads the wall clock here and nowhere else, and passes `now` into the engine.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch. A clock before 1970 reads as 0 rather than failing:
/// timeouts then fire late, which is harmless.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Today's date in China time, `None` only for a clock outside years 1000–9999.
pub fn today() -> Option<caresync_core::domain::Date> {
    caresync_core::domain::Date::of_instant(i64::try_from(now_ms()).unwrap_or(i64::MAX))
}
