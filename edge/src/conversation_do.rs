//! One Durable Object per conversation: it **carries the chat**. A message between
//! the visitor and the agents crosses this object and no other.
//!
//! Rules:
//! - The transcript rules are [`shared::transcript`]'s. Every accepted message is
//!   written to SQLite (one statement) **before** it is acknowledged, then sent once,
//!   encoded once, to every socket in the chat.
//! - The sockets of everyone in the chat live here: visitors (tag `v`, token checked,
//!   origin checked) and agents (tag `a`, opened with a ticket from the tenant). Who
//!   may be here comes from the tenant as [`ConversationEvent::Access`]; a newer
//!   list closes the sockets of agents who left and makes a wrap-up reader read-only.
//!   A ticket newer than the list this object has seen is trusted until the list
//!   catches up (the tenant signed it after deciding).
//! - The tenant's decisions arrive as [`Deliver`] with a key, applied once in the
//!   same transaction as their effects. This object's own reports to the tenant
//!   (customer ended, inactive) go through its [`Outbox`] and are retried by its alarm.
//! - Inactivity is measured here: the alarm fires at the last customer activity (or
//!   the moment the chat became active) plus the queue's inactivity timeout, and
//!   only then reports to the tenant. No message is reported to the tenant.
//! - On connect a socket gets `welcome` and then exactly the messages after the
//!   sequence number it gives (`after`), in order.
//! - Visitor frames are rate limited per conversation (`RATE_VISITOR_PER_MINUTE`) with a
//!   token bucket stored in `limits` (so eviction does not reset it). Typing frames
//!   are coalesced: one is passed on when the state changes (at most 10 per second) or
//!   every 3 s while it stays "typing".
//! - Sockets open with single-use tickets (nonces recorded in `tickets`): a visitor
//!   gets one by a POST with the visitor token in a header (origin and token expiry
//!   checked there: [`TOKEN_IDLE_SECS`] after the last message); an agent gets one from
//!   the tenant. A socket's `Origin` must be the service's or an allowed one.
//! - Visitors get messages as [`Message::for_visitor`]: agents by display name only.
//! - Nothing is written for an id that was never created: unknown ids are refused
//!   after a read. [`ConversationEvent::Erase`] deletes everything the object holds.
//! - A text frame with U+FFFD (what the runtime leaves of invalid UTF-8) closes the
//!   socket with 1007; a frame is never stored repaired.

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::outbox::{Applied, Drained, Faults, Outbox, Retry};
use crate::{answer, call, env_u32, now, session_secret, stub, Caller};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use shared::engine::{ConversationEvent, Customer, Participant, VisitorStatus};
use shared::ids::{AgentId, ConversationId, TenantId};
use shared::protocol::{encode, AgentChatFrame, AgentServerFrame, VisitorEvent, VisitorFrame};
use shared::ratelimit::Bucket;
use shared::rpc::{
    self, ConversationReport, Deliver, Delivered, Done, Report, ToConversation, TranscriptReply,
};
use shared::transcript::{Appended, Author, Message, Transcript};
use std::cell::{Cell, RefCell};
use worker::{
    durable_object, DurableObject, Env, Request, Response, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

/// What the object keeps besides messages (one row, written on lifecycle changes only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub customer: Customer,
    pub token_hash: String,
    pub allowed_origins: Vec<String>,
    pub status: VisitorStatus,
    /// The latest access list from the tenant, and its version.
    #[serde(default)]
    pub access_version: u32,
    #[serde(default)]
    pub access: Vec<Participant>,
    #[serde(default = "default_inactivity")]
    pub inactivity_secs: u32,
    /// When the chat last became active (the inactivity clock starts here).
    #[serde(default)]
    pub active_since: Option<DateTime<Utc>>,
    /// Agents whose sessions were revoked, and when: older tickets are refused.
    #[serde(default)]
    pub revoked: std::collections::BTreeMap<AgentId, i64>,
    /// The visitor's rating, once given (after the end).
    #[serde(default)]
    pub rating: Option<shared::engine::Rating>,
}

/// A visitor token stops working this long after the conversation's last message.
pub const TOKEN_IDLE_SECS: i64 = 30 * 24 * 3600;

fn default_inactivity() -> u32 {
    shared::config::DEFAULT_INACTIVITY_TIMEOUT_SECS
}

struct Loaded {
    meta: Meta,
    transcript: Transcript,
    /// Last customer message or activation, whichever is later.
    last_activity: DateTime<Utc>,
    /// The visitor's rate-limit bucket as last stored (read from storage once).
    visitor_bucket: Option<Bucket>,
}

/// What an agent's chat socket remembers across hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AgentSock {
    agent: AgentId,
    name: String,
    can_write: bool,
    /// The access version the socket was admitted under.
    version: u32,
    /// A supervisor reading along (read-only, outside the access list).
    #[serde(default)]
    observer: bool,
}

const VISITOR_TAG: &str = "v";
/// The R2 bucket binding of attachments.
pub const ATTACHMENTS: &str = "ATTACHMENTS";

const AGENT_TAG: &str = "a";

#[durable_object]
pub struct ConversationObject {
    state: State,
    env: Env,
    loaded: RefCell<Option<Loaded>>,
    faults: Faults,
    delivering: Cell<bool>,
    /// The alarm time last set (ms; 0 = none), to skip needless storage writes.
    alarm_at: Cell<i64>,
    visitor_limit: u32,
    /// Last typing state passed on per sender, and when (ms).
    typing: RefCell<std::collections::HashMap<String, (bool, i64)>>,
}

#[derive(Deserialize)]
struct ValueRow {
    value: String,
}

fn unknown() -> ApiError {
    ApiError::not_found("unknown_conversation", "unknown conversation")
}

