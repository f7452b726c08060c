//! Versioned JSON frames (SPEC §6).
//!
//! Rules:
//! - Every frame is a JSON object with `"v": 1` and a `"type"` tag naming the variant.
//! - [`decode`] refuses a frame that is not a JSON object, lacks `v`, has another
//!   version, names an unknown type, or lacks or mistypes a field; the error names
//!   the field and the problem. A field the frame's type does not have is refused
//!   too (also on types without fields, like `ping`). Nothing is acted on unless the
//!   whole frame decodes.
//! - Socket frames: visitor → edge [`VisitorFrame`], edge → visitor [`VisitorEvent`],
//!   agent → tenant [`AgentFrame`] (state, offers, routing), agent → one chat
//!   [`AgentChatFrame`] (messages, typing), edge → agent [`AgentServerFrame`].
//! - An agent's messages travel only on a chat socket, opened on the conversation
//!   itself with a short-lived ticket ([`AgentServerFrame::Ticket`]).
//! - HTTP bodies: [`StartRequest`], [`StartResponse`], [`SignInRequest`],
//!   [`SignInResponse`], [`ErrorBody`], admin bodies.
//! - Calls between Durable Objects are in [`crate::rpc`].

use crate::agent::RequestedState;
use crate::config::TenantConfig;
use crate::engine::{
    AgentEvent, AgentSnapshot, Availability, Offer, TargetAgent, TargetQueue, TransferTarget,
    VisitorStatus,
};
use crate::ids::{AgentId, ClientMsgId, ConversationId, ReasonId, SiteKey, TemplateId, TenantId};
use crate::transcript::Message;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The protocol version spoken here.
pub const VERSION: u64 = 1;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid frame: {0}")]
pub struct FrameError(pub String);

/// Encodes a frame with its version (first), serializing once.
pub fn encode<T: Serialize>(frame: &T) -> String {
    let s = serde_json::to_string(frame).unwrap_or_default();
    match s.strip_prefix('{') {
        Some("}") => format!("{{\"v\":{VERSION}}}"),
        Some(rest) => format!("{{\"v\":{VERSION},{rest}"),
        None => s,
    }
}

/// Decodes a frame, checking its version; the error names the field and the problem.
pub fn decode<T: DeserializeOwned + Serialize>(text: &str) -> Result<T, FrameError> {
    let mut v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| FrameError(format!("not JSON ({e})")))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| FrameError("not a JSON object".into()))?;
    match obj.remove("v") {
        None => return Err(FrameError("field `v`: missing protocol version".into())),
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(VERSION) => {}
        Some(other) => {
            return Err(FrameError(format!(
                "field `v`: unsupported protocol version {other}; this service speaks {VERSION}"
            )))
        }
    }
    if !obj.contains_key("type") {
        return Err(FrameError("field `type`: missing".into()));
    }
    let given: Vec<String> = obj.keys().cloned().collect();
    let frame: T = serde_json::from_value(v).map_err(|e| FrameError(e.to_string()))?;
    // serde ignores extra fields on variants without fields; look for them here.
    if let Ok(serde_json::Value::Object(known)) = serde_json::to_value(&frame) {
        if let Some(extra) = given.iter().find(|k| !known.contains_key(k.as_str())) {
            return Err(FrameError(format!(
                "field `{extra}`: unknown for this frame type"
            )));
        }
    }
    Ok(frame)
}

/// Decodes a frame from the service in a UI: the version is checked, fields this
/// build does not know are ignored (a newer service may add some). Parses the text
/// straight into `T` (no `serde_json::Value` on the way, as in [`decode`], which
/// keeps the visitor's widget small); the service itself always uses [`decode`].
pub fn decode_from_service<T: DeserializeOwned>(text: &str) -> Result<T, FrameError> {
    #[derive(Deserialize)]
    struct Version {
        v: Option<u64>,
    }
    let Version { v } =
        serde_json::from_str(text).map_err(|e| FrameError(format!("not a JSON frame ({e})")))?;
    match v {
        Some(VERSION) => serde_json::from_str(text).map_err(|e| FrameError(e.to_string())),
        Some(other) => Err(FrameError(format!(
            "field `v`: unsupported protocol version {other}; this client speaks {VERSION}"
        ))),
        None => Err(FrameError("field `v`: missing protocol version".into())),
    }
}

