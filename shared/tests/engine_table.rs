//! Table tests: every transition and every error of SPEC §2–§3, one scenario each.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use chrono::{DateTime, Duration, Utc};
use shared::agent::{AgentState, RequestedState};
use shared::config::*;
use shared::engine::*;
use shared::ids::*;

pub fn t0() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap()
}
fn a(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}
fn c(s: &str) -> ConversationId {
    ConversationId::new(s).unwrap()
}
fn q(s: &str) -> QueueId {
    QueueId::new(s).unwrap()
}
fn r(s: &str) -> ReasonId {
    ReasonId::new(s).unwrap()
}

fn config() -> TenantConfig {
    let queue = |id: &str, name: &str| QueueConfig {
        id: q(id),
        name: name.into(),
        offer_timeout_secs: 30,
        inactivity_timeout_secs: 600,
        max_wait_secs: 86_400,
        max_queue_length: 500,
        hours: Default::default(),
    };
    let agent = |id: &str, name: &str, cap: u32| AgentConfig {
        id: a(id),
        name: name.into(),
        capacity: cap,
        queues: vec![q("support"), q("sales")],
        role: Default::default(),
        avatar: None,
    };
    TenantConfig {
        name: "Test".into(),
        sites: vec![SiteConfig {
            key: SiteKey::new("site").unwrap(),
            name: "Shop".into(),
            allowed_origins: vec![],
            queue: q("support"),
            language: String::new(),
            accent: None,
            typical_reply_mins: None,
        }],
        queues: vec![queue("support", "Support"), queue("sales", "Sales")],
        agents: vec![
            agent("anna", "Anna", 2),
            agent("ben", "Ben", 2),
            agent("cleo", "Cleo", 1),
        ],
        idle_reasons: vec![Reason {
            id: r("break"),
            label: "Break".into(),
            label_de: "Pause".into(),
        }],
        wrap_up_reasons: vec![Reason {
            id: r("solved"),
            label: "Solved".into(),
            label_de: "Gelöst".into(),
        }],
        templates: vec![TemplateConfig {
            id: TemplateId::new("hello").unwrap(),
            name: "Hello".into(),
            text: "Hallo <customer_name>, hier ist <agent_name>.".into(),
        }],
        max_open_conversations: 5_000,
        retention_days: 90,
        webhooks: vec![],
        time_zone: String::new(),
    }
}

struct World {
    t: Tenant,
    now: DateTime<Utc>,
    closed: Vec<ClosedConversation>,
}

impl World {
    fn new() -> Self {
        Self {
            t: Tenant::new(config()).unwrap(),
            now: t0(),
            closed: vec![],
        }
    }
    fn run(&mut self, cmd: Command) -> Result<Vec<Effect>, EngineError> {
        let before = self.t.clone();
        let r = self.t.handle(self.now, cmd);
        match &r {
            Ok(fx) => {
                for e in fx {
                    if let Effect::Closed(cc) = e {
                        self.closed.push((**cc).clone());
                    }
                }
            }
            Err(_) => assert_eq!(self.t, before, "an error changed the state"),
        }
        self.t.check_invariants().unwrap();
        r
    }
    fn ok(&mut self, cmd: Command) -> Vec<Effect> {
        self.run(cmd.clone())
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
    }
    fn err(&mut self, cmd: Command) -> EngineError {
        self.run(cmd.clone())
            .expect_err(&format!("{cmd:?} should fail"))
    }
    fn available(&mut self, who: &str) -> Vec<Effect> {
        self.ok(Command::SignIn { agent: a(who) });
        self.ok(Command::SetState {
            agent: a(who),
            state: RequestedState::Available,
        })
    }
    fn start(&mut self, id: &str) -> Vec<Effect> {
        self.ok(Command::Start {
            conversation: c(id),
            site: SiteKey::new("site").unwrap(),
            customer: Customer {
                name: format!("Customer {id}"),
                email: None,
                verified_user_id: None,
            },
        })
    }
    fn state(&self, who: &str) -> AgentState {
        self.t.agent(&a(who)).unwrap().state.clone()
    }
    fn place(&self, id: &str) -> Place {
        self.t.conversation(&c(id)).unwrap().place.clone()
    }
    fn advance(&mut self, secs: i64) -> Vec<Effect> {
        self.now += Duration::seconds(secs);
        self.ok(Command::Tick)
    }
}

