//! The stored form of the engine's rows: what the edge writes to SQLite, one row
//! per agent and per live conversation.
//!
//! Rules:
//! - These types are the storage contract. The engine's internal state
//!   ([`AgentRuntime`], [`Conversation`], [`Place`], [`Conference`]) converts to and
//!   from them here, so renaming or reshaping internal fields changes only the
//!   conversions below, never the rows already stored.
//! - Values that are also part of the public protocol (customer, visitor status,
//!   participants, wrap-up records, queue visits, agent states) keep their own
//!   serialized form, which the protocol already fixes.
//! - A new field gets `#[serde(default)]`; a change that cannot be defaulted needs a
//!   new schema version and a migration in the edge.

use super::*;

/// An agent row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAgent {
    pub state: AgentState,
    pub last_routed: DateTime<Utc>,
    pub chats: Vec<ConversationId>,
    pub offer: Option<ConversationId>,
    pub wrap_ups: Vec<ConversationId>,
    #[serde(default)]
    pub session_expires: Option<DateTime<Utc>>,
    #[serde(default)]
    pub state_since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ronas: DayCount,
}

impl From<&AgentRuntime> for StoredAgent {
    fn from(a: &AgentRuntime) -> Self {
        Self {
            state: a.state.clone(),
            last_routed: a.last_routed,
            chats: a.chats.iter().cloned().collect(),
            offer: a.offer.clone(),
            wrap_ups: a.wrap_ups.iter().cloned().collect(),
            session_expires: a.session_expires,
            state_since: a.state_since,
            ronas: a.ronas,
        }
    }
}

impl From<StoredAgent> for AgentRuntime {
    fn from(a: StoredAgent) -> Self {
        Self {
            state: a.state,
            last_routed: a.last_routed,
            chats: a.chats.into_iter().collect(),
            offer: a.offer,
            wrap_ups: a.wrap_ups.into_iter().collect(),
            session_expires: a.session_expires,
            state_since: a.state_since,
            ronas: a.ronas,
        }
    }
}

/// Where a stored conversation is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum StoredPlace {
    Queue {
        key: i64,
    },
    Offer {
        agent: AgentId,
        offered_at: DateTime<Utc>,
        deadline: DateTime<Utc>,
        #[serde(default)]
        transfer_from: Option<AgentId>,
    },
    Chat {
        owner: AgentId,
        #[serde(default)]
        guest: Option<AgentId>,
        /// Set while the guest is only requested.
        #[serde(default)]
        guest_deadline: Option<DateTime<Utc>>,
        #[serde(default)]
        guest_requested_at: Option<DateTime<Utc>>,
    },
    Ended,
}

/// A live conversation row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredConversation {
    pub id: ConversationId,
    pub site: SiteKey,
    pub queue: QueueId,
    pub customer: Customer,
    pub created_at: DateTime<Utc>,
    pub place: StoredPlace,
    pub queue_history: Vec<QueueVisit>,
    pub agents: Vec<AgentId>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<EndedBy>,
    pub last_customer_activity: DateTime<Utc>,
    pub pending_wrap_ups: Vec<AgentId>,
    pub wrap_ups: Vec<WrapUpRecord>,
    #[serde(default)]
    pub announced: Option<VisitorStatus>,
    #[serde(default)]
    pub access_version: u32,
    #[serde(default)]
    pub announced_access: Vec<Participant>,
    #[serde(default)]
    pub ended_owner: Option<AgentId>,
    #[serde(default)]
    pub waiting_since: Option<DateTime<Utc>>,
}

impl From<&Conversation> for StoredConversation {
    fn from(c: &Conversation) -> Self {
        let place = match &c.place {
            Place::Queued => StoredPlace::Queue { key: c.queue_key },
            Place::Offered {
                agent,
                offered_at,
                deadline,
                transfer_from,
            } => StoredPlace::Offer {
                agent: agent.clone(),
                offered_at: *offered_at,
                deadline: *deadline,
                transfer_from: transfer_from.clone(),
            },
            Place::Active { owner, conference } => {
                let (guest, guest_deadline, guest_requested_at) = match conference {
                    None => (None, None, None),
                    Some(Conference::Joined { guest }) => (Some(guest.clone()), None, None),
                    Some(Conference::Requested {
                        guest,
                        deadline,
                        requested_at,
                    }) => (Some(guest.clone()), Some(*deadline), Some(*requested_at)),
                };
                StoredPlace::Chat {
                    owner: owner.clone(),
                    guest,
                    guest_deadline,
                    guest_requested_at,
                }
            }
            Place::Ended => StoredPlace::Ended,
        };
        Self {
            id: c.id.clone(),
            site: c.site.clone(),
            queue: c.queue.clone(),
            customer: c.customer.clone(),
            created_at: c.created_at,
            place,
            queue_history: c.queue_history.clone(),
            agents: c.agents.clone(),
            answered_at: c.answered_at,
            ended_at: c.ended_at,
            ended_by: c.ended_by.clone(),
            last_customer_activity: c.last_customer_activity,
            pending_wrap_ups: c.pending_wrap_ups.iter().cloned().collect(),
            wrap_ups: c.wrap_ups.clone(),
            announced: c.announced.clone(),
            access_version: c.access_version,
            announced_access: c.announced_access.clone(),
            ended_owner: c.ended_owner.clone(),
            waiting_since: c.waiting_since,
        }
    }
}

impl From<StoredConversation> for Conversation {
    fn from(s: StoredConversation) -> Self {
        let mut queue_key = 0;
        let place = match s.place {
            StoredPlace::Queue { key } => {
                queue_key = key;
                Place::Queued
            }
            StoredPlace::Offer {
                agent,
                offered_at,
                deadline,
                transfer_from,
            } => Place::Offered {
                agent,
                offered_at,
                deadline,
                transfer_from,
            },
            StoredPlace::Chat {
                owner,
                guest,
                guest_deadline,
                guest_requested_at,
            } => Place::Active {
                owner,
                conference: match (guest, guest_deadline) {
                    (None, _) => None,
                    (Some(guest), None) => Some(Conference::Joined { guest }),
                    (Some(guest), Some(deadline)) => Some(Conference::Requested {
                        guest,
                        deadline,
                        requested_at: guest_requested_at.unwrap_or(deadline),
                    }),
                },
            },
            StoredPlace::Ended => Place::Ended,
        };
        Self {
            id: s.id,
            site: s.site,
            queue: s.queue,
            customer: s.customer,
            created_at: s.created_at,
            place,
            queue_history: s.queue_history,
            agents: s.agents,
            answered_at: s.answered_at,
            ended_at: s.ended_at,
            ended_by: s.ended_by,
            last_customer_activity: s.last_customer_activity,
            pending_wrap_ups: s.pending_wrap_ups.into_iter().collect(),
            wrap_ups: s.wrap_ups,
            announced: s.announced,
            queue_key,
            access_version: s.access_version,
            announced_access: s.announced_access,
            ended_owner: s.ended_owner,
            waiting_since: s.waiting_since,
        }
    }
}
