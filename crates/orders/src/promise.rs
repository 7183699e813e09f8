//! The delivery promise: when an order shipped from a site reaches its destination.
//!
//! The model, step by step (each constant is documented and public):
//! 1. **Cut-off.** A site offers a service if it has a cut-off time for it (a site with any
//!    cut-off also offers `standard`, at its latest cut-off). An order placed at or before the day's
//!    cut-off (site's local time) is picked that day, starting no earlier than [`WORKDAY_START`];
//!    after the cut-off it waits for the next day's start. Sites work every day: there is no
//!    calendar of weekends or holidays (a site closed on Sunday is not modelled).
//! 2. **Pick and pack**: the site's `pick_pack_lead_minutes`.
//! 3. **Line haul** (optional; needed when the destination is beyond the site's last-mile reach):
//!    a lane from the site to a site within reach of the destination, carrying every temperature
//!    class of the shipment; the next departure (origin's local time) at or after packing, the
//!    lane's transit, then the receiving site's `pick_pack_lead_minutes` to cross-dock. A pickup
//!    point is such a hub only for orders collected there (it runs no deliveries). Of the routes
//!    that meet step 5's bounds, the cheapest wins, then the earlier.
//! 4. **Last mile** from a site within [`LAST_MILE_REACH_KM`]: vans leave between
//!    [`LAST_MILE_FIRST_DEPARTURE`] and [`LAST_MILE_LAST_DEPARTURE`] (local), drive the great-circle
//!    distance × [`ROAD_FACTOR`] at [`LAST_MILE_SPEED_KM_PER_H`], and the promise adds
//!    [`LAST_MILE_WINDOW_MINUTES`] for the other stops of the route.
//! 5. **The service's bound**, in the destination's time zone: `express_12h` within 12 h of the
//!    order, `same_day` on the order's local date, `next_day` by the end of the next local day,
//!    `standard` within [`STANDARD_DAYS_MAX`] local days (the same clock time, five dates on, so an
//!    hour more or less across a change of summer time); and never after the order's latest
//!    delivery.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use network::{Coordinates, Lane, LaneId, LocalTime, Location, LocationKind, Service, TemperatureClass};

/// Picking starts at 06:00 local.
pub const WORKDAY_START: u16 = 6 * 60;
/// Last-mile vans leave from 07:00 …
pub const LAST_MILE_FIRST_DEPARTURE: u16 = 7 * 60;
/// … until 20:00 local.
pub const LAST_MILE_LAST_DEPARTURE: u16 = 20 * 60;
/// A site delivers the last mile itself within this great-circle distance.
pub const LAST_MILE_REACH_KM: f64 = 60.0;
/// A destination this close to a pickup point is that pickup point (an order to be collected
/// there); farther away, a pickup point is no hub for the last mile.
pub const PICKUP_POINT_SAME_PLACE_KM: f64 = 0.05;
/// Road distance per great-circle distance.
pub const ROAD_FACTOR: f64 = 1.3;
pub const LAST_MILE_SPEED_KM_PER_H: f64 = 30.0;
/// Time a delivery route spends on other stops before this one, at most.
pub const LAST_MILE_WINDOW_MINUTES: i64 = 120;
/// The longest a `standard` delivery may take.
pub const STANDARD_DAYS_MAX: i64 = 5;
/// Cost of a shipment's handling (pick, pack, label), in cents.
pub const SHIPMENT_COST_CENTS: u64 = 300;
/// Cost of a last-mile kilometre (road distance), in cents.
pub const LAST_MILE_COST_CENTS_PER_KM: f64 = 60.0;

/// Where an order goes: coordinates and the time zone of the place (a pickup point's or an
/// address's).
#[derive(Debug, Clone)]
pub struct Destination {
    pub coordinates: Coordinates,
    pub time_zone: TimeZone,
}

/// How a shipment from a site reaches the destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// When picking can start at the site.
    pub pick_from_unix_ms: i64,
    /// Packed and ready to leave.
    pub ready_unix_ms: i64,
    /// The lane taken to the delivering site, and its departure.
    pub line_haul: Option<(LaneId, i64)>,
    /// The site that delivers the last mile.
    pub delivering_site: gs1::Gln,
    pub last_mile_departure_unix_ms: i64,
    pub last_mile_km: f64,
    pub promised_by_unix_ms: i64,
    pub cost_cents: u64,
}