fn offered_to(fx: &[Effect]) -> Vec<(AgentId, ConversationId)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Agent {
                agent,
                event: AgentEvent::Offer(o),
            } => Some((agent.clone(), o.conversation.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn sign_in_lands_in_idle_and_only_available_is_routed() {
    let mut w = World::new();
    w.ok(Command::SignIn { agent: a("anna") });
    assert_eq!(w.state("anna"), AgentState::Idle { reason: None });
    w.start("c1");
    assert_eq!(w.place("c1"), Place::Queued);
    let fx = w.ok(Command::SetState {
        agent: a("anna"),
        state: RequestedState::Available,
    });
    assert_eq!(offered_to(&fx), vec![(a("anna"), c("c1"))]);
}

#[test]
fn no_chat_without_signed_in_agent_and_leave_message_instead() {
    let mut w = World::new();
    let e = w.err(Command::Start {
        conversation: c("c1"),
        site: SiteKey::new("site").unwrap(),
        customer: Customer {
            name: "Eva".into(),
            email: None,
            verified_user_id: None,
        },
    });
    assert_eq!(e, EngineError::NoAgentsSignedIn(q("support")));
    let fx = w.ok(Command::LeaveMessage {
        conversation: c("m1"),
        site: SiteKey::new("site").unwrap(),
        customer: Customer {
            name: "Eva".into(),
            email: Some("e@x".into()),
            verified_user_id: None,
        },
        text: "Call me".into(),
    });
    assert_eq!(fx.len(), 1);
    assert_eq!(w.closed[0].kind, ConversationKind::LeftMessage);
    assert_eq!(w.closed[0].message.as_deref(), Some("Call me"));
    assert!(
        w.t.conversation(&c("m1")).is_none(),
        "left messages are never live"
    );
}

#[test]
fn closed_queue_refuses_start() {
    let mut cfg = config();
    cfg.queues[0].hours.windows = vec![shared::hours::OpeningWindow {
        day: chrono::Weekday::Sun,
        from: "00:00".into(),
        to: "00:01".into(),
    }];
    let mut t = Tenant::new(cfg).unwrap();
    t.handle(t0(), Command::SignIn { agent: a("anna") })
        .unwrap();
    let site = SiteKey::new("site").unwrap();
    assert!(matches!(
        t.availability(&site, t0()).unwrap(),
        Availability::Closed { .. }
    ));
    let e = t.handle(
        t0(),
        Command::Start {
            conversation: c("c1"),
            site,
            customer: Customer {
                name: "E".into(),
                email: None,
                verified_user_id: None,
            },
        },
    );
    assert_eq!(e.unwrap_err(), EngineError::QueueClosed(q("support")));
}

#[test]
fn offer_goes_to_longest_waiting_agent() {
    let mut w = World::new();
    w.available("anna");
    w.now += Duration::seconds(1);
    w.available("ben");
    let fx = w.start("c1");
    assert_eq!(offered_to(&fx), vec![(a("anna"), c("c1"))]);
    let fx = w.start("c2");
    assert_eq!(offered_to(&fx), vec![(a("ben"), c("c2"))]);
}

#[test]
fn accept_and_double_accept_has_one_winner() {
    let mut w = World::new();
    w.available("anna");
    w.available("ben");
    w.start("c1");
    let Place::Offered { agent, .. } = w.place("c1") else {
        panic!()
    };
    let other = if agent == a("anna") {
        a("ben")
    } else {
        a("anna")
    };
    let fx = w.ok(Command::Accept {
        agent: agent.clone(),
        conversation: c("c1"),
    });
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Conversation {
            event: ConversationEvent::Note(SystemNote::Joined { .. }),
            ..
        }
    )));
    assert_eq!(
        w.err(Command::Accept {
            agent: other,
            conversation: c("c1")
        }),
        EngineError::NotOffered(c("c1"))
    );
    assert_eq!(
        w.place("c1"),
        Place::Active {
            owner: agent,
            conference: None
        }
    );
}

