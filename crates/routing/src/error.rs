//! Errors of the crate: a problem that does not hold together, or instance text that does not parse.

use thiserror::Error;

/// A problem whose parts do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    #[error("the fleet has no vehicle type")]
    NoVehicleType,
    #[error("capacity has {dimensions} dimensions, expected 1 to {dimensions_max}")]
    CapacityDimensions { dimensions: usize, dimensions_max: usize },
    #[error("vehicle type {vehicle_type}: capacity dimensions differ from the first vehicle type")]
    VehicleCapacityDimensions { vehicle_type: String },
    #[error("job {job}: demand dimensions differ from the capacity dimensions")]
    JobDemandDimensions { job: String },
    #[error("{field}: negative quantity")]
    NegativeQuantity { field: String },
    #[error("{field}: not a finite non-negative number")]
    InvalidNumber { field: String },
    #[error("{field}: location outside the travel matrix")]
    UnknownLocation { field: String },
    #[error("job {job}: time windows must be non-empty, sorted and not overlapping")]
    TimeWindows { job: String },
    #[error("the fleet offers {skills} distinct skills, at most {skills_max} are supported")]
    TooManySkills { skills: usize, skills_max: usize },
    #[error("travel matrix of size {size} does not have size * size entries")]
    MatrixSize { size: usize },
    #[error("travel matrix holds a negative or non-finite value")]
    MatrixValue,
}

/// Instance text that does not parse.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ParseError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("the instance has no {what}")]
    Missing { what: &'static str },
    #[error(transparent)]
    Model(#[from] ModelError),
}
