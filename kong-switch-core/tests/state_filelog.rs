//! Behaviour particular to `FileLog`: the file format, crash leftovers, and locking
//! between processes.
//!
//! The multi-process tests run this test binary again as a child, selecting the ignored
//! `child_process_helper` test, with environment variables telling it what to do.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use kong_switch_core::state::{
    DeploymentStatus, Error, Event, EventKind, FileLog, LEASE_RECORD_VERSION, LeaseRequest,
    LeaseState, StateLog, TakeoverCause,
};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const TTL: Duration = Duration::from_secs(600);
const CHILD_MODE: &str = "KONG_SWITCH_STATE_TEST_CHILD";
const CHILD_DIR: &str = "KONG_SWITCH_STATE_TEST_DIR";
const CHILD_TARGET: &str = "KONG_SWITCH_STATE_TEST_TARGET";
const CHILD_APPENDS: usize = 50;

fn store() -> (tempfile::TempDir, FileLog) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FileLog::open(dir.path().join("state")).expect("open FileLog");
    (dir, log)
}

fn status(target: &str, reason: &str) -> Event {
    Event::new(target, EventKind::Status)
        .with_status(DeploymentStatus::Deploying)
        .with_reason(reason)
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open log for a raw append");
    file.write_all(bytes).expect("raw append");
}

#[tokio::test]
async fn each_event_is_one_json_line() {
    let (_dir, log) = store();
    for i in 0..3 {
        log.append(status("orders", &format!("line\n{i}")))
            .await
            .expect("append");
    }
    let text = fs::read_to_string(log.log_path("orders").expect("path")).expect("read log");
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        let value: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert_eq!(value["seq"], i + 1);
        assert_eq!(value["kind"], "status");
        assert_eq!(value["status"], "deploying");
    }
}

