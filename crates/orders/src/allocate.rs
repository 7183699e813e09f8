//! Allocation: which sites, zones and lots an order ships from.
//!
//! Rules, in order:
//! 1. **Eligible stock**: lots that are available (status), in a zone whose range suits the
//!    product's temperature class, and that on the promised delivery date still have the product's
//!    minimum remaining shelf life (a lot without expiry always qualifies).
//! 2. **One shipment if possible**: among the sites that can ship every line in full and meet the
//!    service (and the latest delivery), the cheapest (handling + lane + last-mile kilometres), then
//!    the earliest promise, then the GLN (so the choice is deterministic).
//! 3. **Otherwise a split**, at most [`SHIPMENTS_MAX`] shipments: the fewest shipments that cover
//!    every line, then the cheapest together, then the earliest (the latest of their promises),
//!    then the lower GLNs. A site may ship the lines of all or only some of the temperature
//!    classes it holds (a lane may carry ambient goods and not chilled ones), each way with its own
//!    route, counting only its lots fresh enough on that route's date. The site covering the most
//!    units ships first; each next one takes what is left.
//!
//! A site's route is its cheapest in time that keeps the order's fresh units (per GTIN, up to the
//! units wanted) as the earliest would: a slower, cheaper way is not taken when its later date
//! would leave a lot short of its shelf life.
//! 4. **FEFO within a site**: earliest expiry first (lots without expiry last), then lot number.
//!
//! The decision and every candidate's outcome are answered (the store keeps the chosen sites and
//! the closest runners-up, and counts the rest), so `GET /v1/orders/{id}` shows why. Both
//! choices are branch and bound: a site (or a combination of sites) is routed (the costly part)
//! only while a lower bound of its cost and an upper bound of its units could still beat the best
//! found; a site skipped so is reported by what it holds, shelf life aside (`Partial`, or
//! `Passed` with its lowest cost). A split's search is exhaustive within those bounds, up to
//! [`SPLIT_SEARCH_STEPS_MAX`] steps for each number of shipments.

use std::borrow::Cow;
use std::ops::Range;

use gs1::{Gln, Gtin};
use jiff::Timestamp;
use jiff::civil::Date;
use network::{Location, Service, TemperatureClass, ZoneName};

use crate::promise::{Destination, NetworkView, NoRoute, PromiseRequest, Route, cheapest_cost, routes, service_bound};

/// The most shipments one order is split into.
pub const SHIPMENTS_MAX: usize = 3;
/// The most lines of one order.
pub const LINES_MAX: usize = 100;
/// The most steps a split's search takes for each number of shipments (a step looks at one more
/// option for a combination: a few additions per GTIN, and routing the option the first time it
/// is chosen). Past it, the best split found so far is taken, or, with none, the search goes on
/// with one shipment more, and after the last the order is refused as needing too many shipments
/// (saying the search stopped). An option routed once prunes by its own cost and fresh units, so
/// the limit takes many options that each hold some units and that the bounds cannot tell apart.
pub const SPLIT_SEARCH_STEPS_MAX: usize = 100_000;

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
    /// Holds eligible units of only some lines (units per line: available, in a zone that keeps
    /// the product, with its minimum shelf life left on the delivery day of the site's route, or
    /// for a site not routed on the day the order is placed).
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

