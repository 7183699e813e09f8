//! Allocation and promises on a small network: the Amsterdam DC, the Oslo cold depot with its
//! reefer lane to Amsterdam, and an ambient warehouse in Utrecht.

use std::borrow::Cow;

use gs1::{Gln, Gtin};
use jiff::civil::date;
use jiff::tz::TimeZone;
use network::{
    Address, Coordinates, Country, Lane, LaneId, LocalTime, Location, LocationKind, Service, TemperatureClass,
    TemperatureRange, TimeZoneName, Zone, ZoneName,
};
use orders::{
    AllocationError, CandidateOutcome, Destination, Line, NetworkView, NoRoute, OrderRequest, ProductRule, StockLot,
    allocate,
};
use proptest::prelude::*;

fn with_check_digit(body: &str) -> String {
    let digits: Vec<u8> = body.bytes().map(|byte| byte - b'0').collect();
    format!("{body}{}", gs1::check_digit(&digits))
}

fn gln(body: &str) -> Gln {
    Gln::parse(&with_check_digit(body)).unwrap()
}

fn gtin(body: &str) -> Gtin {
    Gtin::parse(&with_check_digit(body)).unwrap()
}

fn zone(name: &str, min: Option<f64>, max: Option<f64>) -> Zone {
    Zone {
        name: ZoneName::parse(name).unwrap(),
        range: TemperatureRange { min_celsius: min, max_celsius: max },
        capacity_pallets: 100,
    }
}

fn site(
    body: &str,
    tz: &str,
    latitude: f64,
    longitude: f64,
    zones: Vec<Zone>,
    cutoffs: &[(Service, &str)],
) -> Location {
    Location {
        gln: gln(body),
        kind: LocationKind::Warehouse,
        name: body.to_owned(),
        address: Address::default(),
        country: Country::parse("NL").unwrap(),
        coordinates: Coordinates::new(latitude, longitude).unwrap(),
        time_zone: TimeZoneName::parse(tz).unwrap(),
        zones,
        cutoffs: cutoffs.iter().map(|(service, time)| (*service, LocalTime::parse(time).unwrap())).collect(),
        pick_pack_lead_minutes: 60,
        party_id: None,
    }
}

const AMSTERDAM: &str = "871000000001";
const OSLO: &str = "703000000001";
const UTRECHT: &str = "871000000002";
const SALMON: &str = "0871000000001";
const SOAP: &str = "0871000000002";
const BREAD: &str = "0871000000003";

fn network() -> (Vec<Location>, Vec<Lane>) {
    let all = [(Service::SameDay, "14:00"), (Service::NextDay, "22:00"), (Service::Express12h, "20:00")];
    let mut sites = vec![
        site(
            AMSTERDAM,
            "Europe/Amsterdam",
            52.35,
            4.80,
            vec![zone("chill", Some(0.0), Some(4.0)), zone("ambient", None, None)],
            &all,
        ),
        site(
            OSLO,
            "Europe/Oslo",
            59.91,
            10.75,
            vec![zone("chill", Some(0.0), Some(2.0))],
            &[(Service::NextDay, "16:00")],
        ),
        site(UTRECHT, "Europe/Amsterdam", 52.09, 5.12, vec![zone("ambient", None, None)], &all),
    ];
    sites.sort_by(|a, b| a.gln.as_str().cmp(b.gln.as_str()));
    let lanes = vec![Lane {
        lane_id: LaneId::parse("oslo-amsterdam").unwrap(),
        from: gln(OSLO),
        to: gln(AMSTERDAM),
        transit_minutes: 12 * 60,
        departures: vec![LocalTime::parse("18:00").unwrap()],
        temperature_classes: vec!["chilled"],
        cost_per_pallet_cents: 18_000,
    }];
    (sites, lanes)
}

fn products() -> Vec<ProductRule> {
    vec![
        ProductRule { gtin: gtin(SALMON), class: TemperatureClass::Chilled, min_remaining_shelf_life_days: 3 },
        ProductRule { gtin: gtin(SOAP), class: TemperatureClass::Ambient, min_remaining_shelf_life_days: 0 },
    ]
}

fn lot(
    site: &str,
    zone: &str,
    product: &str,
    lot: &str,
    expiry: Option<jiff::civil::Date>,
    available: i64,
) -> StockLot<'static> {
    StockLot {
        site: Cow::Owned(gln(site)),
        zone: Cow::Owned(ZoneName::parse(zone).unwrap()),
        gtin: Cow::Owned(gtin(product)),
        lot: Cow::Owned(lot.to_owned()),
        expiry,
        available,
    }
}

fn amsterdam_customer() -> Destination {
    Destination {
        coordinates: Coordinates::new(52.37, 4.90).unwrap(),
        time_zone: TimeZone::get("Europe/Amsterdam").unwrap(),
    }
}

