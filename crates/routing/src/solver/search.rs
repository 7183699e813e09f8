//! Granular local search with penalised capacity and time warp (Vidal et al. 2013): relocate of
//! one or two nodes, swaps 1-1, 2-1 and 2-2, 2-opt inside a route, 2-opt* between routes,
//! SWAP* (Vidal 2022) and, for pickup-and-delivery pairs, relocation of a whole pair. Every move is
//! evaluated from prefix and suffix segments of the routes it touches.

use super::data::{Data, NO_PARTNER, Segment};
use super::rng::Rng;

/// Improvements smaller than this are treated as zero (to stop cycling on rounding).
const IMPROVEMENT_EPSILON: f64 = 1e-7;

/// Exchanges SWAP* evaluates exactly per route pair, chosen by a distance estimate.
const SWAP_STAR_CANDIDATES: usize = 4;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Penalties {
    pub load: f64,
    pub time_warp: f64,
}

#[derive(Debug, Clone)]
struct Route {
    kind: usize,
    nodes: Vec<usize>,
    /// `prefix[k]`: start depot then the first `k` nodes.
    prefix: Vec<Segment>,
    /// `suffix[k]` for `k` in 1..=n+1: node at position `k` to the end depot.
    suffix: Vec<Segment>,
    cost: f64,
    /// Total distance of the route.
    distance: f64,
    modified: u64,
    /// `open[k]`: pairs with the pickup at a position <= k and the delivery after k.
    open: Vec<u32>,
    /// Polar sector of the route (for SWAP*): centre angle and half width.
    angle_centre: f64,
    angle_half_width: f64,
}

#[derive(Debug)]
pub(crate) struct LocalSearch<'a> {
    data: &'a Data,
    routes: Vec<Route>,
    route_of: Vec<usize>,
    position_of: Vec<usize>,
    penalties: Penalties,
    step: u64,
    last_tested: Vec<u64>,
    order: Vec<usize>,
    /// Most routes that may be used (the fewest-vehicles objective lowers it).
    route_limit: usize,
}

/// A route as the individual stores it: the slot's vehicle kind is implied by its index.
pub(crate) type Routes = Vec<Vec<usize>>;

