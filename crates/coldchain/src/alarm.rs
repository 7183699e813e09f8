//! Alarm rules and the alarm state machine.
//!
//! A rule has a threshold (`>`, `≥`, `<`, `≤` a temperature: inclusive or not, as written) and
//! a persistence:
//! - continuous: the threshold is met without a break for at least the delay (`≥`: exactly the
//!   delay alarms). Unknown time (a gap) breaks the run;
//! - cumulative: the threshold is met for at least the budget in total over the evaluated
//!   timeline (a trip, a lot's stay: the caller's window). One alarm per rule and window.
//!
//! An alarm opens when its rule's persistence is reached. Its condition ends at the start of
//! the first known temperature that no longer meets the threshold; a gap does not end it (the
//! temperature is unknown, not back in range).
//!
//! States: `Open` → `Escalated` (not acknowledged within the rule's `escalate_after`) →
//! `Acknowledged` (by a person, with a comment; from `Open` or `Escalated`) → `Cleared` (once
//! both acknowledged and the condition has ended). An alarm whose condition ends before anyone
//! acknowledges it stays open (latched) and still escalates: every alarm is seen by a person.
//!
//! Evaluation is pure: [`evaluate_alarms`] replays a timeline with the recorded
//! acknowledgements up to a clock value `now` passed in. The result depends only on the set of
//! readings, never on how they were batched or in what order they arrived. An alarm is named
//! by its rule and the start of its condition ([`AlarmId`]); a late reading that moves that
//! start makes a new id.

use jiff::{SignedDuration, Timestamp};
use thiserror::Error;

use crate::class::ProductClass;
use crate::reading::Reading;
use crate::series::{Segment, Series, SeriesError, add};

/// The most rules one rule set may hold.
pub const RULES_MAX: usize = 64;

/// The longest rule name, person or comment, in bytes.
pub const RULE_NAME_LENGTH_MAX: usize = 64;
pub const PERSON_LENGTH_MAX: usize = 256;
pub const COMMENT_LENGTH_MAX: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Above,
    AtOrAbove,
    Below,
    AtOrBelow,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub comparison: Comparison,
    pub celsius: f64,
}

impl Threshold {
    pub fn is_met(&self, celsius: f64) -> bool {
        match self.comparison {
            Comparison::Above => celsius > self.celsius,
            Comparison::AtOrAbove => celsius >= self.celsius,
            Comparison::Below => celsius < self.celsius,
            Comparison::AtOrBelow => celsius <= self.celsius,
        }
    }

