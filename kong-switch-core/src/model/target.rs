use serde::{Deserialize, Serialize};

use super::{EntityRef, Extra, Timestamp};

/// A Target: one backend address (`host:port`) of an Upstream, with a weight.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Target {
    /// Entity id (UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Creation time: seconds with a millisecond fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// Last update time (Kong 3.3+ only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    /// The upstream this target belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<EntityRef>,
    /// Address as Kong stores it: `host:port`, port defaulted to 8000, IPv6 expanded.
    pub target: String,
    /// Balancer weight, 0..=65535 (default 100). Weight 0 receives no traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Target {
    /// Kong's default weight for a target that does not set one.
    pub const DEFAULT_WEIGHT: u32 = 100;

    /// The weight, with Kong's default applied.
    pub fn weight(&self) -> u32 {
        self.weight.unwrap_or(Self::DEFAULT_WEIGHT)
    }

    /// How to address this target in a path: its id when known (look-ups by address are not
    /// port-normalised by Kong), else its stored address.
    pub fn key(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.target)
    }

    /// Whether the target carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().flatten().any(|t| t == tag)
    }
}
