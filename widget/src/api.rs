//! All network code of the widget: HTTP calls, the conversation WebSocket with
//! automatic reconnect and resume, and the local session (conversation id, token,
//! unacknowledged messages) kept in `localStorage` so reloads resume the chat.
//!
//! Rules: JSON is read with `shared::mini` over the browser's `JSON.parse`
//! (`web::json`) and written with `shared::mini::Object`, never serde: the widget's
//! size budget. Every call waits for the embedding handshake ([`embedding`]): the page that
//! embeds the frame, as the browser reported it to `boot.js`, goes with each request in
//! the `X-Switchboard-Embedder` header, and the identity pair comes from it too. The
//! visitor token travels only in `Authorization` headers: the socket opens with a
//! single-use ticket fetched just before. The socket, its heartbeat (a `ping` every
//! [`PING_MS`]; a stalled socket is dropped and reopened) and the reconnect back-off
//! are `web::socket`'s. The typing indicator clears on `typing:false`, on a message
//! from the agents, at the end, and [`TYPING_MS`] after its last refresh. A message
//! stays in the outbox until the edge acknowledges it and is resent with the same
//! client id after every reconnect, so nothing is lost and the edge stores it once.
//! Messages are held as `web::log` says: once per sequence number, in order; a
//! (re)opened socket resumes after the last one held with none missing, and a message
//! that skips a number reopens the socket at once.

use crate::i18n::Words as _;
use crate::state::{Pending, Phase, Widget};
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::engine::{Availability, VisitorStatus};
use shared::mini::{self, Json, Object};
use shared::protocol::{LeaveMessageRequest, SiteInfo, StartRequest, VisitorEvent, VisitorFrame};
use std::cell::RefCell;
use wasm_bindgen::{JsCast, JsValue};
use web::socket::{Backoff, Beat, Socket};
use web::store::Store;

/// What is kept across reloads.
#[derive(Clone, Debug)]
struct Session {
    conversation: String,
    token: String,
    name: String,
}

/// What the widget keeps in `localStorage`, as JSON.
trait Stored: Sized {
    fn write(&self) -> String;
    fn read(v: &web::json::Value) -> Result<Self, String>;
}

impl Stored for Session {
    fn write(&self) -> String {
        Object::new()
            .text("conversation", &self.conversation)
            .text("token", &self.token)
            .text("name", &self.name)
            .end()
    }
    fn read(v: &web::json::Value) -> Result<Self, String> {
        Ok(Session {
            conversation: mini::text(v, "conversation")?,
            token: mini::text(v, "token")?,
            name: mini::text(v, "name")?,
        })
    }
}

/// The outbox: messages sent and not yet acknowledged.
impl Stored for Vec<Pending> {
    fn write(&self) -> String {
        mini::array(self.iter().map(|p| {
            Object::new()
                .text("client_id", &p.client_id)
                .text("text", &p.text)
                .end()
        }))
    }
    fn read(v: &web::json::Value) -> Result<Self, String> {
        mini::items(v, "outbox", |p| {
            Ok(Pending {
                client_id: mini::text(p, "client_id")?,
                text: mini::text(p, "text")?,
            })
        })
    }
}

/// What the loader told the frame (see `static/boot.js`); fields it leaves out are
/// `None`.
#[derive(Clone, Debug, Default)]
pub struct Embedding {
    pub origin: String,
    pub user_id: Option<String>,
    pub user_hash: Option<String>,
    /// From `Switchboard.identify`: fills the pre-chat form.
    pub name: Option<String>,
    pub email: Option<String>,
    /// The embedding page, as the loader saw it.
    pub page_url: Option<String>,
    pub page_title: Option<String>,
}

/// Reports the page the visitor is on (the latest the loader told, else the one of
/// the handshake) with the browser's time zone, for the agents' context panel.
pub fn report_page() {
    let later = web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &"__switchboardPage".into()).ok())
        .filter(|v| v.is_object());
    let field = |v: &JsValue, k: &str| js_text(v, k).unwrap_or_default();
    let (url, title) = match later {
        Some(v) => (field(&v, "url"), field(&v, "title")),
        None => EMBED.with(|e| {
            e.borrow()
                .as_ref()
                .map(|e| {
                    (
                        e.page_url.clone().unwrap_or_default(),
                        e.page_title.clone().unwrap_or_default(),
                    )
                })
                .unwrap_or_default()
        }),
    };
    if url.is_empty() {
        return;
    }
    let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
        .resolved_options();
    let time_zone = field(&options, "timeZone");
    // Titles are cut to what the service keeps rather than refused.
    let title: String = title
        .chars()
        .filter(|c| !c.is_control())
        .take(shared::visitor::MAX_TITLE_CHARS)
        .collect();
    send_frame(&VisitorFrame::Page {
        url,
        title,
        time_zone,
    });
}