#[test]
fn offer_timeout_sends_agent_to_rona_and_conversation_to_front() {
    let mut w = World::new();
    w.available("anna");
    w.start("c1");
    w.ok(Command::SignIn { agent: a("ben") });
    w.start("c2");
    assert_eq!(
        w.t.queue(&q("support"))
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>(),
        vec![c("c2")]
    );
    assert_eq!(w.t.next_deadline(), Some(t0() + Duration::seconds(30)));
    let fx = w.advance(29);
    assert!(fx.is_empty());
    let fx = w.advance(1);
    assert_eq!(w.state("anna"), AgentState::Rona);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Agent {
            event: AgentEvent::OfferWithdrawn {
                reason: WithdrawReason::Expired,
                ..
            },
            ..
        }
    )));
    assert_eq!(
        w.t.queue(&q("support")).unwrap().front(),
        Some(&c("c1")),
        "back to the front"
    );
    // Ben becomes available: he gets c1 first.
    let fx = w.ok(Command::SetState {
        agent: a("ben"),
        state: RequestedState::Available,
    });
    assert_eq!(offered_to(&fx), vec![(a("ben"), c("c1"))]);
    // RONA stays RONA through time and other agents' actions.
    w.advance(5);
    assert_eq!(w.state("anna"), AgentState::Rona);
    w.ok(Command::SetState {
        agent: a("anna"),
        state: RequestedState::Available,
    });
    assert_eq!(w.state("anna"), AgentState::Available);
}

#[test]
fn capacity_is_respected() {
    let mut w = World::new();
    w.available("cleo"); // capacity 1
    w.start("c1");
    w.ok(Command::Accept {
        agent: a("cleo"),
        conversation: c("c1"),
    });
    w.start("c2");
    assert_eq!(w.place("c2"), Place::Queued);
    w.ok(Command::End {
        agent: a("cleo"),
        conversation: c("c1"),
    });
    assert_eq!(
        w.place("c2"),
        Place::Queued,
        "wrap-up still occupies the slot"
    );
    let fx = w.ok(Command::WrapUp {
        agent: a("cleo"),
        conversation: c("c1"),
        reason: r("solved"),
        next: RequestedState::Available,
    });
    assert_eq!(offered_to(&fx), vec![(a("cleo"), c("c2"))]);
}

#[test]
fn going_idle_withdraws_offer_without_rona() {
    let mut w = World::new();
    w.available("anna");
    w.start("c1");
    w.ok(Command::SetState {
        agent: a("anna"),
        state: RequestedState::Idle { reason: r("break") },
    });
    assert_eq!(
        w.state("anna"),
        AgentState::Idle {
            reason: Some(r("break"))
        }
    );
    assert_eq!(w.place("c1"), Place::Queued);
    assert_eq!(
        w.err(Command::SetState {
            agent: a("anna"),
            state: RequestedState::Idle { reason: r("nap") }
        }),
        EngineError::UnknownIdleReason(r("nap"))
    );
}

#[test]
fn sign_out_refused_with_open_chats() {
    let mut w = World::new();
    w.available("anna");
    w.start("c1");
    w.ok(Command::Accept {
        agent: a("anna"),
        conversation: c("c1"),
    });
    assert_eq!(
        w.err(Command::SignOut { agent: a("anna") }),
        EngineError::HasOpenChats(a("anna"))
    );
    assert_eq!(
        w.err(Command::SetState {
            agent: a("zed"),
            state: RequestedState::Available
        }),
        EngineError::UnknownAgent(a("zed"))
    );
}

fn active_with(w: &mut World, owner: &str, id: &str) {
    w.available(owner);
    w.start(id);
    w.ok(Command::Accept {
        agent: a(owner),
        conversation: c(id),
    });
}

