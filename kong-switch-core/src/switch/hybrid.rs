//! Hybrid mode: knowing when a switch written to the control plane is live on every data plane
//! (kong-admin-api.md §10).
//!
//! The control plane has no endpoint for the hash it pushes; each data plane reports its own
//! `config_hash` and `last_seen` in `GET /clustering/data-planes`. So:
//!
//! 1. Before the first write, [`Watch::start`] records every row and starts polling the list,
//!    noting when each data plane's row first showed each new hash (the timeline gives the
//!    per-data-plane convergence time and the mixed-traffic window of multi-write switches).
//! 2. After the last write returns at `T`, [`Watch::settle`] waits at least until
//!    `T + db_update_frequency + SETTLE_MARGIN` (an earlier hash may belong to a partial push:
//!    the control plane pushes at most once per `db_update_frequency`), then requires every
//!    connected data plane (`last_seen` within the disconnect timeout, Kong's 45 s by default)
//!    to report the same hash, different from its hash before the writes, with
//!    `last_seen` at or after the first write. Data planes that are (or become) disconnected are
//!    named, not waited for.
//!    A run of one write on a quiet cluster needs no window (see [`quiet_hash`]: nothing
//!    applied within the window, the list current by every data plane's Status API, no push
//!    under way), so the write is pushed at once. The first new hash then holds the write and
//!    can no longer change because of it: the settle ends as soon as every connected data
//!    plane reports one new hash. If the cluster was not quiet, or a data plane shows more
//!    than one change, the window applies.
//! 3. On 3.x a data plane's proxy follows its hash about 0.6–0.8 s later, so each data plane
//!    counts as live only [`PROXY_LAG_ALLOWANCE`] after its row showed the final hash; when the
//!    user gave Status API URLs, each one's `/status` `configuration_hash` must be the final hash
//!    too (a Status API does not say which row it belongs to, so the URLs are checked against the
//!    common hash rather than mapped to rows).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::admin::{AdminRequest, KongClient, Node};

use super::error::Result;
use super::progress::{Progress, ProgressEvent};
use super::report::{ConvergenceMethod, DataPlaneReport, HybridReport, NodeConvergence};

/// Kong treats a data plane as gone when its last ping is older than 1.5 × the 30 s ping.
pub const DEFAULT_DISCONNECTED_AFTER: Duration = Duration::from_secs(45);

/// How often the control plane's data-plane list is read while watching.
const POLL: Duration = Duration::from_millis(100);

/// Time after `T + db_update_frequency` for the last push to be applied and reported: a data
/// plane applies a push within 0.26 s and the control plane lists it 0.1–0.9 s later (§10).
const SETTLE_MARGIN: Duration = Duration::from_millis(1500);

/// 3.x: how long a data plane's proxy may lag its hash (measured 0.6–0.8 s).
pub const PROXY_LAG_ALLOWANCE: Duration = Duration::from_secs(1);

/// The hash a data plane reports before its first configuration.
const NO_CONFIG: &str = "00000000000000000000000000000000";

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// One row of `GET /clustering/data-planes` (2.8 and 3.x share these fields).
#[derive(Debug, Clone, Deserialize)]
struct Row {
    id: String,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    config_hash: Option<String>,
    #[serde(default)]
    last_seen: Option<u64>,
}

impl Row {
    fn hash(&self) -> &str {
        self.config_hash.as_deref().unwrap_or(NO_CONFIG)
    }

    fn label(&self) -> String {
        let short: String = self.id.chars().take(8).collect();
        match &self.hostname {
            Some(h) => format!("dp {h} ({short})"),
            None => format!("dp {short}"),
        }
    }

    fn connected(&self, now: u64, timeout: Duration) -> bool {
        self.last_seen
            .is_some_and(|seen| now.saturating_sub(seen) <= timeout.as_secs())
    }
}

#[derive(Debug, Deserialize)]
struct Rows {
    data: Vec<Row>,
}

async fn read_rows(client: &KongClient) -> Result<Vec<Row>> {
    let rows: Rows = client
        .execute(&AdminRequest::get("/clustering/data-planes"))
        .await?;
    Ok(rows.data)
}

/// What the watcher saw of one data plane.
#[derive(Debug, Clone)]
struct Seen {
    row: Row,
    /// Each hash the row showed, with when it was first seen, in order.
    changes: Vec<(String, Instant)>,
}

type Timeline = Arc<Mutex<HashMap<String, Seen>>>;

