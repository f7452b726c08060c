//! The engine's public types: commands in, effects and views out, errors, and the
//! internal state of agents and conversations (stored through [`super::stored`]).

use crate::agent::{AgentState, RequestedState};
use crate::ids::{AgentId, ConversationId, QueueId, ReasonId, SiteKey, TemplateId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A visitor as given in the pre-chat form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// A user id the site vouched for (identity verification), if any.
    #[serde(default)]
    pub verified_user_id: Option<String>,
}

/// What identifies a customer across conversations: the verified user id when the
/// site vouched for one, otherwise the email they typed (case-insensitive); a
/// customer with neither has no history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerKey {
    Verified(String),
    Email(String),
}

impl Customer {
    /// See [`CustomerKey`].
    pub fn key(&self) -> Option<CustomerKey> {
        if let Some(v) = &self.verified_user_id {
            return Some(CustomerKey::Verified(v.clone()));
        }
        self.email
            .as_ref()
            .map(|e| CustomerKey::Email(e.to_lowercase()))
    }
}

/// Where a transfer goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum TransferTarget {
    Queue(QueueId),
    Agent(AgentId),
}

/// Every input the engine knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// A visitor starts a chat on a site.
    Start {
        conversation: ConversationId,
        site: SiteKey,
        customer: Customer,
    },
    /// A visitor leaves a message instead (queue closed or nobody signed in).
    LeaveMessage {
        conversation: ConversationId,
        site: SiteKey,
        customer: Customer,
        text: String,
    },
    /// The customer wrote or typed: resets the inactivity timer.
    CustomerActivity {
        conversation: ConversationId,
    },
    /// The customer ended the chat.
    CustomerEnd {
        conversation: ConversationId,
    },
    /// The conversation object saw no customer activity for the inactivity timeout.
    Inactive {
        conversation: ConversationId,
    },
    SignIn {
        agent: AgentId,
    },
    SignOut {
        agent: AgentId,
    },
    SetState {
        agent: AgentId,
        state: RequestedState,
    },
    /// Accept a chat offer, a transfer offer or a conference request.
    Accept {
        agent: AgentId,
        conversation: ConversationId,
    },
    Transfer {
        agent: AgentId,
        conversation: ConversationId,
        target: TransferTarget,
    },
    RequestConference {
        agent: AgentId,
        conversation: ConversationId,
        guest: AgentId,
    },
    /// The owner removes the guest, or the guest leaves.
    EndConference {
        agent: AgentId,
        conversation: ConversationId,
    },
    End {
        agent: AgentId,
        conversation: ConversationId,
    },
    WrapUp {
        agent: AgentId,
        conversation: ConversationId,
        reason: ReasonId,
        next: RequestedState,
    },
    /// Deadlines up to now have passed.
    Tick,
}

/// Why a command was refused. The state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum EngineError {
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    #[error("unknown conversation {0}")]
    UnknownConversation(ConversationId),
    #[error("conversation {0} already exists")]
    DuplicateConversation(ConversationId),
    #[error("unknown site {0}")]
    UnknownSite(SiteKey),
    #[error("unknown queue {0}")]
    UnknownQueue(QueueId),
    #[error("unknown idle reason {0}")]
    UnknownIdleReason(ReasonId),
    #[error("unknown wrap-up reason {0}")]
    UnknownWrapUpReason(ReasonId),
    #[error("unknown template {0}")]
    UnknownTemplate(TemplateId),
    #[error("agent {0} is not signed in")]
    NotSignedIn(AgentId),
    #[error("conversation {0} is not offered to you (it may have been taken by someone else or expired)")]
    NotOffered(ConversationId),
    #[error("conversation {0} is not active")]
    NotActive(ConversationId),
    #[error("you are not the owner of conversation {0}")]
    NotOwner(ConversationId),
    #[error("you are not a participant of conversation {0}")]
    NotParticipant(ConversationId),
    #[error("agent {0} is not available with free capacity")]
    TargetUnavailable(AgentId),
    #[error("you cannot transfer or conference a chat to yourself")]
    SelfTarget,
    #[error("conversation {0} already has a conference or a conference request; end it first")]
    ConferenceBusy(ConversationId),
    #[error("conversation {0} has no conference")]
    NoConference(ConversationId),
    #[error("conversation {0} has already ended")]
    AlreadyEnded(ConversationId),
    #[error("no wrap-up is pending for conversation {0}")]
    NoWrapUp(ConversationId),
    #[error("agent {0} still has chats or wrap-ups open")]
    HasOpenChats(AgentId),
    #[error("the queue {0} is closed now")]
    QueueClosed(QueueId),
    #[error("no agent of queue {0} is signed in")]
    NoAgentsSignedIn(QueueId),
    #[error("the queue {queue} is full ({limit} conversations waiting); try again later or leave a message")]
    QueueFull { queue: QueueId, limit: u32 },
    #[error("this contact centre has its limit of {0} open conversations; try again later or leave a message")]
    TenantFull(u32),
    #[error("{0}")]
    Template(String),
    #[error("{0}")]
    Text(String),
    #[error("only supervisors may do this ({0} is not one)")]
    NotSupervisor(AgentId),
}

