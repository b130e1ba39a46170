//! Admin API connection settings as a value, with a `#[must_use]` builder.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;
use url::Url;

use super::error::{Error, Result};

/// How to reach and authenticate against one Kong Admin API.
///
/// Built with [`AdminConfig::builder`]. `Debug` never shows the token, header values, the
/// client key, or credentials that were part of the base URL.
#[derive(Clone)]
pub struct AdminConfig {
    pub(crate) base_url: Url,
    pub(crate) basic_auth: Option<(String, Option<SecretString>)>,
    pub(crate) token: Option<SecretString>,
    pub(crate) headers: HeaderMap,
    pub(crate) workspace: Option<String>,
    pub(crate) ca_certs: Vec<reqwest::Certificate>,
    pub(crate) identity: Option<reqwest::Identity>,
    pub(crate) insecure_skip_verify: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) retry: RetryPolicy,
}

impl AdminConfig {
    /// Default connect timeout.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default request timeout.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

    /// Parses and validates the base URL (http/https only; path prefix kept, e.g.
    /// `https://gw.example.com/kong-admin`). Errors name the field and the fix.
    ///
    /// User info in the URL (`https://user:pass@gw`) is moved out of it and sent as HTTP basic
    /// auth; [`AdminConfig::base_url`] and every error show the URL without it.
    pub fn builder(base_url: &str) -> Result<AdminConfigBuilder> {
        let (base_url, basic_auth) = parse_base_url(base_url)?;
        Ok(AdminConfigBuilder {
            config: AdminConfig {
                base_url,
                basic_auth,
                token: None,
                headers: HeaderMap::new(),
                workspace: None,
                ca_certs: Vec::new(),
                identity: None,
                insecure_skip_verify: false,
                connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
                request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
                retry: RetryPolicy::default(),
            },
            ca_bundle_pem: None,
            client_identity_pem: None,
        })
    }

    /// The base URL, without user info and without a trailing `/`.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The Enterprise workspace inserted before entity paths, if any.
    pub fn workspace(&self) -> Option<&str> {
        self.workspace.as_deref()
    }

    /// Time allowed for one request, from sending to the end of the body.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Time allowed to establish a connection.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How reads are retried.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Whether TLS certificate verification is off.
    pub fn insecure_skip_verify(&self) -> bool {
        self.insecure_skip_verify
    }

    /// Whether a token is configured (the token itself is never exposed here).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("AdminConfig")
            .field("base_url", &self.base_url.as_str())
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|_| "[redacted]"),
            )
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("headers", &header_names)
            .field("workspace", &self.workspace)
            .field("ca_certs", &self.ca_certs.len())
            .field("identity", &self.identity.as_ref().map(|_| "[redacted]"))
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Builder of [`AdminConfig`]; start with [`AdminConfig::builder`].
#[must_use]
pub struct AdminConfigBuilder {
    config: AdminConfig,
    ca_bundle_pem: Option<Vec<u8>>,
    client_identity_pem: Option<Vec<u8>>,
}