/// Allocates an order against `stock` (available units now). Pure: the caller reserves.
pub fn allocate(
    network: NetworkView<'_>,
    stock: &[StockLot<'_>],
    request: &OrderRequest<'_>,
) -> Result<Allocation, AllocationError> {
    allocate_within(network, stock, request, SPLIT_SEARCH_STEPS_MAX)
}

/// [`allocate`] with a split's search limited to `split_steps_max` steps for each number of
/// shipments instead of [`SPLIT_SEARCH_STEPS_MAX`] (tests reach the limit on small networks).
pub fn allocate_within(
    network: NetworkView<'_>,
    stock: &[StockLot<'_>],
    request: &OrderRequest<'_>,
    split_steps_max: usize,
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
    let firsts: Vec<usize> = (0..lines.len()).filter(|line| lines.gtin_lines[*line] == *line).collect();
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
    // zones suited to the line with the product's minimum shelf life left on the earliest day it
    // could be delivered, the day it is placed (a lot short of it then is short on any later
    // day; each route's own day is judged once it is known): `units[site * lines + line]`.
    let placed = Timestamp::from_millisecond(request.placed_unix_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let earliest = request.destination.time_zone.to_datetime(placed).date();
    // Per line, the first expiry that leaves the minimum then: a date compared, not a span
    // worked out per lot (this runs for every lot of every order).
    let first_fresh_expiry: Vec<Option<Date>> = rules
        .iter()
        .map(|rule| earliest.checked_add(jiff::Span::new().days(i64::from(rule.min_remaining_shelf_life_days))).ok())
        .collect();
    let fresh_on_the_earliest_day = |line: usize, lot: &StockLot<'_>| {
        lot.expiry.is_none_or(|expiry| first_fresh_expiry[line].is_none_or(|first| expiry >= first))
    };
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
                .filter(|held| fresh_on_the_earliest_day(line, &stock[held.lot]))
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
        let site_routes = match routes(network, view.site, &promise(request, &all_classes, latest_by_service)) {
            Ok(site_routes) => site_routes,
            Err(no_route) => {
                outcomes[index] = Some(CandidateOutcome::NoRoute(no_route));
                continue;
            }
        };
        let suitable = lines.suitable_lots(view, &holdings);
        let (site_route, lots, _) =
            cheapest_keeping_fresh(stock, &lines, &suitable, site_routes, request.destination, &firsts, &wanted);
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

    // A split: the fewest shipments, then the cheapest in total, then the earliest (the latest of
    // its promises), then the lower GLNs.
    let context = SplitContext {
        network,
        stock,
        request,
        lines: &lines,
        firsts: &firsts,
        wanted: &wanted,
        views: &views,
        holdings: &holdings,
        latest_by_service,
        steps_max: split_steps_max,
    };
    context.split(units_of)
}

/// Held classes up to this many give a site a split option for each non-empty subset of them;
/// more give the whole set and each class alone.
const CLASS_SUBSETS_UP_TO: usize = 3;

/// Everything a split is chosen from.
struct SplitContext<'c, 's> {
    network: NetworkView<'c>,
    stock: &'c [StockLot<'s>],
    request: &'c OrderRequest<'c>,
    lines: &'c Lines<'c>,
    /// The first line of each GTIN: per-GTIN counts are in this order.
    firsts: &'c [usize],
    /// Per first line of a GTIN: the units its lines want together.
    wanted: &'c [i64],
    views: &'c [SiteView<'c>],
    holdings: &'c [Held],
    latest_by_service: Timestamp,
    /// The search's steps for each number of shipments.
    steps_max: usize,
}

/// How a site would ship its part of a split: a route for the option's classes, and per line its
/// lots still fresh enough on that route's date (none for lines of other classes).
struct SplitSite {
    route: Route,
    lots: Vec<Vec<usize>>,
}

/// A way a site may take part in a split: shipping the lines of some of the classes it holds, on
/// a route that carries those classes (a lane may carry ambient goods and not chilled ones).
struct SplitOption {
    view: usize,
    classes: Vec<TemperatureClass>,
    /// The lowest cost of any way from the site that carries `classes`.
    bound_cents: u64,
    /// Per GTIN: units held in suitable zones, shelf life aside, capped at the units wanted (0
    /// for GTINs of other classes).
    upper: Vec<i64>,
    /// Routed (once, when a combination needs it), with its units per GTIN fresh enough.
    exact: Option<Result<(SplitSite, Vec<i64>), NoRoute>>,
}

/// The best split found: total cost, the latest promise, the options (positions, ascending) and
/// their sites (view indexes, ascending; compared last).
type BestSplit = (u64, i64, Vec<usize>, Vec<usize>);

impl SplitContext<'_, '_> {
    /// Routes an option and counts, per GTIN, its units fresh enough.
    fn route_option(&self, option: &SplitOption) -> Result<(SplitSite, Vec<i64>), NoRoute> {
        let view = &self.views[option.view];
        let site_routes =
            routes(self.network, view.site, &promise(self.request, &option.classes, self.latest_by_service))?;
        let mut suitable = self.lines.suitable_lots(view, self.holdings);
        for (line, lots) in suitable.iter_mut().enumerate() {
            if !option.classes.contains(&self.lines.rules[line].class) {
                lots.clear();
            }
        }
        let (route, lots, units) = cheapest_keeping_fresh(
            self.stock,
            self.lines,
            &suitable,
            site_routes,
            self.request.destination,
            self.firsts,
            self.wanted,
        );
        Ok((SplitSite { route, lots }, units))
    }