fn lock(t: &Timeline) -> MutexGuard<'_, HashMap<String, Seen>> {
    t.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Watches the control plane's data planes from before the first write until the switch is
/// live (see the module docs).
pub(crate) struct Watch {
    /// The writes the run makes after the watch started (`usize::MAX` until told).
    writes: usize,
    /// When the cluster was quiet before the writes (see [`quiet_hash`]): the hash every
    /// connected data plane confirmed through its own Status API.
    quiet_hash: Option<String>,
    baseline: HashMap<String, Row>,
    baseline_epoch: u64,
    timeline: Timeline,
    stop: CancellationToken,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How [`Watch::settle`] should decide.
pub(crate) struct Settle<'a> {
    /// The control plane.
    pub node: &'a Node,
    /// When the last write returned.
    pub written_at: Instant,
    /// Data planes whose `last_seen` is older than this are disconnected.
    pub disconnected_after: Duration,
    /// Give up after this long from `written_at`.
    pub timeout: Duration,
    /// Status API base URLs given by the user.
    pub status_urls: &'a [Url],
    /// For the Status API reads.
    pub http: &'a reqwest::Client,
    /// Cancellation.
    pub cancel: &'a CancellationToken,
    /// Progress.
    pub progress: &'a dyn Progress,
    /// The caller proves the proxy serves the new side right after (`--verify` with
    /// `--expect-header`): with one connected data plane, that is its proxy, and the 3.x proxy
    /// lag allowance is not waited out here.
    pub proxy_proof: bool,
}

/// What [`Watch::settle`] found.
pub(crate) struct Settled {
    /// One entry per connected data plane.
    pub nodes: Vec<NodeConvergence>,
    /// The hybrid part of the report.
    pub report: HybridReport,
    /// Why it is not live, if it is not.
    pub failure: Option<String>,
    /// Whether the wait was cancelled.
    pub cancelled: bool,
}

impl Watch {
    /// Records every data plane's row and starts polling. Call before the first write.
    /// `status_urls` are the data planes' Status APIs, if the user gave them: with one per
    /// connected data plane, the watch can tell whether the cluster is quiet (see
    /// [`quiet_hash`]).
    pub(crate) async fn start(
        client: &KongClient,
        node: &Node,
        http: &reqwest::Client,
        status_urls: &[Url],
    ) -> Result<Watch> {
        let rows = read_rows(client).await?;
        let baseline_epoch = epoch_secs();
        let quiet_hash = quiet_hash(node, &rows, baseline_epoch, http, status_urls).await;
        let now = Instant::now();
        let timeline: Timeline = Arc::new(Mutex::new(
            rows.iter()
                .map(|r| {
                    (
                        r.id.clone(),
                        Seen {
                            row: r.clone(),
                            changes: vec![(r.hash().to_owned(), now)],
                        },
                    )
                })
                .collect(),
        ));
        let baseline = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
        let stop = CancellationToken::new();
        tokio::spawn(poll(client.clone(), Arc::clone(&timeline), stop.clone()));
        Ok(Watch {
            writes: usize::MAX,
            quiet_hash,
            baseline,
            baseline_epoch,
            timeline,
            stop,
        })
    }

    /// How many writes the run made after the watch started (one write needs no push window).
    #[must_use]
    pub(crate) fn with_writes(mut self, writes: usize) -> Watch {
        self.writes = writes;
        self
    }

    /// The rows of the connected data planes, as last polled.
    fn connected_rows(&self, epoch: u64, disconnected_after: Duration) -> Vec<Row> {
        lock(&self.timeline)
            .values()
            .map(|seen| seen.row.clone())
            .filter(|row| row.connected(epoch, disconnected_after))
            .collect()
    }

    /// Whether every data plane's config changed at most once since the watch started: then
    /// the one change of a one-write run is that write.
    fn changed_once(&self) -> bool {
        lock(&self.timeline)
            .values()
            .all(|seen| seen.changes.len() <= 2)
    }

