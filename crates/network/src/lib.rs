//! The network's master data, as validated domain values.
//!
//! Architecture invariant: no IO, no wire format (no serde). The HTTP edge parses its JSON into
//! these types; a value of these types is valid by construction (parse, don't validate).
//! Temperatures are degrees Celsius (`_celsius`), durations carry their unit in the name.

mod country;
mod ids;
mod master;
mod temperature;
mod vehicle;

pub use country::{Country, CountryError};
pub use ids::{DeviceId, IdError, LaneId, NETWORK_TENANT, PartyId, TenantId, VehicleId, ZoneName};
pub use master::{
    Address, Coordinates, CoordinatesError, Device, DeviceKind, Lane, LaneError, LocalTime, LocalTimeError, Location,
    LocationKind, Nutrition, NutritionError, Party, PartyKind, Product, ProductLink, ProductLinkError, Service,
    TimeZoneError, TimeZoneName, Zone, ZoneError,
};
pub use temperature::{TemperatureClass, TemperatureClassError, TemperatureRange};
pub use vehicle::{Skill, Vehicle, VehicleError};

/// Parses a lowercase snake_case enum value, naming the accepted values on failure.
pub fn parse_enum<T: Copy>(text: &str, values: &[(&'static str, T)]) -> Result<T, String> {
    for (name, value) in values {
        if *name == text {
            return Ok(*value);
        }
    }
    let names: Vec<&str> = values.iter().map(|(name, _)| *name).collect();
    Err(format!("must be one of {}, found {text:?}", names.join(", ")))
}
