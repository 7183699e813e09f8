//! Dispatch planning: skills, promises, capacity, shifts, plugged matrices, re-timing.

use dispatch::{
    Haversine, Matrix, MatrixError, PlanRequest, RemainingStop, Shipment, TravelMatrix, UnplannedReason, WaveVehicle,
    plan, project, shift_in_wave,
};
use jiff::tz::TimeZone;
use network::{Coordinates, LocalTime, Skill, Vehicle, VehicleId};
use proptest::prelude::*;
use std::time::Duration;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

fn depot() -> Coordinates {
    Coordinates::new(52.3105, 4.7683).unwrap()
}

fn vehicle(id: &str, capacity_units: u32, skills: &[Skill], speed_km_per_h: f64) -> Vehicle {
    Vehicle {
        vehicle_id: VehicleId::parse(id).unwrap(),
        depot: gs1::Gln::parse("8712345000011").unwrap(),
        name: id.to_owned(),
        courier_name: None,
        courier_key_id: None,
        capacity_units,
        skills: skills.to_vec(),
        shift_start: LocalTime::parse("06:00").unwrap(),
        shift_end: LocalTime::parse("22:00").unwrap(),
        speed_km_per_h,
        fixed_cost_cents: 2000,
        cost_per_km_cents: 40,
        cost_per_hour_cents: 2500,
    }
}

fn on_shift(vehicle: &Vehicle, wave: i64, hours: i64) -> WaveVehicle<'_> {
    WaveVehicle { vehicle, available_from_unix_ms: wave, available_until_unix_ms: wave + hours * HOUR_MS }
}

/// Points around Amsterdam, `index` spreading them over a few kilometres.
fn around(index: usize) -> Coordinates {
    let angle = index as f64 * 2.399;
    let radius = 0.02 + 0.004 * (index % 7) as f64;
    Coordinates::new(52.37 + radius * angle.sin(), 4.89 + 1.6 * radius * angle.cos()).unwrap()
}

fn shipment(index: usize, units: u32, skill: Option<Skill>, due_by_unix_ms: i64) -> Shipment {
    Shipment {
        coordinates: around(index),
        demand_units: units,
        skills: skill.into_iter().collect(),
        due_by_unix_ms,
        service_seconds: 180,
        group: index as u64,
    }
}

fn request<'a>(vehicles: Vec<WaveVehicle<'a>>, shipments: &'a [Shipment], wave: i64) -> PlanRequest<'a> {
    PlanRequest {
        depot: depot(),
        wave_unix_ms: wave,
        vehicles,
        shipments,
        allow_late: false,
        seed: 7,
        time_limit: Duration::from_secs(2),
        iteration_limit: Some(300),
    }
}

const WAVE: i64 = 1_796_104_800_000; // 2026-12-02T07:00:00Z

#[test]
fn chilled_goods_ride_the_reefer_and_every_promise_is_kept() {
    let van = vehicle("van-1", 40, &[Skill::Reefer], 30.0);
    let bike = vehicle("bike-1", 10, &[], 18.0);
    let mut shipments = Vec::new();
    for index in 0..6 {
        shipments.push(shipment(index, 3, Some(Skill::Reefer), WAVE + 3 * HOUR_MS));
    }
    for index in 6..10 {
        shipments.push(shipment(index, 2, None, WAVE + 3 * HOUR_MS));
    }
    let vehicles = vec![on_shift(&van, WAVE, 10), on_shift(&bike, WAVE, 10)];
    let planned = plan(&request(vehicles.clone(), &shipments, WAVE), &Haversine::default()).unwrap();
    assert!(planned.unplanned.is_empty(), "{:?}", planned.unplanned);
    let mut seen = vec![0; shipments.len()];
    let mut total_m = 0.0;
    for route in &planned.routes {
        let vehicle = vehicles[route.vehicle].vehicle;
        let load: u32 = route.stops.iter().map(|stop| shipments[stop.shipment].demand_units).sum();
        assert!(load <= vehicle.capacity_units);
        let mut previous_arrival = route.departure_unix_ms;
        for stop in &route.stops {
            seen[stop.shipment] += 1;
            if shipments[stop.shipment].skills.contains(&Skill::Reefer) {
                assert!(vehicle.has(Skill::Reefer), "chilled shipment {} on {}", stop.shipment, vehicle.name);
            }
            assert!(!stop.late && stop.arrival_unix_ms <= shipments[stop.shipment].due_by_unix_ms);
            assert!(stop.arrival_unix_ms >= previous_arrival + (stop.leg_s * 1000.0) as i64 - 1);
            previous_arrival = stop.arrival_unix_ms + (stop.service_s * 1000.0) as i64;
        }
        assert!(route.return_unix_ms > previous_arrival);
        total_m += route.distance_m;
    }
    assert_eq!(seen, vec![1; shipments.len()], "each shipment on exactly one route");
    assert!((total_m - planned.distance_m).abs() < 1e-6, "the routes' legs add up to the evaluator's distance");
}

