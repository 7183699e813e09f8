//! The demo network of the brief, loaded through the same writer as any API call.
//!
//! Loading is idempotent: every value is upserted under a fixed identifier, so a second load
//! changes nothing and duplicates nothing. Each load mints fresh API keys (stored keys are hashed,
//! so earlier keys cannot be shown again); earlier demo keys keep working until revoked.

use gs1::{Gln, Gtin};
use network::*;
use store::{ApiKeySecret, Mutation, PutMode, Scope, Store, Write, WriteError};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("loading {what}: {error}")]
    Write { what: String, error: WriteError },
    #[error("demo data is invalid: {0}")]
    Invalid(String),
}

/// What a person needs to try the demo.
#[derive(Debug)]
pub struct Demo {
    pub operator_key: String,
    /// (tenant, name, a tenant:admin key)
    pub tenant_keys: Vec<(TenantId, String, String)>,
    /// The salmon pack whose Digital Link the demo prints.
    pub salmon_gtin: Gtin,
    pub counts: DemoCounts,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DemoCounts {
    pub tenants: usize,
    pub parties: usize,
    pub products: usize,
    pub locations: usize,
    pub lanes: usize,
    pub devices: usize,
}

/// A GS1 key from its digits without the check digit.
fn with_check_digit(body: &str) -> String {
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    format!("{body}{}", gs1::check_digit(&digits))
}

fn gtin(body: &str) -> Gtin {
    Gtin::parse(&with_check_digit(body)).expect("demo GTIN body has 13 digits")
}

fn gln(body: &str) -> Gln {
    Gln::parse(&with_check_digit(body)).expect("demo GLN body has 12 digits")
}

fn tenant(id: &str) -> TenantId {
    TenantId::parse_any(id).expect("demo tenant id")
}

fn zone(name: &str, min_celsius: Option<f64>, max_celsius: Option<f64>, capacity_pallets: u32) -> Zone {
    Zone {
        name: ZoneName::parse(name).expect("zone"),
        range: TemperatureRange::new(min_celsius, max_celsius).expect("range"),
        capacity_pallets,
    }
}

struct Place<'a> {
    gln: &'a str,
    kind: LocationKind,
    name: &'a str,
    city: &'a str,
    country: &'a str,
    latitude: f64,
    longitude: f64,
    time_zone: &'a str,
}

fn location(
    place: Place<'_>,
    zones: Vec<Zone>,
    cutoffs: &[(Service, &str)],
    pick_pack_lead_minutes: u32,
    party: Option<&str>,
) -> Location {
    Location {
        gln: gln(place.gln),
        kind: place.kind,
        name: place.name.to_owned(),
        address: Address { street: None, postal_code: None, city: Some(place.city.to_owned()) },
        country: Country::parse(place.country).expect("country"),
        coordinates: Coordinates::new(place.latitude, place.longitude).expect("coordinates"),
        time_zone: TimeZoneName::parse(place.time_zone).expect("time zone"),
        zones,
        cutoffs: cutoffs.iter().map(|(service, time)| (*service, LocalTime::parse(time).expect("time"))).collect(),
        pick_pack_lead_minutes,
        party_id: party.map(|id| PartyId::parse(id).expect("party")),
    }
}

fn lane(
    id: &str,
    from: &str,
    to: &str,
    transit_minutes: u32,
    departures: &[&str],
    classes: &[&'static str],
    cost_per_pallet_cents: u64,
) -> Lane {
    Lane {
        lane_id: LaneId::parse(id).expect("lane"),
        from: gln(from),
        to: gln(to),
        transit_minutes,
        departures: departures.iter().map(|time| LocalTime::parse(time).expect("time")).collect(),
        temperature_classes: classes.to_vec(),
        cost_per_pallet_cents,
    }
}

fn device(id: &str, kind: DeviceKind, name: &str, at: Option<(&str, &str)>, reading_interval_seconds: u32) -> Device {
    Device {
        device_id: DeviceId::parse(id).expect("device"),
        kind,
        name: name.to_owned(),
        location_gln: at.map(|(location, _)| gln(location)),
        zone: at.map(|(_, zone)| ZoneName::parse(zone).expect("zone")),
        reading_interval_seconds,
        calibrated_on: Some(jiff::civil::date(2026, 3, 2)),
    }
}

fn party(id: &str, kind: PartyKind, name: &str, person: Option<&str>, publish_name: bool, country: &str) -> Party {
    Party {
        party_id: PartyId::parse(id).expect("party"),
        kind,
        name: name.to_owned(),
        person_name: person.map(str::to_owned),
        publish_name,
        gln: None,
        country: Some(Country::parse(country).expect("country")),
    }
}

struct ProductSpec<'a> {
    gtin: &'a str,
    name: &'a str,
    brand: &'a str,
    class: TemperatureClass,
    shelf_life_days: u32,
    nutrition: Option<Nutrition>,
    country: &'a str,
    supplier: Option<&'a str>,
}