/// 2026-12-01 10:00 in Amsterdam.
fn ten_am() -> i64 {
    date(2026, 12, 1)
        .at(10, 0, 0, 0)
        .to_zoned(TimeZone::get("Europe/Amsterdam").unwrap())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

fn order<'a>(
    lines: &'a [Line],
    products: &'a [ProductRule],
    destination: &'a Destination,
    service: Service,
    placed: i64,
) -> OrderRequest<'a> {
    OrderRequest {
        lines,
        products,
        destination,
        service,
        placed_unix_ms: placed,
        window_from_unix_ms: placed,
        latest_delivery_unix_ms: None,
    }
}

fn line(product: &str, quantity: i64) -> Line {
    Line { gtin: gtin(product), quantity }
}

#[test]
fn fefo_takes_the_earliest_expiry_that_still_leaves_the_minimum_shelf_life() {
    let (sites, lanes) = network();
    let products = products();
    let destination = amsterdam_customer();
    let stock = vec![
        lot(AMSTERDAM, "chill", SALMON, "L-LATE", Some(date(2026, 12, 12)), 50),
        lot(AMSTERDAM, "chill", SALMON, "L-EARLY", Some(date(2026, 12, 6)), 4),
        // Delivered on 1 December, this lot has 2 days left: less than the 3 the product needs.
        lot(AMSTERDAM, "chill", SALMON, "L-TOO-SOON", Some(date(2026, 12, 3)), 100),
        // Salmon in the ambient hall does not count.
        lot(AMSTERDAM, "ambient", SALMON, "L-WARM", Some(date(2026, 12, 20)), 100),
    ];
    let lines = [line(SALMON, 10)];
    let allocation = allocate(
        NetworkView { sites: &sites, lanes: &lanes },
        &stock,
        &order(&lines, &products, &destination, Service::SameDay, ten_am()),
    )
    .unwrap();
    assert_eq!(allocation.shipments.len(), 1);
    let picks: Vec<(&str, i64)> =
        allocation.shipments[0].picks.iter().map(|pick| (pick.lot.as_str(), pick.quantity)).collect();
    assert_eq!(picks, [("L-EARLY", 4), ("L-LATE", 6)]);
    // Same day: packed at 11:00; 7.15 km great-circle × 1.3 road at 30 km/h = 19 min; plus the
    // route window of 2 h: 13:19 local.
    let promised = jiff::Timestamp::from_millisecond(allocation.promised_by_unix_ms)
        .unwrap()
        .to_zoned(destination.time_zone.clone());
    assert_eq!((promised.hour(), promised.minute()), (13, 19), "{promised}");
}

/// A site that cannot serve the order says how many of its units could: not those of a lot short
/// of the product's shelf life already on the day the order is placed.
#[test]
fn a_site_passed_over_counts_only_units_fresh_enough() {
    let (sites, lanes) = network();
    let products = products();
    let destination = amsterdam_customer();
    let stock = vec![
        lot(AMSTERDAM, "chill", SALMON, "A-OK", Some(date(2026, 12, 12)), 10),
        lot(AMSTERDAM, "ambient", SOAP, "S", None, 10),
        // Oslo holds no soap; of its salmon, 1 unit has the 3 days left, 100 have 2 on the 1st.
        lot(OSLO, "chill", SALMON, "O-SOON", Some(date(2026, 12, 3)), 100),
        lot(OSLO, "chill", SALMON, "O-OK", Some(date(2026, 12, 20)), 1),
    ];
    let lines = [line(SALMON, 2), line(SOAP, 1)];
    let request = order(&lines, &products, &destination, Service::NextDay, ten_am());
    let allocation = allocate(NetworkView { sites: &sites, lanes: &lanes }, &stock, &request).unwrap();
    assert_eq!(allocation.shipments.len(), 1);
    let oslo = allocation.decision.candidates.iter().find(|candidate| candidate.site == gln(OSLO)).unwrap();
    assert_eq!(oslo.outcome, CandidateOutcome::Partial { eligible_units: vec![1, 0] });
}

/// A lane to a pickup point near the customer would promise a little earlier in the evening (its
/// last mile is shorter), but a pickup point runs no deliveries: a home order goes from the DC,
/// and only an order collected at the pickup point takes the lane.
#[test]
fn a_pickup_point_is_a_hub_only_for_orders_collected_there() {
    let (mut sites, mut lanes) = network();
    let mut point = site("871000000003", "Europe/Amsterdam", 52.371, 4.901, Vec::new(), &[]);
    point.kind = LocationKind::PickupPoint;
    point.pick_pack_lead_minutes = 0;
    sites.push(point.clone());
    sites.sort_by(|a, b| a.gln.as_str().cmp(b.gln.as_str()));
    lanes.push(Lane {
        lane_id: LaneId::parse("amsterdam-point").unwrap(),
        from: gln(AMSTERDAM),
        to: point.gln.clone(),
        transit_minutes: 1,
        departures: vec![LocalTime::parse("07:00").unwrap()],
        temperature_classes: vec!["chilled"],
        cost_per_pallet_cents: 500,
    });
    let products = products();
    let stock = vec![lot(AMSTERDAM, "chill", SALMON, "A", Some(date(2026, 12, 12)), 10)];
    let lines = [line(SALMON, 1)];
    // 23:00 in Amsterdam: packed at 07:00 tomorrow; the lane (07:00, one minute) and a last mile of
    // 0.1 km would promise 09:01, the DC's van (7 km) 09:19.
    let late = ten_am() + 13 * 3_600_000;
    let home = amsterdam_customer();
    let view = NetworkView { sites: &sites, lanes: &lanes };
    let allocation = allocate(view, &stock, &order(&lines, &products, &home, Service::NextDay, late)).unwrap();
    let route = &allocation.shipments[0].route;
    assert_eq!((route.delivering_site.as_str(), route.line_haul.is_none()), (gln(AMSTERDAM).as_str(), true));
    let collected = Destination { coordinates: point.coordinates, time_zone: home.time_zone.clone() };
    let allocation = allocate(view, &stock, &order(&lines, &products, &collected, Service::NextDay, late)).unwrap();
    let route = &allocation.shipments[0].route;
    assert_eq!(route.delivering_site, point.gln);
    assert_eq!(route.line_haul.as_ref().map(|(lane, _)| lane.as_str()), Some("amsterdam-point"));
}

