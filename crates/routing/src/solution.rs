//! A solution: routes per vehicle, and the jobs left out with the reason why.

use crate::model::{Problem, StopRole};
use std::fmt::Write as _;

/// One visit of a route: the stop of a job with the given role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Visit {
    pub job: usize,
    pub role: StopRole,
}

/// The visits one vehicle of `vehicle_type` makes, in order, between its shift start and end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub vehicle_type: usize,
    pub visits: Vec<Visit>,
}

/// Why a job could not be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnassignedReason {
    /// No vehicle type has every skill the job requires.
    MissingSkill,
    /// The demand exceeds the capacity of every vehicle type that has the skills.
    CapacityExceeded,
    /// No vehicle can reach a stop in one of its time windows and return before its shift ends.
    TimeWindowUnreachable,
    /// The job fits a vehicle alone, but the search found no feasible place for it with the fleet
    /// available before it stopped.
    NoFeasibleInsertion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unassigned {
    pub job: usize,
    pub reason: UnassignedReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Solution {
    pub routes: Vec<Route>,
    pub unassigned: Vec<Unassigned>,
}

impl Solution {
    /// Routes that visit at least one stop.
    pub fn used_routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().filter(|route| !route.visits.is_empty())
    }

    /// The solution as VRPLIB `.sol` text: `Route #k: c1 c2 …` with stops numbered as in the
    /// instance file, then `Cost X` with the given cost (take it from the evaluator).
    pub fn to_vrplib(&self, problem: &Problem, cost: f64) -> String {
        let mut text = String::new();
        for (index, route) in self.used_routes().enumerate() {
            let _ = write!(text, "Route #{}:", index + 1);
            for visit in &route.visits {
                let external_id = problem.jobs()[visit.job].stop(visit.role).map_or(0, |stop| stop.external_id);
                let _ = write!(text, " {external_id}");
            }
            text.push('\n');
        }
        let _ = writeln!(text, "Cost {cost:.2}");
        text
    }
}
