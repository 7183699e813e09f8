//! The EPCIS events of the platform's own physical steps: a receipt (`receiving`, after
//! `commissioning` for a lot no event in the network has named before), a pick
//! (`picking`), a pallet built (`packing`, an aggregation into the SSCC), a shipment (`shipping`),
//! leaving the depot (`departing`), arriving at a pickup point (`arriving`) and handing over
//! (`retail_selling`). Each is captured in the same transaction as the step itself
//! (`Mutation::FulfilmentRecorded`), so the trace covers orders without anyone typing them twice.
//!
//! Identifiers are GS1 Digital Links: lots `…/01/{gtin}/10/{lot}`, pallets `…/00/{sscc}`,
//! places `…/414/{gln}` (with `/254/{zone}` for a zone). No personal data: a delivery is
//! recorded at the pickup point or at the delivering site, never at an address.

use std::collections::{BTreeSet, HashMap};

use epcis::Document;
use gs1::{DigitalLink, Element};
use network::TenantId;
use orders::OrderStatus;
use store::epcis::{Capture, Premise};
use store::fulfilment::{AsnPalletRecord, AsnRecord, OrderRecord};

use crate::problem::Problem;

fn link(elements: &[(&str, &str)]) -> Result<String, Problem> {
    let mut parts = elements
        .iter()
        .map(|(code, value)| Element::new(code, value))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| Problem::internal(format!("a step's identifier: {error}")))?;
    let primary = parts.remove(0);
    DigitalLink::new(primary, parts, Vec::new())
        .map(|link| link.canonical_uri())
        .map_err(|error| Problem::internal(format!("a step's identifier: {error}")))
}

/// The Digital Link of a lot (`…/01/{gtin}/10/{lot}`), as the steps' events name it.
pub fn lot_class(gtin: &str, lot: &str) -> Result<String, Problem> {
    link(&[("01", gtin), ("10", lot)])
}

fn place(gln: &str, zone: Option<&str>) -> Result<String, Problem> {
    match zone {
        Some(zone) => link(&[("414", gln), ("254", zone)]),
        None => link(&[("414", gln)]),
    }
}

/// The Digital Link of a pallet (`…/00/{sscc}`).
pub fn pallet_link(sscc: &str) -> Result<String, Problem> {
    link(&[("00", sscc)])
}

fn quantity(class: &str, units: i64) -> serde_json::Value {
    serde_json::json!({"epcClass": class, "quantity": units})
}

/// The time zones of the sites a step's events happen at (by GLN), for each event's
/// `eventTimeZoneOffset`: the offset in effect at the place and time of the event (EPCIS 2.0,
/// eventTimeZoneOffset). A site not found (deleted since) or with a zone this build does not know
/// records UTC's offset.
#[derive(Debug, Default, Clone)]
pub struct SiteZones(HashMap<String, jiff::tz::TimeZone>);

impl SiteZones {
    /// The zones of `glns`, read from the network's and the tenants' locations.
    pub async fn read(store: &store::Store, glns: &[&str]) -> Result<SiteZones, Problem> {
        let mut unique: Vec<&str> = glns.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let zones = store.site_time_zones(&unique).await?;
        Ok(SiteZones(
            zones
                .into_iter()
                .filter_map(|(gln, name)| jiff::tz::TimeZone::get(&name).ok().map(|zone| (gln, zone)))
                .collect(),
        ))
    }

    /// The zones of every site an order's steps happen at: where its shipments leave from, the
    /// sites delivering their last mile, its pickup point.
    pub async fn of_order(store: &store::Store, order: &OrderRecord) -> Result<SiteZones, Problem> {
        let mut glns: Vec<&str> = order
            .allocation
            .shipments
            .iter()
            .flat_map(|shipment| [shipment.site.as_str(), shipment.delivering_site.as_str()])
            .collect();
        glns.extend(order.destination.pickup_point.as_deref());
        SiteZones::read(store, &glns).await
    }

    /// The zone of a sensor's target: its site's for a zone (`GLN/zone`), none for a pallet or
    /// a vehicle.
    pub async fn of_target(store: &store::Store, target_kind: &str, target: &str) -> Result<SiteZones, Problem> {
        match (target_kind, target.split_once('/')) {
            ("zone", Some((gln, _))) => SiteZones::read(store, &[gln]).await,
            _ => Ok(SiteZones::default()),
        }
    }