    /// The worse of two temperatures for this threshold (the warmer for an upper limit).
    fn worse(&self, first_celsius: f64, second_celsius: f64) -> f64 {
        match self.comparison {
            Comparison::Above | Comparison::AtOrAbove => first_celsius.max(second_celsius),
            Comparison::Below | Comparison::AtOrBelow => first_celsius.min(second_celsius),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Persistence {
    Continuous { delay: SignedDuration },
    Cumulative { budget: SignedDuration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Critical,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRule {
    pub name: String,
    pub threshold: Threshold,
    pub persistence: Persistence,
    pub severity: Severity,
    /// An alarm not acknowledged within this time after opening escalates.
    pub escalate_after: SignedDuration,
}

impl AlarmRule {
    fn continuous(
        name: &str,
        comparison: Comparison,
        celsius: f64,
        delay_minutes: i64,
        severity: Severity,
        escalate_after_minutes: i64,
    ) -> AlarmRule {
        AlarmRule {
            name: name.to_owned(),
            threshold: Threshold { comparison, celsius },
            persistence: Persistence::Continuous { delay: SignedDuration::from_mins(delay_minutes) },
            severity,
            escalate_after: SignedDuration::from_mins(escalate_after_minutes),
        }
    }

    fn cumulative(
        name: &str,
        comparison: Comparison,
        celsius: f64,
        budget_minutes: i64,
        severity: Severity,
        escalate_after_minutes: i64,
    ) -> AlarmRule {
        AlarmRule {
            persistence: Persistence::Cumulative { budget: SignedDuration::from_mins(budget_minutes) },
            ..AlarmRule::continuous(name, comparison, celsius, 0, severity, escalate_after_minutes)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum AlarmRuleError {
    #[error("a rule set holds at most {RULES_MAX} rules, found {0}")]
    TooManyRules(usize),
    #[error("rule name {0:?} must be 1 to 64 bytes")]
    InvalidName(String),
    #[error("rule name {0:?} is used twice")]
    DuplicateName(String),
    #[error("rule {0:?}: the threshold must be a finite temperature")]
    InvalidThreshold(String),
    #[error("rule {0:?}: delays, budgets and escalation times must not be negative")]
    NegativeDuration(String),
}

/// The rules of one product class (or any other rule set), valid by construction.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRules {
    rules: Vec<AlarmRule>,
}

impl AlarmRules {
    pub fn new(rules: Vec<AlarmRule>) -> Result<AlarmRules, AlarmRuleError> {
        if rules.len() > RULES_MAX {
            return Err(AlarmRuleError::TooManyRules(rules.len()));
        }
        for (index, rule) in rules.iter().enumerate() {
            if rule.name.is_empty() || rule.name.len() > RULE_NAME_LENGTH_MAX {
                return Err(AlarmRuleError::InvalidName(rule.name.clone()));
            }
            if rules[..index].iter().any(|other| other.name == rule.name) {
                return Err(AlarmRuleError::DuplicateName(rule.name.clone()));
            }
            if !rule.threshold.celsius.is_finite() {
                return Err(AlarmRuleError::InvalidThreshold(rule.name.clone()));
            }
            let (Persistence::Continuous { delay: duration } | Persistence::Cumulative { budget: duration }) =
                rule.persistence;
            if duration.is_negative() || rule.escalate_after.is_negative() {
                return Err(AlarmRuleError::NegativeDuration(rule.name.clone()));
            }
        }
        Ok(AlarmRules { rules })
    }

    pub fn rules(&self) -> &[AlarmRule] {
        &self.rules
    }

    /// The WHO PQS example rules (inclusive thresholds): ≥ 45 °C for 1 h continuous (heat),
    /// ≥ 30 °C for 10 h cumulative, ≤ −0.5 °C for 1 h continuous (freeze).
    pub fn who_pqs() -> AlarmRules {
        AlarmRules {
            rules: vec![
                AlarmRule::continuous("heat-45-for-1h", Comparison::AtOrAbove, 45.0, 60, Severity::Critical, 30),
                AlarmRule::cumulative("heat-30-for-10h-total", Comparison::AtOrAbove, 30.0, 600, Severity::Warning, 60),
                AlarmRule::continuous(
                    "freeze-minus-0.5-for-1h",
                    Comparison::AtOrBelow,
                    -0.5,
                    60,
                    Severity::Critical,
                    30,
                ),
            ],
        }
    }

    /// The default rules of a product class.
    ///
    /// | class | rules |
    /// |---|---|
    /// | pharma | > 8 °C for 30 min, critical; < 2 °C for 30 min, critical; > 8 °C for 2 h in total, critical |
    /// | chilled | > 4 °C for 30 min, warning; > 4 °C for 2 h in total, critical; < 0 °C for 60 min, warning |
    /// | frozen | > −18 °C for 60 min, warning; > −15 °C for 30 min, critical |
    /// | fish | > 2 °C for 30 min, warning; > 2 °C for 2 h in total, critical; < −1 °C for 60 min, warning |
    ///
    /// Critical alarms escalate after 15 min without acknowledgement, warnings after 60 min.
    pub fn for_class(class: ProductClass) -> AlarmRules {
        use Comparison::{Above, Below};
        use Severity::{Critical, Warning};
        let rules = match class {
            ProductClass::Pharma => vec![
                AlarmRule::continuous("above-8-for-30min", Above, 8.0, 30, Critical, 15),
                AlarmRule::continuous("below-2-for-30min", Below, 2.0, 30, Critical, 15),
                AlarmRule::cumulative("above-8-for-2h-total", Above, 8.0, 120, Critical, 15),
            ],
            ProductClass::Chilled => vec![
                AlarmRule::continuous("above-4-for-30min", Above, 4.0, 30, Warning, 60),
                AlarmRule::cumulative("above-4-for-2h-total", Above, 4.0, 120, Critical, 15),
                AlarmRule::continuous("below-0-for-60min", Below, 0.0, 60, Warning, 60),
            ],
            ProductClass::Frozen => vec![
                AlarmRule::continuous("above-minus-18-for-60min", Above, -18.0, 60, Warning, 60),
                AlarmRule::continuous("above-minus-15-for-30min", Above, -15.0, 30, Critical, 15),
            ],
            ProductClass::Fish => vec![
                AlarmRule::continuous("above-2-for-30min", Above, 2.0, 30, Warning, 60),
                AlarmRule::cumulative("above-2-for-2h-total", Above, 2.0, 120, Critical, 15),
                AlarmRule::continuous("below-minus-1-for-60min", Below, -1.0, 60, Warning, 60),
            ],
        };
        AlarmRules { rules }
    }
}

/// An alarm's name: its rule and the start of its condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlarmId {
    pub rule: String,
    pub condition_start: Timestamp,
}

impl std::fmt::Display for AlarmId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}@{}", self.rule, self.condition_start)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    pub person: String,
    pub comment: String,
    pub at: Timestamp,
}

/// A recorded acknowledgement of one alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcknowledgementRecord {
    pub alarm: AlarmId,
    pub acknowledgement: Acknowledgement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Open,
    Escalated,
    Acknowledged,
    Cleared,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum AlarmError {
    #[error("no alarm {0} is open at that time")]
    UnknownAlarm(AlarmId),
    #[error("alarm {0} is already acknowledged")]
    AlreadyAcknowledged(AlarmId),
    #[error("alarm {0} is already cleared")]
    AlreadyCleared(AlarmId),
    #[error("the person must be 1 to {PERSON_LENGTH_MAX} bytes")]
    InvalidPerson,
    #[error("the comment must be 1 to {COMMENT_LENGTH_MAX} bytes")]
    InvalidComment,
}

/// One alarm as it stands at the evaluation time.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    id: AlarmId,
    severity: Severity,
    state: AlarmState,
    opened_at: Timestamp,
    escalated_at: Option<Timestamp>,
    acknowledgement: Option<Acknowledgement>,
    condition_end: Option<Timestamp>,
    cleared_at: Option<Timestamp>,
    peak_celsius: f64,
}

impl Alarm {
    fn open(id: AlarmId, severity: Severity, opened_at: Timestamp, peak_celsius: f64) -> Alarm {
        Alarm {
            id,
            severity,
            state: AlarmState::Open,
            opened_at,
            escalated_at: None,
            acknowledgement: None,
            condition_end: None,
            cleared_at: None,
            peak_celsius,
        }
    }

    /// `Open` → `Escalated`; no change in any other state.
    fn escalate(&mut self, at: Timestamp) {
        if self.state == AlarmState::Open {
            self.state = AlarmState::Escalated;
            self.escalated_at = Some(at);
        }
    }

    /// `Open` or `Escalated` → `Acknowledged`, or straight on to `Cleared` if the condition
    /// has already ended.
    fn acknowledge(&mut self, acknowledgement: Acknowledgement) -> Result<(), AlarmError> {
        match self.state {
            AlarmState::Acknowledged => Err(AlarmError::AlreadyAcknowledged(self.id.clone())),
            AlarmState::Cleared => Err(AlarmError::AlreadyCleared(self.id.clone())),
            AlarmState::Open | AlarmState::Escalated => {
                let at = acknowledgement.at;
                self.acknowledgement = Some(acknowledgement);
                self.state = AlarmState::Acknowledged;
                if self.condition_end.is_some() {
                    self.clear(at);
                }
                Ok(())
            }
        }
    }

    /// Records the end of the condition; an acknowledged alarm clears.
    fn end_condition(&mut self, at: Timestamp) {
        self.condition_end = Some(at);
        if self.state == AlarmState::Acknowledged {
            self.clear(at);
        }
    }

    fn clear(&mut self, at: Timestamp) {
        self.state = AlarmState::Cleared;
        self.cleared_at = Some(at);
    }

    pub fn id(&self) -> &AlarmId {
        &self.id
    }

    pub fn severity(&self) -> Severity {
        self.severity
    }

    pub fn state(&self) -> AlarmState {
        self.state
    }

    pub fn opened_at(&self) -> Timestamp {
        self.opened_at
    }

    pub fn escalated_at(&self) -> Option<Timestamp> {
        self.escalated_at
    }

    pub fn acknowledgement(&self) -> Option<&Acknowledgement> {
        self.acknowledgement.as_ref()
    }

    /// When the condition ended; `None` while it goes on.
    pub fn condition_end(&self) -> Option<Timestamp> {
        self.condition_end
    }

    pub fn cleared_at(&self) -> Option<Timestamp> {
        self.cleared_at
    }

    /// The worst temperature of the condition so far.
    pub fn peak_celsius(&self) -> f64 {
        self.peak_celsius
    }
}

/// A stretch during which a rule's condition held, from the timeline alone.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Episode {
    condition_start: Timestamp,
    opened_at: Timestamp,
    condition_end: Option<Timestamp>,
    peak_celsius: f64,
}

/// Where one rule's scan of a timeline stands: the episode in progress, the current unbroken run
/// (continuous rules), the time met so far with its first start and whether the window's one
/// alarm has opened (cumulative rules).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct RuleProgress {
    active: Option<Episode>,
    run: Option<(Timestamp, f64)>,
    total: SignedDuration,
    first_met: Option<(Timestamp, f64)>,
    cumulative_opened: bool,
}

impl RuleProgress {
    /// Takes in the next segment; an episode that ends is pushed to `found`.
    fn advance(&mut self, segment: &Segment, rule: &AlarmRule, found: &mut Vec<Episode>) {
        let threshold = rule.threshold;
        if segment.end <= segment.start {
            return;
        }
        let Some(celsius) = segment.celsius else {
            self.run = None;
            return;
        };
        if !threshold.is_met(celsius) {
            self.run = None;
            if let Some(mut episode) = self.active.take() {
                episode.condition_end = Some(segment.start);
                found.push(episode);
            }
            return;
        }
        if let Some(episode) = self.active.as_mut() {
            episode.peak_celsius = threshold.worse(episode.peak_celsius, celsius);
            return;
        }
        match rule.persistence {
            Persistence::Continuous { delay } => {
                let (run_start, run_peak) = self.run.get_or_insert((segment.start, celsius));
                *run_peak = threshold.worse(*run_peak, celsius);
                if segment.end.duration_since(*run_start) >= delay {
                    self.active = Some(Episode {
                        condition_start: *run_start,
                        opened_at: add(*run_start, delay).max(segment.start),
                        condition_end: None,
                        peak_celsius: *run_peak,
                    });
                }
            }
            Persistence::Cumulative { budget } => {
                if self.cumulative_opened {
                    return;
                }
                let (first_start, first_peak) = self.first_met.get_or_insert((segment.start, celsius));
                *first_peak = threshold.worse(*first_peak, celsius);
                let length = segment.duration();
                if self.total + length >= budget {
                    self.cumulative_opened = true;
                    self.active = Some(Episode {
                        condition_start: *first_start,
                        opened_at: add(segment.start, budget - self.total),
                        condition_end: None,
                        peak_celsius: *first_peak,
                    });
                }
                self.total += length;
            }
        }
    }
}

/// Where an evaluation of a timeline stands once its final part is taken in: each rule's
/// progress at `through`. A later evaluation resumes there with the segments from `through` on,
/// and finds the same alarms as one evaluation of the whole timeline (the property tests check
/// it). Segments before `through` must not change: a reading earlier than `through` arriving
/// later calls for an evaluation from the start.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmProgress {
    /// Segments before this time are taken in.
    pub through: Timestamp,
    rules: Vec<(String, RuleProgress)>,
}

