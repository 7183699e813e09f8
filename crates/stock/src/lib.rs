//! The stock ledger: balances by location, zone, GTIN and lot, changed only by append-only
//! movements, and two-phase reservations (pending → posted or voided, or expired by its timeout).
//!
//! This crate is the arithmetic and the state machines; `store` keeps the rows and applies the
//! same rules where the write happens (and the database's CHECK constraints repeat them).
//!
//! Invariants of every balance, after every movement:
//! - `on_hand ≥ 0`;
//! - `0 ≤ reserved ≤ on_hand`;
//! - `on_hand` is the sum of the on-hand deltas of the balance's movements, `reserved` the sum of
//!   their reserved deltas (the balance is a cache of its movements, never edited otherwise).
//!
//! Quantities are integers (units of the GTIN). A movement moves at most [`QUANTITY_MAX`] units.

mod ledger;
mod reservation;

pub use ledger::{Ledger, LedgerMovement, LedgerOperationError};
pub use reservation::{Reservation, ReservationError, ReservationState, check_restock};

/// The most units one movement or one order line moves.
pub const QUANTITY_MAX: i64 = 1_000_000_000;
/// The longest lot (batch) number: GS1 AI (10) holds up to 20 characters.
pub const LOT_LENGTH_MAX: usize = 20;

/// Whether the units of a lot may be promised to orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LotStatus {
    Available,
    /// Received but not yet released by quality control.
    Quarantine,
    /// Blocked by an operator or by a breached cold chain until released.
    Hold,
    Recalled,
    Expired,
}

impl LotStatus {
    pub const VALUES: [(&'static str, LotStatus); 5] = [
        ("available", LotStatus::Available),
        ("quarantine", LotStatus::Quarantine),
        ("hold", LotStatus::Hold),
        ("recalled", LotStatus::Recalled),
        ("expired", LotStatus::Expired),
    ];

    pub fn name(self) -> &'static str {
        Self::VALUES.iter().find(|(_, status)| *status == self).map(|(name, _)| *name).unwrap_or("available")
    }

    pub fn parse(text: &str) -> Option<LotStatus> {
        Self::VALUES.iter().find(|(name, _)| *name == text).map(|(_, status)| *status)
    }

    /// Only available stock can be reserved.
    pub fn allocatable(self) -> bool {
        self == LotStatus::Available
    }
}

/// What one balance holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    pub on_hand: i64,
    pub reserved: i64,
}

/// The change a movement makes to a balance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    pub on_hand: i64,
    pub reserved: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("on hand would go negative ({0})")]
    NegativeOnHand(i64),
    #[error("reserved would go negative ({0})")]
    NegativeReserved(i64),
    #[error("reserved ({reserved}) would exceed on hand ({on_hand})")]
    ReservedAboveOnHand { on_hand: i64, reserved: i64 },
    #[error("a quantity must be 1..={QUANTITY_MAX}, found {0}")]
    Quantity(i64),
    #[error("the lot is {}, not available", .0.name())]
    NotAvailable(LotStatus),
    #[error("only {available} available, {wanted} wanted")]
    Short { available: i64, wanted: i64 },
}

impl Balance {
    /// Units that can still be reserved (whatever the lot's status).
    pub fn free(self) -> i64 {
        self.on_hand - self.reserved
    }

    /// The balance after `delta`, or why the ledger refuses it.
    pub fn apply(self, delta: Delta) -> Result<Balance, LedgerError> {
        let next = Balance {
            on_hand: self.on_hand.checked_add(delta.on_hand).ok_or(LedgerError::Quantity(delta.on_hand))?,
            reserved: self.reserved.checked_add(delta.reserved).ok_or(LedgerError::Quantity(delta.reserved))?,
        };
        next.check()?;
        Ok(next)
    }

    pub fn check(self) -> Result<(), LedgerError> {
        if self.on_hand < 0 {
            return Err(LedgerError::NegativeOnHand(self.on_hand));
        }
        if self.reserved < 0 {
            return Err(LedgerError::NegativeReserved(self.reserved));
        }
        if self.reserved > self.on_hand {
            return Err(LedgerError::ReservedAboveOnHand { on_hand: self.on_hand, reserved: self.reserved });
        }
        Ok(())
    }
}

/// Checks a quantity of one movement or order line.
pub fn check_quantity(quantity: i64) -> Result<i64, LedgerError> {
    if (1..=QUANTITY_MAX).contains(&quantity) { Ok(quantity) } else { Err(LedgerError::Quantity(quantity)) }
}

