//! Offline analysis of a data logger's CSV export: the second door to the same exposure code.
//!
//! Input: `time,celsius` rows. Times are ISO 8601 with an offset (`2025-06-01T10:00:00Z`,
//! `2025-06-01 12:00:00+02:00`) or without one, then read in [`AnalysisOptions::time_zone`]
//! (UTC unless set). Rows may come in any order; a repeated time is a duplicate (the series'
//! duplicate rule keeps the warmer). A first line whose second field is not a number is a
//! header; blank lines are skipped; fields may be quoted. At most [`CSV_ROWS_MAX`] rows.
//!
//! The readings form one series whose interval is [`AnalysisOptions::interval`] or, when not
//! given, the median spacing of the readings. The exposure runs from the first reading to one
//! interval after the last (the last reading holds for one interval, like every other).
//!
//! Pass/fail: no gap (unknown time never passes), and for pharma the MKT within the range
//! (USP <1079.2>: a short excursion is judged by the kinetic mean), for the other classes no
//! time out of range at all.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Serialize, Serializer};
use thiserror::Error;

use crate::class::ProductClass;
use crate::exposure::{
    ACTIVATION_ENERGY_OVER_GAS_CONSTANT_KELVIN, Exposure, ExposureOptions, Statistics, Stay, exposure,
};
use crate::reading::Reading;
use crate::series::{Series, add};
use crate::shelf_life::{Q10_DEFAULT, ShelfLife, SpoilageModel};
use crate::temperature::{Placement, TemperatureError, TemperatureRange, Unit, checked_celsius};

/// The most data rows one file may hold (a year of one-minute readings fits).
pub const CSV_ROWS_MAX: usize = 1_000_000;

const LOGGER_DEVICE: &str = "logger";

/// Shelf life to report: the product keeps `days` at `reference_celsius`; report what remains
/// when stored at `storage_celsius` from the end of the file on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShelfLifeRequest {
    pub days: f64,
    pub reference_celsius: f64,
    pub storage_celsius: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisOptions {
    pub class: ProductClass,
    /// Replaces the class's lower bound.
    pub min_celsius: Option<f64>,
    /// Replaces the class's upper bound.
    pub max_celsius: Option<f64>,
    pub shelf_life: Option<ShelfLifeRequest>,
    /// The logger's reading interval; inferred from the readings when `None`.
    pub interval: Option<SignedDuration>,
    /// ΔH/R for MKT and for the pharma shelf-life model, in kelvin.
    pub activation_energy_over_gas_constant_kelvin: f64,
    /// Q10 for the chilled and frozen shelf-life model.
    pub q10: f64,
    /// The zone of times written without an offset.
    pub time_zone: TimeZone,
}

impl AnalysisOptions {
    pub fn new(class: ProductClass) -> AnalysisOptions {
        AnalysisOptions {
            class,
            min_celsius: None,
            max_celsius: None,
            shelf_life: None,
            interval: None,
            activation_energy_over_gas_constant_kelvin: ACTIVATION_ENERGY_OVER_GAS_CONSTANT_KELVIN,
            q10: Q10_DEFAULT,
            time_zone: TimeZone::UTC,
        }
    }

    /// The range checked: the class's, with the overrides.
    pub fn range(&self) -> Result<TemperatureRange, TemperatureError> {
        let class_range = self.class.range();
        TemperatureRange::new(
            self.min_celsius.or(class_range.min_celsius()),
            self.max_celsius.or(class_range.max_celsius()),
        )
    }

    /// The shelf-life model of the class: square root for fish, Q10 for chilled and frozen,
    /// Arrhenius (MKT kinetics) for pharma.
    pub fn spoilage_model(&self) -> SpoilageModel {
        match self.class {
            ProductClass::Fish => SpoilageModel::SquareRoot,
            ProductClass::Chilled | ProductClass::Frozen => SpoilageModel::Q10 { q10: self.q10 },
            ProductClass::Pharma => SpoilageModel::Arrhenius {
                activation_energy_over_gas_constant_kelvin: self.activation_energy_over_gas_constant_kelvin,
            },
        }
    }
}

