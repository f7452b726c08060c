//! Property tests: random sequences of visitor, agent and clock operations,
//! checked after every step against the invariants of SPEC §2, §3 and §6.
//!
//! Shrunk failures found by these properties are kept as named tests in
//! `engine_table.rs` (e.g. `transfer_to_queue`: a transferring agent was offered
//! the same chat back before its wrap-up).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use shared::agent::{AgentState, RequestedState};
use shared::config::*;
use shared::engine::*;
use shared::ids::*;
use std::collections::{BTreeMap, BTreeSet};

const AGENTS: [&str; 3] = ["anna", "ben", "cleo"];
const QUEUES: [&str; 2] = ["support", "sales"];

fn a(i: usize) -> AgentId {
    AgentId::new(AGENTS[i % AGENTS.len()]).unwrap()
}
fn c(i: usize) -> ConversationId {
    ConversationId::new(format!("c{i}")).unwrap()
}
fn q(i: usize) -> QueueId {
    QueueId::new(QUEUES[i % QUEUES.len()]).unwrap()
}

fn config() -> TenantConfig {
    TenantConfig {
        name: "P".into(),
        sites: vec![SiteConfig {
            key: SiteKey::new("s").unwrap(),
            name: "S".into(),
            allowed_origins: vec![],
            queue: q(0),
            language: String::new(),
            accent: None,
            typical_reply_mins: None,
        }],
        queues: QUEUES
            .iter()
            .map(|id| QueueConfig {
                id: QueueId::new(*id).unwrap(),
                name: id.to_string(),
                offer_timeout_secs: 10,
                inactivity_timeout_secs: 60,
                max_wait_secs: 200,
                max_queue_length: 3,
                hours: Default::default(),
            })
            .collect(),
        agents: AGENTS
            .iter()
            .enumerate()
            .map(|(i, id)| AgentConfig {
                id: AgentId::new(*id).unwrap(),
                name: id.to_string(),
                capacity: 1 + i as u32,
                queues: if i == 2 { vec![q(1)] } else { vec![q(0), q(1)] },
                role: Default::default(),
                avatar: None,
            })
            .collect(),
        idle_reasons: vec![Reason {
            id: ReasonId::new("break").unwrap(),
            label: "Break".into(),
            label_de: String::new(),
        }],
        wrap_up_reasons: vec![Reason {
            id: ReasonId::new("done").unwrap(),
            label: "Done".into(),
            label_de: String::new(),
        }],
        templates: vec![],
        max_open_conversations: 8,
        retention_days: 90,
        webhooks: vec![],
        time_zone: String::new(),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Start(usize),
    Activity(usize),
    CustomerEnd(usize),
    SignIn(usize),
    SignOut(usize),
    Available(usize),
    Idle(usize),
    Accept(usize, usize),
    TransferQueue(usize, usize, usize),
    TransferAgent(usize, usize, usize),
    Conference(usize, usize, usize),
    EndConference(usize, usize),
    End(usize, usize),
    WrapUp(usize, usize, bool),
    Advance(u8),
    /// Past every session's expiry.
    LongAdvance,
}

fn op() -> impl Strategy<Value = Op> {
    let ag = 0..3usize;
    let cv = 0..6usize;
    prop_oneof![
        3 => cv.clone().prop_map(Op::Start),
        1 => cv.clone().prop_map(Op::Activity),
        1 => cv.clone().prop_map(Op::CustomerEnd),
        2 => ag.clone().prop_map(Op::SignIn),
        1 => ag.clone().prop_map(Op::SignOut),
        3 => ag.clone().prop_map(Op::Available),
        1 => ag.clone().prop_map(Op::Idle),
        4 => (ag.clone(), cv.clone()).prop_map(|(x, y)| Op::Accept(x, y)),
        1 => (ag.clone(), cv.clone(), 0..2usize).prop_map(|(x, y, z)| Op::TransferQueue(x, y, z)),
        1 => (ag.clone(), cv.clone(), ag.clone()).prop_map(|(x, y, z)| Op::TransferAgent(x, y, z)),
        1 => (ag.clone(), cv.clone(), ag.clone()).prop_map(|(x, y, z)| Op::Conference(x, y, z)),
        1 => (ag.clone(), cv.clone()).prop_map(|(x, y)| Op::EndConference(x, y)),
        2 => (ag.clone(), cv.clone()).prop_map(|(x, y)| Op::End(x, y)),
        2 => (ag.clone(), cv.clone(), any::<bool>()).prop_map(|(x, y, z)| Op::WrapUp(x, y, z)),
        3 => (1u8..40).prop_map(Op::Advance),
        1 => Just(Op::LongAdvance),
    ]
}

fn to_command(op: &Op, generation: usize) -> (Option<AgentId>, Command) {
    // Conversation ids are reused across generations so that ids of closed chats are fresh.
    let cid = |i: usize| c(i + 10 * generation);
    match op.clone() {
        Op::Start(i) => (
            None,
            Command::Start {
                conversation: cid(i),
                site: SiteKey::new("s").unwrap(),
                customer: Customer {
                    name: format!("V{i}"),
                    email: None,
                    verified_user_id: None,
                },
            },
        ),
        Op::Activity(i) => (
            None,
            Command::Inactive {
                conversation: cid(i),
            },
        ),
        Op::CustomerEnd(i) => (
            None,
            Command::CustomerEnd {
                conversation: cid(i),
            },
        ),
        Op::SignIn(x) => (Some(a(x)), Command::SignIn { agent: a(x) }),
        Op::SignOut(x) => (Some(a(x)), Command::SignOut { agent: a(x) }),
        Op::Available(x) => (
            Some(a(x)),
            Command::SetState {
                agent: a(x),
                state: RequestedState::Available,
            },
        ),
        Op::Idle(x) => (
            Some(a(x)),
            Command::SetState {
                agent: a(x),
                state: RequestedState::Idle {
                    reason: ReasonId::new("break").unwrap(),
                },
            },
        ),
        Op::Accept(x, i) => (
            Some(a(x)),
            Command::Accept {
                agent: a(x),
                conversation: cid(i),
            },
        ),
        Op::TransferQueue(x, i, z) => (
            Some(a(x)),
            Command::Transfer {
                agent: a(x),
                conversation: cid(i),
                target: TransferTarget::Queue(q(z)),
            },
        ),
        Op::TransferAgent(x, i, z) => (
            Some(a(x)),
            Command::Transfer {
                agent: a(x),
                conversation: cid(i),
                target: TransferTarget::Agent(a(z)),
            },
        ),
        Op::Conference(x, i, z) => (
            Some(a(x)),
            Command::RequestConference {
                agent: a(x),
                conversation: cid(i),
                guest: a(z),
            },
        ),
        Op::EndConference(x, i) => (
            Some(a(x)),
            Command::EndConference {
                agent: a(x),
                conversation: cid(i),
            },
        ),
        Op::End(x, i) => (
            Some(a(x)),
            Command::End {
                agent: a(x),
                conversation: cid(i),
            },
        ),
        Op::WrapUp(x, i, avail) => (
            Some(a(x)),
            Command::WrapUp {
                agent: a(x),
                conversation: cid(i),
                reason: ReasonId::new("done").unwrap(),
                next: if avail {
                    RequestedState::Available
                } else {
                    RequestedState::Idle {
                        reason: ReasonId::new("break").unwrap(),
                    }
                },
            },
        ),
        Op::Advance(_) | Op::LongAdvance => (None, Command::Tick),
    }
}

fn place_name(p: &Place) -> &'static str {
    match p {
        Place::Queued => "queued",
        Place::Offered { .. } => "offered",
        Place::Active { .. } => "active",
        Place::Ended => "ended",
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_any_sequence(ops in proptest::collection::vec(op(), 1..120)) {
        let mut t = Tenant::new(config()).unwrap();
        let mut now: DateTime<Utc> = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut started: BTreeSet<ConversationId> = BTreeSet::new();
        let mut closed: BTreeSet<ConversationId> = BTreeSet::new();
        // What the edge would have stored: only the rows each command reports as changed.
        let mut stored_agents: BTreeMap<AgentId, AgentRuntime> = BTreeMap::new();
        let mut stored_convs: BTreeMap<ConversationId, Conversation> = BTreeMap::new();
        let ch = t.take_changes();
        for a in ch.agents { if let Some(rt) = t.agent(&a) { stored_agents.insert(a, rt.clone()); } }
        for (step, op) in ops.iter().enumerate() {
            if let Op::Advance(s) = op { now += Duration::seconds(i64::from(*s)); }
            if let Op::LongAdvance = op { now += Duration::seconds(shared::agent::SESSION_SECS + 1); }
            let (actor, cmd) = to_command(op, 0);
            // The edge never reuses a conversation id (they are random); neither does this model.
            if let Command::Start { conversation, .. } = &cmd { if closed.contains(conversation) { continue; } }
            let before = t.clone();
            match t.handle(now, cmd.clone()) {
                Err(e) => {
                    prop_assert_eq!(&t, &before, "error {} changed state at step {}", e, step);
                    prop_assert!(!e.to_string().is_empty());
                }
                Ok(fx) => {
                    if let Command::Start { conversation, .. } = &cmd { started.insert(conversation.clone()); }
                    for e in &fx {
                        match e {
                            Effect::Closed(cc) => {
                                prop_assert!(closed.insert(cc.id.clone()), "{} closed twice", cc.id);
                                prop_assert!(cc.ended_at >= cc.created_at);
                                prop_assert!(cc.wait_secs >= 0 && cc.handle_secs >= 0);
                            }
                            Effect::Agent { agent, event: AgentEvent::Offer(o) } => {
                                let rt = t.agent(agent).unwrap();
                                prop_assert_eq!(&rt.state, &AgentState::Available, "offer to non-available {}", agent);
                                prop_assert_eq!(rt.offer.as_ref(), Some(&o.conversation));
                            }
                            _ => {}
                        }
                    }
                }
            }
            if let Err(msg) = t.check_invariants() {
                return Err(TestCaseError::fail(format!("step {step} {op:?}: {msg}")));
            }
            // Rows go through their stored form as JSON, as the edge writes them.
            let ch = t.take_changes();
            for a in ch.agents {
                match t.agent(&a) {
                    Some(rt) => {
                        let row = serde_json::to_string(&StoredAgent::from(rt)).unwrap();
                        let back: StoredAgent = serde_json::from_str(&row).unwrap();
                        stored_agents.insert(a, back.into());
                    }
                    None => { stored_agents.remove(&a); }
                }
            }
            for c in ch.conversations {
                match t.conversation(&c) {
                    Some(x) => {
                        let row = serde_json::to_string(&StoredConversation::from(x)).unwrap();
                        let back: StoredConversation = serde_json::from_str(&row).unwrap();
                        stored_convs.insert(c, back.into());
                    }
                    None => { stored_convs.remove(&c); }
                }
            }
            let restored = Tenant::restore(config(), stored_agents.clone(), stored_convs.values().cloned()).unwrap();
            prop_assert_eq!(&restored, &t, "state rebuilt from the changed rows differs at step {} {:?}", step, op);
            // A conversation is always in exactly one place, and never disappears.
            for id in &started {
                let live = t.conversation(id);
                prop_assert!(live.is_some() != closed.contains(id), "{} is live={} closed={}", id, live.is_some(), closed.contains(id));
                if let Some(conv) = live {
                    let _ = place_name(&conv.place);
                }
            }
            // RONA is left only by the agent's own action (or, as for every state, by
            // the session expiring, which signs the agent out).
            for i in 0..AGENTS.len() {
                let ag = a(i);
                let expired = matches!(op, Op::LongAdvance) && t.agent(&ag).unwrap().state == AgentState::SignedOut;
                if before.agent(&ag).unwrap().state == AgentState::Rona && actor.as_ref() != Some(&ag) && !expired {
                    prop_assert_eq!(&t.agent(&ag).unwrap().state, &AgentState::Rona, "{} left RONA by someone else's {:?}", ag, op);
                }
            }
            // Deadlines are never in the past after a tick.
            if matches!(cmd, Command::Tick) {
                if let Some(d) = t.next_deadline() { prop_assert!(d > now); }
            }
        }
    }

    /// Many agents accept the same offer in any order: exactly one wins.
    #[test]
    fn one_winner_for_concurrent_accepts(order in Just(vec![0usize, 1, 2]).prop_shuffle()) {
        let mut t = Tenant::new(config()).unwrap();
        let now: DateTime<Utc> = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for i in 0..2 {
            t.handle(now, Command::SignIn { agent: a(i) }).unwrap();
            t.handle(now, Command::SetState { agent: a(i), state: RequestedState::Available }).unwrap();
        }
        t.handle(now, Command::Start { conversation: c(1), site: SiteKey::new("s").unwrap(), customer: Customer { name: "V".into(), email: None, verified_user_id: None } }).unwrap();
        let wins = order.iter().filter(|i| t.handle(now, Command::Accept { agent: a(**i), conversation: c(1) }).is_ok()).count();
        prop_assert_eq!(wins, 1);
    }
}