/// Decodes a plain JSON body (no version); the error names the field.
pub fn decode_body<T: DeserializeOwned>(text: &str) -> Result<T, FrameError> {
    serde_json::from_str(text).map_err(|e| FrameError(e.to_string()))
}

/// Visitor → edge, on the conversation socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VisitorFrame {
    Send {
        client_id: ClientMsgId,
        text: String,
    },
    /// After the end: 1 to 5, with an optional comment; once.
    Rate {
        score: u8,
        #[serde(default)]
        comment: Option<String>,
    },
    Typing {
        typing: bool,
    },
    End,
    Ping,
    /// The page the visitor is on (at start, on resume and when the page changes).
    Page {
        url: String,
        #[serde(default)]
        title: String,
        #[serde(default)]
        time_zone: String,
    },
}

/// Edge → visitor.
///
/// Read through [`VisitorEventFields`] (one flat struct) rather than serde's
/// internally tagged form, which buffers every frame and compiles each nested type
/// twice: that kept the visitor's widget about 25 KB larger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    try_from = "VisitorEventFields"
)]
pub enum VisitorEvent {
    /// First frame after connecting; the missed messages follow as `message` frames.
    Welcome {
        conversation: ConversationId,
        status: VisitorStatus,
        last_seq: u64,
    },
    Message {
        message: Message,
    },
    Status {
        status: VisitorStatus,
    },
    Typing {
        typing: bool,
        name: String,
    },
    /// Your message `client_id` is stored as `seq`. The stored message comes with
    /// it (the sending socket gets no separate `message` frame for it).
    Ack {
        client_id: ClientMsgId,
        seq: u64,
        #[serde(default)]
        message: Option<Message>,
    },
    Error {
        code: String,
        message: String,
    },
    /// Your rating is stored.
    Rated {
        score: u8,
    },
    Pong,
}

/// Every field a [`VisitorEvent`] may have; `type` says which must be there.
/// `message` is a stored message in `message` and `ack` frames and a text in `error`
/// frames, so it is kept as raw JSON until the type is known.
#[derive(Deserialize)]
struct VisitorEventFields {
    #[serde(rename = "type")]
    kind: String,
    conversation: Option<ConversationId>,
    status: Option<VisitorStatus>,
    last_seq: Option<u64>,
    message: Option<Box<serde_json::value::RawValue>>,
    typing: Option<bool>,
    name: Option<String>,
    client_id: Option<ClientMsgId>,
    seq: Option<u64>,
    code: Option<String>,
    score: Option<u8>,
}

impl TryFrom<VisitorEventFields> for VisitorEvent {
    type Error = String;

    fn try_from(f: VisitorEventFields) -> Result<Self, String> {
        use crate::need;
        let message =
            |raw: Option<Box<serde_json::value::RawValue>>| -> Result<Option<Message>, String> {
                raw.map(|r| {
                    serde_json::from_str(r.get()).map_err(|e| format!("field `message`: {e}"))
                })
                .transpose()
            };
        Ok(match f.kind.as_str() {
            "welcome" => VisitorEvent::Welcome {
                conversation: need(f.conversation, "conversation")?,
                status: need(f.status, "status")?,
                last_seq: need(f.last_seq, "last_seq")?,
            },
            "message" => VisitorEvent::Message {
                message: need(message(f.message)?, "message")?,
            },
            "status" => VisitorEvent::Status {
                status: need(f.status, "status")?,
            },
            "typing" => VisitorEvent::Typing {
                typing: need(f.typing, "typing")?,
                name: need(f.name, "name")?,
            },
            "ack" => VisitorEvent::Ack {
                client_id: need(f.client_id, "client_id")?,
                seq: need(f.seq, "seq")?,
                message: message(f.message)?,
            },
            "error" => VisitorEvent::Error {
                code: need(f.code, "code")?,
                message: serde_json::from_str(need(f.message, "message")?.get())
                    .map_err(|e| format!("field `message`: {e}"))?,
            },
            "rated" => VisitorEvent::Rated {
                score: need(f.score, "score")?,
            },
            "pong" => VisitorEvent::Pong,
            other => return Err(format!("unknown frame type `{other}`")),
        })
    }
}

