//! SenML (RFC 8428) packs in JSON (`application/senml+json`) to temperature readings.
//!
//! Records are resolved as the RFC says (section 4.6):
//! - base fields (`bn`, `bt`, `bu`, `bv`) apply to their own record and every later record,
//!   until a later record sets them again;
//! - name = base name + name; the resolved name is the device key (the caller maps a topic's
//!   device or a name to its registered device);
//! - time = base time + time; a resolved time below 2^28 seconds is relative to the receive
//!   time (negative is in the past; 0 or absent is "now"); otherwise it is seconds since the
//!   Unix epoch;
//! - value = base value + `v`; unit = `u`, or else the base unit. Only `Cel`, `K` and `[degF]`
//!   are accepted; values are stored in °C;
//! - `bver` above 10, or any field whose label ends in `_` (must-understand, none of which is
//!   understood here), refuses the whole pack; other unknown fields are ignored.
//!
//! Partial success: a record that cannot be resolved into a reading is rejected with its index
//! and reason; the others are kept. A record whose base field is malformed is rejected, and so
//! is every later record that would need that base field, until a later record sets it again.
//! String, boolean and data values (`vs`, `vb`, `vd`) and sum-only records are not
//! temperatures and are rejected.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

use crate::reading::{
    BATCH_RECORDS_MAX, Batch, BatchError, Reading, ReadingError, RejectedRecord, check_device_key, finish_batch,
};
use crate::temperature::Unit;

/// Resolved times below this many seconds are relative to the receive time (RFC 8428, 4.5.3).
pub const RELATIVE_TIME_LIMIT_SECONDS: f64 = 268_435_456.0;

/// The newest SenML version understood.
pub const SENML_VERSION: f64 = 10.0;

/// A base field as carried from record to record: its value, or the index of the record that
/// set it to something malformed.
type Base<T> = Result<T, usize>;

#[derive(Debug)]
struct BaseFields {
    name: Base<String>,
    time_seconds: Base<f64>,
    unit: Base<Option<String>>,
    value: Base<f64>,
}

/// Parses a SenML JSON pack into readings received at `received_at`.
pub fn parse_senml(text: &str, received_at: Timestamp) -> Result<Batch, BatchError> {
    let document: Value = serde_json::from_str(text).map_err(|error| BatchError::NotJson(error.to_string()))?;
    let Value::Array(records) = document else {
        return Err(BatchError::NotAnArray);
    };
    if records.len() > BATCH_RECORDS_MAX {
        return Err(BatchError::TooManyRecords { count: records.len() });
    }
    check_pack(&records)?;

    let mut base = BaseFields { name: Ok(String::new()), time_seconds: Ok(0.0), unit: Ok(None), value: Ok(0.0) };
    let mut candidates = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let Value::Object(fields) = record else {
            rejected.push(RejectedRecord { index, reason: ReadingError::NotAnObject });
            continue;
        };
        let base_error = update_base(&mut base, fields, index);
        let outcome = match base_error {
            Some(reason) => Err(reason),
            None => resolve_record(&base, fields, received_at),
        };
        match outcome {
            Ok(reading) => candidates.push((index, reading)),
            Err(reason) => rejected.push(RejectedRecord { index, reason }),
        }
    }
    Ok(finish_batch(candidates, rejected))
}

/// Checks what refuses the whole pack: an unsupported version or a must-understand field.
fn check_pack(records: &[Value]) -> Result<(), BatchError> {
    for (index, record) in records.iter().enumerate() {
        let Value::Object(fields) = record else {
            continue;
        };
        if let Some(label) = fields.keys().find(|label| label.ends_with('_')) {
            return Err(BatchError::MustUnderstand { index, label: label.chars().take(64).collect() });
        }
        if let Some(version) = fields.get("bver").and_then(Value::as_f64)
            && version > SENML_VERSION
        {
            return Err(BatchError::UnsupportedVersion { index, version });
        }
    }
    Ok(())
}

