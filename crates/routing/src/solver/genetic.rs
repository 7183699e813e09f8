//! Hybrid genetic search (Vidal et al. 2012, 2013; Vidal 2022): a population split into
//! feasible and infeasible individuals, biased fitness from cost rank and diversity rank (broken
//! pairs distance), selective route exchange crossover (SREX, Nagata & Kobayashi 2010), the
//! granular local search as education, repair of infeasible offspring, and penalties adjusted
//! towards a target share of feasible offspring.

use super::data::Data;
use super::rng::Rng;
use super::search::{LocalSearch, Penalties, Routes, cost_of};

/// Population parameters (the defaults of HGS-CVRP, Vidal 2022).
const POPULATION_MIN: usize = 25;
const GENERATION_SIZE: usize = 40;
const ELITE_COUNT: usize = 4;
const CLOSE_COUNT: usize = 5;
const FEASIBLE_TARGET: f64 = 0.2;
/// Educated offspring between two penalty updates.
const PENALTY_UPDATE_INTERVAL: u64 = 50;
/// Penalty per time unit of time warp at the start (tuned on a subset of Solomon; it adapts).
const TIME_WARP_PENALTY_INITIAL: f64 = 3.0;
const PENALTY_INCREASE: f64 = 1.2;
const PENALTY_DECREASE: f64 = 0.85;
const PENALTY_MIN: f64 = 0.1;
const PENALTY_MAX: f64 = 100_000.0;
const REPAIR_PROBABILITY: f64 = 0.5;
const REPAIR_PENALTY_FACTOR: f64 = 10.0;
/// Iterations without improvement of the best feasible solution before the population restarts.
const RESTART_ITERATIONS: u64 = 20_000;
/// Share of the run (time or iterations) spent lowering the route count under the
/// fewest-vehicles objective; the rest minimises cost with the best count found.
const FLEET_MINIMISATION_SHARE: f64 = 0.5;
/// Time warp below this counts as zero in the search (floating-point rounding).
pub(crate) const TIME_WARP_TOLERANCE: f64 = 1e-9;

#[derive(Debug, Clone)]
pub(crate) struct Individual {
    pub routes: Routes,
    pub plain_cost: f64,
    pub excess: i64,
    pub time_warp: f64,
    pub route_count: usize,
    /// Nodes in no route (never expected; such an individual is never feasible).
    unrouted: usize,
    successor: Vec<usize>,
    predecessor: Vec<usize>,
}

const DEPOT: usize = usize::MAX;
const UNROUTED_PENALTY: f64 = 1e12;

impl Individual {
    pub fn new(data: &Data, routes: Routes) -> Individual {
        let node_count = data.nodes.len();
        let mut successor = vec![DEPOT; node_count];
        let mut predecessor = vec![DEPOT; node_count];
        let mut plain_cost = 0.0;
        let mut excess = 0;
        let mut time_warp = 0.0;
        let mut route_count = 0;
        for (slot, nodes) in routes.iter().enumerate() {
            if nodes.is_empty() {
                continue;
            }
            route_count += 1;
            let kind = data.slots[slot];
            let mut segment = data.kinds[kind].start_segment;
            for (index, &node) in nodes.iter().enumerate() {
                segment = data.merge(&segment, &data.nodes[node].segment);
                predecessor[node] = if index == 0 { DEPOT } else { nodes[index - 1] };
                successor[node] = nodes.get(index + 1).copied().unwrap_or(DEPOT);
            }
            segment = data.merge(&segment, &data.kinds[kind].end_segment);
            plain_cost += data.plain_cost(&segment, kind);
            excess += data.excess(&segment, kind);
            time_warp += if data.has_multiple_windows { exact_time_warp(data, kind, nodes) } else { segment.time_warp };
        }
        let unrouted = node_count.saturating_sub(routes.iter().map(Vec::len).sum::<usize>());
        debug_assert_eq!(unrouted, 0, "every node is routed");
        Individual { routes, plain_cost, excess, time_warp, route_count, unrouted, successor, predecessor }
    }

    pub fn is_feasible(&self) -> bool {
        self.excess == 0 && self.time_warp <= TIME_WARP_TOLERANCE && self.unrouted == 0
    }