/// Agent → edge, on the agent socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentFrame {
    SetState {
        state: RequestedState,
    },
    Accept {
        conversation: ConversationId,
    },
    /// A fresh ticket for a chat socket (the last one expired before reconnecting).
    Ticket {
        conversation: ConversationId,
    },
    Transfer {
        conversation: ConversationId,
        target: TransferTarget,
    },
    Conference {
        conversation: ConversationId,
        guest: AgentId,
    },
    EndConference {
        conversation: ConversationId,
    },
    End {
        conversation: ConversationId,
    },
    WrapUp {
        conversation: ConversationId,
        reason: ReasonId,
        next: RequestedState,
    },
    /// Ask for the Transfer/Conference dialogs' lists (the refresh button).
    Targets,
    /// List the messages visitors left while nobody was available.
    LeftMessages,
    /// Render a template for a conversation into the compose box.
    Template {
        conversation: ConversationId,
        template: TemplateId,
    },
    SignOut,
    Ping,
    /// Supervisors: send the live view now (it then follows every change).
    Supervise,
    /// Supervisors: a read-only ticket for any live chat.
    Observe {
        conversation: ConversationId,
    },
    /// Supervisors: sign an agent out (their sockets close with the reason).
    SignOutAgent {
        agent: AgentId,
    },
    /// Earlier conversations of the same customer (verified user id or email).
    History {
        conversation: ConversationId,
    },
    /// The transcript of one of those earlier conversations.
    PastTranscript {
        conversation: ConversationId,
        id: ConversationId,
    },
}

/// Agent → one conversation, on its chat socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentChatFrame {
    Send {
        client_id: ClientMsgId,
        text: String,
    },
    Typing {
        typing: bool,
    },
    Ping,
}

/// A template as listed in the picker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateInfo {
    pub id: TemplateId,
    pub name: String,
    pub text: String,
}

/// A reason as listed in dropdowns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonInfo {
    pub id: ReasonId,
    pub label: String,
    pub label_de: String,
}

// A frame exists only to be encoded or matched once; boxing the snapshot buys nothing.
#[allow(clippy::large_enum_variant)]
/// Edge → agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentServerFrame {
    /// First frame after connecting: everything the console shows.
    Snapshot {
        snapshot: AgentSnapshot,
        /// The thread of the pending offer, if any (chats load on their own sockets).
        transcripts: BTreeMap<ConversationId, Vec<Message>>,
        /// Chat-socket tickets for the agent's chats and wrap-ups.
        #[serde(default)]
        tickets: BTreeMap<ConversationId, String>,
        idle_reasons: Vec<ReasonInfo>,
        wrap_up_reasons: Vec<ReasonInfo>,
        templates: Vec<TemplateInfo>,
    },
    /// The tenant's configuration changed: reasons and templates as they are now.
    Config {
        idle_reasons: Vec<ReasonInfo>,
        wrap_up_reasons: Vec<ReasonInfo>,
        templates: Vec<TemplateInfo>,
    },
    /// A new offer with the thread so far.
    Offer {
        offer: Offer,
        thread: Vec<Message>,
    },
    /// Any other engine event.
    Event {
        event: AgentEvent,
    },
    /// A ticket to open (or reopen) the chat socket of `conversation`; valid 30 s.
    Ticket {
        conversation: ConversationId,
        ticket: String,
    },
    /// First frame on a chat socket; the missed messages follow as `message` frames.
    Welcome {
        conversation: ConversationId,
        last_seq: u64,
        /// Whether this agent may write (owner or guest) or only read (wrap-up).
        can_write: bool,
    },
    /// The full thread of a chat the agent just joined.
    Transcript {
        conversation: ConversationId,
        messages: Vec<Message>,
    },
    Message {
        conversation: ConversationId,
        message: Message,
    },
    Typing {
        conversation: ConversationId,
        typing: bool,
        name: String,
    },
    /// Your message is stored as `seq`; the stored message comes with it (the
    /// sending socket gets no separate `message` frame for it).
    Ack {
        conversation: ConversationId,
        client_id: ClientMsgId,
        seq: u64,
        #[serde(default)]
        message: Option<Message>,
    },
    Targets {
        queues: Vec<TargetQueue>,
        agents: Vec<TargetAgent>,
    },
    /// Left messages, newest first.
    LeftMessages {
        messages: Vec<crate::engine::ClosedConversation>,
    },
    Template {
        conversation: ConversationId,
        text: String,
        /// Parameters whose values held `<` or `>`, which were removed (the console says so).
        #[serde(default)]
        stripped: Vec<String>,
    },
    Error {
        code: String,
        message: String,
    },
    Pong,
    /// Supervisors: queues, agents and the day's figures, after every change.
    Supervisor {
        view: crate::engine::SupervisorView,
    },
    /// Supervisors: a read-only chat-socket ticket for `conversation`; valid 30 s.
    Observe {
        conversation: ConversationId,
        ticket: String,
    },
    /// On a chat socket: the visitor's pages, browser and time zone (after `welcome`
    /// and whenever they change).
    Visitor {
        conversation: ConversationId,
        info: crate::visitor::VisitorInfo,
    },
    /// Earlier conversations of the customer of `conversation`, newest first.
    History {
        conversation: ConversationId,
        items: Vec<crate::engine::ClosedConversation>,
    },
    /// The transcript of an earlier conversation.
    PastTranscript {
        id: ConversationId,
        messages: Vec<Message>,
    },
}

