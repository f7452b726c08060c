//! Structural invariants, checked by tests after every step: places, queues,
//! offers, capacity, wrap-ups, and the derived state (queues, deadline index)
//! rebuilt from the stored rows.

use super::*;

impl Tenant {
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
