//! Typed Kong Admin API client and health-gated blue/green switch engine.
//!
//! # Admin API client
//!
//! [`admin::KongClient`] talks to one Kong Admin API (Kong 2.8 and 3.x; traditional, DB-less
//! and hybrid control plane). Configuration is a value, [`admin::AdminConfig`]; entities are
//! the plain serde types of [`model`]; every endpoint has a pure request builder returning an
//! [`admin::AdminRequest`], and [`admin::KongClient::execute`] is the one place that does I/O.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use kong_switch_core::admin::{AdminConfig, KongClient};
//! use kong_switch_core::model::NameOrId;
//! use secrecy::SecretString;
//!
//! # async fn quick_start() -> Result<(), kong_switch_core::admin::Error> {
//! let config = AdminConfig::builder("https://gw.example.com/kong-admin")?
//!     .token(SecretString::from("my-rbac-token"))
//!     .request_timeout(Duration::from_secs(10))
//!     .build()?;
//! let kong = KongClient::new(config)?;
//!
//! // Version and mode, fetched once and cached: call this before any write.
//! let node = kong.node().await?;
//! println!("Kong {} in {} mode", node.version, node.mode);
//!
//! let service = kong.services().get(&NameOrId::from("orders")).await?;
//! println!("orders -> {}", service.host);
//!
//! let health = kong.upstreams().health(&NameOrId::from("orders-green")).await?;
//! for entry in &health.data {
//!     println!("{} {:?}", entry.target.target, entry.health);
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod admin;
pub mod inspect;
pub mod model;
pub mod state;
pub mod switch;