#[test]
fn shipments_that_cannot_go_say_why() {
    let van = vehicle("van-1", 10, &[Skill::Reefer], 30.0);
    let shipments = vec![
        shipment(0, 2, Some(Skill::Freezer), WAVE + 3 * HOUR_MS),
        shipment(1, 11, None, WAVE + 3 * HOUR_MS),
        // Due five minutes after the wave, more than five minutes' drive away.
        shipment(2, 1, None, WAVE + 5 * MINUTE_MS),
        shipment(3, 8, Some(Skill::Reefer), WAVE + 3 * HOUR_MS),
        shipment(4, 8, Some(Skill::Reefer), WAVE + 3 * HOUR_MS),
    ];
    let planned = plan(&request(vec![on_shift(&van, WAVE, 10)], &shipments, WAVE), &Haversine::default()).unwrap();
    let reasons: Vec<(usize, UnplannedReason)> = planned.unplanned.clone();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(reasons[0], (0, UnplannedReason::MissingSkill));
    assert_eq!(reasons[1], (1, UnplannedReason::CapacityExceeded));
    assert_eq!(reasons[2], (2, UnplannedReason::PromiseUnreachable));
    assert!(
        matches!(reasons[3], (3 | 4, UnplannedReason::FleetFull)),
        "one van of 10 units takes one of two 8-unit shipments: {reasons:?}"
    );
    assert_eq!(planned.routes.len(), 1);
    assert_eq!(planned.routes[0].stops.len(), 1);

    // Allowing late deliveries plans the unreachable one, marked late.
    let mut late = request(vec![on_shift(&van, WAVE, 10)], &shipments[2..3], WAVE);
    late.allow_late = true;
    let planned = plan(&late, &Haversine::default()).unwrap();
    assert!(planned.unplanned.is_empty());
    let stop = &planned.routes[0].stops[0];
    assert!(stop.late && stop.arrival_unix_ms > shipments[2].due_by_unix_ms);
}

#[test]
fn a_late_shipment_goes_as_soon_as_the_fleet_can_not_when_it_is_cheapest() {
    // The van is on shift now and costs more; the bike costs nothing but starts ten hours on.
    let van = vehicle("van-1", 10, &[], 30.0);
    let mut bike = vehicle("bike-1", 10, &[], 30.0);
    (bike.fixed_cost_cents, bike.cost_per_km_cents, bike.cost_per_hour_cents) = (0, 0, 0);
    let later = WaveVehicle {
        vehicle: &bike,
        available_from_unix_ms: WAVE + 10 * HOUR_MS,
        available_until_unix_ms: WAVE + 14 * HOUR_MS,
    };
    // Due five minutes after the wave, more than five minutes' drive away: late whatever goes.
    let shipments = vec![shipment(2, 1, None, WAVE + 5 * MINUTE_MS)];
    let mut late = request(vec![on_shift(&van, WAVE, 10), later], &shipments, WAVE);
    late.allow_late = true;
    let planned = plan(&late, &Haversine::default()).unwrap();
    assert!(planned.unplanned.is_empty(), "{:?}", planned.unplanned);
    assert_eq!(planned.routes.len(), 1);
    assert_eq!(planned.routes[0].vehicle, 0, "the van, now: {:?}", planned.routes);
    let stop = &planned.routes[0].stops[0];
    assert!(stop.late && stop.arrival_unix_ms <= WAVE + HOUR_MS + 2 * HOUR_MS, "{stop:?}");
}