    /// The offset at `gln` at `at`, as EPCIS writes it (`+01:00`).
    fn offset(&self, gln: &str, at: jiff::Timestamp) -> String {
        let seconds = self.0.get(gln).map_or(0, |zone| zone.to_offset(at).seconds());
        let sign = if seconds < 0 { '-' } else { '+' };
        let minutes = seconds.unsigned_abs() / 60;
        format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

struct Step<'a> {
    /// The GLN of the site the step happens at (its time zone gives the event's offset).
    site: &'a str,
    event_type: &'a str,
    action: &'a str,
    business_step: &'a str,
    disposition: &'a str,
    place: String,
    epcs: Vec<String>,
    quantities: Vec<serde_json::Value>,
    parent: Option<String>,
}

fn event(step: Step<'_>, at: jiff::Timestamp, zones: &SiteZones) -> serde_json::Value {
    let mut event = serde_json::json!({
        "type": step.event_type,
        "eventTime": at.to_string(),
        "eventTimeZoneOffset": zones.offset(step.site, at),
        "action": step.action,
        "bizStep": step.business_step,
        "readPoint": {"id": step.place},
        "bizLocation": {"id": step.place},
    });
    // No disposition where the step cannot know it (an empty one is left out).
    if !step.disposition.is_empty() {
        event["disposition"] = serde_json::json!(step.disposition);
    }
    let (epc_field, quantity_field) = if step.event_type == "AggregationEvent" {
        ("childEPCs", "childQuantityList")
    } else {
        ("epcList", "quantityList")
    };
    event[epc_field] = serde_json::json!(step.epcs);
    if !step.quantities.is_empty() {
        event[quantity_field] = serde_json::json!(step.quantities);
    }
    if let Some(parent) = step.parent {
        event["parentID"] = serde_json::json!(parent);
    }
    event
}

/// A document of the events, as a capture job of `tenant` (validated like any capture).
fn capture(tenant: &TenantId, events: Vec<serde_json::Value>, at: jiff::Timestamp) -> Result<Option<Capture>, Problem> {
    if events.is_empty() {
        return Ok(None);
    }
    let text = serde_json::json!({
        "@context": [epcis::STANDARD_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": at.to_string(),
        "epcisBody": {"eventList": events},
    })
    .to_string();
    let document: Document = epcis::parse_json_document(&text)
        .map_err(|errors| Problem::internal(format!("a step's EPCIS events do not validate: {errors:?}")))?;
    let capture = crate::epcis::capture_of(
        tenant,
        &document,
        &BTreeSet::new(),
        Vec::new(),
        crate::epcis::ErrorBehaviour::Rollback,
        Vec::new(),
    );
    Ok(Some(capture))
}

/// The pallets of an ASN a receipt takes: the listed ones, or all not yet received.
pub fn received_pallets<'a>(asn: &'a AsnRecord, ssccs: Option<&[String]>) -> Vec<&'a AsnPalletRecord> {
    asn.pallets
        .iter()
        .filter(|pallet| match ssccs {
            Some(list) => list.contains(&pallet.sscc),
            None => pallet.received_unix_ms.is_none(),
        })
        .collect()
}

