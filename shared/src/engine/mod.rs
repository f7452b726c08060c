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

mod agents;
mod invariants;
mod lifecycle;
mod routing;
mod stored;
mod supervisor;
mod table;
mod types;
mod views;

pub use stored::{StoredAgent, StoredConversation, StoredPlace};
pub use supervisor::*;
pub use table::Table;
pub use types::*;

use crate::agent::{AgentState, RequestedState};
use crate::config::TenantConfig;
use crate::ids::{AgentId, ConversationId, QueueId, SiteKey, TemplateId};
use crate::template::{Template, TemplateContext};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

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
}
