//! The demo's stock and orders: a pallet of the salmon lot received at the Amsterdam DC, one
//! consumer order carried through to the pickup point and handed over, one order open. Each
//! step records its EPCIS events as the API does. Idempotent: a second run finds the ASN and
//! stores nothing new.

use anyhow::Context;
use orders::{Line, OrderStatus};
use stock::LotStatus;
use store::fulfilment::{AsnPallet, FulfilmentMutation, OrderDestination, PlaceOrder};
use store::{Mutation, Store, Write};

const ASN_ID: &str = "asn_demo_salmon";
/// The delivered demo order and the open one.
pub const DELIVERED_ORDER: &str = "ord_demo_delivered";
pub const OPEN_ORDER: &str = "ord_demo_open";

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
    let mutation = server::fulfilment::order_step_write(&tenant, &order, to, ssccs, None, jiff::Timestamp::now(), None)
        .map_err(|problem| anyhow::anyhow!("{}", problem.detail))?;
    write(store, mutation).await.with_context(|| format!("moving the demo order to {}", to.name()))?;
    Ok(())
}

pub async fn load(store: &Store) -> anyhow::Result<()> {
    let tenant = demo::salmon_tenant();
    if store.tenant(&tenant).asn(ASN_ID).await?.is_some() {
        return Ok(());
    }
    let expiry = (jiff::Zoned::now().date() + jiff::ToSpan::days(10)).to_string();
    let pallet = AsnPallet {
        sscc: sscc(1)?,
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
    let events = server::steps::receiving(&tenant, &asn, zone.as_str(), None, jiff::Timestamp::now())
        .map_err(|problem| anyhow::anyhow!("{}", problem.detail))?;
    let change = FulfilmentMutation::ReceiveAsn {
        asn_id: ASN_ID.to_owned(),
        receipt_id: "rcp_demo_salmon".to_owned(),
        zone,
        ssccs: None,
        status: LotStatus::Available,
    };
    let mutation = Mutation::fulfilment_step(change, events);
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
    Ok(())
}
