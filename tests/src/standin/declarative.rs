//! Kong's declarative configuration: `POST /config` and `GET /config` in DB-less mode, and the
//! `--seed` file for every profile.

use serde_json::{Map, Value, json};

use super::KongVersion;
use super::admin::{Input, Query};
use super::entities::{self, Kind, Mode};
use super::errors::ApiError;
use super::http::{self as h, Body};
use super::node::Node;
use super::store::Config;
use hyper::{Response, StatusCode};

/// The root namespace of the ids Kong derives for declarative entities
/// (`kong/db/schema/others/declarative_config.lua`, `uuid_generators._entities`).
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0xfd02_801f_0957_4a15_a55a_c8d9_606f_30b5);

/// Entity types of real Kong that the stand-in accepts in a declarative file and ignores.
const IGNORED: &[&str] = &[
    "consumers",
    "plugins",
    "certificates",
    "ca_certificates",
    "snis",
    "vaults",
    "keys",
    "key_sets",
    "acls",
    "keyauth_credentials",
    "basicauth_credentials",
    "parameters",
    "filter_chains",
    "consumer_groups",
];

/// Kong's answer to a `config` field that is not a string (`kong-2.8.5/proxy-errors.txt` and
/// `kong-3.9.3/proxy-errors.txt`, install prefix as in Kong's packages).
const NOT_A_STRING: &str = "failed parsing declarative configuration: \
    /usr/local/openresty/luajit/share/lua/5.1/lyaml/init.lua:460: bad argument #1 to 'parser' \
    (must provide a string argument)";

/// The id Kong derives for an entity of `table` with `key` when the document gives none: a
/// uuid v5 of `key` in the namespace uuid v5(root, `table`). The keys: services, routes and
/// upstreams their `name`; a target `<target>:<upstream id>` on 2.8 (endpoint key composed with
/// its parent) and `targets:*:<upstream id>:<target>` on 3.x (its cache key), `<target>` as
/// written. Checked against the transcripts: service `bg` → `8f766980-…`, route `bg` →
/// `fb5fd4f4-…`, upstream `bg-blue` → `ee8df3ef-…`, its target `127.0.0.1:19101` →
/// `1652af9f-…` (dbless.txt); service `shop` → `abfbe39c-…`, target `127.0.0.1:19301` of
/// `shop-up` → `7cb0aef0-…` (3.9.3 transcript). An entity without a key (an unnamed service or
/// route) gets a random id on every load, as in Kong.
fn derived_id(table: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => {
            let space = uuid::Uuid::new_v5(&NAMESPACE, table.as_bytes());
            uuid::Uuid::new_v5(&space, key.as_bytes()).to_string()
        }
        None => uuid::Uuid::new_v4().to_string(),
    }
}

fn target_key(version: KongVersion, upstream_id: &str, target: &str) -> String {
    match version {
        KongVersion::V28 => format!("{target}:{upstream_id}"),
        KongVersion::V3 => format!("targets:*:{upstream_id}:{target}"),
    }
}

fn only_dbless() -> ApiError {
    ApiError::message(
        StatusCode::BAD_REQUEST,
        "this endpoint is only available when Kong is configured to not use a database",
    )
}

/// `GET /config`: the current configuration as a YAML string.
pub(crate) fn get_config(node: &Node, _query: &Query) -> Result<Response<Body>, ApiError> {
    if !node.shared.profile.is_dbless() {
        return Err(only_dbless());
    }
    let config = node.shared.store.current();
    let version = node.shared.profile.version();
    let mut doc = Map::new();
    doc.insert(
        "_format_version".into(),
        json!(if version == KongVersion::V3 {
            "3.0"
        } else {
            "2.1"
        }),
    );
    doc.insert("_transform".into(), json!(false));
    for (table, foreign) in [
        ("services", None),
        ("routes", Some("service")),
        ("upstreams", None),
        ("targets", Some("upstream")),
    ] {
        let items: Vec<Value> = config
            .table(table)
            .values()
            .map(|v| {
                let mut v = v.clone();
                if let Some(field) = foreign {
                    v[field] = v[field]["id"].clone();
                }
                v
            })
            .collect();
        if !items.is_empty() {
            doc.insert(table.into(), Value::Array(items));
        }
    }
    let yaml = to_yaml(&Value::Object(doc));
    Ok(h::json(StatusCode::OK, &json!({ "config": yaml })))
}

