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
use crate::ids::{AgentId, ClientMsgId, ConversationId, SiteKey, TenantId};
use crate::protocol::{
    AdminConfig, LeaveMessageRequest, SignInResponse, SiteInfo, StartRequest, StartResponse,
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
    /// The page that embeds the widget, as the widget's frame learned it from the
    /// browser (`postMessage` `event.origin`); sent by the frame in a header and
    /// trusted only when `origin` is this service's own.
    #[serde(default)]
    pub embedder: Option<String>,
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

impl Deliver {
    /// What the delivery carries, in a few words, for the admin's list of parked
    /// deliveries (e.g. `"start, note queued, status queued"`).
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = vec![];
        if self.init.is_some() {
            parts.push("start".into());
        }
        for e in &self.events {
            parts.push(match e {
                ConversationEvent::Note(n) => format!("note {}", n.kind()),
                ConversationEvent::Status(st) => format!("status {}", st.kind()),
                ConversationEvent::Access { .. } => "access".into(),
                ConversationEvent::Revoked { .. } => "revoked".into(),
                ConversationEvent::Erase => "erase".into(),
            });
        }
        parts.join(", ")
    }
}

/// A delivery between objects that was parked: the receiver refused it for good, or
/// it ran out of attempts (see the edge's outbox rules). Kept until an admin sends it
/// again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedDelivery {
    /// The delivery's idempotency key (what [`RetryParked`] names).
    pub key: String,
    /// The object that holds it and sends it: `routing` (the tenant) or a
    /// conversation id.
    #[serde(default)]
    pub from: String,
    /// The receiving object: a conversation id, or `routing`.
    pub target: String,
    /// What it carries, in a few words ([`Deliver::summary`]).
    pub summary: String,
    pub attempts: i64,
    /// The receiver's last answer.
    pub error: String,
    #[serde(with = "crate::time::rfc3339")]
    pub at: chrono::DateTime<chrono::Utc>,
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

/// A visitor asks for a socket ticket with their token (in a header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorTicket(pub WithCaller<String>);
/// A single-use socket ticket and how long it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketReply {
    pub ticket: String,
    pub expires_in: u32,
}

/// Everything a conversation object is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", content = "body", rename_all = "snake_case")]
pub enum ToConversation {
    Deliver(Deliver),
    Read(ReadTranscript),
    VisitorTranscript(VisitorTranscript),
    VisitorEnd(VisitorEnd),
    VisitorTicket(VisitorTicket),
    ResendParked(ResendParked),
}

/// Tenant → conversation, for an admin: put a parked report back in the outbox (its
/// attempts start over) and deliver it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResendParked {
    pub key: String,
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
    VisitorTicket => TicketReply,
    ResendParked => Done,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationReport {
    /// The customer ended the chat.
    CustomerEnded,
    /// No customer activity for the inactivity timeout.
    Inactive,
    /// The customer rated the ended chat (goes on its closed record).
    Rated(crate::engine::Rating),
    /// One of this conversation's reports was parked (the tenant refused it for good,
    /// or it failed for a day): the tenant lists it for its admins. A parked report of
    /// this kind is not reported again.
    Parked(ParkedDelivery),
}

impl Report {
    /// What the report carries, in a few words (for the list of parked deliveries).
    pub fn summary(&self) -> String {
        match &self.report {
            ConversationReport::CustomerEnded => "customer ended".into(),
            ConversationReport::Inactive => "inactive".into(),
            ConversationReport::Rated(_) => "rating".into(),
            ConversationReport::Parked(p) => format!("parked: {}", p.summary),
        }
    }
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
/// Sign-in, step 1: may this agent try now (back-off, lockout, per-address limit),
/// and what is their stored hash? The Worker checks the password itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInBegin {
    pub agent: AgentId,
    pub ip: String,
}
/// Answer to [`SignInBegin`]: the stored PHC string, `None` for an unknown agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub hash: Option<String>,
}
/// Sign-in, step 2: the Worker's verdict; on success a new session (and the
/// rehashed password when the stored one was weaker than today's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInFinish {
    pub agent: AgentId,
    pub ip: String,
    pub ok: bool,
    #[serde(default)]
    pub rehash: Option<String>,
}
/// A control-socket ticket for a live session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlTicket {
    pub agent: AgentId,
    pub sid: String,
}
/// Admin: lift an agent's sign-in lockout (failed attempts forgotten).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlock {
    pub agent: AgentId,
}
/// Revoke sessions: one (`sid`) or all of an agent's; their sockets close with `reason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoke {
    pub agent: AgentId,
    #[serde(default)]
    pub sid: Option<String>,
    pub reason: RevokeReason,
}
/// Why sessions end early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    SignedOut,
    PasswordChanged,
    SignedOutByAdmin,
    SignedOutBySupervisor,
}
impl RevokeReason {
    /// The socket close reason (the console shows it).
    pub fn close_reason(self) -> &'static str {
        match self {
            RevokeReason::SignedOut => "signed_out",
            RevokeReason::PasswordChanged => "password_changed",
            RevokeReason::SignedOutByAdmin => "signed_out_by_admin",
            RevokeReason::SignedOutBySupervisor => "signed_out_by_supervisor",
        }
    }
}
/// Store a new password hash (PHC) for an agent whose session proved the old one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetPassword {
    pub agent: AgentId,
    pub hash: String,
}
/// Is this session live? (Answers with the agent's name.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSession {
    pub agent: AgentId,
    pub sid: String,
    /// Also require the admin role (the admin API with a console session).
    #[serde(default)]
    pub admin: bool,
}
/// What the widget's document needs: the origins that may frame it, and the site
/// info it carries (so the app does not ask for it again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDocument {
    pub site: SiteKey,
}
/// Answer to [`SiteDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDocumentInfo {
    pub allowed_origins: Vec<String>,
    pub info: crate::protocol::SiteInfo,
}
/// Admin: erase one closed conversation, transcript and left message included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseClosed {
    pub id: ConversationId,
}
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
/// Admin and agents: closed conversations, newest first, one page after `cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ListClosed {
    /// From the previous page's `next`.
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only conversations that ended at or after this time (unix seconds).
    #[serde(default)]
    pub from: Option<i64>,
    /// Only conversations that ended before this time (unix seconds).
    #[serde(default)]
    pub to: Option<i64>,
}
/// One page of closed conversations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedPage {
    pub items: Vec<ClosedConversation>,
    /// Cursor of the next page; `None` on the last.
    pub next: Option<String>,
}
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

