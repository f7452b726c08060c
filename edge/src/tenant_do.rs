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
//!   site secrets), `agents`, `conversations`, `closed`, `outbox`, `applied`,
//!   `sessions`, `logins` (failed sign-ins), `limits` (rate-limit buckets), `tickets`
//!   (used ticket nonces). A command
//!   writes only its rows, in their stored form ([`StoredAgent`],
//!   [`StoredConversation`]), never the engine's internal types. [`SCHEMA_VERSION`] is
//!   stored; [`TenantObject::migrate`] brings older layouts forward (version 1 kept the
//!   whole engine in one value; version 2 had no session, login or limit tables and no
//!   `ended_at`/`kind` columns on `closed`).
//! - A tenant exists only once an admin configured it (or it is the demo): a request
//!   for any other name is refused before anything is written.
//! - The alarm runs the engine's deadlines ([`Command::Tick`]) and retries the outbox.
//! - Reports from conversations (customer ended, inactive) carry a key that is
//!   applied once, in the same transaction as the state change.
//! - Passwords are checked by the Worker (Web Crypto); here only the verdict is
//!   recorded: consecutive failures per login id back off and lock the account
//!   ([`shared::ratelimit::lockout_secs`]), and sign-in attempts and conversation starts are limited per
//!   address (IPv6 per /64) with token buckets stored in `limits`, so limits survive
//!   eviction.
//! - A session is a row; its token names it. Revoking (sign-out, password change, an
//!   admin) deletes the row, closes its control sockets with code 4003 and the reason,
//!   and tells the agent's conversations to close the agent's chat sockets.
//! - The control socket opens with a single-use ticket of a live session; chat sockets
//!   open on the conversation with a ticket issued here for the agent's current access.
//! - Closed conversations are kept `retention_days` after they ended; the alarm
//!   erases older ones (row here, transcript in the conversation, through the outbox).

use crate::auth::{self, ChatTicket, ControlTicket, Purpose, Session};
use crate::error::{ApiError, ApiResult};
use crate::outbox::{Applied, Faults, Outbox, Retry};
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
    encode, AdminConfig, AgentFrame, AgentServerFrame, ReasonInfo, SignInResponse, SiteInfo,
    StartResponse, TemplateInfo,
};
use shared::ratelimit::Bucket;
use shared::rpc::{
    self, Caller, ClosedReply, ConfigReply, ConversationReport, Deliver, Delivered, Done,
    MessageLeft, ReadTranscript, Report, ToTenant, WithCaller,
};
use shared::transcript::Message;
use shared::webhook::{DeadLetter, WebhookEvent, WebhookJob};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use worker::{
    durable_object, DurableObject, Env, Request, Response, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

/// Layout of this object's storage. 1: one `engine` value; 2: rows.
pub const SCHEMA_VERSION: i64 = 3;

/// What an agent control socket remembers across hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SocketInfo {
    agent: AgentId,
    exp: i64,
    #[serde(default)]
    sid: String,
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
    start_limit: u32,
    sign_in_limit: u32,
    /// Seconds in a day of retention (`TEST_RETENTION_DAY_SECS` shortens it in tests).
    day_secs: i64,
    faults: Faults,
    /// Conversations a delivery loop runs for now.
    delivering: RefCell<BTreeSet<String>>,
    /// The alarm time last set (ms), to skip needless writes.
    alarm_at: Cell<Option<i64>>,
    /// When supervisors last got the live view (ms), and whether a change since waits.
    supervisor_pushed: Cell<i64>,
    supervisor_dirty: Cell<bool>,
}

