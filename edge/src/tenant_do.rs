//! One Durable Object per tenant: the routing engine, agents and their sockets.
//!
//! Rules:
//! - Every state change is decided by [`shared::engine::Tenant::handle`]. After each
//!   command the whole engine and any closed conversations are written to SQLite
//!   (synchronously, before anything is acknowledged or delivered), then the alarm
//!   is set to the engine's earliest deadline, then the effects are delivered.
//! - The alarm feeds [`Command::Tick`]; it survives restarts, so offer timeouts,
//!   conference timeouts and inactivity ends happen after a restart too.
//! - Agents authenticate with a password (stored as a PBKDF2 hash) and get a signed,
//!   expiring session token; the agent socket checks expiry on every frame.
//! - Agent messages are checked here (participant of the chat) and stored by the
//!   conversation object (text rules), then delivered to every participant.
//! - Sign-in attempts and conversation starts are rate limited per IP.

use crate::auth::{self, PasswordHash, Session};
use crate::error::{ApiError, ApiResult};
use crate::{
    call, env_string, env_u32, now, respond, session_secret, stub, Caller, WithCaller,
    OBJECT_NAME_HEADER,
};
use serde::{Deserialize, Serialize};
use shared::engine::{
    AgentEvent, Availability, ClosedConversation, Command, ConversationEvent, Customer, Effect,
    Tenant,
};
use shared::ids::{AgentId, ClientMsgId, ConversationId, SiteKey, TenantId};
use shared::protocol::{
    encode, AdminConfig, AgentFrame, AgentServerFrame, Appended, LeaveMessageRequest, ReasonInfo,
    SignInRequest, SignInResponse, SiteInfo, StartRequest, StartResponse, TemplateInfo,
    ToConversation, ToTenant,
};
use shared::ratelimit::RateLimiter;
use shared::transcript::Message;
use std::cell::RefCell;
use std::collections::BTreeMap;
use worker::{
    durable_object, DurableObject, Env, Request, Response, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

/// What an agent socket remembers across hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SocketInfo {
    agent: AgentId,
    exp: i64,
}

#[durable_object]
pub struct TenantObject {
    state: State,
    env: Env,
    engine: RefCell<Option<Tenant>>,
    name: RefCell<Option<TenantId>>,
    start_limiter: RefCell<RateLimiter>,
    sign_in_limiter: RefCell<RateLimiter>,
}

#[derive(Deserialize)]
struct ValueRow {
    value: String,
}

fn not_loaded() -> ApiError {
    ApiError::not_found("unknown_tenant", "this tenant has no configuration")
}

impl TenantObject {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn kv_get(&self, key: &str) -> ApiResult<Option<String>> {
        let rows: Vec<ValueRow> = self
            .sql()
            .exec("SELECT value FROM kv WHERE key = ?", vec![key.into()])?
            .to_array()?;
        Ok(rows.into_iter().next().map(|r| r.value))
    }

    fn kv_put(&self, key: &str, value: &str) -> ApiResult<()> {
        self.sql().exec(
            "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)",
            vec![key.into(), value.into()],
        )?;
        Ok(())
    }

