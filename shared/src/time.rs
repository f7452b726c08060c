//! Timestamps on the wire: RFC 3339 in UTC, written the way chrono's own serde writes
//! them (`2026-11-28T02:09:21.123Z`: seconds always, a fraction of 3, 6 or 9 digits only
//! when there is one, `Z`).
//!
//! Rules: [`rfc3339`] is a `#[serde(with)]` module for the fields the visitor's widget
//! reads. It accepts any RFC 3339 time (`Z` or a numeric offset, a fraction of 1 to 9
//! digits) and refuses anything else with an error that names the text. It exists
//! so that the widget does not carry chrono's general parser and formatter (about
//! 25 KB of wasm); the stored and sent text is the same as before.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};

/// A time as RFC 3339 text in UTC (`Z`), fraction as chrono writes it.
pub fn format(t: &DateTime<Utc>) -> String {
    let n = t.naive_utc();
    let nanos = n.nanosecond();
    let frac = if nanos == 0 {
        String::new()
    } else if nanos.is_multiple_of(1_000_000) {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}Z",
        n.year(),
        n.month(),
        n.day(),
        n.hour(),
        n.minute(),
        n.second()
    )
}

/// Parses an RFC 3339 time (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`).
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-')
        && at(7, b'-')
        && (at(10, b'T') || at(10, b't'))
        && at(13, b':')
        && at(16, b':'))
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(5, 2)?, num(8, 2)?)?;
    let mut i = 19;
    let mut nanos = 0u32;
    if at(i, b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(i + 1, digits)? * 10u32.pow(9 - digits as u32);
        i += 1 + digits;
    }
    let time = date.and_hms_nano_opt(num(11, 2)?, num(14, 2)?, num(17, 2)?, nanos)?;
    let offset_secs = match b.get(i..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let utc = time.checked_sub_signed(TimeDelta::try_seconds(offset_secs)?)?;
    Some(DateTime::from_naive_utc_and_offset(utc, Utc))
}

/// `#[serde(with = "crate::time::rfc3339")]` for a `DateTime<Utc>` field.
pub mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("\"{text}\" is not an RFC 3339 time")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_what_people_write() {
        let t = |s| parse(s).map(|t| t.to_rfc3339());
        assert_eq!(
            t("2026-11-28T02:09:21Z"),
            Some("2026-11-28T02:09:21+00:00".into())
        );
        assert_eq!(
            t("2026-11-28T02:09:21.5+01:30"),
            Some("2026-11-28T00:39:21.500+00:00".into())
        );
        assert_eq!(
            t("2026-01-01T00:30:00-02:00"),
            Some("2026-01-01T02:30:00+00:00".into())
        );
        for bad in [
            "",
            "2026-11-28",
            "2026-11-28 02:09:21Z",
            "2026-11-28T02:09:21",
            "2026-11-28T02:09:21.Z",
            "2026-11-28T02:09:21.1234567890Z",
            "2026-02-30T02:09:21Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T02:09:21+24:00",
            "2026-11-28T02:09:21Zjunk",
            "2026-11-28T02:09:21+0100",
            "+026-11-28T02:09:21Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    proptest! {
        /// Writes what chrono's serde writes, and reads back what chrono reads.
        #[test]
        fn agrees_with_chrono(secs in 0i64..4_102_444_800, nanos in 0u32..1_000_000_000, pick in 0u8..4) {
            let nanos = match pick { 0 => 0, 1 => nanos / 1_000_000 * 1_000_000, 2 => nanos / 1_000 * 1_000, _ => nanos };
            let t = DateTime::from_timestamp(secs, nanos).expect("in range");
            let chrono_text = serde_json::to_string(&t).expect("json");
            prop_assert_eq!(format!("\"{}\"", format(&t)), chrono_text);
            prop_assert_eq!(parse(&format(&t)), Some(t));
            prop_assert_eq!(parse(&t.to_rfc3339()), Some(t));
        }
    }
}