/// Socket tag of control sockets whose agent supervises.
const SUPERVISOR_TAG: &str = "supervisor";
/// `kv` key: when unused pictures are next swept (ms since the epoch).
const PICTURES_SWEEP_AT: &str = "pictures_sweep_at";
/// Least time between two live views to supervisors (a trailing push follows).
const SUPERVISOR_PUSH_MS: i64 = 250;

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

    fn kv_delete(&self, key: &str) -> ApiResult<()> {
        self.sql()
            .exec("DELETE FROM kv WHERE key = ?", vec![key.into()])?;
        Ok(())
    }

    /// Whether this object has any stored state (read only).
    fn exists(&self) -> ApiResult<bool> {
        let n = count(
            &self.sql(),
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'kv'",
            vec![],
        )?;
        Ok(n > 0)
    }

    fn ensure_tables(&self) -> ApiResult<()> {
        let sql = self.sql();
        for ddl in [
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS closed (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, value TEXT NOT NULL, ended_at INTEGER NOT NULL DEFAULT 0, kind TEXT NOT NULL DEFAULT 'chat')",

            "CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, agent TEXT NOT NULL, exp INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS logins (agent TEXT PRIMARY KEY, failures INTEGER NOT NULL, locked_until INTEGER NOT NULL, at INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS limits (key TEXT PRIMARY KEY, value TEXT NOT NULL, at INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS tickets (nonce TEXT PRIMARY KEY, exp INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS ratings (id TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS hooks (id TEXT PRIMARY KEY, value TEXT NOT NULL, at INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS dead_hooks (id TEXT PRIMARY KEY, value TEXT NOT NULL, at INTEGER NOT NULL)",
            // Reports that conversations parked (they hold the rows; listed here).
            "CREATE TABLE IF NOT EXISTS parked_reports (key TEXT PRIMARY KEY, conversation TEXT NOT NULL, value TEXT NOT NULL, at INTEGER NOT NULL)",
        ] {
            sql.exec(ddl, None)?;
        }
        Outbox { sql: &sql }.ensure()?;
        Applied { sql: &sql }.ensure()?;
        self.migrate()?;
        // After the migration (older layouts lack `ended_at`): the day's figures,
        // exports and retention read by end time; a customer's earlier conversations
        // by verified id or email.
        for ddl in [
            "CREATE INDEX IF NOT EXISTS closed_ended ON closed (ended_at)",
            "CREATE INDEX IF NOT EXISTS closed_verified ON closed (json_extract(value, '$.customer.verified_user_id'))",
            "CREATE INDEX IF NOT EXISTS closed_email ON closed (lower(json_extract(value, '$.customer.email')))",
        ] {
            sql.exec(ddl, None)?;
        }
        Ok(())
    }

    /// Loads the engine from its rows (seeding the demo tenant on first use when
    /// enabled). A tenant nobody configured is refused without writing anything.
    fn load(&self, req_name: Option<String>) -> ApiResult<()> {
        if self.engine.borrow().is_some() {
            return Ok(());
        }
        let demo = req_name.as_deref() == Some("demo")
            && env_string(&self.env, "DEMO_SEED").as_deref() == Some("true");
        if !demo && !self.exists()? {
            return Err(not_loaded());
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
            let mut demo: AdminConfig = serde_json::from_str(crate::DEMO_TENANT)?;
            // The demo's passwords come hashed; the plain ones are for its README.
            demo.passwords.clear();
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
        if version < 3 {
            // Version 3: `closed` gets `ended_at` (retention) and `kind` (left messages
            // listed without scanning chats); sessions, logins, limits and tickets are
            // new tables (made by `ensure_tables`).
            let sql = self.sql();
            let has = count(
                &sql,
                "SELECT COUNT(*) AS n FROM pragma_table_info('closed') WHERE name = 'ended_at'",
                vec![],
            )?;
            if has == 0 {
                sql.exec(
                    "ALTER TABLE closed ADD COLUMN ended_at INTEGER NOT NULL DEFAULT 0",
                    None,
                )?;
                sql.exec(
                    "ALTER TABLE closed ADD COLUMN kind TEXT NOT NULL DEFAULT 'chat'",
                    None,
                )?;
            }
            let rows: Vec<IdValueRow> =
                sql.exec("SELECT id, value FROM closed", None)?.to_array()?;
            for r in rows {
                let c: ClosedConversation = serde_json::from_str(&r.value)?;
                sql.exec(
                    "UPDATE closed SET ended_at = ?, kind = ? WHERE id = ?",
                    vec![
                        c.ended_at.timestamp().into(),
                        kind_of(&c).into(),
                        r.id.into(),
                    ],
                )?;
            }
            self.kv_put("schema_version", "3")?;
        }
        let sql = self.sql();
        sql.exec(
            "CREATE INDEX IF NOT EXISTS closed_order ON closed (created_at, id)",
            None,
        )?;
        sql.exec(
            "CREATE INDEX IF NOT EXISTS closed_ended ON closed (ended_at, id)",
            None,
        )?;
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
        if !admin.passwords.is_empty() {
            return Err(ApiError::internal(
                "plain passwords reached the tenant; the Worker hashes them",
            ));
        }
        let stored = self.exists()?;
        for a in &admin.config.agents {
            let has = stored && self.kv_get(&format!("pw:{}", a.id))?.is_some();
            if !has && !admin.password_hashes.contains_key(&a.id) {
                return Err(ApiError::bad_request(
                    "invalid_config",
                    format!("agent {} needs a password", a.id),
                ));
            }
        }
        for a in admin.password_hashes.keys() {
            if admin.config.agent(a).is_none() {
                return Err(ApiError::bad_request(
                    "invalid_config",
                    format!("password given for unknown agent {a}"),
                ));
            }
        }
        if let Some(secret) = &admin.webhook_secret {
            if secret.len() < shared::config::MIN_SITE_SECRET_BYTES {
                return Err(ApiError::bad_request(
                    "invalid_config",
                    format!(
                        "webhook_secret has {} bytes; at least {} are needed",
                        secret.len(),
                        shared::config::MIN_SITE_SECRET_BYTES
                    ),
                ));
            }
        } else if !admin.config.webhooks.is_empty() && !self.has_webhook_secret(stored)? {
            return Err(ApiError::bad_request(
                "invalid_config",
                "webhooks need a webhook_secret to sign their requests",
            ));
        }
        for (s, secret) in &admin.site_secrets {
            if admin.config.site(s).is_none() {
                return Err(ApiError::bad_request(
                    "invalid_config",
                    format!("secret given for unknown site {s}"),
                ));
            }
            shared::config::check_site_secret(s, secret)?;
        }
        Ok(engine)
    }

    fn has_webhook_secret(&self, stored: bool) -> ApiResult<bool> {
        Ok(stored && self.kv_get("webhook_secret")?.is_some())
    }

    /// Stores a configuration [`Self::check_config`] accepted.
    fn write_config(&self, admin: &AdminConfig, mut engine: Tenant) -> ApiResult<()> {
        // One synchronous run: everything or nothing is written.
        self.ensure_tables()?;
        self.kv_put("name", self.tenant_name()?.as_str())?;
        for (a, h) in &admin.password_hashes {
            self.kv_put(&format!("pw:{a}"), h)?;
        }
        for (s, secret) in &admin.site_secrets {
            self.kv_put(&format!("secret:{s}"), secret)?;
        }
        if let Some(secret) = &admin.webhook_secret {
            self.kv_put("webhook_secret", secret)?;
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
                Effect::Closed(mut c) => {
                    // A rating given during wrap-up joins the record now.
                    let pending: Vec<ValueRow> = sql
                        .exec(
                            "SELECT value FROM ratings WHERE id = ?",
                            vec![c.id.as_str().into()],
                        )?
                        .to_array()?;
                    if let Some(r) = pending.first() {
                        c.rating = serde_json::from_str(&r.value).ok();
                        sql.exec(
                            "DELETE FROM ratings WHERE id = ?",
                            vec![c.id.as_str().into()],
                        )?;
                    }
                    sql.exec(
                        "INSERT OR REPLACE INTO closed (id, created_at, ended_at, kind, value) VALUES (?, ?, ?, ?, ?)",
                        vec![
                            c.id.as_str().into(),
                            c.created_at.timestamp().into(),
                            c.ended_at.timestamp().into(),
                            kind_of(&c).into(),
                            serde_json::to_string(&c)?.into(),
                        ],
                    )?;
                    self.queue_hooks(t, &c, at_ms)?;
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

    /// Writes one `hooks` row per webhook that wants this closed record's event (in
    /// the transaction that wrote the record); [`Self::flush_hooks`] hands them to
    /// the webhook queue.
    fn queue_hooks(&self, t: &Tenant, c: &ClosedConversation, at_ms: i64) -> ApiResult<()> {
        self.queue_jobs(
            &t.config().webhooks,
            WebhookEvent::of(c),
            &c.id,
            None,
            at_ms,
        )
    }

    /// Writes one `hooks` row per webhook in `webhooks` that wants `event`.
    fn queue_jobs(
        &self,
        webhooks: &[shared::webhook::WebhookConfig],
        event: WebhookEvent,
        conversation: &ConversationId,
        parked: Option<&str>,
        at_ms: i64,
    ) -> ApiResult<()> {
        let wanted: Vec<_> = webhooks.iter().filter(|w| w.wants(event)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let tenant = self.tenant_name()?;
        for w in wanted {
            let job = WebhookJob {
                id: auth::random_id().map_err(ApiError::internal)?,
                tenant: tenant.clone(),
                event,
                conversation: conversation.clone(),
                url: w.url.clone(),
                parked: parked.map(str::to_owned),
                attempt: 0,
                last_error: None,
            };
            self.sql().exec(
                "INSERT INTO hooks (id, value, at) VALUES (?, ?, ?)",
                vec![
                    job.id.as_str().into(),
                    serde_json::to_string(&job)?.into(),
                    at_ms.into(),
                ],
            )?;
        }
        Ok(())
    }

    /// A delivery was parked (by this object's outbox, or reported by a
    /// conversation): the webhooks that want `delivery.parked` hear of it.
    fn queue_parked_hooks(&self, conversation: &str, key: &str) -> ApiResult<()> {
        let webhooks = self.with_engine(|t| t.config().webhooks.clone())?;
        let Ok(conversation) = ConversationId::new(conversation) else {
            return Ok(()); // not a conversation's name: nothing to report it under
        };
        self.queue_jobs(
            &webhooks,
            WebhookEvent::DeliveryParked,
            &conversation,
            Some(key),
            now_ms(),
        )
    }

    /// Sends waiting `hooks` rows to the webhook queue; a row is deleted once the
    /// queue took it (the alarm retries the rest).
    async fn flush_hooks(&self) -> ApiResult<()> {
        let rows: Vec<IdValueRow> = self
            .sql()
            .exec("SELECT id, value FROM hooks ORDER BY at LIMIT 100", None)?
            .to_array()?;
        if rows.is_empty() {
            return Ok(());
        }
        let queue = self.env.queue(crate::WEBHOOK_QUEUE)?;
        for r in rows {
            let job: WebhookJob = serde_json::from_str(&r.value)?;
            queue.send(job).await?;
            self.sql()
                .exec("DELETE FROM hooks WHERE id = ?", vec![r.id.into()])?;
        }
        Ok(())
    }

    /// What the webhook consumer needs for one job, read now: the closed record and
    /// transcript of a conversation event, or the parked delivery while still parked.
    async fn hook_material(&self, m: rpc::HookMaterial) -> ApiResult<rpc::HookMaterialReply> {
        let urls = self.with_engine(|t| {
            t.config()
                .webhooks
                .iter()
                .map(|w| w.url.clone())
                .collect::<Vec<_>>()
        })?;
        let (closed, parked) = match &m.parked {
            Some(key) => (None, self.parked_one(key)?),
            None => match self.closed_one(&m.conversation) {
                Ok(conversation) => (
                    Some(ClosedReply {
                        transcript: self.read(&m.conversation).await,
                        conversation,
                    }),
                    None,
                ),
                Err(e) if e.status == 404 => (None, None),
                Err(e) => return Err(e),
            },
        };
        Ok(rpc::HookMaterialReply {
            secret: self.kv_get("webhook_secret")?,
            urls,
            closed,
            parked,
        })
    }

    /// A job that ran out of attempts joins the dead-letter list (once per job id).
    fn hook_dead(&self, job: WebhookJob) -> ApiResult<Done> {
        let dead = DeadLetter { at: now(), job };
        self.sql().exec(
            "INSERT OR REPLACE INTO dead_hooks (id, value, at) VALUES (?, ?, ?)",
            vec![
                dead.job.id.as_str().into(),
                serde_json::to_string(&dead)?.into(),
                now_ms().into(),
            ],
        )?;
        Ok(Done {})
    }

    /// Parked deliveries, newest first (at most 500 of each kind): the routing's own
    /// to conversations, and the reports conversations parked and told it about.
    fn parked_deliveries(&self) -> ApiResult<Vec<rpc::ParkedDelivery>> {
        let sql = self.sql();
        let rows = Outbox { sql: &sql }.parked(500)?;
        let mut list: Vec<rpc::ParkedDelivery> = rows.into_iter().map(parked_of_row).collect();
        let reported: Vec<ValueRow> = sql
            .exec(
                "SELECT value FROM parked_reports ORDER BY at DESC LIMIT 500",
                None,
            )?
            .to_array()?;
        for r in reported {
            list.push(serde_json::from_str(&r.value)?);
        }
        list.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.key.cmp(&b.key)));
        Ok(list)
    }

    /// The parked delivery `key`, of either kind, if it is still parked.
    fn parked_one(&self, key: &str) -> ApiResult<Option<rpc::ParkedDelivery>> {
        let sql = self.sql();
        if let Some(row) = (Outbox { sql: &sql }).parked_one(key)? {
            return Ok(Some(parked_of_row(row)));
        }
        let reported: Vec<ValueRow> = sql
            .exec(
                "SELECT value FROM parked_reports WHERE key = ?",
                vec![key.into()],
            )?
            .to_array()?;
        match reported.first() {
            Some(r) => Ok(Some(serde_json::from_str(&r.value)?)),
            None => Ok(None),
        }
    }

    /// Sends a parked delivery again. The routing's own goes back into its outbox and
    /// is delivered now (it stays in the outbox, retried by the alarm, if the receiver
    /// still fails); a conversation's parked report is sent again by that
    /// conversation.
    async fn retry_parked(&self, key: &str) -> ApiResult<Done> {
        let target = self.resend_parked(key).await?;
        self.after_resend(target.into_iter().collect()).await?;
        Ok(Done {})
    }

    /// Sends every parked delivery again, oldest first; one that cannot be sent again
    /// is named and the rest go on. The routing's own rows are delivered together
    /// afterwards, one drain per conversation.
    async fn retry_all_parked(&self) -> ApiResult<rpc::RetriedParked> {
        let mut list = self.parked_deliveries()?;
        list.reverse();
        let mut done = rpc::RetriedParked {
            retried: 0,
            failed: vec![],
        };
        let mut targets = vec![];
        for p in list {
            match self.resend_parked(&p.key).await {
                Ok(target) => {
                    done.retried += 1;
                    targets.extend(target);
                }
                Err(e) => done.failed.push((p.key, e.message)),
            }
        }
        self.after_resend(targets).await?;
        Ok(done)
    }

    /// Puts the parked delivery `key` back on its way: the routing's own into its
    /// outbox, due now (its target is returned: deliver it), or a conversation's
    /// report sent again by that conversation.
    async fn resend_parked(&self, key: &str) -> ApiResult<Option<String>> {
        let sql = self.sql();
        if let Some(target) = (Outbox { sql: &sql }).unpark(key, now_ms())? {
            return Ok(Some(target));
        }
        #[derive(Deserialize)]
        struct ReportedRow {
            conversation: String,
            value: String,
            at: f64,
        }
        let rows: Vec<ReportedRow> = sql
            .exec(
                "SELECT conversation, value, at FROM parked_reports WHERE key = ?",
                vec![key.into()],
            )?
            .to_array()?;
        let Some(row) = rows.into_iter().next() else {
            return Err(ApiError::not_found(
                "unknown_delivery",
                format!("no parked delivery with key {key:?}"),
            ));
        };
        // Off the list first: if it is parked again meanwhile, its new report lists it.
        sql.exec("DELETE FROM parked_reports WHERE key = ?", vec![key.into()])?;
        let resend = rpc::ResendParked { key: key.into() };
        if let Err(e) = call(
            &stub(&self.env, "CONVERSATIONS", &row.conversation)?,
            resend,
        )
        .await
        {
            sql.exec(
                "INSERT OR IGNORE INTO parked_reports (key, conversation, value, at) VALUES (?, ?, ?, ?)",
                vec![key.into(), row.conversation.into(), row.value.into(), (row.at as i64).into()],
            )?;
            return Err(e);
        }
        Ok(None)
    }

    /// After parked deliveries were put back on their way: the routing's own are
    /// delivered (the alarm retries what still fails) and supervisors get the new count.
    async fn after_resend(&self, targets: Vec<String>) -> ApiResult<()> {
        if !targets.is_empty() {
            self.deliver_all(targets).await;
            self.schedule().await?;
        }
        self.push_supervisors().await;
        Ok(())
    }

    /// The dead-letter list, newest first (at most 500).
    fn dead_hooks(&self) -> ApiResult<Vec<DeadLetter>> {
        let rows: Vec<ValueRow> = self
            .sql()
            .exec(
                "SELECT value FROM dead_hooks ORDER BY at DESC LIMIT 500",
                None,
            )?
            .to_array()?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&r.value)?))
            .collect()
    }

    /// Moves a dead-lettered job back to `hooks` with its attempts reset.
    fn retry_dead_hook(&self, id: &str) -> ApiResult<()> {
        let rows: Vec<ValueRow> = self
            .sql()
            .exec("SELECT value FROM dead_hooks WHERE id = ?", vec![id.into()])?
            .to_array()?;
        let dead: DeadLetter = match rows.first() {
            Some(r) => serde_json::from_str(&r.value)?,
            None => {
                return Err(ApiError::not_found(
                    "unknown_delivery",
                    format!("no dead-lettered webhook delivery {id:?}"),
                ))
            }
        };
        let job = WebhookJob {
            attempt: 0,
            last_error: None,
            ..dead.job
        };
        self.sql().exec(
            "INSERT OR REPLACE INTO hooks (id, value, at) VALUES (?, ?, ?)",
            vec![
                job.id.as_str().into(),
                serde_json::to_string(&job)?.into(),
                now_ms().into(),
            ],
        )?;
        self.sql()
            .exec("DELETE FROM dead_hooks WHERE id = ?", vec![id.into()])?;
        Ok(())
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
        if let Err(e) = self.flush_hooks().await {
            worker::console_error!("webhook queue: {e}");
        }
        self.push_supervisors().await;
    }

    /// A live session, and for `admin` an agent whose role administers.
    fn check_session(&self, c: rpc::CheckSession) -> ApiResult<Done> {
        self.require_session(&c.agent, &c.sid)?;
        if c.admin {
            let role = self.with_engine(|t| t.config().agent(&c.agent).map(|a| a.role))?;
            if !role.is_some_and(|r| r.administers()) {
                return Err(ApiError::forbidden(
                    "not_admin",
                    format!("agent {} has no admin role", c.agent),
                ));
            }
        }
        Ok(Done {})
    }

    /// The supervisors' live view now: routing state from the engine, the day's
    /// figures summed from `closed`.
    fn supervisor_view(&self) -> ApiResult<shared::engine::SupervisorView> {
        let at = now();
        // "Today" is the contact centre's day (its time zone; UTC if it has none).
        let midnight = self.with_engine(|t| t.config().day_start(at))?.timestamp();
        #[derive(Deserialize)]
        struct Sums {
            chats: i64,
            answered: Option<i64>,
            wait: Option<i64>,
            handle: Option<i64>,
            ratings: Option<i64>,
            rating_sum: Option<i64>,
        }
        #[derive(Deserialize)]
        struct ByQueue {
            q: Option<String>,
            n: i64,
        }
        let sql = self.sql();
        let sums: Vec<Sums> = sql
            .exec(
                "SELECT COUNT(*) AS chats, \
                 SUM(json_extract(value, '$.answered_at') IS NOT NULL) AS answered, \
                 SUM(json_extract(value, '$.wait_secs')) AS wait, \
                 SUM(json_extract(value, '$.handle_secs')) AS handle, \
                 COUNT(json_extract(value, '$.rating.score')) AS ratings, \
                 SUM(json_extract(value, '$.rating.score')) AS rating_sum \
                 FROM closed WHERE ended_at >= ? AND kind = 'chat'",
                vec![midnight.into()],
            )?
            .to_array()?;
        let by_queue: Vec<ByQueue> = sql
            .exec(
                "SELECT json_extract(value, '$.queue_history[#-1].queue') AS q, COUNT(*) AS n \
                 FROM closed WHERE ended_at >= ? GROUP BY q",
                vec![midnight.into()],
            )?
            .to_array()?;
        let n = |v: Option<i64>| u32::try_from(v.unwrap_or(0)).unwrap_or(0);
        let today = match sums.first() {
            Some(s) => shared::engine::ClosedToday {
                by_queue: by_queue
                    .into_iter()
                    .filter_map(|r| {
                        Some((
                            shared::ids::QueueId::new(r.q?).ok()?,
                            u32::try_from(r.n).unwrap_or(0),
                        ))
                    })
                    .collect(),
                chats: n(Some(s.chats)),
                answered: n(s.answered),
                wait_secs_total: s.wait.unwrap_or(0),
                handle_secs_total: s.handle.unwrap_or(0),
                ratings: n(s.ratings),
                rating_sum: n(s.rating_sum),
            },
            None => Default::default(),
        };
        let undelivered = count(&sql, "SELECT COUNT(*) AS n FROM outbox_parked", vec![])?
            + count(&sql, "SELECT COUNT(*) AS n FROM parked_reports", vec![])?;
        let undelivered = u32::try_from(undelivered).unwrap_or(u32::MAX);
        self.with_engine(|t| t.supervisor_view(at, today, undelivered))
    }

    /// Sends the live view to connected supervisors, at most every
    /// [`SUPERVISOR_PUSH_MS`]; a change inside that window is sent by the alarm.
    async fn push_supervisors(&self) {
        let sockets = self.state.get_websockets_with_tag(SUPERVISOR_TAG);
        if sockets.is_empty() {
            self.supervisor_dirty.set(false);
            return;
        }
        let t = now_ms();
        if t - self.supervisor_pushed.get() < SUPERVISOR_PUSH_MS {
            if !self.supervisor_dirty.replace(true) {
                if let Err(e) = self.schedule().await {
                    worker::console_error!("schedule: {e}");
                }
            }
            return;
        }
        self.supervisor_dirty.set(false);
        self.supervisor_pushed.set(t);
        match self.supervisor_view() {
            Ok(view) => {
                let frame = encode(&AgentServerFrame::Supervisor { view });
                for ws in sockets {
                    let _ = ws.send_with_str(&frame);
                }
            }
            Err(e) => worker::console_error!("supervisor view: {e}"),
        }
    }

    /// A read-only chat ticket for a supervisor (any live conversation).
    fn observer_ticket(&self, agent: &AgentId, conversation: &ConversationId) -> ApiResult<String> {
        let (version, name) = self
            .with_engine(|t| {
                t.conversation(conversation).map(|c| {
                    (
                        c.access_version,
                        t.config().agent(agent).map(|a| a.name.clone()),
                    )
                })
            })?
            .ok_or_else(|| {
                ApiError::not_found(
                    "unknown_conversation",
                    format!("conversation {conversation} is not live"),
                )
            })?;
        self.sign_chat_ticket(
            agent,
            name.unwrap_or_default(),
            conversation,
            version,
            false,
            true,
        )
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
        // The oldest closed conversation's end of retention.
        #[derive(Deserialize)]
        struct Oldest {
            at: Option<i64>,
        }
        let days = self.with_engine(|t| i64::from(t.config().retention_days))?;
        let retention_next = sql
            .exec("SELECT MIN(ended_at) AS at FROM closed", None)?
            .to_array::<Oldest>()?
            .first()
            .and_then(|o| o.at)
            .map(|at| (at + days * self.day_secs) * 1000);
        // Rows the webhook queue did not take yet are tried again in 5 s.
        let hooks_next =
            (count(&sql, "SELECT COUNT(*) AS n FROM hooks", vec![])? > 0).then(|| now_ms() + 5_000);
        let supervisor_next = self
            .supervisor_dirty
            .get()
            .then(|| self.supervisor_pushed.get() + SUPERVISOR_PUSH_MS);
        let next = engine_next
            .map(|d| d.timestamp_millis())
            .into_iter()
            .chain(outbox_next)
            .chain(hooks_next)
            .chain(supervisor_next)
            .chain(retention_next)
            .chain(self.pictures_sweep_at()?)
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
            .drain(
                target,
                Retry::ForADay,
                &self.faults,
                |body| async move {
                    let deliver: Deliver = serde_json::from_str(&body)?;
                    Ok(call(&stub(env, "CONVERSATIONS", target)?, deliver)
                        .await?
                        .thread)
                },
                |row, _| {
                    // The row is parked either way; a failed alert must not stop the
                    // drain (the admin's list still shows the row).
                    if let Err(e) = self.queue_parked_hooks(&row.target, &row.key) {
                        worker::console_error!("parked {}: no webhook job: {e}", row.key);
                    }
                    // Supervisors see the count of parked updates.
                    self.supervisor_dirty.set(true);
                    Ok(())
                },
            )
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
        self.sign_chat_ticket(
            agent,
            p.name.clone(),
            conversation,
            version,
            p.can_write,
            false,
        )
    }

    /// Signs a chat ticket (valid [`auth::TICKET_SECS`], single use).
    fn sign_chat_ticket(
        &self,
        agent: &AgentId,
        name: String,
        conversation: &ConversationId,
        version: u32,
        can_write: bool,
        observer: bool,
    ) -> ApiResult<String> {
        let at = now().timestamp();
        Ok(auth::sign(
            &session_secret(&self.env)?,
            Purpose::ChatTicket,
            &ChatTicket {
                tenant: self.tenant_name()?,
                agent: agent.clone(),
                name,
                conversation: conversation.clone(),
                version,
                can_write,
                observer,
                nonce: auth::random_id().map_err(ApiError::internal)?,
                iat: at,
                exp: at + auth::TICKET_SECS,
            },
        ))
    }

    /// Takes a token from the stored bucket `key` (`limit` per minute).
    fn limit(&self, key: &str, limit: u32) -> ApiResult<()> {
        let at = now();
        let rows: Vec<ValueRow> = self
            .sql()
            .exec("SELECT value FROM limits WHERE key = ?", vec![key.into()])?
            .to_array()?;
        let mut b = rows
            .first()
            .and_then(|r| serde_json::from_str::<Bucket>(&r.value).ok())
            .unwrap_or_else(|| Bucket::full(limit, at));
        let r = b.take(limit, 60, at);
        self.sql().exec(
            "INSERT OR REPLACE INTO limits (key, value, at) VALUES (?, ?, ?)",
            vec![
                key.into(),
                serde_json::to_string(&b)?.into(),
                at.timestamp_millis().into(),
            ],
        )?;
        r.map_err(ApiError::rate_limited)
    }

    /// Records a ticket's nonce; refuses one seen before.
    fn consume_nonce(&self, nonce: &str, exp: i64) -> ApiResult<()> {
        consume_nonce(&self.sql(), nonce, exp)
    }

    /// The expiry of `sid` when it is a live session of `agent`.
    fn session_live(&self, agent: &AgentId, sid: &str) -> ApiResult<Option<i64>> {
        #[derive(Deserialize)]
        struct Row {
            agent: String,
            exp: i64,
        }
        let rows: Vec<Row> = self
            .sql()
            .exec(
                "SELECT agent, exp FROM sessions WHERE sid = ?",
                vec![sid.into()],
            )?
            .to_array()?;
        Ok(rows
            .first()
            .filter(|r| r.agent == agent.as_str() && r.exp > now().timestamp())
            .map(|r| r.exp))
    }

    /// A live session's expiry, or 401.
    fn require_session(&self, agent: &AgentId, sid: &str) -> ApiResult<i64> {
        self.session_live(agent, sid)?.ok_or_else(|| {
            ApiError::unauthorized("this session was signed out or has expired; sign in again")
        })
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

    fn site_origins(&self, site: &SiteKey) -> ApiResult<Vec<String>> {
        let allowed =
            self.with_engine(|t| t.config().site(site).map(|s| s.allowed_origins.clone()))?;
        allowed.ok_or_else(|| ApiError::not_found("unknown_site", format!("unknown site {site}")))
    }

    fn check_origin(&self, caller: &Caller, site: &SiteKey) -> ApiResult<Vec<String>> {
        let allowed = self.site_origins(site)?;
        crate::check_origin(caller, &allowed)?;
        Ok(allowed)
    }

    async fn start(
        &self,
        w: WithCaller<shared::protocol::StartRequest>,
    ) -> ApiResult<StartResponse> {
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
                auth::check_user_hash(&secret, &user_id, &user_hash, now())
                    .map_err(|e| ApiError::forbidden("identity_invalid", e.to_string()))?;
                Some(user_id)
            }
        };
        // Refuse before creating anything (hours, agents, queue and tenant limits);
        // bad input is refused before it costs a token of the address's limit.
        self.with_engine(|t| t.check_start(&b.site, now()))??;
        self.limit(
            &format!("start:{}", shared::ratelimit::client_key(&w.caller.ip)),
            self.start_limit,
        )?;
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
        self.check_origin(&w.caller, &w.body.site)?;
        let name = shared::text::validate_name(&w.body.name)
            .map_err(|e| ApiError::bad_request(e.code(), format!("name: {e}")))?;
        let email = shared::text::validate_email(w.body.email.as_deref())?;
        shared::text::MessageText::new(&w.body.text, shared::text::Writer::Visitor)?;
        self.limit(
            &format!("start:{}", shared::ratelimit::client_key(&w.caller.ip)),
            self.start_limit,
        )?;
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

    /// Sign-in step 1: refuses while the login id is locked or the address is over
    /// its limit; gives the stored hash (`None` for an unknown agent).
    fn sign_in_begin(&self, b: rpc::SignInBegin) -> ApiResult<rpc::Challenge> {
        #[derive(Deserialize)]
        struct Row {
            locked_until: i64,
        }
        let rows: Vec<Row> = self
            .sql()
            .exec(
                "SELECT locked_until FROM logins WHERE agent = ?",
                vec![b.agent.as_str().into()],
            )?
            .to_array()?;
        let now_s = now().timestamp();
        if let Some(r) = rows.first().filter(|r| r.locked_until > now_s) {
            let wait = u32::try_from(r.locked_until - now_s).unwrap_or(1);
            return Err(ApiError {
                retry_after: Some(wait),
                ..ApiError::new(
                    429,
                    "too_many_attempts",
                    format!("too many failed sign-ins; try again in {wait} s"),
                )
            });
        }
        self.limit(&format!("sign-in:{}", b.ip), self.sign_in_limit)?;
        Ok(rpc::Challenge {
            hash: self.kv_get(&format!("pw:{}", b.agent))?,
        })
    }

    /// An admin lifts an agent's lockout: their failed sign-ins are forgotten.
    fn unlock(&self, agent: &AgentId) -> ApiResult<Done> {
        if self.with_engine(|t| t.config().agent(agent).is_none())? {
            return Err(ApiError::not_found(
                "unknown_agent",
                format!("no agent {agent}"),
            ));
        }
        self.sql().exec(
            "DELETE FROM logins WHERE agent = ?",
            vec![agent.as_str().into()],
        )?;
        Ok(Done {})
    }

    /// Sign-in step 2: records the Worker's verdict; on success opens a session.
    fn sign_in_finish(&self, b: rpc::SignInFinish) -> ApiResult<(SignInResponse, Outcome)> {
        let sql = self.sql();
        let now_s = now().timestamp();
        let refused = || ApiError::unauthorized("unknown tenant, unknown agent or wrong password");
        let name = self.with_engine(|t| t.config().agent(&b.agent).map(|a| a.name.clone()))?;
        let (true, Some(name)) = (b.ok, name) else {
            #[derive(Deserialize)]
            struct Row {
                failures: i64,
            }
            let rows: Vec<Row> = sql
                .exec(
                    "SELECT failures FROM logins WHERE agent = ?",
                    vec![b.agent.as_str().into()],
                )?
                .to_array()?;
            let failures = rows.first().map_or(0, |r| r.failures) + 1;
            sql.exec(
                "INSERT OR REPLACE INTO logins (agent, failures, locked_until, at) VALUES (?, ?, ?, ?)",
                vec![
                    b.agent.as_str().into(),
                    failures.into(),
                    (now_s + shared::ratelimit::lockout_secs(failures)).into(),
                    now_s.into(),
                ],
            )?;
            worker::console_log!(
                "sign-in refused for {} from {} ({failures} in a row)",
                b.agent,
                b.ip
            );
            return Err(refused());
        };
        sql.exec(
            "DELETE FROM logins WHERE agent = ?",
            vec![b.agent.as_str().into()],
        )?;
        if let Some(h) = &b.rehash {
            self.kv_put(&format!("pw:{}", b.agent), h)?;
        }
        let sid = auth::random_id().map_err(ApiError::internal)?;
        let exp = now_s + auth::SESSION_SECS;
        sql.exec("DELETE FROM sessions WHERE exp < ?", vec![now_s.into()])?;
        sql.exec(
            "INSERT INTO sessions (sid, agent, exp) VALUES (?, ?, ?)",
            vec![sid.as_str().into(), b.agent.as_str().into(), exp.into()],
        )?;
        let o = self.commit(Command::SignIn {
            agent: b.agent.clone(),
        })?;
        let token = auth::sign(
            &session_secret(&self.env)?,
            Purpose::Session,
            &Session {
                tenant: self.tenant_name()?,
                agent: b.agent.clone(),
                sid,
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

    /// A control-socket ticket for a live session.
    fn control_ticket(&self, c: rpc::ControlTicket) -> ApiResult<rpc::TicketReply> {
        self.require_session(&c.agent, &c.sid)?;
        let exp = now().timestamp() + auth::TICKET_SECS;
        let ticket = auth::sign(
            &session_secret(&self.env)?,
            Purpose::ControlTicket,
            &ControlTicket {
                tenant: self.tenant_name()?,
                agent: c.agent,
                sid: c.sid,
                nonce: auth::random_id().map_err(ApiError::internal)?,
                exp,
            },
        );
        Ok(rpc::TicketReply {
            ticket,
            expires_in: auth::TICKET_SECS as u32,
        })
    }

    /// Revokes one session or all of an agent's: rows deleted, control sockets closed
    /// with the reason, chat sockets closed by the conversations (through the outbox).
    async fn revoke(&self, r: rpc::Revoke) -> ApiResult<Done> {
        let sql = self.sql();
        if self.with_engine(|t| t.agent(&r.agent).is_none())? {
            return Err(ApiError::not_found(
                "unknown_agent",
                format!("unknown agent {}", r.agent),
            ));
        }
        let reason = r.reason.close_reason();
        let sockets: Vec<WebSocket> = match &r.sid {
            Some(sid) => {
                self.require_session(&r.agent, sid)?;
                sql.exec(
                    "DELETE FROM sessions WHERE sid = ?",
                    vec![sid.as_str().into()],
                )?;
                self.state.get_websockets_with_tag(&format!("sid:{sid}"))
            }
            None => {
                sql.exec(
                    "DELETE FROM sessions WHERE agent = ?",
                    vec![r.agent.as_str().into()],
                )?;
                self.sockets_of(&r.agent)
            }
        };
        let none_left = count(
            &sql,
            "SELECT COUNT(*) AS n FROM sessions WHERE agent = ? AND exp > ?",
            vec![r.agent.as_str().into(), now().timestamp().into()],
        )? == 0;
        // Chat sockets: every conversation the agent may open hears of it.
        let convs = self.with_engine(|t| t.conversations_of(&r.agent))?;
        let mut targets = vec![];
        if none_left {
            let at_ms = now_ms();
            let outbox = Outbox { sql: &sql };
            let tenant = self.tenant_name()?;
            for c in convs {
                let key = format!(
                    "{tenant}:{}",
                    auth::random_id().map_err(ApiError::internal)?
                );
                let body = serde_json::to_string(&Deliver {
                    key: key.clone(),
                    init: None,
                    want_thread: false,
                    events: vec![ConversationEvent::Revoked {
                        agent: r.agent.clone(),
                        at: now().timestamp(),
                    }],
                })?;
                outbox.push(&key, c.as_str(), &body, at_ms)?;
                targets.push(c);
            }
        }
        for ws in sockets {
            let _ = ws.close(Some(4003), Some(reason));
        }
        if none_left {
            // Signed out in routing too, unless chats are still theirs (they stay, and
            // the agent signs in again to finish them).
            match self.commit(Command::SignOut {
                agent: r.agent.clone(),
            }) {
                Ok(o) => self.finish(o).await,
                Err(e) => worker::console_log!("revoke {}: kept state ({})", r.agent, e.code),
            }
        }
        if !targets.is_empty() {
            self.finish(Outcome {
                agent_events: vec![],
                targets,
            })
            .await;
        }
        worker::console_log!("sessions of {} revoked: {reason}", r.agent);
        Ok(Done {})
    }

    /// Stores a new password hash and ends every session of the agent.
    async fn set_password(&self, p: rpc::SetPassword) -> ApiResult<Done> {
        if self.with_engine(|t| t.agent(&p.agent).is_none())? {
            return Err(ApiError::not_found(
                "unknown_agent",
                format!("unknown agent {}", p.agent),
            ));
        }
        self.kv_put(&format!("pw:{}", p.agent), &p.hash)?;
        self.revoke(rpc::Revoke {
            agent: p.agent,
            sid: None,
            reason: rpc::RevokeReason::PasswordChanged,
        })
        .await
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
        let (idle_reasons, wrap_up_reasons, templates) = config_lists(&cfg);
        Ok(AgentServerFrame::Snapshot {
            snapshot,
            transcripts,
            tickets,
            idle_reasons,
            wrap_up_reasons,
            templates,
        })
    }

    async fn accept_agent(&self, req: &Request) -> ApiResult<Response> {
        let t: ControlTicket = auth::verify(
            &session_secret(&self.env)?,
            Purpose::ControlTicket,
            &crate::query(req, "ticket"),
            now(),
        )
        .map_err(|e| ApiError::unauthorized(format!("{e}; ask for a new one")))?;
        if t.tenant != self.tenant_name()? {
            return Err(ApiError::unauthorized("this ticket is for another tenant"));
        }
        self.consume_nonce(&t.nonce, t.exp)?;
        let exp = self.require_session(&t.agent, &t.sid)?;
        let agent = t.agent;
        let signed_in =
            self.with_engine(|e| e.agent(&agent).is_some_and(|a| a.state.is_signed_in()))?;
        if !signed_in {
            return Err(ApiError::unauthorized(
                "this session was signed out; sign in again",
            ));
        }
        let frame = self.snapshot_frame(&agent).await?;
        let pair = WebSocketPair::new()?;
        let sid_tag = format!("sid:{}", t.sid);
        let supervises = self.with_engine(|e| e.check_supervisor(&agent).is_ok())?;
        let mut tags = vec![agent.as_str(), &sid_tag];
        if supervises {
            tags.push(SUPERVISOR_TAG);
        }
        self.state.accept_websocket_with_tags(&pair.server, &tags);
        pair.server.serialize_attachment(SocketInfo {
            agent,
            exp,
            sid: t.sid,
        })?;
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
            ConversationReport::Rated(rating) => {
                self.rate(&r.conversation, rating)?;
                Applied { sql: &sql }.record(&r.key, now_ms())?;
                return Ok(Delivered {
                    duplicate: false,
                    thread: None,
                });
            }
            ConversationReport::Parked(p) => {
                self.sql().exec(
                    "INSERT OR REPLACE INTO parked_reports (key, conversation, value, at) VALUES (?, ?, ?, ?)",
                    vec![
                        p.key.as_str().into(),
                        r.conversation.as_str().into(),
                        serde_json::to_string(&p)?.into(),
                        p.at.timestamp_millis().into(),
                    ],
                )?;
                self.queue_parked_hooks(r.conversation.as_str(), &p.key)?;
                Applied { sql: &sql }.record(&r.key, now_ms())?;
                if let Err(e) = self.flush_hooks().await {
                    worker::console_error!("webhook queue: {e}");
                }
                self.push_supervisors().await;
                return Ok(Delivered {
                    duplicate: false,
                    thread: None,
                });
            }
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

    /// Puts a rating on the closed record; while wrap-up is pending (no record yet) it
    /// waits in `ratings` and joins the record when that is written.
    fn rate(&self, id: &ConversationId, rating: shared::engine::Rating) -> ApiResult<()> {
        let sql = self.sql();
        match self.closed_one(id) {
            Ok(mut c) => {
                if c.rating.is_none() {
                    c.rating = Some(rating);
                    sql.exec(
                        "UPDATE closed SET value = ? WHERE id = ?",
                        vec![serde_json::to_string(&c)?.into(), id.as_str().into()],
                    )?;
                }
            }
            Err(_) if self.with_engine(|t| t.conversation(id).is_some())? => {
                sql.exec(
                    "INSERT OR IGNORE INTO ratings (id, value) VALUES (?, ?)",
                    vec![id.as_str().into(), serde_json::to_string(&rating)?.into()],
                )?;
            }
            Err(_) => {} // Erased or unknown: nothing to rate.
        }
        Ok(())
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
            AgentFrame::Supervise => {
                self.with_engine(|t| t.check_supervisor(&agent))??;
                reply(&AgentServerFrame::Supervisor {
                    view: self.supervisor_view()?,
                });
            }
            AgentFrame::Observe { conversation } => {
                self.with_engine(|t| t.check_supervisor(&agent))??;
                let ticket = self.observer_ticket(&agent, &conversation)?;
                reply(&AgentServerFrame::Observe {
                    conversation,
                    ticket,
                });
            }
            AgentFrame::History { conversation } => {
                let key =
                    self.with_engine(|t| t.customer_for(&agent, &conversation).map(|c| c.key()))??;
                let mut items = self.closed_of(key.as_ref())?;
                items.retain(|c| c.id != conversation);
                reply(&AgentServerFrame::History {
                    conversation,
                    items,
                });
            }
            AgentFrame::PastTranscript { conversation, id } => {
                let key =
                    self.with_engine(|t| t.customer_for(&agent, &conversation).map(|c| c.key()))??;
                let past = self.closed_one(&id)?;
                if key.is_none() || past.customer.key() != key {
                    return Err(ApiError::forbidden(
                        "not_same_customer",
                        format!("conversation {id} is not an earlier one of this customer"),
                    ));
                }
                reply(&AgentServerFrame::PastTranscript {
                    messages: self.read(&id).await,
                    id,
                });
            }
            AgentFrame::SignOutAgent { agent: target } => {
                self.with_engine(|t| t.check_supervisor(&agent))??;
                self.revoke(rpc::Revoke {
                    agent: target,
                    sid: None,
                    reason: rpc::RevokeReason::SignedOutBySupervisor,
                })
                .await?;
            }
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
                // Refused while chats are open (the engine says so); then the session ends.
                self.exec(Command::SignOut {
                    agent: agent.clone(),
                })
                .await?;
                self.revoke(rpc::Revoke {
                    agent,
                    sid: Some(info.sid.clone()),
                    reason: rpc::RevokeReason::SignedOut,
                })
                .await?;
            }
            AgentFrame::LeftMessages => {
                let closed = self.left_messages()?;
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
                let (text, stripped) = self.with_engine(|t| {
                    t.render_template(&agent, &conversation, &template, now())
                })??;
                reply(&AgentServerFrame::Template {
                    conversation,
                    text,
                    stripped,
                });
            }
        }
        Ok(())
    }

    /// One page of closed conversations, newest first (keyset on `created_at, id`).
    fn closed_page(&self, q: rpc::ListClosed) -> ApiResult<rpc::ClosedPage> {
        let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 500));
        #[derive(Deserialize)]
        struct Row {
            id: String,
            created_at: i64,
            value: String,
        }
        // The range filters on `ended_at`; the keyset stays on `created_at, id`.
        let from = q.from.unwrap_or(i64::MIN);
        let to = q.to.unwrap_or(i64::MAX);
        let rows: Vec<Row> = match q.cursor.as_deref() {
            None => self
                .sql()
                .exec(
                    "SELECT id, created_at, value FROM closed WHERE ended_at >= ? AND ended_at < ? ORDER BY created_at DESC, id DESC LIMIT ?",
                    vec![from.into(), to.into(), (limit + 1).into()],
                )?
                .to_array()?,
            Some(c) => {
                let (at, id) = c
                    .split_once(':')
                    .and_then(|(a, i)| Some((a.parse::<i64>().ok()?, i)))
                    .ok_or_else(|| {
                        ApiError::bad_request("invalid_cursor", format!("cursor {c:?} is not one this service gave"))
                    })?;
                self.sql()
                    .exec(
                        "SELECT id, created_at, value FROM closed WHERE ended_at >= ? AND ended_at < ? AND (created_at < ? OR (created_at = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?",
                        vec![from.into(), to.into(), at.into(), at.into(), id.into(), (limit + 1).into()],
                    )?
                    .to_array()?
            }
        };
        let more = rows.len() as i64 > limit;
        let rows = &rows[..rows.len().min(limit as usize)];
        let next = if more {
            rows.last().map(|r| format!("{}:{}", r.created_at, r.id))
        } else {
            None
        };
        Ok(rpc::ClosedPage {
            items: rows
                .iter()
                .map(|r| serde_json::from_str(&r.value))
                .collect::<Result<_, _>>()?,
            next,
        })
    }

    /// Closed conversations of one customer, newest first (at most 20).
    fn closed_of(
        &self,
        key: Option<&shared::engine::CustomerKey>,
    ) -> ApiResult<Vec<ClosedConversation>> {
        use shared::engine::CustomerKey;
        let (query, value) = match key {
            None => return Ok(vec![]),
            Some(CustomerKey::Verified(v)) => (
                "SELECT value FROM closed WHERE json_extract(value, '$.customer.verified_user_id') = ? ORDER BY ended_at DESC LIMIT 20",
                v.as_str(),
            ),
            Some(CustomerKey::Email(e)) => (
                "SELECT value FROM closed WHERE json_extract(value, '$.customer.verified_user_id') IS NULL AND lower(json_extract(value, '$.customer.email')) = ? ORDER BY ended_at DESC LIMIT 20",
                e.as_str(),
            ),
        };
        let rows: Vec<ValueRow> = self.sql().exec(query, vec![value.into()])?.to_array()?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&r.value)?))
            .collect()
    }

    /// Left messages, newest first (all of them: agents see their queues' ones).
    fn left_messages(&self) -> ApiResult<Vec<ClosedConversation>> {
        let rows: Vec<ValueRow> = self
            .sql()
            .exec(
                "SELECT value FROM closed WHERE kind = 'left_message' ORDER BY created_at DESC, id DESC LIMIT 2000",
                None,
            )?
            .to_array()?;
        Ok(rows
            .iter()
            .map(|r| serde_json::from_str(&r.value))
            .collect::<Result<_, _>>()?)
    }

    /// Erases closed conversations: rows here now (with any parked delivery to or
    /// from them), their objects through the outbox.
    async fn erase(&self, ids: Vec<ConversationId>) -> ApiResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = self.sql();
        let tenant = self.tenant_name()?;
        let outbox = Outbox { sql: &sql };
        for id in &ids {
            sql.exec("DELETE FROM closed WHERE id = ?", vec![id.as_str().into()])?;
            // Parked deliveries of it may carry the customer's name and first words.
            sql.exec(
                "DELETE FROM outbox_parked WHERE target = ?",
                vec![id.as_str().into()],
            )?;
            sql.exec(
                "DELETE FROM parked_reports WHERE conversation = ?",
                vec![id.as_str().into()],
            )?;
            let key = format!(
                "{tenant}:{}",
                auth::random_id().map_err(ApiError::internal)?
            );
            let body = serde_json::to_string(&Deliver {
                key: key.clone(),
                init: None,
                want_thread: false,
                events: vec![ConversationEvent::Erase],
            })?;
            outbox.push(&key, id.as_str(), &body, now_ms())?;
        }
        self.finish(Outcome {
            agent_events: vec![],
            targets: ids,
        })
        .await;
        Ok(())
    }

    /// Admin: erase one closed conversation (a GDPR request).
    async fn erase_one(&self, id: ConversationId) -> ApiResult<Done> {
        self.closed_one(&id)?;
        self.erase(vec![id.clone()]).await?;
        worker::console_log!("conversation {id} erased on request");
        Ok(Done {})
    }

    /// The pictures that agents of the saved configuration use.
    fn pictures_in_use(&self) -> ApiResult<BTreeSet<String>> {
        self.with_engine(|t| {
            t.config()
                .agents
                .iter()
                .filter_map(|a| a.avatar.clone())
                .collect()
        })
    }

    /// When the next sweep of unused pictures is due (ms), if one is.
    fn pictures_sweep_at(&self) -> ApiResult<Option<i64>> {
        Ok(self
            .kv_get(PICTURES_SWEEP_AT)?
            .and_then(|v| v.parse::<i64>().ok()))
    }

    /// A picture is being uploaded: sweep unused pictures once it is a day old (an
    /// admin uploads first and saves the configuration after).
    async fn picture_uploaded(&self) -> ApiResult<Done> {
        let due = now_ms() + self.day_secs * 1000 + 1_000;
        if self.pictures_sweep_at()?.is_none_or(|at| at > due) {
            self.kv_put(PICTURES_SWEEP_AT, &due.to_string())?;
        }
        self.schedule().await?;
        Ok(Done {})
    }

    /// Deletes from R2 the pictures of this tenant that no agent uses and that were
    /// uploaded more than a day ago (uploaded, then never saved in the configuration);
    /// plans the next sweep for the youngest unused one.
    async fn sweep_pictures(&self) -> ApiResult<()> {
        if self.pictures_sweep_at()?.is_none_or(|at| at > now_ms()) {
            return Ok(());
        }
        let prefix = crate::avatar_key(&self.tenant_name()?, "");
        let bucket = self.env.bucket(crate::conversation_do::ATTACHMENTS)?;
        let grace_ms = self.day_secs * 1000;
        let mut next: Option<i64> = None;
        let mut cursor: Option<String> = None;
        loop {
            let mut list = bucket.list().prefix(prefix.clone());
            if let Some(c) = cursor.take() {
                list = list.cursor(c);
            }
            let page = list.execute().await?;
            for o in page.objects() {
                let key = o.key();
                let id = key.strip_prefix(&prefix).unwrap_or_default();
                let unused_since = o.uploaded().as_millis() as i64 + grace_ms;
                // Read the configuration again for each: a save may have run meanwhile.
                if self.pictures_in_use()?.contains(id) {
                    continue;
                }
                if unused_since <= now_ms() {
                    worker::console_log!("pictures: deleting unused {key}");
                    bucket.delete(&key).await?;
                } else {
                    next = Some(next.map_or(unused_since, |n| n.min(unused_since)));
                }
            }
            cursor = page.cursor().filter(|_| page.truncated());
            if cursor.is_none() {
                break;
            }
        }
        match next {
            Some(at) => self.kv_put(PICTURES_SWEEP_AT, &(at + 1_000).to_string())?,
            None => self.kv_delete(PICTURES_SWEEP_AT)?,
        }
        Ok(())
    }

    /// Erases closed conversations older than the retention period, a batch at a time.
    async fn sweep_retention(&self) -> ApiResult<()> {
        let days = self.with_engine(|t| t.config().retention_days)?;
        let before = now().timestamp() - i64::from(days) * self.day_secs;
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let rows: Vec<Id> = self
            .sql()
            .exec(
                "SELECT id FROM closed WHERE ended_at < ? ORDER BY ended_at LIMIT 200",
                vec![before.into()],
            )?
            .to_array()?;
        let ids = rows
            .into_iter()
            .filter_map(|r| ConversationId::new(r.id).ok())
            .collect::<Vec<_>>();
        if !ids.is_empty() {
            worker::console_log!("retention: erasing {} closed conversations", ids.len());
        }
        self.erase(ids).await?;
        // Housekeeping of short-lived rows.
        let now_s = now().timestamp();
        let sql = self.sql();
        sql.exec("DELETE FROM tickets WHERE exp < ?", vec![now_s.into()])?;
        sql.exec("DELETE FROM sessions WHERE exp < ?", vec![now_s.into()])?;
        sql.exec(
            "DELETE FROM logins WHERE locked_until < ? AND at < ?",
            vec![now_s.into(), (now_s - 86_400).into()],
        )?;
        sql.exec(
            "DELETE FROM limits WHERE at < ?",
            vec![(now_ms() - 3_600_000).into()],
        )?;
        Ok(())
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
        self.public_site_info(&w.body)
    }

    /// The widget document's frame policy and site info. No origin check here: the
    /// document is framed only by the allowed origins (`frame-ancestors`), and what it
    /// carries is what any allowed page may read.
    fn site_document(&self, site: &SiteKey) -> ApiResult<rpc::SiteDocumentInfo> {
        Ok(rpc::SiteDocumentInfo {
            allowed_origins: self.site_origins(site)?,
            info: self.public_site_info(site)?,
        })
    }

    /// A site's name, language, availability now, accent, reply time and team.
    fn public_site_info(&self, site: &SiteKey) -> ApiResult<SiteInfo> {
        let tenant = self.name.borrow().clone();
        self.with_engine(|t| -> ApiResult<SiteInfo> {
            let s = t.config().site(site).ok_or_else(|| {
                ApiError::not_found("unknown_site", format!("unknown site {site}"))
            })?;
            Ok(SiteInfo {
                site: s.key.clone(),
                name: s.name.clone(),
                language: s.language.clone(),
                availability: t.availability(&s.key, now())?,
                accent: s.accent.clone(),
                typical_reply_mins: s.typical_reply_mins,
                team: t
                    .config()
                    .agents
                    .iter()
                    .filter(|a| a.queues.contains(&s.queue))
                    .take(3)
                    .map(|a| shared::protocol::TeamFace {
                        initials: shared::config::initials(&a.name),
                        picture: a
                            .avatar
                            .as_ref()
                            .zip(tenant.as_ref())
                            .map(|(p, t)| shared::attachment::picture_path(t.as_str(), p)),
                    })
                    .collect(),
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
        let pictures = |t: &Tenant| -> BTreeSet<String> {
            t.config()
                .agents
                .iter()
                .filter_map(|a| a.avatar.clone())
                .collect()
        };
        let before = self.with_engine(pictures).unwrap_or_default();
        self.write_config(&admin, engine)?;
        self.exec(Command::Tick).await?;
        // A picture no agent uses any more (replaced or removed) leaves R2.
        let after = self.with_engine(pictures)?;
        let tenant = self.tenant_name()?;
        if let Ok(bucket) = self.env.bucket(crate::conversation_do::ATTACHMENTS) {
            for id in before.difference(&after) {
                if let Err(e) = bucket.delete(crate::avatar_key(&tenant, id)).await {
                    worker::console_error!("picture {id}: {e}");
                }
            }
        }
        // Signed-in consoles get the new reasons and templates at once.
        let cfg = self.with_engine(|t| t.config().clone())?;
        let (idle_reasons, wrap_up_reasons, templates) = config_lists(&cfg);
        let frame = encode(&AgentServerFrame::Config {
            idle_reasons,
            wrap_up_reasons,
            templates,
        });
        for ws in self.state.get_websockets() {
            let _ = ws.send_with_str(&frame);
        }
        Ok(Done {})
    }

    async fn rpc(&self, req: ToTenant) -> worker::Result<Response> {
        match req {
            ToTenant::Site(rpc::Site(w)) => answer::<rpc::Site>(self.site_info(w)),
            ToTenant::Start(rpc::Start(w)) => answer::<rpc::Start>(self.start(w).await),
            ToTenant::LeaveMessage(rpc::LeaveMessage(w)) => {
                answer::<rpc::LeaveMessage>(self.leave_message(w).await)
            }
            ToTenant::SignInBegin(b) => answer::<rpc::SignInBegin>(self.sign_in_begin(b)),
            ToTenant::SignInFinish(f) => {
                let r = match self.sign_in_finish(f) {
                    Ok((r, o)) => {
                        self.finish(o).await;
                        Ok(r)
                    }
                    Err(e) => Err(e),
                };
                answer::<rpc::SignInFinish>(r)
            }
            ToTenant::ControlTicket(c) => answer::<rpc::ControlTicket>(self.control_ticket(c)),
            ToTenant::Revoke(r) => answer::<rpc::Revoke>(self.revoke(r).await),
            ToTenant::Unlock(u) => answer::<rpc::Unlock>(self.unlock(&u.agent)),
            ToTenant::SetPassword(p) => answer::<rpc::SetPassword>(self.set_password(p).await),
            ToTenant::CheckSession(c) => answer::<rpc::CheckSession>(self.check_session(c)),
            ToTenant::SiteDocument(d) => answer::<rpc::SiteDocument>(self.site_document(&d.site)),
            ToTenant::EraseClosed(e) => answer::<rpc::EraseClosed>(self.erase_one(e.id).await),
            ToTenant::GetConfig(_) => answer::<rpc::GetConfig>(self.with_engine(|t| ConfigReply {
                config: t.config().clone(),
            })),
            ToTenant::PutConfig(rpc::PutConfig(admin)) => {
                answer::<rpc::PutConfig>(self.put_config(admin).await)
            }
            ToTenant::ListClosed(q) => answer::<rpc::ListClosed>(self.closed_page(q)),
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
            ToTenant::HookMaterial(h) => answer::<rpc::HookMaterial>(self.hook_material(h).await),
            ToTenant::HookDead(rpc::HookDead(job)) => answer::<rpc::HookDead>(self.hook_dead(job)),
            ToTenant::ListDeadHooks(_) => answer::<rpc::ListDeadHooks>(self.dead_hooks()),
            ToTenant::RetryDeadHook(r) => {
                let r = match self.retry_dead_hook(&r.id) {
                    Ok(()) => self.flush_hooks().await.map(|()| Done {}),
                    Err(e) => Err(e),
                };
                answer::<rpc::RetryDeadHook>(r)
            }
            ToTenant::ListParked(_) => answer::<rpc::ListParked>(self.parked_deliveries()),
            ToTenant::RetryParked(r) => answer::<rpc::RetryParked>(self.retry_parked(&r.key).await),
            ToTenant::RetryAllParked(_) => {
                answer::<rpc::RetryAllParked>(self.retry_all_parked().await)
            }
            ToTenant::PictureUploaded(_) => {
                answer::<rpc::PictureUploaded>(self.picture_uploaded().await)
            }
        }
    }
}

impl DurableObject for TenantObject {
    fn new(state: State, env: Env) -> Self {
        let start_limit = env_u32(&env, "RATE_START_PER_MINUTE", 30);
        let sign_in_limit = env_u32(&env, "RATE_SIGN_IN_PER_MINUTE", 30);
        let faults = Faults::from_env(&env);
        let day_secs = i64::from(env_u32(&env, "TEST_RETENTION_DAY_SECS", 86_400).max(1));
        Self {
            state,
            env,
            engine: RefCell::new(None),
            name: RefCell::new(None),
            start_limit,
            sign_in_limit,
            day_secs,
            faults,
            delivering: RefCell::new(BTreeSet::new()),
            alarm_at: Cell::new(None),
            supervisor_pushed: Cell::new(0),
            supervisor_dirty: Cell::new(false),
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
        if let Err(e) = self.load(name.clone()) {
            // A tenant without configuration may still be configured by an admin.
            if !matches!(call, ToTenant::PutConfig(_)) {
                return e.to_response();
            }
            // Nothing is written until the configuration is accepted (write_config).
            match name.map(TenantId::new) {
                Some(Ok(n)) => *self.name.borrow_mut() = Some(n),
                _ => return e.to_response(),
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
            if let Err(e) = self.flush_hooks().await {
                worker::console_error!("webhook queue: {e}");
            }
            if self.supervisor_dirty.get() {
                self.push_supervisors().await;
            }
            if let Err(e) = self.sweep_retention().await {
                worker::console_error!("retention: {e}");
            }
            if let Err(e) = self.sweep_pictures().await {
                worker::console_error!("pictures: {e}");
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
        if text.contains('\u{FFFD}') {
            let _ = ws.close(Some(1007), Some("invalid UTF-8"));
            return Ok(());
        }
        let Some(info) = ws.deserialize_attachment::<SocketInfo>().ok().flatten() else {
            let _ = ws.close(Some(4001), Some("unknown session"));
            return Ok(());
        };
        if let Err(e) = self.load(None) {
            let b = e.public();
            err(&b.error, b.message);
            return Ok(());
        }
        if let Err(e) = self.on_agent_frame(&ws, &info, &text).await {
            let b = e.public();
            err(&b.error, b.message);
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

/// The `kind` column of a closed record.
fn kind_of(c: &ClosedConversation) -> &'static str {
    match c.kind {
        shared::engine::ConversationKind::LeftMessage => "left_message",
        _ => "chat",
    }
}

/// The number a `SELECT COUNT(*) AS n …` query answers.
pub fn count(
    sql: &worker::SqlStorage,
    query: &str,
    params: Vec<worker::SqlStorageValue>,
) -> ApiResult<i64> {
    #[derive(Deserialize)]
    struct N {
        n: i64,
    }
    let rows: Vec<N> = sql.exec(query, params)?.to_array()?;
    Ok(rows.first().map_or(0, |r| r.n))
}

/// Records a ticket's nonce in `tickets`; refuses one seen before (tickets are single use).
pub fn consume_nonce(sql: &worker::SqlStorage, nonce: &str, exp: i64) -> ApiResult<()> {
    let seen = count(
        sql,
        "SELECT COUNT(*) AS n FROM tickets WHERE nonce = ?",
        vec![nonce.into()],
    )?;
    if seen > 0 {
        return Err(ApiError::unauthorized(
            "this ticket was used already; ask for a new one",
        ));
    }
    sql.exec(
        "INSERT INTO tickets (nonce, exp) VALUES (?, ?)",
        vec![nonce.into(), exp.into()],
    )?;
    Ok(())
}

/// Reasons and templates as the console shows them.
fn config_lists(
    cfg: &shared::config::TenantConfig,
) -> (Vec<ReasonInfo>, Vec<ReasonInfo>, Vec<TemplateInfo>) {
    let reasons = |v: &[shared::config::Reason]| {
        v.iter()
            .map(|r| ReasonInfo {
                id: r.id.clone(),
                label: r.label.clone(),
                label_de: r.label_de.clone(),
            })
            .collect()
    };
    let templates = cfg
        .templates
        .iter()
        .map(|t| TemplateInfo {
            id: t.id.clone(),
            name: t.name.clone(),
            text: t.text.clone(),
        })
        .collect();
    (
        reasons(&cfg.idle_reasons),
        reasons(&cfg.wrap_up_reasons),
        templates,
    )
}

/// A parked outbox row as the admin sees it.
fn parked_of_row(r: crate::outbox::ParkedRow) -> rpc::ParkedDelivery {
    rpc::ParkedDelivery {
        summary: serde_json::from_str::<Deliver>(&r.body)
            .map(|d| d.summary())
            .unwrap_or_else(|e| format!("unreadable: {e}")),
        key: r.key,
        from: "routing".into(),
        target: r.target,
        attempts: r.attempts,
        error: r.error,
        at: chrono::DateTime::from_timestamp_millis(r.at).unwrap_or_default(),
    }
}