#[test]
fn transfer_to_queue() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    let fx = w.ok(Command::Transfer {
        agent: a("anna"),
        conversation: c("c1"),
        target: TransferTarget::Queue(q("sales")),
    });
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Conversation {
            event: ConversationEvent::Note(SystemNote::Transferring),
            ..
        }
    )));
    assert!(w.t.agent(&a("anna")).unwrap().wrap_ups.contains(&c("c1")));
    // Anna owes a wrap-up for it, so it waits in sales rather than coming back to her.
    assert_eq!(w.place("c1"), Place::Queued);
    w.ok(Command::WrapUp {
        agent: a("anna"),
        conversation: c("c1"),
        reason: r("solved"),
        next: RequestedState::Available,
    });
    assert!(matches!(w.place("c1"), Place::Offered { .. }));
    assert_eq!(w.t.conversation(&c("c1")).unwrap().queue, q("sales"));
    assert_eq!(w.t.conversation(&c("c1")).unwrap().queue_history.len(), 2);
}

#[test]
fn transfer_to_agent_accepted() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    w.available("ben");
    let fx = w.ok(Command::Transfer {
        agent: a("anna"),
        conversation: c("c1"),
        target: TransferTarget::Agent(a("ben")),
    });
    assert_eq!(offered_to(&fx), vec![(a("ben"), c("c1"))]);
    w.ok(Command::Accept {
        agent: a("ben"),
        conversation: c("c1"),
    });
    assert_eq!(
        w.place("c1"),
        Place::Active {
            owner: a("ben"),
            conference: None
        }
    );
    w.ok(Command::WrapUp {
        agent: a("anna"),
        conversation: c("c1"),
        reason: r("solved"),
        next: RequestedState::Available,
    });
}

#[test]
fn transfer_to_agent_not_accepted_is_discarded_and_requeued_at_front() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    w.ok(Command::SetState {
        agent: a("anna"),
        state: RequestedState::Idle { reason: r("break") },
    });
    w.available("ben");
    w.ok(Command::Transfer {
        agent: a("anna"),
        conversation: c("c1"),
        target: TransferTarget::Agent(a("ben")),
    });
    w.advance(30);
    assert_eq!(w.state("ben"), AgentState::Rona);
    assert_eq!(w.place("c1"), Place::Queued);
    assert_eq!(w.t.queue(&q("support")).unwrap().front(), Some(&c("c1")));
}

#[test]
fn transfer_errors() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    w.ok(Command::SignIn { agent: a("ben") });
    assert_eq!(
        w.err(Command::Transfer {
            agent: a("anna"),
            conversation: c("c1"),
            target: TransferTarget::Agent(a("ben"))
        }),
        EngineError::TargetUnavailable(a("ben"))
    );
    assert_eq!(
        w.err(Command::Transfer {
            agent: a("anna"),
            conversation: c("c1"),
            target: TransferTarget::Agent(a("anna"))
        }),
        EngineError::SelfTarget
    );
    assert_eq!(
        w.err(Command::Transfer {
            agent: a("anna"),
            conversation: c("c1"),
            target: TransferTarget::Queue(q("nope"))
        }),
        EngineError::UnknownQueue(q("nope"))
    );
    assert_eq!(
        w.err(Command::Transfer {
            agent: a("ben"),
            conversation: c("c1"),
            target: TransferTarget::Queue(q("sales"))
        }),
        EngineError::NotOwner(c("c1"))
    );
    w.start("c2");
    assert!(matches!(w.place("c2"), Place::Offered { .. }));
    assert_eq!(
        w.err(Command::Transfer {
            agent: a("anna"),
            conversation: c("c2"),
            target: TransferTarget::Queue(q("sales"))
        }),
        EngineError::NotActive(c("c2"))
    );
    assert_eq!(
        w.err(Command::End {
            agent: a("anna"),
            conversation: c("zz")
        }),
        EngineError::UnknownConversation(c("zz"))
    );
}