#[test]
fn a_wave_without_vehicles_or_with_too_many_shipments_is_refused() {
    let shipments = vec![shipment(0, 1, None, WAVE + HOUR_MS)];
    assert_eq!(
        plan(&request(Vec::new(), &shipments, WAVE), &Haversine::default()),
        Err(dispatch::PlanError::NoVehicle)
    );
    let van = vehicle("van-1", 10, &[], 30.0);
    let many = vec![shipment(0, 1, None, WAVE + HOUR_MS); dispatch::plan::SHIPMENTS_PER_WAVE_MAX + 1];
    assert!(matches!(
        plan(&request(vec![on_shift(&van, WAVE, 10)], &many, WAVE), &Haversine::default()),
        Err(dispatch::PlanError::TooManyShipments { .. })
    ));
}

/// A road-network table stand-in: Haversine, except that one destination is behind a slow bridge.
struct SlowBridge {
    slow_point: usize,
}

impl TravelMatrix for SlowBridge {
    fn matrix(&self, points: &[Coordinates], speed_km_per_h: f64) -> Result<Matrix, MatrixError> {
        let base = Haversine::default().matrix(points, speed_km_per_h)?;
        let size = points.len();
        let mut distance = Vec::new();
        let mut time = Vec::new();
        for from in 0..size {
            for to in 0..size {
                let penalty =
                    if from != to && (from == self.slow_point || to == self.slow_point) { 1800.0 } else { 0.0 };
                distance.push(base.distance_m(from, to));
                time.push(base.time_s(from, to) + penalty);
            }
        }
        Matrix::new(size, distance, time)
    }
}

#[test]
fn a_plugged_matrix_decides_the_times() {
    let van = vehicle("van-1", 40, &[], 30.0);
    let shipments: Vec<Shipment> = (0..4).map(|index| shipment(index, 1, None, WAVE + 4 * HOUR_MS)).collect();
    let vehicles = vec![on_shift(&van, WAVE, 10)];
    let fast = plan(&request(vehicles.clone(), &shipments, WAVE), &Haversine::default()).unwrap();
    let slow = plan(&request(vehicles, &shipments, WAVE), &SlowBridge { slow_point: 2 }).unwrap();
    let leg_to = |planned: &dispatch::Plan, shipment: usize| {
        planned.routes[0].stops.iter().find(|stop| stop.shipment == shipment).map(|stop| stop.leg_s).unwrap()
    };
    assert!(leg_to(&slow, 1) >= leg_to(&fast, 1) + 1800.0 - 1e-6, "shipment 1 sits at matrix point 2");
    assert!(slow.routes[0].return_unix_ms >= fast.routes[0].return_unix_ms + 2 * 1_800_000 - 1000);
    // A provider answering the wrong size is refused.
    struct Wrong;
    impl TravelMatrix for Wrong {
        fn matrix(&self, _: &[Coordinates], _: f64) -> Result<Matrix, MatrixError> {
            Matrix::new(1, vec![0.0], vec![0.0])
        }
    }
    let van = vehicle("van-1", 40, &[], 30.0);
    assert!(matches!(
        plan(&request(vec![on_shift(&van, WAVE, 10)], &shipments, WAVE), &Wrong),
        Err(dispatch::PlanError::Matrix(MatrixError::Size { .. }))
    ));
}

