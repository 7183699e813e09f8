//! A dispatch wave as a routing problem, and its solution as planned routes.
//!
//! The problem, in the routing engine's terms:
//! - location 0 is the depot, location `i + 1` is shipment `i`'s destination;
//! - time is seconds after the wave, distance is metres (from a [`TravelMatrix`] at the speed of
//!   the slowest vehicle on shift: the engine takes one time table, and a plan that holds for the
//!   slowest vehicle holds for every faster one);
//! - each vehicle is a vehicle type of count 1, its shift clipped to the wave, its costs per
//!   metre and second from its cents per km and per hour;
//! - each shipment is a delivery with demand in units, the skill its temperature class needs and
//!   the window `[0, due]`: the promise's `promised_by`. A shipment no vehicle can reach by its
//!   promise is left out with [`UnplannedReason::PromiseUnreachable`], or, when the wave allows
//!   late deliveries, planned with the vehicles' shift end as its window and marked late.

use crate::matrix::{Matrix, MatrixError, TravelMatrix};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use network::{Coordinates, Skill, Vehicle};
use routing::{Job, JobKind, Objective, Problem, SolverConfig, Stop, TimeWindow, UnassignedReason, VehicleType};
use std::time::Duration;

/// Shipments one wave plans, at most.
pub const SHIPMENTS_PER_WAVE_MAX: usize = 2000;
/// The longest a wave may search.
pub const TIME_LIMIT_MAX: Duration = Duration::from_secs(30);

/// One shipment to deliver from the depot.
#[derive(Debug, Clone, PartialEq)]
pub struct Shipment {
    pub coordinates: Coordinates,
    pub demand_units: u32,
    /// The skills its goods' temperature classes need (sorted, no duplicates).
    pub skills: Vec<Skill>,
    /// The promise: delivered by then.
    pub due_by_unix_ms: i64,
    /// Time at the stop (parking, hand-over).
    pub service_seconds: u32,
    /// Shipments with the same group (an order's shipments from this depot) go in the same wave
    /// or not at all: when one cannot be planned, the others are left out too.
    pub group: u64,
}

/// A vehicle on shift in the wave: it may leave at `available_from_unix_ms` and must be back by
/// `available_until_unix_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaveVehicle<'a> {
    pub vehicle: &'a Vehicle,
    pub available_from_unix_ms: i64,
    pub available_until_unix_ms: i64,
}

/// The courier's shift around the wave, clipped to start no earlier than the wave: the shift that
/// contains the wave, or else the one starting later that local day. `None` when the vehicle is
/// off for the rest of the day. Shifts whose end is before their start run past midnight.
pub fn shift_in_wave(vehicle: &Vehicle, depot_zone: &TimeZone, wave_unix_ms: i64) -> Option<(i64, i64)> {
    let wave = Timestamp::from_millisecond(wave_unix_ms).ok()?;
    let date = wave.to_zoned(depot_zone.clone()).date();
    let at = |day: jiff::civil::Date, minutes: u16| -> Option<i64> {
        let civil = day.to_datetime(jiff::civil::Time::midnight()) + i64::from(minutes).minutes();
        Some(civil.to_zoned(depot_zone.clone()).ok()?.timestamp().as_millisecond())
    };
    let start_minutes = vehicle.shift_start.minutes_after_midnight();
    let end_minutes = vehicle.shift_end.minutes_after_midnight();
    let overnight = end_minutes < start_minutes;
    let mut candidates = Vec::new();
    for day in [date.yesterday().ok()?, date] {
        let start = at(day, start_minutes)?;
        let end_day = if overnight { day.tomorrow().ok()? } else { day };
        let end = at(end_day, end_minutes)?;
        candidates.push((start, end));
    }
    let starts_on_wave_date = |start: i64| {
        Timestamp::from_millisecond(start).is_ok_and(|start| start.to_zoned(depot_zone.clone()).date() == date)
    };
    candidates
        .into_iter()
        // The shift under way at the wave, or a later one that starts on the wave's local date.
        .filter(|&(start, end)| end > wave_unix_ms && (start <= wave_unix_ms || starts_on_wave_date(start)))
        .map(|(start, end)| (start.max(wave_unix_ms), end))
        .min()
}

/// How much later than the earliest arrival the fleet could make a late shipment (with
/// `allow_late`) may be planned: room to put it on a route with others, not hours later.
pub const LATE_SLACK: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct PlanRequest<'a> {
    pub depot: Coordinates,
    /// When the wave leaves: no route departs earlier.
    pub wave_unix_ms: i64,
    pub vehicles: Vec<WaveVehicle<'a>>,
    pub shipments: &'a [Shipment],
    /// Plan shipments that cannot be on time anyway (marked late), instead of leaving them out.
    pub allow_late: bool,
    pub seed: u64,
    pub time_limit: Duration,
    pub iteration_limit: Option<u64>,
}