/// Webhook consumer: what it needs to send one job (read at delivery time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookMaterial {
    pub conversation: ConversationId,
    /// For a parked-delivery job: the parked delivery's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parked: Option<String>,
}
/// Answer to [`HookMaterial`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookMaterialReply {
    /// The signing secret; `None` when the tenant has none any more.
    pub secret: Option<String>,
    /// The URLs configured now (a job to a removed URL is dropped).
    pub urls: Vec<String>,
    /// The record and transcript; `None` when it was erased.
    pub closed: Option<ClosedReply>,
    /// The parked delivery asked for, while it is still parked.
    #[serde(default)]
    pub parked: Option<ParkedDelivery>,
}
/// Webhook consumer: a job ran out of attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookDead(pub crate::webhook::WebhookJob);
/// Admin: the webhook dead-letter list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListDeadHooks {}
/// Admin: send a dead-lettered job again (attempts start over).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryDeadHook {
    pub id: String,
}

/// Admin: send every parked delivery again, oldest first (each as [`RetryParked`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryAllParked {}
/// Answer to [`RetryAllParked`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetriedParked {
    /// Sent again (a receiver that still refuses parks it again).
    pub retried: u32,
    /// Keys that could not be sent again, with why.
    pub failed: Vec<(String, String)>,
}

/// Admin: a picture is about to be stored for this tenant. Pictures that no agent of
/// the saved configuration uses are deleted a day after their upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PictureUploaded {}

/// Admin: the tenant object's parked deliveries, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListParked {}
/// Admin: put a parked delivery back in the outbox (its attempts start over) and
/// deliver it now; the receiver still applies its key once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryParked {
    pub key: String,
}

/// Everything a tenant object is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", content = "body", rename_all = "snake_case")]
pub enum ToTenant {
    Site(Site),
    Start(Start),
    LeaveMessage(LeaveMessage),
    SignInBegin(SignInBegin),
    SignInFinish(SignInFinish),
    ControlTicket(ControlTicket),
    Revoke(Revoke),
    Unlock(Unlock),
    SetPassword(SetPassword),
    CheckSession(CheckSession),
    SiteDocument(SiteDocument),
    EraseClosed(EraseClosed),
    GetConfig(GetConfig),
    PutConfig(PutConfig),
    ListClosed(ListClosed),
    GetClosed(GetClosed),
    Report(Report),
    HookMaterial(HookMaterial),
    HookDead(HookDead),
    ListDeadHooks(ListDeadHooks),
    RetryDeadHook(RetryDeadHook),
    ListParked(ListParked),
    RetryParked(RetryParked),
    PictureUploaded(PictureUploaded),
    RetryAllParked(RetryAllParked),
}

calls!(ToTenant:
    Site => SiteInfo,
    Start => StartResponse,
    LeaveMessage => MessageLeft,
    SignInBegin => Challenge,
    SignInFinish => SignInResponse,
    ControlTicket => TicketReply,
    Revoke => Done,
    Unlock => Done,
    SetPassword => Done,
    CheckSession => Done,
    SiteDocument => SiteDocumentInfo,
    EraseClosed => Done,
    GetConfig => ConfigReply,
    PutConfig => Done,
    ListClosed => ClosedPage,
    GetClosed => ClosedReply,
    Report => Delivered,
    HookMaterial => HookMaterialReply,
    HookDead => Done,
    ListDeadHooks => Vec<crate::webhook::DeadLetter>,
    RetryDeadHook => Done,
    ListParked => Vec<ParkedDelivery>,
    RetryParked => Done,
    PictureUploaded => Done,
    RetryAllParked => RetriedParked,
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
    fn a_delivery_summary_names_what_it_carries() {
        let d = Deliver {
            key: "k".into(),
            init: None,
            want_thread: false,
            events: vec![
                ConversationEvent::Note(SystemNote::Ended {
                    by: crate::engine::EndedBy::Customer,
                }),
                ConversationEvent::Status(VisitorStatus::Ended),
                ConversationEvent::Erase,
            ],
        };
        assert_eq!(d.summary(), "note ended, status ended, erase");
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
