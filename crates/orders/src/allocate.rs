//! Allocation: which sites, zones and lots an order ships from.
//!
//! Rules, in order:
//! 1. **Eligible stock**: lots that are available (status), in a zone whose range suits the
//!    product's temperature class, and that on the promised delivery date still have the product's
//!    minimum remaining shelf life (a lot without expiry always qualifies).
//! 2. **One shipment if possible**: among the sites that can ship every line in full and meet the
//!    service (and the latest delivery), the cheapest (handling + lane + last-mile kilometres), then
//!    the earliest promise, then the GLN (so the choice is deterministic).
//! 3. **Otherwise a split**, at most [`SHIPMENTS_MAX`] shipments: repeatedly the site that covers
//!    the most remaining units (lines of one GTIN counted together, since they share its lots;
//!    ties: the cheapest, then the GLN), each shipment with its own route.
//! 4. **FEFO within a site**: earliest expiry first (lots without expiry last), then lot number.
//!
//! The decision and every candidate's outcome are answered (the store keeps the chosen sites and
//! the closest runners-up, and counts the rest), so `GET /v1/orders/{id}` shows why. Both
//! choices are branch and bound: a site is routed (the costly part) only while a lower bound of
//! its cost and an upper bound of its units could still beat the best found; a site skipped so
//! is reported by what it holds (`Partial`, or `Passed` with its lowest cost).

use std::borrow::Cow;
use std::ops::Range;

use gs1::{Gln, Gtin};
use jiff::Timestamp;
use jiff::civil::Date;
use network::{Location, Service, TemperatureClass, ZoneName};

use crate::promise::{Destination, NetworkView, NoRoute, PromiseRequest, Route, cheapest_cost, route, service_bound};

/// The most shipments one order is split into.
pub const SHIPMENTS_MAX: usize = 3;
/// The most lines of one order.
pub const LINES_MAX: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub gtin: Gtin,
    pub quantity: i64,
}

/// What allocation needs to know of a product.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRule {
    pub gtin: Gtin,
    pub class: TemperatureClass,
    pub min_remaining_shelf_life_days: u32,
}

/// Units of one lot in one zone of a site that can be reserved now. The identifiers are borrowed
/// where the caller keeps them (the writer's cache: an order does not copy the identifiers of the
/// lots it considers) or owned ([`StockLot::into_owned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLot<'a> {
    pub site: Cow<'a, Gln>,
    pub zone: Cow<'a, ZoneName>,
    pub gtin: Cow<'a, Gtin>,
    pub lot: Cow<'a, str>,
    pub expiry: Option<Date>,
    pub available: i64,
}

impl StockLot<'_> {
    /// This lot with its identifiers borrowed from it.
    pub fn borrowed(&self) -> StockLot<'_> {
        StockLot {
            site: Cow::Borrowed(self.site.as_ref()),
            zone: Cow::Borrowed(self.zone.as_ref()),
            gtin: Cow::Borrowed(self.gtin.as_ref()),
            lot: Cow::Borrowed(self.lot.as_ref()),
            expiry: self.expiry,
            available: self.available,
        }
    }

    pub fn into_owned(self) -> StockLot<'static> {
        StockLot {
            site: Cow::Owned(self.site.into_owned()),
            zone: Cow::Owned(self.zone.into_owned()),
            gtin: Cow::Owned(self.gtin.into_owned()),
            lot: Cow::Owned(self.lot.into_owned()),
            expiry: self.expiry,
            available: self.available,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OrderRequest<'a> {
    pub lines: &'a [Line],
    pub products: &'a [ProductRule],
    pub destination: &'a Destination,
    pub service: Service,
    /// When the allocation is made: picking starts from it (the sites' cut-offs, lead times).
    pub placed_unix_ms: i64,
    /// When the order was placed: the service's window (`same_day`, `next_day`, `express_12h`,
    /// `standard`) runs from it. An allocation made again because a recall or a count took the
    /// stock keeps the first placing's window, as it keeps `latest_delivery_unix_ms`.
    pub window_from_unix_ms: i64,
    pub latest_delivery_unix_ms: Option<i64>,
}

