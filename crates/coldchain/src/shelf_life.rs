//! Remaining shelf life from the actual temperature history.
//!
//! A shelf life is stated as N days at a reference temperature. A spoilage model gives the rate
//! of spoilage at any temperature relative to the reference; a history (timeline) consumes
//! `Σ durationᵢ × relative_rate(Tᵢ)` of reference time. What is left, divided by the relative
//! rate at the storage temperature, is the remaining shelf life there.
//!
//! Models:
//! - fresh fish: the square-root model, relative rate of spoilage
//!   `RRS(T) = ((T + 10) / 10)²` against 0 °C; valid above −10 °C, where spoilage stops
//!   (a rate of zero below);
//! - produce: Q10, the rate multiplies by Q10 (default 2) every 10 °C;
//! - pharma: Arrhenius with ΔH/R (default 10,000 K), the kinetics behind mean kinetic
//!   temperature: a history consumes exactly its duration at its MKT.
//!
//! Unknown time (gaps) is counted at the warmest known temperature of the history, the
//! conservative choice; with no known temperature at all, at the reference temperature.

use thiserror::Error;

use crate::exposure::ACTIVATION_ENERGY_OVER_GAS_CONSTANT_KELVIN;
use crate::series::Segment;
use crate::temperature::{TemperatureError, Unit, ZERO_CELSIUS_KELVIN, checked_celsius};

/// The default Q10 for produce.
pub const Q10_DEFAULT: f64 = 2.0;

/// The longest accepted shelf life: 100 years.
pub const SHELF_LIFE_DAYS_MAX: f64 = 36_525.0;

const SECONDS_PER_DAY: f64 = 86_400.0;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ShelfLifeError {
    #[error("the shelf life must be more than 0 and at most {SHELF_LIFE_DAYS_MAX} days, found {0}")]
    InvalidDays(f64),
    #[error("invalid reference temperature: {0}")]
    InvalidReference(#[from] TemperatureError),
    #[error("the model's parameter must be a finite number above {minimum}, found {found}")]
    InvalidParameter { minimum: f64, found: f64 },
    #[error("the model gives no spoilage at the reference temperature {0} °C")]
    NoSpoilageAtReference(f64),
}

/// How the rate of spoilage depends on temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpoilageModel {
    /// Fresh fish: `((T + 10) / 10)²`.
    SquareRoot,
    /// Produce: `q10^(T / 10)`.
    Q10 { q10: f64 },
    /// Pharma: `exp(−ΔH/R / T)`, `T` in kelvin.
    Arrhenius { activation_energy_over_gas_constant_kelvin: f64 },
}

impl SpoilageModel {
    pub fn q10_default() -> SpoilageModel {
        SpoilageModel::Q10 { q10: Q10_DEFAULT }
    }

    pub fn arrhenius_default() -> SpoilageModel {
        SpoilageModel::Arrhenius {
            activation_energy_over_gas_constant_kelvin: ACTIVATION_ENERGY_OVER_GAS_CONSTANT_KELVIN,
        }
    }

    fn check(self) -> Result<(), ShelfLifeError> {
        let (minimum, found) = match self {
            SpoilageModel::SquareRoot => return Ok(()),
            SpoilageModel::Q10 { q10 } => (1.0, q10),
            SpoilageModel::Arrhenius { activation_energy_over_gas_constant_kelvin } => {
                (0.0, activation_energy_over_gas_constant_kelvin)
            }
        };
        if found.is_finite() && found > minimum && found <= 1e6 {
            Ok(())
        } else {
            Err(ShelfLifeError::InvalidParameter { minimum, found })
        }
    }

    /// The rate of spoilage relative to the rate at `reference_celsius`.
    pub fn relative_rate(self, celsius: f64, reference_celsius: f64) -> f64 {
        match self {
            SpoilageModel::SquareRoot => {
                let rate = |temperature: f64| {
                    let root = ((temperature + 10.0) / 10.0).max(0.0);
                    root * root
                };
                rate(celsius) / rate(reference_celsius)
            }
            SpoilageModel::Q10 { q10 } => q10.powf((celsius - reference_celsius) / 10.0),
            SpoilageModel::Arrhenius { activation_energy_over_gas_constant_kelvin } => {
                (activation_energy_over_gas_constant_kelvin
                    * (1.0 / (reference_celsius + ZERO_CELSIUS_KELVIN) - 1.0 / (celsius + ZERO_CELSIUS_KELVIN)))
                    .exp()
            }
        }
    }
}

