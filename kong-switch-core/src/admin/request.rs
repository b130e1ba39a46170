//! Admin API requests as plain values.
//!
//! Every endpoint of the client is a pure function returning an [`AdminRequest`]; one
//! `execute` performs the I/O. A dry run prints these values, and the state log stores the
//! writes of a switch and of its undo in this form.

use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::{Deserialize, Serialize};

/// HTTP methods used against the Admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`: read.
    Get,
    /// `POST`: create (or `/config`).
    Post,
    /// `PATCH`: partial update.
    Patch,
    /// `PUT`: upsert (full replace) for most entities; update-only for targets.
    Put,
    /// `DELETE`: remove.
    Delete,
}

impl Method {
    /// Whether repeating the request is harmless, so it may be retried on transient errors.
    /// Only reads qualify: a retried write could apply twice or race another writer.
    pub fn is_read(self) -> bool {
        matches!(self, Method::Get)
    }

    /// The method as `reqwest` wants it.
    pub fn as_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Patch => reqwest::Method::PATCH,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        })
    }
}

/// One Admin API request, before it is sent.
///
/// `path` is relative to the Admin API root (and to the workspace prefix, if any), starts
/// with `/`, and has every dynamic segment percent-encoded. `query` holds decoded pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminRequest {
    /// HTTP method.
    pub method: Method,
    /// Path below the Admin API root, e.g. `/services/orders`.
    pub path: String,
    /// Query parameters, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<(String, String)>,
    /// JSON body, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// What the write changes, in words, for a body too large to show: a DB-less node's
    /// `POST /config` carries the whole declarative configuration, and is shown as
    /// `POST /config (service orders: host orders-blue → orders-green)`. Never sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

impl AdminRequest {
    /// A request without query or body.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        AdminRequest {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            summary: None,
        }
    }

    /// A `GET` of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::Get, path)
    }

    /// Adds a query parameter.
    #[must_use]
    pub fn with_query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Sets the JSON body.
    #[must_use]
    pub fn with_body(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Sets what the write changes, in words (see [`AdminRequest::summary`]).
    #[must_use]
    pub fn with_summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// Whether this request changes Kong.
    pub fn is_write(&self) -> bool {
        !self.method.is_read()
    }

    /// Whether the body is a whole declarative configuration (`POST /config`): shown by its
    /// summary, never in full.
    pub fn is_declarative(&self) -> bool {
        self.method == Method::Post && self.path == "/config"
    }

    /// The request as reports show it: the same, without the body of a declarative
    /// configuration (its [`summary`](AdminRequest::summary) says what changed).
    pub fn brief(&self) -> AdminRequest {
        if !self.is_declarative() {
            return self.clone();
        }
        AdminRequest {
            method: self.method,
            path: self.path.clone(),
            query: self.query.clone(),
            body: None,
            summary: self.describe_declarative(),
        }
    }

    /// The summary of a declarative write, else the size of its document, if it has one.
    fn describe_declarative(&self) -> Option<String> {
        self.summary.clone().or_else(|| {
            self.body.as_ref().map(|body| {
                format!(
                    "declarative configuration, {} bytes",
                    body.to_string().len()
                )
            })
        })
    }
}

/// Serde helpers for reports: requests serialized [`brief`](AdminRequest::brief), so a
/// DB-less write is `{"method", "path", "summary"}` instead of the whole configuration.
pub mod brief {
    use serde::Serializer;
    use serde::ser::SerializeSeq;

    use super::AdminRequest;

    /// Serializes one request briefly.
    pub fn one<S: Serializer>(request: &AdminRequest, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&request.brief(), s)
    }

    /// Serializes a list of requests briefly.
    pub fn many<S: Serializer>(requests: &[AdminRequest], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(requests.len()))?;
        for request in requests {
            seq.serialize_element(&request.brief())?;
        }
        seq.end()
    }
}

impl fmt::Display for AdminRequest {
    /// `PATCH /services/orders {"host":"orders-green"}`: the form the dry run prints. A
    /// declarative configuration is shown by what it changes:
    /// `POST /config (service orders: host orders-blue → orders-green)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        for (i, (k, v)) in self.query.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{}={}", encode_query(k), encode_query(v))?;
        }
        if self.is_declarative() {
            if let Some(what) = self.describe_declarative() {
                write!(f, " ({what})")?;
            }
        } else if let Some(body) = &self.body {
            write!(f, " {body}")?;
        }
        Ok(())
    }
}

/// Characters escaped in a path segment: controls, space, and the URL delimiters.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Characters escaped in a query key or value.
const QUERY: &AsciiSet = &SEGMENT.add(b'&').add(b'=').add(b'+');

/// Percent-encodes one path segment (a name, id or target address).
pub fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

fn encode_query(s: &str) -> String {
    utf8_percent_encode(s, QUERY).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display_shows_method_path_query_and_body() {
        let req = AdminRequest::new(Method::Patch, "/services/orders")
            .with_query("tags", "a,b")
            .with_body(json!({"host": "orders-green"}));
        assert_eq!(
            req.to_string(),
            r#"PATCH /services/orders?tags=a,b {"host":"orders-green"}"#
        );
    }

    #[test]
    fn segments_escape_slashes_and_spaces_but_keep_colons() {
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_segment("10.0.0.1:8000"), "10.0.0.1:8000");
        assert_eq!(encode_segment("[::1]:80"), "[::1]:80");
    }

    #[test]
    fn only_get_is_a_read() {
        assert!(Method::Get.is_read());
        for m in [Method::Post, Method::Patch, Method::Put, Method::Delete] {
            assert!(!m.is_read(), "{m}");
        }
    }

    #[test]
    fn round_trips_through_json() {
        let req = AdminRequest::new(Method::Put, "/upstreams/u/targets/t")
            .with_body(json!({"weight": 0}));
        let back: AdminRequest =
            serde_json::from_value(serde_json::to_value(&req).unwrap()).unwrap();
        assert_eq!(back, req);
    }
}