    /// The options of every site holding units of some line, cheapest bound first, and per GTIN
    /// the units all sites hold together, shelf life aside (each site's once, whatever its options).
    fn options<'u>(&self, units_of: &impl Fn(usize) -> &'u [i64]) -> (Vec<SplitOption>, Vec<i64>) {
        let mut options = Vec::new();
        let mut held_anywhere = vec![0i64; self.firsts.len()];
        for (view, site) in self.views.iter().enumerate() {
            let first_option = options.len();
            let held = units_of(view);
            let classes = classes_of(&self.lines.rules, (0..self.lines.len()).filter(|line| held[*line] > 0));
            let subsets: Vec<Vec<TemperatureClass>> = if classes.len() <= CLASS_SUBSETS_UP_TO {
                (1..1usize << classes.len())
                    .map(|mask| {
                        classes.iter().enumerate().filter(|(bit, _)| mask & (1 << bit) != 0).map(|(_, c)| *c).collect()
                    })
                    .collect()
            } else {
                std::iter::once(classes.clone()).chain(classes.iter().map(|class| vec![*class])).collect()
            };
            for subset in subsets {
                let upper: Vec<i64> = self
                    .firsts
                    .iter()
                    .map(|first| {
                        if subset.contains(&self.lines.rules[*first].class) {
                            held[*first].min(self.wanted[*first])
                        } else {
                            0
                        }
                    })
                    .collect();
                let (bound_cents, exact) =
                    match cheapest_cost(self.network, site.site, self.request.destination, &subset) {
                        Some(bound_cents) => (bound_cents, None),
                        // No way at all: known now, never searched.
                        None => (u64::MAX, Some(Err(NoRoute::NoLane(class_names(&subset))))),
                    };
                options.push(SplitOption { view, classes: subset, bound_cents, upper, exact });
            }
            for (gtin, total) in held_anywhere.iter_mut().enumerate() {
                let options = options[first_option..].iter().filter(|option| option.exact.is_none());
                *total += options.map(|option| option.upper[gtin]).max().unwrap_or(0);
            }
        }
        // Cheapest bound first: a combination's options are then tried in that order and the
        // search stops where even the bounds cost more than the best combination found.
        options.sort_by_key(|option| (option.bound_cents, option.view, option.classes.len()));
        (options, held_anywhere)
    }

    fn split<'u>(&self, units_of: impl Fn(usize) -> &'u [i64]) -> Result<Allocation, AllocationError> {
        let need: Vec<i64> = self.firsts.iter().map(|first| self.wanted[*first]).collect();
        let (mut options, held_anywhere) = self.options(&units_of);
        let searchable = |option: &SplitOption| !matches!(option.exact, Some(Err(_)));
        let total = |options: &mut dyn Iterator<Item = &Vec<i64>>| {
            let mut total = vec![0i64; need.len()];
            for units in options {
                total.iter_mut().zip(units).for_each(|(total, units)| *total += units);
            }
            total
        };
        let mut best: Option<BestSplit> = None;
        let mut cut_short = false;
        if held_anywhere.iter().zip(&need).all(|(held, need)| held >= need) {
            // Per position and GTIN: the most units of any option from it on.
            let mut most_after = vec![0i64; (options.len() + 1) * need.len()];
            for position in (0..options.len()).rev() {
                for gtin in 0..need.len() {
                    let units = if searchable(&options[position]) { options[position].upper[gtin] } else { 0 };
                    most_after[position * need.len() + gtin] =
                        units.max(most_after[(position + 1) * need.len() + gtin]);
                }
            }
            for size in 2..=SHIPMENTS_MAX {
                let mut search = Search {
                    context: self,
                    need: &need,
                    most_after: &most_after,
                    options: &mut options,
                    best: None,
                    steps_left: self.steps_max,
                    stopped: false,
                };
                search.combinations(size, 0, &mut Vec::with_capacity(size), 0, &mut vec![0; need.len()]);
                cut_short |= search.stopped;
                if search.best.is_some() {
                    best = search.best;
                    break;
                }
            }
        }
        let cut_short = if cut_short {
            format!(" (the search stopped at its limit of {} steps)", self.steps_max)
        } else {
            String::new()
        };
        let Some((_, _, chosen, _)) = best else {
            // No split of at most SHIPMENTS_MAX shipments: short, unless every site together
            // holds enough (each GTIN counted where its class alone can go in time, fresh enough
            // then; so every short line is named at once).
            for option in options.iter_mut() {
                if option.exact.is_none() && option.classes.len() == 1 {
                    option.exact = Some(self.route_option(option));
                }
            }
            let fresh = total(
                &mut options
                    .iter()
                    .filter(|option| option.classes.len() == 1)
                    .filter_map(|option| option.exact.as_ref()?.as_ref().ok().map(|(_, units)| units)),
            );
            let candidates = self.report(&options, &[], &units_of);
            if fresh.iter().zip(&need).all(|(fresh, need)| fresh >= need) {
                return Err(AllocationError::TooManyShipments {
                    decision: Decision {
                        rule: format!(
                            "no split into {SHIPMENTS_MAX} shipments covers the order{cut_short}; the sites together \
                             hold enough, but a site ships once, on one route for the classes it ships"
                        ),
                        candidates,
                    },
                });
            }
            return Err(AllocationError::Short {
                shortages: self.shortages(&fresh),
                decision: Decision {
                    rule: "not enough eligible stock at sites that reach the destination in time".to_owned(),
                    candidates,
                },
            });
        };
        // The shipments, the site covering the most units first (then the cheaper, the lower GLN);
        // each takes, FEFO, what the ones before it left. A site of a smallest combination always
        // takes some (the others alone would have been a smaller one); when the search was cut
        // short one might not, and then ships nothing and is left out.
        let mut shipping: Vec<(usize, usize, &SplitSite, i64)> = chosen
            .iter()
            .filter_map(|position| {
                let option = &options[*position];
                let (site, units) = option.exact.as_ref()?.as_ref().ok()?;
                Some((*position, option.view, site, units.iter().sum::<i64>()))
            })
            .collect();
        debug_assert_eq!(shipping.len(), chosen.len(), "every chosen option was routed");
        shipping.sort_by(|(_, a, a_site, a_units), (_, b, b_site, b_units)| {
            (std::cmp::Reverse(a_units), a_site.route.cost_cents, a).cmp(&(
                std::cmp::Reverse(b_units),
                b_site.route.cost_cents,
                b,
            ))
        });
        let mut remaining: Vec<i64> = self.request.lines.iter().map(|line| line.quantity).collect();
        let mut used = vec![0i64; self.stock.len()];
        let mut shipments: Vec<Shipment> = Vec::with_capacity(shipping.len());
        let mut shipped: Vec<usize> = Vec::with_capacity(shipping.len());
        for (position, view, site, _) in &shipping {
            let picks = take(self.stock, &site.lots, self.request, &mut used, &mut remaining);
            if !picks.is_empty() {
                shipped.push(*position);
                shipments.push(Shipment { site: self.views[*view].site.gln.clone(), route: site.route.clone(), picks });
            }
        }
        let candidates = self.report(&options, &shipped, &units_of);
        if remaining.iter().any(|units| *units > 0) {
            // The combination's counts said it covers every line; its lots did not. Not expected:
            // refused as short rather than shipped in part.
            debug_assert!(false, "a feasible split covers every line: {remaining:?}");
            let fresh: Vec<i64> = self
                .firsts
                .iter()
                .map(|first| {
                    (0..remaining.len())
                        .filter(|line| self.lines.gtin_lines[*line] == *first)
                        .map(|line| self.request.lines[line].quantity - remaining[line])
                        .sum()
                })
                .collect();
            return Err(AllocationError::Short {
                shortages: self.shortages(&fresh),
                decision: Decision { rule: "the chosen split's lots fell short".to_owned(), candidates },
            });
        }
        let promised_by_unix_ms =
            shipments.iter().map(|shipment| shipment.route.promised_by_unix_ms).max().unwrap_or(0);
        Ok(Allocation {
            promised_by_unix_ms,
            decision: Decision {
                rule: format!(
                    "{} shipments: no single site holds every line in time; the fewest shipments, then the cheapest \
                     together{cut_short}",
                    shipments.len()
                ),
                candidates,
            },
            shipments,
        })
    }

    /// The lines left short by `fresh` units per GTIN; a GTIN's units go to its lines in order.
    fn shortages(&self, fresh: &[i64]) -> Vec<Shortage> {
        let mut left = fresh.to_vec();
        let mut shortages = Vec::new();
        for (line, order_line) in self.request.lines.iter().enumerate() {
            let Some(gtin) = self.firsts.iter().position(|first| *first == self.lines.gtin_lines[line]) else {
                continue;
            };
            let eligible = left[gtin].min(order_line.quantity);
            left[gtin] -= eligible;
            if eligible < order_line.quantity {
                shortages.push(Shortage { line, gtin: order_line.gtin.clone(), wanted: order_line.quantity, eligible });
            }
        }
        shortages
    }

    /// Why a site cannot go anywhere in time, if it cannot: every one of its options alone with
    /// one class has no way (an option with more classes has fewer ways still). The reason of its
    /// widest option routed.
    fn no_way<'o>(&self, options: &'o [SplitOption], positions: &[usize]) -> Option<&'o NoRoute> {
        let single: Vec<&SplitOption> =
            positions.iter().map(|position| &options[*position]).filter(|option| option.classes.len() == 1).collect();
        if single.is_empty() || !single.iter().all(|option| matches!(option.exact, Some(Err(_)))) {
            return None;
        }
        positions
            .iter()
            .map(|position| &options[*position])
            .filter_map(|option| match &option.exact {
                Some(Err(no_route)) => Some((option.classes.len(), no_route)),
                _ => None,
            })
            .max_by_key(|(classes, _)| *classes)
            .map(|(_, no_route)| no_route)
    }

    /// Every site's outcome: chosen (with its option's route), no way to the destination in time
    /// for any of its options, or the units it holds of each line (fresh enough on the best of its
    /// routed options, shelf life aside when the search never routed it).
    fn report<'u>(
        &self,
        options: &[SplitOption],
        chosen: &[usize],
        units_of: &impl Fn(usize) -> &'u [i64],
    ) -> Vec<Candidate> {
        let mut of_view: Vec<Vec<usize>> = vec![Vec::new(); self.views.len()];
        for (position, option) in options.iter().enumerate() {
            of_view[option.view].push(position);
        }
        self.views
            .iter()
            .enumerate()
            .map(|(index, view)| {
                let positions = &of_view[index];
                let routed = positions.iter().filter_map(|position| match &options[*position].exact {
                    Some(Ok((site, _))) => Some((*position, site)),
                    _ => None,
                });
                let outcome = if let Some(site) = routed.clone().find(|(position, _)| chosen.contains(position)) {
                    CandidateOutcome::Chosen {
                        cost_cents: site.1.route.cost_cents,
                        promised_by_unix_ms: site.1.route.promised_by_unix_ms,
                    }
                } else if let Some((_, site)) = routed.max_by_key(|(position, site)| {
                    (units_per_line(self.stock, &site.lots).iter().sum::<i64>(), std::cmp::Reverse(*position))
                }) {
                    CandidateOutcome::Partial { eligible_units: units_per_line(self.stock, &site.lots) }
                } else if let Some(no_route) = self.no_way(options, positions) {
                    CandidateOutcome::NoRoute(no_route.clone())
                } else {
                    CandidateOutcome::Partial { eligible_units: units_of(index).to_vec() }
                };
                Candidate { site: view.site.gln.clone(), outcome }
            })
            .collect()
    }
}

