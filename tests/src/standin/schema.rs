//! Entity schemas (defaults, validation, normalisation) for services, routes, upstreams and
//! targets, per Kong version. A tiny schema engine over `serde_json::Value`: it fills defaults,
//! rejects unknown fields and builds Kong's nested `fields` error tree.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value, json};

use super::KongVersion;

/// String flavours with their own validators.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Str {
    Any,
    NonEmpty,
    Path,
    Host,
    Utf8Name,
    UpstreamName,
    HostWithOptionalPort,
    Uuid,
}

/// A field's type.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Str(Str),
    Int {
        min: i64,
        max: i64,
    },
    Num {
        min: f64,
        max: f64,
    },
    Bool,
    OneOf(Vec<&'static str>),
    IntOneOf(Vec<i64>),
    Record(Vec<Field>),
    Array(Box<Kind>),
    Tags,
    Foreign,
    Map,
    /// Auto timestamp (integer seconds or float seconds); accepted as any number.
    Timestamp,
}

/// One schema field.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) default: Value,
    pub(crate) required: bool,
}

fn f(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        default: Value::Null,
        required: false,
    }
}

fn d(name: &'static str, kind: Kind, default: Value) -> Field {
    Field {
        name,
        kind,
        default,
        required: false,
    }
}

fn req(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        default: Value::Null,
        required: true,
    }
}

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

/// Validation context.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    pub(crate) version: KongVersion,
    /// Values came from a form: strings are coerced to the schema's types.
    pub(crate) form: bool,
}

