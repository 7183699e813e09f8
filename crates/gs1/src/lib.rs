//! GS1 identifiers.
//!
//! Architecture invariant: this crate does no IO and knows no wire format. A value of a key type
//! ([`Gtin`], [`Gln`]) is always valid: it can only be built by parsing, which checks length,
//! characters and the GS1 mod-10 check digit.

mod keys;

pub use keys::{Gln, Gtin, KeyError, check_digit};
