//! Conformance by replay: every Admin API request recorded from real Kong
//! (`fixtures/transcripts/`, copies of the shared transcripts) is sent again, in order, to a
//! fresh stand-in of the same version and mode, and the stand-in must answer with the same
//! status and the same body, apart from values that differ on every run (ids and timestamps
//! inside entities, node ids). Map keys are compared as they are, so the ids Kong derives for a
//! declarative configuration (the keys of a `POST /config` answer) must match too.
//!
//! Stand-in only: the recordings use fixed names (`blue.svc`, `bg`), which a shared real Kong
//! may already hold.

mod common;

use std::path::PathBuf;

use common::Resp;
use kong_switch_tests::harness::Env;
use kong_switch_tests::standin::{Profile, StandIn};
use serde_json::Value;

/// One recorded request and Kong's answer.
#[derive(Debug)]
struct Exchange {
    method: String,
    path: String,
    body: Option<String>,
    status: u16,
    /// The JSON body Kong answered, when it answered one.
    answer: Option<Value>,
}

/// Values that differ on every run.
const VOLATILE: &[&str] = &["id", "created_at", "updated_at", "node_id"];

/// Answers that depend on the machine (plugins, pids, memory, endpoints), not on Kong's logic.
const MACHINE_SPECIFIC: &[&str] = &["/", "/status", "/endpoints"];

fn fixture(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/transcripts")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The `### METHOD PATH  body: {..}` blocks of the 2.8.5 recordings.
fn blocks_28(text: &str) -> Vec<Exchange> {
    text.split("\n### ")
        .filter_map(|block| {
            let block = block.strip_prefix("### ").unwrap_or(block);
            let mut lines = block.lines();
            let head = lines.next()?;
            let (request, body) = match head.split_once(" body: ") {
                Some((r, b)) => (r.trim(), Some(b.to_owned())),
                None => (head.trim(), None),
            };
            let (method, path) = request.split_once(' ')?;
            let rest: Vec<&str> = lines.collect();
            let status = rest
                .iter()
                .find_map(|l| l.strip_prefix("HTTP/1.1 "))
                .and_then(|s| s.split_whitespace().next())
                .and_then(|c| c.parse().ok())?;
            let answer = rest
                .iter()
                .rev()
                .find(|l| l.starts_with('{'))
                .and_then(|l| serde_json::from_str(l).ok());
            Some(Exchange {
                method: method.to_owned(),
                path: path.to_owned(),
                body,
                status,
                answer,
            })
        })
        .collect()
}

/// The `$ curl -s -i [-X M] URL [-H .. -d BODY]` exchanges of the 3.9.3 transcript with the
/// Admin API on `port`.
fn curls_3(text: &str, port: &str) -> Vec<Exchange> {
    let lines: Vec<&str> = text.lines().collect();
    let prefix = format!("http://127.0.0.1:{port}");
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("$ curl -s -i ") else {
            continue;
        };
        let (method, rest) = match rest.strip_prefix("-X ") {
            Some(r) => r.split_once(' ').unwrap_or((r, "")),
            None => ("GET", rest),
        };
        let (url, body) = match rest.split_once(" -H Content-Type: application/json -d ") {
            Some((u, b)) => (u, Some(b.to_owned())),
            None => (rest, None),
        };
        let Some(path) = url.strip_prefix(&prefix) else {
            continue;
        };
        let answer_lines: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| !l.starts_with("$ "))
            .copied()
            .collect();
        let Some(status) = answer_lines
            .iter()
            .find_map(|l| l.strip_prefix("HTTP/1.1 "))
            .and_then(|s| s.split_whitespace().next())
            .and_then(|c| c.parse().ok())
        else {
            continue;
        };
        let answer = answer_lines
            .iter()
            .find(|l| l.starts_with('{'))
            .and_then(|l| serde_json::from_str(l).ok());
        out.push(Exchange {
            method: method.to_owned(),
            path: path.to_owned(),
            body,
            status,
            answer,
        });
    }
    out
}

