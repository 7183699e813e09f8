//! The journey of an item from its recorded steps: consecutive steps at one place are one stop,
//! a shipment between two places is a stop on the road, and the hours between are counted (the
//! cold ones apart). Pure: the server gives the steps and their places.

use jiff::Timestamp;

use crate::i18n::{Lang, step_key};
use crate::view::{EventView, StopView, TimeView};

/// A place a step happened at.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// Its identifier (a GLN's Digital Link or URN), to tell places apart.
    pub id: String,
    pub name: String,
    pub kind: String,
    /// IANA time zone, e.g. `Europe/Oslo`.
    pub time_zone: String,
    /// Whether the item is kept cold there (a cold depot or cooled zone, for a product that
    /// needs cold).
    pub cold: bool,
    /// (latitude, longitude) in degrees.
    pub coordinates: Option<(f64, f64)>,
}

/// Kinds of the network's own sites. A lot commissioned at one entered the network there (Keten
/// commissions a lot at its first receipt when no event names it yet): it was not harvested or
/// made there.
const NETWORK_SITE_KINDS: [&str; 3] = ["warehouse", "cold_depot", "pickup_point"];

/// The label key of a step at a place: [`step_key`], except that a commissioning at one of the
/// network's own sites is the lot entering the network (`step_entered_network`), not its harvest.
pub fn step_key_at(business_step: &str, place: Option<&Place>) -> String {
    let key = step_key(business_step);
    let at_network_site = place.is_some_and(|place| NETWORK_SITE_KINDS.contains(&place.kind.as_str()));
    if key == "step_commissioning" && at_network_site { "step_entered_network".to_owned() } else { key }
}

/// A recorded step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub time: Timestamp,
    /// The CBV business step.
    pub business_step: String,
    pub place: Option<Place>,
    pub log_index: Option<u64>,
    /// The fields shown, as [`EventView::fields`].
    pub fields: String,
}

/// The journey as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    pub stops: Vec<StopView>,
    /// Hours at cold places and on the road for a product that needs cold.
    pub cold_hours: f64,
    /// The places in order of the first visit, for the map.
    pub places: Vec<Place>,
}

/// Steps that end a stay: the road begins.
fn leaves(step: &str) -> bool {
    matches!(step_key(step).as_str(), "step_shipping" | "step_departing")
}

fn hours_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_second() - from.as_second()).max(0) as f64 / 3600.0
}

