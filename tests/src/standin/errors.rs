//! Kong's error bodies (`kong/db/errors.lua` shapes, as captured in the transcripts).

use hyper::StatusCode;
use serde_json::{Map, Value, json};

/// An Admin API answer that is not a success: status plus Kong's JSON body.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl ApiError {
    /// `{"message": ...}` with any status.
    pub(crate) fn message(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "message": message.into() }),
        }
    }

    /// Plain 404 `{"message":"Not found"}`.
    pub(crate) fn not_found() -> Self {
        Self::message(StatusCode::NOT_FOUND, "Not found")
    }

    /// 405 `{"message":"Method not allowed"}`.
    pub(crate) fn method_not_allowed() -> Self {
        Self::message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
    }

    /// 500 `{"message":"An unexpected error occurred"}`.
    pub(crate) fn unexpected() -> Self {
        Self::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An unexpected error occurred",
        )
    }

    /// 400 `{"message":"Cannot parse JSON body"}`.
    pub(crate) fn bad_json() -> Self {
        Self::message(StatusCode::BAD_REQUEST, "Cannot parse JSON body")
    }

    /// Code 2, schema violation, built from a `fields` tree.
    pub(crate) fn schema_violation(fields: Map<String, Value>) -> Self {
        let entries = flatten_violations(&fields);
        let message = if entries.len() == 1 {
            format!("schema violation ({})", entries[0])
        } else {
            format!(
                "{} schema violations ({})",
                entries.len(),
                entries.join("; ")
            )
        };
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "code": 2,
                "name": "schema violation",
                "message": message,
                "fields": Value::Object(fields),
            }),
        }
    }

    /// Code 5, 409: `UNIQUE violation detected on '{name="x"}'`.
    pub(crate) fn unique(fields: Map<String, Value>) -> Self {
        let message = format!("UNIQUE violation detected on '{}'", lua_inline_kv(&fields));
        Self {
            status: StatusCode::CONFLICT,
            body: json!({
                "code": 5,
                "name": "unique constraint violation",
                "message": message,
                "fields": Value::Object(fields),
            }),
        }
    }

    /// Code 3, primary key violation (an explicit id that already exists).
    pub(crate) fn primary_key(id: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "code": 3,
                "name": "primary key violation",
                "message": format!("primary key violation on key '{{id=\"{id}\"}}'"),
                "fields": { "id": id },
            }),
        }
    }

    /// Code 6, 404 for PATCH of a missing entity.
    pub(crate) fn entity_not_found(key: &str, value: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            body: json!({
                "code": 6,
                "name": "not found",
                "message": format!("could not find the entity with '{{{key}=\"{value}\"}}'"),
                "fields": { key: value },
            }),
        }
    }

    /// Code 4, a foreign key pointing nowhere.
    pub(crate) fn foreign_key(field: &str, reference: Map<String, Value>, entity: &str) -> Self {
        let message = format!(
            "the foreign key '{}' does not reference an existing '{entity}' entity.",
            lua_inline_kv(&reference)
        );
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "code": 4,
                "name": "foreign key violation",
                "message": message,
                "fields": { field: Value::Object(reference) },
            }),
        }
    }

    /// Code 4, `@referenced_by`: deleting a parent that still has children.
    pub(crate) fn referenced_by(child: &str, parent: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "code": 4,
                "name": "foreign key violation",
                "message": format!("an existing '{child}' entity references this '{parent}' entity"),
                "fields": { "@referenced_by": child },
            }),
        }
    }

    /// Code 7, bad offset.
    pub(crate) fn invalid_offset(offset: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "code": 7,
                "name": "invalid offset",
                "message": format!("'{offset}' is not a valid offset: bad json encoding"),
            }),
        }
    }

    /// Code 9, bad page size.
    pub(crate) fn invalid_size(message: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({ "code": 9, "name": "invalid size", "message": message }),
        }
    }

    /// Code 11, invalid options (`tags` filter).
    pub(crate) fn invalid_option(option: &str, problem: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "code": 11,
                "name": "invalid options",
                "message": format!("invalid option ({option}: {problem})"),
                "options": { option: problem },
            }),
        }
    }

    /// Code 12, 405: writes in DB-less mode.
    pub(crate) fn operation_unsupported(message: String) -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            body: json!({ "code": 12, "name": "operation unsupported", "message": message }),
        }
    }

    /// Code 14, invalid declarative configuration.
    pub(crate) fn declarative(fields: Map<String, Value>) -> Self {
        let message = format!(
            "declarative config is invalid: {}",
            lua_inline(&Value::Object(fields.clone()))
        );
        Self {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "code": 14,
                "name": "invalid declarative configuration",
                "message": message,
                "fields": Value::Object(fields),
            }),
        }
    }
}