/// A search of the combinations of one size among the options (cheapest bound first, one option
/// a site): branch and bound on the cost and on the units, options routed only when a combination
/// that could beat the best found needs them.
struct Search<'a, 'c, 's> {
    context: &'a SplitContext<'c, 's>,
    need: &'a [i64],
    /// Per position and GTIN: the most units of any option from that position on.
    most_after: &'a [i64],
    options: &'a mut Vec<SplitOption>,
    best: Option<BestSplit>,
    /// Of the context's `steps_max`.
    steps_left: usize,
    /// Whether it wanted a step past its limit.
    stopped: bool,
}

impl Search<'_, '_, '_> {
    /// Extends `chosen` (positions in `options`) from `start` to `size` options. `cost_cents` and
    /// `units` are the chosen options' routed costs and fresh units, summed. An option is routed
    /// when first chosen, so its own cost and fresh units prune what follows.
    fn combinations(
        &mut self,
        size: usize,
        start: usize,
        chosen: &mut Vec<usize>,
        cost_cents: u64,
        units: &mut Vec<i64>,
    ) {
        let slots = size - chosen.len();
        let gtins = self.need.len();
        for position in start..self.options.len() {
            if self.steps_left == 0 {
                self.stopped = true;
                return;
            }
            self.steps_left -= 1;
            let option = &self.options[position];
            let bound_cents = option.bound_cents;
            // Options come cheapest bound first: no later one does better.
            let bound_after = cost_cents.saturating_add(bound_cents.saturating_mul(slots as u64));
            if bound_cents == u64::MAX || self.best.as_ref().is_some_and(|(best_cents, ..)| bound_after > *best_cents) {
                return;
            }
            if matches!(option.exact, Some(Err(_)))
                || chosen.iter().any(|other| self.options[*other].view == option.view)
            {
                continue;
            }
            // The units so far, this option's, and the most any later option could add for each
            // slot left must reach every GTIN's need: first with its units shelf life aside, then
            // (routed) with its fresh ones.
            let most_after = &self.most_after[(position + 1) * gtins..(position + 2) * gtins];
            let reachable = |own: &[i64]| {
                (0..gtins)
                    .all(|gtin| units[gtin] + own[gtin] + most_after[gtin] * (slots as i64 - 1) >= self.need[gtin])
            };
            if !reachable(&option.upper) {
                continue;
            }
            if option.exact.is_none() {
                let exact = self.context.route_option(&self.options[position]);
                self.options[position].exact = Some(exact);
            }
            let Some(Ok((site, fresh))) = &self.options[position].exact else { continue };
            let own_cents = site.route.cost_cents;
            if !reachable(fresh) {
                continue;
            }
            // Later options cost at least this one's bound.
            let cost_after = cost_cents + own_cents + bound_cents * (slots as u64 - 1);
            if self.best.as_ref().is_some_and(|(best_cents, ..)| cost_after > *best_cents) {
                continue;
            }
            let fresh = fresh.clone();
            units.iter_mut().zip(&fresh).for_each(|(units, own)| *units += own);
            chosen.push(position);
            if slots == 1 {
                self.consider(chosen, cost_cents + own_cents);
            } else {
                self.combinations(size, position + 1, chosen, cost_cents + own_cents, units);
            }
            chosen.pop();
            units.iter_mut().zip(&fresh).for_each(|(units, own)| *units -= own);
        }
    }

    /// Keeps a combination that covers the order (its routed options' fresh units do) if it beats
    /// the best found: cheaper, then earlier, then lower GLNs.
    fn consider(&mut self, chosen: &[usize], cost_cents: u64) {
        let promised_by_unix_ms = chosen
            .iter()
            .filter_map(|position| match &self.options[*position].exact {
                Some(Ok((site, _))) => Some(site.route.promised_by_unix_ms),
                _ => None,
            })
            .max()
            .unwrap_or(i64::MIN);
        if self.best.as_ref().is_some_and(|best| (cost_cents, promised_by_unix_ms) > (best.0, best.1)) {
            return;
        }
        let mut positions = chosen.to_vec();
        positions.sort_unstable();
        let mut views: Vec<usize> = chosen.iter().map(|position| self.options[*position].view).collect();
        views.sort_unstable();
        let candidate = (cost_cents, promised_by_unix_ms, positions, views);
        let better = self.best.as_ref().is_none_or(|best| {
            (candidate.0, candidate.1, &candidate.3, &candidate.2) < (best.0, best.1, &best.3, &best.2)
        });
        if better {
            self.best = Some(candidate);
        }
    }
}

