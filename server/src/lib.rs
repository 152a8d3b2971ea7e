//! The caresync relay as a library, so that the `caresync` binary stays a thin entry point
//! and tests and benchmarks can build databases and demo data with the same code.

pub mod cli;
pub mod demo;
pub mod export;
pub mod routes;
pub mod serve;
pub mod shutdown;
pub mod store;
