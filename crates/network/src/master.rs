//! Products, parties, locations, lanes and devices.

use std::fmt;

use gs1::{Gln, Gtin};

use crate::{Country, DeviceId, LaneId, PartyId, TemperatureClass, TemperatureRange, ZoneName};

/// Nutrition per 100 g, as on an EU label. Every value is optional and non-negative.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Nutrition {
    pub energy_kj: Option<f64>,
    pub energy_kcal: Option<f64>,
    pub fat_g: Option<f64>,
    pub saturates_g: Option<f64>,
    pub carbohydrate_g: Option<f64>,
    pub sugars_g: Option<f64>,
    pub protein_g: Option<f64>,
    pub salt_g: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NutritionError {
    #[error("must be a finite number between 0 and {max}, found {found}")]
    OutOfRange { max: f64, found: f64 },
    #[error("saturates_g ({saturates}) must not exceed fat_g ({fat})")]
    SaturatesAboveFat { saturates: f64, fat: f64 },
    #[error("sugars_g ({sugars}) must not exceed carbohydrate_g ({carbohydrate})")]
    SugarsAboveCarbohydrate { sugars: f64, carbohydrate: f64 },
}

impl Nutrition {
    /// Grams per 100 g can't exceed 100; energy can't exceed 4,000 kJ / 1,000 kcal (pure fat: 3,700 kJ).
    pub const GRAMS_MAX: f64 = 100.0;
    pub const ENERGY_KJ_MAX: f64 = 4000.0;
    pub const ENERGY_KCAL_MAX: f64 = 1000.0;

    pub fn check_value(value: f64, max: f64) -> Result<f64, NutritionError> {
        if value.is_finite() && (0.0..=max).contains(&value) {
            Ok(value)
        } else {
            Err(NutritionError::OutOfRange { max, found: value })
        }
    }

    /// Checks the relations between values; each value was checked by [`Nutrition::check_value`].
    pub fn check_relations(&self) -> Result<(), (&'static str, NutritionError)> {
        if let (Some(saturates), Some(fat)) = (self.saturates_g, self.fat_g)
            && saturates > fat
        {
            return Err(("saturates_g", NutritionError::SaturatesAboveFat { saturates, fat }));
        }
        if let (Some(sugars), Some(carbohydrate)) = (self.sugars_g, self.carbohydrate_g)
            && sugars > carbohydrate
        {
            return Err(("sugars_g", NutritionError::SugarsAboveCarbohydrate { sugars, carbohydrate }));
        }
        Ok(())
    }
}

/// A trade item a tenant sells through the network.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub gtin: Gtin,
    pub name: String,
    pub brand: Option<String>,
    pub description: Option<String>,
    pub temperature_class: TemperatureClass,
    pub shelf_life_days: Option<u32>,
    /// The fewest days of shelf life a delivered unit must have left (allocation skips lots that
    /// would arrive with less). `None`: only not expired on delivery.
    pub min_remaining_shelf_life_days: Option<u32>,
    pub nutrition: Option<Nutrition>,
    pub country_of_origin: Option<Country>,
    /// The farm, fishery or supplier the product comes from.
    pub supplier_party_id: Option<PartyId>,
}

impl Product {
    pub const NAME_LENGTH_MAX: usize = 200;
    pub const DESCRIPTION_LENGTH_MAX: usize = 2000;
    pub const SHELF_LIFE_DAYS_MAX: u32 = 3650;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyKind {
    Supplier,
    Farm,
    Fishery,
    Carrier,
}

impl PartyKind {
    pub const VALUES: [(&'static str, PartyKind); 4] = [
        ("supplier", PartyKind::Supplier),
        ("farm", PartyKind::Farm),
        ("fishery", PartyKind::Fishery),
        ("carrier", PartyKind::Carrier),
    ];

    pub fn name(self) -> &'static str {
        Self::VALUES.iter().find(|(_, kind)| *kind == self).map(|(name, _)| *name).unwrap_or("supplier")
    }
}

/// A supplier, farm, fishery or carrier a tenant works with.
#[derive(Debug, Clone, PartialEq)]
pub struct Party {
    pub party_id: PartyId,
    pub kind: PartyKind,
    pub name: String,
    /// The farmer's or contact's name: personal data, shown on consumer pages only when
    /// `publish_name` is true.
    pub person_name: Option<String>,
    pub publish_name: bool,
    pub gln: Option<Gln>,
    pub country: Option<Country>,
}

impl Party {
    pub const NAME_LENGTH_MAX: usize = 200;

