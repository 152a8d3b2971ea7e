//! Login throttling: failed attempts counted per account name and per client address in a
//! sliding window. Once either count reaches its limit, further attempts are answered 429
//! (without checking the password) until the window has passed. The account name is counted
//! whether or not such an account exists, so the answers never reveal which names exist.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed logins per account name within the window before it is locked for a while.
pub const LOGIN_FAILURES_PER_ACCOUNT_MAX: usize = 5;
/// Failed logins per client address within the window (a village office shares one NAT).
pub const LOGIN_FAILURES_PER_ADDRESS_MAX: usize = 30;
/// The sliding window of both counts.
pub const LOGIN_FAILURE_WINDOW_MS: u64 = 15 * 60 * 1_000;
/// Names and addresses remembered; beyond this the oldest are forgotten, so a flood of
/// made-up names cannot grow the relay's memory.
pub const LOGIN_THROTTLE_KEYS_MAX: usize = 100_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    inner: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    accounts: HashMap<String, VecDeque<u64>>,
    addresses: HashMap<IpAddr, VecDeque<u64>>,
}

impl LoginThrottle {
    /// `Err(retry_after_seconds)` when this attempt must not be checked at all.
    pub fn check(&self, username: &str, address: IpAddr, now_ms: u64) -> Result<(), u64> {
        let Ok(mut windows) = self.inner.lock() else {
            return Ok(());
        };
        let account = retry_after(
            windows.accounts.get_mut(username),
            LOGIN_FAILURES_PER_ACCOUNT_MAX,
            now_ms,
        );
        let address = retry_after(
            windows.addresses.get_mut(&address),
            LOGIN_FAILURES_PER_ADDRESS_MAX,
            now_ms,
        );
        match account.max(address) {
            0 => Ok(()),
            seconds => Err(seconds),
        }
    }

    pub fn failed(&self, username: &str, address: IpAddr, now_ms: u64) {
        let Ok(mut windows) = self.inner.lock() else {
            return;
        };
        let windows = &mut *windows;
        if windows.accounts.len() >= LOGIN_THROTTLE_KEYS_MAX {
            forget_stale(&mut windows.accounts, now_ms);
        }
        if windows.addresses.len() >= LOGIN_THROTTLE_KEYS_MAX {
            forget_stale(&mut windows.addresses, now_ms);
        }
        if windows.accounts.len() < LOGIN_THROTTLE_KEYS_MAX {
            windows
                .accounts
                .entry(username.to_owned())
                .or_default()
                .push_back(now_ms);
        }
        if windows.addresses.len() < LOGIN_THROTTLE_KEYS_MAX {
            windows
                .addresses
                .entry(address)
                .or_default()
                .push_back(now_ms);
        }
    }

    /// A successful login clears the account's failures (not the address's: one person
    /// knowing their password says nothing about the others guessing from there).
    pub fn succeeded(&self, username: &str) {
        if let Ok(mut windows) = self.inner.lock() {
            windows.accounts.remove(username);
        }
    }
}

/// Seconds until the oldest failure in a full window leaves it; 0 when not full.
fn retry_after(window: Option<&mut VecDeque<u64>>, limit: usize, now_ms: u64) -> u64 {
    let Some(window) = window else {
        return 0;
    };
    while window
        .front()
        .is_some_and(|at| now_ms.saturating_sub(*at) >= LOGIN_FAILURE_WINDOW_MS)
    {
        window.pop_front();
    }
    if window.len() < limit {
        return 0;
    }
    let oldest = window.front().copied().unwrap_or(now_ms);
    let remaining = LOGIN_FAILURE_WINDOW_MS.saturating_sub(now_ms.saturating_sub(oldest));
    remaining.div_ceil(1_000).max(1)
}

fn forget_stale<K: std::hash::Hash + Eq>(map: &mut HashMap<K, VecDeque<u64>>, now_ms: u64) {
    map.retain(|_, window| {
        window
            .back()
            .is_some_and(|at| now_ms.saturating_sub(*at) < LOGIN_FAILURE_WINDOW_MS)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_locks_after_its_limit_and_unlocks_when_the_window_passes() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = [127, 0, 0, 1].into();
        for attempt in 0..LOGIN_FAILURES_PER_ACCOUNT_MAX {
            assert_eq!(
                throttle.check("a", address, 1_000),
                Ok(()),
                "attempt {attempt}"
            );
            throttle.failed("a", address, 1_000);
        }
        assert!(throttle.check("a", address, 1_000).is_err());
        assert_eq!(throttle.check("b", address, 1_000), Ok(()));
        assert_eq!(
            throttle.check("a", address, 1_000 + LOGIN_FAILURE_WINDOW_MS),
            Ok(())
        );
    }

    #[test]
    fn an_address_locks_after_its_limit_whatever_the_names() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = [10, 0, 0, 1].into();
        for attempt in 0..LOGIN_FAILURES_PER_ADDRESS_MAX {
            throttle.failed(&format!("user-{attempt}"), address, 5);
        }
        assert!(throttle.check("fresh-name", address, 5).is_err());
        assert_eq!(
            throttle.check("fresh-name", [10, 0, 0, 2].into(), 5),
            Ok(())
        );
    }
}
