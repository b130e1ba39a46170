//! [`FileLog`]: the embedded default store. JSON Lines files and OS file locks; no server.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{
    CorruptLine, Error, Event, EventKind, History, Lease, LeaseGuard, LeaseRequest, LeaseState,
    Result, StateLog, Takeover, TakeoverCause,
};

/// Bytes kept of an unreadable line in [`CorruptLine::text`].
const EXCERPT: usize = 200;
/// Bytes read per step when looking for the last event from the end of a log.
const TAIL_BLOCK: u64 = 64 * 1024;
/// Longest encoded target key kept as the file name, so that `<key>.jsonl` fits the usual
/// 255-byte name limit; a longer key gets a hashed name.
const MAX_FILE_STEM: usize = 240;
/// Starts the name of a file named by the hash of its key. `+` is never in a
/// percent-encoded stem, so a hashed name cannot be taken by a short key.
const HASHED_PREFIX: &str = "+key-";
/// The UUID v5 namespace of hashed file names (fixed forever: it names existing files).
const HASHED_NAMESPACE: Uuid = Uuid::from_u128(0x6b6f_6e67_2d73_7769_7463_682d_6c6f_6773);
/// Everything but `[A-Za-z0-9._-]` is percent-encoded in file names.
const FILE_STEM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');
const LOG_SUFFIX: &str = ".jsonl";
const LOCK_SUFFIX: &str = ".lock";

/// The embedded state store: one append-only JSON Lines file per target in a directory,
/// and an OS file lock per target for the lease.
///
/// # Layout
///
/// For a target key `K`, with `E` = `K` percent-encoded outside `[A-Za-z0-9._-]`
/// (`tag:app=orders` → `tag%3Aapp%3Dorders`), or, when that is longer than 240 bytes (a
/// long or non-Latin service name), `+key-` and the UUID v5 of `K` in hex: the key itself
/// is in every event of the file (its `target`), where [`targets`](StateLog::targets) reads
/// it back, and events of another key are never returned.
///
/// - `E.jsonl`: the events, one JSON object per line (see [`Event`] for the fields), in
///   append order. Each append writes its line with one write through an `O_APPEND`
///   handle, under an exclusive lock on the file so appends from several processes never
///   interleave, and `fsync`s before it returns. A line left unterminated by a crash is
///   reported by [`history`](StateLog::history), and the next append starts on a fresh line.
/// - `E.lock`: the lease. [`acquire`](StateLog::acquire) takes an exclusive OS lock on it
///   (`flock` on Unix, `LockFileEx` on Windows) and writes the [`Lease`] into it as a
///   versioned record ([`Lease::to_record`]), so a contender's [`Error::LeaseHeld`] names the
///   holder; [`renew`](StateLog::renew) rewrites the record, [`release`](StateLog::release)
///   empties it.
///
/// Files are created `0600` and a directory created by [`FileLog::open`] `0700` on Unix.
/// On case-insensitive file systems, target keys differing only in case share a log.
///
/// # Leases and expiry
///
/// The OS lock lives as long as the [`LeaseGuard`] (dropping the guard frees it) and dies
/// with the process, even on `SIGKILL`: a crashed holder's lease is free at once, without
/// waiting for its expiry. A record left in the file by such a holder makes the next
/// acquire a takeover ([`LeaseGuard::takeover`]: expired, or holder gone), which
/// [`LeaseKeeper`](super::LeaseKeeper) records in the log, as with any store. While the
/// holding process is alive, the lease is held **whatever its `expires_at`**, and cannot be
/// broken: the expiry is recorded for humans and for stores without such locks. A record
/// that cannot be read, under a held lock, is held by an unknown holder.
///
/// # Runtime
///
/// The blocking file I/O runs on Tokio's blocking pool (`spawn_blocking`), so the methods
/// must be awaited inside a Tokio runtime.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use kong_switch_core::state::{DeploymentStatus, Event, EventKind, FileLog, LeaseRequest, StateLog};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// # let state_dir = tmp.path().join("kong-switch");
/// let log = FileLog::open(state_dir)?;
///
/// let lease = log
///     .acquire(LeaseRequest::for_this_process("orders", "alice@host", Duration::from_secs(600)))
///     .await?;
/// let stored = log
///     .append(Event::new("orders", EventKind::Completed).with_status(DeploymentStatus::Active))
///     .await?;
/// assert_eq!(stored.seq, 1);
/// log.release(lease).await?;
///
/// let history = log.history("orders").await?;
/// assert_eq!(history.events.len(), 1);
/// assert!(history.is_clean());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FileLog {
    dir: Arc<Path>,
}