/// Of a site's routes in time (cheapest first), the first whose delivery date keeps every unit
/// the earliest one's would, counted per GTIN up to the units wanted: a cheaper, slower way is
/// taken only when it costs the order no fresh stock. Returns the route, the lots fresh enough on
/// its date, and those units per GTIN (in the order of `firsts`).
fn cheapest_keeping_fresh(
    stock: &[StockLot<'_>],
    lines: &Lines<'_>,
    suitable: &[Vec<usize>],
    site_routes: Vec<Route>,
    destination: &Destination,
    firsts: &[usize],
    wanted: &[i64],
) -> (Route, Vec<Vec<usize>>, Vec<i64>) {
    let capped = |lots: &[Vec<usize>]| -> Vec<i64> {
        firsts.iter().map(|first| eligible_units(stock, &lots[*first]).min(wanted[*first])).collect()
    };
    debug_assert!(!site_routes.is_empty(), "`routes` answers at least one route");
    let dates: Vec<Date> = site_routes.iter().map(|route| delivery_date(route, destination)).collect();
    let earliest = dates.iter().enumerate().min_by_key(|(index, date)| (**date, *index)).map_or(0, |(index, _)| index);
    let freshest = fresh_enough(stock, suitable, &lines.rules, dates[earliest]);
    let most = capped(&freshest);
    // The first (cheapest) route delivering on the earliest date, or earlier in the list one
    // whose later date keeps as many units.
    let chosen = (0..site_routes.len())
        .find(|index| {
            dates[*index] == dates[earliest]
                || capped(&fresh_enough(stock, suitable, &lines.rules, dates[*index])) == most
        })
        .unwrap_or(earliest);
    let lots = if dates[chosen] == dates[earliest] {
        freshest
    } else {
        fresh_enough(stock, suitable, &lines.rules, dates[chosen])
    };
    let route = site_routes.into_iter().nth(chosen).expect("an index of the routes");
    (route, lots, most)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A van that costs less but delivers the next day, and a lane that delivers today: the van
    /// while the lots it would deliver are as many, the lane when the van's date would leave a lot
    /// short of its shelf life.
    #[test]
    fn a_cheaper_route_is_taken_only_when_it_keeps_the_fresh_units() {
        let product = ProductRule {
            gtin: Gtin::parse("08710000000017").unwrap(),
            class: TemperatureClass::Chilled,
            min_remaining_shelf_life_days: 3,
        };
        let lines = Lines { rules: vec![&product], gtin_lines: vec![0] };
        let destination = Destination {
            coordinates: network::Coordinates::new(52.37, 4.9).unwrap(),
            time_zone: jiff::tz::TimeZone::UTC,
        };
        let at = |day: i8, cost_cents: u64| Route {
            pick_from_unix_ms: 0,
            ready_unix_ms: 0,
            line_haul: None,
            delivering_site: Gln::parse("8712345000011").unwrap(),
            last_mile_departure_unix_ms: 0,
            last_mile_km: 0.0,
            promised_by_unix_ms: jiff::civil::date(2026, 12, day)
                .at(12, 0, 0, 0)
                .to_zoned(jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp()
                .as_millisecond(),
            cost_cents,
        };
        let lot = |expiry: i8, available: i64| StockLot {
            site: Cow::Owned(Gln::parse("8712345000011").unwrap()),
            zone: Cow::Owned(ZoneName::parse("chill").unwrap()),
            gtin: Cow::Owned(product.gtin.clone()),
            lot: Cow::Owned(format!("L{expiry}")),
            expiry: Some(jiff::civil::date(2026, 12, expiry)),
            available,
        };
        // Cheapest first, as `routes` answers: the van (the 2nd), then the lane (the 1st).
        let routes = || vec![at(2, 1_000), at(1, 5_000)];
        // A lot good until the 10th: fresh on either date; the van.
        let stock = [lot(10, 5)];
        let (route, lots, units) =
            cheapest_keeping_fresh(&stock, &lines, &[vec![0]], routes(), &destination, &[0], &[5]);
        assert_eq!((route.cost_cents, lots, units), (1_000, vec![vec![0]], vec![5]));
        // A lot good until the 4th: 3 days left on the 1st, 2 on the 2nd. The lane.
        let stock = [lot(4, 5)];
        let (route, lots, units) =
            cheapest_keeping_fresh(&stock, &lines, &[vec![0]], routes(), &destination, &[0], &[5]);
        assert_eq!((route.cost_cents, lots, units), (5_000, vec![vec![0]], vec![5]));
        // Both lots, 5 wanted: the lot until the 10th alone covers them on the 2nd; the van.
        let stock = [lot(4, 5), lot(10, 5)];
        let (route, _, units) =
            cheapest_keeping_fresh(&stock, &lines, &[vec![0, 1]], routes(), &destination, &[0], &[5]);
        assert_eq!((route.cost_cents, units), (1_000, vec![5]));
        // 8 wanted: only the lane's date keeps all 8 of them.
        let (route, _, units) =
            cheapest_keeping_fresh(&stock, &lines, &[vec![0, 1]], routes(), &destination, &[0], &[8]);
        assert_eq!((route.cost_cents, units), (5_000, vec![8]));
    }
}