    /// The person's name as a consumer page may show it.
    pub fn public_person_name(&self) -> Option<&str> {
        if self.publish_name { self.person_name.as_deref() } else { None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationKind {
    Farm,
    Factory,
    Warehouse,
    ColdDepot,
    PickupPoint,
    Store,
    Pharmacy,
}

impl LocationKind {
    pub const VALUES: [(&'static str, LocationKind); 7] = [
        ("farm", LocationKind::Farm),
        ("factory", LocationKind::Factory),
        ("warehouse", LocationKind::Warehouse),
        ("cold_depot", LocationKind::ColdDepot),
        ("pickup_point", LocationKind::PickupPoint),
        ("store", LocationKind::Store),
        ("pharmacy", LocationKind::Pharmacy),
    ];

    pub fn name(self) -> &'static str {
        Self::VALUES.iter().find(|(_, kind)| *kind == self).map(|(name, _)| *name).unwrap_or("warehouse")
    }

    /// Stock is kept here: warehouses, cold depots, stores and pharmacies. Pallets are announced
    /// to and transferred into these only (not to a farm or a pickup point's lockers).
    pub fn holds_stock(self) -> bool {
        matches!(self, LocationKind::Warehouse | LocationKind::ColdDepot | LocationKind::Store | LocationKind::Pharmacy)
    }

    /// Consumers collect orders here: pickup points, stores and pharmacies. An order's (or a
    /// promise's) pickup point must be one.
    pub fn is_collection_point(self) -> bool {
        matches!(self, LocationKind::PickupPoint | LocationKind::Store | LocationKind::Pharmacy)
    }
}

/// A delivery service a merchant can order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Standard,
    NextDay,
    SameDay,
    Express12h,
}

impl Service {
    pub const VALUES: [(&'static str, Service); 4] = [
        ("standard", Service::Standard),
        ("next_day", Service::NextDay),
        ("same_day", Service::SameDay),
        ("express_12h", Service::Express12h),
    ];

    pub fn name(self) -> &'static str {
        Self::VALUES.iter().find(|(_, service)| *service == self).map(|(name, _)| *name).unwrap_or("standard")
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoordinatesError {
    #[error("latitude must be within -90..90, found {0}")]
    Latitude(f64),
    #[error("longitude must be within -180..180, found {0}")]
    Longitude(f64),
}

/// WGS 84 coordinates in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coordinates {
    latitude_degrees: f64,
    longitude_degrees: f64,
}

impl Coordinates {
    pub fn new(latitude_degrees: f64, longitude_degrees: f64) -> Result<Coordinates, CoordinatesError> {
        if !latitude_degrees.is_finite() || !(-90.0..=90.0).contains(&latitude_degrees) {
            return Err(CoordinatesError::Latitude(latitude_degrees));
        }
        if !longitude_degrees.is_finite() || !(-180.0..=180.0).contains(&longitude_degrees) {
            return Err(CoordinatesError::Longitude(longitude_degrees));
        }
        Ok(Coordinates { latitude_degrees, longitude_degrees })
    }

    pub fn latitude_degrees(&self) -> f64 {
        self.latitude_degrees
    }

    pub fn longitude_degrees(&self) -> f64 {
        self.longitude_degrees
    }

    /// The great-circle (haversine) distance to `other`, on a sphere of the Earth's mean radius.
    pub fn great_circle_km(&self, other: &Coordinates) -> f64 {
        const EARTH_RADIUS_KM: f64 = 6371.0088;
        let (lat1, lat2) = (self.latitude_degrees.to_radians(), other.latitude_degrees.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.longitude_degrees - self.longitude_degrees).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("must be an IANA time zone such as Europe/Amsterdam, found {0:?}")]
pub struct TimeZoneError(pub String);

/// An IANA time zone name known to the bundled time zone database, with the zone it names
/// (looked up once, when parsed).
#[derive(Clone)]
pub struct TimeZoneName(String, jiff::tz::TimeZone);

impl TimeZoneName {
    pub fn parse(text: &str) -> Result<TimeZoneName, TimeZoneError> {
        match jiff::tz::TimeZone::get(text) {
            Ok(zone) if !text.is_empty() => Ok(TimeZoneName(text.to_owned(), zone)),
            _ => Err(TimeZoneError(text.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The zone this name stands for.
    pub fn zone(&self) -> &jiff::tz::TimeZone {
        &self.1
    }
}

/// Names are equal when they are spelled the same (the zone follows from the name).
impl PartialEq for TimeZoneName {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for TimeZoneName {}

impl fmt::Debug for TimeZoneName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "TimeZoneName({})", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("must be a local time HH:MM (00:00-23:59), found {0:?}")]
pub struct LocalTimeError(pub String);

/// A wall-clock time of day in a location's time zone, to the minute.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime {
    minutes_after_midnight: u16,
}

impl LocalTime {
    pub fn parse(text: &str) -> Result<LocalTime, LocalTimeError> {
        let error = || LocalTimeError(text.to_owned());
        let bytes = text.as_bytes();
        if bytes.len() != 5 || bytes[2] != b':' || !bytes.iter().enumerate().all(|(i, b)| i == 2 || b.is_ascii_digit())
        {
            return Err(error());
        }
        let hours = u16::from(bytes[0] - b'0') * 10 + u16::from(bytes[1] - b'0');
        let minutes = u16::from(bytes[3] - b'0') * 10 + u16::from(bytes[4] - b'0');
        if hours > 23 || minutes > 59 {
            return Err(error());
        }
        Ok(LocalTime { minutes_after_midnight: hours * 60 + minutes })
    }

    pub fn minutes_after_midnight(self) -> u16 {
        self.minutes_after_midnight
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:02}:{:02}", self.minutes_after_midnight / 60, self.minutes_after_midnight % 60)
    }
}

impl fmt::Debug for LocalTime {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "LocalTime({self})")
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Address {
    pub street: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ZoneError {
    #[error("zone {0:?} appears twice")]
    Duplicate(String),
    #[error("a zone needs min_celsius <= max_celsius, found {min} > {max}")]
    MinAboveMax { min: f64, max: f64 },
    #[error("{0}")]
    Temperature(String),
}

/// A temperature zone of a location (a cold room, a freezer, an ambient hall).
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub name: ZoneName,
    pub range: TemperatureRange,
    pub capacity_pallets: u32,
}

impl Zone {
    pub const CAPACITY_PALLETS_MAX: u32 = 1_000_000;

    /// Whether the zone keeps a product of this class within the class's range: the zone's whole
    /// range lies inside the class's (a 0–2 °C room suits chilled goods, 0–4 °C; an ambient hall
    /// does not).
    pub fn suits(&self, class: &TemperatureClass) -> bool {
        class.range().covers(&self.range)
    }
}

/// A place in the network, identified by its GLN.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub gln: Gln,
    pub kind: LocationKind,
    pub name: String,
    pub address: Address,
    pub country: Country,
    pub coordinates: Coordinates,
    pub time_zone: TimeZoneName,
    pub zones: Vec<Zone>,
    /// The latest local time an order for a service can be placed to leave the same day.
    pub cutoffs: Vec<(Service, LocalTime)>,
    pub pick_pack_lead_minutes: u32,
    pub party_id: Option<PartyId>,
}

impl Location {
    pub const NAME_LENGTH_MAX: usize = 200;
    pub const ZONES_MAX: usize = 64;
    pub const PICK_PACK_LEAD_MINUTES_MAX: u32 = 7 * 24 * 60;

    /// Checks the rules between zones (names unique) and cut-offs (one per service).
    pub fn check_zones(zones: &[Zone]) -> Result<(), (usize, ZoneError)> {
        for (index, zone) in zones.iter().enumerate() {
            if zones[..index].iter().any(|earlier| earlier.name == zone.name) {
                return Err((index, ZoneError::Duplicate(zone.name.as_str().to_owned())));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LaneError {
    #[error("a lane must join two different locations")]
    SameEnds,
    #[error("transit_minutes must be 1..={max}, found {found}")]
    Transit { max: u32, found: u32 },
    #[error("departure {0} appears twice")]
    DuplicateDeparture(LocalTime),
}

/// A scheduled transport link between two locations.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub lane_id: LaneId,
    pub from: Gln,
    pub to: Gln,
    pub transit_minutes: u32,
    /// Local departure times at the origin, sorted.
    pub departures: Vec<LocalTime>,
    /// The temperature classes the lane's vehicles can carry.
    pub temperature_classes: Vec<&'static str>,
    pub cost_per_pallet_cents: u64,
}

impl Lane {
    pub const TRANSIT_MINUTES_MAX: u32 = 14 * 24 * 60;
    pub const DEPARTURES_MAX: usize = 96;

    pub fn check(&self) -> Result<(), LaneError> {
        if self.from == self.to {
            return Err(LaneError::SameEnds);
        }
        if self.transit_minutes == 0 || self.transit_minutes > Self::TRANSIT_MINUTES_MAX {
            return Err(LaneError::Transit { max: Self::TRANSIT_MINUTES_MAX, found: self.transit_minutes });
        }
        for (index, departure) in self.departures.iter().enumerate() {
            if self.departures[..index].contains(departure) {
                return Err(LaneError::DuplicateDeparture(*departure));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    DataLogger,
    ReeferUnit,
    RoomSensor,
}

impl DeviceKind {
    pub const VALUES: [(&'static str, DeviceKind); 3] = [
        ("data_logger", DeviceKind::DataLogger),
        ("reefer_unit", DeviceKind::ReeferUnit),
        ("room_sensor", DeviceKind::RoomSensor),
    ];

    pub fn name(self) -> &'static str {
        Self::VALUES.iter().find(|(_, kind)| *kind == self).map(|(name, _)| *name).unwrap_or("data_logger")
    }
}

/// A temperature sensor, placed in a zone of a location (or on a vehicle, by the cold-chain issue).
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub device_id: DeviceId,
    pub kind: DeviceKind,
    pub name: String,
    pub location_gln: Option<Gln>,
    pub zone: Option<ZoneName>,
    pub reading_interval_seconds: u32,
    /// When the device was last calibrated (reports show it next to its readings).
    pub calibrated_on: Option<jiff::civil::Date>,
}

impl Device {
    pub const READING_INTERVAL_SECONDS_MAX: u32 = 24 * 60 * 60;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_suits_a_class_when_it_stays_inside_the_class_range() {
        let zone = |min, max| Zone {
            name: ZoneName::parse("z").unwrap(),
            range: TemperatureRange { min_celsius: min, max_celsius: max },
            capacity_pallets: 1,
        };
        assert!(zone(Some(0.0), Some(2.0)).suits(&TemperatureClass::Chilled));
        assert!(!zone(Some(0.0), Some(6.0)).suits(&TemperatureClass::Chilled));
        assert!(!zone(None, None).suits(&TemperatureClass::Chilled));
        assert!(zone(None, None).suits(&TemperatureClass::Ambient));
        assert!(zone(Some(-25.0), Some(-20.0)).suits(&TemperatureClass::Frozen));
        assert!(!zone(Some(2.0), Some(8.0)).suits(&TemperatureClass::Frozen));
    }

    #[test]
    fn local_times_are_hh_mm() {
        assert_eq!(LocalTime::parse("08:05").unwrap().to_string(), "08:05");
        assert_eq!(LocalTime::parse("23:59").unwrap().minutes_after_midnight(), 23 * 60 + 59);
        for bad in ["24:00", "8:05", "08:60", "08-05", "", "０8:05"] {
            assert!(LocalTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_come_from_the_database() {
        assert!(TimeZoneName::parse("Europe/Amsterdam").is_ok());
        assert!(TimeZoneName::parse("Europe/Atlantis").is_err());
        assert!(TimeZoneName::parse("").is_err());
    }

    #[test]
    fn coordinates_are_bounded() {
        assert!(Coordinates::new(62.47, 6.15).is_ok());
        assert_eq!(Coordinates::new(91.0, 0.0), Err(CoordinatesError::Latitude(91.0)));
        assert_eq!(Coordinates::new(0.0, f64::INFINITY), Err(CoordinatesError::Longitude(f64::INFINITY)));
    }

    #[test]
    fn lanes_check_their_ends_and_departures() {
        let oslo = Gln::parse("7080000000012").unwrap();
        let amsterdam = Gln::parse("8712345000004").unwrap();
        let mut lane = Lane {
            lane_id: LaneId::parse("oslo-ams").unwrap(),
            from: oslo.clone(),
            to: amsterdam,
            transit_minutes: 720,
            departures: vec![LocalTime::parse("18:00").unwrap()],
            temperature_classes: vec!["chilled"],
            cost_per_pallet_cents: 25_000,
        };
        assert_eq!(lane.check(), Ok(()));
        lane.departures.push(LocalTime::parse("18:00").unwrap());
        assert!(matches!(lane.check(), Err(LaneError::DuplicateDeparture(_))));
        lane.departures.pop();
        lane.to = oslo;
        assert_eq!(lane.check(), Err(LaneError::SameEnds));
    }

    #[test]
    fn nutrition_relations_are_checked() {
        let nutrition = Nutrition { fat_g: Some(10.0), saturates_g: Some(12.0), ..Nutrition::default() };
        assert_eq!(nutrition.check_relations().unwrap_err().0, "saturates_g");
        assert!(Nutrition::check_value(-1.0, 100.0).is_err());
        assert!(Nutrition::check_value(f64::NAN, 100.0).is_err());
    }

    #[test]
    fn farmer_names_are_published_only_with_consent() {
        let mut party = Party {
            party_id: PartyId::parse("farm-1").unwrap(),
            kind: PartyKind::Farm,
            name: "Fjord Farm".into(),
            person_name: Some("Ingrid Solberg".into()),
            publish_name: false,
            gln: None,
            country: None,
        };
        assert_eq!(party.public_person_name(), None);
        party.publish_name = true;
        assert_eq!(party.public_person_name(), Some("Ingrid Solberg"));
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductLinkError {
    #[error("link type must be gs1:<name> with letters only, e.g. gs1:recipeInfo, found {0:?}")]
    LinkType(String),
    #[error("{0} links are provided by Keten itself and cannot be added")]
    Reserved(String),
    #[error("href must be an absolute http(s) URL of at most {max} characters without spaces, found {found:?}")]
    Href { max: usize, found: String },
    #[error("language must be a language tag such as en or nl-BE, found {0:?}")]
    Language(String),
}

/// A link a merchant adds to a product's GS1 Digital Link linkset (a recipe, instructions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductLink {
    /// Chosen by Keten when the link is created.
    pub link_id: String,
    /// A GS1 Web Vocabulary link type in compact form, e.g. `gs1:recipeInfo`.
    pub link_type: String,
    pub href: String,
    pub title: String,
    /// BCP 47 language tag of the target, e.g. `en`.
    pub language: Option<String>,
    /// Media type of the target, e.g. `application/pdf`.
    pub media_type: Option<String>,
}

impl ProductLink {
    pub const HREF_LENGTH_MAX: usize = 2000;
    pub const LINKS_PER_PRODUCT_MAX: usize = 50;
    /// Link types the resolver answers from Keten's own data.
    pub const RESERVED_LINK_TYPES: [&'static str; 3] = ["gs1:traceability", "gs1:epcis", "gs1:recallStatus"];

    pub fn check_link_type(text: &str) -> Result<String, ProductLinkError> {
        let name = text.strip_prefix("gs1:").ok_or_else(|| ProductLinkError::LinkType(text.to_owned()))?;
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|byte| byte.is_ascii_alphabetic()) {
            return Err(ProductLinkError::LinkType(text.to_owned()));
        }
        if Self::RESERVED_LINK_TYPES.contains(&text) {
            return Err(ProductLinkError::Reserved(text.to_owned()));
        }
        Ok(text.to_owned())
    }

    pub fn check_href(text: &str) -> Result<String, ProductLinkError> {
        let lower = text.to_ascii_lowercase();
        let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
        let host_ok = text.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
        let characters_ok = text.chars().all(|character| character.is_ascii_graphic());
        if !scheme_ok || !host_ok || !characters_ok || text.len() > Self::HREF_LENGTH_MAX {
            return Err(ProductLinkError::Href { max: Self::HREF_LENGTH_MAX, found: text.chars().take(80).collect() });
        }
        Ok(text.to_owned())
    }

    pub fn check_language(text: &str) -> Result<String, ProductLinkError> {
        let mut parts = text.split('-');
        let primary_ok = parts.next().is_some_and(|primary| {
            (2..=3).contains(&primary.len()) && primary.bytes().all(|byte| byte.is_ascii_lowercase())
        });
        let rest_ok =
            parts.all(|part| (1..=8).contains(&part.len()) && part.bytes().all(|byte| byte.is_ascii_alphanumeric()));
        if primary_ok && rest_ok { Ok(text.to_owned()) } else { Err(ProductLinkError::Language(text.to_owned())) }
    }
}

#[cfg(test)]
mod link_tests {
    use super::*;

    #[test]
    fn link_fields_are_checked() {
        assert_eq!(ProductLink::check_link_type("gs1:recipeInfo").unwrap(), "gs1:recipeInfo");
        assert!(matches!(ProductLink::check_link_type("recipeInfo"), Err(ProductLinkError::LinkType(_))));
        assert!(matches!(ProductLink::check_link_type("gs1:recipe_info"), Err(ProductLinkError::LinkType(_))));
        assert!(matches!(ProductLink::check_link_type("gs1:recallStatus"), Err(ProductLinkError::Reserved(_))));
        assert!(ProductLink::check_href("https://nordfjord.example/recipes/salmon").is_ok());
        for bad in ["ftp://x", "https://", "https:///path", "https://a b", "javascript:alert(1)"] {
            assert!(ProductLink::check_href(bad).is_err(), "{bad}");
        }
        assert!(ProductLink::check_language("nl-BE").is_ok());
        assert!(ProductLink::check_language("EN").is_err());
    }
}
