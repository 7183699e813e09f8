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
//!    then the lower GLNs. Each site ships with its own route, chosen for the classes of all the
//!    lines it holds, and counts only its lots fresh enough on that route's date. The site covering
//!    the most units ships first; each next one takes what is left.
//! 4. **FEFO within a site**: earliest expiry first (lots without expiry last), then lot number.
//!
//! The decision and every candidate's outcome are answered (the store keeps the chosen sites and
//! the closest runners-up, and counts the rest), so `GET /v1/orders/{id}` shows why. Both
//! choices are branch and bound: a site (or a combination of sites) is routed (the costly part)
//! only while a lower bound of its cost and an upper bound of its units could still beat the best
//! found; a site skipped so is reported by what it holds, shelf life aside (`Partial`, or
//! `Passed` with its lowest cost). A split's search is exhaustive within those bounds, up to
//! [`SPLIT_COMBINATIONS_MAX`] combinations, each checked by adding per-GTIN counts.

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
/// The most combinations of sites a split's search looks at (each costs at most one addition per
/// GTIN, and routing its sites the first time). Past it, the best split found so far is taken, or,
/// with none, the order is refused as needing too many shipments. Only a network of more than
/// about 70 sites holding the order's products can reach it.
pub const SPLIT_COMBINATIONS_MAX: usize = 50_000;

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

    // A split: the fewest shipments, then the cheapest in total, then the earliest (the latest of
    // its promises), then the lower GLNs.
    let context = SplitContext {
        network,
        stock,
        request,
        lines: &lines,
        wanted: &wanted,
        views: &views,
        holdings: &holdings,
        latest_by_service,
    };
    context.split(units_of)
}

/// Everything a split is chosen from.
struct SplitContext<'c, 's> {
    network: NetworkView<'c>,
    stock: &'c [StockLot<'s>],
    request: &'c OrderRequest<'c>,
    lines: &'c Lines<'c>,
    /// Per first line of a GTIN: the units its lines want together.
    wanted: &'c [i64],
    views: &'c [SiteView<'c>],
    holdings: &'c [Held],
    latest_by_service: Timestamp,
}

/// A site that could ship part of a split: its route for the classes of the lines it holds (each
/// shipment carries every class it might), and per line its lots still fresh enough on that route's
/// delivery date.
struct SplitSite {
    route: Route,
    lots: Vec<Vec<usize>>,
}

/// A site a split may draw on, with what is known of it before it is routed.
struct OpenSite {
    view: usize,
    /// The lowest cost of any way from it that carries its classes.
    bound_cents: u64,
    classes: Vec<TemperatureClass>,
    /// Per GTIN (in the order of `SplitContext::firsts`): units held, shelf life aside, capped at
    /// the units wanted.
    upper: Vec<i64>,
    /// Routed (once, when a combination needs it).
    exact: Option<Result<(SplitSite, Vec<i64>), NoRoute>>,
}

/// The best split found: total cost, the latest promise, the sites (view indexes, ascending).
type BestSplit = (u64, i64, Vec<usize>);

impl SplitContext<'_, '_> {
    /// The first line of each GTIN.
    fn firsts(&self) -> Vec<usize> {
        (0..self.lines.len()).filter(|line| self.lines.gtin_lines[*line] == *line).collect()
    }

    /// Routes an open site and counts, per GTIN, its units fresh enough on that route's date.
    fn route_site(&self, site: &OpenSite, firsts: &[usize]) -> Result<(SplitSite, Vec<i64>), NoRoute> {
        let view = &self.views[site.view];
        let site_route = route(self.network, view.site, &promise(self.request, &site.classes, self.latest_by_service))?;
        let suitable = self.lines.suitable_lots(view, self.holdings);
        let lots = fresh_enough(
            self.stock,
            &suitable,
            &self.lines.rules,
            delivery_date(&site_route, self.request.destination),
        );
        let units =
            firsts.iter().map(|first| eligible_units(self.stock, &lots[*first]).min(self.wanted[*first])).collect();
        Ok((SplitSite { route: site_route, lots }, units))
    }