/// `POST /config`: replaces the whole configuration.
pub(crate) fn post_config(
    node: &Node,
    query: &Query,
    input: &Input,
) -> Result<Response<Body>, ApiError> {
    if !node.shared.profile.is_dbless() {
        return Err(only_dbless());
    }
    let version = node.shared.profile.version();
    let (document, raw_string) = match input {
        Input::Unsupported => return Ok(h::nginx_html(StatusCode::UNSUPPORTED_MEDIA_TYPE)),
        Input::BadJson => return Err(ApiError::bad_json()),
        Input::Empty => (Map::new(), None),
        Input::Json(m) | Input::Form(m) => match m.get("config") {
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(doc)) => (doc, Some(text.clone())),
                _ => {
                    return Err(ApiError::message(
                        StatusCode::BAD_REQUEST,
                        "failed parsing declarative configuration: the stand-in reads JSON only",
                    ));
                }
            },
            // Kong hands `config` to its YAML parser, which needs a string
            // (proxy-errors.txt, both versions).
            Some(Value::Object(_) | Value::Array(_) | Value::Number(_) | Value::Bool(_)) => {
                let mut fields = Map::new();
                fields.insert("error".into(), json!(NOT_A_STRING));
                return Err(ApiError::declarative(fields));
            }
            _ => (m.clone(), None),
        },
    };
    let hash = match &raw_string {
        Some(text) => md5_hex(text.as_bytes()),
        None => md5_hex(Value::Object(document.clone()).to_string().as_bytes()),
    };
    let check = matches!(query.get("check_hash"), Some("1" | "true"));
    let hash_comparable = raw_string.is_some() || version == KongVersion::V3;
    if check && hash_comparable && node.shared.store.config_hash().as_deref() == Some(hash.as_str())
    {
        return Ok(h::empty(StatusCode::NOT_MODIFIED));
    }
    let config = load(&document, version)?;
    let body = response_body(&config, version);
    node.shared.store.replace(node.index, config, hash);
    Ok(h::json(StatusCode::CREATED, &body))
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(bytes))
}

fn response_body(config: &Config, version: KongVersion) -> Value {
    let mut out = Map::new();
    for table in ["services", "routes", "upstreams", "targets"] {
        let mut map = Map::new();
        for (id, entity) in config.table(table) {
            let value = if version == KongVersion::V28 {
                strip_nulls(entity)
            } else {
                entity.clone()
            };
            map.insert(id.clone(), value);
        }
        out.insert(table.into(), Value::Object(map));
    }
    Value::Object(out)
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Validates a declarative document and builds the configuration it describes.
pub(crate) fn load(
    document: &Map<String, Value>,
    version: KongVersion,
) -> Result<Config, ApiError> {
    let mut errs = Map::new();
    let versions: &[&str] = match version {
        KongVersion::V28 => &["1.1", "2.1"],
        KongVersion::V3 => &["1.1", "2.1", "3.0"],
    };
    match document.get("_format_version") {
        None | Some(Value::Null) => {
            errs.insert("_format_version".into(), json!("required field missing"));
        }
        Some(Value::String(v)) if versions.contains(&v.as_str()) => {}
        Some(_) => {
            errs.insert(
                "_format_version".into(),
                json!(format!("expected one of: {}", versions.join(", "))),
            );
        }
    }
    for key in document.keys() {
        let known = key.starts_with('_')
            || IGNORED.contains(&key.as_str())
            || ["services", "routes", "upstreams", "targets"].contains(&key.as_str());
        if !known {
            errs.insert(key.clone(), json!("unknown field"));
        }
    }
    let mut config = Config::default();
    load_services(document, version, &mut config, &mut errs);
    load_upstreams(document, version, &mut config, &mut errs);
    if errs.is_empty() {
        Ok(config)
    } else {
        Err(ApiError::declarative(errs))
    }
}

fn list<'a>(
    document: &'a Map<String, Value>,
    key: &str,
    errs: &mut Map<String, Value>,
) -> &'a [Value] {
    match document.get(key) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => &[],
        Some(_) => {
            errs.insert(key.into(), json!("expected an array"));
            &[]
        }
    }
}

