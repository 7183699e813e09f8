//! GS1 identifiers and the syntaxes that carry them.
//!
//! - [`keys`]: GTIN, GLN, SSCC, GRAI, GIAI, GSRN with their check digits.
//! - [`application_identifier`]: the table of every GS1 Application Identifier (format, linters,
//!   associations, Digital Link roles), generated from the GS1 Barcode Syntax Dictionary.
//! - [`element_string`]: bracketed and unbracketed element strings; [`scan`]: scanner output
//!   with symbology identifiers.
//! - [`digital_link`]: GS1 Digital Link URIs, canonical, resolver-based and CBV-constrained forms.
//! - [`epc`]: EPC pure identity URNs.
//!
//! Architecture invariant: this crate does no IO and knows no wire format. Every value of a key
//! type, [`ElementString`], [`DigitalLink`] and [`EpcUrn`] is valid: it can only be built by
//! parsing or by a checked constructor. "Today" is always a parameter, never read from a clock.

mod ai_table;
pub mod application_identifier;
pub mod date;
pub mod digital_link;
pub mod element_string;
pub mod epc;
mod keys;
mod linters;
mod percent_encoding;
#[cfg(test)]
mod properties;
pub mod scan;

pub use application_identifier::{ApplicationIdentifierDefinition, ValueError};
pub use date::CalendarDate;
pub use digital_link::{DigitalLink, DigitalLinkError};
pub use element_string::{Decimal, Element, ElementString, ElementStringError};
pub use epc::{EpcError, EpcUrn};
pub use keys::{Giai, Gln, Grai, Gsrn, Gtin, KeyError, Sscc, check_digit};
pub use scan::{ScanData, ScanError, ScannedForm, Symbology, read_any};
