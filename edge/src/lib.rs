//! # Switchboard edge service
//!
//! A Cloudflare Worker that is a thin shell around `shared`: it parses HTTP
//! requests and socket frames, feeds them to the rules in `shared`, persists what
//! they decide in Durable Object SQLite storage, and delivers what they say.
//!
//! Three Durable Object classes:
//! - [`tenant_do::TenantObject`], one per tenant: the [`shared::engine::Tenant`]
//!   engine (agents, queues, offers, RONA, transfer, conference, wrap-up), agent
//!   sign-in, agent WebSockets (hibernating), the alarm for the earliest deadline,
//!   closed conversations, and the admin API.
//! - [`conversation_do::ConversationObject`], one per conversation: the transcript
//!   ([`shared::transcript::Transcript`]), the visitor token hash, visitor WebSockets.
//! - [`directory_do::DirectoryObject`], one in all: which tenant a site key belongs to.
//!
//! The Worker entry here routes `/api/v1/...` (the static UIs, the loader script and
//! the demo page are served by Workers static assets before the Worker runs).
//! The API is listed in `docs/API.md`.

pub mod auth;
pub mod conversation_do;
pub mod directory_do;
pub mod error;
pub mod tenant_do;

use chrono::{DateTime, Utc};
use error::{ApiError, ApiResult};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::ids::{ConversationId, SiteKey, TenantId};
use shared::protocol::{AdminConfig, LeaveMessageRequest, SignInRequest, StartRequest};
use worker::{event, Context, Env, Headers, Method, Request, RequestInit, Response, Stub};

/// The demo tenant loaded when `DEMO_SEED` is "true" (local runs).
pub const DEMO_TENANT: &str = include_str!("../demo-tenant.json");

/// The current time (the only clock read of the service).
pub fn now() -> DateTime<Utc> {
    let ms = worker::Date::now().as_millis();
    DateTime::<Utc>::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)).unwrap_or_default()
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

/// Calls another object with a JSON body and decodes its JSON answer.
pub async fn call<B: Serialize, R: DeserializeOwned>(
    obj: &Obj,
    path: &str,
    body: &B,
) -> ApiResult<R> {
    let headers = Headers::new();
    headers.set(OBJECT_NAME_HEADER, &obj.name)?;
    headers.set("Content-Type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(serde_json::to_string(body)?.into()));
    let req = Request::new_with_init(&format!("https://internal{path}"), &init)?;
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

fn query(req: &Request, key: &str) -> String {
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

/// Context a visitor request carries to the objects: who asks, from where.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Caller {
    pub ip: String,
    /// The `Origin` header, if any.
    pub origin: Option<String>,
    /// This service's own origin.
    pub self_origin: String,
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

/// Wraps a request body with the caller.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct WithCaller<T> {
    pub caller: Caller,
    pub body: T,
}

async fn tenant_of_site(env: &Env, site: &SiteKey) -> ApiResult<TenantId> {
    call(&stub(env, "DIRECTORY", "directory")?, "/lookup", site).await
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
                let info: shared::protocol::SiteInfo = call(
                    &stub(&env, "TENANTS", t.as_str())?,
                    "/site",
                    &WithCaller {
                        caller: caller(&req),
                        body: site,
                    },
                )
                .await?;
                Ok(Response::from_json(&info)?)
            }
            (Method::Post, ["api", "v1", "conversations"]) => {
                let body: StartRequest = json_body(&mut req).await?;
                let t = tenant_of_site(&env, &body.site).await?;
                let r: shared::protocol::StartResponse = call(
                    &stub(&env, "TENANTS", t.as_str())?,
                    "/start",
                    &WithCaller {
                        caller: caller(&req),
                        body,
                    },
                )
                .await?;
                Ok(Response::from_json(&r)?.with_status(201))
            }
            (Method::Post, ["api", "v1", "messages"]) => {
                let body: LeaveMessageRequest = json_body(&mut req).await?;
                let t = tenant_of_site(&env, &body.site).await?;
                let r: serde_json::Value = call(
                    &stub(&env, "TENANTS", t.as_str())?,
                    "/leave-message",
                    &WithCaller {
                        caller: caller(&req),
                        body,
                    },
                )
                .await?;
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
            (Method::Get, ["api", "v1", "conversations", id, "transcript"]) => {
                let id = ConversationId::new(*id)?;
                let token = if bearer(&req).is_empty() {
                    query(&req, "token")
                } else {
                    bearer(&req)
                };
                let r: serde_json::Value = call(
                    &stub(&env, "CONVERSATIONS", id.as_str())?,
                    "/transcript",
                    &WithCaller {
                        caller: caller(&req),
                        body: token,
                    },
                )
                .await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Post, ["api", "v1", "conversations", id, "end"]) => {
                let id = ConversationId::new(*id)?;
                let r: serde_json::Value = call(
                    &stub(&env, "CONVERSATIONS", id.as_str())?,
                    "/end",
                    &WithCaller {
                        caller: caller(&req),
                        body: bearer(&req),
                    },
                )
                .await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Post, ["api", "v1", "agent", "sign-in"]) => {
                let body: SignInRequest = json_body(&mut req).await?;
                let r: shared::protocol::SignInResponse = call(
                    &stub(&env, "TENANTS", body.tenant.as_str())?,
                    "/sign-in",
                    &WithCaller {
                        caller: caller(&req),
                        body,
                    },
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
                let r: serde_json::Value = call(
                    &stub(&env, "TENANTS", t.as_str())?,
                    "/admin/get-config",
                    &(),
                )
                .await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Put, ["api", "v1", "admin", "tenants", t, "config"]) => {
                admin_check(&env, &req)?;
                let t = TenantId::new(*t)?;
                let body: AdminConfig = json_body(&mut req).await?;
                let r: serde_json::Value = call(
                    &stub(&env, "TENANTS", t.as_str())?,
                    "/admin/put-config",
                    &body,
                )
                .await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Get, ["api", "v1", "admin", "tenants", t, "conversations"]) => {
                admin_check(&env, &req)?;
                let t = TenantId::new(*t)?;
                let r: serde_json::Value =
                    call(&stub(&env, "TENANTS", t.as_str())?, "/admin/closed", &()).await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Get, ["api", "v1", "admin", "tenants", t, "conversations", id]) => {
                admin_check(&env, &req)?;
                let t = TenantId::new(*t)?;
                let id = ConversationId::new(*id)?;
                let r: serde_json::Value = call(
                    &stub(&env, "TENANTS", t.as_str())?,
                    "/admin/closed-one",
                    &id,
                )
                .await?;
                Ok(Response::from_json(&r)?)
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
