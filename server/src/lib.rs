//! The caresync relay as a library, so that the `caresync` binary stays a thin entry point
//! and tests and benchmarks can build databases and demo data with the same code.

pub mod api;
pub mod auth;
pub mod bench_data;
pub mod cli;
pub mod clock;
pub mod db;
pub mod demo;
pub mod demo_install;
pub mod export;
pub mod listener;
pub mod metrics;
pub mod org;
pub mod relay;
pub mod routes;
pub mod serve;
pub mod shutdown;
pub mod state;
pub mod store;