/// Why a site cannot serve a destination with a service.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoRoute {
    #[error("the site has no cut-off for {0}")]
    NoCutoff(&'static str),
    #[error("no lane from the site reaches a site within {LAST_MILE_REACH_KM} km of the destination for {0}")]
    NoLane(String),
    #[error("the earliest delivery, {earliest}, misses {service}'s bound ({bound})")]
    ServiceMissed { service: &'static str, earliest: Timestamp, bound: Timestamp },
    #[error("the earliest delivery, {earliest}, is after the latest delivery asked for ({latest})")]
    TooLate { earliest: Timestamp, latest: Timestamp },
}

fn timestamp(unix_ms: i64) -> Timestamp {
    Timestamp::from_millisecond(unix_ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn time_zone(location: &Location) -> TimeZone {
    location.time_zone.zone().clone()
}

/// The first instant at or after `after` whose local time in `zone` is `minutes` after midnight.
/// A local time that occurs twice (the hour repeated when summer time ends) is tried at both
/// instants; one that does not occur (the hour skipped when it begins) is taken an hour later, as
/// the clocks show it.
pub fn next_local_time(zone: &TimeZone, after: Timestamp, minutes: u16) -> Timestamp {
    let local = after.to_zoned(zone.clone());
    let date = local.date();
    for days in 0..3 {
        let Ok(day) = date.checked_add(days.days()) else { break };
        let time = jiff::civil::Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).unwrap_or_default();
        let occurrences = zone.to_ambiguous_zoned(day.to_datetime(time));
        // `compatible`: the first instant of a repeated time, the later one of a skipped time.
        for candidate in [occurrences.clone().compatible(), occurrences.later()].into_iter().flatten() {
            if candidate.timestamp() >= after {
                return candidate.timestamp();
            }
        }
    }
    after
}

/// The local time of `at` in `zone`, to the nanosecond: a cut-off at 16:00 has passed at
/// 16:00:30.
fn local_time(zone: &TimeZone, at: Timestamp) -> jiff::civil::Time {
    at.to_zoned(zone.clone()).time()
}

/// The time of day `minutes` after midnight.
fn time_of_day(minutes: u16) -> jiff::civil::Time {
    jiff::civil::Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).unwrap_or_default()
}

/// The cut-off a site applies to a service, if it offers it.
pub fn cutoff(site: &Location, service: Service) -> Option<LocalTime> {
    let own = site.cutoffs.iter().find(|(offered, _)| *offered == service).map(|(_, time)| *time);
    match (own, service) {
        (Some(time), _) => Some(time),
        (None, Service::Standard) => site.cutoffs.iter().map(|(_, time)| *time).max(),
        (None, _) => None,
    }
}

/// When an order placed at `placed` is packed and ready at `site`: (picking starts, ready).
pub fn ready_at(site: &Location, service: Service, placed_unix_ms: i64) -> Result<(i64, i64), NoRoute> {
    let zone = time_zone(site);
    let cutoff = cutoff(site, service).ok_or(NoRoute::NoCutoff(service.name()))?;
    let placed = timestamp(placed_unix_ms);
    let local = local_time(&zone, placed);
    let start = if local > time_of_day(cutoff.minutes_after_midnight()) {
        // Tomorrow's start (in the site's zone, whatever its offset does overnight).
        let tomorrow = placed.to_zoned(zone.clone()).date().tomorrow().unwrap_or(placed.to_zoned(zone.clone()).date());
        let midnight = tomorrow.to_zoned(zone.clone()).map(|zoned| zoned.timestamp()).unwrap_or(placed);
        next_local_time(&zone, midnight, WORKDAY_START)
    } else if local < time_of_day(WORKDAY_START) {
        next_local_time(&zone, placed, WORKDAY_START)
    } else {
        placed
    };
    let ready = start + SignedDuration::from_mins(i64::from(site.pick_pack_lead_minutes));
    Ok((start.as_millisecond(), ready.as_millisecond()))
}

fn last_mile(site: &Location, destination: &Destination, ready: Timestamp) -> Result<(i64, f64, i64), NoRoute> {
    let zone = time_zone(site);
    let km = site.coordinates.great_circle_km(&destination.coordinates) * ROAD_FACTOR;
    let local = local_time(&zone, ready);
    let departure = if (time_of_day(LAST_MILE_FIRST_DEPARTURE)..=time_of_day(LAST_MILE_LAST_DEPARTURE)).contains(&local)
    {
        ready
    } else {
        next_local_time(&zone, ready, LAST_MILE_FIRST_DEPARTURE)
    };
    let drive_minutes = (km / LAST_MILE_SPEED_KM_PER_H * 60.0).ceil() as i64;
    let promised = departure + SignedDuration::from_mins(drive_minutes + LAST_MILE_WINDOW_MINUTES);
    // A promise is told in whole minutes: a van leaving the moment the order is ready (to the
    // millisecond) promises the minute after.
    let promised_unix_ms = minute_at_or_after(promised.as_millisecond());
    Ok((departure.as_millisecond(), km, promised_unix_ms))
}

/// The first whole minute at or after `unix_ms`.
fn minute_at_or_after(unix_ms: i64) -> i64 {
    const MINUTE_MS: i64 = 60_000;
    match unix_ms.rem_euclid(MINUTE_MS) {
        0 => unix_ms,
        past => unix_ms - past + MINUTE_MS,
    }
}

fn lane_carries(lane: &Lane, classes: &[TemperatureClass]) -> bool {
    classes.iter().all(|class| lane.temperature_classes.contains(&class.name()))
}

/// The latest a service allows delivery for an order placed at `placed`, in the destination's zone.
pub fn service_bound(service: Service, placed_unix_ms: i64, destination: &TimeZone) -> Timestamp {
    let placed = timestamp(placed_unix_ms);
    let end_of_day = |days: i64| {
        let date = placed.to_zoned(destination.clone()).date();
        date.checked_add((days + 1).days())
            .ok()
            .and_then(|next| next.to_zoned(destination.clone()).ok())
            .map(|zoned| zoned.timestamp() - SignedDuration::from_millis(1))
            .unwrap_or(placed)
    };
    match service {
        Service::Express12h => placed + SignedDuration::from_hours(12),
        Service::SameDay => end_of_day(0),
        Service::NextDay => end_of_day(1),
        Service::Standard => placed
            .to_zoned(destination.clone())
            .checked_add(STANDARD_DAYS_MAX.days())
            .map(|zoned| zoned.timestamp())
            .unwrap_or(placed + SignedDuration::from_hours(24 * STANDARD_DAYS_MAX)),
    }
}

/// What a promise is asked for.
#[derive(Debug, Clone)]
pub struct PromiseRequest<'a> {
    pub destination: &'a Destination,
    pub service: Service,
    pub placed_unix_ms: i64,
    pub latest_delivery_unix_ms: Option<i64>,
    /// Temperature classes the shipment holds (lanes must carry them all).
    pub classes: &'a [TemperatureClass],
    /// The latest the service allows: [`service_bound`] of the service, the time placed and the
    /// destination's zone (the same for every site, so computed once per order).
    pub service_bound: Timestamp,
}