#[tokio::test]
async fn corrupt_tail_is_reported_and_the_next_append_starts_a_fresh_line() {
    let (_dir, log) = store();
    log.append(status("orders", "one")).await.expect("append");
    log.append(status("orders", "two")).await.expect("append");
    let path = log.log_path("orders").expect("path");
    // A crash in the middle of writing the third line.
    append_raw(&path, br#"{"target":"orders","seq":3,"timest"#);

    let history = log.history("orders").await.expect("history");
    assert_eq!(history.events.len(), 2, "the whole lines are still read");
    assert_eq!(history.corrupt.len(), 1, "the broken tail is reported");
    assert_eq!(history.corrupt[0].line, 3);
    assert!(history.corrupt[0].unterminated);
    assert!(history.corrupt[0].text.starts_with(r#"{"target":"orders""#));
    let last = log.last("orders").await.expect("last").expect("an event");
    assert_eq!(last.reason.as_deref(), Some("two"));

    let stored = log
        .append(status("orders", "three"))
        .await
        .expect("append after crash");
    assert_eq!(
        stored.seq, 3,
        "numbering continues from the last whole event"
    );

    let history = log.history("orders").await.expect("history");
    let reasons: Vec<_> = history
        .events
        .iter()
        .filter_map(|e| e.reason.as_deref())
        .collect();
    assert_eq!(reasons, ["one", "two", "three"]);
    assert_eq!(
        history.corrupt.len(),
        1,
        "the broken line is still reported"
    );
    assert_eq!(history.corrupt[0].line, 3);
    assert!(
        !history.corrupt[0].unterminated,
        "now followed by a fresh line"
    );
    let text = fs::read_to_string(&path).expect("read log");
    assert_eq!(text.lines().count(), 4);
}

#[tokio::test]
async fn corrupt_middle_line_is_reported_with_its_line_number() {
    let (_dir, log) = store();
    log.append(status("orders", "one")).await.expect("append");
    append_raw(&log.log_path("orders").expect("path"), b"\x00\xffgarbage\n");
    log.append(status("orders", "two")).await.expect("append");

    let history = log.history("orders").await.expect("history");
    assert_eq!(history.events.len(), 2);
    assert_eq!(history.corrupt.len(), 1);
    assert_eq!(history.corrupt[0].line, 2);
    assert!(!history.corrupt[0].unterminated);
    assert!(history.corrupt[0].text.contains("garbage"));
}

#[tokio::test]
async fn lines_from_a_newer_version_are_read() {
    let (_dir, log) = store();
    let path = log.log_path("orders").expect("path");
    fs::write(
        &path,
        concat!(
            r#"{"target":"orders","seq":1,"timestamp":"2026-11-25T01:00:00Z","kind":"status","status":"testing","new_field":{"a":1}}"#,
            "\n",
            r#"{"target":"orders","seq":2,"timestamp":"2026-11-25T01:00:01Z","kind":"paused"}"#,
            "\n",
        ),
    )
    .expect("write log");

    let history = log.history("orders").await.expect("history");
    assert!(history.is_clean(), "{:?}", history.corrupt);
    assert_eq!(history.events.len(), 2);
    assert_eq!(history.events[1].kind, EventKind::Unknown);
    let stored = log.append(status("orders", "next")).await.expect("append");
    assert_eq!(stored.seq, 3);
}

#[tokio::test]
async fn target_keys_map_to_safe_file_names() {
    let (_dir, log) = store();
    for target in ["tag:app=orders", "../escape", "a b/c"] {
        log.append(status(target, "x")).await.expect("append");
    }
    let mut names: Vec<String> = fs::read_dir(log.dir())
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "..%2Fescape.jsonl",
            "a%20b%2Fc.jsonl",
            "tag%3Aapp%3Dorders.jsonl"
        ]
    );
    let mut targets = log.targets().await.expect("targets");
    targets.sort();
    assert_eq!(targets, ["../escape", "a b/c", "tag:app=orders"]);
}

#[tokio::test]
async fn an_empty_target_key_is_refused() {
    let (_dir, log) = store();
    let err = log.append(status("", "x")).await.expect_err("empty target");
    assert!(matches!(err, Error::InvalidTarget { .. }), "{err:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_store_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, log) = store();
    log.append(status("orders", "x")).await.expect("append");
    let guard = log
        .acquire(LeaseRequest::new("orders", "me", TTL))
        .await
        .expect("acquire");
    let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(log.dir()), 0o700);
    assert_eq!(mode(&log.log_path("orders").expect("path")), 0o600);
    assert_eq!(mode(&log.lock_path("orders").expect("path")), 0o600);
    log.release(guard).await.expect("release");
}

#[test]
fn open_fails_naming_the_path_when_it_is_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"").expect("write");
    match FileLog::open(&file) {
        Err(err @ Error::Io { .. }) => {
            assert!(err.to_string().contains("not-a-dir"), "{err}");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_lock_file_records_the_holder() {
    let (_dir, log) = store();
    let guard = log
        .acquire(LeaseRequest::new("orders", "alice@host (pid 4242)", TTL))
        .await
        .expect("acquire");
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(log.lock_path("orders").expect("path")).expect("read"))
            .expect("JSON");
    assert_eq!(record["version"], LEASE_RECORD_VERSION);
    assert_eq!(record["holder"]["actor"], "alice@host (pid 4242)");
    assert_eq!(record["target"], "orders");
    assert_eq!(record["token"], guard.lease().token.to_string());
    log.release(guard).await.expect("release");
}

#[tokio::test]
async fn dropping_the_guard_frees_the_lease() {
    let (_dir, log) = store();
    let guard = log
        .acquire(LeaseRequest::new("orders", "alice", TTL))
        .await
        .expect("acquire");
    drop(guard);
    let again = log
        .acquire(LeaseRequest::new("orders", "bob", TTL))
        .await
        .expect("acquire after drop");
    log.release(again).await.expect("release");
}

#[tokio::test]
async fn an_expired_lease_of_a_live_holder_is_still_held() {
    let (_dir, log) = store();
    let guard = log
        .acquire(LeaseRequest::new("orders", "alice", Duration::ZERO))
        .await
        .expect("acquire");
    let err = log
        .acquire(LeaseRequest::new("orders", "bob", TTL))
        .await
        .expect_err("the OS lock is still held");
    assert_eq!(err.lease_holder(), Some("alice"));
    log.release(guard).await.expect("release");
}

#[tokio::test]
async fn the_guard_can_be_held_across_tasks() {
    let (_dir, log) = store();
    let guard = log
        .acquire(LeaseRequest::new("orders", "alice", TTL))
        .await
        .expect("acquire");
    let task_log = log.clone();
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        task_log.release(guard).await
    })
    .await
    .expect("task")
    .expect("release");
    let again = log
        .acquire(LeaseRequest::new("orders", "bob", TTL))
        .await
        .expect("acquire after release");
    log.release(again).await.expect("release");
}

