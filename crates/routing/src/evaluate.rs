//! The evaluator: recomputes every figure of a solution from the problem alone, independently of
//! the search, and lists every broken constraint.
//!
//! Schedule: a vehicle serves each stop as early as it can (waiting for the next window when it
//! arrives early), and leaves its start as late as it can without making any stop later than in
//! the earliest schedule; a route's duration is from that departure to its arrival at the end.

use crate::model::{Problem, StopRole, TimeWindow};
use crate::solution::{Solution, Visit};
use std::collections::HashMap;

/// Lateness below this is rounding, not a violation (times are in the instance's units).
pub const TIME_TOLERANCE: f64 = 1e-6;

/// A broken constraint.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    UnknownVehicleType {
        route: usize,
    },
    TooManyVehicles {
        vehicle_type: usize,
        used: usize,
        count: usize,
    },
    UnknownJob {
        route: usize,
        job: usize,
    },
    UnknownStop {
        route: usize,
        visit: Visit,
    },
    Capacity {
        route: usize,
        dimension: usize,
        load: i64,
        capacity: i64,
    },
    TimeWindow {
        route: usize,
        visit: Visit,
        service_start: f64,
    },
    ShiftEnd {
        route: usize,
        arrival: f64,
        shift_end: f64,
    },
    Skill {
        route: usize,
        job: usize,
    },
    /// A delivery before its pickup, or a pair whose stops are not both on this route.
    Precedence {
        route: usize,
        job: usize,
    },
    Duplicate {
        visit: Visit,
    },
    /// A job neither fully visited nor listed as unassigned.
    Uncovered {
        job: usize,
    },
    /// A job listed as unassigned that a route also visits.
    UnassignedButVisited {
        job: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteEvaluation {
    pub distance: f64,
    pub duration: f64,
    pub cost: f64,
    pub departure: f64,
    pub arrival: f64,
    pub load_peak: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub distance: f64,
    pub duration: f64,
    /// Fixed plus per-distance plus per-time costs of the used vehicles.
    pub cost: f64,
    pub vehicles: usize,
    pub routes: Vec<RouteEvaluation>,
    pub violations: Vec<Violation>,
}

impl Evaluation {
    pub fn is_feasible(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The start of service at a stop reached at `arrival`: the first window that has not closed,
/// or `None` when every window has closed.
fn service_start(windows: &[TimeWindow], arrival: f64) -> Option<f64> {
    windows.iter().find(|window| arrival <= window.end + TIME_TOLERANCE).map(|window| arrival.max(window.start))
}

/// The latest start of service not after `bound`, or `None`.
fn latest_start(windows: &[TimeWindow], bound: f64) -> Option<f64> {
    windows.iter().rev().find(|window| window.start <= bound).map(|window| window.end.min(bound))
}

struct ResolvedVisit {
    location: usize,
    service_time: f64,
    windows: Vec<TimeWindow>,
}

/// Evaluates a solution against a problem.
pub fn evaluate(problem: &Problem, solution: &Solution) -> Evaluation {
    let travel = problem.travel();
    let jobs = problem.jobs();
    let mut violations = Vec::new();
    let mut seen: HashMap<Visit, usize> = HashMap::new();
    let mut used_per_type = vec![0usize; problem.vehicle_types().len()];
    let mut routes = Vec::with_capacity(solution.routes.len());
    let dimensions = problem.capacity_dimensions();
    for (route_index, route) in solution.routes.iter().enumerate() {
        let Some(vehicle_type) = problem.vehicle_types().get(route.vehicle_type) else {
            violations.push(Violation::UnknownVehicleType { route: route_index });
            routes.push(RouteEvaluation {
                distance: 0.0,
                duration: 0.0,
                cost: 0.0,
                departure: 0.0,
                arrival: 0.0,
                load_peak: vec![0; dimensions],
            });
            continue;
        };
        if route.visits.is_empty() {
            routes.push(RouteEvaluation {
                distance: 0.0,
                duration: 0.0,
                cost: 0.0,
                departure: vehicle_type.shift_start,
                arrival: vehicle_type.shift_start,
                load_peak: vec![0; dimensions],
            });
            continue;
        }
        used_per_type[route.vehicle_type] += 1;
        let mut resolved = Vec::with_capacity(route.visits.len());
        let mut pickup_position: HashMap<usize, usize> = HashMap::new();
        let mut delivery_position: HashMap<usize, usize> = HashMap::new();
        // Load at the start: every plain delivery of the route.
        let mut load = vec![0i64; dimensions];
        for (position, visit) in route.visits.iter().enumerate() {
            let Some(job) = jobs.get(visit.job) else {
                violations.push(Violation::UnknownJob { route: route_index, job: visit.job });
                continue;
            };
            let Some(stop) = job.stop(visit.role) else {
                violations.push(Violation::UnknownStop { route: route_index, visit: *visit });
                continue;
            };
            *seen.entry(*visit).or_insert(0) += 1;
            if !problem.has_skills(route.vehicle_type, visit.job) {
                violations.push(Violation::Skill { route: route_index, job: visit.job });
            }
            match visit.role {
                StopRole::Pickup => {
                    pickup_position.insert(visit.job, position);
                }
                StopRole::Delivery => {
                    delivery_position.insert(visit.job, position);
                }
            }
            if matches!(job.kind, crate::model::JobKind::Delivery { .. }) {
                for (dimension, quantity) in job.demand.iter().enumerate() {
                    load[dimension] += quantity;
                }
            }
            resolved.push((
                visit,
                ResolvedVisit {
                    location: stop.location,
                    service_time: stop.service_time,
                    windows: stop.time_windows.clone(),
                },
            ));
        }
        // Precedence and pairing.
        for (&job, &pickup) in &pickup_position {
            match delivery_position.get(&job) {
                Some(&delivery) if delivery > pickup => {}
                _ => violations.push(Violation::Precedence { route: route_index, job }),
            }
        }
        for &job in delivery_position.keys() {
            let is_pair =
                matches!(jobs.get(job).map(|job| &job.kind), Some(crate::model::JobKind::PickupAndDelivery { .. }));
            if is_pair && !pickup_position.contains_key(&job) {
                violations.push(Violation::Precedence { route: route_index, job });
            }
        }
        // Capacity along the route.
        let mut load_peak = load.clone();
        for (visit, _) in &resolved {
            let job = &jobs[visit.job];
            // Goods come on board at a pickup and leave at a delivery.
            let sign = match visit.role {
                StopRole::Pickup => 1,
                StopRole::Delivery => -1,
            };
            for (dimension, quantity) in job.demand.iter().enumerate() {
                load[dimension] += sign * quantity;
                load_peak[dimension] = load_peak[dimension].max(load[dimension]);
            }
        }
        for (dimension, &peak) in load_peak.iter().enumerate() {
            if peak > vehicle_type.capacity[dimension] {
                violations.push(Violation::Capacity {
                    route: route_index,
                    dimension,
                    load: peak,
                    capacity: vehicle_type.capacity[dimension],
                });
            }
        }
        // Distance.
        let mut distance = 0.0;
        let mut location = vehicle_type.start_location;
        for (_, stop) in &resolved {
            distance += travel.distance(location, stop.location);
            location = stop.location;
        }
        distance += travel.distance(location, vehicle_type.end_location);
        // Earliest schedule from the shift start.
        let forward = |departure: f64, report: bool, violations: &mut Vec<Violation>| -> f64 {
            let mut time = departure;
            let mut location = vehicle_type.start_location;
            for (visit, stop) in &resolved {
                let arrival = time + travel.time(location, stop.location);
                let start = match service_start(&stop.windows, arrival) {
                    Some(start) => start,
                    None => {
                        if report {
                            violations.push(Violation::TimeWindow {
                                route: route_index,
                                visit: **visit,
                                service_start: arrival,
                            });
                        }
                        arrival
                    }
                };
                time = start + stop.service_time;
                location = stop.location;
            }
            time + travel.time(location, vehicle_type.end_location)
        };
        let violations_before = violations.len();
        let earliest_arrival = forward(vehicle_type.shift_start, true, &mut violations);
        if earliest_arrival > vehicle_type.shift_end + TIME_TOLERANCE {
            violations.push(Violation::ShiftEnd {
                route: route_index,
                arrival: earliest_arrival,
                shift_end: vehicle_type.shift_end,
            });
        }
        let mut departure = vehicle_type.shift_start;
        let mut arrival = earliest_arrival;
        if violations.len() == violations_before {
            // Latest departure that keeps the route feasible (backward pass).
            let mut bound = vehicle_type.shift_end;
            let mut next_location = vehicle_type.end_location;
            let mut feasible = true;
            for (_, stop) in resolved.iter().rev() {
                let limit = bound - travel.time(stop.location, next_location) - stop.service_time;
                match latest_start(&stop.windows, limit) {
                    Some(start) => bound = start,
                    None => {
                        feasible = false;
                        break;
                    }
                }
                next_location = stop.location;
            }
            if feasible {
                let latest_departure = bound - travel.time(vehicle_type.start_location, next_location);
                if latest_departure > vehicle_type.shift_start {
                    departure = latest_departure;
                    arrival = forward(departure, false, &mut violations);
                }
            }
        }
        let duration = arrival - departure;
        let cost =
            vehicle_type.fixed_cost + vehicle_type.cost_per_distance * distance + vehicle_type.cost_per_time * duration;
        routes.push(RouteEvaluation { distance, duration, cost, departure, arrival, load_peak });
    }
    for (vehicle_type, &used) in used_per_type.iter().enumerate() {
        let count = problem.vehicle_types()[vehicle_type].count;
        if used > count {
            violations.push(Violation::TooManyVehicles { vehicle_type, used, count });
        }
    }
    let mut visits: Vec<(&Visit, &usize)> = seen.iter().filter(|(_, times)| **times > 1).collect();
    visits.sort();
    for (visit, _) in visits {
        violations.push(Violation::Duplicate { visit: *visit });
    }
    let unassigned: std::collections::HashSet<usize> = solution.unassigned.iter().map(|entry| entry.job).collect();
    for (job_index, job) in jobs.iter().enumerate() {
        let visited: Vec<bool> =
            job.stops().iter().map(|(role, _)| seen.contains_key(&Visit { job: job_index, role: *role })).collect();
        let listed = unassigned.contains(&job_index);
        if listed && visited.iter().any(|&flag| flag) {
            violations.push(Violation::UnassignedButVisited { job: job_index });
        } else if !listed && !visited.iter().all(|&flag| flag) {
            violations.push(Violation::Uncovered { job: job_index });
        }
    }
    let distance = routes.iter().map(|route| route.distance).sum();
    let duration = routes.iter().map(|route| route.duration).sum();
    let cost = routes.iter().map(|route| route.cost).sum();
    let vehicles = solution.used_routes().count();
    Evaluation { distance, duration, cost, vehicles, routes, violations }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Job, JobKind, Stop, TimeWindow, Travel, VehicleType};
    use crate::solution::{Route, Unassigned, UnassignedReason};

    fn vehicle(count: usize, capacity: i64, skills: &[&str]) -> VehicleType {
        VehicleType {
            name: "van".to_owned(),
            count,
            capacity: vec![capacity],
            start_location: 0,
            end_location: 0,
            shift_start: 0.0,
            shift_end: 100.0,
            fixed_cost: 0.0,
            cost_per_distance: 1.0,
            cost_per_time: 0.0,
            skills: skills.iter().map(|skill| (*skill).to_owned()).collect(),
        }
    }

    fn stop(location: usize, window: (f64, f64)) -> Stop {
        Stop {
            location,
            service_time: 0.0,
            time_windows: vec![TimeWindow { start: window.0, end: window.1 }],
            external_id: location,
        }
    }

    fn delivery(location: usize, demand: i64, window: (f64, f64), skills: &[&str]) -> Job {
        Job {
            name: format!("job {location}"),
            demand: vec![demand],
            skills: skills.iter().map(|skill| (*skill).to_owned()).collect(),
            kind: JobKind::Delivery { stop: stop(location, window) },
        }
    }

    /// Depot at the origin, customers on the corners of the unit square.
    fn square(jobs: Vec<Job>, vehicles: Vec<VehicleType>) -> Problem {
        let coordinates = vec![(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)];
        Problem::new("square", vehicles, jobs, Travel::Euclidean { coordinates }).expect("valid problem")
    }

    fn visit(job: usize) -> Visit {
        Visit { job, role: StopRole::Delivery }
    }

    fn route(visits: &[usize]) -> Route {
        Route { vehicle_type: 0, visits: visits.iter().map(|&job| visit(job)).collect() }
    }

    fn names(evaluation: &Evaluation) -> Vec<&'static str> {
        evaluation
            .violations
            .iter()
            .map(|violation| match violation {
                Violation::UnknownVehicleType { .. } => "unknown vehicle type",
                Violation::TooManyVehicles { .. } => "too many vehicles",
                Violation::UnknownJob { .. } => "unknown job",
                Violation::UnknownStop { .. } => "unknown stop",
                Violation::Capacity { .. } => "capacity",
                Violation::TimeWindow { .. } => "time window",
                Violation::ShiftEnd { .. } => "shift end",
                Violation::Skill { .. } => "skill",
                Violation::Precedence { .. } => "precedence",
                Violation::Duplicate { .. } => "duplicate",
                Violation::Uncovered { .. } => "uncovered",
                Violation::UnassignedButVisited { .. } => "unassigned but visited",
            })
            .collect()
    }

    fn check(problem: &Problem, solution: &Solution, expected: &[&str]) -> Evaluation {
        let evaluation = evaluate(problem, solution);
        assert_eq!(names(&evaluation), expected, "{evaluation:#?}");
        evaluation
    }

    fn open_jobs(demand: i64) -> Vec<Job> {
        (1..=3).map(|location| delivery(location, demand, (0.0, 100.0), &[])).collect()
    }

    #[test]
    fn square_tour_has_length_four() {
        let problem = square(open_jobs(1), vec![vehicle(1, 10, &[])]);
        let solution = Solution { routes: vec![route(&[0, 1, 2])], unassigned: vec![] };
        let evaluation = check(&problem, &solution, &[]);
        assert!((evaluation.distance - 4.0).abs() < 1e-12);
        assert_eq!(evaluation.vehicles, 1);
    }

    #[test]
    fn two_vehicles_split_the_square() {
        let problem = square(open_jobs(1), vec![vehicle(2, 2, &[])]);
        let solution = Solution { routes: vec![route(&[0, 1]), route(&[2])], unassigned: vec![] };
        let evaluation = check(&problem, &solution, &[]);
        assert!((evaluation.distance - (4.0 + 2f64.sqrt())).abs() < 1e-12);
    }

    #[test]
    fn capacity_excess_is_detected() {
        let problem = square(open_jobs(1), vec![vehicle(1, 2, &[])]);
        let solution = Solution { routes: vec![route(&[0, 1, 2])], unassigned: vec![] };
        check(&problem, &solution, &["capacity"]);
    }

    #[test]
    fn late_arrival_is_detected() {
        let mut jobs = open_jobs(1);
        jobs[2] = delivery(3, 1, (0.0, 1.5), &[]);
        let problem = square(jobs, vec![vehicle(1, 10, &[])]);
        // Corner 3 is reached after 3 units: too late.
        check(&problem, &Solution { routes: vec![route(&[0, 1, 2])], unassigned: vec![] }, &["time window"]);
        // The other direction reaches it after 1 unit.
        check(&problem, &Solution { routes: vec![route(&[2, 1, 0])], unassigned: vec![] }, &[]);
    }

    #[test]
    fn waiting_for_a_window_is_allowed_and_shift_end_is_checked() {
        let mut jobs = open_jobs(1);
        jobs[0] = delivery(1, 1, (50.0, 60.0), &[]);
        let mut short = vehicle(1, 10, &[]);
        short.shift_end = 52.0;
        let problem = square(jobs.clone(), vec![vehicle(1, 10, &[])]);
        let evaluation = check(&problem, &Solution { routes: vec![route(&[0, 1, 2])], unassigned: vec![] }, &[]);
        // Leaves as late as possible: duration is the travel time only.
        assert!((evaluation.duration - 4.0).abs() < 1e-9, "{evaluation:?}");
        let problem = square(jobs, vec![short]);
        check(&problem, &Solution { routes: vec![route(&[0, 1, 2])], unassigned: vec![] }, &["shift end"]);
    }

    #[test]
    fn multiple_windows_pick_the_first_open_one() {
        let mut jobs = open_jobs(1);
        jobs[0].kind = JobKind::Delivery {
            stop: Stop {
                location: 1,
                service_time: 0.0,
                time_windows: vec![TimeWindow { start: 0.0, end: 0.5 }, TimeWindow { start: 10.0, end: 11.0 }],
                external_id: 1,
            },
        };
        let problem = square(jobs, vec![vehicle(1, 10, &[])]);
        let evaluation = check(&problem, &Solution { routes: vec![route(&[0, 1, 2])], unassigned: vec![] }, &[]);
        // The first window is open at 1 but leaving as late as possible serves the stop at the
        // end of the second: leave at 10, served at 11, back at 14.
        assert!((evaluation.routes[0].departure - 10.0).abs() < 1e-9, "{evaluation:?}");
        assert!((evaluation.routes[0].arrival - 14.0).abs() < 1e-9, "{evaluation:?}");
        // Served at 1 in the first window when leaving at 0, so the route is feasible either way.
        assert!((evaluation.duration - 4.0).abs() < 1e-9);
    }

    #[test]
    fn missing_skill_is_detected() {
        let mut jobs = open_jobs(1);
        jobs[1] = delivery(2, 1, (0.0, 100.0), &["reefer"]);
        let problem = square(jobs.clone(), vec![vehicle(1, 10, &[])]);
        check(&problem, &Solution { routes: vec![route(&[0, 1, 2])], unassigned: vec![] }, &["skill"]);
        let problem = square(jobs, vec![vehicle(1, 10, &["reefer"])]);
        check(&problem, &Solution { routes: vec![route(&[0, 1, 2])], unassigned: vec![] }, &[]);
    }

    #[test]
    fn coverage_is_checked() {
        let problem = square(open_jobs(1), vec![vehicle(2, 10, &[])]);
        check(&problem, &Solution { routes: vec![route(&[0, 1])], unassigned: vec![] }, &["uncovered"]);
        check(&problem, &Solution { routes: vec![route(&[0, 1, 2]), route(&[2])], unassigned: vec![] }, &["duplicate"]);
        let unassigned = vec![Unassigned { job: 2, reason: UnassignedReason::NoFeasibleInsertion }];
        check(&problem, &Solution { routes: vec![route(&[0, 1])], unassigned: unassigned.clone() }, &[]);
        check(&problem, &Solution { routes: vec![route(&[0, 1, 2])], unassigned }, &["unassigned but visited"]);
        check(&problem, &Solution { routes: vec![route(&[0, 7, 1, 2])], unassigned: vec![] }, &["unknown job"]);
    }

    #[test]
    fn fleet_size_is_checked() {
        let problem = square(open_jobs(1), vec![vehicle(1, 10, &[])]);
        check(
            &problem,
            &Solution { routes: vec![route(&[0]), route(&[1, 2])], unassigned: vec![] },
            &["too many vehicles"],
        );
        let solution = Solution {
            routes: vec![Route { vehicle_type: 3, visits: vec![visit(0)] }, route(&[1, 2])],
            unassigned: vec![],
        };
        check(&problem, &solution, &["unknown vehicle type", "uncovered"]);
    }

    fn pair_problem(capacity: i64) -> Problem {
        // Pickup at corner 1, delivery at corner 2; a plain delivery at corner 3.
        let jobs = vec![
            Job {
                name: "pair".to_owned(),
                demand: vec![2],
                skills: vec![],
                kind: JobKind::PickupAndDelivery { pickup: stop(1, (0.0, 100.0)), delivery: stop(2, (0.0, 100.0)) },
            },
            delivery(3, 2, (0.0, 100.0), &[]),
        ];
        square(jobs, vec![vehicle(2, capacity, &[])])
    }

    fn pair_visit(role: StopRole) -> Visit {
        Visit { job: 0, role }
    }

    #[test]
    fn pickup_before_delivery_on_one_route_is_feasible() {
        let problem = pair_problem(4);
        let visits = vec![pair_visit(StopRole::Pickup), pair_visit(StopRole::Delivery), visit(1)];
        let evaluation =
            check(&problem, &Solution { routes: vec![Route { vehicle_type: 0, visits }], unassigned: vec![] }, &[]);
        assert!((evaluation.distance - 4.0).abs() < 1e-12);
        // Load: 2 (plain delivery) + 2 (picked up) = 4 at the peak.
        assert_eq!(evaluation.routes[0].load_peak, vec![4]);
    }

    #[test]
    fn pair_capacity_counts_goods_on_board() {
        let problem = pair_problem(3);
        let visits = vec![pair_visit(StopRole::Pickup), pair_visit(StopRole::Delivery), visit(1)];
        check(
            &problem,
            &Solution { routes: vec![Route { vehicle_type: 0, visits }], unassigned: vec![] },
            &["capacity"],
        );
        // Dropping the plain delivery first keeps the load at 2.
        let visits = vec![visit(1), pair_visit(StopRole::Pickup), pair_visit(StopRole::Delivery)];
        check(&problem, &Solution { routes: vec![Route { vehicle_type: 0, visits }], unassigned: vec![] }, &[]);
    }

    #[test]
    fn precedence_and_pairing_are_checked() {
        let problem = pair_problem(4);
        let visits = vec![pair_visit(StopRole::Delivery), pair_visit(StopRole::Pickup), visit(1)];
        check(
            &problem,
            &Solution { routes: vec![Route { vehicle_type: 0, visits }], unassigned: vec![] },
            &["precedence"],
        );
        let routes = vec![
            Route { vehicle_type: 0, visits: vec![pair_visit(StopRole::Pickup), visit(1)] },
            Route { vehicle_type: 0, visits: vec![pair_visit(StopRole::Delivery)] },
        ];
        check(&problem, &Solution { routes, unassigned: vec![] }, &["precedence", "precedence"]);
    }
}
