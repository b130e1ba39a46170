use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Extra, Target};

/// A target's health as Kong's balancer on the answering node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetHealth {
    /// At least one of the target's addresses is healthy.
    Healthy,
    /// Every address is unhealthy.
    Unhealthy,
    /// The target's host did not resolve.
    DnsError,
    /// Health checks are off: Kong does not know. Treated as *unknown*, never as healthy.
    HealthchecksOff,
    /// A value this crate does not know, kept as Kong sent it.
    Unknown(String),
}

impl TargetHealth {
    /// Kong's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            TargetHealth::Healthy => "HEALTHY",
            TargetHealth::Unhealthy => "UNHEALTHY",
            TargetHealth::DnsError => "DNS_ERROR",
            TargetHealth::HealthchecksOff => "HEALTHCHECKS_OFF",
            TargetHealth::Unknown(other) => other,
        }
    }
}

impl From<&str> for TargetHealth {
    fn from(value: &str) -> Self {
        match value {
            "HEALTHY" => TargetHealth::Healthy,
            "UNHEALTHY" => TargetHealth::Unhealthy,
            "DNS_ERROR" => TargetHealth::DnsError,
            "HEALTHCHECKS_OFF" => TargetHealth::HealthchecksOff,
            other => TargetHealth::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for TargetHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TargetHealth {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TargetHealth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(TargetHealth::from(value.as_str()))
    }
}

/// `GET /upstreams/{u}/health`: the upstream's targets with their health on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamHealth {
    /// Targets with health.
    pub data: Vec<TargetWithHealth>,
    /// The node (worker) whose balancer answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Path of the next page, if any.
    #[serde(default)]
    pub next: Option<String>,
    /// Offset of the next page, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
}

/// One entry of [`UpstreamHealth`]: the target entity plus its health.
///
/// On a hybrid control plane, and on a 3.x node before the upstream's balancer exists, Kong
/// lists bare targets: `health` and `data` are then `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetWithHealth {
    /// The target.
    #[serde(flatten)]
    pub target: Target,
    /// Its health, if the node has a balancer for the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<TargetHealth>,
    /// The balancer's view of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<HealthData>,
}

/// The balancer detail of a target in [`TargetWithHealth`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HealthData {
    /// Host part of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port part of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Record type used (`A`, `AAAA`, `SRV`…), or the resolver error text on `DNS_ERROR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
    /// The target's weight in the balancer.
    #[serde(
        rename = "nodeWeight",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_weight: Option<u32>,
    /// Weight totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<HealthWeight>,
    /// Resolved addresses with their health. Kong sends `{}` instead of `[]` when there are
    /// none (DNS errors); both read as empty.
    #[serde(
        default,
        deserialize_with = "addresses_list_or_empty_object",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub addresses: Vec<AddressHealth>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Weight totals of a target's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HealthWeight {
    /// Sum of all address weights.
    #[serde(default)]
    pub total: u32,
    /// Weight of healthy addresses.
    #[serde(default)]
    pub available: u32,
    /// Weight of unhealthy addresses.
    #[serde(default)]
    pub unavailable: u32,
}

/// One resolved address of a target.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AddressHealth {
    /// IP address.
    #[serde(default)]
    pub ip: String,
    /// Port.
    #[serde(default)]
    pub port: u16,
    /// Weight.
    #[serde(default)]
    pub weight: u32,
    /// Health of this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<TargetHealth>,
}

fn addresses_list_or_empty_object<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<AddressHealth>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrObject {
        List(Vec<AddressHealth>),
        Other(serde::de::IgnoredAny),
    }
    Ok(match ListOrObject::deserialize(deserializer)? {
        ListOrObject::List(list) => list,
        ListOrObject::Other(_) => Vec::new(),
    })
}

/// `GET /upstreams/{u}/health?balancer_health=1`: the upstream as a whole.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BalancerHealth {
    /// Upstream id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Upstream health (`HEALTHY`, `UNHEALTHY` or `HEALTHCHECKS_OFF`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<TargetHealth>,
    /// 3.x: the balancer's own health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer_health: Option<TargetHealth>,
    /// Fields this crate does not model (`details`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_health_values_are_kept() {
        let h: TargetHealth = serde_json::from_str(r#""SOMETHING_NEW""#).unwrap();
        assert_eq!(h, TargetHealth::Unknown("SOMETHING_NEW".into()));
        assert_eq!(serde_json::to_string(&h).unwrap(), r#""SOMETHING_NEW""#);
        let off: TargetHealth = serde_json::from_str(r#""HEALTHCHECKS_OFF""#).unwrap();
        assert_eq!(off, TargetHealth::HealthchecksOff);
    }

    #[test]
    fn dns_error_addresses_object_reads_as_empty() {
        let data: HealthData = serde_json::from_str(
            r#"{"host":"nope.invalid","port":8000,"dns":"dns server error: 3 name error",
                "nodeWeight":100,"weight":{"total":0,"available":0,"unavailable":0},
                "addresses":{}}"#,
        )
        .unwrap();
        assert!(data.addresses.is_empty());
        assert_eq!(data.node_weight, Some(100));
    }

    #[test]
    fn bare_targets_have_no_health() {
        let h: UpstreamHealth = serde_json::from_str(
            r#"{"data":[{"id":"6b0e…","target":"10.0.0.1:8000","weight":100,
                "upstream":{"id":"u"},"created_at":1795562177.807,"tags":null}],
                "next":null,"node_id":"n"}"#,
        )
        .unwrap();
        assert_eq!(h.data[0].health, None);
        assert_eq!(h.data[0].target.weight(), 100);
    }
}
