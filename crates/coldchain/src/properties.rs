//! Property tests: messy delivery gives the clean answer; the parsers never panic.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

use crate::alarm::{AlarmMonitor, AlarmProgress, AlarmRules, evaluate_alarms, evaluate_alarms_from};
use crate::class::ProductClass;
use crate::exposure::{ExposureOptions, Stay, exposure};
use crate::json_batch::parse_json_batch;
use crate::reading::Reading;
use crate::senml::parse_senml;
use crate::series::{Series, add};
use crate::temperature::{TEMPERATURE_MAX_CELSIUS, TEMPERATURE_MIN_CELSIUS};

const DEVICE: &str = "reefer-9";

fn origin() -> Timestamp {
    "2025-06-01T00:00:00Z".parse().unwrap()
}

fn at(minute: i64) -> Timestamp {
    add(origin(), SignedDuration::from_mins(minute))
}

/// A clean stream: runs of equal temperatures, mostly every 5 minutes, with some jitter and
/// some gaps, as (minute, °C) with distinct minutes in order.
fn clean_stream() -> impl Strategy<Value = Stream> {
    let step = prop_oneof![8 => Just(5_i64), 1 => Just(3), 1 => Just(10), 1 => Just(11), 1 => 12_i64..120];
    let run = (step, -6_i32..26, 1_usize..15);
    prop::collection::vec(run, 1..25).prop_map(|runs| {
        let mut minute = 0;
        let mut stream = Vec::new();
        for (step, half_degrees, repeat) in runs {
            for _ in 0..repeat {
                stream.push((minute, f64::from(half_degrees) * 0.5));
                minute += step;
            }
        }
        stream
    })
}

/// Readings as (minute, °C).
type Stream = Vec<(i64, f64)>;

/// The clean stream and the same readings with some duplicated, shuffled, cut into batches.
fn clean_and_messy() -> impl Strategy<Value = (Stream, Vec<Stream>)> {
    clean_stream()
        .prop_flat_map(|clean| {
            let length = clean.len();
            (
                Just(clean),
                prop::collection::vec(0..length, 0..=length.min(30)),
                prop::collection::vec(1_usize..50, 1..10),
            )
        })
        .prop_flat_map(|(clean, duplicated, batch_sizes)| {
            let mut all = clean.clone();
            all.extend(duplicated.iter().map(|&index| clean[index]));
            (Just(clean), Just(all).prop_shuffle(), Just(batch_sizes))
        })
        .prop_map(|(clean, shuffled, batch_sizes)| {
            let mut batches = Vec::new();
            let mut rest = shuffled.as_slice();
            for &size in batch_sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (batch, remainder) = rest.split_at(size.min(rest.len()));
                batches.push(batch.to_vec());
                rest = remainder;
            }
            (clean, batches)
        })
}

/// A batch as the plain JSON ingestion shape.
fn json_batch(batch: &[(i64, f64)]) -> String {
    let records: Vec<Value> = batch
        .iter()
        .map(|&(minute, celsius)| {
            serde_json::json!({
                "device": DEVICE,
                "time": at(minute).to_string(),
                "value": celsius,
                "unit": "Cel",
            })
        })
        .collect();
    Value::Array(records).to_string()
}

fn monitors(rules: &AlarmRules) -> AlarmMonitor {
    AlarmMonitor::new(Series::new(DEVICE, SignedDuration::from_mins(5)).unwrap(), rules.clone())
}

proptest! {
    #[test]
    fn batching_shuffling_and_duplicates_change_nothing((clean, batches) in clean_and_messy()) {
        let last_minute = clean.last().map_or(0, |&(minute, _)| minute);
        let now = at(last_minute + 60);
        for rules in [AlarmRules::for_class(ProductClass::Pharma), AlarmRules::who_pqs()] {
            let mut clean_monitor = monitors(&rules);
            let clean_readings: Vec<Reading> = clean
                .iter()
                .map(|&(minute, celsius)| Reading::celsius_at(DEVICE, at(minute), celsius).unwrap())
                .collect();
            clean_monitor.ingest(&clean_readings).unwrap();

            let mut messy_monitor = monitors(&rules);
            for batch in &batches {
                let parsed = parse_json_batch(&json_batch(batch), now).unwrap();
                prop_assert!(parsed.rejected.is_empty());
                messy_monitor.ingest(&parsed.readings).unwrap();
            }

            prop_assert_eq!(clean_monitor.series().points(), messy_monitor.series().points());
            let options = ExposureOptions::new(ProductClass::Pharma.range());
            let exposure_of = |monitor: &AlarmMonitor| {
                exposure(
                    &[Stay { location: "reefer", series: monitor.series(), start: at(-30), end: now }],
                    &options,
                )
            };
            prop_assert_eq!(exposure_of(&clean_monitor), exposure_of(&messy_monitor));
            for evaluated_at in [at(last_minute / 2), now] {
                prop_assert_eq!(clean_monitor.alarms(evaluated_at), messy_monitor.alarms(evaluated_at));
            }
        }
    }
}

