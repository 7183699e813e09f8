//! The readings of one device, in order, and the timeline they describe.
//!
//! # Weighting (the hold rule)
//!
//! A reading stands for the temperature from its (corrected) time until the next reading,
//! when the next reading comes within twice the device's reading interval. When it does not
//! (a gap longer than twice the interval), or when it is the last reading, the reading holds
//! for one interval and the rest of the way is *unknown*. Unknown time is never "in range":
//! it is reported as a gap, takes no part in min / max / mean / MKT, and fails a pass/fail
//! check. Exactly twice the interval is not a gap.
//!
//! With this rule, n equally spaced readings weigh equally (the last one too), and "5 °C for
//! 6 h" sampled every interval is exactly 6 h at 5 °C.
//!
//! # Duplicates and order
//!
//! Readings are placed by device time, whatever order they arrive in. A reading with the same
//! device time as one already held is a duplicate and is dropped. When the two differ, the one
//! received first is kept; on equal receive times, the warmer one (the conservative choice).
//! The choice depends only on the set of readings, never on arrival order or batching.
//!
//! The timeline uses each reading's corrected time; if two readings' corrected times coincide
//! the one with the earlier device time is used.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry as MapEntry;

use jiff::{SignedDuration, Timestamp};
use thiserror::Error;

use crate::reading::Reading;

/// The longest accepted reading interval: one day.
pub const READING_INTERVAL_MAX: SignedDuration = SignedDuration::from_hours(24);

#[derive(Debug, Clone, PartialEq, Error)]
pub enum SeriesError {
    #[error("the reading interval must be positive and at most 24 h, found {0}")]
    InvalidInterval(SignedDuration),
    #[error("the reading is from device {found:?}, not {expected:?}")]
    OtherDevice { expected: String, found: String },
}

/// What became of an inserted reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insertion {
    Added,
    /// A reading with the same device time was already held; the kept one is chosen by the
    /// duplicate rule, so this may have replaced it.
    Duplicate,
}

/// A stretch of the timeline: a known temperature, or unknown (`None`: a gap).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub start: Timestamp,
    pub end: Timestamp,
    pub celsius: Option<f64>,
}