/// A stop of a planned route.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStop {
    /// Index into the request's shipments.
    pub shipment: usize,
    pub arrival_unix_ms: i64,
    /// From the previous stop (or the depot).
    pub leg_m: f64,
    pub leg_s: f64,
    pub service_s: f64,
    /// Arrives after the promise.
    pub late: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRoute {
    /// Index into the request's vehicles.
    pub vehicle: usize,
    pub departure_unix_ms: i64,
    /// Back at the depot.
    pub return_unix_ms: i64,
    pub distance_m: f64,
    pub stops: Vec<PlannedStop>,
}

/// Why a shipment is not on any route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnplannedReason {
    /// No vehicle on shift has the skill its temperature class needs.
    MissingSkill,
    /// More units than any suitable vehicle holds.
    CapacityExceeded,
    /// No suitable vehicle can reach it by its promise within its shift.
    PromiseUnreachable,
    /// It fits a vehicle alone, but the vehicles on shift are full (or their shifts are).
    FleetFull,
    /// Another shipment of its group (its order) could not be planned; they go together.
    GroupIncomplete,
}

impl UnplannedReason {
    pub fn code(self) -> &'static str {
        match self {
            UnplannedReason::MissingSkill => "missing_skill",
            UnplannedReason::CapacityExceeded => "capacity_exceeded",
            UnplannedReason::PromiseUnreachable => "promise_unreachable",
            UnplannedReason::FleetFull => "fleet_full",
            UnplannedReason::GroupIncomplete => "group_incomplete",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub routes: Vec<PlannedRoute>,
    /// Shipment index and reason, by shipment index.
    pub unplanned: Vec<(usize, UnplannedReason)>,
    /// The routes' total cost in cents (fixed, per km, per hour) and distance in metres, each
    /// route timed at its vehicle's speed.
    pub cost_cents: f64,
    pub distance_m: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("a wave plans at most {max} shipments, found {found}")]
    TooManyShipments { max: usize, found: usize },
    #[error("no vehicle of the depot is on shift for this wave")]
    NoVehicle,
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    #[error("the routing problem is malformed: {0}")]
    Model(String),
    #[error("the engine returned a plan its evaluator refuses: {0}")]
    Infeasible(String),
}

fn seconds_after(wave_unix_ms: i64, unix_ms: i64) -> f64 {
    (unix_ms - wave_unix_ms) as f64 / 1000.0
}

fn unix_ms_at(wave_unix_ms: i64, seconds: f64) -> i64 {
    wave_unix_ms + (seconds * 1000.0).round() as i64
}

/// Times a route driven at one vehicle's matrix: leaves at `start_s`, never waits (every window
/// opens at the wave). Answers the stops, the distance and the return (seconds after the wave).
fn time_route(
    matrix: &Matrix,
    shipments: &[Shipment],
    visits: &[usize],
    wave_unix_ms: i64,
    start_s: f64,
) -> (Vec<PlannedStop>, f64, f64) {
    let mut clock_s = start_s;
    let mut previous = 0;
    let mut distance_m = 0.0;
    let mut stops = Vec::with_capacity(visits.len());
    for &shipment in visits {
        let location = shipment + 1;
        let leg_m = matrix.distance_m(previous, location);
        let leg_s = matrix.time_s(previous, location);
        clock_s += leg_s;
        distance_m += leg_m;
        let arrival_unix_ms = unix_ms_at(wave_unix_ms, clock_s);
        let service_s = f64::from(shipments[shipment].service_seconds);
        stops.push(PlannedStop {
            shipment,
            arrival_unix_ms,
            leg_m,
            leg_s,
            service_s,
            late: arrival_unix_ms > shipments[shipment].due_by_unix_ms,
        });
        clock_s += service_s;
        previous = location;
    }
    distance_m += matrix.distance_m(previous, 0);
    clock_s += matrix.time_s(previous, 0);
    (stops, distance_m, clock_s)
}

