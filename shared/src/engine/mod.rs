//! The tenant engine: routing and the life of every conversation (SPEC §2, §3).
//!
//! Sans-IO: [`Tenant::handle`] takes the time and one [`Command`] and returns the
//! [`Effect`]s to deliver, or an [`EngineError`] with the state **unchanged**.
//! [`Tenant::next_deadline`] tells when to call again with [`Command::Tick`].
//! A command touches only the rows it changes: agents and conversations live in
//! journaled [`Table`]s, a refused command is rolled back row by row (no copy of the
//! tenant), and [`Tenant::take_changes`] names the rows the edge must write. Nothing
//! on a command's path walks every conversation: deadlines sit in an ordered index,
//! and visitor statuses are recomputed only for touched conversations and the
//! members of touched queues.
//!
//! Rules:
//! - A new conversation enters its site's queue at the back. Each queue is
//!   first-in first-out; a conversation whose offer was not accepted goes back to
//!   the **front** of its queue.
//! - A conversation is offered to one agent at a time: the Available agent of the
//!   queue, below capacity and without a pending offer, who has waited longest since
//!   their last offer or chat. An agent holds at most one pending offer.
//! - An agent's load is chats + pending wrap-ups + pending offer; offers are made
//!   only while load < capacity, so capacity is never exceeded.
//! - An offer not accepted by its deadline (the queue's offer timeout) sends the
//!   agent to RONA and the conversation back to the front of its queue. RONA is left
//!   only by the agent's own state change.
//! - Only the agent an offer went to can accept it; a second accept gets
//!   [`EngineError::NotOffered`], so two agents cannot both win.
//! - Going Idle or signing out withdraws a pending offer (front of queue, no RONA).
//!   Signing out is refused while the agent has chats or wrap-ups.
//! - Only the owner of an Active conversation transfers, conferences or ends it.
//!   Transfer to a queue puts it at the back of that queue; transfer to an agent
//!   offers it to that agent (who must be Available with free capacity); if the
//!   target does not accept in time the request is discarded, the target goes to
//!   RONA and the conversation re-enters its last queue at the front. Either way the
//!   transferring agent is released into wrap-up for it, and is not offered that
//!   conversation again before submitting that wrap-up.
//! - A conference request goes to one Available agent with free capacity. Accepted:
//!   the guest joins (all see all messages). Not accepted in time: the request is
//!   discarded and the guest goes to RONA. End Conference (owner, or the guest
//!   leaving) removes the guest; the owner keeps the chat. A conversation must have
//!   no conference to be transferred.
//! - A conversation ends by its owner, by the customer, or after the queue's
//!   inactivity timeout without customer activity while Active. The owner then owes
//!   a wrap-up (reason + next state); a guest just leaves. A conversation is closed,
//!   and leaves the engine as [`Effect::Closed`], once it has ended and every
//!   wrap-up owed for it is submitted.
//! - A sign-in expires after [`crate::agent::SESSION_SECS`]: the agent is signed out, a
//!   pending offer withdrawn, owned chats go back to the front of their queue (nobody is
//!   dropped), conference seats are given up and owed wrap-ups are dropped.
//! - A chat can start only while its queue is open and an agent of the queue is
//!   signed in; otherwise the visitor may leave a message, which is closed at once
//!   and never offered. A start is also refused when its queue holds
//!   `max_queue_length` conversations or the tenant `max_open_conversations`.
//! - A conversation waits in queues at most its queue's `max_wait_secs` (counted from
//!   entering its current queue); then it ends ([`EndedBy::MaxWait`]) and the visitor
//!   may leave a message.
//! - Inactivity is measured by the conversation object (it sees every message); it
//!   reports the end with [`Command::Inactive`], which ends only an Active chat.
//! - Who may connect to a conversation's socket is announced to the conversation as
//!   [`ConversationEvent::Access`]: the owner and a joined guest may write; an owner
//!   who owes the wrap-up of an ended chat may read. Every change bumps its version.

mod table;
pub use table::Table;

use crate::agent::{AgentState, RequestedState};
use crate::config::TenantConfig;
use crate::ids::{AgentId, ConversationId, QueueId, ReasonId, SiteKey, TemplateId};
use crate::template::{Template, TemplateContext};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

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
#[serde(tag = "by", content = "agent", rename_all = "snake_case")]
pub enum EndedBy {
    Agent(AgentId),
    Customer,
    Inactivity,
    /// Nobody took the chat within the queue's maximum wait.
    MaxWait,
}

/// System lines of the transcript; UIs localise them, `text_en` is a fallback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum SystemNote {
    Queued { queue_name: String },
    Joined { agent_name: String },
    Left { agent_name: String },
    Transferring,
    Ended { by: EndedBy },
}

impl SystemNote {
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
                by: EndedBy::Agent(_),
            } => "The chat was ended by the agent".into(),
            SystemNote::Ended {
                by: EndedBy::MaxWait,
            } => "No agent could take your chat in time. You can leave a message.".into(),
        }
    }
}

/// What the visitor's widget shows in its status bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
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
}

impl AgentRuntime {
    fn signed_out() -> Self {
        Self {
            state: AgentState::SignedOut,
            last_routed: DateTime::<Utc>::MIN_UTC,
            chats: BTreeSet::new(),
            offer: None,
            wrap_ups: BTreeSet::new(),
            session_expires: None,
        }
    }
    /// Chats + wrap-ups + pending offer.
    pub fn load(&self) -> usize {
        self.chats.len() + self.wrap_ups.len() + usize::from(self.offer.is_some())
    }
}

/// Whether a site's queue takes chats now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "availability", rename_all = "snake_case")]
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
}

/// One tenant: configuration, agents, queues and live conversations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    config: TenantConfig,
    agents: Table<AgentId, AgentRuntime>,
    /// Derived from the queued conversations' `queue_key`; not stored by the edge.
    queues: Table<QueueId, VecDeque<ConversationId>>,
    conversations: Table<ConversationId, Conversation>,
    /// Every conversation's next deadline, earliest first (derived).
    #[serde(skip)]
    deadlines: BTreeSet<(DateTime<Utc>, ConversationId)>,
    #[serde(skip)]
    deadline_by_id: BTreeMap<ConversationId, DateTime<Utc>>,
}

/// Rows changed since the edge last asked: present rows are written, absent ones deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub agents: BTreeSet<AgentId>,
    pub conversations: BTreeSet<ConversationId>,
}

/// Effects gathered while a command runs.
type Fx = Vec<Effect>;

fn to_agent(fx: &mut Fx, agent: &AgentId, event: AgentEvent) {
    fx.push(Effect::Agent {
        agent: agent.clone(),
        event,
    });
}
fn to_conv(fx: &mut Fx, conversation: &ConversationId, event: ConversationEvent) {
    fx.push(Effect::Conversation {
        conversation: conversation.clone(),
        event,
    });
}

impl Tenant {
    /// A tenant with a validated configuration and every agent signed out.
    pub fn new(config: TenantConfig) -> Result<Self, crate::config::ConfigError> {
        config.validate()?;
        let mut t = Self {
            config,
            agents: Table::default(),
            queues: Table::default(),
            conversations: Table::default(),
            deadlines: BTreeSet::new(),
            deadline_by_id: BTreeMap::new(),
        };
        t.sync_config();
        Ok(t)
    }

    /// Rebuilds a tenant from stored rows (queues and the deadline index are derived).
    pub fn restore(
        config: TenantConfig,
        agents: impl IntoIterator<Item = (AgentId, AgentRuntime)>,
        conversations: impl IntoIterator<Item = Conversation>,
    ) -> Result<Self, crate::config::ConfigError> {
        let mut t = Self::new(config)?;
        for (id, rt) in agents {
            if t.agents.contains_key(&id) {
                t.agents.insert(id, rt);
            }
        }
        t.conversations = conversations
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        t.rebuild_derived();
        t.agents.begin();
        t.agents.take_dirty();
        Ok(t)
    }

