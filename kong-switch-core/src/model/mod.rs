//! Kong entities as plain serde types, named as Kong names them.
//!
//! Reading is lenient: server-defaulted fields are `Option<T>` (a JSON `null` and an absent
//! field both read as `None`), timestamps accept Kong 2.8's integers and 3.x's floats, and
//! fields this crate does not know are kept in each entity's `extra` map so a newer Kong still
//! decodes. Writing is strict: changes go through the small patch types of [`patch`], which
//! carry only the fields a switch sets and never echo unknown fields back to Kong.

mod common;
mod health;
mod node;
pub mod patch;
mod route;
mod service;
mod target;
mod upstream;

pub use common::{EntityRef, NameOrId, Page, Timestamp};
pub use health::{
    AddressHealth, BalancerHealth, HealthData, HealthWeight, TargetHealth, TargetWithHealth,
    UpstreamHealth,
};
pub use node::{KongVersion, Mode, NodeConfiguration, NodeInfo, NodeStatus};
pub use route::Route;
pub use service::Service;
pub use target::Target;
pub use upstream::{
    ActiveHealthcheck, ActiveHealthy, ActiveUnhealthy, Healthchecks, PassiveHealthcheck,
    PassiveHealthy, PassiveUnhealthy, Upstream,
};

/// Fields Kong sent that this crate does not model; kept on read, never sent on write.
pub type Extra = serde_json::Map<String, serde_json::Value>;
