//! The plain JSON batch: `[{"device": "...", "time": ..., "value": 4.2, "unit": "Cel"}]`.
//!
//! - `device`: the device key (letters, digits, `- : . / _`);
//! - `time`: an RFC 3339 / ISO 8601 timestamp with an offset (`2025-03-01T12:00:00Z`), or a
//!   number of seconds since the Unix epoch;
//! - `value` and `unit`: a number and a SenML unit symbol (`Cel`, `K`, `[degF]`).
//!
//! Every field is required and no other field is accepted (a misspelt field is an error, not
//! silently ignored). Partial success as for SenML: invalid records are listed with their index
//! and reason, the valid rest is kept; the same clock-skew correction applies.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

use crate::reading::{BATCH_RECORDS_MAX, Batch, BatchError, Reading, ReadingError, RejectedRecord, finish_batch};
use crate::temperature::Unit;

const FIELDS: [&str; 4] = ["device", "time", "value", "unit"];

/// Parses a plain JSON batch of readings received at `received_at`.
pub fn parse_json_batch(text: &str, received_at: Timestamp) -> Result<Batch, BatchError> {
    let document: Value = serde_json::from_str(text).map_err(|error| BatchError::NotJson(error.to_string()))?;
    let Value::Array(records) = document else {
        return Err(BatchError::NotAnArray);
    };
    if records.len() > BATCH_RECORDS_MAX {
        return Err(BatchError::TooManyRecords { count: records.len() });
    }
    let mut candidates = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    for (index, record) in records.iter().enumerate() {
        match parse_record(record, received_at) {
            Ok(reading) => candidates.push((index, reading)),
            Err(reason) => rejected.push(RejectedRecord { index, reason }),
        }
    }
    Ok(finish_batch(candidates, rejected))
}

fn parse_record(record: &Value, received_at: Timestamp) -> Result<Reading, ReadingError> {
    let Value::Object(fields) = record else {
        return Err(ReadingError::NotAnObject);
    };
    if let Some(unknown) = fields.keys().find(|label| !FIELDS.contains(&label.as_str())) {
        return Err(ReadingError::UnknownField(unknown.chars().take(64).collect()));
    }
    let device = string_field(fields, "device")?;
    let time = match fields.get("time") {
        None => return Err(ReadingError::MissingField("time")),
        Some(Value::String(text)) => parse_timestamp(text)?,
        Some(Value::Number(number)) => {
            let seconds = number
                .as_f64()
                .ok_or(ReadingError::WrongType { field: "time", expected: "a timestamp or a number of seconds" })?;
            SignedDuration::try_from_secs_f64(seconds)
                .ok()
                .and_then(|duration| Timestamp::from_duration(duration).ok())
                .ok_or_else(|| ReadingError::InvalidTime(format!("{seconds:e} s is out of range")))?
        }
        Some(_) => {
            return Err(ReadingError::WrongType { field: "time", expected: "a timestamp or a number of seconds" });
        }
    };
    let value = match fields.get("value") {
        None => return Err(ReadingError::MissingField("value")),
        Some(value) => value.as_f64().ok_or(ReadingError::WrongType { field: "value", expected: "a number" })?,
    };
    let unit = Unit::from_senml(string_field(fields, "unit")?)?;
    Reading::new(device, time, received_at, value, unit)
}

fn string_field<'a>(fields: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, ReadingError> {
    match fields.get(field) {
        None => Err(ReadingError::MissingField(field)),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(ReadingError::WrongType { field, expected: "a string" }),
    }
}

/// Parses an ISO 8601 timestamp that carries its offset (`Z` or `±hh:mm`).
pub fn parse_timestamp(text: &str) -> Result<Timestamp, ReadingError> {
    text.trim().parse::<Timestamp>().map_err(|_| {
        ReadingError::InvalidTime(format!(
            "{:?} is not an ISO 8601 timestamp with an offset",
            text.chars().take(64).collect::<String>()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let received: Timestamp = "2025-03-01T12:00:00Z".parse().unwrap();
        let batch = parse_json_batch(input, received).unwrap();
        let mut lines: Vec<String> = batch
            .readings
            .iter()
            .map(|reading| format!("{} {} {:.2}", reading.device(), reading.corrected_time(), reading.celsius()))
            .collect();
        lines.extend(batch.rejected.iter().map(|record| format!("{} error: {}", record.index, record.reason)));
        assert_eq!(lines.join("\n"), expected.trim());
    }

    #[test]
    fn parses_times_units_and_rejects_bad_records() {
        check(
            r#"[
                {"device": "reefer-7", "time": "2025-03-01T11:00:00Z", "value": 4.5, "unit": "Cel"},
                {"device": "reefer-7", "time": "2025-03-01T12:00:00+01:00", "value": 41, "unit": "[degF]"},
                {"device": "reefer-7", "time": 1740826800, "value": 278.15, "unit": "K"},
                {"device": "reefer-7", "time": "yesterday", "value": 4, "unit": "Cel"},
                {"device": "reefer-7", "time": "2025-03-01T11:00:00Z", "value": 4},
                {"device": "reefer-7", "time": "2025-03-01T11:00:00Z", "value": 4, "unit": "Cel", "note": 1},
                {"device": 7, "time": "2025-03-01T11:00:00Z", "value": 4, "unit": "Cel"},
                {"device": "reefer-7", "time": "2025-03-01T11:00:00Z", "value": null, "unit": "Cel"}
            ]"#,
            r#"
reefer-7 2025-03-01T11:00:00Z 4.50
reefer-7 2025-03-01T11:00:00Z 5.00
reefer-7 2025-03-01T11:00:00Z 5.00
3 error: invalid time: "yesterday" is not an ISO 8601 timestamp with an offset
4 error: field "unit" is missing
5 error: field "note" is not part of a reading
6 error: field "device" must be a string
7 error: field "value" must be a number"#,
        );
    }
}
