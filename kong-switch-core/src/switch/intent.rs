//! What the engine saves in a run's intent, and how it reads it back.
//!
//! Every run, of one service or a batch, writes the same record: a
//! [`state::Intent`](crate::state::Intent) of the current format whose `prior` holds the
//! run's [`Plan`]s (`{"plans": [...]}`), every write with its undo and the values Kong showed
//! before it. A batch splits the plans over several intent events ([`IntentPart`]s).
//!
//! Reading is strict: a record that does not decode, or a batch whose parts do not form a
//! prefix of the run's intent, is [`Unreadable`], with the reason. The engine never decides
//! what Kong shows from a plan it could not read (no plan is not "nothing changed").

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::state::{Event, EventKind, INTENT_FORMAT, Intent, IntentPart, IntentRecord};

use super::plan::Plan;

/// The shape of `prior` in a format-2 intent.
#[derive(Serialize)]
struct SavedPlans<'a> {
    plans: &'a [Plan],
}

/// Why the plans of a run cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreadable {
    /// The run whose intent it is.
    pub run_id: Option<Uuid>,
    /// The log position of the (first) unreadable intent event.
    pub seq: u64,
    /// What is wrong, naming the JSON path where decoding failed.
    pub reason: String,
}

/// The intent of a run moving `plans` from `from` to `to` (colors), in the current format.
pub(crate) fn intent_of(
    strategy: &str,
    from: &str,
    to: &str,
    plans: &[Plan],
    part: Option<IntentPart>,
) -> Intent {
    Intent {
        format: INTENT_FORMAT,
        strategy: strategy.to_owned(),
        from: from.to_owned(),
        to: to.to_owned(),
        writes: plans.iter().flat_map(Plan::writes).collect(),
        undo: plans.iter().flat_map(Plan::undo).collect(),
        prior: serde_json::to_value(SavedPlans { plans }).unwrap_or(Value::Null),
        part,
    }
}

/// The intent of a run of one plan, moving it from its `from` side to its `to` side.
pub(crate) fn intent_of_plan(plan: &Plan) -> Intent {
    intent_of(
        plan.strategy.as_str(),
        &plan.from.color,
        &plan.to.color,
        std::slice::from_ref(plan),
        None,
    )
}

/// The plans saved in one intent. Format 1 wrote `{"plan": …}` for one service and
/// `{"plans": […]}` for a batch; format 2 always `{"plans": […]}`.
fn decode(intent: &Intent) -> Result<Vec<Plan>, String> {
    let (field, plans) = if let Some(plan) = intent.prior.get("plan") {
        let plan: Plan = from_value(plan).map_err(|e| format!("prior.plan{e}"))?;
        ("plan", vec![plan])
    } else if let Some(plans) = intent.prior.get("plans") {
        let plans: Vec<Plan> = from_value(plans).map_err(|e| format!("prior.plans{e}"))?;
        ("plans", plans)
    } else {
        return Err("it saves no plan (`prior` has neither `plan` nor `plans`)".to_owned());
    };
    if plans.is_empty() || plans.iter().all(Plan::is_noop) {
        return Err(format!("prior.{field} holds no write to compare Kong with"));
    }
    Ok(plans)
}

/// Decodes `value` with the JSON path of a failure: `[0].steps[1].checks: missing field …`.
fn from_value<T: for<'de> Deserialize<'de>>(value: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            String::new()
        } else if path.starts_with('[') {
            path
        } else {
            format!(".{path}")
        };
        format!("{path}: {}", e.inner())
    })
}

