//! Exposure of a lot, an SSCC or a zone over its stays: time per location, min / max /
//! duration-weighted mean, duration-weighted mean kinetic temperature, time out of range,
//! excursions and gaps.
//!
//! The caller passes the stays (which location, which device's series, from when to when —
//! from custody, EPCIS events or a logger file); every figure comes from the timelines of
//! those stays under the hold rule (see [`crate::series`]). Unknown time (gaps) counts in the
//! time per location but in no temperature figure, and is listed in `gaps`.
//!
//! Mean kinetic temperature (USP <1079.2>):
//! `MKT = (ΔH/R) / −ln( Σ tᵢ·e^(−ΔH/(R·Tᵢ)) / Σ tᵢ )`, temperatures in kelvin
//! (`T = °C + 273.15`), `tᵢ` each segment's duration. ΔH/R defaults to 10,000 K.

use jiff::{SignedDuration, Timestamp};

use crate::series::{Segment, Series};
use crate::temperature::{Placement, TemperatureRange, ZERO_CELSIUS_KELVIN};

/// The default ΔH/R for mean kinetic temperature: 10,000 K (ΔH = 83.144 kJ/mol).
pub const ACTIVATION_ENERGY_OVER_GAS_CONSTANT_KELVIN: f64 = 10_000.0;

/// One stay of the goods: a location, the series of the device that measured there, and the
/// interval `[start, end)`.
#[derive(Debug, Clone, Copy)]
pub struct Stay<'a> {
    pub location: &'a str,
    pub series: &'a Series,
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExposureOptions {
    /// The product's range; an excursion is a stretch outside it (both ends inclusive in range).
    pub range: TemperatureRange,
    /// ΔH/R for mean kinetic temperature, in kelvin.
    pub activation_energy_over_gas_constant_kelvin: f64,
}

impl ExposureOptions {
    pub fn new(range: TemperatureRange) -> ExposureOptions {
        ExposureOptions {
            range,
            activation_energy_over_gas_constant_kelvin: ACTIVATION_ENERGY_OVER_GAS_CONSTANT_KELVIN,
        }
    }
}

/// Time spent at one location.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationTime {
    pub location: String,
    pub duration: SignedDuration,
    /// The part of `duration` with a known temperature.
    pub known_duration: SignedDuration,
}

/// A stretch outside the range, on one side of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Excursion {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The warmest temperature of an excursion above the range, the coldest of one below.
    pub peak_celsius: f64,
    pub side: Placement,
}

/// A stretch with no known temperature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Temperature statistics; `None` when no time has a known temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Statistics {
    pub min_celsius: f64,
    pub max_celsius: f64,
    pub mean_celsius: f64,
    pub mean_kinetic_celsius: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exposure {
    pub time_per_location: Vec<LocationTime>,
    pub duration: SignedDuration,
    pub known_duration: SignedDuration,
    pub statistics: Option<Statistics>,
    pub time_out_of_range: SignedDuration,
    pub excursions: Vec<Excursion>,
    pub gaps: Vec<Gap>,
}

/// The exposure over the stays, taken in order of start time. Stays should not overlap; an
/// excursion or a gap running from one stay into the next (end equals start) is one.
pub fn exposure(stays: &[Stay<'_>], options: &ExposureOptions) -> Exposure {
    let mut ordered: Vec<&Stay<'_>> = stays.iter().collect();
    ordered.sort_by_key(|stay| (stay.start, stay.end));
    let mut time_per_location: Vec<LocationTime> = Vec::new();
    let mut segments = Vec::new();
    for stay in ordered {
        let timeline = stay.series.timeline(stay.start, stay.end);
        let duration: SignedDuration = timeline.iter().map(Segment::duration).sum();
        let known_duration: SignedDuration =
            timeline.iter().filter(|segment| segment.celsius.is_some()).map(Segment::duration).sum();
        match time_per_location.iter_mut().find(|entry| entry.location == stay.location) {
            Some(entry) => {
                entry.duration += duration;
                entry.known_duration += known_duration;
            }
            None => {
                time_per_location.push(LocationTime { location: stay.location.to_owned(), duration, known_duration })
            }
        }
        segments.extend(timeline);
    }
    let mut exposure = exposure_of_segments(&segments, options);
    exposure.time_per_location = time_per_location;
    exposure
}

/// The exposure of a timeline (segments in time order). `time_per_location` is left empty.
pub fn exposure_of_segments(segments: &[Segment], options: &ExposureOptions) -> Exposure {
    let mut duration = SignedDuration::ZERO;
    let mut known_duration = SignedDuration::ZERO;
    let mut time_out_of_range = SignedDuration::ZERO;
    let mut excursions: Vec<Excursion> = Vec::new();
    let mut gaps: Vec<Gap> = Vec::new();
    for segment in segments {
        let length = segment.duration();
        if length <= SignedDuration::ZERO {
            continue;
        }
        duration += length;
        let Some(celsius) = segment.celsius else {
            match gaps.last_mut() {
                Some(last) if last.end == segment.start => last.end = segment.end,
                _ => gaps.push(Gap { start: segment.start, end: segment.end }),
            }
            continue;
        };
        known_duration += length;
        let side = options.range.placement(celsius);
        if side == Placement::Within {
            continue;
        }
        time_out_of_range += length;
        match excursions.last_mut() {
            Some(last) if last.end == segment.start && last.side == side => {
                last.end = segment.end;
                last.peak_celsius = match side {
                    Placement::Above => last.peak_celsius.max(celsius),
                    _ => last.peak_celsius.min(celsius),
                };
            }
            _ => excursions.push(Excursion { start: segment.start, end: segment.end, peak_celsius: celsius, side }),
        }
    }
    Exposure {
        time_per_location: Vec::new(),
        duration,
        known_duration,
        statistics: statistics(segments, options.activation_energy_over_gas_constant_kelvin),
        time_out_of_range,
        excursions,
        gaps,
    }
}

/// Known temperatures with their weights in seconds.
fn weighted(segments: &[Segment]) -> impl Iterator<Item = (f64, f64)> + Clone + '_ {
    segments.iter().filter_map(|segment| {
        let seconds = segment.duration().as_secs_f64();
        match segment.celsius {
            Some(celsius) if seconds > 0.0 => Some((celsius, seconds)),
            _ => None,
        }
    })
}

