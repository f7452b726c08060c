//! Agent states (SPEC §2).
//!
//! Rules:
//! - Signed out → (sign-in) → Idle. Idle carries a reason (Break, Lunch…) or none right after sign-in.
//! - Only Available agents below their chat capacity receive offers.
//! - RONA is entered only when an offer to the agent expires, and left **only**
//!   by the agent's own action (to Available or Idle).
//! - A sign-in lasts [`SESSION_SECS`]; when it expires the agent is signed out by the
//!   engine: a pending offer is withdrawn, chats they own go back to the front of their
//!   queue, conference seats are given up, and owed wrap-ups are dropped.
//! - The transitions themselves are enforced by [`crate::engine::Tenant`].

use crate::ids::ReasonId;

/// How long a sign-in lasts, in seconds (the edge's session tokens expire with it).
pub const SESSION_SECS: i64 = 12 * 3600;
use serde::{Deserialize, Serialize};

/// An agent's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentState {
    /// Not signed in; not routable.
    SignedOut,
    /// Signed in, not routable; `reason` is None right after sign-in.
    Idle {
        /// The idle reason picked.
        reason: Option<ReasonId>,
    },
    /// Routable while below capacity.
    Available,
    /// Redirection on no answer: an offer expired. Not routable.
    Rona,
}

impl AgentState {
    /// True when signed in (any state but SignedOut).
    pub fn is_signed_in(&self) -> bool {
        !matches!(self, AgentState::SignedOut)
    }
}

/// A state an agent may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RequestedState {
    /// Ready for chats.
    Available,
    /// Not ready, with a configured idle reason.
    Idle {
        /// Must be one of the tenant's idle reasons.
        reason: ReasonId,
    },
}
