//! Orders: the delivery promise ([`promise`]), allocation ([`allocate`]) and the lifecycle
//! ([`lifecycle`]). Pure: the store reserves what allocation chose, in the same write.

pub mod allocate;
pub mod lifecycle;
pub mod promise;

pub use allocate::{
    Allocation, AllocationError, Candidate, CandidateOutcome, Decision, LINES_MAX, Line, OrderRequest, Pick,
    ProductRule, SHIPMENTS_MAX, Shipment, Shortage, StockLot, allocate,
};
pub use lifecycle::{OrderStatus, StockEffect, TransitionError, transition};
pub use promise::{Destination, NetworkView, NoRoute, PromiseRequest, Route, routes};
