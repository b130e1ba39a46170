//! Building and storing entities: defaults, shorthands, validation, uniqueness, foreign keys.
//! Shared by the Admin API (one entity at a time) and `/config` (whole documents).

use serde_json::{Map, Number, Value, json};

use super::KongVersion;
use super::errors::ApiError;
use super::schema::{self, Ctx, Field, is_uuid};
use super::store::Config;

/// The entity kinds with generic endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Service,
    Route,
    Upstream,
}

impl Kind {
    /// Table / URL name.
    pub(crate) fn table(self) -> &'static str {
        match self {
            Kind::Service => "services",
            Kind::Route => "routes",
            Kind::Upstream => "upstreams",
        }
    }

    fn fields(self, version: KongVersion) -> Vec<Field> {
        match self {
            Kind::Service => schema::service_fields(),
            Kind::Route => schema::route_fields(),
            Kind::Upstream => schema::upstream_fields(version),
        }
    }

    fn has_updated_at(self, version: KongVersion) -> bool {
        self != Kind::Upstream || version == KongVersion::V3
    }
}

/// How an entity is being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Create,
    Replace,
    Patch,
}

/// Unix seconds.
pub(crate) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Unix seconds with a millisecond fraction (Kong's `auto_timestamp_ms`).
pub(crate) fn now_ms_float() -> Value {
    let ms = chrono::Utc::now().timestamp_millis();
    Number::from_f64(ms as f64 / 1000.0).map_or(Value::Null, Value::Number)
}

fn schema_error(errs: Map<String, Value>) -> ApiError {
    ApiError::schema_violation(errs)
}

/// Resolves `service: {"name": ..}` / `{"id": ..}` on route input to `{"id": ..}`.
pub(crate) fn resolve_service_ref(
    input: &mut Map<String, Value>,
    config: &Config,
) -> Result<(), ApiError> {
    let Some(Value::Object(reference)) = input.get("service").cloned() else {
        return Ok(());
    };
    if let Some(Value::String(name)) = reference.get("name")
        && reference.get("id").is_none()
    {
        match config.find("services", name) {
            Some(service) => {
                input.insert("service".into(), json!({ "id": service["id"] }));
            }
            None => {
                let mut r = Map::new();
                r.insert("name".into(), json!(name));
                return Err(ApiError::foreign_key("service", r, "services"));
            }
        }
    }
    Ok(())
}

/// Builds the stored form of a service, route or upstream from `input`.
pub(crate) fn build(
    kind: Kind,
    mut input: Map<String, Value>,
    existing: Option<&Value>,
    mode: Mode,
    version: KongVersion,
    form: bool,
) -> Result<Map<String, Value>, ApiError> {
    let fields = kind.fields(version);
    match kind {
        Kind::Upstream => schema::upstream_shorthands(&mut input),
        Kind::Service => schema::service_url_shorthand(&mut input).map_err(schema_error)?,
        Kind::Route => {}
    }
    let ctx = Ctx { version, form };
    let candidate = match (mode, existing) {
        (Mode::Patch, Some(Value::Object(current))) => {
            for key in input.keys() {
                if !fields.iter().any(|f| f.name == key) {
                    let mut errs = Map::new();
                    errs.insert(key.clone(), json!("unknown field"));
                    return Err(schema_error(errs));
                }
            }
            let mut merged = current.clone();
            schema::merge_patch(&mut merged, &input, &fields);
            merged
        }
        _ => input,
    };
    let mut out = schema::validate_record(&fields, &candidate, ctx).map_err(schema_error)?;
    let mut errs = Map::new();
    match kind {
        Kind::Route => schema::route_entity_checks(&out, &mut errs),
        Kind::Upstream => schema::upstream_entity_checks(&out, &mut errs),
        Kind::Service => {}
    }
    if !errs.is_empty() {
        return Err(schema_error(errs));
    }
    let now = json!(now_secs());
    match existing {
        Some(current) => {
            out.insert("id".into(), current["id"].clone());
            out.insert("created_at".into(), current["created_at"].clone());
        }
        None => {
            if out["id"].is_null() {
                out.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
            }
            if out["created_at"].is_null() {
                out.insert("created_at".into(), now.clone());
            }
        }
    }
    if kind.has_updated_at(version) {
        out.insert("updated_at".into(), now);
    }
    Ok(out)
}

/// Checks `name` uniqueness and foreign keys, then stores the entity.
pub(crate) fn store(
    kind: Kind,
    entity: Map<String, Value>,
    config: &mut Config,
) -> Result<Value, ApiError> {
    let id = entity["id"].as_str().unwrap_or_default().to_owned();
    if let Some(Value::String(name)) = entity.get("name") {
        let clash = config
            .table(kind.table())
            .values()
            .any(|v| v["name"].as_str() == Some(name) && v["id"].as_str() != Some(id.as_str()));
        if clash {
            let mut fields = Map::new();
            fields.insert("name".into(), json!(name));
            return Err(ApiError::unique(fields));
        }
    }
    if kind == Kind::Route
        && let Some(service_id) = entity["service"]["id"].as_str()
        && !config.services.contains_key(service_id)
    {
        let mut r = Map::new();
        r.insert("id".into(), json!(service_id));
        return Err(ApiError::foreign_key("service", r, "services"));
    }
    let value = Value::Object(entity);
    config.table_mut(kind.table()).insert(id, value.clone());
    Ok(value)
}

/// Builds a target from input. `existing` for PUT/PATCH; `upstream_id` from the URL.
pub(crate) fn build_target(
    mut input: Map<String, Value>,
    existing: Option<&Value>,
    mode: Mode,
    upstream_id: &str,
    version: KongVersion,
    form: bool,
) -> Result<Map<String, Value>, ApiError> {
    let fields = schema::target_fields(version);
    input.remove("upstream");
    let mut candidate = match (mode, existing) {
        (Mode::Patch, Some(Value::Object(current))) => {
            for key in input.keys() {
                if !fields.iter().any(|f| f.name == key) {
                    let mut errs = Map::new();
                    errs.insert(key.clone(), json!("unknown field"));
                    return Err(schema_error(errs));
                }
            }
            let mut merged = current.clone();
            schema::merge_patch(&mut merged, &input, &fields);
            merged
        }
        _ => input,
    };
    if let (Some(current), None) = (existing, candidate.get("target")) {
        candidate.insert("target".into(), current["target"].clone());
    }
    candidate.insert("upstream".into(), json!({ "id": upstream_id }));
    let mut out = schema::validate_record(&fields, &candidate, Ctx { version, form })
        .map_err(schema_error)?;
    let raw = out["target"].as_str().unwrap_or_default().to_owned();
    let Some(normalized) = schema::normalize_target(&raw) else {
        let mut errs = Map::new();
        errs.insert(
            "target".into(),
            json!("Invalid target; not a valid hostname or ip address"),
        );
        return Err(schema_error(errs));
    };
    out.insert("target".into(), json!(normalized));
    let now = now_ms_float();
    match existing {
        Some(current) => {
            out.insert("id".into(), current["id"].clone());
            out.insert("created_at".into(), current["created_at"].clone());
        }
        None => {
            if out["id"].is_null() {
                out.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
            }
            if out["created_at"].is_null() {
                out.insert("created_at".into(), now.clone());
            }
        }
    }
    if version == KongVersion::V3 {
        out.insert("updated_at".into(), now);
    }
    Ok(out)
}

/// The existing target of `upstream_id` with the same (normalised) address.
pub(crate) fn find_target_by_address<'a>(
    config: &'a Config,
    upstream_id: &str,
    address: &str,
) -> Option<&'a Value> {
    config
        .targets_of(upstream_id)
        .find(|t| t["target"].as_str() == Some(address))
}

/// Looks a target of `upstream_id` up by id or by its stored address (not normalised, as on
/// real Kong 2.8.5).
pub(crate) fn find_target<'a>(
    config: &'a Config,
    upstream_id: &str,
    key: &str,
) -> Option<&'a Value> {
    if is_uuid(key) {
        return config
            .targets
            .get(key)
            .filter(|t| t["upstream"]["id"].as_str() == Some(upstream_id));
    }
    find_target_by_address(config, upstream_id, key)
}

/// UNIQUE violation for a duplicate target (3.x).
pub(crate) fn duplicate_target(target: &str, upstream_id: &str) -> ApiError {
    let mut fields = Map::new();
    fields.insert("target".into(), json!(target));
    fields.insert("upstream".into(), json!({ "id": upstream_id }));
    ApiError::unique(fields)
}
