//! The order lifecycle: which transitions are allowed and what each does to the reservation.
//!
//! ```text
//! accepted ─► allocated ─► picking ─► packed ─► shipped ─┬► out_for_delivery ─┬► delivered ─► returned
//!                 │           │          │               │                    ├► at_pickup_point
//!                 │           │          │               │                    └► returned
//!                 └───────────┴──────────┴► cancelled    └► at_pickup_point ─┬► delivered
//!                                                                           └► returned
//! ```
//! (and `shipped ─► delivered`, for a hand-over recorded without its departure). An order is
//! stored allocated (placing it allocates and reserves in one write); cancelling voids its
//! reservation; shipping posts it (a short pick ships the packed units and releases the rest);
//! nothing may ship before it is packed; a return puts back into stock the units it lists (a
//! delivery that failed for good, a parcel not collected, or one sent back). An order that lost
//! its stock (a recall with no other lot to take) goes back to `accepted`: allocating it again,
//! or cancelling it, are the ways on.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrderStatus {
    Accepted,
    Allocated,
    Picking,
    Packed,
    Shipped,
    OutForDelivery,
    AtPickupPoint,
    Delivered,
    Cancelled,
    Returned,
}

impl OrderStatus {
    pub const VALUES: [(&'static str, OrderStatus); 10] = [
        ("accepted", OrderStatus::Accepted),
        ("allocated", OrderStatus::Allocated),
        ("picking", OrderStatus::Picking),
        ("packed", OrderStatus::Packed),
        ("shipped", OrderStatus::Shipped),
        ("out_for_delivery", OrderStatus::OutForDelivery),
        ("at_pickup_point", OrderStatus::AtPickupPoint),
        ("delivered", OrderStatus::Delivered),
        ("cancelled", OrderStatus::Cancelled),
        ("returned", OrderStatus::Returned),
    ];

    pub fn name(self) -> &'static str {
        Self::VALUES.iter().find(|(_, status)| *status == self).map(|(name, _)| *name).unwrap_or("accepted")
    }

    pub fn parse(text: &str) -> Option<OrderStatus> {
        Self::VALUES.iter().find(|(name, _)| *name == text).map(|(_, status)| *status)
    }

    /// Whether the order still holds reserved stock.
    pub fn holds_reservation(self) -> bool {
        matches!(self, OrderStatus::Allocated | OrderStatus::Picking | OrderStatus::Packed)
    }

    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Cancelled | OrderStatus::Returned)
    }
}

/// What a transition does to the order's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockEffect {
    None,
    /// Release every reserved unit.
    VoidReservation,
    /// Ship the packed units, release the rest.
    PostReservation,
    /// Allocate and reserve again (an order that lost its stock).
    Allocate,
    /// Record the reserved units as picked: a `pick` movement per reserved line. No balance
    /// changes (the units stay reserved until they ship), but the journal shows the pick.
    Pick,
    /// Put the units the return lists back into stock, where they were picked.
    Restock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order that is {} cannot become {}", .from.name(), .to.name())]
pub struct TransitionError {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

/// Checks a transition and answers its stock effect.
pub fn transition(from: OrderStatus, to: OrderStatus) -> Result<StockEffect, TransitionError> {
    use OrderStatus::*;
    let effect = match (from, to) {
        (Accepted, Allocated) => StockEffect::Allocate,
        (Accepted, Cancelled) => StockEffect::None,
        (Allocated, Picking) => StockEffect::Pick,
        (Picking, Packed) => StockEffect::None,
        (Allocated | Picking | Packed, Cancelled) => StockEffect::VoidReservation,
        (Packed, Shipped) => StockEffect::PostReservation,
        (Shipped, OutForDelivery | AtPickupPoint | Delivered) => StockEffect::None,
        (OutForDelivery, Delivered | AtPickupPoint) | (AtPickupPoint, Delivered) => StockEffect::None,
        // Back from the lane (a recalled parcel called back), the road, the pickup point or the
        // consignee.
        (Shipped | OutForDelivery | AtPickupPoint | Delivered, Returned) => StockEffect::Restock,
        _ => return Err(TransitionError { from, to }),
    };
    Ok(effect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_ships_before_it_is_packed_and_final_states_stay_final() {
        use OrderStatus::*;
        assert_eq!(transition(Allocated, Shipped), Err(TransitionError { from: Allocated, to: Shipped }));
        assert_eq!(transition(Picking, Shipped), Err(TransitionError { from: Picking, to: Shipped }));
        assert_eq!(transition(Packed, Shipped), Ok(StockEffect::PostReservation));
        assert_eq!(transition(Allocated, Picking), Ok(StockEffect::Pick));
        assert_eq!(transition(Picking, Picking), Err(TransitionError { from: Picking, to: Picking }), "picked once");
        assert_eq!(transition(Picking, Cancelled), Ok(StockEffect::VoidReservation));
        assert!(transition(Shipped, Cancelled).is_err(), "a shipped order is returned, not cancelled");
        // A parcel comes back from the lane, the road, the pickup point or the consignee, never
        // from the warehouse it has not left.
        for from in [Shipped, OutForDelivery, AtPickupPoint, Delivered] {
            assert_eq!(transition(from, Returned), Ok(StockEffect::Restock), "{from:?}");
        }
        for from in [Accepted, Allocated, Picking, Packed] {
            assert!(transition(from, Returned).is_err(), "{from:?}");
        }
        for (_, status) in OrderStatus::VALUES {
            if status.is_final() {
                assert!(OrderStatus::VALUES.iter().all(|(_, to)| transition(status, *to).is_err()));
            }
            assert_eq!(OrderStatus::parse(status.name()), Some(status));
            // Cancelling voids exactly the reservations the statuses hold.
            let voids = transition(status, Cancelled) == Ok(StockEffect::VoidReservation);
            assert_eq!(status.holds_reservation(), voids, "{status:?}");
        }
    }
}
