//! GS1 element strings: AI + value pairs, in bracketed HRI form `(01)09506000134352(10)ABC` and
//! unbracketed form with FNC1 separators (ASCII 29, "GS") after variable-length values.
//!
//! An [`ElementString`] is always valid: every value fits its AI (characters, lengths, check
//! digits, dates and other linters), no AI appears twice with different values, and every
//! `req=` / `ex=` association of the GS1 Barcode Syntax Dictionary holds.

use std::fmt;

use crate::application_identifier::{self, ApplicationIdentifierDefinition, ValueError, matches_pattern};
use crate::date::{self, CalendarDate};
use crate::keys::Gtin;

/// The FNC1 separator in unbracketed data and scanner output: ASCII 29, group separator.
pub const GROUP_SEPARATOR: char = '\u{1d}';

/// The longest input any parser in this crate accepts, in bytes (a QR Code holds at most 7,089
/// digits; a Digital Link URI is shorter).
pub const INPUT_LENGTH_MAXIMUM: usize = 8192;

/// The most elements one element string may hold.
pub const ELEMENT_COUNT_MAXIMUM: usize = 128;

/// Why an element string is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElementStringError {
    #[error("element string is empty")]
    Empty,
    #[error("input has {found} bytes, more than the limit of {maximum}")]
    TooLong { maximum: usize, found: usize },
    #[error("more than {maximum} elements")]
    TooManyElements { maximum: usize },
    #[error("character {found:?} at position {position} cannot appear in GS1 data")]
    InvalidCharacter { position: usize, found: char },
    #[error("expected '(' at position {position}")]
    ExpectedOpeningBracket { position: usize },
    #[error("the AI starting at position {position} has no closing ')'")]
    UnclosedBracket { position: usize },
    #[error("unknown application identifier {found:?} at position {position}")]
    UnknownApplicationIdentifier { position: usize, found: String },
    #[error("unexpected FNC1 separator at position {position}")]
    UnexpectedSeparator { position: usize },
    #[error("({code}) has no value")]
    MissingValue { code: &'static str },
    #[error("({code}) needs {expected} characters, only {found} remain")]
    Truncated { code: &'static str, expected: usize, found: usize },
    #[error("({code}) {error}")]
    InvalidValue { code: &'static str, error: ValueError },
    #[error("({code}) appears twice with different values")]
    ConflictingDuplicate { code: &'static str },
    #[error("({code}) requires {needs}")]
    MissingRequired { code: &'static str, needs: String },
    #[error("({code}) must not appear together with ({other})")]
    Excluded { code: &'static str, other: &'static str },
}

/// A decimal number held exactly: `coefficient × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    coefficient: u64,
    scale: u8,
}

impl Decimal {
    pub fn new(coefficient: u64, scale: u8) -> Decimal {
        Decimal { coefficient, scale }
    }

    /// The integer whose last `scale` digits are decimals.
    pub fn coefficient(self) -> u64 {
        self.coefficient
    }

    /// The number of decimals.
    pub fn scale(self) -> u8 {
        self.scale
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = format!("{:0width$}", self.coefficient, width = usize::from(self.scale) + 1);
        let (whole, fraction) = digits.split_at(digits.len() - usize::from(self.scale));
        match fraction.is_empty() {
            true => formatter.write_str(whole),
            false => write!(formatter, "{whole}.{fraction}"),
        }
    }
}

/// One AI with its value. The value always fits the AI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    definition: &'static ApplicationIdentifierDefinition,
    value: String,
}

impl Element {
    /// The element `(code)value`, if `code` is an AI and `value` fits it.
    pub fn new(code: &str, value: &str) -> Result<Element, ElementStringError> {
        let definition = application_identifier::lookup(code)
            .ok_or_else(|| ElementStringError::UnknownApplicationIdentifier { position: 0, found: code.to_owned() })?;
        Element::with_definition(definition, value)
    }

    pub(crate) fn with_definition(
        definition: &'static ApplicationIdentifierDefinition,
        value: &str,
    ) -> Result<Element, ElementStringError> {
        if value.is_empty() {
            return Err(ElementStringError::MissingValue { code: definition.code });
        }
        definition
            .validate(value)
            .map_err(|error| ElementStringError::InvalidValue { code: definition.code, error })?;
        Ok(Element { definition, value: value.to_owned() })
    }

    pub fn code(&self) -> &'static str {
        self.definition.code
    }

    pub fn definition(&self) -> &'static ApplicationIdentifierDefinition {
        self.definition
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// The date at the start of the value, for AIs whose first component is a `YYMMDD` date
    /// (11, 13, 15, 16, 17, 7006, ...): the century comes from the GS1 century rule relative to
    /// `today`, and day 00 means the last day of the month.
    pub fn date(&self, today: CalendarDate) -> Option<CalendarDate> {
        self.definition.starts_with_date()?;
        date::parse_yymmdd(&self.value[..6], today).ok()
    }

    /// The value of a variable-measure or amount AI as an exact decimal: 31nn-36nn (the fourth
    /// digit gives the decimals), 390n, 392n, 394n, 395n (n decimals), 391n and 393n (after the
    /// ISO 4217 currency code).
    pub fn decimal(&self) -> Option<Decimal> {
        let code = self.code().as_bytes();
        if code.len() != 4 {
            return None;
        }
        let scale = code[3] - b'0';
        let digits = match (code[0], code[1], code[2]) {
            (b'3', b'1'..=b'6', _) => &self.value[..],
            (b'3', b'9', b'0' | b'2' | b'4' | b'5') => &self.value[..],
            (b'3', b'9', b'1' | b'3') => &self.value[3..],
            _ => return None,
        };
        let coefficient = digits.parse::<u64>().ok()?;
        Some(Decimal::new(coefficient, scale))
    }

    /// The ISO 4217 numeric currency code of AIs 391n and 393n.
    pub fn currency(&self) -> Option<u16> {
        let is_currency_amount = matches_pattern(self.code(), "391n") || matches_pattern(self.code(), "393n");
        match is_currency_amount {
            true => self.value[..3].parse().ok(),
            false => None,
        }
    }
}

impl fmt::Display for Element {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "({}){}", self.code(), self.value.replace('(', "\\("))
    }
}