/// The receipt of an ASN's pallets (all not yet received, or the listed ones) into a zone, after
/// the commissioning of `new_lots` (lot classes, as [`lot_class`] names them, that no event had
/// named when the handler read): one `ADD` per lot, of the units received of it, where the lot
/// enters the network. Each commissioning is a premise the writer decides again
/// ([`Premise::FirstOfClass`]): of two receipts of one new lot at the same moment, one commissions it.
pub fn receiving(
    tenant: &TenantId,
    asn: &AsnRecord,
    zone: &str,
    ssccs: Option<&[String]>,
    (new_lots, recalled_lots): (&BTreeSet<String>, &BTreeSet<String>),
    at: jiff::Timestamp,
    zones: &SiteZones,
) -> Result<Option<Capture>, Problem> {
    let pallets = received_pallets(asn, ssccs);
    if pallets.is_empty() {
        return Ok(None);
    }
    let mut commissioned: Vec<(String, i64)> = Vec::new();
    for pallet in &pallets {
        let class = lot_class(&pallet.gtin, &pallet.lot)?;
        if !new_lots.contains(&class) {
            continue;
        }
        match commissioned.iter_mut().find(|(seen, _)| *seen == class) {
            Some((_, units)) => *units += pallet.quantity,
            None => commissioned.push((class, pallet.quantity)),
        }
    }
    let mut events = Vec::new();
    let mut premises = Vec::new();
    for (class, units) in commissioned {
        let step = Step {
            event_type: "ObjectEvent",
            action: "ADD",
            business_step: "commissioning",
            disposition: "active",
            site: &asn.location,
            place: place(&asn.location, Some(zone))?,
            epcs: Vec::new(),
            quantities: vec![quantity(&class, units)],
            parent: None,
        };
        premises.push(Premise::FirstOfClass { identifier: class, event: events.len() });
        events.push(event(step, at, zones));
    }
    // The pallets of recalled lots come in as such (their units take `recalled`): an event of
    // their own says so.
    for (disposition, recalled) in [("in_progress", false), ("recalled", true)] {
        let mut epcs = Vec::new();
        let mut quantities = Vec::new();
        for pallet in &pallets {
            let class = lot_class(&pallet.gtin, &pallet.lot)?;
            if recalled_lots.contains(&class) == recalled {
                epcs.push(pallet_link(&pallet.sscc)?);
                quantities.push(quantity(&class, pallet.quantity));
            }
        }
        if epcs.is_empty() {
            continue;
        }
        let step = Step {
            event_type: "ObjectEvent",
            action: "OBSERVE",
            business_step: "receiving",
            disposition,
            site: &asn.location,
            place: place(&asn.location, Some(zone))?,
            epcs,
            quantities,
            parent: None,
        };
        events.push(event(step, at, zones));
    }
    Ok(capture(tenant, events, at)?.map(|capture| Capture { premises, ..capture }))
}

/// The events of a transfer of `units` of a lot to another site: shipped from the source zone and
/// received into the target zone at the same moment, each naming the other site (a move between
/// zones of one site records nothing: the lot stays at its site). The trace and the consumer's
/// page follow the lot to the new site.
#[allow(clippy::too_many_arguments)]
pub fn transfer(
    tenant: &TenantId,
    gtin: &str,
    lot: &str,
    from: (&str, &str),
    to: (&str, &str),
    (units, recalled): (i64, bool),
    at: jiff::Timestamp,
    zones: &SiteZones,
) -> Result<Option<Capture>, Problem> {
    if from.0 == to.0 {
        return Ok(None);
    }
    let class = lot_class(gtin, lot)?;
    let moved = |business_step, disposition, (gln, zone): (&str, &str)| -> Result<serde_json::Value, Problem> {
        Ok(event(
            Step {
                event_type: "ObjectEvent",
                action: "OBSERVE",
                business_step,
                disposition,
                site: gln,
                place: place(gln, Some(zone))?,
                epcs: Vec::new(),
                quantities: vec![quantity(&class, units)],
                parent: None,
            },
            at,
            zones,
        ))
    };
    // Recalled units keep saying so on their way (to a quarantine site, say).
    let (leaving, arriving) = if recalled { ("recalled", "recalled") } else { ("in_transit", "in_progress") };
    let mut shipped = moved("shipping", leaving, from)?;
    shipped["destinationList"] = serde_json::json!([{"type": "location", "destination": place(to.0, None)?}]);
    let mut received = moved("receiving", arriving, to)?;
    received["sourceList"] = serde_json::json!([{"type": "location", "source": place(from.0, None)?}]);
    capture(tenant, vec![shipped, received], at)
}

/// The event of `units` of a lot scrapped where they were stored (`destroying`, `DELETE`: they
/// leave the supply chain as `destroyed`), as an auditor closing a recall reads it.
pub fn scrapping(
    tenant: &TenantId,
    gtin: &str,
    lot: &str,
    (gln, zone): (&str, &str),
    units: i64,
    at: jiff::Timestamp,
    zones: &SiteZones,
) -> Result<Option<Capture>, Problem> {
    let step = Step {
        site: gln,
        event_type: "ObjectEvent",
        action: "DELETE",
        business_step: "destroying",
        disposition: "destroyed",
        place: place(gln, Some(zone))?,
        epcs: Vec::new(),
        quantities: vec![quantity(&lot_class(gtin, lot)?, units)],
        parent: None,
    };
    capture(tenant, vec![event(step, at, zones)], at)
}