/// Validates `input` against `fields`, filling defaults. `Err` holds Kong's `fields` tree.
pub(crate) fn validate_record(
    fields: &[Field],
    input: &Map<String, Value>,
    ctx: Ctx,
) -> Result<Map<String, Value>, Map<String, Value>> {
    let mut out = Map::new();
    let mut errs = Map::new();
    for key in input.keys() {
        if !fields.iter().any(|field| field.name == key) {
            errs.insert(key.clone(), json!("unknown field"));
        }
    }
    for field in fields {
        let value = input.get(field.name).cloned().unwrap_or(Value::Null);
        if value.is_null() {
            if field.required {
                errs.insert(field.name.to_owned(), json!("required field missing"));
                continue;
            }
            let filled = match &field.kind {
                Kind::Record(sub) if field.default.is_null() => {
                    match validate_record(sub, &Map::new(), ctx) {
                        Ok(rec) => Value::Object(rec),
                        Err(_) => Value::Null,
                    }
                }
                _ => field.default.clone(),
            };
            out.insert(field.name.to_owned(), filled);
            continue;
        }
        match validate_value(&field.kind, value, ctx) {
            Ok(v) => {
                out.insert(field.name.to_owned(), v);
            }
            Err(e) => {
                errs.insert(field.name.to_owned(), e);
            }
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

fn validate_value(kind: &Kind, value: Value, ctx: Ctx) -> Result<Value, Value> {
    match kind {
        Kind::Str(rule) => match value {
            Value::String(s) => check_str(*rule, &s)
                .map(|()| Value::String(s))
                .map_err(Value::String),
            _ => Err(json!("expected a string")),
        },
        Kind::Int { min, max } => {
            let n = match &value {
                Value::Number(n) => n.as_i64().or_else(|| {
                    n.as_f64()
                        .filter(|x| x.fract() == 0.0 && x.abs() < 9e15)
                        .map(|x| x as i64)
                }),
                Value::String(s) if ctx.form => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            let Some(n) = n else {
                return Err(json!("expected an integer"));
            };
            if n < *min || n > *max {
                return Err(json!(format!("value should be between {min} and {max}")));
            }
            Ok(json!(n))
        }
        Kind::Num { min, max } => {
            let n = match &value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) if ctx.form => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            let Some(x) = n else {
                return Err(json!("expected a number"));
            };
            if x < *min || x > *max {
                return Err(json!(format!(
                    "value should be between {} and {}",
                    fmt_num(*min),
                    fmt_num(*max)
                )));
            }
            Ok(value_num(&value, x))
        }
        Kind::Bool => match value {
            Value::Bool(b) => Ok(Value::Bool(b)),
            Value::String(s) if ctx.form && (s == "true" || s == "false") => {
                Ok(Value::Bool(s == "true"))
            }
            _ => Err(json!("expected a boolean")),
        },
        Kind::OneOf(options) => match value {
            Value::String(s) if options.contains(&s.as_str()) => Ok(Value::String(s)),
            Value::String(_) => Err(json!(format!("expected one of: {}", options.join(", ")))),
            _ => Err(json!("expected a string")),
        },
        Kind::IntOneOf(options) => {
            let n = match &value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) if ctx.form => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if options.contains(&n) => Ok(json!(n)),
                Some(_) => {
                    let list: Vec<String> = options.iter().map(i64::to_string).collect();
                    Err(json!(format!("expected one of: {}", list.join(", "))))
                }
                None => Err(json!("expected an integer")),
            }
        }
        Kind::Record(sub) => match value {
            Value::Object(map) => validate_record(sub, &map, ctx)
                .map(Value::Object)
                .map_err(Value::Object),
            _ => Err(json!("expected a record")),
        },
        Kind::Array(elem) => {
            let items = match value {
                Value::Array(items) => items,
                Value::String(s) if ctx.form => vec![Value::String(s)],
                Value::Object(map) if map.is_empty() => Vec::new(),
                _ => return Err(json!("expected an array")),
            };
            let mut out = Vec::with_capacity(items.len());
            let mut errs = Vec::with_capacity(items.len());
            let mut failed = false;
            for item in items {
                match validate_value(elem, item, ctx) {
                    Ok(v) => {
                        out.push(v);
                        errs.push(Value::Null);
                    }
                    Err(e) => {
                        failed = true;
                        errs.push(e);
                    }
                }
            }
            if failed {
                Err(Value::Array(errs))
            } else {
                Ok(Value::Array(out))
            }
        }
        Kind::Tags => {
            let items = match value {
                Value::Array(items) => items,
                Value::String(s) if ctx.form => vec![Value::String(s)],
                Value::Object(map) if map.is_empty() => Vec::new(),
                _ => return Err(json!("expected a set")),
            };
            let mut out: Vec<Value> = Vec::new();
            let mut errs = Vec::new();
            for item in items {
                match item {
                    Value::String(tag) => {
                        if valid_tag(&tag, ctx.version) {
                            if !out.iter().any(|v| v.as_str() == Some(tag.as_str())) {
                                out.push(Value::String(tag));
                            }
                        } else {
                            errs.push(json!(format!(
                                "invalid tag '{tag}': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"
                            )));
                        }
                    }
                    _ => errs.push(json!("expected a string")),
                }
            }
            if errs.is_empty() {
                Ok(Value::Array(out))
            } else {
                Err(Value::Array(errs))
            }
        }
        Kind::Foreign => match value {
            Value::Object(map) => match map.get("id") {
                Some(Value::String(id)) if is_uuid(id) => Ok(json!({ "id": id })),
                Some(_) => Err(json!({ "id": "expected a valid UUID" })),
                None => Err(json!({ "id": "required field missing" })),
            },
            Value::String(id) if ctx.form && is_uuid(&id) => Ok(json!({ "id": id })),
            _ => Err(json!("expected a record")),
        },
        Kind::Map => match value {
            Value::Object(map) => Ok(Value::Object(map)),
            _ => Err(json!("expected a map")),
        },
        Kind::Timestamp => match value {
            Value::Number(n) => Ok(Value::Number(n)),
            _ => Err(json!("expected a number")),
        },
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn value_num(original: &Value, x: f64) -> Value {
    match original {
        Value::Number(n) => Value::Number(n.clone()),
        _ if x.fract() == 0.0 => json!(x as i64),
        _ => json!(x),
    }
}

fn check_str(rule: Str, s: &str) -> Result<(), String> {
    match rule {
        Str::Any => Ok(()),
        Str::NonEmpty => {
            if s.is_empty() {
                Err("length must be at least 1".into())
            } else {
                Ok(())
            }
        }
        Str::Path => check_path(s),
        Str::Host => {
            if valid_host(s) {
                Ok(())
            } else {
                Err(format!("invalid value: {s}"))
            }
        }
        Str::HostWithOptionalPort => {
            let host = split_host_port(s).map(|(h, _)| h);
            match host {
                Some(h) if valid_host(&h) => Ok(()),
                _ => Err(format!("invalid value: {s}")),
            }
        }
        Str::Utf8Name => {
            let ok = !s.is_empty()
                && s.chars()
                    .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || ".-_~".contains(c));
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "invalid value '{s}': the only accepted ascii characters are alphanumerics or ., -, _, and ~"
                ))
            }
        }
        Str::UpstreamName => check_upstream_name(s),
        Str::Uuid => {
            if is_uuid(s) {
                Ok(())
            } else {
                Err("expected a valid UUID".into())
            }
        }
    }
}