    fn split<'u>(&self, units_of: impl Fn(usize) -> &'u [i64]) -> Result<Allocation, AllocationError> {
        let firsts = self.firsts();
        let need: Vec<i64> = firsts.iter().map(|first| self.wanted[*first]).collect();
        let mut no_lane: Vec<(usize, NoRoute)> = Vec::new();
        let mut open: Vec<OpenSite> = Vec::new();
        for (view, site) in self.views.iter().enumerate() {
            let held = units_of(view);
            let serving: Vec<usize> = (0..self.lines.len()).filter(|line| held[*line] > 0).collect();
            if serving.is_empty() {
                continue;
            }
            let classes = classes_of(&self.lines.rules, serving.into_iter());
            let Some(bound_cents) = cheapest_cost(self.network, site.site, self.request.destination, &classes) else {
                no_lane.push((view, NoRoute::NoLane(class_names(&classes))));
                continue;
            };
            let upper = firsts.iter().map(|first| held[*first].min(self.wanted[*first])).collect();
            open.push(OpenSite { view, bound_cents, classes, upper, exact: None });
        }
        // Cheapest bound first: a combination's sites are then tried in that order and the search
        // stops where even the bounds cost more than the best combination found.
        open.sort_unstable_by_key(|site| (site.bound_cents, site.view));
        let enough = |units: &mut dyn Iterator<Item = &Vec<i64>>| {
            let mut total = vec![0i64; need.len()];
            for site in units {
                total.iter_mut().zip(site).for_each(|(total, units)| *total += units);
            }
            total.iter().zip(&need).all(|(total, need)| total >= need)
        };
        let mut best: Option<BestSplit> = None;
        let mut combinations_left = SPLIT_COMBINATIONS_MAX;
        if enough(&mut open.iter().map(|site| &site.upper)) {
            for size in 2..=SHIPMENTS_MAX {
                let mut search = Search {
                    context: self,
                    firsts: &firsts,
                    need: &need,
                    open: &mut open,
                    best: None,
                    combinations_left: &mut combinations_left,
                };
                search.combinations(size, 0, &mut Vec::with_capacity(size), 0, &mut vec![0; need.len()]);
                if search.best.is_some() {
                    best = search.best;
                    break;
                }
            }
        }
        let cut_short = if combinations_left == 0 {
            format!(" (the search stopped at its limit of {SPLIT_COMBINATIONS_MAX} combinations)")
        } else {
            String::new()
        };
        let Some((_, _, chosen)) = best else {
            // No split of at most SHIPMENTS_MAX shipments: short, unless every site together
            // (routed, shelf life counted) holds enough.
            for site in open.iter_mut() {
                if site.exact.is_none() {
                    site.exact = Some(self.route_site(site, &firsts));
                }
            }
            let candidates = self.report(&open, &no_lane, &[], units_of);
            if enough(&mut open.iter().filter_map(|site| site.exact.as_ref()?.as_ref().ok().map(|(_, units)| units))) {
                return Err(AllocationError::TooManyShipments {
                    decision: Decision {
                        rule: format!("no split into {SHIPMENTS_MAX} shipments covers the order{cut_short}"),
                        candidates,
                    },
                });
            }
            return Err(AllocationError::Short {
                shortages: self.shortages(&open, &firsts),
                decision: Decision {
                    rule: "not enough eligible stock at sites that reach the destination in time".to_owned(),
                    candidates,
                },
            });
        };
        // The shipments, the site covering the most units first (then the cheaper, the lower GLN);
        // each takes, FEFO, what the ones before it left. No site of a smallest combination is
        // left with nothing to take (the others alone would have been a smaller one).
        let mut shipping: Vec<(&OpenSite, &SplitSite, i64)> = chosen
            .iter()
            .filter_map(|view| {
                let site = open.iter().find(|site| site.view == *view)?;
                let (split_site, units) = site.exact.as_ref()?.as_ref().ok()?;
                Some((site, split_site, units.iter().sum::<i64>()))
            })
            .collect();
        debug_assert_eq!(shipping.len(), chosen.len(), "every chosen site was routed");
        shipping.sort_by(|(a, a_site, a_units), (b, b_site, b_units)| {
            (std::cmp::Reverse(a_units), a_site.route.cost_cents, a.view).cmp(&(
                std::cmp::Reverse(b_units),
                b_site.route.cost_cents,
                b.view,
            ))
        });
        let mut remaining: Vec<i64> = self.request.lines.iter().map(|line| line.quantity).collect();
        let mut used = vec![0i64; self.stock.len()];
        let mut shipments: Vec<Shipment> = Vec::with_capacity(shipping.len());
        for (site, split_site, _) in &shipping {
            let picks = take(self.stock, &split_site.lots, self.request, &mut used, &mut remaining);
            debug_assert!(!picks.is_empty(), "a site of a smallest split takes some units");
            shipments.push(Shipment {
                site: self.views[site.view].site.gln.clone(),
                route: split_site.route.clone(),
                picks,
            });
        }
        assert!(remaining.iter().all(|units| *units == 0), "a feasible split covers every line");
        let candidates = self.report(&open, &no_lane, &chosen, units_of);
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

    /// The lines left short by every site together (routed, shelf life counted); the units of a
    /// GTIN go to its lines in order.
    fn shortages(&self, open: &[OpenSite], firsts: &[usize]) -> Vec<Shortage> {
        let mut left: Vec<i64> = vec![0; firsts.len()];
        for site in open {
            if let Some(Ok((_, units))) = &site.exact {
                left.iter_mut().zip(units).for_each(|(left, units)| *left += units);
            }
        }
        let mut shortages = Vec::new();
        for (line, order_line) in self.request.lines.iter().enumerate() {
            let Some(gtin) = firsts.iter().position(|first| *first == self.lines.gtin_lines[line]) else { continue };
            let eligible = left[gtin].min(order_line.quantity);
            left[gtin] -= eligible;
            if eligible < order_line.quantity {
                shortages.push(Shortage { line, gtin: order_line.gtin.clone(), wanted: order_line.quantity, eligible });
            }
        }
        shortages
    }

    /// Every site's outcome: chosen, no way to the destination in time, or the units it holds of
    /// each line (fresh enough on its route's date when it was routed, shelf life aside when the
    /// search never needed it).
    fn report<'u>(
        &self,
        open: &[OpenSite],
        no_lane: &[(usize, NoRoute)],
        chosen: &[usize],
        units_of: impl Fn(usize) -> &'u [i64],
    ) -> Vec<Candidate> {
        self.views
            .iter()
            .enumerate()
            .map(|(index, view)| {
                let exact = open.iter().find(|site| site.view == index).and_then(|site| site.exact.as_ref());
                let outcome = match exact {
                    Some(Ok((site, _))) if chosen.contains(&index) => CandidateOutcome::Chosen {
                        cost_cents: site.route.cost_cents,
                        promised_by_unix_ms: site.route.promised_by_unix_ms,
                    },
                    Some(Ok((site, _))) => {
                        CandidateOutcome::Partial { eligible_units: units_per_line(self.stock, &site.lots) }
                    }
                    Some(Err(no_route)) => CandidateOutcome::NoRoute(no_route.clone()),
                    None => match no_lane.iter().find(|(view, _)| *view == index) {
                        Some((_, no_route)) => CandidateOutcome::NoRoute(no_route.clone()),
                        None => CandidateOutcome::Partial { eligible_units: units_of(index).to_vec() },
                    },
                };
                Candidate { site: view.site.gln.clone(), outcome }
            })
            .collect()
    }
}