    /// Loads the engine (seeding the demo tenant on first use when enabled).
    fn load(&self, req_name: Option<String>) -> ApiResult<()> {
        if self.engine.borrow().is_some() {
            return Ok(());
        }
        let sql = self.sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            None,
        )?;
        sql.exec("CREATE TABLE IF NOT EXISTS closed (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, value TEXT NOT NULL)", None)?;
        let name = match self.kv_get("name")? {
            Some(n) => Some(n),
            None => {
                if let Some(n) = &req_name {
                    self.kv_put("name", n)?;
                }
                req_name
            }
        };
        let Some(name) = name else {
            return Err(not_loaded());
        };
        *self.name.borrow_mut() = Some(TenantId::new(name.clone())?);
        if let Some(json) = self.kv_get("engine")? {
            *self.engine.borrow_mut() = Some(serde_json::from_str(&json)?);
            return Ok(());
        }
        if name == "demo" && env_string(&self.env, "DEMO_SEED").as_deref() == Some("true") {
            let demo: AdminConfig = serde_json::from_str(crate::DEMO_TENANT)?;
            self.install_config(demo)?;
            return Ok(());
        }
        Err(not_loaded())
    }

    /// Validates and stores a configuration with passwords and site secrets.
    fn install_config(&self, admin: AdminConfig) -> ApiResult<()> {
        let mut engine = match self.engine.borrow().clone() {
            Some(mut t) => {
                t.set_config(admin.config.clone())?;
                t
            }
            None => Tenant::new(admin.config.clone())?,
        };
        for a in &admin.config.agents {
            let has = self.kv_get(&format!("pw:{}", a.id))?.is_some();
            if !has && !admin.passwords.contains_key(&a.id) {
                return Err(ApiError::bad_request(
                    "invalid_config",
                    format!("agent {} needs a password", a.id),
                ));
            }
        }
        for (a, pw) in &admin.passwords {
            if admin.config.agent(a).is_none() {
                return Err(ApiError::bad_request(
                    "invalid_config",
                    format!("password given for unknown agent {a}"),
                ));
            }
            shared::config::check_password_strength(a, pw)
                .map_err(|m| ApiError::bad_request("invalid_config", m))?;
        }
        for s in admin.site_secrets.keys() {
            if admin.config.site(s).is_none() {
                return Err(ApiError::bad_request(
                    "invalid_config",
                    format!("secret given for unknown site {s}"),
                ));
            }
        }
        // All checks passed: write.
        for (a, pw) in &admin.passwords {
            let h = auth::hash_password(pw).map_err(ApiError::internal)?;
            self.kv_put(&format!("pw:{a}"), &serde_json::to_string(&h)?)?;
        }
        for (s, secret) in &admin.site_secrets {
            self.kv_put(&format!("secret:{s}"), secret)?;
        }
        let _ = engine.handle(now(), Command::Tick);
        self.kv_put("engine", &serde_json::to_string(&engine)?)?;
        *self.engine.borrow_mut() = Some(engine);
        Ok(())
    }

    fn tenant_name(&self) -> ApiResult<TenantId> {
        self.name.borrow().clone().ok_or_else(not_loaded)
    }

    fn with_engine<R>(&self, f: impl FnOnce(&Tenant) -> R) -> ApiResult<R> {
        let e = self.engine.borrow();
        Ok(f(e.as_ref().ok_or_else(not_loaded)?))
    }

    /// Runs a command and persists its outcome. Nothing is delivered yet.
    fn run(&self, cmd: Command) -> ApiResult<Vec<Effect>> {
        let (fx, json) = {
            let mut e = self.engine.borrow_mut();
            let t = e.as_mut().ok_or_else(not_loaded)?;
            let fx = t.handle(now(), cmd)?;
            (fx, serde_json::to_string(&*t)?)
        };
        self.kv_put("engine", &json)?;
        for e in &fx {
            if let Effect::Closed(c) = e {
                self.sql().exec(
                    "INSERT OR REPLACE INTO closed (id, created_at, value) VALUES (?, ?, ?)",
                    vec![
                        c.id.as_str().into(),
                        c.created_at.timestamp().into(),
                        serde_json::to_string(c)?.into(),
                    ],
                )?;
            }
        }
        Ok(fx)
    }

    async fn schedule(&self) -> ApiResult<()> {
        let next = self.with_engine(|t| t.next_deadline())?;
        let storage = self.state.storage();
        match next {
            Some(d) => storage.set_alarm(d).await?,
            None => storage.delete_alarm().await?,
        }
        Ok(())
    }

    /// Runs, persists, schedules and delivers.
    async fn exec(&self, cmd: Command) -> ApiResult<()> {
        let fx = self.run(cmd)?;
        self.schedule().await?;
        self.deliver(fx).await;
        Ok(())
    }

    fn sockets_of(&self, agent: &AgentId) -> Vec<WebSocket> {
        self.state.get_websockets_with_tag(agent.as_str())
    }

    fn send_agent(&self, agent: &AgentId, frame: &AgentServerFrame) {
        let s = encode(frame);
        for ws in self.sockets_of(agent) {
            let _ = ws.send_with_str(&s);
        }
    }

    async fn read(&self, conversation: &ConversationId) -> Vec<Message> {
        match stub(&self.env, "CONVERSATIONS", conversation.as_str()) {
            Ok(s) => call(&s, "/internal", &ToConversation::Read { after: 0 })
                .await
                .unwrap_or_default(),
            Err(_) => vec![],
        }
    }

    async fn deliver(&self, fx: Vec<Effect>) {
        let mut batches: Vec<(ConversationId, Vec<ConversationEvent>)> = Vec::new();
        let mut agent_events = Vec::new();
        for e in fx {
            match e {
                Effect::Conversation {
                    conversation,
                    event,
                } => match batches.iter_mut().find(|(c, _)| c == &conversation) {
                    Some((_, v)) => v.push(event),
                    None => batches.push((conversation, vec![event])),
                },
                Effect::Agent { agent, event } => agent_events.push((agent, event)),
                Effect::Closed(_) => {}
            }
        }
        // The conversation object answers with the system lines it appended.
        let mut notes: Vec<(ConversationId, Vec<Message>)> = Vec::new();
        for (c, events) in batches {
            let r: ApiResult<Vec<Message>> = match stub(&self.env, "CONVERSATIONS", c.as_str()) {
                Ok(s) => call(&s, "/internal", &ToConversation::Events { events }).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(appended) => notes.push((c, appended)),
                Err(e) => worker::console_error!("deliver to {c}: {e}"),
            }
        }
        let concerned: Vec<(AgentId, ConversationId)> = agent_events
            .iter()
            .filter_map(|(a, e)| match e {
                AgentEvent::WrapUpRequired { conversation }
                | AgentEvent::Left { conversation }
                | AgentEvent::Status { conversation, .. } => {
                    Some((a.clone(), conversation.clone()))
                }
                _ => None,
            })
            .collect();
        for (agent, event) in agent_events {
            match event {
                AgentEvent::Offer(offer) => {
                    let thread = self.read(&offer.conversation).await;
                    self.send_agent(&agent, &AgentServerFrame::Offer { offer, thread });
                }
                AgentEvent::Joined(summary) => {
                    let c = summary.conversation.clone();
                    self.send_agent(
                        &agent,
                        &AgentServerFrame::Event {
                            event: AgentEvent::Joined(summary),
                        },
                    );
                    let messages = self.read(&c).await;
                    self.send_agent(
                        &agent,
                        &AgentServerFrame::Transcript {
                            conversation: c,
                            messages,
                        },
                    );
                }
                event => self.send_agent(&agent, &AgentServerFrame::Event { event }),
            }
        }
        // New system lines go to the current participants and to every agent this
        // command concerned for that conversation (e.g. the owner of a chat that just ended).
        for (c, msgs) in notes {
            let mut participants = self
                .with_engine(|t| t.participants(&c).unwrap_or_default())
                .unwrap_or_default();
            for a in concerned.iter().filter(|(_, x)| x == &c).map(|(a, _)| a) {
                if !participants.contains(a) {
                    participants.push(a.clone());
                }
            }
            for message in msgs {
                self.send_to(
                    &participants,
                    &AgentServerFrame::Message {
                        conversation: c.clone(),
                        message,
                    },
                );
            }
        }
    }

    /// Sends one frame to every session of each agent in `agents`.
    fn send_to(&self, agents: &[AgentId], frame: &AgentServerFrame) {
        for a in agents {
            self.send_agent(a, frame);
        }
    }

    /// The agents who receive a conversation's messages now (owner and joined guest).
    fn participants(&self, c: &ConversationId) -> ApiResult<Vec<AgentId>> {
        self.with_engine(|t| t.participants(c).unwrap_or_default())
    }

    fn check_origin(&self, caller: &Caller, site: &SiteKey) -> ApiResult<Vec<String>> {
        let allowed =
            self.with_engine(|t| t.config().site(site).map(|s| s.allowed_origins.clone()))?;
        let allowed = allowed
            .ok_or_else(|| ApiError::not_found("unknown_site", format!("unknown site {site}")))?;
        if !crate::origin_allowed(caller, &allowed) {
            return Err(ApiError::forbidden(
                "origin_not_allowed",
                format!(
                    "origin {} is not allowed for site {site}",
                    caller.origin.as_deref().unwrap_or("")
                ),
            ));
        }
        Ok(allowed)
    }

    async fn start(&self, w: WithCaller<StartRequest>) -> ApiResult<StartResponse> {
        self.start_limiter
            .borrow_mut()
            .hit(&w.caller.ip, now())
            .map_err(ApiError::rate_limited)?;
        let b = w.body;
        let allowed = self.check_origin(&w.caller, &b.site)?;
        let verified_user_id = match (&b.user_id, &b.user_hash) {
            (None, None) => None,
            (Some(uid), Some(h)) => {
                let secret = self.kv_get(&format!("secret:{}", b.site))?.ok_or_else(|| {
                    ApiError::bad_request(
                        "identity_not_configured",
                        format!("site {} has no identity secret", b.site),
                    )
                })?;
                if !auth::check_user_hash(&secret, uid, h) {
                    return Err(ApiError::forbidden(
                        "identity_invalid",
                        "user_hash does not match user_id",
                    ));
                }
                Some(uid.clone())
            }
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    "user_id and user_hash go together",
                ))
            }
        };
        let name = shared::text::validate_name(&b.name)
            .map_err(|e| ApiError::bad_request(e.code(), format!("name: {e}")))?;
        shared::text::MessageText::new(&b.text, shared::text::Writer::Visitor)?;
        let email = shared::text::validate_email(b.email.as_deref())?;
        let (avail, queue) = self.with_engine(|t| {
            (
                t.availability(&b.site, now()),
                t.config().site(&b.site).map(|s| s.queue.clone()),
            )
        })?;
        match avail? {
            Availability::Open { .. } => {}
            Availability::Closed { queue_name } => {
                return Err(ApiError::new(
                    503,
                    "queue_closed",
                    format!("{queue_name} is closed now; leave a message instead"),
                ))
            }
            Availability::NoAgents { queue_name } => {
                return Err(ApiError::new(
                    503,
                    "no_agents_signed_in",
                    format!("nobody in {queue_name} is signed in; leave a message instead"),
                ))
            }
        }
        let queue = queue.ok_or_else(|| ApiError::not_found("unknown_site", "unknown site"))?;
        let id = ConversationId::new(auth::random_id().map_err(ApiError::internal)?)?;
        let token = auth::new_visitor_token().map_err(ApiError::internal)?;
        let customer = Customer {
            name,
            email,
            verified_user_id,
        };
        let init = ToConversation::Init {
            tenant: self.tenant_name()?,
            conversation: id.clone(),
            customer: customer.clone(),
            token_hash: auth::sha256_hex(&token),
            client_id: b.client_id.clone(),
            text: b.text.clone(),
            allowed_origins: allowed,
            queue,
        };
        let _: serde_json::Value = call(
            &stub(&self.env, "CONVERSATIONS", id.as_str())?,
            "/internal",
            &init,
        )
        .await?;
        self.exec(Command::Start {
            conversation: id.clone(),
            site: b.site.clone(),
            customer,
        })
        .await?;
        let status = self
            .with_engine(|t| t.visitor_status(&id))?
            .unwrap_or(shared::engine::VisitorStatus::Ended);
        Ok(StartResponse {
            conversation: id,
            token,
            status,
        })
    }

    fn sign_in(&self, w: WithCaller<SignInRequest>) -> ApiResult<(SignInResponse, Vec<Effect>)> {
        self.sign_in_limiter
            .borrow_mut()
            .hit(&w.caller.ip, now())
            .map_err(ApiError::rate_limited)?;
        let b = w.body;
        let refused = || ApiError::unauthorized("unknown agent or wrong password");
        let h: PasswordHash = match self.kv_get(&format!("pw:{}", b.agent))? {
            Some(s) => serde_json::from_str(&s)?,
            None => return Err(refused()),
        };
        if !auth::check_password(&b.password, &h) {
            return Err(refused());
        }
        let name = self
            .with_engine(|t| t.config().agent(&b.agent).map(|a| a.name.clone()))?
            .ok_or_else(refused)?;
        let fx = self.run(Command::SignIn {
            agent: b.agent.clone(),
        })?;
        let exp = now().timestamp() + auth::SESSION_SECS;
        let token = auth::sign_session(
            &session_secret(&self.env)?,
            &Session {
                tenant: self.tenant_name()?,
                agent: b.agent.clone(),
                exp,
            },
        );
        let expires_at = chrono::DateTime::from_timestamp(exp, 0).unwrap_or_default();
        Ok((
            SignInResponse {
                token,
                expires_at,
                agent: b.agent,
                name,
            },
            fx,
        ))
    }

    async fn snapshot_frame(&self, agent: &AgentId) -> ApiResult<AgentServerFrame> {
        let (snapshot, cfg) = self.with_engine(|t| (t.snapshot(agent), t.config().clone()))?;
        let snapshot = snapshot?;
        let mut transcripts = BTreeMap::new();
        let ids = snapshot
            .chats
            .iter()
            .chain(snapshot.wrap_ups.iter())
            .map(|c| c.conversation.clone())
            .chain(snapshot.offer.iter().map(|o| o.conversation.clone()));
        for c in ids.collect::<Vec<_>>() {
            let m = self.read(&c).await;
            transcripts.insert(c, m);
        }
        let reasons = |v: &[shared::config::Reason]| {
            v.iter()
                .map(|r| ReasonInfo {
                    id: r.id.clone(),
                    label: r.label.clone(),
                    label_de: r.label_de.clone(),
                })
                .collect()
        };
        Ok(AgentServerFrame::Snapshot {
            snapshot,
            transcripts,
            idle_reasons: reasons(&cfg.idle_reasons),
            wrap_up_reasons: reasons(&cfg.wrap_up_reasons),
            templates: cfg
                .templates
                .iter()
                .map(|t| TemplateInfo {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    text: t.text.clone(),
                })
                .collect(),
        })
    }

    async fn accept_agent(&self, req: &Request) -> ApiResult<Response> {
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
        let agent = AgentId::new(q("agent"))?;
        let exp: i64 = q("exp").parse().unwrap_or(0);
        let frame = self.snapshot_frame(&agent).await?;
        let signed_in =
            self.with_engine(|t| t.agent(&agent).is_some_and(|a| a.state.is_signed_in()))?;
        if !signed_in {
            return Err(ApiError::unauthorized(
                "this session was signed out; sign in again",
            ));
        }
        let pair = WebSocketPair::new()?;
        self.state
            .accept_websocket_with_tags(&pair.server, &[agent.as_str()]);
        pair.server
            .serialize_attachment(SocketInfo { agent, exp })?;
        let _ = pair.server.send_with_str(encode(&frame));
        Ok(Response::from_websocket(pair.client)?)
    }

    async fn notify(&self, n: ToTenant) -> ApiResult<serde_json::Value> {
        match n {
            ToTenant::CustomerMessage {
                conversation,
                message,
            } => {
                if self
                    .run(Command::CustomerActivity {
                        conversation: conversation.clone(),
                    })
                    .is_ok()
                {
                    self.schedule().await?;
                }
                self.send_to(
                    &self.participants(&conversation)?,
                    &AgentServerFrame::Message {
                        conversation: conversation.clone(),
                        message: message.clone(),
                    },
                );
            }
            ToTenant::CustomerTyping {
                conversation,
                typing,
                name,
            } => {
                self.send_to(
                    &self.participants(&conversation)?,
                    &AgentServerFrame::Typing {
                        conversation: conversation.clone(),
                        typing,
                        name: name.clone(),
                    },
                );
            }
            ToTenant::CustomerEnd { conversation } => {
                self.exec(Command::CustomerEnd { conversation }).await?
            }
        }
        Ok(serde_json::json!({ "ok": true }))
    }

    async fn on_agent_frame(&self, ws: &WebSocket, info: &SocketInfo, text: &str) -> ApiResult<()> {
        if info.exp <= now().timestamp() {
            let _ = ws.close(Some(4001), Some("session expired"));
            return Err(ApiError::unauthorized(
                "the session has expired; sign in again",
            ));
        }
        let frame: AgentFrame = shared::protocol::decode(text)?;
        let agent = info.agent.clone();
        let reply = |f: &AgentServerFrame| {
            let _ = ws.send_with_str(encode(f));
        };
        match frame {
            AgentFrame::Ping => reply(&AgentServerFrame::Pong),
            AgentFrame::SetState { state } => self.exec(Command::SetState { agent, state }).await?,
            AgentFrame::Accept { conversation } => {
                self.exec(Command::Accept {
                    agent,
                    conversation,
                })
                .await?
            }
            AgentFrame::Transfer {
                conversation,
                target,
            } => {
                self.exec(Command::Transfer {
                    agent,
                    conversation,
                    target,
                })
                .await?
            }
            AgentFrame::Conference {
                conversation,
                guest,
            } => {
                self.exec(Command::RequestConference {
                    agent,
                    conversation,
                    guest,
                })
                .await?
            }
            AgentFrame::EndConference { conversation } => {
                self.exec(Command::EndConference {
                    agent,
                    conversation,
                })
                .await?
            }
            AgentFrame::End { conversation } => {
                self.exec(Command::End {
                    agent,
                    conversation,
                })
                .await?
            }
            AgentFrame::WrapUp {
                conversation,
                reason,
                next,
            } => {
                self.exec(Command::WrapUp {
                    agent,
                    conversation,
                    reason,
                    next,
                })
                .await?
            }
            AgentFrame::SignOut => {
                self.exec(Command::SignOut {
                    agent: agent.clone(),
                })
                .await?;
                for s in self.sockets_of(&agent) {
                    let _ = s.close(Some(1000), Some("signed out"));
                }
            }
            AgentFrame::LeftMessages => {
                let messages = self
                    .closed_list()?
                    .into_iter()
                    .filter(|c| c.kind == shared::engine::ConversationKind::LeftMessage)
                    .take(100)
                    .collect();
                reply(&AgentServerFrame::LeftMessages { messages });
            }
            AgentFrame::Targets => {
                let (queues, agents) = self.with_engine(|t| t.targets(&agent))??;
                reply(&AgentServerFrame::Targets { queues, agents });
            }
            AgentFrame::Template {
                conversation,
                template,
            } => {
                let text = self.with_engine(|t| {
                    t.render_template(&agent, &conversation, &template, now())
                })??;
                reply(&AgentServerFrame::Template { conversation, text });
            }
            AgentFrame::Typing {
                conversation,
                typing,
            } => {
                self.with_engine(|t| t.can_write(&agent, &conversation))??;
                let name = self.with_engine(|t| {
                    t.config()
                        .agent(&agent)
                        .map(|a| a.name.clone())
                        .unwrap_or_default()
                })?;
                let _: serde_json::Value = call(
                    &stub(&self.env, "CONVERSATIONS", conversation.as_str())?,
                    "/internal",
                    &ToConversation::AgentTyping {
                        name: name.clone(),
                        typing,
                    },
                )
                .await?;
                let others: Vec<AgentId> = self
                    .participants(&conversation)?
                    .into_iter()
                    .filter(|p| p != &agent)
                    .collect();
                self.send_to(
                    &others,
                    &AgentServerFrame::Typing {
                        conversation: conversation.clone(),
                        typing,
                        name: name.clone(),
                    },
                );
            }
            AgentFrame::Send {
                conversation,
                client_id,
                text,
            } => {
                self.agent_send(ws, agent, conversation, client_id, text)
                    .await?
            }
        }
        Ok(())
    }

    async fn agent_send(
        &self,
        ws: &WebSocket,
        agent: AgentId,
        conversation: ConversationId,
        client_id: ClientMsgId,
        text: String,
    ) -> ApiResult<()> {
        self.with_engine(|t| t.can_write(&agent, &conversation))??;
        // Explain the text rules before any call.
        shared::text::MessageText::new(&text, shared::text::Writer::Agent)?;
        let name = self.with_engine(|t| {
            t.config()
                .agent(&agent)
                .map(|a| a.name.clone())
                .unwrap_or_default()
        })?;
        let r: Appended = call(
            &stub(&self.env, "CONVERSATIONS", conversation.as_str())?,
            "/internal",
            &ToConversation::AgentSend {
                agent: agent.clone(),
                name,
                client_id: client_id.clone(),
                text,
            },
        )
        .await?;
        let _ = ws.send_with_str(encode(&AgentServerFrame::Ack {
            conversation: conversation.clone(),
            client_id,
            seq: r.message.seq,
        }));
        if !r.duplicate {
            self.send_to(
                &self.participants(&conversation)?,
                &AgentServerFrame::Message {
                    conversation: conversation.clone(),
                    message: r.message.clone(),
                },
            );
        }
        Ok(())
    }

    fn closed_list(&self) -> ApiResult<Vec<ClosedConversation>> {
        let rows: Vec<ValueRow> = self
            .sql()
            .exec(
                "SELECT value FROM closed ORDER BY created_at DESC LIMIT 500",
                None,
            )?
            .to_array()?;
        Ok(rows
            .iter()
            .map(|r| serde_json::from_str(&r.value))
            .collect::<Result<_, _>>()?)
    }

    async fn route(&self, path: &str, text: &str) -> ApiResult<serde_json::Value> {
        match path {
            "/site" => {
                let w: WithCaller<SiteKey> = serde_json::from_str(text)?;
                self.check_origin(&w.caller, &w.body)?;
                let info = self.with_engine(|t| -> ApiResult<SiteInfo> {
                    let s = t.config().site(&w.body).ok_or_else(|| {
                        ApiError::not_found("unknown_site", format!("unknown site {}", w.body))
                    })?;
                    Ok(SiteInfo {
                        site: s.key.clone(),
                        name: s.name.clone(),
                        language: s.language.clone(),
                        availability: t.availability(&s.key, now())?,
                    })
                })??;
                Ok(serde_json::to_value(info)?)
            }
            "/start" => Ok(serde_json::to_value(
                self.start(serde_json::from_str(text)?).await?,
            )?),
            "/leave-message" => {
                let w: WithCaller<LeaveMessageRequest> = serde_json::from_str(text)?;
                self.start_limiter
                    .borrow_mut()
                    .hit(&w.caller.ip, now())
                    .map_err(ApiError::rate_limited)?;
                self.check_origin(&w.caller, &w.body.site)?;
                let name = shared::text::validate_name(&w.body.name)
                    .map_err(|e| ApiError::bad_request(e.code(), format!("name: {e}")))?;
                let id = ConversationId::new(auth::random_id().map_err(ApiError::internal)?)?;
                let customer = Customer {
                    name,
                    email: w.body.email.filter(|e| !e.is_empty()),
                    verified_user_id: None,
                };
                self.exec(Command::LeaveMessage {
                    conversation: id.clone(),
                    site: w.body.site,
                    customer,
                    text: w.body.text,
                })
                .await?;
                Ok(serde_json::json!({ "id": id }))
            }
            "/sign-in" => {
                let (r, fx) = self.sign_in(serde_json::from_str(text)?)?;
                self.schedule().await?;
                self.deliver(fx).await;
                Ok(serde_json::to_value(r)?)
            }
            "/notify" => self.notify(serde_json::from_str(text)?).await,
            "/admin/get-config" => {
                Ok(serde_json::json!({ "config": self.with_engine(|t| t.config().clone())? }))
            }
            "/admin/put-config" => {
                let admin: AdminConfig = serde_json::from_str(text)?;
                let sites = admin.config.sites.iter().map(|s| s.key.clone()).collect();
                let _: serde_json::Value = call(
                    &stub(&self.env, "DIRECTORY", "directory")?,
                    "/claim",
                    &crate::directory_do::Claim {
                        tenant: self.tenant_name()?,
                        sites,
                    },
                )
                .await?;
                self.install_config(admin)?;
                self.exec(Command::Tick).await?;
                Ok(serde_json::json!({ "ok": true }))
            }
            "/admin/closed" => Ok(serde_json::to_value(self.closed_list()?)?),
            "/admin/closed-one" => {
                let id: ConversationId = serde_json::from_str(text)?;
                let rec = self
                    .closed_list()?
                    .into_iter()
                    .find(|c| c.id == id)
                    .ok_or_else(|| {
                        ApiError::not_found(
                            "unknown_conversation",
                            format!("unknown closed conversation {id}"),
                        )
                    })?;
                let transcript = self.read(&id).await;
                Ok(serde_json::json!({ "conversation": rec, "transcript": transcript }))
            }
            _ => Err(ApiError::not_found("no_such_route", path.to_owned())),
        }
    }
}

