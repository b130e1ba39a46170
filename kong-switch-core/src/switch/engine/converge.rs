//! Converging and verifying after writes: waiting until every node (the written one, the
//! extra `--node`s, the data planes in hybrid mode) serves what was written, then verifying
//! through the proxy. [`Verified`] is what the run decides from; `live_message` words the
//! data planes' part of a report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::admin::Node;
use crate::model::Mode;
use crate::state::StateLog;

use super::super::apply::{self, Stopped};
use super::super::hybrid::{self, Settle, Watch};
use super::super::progress::ProgressEvent;
use super::super::report::{ConvergenceMethod, HybridReport, NodeConvergence, RollbackCause};
use super::super::request::{SwitchRequest, VerifyConfig};
use super::super::verify::{self, Converged, Poll, VerificationReport};
use super::{Engine, ms};

/// Margin added to the computed convergence timeout.
const CONVERGENCE_MARGIN: Duration = Duration::from_secs(3);

/// The outcome of converging and verifying.
pub(super) struct Verified {
    pub(super) nodes: Vec<NodeConvergence>,
    pub(super) hybrid: Option<HybridReport>,
    pub(super) verification: Option<VerificationReport>,
    cancelled: bool,
    failure: Option<String>,
}

impl Verified {
    /// Why the run must stop after verification (the rollback path), if it must.
    pub(super) fn stop(&self, step: usize) -> Option<Stopped> {
        if self.cancelled {
            return Some(Stopped::new(
                step,
                RollbackCause::Interrupted,
                "interrupted while waiting for the new side / verifying",
            ));
        }
        self.failure
            .clone()
            .map(|reason| Stopped::new(step, RollbackCause::VerificationFailed, reason))
    }
}

impl<L: StateLog> Engine<L> {
    /// Waits until every node serves the new side, then verifies through the proxy.
    /// `router`: the writes moved routes (see [`moves_routes`](super::moves_routes)).
    pub(super) async fn converge_and_verify(
        &self,
        req: &SwitchRequest,
        node: &Node,
        router: bool,
        watch: Option<(Watch, Instant)>,
    ) -> Verified {
        // Hybrid mode: every connected data plane must report the new config hash first.
        let mut hybrid_report = None;
        let mut hybrid_failure = None;
        let hybrid_nodes = match watch {
            Some((watch, written_at)) => {
                let settled = self.settle_hybrid(req, node, watch, written_at).await;
                if settled.cancelled {
                    return Verified {
                        nodes: settled.nodes,
                        hybrid: Some(settled.report),
                        verification: None,
                        cancelled: true,
                        failure: None,
                    };
                }
                hybrid_report = Some(settled.report);
                hybrid_failure = settled.failure;
                Some(settled.nodes)
            }
            None => None,
        };
        let hybrid_mode = hybrid_nodes.is_some();
        let primary_delay = primary_delay(node, router);
        let extra_nodes: Vec<(String, Option<Arc<Node>>)> = join_all(
            req.nodes
                .iter()
                .map(|n| async move { (n.name.clone(), n.client.node().await.ok()) }),
        )
        .await;
        let extra_delay = |n: &Option<Arc<Node>>| -> Duration {
            match n {
                Some(n) => {
                    n.db_update_frequency()
                        + if router {
                            n.router_rebuild_delay()
                        } else {
                            Duration::ZERO
                        }
                }
                None => Duration::from_secs(10),
            }
        };
        let longest = extra_nodes
            .iter()
            .map(|(_, n)| extra_delay(n))
            .chain(std::iter::once(primary_delay))
            .max()
            .unwrap_or_default();
        let verify = req.verify.as_ref();
        let timeout = verify
            .and_then(|v| v.convergence_timeout)
            .unwrap_or(longest + CONVERGENCE_MARGIN);

        let primary = async {
            match verify.and_then(|v| v.expect_header.as_ref().map(|h| (v, h))) {
                Some((v, header)) => {
                    let label = if hybrid_mode { "proxy" } else { "primary" };
                    Some(self.await_proxy(label, &v.url, header, v, timeout).await)
                }
                None if hybrid_mode => None,
                None => Some(
                    self.await_delay("primary", primary_delay, node_detail(node, router))
                        .await,
                ),
            }
        };
        let others = join_all(req.nodes.iter().zip(&extra_nodes).map(|(n, (_, info))| {
            let delay = extra_delay(info);
            async move {
                match (
                    verify,
                    &n.proxy_url,
                    verify.and_then(|v| v.expect_header.as_ref()),
                ) {
                    (Some(v), Some(url), Some(header)) => {
                        self.await_proxy(&n.name, url, header, v, timeout).await
                    }
                    _ => {
                        let detail = match info {
                            Some(info) => node_detail_extra(info, router),
                            None => "GET / failed: waited 10 s".to_owned(),
                        };
                        self.await_delay(&n.name, delay, detail).await
                    }
                }
            }
        }));
        let (primary, others) = futures::join!(primary, others);
        let mut nodes = hybrid_nodes.unwrap_or_default();
        nodes.extend(primary);
        nodes.extend(others);
        let cancelled = self.cancel.is_cancelled();
        if cancelled {
            return Verified {
                nodes,
                hybrid: hybrid_report,
                verification: None,
                cancelled,
                failure: None,
            };
        }
        let mut failure = hybrid_failure.or_else(|| {
            nodes
                .iter()
                .find(|n| !n.converged)
                .map(|n| format!("node {} did not serve the new side: {}", n.node, n.detail))
        });
        let mut verification = None;
        if let Some(v) = verify {
            match verify::measure(&self.http, v, &self.cancel, self.progress.as_ref()).await {
                None => {
                    return Verified {
                        nodes,
                        hybrid: hybrid_report,
                        verification: None,
                        cancelled: true,
                        failure: None,
                    };
                }
                Some(samples) => {
                    let converged_after = nodes
                        .first()
                        .and_then(|n| n.converged_after_ms)
                        .map(Duration::from_millis);
                    let r = verify::evaluate(&samples, v, converged_after);
                    if failure.is_none() {
                        failure = r
                            .failure
                            .clone()
                            .map(|f| format!("verification failed: {f}"));
                    }
                    verification = Some(r);
                }
            }
        }
        Verified {
            nodes,
            hybrid: hybrid_report,
            verification,
            cancelled: false,
            failure,
        }
    }

