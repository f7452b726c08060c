//! One Durable Object per tenant: it **routes** — agents, queues, offers, the
//! transfer and conference handshakes, wrap-up — and is never on a message's path.
//!
//! Rules:
//! - Every state change is decided by [`shared::engine::Tenant::handle`] and goes
//!   through [`TenantObject::commit`]: in one synchronous run (which Durable Objects
//!   commit atomically) it writes the rows the command changed (`agents`,
//!   `conversations`), the closed records, and one outbox row per conversation that
//!   must hear about it. It returns an [`Outcome`] that must be delivered: agent
//!   events to the agents' control sockets here, outbox rows to the conversations.
//! - Storage is rows: `kv` (name, schema version, configuration, password hashes,
//!   site secrets), `agents`, `conversations`, `closed`, `outbox`, `applied`. A command
//!   writes only its rows, in their stored form ([`StoredAgent`],
//!   [`StoredConversation`]), never the engine's internal types. [`SCHEMA_VERSION`] is
//!   stored; [`TenantObject::migrate`] brings older layouts forward (version 1 kept the
//!   whole engine in one value).
//! - The alarm runs the engine's deadlines ([`Command::Tick`]) and retries the outbox.
//! - Reports from conversations (customer ended, inactive) carry a key that is
//!   applied once, in the same transaction as the state change.
//! - Agents authenticate with a password (PBKDF2) and get a signed, expiring session
//!   token; their control socket checks expiry on every frame. Chat sockets are opened
//!   on the conversation with a ticket issued here for the agent's current access.
//! - Sign-in attempts and conversation starts are rate limited per IP.

use crate::auth::{self, PasswordHash, Session, Ticket};
use crate::error::{ApiError, ApiResult};
use crate::outbox::{Applied, Faults, Outbox};
use crate::{
    answer, at_ms, call, env_string, env_u32, now, session_secret, stub, OBJECT_NAME_HEADER,
};
use serde::{Deserialize, Serialize};
use shared::engine::{
    AgentEvent, AgentRuntime, ClosedConversation, Command, Conversation, ConversationEvent,
    Customer, Effect, StoredAgent, StoredConversation, Tenant,
};
use shared::ids::{AgentId, ConversationId, SiteKey, TenantId};
use shared::intake::Identity;
use shared::protocol::{
    encode, AdminConfig, AgentFrame, AgentServerFrame, ReasonInfo, SignInRequest, SignInResponse,
    SiteInfo, StartResponse, TemplateInfo,
};
use shared::ratelimit::RateLimiter;
use shared::rpc::{
    self, Caller, ClosedReply, ConfigReply, ConversationReport, Deliver, Delivered, Done,
    MessageLeft, ReadTranscript, Report, ToTenant, WithCaller,
};
use shared::transcript::Message;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use worker::{
    durable_object, DurableObject, Env, Request, Response, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

/// Layout of this object's storage. 1: one `engine` value; 2: rows.
pub const SCHEMA_VERSION: i64 = 2;

/// What an agent control socket remembers across hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SocketInfo {
    agent: AgentId,
    exp: i64,
}

/// What a committed command leaves to do.
#[must_use = "a committed outcome must be delivered with TenantObject::finish"]
pub struct Outcome {
    agent_events: Vec<(AgentId, AgentEvent)>,
    targets: Vec<ConversationId>,
}

#[durable_object]
pub struct TenantObject {
    state: State,
    env: Env,
    engine: RefCell<Option<Tenant>>,
    name: RefCell<Option<TenantId>>,
    start_limiter: RefCell<RateLimiter>,
    sign_in_limiter: RefCell<RateLimiter>,
    faults: Faults,
    /// Conversations a delivery loop runs for now.
    delivering: RefCell<BTreeSet<String>>,
    /// The alarm time last set (ms), to skip needless writes.
    alarm_at: Cell<Option<i64>>,
}

#[derive(Deserialize)]
struct ValueRow {
    value: String,
}

#[derive(Deserialize)]
struct IdValueRow {
    id: String,
    value: String,
}

fn not_loaded() -> ApiError {
    ApiError::not_found("unknown_tenant", "this tenant has no configuration")
}

