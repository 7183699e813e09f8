//! The schedule of a scheduled query subscription (EPCIS 2.0 REST binding, `query-schedule.json`):
//! fields `second`, `minute`, `hour`, `dayOfMonth`, `month`, `dayOfWeek` (1 = Monday), each a
//! comma-separated list of numbers and `[a-b]` ranges, like cron.
//!
//! An omitted field finer than the finest field given takes its minimum (`{"hour": "1",
//! "minute": "5"}` fires at 01:05:00, not every second of that minute); an omitted coarser field
//! matches any value. Times are UTC.

use std::collections::BTreeSet;

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schedule field {field}: {detail}")]
pub struct ScheduleError {
    pub field: String,
    pub detail: String,
}

/// A parsed schedule: the allowed values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    seconds: BTreeSet<u8>,
    minutes: BTreeSet<u8>,
    hours: BTreeSet<u8>,
    days_of_month: BTreeSet<u8>,
    months: BTreeSet<u8>,
    days_of_week: BTreeSet<u8>,
}

/// The fields from finest to coarsest, with their ranges.
const FIELDS: [(&str, u8, u8); 6] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("dayOfMonth", 1, 31),
    ("month", 1, 12),
    ("dayOfWeek", 1, 7),
];

/// How far ahead [`Schedule::next_after`] looks.
pub const LOOKAHEAD_DAYS: i64 = 366 * 4;

impl Schedule {
    /// Reads the schedule object; at least one field must be given.
    pub fn parse(value: &serde_json::Value) -> Result<Schedule, ScheduleError> {
        let refuse = |field: &str, detail: String| ScheduleError { field: field.to_owned(), detail };
        let object = value.as_object().ok_or_else(|| refuse("", "a schedule is a JSON object".into()))?;
        for key in object.keys() {
            if !FIELDS.iter().any(|(name, ..)| name == key) {
                return Err(refuse(
                    key,
                    "not a schedule field (second, minute, hour, dayOfMonth, month, dayOfWeek)".into(),
                ));
            }
        }
        let finest_given = FIELDS.iter().position(|(name, ..)| object.contains_key(*name));
        let Some(finest_given) = finest_given else {
            return Err(refuse("", "a schedule names at least one field".into()));
        };
        let mut sets = Vec::with_capacity(FIELDS.len());
        for (index, (name, minimum, maximum)) in FIELDS.iter().enumerate() {
            let set = match object.get(*name) {
                Some(value) => {
                    let text = match value {
                        serde_json::Value::String(text) => text.clone(),
                        serde_json::Value::Number(number) => number.to_string(),
                        _ => return Err(refuse(name, "expects a string such as \"1,5,[10-20]\"".into())),
                    };
                    parse_field(&text, *minimum, *maximum).map_err(|detail| refuse(name, detail))?
                }
                // Finer than the finest field given: its minimum; coarser: any value.
                None if index < finest_given => BTreeSet::from([*minimum]),
                None => (*minimum..=*maximum).collect(),
            };
            sets.push(set);
        }
        let mut sets = sets.into_iter();
        let mut next = || sets.next().unwrap_or_default();
        Ok(Schedule {
            seconds: next(),
            minutes: next(),
            hours: next(),
            days_of_month: next(),
            months: next(),
            days_of_week: next(),
        })
    }

    /// Whether the schedule fires at `time` (to the second, UTC).
    pub fn fires_at(&self, time: jiff::Timestamp) -> bool {
        let civil = time.to_zoned(jiff::tz::TimeZone::UTC).datetime();
        self.day_matches(civil.date())
            && self.hours.contains(&(civil.hour() as u8))
            && self.minutes.contains(&(civil.minute() as u8))
            && self.seconds.contains(&(civil.second() as u8))
    }

    fn day_matches(&self, date: jiff::civil::Date) -> bool {
        let weekday = date.weekday().to_monday_one_offset() as u8;
        self.months.contains(&(date.month() as u8))
            && self.days_of_month.contains(&(date.day() as u8))
            && self.days_of_week.contains(&weekday)
    }

