//! Courier dispatch: which vehicle of a depot delivers which shipment, in what order, and when.
//!
//! - [`matrix`]: travel between points — the [`TravelMatrix`] trait and its default,
//!   [`Haversine`] (great-circle distance × a road factor at the vehicle's speed). A road-network
//!   table (OSRM-style) plugs in by implementing the trait.
//! - [`plan`]: a wave (a depot, a departure time) of due shipments and the vehicles on shift
//!   become a [`routing::Problem`] (time windows from the promises, skills from the temperature
//!   classes, demand in units); the solution becomes planned routes with arrival times, and
//!   shipments left out carry their reason. [`plan::project`] re-times the rest of a route from
//!   where the courier is, to flag promises at risk.
//!
//! **Architecture invariant**: no IO. Times are Unix milliseconds (`_unix_ms`) at the edges of
//! this crate and seconds after the wave inside the routing problem; distances are metres.

pub mod matrix;
pub mod plan;

pub use matrix::{Haversine, Matrix, MatrixError, TravelMatrix};
pub use plan::{
    Plan, PlanError, PlanRequest, PlannedRoute, PlannedStop, Projected, RemainingStop, Shipment, UnplannedReason,
    WaveVehicle, plan, project, shift_in_wave,
};
