//! [`FirestoreLog`]: the shared state store, in Cloud Firestore.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use firestore::errors::{BackoffError, FirestoreError};
use firestore::gcloud_sdk::google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use firestore::gcloud_sdk::google_cloud_auth::errors::CredentialsError;
use firestore::{
    FirestoreDb, FirestoreDbOptions, FirestoreTimestamp, FirestoreTransactionOptions,
    FirestoreWritePrecondition, ParentPathBuilder,
};
use futures::FutureExt;
use kong_switch_core::state::{
    BreakOf, CorruptLine, DeploymentStatus, Error as StateError, Event, EventKind, History,
    LEASE_RECORD_VERSION, Lease, LeaseGuard, LeaseHolder, LeaseRequest, LeaseState,
    Result as StateResult, StateLog, Takeover, TakeoverCause,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

const STORE: &str = "firestore";
/// The sub-collection of a target document holding its events.
const EVENTS: &str = "events";
/// The default database of a project.
const DEFAULT_DATABASE: &str = "(default)";
/// Everything but `[A-Za-z0-9-]` is percent-encoded in document ids, so that no target key
/// can make an id Firestore refuses (`/`, `.`, `..`, `__name__`).
const DOC_ID: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-');
/// Firestore's limit on a document id.
const MAX_DOC_ID: usize = 1500;
/// How long one Firestore request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a contended transaction is retried (appends and leases of one target).
const TRANSACTION_RETRIES: usize = 40;
/// How long a contended transaction keeps retrying.
const TRANSACTION_RETRY_TIME: Duration = Duration::from_secs(60);
/// The environment variable naming a Firestore emulator (`host:port`).
pub const EMULATOR_HOST_ENV: &str = "FIRESTORE_EMULATOR_HOST";

/// Where a [`FirestoreLog`] lives: `firestore://PROJECT[/DATABASE]/COLLECTION`.
///
/// ```
/// use kong_switch_gke::FirestoreUrl;
///
/// let url: FirestoreUrl = "firestore://acme-prod/kong-switch".parse().unwrap();
/// assert_eq!(url.project(), "acme-prod");
/// assert_eq!(url.database(), "(default)");
/// assert_eq!(url.collection(), "kong-switch");
///
/// let url: FirestoreUrl = "firestore://acme-prod/deploys/kong-switch".parse().unwrap();
/// assert_eq!(url.database(), "deploys");
///
/// let err = "firestore://Acme/kong-switch".parse::<FirestoreUrl>().unwrap_err();
/// assert!(err.to_string().contains("project"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirestoreUrl {
    project: String,
    database: String,
    collection: String,
}

impl FirestoreUrl {
    /// The URL scheme, with its `://`.
    pub const SCHEME: &'static str = "firestore://";

    /// Whether `value` is meant as a Firestore URL (starts with `firestore:`), so that a
    /// caller can tell it from a file path before parsing it.
    pub fn is_firestore_url(value: &str) -> bool {
        value
            .get(..10)
            .is_some_and(|s| s.eq_ignore_ascii_case("firestore:"))
    }

    /// The Google Cloud project id.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The database id: `(default)` unless the URL names one.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The collection holding one document per switch target.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// `projects/PROJECT/databases/DATABASE`.
    pub fn database_path(&self) -> String {
        format!("projects/{}/databases/{}", self.project, self.database)
    }
}

impl fmt::Display for FirestoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.database == DEFAULT_DATABASE {
            write!(f, "{}{}/{}", Self::SCHEME, self.project, self.collection)
        } else {
            write!(
                f,
                "{}{}/{}/{}",
                Self::SCHEME,
                self.project,
                self.database,
                self.collection
            )
        }
    }
}

impl FromStr for FirestoreUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self, Error> {
        let invalid = |part: &'static str, message: String| Error::InvalidStateUrl {
            url: url.to_owned(),
            part,
            message,
        };
        let rest = url.strip_prefix(Self::SCHEME).ok_or_else(|| {
            invalid(
                "scheme",
                "write it as firestore://PROJECT[/DATABASE]/COLLECTION".to_owned(),
            )
        })?;
        if rest.contains(['?', '#']) {
            return Err(invalid(
                "path",
                "query strings and fragments are not supported; write firestore://PROJECT[/DATABASE]/COLLECTION".to_owned(),
            ));
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let (project, database, collection) = match parts.as_slice() {
            [project, collection] => (*project, DEFAULT_DATABASE, *collection),
            [project, database, collection] => (*project, *database, *collection),
            [_] => {
                return Err(invalid(
                    "collection",
                    "missing; write firestore://PROJECT/COLLECTION".to_owned(),
                ));
            }
            _ => {
                return Err(invalid(
                    "path",
                    format!(
                        "{} path segments; expected PROJECT/COLLECTION or PROJECT/DATABASE/COLLECTION",
                        parts.len()
                    ),
                ));
            }
        };
        check_project(project).map_err(|m| invalid("project", m))?;
        check_database(database).map_err(|m| invalid("database", m))?;
        check_collection(collection).map_err(|m| invalid("collection", m))?;
        Ok(FirestoreUrl {
            project: project.to_owned(),
            database: database.to_owned(),
            collection: collection.to_owned(),
        })
    }
}

/// Project ids: lowercase letters, digits and hyphens, starting with a letter; an optional
/// `domain:` prefix (`example.com:my-project`).
fn check_project(project: &str) -> Result<(), String> {
    if project.is_empty() {
        return Err(
            "empty; give the Google Cloud project id, e.g. firestore://acme-prod/kong-switch"
                .to_owned(),
        );
    }
    let id = project.rsplit(':').next().unwrap_or(project);
    let valid = id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && project.chars().all(|c| !c.is_ascii_uppercase());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{project}` is not a project id (lowercase letters, digits and hyphens, starting with a letter)"
        ))
    }
}

/// Database ids: `(default)`, or lowercase letters, digits and hyphens starting with a letter.
fn check_database(database: &str) -> Result<(), String> {
    if database == DEFAULT_DATABASE {
        return Ok(());
    }
    let valid = database.starts_with(|c: char| c.is_ascii_lowercase())
        && !database.ends_with('-')
        && database
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{database}` is not a database id (`(default)`, or lowercase letters, digits and hyphens starting with a letter); leave it out for the default database"
        ))
    }
}