    /// Waits until every connected data plane serves what was written (see the module docs).
    pub(crate) async fn settle(self, s: Settle<'_>) -> Settled {
        let window = s.node.db_update_frequency();
        let v3 = s.node.version.major >= 3;
        let windowed = s.written_at + window + SETTLE_MARGIN;
        s.progress.event(ProgressEvent::Waiting {
            what: format!(
                "every data plane to report the new config hash (db_update_frequency {:.1} s)",
                window.as_secs_f64()
            ),
            up_to: s.timeout,
        });
        let mut cancelled = false;
        // Only a quiet cluster's baseline was confirmed by every data plane's own Status API
        // before the write (see `quiet_hash`): only then may a change there prove the run.
        let mut by_status = StatusProof::new(self.quiet_hash.clone(), s.status_urls.len());
        let verdict = loop {
            let now = Instant::now();
            let one_write = self.writes == 1 && self.quiet_hash.is_some() && self.changed_once();
            let earliest = if one_write { s.written_at } else { windowed };
            if one_write && by_status.possible() {
                // The data planes' own Status APIs show their hash before the control plane
                // lists it (0.1-0.9 s later): read them directly.
                by_status.poll(s.http, s.status_urls).await;
                let connected = self.connected_rows(epoch_secs(), s.disconnected_after);
                if let Some(v) = by_status.verdict(&self, &s, v3, connected, Instant::now()) {
                    break v;
                }
            }
            if now >= earliest {
                let v = self.evaluate(&s, v3, now).await;
                if v.live || now >= s.written_at + s.timeout {
                    break v;
                }
            }
            let pause = if now < earliest {
                (earliest - now).min(POLL)
            } else {
                POLL
            };
            // The Status APIs are read every 20 ms while they can prove the run.
            let pause = if one_write && by_status.possible() {
                pause.min(STATUS_POLL)
            } else {
                pause
            }
            .max(Duration::from_millis(10));
            tokio::select! {
                () = s.cancel.cancelled() => {
                    cancelled = true;
                    break self.evaluate(&s, v3, Instant::now()).await;
                }
                () = tokio::time::sleep(pause) => {}
            }
        };
        self.stop.cancel();
        let live_after = s.written_at.elapsed();
        let mixed = verdict
            .planes
            .iter()
            .filter_map(|p| p.mixed_traffic_ms)
            .max();
        let nodes = verdict
            .planes
            .iter()
            .filter(|p| p.connected)
            .map(|p| NodeConvergence {
                node: p.label.clone(),
                method: ConvergenceMethod::ConfigHash,
                converged: p.converged,
                converged_after_ms: p.converged_after_ms,
                detail: p.detail.clone(),
            })
            .collect();
        let failure = (!verdict.live && !cancelled).then(|| {
            verdict.why.clone().unwrap_or_else(|| {
                format!(
                    "the data planes did not converge within {} ms",
                    ms(s.timeout)
                )
            })
        });
        let report = HybridReport {
            db_update_frequency_ms: ms(window),
            live: verdict.live,
            live_after_ms: verdict.live.then(|| ms(live_after)),
            config_hash: verdict.hash.clone(),
            mixed_traffic_ms: mixed,
            disconnected: verdict
                .planes
                .iter()
                .filter(|p| !p.connected)
                .map(|p| p.label.clone())
                .collect(),
            data_planes: verdict.planes.into_iter().map(|p| p.report).collect(),
            status_checks: verdict.status_checks,
        };
        Settled {
            nodes,
            report,
            failure,
            cancelled,
        }
    }

