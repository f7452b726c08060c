//! One Durable Object per conversation: transcript, visitor token, visitor sockets.
//!
//! Rules:
//! - The transcript rules are [`shared::transcript`]'s; this object stores every
//!   accepted message in SQLite **before** acknowledging it, then delivers it.
//! - A visitor reaches the conversation only with its token (only its SHA-256 is
//!   stored) and, from a browser page, only from the site's allowed origins.
//! - Visitor frames are rate limited per conversation token (`RATE_VISITOR_PER_MINUTE`).
//! - On connect the visitor gets `welcome` and then exactly the messages after the
//!   sequence number it gives (`after`), in order.
//! - Lifecycle changes come from the tenant object as engine events; customer
//!   messages, typing and "end" go to the tenant object, which owns the routing.

use crate::error::{ApiError, ApiResult};
use crate::{auth, call, env_u32, now, respond, stub, Caller, WithCaller};
use serde::{Deserialize, Serialize};
use shared::engine::{ConversationEvent, Customer, VisitorStatus};
use shared::ids::{ConversationId, TenantId};
use shared::protocol::{encode, Appended, ToConversation, ToTenant, VisitorEvent, VisitorFrame};
use shared::ratelimit::RateLimiter;
use shared::transcript::{Message, Transcript};
use std::cell::RefCell;
use worker::{
    durable_object, DurableObject, Env, Request, Response, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

/// What the object keeps besides messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub customer: Customer,
    pub token_hash: String,
    pub allowed_origins: Vec<String>,
    pub status: VisitorStatus,
}

struct Loaded {
    meta: Meta,
    transcript: Transcript,
}

#[durable_object]
pub struct ConversationObject {
    state: State,
    env: Env,
    loaded: RefCell<Option<Loaded>>,
    limiter: RefCell<RateLimiter>,
}

#[derive(Deserialize)]
struct ValueRow {
    value: String,
}

