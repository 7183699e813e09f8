//! GS1 keys (GS1 General Specifications §3, check digits §7.9).
//!
//! Each key type can only be built by parsing, so a value is always valid.

use std::fmt;

use crate::application_identifier::{self, ValueError};

/// Why a string is not a valid GS1 key. The messages name what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("must contain digits only, found {found:?} at position {position}")]
    NotNumeric { position: usize, found: char },
    #[error("must have {expected} digits, found {found}")]
    WrongLength { expected: &'static str, found: usize },
    #[error("check digit should be {expected}, found {found}")]
    CheckDigit { expected: u8, found: u8 },
    #[error("{0}")]
    Value(ValueError),
}

impl From<ValueError> for KeyError {
    fn from(error: ValueError) -> KeyError {
        match error {
            ValueError::CheckDigit { expected, found, .. } => KeyError::CheckDigit { expected, found },
            other => KeyError::Value(other),
        }
    }
}

/// The GS1 mod-10 check digit of `digits` (the key without its last digit).
///
/// Weights 3 and 1 alternate from the rightmost digit, which has weight 3.
pub fn check_digit(digits: &[u8]) -> u8 {
    let mut sum: u32 = 0;
    for (index_from_right, digit) in digits.iter().rev().enumerate() {
        debug_assert!(*digit <= 9);
        let weight = if index_from_right % 2 == 0 { 3 } else { 1 };
        sum += u32::from(*digit) * weight;
    }
    ((10 - sum % 10) % 10) as u8
}

fn parse_digits(text: &str, lengths: &[usize], expected: &'static str) -> Result<Vec<u8>, KeyError> {
    let mut digits = Vec::with_capacity(text.len());
    for (position, character) in text.chars().enumerate() {
        match character.to_digit(10) {
            Some(digit) if character.is_ascii_digit() => digits.push(digit as u8),
            _ => {
                return Err(KeyError::NotNumeric { position, found: character });
            }
        }
    }
    if !lengths.contains(&digits.len()) {
        return Err(KeyError::WrongLength { expected, found: digits.len() });
    }
    let (body, last) = digits.split_at(digits.len() - 1);
    let expected_digit = check_digit(body);
    if expected_digit != last[0] {
        return Err(KeyError::CheckDigit { expected: expected_digit, found: last[0] });
    }
    Ok(digits)
}

fn digits_to_string(digits: &[u8]) -> String {
    digits.iter().map(|digit| char::from(b'0' + digit)).collect()
}

/// Global Trade Item Number, normalised to 14 digits (GTIN-8/12/13 are left-padded with zeros).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gtin(String);

impl Gtin {
    /// Parses a GTIN-8, -12, -13 or -14 and normalises it to GTIN-14.
    pub fn parse(text: &str) -> Result<Gtin, KeyError> {
        let digits = parse_digits(text, &[8, 12, 13, 14], "8, 12, 13 or 14")?;
        let mut padded = vec![0u8; 14 - digits.len()];
        padded.extend_from_slice(&digits);
        debug_assert_eq!(padded.len(), 14);
        Ok(Gtin(digits_to_string(&padded)))
    }

    /// The 14-digit form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gtin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for Gtin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Gtin({})", self.0)
    }
}

/// Global Location Number: 13 digits.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gln(String);

