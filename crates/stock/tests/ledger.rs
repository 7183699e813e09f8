//! Property tests: random sequences of ledger operations keep the invariants, refused operations
//! change nothing, and reservations are all-or-nothing.

use proptest::prelude::*;
use stock::{Ledger, LotStatus, MovementKind, ReservationState};

#[derive(Debug, Clone)]
enum Operation {
    Receive(u8, i64),
    Count(u8, i64),
    Scrap(u8, i64),
    Transfer(u8, u8, i64),
    Status(u8, LotStatus),
    Reserve(u64, Vec<(u8, i64)>, Option<i64>),
    Post(u64, Vec<i64>),
    Void(u64),
    Restock(u64, Vec<i64>),
    Tick(i64),
}

fn operation() -> impl Strategy<Value = Operation> {
    let key = 0u8..4;
    let quantity = 0i64..30;
    let status = prop::sample::select(LotStatus::VALUES.iter().map(|(_, status)| *status).collect::<Vec<_>>());
    prop_oneof![
        3 => (key.clone(), quantity.clone()).prop_map(|(key, quantity)| Operation::Receive(key, quantity)),
        1 => (key.clone(), quantity.clone()).prop_map(|(key, counted)| Operation::Count(key, counted)),
        1 => (key.clone(), quantity.clone()).prop_map(|(key, quantity)| Operation::Scrap(key, quantity)),
        1 => (key.clone(), key.clone(), quantity.clone()).prop_map(|(from, to, quantity)| Operation::Transfer(from, to, quantity)),
        1 => (key.clone(), status).prop_map(|(key, status)| Operation::Status(key, status)),
        4 => (0u64..12, prop::collection::vec((key.clone(), quantity.clone()), 1..4), prop::option::of(1i64..50))
            .prop_map(|(id, lines, timeout)| Operation::Reserve(id, lines, timeout)),
        2 => (0u64..12, prop::collection::vec(quantity.clone(), 0..4)).prop_map(|(id, shipped)| Operation::Post(id, shipped)),
        1 => (0u64..12).prop_map(Operation::Void),
        1 => (0u64..12, prop::collection::vec(quantity.clone(), 0..4)).prop_map(|(id, units)| Operation::Restock(id, units)),
        1 => (1i64..40).prop_map(Operation::Tick),
    ]
}

