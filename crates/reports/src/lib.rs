//! Temperature reports for good distribution practice (GDP): what a QA person signs off a lot or
//! a pallet with. A [`TemperatureReport`] holds the figures (computed elsewhere, by `coldchain`
//! from the custody and the readings) and renders them as CSV ([`TemperatureReport::to_csv`]) or
//! as a PDF ([`TemperatureReport::to_pdf`]) with a chart of the readings against the limits.
//!
//! Rendering does no IO and depends on nothing but the report: the same report gives the same
//! bytes.

mod csv;
pub mod pdf;

use jiff::Timestamp;

/// Readings drawn in the PDF chart, at most (evenly thinned beyond).
pub const CHART_POINTS_MAX: usize = 2_000;
/// Rows of each PDF table (excursions, stays, alarms, events), at most; the rest is counted.
pub const TABLE_ROWS_MAX: usize = 60;

/// A stretch of time, with the worst temperature when it is an excursion.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
    pub peak_celsius: Option<f64>,
}

/// Where the goods were and which device measured there.
#[derive(Debug, Clone, PartialEq)]
pub struct StayLine {
    pub location: String,
    pub device: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceLine {
    pub device: String,
    pub name: String,
    /// `YYYY-MM-DD`, when known.
    pub calibrated_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmLine {
    pub alarm_id: String,
    pub device: String,
    pub rule: String,
    pub severity: String,
    pub state: String,
    pub opened_at: Timestamp,
    pub acknowledged_by: Option<String>,
    pub comment: Option<String>,
}

/// An EPCIS event the report rests on, with its index in the transparency log.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    pub time: Timestamp,
    pub business_step: String,
    pub log_index: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadingLine {
    pub time: Timestamp,
    pub device: String,
    pub location: String,
    pub celsius: f64,
}

/// What a product's shelf life has left after its measured history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShelfLifeLine {
    /// The temperature it is told at (and rated at).
    pub storage_celsius: f64,
    /// Days left when kept at `storage_celsius` from now on.
    pub days_left: f64,
    /// The rated shelf life, in days at `storage_celsius`.
    pub rated_days: u32,
    /// Hours at `storage_celsius` the measured history used up.
    pub used_hours: f64,
}

impl ShelfLifeLine {
    /// `at 4 °C: 5.2 days left of 12 (the measured history used 31.5 h at 4 °C)`.
    pub fn text(&self) -> String {
        let storage = self.storage_celsius;
        format!(
            "at {storage:.0} °C: {:.1} days left of {} (the measured history used {:.1} h at {storage:.0} °C)",
            self.days_left, self.rated_days, self.used_hours
        )
    }
}

/// The figures of the exposure; `None` when no time had a known temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub mkt_celsius: f64,
    pub min_celsius: f64,
    pub max_celsius: f64,
    pub mean_celsius: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemperatureReport {
    /// What the report is about: `Lot V1 of GTIN 05901234100014`, `SSCC 3…`.
    pub subject: String,
    pub tenant: String,
    pub generated_at: Timestamp,
    /// The product class and its range, e.g. `pharma`, (2, 8).
    pub class: Option<String>,
    pub min_range_celsius: Option<f64>,
    pub max_range_celsius: Option<f64>,
    pub period: Option<(Timestamp, Timestamp)>,
    pub figures: Option<Figures>,
    pub time_out_of_range_s: i64,
    pub pass: bool,
    pub verdict: String,
    /// Remaining shelf life from the measured history.
    pub shelf_life: Option<ShelfLifeLine>,
    pub excursions: Vec<Period>,
    pub gaps: Vec<Period>,
    pub stays: Vec<StayLine>,
    pub devices: Vec<DeviceLine>,
    pub alarms: Vec<AlarmLine>,
    pub events: Vec<EventLine>,
    pub readings: Vec<ReadingLine>,
}

impl TemperatureReport {
    /// The range as text: `2.0 to 8.0 °C`, `at most -18.0 °C`, `none`.
    pub fn range_text(&self) -> String {
        match (self.min_range_celsius, self.max_range_celsius) {
            (Some(min), Some(max)) => format!("{min:.1} to {max:.1} °C"),
            (Some(min), None) => format!("at least {min:.1} °C"),
            (None, Some(max)) => format!("at most {max:.1} °C"),
            (None, None) => "none".to_owned(),
        }
    }

    /// The CSV export: `#` lines with the figures, then one row per reading.
    pub fn to_csv(&self) -> String {
        csv::render(self)
    }

    /// The PDF: figures, a chart of the readings against the limits, and the tables.
    pub fn to_pdf(&self) -> Vec<u8> {
        pdf::render(self)
    }

