//! The visitor widget's JSON: the frames and bodies it reads and writes, through
//! miniserde instead of serde.
//!
//! serde's code is generic over every format and every type, and each frame type the
//! widget read compiled into its own parser: about a seventh of the widget's wasm.
//! miniserde's derives go through one small JSON parser by trait objects.
//!
//! Rules:
//! - The JSON is exactly the serde forms of [`crate::protocol`]: what the service
//!   writes with serde reads back equal here, and what is written here the service's
//!   strict decoders ([`crate::protocol::decode`], [`crate::protocol::decode_body`])
//!   accept (tested below, for every variant).
//! - Tagged enums are read through their flat `…Fields` forms and the same `TryFrom`
//!   as serde's, so both readers apply one set of checks (ids, variants, fields).
//! - Reading ignores fields this build does not know and checks the protocol version
//!   like [`crate::protocol::decode_from_service`]. miniserde's own errors carry no
//!   detail, so a malformed text is named by what it should have been.
//! - The service itself never uses this module.

use crate::attachment::Attachment;
use crate::engine::{AvailabilityFields, SystemNoteFields, VisitorStatusFields};
use crate::ids::{ClientMsgId, ConversationId, SiteKey};
use crate::need;
use crate::protocol::{
    FrameError, LeaveMessageRequest, SiteInfo, StartRequest, StartResponse, TeamFace, VisitorEvent,
    VisitorFrame, VERSION,
};
use crate::transcript::{AuthorFields, Message};
use miniserde::json;
use miniserde::{Deserialize, Serialize};

/// What every frame starts with: the version and the type, read first.
#[derive(Deserialize)]
struct Head {
    v: Option<u64>,
    #[serde(rename = "type")]
    kind: String,
}

/// Every field a [`VisitorEvent`] but `error` may have (see
/// `protocol::VisitorEventFields`).
#[derive(Deserialize)]
struct EventFields {
    conversation: Option<String>,
    status: Option<VisitorStatusFields>,
    last_seq: Option<u64>,
    message: Option<MessageFields>,
    typing: Option<bool>,
    name: Option<String>,
    client_id: Option<String>,
    seq: Option<u64>,
    score: Option<u8>,
}

/// An `error` frame, whose `message` is a text rather than a stored message.
#[derive(Deserialize)]
struct ErrorFields {
    code: Option<String>,
    message: Option<String>,
}

/// A [`Message`] as JSON.
#[derive(Deserialize)]
struct MessageFields {
    seq: u64,
    client_id: Option<String>,
    author: AuthorFields,
    text: String,
    note: Option<SystemNoteFields>,
    at: String,
    attachment: Option<Attachment>,
}

impl TryFrom<MessageFields> for Message {
    type Error = String;
    fn try_from(f: MessageFields) -> Result<Self, String> {
        Ok(Message {
            seq: f.seq,
            client_id: f
                .client_id
                .map(ClientMsgId::new)
                .transpose()
                .map_err(|e| format!("field `client_id`: {e}"))?,
            author: f.author.try_into()?,
            text: f.text,
            note: f.note.map(TryInto::try_into).transpose()?,
            at: crate::time::parse(&f.at)
                .ok_or_else(|| format!("field `at`: \"{}\" is not an RFC 3339 time", f.at))?,
            attachment: f.attachment,
        })
    }
}

/// Reads a frame of the conversation socket.
pub fn visitor_event(text: &str) -> Result<VisitorEvent, FrameError> {
    let head: Head =
        json::from_str(text).map_err(|_| FrameError("not a JSON frame with a `type`".into()))?;
    match head.v {
        Some(VERSION) => {}
        Some(other) => {
            return Err(FrameError(format!(
                "field `v`: unsupported protocol version {other}; this client speaks {VERSION}"
            )))
        }
        None => return Err(FrameError("field `v`: missing protocol version".into())),
    }
    let bad = |kind: &str| FrameError(format!("a `{kind}` frame whose fields do not read"));
    if head.kind == "error" {
        let f: ErrorFields = json::from_str(text).map_err(|_| bad("error"))?;
        return Ok(VisitorEvent::Error {
            code: need(f.code, "code").map_err(FrameError)?,
            message: need(f.message, "message").map_err(FrameError)?,
        });
    }
    let f: EventFields = json::from_str(text).map_err(|_| bad(&head.kind))?;
    event(&head.kind, f).map_err(FrameError)
}

