//! The real `kong-switch` binary against fake Admin APIs: exit codes, JSON shapes and the
//! one-line errors for bad input. (End-to-end runs against a full Kong stand-in live in the
//! workspace's `tests/` crate.)

use std::process::{Command, Output};

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "s3cr3t-admin-token-do-not-print";

fn kong_switch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kong-switch"))
        .args(args)
        .env_remove("KONG_ADMIN_URL")
        .env_remove("KONG_ADMIN_TOKEN")
        .env_remove("KONG_WORKSPACE")
        .env("KONG_SWITCH_STATE", std::env::temp_dir())
        .output()
        .expect("the kong-switch binary runs")
}

fn kong_switch_with_token(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kong-switch"))
        .args(args)
        .env_remove("KONG_ADMIN_URL")
        .env("KONG_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("the kong-switch binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn root_info(version: &str, role: &str, database: &str) -> Value {
    json!({
        "version": version,
        "tagline": "Welcome to kong",
        "hostname": "kong-node",
        "node_id": "0f906f1f-9c97-4d52-a234-b3224949383f",
        "lua_version": "LuaJIT 2.1.1700206165",
        "plugins": {"available_on_server": {}, "enabled_in_cluster": []},
        "configuration": {
            "role": role,
            "database": database,
            "db_update_frequency": 5,
            "worker_state_update_frequency": 5,
            "worker_consistency": if version.starts_with('2') { "strict" } else { "eventual" },
        }
    })
}

async fn kong_with_root(body: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Server", "kong/x")
                .set_body_json(body),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn ping_prints_version_and_mode_and_exits_zero() {
    let kong = kong_with_root(root_info("2.8.5", "traditional", "postgres")).await;
    let out = kong_switch(&["--admin-url", &kong.uri(), "ping"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Kong 2.8.5"), "{text}");
    assert!(text.contains("traditional mode"), "{text}");
}

#[tokio::test]
async fn ping_json_has_the_documented_shape() {
    let mut info = root_info("3.9.3", "traditional", "off");
    info["edition"] = json!("community");
    let kong = kong_with_root(info).await;
    let out = kong_switch(&["--admin-url", &kong.uri(), "--output", "json", "ping"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(doc["version"], "3.9.3");
    assert_eq!(doc["edition"], "community");
    assert_eq!(doc["mode"], "db_less");
    assert_eq!(doc["node_id"], "0f906f1f-9c97-4d52-a234-b3224949383f");
    assert!(doc["latency_ms"].is_u64());
    assert!(
        doc["admin_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1")
    );
}

#[tokio::test]
async fn ping_detects_a_hybrid_control_plane() {
    let kong = kong_with_root(root_info("3.9.3", "control_plane", "postgres")).await;
    let out = kong_switch(&["--admin-url", &kong.uri(), "--output", "json", "ping"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(doc["mode"], "hybrid_control_plane");
}

#[test]
fn ping_of_an_unreachable_kong_exits_10_with_one_line() {
    // Port 9 (discard) on loopback: nothing listens there in the test environment.
    let out = kong_switch(&[
        "--admin-url",
        "http://127.0.0.1:9",
        "--timeout",
        "2s",
        "ping",
    ]);
    assert_eq!(out.status.code(), Some(10), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unreachable_kong_in_json_mode_prints_an_error_document() {
    let out = kong_switch(&[
        "--admin-url",
        "http://127.0.0.1:9",
        "--output",
        "json",
        "--timeout",
        "2s",
        "ping",
    ]);
    assert_eq!(out.status.code(), Some(10));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(doc["error"]["exit_code"], 10);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:9")
    );
}

#[test]
fn an_admin_url_that_does_not_parse_is_a_usage_error() {
    let out = kong_switch(&["--admin-url", "not a url", "ping"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("not a url"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_scheme_other_than_http_or_https_is_refused() {
    let out = kong_switch(&["--admin-url", "ftp://127.0.0.1:8001", "ping"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("ftp"), "{err}");
    assert!(err.contains("http"), "{err}");
}

#[test]
fn an_unreadable_token_file_is_a_usage_error_naming_the_file() {
    let out = kong_switch(&[
        "--admin-url",
        "http://127.0.0.1:9",
        "--admin-token-file",
        "/nonexistent/kong-token",
        "ping",
    ]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--admin-token-file"), "{err}");
    assert!(err.contains("/nonexistent/kong-token"), "{err}");
}

#[tokio::test]
async fn a_kong_that_answers_html_is_reported_as_not_an_admin_api() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Content-Type", "text/html")
                .set_body_string("<html><body>Login</body></html>"),
        )
        .mount(&server)
        .await;
    let out = kong_switch(&["--admin-url", &server.uri(), "ping"]);
    assert_eq!(out.status.code(), Some(5), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--admin-url"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_kong_that_never_answers_times_out_with_exit_10() {
    // A listener that accepts connections but never replies.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let out = kong_switch(&["--admin-url", &url, "--timeout", "300ms", "ping"]);
    drop(listener);
    assert_eq!(out.status.code(), Some(10), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no answer") && err.contains("300ms"), "{err}");
}

#[tokio::test]
async fn the_token_is_sent_but_never_printed_even_at_trace_level() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .and(header("Kong-Admin-Token", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(root_info(
            "3.9.3",
            "traditional",
            "postgres",
        )))
        .expect(1..)
        .mount(&server)
        .await;
    let out = kong_switch_with_token(&["--admin-url", &server.uri(), "-vv", "ping"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(!stdout(&out).contains(TOKEN));
    assert!(!stderr(&out).contains(TOKEN));

    // And not in errors either: a 401 from Kong.
    let denied = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"message": "Invalid credentials. Token or User credentials required"}),
        ))
        .mount(&denied)
        .await;
    let out = kong_switch_with_token(&[
        "--admin-url",
        &denied.uri(),
        "-vv",
        "--output",
        "json",
        "ping",
    ]);
    assert_eq!(out.status.code(), Some(5));
    assert!(!stdout(&out).contains(TOKEN));
    assert!(!stderr(&out).contains(TOKEN));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
}

#[tokio::test]
async fn status_of_an_unknown_service_exits_5_naming_it() {
    let kong = kong_with_root(root_info("3.9.3", "traditional", "postgres")).await;
    Mock::given(method("GET"))
        .and(path("/services/nope"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not found"})))
        .mount(&kong)
        .await;
    // Nor is it the base name of a route strategy's pair.
    for side in ["nope-blue", "nope-green"] {
        Mock::given(method("GET"))
            .and(path(format!("/services/{side}")))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not found"})))
            .mount(&kong)
            .await;
    }
    let out = kong_switch(&["--admin-url", &kong.uri(), "status", "nope"]);
    assert_eq!(out.status.code(), Some(5), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("`nope`"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn help_lists_the_commands_and_exits_zero() {
    let out = kong_switch(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for word in ["ping", "status", "--admin-url", "--output"] {
        assert!(text.contains(word), "--help mentions {word}");
    }
}

#[test]
fn an_unknown_flag_exits_2() {
    let out = kong_switch(&["--frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_parallelism_of_zero_is_a_usage_error_naming_the_flag() {
    let cases: [&[&str]; 2] = [
        &["rollback", "tag:team=shop", "--parallelism", "0"],
        &["switch", "--tag", "team=shop", "--parallelism", "0"],
    ];
    for args in cases {
        let out = kong_switch(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("--parallelism") && err.contains("at least 1"),
            "{args:?}: {err}"
        );
    }
}