/// A valid sequence of elements, as read from one or more barcodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementString {
    elements: Vec<Element>,
}

impl ElementString {
    /// Checks duplicates and the `req=` / `ex=` associations of `elements`.
    pub fn new(elements: Vec<Element>) -> Result<ElementString, ElementStringError> {
        if elements.is_empty() {
            return Err(ElementStringError::Empty);
        }
        if elements.len() > ELEMENT_COUNT_MAXIMUM {
            return Err(ElementStringError::TooManyElements { maximum: ELEMENT_COUNT_MAXIMUM });
        }
        check_duplicates(&elements)?;
        check_associations(&elements)?;
        Ok(ElementString { elements })
    }

    /// Parses the bracketed form, e.g. `(01)09506000134352(17)261231(10)ABC123`. A `(` inside a
    /// value is written `\(`.
    pub fn parse_bracketed(text: &str) -> Result<ElementString, ElementStringError> {
        check_input(text)?;
        let bytes = text.as_bytes();
        let mut elements = Vec::new();
        let mut position = 0;
        while position < bytes.len() {
            if bytes[position] != b'(' {
                return Err(ElementStringError::ExpectedOpeningBracket { position });
            }
            let code_start = position + 1;
            let code_length = bytes[code_start..]
                .iter()
                .position(|byte| *byte == b')')
                .ok_or(ElementStringError::UnclosedBracket { position })?;
            let code = &text[code_start..code_start + code_length];
            let definition = lookup_code(code, code_start)?;
            let mut value = String::new();
            position = code_start + code_length + 1;
            while position < bytes.len() && bytes[position] != b'(' {
                if bytes[position] == b'\\' && bytes.get(position + 1) == Some(&b'(') {
                    position += 1;
                }
                value.push(char::from(bytes[position]));
                position += 1;
            }
            push_element(&mut elements, Element::with_definition(definition, &value)?)?;
        }
        ElementString::new(elements)
    }