/// A text field of a JavaScript object (`None` if missing or not a string).
fn js_text(v: &JsValue, key: &str) -> Option<String> {
    js_sys::Reflect::get(v, &key.into()).ok()?.as_string()
}

/// Waits for the handshake with the embedding page.
pub async fn embedding() -> Embedding {
    if let Some(e) = EMBED.with(|e| e.borrow().clone()) {
        return e;
    }
    let promise = web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &"__switchboardHello".into()).ok())
        .and_then(|p| p.dyn_into::<js_sys::Promise>().ok());
    let e = match promise {
        Some(p) => match wasm_bindgen_futures::JsFuture::from(p).await {
            // The object boot.js built from the loader's message: read field by field.
            Ok(v) => Embedding {
                origin: js_text(&v, "origin").unwrap_or_default(),
                user_id: js_text(&v, "user_id"),
                user_hash: js_text(&v, "user_hash"),
                name: js_text(&v, "name"),
                email: js_text(&v, "email"),
                page_url: js_text(&v, "page_url"),
                page_title: js_text(&v, "page_title"),
            },
            Err(_) => Embedding::default(),
        },
        None => Embedding::default(),
    };
    EMBED.with(|x| *x.borrow_mut() = Some(e.clone()));
    e
}

/// A request with the embedder header, the visitor token when given, and a JSON body
/// when given.
async fn request(
    method: &str,
    url: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> Result<web::http::Response, String> {
    let origin = embedding().await.origin;
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("X-Switchboard-Embedder", origin.as_str())];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b));
    }
    if json.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    web::http::fetch(method, url, &headers, json).await
}

/// Sends a file from the visitor: checked for size here (the service checks type and
/// name), uploaded with progress; the message arrives on the socket like any other.
pub fn upload(w: Widget, file: web_sys::File) {
    let t = w.lang.t();
    if file.size() > shared::attachment::MAX_BYTES as f64 {
        w.error.set(Some(t.file_too_large.into()));
        return;
    }
    let Some((conversation, token)) = SESSION.with(|s| {
        s.borrow()
            .as_ref()
            .map(|s| (s.conversation.clone(), s.token.clone()))
    }) else {
        return;
    };
    spawn_local(async move {
        let embedder = embedding().await.origin;
        let name = file.name();
        let url = format!(
            "/api/v1/conversations/{}/attachments?name={}&client_id={}",
            js_sys::encode_uri_component(&conversation),
            js_sys::encode_uri_component(&name),
            client_id()
        );
        w.upload_pct.set(0);
        w.upload.set(Some(name));
        web::upload(
            &url,
            &[
                ("Authorization", format!("Bearer {token}")),
                ("X-Switchboard-Embedder", embedder),
            ],
            &file,
            move |pct| w.upload_pct.set(u8::try_from(pct).unwrap_or(100)),
            move |r| {
                w.upload.set(None);
                if let Err(m) = r {
                    // The service names the problem; a bare status gets the general text.
                    w.error.set(Some(if m.starts_with("HTTP ") {
                        t.upload_failed.to_string()
                    } else {
                        m
                    }));
                }
            },
        );
    });
}

/// The blob URL of a file already fetched in this chat (the thread is drawn again on
/// every change: a thumbnail is fetched once).
pub fn cached_attachment_url(id: &str) -> Option<String> {
    BLOBS.with(|b| {
        b.borrow()
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, url)| url.clone())
    })
}

/// A file of the conversation, as a blob URL for an `<img>` or a download.
pub async fn attachment_url(id: &str) -> Option<String> {
    if let Some(url) = cached_attachment_url(id) {
        return Some(url);
    }
    let (conversation, token) = SESSION.with(|s| {
        s.borrow()
            .as_ref()
            .map(|s| (s.conversation.clone(), s.token.clone()))
    })?;
    let url = format!(
        "/api/v1/conversations/{}/attachments/{}",
        js_sys::encode_uri_component(&conversation),
        js_sys::encode_uri_component(id)
    );
    let resp = request("GET", &url, Some(&token), None).await.ok()?;
    let blob = web::blob_url(resp.into_raw()).await?;
    BLOBS.with(|b| b.borrow_mut().push((id.to_owned(), blob.clone())));
    Some(blob)
}

