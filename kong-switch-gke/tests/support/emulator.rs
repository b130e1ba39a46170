//! The Firestore emulator of the Google Cloud CLI, started for a test run and stopped by its
//! process id.
//!
//! With `FIRESTORE_EMULATOR_HOST` set, that emulator is used and nothing is started.
//! Otherwise the emulator's jar is looked up in the Cloud SDK (`CLOUDSDK_ROOT_DIR`, the
//! directory of `gcloud` on `PATH`, `/usr/lib/google-cloud-sdk`, …) and run with `java` on
//! a free port. A missing emulator fails the test with a message saying so: never a skip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JAR: &str = "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar";
const MAIN_CLASS: &str = "com.google.cloud.datastore.emulator.firestore.CloudFirestore";
const STARTUP: Duration = Duration::from_secs(90);

/// A running emulator; stopped (by pid) when dropped, if this harness started it.
pub struct Emulator {
    host: String,
    child: Option<Child>,
    log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Emulator {
    /// The emulator of `FIRESTORE_EMULATOR_HOST`, or a new one on a free port.
    pub fn start() -> Emulator {
        if let Ok(host) = std::env::var("FIRESTORE_EMULATOR_HOST")
            && !host.trim().is_empty()
        {
            let mut emulator = Emulator {
                host: host.trim().to_owned(),
                child: None,
                log: PathBuf::new(),
                _dir: None,
            };
            emulator.wait_until_it_answers();
            return emulator;
        }
        let jar = find_jar();
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir for the emulator log");
        let log = dir.path().join("firestore-emulator.log");
        let out = std::fs::File::create(&log).expect("emulator log file");
        let err = out.try_clone().expect("emulator log file");
        let java = std::env::var("JAVA").unwrap_or_else(|_| "java".to_owned());
        let child = Command::new(&java)
            .arg("-Duser.language=en")
            .arg("-cp")
            .arg(&jar)
            .arg(MAIN_CLASS)
            .arg("start")
            .arg("--host=127.0.0.1")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run the Firestore emulator ({java} -cp {}): {e}; it needs Java 11+",
                    jar.display()
                )
            });
        let mut emulator = Emulator {
            host: format!("127.0.0.1:{port}"),
            child: Some(child),
            log,
            _dir: Some(dir),
        };
        emulator.wait_until_it_answers();
        emulator
    }

    /// `host:port`, as `FIRESTORE_EMULATOR_HOST` wants it.
    pub fn host(&self) -> &str {
        &self.host
    }

    fn wait_until_it_answers(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if answers(&self.host) {
                return;
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "the Firestore emulator exited ({status}) before answering:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the Firestore emulator at {} did not answer within {STARTUP:?}:\n{}",
                self.host,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // `Child::kill` signals exactly this process id: the JVM we started.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether `GET /` on `host` answers `200` (the emulator says `Ok`).
fn answers(host: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(host) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(format!("GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// The emulator jar in the first Cloud SDK that has it.
fn find_jar() -> PathBuf {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(root) = std::env::var("CLOUDSDK_ROOT_DIR") {
        roots.push(root.into());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let gcloud = dir.join("gcloud");
            if let Ok(real) = std::fs::canonicalize(&gcloud)
                && let Some(root) = real.parent().and_then(Path::parent)
            {
                roots.push(root.to_path_buf());
            }
        }
    }
    for fixed in [
        "/usr/lib/google-cloud-sdk",
        "/usr/share/google-cloud-sdk",
        "/opt/google-cloud-sdk",
        "/usr/local/google-cloud-sdk",
    ] {
        roots.push(fixed.into());
    }
    for root in &roots {
        let jar = root.join(JAR);
        if jar.is_file() {
            return jar;
        }
    }
    panic!(
        "the Firestore emulator is missing: no {JAR} under {}. Install it with \
         `gcloud components install cloud-firestore-emulator` (or the \
         google-cloud-cli-firestore-emulator package), or point FIRESTORE_EMULATOR_HOST at a \
         running emulator. The Firestore tests do not skip.",
        roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}