fn check_path(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err("should start with: /".into());
    }
    if s.contains("//") {
        return Err("must not have empty segments".into());
    }
    Ok(())
}

fn check_upstream_name(s: &str) -> Result<(), String> {
    if s.parse::<Ipv4Addr>().is_ok() || s.parse::<Ipv6Addr>().is_ok() || bracketed_v6(s).is_some() {
        return Err(format!("Invalid name ('{s}'); no ip addresses allowed"));
    }
    if let Some((host, port)) = s.rsplit_once(':')
        && !port.is_empty()
        && port.chars().all(|c| c.is_ascii_digit())
        && valid_hostname(host)
    {
        return Err(format!("Invalid name ('{s}'); no port allowed"));
    }
    if valid_hostname(s) {
        Ok(())
    } else {
        Err(format!("Invalid name ('{s}'); must be a valid hostname"))
    }
}

/// A DNS-ish hostname: labels of alphanumerics, `-` and `_`, separated by dots.
pub(crate) fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        || s == "*"
        || s.strip_prefix("*.").is_some_and(valid_hostname)
}

/// Hostname or IP address.
pub(crate) fn valid_host(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok()
        || s.parse::<Ipv6Addr>().is_ok()
        || bracketed_v6(s).is_some()
        || valid_hostname(s)
}

fn bracketed_v6(s: &str) -> Option<Ipv6Addr> {
    s.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Splits `host[:port]`, `[v6]:port`, `[v6]` or a bare IPv6 address.
pub(crate) fn split_host_port(s: &str) -> Option<(String, Option<u32>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        addr.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse::<u32>().ok()?),
        };
        return Some((format!("[{addr}]"), port));
    }
    if s.parse::<Ipv6Addr>().is_ok() {
        return Some((format!("[{s}]"), None));
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), Some(port.parse::<u32>().ok()?))),
        None => Some((s.to_owned(), None)),
    }
}

/// Kong's full IPv6 form: `[0000:0000:...:0001]`.
fn expand_v6(addr: Ipv6Addr) -> String {
    let groups: Vec<String> = addr.segments().iter().map(|g| format!("{g:04x}")).collect();
    format!("[{}]", groups.join(":"))
}

/// Normalises a target address like Kong's DAO (`format_target`): default port 8000, IPv6
/// expanded and bracketed. `None` = "not a valid hostname or ip address".
pub(crate) fn normalize_target(s: &str) -> Option<String> {
    let (host, port) = split_host_port(s.trim())?;
    let port = port.unwrap_or(8000);
    if port > 65535 {
        return None;
    }
    if let Some(v6) = bracketed_v6(&host) {
        return Some(format!("{}:{port}", expand_v6(v6)));
    }
    if host.parse::<Ipv4Addr>().is_ok() || (valid_hostname(&host) && !host.starts_with('*')) {
        return Some(format!("{host}:{port}"));
    }
    None
}

/// Tag character rules: 2.8 refuses spaces; 3.x accepts them; `,` and `/` never.
fn valid_tag(tag: &str, version: KongVersion) -> bool {
    if tag.is_empty() {
        return false;
    }
    tag.chars().all(|c| {
        if c == ',' || c == '/' {
            return false;
        }
        if !c.is_ascii() {
            return true;
        }
        match version {
            KongVersion::V28 => c.is_ascii_graphic(),
            KongVersion::V3 => c.is_ascii_graphic() || c == ' ',
        }
    })
}

