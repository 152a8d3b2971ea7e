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
