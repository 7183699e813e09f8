//! The search's compact view of a problem: one node per stop, dense travel matrices, vehicle
//! slots, granular neighbour lists, and the segment algebra of Vidal et al. (2013) for O(1)
//! evaluation of time warp, duration, distance and load of a concatenation of route pieces.

use crate::model::{CAPACITY_DIMENSIONS_MAX, JobKind, Problem, StopRole, TimeWindow};

pub(crate) type Load = [i64; CAPACITY_DIMENSIONS_MAX];

/// Marks "no partner" for a node that is not half of a pickup-and-delivery pair.
pub(crate) const NO_PARTNER: usize = usize::MAX;

/// Number of nearest nodes each node considers in the local search (granular neighbourhood).
pub(crate) const NEIGHBOURS_MAX: usize = 40;

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub job: usize,
    pub role: StopRole,
    pub location: usize,
    pub service_time: f64,
    /// Hull of the windows, used by the segment algebra.
    pub earliest: f64,
    pub latest: f64,
    /// All windows; more than one means the hull is checked exactly afterwards.
    pub windows: Vec<TimeWindow>,
    pub skills: u64,
    pub partner: usize,
    pub is_pickup: bool,
    pub segment: Segment,
}

#[derive(Debug, Clone)]
pub(crate) struct VehicleKind {
    pub capacity: Load,
    pub skills: u64,
    pub fixed_cost: f64,
    pub cost_per_distance: f64,
    pub cost_per_time: f64,
    pub start_segment: Segment,
    pub end_segment: Segment,
}

/// A summary of a sequence of visits (Vidal et al. 2013, with loads that may go up and down).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub first: usize,
    pub last: usize,
    pub distance: f64,
    pub duration: f64,
    pub time_warp: f64,
    pub earliest: f64,
    pub latest: f64,
    /// Load on board when entering that the segment's plain deliveries need.
    pub initial: Load,
    /// Net change of load over the segment.
    pub net: Load,
    /// Highest load inside the segment when it is a route of its own.
    pub peak: Load,
}

#[derive(Debug)]
pub(crate) struct Data {
    pub nodes: Vec<Node>,
    pub kinds: Vec<VehicleKind>,
    /// The vehicle kind of each route slot.
    pub slots: Vec<usize>,
    pub location_count: usize,
    pub distance: Vec<f64>,
    pub time: Vec<f64>,
    pub neighbours: Vec<Vec<usize>>,
    pub has_pairs: bool,
    pub has_multiple_windows: bool,
    /// Polar angle of each node around the first start location.
    pub angle: Vec<f64>,
    pub angle_cosine: Vec<f64>,
    pub angle_sine: Vec<f64>,
    /// Whether distance and time are the same both ways.
    pub symmetric: bool,
    /// Largest demand sum and largest distance, used to scale penalties.
    pub demand_max: f64,
    pub distance_max: f64,
}

impl Data {
    #[inline]
    pub fn distance(&self, from: usize, to: usize) -> f64 {
        self.distance[from * self.location_count + to]
    }

    #[inline]
    pub fn time(&self, from: usize, to: usize) -> f64 {
        self.time[from * self.location_count + to]
    }

    #[inline(always)]
    pub fn merge(&self, a: &Segment, b: &Segment) -> Segment {
        let index = a.last * self.location_count + b.first;
        let travel_time = self.time[index];
        let delta = a.duration - a.time_warp + travel_time;
        let wait = (b.earliest - delta - a.latest).max(0.0);
        let warp = (a.earliest + delta - b.latest).max(0.0);
        let mut initial = [0; CAPACITY_DIMENSIONS_MAX];
        let mut net = [0; CAPACITY_DIMENSIONS_MAX];
        let mut peak = [0; CAPACITY_DIMENSIONS_MAX];
        for dimension in 0..CAPACITY_DIMENSIONS_MAX {
            initial[dimension] = a.initial[dimension] + b.initial[dimension];
            net[dimension] = a.net[dimension] + b.net[dimension];
            peak[dimension] = (a.peak[dimension] + b.initial[dimension])
                .max(b.peak[dimension] + a.initial[dimension] + a.net[dimension]);
        }
        Segment {
            first: a.first,
            last: b.last,
            distance: a.distance + b.distance + self.distance[index],
            duration: a.duration + b.duration + travel_time + wait,
            time_warp: a.time_warp + b.time_warp + warp,
            earliest: (b.earliest - delta).max(a.earliest) - wait,
            latest: (b.latest - delta).min(a.latest) + warp,
            initial,
            net,
            peak,
        }
    }

