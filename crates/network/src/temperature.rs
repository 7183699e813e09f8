//! Temperature classes and ranges, in degrees Celsius.

/// A closed range of temperatures; either end may be open (`None`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TemperatureRange {
    pub min_celsius: Option<f64>,
    pub max_celsius: Option<f64>,
}

/// The coldest and warmest temperatures Keten accepts anywhere, as a sanity bound.
pub const TEMPERATURE_MIN_CELSIUS: f64 = -100.0;
pub const TEMPERATURE_MAX_CELSIUS: f64 = 100.0;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemperatureClassError {
    #[error("min_celsius ({min}) must not exceed max_celsius ({max})")]
    MinAboveMax { min: f64, max: f64 },
    #[error("{0} °C is outside the accepted {TEMPERATURE_MIN_CELSIUS}..{TEMPERATURE_MAX_CELSIUS} °C")]
    OutOfBounds(f64),
    #[error("a custom class needs min_celsius and max_celsius")]
    CustomNeedsBounds,
    #[error("only a custom class takes min_celsius and max_celsius")]
    BoundsOnlyForCustom,
}

impl TemperatureRange {
    pub fn new(min_celsius: Option<f64>, max_celsius: Option<f64>) -> Result<TemperatureRange, TemperatureClassError> {
        for value in [min_celsius, max_celsius].into_iter().flatten() {
            if !value.is_finite() || !(TEMPERATURE_MIN_CELSIUS..=TEMPERATURE_MAX_CELSIUS).contains(&value) {
                return Err(TemperatureClassError::OutOfBounds(value));
            }
        }
        if let (Some(min), Some(max)) = (min_celsius, max_celsius)
            && min > max
        {
            return Err(TemperatureClassError::MinAboveMax { min, max });
        }
        Ok(TemperatureRange { min_celsius, max_celsius })
    }

    pub fn contains(&self, celsius: f64) -> bool {
        self.min_celsius.is_none_or(|min| celsius >= min) && self.max_celsius.is_none_or(|max| celsius <= max)
    }

    /// Whether every temperature of `inner` lies within `self`.
    pub fn covers(&self, inner: &TemperatureRange) -> bool {
        let min_ok = match (self.min_celsius, inner.min_celsius) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(outer), Some(inner)) => inner >= outer,
        };
        let max_ok = match (self.max_celsius, inner.max_celsius) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(outer), Some(inner)) => inner <= outer,
        };
        min_ok && max_ok
    }
}

/// How a product must be kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TemperatureClass {
    /// No temperature control.
    Ambient,
    /// 0–4 °C.
    Chilled,
    /// −18 °C or colder.
    Frozen,
    /// 2–8 °C (medicines, EU GDP).
    Pharma,
    /// A product-specific range.
    Custom(TemperatureRange),
}

impl TemperatureClass {
    pub const NAMES: [&'static str; 5] = ["ambient", "chilled", "frozen", "pharma", "custom"];

    /// Builds a class from its name and, for `custom` only, its bounds.
    pub fn new(name: &str, min_celsius: Option<f64>, max_celsius: Option<f64>) -> Result<TemperatureClass, String> {
        let has_bounds = min_celsius.is_some() || max_celsius.is_some();
        let class = match name {
            "ambient" => TemperatureClass::Ambient,
            "chilled" => TemperatureClass::Chilled,
            "frozen" => TemperatureClass::Frozen,
            "pharma" => TemperatureClass::Pharma,
            "custom" => {
                let (Some(min), Some(max)) = (min_celsius, max_celsius) else {
                    return Err(TemperatureClassError::CustomNeedsBounds.to_string());
                };
                let range = TemperatureRange::new(Some(min), Some(max)).map_err(|error| error.to_string())?;
                return Ok(TemperatureClass::Custom(range));
            }
            other => return Err(format!("must be one of {}, found {other:?}", Self::NAMES.join(", "))),
        };
        if has_bounds {
            return Err(TemperatureClassError::BoundsOnlyForCustom.to_string());
        }
        Ok(class)
    }

    pub fn name(&self) -> &'static str {
        match self {
            TemperatureClass::Ambient => "ambient",
            TemperatureClass::Chilled => "chilled",
            TemperatureClass::Frozen => "frozen",
            TemperatureClass::Pharma => "pharma",
            TemperatureClass::Custom(_) => "custom",
        }
    }

    pub fn range(&self) -> TemperatureRange {
        match self {
            TemperatureClass::Ambient => TemperatureRange { min_celsius: None, max_celsius: None },
            TemperatureClass::Chilled => TemperatureRange { min_celsius: Some(0.0), max_celsius: Some(4.0) },
            TemperatureClass::Frozen => TemperatureRange { min_celsius: None, max_celsius: Some(-18.0) },
            TemperatureClass::Pharma => TemperatureRange { min_celsius: Some(2.0), max_celsius: Some(8.0) },
            TemperatureClass::Custom(range) => *range,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_classes_have_their_ranges() {
        let chilled = TemperatureClass::new("chilled", None, None).unwrap();
        assert!(chilled.range().contains(0.0) && chilled.range().contains(4.0) && !chilled.range().contains(4.1));
        assert!(TemperatureClass::new("frozen", None, None).unwrap().range().contains(-30.0));
        assert!(!TemperatureClass::new("frozen", None, None).unwrap().range().contains(-17.9));
    }

    #[test]
    fn custom_needs_ordered_finite_bounds() {
        assert!(TemperatureClass::new("custom", Some(-1.5), Some(2.0)).is_ok());
        assert_eq!(
            TemperatureClass::new("custom", Some(5.0), Some(2.0)).unwrap_err(),
            "min_celsius (5) must not exceed max_celsius (2)"
        );
        assert!(TemperatureClass::new("custom", Some(f64::NAN), Some(2.0)).is_err());
        assert!(TemperatureClass::new("custom", None, Some(2.0)).is_err());
        assert!(TemperatureClass::new("chilled", Some(0.0), None).is_err());
        assert!(TemperatureClass::new("warm", None, None).is_err());
    }

    #[test]
    fn a_zone_covers_a_class_only_within_its_range() {
        let zone = TemperatureRange::new(Some(0.0), Some(4.0)).unwrap();
        assert!(zone.covers(&TemperatureClass::Chilled.range()));
        assert!(!zone.covers(&TemperatureClass::Pharma.range()));
        assert!(!zone.covers(&TemperatureClass::Frozen.range()));
    }
}