/// A line that cannot be read, or (line 0) a problem with the options or the file as a whole.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    /// 1-based; 0 when the problem is not on one line.
    pub line: usize,
    pub reason: LineErrorReason,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum LineErrorReason {
    #[error("expected two fields, time,celsius; found {0}")]
    FieldCount(usize),
    #[error("invalid time {0:?}: expected ISO 8601, such as 2025-06-01T10:00:00Z")]
    InvalidTime(String),
    #[error("invalid temperature {0:?}: expected a number of degrees Celsius")]
    InvalidCelsius(String),
    #[error(transparent)]
    Temperature(#[from] TemperatureError),
    #[error("more than {CSV_ROWS_MAX} rows")]
    TooManyRows,
    #[error("the file holds no readings")]
    NoReadings,
    #[error("one reading time only: the interval cannot be inferred; give it")]
    TooFewReadings,
    #[error("invalid options: {0}")]
    InvalidOptions(String),
}

/// One excursion, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysisExcursion {
    #[serde(serialize_with = "timestamp")]
    pub start: Timestamp,
    #[serde(serialize_with = "timestamp")]
    pub end: Timestamp,
    #[serde(serialize_with = "hundredths")]
    pub peak_celsius: f64,
}

/// One gap (unknown time), as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysisGap {
    #[serde(serialize_with = "timestamp")]
    pub start: Timestamp,
    #[serde(serialize_with = "timestamp")]
    pub end: Timestamp,
}

/// The result of an analysis. Serialised (JSON) it has exactly the fields `mkt_celsius`,
/// `min_celsius`, `max_celsius`, `mean_celsius`, `time_out_of_range_s`, `excursions`, `gaps`,
/// `pass` and, when asked, `remaining_shelf_life_days`; temperatures and days are rounded to
/// hundredths, times are RFC 3339 in UTC, durations whole seconds. The fields marked skip are
/// for the text rendering and the caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    #[serde(serialize_with = "hundredths")]
    pub mkt_celsius: f64,
    #[serde(serialize_with = "hundredths")]
    pub min_celsius: f64,
    #[serde(serialize_with = "hundredths")]
    pub max_celsius: f64,
    #[serde(serialize_with = "hundredths")]
    pub mean_celsius: f64,
    #[serde(rename = "time_out_of_range_s")]
    pub time_out_of_range_seconds: i64,
    pub excursions: Vec<AnalysisExcursion>,
    pub gaps: Vec<AnalysisGap>,
    pub pass: bool,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "optional_hundredths")]
    pub remaining_shelf_life_days: Option<f64>,
    #[serde(skip)]
    pub class: ProductClass,
    #[serde(skip)]
    pub range: TemperatureRange,
    #[serde(skip)]
    pub readings: usize,
    #[serde(skip)]
    pub duplicates: usize,
    #[serde(skip)]
    pub interval: SignedDuration,
    #[serde(skip)]
    pub start: Timestamp,
    #[serde(skip)]
    pub end: Timestamp,
    #[serde(skip)]
    pub shelf_life: Option<ShelfLifeRequest>,
    /// Why it failed, or what it passed on.
    #[serde(skip)]
    pub verdict: String,
    /// The full exposure, unrounded.
    #[serde(skip)]
    pub exposure: Exposure,
}

fn timestamp<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(time)
}

fn round_to_hundredths(value: f64) -> f64 {
    let rounded = (value * 100.0).round() / 100.0;
    if rounded == 0.0 { 0.0 } else { rounded }
}

fn hundredths<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(round_to_hundredths(*value))
}

fn optional_hundredths<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.serialize_f64(round_to_hundredths(*value)),
        None => serializer.serialize_none(),
    }
}

fn options_error(message: impl std::fmt::Display) -> LineError {
    LineError { line: 0, reason: LineErrorReason::InvalidOptions(message.to_string()) }
}

