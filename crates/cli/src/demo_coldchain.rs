//! The demo's cold-chain excursion: a pallet of PharmaPol's influenza vaccine travels to the
//! Poznań pharma depot in a reefer van with a data logger on the pallet (assigned to its SSCC).
//! The reefer's compressor fails for 50 minutes on the way (11 °C against a 2–8 °C label). At
//! the depot the pallet is received and the logger read out: its readings go through the same
//! ingest as `POST /v1/readings`, so the alarm opens, escalates (nobody acknowledged it within 15
//! minutes), puts the lot on hold and is captured as an EPCIS event with its sensor report. The
//! logger stays on the pallet in the depot's pharma room, its readings up to the demo's start.
//! Idempotent: a second run finds the ASN and does nothing.

use anyhow::Context;
use stock::LotStatus;
use store::fulfilment::{AsnPallet, FulfilmentMutation};
use store::readings::AssignmentTarget;
use store::{Mutation, Store, Write};

const ASN_ID: &str = "asn_demo_vaccine";
/// The vaccine lot whose pallet meets the excursion.
pub const VACCINE_LOT: &str = "VAX-2611";
/// Readings every two minutes over the eight hours of the trip.
const TRIP_MINUTES: i64 = 8 * 60;
const INTERVAL_MINUTES: i64 = 2;
/// The compressor fails from 3 h into the trip for 50 minutes.
const FAILURE_MINUTES: std::ops::Range<i64> = 180..230;

/// The vaccine pallet's SSCC.
pub fn pallet() -> anyhow::Result<gs1::Sscc> {
    let body = "35901234000000100";
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    Ok(gs1::Sscc::parse(&format!("{body}{}", gs1::check_digit(&digits)))?)
}

async fn write(store: &Store, mutation: Mutation) -> anyhow::Result<()> {
    store
        .write(Write { tenant_id: demo::pharma_tenant(), mutation, idempotency: None })
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}

/// The logger's readings from the departure to `until` as a SenML pack: 5 °C give or take,
/// 11 °C while the compressor is down.
fn logger_readings(departure: jiff::Timestamp, until: jiff::Timestamp) -> String {
    let minutes = until.duration_since(departure).as_secs() / 60;
    let records: Vec<serde_json::Value> = (0..=minutes / INTERVAL_MINUTES)
        .map(|index| {
            let minute = index * INTERVAL_MINUTES;
            let celsius = if FAILURE_MINUTES.contains(&minute) {
                10.8 + (minute % 7) as f64 * 0.1
            } else {
                4.6 + (minute % 11) as f64 * 0.08
            };
            if index == 0 {
                serde_json::json!({"bn": demo::PHARMA_LOGGER, "bt": departure.as_second(), "bu": "Cel", "t": 0, "v": celsius})
            } else {
                serde_json::json!({"t": minute * 60, "v": celsius})
            }
        })
        .collect();
    serde_json::Value::Array(records).to_string()
}

/// The salmon pallet's logger readings from packing at the farm to `until`, every 15 minutes:
/// about 1 °C, a little warmer on the roads, never above the fish limit of 2 °C.
fn salmon_readings(packed: jiff::Timestamp, until: jiff::Timestamp) -> String {
    const INTERVAL_SECONDS: i64 = 15 * 60;
    let count = (until.as_second() - packed.as_second()) / INTERVAL_SECONDS;
    let records: Vec<serde_json::Value> = (0..=count)
        .map(|index| {
            let hour = index * INTERVAL_SECONDS / 3600;
            // On the road: 2–12 h (farm to Oslo) and 20–48 h (the reefer to Amsterdam).
            let road = (2..12).contains(&hour) || (20..48).contains(&hour);
            let celsius = if road { 1.1 + (index % 9) as f64 * 0.08 } else { 0.6 + (index % 7) as f64 * 0.06 };
            if index == 0 {
                serde_json::json!({"bn": demo::SALMON_LOGGER, "bt": packed.as_second(), "bu": "Cel", "t": 0, "v": celsius})
            } else {
                serde_json::json!({"t": index * INTERVAL_SECONDS, "v": celsius})
            }
        })
        .collect();
    serde_json::Value::Array(records).to_string()
}