impl Gln {
    pub fn parse(text: &str) -> Result<Gln, KeyError> {
        let digits = parse_digits(text, &[13], "13")?;
        Ok(Gln(digits_to_string(&digits)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gln {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for Gln {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Gln({})", self.0)
    }
}

macro_rules! key_formatting {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

/// Serial Shipping Container Code: 18 digits, AI (00).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sscc(String);

impl Sscc {
    pub fn parse(text: &str) -> Result<Sscc, KeyError> {
        let digits = parse_digits(text, &[18], "18")?;
        Ok(Sscc(digits_to_string(&digits)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

key_formatting!(Sscc);

/// Global Service Relation Number: 18 digits, AI (8018) for a recipient, (8017) for a provider.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gsrn(String);

impl Gsrn {
    pub fn parse(text: &str) -> Result<Gsrn, KeyError> {
        let digits = parse_digits(text, &[18], "18")?;
        Ok(Gsrn(digits_to_string(&digits)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

key_formatting!(Gsrn);

/// Global Returnable Asset Identifier as carried by AI (8003): a filler `0`, the 13-digit asset
/// type (GS1 Company Prefix, asset type, check digit) and an optional serial of up to 16
/// CSET 82 characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grai(String);

impl Grai {
    /// Parses the AI (8003) data field: `0`, 13 digits ending in a check digit, an optional serial.
    pub fn parse(text: &str) -> Result<Grai, KeyError> {
        validate_with_ai("8003", text)?;
        Ok(Grai(text.to_owned()))
    }

    /// The AI (8003) data field.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 13-digit asset type, with its check digit.
    pub fn asset_type(&self) -> &str {
        &self.0[1..14]
    }

    pub fn serial(&self) -> Option<&str> {
        (self.0.len() > 14).then(|| &self.0[14..])
    }
}

key_formatting!(Grai);

/// Global Individual Asset Identifier, AI (8004): a GS1 Company Prefix and an individual asset
/// reference, at most 30 CSET 82 characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Giai(String);

impl Giai {
    pub fn parse(text: &str) -> Result<Giai, KeyError> {
        validate_with_ai("8004", text)?;
        Ok(Giai(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

key_formatting!(Giai);

fn validate_with_ai(code: &str, text: &str) -> Result<(), KeyError> {
    let definition = application_identifier::lookup(code);
    debug_assert!(definition.is_some(), "AI {code} is in the table");
    match definition {
        Some(definition) => Ok(definition.validate(text)?),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_gtin(input: &str, expected: Result<&str, KeyError>) {
        assert_eq!(Gtin::parse(input).map(|gtin| gtin.as_str().to_owned()), expected.map(str::to_owned));
    }

    #[test]
    fn gtin_forms_normalise_to_fourteen_digits() {
        check_gtin("09506000134352", Ok("09506000134352"));
        check_gtin("9506000134352", Ok("09506000134352"));
        check_gtin("614141000036", Ok("00614141000036"));
        check_gtin("95010014", Ok("00000095010014"));
    }

    #[test]
    fn gtin_errors_name_what_was_expected() {
        check_gtin("09506000134353", Err(KeyError::CheckDigit { expected: 2, found: 3 }));
        check_gtin("0950600013435", Err(KeyError::CheckDigit { expected: 9, found: 5 }));
        check_gtin("123", Err(KeyError::WrongLength { expected: "8, 12, 13 or 14", found: 3 }));
        check_gtin("0950600013435a", Err(KeyError::NotNumeric { position: 13, found: 'a' }));
        check_gtin("٠٠٠٠٠٠٠٠", Err(KeyError::NotNumeric { position: 0, found: '٠' }));
    }

    #[test]
    fn gln_needs_thirteen_digits_and_its_check_digit() {
        assert_eq!(Gln::parse("9506000134352").unwrap().as_str(), "9506000134352");
        assert_eq!(Gln::parse("9506000134353"), Err(KeyError::CheckDigit { expected: 2, found: 3 }));
        assert!(matches!(Gln::parse("09506000134352"), Err(KeyError::WrongLength { .. })));
    }

    #[test]
    fn more_keys() {
        assert_eq!(Sscc::parse("106141411234567897").unwrap().as_str(), "106141411234567897");
        assert_eq!(Sscc::parse("106141411234567898"), Err(KeyError::CheckDigit { expected: 7, found: 8 }));
        assert_eq!(Gsrn::parse("106141411234567897").unwrap().to_string(), "106141411234567897");
        let grai = Grai::parse("00614141234561XYZ").unwrap();
        assert_eq!((grai.asset_type(), grai.serial()), ("0614141234561", Some("XYZ")));
        assert_eq!(Grai::parse("00614141234561").unwrap().serial(), None);
        assert_eq!(Grai::parse("00614141234565"), Err(KeyError::CheckDigit { expected: 1, found: 5 }));
        assert_eq!(
            Grai::parse("10614141234561").unwrap_err().to_string(),
            "zero check failed at position 0: must be 0"
        );
        assert_eq!(Giai::parse("0614141ABC-1").unwrap().as_str(), "0614141ABC-1");
        assert_eq!(
            Giai::parse("061A").unwrap_err().to_string(),
            "gcppos1 check failed at position 3: a GS1 Company Prefix has digits only"
        );
        assert_eq!(format!("{:?}", Sscc::parse("106141411234567897").unwrap()), "Sscc(106141411234567897)");
    }

    proptest! {
        #[test]
        fn any_body_with_its_check_digit_parses(body in proptest::collection::vec(0u8..10, 13)) {
            let mut digits = body.clone();
            digits.push(check_digit(&body));
            let text = digits_to_string(&digits);
            let gtin = Gtin::parse(&text).unwrap();
            prop_assert_eq!(gtin.as_str(), text.as_str());
        }

        #[test]
        fn one_changed_digit_is_always_detected(body in proptest::collection::vec(0u8..10, 13), position in 0usize..14, delta in 1u8..10) {
            let mut digits = body.clone();
            digits.push(check_digit(&body));
            digits[position] = (digits[position] + delta) % 10;
            prop_assert!(Gtin::parse(&digits_to_string(&digits)).is_err());
        }

        #[test]
        fn parse_never_panics(text in ".{0,20}") {
            let _ = Gtin::parse(&text);
            let _ = Gln::parse(&text);
        }
    }
}
