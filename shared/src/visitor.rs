//! What agents see about a visitor besides the chat: the pages of this visit, the
//! browser and the visitor's time zone (the customer context panel).
//!
//! Rules:
//! - The widget reports a page (`url`, `title`, `time_zone`) when the chat starts or
//!   resumes and whenever the embedding page changes ([`check_page`] refuses, naming
//!   the field: a URL that is not `http(s)://` or longer than [`MAX_URL_CHARS`], a title
//!   longer than [`MAX_TITLE_CHARS`], control characters, a time zone that is not an
//!   IANA-like name).
//! - A page equal to the last one is not repeated; at most [`MAX_PAGES`] are kept, the
//!   oldest dropped first ([`VisitorInfo::record`]).
//! - The browser is named from the `User-Agent` of the visitor's socket
//!   ([`browser_of`]): a label for people, not an identifier.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest page URL kept.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest page title kept.
pub const MAX_TITLE_CHARS: usize = 300;
/// Most pages kept per conversation.
pub const MAX_PAGES: usize = 30;

/// One page the visitor saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageVisit {
    pub url: String,
    pub title: String,
    pub at: DateTime<Utc>,
}

/// What agents see about the visitor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorInfo {
    /// Oldest first; the last is the page the visitor is on.
    pub pages: Vec<PageVisit>,
    /// E.g. "Chrome 131 · Windows".
    pub browser: String,
    /// IANA name, e.g. "Europe/Berlin".
    pub time_zone: String,
}

/// Why a page report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("url must start with http:// or https:// and have at most {MAX_URL_CHARS} characters")]
    Url,
    #[error("title must have at most {MAX_TITLE_CHARS} characters and no control characters")]
    Title,
    #[error("time_zone must be an IANA name like Europe/Berlin")]
    TimeZone,
}

/// Checks a page report (see module docs).
pub fn check_page(url: &str, title: &str, time_zone: &str) -> Result<(), PageError> {
    let url_ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.chars().count() <= MAX_URL_CHARS
        && !url.chars().any(|c| c.is_control() || c.is_whitespace());
    if !url_ok {
        return Err(PageError::Url);
    }
    if title.chars().count() > MAX_TITLE_CHARS || title.chars().any(char::is_control) {
        return Err(PageError::Title);
    }
    let tz_ok = time_zone.len() <= 64
        && time_zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-/".contains(&b));
    if !tz_ok {
        return Err(PageError::TimeZone);
    }
    Ok(())
}

impl VisitorInfo {
    /// Records a checked page at `at`; `false` when it repeats the last one.
    pub fn record(&mut self, url: &str, title: &str, time_zone: &str, at: DateTime<Utc>) -> bool {
        if !time_zone.is_empty() {
            self.time_zone = time_zone.to_owned();
        }
        if self
            .pages
            .last()
            .is_some_and(|p| p.url == url && p.title == title)
        {
            return false;
        }
        self.pages.push(PageVisit {
            url: url.to_owned(),
            title: title.to_owned(),
            at,
        });
        if self.pages.len() > MAX_PAGES {
            let extra = self.pages.len() - MAX_PAGES;
            self.pages.drain(..extra);
        }
        true
    }
}

/// A label for a `User-Agent`: browser and major version, and the system.
pub fn browser_of(user_agent: &str) -> String {
    let version = |key: &str| -> Option<String> {
        let rest = &user_agent[user_agent.find(key)? + key.len()..];
        let v: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (!v.is_empty()).then_some(v)
    };
    let browser = if let Some(v) = version("Edg/") {
        format!("Edge {v}")
    } else if let Some(v) = version("OPR/") {
        format!("Opera {v}")
    } else if let Some(v) = version("Firefox/") {
        format!("Firefox {v}")
    } else if let Some(v) = version("Chrome/") {
        format!("Chrome {v}")
    } else if let (true, Some(v)) = (user_agent.contains("Safari/"), version("Version/")) {
        format!("Safari {v}")
    } else {
        "Unknown browser".into()
    };
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(k, _)| user_agent.contains(k))
    .map(|(_, v)| *v);
    match system {
        Some(s) => format!("{browser} · {s}"),
        None => browser,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_checked() {
        assert!(check_page("https://shop.example/a?b=1", "Shop", "Europe/Berlin").is_ok());
        assert_eq!(
            check_page("javascript:alert(1)", "", ""),
            Err(PageError::Url)
        );
        assert_eq!(check_page("https://a b", "", ""), Err(PageError::Url));
        assert_eq!(check_page("https://x", "a\u{7}", ""), Err(PageError::Title));
        assert_eq!(
            check_page("https://x", &"t".repeat(301), ""),
            Err(PageError::Title)
        );
        assert_eq!(
            check_page("https://x", "", "Europe/Berlin; x"),
            Err(PageError::TimeZone)
        );
    }

    #[test]
    fn pages_are_kept_once_and_bounded() {
        let at = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        let mut v = VisitorInfo::default();
        assert!(v.record("https://x/1", "One", "Europe/Berlin", at));
        assert!(
            !v.record("https://x/1", "One", "", at),
            "a repeat is not kept"
        );
        assert_eq!(v.time_zone, "Europe/Berlin");
        for i in 0..40 {
            v.record(&format!("https://x/p{i}"), "", "", at);
        }
        assert_eq!(v.pages.len(), MAX_PAGES);
        assert_eq!(v.pages.last().unwrap().url, "https://x/p39");
    }

    #[test]
    fn browsers_are_named() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(browser_of(chrome), "Chrome 131 · Windows");
        let ff = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(browser_of(ff), "Firefox 128 · Linux");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(browser_of(safari), "Safari 17 · iOS");
        assert_eq!(browser_of(""), "Unknown browser");
    }
}