/// Units of one line taken from one lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub line: usize,
    pub zone: ZoneName,
    pub lot: String,
    pub expiry: Option<Date>,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shipment {
    pub site: Gln,
    pub route: Route,
    pub picks: Vec<Pick>,
}

/// How one candidate site fared.
#[derive(Debug, Clone, PartialEq)]
pub enum CandidateOutcome {
    /// Ships (part of) the order.
    Chosen { cost_cents: u64, promised_by_unix_ms: i64 },
    /// Could ship every line, but another site was cheaper or sooner. Without a promise when its
    /// lowest possible cost was already above the chosen site's (its timing was not computed).
    Passed { cost_cents: u64, promised_by_unix_ms: Option<i64> },
    /// Holds eligible units of only some lines (units per line).
    Partial { eligible_units: Vec<i64> },
    /// Cannot reach the destination in time.
    NoRoute(NoRoute),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub site: Gln,
    pub outcome: CandidateOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The rule that decided, in words.
    pub rule: String,
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub shipments: Vec<Shipment>,
    /// The latest of the shipments' promises.
    pub promised_by_unix_ms: i64,
    pub decision: Decision,
}

/// A line that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub line: usize,
    pub gtin: Gtin,
    pub wanted: i64,
    /// Units that qualify (status, zone, shelf life) at sites that reach the destination in time.
    pub eligible: i64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AllocationError {
    #[error("line {line}: {gtin} is not a product of this merchant")]
    UnknownProduct { line: usize, gtin: Gtin },
    #[error("not enough stock for {} line(s)", .shortages.len())]
    Short { shortages: Vec<Shortage>, decision: Decision },
    #[error("the order would need more than {SHIPMENTS_MAX} shipments")]
    TooManyShipments { decision: Decision },
}

fn rule<'a>(request: &OrderRequest<'a>, gtin: &Gtin) -> Option<&'a ProductRule> {
    request.products.iter().find(|product| product.gtin == *gtin)
}

/// Days from `delivery` until `expiry` (negative when already past).
fn days_left(expiry: Date, delivery: Date) -> i64 {
    (expiry - delivery).get_days() as i64
}

struct SiteView<'a> {
    site: &'a Location,
    /// The site's lots among the order's holdings (FEFO order).
    held: Range<usize>,
}

/// A lot the order could draw on.
struct Held {
    /// Its site's index in the network.
    site: usize,
    /// Its index in the stock slice.
    lot: usize,
    /// The first line of its GTIN (lines of one GTIN draw on the same lots).
    gtin_line: usize,
    /// Its zone among its site's zones; `None` for a zone the site does not list (it suits nothing).
    zone: Option<usize>,
}

/// The order's lines as allocation sees them.
struct Lines<'r> {
    rules: Vec<&'r ProductRule>,
    /// Per line: the first line of its GTIN.
    gtin_lines: Vec<usize>,
}

impl Lines<'_> {
    fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether a held lot can serve `line`: the line's GTIN, in a zone suited to its class.
    fn served_by(&self, line: usize, held: &Held, site: &Location) -> bool {
        held.gtin_line == self.gtin_lines[line]
            && held.zone.is_some_and(|zone| site.zones[zone].suits(&self.rules[line].class))
    }

    /// Per line: the site's lots that can serve it, FEFO order, as indexes into the stock slice.
    fn suitable_lots(&self, view: &SiteView<'_>, holdings: &[Held]) -> Vec<Vec<usize>> {
        let held = &holdings[view.held.clone()];
        (0..self.len())
            .map(|line| held.iter().filter(|held| self.served_by(line, held, view.site)).map(|held| held.lot).collect())
            .collect()
    }
}

/// A candidate step of a split: units covered, cost, the site's index, its route, and its lots that
/// are fresh enough on that route's delivery date.
type SplitStep = (i64, u64, usize, Route, Vec<Vec<usize>>);