/// Collection ids: not empty, not `.`/`..`, not `__…__`, at most 1500 bytes.
fn check_collection(collection: &str) -> Result<(), String> {
    if collection.is_empty() {
        return Err(
            "empty; name the collection, e.g. firestore://acme-prod/kong-switch".to_owned(),
        );
    }
    if collection == "." || collection == ".." {
        return Err(format!("`{collection}` is not a collection id"));
    }
    if collection.starts_with("__") && collection.ends_with("__") {
        return Err(format!(
            "`{collection}` is reserved by Firestore (`__…__`); pick another name"
        ));
    }
    if collection.len() > MAX_DOC_ID {
        return Err("longer than 1500 bytes".to_owned());
    }
    Ok(())
}

/// Which Firestore a [`FirestoreLog`] talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirestoreEndpoint {
    /// Google's service, with credentials from Google's default chain
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, `gcloud auth application-default login`, the
    /// metadata server on GKE/GCE).
    Google,
    /// A local emulator at `host:port`, sent the emulator's conventional `Bearer owner` token;
    /// no Google credentials are looked up.
    Emulator {
        /// `host:port`, as `FIRESTORE_EMULATOR_HOST` gives it.
        host: String,
    },
}

impl FirestoreEndpoint {
    /// The emulator named by `FIRESTORE_EMULATOR_HOST` if it is set (and not empty), else
    /// Google.
    pub fn from_env() -> Self {
        match std::env::var(EMULATOR_HOST_ENV) {
            Ok(host) if !host.trim().is_empty() => FirestoreEndpoint::Emulator {
                host: host.trim().to_owned(),
            },
            _ => FirestoreEndpoint::Google,
        }
    }
}

impl fmt::Display for FirestoreEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FirestoreEndpoint::Google => f.write_str("firestore.googleapis.com"),
            FirestoreEndpoint::Emulator { host } => write!(f, "the emulator at {host}"),
        }
    }
}

/// The shared state store: one Firestore document per switch target with the target's
/// current state and lease, and its events in an append-only `events` sub-collection.
///
/// # Layout
///
/// In the collection `COLLECTION` of `firestore://PROJECT[/DATABASE]/COLLECTION`, the target
/// key `K` has the document `E` = `K` percent-encoded outside `[A-Za-z0-9-]`
/// (`tag:app=orders` → `tag%3Aapp%3Dorders`) with the fields:
///
/// | field | meaning |
/// |---|---|
/// | `target` | the target key as given |
/// | `last_seq` | the sequence number of the newest event |
/// | `active_color` | the side serving traffic, as the log last recorded it |
/// | `sides.<color>` | per side: `status`, `version`, `deployment`, `updated_at` |
/// | `environment`, `service`, `upstream` | the latest recorded values |
/// | `lease` | while held: `version` (1), `target`, `holder` (`actor`, `host`, `pid`, `run_id`), `token`, `acquired_at`, `renewed_at`, `expires_at`, `deadline`, `renew_every_ms` |
/// | `updated_at` | when the document last changed |
///
/// Each event is the document `E/events/NNNNNNNNNNNNNNNNNNNN` (the zero-padded sequence
/// number), created with a "must not exist" precondition, so events are never overwritten.
/// It carries the whole [`Event`] as JSON in `event` (what [`history`](StateLog::history)
/// reads back, exactly as written), and its deployment attributes as plain fields for the
/// console and for queries: `seq`, `kind`, `timestamp` (a Firestore timestamp), `status`,
/// `environment`, `color`, `deployment`, `version`, `service`, `upstream`, `build_id`,
/// `actor`, `reason`, `strategy`, `from`, `to`, `run_id`.
///
/// # Consistency
///
/// [`append`](StateLog::append) runs one transaction that reads the target document,
/// takes `last_seq + 1`, writes the event and the updated target document: concurrent
/// appends never reuse a number. [`acquire`](StateLog::acquire) runs a transaction that
/// reads the lease and writes a new one only if there is none or it has expired (by this
/// machine's clock): two concurrent holders are impossible, because Firestore aborts (and
/// the store retries) a transaction whose read was changed by another commit.
/// [`release`](StateLog::release) clears the lease only if it still carries the guard's
/// token, so a holder whose lease expired and was taken over cannot free the new holder's;
/// [`renew`](StateLog::renew) likewise extends it only while it carries the token, else
/// fails with [`StateError::LeaseLost`]. Appends write every field of the target document
/// but `lease`, and lease operations only `lease` (Firestore field masks), so neither
/// overwrites the other.
///
/// A lease lives until released or until `expires_at`; dropping the guard without
/// releasing (a killed process) leaves it until it expires, `expiry` after its last renewal
/// (see [`LeaseKeeper`](kong_switch_core::state::LeaseKeeper)). A `lease` field that cannot
/// be read (another version, a broken record) is held by an unknown holder: only
/// `--break-lease` takes it over.
#[derive(Clone)]
pub struct FirestoreLog {
    db: FirestoreDb,
    url: FirestoreUrl,
    endpoint: FirestoreEndpoint,
}