/// Whether `s` looks like a UUID (8-4-4-4-12 hex).
pub(crate) fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok() && s.len() == 36
}

// ---------------------------------------------------------------------------------------------
// Entity schemas
// ---------------------------------------------------------------------------------------------

fn statuses(codes: &[u16]) -> Value {
    json!(codes)
}

fn status_list(default: &[u16]) -> Field {
    d(
        "http_statuses",
        Kind::Array(Box::new(int(100, 999))),
        statuses(default),
    )
}

/// The `healthchecks` record with Kong's defaults (verified against REAL-2.8.5).
fn healthchecks(version: KongVersion) -> Kind {
    let mut active = vec![
        d(
            "type",
            Kind::OneOf(vec!["tcp", "http", "https", "grpc", "grpcs"]),
            json!("http"),
        ),
        d(
            "timeout",
            Kind::Num {
                min: 0.0,
                max: 65535.0,
            },
            json!(1),
        ),
        d("concurrency", int(1, 2_147_483_648), json!(10)),
        d("http_path", Kind::Str(Str::Path), json!("/")),
        f("https_sni", Kind::Str(Str::Host)),
        d("https_verify_certificate", Kind::Bool, json!(true)),
    ];
    if version == KongVersion::V3 {
        active.push(f("headers", Kind::Map));
    }
    active.push(f(
        "healthy",
        Kind::Record(vec![
            d(
                "interval",
                Kind::Num {
                    min: 0.0,
                    max: 65535.0,
                },
                json!(0),
            ),
            status_list(&[200, 302]),
            d("successes", int(0, 255), json!(0)),
        ]),
    ));
    active.push(f(
        "unhealthy",
        Kind::Record(vec![
            d(
                "interval",
                Kind::Num {
                    min: 0.0,
                    max: 65535.0,
                },
                json!(0),
            ),
            status_list(&[429, 404, 500, 501, 502, 503, 504, 505]),
            d("tcp_failures", int(0, 255), json!(0)),
            d("timeouts", int(0, 255), json!(0)),
            d("http_failures", int(0, 255), json!(0)),
        ]),
    ));
    let passive = vec![
        d(
            "type",
            Kind::OneOf(vec!["tcp", "http", "https", "grpc", "grpcs"]),
            json!("http"),
        ),
        f(
            "healthy",
            Kind::Record(vec![
                status_list(&[
                    200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305,
                    306, 307, 308,
                ]),
                d("successes", int(0, 255), json!(0)),
            ]),
        ),
        f(
            "unhealthy",
            Kind::Record(vec![
                status_list(&[429, 500, 503]),
                d("tcp_failures", int(0, 255), json!(0)),
                d("timeouts", int(0, 255), json!(0)),
                d("http_failures", int(0, 255), json!(0)),
            ]),
        ),
    ];
    Kind::Record(vec![
        d(
            "threshold",
            Kind::Num {
                min: 0.0,
                max: 100.0,
            },
            json!(0),
        ),
        f("active", Kind::Record(active)),
        f("passive", Kind::Record(passive)),
    ])
}

fn hash_on_values(version: KongVersion) -> Vec<&'static str> {
    let mut v = vec!["none", "consumer", "ip", "header", "cookie"];
    if version == KongVersion::V3 {
        v.extend(["path", "query_arg", "uri_capture"]);
    }
    v
}

