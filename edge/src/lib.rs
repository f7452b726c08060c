//! # Switchboard edge service
//!
//! A Cloudflare Worker that is a thin shell around `shared`: it parses HTTP
//! requests and socket frames, feeds them to the rules in `shared`, persists what
//! they decide in Durable Object SQLite storage, and delivers what they say.
//!
//! Three Durable Object classes (and a relay for benchmarks):
//! - [`tenant_do::TenantObject`], one per tenant, **routes**: the
//!   [`shared::engine::Tenant`] engine (agents, queues, offers, RONA, transfer,
//!   conference, wrap-up) stored as rows, agent sign-in, the agents' control
//!   sockets, the alarm for the earliest deadline, closed conversations, the admin API.
//!   It is never on a chat message's path.
//! - [`conversation_do::ConversationObject`], one per conversation, **carries the
//!   chat**: transcript, visitor token hash, and the sockets of everyone in the chat
//!   (visitor and agents, who join with a ticket from the tenant). Its alarm measures
//!   inactivity and reports only the resulting end to the tenant.
//! - [`directory_do::DirectoryObject`], one in all: which tenant a site key belongs to.
//!
//! Decisions crossing objects go through a durable [`outbox`] with idempotency keys.
//! Calls between objects are the typed requests of [`shared::rpc`] on one internal
//! endpoint ([`call`]); their errors are [`error::ApiError`]s.
//!
//! The Worker entry here routes `/api/v1/...` (the static UIs, the loader script and
//! the demo page are served by Workers static assets before the Worker runs).

pub mod auth;
pub mod conversation_do;
pub mod directory_do;
pub mod error;
pub mod outbox;
pub mod relay_do;
pub mod tenant_do;

use chrono::{DateTime, Utc};
use error::{ApiError, ApiResult};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::ids::{ConversationId, SiteKey, TenantId};
use shared::protocol::{AdminConfig, LeaveMessageRequest, SignInRequest, StartRequest};
use shared::rpc::{self, Call, Caller, WithCaller};
use worker::{event, Context, Env, Headers, Method, Request, RequestInit, Response, Stub};

/// The demo tenant loaded when `DEMO_SEED` is "true" (local runs).
pub const DEMO_TENANT: &str = include_str!("../demo-tenant.json");

/// The current time (the only clock read of the service).
pub fn now() -> DateTime<Utc> {
    let ms = worker::Date::now().as_millis();
    DateTime::<Utc>::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)).unwrap_or_default()
}

/// A point in time from milliseconds since the epoch (alarms take a `DateTime`;
/// a bare integer would be read as an offset from now).
pub fn at_ms(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

/// A string from a var or secret binding.
pub fn env_string(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.to_string())
        .ok()
        .or_else(|| env.secret(name).map(|v| v.to_string()).ok())
        .filter(|s| !s.is_empty())
}