/// Renders the `fields` tree the way Kong's message does: one level of nesting is flattened into
/// `a.b: msg`, deeper tables are pretty-printed as Lua tables; entity checks come bare.
fn flatten_violations(fields: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (key, value) in fields {
        match value {
            Value::String(msg) => out.push(format!("{key}: {msg}")),
            Value::Array(items) if key == "@entity" => {
                out.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Null => {}
                        Value::String(msg) => out.push(format!("{key}.{}: {msg}", i + 1)),
                        other => out.push(format!("{key}.{}: {}", i + 1, lua_pretty(other, 0))),
                    }
                }
            }
            Value::Object(inner) => {
                for (sub, item) in inner {
                    match item {
                        Value::String(msg) => out.push(format!("{key}.{sub}: {msg}")),
                        other => out.push(format!("{key}.{sub}: {}", lua_pretty(other, 0))),
                    }
                }
            }
            other => out.push(format!("{key}: {other}")),
        }
    }
    out.sort();
    out
}

/// `{name="x"}` style rendering of a flat key/value map.
fn lua_inline_kv(fields: &Map<String, Value>) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", lua_scalar(v)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn lua_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", s.replace('"', "\\\"")),
        Value::Object(_) | Value::Array(_) => lua_inline(v),
        other => other.to_string(),
    }
}

/// Compact Lua table text (`{services={{port="..."}}}`), keys sorted.
pub(crate) fn lua_inline(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}={}", lua_key(k), lua_inline(&map[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(lua_inline).collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Null => "nil".to_owned(),
        other => lua_scalar(other),
    }
}

fn lua_key(k: &str) -> String {
    let ident = !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !k.starts_with(|c: char| c.is_ascii_digit());
    if ident {
        k.to_owned()
    } else {
        format!("[\"{k}\"]")
    }
}

/// Multi-line Lua table text like Penlight's `pretty.write`.
fn lua_pretty(v: &Value, depth: usize) -> String {
    let pad = "  ".repeat(depth + 1);
    let close = "  ".repeat(depth);
    match v {
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, item)| format!("{pad}{} = {}", lua_key(k), lua_pretty(item, depth + 1)))
                .collect();
            format!("{{\n{}\n{close}}}", parts.join(",\n"))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|item| format!("{pad}{}", lua_pretty(item, depth + 1)))
                .collect();
            format!("{{\n{}\n{close}}}", parts.join(",\n"))
        }
        other => lua_scalar(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_violation_renders_like_kong() {
        let fields = json!({"healthchecks":{"active":{"healthy":{"successes":"value should be between 0 and 255"}}}});
        let err = ApiError::schema_violation(fields.as_object().cloned().unwrap_or_default());
        assert_eq!(
            err.body["message"],
            "schema violation (healthchecks.active: {\n  healthy = {\n    successes = \"value should be between 0 and 255\"\n  }\n})"
        );
    }

    #[test]
    fn two_violations_with_entity_check() {
        let fields = json!({"@entity":["failed conditional validation given value of field 'hash_on'"],"hash_on_header":"required field missing"});
        let err = ApiError::schema_violation(fields.as_object().cloned().unwrap_or_default());
        assert_eq!(
            err.body["message"],
            "2 schema violations (failed conditional validation given value of field 'hash_on'; hash_on_header: required field missing)"
        );
    }

    #[test]
    fn declarative_message() {
        let fields = json!({"services":[{"port":"value should be between 0 and 65535"}],"upstreams":[{"name":"Invalid name ('bad:80'); no port allowed"}]});
        let err = ApiError::declarative(fields.as_object().cloned().unwrap_or_default());
        assert_eq!(
            err.body["message"],
            "declarative config is invalid: {services={{port=\"value should be between 0 and 65535\"}},upstreams={{name=\"Invalid name ('bad:80'); no port allowed\"}}}"
        );
    }
}
