//! The GS1 Barcode Syntax Tests ("linters"): content checks applied to one AI component.
//!
//! Each check is written from the rule it enforces (GS1 General Specifications, ISO code lists);
//! the code lists are data and must follow their maintenance agencies.

use crate::application_identifier::{CSET82, Linter, ValueError};
use crate::date;
use crate::keys::check_digit;

impl ValueError {
    /// The same error with its position moved by `offset` (component offset within the value).
    pub(crate) fn shifted_by(self, offset: usize) -> ValueError {
        match self {
            ValueError::InvalidCharacter { position, found, character_set } => {
                ValueError::InvalidCharacter { position: position + offset, found, character_set }
            }
            ValueError::CheckDigit { position, expected, found } => {
                ValueError::CheckDigit { position: position + offset, expected, found }
            }
            ValueError::CheckCharacterPair { position, expected, found } => {
                ValueError::CheckCharacterPair { position: position + offset, expected, found }
            }
            ValueError::Lint { linter, position, reason } => {
                ValueError::Lint { linter, position: position + offset, reason }
            }
            other => other,
        }
    }
}

/// Applies `linter` to one component's text (already checked for its character set).
pub(crate) fn lint(linter: Linter, text: &str) -> Result<(), ValueError> {
    let fail = |position: usize, reason: &'static str| Err(ValueError::Lint { linter, position, reason });
    let bytes = text.as_bytes();
    match linter {
        Linter::CheckDigit => check_mod10(bytes),
        Linter::CheckCharacterPair => check_character_pair(text),
        Linter::CompanyPrefixAtPosition1 => check_company_prefix(linter, bytes, 0),
        Linter::CompanyPrefixAtPosition2 => check_company_prefix(linter, bytes, 1),
        Linter::HasNonDigit => match bytes.iter().any(|byte| !byte.is_ascii_digit()) {
            true => Ok(()),
            false => fail(0, "must contain a non-digit character"),
        },
        Linter::Hour => check_number_range(bytes, 0, 23).or_else(|_| fail(0, "hour must be 00 to 23")),
        Linter::Minute => check_number_range(bytes, 0, 59).or_else(|_| fail(0, "minute must be 00 to 59")),
        Linter::Second => check_number_range(bytes, 0, 59).or_else(|_| fail(0, "second must be 00 to 59")),
        Linter::HourMinute => {
            if bytes.len() != 4 {
                return fail(0, "time must be HHMI");
            }
            check_number_range(&bytes[..2], 0, 23).or_else(|_| fail(0, "hour must be 00 to 23"))?;
            check_number_range(&bytes[2..], 0, 59).or_else(|_| fail(2, "minute must be 00 to 59"))
        }
        Linter::Hyphen => match bytes.iter().position(|byte| *byte != b'-') {
            None => Ok(()),
            Some(position) => fail(position, "must be a hyphen"),
        },
        Linter::Iban => check_iban(bytes).or_else(|(position, reason)| fail(position, reason)),
        Linter::ImporterIndex => match bytes {
            [byte] if byte.is_ascii_alphanumeric() || *byte == b'-' || *byte == b'_' => Ok(()),
            [_] => fail(0, "importer index must be one of 0-9 A-Z a-z - _"),
            _ => fail(0, "importer index must be one character"),
        },
        Linter::CountryNumeric => {
            in_numeric_list(bytes, COUNTRY_NUMERIC_CODES).or_else(|_| fail(0, "not an ISO 3166 numeric country code"))
        }
        Linter::CountryNumericOr999 => match bytes == b"999" {
            true => Ok(()),
            false => in_numeric_list(bytes, COUNTRY_NUMERIC_CODES)
                .or_else(|_| fail(0, "not an ISO 3166 numeric country code nor 999")),
        },
        Linter::CountryAlpha2 => match COUNTRY_ALPHA2_CODES.contains(&text) {
            true => Ok(()),
            false => fail(0, "not an ISO 3166 alpha-2 country code"),
        },
        Linter::CurrencyNumeric => {
            in_numeric_list(bytes, CURRENCY_NUMERIC_CODES).or_else(|_| fail(0, "not an ISO 4217 numeric currency code"))
        }
        Linter::BiologicalSex => match bytes {
            [b'0' | b'1' | b'2' | b'9'] => Ok(()),
            _ => fail(0, "ISO 5218 sex code must be 0, 1, 2 or 9"),
        },
        Linter::Latitude => {
            check_number_range(bytes, 0, 1_800_000_000).or_else(|_| fail(0, "latitude must be at most 1800000000"))
        }
        Linter::Longitude => {
            check_number_range(bytes, 0, 3_600_000_000).or_else(|_| fail(0, "longitude must be at most 3600000000"))
        }
        Linter::MediaType => match parse_number(bytes) {
            Some(1..=10 | 80..=99) if bytes.len() == 2 => Ok(()),
            _ => fail(0, "AIDC media type must be 01 to 10 or 80 to 99"),
        },
        Linter::NonZero => match bytes.iter().any(|byte| *byte != b'0') {
            true => Ok(()),
            false => fail(0, "must not be zero"),
        },
        Linter::NoZeroPrefix => match bytes {
            [b'0', _, ..] => fail(0, "must not start with a zero"),
            _ => Ok(()),
        },
        Linter::PackageType => match PACKAGE_TYPE_CODES.binary_search(&text) {
            Ok(_) => Ok(()),
            Err(_) => fail(0, "not a PackageTypeCode"),
        },
        Linter::PercentEncoded => {
            check_percent_encoding(bytes).or_else(|position| fail(position, "'%' must be followed by two hex digits"))
        }
        Linter::PieceOfTotal => check_piece_of_total(bytes).or_else(|(position, reason)| fail(position, reason)),
        Linter::PositionInSequence => {
            check_position_in_sequence(bytes).or_else(|(position, reason)| fail(position, reason))
        }
        Linter::WindingDirection => match bytes {
            [b'0' | b'1' | b'9'] => Ok(()),
            _ => fail(0, "winding direction must be 0, 1 or 9"),
        },
        Linter::YesNo => match bytes {
            [b'0' | b'1'] => Ok(()),
            _ => fail(0, "must be 0 or 1"),
        },
        Linter::Zero => match bytes {
            [b'0'] => Ok(()),
            _ => fail(0, "must be 0"),
        },
        Linter::DateWithOptionalDay => {
            date::check_yymmdd(bytes, true).or_else(|(position, reason)| fail(position, reason))
        }
        Linter::Date => date::check_yymmdd(bytes, false).or_else(|(position, reason)| fail(position, reason)),
        Linter::DateWithCentury => date::check_yyyymmdd(bytes).or_else(|(position, reason)| fail(position, reason)),
        Linter::CouponCode => check_coupon_code(bytes).or_else(|(position, reason)| fail(position, reason)),
        Linter::CouponPositiveOffer => {
            check_coupon_positive_offer(bytes).or_else(|(position, reason)| fail(position, reason))
        }
    }
}

