//! Routing: deadlines from the index (offer timeouts, conference timeouts,
//! maximum waits), offers to the longest-waiting free agent, and the announcements
//! (visitor statuses, access lists) for touched conversations only.

use super::*;

impl Tenant {
    pub(super) fn tick(&mut self, now: DateTime<Utc>, fx: &mut Fx) {
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
                    self.set_state(&agent, AgentState::Rona, now, fx);
                }
                Place::Active {
                    owner,
                    conference:
                        Some(Conference::Requested {
                            guest, deadline, ..
                        }),
                } if deadline <= now => {
                    self.drop_guest(&id, &owner, WithdrawReason::Expired, fx);
                    self.set_state(&guest, AgentState::Rona, now, fx);
                }
                Place::Queued if waited_out => {
                    let _ = self.end(now, &id, EndedBy::MaxWait, fx);
                }
                _ => {
                    // Not actually due (should not happen): stop rather than spin.
                    self.reindex(&id);
                    break;
                }
            }
            self.reindex(&id);
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

    /// Offers waiting conversations to free agents, queue by queue, front first.
    pub(super) fn route(&mut self, now: DateTime<Utc>, fx: &mut Fx) {
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
                    c.queue_key = 0;
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
    pub(super) fn announce(&mut self, fx: &mut Fx) {
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
}
