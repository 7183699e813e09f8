//! The problem: a fleet of vehicle types, jobs, and travel between locations.
//!
//! Times and distances are `f64` in the instance's own units (Solomon: time equals
//! Euclidean distance). Quantities (demand, capacity) are integers.

use crate::error::ModelError;

/// Largest number of capacity dimensions (weight, volume, pallets, …).
pub const CAPACITY_DIMENSIONS_MAX: usize = 3;

/// Largest number of distinct skills the fleet may offer (they are kept as bits of a `u64`).
pub const SKILLS_MAX: usize = 64;

/// A closed interval in which service may start: `start <= begin of service <= end`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeWindow {
    pub start: f64,
    pub end: f64,
}

impl TimeWindow {
    pub const UNBOUNDED: TimeWindow = TimeWindow { start: 0.0, end: f64::MAX };
}

/// A kind of vehicle; `count` identical vehicles of it are available.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleType {
    pub name: String,
    pub count: usize,
    /// One entry per capacity dimension; every vehicle type and job uses the same dimensions.
    pub capacity: Vec<i64>,
    pub start_location: usize,
    pub end_location: usize,
    pub shift_start: f64,
    pub shift_end: f64,
    pub fixed_cost: f64,
    pub cost_per_distance: f64,
    pub cost_per_time: f64,
    /// Skills the vehicle offers, such as `reefer`.
    pub skills: Vec<String>,
}

/// One place a vehicle visits for a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub location: usize,
    pub service_time: f64,
    /// Sorted, non-overlapping; service starts inside one of them.
    pub time_windows: Vec<TimeWindow>,
    /// The number of this stop in the instance file (used in `.sol` output).
    pub external_id: usize,
}

/// What a job asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum JobKind {
    /// Goods loaded at the vehicle's start and dropped at `stop`.
    Delivery { stop: Stop },
    /// Goods picked up at `pickup` and dropped at `delivery` by the same vehicle, in that order.
    PickupAndDelivery { pickup: Stop, delivery: Stop },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    pub demand: Vec<i64>,
    /// Skills the vehicle must have.
    pub skills: Vec<String>,
    pub kind: JobKind,
}

/// Which stop of a job a route visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StopRole {
    Delivery,
    Pickup,
}

impl Job {
    /// The stops of the job, with their role.
    pub fn stops(&self) -> Vec<(StopRole, &Stop)> {
        match &self.kind {
            JobKind::Delivery { stop } => vec![(StopRole::Delivery, stop)],
            JobKind::PickupAndDelivery { pickup, delivery } => {
                vec![(StopRole::Pickup, pickup), (StopRole::Delivery, delivery)]
            }
        }
    }

    /// The stop of the job with the given role, if the job has it.
    pub fn stop(&self, role: StopRole) -> Option<&Stop> {
        match (&self.kind, role) {
            (JobKind::Delivery { stop }, StopRole::Delivery) => Some(stop),
            (JobKind::Delivery { .. }, StopRole::Pickup) => None,
            (JobKind::PickupAndDelivery { pickup, .. }, StopRole::Pickup) => Some(pickup),
            (JobKind::PickupAndDelivery { delivery, .. }, StopRole::Delivery) => Some(delivery),
        }
    }
}

/// Travel between locations.
#[derive(Debug, Clone, PartialEq)]
pub enum Travel {
    /// Points in the plane; distance is Euclidean in double precision and time equals distance
    /// (the convention of the Solomon, Gehring & Homberger and Li & Lim benchmarks).
    Euclidean { coordinates: Vec<(f64, f64)> },
    /// Row-major square matrices: `distance[from * size + to]`.
    Matrix { size: usize, distance: Vec<f64>, time: Vec<f64> },
}

impl Travel {
    pub fn location_count(&self) -> usize {
        match self {
            Travel::Euclidean { coordinates } => coordinates.len(),
            Travel::Matrix { size, .. } => *size,
        }
    }

    pub fn distance(&self, from: usize, to: usize) -> f64 {
        match self {
            Travel::Euclidean { coordinates } => {
                let (x1, y1) = coordinates[from];
                let (x2, y2) = coordinates[to];
                ((x1 - x2) * (x1 - x2) + (y1 - y2) * (y1 - y2)).sqrt()
            }
            Travel::Matrix { size, distance, .. } => distance[from * size + to],
        }
    }

    pub fn time(&self, from: usize, to: usize) -> f64 {
        match self {
            Travel::Euclidean { .. } => self.distance(from, to),
            Travel::Matrix { size, time, .. } => time[from * size + to],
        }
    }

    /// Coordinates of a location, when travel is Euclidean.
    pub fn coordinates(&self, location: usize) -> Option<(f64, f64)> {
        match self {
            Travel::Euclidean { coordinates } => coordinates.get(location).copied(),
            Travel::Matrix { .. } => None,
        }
    }
}

/// A validated routing problem. Build it with [`Problem::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    name: String,
    vehicle_types: Vec<VehicleType>,
    jobs: Vec<Job>,
    travel: Travel,
}

