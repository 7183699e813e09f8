//! The JSON wire format of Keten's own API (`/v1`): request bodies, views, and their conversion to
//! and from the domain types. Only this crate knows these shapes.

use std::collections::BTreeMap;
use std::fmt::Display;

use gs1::{Gln, Gtin};
use network::{
    Address, Coordinates, Country, Device, DeviceId, DeviceKind, Lane, LaneId, LocalTime, Location, LocationKind,
    Nutrition, Party, PartyId, PartyKind, Product, Service, TemperatureClass, TemperatureRange, TenantId, TimeZoneName,
    Zone, ZoneName, parse_enum,
};
use serde::{Deserialize, Serialize};
use store::{KeyInfo, Owned, Page, Scope, Tenant};
use utoipa::ToSchema;

use crate::problem::{FieldError, Problem};

/// Collects every field error of a request before answering.
#[derive(Debug, Default)]
pub struct Checker {
    errors: Vec<FieldError>,
    errors_omitted: usize,
}

/// The most field errors one problem lists.
pub const FIELD_ERRORS_MAX: usize = 100;

/// A JSON pointer segment (RFC 6901): `~` as `~0`, `/` as `~1`.
pub fn pointer_segment(text: &str) -> String {
    text.replace('~', "~0").replace('/', "~1")
}

/// The longest free-text field (names, brands, cities) unless a type says otherwise.
pub const TEXT_LENGTH_MAX: usize = 200;

impl Checker {
    pub fn check<T, E: Display>(&mut self, pointer: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.fail(pointer, error.to_string());
                None
            }
        }
    }

    /// Records an error; past [`FIELD_ERRORS_MAX`] the rest are counted in one last entry.
    pub fn fail(&mut self, pointer: &str, detail: impl Into<String>) {
        if self.errors.len() < FIELD_ERRORS_MAX {
            self.errors.push(FieldError { pointer: pointer.to_owned(), detail: detail.into() });
        } else {
            self.errors_omitted += 1;
        }
    }

    /// A list of `min..=max` items, else an error at `pointer`. Answers whether its items are
    /// worth checking one by one: a list past its limit is refused on its length alone, before any
    /// work per item (a 1 MiB body holds about 150,000 short strings).
    pub fn list<T>(&mut self, pointer: &str, items: &[T], min: usize, max: usize) -> bool {
        if (min..=max).contains(&items.len()) {
            return true;
        }
        self.fail(pointer, format!("{min} to {max} items, found {}", items.len()));
        items.len() <= max
    }

    /// A required text: trimmed, not empty, at most `length_max` characters, one line as shown
    /// (no control characters, line or paragraph separators, nor direction overrides or isolates,
    /// which could turn a page's text around it).
    pub fn text(&mut self, pointer: &str, value: &str, length_max: usize) -> Option<String> {
        let trimmed = value.trim();
        let length = trimmed.chars().count();
        if length == 0 {
            self.fail(pointer, "must not be empty");
            return None;
        }
        if length > length_max {
            self.fail(pointer, format!("must be at most {length_max} characters, found {length}"));
            return None;
        }
        if trimmed.chars().any(char::is_control) {
            self.fail(pointer, "must not contain control characters");
            return None;
        }
        if let Some(found) = trimmed
            .chars()
            .find(|c| matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        {
            self.fail(
                pointer,
                format!("must not contain U+{:04X} (a separator or a direction override)", u32::from(found)),
            );
            return None;
        }
        Some(trimmed.to_owned())
    }

    pub fn optional_text(&mut self, pointer: &str, value: &Option<String>, length_max: usize) -> Option<String> {
        value.as_deref().and_then(|text| self.text(pointer, text, length_max))
    }

    pub fn bounded(&mut self, pointer: &str, value: u64, min: u64, max: u64) -> Option<u64> {
        if (min..=max).contains(&value) {
            Some(value)
        } else {
            self.fail(pointer, format!("must be within {min}..={max}, found {value}"));
            None
        }
    }

    pub fn finish(self) -> Result<(), Problem> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let mut detail = self
            .errors
            .iter()
            .take(10)
            .map(|error| format!("{}: {}", error.pointer, error.detail))
            .collect::<Vec<_>>()
            .join("; ");
        let more = self.errors.len().saturating_sub(10) + self.errors_omitted;
        if more > 0 {
            detail.push_str(&format!("; and {more} more"));
        }
        Err(Problem::new("validation-failed", detail).with_errors(self.errors))
    }
}

