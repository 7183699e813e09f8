//! An in-memory ledger: the reference model of the stock rules, whose property tests
//! (`tests/ledger.rs`) run random operations on it. The store keeps the same ledger in tables,
//! through the same arithmetic ([`crate::Balance::apply`]); the server's end-to-end test
//! `fulfilment_random_operations_keep_the_ledger` runs random operations through the API on both
//! backends against a model of the units kept beside.

use std::collections::BTreeMap;

use crate::{
    Balance, LedgerError, LotStatus, MovementKind, Reservation, ReservationError, ReservationState, check_quantity,
};

/// One movement of the ledger's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerMovement<K> {
    pub key: K,
    pub kind: MovementKind,
    /// Units (signed for an adjustment).
    pub quantity: i64,
    /// The reservation it belongs to, if any.
    pub reservation: Option<u64>,
}

#[derive(Debug, Clone)]
struct Held<K> {
    reservation: Reservation,
    lines: Vec<(K, i64)>,
    /// Units shipped per line, once posted; emptied by the return.
    shipped: Vec<i64>,
}

/// Balances keyed by `K` (location, zone, GTIN, lot in the store), their lot statuses, pending
/// reservations and the journal of movements.
#[derive(Debug, Clone)]
pub struct Ledger<K: Ord + Clone> {
    balances: BTreeMap<K, (Balance, LotStatus)>,
    reservations: BTreeMap<u64, Held<K>>,
    journal: Vec<LedgerMovement<K>>,
}