impl Segment {
    pub fn duration(&self) -> SignedDuration {
        self.end.duration_since(self.start)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Held {
    received_at: Timestamp,
    corrected_time: Timestamp,
    celsius: f64,
}

impl Held {
    /// Whether `self` is kept over `other` for the same device time.
    fn preferred_over(&self, other: &Held) -> bool {
        (self.received_at, std::cmp::Reverse(OrderedCelsius(self.celsius)))
            < (other.received_at, std::cmp::Reverse(OrderedCelsius(other.celsius)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct OrderedCelsius(f64);

impl Eq for OrderedCelsius {}

impl PartialOrd for OrderedCelsius {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedCelsius {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The readings of one device with its nominal reading interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    device: String,
    interval: SignedDuration,
    readings: BTreeMap<Timestamp, Held>,
}

impl Series {
    pub fn new(device: &str, interval: SignedDuration) -> Result<Series, SeriesError> {
        if interval <= SignedDuration::ZERO || interval > READING_INTERVAL_MAX {
            return Err(SeriesError::InvalidInterval(interval));
        }
        Ok(Series { device: device.to_owned(), interval, readings: BTreeMap::new() })
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn interval(&self) -> SignedDuration {
        self.interval
    }

    pub fn len(&self) -> usize {
        self.readings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.readings.is_empty()
    }

    /// The readings taken in `[start, end)` (a period's own, not those read around it to know
    /// the temperature at its edges).
    pub fn count_within(&self, start: Timestamp, end: Timestamp) -> usize {
        if end <= start {
            return 0;
        }
        self.readings.range(start..end).count()
    }

    pub fn insert(&mut self, reading: &Reading) -> Result<Insertion, SeriesError> {
        if reading.device() != self.device {
            return Err(SeriesError::OtherDevice { expected: self.device.clone(), found: reading.device().to_owned() });
        }
        let held = Held {
            received_at: reading.received_at(),
            corrected_time: reading.corrected_time(),
            celsius: reading.celsius(),
        };
        match self.readings.entry(reading.device_time()) {
            MapEntry::Vacant(vacant) => {
                vacant.insert(held);
                Ok(Insertion::Added)
            }
            MapEntry::Occupied(mut occupied) => {
                if held.preferred_over(occupied.get()) {
                    occupied.insert(held);
                }
                Ok(Insertion::Duplicate)
            }
        }
    }

    /// Inserts a batch; returns how many were added (the rest were duplicates). Readings of
    /// another device are an error and nothing after them is inserted.
    pub fn extend<'a>(&mut self, readings: impl IntoIterator<Item = &'a Reading>) -> Result<usize, SeriesError> {
        let mut added = 0;
        for reading in readings {
            if self.insert(reading)? == Insertion::Added {
                added += 1;
            }
        }
        Ok(added)
    }

    /// The held readings as (corrected time, °C), in timeline order.
    pub fn points(&self) -> Vec<(Timestamp, f64)> {
        let mut points: Vec<(Timestamp, f64)> =
            self.readings.values().map(|held| (held.corrected_time, held.celsius)).collect();
        if !points.is_sorted_by_key(|point| point.0) {
            // Stable: equal corrected times keep device-time order.
            points.sort_by_key(|point| point.0);
        }
        points.dedup_by_key(|point| point.0);
        points
    }

    /// The corrected time of the first reading and the end of the last reading's hold.
    pub fn span(&self) -> Option<(Timestamp, Timestamp)> {
        let points = self.points();
        let first = points.first()?.0;
        let last = points.last()?.0;
        Some((first, add(last, self.interval)))
    }

    /// The timeline from `start` to `end` under the hold rule: consecutive, non-overlapping
    /// segments covering exactly `[start, end)`, unknown where no reading holds.
    pub fn timeline(&self, start: Timestamp, end: Timestamp) -> Vec<Segment> {
        timeline(&self.points(), self.interval, start, end)
    }
}

/// Adds a duration, saturating at the ends of the representable range.
pub(crate) fn add(time: Timestamp, duration: SignedDuration) -> Timestamp {
    time.checked_add(duration).unwrap_or(if duration.is_negative() { Timestamp::MIN } else { Timestamp::MAX })
}

/// The hold rule over points sorted by time with distinct times (see the module docs).
pub(crate) fn timeline(
    points: &[(Timestamp, f64)],
    interval: SignedDuration,
    start: Timestamp,
    end: Timestamp,
) -> Vec<Segment> {
    let mut segments = Vec::new();
    if start >= end {
        return segments;
    }
    let gap_limit = interval.checked_mul(2).unwrap_or(SignedDuration::MAX);
    let mut push = |segment_start: Timestamp, segment_end: Timestamp, celsius: Option<f64>| {
        let clipped_start = segment_start.max(start);
        let clipped_end = segment_end.min(end);
        if clipped_start < clipped_end {
            segments.push(Segment { start: clipped_start, end: clipped_end, celsius });
        }
    };
    // No reading before this index can hold into `start`.
    let earliest = add(start, -gap_limit);
    let first_index = points.partition_point(|point| point.0 < earliest);
    let mut covered_until = start;
    for (index, &(time, celsius)) in points.iter().enumerate().skip(first_index) {
        if time >= end {
            break;
        }
        let next = points.get(index + 1).map(|point| point.0);
        let hold_end = match next {
            Some(next_time) if next_time.duration_since(time) <= gap_limit => next_time,
            _ => add(time, interval),
        };
        if time > covered_until {
            push(covered_until, time, None);
        }
        push(time, hold_end, Some(celsius));
        covered_until = covered_until.max(hold_end);
    }
    if covered_until < end {
        push(covered_until, end, None);
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> Timestamp {
        add("2025-01-01T00:00:00Z".parse().unwrap(), SignedDuration::from_mins(minute))
    }

    fn reading(minute: i64, celsius: f64) -> Reading {
        Reading::celsius_at("d1", at(minute), celsius).unwrap()
    }

    /// Renders a timeline as `start-end:value` in minutes from midnight, `?` for unknown.
    fn check(readings: &[(i64, f64)], from: i64, to: i64, expected: &str) {
        let mut series = Series::new("d1", SignedDuration::from_mins(10)).unwrap();
        for &(minute, celsius) in readings {
            series.insert(&reading(minute, celsius)).unwrap();
        }
        let origin = at(0);
        let rendered: Vec<String> = series
            .timeline(at(from), at(to))
            .iter()
            .map(|segment| {
                let start = segment.start.duration_since(origin).as_mins();
                let end = segment.end.duration_since(origin).as_mins();
                match segment.celsius {
                    Some(celsius) => format!("{start}-{end}:{celsius}"),
                    None => format!("{start}-{end}:?"),
                }
            })
            .collect();
        assert_eq!(rendered.join(" "), expected);
    }

    #[test]
    fn each_reading_holds_until_the_next() {
        check(&[(0, 1.0), (10, 2.0), (20, 3.0)], 0, 30, "0-10:1 10-20:2 20-30:3");
    }

    #[test]
    fn out_of_order_readings_are_placed_by_time() {
        check(&[(20, 3.0), (0, 1.0), (10, 2.0)], 0, 30, "0-10:1 10-20:2 20-30:3");
    }

    #[test]
    fn exactly_twice_the_interval_is_not_a_gap() {
        check(&[(0, 1.0), (20, 2.0)], 0, 30, "0-20:1 20-30:2");
    }

    #[test]
    fn a_longer_gap_is_unknown_after_one_interval() {
        check(&[(0, 1.0), (21, 2.0)], 0, 31, "0-10:1 10-21:? 21-31:2");
    }

    #[test]
    fn before_the_first_and_after_the_last_hold_is_unknown() {
        check(&[(10, 1.0), (20, 2.0)], 0, 45, "0-10:? 10-20:1 20-30:2 30-45:?");
    }

    #[test]
    fn a_reading_before_the_window_holds_into_it() {
        check(&[(0, 1.0), (10, 2.0), (20, 3.0)], 5, 15, "5-10:1 10-15:2");
        check(&[(0, 1.0)], 5, 15, "5-10:1 10-15:?");
    }

    #[test]
    fn duplicates_keep_the_first_received_then_the_warmer() {
        let mut series = Series::new("d1", SignedDuration::from_mins(10)).unwrap();
        let early = Reading::new("d1", at(0), at(1), 4.0, crate::Unit::Celsius).unwrap();
        let late = Reading::new("d1", at(0), at(2), 9.0, crate::Unit::Celsius).unwrap();
        assert_eq!(series.insert(&late), Ok(Insertion::Added));
        assert_eq!(series.insert(&early), Ok(Insertion::Duplicate));
        assert_eq!(series.points(), [(at(0), 4.0)]);
        let warmer = Reading::new("d1", at(0), at(1), 5.0, crate::Unit::Celsius).unwrap();
        assert_eq!(series.insert(&warmer), Ok(Insertion::Duplicate));
        assert_eq!(series.points(), [(at(0), 5.0)]);
        assert_eq!(series.insert(&early), Ok(Insertion::Duplicate));
        assert_eq!(series.points(), [(at(0), 5.0)]);
    }

    #[test]
    fn refuses_other_devices_and_bad_intervals() {
        let mut series = Series::new("d1", SignedDuration::from_mins(10)).unwrap();
        let other = Reading::celsius_at("d2", at(0), 1.0).unwrap();
        assert!(matches!(series.insert(&other), Err(SeriesError::OtherDevice { .. })));
        assert!(Series::new("d1", SignedDuration::ZERO).is_err());
        assert!(Series::new("d1", SignedDuration::from_hours(25)).is_err());
    }
}