#[test]
fn shifts_are_read_in_the_depot_time_zone() {
    let amsterdam = TimeZone::get("Europe/Amsterdam").unwrap();
    let at = |text: &str| -> i64 {
        let civil: jiff::civil::DateTime = text.parse().unwrap();
        civil.to_zoned(amsterdam.clone()).unwrap().timestamp().as_millisecond()
    };
    let day = vehicle("van-1", 10, &[], 30.0); // 06:00–22:00
    assert_eq!(
        shift_in_wave(&day, &amsterdam, at("2026-12-02T10:00")),
        Some((at("2026-12-02T10:00"), at("2026-12-02T22:00")))
    );
    assert_eq!(
        shift_in_wave(&day, &amsterdam, at("2026-12-02T04:30")),
        Some((at("2026-12-02T06:00"), at("2026-12-02T22:00"))),
        "before the shift the vehicle leaves at its start"
    );
    assert_eq!(shift_in_wave(&day, &amsterdam, at("2026-12-02T22:30")), None, "off for the rest of the day");
    let mut night = day.clone();
    night.shift_start = LocalTime::parse("22:00").unwrap();
    night.shift_end = LocalTime::parse("06:00").unwrap();
    assert_eq!(
        shift_in_wave(&night, &amsterdam, at("2026-12-03T02:00")),
        Some((at("2026-12-03T02:00"), at("2026-12-03T06:00"))),
        "a night shift that began the evening before"
    );
    assert_eq!(
        shift_in_wave(&night, &amsterdam, at("2026-12-02T15:00")),
        Some((at("2026-12-02T22:00"), at("2026-12-03T06:00")))
    );
}

#[test]
fn a_courier_behind_schedule_puts_later_promises_at_risk() {
    let remaining = [
        RemainingStop { leg_s: 600.0, service_s: 120.0, due_by_unix_ms: WAVE + 30 * MINUTE_MS },
        RemainingStop { leg_s: 600.0, service_s: 120.0, due_by_unix_ms: WAVE + 40 * MINUTE_MS },
    ];
    // Left at the wave, checked at once: 10 and 22 minutes, both kept.
    let on_time = project(WAVE, WAVE, &remaining);
    assert_eq!(on_time[0].arrival_unix_ms, WAVE + 10 * MINUTE_MS);
    assert_eq!(on_time[1].arrival_unix_ms, WAVE + 22 * MINUTE_MS);
    assert!(on_time.iter().all(|stop| !stop.at_risk));
    // Left at 15 min: 25 and 37 (kept). Left at 19: 29 and 41 (the second, due at 40, at risk).
    let late = project(WAVE + 15 * MINUTE_MS, WAVE + 15 * MINUTE_MS, &remaining);
    assert_eq!(late[1].arrival_unix_ms, WAVE + 37 * MINUTE_MS);
    assert!(!late[0].at_risk && !late[1].at_risk);
    let later = project(WAVE + 19 * MINUTE_MS, WAVE + 19 * MINUTE_MS, &remaining);
    assert_eq!(later[0].arrival_unix_ms, WAVE + 29 * MINUTE_MS);
    assert!(!later[0].at_risk && later[1].at_risk);
    // Left at the wave but not there at 25 minutes: the first stop is expected now at the
    // earliest (25, at risk? no, due 30), the second 12 minutes later (37).
    let stuck = project(WAVE + 25 * MINUTE_MS, WAVE, &remaining);
    assert_eq!(stuck[0].arrival_unix_ms, WAVE + 25 * MINUTE_MS);
    assert_eq!(stuck[1].arrival_unix_ms, WAVE + 37 * MINUTE_MS);
    assert!(project(WAVE, WAVE, &[]).is_empty());
}

#[test]
fn an_order_goes_whole_or_waits() {
    let van = vehicle("van-1", 40, &[Skill::Reefer], 30.0);
    let mut shipments: Vec<Shipment> = (0..4).map(|index| shipment(index, 2, None, WAVE + 3 * HOUR_MS)).collect();
    // Shipments 1 and 2 are one order; 2 needs a freezer nobody has.
    shipments[2].skills = vec![Skill::Freezer];
    shipments[2].group = 1;
    let planned = plan(&request(vec![on_shift(&van, WAVE, 10)], &shipments, WAVE), &Haversine::default()).unwrap();
    assert_eq!(planned.unplanned, vec![(1, UnplannedReason::GroupIncomplete), (2, UnplannedReason::MissingSkill)]);
    let planned_shipments: Vec<usize> = planned.routes[0].stops.iter().map(|stop| stop.shipment).collect();
    assert_eq!(planned_shipments.len(), 2);
    assert!(!planned_shipments.contains(&1));
}