fn product(spec: ProductSpec<'_>) -> Product {
    Product {
        gtin: gtin(spec.gtin),
        name: spec.name.to_owned(),
        brand: Some(spec.brand.to_owned()),
        description: None,
        temperature_class: spec.class,
        shelf_life_days: Some(spec.shelf_life_days),
        min_remaining_shelf_life_days: Some(spec.shelf_life_days / 3),
        nutrition: spec.nutrition,
        country_of_origin: Some(Country::parse(spec.country).expect("country")),
        supplier_party_id: spec.supplier.map(|id| PartyId::parse(id).expect("party")),
    }
}

// GLN bodies (12 digits, check digit added): network sites, then each tenant's own.
const OSLO_DEPOT: &str = "709876500001";
const AMSTERDAM_DC: &str = "871234500001";
const PICKUP_CENTRAAL: &str = "871234500002";
const PICKUP_ZUID: &str = "871234500003";
const POZNAN_DEPOT: &str = "590123400001";
const APPLE_COLD_STORE: &str = "871234500004";
const SALMON_FARM: &str = "709876500101";
const ORCHARD: &str = "871111100001";
const WHOLESALER: &str = "400123400001";

/// The tenants of the demo: (id, name).
pub const TENANTS: [(&str, &str); 3] =
    [("nordfjord", "Nordfjord Salmon AS"), ("appelhof", "Appelhof Fruit B.V."), ("pharmapol", "PharmaPol Sp. z o.o.")];

/// The GS1 company prefixes of the demo's brands, verified by the operator: (tenant, prefix).
pub const COMPANY_PREFIXES: [(&str, &str); 3] =
    [("nordfjord", "7098765"), ("appelhof", "8711111"), ("pharmapol", "5901234")];

