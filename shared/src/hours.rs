//! Business hours of a queue (SPEC §3.0).
//!
//! Rules:
//! - A queue with no hours configured is always open.
//! - Otherwise it is open at `now` when the local time falls inside one of the weekly
//!   windows `[from, to)` on that weekday. Windows may not cross midnight; write two.
//! - Local time comes from `time_zone`, an IANA name such as `Europe/Berlin` (daylight
//!   saving included); with no time zone, from the fixed `utc_offset_minutes`. An unknown
//!   time zone name is refused, naming it.
//! - For people, a day's windows are written "09:00-12:00, 13:00-17:00" ([`BusinessHours::day_text`],
//!   [`BusinessHours::set_day_text`]); an empty day is closed that day, and hours with
//!   no window on any day are always open.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};

/// One weekly opening window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningWindow {
    /// Day of the week, e.g. "Mon".
    pub day: Weekday,
    /// Opening time "HH:MM".
    pub from: String,
    /// Closing time "HH:MM" (exclusive); "24:00" for end of day.
    pub to: String,
}

/// A queue's business hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BusinessHours {
    /// IANA time zone, e.g. "Europe/Berlin"; empty means use `utc_offset_minutes`.
    #[serde(default)]
    pub time_zone: String,
    /// Fixed offset from UTC in minutes, used only without `time_zone`.
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// Weekly windows; empty means always open.
    #[serde(default)]
    pub windows: Vec<OpeningWindow>,
}

/// Parses "HH:MM" into minutes after midnight (0..=1440).
pub fn parse_hhmm(s: &str) -> Result<u32, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("time {s:?} is not HH:MM"))?;
    let h: u32 = h.parse().map_err(|_| format!("time {s:?} is not HH:MM"))?;
    let m: u32 = m.parse().map_err(|_| format!("time {s:?} is not HH:MM"))?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("time {s:?} is out of range"));
    }
    Ok(h * 60 + m)
}