    /// The first firing time strictly after `time`, within [`LOOKAHEAD_DAYS`].
    pub fn next_after(&self, time: jiff::Timestamp) -> Option<jiff::Timestamp> {
        let start = time.to_zoned(jiff::tz::TimeZone::UTC).datetime();
        let mut date = start.date();
        for _ in 0..LOOKAHEAD_DAYS {
            if self.day_matches(date) {
                for &hour in &self.hours {
                    for &minute in &self.minutes {
                        for &second in &self.seconds {
                            let candidate = date.at(hour as i8, minute as i8, second as i8, 0);
                            if candidate > start {
                                return candidate.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|zoned| zoned.timestamp());
                            }
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

fn parse_field(text: &str, minimum: u8, maximum: u8) -> Result<BTreeSet<u8>, String> {
    let number = |text: &str| -> Result<u8, String> {
        let value: u8 = text.trim().parse().map_err(|_| format!("{text:?} is not a number"))?;
        match (minimum..=maximum).contains(&value) {
            true => Ok(value),
            false => Err(format!("{value} is outside {minimum}-{maximum}")),
        }
    };
    let mut set = BTreeSet::new();
    for element in text.split(',') {
        let element = element.trim();
        if let Some(range) = element.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            let (low, high) = range.split_once('-').ok_or_else(|| format!("{element:?} is not a range [a-b]"))?;
            let (low, high) = (number(low)?, number(high)?);
            if low > high {
                return Err(format!("{element:?} is an empty range"));
            }
            set.extend(low..=high);
        } else {
            set.insert(number(element)?);
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().expect("timestamp")
    }

    fn next(schedule: &str, after: &str) -> String {
        let schedule = Schedule::parse(&serde_json::from_str(schedule).expect("json")).expect("schedule");
        schedule.next_after(at(after)).map(|time| time.to_string()).unwrap_or_else(|| "never".into())
    }

    #[test]
    fn next_firing_times() {
        // Every morning at 01:05:00 (seconds default to 0).
        assert_eq!(next(r#"{"hour": "1", "minute": "5"}"#, "2024-05-01T00:00:00Z"), "2024-05-01T01:05:00Z");
        assert_eq!(next(r#"{"hour": "1", "minute": "5"}"#, "2024-05-01T01:05:00Z"), "2024-05-02T01:05:00Z");
        // Every 15 minutes.
        assert_eq!(next(r#"{"minute": "0,15,30,45"}"#, "2024-05-01T10:16:00Z"), "2024-05-01T10:30:00Z");
        // Every second of a range.
        assert_eq!(next(r#"{"second": "[10-12]"}"#, "2024-05-01T10:00:11Z"), "2024-05-01T10:00:12Z");
        assert_eq!(next(r#"{"second": "[10-12]"}"#, "2024-05-01T10:00:12Z"), "2024-05-01T10:01:10Z");
        // Mondays at noon (2024-05-01 is a Wednesday).
        assert_eq!(next(r#"{"dayOfWeek": "1", "hour": "12"}"#, "2024-05-01T00:00:00Z"), "2024-05-06T12:00:00Z");
        // The 31st of February never comes; the 29th comes in a leap year.
        assert_eq!(next(r#"{"month": "2", "dayOfMonth": "31"}"#, "2024-01-01T00:00:00Z"), "never");
        assert_eq!(next(r#"{"month": "2", "dayOfMonth": "29"}"#, "2025-01-01T00:00:00Z"), "2028-02-29T00:00:00Z");
    }

    #[test]
    fn bad_schedules_name_their_field() {
        for (text, field) in [
            (r#"{}"#, ""),
            (r#"{"hour": "24"}"#, "hour"),
            (r#"{"minute": "[30-10]"}"#, "minute"),
            (r#"{"weekday": "1"}"#, "weekday"),
            (r#"{"second": "x"}"#, "second"),
        ] {
            let error = Schedule::parse(&serde_json::from_str(text).expect("json")).expect_err(text);
            assert_eq!(error.field, field, "{text}: {error}");
        }
    }
}
