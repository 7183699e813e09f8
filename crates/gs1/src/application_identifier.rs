//! GS1 Application Identifiers: their definitions (format, linters, associations, Digital Link
//! roles) and the validation of one AI's value against its definition.
//!
//! The definitions live in [`crate::ai_table`], generated from the GS1 Barcode Syntax Dictionary.

use std::fmt;

use crate::ai_table::APPLICATION_IDENTIFIERS;
use crate::linters;

/// The character sets of the GS1 General Specifications §7.11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CharacterSet {
    /// `N`: digits 0-9.
    Numeric,
    /// `X`: GS1 AI encodable character set 82.
    Cset82,
    /// `Y`: GS1 AI encodable character set 39 (upper case, digits, `#-/`).
    Cset39,
    /// `Z`: GS1 AI encodable character set 64 (base64url, with `=` padding).
    Cset64,
}

impl CharacterSet {
    /// The letter the Syntax Dictionary uses for this set.
    pub fn letter(self) -> char {
        match self {
            CharacterSet::Numeric => 'N',
            CharacterSet::Cset82 => 'X',
            CharacterSet::Cset39 => 'Y',
            CharacterSet::Cset64 => 'Z',
        }
    }

    /// Whether `byte` belongs to this character set.
    pub fn contains(self, byte: u8) -> bool {
        match self {
            CharacterSet::Numeric => byte.is_ascii_digit(),
            CharacterSet::Cset82 => is_cset82(byte),
            CharacterSet::Cset39 => byte.is_ascii_uppercase() || byte.is_ascii_digit() || b"#-/".contains(&byte),
            CharacterSet::Cset64 => byte.is_ascii_alphanumeric() || b"-_=".contains(&byte),
        }
    }
}

impl fmt::Display for CharacterSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            CharacterSet::Numeric => "numeric (N)",
            CharacterSet::Cset82 => "CSET 82 (X)",
            CharacterSet::Cset39 => "CSET 39 (Y)",
            CharacterSet::Cset64 => "CSET 64 (Z)",
        };
        formatter.write_str(name)
    }
}

/// The 82 characters of GS1 AI encodable character set 82, in the order of their values.
pub(crate) const CSET82: &[u8; 82] =
    b"!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

pub(crate) fn is_cset82(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!\"%&'()*+,-./:;<=>?_".contains(&byte)
}

/// A content check ("linter") of the GS1 Barcode Syntax Tests, applied to one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Linter {
    CheckDigit,
    CheckCharacterPair,
    CompanyPrefixAtPosition1,
    CompanyPrefixAtPosition2,
    HasNonDigit,
    Hour,
    HourMinute,
    Minute,
    Second,
    Hyphen,
    Iban,
    ImporterIndex,
    CountryNumeric,
    CountryNumericOr999,
    CountryAlpha2,
    CurrencyNumeric,
    BiologicalSex,
    Latitude,
    Longitude,
    MediaType,
    NonZero,
    NoZeroPrefix,
    PackageType,
    PercentEncoded,
    PieceOfTotal,
    PositionInSequence,
    WindingDirection,
    YesNo,
    /// `yymmd0`: a date whose day may be 00 (meaning the last day of the month).
    DateWithOptionalDay,
    /// `yymmdd`.
    Date,
    /// `yyyymmdd`.
    DateWithCentury,
    Zero,
    CouponCode,
    CouponPositiveOffer,
}

impl Linter {
    /// Every linter, for lookups by name.
    pub const ALL: [Linter; 34] = [
        Linter::CheckDigit,
        Linter::CheckCharacterPair,
        Linter::CompanyPrefixAtPosition1,
        Linter::CompanyPrefixAtPosition2,
        Linter::HasNonDigit,
        Linter::Hour,
        Linter::HourMinute,
        Linter::Minute,
        Linter::Second,
        Linter::Hyphen,
        Linter::Iban,
        Linter::ImporterIndex,
        Linter::CountryNumeric,
        Linter::CountryNumericOr999,
        Linter::CountryAlpha2,
        Linter::CurrencyNumeric,
        Linter::BiologicalSex,
        Linter::Latitude,
        Linter::Longitude,
        Linter::MediaType,
        Linter::NonZero,
        Linter::NoZeroPrefix,
        Linter::PackageType,
        Linter::PercentEncoded,
        Linter::PieceOfTotal,
        Linter::PositionInSequence,
        Linter::WindingDirection,
        Linter::YesNo,
        Linter::DateWithOptionalDay,
        Linter::Date,
        Linter::DateWithCentury,
        Linter::Zero,
        Linter::CouponCode,
        Linter::CouponPositiveOffer,
    ];

