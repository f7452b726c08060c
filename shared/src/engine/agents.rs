//! Agent states (SPEC §2): requested states, state changes, session expiry
//! (signed out without dropping a customer).

use super::*;

impl Tenant {
    pub(super) fn requested(&self, s: RequestedState) -> Result<AgentState, EngineError> {
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

    pub(super) fn set_state(
        &mut self,
        agent: &AgentId,
        state: AgentState,
        now: DateTime<Utc>,
        fx: &mut Fx,
    ) {
        if let Some(rt) = self.agents.get_mut(agent) {
            if rt.state != state {
                if state == AgentState::Rona {
                    rt.ronas.bump(self.config.local_date(now));
                }
                rt.state = state.clone();
                rt.state_since = Some(now);
                to_agent(fx, agent, AgentEvent::State { state });
            }
        }
    }

    /// Signs out an agent whose session expired, without dropping any customer.
    pub(super) fn expire_session(&mut self, agent: &AgentId, now: DateTime<Utc>, fx: &mut Fx) {
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
        self.set_state(agent, AgentState::SignedOut, now, fx);
        if let Some(rt) = self.agents.get_mut(agent) {
            rt.session_expires = None;
        }
    }
}