    pub fn penalised(&self, penalties: &Penalties) -> f64 {
        self.plain_cost
            + penalties.load * self.excess as f64
            + penalties.time_warp * self.time_warp
            + UNROUTED_PENALTY * self.unrouted as f64
    }

    /// Broken pairs distance: share of nodes whose neighbours differ.
    fn distance(&self, other: &Individual) -> f64 {
        let count = self.successor.len();
        if count == 0 {
            return 0.0;
        }
        let mut broken = 0usize;
        for node in 0..count {
            let successor = self.successor[node];
            if successor != other.successor[node] && successor != other.predecessor[node] {
                broken += 1;
            }
            if self.predecessor[node] == DEPOT && other.predecessor[node] != DEPOT && other.successor[node] != DEPOT {
                broken += 1;
            }
        }
        broken as f64 / count as f64
    }
}

/// Time warp of a route with every window checked (not only the hull): the vehicle waits for the
/// next window when early, and travels back in time to the last window's end when late.
pub(crate) fn exact_time_warp(data: &Data, kind: usize, nodes: &[usize]) -> f64 {
    let vehicle = &data.kinds[kind];
    let mut time = vehicle.start_segment.earliest;
    let mut location = vehicle.start_segment.first;
    let mut warp = 0.0;
    for &node in nodes {
        let node = &data.nodes[node];
        let arrival = time + data.time(location, node.location);
        let start = match node.windows.iter().find(|window| arrival <= window.end) {
            Some(window) => arrival.max(window.start),
            None => {
                let end = node.windows.last().map_or(arrival, |window| window.end);
                warp += arrival - end;
                end
            }
        };
        time = start + node.service_time;
        location = node.location;
    }
    let arrival = time + data.time(location, vehicle.end_segment.first);
    warp + (arrival - vehicle.end_segment.latest).max(0.0)
}

#[derive(Debug, Default)]
struct SubPopulation {
    members: Vec<Individual>,
    /// Pairwise broken-pairs distances, aligned with `members`.
    distances: Vec<Vec<f64>>,
    fitness: Vec<f64>,
}

impl SubPopulation {
    fn add(&mut self, individual: Individual) {
        let row: Vec<f64> = self.members.iter().map(|member| member.distance(&individual)).collect();
        for (index, value) in row.iter().enumerate() {
            self.distances[index].push(*value);
        }
        let mut own = row;
        own.push(0.0);
        self.distances.push(own);
        self.members.push(individual);
    }

    fn remove(&mut self, index: usize) {
        self.members.remove(index);
        self.distances.remove(index);
        for row in &mut self.distances {
            row.remove(index);
        }
    }

    fn diversity(&self, index: usize) -> f64 {
        let mut others: Vec<f64> = self.distances[index]
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(_, value)| *value)
            .collect();
        if others.is_empty() {
            return 0.0;
        }
        let count = CLOSE_COUNT.min(others.len());
        others.select_nth_unstable_by(count - 1, f64::total_cmp);
        others[..count].iter().sum::<f64>() / count as f64
    }

    fn update_fitness(&mut self, penalties: &Penalties) {
        let size = self.members.len();
        self.fitness = vec![0.0; size];
        if size <= 1 {
            return;
        }
        let mut by_cost: Vec<usize> = (0..size).collect();
        by_cost.sort_by(|&a, &b| self.members[a].penalised(penalties).total_cmp(&self.members[b].penalised(penalties)));
        let diversity: Vec<f64> = (0..size).map(|index| self.diversity(index)).collect();
        let mut by_diversity: Vec<usize> = (0..size).collect();
        by_diversity.sort_by(|&a, &b| diversity[b].total_cmp(&diversity[a]));
        let mut diversity_rank = vec![0usize; size];
        for (rank, &index) in by_diversity.iter().enumerate() {
            diversity_rank[index] = rank;
        }
        let scale = (size - 1) as f64;
        let elite_weight = 1.0 - ELITE_COUNT as f64 / size as f64;
        for (rank, &index) in by_cost.iter().enumerate() {
            self.fitness[index] = rank as f64 / scale + elite_weight * diversity_rank[index] as f64 / scale;
        }
    }

    /// Removes individuals until the minimum size remains: clones first, then worst fitness.
    fn select_survivors(&mut self, penalties: &Penalties) {
        while self.members.len() > POPULATION_MIN {
            self.update_fitness(penalties);
            let size = self.members.len();
            let is_clone = |index: usize| (0..size).any(|other| other != index && self.distances[index][other] < 1e-12);
            let worst = (0..size)
                .filter(|&index| is_clone(index))
                .max_by(|&a, &b| self.fitness[a].total_cmp(&self.fitness[b]))
                .or_else(|| (0..size).max_by(|&a, &b| self.fitness[a].total_cmp(&self.fitness[b])));
            match worst {
                Some(index) => self.remove(index),
                None => break,
            }
        }
        self.update_fitness(penalties);
    }
}