/// Builds a domain value once every field checked out.
macro_rules! built {
    ($checker:expr, $($field:ident),+ => $value:expr) => {{
        $checker.finish()?;
        match ($($field,)+) {
            ($(Some($field),)+) => Ok($value),
            _ => Err(Problem::internal("a field failed without an error")),
        }
    }};
}

// ---------- pages ----------

/// A page of a list. `next_cursor` is present when more items follow: pass it as `cursor`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageView<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> PageView<T> {
    pub fn from_page<D>(page: Page<D>, view: impl Fn(D) -> T) -> PageView<T> {
        PageView {
            items: page.items.into_iter().map(view).collect(),
            next_cursor: page.next_after.as_deref().map(store::Cursor::encode),
        }
    }
}

// ---------- tenants and keys ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantInput {
    /// Lowercase letters, digits and `-`, 2-32 characters; `network` is reserved.
    pub tenant_id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    pub tenant_id: String,
    pub name: String,
    pub created_at: String,
}

pub fn timestamp(unix_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(unix_ms).map(|time| time.to_string()).unwrap_or_default()
}

impl From<Tenant> for TenantView {
    fn from(tenant: Tenant) -> Self {
        TenantView {
            tenant_id: tenant.tenant_id.to_string(),
            name: tenant.name,
            created_at: timestamp(tenant.created_unix_ms),
        }
    }
}