impl fmt::Debug for FirestoreLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirestoreLog")
            .field("url", &self.url.to_string())
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl FirestoreLog {
    /// Connects to the store at `url` on the endpoint [`FirestoreEndpoint::from_env`] picks
    /// (the emulator when `FIRESTORE_EMULATOR_HOST` is set), and checks that it answers.
    pub async fn connect(url: FirestoreUrl) -> StateResult<FirestoreLog> {
        FirestoreLog::connect_to(url, FirestoreEndpoint::from_env()).await
    }

    /// Connects to the store at `url` on `endpoint`, and checks that it answers: an
    /// unreachable service, missing credentials or a denied permission fail here, with an
    /// error saying which.
    pub async fn connect_to(
        url: FirestoreUrl,
        endpoint: FirestoreEndpoint,
    ) -> StateResult<FirestoreLog> {
        crate::tls::install_crypto_provider();
        let options = FirestoreDbOptions::new(url.project.clone())
            .with_database_id(url.database.clone())
            .with_max_retries(2)
            .with_request_timeout(REQUEST_TIMEOUT);
        let connected = match &endpoint {
            FirestoreEndpoint::Google => FirestoreDb::with_options(options).await,
            FirestoreEndpoint::Emulator { host } => {
                let api_url = if host.contains("://") {
                    host.clone()
                } else {
                    format!("http://{host}")
                };
                FirestoreDb::with_options_auth(
                    options.with_firebase_api_url(api_url),
                    Credentials::from(EmulatorOwner::default()),
                )
                .await
            }
        };
        let fail = |op: &str, err: FirestoreError| backend(op, &url, &endpoint, err);
        let db = connected.map_err(|e| fail("connect to", e))?;
        db.ping().await.map_err(|e| fail("reach", e))?;
        Ok(FirestoreLog { db, url, endpoint })
    }

    /// Where the store lives.
    pub fn url(&self) -> &FirestoreUrl {
        &self.url
    }

    /// The current state of `target` as the log recorded it (active side, per-side status,
    /// lease), or `None` for a target without a document.
    pub async fn current(&self, target: &str) -> StateResult<Option<TargetState>> {
        let id = doc_id(target)?;
        let doc = self
            .db
            .fluent()
            .select()
            .by_id_in(&self.url.collection)
            .one(&id)
            .await
            .map_err(|e| self.fail("read the state of", target, e))?;
        let Some(doc) = doc else {
            return Ok(None);
        };
        let lease = lease_state(read_lease(&doc), Utc::now());
        let target_doc = FirestoreDb::deserialize_doc_to::<TargetDoc>(&doc)
            .map_err(|e| self.fail("read the state of", target, e))?;
        Ok(Some(target_doc.into_state(lease)))
    }

    /// The path of `target`'s document, the parent of its `events` (`op` names the caller's
    /// operation in an error).
    fn target_path(&self, op: &str, target: &str) -> StateResult<ParentPathBuilder> {
        self.db
            .parent_path(&self.url.collection, doc_id(target)?)
            .map_err(|e| self.fail(op, target, e))
    }

    fn fail(&self, op: &str, target: &str, err: FirestoreError) -> StateError {
        backend(
            &format!("{op} {target:?} in"),
            &self.url,
            &self.endpoint,
            err,
        )
    }

    fn transaction_options() -> FirestoreTransactionOptions {
        FirestoreTransactionOptions::new()
            .with_max_retries(TRANSACTION_RETRIES)
            .with_retry_max_elapsed_time(TRANSACTION_RETRY_TIME)
    }

    async fn append_event(&self, mut event: Event) -> StateResult<Event> {
        let id = doc_id(&event.target)?;
        let collection = self.url.collection.clone();
        let parent = self.target_path("append to", &event.target)?.to_string();
        let target = event.target.clone();
        let stored = self
            .db
            .run_transaction_with_options(
                |db, transaction| {
                    let mut event = event.clone();
                    let collection = collection.clone();
                    let id = id.clone();
                    let parent = parent.clone();
                    async move {
                        let current: Option<TargetDoc> = db
                            .fluent()
                            .select()
                            .by_id_in(&collection)
                            .obj()
                            .one(&id)
                            .await?;
                        let mut doc = current.unwrap_or_else(|| TargetDoc::new(&event.target));
                        event.seq = u64::try_from(doc.last_seq).unwrap_or(0) + 1;
                        doc.record(&event);
                        let event_doc = EventDoc::from_event(&event).map_err(|e| {
                            BackoffError::Permanent(FirestoreError::SerializeError(
                                firestore::errors::FirestoreSerializationError::from_message(
                                    e.to_string(),
                                ),
                            ))
                        })?;
                        db.fluent()
                            .update()
                            .in_col(EVENTS)
                            .precondition(FirestoreWritePrecondition::Exists(false))
                            .document_id(event_id(event.seq))
                            .parent(&parent)
                            .object(&event_doc)
                            .add_to_transaction(transaction)?;
                        // Every field but the lease, which only lease operations write.
                        db.fluent()
                            .update()
                            .fields(TARGET_FIELDS)
                            .in_col(&collection)
                            .document_id(&id)
                            .object(&doc)
                            .add_to_transaction(transaction)?;
                        Ok(event)
                    }
                    .boxed()
                },
                Self::transaction_options(),
            )
            .await
            .map_err(|e| self.fail("append to", &target, e))?;
        event = stored;
        Ok(event)
    }

    async fn read_history(&self, target: &str) -> StateResult<History> {
        let parent = self.target_path("read the history of", target)?;
        let docs = self
            .db
            .fluent()
            .select()
            .from(EVENTS)
            .parent(&parent)
            .order(|o| o.fields([o.field("seq").ascending()]))
            .query()
            .await
            .map_err(|e| self.fail("read the history of", target, e))?;
        let mut history = History::default();
        for (index, doc) in docs.iter().enumerate() {
            match FirestoreDb::deserialize_doc_to::<StoredEvent>(doc)
                .map_err(|e| e.to_string())
                .and_then(|stored| {
                    serde_json::from_str::<Event>(&stored.event).map_err(|e| e.to_string())
                }) {
                Ok(event) => history.events.push(event),
                Err(message) => history.corrupt.push(CorruptLine {
                    line: index + 1,
                    message,
                    text: doc.name.clone(),
                    unterminated: false,
                }),
            }
        }
        Ok(history)
    }

    /// The newest event of `target` whose kind `wanted` accepts. Reads the newest events
    /// first, in growing pages (16, 128, 1,024, …), so a recent match costs a few reads
    /// whatever the length of the log. Needs only Firestore's single-field index on `seq`.
    async fn newest_where(
        &self,
        target: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> StateResult<Option<Event>> {
        let parent = self.target_path("read the history of", target)?;
        let mut page: u32 = 16;
        loop {
            let docs = self
                .db
                .fluent()
                .select()
                .from(EVENTS)
                .parent(&parent)
                .order(|o| o.fields([o.field("seq").descending()]))
                .limit(page)
                .query()
                .await
                .map_err(|e| self.fail("read the history of", target, e))?;
            for doc in &docs {
                // Unreadable documents are skipped here; `history` reports them.
                let Ok(stored) = FirestoreDb::deserialize_doc_to::<StoredEvent>(doc) else {
                    continue;
                };
                if !wanted(&stored.kind) {
                    continue;
                }
                if let Ok(event) = serde_json::from_str::<Event>(&stored.event) {
                    return Ok(Some(event));
                }
            }
            if docs.len() < page as usize {
                return Ok(None);
            }
            page = page.saturating_mul(8);
        }
    }

    /// Reads the target document in a transaction: `None` if there is none.
    async fn read_doc(
        db: &FirestoreDb,
        collection: &str,
        id: &str,
    ) -> Result<Option<firestore::FirestoreDocument>, BackoffError<FirestoreError>> {
        Ok(db.fluent().select().by_id_in(collection).one(id).await?)
    }

    /// Writes the lease of the target document (only the lease: the mask leaves the rest),
    /// clearing it when `lease` is `None`.
    fn write_lease(
        db: &FirestoreDb,
        transaction: &mut firestore::FirestoreTransaction<'_>,
        collection: &str,
        id: &str,
        target: &str,
        lease: Option<&Lease>,
    ) -> Result<(), BackoffError<FirestoreError>> {
        let write = LeaseWrite {
            target: target.to_owned(),
            lease: lease.map(LeaseDoc::from_lease),
            updated_at: FirestoreTimestamp::now(),
        };
        db.fluent()
            .update()
            .fields(LEASE_FIELDS)
            .in_col(collection)
            .document_id(id)
            .object(&write)
            .add_to_transaction(transaction)?;
        Ok(())
    }

    async fn take_lease(&self, request: LeaseRequest) -> StateResult<LeaseGuard> {
        let id = doc_id(&request.target)?;
        let collection = self.url.collection.clone();
        let outcome = self
            .db
            .run_transaction_with_options(
                |db, transaction| {
                    let request = request.clone();
                    let collection = collection.clone();
                    let id = id.clone();
                    async move {
                        let doc = Self::read_doc(&db, &collection, &id).await?;
                        let current = doc.as_ref().and_then(read_lease);
                        let now = Utc::now();
                        let (cause, previous) = match (current, &request.breaking) {
                            (None, _) => (None, None),
                            (Some(Ok(held)), Some(BreakOf::Lease { token, renewed_at }))
                                if held.token == *token && held.renewed_at == *renewed_at =>
                            {
                                (Some(TakeoverCause::Broken), Some(held))
                            }
                            (Some(Ok(held)), _) if held.is_expired_at(now) => {
                                (Some(TakeoverCause::Expired), Some(held))
                            }
                            (Some(Ok(held)), _) => return Ok(Err(Refusal::Held(held))),
                            (Some(Err(_)), Some(BreakOf::Unreadable)) => {
                                (Some(TakeoverCause::Broken), None)
                            }
                            (Some(Err(reason)), _) => {
                                return Ok(Err(Refusal::Unreadable(reason)));
                            }
                        };
                        let lease = Lease::grant(&request);
                        Self::write_lease(
                            &db,
                            transaction,
                            &collection,
                            &id,
                            &request.target,
                            Some(&lease),
                        )?;
                        let takeover = cause.map(|cause| Takeover {
                            cause,
                            previous,
                            by: lease.holder.clone(),
                        });
                        Ok::<_, BackoffError<FirestoreError>>(Ok((lease, takeover)))
                    }
                    .boxed()
                },
                Self::transaction_options(),
            )
            .await
            .map_err(|e| self.fail("take the lease on", &request.target, e))?;
        match outcome {
            Ok((lease, None)) => Ok(LeaseGuard::new(lease)),
            Ok((lease, Some(takeover))) => Ok(LeaseGuard::new(lease).with_takeover(takeover)),
            Err(Refusal::Held(held)) => Err(StateError::LeaseHeld {
                target: request.target,
                holder: held.holder.to_string(),
                expires_at: Some(held.expires_at),
                renewed_at: Some(held.renewed_at),
            }),
            Err(Refusal::Unreadable(reason)) => Err(StateError::LeaseHeld {
                target: request.target,
                holder: format!(
                    "an unknown holder ({reason}; --break-lease takes it over if it does not change while watched)"
                ),
                expires_at: None,
                renewed_at: None,
            }),
        }
    }

    async fn renew_lease(&self, guard: &mut LeaseGuard, expiry: Duration) -> StateResult<()> {
        let held = guard.lease().clone();
        let id = doc_id(&held.target)?;
        let collection = self.url.collection.clone();
        let outcome = self
            .db
            .run_transaction_with_options(
                |db, transaction| {
                    let held = held.clone();
                    let collection = collection.clone();
                    let id = id.clone();
                    async move {
                        let doc = Self::read_doc(&db, &collection, &id).await?;
                        let lost = match doc.as_ref().and_then(read_lease) {
                            Some(Ok(current)) if current.token == held.token => None,
                            Some(Ok(current)) => Some(format!(
                                "it is now held by {} (taken over or broken)",
                                current.holder
                            )),
                            Some(Err(reason)) => {
                                Some(format!("its record is unreadable ({reason})"))
                            }
                            None => Some("it was released or taken over and given back".to_owned()),
                        };
                        if let Some(reason) = lost {
                            return Ok(Err(reason));
                        }
                        let renewed = held.renewed(Utc::now(), expiry);
                        Self::write_lease(
                            &db,
                            transaction,
                            &collection,
                            &id,
                            &held.target,
                            Some(&renewed),
                        )?;
                        Ok::<_, BackoffError<FirestoreError>>(Ok(renewed))
                    }
                    .boxed()
                },
                Self::transaction_options(),
            )
            .await
            .map_err(|e| self.fail("renew the lease on", &held.target, e))?;
        match outcome {
            Ok(renewed) => {
                guard.set_lease(renewed);
                Ok(())
            }
            Err(reason) => Err(StateError::LeaseLost {
                target: held.target,
                reason,
            }),
        }
    }

    async fn read_lease_state(&self, target: &str) -> StateResult<LeaseState> {
        let id = doc_id(target)?;
        let doc = self
            .db
            .fluent()
            .select()
            .by_id_in(&self.url.collection)
            .one(&id)
            .await
            .map_err(|e| self.fail("read the lease on", target, e))?;
        Ok(lease_state(doc.as_ref().and_then(read_lease), Utc::now()))
    }

    async fn give_back(&self, guard: LeaseGuard) -> StateResult<()> {
        let (lease, _) = guard.into_parts();
        let id = doc_id(&lease.target)?;
        let collection = self.url.collection.clone();
        let target = lease.target.clone();
        let token = lease.token;
        self.db
            .run_transaction_with_options(
                |db, transaction| {
                    let collection = collection.clone();
                    let id = id.clone();
                    let target = target.clone();
                    async move {
                        let doc = Self::read_doc(&db, &collection, &id).await?;
                        // Taken over after it expired: the lease is someone else's now.
                        match doc.as_ref().and_then(read_lease) {
                            Some(Ok(current)) if current.token == token => {}
                            _ => return Ok::<(), BackoffError<FirestoreError>>(()),
                        }
                        Self::write_lease(&db, transaction, &collection, &id, &target, None)
                    }
                    .boxed()
                },
                Self::transaction_options(),
            )
            .await
            .map_err(|e| self.fail("release the lease on", &lease.target, e))
    }

    async fn list_targets(&self) -> StateResult<Vec<String>> {
        let docs: Vec<TargetDoc> = self
            .db
            .fluent()
            .select()
            .from(self.url.collection.as_str())
            .obj()
            .query()
            .await
            .map_err(|e| backend("list the targets in", &self.url, &self.endpoint, e))?;
        let mut targets: Vec<String> = docs
            .into_iter()
            .filter(|doc| doc.last_seq > 0)
            .map(|doc| doc.target)
            .collect();
        targets.sort();
        Ok(targets)
    }
}

impl StateLog for FirestoreLog {
    fn append(&self, event: Event) -> impl Future<Output = StateResult<Event>> + Send {
        self.append_event(event)
    }

    fn history(&self, target: &str) -> impl Future<Output = StateResult<History>> + Send {
        let target = target.to_owned();
        async move { self.read_history(&target).await }
    }

    fn last(&self, target: &str) -> impl Future<Output = StateResult<Option<Event>>> + Send {
        let target = target.to_owned();
        async move { self.newest_where(&target, |_| true).await }
    }

    fn last_of(
        &self,
        target: &str,
        kinds: &[EventKind],
    ) -> impl Future<Output = StateResult<Option<Event>>> + Send {
        let target = target.to_owned();
        let kinds: Vec<&'static str> = kinds.iter().map(|k| k.as_str()).collect();
        async move {
            self.newest_where(&target, |kind| kinds.contains(&kind))
                .await
        }
    }

    fn acquire(
        &self,
        request: LeaseRequest,
    ) -> impl Future<Output = StateResult<LeaseGuard>> + Send {
        self.take_lease(request)
    }

    fn renew(
        &self,
        guard: &mut LeaseGuard,
        expiry: Duration,
    ) -> impl Future<Output = StateResult<()>> + Send {
        self.renew_lease(guard, expiry)
    }

    fn lease(&self, target: &str) -> impl Future<Output = StateResult<LeaseState>> + Send {
        let target = target.to_owned();
        async move { self.read_lease_state(&target).await }
    }

    fn release(&self, guard: LeaseGuard) -> impl Future<Output = StateResult<()>> + Send {
        self.give_back(guard)
    }

    fn targets(&self) -> impl Future<Output = StateResult<Vec<String>>> + Send {
        self.list_targets()
    }
}

/// The current state of a target, as [`FirestoreLog::current`] reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TargetState {
    /// The target key.
    pub target: String,
    /// The sequence number of the newest event.
    pub last_seq: u64,
    /// The side serving traffic, as last recorded.
    pub active_color: Option<String>,
    /// Per side (`blue`, `green`, …): its latest status, version and deployment.
    pub sides: BTreeMap<String, SideState>,
    /// The latest recorded environment.
    pub environment: Option<String>,
    /// The latest recorded Kong service.
    pub service: Option<String>,
    /// The latest recorded Kong upstream.
    pub upstream: Option<String>,
    /// The lease: free, held, abandoned (expired) or unreadable.
    pub lease: LeaseState,
}