/// Plans a wave: builds the routing problem, solves it within the request's limits, and times
/// every stop at its vehicle's own speed.
pub fn plan(request: &PlanRequest<'_>, matrices: &dyn TravelMatrix) -> Result<Plan, PlanError> {
    let shipments = request.shipments;
    if shipments.len() > SHIPMENTS_PER_WAVE_MAX {
        return Err(PlanError::TooManyShipments { max: SHIPMENTS_PER_WAVE_MAX, found: shipments.len() });
    }
    let wave = request.wave_unix_ms;
    // Vehicles whose shift has time left after the wave, with their index in the request, and
    // the seconds after the wave they may leave and must be back.
    let on_shift: Vec<(usize, f64, f64)> = request
        .vehicles
        .iter()
        .enumerate()
        .map(|(index, vehicle)| {
            let from = seconds_after(wave, vehicle.available_from_unix_ms.max(wave));
            (index, from, seconds_after(wave, vehicle.available_until_unix_ms))
        })
        .filter(|(_, from, until)| until > from)
        .collect();
    if on_shift.is_empty() {
        return Err(PlanError::NoVehicle);
    }
    if shipments.is_empty() {
        return Ok(Plan { routes: Vec::new(), unplanned: Vec::new(), cost_cents: 0.0, distance_m: 0.0 });
    }
    let vehicle = |position: usize| request.vehicles[on_shift[position].0].vehicle;
    let mut points = Vec::with_capacity(shipments.len() + 1);
    points.push(request.depot);
    points.extend(shipments.iter().map(|shipment| shipment.coordinates));
    // One matrix per speed; the search drives at the slowest (it takes one time table).
    let mut speeds: Vec<f64> = (0..on_shift.len()).map(|position| vehicle(position).speed_km_per_h).collect();
    speeds.sort_by(f64::total_cmp);
    speeds.dedup();
    let mut by_speed = Vec::with_capacity(speeds.len());
    for speed in &speeds {
        let matrix = matrices.matrix(&points, *speed)?;
        if matrix.size() != points.len() {
            return Err(MatrixError::Size { size: points.len(), expected: points.len(), found: matrix.size() }.into());
        }
        by_speed.push(matrix);
    }
    let matrix_of = |position: usize| {
        let speed = vehicle(position).speed_km_per_h;
        &by_speed[speeds.iter().position(|candidate| *candidate == speed).unwrap_or(0)]
    };
    let matrix = &by_speed[0];

    // Shipments no suitable vehicle can reach by the promise are decided here, before the search.
    let suitable = |shipment: &Shipment, position: usize| {
        shipment.skills.iter().all(|skill| vehicle(position).has(*skill))
            && shipment.demand_units <= vehicle(position).capacity_units
    };
    let mut unplanned = Vec::new();
    let mut jobs = Vec::new();
    let mut job_shipment = Vec::new();
    for (index, shipment) in shipments.iter().enumerate() {
        let location = index + 1;
        let out = matrix.time_s(0, location);
        let back = matrix.time_s(location, 0);
        let service = f64::from(shipment.service_seconds);
        let candidates: Vec<usize> = (0..on_shift.len()).filter(|&position| suitable(shipment, position)).collect();
        let due = seconds_after(wave, shipment.due_by_unix_ms);
        let fits_shift = |position: usize| {
            let (_, from, until) = on_shift[position];
            from + out + service + back <= until
        };
        let on_time = candidates.iter().any(|&position| fits_shift(position) && on_shift[position].1 + out <= due);
        let window_end = if on_time {
            due
        } else if request.allow_late && candidates.iter().any(|&position| fits_shift(position)) {
            // Late, but as soon as the fleet can: within LATE_SLACK of the earliest arrival any
            // vehicle on shift could make (lateness has no price in the search, so a window to
            // the end of every shift would let a cheap vehicle deliver it hours later).
            let earliest = candidates
                .iter()
                .filter(|&&position| fits_shift(position))
                .map(|&position| on_shift[position].1 + out)
                .fold(f64::INFINITY, f64::min);
            let latest = candidates.iter().map(|&position| on_shift[position].2).fold(0.0, f64::max);
            (earliest + LATE_SLACK.as_secs_f64()).min(latest)
        } else {
            let skilled =
                (0..on_shift.len()).any(|position| shipment.skills.iter().all(|skill| vehicle(position).has(*skill)));
            let reason = if !skilled {
                UnplannedReason::MissingSkill
            } else if candidates.is_empty() {
                UnplannedReason::CapacityExceeded
            } else {
                UnplannedReason::PromiseUnreachable
            };
            unplanned.push((index, reason));
            continue;
        };
        job_shipment.push(index);
        jobs.push(Job {
            name: format!("shipment-{index}"),
            demand: vec![i64::from(shipment.demand_units)],
            skills: shipment.skills.iter().map(|skill| skill.name().to_owned()).collect(),
            kind: JobKind::Delivery {
                stop: Stop {
                    location,
                    service_time: service,
                    time_windows: vec![TimeWindow { start: 0.0, end: window_end }],
                    external_id: location,
                },
            },
        });
    }
    let vehicle_types: Vec<VehicleType> = on_shift
        .iter()
        .enumerate()
        .map(|(position, (_, from, until))| {
            let vehicle = vehicle(position);
            VehicleType {
                name: vehicle.vehicle_id.to_string(),
                count: 1,
                capacity: vec![i64::from(vehicle.capacity_units)],
                start_location: 0,
                end_location: 0,
                shift_start: *from,
                shift_end: *until,
                fixed_cost: f64::from(vehicle.fixed_cost_cents),
                cost_per_distance: f64::from(vehicle.cost_per_km_cents) / 1000.0,
                cost_per_time: f64::from(vehicle.cost_per_hour_cents) / 3600.0,
                skills: vehicle.skills.iter().map(|skill| skill.name().to_owned()).collect(),
            }
        })
        .collect();
    let problem = Problem::new("wave", vehicle_types, jobs, matrix.clone().into_travel())
        .map_err(|error| PlanError::Model(error.to_string()))?;
    let config = SolverConfig {
        seed: request.seed,
        time_limit: request.time_limit.min(TIME_LIMIT_MAX),
        iteration_limit: request.iteration_limit,
        objective: Objective::Cost,
        clock: None,
    };
    let result = routing::solve(&problem, &config);
    if !result.evaluation.is_feasible() {
        return Err(PlanError::Infeasible(format!("{:?}", result.evaluation.violations)));
    }
    for unassigned in &result.solution.unassigned {
        let reason = match unassigned.reason {
            UnassignedReason::MissingSkill => UnplannedReason::MissingSkill,
            UnassignedReason::CapacityExceeded => UnplannedReason::CapacityExceeded,
            UnassignedReason::TimeWindowUnreachable => UnplannedReason::PromiseUnreachable,
            UnassignedReason::NoFeasibleInsertion => UnplannedReason::FleetFull,
        };
        unplanned.push((job_shipment[unassigned.job], reason));
    }
    // A group goes whole or not at all: drop the planned members of incomplete groups. Dropping
    // a stop never makes a later one later (travel obeys the triangle inequality).
    let incomplete: std::collections::HashSet<u64> =
        unplanned.iter().map(|(index, _)| shipments[*index].group).collect();
    let mut routes = Vec::new();
    let mut cost_cents = 0.0;
    let mut distance_total_m = 0.0;
    for route in &result.solution.routes {
        let mut visits = Vec::with_capacity(route.visits.len());
        for visit in &route.visits {
            let shipment = job_shipment[visit.job];
            if incomplete.contains(&shipments[shipment].group) {
                unplanned.push((shipment, UnplannedReason::GroupIncomplete));
            } else {
                visits.push(shipment);
            }
        }
        if visits.is_empty() {
            continue;
        }
        let position = route.vehicle_type;
        let (_, from, _) = on_shift[position];
        let (stops, distance_m, return_s) = time_route(matrix_of(position), shipments, &visits, wave, from);
        let vehicle = vehicle(position);
        cost_cents += f64::from(vehicle.fixed_cost_cents)
            + distance_m * f64::from(vehicle.cost_per_km_cents) / 1000.0
            + (return_s - from) * f64::from(vehicle.cost_per_hour_cents) / 3600.0;
        distance_total_m += distance_m;
        routes.push(PlannedRoute {
            vehicle: on_shift[position].0,
            departure_unix_ms: unix_ms_at(wave, from),
            return_unix_ms: unix_ms_at(wave, return_s),
            distance_m,
            stops,
        });
    }
    unplanned.sort_by_key(|(index, _)| *index);
    Ok(Plan { routes, unplanned, cost_cents, distance_m: distance_total_m })
}