/// Allocates an order against `stock` (available units now). Pure: the caller reserves.
pub fn allocate(
    network: NetworkView<'_>,
    stock: &[StockLot<'_>],
    request: &OrderRequest<'_>,
) -> Result<Allocation, AllocationError> {
    // Callers refuse quantities below one; `covers` and `take` count on it.
    debug_assert!(request.lines.iter().all(|line| line.quantity > 0), "order lines of at least one unit");
    let mut rules = Vec::with_capacity(request.lines.len());
    for (line, order_line) in request.lines.iter().enumerate() {
        let product = rule(request, &order_line.gtin)
            .ok_or_else(|| AllocationError::UnknownProduct { line, gtin: order_line.gtin.clone() })?;
        rules.push(product);
    }
    let gtin_lines: Vec<usize> = request
        .lines
        .iter()
        .enumerate()
        .map(|(line, order_line)| request.lines.iter().position(|other| other.gtin == order_line.gtin).unwrap_or(line))
        .collect();
    // Per first line of a GTIN: the units its lines want together.
    let mut wanted = vec![0i64; request.lines.len()];
    for (line, order_line) in request.lines.iter().enumerate() {
        wanted[gtin_lines[line]] += order_line.quantity;
    }
    let lines = Lines { rules, gtin_lines };
    let rules = &lines.rules;
    let all_classes: Vec<TemperatureClass> = classes_of(rules, 0..request.lines.len());
    let latest_by_service = service_bound(request.service, request.window_from_unix_ms, &request.destination.time_zone);

    // The lots of the order's products with units now, each with its site's index in the network
    // (sites are in GLN order, so sorting and grouping compare numbers rather than GLNs); lots of
    // sites outside the network are left out.
    let mut holdings: Vec<Held> = Vec::new();
    for (index, lot) in stock.iter().enumerate() {
        if lot.available <= 0 {
            continue;
        }
        let Some(gtin_line) = request.lines.iter().position(|line| line.gtin == *lot.gtin) else { continue };
        let Some(site) = network.site_index(&lot.site) else { continue };
        let zone = network.sites[site].zones.iter().position(|zone| zone.name == *lot.zone);
        holdings.push(Held { site, lot: index, gtin_line, zone });
    }
    // By site, then FEFO (earliest expiry first, lots without expiry last, then lot and zone): each
    // site's lots of a line are then taken in order.
    holdings.sort_by(|held_a, held_b| {
        let (a, b) = (&stock[held_a.lot], &stock[held_b.lot]);
        held_a.site.cmp(&held_b.site).then_with(|| {
            (a.expiry.is_none(), a.expiry, &a.lot, &a.zone).cmp(&(b.expiry.is_none(), b.expiry, &b.lot, &b.zone))
        })
    });
    // The sites holding any of them, in GLN order, and per site and line the units it holds in
    // zones suited to the line (shelf life aside): `units[site * lines + line]`.
    let mut views: Vec<SiteView<'_>> = Vec::new();
    let mut units: Vec<i64> = Vec::new();
    let mut start = 0;
    for group in holdings.chunk_by(|a, b| a.site == b.site) {
        let view = SiteView { site: &network.sites[group[0].site], held: start..start + group.len() };
        start += group.len();
        units.extend((0..lines.len()).map(|line| {
            group
                .iter()
                .filter(|held| lines.served_by(line, held, view.site))
                .map(|held| stock[held.lot].available)
                .sum::<i64>()
        }));
        views.push(view);
    }
    let units_of = |view: usize| &units[view * lines.len()..(view + 1) * lines.len()];

    // One shipment if any site can. The cost of a route does not depend on the clock, so sites
    // are tried cheapest first and the (costlier) timing is computed only while a site could
    // still beat the best found: branch and bound on the cost.
    let mut outcomes: Vec<Option<CandidateOutcome>> = vec![None; views.len()];
    let mut order: Vec<(u64, usize)> = Vec::new();
    for (index, view) in views.iter().enumerate() {
        // Shelf life aside, each GTIN's units cover the sum of its lines.
        let covers =
            (0..lines.len()).all(|line| lines.gtin_lines[line] != line || units_of(index)[line] >= wanted[line]);
        if !covers {
            continue;
        }
        match cheapest_cost(network, view.site, request.destination, &all_classes) {
            Some(bound) => order.push((bound, index)),
            None => {
                outcomes[index] = Some(CandidateOutcome::NoRoute(NoRoute::NoLane(class_names(&all_classes))));
            }
        }
    }
    order.sort_unstable();
    let holding_every_line = order.len();
    let mut best: Option<(u64, i64, usize, Route, Vec<Pick>)> = None;
    for (bound, index) in order {
        if let Some((best_cost, ..)) = &best
            && bound > *best_cost
        {
            outcomes[index] = Some(CandidateOutcome::Passed { cost_cents: bound, promised_by_unix_ms: None });
            continue;
        }
        let view = &views[index];
        let site_route = match route(network, view.site, &promise(request, &all_classes, latest_by_service)) {
            Ok(site_route) => site_route,
            Err(no_route) => {
                outcomes[index] = Some(CandidateOutcome::NoRoute(no_route));
                continue;
            }
        };
        let suitable = lines.suitable_lots(view, &holdings);
        let lots = fresh_enough(stock, &suitable, rules, delivery_date(&site_route, request.destination));
        let mut remaining: Vec<i64> = request.lines.iter().map(|line| line.quantity).collect();
        let picks = take(stock, &lots, request, &mut vec![0; stock.len()], &mut remaining);
        if remaining.iter().any(|units| *units > 0) {
            outcomes[index] = Some(CandidateOutcome::Partial { eligible_units: units_per_line(stock, &lots) });
            continue;
        }
        let candidate = (site_route.cost_cents, site_route.promised_by_unix_ms, index, site_route, picks);
        // Cheapest, then soonest, then the lower GLN (sites are in GLN order).
        let better = best
            .as_ref()
            .is_none_or(|current| (candidate.0, candidate.1, candidate.2) < (current.0, current.1, current.2));
        let passed = if better { best.replace(candidate) } else { Some(candidate) };
        if let Some((cost_cents, promised_by_unix_ms, passed_index, ..)) = passed {
            outcomes[passed_index] =
                Some(CandidateOutcome::Passed { cost_cents, promised_by_unix_ms: Some(promised_by_unix_ms) });
        }
    }
    if let Some((cost_cents, promised_by_unix_ms, chosen, route, picks)) = best {
        outcomes[chosen] = Some(CandidateOutcome::Chosen { cost_cents, promised_by_unix_ms });
        let candidates = views
            .iter()
            .zip(outcomes)
            .enumerate()
            .map(|(index, (view, outcome))| Candidate {
                site: view.site.gln.clone(),
                outcome: outcome
                    .unwrap_or_else(|| CandidateOutcome::Partial { eligible_units: units_of(index).to_vec() }),
            })
            .collect();
        let rule = format!("one shipment: the cheapest in time of {holding_every_line} sites holding every line");
        return Ok(Allocation {
            promised_by_unix_ms: route.promised_by_unix_ms,
            shipments: vec![Shipment { site: views[chosen].site.gln.clone(), route, picks }],
            decision: Decision { rule, candidates },
        });
    }

    // A split: each step takes the site covering the most remaining units (ties: the cheapest,
    // then the lower GLN), with the lots that are fresh enough on that shipment's delivery date.
    // Sites are tried by the most units they could cover (shelf life aside) and are routed only
    // while they could still beat the best step found: branch and bound, as above.
    let mut remaining: Vec<i64> = request.lines.iter().map(|line| line.quantity).collect();
    let mut used = vec![0i64; stock.len()];
    let mut shipments: Vec<Shipment> = Vec::new();
    let mut chosen_sites: Vec<usize> = Vec::new();
    let mut split_routes: Vec<Option<Result<(u64, i64), NoRoute>>> = vec![None; views.len()];
    let suitable: Vec<Vec<Vec<usize>>> = views.iter().map(|view| lines.suitable_lots(view, &holdings)).collect();
    while remaining.iter().any(|units| *units > 0) {
        // (the most units it could cover, site, the lines it could serve)
        let mut open: Vec<(i64, usize, Vec<usize>)> = Vec::new();
        for (index, lots) in suitable.iter().enumerate() {
            if chosen_sites.contains(&index) {
                continue;
            }
            let serving: Vec<usize> = (0..remaining.len())
                .filter(|line| remaining[*line] > 0 && eligible_left(stock, &lots[*line], &used) > 0)
                .collect();
            if serving.is_empty() {
                continue;
            }
            let most = coverable(stock, lots, &lines.gtin_lines, &remaining, &used);
            open.push((most, index, serving));
        }
        open.sort_unstable_by(|(most_a, index_a, _), (most_b, index_b, _)| {
            most_b.cmp(most_a).then(index_a.cmp(index_b))
        });
        // (units covered, cost, site, its route, its lots fresh enough on that route's date)
        let mut best: Option<SplitStep> = None;
        for (most, index, serving) in open {
            let view = &views[index];
            let classes = classes_of(rules, serving.iter().copied());
            if let Some((best_covered, best_cost, best_index, ..)) = &best {
                if most < *best_covered {
                    break;
                }
                // It covers at most as much as the best: it wins only by costing less (or the
                // same, with a lower GLN), and its cost is at least its cheapest way.
                if most == *best_covered
                    && cheapest_cost(network, view.site, request.destination, &classes)
                        .is_some_and(|cheapest| (cheapest, index) > (*best_cost, *best_index))
                {
                    continue;
                }
            }
            let site_route = match route(network, view.site, &promise(request, &classes, latest_by_service)) {
                Ok(site_route) => site_route,
                Err(no_route) => {
                    split_routes[index] = Some(Err(no_route));
                    continue;
                }
            };
            split_routes[index] = Some(Ok((site_route.cost_cents, site_route.promised_by_unix_ms)));
            let lots = fresh_enough(stock, &suitable[index], rules, delivery_date(&site_route, request.destination));
            let covered = coverable(stock, &lots, &lines.gtin_lines, &remaining, &used);
            if covered == 0 {
                continue;
            }
            let better = best.as_ref().is_none_or(|(best_covered, best_cost, best_index, ..)| {
                (covered, std::cmp::Reverse(site_route.cost_cents), std::cmp::Reverse(index))
                    > (*best_covered, std::cmp::Reverse(*best_cost), std::cmp::Reverse(*best_index))
            });
            if better {
                best = Some((covered, site_route.cost_cents, index, site_route, lots));
            }
        }
        let Some((_, _, index, site_route, lots)) = best else { break };
        if shipments.len() == SHIPMENTS_MAX {
            return Err(AllocationError::TooManyShipments {
                decision: Decision {
                    rule: format!("no split into {SHIPMENTS_MAX} shipments covers the order"),
                    candidates: report(&views, &split_routes, &chosen_sites, units_of),
                },
            });
        }
        let picks = take(stock, &lots, request, &mut used, &mut remaining);
        chosen_sites.push(index);
        shipments.push(Shipment { site: views[index].site.gln.clone(), route: site_route, picks });
    }
    let candidates = report(&views, &split_routes, &chosen_sites, units_of);
    if remaining.iter().any(|units| *units > 0) {
        let shortages = remaining
            .iter()
            .enumerate()
            .filter(|(_, units)| **units > 0)
            .map(|(line, units)| Shortage {
                line,
                gtin: request.lines[line].gtin.clone(),
                wanted: request.lines[line].quantity,
                eligible: request.lines[line].quantity - units,
            })
            .collect();
        let rule = "not enough eligible stock at sites that reach the destination in time".to_owned();
        return Err(AllocationError::Short { shortages, decision: Decision { rule, candidates } });
    }
    let promised_by_unix_ms = shipments.iter().map(|shipment| shipment.route.promised_by_unix_ms).max().unwrap_or(0);
    Ok(Allocation {
        promised_by_unix_ms,
        decision: Decision {
            rule: format!(
                "{} shipments: no single site holds every line in time; each step takes the site covering the most units",
                shipments.len()
            ),
            candidates,
        },
        shipments,
    })
}

fn report<'u>(
    views: &[SiteView<'_>],
    split_routes: &[Option<Result<(u64, i64), NoRoute>>],
    chosen: &[usize],
    units_of: impl Fn(usize) -> &'u [i64],
) -> Vec<Candidate> {
    views
        .iter()
        .enumerate()
        .map(|(index, view)| {
            let outcome = match &split_routes[index] {
                Some(Ok((cost_cents, promised_by_unix_ms))) if chosen.contains(&index) => {
                    CandidateOutcome::Chosen { cost_cents: *cost_cents, promised_by_unix_ms: *promised_by_unix_ms }
                }
                Some(Err(no_route)) => CandidateOutcome::NoRoute(no_route.clone()),
                _ => CandidateOutcome::Partial { eligible_units: units_of(index).to_vec() },
            };
            Candidate { site: view.site.gln.clone(), outcome }
        })
        .collect()
}

fn class_names(classes: &[TemperatureClass]) -> String {
    classes.iter().map(|class| class.name()).collect::<Vec<_>>().join(", ")
}

fn promise<'a>(
    request: &'a OrderRequest<'a>,
    classes: &'a [TemperatureClass],
    service_bound: Timestamp,
) -> PromiseRequest<'a> {
    PromiseRequest {
        destination: request.destination,
        service: request.service,
        placed_unix_ms: request.placed_unix_ms,
        latest_delivery_unix_ms: request.latest_delivery_unix_ms,
        classes,
        service_bound,
    }
}