/// Objective order: plain cost, or (route count, plain cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Cost,
    RoutesThenCost,
}

impl Order {
    pub fn better(self, a: &Individual, b: &Individual) -> bool {
        match self {
            Order::Cost => a.plain_cost < b.plain_cost - 1e-9,
            Order::RoutesThenCost => {
                a.route_count < b.route_count || (a.route_count == b.route_count && a.plain_cost < b.plain_cost - 1e-9)
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Genetic<'a> {
    data: &'a Data,
    search: LocalSearch<'a>,
    rng: Rng,
    penalties: Penalties,
    feasible: SubPopulation,
    infeasible: SubPopulation,
    pub best: Option<Individual>,
    /// Best individual of any feasibility, used when no feasible one is found.
    pub best_any: Option<(f64, Individual)>,
    order: Order,
    load_feasible_history: Vec<bool>,
    time_feasible_history: Vec<bool>,
    pub iterations: u64,
    last_improvement: u64,
    minimising_fleet: bool,
}

impl<'a> Genetic<'a> {
    pub fn new(data: &'a Data, seed: u64, order: Order) -> Genetic<'a> {
        let penalty_load = (data.distance_max / data.demand_max).clamp(PENALTY_MIN, 1000.0);
        Genetic {
            data,
            search: LocalSearch::new(data, data.slots.len()),
            rng: Rng::new(seed),
            penalties: Penalties { load: penalty_load, time_warp: TIME_WARP_PENALTY_INITIAL },
            feasible: SubPopulation::default(),
            infeasible: SubPopulation::default(),
            best: None,
            best_any: None,
            order,
            load_feasible_history: Vec::new(),
            time_feasible_history: Vec::new(),
            iterations: 0,
            last_improvement: 0,
            minimising_fleet: order == Order::RoutesThenCost,
        }
    }

    /// A random solution: nodes (pairs together) in random order, filled into routes by the
    /// capacity of the first dimension, then educated.
    fn random_routes(&mut self) -> Routes {
        let data = self.data;
        let mut units: Vec<usize> = (0..data.nodes.len())
            .filter(|&node| data.nodes[node].partner == super::data::NO_PARTNER || data.nodes[node].is_pickup)
            .collect();
        self.rng.shuffle(&mut units);
        let slot_count = self.search.slot_count();
        let mut routes: Routes = vec![Vec::new(); slot_count];
        if slot_count == 0 {
            return routes;
        }
        let total: i64 = units.iter().map(|&node| data.nodes[node].segment.peak[0]).sum();
        let capacity_total: i64 = (0..slot_count).map(|slot| data.kinds[data.slots[slot]].capacity[0]).sum();
        let mut slot = 0;
        let mut load = 0;
        let share = if capacity_total > 0 { total as f64 / capacity_total as f64 } else { 1.0 };
        for node in units {
            let capacity = data.kinds[data.slots[slot]].capacity[0] as f64 * share.clamp(0.0, 1.0);
            let demand = data.nodes[node].segment.peak[0];
            if load > 0 && (load + demand) as f64 > capacity && slot + 1 < slot_count {
                slot += 1;
                load = 0;
            }
            load += demand;
            routes[slot].push(node);
            let partner = data.nodes[node].partner;
            if partner != super::data::NO_PARTNER {
                routes[slot].push(partner);
            }
        }
        routes
    }

    fn educate(&mut self, routes: &Routes, missing: &[usize]) -> Individual {
        self.search.load(routes, self.penalties, &mut self.rng);
        if !missing.is_empty() {
            self.search.insert_missing(missing, &mut self.rng);
        }
        self.search.run(&mut self.rng);
        Individual::new(self.data, self.search.export())
    }

    fn consider_best(&mut self, individual: &Individual) {
        if individual.is_feasible() {
            if self.best.as_ref().is_none_or(|best| self.order.better(individual, best)) {
                self.best = Some(individual.clone());
                self.last_improvement = self.iterations;
                self.apply_route_limit();
            }
        } else {
            let score = individual.penalised(&Penalties { load: 1e6, time_warp: 1e6 });
            if self.best_any.as_ref().is_none_or(|(best, _)| score < *best) {
                self.best_any = Some((score, individual.clone()));
            }
        }
    }

    /// Fleet minimisation (Vidal et al. 2013): while minimising, with k routes feasible the
    /// search goes on with k - 1 (penalties steer it towards feasibility); afterwards it keeps
    /// the best k and minimises cost.
    fn apply_route_limit(&mut self) {
        if self.order != Order::RoutesThenCost {
            return;
        }
        if let Some(best) = &self.best {
            let limit =
                if self.minimising_fleet { best.route_count.saturating_sub(1).max(1) } else { best.route_count };
            self.search.set_route_limit(limit);
        }
    }

    /// Tells how far the run is (0 to 1): the first half minimises the fleet.
    pub fn set_progress(&mut self, progress: f64) {
        let minimising = progress < FLEET_MINIMISATION_SHARE;
        if minimising != self.minimising_fleet {
            self.minimising_fleet = minimising;
            self.apply_route_limit();
        }
    }

    fn insert(&mut self, individual: Individual) {
        self.consider_best(&individual);
        let penalties = self.penalties;
        let population = if individual.is_feasible() { &mut self.feasible } else { &mut self.infeasible };
        population.add(individual);
        if population.members.len() >= POPULATION_MIN + GENERATION_SIZE {
            population.select_survivors(&penalties);
        }
    }

    /// Educates an offspring, records its feasibility, inserts it, and repairs it when
    /// infeasible (with stronger penalties, half of the time).
    fn educate_and_insert(&mut self, routes: &Routes, missing: &[usize]) {
        let individual = self.educate(routes, missing);
        self.load_feasible_history.push(individual.excess == 0);
        self.time_feasible_history.push(individual.time_warp <= TIME_WARP_TOLERANCE);
        if self.time_feasible_history.len() as u64 >= PENALTY_UPDATE_INTERVAL {
            self.update_penalties();
        }
        let feasible = individual.is_feasible();
        let repair_routes = (!feasible).then(|| individual.routes.clone());
        self.insert(individual);
        if let Some(routes) = repair_routes
            && self.rng.unit() < REPAIR_PROBABILITY
        {
            let strong = Penalties {
                load: self.penalties.load * REPAIR_PENALTY_FACTOR,
                time_warp: self.penalties.time_warp * REPAIR_PENALTY_FACTOR,
            };
            self.search.load(&routes, strong, &mut self.rng);
            self.search.run(&mut self.rng);
            let repaired = Individual::new(self.data, self.search.export());
            if repaired.is_feasible() {
                self.insert(repaired);
            }
        }
    }

    /// Fills the population with educated random solutions until it holds four times the
    /// minimum size or `time_up` says so (after at least one).
    pub fn initialise(&mut self, time_up: &dyn Fn() -> bool) {
        for index in 0..4 * POPULATION_MIN {
            if time_up() && (self.best.is_some() || self.best_any.is_some()) {
                break;
            }
            if index % 2 == 0 {
                // Cheapest insertion in random order: a good start when time is short.
                let empty: Routes = vec![Vec::new(); self.search.slot_count()];
                let all: Vec<usize> = (0..self.data.nodes.len()).collect();
                self.educate_and_insert(&empty, &all);
            } else {
                let routes = self.random_routes();
                self.educate_and_insert(&routes, &[]);
            }
        }
    }

    fn update_penalties(&mut self) {
        let adjust = |penalty: f64, history: &[bool]| -> f64 {
            if history.is_empty() {
                return penalty;
            }
            let share = history.iter().filter(|&&flag| flag).count() as f64 / history.len() as f64;
            if share < FEASIBLE_TARGET - 0.05 {
                (penalty * PENALTY_INCREASE).min(PENALTY_MAX)
            } else if share > FEASIBLE_TARGET + 0.05 {
                (penalty * PENALTY_DECREASE).max(PENALTY_MIN)
            } else {
                penalty
            }
        };
        self.penalties.load = adjust(self.penalties.load, &self.load_feasible_history);
        self.penalties.time_warp = adjust(self.penalties.time_warp, &self.time_feasible_history);
        self.load_feasible_history.clear();
        self.time_feasible_history.clear();
        let penalties = self.penalties;
        self.infeasible.update_fitness(&penalties);
    }

    fn select_parent(&mut self) -> Individual {
        let total = self.feasible.members.len() + self.infeasible.members.len();
        let pick = |rng: &mut Rng| -> (f64, usize) {
            let index = rng.below(total);
            if index < self.feasible.members.len() {
                (self.feasible.fitness.get(index).copied().unwrap_or(0.0), index)
            } else {
                let inner = index - self.feasible.members.len();
                (self.infeasible.fitness.get(inner).copied().unwrap_or(0.0), index)
            }
        };
        let first = pick(&mut self.rng);
        let second = pick(&mut self.rng);
        let chosen = if first.0 <= second.0 { first.1 } else { second.1 };
        if chosen < self.feasible.members.len() {
            self.feasible.members[chosen].clone()
        } else {
            self.infeasible.members[chosen - self.feasible.members.len()].clone()
        }
    }

    fn restart(&mut self) {
        self.feasible = SubPopulation::default();
        self.infeasible = SubPopulation::default();
        self.last_improvement = self.iterations;
    }

    /// One generation step: two parents, SREX, education, insertion.
    pub fn iterate(&mut self, time_up: &dyn Fn() -> bool) {
        if self.feasible.members.len() + self.infeasible.members.len() < 2 {
            self.initialise(time_up);
            if self.feasible.members.len() + self.infeasible.members.len() < 2 {
                let routes = self.random_routes();
                self.educate_and_insert(&routes, &[]);
                self.iterations += 1;
                return;
            }
        }
        self.feasible.update_fitness(&self.penalties);
        self.infeasible.update_fitness(&self.penalties);
        let first = self.select_parent();
        let second = self.select_parent();
        let (routes, missing) = self.crossover(&first, &second);
        self.educate_and_insert(&routes, &missing);
        self.iterations += 1;
        if self.iterations - self.last_improvement > RESTART_ITERATIONS {
            self.restart();
        }
    }

    /// SREX: replace a run of routes of `first` (sorted by polar angle) by the best-overlapping
    /// run of routes of `second`; two offspring (duplicates removed from the kept routes of
    /// `first`, or from the routes taken from `second`), missing nodes inserted greedily; the
    /// cheaper one is returned as routes plus nodes still to insert.
    fn crossover(&mut self, first: &Individual, second: &Individual) -> (Routes, Vec<usize>) {
        let data = self.data;
        let slot_count = self.search.slot_count();
        let sorted = |individual: &Individual| -> Vec<usize> {
            let mut slots: Vec<(f64, usize)> = individual
                .routes
                .iter()
                .enumerate()
                .filter(|(slot, nodes)| !nodes.is_empty() && *slot < slot_count)
                .map(|(slot, nodes)| {
                    let (x, y) = nodes
                        .iter()
                        .fold((0.0, 0.0), |(x, y), &node| (x + data.angle_cosine[node], y + data.angle_sine[node]));
                    (y.atan2(x), slot)
                })
                .collect();
            slots.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            slots.into_iter().map(|(_, slot)| slot).collect()
        };
        let routes_a = sorted(first);
        let routes_b = sorted(second);
        if routes_a.is_empty() || routes_b.is_empty() {
            return (first.routes.clone(), Vec::new());
        }
        let move_count = 1 + self.rng.below(routes_a.len().min(routes_b.len()));
        let start_a = self.rng.below(routes_a.len());
        let selected_a: Vec<usize> =
            (0..move_count).map(|offset| routes_a[(start_a + offset) % routes_a.len()]).collect();
        let node_count = data.nodes.len();
        let mut in_selected_a = vec![false; node_count];
        for &slot in &selected_a {
            for &node in &first.routes[slot] {
                in_selected_a[node] = true;
            }
        }
        // The run of `second` sharing the most nodes with the selected routes of `first`.
        let mut best_start_b = 0;
        let mut best_overlap = -1i64;
        for start_b in 0..routes_b.len() {
            let overlap: i64 = (0..move_count)
                .map(|offset| {
                    let slot = routes_b[(start_b + offset) % routes_b.len()];
                    second.routes[slot].iter().filter(|&&node| in_selected_a[node]).count() as i64
                })
                .sum();
            if overlap > best_overlap {
                best_overlap = overlap;
                best_start_b = start_b;
            }
        }
        let selected_b: Vec<usize> =
            (0..move_count).map(|offset| routes_b[(best_start_b + offset) % routes_b.len()]).collect();
        let mut in_selected_b = vec![false; node_count];
        for &slot in &selected_b {
            for &node in &second.routes[slot] {
                in_selected_b[node] = true;
            }
        }
        // Slots for the routes of `second`: the freed slots of `first`, then empty ones.
        let mut free: Vec<usize> = selected_a.clone();
        free.extend((0..slot_count).filter(|&slot| first.routes.get(slot).is_none_or(|nodes| nodes.is_empty())));
        let mut base: Routes = vec![Vec::new(); slot_count];
        for (slot, nodes) in first.routes.iter().enumerate().take(slot_count) {
            if !selected_a.contains(&slot) {
                base[slot].clone_from(nodes);
            }
        }
        let mut placements: Vec<(usize, Vec<usize>)> = Vec::new();
        for &slot_b in &selected_b {
            let kind = data.slots[slot_b];
            let Some(position) = free.iter().position(|&slot| data.slots[slot] == kind) else {
                continue;
            };
            let slot = free.remove(position);
            placements.push((slot, second.routes[slot_b].clone()));
        }
        // Pairs move as one: a node counts as taken if it or its partner is.
        let partner_or_self = |node: usize| {
            let partner = data.nodes[node].partner;
            if partner == super::data::NO_PARTNER { node } else { partner }
        };
        let taken_b = |node: usize| in_selected_b[node] || in_selected_b[partner_or_self(node)];
        // Offspring 1: routes of `second` intact, duplicates removed from the kept routes.
        let mut child_one = base.clone();
        for nodes in &mut child_one {
            nodes.retain(|&node| !taken_b(node));
        }
        for (slot, nodes) in &placements {
            child_one[*slot].clone_from(nodes);
        }
        // Offspring 2: kept routes intact, routes of `second` reduced to nodes of the selection.
        let mut child_two = base;
        for (slot, nodes) in &placements {
            child_two[*slot] = nodes.iter().copied().filter(|&node| in_selected_a[node]).collect();
        }
        let missing_of = |routes: &Routes| -> Vec<usize> {
            let mut present = vec![false; node_count];
            for nodes in routes {
                for &node in nodes {
                    present[node] = true;
                }
            }
            (0..node_count).filter(|&node| !present[node]).collect()
        };
        let missing_one = missing_of(&child_one);
        let missing_two = missing_of(&child_two);
        let penalties = self.penalties;
        let evaluate =
            |routes: &Routes, missing: &[usize], rng: &mut Rng, search: &mut LocalSearch<'a>| -> (f64, Routes) {
                search.load(routes, penalties, rng);
                search.insert_missing(missing, rng);
                let routes = search.export();
                let cost: f64 = routes
                    .iter()
                    .enumerate()
                    .filter(|(_, nodes)| !nodes.is_empty())
                    .map(|(slot, nodes)| {
                        let kind = data.slots[slot];
                        let mut segment = data.kinds[kind].start_segment;
                        for &node in nodes {
                            segment = data.merge(&segment, &data.nodes[node].segment);
                        }
                        segment = data.merge(&segment, &data.kinds[kind].end_segment);
                        cost_of(data, &penalties, &segment, kind)
                    })
                    .sum();
                (cost, routes)
            };
        let (cost_one, routes_one) = evaluate(&child_one, &missing_one, &mut self.rng, &mut self.search);
        let (cost_two, routes_two) = evaluate(&child_two, &missing_two, &mut self.rng, &mut self.search);
        if cost_one <= cost_two { (routes_one, Vec::new()) } else { (routes_two, Vec::new()) }
    }
}
