//! Webhooks: what a tenant's CRM hears when a conversation closes or a message is
//! left, and what its operations hear when an update between objects could not be
//! delivered.
//!
//! Rules:
//! - Events are [`WebhookEvent::ConversationClosed`] (transcript, wrap-up, rating,
//!   wait and handle time), [`WebhookEvent::MessageLeft`] and
//!   [`WebhookEvent::DeliveryParked`] (an update the receiving object refused for good
//!   or never took; it waits for an admin's retry). A webhook with no event list gets
//!   all of them; receivers tell them apart by `event`.
//! - One [`WebhookJob`] per (event, URL): each URL is retried on its own. The job
//!   carries no secret and no transcript; the consumer reads both when it delivers, so
//!   an erased conversation is never sent. A parked delivery that was sent again and
//!   taken before its job ran is not reported.
//! - The body is [`WebhookPayload`] (conversation events) or [`ParkedPayload`] as JSON. It is signed with the tenant's webhook
//!   secret: `X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//!   "<t>.<body>">` ([`signed_message`]). The delivery id (`X-Switchboard-Delivery`)
//!   stays the same across retries, so a receiver can drop duplicates.
//! - A delivery succeeds on a 2xx answer. Otherwise it is retried after
//!   [`retry_delay_secs`] (doubling from a base, at most an hour) until
//!   `max_attempts`; then it goes to the tenant's dead-letter list.
//! - A URL is `https://`, or `http://` on a loopback host (local development).

use crate::engine::ClosedConversation;
use crate::ids::{ConversationId, TenantId};
use crate::transcript::Message;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most webhooks of one tenant.
pub const MAX_WEBHOOKS: usize = 10;
/// Longest webhook URL.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest wait between two attempts, in seconds.
pub const MAX_RETRY_DELAY_SECS: u32 = 3600;

/// What a webhook can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WebhookEvent {
    /// A chat is over and wrapped up.
    #[serde(rename = "conversation.closed")]
    ConversationClosed,
    /// A visitor left a message (nobody was there to chat).
    #[serde(rename = "message.left")]
    MessageLeft,
    /// An update between two objects was parked (see [`crate::rpc::ParkedDelivery`]).
    #[serde(rename = "delivery.parked")]
    DeliveryParked,
}

impl WebhookEvent {
    /// Every event, in the order the admin screen lists them.
    pub const ALL: [WebhookEvent; 3] = [
        WebhookEvent::ConversationClosed,
        WebhookEvent::MessageLeft,
        WebhookEvent::DeliveryParked,
    ];

    /// The name on the wire and in `X-Switchboard-Event`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::ConversationClosed => "conversation.closed",
            WebhookEvent::MessageLeft => "message.left",
            WebhookEvent::DeliveryParked => "delivery.parked",
        }
    }

    /// The event a closed record raises.
    pub fn of(c: &ClosedConversation) -> WebhookEvent {
        match c.kind {
            crate::engine::ConversationKind::LeftMessage => WebhookEvent::MessageLeft,
            _ => WebhookEvent::ConversationClosed,
        }
    }
}

/// One receiver of a tenant's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookConfig {
    pub url: String,
    /// Events sent to it; empty means all.
    #[serde(default)]
    pub events: Vec<WebhookEvent>,
}

impl WebhookConfig {
    /// Whether this webhook wants `e`.
    pub fn wants(&self, e: WebhookEvent) -> bool {
        self.events.is_empty() || self.events.contains(&e)
    }
}

/// Checks a webhook URL (see module docs); the error names the problem.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!(
            "webhook URL is longer than {MAX_URL_CHARS} characters"
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "webhook URL {url:?} holds spaces or control characters"
        ));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("webhook URL {url:?} is not an absolute URL"))?;
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host_port.is_empty() || host_port.contains('@') {
        return Err(format!(
            "webhook URL {url:?} has no host (or has credentials)"
        ));
    }
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    match scheme {
        "https" => Ok(()),
        "http" if matches!(host, "localhost" | "127.0.0.1" | "::1") => Ok(()),
        "http" => Err(format!(
            "webhook URL {url:?} must use https (http only for localhost)"
        )),
        _ => Err(format!("webhook URL {url:?} must start with https://")),
    }
}

/// One delivery to do: an event of a conversation to one URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookJob {
    /// Stable across retries (`X-Switchboard-Delivery`).
    pub id: String,
    pub tenant: TenantId,
    pub event: WebhookEvent,
    pub conversation: ConversationId,
    pub url: String,
    /// For [`WebhookEvent::DeliveryParked`]: the parked delivery's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parked: Option<String>,
    /// Attempts made so far.
    #[serde(default)]
    pub attempt: u32,
    /// The last failure (status or error), for the dead-letter list.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// A job that ran out of attempts, as the admin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub job: WebhookJob,
    pub at: DateTime<Utc>,
}

