//! Solver tests: known optima on hand-made instances, unassigned reasons, and property tests
//! (every returned solution is feasible by the evaluator; a seed fixes the run).

use super::*;
use crate::model::{Job, JobKind, Stop, TimeWindow, Travel, VehicleType};
use proptest::prelude::*;

fn vehicle(count: usize, capacity: i64, skills: &[&str]) -> VehicleType {
    VehicleType {
        name: "van".to_owned(),
        count,
        capacity: vec![capacity],
        start_location: 0,
        end_location: 0,
        shift_start: 0.0,
        shift_end: 1000.0,
        fixed_cost: 0.0,
        cost_per_distance: 1.0,
        cost_per_time: 0.0,
        skills: skills.iter().map(|skill| (*skill).to_owned()).collect(),
    }
}

fn stop(location: usize, window: (f64, f64), service_time: f64) -> Stop {
    Stop {
        location,
        service_time,
        time_windows: vec![TimeWindow { start: window.0, end: window.1 }],
        external_id: location,
    }
}

fn delivery(location: usize, demand: i64) -> Job {
    Job {
        name: location.to_string(),
        demand: vec![demand],
        skills: vec![],
        kind: JobKind::Delivery { stop: stop(location, (0.0, 1000.0), 0.0) },
    }
}

fn config(iterations: u64) -> SolverConfig {
    SolverConfig {
        seed: 7,
        time_limit: Duration::from_secs(20),
        iteration_limit: Some(iterations),
        objective: Objective::Cost,
        ..SolverConfig::default()
    }
}

fn square_problem(capacity: i64, count: usize) -> Problem {
    let coordinates = vec![(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)];
    Problem::new(
        "square",
        vec![vehicle(count, capacity, &[])],
        (1..=3).map(|location| delivery(location, 1)).collect(),
        Travel::Euclidean { coordinates },
    )
    .expect("valid")
}

#[test]
fn square_optimum_with_one_vehicle() {
    let result = solve(&square_problem(3, 1), &config(50));
    assert!(result.evaluation.is_feasible());
    assert!((result.evaluation.distance - 4.0).abs() < 1e-9, "{:?}", result.evaluation);
}

#[test]
fn square_optimum_with_two_small_vehicles() {
    let result = solve(&square_problem(2, 2), &config(50));
    assert!(result.evaluation.is_feasible());
    assert!((result.evaluation.distance - (4.0 + 2f64.sqrt())).abs() < 1e-9, "{:?}", result.evaluation);
    assert_eq!(result.evaluation.vehicles, 2);
}

#[test]
fn fewest_vehicles_objective_uses_one_vehicle_when_it_can() {
    // A line: two far customers in opposite directions; one vehicle can do both with time.
    let coordinates = vec![(0.0, 0.0), (10.0, 0.0), (-10.0, 0.0)];
    let problem = Problem::new(
        "line",
        vec![vehicle(2, 10, &[])],
        vec![delivery(1, 1), delivery(2, 1)],
        Travel::Euclidean { coordinates },
    )
    .expect("valid");
    let mut settings = config(50);
    settings.objective = Objective::VehiclesThenCost;
    let result = solve(&problem, &settings);
    assert_eq!(result.evaluation.vehicles, 1);
    assert!((result.evaluation.distance - 40.0).abs() < 1e-9);
}