impl DurableObject for TenantObject {
    fn new(state: State, env: Env) -> Self {
        let start = env_u32(&env, "RATE_START_PER_MINUTE", 30);
        let sign_in = env_u32(&env, "RATE_SIGN_IN_PER_MINUTE", 30);
        Self {
            state,
            env,
            engine: RefCell::new(None),
            name: RefCell::new(None),
            start_limiter: RefCell::new(RateLimiter::new(start, 60)),
            sign_in_limiter: RefCell::new(RateLimiter::new(sign_in, 60)),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let name = req.headers().get(OBJECT_NAME_HEADER).ok().flatten();
        if let Err(e) = self.load(name) {
            // A tenant without configuration may still be configured by an admin.
            if req.path() != "/admin/put-config" {
                return e.to_response();
            }
        }
        let path = req.path();
        if path == "/agent-ws" {
            return match self.accept_agent(&req).await {
                Ok(r) => Ok(r),
                Err(e) => e.to_response(),
            };
        }
        let text = req.text().await.unwrap_or_default();
        respond(self.route(&path, &text).await)
    }

    async fn alarm(&self) -> worker::Result<Response> {
        if self.load(None).is_ok() {
            if let Err(e) = self.exec(Command::Tick).await {
                worker::console_error!("alarm: {e}");
            }
        }
        Response::ok("ok")
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        let err = |code: &str, m: String| {
            let _ = ws.send_with_str(encode(&AgentServerFrame::Error {
                code: code.into(),
                message: m,
            }));
        };
        let WebSocketIncomingMessage::String(text) = message else {
            err(
                "invalid_frame",
                "binary frames are not supported; send JSON text".into(),
            );
            return Ok(());
        };
        let Some(info) = ws.deserialize_attachment::<SocketInfo>().ok().flatten() else {
            let _ = ws.close(Some(4001), Some("unknown session"));
            return Ok(());
        };
        if let Err(e) = self.load(None) {
            err(&e.code, e.message);
            return Ok(());
        }
        if let Err(e) = self.on_agent_frame(&ws, &info, &text).await {
            err(&e.code, e.message);
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