fn check_mod10(bytes: &[u8]) -> Result<(), ValueError> {
    let Some((last, body)) = bytes.split_last() else {
        return Err(ValueError::TooShort { minimum: 1, found: 0 });
    };
    let digits: Vec<u8> = body.iter().map(|byte| byte - b'0').collect();
    let expected = check_digit(&digits);
    let found = last - b'0';
    match expected == found {
        true => Ok(()),
        false => Err(ValueError::CheckDigit { position: body.len(), expected, found }),
    }
}

/// CSET 32: the characters of a check character pair, in the order of their values.
const CSET32: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// The GS1 check character pair of `data` (GS1 General Specifications §7.9.5): CSET 82 values
/// weighted by increasing primes from the right, sum modulo 1021, split into two CSET 32 characters.
pub(crate) fn check_character_pair_of(data: &[u8]) -> Option<[u8; 2]> {
    let mut sum: u64 = 0;
    let mut prime = 1u64;
    for byte in data.iter().rev() {
        prime = next_prime(prime);
        let value = CSET82.iter().position(|candidate| candidate == byte)? as u64;
        sum += value * prime;
    }
    let sum = (sum % 1021) as usize;
    Some([CSET32[sum >> 5], CSET32[sum & 31]])
}

fn next_prime(after: u64) -> u64 {
    let mut candidate = after + 1;
    // Bounded: data is at most 99 characters, so at most the 99th prime (523) is reached.
    while (2..candidate)
        .take_while(|divisor| divisor * divisor <= candidate)
        .any(|divisor| candidate.is_multiple_of(divisor))
    {
        candidate += 1;
    }
    candidate
}