/// A ping this often while the socket is open.
pub const PING_MS: f64 = 20_000.0;
/// The typing indicator clears this long after its last refresh.
pub const TYPING_MS: f64 = 6_000.0;

thread_local! {
    static EMBED: RefCell<Option<Embedding>> = const { RefCell::new(None) };
    static CONN: RefCell<Option<Socket>> = const { RefCell::new(None) };
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
    /// Files of this chat fetched so far: attachment id and blob URL.
    static BLOBS: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
    static RETRY: Backoff = const { Backoff::new() };
    /// When the typing indicator was last refreshed (ms); it clears [`TYPING_MS`] later.
    static TYPING_AT: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
    /// A reopen asked for because a message skipped a number, not yet open.
    static RESUMING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn key(w: &Widget, what: &str) -> String {
    format!("switchboard:{what}:{}", w.site)
}

/// A fresh client message id.
pub fn client_id() -> String {
    let r = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
    format!("w{}-{}-{}", js_sys::Date::now() as u64, r(), r())
}

async fn error_text(resp: web::http::Response) -> String {
    let status = resp.status();
    web::error_text(status, &resp.text().await.unwrap_or_default())
}

/// The value stored under `what` for this site, if it reads as `T`.
fn load<T: Stored>(w: &Widget, what: &str) -> Option<T> {
    T::read(&web::json::Value::parse(&Store::Local.get(&key(w, what))?)?).ok()
}

/// Stores `value` under `what` for this site.
fn save<T: Stored>(w: &Widget, what: &str, value: &T) {
    Store::Local.set(&key(w, what), &value.write());
}

/// The answer's text, if it is a success; else the service's error message.
async fn success_text(resp: web::http::Response) -> Result<String, String> {
    if !resp.ok() {
        return Err(error_text(resp).await);
    }
    resp.text().await
}

/// The heartbeat interval: [`PING_MS`], or `window.__switchboardHeartbeatMs` when a
/// browser test sets it (200 ms to 60 s) to see a dead socket found quickly.
fn ping_ms() -> f64 {
    web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &"__switchboardHeartbeatMs".into()).ok())
        .and_then(|v| v.as_f64())
        .filter(|v| (200.0..=60_000.0).contains(v))
        .unwrap_or(PING_MS)
}

/// Once a second: heartbeat and typing expiry.
fn tick(w: Widget) {
    let now = js_sys::Date::now();
    if w.typing.get_untracked().is_some() && now - TYPING_AT.get() > TYPING_MS {
        w.typing.set(None);
    }
    let beat = CONN.with(|c| c.borrow().as_ref().map(|s| s.beat(now, ping_ms())));
    match beat {
        Some(Beat::Ping) => {
            send_frame(&VisitorFrame::Ping);
        }
        Some(Beat::Stalled) => {
            // Nothing came back: drop the socket and open a new one.
            let stalled = CONN.with(|c| c.borrow_mut().take());
            drop(stalled);
            w.connected.set(false);
            retry_later(w);
        }
        Some(Beat::Quiet) | None => {}
    }
}

/// Starts the widget: resume a saved conversation, or ask the site for availability.
pub fn boot(w: Widget) {
    spawn_local(async move {
        loop {
            web::sleep(1_000).await;
            tick(w);
        }
    });
    if let Some(s) = load::<Session>(&w, "session") {
        w.customer_name.set(s.name.clone());
        w.pending
            .set(load::<Vec<Pending>>(&w, "outbox").unwrap_or_default());
        SESSION.with(|x| *x.borrow_mut() = Some(s));
        w.phase.set(Phase::Chatting);
        connect(w);
    }
    // The document carries the site info: the form is drawn at once, without waiting
    // for the loader's hello or the network. A standby frame's document is as old as
    // the host page, so its info is asked for again now, and the form follows it.
    let carried = carried_site().map(|info| apply_site(w, info)).is_some();
    let fresh = carried && crate::state::query("standby").is_empty();
    spawn_local(async move {
        let e = embedding().await;
        for (field, given) in [(w.form_name, e.name), (w.form_email, e.email)] {
            if let Some(given) = given.filter(|_| field.with_untracked(String::is_empty)) {
                field.set(given);
            }
        }
        if fresh {
            return;
        }
        let url = format!("/api/v1/sites/{}", w.site);
        let info = match request("GET", &url, None, None).await {
            Ok(r) => success_text(r).await,
            Err(e) => Err(e),
        }
        .and_then(|text| mini::site_info::<web::json::Value>(&text).map_err(|e| e.to_string()));
        match info {
            Ok(info) => apply_site(w, info),
            // An older answer is on screen: it stays.
            Err(_) if carried => {}
            Err(e) => w.error.set(Some(e)),
        }
    });
}