/// Analyses a logger file.
pub fn analyse(csv_text: &str, options: &AnalysisOptions) -> Result<Analysis, LineError> {
    let range = options.range().map_err(options_error)?;
    let shelf_life = options
        .shelf_life
        .map(|request| {
            ShelfLife::new(options.spoilage_model(), request.days, request.reference_celsius)
                .map(|shelf_life| (request, shelf_life))
        })
        .transpose()
        .map_err(options_error)?;
    let readings = read_rows(csv_text, &options.time_zone)?;
    let interval = match options.interval {
        Some(interval) => interval,
        None => infer_interval(&readings).ok_or(LineError {
            line: 0,
            reason: if readings.is_empty() { LineErrorReason::NoReadings } else { LineErrorReason::TooFewReadings },
        })?,
    };
    let mut series = Series::new(LOGGER_DEVICE, interval).map_err(options_error)?;
    let added = series.extend(&readings).map_err(options_error)?;
    let (start, end) = series.span().ok_or(LineError { line: 0, reason: LineErrorReason::NoReadings })?;
    let mut exposure_options = ExposureOptions::new(range);
    exposure_options.activation_energy_over_gas_constant_kelvin = options.activation_energy_over_gas_constant_kelvin;
    let stay = Stay { location: LOGGER_DEVICE, series: &series, start, end };
    let exposure = exposure(&[stay], &exposure_options);
    let statistics = exposure.statistics.ok_or(LineError { line: 0, reason: LineErrorReason::NoReadings })?;
    let mkt = statistics.mean_kinetic_celsius;
    let (pass, verdict) = judge(options.class, range, &exposure, statistics);
    let remaining_shelf_life_days = shelf_life.and_then(|(request, shelf_life)| {
        let segments = series.timeline(start, end);
        shelf_life.remaining(&segments, request.storage_celsius).remaining_at_storage_days
    });
    Ok(Analysis {
        mkt_celsius: mkt,
        min_celsius: statistics.min_celsius,
        max_celsius: statistics.max_celsius,
        mean_celsius: statistics.mean_celsius,
        time_out_of_range_seconds: whole_seconds(exposure.time_out_of_range),
        excursions: exposure
            .excursions
            .iter()
            .map(|excursion| AnalysisExcursion {
                start: excursion.start,
                end: excursion.end,
                peak_celsius: excursion.peak_celsius,
            })
            .collect(),
        gaps: exposure.gaps.iter().map(|gap| AnalysisGap { start: gap.start, end: gap.end }).collect(),
        pass,
        remaining_shelf_life_days,
        class: options.class,
        range,
        readings: added,
        duplicates: readings.len() - added,
        interval,
        start,
        end,
        shelf_life: options.shelf_life,
        verdict,
        exposure,
    })
}

/// Pass or fail, and why: any gap fails (unknown is never in range); pharma passes on its mean
/// kinetic temperature within the label range (a short excursion may pass); the other classes
/// pass only when never out of range. The logger analysis and the server's exposures judge alike.
pub fn judge(
    class: ProductClass,
    range: TemperatureRange,
    exposure: &Exposure,
    statistics: Statistics,
) -> (bool, String) {
    let mkt = statistics.mean_kinetic_celsius;
    // What fails the history, then what is worth knowing beside a pass: every finding named, the
    // gravest first (a gap does not hide an excursion).
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    if exposure.time_out_of_range > SignedDuration::ZERO {
        let excursions = format!("{} out of {range}", render_duration(exposure.time_out_of_range));
        // A medicine is judged by its mean kinetic temperature; its excursions are named.
        if class == ProductClass::Pharma { notes.push(excursions) } else { failures.push(excursions) }
    }
    if class == ProductClass::Pharma {
        match range.placement(mkt) {
            Placement::Within => notes.insert(0, format!("MKT {mkt:.2} °C within {range}")),
            Placement::Above => failures.push(format!("MKT {mkt:.2} °C above {range}")),
            Placement::Below => failures.push(format!("MKT {mkt:.2} °C below {range}")),
        }
    }
    if !exposure.gaps.is_empty() {
        failures.push(format!("{} gap(s) of unknown temperature", exposure.gaps.len()));
    }
    let pass = failures.is_empty();
    if pass && notes.is_empty() {
        return (true, format!("always within {range}"));
    }
    (pass, failures.into_iter().chain(notes).collect::<Vec<_>>().join("; "))
}