fn check_character_pair(text: &str) -> Result<(), ValueError> {
    let bytes = text.as_bytes();
    if bytes.len() < 2 {
        return Err(ValueError::Lint {
            linter: Linter::CheckCharacterPair,
            position: 0,
            reason: "too short for a check character pair",
        });
    }
    let (data, pair) = bytes.split_at(bytes.len() - 2);
    if let Some(index) = pair.iter().position(|byte| !CSET32.contains(byte)) {
        return Err(ValueError::Lint {
            linter: Linter::CheckCharacterPair,
            position: data.len() + index,
            reason: "check characters must be in CSET 32",
        });
    }
    let expected = check_character_pair_of(data).ok_or(ValueError::Lint {
        linter: Linter::CheckCharacterPair,
        position: 0,
        reason: "data must be in CSET 82",
    })?;
    match expected == pair {
        true => Ok(()),
        false => Err(ValueError::CheckCharacterPair {
            position: data.len(),
            expected: String::from_utf8_lossy(&expected).into_owned(),
            found: text[data.len()..].to_owned(),
        }),
    }
}

/// The shortest GS1 Company Prefix has four digits (a GS1-8 prefix padded as the linter does).
const COMPANY_PREFIX_LENGTH_MINIMUM: usize = 4;

fn check_company_prefix(linter: Linter, bytes: &[u8], start: usize) -> Result<(), ValueError> {
    let prefix = bytes.get(start..start + COMPANY_PREFIX_LENGTH_MINIMUM).ok_or(ValueError::Lint {
        linter,
        position: start,
        reason: "too short to start with a GS1 Company Prefix",
    })?;
    match prefix.iter().position(|byte| !byte.is_ascii_digit()) {
        None => Ok(()),
        Some(index) => {
            Err(ValueError::Lint { linter, position: start + index, reason: "a GS1 Company Prefix has digits only" })
        }
    }
}

fn parse_number(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 18 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.iter().fold(0u64, |number, byte| number * 10 + u64::from(byte - b'0')))
}

fn check_number_range(bytes: &[u8], minimum: u64, maximum: u64) -> Result<(), ()> {
    match parse_number(bytes) {
        Some(number) if (minimum..=maximum).contains(&number) => Ok(()),
        _ => Err(()),
    }
}

fn in_numeric_list(bytes: &[u8], list: &[u16]) -> Result<(), ()> {
    match parse_number(bytes) {
        Some(number) if bytes.len() == 3 && list.binary_search(&(number as u16)).is_ok() => Ok(()),
        _ => Err(()),
    }
}

type Failure = (usize, &'static str);

fn check_iban(bytes: &[u8]) -> Result<(), Failure> {
    if bytes.len() < 5 {
        return Err((0, "IBAN too short"));
    }
    if let Some(position) = bytes.iter().position(|byte| !(byte.is_ascii_uppercase() || byte.is_ascii_digit())) {
        return Err((position, "IBAN characters must be 0-9 or A-Z"));
    }
    let country = std::str::from_utf8(&bytes[..2]).unwrap_or("");
    if !COUNTRY_ALPHA2_CODES.contains(&country) {
        return Err((0, "IBAN must start with an ISO 3166 alpha-2 country code"));
    }
    if !bytes[2..4].iter().all(u8::is_ascii_digit) {
        return Err((2, "IBAN check digits must be digits"));
    }
    let mut remainder: u32 = 0;
    for byte in bytes[4..].iter().chain(&bytes[..4]) {
        let value = match byte {
            b'0'..=b'9' => u32::from(byte - b'0'),
            _ => u32::from(byte - b'A') + 10,
        };
        remainder = if value >= 10 { (remainder * 100 + value) % 97 } else { (remainder * 10 + value) % 97 };
    }
    match remainder == 1 {
        true => Ok(()),
        false => Err((2, "IBAN check digits are wrong")),
    }
}

fn check_percent_encoding(bytes: &[u8]) -> Result<(), usize> {
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let valid = bytes.get(index + 1..index + 3).is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit));
            if !valid {
                return Err(index);
            }
            index += 3;
        } else {
            index += 1;
        }
    }
    Ok(())
}

fn check_piece_of_total(bytes: &[u8]) -> Result<(), Failure> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(2) {
        return Err((0, "piece and total must have the same length"));
    }
    let half = bytes.len() / 2;
    let piece = parse_number(&bytes[..half]).ok_or((0, "piece number must be digits"))?;
    let total = parse_number(&bytes[half..]).ok_or((half, "total must be digits"))?;
    if piece == 0 {
        return Err((0, "piece number must not be zero"));
    }
    if total == 0 {
        return Err((half, "total must not be zero"));
    }
    match piece <= total {
        true => Ok(()),
        false => Err((0, "piece number exceeds the total")),
    }
}

