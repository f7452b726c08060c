//! Calls between the Worker and the Durable Objects, and between objects.
//!
//! Rules:
//! - Each call is one request type with one reply type ([`Call::Reply`]); an
//!   object receives the envelope enum of its requests ([`ToTenant`],
//!   [`ToConversation`]) on one internal endpoint, so no path strings exist.
//! - A request that carries a decision for another object ([`Deliver`] to a
//!   conversation, [`Report`] to a tenant) has an idempotency `key`. The sender
//!   stores it in its outbox in the same transaction as the decision and resends
//!   it until the receiver answers; the receiver applies each key once and answers
//!   a repeat with `duplicate: true`.
//! - These types are the wire form between objects; engine internals never appear
//!   here except as the events the engine emits for a conversation.

use crate::config::TenantConfig;
use crate::engine::{ClosedConversation, ConversationEvent, Customer};
use crate::ids::{ClientMsgId, ConversationId, SiteKey, TenantId};
use crate::protocol::{
    AdminConfig, LeaveMessageRequest, SignInRequest, SignInResponse, SiteInfo, StartRequest,
    StartResponse,
};
use crate::transcript::Message;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A request with its reply type and the envelope its receiver decodes.
pub trait Call: Serialize + Into<Self::Envelope> {
    type Reply: Serialize + DeserializeOwned;
    type Envelope: Serialize + DeserializeOwned;
}

/// Who asks, from where: what the Worker learned from the HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub ip: String,
    /// The `Origin` header, if any.
    pub origin: Option<String>,
    /// This service's own origin.
    pub self_origin: String,
}

/// A request body with its caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithCaller<T> {
    pub caller: Caller,
    pub body: T,
}

/// The answer of a call that returns nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Done {}

/// The answer to an idempotent delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// The key had been applied before; nothing was done again.
    pub duplicate: bool,
    /// The whole transcript, when the delivery asked for it (an offer shows it).
    #[serde(default)]
    pub thread: Option<Vec<Message>>,
}

// ---------------------------------------------------------------- to a conversation

/// Create the conversation with its visitor token hash and first message (sent
/// inside the first [`Deliver`] of a started chat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Init {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub customer: Customer,
    pub token_hash: String,
    pub client_id: ClientMsgId,
    pub text: String,
    pub allowed_origins: Vec<String>,
}
/// Apply engine events for this conversation, once per `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deliver {
    pub key: String,
    /// Create the conversation first (its start was decided with these events).
    #[serde(default)]
    pub init: Option<Init>,
    pub events: Vec<ConversationEvent>,
    /// Answer with the transcript (the decision offered the chat to an agent).
    #[serde(default)]
    pub want_thread: bool,
}

/// Read the transcript after `after` (offers, admin views).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadTranscript {
    pub after: u64,
}

/// A visitor reads the whole transcript with their token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorTranscript(pub WithCaller<String>);
/// Answer to [`VisitorTranscript`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptReply {
    pub conversation: ConversationId,
    pub customer_name: String,
    pub status: crate::engine::VisitorStatus,
    pub messages: Vec<Message>,
}

/// A visitor ends the chat over HTTP with their token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorEnd(pub WithCaller<String>);

/// Everything a conversation object is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", content = "body", rename_all = "snake_case")]
pub enum ToConversation {
    Deliver(Deliver),
    Read(ReadTranscript),
    VisitorTranscript(VisitorTranscript),
    VisitorEnd(VisitorEnd),
}

macro_rules! calls {
    ($env:ident: $($req:ident => $reply:ty),* $(,)?) => {
        $(
            impl From<$req> for $env {
                fn from(r: $req) -> Self {
                    $env::$req(r)
                }
            }
            impl Call for $req {
                type Reply = $reply;
                type Envelope = $env;
            }
        )*
    };
}

calls!(ToConversation:
    Deliver => Delivered,
    VisitorTranscript => TranscriptReply,
    VisitorEnd => Done,
);

impl From<ReadTranscript> for ToConversation {
    fn from(r: ReadTranscript) -> Self {
        ToConversation::Read(r)
    }
}
impl Call for ReadTranscript {
    type Reply = Vec<Message>;
    type Envelope = ToConversation;
}

// ---------------------------------------------------------------- to a tenant

/// What a conversation object reports to its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationReport {
    /// The customer ended the chat.
    CustomerEnded,
    /// No customer activity for the inactivity timeout.
    Inactive,
}

/// A conversation object's report, once per `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub key: String,
    pub conversation: ConversationId,
    pub report: ConversationReport,
}

/// `GET /api/v1/sites/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site(pub WithCaller<SiteKey>);
/// `POST /api/v1/conversations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start(pub WithCaller<StartRequest>);
/// `POST /api/v1/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveMessage(pub WithCaller<LeaveMessageRequest>);
/// Answer to [`LeaveMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageLeft {
    pub id: ConversationId,
}
/// `POST /api/v1/agent/sign-in`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn(pub WithCaller<SignInRequest>);
/// Admin: read the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetConfig {}
/// Answer to [`GetConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigReply {
    pub config: TenantConfig,
}
/// Admin: replace the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutConfig(pub AdminConfig);
/// Admin: closed conversations, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListClosed {}
/// Admin: one closed conversation with its transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetClosed {
    pub id: ConversationId,
}
/// Answer to [`GetClosed`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedReply {
    pub conversation: ClosedConversation,
    pub transcript: Vec<Message>,
}

/// Everything a tenant object is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", content = "body", rename_all = "snake_case")]
pub enum ToTenant {
    Site(Site),
    Start(Start),
    LeaveMessage(LeaveMessage),
    SignIn(SignIn),
    GetConfig(GetConfig),
    PutConfig(PutConfig),
    ListClosed(ListClosed),
    GetClosed(GetClosed),
    Report(Report),
}

calls!(ToTenant:
    Site => SiteInfo,
    Start => StartResponse,
    LeaveMessage => MessageLeft,
    SignIn => SignInResponse,
    GetConfig => ConfigReply,
    PutConfig => Done,
    ListClosed => Vec<ClosedConversation>,
    GetClosed => ClosedReply,
    Report => Delivered,
);

// ---------------------------------------------------------------- to the directory

/// Which tenant a site belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    pub site: SiteKey,
}
/// A tenant claims its site keys (and releases the others it held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub tenant: TenantId,
    pub sites: Vec<SiteKey>,
}

/// Everything the directory object is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", content = "body", rename_all = "snake_case")]
pub enum ToDirectory {
    Lookup(Lookup),
    Claim(Claim),
}

calls!(ToDirectory:
    Lookup => TenantId,
    Claim => Done,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{SystemNote, VisitorStatus};

    fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: T) {
        let s = serde_json::to_string(&v).unwrap_or_default();
        let back: T = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(back, v);
    }

    #[test]
    fn envelopes_roundtrip() {
        let c = ConversationId::new("c1").unwrap_or_else(|e| panic!("{e}"));
        roundtrip(ToConversation::from(Deliver {
            key: "t:1".into(),
            init: None,
            want_thread: true,
            events: vec![
                ConversationEvent::Note(SystemNote::Transferring),
                ConversationEvent::Status(VisitorStatus::Connecting),
            ],
        }));
        roundtrip(ToConversation::from(ReadTranscript { after: 3 }));
        roundtrip(ToTenant::from(Report {
            key: "c1:1".into(),
            conversation: c.clone(),
            report: ConversationReport::Inactive,
        }));
        roundtrip(ToTenant::from(GetClosed { id: c }));
    }
}
