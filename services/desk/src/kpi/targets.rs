//! Targets per fiscal year (目標値), set by an admin: events on the stream
//! `kpi-<fy>` (`KpiTargetSet`, one per metric that changed), decided by
//! [`KpiTargets`] through the one command path, so that every change names the
//! staff member and a stale form is refused.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kujira_domain::decider::{Aggregate, Decider};
use serde::{Deserialize, Serialize};

/// The stream category: `kpi-<fiscal year>`.
pub const CATEGORY: &str = "kpi";

/// A target was set (or cleared, `None`) for one metric of one fiscal year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiTargetSet {
    pub fy: i32,
    /// The metric's stable key (`moved_households`, ...).
    pub metric: String,
    /// The whole year's target; for rates a percentage, for scores 1–5.
    pub target: Option<f64>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum KpiTargetEvent {
    KpiTargetSet(KpiTargetSet),
}

/// The targets of one fiscal year.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetsState {
    pub targets: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TargetsCommand {
    /// Sets every metric listed to its value (`None` clears it).
    Set {
        fy: i32,
        targets: Vec<(String, Option<f64>)>,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetsError {
    #[error("unknown metric {0}")]
    UnknownMetric(String),
    #[error("invalid target for {0}")]
    Invalid(String),
}

/// The KPI targets aggregate.
#[derive(Debug)]
pub struct KpiTargets;

impl Aggregate for KpiTargets {}

impl Decider for KpiTargets {
    type State = TargetsState;
    type Command = TargetsCommand;
    type Event = KpiTargetEvent;
    type Error = TargetsError;

    /// Records only what changes: submitting the same form twice records nothing.
    fn decide(
        state: &TargetsState,
        command: &TargetsCommand,
    ) -> Result<Vec<KpiTargetEvent>, TargetsError> {
        let TargetsCommand::Set { fy, targets, at } = command;
        let mut events = Vec::new();
        for (metric, target) in targets {
            let Some(def) = super::metrics::find(metric) else {
                return Err(TargetsError::UnknownMetric(metric.clone()));
            };
            if let Some(t) = target
                && (!t.is_finite() || *t < 0.0 || def.unit.max_target().is_some_and(|m| *t > m))
            {
                return Err(TargetsError::Invalid(metric.clone()));
            }
            if state.targets.get(metric).copied() != *target {
                events.push(KpiTargetEvent::KpiTargetSet(KpiTargetSet {
                    fy: *fy,
                    metric: metric.clone(),
                    target: *target,
                    at: *at,
                }));
            }
        }
        Ok(events)
    }

    fn evolve(mut state: TargetsState, event: &KpiTargetEvent) -> TargetsState {
        let KpiTargetEvent::KpiTargetSet(e) = event;
        match e.target {
            Some(t) => state.targets.insert(e.metric.clone(), t),
            None => state.targets.remove(&e.metric),
        };
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-12-01T00:00:00Z".parse().unwrap()
    }

    fn set(targets: &[(&str, Option<f64>)]) -> TargetsCommand {
        TargetsCommand::Set {
            fy: 2026,
            targets: targets.iter().map(|(m, t)| ((*m).to_owned(), *t)).collect(),
            at: at(),
        }
    }

    #[test]
    fn given_no_targets_when_set_then_only_changes_are_recorded() {
        let events = KpiTargets::decide(
            &TargetsState::default(),
            &set(&[("moved_households", Some(20.0)), ("inquiries_web", None)]),
        )
        .unwrap();
        assert_eq!(events.len(), 1, "clearing what is not set changes nothing");
        let state = KpiTargets::replay(&events);
        assert_eq!(state.targets.get("moved_households"), Some(&20.0));
        let again = KpiTargets::decide(&state, &set(&[("moved_households", Some(20.0))])).unwrap();
        assert!(again.is_empty());
        let cleared = KpiTargets::decide(&state, &set(&[("moved_households", None)])).unwrap();
        assert!(
            KpiTargets::replay(events.iter().chain(&cleared))
                .targets
                .is_empty()
        );
    }

    #[test]
    fn unknown_metrics_and_impossible_values_are_refused() {
        let s = TargetsState::default();
        assert_eq!(
            KpiTargets::decide(&s, &set(&[("nope", Some(1.0))])),
            Err(TargetsError::UnknownMetric("nope".into()))
        );
        for bad in [-1.0, f64::NAN] {
            assert!(KpiTargets::decide(&s, &set(&[("emails_sent", Some(bad))])).is_err());
        }
        assert!(KpiTargets::decide(&s, &set(&[("tour_attendance_rate", Some(101.0))])).is_err());
        assert!(KpiTargets::decide(&s, &set(&[("tour_feedback_avg", Some(5.5))])).is_err());
    }
}
