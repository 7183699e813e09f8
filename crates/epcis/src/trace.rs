//! Tracing: how the objects of events are linked, for the recall question "where did this come
//! from, and where did it go?".
//!
//! From an object, a trace follows three kinds of links, each in one direction only, so that a
//! lot's trace does not spill into the unrelated goods it shared a pallet with:
//! - *contained in*: an aggregation or association names the object as a child; its parent (a
//!   pallet, a crate, a reefer) carried it, and the parent's own containers did too.
//! - *made from*: a transformation lists the object as an output; its inputs are its origin
//!   (followed further back).
//! - *made into*: a transformation lists the object as an input; its outputs are where it went
//!   (followed further forward).
//!
//! Business transactions (orders, despatch advices) of the events are reported as nodes but not
//! followed.

use crate::model::{Event, EventType};

/// How the trace reached an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reach {
    /// An object the trace started from.
    Start,
    /// A container of a traced object.
    Container,
    /// An input a traced object was made from (backward).
    Origin,
    /// An output a traced object was made into (forward).
    Product,
}

impl Reach {
    pub fn name(self) -> &'static str {
        match self {
            Reach::Start => "start",
            Reach::Container => "container",
            Reach::Origin => "origin",
            Reach::Product => "product",
        }
    }
}

/// A link found in an event: `to` is reached from `from` as `reach`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Link {
    pub from: String,
    pub to: String,
    pub reach: Reach,
}

impl Link {
    /// The relation as an edge label (`from` relation `to`).
    pub fn relation(&self) -> &'static str {
        match self.reach {
            Reach::Container | Reach::Start => "contained_in",
            Reach::Origin => "made_from",
            Reach::Product => "made_into",
        }
    }
}

/// The objects the trace may follow from `object` through `event`, given how `object` was reached:
/// containers always; origins only going backward (from a start, an origin or a container of
/// one); products only going forward.
pub fn links_from(event: &Event, object: &str, reached_as: Reach) -> Vec<Link> {
    let mut links = Vec::new();
    let named = |list: &[crate::Identifier]| list.iter().any(|id| id.as_str() == object);
    let classes = |list: &[crate::QuantityElement]| list.iter().any(|element| element.epc_class.as_str() == object);
    let is_child = named(&event.child_epcs) || classes(&event.child_quantity_list);
    if is_child
        && matches!(event.event_type, Some(EventType::Aggregation | EventType::Association))
        && let Some(parent) = &event.parent_id
    {
        links.push(Link { from: object.to_owned(), to: parent.as_str().to_owned(), reach: Reach::Container });
    }
    if event.event_type == Some(EventType::Transformation) {
        let inputs = event
            .input_epc_list
            .iter()
            .map(|id| id.as_str())
            .chain(event.input_quantity_list.iter().map(|element| element.epc_class.as_str()));
        let outputs = event
            .output_epc_list
            .iter()
            .map(|id| id.as_str())
            .chain(event.output_quantity_list.iter().map(|element| element.epc_class.as_str()));
        let backward = matches!(reached_as, Reach::Start | Reach::Origin);
        let forward = matches!(reached_as, Reach::Start | Reach::Product);
        let is_output = named(&event.output_epc_list) || classes(&event.output_quantity_list);
        let is_input = named(&event.input_epc_list) || classes(&event.input_quantity_list);
        if backward && is_output {
            links.extend(inputs.map(|input| Link {
                from: object.to_owned(),
                to: input.to_owned(),
                reach: Reach::Origin,
            }));
        }
        if forward && is_input {
            links.extend(outputs.map(|output| Link {
                from: object.to_owned(),
                to: output.to_owned(),
                reach: Reach::Product,
            }));
        }
    }
    links.retain(|link| link.to != object);
    links
}

/// What the reach of an object found through a link is, given the reach of the object it was
/// found from: a container of an origin is still on the origin's side, and so on.
pub fn reach_through(from: Reach, link: Reach) -> Reach {
    match (from, link) {
        (_, Reach::Origin) => Reach::Origin,
        (_, Reach::Product) => Reach::Product,
        (Reach::Origin, Reach::Container) => Reach::Origin,
        (Reach::Product, Reach::Container) => Reach::Product,
        (_, _) => Reach::Container,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(body: &str) -> Event {
        let text = format!(
            r#"{{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],"eventTime":"2024-01-01T00:00:00Z","eventTimeZoneOffset":"+00:00",{body}}}"#
        );
        crate::parse_json_event(&text).expect("valid event")
    }

    const FISH: &str = "https://id.gs1.org/01/09506000134352/10/LOT1";
    const FILLET: &str = "https://id.gs1.org/01/09506000134369/10/F1";
    const PALLET: &str = "https://id.gs1.org/00/095060000000000015";

    #[test]
    fn links_follow_one_direction_each() {
        let packing = event(&format!(
            r#""type":"AggregationEvent","action":"ADD","parentID":"{PALLET}","childQuantityList":[{{"epcClass":"{FISH}","quantity":10}}]"#
        ));
        let filleting = event(&format!(
            r#""type":"TransformationEvent","inputQuantityList":[{{"epcClass":"{FISH}","quantity":10}}],"outputQuantityList":[{{"epcClass":"{FILLET}","quantity":6}}]"#
        ));
        let targets = |event: &Event, object: &str, reach: Reach| {
            links_from(event, object, reach).into_iter().map(|link| (link.to, link.reach)).collect::<Vec<_>>()
        };
        assert_eq!(targets(&packing, FISH, Reach::Start), [(PALLET.to_owned(), Reach::Container)]);
        assert!(targets(&packing, PALLET, Reach::Container).is_empty(), "never down to the pallet's other goods");
        assert_eq!(targets(&filleting, FISH, Reach::Start), [(FILLET.to_owned(), Reach::Product)]);
        assert_eq!(targets(&filleting, FILLET, Reach::Start), [(FISH.to_owned(), Reach::Origin)]);
        assert!(targets(&filleting, FISH, Reach::Origin).is_empty(), "an origin is not followed forward");
        assert!(targets(&filleting, FILLET, Reach::Product).is_empty(), "a product is not followed backward");
        assert_eq!(reach_through(Reach::Origin, Reach::Container), Reach::Origin);
        assert_eq!(reach_through(Reach::Start, Reach::Container), Reach::Container);
    }
}
