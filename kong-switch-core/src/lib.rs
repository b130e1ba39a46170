//! Typed Kong Admin API client and health-gated blue/green switch engine.
#![warn(missing_docs)]

pub mod admin;
pub mod model;
