//! The harness's [`RelayProcess`] itself: the relay starts on a free port, answers, keeps
//! its database and port across restarts, and stops cleanly on SIGTERM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use caresync_tests::RelayProcess;

fn healthz(relay: &RelayProcess) -> u16 {
    ureq::get(format!("{}/healthz", relay.http_base()))
        .call()
        .map(|response| response.status().as_u16())
        .unwrap_or_else(|error| panic!("healthz failed: {error}\n{}", relay.output()))
}

#[test]
fn the_relay_starts_restarts_on_the_same_port_and_stops_on_sigterm() {
    let mut relay = RelayProcess::start().unwrap();
    assert_eq!(healthz(&relay), 200);
    assert!(relay.db_path().exists(), "the relay made its database");
    let addr = relay.addr();
    assert!(relay.ws_url("abc").ends_with("/sync?token=abc"));

    relay.restart().unwrap();
    assert_eq!(relay.addr(), addr, "restarted on the same port");
    assert_eq!(healthz(&relay), 200);

    relay.kill9().unwrap();
    assert!(!relay.is_running());
    relay.restart().unwrap();
    assert_eq!(healthz(&relay), 200);

    let status = relay.stop().unwrap().expect("it was running");
    assert!(status.success(), "SIGTERM ends the relay cleanly: {status}");
    assert!(
        relay.db_path().exists(),
        "the database outlives the process"
    );
}

/// The relay's resident memory, in KiB, from `/proc/<pid>/status`.
fn resident_kib(relay: &RelayProcess) -> u64 {
    let pid = relay.pid().expect("the relay runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

#[test]
fn logins_do_not_grow_the_relays_memory() {
    // Each Argon2 check uses 19 MiB of memory. The relay used to keep about that much more
    // after each of its first logins (five logins: +78 MB); it now keeps one set of blocks.
    let relay = RelayProcess::start_with(&["--demo"]).unwrap();
    let base = relay.http_base();
    caresync_tests::login(&base, "demo-director", "demo-password").unwrap();
    let after_first = resident_kib(&relay);
    for username in [
        "demo-director-2",
        "demo-worker",
        "demo-reviewer",
        "demo-admin",
    ] {
        caresync_tests::login(&base, username, "demo-password").unwrap();
        assert!(caresync_tests::login(&base, username, "wrong password").is_err());
    }
    let after_more = resident_kib(&relay);
    let grown_mib = after_more.saturating_sub(after_first) / 1024;
    assert!(
        grown_mib < 10,
        "eight more logins grew the relay by {grown_mib} MiB ({after_first} KiB to {after_more} KiB)"
    );
}
