//! The solver: jobs no vehicle could ever serve are set aside with their reason, the rest go to
//! a hybrid genetic search; the best solution found is checked by the evaluator, and if the
//! search ran out of time before reaching feasibility, jobs are taken out of broken routes until
//! every route holds, and put back where they fit.
//!
//! **Architecture invariant**: every figure in a [`SolveResult`] comes from
//! [`crate::evaluate::evaluate`], never from the search's own bookkeeping.

mod data;
mod genetic;
mod rng;
mod search;

use crate::evaluate::{Evaluation, evaluate};
use crate::model::{Problem, TimeWindow};
use crate::solution::{Route, Solution, Unassigned, UnassignedReason, Visit};
use data::{Data, NO_PARTNER};
use genetic::{Genetic, Individual, Order, TIME_WARP_TOLERANCE, exact_time_warp};
use std::time::{Duration, Instant};

/// What the search minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Total cost: fixed, per-distance and per-time costs of the used vehicles. For the benchmark
    /// instances (cost 1 per distance unit, nothing else) this is the total distance.
    Cost,
    /// Fewest vehicles first, then total cost (the hierarchical convention of the literature).
    VehiclesThenCost,
}

#[derive(Debug, Clone)]
pub struct SolverConfig {
    pub seed: u64,
    /// Wall-clock budget; the best solution found so far is returned when it runs out.
    pub time_limit: Duration,
    /// Number of offspring generated, at most; with a limit reached before the time limit, a
    /// run is fully determined by its seed.
    pub iteration_limit: Option<u64>,
    pub objective: Objective,
    /// The clock the time limit is measured with: a monotonic reading, such as the CPU time of
    /// the calling thread (the crate does no IO, so the caller supplies it). `None`: wall clock.
    pub clock: Option<fn() -> Duration>,
}