#[test]
fn conference_requested_accepted_ended() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    w.available("ben");
    let fx = w.ok(Command::RequestConference {
        agent: a("anna"),
        conversation: c("c1"),
        guest: a("ben"),
    });
    assert!(fx.iter().any(|e| matches!(e, Effect::Agent { agent, event: AgentEvent::Status { status: ChatStatus::ConferenceRequested { .. }, .. } } if agent == &a("anna"))));
    assert_eq!(
        w.err(Command::RequestConference {
            agent: a("anna"),
            conversation: c("c1"),
            guest: a("cleo")
        }),
        EngineError::ConferenceBusy(c("c1"))
    );
    let fx = w.ok(Command::Accept {
        agent: a("ben"),
        conversation: c("c1"),
    });
    assert!(fx.iter().any(|e| matches!(e, Effect::Conversation { event: ConversationEvent::Note(SystemNote::Joined { agent_name }), .. } if agent_name == "Ben")));
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Agent {
            event: AgentEvent::Status {
                status: ChatStatus::Conference { .. },
                ..
            },
            ..
        }
    )));
    let mut p = w.t.participants(&c("c1")).unwrap();
    p.sort();
    assert_eq!(p, vec![a("anna"), a("ben")]);
    w.t.can_write(&a("ben"), &c("c1")).unwrap();
    assert_eq!(
        w.err(Command::Transfer {
            agent: a("anna"),
            conversation: c("c1"),
            target: TransferTarget::Queue(q("sales"))
        }),
        EngineError::ConferenceBusy(c("c1"))
    );
    w.ok(Command::EndConference {
        agent: a("anna"),
        conversation: c("c1"),
    });
    assert_eq!(
        w.place("c1"),
        Place::Active {
            owner: a("anna"),
            conference: None
        }
    );
    assert_eq!(
        w.t.can_write(&a("ben"), &c("c1")),
        Err(EngineError::NotParticipant(c("c1")))
    );
    assert_eq!(
        w.err(Command::EndConference {
            agent: a("anna"),
            conversation: c("c1")
        }),
        EngineError::NoConference(c("c1"))
    );
}

#[test]
fn conference_timeout_sends_guest_to_rona() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    w.available("ben");
    w.ok(Command::RequestConference {
        agent: a("anna"),
        conversation: c("c1"),
        guest: a("ben"),
    });
    let fx = w.advance(30);
    assert_eq!(w.state("ben"), AgentState::Rona);
    assert_eq!(
        w.place("c1"),
        Place::Active {
            owner: a("anna"),
            conference: None
        }
    );
    assert!(fx.iter().any(|e| matches!(e, Effect::Agent { agent, event: AgentEvent::Status { status: ChatStatus::Active, .. } } if agent == &a("anna"))));
}

#[test]
fn end_by_agent_then_wrap_up_closes_with_record() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    w.now += Duration::seconds(40);
    let fx = w.ok(Command::End {
        agent: a("anna"),
        conversation: c("c1"),
    });
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Agent {
            event: AgentEvent::WrapUpRequired { .. },
            ..
        }
    )));
    assert_eq!(w.place("c1"), Place::Ended);
    assert_eq!(
        w.err(Command::WrapUp {
            agent: a("anna"),
            conversation: c("c1"),
            reason: r("nope"),
            next: RequestedState::Available
        }),
        EngineError::UnknownWrapUpReason(r("nope"))
    );
    w.ok(Command::WrapUp {
        agent: a("anna"),
        conversation: c("c1"),
        reason: r("solved"),
        next: RequestedState::Idle { reason: r("break") },
    });
    assert_eq!(
        w.state("anna"),
        AgentState::Idle {
            reason: Some(r("break"))
        }
    );
    let rec = &w.closed[0];
    assert_eq!(rec.wrap_ups[0].reason, r("solved"));
    assert_eq!(rec.handle_secs, 40);
    assert_eq!(rec.wait_secs, 0);
    assert_eq!(rec.ended_by, Some(EndedBy::Agent(a("anna"))));
    assert!(w.t.conversation(&c("c1")).is_none());
    assert_eq!(
        w.err(Command::WrapUp {
            agent: a("anna"),
            conversation: c("c1"),
            reason: r("solved"),
            next: RequestedState::Available
        }),
        EngineError::NoWrapUp(c("c1"))
    );
}

