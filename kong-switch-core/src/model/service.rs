use serde::{Deserialize, Serialize};

use super::{EntityRef, Extra, Timestamp};

/// A Kong Service: where proxied traffic goes.
///
/// For the `upstream` strategy, `host` names a Kong Upstream (`orders-blue`), and switching
/// is one write of `host`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Service {
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
    /// Upstream host name, or the name of a Kong Upstream.
    pub host: String,
    /// Upstream port (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `http`, `https`, `grpc`, `tcp`, … (default `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Path prefix added to proxied requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Retries on failure (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Connect timeout in milliseconds (default 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<u64>,
    /// Write timeout in milliseconds (default 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_timeout: Option<u64>,
    /// Read timeout in milliseconds (default 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_timeout: Option<u64>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Client certificate for upstream mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<EntityRef>,
    /// Verify the upstream's TLS certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
    /// Maximum certificate chain depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify_depth: Option<u32>,
    /// CA certificate ids for upstream TLS verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<Vec<String>>,
    /// Whether the service is enabled (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Service {
    /// The name if set, else the id: how the service is shown and addressed.
    pub fn key(&self) -> &str {
        self.name
            .as_deref()
            .or(self.id.as_deref())
            .unwrap_or_default()
    }

    /// Whether the service carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().flatten().any(|t| t == tag)
    }
}