fn check_position_in_sequence(bytes: &[u8]) -> Result<(), Failure> {
    let malformed = (0, "must be <position>/<end>");
    let slash = bytes.iter().position(|byte| *byte == b'/').ok_or(malformed)?;
    let (position_digits, end_digits) = (&bytes[..slash], &bytes[slash + 1..]);
    if position_digits.is_empty() || end_digits.is_empty() {
        return Err(malformed);
    }
    if !position_digits.iter().chain(end_digits).all(u8::is_ascii_digit) {
        return Err(malformed);
    }
    if position_digits[0] == b'0' {
        return Err((0, "position must not be zero nor start with zero"));
    }
    if end_digits[0] == b'0' {
        return Err((slash + 1, "end must not be zero nor start with zero"));
    }
    let position_is_greater = match position_digits.len().cmp(&end_digits.len()) {
        std::cmp::Ordering::Equal => position_digits > end_digits,
        ordering => ordering == std::cmp::Ordering::Greater,
    };
    match position_is_greater {
        true => Err((0, "position exceeds the end")),
        false => Ok(()),
    }
}

/// A cursor over coupon digits; each step names the field it expects.
struct CouponReader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl CouponReader<'_> {
    fn digit(&mut self, missing: &'static str) -> Result<u8, Failure> {
        let byte = *self.bytes.get(self.position).ok_or((self.position, missing))?;
        self.position += 1;
        Ok(byte - b'0')
    }

    fn skip(&mut self, length: usize, truncated: &'static str) -> Result<&[u8], Failure> {
        let start = self.position;
        let field = self.bytes.get(start..start + length).ok_or((start, truncated))?;
        self.position += length;
        Ok(field)
    }

    fn peek_is(&self, indicator: u8) -> bool {
        self.bytes.get(self.position) == Some(&indicator)
    }

    fn company_prefix(&mut self, length: usize, truncated: &'static str) -> Result<(), Failure> {
        let start = self.position;
        let prefix = self.skip(length, truncated)?;
        match prefix.len() >= COMPANY_PREFIX_LENGTH_MINIMUM {
            true => Ok(()),
            false => Err((start, "too short to be a GS1 Company Prefix")),
        }
    }

    fn requirement(&mut self, name: &'static str) -> Result<(), Failure> {
        let at = self.position;
        let length = self.digit(name)?;
        if !(1..=5).contains(&length) {
            return Err((at, "purchase requirement length indicator must be 1 to 5"));
        }
        self.skip(usize::from(length), "purchase requirement truncated")?;
        let at = self.position;
        let code = self.digit("purchase requirement code missing")?;
        if code > 4 && code != 9 {
            return Err((at, "purchase requirement code must be 0 to 4 or 9"));
        }
        self.skip(3, "purchase family code truncated")?;
        Ok(())
    }
}