/// One side's recorded state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SideState {
    /// Its latest status.
    pub status: Option<DeploymentStatus>,
    /// Its latest version.
    pub version: Option<String>,
    /// Its latest deployment name.
    pub deployment: Option<String>,
}

/// The target document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TargetDoc {
    target: String,
    #[serde(default)]
    last_seq: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    active_color: Option<String>,
    #[serde(default)]
    sides: BTreeMap<String, SideDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at: Option<FirestoreTimestamp>,
}

/// The fields of the target document an append writes: all but `lease`.
const TARGET_FIELDS: [&str; 8] = [
    "target",
    "last_seq",
    "active_color",
    "sides",
    "environment",
    "service",
    "upstream",
    "updated_at",
];

/// The fields of the target document a lease operation writes.
const LEASE_FIELDS: [&str; 3] = ["target", "lease", "updated_at"];

/// What a lease operation writes into the target document.
#[derive(Debug, Serialize, Deserialize)]
struct LeaseWrite {
    target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease: Option<LeaseDoc>,
    updated_at: FirestoreTimestamp,
}

/// The `lease` field of a target document, read on its own so that a record this version
/// cannot read is "held by an unknown holder", never a failure to read the document or a
/// free lease.
#[derive(Debug, Deserialize)]
struct LeaseField {
    #[serde(default)]
    lease: Option<LeaseDoc>,
}