/// Builds the journey from the steps (any order; sorted by time here). `cold_on_the_road`:
/// whether time in transit counts as cold (the product travels refrigerated).
pub fn journey(mut steps: Vec<Step>, cold_on_the_road: bool, lang: Lang) -> Journey {
    steps.sort_by_key(|step| step.time);
    struct Open {
        place: Place,
        first: Timestamp,
        last: Timestamp,
        last_leaves: bool,
        events: Vec<EventView>,
    }
    let mut stops: Vec<StopView> = Vec::new();
    let mut places: Vec<Place> = Vec::new();
    let mut cold_hours = 0.0;
    let mut open: Option<Open> = None;
    let zone_of = |open: &Option<Open>| open.as_ref().map_or("UTC".to_owned(), |open| open.place.time_zone.clone());
    for step in steps {
        let zone = step.place.as_ref().map_or_else(|| zone_of(&open), |place| place.time_zone.clone());
        let event = EventView {
            step_key: step_key_at(&step.business_step, step.place.as_ref()),
            time: TimeView::new(step.time, &zone, lang),
            log_index: step.log_index,
            fields: step.fields,
        };
        let same_place = match (&open, &step.place) {
            (Some(current), Some(place)) => current.place.id == place.id,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if same_place && let Some(current) = open.as_mut() {
            if step.place.is_some() {
                current.last = step.time;
                current.last_leaves = leaves(&step.business_step);
            }
            current.events.push(event);
            continue;
        }
        let Some(place) = step.place else {
            // A step with no place before any place: shown as a stop of its own.
            stops.push(StopView {
                transit: false,
                place: String::new(),
                place_kind: String::new(),
                arrived: Some(event.time.clone()),
                left: None,
                hours: None,
                cold: false,
                events: vec![event],
            });
            continue;
        };
        if let Some(previous) = open.take() {
            let left = if previous.last_leaves { previous.last } else { step.time };
            let hours = hours_between(previous.first, left);
            if previous.place.cold {
                cold_hours += hours;
            }
            stops.push(StopView {
                transit: false,
                place: previous.place.name.clone(),
                place_kind: previous.place.kind.clone(),
                arrived: Some(TimeView::new(previous.first, &previous.place.time_zone, lang)),
                left: Some(TimeView::new(left, &previous.place.time_zone, lang)),
                hours: Some(lang.one_decimal(hours)),
                cold: previous.place.cold,
                events: previous.events,
            });
            if previous.last_leaves {
                let road = hours_between(left, step.time);
                if cold_on_the_road {
                    cold_hours += road;
                }
                let name = |place: &Place| {
                    if place.name.is_empty() {
                        lang.text("private_place").unwrap_or("?").to_owned()
                    } else {
                        place.name.clone()
                    }
                };
                stops.push(StopView {
                    transit: true,
                    place: format!("{} → {}", name(&previous.place), name(&place)),
                    place_kind: String::new(),
                    arrived: None,
                    left: None,
                    hours: Some(lang.one_decimal(road)),
                    cold: cold_on_the_road,
                    events: Vec::new(),
                });
            }
        }
        if !places.iter().any(|known| known.id == place.id) {
            places.push(place.clone());
        }
        open = Some(Open {
            first: step.time,
            last: step.time,
            last_leaves: leaves(&step.business_step),
            events: vec![event],
            place,
        });
    }
    if let Some(last) = open {
        stops.push(StopView {
            transit: false,
            place: last.place.name.clone(),
            place_kind: last.place.kind.clone(),
            arrived: Some(TimeView::new(last.first, &last.place.time_zone, lang)),
            left: None,
            hours: None,
            cold: last.place.cold,
            events: last.events,
        });
    }
    Journey { stops, cold_hours, places }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(id: &str, cold: bool) -> Place {
        Place {
            id: id.into(),
            name: id.to_uppercase(),
            kind: if id == "farm" { "farm" } else { "cold_depot" }.into(),
            time_zone: "Europe/Oslo".into(),
            cold,
            coordinates: Some((60.0, 10.0)),
        }
    }

    fn step(time: &str, business_step: &str, at: Option<Place>) -> Step {
        Step {
            time: time.parse().unwrap(),
            business_step: business_step.into(),
            place: at,
            log_index: None,
            fields: "{}".into(),
        }
    }

    #[test]
    fn a_lot_commissioned_at_a_network_site_entered_the_network_there() {
        let farm = place("farm", false);
        let depot = place("depot", true);
        assert_eq!(step_key_at("commissioning", Some(&farm)), "step_commissioning");
        assert_eq!(step_key_at("commissioning", Some(&depot)), "step_entered_network");
        assert_eq!(step_key_at("commissioning", None), "step_commissioning");
        assert_eq!(step_key_at("receiving", Some(&depot)), "step_receiving");
    }

    #[test]
    fn stays_roads_and_cold_hours() {
        let steps = vec![
            step("2026-11-23T07:00:00Z", "shipping", Some(place("farm", false))),
            step("2026-11-23T05:00:00Z", "commissioning", Some(place("farm", false))),
            step("2026-11-23T17:00:00Z", "receiving", Some(place("oslo", true))),
            step("2026-11-24T01:00:00Z", "shipping", Some(place("oslo", true))),
            step("2026-11-25T05:00:00Z", "receiving", Some(place("ams", true))),
            step("2026-11-25T13:00:00Z", "stocking", Some(place("shop", false))),
        ];
        let journey = journey(steps, true, Lang::En);
        let summary: Vec<(bool, &str, Option<&str>)> =
            journey.stops.iter().map(|stop| (stop.transit, stop.place.as_str(), stop.hours.as_deref())).collect();
        assert_eq!(
            summary,
            vec![
                (false, "FARM", Some("2.0")),
                (true, "FARM → OSLO", Some("10.0")),
                (false, "OSLO", Some("8.0")),
                (true, "OSLO → AMS", Some("28.0")),
                (false, "AMS", Some("8.0")),
                (false, "SHOP", None),
            ]
        );
        // Cold: both roads (10 + 28), Oslo (8) and Amsterdam until the next place (8).
        assert!((journey.cold_hours - 54.0).abs() < 1e-9, "{}", journey.cold_hours);
        assert_eq!(journey.places.len(), 4);
        assert_eq!(journey.stops[0].events[0].step_key, "step_commissioning");
        assert_eq!(journey.stops[0].arrived.as_ref().unwrap().local, "23 Nov 2026, 06:00 CET");
    }

    #[test]
    fn roads_are_not_cold_for_ambient_products_and_steps_without_place_join_the_stop() {
        let steps = vec![
            step("2026-11-23T05:00:00Z", "commissioning", Some(place("a", false))),
            step("2026-11-23T06:00:00Z", "shipping", Some(place("a", false))),
            step("2026-11-23T07:00:00Z", "sensor_reporting", None),
            step("2026-11-23T09:00:00Z", "receiving", Some(place("b", false))),
        ];
        let journey = journey(steps, false, Lang::Nl);
        assert_eq!(journey.stops.len(), 3, "a step with no place stays with the stop before it");
        assert_eq!(journey.stops[0].events.len(), 3);
        // (In Dutch: a decimal comma.)
        assert_eq!(journey.stops[0].hours.as_deref(), Some("1,0"), "left when the shipping step was taken");
        assert_eq!(journey.stops[1].hours.as_deref(), Some("3,0"));
        assert_eq!(journey.cold_hours, 0.0);
        assert!(journey.stops[2].arrived.as_ref().unwrap().local.contains("nov"));
    }
}