impl EngineError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        use EngineError::*;
        match self {
            UnknownAgent(_) => "unknown_agent",
            UnknownConversation(_) => "unknown_conversation",
            DuplicateConversation(_) => "duplicate_conversation",
            UnknownSite(_) => "unknown_site",
            UnknownQueue(_) => "unknown_queue",
            UnknownIdleReason(_) => "unknown_idle_reason",
            UnknownWrapUpReason(_) => "unknown_wrap_up_reason",
            UnknownTemplate(_) => "unknown_template",
            NotSignedIn(_) => "not_signed_in",
            NotOffered(_) => "not_offered",
            NotActive(_) => "not_active",
            NotOwner(_) => "not_owner",
            NotParticipant(_) => "not_participant",
            TargetUnavailable(_) => "target_unavailable",
            SelfTarget => "self_target",
            ConferenceBusy(_) => "conference_busy",
            NoConference(_) => "no_conference",
            AlreadyEnded(_) => "already_ended",
            NoWrapUp(_) => "no_wrap_up",
            HasOpenChats(_) => "has_open_chats",
            QueueClosed(_) => "queue_closed",
            NoAgentsSignedIn(_) => "no_agents_signed_in",
            QueueFull { .. } => "queue_full",
            TenantFull(_) => "tenant_full",
            Template(_) => "template_error",
            Text(_) => "invalid_text",
            NotSupervisor(_) => "not_supervisor",
        }
    }
}

/// How an offer came about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OfferKind {
    /// A chat from the queue.
    Chat,
    /// A transfer from another agent.
    Transfer { from_name: String },
    /// A conference request from the owner.
    Conference { owner_name: String },
}

/// What the contact request popover shows (SPEC §3.1); the edge adds the thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub conversation: ConversationId,
    pub customer_name: String,
    pub queue_name: String,
    pub agent_name: String,
    /// When the conversation was received: the popover's timer counts from here.
    pub received_at: DateTime<Utc>,
    pub offered_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub kind: OfferKind,
}

/// Why an offer disappeared without being accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawReason {
    Expired,
    CustomerLeft,
    StateChanged,
    OwnerCancelled,
}

/// The status line of a chat in the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChatStatus {
    Active,
    ConferenceRequested {
        guest_name: String,
    },
    Conference {
        owner_name: String,
        guest_name: String,
    },
    Ended,
}

/// An agent's role in a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Guest,
}

/// A chat as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSummary {
    pub conversation: ConversationId,
    pub customer_name: String,
    pub customer_email: Option<String>,
    /// The site's user id when the site vouched for the visitor (identity verification).
    #[serde(default)]
    pub verified_user_id: Option<String>,
    pub queue_name: String,
    pub received_at: DateTime<Utc>,
    pub role: Role,
    pub status: ChatStatus,
}

/// Events for one agent's console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AgentEvent {
    State {
        state: AgentState,
    },
    Offer(Offer),
    OfferWithdrawn {
        conversation: ConversationId,
        reason: WithdrawReason,
    },
    /// You now take part in this chat.
    Joined(ChatSummary),
    /// The status line of one of your chats changed.
    Status {
        conversation: ConversationId,
        status: ChatStatus,
    },
    /// You no longer take part in this chat (transferred away, conference ended).
    Left {
        conversation: ConversationId,
    },
    WrapUpRequired {
        conversation: ConversationId,
    },
    WrapUpDone {
        conversation: ConversationId,
    },
}

/// Why a conversation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "by",
    content = "agent",
    rename_all = "snake_case",
    try_from = "EndedByFields"
)]
pub enum EndedBy {
    Agent(AgentId),
    Customer,
    Inactivity,
    /// Nobody took the chat within the queue's maximum wait.
    MaxWait,
    /// An agent, unnamed: what a visitor is told ([`crate::transcript::Message::for_visitor`]).
    Staff,
}