/// A number from a var binding, or a default.
pub fn env_u32(env: &Env, name: &str, default: u32) -> u32 {
    env_string(env, name)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The session-signing secret. Local runs get theirs from `.dev.vars`.
pub fn session_secret(env: &Env) -> ApiResult<String> {
    env_string(env, "SESSION_SECRET").ok_or_else(|| {
        ApiError::internal("SESSION_SECRET is not configured (wrangler secret put SESSION_SECRET)")
    })
}

/// A Durable Object stub with the name it was addressed by.
pub struct Obj {
    pub stub: Stub,
    pub name: String,
}

/// Header that tells an object the name it is addressed by.
pub const OBJECT_NAME_HEADER: &str = "X-Object-Name";

/// The stub of a Durable Object by name.
pub fn stub(env: &Env, binding: &str, name: &str) -> ApiResult<Obj> {
    Ok(Obj {
        stub: env
            .durable_object(binding)?
            .id_from_name(name)?
            .get_stub()?,
        name: name.to_owned(),
    })
}

/// Calls another object with one typed request and decodes its typed reply.
pub async fn call<C: Call>(obj: &Obj, req: C) -> ApiResult<C::Reply> {
    let envelope: C::Envelope = req.into();
    let headers = Headers::new();
    headers.set(OBJECT_NAME_HEADER, &obj.name)?;
    headers.set("Content-Type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(serde_json::to_string(&envelope)?.into()));
    let req = Request::new_with_init("https://internal/rpc", &init)?;
    let mut resp = obj.stub.fetch_with_request(req).await?;
    let text = resp.text().await?;
    if resp.status_code() >= 400 {
        let mut e = ApiError::from_body(resp.status_code(), &text);
        e.retry_after = resp
            .headers()
            .get("Retry-After")
            .ok()
            .flatten()
            .and_then(|s| s.parse().ok());
        return Err(e);
    }
    Ok(serde_json::from_str(&text)?)
}

/// Turns a handler's typed reply into the response of an internal call.
pub fn answer<C: Call>(r: ApiResult<C::Reply>) -> worker::Result<Response> {
    respond(r)
}

/// Reads a JSON body, naming the field on error.
pub async fn json_body<T: DeserializeOwned>(req: &mut Request) -> ApiResult<T> {
    let text = req
        .text()
        .await
        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    if text.len() > 64 * 1024 {
        return Err(ApiError::new(
            413,
            "body_too_large",
            "the request body is larger than 64 KiB",
        ));
    }
    shared::protocol::decode_body(&text).map_err(|e| ApiError::bad_request("invalid_body", e.0))
}

/// Turns a handler result into a response.
pub fn respond<T: Serialize>(r: ApiResult<T>) -> worker::Result<Response> {
    match r {
        Ok(v) => Response::from_json(&v),
        Err(e) => e.to_response(),
    }
}

fn bearer(req: &Request) -> String {
    req.headers()
        .get("Authorization")
        .ok()
        .flatten()
        .and_then(|h| h.strip_prefix("Bearer ").map(str::to_owned))
        .unwrap_or_default()
}

/// A query-string parameter, or "" when absent.
pub(crate) fn query(req: &Request, key: &str) -> String {
    req.url()
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default()
}

fn client_ip(req: &Request) -> String {
    req.headers()
        .get("CF-Connecting-IP")
        .ok()
        .flatten()
        .unwrap_or_else(|| "unknown".into())
}

fn caller(req: &Request) -> Caller {
    Caller {
        ip: client_ip(req),
        origin: req.headers().get("Origin").ok().flatten(),
        self_origin: req
            .url()
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default(),
    }
}

/// Whether `caller` may use a site with `allowed` origins (the rule is
/// [`shared::config::origin_allowed`]).
pub fn origin_allowed(caller: &Caller, allowed: &[String]) -> bool {
    shared::config::origin_allowed(caller.origin.as_deref(), &caller.self_origin, allowed)
}

thread_local! {
    /// Site → tenant, cached in this isolate for [`SITE_CACHE_MS`] so that a chat
    /// start does not cross the one directory object each time.
    static SITE_CACHE: std::cell::RefCell<std::collections::HashMap<SiteKey, (TenantId, i64)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// How long a cached site → tenant entry is used.
const SITE_CACHE_MS: i64 = 30_000;

async fn tenant_of_site(env: &Env, site: &SiteKey) -> ApiResult<TenantId> {
    let at = now().timestamp_millis();
    if let Some(t) = SITE_CACHE.with(|c| {
        c.borrow()
            .get(site)
            .filter(|(_, exp)| *exp > at)
            .map(|(t, _)| t.clone())
    }) {
        return Ok(t);
    }
    let t: TenantId = call(
        &stub(env, "DIRECTORY", "directory")?,
        rpc::Lookup { site: site.clone() },
    )
    .await?;
    SITE_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 10_000 {
            c.clear();
        }
        c.insert(site.clone(), (t.clone(), at + SITE_CACHE_MS));
    });
    Ok(t)
}

/// Drops a cached site after its tenant said it does not know it (moved or removed).
fn forget_site(site: &SiteKey, e: &ApiError) {
    if e.code == "unknown_site" {
        SITE_CACHE.with(|c| c.borrow_mut().remove(site));
    }
}

fn with_caller<T>(req: &Request, body: T) -> WithCaller<T> {
    WithCaller {
        caller: caller(req),
        body,
    }
}

fn admin_check(env: &Env, req: &Request) -> ApiResult<()> {
    let want = env_string(env, "ADMIN_TOKEN")
        .ok_or_else(|| ApiError::internal("ADMIN_TOKEN is not configured"))?;
    let got = bearer(req);
    if got.is_empty() {
        return Err(ApiError::unauthorized(
            "the admin token is missing (Authorization: Bearer …)",
        ));
    }
    if !auth::same(&want, &got) {
        return Err(ApiError::unauthorized("the admin token is invalid"));
    }
    Ok(())
}

/// Forwards a WebSocket upgrade to an object, with identity in the internal URL.
async fn forward_upgrade(req: &Request, obj: &Obj, internal_url: &str) -> worker::Result<Response> {
    if req.headers().get("Upgrade")?.as_deref() != Some("websocket") {
        return ApiError::new(
            426,
            "upgrade_required",
            "this endpoint speaks WebSocket only",
        )
        .to_response();
    }
    let headers = Headers::new();
    headers.set("Upgrade", "websocket")?;
    headers.set(OBJECT_NAME_HEADER, &obj.name)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    obj.stub
        .fetch_with_request(Request::new_with_init(internal_url, &init)?)
        .await
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let path = req.path();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method();
    let r: ApiResult<Response> = async {
        match (method, segs.as_slice()) {
            (Method::Get, ["api", "v1", "health"]) => {
                Ok(Response::from_json(&serde_json::json!({"ok": true}))?)
            }
            (Method::Get, ["api", "v1", "sites", site]) => {
                let site = SiteKey::new(*site)?;
                let t = tenant_of_site(&env, &site).await?;
                let info = call(
                    &stub(&env, "TENANTS", t.as_str())?,
                    rpc::Site(with_caller(&req, site.clone())),
                )
                .await
                .inspect_err(|e| forget_site(&site, e))?;
                Ok(Response::from_json(&info)?)
            }
            (Method::Post, ["api", "v1", "conversations"]) => {
                let body: StartRequest = json_body(&mut req).await?;
                let t = tenant_of_site(&env, &body.site).await?;
                let site = body.site.clone();
                let r = call(
                    &stub(&env, "TENANTS", t.as_str())?,
                    rpc::Start(with_caller(&req, body)),
                )
                .await
                .inspect_err(|e| forget_site(&site, e))?;
                Ok(Response::from_json(&r)?.with_status(201))
            }
            (Method::Post, ["api", "v1", "messages"]) => {
                let body: LeaveMessageRequest = json_body(&mut req).await?;
                let t = tenant_of_site(&env, &body.site).await?;
                let site = body.site.clone();
                let r = call(
                    &stub(&env, "TENANTS", t.as_str())?,
                    rpc::LeaveMessage(with_caller(&req, body)),
                )
                .await
                .inspect_err(|e| forget_site(&site, e))?;
                Ok(Response::from_json(&r)?.with_status(201))
            }
            (Method::Get, ["api", "v1", "conversations", id, "ws"]) => {
                let id = ConversationId::new(*id)?;
                let c = caller(&req);
                let url = format!(
                    "https://internal/ws?token={}&after={}&origin={}&self={}&ip={}",
                    enc(&query(&req, "token")),
                    enc(&query(&req, "after")),
                    enc(c.origin.as_deref().unwrap_or("")),
                    enc(&c.self_origin),
                    enc(&c.ip)
                );
                return Ok(
                    forward_upgrade(&req, &stub(&env, "CONVERSATIONS", id.as_str())?, &url).await?,
                );
            }
            (Method::Get, ["api", "v1", "conversations", id, "agent-ws"]) => {
                let id = ConversationId::new(*id)?;
                let url = format!(
                    "https://internal/agent-ws?ticket={}&after={}",
                    enc(&query(&req, "ticket")),
                    enc(&query(&req, "after")),
                );
                return Ok(
                    forward_upgrade(&req, &stub(&env, "CONVERSATIONS", id.as_str())?, &url).await?,
                );
            }
            (Method::Get, ["api", "v1", "conversations", id, "transcript"]) => {
                let id = ConversationId::new(*id)?;
                let token = if bearer(&req).is_empty() {
                    query(&req, "token")
                } else {
                    bearer(&req)
                };
                let r = call(
                    &stub(&env, "CONVERSATIONS", id.as_str())?,
                    rpc::VisitorTranscript(with_caller(&req, token)),
                )
                .await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Post, ["api", "v1", "conversations", id, "end"]) => {
                let id = ConversationId::new(*id)?;
                call(
                    &stub(&env, "CONVERSATIONS", id.as_str())?,
                    rpc::VisitorEnd(with_caller(&req, bearer(&req))),
                )
                .await?;
                Ok(Response::from_json(&serde_json::json!({ "ok": true }))?)
            }
            (Method::Post, ["api", "v1", "agent", "sign-in"]) => {
                let body: SignInRequest = json_body(&mut req).await?;
                let r = call(
                    &stub(&env, "TENANTS", body.tenant.as_str())?,
                    rpc::SignIn(with_caller(&req, body)),
                )
                .await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Get, ["api", "v1", "agent", "ws"]) => {
                let token = query(&req, "token");
                let s = auth::verify_session(&session_secret(&env)?, &token, now())
                    .map_err(|e| ApiError::unauthorized(e.to_string()))?;
                let url = format!("https://internal/agent-ws?agent={}&exp={}", s.agent, s.exp);
                return Ok(
                    forward_upgrade(&req, &stub(&env, "TENANTS", s.tenant.as_str())?, &url).await?,
                );
            }
            (Method::Get, ["api", "v1", "admin", "tenants", t, "config"]) => {
                admin_check(&env, &req)?;
                let t = TenantId::new(*t)?;
                let r = call(&stub(&env, "TENANTS", t.as_str())?, rpc::GetConfig {}).await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Put, ["api", "v1", "admin", "tenants", t, "config"]) => {
                admin_check(&env, &req)?;
                let t = TenantId::new(*t)?;
                let body: AdminConfig = json_body(&mut req).await?;
                call(&stub(&env, "TENANTS", t.as_str())?, rpc::PutConfig(body)).await?;
                Ok(Response::from_json(&serde_json::json!({ "ok": true }))?)
            }
            (Method::Get, ["api", "v1", "admin", "tenants", t, "conversations"]) => {
                admin_check(&env, &req)?;
                let t = TenantId::new(*t)?;
                let r = call(&stub(&env, "TENANTS", t.as_str())?, rpc::ListClosed {}).await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Get, ["api", "v1", "admin", "tenants", t, "conversations", id]) => {
                admin_check(&env, &req)?;
                let t = TenantId::new(*t)?;
                let id = ConversationId::new(*id)?;
                let r = call(&stub(&env, "TENANTS", t.as_str())?, rpc::GetClosed { id }).await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Get, ["bench", "relay", conv, "ws"])
                if env_string(&env, "BENCH_RELAY").as_deref() == Some("true") =>
            {
                let conv = (*conv).to_owned();
                return Ok(relay_do::route(req, &env, &conv).await?);
            }
            (_, ["api", ..]) => Err(ApiError::not_found(
                "no_such_route",
                format!("no route {} {path}", req.method()),
            )),
            _ => Err(ApiError::not_found(
                "not_found",
                format!("nothing at {path}"),
            )),
        }
    }
    .await;
    match r {
        Ok(resp) => Ok(resp),
        Err(e) => e.to_response(),
    }
}
