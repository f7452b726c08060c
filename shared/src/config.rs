//! A tenant's configuration, as the website owner defines it (SPEC §1).
//!
//! Rules checked by [`TenantConfig::validate`] (the error names the first problem):
//! - ids are unique within their kind; every queue an agent or site names exists;
//! - at least one queue; every site has a default queue;
//! - offer timeout 1..=600 s, inactivity timeout 10..=86 400 s, capacity 1..=20;
//! - templates parse (see [`crate::template`]);
//! - business hours are well formed.
//!
//! Passwords are never part of this type: the edge stores salted hashes separately;
//! a new password needs at least [`MIN_PASSWORD_CHARS`] characters ([`check_password_strength`]).
//!
//! A visitor request from a browser page is allowed for a site when its `Origin` is the
//! service's own origin or one of the site's allowed origins (`*` allows any). A
//! request without an `Origin` is refused. A request from the widget's own frame (the
//! service's origin) counts as coming from the page that embeds the frame, which the
//! frame learned from the browser (`postMessage` `event.origin`) ([`check_origin`]);
//! the frame itself may only be embedded by allowed origins ([`frame_ancestors`]).

use crate::hours::BusinessHours;
use crate::ids::{AgentId, QueueId, ReasonId, SiteKey, TemplateId};
use crate::template::Template;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Default concurrent chats per agent.
pub const DEFAULT_CAPACITY: u32 = 3;
/// Default offer timeout in seconds.
pub const DEFAULT_OFFER_TIMEOUT_SECS: u32 = 30;
/// Default inactivity timeout in seconds.
pub const DEFAULT_INACTIVITY_TIMEOUT_SECS: u32 = 1800;

/// Default longest wait in a queue, in seconds (then the visitor may leave a message).
pub const DEFAULT_MAX_WAIT_SECS: u32 = 900;
/// Default most conversations waiting in one queue.
pub const DEFAULT_MAX_QUEUE_LENGTH: u32 = 500;
/// Default most open (queued, offered, active or ended but not wrapped up) conversations of a tenant.
pub const DEFAULT_MAX_OPEN_CONVERSATIONS: u32 = 5_000;

fn default_max_wait() -> u32 {
    DEFAULT_MAX_WAIT_SECS
}
fn default_max_queue_length() -> u32 {
    DEFAULT_MAX_QUEUE_LENGTH
}
fn default_max_open() -> u32 {
    DEFAULT_MAX_OPEN_CONVERSATIONS
}
fn default_capacity() -> u32 {
    DEFAULT_CAPACITY
}
fn default_offer() -> u32 {
    DEFAULT_OFFER_TIMEOUT_SECS
}
fn default_inactivity() -> u32 {
    DEFAULT_INACTIVITY_TIMEOUT_SECS
}

/// Fewest characters a new agent password may have.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Checks a new password of `agent`; the error names the agent.
pub fn check_password_strength(agent: &AgentId, password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password of agent {agent} is shorter than {MIN_PASSWORD_CHARS} characters"
        ));
    }
    Ok(())
}

/// Why a widget request's origin was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("the request has no Origin header; the widget API serves web pages only")]
    Missing,
    #[error("the widget frame did not say which page embeds it (X-Switchboard-Embedder)")]
    MissingEmbedder,
    #[error("origin {0} is not allowed for this site")]
    NotAllowed(String),
}

/// Checks the origin of a widget request (see module docs): the browser's `Origin`,
/// or, when that is this service's own (the widget's frame), the embedding page's
/// origin that the frame learned from the browser.
pub fn check_origin(
    origin: Option<&str>,
    embedder: Option<&str>,
    self_origin: &str,
    allowed: &[String],
) -> Result<(), OriginError> {
    let listed = |o: &str| o == self_origin || allowed.iter().any(|a| a == "*" || a == o);
    let origin = origin
        .filter(|o| !o.is_empty())
        .ok_or(OriginError::Missing)?;
    let effective = if origin == self_origin {
        embedder
            .filter(|o| !o.is_empty())
            .ok_or(OriginError::MissingEmbedder)?
    } else {
        origin
    };
    if listed(effective) {
        Ok(())
    } else {
        Err(OriginError::NotAllowed(effective.to_owned()))
    }
}