// The tagged enums the visitor's widget reads are read through flat structs of all
// their fields (`…Fields`): serde's tagged forms buffer the input and compile each
// nested type twice, which made the widget larger. The JSON is the same. The structs
// are also what the widget's reader fills (`crate::mini`).

use crate::need;

#[derive(Deserialize)]
pub(crate) struct EndedByFields {
    pub(crate) by: String,
    pub(crate) agent: Option<String>,
}

impl TryFrom<EndedByFields> for EndedBy {
    type Error = String;
    fn try_from(f: EndedByFields) -> Result<Self, String> {
        Ok(match f.by.as_str() {
            "agent" => EndedBy::Agent(
                AgentId::new(need(f.agent, "agent")?).map_err(|e| format!("field `agent`: {e}"))?,
            ),
            "customer" => EndedBy::Customer,
            "inactivity" => EndedBy::Inactivity,
            "max_wait" => EndedBy::MaxWait,
            "staff" => EndedBy::Staff,
            other => return Err(format!("unknown variant `{other}` of `by`")),
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct SystemNoteFields {
    pub(crate) note: String,
    pub(crate) queue_name: Option<String>,
    pub(crate) agent_name: Option<String>,
    pub(crate) by: Option<EndedByFields>,
}

impl TryFrom<SystemNoteFields> for SystemNote {
    type Error = String;
    fn try_from(f: SystemNoteFields) -> Result<Self, String> {
        Ok(match f.note.as_str() {
            "queued" => SystemNote::Queued {
                queue_name: need(f.queue_name, "queue_name")?,
            },
            "joined" => SystemNote::Joined {
                agent_name: need(f.agent_name, "agent_name")?,
            },
            "left" => SystemNote::Left {
                agent_name: need(f.agent_name, "agent_name")?,
            },
            "transferring" => SystemNote::Transferring,
            "ended" => SystemNote::Ended {
                by: need(f.by, "by")?.try_into()?,
            },
            other => return Err(format!("unknown variant `{other}` of `note`")),
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct VisitorStatusFields {
    pub(crate) status: String,
    pub(crate) position: Option<u32>,
    pub(crate) agent_name: Option<String>,
    pub(crate) guest_name: Option<String>,
}

impl TryFrom<VisitorStatusFields> for VisitorStatus {
    type Error = String;
    fn try_from(f: VisitorStatusFields) -> Result<Self, String> {
        Ok(match f.status.as_str() {
            "queued" => VisitorStatus::Queued {
                position: need(f.position, "position")?,
            },
            "connecting" => VisitorStatus::Connecting,
            "active" => VisitorStatus::Active {
                agent_name: need(f.agent_name, "agent_name")?,
                guest_name: f.guest_name,
            },
            "ended" => VisitorStatus::Ended,
            other => return Err(format!("unknown variant `{other}` of `status`")),
        })
    }
}

/// System lines of the transcript; UIs localise them, `text_en` is a fallback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "note", rename_all = "snake_case", try_from = "SystemNoteFields")]
pub enum SystemNote {
    Queued { queue_name: String },
    Joined { agent_name: String },
    Left { agent_name: String },
    Transferring,
    Ended { by: EndedBy },
}

impl SystemNote {
    /// The note's kind as the wire names it (`"queued"`, `"ended"`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            SystemNote::Queued { .. } => "queued",
            SystemNote::Joined { .. } => "joined",
            SystemNote::Left { .. } => "left",
            SystemNote::Transferring => "transferring",
            SystemNote::Ended { .. } => "ended",
        }
    }

    /// English text of the note.
    pub fn text_en(&self) -> String {
        match self {
            SystemNote::Queued { queue_name } => format!("Waiting in queue {queue_name}"),
            SystemNote::Joined { agent_name } => format!("{agent_name} joined"),
            SystemNote::Left { agent_name } => format!("{agent_name} left"),
            SystemNote::Transferring => "You are being transferred".into(),
            SystemNote::Ended {
                by: EndedBy::Customer,
            } => "The chat was ended by the customer".into(),
            SystemNote::Ended {
                by: EndedBy::Inactivity,
            } => "The chat ended after inactivity".into(),
            SystemNote::Ended {
                by: EndedBy::Agent(_) | EndedBy::Staff,
            } => "The chat was ended by the agent".into(),
            SystemNote::Ended {
                by: EndedBy::MaxWait,
            } => "No agent could take your chat in time. You can leave a message.".into(),
        }
    }
}

/// What the visitor's widget shows in its status bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "status",
    rename_all = "snake_case",
    try_from = "VisitorStatusFields"
)]
pub enum VisitorStatus {
    /// In the queue; 1 is next.
    Queued {
        position: u32,
    },
    /// An agent is being asked right now.
    Connecting,
    Active {
        agent_name: String,
        guest_name: Option<String>,
    },
    Ended,
}

impl VisitorStatus {
    /// The status as the wire names it (`"queued"`, `"active"`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            VisitorStatus::Queued { .. } => "queued",
            VisitorStatus::Connecting => "connecting",
            VisitorStatus::Active { .. } => "active",
            VisitorStatus::Ended => "ended",
        }
    }
}

/// Events for one conversation (its transcript and its visitor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ConversationEvent {
    /// Append a system line to the transcript.
    Note(SystemNote),
    /// New status for the visitor.
    Status(VisitorStatus),
    /// Who may connect to the conversation now (replaces the previous list).
    Access {
        version: u32,
        agents: Vec<Participant>,
        inactivity_secs: u32,
    },
    /// An agent's sessions were revoked: close their sockets, refuse their tickets
    /// issued before `at` (seconds since the epoch). Sent by the tenant's shell.
    Revoked { agent: AgentId, at: i64 },
    /// Delete everything this conversation holds (retention or an erasure request).
    /// Sent by the tenant's shell.
    Erase,
}

/// An agent allowed on a conversation's socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub agent: AgentId,
    pub name: String,
    pub can_write: bool,
}

