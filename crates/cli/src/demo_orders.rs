//! The demo's stock, orders and fleet: a pallet of the salmon lot received at the Amsterdam DC,
//! one consumer order carried through to the pickup point and handed over, one order open, four
//! home deliveries packed and waiting for the courier; a reefer van (its courier's key is
//! printed) and a cargo bike at the DC. Each step records its EPCIS events as the API does.
//! Idempotent: a second run finds the ASN and stores no order again; the van's courier gets a
//! fresh key.

use anyhow::Context;
use orders::{Line, OrderStatus};
use stock::LotStatus;
use store::fulfilment::{AsnPallet, FulfilmentMutation, OrderDestination, PlaceOrder};
use store::{Mutation, Store, Write};

const ASN_ID: &str = "asn_demo_salmon";
/// The delivered demo order and the open one.
pub const DELIVERED_ORDER: &str = "ord_demo_delivered";
pub const OPEN_ORDER: &str = "ord_demo_open";
/// Home deliveries packed at the Amsterdam DC, waiting for a dispatch wave: (order, units,
/// latitude, longitude, area).
pub const ROUTE_ORDERS: [(&str, i64, f64, f64, &str); 4] = [
    ("ord_demo_home_1", 2, 52.3702, 4.8952, "Amsterdam-Centrum"),
    ("ord_demo_home_2", 1, 52.3584, 4.8811, "Amsterdam-Zuid"),
    ("ord_demo_home_3", 3, 52.3780, 4.9350, "Amsterdam-Oost"),
    ("ord_demo_home_4", 2, 52.3867, 4.8730, "Amsterdam-West"),
];
/// The demo's reefer van (its courier's key is printed) and cargo bike at the Amsterdam DC.
pub const VAN: &str = "van-ams-1";
pub const BIKE: &str = "bike-ams-1";

/// The pallet of the salmon lot received at the Amsterdam DC.
pub fn salmon_pallet() -> anyhow::Result<gs1::Sscc> {
    sscc(1)
}

fn sscc(serial: u64) -> anyhow::Result<gs1::Sscc> {
    let body = format!("3{:016}", 8_712_345_000_000_000 + serial);
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    Ok(gs1::Sscc::parse(&format!("{body}{}", gs1::check_digit(&digits)))?)
}

async fn write(store: &Store, mutation: Mutation) -> anyhow::Result<store::WriteOutcome> {
    store
        .write(Write { tenant_id: demo::salmon_tenant(), mutation, idempotency: None })
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))
}

/// Writes a step of an order with its EPCIS events, as `POST /v1/orders/{id}/events` does.
async fn order_step(store: &Store, order_id: &str, to: OrderStatus, ssccs: Vec<gs1::Sscc>) -> anyhow::Result<()> {
    let tenant = demo::salmon_tenant();
    let order = store.tenant(&tenant).order(order_id).await?.context("the demo order")?;
    let zones = server::steps::SiteZones::of_order(store, &order)
        .await
        .map_err(|problem| anyhow::anyhow!("{}", problem.detail))?;
    let mutation = server::fulfilment::order_step_write(
        &tenant,
        &order,
        to,
        ssccs,
        (None, None),
        &std::collections::BTreeSet::new(),
        (jiff::Timestamp::now(), false),
        None,
        None,
        &zones,
    )
    .map_err(|problem| anyhow::anyhow!("{}", problem.detail))?;
    write(store, mutation).await.with_context(|| format!("moving the demo order to {}", to.name()))?;
    Ok(())
}

/// Loads the stock, the orders (first run only) and the fleet; answers the van courier's key.
pub async fn load(store: &Store) -> anyhow::Result<String> {
    let tenant = demo::salmon_tenant();
    if store.tenant(&tenant).asn(ASN_ID).await?.is_none() {
        load_stock_and_orders(store).await?;
    }
    load_fleet(store).await
}

fn vehicle(
    id: &str,
    courier: Option<(&str, String)>,
    capacity_units: u32,
    skills: &[network::Skill],
    shift: (&str, &str),
    speed_km_per_h: f64,
) -> anyhow::Result<network::Vehicle> {
    let (courier_name, courier_key_id) = courier.map_or((None, None), |(name, key)| (Some(name.to_owned()), Some(key)));
    let vehicle = network::Vehicle {
        vehicle_id: network::VehicleId::parse(id)?,
        depot: demo::amsterdam_dc(),
        name: id.to_owned(),
        courier_name,
        courier_key_id,
        capacity_units,
        skills: skills.to_vec(),
        shift_start: network::LocalTime::parse(shift.0)?,
        shift_end: network::LocalTime::parse(shift.1)?,
        speed_km_per_h,
        fixed_cost_cents: 2_500,
        cost_per_km_cents: 35,
        cost_per_hour_cents: 2_800,
    };
    vehicle.check()?;
    Ok(vehicle)
}

