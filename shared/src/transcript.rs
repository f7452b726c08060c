//! One conversation's messages (SPEC §6).
//!
//! Rules:
//! - Every message gets the next per-conversation sequence number: 1, 2, 3…
//!   with no gaps, strictly increasing, never reused.
//! - A message written by a visitor or an agent carries a client-chosen id; a
//!   resend with the same id returns the stored message and adds nothing. The same
//!   id from a different author is refused.
//! - Text rules come from [`crate::text`]; system lines come from the engine's
//!   [`SystemNote`]s and are stored like any other message.
//! - A resend with a known client id but another text is refused
//!   ([`TranscriptError::ClientIdConflict`]): the first text stands.
//! - Visitors never see agents' login ids: they get [`Message::for_visitor`], where an
//!   agent is [`Author::Staff`] with the display name only.
//! - Once the "ended" note is stored, nobody can write any more.
//! - Resume: [`Transcript::after`] gives exactly the messages after a sequence number.
//! - Appending costs the same at any length: client ids are indexed and the
//!   "ended" state is kept, so nothing scans the messages.

use crate::engine::SystemNote;
use crate::ids::{AgentId, ClientMsgId};
use crate::text::{MessageText, TextError, Writer};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who wrote a message. Read through [`AuthorFields`] (see `engine::types` on why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "AuthorFields")]
pub enum Author {
    Customer {
        name: String,
    },
    Agent {
        id: AgentId,
        name: String,
    },
    /// An agent as visitors see them: the display name, no login id.
    Staff {
        name: String,
    },
    System,
}

#[derive(Deserialize)]
pub(crate) struct AuthorFields {
    pub(crate) kind: String,
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
}

impl TryFrom<AuthorFields> for Author {
    type Error = String;
    fn try_from(f: AuthorFields) -> Result<Self, String> {
        let name = || crate::need(f.name.clone(), "name");
        Ok(match f.kind.as_str() {
            "customer" => Author::Customer { name: name()? },
            "agent" => Author::Agent {
                id: AgentId::new(crate::need(f.id.clone(), "id")?)
                    .map_err(|e| format!("field `id`: {e}"))?,
                name: name()?,
            },
            "staff" => Author::Staff { name: name()? },
            "system" => Author::System,
            other => return Err(format!("unknown variant `{other}` of `kind`")),
        })
    }
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub seq: u64,
    #[serde(default)]
    pub client_id: Option<ClientMsgId>,
    pub author: Author,
    /// Plain text; for system lines an English fallback of `note`.
    pub text: String,
    #[serde(default)]
    pub note: Option<SystemNote>,
    #[serde(with = "crate::time::rfc3339")]
    pub at: DateTime<Utc>,
    /// A file sent with the message (its name is the text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<crate::attachment::Attachment>,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscriptError {
    #[error(transparent)]
    Text(#[from] TextError),
    #[error("client message id {0} was already used by someone else or for another text")]
    ClientIdConflict(ClientMsgId),
    #[error("the conversation has ended")]
    Ended,
}

impl Message {
    /// The message as a visitor may see it: agents by display name only.
    pub fn for_visitor(&self) -> Message {
        let mut m = self.clone();
        if let Author::Agent { name, .. } = &m.author {
            m.author = Author::Staff { name: name.clone() };
        }
        if let Some(SystemNote::Ended {
            by: crate::engine::EndedBy::Agent(_),
        }) = &m.note
        {
            m.note = Some(SystemNote::Ended {
                by: crate::engine::EndedBy::Staff,
            });
        }
        m
    }
}

impl TranscriptError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TranscriptError::Text(t) => t.code(),
            TranscriptError::ClientIdConflict(_) => "client_id_conflict",
            TranscriptError::Ended => "conversation_ended",
        }
    }
}

/// Result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now; persist and deliver it.
    New(Message),
    /// Already stored earlier under this client id; acknowledge again, deliver nothing.
    Duplicate(Message),
}

impl Appended {
    /// The stored message either way.
    pub fn message(&self) -> &Message {
        match self {
            Appended::New(m) | Appended::Duplicate(m) => m,
        }
    }
}

/// The messages of one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "StoredTranscript", into = "StoredTranscript")]
pub struct Transcript {
    messages: Vec<Message>,
    /// Position of each client id's message.
    by_client: BTreeMap<ClientMsgId, usize>,
    ended: bool,
}