impl FileLog {
    /// Opens the store in `dir`, creating the directory (and its parents) if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<FileLog> {
        let dir = dir.into();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&dir).map_err(Error::io("create", &dir))?;
        Ok(FileLog { dir: dir.into() })
    }

    /// The directory holding the logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `target`'s log file (which may not exist yet).
    pub fn log_path(&self, target: &str) -> Result<PathBuf> {
        file_path(&self.dir, target, LOG_SUFFIX)
    }

    /// The path of `target`'s lock file (which may not exist yet).
    pub fn lock_path(&self, target: &str) -> Result<PathBuf> {
        file_path(&self.dir, target, LOCK_SUFFIX)
    }

    /// Runs blocking `work` on the blocking pool.
    async fn blocking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T> + Send + 'static,
    {
        let dir = Arc::clone(&self.dir);
        tokio::task::spawn_blocking(move || work(&dir))
            .await
            .map_err(Error::Task)?
    }
}

impl StateLog for FileLog {
    fn append(&self, event: Event) -> impl Future<Output = Result<Event>> + Send {
        self.blocking(move |dir| append(dir, event))
    }

    fn history(&self, target: &str) -> impl Future<Output = Result<History>> + Send {
        let target = target.to_owned();
        self.blocking(move |dir| history(dir, &target))
    }

    fn last(&self, target: &str) -> impl Future<Output = Result<Option<Event>>> + Send {
        let target = target.to_owned();
        self.blocking(move |dir| last(dir, &target, |_| true))
    }

    fn last_of(
        &self,
        target: &str,
        kinds: &[EventKind],
    ) -> impl Future<Output = Result<Option<Event>>> + Send {
        let target = target.to_owned();
        let kinds = kinds.to_vec();
        self.blocking(move |dir| last(dir, &target, |kind| kinds.contains(&kind)))
    }

    fn acquire(&self, request: LeaseRequest) -> impl Future<Output = Result<LeaseGuard>> + Send {
        self.blocking(move |dir| acquire(dir, &request))
    }

    async fn renew(&self, guard: &mut LeaseGuard, expiry: Duration) -> Result<()> {
        let renewed = guard.lease().renewed(chrono::Utc::now(), expiry);
        let (mut file, path) = held_file(guard)?;
        let record = renewed.clone();
        // The OS lock is the guard's for as long as it lives: only the record changes.
        tokio::task::spawn_blocking(move || write_record(&mut file, &path, &record))
            .await
            .map_err(Error::Task)??;
        guard.set_lease(renewed);
        Ok(())
    }

    fn lease(&self, target: &str) -> impl Future<Output = Result<LeaseState>> + Send {
        let target = target.to_owned();
        self.blocking(move |dir| lease_state(dir, &target))
    }

    fn release(&self, guard: LeaseGuard) -> impl Future<Output = Result<()>> + Send {
        self.blocking(move |_| release(guard))
    }

    fn targets(&self) -> impl Future<Output = Result<Vec<String>>> + Send {
        self.blocking(targets)
    }
}