/// One submitted wrap-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrapUpRecord {
    pub agent: AgentId,
    pub reason: ReasonId,
    pub at: DateTime<Utc>,
}

/// A queue the conversation was in, and when it entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueVisit {
    pub queue: QueueId,
    pub entered_at: DateTime<Utc>,
}

/// Kind of a closed conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Chat,
    LeftMessage,
}

/// A conversation that is over, with everything to keep (SPEC §3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedConversation {
    pub id: ConversationId,
    pub kind: ConversationKind,
    pub site: SiteKey,
    pub customer: Customer,
    pub queue_history: Vec<QueueVisit>,
    pub agents: Vec<AgentId>,
    pub created_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: DateTime<Utc>,
    pub ended_by: Option<EndedBy>,
    pub wait_secs: i64,
    pub handle_secs: i64,
    pub wrap_ups: Vec<WrapUpRecord>,
    /// The text of a left message.
    pub message: Option<String>,
    /// The visitor's rating after the chat ended, if they gave one.
    #[serde(default)]
    pub rating: Option<Rating>,
}

/// A visitor's rating of an ended chat ([`crate::intake::check_rating`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    /// 1 (poor) to 5 (excellent).
    pub score: u8,
    #[serde(default)]
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

/// What comes out of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Effect {
    Agent {
        agent: AgentId,
        event: AgentEvent,
    },
    Conversation {
        conversation: ConversationId,
        event: ConversationEvent,
    },
    Closed(Box<ClosedConversation>),
}

/// A conference on an active chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "conference", rename_all = "snake_case")]
pub enum Conference {
    Requested {
        guest: AgentId,
        deadline: DateTime<Utc>,
        requested_at: DateTime<Utc>,
    },
    Joined {
        guest: AgentId,
    },
}

/// Where a live conversation is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "place", rename_all = "snake_case")]
pub enum Place {
    Queued,
    Offered {
        agent: AgentId,
        offered_at: DateTime<Utc>,
        deadline: DateTime<Utc>,
        transfer_from: Option<AgentId>,
    },
    Active {
        owner: AgentId,
        conference: Option<Conference>,
    },
    /// Ended; waiting for wrap-ups.
    Ended,
}

