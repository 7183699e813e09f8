//! One temperature reading, its three times, and the outcome of parsing a batch of them.
//!
//! A reading keeps three times:
//! - `device_time`: what the device's clock said when it measured;
//! - `received_at`: when Keten received it (the caller's clock, passed in);
//! - `corrected_time`: `device_time` moved back by the batch's clock-skew correction.
//!
//! Clock-skew correction (bounded): a device cannot measure in the future, so a reading whose
//! `device_time` is later than its `received_at` shows a clock running ahead. For each device
//! in one batch, the correction is the largest lead of any of its readings, and every reading of
//! that device in the batch is moved back by it (keeping their spacing, so a store-and-forward
//! upload is not squashed onto one instant). A lead up to [`CLOCK_AHEAD_LIMIT`] is corrected;
//! a reading further ahead is rejected ([`ReadingError::ClockAhead`]) and takes no part in
//! the correction. A clock running behind cannot be told apart from a delayed upload and is
//! left as it is.

use jiff::{SignedDuration, Timestamp};
use thiserror::Error;

use crate::temperature::{TemperatureError, Unit, checked_celsius};

/// The largest lead of a device's clock over the receive time that is corrected; further
/// ahead, the reading is rejected.
pub const CLOCK_AHEAD_LIMIT: SignedDuration = SignedDuration::from_mins(10);

/// The oldest a reading may be when it is received (a year and a day): older, its device's
/// clock was reset (to 1970, say) or the data is not the network's; the reading is rejected.
pub const READING_AGE_MAX: SignedDuration = SignedDuration::from_hours(366 * 24);

/// The longest accepted device key, in bytes.
pub const DEVICE_KEY_LENGTH_MAX: usize = 256;

/// The most records one batch (SenML pack or JSON array) may hold.
pub const BATCH_RECORDS_MAX: usize = 100_000;

/// Why one record of a batch was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ReadingError {
    #[error("the record is not a JSON object")]
    NotAnObject,
    #[error("field {0:?} is missing")]
    MissingField(&'static str),
    #[error("field {field:?} must be {expected}")]
    WrongType { field: &'static str, expected: &'static str },
    #[error("field {0:?} is not part of a reading")]
    UnknownField(String),
    #[error("the record has no numeric value (v): only numeric temperature readings are accepted")]
    NotNumeric,
    #[error("the record has more than one value field")]
    SeveralValues,
    #[error("the record has no unit (u) and no base unit (bu) applies")]
    MissingUnit,
    #[error("a base field ({field:?}) of record {record} is invalid, so this record cannot be resolved")]
    BaseInvalid { field: &'static str, record: usize },
    #[error("invalid device key {0:?}: {1}")]
    InvalidDevice(String, &'static str),
    #[error("invalid time: {0}")]
    InvalidTime(String),
    #[error(transparent)]
    Temperature(#[from] TemperatureError),
    #[error(
        "the device clock is {lead_seconds} s ahead of the receive time, beyond the {limit_seconds} s limit",
        limit_seconds = CLOCK_AHEAD_LIMIT.as_secs()
    )]
    ClockAhead { lead_seconds: i64 },
    #[error(
        "the reading is {age_days} days older than its receive time, beyond the {limit_days} day limit (a reset clock?)",
        limit_days = READING_AGE_MAX.as_hours() / 24
    )]
    TooOld { age_days: i64 },
}

/// Why a whole batch was refused (nothing of it is kept).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BatchError {
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("the batch must be a JSON array of records")]
    NotAnArray,
    #[error("the batch holds {count} records, more than the limit of {BATCH_RECORDS_MAX}")]
    TooManyRecords { count: usize },
    #[error("record {index} uses SenML version {version}, newer than the supported version 10")]
    UnsupportedVersion { index: usize, version: f64 },
    #[error("record {index} has the must-understand field {label:?}, which is not understood")]
    MustUnderstand { index: usize, label: String },
}

