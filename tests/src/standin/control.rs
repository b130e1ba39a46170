//! The optional control endpoint of the binary: faults and the request log over HTTP.
//!
//! - `GET /log`, `GET /writes`, `DELETE /log`
//! - `GET /faults`, `POST /faults` (body: [`FaultSpec`]), `DELETE /faults`, `DELETE /faults/{id}`

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::faults::{Fault, FaultAction, FaultId, Faults, PathMatch, RequestLog};
use super::http::{self as h, Body, HangUp};

/// JSON form of a fault: `{"path":"/services/","match":"prefix","method":"PATCH",
/// "action":"respond","status":503,"times":1}`; actions: `delay` (`ms`), `respond` (`status`),
/// `respond_after_apply` (`status`), `drop`, `drop_after_apply`.
#[derive(Debug, Deserialize)]
pub struct FaultSpec {
    path: String,
    #[serde(default, rename = "match")]
    matching: Option<String>,
    #[serde(default)]
    method: Option<String>,
    action: String,
    #[serde(default)]
    ms: Option<u64>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    times: Option<u32>,
    #[serde(default)]
    node: Option<usize>,
}

impl FaultSpec {
    fn into_fault(self) -> Option<Fault> {
        let action = match self.action.as_str() {
            "delay" => FaultAction::Delay {
                ms: self.ms.unwrap_or(1000),
            },
            "respond" => FaultAction::Respond {
                status: self.status.unwrap_or(500),
            },
            "respond_after_apply" => FaultAction::RespondAfterApply {
                status: self.status.unwrap_or(500),
            },
            "drop" => FaultAction::Drop,
            "drop_after_apply" => FaultAction::DropAfterApply,
            "apply_late" => FaultAction::ApplyLate {
                ms: self.ms.unwrap_or(1000),
            },
            _ => return None,
        };
        let path = match self.matching.as_deref() {
            Some("exact") => PathMatch::Exact(self.path),
            _ => PathMatch::Prefix(self.path),
        };
        Some(Fault {
            method: self.method.map(|m| m.to_ascii_uppercase()),
            path,
            action,
            times: self.times,
            node: self.node,
        })
    }
}

fn describe(id: FaultId, fault: &Fault) -> Value {
    let (matching, path) = match &fault.path {
        PathMatch::Exact(p) => ("exact", p),
        PathMatch::Prefix(p) => ("prefix", p),
    };
    json!({
        "id": id.0,
        "path": path,
        "match": matching,
        "method": fault.method,
        "action": format!("{:?}", fault.action),
        "times": fault.times,
        "node": fault.node,
    })
}

/// Handles one control request.
pub(crate) async fn handle(
    faults: Faults,
    log: RequestLog,
    req: Request<Incoming>,
) -> Result<Response<Body>, HangUp> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let body = h::read_body(req.into_body(), 1024 * 1024)
        .await
        .unwrap_or_default();
    let resp = match (method, path.as_str()) {
        (Method::GET, "/log") => h::json(StatusCode::OK, &json!(log.entries())),
        (Method::GET, "/writes") => h::json(StatusCode::OK, &json!(log.writes())),
        (Method::DELETE, "/log") => {
            log.clear();
            h::empty(StatusCode::NO_CONTENT)
        }
        (Method::GET, "/faults") => {
            let list: Vec<Value> = faults
                .list()
                .iter()
                .map(|(id, f)| describe(*id, f))
                .collect();
            h::json(StatusCode::OK, &json!(list))
        }
        (Method::POST, "/faults") => match serde_json::from_slice::<FaultSpec>(&body)
            .ok()
            .and_then(FaultSpec::into_fault)
        {
            Some(fault) => {
                let id = faults.add(fault);
                h::json(StatusCode::CREATED, &json!({ "id": id.0 }))
            }
            None => h::json(
                StatusCode::BAD_REQUEST,
                &json!({ "message": "invalid fault" }),
            ),
        },
        (Method::DELETE, "/faults") => {
            faults.clear();
            h::empty(StatusCode::NO_CONTENT)
        }
        (Method::DELETE, p) if p.starts_with("/faults/") => {
            match p["/faults/".len()..].parse::<u64>() {
                Ok(id) => {
                    faults.remove(FaultId(id));
                    h::empty(StatusCode::NO_CONTENT)
                }
                Err(_) => h::json(StatusCode::NOT_FOUND, &json!({ "message": "Not found" })),
            }
        }
        _ => h::json(StatusCode::NOT_FOUND, &json!({ "message": "Not found" })),
    };
    Ok(resp)
}