/// Why an acquire was refused.
enum Refusal {
    Held(Lease),
    Unreadable(String),
}

/// The lease recorded in a target document: `None` if there is none, `Err` saying why if
/// it cannot be read.
fn read_lease(doc: &firestore::FirestoreDocument) -> Option<Result<Lease, String>> {
    let field = doc.fields.get("lease")?;
    if matches!(
        field.value_type,
        None | Some(firestore::gcloud_sdk::google::firestore::v1::value::ValueType::NullValue(_))
    ) {
        return None;
    }
    let record = match FirestoreDb::deserialize_doc_to::<LeaseField>(doc) {
        Ok(LeaseField {
            lease: Some(record),
        }) => record,
        Ok(LeaseField { lease: None }) => return None,
        Err(err) => return Some(Err(format!("unreadable lease record: {err}"))),
    };
    Some(record.to_lease())
}

/// What a recorded lease means at `now`.
fn lease_state(recorded: Option<Result<Lease, String>>, now: DateTime<Utc>) -> LeaseState {
    match recorded {
        None => LeaseState::Free,
        Some(Ok(lease)) if lease.is_expired_at(now) => LeaseState::Abandoned { lease },
        Some(Ok(lease)) => LeaseState::Held { lease },
        Some(Err(reason)) => LeaseState::Unreadable { reason },
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SideDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<DeploymentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at: Option<FirestoreTimestamp>,
}

/// The lease record in a target document (versioned: see [`LEASE_RECORD_VERSION`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseDoc {
    version: u32,
    target: String,
    holder: LeaseHolder,
    token: String,
    acquired_at: FirestoreTimestamp,
    renewed_at: FirestoreTimestamp,
    expires_at: FirestoreTimestamp,
    deadline: FirestoreTimestamp,
    renew_every_ms: u64,
}

