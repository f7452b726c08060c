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
pub mod webhooks;

/// The queue binding webhook jobs go through ([`webhooks`]).
pub const WEBHOOK_QUEUE: &str = "WEBHOOKS";

use chrono::{DateTime, Utc};
use error::{ApiError, ApiResult};
use futures::StreamExt;
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

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The body size a request declares in `Content-Length`, if it declares a number.
fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|n| n.trim().parse().ok())
}

/// Reads a JSON body: refuses a declared or actual size over [`MAX_BODY_BYTES`]
/// (before reading, when `Content-Length` says so) and invalid UTF-8; names the
/// field on a decoding error.
pub async fn json_body<T: DeserializeOwned>(req: &mut Request) -> ApiResult<T> {
    let too_large = || {
        ApiError::new(
            413,
            "body_too_large",
            format!(
                "the request body is larger than {} KiB",
                MAX_BODY_BYTES / 1024
            ),
        )
    };
    if let Some(len) = req.headers().get("Content-Length").ok().flatten() {
        match len.trim().parse::<u64>() {
            Ok(n) if n > MAX_BODY_BYTES as u64 => return Err(too_large()),
            Ok(_) => {}
            Err(_) => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    "Content-Length is not a number",
                ))
            }
        }
    }
    let bytes = req
        .bytes()
        .await
        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_utf8",
            format!(
                "the body is not valid UTF-8 (byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
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

/// Header in which the widget's frame names the page that embeds it.
pub const EMBEDDER_HEADER: &str = "X-Switchboard-Embedder";

fn caller(req: &Request) -> Caller {
    let header = |h: &str| {
        req.headers()
            .get(h)
            .ok()
            .flatten()
            .filter(|s| !s.is_empty())
    };
    let self_origin = req
        .url()
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    // Browsers leave `Origin` off same-origin GETs but say `Sec-Fetch-Site: same-origin`.
    let origin = header("Origin").or_else(|| {
        (header("Sec-Fetch-Site").as_deref() == Some("same-origin")).then(|| self_origin.clone())
    });
    Caller {
        ip: client_ip(req),
        origin,
        self_origin,
        embedder: header(EMBEDDER_HEADER),
    }
}

/// Refuses a widget request whose origin is not allowed (the rule is
/// [`shared::config::check_origin`]) with a 403 that names the problem.
pub fn check_origin(caller: &Caller, allowed: &[String]) -> ApiResult<()> {
    shared::config::check_origin(
        caller.origin.as_deref(),
        caller.embedder.as_deref(),
        &caller.self_origin,
        allowed,
    )
    .map_err(|e| {
        let code = match e {
            shared::config::OriginError::Missing => "origin_missing",
            shared::config::OriginError::MissingEmbedder => "embedder_missing",
            shared::config::OriginError::NotAllowed(_) => "origin_not_allowed",
        };
        ApiError::forbidden(code, e.to_string())
    })
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

/// Header names of the internal attachment calls (Worker → conversation).
pub mod attachment_headers {
    /// The caller (origin, embedder, address) as JSON.
    pub const CALLER: &str = "X-Sb-Caller";
    /// The visitor token, when the caller is the visitor.
    pub const VISITOR: &str = "X-Sb-Visitor";
    /// The agent id, when the Worker verified an agent session.
    pub const AGENT: &str = "X-Sb-Agent";
    /// When that session was issued (seconds), against revocations.
    pub const ISSUED: &str = "X-Sb-Issued";
}

/// `POST …/attachments?name=…&client_id=…` (upload, raw body) or
/// `GET …/attachments/{aid}` (download), for the visitor (bearer visitor token and
/// origin) or an agent of the chat (bearer session); the conversation checks access.
async fn attachment_call(
    env: &Env,
    req: &mut Request,
    id: &ConversationId,
    download: Option<String>,
) -> ApiResult<Response> {
    use attachment_headers as h;
    let headers = Headers::new();
    let token = bearer(req);
    match auth::verify::<auth::Session>(
        &session_secret(env)?,
        auth::Purpose::Session,
        &token,
        now(),
    ) {
        Ok(s) => {
            headers.set(h::AGENT, s.agent.as_str())?;
            headers.set(h::ISSUED, &(s.exp - auth::SESSION_SECS).to_string())?;
            headers.set(OBJECT_NAME_HEADER, id.as_str())?;
            // The session's tenant must be the conversation's: checked there.
            headers.set("X-Sb-Tenant", s.tenant.as_str())?;
        }
        Err(_) => headers.set(h::VISITOR, &token)?,
    }
    headers.set(h::CALLER, &serde_json::to_string(&caller(req))?)?;
    let mut init = RequestInit::new();
    let url = match &download {
        Some(aid) => {
            init.with_method(Method::Get);
            format!("https://internal/attachments/{}", enc(aid))
        }
        None => {
            let declared = declared_length(req);
            if declared.is_some_and(|n| n > shared::attachment::MAX_BYTES as u64) {
                let e = shared::attachment::AttachmentError::TooLarge(declared.unwrap_or(0));
                return Err(ApiError::new(e.status(), e.code(), e.to_string()));
            }
            let bytes = req.bytes().await?;
            if bytes.len() > shared::attachment::MAX_BYTES {
                let e = shared::attachment::AttachmentError::TooLarge(bytes.len() as u64);
                return Err(ApiError::new(e.status(), e.code(), e.to_string()));
            }

            init.with_method(Method::Post)
                .with_body(Some(js_sys::Uint8Array::from(bytes.as_slice()).into()));
            // `name` and `client_id` travel in the query, read there with `query`.
            format!(
                "https://internal/attachments?name={}&client_id={}",
                enc(&query(req, "name")),
                enc(&query(req, "client_id"))
            )
        }
    };
    init.with_headers(headers);
    let obj = stub(env, "CONVERSATIONS", id.as_str())?;
    Ok(obj
        .stub
        .fetch_with_request(Request::new_with_init(&url, &init)?)
        .await?)
}

/// `from` and `to` query parameters (unix seconds), both needed when `required`.
fn range_of(req: &Request, required: bool) -> ApiResult<(Option<i64>, Option<i64>)> {
    let bound = |name: &str| -> ApiResult<Option<chrono::DateTime<Utc>>> {
        match query(req, name).as_str() {
            "" if required => Err(ApiError::bad_request(
                "invalid_range",
                format!("{name} is missing (a date like 2026-11-27 or an RFC 3339 time)"),
            )),
            "" => Ok(None),
            v => shared::export::parse_bound(name, v)
                .map(Some)
                .map_err(|m| ApiError::bad_request("invalid_range", m)),
        }
    };
    let (from, to) = (bound("from")?, bound("to")?);
    if let (Some(f), Some(t)) = (from, to) {
        shared::export::check_range(f, t).map_err(|m| ApiError::bad_request("invalid_range", m))?;
    }
    Ok((from.map(|f| f.timestamp()), to.map(|t| t.timestamp())))
}

/// Streams every closed conversation that ended in `[from, to)`, page by page
/// (one tenant call per 200 records), as NDJSON or CSV.
fn export(
    tenant: Obj,
    format: shared::export::Format,
    from: Option<i64>,
    to: Option<i64>,
    name: &str,
) -> ApiResult<Response> {
    use shared::export::Format;
    // State: the next cursor; `None` once the last page was sent.
    let first = match format {
        Format::Csv => shared::export::CSV_HEADER.as_bytes().to_vec(),
        Format::Ndjson => vec![],
    };
    let pages = futures::stream::unfold(
        (Some(None::<String>), tenant),
        move |(cursor, tenant)| async move {
            let cursor = cursor?;
            let page = call(
                &tenant,
                rpc::ListClosed {
                    cursor,
                    limit: Some(200),
                    from,
                    to,
                },
            )
            .await;
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    worker::console_error!("export: {e}");
                    return Some((Err(worker::Error::RustError(e.to_string())), (None, tenant)));
                }
            };
            let mut out = Vec::new();
            for c in &page.items {
                match format {
                    Format::Ndjson => {
                        out.extend(serde_json::to_vec(c).unwrap_or_default());
                        out.push(b'\n');
                    }
                    Format::Csv => out.extend(shared::export::csv_row(c).into_bytes()),
                }
            }
            let next = page.next.map(Some);
            Some((Ok::<Vec<u8>, worker::Error>(out), (next, tenant)))
        },
    );
    let body =
        futures::stream::once(async move { Ok::<Vec<u8>, worker::Error>(first) }).chain(pages);
    let mut resp = Response::from_stream(body)?;
    let h = resp.headers_mut();
    h.set("Content-Type", format.content_type())?;
    h.set(
        "Content-Disposition",
        &format!(
            "attachment; filename=\"switchboard-{}.{}\"",
            name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
            format.extension()
        ),
    )?;
    Ok(resp)
}