/// Everything the demo writes, in dependency order: (tenant, what, mutation).
fn mutations() -> Vec<(TenantId, String, Mutation)> {
    let network_tenant = TenantId::network();
    let mut all: Vec<(TenantId, String, Mutation)> = Vec::new();
    let mut add =
        |tenant_id: &TenantId, what: String, mutation: Mutation| all.push((tenant_id.clone(), what, mutation));
    add(
        &network_tenant,
        "network tenant".into(),
        Mutation::PutTenant { name: "Keten network".into(), mode: PutMode::Upsert },
    );
    for (id, name) in TENANTS {
        add(&tenant(id), format!("tenant {id}"), Mutation::PutTenant { name: name.into(), mode: PutMode::Upsert });
    }
    // Each brand's GS1 company prefix, as the operator verified it against its licence.
    for (id, company_prefix) in COMPANY_PREFIXES {
        let mutation = Mutation::VerifyCompanyPrefix { company_prefix: company_prefix.into() };
        add(&tenant(id), format!("company prefix {company_prefix} of {id}"), mutation);
    }
    use LocationKind::*;
    use Service::*;
    let network_locations = [
        location(
            Place {
                gln: OSLO_DEPOT,
                kind: ColdDepot,
                name: "Keten Cold Depot Oslo",
                city: "Oslo",
                country: "NO",
                latitude: 59.9139,
                longitude: 10.7522,
                time_zone: "Europe/Oslo",
            },
            vec![zone("chill-1", Some(0.0), Some(2.0), 400), zone("frozen-1", None, Some(-20.0), 200)],
            &[(NextDay, "16:00"), (Express12h, "18:00")],
            60,
            None,
        ),
        location(
            Place {
                gln: AMSTERDAM_DC,
                kind: Warehouse,
                name: "Keten Chilled DC Amsterdam",
                city: "Amsterdam",
                country: "NL",
                latitude: 52.3874,
                longitude: 4.8379,
                time_zone: "Europe/Amsterdam",
            },
            vec![
                zone("chill-1", Some(0.0), Some(4.0), 800),
                zone("ambient-1", Some(10.0), Some(25.0), 1200),
                zone("pharma-1", Some(2.0), Some(8.0), 100),
            ],
            &[(Standard, "20:00"), (NextDay, "22:00"), (SameDay, "11:00"), (Express12h, "12:00")],
            45,
            None,
        ),
        location(
            Place {
                gln: PICKUP_CENTRAAL,
                kind: PickupPoint,
                name: "Pickup Point Amsterdam Centraal",
                city: "Amsterdam",
                country: "NL",
                latitude: 52.3791,
                longitude: 4.9003,
                time_zone: "Europe/Amsterdam",
            },
            vec![zone("locker-chilled", Some(0.0), Some(4.0), 2)],
            &[],
            0,
            None,
        ),
        location(
            Place {
                gln: PICKUP_ZUID,
                kind: PickupPoint,
                name: "Pickup Point Amsterdam Zuid",
                city: "Amsterdam",
                country: "NL",
                latitude: 52.3390,
                longitude: 4.8730,
                time_zone: "Europe/Amsterdam",
            },
            vec![zone("locker-chilled", Some(0.0), Some(4.0), 2)],
            &[],
            0,
            None,
        ),
        location(
            Place {
                gln: POZNAN_DEPOT,
                kind: ColdDepot,
                name: "Keten Pharma Depot Poznań",
                city: "Poznań",
                country: "PL",
                latitude: 52.4064,
                longitude: 16.9252,
                time_zone: "Europe/Warsaw",
            },
            vec![zone("pharma-1", Some(2.0), Some(8.0), 300)],
            &[(NextDay, "15:00")],
            90,
            None,
        ),
        location(
            Place {
                gln: APPLE_COLD_STORE,
                kind: ColdDepot,
                name: "Keten Fruit Cold Store Geldermalsen",
                city: "Geldermalsen",
                country: "NL",
                latitude: 51.8811,
                longitude: 5.2889,
                time_zone: "Europe/Amsterdam",
            },
            vec![zone("ca-store-1", Some(1.0), Some(4.0), 600)],
            &[(Standard, "14:00")],
            120,
            None,
        ),
    ];
    for place in network_locations {
        add(
            &network_tenant,
            format!("location {}", place.name),
            Mutation::PutLocation { location: place, mode: PutMode::Upsert },
        );
    }
    let network_lanes = [
        lane(
            "oslo-amsterdam-reefer",
            OSLO_DEPOT,
            AMSTERDAM_DC,
            12 * 60,
            &["18:00", "22:00"],
            &["chilled", "frozen"],
            42_000,
        ),
        lane(
            "geldermalsen-amsterdam",
            APPLE_COLD_STORE,
            AMSTERDAM_DC,
            90,
            &["05:00", "13:00"],
            &["chilled", "ambient"],
            9_500,
        ),
        lane(
            "amsterdam-pickup-centraal",
            AMSTERDAM_DC,
            PICKUP_CENTRAAL,
            40,
            &["06:00", "12:00", "16:00"],
            &["chilled", "ambient"],
            1_800,
        ),
        lane(
            "amsterdam-pickup-zuid",
            AMSTERDAM_DC,
            PICKUP_ZUID,
            35,
            &["06:00", "12:00", "16:00"],
            &["chilled", "ambient"],
            1_700,
        ),
    ];
    for network_lane in network_lanes {
        add(
            &network_tenant,
            format!("lane {}", network_lane.lane_id),
            Mutation::PutLane { lane: network_lane, mode: PutMode::Upsert },
        );
    }
    let network_devices = [
        device(
            "oslo-chill-1-sensor",
            DeviceKind::RoomSensor,
            "Oslo depot chill room 1",
            Some((OSLO_DEPOT, "chill-1")),
            60,
        ),
        device(
            "amsterdam-chill-1-sensor",
            DeviceKind::RoomSensor,
            "Amsterdam DC chill hall",
            Some((AMSTERDAM_DC, "chill-1")),
            60,
        ),
        device(
            "amsterdam-pharma-1-sensor",
            DeviceKind::RoomSensor,
            "Amsterdam DC pharma room",
            Some((AMSTERDAM_DC, "pharma-1")),
            60,
        ),
        device(
            "poznan-pharma-1-sensor",
            DeviceKind::RoomSensor,
            "Poznań pharma room 1",
            Some((POZNAN_DEPOT, "pharma-1")),
            60,
        ),
        device(
            "geldermalsen-ca-1-sensor",
            DeviceKind::RoomSensor,
            "Fruit CA store 1",
            Some((APPLE_COLD_STORE, "ca-store-1")),
            300,
        ),
        device("reefer-no-ams-1", DeviceKind::ReeferUnit, "Reefer trailer NO-AMS 1", None, 120),
        // The reefer on the Poznań lane: its readings carry the demo's temperature excursion.
        device("reefer-pl-de-1", DeviceKind::ReeferUnit, "Reefer van PL-DE 1", None, 120),
    ];
    for network_device in network_devices {
        add(
            &network_tenant,
            format!("device {}", network_device.device_id),
            Mutation::PutDevice { device: network_device, mode: PutMode::Upsert },
        );
    }

    let nordfjord = tenant("nordfjord");
    add(
        &nordfjord,
        "party fjordlaks".into(),
        Mutation::PutParty {
            party: party(
                "fjordlaks-alesund",
                PartyKind::Fishery,
                "Fjordlaks Ålesund",
                Some("Ingrid Solberg"),
                true,
                "NO",
            ),
            mode: PutMode::Upsert,
        },
    );
    add(
        &nordfjord,
        "salmon farm".into(),
        Mutation::PutLocation {
            location: location(
                Place {
                    gln: SALMON_FARM,
                    kind: Farm,
                    name: "Fjordlaks salmon farm, Storfjorden",
                    city: "Ålesund",
                    country: "NO",
                    latitude: 62.4722,
                    longitude: 6.1549,
                    time_zone: "Europe/Oslo",
                },
                vec![zone("slaughter-chill", Some(0.0), Some(2.0), 20)],
                &[],
                120,
                Some("fjordlaks-alesund"),
            ),
            mode: PutMode::Upsert,
        },
    );
    add(
        &nordfjord,
        "lane farm to Oslo".into(),
        Mutation::PutLane {
            lane: lane(
                "alesund-oslo-reefer",
                SALMON_FARM,
                OSLO_DEPOT,
                8 * 60,
                &["06:00", "14:00"],
                &["chilled"],
                18_000,
            ),
            mode: PutMode::Upsert,
        },
    );
    let salmon_nutrition = Nutrition {
        energy_kj: Some(858.0),
        energy_kcal: Some(206.0),
        fat_g: Some(13.4),
        saturates_g: Some(2.3),
        carbohydrate_g: Some(0.0),
        sugars_g: Some(0.0),
        protein_g: Some(20.4),
        salt_g: Some(0.15),
    };
    add(
        &nordfjord,
        "salmon fillets".into(),
        Mutation::PutProduct {
            product: product(ProductSpec {
                gtin: "709876501000",
                name: "Norwegian salmon fillets 2 × 125 g",
                brand: "Nordfjord",
                class: TemperatureClass::Chilled,
                shelf_life_days: 12,
                nutrition: Some(salmon_nutrition.clone()),
                country: "NO",
                supplier: Some("fjordlaks-alesund"),
            }),
            mode: PutMode::Upsert,
        },
    );
    add(
        &nordfjord,
        "whole salmon".into(),
        Mutation::PutProduct {
            product: product(ProductSpec {
                gtin: "709876501001",
                name: "Whole Norwegian salmon, gutted (variable weight)",
                brand: "Nordfjord",
                class: TemperatureClass::Chilled,
                shelf_life_days: 14,
                nutrition: Some(salmon_nutrition),
                country: "NO",
                supplier: Some("fjordlaks-alesund"),
            }),
            mode: PutMode::Upsert,
        },
    );
    add(
        &nordfjord,
        format!("device {SALMON_LOGGER}"),
        Mutation::PutDevice {
            device: device(SALMON_LOGGER, DeviceKind::DataLogger, "Pallet logger NF-1", None, 900),
            mode: PutMode::Upsert,
        },
    );
    add(
        &nordfjord,
        "salmon sensor".into(),
        Mutation::PutDevice {
            device: device(
                "farm-chill-logger",
                DeviceKind::DataLogger,
                "Farm slaughter chill logger",
                Some((SALMON_FARM, "slaughter-chill")),
                300,
            ),
            mode: PutMode::Upsert,
        },
    );

    let appelhof = tenant("appelhof");
    add(
        &appelhof,
        "party orchard".into(),
        Mutation::PutParty {
            party: party("boomgaard-de-linde", PartyKind::Farm, "Boomgaard De Linde", Some("Jan de Vries"), true, "NL"),
            mode: PutMode::Upsert,
        },
    );
    add(
        &appelhof,
        "orchard".into(),
        Mutation::PutLocation {
            location: location(
                Place {
                    gln: ORCHARD,
                    kind: Farm,
                    name: "Boomgaard De Linde",
                    city: "Zoelen",
                    country: "NL",
                    latitude: 51.9156,
                    longitude: 5.4047,
                    time_zone: "Europe/Amsterdam",
                },
                vec![],
                &[],
                240,
                Some("boomgaard-de-linde"),
            ),
            mode: PutMode::Upsert,
        },
    );
    add(
        &appelhof,
        "lane orchard to cold store".into(),
        Mutation::PutLane {
            lane: lane("orchard-cold-store", ORCHARD, APPLE_COLD_STORE, 45, &["07:00"], &["chilled", "ambient"], 4_000),
            mode: PutMode::Upsert,
        },
    );
    add(
        &appelhof,
        "apples".into(),
        Mutation::PutProduct {
            product: product(ProductSpec {
                gtin: "871111100010",
                name: "Elstar apples 1 kg",
                brand: "Appelhof",
                class: TemperatureClass::Custom(TemperatureRange::new(Some(1.0), Some(4.0)).expect("range")),
                shelf_life_days: 60,
                nutrition: Some(Nutrition {
                    energy_kj: Some(218.0),
                    energy_kcal: Some(52.0),
                    fat_g: Some(0.2),
                    saturates_g: Some(0.0),
                    carbohydrate_g: Some(11.4),
                    sugars_g: Some(10.4),
                    protein_g: Some(0.3),
                    salt_g: Some(0.0),
                }),
                country: "NL",
                supplier: Some("boomgaard-de-linde"),
            }),
            mode: PutMode::Upsert,
        },
    );

    let pharmapol = tenant("pharmapol");
    add(
        &pharmapol,
        "party pharmapol".into(),
        Mutation::PutParty {
            party: party("pharmapol-plant", PartyKind::Supplier, "PharmaPol plant Poznań", None, false, "PL"),
            mode: PutMode::Upsert,
        },
    );
    add(
        &pharmapol,
        "wholesaler".into(),
        Mutation::PutLocation {
            location: location(
                Place {
                    gln: WHOLESALER,
                    kind: Pharmacy,
                    name: "Pharma-Großhandel Berlin",
                    city: "Berlin",
                    country: "DE",
                    latitude: 52.5200,
                    longitude: 13.4050,
                    time_zone: "Europe/Berlin",
                },
                vec![zone("pharma-1", Some(2.0), Some(8.0), 50)],
                &[],
                30,
                None,
            ),
            mode: PutMode::Upsert,
        },
    );
    add(
        &pharmapol,
        "lane Poznań to Berlin".into(),
        Mutation::PutLane {
            lane: lane("poznan-berlin-pharma", POZNAN_DEPOT, WHOLESALER, 5 * 60, &["20:00"], &["pharma"], 26_000),
            mode: PutMode::Upsert,
        },
    );
    add(
        &pharmapol,
        format!("device {PHARMA_LOGGER}"),
        Mutation::PutDevice {
            device: device(PHARMA_LOGGER, DeviceKind::DataLogger, "Pallet logger PL-1", None, 120),
            mode: PutMode::Upsert,
        },
    );
    add(
        &pharmapol,
        "vaccine".into(),
        Mutation::PutProduct {
            product: product(ProductSpec {
                gtin: "590123401000",
                name: "Influenza vaccine, 10 × 0.5 ml prefilled syringes",
                brand: "PharmaPol",
                class: TemperatureClass::Pharma,
                shelf_life_days: 365,
                nutrition: None,
                country: "PL",
                supplier: Some("pharmapol-plant"),
            }),
            mode: PutMode::Upsert,
        },
    );
    all
}

