//! The visitor widget's JSON: the frames and bodies it reads and writes, without a
//! JSON library in its wasm.
//!
//! serde's code is generic over every format and every type, and even miniserde's
//! parser and derives were a seventh of the widget's wasm. A browser parses JSON
//! anyway: the widget hands texts to `JSON.parse` and walks the result through the
//! small [`Json`] trait (`web::json`), and writes its few flat objects with
//! [`Object`]. Tests walk serde_json's values through the same readers.
//!
//! Rules:
//! - The JSON is exactly the serde forms of [`crate::protocol`]: what the service
//!   writes with serde reads back equal here, and what is written here the service's
//!   strict decoders ([`crate::protocol::decode`], [`crate::protocol::decode_body`])
//!   accept (tested below, for every variant).
//! - Tagged enums are read through their flat `…Fields` forms and the same `TryFrom`
//!   as serde's, so both readers apply one set of checks (ids, variants, fields).
//! - Reading ignores fields this build does not know, takes `null` as absent (as serde
//!   does for `Option`), checks the protocol version like
//!   [`crate::protocol::decode_from_service`], and names the field that does not read.
//! - Numbers are whole, not negative and at most 2^53 (what a browser's number holds
//!   exactly), then within their field's type.
//! - The service itself never uses this module.

use crate::attachment::Attachment;
use crate::engine::{AvailabilityFields, EndedByFields, SystemNoteFields, VisitorStatusFields};
use crate::ids::{ClientMsgId, ConversationId, SiteKey};
use crate::need;
use crate::protocol::{
    FrameError, LeaveMessageRequest, SiteInfo, StartRequest, StartResponse, TeamFace, VisitorEvent,
    VisitorFrame, VERSION,
};
use crate::transcript::{AuthorFields, Message};

/// A parsed JSON value, walked by the readers here: the browser's `JSON.parse` result
/// in the widget (`web::json::Value`), serde_json's in tests.
pub trait Json: Sized {
    /// Parses a text; `None` if it is not JSON.
    fn parse(text: &str) -> Option<Self>;
    /// The value of `key` if this is an object with that key, not `null`.
    fn get(&self, key: &str) -> Option<Self>;
    /// This value if it is a string.
    fn as_text(&self) -> Option<String>;
    /// This value if it is a number.
    fn as_number(&self) -> Option<f64>;
    /// This value if it is `true` or `false`.
    fn as_bool(&self) -> Option<bool>;
    /// The items if this is an array.
    fn as_items(&self) -> Option<Vec<Self>>;
}

/// serde_json's values, walked as the browser's are: for tests and tools. The readers
/// never recurse deeper than the shapes they read, whatever the value's depth.
impl Json for serde_json::Value {
    fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
    fn get(&self, key: &str) -> Option<Self> {
        self.get(key).filter(|v| !v.is_null()).cloned()
    }
    fn as_text(&self) -> Option<String> {
        self.as_str().map(str::to_owned)
    }
    fn as_number(&self) -> Option<f64> {
        self.as_f64()
    }
    fn as_bool(&self) -> Option<bool> {
        self.as_bool()
    }
    fn as_items(&self) -> Option<Vec<Self>> {
        self.as_array().cloned()
    }
}

/// The largest whole number a JSON number holds exactly in a browser.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// Field `key` of `v` read by `read`, `None` if absent; an error names the field.
fn opt<J: Json, T>(
    v: &J,
    key: &str,
    what: &str,
    read: impl FnOnce(&J) -> Option<T>,
) -> Result<Option<T>, String> {
    match v.get(key) {
        None => Ok(None),
        Some(x) => read(&x)
            .map(Some)
            .ok_or_else(|| format!("field `{key}`: not {what}")),
    }
}

/// Text field `key`, if present.
pub fn opt_text<J: Json>(v: &J, key: &str) -> Result<Option<String>, String> {
    opt(v, key, "a text", J::as_text)
}

/// Text field `key`.
pub fn text<J: Json>(v: &J, key: &str) -> Result<String, String> {
    need(opt_text(v, key)?, key)
}

/// Whole-number field `key` that fits `T`, if present.
fn opt_number<J: Json, T: TryFrom<u64>>(v: &J, key: &str) -> Result<Option<T>, String> {
    opt(v, key, "a whole number in range", |x| {
        let n = x.as_number()?;
        let whole = (0.0..=MAX_EXACT).contains(&n) && n.fract() == 0.0;
        whole.then(|| T::try_from(n as u64).ok()).flatten()
    })
}

