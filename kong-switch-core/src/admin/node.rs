//! Version- and mode-dependent behaviour of a Kong node, in one place.

use std::time::Duration;

use crate::model::{KongVersion, Mode, NodeInfo};

use super::Method;

/// What the client knows about the Kong node behind the Admin API (from `GET /`), and every
/// behaviour that differs by version or deployment mode.
///
/// The rest of the crate asks these methods instead of comparing versions itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The node's `GET /` answer.
    pub info: NodeInfo,
    /// The parsed version.
    pub version: KongVersion,
    /// The deployment mode.
    pub mode: Mode,
}

impl Node {
    /// Derives version and mode from a `GET /` answer.
    pub fn new(info: NodeInfo) -> Node {
        Node {
            version: info.kong_version(),
            mode: info.mode(),
            info,
        }
    }

    /// Whether the Admin API takes entity writes (POST/PATCH/PUT/DELETE of services, routes,
    /// upstreams, targets): false in DB-less mode and on a hybrid data plane.
    pub fn writes_entities(&self) -> bool {
        matches!(self.mode, Mode::Traditional | Mode::HybridControlPlane)
    }

    /// The method of `…/targets/{t}/healthy|unhealthy`: `POST` on 2.8, `PUT` on 3.x, `None` on
    /// a hybrid node (the control plane has no balancer; a data plane has no Admin API).
    pub fn health_mark_method(&self) -> Option<Method> {
        match self.mode {
            Mode::HybridControlPlane | Mode::HybridDataPlane => None,
            Mode::Traditional | Mode::DbLess if self.version.major >= 3 => Some(Method::Put),
            Mode::Traditional | Mode::DbLess => Some(Method::Post),
        }
    }

    /// Whether `GET /upstreams/{u}/health` shows real balancer health: false on a hybrid
    /// control plane, which lists bare targets (health lives on the data planes).
    pub fn has_health_view(&self) -> bool {
        self.mode != Mode::HybridControlPlane
    }

    /// Whether `POST /upstreams/{u}/targets` with an existing address updates that target
    /// (2.8: 200 + `Deprecation: true`) instead of failing (3.x: 409 unique violation).
    pub fn duplicate_target_post_updates(&self) -> bool {
        self.version.major < 3
    }

    /// How long a router (service/route) change may take to reach this node's proxy after the
    /// write returns: 0 under `worker_consistency = strict` (2.8 default), else
    /// `worker_state_update_frequency` (3.x default 5 s).
    pub fn router_rebuild_delay(&self) -> Duration {
        secs(self.info.router_rebuild_delay(), Duration::from_secs(5))
    }

    /// How long other nodes (or, in hybrid mode, the control plane's pushes) may take to see a
    /// write: `db_update_frequency` (default 5 s).
    pub fn db_update_frequency(&self) -> Duration {
        secs(self.info.db_update_frequency(), Duration::from_secs(5))
    }
}

fn secs(value: f64, fallback: Duration) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NodeConfiguration;

    fn node(version: &str, role: &str, database: &str) -> Node {
        Node::new(NodeInfo {
            version: version.into(),
            configuration: Some(NodeConfiguration {
                role: Some(role.into()),
                database: Some(database.into()),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn health_marks_are_post_on_2_8_put_on_3_and_absent_in_hybrid() {
        assert_eq!(
            node("2.8.5", "traditional", "postgres").health_mark_method(),
            Some(Method::Post)
        );
        assert_eq!(
            node("3.9.3", "traditional", "postgres").health_mark_method(),
            Some(Method::Put)
        );
        assert_eq!(
            node("3.9.3", "control_plane", "postgres").health_mark_method(),
            None
        );
    }

    #[test]
    fn only_traditional_and_control_plane_write_entities() {
        assert!(node("3.9.3", "traditional", "postgres").writes_entities());
        assert!(node("3.9.3", "control_plane", "postgres").writes_entities());
        assert!(!node("3.9.3", "traditional", "off").writes_entities());
        assert!(!node("3.9.3", "data_plane", "off").writes_entities());
    }

    #[test]
    fn negative_frequencies_fall_back_to_kong_defaults() {
        let mut n = node("3.9.3", "traditional", "postgres");
        if let Some(c) = n.info.configuration.as_mut() {
            c.db_update_frequency = Some(-1.0);
        }
        assert_eq!(n.db_update_frequency(), Duration::from_secs(5));
    }
}