    /// Rebuilds the queues (from `queue_key`) and the deadline index.
    pub fn rebuild_derived(&mut self) {
        let mut queued: Vec<(QueueId, i64, ConversationId)> = self
            .conversations
            .values()
            .filter(|c| c.place == Place::Queued)
            .map(|c| (c.queue.clone(), c.queue_key, c.id.clone()))
            .collect();
        queued.sort();
        let mut queues: Table<QueueId, VecDeque<ConversationId>> = self
            .config
            .queues
            .iter()
            .map(|q| (q.id.clone(), VecDeque::new()))
            .collect();
        for (q, _, id) in queued {
            queues.entry_mut(q).push_back(id);
        }
        queues.begin();
        queues.take_dirty();
        self.queues = queues;
        self.deadlines.clear();
        self.deadline_by_id.clear();
        let ids: Vec<ConversationId> = self.conversations.keys().cloned().collect();
        for id in ids {
            self.reindex(&id);
        }
    }

    /// Gives old stored states (one value, queue order in the queues) their queue keys.
    pub fn assign_queue_keys(&mut self) {
        let order: Vec<(ConversationId, i64)> = self
            .queues
            .values()
            .flat_map(|d| d.iter().enumerate().map(|(i, id)| (id.clone(), i as i64)))
            .collect();
        for (id, k) in order {
            if let Some(c) = self.conversations.get_mut(&id) {
                c.queue_key = k;
            }
        }
        self.conversations.commit();
        self.rebuild_derived();
    }

    /// The rows changed since the last call.
    pub fn take_changes(&mut self) -> Changes {
        Changes {
            agents: self.agents.take_dirty(),
            conversations: self.conversations.take_dirty(),
        }
    }

    /// Marks every row changed (after a configuration change or a migration).
    pub fn mark_all_changed(&mut self) {
        self.agents.mark_all_dirty();
        self.conversations.mark_all_dirty();
    }

    /// Number of open conversations.
    pub fn open_conversations(&self) -> usize {
        self.conversations.len()
    }

    /// Replaces the configuration. Agents and queues that remain keep their state;
    /// refused when a removed queue still holds conversations or a removed agent is signed in.
    pub fn set_config(&mut self, config: TenantConfig) -> Result<(), crate::config::ConfigError> {
        config.validate()?;
        for (q, d) in &self.queues {
            if config.queue(q).is_none()
                && (!d.is_empty() || self.conversations.values().any(|c| &c.queue == q))
            {
                return Err(crate::config::ConfigError(format!(
                    "queue {q} still has conversations"
                )));
            }
        }
        for (a, rt) in &self.agents {
            if config.agent(a).is_none() && rt.state.is_signed_in() {
                return Err(crate::config::ConfigError(format!(
                    "agent {a} is signed in"
                )));
            }
        }
        self.config = config;
        self.sync_config();
        let ids: Vec<ConversationId> = self.conversations.keys().cloned().collect();
        for id in ids {
            self.reindex(&id);
        }
        Ok(())
    }

    fn sync_config(&mut self) {
        self.agents.begin();
        self.queues.begin();
        let agents: BTreeSet<_> = self.config.agents.iter().map(|a| a.id.clone()).collect();
        self.agents.retain(|a, _| agents.contains(a));
        for a in agents {
            if !self.agents.contains_key(&a) {
                self.agents.insert(a, AgentRuntime::signed_out());
            }
        }
        let queues: BTreeSet<_> = self.config.queues.iter().map(|q| q.id.clone()).collect();
        self.queues.retain(|q, _| queues.contains(q));
        for q in queues {
            self.queues.entry_mut(q);
        }
        self.agents.commit();
        self.queues.commit();
        self.queues.take_dirty();
    }

    /// The configuration.
    pub fn config(&self) -> &TenantConfig {
        &self.config
    }
    /// An agent's live state.
    pub fn agent(&self, id: &AgentId) -> Option<&AgentRuntime> {
        self.agents.get(id)
    }
    /// A live conversation.
    pub fn conversation(&self, id: &ConversationId) -> Option<&Conversation> {
        self.conversations.get(id)
    }
    /// All live conversations.
    pub fn conversations(&self) -> impl Iterator<Item = &Conversation> {
        self.conversations.values()
    }
    /// Conversations waiting in a queue, front first.
    pub fn queue(&self, id: &QueueId) -> Option<&VecDeque<ConversationId>> {
        self.queues.get(id)
    }

    /// Runs one command at `now`. On error nothing changed.
    pub fn handle(&mut self, now: DateTime<Utc>, cmd: Command) -> Result<Vec<Effect>, EngineError> {
        self.agents.begin();
        self.queues.begin();
        self.conversations.begin();
        let mut fx = Vec::new();
        if let Err(e) = self.apply(now, cmd, &mut fx) {
            self.agents.rollback();
            self.queues.rollback();
            self.conversations.rollback();
            return Err(e);
        }
        self.route(now, &mut fx);
        self.announce(&mut fx);
        let touched: Vec<ConversationId> = self.conversations.touched().cloned().collect();
        for id in touched {
            self.reindex(&id);
        }
        self.agents.commit();
        self.queues.commit();
        self.queues.take_dirty();
        self.conversations.commit();
        Ok(fx)
    }

