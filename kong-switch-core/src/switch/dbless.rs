//! Writing through the Admin API, and on a DB-less node, editing its one declarative
//! configuration without losing anybody else's change.
//!
//! A DB-less node has a single write, `POST /config`, which replaces the whole configuration.
//! Two runs switching two services of one node each post a whole document, so each would
//! undo the other's change if it posted what it read earlier. A write of an edit therefore:
//!
//! 1. takes the node's config lease in the state log (one lease per node, whatever the service),
//!    waiting a bounded time for it, since it is held only around steps 2–4;
//! 2. reads the node's configuration hash (`GET /status`) and configuration (`GET /config`);
//! 3. applies this run's own edit to that configuration;
//! 4. reads the hash again just before posting: a different hash means another writer (one
//!    that does not take the lease: a person, `deck`, a controller) changed the configuration
//!    since it was read, and the write is refused rather than overwriting that change;
//! 5. posts the edited configuration and releases the lease.
//!
//! An undo is the inverse edit written the same way, so it too keeps every other change.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::admin::{AdminRequest, KongClient, Method, Node};
use crate::state::{self, LeaseGuard, LeaseRequest, StateLog};

use super::plan::{Change, apply_edit};
use super::snapshot::parse_declarative;

/// How long a write waits for the node's config lease: every other run's read-edit-post on
/// the node, each a few requests, comes first.
pub(crate) const CONFIG_LEASE_WAIT: Duration = Duration::from_secs(60);

/// The config lease's lifetime in stores where leases lapse: far beyond one read-edit-post,
/// so only a crashed holder's lease lapses.
const CONFIG_LEASE_TTL: Duration = Duration::from_secs(300);

/// First pause between attempts to take a held config lease; it doubles up to
/// [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Longest pause between attempts to take a held config lease.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Why a write did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteError {
    /// Nothing was written, on purpose: the node's configuration changed since it was read, or
    /// its config lease stayed held. Re-running is safe.
    Refused(String),
    /// The write, or a read it needed, failed.
    Failed(String),
    /// The write was sent and no answer proves Kong refused it (timeout, lost connection,
    /// 5xx): it may have taken effect, now or later.
    Uncertain(String),
}

impl WriteError {
    /// In words.
    pub(crate) fn message(&self) -> &str {
        match self {
            WriteError::Refused(m) | WriteError::Failed(m) | WriteError::Uncertain(m) => m,
        }
    }

    /// The failure of a sent write: uncertain unless Kong's answer proves it was not applied.
    fn sent(e: &crate::admin::Error) -> WriteError {
        if e.may_have_applied() {
            WriteError::Uncertain(format!("{e} (the write may still be applied by Kong)"))
        } else {
            WriteError::Failed(e.to_string())
        }
    }
}

/// Sends a plan's writes: entity writes as they are, DB-less edits as read-edit-post under the
/// node's config lease.
pub(crate) struct Writer<'a, L> {
    /// The Admin API.
    pub client: &'a KongClient,
    /// Where the config lease is taken.
    pub log: &'a L,
    /// Who takes it (the run's actor).
    pub holder: &'a str,
}

/// The state-log key of a node's config lease: its `node_id`, else its Admin API URL.
pub(crate) fn config_lease_key(node: &Node, client: &KongClient) -> String {
    match node.info.node_id.as_deref() {
        Some(id) if !id.is_empty() => format!("kong-config@{id}"),
        _ => format!("kong-config@{}", client.config().base_url()),
    }
}