/// A duration in whole seconds, half a second rounding up.
pub fn whole_seconds(duration: SignedDuration) -> i64 {
    let seconds = duration.as_secs();
    if duration.subsec_nanos() >= 500_000_000 { seconds + 1 } else { seconds }
}

fn read_rows(csv_text: &str, time_zone: &TimeZone) -> Result<Vec<Reading>, LineError> {
    let text = csv_text.strip_prefix('\u{feff}').unwrap_or(csv_text);
    let mut readings = Vec::new();
    let mut first_content_line = true;
    for (index, raw_line) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw_line.trim();
        if content.is_empty() {
            continue;
        }
        let fields: Vec<&str> = content.split(',').map(unquote).collect();
        let is_first = std::mem::replace(&mut first_content_line, false);
        let is_header = is_first
            && fields.get(1).is_some_and(|field| field.parse::<f64>().is_err())
            && parse_time(fields[0], time_zone).is_none();
        if is_header {
            continue;
        }
        if fields.len() != 2 {
            return Err(LineError { line, reason: LineErrorReason::FieldCount(fields.len()) });
        }
        if readings.len() == CSV_ROWS_MAX {
            return Err(LineError { line, reason: LineErrorReason::TooManyRows });
        }
        let line_error = |reason| LineError { line, reason };
        let time = parse_time(fields[0], time_zone)
            .ok_or_else(|| line_error(LineErrorReason::InvalidTime(fields[0].chars().take(64).collect())))?;
        let value: f64 = fields[1]
            .parse()
            .map_err(|_| line_error(LineErrorReason::InvalidCelsius(fields[1].chars().take(64).collect())))?;
        let celsius =
            checked_celsius(value, Unit::Celsius).map_err(|error| line_error(LineErrorReason::Temperature(error)))?;
        let reading = Reading::celsius_at(LOGGER_DEVICE, time, celsius)
            .map_err(|error| line_error(LineErrorReason::InvalidOptions(error.to_string())))?;
        readings.push(reading);
    }
    Ok(readings)
}

fn unquote(field: &str) -> &str {
    let trimmed = field.trim();
    trimmed.strip_prefix('"').and_then(|inner| inner.strip_suffix('"')).unwrap_or(trimmed).trim()
}

fn parse_time(text: &str, time_zone: &TimeZone) -> Option<Timestamp> {
    if let Ok(time) = text.parse::<Timestamp>() {
        return Some(time);
    }
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    time_zone.to_timestamp(civil).ok()
}

/// The median spacing of the distinct reading times; `None` with fewer than two.
fn infer_interval(readings: &[Reading]) -> Option<SignedDuration> {
    let mut times: Vec<Timestamp> = readings.iter().map(Reading::device_time).collect();
    times.sort();
    times.dedup();
    let mut spacings: Vec<SignedDuration> = times.windows(2).map(|pair| pair[1].duration_since(pair[0])).collect();
    if spacings.is_empty() {
        return None;
    }
    spacings.sort();
    Some(spacings[(spacings.len() - 1) / 2])
}

/// `2 h 05 min`, `45 s`, `3 d 4 h 00 min`.
fn render_duration(duration: SignedDuration) -> String {
    let total = whole_seconds(duration);
    let days = total / 86_400;
    let hours = total % 86_400 / 3600;
    let minutes = total % 3600 / 60;
    let seconds = total % 60;
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, _) if seconds == 0 => format!("{minutes} min"),
        (0, 0, _) => format!("{minutes} min {seconds:02} s"),
        (0, _, _) => format!("{hours} h {minutes:02} min"),
        _ => format!("{days} d {hours} h {minutes:02} min"),
    }
}