impl Default for SolverConfig {
    fn default() -> SolverConfig {
        SolverConfig {
            seed: 1,
            time_limit: Duration::from_secs(10),
            iteration_limit: None,
            objective: Objective::Cost,
            clock: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SolveResult {
    pub solution: Solution,
    /// The evaluator's verdict on `solution`.
    pub evaluation: Evaluation,
    pub iterations: u64,
    /// Time taken, by the configured clock.
    pub elapsed: Duration,
}

/// Why a job cannot be served by any vehicle on its own, if so.
fn reason_alone(problem: &Problem, job_index: usize) -> Option<UnassignedReason> {
    let job = &problem.jobs()[job_index];
    let travel = problem.travel();
    let candidates: Vec<usize> = (0..problem.vehicle_types().len())
        .filter(|&vehicle_type| problem.vehicle_types()[vehicle_type].count > 0)
        .collect();
    let with_skills: Vec<usize> =
        candidates.into_iter().filter(|&vehicle_type| problem.has_skills(vehicle_type, job_index)).collect();
    if with_skills.is_empty() {
        return Some(UnassignedReason::MissingSkill);
    }
    let with_capacity: Vec<usize> = with_skills
        .into_iter()
        .filter(|&vehicle_type| {
            let capacity = &problem.vehicle_types()[vehicle_type].capacity;
            job.demand.iter().zip(capacity).all(|(demand, capacity)| demand <= capacity)
        })
        .collect();
    if with_capacity.is_empty() {
        return Some(UnassignedReason::CapacityExceeded);
    }
    let reachable = with_capacity.iter().any(|&vehicle_type| {
        let vehicle = &problem.vehicle_types()[vehicle_type];
        let mut time = vehicle.shift_start;
        let mut location = vehicle.start_location;
        for (_, stop) in job.stops() {
            let arrival = time + travel.time(location, stop.location);
            let window: Option<&TimeWindow> =
                stop.time_windows.iter().find(|window| arrival <= window.end + crate::evaluate::TIME_TOLERANCE);
            let Some(window) = window else {
                return false;
            };
            time = arrival.max(window.start) + stop.service_time;
            location = stop.location;
        }
        time + travel.time(location, vehicle.end_location) <= vehicle.shift_end + crate::evaluate::TIME_TOLERANCE
    });
    if !reachable {
        return Some(UnassignedReason::TimeWindowUnreachable);
    }
    None
}

/// Excess load and time warp of one route, every window checked.
fn route_violation(data: &Data, slot: usize, nodes: &[usize]) -> (i64, f64) {
    if nodes.is_empty() {
        return (0, 0.0);
    }
    let kind = data.slots[slot];
    let mut segment = data.kinds[kind].start_segment;
    for &node in nodes {
        segment = data.merge(&segment, &data.nodes[node].segment);
    }
    segment = data.merge(&segment, &data.kinds[kind].end_segment);
    (data.excess(&segment, kind), exact_time_warp(data, kind, nodes).max(segment.time_warp))
}

fn is_route_feasible(data: &Data, slot: usize, nodes: &[usize]) -> bool {
    if nodes.iter().any(|&node| !data.compatible(node, data.slots[slot])) {
        return false;
    }
    let (excess, time_warp) = route_violation(data, slot, nodes);
    excess == 0 && time_warp <= TIME_WARP_TOLERANCE
}

/// Makes an infeasible set of routes feasible: removes from each broken route the node (or
/// pair) whose removal helps most until it holds, then puts removed jobs back at the cheapest
/// feasible place. Returns the nodes that found no place.
fn make_feasible(data: &Data, routes: &mut [Vec<usize>]) -> Vec<usize> {
    let mut removed = Vec::new();
    for (slot, nodes) in routes.iter_mut().enumerate() {
        while !is_route_feasible(data, slot, nodes) {
            let mut best: Option<(f64, usize)> = None;
            for (index, &node) in nodes.iter().enumerate() {
                let partner = data.nodes[node].partner;
                let remaining: Vec<usize> =
                    nodes.iter().copied().filter(|&other| other != node && other != partner).collect();
                let (excess, time_warp) = route_violation(data, slot, &remaining);
                let incompatible = remaining.iter().filter(|&&other| !data.compatible(other, data.slots[slot])).count();
                let score = incompatible as f64 * 1e12 + excess as f64 * 1e6 + time_warp;
                if best.is_none_or(|(value, _)| score < value) {
                    best = Some((score, index));
                }
            }
            let Some((_, index)) = best else { break };
            let node = nodes[index];
            let partner = data.nodes[node].partner;
            nodes.retain(|&other| other != node && other != partner);
            removed.push(if partner != NO_PARTNER && !data.nodes[node].is_pickup { partner } else { node });
        }
    }
    let mut unplaced = Vec::new();
    for node in removed {
        let partner = data.nodes[node].partner;
        let mut best: Option<(f64, usize, Vec<usize>)> = None;
        for (slot, nodes) in routes.iter().enumerate() {
            if !data.compatible(node, data.slots[slot]) {
                continue;
            }
            let base_cost = plain_cost(data, slot, nodes);
            for first in 0..=nodes.len() {
                let seconds: Vec<usize> =
                    if partner == NO_PARTNER { vec![first] } else { (first..=nodes.len()).collect() };
                for second in seconds {
                    let mut candidate = nodes.clone();
                    if partner != NO_PARTNER {
                        candidate.insert(second, partner);
                    }
                    candidate.insert(first, node);
                    if is_route_feasible(data, slot, &candidate) {
                        let delta = plain_cost(data, slot, &candidate) - base_cost;
                        if best.as_ref().is_none_or(|(value, ..)| delta < *value) {
                            best = Some((delta, slot, candidate));
                        }
                    }
                }
            }
        }
        match best {
            Some((_, slot, candidate)) => routes[slot] = candidate,
            None => unplaced.push(node),
        }
    }
    unplaced
}

fn plain_cost(data: &Data, slot: usize, nodes: &[usize]) -> f64 {
    if nodes.is_empty() {
        return 0.0;
    }
    let kind = data.slots[slot];
    let mut segment = data.kinds[kind].start_segment;
    for &node in nodes {
        segment = data.merge(&segment, &data.nodes[node].segment);
    }
    segment = data.merge(&segment, &data.kinds[kind].end_segment);
    data.plain_cost(&segment, kind)
}

/// Solves a problem within the configured limits.
pub fn solve(problem: &Problem, config: &SolverConfig) -> SolveResult {
    let started = Instant::now();
    let clock_start = config.clock.map(|clock| clock());
    let elapsed = || match (config.clock, clock_start) {
        (Some(clock), Some(start)) => clock().saturating_sub(start),
        _ => started.elapsed(),
    };
    let mut unassigned: Vec<Unassigned> = Vec::new();
    let mut included = vec![true; problem.jobs().len()];
    for (job, flag) in included.iter_mut().enumerate() {
        if let Some(reason) = reason_alone(problem, job) {
            *flag = false;
            unassigned.push(Unassigned { job, reason });
        }
    }
    let order = match config.objective {
        Objective::Cost => Order::Cost,
        Objective::VehiclesThenCost => Order::RoutesThenCost,
    };
    let data = Data::build(problem, &included);
    let mut routes: Vec<Vec<usize>> = vec![Vec::new(); data.slots.len()];
    let mut iterations = 0;
    if !data.nodes.is_empty() && !data.slots.is_empty() {
        let mut genetic = Genetic::new(&data, config.seed, order);
        let initial_limit = config.time_limit.mul_f64(0.2);
        genetic.initialise(&|| elapsed() >= initial_limit);
        let iteration_limit = config.iteration_limit.unwrap_or(u64::MAX);
        let time_up = || elapsed() >= config.time_limit;
        while genetic.iterations < iteration_limit && !time_up() {
            let progress = (elapsed().as_secs_f64() / config.time_limit.as_secs_f64().max(1e-9))
                .max(genetic.iterations as f64 / iteration_limit as f64);
            genetic.set_progress(progress);
            genetic.iterate(&time_up);
        }
        iterations = genetic.iterations;
        let best: Option<Individual> =
            genetic.best.clone().or_else(|| genetic.best_any.clone().map(|(_, individual)| individual));
        if let Some(best) = best {
            routes = best.routes;
        }
    }
    let unplaced = make_feasible(&data, &mut routes);
    for node in unplaced {
        unassigned.push(Unassigned { job: data.nodes[node].job, reason: UnassignedReason::NoFeasibleInsertion });
    }
    // Nodes never routed (no slot at all).
    let mut routed = vec![false; data.nodes.len()];
    for nodes in &routes {
        for &node in nodes {
            routed[node] = true;
        }
    }
    for (node, flag) in routed.iter().enumerate() {
        let is_first_of_job = data.nodes[node].partner == NO_PARTNER || data.nodes[node].is_pickup;
        if !flag && is_first_of_job && !unassigned.iter().any(|entry| entry.job == data.nodes[node].job) {
            unassigned.push(Unassigned { job: data.nodes[node].job, reason: UnassignedReason::NoFeasibleInsertion });
        }
    }
    unassigned.sort_by_key(|entry| entry.job);
    let solution = Solution {
        routes: routes
            .iter()
            .enumerate()
            .filter(|(_, nodes)| !nodes.is_empty())
            .map(|(slot, nodes)| Route {
                vehicle_type: data.slots[slot],
                visits: nodes
                    .iter()
                    .map(|&node| Visit { job: data.nodes[node].job, role: data.nodes[node].role })
                    .collect(),
            })
            .collect(),
        unassigned,
    };
    let evaluation = evaluate(problem, &solution);
    SolveResult { solution, evaluation, iterations, elapsed: elapsed() }
}

#[cfg(test)]
mod tests;