    /// Hybrid mode: waits until every connected data plane reports what was written at
    /// `written_at` (see `hybrid`).
    async fn settle_hybrid(
        &self,
        req: &SwitchRequest,
        node: &Node,
        watch: Watch,
        written_at: Instant,
    ) -> hybrid::Settled {
        let timeout = req
            .verify
            .as_ref()
            .and_then(|v| v.convergence_timeout)
            .unwrap_or_else(|| hybrid::default_timeout(node, self.disconnected_after));
        let proxy_proof = req
            .verify
            .as_ref()
            .is_some_and(|v| v.expect_header.is_some());
        self.settle_watch(
            node,
            watch,
            written_at,
            timeout,
            &req.gates.data_planes,
            proxy_proof,
        )
        .await
    }

    /// Waits until the data planes `watch` saw report what was written at `written_at`.
    pub(super) async fn settle_watch(
        &self,
        node: &Node,
        watch: Watch,
        written_at: Instant,
        timeout: Duration,
        status_urls: &[url::Url],
        proxy_proof: bool,
    ) -> hybrid::Settled {
        watch
            .settle(Settle {
                node,
                written_at,
                disconnected_after: self.disconnected_after,
                timeout,
                status_urls,
                http: &self.http,
                cancel: &self.cancel,
                progress: self.progress.as_ref(),
                proxy_proof,
            })
            .await
    }

    async fn await_proxy(
        &self,
        node: &str,
        url: &url::Url,
        header: &super::super::request::HeaderMatch,
        v: &VerifyConfig,
        timeout: Duration,
    ) -> NodeConvergence {
        let poll = Poll {
            url,
            header,
            consecutive: v.consecutive,
            interval: v.interval,
            request_timeout: v.request_timeout,
            timeout,
            node,
        };
        match verify::await_new_side(&self.http, poll, &self.cancel, self.progress.as_ref()).await {
            Converged::After(d) => NodeConvergence {
                node: node.to_owned(),
                method: ConvergenceMethod::Proxy,
                converged: true,
                converged_after_ms: Some(ms(d)),
                detail: format!("{} consecutive answers with {header}", v.consecutive),
            },
            Converged::TimedOut(d) => NodeConvergence {
                node: node.to_owned(),
                method: ConvergenceMethod::Proxy,
                converged: false,
                converged_after_ms: None,
                detail: format!(
                    "no {} consecutive answers with {header} within {} ms",
                    v.consecutive,
                    ms(d)
                ),
            },
            Converged::Cancelled => NodeConvergence {
                node: node.to_owned(),
                method: ConvergenceMethod::Proxy,
                converged: false,
                converged_after_ms: None,
                detail: "interrupted".into(),
            },
        }
    }