fn statistics(segments: &[Segment], activation_kelvin: f64) -> Option<Statistics> {
    let mut min_celsius = f64::INFINITY;
    let mut max_celsius = f64::NEG_INFINITY;
    let mut weighted_sum = 0.0;
    let mut total_seconds = 0.0;
    for (celsius, seconds) in weighted(segments) {
        min_celsius = min_celsius.min(celsius);
        max_celsius = max_celsius.max(celsius);
        weighted_sum += celsius * seconds;
        total_seconds += seconds;
    }
    if total_seconds <= 0.0 {
        return None;
    }
    let mean_kinetic_celsius = mean_kinetic_temperature(weighted(segments), activation_kelvin)?;
    Some(Statistics { min_celsius, max_celsius, mean_celsius: weighted_sum / total_seconds, mean_kinetic_celsius })
}

/// The duration-weighted mean kinetic temperature in °C of `(celsius, weight)` pairs, or
/// `None` when the weights sum to nothing or ΔH/R is not positive.
///
/// Computed as a log-sum-exp around the largest exponent, so that a large ΔH/R or very cold
/// temperatures do not underflow.
pub fn mean_kinetic_temperature(
    weighted_celsius: impl Iterator<Item = (f64, f64)> + Clone,
    activation_energy_over_gas_constant_kelvin: f64,
) -> Option<f64> {
    let ratio = activation_energy_over_gas_constant_kelvin;
    if !(ratio.is_finite() && ratio > 0.0) {
        return None;
    }
    let exponent = |celsius: f64| -ratio / (celsius + ZERO_CELSIUS_KELVIN);
    let largest = weighted_celsius
        .clone()
        .filter(|&(_, weight)| weight > 0.0)
        .map(|(celsius, _)| exponent(celsius))
        .fold(f64::NEG_INFINITY, f64::max);
    if !largest.is_finite() {
        return None;
    }
    let mut sum = 0.0;
    let mut total_weight = 0.0;
    for (celsius, weight) in weighted_celsius.filter(|&(_, weight)| weight > 0.0) {
        sum += weight * (exponent(celsius) - largest).exp();
        total_weight += weight;
    }
    let logarithm = largest + (sum / total_weight).ln();
    Some(-ratio / logarithm - ZERO_CELSIUS_KELVIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::Reading;

    fn at(minute: i64) -> Timestamp {
        crate::series::add("2025-01-01T00:00:00Z".parse().unwrap(), SignedDuration::from_mins(minute))
    }

    fn series(device: &str, readings: &[(i64, f64)]) -> Series {
        let mut series = Series::new(device, SignedDuration::from_mins(10)).unwrap();
        for &(minute, celsius) in readings {
            series.insert(&Reading::celsius_at(device, at(minute), celsius).unwrap()).unwrap();
        }
        series
    }

    #[test]
    fn mean_kinetic_temperature_of_a_constant_is_the_constant() {
        let mkt = mean_kinetic_temperature([(5.0, 3.0), (5.0, 1.0)].into_iter(), 10_000.0);
        assert!((mkt.unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(mean_kinetic_temperature([(5.0, 0.0)].into_iter(), 10_000.0), None);
        assert_eq!(mean_kinetic_temperature([(5.0, 1.0)].into_iter(), 0.0), None);
    }

    #[test]
    fn excursions_gaps_and_locations_over_two_stays() {
        let reefer = series("reefer", &[(0, 1.0), (10, 3.0), (20, 5.0), (30, 1.5), (40, 1.0)]);
        let room = series("room", &[(50, 2.5), (60, 1.0), (100, 1.0)]);
        let stays = [
            Stay { location: "room", series: &room, start: at(50), end: at(110) },
            Stay { location: "reefer", series: &reefer, start: at(0), end: at(50) },
        ];
        let options = ExposureOptions::new(TemperatureRange::new(Some(0.0), Some(2.0)).unwrap());
        let exposure = exposure(&stays, &options);
        assert_eq!(
            exposure.time_per_location,
            [
                LocationTime {
                    location: "reefer".to_owned(),
                    duration: SignedDuration::from_mins(50),
                    known_duration: SignedDuration::from_mins(50),
                },
                LocationTime {
                    location: "room".to_owned(),
                    duration: SignedDuration::from_mins(60),
                    known_duration: SignedDuration::from_mins(30),
                },
            ]
        );
        assert_eq!(exposure.time_out_of_range, SignedDuration::from_mins(30));
        assert_eq!(
            exposure.excursions,
            [
                Excursion { start: at(10), end: at(30), peak_celsius: 5.0, side: Placement::Above },
                Excursion { start: at(50), end: at(60), peak_celsius: 2.5, side: Placement::Above },
            ]
        );
        assert_eq!(exposure.gaps, [Gap { start: at(70), end: at(100) }]);
        let statistics = exposure.statistics.unwrap();
        assert_eq!(statistics.min_celsius, 1.0);
        assert_eq!(statistics.max_celsius, 5.0);
        // (1 + 3 + 5 + 1.5 + 1 + 2.5 + 1 + 1) × 10 min / 80 min
        assert!((statistics.mean_celsius - 2.0).abs() < 1e-12);
    }
}