/// The plans of the run whose intent is `intent_event`. `events` must hold the run's other
/// intent parts when the intent is split (the history of its target); otherwise it is not
/// looked at.
pub(crate) fn plans_of_run(
    events: &[Event],
    intent_event: &Event,
) -> Result<Vec<Plan>, Unreadable> {
    let unreadable = |event: &Event, reason: String| Unreadable {
        run_id: event.run_id,
        seq: event.seq,
        reason,
    };
    let intent = match &intent_event.intent {
        Some(IntentRecord::Readable(intent)) => intent,
        Some(IntentRecord::Unreadable(u)) => {
            return Err(unreadable(intent_event, u.reason.clone()));
        }
        None => {
            return Err(unreadable(
                intent_event,
                "the intent event carries no intent record".to_owned(),
            ));
        }
    };
    let Some(part) = intent.part else {
        return decode(intent).map_err(|reason| unreadable(intent_event, reason));
    };
    let Some(run) = intent_event.run_id else {
        return Err(unreadable(
            intent_event,
            "a split intent without a run id".to_owned(),
        ));
    };
    // Every part is appended before the first write, in order: the parts found must be
    // 1..=k. A gap means a part was lost or altered, and those services cannot be checked.
    let mut plans = Vec::new();
    let mut next = 1;
    for event in events
        .iter()
        .filter(|e| e.kind == EventKind::Intent && e.run_id == Some(run))
    {
        let intent = match &event.intent {
            Some(IntentRecord::Readable(intent)) => intent,
            Some(IntentRecord::Unreadable(u)) => return Err(unreadable(event, u.reason.clone())),
            None => continue,
        };
        let Some(this) = intent.part else {
            continue;
        };
        if this.index != next || this.of != part.of {
            return Err(unreadable(
                event,
                format!(
                    "intent part {} of {} found where part {next} of {} was expected",
                    this.index, this.of, part.of
                ),
            ));
        }
        plans.extend(decode(intent).map_err(|reason| unreadable(event, reason))?);
        next += 1;
    }
    if plans.is_empty() {
        return Err(unreadable(
            intent_event,
            "no part of the split intent could be found".to_owned(),
        ));
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{AdminRequest, Method};
    use crate::switch::{Check, Side, Stage, Step, StrategyKind};
    use serde_json::json;
    use std::time::Duration;

    fn plan(service: &str) -> Plan {
        let path = format!("/services/{service}");
        Plan {
            strategy: StrategyKind::Upstream,
            target: service.to_owned(),
            from: Side::new("blue", format!("{service}-blue")),
            to: Side::new("green", format!("{service}-green")),
            declarative: false,
            stages: vec![Stage {
                label: "switch".into(),
                percent: None,
                bake: Duration::ZERO,
                weights: Default::default(),
            }],
            steps: vec![Step {
                edit: Vec::new(),
                description: format!("service {service}: host"),
                stage: 0,
                request: AdminRequest::new(Method::Patch, &path)
                    .with_body(json!({"host": format!("{service}-green")})),
                undo: AdminRequest::new(Method::Patch, &path)
                    .with_body(json!({"host": format!("{service}-blue")})),
                checks: vec![Check {
                    read: AdminRequest::new(Method::Get, &path),
                    pointer: "/host".into(),
                    before: json!(format!("{service}-blue")),
                    after: json!(format!("{service}-green")),
                }],
            }],
        }
    }

    fn event(intent: Intent, run: Uuid, seq: u64) -> Event {
        let mut e = Event::new("t", EventKind::Intent)
            .with_run_id(run)
            .with_intent(intent);
        e.seq = seq;
        e
    }

    fn with_raw_intent(raw: Value, seq: u64) -> Event {
        let mut e = Event::new("t", EventKind::Intent).with_run_id(Uuid::new_v4());
        e.intent = Some(IntentRecord::from_value(raw));
        e.seq = seq;
        e
    }

    #[test]
    fn a_saved_plan_reads_back_as_written() {
        let plans = vec![plan("orders")];
        let e = event(
            intent_of("upstream", "blue", "green", &plans, None),
            Uuid::new_v4(),
            1,
        );
        assert_eq!(plans_of_run(&[], &e).expect("readable"), plans);
    }

    #[test]
    fn a_format_1_single_plan_still_reads() {
        let raw = json!({
            "strategy": "upstream", "from": "blue", "to": "green",
            "writes": [], "undo": [],
            "prior": {"plan": plan("orders")}
        });
        let e = with_raw_intent(raw, 4);
        assert_eq!(
            plans_of_run(&[], &e).expect("readable"),
            vec![plan("orders")]
        );
    }

    #[test]
    fn every_unreadable_saved_plan_is_unreadable_naming_where() {
        let mut bad_step = serde_json::to_value(plan("orders")).expect("serializes");
        bad_step["steps"][0]["checks"] = json!("not a list");
        let cases = [
            (
                "a plan in another shape",
                json!({"plan": {"shape": 2}}),
                "prior.plan",
            ),
            (
                "a step in another shape",
                json!({"plans": [bad_step]}),
                "prior.plans[0].steps[0].checks",
            ),
            ("no plan at all", json!({"targets": []}), "saves no plan"),
            ("an empty plan list", json!({"plans": []}), "no write"),
            ("prior missing", Value::Null, "saves no plan"),
        ];
        for (case, prior, needle) in cases {
            let raw = json!({
                "format": 2, "strategy": "upstream", "from": "blue", "to": "green",
                "writes": [], "undo": [], "prior": prior
            });
            let e = with_raw_intent(raw, 9);
            let err = plans_of_run(&[], &e).expect_err(case);
            assert_eq!(err.seq, 9, "{case}");
            assert!(err.reason.contains(needle), "{case}: {:?}", err.reason);
        }
    }

    #[test]
    fn an_undecodable_intent_record_is_unreadable() {
        let e = with_raw_intent(json!({"format": 7}), 3);
        let err = plans_of_run(&[], &e).expect_err("newer format");
        assert!(err.reason.contains("format 7"), "{}", err.reason);
    }

    #[test]
    fn split_intents_read_as_a_prefix_of_their_parts_and_a_gap_is_unreadable() {
        let run = Uuid::new_v4();
        let part = |i, of| Some(IntentPart { index: i, of });
        let p1 = event(
            intent_of("upstream", "blue", "green", &[plan("a")], part(1, 3)),
            run,
            1,
        );
        let p2 = event(
            intent_of("upstream", "blue", "green", &[plan("b")], part(2, 3)),
            run,
            2,
        );
        let p3 = event(
            intent_of("upstream", "blue", "green", &[plan("c")], part(3, 3)),
            run,
            3,
        );
        let all = [p1.clone(), p2.clone(), p3.clone()];
        assert_eq!(plans_of_run(&all, &p3).expect("whole").len(), 3);
        // A crash while the parts were written: a prefix, nothing written yet.
        let prefix = [p1.clone(), p2.clone()];
        assert_eq!(plans_of_run(&prefix, &p2).expect("prefix").len(), 2);
        let gap = [p1, p3.clone()];
        let err = plans_of_run(&gap, &p3).expect_err("gap");
        assert!(
            err.reason.contains("part 3 of 3 found where part 2"),
            "{}",
            err.reason
        );
    }
}