    async fn evaluate(&self, s: &Settle<'_>, v3: bool, now: Instant) -> Verdict {
        let seen: Vec<Seen> = {
            let t = lock(&self.timeline);
            let mut v: Vec<Seen> = t.values().cloned().collect();
            v.sort_by(|a, b| a.row.id.cmp(&b.row.id));
            v
        };
        let epoch = epoch_secs();
        let connected_planes = seen
            .iter()
            .filter(|dp| dp.row.connected(epoch, s.disconnected_after))
            .count();
        let mut planes = Vec::new();
        for dp in &seen {
            let row = &dp.row;
            let before = self.baseline.get(&row.id).map(|r| r.hash().to_owned());
            let connected = row.connected(epoch, s.disconnected_after);
            let reported_since = row.last_seen.is_some_and(|t| t >= self.baseline_epoch);
            let new_hash = before.as_deref() != Some(row.hash()) && row.hash() != NO_CONFIG;
            let final_seen = dp
                .changes
                .iter()
                .rev()
                .find(|(h, _)| h == row.hash())
                .map(|(_, at)| *at);
            let first_new = dp
                .changes
                .iter()
                .find(|(h, _)| before.as_deref() != Some(h.as_str()))
                .map(|(_, at)| *at);
            let converged = connected && reported_since && new_hash;
            let converged_after_ms = converged
                .then(|| final_seen.map_or(0, |at| ms(at.saturating_duration_since(s.written_at))));
            let mixed_traffic_ms = match (converged, first_new, final_seen) {
                (true, Some(first), Some(last)) => Some(ms(last.saturating_duration_since(first))),
                _ => None,
            };
            // The verification proxy proves one data plane only: the allowance is skipped when
            // it is the only one connected.
            let lag_ok = !v3
                || (s.proxy_proof && connected_planes == 1)
                || final_seen.is_some_and(|at| now >= at + PROXY_LAG_ALLOWANCE);
            let detail = if !connected {
                format!(
                    "disconnected: last_seen {} s ago (over {} s); not waited for",
                    epoch.saturating_sub(row.last_seen.unwrap_or_default()),
                    s.disconnected_after.as_secs()
                )
            } else if converged {
                format!(
                    "config_hash {} (was {}), last_seen {}{}",
                    short(row.hash()),
                    before.as_deref().map_or("-".to_owned(), short),
                    row.last_seen.unwrap_or_default(),
                    if v3 {
                        format!("; proxy lag allowance {} ms", ms(PROXY_LAG_ALLOWANCE))
                    } else {
                        String::new()
                    }
                )
            } else {
                format!(
                    "still on config_hash {} (before the switch: {}), last_seen {}",
                    short(row.hash()),
                    before.as_deref().map_or("-".to_owned(), short),
                    row.last_seen.unwrap_or_default()
                )
            };
            planes.push(Plane {
                label: row.label(),
                connected,
                converged,
                converged_after_ms,
                mixed_traffic_ms,
                lag_ok,
                detail,
                report: DataPlaneReport {
                    id: row.id.clone(),
                    hostname: row.hostname.clone(),
                    connected,
                    config_hash_before: before,
                    config_hash: row.hash().to_owned(),
                    last_seen: row.last_seen,
                    converged,
                    converged_after_ms,
                    mixed_traffic_ms,
                },
            });
        }
        let live_planes: Vec<&Plane> = planes.iter().filter(|p| p.connected).collect();
        let hashes: Vec<&str> = live_planes
            .iter()
            .filter(|p| p.converged)
            .map(|p| p.report.config_hash.as_str())
            .collect();
        let hash = hashes.first().map(|h| (*h).to_owned());
        let mut why = None;
        if let Some(p) = live_planes.iter().find(|p| !p.converged) {
            why = Some(format!("{} did not take the change: {}", p.label, p.detail));
        } else if hashes.windows(2).any(|w| w[0] != w[1]) {
            why = Some(format!(
                "the data planes report different config hashes: {}",
                live_planes
                    .iter()
                    .map(|p| format!("{} {}", p.label, short(&p.report.config_hash)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        } else if live_planes.is_empty() {
            why = Some("no connected data plane: nothing serves the change".to_owned());
        }
        let mut status_checks = Vec::new();
        if why.is_none()
            && let Some(hash) = &hash
        {
            for url in s.status_urls {
                let got = status_hash(s.http, url).await;
                let check = match got {
                    Ok(h) if &h == hash => format!("{url}: configuration_hash {}", short(&h)),
                    Ok(h) => {
                        why.get_or_insert_with(|| {
                            format!(
                                "data plane Status API {url} still reports configuration_hash {}",
                                short(&h)
                            )
                        });
                        format!(
                            "{url}: configuration_hash {} (expected {})",
                            short(&h),
                            short(hash)
                        )
                    }
                    Err(e) => format!("{url}: not answering ({e}); not waited for"),
                };
                status_checks.push(check);
            }
        }
        let lagging = live_planes.iter().any(|p| !p.lag_ok);
        let live = why.is_none() && !lagging;
        if why.is_none() && lagging {
            why = Some(format!(
                "a data plane's proxy may still lag its config hash (allowance {} ms)",
                ms(PROXY_LAG_ALLOWANCE)
            ));
        }
        Verdict {
            live,
            hash,
            why,
            planes,
            status_checks,
        }
    }
}

struct Plane {
    label: String,
    connected: bool,
    converged: bool,
    converged_after_ms: Option<u64>,
    mixed_traffic_ms: Option<u64>,
    lag_ok: bool,
    detail: String,
    report: DataPlaneReport,
}

/// What the data planes' Status APIs say after a one-write run on a quiet cluster: each
/// URL's first hash different from the cluster's hash before the write (which every Status
/// API confirmed, twice, before the write), and when it was seen.
/// With as many URLs as connected data planes, all on one new hash, every data plane runs the
/// write: a proof that does not wait for the control plane's lagging list.
struct StatusProof {
    /// The one hash every connected data plane had before the write (`None`: no proof).
    before: Option<String>,
    seen: Vec<Option<(String, Instant)>>,
}

/// How often the data planes' Status APIs are read while they can prove a one-write run.
const STATUS_POLL: Duration = Duration::from_millis(20);

/// 3.x: how long a data plane's proxy may lag its own `/status` hash (measured 0.6–0.8 s,
/// kong-admin-api.md §10).
const STATUS_PROXY_LAG: Duration = Duration::from_millis(900);

impl StatusProof {
    fn new(before: Option<String>, urls: usize) -> StatusProof {
        StatusProof {
            before: before.filter(|_| urls > 0),
            seen: vec![None; urls],
        }
    }

    fn possible(&self) -> bool {
        self.before.is_some()
    }

    async fn poll(&mut self, http: &reqwest::Client, urls: &[Url]) {
        let Some(before) = self.before.clone() else {
            return;
        };
        let hashes = futures::future::join_all(urls.iter().map(|u| status_hash(http, u))).await;
        let now = Instant::now();
        for (slot, hash) in self.seen.iter_mut().zip(hashes) {
            if slot.is_none()
                && let Ok(h) = hash
                && h != before
                && h != NO_CONFIG
            {
                *slot = Some((h, now));
            }
        }
    }

    /// The verdict once every URL reports the same new hash (and, on 3.x, the proxies' lag
    /// has passed), if it does.
    fn verdict(
        &self,
        watch: &Watch,
        s: &Settle<'_>,
        v3: bool,
        connected: Vec<Row>,
        now: Instant,
    ) -> Option<Verdict> {
        let before = self.before.as_deref()?;
        if self.seen.len() < connected.len() || connected.is_empty() {
            return None;
        }
        let seen: Vec<&(String, Instant)> = self.seen.iter().flatten().collect();
        if seen.len() < self.seen.len() {
            return None;
        }
        let hash = &seen[0].0;
        if seen.iter().any(|(h, _)| h != hash) {
            return None;
        }
        let last = seen.iter().map(|(_, at)| *at).max()?;
        if v3 && now < last + STATUS_PROXY_LAG {
            return None;
        }
        let after_ms = ms(last.saturating_duration_since(s.written_at));
        let planes = connected
            .into_iter()
            .map(|row| {
                let detail = format!(
                    "every data plane's Status API reports config_hash {} (was {}){}",
                    short(hash),
                    short(before),
                    if v3 {
                        format!("; proxy lag allowance {} ms", ms(STATUS_PROXY_LAG))
                    } else {
                        String::new()
                    }
                );
                Plane {
                    label: row.label(),
                    connected: true,
                    converged: true,
                    converged_after_ms: Some(after_ms),
                    mixed_traffic_ms: None,
                    lag_ok: true,
                    detail,
                    report: DataPlaneReport {
                        id: row.id.clone(),
                        hostname: row.hostname.clone(),
                        connected: true,
                        config_hash_before: watch
                            .baseline
                            .get(&row.id)
                            .map(|r| r.hash().to_owned()),
                        config_hash: hash.clone(),
                        last_seen: row.last_seen,
                        converged: true,
                        converged_after_ms: Some(after_ms),
                        mixed_traffic_ms: None,
                    },
                }
            })
            .collect();
        Some(Verdict {
            live: true,
            hash: Some(hash.clone()),
            why: None,
            planes,
            status_checks: s
                .status_urls
                .iter()
                .map(|u| format!("{u}: configuration_hash {}", short(hash)))
                .collect(),
        })
    }
}

struct Verdict {
    live: bool,
    hash: Option<String>,
    why: Option<String>,
    planes: Vec<Plane>,
    status_checks: Vec<String>,
}

fn short(hash: &str) -> String {
    hash.chars().take(8).collect()
}

async fn poll(client: KongClient, timeline: Timeline, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
        match read_rows(&client).await {
            Ok(rows) => {
                let now = Instant::now();
                let mut t = lock(&timeline);
                for row in rows {
                    let seen = t.entry(row.id.clone()).or_insert_with(|| Seen {
                        row: row.clone(),
                        changes: Vec::new(),
                    });
                    if seen.changes.last().is_none_or(|(h, _)| h != row.hash()) {
                        seen.changes.push((row.hash().to_owned(), now));
                    }
                    seen.row = row;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading /clustering/data-planes failed"),
        }
    }
}

/// How long a push takes from the control plane to a data plane's configuration (measured
/// 0.06–0.26 s, kong-admin-api.md §10): a push already under way when a run starts shows
/// within it.
const PUSH_LATENCY: Duration = Duration::from_millis(300);

/// The hash every connected data plane runs, when the cluster is quiet before a run's writes,
/// so that its one write is pushed at once and the first new hash holds it:
/// - no data plane applied a configuration within `db_update_frequency` + margin (a data
///   plane pings right after applying one, so its `last_seen` would be that recent);
/// - the control plane's list is current: one Status API per connected data plane, each
///   reporting the hash the list shows (the list shows a push 0.1–0.9 s late, so without the
///   data planes' own word a push just applied is invisible);
/// - no push is under way: the Status APIs report the same hash again [`PUSH_LATENCY`] later.
///
/// Without Status API URLs the cluster is never taken as quiet: the push window is waited out.
async fn quiet_hash(
    node: &Node,
    rows: &[Row],
    epoch: u64,
    http: &reqwest::Client,
    status_urls: &[Url],
) -> Option<String> {
    let quiet_for = (node.db_update_frequency() + SETTLE_MARGIN)
        .as_secs_f64()
        .ceil() as u64;
    let connected: Vec<&Row> = rows
        .iter()
        .filter(|r| r.connected(epoch, DEFAULT_DISCONNECTED_AFTER))
        .collect();
    let settled = connected.iter().all(|r| {
        r.last_seen
            .is_some_and(|seen| epoch.saturating_sub(seen) > quiet_for)
    });
    let listed = connected.first()?.hash().to_owned();
    if !settled
        || status_urls.len() < connected.len()
        || connected.iter().any(|r| r.hash() != listed)
    {
        return None;
    }
    let read = || async {
        futures::future::join_all(status_urls.iter().map(|u| status_hash(http, u))).await
    };
    let all_listed = |hashes: Vec<std::result::Result<String, String>>| {
        hashes.into_iter().all(|h| h.is_ok_and(|h| h == listed))
    };
    if !all_listed(read().await) {
        return None;
    }
    tokio::time::sleep(PUSH_LATENCY).await;
    all_listed(read().await).then_some(listed)
}

/// A data plane's `configuration_hash` from its Status API `/status`.
async fn status_hash(http: &reqwest::Client, base: &Url) -> std::result::Result<String, String> {
    let mut url = base.clone();
    let path = format!("{}/status", url.path().trim_end_matches('/'));
    url.set_path(&path);
    let resp = http
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !resp.status().is_success() {
        return Err(format!("answered {}", resp.status()));
    }
    let body: serde_json::Value = resp.json().await.map_err(|e| e.without_url().to_string())?;
    body["configuration_hash"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no configuration_hash in /status".to_owned())
}

/// How long to wait at most for the data planes: the push window, the settle margin, the
/// proxy lag and the disconnect timeout (a stopped data plane is named once it is that stale).
pub(crate) fn default_timeout(node: &Node, disconnected_after: Duration) -> Duration {
    node.db_update_frequency() + SETTLE_MARGIN + PROXY_LAG_ALLOWANCE + disconnected_after
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_decode_from_both_versions_and_staleness_follows_last_seen() {
        let v3: Rows = serde_json::from_str(
            r#"{"data":[{"id":"8fa0f993-67b0-437a-b31d-22d8f0ca8530","labels":{},"hostname":"kong-node","updated_at":1795566136,"ttl":1209595,"ip":"127.0.0.1","rpc_capabilities":[],"cert_details":{"expiry_timestamp":1890173902},"version":"3.9.3","last_seen":1795566136,"config_hash":"2d0269db3de3112b64804b246bf58059","sync_status":"normal"}],"next":null}"#,
        )
        .unwrap();
        let v28: Rows = serde_json::from_str(
            r#"{"next":null,"data":[{"config_hash":"f3ada1c7865d68e19426193e60b63a0e","sync_status":"normal","hostname":"kong-node","ttl":1209593,"ip":"127.0.0.1","version":"2.8.5","id":"7d2693ff-a7e9-4180-bf6a-99556ea33fe6","last_seen":1795566261}]}"#,
        )
        .unwrap();
        let row = &v3.data[0];
        assert_eq!(row.hash(), "2d0269db3de3112b64804b246bf58059");
        assert_eq!(row.label(), "dp kong-node (8fa0f993)");
        assert!(row.connected(1_795_566_136 + 45, DEFAULT_DISCONNECTED_AFTER));
        assert!(!row.connected(1_795_566_136 + 46, DEFAULT_DISCONNECTED_AFTER));
        assert_eq!(v28.data[0].last_seen, Some(1_795_566_261));
    }
}