/// Whole-number field `key` that fits `T`.
fn number<J: Json, T: TryFrom<u64>>(v: &J, key: &str) -> Result<T, String> {
    need(opt_number(v, key)?, key)
}

/// Object field `key`, read by `read`, if present.
fn opt_object<J: Json, T>(
    v: &J,
    key: &str,
    read: impl FnOnce(&J) -> Result<T, String>,
) -> Result<Option<T>, String> {
    v.get(key)
        .map(|x| read(&x).map_err(|e| format!("field `{key}`: {e}")))
        .transpose()
}

/// The items of the array `v` (named `key` in errors), each read by `read`.
pub fn items<J: Json, T>(
    v: &J,
    key: &str,
    mut read: impl FnMut(&J) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let list = v
        .as_items()
        .ok_or_else(|| format!("field `{key}`: not a list"))?;
    list.iter().map(&mut read).collect()
}

fn ended_by<J: Json>(v: &J) -> Result<EndedByFields, String> {
    Ok(EndedByFields {
        by: text(v, "by")?,
        agent: opt_text(v, "agent")?,
    })
}

fn note<J: Json>(v: &J) -> Result<SystemNoteFields, String> {
    Ok(SystemNoteFields {
        note: text(v, "note")?,
        queue_name: opt_text(v, "queue_name")?,
        agent_name: opt_text(v, "agent_name")?,
        by: opt_object(v, "by", ended_by)?,
    })
}

fn status<J: Json>(v: &J) -> Result<crate::engine::VisitorStatus, String> {
    VisitorStatusFields {
        status: text(v, "status")?,
        position: opt_number(v, "position")?,
        agent_name: opt_text(v, "agent_name")?,
        guest_name: opt_text(v, "guest_name")?,
    }
    .try_into()
}

fn attachment<J: Json>(v: &J) -> Result<Attachment, String> {
    Ok(Attachment {
        id: text(v, "id")?,
        name: text(v, "name")?,
        content_type: text(v, "content_type")?,
        size: number(v, "size")?,
    })
}

fn message<J: Json>(v: &J) -> Result<Message, String> {
    let seq = number(v, "seq")?;
    let author = v.get("author").ok_or("missing field `author`")?;
    let at = text(v, "at")?;
    Ok(Message {
        seq,
        client_id: opt_text(v, "client_id")?
            .map(ClientMsgId::new)
            .transpose()
            .map_err(|e| format!("field `client_id`: {e}"))?,
        author: AuthorFields {
            kind: text(&author, "kind")?,
            id: opt_text(&author, "id")?,
            name: opt_text(&author, "name")?,
        }
        .try_into()?,
        text: text(v, "text")?,
        note: opt_object(v, "note", note)?
            .map(TryInto::try_into)
            .transpose()?,
        at: crate::time::parse(&at)
            .ok_or_else(|| format!("field `at`: \"{at}\" is not an RFC 3339 time"))?,
        attachment: opt_object(v, "attachment", attachment)?,
    })
}

/// Reads a frame of the conversation socket.
pub fn visitor_event<J: Json>(frame: &str) -> Result<VisitorEvent, FrameError> {
    let not_a_frame = || FrameError("not a JSON frame with a `type`".into());
    let v = J::parse(frame).ok_or_else(not_a_frame)?;
    let kind = v
        .get("type")
        .and_then(|t| t.as_text())
        .ok_or_else(not_a_frame)?;
    match opt_number::<J, u64>(&v, "v").map_err(FrameError)? {
        Some(VERSION) => {}
        Some(other) => {
            return Err(FrameError(format!(
                "field `v`: unsupported protocol version {other}; this client speaks {VERSION}"
            )))
        }
        None => return Err(FrameError("field `v`: missing protocol version".into())),
    }
    event(&kind, &v).map_err(FrameError)
}