/// `dir/<encoded target><suffix>`, or `dir/+key-<hash><suffix>` for a long key.
fn file_path(dir: &Path, target: &str, suffix: &str) -> Result<PathBuf> {
    if target.is_empty() {
        return Err(Error::InvalidTarget {
            target: target.to_owned(),
            reason: "the target key is empty",
        });
    }
    let mut stem = utf8_percent_encode(target, FILE_STEM).to_string();
    if stem.len() > MAX_FILE_STEM {
        let hash = Uuid::new_v5(&HASHED_NAMESPACE, target.as_bytes()).simple();
        stem = format!("{HASHED_PREFIX}{hash}");
    }
    Ok(dir.join(stem + suffix))
}

/// Options for the store's files: created `0600` on Unix.
fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

fn append(dir: &Path, mut event: Event) -> Result<Event> {
    let path = file_path(dir, &event.target, LOG_SUFFIX)?;
    let mut file = file_options()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)
        .map_err(Error::io("open", &path))?;
    // Serializes appenders across processes (and across handles within one): the lock is
    // on the log itself, not on the lease file, so a lease holder can append.
    file.lock().map_err(Error::io("lock", &path))?;

    let len = file.metadata().map_err(Error::io("read", &path))?.len();
    // Only the sequence number is needed: a batch intent line can be large.
    let tail =
        read_tail(&mut file, len, parse_line::<SeqOnly>).map_err(Error::io("read", &path))?;
    event.seq = tail.last.map_or(1, |last| last.seq + 1);

    let mut line = Vec::new();
    if !tail.ends_with_newline {
        // The previous write was cut short: leave the broken line on its own.
        line.push(b'\n');
    }
    serde_json::to_writer(&mut line, &event).map_err(|source| Error::Serialize {
        target: event.target.clone(),
        source,
    })?;
    line.push(b'\n');
    file.write_all(&line)
        .map_err(Error::io("append to", &path))?;
    file.sync_data().map_err(Error::io("sync", &path))?;
    if len == 0 {
        sync_dir(dir)?;
    }
    file.unlock().map_err(Error::io("unlock", &path))?;
    Ok(event)
}

/// Makes a newly created file's directory entry durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Opens `target`'s log for reading under a shared lock, or `None` if it has no log.
fn open_for_reading(dir: &Path, target: &str) -> Result<Option<(File, PathBuf)>> {
    let path = file_path(dir, target, LOG_SUFFIX)?;
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io("open", &path)(err)),
    };
    // Waits out an append in progress, so its line is read whole.
    file.lock_shared().map_err(Error::io("lock", &path))?;
    Ok(Some((file, path)))
}

