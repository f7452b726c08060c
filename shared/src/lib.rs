//! # Switchboard's conversation rules
//!
//! This crate is the one place where the product's rules live. It does no I/O and
//! never reads a clock: time is always an input (`chrono::DateTime<Utc>`). The
//! edge service feeds it requests, socket frames and alarms; the two UIs use its
//! types and validators to explain rules early, but the edge decides.
//!
//! - [`attachment`]: images and PDFs in a chat (size, sniffed type, file name).
//! - [`ids`]: validated identifiers (conversation, agent, queue, client message id…).
//! - [`text`]: what a chat message may contain (length, control characters, reserved `<` `>`).
//! - [`template`]: message templates with `<parameter>` placeholders.
//! - [`config`]: a tenant's configuration (sites, queues, agents, reasons, templates) and its validation.
//! - [`agent`]: agent states (Signed out, Idle, Available, RONA).
//! - [`engine`]: the tenant engine: queues, offers, RONA, accept, transfer,
//!   conference, end, wrap-up; inputs in, effects out, next deadline polled.
//! - [`export`]: closed conversations as NDJSON or CSV for a date range.
//! - [`intake`]: what a visitor's start request must hold (name, text, email, identity pair).
//! - [`transcript`]: one conversation's messages: sequence numbers, client ids accepted once, resume.
//! - [`protocol`]: versioned JSON frames between visitor, agent, admin and edge.
//! - [`mini`]: the same JSON for the visitor's widget without a JSON library (the browser parses).
//! - [`rpc`]: typed calls between the Worker and the Durable Objects, with idempotency keys.
//! - [`hours`]: business hours of a queue.
//! - [`visitor`]: the customer context (pages of the visit, browser, time zone).
//! - [`webhook`]: events sent to a tenant's URLs (closed conversation, left message), signing and back-off.
//! - [`time`]: timestamps on the wire (RFC 3339, UTC) without chrono's general parser.
//! - [`ratelimit`]: token-bucket rate limits (stored by the caller) per address (IPv6 per /64) or conversation.

pub mod agent;
pub mod attachment;
pub mod config;
pub mod engine;
pub mod export;
pub mod hours;
pub mod ids;
pub mod intake;
pub mod mini;
pub mod protocol;
pub mod ratelimit;
pub mod rpc;
pub mod template;
pub mod text;
pub mod time;
pub mod transcript;
pub mod visitor;
pub mod webhook;

pub use chrono;

/// A field a flat `…Fields` form needs for the variant its tag names (the tagged enums
/// the widget reads are read through such forms; see `engine::types`).
pub(crate) fn need<T>(v: Option<T>, field: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("missing field `{field}`"))
}