/// The network a promise is computed on: sites sorted by GLN (looked up by binary search), and
/// lanes in any order.
#[derive(Debug, Clone, Copy)]
pub struct NetworkView<'a> {
    pub sites: &'a [Location],
    pub lanes: &'a [Lane],
}

impl NetworkView<'_> {
    pub fn site(&self, gln: &gs1::Gln) -> Option<&Location> {
        self.site_index(gln).map(|index| &self.sites[index])
    }

    /// The index of a site in `sites` (which are in GLN order).
    pub fn site_index(&self, gln: &gs1::Gln) -> Option<usize> {
        debug_assert!(
            self.sites.windows(2).all(|pair| pair[0].gln.as_str() <= pair[1].gln.as_str()),
            "sites sorted by GLN"
        );
        self.sites.binary_search_by(|site| site.gln.as_str().cmp(gln.as_str())).ok()
    }
}

/// The lowest cost of any way from `site` to the destination that carries `classes`, whatever
/// the clock (a lower bound of the cost of every one of [`routes`]); `None` if there is no way at all.
pub fn cheapest_cost(
    network: NetworkView<'_>,
    site: &Location,
    destination: &Destination,
    classes: &[TemperatureClass],
) -> Option<u64> {
    let last_mile = |from: &Location| {
        let km = from.coordinates.great_circle_km(&destination.coordinates);
        (km <= LAST_MILE_REACH_KM).then(|| (km * ROAD_FACTOR * LAST_MILE_COST_CENTS_PER_KM).round() as u64)
    };
    let direct = last_mile(site).map(|cost| SHIPMENT_COST_CENTS + cost);
    let via_lanes = network
        .lanes
        .iter()
        .filter(|lane| lane.from == site.gln && lane_carries(lane, classes) && !lane.departures.is_empty())
        .filter_map(|lane| {
            let hub = network.site(&lane.to)?;
            last_mile(hub).map(|cost| SHIPMENT_COST_CENTS + lane.cost_per_pallet_cents + cost)
        })
        .min();
    direct.into_iter().chain(via_lanes).min()
}