/// `POST /api/v1/conversations`: a visitor starts a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    pub site: SiteKey,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    pub text: String,
    pub client_id: ClientMsgId,
    /// Identity verification: the site's user id…
    #[serde(default)]
    pub user_id: Option<String>,
    /// …and HMAC-SHA256(site secret, user_id) in hex.
    #[serde(default)]
    pub user_hash: Option<String>,
}

/// Answer to [`StartRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartResponse {
    pub conversation: ConversationId,
    /// Bearer token for this conversation only; keep it secret.
    pub token: String,
    pub status: VisitorStatus,
}

/// `POST /api/v1/messages`: leave a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveMessageRequest {
    pub site: SiteKey,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    pub text: String,
}

/// `GET /api/v1/sites/{key}`: what the widget needs before starting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteInfo {
    pub site: SiteKey,
    pub name: String,
    pub language: String,
    pub availability: Availability,
    /// The widget's accent colour (`#rrggbb`), if the site sets one.
    #[serde(default)]
    pub accent: Option<String>,
    /// "Typically replies within N minutes", if the site says so.
    #[serde(default)]
    pub typical_reply_mins: Option<u32>,
    /// Up to three agents of the site's queue (initials and pictures in the header).
    #[serde(default)]
    pub team: Vec<TeamFace>,
}

/// One agent of a site's team as the widget's header shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamFace {
    pub initials: String,
    /// Where the agent's picture is served (`/api/v1/avatars/{tenant}/{id}`), if they
    /// have one.
    #[serde(default)]
    pub picture: Option<String>,
}

/// `POST /api/v1/agent/sign-in`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    pub tenant: TenantId,
    pub agent: AgentId,
    pub password: String,
}

/// Answer to [`SignInRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInResponse {
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub agent: AgentId,
    pub name: String,
}

/// Every HTTP error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