    /// Parses unbracketed data: AI and value pairs, with an FNC1 separator (ASCII 29) after
    /// every value whose length is not predefined, except the last. A leading separator (FNC1 in
    /// first position) is accepted.
    pub fn parse_unbracketed(text: &str) -> Result<ElementString, ElementStringError> {
        check_input(text)?;
        let separator = GROUP_SEPARATOR as u8;
        let bytes = text.as_bytes();
        let mut position = usize::from(bytes.first() == Some(&separator));
        if position == bytes.len() {
            return Err(ElementStringError::Empty);
        }
        let mut elements = Vec::new();
        while position < bytes.len() {
            if bytes[position] == separator {
                return Err(ElementStringError::UnexpectedSeparator { position });
            }
            let definition = application_identifier::lookup_prefix(&text[position..]).ok_or_else(|| {
                let end = (position + 4).min(bytes.len());
                ElementStringError::UnknownApplicationIdentifier { position, found: text[position..end].to_owned() }
            })?;
            let value_start = position + definition.code.len();
            let value_end = if definition.predefined_length {
                let (_, length) = definition.length_range();
                let remaining = bytes.len() - value_start;
                if remaining < length {
                    return Err(ElementStringError::Truncated {
                        code: definition.code,
                        expected: length,
                        found: remaining,
                    });
                }
                value_start + length
            } else {
                bytes[value_start..]
                    .iter()
                    .position(|byte| *byte == separator)
                    .map_or(bytes.len(), |offset| value_start + offset)
            };
            push_element(&mut elements, Element::with_definition(definition, &text[value_start..value_end])?)?;
            position = value_end;
            if position < bytes.len() && bytes[position] == separator {
                position += 1;
                if position == bytes.len() {
                    return Err(ElementStringError::UnexpectedSeparator { position: position - 1 });
                }
            }
        }
        ElementString::new(elements)
    }

    pub fn elements(&self) -> &[Element] {
        &self.elements
    }

    /// The first element of AI `code`.
    pub fn get(&self, code: &str) -> Option<&Element> {
        self.elements.iter().find(|element| element.code() == code)
    }

    /// The value of the first element of AI `code`.
    pub fn value(&self, code: &str) -> Option<&str> {
        self.get(code).map(Element::value)
    }

    /// The GTIN of AI (01).
    pub fn gtin(&self) -> Option<Gtin> {
        self.value("01").and_then(|value| Gtin::parse(value).ok())
    }

    /// The expiry date, AI (17), with the century rule relative to `today`.
    pub fn expiry_date(&self, today: CalendarDate) -> Option<CalendarDate> {
        self.get("17").and_then(|element| element.date(today))
    }

    /// The net weight in kilograms, AI (310n).
    pub fn net_weight_kilograms(&self) -> Option<Decimal> {
        self.elements.iter().find(|element| matches_pattern(element.code(), "310n")).and_then(Element::decimal)
    }

    /// The price of a variable-measure trade item in local currency, AI (392n).
    pub fn price(&self) -> Option<Decimal> {
        self.elements.iter().find(|element| matches_pattern(element.code(), "392n")).and_then(Element::decimal)
    }

    /// The bracketed form, `(01)09506000134352(10)ABC`.
    pub fn to_bracketed(&self) -> String {
        self.to_string()
    }

    /// The unbracketed form: FNC1 (ASCII 29) after each value of non-predefined length but the last.
    pub fn to_unbracketed(&self) -> String {
        let mut text = String::new();
        for (index, element) in self.elements.iter().enumerate() {
            text.push_str(element.code());
            text.push_str(element.value());
            let is_last = index + 1 == self.elements.len();
            if !element.definition.predefined_length && !is_last {
                text.push(GROUP_SEPARATOR);
            }
        }
        text
    }
}

impl fmt::Display for ElementString {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for element in &self.elements {
            write!(formatter, "{element}")?;
        }
        Ok(())
    }
}

fn check_input(text: &str) -> Result<(), ElementStringError> {
    if text.is_empty() {
        return Err(ElementStringError::Empty);
    }
    if text.len() > INPUT_LENGTH_MAXIMUM {
        return Err(ElementStringError::TooLong { maximum: INPUT_LENGTH_MAXIMUM, found: text.len() });
    }
    // GS1 data is printable ASCII plus the FNC1 separator; anything else is rejected up front so
    // that the parsers can work on bytes.
    match text
        .char_indices()
        .find(|(_, character)| !(character.is_ascii_graphic() || *character == GROUP_SEPARATOR || *character == ' '))
    {
        Some((position, found)) => Err(ElementStringError::InvalidCharacter { position, found }),
        None => Ok(()),
    }
}