impl ConversationObject {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn load(&self) -> ApiResult<bool> {
        if self.loaded.borrow().is_some() {
            return Ok(true);
        }
        let sql = self.sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            None,
        )?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, value TEXT NOT NULL)",
            None,
        )?;
        let rows: Vec<ValueRow> = sql
            .exec("SELECT value FROM meta WHERE key = 'meta'", None)?
            .to_array()?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(false);
        };
        let meta: Meta = serde_json::from_str(&row.value)?;
        let msgs: Vec<ValueRow> = sql
            .exec("SELECT value FROM messages ORDER BY seq", None)?
            .to_array()?;
        let msgs: Vec<Message> = msgs
            .iter()
            .map(|r| serde_json::from_str(&r.value))
            .collect::<Result<_, _>>()?;
        let transcript = Transcript::from_messages(msgs).map_err(ApiError::internal)?;
        *self.loaded.borrow_mut() = Some(Loaded { meta, transcript });
        Ok(true)
    }

    fn require(&self) -> ApiResult<()> {
        if self.load()? {
            Ok(())
        } else {
            Err(ApiError::not_found(
                "unknown_conversation",
                "unknown conversation",
            ))
        }
    }

    fn save_meta(&self, meta: &Meta) -> ApiResult<()> {
        self.sql().exec(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('meta', ?)",
            vec![serde_json::to_string(meta)?.into()],
        )?;
        Ok(())
    }

    fn save_message(&self, m: &Message) -> ApiResult<()> {
        self.sql().exec(
            "INSERT INTO messages (seq, value) VALUES (?, ?)",
            vec![(m.seq as i64).into(), serde_json::to_string(m)?.into()],
        )?;
        Ok(())
    }

    fn meta(&self) -> ApiResult<Meta> {
        self.loaded
            .borrow()
            .as_ref()
            .map(|l| l.meta.clone())
            .ok_or_else(|| ApiError::not_found("unknown_conversation", "unknown conversation"))
    }

    /// Checks token, origin and rate limit of a visitor request.
    fn check_visitor(&self, token: &str, caller: &Caller) -> ApiResult<Meta> {
        self.require()?;
        let meta = self.meta()?;
        if token.is_empty() {
            return Err(ApiError::unauthorized("the visitor token is missing"));
        }
        if !auth::same(&auth::sha256_hex(token), &meta.token_hash) {
            return Err(ApiError::unauthorized(
                "the visitor token is not valid for this conversation",
            ));
        }
        if !crate::origin_allowed(caller, &meta.allowed_origins) {
            return Err(ApiError::forbidden(
                "origin_not_allowed",
                format!(
                    "origin {} is not allowed for this site",
                    caller.origin.as_deref().unwrap_or("")
                ),
            ));
        }
        self.rate()?;
        Ok(meta)
    }

    fn rate(&self) -> ApiResult<()> {
        self.limiter
            .borrow_mut()
            .hit("visitor", now())
            .map_err(ApiError::rate_limited)
    }

    fn visitors(&self) -> Vec<WebSocket> {
        self.state.get_websockets()
    }

    fn broadcast(&self, ev: &VisitorEvent) {
        let s = encode(ev);
        for ws in self.visitors() {
            let _ = ws.send_with_str(&s);
        }
    }

    /// Applies engine events; returns the system lines appended.
    fn apply_events(&self, events: Vec<ConversationEvent>) -> ApiResult<Vec<Message>> {
        let mut appended = vec![];
        for e in events {
            match e {
                ConversationEvent::Note(note) => {
                    let m = {
                        let mut l = self.loaded.borrow_mut();
                        let l = l.as_mut().ok_or_else(|| ApiError::internal("not loaded"))?;
                        l.transcript.append_note(note, now())
                    };
                    self.save_message(&m)?;
                    self.broadcast(&VisitorEvent::Message { message: m.clone() });
                    appended.push(m);
                }
                ConversationEvent::Status(status) => {
                    let meta = {
                        let mut l = self.loaded.borrow_mut();
                        let l = l.as_mut().ok_or_else(|| ApiError::internal("not loaded"))?;
                        l.meta.status = status.clone();
                        l.meta.clone()
                    };
                    self.save_meta(&meta)?;
                    self.broadcast(&VisitorEvent::Status { status });
                }
            }
        }
        Ok(appended)
    }

    async fn handle_internal(&self, path: &str, text: &str) -> ApiResult<serde_json::Value> {
        match path {
            "/internal" => {
                let cmd: ToConversation = serde_json::from_str(text)?;
                match cmd {
                    ToConversation::Init {
                        tenant,
                        conversation,
                        customer,
                        token_hash,
                        client_id,
                        text,
                        allowed_origins,
                        queue: _,
                    } => {
                        if self.load()? {
                            return Err(ApiError::new(
                                409,
                                "duplicate_conversation",
                                format!("conversation {conversation} exists"),
                            ));
                        }
                        let mut transcript = Transcript::default();
                        let first =
                            transcript.append_customer(&customer.name, client_id, &text, now())?;
                        let meta = Meta {
                            tenant,
                            conversation,
                            customer,
                            token_hash,
                            allowed_origins,
                            status: VisitorStatus::Queued { position: 1 },
                        };
                        self.save_meta(&meta)?;
                        self.save_message(first.message())?;
                        *self.loaded.borrow_mut() = Some(Loaded { meta, transcript });
                        Ok(serde_json::json!({ "seq": first.message().seq }))
                    }
                    ToConversation::Events { events } => {
                        self.require()?;
                        Ok(serde_json::to_value(self.apply_events(events)?)?)
                    }
                    ToConversation::AgentSend {
                        agent,
                        name,
                        client_id,
                        text,
                    } => {
                        self.require()?;
                        let r = {
                            let mut l = self.loaded.borrow_mut();
                            let l = l.as_mut().ok_or_else(|| ApiError::internal("not loaded"))?;
                            l.transcript
                                .append_agent(agent, &name, client_id, &text, now())?
                        };
                        let duplicate = matches!(r, shared::transcript::Appended::Duplicate(_));
                        if !duplicate {
                            self.save_message(r.message())?;
                            self.broadcast(&VisitorEvent::Message {
                                message: r.message().clone(),
                            });
                        }
                        Ok(serde_json::to_value(Appended {
                            message: r.message().clone(),
                            duplicate,
                        })?)
                    }
                    ToConversation::AgentTyping { name, typing } => {
                        self.broadcast(&VisitorEvent::Typing { typing, name });
                        Ok(serde_json::json!({}))
                    }
                    ToConversation::Read { after } => {
                        self.require()?;
                        let l = self.loaded.borrow();
                        let msgs = l
                            .as_ref()
                            .map(|l| l.transcript.after(after).to_vec())
                            .unwrap_or_default();
                        Ok(serde_json::to_value(msgs)?)
                    }
                }
            }
            "/transcript" => {
                let w: WithCaller<String> = serde_json::from_str(text)?;
                let meta = self.check_visitor(&w.body, &w.caller)?;
                let l = self.loaded.borrow();
                let msgs = l
                    .as_ref()
                    .map(|l| l.transcript.messages().to_vec())
                    .unwrap_or_default();
                Ok(
                    serde_json::json!({ "conversation": meta.conversation, "customer_name": meta.customer.name, "status": meta.status, "messages": msgs }),
                )
            }
            "/end" => {
                let w: WithCaller<String> = serde_json::from_str(text)?;
                let meta = self.check_visitor(&w.body, &w.caller)?;
                let _: serde_json::Value = call(
                    &stub(&self.env, "TENANTS", meta.tenant.as_str())?,
                    "/notify",
                    &ToTenant::CustomerEnd {
                        conversation: meta.conversation,
                    },
                )
                .await?;
                Ok(serde_json::json!({ "ok": true }))
            }
            _ => Err(ApiError::not_found("no_such_route", path.to_owned())),
        }
    }

    fn accept_visitor(&self, req: &Request) -> ApiResult<Response> {
        let q = |k: &str| {
            req.url()
                .ok()
                .and_then(|u| {
                    u.query_pairs()
                        .find(|(x, _)| x == k)
                        .map(|(_, v)| v.into_owned())
                })
                .unwrap_or_default()
        };
        let caller = Caller {
            ip: q("ip"),
            origin: Some(q("origin")).filter(|s| !s.is_empty()),
            self_origin: q("self"),
        };
        let meta = self.check_visitor(&q("token"), &caller)?;
        let after: u64 = match q("after").as_str() {
            "" => 0,
            s => s.parse().map_err(|_| {
                ApiError::bad_request(
                    "invalid_after",
                    format!("after={s:?} is not a sequence number"),
                )
            })?,
        };
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        let (last, missed) = {
            let l = self.loaded.borrow();
            let l = l.as_ref().ok_or_else(|| ApiError::internal("not loaded"))?;
            (l.transcript.last_seq(), l.transcript.after(after).to_vec())
        };
        let _ = pair.server.send_with_str(encode(&VisitorEvent::Welcome {
            conversation: meta.conversation,
            status: meta.status,
            last_seq: last,
        }));
        for m in missed {
            let _ = pair
                .server
                .send_with_str(encode(&VisitorEvent::Message { message: m }));
        }
        Ok(Response::from_websocket(pair.client)?)
    }

    async fn on_frame(&self, ws: &WebSocket, text: &str) -> ApiResult<()> {
        let frame: VisitorFrame = shared::protocol::decode(text)?;
        self.require()?;
        if !matches!(frame, VisitorFrame::Ping | VisitorFrame::Typing { .. }) {
            self.rate()?;
        }
        let meta = self.meta()?;
        let tenant = || stub(&self.env, "TENANTS", meta.tenant.as_str());
        match frame {
            VisitorFrame::Ping => {
                let _ = ws.send_with_str(encode(&VisitorEvent::Pong));
            }
            VisitorFrame::Send { client_id, text } => {
                let r = {
                    let mut l = self.loaded.borrow_mut();
                    let l = l.as_mut().ok_or_else(|| ApiError::internal("not loaded"))?;
                    l.transcript.append_customer(
                        &meta.customer.name,
                        client_id.clone(),
                        &text,
                        now(),
                    )?
                };
                let m = r.message().clone();
                if let shared::transcript::Appended::New(_) = r {
                    self.save_message(&m)?;
                    self.broadcast(&VisitorEvent::Message { message: m.clone() });
                    let _ = ws.send_with_str(encode(&VisitorEvent::Ack {
                        client_id,
                        seq: m.seq,
                    }));
                    let r: ApiResult<serde_json::Value> = call(
                        &tenant()?,
                        "/notify",
                        &ToTenant::CustomerMessage {
                            conversation: meta.conversation.clone(),
                            message: m,
                        },
                    )
                    .await;
                    if let Err(e) = r {
                        worker::console_error!("notify tenant: {e}");
                    }
                } else {
                    let _ = ws.send_with_str(encode(&VisitorEvent::Ack {
                        client_id,
                        seq: m.seq,
                    }));
                }
            }
            VisitorFrame::Typing { typing } => {
                let _: serde_json::Value = call(
                    &tenant()?,
                    "/notify",
                    &ToTenant::CustomerTyping {
                        conversation: meta.conversation.clone(),
                        typing,
                        name: meta.customer.name.clone(),
                    },
                )
                .await?;
            }
            VisitorFrame::End => {
                let _: serde_json::Value = call(
                    &tenant()?,
                    "/notify",
                    &ToTenant::CustomerEnd {
                        conversation: meta.conversation.clone(),
                    },
                )
                .await?;
            }
        }
        Ok(())
    }
}

impl DurableObject for ConversationObject {
    fn new(state: State, env: Env) -> Self {
        let limit = env_u32(&env, "RATE_VISITOR_PER_MINUTE", 60);
        Self {
            state,
            env,
            loaded: RefCell::new(None),
            limiter: RefCell::new(RateLimiter::new(limit, 60)),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let path = req.path();
        if path == "/ws" {
            return match self.accept_visitor(&req) {
                Ok(r) => Ok(r),
                Err(e) => e.to_response(),
            };
        }
        let text = req.text().await.unwrap_or_default();
        respond(self.handle_internal(&path, &text).await)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        let text = match message {
            WebSocketIncomingMessage::String(s) => s,
            WebSocketIncomingMessage::Binary(_) => {
                let _ = ws.send_with_str(encode(&VisitorEvent::Error {
                    code: "invalid_frame".into(),
                    message: "binary frames are not supported; send JSON text".into(),
                }));
                return Ok(());
            }
        };
        if let Err(e) = self.on_frame(&ws, &text).await {
            let _ = ws.send_with_str(encode(&VisitorEvent::Error {
                code: e.code,
                message: e.message,
            }));
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        let _ = ws.close(Some(1000), Some("bye"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        Ok(())
    }
}