fn history(dir: &Path, target: &str) -> Result<History> {
    let Some((mut file, path)) = open_for_reading(dir, target)? else {
        return Ok(History::default());
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(Error::io("read", &path))?;
    drop(file);
    let mut history = parse_lines(&bytes);
    // A hashed file name holds one key's events; a collision would show another key's.
    history.events.retain(|e| e.target == target);
    Ok(history)
}

/// Reads JSON Lines: blank lines are skipped, unreadable ones reported with their number.
fn parse_lines(bytes: &[u8]) -> History {
    let mut history = History::default();
    let ends_with_newline = bytes.last().is_none_or(|&b| b == b'\n');
    let count = bytes.split(|&b| b == b'\n').count();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if is_blank(line) {
            continue;
        }
        match serde_json::from_slice::<Event>(line) {
            Ok(event) => history.events.push(event),
            Err(err) => history.corrupt.push(CorruptLine {
                line: index + 1,
                message: err.to_string(),
                text: String::from_utf8_lossy(&line[..line.len().min(EXCERPT)]).into_owned(),
                unterminated: index + 1 == count && !ends_with_newline,
            }),
        }
    }
    history
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// The newest readable event of `target` whose kind `wanted` accepts. Lines are read from
/// the end, and a line is parsed whole only when its kind is wanted.
fn last(dir: &Path, target: &str, wanted: impl Fn(EventKind) -> bool) -> Result<Option<Event>> {
    let Some((mut file, path)) = open_for_reading(dir, target)? else {
        return Ok(None);
    };
    let len = file.metadata().map_err(Error::io("read", &path))?.len();
    let parse = |line: &[u8]| {
        parse_line::<KindOnly>(line)
            .filter(|k| wanted(k.kind))
            .and_then(|_| parse_line::<Event>(line))
            .filter(|e| e.target == target)
    };
    let tail = read_tail(&mut file, len, parse).map_err(Error::io("read", &path))?;
    Ok(tail.last)
}

/// The part of an event [`append`] needs from the newest one.
#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

/// The part of an event [`last`] looks at before parsing a line whole.
#[derive(Deserialize)]
struct KindOnly {
    kind: EventKind,
}

/// The end of a log.
struct Tail<T> {
    /// The newest readable event (or the part of it that was asked for).
    last: Option<T>,
    /// Whether the file is empty or ends with a newline (else the last write was cut short).
    ends_with_newline: bool,
}

/// Finds the newest line `parse` accepts by reading `file` (of `len` bytes) backwards in
/// blocks, so appends cost the same however long the log grows.
fn read_tail<T>(
    file: &mut File,
    len: u64,
    parse: impl Fn(&[u8]) -> Option<T>,
) -> io::Result<Tail<T>> {
    let mut ends_with_newline = true;
    // `buf` holds `file[pos..]` minus the lines already looked at; it ends at a line end.
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = len;
    loop {
        // Every piece after a newline is a whole line; the piece before the first newline
        // is whole only at the start of the file.
        while let Some(newline) = buf.iter().rposition(|&b| b == b'\n') {
            if let Some(event) = parse(&buf[newline + 1..]) {
                return Ok(Tail {
                    last: Some(event),
                    ends_with_newline,
                });
            }
            buf.truncate(newline);
        }
        if pos == 0 {
            return Ok(Tail {
                last: parse(&buf),
                ends_with_newline,
            });
        }
        let start = pos.saturating_sub(TAIL_BLOCK);
        let mut block = vec![0; usize::try_from(pos - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block)?;
        if pos == len {
            ends_with_newline = block.last() == Some(&b'\n');
        }
        block.extend_from_slice(&buf);
        buf = block;
        pos = start;
    }
}

fn parse_line<T: DeserializeOwned>(line: &[u8]) -> Option<T> {
    if is_blank(line) {
        return None;
    }
    serde_json::from_slice(line).ok()
}

/// The locked lease file, kept in the [`LeaseGuard`]: dropping it frees the lock.
struct HeldLock {
    file: File,
    path: PathBuf,
}

/// How often, and how long apart, a contender retries a lock it found taken: a `status`
/// holds it shared for an instant, and a winner writes its record just after locking.
const LOCK_RETRIES: usize = 20;
const LOCK_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// The lock file's record: empty when released, else a lease record (or something that
/// cannot be read as one).
fn read_record(file: &mut File) -> io::Result<Vec<u8>> {
    let mut record = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut record)?;
    Ok(record)
}

fn write_record(file: &mut File, path: &Path, lease: &Lease) -> Result<()> {
    let record = lease.to_record().map_err(|source| Error::Serialize {
        target: lease.target.clone(),
        source,
    })?;
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(&record))
        .and_then(|()| file.sync_data())
        .map_err(Error::io("write", path))
}

