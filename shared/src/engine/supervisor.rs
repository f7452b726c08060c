//! The supervisor's live view: queues and agents from the routing state, and the
//! day's figures from the closed records (which the edge aggregates and passes in).
//!
//! Rules:
//! - Only agents whose role supervises ([`crate::config::Role::supervises`]) get it,
//!   observe chats or sign others out ([`Tenant::check_supervisor`]).
//! - "Waiting" counts conversations in a queue (queued or offered); "longest wait"
//!   is the oldest `waiting_since` among them; "open" counts every live conversation
//!   whose current queue it is (waiting, active or ended awaiting wrap-up).
//! - "Today" is the UTC day of `now`; RONAs count per agent and day.
//! - Live chats are listed so a supervisor can open one read-only.

use super::*;

/// The day's closed records, as the edge summed them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedToday {
    /// Closed chats and left messages by their last queue.
    pub by_queue: BTreeMap<QueueId, u32>,
    /// Closed chats (not left messages).
    pub chats: u32,
    /// Of those, the ones an agent answered.
    pub answered: u32,
    pub wait_secs_total: i64,
    pub handle_secs_total: i64,
    pub ratings: u32,
    pub rating_sum: u32,
}

impl ClosedToday {
    /// Average wait of the day's chats, whole seconds.
    pub fn average_wait_secs(&self) -> Option<i64> {
        (self.chats > 0).then(|| self.wait_secs_total / i64::from(self.chats))
    }
    /// Average handle time of the day's answered chats, whole seconds.
    pub fn average_handle_secs(&self) -> Option<i64> {
        (self.answered > 0).then(|| self.handle_secs_total / i64::from(self.answered))
    }
    /// Average rating in tenths (45 = 4.5).
    pub fn rating_average_tenths(&self) -> Option<u32> {
        (self.ratings > 0).then(|| (self.rating_sum * 10 + self.ratings / 2) / self.ratings)
    }
}

/// One queue, live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueLive {
    pub id: QueueId,
    pub name: String,
    pub waiting: u32,
    pub longest_wait_secs: i64,
    pub offers_pending: u32,
    pub open: u32,
    pub closed_today: u32,
}

/// One agent, live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentLive {
    pub id: AgentId,
    pub name: String,
    pub state: AgentState,
    pub since: Option<DateTime<Utc>>,
    pub chats: u32,
    pub capacity: u32,
    pub wrap_ups: u32,
    pub ronas_today: u32,
}

/// One live conversation (a supervisor may open it read-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveChat {
    pub id: ConversationId,
    pub queue: QueueId,
    pub customer_name: String,
    /// `queued`, `offered`, `active` or `ended`.
    pub place: String,
    pub agents: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// Everything the supervisor screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorView {
    pub at: DateTime<Utc>,
    pub queues: Vec<QueueLive>,
    pub agents: Vec<AgentLive>,
    pub chats: Vec<LiveChat>,
    pub today: ClosedToday,
    /// Updates between the routing and its conversations that are parked (the edge
    /// counts its stored rows); an admin sends them again.
    #[serde(default)]
    pub undelivered: u32,
}

impl Tenant {
    /// Refuses an agent who is not a supervisor (or admin).
    pub fn check_supervisor(&self, agent: &AgentId) -> Result<(), EngineError> {
        match self.config.agent(agent) {
            Some(a) if a.role.supervises() => Ok(()),
            Some(_) => Err(EngineError::NotSupervisor(agent.clone())),
            None => Err(EngineError::UnknownAgent(agent.clone())),
        }
    }

    /// The live view at `now`, with the day's closed figures and the count of parked
    /// updates from the edge.
    pub fn supervisor_view(
        &self,
        now: DateTime<Utc>,
        today: ClosedToday,
        undelivered: u32,
    ) -> SupervisorView {
        let today_local = self.config.local_date(now);
        let mut queues: Vec<QueueLive> = self
            .config
            .queues
            .iter()
            .map(|q| QueueLive {
                id: q.id.clone(),
                name: q.name.clone(),
                waiting: 0,
                longest_wait_secs: 0,
                offers_pending: 0,
                open: 0,
                closed_today: today.by_queue.get(&q.id).copied().unwrap_or(0),
            })
            .collect();
        let mut chats = Vec::new();
        for c in self.conversations.values() {
            let (place, waiting) = match &c.place {
                Place::Queued => ("queued", true),
                Place::Offered { .. } => ("offered", true),
                Place::Active { .. } => ("active", false),
                Place::Ended => ("ended", false),
            };
            if let Some(q) = queues.iter_mut().find(|q| q.id == c.queue) {
                q.open += 1;
                if waiting {
                    q.waiting += 1;
                    let since = c.waiting_since.unwrap_or(c.created_at);
                    q.longest_wait_secs =
                        q.longest_wait_secs.max((now - since).num_seconds().max(0));
                }
                if matches!(c.place, Place::Offered { .. }) {
                    q.offers_pending += 1;
                }
            }
            chats.push(LiveChat {
                id: c.id.clone(),
                queue: c.queue.clone(),
                customer_name: c.customer.name.clone(),
                place: place.into(),
                agents: c.agents.iter().map(|a| self.agent_name(a)).collect(),
                created_at: c.created_at,
            });
        }
        chats.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let agents = self
            .config
            .agents
            .iter()
            .map(|a| {
                let rt = self.agents.get(&a.id);
                AgentLive {
                    id: a.id.clone(),
                    name: a.name.clone(),
                    state: rt.map_or(AgentState::SignedOut, |r| r.state.clone()),
                    since: rt.and_then(|r| r.state_since),
                    chats: rt.map_or(0, |r| r.chats.len() as u32),
                    capacity: a.capacity,
                    wrap_ups: rt.map_or(0, |r| r.wrap_ups.len() as u32),
                    ronas_today: rt.map_or(0, |r| r.ronas.on(today_local)),
                }
            })
            .collect();
        SupervisorView {
            at: now,
            queues,
            agents,
            chats,
            today,
            undelivered,
        }
    }
}