/// The data logger that rides with the salmon lot's pallet from the farm (a Nordfjord device).
pub const SALMON_LOGGER: &str = "nordfjord-logger-1";

/// When the salmon lot was harvested and packed (its journey's first step).
pub const SALMON_PACKED_AT: &str = "2026-11-23T05:00:00Z";

/// The data logger that rides with the demo's vaccine pallet (a PharmaPol device).
pub const PHARMA_LOGGER: &str = "pharmapol-logger-1";

/// The influenza vaccine's GTIN.
pub fn vaccine_gtin() -> Gtin {
    gtin("590123401000")
}

/// The Poznań pharma depot, where the demo's vaccine pallet is received.
pub fn poznan_depot() -> Gln {
    gln(POZNAN_DEPOT)
}

/// The demo tenant that owns the vaccine.
pub fn pharma_tenant() -> TenantId {
    tenant("pharmapol")
}

/// The salmon fillets' GTIN.
pub fn salmon_gtin() -> Gtin {
    gtin("709876501000")
}

/// The Amsterdam DC, where the demo's salmon is received and ordered from.
pub fn amsterdam_dc() -> Gln {
    gln(AMSTERDAM_DC)
}

/// The pickup point the demo's consumers order to.
pub fn pickup_centraal() -> Gln {
    gln(PICKUP_CENTRAAL)
}