fn fields_of(err: ApiError) -> Value {
    err.body
        .get("fields")
        .cloned()
        .unwrap_or_else(|| json!({ "@entity": [err.body["message"]] }))
}

fn set_error(errs: &mut Map<String, Value>, table: &str, index: usize, error: Value) {
    let slot = errs.entry(table.to_owned()).or_insert_with(|| json!([]));
    if let Value::Array(items) = slot {
        while items.len() <= index {
            items.push(Value::Null);
        }
        match (&mut items[index], error) {
            (Value::Object(existing), Value::Object(new)) => existing.extend(new),
            (slot, error) => *slot = error,
        }
    }
}

fn take_object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn load_services(
    doc: &Map<String, Value>,
    version: KongVersion,
    config: &mut Config,
    errs: &mut Map<String, Value>,
) {
    let mut pending_routes: Vec<(Option<usize>, usize, Map<String, Value>)> = Vec::new();
    for (i, item) in list(doc, "services", errs).iter().enumerate() {
        let mut input = take_object(item);
        let nested = input.remove("routes");
        if input.get("id").is_none_or(Value::is_null) {
            let key = input.get("name").and_then(Value::as_str);
            input.insert("id".into(), json!(derived_id("services", key)));
        }
        match entities::build(Kind::Service, input, None, Mode::Create, version, false)
            .and_then(|e| entities::store(Kind::Service, e, config))
        {
            Ok(service) => {
                if let Some(Value::Array(routes)) = nested {
                    for (j, r) in routes.iter().enumerate() {
                        let mut r = take_object(r);
                        r.insert("service".into(), json!({ "id": service["id"] }));
                        pending_routes.push((Some(i), j, r));
                    }
                }
            }
            Err(e) => set_error(errs, "services", i, fields_of(e)),
        }
    }
    for (j, r) in list(doc, "routes", errs).iter().enumerate() {
        let mut r = take_object(r);
        if let Some(Value::String(s)) = r.get("service").cloned() {
            let reference = if super::schema::is_uuid(&s) {
                json!({ "id": s })
            } else {
                json!({ "name": s })
            };
            r.insert("service".into(), reference);
        }
        pending_routes.push((None, j, r));
    }
    for (service_index, j, mut input) in pending_routes {
        if input.get("id").is_none_or(Value::is_null) {
            let key = input.get("name").and_then(Value::as_str);
            input.insert("id".into(), json!(derived_id("routes", key)));
        }
        let result = entities::resolve_service_ref(&mut input, config)
            .and_then(|()| entities::build(Kind::Route, input, None, Mode::Create, version, false))
            .and_then(|e| entities::store(Kind::Route, e, config));
        if let Err(e) = result {
            match service_index {
                Some(i) => {
                    let mut nested = Map::new();
                    let mut routes = Map::new();
                    set_error(&mut routes, "routes", j, fields_of(e));
                    nested.extend(routes);
                    set_error(errs, "services", i, Value::Object(nested));
                }
                None => set_error(errs, "routes", j, fields_of(e)),
            }
        }
    }
}

/// A target waiting for its upstream: (index of the nesting upstream, index, upstream id, input).
type PendingTarget = (Option<usize>, usize, String, Map<String, Value>);