#[test]
fn impossible_jobs_are_unassigned_with_their_reason() {
    let coordinates = vec![(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (3.0, 0.0), (0.0, 900.0)];
    let mut reefer = delivery(1, 1);
    reefer.skills = vec!["reefer".to_owned()];
    let heavy = delivery(2, 99);
    let mut late = delivery(3, 1);
    late.kind = JobKind::Delivery { stop: stop(3, (0.0, 1.0), 0.0) };
    let far = delivery(4, 1); // 1800 there and back, shift is 1000
    let problem = Problem::new(
        "impossible",
        vec![vehicle(1, 10, &[])],
        vec![reefer, heavy, late, far],
        Travel::Euclidean { coordinates },
    )
    .expect("valid");
    let result = solve(&problem, &config(10));
    let reasons: Vec<(usize, UnassignedReason)> =
        result.solution.unassigned.iter().map(|entry| (entry.job, entry.reason)).collect();
    assert_eq!(
        reasons,
        vec![
            (0, UnassignedReason::MissingSkill),
            (1, UnassignedReason::CapacityExceeded),
            (2, UnassignedReason::TimeWindowUnreachable),
            (3, UnassignedReason::TimeWindowUnreachable),
        ]
    );
    assert!(result.evaluation.is_feasible());
}

#[test]
fn a_fleet_too_small_leaves_jobs_out_feasibly() {
    let result = solve(&square_problem(1, 2), &config(30));
    assert!(result.evaluation.is_feasible(), "{:?}", result.evaluation);
    assert_eq!(result.solution.unassigned.len(), 1);
    assert_eq!(result.solution.unassigned[0].reason, UnassignedReason::NoFeasibleInsertion);
}

/// A random small instance: coordinates on a 50 x 50 grid, deliveries and pairs, windows,
/// service times, two vehicle types (one with `reefer`).
fn instance() -> impl Strategy<Value = Problem> {
    let job = (0..50i32, 0..50i32, 0..50i32, 0..50i32, 1..6i64, 0..300i32, 20..400i32, 0..10i32, any::<bool>(), 0..4u8);
    (prop::collection::vec(job, 1..9), 1..4usize, 1..3usize, 5..15i64).prop_map(
        |(jobs, count_plain, count_reefer, capacity)| {
            let mut coordinates = vec![(25.0, 25.0)];
            let mut built = Vec::new();
            for (x, y, other_x, other_y, demand, start, width, service, is_pair, skill) in jobs {
                let window = (f64::from(start), f64::from(start + width));
                let location = coordinates.len();
                coordinates.push((f64::from(x), f64::from(y)));
                let skills = if skill == 0 { vec!["reefer".to_owned()] } else { vec![] };
                let kind = if is_pair {
                    coordinates.push((f64::from(other_x), f64::from(other_y)));
                    JobKind::PickupAndDelivery {
                        pickup: stop(location, window, f64::from(service)),
                        delivery: stop(location + 1, (window.0, window.1 + 200.0), f64::from(service)),
                    }
                } else {
                    JobKind::Delivery { stop: stop(location, window, f64::from(service)) }
                };
                built.push(Job { name: format!("job {}", built.len()), demand: vec![demand], skills, kind });
            }
            let mut plain = vehicle(count_plain, capacity, &[]);
            plain.shift_end = 800.0;
            let mut cold = vehicle(count_reefer, capacity / 2, &["reefer"]);
            cold.shift_end = 800.0;
            cold.cost_per_time = 0.1;
            cold.fixed_cost = 5.0;
            Problem::new("random", vec![plain, cold], built, Travel::Euclidean { coordinates }).expect("valid")
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_returned_solution_is_feasible(problem in instance(), seed in 0..1000u64, vehicles_first in any::<bool>()) {
        let settings = SolverConfig {
            seed,
            time_limit: Duration::from_secs(20),
            iteration_limit: Some(15),
            objective: if vehicles_first { Objective::VehiclesThenCost } else { Objective::Cost },
            ..SolverConfig::default()
        };
        let result = solve(&problem, &settings);
        prop_assert!(result.evaluation.is_feasible(), "{:?}", result.evaluation.violations);
        let again = evaluate(&problem, &result.solution);
        prop_assert_eq!(again, result.evaluation);
    }

    #[test]
    fn a_seed_fixes_the_run(problem in instance(), seed in 0..1000u64) {
        let settings = SolverConfig { seed, time_limit: Duration::from_secs(20), iteration_limit: Some(10), objective: Objective::Cost, ..SolverConfig::default() };
        let first = solve(&problem, &settings);
        let second = solve(&problem, &settings);
        prop_assert_eq!(first.solution, second.solution);
        prop_assert_eq!(first.iterations, second.iterations);
    }
}