/// The events of an order moving to `to`: one per shipment (none for steps that move nothing,
/// such as a cancellation), of every shipment or only of `only` (indexes into the allocation's
/// shipments), as when one courier route of several carries the order. `units` per pick are
/// what shipped (default every picked unit) or, for a return, what came back into stock
/// (default none); the units of `recalled_lots` (lot classes, as [`lot_class`] names them) come
/// back as such, in an event of their own.
#[allow(clippy::too_many_arguments)]
pub fn order_step(
    tenant: &TenantId,
    order: &OrderRecord,
    to: OrderStatus,
    ssccs: &[String],
    (units, restock_zone, recalled_lots): (Option<&[i64]>, Option<&str>, &BTreeSet<String>),
    at: jiff::Timestamp,
    only: Option<&[usize]>,
    zones: &SiteZones,
) -> Result<Option<Capture>, Problem> {
    let mut events = Vec::new();
    let mut pick_index = 0;
    for (number, shipment) in order.allocation.shipments.iter().enumerate() {
        let mut quantities = Vec::new();
        // A return's units of recalled lots.
        let mut recalled = Vec::new();
        // A short pick: units packed into the pallet that do not ship with it.
        let mut left_behind = Vec::new();
        for pick in &shipment.picks {
            let listed = units.and_then(|units| units.get(pick_index).copied());
            // Once shipped, a step's units are those the pick shipped (less after a short pick).
            let units =
                listed.unwrap_or(if to == OrderStatus::Returned { 0 } else { pick.shipped.unwrap_or(pick.quantity) });
            pick_index += 1;
            let Some(line) = order.lines.get(pick.line) else { continue };
            if units > 0 {
                let class = lot_class(&line.gtin, &pick.lot)?;
                if to == OrderStatus::Returned && recalled_lots.contains(&class) {
                    recalled.push(quantity(&class, units));
                } else {
                    quantities.push(quantity(&class, units));
                }
            }
            // Only the shipping step itself says so (`units` listed): a shipment recorded again
            // later (dispatch, for another route's orders) is not unpacked twice.
            if to == OrderStatus::Shipped
                && let Some(shipped) = listed
                && pick.quantity > shipped
            {
                left_behind.push(quantity(&lot_class(&line.gtin, &pick.lot)?, pick.quantity - shipped));
            }
        }
        if only.is_some_and(|only| !only.contains(&number)) {
            continue;
        }
        let sscc = ssccs.get(number).cloned().or_else(|| shipment.sscc.clone());
        let pallets = sscc.iter().map(|sscc| pallet_link(sscc)).collect::<Result<Vec<_>, _>>()?;
        // The packing put every reserved unit into the pallet: those a short pick does not ship
        // come out of it, back in stock where it was packed, before it ships. With no
        // disposition: they take their lot's status there, which may not be sellable (a lot put
        // on hold since, whose pick ships nothing), and the step is built before the write reads
        // it.
        if !left_behind.is_empty()
            && let Some(pallet) = pallets.first()
        {
            let mut unpacked = event(unpacking(&shipment.site, "", left_behind, Some(pallet.clone()))?, at, zones);
            name_order(&mut unpacked, tenant, &order.order_id);
            events.push(unpacked);
        }
        // A shipment whose picks all came up empty ships nothing and goes nowhere: no event
        // names its empty pallet from shipping on.
        let went_nowhere = match to {
            OrderStatus::Shipped => quantities.is_empty(),
            OrderStatus::OutForDelivery
            | OrderStatus::AtPickupPoint
            | OrderStatus::Delivered
            | OrderStatus::Returned => shipment.shipped_nothing(),
            _ => false,
        };
        if went_nowhere {
            continue;
        }
        let step = match to {
            OrderStatus::Picking => Step {
                event_type: "ObjectEvent",
                action: "OBSERVE",
                business_step: "picking",
                disposition: "in_progress",
                site: &shipment.site,
                place: place(&shipment.site, None)?,
                epcs: Vec::new(),
                quantities,
                parent: None,
            },
            OrderStatus::Packed => Step {
                event_type: "AggregationEvent",
                action: "ADD",
                business_step: "packing",
                disposition: "in_progress",
                site: &shipment.site,
                place: place(&shipment.site, None)?,
                epcs: Vec::new(),
                quantities,
                parent: pallets.first().cloned(),
            },
            OrderStatus::Shipped => Step {
                event_type: "ObjectEvent",
                action: "OBSERVE",
                business_step: "shipping",
                disposition: "in_transit",
                site: &shipment.site,
                place: place(&shipment.site, None)?,
                epcs: pallets,
                quantities,
                parent: None,
            },
            OrderStatus::OutForDelivery => Step {
                event_type: "ObjectEvent",
                action: "OBSERVE",
                business_step: "departing",
                disposition: "in_transit",
                site: &shipment.delivering_site,
                place: place(&shipment.delivering_site, None)?,
                epcs: pallets,
                quantities: Vec::new(),
                parent: None,
            },
            OrderStatus::AtPickupPoint => Step {
                event_type: "ObjectEvent",
                action: "OBSERVE",
                business_step: "arriving",
                disposition: "in_progress",
                site: order.destination.pickup_point.as_deref().unwrap_or(&shipment.delivering_site),
                place: place(order.destination.pickup_point.as_deref().unwrap_or(&shipment.delivering_site), None)?,
                epcs: pallets,
                quantities: Vec::new(),
                parent: None,
            },
            OrderStatus::Delivered => Step {
                event_type: "ObjectEvent",
                action: "OBSERVE",
                business_step: "retail_selling",
                disposition: "retail_sold",
                site: order.destination.pickup_point.as_deref().unwrap_or(&shipment.delivering_site),
                place: place(order.destination.pickup_point.as_deref().unwrap_or(&shipment.delivering_site), None)?,
                epcs: pallets,
                quantities,
                parent: None,
            },
            // Cancelled once packed: the pallet is unpacked where it was packed, its units back
            // in stock (the SSCC stays spent: it named this pallet). With no disposition, as a
            // short pick's: they take their lot's status there, which may not be sellable (a lot
            // put on hold or expired since it was packed).
            OrderStatus::Cancelled if order.status == OrderStatus::Packed => {
                unpacking(&shipment.site, "", quantities, pallets.first().cloned())?
            }
            // Cancelled while picking: the picked units are put back where they were picked.
            OrderStatus::Cancelled if order.status == OrderStatus::Picking => put_back(&shipment.site, quantities)?,
            // The parcel back at the site it left, with the units that go back into stock (in the
            // zone the return names, if it names one).
            OrderStatus::Returned => Step {
                event_type: "ObjectEvent",
                action: "OBSERVE",
                business_step: "receiving",
                disposition: "returned",
                site: &shipment.site,
                place: place(&shipment.site, restock_zone)?,
                epcs: pallets,
                quantities,
                parent: None,
            },
            _ => continue,
        };
        // The units of recalled lots come back as such (they take `recalled`), where the parcel
        // came back: an event of their own says so.
        let recalled_back = (!recalled.is_empty()).then(|| Step {
            event_type: "ObjectEvent",
            action: "OBSERVE",
            business_step: "receiving",
            disposition: "recalled",
            site: step.site,
            place: step.place.clone(),
            epcs: Vec::new(),
            quantities: recalled,
            parent: None,
        });
        // An aggregation needs its pallet, and an object event something to name; without an
        // SSCC (an order packed before they were recorded) and units (a return restocking
        // nothing) there is nothing to record.
        let empty = step.event_type == "AggregationEvent" && step.parent.is_none()
            || step.epcs.is_empty() && step.quantities.is_empty();
        for step in (!empty).then_some(step).into_iter().chain(recalled_back) {
            let mut recorded = event(step, at, zones);
            // Each names its order, as the business transaction it serves: two orders' picks of
            // one lot at one site and moment are two events, not one event captured twice (an
            // event without an eventID is known by its hash, which the order now changes).
            name_order(&mut recorded, tenant, &order.order_id);
            // Sold at a consumer's door: the event names the area, never the home. Its read
            // point is the destination rounded to about a kilometre (a `geo:` URI, as in GS1's
            // examples), and it has no business location: the units left the network.
            if to == OrderStatus::Delivered
                && order.destination.pickup_point.is_none()
                && let Some(area) = coarse_area(&order.destination)
            {
                recorded["readPoint"] = serde_json::json!({"id": area});
                if let Some(fields) = recorded.as_object_mut() {
                    fields.remove("bizLocation");
                }
            }
            events.push(recorded);
        }
    }
    capture(tenant, events, at)
}