/// The stored form of [`AlarmProgress`]: times in UTC milliseconds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StoredProgress {
    through: i64,
    rules: Vec<StoredRule>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StoredRule {
    rule: String,
    /// (condition start, opened, peak) of the episode in progress.
    active: Option<(i64, i64, f64)>,
    run: Option<(i64, f64)>,
    total_ms: i64,
    first_met: Option<(i64, f64)>,
    cumulative_opened: bool,
}

impl AlarmProgress {
    /// The progress as JSON, to keep between evaluations.
    pub fn to_json(&self) -> String {
        let ms = Timestamp::as_millisecond;
        let stored = StoredProgress {
            through: ms(self.through),
            rules: self
                .rules
                .iter()
                .map(|(rule, progress)| StoredRule {
                    rule: rule.clone(),
                    active: progress
                        .active
                        .map(|episode| (ms(episode.condition_start), ms(episode.opened_at), episode.peak_celsius)),
                    run: progress.run.map(|(start, peak)| (ms(start), peak)),
                    total_ms: progress.total.as_millis() as i64,
                    first_met: progress.first_met.map(|(start, peak)| (ms(start), peak)),
                    cumulative_opened: progress.cumulative_opened,
                })
                .collect(),
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// Reads a progress kept by [`AlarmProgress::to_json`]; `None` if it is not one.
    pub fn from_json(text: &str) -> Option<AlarmProgress> {
        let stored: StoredProgress = serde_json::from_str(text).ok()?;
        let time = |ms: i64| Timestamp::from_millisecond(ms).ok();
        let mut rules = Vec::with_capacity(stored.rules.len());
        for rule in stored.rules {
            let active = match rule.active {
                Some((start, opened, peak)) => Some(Episode {
                    condition_start: time(start)?,
                    opened_at: time(opened)?,
                    condition_end: None,
                    peak_celsius: peak,
                }),
                None => None,
            };
            let pair = |pair: Option<(i64, f64)>| match pair {
                Some((start, peak)) => time(start).map(|start| Some((start, peak))),
                None => Some(None),
            };
            let progress = RuleProgress {
                active,
                run: pair(rule.run)?,
                total: SignedDuration::from_millis(rule.total_ms),
                first_met: pair(rule.first_met)?,
                cumulative_opened: rule.cumulative_opened,
            };
            rules.push((rule.rule, progress));
        }
        Some(AlarmProgress { through: time(stored.through)?, rules })
    }
}

/// The alarms of a timeline at `now`: every alarm opened up to `now`, in the state that the
/// clock, the timeline and the acknowledgements put it in. Segments after `now` are ignored.
/// Only the earliest acknowledgement of an alarm made at or after its opening counts.
pub fn evaluate_alarms(
    segments: &[Segment],
    rules: &AlarmRules,
    acknowledgements: &[AcknowledgementRecord],
    now: Timestamp,
) -> Vec<Alarm> {
    evaluate_alarms_from(None, segments, now, rules, acknowledgements, now).0
}

/// [`evaluate_alarms`] resumed from a progress (or from the start): `segments` run from
/// `progress.through` on. Answers the alarms whose condition is in progress at `through` or
/// starts after it, and the progress once the segments ending by `final_through` (the latest
/// reading: the segment it starts is not final) are taken in.
pub fn evaluate_alarms_from(
    progress: Option<&AlarmProgress>,
    segments: &[Segment],
    final_through: Timestamp,
    rules: &AlarmRules,
    acknowledgements: &[AcknowledgementRecord],
    now: Timestamp,
) -> (Vec<Alarm>, AlarmProgress) {
    let final_through = final_through.min(now);
    let clipped: Vec<Segment> = segments
        .iter()
        .filter(|segment| segment.start < now)
        .map(|segment| Segment { end: segment.end.min(now), ..*segment })
        .collect();
    let mut alarms = Vec::new();
    let mut through = progress.map(|progress| progress.through);
    let mut kept = Vec::with_capacity(rules.rules().len());
    for rule in rules.rules() {
        let mut state = progress
            .and_then(|progress| progress.rules.iter().find(|(name, _)| *name == rule.name))
            .map(|(_, state)| *state)
            .unwrap_or_default();
        let mut episodes = Vec::new();
        let mut final_state = None;
        for segment in &clipped {
            if final_state.is_none() && segment.end > final_through {
                final_state = Some((state, segment.start));
            }
            state.advance(segment, rule, &mut episodes);
        }
        let (final_state, final_at) =
            final_state.unwrap_or((state, clipped.last().map_or(final_through, |segment| segment.end)));
        through = Some(through.map_or(final_at, |through: Timestamp| through.max(final_at)));
        kept.push((rule.name.clone(), final_state));
        episodes.extend(state.active);
        for episode in episodes {
            alarms.push(alarm_of(rule, episode, acknowledgements, now));
        }
    }
    alarms.sort_by(|first, second| (first.opened_at, &first.id).cmp(&(second.opened_at, &second.id)));
    let progress = AlarmProgress { through: through.unwrap_or(final_through), rules: kept };
    (alarms, progress)
}

/// An episode's alarm at `now`, with its acknowledgement and escalation.
fn alarm_of(rule: &AlarmRule, episode: Episode, acknowledgements: &[AcknowledgementRecord], now: Timestamp) -> Alarm {
    let id = AlarmId { rule: rule.name.clone(), condition_start: episode.condition_start };
    let acknowledgement = acknowledgements
        .iter()
        .filter(|record| {
            record.alarm == id && record.acknowledgement.at >= episode.opened_at && record.acknowledgement.at <= now
        })
        .map(|record| &record.acknowledgement)
        .min_by_key(|acknowledgement| acknowledgement.at);
    let mut alarm = Alarm::open(id, rule.severity, episode.opened_at, episode.peak_celsius);
    // Events in time order; at the same instant the condition ends first, then the
    // acknowledgement, then escalation (acknowledged at the deadline is in time).
    let mut events: Vec<(Timestamp, u8)> = Vec::with_capacity(3);
    if let Some(end) = episode.condition_end {
        events.push((end, 0));
    }
    if let Some(acknowledgement) = acknowledgement {
        events.push((acknowledgement.at, 1));
    }
    let escalation_due = add(episode.opened_at, rule.escalate_after);
    if escalation_due <= now {
        events.push((escalation_due, 2));
    }
    events.sort();
    for (at, kind) in events {
        match (kind, acknowledgement) {
            (0, _) => alarm.end_condition(at),
            (1, Some(acknowledgement)) => {
                // Only fails when already acknowledged or cleared, which the single
                // acknowledgement event cannot cause.
                let _ = alarm.acknowledge(acknowledgement.clone());
            }
            _ => alarm.escalate(at),
        }
    }
    alarm
}

/// The alarms of one device's series under a rule set, with their acknowledgements.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmMonitor {
    series: Series,
    rules: AlarmRules,
    acknowledgements: Vec<AcknowledgementRecord>,
}

impl AlarmMonitor {
    pub fn new(series: Series, rules: AlarmRules) -> AlarmMonitor {
        AlarmMonitor { series, rules, acknowledgements: Vec::new() }
    }