impl Problem {
    /// Checks the parts fit together: locations exist, capacity dimensions agree, windows are
    /// sorted and non-empty, numbers are finite and non-negative.
    pub fn new(
        name: impl Into<String>,
        vehicle_types: Vec<VehicleType>,
        jobs: Vec<Job>,
        travel: Travel,
    ) -> Result<Problem, ModelError> {
        let location_count = travel.location_count();
        if let Travel::Euclidean { coordinates } = &travel
            && coordinates.iter().any(|(x, y)| !x.is_finite() || !y.is_finite())
        {
            return Err(ModelError::InvalidNumber { field: "coordinates".to_owned() });
        }
        if let Travel::Matrix { size, distance, time } = &travel {
            let expected = size * size;
            if distance.len() != expected || time.len() != expected {
                return Err(ModelError::MatrixSize { size: *size });
            }
            if distance.iter().chain(time.iter()).any(|value| !value.is_finite() || *value < 0.0) {
                return Err(ModelError::MatrixValue);
            }
        }
        if vehicle_types.is_empty() {
            return Err(ModelError::NoVehicleType);
        }
        let dimensions = vehicle_types[0].capacity.len();
        if dimensions == 0 || dimensions > CAPACITY_DIMENSIONS_MAX {
            return Err(ModelError::CapacityDimensions { dimensions, dimensions_max: CAPACITY_DIMENSIONS_MAX });
        }
        for vehicle_type in &vehicle_types {
            let name = vehicle_type.name.clone();
            if vehicle_type.capacity.len() != dimensions {
                return Err(ModelError::VehicleCapacityDimensions { vehicle_type: name });
            }
            if vehicle_type.capacity.iter().any(|value| *value < 0) {
                return Err(ModelError::NegativeQuantity { field: format!("vehicle type {name}: capacity") });
            }
            if vehicle_type.start_location >= location_count || vehicle_type.end_location >= location_count {
                return Err(ModelError::UnknownLocation { field: format!("vehicle type {name}: location") });
            }
            let numbers = [
                vehicle_type.shift_start,
                vehicle_type.shift_end,
                vehicle_type.fixed_cost,
                vehicle_type.cost_per_distance,
                vehicle_type.cost_per_time,
            ];
            if numbers.iter().any(|value| !value.is_finite() || *value < 0.0)
                || vehicle_type.shift_end < vehicle_type.shift_start
            {
                return Err(ModelError::InvalidNumber { field: format!("vehicle type {name}: shift or cost") });
            }
        }
        let mut offered: Vec<&str> =
            vehicle_types.iter().flat_map(|vehicle_type| vehicle_type.skills.iter().map(String::as_str)).collect();
        offered.sort_unstable();
        offered.dedup();
        if offered.len() > SKILLS_MAX {
            return Err(ModelError::TooManySkills { skills: offered.len(), skills_max: SKILLS_MAX });
        }
        for job in &jobs {
            let name = job.name.clone();
            if job.demand.len() != dimensions {
                return Err(ModelError::JobDemandDimensions { job: name });
            }
            if job.demand.iter().any(|value| *value < 0) {
                return Err(ModelError::NegativeQuantity { field: format!("job {name}: demand") });
            }
            for (_, stop) in job.stops() {
                if stop.location >= location_count {
                    return Err(ModelError::UnknownLocation { field: format!("job {name}: location") });
                }
                if !stop.service_time.is_finite() || stop.service_time < 0.0 {
                    return Err(ModelError::InvalidNumber { field: format!("job {name}: service time") });
                }
                if stop.time_windows.is_empty() {
                    return Err(ModelError::TimeWindows { job: name });
                }
                let mut previous_end = f64::NEG_INFINITY;
                for window in &stop.time_windows {
                    if window.start.is_nan()
                        || window.end.is_nan()
                        || window.start > window.end
                        || window.start < previous_end
                    {
                        return Err(ModelError::TimeWindows { job: name });
                    }
                    previous_end = window.end;
                }
            }
        }
        Ok(Problem { name: name.into(), vehicle_types, jobs, travel })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn vehicle_types(&self) -> &[VehicleType] {
        &self.vehicle_types
    }

    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    pub fn travel(&self) -> &Travel {
        &self.travel
    }

    /// Number of capacity dimensions.
    pub fn capacity_dimensions(&self) -> usize {
        self.vehicle_types[0].capacity.len()
    }

    /// Total number of vehicles over all types.
    pub fn vehicle_count(&self) -> usize {
        self.vehicle_types.iter().map(|vehicle_type| vehicle_type.count).sum()
    }

    /// Whether the vehicle type has every skill the job requires.
    pub fn has_skills(&self, vehicle_type: usize, job: usize) -> bool {
        let offered = &self.vehicle_types[vehicle_type].skills;
        self.jobs[job].skills.iter().all(|skill| offered.contains(skill))
    }
}