    #[inline]
    pub fn merge3(&self, a: &Segment, b: &Segment, c: &Segment) -> Segment {
        self.merge(&self.merge(a, b), c)
    }

    /// Whether a vehicle of `kind` has every skill `node` needs.
    #[inline]
    pub fn compatible(&self, node: usize, kind: usize) -> bool {
        self.nodes[node].skills & !self.kinds[kind].skills == 0
    }

    /// Capacity excess of a whole route segment for a vehicle kind, summed over dimensions.
    #[inline]
    pub fn excess(&self, segment: &Segment, kind: usize) -> i64 {
        let capacity = &self.kinds[kind].capacity;
        (0..CAPACITY_DIMENSIONS_MAX).map(|dimension| (segment.peak[dimension] - capacity[dimension]).max(0)).sum()
    }

    /// Cost without penalties of a whole (non-empty) route segment.
    #[inline]
    pub fn plain_cost(&self, segment: &Segment, kind: usize) -> f64 {
        let vehicle = &self.kinds[kind];
        vehicle.fixed_cost + vehicle.cost_per_distance * segment.distance + vehicle.cost_per_time * segment.duration
    }

    /// Builds the search data for the jobs marked `included`.
    pub fn build(problem: &Problem, included: &[bool]) -> Data {
        let travel = problem.travel();
        let location_count = travel.location_count();
        let mut distance = vec![0.0; location_count * location_count];
        let mut time = vec![0.0; location_count * location_count];
        let mut distance_max: f64 = 0.0;
        for from in 0..location_count {
            for to in 0..location_count {
                distance[from * location_count + to] = travel.distance(from, to);
                time[from * location_count + to] = travel.time(from, to);
                distance_max = distance_max.max(distance[from * location_count + to]);
            }
        }
        let mut skill_names: Vec<&str> = problem
            .vehicle_types()
            .iter()
            .flat_map(|vehicle_type| vehicle_type.skills.iter().map(String::as_str))
            .collect();
        skill_names.sort_unstable();
        skill_names.dedup();
        let mask = |skills: &[String]| -> u64 {
            skills.iter().fold(0u64, |mask, skill| {
                match skill_names.binary_search(&skill.as_str()) {
                    Ok(bit) => mask | (1 << bit),
                    // A skill no vehicle offers: such jobs are left out before the search.
                    Err(_) => u64::MAX,
                }
            })
        };
        let mut kinds = Vec::new();
        let mut slots = Vec::new();
        for (index, vehicle_type) in problem.vehicle_types().iter().enumerate() {
            let mut capacity = [0; CAPACITY_DIMENSIONS_MAX];
            capacity[..vehicle_type.capacity.len()].copy_from_slice(&vehicle_type.capacity);
            let depot = |location: usize| Segment {
                first: location,
                last: location,
                distance: 0.0,
                duration: 0.0,
                time_warp: 0.0,
                earliest: vehicle_type.shift_start,
                latest: vehicle_type.shift_end,
                initial: [0; CAPACITY_DIMENSIONS_MAX],
                net: [0; CAPACITY_DIMENSIONS_MAX],
                peak: [0; CAPACITY_DIMENSIONS_MAX],
            };
            kinds.push(VehicleKind {
                capacity,
                skills: mask(&vehicle_type.skills),
                fixed_cost: vehicle_type.fixed_cost,
                cost_per_distance: vehicle_type.cost_per_distance,
                cost_per_time: vehicle_type.cost_per_time,
                start_segment: depot(vehicle_type.start_location),
                end_segment: depot(vehicle_type.end_location),
            });
            // Never more routes of a type than jobs: a fleet of millions costs nothing.
            let job_count = included.iter().filter(|&&flag| flag).count();
            slots.extend(std::iter::repeat_n(index, vehicle_type.count.min(job_count)));
        }
        let mut nodes = Vec::new();
        let mut has_pairs = false;
        let mut has_multiple_windows = false;
        let mut demand_max: f64 = 1.0;
        for (job_index, job) in problem.jobs().iter().enumerate() {
            if !included[job_index] {
                continue;
            }
            let mut demand = [0; CAPACITY_DIMENSIONS_MAX];
            demand[..job.demand.len()].copy_from_slice(&job.demand);
            demand_max = demand_max.max(job.demand.iter().copied().max().unwrap_or(0) as f64);
            let is_pair = matches!(job.kind, JobKind::PickupAndDelivery { .. });
            has_pairs |= is_pair;
            let first_index = nodes.len();
            for (role, stop) in job.stops() {
                let mut initial = [0; CAPACITY_DIMENSIONS_MAX];
                let mut net = [0; CAPACITY_DIMENSIONS_MAX];
                let mut peak = [0; CAPACITY_DIMENSIONS_MAX];
                for dimension in 0..CAPACITY_DIMENSIONS_MAX {
                    match role {
                        StopRole::Pickup => net[dimension] = demand[dimension],
                        StopRole::Delivery => {
                            net[dimension] = -demand[dimension];
                            if !is_pair {
                                initial[dimension] = demand[dimension];
                            }
                        }
                    }
                    peak[dimension] = initial[dimension].max(initial[dimension] + net[dimension]);
                }
                let earliest = stop.time_windows.first().map_or(0.0, |window| window.start);
                let latest = stop.time_windows.last().map_or(f64::MAX, |window| window.end);
                has_multiple_windows |= stop.time_windows.len() > 1;
                nodes.push(Node {
                    job: job_index,
                    role,
                    location: stop.location,
                    service_time: stop.service_time,
                    earliest,
                    latest,
                    windows: stop.time_windows.clone(),
                    skills: mask(&job.skills),
                    partner: NO_PARTNER,
                    is_pickup: role == StopRole::Pickup,
                    segment: Segment {
                        first: stop.location,
                        last: stop.location,
                        distance: 0.0,
                        duration: stop.service_time,
                        time_warp: 0.0,
                        earliest,
                        latest,
                        initial,
                        net,
                        peak,
                    },
                });
            }
            if is_pair {
                nodes[first_index].partner = first_index + 1;
                nodes[first_index + 1].partner = first_index;
            }
        }
        let origin = travel.coordinates(problem.vehicle_types()[0].start_location);
        let angle: Vec<f64> = nodes
            .iter()
            .map(|node| match (origin, travel.coordinates(node.location)) {
                (Some((x0, y0)), Some((x, y))) => (y - y0).atan2(x - x0),
                _ => 0.0,
            })
            .collect();
        let angle_cosine = angle_of(&angle, f64::cos);
        let angle_sine = angle_of(&angle, f64::sin);
        let symmetric = (0..location_count).all(|from| {
            (0..from).all(|to| {
                distance[from * location_count + to] == distance[to * location_count + from]
                    && time[from * location_count + to] == time[to * location_count + from]
            })
        });
        let mut data = Data {
            nodes,
            kinds,
            slots,
            location_count,
            distance,
            time,
            neighbours: Vec::new(),
            has_pairs,
            has_multiple_windows,
            angle,
            angle_cosine,
            angle_sine,
            symmetric,
            demand_max,
            distance_max,
        };
        data.neighbours = data.granular_neighbours();
        data
    }

