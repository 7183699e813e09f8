//! The test vectors, exact to the shown precision, through both doors: the series and
//! exposure API the server uses, and the CSV analysis the command line uses.

use coldchain::{
    AlarmMonitor, AlarmRules, AlarmState, AnalysisOptions, ExposureOptions, ProductClass, Reading, Series, ShelfLife,
    ShelfLifeRequest, SpoilageModel, Stay, TemperatureRange, analyse, exposure,
};
use jiff::{SignedDuration, Timestamp};

fn origin() -> Timestamp {
    "2025-06-01T00:00:00Z".parse().unwrap()
}

/// Readings every `interval_minutes` holding each `(celsius, hours)` step for its hours.
fn readings(steps: &[(f64, f64)], interval_minutes: i64) -> Vec<Reading> {
    let mut readings = Vec::new();
    let mut minute = 0;
    for &(celsius, hours) in steps {
        let step_end = minute + (hours * 60.0).round() as i64;
        while minute < step_end {
            let time = origin() + SignedDuration::from_mins(minute);
            readings.push(Reading::celsius_at("probe-1", time, celsius).unwrap());
            minute += interval_minutes;
        }
    }
    readings
}

fn series(steps: &[(f64, f64)], interval_minutes: i64) -> Series {
    let mut series = Series::new("probe-1", SignedDuration::from_mins(interval_minutes)).unwrap();
    series.extend(&readings(steps, interval_minutes)).unwrap();
    series
}

fn csv(steps: &[(f64, f64)], interval_minutes: i64) -> String {
    let mut text = String::from("time,celsius\n");
    // Written newest first: the analysis must not depend on row order.
    for reading in readings(steps, interval_minutes).iter().rev() {
        text.push_str(&format!("{},{}\n", reading.device_time(), reading.celsius()));
    }
    text
}

/// MKT through the exposure API (range 2–8 °C) and through the CSV analysis (pharma).
fn check_mkt(steps: &[(f64, f64)], interval_minutes: i64, expected: &str, pass: bool) {
    let series = series(steps, interval_minutes);
    let (start, end) = series.span().unwrap();
    let options = ExposureOptions::new(TemperatureRange::new(Some(2.0), Some(8.0)).unwrap());
    let stay = Stay { location: "pharma depot", series: &series, start, end };
    let statistics = exposure(&[stay], &options).statistics.unwrap();
    assert_eq!(format!("{:.2}", statistics.mean_kinetic_celsius), expected);

    let analysis = analyse(&csv(steps, interval_minutes), &AnalysisOptions::new(ProductClass::Pharma)).unwrap();
    assert_eq!(format!("{:.2}", analysis.mkt_celsius), expected);
    assert_eq!(analysis.pass, pass, "{analysis}");
}

#[test]
fn mkt_1_seven_readings_at_equal_intervals() {
    let steps: Vec<(f64, f64)> =
        [2.0, 2.0, 5.0, 8.0, 8.0, 8.0, 8.0].into_iter().map(|celsius| (celsius, 1.0)).collect();
    check_mkt(&steps, 60, "6.25", true);
}

#[test]
fn mkt_2_four_temperatures_for_unequal_times() {
    check_mkt(&[(5.0, 6.0), (7.0, 10.0), (11.0, 1.5), (6.0, 30.0)], 30, "6.31", true);
}

#[test]
fn mkt_3_fails_a_2_to_8_label() {
    check_mkt(&[(14.0, 6.0), (5.0, 18.0)], 60, "8.29", false);
}

#[test]
fn mkt_4_passes() {
    check_mkt(&[(14.0, 6.0), (4.0, 18.0)], 60, "7.80", true);
}

#[test]
fn fish_21_days_at_5_is_47_25_days_at_0() {
    let shelf_life = ShelfLife::new(SpoilageModel::SquareRoot, 21.0, 5.0).unwrap();
    assert_eq!(format!("{:.2}", shelf_life.days_at(0.0).unwrap()), "47.25");
}