/// `PUT /api/v1/admin/config`: the whole configuration plus passwords to set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub config: TenantConfig,
    /// New passwords by agent; agents not named keep theirs. Every agent needs one eventually.
    #[serde(default)]
    pub passwords: BTreeMap<AgentId, String>,
    /// Identity-verification secrets by site (at least 32 bytes each).
    #[serde(default)]
    pub site_secrets: BTreeMap<SiteKey, String>,
    /// Password hashes (PHC strings) by agent. The Worker turns `passwords` into
    /// these before the tenant sees them; an admin may also import them directly.
    #[serde(default)]
    pub password_hashes: BTreeMap<AgentId, String>,
    /// A new webhook signing secret (at least 32 bytes); omitted keeps the stored one.
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EndedBy, SystemNote};
    use crate::ids::QueueId;
    use crate::transcript::Author;
    use chrono::DateTime;

    fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(f: T) {
        let s = encode(&f);
        let back: T = decode(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(back, f, "{s}");
    }

    /// A frame of the service: the UIs' decoder reads it the same.
    fn roundtrip_from_service<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(f: T) {
        let s = encode(&f);
        let back: T = decode_from_service(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(back, f, "{s}");
        roundtrip(f);
    }

    /// The tagged enums read through flat structs read every variant back, and refuse
    /// an unknown variant or a missing field by name.
    #[test]
    fn tagged_values_read_back() {
        fn back<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: T) {
            let s = serde_json::to_string(&v).unwrap();
            assert_eq!(serde_json::from_str::<T>(&s).unwrap(), v, "{s}");
            let value = serde_json::to_value(&v).unwrap();
            assert_eq!(serde_json::from_value::<T>(value).unwrap(), v, "{s}");
        }
        let a = AgentId::new("anna").unwrap();
        for by in [
            EndedBy::Agent(a.clone()),
            EndedBy::Customer,
            EndedBy::Inactivity,
            EndedBy::MaxWait,
            EndedBy::Staff,
        ] {
            back(by.clone());
            back(SystemNote::Ended { by });
        }
        back(SystemNote::Queued {
            queue_name: "Q".into(),
        });
        back(SystemNote::Joined {
            agent_name: "A".into(),
        });
        back(SystemNote::Left {
            agent_name: "A".into(),
        });
        back(SystemNote::Transferring);
        for a in [
            Author::Customer { name: "C".into() },
            Author::Agent {
                id: a.clone(),
                name: "A".into(),
            },
            Author::Staff { name: "A".into() },
            Author::System,
        ] {
            back(a);
        }
        for st in [
            VisitorStatus::Queued { position: 3 },
            VisitorStatus::Connecting,
            VisitorStatus::Active {
                agent_name: "A".into(),
                guest_name: Some("G".into()),
            },
            VisitorStatus::Active {
                agent_name: "A".into(),
                guest_name: None,
            },
            VisitorStatus::Ended,
        ] {
            back(st);
        }
        for q in [
            Availability::Open {
                queue_name: "Q".into(),
            },
            Availability::Closed {
                queue_name: "Q".into(),
            },
            Availability::NoAgents {
                queue_name: "Q".into(),
            },
        ] {
            back(q);
        }
        let err = |s: &str| {
            serde_json::from_str::<SystemNote>(s)
                .unwrap_err()
                .to_string()
        };
        assert!(err(r#"{"note":"nope"}"#).contains("unknown variant `nope`"));
        assert!(err(r#"{"note":"queued"}"#).contains("missing field `queue_name`"));
        assert!(err(r#"{"note":"ended","by":{"by":"agent"}}"#).contains("missing field `agent`"));
        assert!(
            serde_json::from_str::<Author>(r#"{"kind":"agent","name":"A"}"#)
                .unwrap_err()
                .to_string()
                .contains("missing field `id`")
        );
    }

    #[test]
    fn a_ui_reads_newer_frames_but_not_other_versions() {
        let pong = |s: &str| decode_from_service::<VisitorEvent>(s);
        assert_eq!(
            pong(r#"{"v":1,"type":"pong","later":true}"#),
            Ok(VisitorEvent::Pong)
        );
        assert!(pong(r#"{"v":2,"type":"pong"}"#)
            .unwrap_err()
            .0
            .contains("unsupported protocol version 2"));
        assert!(pong(r#"{"type":"pong"}"#)
            .unwrap_err()
            .0
            .contains("missing"));
        assert!(pong("3").unwrap_err().0.contains("not a JSON frame"));
        assert!(pong(r#"{"v":1,"type":"nope"}"#).is_err());
    }

    fn cid() -> ConversationId {
        ConversationId::new("c1").unwrap()
    }
    fn msg() -> Message {
        Message {
            seq: 1,
            client_id: None,
            author: Author::System,
            text: "x".into(),
            note: Some(SystemNote::Ended {
                by: EndedBy::Agent(AgentId::new("a").unwrap()),
            }),
            at: DateTime::from_timestamp(0, 0).unwrap(),
            attachment: None,
        }
    }

    #[test]
    fn every_visitor_frame_roundtrips() {
        roundtrip(VisitorFrame::Send {
            client_id: ClientMsgId::new("m1").unwrap(),
            text: "hi".into(),
        });
        roundtrip(VisitorFrame::Typing { typing: true });
        roundtrip(VisitorFrame::End);
        roundtrip(VisitorFrame::Ping);
        roundtrip_from_service(VisitorEvent::Welcome {
            conversation: cid(),
            status: VisitorStatus::Queued { position: 2 },
            last_seq: 3,
        });
        roundtrip_from_service(VisitorEvent::Message { message: msg() });
        roundtrip_from_service(VisitorEvent::Status {
            status: VisitorStatus::Active {
                agent_name: "A".into(),
                guest_name: None,
            },
        });
        roundtrip_from_service(VisitorEvent::Typing {
            typing: false,
            name: "A".into(),
        });
        roundtrip_from_service(VisitorEvent::Ack {
            client_id: ClientMsgId::new("m1").unwrap(),
            seq: 1,
            message: Some(msg()),
        });
        roundtrip_from_service(VisitorEvent::Error {
            code: "x".into(),
            message: "y".into(),
        });
        roundtrip_from_service(VisitorEvent::Pong);
    }

    #[test]
    fn every_agent_frame_roundtrips() {
        let a = AgentId::new("anna").unwrap();
        for f in [
            AgentFrame::SetState {
                state: RequestedState::Available,
            },
            AgentFrame::SetState {
                state: RequestedState::Idle {
                    reason: ReasonId::new("break").unwrap(),
                },
            },
            AgentFrame::Accept {
                conversation: cid(),
            },
            AgentFrame::Ticket {
                conversation: cid(),
            },
            AgentFrame::Transfer {
                conversation: cid(),
                target: TransferTarget::Queue(QueueId::new("q").unwrap()),
            },
            AgentFrame::Transfer {
                conversation: cid(),
                target: TransferTarget::Agent(a.clone()),
            },
            AgentFrame::Conference {
                conversation: cid(),
                guest: a.clone(),
            },
            AgentFrame::EndConference {
                conversation: cid(),
            },
            AgentFrame::End {
                conversation: cid(),
            },
            AgentFrame::WrapUp {
                conversation: cid(),
                reason: ReasonId::new("solved").unwrap(),
                next: RequestedState::Available,
            },
            AgentFrame::Targets,
            AgentFrame::LeftMessages,
            AgentFrame::Template {
                conversation: cid(),
                template: TemplateId::new("t").unwrap(),
            },
            AgentFrame::SignOut,
            AgentFrame::Ping,
        ] {
            roundtrip(f);
        }
        roundtrip_from_service(AgentServerFrame::Message {
            conversation: cid(),
            message: msg(),
        });
        roundtrip_from_service(AgentServerFrame::Event {
            event: AgentEvent::Left {
                conversation: cid(),
            },
        });
        roundtrip_from_service(AgentServerFrame::Ack {
            conversation: cid(),
            client_id: ClientMsgId::new("m").unwrap(),
            seq: 4,
            message: None,
        });
        roundtrip_from_service(AgentServerFrame::Targets {
            queues: vec![],
            agents: vec![TargetAgent {
                id: a,
                name: "Anna".into(),
            }],
        });
        roundtrip_from_service(AgentServerFrame::Error {
            code: "c".into(),
            message: "m".into(),
        });
        roundtrip_from_service(AgentServerFrame::Ticket {
            conversation: cid(),
            ticket: "t".into(),
        });
        roundtrip_from_service(AgentServerFrame::Welcome {
            conversation: cid(),
            last_seq: 4,
            can_write: true,
        });
        for f in [
            AgentChatFrame::Send {
                client_id: ClientMsgId::new("m").unwrap(),
                text: "t".into(),
            },
            AgentChatFrame::Typing { typing: true },
            AgentChatFrame::Ping,
        ] {
            assert_eq!(decode::<AgentChatFrame>(&encode(&f)).unwrap(), f);
        }
    }

    #[test]
    fn invalid_frames_name_the_problem() {
        let e = |s: &str| decode::<VisitorFrame>(s).unwrap_err().to_string();
        assert!(e("nope").contains("not JSON"));
        assert!(e("[1]").contains("not a JSON object"));
        assert!(e(r#"{"type":"ping"}"#).contains("field `v`: missing"));
        assert!(e(r#"{"v":2,"type":"ping"}"#).contains("unsupported protocol version 2"));
        assert!(e(r#"{"v":1}"#).contains("field `type`"));
        assert!(e(r#"{"v":1,"type":"dance"}"#).contains("unknown variant `dance`"));
        assert!(e(r#"{"v":1,"type":"send","client_id":"m1"}"#).contains("missing field `text`"));
        assert!(e(r#"{"v":1,"type":"send","client_id":"m 1","text":"x"}"#)
            .contains("invalid client message id"));
        assert!(e(r#"{"v":1,"type":"typing","typing":"yes"}"#).contains("invalid type"));
    }
}