/// The site info the service wrote into the document (`None` if it is missing).
fn carried_site() -> Option<SiteInfo> {
    let text = document()
        .get_element_by_id("switchboard-site")?
        .text_content()?;
    mini::site_info::<web::json::Value>(&text).ok()
}

/// Shows what the site says: name, team, reply time, accent, and the form that fits
/// (again, when newer info comes before the visitor sent the form).
fn apply_site(w: Widget, info: SiteInfo) {
    if let Some(accent) = info
        .accent
        .as_deref()
        .filter(|a| shared::config::is_accent(a))
    {
        set_accent(accent);
    }
    let open = matches!(info.availability, Availability::Open { .. });
    w.site_info.set(Some(info));
    let form = if open {
        Phase::PreChat
    } else {
        Phase::LeaveMessage
    };
    let now = w.phase.get_untracked();
    if matches!(now, Phase::Loading | Phase::PreChat | Phase::LeaveMessage) && now != form {
        w.phase.set(form);
    }
}

/// Starts a conversation from the pre-chat form.
pub async fn start(w: Widget, name: String, email: String, text: String) -> Result<(), String> {
    let body = StartRequest {
        site: shared::ids::SiteKey::new(w.site.to_owned()).map_err(|e| e.to_string())?,
        name: name.clone(),
        email: Some(email).filter(|e| !e.trim().is_empty()),
        text,
        client_id: shared::ids::ClientMsgId::new(client_id()).map_err(|e| e.to_string())?,
        user_id: embedding().await.user_id.filter(|s| !s.is_empty()),
        user_hash: embedding().await.user_hash.filter(|s| !s.is_empty()),
    };
    let json = mini::start_request(&body);
    let resp = request("POST", "/api/v1/conversations", None, Some(&json)).await?;
    let r = mini::start_response::<web::json::Value>(&success_text(resp).await?)
        .map_err(|e| e.to_string())?;
    let s = Session {
        conversation: r.conversation.to_string(),
        token: r.token,
        name: name.trim().to_owned(),
    };
    save(&w, "session", &s);
    w.customer_name.set(s.name.clone());
    SESSION.with(|x| *x.borrow_mut() = Some(s));
    w.status.set(Some(r.status));
    w.phase.set(Phase::Chatting);
    connect(w);
    Ok(())
}

/// Leaves a message instead of chatting.
pub async fn leave_message(
    w: Widget,
    name: String,
    email: String,
    text: String,
) -> Result<(), String> {
    let body = LeaveMessageRequest {
        site: shared::ids::SiteKey::new(w.site.to_owned()).map_err(|e| e.to_string())?,
        name,
        email: Some(email).filter(|e| !e.trim().is_empty()),
        text,
    };
    let json = mini::leave_message_request(&body);
    let resp = request("POST", "/api/v1/messages", None, Some(&json)).await?;
    success_text(resp).await?;
    w.phase.set(Phase::MessageLeft);
    Ok(())
}

/// Why a socket ticket could not be had.
enum TicketError {
    /// The chat is gone or the token no longer counts (expired, erased): start over.
    Refused(String),
    /// Network or server trouble: try again later.
    Later,
}

/// A single-use socket ticket, fetched with the token in a header.
async fn ticket(s: &Session) -> Result<String, TicketError> {
    let url = format!("/api/v1/conversations/{}/ticket", s.conversation);
    let resp = request("POST", &url, Some(&s.token), None)
        .await
        .map_err(|_| TicketError::Later)?;
    match resp.status() {
        200 => {}
        401 | 403 | 404 => return Err(TicketError::Refused(error_text(resp).await)),
        _ => return Err(TicketError::Later),
    }
    // `{"ticket": "…"}`, read with the browser's JSON parser.
    let text = resp.text().await.map_err(|_| TicketError::Later)?;
    js_sys::JSON::parse(&text)
        .ok()
        .and_then(|v| js_text(&v, "ticket"))
        .ok_or(TicketError::Later)
}