fn lookup_code(code: &str, position: usize) -> Result<&'static ApplicationIdentifierDefinition, ElementStringError> {
    application_identifier::lookup(code)
        .ok_or_else(|| ElementStringError::UnknownApplicationIdentifier { position, found: code.to_owned() })
}

fn push_element(elements: &mut Vec<Element>, element: Element) -> Result<(), ElementStringError> {
    if elements.len() == ELEMENT_COUNT_MAXIMUM {
        return Err(ElementStringError::TooManyElements { maximum: ELEMENT_COUNT_MAXIMUM });
    }
    elements.push(element);
    Ok(())
}

fn check_duplicates(elements: &[Element]) -> Result<(), ElementStringError> {
    for (index, element) in elements.iter().enumerate() {
        let conflict = elements[..index]
            .iter()
            .any(|earlier| earlier.code() == element.code() && earlier.value() != element.value());
        if conflict {
            return Err(ElementStringError::ConflictingDuplicate { code: element.code() });
        }
    }
    Ok(())
}

/// Checks the `req=` and `ex=` attributes of every element against the others.
pub(crate) fn check_associations(elements: &[Element]) -> Result<(), ElementStringError> {
    let present = |pattern: &str| elements.iter().any(|element| matches_pattern(element.code(), pattern));
    for element in elements {
        let definition = element.definition();
        for requirement in definition.requires {
            let satisfied = requirement.iter().any(|group| group.iter().all(|pattern| present(pattern)));
            if !satisfied {
                return Err(ElementStringError::MissingRequired {
                    code: definition.code,
                    needs: describe_requirement(requirement),
                });
            }
        }
        for pattern in definition.excludes {
            let excluded =
                elements.iter().find(|other| other.code() != definition.code && matches_pattern(other.code(), pattern));
            if let Some(other) = excluded {
                return Err(ElementStringError::Excluded { code: definition.code, other: other.code() });
            }
        }
    }
    Ok(())
}