/// The area of a home destination as an event may name it: `geo:` with the coordinates rounded
/// to [`AREA_DECIMALS`] decimals (a cell of about 1.1 by 0.7 km in the Netherlands).
fn coarse_area(destination: &store::fulfilment::OrderDestination) -> Option<String> {
    let (latitude, longitude) = (destination.latitude_degrees?, destination.longitude_degrees?);
    let round = |degrees: f64| {
        let scale = 10_f64.powi(AREA_DECIMALS);
        // `+ 0.0` turns a rounded -0 into 0.
        (degrees * scale).round() / scale + 0.0
    };
    let digits = AREA_DECIMALS as usize;
    Some(format!("geo:{:.digits$},{:.digits$}", round(latitude), round(longitude)))
}

/// The decimals of a home delivery's area in its event (two: about a kilometre).
pub const AREA_DECIMALS: i32 = 2;

/// The events of a recall:
/// - The picked units of an order being picked (`picking`) holding the lots go back where they
///   were picked (ObjectEvent `storing`, naming the order): the recalled lots' units as
///   `recalled`, the others with no disposition.
/// - Each pallet of a `packed` order holding the lots is unpacked where it was packed
///   (AggregationEvent `DELETE`, `unpacking`, naming the order): the units of the recalled lots
///   as `recalled`, the others back in stock (no disposition: they take their lot's status). The order is then allocated again or flagged,
///   and packed anew from its new lots. Pallets without an SSCC (packed before they were
///   recorded) have nothing to unpack.
/// - Then the units of the lots on hand (`held`, by balance) are held back where they lie, one
///   event a site's zone (ObjectEvent `OBSERVE`, `holding`, `recalled`), so a lot's trace says
///   where the recall found it and how much.
pub fn recall_steps(
    tenant: &TenantId,
    orders: &[OrderRecord],
    (gtin, lots): (&str, &[String]),
    held: &[(store::fulfilment::StockKey, i64)],
    at: jiff::Timestamp,
    zones: &SiteZones,
) -> Result<Option<Capture>, Problem> {
    let mut events = Vec::new();
    for order in orders.iter().filter(|order| matches!(order.status, OrderStatus::Packed | OrderStatus::Picking)) {
        for shipment in &order.allocation.shipments {
            // A packed order's pallet is unpacked (one packed before SSCCs were recorded has
            // nothing to unpack); a picking order's units are put back where they were picked.
            let pallet = match (order.status, &shipment.sscc) {
                (OrderStatus::Packed, Some(sscc)) => Some(pallet_link(sscc)?),
                (OrderStatus::Packed, None) => continue,
                _ => None,
            };
            let (mut recalled, mut others) = (Vec::new(), Vec::new());
            for pick in shipment.picks.iter().filter(|pick| pick.quantity > 0) {
                let Some(line) = order.lines.get(pick.line) else { continue };
                let class = quantity(&lot_class(&line.gtin, &pick.lot)?, pick.quantity);
                if line.gtin == gtin && lots.contains(&pick.lot) {
                    recalled.push(class);
                } else {
                    others.push(class);
                }
            }
            // The other lots' units with no disposition: they take their lot's status where they
            // are put back, which may not be sellable (a lot on hold or expired).
            for (disposition, quantities) in [("recalled", recalled), ("", others)] {
                if quantities.is_empty() {
                    continue;
                }
                let step = match &pallet {
                    Some(pallet) => unpacking(&shipment.site, disposition, quantities, Some(pallet.clone()))?,
                    None => Step { disposition, ..put_back(&shipment.site, quantities)? },
                };
                let mut put = event(step, at, zones);
                name_order(&mut put, tenant, &order.order_id);
                events.push(put);
            }
        }
    }
    // `held` is in key order: a zone's lots are next to each other.
    for zone_held in held.chunk_by(|(one, _), (other, _)| (&one.location, &one.zone) == (&other.location, &other.zone))
    {
        let Some((first, _)) = zone_held.first() else { continue };
        let quantities = zone_held
            .iter()
            .map(|(key, units)| Ok(quantity(&lot_class(&key.gtin, &key.lot)?, *units)))
            .collect::<Result<_, Problem>>()?;
        let step = Step {
            event_type: "ObjectEvent",
            action: "OBSERVE",
            business_step: "holding",
            disposition: "recalled",
            site: &first.location,
            place: place(&first.location, Some(&first.zone))?,
            epcs: Vec::new(),
            quantities,
            parent: None,
        };
        events.push(event(step, at, zones));
    }
    capture(tenant, events, at)
}