fn fingerprint(ledger: &Ledger<u8>) -> Vec<(u8, i64, i64, LotStatus)> {
    ledger.balances().map(|(key, (balance, status))| (*key, balance.on_hand, balance.reserved, *status)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_operations_keep_the_invariants(operations in prop::collection::vec(operation(), 1..80)) {
        let mut ledger: Ledger<u8> = Ledger::default();
        let mut now = 0i64;
        for operation in operations {
            let before = fingerprint(&ledger);
            let known_before = match &operation { Operation::Reserve(id, ..) => ledger.reservation_state(*id, now).is_some(), _ => false };
            let journal_before = ledger.journal().len();
            let result = match &operation {
                Operation::Receive(key, quantity) => ledger.receive(key, *quantity, LotStatus::Available),
                Operation::Count(key, counted) => ledger.count(key, *counted),
                Operation::Scrap(key, quantity) => ledger.scrap(key, *quantity),
                Operation::Transfer(from, to, quantity) => ledger.transfer(from, to, *quantity),
                Operation::Status(key, status) => ledger.set_status(key, *status),
                Operation::Reserve(id, lines, timeout) => {
                    let lines: Vec<(u8, i64)> = lines.clone();
                    ledger.reserve(*id, &lines, timeout.map(|timeout| now + timeout), now)
                }
                Operation::Post(id, shipped) => ledger.post(*id, shipped, now),
                Operation::Void(id) => ledger.void(*id, now),
                Operation::Restock(id, units) => ledger.restock(*id, units),
                Operation::Tick(step) => { now += step; Ok(()) }
            };
            prop_assert!(ledger.check().is_ok(), "{:?} after {operation:?}", ledger.check());
            if result.is_err() && !matches!(operation, Operation::Reserve(..) | Operation::Post(..) | Operation::Void(..)) {
                // A refused operation stores nothing (reservation operations may first expire others).
                prop_assert_eq!(fingerprint(&ledger), before);
                prop_assert_eq!(ledger.journal().len(), journal_before);
            }
            if let (Err(_), Operation::Reserve(id, _, _)) = (&result, &operation) {
                // All or nothing: no reserve movement of a refused reservation.
                prop_assert!(ledger.journal()[journal_before..].iter().all(|movement| movement.kind == MovementKind::Release));
                if !known_before {
                    prop_assert_eq!(ledger.reservation_state(*id, now), None);
                }
            }
        }
        // A reservation's units come back at most as they shipped, line by line.
        let mut shipped: std::collections::BTreeMap<(u64, u8), i64> = Default::default();
        for movement in ledger.journal() {
            let Some(id) = movement.reservation else { continue };
            let units = shipped.entry((id, movement.key)).or_default();
            match movement.kind {
                MovementKind::Ship => *units += movement.quantity,
                MovementKind::Return => {
                    *units -= movement.quantity;
                    prop_assert!(*units >= 0, "reservation {id} took back more than it shipped");
                }
                _ => {}
            }
        }
        // Never oversold: what shipped from a balance never exceeds what came in.
        for (key, _) in ledger.balances() {
            let (mut into, mut out) = (0i64, 0i64);
            for movement in ledger.journal().iter().filter(|movement| movement.key == *key) {
                let delta = movement.kind.delta(movement.quantity).on_hand;
                if delta > 0 { into += delta } else { out -= delta }
            }
            prop_assert!(out <= into);
        }
    }
}

#[test]
fn a_reservation_that_does_not_fit_reserves_nothing() {
    let mut ledger: Ledger<u8> = Ledger::default();
    ledger.receive(&1, 10, LotStatus::Available).unwrap();
    ledger.receive(&2, 3, LotStatus::Available).unwrap();
    assert!(ledger.reserve(7, &[(1, 5), (2, 4)], None, 0).is_err());
    assert_eq!(ledger.available(&1), 10);
    assert_eq!(ledger.reservation_state(7, 0), None);
    ledger.reserve(7, &[(1, 5), (2, 3)], Some(100), 0).unwrap();
    assert_eq!((ledger.available(&1), ledger.available(&2)), (5, 0));
    // The timeout passes: the next operation releases the units, with no job involved.
    assert_eq!(ledger.reservation_state(7, 100), Some(ReservationState::Expired));
    ledger.reserve(8, &[(2, 3)], None, 100).unwrap();
    assert_eq!(ledger.available(&1), 10);
    assert!(ledger.restock(8, &[1]).is_err(), "nothing shipped yet");
    ledger.post(8, &[2], 101).unwrap();
    let (balance, _) = ledger.balance(&2).unwrap();
    assert_eq!((balance.on_hand, balance.reserved), (1, 0));
    // A return takes back at most what shipped, once.
    assert!(ledger.restock(8, &[3]).is_err());
    ledger.restock(8, &[2]).unwrap();
    assert_eq!(ledger.balance(&2).unwrap().0.on_hand, 3);
    assert!(ledger.restock(8, &[0]).is_err(), "returned already");
    ledger.post(8, &[0], 101).unwrap_err();
    let (balance, _) = ledger.balance(&2).unwrap();
    assert_eq!((balance.on_hand, balance.reserved), (3, 0));
    ledger.set_status(&1, LotStatus::Recalled).unwrap();
    assert_eq!(ledger.available(&1), 0);
    assert!(ledger.reserve(9, &[(1, 1)], None, 102).is_err());
    ledger.check().unwrap();
}
