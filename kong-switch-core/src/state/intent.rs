//! The write-ahead record of a run: [`Intent`], and what a log holds where one was written
//! ([`IntentRecord`]).
//!
//! An intent is appended before the first write of a run. A later run that finds it without
//! an outcome (the writer crashed) compares Kong with it and finishes or undoes the switch,
//! so an intent must be read exactly as it was meant or not at all: a record written in
//! another shape (another kong-switch version, an edited log) is kept as
//! [`IntentRecord::Unreadable`] with the reason, never decoded into a default that would say
//! "nothing was planned".

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::admin::AdminRequest;

/// The shape of [`Intent`] this kong-switch writes. Format 1 is the unversioned shape written
/// before the field existed (read the same way); a newer format is not guessed at.
pub const INTENT_FORMAT: u32 = 2;

fn format_1() -> u32 {
    1
}

/// The saved prior state of a switch, written before the first Kong write.
///
/// With it, a run that finds a dangling intent (the previous run crashed) can compare Kong
/// with `writes` and either finish the switch or apply `undo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// The record's shape: [`INTENT_FORMAT`] when written by this version; 1 when absent.
    #[serde(default = "format_1")]
    pub format: u32,
    /// `upstream`, `route` or `weights` (or the Kubernetes switch's kind).
    pub strategy: String,
    /// The side traffic leaves.
    pub from: String,
    /// The side traffic goes to.
    pub to: String,
    /// The Kong writes the switch will make, in order.
    pub writes: Vec<AdminRequest>,
    /// The writes that restore the prior state, in the order to apply them.
    pub undo: Vec<AdminRequest>,
    /// What the writer needs to recover the run: for the switch engine, its plans with every
    /// read-back check (see `switch::intent`). Opaque to the log.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub prior: Value,
    /// Set when a run's intent is split over several events (a batch writes one part per
    /// hundred services, so no event grows with the batch). Every part carries the run id
    /// and all are written before the first Kong write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<IntentPart>,
}

/// Which part of a run's intent an event holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentPart {
    /// 1-based.
    pub index: usize,
    /// How many parts the run's intent has.
    pub of: usize,
}

/// An intent found in the log that this kong-switch cannot decode.
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadableIntent {
    /// The record exactly as stored (written back unchanged).
    pub raw: Value,
    /// Why it cannot be read, naming the JSON path where decoding failed.
    pub reason: String,
}

/// What an event's `intent` field holds, as read.
///
/// ```
/// use kong_switch_core::state::IntentRecord;
///
/// let record: IntentRecord = serde_json::from_str(r#"{"format": 9, "strategy": "x"}"#).unwrap();
/// let IntentRecord::Unreadable(unreadable) = record else { panic!("a newer format is unreadable") };
/// assert!(unreadable.reason.contains("format 9"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum IntentRecord {
    /// Decoded.
    Readable(Intent),
    /// Not decodable by this version: what it found and why.
    Unreadable(UnreadableIntent),
}

impl IntentRecord {
    /// The intent, or why it cannot be read.
    ///
    /// # Errors
    ///
    /// The [`UnreadableIntent`] when the record could not be decoded.
    pub fn readable(&self) -> Result<&Intent, &UnreadableIntent> {
        match self {
            IntentRecord::Readable(intent) => Ok(intent),
            IntentRecord::Unreadable(unreadable) => Err(unreadable),
        }
    }

    /// Decodes a stored record: never fails, an undecodable one is
    /// [`IntentRecord::Unreadable`].
    pub fn from_value(raw: Value) -> IntentRecord {
        // A newer format is not guessed at, whatever else it holds.
        if let Some(format) = raw.get("format").and_then(Value::as_u64)
            && format > u64::from(INTENT_FORMAT)
        {
            return IntentRecord::Unreadable(UnreadableIntent {
                reason: format!(
                    "written in format {format} by a newer kong-switch; this one reads formats 1 to {INTENT_FORMAT}"
                ),
                raw,
            });
        }
        let decoded: Result<Intent, _> = serde_path_to_error::deserialize(&raw);
        match decoded {
            Ok(intent) => IntentRecord::Readable(intent),
            Err(e) => {
                let path = e.path().to_string();
                let at = if path == "." {
                    "the record".to_owned()
                } else {
                    format!("`{path}`")
                };
                IntentRecord::Unreadable(UnreadableIntent {
                    reason: format!("at {at}: {}", e.inner()),
                    raw,
                })
            }
        }
    }
}

impl Serialize for IntentRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IntentRecord::Readable(intent) => intent.serialize(serializer),
            IntentRecord::Unreadable(unreadable) => unreadable.raw.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for IntentRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(deserializer)?;
        if raw.is_null() {
            return Err(D::Error::custom("an intent record cannot be null"));
        }
        Ok(IntentRecord::from_value(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn readable() -> Value {
        json!({
            "format": 2,
            "strategy": "upstream",
            "from": "blue",
            "to": "green",
            "writes": [{"method": "PATCH", "path": "/services/orders", "body": {"host": "orders-green"}}],
            "undo": [{"method": "PATCH", "path": "/services/orders", "body": {"host": "orders-blue"}}],
            "prior": {"plans": []}
        })
    }

    #[test]
    fn a_current_record_round_trips_unchanged() {
        let record = IntentRecord::from_value(readable());
        let intent = record.readable().expect("readable");
        assert_eq!(intent.format, INTENT_FORMAT);
        assert_eq!(
            serde_json::to_value(&record).expect("serializes"),
            readable()
        );
    }

    #[test]
    fn a_record_without_format_is_format_1() {
        let mut raw = readable();
        raw.as_object_mut().expect("object").remove("format");
        let record = IntentRecord::from_value(raw);
        assert_eq!(record.readable().expect("readable").format, 1);
    }

    #[test]
    fn every_kind_of_undecodable_record_is_unreadable_with_its_reason_and_kept_verbatim() {
        let mut newer = readable();
        newer["format"] = json!(3);
        let mut writes_renamed = readable();
        writes_renamed["writes"] = json!([{"verb": "PATCH", "url": "/services/orders"}]);
        let mut from_missing = readable();
        from_missing.as_object_mut().expect("object").remove("from");
        let cases = [
            ("newer format", newer, "format 3"),
            ("writes in another shape", writes_renamed, "writes[0]"),
            ("a required field missing", from_missing, "from"),
            ("not an object", json!("intent"), "expected"),
            ("an array", json!([1, 2]), "expected"),
        ];
        for (case, raw, needle) in cases {
            let record = IntentRecord::from_value(raw.clone());
            let Err(unreadable) = record.readable() else {
                panic!("{case}: decoded as readable");
            };
            assert!(
                unreadable.reason.contains(needle),
                "{case}: reason {:?} does not name {needle:?}",
                unreadable.reason
            );
            assert_eq!(
                serde_json::to_value(&record).expect("serializes"),
                raw,
                "{case}: not kept verbatim"
            );
        }
    }
}