/// North American coupon code, AI (8110).
fn check_coupon_code(bytes: &[u8]) -> Result<(), Failure> {
    if let Some(position) = bytes.iter().position(|byte| !byte.is_ascii_digit()) {
        return Err((position, "coupon code must be digits"));
    }
    let mut reader = CouponReader { bytes, position: 0 };
    let company_prefix_length = reader.digit("company prefix length indicator missing")?;
    if company_prefix_length > 6 {
        return Err((0, "company prefix length indicator must be 0 to 6"));
    }
    reader.company_prefix(usize::from(company_prefix_length) + 6, "company prefix truncated")?;
    reader.skip(6, "offer code truncated")?;
    let at = reader.position;
    let save_value_length = reader.digit("save value length indicator missing")?;
    if !(1..=5).contains(&save_value_length) {
        return Err((at, "save value length indicator must be 1 to 5"));
    }
    reader.skip(usize::from(save_value_length), "save value truncated")?;
    reader.requirement("first purchase requirement length indicator missing")?;
    if reader.peek_is(b'1') {
        reader.position += 1;
        let at = reader.position;
        if reader.digit("additional purchase rules code missing")? > 3 {
            return Err((at, "additional purchase rules code must be 0 to 3"));
        }
        reader.requirement("second purchase requirement length indicator missing")?;
        let at = reader.position;
        let prefix_length = reader.digit("second purchase company prefix length indicator missing")?;
        match prefix_length {
            9 => {}
            0..=6 => {
                reader.company_prefix(usize::from(prefix_length) + 6, "second purchase company prefix truncated")?
            }
            _ => {
                return Err((at, "second purchase company prefix length indicator must be 0 to 6 or 9"));
            }
        }
    }
    if reader.peek_is(b'2') {
        reader.position += 1;
        reader.requirement("third purchase requirement length indicator missing")?;
        let at = reader.position;
        let prefix_length = reader.digit("third purchase company prefix length indicator missing")?;
        match prefix_length {
            9 => {}
            0..=6 => {
                reader.company_prefix(usize::from(prefix_length) + 6, "third purchase company prefix truncated")?
            }
            _ => {
                return Err((at, "third purchase company prefix length indicator must be 0 to 6 or 9"));
            }
        }
    }
    let mut expiration: Option<Vec<u8>> = None;
    if reader.peek_is(b'3') {
        reader.position += 1;
        let at = reader.position;
        let date = reader.skip(6, "expiration date truncated")?.to_vec();
        date::check_yymmdd(&date, false).map_err(|_| (at, "expiration date is not a valid YYMMDD date"))?;
        expiration = Some(date);
    }
    if reader.peek_is(b'4') {
        reader.position += 1;
        let at = reader.position;
        let start = reader.skip(6, "start date truncated")?.to_vec();
        date::check_yymmdd(&start, false).map_err(|_| (at, "start date is not a valid YYMMDD date"))?;
        if expiration.as_ref().is_some_and(|expiration| start > *expiration) {
            return Err((at, "expiration date is before the start date"));
        }
    }
    if reader.peek_is(b'5') {
        reader.position += 1;
        let serial_length = reader.digit("serial number length indicator missing")?;
        reader.skip(usize::from(serial_length) + 6, "serial number truncated")?;
    }
    if reader.peek_is(b'6') {
        reader.position += 1;
        let at = reader.position;
        let retailer_length = reader.digit("retailer identifier length indicator missing")?;
        if !(1..=7).contains(&retailer_length) {
            return Err((at, "retailer identifier length indicator must be 1 to 7"));
        }
        reader.company_prefix(usize::from(retailer_length) + 6, "retailer identifier truncated")?;
    }
    if reader.peek_is(b'9') {
        reader.position += 1;
        let at = reader.position;
        if !matches!(reader.digit("save value code missing")?, 0 | 1 | 2 | 5 | 6) {
            return Err((at, "save value code must be 0, 1, 2, 5 or 6"));
        }
        let at = reader.position;
        if reader.digit("save value applies to item missing")? > 2 {
            return Err((at, "save value applies to item must be 0 to 2"));
        }
        reader.digit("store coupon flag missing")?;
        let at = reader.position;
        if reader.digit("don't multiply flag missing")? > 1 {
            return Err((at, "don't multiply flag must be 0 or 1"));
        }
    }
    match reader.position == bytes.len() {
        true => Ok(()),
        false => Err((reader.position, "unexpected data after the coupon fields")),
    }
}

/// Positive offer file coupon code, AI (8112).
fn check_coupon_positive_offer(bytes: &[u8]) -> Result<(), Failure> {
    if let Some(position) = bytes.iter().position(|byte| !byte.is_ascii_digit()) {
        return Err((position, "coupon code must be digits"));
    }
    let mut reader = CouponReader { bytes, position: 0 };
    if reader.digit("format code missing")? > 1 {
        return Err((0, "format code must be 0 or 1"));
    }
    let funder_length = reader.digit("funder identifier length indicator missing")?;
    if funder_length > 6 {
        return Err((1, "funder identifier length indicator must be 0 to 6"));
    }
    reader.skip(usize::from(funder_length) + 6, "funder identifier truncated")?;
    reader.skip(6, "offer code truncated")?;
    let serial_length = reader.digit("serial number length indicator missing")?;
    reader.skip(usize::from(serial_length) + 6, "serial number truncated")?;
    match reader.position == bytes.len() {
        true => Ok(()),
        false => Err((reader.position, "unexpected data after the serial number")),
    }
}

