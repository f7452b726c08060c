//! Export of closed conversations (admin): NDJSON or CSV for a range of end times.
//!
//! Rules:
//! - The range is `[from, to)` on the time a conversation ended; bounds are a date
//!   (`2026-11-27`, midnight UTC) or an RFC 3339 time ([`parse_bound`]); `from` must
//!   be before `to`.
//! - NDJSON: one closed record (the admin API's JSON) per line.
//! - CSV (RFC 4180): [`CSV_HEADER`], then one row per record ([`csv_row`]); fields with
//!   a comma, quote or line break are quoted; a field that a spreadsheet would run
//!   as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'`.

use crate::engine::{ClosedConversation, ConversationKind, EndedBy};
use chrono::{DateTime, NaiveDate, Utc};

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

impl Format {
    /// From the `format` query parameter (empty means NDJSON).
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "" | "ndjson" => Ok(Format::Ndjson),
            "csv" => Ok(Format::Csv),
            _ => Err(format!("format={s:?} must be ndjson or csv")),
        }
    }
    /// The response's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
    /// The download's file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
        }
    }
}

/// A range bound: `YYYY-MM-DD` (midnight UTC) or RFC 3339; the error names `name`.
pub fn parse_bound(name: &str, s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{name}={s:?} is not a date like 2026-11-27 or an RFC 3339 time"))
}

/// Checks a range: both bounds given, `from` before `to`.
pub fn check_range(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), String> {
    if from >= to {
        return Err(format!("from ({from}) must be before to ({to})"));
    }
    Ok(())
}

/// The CSV header line (with its line break).
pub const CSV_HEADER: &str = "id,kind,site,queue,customer_name,customer_email,verified_user_id,agents,created_at,answered_at,ended_at,ended_by,wait_secs,handle_secs,wrap_up_reasons,rating,rating_comment,message\r\n";

fn field(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// One CSV row (with its line break).
pub fn csv_row(c: &ClosedConversation) -> String {
    let t = |d: &DateTime<Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ended_by = match &c.ended_by {
        None => String::new(),
        Some(EndedBy::Agent(a)) => format!("agent:{a}"),
        Some(EndedBy::Customer) => "customer".into(),
        Some(EndedBy::Inactivity) => "inactivity".into(),
        Some(EndedBy::MaxWait) => "max_wait".into(),
        Some(EndedBy::Staff) => "agent".into(),
    };
    let cols = [
        c.id.to_string(),
        match c.kind {
            ConversationKind::Chat => "chat".into(),
            ConversationKind::LeftMessage => "left_message".into(),
        },
        c.site.to_string(),
        c.queue_history
            .last()
            .map(|q| q.queue.to_string())
            .unwrap_or_default(),
        c.customer.name.clone(),
        c.customer.email.clone().unwrap_or_default(),
        c.customer.verified_user_id.clone().unwrap_or_default(),
        c.agents
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        t(&c.created_at),
        c.answered_at.as_ref().map(t).unwrap_or_default(),
        t(&c.ended_at),
        ended_by,
        c.wait_secs.to_string(),
        c.handle_secs.to_string(),
        c.wrap_ups
            .iter()
            .map(|w| w.reason.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        c.rating
            .as_ref()
            .map(|r| r.score.to_string())
            .unwrap_or_default(),
        c.rating
            .as_ref()
            .and_then(|r| r.comment.clone())
            .unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ];
    let mut line = cols.iter().map(|s| field(s)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Customer;
    use crate::ids::{ConversationId, SiteKey};

    #[test]
    fn bounds() {
        assert_eq!(
            parse_bound("from", "2026-11-27").unwrap().to_rfc3339(),
            "2026-11-27T00:00:00+00:00"
        );
        assert!(parse_bound("from", "2026-11-27T10:00:00+01:00").is_ok());
        assert!(parse_bound("to", "yesterday").unwrap_err().contains("to="));
        let a = parse_bound("from", "2026-11-27").unwrap();
        assert!(check_range(a, a).is_err());
        assert!(Format::parse("xml").is_err());
    }

    #[test]
    fn csv_quotes_and_guards_formulas() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("line\nbreak"), "\"line\nbreak\"");
        let at = parse_bound("x", "2026-11-27").unwrap();
        let c = ClosedConversation {
            id: ConversationId::new("c1").unwrap(),
            kind: ConversationKind::LeftMessage,
            site: SiteKey::new("s").unwrap(),
            customer: Customer {
                name: "Ada, L.".into(),
                email: None,
                verified_user_id: None,
            },
            queue_history: vec![],
            agents: vec![],
            created_at: at,
            answered_at: None,
            ended_at: at,
            ended_by: None,
            wait_secs: 0,
            handle_secs: 0,
            wrap_ups: vec![],
            message: Some("call me".into()),
            rating: None,
        };
        let row = csv_row(&c);
        assert!(row.starts_with("c1,left_message,s,,\"Ada, L.\",,,,2026-11-27T00:00:00Z,"));
        assert!(row.ends_with(",call me\r\n"));
        assert_eq!(
            row.matches(',').count() - 1,
            CSV_HEADER.matches(',').count(),
            "one comma is inside the quoted name"
        );
    }
}