/// A record rejected from a batch: its position (0-based) in the array and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRecord {
    pub index: usize,
    pub reason: ReadingError,
}

/// The outcome of parsing a batch: partial success. The valid readings are kept; each invalid
/// record is listed with its index and reason, so the caller can store the rest and report
/// the rejects (RFC 9457 problem listing which readings).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    pub readings: Vec<Reading>,
    pub rejected: Vec<RejectedRecord>,
}

/// One temperature reading in °C, valid by construction.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    device: String,
    device_time: Timestamp,
    received_at: Timestamp,
    corrected_time: Timestamp,
    celsius: f64,
}

impl Reading {
    /// A reading whose corrected time is its device time (no skew correction applied).
    pub fn new(
        device: &str,
        device_time: Timestamp,
        received_at: Timestamp,
        value: f64,
        unit: Unit,
    ) -> Result<Reading, ReadingError> {
        check_device_key(device)?;
        let celsius = checked_celsius(value, unit)?;
        Ok(Reading { device: device.to_owned(), device_time, received_at, corrected_time: device_time, celsius })
    }

    /// A reading in °C received at its device time: for logger files and tests.
    pub fn celsius_at(device: &str, time: Timestamp, celsius: f64) -> Result<Reading, ReadingError> {
        Reading::new(device, time, time, celsius, Unit::Celsius)
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn device_time(&self) -> Timestamp {
        self.device_time
    }

    pub fn received_at(&self) -> Timestamp {
        self.received_at
    }

    pub fn corrected_time(&self) -> Timestamp {
        self.corrected_time
    }

    pub fn celsius(&self) -> f64 {
        self.celsius
    }

    /// How far the device clock ran ahead of the receive time (zero when it did not).
    fn clock_lead(&self) -> SignedDuration {
        self.device_time.duration_since(self.received_at).max(SignedDuration::ZERO)
    }
}

/// Checks a device key: 1 to [`DEVICE_KEY_LENGTH_MAX`] bytes, starting with a letter or digit,
/// then letters, digits and `- : . / _` (the SenML name alphabet, RFC 8428 section 4.5.1).
pub fn check_device_key(key: &str) -> Result<(), ReadingError> {
    let invalid = |reason| Err(ReadingError::InvalidDevice(key.chars().take(64).collect(), reason));
    if key.is_empty() {
        return invalid("empty");
    }
    if key.len() > DEVICE_KEY_LENGTH_MAX {
        return invalid("longer than 256 bytes");
    }
    if !key.starts_with(|character: char| character.is_ascii_alphanumeric()) {
        return invalid("must start with a letter or a digit");
    }
    if !key.chars().all(|character| character.is_ascii_alphanumeric() || "-:./_".contains(character)) {
        return invalid("only letters, digits and - : . / _ are allowed");
    }
    Ok(())
}

/// Applies the bounded clock-skew correction to the readings parsed from one batch, and
/// gathers the batch. `candidates` holds each valid reading with its record index; `rejected`
/// the records already refused by the parser.
pub(crate) fn finish_batch(candidates: Vec<(usize, Reading)>, mut rejected: Vec<RejectedRecord>) -> Batch {
    let mut accepted: Vec<(usize, Reading)> = Vec::with_capacity(candidates.len());
    for (index, reading) in candidates {
        let lead = reading.clock_lead();
        let age = reading.received_at.duration_since(reading.device_time);
        if lead > CLOCK_AHEAD_LIMIT {
            rejected.push(RejectedRecord { index, reason: ReadingError::ClockAhead { lead_seconds: lead.as_secs() } });
        } else if age > READING_AGE_MAX {
            rejected.push(RejectedRecord { index, reason: ReadingError::TooOld { age_days: age.as_hours() / 24 } });
        } else {
            accepted.push((index, reading));
        }
    }
    let mut lead_per_device: std::collections::HashMap<String, SignedDuration> = std::collections::HashMap::new();
    for (_, reading) in &accepted {
        let lead = reading.clock_lead();
        let entry = lead_per_device.entry(reading.device.clone()).or_insert(SignedDuration::ZERO);
        *entry = (*entry).max(lead);
    }
    let readings = accepted
        .into_iter()
        .map(|(_, mut reading)| {
            let lead = lead_per_device.get(&reading.device).copied().unwrap_or(SignedDuration::ZERO);
            // The lead is at most CLOCK_AHEAD_LIMIT, and the reading's device time minus it is
            // still after its receive time minus the limit, so the subtraction cannot overflow
            // unless the device time is at the very start of the representable range.
            reading.corrected_time = reading.device_time.checked_sub(lead).unwrap_or(reading.device_time);
            reading
        })
        .collect();
    rejected.sort_by_key(|record| record.index);
    Batch { readings, rejected }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn device_keys() {
        assert!(check_device_key("reefer-7/probe.1").is_ok());
        assert!(check_device_key("urn:dev:mac:0024befffe804ff1").is_ok());
        assert!(check_device_key("").is_err());
        assert!(check_device_key("-leading").is_err());
        assert!(check_device_key("with space").is_err());
        assert!(check_device_key(&"a".repeat(257)).is_err());
    }

    #[test]
    fn a_clock_ahead_within_the_limit_is_corrected_for_the_whole_batch() {
        let received = time("2025-01-01T12:00:00Z");
        let first = Reading::new("d1", time("2025-01-01T11:59:00Z"), received, 4.0, Unit::Celsius).unwrap();
        let second = Reading::new("d1", time("2025-01-01T12:02:00Z"), received, 4.1, Unit::Celsius).unwrap();
        let other = Reading::new("d2", time("2025-01-01T11:00:00Z"), received, 4.2, Unit::Celsius).unwrap();
        let batch = finish_batch(vec![(0, first), (1, second), (2, other)], Vec::new());
        assert!(batch.rejected.is_empty());
        let corrected: Vec<String> =
            batch.readings.iter().map(|reading| reading.corrected_time().to_string()).collect();
        assert_eq!(corrected, ["2025-01-01T11:57:00Z", "2025-01-01T12:00:00Z", "2025-01-01T11:00:00Z"]);
        assert_eq!(batch.readings[1].device_time(), time("2025-01-01T12:02:00Z"));
    }

    #[test]
    fn a_reading_older_than_a_year_and_a_day_is_rejected() {
        let received = time("2025-01-01T12:00:00Z");
        let reset = Reading::new("d1", time("1970-01-01T00:00:00Z"), received, 4.0, Unit::Celsius).unwrap();
        let last_year = Reading::new("d1", time("2024-01-01T12:00:00Z"), received, 4.0, Unit::Celsius).unwrap();
        let batch = finish_batch(vec![(0, reset), (1, last_year)], Vec::new());
        assert_eq!(batch.readings.len(), 1);
        assert_eq!(batch.readings[0].device_time(), time("2024-01-01T12:00:00Z"));
        assert_eq!(batch.rejected, [RejectedRecord { index: 0, reason: ReadingError::TooOld { age_days: 20089 } }]);
        assert!(batch.rejected[0].reason.to_string().contains("366 day limit"));
    }

    #[test]
    fn a_clock_too_far_ahead_is_rejected() {
        let received = time("2025-01-01T12:00:00Z");
        let far = Reading::new("d1", time("2025-01-01T12:30:00Z"), received, 4.0, Unit::Celsius).unwrap();
        let near = Reading::new("d1", time("2025-01-01T11:30:00Z"), received, 4.0, Unit::Celsius).unwrap();
        let batch = finish_batch(vec![(0, far), (1, near)], Vec::new());
        assert_eq!(batch.readings.len(), 1);
        assert_eq!(batch.readings[0].corrected_time(), time("2025-01-01T11:30:00Z"));
        assert_eq!(
            batch.rejected,
            [RejectedRecord { index: 0, reason: ReadingError::ClockAhead { lead_seconds: 1800 } }]
        );
    }
}