    async fn await_delay(&self, node: &str, delay: Duration, detail: String) -> NodeConvergence {
        if delay.is_zero() {
            return NodeConvergence {
                node: node.to_owned(),
                method: ConvergenceMethod::Immediate,
                converged: true,
                converged_after_ms: Some(0),
                detail,
            };
        }
        self.progress.event(ProgressEvent::Waiting {
            what: format!("{node} to apply the change ({detail})"),
            up_to: delay,
        });
        let done = apply::wait(delay, &self.cancel).await;
        NodeConvergence {
            node: node.to_owned(),
            method: ConvergenceMethod::Waited,
            converged: done,
            converged_after_ms: done.then_some(ms(delay)),
            detail: if done { detail } else { "interrupted".into() },
        }
    }

    /// Waits until the written node serves what was just written: its router rebuild delay
    /// when `router` (service and route changes; none for target weights or `POST /config`),
    /// as `GET /` reports it.
    pub(super) async fn await_primary(&self, node: &Node, router: bool) -> NodeConvergence {
        let delay = primary_delay(node, router);
        if !delay.is_zero() {
            self.progress.event(ProgressEvent::Waiting {
                what: "Kong to apply the rollback".to_owned(),
                up_to: delay,
            });
            tokio::time::sleep(delay).await;
        }
        NodeConvergence {
            node: "primary".to_owned(),
            method: if delay.is_zero() {
                ConvergenceMethod::Immediate
            } else {
                ConvergenceMethod::Waited
            },
            converged: true,
            converged_after_ms: Some(ms(delay)),
            detail: node_detail(node, router),
        }
    }
}

fn primary_delay(node: &Node, router: bool) -> Duration {
    match node.mode {
        // Pushes to data planes happen within db_update_frequency; 3.x proxies lag ~1 s more.
        Mode::HybridControlPlane => node.db_update_frequency() + Duration::from_secs(2),
        _ if router => node.router_rebuild_delay(),
        _ => Duration::ZERO,
    }
}

fn node_detail(node: &Node, router: bool) -> String {
    match node.mode {
        Mode::HybridControlPlane => format!(
            "control plane pushes within db_update_frequency {:.1} s (+2 s for data-plane proxies)",
            node.db_update_frequency().as_secs_f64()
        ),
        _ if router => format!(
            "router rebuild delay {:.1} s (Kong {})",
            node.router_rebuild_delay().as_secs_f64(),
            node.version
        ),
        _ => "target weight changes apply at once on the written node".to_owned(),
    }
}

fn node_detail_extra(node: &Node, router: bool) -> String {
    if router {
        format!(
            "db_update_frequency {:.1} s + router rebuild delay {:.1} s",
            node.db_update_frequency().as_secs_f64(),
            node.router_rebuild_delay().as_secs_f64()
        )
    } else {
        format!(
            "db_update_frequency {:.1} s",
            node.db_update_frequency().as_secs_f64()
        )
    }
}

/// `, live on 2 data plane(s) after 6.1 s (dp x disconnected, not waited for)`.
pub(super) fn live_message(h: &HybridReport) -> String {
    let connected = h.data_planes.iter().filter(|d| d.connected).count();
    let mut text = match h.live_after_ms {
        Some(after) => format!(
            ", live on {connected} data plane(s) after {:.1} s",
            Duration::from_millis(after).as_secs_f64()
        ),
        None => format!(", not live on every data plane ({connected} connected)"),
    };
    if !h.disconnected.is_empty() {
        text.push_str(&format!(
            "; disconnected, not waited for: {}",
            h.disconnected.join(", ")
        ));
    }
    text
}