impl<'a> LocalSearch<'a> {
    pub fn new(data: &'a Data, slot_count: usize) -> LocalSearch<'a> {
        let node_count = data.nodes.len();
        let routes = (0..slot_count)
            .map(|slot| {
                let kind = data.slots[slot];
                Route {
                    kind,
                    nodes: Vec::new(),
                    prefix: Vec::new(),
                    suffix: Vec::new(),
                    cost: 0.0,
                    distance: 0.0,
                    modified: 0,
                    open: Vec::new(),
                    angle_centre: 0.0,
                    angle_half_width: 0.0,
                }
            })
            .collect();
        LocalSearch {
            data,
            routes,
            route_of: vec![usize::MAX; node_count],
            position_of: vec![0; node_count],
            penalties: Penalties { load: 1.0, time_warp: 1.0 },
            step: 0,
            last_tested: vec![0; node_count],
            order: (0..node_count).collect(),
            route_limit: slot_count,
        }
    }

    pub fn slot_count(&self) -> usize {
        self.routes.len()
    }

    pub fn set_route_limit(&mut self, route_limit: usize) {
        self.route_limit = route_limit.clamp(1, self.routes.len().max(1));
    }

    fn used_route_count(&self) -> usize {
        self.routes.iter().filter(|route| !route.nodes.is_empty()).count()
    }

    /// Whether one more route may be opened.
    fn may_open_route(&self) -> bool {
        self.used_route_count() < self.route_limit
    }

    /// Loads routes with the given penalties. Nodes that cannot stay where they are (a route
    /// beyond the slots or the route limit, a vehicle without the skill) are inserted again at
    /// their cheapest places.
    pub fn load(&mut self, routes: &Routes, penalties: Penalties, rng: &mut Rng) {
        self.penalties = penalties;
        self.route_of.fill(usize::MAX);
        let mut missing = Vec::new();
        for (slot, nodes) in routes.iter().enumerate() {
            if slot < self.routes.len() {
                let kind = self.routes[slot].kind;
                let data = self.data;
                let target = &mut self.routes[slot].nodes;
                target.clear();
                for &node in nodes {
                    if data.compatible(node, kind) {
                        target.push(node);
                    } else {
                        missing.push(node);
                    }
                }
            } else {
                missing.extend_from_slice(nodes);
            }
        }
        for slot in routes.len()..self.routes.len() {
            self.routes[slot].nodes.clear();
        }
        // Over the route limit: the smallest routes give up their nodes.
        let mut used: Vec<usize> = (0..self.routes.len()).filter(|&slot| !self.routes[slot].nodes.is_empty()).collect();
        if used.len() > self.route_limit {
            used.sort_by_key(|&slot| (self.routes[slot].nodes.len(), slot));
            for &slot in &used[..used.len() - self.route_limit] {
                missing.append(&mut self.routes[slot].nodes);
            }
        }
        for slot in 0..self.routes.len() {
            self.update_route(slot);
        }
        if !missing.is_empty() {
            self.insert_missing(&missing, rng);
        }
    }

    pub fn export(&self) -> Routes {
        self.routes.iter().map(|route| route.nodes.clone()).collect()
    }

    /// Whether a node is currently in a route.
    pub fn is_routed(&self, node: usize) -> bool {
        self.route_of[node] != usize::MAX
    }

    fn update_route(&mut self, slot: usize) {
        let data = self.data;
        let route = &mut self.routes[slot];
        let kind = &data.kinds[route.kind];
        let count = route.nodes.len();
        route.prefix.clear();
        route.prefix.push(kind.start_segment);
        for (index, &node) in route.nodes.iter().enumerate() {
            let segment = data.merge(&route.prefix[index], &data.nodes[node].segment);
            route.prefix.push(segment);
            self.route_of[node] = slot;
            self.position_of[node] = index + 1;
        }
        route.suffix.clear();
        route.suffix.resize(count + 2, kind.end_segment);
        for position in (1..=count).rev() {
            route.suffix[position] =
                data.merge(&data.nodes[route.nodes[position - 1]].segment, &route.suffix[position + 1]);
        }
        let full = data.merge(&route.prefix[count], &kind.end_segment);
        route.cost = if count == 0 { 0.0 } else { cost_of(data, &self.penalties, &full, route.kind) };
        route.distance = if count == 0 { 0.0 } else { full.distance };
        route.modified = self.step + 1;
        if data.has_pairs {
            route.open.clear();
            route.open.push(0);
            let mut open = 0u32;
            for &node in &route.nodes {
                let partner = data.nodes[node].partner;
                if partner != NO_PARTNER {
                    if data.nodes[node].is_pickup {
                        open += 1;
                    } else {
                        open -= 1;
                    }
                }
                route.open.push(open);
            }
        }
        if count > 0 {
            let (mut sum_x, mut sum_y) = (0.0, 0.0);
            for &node in &route.nodes {
                sum_x += data.angle_cosine[node];
                sum_y += data.angle_sine[node];
            }
            let centre = sum_y.atan2(sum_x);
            let mut width: f64 = 0.0;
            for &node in &route.nodes {
                width = width.max(angle_gap(data.angle[node], centre));
            }
            route.angle_centre = centre;
            route.angle_half_width = width;
        }
    }

    /// Location at `position` of a route: 0 is the start depot, n + 1 the end depot.
    #[inline(always)]
    fn location(&self, slot: usize, position: usize) -> usize {
        let route = &self.routes[slot];
        if position == 0 {
            self.data.kinds[route.kind].start_segment.first
        } else if position > route.nodes.len() {
            self.data.kinds[route.kind].end_segment.first
        } else {
            self.data.nodes[route.nodes[position - 1]].location
        }
    }

    #[inline]
    fn node_location(&self, node: usize) -> usize {
        self.data.nodes[node].location
    }

    /// A lower bound of a route's cost knowing only its distance (penalties and time cost are
    /// non-negative): moves whose bound does not improve are not evaluated further.
    #[inline]
    fn cost_bound(&self, kind: usize, distance: f64, count: usize) -> f64 {
        if count == 0 {
            return 0.0;
        }
        let vehicle = &self.data.kinds[kind];
        vehicle.fixed_cost + vehicle.cost_per_distance * distance
    }

    #[inline]
    fn route_cost(&self, segment: &Segment, kind: usize, count: usize) -> f64 {
        if count == 0 { 0.0 } else { cost_of(self.data, &self.penalties, segment, kind) }
    }

    /// Segment of the nodes at positions `from..=to` of a route (`from <= to`).
    fn range(&self, slot: usize, from: usize, to: usize) -> Segment {
        let nodes = &self.routes[slot].nodes;
        let mut segment = self.data.nodes[nodes[from - 1]].segment;
        for &node in &nodes[from..to] {
            segment = self.data.merge(&segment, &self.data.nodes[node].segment);
        }
        segment
    }

    /// Segment of the nodes at positions `from..=to` in reverse order.
    fn reversed_range(&self, slot: usize, from: usize, to: usize) -> Segment {
        let nodes = &self.routes[slot].nodes;
        let mut segment = self.data.nodes[nodes[to - 1]].segment;
        for position in (from..to).rev() {
            segment = self.data.merge(&segment, &self.data.nodes[nodes[position - 1]].segment);
        }
        segment
    }

    /// Suffix of `slot` from `position` carried to the end depot of `target_slot`'s vehicle.
    fn suffix_for(&self, slot: usize, position: usize, target_slot: usize) -> Segment {
        let route = &self.routes[slot];
        let target_kind = self.routes[target_slot].kind;
        if route.kind == target_kind {
            return route.suffix[position];
        }
        let end = self.data.kinds[target_kind].end_segment;
        if position > route.nodes.len() {
            return end;
        }
        let middle = self.range(slot, position, route.nodes.len());
        self.data.merge(&middle, &end)
    }

    /// Runs the local search until no move improves.
    pub fn run(&mut self, rng: &mut Rng) {
        rng.shuffle(&mut self.order);
        self.step += 1;
        for value in self.last_tested.iter_mut() {
            *value = 0;
        }
        let mut first_pass = true;
        loop {
            let mut improved = false;
            for order_index in 0..self.order.len() {
                let u = self.order[order_index];
                if !self.is_routed(u) {
                    continue;
                }
                let last_tested = self.last_tested[u];
                self.last_tested[u] = self.step;
                let neighbour_count = self.data.neighbours[u].len();
                let mut pair_targets: u128 = 0;
                for neighbour_index in 0..neighbour_count {
                    let v = self.data.neighbours[u][neighbour_index];
                    if !self.is_routed(v) {
                        continue;
                    }
                    let route_u = self.route_of[u];
                    let route_v = self.route_of[v];
                    if !first_pass
                        && self.routes[route_u].modified <= last_tested
                        && self.routes[route_v].modified <= last_tested
                    {
                        continue;
                    }
                    if self.apply_node_moves(u, route_v, self.position_of[v]) {
                        improved = true;
                        continue;
                    }
                    if self.position_of[v] == 1 && self.apply_node_moves(u, route_v, 0) {
                        improved = true;
                        continue;
                    }
                    if self.data.has_pairs && self.data.nodes[u].partner != NO_PARTNER && route_u != route_v {
                        let bit = 1u128 << (route_v % 128);
                        if pair_targets & bit == 0 {
                            pair_targets |= bit;
                            if self.try_pair_relocate(u, route_v) {
                                improved = true;
                            }
                        }
                    }
                }
                if !first_pass && self.try_empty_route(u) {
                    improved = true;
                }
            }
            if !self.data.has_pairs && self.try_swap_star_all() {
                improved = true;
            }
            first_pass = false;
            self.step += 1;
            if !improved {
                break;
            }
        }
    }

    /// Node moves of `u` with the visit at `position` of route `route_v` (0: its start depot).
    fn apply_node_moves(&mut self, u: usize, route_v: usize, position_v: usize) -> bool {
        self.try_relocate(u, route_v, position_v)
            || self.try_relocate_two(u, route_v, position_v)
            || (position_v > 0 && self.try_swap(u, route_v, position_v))
            || (position_v > 0 && self.try_swap_two_one(u, route_v, position_v))
            || (position_v > 0 && self.try_swap_two_two(u, route_v, position_v))
            || self.try_two_opt_star(u, route_v, position_v)
            || (position_v > 0 && self.try_two_opt(u, route_v, position_v))
    }

    fn commit(&mut self, slot: usize) {
        self.update_route(slot);
    }

    /// Whether positions after a rearrangement of one route keep every pickup before its
    /// delivery. `new_position` maps an old position to the new one.
    fn keeps_precedence(&self, slot: usize, moved: &[usize], new_position: impl Fn(usize) -> usize) -> bool {
        if !self.data.has_pairs {
            return true;
        }
        for &node in moved {
            let partner = self.data.nodes[node].partner;
            if partner == NO_PARTNER {
                continue;
            }
            if self.route_of[partner] != slot {
                return false;
            }
            let own = new_position(self.position_of[node]);
            let other = new_position(self.position_of[partner]);
            if self.data.nodes[node].is_pickup != (own < other) {
                return false;
            }
        }
        true
    }

    fn is_paired(&self, node: usize) -> bool {
        self.data.nodes[node].partner != NO_PARTNER
    }

    fn try_relocate(&mut self, u: usize, route_v: usize, position_v: usize) -> bool {
        let data = self.data;
        let route_u = self.route_of[u];
        let position_u = self.position_of[u];
        let ru = &self.routes[route_u];
        let rv = &self.routes[route_v];
        if route_u == route_v {
            if position_v == position_u || position_v + 1 == position_u {
                return false;
            }
            {
                let (before, after) = (self.location(route_u, position_u - 1), self.location(route_u, position_u + 1));
                let (left, right) = (self.location(route_u, position_v), self.location(route_u, position_v + 1));
                let here = self.node_location(u);
                let distance = ru.distance - data.distance(before, here) - data.distance(here, after)
                    + data.distance(before, after)
                    - data.distance(left, right)
                    + data.distance(left, here)
                    + data.distance(here, right);
                if self.cost_bound(ru.kind, distance, ru.nodes.len()) - ru.cost > -IMPROVEMENT_EPSILON {
                    return false;
                }
            }
            let node = &data.nodes[u].segment;
            let segment = if position_v < position_u {
                let mut segment = data.merge(&ru.prefix[position_v], node);
                if position_v + 1 < position_u {
                    segment = data.merge(&segment, &self.range(route_u, position_v + 1, position_u - 1));
                }
                data.merge(&segment, &ru.suffix[position_u + 1])
            } else {
                let mut segment = ru.prefix[position_u - 1];
                segment = data.merge(&segment, &self.range(route_u, position_u + 1, position_v));
                data.merge3(&segment, node, &ru.suffix[position_v + 1])
            };
            let delta = self.route_cost(&segment, ru.kind, ru.nodes.len()) - ru.cost;
            if delta > -IMPROVEMENT_EPSILON {
                return false;
            }
            let target = if position_v < position_u { position_v + 1 } else { position_v };
            let keeps = self.keeps_precedence(route_u, &[u], |position| {
                if position == position_u {
                    target
                } else if position_v < position_u && position > position_v && position < position_u {
                    position + 1
                } else if position_v > position_u && position > position_u && position <= position_v {
                    position - 1
                } else {
                    position
                }
            });
            if !keeps {
                return false;
            }
            let nodes = &mut self.routes[route_u].nodes;
            nodes.remove(position_u - 1);
            nodes.insert(target - 1, u);
            self.commit(route_u);
            return true;
        }
        if self.is_paired(u) || !data.compatible(u, rv.kind) {
            return false;
        }
        let count_u = ru.nodes.len() - 1;
        {
            let (before, after) = (self.location(route_u, position_u - 1), self.location(route_u, position_u + 1));
            let (left, right) = (self.location(route_v, position_v), self.location(route_v, position_v + 1));
            let here = self.node_location(u);
            let distance_u =
                ru.distance - data.distance(before, here) - data.distance(here, after) + data.distance(before, after);
            let distance_v =
                rv.distance - data.distance(left, right) + data.distance(left, here) + data.distance(here, right);
            let bound = self.cost_bound(ru.kind, distance_u, count_u)
                + self.cost_bound(rv.kind, distance_v, rv.nodes.len() + 1);
            if bound - ru.cost - rv.cost > -IMPROVEMENT_EPSILON {
                return false;
            }
        }
        let new_u = data.merge(&ru.prefix[position_u - 1], &self.suffix_for(route_u, position_u + 1, route_u));
        let new_v = data.merge3(&rv.prefix[position_v], &data.nodes[u].segment, &rv.suffix[position_v + 1]);
        let delta = self.route_cost(&new_u, ru.kind, count_u) + self.route_cost(&new_v, rv.kind, rv.nodes.len() + 1)
            - ru.cost
            - rv.cost;
        if delta > -IMPROVEMENT_EPSILON {
            return false;
        }
        self.routes[route_u].nodes.remove(position_u - 1);
        self.routes[route_v].nodes.insert(position_v, u);
        self.commit(route_u);
        self.commit(route_v);
        true
    }

    /// Moves `u` and its successor after the visit at `position_v` of another route.
    fn try_relocate_two(&mut self, u: usize, route_v: usize, position_v: usize) -> bool {
        let data = self.data;
        let route_u = self.route_of[u];
        if route_u == route_v {
            return false;
        }
        let position_u = self.position_of[u];
        let ru = &self.routes[route_u];
        let rv = &self.routes[route_v];
        if position_u >= ru.nodes.len() {
            return false;
        }
        let x = ru.nodes[position_u];
        if !data.compatible(u, rv.kind) || !data.compatible(x, rv.kind) {
            return false;
        }
        if (self.is_paired(u) || self.is_paired(x)) && !(data.nodes[u].partner == x && data.nodes[u].is_pickup) {
            return false;
        }
        {
            let (before, after) = (self.location(route_u, position_u - 1), self.location(route_u, position_u + 2));
            let (left, right) = (self.location(route_v, position_v), self.location(route_v, position_v + 1));
            let (first, second) = (self.node_location(u), self.node_location(x));
            let inner = data.distance(first, second);
            let distance_u = ru.distance - data.distance(before, first) - inner - data.distance(second, after)
                + data.distance(before, after);
            let distance_v = rv.distance - data.distance(left, right)
                + data.distance(left, first)
                + inner
                + data.distance(second, right);
            let bound = self.cost_bound(ru.kind, distance_u, ru.nodes.len() - 2)
                + self.cost_bound(rv.kind, distance_v, rv.nodes.len() + 2);
            if bound - ru.cost - rv.cost > -IMPROVEMENT_EPSILON {
                return false;
            }
        }
        let pair = data.merge(&data.nodes[u].segment, &data.nodes[x].segment);
        let new_u = data.merge(&ru.prefix[position_u - 1], &ru.suffix[position_u + 2]);
        let new_v = data.merge3(&rv.prefix[position_v], &pair, &rv.suffix[position_v + 1]);
        let delta = self.route_cost(&new_u, ru.kind, ru.nodes.len() - 2)
            + self.route_cost(&new_v, rv.kind, rv.nodes.len() + 2)
            - ru.cost
            - rv.cost;
        if delta > -IMPROVEMENT_EPSILON {
            return false;
        }
        self.routes[route_u].nodes.drain(position_u - 1..position_u + 1);
        self.routes[route_v].nodes.splice(position_v..position_v, [u, x]);
        self.commit(route_u);
        self.commit(route_v);
        true
    }

    fn try_swap(&mut self, u: usize, route_v: usize, position_v: usize) -> bool {
        let data = self.data;
        let route_u = self.route_of[u];
        let position_u = self.position_of[u];
        let ru = &self.routes[route_u];
        let rv = &self.routes[route_v];
        let v = rv.nodes[position_v - 1];
        if u == v {
            return false;
        }
        if route_u == route_v {
            let (low, high) = (position_u.min(position_v), position_u.max(position_v));
            let low_node = ru.nodes[low - 1];
            let high_node = ru.nodes[high - 1];
            let mut segment = data.merge(&ru.prefix[low - 1], &data.nodes[high_node].segment);
            if low + 1 < high {
                segment = data.merge(&segment, &self.range(route_u, low + 1, high - 1));
            }
            segment = data.merge3(&segment, &data.nodes[low_node].segment, &ru.suffix[high + 1]);
            let delta = self.route_cost(&segment, ru.kind, ru.nodes.len()) - ru.cost;
            if delta > -IMPROVEMENT_EPSILON {
                return false;
            }
            let keeps = self.keeps_precedence(route_u, &[u, v], |position| {
                if position == low {
                    high
                } else if position == high {
                    low
                } else {
                    position
                }
            });
            if !keeps {
                return false;
            }
            self.routes[route_u].nodes.swap(low - 1, high - 1);
            self.commit(route_u);
            return true;
        }
        if self.is_paired(u) || self.is_paired(v) || !data.compatible(u, rv.kind) || !data.compatible(v, ru.kind) {
            return false;
        }
        {
            let (before_u, after_u) = (self.location(route_u, position_u - 1), self.location(route_u, position_u + 1));
            let (before_v, after_v) = (self.location(route_v, position_v - 1), self.location(route_v, position_v + 1));
            let (here_u, here_v) = (self.node_location(u), self.node_location(v));
            let distance_u = ru.distance - data.distance(before_u, here_u) - data.distance(here_u, after_u)
                + data.distance(before_u, here_v)
                + data.distance(here_v, after_u);
            let distance_v = rv.distance - data.distance(before_v, here_v) - data.distance(here_v, after_v)
                + data.distance(before_v, here_u)
                + data.distance(here_u, after_v);
            let bound = self.cost_bound(ru.kind, distance_u, ru.nodes.len())
                + self.cost_bound(rv.kind, distance_v, rv.nodes.len());
            if bound - ru.cost - rv.cost > -IMPROVEMENT_EPSILON {
                return false;
            }
        }
        let new_u = data.merge3(&ru.prefix[position_u - 1], &data.nodes[v].segment, &ru.suffix[position_u + 1]);
        let new_v = data.merge3(&rv.prefix[position_v - 1], &data.nodes[u].segment, &rv.suffix[position_v + 1]);
        let delta = self.route_cost(&new_u, ru.kind, ru.nodes.len()) + self.route_cost(&new_v, rv.kind, rv.nodes.len())
            - ru.cost
            - rv.cost;
        if delta > -IMPROVEMENT_EPSILON {
            return false;
        }
        self.routes[route_u].nodes[position_u - 1] = v;
        self.routes[route_v].nodes[position_v - 1] = u;
        self.commit(route_u);
        self.commit(route_v);
        true
    }

    /// Swaps `u` and its successor with `v` (other route).
    fn try_swap_two_one(&mut self, u: usize, route_v: usize, position_v: usize) -> bool {
        let data = self.data;
        let route_u = self.route_of[u];
        if route_u == route_v || data.has_pairs {
            return false;
        }
        let position_u = self.position_of[u];
        let ru = &self.routes[route_u];
        let rv = &self.routes[route_v];
        if position_u >= ru.nodes.len() {
            return false;
        }
        let x = ru.nodes[position_u];
        let v = rv.nodes[position_v - 1];
        if !data.compatible(u, rv.kind) || !data.compatible(x, rv.kind) || !data.compatible(v, ru.kind) {
            return false;
        }
        {
            let (before_u, after_u) = (self.location(route_u, position_u - 1), self.location(route_u, position_u + 2));
            let (before_v, after_v) = (self.location(route_v, position_v - 1), self.location(route_v, position_v + 1));
            let (here_u, here_x, here_v) = (self.node_location(u), self.node_location(x), self.node_location(v));
            let inner = data.distance(here_u, here_x);
            let distance_u = ru.distance - data.distance(before_u, here_u) - inner - data.distance(here_x, after_u)
                + data.distance(before_u, here_v)
                + data.distance(here_v, after_u);
            let distance_v = rv.distance - data.distance(before_v, here_v) - data.distance(here_v, after_v)
                + data.distance(before_v, here_u)
                + inner
                + data.distance(here_x, after_v);
            let bound = self.cost_bound(ru.kind, distance_u, ru.nodes.len() - 1)
                + self.cost_bound(rv.kind, distance_v, rv.nodes.len() + 1);
            if bound - ru.cost - rv.cost > -IMPROVEMENT_EPSILON {
                return false;
            }
        }
        let pair = data.merge(&data.nodes[u].segment, &data.nodes[x].segment);
        let new_u = data.merge3(&ru.prefix[position_u - 1], &data.nodes[v].segment, &ru.suffix[position_u + 2]);
        let new_v = data.merge3(&rv.prefix[position_v - 1], &pair, &rv.suffix[position_v + 1]);
        let delta = self.route_cost(&new_u, ru.kind, ru.nodes.len() - 1)
            + self.route_cost(&new_v, rv.kind, rv.nodes.len() + 1)
            - ru.cost
            - rv.cost;
        if delta > -IMPROVEMENT_EPSILON {
            return false;
        }
        self.routes[route_u].nodes.splice(position_u - 1..position_u + 1, [v]);
        self.routes[route_v].nodes.splice(position_v - 1..position_v, [u, x]);
        self.commit(route_u);
        self.commit(route_v);
        true
    }

    /// Swaps `u` and its successor with `v` and its successor (other route).
    fn try_swap_two_two(&mut self, u: usize, route_v: usize, position_v: usize) -> bool {
        let data = self.data;
        let route_u = self.route_of[u];
        if route_u == route_v || data.has_pairs {
            return false;
        }
        let position_u = self.position_of[u];
        let ru = &self.routes[route_u];
        let rv = &self.routes[route_v];
        if position_u >= ru.nodes.len() || position_v >= rv.nodes.len() {
            return false;
        }
        let x = ru.nodes[position_u];
        let v = rv.nodes[position_v - 1];
        let y = rv.nodes[position_v];
        if !data.compatible(u, rv.kind)
            || !data.compatible(x, rv.kind)
            || !data.compatible(v, ru.kind)
            || !data.compatible(y, ru.kind)
        {
            return false;
        }
        {
            let (before_u, after_u) = (self.location(route_u, position_u - 1), self.location(route_u, position_u + 2));
            let (before_v, after_v) = (self.location(route_v, position_v - 1), self.location(route_v, position_v + 2));
            let (here_u, here_x) = (self.node_location(u), self.node_location(x));
            let (here_v, here_y) = (self.node_location(v), self.node_location(y));
            let inner_u = data.distance(here_u, here_x);
            let inner_v = data.distance(here_v, here_y);
            let distance_u = ru.distance - data.distance(before_u, here_u) - inner_u - data.distance(here_x, after_u)
                + data.distance(before_u, here_v)
                + inner_v
                + data.distance(here_y, after_u);
            let distance_v = rv.distance - data.distance(before_v, here_v) - inner_v - data.distance(here_y, after_v)
                + data.distance(before_v, here_u)
                + inner_u
                + data.distance(here_x, after_v);
            let bound = self.cost_bound(ru.kind, distance_u, ru.nodes.len())
                + self.cost_bound(rv.kind, distance_v, rv.nodes.len());
            if bound - ru.cost - rv.cost > -IMPROVEMENT_EPSILON {
                return false;
            }
        }
        let pair_u = data.merge(&data.nodes[u].segment, &data.nodes[x].segment);
        let pair_v = data.merge(&data.nodes[v].segment, &data.nodes[y].segment);
        let new_u = data.merge3(&ru.prefix[position_u - 1], &pair_v, &ru.suffix[position_u + 2]);
        let new_v = data.merge3(&rv.prefix[position_v - 1], &pair_u, &rv.suffix[position_v + 2]);
        let delta = self.route_cost(&new_u, ru.kind, ru.nodes.len()) + self.route_cost(&new_v, rv.kind, rv.nodes.len())
            - ru.cost
            - rv.cost;
        if delta > -IMPROVEMENT_EPSILON {
            return false;
        }
        self.routes[route_u].nodes[position_u - 1] = v;
        self.routes[route_u].nodes[position_u] = y;
        self.routes[route_v].nodes[position_v - 1] = u;
        self.routes[route_v].nodes[position_v] = x;
        self.commit(route_u);
        self.commit(route_v);
        true
    }

    /// Exchanges the tails after `u` and after position `position_v` of another route.
    fn try_two_opt_star(&mut self, u: usize, route_v: usize, position_v: usize) -> bool {
        let data = self.data;
        let route_u = self.route_of[u];
        if route_u == route_v {
            return false;
        }
        let position_u = self.position_of[u];
        let ru = &self.routes[route_u];
        let rv = &self.routes[route_v];
        if data.has_pairs && (ru.open[position_u] != 0 || rv.open[position_v] != 0) {
            return false;
        }
        if ru.kind != rv.kind {
            let tail_u_fits = ru.nodes[position_u..].iter().all(|&node| data.compatible(node, rv.kind));
            let tail_v_fits = rv.nodes[position_v..].iter().all(|&node| data.compatible(node, ru.kind));
            if !tail_u_fits || !tail_v_fits {
                return false;
            }
        }
        let count_u = position_u + rv.nodes.len() - position_v;
        let count_v = position_v + ru.nodes.len() - position_u;
        if ru.kind == rv.kind {
            let (here_u, next_u) = (self.location(route_u, position_u), self.location(route_u, position_u + 1));
            let (here_v, next_v) = (self.location(route_v, position_v), self.location(route_v, position_v + 1));
            let distance_u =
                ru.prefix[position_u].distance + data.distance(here_u, next_v) + rv.suffix[position_v + 1].distance;
            let distance_v =
                rv.prefix[position_v].distance + data.distance(here_v, next_u) + ru.suffix[position_u + 1].distance;
            let bound = self.cost_bound(ru.kind, distance_u, count_u) + self.cost_bound(rv.kind, distance_v, count_v);
            if bound - ru.cost - rv.cost > -IMPROVEMENT_EPSILON {
                return false;
            }
        }
        let new_u = data.merge(&ru.prefix[position_u], &self.suffix_for(route_v, position_v + 1, route_u));
        let new_v = data.merge(&rv.prefix[position_v], &self.suffix_for(route_u, position_u + 1, route_v));
        let delta =
            self.route_cost(&new_u, ru.kind, count_u) + self.route_cost(&new_v, rv.kind, count_v) - ru.cost - rv.cost;
        if delta > -IMPROVEMENT_EPSILON {
            return false;
        }
        let tail_u: Vec<usize> = self.routes[route_u].nodes.drain(position_u..).collect();
        let tail_v: Vec<usize> = self.routes[route_v].nodes.drain(position_v..).collect();
        self.routes[route_u].nodes.extend(tail_v);
        self.routes[route_v].nodes.extend(tail_u);
        self.commit(route_u);
        self.commit(route_v);
        true
    }

    /// Reverses the visits strictly after `u` up to `v` (same route, `u` before `v`).
    fn try_two_opt(&mut self, u: usize, route_v: usize, position_v: usize) -> bool {
        let data = self.data;
        let route_u = self.route_of[u];
        let position_u = self.position_of[u];
        if route_u != route_v || position_v <= position_u + 1 {
            return false;
        }
        let ru = &self.routes[route_u];
        if data.has_pairs && ru.nodes[position_u..position_v].iter().any(|&node| self.is_paired(node)) {
            return false;
        }
        if data.symmetric {
            let (here, next) = (self.location(route_u, position_u), self.location(route_u, position_u + 1));
            let (last, after) = (self.location(route_u, position_v), self.location(route_u, position_v + 1));
            let distance = ru.distance - data.distance(here, next) - data.distance(last, after)
                + data.distance(here, last)
                + data.distance(next, after);
            if self.cost_bound(ru.kind, distance, ru.nodes.len()) - ru.cost > -IMPROVEMENT_EPSILON {
                return false;
            }
        }
        let middle = self.reversed_range(route_u, position_u + 1, position_v);
        let segment = data.merge3(&ru.prefix[position_u], &middle, &ru.suffix[position_v + 1]);
        let delta = self.route_cost(&segment, ru.kind, ru.nodes.len()) - ru.cost;
        if delta > -IMPROVEMENT_EPSILON {
            return false;
        }
        self.routes[route_u].nodes[position_u..position_v].reverse();
        self.commit(route_u);
        true
    }

    /// Moves `u` (or its pair) into an empty route of each vehicle kind.
    fn try_empty_route(&mut self, u: usize) -> bool {
        let data = self.data;
        let route_u = self.route_of[u];
        if self.routes[route_u].nodes.len() == 1 || !self.may_open_route() {
            return false;
        }
        let mut tried_kinds: u64 = 0;
        for slot in 0..self.routes.len() {
            let kind = self.routes[slot].kind;
            if !self.routes[slot].nodes.is_empty() || (kind < 64 && tried_kinds & (1 << kind) != 0) {
                continue;
            }
            if kind < 64 {
                tried_kinds |= 1 << kind;
            }
            if !data.compatible(u, kind) {
                continue;
            }
            let partner = data.nodes[u].partner;
            if partner != NO_PARTNER {
                let pickup = if data.nodes[u].is_pickup { u } else { partner };
                if self.try_pair_relocate(pickup, slot) {
                    return true;
                }
                continue;
            }
            let ru = &self.routes[route_u];
            let position_u = self.position_of[u];
            let new_u = data.merge(&ru.prefix[position_u - 1], &ru.suffix[position_u + 1]);
            let start = data.kinds[kind].start_segment;
            let end = data.kinds[kind].end_segment;
            let new_v = data.merge3(&start, &data.nodes[u].segment, &end);
            let delta =
                self.route_cost(&new_u, ru.kind, ru.nodes.len() - 1) + self.route_cost(&new_v, kind, 1) - ru.cost;
            if delta < -IMPROVEMENT_EPSILON {
                self.routes[route_u].nodes.remove(position_u - 1);
                self.routes[slot].nodes.push(u);
                self.commit(route_u);
                self.commit(slot);
                return true;
            }
        }
        false
    }

    /// Segment of a route without the two nodes at `first < second`.
    fn without_two(&self, slot: usize, first: usize, second: usize) -> Segment {
        let route = &self.routes[slot];
        let mut segment = route.prefix[first - 1];
        if first + 1 < second {
            segment = self.data.merge(&segment, &self.range(slot, first + 1, second - 1));
        }
        self.data.merge(&segment, &route.suffix[second + 1])
    }

    /// Best insertion of a pickup-and-delivery pair into a route whose cost change is below
    /// `threshold`: (delta cost, after-position of the pickup, after-position of the delivery).
    /// Positions are pruned by distance and by the time warp of the prefix, both lower bounds.
    fn best_pair_insertion(&self, pickup: usize, slot: usize, threshold: f64) -> Option<(f64, usize, usize)> {
        let data = self.data;
        let route = &self.routes[slot];
        let delivery = data.nodes[pickup].partner;
        if !data.compatible(pickup, route.kind) {
            return None;
        }
        let count = route.nodes.len();
        let pickup_segment = &data.nodes[pickup].segment;
        let delivery_segment = &data.nodes[delivery].segment;
        let (pickup_location, delivery_location) = (data.nodes[pickup].location, data.nodes[delivery].location);
        let locations: Vec<usize> = (0..=count + 1).map(|position| self.location(slot, position)).collect();
        let insertion = |location: usize, after: usize| -> f64 {
            data.distance(locations[after], location) + data.distance(location, locations[after + 1])
                - data.distance(locations[after], locations[after + 1])
        };
        let delivery_insertion: Vec<f64> = (0..=count).map(|after| insertion(delivery_location, after)).collect();
        let mut delivery_minimum = vec![f64::INFINITY; count + 2];
        for after in (0..=count).rev() {
            delivery_minimum[after] = delivery_minimum[after + 1].min(delivery_insertion[after]);
        }
        let bound = |extra_distance: f64, time_warp: f64| -> f64 {
            self.cost_bound(route.kind, route.distance + extra_distance, count + 2)
                + self.penalties.time_warp * time_warp
                - route.cost
        };
        let mut best: Option<(f64, usize, usize)> = None;
        let mut best_value = threshold;
        for first in 0..=count {
            let pickup_insertion = insertion(pickup_location, first);
            let adjacent = data.distance(locations[first], pickup_location)
                + data.distance(pickup_location, delivery_location)
                + data.distance(delivery_location, locations[first + 1])
                - data.distance(locations[first], locations[first + 1]);
            if bound(adjacent.min(pickup_insertion + delivery_minimum[first + 1]), 0.0) >= best_value {
                continue;
            }
            let with_pickup = data.merge(&route.prefix[first], pickup_segment);
            if bound(adjacent, with_pickup.time_warp) < best_value {
                let segment = data.merge3(&with_pickup, delivery_segment, &route.suffix[first + 1]);
                let delta = self.route_cost(&segment, route.kind, count + 2) - route.cost;
                if delta < best_value {
                    best_value = delta;
                    best = Some((delta, first, first));
                }
            }
            let mut running = with_pickup;
            for second in first + 1..=count {
                running = data.merge(&running, &data.nodes[route.nodes[second - 1]].segment);
                if bound(pickup_insertion + delivery_minimum[second], running.time_warp) >= best_value {
                    break;
                }
                if bound(pickup_insertion + delivery_insertion[second], running.time_warp) >= best_value {
                    continue;
                }
                let segment = data.merge3(&running, delivery_segment, &route.suffix[second + 1]);
                let delta = self.route_cost(&segment, route.kind, count + 2) - route.cost;
                if delta < best_value {
                    best_value = delta;
                    best = Some((delta, first, second));
                }
            }
        }
        best
    }

    /// Moves the pair of `u` to its best place in route `target` (another route).
    fn try_pair_relocate(&mut self, u: usize, target: usize) -> bool {
        let data = self.data;
        let partner = data.nodes[u].partner;
        let (pickup, delivery) = if data.nodes[u].is_pickup { (u, partner) } else { (partner, u) };
        let source = self.route_of[pickup];
        if source == target {
            return false;
        }
        let first = self.position_of[pickup];
        let second = self.position_of[delivery];
        let rs = &self.routes[source];
        let removed = self.without_two(source, first, second);
        let removal_delta = self.route_cost(&removed, rs.kind, rs.nodes.len() - 2) - rs.cost;
        let Some((insertion_delta, after_pickup, after_delivery)) =
            self.best_pair_insertion(pickup, target, -removal_delta - IMPROVEMENT_EPSILON)
        else {
            return false;
        };
        if removal_delta + insertion_delta > -IMPROVEMENT_EPSILON {
            return false;
        }
        let nodes = &mut self.routes[source].nodes;
        nodes.remove(second - 1);
        nodes.remove(first - 1);
        let nodes = &mut self.routes[target].nodes;
        nodes.insert(after_delivery, delivery);
        nodes.insert(after_pickup, pickup);
        self.commit(source);
        self.commit(target);
        true
    }

    /// Inserts unrouted nodes (pairs together) at their cheapest places.
    pub fn insert_missing(&mut self, missing: &[usize], rng: &mut Rng) {
        let data = self.data;
        let mut order: Vec<usize> = missing
            .iter()
            .copied()
            .filter(|&node| data.nodes[node].partner == NO_PARTNER || data.nodes[node].is_pickup)
            .collect();
        rng.shuffle(&mut order);
        for node in order {
            if self.is_routed(node) {
                continue;
            }
            let mut best: Option<(f64, usize, usize, usize)> = None;
            // Within the route limit first; over it only when the node fits nowhere else.
            for may_open in [self.may_open_route(), true] {
                if best.is_some() {
                    break;
                }
                let mut empty_kinds_tried: u64 = 0;
                for slot in 0..self.routes.len() {
                    let route = &self.routes[slot];
                    if route.nodes.is_empty() {
                        if !may_open {
                            continue;
                        }
                        if route.kind < 64 && empty_kinds_tried & (1 << route.kind) != 0 {
                            continue;
                        }
                        if route.kind < 64 {
                            empty_kinds_tried |= 1 << route.kind;
                        }
                    }
                    if data.nodes[node].partner != NO_PARTNER {
                        let threshold = best.map_or(f64::INFINITY, |(value, ..)| value);
                        if let Some((delta, first, second)) = self.best_pair_insertion(node, slot, threshold) {
                            best = Some((delta, slot, first, second));
                        }
                        continue;
                    }
                    if !data.compatible(node, route.kind) {
                        continue;
                    }
                    for position in 0..=route.nodes.len() {
                        let segment = data.merge3(
                            &route.prefix[position],
                            &data.nodes[node].segment,
                            &route.suffix[position + 1],
                        );
                        let delta = self.route_cost(&segment, route.kind, route.nodes.len() + 1) - route.cost;
                        if best.is_none_or(|(value, ..)| delta < value) {
                            best = Some((delta, slot, position, 0));
                        }
                    }
                }
            }
            let Some((_, slot, first, second)) = best else {
                continue;
            };
            let partner = data.nodes[node].partner;
            let nodes = &mut self.routes[slot].nodes;
            if partner != NO_PARTNER {
                nodes.insert(second, partner);
            }
            nodes.insert(first, node);
            self.commit(slot);
        }
    }

    /// SWAP* (Vidal 2022) between every pair of routes whose polar sectors overlap: exchange one
    /// node of each, each going to its best position in the other route (not necessarily the
    /// place of the node it replaces).
    fn try_swap_star_all(&mut self) -> bool {
        let mut improved = false;
        let count = self.routes.len();
        for first in 0..count {
            if self.routes[first].nodes.is_empty() {
                continue;
            }
            for second in first + 1..count {
                if self.routes[second].nodes.is_empty() || self.routes[first].kind != self.routes[second].kind {
                    continue;
                }
                let modified = self.routes[first].modified.max(self.routes[second].modified);
                if modified + 1 < self.step {
                    continue;
                }
                let (a, b) = (&self.routes[first], &self.routes[second]);
                if angle_gap(a.angle_centre, b.angle_centre) > a.angle_half_width + b.angle_half_width {
                    continue;
                }
                if self.try_swap_star(first, second) {
                    improved = true;
                }
            }
        }
        improved
    }

    /// Cheapest insertion of `node` into `slot` where the node at `excluded` position is
    /// replaced (removed), by exact segment evaluation: returns (route cost, after-position).
    fn best_insertion_replacing(&self, node: usize, slot: usize, excluded: usize) -> (f64, usize) {
        let data = self.data;
        let route = &self.routes[slot];
        let count = route.nodes.len();
        let mut best = (f64::MAX, 0);
        // Insert after position `after` of the route without the excluded node.
        for after in 0..=count {
            if after == excluded {
                continue;
            }
            let segment = if after < excluded {
                let mut segment = data.merge(&route.prefix[after], &data.nodes[node].segment);
                if after + 1 < excluded {
                    segment = data.merge(&segment, &self.range(slot, after + 1, excluded - 1));
                }
                data.merge(&segment, &route.suffix[excluded + 1])
            } else {
                let mut segment = route.prefix[excluded - 1];
                if excluded < after {
                    segment = data.merge(&segment, &self.range(slot, excluded + 1, after));
                }
                data.merge3(&segment, &data.nodes[node].segment, &route.suffix[after + 1])
            };
            let cost = self.route_cost(&segment, route.kind, count);
            if cost < best.0 {
                best = (cost, after);
            }
        }
        best
    }

    fn try_swap_star(&mut self, first: usize, second: usize) -> bool {
        let data = self.data;
        // Preselect by distance: for each pair (u, v), the removal gains plus the cheapest
        // distance insertion, then evaluate the few best candidates exactly.
        let (a, b) = (&self.routes[first], &self.routes[second]);
        let removal_gain = |route: &Route, position: usize| -> f64 {
            let previous = if position == 1 {
                data.kinds[route.kind].start_segment.last
            } else {
                data.nodes[route.nodes[position - 2]].location
            };
            let next = if position == route.nodes.len() {
                data.kinds[route.kind].end_segment.first
            } else {
                data.nodes[route.nodes[position]].location
            };
            let here = data.nodes[route.nodes[position - 1]].location;
            data.distance(previous, here) + data.distance(here, next) - data.distance(previous, next)
        };
        let mut candidates: Vec<(f64, usize, usize)> = Vec::with_capacity(SWAP_STAR_CANDIDATES);
        for (index_u, &u) in a.nodes.iter().enumerate() {
            let gain_u = removal_gain(a, index_u + 1);
            for (index_v, &v) in b.nodes.iter().enumerate() {
                let gain_v = removal_gain(b, index_v + 1);
                let location_u = data.nodes[u].location;
                let location_v = data.nodes[v].location;
                // Insertion of u in place of v, as a cheap estimate.
                let previous_v = if index_v == 0 {
                    data.kinds[b.kind].start_segment.last
                } else {
                    data.nodes[b.nodes[index_v - 1]].location
                };
                let next_v = if index_v + 1 == b.nodes.len() {
                    data.kinds[b.kind].end_segment.first
                } else {
                    data.nodes[b.nodes[index_v + 1]].location
                };
                let previous_u = if index_u == 0 {
                    data.kinds[a.kind].start_segment.last
                } else {
                    data.nodes[a.nodes[index_u - 1]].location
                };
                let next_u = if index_u + 1 == a.nodes.len() {
                    data.kinds[a.kind].end_segment.first
                } else {
                    data.nodes[a.nodes[index_u + 1]].location
                };
                let in_place = data.distance(previous_v, location_u) + data.distance(location_u, next_v)
                    - data.distance(previous_v, next_v)
                    + data.distance(previous_u, location_v)
                    + data.distance(location_v, next_u)
                    - data.distance(previous_u, next_u);
                let estimate = in_place - gain_u - gain_v;
                if candidates.len() < SWAP_STAR_CANDIDATES {
                    candidates.push((estimate, u, v));
                } else if let Some(worst) = candidates.iter_mut().max_by(|x, y| x.0.total_cmp(&y.0))
                    && estimate < worst.0
                {
                    *worst = (estimate, u, v);
                }
            }
        }
        candidates.sort_by(|x, y| x.0.total_cmp(&y.0));
        for (estimate, u, v) in candidates {
            if estimate > 0.5 * data.distance_max {
                break;
            }
            let position_u = self.position_of[u];
            let position_v = self.position_of[v];
            let (cost_a, after_a) = self.best_insertion_replacing(v, first, position_u);
            let (cost_b, after_b) = self.best_insertion_replacing(u, second, position_v);
            let delta = cost_a + cost_b - self.routes[first].cost - self.routes[second].cost;
            if delta < -IMPROVEMENT_EPSILON {
                let insert = |nodes: &mut Vec<usize>, removed: usize, after: usize, node: usize| {
                    // `after` counts positions in the route without the removed node.
                    nodes.remove(removed - 1);
                    let index = if after < removed { after } else { after - 1 };
                    nodes.insert(index, node);
                };
                insert(&mut self.routes[first].nodes, position_u, after_a, v);
                insert(&mut self.routes[second].nodes, position_v, after_b, u);
                self.commit(first);
                self.commit(second);
                return true;
            }
        }
        false
    }
}

/// Penalised cost of a whole non-empty route segment.
#[inline]
pub(crate) fn cost_of(data: &Data, penalties: &Penalties, segment: &Segment, kind: usize) -> f64 {
    data.plain_cost(segment, kind)
        + penalties.load * data.excess(segment, kind) as f64
        + penalties.time_warp * segment.time_warp
}

fn angle_gap(a: f64, b: f64) -> f64 {
    let gap = (a - b).abs() % std::f64::consts::TAU;
    gap.min(std::f64::consts::TAU - gap)
}