/// Every way from `site` to the destination that meets the service's bound and the latest
/// delivery, cheapest first, then the earliest, then by lane (a van from the site itself first):
/// a van from the site may cost less than a lane to a depot nearer the destination, and still be
/// in time. Never empty: when no way is in time, the earliest way's miss is the reason.
pub fn routes(network: NetworkView<'_>, site: &Location, request: &PromiseRequest<'_>) -> Result<Vec<Route>, NoRoute> {
    let (pick_from, ready) = ready_at(site, request.service, request.placed_unix_ms)?;
    let destination = request.destination;
    let in_time = |route: &Route| {
        route.promised_by_unix_ms <= request.service_bound.as_millisecond()
            && request.latest_delivery_unix_ms.is_none_or(|latest| route.promised_by_unix_ms <= latest)
    };
    // The ways in time, and the earliest promise of all (told when none is in time).
    let mut in_time_routes: Vec<Route> = Vec::new();
    let mut earliest_unix_ms: Option<i64> = None;
    let mut consider = |candidate: Route| {
        earliest_unix_ms = Some(
            earliest_unix_ms
                .map_or(candidate.promised_by_unix_ms, |earliest| earliest.min(candidate.promised_by_unix_ms)),
        );
        if in_time(&candidate) {
            in_time_routes.push(candidate);
        }
    };
    if site.coordinates.great_circle_km(&destination.coordinates) <= LAST_MILE_REACH_KM {
        let (departure, km, promised) = last_mile(site, destination, timestamp(ready))?;
        consider(Route {
            pick_from_unix_ms: pick_from,
            ready_unix_ms: ready,
            line_haul: None,
            delivering_site: site.gln.clone(),
            last_mile_departure_unix_ms: departure,
            last_mile_km: km,
            promised_by_unix_ms: promised,
            cost_cents: SHIPMENT_COST_CENTS + (km * LAST_MILE_COST_CENTS_PER_KM).round() as u64,
        });
    }
    let origin_zone = time_zone(site);
    for lane in network.lanes.iter().filter(|lane| lane.from == site.gln) {
        let Some(hub) = network.site(&lane.to) else { continue };
        let hub_km = hub.coordinates.great_circle_km(&destination.coordinates);
        // A pickup point runs no deliveries: a lane to one serves only orders collected there.
        let delivers_from_hub = hub.kind != LocationKind::PickupPoint || hub_km <= PICKUP_POINT_SAME_PLACE_KM;
        if hub_km > LAST_MILE_REACH_KM || !delivers_from_hub || !lane_carries(lane, request.classes) {
            continue;
        }
        let Some(departure) = lane
            .departures
            .iter()
            .map(|time| next_local_time(&origin_zone, timestamp(ready), time.minutes_after_midnight()))
            .min()
        else {
            continue;
        };
        let arrival = departure + SignedDuration::from_mins(i64::from(lane.transit_minutes));
        let cross_docked = arrival + SignedDuration::from_mins(i64::from(hub.pick_pack_lead_minutes));
        let (last_departure, km, promised) = last_mile(hub, destination, cross_docked)?;
        consider(Route {
            pick_from_unix_ms: pick_from,
            ready_unix_ms: ready,
            line_haul: Some((lane.lane_id.clone(), departure.as_millisecond())),
            delivering_site: hub.gln.clone(),
            last_mile_departure_unix_ms: last_departure,
            last_mile_km: km,
            promised_by_unix_ms: promised,
            cost_cents: SHIPMENT_COST_CENTS
                + lane.cost_per_pallet_cents
                + (km * LAST_MILE_COST_CENTS_PER_KM).round() as u64,
        });
    }
    if !in_time_routes.is_empty() {
        fn lane(route: &Route) -> Option<&str> {
            route.line_haul.as_ref().map(|(lane, _)| lane.as_str())
        }
        in_time_routes.sort_by(|a, b| {
            (a.cost_cents, a.promised_by_unix_ms, lane(a)).cmp(&(b.cost_cents, b.promised_by_unix_ms, lane(b)))
        });
        return Ok(in_time_routes);
    }
    let earliest_unix_ms = earliest_unix_ms.ok_or_else(|| {
        NoRoute::NoLane(request.classes.iter().map(|class| class.name()).collect::<Vec<_>>().join(", "))
    })?;
    let earliest = timestamp(earliest_unix_ms);
    let bound = request.service_bound;
    if earliest > bound {
        return Err(NoRoute::ServiceMissed { service: request.service.name(), earliest, bound });
    }
    let latest = request.latest_delivery_unix_ms.map(timestamp).unwrap_or(bound);
    Err(NoRoute::TooLate { earliest, latest })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(cutoff: &str) -> Location {
        Location {
            gln: gs1::Gln::parse("8712345000011").unwrap(),
            kind: network::LocationKind::Warehouse,
            name: "DC".into(),
            address: network::Address::default(),
            country: network::Country::parse("NL").unwrap(),
            coordinates: Coordinates::new(52.35, 4.8).unwrap(),
            time_zone: network::TimeZoneName::parse("Europe/Amsterdam").unwrap(),
            zones: Vec::new(),
            cutoffs: vec![(Service::NextDay, LocalTime::parse(cutoff).unwrap())],
            pick_pack_lead_minutes: 60,
            party_id: None,
        }
    }

    fn local(text: &str) -> i64 {
        let civil: jiff::civil::DateTime = text.parse().unwrap();
        civil.to_zoned(TimeZone::get("Europe/Amsterdam").unwrap()).unwrap().timestamp().as_millisecond()
    }

    /// When summer time ends in Amsterdam (25 October 2026, 03:00 CEST → 02:00 CET) 02:30 occurs
    /// twice: past the first, a 02:30 departure is the second, not the next day's. When it begins
    /// (29 March 2026, 02:00 CET → 03:00 CEST) 02:30 does not occur: the clocks show 03:30.
    #[test]
    fn local_times_across_the_changes_of_summer_time() {
        let zone = TimeZone::get("Europe/Amsterdam").unwrap();
        let next = |after: &str| next_local_time(&zone, after.parse().unwrap(), 2 * 60 + 30).to_string();
        assert_eq!(next("2026-10-25T00:20:00Z"), "2026-10-25T00:30:00Z", "02:30 CEST");
        assert_eq!(next("2026-10-25T00:40:00Z"), "2026-10-25T01:30:00Z", "02:30 CET, the same morning");
        assert_eq!(next("2026-10-25T01:40:00Z"), "2026-10-26T01:30:00Z", "the next day's");
        assert_eq!(next("2026-03-29T00:00:00Z"), "2026-03-29T01:30:00Z", "03:30 CEST");
        assert_eq!(next("2026-07-01T01:00:00Z"), "2026-07-02T00:30:00Z", "a plain summer day");
    }

    #[test]
    fn after_the_cut_off_picking_starts_the_next_morning_even_a_minute_before_midnight() {
        let site = site("16:00");
        for placed in [
            "2026-12-01T16:00:01",
            "2026-12-01T16:00:59",
            "2026-12-01T16:01:00",
            "2026-12-01T23:59:30",
            "2026-12-01T20:00:00",
        ] {
            let (start, ready) = ready_at(&site, Service::NextDay, local(placed)).unwrap();
            assert_eq!(start, local("2026-12-02T06:00:00"), "{placed}");
            assert_eq!(ready, local("2026-12-02T07:00:00"));
        }
        // Before the cut-off (16:00:00 itself included): at once (from 06:00); before 06:00: at
        // 06:00 the same day.
        assert_eq!(
            ready_at(&site, Service::NextDay, local("2026-12-01T16:00:00")).unwrap().0,
            local("2026-12-01T16:00:00")
        );
        assert_eq!(
            ready_at(&site, Service::NextDay, local("2026-12-01T10:00:00")).unwrap().0,
            local("2026-12-01T10:00:00")
        );
        assert_eq!(
            ready_at(&site, Service::NextDay, local("2026-12-01T02:00:00")).unwrap().0,
            local("2026-12-01T06:00:00")
        );
        // Over the change to summer time (29 March 2026, 02:00 → 03:00) the morning is still 06:00 local.
        assert_eq!(
            ready_at(&site, Service::NextDay, local("2026-03-28T23:00:00")).unwrap().0,
            local("2026-03-29T06:00:00")
        );
        assert_eq!(ready_at(&site, Service::SameDay, local("2026-12-01T10:00:00")), Err(NoRoute::NoCutoff("same_day")));
    }

    /// `standard` counts local days: placed at noon before the change to summer time (29 March
    /// 2026), it is due at noon local five dates on, an hour less than 5 × 24 h.
    #[test]
    fn standard_counts_local_days() {
        let amsterdam = TimeZone::get("Europe/Amsterdam").unwrap();
        let bound = service_bound(Service::Standard, local("2026-03-27T12:00:00"), &amsterdam);
        assert_eq!(bound.as_millisecond(), local("2026-04-01T12:00:00"));
        assert_eq!(local("2026-04-01T12:00:00") - local("2026-03-27T12:00:00"), (5 * 24 - 1) * 3_600_000);
        // In winter, five days are 5 × 24 h.
        let winter = service_bound(Service::Standard, local("2026-12-01T12:00:00"), &amsterdam);
        assert_eq!(winter.as_millisecond(), local("2026-12-06T12:00:00"));
    }

    #[test]
    fn a_van_leaving_when_the_order_is_ready_promises_a_whole_minute() {
        let site = site("16:00");
        let destination = Destination {
            coordinates: Coordinates::new(52.379, 4.9).unwrap(),
            time_zone: TimeZone::get("Europe/Amsterdam").unwrap(),
        };
        // Ready during the vans' day, at an odd millisecond: the van leaves then, the promise is
        // the next whole minute after the drive and the window.
        let ready = local("2026-12-01T10:00:00") + 12_345;
        let (departure, _, promised) = last_mile(&site, &destination, timestamp(ready)).unwrap();
        assert_eq!(departure, ready);
        assert_eq!(promised % 60_000, 0);
        assert!(promised > ready + LAST_MILE_WINDOW_MINUTES * 60_000 && promised - ready < 3 * 3_600_000, "{promised}");
        // Ready at night: the first van at 07:00, already a whole minute.
        let (departure, _, promised) = last_mile(&site, &destination, timestamp(local("2026-12-01T03:10:07"))).unwrap();
        assert_eq!(departure, local("2026-12-01T07:00:00"));
        assert_eq!(promised % 60_000, 0);
        // The last van leaves at 20:00: ready at 20:00:00 it goes, half a minute later it waits
        // for the morning.
        let last = local("2026-12-01T20:00:00");
        assert_eq!(last_mile(&site, &destination, timestamp(last)).unwrap().0, last);
        let missed = last_mile(&site, &destination, timestamp(last + 30_000)).unwrap().0;
        assert_eq!(missed, local("2026-12-02T07:00:00"));
        assert_eq!(minute_at_or_after(-1), 0);
        assert_eq!(minute_at_or_after(60_000), 60_000);
        assert_eq!(minute_at_or_after(60_001), 120_000);
    }
}