/// The `frame-ancestors` source list for a site: its own origin and the allowed ones.
pub fn frame_ancestors(allowed: &[String]) -> String {
    if allowed.iter().any(|a| a == "*") {
        return "*".into();
    }
    let mut v = vec!["'self'".to_string()];
    v.extend(
        allowed
            .iter()
            .filter(|a| {
                a.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
            })
            .cloned(),
    );
    v.join(" ")
}

/// A website with the widget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteConfig {
    pub key: SiteKey,
    pub name: String,
    /// Origins allowed to embed the widget, e.g. `https://shop.example`; `*` allows any.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Queue new chats enter.
    pub queue: QueueId,
    /// "en" or "de"; empty means the browser's language.
    #[serde(default)]
    pub language: String,
    /// The widget's accent colour, `#rrggbb` (buttons, header, the visitor's bubbles).
    #[serde(default)]
    pub accent: Option<String>,
    /// "Typically replies within N minutes" in the widget's header (1 to 1440).
    #[serde(default)]
    pub typical_reply_mins: Option<u32>,
}

/// Initials of a display name for an avatar: the first letter of its first and last
/// words, upper-cased ("Anna Schmidt" → "AS", "ben" → "B").
pub fn initials(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let first = |w: &&str| {
        w.chars()
            .next()
            .map(|c| c.to_uppercase().collect::<String>())
    };
    match (words.first(), words.last()) {
        (Some(a), Some(b)) if words.len() > 1 => format!(
            "{}{}",
            first(a).unwrap_or_default(),
            first(b).unwrap_or_default()
        ),
        (Some(a), _) => first(a).unwrap_or_default(),
        _ => String::new(),
    }
}

/// Whether `c` is a colour the widget takes: `#` and six hex digits.
pub fn is_accent(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    pub id: QueueId,
    pub name: String,
    #[serde(default = "default_offer")]
    pub offer_timeout_secs: u32,
    #[serde(default = "default_inactivity")]
    pub inactivity_timeout_secs: u32,
    /// Longest wait in this queue; then the chat ends and the visitor may leave a message.
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u32,
    /// Most conversations waiting in this queue; a start beyond it is refused.
    #[serde(default = "default_max_queue_length")]
    pub max_queue_length: u32,
    #[serde(default)]
    pub hours: BusinessHours,
}

/// What a staff member may do besides chatting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Chats only.
    #[default]
    Agent,
    /// Also sees queues and agents live, reads any live chat, signs agents out.
    Supervisor,
    /// Also edits the tenant's configuration (the admin console).
    Admin,
}

impl Role {
    /// Supervisors and admins.
    pub fn supervises(self) -> bool {
        self >= Role::Supervisor
    }
    /// Admins.
    pub fn administers(self) -> bool {
        self == Role::Admin
    }
}

/// An agent (without password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConfig {
    pub id: AgentId,
    pub name: String,
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Queues this agent serves.
    pub queues: Vec<QueueId>,
    /// Supervisor or admin rights; plain agent when omitted.
    #[serde(default)]
    pub role: Role,
    /// The agent's picture in the widget's header: a picture id from the admin API's
    /// `avatars` upload ([`crate::attachment::is_picture_id`]); initials when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

/// An idle or wrap-up reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub id: ReasonId,
    /// Label in English.
    pub label: String,
    /// Label in German.
    #[serde(default)]
    pub label_de: String,
}

/// A message template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateConfig {
    pub id: TemplateId,
    pub name: String,
    pub text: String,
}