    /// The closest nodes by the correlation measure of Vidal et al. (2013): distance plus
    /// weighted waiting and time warp when going from one to the other, symmetrised.
    fn granular_neighbours(&self) -> Vec<Vec<usize>> {
        const WAIT_WEIGHT: f64 = 0.2;
        const WARP_WEIGHT: f64 = 1.0;
        let count = self.nodes.len();
        let proximity = |from: &Node, to: &Node| -> f64 {
            let travel = self.time(from.location, to.location);
            let wait = (to.earliest - travel - from.service_time - from.latest).max(0.0);
            let warp = (from.earliest + from.service_time + travel - to.latest).max(0.0);
            self.distance(from.location, to.location) + WAIT_WEIGHT * wait + WARP_WEIGHT * warp
        };
        (0..count)
            .map(|node| {
                let mut others: Vec<(f64, usize)> = (0..count)
                    .filter(|&other| other != node)
                    .map(|other| {
                        let a = proximity(&self.nodes[node], &self.nodes[other]);
                        let b = proximity(&self.nodes[other], &self.nodes[node]);
                        (a.min(b), other)
                    })
                    .collect();
                others.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                others.truncate(NEIGHBOURS_MAX);
                others.into_iter().map(|(_, other)| other).collect()
            })
            .collect()
    }
}

fn angle_of(angles: &[f64], function: fn(f64) -> f64) -> Vec<f64> {
    angles.iter().map(|&angle| function(angle)).collect()
}
