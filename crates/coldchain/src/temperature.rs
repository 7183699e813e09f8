//! Temperatures: SenML units, conversion to degrees Celsius, plausibility, ranges.

use thiserror::Error;

/// 0 °C in kelvin.
pub const ZERO_CELSIUS_KELVIN: f64 = 273.15;

/// The coldest temperature a reading may carry. Colder values are rejected as impossible for a
/// cold-chain sensor (the same sanity bound as the network crate's temperature classes).
pub const TEMPERATURE_MIN_CELSIUS: f64 = -100.0;

/// The warmest temperature a reading may carry.
pub const TEMPERATURE_MAX_CELSIUS: f64 = 100.0;

/// Why a temperature value is refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TemperatureError {
    #[error("the value is not a finite number")]
    NotFinite,
    #[error("{celsius} °C is outside the plausible {TEMPERATURE_MIN_CELSIUS}..{TEMPERATURE_MAX_CELSIUS} °C")]
    Impossible { celsius: f64 },
    #[error("unknown unit {0:?}: expected Cel, K or [degF]")]
    UnknownUnit(String),
    #[error("min_celsius ({min_celsius}) is above max_celsius ({max_celsius})")]
    MinAboveMax { min_celsius: f64, max_celsius: f64 },
}

/// A temperature unit, by its SenML symbol (RFC 8428 units registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `Cel`
    Celsius,
    /// `K`
    Kelvin,
    /// `[degF]`
    Fahrenheit,
}

impl Unit {
    /// Parses a SenML unit symbol; the match is exact (SenML symbols are case-sensitive).
    pub fn from_senml(symbol: &str) -> Result<Unit, TemperatureError> {
        match symbol {
            "Cel" => Ok(Unit::Celsius),
            "K" => Ok(Unit::Kelvin),
            "[degF]" => Ok(Unit::Fahrenheit),
            other => Err(TemperatureError::UnknownUnit(other.chars().take(32).collect())),
        }
    }

    pub fn senml_symbol(self) -> &'static str {
        match self {
            Unit::Celsius => "Cel",
            Unit::Kelvin => "K",
            Unit::Fahrenheit => "[degF]",
        }
    }

    /// Converts a value in this unit to degrees Celsius, without checking it.
    pub fn to_celsius(self, value: f64) -> f64 {
        match self {
            Unit::Celsius => value,
            Unit::Kelvin => value - ZERO_CELSIUS_KELVIN,
            Unit::Fahrenheit => (value - 32.0) * 5.0 / 9.0,
        }
    }
}

/// Converts and checks a measured value: finite, and within the plausible bounds once in °C.
pub fn checked_celsius(value: f64, unit: Unit) -> Result<f64, TemperatureError> {
    if !value.is_finite() {
        return Err(TemperatureError::NotFinite);
    }
    let celsius = unit.to_celsius(value);
    if !(TEMPERATURE_MIN_CELSIUS..=TEMPERATURE_MAX_CELSIUS).contains(&celsius) {
        return Err(TemperatureError::Impossible { celsius });
    }
    Ok(celsius)
}

/// Where a temperature lies relative to a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Below,
    Within,
    Above,
}

/// A closed range of temperatures (both ends inclusive); either end may be open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TemperatureRange {
    min_celsius: Option<f64>,
    max_celsius: Option<f64>,
}

impl TemperatureRange {
    pub fn new(min_celsius: Option<f64>, max_celsius: Option<f64>) -> Result<TemperatureRange, TemperatureError> {
        for celsius in [min_celsius, max_celsius].into_iter().flatten() {
            checked_celsius(celsius, Unit::Celsius)?;
        }
        if let (Some(min_celsius), Some(max_celsius)) = (min_celsius, max_celsius)
            && min_celsius > max_celsius
        {
            return Err(TemperatureError::MinAboveMax { min_celsius, max_celsius });
        }
        Ok(TemperatureRange { min_celsius, max_celsius })
    }

    /// A range from bounds known to be valid (constants of this crate).
    pub(crate) const fn from_valid_bounds(min_celsius: Option<f64>, max_celsius: Option<f64>) -> TemperatureRange {
        TemperatureRange { min_celsius, max_celsius }
    }

    pub fn min_celsius(&self) -> Option<f64> {
        self.min_celsius
    }

    pub fn max_celsius(&self) -> Option<f64> {
        self.max_celsius
    }

    pub fn placement(&self, celsius: f64) -> Placement {
        if self.min_celsius.is_some_and(|min| celsius < min) {
            Placement::Below
        } else if self.max_celsius.is_some_and(|max| celsius > max) {
            Placement::Above
        } else {
            Placement::Within
        }
    }

    pub fn contains(&self, celsius: f64) -> bool {
        self.placement(celsius) == Placement::Within
    }
}

impl std::fmt::Display for TemperatureRange {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.min_celsius, self.max_celsius) {
            (Some(min), Some(max)) => write!(formatter, "{min:.2} °C to {max:.2} °C"),
            (Some(min), None) => write!(formatter, "{min:.2} °C or warmer"),
            (None, Some(max)) => write!(formatter, "{max:.2} °C or colder"),
            (None, None) => write!(formatter, "any temperature"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(symbol: &str, value: f64, expected_celsius: f64) {
        let unit = Unit::from_senml(symbol).unwrap();
        let celsius = checked_celsius(value, unit).unwrap();
        assert!((celsius - expected_celsius).abs() < 1e-9, "{symbol} {value} gave {celsius}");
    }

    #[test]
    fn converts_the_three_senml_units() {
        check("Cel", 4.5, 4.5);
        check("K", 277.15, 4.0);
        check("[degF]", 46.4, 8.0);
        check("[degF]", -40.0, -40.0);
    }

    #[test]
    fn refuses_unknown_units_and_impossible_values() {
        assert!(matches!(Unit::from_senml("cel"), Err(TemperatureError::UnknownUnit(_))));
        assert!(matches!(Unit::from_senml("°C"), Err(TemperatureError::UnknownUnit(_))));
        assert_eq!(checked_celsius(f64::NAN, Unit::Celsius), Err(TemperatureError::NotFinite));
        assert_eq!(checked_celsius(f64::INFINITY, Unit::Kelvin), Err(TemperatureError::NotFinite));
        assert!(matches!(checked_celsius(-1.0, Unit::Kelvin), Err(TemperatureError::Impossible { .. })));
        assert!(matches!(checked_celsius(1e300, Unit::Fahrenheit), Err(TemperatureError::Impossible { .. })));
    }

    #[test]
    fn ranges_are_inclusive() {
        let range = TemperatureRange::new(Some(2.0), Some(8.0)).unwrap();
        assert_eq!(range.placement(2.0), Placement::Within);
        assert_eq!(range.placement(8.0), Placement::Within);
        assert_eq!(range.placement(8.01), Placement::Above);
        assert_eq!(range.placement(1.99), Placement::Below);
        assert!(TemperatureRange::new(Some(8.0), Some(2.0)).is_err());
    }
}
