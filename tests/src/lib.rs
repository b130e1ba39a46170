//! Kong stand-in, test backends and the end-to-end test harness for kong-switch.
//!
//! - [`standin`]: a faithful imitation of Kong Gateway 2.8 / 3.x / DB-less (Admin API, proxy,
//!   health checks, several nodes, fault injection, request log).
//! - [`backend`]: tiny "blue"/"green" HTTP backends with switchable health.
//! - [`harness`]: `Env` runs a test against the stand-in, or against the real Kong nodes the
//!   environment names (traditional, DB-less, a second node, hybrid; see its docs).
//! - [`cli`]: runs the real `kong-switch` binary.

pub mod backend;
pub mod cli;
pub mod harness;
pub mod standin;