#[test]
fn wrap_up_only_after_end() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    assert_eq!(
        w.err(Command::WrapUp {
            agent: a("anna"),
            conversation: c("c1"),
            reason: r("solved"),
            next: RequestedState::Available
        }),
        EngineError::NoWrapUp(c("c1"))
    );
}

#[test]
fn end_by_customer_in_every_place() {
    let mut w = World::new();
    w.ok(Command::SignIn { agent: a("anna") });
    w.start("q1");
    w.ok(Command::CustomerEnd {
        conversation: c("q1"),
    });
    assert_eq!(w.closed.len(), 1, "queued chat closes at once");
    w.available("anna");
    w.start("o1");
    let fx = w.ok(Command::CustomerEnd {
        conversation: c("o1"),
    });
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Agent {
            event: AgentEvent::OfferWithdrawn {
                reason: WithdrawReason::CustomerLeft,
                ..
            },
            ..
        }
    )));
    w.start("a1");
    w.ok(Command::Accept {
        agent: a("anna"),
        conversation: c("a1"),
    });
    w.ok(Command::CustomerEnd {
        conversation: c("a1"),
    });
    assert_eq!(w.place("a1"), Place::Ended);
    assert_eq!(
        w.err(Command::CustomerEnd {
            conversation: c("a1")
        }),
        EngineError::AlreadyEnded(c("a1"))
    );
}

#[test]
fn inactivity_ends_active_chat() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    // The conversation object measures inactivity; the engine never ends a chat by itself.
    w.advance(40_000);
    assert!(matches!(w.place("c1"), Place::Active { .. }));
    let fx = w.ok(Command::Inactive {
        conversation: c("c1"),
    });
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Conversation {
            event: ConversationEvent::Note(SystemNote::Ended {
                by: EndedBy::Inactivity
            }),
            ..
        }
    )));
}

#[test]
fn queue_positions_are_announced() {
    let mut w = World::new();
    w.ok(Command::SignIn { agent: a("anna") });
    w.start("c1");
    let fx = w.start("c2");
    assert!(fx.contains(&Effect::Conversation {
        conversation: c("c2"),
        event: ConversationEvent::Status(VisitorStatus::Queued { position: 2 })
    }));
    let fx = w.ok(Command::CustomerEnd {
        conversation: c("c1"),
    });
    assert!(fx.contains(&Effect::Conversation {
        conversation: c("c2"),
        event: ConversationEvent::Status(VisitorStatus::Queued { position: 1 })
    }));
}

#[test]
fn templates_render_from_conversation() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    let s =
        w.t.render_template(
            &a("anna"),
            &c("c1"),
            &TemplateId::new("hello").unwrap(),
            w.now,
        )
        .unwrap();
    assert_eq!(s, ("Hallo Customer c1, hier ist Anna.".to_string(), vec![]));
    assert_eq!(
        w.t.render_template(&a("anna"), &c("c1"), &TemplateId::new("x").unwrap(), w.now),
        Err(EngineError::UnknownTemplate(TemplateId::new("x").unwrap()))
    );
    assert_eq!(
        w.t.render_template(
            &a("ben"),
            &c("c1"),
            &TemplateId::new("hello").unwrap(),
            w.now
        ),
        Err(EngineError::NotParticipant(c("c1")))
    );
}

#[test]
fn bad_config_is_refused_naming_problem() {
    let mut cfg = config();
    cfg.templates[0].text = "Hi <nick>".into();
    assert!(Tenant::new(cfg).unwrap_err().to_string().contains("<nick>"));
    let mut cfg = config();
    cfg.agents[0].queues.push(q("ghost"));
    assert!(Tenant::new(cfg)
        .unwrap_err()
        .to_string()
        .contains("unknown queue ghost"));
}