/// Everything a tenant configures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantConfig {
    pub name: String,
    pub sites: Vec<SiteConfig>,
    pub queues: Vec<QueueConfig>,
    pub agents: Vec<AgentConfig>,
    #[serde(default)]
    pub idle_reasons: Vec<Reason>,
    #[serde(default)]
    pub wrap_up_reasons: Vec<Reason>,
    #[serde(default)]
    pub templates: Vec<TemplateConfig>,
    /// Most open conversations of the tenant; a start beyond it is refused.
    #[serde(default = "default_max_open")]
    pub max_open_conversations: u32,
    /// Days a closed conversation (transcript and left message included) is kept.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Receivers of closed conversations and left messages ([`crate::webhook`]).
    #[serde(default)]
    pub webhooks: Vec<crate::webhook::WebhookConfig>,
    /// The contact centre's IANA time zone (e.g. `Europe/Berlin`): the supervisors'
    /// "today" starts at its midnight. Empty: UTC.
    #[serde(default)]
    pub time_zone: String,
}

/// An IANA time zone name (`Europe/Berlin`), or empty (none); anything else is refused,
/// named.
pub fn check_time_zone(name: &str) -> Result<(), String> {
    if name.is_empty() || name.parse::<chrono_tz::Tz>().is_ok() {
        Ok(())
    } else {
        Err(format!("unknown time zone {name:?}"))
    }
}

impl TenantConfig {
    /// The contact centre's date at `now` (in [`Self::time_zone`]; UTC if unset or unknown).
    pub fn local_date(&self, now: DateTime<Utc>) -> NaiveDate {
        match self.time_zone.parse::<chrono_tz::Tz>() {
            Ok(tz) => now.with_timezone(&tz).date_naive(),
            Err(_) => now.date_naive(),
        }
    }

    /// The instant the contact centre's day of `now` began: its local midnight (or,
    /// on a day that skips midnight for daylight saving, the first local time after).
    pub fn day_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let midnight = self.local_date(now).and_time(NaiveTime::MIN);
        match self.time_zone.parse::<chrono_tz::Tz>() {
            Ok(tz) => (0..=3)
                .find_map(|h| {
                    tz.from_local_datetime(&(midnight + chrono::Duration::hours(h)))
                        .earliest()
                })
                .map_or(now, |t| t.with_timezone(&Utc)),
            Err(_) => midnight.and_utc(),
        }
    }
}

/// Default retention of closed conversations.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

fn default_retention_days() -> u32 {
    DEFAULT_RETENTION_DAYS
}

/// Shortest identity-verification secret, in bytes.
pub const MIN_SITE_SECRET_BYTES: usize = 32;

/// Checks an identity-verification secret.
pub fn check_site_secret(site: &SiteKey, secret: &str) -> Result<(), ConfigError> {
    if secret.len() < MIN_SITE_SECRET_BYTES {
        return Err(ConfigError(format!(
            "site {site}: the identity secret has {} bytes; at least {MIN_SITE_SECRET_BYTES} are needed",
            secret.len()
        )));
    }
    Ok(())
}

/// Why a configuration was refused. A message about one item starts with its kind
/// and id and a colon (`queue q1: …`, `webhook 2: …`), so an editor can show it
/// beside that item ([`ConfigError::item`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// The item the message is about: (`site`|`queue`|`agent`|`template`|`webhook`, id).
    pub fn item(&self) -> Option<(&str, &str)> {
        let (head, _) = self.0.split_once(": ")?;
        let (kind, id) = head.split_once(' ')?;
        matches!(kind, "site" | "queue" | "agent" | "template" | "webhook")
            .then_some((kind, id))
            .filter(|(_, id)| !id.contains(' '))
    }
}

fn unique<'a, T: Ord + std::fmt::Display + 'a>(
    kind: &str,
    ids: impl Iterator<Item = &'a T>,
) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(ConfigError(format!("{kind} {id} is defined twice")));
        }
    }
    Ok(())
}

