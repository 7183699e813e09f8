//! Sensor values in canonical units, so that a query in one unit matches an event in another
//! (a filter in K finds a reading in °C). Units are UN/CEFACT Recommendation 20 codes; each
//! dimension has one canonical unit: temperatures in °C (`CEL`, the house rule), otherwise
//! the SI unit.

use crate::model::SensorReport;

/// (code, canonical code, factor, offset): canonical = value × factor + offset.
const CONVERSIONS: &[(&str, &str, f64, f64)] = &[
    ("CEL", "CEL", 1.0, 0.0),
    ("KEL", "CEL", 1.0, -273.15),
    ("FAH", "CEL", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
    ("KGM", "KGM", 1.0, 0.0),
    ("GRM", "KGM", 1e-3, 0.0),
    ("MGM", "KGM", 1e-6, 0.0),
    ("TNE", "KGM", 1e3, 0.0),
    ("LBR", "KGM", 0.453_592_37, 0.0),
    ("ONZ", "KGM", 0.028_349_523_125, 0.0),
    ("MTR", "MTR", 1.0, 0.0),
    ("MMT", "MTR", 1e-3, 0.0),
    ("CMT", "MTR", 1e-2, 0.0),
    ("KMT", "MTR", 1e3, 0.0),
    ("INH", "MTR", 0.0254, 0.0),
    ("FOT", "MTR", 0.3048, 0.0),
    ("SMI", "MTR", 1_609.344, 0.0),
    ("MTS", "MTS", 1.0, 0.0),
    ("KMH", "MTS", 1.0 / 3.6, 0.0),
    ("HM", "MTS", 0.447_04, 0.0),
    ("KNT", "MTS", 1_852.0 / 3_600.0, 0.0),
    ("PAL", "PAL", 1.0, 0.0),
    ("A97", "PAL", 100.0, 0.0),
    ("MBR", "PAL", 100.0, 0.0),
    ("KPA", "PAL", 1e3, 0.0),
    ("BAR", "PAL", 1e5, 0.0),
    ("MTQ", "MTQ", 1.0, 0.0),
    ("LTR", "MTQ", 1e-3, 0.0),
    ("MLT", "MTQ", 1e-6, 0.0),
    ("SEC", "SEC", 1.0, 0.0),
    ("MIN", "SEC", 60.0, 0.0),
    ("HUR", "SEC", 3_600.0, 0.0),
    ("DAY", "SEC", 86_400.0, 0.0),
    ("JOU", "JOU", 1.0, 0.0),
    ("KJO", "JOU", 1e3, 0.0),
    ("WHR", "JOU", 3_600.0, 0.0),
    ("KWH", "JOU", 3.6e6, 0.0),
];

fn conversion(unit: &str) -> Option<(&'static str, f64, f64)> {
    CONVERSIONS
        .iter()
        .find(|(code, ..)| *code == unit)
        .map(|(_, canonical, factor, offset)| (*canonical, *factor, *offset))
}

/// The canonical unit of `unit`'s dimension; `None` for a unit this table does not know.
pub fn canonical_unit(unit: &str) -> Option<&'static str> {
    conversion(unit).map(|(canonical, ..)| canonical)
}

/// `value` in `unit`, converted to the canonical unit of its dimension.
pub fn to_canonical(value: f64, unit: &str) -> Option<(f64, &'static str)> {
    conversion(unit).map(|(canonical, factor, offset)| (value * factor + offset, canonical))
}

/// Converts between two units of one dimension (e.g. a query bound in `KEL` to `CEL`).
pub fn convert(value: f64, from: &str, to: &str) -> Option<f64> {
    let (canonical, value_canonical) = to_canonical(value, from).map(|(value, unit)| (unit, value))?;
    let (target_canonical, factor, offset) = conversion(to)?;
    (canonical == target_canonical).then(|| (value_canonical - offset) / factor)
}

/// A sensor report's values in the canonical unit.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalisedReport {
    pub unit_of_measure: &'static str,
    pub value: Option<f64>,
    pub minimum_value: Option<f64>,
    pub maximum_value: Option<f64>,
    pub mean_value: Option<f64>,
    pub percentile_value: Option<f64>,
    /// Scaled only: a spread has no offset.
    pub standard_deviation: Option<f64>,
}

impl SensorReport {
    /// The values in the canonical unit; `None` without a known `uom`.
    pub fn normalised(&self) -> Option<NormalisedReport> {
        let unit = self.unit_of_measure.as_deref()?;
        let (canonical, factor, offset) = conversion(unit)?;
        let convert_value = |value: Option<f64>| value.map(|value| value * factor + offset);
        Some(NormalisedReport {
            unit_of_measure: canonical,
            value: convert_value(self.value),
            minimum_value: convert_value(self.minimum_value),
            maximum_value: convert_value(self.maximum_value),
            mean_value: convert_value(self.mean_value),
            percentile_value: convert_value(self.percentile_value),
            standard_deviation: self.standard_deviation.map(|spread| spread * factor.abs()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: f64, from: &str, to: &str, expected: Option<f64>) {
        let actual = convert(value, from, to);
        match (actual, expected) {
            (Some(actual), Some(expected)) => {
                assert!((actual - expected).abs() < 1e-9, "{value} {from} -> {to}: {actual}")
            }
            (actual, expected) => assert_eq!(actual, expected, "{value} {from} -> {to}"),
        }
    }

    #[test]
    fn conversions() {
        check(300.0, "KEL", "CEL", Some(26.85));
        check(26.85, "CEL", "KEL", Some(300.0));
        check(212.0, "FAH", "CEL", Some(100.0));
        check(36.0, "KMH", "MTS", Some(10.0));
        check(1.0, "KGM", "CEL", None);
        check(1.0, "XYZ", "CEL", None);
    }

    #[test]
    fn reports_are_normalised() {
        let report = SensorReport {
            value: Some(299.15),
            minimum_value: Some(273.15),
            standard_deviation: Some(0.5),
            unit_of_measure: Some("KEL".to_owned()),
            ..SensorReport::default()
        };
        let normalised = report.normalised().unwrap();
        assert_eq!(normalised.unit_of_measure, "CEL");
        assert!((normalised.value.unwrap() - 26.0).abs() < 1e-9);
        assert!(normalised.minimum_value.unwrap().abs() < 1e-9);
        assert_eq!(normalised.standard_deviation, Some(0.5));
    }
}