/// `v` with every volatile value (a non-null id, timestamp or node id) replaced by a marker;
/// arrays of entities in a canonical order unless `ordered` (their order in a DB-backed list
/// follows the random ids; Kong orders a target list newest first, which is compared).
fn normalised(v: &Value, ordered: bool) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, x)| {
                    let value = if VOLATILE.contains(&k.as_str()) && !x.is_null() {
                        Value::from("<varies>")
                    } else {
                        normalised(x, ordered)
                    };
                    (k.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(|x| normalised(x, ordered)).collect();
            if !ordered && items.iter().all(Value::is_object) {
                items.sort_by_key(|item| sorted_keys(item).to_string());
            }
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// `v` with the keys of every object in sorted order (a canonical text to sort by).
fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted_keys(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

/// The declarative configuration of a `GET /config` answer, parsed from its YAML.
fn config_of(answer: &Value) -> Value {
    let text = answer["config"].as_str().unwrap_or_default();
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("GET /config YAML: {e}\n{text}"))
}

/// How the stand-in's answer `got` differs from Kong's `want` for `exchange` (both as
/// compared), or `None` when they agree.
fn difference(exchange: &Exchange, want: &Value, got: &Value) -> Option<String> {
    let path = exchange.path.split('?').next().unwrap_or_default();
    let (want, got) = if exchange.method == "GET" && path == "/config" {
        (config_of(want), config_of(got))
    } else if exchange.path.contains("size=") && !path.ends_with("/targets") {
        // Which entities fill a page depends on the random ids: compare the page's shape.
        let shape = |v: &Value| {
            serde_json::json!({
                "data": v["data"].as_array().map(Vec::len),
                "next": v["next"].is_string(),
                "offset": v["offset"].is_string(),
            })
        };
        (shape(want), shape(got))
    } else {
        (want.clone(), got.clone())
    };
    let ordered = path.ends_with("/targets") || path.ends_with("/health");
    let (want, got) = (normalised(&want, ordered), normalised(&got, ordered));
    (want != got).then(|| format!("  Kong      {want}\n  stand-in  {got}"))
}

async fn send(env: &Env, exchange: &Exchange) -> Resp {
    let method = reqwest::Method::from_bytes(exchange.method.as_bytes())
        .unwrap_or_else(|e| panic!("{}: {e}", exchange.method));
    let mut req = env
        .client()
        .request(method, format!("{}{}", env.admin_url(), exchange.path));
    if let Some(body) = &exchange.body {
        req = req
            .header("content-type", "application/json")
            .body(body.clone());
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", exchange.path));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    Resp {
        status,
        headers,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// Replays `exchanges` into a fresh stand-in of `profile`; returns every difference.
async fn replay(profile: Profile, exchanges: &[Exchange]) -> Vec<String> {
    let env = Env::start_with(StandIn::builder().profile(profile)).await;
    assert!(env.is_standin(), "not ignored, so this is the stand-in");
    let mut differences = Vec::new();
    for exchange in exchanges {
        if MACHINE_SPECIFIC.contains(&exchange.path.as_str()) {
            continue;
        }
        // Kong's writes were milliseconds apart, and a target list is ordered by created_at
        // (milliseconds): keep the recorded requests apart too.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let got = send(&env, exchange).await;
        let what = format!("{} {} {}", exchange.method, exchange.path, {
            let b = exchange.body.as_deref().unwrap_or_default();
            b.chars().take(80).collect::<String>()
        });
        if got.status != exchange.status {
            differences.push(format!(
                "{what}: status {} (Kong {})",
                got.status, exchange.status
            ));
        }
        if let Some(want) = &exchange.answer
            && let Some(diff) = difference(exchange, want, &got.json)
        {
            differences.push(format!("{what}:\n{diff}"));
        }
    }
    differences
}

#[tokio::test]
#[cfg_attr(
    real_kong,
    ignore = "needs the stand-in: replays recorded requests with fixed names"
)]
async fn the_2_8_stand_in_answers_the_recorded_admin_api_requests_like_kong_2_8_5() {
    let exchanges = blocks_28(&fixture("kong-2.8.5/admin-api-transcript.txt"));
    assert!(exchanges.len() > 70, "{} exchanges parsed", exchanges.len());
    let differences = replay(Profile::V28, &exchanges).await;
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[tokio::test]
#[cfg_attr(
    real_kong,
    ignore = "needs the stand-in: replays recorded requests with fixed names"
)]
async fn the_2_8_db_less_stand_in_answers_the_recorded_requests_like_kong_2_8_5() {
    let exchanges = blocks_28(&fixture("kong-2.8.5/dbless.txt"));
    assert!(exchanges.len() > 10, "{} exchanges parsed", exchanges.len());
    let differences = replay(Profile::DbLess28, &exchanges).await;
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[tokio::test]
#[cfg_attr(
    real_kong,
    ignore = "needs the stand-in: replays recorded requests with fixed names"
)]
async fn the_3x_stand_ins_answer_the_recorded_requests_like_kong_3_9_3() {
    let text = fixture("kong-3.9.3/transcript.txt");
    let traditional = curls_3(&text, "28001");
    let dbless = curls_3(&text, "28021");
    assert!(
        traditional.len() >= 7 && dbless.len() >= 3,
        "{} + {} exchanges parsed",
        traditional.len(),
        dbless.len()
    );
    let mut differences = replay(Profile::V3, &traditional).await;
    differences.extend(replay(Profile::DbLess3, &dbless).await);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