/// A stop still to visit, as planned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemainingStop {
    pub leg_s: f64,
    pub service_s: f64,
    pub due_by_unix_ms: i64,
}

/// A remaining stop's expected arrival from where the courier is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Projected {
    pub arrival_unix_ms: i64,
    /// Expected after the promise.
    pub at_risk: bool,
}

/// Re-times the rest of a route: the courier left the last point at `left_unix_ms` (the route's
/// start, or the last hand-over; the planned departure for a route not started) and is not
/// there yet at `now_unix_ms`, so each arrival is at least now; then the planned legs follow.
pub fn project(now_unix_ms: i64, left_unix_ms: i64, remaining: &[RemainingStop]) -> Vec<Projected> {
    let milliseconds = |seconds: f64| (seconds * 1000.0).round() as i64;
    let mut clock = left_unix_ms;
    let mut projected = Vec::with_capacity(remaining.len());
    for (index, stop) in remaining.iter().enumerate() {
        clock = clock.saturating_add(milliseconds(stop.leg_s));
        if index == 0 {
            clock = clock.max(now_unix_ms);
        }
        projected.push(Projected { arrival_unix_ms: clock, at_risk: clock > stop.due_by_unix_ms });
        clock = clock.saturating_add(milliseconds(stop.service_s));
    }
    projected
}