/// Upstream fields in Kong's order of interest.
pub(crate) fn upstream_fields(version: KongVersion) -> Vec<Field> {
    let mut algorithms = vec!["consistent-hashing", "least-connections", "round-robin"];
    if version == KongVersion::V3 {
        algorithms.push("latency");
    }
    let mut fields = vec![
        f("id", Kind::Str(Str::Uuid)),
        f("created_at", Kind::Timestamp),
    ];
    if version == KongVersion::V3 {
        fields.push(f("updated_at", Kind::Timestamp));
    }
    fields.extend([
        req("name", Kind::Str(Str::UpstreamName)),
        d("algorithm", Kind::OneOf(algorithms), json!("round-robin")),
        d(
            "hash_on",
            Kind::OneOf(hash_on_values(version)),
            json!("none"),
        ),
        d(
            "hash_fallback",
            Kind::OneOf(hash_on_values(version)),
            json!("none"),
        ),
        f("hash_on_header", Kind::Str(Str::NonEmpty)),
        f("hash_fallback_header", Kind::Str(Str::NonEmpty)),
        f("hash_on_cookie", Kind::Str(Str::NonEmpty)),
        d("hash_on_cookie_path", Kind::Str(Str::Path), json!("/")),
    ]);
    if version == KongVersion::V3 {
        fields.extend([
            f("hash_on_query_arg", Kind::Str(Str::NonEmpty)),
            f("hash_fallback_query_arg", Kind::Str(Str::NonEmpty)),
            f("hash_on_uri_capture", Kind::Str(Str::NonEmpty)),
            f("hash_fallback_uri_capture", Kind::Str(Str::NonEmpty)),
        ]);
    }
    fields.extend([
        d("slots", int(10, 65536), json!(10000)),
        f("healthchecks", healthchecks(version)),
        f("tags", Kind::Tags),
        f("host_header", Kind::Str(Str::HostWithOptionalPort)),
        f("client_certificate", Kind::Foreign),
    ]);
    if version == KongVersion::V3 {
        fields.push(d("use_srv_name", Kind::Bool, json!(false)));
    }
    fields
}

/// Service fields.
pub(crate) fn service_fields() -> Vec<Field> {
    vec![
        f("id", Kind::Str(Str::Uuid)),
        f("created_at", Kind::Timestamp),
        f("updated_at", Kind::Timestamp),
        f("name", Kind::Str(Str::Utf8Name)),
        d("retries", int(0, 32767), json!(5)),
        d(
            "protocol",
            Kind::OneOf(vec![
                "grpc",
                "grpcs",
                "http",
                "https",
                "tcp",
                "tls",
                "tls_passthrough",
                "udp",
            ]),
            json!("http"),
        ),
        req("host", Kind::Str(Str::Host)),
        d("port", int(0, 65535), json!(80)),
        f("path", Kind::Str(Str::Path)),
        d("connect_timeout", int(1, 2_147_483_646), json!(60000)),
        d("write_timeout", int(1, 2_147_483_646), json!(60000)),
        d("read_timeout", int(1, 2_147_483_646), json!(60000)),
        f("tags", Kind::Tags),
        f("client_certificate", Kind::Foreign),
        f("tls_verify", Kind::Bool),
        f("tls_verify_depth", int(0, 64)),
        f(
            "ca_certificates",
            Kind::Array(Box::new(Kind::Str(Str::Uuid))),
        ),
        d("enabled", Kind::Bool, json!(true)),
    ]
}

/// Route fields (same set on 2.8 and 3.x with the traditional_compatible router).
pub(crate) fn route_fields() -> Vec<Field> {
    let strings = || Kind::Array(Box::new(Kind::Str(Str::NonEmpty)));
    vec![
        f("id", Kind::Str(Str::Uuid)),
        f("created_at", Kind::Timestamp),
        f("updated_at", Kind::Timestamp),
        f("name", Kind::Str(Str::Utf8Name)),
        d(
            "protocols",
            Kind::Array(Box::new(Kind::OneOf(vec![
                "grpc",
                "grpcs",
                "http",
                "https",
                "tcp",
                "tls",
                "tls_passthrough",
                "udp",
            ]))),
            json!(["http", "https"]),
        ),
        f("methods", strings()),
        f("hosts", strings()),
        f("paths", strings()),
        f("headers", Kind::Map),
        d(
            "https_redirect_status_code",
            Kind::IntOneOf(vec![426, 301, 302, 307, 308]),
            json!(426),
        ),
        d(
            "regex_priority",
            int(-2_147_483_648, 2_147_483_647),
            json!(0),
        ),
        d("strip_path", Kind::Bool, json!(true)),
        d("path_handling", Kind::OneOf(vec!["v0", "v1"]), json!("v0")),
        d("preserve_host", Kind::Bool, json!(false)),
        d("request_buffering", Kind::Bool, json!(true)),
        d("response_buffering", Kind::Bool, json!(true)),
        f("snis", strings()),
        f("sources", Kind::Array(Box::new(Kind::Map))),
        f("destinations", Kind::Array(Box::new(Kind::Map))),
        f("tags", Kind::Tags),
        f("service", Kind::Foreign),
    ]
}