fn describe_requirement(requirement: &[&[&str]]) -> String {
    let groups: Vec<String> = requirement
        .iter()
        .map(|group| group.iter().map(|pattern| format!("({pattern})")).collect::<Vec<_>>().join(" with "))
        .collect();
    match groups.len() {
        1 => groups[0].clone(),
        _ => format!("one of {}", groups.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GS: char = GROUP_SEPARATOR;

    fn check_bracketed(input: &str, expected: Result<&str, &str>) {
        let actual =
            ElementString::parse_bracketed(input).map(|parsed| parsed.to_string()).map_err(|error| error.to_string());
        assert_eq!(actual, expected.map(str::to_owned).map_err(str::to_owned), "{input}");
    }

    fn check_unbracketed(input: &str, expected: Result<&str, &str>) {
        let actual =
            ElementString::parse_unbracketed(input).map(|parsed| parsed.to_string()).map_err(|error| error.to_string());
        assert_eq!(actual, expected.map(str::to_owned).map_err(str::to_owned), "{input:?}");
    }

    #[test]
    fn bracketed_element_strings() {
        check_bracketed("(01)09506000134352(17)261231(10)ABC123", Ok("(01)09506000134352(17)261231(10)ABC123"));
        check_bracketed("(01)09506000134352(10)A\\(B", Ok("(01)09506000134352(10)A\\(B"));
        check_bracketed("(00)106141411234567897", Ok("(00)106141411234567897"));
        check_bracketed("", Err("element string is empty"));
        check_bracketed("01)x", Err("expected '(' at position 0"));
        check_bracketed("(01", Err("the AI starting at position 0 has no closing ')'"));
        check_bracketed("(04)1", Err("unknown application identifier \"04\" at position 1"));
        check_bracketed("(01)", Err("(01) has no value"));
        check_bracketed("(01)09506000134353", Err("(01) check digit at position 13 should be 2, found 3"));
        check_bracketed(
            "(01)09506000134352(17)261331",
            Err("(17) yymmd0 check failed at position 2: month must be 01 to 12"),
        );
        check_bracketed("(10)ABC", Err("(10) requires one of (01), (02), (03), (8006), (8026)"));
        check_bracketed("(01)09506000134352(02)09506000134352(37)1", Err("(01) must not appear together with (37)"));
        check_bracketed(
            "(01)09506000134352(3103)000195(3102)001950",
            Err("(3103) must not appear together with (3102)"),
        );
        check_bracketed("(01)09506000134352(10)A(10)B", Err("(10) appears twice with different values"));
        check_bracketed("(01)09506000134352(10)A(10)A", Ok("(01)09506000134352(10)A(10)A"));
        check_bracketed(
            "(01)09506000134352(3922)1234(250)x",
            Err(
                "(3922) requires one of (01) with (30), (01) with (31nn), (01) with (32nn), (01) with (35nn), (01) with (36nn)",
            ),
        );
        check_bracketed("(01)09506000134352(10)lot é", Err("character 'é' at position 26 cannot appear in GS1 data"));
    }

    #[test]
    fn unbracketed_element_strings() {
        check_unbracketed(
            "0109506000134352172612311ABC123",
            Err("unknown application identifier \"1ABC\" at position 24"),
        );
        check_unbracketed("010950600013435217261231", Ok("(01)09506000134352(17)261231"));
        check_unbracketed(
            &format!("{GS}01095060001343521726123110ABC123{GS}21XYZ"),
            Ok("(01)09506000134352(17)261231(10)ABC123(21)XYZ"),
        );
        check_unbracketed(&format!("0109506000134352{GS}10ABC"), Ok("(01)09506000134352(10)ABC"));
        check_unbracketed("01095060001343", Err("(01) needs 14 characters, only 12 remain"));
        check_unbracketed(&format!("0109506000134352{GS}{GS}10ABC"), Err("unexpected FNC1 separator at position 17"));
        check_unbracketed(&format!("010950600013435210ABC{GS}"), Err("unexpected FNC1 separator at position 21"));
        check_unbracketed("0409506000134352", Err("unknown application identifier \"0409\" at position 0"));
    }

    #[test]
    fn printing_puts_separators_only_after_variable_values() {
        let parsed = ElementString::parse_bracketed("(01)09506000134352(10)ABC(17)261231(21)XYZ").unwrap();
        assert_eq!(parsed.to_unbracketed(), format!("010950600013435210ABC{GS}1726123121XYZ"));
        assert_eq!(ElementString::parse_unbracketed(&parsed.to_unbracketed()).unwrap(), parsed);
    }

    #[test]
    fn variable_measures_are_exact_decimals() {
        let parsed = ElementString::parse_bracketed("(01)99506000134355(3103)001250(3922)1299").unwrap();
        assert_eq!(parsed.net_weight_kilograms(), Some(Decimal::new(1250, 3)));
        assert_eq!(parsed.net_weight_kilograms().unwrap().to_string(), "1.250");
        assert_eq!(parsed.price().unwrap().to_string(), "12.99");
        let priced = ElementString::parse_bracketed("(01)99506000134355(3103)001250(3932)9781299").unwrap();
        let amount = priced.get("3932").unwrap();
        assert_eq!((amount.currency(), amount.decimal()), (Some(978), Some(Decimal::new(1299, 2))));
        assert_eq!(Decimal::new(5, 3).to_string(), "0.005");
        assert_eq!(Decimal::new(5, 0).to_string(), "5");
    }

    #[test]
    fn dates_use_the_century_rule_and_day_zero() {
        let today = CalendarDate::new(2026, 3, 1).unwrap();
        let parsed = ElementString::parse_bracketed("(01)09506000134352(17)280200(11)990101").unwrap();
        assert_eq!(parsed.expiry_date(today).unwrap().to_string(), "2028-02-29");
        assert_eq!(parsed.get("11").unwrap().date(today).unwrap().to_string(), "1999-01-01");
        assert_eq!(parsed.get("01").unwrap().date(today), None);
        assert_eq!(parsed.gtin().unwrap().as_str(), "09506000134352");
    }
}