impl<L: StateLog> Writer<'_, L> {
    /// Sends `request`, or, when `edit` is not empty, posts the node's current configuration
    /// with `edit` applied. Returns Kong's answer.
    pub(crate) async fn send(
        &self,
        request: &AdminRequest,
        edit: &[Change],
    ) -> Result<Value, WriteError> {
        if !edit.is_empty() {
            return self.post_edit(edit).await;
        }
        if request.method == Method::Post && request.path == "/config" {
            // A plan saved by a kong-switch that posted whole documents: posting that document
            // now would undo every change made since it was read.
            return Err(WriteError::Failed(
                "this POST /config was saved as a whole document, without its edit (by an older \
                 kong-switch); it is not posted, since it would overwrite every change made since; \
                 compare the node with the run's plan and fix it by hand"
                    .to_owned(),
            ));
        }
        self.client
            .execute::<Value>(request)
            .await
            .map_err(|e| WriteError::sent(&e))
    }

    /// Takes the node's config lease, writes `edit` under it, releases it.
    async fn post_edit(&self, edit: &[Change]) -> Result<Value, WriteError> {
        let node = self
            .client
            .node()
            .await
            .map_err(|e| WriteError::Failed(format!("GET / failed: {e}")))?;
        let key = config_lease_key(&node, self.client);
        let lease = self.acquire(&key).await?;
        let result = self.edit_locked(edit).await;
        if let Err(e) = self.log.release(lease).await {
            tracing::warn!(error = %e, lease = %key, "could not release the config lease; it lapses at its expiry");
        }
        result
    }

    /// Takes the config lease `key`, waiting up to [`CONFIG_LEASE_WAIT`] while others hold it.
    async fn acquire(&self, key: &str) -> Result<LeaseGuard, WriteError> {
        let started = Instant::now();
        let mut pause = FIRST_RETRY_PAUSE;
        loop {
            let request = LeaseRequest::new(key, self.holder, CONFIG_LEASE_TTL);
            match self.log.acquire(request).await {
                Ok(lease) => return Ok(lease),
                Err(state::Error::LeaseHeld { holder, .. })
                    if started.elapsed() >= CONFIG_LEASE_WAIT =>
                {
                    return Err(WriteError::Refused(format!(
                        "the node's configuration lease {key} stayed held by {holder} for {} s; \
                         nothing was written",
                        CONFIG_LEASE_WAIT.as_secs()
                    )));
                }
                Err(state::Error::LeaseHeld { .. }) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
                Err(e) => {
                    return Err(WriteError::Failed(format!(
                        "cannot take the node's configuration lease {key}: {e}"
                    )));
                }
            }
        }
    }

    /// Reads the configuration and its hash, applies `edit`, checks the hash again and posts.
    async fn edit_locked(&self, edit: &[Change]) -> Result<Value, WriteError> {
        let read_hash = self.hash().await?;
        let read = self
            .client
            .get_config()
            .await
            .map_err(|e| WriteError::Failed(format!("GET /config failed: {e}")))?;
        let mut doc =
            parse_declarative(read.clone()).map_err(|e| WriteError::Failed(e.to_string()))?;
        apply_edit(&mut doc, edit).map_err(|e| WriteError::Failed(e.to_string()))?;
        let changed = match (&read_hash, self.hash().await?) {
            (Some(before), Some(now)) => (before != &now).then(|| format!("hash {before} → {now}")),
            // No hash to compare: compare the configuration itself.
            _ => {
                let now = self
                    .client
                    .get_config()
                    .await
                    .map_err(|e| WriteError::Failed(format!("GET /config failed: {e}")))?;
                (now != read).then(|| "its content differs".to_owned())
            }
        };
        if let Some(how) = changed {
            return Err(WriteError::Refused(format!(
                "the node's declarative configuration changed while it was being edited ({how}): \
                 another writer posted /config; nothing was written, so that change is kept"
            )));
        }
        self.client
            .execute::<Value>(&KongClient::post_config_request(&doc))
            .await
            .map_err(|e| WriteError::sent(&e))
    }

    /// The node's configuration hash (`GET /status`), if it reports one.
    async fn hash(&self) -> Result<Option<String>, WriteError> {
        self.client
            .node_status()
            .await
            .map(|s| s.configuration_hash)
            .map_err(|e| WriteError::Failed(format!("GET /status failed: {e}")))
    }
}