fn classes_of(rules: &[&ProductRule], lines: impl Iterator<Item = usize>) -> Vec<TemperatureClass> {
    let mut classes: Vec<TemperatureClass> = Vec::new();
    for line in lines {
        if !classes.contains(&rules[line].class) {
            classes.push(rules[line].class);
        }
    }
    classes
}

fn delivery_date(route: &Route, destination: &Destination) -> Date {
    Timestamp::from_millisecond(route.promised_by_unix_ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(destination.time_zone.clone())
        .date()
}

/// The lots that still have the product's minimum shelf life on the delivery date (a lot without
/// expiry always has).
fn fresh_enough(
    stock: &[StockLot<'_>],
    lots: &[Vec<usize>],
    rules: &[&ProductRule],
    delivery: Date,
) -> Vec<Vec<usize>> {
    lots.iter()
        .enumerate()
        .map(|(line, lots)| {
            let minimum = i64::from(rules[line].min_remaining_shelf_life_days);
            lots.iter()
                .copied()
                .filter(|index| stock[*index].expiry.is_none_or(|expiry| days_left(expiry, delivery) >= minimum))
                .collect()
        })
        .collect()
}

fn eligible_units(stock: &[StockLot<'_>], lots: &[usize]) -> i64 {
    lots.iter().map(|index| stock[*index].available).sum()
}

fn eligible_left(stock: &[StockLot<'_>], lots: &[usize], used: &[i64]) -> i64 {
    lots.iter().map(|index| stock[*index].available - used[*index]).sum()
}

/// Units the lots could cover of the remaining lines, each GTIN's lines together (they draw on the
/// same lots).
fn coverable(
    stock: &[StockLot<'_>],
    lots: &[Vec<usize>],
    gtin_lines: &[usize],
    remaining: &[i64],
    used: &[i64],
) -> i64 {
    (0..remaining.len())
        .filter(|line| gtin_lines[*line] == *line)
        .map(|first| {
            let wanted: i64 =
                (0..remaining.len()).filter(|line| gtin_lines[*line] == first).map(|line| remaining[line]).sum();
            wanted.min(eligible_left(stock, &lots[first], used))
        })
        .sum()
}

fn units_per_line(stock: &[StockLot<'_>], lots: &[Vec<usize>]) -> Vec<i64> {
    lots.iter().map(|lots| eligible_units(stock, lots)).collect()
}

/// Takes the remaining units of each line from the site's lots, FEFO; updates `used` and
/// `remaining`. Lines of the same GTIN share lots through `used`.
fn take(
    stock: &[StockLot<'_>],
    lots: &[Vec<usize>],
    request: &OrderRequest<'_>,
    used: &mut [i64],
    remaining: &mut [i64],
) -> Vec<Pick> {
    let mut picks = Vec::new();
    for line in 0..request.lines.len() {
        for &index in &lots[line] {
            if remaining[line] == 0 {
                break;
            }
            let units = (stock[index].available - used[index]).min(remaining[line]);
            if units <= 0 {
                continue;
            }
            used[index] += units;
            remaining[line] -= units;
            let lot = &stock[index];
            picks.push(Pick {
                line,
                zone: lot.zone.as_ref().clone(),
                lot: lot.lot.as_ref().to_owned(),
                expiry: lot.expiry,
                quantity: units,
            });
        }
    }
    picks
}