#[test]
fn each_route_is_timed_at_its_vehicle_speed() {
    let van = vehicle("van-1", 40, &[Skill::Reefer], 36.0);
    let bike = vehicle("bike-1", 40, &[], 18.0);
    let mut shipments: Vec<Shipment> = (0..6).map(|index| shipment(index, 1, None, WAVE + 4 * HOUR_MS)).collect();
    for shipment in &mut shipments[..3] {
        shipment.skills = vec![Skill::Reefer];
    }
    let vehicles = vec![on_shift(&van, WAVE, 10), on_shift(&bike, WAVE, 10)];
    let planned = plan(&request(vehicles.clone(), &shipments, WAVE), &Haversine::default()).unwrap();
    assert!(planned.unplanned.is_empty());
    for route in &planned.routes {
        let metres_per_second = vehicles[route.vehicle].vehicle.speed_km_per_h / 3.6;
        for stop in &route.stops {
            assert!((stop.leg_s - stop.leg_m / metres_per_second).abs() < 1e-6, "{stop:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the wave, a plan keeps skills, capacities and promises, and accounts for every
    /// shipment exactly once.
    #[test]
    fn plans_keep_skills_capacities_and_promises(
        specs in proptest::collection::vec((1u32..12, 0usize..3, 20i64..300), 1..25),
        vans in 1usize..3,
        bikes in 0usize..3,
        seed in 0u64..1000,
    ) {
        let mut fleet = Vec::new();
        for index in 0..vans {
            fleet.push(vehicle(&format!("van-{index}"), 30, &[Skill::Reefer], 30.0));
        }
        for index in 0..bikes {
            fleet.push(vehicle(&format!("bike-{index}"), 12, &[], 18.0));
        }
        let shipments: Vec<Shipment> = specs
            .iter()
            .enumerate()
            .map(|(index, (units, skill, due_minutes))| {
                let skill = [None, Some(Skill::Reefer), Some(Skill::Freezer)][*skill];
                shipment(index, *units, skill, WAVE + due_minutes * MINUTE_MS)
            })
            .collect();
        let vehicles: Vec<WaveVehicle<'_>> = fleet.iter().map(|vehicle| on_shift(vehicle, WAVE, 8)).collect();
        let mut wave = request(vehicles.clone(), &shipments, WAVE);
        wave.seed = seed;
        wave.iteration_limit = Some(100);
        let planned = plan(&wave, &Haversine::default()).unwrap();
        let mut seen = vec![0; shipments.len()];
        for route in &planned.routes {
            let vehicle = vehicles[route.vehicle].vehicle;
            let load: u32 = route.stops.iter().map(|stop| shipments[stop.shipment].demand_units).sum();
            prop_assert!(load <= vehicle.capacity_units);
            prop_assert!(route.return_unix_ms <= vehicles[route.vehicle].available_until_unix_ms + 1);
            for stop in &route.stops {
                seen[stop.shipment] += 1;
                prop_assert!(shipments[stop.shipment].skills.iter().all(|skill| vehicle.has(*skill)));
                prop_assert!(stop.arrival_unix_ms <= shipments[stop.shipment].due_by_unix_ms + 1);
                prop_assert!(!stop.late);
            }
        }
        for (index, reason) in &planned.unplanned {
            seen[*index] += 1;
            if shipments[*index].skills.contains(&Skill::Freezer) {
                prop_assert_eq!(*reason, UnplannedReason::MissingSkill);
            }
        }
        prop_assert_eq!(seen, vec![1; shipments.len()]);
    }
}