fn acquire(dir: &Path, request: &LeaseRequest) -> Result<LeaseGuard> {
    let path = file_path(dir, &request.target, LOCK_SUFFIX)?;
    let mut file = file_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(Error::io("open", &path))?;
    let mut attempts = 0;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if attempts < LOCK_RETRIES => {
                attempts += 1;
                std::thread::sleep(LOCK_RETRY_PAUSE);
            }
            Err(TryLockError::WouldBlock) => return Err(lease_held(request, &mut file)),
            Err(TryLockError::Error(err)) => return Err(Error::io("lock", &path)(err)),
        }
    }

    // The lock was free: a record left in the file is a holder's that never released (its
    // process is gone, the OS freed its lock).
    let left = read_record(&mut file).map_err(Error::io("read", &path))?;
    let lease = Lease::grant(request);
    write_record(&mut file, &path, &lease)?;
    let guard = LeaseGuard::holding(lease.clone(), HeldLock { file, path });
    if is_blank(&left) {
        return Ok(guard);
    }
    let previous = Lease::from_record(&left).ok();
    let cause = match &previous {
        Some(p) if p.is_expired_at(lease.acquired_at) => TakeoverCause::Expired,
        _ => TakeoverCause::HolderGone,
    };
    Ok(guard.with_takeover(Takeover {
        cause,
        previous,
        by: lease.holder,
    }))
}

/// The error for a lease held by a live process, naming it from the lock file.
fn lease_held(request: &LeaseRequest, file: &mut File) -> Error {
    let target = request.target.clone();
    // The winner writes its record just after locking: give it a moment.
    let mut unreadable = String::from("it recorded no holder");
    for _ in 0..LOCK_RETRIES {
        match read_record(file) {
            Ok(record) if !is_blank(&record) => match Lease::from_record(&record) {
                Ok(lease) => {
                    let holder = if request.breaking.is_some() {
                        format!(
                            "{}, whose process still holds the OS lock on this machine (a file-store lease cannot be broken while its process runs; stop it first)",
                            lease.holder
                        )
                    } else {
                        lease.holder.to_string()
                    };
                    return Error::LeaseHeld {
                        target,
                        holder,
                        expires_at: Some(lease.expires_at),
                        renewed_at: Some(lease.renewed_at),
                    };
                }
                Err(reason) => unreadable = reason,
            },
            _ => {}
        }
        std::thread::sleep(LOCK_RETRY_PAUSE);
    }
    Error::LeaseHeld {
        target,
        holder: format!("another process ({unreadable})"),
        expires_at: None,
        renewed_at: None,
    }
}

/// A second handle on the guard's locked lease file, to rewrite its record.
fn held_file(guard: &mut LeaseGuard) -> Result<(File, PathBuf)> {
    let target = guard.lease().target.clone();
    let Some(held) = guard
        .resource_mut()
        .and_then(|r| r.downcast_mut::<HeldLock>())
    else {
        return Err(Error::LeaseLost {
            target,
            reason: "the guard holds no lock of the file store".to_owned(),
        });
    };
    let file = held
        .file
        .try_clone()
        .map_err(Error::io("reopen", &held.path))?;
    Ok((file, held.path.clone()))
}

fn lease_state(dir: &Path, target: &str) -> Result<LeaseState> {
    let path = file_path(dir, target, LOCK_SUFFIX)?;
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(LeaseState::Free),
        Err(err) => return Err(Error::io("open", &path)(err)),
    };
    // A shared lock only tells whether a live process holds the lease.
    let alive = match file.try_lock_shared() {
        Ok(()) => false,
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(err)) => return Err(Error::io("lock", &path)(err)),
    };
    let record = read_record(&mut file).map_err(Error::io("read", &path));
    if !alive {
        file.unlock().map_err(Error::io("unlock", &path))?;
    }
    let record = record?;
    if is_blank(&record) {
        return Ok(if alive {
            LeaseState::Unreadable {
                reason: "a live process holds the lock but recorded no holder".to_owned(),
            }
        } else {
            LeaseState::Free
        });
    }
    Ok(match (Lease::from_record(&record), alive) {
        (Ok(lease), true) => LeaseState::Held { lease },
        (Ok(lease), false) => LeaseState::Abandoned { lease },
        (Err(reason), true) => LeaseState::Unreadable { reason },
        (Err(reason), false) => LeaseState::Unreadable {
            reason: format!("{reason}; its process is gone, so the next run takes it over"),
        },
    })
}