/// Applies this record's base fields; returns the reason to reject the record if one is
/// malformed (the base is then marked malformed for the records that follow).
fn update_base(base: &mut BaseFields, fields: &Map<String, Value>, index: usize) -> Option<ReadingError> {
    let mut first_error = None;
    let mut note = |error: ReadingError| {
        if first_error.is_none() {
            first_error = Some(error);
        }
    };
    if let Some(value) = fields.get("bn") {
        base.name = match value {
            Value::String(text) => Ok(text.clone()),
            _ => {
                note(wrong_type("bn", "a string"));
                Err(index)
            }
        };
    }
    if let Some(value) = fields.get("bt") {
        base.time_seconds = match value.as_f64() {
            Some(seconds) => Ok(seconds),
            None => {
                note(wrong_type("bt", "a number"));
                Err(index)
            }
        };
    }
    if let Some(value) = fields.get("bu") {
        base.unit = match value {
            Value::String(text) => Ok(Some(text.clone())),
            _ => {
                note(wrong_type("bu", "a string"));
                Err(index)
            }
        };
    }
    if let Some(value) = fields.get("bv") {
        base.value = match value.as_f64() {
            Some(number) => Ok(number),
            None => {
                note(wrong_type("bv", "a number"));
                Err(index)
            }
        };
    }
    if let Some(value) = fields.get("bs")
        && value.as_f64().is_none()
    {
        note(wrong_type("bs", "a number"));
    }
    if let Some(value) = fields.get("bver")
        && value.as_f64().is_none()
    {
        note(wrong_type("bver", "a number"));
    }
    first_error
}

fn wrong_type(field: &'static str, expected: &'static str) -> ReadingError {
    ReadingError::WrongType { field, expected }
}

fn resolve_record(
    base: &BaseFields,
    fields: &Map<String, Value>,
    received_at: Timestamp,
) -> Result<Reading, ReadingError> {
    let base_name = base.name.as_ref().map_err(|&record| ReadingError::BaseInvalid { field: "bn", record })?;
    let name = match fields.get("n") {
        None => base_name.clone(),
        Some(Value::String(name)) => format!("{base_name}{name}"),
        Some(_) => return Err(wrong_type("n", "a string")),
    };
    check_device_key(&name)?;

    let value_labels = ["v", "vs", "vb", "vd"];
    let present: Vec<&str> = value_labels.into_iter().filter(|label| fields.contains_key(*label)).collect();
    let value = match present.as_slice() {
        [] => return Err(ReadingError::NotNumeric),
        ["v"] => fields.get("v").and_then(Value::as_f64).ok_or_else(|| wrong_type("v", "a number"))?,
        [_] => return Err(ReadingError::NotNumeric),
        _ => return Err(ReadingError::SeveralValues),
    };
    let base_value = base.value.map_err(|record| ReadingError::BaseInvalid { field: "bv", record })?;

    let unit_symbol = match fields.get("u") {
        Some(Value::String(symbol)) => symbol.clone(),
        Some(_) => return Err(wrong_type("u", "a string")),
        None => base
            .unit
            .as_ref()
            .map_err(|&record| ReadingError::BaseInvalid { field: "bu", record })?
            .clone()
            .ok_or(ReadingError::MissingUnit)?,
    };
    let unit = Unit::from_senml(&unit_symbol)?;

    let time_seconds = match fields.get("t") {
        None => 0.0,
        Some(value) => value.as_f64().ok_or_else(|| wrong_type("t", "a number"))?,
    };
    let base_time_seconds = base.time_seconds.map_err(|record| ReadingError::BaseInvalid { field: "bt", record })?;
    let device_time = resolve_time(base_time_seconds + time_seconds, received_at)?;

    Reading::new(&name, device_time, received_at, base_value + value, unit)
}