impl fmt::Debug for AdminConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfigBuilder")
            .field("config", &self.config)
            .field("ca_bundle_pem", &self.ca_bundle_pem.as_ref().map(Vec::len))
            .field(
                "client_identity_pem",
                &self.client_identity_pem.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl AdminConfigBuilder {
    /// The RBAC token, sent as `Kong-Admin-Token` on every request.
    pub fn token(mut self, token: SecretString) -> Self {
        self.config.token = Some(token);
        self
    }

    /// An extra header sent on every request (name and value validated). Its value is marked
    /// sensitive and never shown.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self> {
        let header_name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            Error::invalid(
                "header",
                format!("`{name}` is not a valid HTTP header name; use letters, digits and `-`"),
            )
        })?;
        let mut header_value = HeaderValue::from_str(value).map_err(|_| {
            Error::invalid(
                "header",
                format!(
                    "the value of header `{header_name}` contains characters not allowed in \
                     HTTP headers (control characters or non-ASCII)"
                ),
            )
        })?;
        header_value.set_sensitive(true);
        self.config.headers.append(header_name, header_value);
        Ok(self)
    }

    /// Enterprise workspace: entity paths become `/{ws}/services…`. `GET /`, `/status`,
    /// `/config` and `/clustering/…` are not prefixed.
    pub fn workspace(mut self, ws: impl Into<String>) -> Self {
        self.config.workspace = Some(ws.into());
        self
    }

    /// CA certificates (PEM; one or several) trusted in addition to the system roots.
    pub fn ca_bundle_pem(mut self, pem: Vec<u8>) -> Self {
        self.ca_bundle_pem = Some(pem);
        self
    }

    /// Client certificate and private key (PEM, both in one buffer) for mutual TLS.
    pub fn client_identity_pem(mut self, cert_and_key_pem: Vec<u8>) -> Self {
        self.client_identity_pem = Some(cert_and_key_pem);
        self
    }

    /// Accept any server certificate. Only for tests and throwaway setups.
    pub fn insecure_skip_verify(mut self, yes: bool) -> Self {
        self.config.insecure_skip_verify = yes;
        self
    }

    /// Time allowed to establish a connection (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }

    /// Time allowed for one request (default 30 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.config.request_timeout = d;
        self
    }

    /// How reads (GETs) are retried on transient errors. Writes are never retried.
    pub fn retries(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// Validates everything and returns the configuration.
    pub fn build(self) -> Result<AdminConfig> {
        let mut config = self.config;
        if let Some(ws) = &config.workspace {
            validate_workspace(ws)?;
        }
        if config.connect_timeout.is_zero() {
            return Err(Error::invalid(
                "connect_timeout",
                "must be greater than zero",
            ));
        }
        if config.request_timeout.is_zero() {
            return Err(Error::invalid(
                "request_timeout",
                "must be greater than zero",
            ));
        }
        if let Some(pem) = &self.ca_bundle_pem {
            config.ca_certs = parse_ca_bundle(pem)?;
        }
        if let Some(pem) = &self.client_identity_pem {
            config.identity = Some(parse_identity(pem)?);
        }
        Ok(config)
    }
}

/// How reads are retried on transient errors (connect failures, timeouts, 500/502/503/504).
///
/// Only `GET` requests are ever retried: a retried write could apply twice or race another
/// writer. The wait before retry `n` (0-based) is `initial_backoff * 2^n`, at most
/// `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of any wait.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// No retries at all.
    pub const fn none() -> RetryPolicy {
        RetryPolicy {
            max_retries: 0,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        }
    }

    /// The wait before retry number `retry` (0-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

impl Default for RetryPolicy {
    /// 3 retries, 100 ms doubling, at most 2 s.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

type BasicAuth = (String, Option<SecretString>);

fn parse_base_url(input: &str) -> Result<(Url, Option<BasicAuth>)> {
    const FIELD: &str = "admin_url";
    let input = input.trim();
    let shown = if input.contains('@') {
        "the given URL".to_owned()
    } else {
        format!("`{input}`")
    };
    let mut url = Url::parse(input).map_err(|e| {
        Error::invalid(
            FIELD,
            format!(
                "{shown} is not a URL ({e}); give --admin-url with its scheme, e.g. \
                 http://localhost:8001"
            ),
        )
    })?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(Error::invalid(
                FIELD,
                format!(
                    "scheme `{other}` is not supported; --admin-url must start with http:// or \
                     https:// (e.g. http://localhost:8001)"
                ),
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(
            FIELD,
            "the URL has no host; give --admin-url like http://localhost:8001",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid(
            FIELD,
            "the URL must not carry a query or fragment; give only scheme, host, port and an \
             optional path prefix",
        ));
    }
    let basic_auth = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        let user = percent_decode(url.username());
        let password = url
            .password()
            .map(|p| SecretString::from(percent_decode(p)));
        // Both setters only fail for URLs without a host, which was ruled out above.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Some((user, password))
    };
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok((url, basic_auth))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn validate_workspace(ws: &str) -> Result<()> {
    if ws.is_empty() {
        return Err(Error::invalid(
            "workspace",
            "is empty; leave it unset for the default workspace",
        ));
    }
    if ws.contains(['/', '?', '#', '%']) || ws.chars().any(char::is_whitespace) {
        return Err(Error::invalid(
            "workspace",
            format!("`{ws}` is not a workspace name; give the name alone, without `/`"),
        ));
    }
    Ok(())
}

fn parse_ca_bundle(pem: &[u8]) -> Result<Vec<reqwest::Certificate>> {
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
        Error::invalid(
            "ca_bundle",
            format!(
                "could not read the CA bundle as PEM ({e}); give a PEM file of CA certificates"
            ),
        )
    })?;
    if certs.is_empty() {
        return Err(Error::invalid(
            "ca_bundle",
            "no PEM certificate (`-----BEGIN CERTIFICATE-----`) found in the CA bundle; \
             give a PEM file of CA certificates (DER is not supported)",
        ));
    }
    Ok(certs)
}

