//! Fault injection on the Admin API and the log of every Admin API request received.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which request paths a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The path equals this string exactly (no query).
    Exact(String),
    /// The path starts with this string.
    Prefix(String),
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
        }
    }
}

/// What happens to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Wait this long, then handle the request normally.
    Delay {
        /// The delay in milliseconds.
        ms: u64,
    },
    /// Answer this status (with a Kong-like JSON error body) without handling the request.
    Respond {
        /// HTTP status, e.g. 500 or 503.
        status: u16,
    },
    /// Handle the request (the write happens), then answer this status instead of the result.
    RespondAfterApply {
        /// HTTP status.
        status: u16,
    },
    /// Close the connection without any response, without handling the request.
    Drop,
    /// Handle the request (the write happens), then close the connection without a response.
    DropAfterApply,
    /// Close the connection at once without a response, and handle the request `ms` later:
    /// what a proxy in front of the Admin API does when the client gives up (a timeout, a
    /// reset) while the write is still on its way to Kong.
    ApplyLate {
        /// How long after the hang-up the write happens, in milliseconds.
        ms: u64,
    },
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Only this HTTP method (upper case), or any method when `None`.
    pub method: Option<String>,
    /// The paths it applies to.
    pub path: PathMatch,
    /// What to do.
    pub action: FaultAction,
    /// Apply to this many requests, then disarm; forever when `None`.
    pub times: Option<u32>,
    /// Only on this node (index); every node when `None`.
    pub node: Option<usize>,
}

impl Fault {
    /// A fault on paths starting with `prefix`.
    pub fn prefix(prefix: impl Into<String>, action: FaultAction) -> Self {
        Self {
            method: None,
            path: PathMatch::Prefix(prefix.into()),
            action,
            times: None,
            node: None,
        }
    }

    /// A fault on exactly `path`.
    pub fn exact(path: impl Into<String>, action: FaultAction) -> Self {
        Self {
            method: None,
            path: PathMatch::Exact(path.into()),
            action,
            times: None,
            node: None,
        }
    }

    /// Restricts the fault to one method.
    #[must_use]
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Disarms the fault after `n` matching requests.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Restricts the fault to one node.
    #[must_use]
    pub fn on_node(mut self, node: usize) -> Self {
        self.node = Some(node);
        self
    }

    /// Shorthand for [`FaultAction::Delay`].
    pub fn delay(duration: Duration) -> FaultAction {
        FaultAction::Delay {
            ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Identifies an installed fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaultId(pub u64);

/// The fault rules of one stand-in (all nodes). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<(FaultId, Fault)>>>,
    next: Arc<AtomicU64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Faults {
    /// Installs a fault; the first matching rule (in installation order) wins.
    pub fn add(&self, fault: Fault) -> FaultId {
        let id = FaultId(self.next.fetch_add(1, Ordering::Relaxed) + 1);
        lock(&self.rules).push((id, fault));
        id
    }

    /// Removes one fault.
    pub fn remove(&self, id: FaultId) {
        lock(&self.rules).retain(|(i, _)| *i != id);
    }

    /// Removes every fault.
    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    /// The installed faults.
    pub fn list(&self) -> Vec<(FaultId, Fault)> {
        lock(&self.rules).clone()
    }

    /// The action for a request, consuming one use of the matching rule.
    pub(crate) fn take(&self, node: usize, method: &str, path: &str) -> Option<FaultAction> {
        let mut rules = lock(&self.rules);
        let pos = rules.iter().position(|(_, f)| {
            f.node.is_none_or(|n| n == node)
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && f.path.matches(path)
        })?;
        let action = rules[pos].1.action.clone();
        if let Some(times) = rules[pos].1.times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                rules.remove(pos);
            }
        }
        Some(action)
    }
}

/// One Admin API request as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Index of the node that received it.
    pub node: usize,
    /// HTTP method, upper case.
    pub method: String,
    /// Path, percent-decoded is *not* applied (as sent).
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// The body as JSON (form bodies are converted to a JSON object; empty body = `null`;
    /// a body that is not JSON is kept as a JSON string).
    pub body: Value,
}

/// The request log of one stand-in (all nodes). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<LoggedRequest>>>,
}

impl RequestLog {
    /// Every request received, in order.
    pub fn entries(&self) -> Vec<LoggedRequest> {
        lock(&self.entries).clone()
    }

    /// Only the writes (every method except GET, HEAD and OPTIONS), in order.
    pub fn writes(&self) -> Vec<LoggedRequest> {
        lock(&self.entries)
            .iter()
            .filter(|e| !matches!(e.method.as_str(), "GET" | "HEAD" | "OPTIONS"))
            .cloned()
            .collect()
    }

    /// Forgets everything logged so far.
    pub fn clear(&self) {
        lock(&self.entries).clear();
    }

    pub(crate) fn push(&self, entry: LoggedRequest) {
        lock(&self.entries).push(entry);
    }
}