/// ISO 3166-1 numeric country codes, sorted.
pub(crate) const COUNTRY_NUMERIC_CODES: &[u16] = &[
    4, 8, 10, 12, 16, 20, 24, 28, 31, 32, 36, 40, 44, 48, 50, 51, 52, 56, 60, 64, 68, 70, 72, 74, 76, 84, 86, 90, 92,
    96, 100, 104, 108, 112, 116, 120, 124, 132, 136, 140, 144, 148, 152, 156, 158, 162, 166, 170, 174, 175, 178, 180,
    184, 188, 191, 192, 196, 203, 204, 208, 212, 214, 218, 222, 226, 231, 232, 233, 234, 238, 239, 242, 246, 248, 250,
    254, 258, 260, 262, 266, 268, 270, 275, 276, 288, 292, 296, 300, 304, 308, 312, 316, 320, 324, 328, 332, 334, 336,
    340, 344, 348, 352, 356, 360, 364, 368, 372, 376, 380, 384, 388, 392, 398, 400, 404, 408, 410, 414, 417, 418, 422,
    426, 428, 430, 434, 438, 440, 442, 446, 450, 454, 458, 462, 466, 470, 474, 478, 480, 484, 492, 496, 498, 499, 500,
    504, 508, 512, 516, 520, 524, 528, 531, 533, 534, 535, 540, 548, 554, 558, 562, 566, 570, 574, 578, 580, 581, 583,
    584, 585, 586, 591, 598, 600, 604, 608, 612, 616, 620, 624, 626, 630, 634, 638, 642, 643, 646, 652, 654, 659, 660,
    662, 663, 666, 670, 674, 678, 682, 686, 688, 690, 694, 702, 703, 704, 705, 706, 710, 716, 724, 728, 729, 732, 740,
    744, 748, 752, 756, 760, 762, 764, 768, 772, 776, 780, 784, 788, 792, 795, 796, 798, 800, 804, 807, 818, 826, 831,
    832, 833, 834, 840, 850, 854, 858, 860, 862, 876, 882, 887, 894,
];

/// ISO 3166-1 alpha-2 country codes, sorted.
pub(crate) const COUNTRY_ALPHA2_CODES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD",
    "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA",
    "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE",
    "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA",
    "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK",
    "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT",
    "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS",
    "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST",
    "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA",
    "ZM", "ZW",
];

/// ISO 4217 numeric currency codes, sorted.
pub(crate) const CURRENCY_NUMERIC_CODES: &[u16] = &[
    8, 12, 32, 36, 44, 48, 50, 51, 52, 60, 64, 68, 72, 84, 90, 96, 104, 108, 116, 124, 132, 136, 144, 152, 156, 170,
    174, 188, 191, 192, 203, 208, 214, 222, 230, 232, 238, 242, 262, 270, 292, 320, 324, 328, 332, 340, 344, 348, 352,
    356, 360, 364, 368, 376, 388, 392, 398, 400, 404, 408, 410, 414, 417, 418, 422, 426, 430, 434, 446, 454, 458, 462,
    480, 484, 496, 498, 504, 512, 516, 524, 532, 533, 548, 554, 558, 566, 578, 586, 590, 598, 600, 604, 608, 634, 643,
    646, 654, 682, 690, 694, 702, 704, 706, 710, 728, 748, 752, 756, 760, 764, 776, 780, 784, 788, 800, 807, 818, 826,
    834, 840, 858, 860, 882, 886, 901, 924, 925, 927, 928, 929, 930, 931, 932, 933, 934, 936, 938, 940, 941, 943, 944,
    946, 947, 948, 949, 950, 951, 952, 953, 955, 956, 957, 958, 959, 960, 961, 962, 963, 964, 965, 967, 968, 969, 970,
    971, 972, 973, 975, 976, 977, 978, 979, 980, 981, 984, 985, 986, 990, 994, 997, 999,
];