impl<K: Ord + Clone> Default for Ledger<K> {
    fn default() -> Self {
        Ledger { balances: BTreeMap::new(), reservations: BTreeMap::new(), journal: Vec::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerOperationError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Reservation(#[from] ReservationError),
    #[error("no such balance")]
    NoBalance,
    #[error("no such reservation")]
    NoReservation,
    #[error("the reservation id is taken")]
    Taken,
    #[error("the reservation's units came back already")]
    Returned,
}

impl<K: Ord + Clone> Ledger<K> {
    pub fn balance(&self, key: &K) -> Option<(Balance, LotStatus)> {
        self.balances.get(key).copied()
    }

    pub fn balances(&self) -> impl Iterator<Item = (&K, &(Balance, LotStatus))> {
        self.balances.iter()
    }

    pub fn journal(&self) -> &[LedgerMovement<K>] {
        &self.journal
    }

    pub fn reservation_state(&self, id: u64, now_unix_ms: i64) -> Option<ReservationState> {
        self.reservations.get(&id).map(|held| held.reservation.state_at(now_unix_ms))
    }

    /// Units that can be reserved now: none unless the lot is available.
    pub fn available(&self, key: &K) -> i64 {
        match self.balances.get(key) {
            Some((balance, status)) if status.allocatable() => balance.free(),
            _ => 0,
        }
    }

    fn push(&mut self, key: &K, kind: MovementKind, quantity: i64, reservation: Option<u64>) {
        self.journal.push(LedgerMovement { key: key.clone(), kind, quantity, reservation });
    }

    fn change(&mut self, key: &K, kind: MovementKind, quantity: i64) -> Result<(), LedgerOperationError> {
        let (balance, _) = self.balances.get_mut(key).ok_or(LedgerOperationError::NoBalance)?;
        *balance = balance.apply(kind.delta(quantity))?;
        Ok(())
    }

    pub fn receive(&mut self, key: &K, quantity: i64, status: LotStatus) -> Result<(), LedgerOperationError> {
        check_quantity(quantity)?;
        let entry = self.balances.entry(key.clone()).or_insert((Balance::default(), status));
        entry.0 = entry.0.apply(MovementKind::Receipt.delta(quantity))?;
        self.push(key, MovementKind::Receipt, quantity, None);
        Ok(())
    }

    /// A cycle count: sets on hand to `counted` with an adjustment (refused below reserved).
    pub fn count(&mut self, key: &K, counted: i64) -> Result<(), LedgerOperationError> {
        let (balance, _) = self.balances.get(key).ok_or(LedgerOperationError::NoBalance)?;
        let difference = counted - balance.on_hand;
        if difference != 0 {
            self.change(key, MovementKind::Adjust, difference)?;
            self.push(key, MovementKind::Adjust, difference, None);
        }
        Ok(())
    }

    pub fn scrap(&mut self, key: &K, quantity: i64) -> Result<(), LedgerOperationError> {
        check_quantity(quantity)?;
        self.change(key, MovementKind::Scrap, quantity)?;
        self.push(key, MovementKind::Scrap, quantity, None);
        Ok(())
    }

    pub fn transfer(&mut self, from: &K, to: &K, quantity: i64) -> Result<(), LedgerOperationError> {
        check_quantity(quantity)?;
        let (_, status) = self.balances.get(from).copied().ok_or(LedgerOperationError::NoBalance)?;
        let mut next = self.clone();
        next.change(from, MovementKind::TransferOut, quantity)?;
        let entry = next.balances.entry(to.clone()).or_insert((Balance::default(), status));
        entry.0 = entry.0.apply(MovementKind::TransferIn.delta(quantity))?;
        next.push(from, MovementKind::TransferOut, quantity, None);
        next.push(to, MovementKind::TransferIn, quantity, None);
        *self = next;
        Ok(())
    }

    pub fn set_status(&mut self, key: &K, status: LotStatus) -> Result<(), LedgerOperationError> {
        let (_, current) = self.balances.get_mut(key).ok_or(LedgerOperationError::NoBalance)?;
        *current = status;
        self.push(key, MovementKind::Status, 0, None);
        Ok(())
    }

    /// Reserves every line or none.
    pub fn reserve(
        &mut self,
        id: u64,
        lines: &[(K, i64)],
        expires_at_unix_ms: Option<i64>,
        now_unix_ms: i64,
    ) -> Result<(), LedgerOperationError> {
        self.expire_due(now_unix_ms);
        if self.reservations.contains_key(&id) {
            return Err(LedgerOperationError::Taken);
        }
        let mut next = self.clone();
        for (key, quantity) in lines {
            check_quantity(*quantity)?;
            let (balance, status) = next.balances.get(key).copied().ok_or(LedgerOperationError::NoBalance)?;
            if !status.allocatable() {
                return Err(LedgerError::NotAvailable(status).into());
            }
            if balance.free() < *quantity {
                return Err(LedgerError::Short { available: balance.free(), wanted: *quantity }.into());
            }
            next.change(key, MovementKind::Reserve, *quantity)?;
            next.push(key, MovementKind::Reserve, *quantity, Some(id));
        }
        next.reservations.insert(
            id,
            Held { reservation: Reservation::pending(expires_at_unix_ms), lines: lines.to_vec(), shipped: Vec::new() },
        );
        *self = next;
        Ok(())
    }

    /// Ships `shipped[i]` units of line `i` and releases the rest.
    pub fn post(&mut self, id: u64, shipped: &[i64], now_unix_ms: i64) -> Result<(), LedgerOperationError> {
        self.expire_due(now_unix_ms);
        let held = self.reservations.get(&id).cloned().ok_or(LedgerOperationError::NoReservation)?;
        let mut reservation = held.reservation;
        let reserved: Vec<i64> = held.lines.iter().map(|(_, quantity)| *quantity).collect();
        let released = reservation.post(&reserved, shipped, now_unix_ms)?;
        let mut next = self.clone();
        for (((key, _), &shipped), released) in held.lines.iter().zip(shipped).zip(released) {
            if shipped > 0 {
                next.change(key, MovementKind::Ship, shipped)?;
                next.push(key, MovementKind::Ship, shipped, Some(id));
            }
            if released > 0 {
                next.change(key, MovementKind::Release, released)?;
                next.push(key, MovementKind::Release, released, Some(id));
            }
        }
        if let Some(stored) = next.reservations.get_mut(&id) {
            stored.reservation = reservation;
            stored.shipped = shipped.to_vec();
        }
        *self = next;
        Ok(())
    }

    /// Takes back into stock `restocked[i]` units of line `i` of a shipped reservation (at most
    /// what the line shipped), into the balance it was picked from; once per reservation.
    pub fn restock(&mut self, id: u64, restocked: &[i64]) -> Result<(), LedgerOperationError> {
        let held = self.reservations.get(&id).cloned().ok_or(LedgerOperationError::NoReservation)?;
        if held.reservation.state == ReservationState::Posted && held.shipped.is_empty() {
            return Err(LedgerOperationError::Returned);
        }
        crate::check_restock(held.reservation.state, &held.shipped, restocked)?;
        let mut next = self.clone();
        for ((key, _), &units) in held.lines.iter().zip(restocked) {
            if units > 0 {
                next.change(key, MovementKind::Return, units)?;
                next.push(key, MovementKind::Return, units, Some(id));
            }
        }
        if let Some(stored) = next.reservations.get_mut(&id) {
            stored.shipped.clear();
        }
        *self = next;
        Ok(())
    }

    pub fn void(&mut self, id: u64, now_unix_ms: i64) -> Result<(), LedgerOperationError> {
        self.expire_due(now_unix_ms);
        let held = self.reservations.get(&id).cloned().ok_or(LedgerOperationError::NoReservation)?;
        let mut reservation = held.reservation;
        reservation.void(now_unix_ms)?;
        self.release_lines(id, &held.lines)?;
        if let Some(stored) = self.reservations.get_mut(&id) {
            stored.reservation = reservation;
        }
        Ok(())
    }

    fn release_lines(&mut self, id: u64, lines: &[(K, i64)]) -> Result<(), LedgerOperationError> {
        for (key, quantity) in lines {
            self.change(key, MovementKind::Release, *quantity)?;
            self.push(key, MovementKind::Release, *quantity, Some(id));
        }
        Ok(())
    }

    /// Releases the units of every pending reservation past its timeout.
    pub fn expire_due(&mut self, now_unix_ms: i64) {
        let due: Vec<u64> = self
            .reservations
            .iter()
            .filter(|(_, held)| held.reservation.state_at(now_unix_ms) == ReservationState::Expired)
            .filter(|(_, held)| held.reservation.state == ReservationState::Pending)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(held) = self.reservations.get_mut(&id) else { continue };
            held.reservation.expire(now_unix_ms);
            let lines = held.lines.clone();
            // Releasing units this reservation holds cannot fail the invariants.
            let released = self.release_lines(id, &lines);
            debug_assert!(released.is_ok(), "{released:?}");
        }
    }

    /// Checks the invariants of every balance against the journal and the reservations; answers
    /// the first broken one.
    pub fn check(&self) -> Result<(), String> {
        let mut replayed: BTreeMap<&K, Balance> = BTreeMap::new();
        for movement in &self.journal {
            let balance = replayed.entry(&movement.key).or_default();
            let delta = movement.kind.delta(movement.quantity);
            balance.on_hand += delta.on_hand;
            balance.reserved += delta.reserved;
        }
        let mut pending: BTreeMap<&K, i64> = BTreeMap::new();
        for held in self.reservations.values() {
            if held.reservation.state == ReservationState::Pending {
                for (key, quantity) in &held.lines {
                    *pending.entry(key).or_default() += quantity;
                }
            }
        }
        for (index, (key, (balance, _))) in self.balances.iter().enumerate() {
            balance.check().map_err(|error| format!("balance #{index}: {error}"))?;
            if replayed.get(key).copied().unwrap_or_default() != *balance {
                return Err(format!("balance #{index} is not the sum of its movements"));
            }
            if pending.get(key).copied().unwrap_or(0) != balance.reserved {
                return Err(format!("balance #{index}: reserved is not the sum of its pending reservations"));
            }
        }
        Ok(())
    }
}