impl LeaseDoc {
    fn from_lease(lease: &Lease) -> LeaseDoc {
        LeaseDoc {
            version: LEASE_RECORD_VERSION,
            target: lease.target.clone(),
            holder: lease.holder.clone(),
            token: lease.token.to_string(),
            acquired_at: to_firestore(lease.acquired_at),
            renewed_at: to_firestore(lease.renewed_at),
            expires_at: to_firestore(lease.expires_at),
            deadline: to_firestore(lease.deadline),
            renew_every_ms: u64::try_from(lease.renew_every.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The lease, or why the record cannot be read (then it is held by an unknown holder).
    fn to_lease(&self) -> Result<Lease, String> {
        if self.version != LEASE_RECORD_VERSION {
            return Err(format!(
                "lease record version {} (this kong-switch reads version {LEASE_RECORD_VERSION})",
                self.version
            ));
        }
        let token = Uuid::parse_str(&self.token)
            .map_err(|e| format!("unreadable lease token {:?}: {e}", self.token))?;
        Ok(Lease {
            target: self.target.clone(),
            holder: self.holder.clone(),
            acquired_at: from_firestore(self.acquired_at),
            renewed_at: from_firestore(self.renewed_at),
            expires_at: from_firestore(self.expires_at),
            deadline: from_firestore(self.deadline),
            renew_every: Duration::from_millis(self.renew_every_ms),
            token,
        })
    }
}

impl TargetDoc {
    fn new(target: &str) -> TargetDoc {
        TargetDoc {
            target: target.to_owned(),
            last_seq: 0,
            active_color: None,
            sides: BTreeMap::new(),
            environment: None,
            service: None,
            upstream: None,
            updated_at: None,
        }
    }

    /// Folds `event` into the current state.
    fn record(&mut self, event: &Event) {
        self.last_seq = i64::try_from(event.seq).unwrap_or(i64::MAX);
        let now = to_firestore(event.timestamp);
        self.updated_at = Some(now);
        for (field, value) in [
            (&mut self.environment, &event.environment),
            (&mut self.service, &event.service),
            (&mut self.upstream, &event.upstream),
        ] {
            if value.is_some() {
                field.clone_from(value);
            }
        }
        let side = event
            .color
            .as_ref()
            .map(|c| c.as_str().to_owned())
            .or_else(|| {
                (event.kind == EventKind::Completed)
                    .then(|| event.to.clone())
                    .flatten()
            });
        if let Some(side) = side {
            let entry = self.sides.entry(side.clone()).or_default();
            if event.status.is_some() {
                entry.status = event.status;
            }
            if event.version.is_some() {
                entry.version.clone_from(&event.version);
            }
            if event.deployment.is_some() {
                entry.deployment.clone_from(&event.deployment);
            }
            entry.updated_at = Some(now);
            if event.status == Some(DeploymentStatus::Active) {
                self.active_color = Some(side);
            }
        }
        if event.kind == EventKind::Completed
            && let Some(to) = &event.to
        {
            self.active_color = Some(to.clone());
        }
    }

    fn into_state(self, lease: LeaseState) -> TargetState {
        TargetState {
            last_seq: u64::try_from(self.last_seq).unwrap_or(0),
            active_color: self.active_color,
            sides: self
                .sides
                .into_iter()
                .map(|(color, side)| {
                    (
                        color,
                        SideState {
                            status: side.status,
                            version: side.version,
                            deployment: side.deployment,
                        },
                    )
                })
                .collect(),
            environment: self.environment,
            service: self.service,
            upstream: self.upstream,
            lease,
            target: self.target,
        }
    }
}

/// An event document: the whole event as JSON, and its attributes as plain fields.
#[derive(Debug, Serialize, Deserialize)]
struct EventDoc {
    seq: i64,
    kind: String,
    timestamp: FirestoreTimestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<DeploymentStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    build_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strategy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    /// The whole event as JSON: what `history` reads.
    event: String,
}

/// What `history` reads of an event document.
#[derive(Debug, Deserialize)]
struct StoredEvent {
    event: String,
    /// The event's kind, readable without parsing `event`.
    #[serde(default)]
    kind: String,
}

impl EventDoc {
    fn from_event(event: &Event) -> Result<EventDoc, serde_json::Error> {
        Ok(EventDoc {
            seq: i64::try_from(event.seq).unwrap_or(i64::MAX),
            kind: event.kind.as_str().to_owned(),
            timestamp: to_firestore(event.timestamp),
            run_id: event.run_id.map(|id| id.to_string()),
            status: event.status,
            environment: event.environment.clone(),
            color: event.color.as_ref().map(|c| c.as_str().to_owned()),
            deployment: event.deployment.clone(),
            version: event.version.clone(),
            service: event.service.clone(),
            upstream: event.upstream.clone(),
            build_id: event.build_id.clone(),
            actor: event.actor.clone(),
            reason: event.reason.clone(),
            strategy: event.strategy.clone(),
            from: event.from.clone(),
            to: event.to.clone(),
            event: serde_json::to_string(event)?,
        })
    }
}

/// The document id of a target key.
fn doc_id(target: &str) -> StateResult<String> {
    if target.is_empty() {
        return Err(StateError::InvalidTarget {
            target: target.to_owned(),
            reason: "the target key is empty",
        });
    }
    let id = utf8_percent_encode(target, DOC_ID).to_string();
    if id.len() > MAX_DOC_ID {
        return Err(StateError::InvalidTarget {
            target: target.to_owned(),
            reason: "the target key is too long for a Firestore document id",
        });
    }
    Ok(id)
}

/// The event document id of `seq`: zero-padded, so ids sort as numbers.
fn event_id(seq: u64) -> String {
    format!("{seq:020}")
}

fn to_firestore(at: DateTime<Utc>) -> FirestoreTimestamp {
    let nanos = i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0);
    let instant = jiff::Timestamp::new(at.timestamp(), nanos).unwrap_or(jiff::Timestamp::MAX);
    FirestoreTimestamp(instant).truncated_to_firestore_precision()
}

fn from_firestore(at: FirestoreTimestamp) -> DateTime<Utc> {
    let nanos = u32::try_from(at.0.subsec_nanosecond()).unwrap_or(0);
    DateTime::from_timestamp(at.0.as_second(), nanos).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A [`StateError::Backend`] for a failed `op` ("append to \"orders\" in"), with a hint for
/// the failures a user can fix. Never includes credentials: the Firestore errors carry none.
fn backend(
    op: &str,
    url: &FirestoreUrl,
    endpoint: &FirestoreEndpoint,
    err: FirestoreError,
) -> StateError {
    let code = match &err {
        FirestoreError::DatabaseError(e) => e.public.code.clone(),
        FirestoreError::DataNotFoundError(e) => e.public.code.clone(),
        // For a failed connection, the code names the transport error.
        FirestoreError::SystemError(e) => e.public.code.clone(),
        FirestoreError::NetworkError(e) => e.public.code.clone(),
        FirestoreError::ErrorInTransaction(_) => "Transaction".to_owned(),
        _ => String::new(),
    };
    let hint = match code.as_str() {
        "PermissionDenied" => format!(
            "permission denied: the credentials may not use {}; grant them roles/datastore.user on project {}",
            url.database_path(),
            url.project
        ),
        "Unauthenticated" => "the credentials were refused; run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, or use Workload Identity".to_owned(),
        "Unavailable" | "CONNECTION_CLOSED" | "CONNECTION_TIMEOUT" | "DeadlineExceeded" => {
            format!("Firestore is unreachable at {endpoint}; check the network (or that the emulator runs)")
        }
        "NotFound" => format!(
            "{} was not found; check the project and database in the URL",
            url.database_path()
        ),
        _ if code.contains("transport") || code.contains("ConnectError") => {
            format!("Firestore is unreachable at {endpoint}; check the network (or that the emulator runs)")
        }
        _ => match &err {
            FirestoreError::SystemError(_) => format!(
                "cannot set up the Firestore client for {endpoint} (Google credentials: GOOGLE_APPLICATION_CREDENTIALS, gcloud application-default login, or the metadata server)"
            ),
            _ => format!("the request to {endpoint} failed"),
        },
    };
    StateError::Backend {
        store: STORE,
        message: format!("cannot {op} {url}: {hint}"),
        source: Some(Box::new(err)),
    }
}

/// The emulator's conventional credentials: `Authorization: Bearer owner` on every request,
/// which the emulator accepts as an administrator.
#[derive(Debug)]
struct EmulatorOwner {
    tag: EntityTag,
}

impl Default for EmulatorOwner {
    fn default() -> Self {
        EmulatorOwner {
            tag: EntityTag::new(),
        }
    }
}

impl CredentialsProvider for EmulatorOwner {
    async fn headers(
        &self,
        extensions: http::Extensions,
    ) -> Result<CacheableResource<http::HeaderMap>, CredentialsError> {
        if extensions.get::<EntityTag>() == Some(&self.tag) {
            return Ok(CacheableResource::NotModified);
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer owner"),
        );
        Ok(CacheableResource::New {
            entity_tag: self.tag.clone(),
            data: headers,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_switch_core::state::Color;

    /// The target key of a document id (the inverse of [`doc_id`]).
    fn target_of(id: &str) -> Option<String> {
        percent_encoding::percent_decode_str(id)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    }

    fn parse_err(url: &str) -> String {
        match url.parse::<FirestoreUrl>() {
            Ok(parsed) => panic!("{url} parsed as {parsed:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn urls_with_and_without_a_database_parse_and_print_back() {
        for text in [
            "firestore://acme-prod/kong-switch",
            "firestore://acme-prod/deploys/kong-switch",
            "firestore://example.com:acme-prod/kong-switch",
        ] {
            let url: FirestoreUrl = text.parse().expect("valid");
            assert_eq!(url.to_string(), text);
        }
        let url: FirestoreUrl = "firestore://acme-prod/(default)/ks".parse().expect("valid");
        assert_eq!(url.database(), "(default)");
        assert_eq!(url.to_string(), "firestore://acme-prod/ks");
    }

    #[test]
    fn url_errors_name_the_wrong_part() {
        assert!(parse_err("gs://acme/ks").contains(": scheme:"));
        assert!(parse_err("firestore://acme").contains(": collection: missing"));
        assert!(parse_err("firestore://acme/").contains(": collection: empty"));
        assert!(parse_err("firestore:///ks").contains(": project: empty"));
        assert!(parse_err("firestore://Acme-Prod/ks").contains(": project: `Acme-Prod`"));
        assert!(parse_err("firestore://acme/DB_1/ks").contains(": database: `DB_1`"));
        assert!(parse_err("firestore://acme/db/ks/more").contains(": path: 4 path segments"));
        assert!(parse_err("firestore://acme/__ks__").contains(": collection: `__ks__`"));
        assert!(parse_err("firestore://acme/ks?x=1").contains(": path: query"));
    }

    #[test]
    fn firestore_urls_are_told_from_paths() {
        assert!(FirestoreUrl::is_firestore_url("firestore://a/b"));
        assert!(FirestoreUrl::is_firestore_url("FIRESTORE://a/b"));
        assert!(!FirestoreUrl::is_firestore_url("/var/lib/kong-switch"));
        assert!(!FirestoreUrl::is_firestore_url("./firestore"));
    }

    #[test]
    fn document_ids_encode_everything_firestore_could_refuse() {
        for target in ["orders", "tag:app=orders", "a/b", ".", "..", "__x__", "ünï"] {
            let id = doc_id(target).expect("valid");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-%".contains(c)),
                "{id}"
            );
            assert!(id != "." && id != ".." && !id.starts_with("__"), "{id}");
            assert_eq!(target_of(&id).as_deref(), Some(target));
        }
        assert_eq!(
            doc_id("tag:app=orders").expect("valid"),
            "tag%3Aapp%3Dorders"
        );
        assert!(matches!(doc_id(""), Err(StateError::InvalidTarget { .. })));
        assert!(matches!(
            doc_id(&"/".repeat(600)),
            Err(StateError::InvalidTarget { .. })
        ));
    }

    #[test]
    fn event_ids_sort_as_numbers() {
        assert!(event_id(9) < event_id(10));
        assert_eq!(event_id(1).len(), 20);
    }

    #[test]
    fn recording_events_tracks_the_active_side_and_each_sides_status() {
        let mut doc = TargetDoc::new("orders");
        let mut deploying = Event::new("orders", EventKind::Status)
            .with_color(Color::Green)
            .with_status(DeploymentStatus::Deploying)
            .with_deployment("orders-green")
            .with_version("1.4.2");
        deploying.seq = 1;
        doc.record(&deploying);
        let mut switched = Event::new("orders", EventKind::Completed)
            .with_sides("blue", "green")
            .with_status(DeploymentStatus::Active);
        switched.seq = 2;
        doc.record(&switched);
        let mut retired = Event::new("orders", EventKind::Status)
            .with_color(Color::Blue)
            .with_status(DeploymentStatus::Idle);
        retired.seq = 3;
        doc.record(&retired);

        let state = doc.into_state(LeaseState::Free);
        assert_eq!(state.last_seq, 3);
        assert_eq!(state.active_color.as_deref(), Some("green"));
        assert_eq!(state.sides["green"].status, Some(DeploymentStatus::Active));
        assert_eq!(state.sides["green"].version.as_deref(), Some("1.4.2"));
        assert_eq!(state.sides["blue"].status, Some(DeploymentStatus::Idle));
    }

    #[test]
    fn timestamps_survive_the_firestore_conversion_to_the_microsecond() {
        let at = DateTime::parse_from_rfc3339("2026-11-25T01:02:03.123456789Z")
            .expect("valid")
            .with_timezone(&Utc);
        let back = from_firestore(to_firestore(at));
        assert_eq!(back.timestamp_micros(), at.timestamp_micros());
    }

    #[test]
    fn permission_denied_says_which_role_to_grant() {
        let url: FirestoreUrl = "firestore://acme/ks".parse().expect("valid");
        let err = FirestoreError::DatabaseError(firestore::errors::FirestoreDatabaseError::new(
            firestore::errors::FirestoreErrorPublicGenericDetails::new("PermissionDenied".into()),
            "status: PermissionDenied".into(),
            false,
        ));
        let message = backend(
            "append to \"orders\" in",
            &url,
            &FirestoreEndpoint::Google,
            err,
        )
        .to_string();
        assert!(message.contains("permission denied"), "{message}");
        assert!(message.contains("roles/datastore.user"), "{message}");
        assert!(message.contains("firestore://acme/ks"), "{message}");
    }
}
