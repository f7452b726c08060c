//! A conversation's life (SPEC §3): start, offer accepted, transfer, conference,
//! end and close. Every change goes through the journaled tables, so a refused
//! command leaves no trace.

use super::*;

impl Tenant {
    pub(super) fn apply(
        &mut self,
        now: DateTime<Utc>,
        cmd: Command,
        fx: &mut Fx,
    ) -> Result<(), EngineError> {
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
                    rating: None,
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
                self.set_state(&agent, AgentState::SignedOut, now, fx);
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
                self.set_state(&agent, state, now, fx);
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
                self.set_state(&agent, next, now, fx);
                self.maybe_close(&conversation, fx);
                Ok(())
            }
            Command::Tick => {
                self.tick(now, fx);
                Ok(())
            }
        }
    }

    pub(super) fn start(
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

    pub(super) fn accept(
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

    pub(super) fn transfer(
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
    pub(super) fn release_owner(&mut self, id: &ConversationId, owner: &AgentId, fx: &mut Fx) {
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
    pub(super) fn drop_guest(
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
    pub(super) fn withdraw_offer(
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
    pub(super) fn requeue_front(
        &mut self,
        id: &ConversationId,
        agent: &AgentId,
        _now: DateTime<Utc>,
    ) {
        if let Some(rt) = self.agents.get_mut(agent) {
            rt.offer = None;
        }
        if let Some(c) = self.conversations.get_mut(id) {
            c.place = Place::Queued;
            self.enqueue(id, true);
        }
    }

    pub(super) fn end(
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
        c.queue_key = 0;
        c.ended_at = Some(now);
        c.ended_by = Some(by.clone());
        to_conv(fx, id, ConversationEvent::Note(SystemNote::Ended { by }));
        self.maybe_close(id, fx);
        Ok(())
    }

    pub(super) fn maybe_close(&mut self, id: &ConversationId, fx: &mut Fx) {
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
        // It leaves the engine now, so announce cannot tell the visitor later.
        if c.announced != Some(VisitorStatus::Ended) {
            to_conv(fx, id, ConversationEvent::Status(VisitorStatus::Ended));
        }
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
            rating: None,
        })));
    }
}