/// Target fields (the address itself is checked by [`normalize_target`]).
pub(crate) fn target_fields(version: KongVersion) -> Vec<Field> {
    let mut fields = vec![
        f("id", Kind::Str(Str::Uuid)),
        f("created_at", Kind::Timestamp),
    ];
    if version == KongVersion::V3 {
        fields.push(f("updated_at", Kind::Timestamp));
    }
    fields.extend([
        req("target", Kind::Str(Str::Any)),
        d("weight", int(0, 65535), json!(100)),
        f("tags", Kind::Tags),
        f("upstream", Kind::Foreign),
    ]);
    fields
}

/// Route entity checks: paths must be paths, an http route needs a matching criterion.
pub(crate) fn route_entity_checks(route: &Map<String, Value>, errs: &mut Map<String, Value>) {
    if let Some(Value::Array(paths)) = route.get("paths") {
        let mut path_errs = Vec::new();
        let mut bad = false;
        for p in paths {
            let s = p.as_str().unwrap_or_default();
            if s.starts_with('~') {
                path_errs.push(Value::Null);
                continue;
            }
            match check_path(s) {
                Ok(()) => path_errs.push(Value::Null),
                Err(e) => {
                    bad = true;
                    path_errs.push(Value::String(e));
                }
            }
        }
        if bad {
            errs.insert("paths".into(), Value::Array(path_errs));
        }
    }
    let protocols: Vec<&str> = route
        .get("protocols")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let is_http = protocols.iter().any(|p| *p == "http" || *p == "https");
    let has = |k: &str| match route.get(k) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        _ => false,
    };
    if is_http
        && !["methods", "hosts", "headers", "paths", "snis"]
            .iter()
            .any(|k| has(k))
    {
        let last = if protocols.contains(&"https") {
            "https"
        } else {
            "http"
        };
        errs.insert(
            "@entity".into(),
            json!([format!(
                "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is '{last}'"
            )]),
        );
    }
}

/// Upstream entity checks (conditional hash fields).
pub(crate) fn upstream_entity_checks(up: &Map<String, Value>, errs: &mut Map<String, Value>) {
    let get = |k: &str| up.get(k).and_then(Value::as_str).map(str::to_owned);
    let hash_on = get("hash_on").unwrap_or_else(|| "none".into());
    let fallback = get("hash_fallback").unwrap_or_else(|| "none".into());
    let mut entity: Vec<Value> = Vec::new();
    let mut need = |cond_field: &str, field: &str, errs: &mut Map<String, Value>| {
        if up.get(field).is_none_or(Value::is_null) {
            entity.push(json!(format!(
                "failed conditional validation given value of field '{cond_field}'"
            )));
            errs.insert(field.into(), json!("required field missing"));
        }
    };
    match hash_on.as_str() {
        "header" => need("hash_on", "hash_on_header", errs),
        "cookie" => need("hash_on", "hash_on_cookie", errs),
        "query_arg" => need("hash_on", "hash_on_query_arg", errs),
        "uri_capture" => need("hash_on", "hash_on_uri_capture", errs),
        _ => {}
    }
    match fallback.as_str() {
        "header" => need("hash_fallback", "hash_fallback_header", errs),
        "cookie" => need("hash_fallback", "hash_on_cookie", errs),
        "query_arg" => need("hash_fallback", "hash_fallback_query_arg", errs),
        "uri_capture" => need("hash_fallback", "hash_fallback_uri_capture", errs),
        _ => {}
    }
    if (hash_on == "none" || hash_on == "cookie") && fallback != "none" {
        entity.push(json!(
            "failed conditional validation given value of field 'hash_on'"
        ));
        errs.insert("hash_fallback".into(), json!("expected one of: none"));
    }
    if !entity.is_empty() {
        entity.dedup();
        errs.insert("@entity".into(), Value::Array(entity));
    }
}