fn load_upstreams(
    doc: &Map<String, Value>,
    version: KongVersion,
    config: &mut Config,
    errs: &mut Map<String, Value>,
) {
    let mut pending: Vec<PendingTarget> = Vec::new();
    for (i, item) in list(doc, "upstreams", errs).iter().enumerate() {
        let mut input = take_object(item);
        let nested = input.remove("targets");
        if input.get("id").is_none_or(Value::is_null) {
            let key = input.get("name").and_then(Value::as_str);
            input.insert("id".into(), json!(derived_id("upstreams", key)));
        }
        match entities::build(Kind::Upstream, input, None, Mode::Create, version, false)
            .and_then(|e| entities::store(Kind::Upstream, e, config))
        {
            Ok(up) => {
                if let Some(Value::Array(targets)) = nested {
                    let id = up["id"].as_str().unwrap_or_default().to_owned();
                    for (j, t) in targets.iter().enumerate() {
                        pending.push((Some(i), j, id.clone(), take_object(t)));
                    }
                }
            }
            Err(e) => set_error(errs, "upstreams", i, fields_of(e)),
        }
    }
    for (j, t) in list(doc, "targets", errs).iter().enumerate() {
        let t = take_object(t);
        let reference = match t.get("upstream") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(o)) => o
                .get("id")
                .or_else(|| o.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        match config.find("upstreams", &reference) {
            Some(up) => {
                let id = up["id"].as_str().unwrap_or_default().to_owned();
                pending.push((None, j, id, t));
            }
            None => set_error(
                errs,
                "targets",
                j,
                json!({ "upstream": "required field missing" }),
            ),
        }
    }
    for (upstream_index, j, upstream_id, input) in pending {
        let given_id = input.get("id").and_then(Value::as_str).map(str::to_owned);
        let written = input
            .get("target")
            .and_then(Value::as_str)
            .map(|t| target_key(version, &upstream_id, t));
        let result =
            entities::build_target(input, None, Mode::Create, &upstream_id, version, false)
                .and_then(|mut t| {
                    let address = t["target"].as_str().unwrap_or_default().to_owned();
                    if entities::find_target_by_address(config, &upstream_id, &address).is_some() {
                        return Err(entities::duplicate_target(&address, &upstream_id));
                    }
                    let id = given_id
                        .clone()
                        .unwrap_or_else(|| derived_id("targets", written.as_deref()));
                    t.insert("id".into(), json!(id));
                    config.targets.insert(id, Value::Object(t));
                    Ok(())
                });
        if let Err(e) = result {
            match upstream_index {
                Some(i) => {
                    let mut nested = Map::new();
                    set_error(&mut nested, "targets", j, fields_of(e));
                    set_error(errs, "upstreams", i, Value::Object(nested));
                }
                None => set_error(errs, "targets", j, fields_of(e)),
            }
        }
    }
}

/// A small YAML emitter for JSON values (block style, `~` for null).
fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "~".into(),
        Value::String(s) => {
            // Plain where libyaml writes it plain (dbless.txt: `target: 127.0.0.1:19101`,
            // `_format_version: '2.1'`): no indicator first, no `: `, nothing that reads as a
            // number (YAML 1.1 also reads `1:20` as one) or a boolean.
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
                && s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '/')
                && !s.ends_with(':')
                && !s.chars().all(|c| c.is_ascii_digit() || c == ':')
                && s.parse::<f64>().is_err()
                && !matches!(
                    s.as_str(),
                    "true" | "false" | "null" | "yes" | "no" | "on" | "off"
                );
            if plain {
                s.clone()
            } else {
                format!("'{}'", s.replace('\'', "''"))
            }
        }
        other => other.to_string(),
    }
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        emit(item, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        emit(item, indent, out);
                    }
                    Value::Object(_) => out.push_str(&format!("{pad}{k}: {{}}\n")),
                    Value::Array(_) => out.push_str(&format!("{pad}{k}: []\n")),
                    other => out.push_str(&format!("{pad}{k}: {}\n", scalar(other))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        emit(item, indent + 2, &mut inner);
                        let trimmed = inner.trim_start_matches(' ');
                        out.push_str(&format!("{pad}- {trimmed}"));
                    }
                    other => out.push_str(&format!("{pad}- {}\n", scalar(other))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}