#[test]
fn one_shipment_beats_a_split_and_the_cheapest_site_wins() {
    let (sites, lanes) = network();
    let products = products();
    let destination = amsterdam_customer();
    let stock = vec![
        lot(AMSTERDAM, "chill", SALMON, "A", Some(date(2026, 12, 12)), 10),
        lot(AMSTERDAM, "ambient", SOAP, "S1", None, 10),
        lot(UTRECHT, "ambient", SOAP, "S2", None, 100),
        lot(OSLO, "chill", SALMON, "O", Some(date(2026, 12, 20)), 100),
    ];
    let lines = [line(SALMON, 5), line(SOAP, 5)];
    let network = NetworkView { sites: &sites, lanes: &lanes };
    let allocation =
        allocate(network, &stock, &order(&lines, &products, &destination, Service::NextDay, ten_am())).unwrap();
    assert_eq!(allocation.shipments.len(), 1);
    assert_eq!(allocation.shipments[0].site, gln(AMSTERDAM));
    assert!(allocation.decision.rule.starts_with("one shipment"), "{}", allocation.decision.rule);
    let outcome = |body: &str| {
        allocation
            .decision
            .candidates
            .iter()
            .find(|candidate| candidate.site == gln(body))
            .map(|candidate| candidate.outcome.clone())
    };
    assert!(matches!(outcome(AMSTERDAM), Some(CandidateOutcome::Chosen { .. })));
    assert!(matches!(outcome(UTRECHT), Some(CandidateOutcome::Partial { .. })));
    // Oslo holds no soap (and could not carry it on its reefer lane).
    assert_eq!(outcome(OSLO), Some(CandidateOutcome::Partial { eligible_units: vec![100, 0] }));

    // Not enough soap in Amsterdam: two shipments. Utrecht covers the most units (all 50 soap), so
    // it goes first and Amsterdam ships only the salmon: no line is split.
    let lines = [line(SALMON, 5), line(SOAP, 50)];
    let split = allocate(network, &stock, &order(&lines, &products, &destination, Service::NextDay, ten_am())).unwrap();
    let sites: Vec<Gln> = split.shipments.iter().map(|shipment| shipment.site.clone()).collect();
    assert_eq!(sites, [gln(UTRECHT), gln(AMSTERDAM)]);
    assert_eq!(split.shipments[1].picks.len(), 1);
    let units: i64 = split
        .shipments
        .iter()
        .flat_map(|shipment| &shipment.picks)
        .filter(|pick| pick.line == 1)
        .map(|pick| pick.quantity)
        .sum();
    assert_eq!(units, 50);
}

