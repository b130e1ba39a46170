//! Kubernetes: `deploy-green`, `retire-blue`, and the Kubernetes-level switches.
//!
//! - [`deploy_green`]: clones the blue Deployment into `<app>-green` with a new image,
//!   creates or updates the green Service, waits for the rollout, registers the Service in
//!   the green Kong Upstream, and records `deploying` → `testing` (or `rolled_back`).
//! - [`retire_blue`]: after the switch and a bake time, scales blue to zero (or deletes
//!   it) and records `idle`.
//!
//! - [`switch`]: Service selector flips and HTTPRoute `backendRefs` weights, for clusters
//!   where Kong is driven by its ingress controller: plan → gate → apply → read back →
//!   roll back.
//!
//! Every command holds the state-log lease on its target while it runs.

mod clone;
mod cluster;
pub mod deploy;
mod record;
pub mod retire;
mod rollout;
pub mod switch;

pub use clone::{GreenSpec, VERSION_LABEL, green_deployment, green_service};
pub use cluster::{Cluster, KubeOptions};
pub use deploy::{DeployGreen, DeployReport, deploy_green};
pub use record::RunContext;
pub use retire::{RETIRED_REPLICAS_ANNOTATION, RetireBlue, RetireMode, RetireReport, retire_blue};
pub use rollout::{Progress, RolloutProgress};
pub use switch::{K8sSwitch, Plan, Step, SwitchReport};