/// Picked units put back where they were picked (ObjectEvent `OBSERVE`, `storing`), with no
/// disposition: they take their lot's status there.
fn put_back(site: &str, quantities: Vec<serde_json::Value>) -> Result<Step<'_>, Problem> {
    Ok(Step {
        event_type: "ObjectEvent",
        action: "OBSERVE",
        business_step: "storing",
        disposition: "",
        site,
        place: place(site, None)?,
        epcs: Vec::new(),
        quantities,
        parent: None,
    })
}

/// A pallet unpacked at the site where it was packed (AggregationEvent `DELETE`, `unpacking`):
/// its units as `disposition` (back in stock, or recalled).
fn unpacking<'a>(
    site: &'a str,
    disposition: &'a str,
    quantities: Vec<serde_json::Value>,
    pallet: Option<String>,
) -> Result<Step<'a>, Problem> {
    Ok(Step {
        event_type: "AggregationEvent",
        action: "DELETE",
        business_step: "unpacking",
        disposition,
        site,
        place: place(site, None)?,
        epcs: Vec::new(),
        quantities,
        parent: pallet,
    })
}

/// What a sensor event records: the device, where it measured, the lots in custody there and the
/// temperatures of the stretch (an alarm's condition, or a whole leg).
#[derive(Debug)]
pub struct SensorEvidence<'a> {
    pub device_id: &'a str,
    /// `zone` (`GLN/zone`), `vehicle` or `sscc`.
    pub target_kind: &'a str,
    pub target: &'a str,
    pub lots: &'a [store::alarms::LotRef],
    /// The alarm rule breached; none for a leg's aggregates.
    pub rule: Option<&'a str>,
    /// A leg that saw an alarm: its report carries `exception: ALARM_CONDITION` too.
    pub breached: bool,
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
    pub minimum_celsius: Option<f64>,
    pub maximum_celsius: Option<f64>,
    pub mean_celsius: Option<f64>,
}