/// The Amsterdam DC's reefer van (driven with a fresh courier key each run) and cargo bike.
async fn load_fleet(store: &Store) -> anyhow::Result<String> {
    let network = network::TenantId::network();
    let (key_id, key) = demo::mint_with_id(store, &network, store::Scope::Courier, "demo courier of van-ams-1").await?;
    let van = vehicle(VAN, Some(("Sanne de Vries", key_id)), 60, &[network::Skill::Reefer], ("06:00", "23:00"), 30.0)?;
    let bike = vehicle(BIKE, None, 12, &[], ("07:00", "20:00"), 18.0)?;
    for vehicle in [van, bike] {
        let id = vehicle.vehicle_id.clone();
        let mutation =
            Mutation::Dispatch(store::dispatch::DispatchMutation::PutVehicle { vehicle, mode: store::PutMode::Upsert });
        store
            .write(Write { tenant_id: network.clone(), mutation, idempotency: None })
            .await
            .map_err(|error| anyhow::anyhow!("vehicle {id}: {error}"))?;
    }
    Ok(key)
}

async fn load_stock_and_orders(store: &Store) -> anyhow::Result<()> {
    let tenant = demo::salmon_tenant();
    let expiry = (jiff::Zoned::now().date() + jiff::ToSpan::days(10)).to_string();
    let pallet = AsnPallet {
        sscc: salmon_pallet()?,
        gtin: demo::salmon_gtin(),
        lot: demo::SALMON_LOT.to_owned(),
        expiry: Some(expiry),
        quantity: 120,
    };
    let create = FulfilmentMutation::CreateAsn {
        asn_id: ASN_ID.to_owned(),
        location: demo::amsterdam_dc(),
        expected_unix_ms: None,
        pallets: vec![pallet],
    };
    write(store, Mutation::Fulfilment(create)).await.context("the demo ASN")?;
    let asn = store.tenant(&tenant).asn(ASN_ID).await?.context("the demo ASN")?;
    let zone = network::ZoneName::parse("chill-1")?;
    let receipt =
        server::fulfilment::receipt_capture(store, &tenant, &asn, zone.as_str(), None, jiff::Timestamp::now())
            .await
            .map_err(|problem| anyhow::anyhow!("{}", problem.detail))?;
    let change = FulfilmentMutation::ReceiveAsn {
        asn_id: ASN_ID.to_owned(),
        receipt_id: "rcp_demo_salmon".to_owned(),
        zone,
        ssccs: None,
        status: LotStatus::Available,
        recalled: Some(receipt.recalled),
    };
    let mutation = Mutation::fulfilment_step(change, receipt.events);
    write(store, mutation).await.context("receiving the demo pallet")?;
    for (order_id, units) in [(DELIVERED_ORDER, 2), (OPEN_ORDER, 1)] {
        let order = PlaceOrder {
            order_id: order_id.to_owned(),
            lines: vec![Line { gtin: demo::salmon_gtin(), quantity: units }],
            destination: OrderDestination {
                pickup_point: Some(demo::pickup_centraal().to_string()),
                latitude_degrees: None,
                longitude_degrees: None,
                time_zone: None,
                area: None,
            },
            service: network::Service::Standard,
            latest_delivery_unix_ms: None,
            hold_ms: None,
        };
        write(store, Mutation::Fulfilment(FulfilmentMutation::PlaceOrder(Box::new(order))))
            .await
            .with_context(|| format!("placing {order_id}"))?;
    }
    order_step(store, DELIVERED_ORDER, OrderStatus::Picking, Vec::new()).await?;
    order_step(store, DELIVERED_ORDER, OrderStatus::Packed, vec![sscc(2)?]).await?;
    for to in [OrderStatus::Shipped, OrderStatus::AtPickupPoint, OrderStatus::Delivered] {
        order_step(store, DELIVERED_ORDER, to, Vec::new()).await?;
    }
    for (serial, (order_id, units, latitude, longitude, area)) in (3..).zip(ROUTE_ORDERS) {
        let order = PlaceOrder {
            order_id: order_id.to_owned(),
            lines: vec![Line { gtin: demo::salmon_gtin(), quantity: units }],
            destination: OrderDestination {
                pickup_point: None,
                latitude_degrees: Some(latitude),
                longitude_degrees: Some(longitude),
                time_zone: Some("Europe/Amsterdam".to_owned()),
                area: Some(area.to_owned()),
            },
            service: network::Service::NextDay,
            latest_delivery_unix_ms: None,
            hold_ms: None,
        };
        write(store, Mutation::Fulfilment(FulfilmentMutation::PlaceOrder(Box::new(order))))
            .await
            .with_context(|| format!("placing {order_id}"))?;
        order_step(store, order_id, OrderStatus::Picking, Vec::new()).await?;
        order_step(store, order_id, OrderStatus::Packed, vec![sscc(serial)?]).await?;
    }
    Ok(())
}
