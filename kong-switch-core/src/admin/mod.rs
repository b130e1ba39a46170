//! Kong Admin API client.
//!
//! - [`AdminConfig`]: where and how to connect (a value, built with a `#[must_use]` builder;
//!   the token is a [`secrecy::SecretString`] and never shown).
//! - [`KongClient`]: one cheap-clone client; [`KongClient::execute`] is the only place that
//!   does I/O. Reads (GETs) are retried on transient failures; writes never are.
//! - Per-entity handles with the same verbs everywhere: [`KongClient::services`],
//!   [`KongClient::routes`], [`KongClient::upstreams`] (plus health),
//!   [`KongClient::targets`] (plus health marks). Each verb has a pure `*_request` twin that
//!   returns the [`AdminRequest`] it sends, for dry runs and tests.
//! - [`Node`]: every version- and mode-dependent behaviour, derived from `GET /` once.
//! - [`Error`]: one error type; Kong's own error bodies are decoded into [`KongError`].

mod client;
mod config;
mod error;
mod handles;
mod node;
mod request;

pub use client::{ADMIN_TOKEN_HEADER, KongClient, RawResponse, USER_AGENT_VALUE};
pub use config::{AdminConfig, AdminConfigBuilder, RetryPolicy};
pub use error::{Error, KongError, Result};
pub use handles::{Entities, ListParams, MAX_PAGE_SIZE, TagFilter, Targets, Upstreams};
pub use node::Node;
pub use request::{AdminRequest, Method, brief, encode_segment};