#[test]
fn snapshot_shows_offer_and_chats() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    w.start("c2");
    let s = w.t.snapshot(&a("anna")).unwrap();
    assert_eq!(s.chats.len(), 1);
    assert_eq!(
        s.offer.as_ref().map(|o| o.conversation.clone()),
        Some(c("c2"))
    );
    assert_eq!(s.offer.unwrap().received_at, t0());
}

#[test]
fn session_expiry_signs_out_without_dropping_customers() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    w.start("c2");
    assert!(matches!(w.place("c2"), Place::Offered { .. }));
    let expiry = t0() + Duration::seconds(shared::agent::SESSION_SECS);
    assert_eq!(w.t.next_deadline().map(|d| d <= expiry), Some(true));
    w.now = expiry;
    let fx = w.ok(Command::Tick);
    assert_eq!(w.state("anna"), AgentState::SignedOut);
    assert_eq!(w.place("c1"), Place::Queued, "owned chat back in the queue");
    assert_eq!(w.place("c2"), Place::Queued, "pending offer withdrawn");
    assert_eq!(w.t.queue(&q("support")).unwrap().front(), Some(&c("c1")));
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Conversation {
            event: ConversationEvent::Note(SystemNote::Left { .. }),
            ..
        }
    )));
    // Signing in again starts a new session.
    w.ok(Command::SignIn { agent: a("anna") });
    assert_eq!(w.state("anna"), AgentState::Idle { reason: None });
}

#[test]
fn queued_chat_past_its_maximum_wait_ends_and_may_leave_a_message() {
    let mut w = World::new();
    let mut cfg = config();
    cfg.queues[0].max_wait_secs = 600;
    w.t.set_config(cfg).unwrap();
    w.ok(Command::SignIn { agent: a("anna") });
    w.start("c1");
    assert_eq!(w.t.next_deadline(), Some(t0() + Duration::seconds(600)));
    assert!(w.advance(599).is_empty());
    assert_eq!(w.place("c1"), Place::Queued);
    let fx = w.advance(1);
    assert!(
        w.t.conversation(&c("c1")).is_none(),
        "ended and closed at once"
    );
    assert!(fx.contains(&Effect::Conversation {
        conversation: c("c1"),
        event: ConversationEvent::Note(SystemNote::Ended {
            by: EndedBy::MaxWait
        })
    }));
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Closed(cc) if cc.ended_by == Some(EndedBy::MaxWait))));
}

#[test]
fn full_queue_and_full_tenant_refuse_a_start_naming_the_limit() {
    let mut w = World::new();
    let mut cfg = config();
    cfg.queues[0].max_queue_length = 2;
    w.t.set_config(cfg).unwrap();
    w.ok(Command::SignIn { agent: a("anna") });
    w.start("c1");
    w.start("c2");
    let e = w.err(Command::Start {
        conversation: c("c3"),
        site: SiteKey::new("site").unwrap(),
        customer: Customer {
            name: "X".into(),
            email: None,
            verified_user_id: None,
        },
    });
    assert_eq!(e.code(), "queue_full");
    assert!(e.to_string().contains("2 conversations"), "{e}");
    let mut cfg = config();
    cfg.max_open_conversations = 2;
    w.t.set_config(cfg).unwrap();
    let e = w.err(Command::Start {
        conversation: c("c3"),
        site: SiteKey::new("site").unwrap(),
        customer: Customer {
            name: "X".into(),
            email: None,
            verified_user_id: None,
        },
    });
    assert_eq!(e, EngineError::TenantFull(2));
}

#[test]
fn a_command_writes_only_the_rows_it_touches() {
    let mut w = World::new();
    w.ok(Command::SignIn { agent: a("anna") });
    for i in 0..50 {
        w.start(&format!("q{i}"));
    }
    w.t.take_changes();
    // Anna becomes available: one offer (front of the queue) and 49 positions move.
    w.ok(Command::SetState {
        agent: a("anna"),
        state: RequestedState::Available,
    });
    let ch = w.t.take_changes();
    assert_eq!(ch.agents.len(), 1);
    assert_eq!(ch.conversations.len(), 50);
    // A state change of an agent with nothing to route touches that agent only.
    w.ok(Command::SignIn { agent: a("ben") });
    let ch = w.t.take_changes();
    assert_eq!(ch.agents.into_iter().collect::<Vec<_>>(), vec![a("ben")]);
    assert!(ch.conversations.is_empty());
}

