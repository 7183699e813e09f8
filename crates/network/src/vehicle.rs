//! Vehicles of the last mile and the couriers who drive them.

use crate::ids::VehicleId;
use crate::master::LocalTime;
use crate::temperature::TemperatureClass;
use gs1::Gln;

/// What a vehicle can carry beyond ambient goods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skill {
    /// A refrigerated load space: chilled, pharma and other ranges above 0 °C.
    Reefer,
    /// A freezer: frozen goods and ranges at or below 0 °C.
    Freezer,
}

impl Skill {
    pub const VALUES: [(&'static str, Skill); 2] = [("reefer", Skill::Reefer), ("freezer", Skill::Freezer)];

    pub fn name(self) -> &'static str {
        match self {
            Skill::Reefer => "reefer",
            Skill::Freezer => "freezer",
        }
    }

    /// The skill a vehicle needs to carry goods of `class`: none for ambient goods, a freezer for
    /// ranges that end at or below 0 °C, a reefer for every other bounded range.
    pub fn required_for(class: &TemperatureClass) -> Option<Skill> {
        let range = class.range();
        match (range.min_celsius, range.max_celsius) {
            (None, None) => None,
            (_, Some(max)) if max <= 0.0 => Some(Skill::Freezer),
            _ => Some(Skill::Reefer),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VehicleError {
    #[error("capacity_units must be 1..={max}, found {found}")]
    Capacity { max: u32, found: u32 },
    #[error("speed_km_per_h must be within {min}..={max}, found {found}")]
    Speed { min: f64, max: f64, found: f64 },
    #[error("a shift needs an end different from its start (an end before the start runs past midnight)")]
    EmptyShift,
}

/// A vehicle based at a depot, with its courier's shift. One vehicle drives at most one route per
/// dispatch wave.
#[derive(Debug, Clone, PartialEq)]
pub struct Vehicle {
    pub vehicle_id: VehicleId,
    /// The warehouse or cold depot the vehicle leaves from and returns to.
    pub depot: Gln,
    pub name: String,
    /// The courier's name, shown to the operator (never in EPCIS events).
    pub courier_name: Option<String>,
    /// The API key (scope `courier`) the courier signs in with.
    pub courier_key_id: Option<String>,
    /// Units (consumer packs) the load space holds.
    pub capacity_units: u32,
    /// Sorted, without duplicates.
    pub skills: Vec<Skill>,
    /// The courier's shift, local time at the depot; an end before the start runs past midnight.
    pub shift_start: LocalTime,
    pub shift_end: LocalTime,
    /// Average speed on the road (the matrix provider's time for this vehicle).
    pub speed_km_per_h: f64,
    pub fixed_cost_cents: u32,
    pub cost_per_km_cents: u32,
    pub cost_per_hour_cents: u32,
}

impl Vehicle {
    pub const NAME_LENGTH_MAX: usize = 200;
    pub const CAPACITY_UNITS_MAX: u32 = 100_000;
    pub const SPEED_KM_PER_H_MIN: f64 = 5.0;
    pub const SPEED_KM_PER_H_MAX: f64 = 130.0;
    /// Vehicles per depot.
    pub const PER_DEPOT_MAX: usize = 200;

    /// Checks the rules between fields.
    pub fn check(&self) -> Result<(), VehicleError> {
        if self.capacity_units == 0 || self.capacity_units > Self::CAPACITY_UNITS_MAX {
            return Err(VehicleError::Capacity { max: Self::CAPACITY_UNITS_MAX, found: self.capacity_units });
        }
        if !(Self::SPEED_KM_PER_H_MIN..=Self::SPEED_KM_PER_H_MAX).contains(&self.speed_km_per_h) {
            return Err(VehicleError::Speed {
                min: Self::SPEED_KM_PER_H_MIN,
                max: Self::SPEED_KM_PER_H_MAX,
                found: self.speed_km_per_h,
            });
        }
        if self.shift_start == self.shift_end {
            return Err(VehicleError::EmptyShift);
        }
        Ok(())
    }

    pub fn has(&self, skill: Skill) -> bool {
        self.skills.contains(&skill)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_need_the_skill_that_keeps_their_range() {
        assert_eq!(Skill::required_for(&TemperatureClass::Ambient), None);
        assert_eq!(Skill::required_for(&TemperatureClass::Chilled), Some(Skill::Reefer));
        assert_eq!(Skill::required_for(&TemperatureClass::Pharma), Some(Skill::Reefer));
        assert_eq!(Skill::required_for(&TemperatureClass::Frozen), Some(Skill::Freezer));
        let deep = TemperatureClass::new("custom", Some(-30.0), Some(-5.0)).unwrap();
        assert_eq!(Skill::required_for(&deep), Some(Skill::Freezer));
        let cool = TemperatureClass::new("custom", Some(15.0), Some(25.0)).unwrap();
        assert_eq!(Skill::required_for(&cool), Some(Skill::Reefer));
    }
}