/// The lot of salmon fillets whose journey the demo records.
pub const SALMON_LOT: &str = "LOT-2026-11";

/// The demo tenant that captures the salmon's journey.
pub fn salmon_tenant() -> TenantId {
    tenant("nordfjord")
}

/// The salmon lot's journey as an EPCIS 2.0 document: harvested and packed at the farm, shipped
/// to the Oslo cold depot, by reefer (with its temperature) to the Amsterdam DC, and to a pickup
/// point. Fixed times, so capturing it again stores nothing new (capture is idempotent by the
/// CBV 2.0 event hash).
pub fn salmon_journey_document() -> String {
    let lot = format!("https://id.gs1.org/01/{}/10/{SALMON_LOT}", salmon_gtin());
    let place = |body: &str| format!("https://id.gs1.org/414/{}", with_check_digit(body));
    let quantity = format!(r#"[{{"epcClass":"{lot}","quantity":480,"uom":"KGM"}}]"#);
    let event = |time: &str, action: &str, step: &str, disposition: &str, at: &str, extra: &str| {
        format!(
            r#"{{"type":"ObjectEvent","eventTime":"{time}","eventTimeZoneOffset":"+01:00","action":"{action}","bizStep":"{step}","disposition":"{disposition}","epcList":[],"quantityList":{quantity},"readPoint":{{"id":"{}"}},"bizLocation":{{"id":"{}"}}{extra}}}"#,
            place(at),
            place(at)
        )
    };
    let reefer = r#","sensorElementList":[{"sensorMetadata":{"startTime":"2026-11-24T01:00:00Z","endTime":"2026-11-25T05:00:00Z"},"sensorReport":[{"type":"Temperature","minValue":0.4,"maxValue":1.9,"meanValue":1.1,"uom":"CEL"}]}]"#;
    let events = [
        event(SALMON_PACKED_AT, "ADD", "commissioning", "active", SALMON_FARM, ""),
        event("2026-11-23T07:00:00Z", "OBSERVE", "shipping", "in_transit", SALMON_FARM, ""),
        event("2026-11-23T17:00:00Z", "OBSERVE", "receiving", "in_progress", OSLO_DEPOT, ""),
        event("2026-11-24T01:00:00Z", "OBSERVE", "shipping", "in_transit", OSLO_DEPOT, reefer),
        event("2026-11-25T05:00:00Z", "OBSERVE", "receiving", "in_progress", AMSTERDAM_DC, ""),
        event("2026-11-25T13:00:00Z", "OBSERVE", "stocking", "sellable_accessible", PICKUP_CENTRAAL, ""),
    ];
    format!(
        r#"{{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],"type":"EPCISDocument","schemaVersion":"2.0","creationDate":"2026-11-25T13:00:00Z","epcisBody":{{"eventList":[{}]}}}}"#,
        events.join(",")
    )
}

/// Loads the demo network (idempotently) and mints fresh keys.
pub async fn load(store: &Store) -> Result<Demo, DemoError> {
    let mut counts = DemoCounts::default();
    for (tenant_id, what, mutation) in mutations() {
        match &mutation {
            Mutation::PutTenant { .. } if !tenant_id.is_network() => counts.tenants += 1,
            Mutation::PutParty { .. } => counts.parties += 1,
            Mutation::PutProduct { .. } => counts.products += 1,
            Mutation::PutLocation { .. } => counts.locations += 1,
            Mutation::PutLane { .. } => counts.lanes += 1,
            Mutation::PutDevice { .. } => counts.devices += 1,
            _ => {}
        }
        store
            .write(Write { tenant_id, mutation, idempotency: None })
            .await
            .map_err(|error| DemoError::Write { what, error })?;
    }
    let operator_key = mint(store, &TenantId::network(), Scope::Operator, "demo operator key").await?;
    let mut tenant_keys = Vec::new();
    for (id, name) in TENANTS {
        let tenant_id = tenant(id);
        let key = mint(store, &tenant_id, Scope::TenantAdmin, "demo key").await?;
        tenant_keys.push((tenant_id, name.to_owned(), key));
    }
    Ok(Demo { operator_key, tenant_keys, salmon_gtin: salmon_gtin(), counts })
}

/// Creates a key and answers its text (shown once).
pub async fn mint(store: &Store, tenant_id: &TenantId, scope: Scope, name: &str) -> Result<String, DemoError> {
    Ok(mint_with_id(store, tenant_id, scope, name).await?.1)
}

/// Creates a key and answers its id and its text (shown once).
pub async fn mint_with_id(
    store: &Store,
    tenant_id: &TenantId,
    scope: Scope,
    name: &str,
) -> Result<(String, String), DemoError> {
    let secret = ApiKeySecret::generate(tenant_id);
    let mutation = Mutation::CreateKey {
        key_id: secret.key_id.clone(),
        name: name.to_owned(),
        scopes: vec![scope],
        secret_sha256: secret.secret_sha256,
    };
    store
        .write(Write { tenant_id: tenant_id.clone(), mutation, idempotency: None })
        .await
        .map_err(|error| DemoError::Write { what: format!("key for {tenant_id}"), error })?;
    Ok((secret.key_id.clone(), secret.reveal().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{LocationFilter, PageRequest, ProductFilter, StoreConfig};

    #[tokio::test]
    async fn loading_twice_neither_fails_nor_duplicates() {
        let file = scratchdb::SqliteFile::new().unwrap();
        let store = Store::open(StoreConfig::new(file.url())).await.unwrap();
        let first = load(&store).await.unwrap();
        let rows_after_first = store.storage_rows(&tenant("nordfjord")).await.unwrap();
        let second = load(&store).await.unwrap();
        assert_eq!(first.counts, second.counts);
        assert_eq!(store.storage_rows(&tenant("nordfjord")).await.unwrap(), rows_after_first);
        assert_ne!(first.operator_key, second.operator_key);
        // Both generations of keys work.
        assert!(store.authenticate(&first.operator_key).await.unwrap().unwrap().is_operator());
        assert!(store.authenticate(&second.operator_key).await.unwrap().unwrap().is_operator());
        let nordfjord = store.tenant(&tenant("nordfjord"));
        let products = nordfjord.products(&ProductFilter::default(), &PageRequest::default()).await.unwrap();
        assert_eq!(products.items.len(), 2);
        let locations = nordfjord.locations(&LocationFilter::default(), &PageRequest::default()).await.unwrap();
        assert_eq!(locations.items.len(), 7, "the farm and the six network sites");
        let (_, salmon, farm) = store.public_product(&second.salmon_gtin).await.unwrap().unwrap();
        assert_eq!(salmon.temperature_class, TemperatureClass::Chilled);
        assert_eq!(farm.unwrap().public_person_name(), Some("Ingrid Solberg"));
        store.close().await;
    }

    #[test]
    fn the_salmon_journey_is_a_valid_epcis_document() {
        let document = epcis::parse_json_document(&salmon_journey_document()).expect("valid EPCIS 2.0");
        assert_eq!(document.events.len(), 6);
        let hashes: std::collections::BTreeSet<String> = document.event_hash_ids().into_iter().collect();
        assert_eq!(hashes.len(), 6, "six distinct events");
        let lot = format!("https://id.gs1.org/01/{}/10/{SALMON_LOT}", salmon_gtin());
        assert!(document.events.iter().all(|event| event.quantity_list[0].epc_class.as_str() == lot));
    }
}