fn ws_url(s: &Session, ticket: &str, after: u64) -> String {
    let ticket = js_sys::encode_uri_component(ticket);
    web::socket::ws_url(&format!(
        "/api/v1/conversations/{}/ws?ticket={ticket}&after={after}",
        s.conversation
    ))
}

fn send_frame(f: &VisitorFrame) -> bool {
    let text = mini::visitor_frame(f);
    CONN.with(|c| c.borrow().as_ref().is_some_and(|s| s.send(&text)))
}

fn flush_outbox(w: Widget) {
    for p in w.pending.get_untracked() {
        if let Ok(client_id) = shared::ids::ClientMsgId::new(p.client_id.clone()) {
            send_frame(&VisitorFrame::Send {
                client_id,
                text: p.text,
            });
        }
    }
}

/// Opens (or reopens) the conversation socket: a ticket first, then the socket.
pub fn connect(w: Widget) {
    spawn_local(async move {
        let Some(s) = SESSION.with(|x| x.borrow().clone()) else {
            return;
        };
        match ticket(&s).await {
            Ok(t) => open_socket(w, &s, &t),
            Err(TicketError::Refused(why)) => {
                // The chat cannot be resumed: start afresh, saying why.
                new_chat(w);
                w.error.set(Some(why));
            }
            Err(TicketError::Later) => retry_later(w),
        }
    });
}

/// Schedules a reconnect with back-off.
fn retry_later(w: Widget) {
    let delay = RETRY.with(Backoff::next_ms);
    spawn_local(async move {
        web::sleep(delay).await;
        if SESSION.with(|x| x.borrow().is_some()) {
            connect(w);
        }
    });
}

fn open_socket(w: Widget, s: &Session, ticket: &str) {
    // The socket it replaces (if any) closes without reporting it.
    CONN.with(|c| c.borrow_mut().take());
    let on_text = move |text: String| match mini::visitor_event::<web::json::Value>(&text) {
        Ok(ev) => on_event(w, ev),
        Err(err) => w.error.set(Some(err.to_string())),
    };
    let on_open = move || {
        RETRY.with(Backoff::reset);
        RESUMING.with(|r| r.set(false));
        w.connected.set(true);
        w.was_online.set(true);
        flush_outbox(w);
        report_page();
    };
    let on_close = move |_code: u16, _reason: String| {
        w.connected.set(false);
        RESUMING.with(|r| r.set(false));
        if SESSION.with(|x| x.borrow().is_some()) {
            retry_later(w);
        }
    };
    let socket = Socket::open(&ws_url(s, ticket, w.last_seq()), on_text, on_open, on_close);
    CONN.with(|c| *c.borrow_mut() = socket);
}

/// A message skipped a number (a frame was lost): reopen the socket once, which
/// resumes after the last message held with none missing.
fn resume_if_gap(w: Widget, seq: u64) {
    if w.messages.with_untracked(|v| web::log::is_gap(v, seq))
        && !RESUMING.with(|r| r.replace(true))
    {
        connect(w);
    }
}

fn on_event(w: Widget, ev: VisitorEvent) {
    match ev {
        VisitorEvent::Welcome { status, .. } => {
            w.error.set(None);
            if status == VisitorStatus::Ended {
                w.typing.set(None);
            }
            w.status.set(Some(status));
        }
        VisitorEvent::Message { message } => {
            resume_if_gap(w, message.seq);
            if message.author != (shared::transcript::Author::System) {
                w.typing.set(None);
            }
            if let shared::transcript::Author::Staff { name } = &message.author {
                if !w
                    .messages
                    .with_untracked(|v| v.iter().any(|m| m.seq == message.seq))
                {
                    tell_page(name, &message.text);
                }
            }
            w.add_message(message);
            save(&w, "outbox", &w.pending.get_untracked());
        }
        VisitorEvent::Status { status } => {
            if status == VisitorStatus::Ended {
                w.typing.set(None);
            }
            w.status.set(Some(status));
        }
        VisitorEvent::Typing { typing, name } => {
            TYPING_AT.set(js_sys::Date::now());
            w.typing.set(typing.then_some(name));
        }
        VisitorEvent::Ack {
            client_id, message, ..
        } => {
            let cid = client_id.to_string();
            if let Some(m) = message {
                resume_if_gap(w, m.seq);
                w.add_message(m);
            }
            w.pending.update(|p| p.retain(|x| x.client_id != cid));
            save(&w, "outbox", &w.pending.get_untracked());
        }
        VisitorEvent::Error { code, message } => {
            // A refused message will never be acknowledged: take it out of the outbox.
            if code.starts_with("message_") || code == "conversation_ended" {
                w.pending.update(|p| {
                    p.pop();
                });
                save(&w, "outbox", &w.pending.get_untracked());
            }
            if code == "already_rated" {
                w.rated.set(true);
            }
            w.error.set(Some(message));
        }
        VisitorEvent::Rated { .. } => w.rated.set(true),
        VisitorEvent::Pong => {}
    }
}