fn release(guard: LeaseGuard) -> Result<()> {
    let (_lease, resource) = guard.into_parts();
    // A guard from another store holds nothing of ours.
    let Some(Ok(held)) = resource.map(|r| r.downcast::<HeldLock>()) else {
        return Ok(());
    };
    let HeldLock { file, path } = *held;
    // Clear the record first, so nobody reads a released holder as the current one.
    let cleared = file.set_len(0).map_err(Error::io("clear", &path));
    let unlocked = file.unlock().map_err(Error::io("unlock", &path));
    drop(file);
    cleared.and(unlocked)
}

fn targets(dir: &Path) -> Result<Vec<String>> {
    let mut targets = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let entry = entry.map_err(Error::io("list", dir))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(LOG_SUFFIX)) else {
            continue;
        };
        if stem.starts_with(HASHED_PREFIX) {
            if let Some(target) = first_target(&entry.path())? {
                targets.push(target);
            }
        } else if let Ok(target) = percent_decode_str(stem).decode_utf8()
            && !target.is_empty()
        {
            targets.push(target.into_owned());
        }
    }
    targets.sort();
    Ok(targets)
}

/// The key of a hashed log: the `target` of its first readable event.
fn first_target(path: &Path) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct TargetOnly {
        target: String,
    }
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(Error::io("read", path))?;
    Ok(bytes
        .split(|&b| b == b'\n')
        .find_map(parse_line::<TargetOnly>)
        .map(|t| t.target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::EventKind;

    fn event(target: &str, seq: u64) -> Event {
        let mut event = Event::new(target, EventKind::Status).with_reason("x".repeat(100));
        event.seq = seq;
        event
    }

    fn lines(events: &[Event]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for event in events {
            serde_json::to_writer(&mut bytes, event).expect("serializes");
            bytes.push(b'\n');
        }
        bytes
    }

    fn tail_of(bytes: &[u8]) -> Tail<Event> {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(bytes).expect("write");
        read_tail(&mut file, bytes.len() as u64, parse_line::<Event>).expect("read tail")
    }

    #[test]
    fn file_names_percent_encode_outside_the_safe_set() {
        let dir = Path::new("/state");
        assert_eq!(
            file_path(dir, "tag:app=orders", LOG_SUFFIX).expect("valid"),
            Path::new("/state/tag%3Aapp%3Dorders.jsonl")
        );
        assert_eq!(
            file_path(dir, "../etc/passwd", LOCK_SUFFIX).expect("valid"),
            Path::new("/state/..%2Fetc%2Fpasswd.lock")
        );
        assert_eq!(
            file_path(dir, "orders-v2_a.b", LOG_SUFFIX).expect("valid"),
            Path::new("/state/orders-v2_a.b.jsonl")
        );
    }

    #[test]
    fn an_empty_target_is_refused() {
        assert!(matches!(
            file_path(Path::new("/state"), "", LOG_SUFFIX),
            Err(Error::InvalidTarget { .. })
        ));
    }

    #[test]
    fn long_and_non_latin_keys_get_a_stable_hashed_name_that_fits() {
        let dir = Path::new("/state");
        for key in ["o".repeat(300), "é".repeat(100), "订单".repeat(50)] {
            let path = file_path(dir, &key, LOG_SUFFIX).expect("valid");
            let name = path.file_name().and_then(|n| n.to_str()).expect("utf-8");
            assert!(name.starts_with(HASHED_PREFIX), "{name}");
            assert!(name.len() < 64, "{name}");
            assert_eq!(path, file_path(dir, &key, LOG_SUFFIX).expect("stable"));
        }
        assert_ne!(
            file_path(dir, &"a".repeat(300), LOG_SUFFIX).expect("valid"),
            file_path(dir, &"b".repeat(300), LOG_SUFFIX).expect("valid")
        );
        // A key whose encoding fits keeps its readable name (existing logs stay found).
        assert_eq!(
            file_path(dir, &"o".repeat(240), LOG_SUFFIX).expect("valid"),
            dir.join("o".repeat(240) + LOG_SUFFIX)
        );
    }

    #[tokio::test]
    async fn a_long_key_is_logged_listed_and_locked_like_a_short_one() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let log = FileLog::open(tmp.path()).expect("open");
        let key = "订单-".repeat(60);
        log.append(Event::new(key.as_str(), EventKind::Completed))
            .await
            .expect("append");
        log.append(Event::new("orders", EventKind::Completed))
            .await
            .expect("append");
        let history = log.history(&key).await.expect("history");
        assert_eq!(history.events.len(), 1);
        assert_eq!(history.events[0].target, key);
        assert_eq!(
            log.last(&key).await.expect("last").map(|e| e.target),
            Some(key.clone())
        );
        let mut want = vec![key.clone(), "orders".to_owned()];
        want.sort();
        assert_eq!(log.targets().await.expect("targets"), want);
        let lease = log
            .acquire(LeaseRequest::new(
                key.as_str(),
                "me",
                Duration::from_secs(60),
            ))
            .await
            .expect("lease");
        log.release(lease).await.expect("release");
    }

    #[test]
    fn tail_of_an_empty_file_has_no_event_and_needs_no_separator() {
        let tail = tail_of(b"");
        assert!(tail.last.is_none());
        assert!(tail.ends_with_newline);
    }

    #[test]
    fn tail_finds_the_last_event_across_many_blocks() {
        let events: Vec<Event> = (1..=2000).map(|seq| event("orders", seq)).collect();
        let bytes = lines(&events);
        assert!(bytes.len() as u64 > 3 * TAIL_BLOCK);
        let tail = tail_of(&bytes);
        assert_eq!(tail.last.map(|e| e.seq), Some(2000));
        assert!(tail.ends_with_newline);
    }

    #[test]
    fn tail_skips_a_truncated_last_line() {
        let mut bytes = lines(&[event("orders", 1), event("orders", 2)]);
        bytes.extend_from_slice(br#"{"target":"orders","seq":3,"times"#);
        let tail = tail_of(&bytes);
        assert_eq!(tail.last.map(|e| e.seq), Some(2));
        assert!(!tail.ends_with_newline);
    }

    #[test]
    fn tail_reads_a_complete_event_missing_only_its_newline() {
        let mut bytes = lines(&[event("orders", 1)]);
        bytes.pop();
        let tail = tail_of(&bytes);
        assert_eq!(tail.last.map(|e| e.seq), Some(1));
        assert!(!tail.ends_with_newline);
    }

    #[test]
    fn tail_finds_an_event_before_a_garbage_run_longer_than_a_block() {
        let mut bytes = lines(&[event("orders", 1)]);
        bytes.extend(std::iter::repeat_n(b'#', 3 * TAIL_BLOCK as usize));
        bytes.push(b'\n');
        let tail = tail_of(&bytes);
        assert_eq!(tail.last.map(|e| e.seq), Some(1));
    }

    #[test]
    fn parse_lines_reports_corrupt_lines_with_numbers_and_keeps_the_rest() {
        let mut bytes = lines(&[event("orders", 1)]);
        bytes.extend_from_slice(b"not json\n\n");
        bytes.extend_from_slice(&lines(&[event("orders", 2)]));
        bytes.extend_from_slice(b"{\"target\":");
        let history = parse_lines(&bytes);
        assert_eq!(
            history.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(history.corrupt.len(), 2);
        assert_eq!(history.corrupt[0].line, 2);
        assert_eq!(history.corrupt[0].text, "not json");
        assert!(!history.corrupt[0].unterminated);
        assert_eq!(history.corrupt[1].line, 5);
        assert!(history.corrupt[1].unterminated);
    }
}