/// The JSON body of a webhook request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPayload {
    pub id: String,
    pub event: WebhookEvent,
    pub tenant: TenantId,
    pub sent_at: DateTime<Utc>,
    /// The closed record: customer, queues, agents, wrap-ups, rating, wait and handle time.
    pub conversation: ClosedConversation,
    /// The messages, oldest first (empty for a left message: its text is on the record).
    pub transcript: Vec<Message>,
}

/// The JSON body of a [`WebhookEvent::DeliveryParked`] request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedPayload {
    pub id: String,
    pub event: WebhookEvent,
    pub tenant: TenantId,
    pub sent_at: DateTime<Utc>,
    /// The conversation the update concerns.
    pub conversation: ConversationId,
    /// What was parked, where and why; an admin sends it again with
    /// `POST /api/v1/admin/tenants/{t}/deliveries/parked/{key}/retry`.
    pub parked: crate::rpc::ParkedDelivery,
}

/// Seconds to wait before attempt `attempt + 1`, after `attempt` failures (≥ 1):
/// `base`, then doubling, at most [`MAX_RETRY_DELAY_SECS`].
pub fn retry_delay_secs(attempt: u32, base: u32) -> u32 {
    let shift = attempt.saturating_sub(1).min(20);
    base.max(1)
        .saturating_mul(1 << shift)
        .min(MAX_RETRY_DELAY_SECS)
}

/// The text that `X-Switchboard-Signature`'s `v1` authenticates.
pub fn signed_message(timestamp: i64, body: &str) -> String {
    format!("{timestamp}.{body}")
}

/// The `X-Switchboard-Signature` header value from a timestamp and the hex MAC.
pub fn signature_header(timestamp: i64, mac_hex: &str) -> String {
    format!("t={timestamp},v1={mac_hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://crm.example/hooks?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:8080/h").is_ok());
        assert!(check_url("http://localhost/h").is_ok());
        assert!(check_url("http://[::1]:9/h").is_ok());
        assert!(check_url("http://crm.example/h")
            .unwrap_err()
            .contains("https"));
        assert!(check_url("ftp://crm.example").is_err());
        assert!(check_url("crm.example").is_err());
        assert!(check_url("https://user:pw@crm.example").is_err());
        assert!(check_url("https://").is_err());
        assert!(check_url("https://a b").is_err());
        assert!(check_url(&format!("https://x/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(retry_delay_secs(1, 10), 10);
        assert_eq!(retry_delay_secs(2, 10), 20);
        assert_eq!(retry_delay_secs(3, 10), 40);
        assert_eq!(retry_delay_secs(0, 0), 1);
        assert_eq!(retry_delay_secs(40, 10), MAX_RETRY_DELAY_SECS);
    }

    #[test]
    fn events_and_signature() {
        let w = WebhookConfig {
            url: "https://x".into(),
            events: vec![WebhookEvent::MessageLeft],
        };
        assert!(w.wants(WebhookEvent::MessageLeft));
        assert!(!w.wants(WebhookEvent::ConversationClosed));
        assert_eq!(
            serde_json::to_string(&WebhookEvent::ConversationClosed).unwrap(),
            "\"conversation.closed\""
        );
        assert_eq!(signed_message(5, "{}"), "5.{}");
        assert_eq!(signature_header(5, "ab"), "t=5,v1=ab");
    }

    #[test]
    fn every_event_has_its_wire_name_and_an_empty_list_wants_all() {
        let all = WebhookConfig {
            url: "https://x".into(),
            events: vec![],
        };
        for e in WebhookEvent::ALL {
            assert!(all.wants(e));
            assert_eq!(
                serde_json::to_string(&e).unwrap(),
                format!("\"{}\"", e.as_str())
            );
        }
        let parked: WebhookEvent = serde_json::from_str("\"delivery.parked\"").unwrap();
        assert_eq!(parked, WebhookEvent::DeliveryParked);
        // A job written before parked jobs existed still reads.
        let old = r#"{"id":"i","tenant":"t","event":"message.left","conversation":"c","url":"https://x"}"#;
        let job: WebhookJob = serde_json::from_str(old).unwrap();
        assert_eq!(job.parked, None);
        assert!(!serde_json::to_string(&job).unwrap().contains("parked"));
    }
}