impl TenantConfig {
    /// Checks the rules in the module docs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = |s: String| Err(ConfigError(s));
        if self.queues.is_empty() {
            return e("at least one queue is needed".into());
        }
        if !(1..=3650).contains(&self.retention_days) {
            return e("retention_days must be 1 to 3650".into());
        }
        check_time_zone(&self.time_zone).map_err(ConfigError)?;
        unique("site", self.sites.iter().map(|s| &s.key))?;
        unique("queue", self.queues.iter().map(|q| &q.id))?;
        unique("agent", self.agents.iter().map(|a| &a.id))?;
        unique("idle reason", self.idle_reasons.iter().map(|r| &r.id))?;
        unique("wrap-up reason", self.wrap_up_reasons.iter().map(|r| &r.id))?;
        unique("template", self.templates.iter().map(|t| &t.id))?;
        for q in &self.queues {
            if !(1..=600).contains(&q.offer_timeout_secs) {
                return e(format!(
                    "queue {}: offer_timeout_secs must be 1 to 600",
                    q.id
                ));
            }
            if !(10..=86_400).contains(&q.inactivity_timeout_secs) {
                return e(format!(
                    "queue {}: inactivity_timeout_secs must be 10 to 86400",
                    q.id
                ));
            }
            if !(1..=86_400).contains(&q.max_wait_secs) {
                return e(format!("queue {}: max_wait_secs must be 1 to 86400", q.id));
            }
            if !(1..=10_000).contains(&q.max_queue_length) {
                return e(format!(
                    "queue {}: max_queue_length must be 1 to 10000",
                    q.id
                ));
            }
            q.hours
                .validate()
                .map_err(|m| ConfigError(format!("queue {}: {m}", q.id)))?;
        }
        for s in &self.sites {
            if self.queue(&s.queue).is_none() {
                return e(format!("site {}: unknown queue {}", s.key, s.queue));
            }
            if s.typical_reply_mins
                .is_some_and(|m| !(1..=1440).contains(&m))
            {
                return e(format!(
                    "site {}: typical_reply_mins must be 1 to 1440",
                    s.key
                ));
            }
            if let Some(a) = s.accent.as_deref().filter(|a| !is_accent(a)) {
                return e(format!(
                    "site {}: accent {a:?} is not a colour like #1f5eff",
                    s.key
                ));
            }
        }
        for a in &self.agents {
            if !(1..=20).contains(&a.capacity) {
                return e(format!("agent {}: capacity must be 1 to 20", a.id));
            }
            if let Some(q) = a.queues.iter().find(|q| self.queue(q).is_none()) {
                return e(format!("agent {}: unknown queue {q}", a.id));
            }
            if let Some(p) = a
                .avatar
                .as_deref()
                .filter(|p| !crate::attachment::is_picture_id(p))
            {
                return e(format!(
                    "agent {}: avatar {p:?} is not a picture id (upload the picture first)",
                    a.id
                ));
            }
        }
        if self.webhooks.len() > crate::webhook::MAX_WEBHOOKS {
            return e(format!(
                "at most {} webhooks are allowed",
                crate::webhook::MAX_WEBHOOKS
            ));
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            crate::webhook::check_url(&w.url)
                .map_err(|m| ConfigError(format!("webhook {}: {m}", i + 1)))?;
        }
        for t in &self.templates {
            Template::parse(&t.text)
                .map_err(|err| ConfigError(format!("template {}: {err}", t.id)))?;
        }
        Ok(())
    }

    /// A queue by id.
    pub fn queue(&self, id: &QueueId) -> Option<&QueueConfig> {
        self.queues.iter().find(|q| &q.id == id)
    }
    /// An agent by id.
    pub fn agent(&self, id: &AgentId) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| &a.id == id)
    }
    /// A site by key.
    pub fn site(&self, key: &SiteKey) -> Option<&SiteConfig> {
        self.sites.iter().find(|s| &s.key == key)
    }
    /// A template by id.
    pub fn template(&self, id: &TemplateId) -> Option<&TemplateConfig> {
        self.templates.iter().find(|t| &t.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_is_the_contact_centres_day() {
        let mut c: TenantConfig = serde_json::from_value(serde_json::json!({
            "name": "T", "sites": [], "agents": [],
            "queues": [{ "id": "q", "name": "Q" }],
        }))
        .unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // No time zone: UTC.
        assert_eq!(
            c.day_start(at("2026-11-28T02:00:00Z")),
            at("2026-11-28T00:00:00Z")
        );
        c.time_zone = "Europe/Berlin".into();
        assert!(c.validate().is_ok());
        // 23:30 UTC on the 27th is already the 28th in Berlin (UTC+1 in winter).
        assert_eq!(
            c.local_date(at("2026-11-27T23:30:00Z")),
            NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
        );
        assert_eq!(
            c.day_start(at("2026-11-28T02:00:00Z")),
            at("2026-11-27T23:00:00Z")
        );
        // Summer time: UTC+2.
        assert_eq!(
            c.day_start(at("2026-07-01T12:00:00Z")),
            at("2026-06-30T22:00:00Z")
        );
        // A day without local midnight (Santiago moves 00:00 to 01:00 in September).
        c.time_zone = "America/Santiago".into();
        let start = c.day_start(at("2026-09-06T12:00:00Z"));
        assert_eq!(
            c.local_date(start),
            NaiveDate::from_ymd_opt(2026, 9, 6).unwrap()
        );
        assert!(start < at("2026-09-06T12:00:00Z"));
        c.time_zone = "Mars/Olympus".into();
        assert!(c.validate().unwrap_err().0.contains("Mars/Olympus"));
    }

    #[test]
    fn origins() {
        let allowed = vec!["https://shop.example".to_string()];
        let me = "https://sb.example";
        let ok = |o, e| check_origin(o, e, me, &allowed);
        assert_eq!(ok(None, None), Err(OriginError::Missing));
        assert_eq!(ok(Some(me), None), Err(OriginError::MissingEmbedder));
        assert_eq!(ok(Some(me), Some("https://shop.example")), Ok(()));
        assert_eq!(ok(Some(me), Some(me)), Ok(()));
        assert_eq!(
            ok(Some(me), Some("https://evil.example")),
            Err(OriginError::NotAllowed("https://evil.example".into()))
        );
        assert_eq!(ok(Some("https://shop.example"), None), Ok(()));
        // A foreign page cannot claim to be embedded elsewhere.
        assert!(ok(Some("https://evil.example"), Some("https://shop.example")).is_err());
        assert_eq!(frame_ancestors(&allowed), "'self' https://shop.example");
        assert_eq!(frame_ancestors(&["*".into()]), "*");
        assert_eq!(frame_ancestors(&["a; script-src *".into()]), "'self'");
    }

    #[test]
    fn initials_of_names() {
        assert_eq!(initials("Anna Schmidt"), "AS");
        assert_eq!(initials("ben"), "B");
        assert_eq!(initials("Jean Paul Émile"), "JÉ");
        assert_eq!(initials("  "), "");
    }

    #[test]
    fn errors_name_their_item() {
        assert_eq!(
            ConfigError("queue q1: offer_timeout_secs must be 1 to 600".into()).item(),
            Some(("queue", "q1"))
        );
        assert_eq!(
            ConfigError("webhook 2: bad".into()).item(),
            Some(("webhook", "2"))
        );
        assert_eq!(
            ConfigError("at least one queue is needed".into()).item(),
            None
        );
        assert_eq!(ConfigError("queue q1 is defined twice".into()).item(), None);
    }

    #[test]
    fn passwords() {
        let a = AgentId::new("anna").unwrap();
        assert!(check_password_strength(&a, "12345678").is_ok());
        assert!(check_password_strength(&a, "1234567")
            .unwrap_err()
            .contains("agent anna"));
    }
}