/// The kinds of movement. Each has a fixed effect on the balance (see [`MovementKind::delta`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MovementKind {
    /// Goods received into the zone.
    Receipt,
    /// Units promised to a pending reservation.
    Reserve,
    /// A pending reservation's units given back (void, expiry, or the rest of a short pick).
    Release,
    /// Units picked for a reservation: recorded, the balance is unchanged until they ship.
    Pick,
    /// A posted reservation: the reserved units leave the building.
    Ship,
    /// A correction (cycle count) with a reason; the quantity is signed.
    Adjust,
    TransferOut,
    TransferIn,
    /// Goods coming back from a customer.
    Return,
    /// Goods destroyed (damaged, expired, recalled).
    Scrap,
    /// The lot's status changed (no units move).
    Status,
}

impl MovementKind {
    pub const VALUES: [(&'static str, MovementKind); 11] = [
        ("receipt", MovementKind::Receipt),
        ("reserve", MovementKind::Reserve),
        ("release", MovementKind::Release),
        ("pick", MovementKind::Pick),
        ("ship", MovementKind::Ship),
        ("adjust", MovementKind::Adjust),
        ("transfer_out", MovementKind::TransferOut),
        ("transfer_in", MovementKind::TransferIn),
        ("return", MovementKind::Return),
        ("scrap", MovementKind::Scrap),
        ("status", MovementKind::Status),
    ];

    pub fn name(self) -> &'static str {
        Self::VALUES.iter().find(|(_, kind)| *kind == self).map(|(name, _)| *name).unwrap_or("adjust")
    }

    pub fn parse(text: &str) -> Option<MovementKind> {
        Self::VALUES.iter().find(|(name, _)| *name == text).map(|(_, kind)| *kind)
    }

    /// The change a movement of `quantity` units makes. `quantity` is positive, except for an
    /// adjustment, where its sign is the direction.
    pub fn delta(self, quantity: i64) -> Delta {
        let (on_hand, reserved) = match self {
            MovementKind::Receipt | MovementKind::TransferIn | MovementKind::Return => (quantity, 0),
            MovementKind::Reserve => (0, quantity),
            MovementKind::Release => (0, -quantity),
            MovementKind::Pick | MovementKind::Status => (0, 0),
            MovementKind::Ship => (-quantity, -quantity),
            MovementKind::Adjust => (quantity, 0),
            MovementKind::TransferOut | MovementKind::Scrap => (-quantity, 0),
        };
        Delta { on_hand, reserved }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipping_takes_units_from_on_hand_and_reserved_together() {
        let balance = Balance { on_hand: 10, reserved: 4 };
        assert_eq!(balance.apply(MovementKind::Ship.delta(3)), Ok(Balance { on_hand: 7, reserved: 1 }));
        assert_eq!(
            balance.apply(MovementKind::Reserve.delta(7)),
            Err(LedgerError::ReservedAboveOnHand { on_hand: 10, reserved: 11 })
        );
        assert_eq!(balance.apply(MovementKind::Scrap.delta(11)), Err(LedgerError::NegativeOnHand(-1)));
        assert_eq!(
            balance.apply(MovementKind::Scrap.delta(7)),
            Err(LedgerError::ReservedAboveOnHand { on_hand: 3, reserved: 4 })
        );
        assert_eq!(balance.apply(MovementKind::Release.delta(5)), Err(LedgerError::NegativeReserved(-1)));
        assert_eq!(balance.apply(MovementKind::Adjust.delta(-2)), Ok(Balance { on_hand: 8, reserved: 4 }));
        assert_eq!(balance.apply(MovementKind::Pick.delta(4)), Ok(balance));
    }

    #[test]
    fn names_round_trip() {
        for (name, kind) in MovementKind::VALUES {
            assert_eq!(MovementKind::parse(name), Some(kind));
            assert_eq!(kind.name(), name);
        }
        for (name, status) in LotStatus::VALUES {
            assert_eq!(LotStatus::parse(name), Some(status));
            assert_eq!(status.name(), name);
        }
        assert!(LotStatus::Available.allocatable() && !LotStatus::Hold.allocatable());
        assert_eq!(check_quantity(0), Err(LedgerError::Quantity(0)));
        assert_eq!(check_quantity(QUANTITY_MAX + 1), Err(LedgerError::Quantity(QUANTITY_MAX + 1)));
    }

    #[test]
    fn overflow_is_refused_not_wrapped() {
        let balance = Balance { on_hand: i64::MAX, reserved: 0 };
        assert!(balance.apply(MovementKind::Receipt.delta(1)).is_err());
    }
}