fn now_ms() -> i64 {
    now().timestamp_millis()
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

    fn ensure_tables(&self) -> ApiResult<()> {
        let sql = self.sql();
        for ddl in [
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS closed (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, value TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ] {
            sql.exec(ddl, None)?;
        }
        Outbox { sql: &sql }.ensure()?;
        Applied { sql: &sql }.ensure()?;
        Ok(())
    }

    /// Loads the engine from its rows (seeding the demo tenant on first use when enabled).
    fn load(&self, req_name: Option<String>) -> ApiResult<()> {
        if self.engine.borrow().is_some() {
            return Ok(());
        }
        self.ensure_tables()?;
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
        self.migrate()?;
        if let Some(cfg) = self.kv_get("config")? {
            let config = serde_json::from_str(&cfg)?;
            let agents: Vec<IdValueRow> = self
                .sql()
                .exec("SELECT id, value FROM agents", None)?
                .to_array()?;
            let agents = agents
                .into_iter()
                .map(|r| -> ApiResult<(AgentId, AgentRuntime)> {
                    let stored: StoredAgent = serde_json::from_str(&r.value)?;
                    Ok((AgentId::new(r.id)?, stored.into()))
                })
                .collect::<ApiResult<Vec<_>>>()?;
            let convs: Vec<ValueRow> = self
                .sql()
                .exec("SELECT value FROM conversations", None)?
                .to_array()?;
            let convs = convs
                .iter()
                .map(|r| {
                    serde_json::from_str::<StoredConversation>(&r.value).map(Conversation::from)
                })
                .collect::<Result<Vec<_>, _>>()?;
            *self.engine.borrow_mut() = Some(Tenant::restore(config, agents, convs)?);
            return Ok(());
        }
        if name == "demo" && env_string(&self.env, "DEMO_SEED").as_deref() == Some("true") {
            let demo: AdminConfig = serde_json::from_str(crate::DEMO_TENANT)?;
            self.install_config(demo)?;
            return Ok(());
        }
        Err(not_loaded())
    }

    /// Brings stored data to [`SCHEMA_VERSION`]. Each step runs in one synchronous
    /// run, so a crash leaves either the old or the new layout.
    fn migrate(&self) -> ApiResult<()> {
        let version: i64 = self
            .kv_get("schema_version")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        if version < 2 {
            // Version 1: the whole engine as one JSON value under `engine`.
            if let Some(json) = self.kv_get("engine")? {
                let mut t: Tenant = serde_json::from_str(&json)?;
                t.assign_queue_keys();
                t.mark_all_changed();
                self.kv_put("config", &serde_json::to_string(t.config())?)?;
                let ch = t.take_changes();
                self.write_rows(&t, &ch)?;
                self.sql()
                    .exec("DELETE FROM kv WHERE key = 'engine'", None)?;
            }
            self.kv_put("schema_version", "2")?;
        }
        Ok(())
    }

    /// Writes the changed rows of `t` (present rows upserted, absent ones deleted).
    fn write_rows(&self, t: &Tenant, ch: &shared::engine::Changes) -> ApiResult<()> {
        let sql = self.sql();
        for a in &ch.agents {
            match t.agent(a) {
                Some(rt) => sql.exec(
                    "INSERT OR REPLACE INTO agents (id, value) VALUES (?, ?)",
                    vec![
                        a.as_str().into(),
                        serde_json::to_string(&StoredAgent::from(rt))?.into(),
                    ],
                )?,
                None => sql.exec("DELETE FROM agents WHERE id = ?", vec![a.as_str().into()])?,
            };
        }
        for c in &ch.conversations {
            match t.conversation(c) {
                Some(conv) => sql.exec(
                    "INSERT OR REPLACE INTO conversations (id, value) VALUES (?, ?)",
                    vec![
                        c.as_str().into(),
                        serde_json::to_string(&StoredConversation::from(conv))?.into(),
                    ],
                )?,
                None => sql.exec(
                    "DELETE FROM conversations WHERE id = ?",
                    vec![c.as_str().into()],
                )?,
            };
        }
        Ok(())
    }

    /// Validates and stores a configuration with passwords and site secrets.
    fn install_config(&self, admin: AdminConfig) -> ApiResult<()> {
        let engine = self.check_config(&admin)?;
        self.write_config(&admin, engine)
    }

    /// Validates a configuration against the stored state; writes nothing.
    fn check_config(&self, admin: &AdminConfig) -> ApiResult<Tenant> {
        let engine = match self.engine.borrow().clone() {
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
        Ok(engine)
    }

    /// Stores a configuration [`Self::check_config`] accepted.
    fn write_config(&self, admin: &AdminConfig, mut engine: Tenant) -> ApiResult<()> {
        // Hash first (slow), then write everything in one synchronous run.
        let hashes = admin
            .passwords
            .iter()
            .map(|(a, pw)| {
                auth::hash_password(pw)
                    .map_err(ApiError::internal)
                    .and_then(|h| Ok((a.clone(), serde_json::to_string(&h)?)))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        for (a, h) in hashes {
            self.kv_put(&format!("pw:{a}"), &h)?;
        }
        for (s, secret) in &admin.site_secrets {
            self.kv_put(&format!("secret:{s}"), secret)?;
        }
        self.kv_put("config", &serde_json::to_string(engine.config())?)?;
        self.kv_put("schema_version", &SCHEMA_VERSION.to_string())?;
        engine.mark_all_changed();
        let ch = engine.take_changes();
        self.write_rows(&engine, &ch)?;
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

    /// Runs one command and, in the same synchronous run, writes its rows, its closed
    /// records and its outbox. Nothing is delivered yet: see [`Self::finish`].
    fn commit(&self, cmd: Command) -> ApiResult<Outcome> {
        self.commit_with(cmd, None, None)
    }

    /// [`Self::commit`], also recording an applied idempotency key, or creating the
    /// conversation a start decided (its creation travels in the same outbox row).
    fn commit_with(
        &self,
        cmd: Command,
        applied_key: Option<&str>,
        init: Option<rpc::Init>,
    ) -> ApiResult<Outcome> {
        let at = now();
        let mut e = self.engine.borrow_mut();
        let t = e.as_mut().ok_or_else(not_loaded)?;
        let fx = t.handle(at, cmd)?;
        let ch = t.take_changes();
        let written = self.write_effects(t, &ch, fx, applied_key, init, at.timestamp_millis());
        if written.is_err() {
            // Storage and memory may differ now: reload from storage next time.
            *e = None;
        }
        written
    }

    fn write_effects(
        &self,
        t: &Tenant,
        ch: &shared::engine::Changes,
        fx: Vec<Effect>,
        applied_key: Option<&str>,
        mut init: Option<rpc::Init>,
        at_ms: i64,
    ) -> ApiResult<Outcome> {
        self.write_rows(t, ch)?;
        let sql = self.sql();
        let mut agent_events = Vec::new();
        let mut batches: Vec<(ConversationId, Vec<ConversationEvent>)> = Vec::new();
        for e in fx {
            match e {
                Effect::Agent { agent, event } => agent_events.push((agent, event)),
                Effect::Conversation {
                    conversation,
                    event,
                } => match batches.iter_mut().find(|(c, _)| c == &conversation) {
                    Some((_, v)) => v.push(event),
                    None => batches.push((conversation, vec![event])),
                },
                Effect::Closed(c) => {
                    sql.exec(
                        "INSERT OR REPLACE INTO closed (id, created_at, value) VALUES (?, ?, ?)",
                        vec![
                            c.id.as_str().into(),
                            c.created_at.timestamp().into(),
                            serde_json::to_string(&c)?.into(),
                        ],
                    )?;
                }
            }
        }
        if let Some(i) = &init {
            if !batches.iter().any(|(c, _)| c == &i.conversation) {
                batches.push((i.conversation.clone(), vec![]));
            }
        }
        // An offer shows the thread: its conversation answers the delivery with it.
        let offered: BTreeSet<&ConversationId> = agent_events
            .iter()
            .filter_map(|(_, e)| match e {
                AgentEvent::Offer(o) => Some(&o.conversation),
                _ => None,
            })
            .collect();
        let outbox = Outbox { sql: &sql };
        let tenant = self.tenant_name()?;
        let mut targets = Vec::new();
        for (c, events) in batches {
            let key = format!(
                "{tenant}:{}",
                auth::random_id().map_err(ApiError::internal)?
            );
            let body = serde_json::to_string(&Deliver {
                key: key.clone(),
                init: init.take_if(|i| i.conversation == c),
                want_thread: offered.contains(&c),
                events,
            })?;
            outbox.push(&key, c.as_str(), &body, at_ms)?;
            targets.push(c);
        }
        if let Some(k) = applied_key {
            Applied { sql: &sql }.record(k, at_ms)?;
        }
        Ok(Outcome {
            agent_events,
            targets,
        })
    }

    /// Delivers an outcome: agent events to control sockets (with chat tickets),
    /// then sets the alarm, then delivers the outbox rows to their conversations.
    async fn finish(&self, o: Outcome) {
        if let Err(e) = self.schedule().await {
            worker::console_error!("schedule: {e}");
        }
        let threads = self
            .deliver_all(o.targets.iter().map(|c| c.to_string()).collect())
            .await;
        self.send_agent_events(o.agent_events, threads).await;
    }

    /// Runs, persists, schedules and delivers.
    async fn exec(&self, cmd: Command) -> ApiResult<()> {
        let o = self.commit(cmd)?;
        self.finish(o).await;
        Ok(())
    }

    /// Sets the alarm to the earliest engine deadline or outbox retry.
    async fn schedule(&self) -> ApiResult<()> {
        let engine_next = self.with_engine(|t| t.next_deadline())?;
        let sql = self.sql();
        let outbox_next = Outbox { sql: &sql }.next_due()?;
        let next = engine_next
            .map(|d| d.timestamp_millis())
            .into_iter()
            .chain(outbox_next)
            .min();
        let storage = self.state.storage();
        let current = self.alarm_at.get();
        match next {
            Some(n) => {
                let stale = current.is_none_or(|c| n < c || c <= now_ms());
                if stale {
                    storage.set_alarm(at_ms(n.max(now_ms() + 1))).await?;
                    self.alarm_at.set(Some(n));
                }
            }
            None => {
                if current.is_some() {
                    storage.delete_alarm().await?;
                    self.alarm_at.set(None);
                }
            }
        }
        Ok(())
    }

    /// Delivers the outbox rows of each target, targets concurrently; gives the
    /// threads that conversations answered with (for offers).
    async fn deliver_all(&self, targets: Vec<String>) -> BTreeMap<String, Vec<Message>> {
        let mut seen = BTreeSet::new();
        let futs: Vec<_> = targets
            .into_iter()
            .filter(|t| seen.insert(t.clone()))
            .map(|t| self.deliver_target(t))
            .collect();
        futures::future::join_all(futs)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Delivers one conversation's rows in order; stops at the first failure.
    async fn deliver_target(&self, target: String) -> Option<(String, Vec<Message>)> {
        if !self.delivering.borrow_mut().insert(target.clone()) {
            return None; // The running loop re-reads the rows.
        }
        let mut thread = None;
        if let Err(e) = self.deliver_rows(&target, &mut thread).await {
            worker::console_error!("outbox to {target}: {e}");
        }
        self.delivering.borrow_mut().remove(&target);
        thread.map(|t| (target, t))
    }

    async fn deliver_rows(&self, target: &str, thread: &mut Option<Vec<Message>>) -> ApiResult<()> {
        let sql = self.sql();
        let env = &self.env;
        let (_, answer) = Outbox { sql: &sql }
            .drain(target, &self.faults, |body| async move {
                let deliver: Deliver = serde_json::from_str(&body)?;
                Ok(call(&stub(env, "CONVERSATIONS", target)?, deliver)
                    .await?
                    .thread)
            })
            .await?;
        if answer.is_some() {
            *thread = answer;
        }
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
            Ok(s) => call(&s, ReadTranscript { after: 0 })
                .await
                .unwrap_or_default(),
            Err(_) => vec![],
        }
    }

    /// A ticket for `agent` to open `conversation`'s socket with its current access.
    fn ticket_for(&self, agent: &AgentId, conversation: &ConversationId) -> ApiResult<String> {
        let (version, access) = self
            .with_engine(|t| {
                t.conversation(conversation)
                    .map(|c| (c.access_version, c.announced_access.clone()))
            })?
            .ok_or_else(|| {
                ApiError::not_found(
                    "unknown_conversation",
                    format!("unknown conversation {conversation}"),
                )
            })?;
        let p = access.iter().find(|p| &p.agent == agent).ok_or_else(|| {
            ApiError::forbidden(
                "not_participant",
                format!("you are not a participant of conversation {conversation}"),
            )
        })?;
        Ok(auth::sign_ticket(
            &session_secret(&self.env)?,
            &Ticket {
                tenant: self.tenant_name()?,
                agent: agent.clone(),
                name: p.name.clone(),
                conversation: conversation.clone(),
                version,
                can_write: p.can_write,
                exp: now().timestamp() + auth::TICKET_SECS,
            },
        ))
    }

    async fn send_agent_events(
        &self,
        events: Vec<(AgentId, AgentEvent)>,
        mut threads: BTreeMap<String, Vec<Message>>,
    ) {
        for (agent, event) in events {
            match event {
                AgentEvent::Offer(offer) => {
                    let thread = match threads.remove(offer.conversation.as_str()) {
                        Some(t) => t,
                        None => self.read(&offer.conversation).await,
                    };
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
                    match self.ticket_for(&agent, &c) {
                        Ok(ticket) => self.send_agent(
                            &agent,
                            &AgentServerFrame::Ticket {
                                conversation: c,
                                ticket,
                            },
                        ),
                        Err(e) => worker::console_error!("ticket for {agent} in {c}: {e}"),
                    }
                }
                event => self.send_agent(&agent, &AgentServerFrame::Event { event }),
            }
        }
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

    async fn start(
        &self,
        w: WithCaller<shared::protocol::StartRequest>,
    ) -> ApiResult<StartResponse> {
        self.start_limiter
            .borrow_mut()
            .hit(&w.caller.ip, now())
            .map_err(ApiError::rate_limited)?;
        let b = w.body;
        let allowed = self.check_origin(&w.caller, &b.site)?;
        let intake = shared::intake::check_start(&b)?;
        let verified_user_id = match intake.identity {
            Identity::Anonymous => None,
            Identity::Claimed { user_id, user_hash } => {
                let secret = self.kv_get(&format!("secret:{}", b.site))?.ok_or_else(|| {
                    ApiError::bad_request(
                        "identity_not_configured",
                        format!("site {} has no identity secret", b.site),
                    )
                })?;
                if !auth::check_user_hash(&secret, &user_id, &user_hash) {
                    return Err(ApiError::forbidden(
                        "identity_invalid",
                        "user_hash does not match user_id",
                    ));
                }
                Some(user_id)
            }
        };
        // Refuse before creating anything (hours, agents, queue and tenant limits).
        self.with_engine(|t| t.check_start(&b.site, now()))??;
        let id = ConversationId::new(auth::random_id().map_err(ApiError::internal)?)?;
        let token = auth::new_visitor_token().map_err(ApiError::internal)?;
        let customer = Customer {
            name: intake.name,
            email: intake.email,
            verified_user_id,
        };
        let init = rpc::Init {
            tenant: self.tenant_name()?,
            conversation: id.clone(),
            customer: customer.clone(),
            token_hash: auth::sha256_hex(&token),
            client_id: b.client_id.clone(),
            text: b.text.clone(),
            allowed_origins: allowed,
        };
        // The conversation is created by the first delivery of this decision.
        let o = self.commit_with(
            Command::Start {
                conversation: id.clone(),
                site: b.site.clone(),
                customer,
            },
            None,
            Some(init),
        )?;
        let status = self
            .with_engine(|t| t.visitor_status(&id))?
            .unwrap_or(shared::engine::VisitorStatus::Ended);
        self.finish(o).await;
        Ok(StartResponse {
            conversation: id,
            token,
            status,
        })
    }

    async fn leave_message(
        &self,
        w: WithCaller<shared::protocol::LeaveMessageRequest>,
    ) -> ApiResult<MessageLeft> {
        self.start_limiter
            .borrow_mut()
            .hit(&w.caller.ip, now())
            .map_err(ApiError::rate_limited)?;
        self.check_origin(&w.caller, &w.body.site)?;
        let name = shared::text::validate_name(&w.body.name)
            .map_err(|e| ApiError::bad_request(e.code(), format!("name: {e}")))?;
        let email = shared::text::validate_email(w.body.email.as_deref())?;
        let id = ConversationId::new(auth::random_id().map_err(ApiError::internal)?)?;
        let customer = Customer {
            name,
            email,
            verified_user_id: None,
        };
        self.exec(Command::LeaveMessage {
            conversation: id.clone(),
            site: w.body.site,
            customer,
            text: w.body.text,
        })
        .await?;
        Ok(MessageLeft { id })
    }

    fn sign_in(&self, w: WithCaller<SignInRequest>) -> ApiResult<(SignInResponse, Outcome)> {
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
        let o = self.commit(Command::SignIn {
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
            o,
        ))
    }

    async fn snapshot_frame(&self, agent: &AgentId) -> ApiResult<AgentServerFrame> {
        let (snapshot, cfg) = self.with_engine(|t| (t.snapshot(agent), t.config().clone()))?;
        let snapshot = snapshot?;
        let mut transcripts = BTreeMap::new();
        if let Some(o) = &snapshot.offer {
            let m = self.read(&o.conversation).await;
            transcripts.insert(o.conversation.clone(), m);
        }
        let mut tickets = BTreeMap::new();
        for c in snapshot.chats.iter().chain(snapshot.wrap_ups.iter()) {
            if let Ok(t) = self.ticket_for(agent, &c.conversation) {
                tickets.insert(c.conversation.clone(), t);
            }
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
            tickets,
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
        let q = |k: &str| crate::query(req, k);
        let agent = AgentId::new(q("agent"))?;
        let exp: i64 = q("exp").parse().unwrap_or(0);
        let signed_in =
            self.with_engine(|t| t.agent(&agent).is_some_and(|a| a.state.is_signed_in()))?;
        if !signed_in {
            return Err(ApiError::unauthorized(
                "this session was signed out; sign in again",
            ));
        }
        let frame = self.snapshot_frame(&agent).await?;
        let pair = WebSocketPair::new()?;
        self.state
            .accept_websocket_with_tags(&pair.server, &[agent.as_str()]);
        pair.server
            .serialize_attachment(SocketInfo { agent, exp })?;
        let _ = pair.server.send_with_str(encode(&frame));
        Ok(Response::from_websocket(pair.client)?)
    }

    /// A conversation's report, applied once per key.
    async fn on_report(&self, r: Report) -> ApiResult<Delivered> {
        let sql = self.sql();
        if (Applied { sql: &sql }).seen(&r.key)? {
            return Ok(Delivered {
                duplicate: true,
                thread: None,
            });
        }
        let cmd = match r.report {
            ConversationReport::CustomerEnded => Command::CustomerEnd {
                conversation: r.conversation.clone(),
            },
            ConversationReport::Inactive => Command::Inactive {
                conversation: r.conversation.clone(),
            },
        };
        match self.commit_with(cmd, Some(&r.key), None) {
            Ok(o) => {
                self.finish(o).await;
                Ok(Delivered {
                    duplicate: false,
                    thread: None,
                })
            }
            // Already over (e.g. the agent ended it first): the report is moot, and applied.
            Err(e)
                if matches!(
                    e.code.as_str(),
                    "already_ended" | "not_active" | "unknown_conversation"
                ) =>
            {
                Applied { sql: &sql }.record(&r.key, now_ms())?;
                Ok(Delivered {
                    duplicate: false,
                    thread: None,
                })
            }
            Err(e) => Err(e),
        }
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
            AgentFrame::Ticket { conversation } => {
                let ticket = self.ticket_for(&agent, &conversation)?;
                reply(&AgentServerFrame::Ticket {
                    conversation,
                    ticket,
                });
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
                let closed = self.closed_list()?;
                let mut messages = self.with_engine(|t| t.left_messages_for(&agent, &closed))?;
                messages.truncate(100);
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

    fn closed_one(&self, id: &ConversationId) -> ApiResult<ClosedConversation> {
        let rows: Vec<ValueRow> = self
            .sql()
            .exec(
                "SELECT value FROM closed WHERE id = ?",
                vec![id.as_str().into()],
            )?
            .to_array()?;
        let row = rows.into_iter().next().ok_or_else(|| {
            ApiError::not_found(
                "unknown_conversation",
                format!("unknown closed conversation {id}"),
            )
        })?;
        Ok(serde_json::from_str(&row.value)?)
    }

    fn site_info(&self, w: WithCaller<SiteKey>) -> ApiResult<SiteInfo> {
        self.check_origin(&w.caller, &w.body)?;
        self.with_engine(|t| -> ApiResult<SiteInfo> {
            let s = t.config().site(&w.body).ok_or_else(|| {
                ApiError::not_found("unknown_site", format!("unknown site {}", w.body))
            })?;
            Ok(SiteInfo {
                site: s.key.clone(),
                name: s.name.clone(),
                language: s.language.clone(),
                availability: t.availability(&s.key, now())?,
            })
        })?
    }

    async fn put_config(&self, admin: AdminConfig) -> ApiResult<Done> {
        // Refuse a bad configuration before the directory hears of its sites.
        let engine = self.check_config(&admin)?;
        let sites = admin.config.sites.iter().map(|s| s.key.clone()).collect();
        call(
            &stub(&self.env, "DIRECTORY", "directory")?,
            rpc::Claim {
                tenant: self.tenant_name()?,
                sites,
            },
        )
        .await?;
        self.write_config(&admin, engine)?;
        self.exec(Command::Tick).await?;
        Ok(Done {})
    }

    async fn rpc(&self, req: ToTenant) -> worker::Result<Response> {
        match req {
            ToTenant::Site(rpc::Site(w)) => answer::<rpc::Site>(self.site_info(w)),
            ToTenant::Start(rpc::Start(w)) => answer::<rpc::Start>(self.start(w).await),
            ToTenant::LeaveMessage(rpc::LeaveMessage(w)) => {
                answer::<rpc::LeaveMessage>(self.leave_message(w).await)
            }
            ToTenant::SignIn(rpc::SignIn(w)) => {
                let r = match self.sign_in(w) {
                    Ok((r, o)) => {
                        self.finish(o).await;
                        Ok(r)
                    }
                    Err(e) => Err(e),
                };
                answer::<rpc::SignIn>(r)
            }
            ToTenant::GetConfig(_) => answer::<rpc::GetConfig>(self.with_engine(|t| ConfigReply {
                config: t.config().clone(),
            })),
            ToTenant::PutConfig(rpc::PutConfig(admin)) => {
                answer::<rpc::PutConfig>(self.put_config(admin).await)
            }
            ToTenant::ListClosed(_) => answer::<rpc::ListClosed>(self.closed_list()),
            ToTenant::GetClosed(g) => {
                let r = match self.closed_one(&g.id) {
                    Ok(conversation) => Ok(ClosedReply {
                        transcript: self.read(&g.id).await,
                        conversation,
                    }),
                    Err(e) => Err(e),
                };
                answer::<rpc::GetClosed>(r)
            }
            ToTenant::Report(r) => answer::<Report>(self.on_report(r).await),
        }
    }
}

impl DurableObject for TenantObject {
    fn new(state: State, env: Env) -> Self {
        let start = env_u32(&env, "RATE_START_PER_MINUTE", 30);
        let sign_in = env_u32(&env, "RATE_SIGN_IN_PER_MINUTE", 30);
        let faults = Faults::from_env(&env);
        Self {
            state,
            env,
            engine: RefCell::new(None),
            name: RefCell::new(None),
            start_limiter: RefCell::new(RateLimiter::new(start, 60)),
            sign_in_limiter: RefCell::new(RateLimiter::new(sign_in, 60)),
            faults,
            delivering: RefCell::new(BTreeSet::new()),
            alarm_at: Cell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let name = req.headers().get(OBJECT_NAME_HEADER).ok().flatten();
        let path = req.path();
        if path == "/agent-ws" {
            if let Err(e) = self.load(name) {
                return e.to_response();
            }
            return match self.accept_agent(&req).await {
                Ok(r) => Ok(r),
                Err(e) => e.to_response(),
            };
        }
        let text = req.text().await.unwrap_or_default();
        let call: ToTenant = match serde_json::from_str(&text) {
            Ok(c) => c,
            Err(e) => return ApiError::bad_request("invalid_call", e.to_string()).to_response(),
        };
        if let Err(e) = self.load(name) {
            // A tenant without configuration may still be configured by an admin.
            if !matches!(call, ToTenant::PutConfig(_)) {
                return e.to_response();
            }
            if let Err(e) = self.ensure_tables() {
                return e.to_response();
            }
        }
        self.rpc(call).await
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm_at.set(None);
        if self.load(None).is_ok() {
            if let Err(e) = self.exec(Command::Tick).await {
                worker::console_error!("alarm: {e}");
            }
            let sql = self.sql();
            let due = Outbox { sql: &sql }
                .due_targets(now_ms())
                .unwrap_or_default();
            let _ = self.deliver_all(due).await;
            let week = 7 * 24 * 3600 * 1000;
            if let Err(e) = (Applied { sql: &sql }).prune(now_ms() - week) {
                worker::console_error!("prune: {e}");
            }
            if let Err(e) = self.schedule().await {
                worker::console_error!("schedule: {e}");
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