impl BusinessHours {
    /// Checks every window; the error names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        crate::config::check_time_zone(&self.time_zone)?;
        if self.utc_offset_minutes.abs() > 14 * 60 {
            return Err(format!(
                "utc_offset_minutes {} is out of range",
                self.utc_offset_minutes
            ));
        }
        for w in &self.windows {
            let f = parse_hhmm(&w.from)?;
            let t = parse_hhmm(&w.to)?;
            if f >= t {
                return Err(format!(
                    "window {} {}-{} closes before it opens",
                    w.day, w.from, w.to
                ));
            }
        }
        Ok(())
    }

    /// A day's windows as people write them: "09:00-12:00, 13:00-17:00"; "" when the
    /// queue is closed that day.
    pub fn day_text(&self, day: Weekday) -> String {
        self.windows
            .iter()
            .filter(|w| w.day == day)
            .map(|w| format!("{}-{}", w.from, w.to))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Replaces a day's windows with those written in `text` (the form of
    /// [`Self::day_text`]; an en dash works too; empty: closed that day). Bad text is
    /// refused with an error naming the part, and nothing changes.
    pub fn set_day_text(&mut self, day: Weekday, text: &str) -> Result<(), String> {
        let mut new = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (from, to) = part
                .split_once('-')
                .or_else(|| part.split_once('\u{2013}'))
                .ok_or_else(|| format!("{part:?} is not a window like 09:00-17:00"))?;
            let (from, to) = (from.trim(), to.trim());
            if parse_hhmm(from)? >= parse_hhmm(to)? {
                return Err(format!("window {part:?} closes before it opens"));
            }
            new.push(OpeningWindow {
                day,
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        self.windows.retain(|w| w.day != day);
        self.windows.extend(new);
        self.windows.sort_by_key(|w| {
            (
                w.day.num_days_from_monday(),
                parse_hhmm(&w.from).unwrap_or(0),
            )
        });
        Ok(())
    }

    /// Whether the queue is open at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let (weekday, minute) = match self.time_zone.parse::<chrono_tz::Tz>() {
            Ok(tz) => {
                let local = now.with_timezone(&tz);
                (local.weekday(), local.hour() * 60 + local.minute())
            }
            Err(_) => {
                let local = now + Duration::minutes(i64::from(self.utc_offset_minutes));
                (local.weekday(), local.hour() * 60 + local.minute())
            }
        };
        self.windows.iter().any(|w| {
            w.day == weekday
                && matches!((parse_hhmm(&w.from), parse_hhmm(&w.to)), (Ok(f), Ok(t)) if f <= minute && minute < t)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn open_inside_window_in_local_time() {
        let h = BusinessHours {
            time_zone: "Europe/Berlin".into(),
            utc_offset_minutes: 60,
            windows: vec![OpeningWindow {
                day: Weekday::Thu,
                from: "09:00".into(),
                to: "17:00".into(),
            }],
        };
        // 2026-11-26 is a Thursday.
        let at = |h, m| Utc.with_ymd_and_hms(2026, 11, 26, h, m, 0).unwrap();
        assert!(!h.is_open(at(7, 59)));
        assert!(h.is_open(at(8, 0)));
        assert!(h.is_open(at(15, 59)));
        assert!(!h.is_open(at(16, 0)));
        assert!(BusinessHours::default().is_open(at(3, 0)));
    }

    #[test]
    fn time_zone_follows_daylight_saving() {
        let h = BusinessHours {
            time_zone: "Europe/Berlin".into(),
            utc_offset_minutes: 0,
            windows: vec![
                OpeningWindow {
                    day: Weekday::Thu,
                    from: "09:00".into(),
                    to: "17:00".into(),
                },
                OpeningWindow {
                    day: Weekday::Wed,
                    from: "09:00".into(),
                    to: "17:00".into(),
                },
            ],
        };
        // Winter (CET, UTC+1): 08:00 UTC is 09:00 local.
        assert!(h.is_open(Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap()));
        assert!(!h.is_open(Utc.with_ymd_and_hms(2026, 11, 26, 7, 59, 0).unwrap()));
        // Summer (CEST, UTC+2): 07:00 UTC is 09:00 local.
        assert!(h.is_open(Utc.with_ymd_and_hms(2026, 7, 1, 7, 0, 0).unwrap()));
        assert!(!h.is_open(Utc.with_ymd_and_hms(2026, 7, 1, 15, 0, 0).unwrap()));
        let bad = BusinessHours {
            time_zone: "Mars/Olympus".into(),
            ..h
        };
        assert!(bad.validate().unwrap_err().contains("Mars/Olympus"));
    }

    #[test]
    fn a_day_as_people_write_it() {
        let mut h = BusinessHours::default();
        h.set_day_text(Weekday::Tue, " 13:00-17:00 , 09:00\u{2013}12:00")
            .unwrap();
        h.set_day_text(Weekday::Mon, "08:00-16:00").unwrap();
        assert_eq!(h.day_text(Weekday::Tue), "09:00-12:00, 13:00-17:00");
        assert_eq!(h.day_text(Weekday::Mon), "08:00-16:00");
        assert_eq!(h.windows[0].day, Weekday::Mon, "kept in week order");
        assert_eq!(h.day_text(Weekday::Sun), "");
        let before = h.clone();
        for (bad, names) in [
            ("9-17", "not HH:MM"),
            ("09:00", "not a window"),
            ("17:00-09:00", "closes before it opens"),
            ("09:00-25:00", "out of range"),
        ] {
            let e = h.set_day_text(Weekday::Mon, bad).unwrap_err();
            assert!(e.contains(names), "{bad}: {e}");
            assert_eq!(h, before, "{bad} changed nothing");
        }
        h.set_day_text(Weekday::Tue, "").unwrap();
        assert_eq!(h.day_text(Weekday::Tue), "", "closed that day");
        assert!(h.validate().is_ok());
    }

    #[test]
    fn validation_names_problem() {
        assert!(parse_hhmm("25:00").is_err());
        assert!(parse_hhmm("9").is_err());
        let h = BusinessHours {
            windows: vec![OpeningWindow {
                day: Weekday::Mon,
                from: "10:00".into(),
                to: "09:00".into(),
            }],
            ..Default::default()
        };
        assert!(h.validate().unwrap_err().contains("closes before it opens"));
    }
}
