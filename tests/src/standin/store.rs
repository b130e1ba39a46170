//! The shared configuration store: the stand-in's "database". Every node's Admin API reads it
//! directly; each node's proxy and balancers see it through [`Store::visible`], which models the
//! propagation delay to other nodes (`db_update_frequency`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One entity table, ordered by primary key (Kong's PostgreSQL paging order).
pub(crate) type Table = imbl::OrdMap<String, Value>;

/// A complete configuration: the four entity tables the stand-in models.
#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    pub(crate) services: Table,
    pub(crate) routes: Table,
    pub(crate) upstreams: Table,
    pub(crate) targets: Table,
}

impl Config {
    /// The table for an entity name (`services`, `routes`, `upstreams`, `targets`).
    pub(crate) fn table(&self, entity: &str) -> &Table {
        match entity {
            "services" => &self.services,
            "routes" => &self.routes,
            "upstreams" => &self.upstreams,
            _ => &self.targets,
        }
    }

    /// Mutable table access.
    pub(crate) fn table_mut(&mut self, entity: &str) -> &mut Table {
        match entity {
            "services" => &mut self.services,
            "routes" => &mut self.routes,
            "upstreams" => &mut self.upstreams,
            _ => &mut self.targets,
        }
    }

    /// Finds an entity by id or by `name`.
    pub(crate) fn find(&self, entity: &str, id_or_name: &str) -> Option<&Value> {
        let table = self.table(entity);
        table.get(id_or_name).or_else(|| {
            table
                .values()
                .find(|v| v.get("name").and_then(Value::as_str) == Some(id_or_name))
        })
    }

    /// Upstream by name (what a service `host` refers to).
    pub(crate) fn upstream_by_name(&self, name: &str) -> Option<&Value> {
        self.upstreams
            .values()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
    }

    /// Targets of one upstream.
    pub(crate) fn targets_of<'a>(
        &'a self,
        upstream_id: &str,
    ) -> impl Iterator<Item = &'a Value> + use<'a> {
        let id = upstream_id.to_owned();
        self.targets
            .values()
            .filter(move |t| t["upstream"]["id"].as_str() == Some(id.as_str()))
    }
}

/// One committed change.
#[derive(Debug, Clone)]
struct Revision {
    seq: u64,
    at: Instant,
    origin: usize,
    config: Arc<Config>,
}

#[derive(Debug)]
struct Inner {
    seq: u64,
    current: Arc<Config>,
    /// Recent revisions, oldest first; trimmed once every node can see a newer one.
    history: VecDeque<Revision>,
    /// DB-less: md5 of the last `/config` payload.
    config_hash: Option<String>,
}

/// The shared store. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    inner: Arc<Mutex<Inner>>,
    keep: Duration,
}

/// A consistent view handed to a node.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub(crate) seq: u64,
    pub(crate) config: Arc<Config>,
}

impl Store {
    /// An empty store; `keep` must cover the longest propagation delay.
    pub(crate) fn new(keep: Duration) -> Self {
        let initial = Revision {
            seq: 0,
            at: Instant::now(),
            origin: usize::MAX,
            config: Arc::new(Config::default()),
        };
        Self {
            inner: Arc::new(Mutex::new(Inner {
                seq: 0,
                current: Arc::clone(&initial.config),
                history: VecDeque::from([initial]),
                config_hash: None,
            })),
            keep,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The latest configuration (what the Admin API of every node reads).
    pub(crate) fn current(&self) -> Arc<Config> {
        Arc::clone(&self.lock().current)
    }

    /// Applies `change` atomically; on `Ok` the result becomes a new revision written by
    /// `origin`. Writes are serialised, so read-check-write inside `change` is race free.
    pub(crate) fn write<T, E>(
        &self,
        origin: usize,
        change: impl FnOnce(&mut Config) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut inner = self.lock();
        let mut next = (*inner.current).clone();
        let out = change(&mut next)?;
        inner.seq += 1;
        let config = Arc::new(next);
        inner.current = Arc::clone(&config);
        let revision = Revision {
            seq: inner.seq,
            at: Instant::now(),
            origin,
            config,
        };
        inner.history.push_back(revision);
        let keep = self.keep;
        while inner.history.len() > 1 && inner.history[1].at.elapsed() > keep {
            inner.history.pop_front();
        }
        Ok(out)
    }

    /// Replaces the whole configuration (DB-less `/config`) and records its hash.
    pub(crate) fn replace(&self, origin: usize, config: Config, hash: String) {
        let _ = self.write::<(), ()>(origin, |c| {
            *c = config;
            Ok(())
        });
        self.lock().config_hash = Some(hash);
    }

    /// Forgets the history: the current configuration becomes visible to every node at once
    /// (used for the seed, loaded before any node starts).
    pub(crate) fn settle(&self) {
        let mut inner = self.lock();
        while inner.history.len() > 1 {
            inner.history.pop_front();
        }
    }

    /// DB-less configuration hash, if a config was ever loaded.
    pub(crate) fn config_hash(&self) -> Option<String> {
        self.lock().config_hash.clone()
    }

    /// What node `node` sees now: its own writes at once, other nodes' writes once they are
    /// `delay` old.
    pub(crate) fn visible(&self, node: usize, delay: Duration) -> View {
        let inner = self.lock();
        let now = Instant::now();
        for rev in inner.history.iter().rev() {
            if rev.origin == node || now.duration_since(rev.at) >= delay {
                return View {
                    seq: rev.seq,
                    config: Arc::clone(&rev.config),
                };
            }
        }
        let oldest = &inner.history[0];
        View {
            seq: oldest.seq,
            config: Arc::clone(&oldest.config),
        }
    }
}