/// Turns a resolved SenML time into a timestamp: relative to `received_at` below 2^28 s.
fn resolve_time(seconds: f64, received_at: Timestamp) -> Result<Timestamp, ReadingError> {
    let out_of_range = || ReadingError::InvalidTime(format!("{seconds:e} s is out of range"));
    let duration = SignedDuration::try_from_secs_f64(seconds).map_err(|_| out_of_range())?;
    if seconds < RELATIVE_TIME_LIMIT_SECONDS {
        received_at.checked_add(duration).map_err(|_| out_of_range())
    } else {
        Timestamp::from_duration(duration).map_err(|_| out_of_range())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received() -> Timestamp {
        "2025-03-01T12:00:00Z".parse().unwrap()
    }

    /// Renders a batch as one line per record: `index device corrected-time celsius` or
    /// `index error: reason`.
    fn render(batch: &Batch) -> String {
        let mut accepted = batch.readings.iter();
        let total = batch.readings.len() + batch.rejected.len();
        let lines: Vec<String> = (0..total)
            .map(|index| match batch.rejected.iter().find(|record| record.index == index) {
                Some(record) => format!("{index} error: {}", record.reason),
                None => accepted
                    .next()
                    .map(|reading| {
                        format!("{index} {} {} {:.2}", reading.device(), reading.corrected_time(), reading.celsius())
                    })
                    .unwrap_or_default(),
            })
            .collect();
        lines.join("\n")
    }

    fn check(input: &str, expected: &str) {
        let batch = parse_senml(input, received()).unwrap();
        assert_eq!(render(&batch), expected.trim());
    }

    #[test]
    fn resolves_base_name_time_unit_and_value() {
        check(
            r#"[
                {"bn": "reefer-7/", "bt": 1740830000, "bu": "Cel", "bver": 10, "n": "probe1", "v": 4.25},
                {"n": "probe1", "t": 60, "v": 4.5},
                {"n": "probe2", "t": 120, "u": "K", "v": 277.15},
                {"bn": "room-3", "bv": 30, "n": "", "t": 180, "u": "[degF]", "v": 16.4}
            ]"#,
            "
0 reefer-7/probe1 2025-03-01T11:53:20Z 4.25
1 reefer-7/probe1 2025-03-01T11:54:20Z 4.50
2 reefer-7/probe2 2025-03-01T11:55:20Z 4.00
3 room-3 2025-03-01T11:56:20Z 8.00",
        );
    }

    #[test]
    fn relative_times_count_from_the_receive_time() {
        check(
            r#"[{"bn": "logger-1", "bu": "Cel", "t": -120, "v": 3}, {"t": -60, "v": 3.5}, {"v": 4}]"#,
            "
0 logger-1 2025-03-01T11:58:00Z 3.00
1 logger-1 2025-03-01T11:59:00Z 3.50
2 logger-1 2025-03-01T12:00:00Z 4.00",
        );
    }

    #[test]
    fn keeps_the_valid_rest_of_a_pack() {
        check(
            r#"[
                {"bn": "d1", "bu": "Cel", "v": 4, "t": -10},
                {"v": "warm"},
                {"vs": "open"},
                {"v": 4, "vb": true},
                {"s": 12},
                {"u": "degC", "v": 4},
                {"u": "K", "v": 1},
                {"n": " bad", "v": 4},
                42,
                {"t": "yesterday", "v": 4},
                {"bu": 7, "v": 4},
                {"v": 5, "t": -5},
                {"bu": "Cel", "v": 6, "t": -1}
            ]"#,
            r#"
0 d1 2025-03-01T11:59:50Z 4.00
1 error: field "v" must be a number
2 error: the record has no numeric value (v): only numeric temperature readings are accepted
3 error: the record has more than one value field
4 error: the record has no numeric value (v): only numeric temperature readings are accepted
5 error: unknown unit "degC": expected Cel, K or [degF]
6 error: -272.15 °C is outside the plausible -100..100 °C
7 error: invalid device key "d1 bad": only letters, digits and - : . / _ are allowed
8 error: the record is not a JSON object
9 error: field "t" must be a number
10 error: field "bu" must be a string
11 error: a base field ("bu") of record 10 is invalid, so this record cannot be resolved
12 d1 2025-03-01T11:59:59Z 6.00"#,
        );
    }

    #[test]
    fn missing_units_and_names_are_rejected() {
        check(
            r#"[{"n": "d1", "v": 4}, {"v": 4, "u": "Cel"}]"#,
            r#"
0 error: the record has no unit (u) and no base unit (bu) applies
1 error: invalid device key "": empty"#,
        );
    }

    #[test]
    fn whole_pack_errors() {
        let now = received();
        assert!(matches!(parse_senml("{", now), Err(BatchError::NotJson(_))));
        assert_eq!(parse_senml("{}", now), Err(BatchError::NotAnArray));
        assert_eq!(
            parse_senml(r#"[{"n": "d", "u": "Cel", "v": 1}, {"bver": 11}]"#, now),
            Err(BatchError::UnsupportedVersion { index: 1, version: 11.0 })
        );
        assert_eq!(
            parse_senml(r#"[{"n": "d", "u": "Cel", "v": 1, "ext_": 1}]"#, now),
            Err(BatchError::MustUnderstand { index: 0, label: "ext_".to_owned() })
        );
        assert_eq!(parse_senml("[]", now), Ok(Batch::default()));
    }

    #[test]
    fn absurd_times_are_rejected_per_record() {
        check(
            r#"[{"n": "d1", "u": "Cel", "v": 1, "t": 1e300}, {"n": "d1", "u": "Cel", "v": 1, "t": -1e12}]"#,
            "
0 error: invalid time: 1e300 s is out of range
1 error: invalid time: -1e12 s is out of range",
        );
    }
}