// ---- several processes ----

/// Runs this test binary as a child in `mode` (`hold` or `append`) on `dir`/`target`.
fn spawn_child(mode: &str, dir: &Path, target: &str) -> (Child, Lines<BufReader<ChildStdout>>) {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "child_process_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODE, mode)
        .env(CHILD_DIR, dir)
        .env(CHILD_TARGET, target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    (child, BufReader::new(stdout).lines())
}

/// The next `@@`-marked report of a child: `ACQUIRED`, `HELD <holder>` or `DONE`.
async fn report(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    let wait = async {
        while let Some(line) = lines.next_line().await.expect("read child stdout") {
            if let Some((_, report)) = line.split_once("@@") {
                return report.to_owned();
            }
        }
        panic!("child exited without reporting");
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("child reports within a minute")
}

fn holder_of(pid: u32) -> String {
    format!("child (pid {pid})")
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_contending_exactly_one_holds_the_lease() {
    let (dir, log) = store();
    let (mut a, mut a_out) = spawn_child("hold", log.dir(), "orders");
    let (mut b, mut b_out) = spawn_child("hold", log.dir(), "orders");
    let (a_pid, b_pid) = (a.id().expect("pid"), b.id().expect("pid"));
    let (a_report, b_report) = tokio::join!(report(&mut a_out), report(&mut b_out));

    let (winner, loser_report, winner_pid) = match (a_report.as_str(), b_report.as_str()) {
        ("ACQUIRED", _) => (&mut a, b_report.clone(), a_pid),
        (_, "ACQUIRED") => (&mut b, a_report.clone(), b_pid),
        _ => panic!("nobody acquired: {a_report:?}, {b_report:?}"),
    };
    assert_eq!(
        loser_report,
        format!("HELD {}", holder_of(winner_pid)),
        "the other process is refused, naming the holder"
    );
    let err = log
        .acquire(LeaseRequest::new("orders", "parent", TTL))
        .await
        .expect_err("held by the winner");
    assert_eq!(err.lease_holder(), Some(holder_of(winner_pid).as_str()));

    winner.kill().await.expect("kill the winner");
    a.wait().await.expect("wait");
    b.wait().await.expect("wait");
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lease_is_freed_when_the_holder_process_is_killed() {
    let (_dir, log) = store();
    let (mut child, mut out) = spawn_child("hold", log.dir(), "orders");
    let pid = child.id().expect("pid");
    assert_eq!(report(&mut out).await, "ACQUIRED");
    let err = log
        .acquire(LeaseRequest::new("orders", "parent", TTL))
        .await
        .expect_err("held by the child");
    assert!(err.is_lease_held(), "{err:?}");
    assert_eq!(err.lease_holder(), Some(holder_of(pid).as_str()));

    // `kill` is SIGKILL on Unix: the child gets no chance to clean up.
    child.kill().await.expect("kill the child");
    child.wait().await.expect("reap the child");

    match log.lease("orders").await.expect("lease") {
        LeaseState::Abandoned { lease } => {
            assert_eq!(lease.holder.to_string(), holder_of(pid));
        }
        other => panic!("a killed holder's lease: expected Abandoned, got {other:?}"),
    }
    let guard = log
        .acquire(LeaseRequest::new("orders", "parent", TTL))
        .await
        .expect("the OS freed the lock with the process");
    let takeover = guard.takeover().expect("the acquire is a takeover");
    assert_eq!(takeover.cause, TakeoverCause::HolderGone);
    assert_eq!(
        takeover.previous.as_ref().map(|p| p.holder.to_string()),
        Some(holder_of(pid)),
        "taken over from the killed child"
    );
    log.release(guard).await.expect("release");
    assert_eq!(log.lease("orders").await.expect("lease"), LeaseState::Free);
}

#[tokio::test]
async fn an_unreadable_record_under_a_held_lock_is_held_by_an_unknown_holder() {
    let (_dir, log) = store();
    let guard = log
        .acquire(LeaseRequest::new("orders", "alice", TTL))
        .await
        .expect("acquire");
    let path = log.lock_path("orders").expect("path");
    for record in [&b"{\"version\":9}"[..], b"garbage"] {
        fs::write(&path, record).expect("overwrite the record");
        let err = log
            .acquire(LeaseRequest::new("orders", "bob", TTL))
            .await
            .expect_err("never free");
        assert!(err.is_lease_held(), "{err:?}");
        assert!(
            err.lease_holder()
                .is_some_and(|h| h.starts_with("another process (")),
            "{err}"
        );
        assert!(
            matches!(
                log.lease("orders").await.expect("lease"),
                LeaseState::Unreadable { .. }
            ),
            "status shows an unknown holder"
        );
    }
    log.release(guard).await.expect("release");
}

#[tokio::test]
async fn a_live_holder_cannot_have_its_file_lease_broken() {
    let (_dir, log) = store();
    let guard = log
        .acquire(LeaseRequest::new("orders", "alice", TTL))
        .await
        .expect("acquire");
    let breaking =
        LeaseRequest::new("orders", "bob", TTL).breaking(kong_switch_core::state::BreakOf::Lease {
            token: guard.lease().token,
            renewed_at: guard.lease().renewed_at,
        });
    let err = log
        .acquire(breaking)
        .await
        .expect_err("the OS lock is held");
    assert!(
        err.to_string()
            .contains("cannot be broken while its process runs"),
        "{err}"
    );
    log.release(guard).await.expect("release");
}

#[tokio::test(flavor = "multi_thread")]
async fn appends_from_two_processes_do_not_interleave() {
    let (_dir, log) = store();
    let (mut a, mut a_out) = spawn_child("append", log.dir(), "orders");
    let (mut b, mut b_out) = spawn_child("append", log.dir(), "orders");
    let (a_report, b_report) = tokio::join!(report(&mut a_out), report(&mut b_out));
    assert_eq!((a_report.as_str(), b_report.as_str()), ("DONE", "DONE"));
    assert!(a.wait().await.expect("wait").success());
    assert!(b.wait().await.expect("wait").success());

    let history = log.history("orders").await.expect("history");
    assert!(history.is_clean(), "{:?}", history.corrupt);
    let seqs: Vec<u64> = history.events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=2 * CHILD_APPENDS as u64).collect();
    assert_eq!(seqs, expected, "one gapless sequence, in file order");
}

/// Not a test by itself: the child side of the multi-process tests, selected by
/// `KONG_SWITCH_STATE_TEST_CHILD`. Reports on stdout as `@@<report>` lines.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "helper run as a child process by the multi-process tests"]
async fn child_process_helper() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let dir = std::env::var(CHILD_DIR).expect("child dir");
    let target = std::env::var(CHILD_TARGET).expect("child target");
    let log = FileLog::open(dir).expect("open FileLog");
    match mode.as_str() {
        "hold" => {
            let request = LeaseRequest::for_this_process(&target, "child", TTL);
            match log.acquire(request).await {
                Ok(guard) => {
                    println!("\n@@ACQUIRED");
                    // Hold until killed (or until the parent goes away and stdin closes).
                    tokio::task::spawn_blocking(|| {
                        let mut sink = Vec::new();
                        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
                    })
                    .await
                    .expect("wait on stdin")
                    .expect("read stdin");
                    drop(guard);
                }
                Err(Error::LeaseHeld { holder, .. }) => println!("\n@@HELD {holder}"),
                Err(err) => println!("\n@@ERROR {err}"),
            }
        }
        "append" => {
            for i in 0..CHILD_APPENDS {
                let event = status(&target, &format!("pid {} #{i}", std::process::id()));
                log.append(event).await.expect("append");
            }
            println!("\n@@DONE");
        }
        other => panic!("unknown child mode {other:?}"),
    }
}
