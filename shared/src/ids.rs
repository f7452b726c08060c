//! Validated identifiers.
//!
//! Rules: every id is 1 to 64 characters from `A-Z a-z 0-9 _ -`. An id that
//! breaks this is refused at the edge of the system with an error naming the
//! kind of id, so no malformed id ever reaches the engine or storage. Ids are
//! newtypes so a queue id cannot be passed where an agent id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {problem}")]
pub struct IdError {
    /// Which kind of id (e.g. "agent id").
    pub kind: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// Longest id accepted.
pub const MAX_ID_LEN: usize = 64;

fn check(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError {
            kind,
            problem: "it is empty".into(),
        });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError {
            kind,
            problem: format!("it is longer than {MAX_ID_LEN} characters"),
        });
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(IdError {
            kind,
            // Shown as 'c' when printable, else as its code point (no `{:?}`: the
            // widget's size build prints no `Debug`).
            problem: format!(
                "character {} is not allowed (use A-Z, a-z, 0-9, _ and -)",
                if c == ' ' || c.is_ascii_graphic() {
                    format!("'{c}'")
                } else {
                    format!("U+{:04X}", u32::from(c))
                }
            ),
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, $kind:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an id.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check($kind, &s)?;
                Ok(Self(s))
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
    };
}

id_type!(/// A tenant (one customer of Switchboard).
    TenantId, "tenant id");
id_type!(/// A website's public key, as in `data-site="…"`.
    SiteKey, "site key");
id_type!(/// A conversation; chosen by the edge, unguessable by itself is not required (the visitor token is).
    ConversationId, "conversation id");
id_type!(/// An agent.
    AgentId, "agent id");
id_type!(/// A queue.
    QueueId, "queue id");
id_type!(/// An idle reason or a wrap-up reason.
    ReasonId, "reason id");
id_type!(/// A message template.
    TemplateId, "template id");
id_type!(/// A client-chosen message id: a resend with the same id is stored once.
    ClientMsgId, "client message id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_ids() {
        assert_eq!(AgentId::new("anna-1_x").unwrap().as_str(), "anna-1_x");
    }

    #[test]
    fn refuses_bad_ids_with_named_problem() {
        let e = AgentId::new("").unwrap_err();
        assert_eq!(e.to_string(), "invalid agent id: it is empty");
        let e = QueueId::new("a b").unwrap_err();
        assert!(e.to_string().contains("invalid queue id"), "{e}");
        assert!(e.to_string().contains("' '"), "{e}");
        assert!(ClientMsgId::new("x".repeat(65)).is_err());
        assert!(ClientMsgId::new("x".repeat(64)).is_ok());
    }

    #[test]
    fn serde_validates() {
        let r: Result<AgentId, _> = serde_json::from_str("\"<script>\"");
        assert!(r.is_err());
        let ok: AgentId = serde_json::from_str("\"anna\"").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"anna\"");
    }
}