/// Puts a logger on the salmon lot's pallet from the farm and reads it out (the first run on a
/// database): the lot's provenance page draws its temperatures.
pub async fn load_salmon(store: &Store, pallet: gs1::Sscc) -> anyhow::Result<()> {
    let tenant = demo::salmon_tenant();
    if !store.tenant(&tenant).device_assignments(demo::SALMON_LOGGER).await?.is_empty() {
        return Ok(());
    }
    let packed: jiff::Timestamp = demo::SALMON_PACKED_AT.parse()?;
    let assign = Mutation::AssignDevice {
        device_id: network::DeviceId::parse(demo::SALMON_LOGGER)?,
        from_unix_ms: packed.as_millisecond(),
        target: AssignmentTarget::Sscc(pallet),
        class: Some("fish".to_owned()),
        events: None,
    };
    store
        .write(Write { tenant_id: tenant.clone(), mutation: assign, idempotency: None })
        .await
        .map_err(|error| anyhow::anyhow!("the logger on the salmon pallet: {error}"))?;
    let now = jiff::Timestamp::now();
    let body = salmon_readings(packed, now);
    let ingested = server::readings::ingest(store, &tenant, "application/senml+json", body.as_bytes(), now, None)
        .await
        .map_err(|problem| anyhow::anyhow!("the salmon logger's readings: {}", problem.detail))?;
    anyhow::ensure!(
        ingested.rejected.is_empty(),
        "the salmon logger's readings were rejected: {:?}",
        ingested.rejected
    );
    Ok(())
}

/// Runs the trip once (the first run on a database).
pub async fn load(store: &Store) -> anyhow::Result<()> {
    let tenant = demo::pharma_tenant();
    if store.tenant(&tenant).asn(ASN_ID).await?.is_some() {
        return Ok(());
    }
    let now = jiff::Timestamp::now();
    // Whole minutes, so the readings fall on the minute.
    let arrival = jiff::Timestamp::from_second(now.as_second() / 60 * 60 - 10 * 60)?;
    let departure = arrival - jiff::SignedDuration::from_mins(TRIP_MINUTES);
    let sscc = pallet()?;
    let expiry = (jiff::Zoned::now().date() + jiff::ToSpan::days(300)).to_string();
    let create = FulfilmentMutation::CreateAsn {
        asn_id: ASN_ID.to_owned(),
        location: demo::poznan_depot(),
        expected_unix_ms: Some(arrival.as_millisecond()),
        pallets: vec![AsnPallet {
            sscc: sscc.clone(),
            gtin: demo::vaccine_gtin(),
            lot: VACCINE_LOT.to_owned(),
            expiry: Some(expiry),
            quantity: 400,
        }],
    };
    write(store, Mutation::Fulfilment(create)).await.context("the vaccine ASN")?;
    let assign = Mutation::AssignDevice {
        device_id: network::DeviceId::parse(demo::PHARMA_LOGGER)?,
        from_unix_ms: departure.as_millisecond(),
        target: AssignmentTarget::Sscc(sscc),
        class: Some("pharma".to_owned()),
        events: None,
    };
    write(store, assign).await.context("the logger on the vaccine pallet")?;
    let asn = store.tenant(&tenant).asn(ASN_ID).await?.context("the vaccine ASN")?;
    let zone = network::ZoneName::parse("pharma-1")?;
    let receipt = server::fulfilment::receipt_capture(store, &tenant, &asn, zone.as_str(), None, now)
        .await
        .map_err(|problem| anyhow::anyhow!("{}", problem.detail))?;
    let receive = FulfilmentMutation::ReceiveAsn {
        asn_id: ASN_ID.to_owned(),
        receipt_id: "rcp_demo_vaccine".to_owned(),
        zone,
        ssccs: None,
        status: LotStatus::Available,
        recalled: Some(receipt.recalled),
    };
    write(store, Mutation::fulfilment_step(receive, receipt.events)).await.context("receiving the vaccine pallet")?;
    let body = logger_readings(departure, now);
    let ingested = server::readings::ingest(store, &tenant, "application/senml+json", body.as_bytes(), now, None)
        .await
        .map_err(|problem| anyhow::anyhow!("the logger's readings: {}", problem.detail))?;
    anyhow::ensure!(ingested.rejected.is_empty(), "the logger's readings were rejected: {:?}", ingested.rejected);
    Ok(())
}
