use std::fmt;

use serde::{Deserialize, Serialize};

use crate::admin::encode_segment;

/// A name or an id, as used in Admin API paths (`/services/{name or id}`).
///
/// Kong treats a segment that parses as a UUID as an id, and anything else as the entity's
/// endpoint key (`name` for services, routes and upstreams; the address for targets).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NameOrId(String);

impl NameOrId {
    /// Wraps a name or id.
    pub fn new(value: impl Into<String>) -> Self {
        NameOrId(value.into())
    }

    /// The raw value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether Kong will read this as an id.
    pub fn is_uuid(&self) -> bool {
        uuid::Uuid::parse_str(&self.0).is_ok()
    }

    /// The value percent-encoded for use as one path segment.
    pub fn to_segment(&self) -> String {
        encode_segment(&self.0)
    }
}

impl fmt::Display for NameOrId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NameOrId {
    fn from(value: &str) -> Self {
        NameOrId(value.to_owned())
    }
}

impl From<String> for NameOrId {
    fn from(value: String) -> Self {
        NameOrId(value)
    }
}

impl From<&String> for NameOrId {
    fn from(value: &String) -> Self {
        NameOrId(value.clone())
    }
}

/// A foreign key as Kong writes it: `{"id": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    /// The referenced entity's id.
    pub id: String,
}

impl EntityRef {
    /// A reference to the entity with this id.
    pub fn new(id: impl Into<String>) -> Self {
        EntityRef { id: id.into() }
    }
}

/// A Kong timestamp in Unix seconds.
///
/// Services, routes and upstreams carry whole seconds (`1795562177`); targets carry seconds
/// with a millisecond fraction (`1795562177.807`). The number is kept as Kong sent it, so it
/// serializes back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(serde_json::Number);

impl Timestamp {
    /// Seconds since the Unix epoch.
    pub fn as_secs_f64(&self) -> f64 {
        self.0.as_f64().unwrap_or_default()
    }

    /// The instant (millisecond precision), if it is within chrono's range.
    pub fn to_datetime(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        // Kong's precision is milliseconds; rounding there avoids float noise (…806.999…).
        chrono::DateTime::from_timestamp_millis((self.as_secs_f64() * 1000.0).round() as i64)
    }
}

impl From<i64> for Timestamp {
    fn from(secs: i64) -> Self {
        Timestamp(secs.into())
    }
}

/// One page of a Kong list endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The entities of this page.
    pub data: Vec<T>,
    /// Path (with query) of the next page, `None` on the last page.
    #[serde(default)]
    pub next: Option<String>,
    /// Opaque token to pass as `offset` for the next page; present only when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_integer_and_float_forms() {
        let int: Timestamp = serde_json::from_str("1795562177").unwrap();
        let float: Timestamp = serde_json::from_str("1795562177.807").unwrap();
        assert_eq!(serde_json::to_string(&int).unwrap(), "1795562177");
        assert_eq!(serde_json::to_string(&float).unwrap(), "1795562177.807");
        assert_eq!(int.to_datetime().unwrap().timestamp(), 1_795_562_177);
        let ms = float.to_datetime().unwrap().timestamp_subsec_millis();
        assert_eq!(ms, 807);
    }

    #[test]
    fn name_or_id_recognises_uuids() {
        assert!(NameOrId::from("f49de267-f9df-4397-9f07-4042403c204d").is_uuid());
        assert!(!NameOrId::from("orders-blue").is_uuid());
        assert_eq!(NameOrId::from("a b").to_segment(), "a%20b");
    }

    #[test]
    fn last_page_has_no_offset() {
        let page: Page<serde_json::Value> =
            serde_json::from_str(r#"{"data":[],"next":null}"#).unwrap();
        assert!(page.next.is_none() && page.offset.is_none());
    }
}