impl TenantInput {
    pub fn into_domain(self) -> Result<(TenantId, String), Problem> {
        let mut checker = Checker::default();
        let tenant_id = checker.check("/tenant_id", TenantId::parse(&self.tenant_id));
        let name = checker.text("/name", &self.name, TEXT_LENGTH_MAX);
        built!(checker, tenant_id, name => (tenant_id, name))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyPrefixInput {
    /// A GS1 company prefix the tenant is licensed for, 6 to 12 digits (as on its GS1 licence).
    pub company_prefix: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyPrefixView {
    pub tenant_id: String,
    pub company_prefix: String,
    pub verified_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    /// What the key is for, e.g. "warehouse scanner".
    pub name: String,
    /// Any of `tenant:admin`, `tenant:write`, `tenant:read`, `device` (`operator` and `courier` for the network tenant only).
    pub scopes: Vec<String>,
}

impl KeyInput {
    pub fn into_domain(self, tenant_id: &TenantId) -> Result<(String, Vec<Scope>), Problem> {
        let mut checker = Checker::default();
        let name = checker.text("/name", &self.name, TEXT_LENGTH_MAX);
        let scopes = checker.check("/scopes", Scope::parse_list(tenant_id, self.scopes.iter().map(String::as_str)));
        built!(checker, name, scopes => (name, scopes))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub key_id: String,
    pub tenant_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// The key itself: present only in the answer that created it, never again (not in a replay either).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<KeyInfo> for KeyView {
    fn from(key: KeyInfo) -> Self {
        KeyView {
            key_id: key.key_id,
            tenant_id: key.tenant_id.to_string(),
            name: key.name,
            scopes: key.scopes.iter().map(|scope| scope.name().to_owned()).collect(),
            created_at: timestamp(key.created_unix_ms),
            revoked_at: key.revoked_unix_ms.map(timestamp),
            secret: None,
        }
    }
}

// ---------- products ----------

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NutritionBody {
    pub energy_kj: Option<f64>,
    pub energy_kcal: Option<f64>,
    pub fat_g: Option<f64>,
    pub saturates_g: Option<f64>,
    pub carbohydrate_g: Option<f64>,
    pub sugars_g: Option<f64>,
    pub protein_g: Option<f64>,
    pub salt_g: Option<f64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// GTIN-8, -12, -13 or -14 with a valid check digit; stored as GTIN-14. In a PUT it may be left
    /// out (the path names it) or must equal the path.
    pub gtin: Option<String>,
    pub name: String,
    pub brand: Option<String>,
    pub description: Option<String>,
    /// `ambient`, `chilled` (0–4 °C), `frozen` (≤ −18 °C), `pharma` (2–8 °C) or `custom`.
    pub temperature_class: String,
    /// For `custom`; another class takes none or its own (as `GET` answers it, so a product read
    /// can be written back).
    pub temperature_min_celsius: Option<f64>,
    /// For `custom`; another class takes none or its own.
    pub temperature_max_celsius: Option<f64>,
    pub shelf_life_days: Option<u32>,
    /// Allocation ships only lots with at least this many days left on delivery.
    pub min_remaining_shelf_life_days: Option<u32>,
    /// Per 100 g.
    pub nutrition: Option<NutritionBody>,
    /// ISO 3166-1 alpha-2.
    pub country_of_origin: Option<String>,
    /// The farm, fishery or supplier (a party of this tenant).
    pub supplier_party_id: Option<String>,
}

impl ProductInput {
    /// The temperature class, each mistake at its own field: a custom class's bounds at
    /// `/temperature_min_celsius` and `/temperature_max_celsius`, the name at `/temperature_class`.
    fn checked_class(&self, checker: &mut Checker) -> Option<TemperatureClass> {
        let bounds = [
            ("/temperature_min_celsius", self.temperature_min_celsius),
            ("/temperature_max_celsius", self.temperature_max_celsius),
        ];
        let mut bounds_fit = true;
        if self.temperature_class == "custom" {
            for (pointer, value) in bounds {
                let checked = value.ok_or_else(|| "is required for a custom class".to_owned()).and_then(|celsius| {
                    network::TemperatureRange::new(Some(celsius), None).map_err(|error| error.to_string())
                });
                bounds_fit &= checker.check(pointer, checked).is_some();
            }
            if let (true, Some(min), Some(max)) =
                (bounds_fit, self.temperature_min_celsius, self.temperature_max_celsius)
                && let Err(error) = network::TemperatureRange::new(Some(min), Some(max))
            {
                checker.fail("/temperature_min_celsius", error.to_string());
                bounds_fit = false;
            }
        } else if let Ok(named) = TemperatureClass::new(&self.temperature_class, None, None) {
            // A named class's own range (as a product reads back) is no range of its own.
            let range = named.range();
            for ((pointer, value), own) in bounds.into_iter().zip([range.min_celsius, range.max_celsius]) {
                if value.is_some() && value != own {
                    let fixed = own.map_or_else(|| "none".to_owned(), |celsius| format!("{celsius} °C"));
                    let class = &self.temperature_class;
                    checker
                        .fail(pointer, format!("only a custom class takes a range of its own ({class}'s is {fixed})"));
                    bounds_fit = false;
                }
            }
            return bounds_fit.then_some(named);
        }
        if !bounds_fit {
            return None;
        }
        checker.check(
            "/temperature_class",
            TemperatureClass::new(&self.temperature_class, self.temperature_min_celsius, self.temperature_max_celsius),
        )
    }

    pub fn into_domain(self, path_gtin: Option<&str>) -> Result<Product, Problem> {
        let mut checker = Checker::default();
        let gtin = match (&self.gtin, path_gtin) {
            (Some(body), Some(path)) => {
                let body_gtin = checker.check("/gtin", Gtin::parse(body));
                let path_gtin = Gtin::parse(path).ok();
                if body_gtin.is_some() && body_gtin != path_gtin {
                    checker.fail("/gtin", "must equal the GTIN in the path");
                }
                body_gtin
            }
            (Some(body), None) => checker.check("/gtin", Gtin::parse(body)),
            (None, Some(path)) => checker.check("/gtin", Gtin::parse(path)),
            (None, None) => {
                checker.fail("/gtin", "is required");
                None
            }
        };
        let name = checker.text("/name", &self.name, Product::NAME_LENGTH_MAX);
        let brand = checker.optional_text("/brand", &self.brand, TEXT_LENGTH_MAX);
        let description = checker.optional_text("/description", &self.description, Product::DESCRIPTION_LENGTH_MAX);
        let class = self.checked_class(&mut checker);
        if let Some(days) = self.shelf_life_days {
            checker.bounded("/shelf_life_days", u64::from(days), 1, u64::from(Product::SHELF_LIFE_DAYS_MAX));
        }
        if let Some(days) = self.min_remaining_shelf_life_days {
            let max = self.shelf_life_days.unwrap_or(Product::SHELF_LIFE_DAYS_MAX);
            checker.bounded("/min_remaining_shelf_life_days", u64::from(days), 0, u64::from(max));
        }
        let nutrition = self.nutrition.map(|body| {
            let mut value = |field: &str, input: Option<f64>, max: f64| {
                input.and_then(|number| {
                    checker.check(&format!("/nutrition/{field}"), Nutrition::check_value(number, max))
                })
            };
            let nutrition = Nutrition {
                energy_kj: value("energy_kj", body.energy_kj, Nutrition::ENERGY_KJ_MAX),
                energy_kcal: value("energy_kcal", body.energy_kcal, Nutrition::ENERGY_KCAL_MAX),
                fat_g: value("fat_g", body.fat_g, Nutrition::GRAMS_MAX),
                saturates_g: value("saturates_g", body.saturates_g, Nutrition::GRAMS_MAX),
                carbohydrate_g: value("carbohydrate_g", body.carbohydrate_g, Nutrition::GRAMS_MAX),
                sugars_g: value("sugars_g", body.sugars_g, Nutrition::GRAMS_MAX),
                protein_g: value("protein_g", body.protein_g, Nutrition::GRAMS_MAX),
                salt_g: value("salt_g", body.salt_g, Nutrition::GRAMS_MAX),
            };
            if let Err((field, error)) = nutrition.check_relations() {
                checker.fail(&format!("/nutrition/{field}"), error.to_string());
            }
            nutrition
        });
        let country =
            self.country_of_origin.as_deref().map(|text| checker.check("/country_of_origin", Country::parse(text)));
        let supplier =
            self.supplier_party_id.as_deref().map(|text| checker.check("/supplier_party_id", PartyId::parse(text)));
        let shelf_life_days = self.shelf_life_days;
        built!(checker, gtin, name, class => Product {
            gtin,
            name,
            brand,
            description,
            temperature_class: class,
            shelf_life_days,
            min_remaining_shelf_life_days: self.min_remaining_shelf_life_days,
            nutrition,
            country_of_origin: country.flatten(),
            supplier_party_id: supplier.flatten(),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub gtin: String,
    pub name: String,
    pub brand: Option<String>,
    pub description: Option<String>,
    pub temperature_class: String,
    /// The class's range (the custom one, or the named class's).
    pub temperature_min_celsius: Option<f64>,
    pub temperature_max_celsius: Option<f64>,
    pub shelf_life_days: Option<u32>,
    pub min_remaining_shelf_life_days: Option<u32>,
    pub nutrition: Option<NutritionBody>,
    pub country_of_origin: Option<String>,
    pub supplier_party_id: Option<String>,
    /// The product's GS1 Digital Link on this server.
    pub digital_link_path: String,
}

impl From<Product> for ProductView {
    fn from(product: Product) -> Self {
        let range = product.temperature_class.range();
        ProductView {
            digital_link_path: format!("/01/{}", product.gtin),
            gtin: product.gtin.to_string(),
            name: product.name,
            brand: product.brand,
            description: product.description,
            temperature_class: product.temperature_class.name().to_owned(),
            temperature_min_celsius: range.min_celsius,
            temperature_max_celsius: range.max_celsius,
            shelf_life_days: product.shelf_life_days,
            min_remaining_shelf_life_days: product.min_remaining_shelf_life_days,
            nutrition: product.nutrition.map(|nutrition| NutritionBody {
                energy_kj: nutrition.energy_kj,
                energy_kcal: nutrition.energy_kcal,
                fat_g: nutrition.fat_g,
                saturates_g: nutrition.saturates_g,
                carbohydrate_g: nutrition.carbohydrate_g,
                sugars_g: nutrition.sugars_g,
                protein_g: nutrition.protein_g,
                salt_g: nutrition.salt_g,
            }),
            country_of_origin: product.country_of_origin.map(|country| country.to_string()),
            supplier_party_id: product.supplier_party_id.map(|party| party.to_string()),
        }
    }
}

// ---------- parties ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyInput {
    pub party_id: Option<String>,
    /// `supplier`, `farm`, `fishery` or `carrier`.
    pub kind: String,
    pub name: String,
    /// The farmer's or contact's name (personal data).
    pub person_name: Option<String>,
    /// Whether consumer pages may show `person_name`. Default false.
    #[serde(default)]
    pub publish_name: bool,
    pub gln: Option<String>,
    pub country: Option<String>,
}

impl PartyInput {
    pub fn into_domain(self, path_id: Option<&str>) -> Result<Party, Problem> {
        let mut checker = Checker::default();
        let party_id =
            id_from_body_or_path(&mut checker, "/party_id", self.party_id.as_deref(), path_id, PartyId::parse);
        let kind = checker.check("/kind", parse_enum(&self.kind, &PartyKind::VALUES));
        let name = checker.text("/name", &self.name, Party::NAME_LENGTH_MAX);
        let person_name = checker.optional_text("/person_name", &self.person_name, TEXT_LENGTH_MAX);
        let gln = self.gln.as_deref().map(|text| checker.check("/gln", Gln::parse(text)));
        let country = self.country.as_deref().map(|text| checker.check("/country", Country::parse(text)));
        let publish_name = self.publish_name;
        built!(checker, party_id, kind, name => Party { party_id, kind, name, person_name, publish_name, gln: gln.flatten(), country: country.flatten() })
    }
}

/// An id from the body, the path, or both (then they must agree).
fn id_from_body_or_path<T: PartialEq, E: Display>(
    checker: &mut Checker,
    pointer: &str,
    body: Option<&str>,
    path: Option<&str>,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Option<T> {
    match (body, path) {
        (Some(body), Some(path)) if body != path => {
            checker.fail(pointer, "must equal the id in the path");
            None
        }
        (Some(text), _) | (None, Some(text)) => checker.check(pointer, parse(text)),
        (None, None) => {
            checker.fail(pointer, "is required");
            None
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartyView {
    pub party_id: String,
    pub kind: String,
    pub name: String,
    pub person_name: Option<String>,
    pub publish_name: bool,
    pub gln: Option<String>,
    pub country: Option<String>,
}

impl From<Party> for PartyView {
    fn from(party: Party) -> Self {
        PartyView {
            party_id: party.party_id.to_string(),
            kind: party.kind.name().to_owned(),
            name: party.name,
            person_name: party.person_name,
            publish_name: party.publish_name,
            gln: party.gln.map(|gln| gln.to_string()),
            country: party.country.map(|country| country.to_string()),
        }
    }
}

// ---------- locations ----------

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneBody {
    pub name: String,
    pub min_celsius: Option<f64>,
    pub max_celsius: Option<f64>,
    pub capacity_pallets: u32,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    pub street: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    /// GLN-13 with a valid check digit.
    pub gln: Option<String>,
    /// `farm`, `factory`, `warehouse`, `cold_depot`, `pickup_point`, `store` or `pharmacy`.
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub address: AddressBody,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub latitude: f64,
    pub longitude: f64,
    /// IANA time zone, e.g. `Europe/Amsterdam`.
    pub time_zone: String,
    #[serde(default)]
    pub zones: Vec<ZoneBody>,
    /// Local cut-off time (HH:MM) per service: `standard`, `next_day`, `same_day`, `express_12h`.
    #[serde(default)]
    pub cutoffs: BTreeMap<String, String>,
    #[serde(default)]
    pub pick_pack_lead_minutes: u32,
    pub party_id: Option<String>,
}

impl LocationInput {
    pub fn into_domain(self, path_gln: Option<&str>) -> Result<Location, Problem> {
        let mut checker = Checker::default();
        let gln = id_from_body_or_path(&mut checker, "/gln", self.gln.as_deref(), path_gln, Gln::parse);
        let kind = checker.check("/kind", parse_enum(&self.kind, &LocationKind::VALUES));
        let name = checker.text("/name", &self.name, Location::NAME_LENGTH_MAX);
        let address = Address {
            street: checker.optional_text("/address/street", &self.address.street, TEXT_LENGTH_MAX),
            postal_code: checker.optional_text("/address/postal_code", &self.address.postal_code, 20),
            city: checker.optional_text("/address/city", &self.address.city, TEXT_LENGTH_MAX),
        };
        let country = checker.check("/country", Country::parse(&self.country));
        let coordinates = match Coordinates::new(self.latitude, self.longitude) {
            Ok(coordinates) => Some(coordinates),
            Err(error @ network::CoordinatesError::Latitude(_)) => {
                checker.check("/latitude", Err::<Coordinates, _>(error))
            }
            Err(error) => checker.check("/longitude", Err::<Coordinates, _>(error)),
        };
        let time_zone = checker.check("/time_zone", TimeZoneName::parse(&self.time_zone));
        if self.zones.len() > Location::ZONES_MAX {
            checker.fail("/zones", format!("at most {} zones", Location::ZONES_MAX));
        }
        let mut zones = Vec::new();
        for (index, zone) in self.zones.iter().take(Location::ZONES_MAX).enumerate() {
            let name = checker.check(&format!("/zones/{index}/name"), ZoneName::parse(&zone.name));
            let range =
                checker.check(&format!("/zones/{index}"), TemperatureRange::new(zone.min_celsius, zone.max_celsius));
            checker.bounded(
                &format!("/zones/{index}/capacity_pallets"),
                u64::from(zone.capacity_pallets),
                0,
                u64::from(Zone::CAPACITY_PALLETS_MAX),
            );
            if let (Some(name), Some(range)) = (name, range) {
                zones.push(Zone { name, range, capacity_pallets: zone.capacity_pallets });
            }
        }
        if let Err((index, error)) = Location::check_zones(&zones) {
            checker.fail(&format!("/zones/{index}/name"), error.to_string());
        }
        let mut cutoffs = Vec::new();
        for (service, time) in &self.cutoffs {
            let pointer = format!("/cutoffs/{}", pointer_segment(service));
            let service = checker.check(&pointer, parse_enum(service, &Service::VALUES));
            let time = checker.check(&pointer, LocalTime::parse(time));
            if let (Some(service), Some(time)) = (service, time) {
                cutoffs.push((service, time));
            }
        }
        checker.bounded(
            "/pick_pack_lead_minutes",
            u64::from(self.pick_pack_lead_minutes),
            0,
            u64::from(Location::PICK_PACK_LEAD_MINUTES_MAX),
        );
        let party_id = self.party_id.as_deref().map(|text| checker.check("/party_id", PartyId::parse(text)));
        let pick_pack_lead_minutes = self.pick_pack_lead_minutes;
        built!(checker, gln, kind, name, country, coordinates, time_zone => Location {
            gln, kind, name, address, country, coordinates, time_zone, zones, cutoffs, pick_pack_lead_minutes, party_id: party_id.flatten(),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocationView {
    pub gln: String,
    /// `network` for the shared network's locations, else the tenant's own id.
    pub owner: String,
    pub kind: String,
    pub name: String,
    pub address: AddressBody,
    pub country: String,
    pub latitude: f64,
    pub longitude: f64,
    pub time_zone: String,
    pub zones: Vec<ZoneBody>,
    pub cutoffs: BTreeMap<String, String>,
    pub pick_pack_lead_minutes: u32,
    pub party_id: Option<String>,
}

impl From<Owned<Location>> for LocationView {
    fn from(owned: Owned<Location>) -> Self {
        let location = owned.value;
        LocationView {
            gln: location.gln.to_string(),
            owner: owned.owner.to_string(),
            kind: location.kind.name().to_owned(),
            name: location.name,
            address: AddressBody {
                street: location.address.street,
                postal_code: location.address.postal_code,
                city: location.address.city,
            },
            country: location.country.to_string(),
            latitude: location.coordinates.latitude_degrees(),
            longitude: location.coordinates.longitude_degrees(),
            time_zone: location.time_zone.as_str().to_owned(),
            zones: location
                .zones
                .into_iter()
                .map(|zone| ZoneBody {
                    name: zone.name.to_string(),
                    min_celsius: zone.range.min_celsius,
                    max_celsius: zone.range.max_celsius,
                    capacity_pallets: zone.capacity_pallets,
                })
                .collect(),
            cutoffs: location
                .cutoffs
                .into_iter()
                .map(|(service, time)| (service.name().to_owned(), time.to_string()))
                .collect(),
            pick_pack_lead_minutes: location.pick_pack_lead_minutes,
            party_id: location.party_id.map(|party| party.to_string()),
        }
    }
}

// ---------- lanes ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaneInput {
    /// Required by `POST /v1/lanes`; `PUT /v1/lanes/{lane_id}` takes the path's (if given here,
    /// it must be the same).
    pub lane_id: Option<String>,
    /// GLN of the origin (own or network location).
    pub from: String,
    /// GLN of the destination (own or network location).
    pub to: String,
    pub transit_minutes: u32,
    /// Local departure times at the origin, HH:MM.
    #[serde(default)]
    pub departures: Vec<String>,
    /// Classes the lane can carry: `ambient`, `chilled`, `frozen`, `pharma`.
    pub temperature_classes: Vec<String>,
    #[serde(default)]
    pub cost_per_pallet_cents: u64,
}

impl LaneInput {
    pub fn into_domain(self, path_id: Option<&str>) -> Result<Lane, Problem> {
        let mut checker = Checker::default();
        let lane_id = id_from_body_or_path(&mut checker, "/lane_id", self.lane_id.as_deref(), path_id, LaneId::parse);
        let from = checker.check("/from", Gln::parse(&self.from));
        let to = checker.check("/to", Gln::parse(&self.to));
        if self.departures.len() > Lane::DEPARTURES_MAX {
            checker.fail("/departures", format!("at most {} departures", Lane::DEPARTURES_MAX));
        }
        let mut departures: Vec<LocalTime> = self
            .departures
            .iter()
            .take(Lane::DEPARTURES_MAX)
            .enumerate()
            .filter_map(|(index, text)| checker.check(&format!("/departures/{index}"), LocalTime::parse(text)))
            .collect();
        departures.sort();
        let mut classes = Vec::new();
        if self.temperature_classes.len() > 4 {
            checker.fail("/temperature_classes", "at most 4 classes: ambient, chilled, frozen, pharma");
        }
        for (index, text) in self.temperature_classes.iter().take(4).enumerate() {
            match TemperatureClass::NAMES.iter().copied().find(|name| *name == text && *name != "custom") {
                Some(name) if !classes.contains(&name) => classes.push(name),
                Some(_) => checker.fail(&format!("/temperature_classes/{index}"), format!("{text:?} appears twice")),
                None => checker.fail(
                    &format!("/temperature_classes/{index}"),
                    format!("must be one of ambient, chilled, frozen, pharma, found {text:?}"),
                ),
            }
        }
        if self.temperature_classes.is_empty() {
            checker.fail("/temperature_classes", "must name at least one class");
        }
        let transit_minutes = self.transit_minutes;
        let cost_per_pallet_cents = self.cost_per_pallet_cents;
        checker.bounded("/cost_per_pallet_cents", cost_per_pallet_cents, 0, 100_000_000);
        checker.finish()?;
        let (Some(lane_id), Some(from), Some(to)) = (lane_id, from, to) else {
            return Err(Problem::internal("lane fields"));
        };
        let lane = Lane {
            lane_id,
            from,
            to,
            transit_minutes,
            departures,
            temperature_classes: classes,
            cost_per_pallet_cents,
        };
        lane.check().map_err(|error| {
            let pointer = match error {
                network::LaneError::SameEnds => "/to",
                network::LaneError::Transit { .. } => "/transit_minutes",
                network::LaneError::DuplicateDeparture(_) => "/departures",
            };
            Problem::field("validation-failed", pointer, error.to_string())
        })?;
        Ok(lane)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LaneView {
    pub lane_id: String,
    pub owner: String,
    pub from: String,
    pub to: String,
    pub transit_minutes: u32,
    pub departures: Vec<String>,
    pub temperature_classes: Vec<String>,
    pub cost_per_pallet_cents: u64,
}

impl From<Owned<Lane>> for LaneView {
    fn from(owned: Owned<Lane>) -> Self {
        let lane = owned.value;
        LaneView {
            lane_id: lane.lane_id.to_string(),
            owner: owned.owner.to_string(),
            from: lane.from.to_string(),
            to: lane.to.to_string(),
            transit_minutes: lane.transit_minutes,
            departures: lane.departures.iter().map(ToString::to_string).collect(),
            temperature_classes: lane.temperature_classes.iter().map(|name| (*name).to_owned()).collect(),
            cost_per_pallet_cents: lane.cost_per_pallet_cents,
        }
    }
}

// ---------- devices ----------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceInput {
    pub device_id: Option<String>,
    /// `data_logger`, `reefer_unit` or `room_sensor`.
    pub kind: String,
    pub name: String,
    pub location_gln: Option<String>,
    /// A zone of `location_gln`.
    pub zone: Option<String>,
    pub reading_interval_seconds: u32,
    /// When the device was last calibrated (YYYY-MM-DD), shown on temperature reports.
    pub calibrated_on: Option<String>,
}

impl DeviceInput {
    pub fn into_domain(self, path_id: Option<&str>) -> Result<Device, Problem> {
        let mut checker = Checker::default();
        let device_id =
            id_from_body_or_path(&mut checker, "/device_id", self.device_id.as_deref(), path_id, DeviceId::parse);
        let kind = checker.check("/kind", parse_enum(&self.kind, &DeviceKind::VALUES));
        let name = checker.text("/name", &self.name, TEXT_LENGTH_MAX);
        let location_gln = self.location_gln.as_deref().map(|text| checker.check("/location_gln", Gln::parse(text)));
        let zone = self.zone.as_deref().map(|text| checker.check("/zone", ZoneName::parse(text)));
        if self.zone.is_some() && self.location_gln.is_none() {
            checker.fail("/zone", "needs location_gln");
        }
        checker.bounded(
            "/reading_interval_seconds",
            u64::from(self.reading_interval_seconds),
            1,
            u64::from(Device::READING_INTERVAL_SECONDS_MAX),
        );
        let reading_interval_seconds = self.reading_interval_seconds;
        let calibrated_on = self.calibrated_on.as_deref().and_then(|text| {
            checker.check("/calibrated_on", text.parse::<jiff::civil::Date>().map_err(|error| error.to_string()))
        });
        built!(checker, device_id, kind, name => Device { device_id, kind, name, location_gln: location_gln.flatten(), zone: zone.flatten(), reading_interval_seconds, calibrated_on })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    pub device_id: String,
    pub kind: String,
    pub name: String,
    pub location_gln: Option<String>,
    pub zone: Option<String>,
    pub reading_interval_seconds: u32,
    pub calibrated_on: Option<String>,
}

impl From<Device> for DeviceView {
    fn from(device: Device) -> Self {
        DeviceView {
            device_id: device.device_id.to_string(),
            kind: device.kind.name().to_owned(),
            name: device.name,
            location_gln: device.location_gln.map(|gln| gln.to_string()),
            zone: device.zone.map(|zone| zone.to_string()),
            reading_interval_seconds: device.reading_interval_seconds,
            calibrated_on: device.calibrated_on.map(|date| date.to_string()),
        }
    }
}

// ---------- usage ----------

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    pub tenant_id: String,
    /// UTC day, YYYY-MM-DD.
    pub day: String,
    /// `storage_rows_created`, `storage_rows_deleted` (and, as they land: `orders`, `events`, `readings`).
    pub unit: String,
    pub quantity: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReport {
    pub from: String,
    pub to: String,
    pub counters: Vec<UsageView>,
    /// Rows each tenant in the report stores now (the level the storage rent is computed from).
    pub storage_rows: BTreeMap<String, i64>,
}

#[cfg(test)]
mod tests {
    use super::Checker;

    #[test]
    fn a_text_is_one_line_as_shown() {
        let mut checker = Checker::default();
        assert_eq!(checker.text("/name", "  Café — ‏שלום ", 200).as_deref(), Some("Café — ‏שלום"));
        for (text, detail) in [
            ("a\nb", "control characters"),
            ("a\u{2028}b", "U+2028"),
            ("a\u{2029}b", "U+2029"),
            ("a\u{202E}b", "U+202E"),
            ("a\u{2067}b", "U+2067"),
        ] {
            let mut checker = Checker::default();
            assert_eq!(checker.text("/name", text, 200), None, "{text:?}");
            let problem = checker.finish().unwrap_err();
            assert!(format!("{problem:?}").contains(detail), "{text:?}: {problem:?}");
        }
    }
}