impl ConversationObject {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn create_tables(&self) -> ApiResult<()> {
        let sql = self.sql();
        for ddl in [
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS tickets (nonce TEXT PRIMARY KEY, exp INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS limits (key TEXT PRIMARY KEY, value TEXT NOT NULL, at INTEGER NOT NULL)",
        ] {
            sql.exec(ddl, None)?;
        }
        Outbox { sql: &sql }.ensure()?;
        Applied { sql: &sql }.ensure()?;
        Ok(())
    }

    /// Loads the conversation; `false` (after reading only) when it was never created.
    fn load(&self) -> ApiResult<bool> {
        if self.loaded.borrow().is_some() {
            return Ok(true);
        }
        let sql = self.sql();
        let made = crate::tenant_do::count(
            &sql,
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            vec![],
        )?;
        if made == 0 {
            return Ok(false);
        }
        self.create_tables()?; // Tables added since the conversation was made.
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
        let last_customer = transcript
            .messages()
            .iter()
            .rev()
            .find(|m| matches!(m.author, Author::Customer { .. }))
            .map(|m| m.at);
        let last_activity = last_customer
            .into_iter()
            .chain(meta.active_since)
            .max()
            .unwrap_or_else(now);
        *self.loaded.borrow_mut() = Some(Loaded {
            meta,
            transcript,
            last_activity,
            visitor_bucket: None,
        });
        Ok(true)
    }

