//! Product classes: their range, spoilage model and default alarm rules.

use thiserror::Error;

use crate::temperature::TemperatureRange;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductClass {
    /// Medicines, 2–8 °C (EU GDP). Pass/fail by MKT against the label range.
    Pharma,
    /// Chilled food and produce, 0–4 °C.
    Chilled,
    /// Frozen food, −18 °C or colder.
    Frozen,
    /// Fresh fish, 0–2 °C.
    Fish,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown product class {0:?}: expected pharma, chilled, frozen or fish")]
pub struct ProductClassError(pub String);

impl ProductClass {
    pub const ALL: [ProductClass; 4] =
        [ProductClass::Pharma, ProductClass::Chilled, ProductClass::Frozen, ProductClass::Fish];

    pub fn name(self) -> &'static str {
        match self {
            ProductClass::Pharma => "pharma",
            ProductClass::Chilled => "chilled",
            ProductClass::Frozen => "frozen",
            ProductClass::Fish => "fish",
        }
    }

    /// The class's default range (both ends inclusive).
    pub fn range(self) -> TemperatureRange {
        let (min_celsius, max_celsius) = match self {
            ProductClass::Pharma => (Some(2.0), Some(8.0)),
            ProductClass::Chilled => (Some(0.0), Some(4.0)),
            ProductClass::Frozen => (None, Some(-18.0)),
            ProductClass::Fish => (Some(0.0), Some(2.0)),
        };
        TemperatureRange::from_valid_bounds(min_celsius, max_celsius)
    }
}

impl std::str::FromStr for ProductClass {
    type Err = ProductClassError;

    fn from_str(text: &str) -> Result<ProductClass, ProductClassError> {
        ProductClass::ALL
            .into_iter()
            .find(|class| class.name() == text)
            .ok_or_else(|| ProductClassError(text.chars().take(32).collect()))
    }
}

impl std::fmt::Display for ProductClass {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}