/// An order's identifier in its steps' events (`bizTransactionList`, type `po`): a URN of the
/// tenant's order, which names no person.
pub fn order_urn(tenant: &TenantId, order_id: &str) -> String {
    format!("{ORDER_URN_PREFIX}{tenant}:{order_id}")
}

const ORDER_URN_PREFIX: &str = "urn:keten:order:";

/// Names `order` as the business transaction `event` serves ([`order_urn`]).
fn name_order(event: &mut serde_json::Value, tenant: &TenantId, order_id: &str) {
    event["bizTransactionList"] = serde_json::json!([{"type": "po", "bizTransaction": order_urn(tenant, order_id)}]);
}

/// Whether an event names an order of the network ([`order_urn`]): one order's step, not the
/// lot's.
pub fn names_an_order(event: &serde_json::Value) -> bool {
    event.get("bizTransactionList").and_then(serde_json::Value::as_array).is_some_and(|transactions| {
        transactions.iter().any(|transaction| {
            transaction
                .get("bizTransaction")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|id| id.starts_with(ORDER_URN_PREFIX))
        })
    })
}

/// The device's identifier in events: a URN of the tenant's device (no personal data).
pub fn device_urn(tenant: &TenantId, device_id: &str) -> String {
    format!("urn:keten:device:{tenant}:{device_id}")
}

