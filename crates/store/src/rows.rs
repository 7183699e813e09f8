//! Rows as stored, and their conversion into domain values. Stored values are re-validated on the
//! way out: a row that no longer parses is reported as corrupt, never passed on.

use gs1::{Gln, Gtin};
use network::{
    Address, Coordinates, Country, Device, DeviceId, DeviceKind, Lane, LaneId, LocalTime, Location, LocationKind,
    Nutrition, Party, PartyId, PartyKind, Product, Service, TemperatureClass, TemperatureRange, TenantId, TimeZoneName,
    Zone, ZoneName, parse_enum,
};

use crate::{StoreError, parse_stored};

fn optional<T, E: std::fmt::Display>(
    what: &str,
    text: Option<&str>,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Option<T>, StoreError> {
    text.map(|text| parse_stored(what, text, parse)).transpose()
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TenantRow {
    pub tenant_id: String,
    pub name: String,
    pub created_unix_ms: i64,
}

/// A tenant of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub tenant_id: TenantId,
    pub name: String,
    pub created_unix_ms: i64,
}

impl TenantRow {
    pub(crate) fn into_domain(self) -> Result<Tenant, StoreError> {
        Ok(Tenant {
            tenant_id: parse_stored("tenant", &self.tenant_id, TenantId::parse_any)?,
            name: self.name,
            created_unix_ms: self.created_unix_ms,
        })
    }
}

pub(crate) const PRODUCT_COLUMNS: &str = "gtin, name, brand, description, temperature_class, temperature_min_celsius, \
    temperature_max_celsius, shelf_life_days, energy_kj, energy_kcal, fat_g, saturates_g, carbohydrate_g, sugars_g, \
    protein_g, salt_g, country_of_origin, supplier_party_id, min_remaining_shelf_life_days";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ProductRow {
    gtin: String,
    name: String,
    brand: Option<String>,
    description: Option<String>,
    temperature_class: String,
    temperature_min_celsius: Option<f64>,
    temperature_max_celsius: Option<f64>,
    shelf_life_days: Option<i64>,
    energy_kj: Option<f64>,
    energy_kcal: Option<f64>,
    fat_g: Option<f64>,
    saturates_g: Option<f64>,
    carbohydrate_g: Option<f64>,
    sugars_g: Option<f64>,
    protein_g: Option<f64>,
    salt_g: Option<f64>,
    country_of_origin: Option<String>,
    supplier_party_id: Option<String>,
    min_remaining_shelf_life_days: Option<i64>,
}

impl ProductRow {
    pub(crate) fn into_domain(self) -> Result<Product, StoreError> {
        let temperature_class =
            TemperatureClass::new(&self.temperature_class, self.temperature_min_celsius, self.temperature_max_celsius)
                .map_err(|error| StoreError::Corrupt(format!("temperature class of {}: {error}", self.gtin)))?;
        let nutrition_values = [
            self.energy_kj,
            self.energy_kcal,
            self.fat_g,
            self.saturates_g,
            self.carbohydrate_g,
            self.sugars_g,
            self.protein_g,
            self.salt_g,
        ];
        let nutrition = nutrition_values.iter().any(Option::is_some).then_some(Nutrition {
            energy_kj: self.energy_kj,
            energy_kcal: self.energy_kcal,
            fat_g: self.fat_g,
            saturates_g: self.saturates_g,
            carbohydrate_g: self.carbohydrate_g,
            sugars_g: self.sugars_g,
            protein_g: self.protein_g,
            salt_g: self.salt_g,
        });
        Ok(Product {
            gtin: parse_stored("gtin", &self.gtin, Gtin::parse)?,
            name: self.name,
            brand: self.brand,
            description: self.description,
            temperature_class,
            shelf_life_days: self.shelf_life_days.map(|days| days as u32),
            min_remaining_shelf_life_days: self.min_remaining_shelf_life_days.map(|days| days as u32),
            nutrition,
            country_of_origin: optional("country", self.country_of_origin.as_deref(), Country::parse)?,
            supplier_party_id: optional("party", self.supplier_party_id.as_deref(), PartyId::parse)?,
        })
    }
}

pub(crate) const PARTY_COLUMNS: &str = "party_id, kind, name, person_name, publish_name, gln, country";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PartyRow {
    party_id: String,
    kind: String,
    name: String,
    person_name: Option<String>,
    publish_name: bool,
    gln: Option<String>,
    country: Option<String>,
}

impl PartyRow {
    pub(crate) fn into_domain(self) -> Result<Party, StoreError> {
        Ok(Party {
            party_id: parse_stored("party", &self.party_id, PartyId::parse)?,
            kind: parse_stored("party kind", &self.kind, |text| parse_enum(text, &PartyKind::VALUES))?,
            name: self.name,
            person_name: self.person_name,
            publish_name: self.publish_name,
            gln: optional("gln", self.gln.as_deref(), Gln::parse)?,
            country: optional("country", self.country.as_deref(), Country::parse)?,
        })
    }
}

pub(crate) const LOCATION_COLUMNS: &str = "tenant_id, gln, kind, name, street, postal_code, city, country, \
    latitude_degrees, longitude_degrees, time_zone, pick_pack_lead_minutes, party_id";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LocationRow {
    pub tenant_id: String,
    pub gln: String,
    kind: String,
    name: String,
    street: Option<String>,
    postal_code: Option<String>,
    city: Option<String>,
    country: String,
    latitude_degrees: f64,
    longitude_degrees: f64,
    time_zone: String,
    pick_pack_lead_minutes: i64,
    party_id: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ZoneRow {
    pub tenant_id: String,
    pub gln: String,
    zone_name: String,
    min_celsius: Option<f64>,
    max_celsius: Option<f64>,
    capacity_pallets: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CutoffRow {
    pub tenant_id: String,
    pub gln: String,
    service: String,
    cutoff_local_time: String,
}

impl LocationRow {
    pub(crate) fn into_domain(self, zones: Vec<ZoneRow>, cutoffs: Vec<CutoffRow>) -> Result<Location, StoreError> {
        let coordinates = Coordinates::new(self.latitude_degrees, self.longitude_degrees)
            .map_err(|error| StoreError::Corrupt(format!("coordinates of {}: {error}", self.gln)))?;
        let zones = zones
            .into_iter()
            .map(|zone| {
                Ok(Zone {
                    name: parse_stored("zone", &zone.zone_name, ZoneName::parse)?,
                    range: TemperatureRange::new(zone.min_celsius, zone.max_celsius)
                        .map_err(|error| StoreError::Corrupt(format!("zone {}: {error}", zone.zone_name)))?,
                    capacity_pallets: zone.capacity_pallets as u32,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let cutoffs = cutoffs
            .into_iter()
            .map(|cutoff| {
                Ok((
                    parse_stored("service", &cutoff.service, |text| parse_enum(text, &Service::VALUES))?,
                    parse_stored("cut-off", &cutoff.cutoff_local_time, LocalTime::parse)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Location {
            gln: parse_stored("gln", &self.gln, Gln::parse)?,
            kind: parse_stored("location kind", &self.kind, |text| parse_enum(text, &LocationKind::VALUES))?,
            name: self.name,
            address: Address { street: self.street, postal_code: self.postal_code, city: self.city },
            country: parse_stored("country", &self.country, Country::parse)?,
            coordinates,
            time_zone: parse_stored("time zone", &self.time_zone, TimeZoneName::parse)?,
            zones,
            cutoffs,
            pick_pack_lead_minutes: self.pick_pack_lead_minutes as u32,
            party_id: optional("party", self.party_id.as_deref(), PartyId::parse)?,
        })
    }
}

pub(crate) const LANE_COLUMNS: &str =
    "tenant_id, lane_id, from_gln, to_gln, transit_minutes, departures, temperature_classes, cost_per_pallet_cents";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LaneRow {
    pub tenant_id: String,
    lane_id: String,
    from_gln: String,
    to_gln: String,
    transit_minutes: i64,
    departures: String,
    temperature_classes: String,
    cost_per_pallet_cents: i64,
}

/// Lists are stored space-separated.
pub(crate) fn join_list<T: ToString>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
}

fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(' ').filter(|item| !item.is_empty())
}

impl LaneRow {
    pub(crate) fn into_domain(self) -> Result<Lane, StoreError> {
        let departures = split_list(&self.departures)
            .map(|text| parse_stored("departure", text, LocalTime::parse))
            .collect::<Result<Vec<_>, _>>()?;
        let temperature_classes = split_list(&self.temperature_classes)
            .map(|text| {
                TemperatureClass::NAMES
                    .iter()
                    .copied()
                    .find(|name| *name == text)
                    .ok_or_else(|| StoreError::Corrupt(format!("temperature class {text:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Lane {
            lane_id: parse_stored("lane", &self.lane_id, LaneId::parse)?,
            from: parse_stored("gln", &self.from_gln, Gln::parse)?,
            to: parse_stored("gln", &self.to_gln, Gln::parse)?,
            transit_minutes: self.transit_minutes as u32,
            departures,
            temperature_classes,
            cost_per_pallet_cents: self.cost_per_pallet_cents as u64,
        })
    }
}

pub(crate) const DEVICE_COLUMNS: &str =
    "device_id, kind, name, location_gln, zone_name, reading_interval_seconds, calibrated_on";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DeviceRow {
    device_id: String,
    kind: String,
    name: String,
    location_gln: Option<String>,
    zone_name: Option<String>,
    reading_interval_seconds: i64,
    calibrated_on: Option<String>,
}

impl DeviceRow {
    pub(crate) fn into_domain(self) -> Result<Device, StoreError> {
        Ok(Device {
            device_id: parse_stored("device", &self.device_id, DeviceId::parse)?,
            kind: parse_stored("device kind", &self.kind, |text| parse_enum(text, &DeviceKind::VALUES))?,
            name: self.name,
            location_gln: optional("gln", self.location_gln.as_deref(), Gln::parse)?,
            zone: optional("zone", self.zone_name.as_deref(), ZoneName::parse)?,
            reading_interval_seconds: self.reading_interval_seconds as u32,
            calibrated_on: optional("calibration date", self.calibrated_on.as_deref(), |text| {
                text.parse::<jiff::civil::Date>()
            })?,
        })
    }
}