fn event(kind: &str, f: EventFields) -> Result<VisitorEvent, String> {
    let status = |s: Option<VisitorStatusFields>| need(s, "status")?.try_into();
    Ok(match kind {
        "welcome" => VisitorEvent::Welcome {
            conversation: ConversationId::new(need(f.conversation, "conversation")?)
                .map_err(|e| format!("field `conversation`: {e}"))?,
            status: status(f.status)?,
            last_seq: need(f.last_seq, "last_seq")?,
        },
        "message" => VisitorEvent::Message {
            message: need(f.message, "message")?.try_into()?,
        },
        "status" => VisitorEvent::Status {
            status: status(f.status)?,
        },
        "typing" => VisitorEvent::Typing {
            typing: need(f.typing, "typing")?,
            name: need(f.name, "name")?,
        },
        "ack" => VisitorEvent::Ack {
            client_id: ClientMsgId::new(need(f.client_id, "client_id")?)
                .map_err(|e| format!("field `client_id`: {e}"))?,
            seq: need(f.seq, "seq")?,
            message: f.message.map(TryInto::try_into).transpose()?,
        },
        "rated" => VisitorEvent::Rated {
            score: need(f.score, "score")?,
        },
        "pong" => VisitorEvent::Pong,
        other => return Err(format!("unknown frame type `{other}`")),
    })
}

/// A frame without fields (`end`, `ping`); the others add theirs. The edge refuses
/// fields a frame type does not have, so each type has its own form.
#[derive(Serialize)]
struct Bare<'a> {
    v: u64,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct SendOut<'a> {
    v: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    client_id: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
struct RateOut<'a> {
    v: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    score: u8,
    comment: Option<&'a str>,
}

#[derive(Serialize)]
struct TypingOut<'a> {
    v: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    typing: bool,
}

#[derive(Serialize)]
struct PageOut<'a> {
    v: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    url: &'a str,
    title: &'a str,
    time_zone: &'a str,
}

/// Writes a frame for the conversation socket (version included).
pub fn visitor_frame(frame: &VisitorFrame) -> String {
    let v = VERSION;
    match frame {
        VisitorFrame::Send { client_id, text } => json::to_string(&SendOut {
            v,
            kind: "send",
            client_id: client_id.as_str(),
            text,
        }),
        VisitorFrame::Rate { score, comment } => json::to_string(&RateOut {
            v,
            kind: "rate",
            score: *score,
            comment: comment.as_deref(),
        }),
        VisitorFrame::Typing { typing } => json::to_string(&TypingOut {
            v,
            kind: "typing",
            typing: *typing,
        }),
        VisitorFrame::End => json::to_string(&Bare { v, kind: "end" }),
        VisitorFrame::Ping => json::to_string(&Bare { v, kind: "ping" }),
        VisitorFrame::Page {
            url,
            title,
            time_zone,
        } => json::to_string(&PageOut {
            v,
            kind: "page",
            url,
            title,
            time_zone,
        }),
    }
}

/// [`SiteInfo`] as JSON.
#[derive(Deserialize)]
struct SiteFields {
    site: String,
    name: String,
    language: String,
    availability: AvailabilityFields,
    accent: Option<String>,
    typical_reply_mins: Option<u32>,
    team: Option<Vec<FaceFields>>,
}