    /// The name the Syntax Dictionary uses (`csum`, `yymmd0`, ...).
    pub fn dictionary_name(self) -> &'static str {
        match self {
            Linter::CheckDigit => "csum",
            Linter::CheckCharacterPair => "csumalpha",
            Linter::CompanyPrefixAtPosition1 => "gcppos1",
            Linter::CompanyPrefixAtPosition2 => "gcppos2",
            Linter::HasNonDigit => "hasnondigit",
            Linter::Hour => "hh",
            Linter::HourMinute => "hhmi",
            Linter::Minute => "mi",
            Linter::Second => "ss",
            Linter::Hyphen => "hyphen",
            Linter::Iban => "iban",
            Linter::ImporterIndex => "importeridx",
            Linter::CountryNumeric => "iso3166",
            Linter::CountryNumericOr999 => "iso3166999",
            Linter::CountryAlpha2 => "iso3166alpha2",
            Linter::CurrencyNumeric => "iso4217",
            Linter::BiologicalSex => "iso5218",
            Linter::Latitude => "latitude",
            Linter::Longitude => "longitude",
            Linter::MediaType => "mediatype",
            Linter::NonZero => "nonzero",
            Linter::NoZeroPrefix => "nozeroprefix",
            Linter::PackageType => "packagetype",
            Linter::PercentEncoded => "pcenc",
            Linter::PieceOfTotal => "pieceoftotal",
            Linter::PositionInSequence => "posinseqslash",
            Linter::WindingDirection => "winding",
            Linter::YesNo => "yesno",
            Linter::DateWithOptionalDay => "yymmd0",
            Linter::Date => "yymmdd",
            Linter::DateWithCentury => "yyyymmdd",
            Linter::Zero => "zero",
            Linter::CouponCode => "couponcode",
            Linter::CouponPositiveOffer => "couponposoffer",
        }
    }

    /// The linter the Syntax Dictionary calls `name`.
    pub fn from_dictionary_name(name: &str) -> Option<Linter> {
        Linter::ALL.into_iter().find(|linter| linter.dictionary_name() == name)
    }
}

impl fmt::Display for Linter {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.dictionary_name())
    }
}

/// One component of an AI's data field, e.g. `N13,csum` or `[X..17]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    pub character_set: CharacterSet,
    pub length_minimum: u8,
    pub length_maximum: u8,
    /// Optional components may be absent once the data is exhausted.
    pub optional: bool,
    pub linters: &'static [Linter],
}

impl Component {
    pub(crate) const fn required(
        character_set: CharacterSet,
        length_minimum: u8,
        length_maximum: u8,
        linters: &'static [Linter],
    ) -> Component {
        Component { character_set, length_minimum, length_maximum, optional: false, linters }
    }

    pub(crate) const fn optional(
        character_set: CharacterSet,
        length_minimum: u8,
        length_maximum: u8,
        linters: &'static [Linter],
    ) -> Component {
        Component { character_set, length_minimum, length_maximum, optional: true, linters }
    }
}

/// One `req=` attribute: the AI needs at least one of these groups, and every AI (or pattern such
/// as `31nn`) of that group. `req=01+21,02` is `[["01", "21"], ["02"]]`.
pub type Requirement = &'static [&'static [&'static str]];

/// The definition of one Application Identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplicationIdentifierDefinition {
    /// Two to four digits.
    pub code: &'static str,
    pub title: &'static str,
    /// The `*` flag: the length is predefined by the AI's first two digits, so no FNC1 separator
    /// follows the value in unbracketed data.
    pub predefined_length: bool,
    /// The `?` flag: the AI may appear as a data attribute in a Digital Link query string.
    pub digital_link_data_attribute: bool,
    pub components: &'static [Component],
    /// All `req=` attributes; each must be satisfied.
    pub requires: &'static [Requirement],
    /// The `ex=` attribute: AIs (or patterns) that must not appear together with this one.
    pub excludes: &'static [&'static str],
    /// The `dlpkey` attribute: `Some` if the AI is a Digital Link primary key, holding the
    /// alternative ordered sequences of key qualifiers (empty if it takes no qualifiers).
    pub digital_link_primary_key: Option<&'static [&'static [&'static str]]>,
}

impl ApplicationIdentifierDefinition {
    /// The shortest and the longest value.
    pub fn length_range(&self) -> (usize, usize) {
        let mut minimum = 0;
        let mut maximum = 0;
        for component in self.components {
            if !component.optional {
                minimum += usize::from(component.length_minimum);
            }
            maximum += usize::from(component.length_maximum);
        }
        (minimum, maximum)
    }

