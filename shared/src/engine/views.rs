//! What the engine shows: availability, permissions, console views (summaries,
//! offers, snapshots), visitor statuses and access lists. Nothing here changes state.

use super::*;

impl Tenant {
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

    pub(super) fn signed_in(&self, a: &AgentId) -> Result<&AgentRuntime, EngineError> {
        let rt = self
            .agents
            .get(a)
            .ok_or_else(|| EngineError::UnknownAgent(a.clone()))?;
        if !rt.state.is_signed_in() {
            return Err(EngineError::NotSignedIn(a.clone()));
        }
        Ok(rt)
    }

    pub(super) fn conv(&self, c: &ConversationId) -> Result<&Conversation, EngineError> {
        self.conversations
            .get(c)
            .ok_or_else(|| EngineError::UnknownConversation(c.clone()))
    }

    pub(super) fn owned_active(
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
    ) -> Result<(String, Vec<String>), EngineError> {
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
        Ok(tpl.render_reporting(&ctx))
    }

    /// The customer of a conversation `agent` may read (for its earlier conversations).
    pub fn customer_for(
        &self,
        agent: &AgentId,
        c: &ConversationId,
    ) -> Result<&Customer, EngineError> {
        self.can_read(agent, c)?;
        Ok(&self.conv(c)?.customer)
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
    pub(super) fn is_free(&self, a: &AgentId) -> bool {
        self.agents.get(a).is_some_and(|rt| {
            rt.state == AgentState::Available && rt.offer.is_none() && rt.load() < self.capacity(a)
        })
    }

    /// Free, and not owing a wrap-up for `c` (an agent who transferred a chat away is not offered it back before wrapping up).
    pub(super) fn is_free_for(&self, a: &AgentId, c: &ConversationId) -> bool {
        self.is_free(a)
            && self
                .agents
                .get(a)
                .is_some_and(|rt| !rt.wrap_ups.contains(c))
    }

    pub(super) fn summary(&self, conv: &Conversation, agent: &AgentId) -> ChatSummary {
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

    pub(super) fn offer_view(&self, conv: &Conversation, agent: &AgentId) -> Option<Offer> {
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
            role: cfg.role,
        })
    }

    /// The status the visitor of `c` should see.
    pub fn visitor_status(&self, c: &ConversationId) -> Option<VisitorStatus> {
        let conv = self.conversations.get(c)?;
        Some(self.status_of(conv))
    }

    pub(super) fn status_of(&self, conv: &Conversation) -> VisitorStatus {
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

    /// Who may be on the conversation's socket now.
    /// Conversations whose socket `agent` may open now (a revocation tells them).
    pub fn conversations_of(&self, agent: &AgentId) -> Vec<ConversationId> {
        self.conversations
            .iter()
            .filter(|(_, c)| c.announced_access.iter().any(|p| &p.agent == agent))
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub(super) fn access_of(&self, c: &Conversation) -> Vec<Participant> {
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
}