#[test]
fn salmon_10_days_at_4_is_30_6_days_at_minus_2() {
    let shelf_life = ShelfLife::new(SpoilageModel::SquareRoot, 10.0, 4.0).unwrap();
    assert_eq!(format!("{:.1}", shelf_life.days_at(-2.0).unwrap()), "30.6");
}

#[test]
fn trip_of_a_cod_fillet() {
    let steps = [(4.0, 12.0), (0.0, 8.0)];
    let series = series(&steps, 15);
    let (start, end) = series.span().unwrap();
    let history = series.timeline(start, end);
    let shelf_life = ShelfLife::new(SpoilageModel::SquareRoot, 12.0, 0.0).unwrap();
    let at_zero = shelf_life.remaining(&history, 0.0);
    assert_eq!(format!("{:.2}", at_zero.used_at_reference_seconds / 3600.0), "31.52");
    assert_eq!(format!("{:.2}", at_zero.remaining_at_storage_days.unwrap()), "10.69");
    let at_four = shelf_life.remaining(&history, 4.0);
    assert_eq!(format!("{:.2}", at_four.remaining_at_storage_days.unwrap()), "5.45");

    // The command line's door: fish class, 12 days at 0 °C, reported at 0 °C and at 4 °C.
    for (storage_celsius, expected) in [(0.0, "10.69"), (4.0, "5.45")] {
        let mut options = AnalysisOptions::new(ProductClass::Fish);
        options.shelf_life = Some(ShelfLifeRequest { days: 12.0, reference_celsius: 0.0, storage_celsius });
        let analysis = analyse(&csv(&steps, 15), &options).unwrap();
        let days = analysis.remaining_shelf_life_days.unwrap();
        assert_eq!(format!("{days:.2}"), expected);
        let json = serde_json::to_value(&analysis).unwrap();
        assert_eq!(json["remaining_shelf_life_days"].to_string(), expected);
    }
}

/// Temperature steps as (°C, hours).
type Steps = [(f64, f64)];

/// WHO PQS rules over readings every 5 minutes; `expected` lists the rules that alarm.
fn check_who_pqs(steps: &Steps, expected: &[&str]) {
    let series = series(steps, 5);
    let (_, end) = series.span().unwrap();
    let monitor = AlarmMonitor::new(series, AlarmRules::who_pqs());
    let alarms = monitor.alarms(end + SignedDuration::from_mins(1));
    let rules: Vec<&str> = alarms.iter().map(|alarm| alarm.id().rule.as_str()).collect();
    assert_eq!(rules, expected, "steps {steps:?}");
    assert!(alarms.iter().all(|alarm| alarm.state() != AlarmState::Cleared));
}

#[test]
fn who_pqs_inclusive_thresholds() {
    let minute = 1.0 / 60.0;
    let cases: &[(&Steps, &[&str])] = &[
        // Exactly 1 h at 45.0 °C alarms (and starts the 30 °C budget, far from spent).
        (&[(20.0, 1.0), (45.0, 1.0), (20.0, 1.0)], &["heat-45-for-1h"]),
        (&[(20.0, 1.0), (45.0, 1.0 - 5.0 * minute), (20.0, 1.0)], &[]),
        (&[(20.0, 1.0), (44.9, 1.0), (20.0, 1.0)], &[]),
        // ≥ 30 °C for 10 h in total, in two stretches.
        (&[(30.0, 5.0), (25.0, 3.0), (30.0, 5.0), (20.0, 1.0)], &["heat-30-for-10h-total"]),
        (&[(30.0, 5.0), (25.0, 3.0), (30.0, 5.0 - 5.0 * minute), (20.0, 1.0)], &[]),
        (&[(29.9, 12.0), (20.0, 1.0)], &[]),
        // ≤ −0.5 °C for 1 h continuous.
        (&[(4.0, 1.0), (-0.5, 1.0), (4.0, 1.0)], &["freeze-minus-0.5-for-1h"]),
        (&[(4.0, 1.0), (-0.4, 1.0), (4.0, 1.0)], &[]),
        (&[(4.0, 1.0), (-0.5, 1.0 - 5.0 * minute), (4.0, 1.0)], &[]),
    ];
    for &(steps, expected) in cases {
        check_who_pqs(steps, expected);
    }
}