fn parse_identity(pem: &[u8]) -> Result<reqwest::Identity> {
    let text = String::from_utf8_lossy(pem);
    if !text.contains("-----BEGIN CERTIFICATE-----") || !text.contains("PRIVATE KEY-----") {
        return Err(Error::invalid(
            "client_identity",
            "the client identity needs a PEM certificate and its PEM private key in one file",
        ));
    }
    reqwest::Identity::from_pem(pem).map_err(|e| {
        Error::invalid(
            "client_identity",
            format!(
                "could not read the client certificate and key ({e}); give one PEM file with \
                 the certificate and its private key"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn path_prefix_is_kept_and_trailing_slash_dropped() {
        let c = AdminConfig::builder("https://gw.example.com/kong-admin/")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.base_url().as_str(), "https://gw.example.com/kong-admin");
    }

    #[test]
    fn only_http_and_https_are_accepted() {
        for bad in ["ftp://gw", "localhost:8001", "unix:/var/run/kong.sock"] {
            let err = AdminConfig::builder(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidConfig {
                        field: "admin_url",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("--admin-url"), "{err}");
        }
        let err = AdminConfig::builder("not a url").unwrap_err();
        assert!(err.to_string().contains("http://localhost:8001"), "{err}");
    }

    #[test]
    fn user_info_is_moved_out_of_the_url() {
        let c = AdminConfig::builder("http://admin:s3cr%40t@gw:8001")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.base_url().as_str(), "http://gw:8001/");
        let (user, pass) = c.basic_auth.as_ref().unwrap();
        assert_eq!(user, "admin");
        assert_eq!(pass.as_ref().unwrap().expose_secret(), "s3cr@t");
        assert!(!format!("{c:?}").contains("s3cr"));
    }

    #[test]
    fn bad_url_with_credentials_is_not_echoed() {
        let err = AdminConfig::builder("ftp://u:hunter2@gw").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = AdminConfig::builder("http://u:hunter2@").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(4), Duration::from_millis(1600));
        assert_eq!(p.backoff(5), Duration::from_secs(2));
        assert_eq!(p.backoff(40), Duration::from_secs(2));
    }

    #[test]
    fn workspace_must_be_one_segment() {
        let err = AdminConfig::builder("http://gw")
            .unwrap()
            .workspace("a/b")
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidConfig {
                field: "workspace",
                ..
            }
        ));
    }

    #[test]
    fn bad_header_names_and_values_are_refused() {
        let b = AdminConfig::builder("http://gw").unwrap();
        assert!(matches!(
            b.header("bad header", "x"),
            Err(Error::InvalidConfig {
                field: "header",
                ..
            })
        ));
        let b = AdminConfig::builder("http://gw").unwrap();
        assert!(b.header("X-Ok", "line\nbreak").is_err());
    }
}