/// Sends a message (kept in the outbox until acknowledged).
pub fn send_text(w: Widget, text: String) {
    let p = Pending {
        client_id: client_id(),
        text,
    };
    w.pending.update(|v| v.push(p.clone()));
    save(&w, "outbox", &w.pending.get_untracked());
    w.error.set(None);
    if let Ok(client_id) = shared::ids::ClientMsgId::new(p.client_id) {
        send_frame(&VisitorFrame::Send {
            client_id,
            text: p.text,
        });
    }
}

/// Tells the agent whether the visitor is typing.
pub fn send_typing(typing: bool) {
    send_frame(&VisitorFrame::Typing { typing });
}

/// Rates the ended chat.
pub fn rate(score: u8, comment: String) {
    send_frame(&VisitorFrame::Rate {
        score,
        comment: Some(comment).filter(|c| !c.trim().is_empty()),
    });
}

/// Ends the chat.
pub fn end() {
    send_frame(&VisitorFrame::End);
}

/// Forgets the ended conversation and shows the pre-chat form again.
pub fn new_chat(w: Widget) {
    SESSION.with(|x| *x.borrow_mut() = None);
    let old = CONN.with(|c| c.borrow_mut().take());
    drop(old);
    Store::Local.remove(&key(&w, "session"));
    Store::Local.remove(&key(&w, "outbox"));
    for (_, url) in BLOBS.with(|b| std::mem::take(&mut *b.borrow_mut())) {
        let _ = web_sys::Url::revoke_object_url(&url);
    }
    w.messages.set(vec![]);
    w.pending.set(vec![]);
    w.status.set(None);
    w.error.set(None);
    w.rated.set(false);
    // The old socket closed without reporting it: the next chat starts "Connecting".
    w.connected.set(false);
    w.was_online.set(false);
    let open = matches!(
        w.site_info
            .with_untracked(|i| i.as_ref().map(|i| i.availability.clone())),
        Some(Availability::Open { .. })
    );
    w.phase.set(if open {
        Phase::PreChat
    } else {
        Phase::LeaveMessage
    });
}

/// After a chat nobody took in time: the leave-a-message form, keeping name and email.
pub fn leave_message_instead(w: Widget) {
    new_chat(w);
    w.phase.set(Phase::LeaveMessage);
}

/// Tells the embedding page (and only it) that an agent wrote: the loader counts
/// unread messages and passes the `message` event to the page's listeners.
fn tell_page(from: &str, text: &str) {
    let Some(origin) = EMBED.with(|e| e.borrow().as_ref().map(|e| e.origin.clone())) else {
        return;
    };
    if let Some(parent) = web_sys::window().and_then(|w| w.parent().ok().flatten()) {
        let msg = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&msg, &"type".into(), &"switchboard:message".into());
        let _ = js_sys::Reflect::set(&msg, &"from".into(), &from.into());
        let _ = js_sys::Reflect::set(&msg, &"text".into(), &text.into());
        let _ = parent.post_message(&msg, &origin);
    }
}

/// The site's accent colour on the widget (CSS custom properties, set through the
/// CSSOM, which the page's CSP allows).
fn set_accent(accent: &str) {
    // The `<html>` of this app's own HTML document.
    let Some(root) = document()
        .document_element()
        .map(|e| e.unchecked_into::<web_sys::HtmlElement>())
    else {
        return;
    };
    let style = root.style();
    for var in ["--brand", "--brand-d", "--me", "--head-a", "--head-b"] {
        let _ = style.set_property(var, accent);
    }
}

/// Asks the host page to collapse the chat panel.
pub fn close_panel() {
    if let Some(parent) = web_sys::window().and_then(|w| w.parent().ok().flatten()) {
        let msg = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&msg, &"type".into(), &"switchboard:close".into());
        let _ = parent.post_message(&msg, "*");
    }
}

/// True when the chat has ended.
pub fn ended(w: Widget) -> bool {
    w.status.get() == Some(VisitorStatus::Ended)
}