fn event<J: Json>(kind: &str, v: &J) -> Result<VisitorEvent, String> {
    let need_status = || status(&v.get("status").ok_or("missing field `status`")?);
    Ok(match kind {
        "error" => VisitorEvent::Error {
            code: text(v, "code")?,
            message: text(v, "message")?,
        },
        "welcome" => VisitorEvent::Welcome {
            conversation: ConversationId::new(text(v, "conversation")?)
                .map_err(|e| format!("field `conversation`: {e}"))?,
            status: need_status()?,
            last_seq: number(v, "last_seq")?,
        },
        "message" => VisitorEvent::Message {
            message: need(opt_object(v, "message", message)?, "message")?,
        },
        "status" => VisitorEvent::Status {
            status: need_status()?,
        },
        "typing" => VisitorEvent::Typing {
            typing: need(opt(v, "typing", "true or false", J::as_bool)?, "typing")?,
            name: text(v, "name")?,
        },
        "ack" => VisitorEvent::Ack {
            client_id: ClientMsgId::new(text(v, "client_id")?)
                .map_err(|e| format!("field `client_id`: {e}"))?,
            seq: number(v, "seq")?,
            message: opt_object(v, "message", message)?,
        },
        "rated" => VisitorEvent::Rated {
            score: number(v, "score")?,
        },
        "pong" => VisitorEvent::Pong,
        other => return Err(format!("unknown frame type `{other}`")),
    })
}

/// A flat JSON object written field by field, in order, for the few bodies and
/// frames the widget sends and keeps. Texts are escaped as JSON requires (quote,
/// backslash, control characters); everything else is written as it is.
pub struct Object(String);

impl Default for Object {
    fn default() -> Self {
        Self::new()
    }
}

impl Object {
    pub fn new() -> Self {
        Object(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        push_text(&mut self.0, key);
        self.0.push(':');
    }

    /// Adds a text field.
    pub fn text(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_text(&mut self.0, value);
        self
    }

    /// Adds a text field, or `null`.
    pub fn opt_text(mut self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => return self.text(key, v),
            None => {
                self.key(key);
                self.0.push_str("null");
            }
        }
        self
    }

    /// Adds a whole-number field.
    pub fn number(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        self.0.push_str(&value.to_string());
        self
    }

    /// Adds a `true` or `false` field.
    pub fn boolean(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.0.push_str(if value { "true" } else { "false" });
        self
    }

    /// The object's text.
    pub fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// A JSON array of already written values.
pub fn array(values: impl IntoIterator<Item = String>) -> String {
    let mut out = String::from("[");
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&v);
    }
    out.push(']');
    out
}

