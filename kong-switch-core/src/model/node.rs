use std::fmt;

use serde::{Deserialize, Serialize};

use super::Extra;

/// `GET /`: what a Kong node says about itself.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Version string: `2.8.5`, `3.9.3`, `3.4.3.1-enterprise-edition`, …
    #[serde(default)]
    pub version: String,
    /// `community` or `enterprise` (3.6+ only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    /// Host name of the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Node id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// `Welcome to kong`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tagline: Option<String>,
    /// LuaJIT version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lua_version: Option<String>,
    /// The node's configuration (Kong redacts secrets in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<NodeConfiguration>,
    /// Fields this crate does not model (`plugins`, `pids`, `timers`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

impl NodeInfo {
    /// The parsed version.
    pub fn kong_version(&self) -> KongVersion {
        KongVersion::parse(&self.version)
    }

    /// The deployment mode this node runs in.
    pub fn mode(&self) -> Mode {
        let conf = self.configuration.as_ref();
        let role = conf
            .and_then(|c| c.role.as_deref())
            .unwrap_or("traditional");
        let database = conf
            .and_then(|c| c.database.as_deref())
            .unwrap_or("postgres");
        match (role, database) {
            ("control_plane", _) => Mode::HybridControlPlane,
            ("data_plane", _) => Mode::HybridDataPlane,
            (_, "off") => Mode::DbLess,
            _ => Mode::Traditional,
        }
    }

    /// The edition: `edition` when Kong reports it (3.6+), else inferred from the version.
    pub fn edition(&self) -> Option<&str> {
        match self.edition.as_deref() {
            Some(edition) => Some(edition),
            None if self.kong_version().enterprise => Some("enterprise"),
            None => None,
        }
    }

    /// Seconds between another node's write and this node seeing it (`db_update_frequency`).
    pub fn db_update_frequency(&self) -> f64 {
        self.configuration
            .as_ref()
            .and_then(|c| c.db_update_frequency)
            .unwrap_or(5.0)
    }

    /// Seconds a router or service change may take to reach this node's proxy after the write.
    ///
    /// Kong 3.x defaults to `worker_consistency = eventual`: the router is rebuilt by a timer
    /// every `worker_state_update_frequency` seconds (measured 4.1–4.9 s on 3.9.3). With
    /// `strict` (the 2.8 default) the next request sees the change. A DB-less node applies a
    /// `POST /config` at once on both versions (measured 1–54 ms on 3.9.3).
    pub fn router_rebuild_delay(&self) -> f64 {
        if self.mode() == Mode::DbLess {
            return 0.0;
        }
        let conf = self.configuration.as_ref();
        let consistency = conf
            .and_then(|c| c.worker_consistency.as_deref())
            .unwrap_or(if self.kong_version().major >= 3 {
                "eventual"
            } else {
                "strict"
            });
        if consistency == "strict" {
            0.0
        } else {
            conf.and_then(|c| c.worker_state_update_frequency)
                .unwrap_or(5.0)
        }
    }
}

/// The part of `GET /` `configuration` that decides how writes propagate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeConfiguration {
    /// `traditional`, `control_plane` or `data_plane`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `postgres`, `cassandra` or `off` (DB-less).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Seconds between polls of the cluster events table (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_update_frequency: Option<f64>,
    /// Seconds between background router rebuilds under eventual consistency (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_state_update_frequency: Option<f64>,
    /// `strict` (2.8 default) or `eventual` (3.x default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_consistency: Option<String>,
    /// 3.x router flavor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_flavor: Option<String>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// How a Kong node is deployed, which decides how a switch must write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A node with a database; its Admin API writes entities.
    Traditional,
    /// `database = off`: entity writes are refused; the only write is `POST /config`.
    DbLess,
    /// A hybrid control plane: takes writes, pushes config to data planes, has no health view.
    HybridControlPlane,
    /// A hybrid data plane: no Admin API writes.
    HybridDataPlane,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Traditional => "traditional",
            Mode::DbLess => "db-less",
            Mode::HybridControlPlane => "hybrid control plane",
            Mode::HybridDataPlane => "hybrid data plane",
        })
    }
}

/// A parsed Kong version: `2.8.5`, `3.9.3`, `3.4.3.1-enterprise-edition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct KongVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
    /// Whether the version string names the Enterprise edition.
    pub enterprise: bool,
}

impl KongVersion {
    /// Parses Kong's version string; missing parts read as 0.
    pub fn parse(version: &str) -> KongVersion {
        let mut parts = version
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        KongVersion {
            major: parts.next().unwrap_or(0),
            minor: parts.next().unwrap_or(0),
            patch: parts.next().unwrap_or(0),
            enterprise: version.contains("enterprise"),
        }
    }

    /// Whether this is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for KongVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// `GET /status` (Admin API or Status API).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Database reachability (`{"reachable": true}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<serde_json::Value>,
    /// Connection counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<serde_json::Value>,
    /// DB-less and data-plane nodes: md5 of the loaded configuration (all zeros before the
    /// first configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_hash: Option<String>,
    /// Fields this crate does not model (`memory`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_community_and_enterprise() {
        let v = KongVersion::parse("3.4.3.1-enterprise-edition");
        assert_eq!((v.major, v.minor, v.patch, v.enterprise), (3, 4, 3, true));
        assert!(KongVersion::parse("2.8.5").at_least(2, 8));
        assert!(!KongVersion::parse("2.8.5").at_least(3, 0));
    }

    #[test]
    fn mode_follows_role_then_database() {
        let node = |role: &str, db: &str| NodeInfo {
            configuration: Some(NodeConfiguration {
                role: Some(role.into()),
                database: Some(db.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(node("traditional", "postgres").mode(), Mode::Traditional);
        assert_eq!(node("traditional", "off").mode(), Mode::DbLess);
        assert_eq!(
            node("control_plane", "postgres").mode(),
            Mode::HybridControlPlane
        );
        assert_eq!(node("data_plane", "off").mode(), Mode::HybridDataPlane);
    }

    #[test]
    fn router_delay_is_zero_on_strict_and_the_state_frequency_on_eventual() {
        let mut node = NodeInfo {
            version: "3.9.3".into(),
            ..Default::default()
        };
        assert_eq!(node.router_rebuild_delay(), 5.0);
        node.version = "2.8.5".into();
        assert_eq!(node.router_rebuild_delay(), 0.0);
    }

    #[test]
    fn db_less_nodes_apply_config_at_once() {
        let node = NodeInfo {
            version: "3.9.3".into(),
            configuration: Some(NodeConfiguration {
                database: Some("off".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(node.router_rebuild_delay(), 0.0);
    }
}
