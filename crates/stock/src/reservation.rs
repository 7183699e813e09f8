//! Two-phase reservations: a reservation is created pending (its units counted as reserved) and
//! ends exactly once: posted (the units shipped; a short pick posts less and releases the rest),
//! voided (cancelled: every unit released) or expired (its timeout passed while pending).
//!
//! Expiry needs no job for correctness: a pending reservation whose timeout has passed *is*
//! expired ([`Reservation::state_at`]), whoever looks; the store releases its units the next time a
//! write touches stock, and reads subtract them meanwhile.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReservationState {
    Pending,
    Posted,
    Voided,
    Expired,
}

impl ReservationState {
    pub const VALUES: [(&'static str, ReservationState); 4] = [
        ("pending", ReservationState::Pending),
        ("posted", ReservationState::Posted),
        ("voided", ReservationState::Voided),
        ("expired", ReservationState::Expired),
    ];

    pub fn name(self) -> &'static str {
        Self::VALUES.iter().find(|(_, state)| *state == self).map(|(name, _)| *name).unwrap_or("pending")
    }

    pub fn parse(text: &str) -> Option<ReservationState> {
        Self::VALUES.iter().find(|(name, _)| *name == text).map(|(_, state)| *state)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
/// Said to API callers, whose units are listed per pick of the allocation (a reservation's line).
pub enum ReservationError {
    #[error("the reservation is already {}", .0.name())]
    Final(ReservationState),
    #[error("pick {line}: {shipped} shipped, but only {reserved} reserved")]
    OverShipped { line: usize, shipped: i64, reserved: i64 },
    #[error("{found} quantities for {lines} picks")]
    LineCount { lines: usize, found: usize },
    #[error("pick {line}: {restocked} back in stock, but only {shipped} shipped")]
    OverRestocked { line: usize, restocked: i64, shipped: i64 },
    #[error("the reservation is {}: only shipped units come back", .0.name())]
    NotShipped(ReservationState),
}

/// Checks a return: for each line of a posted reservation, the units back in stock (`restocked`)
/// are at most the units that line shipped.
pub fn check_restock(state: ReservationState, shipped: &[i64], restocked: &[i64]) -> Result<(), ReservationError> {
    if state != ReservationState::Posted {
        return Err(ReservationError::NotShipped(state));
    }
    if restocked.len() != shipped.len() {
        return Err(ReservationError::LineCount { lines: shipped.len(), found: restocked.len() });
    }
    for (line, (&restocked, &shipped)) in restocked.iter().zip(shipped).enumerate() {
        if !(0..=shipped).contains(&restocked) {
            return Err(ReservationError::OverRestocked { line, restocked, shipped });
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub state: ReservationState,
    /// A pending reservation expires at this time unless posted or voided first.
    pub expires_at_unix_ms: Option<i64>,
}

impl Reservation {
    pub fn pending(expires_at_unix_ms: Option<i64>) -> Reservation {
        Reservation { state: ReservationState::Pending, expires_at_unix_ms }
    }

    /// The state as of `now`: a pending reservation past its timeout is expired.
    pub fn state_at(&self, now_unix_ms: i64) -> ReservationState {
        match (self.state, self.expires_at_unix_ms) {
            (ReservationState::Pending, Some(expires)) if now_unix_ms >= expires => ReservationState::Expired,
            (state, _) => state,
        }
    }

    fn require_pending(&self, now_unix_ms: i64) -> Result<(), ReservationError> {
        match self.state_at(now_unix_ms) {
            ReservationState::Pending => Ok(()),
            other => Err(ReservationError::Final(other)),
        }
    }

    /// Posts the reservation: for each line, the units shipped (at most those reserved); answers
    /// the units to release per line (the rest of a short pick).
    pub fn post(&mut self, reserved: &[i64], shipped: &[i64], now_unix_ms: i64) -> Result<Vec<i64>, ReservationError> {
        self.require_pending(now_unix_ms)?;
        if reserved.len() != shipped.len() {
            return Err(ReservationError::LineCount { lines: reserved.len(), found: shipped.len() });
        }
        let mut released = Vec::with_capacity(reserved.len());
        for (line, (&reserved, &shipped)) in reserved.iter().zip(shipped).enumerate() {
            if !(0..=reserved).contains(&shipped) {
                return Err(ReservationError::OverShipped { line, shipped, reserved });
            }
            released.push(reserved - shipped);
        }
        self.state = ReservationState::Posted;
        Ok(released)
    }

    /// Voids a pending reservation: all its units are released.
    pub fn void(&mut self, now_unix_ms: i64) -> Result<(), ReservationError> {
        self.require_pending(now_unix_ms)?;
        self.state = ReservationState::Voided;
        Ok(())
    }

    /// Marks a reservation past its timeout as expired; answers whether it changed (its units are
    /// then to be released).
    pub fn expire(&mut self, now_unix_ms: i64) -> bool {
        if self.state == ReservationState::Pending && self.state_at(now_unix_ms) == ReservationState::Expired {
            self.state = ReservationState::Expired;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_ends_once() {
        let mut reservation = Reservation::pending(Some(1_000));
        assert_eq!(reservation.state_at(999), ReservationState::Pending);
        assert_eq!(reservation.state_at(1_000), ReservationState::Expired);
        assert_eq!(reservation.post(&[5, 3], &[5, 1], 500), Ok(vec![0, 2]));
        assert_eq!(reservation.void(600), Err(ReservationError::Final(ReservationState::Posted)));
        assert!(!reservation.expire(2_000));

        let mut late = Reservation::pending(Some(1_000));
        assert_eq!(late.post(&[5], &[5], 1_000), Err(ReservationError::Final(ReservationState::Expired)));
        assert!(late.expire(1_000));
        assert_eq!(late.void(2_000), Err(ReservationError::Final(ReservationState::Expired)));

        let mut open = Reservation::pending(None);
        assert_eq!(open.state_at(i64::MAX), ReservationState::Pending);
        assert_eq!(open.post(&[5], &[6], 0), Err(ReservationError::OverShipped { line: 0, shipped: 6, reserved: 5 }));
        assert_eq!(open.post(&[5], &[], 0), Err(ReservationError::LineCount { lines: 1, found: 0 }));
        assert_eq!(open.state, ReservationState::Pending, "a refused post changes nothing");
        assert_eq!(open.void(0), Ok(()));
    }
}