/// The admin API of tenant `t`: the admin token, or the session of an agent of `t`
/// whose role is admin (the admin console).
async fn admin_of(env: &Env, req: &Request, t: &str) -> ApiResult<()> {
    let token = bearer(req);
    let is_token = env_string(env, "ADMIN_TOKEN").is_some_and(|w| auth::same(&w, &token));
    if is_token || token.is_empty() {
        return admin_check(env, req);
    }
    let s = session_of(env, req)?;
    if s.tenant.as_str() != t {
        return Err(ApiError::forbidden(
            "not_admin",
            "this session belongs to another tenant",
        ));
    }
    call(
        &stub(env, "TENANTS", s.tenant.as_str())?,
        rpc::CheckSession {
            agent: s.agent,
            sid: s.sid,
            admin: true,
        },
    )
    .await?;
    Ok(())
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
    // The browser's name goes to the agents' context panel.
    if let Some(ua) = req.headers().get("User-Agent")? {
        headers.set("User-Agent", &ua)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let mut resp = obj
        .stub
        .fetch_with_request(Request::new_with_init(internal_url, &init)?)
        .await?;
    if resp.status_code() == 101 {
        return Ok(resp);
    }
    // A refusal: re-sent with a length, so every client can read why.
    let status = resp.status_code();
    let text = resp.text().await?;
    let mut out = Response::ok(text)?.with_status(status);
    out.headers_mut().set("Content-Type", "application/json")?;
    Ok(out)
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

/// Headers every response of the service carries.
fn harden(resp: &mut Response, csp: Option<&str>) {
    let h = resp.headers_mut();
    let _ = h.set("X-Content-Type-Options", "nosniff");
    let _ = h.set("Referrer-Policy", "no-referrer");
    if let Some(csp) = csp {
        let _ = h.set("Content-Security-Policy", csp);
    }
}

/// The API's policy: JSON only, never framed.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The widget document's policy; `frame-ancestors` is the site's.
fn widget_csp(ancestors: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'none'; frame-ancestors {ancestors}"
    )
}

/// The session a request's `Authorization` header carries (signature and expiry
/// checked here; liveness is the tenant's to check).
fn session_of(env: &Env, req: &Request) -> ApiResult<auth::Session> {
    auth::verify(
        &session_secret(env)?,
        auth::Purpose::Session,
        &bearer(req),
        now(),
    )
    .map_err(|e| ApiError::unauthorized(format!("{e}; sign in again")))
}

/// The one answer for every failed sign-in, whatever failed.
fn sign_in_refused() -> ApiError {
    ApiError::unauthorized("unknown tenant, unknown agent or wrong password")
}

/// Sign-in off every object's thread: the tenant says whether the agent may try and
/// gives the stored hash; the password is checked here with Web Crypto; the tenant
/// records the verdict (back-off, lockout) and opens the session.
async fn sign_in(env: &Env, req: &mut Request) -> ApiResult<Response> {
    let body: SignInRequest = json_body(req).await?;
    let ip = shared::ratelimit::client_key(&client_ip(req));
    let tenant = stub(env, "TENANTS", body.tenant.as_str())?;
    let challenge = match call(
        &tenant,
        rpc::SignInBegin {
            agent: body.agent.clone(),
            ip: ip.clone(),
        },
    )
    .await
    {
        Ok(c) => Some(c),
        Err(e) if e.code == "unknown_tenant" => None,
        Err(e) => return Err(e),
    };
    let stored = challenge.as_ref().and_then(|c| c.hash.clone());
    let hash = stored
        .as_deref()
        .and_then(auth::StoredHash::parse)
        .or_else(|| auth::StoredHash::parse(auth::DUMMY_HASH))
        .ok_or_else(|| ApiError::internal("the dummy hash does not parse"))?;
    let matches = hash
        .check(&body.password)
        .await
        .map_err(ApiError::internal)?;
    let ok = matches && stored.is_some();
    let Some(_) = challenge else {
        return Err(sign_in_refused());
    };
    let rehash = if ok && hash.needs_rehash() {
        Some(
            auth::hash_password(&body.password)
                .await
                .map_err(ApiError::internal)?,
        )
    } else {
        None
    };
    let r = call(
        &tenant,
        rpc::SignInFinish {
            agent: body.agent,
            ip,
            ok,
            rehash,
        },
    )
    .await?;
    Ok(Response::from_json(&r)?)
}

/// Turns the plain passwords of an admin configuration into PHC hashes here, so the
/// tenant object never hashes (or sees) a password.
async fn hash_admin_passwords(mut body: AdminConfig) -> ApiResult<AdminConfig> {
    for (agent, pw) in std::mem::take(&mut body.passwords) {
        shared::config::check_password_strength(&agent, &pw)
            .map_err(|m| ApiError::bad_request("invalid_config", m))?;
        let h = auth::hash_password(&pw).await.map_err(ApiError::internal)?;
        body.password_hashes.insert(agent, h);
    }
    for (agent, h) in &body.password_hashes {
        if auth::StoredHash::parse(h).is_none() {
            return Err(ApiError::bad_request(
                "invalid_config",
                format!("password hash of {agent} is not a $pbkdf2-sha256$ PHC string"),
            ));
        }
    }
    for (site, secret) in &body.site_secrets {
        shared::config::check_site_secret(site, secret)?;
    }
    Ok(body)
}

/// The R2 key of an agent picture.
pub(crate) fn avatar_key(tenant: &TenantId, id: &str) -> String {
    format!("avatars/{tenant}/{id}")
}

/// `PUT …/avatars`: stores an agent picture (the body: PNG, JPEG, WebP or GIF, at most
/// 256 KiB, checked by its bytes) in R2 under its content hash, and answers with the
/// id the configuration names it by (`agents[].avatar`) and where it is served. A
/// picture no agent uses a day after its upload is deleted by the tenant's alarm.
async fn put_avatar(env: &Env, req: &mut Request, tenant: &TenantId) -> ApiResult<Response> {
    let max = shared::attachment::MAX_PICTURE_BYTES;
    let declared = declared_length(req);
    if declared.is_some_and(|n| n > max as u64) {
        let e = shared::attachment::PictureError::TooLarge(declared.unwrap_or_default());
        return Err(ApiError::new(e.status(), e.code(), e.to_string()));
    }
    let bytes = req.bytes().await?;
    let content_type = shared::attachment::check_picture(&bytes)
        .map_err(|e| ApiError::new(e.status(), e.code(), e.to_string()))?;
    let id: String = auth::sha256_bytes_hex(&bytes).chars().take(32).collect();
    // The tenant plans the sweep of pictures that never get saved in its
    // configuration (and refuses an unknown tenant before anything is stored).
    call(
        &stub(env, "TENANTS", tenant.as_str())?,
        shared::rpc::PictureUploaded {},
    )
    .await?;
    env.bucket(conversation_do::ATTACHMENTS)?
        .put(avatar_key(tenant, &id), bytes)
        .http_metadata(worker::HttpMetadata {
            content_type: Some(content_type.to_owned()),
            ..Default::default()
        })
        .execute()
        .await?;
    Ok(Response::from_json(&serde_json::json!({
        "avatar": id,
        "url": shared::attachment::picture_path(tenant.as_str(), &id),
    }))?
    .with_status(201))
}

/// `GET /api/v1/avatars/{tenant}/{id}`: an agent picture, public (visitors see it in
/// the widget's header) and cached for good (its id is its content hash).
async fn get_avatar(env: &Env, tenant: &TenantId, id: &str) -> ApiResult<Response> {
    let gone = || ApiError::not_found("unknown_avatar", format!("no picture {id:?}"));
    if !shared::attachment::is_picture_id(id) {
        return Err(gone());
    }
    let object = env
        .bucket(conversation_do::ATTACHMENTS)?
        .get(avatar_key(tenant, id))
        .execute()
        .await?
        .ok_or_else(gone)?;
    let content_type = object
        .http_metadata()
        .content_type
        .unwrap_or_else(|| "application/octet-stream".into());
    let bytes = match object.body() {
        Some(b) => b.bytes().await?,
        None => vec![],
    };
    let mut resp = Response::from_bytes(bytes)?;
    let h = resp.headers_mut();
    h.set("Content-Type", &content_type)?;
    h.set("Cache-Control", "public, max-age=31536000, immutable")?;
    Ok(resp)
}

/// `/widget/?site=KEY`: the widget's document, framed only by the site's origins. It
/// carries the site info as a JSON data block (never run as script), so the app shows
/// its form without asking the service again. With `standby=1` (the loader's frame
/// made before any open) it does not preload the wasm: that waits for the open.
async fn widget_document(env: &Env, req: Request) -> ApiResult<Response> {
    let site = SiteKey::new(query(&req, "site"))?;
    let standby = !query(&req, "standby").is_empty();
    let t = tenant_of_site(env, &site).await?;
    // The site's part and the static page are asked for at once.
    let tenant = stub(env, "TENANTS", t.as_str())?;
    let assets = env.assets("ASSETS")?;
    let (doc, asset) = futures::join!(
        call(&tenant, rpc::SiteDocument { site: site.clone() }),
        assets.fetch_request(req)
    );
    let doc: rpc::SiteDocumentInfo = doc.inspect_err(|e| forget_site(&site, e))?;
    let mut asset = asset?;
    if asset.status_code() != 200 {
        return Ok(asset);
    }
    let mut html = asset.text().await?;
    if standby {
        html = without_wasm_preload(&html);
    }
    let block = format!(
        "<script type=\"application/json\" id=\"switchboard-site\">{}</script>\n</head>",
        json_for_html(&serde_json::to_string(&doc.info)?)
    );
    let mut resp = Response::from_html(html.replacen("</head>", &block, 1))?;
    harden(
        &mut resp,
        Some(&widget_csp(&shared::config::frame_ancestors(
            &doc.allowed_origins,
        ))),
    );
    Ok(resp)
}

/// A page without its lines that preload a wasm file (the build writes one such line).
fn without_wasm_preload(html: &str) -> String {
    html.lines()
        .filter(|l| !(l.starts_with("<link rel=\"preload\"") && l.contains(".wasm\"")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// JSON made safe inside an HTML `<script>` element: `<`, `>` and `&` (which JSON has
/// only inside strings) become `\u` escapes, so no text can close the element.
fn json_for_html(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The demo's signed-in page with a fresh `user_hash` (a real site computes it on its
/// server; demo runs only).
async fn demo_account(env: &Env, req: Request) -> ApiResult<Response> {
    // The page's canonical asset path (`/account.html` redirects there).
    let mut url = req.url()?;
    url.set_path("/account");
    let mut resp = env.assets("ASSETS")?.fetch(url.to_string(), None).await?;
    let html = resp.text().await?;
    if env_string(env, "DEMO_SEED").as_deref() != Some("true") {
        return Ok(Response::from_html(html)?);
    }
    let demo: AdminConfig = serde_json::from_str(DEMO_TENANT)?;
    let secret = demo
        .site_secrets
        .values()
        .next()
        .cloned()
        .unwrap_or_default();
    let hash = auth::user_hash(&secret, "customer-4711", now().timestamp());
    Ok(Response::from_html(html.replace("__USER_HASH__", &hash))?)
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let path = req.path();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method();
    let mut csp = Some(API_CSP.to_string());
    let r: ApiResult<Response> = async {
        let tenant_of =
            |t: &str| -> ApiResult<Obj> { stub(&env, "TENANTS", TenantId::new(t)?.as_str()) };
        match (method, segs.as_slice()) {
            (Method::Get | Method::Head, ["widget"] | ["widget", "index.html"]) => {
                csp = None;
                widget_document(&env, req).await
            }
            (Method::Get, ["account.html"] | ["account"]) => {
                csp = None;
                demo_account(&env, req).await
            }
            (Method::Get, ["api", "v1", "health"]) => {
                Ok(Response::from_json(&serde_json::json!({"ok": true}))?)
            }
            (Method::Get, ["api", "v1", "sites", site]) => {
                let site = SiteKey::new(*site)?;
                let t = tenant_of_site(&env, &site).await?;
                let c = caller(&req);
                let info = call(
                    &stub(&env, "TENANTS", t.as_str())?,
                    rpc::Site(with_caller(&req, site.clone())),
                )
                .await
                .inspect_err(|e| forget_site(&site, e))?;
                let mut resp = Response::from_json(&info)?;
                // The loader on an allowed page asks before it opens the chat.
                if let Some(o) = c.origin.filter(|o| *o != c.self_origin) {
                    resp.headers_mut().set("Access-Control-Allow-Origin", &o)?;
                    resp.headers_mut().set("Vary", "Origin")?;
                }
                Ok(resp)
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
            (Method::Post, ["api", "v1", "conversations", id, "ticket"]) => {
                let id = ConversationId::new(*id)?;
                let r = call(
                    &stub(&env, "CONVERSATIONS", id.as_str())?,
                    rpc::VisitorTicket(with_caller(&req, bearer(&req))),
                )
                .await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Get, ["api", "v1", "conversations", id, "ws"]) => {
                let id = ConversationId::new(*id)?;
                let c = caller(&req);
                let url = format!(
                    "https://internal/ws?ticket={}&after={}&origin={}&self={}",
                    enc(&query(&req, "ticket")),
                    enc(&query(&req, "after")),
                    enc(c.origin.as_deref().unwrap_or("")),
                    enc(&c.self_origin),
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
                let r = call(
                    &stub(&env, "CONVERSATIONS", id.as_str())?,
                    rpc::VisitorTranscript(with_caller(&req, bearer(&req))),
                )
                .await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Post, ["api", "v1", "conversations", id, "attachments"]) => {
                let id = ConversationId::new(*id)?;
                attachment_call(&env, &mut req, &id, None).await
            }
            (Method::Get, ["api", "v1", "conversations", id, "attachments", aid]) => {
                let id = ConversationId::new(*id)?;
                let aid = (*aid).to_owned();
                attachment_call(&env, &mut req, &id, Some(aid)).await
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
            (Method::Post, ["api", "v1", "agent", "sign-in"]) => sign_in(&env, &mut req).await,
            (Method::Post, ["api", "v1", "agent", "ticket"]) => {
                let s = session_of(&env, &req)?;
                let r = call(
                    &stub(&env, "TENANTS", s.tenant.as_str())?,
                    rpc::ControlTicket {
                        agent: s.agent,
                        sid: s.sid,
                    },
                )
                .await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Post, ["api", "v1", "agent", "sign-out"]) => {
                let s = session_of(&env, &req)?;
                call(
                    &stub(&env, "TENANTS", s.tenant.as_str())?,
                    rpc::Revoke {
                        agent: s.agent,
                        sid: Some(s.sid),
                        reason: rpc::RevokeReason::SignedOut,
                    },
                )
                .await?;
                Ok(Response::from_json(&serde_json::json!({ "ok": true }))?)
            }
            (Method::Post, ["api", "v1", "agent", "password"]) => {
                let s = session_of(&env, &req)?;
                let body: PasswordChange = json_body(&mut req).await?;
                let tenant = stub(&env, "TENANTS", s.tenant.as_str())?;
                call(
                    &tenant,
                    rpc::CheckSession {
                        agent: s.agent.clone(),
                        sid: s.sid.clone(),
                        admin: false,
                    },
                )
                .await?;
                let c = call(
                    &tenant,
                    rpc::SignInBegin {
                        agent: s.agent.clone(),
                        ip: shared::ratelimit::client_key(&client_ip(&req)),
                    },
                )
                .await?;
                let stored = c.hash.as_deref().and_then(auth::StoredHash::parse);
                let ok = match &stored {
                    Some(h) => h.check(&body.current).await.map_err(ApiError::internal)?,
                    None => false,
                };
                if !ok {
                    return Err(ApiError::forbidden(
                        "wrong_password",
                        "the current password is wrong",
                    ));
                }
                shared::config::check_password_strength(&s.agent, &body.new)
                    .map_err(|m| ApiError::bad_request("weak_password", m))?;
                let hash = auth::hash_password(&body.new)
                    .await
                    .map_err(ApiError::internal)?;
                call(
                    &tenant,
                    rpc::SetPassword {
                        agent: s.agent,
                        hash,
                    },
                )
                .await?;
                Ok(Response::from_json(&serde_json::json!({ "ok": true }))?)
            }
            (Method::Get, ["api", "v1", "agent", "ws"]) => {
                let ticket = query(&req, "ticket");
                let t: auth::ControlTicket = auth::verify(
                    &session_secret(&env)?,
                    auth::Purpose::ControlTicket,
                    &ticket,
                    now(),
                )
                .map_err(|e| ApiError::unauthorized(format!("{e}; ask for a new one")))?;
                let url = format!("https://internal/agent-ws?ticket={}", enc(&ticket));
                return Ok(
                    forward_upgrade(&req, &stub(&env, "TENANTS", t.tenant.as_str())?, &url).await?,
                );
            }
            (Method::Put, ["api", "v1", "admin", "tenants", t, "avatars"]) => {
                let t = TenantId::new(*t)?;
                admin_of(&env, &req, t.as_str()).await?;
                put_avatar(&env, &mut req, &t).await
            }
            (Method::Delete, ["api", "v1", "admin", "tenants", t, "avatars", id]) => {
                let t = TenantId::new(*t)?;
                admin_of(&env, &req, t.as_str()).await?;
                if !shared::attachment::is_picture_id(id) {
                    return Err(ApiError::not_found(
                        "unknown_avatar",
                        format!("no picture {id:?}"),
                    ));
                }
                env.bucket(conversation_do::ATTACHMENTS)?
                    .delete(avatar_key(&t, id))
                    .await?;
                Ok(Response::from_json(&serde_json::json!({ "ok": true }))?)
            }
            (Method::Get | Method::Head, ["api", "v1", "avatars", t, id]) => {
                let t = TenantId::new(*t)?;
                get_avatar(&env, &t, id).await
            }
            (Method::Get, ["api", "v1", "admin", "tenants", t, "config"]) => {
                admin_of(&env, &req, t).await?;
                let r = call(&tenant_of(t)?, rpc::GetConfig {}).await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Put, ["api", "v1", "admin", "tenants", t, "config"]) => {
                admin_of(&env, &req, t).await?;
                let obj = tenant_of(t)?;
                let body: AdminConfig = json_body(&mut req).await?;
                body.config.validate()?;
                let body = hash_admin_passwords(body).await?;
                call(&obj, rpc::PutConfig(body)).await?;
                Ok(Response::from_json(&serde_json::json!({ "ok": true }))?)
            }
            (Method::Get, ["api", "v1", "admin", "tenants", t, "conversations"]) => {
                admin_of(&env, &req, t).await?;
                let limit = match query(&req, "limit").as_str() {
                    "" => None,
                    l => Some(
                        l.parse::<u32>()
                            .ok()
                            .filter(|n| (1..=500).contains(n))
                            .ok_or_else(|| {
                                ApiError::bad_request(
                                    "invalid_limit",
                                    format!("limit={l:?} must be 1 to 500"),
                                )
                            })?,
                    ),
                };
                let cursor = Some(query(&req, "cursor")).filter(|c| !c.is_empty());
                let (from, to) = range_of(&req, false)?;
                let r = call(
                    &tenant_of(t)?,
                    rpc::ListClosed {
                        cursor,
                        limit,
                        from,
                        to,
                    },
                )
                .await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Get, ["api", "v1", "admin", "tenants", t, "export"]) => {
                admin_of(&env, &req, t).await?;
                let format = shared::export::Format::parse(&query(&req, "format"))
                    .map_err(|m| ApiError::bad_request("invalid_format", m))?;
                let (from, to) = range_of(&req, true)?;
                export(tenant_of(t)?, format, from, to, t)
            }
            (Method::Get, ["api", "v1", "admin", "tenants", t, "deliveries", "parked"]) => {
                admin_of(&env, &req, t).await?;
                let r = call(&tenant_of(t)?, rpc::ListParked {}).await?;
                Ok(Response::from_json(&serde_json::json!({ "items": r }))?)
            }
            (
                Method::Post,
                ["api", "v1", "admin", "tenants", t, "deliveries", "parked", "retry"],
            ) => {
                admin_of(&env, &req, t).await?;
                let r = call(&tenant_of(t)?, rpc::RetryAllParked {}).await?;
                Ok(Response::from_json(&r)?)
            }
            (
                Method::Post,
                ["api", "v1", "admin", "tenants", t, "deliveries", "parked", key, "retry"],
            ) => {
                admin_of(&env, &req, t).await?;
                let key = js_sys::decode_uri_component(key)
                    .ok()
                    .and_then(|k| k.as_string())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_key",
                            "the delivery key is not valid percent-encoding",
                        )
                    })?;
                call(&tenant_of(t)?, rpc::RetryParked { key }).await?;
                Ok(Response::from_json(&serde_json::json!({ "ok": true }))?)
            }
            (Method::Get, ["api", "v1", "admin", "tenants", t, "webhooks", "dead"]) => {
                admin_of(&env, &req, t).await?;
                let r = call(&tenant_of(t)?, rpc::ListDeadHooks {}).await?;
                Ok(Response::from_json(&serde_json::json!({ "items": r }))?)
            }
            (
                Method::Post,
                ["api", "v1", "admin", "tenants", t, "webhooks", "dead", id, "retry"],
            ) => {
                admin_of(&env, &req, t).await?;
                call(
                    &tenant_of(t)?,
                    rpc::RetryDeadHook {
                        id: (*id).to_owned(),
                    },
                )
                .await?;
                Ok(Response::from_json(&serde_json::json!({ "ok": true }))?)
            }
            (Method::Get, ["api", "v1", "admin", "tenants", t, "conversations", id]) => {
                admin_of(&env, &req, t).await?;
                let id = ConversationId::new(*id)?;
                let r = call(&tenant_of(t)?, rpc::GetClosed { id }).await?;
                Ok(Response::from_json(&r)?)
            }
            (Method::Delete, ["api", "v1", "admin", "tenants", t, "conversations", id]) => {
                admin_of(&env, &req, t).await?;
                let id = ConversationId::new(*id)?;
                call(&tenant_of(t)?, rpc::EraseClosed { id }).await?;
                Ok(Response::from_json(&serde_json::json!({ "ok": true }))?)
            }
            (Method::Post, ["api", "v1", "admin", "tenants", t, "agents", a, "unlock"]) => {
                admin_of(&env, &req, t).await?;
                let agent = shared::ids::AgentId::new(*a)?;
                call(&tenant_of(t)?, rpc::Unlock { agent }).await?;
                Ok(Response::from_json(&serde_json::json!({ "ok": true }))?)
            }
            (Method::Post, ["api", "v1", "admin", "tenants", t, "agents", a, "sign-out"]) => {
                admin_of(&env, &req, t).await?;
                let agent = shared::ids::AgentId::new(*a)?;
                call(
                    &tenant_of(t)?,
                    rpc::Revoke {
                        agent,
                        sid: None,
                        reason: rpc::RevokeReason::SignedOutByAdmin,
                    },
                )
                .await?;
                Ok(Response::from_json(&serde_json::json!({ "ok": true }))?)
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
    let mut resp = match r {
        Ok(resp) => resp,
        Err(e) => e.to_response()?,
    };
    if resp.status_code() != 101 {
        harden(&mut resp, csp.as_deref());
    }
    Ok(resp)
}

/// `POST /api/v1/agent/password`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current: String,
    new: String,
}