/// A search of the combinations of one size among the open sites (cheapest bound first): branch
/// and bound on the cost, sites routed only when a combination that could beat the best found
/// needs them.
struct Search<'a, 'c, 's> {
    context: &'a SplitContext<'c, 's>,
    firsts: &'a [usize],
    need: &'a [i64],
    open: &'a mut Vec<OpenSite>,
    best: Option<BestSplit>,
    /// Of [`SPLIT_COMBINATIONS_MAX`], across the sizes searched.
    combinations_left: &'a mut usize,
}

impl Search<'_, '_, '_> {
    /// Extends `chosen` (positions in `open`) from `start` to `size` sites. `bound_cents` and
    /// `upper` are the chosen sites' bounds summed.
    fn combinations(
        &mut self,
        size: usize,
        start: usize,
        chosen: &mut Vec<usize>,
        bound_cents: u64,
        upper: &mut Vec<i64>,
    ) {
        let slots = (size - chosen.len()) as u64;
        for position in start..self.open.len() {
            if *self.combinations_left == 0 {
                return;
            }
            let site_bound = self.open[position].bound_cents;
            // Sites come cheapest bound first: no later one does better.
            if self.best.as_ref().is_some_and(|(best_cents, ..)| bound_cents + site_bound * slots > *best_cents) {
                return;
            }
            if self.open[position].exact.as_ref().is_some_and(|exact| exact.is_err()) {
                continue;
            }
            upper.iter_mut().zip(&self.open[position].upper).for_each(|(upper, units)| *upper += units);
            chosen.push(position);
            if slots == 1 {
                *self.combinations_left -= 1;
                if upper.iter().zip(self.need).all(|(upper, need)| upper >= need) {
                    self.evaluate(chosen);
                }
            } else {
                self.combinations(size, position + 1, chosen, bound_cents + site_bound, upper);
            }
            chosen.pop();
            upper.iter_mut().zip(&self.open[position].upper).for_each(|(upper, units)| *upper -= units);
        }
    }

    /// Routes the combination's sites (once each) and keeps it if it covers the order and beats
    /// the best found: cheaper, then earlier, then lower GLNs.
    fn evaluate(&mut self, chosen: &[usize]) {
        let mut covered = vec![0i64; self.need.len()];
        let mut cost_cents = 0u64;
        let mut promised_by_unix_ms = i64::MIN;
        for &position in chosen {
            if self.open[position].exact.is_none() {
                let exact = self.context.route_site(&self.open[position], self.firsts);
                self.open[position].exact = Some(exact);
            }
            let Some(Ok((site, units))) = &self.open[position].exact else { return };
            covered.iter_mut().zip(units).for_each(|(covered, units)| *covered += units);
            cost_cents += site.route.cost_cents;
            promised_by_unix_ms = promised_by_unix_ms.max(site.route.promised_by_unix_ms);
        }
        if !covered.iter().zip(self.need).all(|(covered, need)| covered >= need) {
            return;
        }
        let mut views: Vec<usize> = chosen.iter().map(|position| self.open[*position].view).collect();
        views.sort_unstable();
        let candidate = (cost_cents, promised_by_unix_ms, views);
        if self.best.as_ref().is_none_or(|best| candidate < *best) {
            self.best = Some(candidate);
        }
    }
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