/// The `hash_on` / `algorithm` shorthand trap, applied to raw input.
pub(crate) fn upstream_shorthands(input: &mut Map<String, Value>) {
    let algorithm = input
        .get("algorithm")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if matches!(algorithm.as_deref(), Some("least-connections" | "latency")) {
        input.insert("hash_on".into(), Value::Null);
        return;
    }
    if let Some(Value::String(hash_on)) = input.get("hash_on") {
        let algorithm = if hash_on == "none" {
            "round-robin"
        } else {
            "consistent-hashing"
        };
        input.insert("algorithm".into(), json!(algorithm));
    }
}

/// The `url` shorthand on services: `http://host:port/path` → protocol, host, port, path.
pub(crate) fn service_url_shorthand(
    input: &mut Map<String, Value>,
) -> Result<(), Map<String, Value>> {
    let Some(url) = input.remove("url") else {
        return Ok(());
    };
    let Value::String(text) = url else {
        let mut errs = Map::new();
        errs.insert("url".into(), json!("expected a string"));
        return Err(errs);
    };
    let parsed = url::Url::parse(&text)
        .ok()
        .filter(|u| u.host_str().is_some());
    let Some(parsed) = parsed else {
        let mut errs = Map::new();
        errs.insert("url".into(), json!("missing host in url"));
        return Err(errs);
    };
    let scheme = parsed.scheme().to_owned();
    input.insert("protocol".into(), json!(scheme));
    input.insert("host".into(), json!(parsed.host_str().unwrap_or_default()));
    let port = parsed
        .port()
        .map(i64::from)
        .unwrap_or(match scheme.as_str() {
            "https" | "grpcs" | "tls" => 443,
            _ => 80,
        });
    input.insert("port".into(), json!(port));
    let after_scheme = text.split_once("://").map(|(_, r)| r).unwrap_or_default();
    let has_path = after_scheme.contains('/');
    input.insert(
        "path".into(),
        if has_path {
            json!(parsed.path())
        } else {
            Value::Null
        },
    );
    Ok(())
}

/// Recursively merges a PATCH into an entity: records merge, everything else is replaced.
pub(crate) fn merge_patch(
    base: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    fields: &[Field],
) {
    for (key, value) in patch {
        let sub = fields
            .iter()
            .find(|field| field.name == key)
            .and_then(|field| match &field.kind {
                Kind::Record(sub) => Some(sub),
                _ => None,
            });
        match (sub, base.get_mut(key), value) {
            (Some(sub), Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_patch(existing, incoming, sub);
            }
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Whether any health checking is configured (Kong's `is_upstream_using_healthcheck`).
pub(crate) fn healthchecks_enabled(upstream: &Value) -> bool {
    let hc = &upstream["healthchecks"];
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    num(&hc["active"]["healthy"]["interval"]) > 0.0
        || num(&hc["active"]["unhealthy"]["interval"]) > 0.0
        || num(&hc["passive"]["unhealthy"]["tcp_failures"]) > 0.0
        || num(&hc["passive"]["unhealthy"]["timeouts"]) > 0.0
        || num(&hc["passive"]["unhealthy"]["http_failures"]) > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_normalise_like_kong() {
        assert_eq!(
            normalize_target("127.0.0.1").as_deref(),
            Some("127.0.0.1:8000")
        );
        assert_eq!(
            normalize_target("[::1]:19003").as_deref(),
            Some("[0000:0000:0000:0000:0000:0000:0000:0001]:19003")
        );
        assert_eq!(
            normalize_target("localhost:19004").as_deref(),
            Some("localhost:19004")
        );
        assert_eq!(normalize_target("some invalid host"), None);
    }

    #[test]
    fn upstream_names() {
        assert!(check_upstream_name("blue.svc").is_ok());
        assert!(
            check_upstream_name("bad.svc:80")
                .unwrap_err()
                .contains("no port allowed")
        );
        assert!(
            check_upstream_name("10.0.0.1")
                .unwrap_err()
                .contains("no ip addresses allowed")
        );
    }
}