    /// Whether this AI is a key qualifier in some sequence of `primary_key`.
    pub fn is_qualifier_of(&self, primary_key: &ApplicationIdentifierDefinition) -> bool {
        primary_key
            .digital_link_primary_key
            .is_some_and(|sequences| sequences.iter().any(|sequence| sequence.contains(&self.code)))
    }

    /// The first linter-bearing date component (`yymmd0`, `yymmdd`) if the value starts with a date.
    pub(crate) fn starts_with_date(&self) -> Option<Linter> {
        let first = self.components.first()?;
        first.linters.iter().copied().find(|linter| matches!(linter, Linter::DateWithOptionalDay | Linter::Date))
    }

    /// Validates `value` against the components and their linters.
    pub fn validate(&self, value: &str) -> Result<(), ValueError> {
        validate_value(self, value)
    }
}

impl fmt::Display for ApplicationIdentifierDefinition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "({})", self.code)
    }
}

/// All Application Identifiers, sorted by code.
pub fn application_identifiers() -> &'static [ApplicationIdentifierDefinition] {
    APPLICATION_IDENTIFIERS
}

/// The definition of the AI `code` (e.g. `"01"`, `"3103"`).
pub fn lookup(code: &str) -> Option<&'static ApplicationIdentifierDefinition> {
    APPLICATION_IDENTIFIERS
        .binary_search_by(|definition| definition.code.cmp(code))
        .ok()
        .map(|index| &APPLICATION_IDENTIFIERS[index])
}

/// The AI that starts `data`: AIs are prefix-free, so at most one of the 2-, 3- and 4-digit
/// prefixes is an AI.
pub fn lookup_prefix(data: &str) -> Option<&'static ApplicationIdentifierDefinition> {
    (2..=4)
        .filter(|length| data.len() >= *length && data.is_char_boundary(*length))
        .find_map(|length| lookup(&data[..length]))
}

/// Whether the AI `code` matches `pattern` (`"01"`, or `"31nn"` / `"392n"` where `n` is any digit).
pub(crate) fn matches_pattern(code: &str, pattern: &str) -> bool {
    code.len() == pattern.len()
        && code
            .bytes()
            .zip(pattern.bytes())
            .all(|(code_byte, pattern_byte)| pattern_byte == b'n' || code_byte == pattern_byte)
}

/// Why a value does not fit its AI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("must have at least {minimum} characters, found {found}")]
    TooShort { minimum: usize, found: usize },
    #[error("must have at most {maximum} characters, found {found}")]
    TooLong { maximum: usize, found: usize },
    #[error("character {found:?} at position {position} is not in {character_set}")]
    InvalidCharacter { position: usize, found: char, character_set: CharacterSet },
    #[error("check digit at position {position} should be {expected}, found {found}")]
    CheckDigit { position: usize, expected: u8, found: u8 },
    #[error("check character pair at position {position} should be {expected:?}, found {found:?}")]
    CheckCharacterPair { position: usize, expected: String, found: String },
    #[error("{linter} check failed at position {position}: {reason}")]
    Lint { linter: Linter, position: usize, reason: &'static str },
}

fn validate_value(definition: &ApplicationIdentifierDefinition, value: &str) -> Result<(), ValueError> {
    // Character sets are ASCII; reject anything else before slicing by bytes.
    if let Some((position, found)) = value.char_indices().find(|(_, character)| !character.is_ascii()) {
        let character_set = component_at(definition, position).map_or(CharacterSet::Cset82, |c| c.character_set);
        return Err(ValueError::InvalidCharacter { position, found, character_set });
    }
    let (length_minimum, length_maximum) = definition.length_range();
    if value.len() < length_minimum {
        return Err(ValueError::TooShort { minimum: length_minimum, found: value.len() });
    }
    if value.len() > length_maximum {
        return Err(ValueError::TooLong { maximum: length_maximum, found: value.len() });
    }
    let bytes = value.as_bytes();
    let mut offset = 0;
    for component in definition.components {
        if offset == bytes.len() && component.optional {
            break;
        }
        let remaining = bytes.len() - offset;
        let length = remaining.min(usize::from(component.length_maximum));
        if length < usize::from(component.length_minimum) {
            return Err(ValueError::TooShort {
                minimum: length_minimum.max(offset + usize::from(component.length_minimum)),
                found: bytes.len(),
            });
        }
        let part = &value[offset..offset + length];
        for (index, byte) in part.bytes().enumerate() {
            if !component.character_set.contains(byte) {
                return Err(ValueError::InvalidCharacter {
                    position: offset + index,
                    found: char::from(byte),
                    character_set: component.character_set,
                });
            }
        }
        for linter in component.linters {
            linters::lint(*linter, part).map_err(|error| error.shifted_by(offset))?;
        }
        offset += length;
    }
    debug_assert_eq!(offset, bytes.len());
    Ok(())
}