/// PackageTypeCode (UN/ECE Recommendation 21 with GS1 additions), sorted by byte order.
pub(crate) const PACKAGE_TYPE_CODES: &[&str] = &[
    "1A", "1B", "1D", "1F", "1G", "1W", "200", "201", "202", "203", "204", "205", "206", "210", "211", "212", "2C",
    "3A", "3H", "43", "44", "4A", "4B", "4C", "4D", "4F", "4G", "4H", "5H", "5L", "5M", "6H", "6P", "7A", "7B", "8",
    "8A", "8B", "8C", "9", "AA", "AB", "AC", "AD", "AF", "AG", "AH", "AI", "AJ", "AL", "AM", "AP", "APE", "AT", "AV",
    "B4", "BB", "BC", "BD", "BE", "BF", "BG", "BGE", "BH", "BI", "BJ", "BK", "BL", "BM", "BME", "BN", "BO", "BP", "BQ",
    "BR", "BRI", "BS", "BT", "BU", "BV", "BW", "BX", "BY", "BZ", "CA", "CB", "CBL", "CC", "CCE", "CD", "CE", "CF",
    "CG", "CH", "CI", "CJ", "CK", "CL", "CM", "CN", "CO", "CP", "CQ", "CR", "CS", "CT", "CU", "CV", "CW", "CX", "CY",
    "CZ", "DA", "DB", "DC", "DG", "DH", "DI", "DJ", "DK", "DL", "DM", "DN", "DP", "DPE", "DR", "DS", "DT", "DU", "DV",
    "DW", "DX", "DY", "E1", "E2", "E3", "EC", "ED", "EE", "EF", "EG", "EH", "EI", "EN", "FB", "FC", "FD", "FE", "FI",
    "FL", "FO", "FOB", "FP", "FPE", "FR", "FT", "FW", "FX", "GB", "GI", "GL", "GR", "GU", "GY", "GZ", "HA", "HB", "HC",
    "HG", "HN", "HR", "IA", "IB", "IC", "ID", "IE", "IF", "IG", "IH", "IK", "IL", "IN", "IZ", "JB", "JC", "JG", "JR",
    "JT", "JY", "KG", "KI", "LAB", "LE", "LG", "LT", "LU", "LV", "LZ", "MA", "MB", "MC", "ME", "MPE", "MR", "MS", "MT",
    "MW", "MX", "NA", "NE", "NF", "NG", "NS", "NT", "NU", "NV", "OA", "OB", "OC", "OD", "OE", "OF", "OK", "OPE", "OT",
    "OU", "P2", "PA", "PAE", "PB", "PC", "PD", "PE", "PF", "PG", "PH", "PI", "PJ", "PK", "PL", "PLP", "PN", "PO",
    "POP", "PP", "PPE", "PR", "PT", "PU", "PUE", "PV", "PX", "PY", "PZ", "QA", "QB", "QC", "QD", "QF", "QG", "QH",
    "QJ", "QK", "QL", "QM", "QN", "QP", "QQ", "QR", "QS", "RB1", "RB2", "RB3", "RCB", "RD", "RG", "RJ", "RK", "RL",
    "RO", "RT", "RZ", "S1", "SA", "SB", "SC", "SD", "SE", "SEC", "SH", "SI", "SK", "SL", "SM", "SO", "SP", "SS", "ST",
    "STL", "SU", "SV", "SW", "SX", "SY", "SZ", "T1", "TB", "TC", "TD", "TE", "TEV", "TG", "THE", "TI", "TK", "TL",
    "TN", "TO", "TR", "TRE", "TS", "TT", "TTE", "TU", "TV", "TW", "TWE", "TY", "TZ", "UC", "UN", "UUE", "VA", "VG",
    "VI", "VK", "VL", "VN", "VO", "VP", "VQ", "VR", "VS", "VY", "WA", "WB", "WC", "WD", "WF", "WG", "WH", "WJ", "WK",
    "WL", "WM", "WN", "WP", "WQ", "WR", "WRP", "WS", "WT", "WU", "WV", "WW", "WX", "WY", "WZ", "X11", "X12", "X15",
    "X16", "X17", "X18", "X19", "X20", "X3", "XA", "XB", "XC", "XD", "XF", "XG", "XH", "XJ", "XK", "YA", "YB", "YC",
    "YD", "YF", "YG", "YH", "YJ", "YK", "YL", "YM", "YN", "YP", "YQ", "YR", "YS", "YT", "YV", "YW", "YX", "YY", "YZ",
    "ZA", "ZB", "ZC", "ZD", "ZF", "ZG", "ZH", "ZJ", "ZK", "ZL", "ZM", "ZN", "ZP", "ZQ", "ZR", "ZS", "ZT", "ZU", "ZV",
    "ZW", "ZX", "ZY", "ZZ",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn check(linter: Linter, input: &str, expected: Result<(), &str>) {
        let actual = lint(linter, input).map_err(|error| error.to_string());
        assert_eq!(actual, expected.map_err(str::to_owned), "{linter} {input:?}");
    }

    #[test]
    fn code_lists_are_sorted_for_binary_search() {
        assert!(COUNTRY_NUMERIC_CODES.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(COUNTRY_ALPHA2_CODES.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(CURRENCY_NUMERIC_CODES.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(PACKAGE_TYPE_CODES.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(COUNTRY_ALPHA2_CODES.len(), 249);
    }

    #[test]
    fn check_character_pairs() {
        for valid in ["22", "!22", "1987654Ad4X4bL5ttr2310c2K", "12345678901234567890123NT", "12345_!\"%&'()*+,-./LC"] {
            check(Linter::CheckCharacterPair, valid, Ok(()));
        }
        check(
            Linter::CheckCharacterPair,
            "33",
            Err("check character pair at position 0 should be \"22\", found \"33\""),
        );
        check(
            Linter::CheckCharacterPair,
            "2",
            Err("csumalpha check failed at position 0: too short for a check character pair"),
        );
    }

    #[test]
    fn simple_linters() {
        check(Linter::CompanyPrefixAtPosition1, "0123", Ok(()));
        check(
            Linter::CompanyPrefixAtPosition1,
            "012A5",
            Err("gcppos1 check failed at position 3: a GS1 Company Prefix has digits only"),
        );
        check(Linter::CompanyPrefixAtPosition2, "A0123", Ok(()));
        check(Linter::HourMinute, "2359", Ok(()));
        check(Linter::HourMinute, "2400", Err("hhmi check failed at position 0: hour must be 00 to 23"));
        check(Linter::Iban, "GB82WEST12345698765432", Ok(()));
        check(
            Linter::Iban,
            "GB83WEST12345698765432",
            Err("iban check failed at position 2: IBAN check digits are wrong"),
        );
        check(Linter::CountryAlpha2, "NL", Ok(()));
        check(
            Linter::CountryAlpha2,
            "XX",
            Err("iso3166alpha2 check failed at position 0: not an ISO 3166 alpha-2 country code"),
        );
        check(Linter::CurrencyNumeric, "978", Ok(()));
        check(Linter::CountryNumericOr999, "999", Ok(()));
        check(Linter::PackageType, "PX", Ok(()));
        check(Linter::PackageType, "P", Err("packagetype check failed at position 0: not a PackageTypeCode"));
        check(Linter::PercentEncoded, "a%20b", Ok(()));
        check(
            Linter::PercentEncoded,
            "a%2",
            Err("pcenc check failed at position 1: '%' must be followed by two hex digits"),
        );
        check(Linter::PositionInSequence, "9/10", Ok(()));
        check(
            Linter::PositionInSequence,
            "10/9",
            Err("posinseqslash check failed at position 0: position exceeds the end"),
        );
        check(
            Linter::PositionInSequence,
            "01/2",
            Err("posinseqslash check failed at position 0: position must not be zero nor start with zero"),
        );
        check(Linter::MediaType, "80", Ok(()));
        check(
            Linter::MediaType,
            "11",
            Err("mediatype check failed at position 0: AIDC media type must be 01 to 10 or 80 to 99"),
        );
        check(Linter::NoZeroPrefix, "0", Ok(()));
        check(Linter::NoZeroPrefix, "012", Err("nozeroprefix check failed at position 0: must not start with a zero"));
        check(Linter::Latitude, "1800000000", Ok(()));
        check(
            Linter::Latitude,
            "1800000001",
            Err("latitude check failed at position 0: latitude must be at most 1800000000"),
        );
        check(Linter::ImporterIndex, "_", Ok(()));
        check(
            Linter::ImporterIndex,
            ".",
            Err("importeridx check failed at position 0: importer index must be one of 0-9 A-Z a-z - _"),
        );
    }

    #[test]
    fn coupons() {
        check(Linter::CouponCode, "012345612345611110123", Ok(()));
        check(
            Linter::CouponCode,
            "0123456123456111101230",
            Err("couponcode check failed at position 21: unexpected data after the coupon fields"),
        );
        check(
            Linter::CouponCode,
            "71234567890123",
            Err("couponcode check failed at position 0: company prefix length indicator must be 0 to 6"),
        );
        check(
            Linter::CouponCode,
            "01234561234561111012332512314261231",
            Err("couponcode check failed at position 29: expiration date is before the start date"),
        );
        check(Linter::CouponPositiveOffer, "001234561234560123456", Ok(()));
        check(
            Linter::CouponPositiveOffer,
            "0012345612345601234567",
            Err("couponposoffer check failed at position 21: unexpected data after the serial number"),
        );
    }
}
