use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{EntityRef, Extra, Timestamp};

/// A Kong Route: which requests reach which Service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Route {
    /// Entity id (UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Creation time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// Last update time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    /// Unique name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Service this route sends traffic to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<EntityRef>,
    /// Protocols (default `["http","https"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocols: Option<Vec<String>>,
    /// HTTP methods matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Host names matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// Path prefixes (or regexes) matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Header values matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, Vec<String>>>,
    /// Strip the matched path prefix before proxying (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_path: Option<bool>,
    /// Send the client's `Host` header upstream (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_host: Option<bool>,
    /// Priority among regex paths (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_priority: Option<i64>,
    /// `v0` or `v1` (default `v0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_handling: Option<String>,
    /// Status for HTTP → HTTPS redirects (default 426).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect_status_code: Option<u16>,
    /// Buffer request bodies (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_buffering: Option<bool>,
    /// Buffer response bodies (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_buffering: Option<bool>,
    /// TLS SNIs matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snis: Option<Vec<String>>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Fields this crate does not model (`sources`, `destinations`, 3.x `expression`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Route {
    /// The name if set, else the id.
    pub fn key(&self) -> &str {
        self.name
            .as_deref()
            .or(self.id.as_deref())
            .unwrap_or_default()
    }

    /// The id of the service this route points at.
    pub fn service_id(&self) -> Option<&str> {
        self.service.as_ref().map(|s| s.id.as_str())
    }
}