fn component_at(definition: &ApplicationIdentifierDefinition, position: usize) -> Option<&'static Component> {
    let mut offset = 0;
    for component in definition.components {
        offset += usize::from(component.length_maximum);
        if position < offset {
            return Some(component);
        }
    }
    definition.components.last()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: &str, value: &str, expected: Result<(), &str>) {
        let definition = lookup(code).unwrap_or_else(|| panic!("AI {code} is in the table"));
        let actual = definition.validate(value).map_err(|error| error.to_string());
        assert_eq!(actual, expected.map_err(str::to_owned), "({code}){value}");
    }

    #[test]
    fn table_is_sorted_and_complete_for_known_ais() {
        let codes: Vec<&str> = application_identifiers().iter().map(|definition| definition.code).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted);
        for code in ["00", "01", "10", "17", "21", "3103", "3922", "414", "8003", "8004", "8018", "99"] {
            assert!(lookup(code).is_some(), "{code}");
        }
        assert!(lookup("04").is_none());
        assert!(lookup("3106").is_none());
    }

    #[test]
    fn table_carries_the_dictionary_attributes() {
        let gtin = lookup("01").unwrap();
        assert!(gtin.predefined_length && gtin.digital_link_data_attribute);
        assert_eq!(gtin.digital_link_primary_key, Some(&[&["22", "10", "21"][..], &["235"][..]][..]));
        assert_eq!(gtin.excludes, &["255", "37"]);
        let price = lookup("3921").unwrap();
        assert_eq!(price.requires[0][1], &["01", "31nn"]);
        assert_eq!(price.excludes, &["392n", "393n"]);
        let serial = lookup("21").unwrap();
        assert!(!serial.digital_link_data_attribute);
        assert_eq!(lookup("8003").unwrap().length_range(), (14, 30));
    }

    #[test]
    fn prefixes_resolve_to_one_ai() {
        assert_eq!(lookup_prefix("0109506000134352").map(|d| d.code), Some("01"));
        assert_eq!(lookup_prefix("3103000195").map(|d| d.code), Some("3103"));
        assert_eq!(lookup_prefix("414").map(|d| d.code), Some("414"));
        assert_eq!(lookup_prefix("0"), None);
        assert_eq!(lookup_prefix("04"), None);
    }

    #[test]
    fn patterns_match_digit_wildcards() {
        assert!(matches_pattern("3103", "310n"));
        assert!(matches_pattern("3125", "31nn"));
        assert!(!matches_pattern("3203", "310n"));
        assert!(!matches_pattern("01", "010"));
    }

    #[test]
    fn values_are_checked_component_by_component() {
        check("01", "09506000134352", Ok(()));
        check("01", "09506000134353", Err("check digit at position 13 should be 2, found 3"));
        check("01", "0950600013435", Err("must have at least 14 characters, found 13"));
        check("10", "ABC123", Ok(()));
        check("10", "ABC 123", Err("character ' ' at position 3 is not in CSET 82 (X)"));
        check("10", "ABCDEFGHIJKLMNOPQRSTU", Err("must have at most 20 characters, found 21"));
        check("10", "é", Err("character 'é' at position 0 is not in CSET 82 (X)"));
        check("17", "261231", Ok(()));
        check("17", "260200", Ok(()));
        check("17", "261301", Err("yymmd0 check failed at position 2: month must be 01 to 12"));
        check("7006", "260200", Err("yymmdd check failed at position 4: day is not in the month"));
        check("3103", "000195", Ok(()));
        check("8003", "01234567890128", Ok(()));
        check("8003", "012345678901284ABC", Ok(()));
        check("8003", "112345678901284ABC", Err("zero check failed at position 0: must be 0"));
        check("8006", "095060001343520102", Ok(()));
        check(
            "8006",
            "095060001343520302",
            Err("pieceoftotal check failed at position 14: piece number exceeds the total"),
        );
        check("4309", "02790858483015297971", Ok(()));
        check("422", "528", Ok(()));
        check("422", "999", Err("iso3166 check failed at position 0: not an ISO 3166 numeric country code"));
        check("8013", "1987654Ad4X4bL5ttr2310c2K", Ok(()));
        check(
            "8013",
            "1987654Ad4X4bL5ttr2310cXK",
            Err("check character pair at position 23 should be \"2K\", found \"XK\""),
        );
        check("4330", "000123-", Ok(()));
        check("8008", "26123112", Ok(()));
        check("8008", "2612311259", Ok(()));
        check("8008", "261231126", Err("must have at least 10 characters, found 9"));
    }
}