#[test]
fn access_list_follows_owner_guest_and_wrap_up() {
    let mut w = World::new();
    active_with(&mut w, "anna", "c1");
    let access = |fx: &[Effect]| {
        fx.iter().find_map(|e| match e {
            Effect::Conversation {
                event:
                    ConversationEvent::Access {
                        version, agents, ..
                    },
                ..
            } => Some((
                *version,
                agents
                    .iter()
                    .map(|p| (p.agent.to_string(), p.can_write))
                    .collect::<Vec<_>>(),
            )),
            _ => None,
        })
    };
    let v1 = w.t.conversation(&c("c1")).unwrap().access_version;
    w.available("ben");
    w.ok(Command::RequestConference {
        agent: a("anna"),
        conversation: c("c1"),
        guest: a("ben"),
    });
    let fx = w.ok(Command::Accept {
        agent: a("ben"),
        conversation: c("c1"),
    });
    assert_eq!(
        access(&fx),
        Some((v1 + 1, vec![("anna".into(), true), ("ben".into(), true)]))
    );
    let fx = w.ok(Command::End {
        agent: a("anna"),
        conversation: c("c1"),
    });
    assert_eq!(access(&fx), Some((v1 + 2, vec![("anna".into(), false)])));
    let fx = w.ok(Command::WrapUp {
        agent: a("anna"),
        conversation: c("c1"),
        reason: r("solved"),
        next: RequestedState::Available,
    });
    assert_eq!(access(&fx), Some((v1 + 3, vec![])));
}

#[test]
fn schema_1_value_migrates_to_rows_keeping_queue_order() {
    let mut w = World::new();
    w.ok(Command::SignIn { agent: a("anna") });
    for id in ["c1", "c2", "c3"] {
        w.start(id);
    }
    // Schema 1 stored the whole engine as one JSON value.
    let blob = serde_json::to_string(&w.t).unwrap();
    let mut old: Tenant = serde_json::from_str(&blob).unwrap();
    old.assign_queue_keys();
    old.mark_all_changed();
    let ch = old.take_changes();
    assert_eq!(ch.conversations.len(), 3);
    let rows: Vec<String> = ch
        .conversations
        .iter()
        .map(|c| {
            serde_json::to_string(&StoredConversation::from(old.conversation(c).unwrap())).unwrap()
        })
        .collect();
    let convs = rows
        .iter()
        .map(|r| Conversation::from(serde_json::from_str::<StoredConversation>(r).unwrap()));
    let agents = ["anna", "ben", "cleo"]
        .iter()
        .map(|x| (a(x), old.agent(&a(x)).unwrap().clone()));
    let t = Tenant::restore(config(), agents, convs).unwrap();
    t.check_invariants().unwrap();
    assert_eq!(
        t.queue(&q("support"))
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>(),
        vec![c("c1"), c("c2"), c("c3")]
    );
}

/// Shrunk from a property-test failure: an offer that expires at the very moment the
/// maximum wait runs out must not leave a due deadline behind.
#[test]
fn offer_expiring_at_the_maximum_wait_ends_the_chat_in_the_same_tick() {
    let mut w = World::new();
    let mut cfg = config();
    cfg.queues[0].max_wait_secs = 60;
    w.t.set_config(cfg).unwrap();
    w.ok(Command::SignIn { agent: a("anna") });
    w.start("c1");
    w.advance(30);
    w.ok(Command::SetState {
        agent: a("anna"),
        state: RequestedState::Available,
    });
    // Offer timeout is 30 s: it expires at 60 s, exactly at the maximum wait.
    let fx = w.advance(30);
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Closed(cc) if cc.ended_by == Some(EndedBy::MaxWait))));
    assert!(w.t.next_deadline().is_none_or(|d| d > w.now));
}
