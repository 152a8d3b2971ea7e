//! Counters for `/metrics`, in the Prometheus text format. Plain atomics: the engine thread
//! and the HTTP side update them without locks, and a scrape reads a consistent-enough view.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    connections: AtomicU64,
    documents_loaded: AtomicU64,
    changes_stored: AtomicU64,
    sync_errors: AtomicU64,
    logins_failed: AtomicU64,
    requests_limited: AtomicU64,
}

impl Metrics {
    pub fn set_connections(&self, count: usize) {
        self.connections
            .store(u64::try_from(count).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn set_documents_loaded(&self, count: usize) {
        self.documents_loaded
            .store(u64::try_from(count).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn add_changes_stored(&self, count: u64) {
        self.changes_stored.fetch_add(count, Ordering::Relaxed);
    }

    pub fn add_sync_error(&self) {
        self.sync_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_login_failed(&self) {
        self.logins_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_request_limited(&self) {
        self.requests_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn changes_stored(&self) -> u64 {
        self.changes_stored.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let rows: [(&str, &str, &str, &AtomicU64); 6] = [
            (
                "caresync_connections",
                "gauge",
                "Open sync connections.",
                &self.connections,
            ),
            (
                "caresync_documents_loaded",
                "gauge",
                "Documents held in the relay's memory.",
                &self.documents_loaded,
            ),
            (
                "caresync_changes_stored_total",
                "counter",
                "Change rows committed to SQLite.",
                &self.changes_stored,
            ),
            (
                "caresync_sync_errors_total",
                "counter",
                "Protocol violations, refused changes, denied reads and storage failures.",
                &self.sync_errors,
            ),
            (
                "caresync_logins_failed_total",
                "counter",
                "Login attempts refused (wrong password, unknown account or throttled).",
                &self.logins_failed,
            ),
            (
                "caresync_requests_limited_total",
                "counter",
                "Requests and messages refused by a rate limit.",
                &self.requests_limited,
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out
    }
}