    fn require(&self) -> ApiResult<()> {
        if self.load()? {
            Ok(())
        } else {
            Err(unknown())
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

    fn with<R>(&self, f: impl FnOnce(&mut Loaded) -> R) -> ApiResult<R> {
        let mut l = self.loaded.borrow_mut();
        Ok(f(l.as_mut().ok_or_else(unknown)?))
    }

    fn meta(&self) -> ApiResult<Meta> {
        self.with(|l| l.meta.clone())
    }

    /// Checks token (and its expiry), origin and rate limit of a visitor request
    /// that writes (a ticket, an end).
    fn check_visitor(&self, token: &str, caller: &Caller) -> ApiResult<Meta> {
        let meta = self.check_visitor_read(token, caller)?;
        self.rate()?;
        Ok(meta)
    }

    /// Checks token (and its expiry) and origin of a visitor request that only reads.
    fn check_visitor_read(&self, token: &str, caller: &Caller) -> ApiResult<Meta> {
        self.require()?;
        let meta = self.meta()?;
        if token.is_empty() {
            return Err(ApiError::unauthorized(
                "the visitor token is missing (Authorization: Bearer …)",
            ));
        }
        if !auth::same(&auth::sha256_hex(token), &meta.token_hash) {
            return Err(ApiError::unauthorized(
                "the visitor token is not valid for this conversation",
            ));
        }
        let last = self.with(|l| l.transcript.messages().last().map(|m| m.at))?;
        if last.is_some_and(|at| (now() - at).num_seconds() > TOKEN_IDLE_SECS) {
            return Err(ApiError::new(
                401,
                "token_expired",
                "the visitor token expired 30 days after the chat's last message",
            ));
        }
        crate::check_origin(caller, &meta.allowed_origins)?;
        Ok(meta)
    }

    /// Takes a token from this conversation's stored visitor bucket. The bucket is
    /// read from storage once per load and kept beside the transcript; a take is
    /// written once the bucket is at most half full (`Bucket::worth_storing`), so a
    /// burst's limit survives eviction while ordinary chatting writes nothing for it.
    fn rate(&self) -> ApiResult<()> {
        let at = now();
        let sql = self.sql();
        let held = self.with(|l| l.visitor_bucket)?;
        let mut b = match held {
            Some(b) => b,
            None => {
                let rows: Vec<ValueRow> = sql
                    .exec("SELECT value FROM limits WHERE key = 'visitor'", None)?
                    .to_array()?;
                rows.first()
                    .and_then(|r| serde_json::from_str::<Bucket>(&r.value).ok())
                    .unwrap_or_else(|| Bucket::full(self.visitor_limit, at))
            }
        };
        let r = b.take(self.visitor_limit, 60, at);
        if b.worth_storing(self.visitor_limit) {
            sql.exec(
                "INSERT OR REPLACE INTO limits (key, value, at) VALUES ('visitor', ?, ?)",
                vec![
                    serde_json::to_string(&b)?.into(),
                    at.timestamp_millis().into(),
                ],
            )?;
        }
        self.with(|l| l.visitor_bucket = Some(b))?;
        r.map_err(ApiError::rate_limited)
    }

    /// Whether a typing frame from `who` is passed on (see module docs).
    fn pass_typing(&self, who: &str, typing: bool) -> bool {
        let t = now().timestamp_millis();
        let mut m = self.typing.borrow_mut();
        let pass = shared::ratelimit::pass_typing(m.get(who).copied(), typing, t);
        if pass {
            m.insert(who.to_owned(), (typing, t));
        }
        pass
    }

    /// The visitor's pages, browser and time zone (row `visitor` of `meta`).
    fn visitor_info(&self) -> ApiResult<shared::visitor::VisitorInfo> {
        let rows: Vec<ValueRow> = self
            .sql()
            .exec("SELECT value FROM meta WHERE key = 'visitor'", None)?
            .to_array()?;
        Ok(match rows.first() {
            Some(r) => serde_json::from_str(&r.value)?,
            None => Default::default(),
        })
    }

    fn save_visitor_info(&self, info: &shared::visitor::VisitorInfo) -> ApiResult<()> {
        self.sql().exec(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('visitor', ?)",
            vec![serde_json::to_string(info)?.into()],
        )?;
        Ok(())
    }

    /// Tells the agents in the chat what is known about the visitor now.
    fn send_visitor_info(&self, info: &shared::visitor::VisitorInfo) -> ApiResult<()> {
        let conversation = self.with(|l| l.meta.conversation.clone())?;
        self.send_tag(
            AGENT_TAG,
            &encode(&AgentServerFrame::Visitor {
                conversation,
                info: info.clone(),
            }),
        );
        Ok(())
    }

    fn send_tag(&self, tag: &str, text: &str) {
        for ws in self.state.get_websockets_with_tag(tag) {
            let _ = ws.send_with_str(text);
        }
    }

    /// Sends a stored message to everyone in the chat but its sender's socket
    /// (which gets it inside its `ack`), each encoding done once.
    fn broadcast_message(
        &self,
        conversation: &ConversationId,
        m: &Message,
        sender: Option<&WebSocket>,
    ) {
        let to = |tag: &str, text: &str| {
            for ws in self.state.get_websockets_with_tag(tag) {
                if Some(&ws) != sender {
                    let _ = ws.send_with_str(text);
                }
            }
        };
        to(
            VISITOR_TAG,
            &encode(&VisitorEvent::Message {
                message: m.for_visitor(),
            }),
        );
        to(
            AGENT_TAG,
            &encode(&AgentServerFrame::Message {
                conversation: conversation.clone(),
                message: m.clone(),
            }),
        );
    }

    // ------------------------------------------------------------ tenant → here

    /// Creates the conversation (the first delivery of its start).
    fn init(&self, i: rpc::Init) -> ApiResult<()> {
        self.create_tables()?;
        let at = now();
        let mut transcript = Transcript::default();
        let first = transcript.append_customer(&i.customer.name, i.client_id, &i.text, at)?;
        let meta = Meta {
            tenant: i.tenant,
            conversation: i.conversation,
            customer: i.customer,
            token_hash: i.token_hash,
            allowed_origins: i.allowed_origins,
            status: VisitorStatus::Queued { position: 1 },
            access_version: 0,
            access: vec![],
            inactivity_secs: default_inactivity(),
            active_since: None,
            revoked: Default::default(),
            rating: None,
        };
        self.save_meta(&meta)?;
        self.save_message(first.message())?;
        self.alarm_at.set(0); // A new conversation has no alarm.
        *self.loaded.borrow_mut() = Some(Loaded {
            meta,
            transcript,
            last_activity: at,
            visitor_bucket: None,
        });
        Ok(())
    }

    /// Applies the tenant's events once per key; then sends what they mean.
    async fn deliver(&self, d: Deliver) -> ApiResult<Delivered> {
        let exists = self.load()?;
        let sql = self.sql();
        let want_thread = d.want_thread;
        let thread = |this: &Self| -> ApiResult<Option<Vec<Message>>> {
            if want_thread {
                this.with(|l| Some(l.transcript.messages().to_vec()))
            } else {
                Ok(None)
            }
        };
        if exists && (Applied { sql: &sql }).seen(&d.key)? {
            return Ok(Delivered {
                duplicate: true,
                thread: thread(self)?,
            });
        }
        if d.events.contains(&ConversationEvent::Erase) {
            return self.erase(exists).await;
        }
        match (d.init, exists) {
            // Created and its first events applied in one transaction.
            (Some(i), false) => self.init(i)?,
            (None, false) => return Err(unknown()),
            (_, true) => {}
        }
        let at = now();
        let mut notes = Vec::new();
        let mut statuses = Vec::new();
        let mut access_changed = false;
        let mut revoked = Vec::new();
        // One synchronous run: state, rows and the applied key commit together.
        let meta = self.with(|l| {
            for e in d.events {
                match e {
                    ConversationEvent::Note(note) => {
                        notes.push(l.transcript.append_note(note, at));
                    }
                    ConversationEvent::Status(status) => {
                        let was_active = matches!(l.meta.status, VisitorStatus::Active { .. });
                        if matches!(status, VisitorStatus::Active { .. }) && !was_active {
                            l.meta.active_since = Some(at);
                            l.last_activity = at;
                        }
                        l.meta.status = status.clone();
                        statuses.push(status);
                    }
                    ConversationEvent::Access {
                        version,
                        agents,
                        inactivity_secs,
                    } => {
                        if version > l.meta.access_version {
                            l.meta.access_version = version;
                            l.meta.access = agents;
                            l.meta.inactivity_secs = inactivity_secs;
                            access_changed = true;
                        }
                    }
                    ConversationEvent::Revoked { agent, at } => {
                        l.meta.revoked.insert(agent.clone(), at);
                        revoked.push(agent);
                    }
                    ConversationEvent::Erase => {}
                }
            }
            l.meta.clone()
        })?;
        for m in &notes {
            self.save_message(m)?;
        }
        self.save_meta(&meta)?;
        Applied { sql: &sql }.record(&d.key, at.timestamp_millis())?;
        // Delivered to sockets only after it is stored.
        for m in &notes {
            self.broadcast_message(&meta.conversation, m, None);
        }
        for status in statuses {
            self.send_tag(VISITOR_TAG, &encode(&VisitorEvent::Status { status }));
        }
        if access_changed {
            self.apply_access(&meta);
        }
        for agent in revoked {
            for ws in self
                .state
                .get_websockets_with_tag(&format!("agent:{agent}"))
            {
                let _ = ws.close(Some(4003), Some("session revoked"));
            }
        }
        self.schedule().await?;
        Ok(Delivered {
            duplicate: false,
            thread: thread(self)?,
        })
    }

    /// Deletes everything: sockets closed, storage emptied (retention or erasure). A
    /// repeat finds nothing and answers the same.
    async fn erase(&self, exists: bool) -> ApiResult<Delivered> {
        for ws in self.state.get_websockets() {
            let _ = ws.close(Some(4004), Some("conversation erased"));
        }
        if exists {
            if let Ok(meta) = self.meta() {
                self.erase_attachments(&meta).await?;
            }
            self.state.storage().delete_alarm().await?;
            self.state.storage().delete_all().await?;
            worker::console_log!("conversation erased");
        }
        *self.loaded.borrow_mut() = None;
        self.alarm_at.set(0);
        Ok(Delivered {
            duplicate: !exists,
            thread: None,
        })
    }

    /// The R2 key prefix of this conversation's attachments.
    fn attachment_prefix(meta: &Meta) -> String {
        format!("{}/{}/", meta.tenant, meta.conversation)
    }

    /// Deletes every attachment of the conversation from R2.
    async fn erase_attachments(&self, meta: &Meta) -> ApiResult<()> {
        let bucket = self.env.bucket(ATTACHMENTS)?;
        loop {
            let list = bucket
                .list()
                .prefix(Self::attachment_prefix(meta))
                .execute()
                .await?;
            let keys: Vec<String> = list.objects().iter().map(|o| o.key()).collect();
            if keys.is_empty() {
                return Ok(());
            }
            for k in keys {
                bucket.delete(k).await?;
            }
        }
    }

    /// Who asks for an attachment: the visitor (token, origin) or an agent of the
    /// chat (a session the Worker verified, not revoked, in the access list).
    fn attachment_access(&self, req: &Request, write: bool) -> ApiResult<(Meta, Author)> {
        use crate::attachment_headers as h;
        let header = |k: &str| req.headers().get(k).ok().flatten().unwrap_or_default();
        self.require()?;
        let caller: Caller = serde_json::from_str(&header(h::CALLER))?;
        let agent = header(h::AGENT);
        if agent.is_empty() {
            let meta = if write {
                self.check_visitor(&header(h::VISITOR), &caller)?
            } else {
                self.check_visitor_read(&header(h::VISITOR), &caller)?
            };
            let name = meta.customer.name.clone();
            return Ok((meta, Author::Customer { name }));
        }
        let meta = self.meta()?;
        let agent = AgentId::new(agent)?;
        let issued: i64 = header(h::ISSUED).parse().unwrap_or(0);
        let not_yours = || {
            ApiError::forbidden(
                "not_participant",
                format!("you are not in conversation {}", meta.conversation),
            )
        };
        if header("X-Sb-Tenant") != meta.tenant.as_str() {
            return Err(not_yours());
        }
        if meta.revoked.get(&agent).is_some_and(|at| issued <= *at) {
            return Err(ApiError::unauthorized(
                "this session was revoked; sign in again",
            ));
        }
        let p = meta
            .access
            .iter()
            .find(|p| p.agent == agent)
            .ok_or_else(not_yours)?;
        if write && !p.can_write {
            return Err(ApiError::forbidden(
                "not_participant",
                format!("you can only read conversation {} now", meta.conversation),
            ));
        }
        let name = p.name.clone();
        Ok((meta, Author::Agent { id: agent, name }))
    }

    /// Stores an uploaded file in R2 and its message in the transcript.
    async fn upload(&self, mut req: Request) -> ApiResult<Response> {
        let (meta, author) = self.attachment_access(&req, true)?;
        let name = crate::query(&req, "name");
        let client_id = shared::ids::ClientMsgId::new(crate::query(&req, "client_id"))?;
        let bytes = req.bytes().await?;
        let content_type = shared::attachment::check(&name, &bytes)
            .map_err(|e| ApiError::new(e.status(), e.code(), e.to_string()))?;
        // A resend of a stored upload answers with the stored message.
        let known = self.with(|l| l.transcript.find_client(&client_id).cloned())?;
        let m = match known {
            Some(m) => m,
            None => {
                let attachment = shared::attachment::Attachment {
                    id: auth::random_id().map_err(ApiError::internal)?,
                    name,
                    content_type: content_type.to_owned(),
                    size: bytes.len() as u64,
                };
                if self.with(|l| l.transcript.is_ended())? {
                    return Err(shared::transcript::TranscriptError::Ended.into());
                }
                let key = format!("{}{}", Self::attachment_prefix(&meta), attachment.id);
                self.env
                    .bucket(ATTACHMENTS)?
                    .put(key, bytes)
                    .http_metadata(worker::HttpMetadata {
                        content_type: Some(content_type.to_owned()),
                        ..Default::default()
                    })
                    .execute()
                    .await?;
                let at = now();
                let customer = matches!(author, Author::Customer { .. });
                let r = self.with(|l| {
                    let r = l
                        .transcript
                        .append_attachment(author, client_id, attachment, at);
                    if customer && matches!(r, Ok(Appended::New(_))) {
                        l.last_activity = at;
                    }
                    r
                })??;
                let m = r.message().clone();
                if let Appended::New(_) = r {
                    self.save_message(&m)?;
                    self.broadcast_message(&meta.conversation, &m, None);
                }
                m
            }
        };
        let mut resp = Response::from_json(&serde_json::json!({
            "seq": m.seq,
            "message": m,
        }))?
        .with_status(201);
        resp.headers_mut().set("Cache-Control", "no-store")?;
        Ok(resp)
    }

    /// Serves a stored file to the visitor or an agent of the chat.
    async fn download(&self, req: &Request, id: &str) -> ApiResult<Response> {
        let (meta, _) = self.attachment_access(req, false)?;
        let att = self
            .with(|l| {
                l.transcript
                    .messages()
                    .iter()
                    .find_map(|m| m.attachment.clone().filter(|a| a.id == id))
            })?
            .ok_or_else(|| {
                ApiError::not_found(
                    "unknown_attachment",
                    format!("no attachment {id:?} in this conversation"),
                )
            })?;
        let key = format!("{}{}", Self::attachment_prefix(&meta), att.id);
        let object = self
            .env
            .bucket(ATTACHMENTS)?
            .get(key)
            .execute()
            .await?
            .ok_or_else(|| ApiError::not_found("unknown_attachment", "the file is gone"))?;
        let bytes = match object.body() {
            Some(b) => b.bytes().await?,
            None => vec![],
        };
        let mut resp = Response::from_bytes(bytes)?;
        let hd = resp.headers_mut();
        hd.set("Content-Type", &att.content_type)?;
        hd.set(
            "Content-Disposition",
            &shared::attachment::content_disposition(&att.name),
        )?;
        hd.set("X-Content-Type-Options", "nosniff")?;
        hd.set("Cache-Control", "private, no-store")?;
        hd.set("Content-Security-Policy", "default-src 'none'; sandbox")?;
        Ok(resp)
    }

    /// Closes the sockets of agents who left; updates write rights of the others.
    fn apply_access(&self, meta: &Meta) {
        for ws in self.state.get_websockets_with_tag(AGENT_TAG) {
            let Some(s) = ws.deserialize_attachment::<AgentSock>().ok().flatten() else {
                let _ = ws.close(Some(4001), Some("unknown socket"));
                continue;
            };
            if s.version > meta.access_version || s.observer {
                continue; // Admitted by a newer ticket than this list, or reading along.
            }
            match meta.access.iter().find(|p| p.agent == s.agent) {
                None => {
                    let _ = ws.close(Some(4003), Some("you left this conversation"));
                }
                Some(p) if p.can_write != s.can_write => {
                    let _ = ws.serialize_attachment(AgentSock {
                        can_write: p.can_write,
                        version: meta.access_version,
                        ..s
                    });
                }
                Some(_) => {}
            }
        }
    }

    // ------------------------------------------------------------ here → tenant

    /// Writes a report to the outbox (idempotent by key) and delivers it.
    async fn report(&self, report: ConversationReport) -> ApiResult<()> {
        let meta = self.meta()?;
        let key = match &report {
            ConversationReport::CustomerEnded => format!("{}:customer_end", meta.conversation),
            ConversationReport::Rated(_) => format!("{}:rated", meta.conversation),
            ConversationReport::Parked(p) => format!("{}:parked:{}", meta.conversation, p.key),
            ConversationReport::Inactive => {
                format!("{}:inactive:{}", meta.conversation, meta.access_version)
            }
        };
        let body = serde_json::to_string(&Report {
            key: key.clone(),
            conversation: meta.conversation.clone(),
            report,
        })?;
        let sql = self.sql();
        Outbox { sql: &sql }.push(&key, meta.tenant.as_str(), &body, now().timestamp_millis())?;
        self.schedule().await?;
        self.deliver_outbox().await;
        Ok(())
    }

    /// An admin (through the tenant) sends a parked report again: back into the
    /// outbox with its attempts reset, then delivered now.
    async fn resend_parked(&self, key: &str) -> ApiResult<rpc::Done> {
        self.require()?;
        let sql = self.sql();
        let now_ms = now().timestamp_millis();
        if (Outbox { sql: &sql }).unpark(key, now_ms)?.is_none() {
            return Err(ApiError::not_found(
                "unknown_delivery",
                format!("no parked delivery with key {key:?}"),
            ));
        }
        self.schedule().await?;
        self.deliver_outbox().await;
        Ok(rpc::Done {})
    }

    async fn deliver_outbox(&self) {
        if self.delivering.replace(true) {
            return;
        }
        if let Err(e) = self.deliver_rows().await {
            worker::console_error!("outbox: {e}");
        }
        self.delivering.set(false);
    }

    async fn deliver_rows(&self) -> ApiResult<()> {
        let meta = self.meta()?;
        let tenant = meta.tenant;
        let sql = self.sql();
        let env = &self.env;
        let to = tenant.as_str();
        let outbox = Outbox { sql: &sql };
        // Reports are retried until the tenant takes them; one it refused for good is
        // parked and reported to the tenant (which lists it for its admins), in the
        // same synchronous run that parked it; a parked "parked" report is not.
        let report_parked = |row: &crate::outbox::Row, error: &str| -> ApiResult<()> {
            let Ok(parked) = serde_json::from_str::<Report>(&row.body) else {
                return Ok(());
            };
            if matches!(parked.report, ConversationReport::Parked(_)) {
                return Ok(());
            }
            let now_ms = now().timestamp_millis();
            let key = format!("{}:parked:{}:{now_ms}", meta.conversation, row.key);
            let body = serde_json::to_string(&Report {
                key: key.clone(),
                conversation: meta.conversation.clone(),
                report: ConversationReport::Parked(rpc::ParkedDelivery {
                    key: row.key.clone(),
                    from: meta.conversation.to_string(),
                    target: "routing".into(),
                    summary: parked.summary(),
                    attempts: row.attempts + 1,
                    error: error.into(),
                    at: now(),
                }),
            })?;
            outbox.push(&key, to, &body, now_ms)
        };
        let (drained, _) = outbox
            .drain(
                to,
                Retry::UntilTaken,
                &self.faults,
                |body| async move {
                    let report: Report = serde_json::from_str(&body)?;
                    call(&stub(env, "TENANTS", to)?, report).await?;
                    Ok(None::<()>)
                },
                report_parked,
            )
            .await?;
        if drained == Drained::Backoff {
            self.schedule().await?;
        }
        Ok(())
    }

    /// The alarm: inactivity check while active, and outbox retries.
    async fn schedule(&self) -> ApiResult<()> {
        let inactivity = self.with(|l| {
            matches!(l.meta.status, VisitorStatus::Active { .. }).then(|| {
                (l.last_activity + Duration::seconds(i64::from(l.meta.inactivity_secs)))
                    .timestamp_millis()
            })
        })?;
        let sql = self.sql();
        let retry = Outbox { sql: &sql }.next_due()?;
        let next = inactivity.into_iter().chain(retry).min();
        // -1: unknown (after a restart); 0: no alarm.
        let want = next.map_or(0, |n| n.max(now().timestamp_millis() + 1));
        let have = self.alarm_at.get();
        if have == want || (have > 0 && want > 0 && have <= want && have > now().timestamp_millis())
        {
            // Already set, or an earlier alarm will come and reschedule.
            return Ok(());
        }
        let storage = self.state.storage();
        if want == 0 {
            storage.delete_alarm().await?;
        } else {
            storage.set_alarm(crate::at_ms(want)).await?;
        }
        self.alarm_at.set(want);
        Ok(())
    }

    async fn on_alarm(&self) -> ApiResult<()> {
        self.alarm_at.set(0);
        if !self.load()? {
            return Ok(());
        }
        let inactive = self.with(|l| {
            matches!(l.meta.status, VisitorStatus::Active { .. })
                && l.last_activity + Duration::seconds(i64::from(l.meta.inactivity_secs)) <= now()
        })?;
        if inactive {
            self.report(ConversationReport::Inactive).await?;
        }
        self.deliver_outbox().await;
        self.schedule().await
    }

    // ------------------------------------------------------------ sockets

    /// The `after` of a socket URL: a sequence number not past the last message.
    fn after(&self, req: &Request) -> ApiResult<u64> {
        let after = match crate::query(req, "after").as_str() {
            "" => 0,
            s => s.parse().map_err(|_| {
                ApiError::bad_request(
                    "invalid_after",
                    format!("after={s:?} is not a sequence number"),
                )
            })?,
        };
        let last = self.with(|l| l.transcript.last_seq())?;
        if after > last {
            return Err(ApiError::bad_request(
                "invalid_after",
                format!("after={after} is past the last message ({last})"),
            ));
        }
        Ok(after)
    }

    /// A visitor's socket ticket, for their token (checked with origin and expiry).
    fn visitor_ticket(&self, w: rpc::WithCaller<String>) -> ApiResult<rpc::TicketReply> {
        let meta = self.check_visitor(&w.body, &w.caller)?;
        let ticket = auth::sign(
            &session_secret(&self.env)?,
            auth::Purpose::VisitorTicket,
            &auth::VisitorTicket {
                conversation: meta.conversation,
                nonce: auth::random_id().map_err(ApiError::internal)?,
                exp: now().timestamp() + auth::TICKET_SECS,
            },
        );
        Ok(rpc::TicketReply {
            ticket,
            expires_in: auth::TICKET_SECS as u32,
        })
    }

    /// A socket's `Origin` must be this service's or one the site allows.
    fn check_socket_origin(req: &Request, allowed: &[String]) -> ApiResult<()> {
        let origin = crate::query(req, "origin");
        let me = crate::query(req, "self");
        if origin.is_empty() {
            return Err(ApiError::forbidden(
                "origin_missing",
                "the socket request has no Origin header",
            ));
        }
        if origin != me && !allowed.iter().any(|a| a == "*" || *a == origin) {
            return Err(ApiError::forbidden(
                "origin_not_allowed",
                format!("origin {origin} is not allowed for this site"),
            ));
        }
        Ok(())
    }

    fn accept_visitor(&self, req: &Request) -> ApiResult<Response> {
        self.require()?;
        let t: auth::VisitorTicket = auth::verify(
            &session_secret(&self.env)?,
            auth::Purpose::VisitorTicket,
            &crate::query(req, "ticket"),
            now(),
        )
        .map_err(|e| ApiError::unauthorized(format!("{e}; ask for a new one")))?;
        let meta = self.meta()?;
        if t.conversation != meta.conversation {
            return Err(ApiError::unauthorized(
                "this ticket is for another conversation",
            ));
        }
        Self::check_socket_origin(req, &meta.allowed_origins)?;
        let after = self.after(req)?;
        crate::tenant_do::consume_nonce(&self.sql(), &t.nonce, t.exp)?;
        let ua = req
            .headers()
            .get("User-Agent")
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut info = self.visitor_info()?;
        let browser = shared::visitor::browser_of(&ua);
        if info.browser != browser {
            info.browser = browser;
            self.save_visitor_info(&info)?;
            self.send_visitor_info(&info)?;
        }
        let pair = WebSocketPair::new()?;
        self.state
            .accept_websocket_with_tags(&pair.server, &[VISITOR_TAG]);
        let (last, missed) =
            self.with(|l| (l.transcript.last_seq(), l.transcript.after(after).to_vec()))?;
        let _ = pair.server.send_with_str(encode(&VisitorEvent::Welcome {
            conversation: meta.conversation,
            status: meta.status,
            last_seq: last,
        }));
        for m in missed {
            let _ = pair.server.send_with_str(encode(&VisitorEvent::Message {
                message: m.for_visitor(),
            }));
        }
        Ok(Response::from_websocket(pair.client)?)
    }

    fn accept_agent(&self, req: &Request) -> ApiResult<Response> {
        self.require()?;
        let t: auth::ChatTicket = auth::verify(
            &session_secret(&self.env)?,
            auth::Purpose::ChatTicket,
            &crate::query(req, "ticket"),
            now(),
        )
        .map_err(|e| {
            ApiError::unauthorized(format!(
                "the chat ticket is not valid ({e}); ask the console for a new one"
            ))
        })?;
        let meta = self.meta()?;
        if t.conversation != meta.conversation || t.tenant != meta.tenant {
            return Err(ApiError::forbidden(
                "not_participant",
                "this ticket is for another conversation",
            ));
        }
        if meta.revoked.get(&t.agent).is_some_and(|at| t.iat <= *at) {
            return Err(ApiError::unauthorized(
                "this ticket was issued before the session was revoked; sign in again",
            ));
        }
        let after = self.after(req)?;
        crate::tenant_do::consume_nonce(&self.sql(), &t.nonce, t.exp)?;
        // The tenant issues observer tickets only for live chats, to supervisors.
        let sock = if t.observer {
            AgentSock {
                agent: t.agent.clone(),
                name: t.name.clone(),
                can_write: false,
                version: t.version,
                observer: true,
            }
        } else if t.version > meta.access_version {
            AgentSock {
                agent: t.agent.clone(),
                name: t.name.clone(),
                can_write: t.can_write,
                version: t.version,
                observer: false,
            }
        } else {
            let p = meta
                .access
                .iter()
                .find(|p| p.agent == t.agent)
                .ok_or_else(|| {
                    ApiError::forbidden(
                        "not_participant",
                        format!(
                            "you are no longer a participant of conversation {}",
                            meta.conversation
                        ),
                    )
                })?;
            AgentSock {
                agent: p.agent.clone(),
                name: p.name.clone(),
                can_write: p.can_write,
                version: meta.access_version,
                observer: false,
            }
        };
        let pair = WebSocketPair::new()?;
        let agent_tag = format!("agent:{}", sock.agent);
        self.state
            .accept_websocket_with_tags(&pair.server, &[AGENT_TAG, &agent_tag]);
        let can_write = sock.can_write;
        pair.server.serialize_attachment(sock)?;
        let (last, missed) =
            self.with(|l| (l.transcript.last_seq(), l.transcript.after(after).to_vec()))?;
        let _ = pair
            .server
            .send_with_str(encode(&AgentServerFrame::Welcome {
                conversation: meta.conversation.clone(),
                last_seq: last,
                can_write,
            }));
        for m in missed {
            let _ = pair
                .server
                .send_with_str(encode(&AgentServerFrame::Message {
                    conversation: meta.conversation.clone(),
                    message: m,
                }));
        }
        let _ = pair
            .server
            .send_with_str(encode(&AgentServerFrame::Visitor {
                conversation: meta.conversation.clone(),
                info: self.visitor_info()?,
            }));
        Ok(Response::from_websocket(pair.client)?)
    }

    async fn on_visitor_frame(&self, ws: &WebSocket, text: &str) -> ApiResult<()> {
        let frame: VisitorFrame = shared::protocol::decode(text)?;
        self.require()?;
        if !matches!(frame, VisitorFrame::Ping | VisitorFrame::Typing { .. }) {
            self.rate()?;
        }
        match frame {
            VisitorFrame::Ping => {
                let _ = ws.send_with_str(encode(&VisitorEvent::Pong));
            }
            VisitorFrame::Send { client_id, text } => {
                let at = now();
                let (r, conversation) = self.with(|l| {
                    let r = l.transcript.append_customer(
                        &l.meta.customer.name,
                        client_id.clone(),
                        &text,
                        at,
                    );
                    if matches!(r, Ok(Appended::New(_))) {
                        l.last_activity = at;
                    }
                    (r, l.meta.conversation.clone())
                })?;
                let r = r?;
                let m = r.message();
                if let Appended::New(_) = r {
                    self.save_message(m)?;
                    self.broadcast_message(&conversation, m, Some(ws));
                }
                let _ = ws.send_with_str(encode(&VisitorEvent::Ack {
                    client_id,
                    seq: m.seq,
                    message: Some(m.for_visitor()),
                }));
            }
            VisitorFrame::Typing { typing } => {
                if !self.pass_typing("visitor", typing) {
                    return Ok(());
                }
                let (conversation, name) =
                    self.with(|l| (l.meta.conversation.clone(), l.meta.customer.name.clone()))?;
                self.send_tag(
                    AGENT_TAG,
                    &encode(&AgentServerFrame::Typing {
                        conversation,
                        typing,
                        name,
                    }),
                );
            }
            VisitorFrame::End => self.report(ConversationReport::CustomerEnded).await?,
            VisitorFrame::Page {
                url,
                title,
                time_zone,
            } => {
                shared::visitor::check_page(&url, &title, &time_zone)
                    .map_err(|e| ApiError::bad_request("invalid_page", e.to_string()))?;
                let mut info = self.visitor_info()?;
                let tz_changed = !time_zone.is_empty() && info.time_zone != time_zone;
                if info.record(&url, &title, &time_zone, now()) || tz_changed {
                    self.save_visitor_info(&info)?;
                    self.send_visitor_info(&info)?;
                }
            }
            VisitorFrame::Rate { score, comment } => {
                let (score, comment) = shared::intake::check_rating(score, comment.as_deref())
                    .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
                let mut meta = self.meta()?;
                if meta.status != VisitorStatus::Ended {
                    return Err(ApiError::new(
                        409,
                        "not_ended",
                        "a chat can be rated once it has ended",
                    ));
                }
                if meta.rating.is_some() {
                    return Err(ApiError::new(
                        409,
                        "already_rated",
                        "this chat has been rated already",
                    ));
                }
                let rating = shared::engine::Rating {
                    score,
                    comment,
                    at: now(),
                };
                meta.rating = Some(rating.clone());
                self.save_meta(&meta)?;
                self.with(|l| l.meta.rating = meta.rating.clone())?;
                let _ = ws.send_with_str(encode(&VisitorEvent::Rated { score }));
                self.report(ConversationReport::Rated(rating)).await?;
            }
        }
        Ok(())
    }

    fn on_agent_frame(&self, ws: &WebSocket, sock: &AgentSock, text: &str) -> ApiResult<()> {
        let frame: AgentChatFrame = shared::protocol::decode(text)?;
        self.require()?;
        let conversation = self.with(|l| l.meta.conversation.clone())?;
        match frame {
            AgentChatFrame::Ping => {
                let _ = ws.send_with_str(encode(&AgentServerFrame::Pong));
            }
            AgentChatFrame::Send { client_id, text } => {
                if !sock.can_write {
                    return Err(ApiError::forbidden(
                        "not_participant",
                        format!("you can only read conversation {conversation} now"),
                    ));
                }
                let r = self.with(|l| {
                    l.transcript.append_agent(
                        sock.agent.clone(),
                        &sock.name,
                        client_id.clone(),
                        &text,
                        now(),
                    )
                })??;
                let m = r.message();
                if let Appended::New(_) = r {
                    self.save_message(m)?;
                    self.broadcast_message(&conversation, m, Some(ws));
                }
                let _ = ws.send_with_str(encode(&AgentServerFrame::Ack {
                    conversation,
                    client_id,
                    seq: m.seq,
                    message: Some(m.clone()),
                }));
            }
            AgentChatFrame::Typing { typing } => {
                if !sock.can_write || !self.pass_typing(sock.agent.as_str(), typing) {
                    return Ok(());
                }
                self.send_tag(
                    VISITOR_TAG,
                    &encode(&VisitorEvent::Typing {
                        typing,
                        name: sock.name.clone(),
                    }),
                );
                let frame = encode(&AgentServerFrame::Typing {
                    conversation,
                    typing,
                    name: sock.name.clone(),
                });
                for other in self.state.get_websockets_with_tag(AGENT_TAG) {
                    let same = other
                        .deserialize_attachment::<AgentSock>()
                        .ok()
                        .flatten()
                        .is_some_and(|o| o.agent == sock.agent);
                    if !same {
                        let _ = other.send_with_str(&frame);
                    }
                }
            }
        }
        Ok(())
    }

    fn visitor_transcript(&self, w: rpc::WithCaller<String>) -> ApiResult<TranscriptReply> {
        let meta = self.check_visitor_read(&w.body, &w.caller)?;
        let messages = self.with(|l| {
            l.transcript
                .messages()
                .iter()
                .map(Message::for_visitor)
                .collect()
        })?;
        Ok(TranscriptReply {
            conversation: meta.conversation,
            customer_name: meta.customer.name,
            status: meta.status,
            messages,
        })
    }

    async fn rpc(&self, req: ToConversation) -> worker::Result<Response> {
        match req {
            ToConversation::Deliver(d) => answer::<Deliver>(self.deliver(d).await),
            ToConversation::ResendParked(r) => {
                answer::<rpc::ResendParked>(self.resend_parked(&r.key).await)
            }
            ToConversation::Read(r) => answer::<rpc::ReadTranscript>(
                self.require()
                    .and_then(|()| self.with(|l| l.transcript.after(r.after).to_vec())),
            ),
            ToConversation::VisitorTranscript(rpc::VisitorTranscript(w)) => {
                answer::<rpc::VisitorTranscript>(self.visitor_transcript(w))
            }
            ToConversation::VisitorTicket(rpc::VisitorTicket(w)) => {
                answer::<rpc::VisitorTicket>(self.visitor_ticket(w))
            }
            ToConversation::VisitorEnd(rpc::VisitorEnd(w)) => {
                let r = match self.check_visitor(&w.body, &w.caller) {
                    Ok(_) => self
                        .report(ConversationReport::CustomerEnded)
                        .await
                        .map(|()| Done {}),
                    Err(e) => Err(e),
                };
                answer::<rpc::VisitorEnd>(r)
            }
        }
    }
}

impl DurableObject for ConversationObject {
    fn new(state: State, env: Env) -> Self {
        let visitor_limit = env_u32(&env, "RATE_VISITOR_PER_MINUTE", 60);
        let faults = Faults::from_env(&env);
        Self {
            state,
            env,
            loaded: RefCell::new(None),
            faults,
            delivering: Cell::new(false),
            alarm_at: Cell::new(-1),
            visitor_limit,
            typing: RefCell::new(Default::default()),
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
        if path == "/agent-ws" {
            return match self.accept_agent(&req) {
                Ok(r) => Ok(r),
                Err(e) => e.to_response(),
            };
        }
        if path == "/attachments" {
            return match self.upload(req).await {
                Ok(r) => Ok(r),
                Err(e) => e.to_response(),
            };
        }
        if let Some(id) = path.strip_prefix("/attachments/") {
            let id = id.to_owned();
            return match self.download(&req, &id).await {
                Ok(r) => Ok(r),
                Err(e) => e.to_response(),
            };
        }
        let text = req.text().await.unwrap_or_default();
        match serde_json::from_str::<ToConversation>(&text) {
            Ok(c) => self.rpc(c).await,
            Err(e) => ApiError::bad_request("invalid_call", e.to_string()).to_response(),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(e) = self.on_alarm().await {
            worker::console_error!("alarm: {e}");
        }
        Response::ok("ok")
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        let agent = ws.deserialize_attachment::<AgentSock>().ok().flatten();
        let error = |code: String, message: String| match agent {
            Some(_) => encode(&AgentServerFrame::Error { code, message }),
            None => encode(&VisitorEvent::Error { code, message }),
        };
        let text = match message {
            WebSocketIncomingMessage::String(s) if s.contains('\u{FFFD}') => {
                let _ = ws.close(Some(1007), Some("invalid UTF-8"));
                return Ok(());
            }
            WebSocketIncomingMessage::String(s) => s,
            WebSocketIncomingMessage::Binary(_) => {
                let _ = ws.send_with_str(error(
                    "invalid_frame".into(),
                    "binary frames are not supported; send JSON text".into(),
                ));
                return Ok(());
            }
        };
        let r = match &agent {
            Some(sock) => self.on_agent_frame(&ws, sock, &text),
            None => self.on_visitor_frame(&ws, &text).await,
        };
        if let Err(e) = r {
            let b = e.public();
            let _ = ws.send_with_str(error(b.error, b.message));
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
