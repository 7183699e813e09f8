//! GS1 dates: `YYMMDD` with the century rule, and `DD = 00` meaning the last day of the month
//! (GS1 General Specifications §7.12).

use std::fmt;

/// A day of the proleptic Gregorian calendar. Always valid: built by [`CalendarDate::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CalendarDate {
    year: i32,
    month: u8,
    day: u8,
}

impl CalendarDate {
    /// The date, if `month` is 1-12 and `day` exists in that month.
    pub fn new(year: i32, month: u8, day: u8) -> Option<CalendarDate> {
        let valid = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
        valid.then_some(CalendarDate { year, month, day })
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    pub fn day(self) -> u8 {
        self.day
    }
}

impl fmt::Display for CalendarDate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

pub(crate) fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1-12) of `year`.
pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The full year of a two-digit year `year_in_century` (0-99), taken within -49..+50 years of
/// `current_year` (the GS1 century rule).
pub fn resolve_two_digit_year(year_in_century: u8, current_year: i32) -> i32 {
    debug_assert!(year_in_century <= 99);
    let century = current_year.div_euclid(100) * 100;
    let difference = i32::from(year_in_century) - current_year.rem_euclid(100);
    if difference >= 51 {
        century - 100 + i32::from(year_in_century)
    } else if difference <= -50 {
        century + 100 + i32::from(year_in_century)
    } else {
        century + i32::from(year_in_century)
    }
}

/// Why a GS1 date is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("a date must be {expected} digits, found {found:?}")]
    Malformed { expected: &'static str, found: String },
    #[error("month must be 01 to 12, found {month:02}")]
    Month { month: u8 },
    #[error("day {day:02} does not exist in {year:04}-{month:02}")]
    Day { year: i32, month: u8, day: u8 },
}

fn two_digits(bytes: &[u8]) -> u8 {
    (bytes[0] - b'0') * 10 + (bytes[1] - b'0')
}

/// Parses a GS1 `YYMMDD` date. `DD = 00` means the last day of the month. The century comes
/// from the century rule relative to `today`.
pub fn parse_yymmdd(text: &str, today: CalendarDate) -> Result<CalendarDate, DateError> {
    let bytes = text.as_bytes();
    if bytes.len() != 6 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(DateError::Malformed { expected: "YYMMDD, 6", found: text.to_owned() });
    }
    let year = resolve_two_digit_year(two_digits(&bytes[0..2]), today.year);
    let month = two_digits(&bytes[2..4]);
    let day = two_digits(&bytes[4..6]);
    if !(1..=12).contains(&month) {
        return Err(DateError::Month { month });
    }
    let day = if day == 0 { days_in_month(year, month) } else { day };
    CalendarDate::new(year, month, day).ok_or(DateError::Day { year, month, day })
}

/// Parses a GS1 `YYYYMMDD` date (no day zero).
pub fn parse_yyyymmdd(text: &str) -> Result<CalendarDate, DateError> {
    let bytes = text.as_bytes();
    if bytes.len() != 8 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(DateError::Malformed { expected: "YYYYMMDD, 8", found: text.to_owned() });
    }
    let year = i32::from(two_digits(&bytes[0..2])) * 100 + i32::from(two_digits(&bytes[2..4]));
    let month = two_digits(&bytes[4..6]);
    let day = two_digits(&bytes[6..8]);
    if !(1..=12).contains(&month) {
        return Err(DateError::Month { month });
    }
    CalendarDate::new(year, month, day).ok_or(DateError::Day { year, month, day })
}

/// The `yymmd0` / `yymmdd` linters. Without a century the leap year is taken as `YY % 4 == 0`,
/// which holds for every year the century rule can give until 2050.
pub(crate) fn check_yymmdd(bytes: &[u8], day_zero_allowed: bool) -> Result<(), (usize, &'static str)> {
    if bytes.len() != 6 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err((0, "date must be YYMMDD"));
    }
    let year_in_century = two_digits(&bytes[0..2]);
    let month = two_digits(&bytes[2..4]);
    let day = two_digits(&bytes[4..6]);
    if !(1..=12).contains(&month) {
        return Err((2, "month must be 01 to 12"));
    }
    if day == 0 && day_zero_allowed {
        return Ok(());
    }
    let year = 2000 + i32::from(year_in_century);
    match day >= 1 && day <= days_in_month(year, month) {
        true => Ok(()),
        false => Err((4, "day is not in the month")),
    }
}

pub(crate) fn check_yyyymmdd(bytes: &[u8]) -> Result<(), (usize, &'static str)> {
    let text = std::str::from_utf8(bytes).unwrap_or("");
    match parse_yyyymmdd(text) {
        Ok(_) => Ok(()),
        Err(DateError::Malformed { .. }) => Err((0, "date must be YYYYMMDD")),
        Err(DateError::Month { .. }) => Err((4, "month must be 01 to 12")),
        Err(DateError::Day { .. }) => Err((6, "day is not in the month")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: i32, month: u8, day: u8) -> CalendarDate {
        CalendarDate::new(year, month, day).unwrap()
    }

    fn check(text: &str, today: CalendarDate, expected: Result<&str, &str>) {
        let actual = parse_yymmdd(text, today).map(|date| date.to_string()).map_err(|error| error.to_string());
        assert_eq!(actual, expected.map(str::to_owned).map_err(str::to_owned), "{text}");
    }

    #[test]
    fn century_rule_keeps_years_within_minus_49_plus_50() {
        let today = date(2026, 6, 15);
        check("261231", today, Ok("2026-12-31"));
        check("760101", today, Ok("2076-01-01"));
        check("770101", today, Ok("1977-01-01"));
        check("000229", today, Ok("2000-02-29"));
        assert_eq!(resolve_two_digit_year(49, 1999), 2049);
        assert_eq!(resolve_two_digit_year(50, 1999), 1950);
        assert_eq!(resolve_two_digit_year(49, 2099), 2149);
        assert_eq!(resolve_two_digit_year(48, 2099), 2048 + 100);
        assert_eq!(resolve_two_digit_year(50, 2099), 2050);
        assert_eq!(resolve_two_digit_year(49, 2100), 2149);
        assert_eq!(resolve_two_digit_year(51, 2100), 2051);
    }

    #[test]
    fn day_zero_is_the_last_day_of_the_month() {
        let today = date(2026, 1, 1);
        check("260200", today, Ok("2026-02-28"));
        check("280200", today, Ok("2028-02-29"));
        check("260400", today, Ok("2026-04-30"));
        check("261300", today, Err("month must be 01 to 12, found 13"));
        check("260230", today, Err("day 30 does not exist in 2026-02"));
        check("26023", today, Err("a date must be YYMMDD, 6 digits, found \"26023\""));
    }

    #[test]
    fn full_dates() {
        assert_eq!(parse_yyyymmdd("19991231").unwrap(), date(1999, 12, 31));
        assert!(parse_yyyymmdd("19000229").is_err());
        assert!(parse_yyyymmdd("20000229").is_ok());
    }
}