/// The stored form: the messages alone.
#[derive(Serialize, Deserialize)]
struct StoredTranscript {
    messages: Vec<Message>,
}

impl From<StoredTranscript> for Transcript {
    fn from(s: StoredTranscript) -> Self {
        let mut t = Transcript::default();
        for m in s.messages {
            t.push(m);
        }
        t
    }
}
impl From<Transcript> for StoredTranscript {
    fn from(t: Transcript) -> Self {
        StoredTranscript {
            messages: t.messages,
        }
    }
}

impl Transcript {
    /// Rebuilds from stored messages; refuses gaps or disorder.
    pub fn from_messages(messages: Vec<Message>) -> Result<Self, String> {
        for (i, m) in messages.iter().enumerate() {
            if m.seq != i as u64 + 1 {
                return Err(format!(
                    "stored message {} has sequence number {}",
                    i + 1,
                    m.seq
                ));
            }
        }
        Ok(StoredTranscript { messages }.into())
    }

    fn push(&mut self, m: Message) {
        if let Some(c) = &m.client_id {
            self.by_client.insert(c.clone(), self.messages.len());
        }
        if matches!(m.note, Some(SystemNote::Ended { .. })) {
            self.ended = true;
        }
        self.messages.push(m);
    }
    /// All messages.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }
    /// The highest sequence number (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.messages.len() as u64
    }
    /// Messages with a sequence number above `seq`, in order.
    pub fn after(&self, seq: u64) -> &[Message] {
        let start = usize::try_from(seq)
            .unwrap_or(usize::MAX)
            .min(self.messages.len());
        &self.messages[start..]
    }
    /// Whether the conversation has ended.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// A visitor's message.
    pub fn append_customer(
        &mut self,
        name: &str,
        client_id: ClientMsgId,
        raw: &str,
        now: DateTime<Utc>,
    ) -> Result<Appended, TranscriptError> {
        self.append_written(
            Author::Customer {
                name: name.to_owned(),
            },
            Writer::Visitor,
            client_id,
            raw,
            now,
        )
    }

    /// An agent's message.
    pub fn append_agent(
        &mut self,
        id: AgentId,
        name: &str,
        client_id: ClientMsgId,
        raw: &str,
        now: DateTime<Utc>,
    ) -> Result<Appended, TranscriptError> {
        self.append_written(
            Author::Agent {
                id,
                name: name.to_owned(),
            },
            Writer::Agent,
            client_id,
            raw,
            now,
        )
    }

    fn append_written(
        &mut self,
        author: Author,
        writer: Writer,
        client_id: ClientMsgId,
        raw: &str,
        now: DateTime<Utc>,
    ) -> Result<Appended, TranscriptError> {
        if let Some(m) = self
            .by_client
            .get(&client_id)
            .and_then(|i| self.messages.get(*i))
        {
            let same_author = match (&m.author, &author) {
                (Author::Customer { .. }, Author::Customer { .. }) => true,
                (Author::Agent { id: a, .. }, Author::Agent { id: b, .. }) => a == b,
                _ => false,
            };
            let same_text = MessageText::new(raw, writer).is_ok_and(|t| t.as_str() == m.text);
            let same = same_author && same_text;
            return if same {
                Ok(Appended::Duplicate(m.clone()))
            } else {
                Err(TranscriptError::ClientIdConflict(client_id))
            };
        }
        if self.is_ended() {
            return Err(TranscriptError::Ended);
        }
        let text = MessageText::new(raw, writer)?;
        let m = Message {
            seq: self.last_seq() + 1,
            client_id: Some(client_id),
            author,
            text: text.as_str().to_owned(),
            note: None,
            at: now,
            attachment: None,
        };
        self.push(m.clone());
        Ok(Appended::New(m))
    }

    /// A message that carries a checked attachment (its name is the text); a client
    /// id seen before gives the stored message if it carried the same file name.
    pub fn append_attachment(
        &mut self,
        author: Author,
        client_id: ClientMsgId,
        attachment: crate::attachment::Attachment,
        now: DateTime<Utc>,
    ) -> Result<Appended, TranscriptError> {
        if let Some(m) = self.find_client(&client_id) {
            return if m
                .attachment
                .as_ref()
                .is_some_and(|a| a.name == attachment.name)
            {
                Ok(Appended::Duplicate(m.clone()))
            } else {
                Err(TranscriptError::ClientIdConflict(client_id))
            };
        }
        if self.is_ended() {
            return Err(TranscriptError::Ended);
        }
        let m = Message {
            seq: self.last_seq() + 1,
            client_id: Some(client_id),
            author,
            text: attachment.name.clone(),
            note: None,
            at: now,
            attachment: Some(attachment),
        };
        self.push(m.clone());
        Ok(Appended::New(m))
    }

    /// The message sent with `client_id`, if any.
    pub fn find_client(&self, client_id: &ClientMsgId) -> Option<&Message> {
        self.by_client
            .get(client_id)
            .and_then(|i| self.messages.get(*i))
    }

    /// A system line.
    pub fn append_note(&mut self, note: SystemNote, now: DateTime<Utc>) -> Message {
        let m = Message {
            seq: self.last_seq() + 1,
            client_id: None,
            author: Author::System,
            text: note.text_en(),
            note: Some(note),
            at: now,
            attachment: None,
        };
        self.push(m.clone());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EndedBy;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap()
    }
    fn cid(s: &str) -> ClientMsgId {
        ClientMsgId::new(s).unwrap()
    }

    #[test]
    fn resend_is_stored_once() {
        let mut t = Transcript::default();
        let a = t.append_customer("Eva", cid("c1"), "hello", t0()).unwrap();
        let b = t.append_customer("Eva", cid("c1"), "hello", t0()).unwrap();
        assert!(matches!(a, Appended::New(_)));
        assert_eq!(b, Appended::Duplicate(a.message().clone()));
        assert_eq!(t.last_seq(), 1);
    }

    #[test]
    fn conflicting_client_id_refused() {
        let mut t = Transcript::default();
        t.append_customer("Eva", cid("c1"), "hello", t0()).unwrap();
        let e = t
            .append_agent(AgentId::new("anna").unwrap(), "Anna", cid("c1"), "hi", t0())
            .unwrap_err();
        assert_eq!(e, TranscriptError::ClientIdConflict(cid("c1")));
    }

    #[test]
    fn agent_rules_apply_and_change_nothing() {
        let mut t = Transcript::default();
        let e = t
            .append_agent(
                AgentId::new("anna").unwrap(),
                "Anna",
                cid("a1"),
                "<b>",
                t0(),
            )
            .unwrap_err();
        assert_eq!(e.code(), "message_reserved_chars");
        assert_eq!(t.last_seq(), 0);
    }

    #[test]
    fn nothing_after_end() {
        let mut t = Transcript::default();
        t.append_note(
            SystemNote::Ended {
                by: EndedBy::Customer,
            },
            t0(),
        );
        assert_eq!(
            t.append_customer("Eva", cid("c2"), "x", t0()).unwrap_err(),
            TranscriptError::Ended
        );
    }

    #[test]
    fn rebuild_refuses_gaps() {
        let mut t = Transcript::default();
        t.append_customer("Eva", cid("c1"), "a", t0()).unwrap();
        t.append_customer("Eva", cid("c2"), "b", t0()).unwrap();
        let mut ms = t.messages().to_vec();
        assert!(Transcript::from_messages(ms.clone()).is_ok());
        ms.remove(0);
        assert!(Transcript::from_messages(ms).is_err());
    }

    proptest! {
        /// Random appends and resends: sequence numbers are 1..=n without gaps, each
        /// client id appears once, and `after(k)` is exactly the tail.
        #[test]
        fn sequence_and_dedup(ops in proptest::collection::vec((0u8..12, "[a-z <>]{0,8}"), 1..60), k in 0u64..70) {
            let mut t = Transcript::default();
            for (id, text) in ops {
                let before = t.clone();
                let r = t.append_customer("Eva", cid(&format!("c{id}")), &text, t0());
                if r.is_err() { prop_assert_eq!(&t, &before); }
            }
            for (i, m) in t.messages().iter().enumerate() {
                prop_assert_eq!(m.seq, i as u64 + 1);
            }
            let mut ids: Vec<_> = t.messages().iter().filter_map(|m| m.client_id.clone()).collect();
            let n = ids.len();
            ids.sort();
            ids.dedup();
            prop_assert_eq!(ids.len(), n);
            let tail = t.after(k);
            prop_assert!(tail.iter().all(|m| m.seq > k));
            prop_assert_eq!(tail.len() as u64, t.last_seq().saturating_sub(k));
        }
    }
}