/// A live (not yet closed) conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub site: SiteKey,
    /// Current or last queue.
    pub queue: QueueId,
    pub customer: Customer,
    pub created_at: DateTime<Utc>,
    pub place: Place,
    pub queue_history: Vec<QueueVisit>,
    pub agents: Vec<AgentId>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<EndedBy>,
    pub last_customer_activity: DateTime<Utc>,
    /// Agents who still owe a wrap-up for this conversation.
    pub pending_wrap_ups: BTreeSet<AgentId>,
    pub wrap_ups: Vec<WrapUpRecord>,
    /// Last status sent to the visitor.
    pub announced: Option<VisitorStatus>,
    /// Order in the queue while queued (smaller is nearer the front).
    #[serde(default)]
    pub queue_key: i64,
    /// Version of the last access list sent to the conversation.
    #[serde(default)]
    pub access_version: u32,
    /// The last access list sent to the conversation.
    #[serde(default)]
    pub announced_access: Vec<Participant>,
    /// The owner when the chat ended (reads the thread until the wrap-up).
    #[serde(default)]
    pub ended_owner: Option<AgentId>,
    /// Since when the customer waits for an agent (start, transfer to a queue, or
    /// losing their agent); an offer not accepted does not reset it.
    #[serde(default)]
    pub waiting_since: Option<DateTime<Utc>>,
}

/// An agent's live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRuntime {
    pub state: AgentState,
    /// When the agent last got an offer or a chat (routing fairness).
    pub last_routed: DateTime<Utc>,
    /// Conversations the agent takes part in (as owner or guest).
    pub chats: BTreeSet<ConversationId>,
    /// The one pending offer or conference request.
    pub offer: Option<ConversationId>,
    /// Conversations the agent owes a wrap-up for.
    pub wrap_ups: BTreeSet<ConversationId>,
    /// When the current sign-in expires.
    #[serde(default)]
    pub session_expires: Option<DateTime<Utc>>,
    /// When the agent entered the current state (supervisor view).
    #[serde(default)]
    pub state_since: Option<DateTime<Utc>>,
    /// RONAs on one day of the contact centre (supervisor view).
    #[serde(default)]
    pub ronas: DayCount,
}

/// A count that starts over each day; the day is the contact centre's local date
/// ([`crate::config::TenantConfig::local_date`]), given by the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    pub day: Option<chrono::NaiveDate>,
    pub count: u32,
}

impl DayCount {
    /// The count on `today`.
    pub fn on(&self, today: chrono::NaiveDate) -> u32 {
        if self.day == Some(today) {
            self.count
        } else {
            0
        }
    }
    /// Counts one on `today`.
    pub fn bump(&mut self, today: chrono::NaiveDate) {
        self.count = self.on(today) + 1;
        self.day = Some(today);
    }
}

impl AgentRuntime {
    pub(super) fn signed_out() -> Self {
        Self {
            state: AgentState::SignedOut,
            last_routed: DateTime::<Utc>::MIN_UTC,
            chats: BTreeSet::new(),
            offer: None,
            wrap_ups: BTreeSet::new(),
            session_expires: None,
            state_since: None,
            ronas: DayCount::default(),
        }
    }
    /// Chats + wrap-ups + pending offer.
    pub fn load(&self) -> usize {
        self.chats.len() + self.wrap_ups.len() + usize::from(self.offer.is_some())
    }
}

#[derive(Deserialize)]
pub(crate) struct AvailabilityFields {
    pub(crate) availability: String,
    pub(crate) queue_name: String,
}

impl TryFrom<AvailabilityFields> for Availability {
    type Error = String;
    fn try_from(f: AvailabilityFields) -> Result<Self, String> {
        let queue_name = f.queue_name;
        Ok(match f.availability.as_str() {
            "open" => Availability::Open { queue_name },
            "closed" => Availability::Closed { queue_name },
            "no_agents" => Availability::NoAgents { queue_name },
            other => return Err(format!("unknown variant `{other}` of `availability`")),
        })
    }
}

/// Whether a site's queue takes chats now. Read through a flat struct (see
/// [`SystemNote`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "availability",
    rename_all = "snake_case",
    try_from = "AvailabilityFields"
)]
pub enum Availability {
    Open { queue_name: String },
    Closed { queue_name: String },
    NoAgents { queue_name: String },
}

/// An entry of the transfer/conference dialogs' lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetAgent {
    pub id: AgentId,
    pub name: String,
}

/// An entry of the transfer dialog's queue list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetQueue {
    pub id: QueueId,
    pub name: String,
    pub waiting: u32,
}

/// What an agent's console needs after (re)connecting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSnapshot {
    pub agent: AgentId,
    pub name: String,
    pub capacity: u32,
    pub state: AgentState,
    pub offer: Option<Offer>,
    pub chats: Vec<ChatSummary>,
    pub wrap_ups: Vec<ChatSummary>,
    /// Supervisor or admin rights (the console shows their views).
    #[serde(default)]
    pub role: crate::config::Role,
}