/// A sensor event: an `ObjectEvent` (`OBSERVE`, `sensor_reporting`) of the pallet or the lots in
/// custody, whose sensor report carries the stretch's minimum, maximum and mean temperature — an
/// alarm's condition (with `exception: ALARM_CONDITION` and the rule as `bizRules`), or a leg's
/// aggregates when its device moves on (with the exception when the leg saw an alarm). None when
/// nothing identifiable was in custody (a vehicle whose load is not known lot by lot). A zone's
/// event carries the offset in effect at its site (`zones`); a pallet's or vehicle's, whose place
/// is not known, UTC's.
pub fn sensor_event(
    tenant: &TenantId,
    evidence: &SensorEvidence<'_>,
    at: jiff::Timestamp,
    zones: &SiteZones,
) -> Result<Option<Capture>, Problem> {
    let mut epcs = Vec::new();
    let mut place_id = None;
    let mut site = "";
    match evidence.target_kind {
        "sscc" => epcs.push(pallet_link(evidence.target)?),
        "zone" => {
            if let Some((gln, zone)) = evidence.target.split_once('/') {
                place_id = Some(place(gln, Some(zone))?);
                site = gln;
            }
        }
        _ => {}
    }
    let quantities = evidence
        .lots
        .iter()
        .map(|lot| Ok(serde_json::json!({"epcClass": lot_class(lot.gtin.as_str(), &lot.lot)?})))
        .collect::<Result<Vec<_>, Problem>>()?;
    if epcs.is_empty() && quantities.is_empty() {
        return Ok(None);
    }
    let mut report = serde_json::json!({"type": "gs1:Temperature", "uom": "CEL"});
    if evidence.rule.is_some() || evidence.breached {
        report["exception"] = serde_json::json!("gs1:ALARM_CONDITION");
    }
    for (field, value) in [
        ("minValue", evidence.minimum_celsius),
        ("maxValue", evidence.maximum_celsius),
        ("meanValue", evidence.mean_celsius),
    ] {
        if let Some(value) = value {
            report[field] = serde_json::json!((value * 100.0).round() / 100.0);
        }
    }
    let mut event = serde_json::json!({
        "type": "ObjectEvent",
        "eventTime": at.to_string(),
        "eventTimeZoneOffset": zones.offset(site, at),
        "action": "OBSERVE",
        "bizStep": "sensor_reporting",
        "epcList": epcs,
        "sensorElementList": [{
            "sensorMetadata": {
                "deviceID": device_urn(tenant, evidence.device_id),
                "startTime": evidence.start.to_string(),
                "endTime": evidence.end.to_string(),
            },
            "sensorReport": [report],
        }],
    });
    if let Some(rule) = evidence.rule {
        event["sensorElementList"][0]["sensorMetadata"]["bizRules"] =
            serde_json::json!(format!("urn:keten:alarm-rule:{rule}"));
    }
    if !quantities.is_empty() {
        event["quantityList"] = serde_json::json!(quantities);
    }
    if let Some(place_id) = place_id {
        event["readPoint"] = serde_json::json!({"id": place_id});
    }
    capture(tenant, vec![event], at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zone's sensor event carries the offset in effect at its site, on that day; a pallet's,
    /// whose place is not known, UTC's.
    #[test]
    fn sensor_events_carry_their_sites_offset() {
        let tenant = TenantId::parse("greens").unwrap();
        let site = "8712345009014";
        let zones = SiteZones(HashMap::from([(site.to_owned(), jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap())]));
        let lots = [store::alarms::LotRef { gtin: gs1::Gtin::parse("08712345100216").unwrap(), lot: "L1".into() }];
        let offset_of = |target_kind: &str, target: &str, at: &str| {
            let at: jiff::Timestamp = at.parse().unwrap();
            let evidence = SensorEvidence {
                device_id: "room-a",
                target_kind,
                target,
                lots: &lots,
                rule: None,
                breached: false,
                start: at,
                end: at,
                minimum_celsius: Some(3.0),
                maximum_celsius: Some(5.0),
                mean_celsius: Some(4.0),
            };
            let capture = sensor_event(&tenant, &evidence, at, &zones).unwrap().unwrap();
            let event: serde_json::Value = serde_json::from_str(&capture.events[0].body).unwrap();
            event["eventTimeZoneOffset"].as_str().unwrap().to_owned()
        };
        let zone = format!("{site}/chill");
        assert_eq!(offset_of("zone", &zone, "2026-01-15T10:00:00Z"), "+01:00");
        assert_eq!(offset_of("zone", &zone, "2026-07-15T10:00:00Z"), "+02:00");
        assert_eq!(offset_of("sscc", "387123450000931002", "2026-07-15T10:00:00Z"), "+00:00");
    }
}