proptest! {
    /// An evaluation resumed from the progress of an earlier one (kept as JSON, as the server
    /// keeps it) finds the alarms of one evaluation of the whole stream that were still in
    /// progress at the resumption point or began after it.
    #[test]
    fn resuming_from_a_progress_finds_the_same_alarms(clean in clean_stream(), split in 0.0_f64..1.0) {
        let last_minute = clean.last().map_or(0, |&(minute, _)| minute);
        let now = at(last_minute + 60);
        let cut = ((clean.len() as f64 * split) as usize).clamp(1, clean.len());
        let series_of = |stream: &[(i64, f64)]| {
            let mut series = Series::new(DEVICE, SignedDuration::from_mins(5)).unwrap();
            for &(minute, celsius) in stream {
                series.insert(&Reading::celsius_at(DEVICE, at(minute), celsius).unwrap()).unwrap();
            }
            series
        };
        let (whole, first) = (series_of(&clean), series_of(&clean[..cut]));
        for rules in [AlarmRules::for_class(ProductClass::Pharma), AlarmRules::for_class(ProductClass::Chilled), AlarmRules::who_pqs()] {
            let expected = evaluate_alarms(&whole.timeline(at(0), now), &rules, &[], now);
            let first_last = at(clean[cut - 1].0);
            let (_, progress) = evaluate_alarms_from(None, &first.timeline(at(0), now), first_last, &rules, &[], now);
            let progress = AlarmProgress::from_json(&progress.to_json()).unwrap();
            prop_assert!(progress.through <= first_last);
            let (resumed, _) = evaluate_alarms_from(
                Some(&progress),
                &whole.timeline(progress.through, now),
                at(last_minute),
                &rules,
                &[],
                now,
            );
            let still_going: Vec<_> = expected
                .into_iter()
                .filter(|alarm| alarm.condition_end().is_none_or(|end| end >= progress.through))
                .collect();
            prop_assert_eq!(resumed, still_going);
        }
    }
}

const LABELS: [&str; 18] =
    ["bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut", "x", "x_", "device"];

const TEXTS: [&str; 10] = ["Cel", "K", "[degF]", "", "d1", "reefer/", " bad", "2025-06-01T00:00:00Z", "\u{0}", "time"];

fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>().prop_map(|number| Number::from_f64(number).map_or(Value::Null, Value::Number)),
        any::<i64>().prop_map(|number| Value::Number(number.into())),
        (-400.0_f64..400.0).prop_map(|number| Number::from_f64(number).map_or(Value::Null, Value::Number)),
        prop::sample::select(TEXTS.to_vec()).prop_map(|text| Value::String(text.to_owned())),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(Value::Array(Vec::new())),
    ]
}

fn record() -> impl Strategy<Value = Value> {
    prop_oneof![
        9 => prop::collection::vec((prop::sample::select(LABELS.to_vec()), json_value()), 0..8)
            .prop_map(|fields| {
                let mut object = Map::new();
                for (label, value) in fields {
                    object.insert(label.to_owned(), value);
                }
                Value::Object(object)
            }),
        1 => json_value(),
    ]
}

fn received_at() -> impl Strategy<Value = Timestamp> {
    (-377_705_116_800_i64..=253_402_207_200_i64)
        .prop_map(|second| Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH))
}

proptest! {
    #[test]
    fn parsers_never_panic_on_arbitrary_text(text in any::<String>(), received_at in received_at()) {
        let _ = parse_senml(&text, received_at);
        let _ = parse_json_batch(&text, received_at);
    }

    #[test]
    fn parsers_never_panic_on_json_like_text(
        text in "[\\[\\]{}\",:0-9a-z_. eE+-]{0,80}",
        received_at in received_at(),
    ) {
        let _ = parse_senml(&text, received_at);
        let _ = parse_json_batch(&text, received_at);
    }

    #[test]
    fn parsers_account_for_every_record(
        records in prop::collection::vec(record(), 0..12),
        received_at in received_at(),
    ) {
        let text = Value::Array(records.clone()).to_string();
        for outcome in [parse_senml(&text, received_at), parse_json_batch(&text, received_at)] {
            // A whole-pack refusal is allowed (must-understand labels, versions); otherwise
            // every record is either a reading or a listed reject.
            let Ok(batch) = outcome else { continue };
            prop_assert_eq!(batch.readings.len() + batch.rejected.len(), records.len());
            for reading in &batch.readings {
                prop_assert!(reading.celsius().is_finite());
                prop_assert!((TEMPERATURE_MIN_CELSIUS..=TEMPERATURE_MAX_CELSIUS).contains(&reading.celsius()));
                prop_assert!(reading.corrected_time() <= reading.device_time());
            }
            prop_assert!(batch.rejected.windows(2).all(|pair| pair[0].index < pair[1].index));
        }
    }
}