/// [`TeamFace`] as JSON.
#[derive(Deserialize)]
struct FaceFields {
    initials: String,
    picture: Option<String>,
}

/// Reads `GET /api/v1/sites/{key}` (also carried in the widget's document).
pub fn site_info(text: &str) -> Result<SiteInfo, FrameError> {
    let f: SiteFields =
        json::from_str(text).map_err(|_| FrameError("not a site's information".into()))?;
    Ok(SiteInfo {
        site: SiteKey::new(f.site).map_err(|e| FrameError(format!("field `site`: {e}")))?,
        name: f.name,
        language: f.language,
        availability: f.availability.try_into().map_err(FrameError)?,
        accent: f.accent,
        typical_reply_mins: f.typical_reply_mins,
        team: f
            .team
            .unwrap_or_default()
            .into_iter()
            .map(|t| TeamFace {
                initials: t.initials,
                picture: t.picture,
            })
            .collect(),
    })
}

/// [`StartResponse`] as JSON.
#[derive(Deserialize)]
struct StartedFields {
    conversation: String,
    token: String,
    status: VisitorStatusFields,
}

/// Reads the answer to `POST /api/v1/conversations`.
pub fn start_response(text: &str) -> Result<StartResponse, FrameError> {
    let f: StartedFields =
        json::from_str(text).map_err(|_| FrameError("not the answer to starting a chat".into()))?;
    Ok(StartResponse {
        conversation: ConversationId::new(f.conversation)
            .map_err(|e| FrameError(format!("field `conversation`: {e}")))?,
        token: f.token,
        status: f.status.try_into().map_err(FrameError)?,
    })
}

/// The `message` of an error body ([`crate::protocol::ErrorBody`]), if it is one.
pub fn error_message(text: &str) -> Option<String> {
    json::from_str::<crate::protocol::ErrorBody>(text)
        .ok()
        .map(|b| b.message)
}

/// [`StartRequest`] as JSON.
#[derive(Serialize)]
struct StartFields {
    site: String,
    name: String,
    email: Option<String>,
    text: String,
    client_id: String,
    user_id: Option<String>,
    user_hash: Option<String>,
}

/// Writes `POST /api/v1/conversations`.
pub fn start_request(r: &StartRequest) -> String {
    json::to_string(&StartFields {
        site: r.site.to_string(),
        name: r.name.clone(),
        email: r.email.clone(),
        text: r.text.clone(),
        client_id: r.client_id.to_string(),
        user_id: r.user_id.clone(),
        user_hash: r.user_hash.clone(),
    })
}

/// [`LeaveMessageRequest`] as JSON.
#[derive(Serialize)]
struct LeaveFields {
    site: String,
    name: String,
    email: Option<String>,
    text: String,
}

/// Writes `POST /api/v1/messages`.
pub fn leave_message_request(r: &LeaveMessageRequest) -> String {
    json::to_string(&LeaveFields {
        site: r.site.to_string(),
        name: r.name.clone(),
        email: r.email.clone(),
        text: r.text.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Availability, EndedBy, SystemNote, VisitorStatus};
    use crate::ids::AgentId;
    use crate::protocol::{decode, decode_body, encode, ErrorBody};
    use crate::transcript::Author;
    use chrono::DateTime;

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
        assert!(err(r#"{"v":1,"type":"error","code":"x","message":{}}"#).contains("`error` frame"));
        assert!(err(r#"{"v":1,"type":"error","code":"x"}"#).contains("missing field `message`"));
        let m = r#"{"seq":1,"author":{"kind":"system"},"text":"x","at":"yesterday"}"#;
        assert!(err(&format!(r#"{{"v":1,"type":"message","message":{m}}}"#))
            .contains("not an RFC 3339 time"));
        assert!(err(r#"{"v":1,"type":"message","message":"hi"}"#).contains("`message` frame"));
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
        assert!(site_info(r#"{"site":"demo"}"#).is_err());
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
}