    pub fn series(&self) -> &Series {
        &self.series
    }

    pub fn rules(&self) -> &AlarmRules {
        &self.rules
    }

    /// Adds a batch of readings (any order, duplicates dropped); returns how many were new.
    pub fn ingest<'a>(&mut self, readings: impl IntoIterator<Item = &'a Reading>) -> Result<usize, SeriesError> {
        self.series.extend(readings)
    }

    /// The alarms at `now`, from the first reading up to `now`.
    pub fn alarms(&self, now: Timestamp) -> Vec<Alarm> {
        let Some((first, _)) = self.series.span() else {
            return Vec::new();
        };
        let segments = self.series.timeline(first, now);
        evaluate_alarms(&segments, &self.rules, &self.acknowledgements, now)
    }

    /// Acknowledges an alarm open or escalated at `at`; returns it as it stands then.
    pub fn acknowledge(
        &mut self,
        alarm: &AlarmId,
        person: &str,
        comment: &str,
        at: Timestamp,
    ) -> Result<Alarm, AlarmError> {
        if person.trim().is_empty() || person.len() > PERSON_LENGTH_MAX {
            return Err(AlarmError::InvalidPerson);
        }
        if comment.trim().is_empty() || comment.len() > COMMENT_LENGTH_MAX {
            return Err(AlarmError::InvalidComment);
        }
        let mut current = self
            .alarms(at)
            .into_iter()
            .find(|candidate| &candidate.id == alarm)
            .ok_or_else(|| AlarmError::UnknownAlarm(alarm.clone()))?;
        let acknowledgement = Acknowledgement { person: person.to_owned(), comment: comment.to_owned(), at };
        current.acknowledge(acknowledgement.clone())?;
        self.acknowledgements.push(AcknowledgementRecord { alarm: alarm.clone(), acknowledgement });
        Ok(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> Timestamp {
        add("2025-06-01T00:00:00Z".parse().unwrap(), SignedDuration::from_mins(minute))
    }

    /// A monitor over readings every 5 minutes with the given temperatures from minute 0.
    fn monitor(rules: AlarmRules, temperatures: &[f64]) -> AlarmMonitor {
        let mut series = Series::new("reefer-1", SignedDuration::from_mins(5)).unwrap();
        for (index, &celsius) in temperatures.iter().enumerate() {
            let minute = i64::try_from(index).unwrap() * 5;
            series.insert(&Reading::celsius_at("reefer-1", at(minute), celsius).unwrap()).unwrap();
        }
        AlarmMonitor::new(series, rules)
    }

    fn minutes_since_origin(time: Timestamp) -> i64 {
        time.duration_since(at(0)).as_mins()
    }

    fn render(alarms: &[Alarm]) -> String {
        alarms
            .iter()
            .map(|alarm| {
                let mut line = format!(
                    "{} from {} opened {} {:?} peak {}",
                    alarm.id().rule,
                    minutes_since_origin(alarm.id().condition_start),
                    minutes_since_origin(alarm.opened_at()),
                    alarm.state(),
                    alarm.peak_celsius()
                );
                if let Some(end) = alarm.condition_end() {
                    line.push_str(&format!(" ended {}", minutes_since_origin(end)));
                }
                if let Some(escalated) = alarm.escalated_at() {
                    line.push_str(&format!(" escalated {}", minutes_since_origin(escalated)));
                }
                if let Some(cleared) = alarm.cleared_at() {
                    line.push_str(&format!(" cleared {}", minutes_since_origin(cleared)));
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_pharma_excursion_opens_escalates_is_acknowledged_and_clears() {
        // 5 °C, then 9 °C from minute 10 to 50, then 5 °C again.
        let mut temperatures = vec![5.0, 5.0];
        temperatures.extend([9.0, 9.5, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0]);
        temperatures.extend([5.0; 10]);
        let mut monitor = monitor(AlarmRules::for_class(ProductClass::Pharma), &temperatures);
        assert_eq!(render(&monitor.alarms(at(39))), "");
        assert_eq!(render(&monitor.alarms(at(40))), "above-8-for-30min from 10 opened 40 Open peak 9.5");
        assert_eq!(
            render(&monitor.alarms(at(60))),
            "above-8-for-30min from 10 opened 40 Escalated peak 9.5 ended 50 escalated 55"
        );
        let id = monitor.alarms(at(60))[0].id().clone();
        assert_eq!(monitor.acknowledge(&id, "", "checked", at(61)), Err(AlarmError::InvalidPerson));
        let acknowledged =
            monitor.acknowledge(&id, "Anna Kowalska", "door left open; product quarantined", at(70)).unwrap();
        assert_eq!(acknowledged.state(), AlarmState::Cleared);
        assert_eq!(
            render(&monitor.alarms(at(95))),
            "above-8-for-30min from 10 opened 40 Cleared peak 9.5 ended 50 escalated 55 cleared 70"
        );
        assert_eq!(
            monitor.acknowledge(&id, "Anna Kowalska", "again", at(80)),
            Err(AlarmError::AlreadyCleared(id.clone()))
        );
        // Looking back before the acknowledgement, the alarm was still escalated.
        assert_eq!(monitor.alarms(at(65))[0].state(), AlarmState::Escalated);
    }

    #[test]
    fn acknowledged_while_the_condition_goes_on_then_cleared_when_it_ends() {
        let mut temperatures = vec![9.0; 12];
        temperatures.extend([5.0; 4]);
        let mut monitor = monitor(AlarmRules::for_class(ProductClass::Pharma), &temperatures);
        let id = monitor.alarms(at(35))[0].id().clone();
        let acknowledged = monitor.acknowledge(&id, "QA", "watching", at(45)).unwrap();
        assert_eq!(acknowledged.state(), AlarmState::Acknowledged);
        assert_eq!(
            render(&monitor.alarms(at(80))),
            "above-8-for-30min from 0 opened 30 Cleared peak 9 ended 60 cleared 60"
        );
    }

    #[test]
    fn who_pqs_thresholds_are_inclusive() {
        // Exactly one hour at 45.0 °C: twelve 5-minute readings, then 20 °C.
        let mut exactly = vec![45.0; 12];
        exactly.push(20.0);
        let monitor = monitor(AlarmRules::who_pqs(), &exactly);
        assert_eq!(render(&monitor.alarms(at(65))), "heat-45-for-1h from 0 opened 60 Open peak 45 ended 60");
        // Five minutes short of an hour, or a hair below 45 °C: no alarm.
        let mut short = vec![45.0; 11];
        short.push(20.0);
        assert_eq!(render(&self::monitor(AlarmRules::who_pqs(), &short).alarms(at(65))), "");
        let mut cooler = vec![44.9; 12];
        cooler.push(20.0);
        assert_eq!(render(&self::monitor(AlarmRules::who_pqs(), &cooler).alarms(at(65))), "");
    }

    #[test]
    fn a_gap_breaks_a_run_but_does_not_end_a_condition() {
        let mut series = Series::new("d", SignedDuration::from_mins(5)).unwrap();
        for minute in [0, 5, 10, 40, 45, 50, 55, 60, 65, 70, 100, 105] {
            let celsius = if minute >= 100 { 5.0 } else { 9.0 };
            series.insert(&Reading::celsius_at("d", at(minute), celsius).unwrap()).unwrap();
        }
        let monitor = AlarmMonitor::new(series, AlarmRules::for_class(ProductClass::Pharma));
        // The run 0–15 is too short; 40–75 opens at 70; the gap 75–100 does not end it.
        assert_eq!(
            render(&monitor.alarms(at(110))),
            "above-8-for-30min from 40 opened 70 Escalated peak 9 ended 100 escalated 85"
        );
    }

    #[test]
    fn cumulative_budgets_add_up_separate_stretches() {
        let rules = AlarmRules::new(vec![AlarmRule::cumulative(
            "above-4-for-20min-total",
            Comparison::Above,
            4.0,
            20,
            Severity::Warning,
            60,
        )])
        .unwrap();
        // 10 min warm, 10 min cool, 15 min warm (budget reached 10 min into it), cool.
        let temperatures = [5.0, 6.0, 3.0, 3.0, 5.0, 7.0, 5.0, 3.0, 3.0];
        let monitor = monitor(rules, &temperatures);
        assert_eq!(render(&monitor.alarms(at(45))), "above-4-for-20min-total from 0 opened 30 Open peak 7 ended 35");
    }

    #[test]
    fn rule_sets_are_checked() {
        let rule = AlarmRules::who_pqs().rules()[0].clone();
        assert!(matches!(AlarmRules::new(vec![rule.clone(), rule.clone()]), Err(AlarmRuleError::DuplicateName(_))));
        let mut bad = rule;
        bad.threshold.celsius = f64::NAN;
        assert!(matches!(AlarmRules::new(vec![bad]), Err(AlarmRuleError::InvalidThreshold(_))));
        for class in ProductClass::ALL {
            let rules = AlarmRules::for_class(class);
            assert_eq!(AlarmRules::new(rules.rules().to_vec()), Ok(rules));
        }
        let who = AlarmRules::who_pqs();
        assert_eq!(AlarmRules::new(who.rules().to_vec()), Ok(who));
    }
}
