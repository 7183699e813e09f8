//! Time stamps (`xsd:dateTimeStamp`: a date, a time and a mandatory offset) and time-zone
//! offsets (`+HH:MM`, from -14:00 to +14:00).

use std::fmt;
use std::str::FromStr;

/// An instant, parsed from an `xsd:dateTimeStamp`. Stored in UTC; the offset of the text is
/// the business of `eventTimeZoneOffset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(jiff::Timestamp);

/// Why a text is not a time stamp or an offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "{text:?} is not a date-time with a time-zone offset (rule: xsd:dateTimeStamp, YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm))"
    )]
    DateTime { text: String },
    #[error("{text:?} is not a time-zone offset (rule: +hh:mm or -hh:mm between -14:00 and +14:00)")]
    Offset { text: String },
}

impl Timestamp {
    /// Parses an `xsd:dateTimeStamp` strictly: `T` separator, seconds present, offset present.
    pub fn parse(text: &str) -> Result<Timestamp, TimeError> {
        let error = || TimeError::DateTime { text: text.to_owned() };
        let bytes = text.as_bytes();
        let digit = |index: usize| bytes.get(index).is_some_and(u8::is_ascii_digit);
        let layout_ok = bytes.len() >= 17
            && (0..4).all(digit)
            && bytes[4] == b'-'
            && digit(5)
            && digit(6)
            && bytes[7] == b'-'
            && digit(8)
            && digit(9)
            && bytes[10] == b'T'
            && digit(11)
            && digit(12)
            && bytes[13] == b':'
            && digit(14)
            && digit(15);
        if !layout_ok {
            return Err(error());
        }
        // Seconds may be left out (`13:00Z`), as some producers do; they count as zero.
        let has_seconds = bytes[16] == b':' && digit(17) && digit(18);
        let mut index = if has_seconds { 19 } else { 16 };
        if has_seconds && bytes.get(index) == Some(&b'.') {
            index += 1;
            let start = index;
            while digit(index) {
                index += 1;
            }
            if index == start {
                return Err(error());
            }
        }
        let offset = &text[index..];
        if offset != "Z" && TimeZoneOffset::parse(offset).is_err() {
            return Err(error());
        }
        let full = match has_seconds {
            true => text.to_owned(),
            false => format!("{}:00{}", &text[..16], &text[16..]),
        };
        jiff::Timestamp::from_str(&full).map(Timestamp).map_err(|_| error())
    }

    pub fn from_jiff(timestamp: jiff::Timestamp) -> Timestamp {
        Timestamp(timestamp)
    }

    pub fn to_jiff(self) -> jiff::Timestamp {
        self.0
    }

    /// Milliseconds since the Unix epoch, rounded half up (the event hash precision).
    pub fn milliseconds_rounded(self) -> i128 {
        let nanoseconds = self.0.as_nanosecond();
        (nanoseconds + 500_000).div_euclid(1_000_000)
    }

    /// UTC with exactly three decimals, rounded half up: `2023-01-18T11:04:03.142Z`.
    pub fn hash_form(self) -> String {
        let milliseconds = self.milliseconds_rounded();
        let rounded = i64::try_from(milliseconds)
            .ok()
            .and_then(|milliseconds| jiff::Timestamp::from_millisecond(milliseconds).ok())
            .unwrap_or(self.0);
        format!("{rounded:.3}")
    }
}

impl fmt::Display for Timestamp {
    /// UTC, `Z`, with the fraction only when there is one.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// A time-zone offset in minutes east of UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeZoneOffset {
    minutes: i16,
}

/// The largest offset, 14 hours, in minutes.
pub const OFFSET_MAXIMUM_MINUTES: i16 = 14 * 60;

impl TimeZoneOffset {
    pub fn parse(text: &str) -> Result<TimeZoneOffset, TimeError> {
        let error = || TimeError::Offset { text: text.to_owned() };
        let bytes = text.as_bytes();
        if bytes.len() != 6 || bytes[3] != b':' {
            return Err(error());
        }
        let sign = match bytes[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(error()),
        };
        let two_digits = |slice: &[u8]| -> Option<i16> {
            match slice {
                [tens @ b'0'..=b'9', ones @ b'0'..=b'9'] => Some(i16::from(tens - b'0') * 10 + i16::from(ones - b'0')),
                _ => None,
            }
        };
        let hours = two_digits(&bytes[1..3]).ok_or_else(error)?;
        let minutes = two_digits(&bytes[4..6]).ok_or_else(error)?;
        let total = hours * 60 + minutes;
        if minutes >= 60 || total > OFFSET_MAXIMUM_MINUTES {
            return Err(error());
        }
        Ok(TimeZoneOffset { minutes: sign * total })
    }

    pub fn from_minutes(minutes: i16) -> Option<TimeZoneOffset> {
        (minutes.abs() <= OFFSET_MAXIMUM_MINUTES).then_some(TimeZoneOffset { minutes })
    }

    pub fn minutes(self) -> i16 {
        self.minutes
    }
}

impl fmt::Display for TimeZoneOffset {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minutes < 0 { '-' } else { '+' };
        let absolute = self.minutes.abs();
        write!(formatter, "{sign}{:02}:{:02}", absolute / 60, absolute % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let actual = match Timestamp::parse(input) {
            Ok(timestamp) => format!("{timestamp} {}", timestamp.hash_form()),
            Err(_) => "error".to_owned(),
        };
        assert_eq!(actual, expected, "input {input}");
    }

    #[test]
    fn timestamps() {
        check("2020-03-04T11:00:30.000+01:00", "2020-03-04T10:00:30Z 2020-03-04T10:00:30.000Z");
        check("2023-02-02T12:04:03.1415+01:00", "2023-02-02T11:04:03.1415Z 2023-02-02T11:04:03.142Z");
        check("2019-04-02T13:59:59.9996Z", "2019-04-02T13:59:59.9996Z 2019-04-02T14:00:00.000Z");
        check("2013-06-08T14:58:56.591", "error");
        check("2013-06-08 14:58:56Z", "error");
        check("2013-06-08T14:58Z", "2013-06-08T14:58:00Z 2013-06-08T14:58:00.000Z");
        check("2013-06-08T14:58.5Z", "error");
        check("2013-13-08T14:58:56Z", "error");
        check("", "error");
    }

    #[test]
    fn offsets() {
        let check_offset = |input: &str, expected: &str| {
            let actual =
                TimeZoneOffset::parse(input).map(|offset| offset.to_string()).unwrap_or_else(|_| "error".to_owned());
            assert_eq!(actual, expected, "input {input}");
        };
        check_offset("+01:00", "+01:00");
        check_offset("-06:00", "-06:00");
        check_offset("+14:00", "+14:00");
        check_offset("+14:01", "error");
        check_offset("+1:00", "error");
        check_offset("Z", "error");
        check_offset("+05:60", "error");
    }
}