impl std::fmt::Display for Analysis {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let result = if self.pass { "PASS" } else { "FAIL" };
        writeln!(formatter, "result: {result} ({})", self.verdict)?;
        writeln!(formatter, "class: {} ({})", self.class, self.range)?;
        writeln!(
            formatter,
            "readings: {} from {} to {}, every {} ({} duplicate(s) dropped)",
            self.readings,
            self.start,
            add(self.end, -self.interval),
            render_duration(self.interval),
            self.duplicates
        )?;
        writeln!(formatter, "mean kinetic temperature: {:.2} °C", self.mkt_celsius)?;
        writeln!(
            formatter,
            "min / mean / max: {:.2} / {:.2} / {:.2} °C",
            self.min_celsius, self.mean_celsius, self.max_celsius
        )?;
        writeln!(formatter, "time out of range: {}", render_duration(self.exposure.time_out_of_range))?;
        if self.excursions.is_empty() {
            writeln!(formatter, "excursions: none")?;
        } else {
            writeln!(formatter, "excursions: {}", self.excursions.len())?;
            for excursion in &self.excursions {
                writeln!(
                    formatter,
                    "  {} to {} ({}), peak {:.2} °C",
                    excursion.start,
                    excursion.end,
                    render_duration(excursion.end.duration_since(excursion.start)),
                    excursion.peak_celsius
                )?;
            }
        }
        if self.gaps.is_empty() {
            writeln!(formatter, "gaps: none")?;
        } else {
            writeln!(formatter, "gaps: {}", self.gaps.len())?;
            for gap in &self.gaps {
                writeln!(
                    formatter,
                    "  {} to {} ({})",
                    gap.start,
                    gap.end,
                    render_duration(gap.end.duration_since(gap.start))
                )?;
            }
        }
        if let (Some(request), Some(days)) = (self.shelf_life, self.remaining_shelf_life_days) {
            writeln!(
                formatter,
                "remaining shelf life: {days:.2} days at {:.2} °C (of {} days at {:.2} °C)",
                request.storage_celsius, request.days, request.reference_celsius
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_error(csv: &str, expected: &str) {
        let error = analyse(csv, &AnalysisOptions::new(ProductClass::Chilled)).unwrap_err();
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn bad_rows_name_their_line() {
        check_error(
            "time,celsius\n2025-06-01T10:00:00Z,3\n\n2025-06-01T10:10:00Z,warm\n",
            "line 4: invalid temperature \"warm\": expected a number of degrees Celsius",
        );
        check_error(
            "2025-06-01T10:00:00Z,3\nnoon,3\n",
            "line 2: invalid time \"noon\": expected ISO 8601, such as 2025-06-01T10:00:00Z",
        );
        check_error("2025-06-01T10:00:00Z,3\n2025-06-01T10:05:00Z,NaN\n", "line 2: the value is not a finite number");
        check_error(
            "2025-06-01T10:00:00Z,3\n2025-06-01T10:05:00Z,-300\n",
            "line 2: -300 °C is outside the plausible -100..100 °C",
        );
        check_error("2025-06-01T10:00:00Z,3,4\n", "line 1: expected two fields, time,celsius; found 3");
        check_error("time,celsius\n", "line 0: the file holds no readings");
        check_error(
            "2025-06-01T10:00:00Z,3\n",
            "line 0: one reading time only: the interval cannot be inferred; give it",
        );
    }

    #[test]
    fn reads_headers_quotes_offsets_local_times_and_duplicates() {
        let csv = "\u{feff}\"Time\",\"Temperature (°C)\"\r\n\
                   2025-06-01 12:10:00+02:00,3.0\r\n\
                   \"2025-06-01T10:00:00Z\",\"2.0\"\r\n\
                   2025-06-01T10:05:00,2.5\r\n\
                   2025-06-01T10:05:00Z,2.5\r\n";
        let analysis = analyse(csv, &AnalysisOptions::new(ProductClass::Chilled)).unwrap();
        assert_eq!(analysis.readings, 3);
        assert_eq!(analysis.duplicates, 1);
        assert_eq!(analysis.interval, SignedDuration::from_mins(5));
        assert_eq!(analysis.min_celsius, 2.0);
        assert_eq!(analysis.max_celsius, 3.0);
        assert!(analysis.pass);
        let mut options = AnalysisOptions::new(ProductClass::Chilled);
        options.time_zone = TimeZone::get("Europe/Amsterdam").unwrap();
        let shifted = analyse(csv, &options).unwrap();
        // 10:05 local is 08:05 UTC: four distinct times now.
        assert_eq!(shifted.readings, 4);
    }

    #[test]
    fn json_has_exactly_the_documented_fields() {
        let csv = "2025-06-01T10:00:00Z,3\n2025-06-01T10:10:00Z,5.123\n2025-06-01T10:20:00Z,3\n\
                   2025-06-01T11:00:00Z,3\n";
        let mut options = AnalysisOptions::new(ProductClass::Chilled);
        let plain = serde_json::to_value(analyse(csv, &options).unwrap()).unwrap();
        assert_eq!(
            plain.to_string(),
            r#"{"excursions":[{"end":"2025-06-01T10:20:00Z","peak_celsius":5.12,"start":"2025-06-01T10:10:00Z"}],"gaps":[{"end":"2025-06-01T11:00:00Z","start":"2025-06-01T10:30:00Z"}],"max_celsius":5.12,"mean_celsius":3.53,"min_celsius":3.0,"mkt_celsius":3.58,"pass":false,"time_out_of_range_s":600}"#
        );
        options.shelf_life = Some(ShelfLifeRequest { days: 10.0, reference_celsius: 4.0, storage_celsius: 4.0 });
        let with_shelf_life = serde_json::to_value(analyse(csv, &options).unwrap()).unwrap();
        assert!(with_shelf_life["remaining_shelf_life_days"].is_f64());
        assert_eq!(with_shelf_life.as_object().unwrap().len(), 9);
    }

    #[test]
    fn the_verdict_names_every_finding_the_gravest_first() {
        // 10 min above range, then a gap of 30 min.
        let csv = "2025-06-01T10:00:00Z,5\n2025-06-01T10:10:00Z,12\n2025-06-01T10:20:00Z,5\n\
                   2025-06-01T11:00:00Z,5\n";
        let verdict = |class| {
            let analysis = analyse(csv, &AnalysisOptions::new(class)).unwrap();
            (analysis.pass, analysis.verdict)
        };
        assert_eq!(
            verdict(ProductClass::Pharma),
            (false, "1 gap(s) of unknown temperature; MKT 7.37 °C within 2.00 °C to 8.00 °C; 10 min out of 2.00 °C to 8.00 °C".to_owned())
        );
        let (pass, text) = verdict(ProductClass::Chilled);
        assert!(!pass);
        assert!(text.starts_with("40 min out of 0.00 °C to 4.00 °C; 1 gap(s)"), "{text}");
        // Without the gap, a medicine whose MKT is within passes; its excursion is still named.
        let short = "2025-06-01T10:00:00Z,5\n2025-06-01T10:10:00Z,9\n2025-06-01T10:20:00Z,5\n";
        let analysis = analyse(short, &AnalysisOptions::new(ProductClass::Pharma)).unwrap();
        assert!(analysis.pass, "{}", analysis.verdict);
        assert!(analysis.verdict.contains("10 min out of 2.00 °C to 8.00 °C"), "{}", analysis.verdict);
    }

    #[test]
    fn renders_text() {
        let csv = "2025-06-01T10:00:00Z,3\n2025-06-01T10:10:00Z,5.5\n2025-06-01T10:20:00Z,3\n";
        let mut options = AnalysisOptions::new(ProductClass::Chilled);
        options.shelf_life = Some(ShelfLifeRequest { days: 10.0, reference_celsius: 4.0, storage_celsius: 4.0 });
        let text = analyse(csv, &options).unwrap().to_string();
        assert_eq!(
            text,
            "result: FAIL (10 min out of 0.00 °C to 4.00 °C)
class: chilled (0.00 °C to 4.00 °C)
readings: 3 from 2025-06-01T10:00:00Z to 2025-06-01T10:20:00Z, every 10 min (0 duplicate(s) dropped)
mean kinetic temperature: 3.92 °C
min / mean / max: 3.00 / 3.83 / 5.50 °C
time out of range: 10 min
excursions: 1
  2025-06-01T10:10:00Z to 2025-06-01T10:20:00Z (10 min), peak 5.50 °C
gaps: none
remaining shelf life: 9.98 days at 4.00 °C (of 10 days at 4.00 °C)
"
        );
    }
}
