//! The one error type of the Admin API client.

use std::fmt;
use std::time::Duration;

use crate::model::Mode;

use super::Method;

/// `Result` with the client's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a Kong Admin API.
///
/// No variant ever carries the admin token, header values, or credentials from the base URL:
/// URLs are shown without user info and reqwest errors are stripped of their URL.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration input: names the field and the fix.
    #[error("invalid {field}: {message}")]
    InvalidConfig {
        /// The configuration field (or request parameter) at fault.
        field: &'static str,
        /// What is wrong and what to do about it.
        message: String,
    },

    /// Could not connect (refused, DNS, TLS handshake).
    #[error(
        "{method} {url}: could not connect to the Kong Admin API; check --admin-url and that Kong is running"
    )]
    Connect {
        /// Method of the request that failed.
        method: Method,
        /// URL of the request, without credentials.
        url: String,
        /// The transport error (its URL removed).
        #[source]
        source: reqwest::Error,
    },

    /// No answer within the request timeout.
    #[error("{method} {path}: no answer from the Kong Admin API within {after:?}")]
    Timeout {
        /// Method of the request that timed out.
        method: Method,
        /// Path of the request.
        path: String,
        /// The request timeout that expired.
        after: Duration,
    },

    /// Kong answered non-2xx with its error body decoded (boxed: it is the largest variant).
    #[error(transparent)]
    Kong(Box<KongError>),

    /// Answer that is not what the Admin API sends (HTML, truncated JSON...).
    #[error(
        "{method} {path}: HTTP {status} with a body that is not Kong Admin API JSON \
         (content type {}): {snippet:?}; this does not look like a Kong Admin API; check --admin-url",
        content_type.as_deref().unwrap_or("none")
    )]
    UnexpectedBody {
        /// Method of the request.
        method: Method,
        /// Path of the request.
        path: String,
        /// HTTP status of the answer.
        status: u16,
        /// `Content-Type` of the answer, if any.
        content_type: Option<String>,
        /// The start of the body, control characters removed.
        snippet: String,
    },

    /// JSON decoded but not into the expected type: names the JSON path.
    #[error("{method} {path}: unexpected JSON from Kong at `{json_path}`: {message}")]
    Decode {
        /// Method of the request.
        method: Method,
        /// Path of the request.
        path: String,
        /// Where in the document decoding failed, e.g. `data[2].weight`.
        json_path: String,
        /// What was wrong there.
        message: String,
    },

    /// A write refused locally because the node cannot take it (DB-less/data plane).
    #[error(
        "refusing {request}: the Kong node runs in {mode} mode and does not take this write \
         (DB-less nodes change only through POST /config; hybrid writes go to the control plane)"
    )]
    ReadOnly {
        /// The node's mode.
        mode: Mode,
        /// The refused request, as `METHOD /path`.
        request: String,
    },

    /// A request body could not be encoded as JSON.
    #[error("{method} {path}: could not encode the request body as JSON: {message}")]
    Encode {
        /// Method of the request.
        method: Method,
        /// Path of the request.
        path: String,
        /// The serializer's message.
        message: String,
    },

    /// Any other transport failure (connection reset while reading the body, …).
    #[error("{method} {url}: the connection to the Kong Admin API failed")]
    Transport {
        /// Method of the request.
        method: Method,
        /// URL of the request, without credentials.
        url: String,
        /// The transport error (its URL removed).
        #[source]
        source: reqwest::Error,
    },
}

