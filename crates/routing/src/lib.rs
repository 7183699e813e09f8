//! Keten's vehicle-routing engine.
//!
//! - [`model`]: the problem (vehicle types, jobs, travel), validated on construction.
//! - [`parse`]: Solomon / Gehring & Homberger and Li & Lim instance text to a [`Problem`].
//! - [`solver`]: a hybrid genetic search with granular local search and time-window segment
//!   concatenation; [`solve`] returns the best solution found within the limits.
//! - [`evaluate`]: an evaluator independent of the search; every reported figure comes from it.
//! - [`solution`]: routes, unassigned jobs with reasons, VRPLIB `.sol` output.
//! - [`benchmark`]: runs an instance against a best known solution and aggregates gaps per class.
//!
//! **Architecture invariant**: the crate does no IO (no files, no network, no threads of its own,
//! no async). Callers read instance files and pass the text in.

pub mod benchmark;
pub mod error;
pub mod evaluate;
pub mod model;
pub mod parse;
pub mod solution;
pub mod solver;

pub use error::{ModelError, ParseError};
pub use evaluate::{Evaluation, Violation, evaluate};
pub use model::{Job, JobKind, Problem, Stop, StopRole, TimeWindow, Travel, VehicleType};
pub use parse::{parse_li_lim, parse_solomon};
pub use solution::{Route, Solution, Unassigned, UnassignedReason, Visit};
pub use solver::{Objective, SolveResult, SolverConfig, solve};