    /// The earliest time at which [`Command::Tick`] has work to do.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let sessions = self
            .agents
            .values()
            .filter(|a| a.state.is_signed_in())
            .filter_map(|a| a.session_expires);
        self.deadlines
            .first()
            .map(|(d, _)| *d)
            .into_iter()
            .chain(sessions)
            .min()
    }

    /// Recomputes one conversation's entry in the deadline index.
    fn reindex(&mut self, id: &ConversationId) {
        if let Some(old) = self.deadline_by_id.remove(id) {
            self.deadlines.remove(&(old, id.clone()));
        }
        if let Some(d) = self.conversations.get(id).and_then(|c| self.deadline_of(c)) {
            self.deadline_by_id.insert(id.clone(), d);
            self.deadlines.insert((d, id.clone()));
        }
    }

    fn deadline_of(&self, c: &Conversation) -> Option<DateTime<Utc>> {
        match &c.place {
            Place::Offered { deadline, .. } => Some(*deadline),
            Place::Active {
                conference: Some(Conference::Requested { deadline, .. }),
                ..
            } => Some(*deadline),
            Place::Queued => Some(self.queued_since(c) + self.max_wait(&c.queue)),
            Place::Active { .. } | Place::Ended => None,
        }
    }

    /// Since when `c` waits for an agent.
    fn queued_since(&self, c: &Conversation) -> DateTime<Utc> {
        c.waiting_since.unwrap_or_else(|| {
            c.queue_history
                .last()
                .map_or(c.created_at, |v| v.entered_at)
        })
    }

    fn max_wait(&self, q: &QueueId) -> Duration {
        let secs = self
            .config
            .queue(q)
            .map_or(crate::config::DEFAULT_MAX_WAIT_SECS, |q| q.max_wait_secs);
        Duration::seconds(i64::from(secs))
    }

    /// Puts a conversation (already `Place::Queued` in its `queue`) at the front or back of it.
    fn enqueue(&mut self, id: &ConversationId, front: bool) {
        let Some(q) = self.conversations.get(id).map(|c| c.queue.clone()) else {
            return;
        };
        let d = self.queues.entry_mut(q);
        let neighbour = if front { d.front() } else { d.back() }.cloned();
        if front {
            d.push_front(id.clone());
        } else {
            d.push_back(id.clone());
        }
        let key = neighbour
            .and_then(|n| self.conversations.get(&n))
            .map_or(0, |n| {
                if front {
                    n.queue_key - 1
                } else {
                    n.queue_key + 1
                }
            });
        if let Some(c) = self.conversations.get_mut(id) {
            c.queue_key = key;
        }
    }

    fn inactivity(&self, q: &QueueId) -> Duration {
        let secs = self
            .config
            .queue(q)
            .map_or(crate::config::DEFAULT_INACTIVITY_TIMEOUT_SECS, |q| {
                q.inactivity_timeout_secs
            });
        Duration::seconds(i64::from(secs))
    }
    fn offer_timeout(&self, q: &QueueId) -> Duration {
        let secs = self
            .config
            .queue(q)
            .map_or(crate::config::DEFAULT_OFFER_TIMEOUT_SECS, |q| {
                q.offer_timeout_secs
            });
        Duration::seconds(i64::from(secs))
    }
    fn agent_name(&self, a: &AgentId) -> String {
        self.config
            .agent(a)
            .map_or_else(|| a.to_string(), |c| c.name.clone())
    }
    fn queue_name(&self, q: &QueueId) -> String {
        self.config
            .queue(q)
            .map_or_else(|| q.to_string(), |c| c.name.clone())
    }
    fn capacity(&self, a: &AgentId) -> usize {
        self.config.agent(a).map_or(0, |c| c.capacity as usize)
    }

    /// Whether new chats can start on `site` now.
    pub fn availability(
        &self,
        site: &SiteKey,
        now: DateTime<Utc>,
    ) -> Result<Availability, EngineError> {
        let s = self
            .config
            .site(site)
            .ok_or_else(|| EngineError::UnknownSite(site.clone()))?;
        let q = self
            .config
            .queue(&s.queue)
            .ok_or_else(|| EngineError::UnknownQueue(s.queue.clone()))?;
        let queue_name = q.name.clone();
        if !q.hours.is_open(now) {
            return Ok(Availability::Closed { queue_name });
        }
        let anyone = self.config.agents.iter().any(|a| {
            a.queues.contains(&q.id)
                && self
                    .agents
                    .get(&a.id)
                    .is_some_and(|r| r.state.is_signed_in())
        });
        if !anyone {
            return Ok(Availability::NoAgents { queue_name });
        }
        Ok(Availability::Open { queue_name })
    }

    fn signed_in(&self, a: &AgentId) -> Result<&AgentRuntime, EngineError> {
        let rt = self
            .agents
            .get(a)
            .ok_or_else(|| EngineError::UnknownAgent(a.clone()))?;
        if !rt.state.is_signed_in() {
            return Err(EngineError::NotSignedIn(a.clone()));
        }
        Ok(rt)
    }

    fn conv(&self, c: &ConversationId) -> Result<&Conversation, EngineError> {
        self.conversations
            .get(c)
            .ok_or_else(|| EngineError::UnknownConversation(c.clone()))
    }

    fn owned_active(
        &self,
        agent: &AgentId,
        c: &ConversationId,
    ) -> Result<Option<Conference>, EngineError> {
        self.signed_in(agent)?;
        let conv = self.conv(c)?;
        match &conv.place {
            Place::Active { owner, conference } if owner == agent => Ok(conference.clone()),
            Place::Active { .. } => Err(EngineError::NotOwner(c.clone())),
            Place::Ended => Err(EngineError::AlreadyEnded(c.clone())),
            _ => Err(EngineError::NotActive(c.clone())),
        }
    }

    /// Checks that `agent` may write in `c` (owner or joined guest of an active chat).
    pub fn can_write(&self, agent: &AgentId, c: &ConversationId) -> Result<(), EngineError> {
        self.signed_in(agent)?;
        if self.participants(c)?.contains(agent) {
            Ok(())
        } else {
            Err(EngineError::NotParticipant(c.clone()))
        }
    }

    /// Checks that `agent` may read `c`'s transcript (participant, offered, or owing a wrap-up).
    pub fn can_read(&self, agent: &AgentId, c: &ConversationId) -> Result<(), EngineError> {
        let rt = self
            .agents
            .get(agent)
            .ok_or_else(|| EngineError::UnknownAgent(agent.clone()))?;
        self.conv(c)?;
        if rt.chats.contains(c) || rt.offer.as_ref() == Some(c) || rt.wrap_ups.contains(c) {
            Ok(())
        } else {
            Err(EngineError::NotParticipant(c.clone()))
        }
    }

    /// Agents who receive the messages of `c`: owner and joined guest.
    pub fn participants(&self, c: &ConversationId) -> Result<Vec<AgentId>, EngineError> {
        let conv = self.conv(c)?;
        Ok(match &conv.place {
            Place::Active {
                owner,
                conference: Some(Conference::Joined { guest }),
            } => vec![owner.clone(), guest.clone()],
            Place::Active { owner, .. } => vec![owner.clone()],
            _ => vec![],
        })
    }

    /// Renders template `t` for `agent` in conversation `c`.
    pub fn render_template(
        &self,
        agent: &AgentId,
        c: &ConversationId,
        t: &TemplateId,
        now: DateTime<Utc>,
    ) -> Result<String, EngineError> {
        self.can_read(agent, c)?;
        let conv = self.conv(c)?;
        let tc = self
            .config
            .template(t)
            .ok_or_else(|| EngineError::UnknownTemplate(t.clone()))?;
        let tpl = Template::parse(&tc.text).map_err(|e| EngineError::Template(e.to_string()))?;
        let ctx = TemplateContext {
            customer_name: conv.customer.name.clone(),
            agent_name: self.agent_name(agent),
            queue_name: self.queue_name(&conv.queue),
            date: now.format("%Y-%m-%d").to_string(),
            time: now.format("%H:%M").to_string(),
        };
        Ok(tpl.render(&ctx))
    }

    /// Queues and Available agents with free capacity, for the Transfer and Conference dialogs.
    pub fn targets(
        &self,
        agent: &AgentId,
    ) -> Result<(Vec<TargetQueue>, Vec<TargetAgent>), EngineError> {
        self.signed_in(agent)?;
        let queues = self
            .config
            .queues
            .iter()
            .map(|q| TargetQueue {
                id: q.id.clone(),
                name: q.name.clone(),
                waiting: self.queues.get(&q.id).map_or(0, |d| d.len() as u32),
            })
            .collect();
        let agents = self
            .config
            .agents
            .iter()
            .filter(|a| &a.id != agent && self.is_free(&a.id))
            .map(|a| TargetAgent {
                id: a.id.clone(),
                name: a.name.clone(),
            })
            .collect();
        Ok((queues, agents))
    }

    /// Available, below capacity, no pending offer.
    fn is_free(&self, a: &AgentId) -> bool {
        self.agents.get(a).is_some_and(|rt| {
            rt.state == AgentState::Available && rt.offer.is_none() && rt.load() < self.capacity(a)
        })
    }

    /// Free, and not owing a wrap-up for `c` (an agent who transferred a chat away is not offered it back before wrapping up).
    fn is_free_for(&self, a: &AgentId, c: &ConversationId) -> bool {
        self.is_free(a)
            && self
                .agents
                .get(a)
                .is_some_and(|rt| !rt.wrap_ups.contains(c))
    }

    fn summary(&self, conv: &Conversation, agent: &AgentId) -> ChatSummary {
        let (role, status) = match &conv.place {
            Place::Active { owner, conference } => {
                let role = if owner == agent {
                    Role::Owner
                } else {
                    Role::Guest
                };
                let status = match conference {
                    None => ChatStatus::Active,
                    Some(Conference::Requested { guest, .. }) => ChatStatus::ConferenceRequested {
                        guest_name: self.agent_name(guest),
                    },
                    Some(Conference::Joined { guest }) => ChatStatus::Conference {
                        owner_name: self.agent_name(owner),
                        guest_name: self.agent_name(guest),
                    },
                };
                (role, status)
            }
            _ => (Role::Owner, ChatStatus::Ended),
        };
        ChatSummary {
            conversation: conv.id.clone(),
            customer_name: conv.customer.name.clone(),
            customer_email: conv.customer.email.clone(),
            verified_user_id: conv.customer.verified_user_id.clone(),
            queue_name: self.queue_name(&conv.queue),
            received_at: conv.created_at,
            role,
            status,
        }
    }

    fn offer_view(&self, conv: &Conversation, agent: &AgentId) -> Option<Offer> {
        match &conv.place {
            Place::Offered {
                agent: a,
                offered_at,
                deadline,
                transfer_from,
            } if a == agent => Some(Offer {
                conversation: conv.id.clone(),
                customer_name: conv.customer.name.clone(),
                queue_name: self.queue_name(&conv.queue),
                agent_name: self.agent_name(agent),
                received_at: conv.created_at,
                offered_at: *offered_at,
                deadline: *deadline,
                kind: match transfer_from {
                    Some(f) => OfferKind::Transfer {
                        from_name: self.agent_name(f),
                    },
                    None => OfferKind::Chat,
                },
            }),
            Place::Active {
                owner,
                conference:
                    Some(Conference::Requested {
                        guest,
                        deadline,
                        requested_at,
                    }),
            } if guest == agent => Some(Offer {
                conversation: conv.id.clone(),
                customer_name: conv.customer.name.clone(),
                queue_name: self.queue_name(&conv.queue),
                agent_name: self.agent_name(agent),
                received_at: conv.created_at,
                offered_at: *requested_at,
                deadline: *deadline,
                kind: OfferKind::Conference {
                    owner_name: self.agent_name(owner),
                },
            }),
            _ => None,
        }
    }

    /// Everything an agent's console shows, for (re)connects.
    pub fn snapshot(&self, agent: &AgentId) -> Result<AgentSnapshot, EngineError> {
        let rt = self
            .agents
            .get(agent)
            .ok_or_else(|| EngineError::UnknownAgent(agent.clone()))?;
        let cfg = self
            .config
            .agent(agent)
            .ok_or_else(|| EngineError::UnknownAgent(agent.clone()))?;
        let offer = rt
            .offer
            .as_ref()
            .and_then(|c| self.conversations.get(c))
            .and_then(|c| self.offer_view(c, agent));
        let chats = rt
            .chats
            .iter()
            .filter_map(|c| self.conversations.get(c))
            .map(|c| self.summary(c, agent))
            .collect();
        let wrap_ups = rt
            .wrap_ups
            .iter()
            .filter_map(|c| self.conversations.get(c))
            .map(|c| ChatSummary {
                status: ChatStatus::Ended,
                role: Role::Owner,
                ..self.summary(c, agent)
            })
            .collect();
        Ok(AgentSnapshot {
            agent: agent.clone(),
            name: cfg.name.clone(),
            capacity: cfg.capacity,
            state: rt.state.clone(),
            offer,
            chats,
            wrap_ups,
        })
    }

    /// The status the visitor of `c` should see.
    pub fn visitor_status(&self, c: &ConversationId) -> Option<VisitorStatus> {
        let conv = self.conversations.get(c)?;
        Some(self.status_of(conv))
    }

    fn status_of(&self, conv: &Conversation) -> VisitorStatus {
        match &conv.place {
            Place::Queued => {
                let pos = self
                    .queues
                    .get(&conv.queue)
                    .and_then(|d| d.iter().position(|x| x == &conv.id))
                    .unwrap_or(0);
                VisitorStatus::Queued {
                    position: pos as u32 + 1,
                }
            }
            Place::Offered { .. } => VisitorStatus::Connecting,
            Place::Active { owner, conference } => VisitorStatus::Active {
                agent_name: self.agent_name(owner),
                guest_name: match conference {
                    Some(Conference::Joined { guest }) => Some(self.agent_name(guest)),
                    _ => None,
                },
            },
            Place::Ended => VisitorStatus::Ended,
        }
    }

    // ----- command application -------------------------------------------------

    fn apply(&mut self, now: DateTime<Utc>, cmd: Command, fx: &mut Fx) -> Result<(), EngineError> {
        match cmd {
            Command::Start {
                conversation,
                site,
                customer,
            } => self.start(now, conversation, site, customer, fx),
            Command::LeaveMessage {
                conversation,
                site,
                customer,
                text,
            } => {
                let s = self
                    .config
                    .site(&site)
                    .ok_or_else(|| EngineError::UnknownSite(site.clone()))?;
                if self.conversations.contains_key(&conversation) {
                    return Err(EngineError::DuplicateConversation(conversation));
                }
                let text = crate::text::MessageText::new(&text, crate::text::Writer::Visitor)
                    .map_err(|e| EngineError::Text(e.to_string()))?;
                fx.push(Effect::Closed(Box::new(ClosedConversation {
                    id: conversation,
                    kind: ConversationKind::LeftMessage,
                    site: site.clone(),
                    customer,
                    queue_history: vec![QueueVisit {
                        queue: s.queue.clone(),
                        entered_at: now,
                    }],
                    agents: vec![],
                    created_at: now,
                    answered_at: None,
                    ended_at: now,
                    ended_by: Some(EndedBy::Customer),
                    wait_secs: 0,
                    handle_secs: 0,
                    wrap_ups: vec![],
                    message: Some(text.as_str().to_owned()),
                })));
                Ok(())
            }
            Command::CustomerActivity { conversation } => {
                let c = self
                    .conversations
                    .get_mut(&conversation)
                    .ok_or(EngineError::UnknownConversation(conversation.clone()))?;
                if c.place == Place::Ended {
                    return Err(EngineError::AlreadyEnded(conversation));
                }
                c.last_customer_activity = now;
                Ok(())
            }
            Command::CustomerEnd { conversation } => {
                self.end(now, &conversation, EndedBy::Customer, fx)
            }
            Command::Inactive { conversation } => match self.conv(&conversation)?.place {
                Place::Active { .. } => self.end(now, &conversation, EndedBy::Inactivity, fx),
                Place::Ended => Err(EngineError::AlreadyEnded(conversation)),
                _ => Err(EngineError::NotActive(conversation)),
            },
            Command::SignIn { agent } => {
                let rt = self
                    .agents
                    .get_mut(&agent)
                    .ok_or_else(|| EngineError::UnknownAgent(agent.clone()))?;
                rt.session_expires = Some(now + Duration::seconds(crate::agent::SESSION_SECS));
                if rt.state == AgentState::SignedOut {
                    rt.state = AgentState::Idle { reason: None };
                    rt.last_routed = now;
                    to_agent(
                        fx,
                        &agent,
                        AgentEvent::State {
                            state: rt.state.clone(),
                        },
                    );
                }
                Ok(())
            }
            Command::SignOut { agent } => {
                let rt = self
                    .agents
                    .get(&agent)
                    .ok_or_else(|| EngineError::UnknownAgent(agent.clone()))?;
                if !rt.chats.is_empty() || !rt.wrap_ups.is_empty() {
                    return Err(EngineError::HasOpenChats(agent));
                }
                self.withdraw_offer(&agent, WithdrawReason::StateChanged, now, fx);
                self.set_state(&agent, AgentState::SignedOut, fx);
                if let Some(rt) = self.agents.get_mut(&agent) {
                    rt.session_expires = None;
                }
                Ok(())
            }
            Command::SetState { agent, state } => {
                self.signed_in(&agent)?;
                let state = self.requested(state)?;
                if state != AgentState::Available {
                    self.withdraw_offer(&agent, WithdrawReason::StateChanged, now, fx);
                }
                self.set_state(&agent, state, fx);
                Ok(())
            }
            Command::Accept {
                agent,
                conversation,
            } => self.accept(now, agent, conversation, fx),
            Command::Transfer {
                agent,
                conversation,
                target,
            } => self.transfer(now, agent, conversation, target, fx),
            Command::RequestConference {
                agent,
                conversation,
                guest,
            } => {
                if self.owned_active(&agent, &conversation)?.is_some() {
                    return Err(EngineError::ConferenceBusy(conversation));
                }
                if guest == agent {
                    return Err(EngineError::SelfTarget);
                }
                if !self.agents.contains_key(&guest) {
                    return Err(EngineError::UnknownAgent(guest));
                }
                if !self.is_free_for(&guest, &conversation) {
                    return Err(EngineError::TargetUnavailable(guest));
                }
                let deadline = now + self.offer_timeout(&self.conv(&conversation)?.queue);
                let c = self
                    .conversations
                    .get_mut(&conversation)
                    .ok_or(EngineError::UnknownConversation(conversation.clone()))?;
                c.place = Place::Active {
                    owner: agent.clone(),
                    conference: Some(Conference::Requested {
                        guest: guest.clone(),
                        deadline,
                        requested_at: now,
                    }),
                };
                if let Some(rt) = self.agents.get_mut(&guest) {
                    rt.offer = Some(conversation.clone());
                    rt.last_routed = now;
                }
                let c = self.conv(&conversation)?;
                if let Some(o) = self.offer_view(c, &guest) {
                    to_agent(fx, &guest, AgentEvent::Offer(o));
                }
                to_agent(
                    fx,
                    &agent,
                    AgentEvent::Status {
                        conversation: conversation.clone(),
                        status: self.summary(c, &agent).status,
                    },
                );
                Ok(())
            }
            Command::EndConference {
                agent,
                conversation,
            } => {
                self.signed_in(&agent)?;
                let c = self.conv(&conversation)?;
                let (owner, conf) = match &c.place {
                    Place::Active { owner, conference } => (owner.clone(), conference.clone()),
                    Place::Ended => return Err(EngineError::AlreadyEnded(conversation)),
                    _ => return Err(EngineError::NotActive(conversation)),
                };
                let guest = match conf {
                    Some(Conference::Joined { guest }) => guest,
                    Some(Conference::Requested { guest, .. }) if agent == owner => guest,
                    _ => return Err(EngineError::NoConference(conversation)),
                };
                if agent != owner && agent != guest {
                    return Err(EngineError::NotParticipant(conversation));
                }
                self.drop_guest(&conversation, &owner, WithdrawReason::OwnerCancelled, fx);
                Ok(())
            }
            Command::End {
                agent,
                conversation,
            } => {
                self.owned_active(&agent, &conversation)?;
                self.end(now, &conversation, EndedBy::Agent(agent), fx)
            }
            Command::WrapUp {
                agent,
                conversation,
                reason,
                next,
            } => {
                self.signed_in(&agent)?;
                if !self.config.wrap_up_reasons.iter().any(|r| r.id == reason) {
                    return Err(EngineError::UnknownWrapUpReason(reason));
                }
                let next = self.requested(next)?;
                let rt = self
                    .agents
                    .get_mut(&agent)
                    .ok_or_else(|| EngineError::UnknownAgent(agent.clone()))?;
                if !rt.wrap_ups.remove(&conversation) {
                    return Err(EngineError::NoWrapUp(conversation));
                }
                rt.last_routed = now;
                let c = self
                    .conversations
                    .get_mut(&conversation)
                    .ok_or(EngineError::UnknownConversation(conversation.clone()))?;
                c.pending_wrap_ups.remove(&agent);
                c.wrap_ups.push(WrapUpRecord {
                    agent: agent.clone(),
                    reason,
                    at: now,
                });
                to_agent(
                    fx,
                    &agent,
                    AgentEvent::WrapUpDone {
                        conversation: conversation.clone(),
                    },
                );
                if next != AgentState::Available {
                    self.withdraw_offer(&agent, WithdrawReason::StateChanged, now, fx);
                }
                self.set_state(&agent, next, fx);
                self.maybe_close(&conversation, fx);
                Ok(())
            }
            Command::Tick => {
                self.tick(now, fx);
                Ok(())
            }
        }
    }

    fn requested(&self, s: RequestedState) -> Result<AgentState, EngineError> {
        match s {
            RequestedState::Available => Ok(AgentState::Available),
            RequestedState::Idle { reason } => {
                if self.config.idle_reasons.iter().any(|r| r.id == reason) {
                    Ok(AgentState::Idle {
                        reason: Some(reason),
                    })
                } else {
                    Err(EngineError::UnknownIdleReason(reason))
                }
            }
        }
    }

    fn set_state(&mut self, agent: &AgentId, state: AgentState, fx: &mut Fx) {
        if let Some(rt) = self.agents.get_mut(agent) {
            if rt.state != state {
                rt.state = state.clone();
                to_agent(fx, agent, AgentEvent::State { state });
            }
        }
    }

    fn start(
        &mut self,
        now: DateTime<Utc>,
        id: ConversationId,
        site: SiteKey,
        customer: Customer,
        fx: &mut Fx,
    ) -> Result<(), EngineError> {
        if self.conversations.contains_key(&id) {
            return Err(EngineError::DuplicateConversation(id));
        }
        let name = crate::text::validate_name(&customer.name)
            .map_err(|e| EngineError::Text(format!("name: {e}")))?;
        let queue = self.check_start(&site, now)?;
        let conv = Conversation {
            id: id.clone(),
            site,
            queue: queue.clone(),
            customer: Customer { name, ..customer },
            created_at: now,
            place: Place::Queued,
            queue_history: vec![QueueVisit {
                queue: queue.clone(),
                entered_at: now,
            }],
            agents: vec![],
            answered_at: None,
            ended_at: None,
            ended_by: None,
            last_customer_activity: now,
            pending_wrap_ups: BTreeSet::new(),
            wrap_ups: vec![],
            announced: None,
            queue_key: 0,
            access_version: 0,
            announced_access: vec![],
            ended_owner: None,
            waiting_since: Some(now),
        };
        self.conversations.insert(id.clone(), conv);
        self.enqueue(&id, false);
        to_conv(
            fx,
            &id,
            ConversationEvent::Note(SystemNote::Queued {
                queue_name: self.queue_name(&queue),
            }),
        );
        Ok(())
    }

    fn accept(
        &mut self,
        now: DateTime<Utc>,
        agent: AgentId,
        id: ConversationId,
        fx: &mut Fx,
    ) -> Result<(), EngineError> {
        self.signed_in(&agent)?;
        let conv = self.conv(&id)?;
        match conv.place.clone() {
            Place::Offered { agent: a, .. } if a == agent => {
                let c = self
                    .conversations
                    .get_mut(&id)
                    .ok_or(EngineError::UnknownConversation(id.clone()))?;
                c.place = Place::Active {
                    owner: agent.clone(),
                    conference: None,
                };
                c.answered_at.get_or_insert(now);
                if !c.agents.contains(&agent) {
                    c.agents.push(agent.clone());
                }
            }
            Place::Active {
                owner,
                conference: Some(Conference::Requested { guest, .. }),
            } if guest == agent => {
                let c = self
                    .conversations
                    .get_mut(&id)
                    .ok_or(EngineError::UnknownConversation(id.clone()))?;
                c.place = Place::Active {
                    owner: owner.clone(),
                    conference: Some(Conference::Joined {
                        guest: agent.clone(),
                    }),
                };
                if !c.agents.contains(&agent) {
                    c.agents.push(agent.clone());
                }
                let c = self.conv(&id)?;
                to_agent(
                    fx,
                    &owner,
                    AgentEvent::Status {
                        conversation: id.clone(),
                        status: self.summary(c, &owner).status,
                    },
                );
            }
            _ => return Err(EngineError::NotOffered(id)),
        }
        let rt = self
            .agents
            .get_mut(&agent)
            .ok_or_else(|| EngineError::UnknownAgent(agent.clone()))?;
        rt.offer = None;
        rt.chats.insert(id.clone());
        rt.last_routed = now;
        let c = self.conv(&id)?;
        to_agent(fx, &agent, AgentEvent::Joined(self.summary(c, &agent)));
        to_conv(
            fx,
            &id,
            ConversationEvent::Note(SystemNote::Joined {
                agent_name: self.agent_name(&agent),
            }),
        );
        Ok(())
    }

    fn transfer(
        &mut self,
        now: DateTime<Utc>,
        agent: AgentId,
        id: ConversationId,
        target: TransferTarget,
        fx: &mut Fx,
    ) -> Result<(), EngineError> {
        if self.owned_active(&agent, &id)?.is_some() {
            return Err(EngineError::ConferenceBusy(id));
        }
        let queue = self.conv(&id)?.queue.clone();
        match &target {
            TransferTarget::Queue(q) => {
                if self.config.queue(q).is_none() {
                    return Err(EngineError::UnknownQueue(q.clone()));
                }
            }
            TransferTarget::Agent(t) => {
                if t == &agent {
                    return Err(EngineError::SelfTarget);
                }
                if !self.agents.contains_key(t) {
                    return Err(EngineError::UnknownAgent(t.clone()));
                }
                if !self.is_free_for(t, &id) {
                    return Err(EngineError::TargetUnavailable(t.clone()));
                }
            }
        }
        // Release the transferring agent into wrap-up.
        self.release_owner(&id, &agent, fx);
        to_agent(
            fx,
            &agent,
            AgentEvent::Left {
                conversation: id.clone(),
            },
        );
        to_conv(fx, &id, ConversationEvent::Note(SystemNote::Transferring));
        to_conv(
            fx,
            &id,
            ConversationEvent::Note(SystemNote::Left {
                agent_name: self.agent_name(&agent),
            }),
        );
        match target {
            TransferTarget::Queue(q) => {
                let c = self
                    .conversations
                    .get_mut(&id)
                    .ok_or(EngineError::UnknownConversation(id.clone()))?;
                c.place = Place::Queued;
                c.queue = q.clone();
                c.waiting_since = Some(now);
                c.queue_history.push(QueueVisit {
                    queue: q.clone(),
                    entered_at: now,
                });
                self.enqueue(&id, false);
                to_conv(
                    fx,
                    &id,
                    ConversationEvent::Note(SystemNote::Queued {
                        queue_name: self.queue_name(&q),
                    }),
                );
            }
            TransferTarget::Agent(t) => {
                let deadline = now + self.offer_timeout(&queue);
                let c = self
                    .conversations
                    .get_mut(&id)
                    .ok_or(EngineError::UnknownConversation(id.clone()))?;
                c.place = Place::Offered {
                    agent: t.clone(),
                    offered_at: now,
                    deadline,
                    transfer_from: Some(agent.clone()),
                };
                if let Some(rt) = self.agents.get_mut(&t) {
                    rt.offer = Some(id.clone());
                    rt.last_routed = now;
                }
                let c = self.conv(&id)?;
                if let Some(o) = self.offer_view(c, &t) {
                    to_agent(fx, &t, AgentEvent::Offer(o));
                }
            }
        }
        Ok(())
    }

    /// Moves the owner of an active chat into wrap-up for it.
    fn release_owner(&mut self, id: &ConversationId, owner: &AgentId, fx: &mut Fx) {
        if let Some(rt) = self.agents.get_mut(owner) {
            rt.chats.remove(id);
            rt.wrap_ups.insert(id.clone());
        }
        if let Some(c) = self.conversations.get_mut(id) {
            c.pending_wrap_ups.insert(owner.clone());
        }
        to_agent(
            fx,
            owner,
            AgentEvent::WrapUpRequired {
                conversation: id.clone(),
            },
        );
    }

    /// Removes the conference guest (joined or requested) of an active chat.
    fn drop_guest(
        &mut self,
        id: &ConversationId,
        owner: &AgentId,
        reason: WithdrawReason,
        fx: &mut Fx,
    ) {
        let Some(c) = self.conversations.get_mut(id) else {
            return;
        };
        let Place::Active { conference, .. } = &mut c.place else {
            return;
        };
        match conference.take() {
            Some(Conference::Joined { guest }) => {
                if let Some(rt) = self.agents.get_mut(&guest) {
                    rt.chats.remove(id);
                }
                to_agent(
                    fx,
                    &guest,
                    AgentEvent::Left {
                        conversation: id.clone(),
                    },
                );
                to_conv(
                    fx,
                    id,
                    ConversationEvent::Note(SystemNote::Left {
                        agent_name: self.agent_name(&guest),
                    }),
                );
            }
            Some(Conference::Requested { guest, .. }) => {
                if let Some(rt) = self.agents.get_mut(&guest) {
                    rt.offer = None;
                }
                to_agent(
                    fx,
                    &guest,
                    AgentEvent::OfferWithdrawn {
                        conversation: id.clone(),
                        reason,
                    },
                );
            }
            None => return,
        }
        if let Some(c) = self.conversations.get(id) {
            if matches!(c.place, Place::Active { .. }) {
                to_agent(
                    fx,
                    owner,
                    AgentEvent::Status {
                        conversation: id.clone(),
                        status: self.summary(c, owner).status,
                    },
                );
            }
        }
    }

    /// Withdraws `agent`'s pending offer or conference request (no RONA).
    fn withdraw_offer(
        &mut self,
        agent: &AgentId,
        reason: WithdrawReason,
        now: DateTime<Utc>,
        fx: &mut Fx,
    ) {
        let Some(id) = self.agents.get(agent).and_then(|rt| rt.offer.clone()) else {
            return;
        };
        let Some(c) = self.conversations.get(&id) else {
            return;
        };
        match c.place.clone() {
            Place::Offered { .. } => {
                self.requeue_front(&id, agent, now);
                to_agent(
                    fx,
                    agent,
                    AgentEvent::OfferWithdrawn {
                        conversation: id,
                        reason,
                    },
                );
            }
            Place::Active { owner, .. } => self.drop_guest(&id, &owner, reason, fx),
            _ => {}
        }
    }

    /// An offered conversation goes back to the front of its queue.
    fn requeue_front(&mut self, id: &ConversationId, agent: &AgentId, _now: DateTime<Utc>) {
        if let Some(rt) = self.agents.get_mut(agent) {
            rt.offer = None;
        }
        if let Some(c) = self.conversations.get_mut(id) {
            c.place = Place::Queued;
            self.enqueue(id, true);
        }
    }

    fn end(
        &mut self,
        now: DateTime<Utc>,
        id: &ConversationId,
        by: EndedBy,
        fx: &mut Fx,
    ) -> Result<(), EngineError> {
        let c = self.conv(id)?;
        match c.place.clone() {
            Place::Ended => return Err(EngineError::AlreadyEnded(id.clone())),
            Place::Queued => {
                let q = c.queue.clone();
                if let Some(d) = self.queues.get_mut(&q) {
                    d.retain(|x| x != id);
                }
            }
            Place::Offered { agent, .. } => {
                if let Some(rt) = self.agents.get_mut(&agent) {
                    rt.offer = None;
                }
                to_agent(
                    fx,
                    &agent,
                    AgentEvent::OfferWithdrawn {
                        conversation: id.clone(),
                        reason: WithdrawReason::CustomerLeft,
                    },
                );
            }
            Place::Active { owner, .. } => {
                if let Some(c) = self.conversations.get_mut(id) {
                    c.ended_owner = Some(owner.clone());
                }
                self.drop_guest(id, &owner, WithdrawReason::CustomerLeft, fx);
                self.release_owner(id, &owner, fx);
                to_agent(
                    fx,
                    &owner,
                    AgentEvent::Status {
                        conversation: id.clone(),
                        status: ChatStatus::Ended,
                    },
                );
            }
        }
        let c = self
            .conversations
            .get_mut(id)
            .ok_or(EngineError::UnknownConversation(id.clone()))?;
        c.place = Place::Ended;
        c.ended_at = Some(now);
        c.ended_by = Some(by.clone());
        to_conv(fx, id, ConversationEvent::Note(SystemNote::Ended { by }));
        self.maybe_close(id, fx);
        Ok(())
    }

    fn maybe_close(&mut self, id: &ConversationId, fx: &mut Fx) {
        let done = self
            .conversations
            .get(id)
            .is_some_and(|c| c.place == Place::Ended && c.pending_wrap_ups.is_empty());
        if !done {
            return;
        }
        let Some(c) = self.conversations.remove(id) else {
            return;
        };
        if !c.announced_access.is_empty() {
            to_conv(
                fx,
                id,
                ConversationEvent::Access {
                    version: c.access_version + 1,
                    agents: vec![],
                    inactivity_secs: self.inactivity(&c.queue).num_seconds() as u32,
                },
            );
        }
        let ended_at = c.ended_at.unwrap_or(c.created_at);
        let answered = c.answered_at;
        fx.push(Effect::Closed(Box::new(ClosedConversation {
            id: c.id,
            kind: ConversationKind::Chat,
            site: c.site,
            customer: c.customer,
            queue_history: c.queue_history,
            agents: c.agents,
            created_at: c.created_at,
            answered_at: answered,
            ended_at,
            ended_by: c.ended_by,
            wait_secs: (answered.unwrap_or(ended_at) - c.created_at).num_seconds(),
            handle_secs: answered.map_or(0, |a| (ended_at - a).num_seconds()),
            wrap_ups: c.wrap_ups,
            message: None,
        })));
    }

    fn tick(&mut self, now: DateTime<Utc>, fx: &mut Fx) {
        // Handle due deadlines one at a time, earliest first, from the index.
        while let Some((due, id)) = self.deadlines.first().cloned() {
            if due > now {
                break;
            }
            let Some(c) = self.conversations.get(&id) else {
                self.reindex(&id);
                continue;
            };
            let waited_out = self.queued_since(c) + self.max_wait(&c.queue) <= now;
            let queue_name = self.queue_name(&c.queue);
            match c.place.clone() {
                Place::Offered {
                    agent,
                    deadline,
                    transfer_from,
                    ..
                } if deadline <= now => {
                    self.requeue_front(&id, &agent, now);
                    if transfer_from.is_some() {
                        // A transfer nobody accepted: the customer waits again, and is told.
                        if let Some(c) = self.conversations.get_mut(&id) {
                            c.waiting_since = Some(now);
                        }
                        to_conv(
                            fx,
                            &id,
                            ConversationEvent::Note(SystemNote::Queued { queue_name }),
                        );
                    }
                    to_agent(
                        fx,
                        &agent,
                        AgentEvent::OfferWithdrawn {
                            conversation: id.clone(),
                            reason: WithdrawReason::Expired,
                        },
                    );
                    self.set_state(&agent, AgentState::Rona, fx);
                }
                Place::Active {
                    owner,
                    conference:
                        Some(Conference::Requested {
                            guest, deadline, ..
                        }),
                } if deadline <= now => {
                    self.drop_guest(&id, &owner, WithdrawReason::Expired, fx);
                    self.set_state(&guest, AgentState::Rona, fx);
                }
                Place::Queued if waited_out => {
                    let _ = self.end(now, &id, EndedBy::MaxWait, fx);
                }
                _ => {}
            }
            self.reindex(&id);
            if self.deadlines.first() == Some(&(due, id)) {
                // Not actually due (should not happen): stop rather than spin.
                break;
            }
        }
        let expired: Vec<AgentId> = self
            .agents
            .iter()
            .filter(|(_, rt)| {
                rt.state.is_signed_in() && rt.session_expires.is_some_and(|e| e <= now)
            })
            .map(|(a, _)| a.clone())
            .collect();
        for a in expired {
            self.expire_session(&a, now, fx);
        }
    }

    /// Signs out an agent whose session expired, without dropping any customer.
    fn expire_session(&mut self, agent: &AgentId, now: DateTime<Utc>, fx: &mut Fx) {
        self.withdraw_offer(agent, WithdrawReason::StateChanged, now, fx);
        let chats: Vec<ConversationId> = self
            .agents
            .get(agent)
            .map(|rt| rt.chats.iter().cloned().collect())
            .unwrap_or_default();
        for c in chats {
            let Some(place) = self.conversations.get(&c).map(|x| x.place.clone()) else {
                continue;
            };
            match place {
                Place::Active { owner, .. } if &owner == agent => {
                    // The customer goes back to the front of the queue.
                    self.drop_guest(&c, &owner, WithdrawReason::StateChanged, fx);
                    if let Some(rt) = self.agents.get_mut(agent) {
                        rt.chats.remove(&c);
                    }
                    if let Some(conv) = self.conversations.get_mut(&c) {
                        conv.place = Place::Queued;
                        conv.waiting_since = Some(now);
                        self.enqueue(&c, true);
                    }
                    to_agent(
                        fx,
                        agent,
                        AgentEvent::Left {
                            conversation: c.clone(),
                        },
                    );
                    to_conv(
                        fx,
                        &c,
                        ConversationEvent::Note(SystemNote::Left {
                            agent_name: self.agent_name(agent),
                        }),
                    );
                }
                Place::Active {
                    owner,
                    conference: Some(Conference::Joined { guest }),
                } if &guest == agent => {
                    self.drop_guest(&c, &owner, WithdrawReason::StateChanged, fx);
                }
                _ => {}
            }
        }
        let owed: Vec<ConversationId> = self
            .agents
            .get_mut(agent)
            .map(|rt| std::mem::take(&mut rt.wrap_ups).into_iter().collect())
            .unwrap_or_default();
        for c in owed {
            if let Some(conv) = self.conversations.get_mut(&c) {
                conv.pending_wrap_ups.remove(agent);
            }
            self.maybe_close(&c, fx);
        }
        self.set_state(agent, AgentState::SignedOut, fx);
        if let Some(rt) = self.agents.get_mut(agent) {
            rt.session_expires = None;
        }
    }

    /// Offers waiting conversations to free agents, queue by queue, front first.
    fn route(&mut self, now: DateTime<Utc>, fx: &mut Fx) {
        let queue_ids: Vec<QueueId> = self.config.queues.iter().map(|q| q.id.clone()).collect();
        for q in queue_ids {
            while let Some(front) = self.queues.get(&q).and_then(|d| d.front().cloned()) {
                let best = self
                    .config
                    .agents
                    .iter()
                    .filter(|a| a.queues.contains(&q) && self.is_free_for(&a.id, &front))
                    .filter_map(|a| {
                        self.agents
                            .get(&a.id)
                            .map(|rt| (rt.last_routed, a.id.clone()))
                    })
                    .min();
                let Some((_, agent)) = best else { break };
                if let Some(d) = self.queues.get_mut(&q) {
                    d.pop_front();
                }
                let deadline = now + self.offer_timeout(&q);
                if let Some(c) = self.conversations.get_mut(&front) {
                    c.place = Place::Offered {
                        agent: agent.clone(),
                        offered_at: now,
                        deadline,
                        transfer_from: None,
                    };
                }
                if let Some(rt) = self.agents.get_mut(&agent) {
                    rt.offer = Some(front.clone());
                    rt.last_routed = now;
                }
                if let Some(o) = self
                    .conversations
                    .get(&front)
                    .and_then(|c| self.offer_view(c, &agent))
                {
                    to_agent(fx, &agent, AgentEvent::Offer(o));
                }
            }
        }
    }

    /// Tells the visitors whose status changed, and the conversations whose access
    /// list changed. Only touched conversations and members of touched queues are looked at.
    fn announce(&mut self, fx: &mut Fx) {
        let mut positions: BTreeMap<ConversationId, u32> = BTreeMap::new();
        for q in self.queues.touched() {
            if let Some(d) = self.queues.get(q) {
                for (i, id) in d.iter().enumerate() {
                    positions.insert(id.clone(), i as u32 + 1);
                }
            }
        }
        let mut ids: BTreeSet<ConversationId> = self.conversations.touched().cloned().collect();
        ids.extend(positions.keys().cloned());
        for id in ids {
            let Some(c) = self.conversations.get(&id) else {
                continue;
            };
            let status = match (&c.place, positions.get(&id)) {
                (Place::Queued, Some(p)) => VisitorStatus::Queued { position: *p },
                _ => self.status_of(c),
            };
            let access = self.access_of(c);
            let status_changed = c.announced.as_ref() != Some(&status);
            let access_changed = c.announced_access != access;
            if !status_changed && !access_changed {
                continue;
            }
            let inactivity_secs = self.inactivity(&c.queue).num_seconds() as u32;
            let Some(c) = self.conversations.get_mut(&id) else {
                continue;
            };
            if access_changed {
                c.access_version += 1;
                c.announced_access = access.clone();
                to_conv(
                    fx,
                    &id,
                    ConversationEvent::Access {
                        version: c.access_version,
                        agents: access,
                        inactivity_secs,
                    },
                );
            }
            if status_changed {
                c.announced = Some(status.clone());
                to_conv(fx, &id, ConversationEvent::Status(status));
            }
        }
    }

    /// Who may be on the conversation's socket now.
    fn access_of(&self, c: &Conversation) -> Vec<Participant> {
        let p = |a: &AgentId, can_write: bool| Participant {
            agent: a.clone(),
            name: self.agent_name(a),
            can_write,
        };
        match &c.place {
            Place::Active { owner, conference } => {
                let mut v = vec![p(owner, true)];
                if let Some(Conference::Joined { guest }) = conference {
                    v.push(p(guest, true));
                }
                v
            }
            Place::Ended => c
                .ended_owner
                .iter()
                .filter(|a| c.pending_wrap_ups.contains(*a))
                .map(|a| p(a, false))
                .collect(),
            _ => vec![],
        }
    }

    /// Left messages `agent` may see: those left on a site whose queue the agent serves.
    pub fn left_messages_for<'a>(
        &self,
        agent: &AgentId,
        closed: impl IntoIterator<Item = &'a ClosedConversation>,
    ) -> Vec<ClosedConversation> {
        let Some(cfg) = self.config.agent(agent) else {
            return vec![];
        };
        closed
            .into_iter()
            .filter(|c| c.kind == ConversationKind::LeftMessage)
            .filter(|c| {
                c.queue_history
                    .first()
                    .is_some_and(|v| cfg.queues.contains(&v.queue))
            })
            .cloned()
            .collect()
    }

    /// Checks that a chat may start on `site` now (hours, agents, limits); gives its queue.
    pub fn check_start(&self, site: &SiteKey, now: DateTime<Utc>) -> Result<QueueId, EngineError> {
        let queue = self
            .config
            .site(site)
            .map(|s| s.queue.clone())
            .ok_or(EngineError::UnknownSite(site.clone()))?;
        match self.availability(site, now)? {
            Availability::Open { .. } => {}
            Availability::Closed { .. } => return Err(EngineError::QueueClosed(queue)),
            Availability::NoAgents { .. } => return Err(EngineError::NoAgentsSignedIn(queue)),
        }
        let limit = self
            .config
            .queue(&queue)
            .map_or(crate::config::DEFAULT_MAX_QUEUE_LENGTH, |q| {
                q.max_queue_length
            });
        if self.queues.get(&queue).map_or(0, VecDeque::len) >= limit as usize {
            return Err(EngineError::QueueFull { queue, limit });
        }
        if self.conversations.len() >= self.config.max_open_conversations as usize {
            return Err(EngineError::TenantFull(self.config.max_open_conversations));
        }
        Ok(queue)
    }

    /// The access version of a live conversation (for tickets).
    pub fn access_version(&self, c: &ConversationId) -> Option<u32> {
        self.conversations.get(c).map(|c| c.access_version)
    }

    /// Checks every structural invariant; used by tests and debug assertions.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut queued_seen = BTreeSet::new();
        for (q, d) in &self.queues {
            for id in d {
                let c = self
                    .conversations
                    .get(id)
                    .ok_or(format!("queue {q} holds unknown {id}"))?;
                if c.place != Place::Queued || &c.queue != q {
                    return Err(format!(
                        "queue {q} holds {id} which is {:?} in {}",
                        c.place, c.queue
                    ));
                }
                if !queued_seen.insert(id.clone()) {
                    return Err(format!("{id} is queued twice"));
                }
            }
        }
        for (id, c) in &self.conversations {
            let holders: Vec<&AgentId> = self
                .agents
                .iter()
                .filter(|(_, rt)| rt.chats.contains(id))
                .map(|(a, _)| a)
                .collect();
            let offered: Vec<&AgentId> = self
                .agents
                .iter()
                .filter(|(_, rt)| rt.offer.as_ref() == Some(id))
                .map(|(a, _)| a)
                .collect();
            match &c.place {
                Place::Queued => {
                    if !queued_seen.contains(id) {
                        return Err(format!("{id} is Queued but in no queue"));
                    }
                    if !holders.is_empty() || !offered.is_empty() {
                        return Err(format!("{id} is Queued but held or offered"));
                    }
                }
                Place::Offered { agent, .. } => {
                    if queued_seen.contains(id) || !holders.is_empty() || offered != vec![agent] {
                        return Err(format!("{id} offered to {agent} inconsistently: holders {holders:?}, offered {offered:?}"));
                    }
                }
                Place::Active { owner, conference } => {
                    let mut want = vec![owner];
                    let mut want_offer = vec![];
                    match conference {
                        Some(Conference::Joined { guest }) => want.push(guest),
                        Some(Conference::Requested { guest, .. }) => want_offer.push(guest),
                        None => {}
                    }
                    want.sort();
                    let mut h = holders.clone();
                    h.sort();
                    if h != want || offered != want_offer || queued_seen.contains(id) {
                        return Err(format!("{id} active for {owner} inconsistently: holders {holders:?}, offered {offered:?}"));
                    }
                }
                Place::Ended => {
                    if !holders.is_empty() || !offered.is_empty() || queued_seen.contains(id) {
                        return Err(format!("{id} ended but still held"));
                    }
                    if c.pending_wrap_ups.is_empty() {
                        return Err(format!("{id} ended with no wrap-up pending but not closed"));
                    }
                }
            }
            for a in &c.pending_wrap_ups {
                if !self
                    .agents
                    .get(a)
                    .is_some_and(|rt| rt.wrap_ups.contains(id))
                {
                    return Err(format!(
                        "{id} waits for a wrap-up by {a} who does not owe it"
                    ));
                }
                if holders.contains(&a) || offered.contains(&a) {
                    return Err(format!("{a} owes a wrap-up for {id} but still takes part"));
                }
            }
        }
        for (a, rt) in &self.agents {
            if rt.load() > self.capacity(a) {
                return Err(format!(
                    "{a} is over capacity: {} > {}",
                    rt.load(),
                    self.capacity(a)
                ));
            }
            if rt.offer.is_some() && rt.state != AgentState::Available {
                return Err(format!("{a} holds an offer while {:?}", rt.state));
            }
            if !rt.state.is_signed_in() && rt.load() > 0 {
                return Err(format!("{a} is signed out with load"));
            }
            for c in rt.chats.iter().chain(rt.offer.iter()) {
                if !self.conversations.contains_key(c) {
                    return Err(format!("{a} refers to missing {c}"));
                }
            }
            for c in &rt.wrap_ups {
                if !self
                    .conversations
                    .get(c)
                    .is_some_and(|conv| conv.pending_wrap_ups.contains(a))
                {
                    return Err(format!(
                        "{a} owes a wrap-up for {c} which does not wait for it"
                    ));
                }
            }
        }
        // Derived state matches the rows: queue order follows queue keys, and the
        // deadline index holds exactly each conversation's deadline.
        for (q, d) in &self.queues {
            let keys: Vec<i64> = d
                .iter()
                .filter_map(|id| self.conversations.get(id).map(|c| c.queue_key))
                .collect();
            if keys.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("queue {q} is not ordered by queue keys: {keys:?}"));
            }
        }
        let want: BTreeSet<(DateTime<Utc>, ConversationId)> = self
            .conversations
            .values()
            .filter_map(|c| self.deadline_of(c).map(|d| (d, c.id.clone())))
            .collect();
        if want != self.deadlines {
            return Err(format!(
                "deadline index {:?} differs from the conversations' deadlines {want:?}",
                self.deadlines
            ));
        }
        let mut restored = Self::restore(
            self.config.clone(),
            self.agents.iter().map(|(a, r)| (a.clone(), r.clone())),
            self.conversations.values().cloned(),
        )
        .map_err(|e| e.to_string())?;
        restored.take_changes();
        if restored.queues != self.queues {
            return Err("queues rebuilt from stored rows differ from the live queues".into());
        }
        Ok(())
    }
}