/// A shelf life of `days` at `reference_celsius` under a spoilage model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShelfLife {
    model: SpoilageModel,
    days: f64,
    reference_celsius: f64,
}

/// What a history left of a shelf life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemainingShelfLife {
    /// Reference-temperature time the history consumed.
    pub used_at_reference_seconds: f64,
    /// Days left at the reference temperature (never below zero).
    pub remaining_at_reference_days: f64,
    /// Days left at the storage temperature; `None` where the model has no spoilage there.
    pub remaining_at_storage_days: Option<f64>,
}

impl ShelfLife {
    pub fn new(model: SpoilageModel, days: f64, reference_celsius: f64) -> Result<ShelfLife, ShelfLifeError> {
        model.check()?;
        if !(days.is_finite() && days > 0.0 && days <= SHELF_LIFE_DAYS_MAX) {
            return Err(ShelfLifeError::InvalidDays(days));
        }
        let reference_celsius = checked_celsius(reference_celsius, Unit::Celsius)?;
        if model.relative_rate(reference_celsius, reference_celsius).is_nan() {
            return Err(ShelfLifeError::NoSpoilageAtReference(reference_celsius));
        }
        Ok(ShelfLife { model, days, reference_celsius })
    }

    pub fn model(&self) -> SpoilageModel {
        self.model
    }

    pub fn days(&self) -> f64 {
        self.days
    }

    pub fn reference_celsius(&self) -> f64 {
        self.reference_celsius
    }

    /// The whole shelf life if kept at `celsius` throughout; `None` where nothing spoils.
    pub fn days_at(&self, celsius: f64) -> Option<f64> {
        let rate = self.model.relative_rate(celsius, self.reference_celsius);
        (rate > 0.0 && rate.is_finite()).then(|| self.days / rate)
    }

    /// What is left after the history `segments`, stated at `storage_celsius`.
    pub fn remaining(&self, segments: &[Segment], storage_celsius: f64) -> RemainingShelfLife {
        let warmest = segments.iter().filter_map(|segment| segment.celsius).fold(f64::NEG_INFINITY, f64::max);
        let gap_celsius = if warmest.is_finite() { warmest } else { self.reference_celsius };
        let used_at_reference_seconds: f64 = segments
            .iter()
            .map(|segment| {
                let celsius = segment.celsius.unwrap_or(gap_celsius);
                segment.duration().as_secs_f64() * self.model.relative_rate(celsius, self.reference_celsius)
            })
            .sum();
        let remaining_at_reference_days = (self.days - used_at_reference_seconds / SECONDS_PER_DAY).max(0.0);
        let storage_rate = self.model.relative_rate(storage_celsius, self.reference_celsius);
        let remaining_at_storage_days =
            (storage_rate > 0.0 && storage_rate.is_finite()).then(|| remaining_at_reference_days / storage_rate);
        RemainingShelfLife { used_at_reference_seconds, remaining_at_reference_days, remaining_at_storage_days }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_one_at_the_reference() {
        for model in [SpoilageModel::SquareRoot, SpoilageModel::q10_default(), SpoilageModel::arrhenius_default()] {
            assert!((model.relative_rate(4.0, 4.0) - 1.0).abs() < 1e-12);
        }
        assert!((SpoilageModel::q10_default().relative_rate(14.0, 4.0) - 2.0).abs() < 1e-12);
        assert_eq!(SpoilageModel::SquareRoot.relative_rate(-12.0, 0.0), 0.0);
    }

    #[test]
    fn refuses_bad_parameters() {
        assert!(ShelfLife::new(SpoilageModel::SquareRoot, 0.0, 0.0).is_err());
        assert!(ShelfLife::new(SpoilageModel::SquareRoot, f64::NAN, 0.0).is_err());
        assert!(ShelfLife::new(SpoilageModel::Q10 { q10: 0.5 }, 3.0, 0.0).is_err());
        assert!(ShelfLife::new(SpoilageModel::SquareRoot, 3.0, -10.0).is_err());
        assert!(ShelfLife::new(SpoilageModel::SquareRoot, 3.0, 500.0).is_err());
    }
}