impl Error {
    /// Whether Kong said the entity (or path) does not exist: a Kong JSON 404.
    ///
    /// A 404 whose body is not Kong's JSON (a proxy's HTML page, say) is not "not found": it
    /// means the URL does not reach an Admin API.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Kong(e) if e.status == 404)
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Kong(e) => Some(e.status),
            Error::UnexpectedBody { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: connect failures, timeouts, 500/502/503/504.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::Kong(_) | Error::UnexpectedBody { .. } => {
                self.status().is_some_and(is_transient_status)
            }
            _ => false,
        }
    }

    /// Whether a write that failed this way may still have been applied: the request went out
    /// and no answer proves Kong refused it (no answer in time, the connection lost after
    /// sending, a 5xx from Kong or from a proxy in front of it, a 2xx that did not decode).
    /// Connect failures, local refusals and Kong's 4xx answers prove it was not applied.
    pub fn may_have_applied(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Transport { .. } | Error::Decode { .. } => true,
            Error::Kong(_) | Error::UnexpectedBody { .. } => {
                self.status().is_none_or(|status| status >= 500)
            }
            Error::InvalidConfig { .. }
            | Error::Connect { .. }
            | Error::ReadOnly { .. }
            | Error::Encode { .. } => false,
        }
    }

    /// Kong's error code (`code` in its error body), if Kong sent one.
    pub fn kong_code(&self) -> Option<i64> {
        match self {
            Error::Kong(e) => e.code,
            _ => None,
        }
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::InvalidConfig {
            field,
            message: message.into(),
        }
    }
}

/// Statuses worth retrying a read on.
pub(crate) fn is_transient_status(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

/// A non-2xx answer of the Admin API with Kong's JSON error body.
///
/// Kong's DAO errors carry `code`, `name`, `message` and `fields`; other errors carry only
/// `message` (`{"message":"Not found"}`). Errors with `options` instead of `fields` (code 11,
/// invalid options) have the options in `fields`.
#[derive(Debug, Clone, PartialEq)]
pub struct KongError {
    /// Method of the request.
    pub method: Method,
    /// Path of the request (below the base URL and workspace).
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// Kong's `message`.
    pub message: Option<String>,
    /// Kong's `name` (`schema violation`, `unique constraint violation`, …).
    pub name: Option<String>,
    /// Kong's `code` (2 schema violation, 5 unique violation, 6 not found, 12 DB-less, …).
    pub code: Option<i64>,
    /// Kong's `fields` (or `options`): which field failed and why.
    pub fields: Option<serde_json::Value>,
}

impl fmt::Display for KongError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: Kong answered {}",
            self.method, self.path, self.status
        )?;
        match &self.message {
            Some(message) => write!(f, ": {message}")?,
            None => f.write_str(" without a message")?,
        }
        match (&self.name, self.code) {
            (Some(name), Some(code)) => write!(f, " ({name}, code {code})")?,
            (Some(name), None) => write!(f, " ({name})")?,
            (None, Some(code)) => write!(f, " (code {code})")?,
            (None, None) => {}
        }
        if let Some(fields) = &self.fields {
            write!(f, "; fields: {fields}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KongError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn kong(status: u16) -> Error {
        Error::Kong(Box::new(KongError {
            method: Method::Get,
            path: "/services/x".into(),
            status,
            message: Some("Not found".into()),
            name: None,
            code: None,
            fields: None,
        }))
    }

    #[test]
    fn only_kong_404_is_not_found() {
        assert!(kong(404).is_not_found());
        assert!(!kong(400).is_not_found());
        let html_404 = Error::UnexpectedBody {
            method: Method::Get,
            path: "/services/x".into(),
            status: 404,
            content_type: Some("text/html".into()),
            snippet: "<html>".into(),
        };
        assert!(!html_404.is_not_found());
        assert_eq!(html_404.status(), Some(404));
    }

    #[test]
    fn server_errors_are_transient_client_errors_are_not() {
        for status in [500, 502, 503, 504] {
            assert!(kong(status).is_transient(), "{status}");
        }
        for status in [400, 404, 405, 409, 501] {
            assert!(!kong(status).is_transient(), "{status}");
        }
    }

    #[test]
    fn kong_error_display_names_request_status_message_and_code() {
        let e = KongError {
            method: Method::Patch,
            path: "/services/nope".into(),
            status: 404,
            message: Some("could not find the entity with '{name=\"nope\"}'".into()),
            name: Some("not found".into()),
            code: Some(6),
            fields: None,
        };
        assert_eq!(
            e.to_string(),
            "PATCH /services/nope: Kong answered 404: could not find the entity with \
             '{name=\"nope\"}' (not found, code 6)"
        );
    }
}