/// Writes `s` as a JSON string.
fn push_text(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let n = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[n >> 4]));
                out.push(char::from(HEX[n & 15]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A frame object with its version and type.
fn frame(kind: &str) -> Object {
    Object::new().number("v", VERSION).text("type", kind)
}

/// Writes a frame for the conversation socket (version included). The edge refuses
/// fields a frame type does not have, so each type writes only its own.
pub fn visitor_frame(f: &VisitorFrame) -> String {
    match f {
        VisitorFrame::Send { client_id, text } => frame("send")
            .text("client_id", client_id.as_str())
            .text("text", text),
        VisitorFrame::Rate { score, comment } => frame("rate")
            .number("score", u64::from(*score))
            .opt_text("comment", comment.as_deref()),
        VisitorFrame::Typing { typing } => frame("typing").boolean("typing", *typing),
        VisitorFrame::End => frame("end"),
        VisitorFrame::Ping => frame("ping"),
        VisitorFrame::Page {
            url,
            title,
            time_zone,
        } => frame("page")
            .text("url", url)
            .text("title", title)
            .text("time_zone", time_zone),
    }
    .end()
}

/// Reads `GET /api/v1/sites/{key}` (also carried in the widget's document).
pub fn site_info<J: Json>(body: &str) -> Result<SiteInfo, FrameError> {
    let v = J::parse(body).ok_or_else(|| FrameError("not a site's information".into()))?;
    read_site(&v).map_err(|e| FrameError(format!("a site's information: {e}")))
}

fn read_site<J: Json>(v: &J) -> Result<SiteInfo, String> {
    Ok(SiteInfo {
        site: SiteKey::new(text(v, "site")?).map_err(|e| format!("field `site`: {e}"))?,
        name: text(v, "name")?,
        language: text(v, "language")?,
        availability: need(
            opt_object(v, "availability", |a| {
                AvailabilityFields {
                    availability: text(a, "availability")?,
                    queue_name: text(a, "queue_name")?,
                }
                .try_into()
            })?,
            "availability",
        )?,
        accent: opt_text(v, "accent")?,
        typical_reply_mins: opt_number(v, "typical_reply_mins")?,
        team: match v.get("team") {
            None => Vec::new(),
            Some(team) => items(&team, "team", |t| {
                Ok(TeamFace {
                    initials: text(t, "initials")?,
                    picture: opt_text(t, "picture")?,
                })
            })?,
        },
    })
}

/// Reads the answer to `POST /api/v1/conversations`.
pub fn start_response<J: Json>(body: &str) -> Result<StartResponse, FrameError> {
    let read = || -> Result<StartResponse, String> {
        let v = J::parse(body).ok_or("not JSON")?;
        Ok(StartResponse {
            conversation: ConversationId::new(text(&v, "conversation")?)
                .map_err(|e| format!("field `conversation`: {e}"))?,
            token: text(&v, "token")?,
            status: status(&v.get("status").ok_or("missing field `status`")?)?,
        })
    };
    read().map_err(|e| FrameError(format!("not the answer to starting a chat: {e}")))
}

/// The `message` of an error body ([`crate::protocol::ErrorBody`]), if it is one.
pub fn error_message<J: Json>(body: &str) -> Option<String> {
    let v = J::parse(body)?;
    text(&v, "error").ok()?;
    text(&v, "message").ok()
}

/// Writes `POST /api/v1/conversations`.
pub fn start_request(r: &StartRequest) -> String {
    Object::new()
        .text("site", r.site.as_str())
        .text("name", &r.name)
        .opt_text("email", r.email.as_deref())
        .text("text", &r.text)
        .text("client_id", r.client_id.as_str())
        .opt_text("user_id", r.user_id.as_deref())
        .opt_text("user_hash", r.user_hash.as_deref())
        .end()
}

/// Writes `POST /api/v1/messages`.
pub fn leave_message_request(r: &LeaveMessageRequest) -> String {
    Object::new()
        .text("site", r.site.as_str())
        .text("name", &r.name)
        .opt_text("email", r.email.as_deref())
        .text("text", &r.text)
        .end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Availability, EndedBy, SystemNote, VisitorStatus};
    use crate::ids::AgentId;
    use crate::protocol::{decode, decode_body, encode, ErrorBody};
    use crate::transcript::Author;
    use chrono::DateTime;
    use proptest::prelude::*;
    use serde_json::Value;

    fn visitor_event(text: &str) -> Result<VisitorEvent, FrameError> {
        super::visitor_event::<Value>(text)
    }
    fn site_info(text: &str) -> Result<SiteInfo, FrameError> {
        super::site_info::<Value>(text)
    }
    fn start_response(text: &str) -> Result<StartResponse, FrameError> {
        super::start_response::<Value>(text)
    }
    fn error_message(text: &str) -> Option<String> {
        super::error_message::<Value>(text)
    }

    fn statuses() -> Vec<VisitorStatus> {
        vec![
            VisitorStatus::Queued { position: 3 },
            VisitorStatus::Connecting,
            VisitorStatus::Active {
                agent_name: "Anna".into(),
                guest_name: Some("Ben".into()),
            },
            VisitorStatus::Active {
                agent_name: "Anna".into(),
                guest_name: None,
            },
            VisitorStatus::Ended,
        ]
    }

    fn messages() -> Vec<Message> {
        let a = AgentId::new("anna").unwrap();
        let notes = [
            None,
            Some(SystemNote::Queued {
                queue_name: "Sales".into(),
            }),
            Some(SystemNote::Joined {
                agent_name: "Anna".into(),
            }),
            Some(SystemNote::Left {
                agent_name: "Anna".into(),
            }),
            Some(SystemNote::Transferring),
            Some(SystemNote::Ended {
                by: EndedBy::Agent(a.clone()),
            }),
            Some(SystemNote::Ended {
                by: EndedBy::Customer,
            }),
            Some(SystemNote::Ended {
                by: EndedBy::Inactivity,
            }),
            Some(SystemNote::Ended {
                by: EndedBy::MaxWait,
            }),
            Some(SystemNote::Ended { by: EndedBy::Staff }),
        ];
        let authors = [
            Author::Customer {
                name: "Cleo \u{202e}exe.txt".into(),
            },
            Author::Agent {
                id: a,
                name: "Anna".into(),
            },
            Author::Staff {
                name: "Anna".into(),
            },
            Author::System,
        ];
        let mut out = vec![];
        for (i, note) in notes.into_iter().enumerate() {
            for (j, author) in authors.iter().enumerate() {
                out.push(Message {
                    seq: (i * 10 + j) as u64,
                    client_id: (j == 0).then(|| ClientMsgId::new(format!("w{i}")).unwrap()),
                    author: author.clone(),
                    text: "hi \"there\"\n\\ 😀".into(),
                    note: note.clone(),
                    at: DateTime::from_timestamp_millis(1_764_000_000_123 + i as i64).unwrap(),
                    attachment: (j == 1).then(|| Attachment {
                        id: "f1".into(),
                        name: "plan.pdf".into(),
                        content_type: "application/pdf".into(),
                        size: 10_485_760,
                    }),
                });
            }
        }
        out
    }

    /// Every frame the service sends, written by serde, reads back equal.
    #[test]
    fn reads_every_frame_the_service_writes() {
        let mut events = vec![
            VisitorEvent::Typing {
                typing: true,
                name: "Anna".into(),
            },
            VisitorEvent::Typing {
                typing: false,
                name: "Anna".into(),
            },
            VisitorEvent::Error {
                code: "message_too_long".into(),
                message: "the text is too long".into(),
            },
            VisitorEvent::Rated { score: 5 },
            VisitorEvent::Pong,
            VisitorEvent::Ack {
                client_id: ClientMsgId::new("w1").unwrap(),
                seq: 4,
                message: None,
            },
        ];
        for status in statuses() {
            events.push(VisitorEvent::Status {
                status: status.clone(),
            });
            events.push(VisitorEvent::Welcome {
                conversation: ConversationId::new("c1").unwrap(),
                status,
                last_seq: 9,
            });
        }
        for m in messages() {
            events.push(VisitorEvent::Message { message: m.clone() });
            events.push(VisitorEvent::Ack {
                client_id: ClientMsgId::new("w2").unwrap(),
                seq: m.seq,
                message: Some(m),
            });
        }
        for ev in events {
            let text = encode(&ev);
            assert_eq!(visitor_event(&text), Ok(ev), "{text}");
        }
    }

    /// The version and the fields are checked as the serde reader checks them.
    #[test]
    fn refuses_other_versions_and_bad_frames_by_name() {
        assert_eq!(
            visitor_event(r#"{"v":1,"type":"pong","later":true}"#),
            Ok(VisitorEvent::Pong)
        );
        let err = |s: &str| visitor_event(s).unwrap_err().0;
        assert!(err(r#"{"v":2,"type":"pong"}"#).contains("unsupported protocol version 2"));
        assert!(err(r#"{"type":"pong"}"#).contains("missing protocol version"));
        assert!(err("3").contains("not a JSON frame"));
        assert!(err(r#"{"v":1,"type":"nope"}"#).contains("unknown frame type `nope`"));
        assert!(err(r#"{"v":1,"type":"status"}"#).contains("missing field `status`"));
        assert!(
            err(r#"{"v":1,"type":"status","status":{"status":"queued"}}"#)
                .contains("missing field `position`")
        );
        assert!(err(r#"{"v":1,"type":"welcome","conversation":"a b","status":{"status":"ended"},"last_seq":0}"#)
            .contains("field `conversation`"));
        assert!(err(r#"{"v":1,"type":"error","code":"x","message":{}}"#)
            .contains("field `message`: not a text"));
        assert!(err(r#"{"v":1,"type":"ack","client_id":"w1","seq":-1}"#)
            .contains("field `seq`: not a whole number"));
        assert!(err(r#"{"v":1,"type":"rated","score":256}"#)
            .contains("field `score`: not a whole number in range"));
        assert!(err(r#"{"v":1,"type":"typing","typing":1,"name":"A"}"#)
            .contains("field `typing`: not true or false"));
        assert!(err(r#"{"v":1,"type":"error","code":"x"}"#).contains("missing field `message`"));
        let m = r#"{"seq":1,"author":{"kind":"system"},"text":"x","at":"yesterday"}"#;
        assert!(err(&format!(r#"{{"v":1,"type":"message","message":{m}}}"#))
            .contains("not an RFC 3339 time"));
        assert!(err(r#"{"v":1,"type":"message","message":"hi"}"#)
            .contains("field `message`: missing field `seq`"));
        assert!(
            err(r#"{"v":1,"type":"message","message":null}"#).contains("missing field `message`")
        );
    }

    /// What the widget writes, the service's strict decoders take, equal.
    #[test]
    fn the_service_takes_every_frame_written_here() {
        for f in [
            VisitorFrame::Send {
                client_id: ClientMsgId::new("w1").unwrap(),
                text: "hi \"there\"\n😀".into(),
            },
            VisitorFrame::Rate {
                score: 4,
                comment: Some("quick".into()),
            },
            VisitorFrame::Rate {
                score: 1,
                comment: None,
            },
            VisitorFrame::Typing { typing: true },
            VisitorFrame::Typing { typing: false },
            VisitorFrame::End,
            VisitorFrame::Ping,
            VisitorFrame::Page {
                url: "https://shop.example/a?b=c".into(),
                title: "Shop".into(),
                time_zone: "Europe/Berlin".into(),
            },
        ] {
            let text = visitor_frame(&f);
            assert_eq!(decode::<VisitorFrame>(&text), Ok(f), "{text}");
        }
        let site = SiteKey::new("demo").unwrap();
        for (email, user) in [
            (None, None),
            (Some("c@example.com".to_string()), Some("u1")),
        ] {
            let r = StartRequest {
                site: site.clone(),
                name: "Cleo".into(),
                email: email.clone(),
                text: "Hello".into(),
                client_id: ClientMsgId::new("w9").unwrap(),
                user_id: user.map(str::to_owned),
                user_hash: user.map(|_| "ab12".to_owned()),
            };
            assert_eq!(decode_body::<StartRequest>(&start_request(&r)), Ok(r));
            let l = LeaveMessageRequest {
                site: site.clone(),
                name: "Cleo".into(),
                email,
                text: "Call me".into(),
            };
            assert_eq!(
                decode_body::<LeaveMessageRequest>(&leave_message_request(&l)),
                Ok(l)
            );
        }
    }

    /// The HTTP answers the widget reads, written by serde, read back equal.
    #[test]
    fn reads_the_answers_the_service_writes() {
        for (availability, team) in [
            (
                Availability::Open {
                    queue_name: "Sales".into(),
                },
                vec![
                    TeamFace {
                        initials: "AB".into(),
                        picture: Some("/api/v1/avatars/t/p1".into()),
                    },
                    TeamFace {
                        initials: "C".into(),
                        picture: None,
                    },
                ],
            ),
            (
                Availability::Closed {
                    queue_name: "Sales".into(),
                },
                vec![],
            ),
            (
                Availability::NoAgents {
                    queue_name: "Sales".into(),
                },
                vec![],
            ),
        ] {
            let info = SiteInfo {
                site: SiteKey::new("demo").unwrap(),
                name: "Demo Shop".into(),
                language: "de".into(),
                availability,
                accent: team.first().map(|_| "#1f5eff".into()),
                typical_reply_mins: team.first().map(|_| 3),
                team,
            };
            let text = serde_json::to_string(&info).unwrap();
            assert_eq!(site_info(&text), Ok(info), "{text}");
        }
        assert!(site_info(r#"{"site":"demo"}"#)
            .unwrap_err()
            .0
            .contains("missing field `name`"));
        let faces = r#"{"site":"demo","name":"D","language":"en","availability":{"availability":"open","queue_name":"Q"},"team":3}"#;
        assert!(site_info(faces)
            .unwrap_err()
            .0
            .contains("field `team`: not a list"));
        for status in statuses() {
            let r = StartResponse {
                conversation: ConversationId::new("c1").unwrap(),
                token: "secret".into(),
                status,
            };
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(start_response(&text), Ok(r), "{text}");
        }
        let body = ErrorBody {
            error: "bad_request".into(),
            message: "field `name`: empty".into(),
        };
        assert_eq!(
            error_message(&serde_json::to_string(&body).unwrap()),
            Some(body.message)
        );
        assert_eq!(error_message("<html>"), None);
    }

    /// Stored texts written here read back equal, whatever they hold.
    #[test]
    fn arrays_of_objects_read_back() {
        let written = array(["a", "b\"\n"].map(|t| Object::new().text("text", t).end()));
        let v = Value::parse(&written).unwrap();
        let read = items(&v, "list", |x| text(x, "text")).unwrap();
        assert_eq!(read, ["a", "b\"\n"]);
        assert_eq!(array(Vec::<String>::new()), "[]");
    }

    proptest! {
        #[test]
        fn any_text_is_written_as_valid_json(key in any::<String>(), value in any::<String>(), n in any::<u64>(), b in any::<bool>()) {
            let written = Object::new().text(&key, &value).number("n", n).boolean("b", b).opt_text("o", None).end();
            let v: Value = serde_json::from_str(&written).unwrap();
            prop_assert_eq!(v.get(key.as_str()).and_then(Value::as_str), Some(value.as_str()));
            prop_assert_eq!(v.get("n").and_then(Value::as_u64), Some(n));
            prop_assert_eq!(v.get("b").and_then(Value::as_bool), Some(b));
        }
    }
}