    /// The summary lines both renderings start with, as (label, value).
    pub fn summary(&self) -> Vec<(&'static str, String)> {
        let celsius = |value: f64| format!("{value:.2} °C");
        let mut lines = vec![
            ("Subject", self.subject.clone()),
            ("Tenant", self.tenant.clone()),
            ("Generated", self.generated_at.to_string()),
            ("Class", self.class.clone().unwrap_or_else(|| "none".to_owned())),
            ("Range", self.range_text()),
        ];
        if let Some((start, end)) = self.period {
            lines.push(("Period", format!("{start} to {end}")));
        }
        match self.figures {
            Some(figures) => {
                lines.push(("MKT", celsius(figures.mkt_celsius)));
                lines.push(("Minimum", celsius(figures.min_celsius)));
                lines.push(("Maximum", celsius(figures.max_celsius)));
                lines.push(("Mean", celsius(figures.mean_celsius)));
            }
            None => lines.push(("MKT", "no reading".to_owned())),
        }
        lines.push(("Time out of range", duration_text(self.time_out_of_range_s)));
        lines.push(("Excursions", self.excursions.len().to_string()));
        lines.push(("Gaps", self.gaps.len().to_string()));
        lines.push(("Result", format!("{}: {}", if self.pass { "PASS" } else { "FAIL" }, self.verdict)));
        if let Some(shelf_life) = &self.shelf_life {
            lines.push(("Shelf life", shelf_life.text()));
        }
        lines
    }
}

/// `1 h 30 min`, `45 s`.
pub fn duration_text(seconds: i64) -> String {
    let (hours, minutes, seconds) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (hours, minutes, seconds) {
        (0, 0, seconds) => format!("{seconds} s"),
        (0, minutes, 0) => format!("{minutes} min"),
        (0, minutes, seconds) => format!("{minutes} min {seconds} s"),
        (hours, minutes, _) => format!("{hours} h {minutes} min"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> TemperatureReport {
        let start: Timestamp = "2026-11-30T06:00:00Z".parse().unwrap();
        let at = |minute: i64| start + jiff::SignedDuration::from_mins(minute);
        let readings = (0..240)
            .map(|minute| ReadingLine {
                time: at(minute),
                device: "logger-p1".into(),
                location: "SSCC 387123450000000707".into(),
                celsius: if (60..110).contains(&minute) { 11.0 } else { 5.0 },
            })
            .collect();
        TemperatureReport {
            subject: "Lot V1 of GTIN 05901234100014".into(),
            tenant: "medi".into(),
            generated_at: at(300),
            class: Some("pharma".into()),
            min_range_celsius: Some(2.0),
            max_range_celsius: Some(8.0),
            period: Some((at(0), at(240))),
            figures: Some(Figures { mkt_celsius: 7.43, min_celsius: 5.0, max_celsius: 11.0, mean_celsius: 5.63 }),
            time_out_of_range_s: 3000,
            pass: false,
            verdict: "out of range for 50 min".into(),
            shelf_life: None,
            excursions: vec![Period { start: at(60), end: at(110), peak_celsius: Some(11.0) }],
            gaps: Vec::new(),
            stays: vec![StayLine {
                location: "SSCC 387123450000000707".into(),
                device: "logger-p1".into(),
                start: at(0),
                end: at(240),
            }],
            devices: vec![DeviceLine {
                device: "logger-p1".into(),
                name: "Pallet logger, \"reefer\"".into(),
                calibrated_on: Some("2026-03-02".into()),
            }],
            alarms: vec![AlarmLine {
                alarm_id: "alm_1".into(),
                device: "logger-p1".into(),
                rule: "above-8-for-30min".into(),
                severity: "critical".into(),
                state: "cleared".into(),
                opened_at: at(90),
                acknowledged_by: Some("Anna (QA)".into()),
                comment: Some("reefer door (checked)".into()),
            }],
            events: vec![EventLine { time: at(240), business_step: "receiving".into(), log_index: Some(12) }],
            readings,
        }
    }

    #[test]
    fn shelf_life_reads_with_its_temperature() {
        let line = ShelfLifeLine { storage_celsius: 4.0, days_left: 5.449, rated_days: 12, used_hours: 31.52 };
        assert_eq!(line.text(), "at 4 °C: 5.4 days left of 12 (the measured history used 31.5 h at 4 °C)");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_text(45), "45 s");
        assert_eq!(duration_text(3000), "50 min");
        assert_eq!(duration_text(5400), "1 h 30 min");
        assert_eq!(duration_text(90), "1 min 30 s");
    }

    #[test]
    fn the_summary_says_pass_or_fail_with_the_figures() {
        let report = sample();
        let summary = report.summary();
        let value = |label: &str| summary.iter().find(|(name, _)| *name == label).map(|(_, value)| value.clone());
        assert_eq!(value("MKT").as_deref(), Some("7.43 °C"));
        assert_eq!(value("Range").as_deref(), Some("2.0 to 8.0 °C"));
        assert_eq!(value("Result").as_deref(), Some("FAIL: out of range for 50 min"));
        assert_eq!(value("Time out of range").as_deref(), Some("50 min"));
    }
}
