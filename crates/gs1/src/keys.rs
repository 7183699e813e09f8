//! GS1 keys with a mod-10 check digit (GS1 General Specifications §7.9.1).

use std::fmt;

/// Why a string is not a valid GS1 key. The messages name what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("must contain digits only, found {found:?} at position {position}")]
    NotNumeric { position: usize, found: char },
    #[error("must have {expected} digits, found {found}")]
    WrongLength { expected: &'static str, found: usize },
    #[error("check digit should be {expected}, found {found}")]
    CheckDigit { expected: u8, found: u8 },
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
            _ => return Err(KeyError::NotNumeric { position, found: character }),
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