#[test]
fn services_are_kept_or_refused_with_the_reason() {
    let (sites, lanes) = network();
    let products = products();
    let destination = amsterdam_customer();
    let network = NetworkView { sites: &sites, lanes: &lanes };
    let stock = vec![lot(OSLO, "chill", SALMON, "O", Some(date(2026, 12, 20)), 100)];
    let lines = [line(SALMON, 5)];
    // Oslo at 10:00 → packed 11:00 (Oslo time), reefer leaves 18:00, 12 h, cross-dock 1 h, then the
    // last mile: next day 07:00 + 19 min + 2 h → meets next_day; Oslo offers no express_12h.
    let next_day =
        allocate(network, &stock, &order(&lines, &products, &destination, Service::NextDay, ten_am())).unwrap();
    let route = &next_day.shipments[0].route;
    assert_eq!(route.line_haul.as_ref().map(|(lane, _)| lane.as_str()), Some("oslo-amsterdam"));
    let promised = jiff::Timestamp::from_millisecond(next_day.promised_by_unix_ms)
        .unwrap()
        .to_zoned(destination.time_zone.clone());
    assert_eq!((promised.day(), promised.hour(), promised.minute()), (2, 9, 19), "{promised}");
    match allocate(network, &stock, &order(&lines, &products, &destination, Service::Express12h, ten_am())) {
        Err(AllocationError::Short { shortages, decision }) => {
            assert_eq!(shortages[0].wanted, 5);
            assert!(
                matches!(&decision.candidates[0].outcome, CandidateOutcome::NoRoute(NoRoute::NoCutoff("express_12h"))),
                "{decision:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Same day in Amsterdam after its 14:00 cut-off: refused, the reason names the bound.
    let stock = vec![lot(AMSTERDAM, "chill", SALMON, "A", Some(date(2026, 12, 20)), 100)];
    let late = ten_am() + 5 * 3_600_000;
    match allocate(network, &stock, &order(&lines, &products, &destination, Service::SameDay, late)) {
        Err(AllocationError::Short { decision, .. }) => {
            assert!(
                matches!(
                    &decision.candidates[0].outcome,
                    CandidateOutcome::NoRoute(NoRoute::ServiceMissed { service: "same_day", .. })
                ),
                "{decision:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Allocated again a day after it was placed (a recall took its lot), an order keeps its
    // service's window: next_day from yesterday is today, which the Oslo route cannot make,
    // though it makes next_day from now.
    let oslo = vec![lot(OSLO, "chill", SALMON, "O", Some(date(2026, 12, 20)), 100)];
    let mut again = order(&lines, &products, &destination, Service::NextDay, ten_am() + 86_400_000);
    assert!(allocate(network, &oslo, &again).is_ok(), "next_day from now");
    again.window_from_unix_ms = ten_am();
    match allocate(network, &oslo, &again) {
        Err(AllocationError::Short { decision, .. }) => assert!(
            matches!(
                &decision.candidates[0].outcome,
                CandidateOutcome::NoRoute(NoRoute::ServiceMissed { service: "next_day", .. })
            ),
            "{decision:?}"
        ),
        other => panic!("{other:?}"),
    }
    // A latest delivery before the promise is refused too.
    let mut request = order(&lines, &products, &destination, Service::NextDay, ten_am());
    request.latest_delivery_unix_ms = Some(ten_am() + 3_600_000);
    assert!(matches!(allocate(network, &stock, &request), Err(AllocationError::Short { .. })));
    // An unknown product is named.
    let lines = [line("0871000000009", 1)];
    assert!(matches!(
        allocate(network, &stock, &order(&lines, &products, &destination, Service::NextDay, ten_am())),
        Err(AllocationError::UnknownProduct { line: 0, .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the stock, an allocation picks exactly the ordered units, never more than a lot
    /// holds, only from suitable zones, in at most the allowed number of shipments.
    #[test]
    fn allocations_are_exact_and_within_stock(
        amounts in prop::collection::vec((0usize..3, 0usize..2, 0i64..20, 0i64..30), 1..12),
        wanted in prop::collection::vec((0usize..2, 1i64..40), 1..4),
    ) {
        let (sites, lanes) = network();
        let products = products();
        let destination = amsterdam_customer();
        let bodies = [AMSTERDAM, OSLO, UTRECHT];
        let stock: Vec<StockLot<'_>> = amounts.iter().enumerate().map(|(index, (site, product, days, units))| {
            let zone = if *product == 0 { "chill" } else { "ambient" };
            lot(bodies[*site], zone, [SALMON, SOAP][*product], &format!("L{index}"), Some(date(2026, 12, 1).checked_add(jiff::ToSpan::days(*days)).unwrap()), *units)
        }).collect();
        let lines: Vec<Line> = wanted.iter().map(|(product, units)| line([SALMON, SOAP][*product], *units)).collect();
        let request = order(&lines, &products, &destination, Service::NextDay, ten_am());
        // The stock's order does not matter (the store hands it over in key order, tests in any).
        let reversed: Vec<StockLot<'_>> = stock.iter().rev().map(StockLot::borrowed).collect();
        prop_assert_eq!(
            format!("{:?}", allocate(NetworkView { sites: &sites, lanes: &lanes }, &stock, &request)),
            format!("{:?}", allocate(NetworkView { sites: &sites, lanes: &lanes }, &reversed, &request))
        );
        if let Ok(allocation) = allocate(NetworkView { sites: &sites, lanes: &lanes }, &stock, &request) {
            prop_assert!(allocation.shipments.len() <= orders::SHIPMENTS_MAX);
            for (index, order_line) in lines.iter().enumerate() {
                let picked: i64 = allocation.shipments.iter().flat_map(|shipment| &shipment.picks).filter(|pick| pick.line == index).map(|pick| pick.quantity).sum();
                prop_assert_eq!(picked, order_line.quantity);
            }
            for shipment in &allocation.shipments {
                let site = sites.iter().find(|site| site.gln == shipment.site).unwrap();
                for pick in &shipment.picks {
                    let source = stock.iter().find(|lot| *lot.site == shipment.site && lot.lot == pick.lot).unwrap();
                    let used: i64 = allocation.shipments.iter().filter(|other| other.site == shipment.site).flat_map(|other| &other.picks).filter(|other| other.lot == pick.lot).map(|other| other.quantity).sum();
                    prop_assert!(used <= source.available);
                    let class = products.iter().find(|product| product.gtin == lines[pick.line].gtin).unwrap().class;
                    prop_assert!(site.zones.iter().any(|zone| zone.name == pick.zone && zone.suits(&class)));
                }
            }
        }
    }
}

/// A warehouse per entry of `zones` (a chill zone, an ambient zone or both) on a grid around
/// Amsterdam (`offsets`: several sites may share a place, and so their costs), the first one far
/// away in Oslo when `with_far` is set.
fn random_network(zones: &[u8], with_far: bool, offsets: &[(u16, u16)]) -> Vec<Location> {
    let all = [(Service::SameDay, "14:00"), (Service::NextDay, "22:00"), (Service::Express12h, "20:00")];
    let mut sites: Vec<Location> = zones
        .iter()
        .zip(offsets)
        .enumerate()
        .map(|(index, (kinds, (north, east)))| {
            let (latitude, longitude) = if with_far && index == 0 {
                (59.91, 10.75)
            } else {
                (52.25 + f64::from(*north) / 20.0, 4.75 + f64::from(*east) / 10.0)
            };
            let zones = match kinds {
                0 => vec![zone("chill", Some(0.0), Some(4.0))],
                1 => vec![zone("ambient", None, None)],
                _ => vec![zone("chill", Some(0.0), Some(4.0)), zone("ambient", None, None)],
            };
            site(&format!("8710000001{index:02}"), "Europe/Amsterdam", latitude, longitude, zones, &all)
        })
        .collect();
    sites.sort_by(|a, b| a.gln.as_str().cmp(b.gln.as_str()));
    sites
}

/// The total cost of an allocation's shipments.
fn cost_cents(allocation: &orders::Allocation) -> u64 {
    allocation.shipments.iter().map(|shipment| shipment.route.cost_cents).sum()
}

proptest! {
    // A greedy split (the site covering the most units first) failed this in 5 of 5 runs of 2,048
    // cases, and passed 256.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// A split takes the fewest shipments, then the cheapest together. Whatever one, two or three
    /// sites could do with their own stock alone, the whole network can do too, so its allocation
    /// is never worse: no more shipments, and at as many no higher cost. And when the network
    /// refuses for too many shipments, no such set of sites serves the order.
    #[test]
    fn splits_are_the_fewest_shipments_then_the_cheapest(
        zones in prop::collection::vec(0u8..3, 2..7),
        offsets in prop::collection::vec((0u16..4, 0u16..4), 7),
        with_far in any::<bool>(),
        amounts in prop::collection::vec((0usize..7, 0usize..3, 0i64..20, 0i64..12), 1..16),
        wanted in prop::collection::vec((0usize..3, 1i64..15), 1..5),
    ) {
        let sites = random_network(&zones, with_far, &offsets);
        // The far site (in Oslo) reaches the customer by a lane carrying ambient goods only, and
        // delivers a day later than the near ones (shelf life then counts differently).
        let far = sites.iter().find(|site| site.coordinates.latitude_degrees() > 59.0);
        let near = sites.iter().find(|site| site.coordinates.latitude_degrees() < 59.0);
        let lanes: Vec<Lane> = far.zip(near).map(|(far, near)| Lane {
            lane_id: LaneId::parse("far-near").unwrap(),
            from: far.gln.clone(),
            to: near.gln.clone(),
            transit_minutes: 12 * 60,
            departures: vec![LocalTime::parse("18:00").unwrap()],
            temperature_classes: vec!["ambient"],
            cost_per_pallet_cents: 18_000,
        }).into_iter().collect();
        let network = NetworkView { sites: &sites, lanes: &lanes };
        let mut products = products();
        products.push(ProductRule { gtin: gtin(BREAD), class: TemperatureClass::Ambient, min_remaining_shelf_life_days: 2 });
        let destination = amsterdam_customer();
        let stock: Vec<StockLot<'_>> = amounts.iter().enumerate().map(|(index, (site, product, days, units))| {
            let zone = if *product == 0 { "chill" } else { "ambient" };
            let expiry = date(2026, 12, 1).checked_add(jiff::ToSpan::days(*days)).unwrap();
            let site = &sites[*site % sites.len()];
            StockLot {
                site: Cow::Borrowed(&site.gln),
                ..lot(AMSTERDAM, zone, [SALMON, SOAP, BREAD][*product], &format!("L{index}"), Some(expiry), *units)
            }
        }).collect();
        let lines: Vec<Line> = wanted.iter().map(|(product, units)| line([SALMON, SOAP, BREAD][*product], *units)).collect();
        let request = order(&lines, &products, &destination, Service::NextDay, ten_am());
        let whole = allocate(network, &stock, &request);
        let holding: Vec<&Gln> = sites.iter().map(|site| &site.gln).filter(|gln| stock.iter().any(|lot| *lot.site == **gln)).collect();
        for mask in 1u32..(1 << holding.len()) {
            if mask.count_ones() as usize > orders::SHIPMENTS_MAX {
                continue;
            }
            let chosen: Vec<&Gln> = holding.iter().enumerate().filter(|(bit, _)| mask & (1 << bit) != 0).map(|(_, gln)| *gln).collect();
            let own: Vec<StockLot<'_>> = stock.iter().filter(|lot| chosen.contains(&lot.site.as_ref())).cloned().collect();
            let Ok(alone) = allocate(network, &own, &request) else { continue };
            let whole = match &whole {
                Ok(whole) => whole,
                Err(error) => return Err(TestCaseError::fail(format!("{chosen:?} alone serve the order, the network: {error:?}"))),
            };
            prop_assert!(
                (whole.shipments.len(), cost_cents(whole)) <= (alone.shipments.len(), cost_cents(&alone)),
                "{chosen:?} alone: {} shipments at {}, the network: {} at {}",
                alone.shipments.len(), cost_cents(&alone), whole.shipments.len(), cost_cents(whole)
            );
        }
        if let Ok(whole) = &whole {
            // Exactly the units ordered, never more than a lot holds.
            for (index, order_line) in lines.iter().enumerate() {
                let picked: i64 = whole.shipments.iter().flat_map(|shipment| &shipment.picks).filter(|pick| pick.line == index).map(|pick| pick.quantity).sum();
                prop_assert_eq!(picked, order_line.quantity);
            }
            for shipment in &whole.shipments {
                for pick in &shipment.picks {
                    let source = stock.iter().find(|lot| *lot.site == shipment.site && lot.lot == pick.lot).unwrap();
                    let taken: i64 = shipment.picks.iter().filter(|other| other.lot == pick.lot).map(|other| other.quantity).sum();
                    prop_assert!(taken <= source.available);
                }
            }
            // Every shipment carries something, and the sites are distinct.
            prop_assert!(whole.shipments.iter().all(|shipment| !shipment.picks.is_empty()));
            let mut shipping: Vec<&Gln> = whole.shipments.iter().map(|shipment| &shipment.site).collect();
            shipping.sort();
            shipping.dedup();
            prop_assert_eq!(shipping.len(), whole.shipments.len());
        }
    }
}

/// Lines A, B and C of 10 units. X holds 4 of each (the most units of any site), Y, Z and W 10 of
/// one line each: only Y, Z and W together serve the order; a split starting at X needs four.
/// And when X holds 10 of A and 6 of B and C, Y 10 of B and C: Y with a site holding A is two
/// shipments, where starting at X would take three.
#[test]
fn a_split_finds_the_sites_that_serve_the_order_together() {
    let sites = random_network(&[1, 1, 1, 1], false, &[(0, 0), (1, 1), (2, 2), (3, 3)]);
    let network = NetworkView { sites: &sites, lanes: &[] };
    let mut products = products();
    products.push(ProductRule {
        gtin: gtin(BREAD),
        class: TemperatureClass::Ambient,
        min_remaining_shelf_life_days: 0,
    });
    products[0].class = TemperatureClass::Ambient;
    let destination = amsterdam_customer();
    let at = |site: usize, product: &str, units: i64| StockLot {
        site: Cow::Borrowed(&sites[site].gln),
        ..lot(AMSTERDAM, "ambient", product, &format!("{site}-{product}"), None, units)
    };
    let lines = [line(SALMON, 10), line(SOAP, 10), line(BREAD, 10)];
    let request = order(&lines, &products, &destination, Service::NextDay, ten_am());
    let stock =
        vec![at(0, SALMON, 4), at(0, SOAP, 4), at(0, BREAD, 4), at(1, SALMON, 10), at(2, SOAP, 10), at(3, BREAD, 10)];
    let split = allocate(network, &stock, &request).unwrap();
    let mut shipping: Vec<Gln> = split.shipments.iter().map(|shipment| shipment.site.clone()).collect();
    shipping.sort();
    assert_eq!(shipping, [sites[1].gln.clone(), sites[2].gln.clone(), sites[3].gln.clone()]);
    assert!(split.decision.rule.starts_with("3 shipments"), "{}", split.decision.rule);
    // X is told with the units it holds.
    let x = split.decision.candidates.iter().find(|candidate| candidate.site == sites[0].gln).unwrap();
    assert_eq!(x.outcome, CandidateOutcome::Partial { eligible_units: vec![4, 4, 4] });

    let stock =
        vec![at(0, SALMON, 10), at(0, SOAP, 6), at(0, BREAD, 6), at(1, SOAP, 10), at(1, BREAD, 10), at(2, SALMON, 10)];
    let split = allocate(network, &stock, &request).unwrap();
    assert_eq!(split.shipments.len(), 2, "{:?}", split.decision);
    // Y covers the most units (20), so it ships first; then the cheaper of X and the third site for A.
    assert_eq!(split.shipments[0].site, sites[1].gln);
    assert_eq!(split.shipments[0].picks.iter().map(|pick| pick.quantity).sum::<i64>(), 20);
    assert_eq!(split.shipments[1].picks.iter().map(|pick| (pick.line, pick.quantity)).collect::<Vec<_>>(), [(0, 10)]);

    // Short across the network is short, not too many shipments.
    let stock = vec![at(0, SALMON, 3), at(1, SOAP, 3), at(2, BREAD, 3), at(3, SALMON, 3)];
    match allocate(network, &stock, &request) {
        Err(AllocationError::Short { shortages, .. }) => {
            let eligible: Vec<(usize, i64)> =
                shortages.iter().map(|shortage| (shortage.line, shortage.eligible)).collect();
            assert_eq!(eligible, [(0, 6), (1, 3), (2, 3)]);
        }
        other => panic!("{other:?}"),
    }
    // Enough across four sites, but no three of them: too many shipments.
    let stock = vec![at(0, SALMON, 5), at(1, SALMON, 5), at(2, SOAP, 10), at(3, BREAD, 10)];
    assert!(matches!(allocate(network, &stock, &request), Err(AllocationError::TooManyShipments { .. })));

    // 80 sites holding one unit each, and an order of four: no three of them can (the units
    // show it before any combination is tried); the sites together hold enough.
    let offsets: Vec<(u16, u16)> = (0..80).map(|index| (index % 4, index / 4 % 4)).collect();
    let many = random_network(&[1; 80], false, &offsets);
    let one_each: Vec<StockLot<'_>> = many
        .iter()
        .map(|site| StockLot {
            site: Cow::Borrowed(&site.gln),
            ..lot(AMSTERDAM, "ambient", SOAP, site.gln.as_str(), None, 1)
        })
        .collect();
    let lines = [line(SOAP, 4)];
    let request = order(&lines, &products, &destination, Service::NextDay, ten_am());
    match allocate(NetworkView { sites: &many, lanes: &[] }, &one_each, &request) {
        Err(AllocationError::TooManyShipments { decision }) => {
            assert!(!decision.rule.contains("limit"), "{}", decision.rule)
        }
        other => panic!("{other:?}"),
    }
    let lines = [line(SOAP, 3)];
    let request = order(&lines, &products, &destination, Service::NextDay, ten_am());
    let split = allocate(NetworkView { sites: &many, lanes: &[] }, &one_each, &request).unwrap();
    assert_eq!(split.shipments.len(), 3);

    // 96 sites near the customer with 2 units of salmon each, with its 3 days' shelf life left on
    // the day it is placed but not on the next, the delivery's (counted before routing, gone
    // after), and 4 farther sites with 1 fresh unit each; an order of 3. Only three far sites
    // serve it, the last combinations of three in the search's order; a site routed once is known
    // to hold nothing fresh, so the search gets there.
    let offsets: Vec<(u16, u16)> = (0..100).map(|index| if index < 96 { (2, 1) } else { (0, 0) }).collect();
    let many = random_network(&[1; 100], false, &offsets);
    let stale = date(2026, 12, 4);
    let mixed: Vec<StockLot<'_>> = many
        .iter()
        .enumerate()
        .map(|(index, site)| {
            let (expiry, units) = if index < 96 { (stale, 2) } else { (date(2026, 12, 30), 1) };
            StockLot {
                site: Cow::Borrowed(&site.gln),
                ..lot(AMSTERDAM, "ambient", SALMON, site.gln.as_str(), Some(expiry), units)
            }
        })
        .collect();
    let lines = [line(SALMON, 3)];
    // Placed late in the evening: delivered the next day.
    let late = ten_am() + 12 * 3_600_000;
    let request = order(&lines, &products, &destination, Service::NextDay, late);
    let network = NetworkView { sites: &many, lanes: &[] };
    let split = allocate(network, &mixed, &request).unwrap();
    assert!(split.promised_by_unix_ms > ten_am() + 14 * 3_600_000, "delivered the next day");
    let mut shipping: Vec<&Gln> = split.shipments.iter().map(|shipment| &shipment.site).collect();
    shipping.sort();
    assert_eq!(shipping, [&many[96].gln, &many[97].gln, &many[98].gln], "the three cheapest of the far sites");
    // With a search of 50 steps for each number of shipments it stops before, and says so.
    match orders::allocate::allocate_within(network, &mixed, &request, 50) {
        Err(AllocationError::TooManyShipments { decision }) => {
            assert!(decision.rule.contains("stopped at its limit of 50 steps"), "{}", decision.rule)
        }
        other => panic!("{other:?}"),
    }
}

/// Chilled salmon and ambient soap. Amsterdam holds the salmon; a depot in Oslo holds the soap
/// and one salmon, and its only lane to Amsterdam carries ambient goods. Oslo cannot ship both
/// classes, but it can ship the soap: two shipments.
#[test]
fn a_split_site_ships_the_classes_its_lanes_carry() {
    let (mut sites, _) = network();
    let depot = site(
        "703000000002",
        "Europe/Oslo",
        59.91,
        10.75,
        vec![zone("chill", Some(0.0), Some(4.0)), zone("ambient", None, None)],
        &[(Service::NextDay, "16:00")],
    );
    sites.push(depot.clone());
    sites.sort_by(|a, b| a.gln.as_str().cmp(b.gln.as_str()));
    let lanes = vec![Lane {
        lane_id: LaneId::parse("oslo-amsterdam-ambient").unwrap(),
        from: depot.gln.clone(),
        to: gln(AMSTERDAM),
        transit_minutes: 12 * 60,
        departures: vec![LocalTime::parse("18:00").unwrap()],
        temperature_classes: vec!["ambient"],
        cost_per_pallet_cents: 18_000,
    }];
    let network = NetworkView { sites: &sites, lanes: &lanes };
    let products = products();
    let destination = amsterdam_customer();
    let at_depot = |zone: &str, product: &str, units: i64| StockLot {
        site: Cow::Borrowed(&depot.gln),
        ..lot(AMSTERDAM, zone, product, &format!("D-{product}"), Some(date(2026, 12, 20)), units)
    };
    let stock = vec![
        lot(AMSTERDAM, "chill", SALMON, "A", Some(date(2026, 12, 20)), 5),
        at_depot("chill", SALMON, 1),
        at_depot("ambient", SOAP, 5),
    ];
    let lines = [line(SALMON, 5), line(SOAP, 5)];
    let split = allocate(network, &stock, &order(&lines, &products, &destination, Service::NextDay, ten_am())).unwrap();
    let shipped: Vec<(Gln, Vec<usize>)> = split
        .shipments
        .iter()
        .map(|shipment| (shipment.site.clone(), shipment.picks.iter().map(|pick| pick.line).collect()))
        .collect();
    assert_eq!(shipped, [(gln(AMSTERDAM), vec![0]), (depot.gln.clone(), vec![1])], "{:?}", split.decision);
    let lane = split.shipments[1].route.line_haul.as_ref().map(|(lane, _)| lane.as_str());
    assert_eq!(lane, Some("oslo-amsterdam-ambient"));

    // 7 salmon: Oslo's one cannot travel, so 5 are eligible; the soap is not short. Oslo is told
    // as holding the soap it could ship.
    let lines = [line(SALMON, 7), line(SOAP, 5)];
    match allocate(network, &stock, &order(&lines, &products, &destination, Service::NextDay, ten_am())) {
        Err(AllocationError::Short { shortages, decision }) => {
            let short: Vec<(usize, i64, i64)> =
                shortages.iter().map(|shortage| (shortage.line, shortage.wanted, shortage.eligible)).collect();
            assert_eq!(short, [(0, 7, 5)]);
            let oslo = decision.candidates.iter().find(|candidate| candidate.site == depot.gln).unwrap();
            assert_eq!(oslo.outcome, CandidateOutcome::Partial { eligible_units: vec![0, 5] });
        }
        other => panic!("{other:?}"),
    }
}

/// A site 55 km south of the customer delivers by van itself, or sends the parcel on a lane to the
/// Amsterdam DC near the customer: the lane is an hour sooner but costs more. The van wins while
/// it is in time; the lane when the latest delivery asked for is before the van's arrival.
#[test]
fn the_cheapest_way_in_time_wins() {
    let (mut sites, _) = network();
    let far = site(
        "871000000003",
        "Europe/Amsterdam",
        51.88,
        4.90,
        vec![zone("ambient", None, None)],
        &[(Service::SameDay, "14:00")],
    );
    sites.push(far.clone());
    sites.sort_by(|a, b| a.gln.as_str().cmp(b.gln.as_str()));
    let lanes = vec![Lane {
        lane_id: LaneId::parse("south-amsterdam").unwrap(),
        from: far.gln.clone(),
        to: gln(AMSTERDAM),
        transit_minutes: 20,
        departures: (6..22).map(|hour| LocalTime::parse(&format!("{hour:02}:00")).unwrap()).collect(),
        temperature_classes: vec!["ambient"],
        cost_per_pallet_cents: 4_000,
    }];
    let network = NetworkView { sites: &sites, lanes: &lanes };
    let products = products();
    let destination = amsterdam_customer();
    let stock = vec![StockLot { site: Cow::Borrowed(&far.gln), ..lot(AMSTERDAM, "ambient", SOAP, "S", None, 10) }];
    let lines = [line(SOAP, 1)];
    let mut request = order(&lines, &products, &destination, Service::SameDay, ten_am());
    let van = allocate(network, &stock, &request).unwrap().shipments.remove(0).route;
    assert_eq!(van.line_haul, None);
    assert_eq!(van.delivering_site, far.gln);
    // Asked for before the van arrives: the lane, dearer and sooner.
    request.latest_delivery_unix_ms = Some(van.promised_by_unix_ms - 60_000);
    let lane = allocate(network, &stock, &request).unwrap().shipments.remove(0).route;
    assert_eq!(lane.line_haul.as_ref().map(|(lane, _)| lane.as_str()), Some("south-amsterdam"));
    assert!(lane.cost_cents > van.cost_cents && lane.promised_by_unix_ms < van.promised_by_unix_ms, "{lane:?} {van:?}");
    // Before either: refused, naming the earliest (the lane's) promise.
    request.latest_delivery_unix_ms = Some(lane.promised_by_unix_ms - 60_000);
    match allocate(network, &stock, &request) {
        Err(AllocationError::Short { decision, .. }) => {
            let far_outcome = decision.candidates.iter().find(|candidate| candidate.site == far.gln).unwrap();
            match &far_outcome.outcome {
                CandidateOutcome::NoRoute(NoRoute::TooLate { earliest, .. }) => {
                    assert_eq!(earliest.as_millisecond(), lane.promised_by_unix_ms)
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
}
