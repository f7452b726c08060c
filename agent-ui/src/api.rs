//! All network code of the console: sign-in over HTTP, the control socket (one per
//! session: state, offers, routing; a reconnect gets a full snapshot), and one chat
//! socket per chat, opened on the conversation itself with a ticket.
//!
//! Rules of the chat sockets (nothing acknowledged or typed is lost):
//! - A chat socket resumes after the highest sequence number held with none missing;
//!   a message that skips a number (a gap) makes the console reopen the socket from
//!   there, which sends the missing ones.
//! - Own messages wait in the chat's outbox (with their client id) until their `ack`;
//!   every (re)connect resends them all, and the conversation stores a client id once.
//! - A closed socket is reopened with a fresh ticket from the control socket, unless
//!   the conversation closed it because the agent left (code 4003).
//! - Every socket pings every [`PING_MS`]; one that stays silent is dropped and
//!   reopened like a closed one (`web::socket` holds the socket, heartbeat and
//!   back-off; `web::log` the message order and the gap rule).

use crate::i18n_centre::CentreWords as _;
use crate::state::{ChatEntry, Console, Dialog, Pending, SessionInfo};
use gloo_net::http::Request;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::engine::{AgentEvent, ChatStatus};
use shared::ids::{ClientMsgId, ConversationId};
use shared::protocol::{
    encode, AgentChatFrame, AgentFrame, AgentServerFrame, ErrorBody, SignInRequest, SignInResponse,
};
use shared::rpc::TicketReply;
use std::cell::RefCell;
use std::collections::BTreeMap;
use wasm_bindgen::JsValue;
use web::socket::{ws_url, Backoff, Beat, Socket};
use web::store::Store;

const SESSION_KEY: &str = "switchboard:agent-session";

/// A ping this often on every socket; one silent for two intervals and 5 s more is
/// dropped and reopened (`web::socket`).
pub const PING_MS: f64 = 20_000.0;

thread_local! {
    static CONN: RefCell<Option<Socket>> = const { RefCell::new(None) };
    static RETRY: Backoff = const { Backoff::new() };
    static WAITING: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static CHATS: RefCell<BTreeMap<ConversationId, Socket>> = const { RefCell::new(BTreeMap::new()) };
    /// The read-only socket of the chat a supervisor reads along.
    static OBSERVER: RefCell<Option<Socket>> = const { RefCell::new(None) };
}

const ALERTS_KEY: &str = "switchboard:offer-alerts";

/// Whether offer alerts (sound, title flash) were switched on in this browser.
pub fn alerts_remembered() -> bool {
    Store::Local.get(ALERTS_KEY).is_some_and(|v| v == "on")
}

/// Switches offer alerts and remembers the choice in this browser.
pub fn set_alerts(c: Console, on: bool) {
    c.alert_offers.set(on);
    Store::Local.set(ALERTS_KEY, if on { "on" } else { "off" });
}

/// A short two-tone chime (Web Audio; silent where the browser blocks audio).
pub fn chime() {
    let Ok(ctx) = web_sys::AudioContext::new() else {
        return;
    };
    for (i, freq) in [880.0f32, 1320.0].into_iter().enumerate() {
        let (Ok(osc), Ok(gain)) = (ctx.create_oscillator(), ctx.create_gain()) else {
            return;
        };
        let start = ctx.current_time() + i as f64 * 0.18;
        osc.frequency().set_value(freq);
        gain.gain().set_value(0.08);
        let _ = gain.gain().linear_ramp_to_value_at_time(0.0, start + 0.16);
        let _ = osc.connect_with_audio_node(&gain);
        let _ = gain.connect_with_audio_node(&ctx.destination());
        let _ = osc.start_with_when(start);
        let _ = osc.stop_with_when(start + 0.17);
    }
}

/// Opens the read-only socket of a chat a supervisor reads along.
fn open_observer(c: Console, conversation: ConversationId, ticket: &str) {
    close_observer();
    let url = ws_url(&format!(
        "/api/v1/conversations/{}/agent-ws?ticket={}&after=0",
        js_sys::encode_uri_component(conversation.as_str()),
        js_sys::encode_uri_component(ticket)
    ));
    let online = move |on: bool| {
        c.observed.update(|o| {
            if let Some(o) = o {
                o.online = on;
            }
        })
    };
    let socket = Socket::open(
        &url,
        on_text(c),
        move || online(true),
        move |_, _| online(false),
    );
    OBSERVER.with(|x| *x.borrow_mut() = socket);
}

/// Stops reading along.
pub fn close_observer() {
    let old = OBSERVER.with(|x| x.borrow_mut().take());
    drop(old);
}

/// Sends a file into a chat (the service checks size, type and name; the message
/// arrives on the chat socket). Progress goes to `c.upload`.
pub fn upload(c: Console, conversation: ConversationId, file: web_sys::File) {
    if file.size() > shared::attachment::MAX_BYTES as f64 {
        c.error
            .set(Some(c.lang.get_untracked().c().file_too_large.into()));
        return;
    }
    let Some(s) = c.session.get_untracked() else {
        return;
    };
    let name = file.name();
    let url = format!(
        "/api/v1/conversations/{}/attachments?name={}&client_id=f{:x}{:08x}",
        js_sys::encode_uri_component(conversation.as_str()),
        js_sys::encode_uri_component(&name),
        js_sys::Date::now() as u64,
        (js_sys::Math::random() * 4_294_967_296.0) as u64
    );
    c.upload.set(Some((conversation, name, 0)));
    web::upload(
        &url,
        &[("Authorization", format!("Bearer {}", s.token))],
        &file,
        move |pct| {
            c.upload.update(|u| {
                if let Some(u) = u {
                    u.2 = pct;
                }
            })
        },
        move |r| {
            c.upload.set(None);
            if let Err(m) = r {
                c.error.set(Some(m));
            }
        },
    );
}

/// A file of a chat as a blob URL (for a thumbnail or a download).
pub async fn attachment_url(c: Console, conversation: &ConversationId, id: &str) -> Option<String> {
    let s = c.session.get_untracked()?;
    let url = format!(
        "/api/v1/conversations/{}/attachments/{}",
        js_sys::encode_uri_component(conversation.as_str()),
        js_sys::encode_uri_component(id)
    );
    let resp = Request::get(&url)
        .header("Authorization", &format!("Bearer {}", s.token))
        .send()
        .await
        .ok()?;
    web::blob_url(resp.into()).await
}

/// What an admin call sends.
enum AdminBody {
    None,
    Json(String),
    /// A file, as its own type (an agent picture).
    File(web_sys::File),
}

/// Admin API: a call with the session's bearer token; the error names the problem.
async fn admin_call<T: serde::de::DeserializeOwned>(
    c: Console,
    method: &str,
    path: &str,
    body: AdminBody,
) -> Result<T, String> {
    let Some(s) = c.session.get_untracked() else {
        return Err("signed out".into());
    };
    let url = format!(
        "/api/v1/admin/tenants/{}/{path}",
        js_sys::encode_uri_component(&s.tenant)
    );
    let auth = format!("Bearer {}", s.token);
    let req = match method {
        "PUT" => Request::put(&url),
        "POST" => Request::post(&url),
        _ => Request::get(&url),
    }
    .header("Authorization", &auth);
    let (content_type, body) = match body {
        AdminBody::None => (None, None),
        AdminBody::Json(b) => (Some("application/json".to_string()), Some(JsValue::from(b))),
        AdminBody::File(f) => (Some(f.type_()), Some(JsValue::from(f))),
    };
    let resp = match (content_type, body) {
        (Some(t), Some(b)) => {
            req.header("Content-Type", &t)
                .body(b)
                .map_err(|e| e.to_string())?
                .send()
                .await
        }
        _ => req.send().await,
    }
    .map_err(|e| e.to_string())?;
    if !resp.ok() {
        return Err(error_of(resp).await);
    }
    resp.json::<T>().await.map_err(|e| e.to_string())
}

/// An admin `POST` with no body whose answer is only "done".
async fn admin_post(c: Console, path: &str) -> Result<(), String> {
    admin_call::<serde_json::Value>(c, "POST", path, AdminBody::None)
        .await
        .map(|_| ())
}

/// Lifts an agent's sign-in lockout (admin role).
pub async fn unlock_agent(c: Console, agent: &str) -> Result<(), String> {
    admin_post(
        c,
        &format!("agents/{}/unlock", js_sys::encode_uri_component(agent)),
    )
    .await
}

/// Uploads an agent picture (admin role); gives its id for `agents[].avatar`.
pub async fn upload_avatar(c: Console, file: web_sys::File) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Stored {
        avatar: String,
    }
    admin_call::<Stored>(c, "PUT", "avatars", AdminBody::File(file))
        .await
        .map(|s| s.avatar)
}

/// The tenant's configuration (admin role).
pub async fn load_config(c: Console) -> Result<shared::config::TenantConfig, String> {
    admin_call::<shared::rpc::ConfigReply>(c, "GET", "config", AdminBody::None)
        .await
        .map(|r| r.config)
}

/// Saves the configuration (passwords are hashed by the service).
pub async fn save_config(c: Console, body: &shared::protocol::AdminConfig) -> Result<(), String> {
    let body = serde_json::to_string(body).map_err(|e| e.to_string())?;
    admin_call::<serde_json::Value>(c, "PUT", "config", AdminBody::Json(body))
        .await
        .map(|_| ())
}

/// The webhook dead-letter list.
pub async fn dead_letters(c: Console) -> Result<Vec<shared::webhook::DeadLetter>, String> {
    #[derive(serde::Deserialize)]
    struct Items {
        items: Vec<shared::webhook::DeadLetter>,
    }
    admin_call::<Items>(c, "GET", "webhooks/dead", AdminBody::None)
        .await
        .map(|i| i.items)
}

/// Deliveries from the routing to conversations that were parked.
pub async fn parked_deliveries(c: Console) -> Result<Vec<shared::rpc::ParkedDelivery>, String> {
    #[derive(serde::Deserialize)]
    struct Items {
        items: Vec<shared::rpc::ParkedDelivery>,
    }
    admin_call::<Items>(c, "GET", "deliveries/parked", AdminBody::None)
        .await
        .map(|i| i.items)
}

/// Sends a parked delivery again.
pub async fn retry_parked(c: Console, key: &str) -> Result<(), String> {
    admin_post(
        c,
        &format!(
            "deliveries/parked/{}/retry",
            js_sys::encode_uri_component(key)
        ),
    )
    .await
}

/// Sends every parked delivery again, oldest first; says how many went.
pub async fn retry_all_parked(c: Console) -> Result<shared::rpc::RetriedParked, String> {
    admin_call(c, "POST", "deliveries/parked/retry", AdminBody::None).await
}

/// Sends a dead-lettered webhook delivery again.
pub async fn retry_dead(c: Console, id: &str) -> Result<(), String> {
    admin_post(
        c,
        &format!("webhooks/dead/{}/retry", js_sys::encode_uri_component(id)),
    )
    .await
}

/// Restores a session from this tab, and starts the clock.
pub fn resume(c: Console) {
    if let Some(s) = Store::Session.load::<SessionInfo>(SESSION_KEY) {
        c.session.set(Some(s));
        connect(c);
    }
    spawn_local(async move {
        loop {
            gloo_timers::future::TimeoutFuture::new(1000).await;
            let now = js_sys::Date::now();
            c.now_ms.set(now);
            heartbeat(c, now);
        }
    });
}

/// Signs in and opens the agent socket.
pub async fn sign_in(
    c: Console,
    tenant: String,
    agent: String,
    password: String,
) -> Result<(), String> {
    let body = SignInRequest {
        tenant: shared::ids::TenantId::new(tenant.trim()).map_err(|e| e.to_string())?,
        agent: shared::ids::AgentId::new(agent.trim()).map_err(|e| e.to_string())?,
        password,
    };
    let resp = Request::post("/api/v1/agent/sign-in")
        .json(&body)
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.ok() {
        return Err(error_of(resp).await);
    }
    let r: SignInResponse = resp.json().await.map_err(|e| e.to_string())?;
    let s = SessionInfo {
        token: r.token,
        agent: r.agent.to_string(),
        name: r.name,
        tenant: body.tenant.to_string(),
    };
    Store::Session.save(SESSION_KEY, &s);
    c.session.set(Some(s));
    connect(c);
    Ok(())
}

/// The message of an error answer (its `ErrorBody`), or its status.
async fn error_of(resp: gloo_net::http::Response) -> String {
    web::error_text(resp.status(), &resp.text().await.unwrap_or_default())
}

/// Drops the session locally.
pub fn forget(c: Console) {
    Store::Session.remove(SESSION_KEY);
    WAITING.with(|w| w.borrow_mut().clear());
    // Dropped sockets close without reporting it (no reconnect).
    let control = CONN.with(|x| x.borrow_mut().take());
    let chats = CHATS.with(|m| std::mem::take(&mut *m.borrow_mut()));
    drop((control, chats));
    c.session.set(None);
    c.chats.set(vec![]);
    c.offer.set(None);
    c.selected.set(None);
}

/// Sends an intent to the edge.
/// Intents made while the control socket is (re)connecting wait here and go out when
/// it opens (e.g. the state picked right after signing in). The service decides on
/// them then; a stale one is refused with an error that names it.
const MAX_WAITING_INTENTS: usize = 20;

pub fn send(c: Console, f: AgentFrame) {
    let text = encode(&f);
    let ok = CONN.with(|x| x.borrow().as_ref().is_some_and(|x| x.send(&text)));
    if !ok {
        WAITING.with(|w| {
            let mut w = w.borrow_mut();
            if w.len() < MAX_WAITING_INTENTS {
                w.push(text);
            }
        });
        c.error.set(Some(c.t().reconnecting.into()));
    }
}

/// Sends the intents that waited for the control socket.
fn flush_waiting() {
    let waiting = WAITING.with(|w| std::mem::take(&mut *w.borrow_mut()));
    CONN.with(|x| {
        if let Some(x) = x.borrow().as_ref() {
            for t in waiting {
                x.send(&t);
            }
        }
    });
}

/// Sends a message: it waits in the chat's outbox until acknowledged.
pub fn say(c: Console, conversation: &ConversationId, client_id: ClientMsgId, text: String) {
    c.update_chat(conversation, |e| {
        e.pending.push(Pending {
            client_id: client_id.clone(),
            text: text.clone(),
        })
    });
    send_chat(conversation, &AgentChatFrame::Send { client_id, text });
}

/// Tells the chat the agent is (not) typing; dropped while the socket is down.
pub fn typing(conversation: &ConversationId, typing: bool) {
    send_chat(conversation, &AgentChatFrame::Typing { typing });
}

fn send_chat(conversation: &ConversationId, f: &AgentChatFrame) -> bool {
    CHATS.with(|m| {
        m.borrow()
            .get(conversation)
            .is_some_and(|x| x.send(&encode(f)))
    })
}

/// Closes a chat socket on purpose (it reports no close, so it is not reopened).
fn close_chat(conversation: &ConversationId) {
    let old = CHATS.with(|m| m.borrow_mut().remove(conversation));
    drop(old);
}

/// Once a second: pings on the control and chat sockets; a stalled one is dropped and
/// reopened (the control socket with back-off, a chat socket with a fresh ticket).
fn heartbeat(c: Console, now: f64) {
    match CONN.with(|x| x.borrow().as_ref().map(|x| x.beat(now, PING_MS))) {
        Some(Beat::Ping) => {
            CONN.with(|x| {
                x.borrow()
                    .as_ref()
                    .map(|x| x.send(&encode(&AgentFrame::Ping)))
            });
        }
        Some(Beat::Stalled) => {
            let stalled = CONN.with(|x| x.borrow_mut().take());
            drop(stalled);
            c.connected.set(false);
            reconnect_later(c);
        }
        Some(Beat::Quiet) | None => {}
    }
    let beats: Vec<(ConversationId, Beat)> = CHATS.with(|m| {
        m.borrow()
            .iter()
            .map(|(id, x)| (id.clone(), x.beat(now, PING_MS)))
            .collect()
    });
    for (id, beat) in beats {
        match beat {
            Beat::Ping => {
                send_chat(&id, &AgentChatFrame::Ping);
            }
            Beat::Stalled => {
                close_chat(&id);
                c.update_chat(&id, |e| e.online = false);
                send(c, AgentFrame::Ticket { conversation: id });
            }
            Beat::Quiet => {}
        }
    }
}

/// Decodes every frame of a socket (control or chat) into [`on_frame`].
fn on_text(c: Console) -> impl FnMut(String) + 'static {
    move |text: String| match shared::protocol::decode_from_service::<AgentServerFrame>(&text) {
        Ok(f) => on_frame(c, f),
        Err(err) => c.error.set(Some(err.to_string())),
    }
}

/// Opens (or reopens) a chat socket with a ticket, resuming after what is held.
fn open_chat(c: Console, conversation: ConversationId, ticket: &str) {
    let after = c
        .chats
        .with_untracked(|v| {
            v.iter()
                .find(|e| e.summary.conversation == conversation)
                .map(ChatEntry::contiguous_seq)
        })
        .unwrap_or(0);
    let url = ws_url(&format!(
        "/api/v1/conversations/{}/agent-ws?ticket={}&after={after}",
        js_sys::encode_uri_component(conversation.as_str()),
        js_sys::encode_uri_component(ticket)
    ));
    close_chat(&conversation);
    let id = conversation.clone();
    let on_open = move || {
        c.update_chat(&id, |e| e.online = true);
        // Resend the outbox: the conversation stores each client id once.
        let pending = c
            .chats
            .with_untracked(|v| {
                v.iter()
                    .find(|e| e.summary.conversation == id)
                    .map(|e| e.pending.clone())
            })
            .unwrap_or_default();
        for p in pending {
            send_chat(
                &id,
                &AgentChatFrame::Send {
                    client_id: p.client_id,
                    text: p.text,
                },
            );
        }
    };
    let id = conversation.clone();
    let on_close = move |code: u16, _reason: String| {
        c.update_chat(&id, |e| e.online = false);
        CHATS.with(|m| m.borrow_mut().remove(&id));
        let still_here = c
            .chats
            .with_untracked(|v| v.iter().any(|x| x.summary.conversation == id));
        if code == 4003 || !still_here || c.session.get_untracked().is_none() {
            return;
        }
        // Ask the control socket for a fresh ticket; its answer reopens the socket.
        let id = id.clone();
        spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(500).await;
            send(c, AgentFrame::Ticket { conversation: id });
        });
    };
    if let Some(socket) = Socket::open(&url, on_text(c), on_open, on_close) {
        CHATS.with(|m| m.borrow_mut().insert(conversation, socket));
    }
}

/// Schedules a reconnect of the control socket with back-off.
fn reconnect_later(c: Console) {
    let delay = RETRY.with(Backoff::next_ms);
    spawn_local(async move {
        gloo_timers::future::TimeoutFuture::new(delay).await;
        connect(c);
    });
}

/// Opens the control socket: a single-use ticket first (the session token goes only
/// in the `Authorization` header), then the socket with the ticket.
fn connect(c: Console) {
    spawn_local(async move {
        let Some(s) = c.session.get_untracked() else {
            return;
        };
        let resp = Request::post("/api/v1/agent/ticket")
            .header("Authorization", &format!("Bearer {}", s.token))
            .send()
            .await;
        let ticket = match resp {
            Ok(r) if r.ok() => match r.json::<TicketReply>().await {
                Ok(t) => t.ticket,
                Err(_) => return reconnect_later(c),
            },
            Ok(r) if r.status() == 401 => {
                // The session is over (expired or revoked): sign in again.
                let why = r
                    .json::<ErrorBody>()
                    .await
                    .map(|b| b.message)
                    .unwrap_or_default();
                forget(c);
                c.error.set(Some(why));
                return;
            }
            _ => return reconnect_later(c),
        };
        open_control(c, &ticket);
    });
}

fn open_control(c: Console, ticket: &str) {
    let url = ws_url(&format!(
        "/api/v1/agent/ws?ticket={}",
        js_sys::encode_uri_component(ticket)
    ));
    // The socket it replaces (if any) closes without reporting it.
    let old = CONN.with(|x| x.borrow_mut().take());
    drop(old);
    let on_open = move || {
        RETRY.with(Backoff::reset);
        c.connected.set(true);
        c.error.set(None);
        flush_waiting();
    };
    let on_close = move |code: u16, reason: String| {
        c.connected.set(false);
        if c.session.get_untracked().is_none() {
            return;
        }
        // 4001: session expired; 4003: session revoked (the reason says why).
        if code == 4001 || code == 4003 {
            let why = match reason.as_str() {
                "signed_out_by_admin" => Some(c.t().revoked_by_admin.to_string()),
                "signed_out_by_supervisor" => {
                    Some(c.lang.get_untracked().c().revoked_by_supervisor.to_string())
                }
                "password_changed" => Some(c.t().revoked_password.to_string()),
                "signed_out" => None,
                other => Some(other.to_string()),
            };
            forget(c);
            c.error.set(why);
            return;
        }
        reconnect_later(c);
    };
    let socket = Socket::open(&url, on_text(c), on_open, on_close);
    CONN.with(|x| *x.borrow_mut() = socket);
}

fn on_frame(c: Console, f: AgentServerFrame) {
    match f {
        AgentServerFrame::Config {
            idle_reasons,
            wrap_up_reasons,
            templates,
        } => {
            c.idle_reasons.set(idle_reasons);
            c.wrap_up_reasons.set(wrap_up_reasons);
            c.templates.set(templates);
        }
        AgentServerFrame::Snapshot {
            snapshot,
            transcripts,
            tickets,
            idle_reasons,
            wrap_up_reasons,
            templates,
        } => {
            c.state.set(snapshot.state);
            c.capacity.set(snapshot.capacity);
            c.role.set(snapshot.role);
            if snapshot.role.supervises()
                && c.screen.get_untracked() == crate::state::Screen::Supervisor
            {
                send(c, AgentFrame::Supervise);
            }
            c.idle_reasons.set(idle_reasons);
            c.wrap_up_reasons.set(wrap_up_reasons);
            c.templates.set(templates);
            c.offer.set(snapshot.offer.map(|o| {
                let t = transcripts
                    .get(&o.conversation)
                    .cloned()
                    .unwrap_or_default();
                (o, t)
            }));
            // Keep what is held (messages, outbox) for chats that remain.
            let old = c.chats.get_untracked();
            let mut chats = vec![];
            for (summary, wrap_up) in snapshot
                .chats
                .into_iter()
                .map(|s| (s, false))
                .chain(snapshot.wrap_ups.into_iter().map(|s| (s, true)))
            {
                let mut e = old
                    .iter()
                    .find(|o| o.summary.conversation == summary.conversation)
                    .cloned()
                    .unwrap_or_else(|| ChatEntry::new(summary.clone()));
                e.summary = summary;
                e.wrap_up = wrap_up;
                chats.push(e);
            }
            for o in &old {
                if !chats
                    .iter()
                    .any(|e| e.summary.conversation == o.summary.conversation)
                {
                    close_chat(&o.summary.conversation);
                }
            }
            if c.selected.get_untracked().is_none() {
                c.selected
                    .set(chats.first().map(|e| e.summary.conversation.clone()));
            }
            c.chats.set(chats);
            for (conversation, ticket) in tickets {
                let open =
                    CHATS.with(|m| m.borrow().get(&conversation).is_some_and(Socket::is_live));
                if !open {
                    open_chat(c, conversation, &ticket);
                }
            }
        }
        AgentServerFrame::Ticket {
            conversation,
            ticket,
        } => open_chat(c, conversation, &ticket),
        AgentServerFrame::Welcome { .. } => {}
        AgentServerFrame::Offer { offer, thread } => {
            if c.alert_offers.get_untracked() {
                chime();
            }
            c.offer.set(Some((offer, thread)))
        }
        AgentServerFrame::Event { event } => on_event(c, event),
        AgentServerFrame::Transcript {
            conversation,
            messages,
        } => c.update_chat(&conversation, |e| {
            for m in messages {
                e.add(m);
            }
        }),
        AgentServerFrame::Message {
            conversation,
            message,
        } if c
            .observed
            .with_untracked(|o| o.as_ref().is_some_and(|o| o.conversation == conversation)) =>
        {
            c.observed.update(|o| {
                if let Some(o) = o {
                    web::log::add_once(&mut o.messages, message);
                }
            });
        }
        AgentServerFrame::Message {
            conversation,
            message,
        } => {
            let selected = c.selected.get_untracked().as_ref() == Some(&conversation);
            let mut gap = false;
            c.update_chat(&conversation, |e| {
                gap = web::log::is_gap(&e.messages, message.seq);
                if let Some(cid) = &message.client_id {
                    e.pending.retain(|p| &p.client_id != cid);
                }
                if e.add(message) && !selected {
                    e.unread += 1;
                }
                e.typing = None;
            });
            if gap {
                // A message skipped a number: reopen from the last one held.
                close_chat(&conversation);
                send(c, AgentFrame::Ticket { conversation });
            }
        }
        AgentServerFrame::Typing {
            conversation,
            typing,
            name,
        } => c.update_chat(&conversation, |e| e.typing = typing.then_some(name)),
        AgentServerFrame::Ack {
            conversation,
            client_id,
            message,
            ..
        } => c.update_chat(&conversation, |e| {
            e.pending.retain(|p| p.client_id != client_id);
            if let Some(m) = message {
                e.add(m);
            }
        }),
        AgentServerFrame::Pong => {}
        AgentServerFrame::LeftMessages { messages } => c.left_messages.set(messages),
        AgentServerFrame::Targets { queues, agents } => {
            c.queues.set(queues);
            c.agents.set(agents);
        }
        AgentServerFrame::Template {
            conversation,
            text,
            stripped,
        } => c.fill.set(Some((conversation, text, stripped))),
        AgentServerFrame::Error { message, .. } => c.error.set(Some(message)),
        AgentServerFrame::Supervisor { view } => c.supervisor.set(Some(view)),
        AgentServerFrame::Visitor { conversation, info } => {
            c.update_chat(&conversation, |e| e.visitor = Some(info))
        }
        AgentServerFrame::History {
            conversation,
            items,
        } => c.update_chat(&conversation, |e| e.history = Some(items)),
        AgentServerFrame::PastTranscript { id, messages } => c.past.set(Some((id, messages))),
        AgentServerFrame::Observe {
            conversation,
            ticket,
        } => open_observer(c, conversation, &ticket),
    }
}

fn on_event(c: Console, ev: AgentEvent) {
    match ev {
        AgentEvent::State { state } => c.state.set(state),
        AgentEvent::Offer(o) => {
            if c.alert_offers.get_untracked() {
                chime();
            }
            c.offer.set(Some((o, vec![])))
        }
        AgentEvent::OfferWithdrawn { conversation, .. } => {
            if c.offer
                .get_untracked()
                .is_some_and(|(o, _)| o.conversation == conversation)
            {
                c.offer.set(None);
            }
        }
        AgentEvent::Joined(summary) => {
            let id = summary.conversation.clone();
            let thread = c
                .offer
                .get_untracked()
                .filter(|(o, _)| o.conversation == id)
                .map(|(_, t)| t)
                .unwrap_or_default();
            if c.offer
                .get_untracked()
                .is_some_and(|(o, _)| o.conversation == id)
            {
                c.offer.set(None);
            }
            c.chats.update(|v| {
                v.retain(|e| e.summary.conversation != id || e.wrap_up);
                let mut e = ChatEntry::new(summary);
                for m in thread {
                    e.add(m);
                }
                v.push(e);
            });
            c.selected.set(Some(id));
        }
        AgentEvent::Status {
            conversation,
            status,
        } => c.update_chat(&conversation, |e| e.summary.status = status),
        AgentEvent::Left { conversation } => {
            c.chats
                .update(|v| v.retain(|e| e.summary.conversation != conversation || e.wrap_up));
        }
        AgentEvent::WrapUpRequired { conversation } => {
            c.update_chat(&conversation, |e| {
                e.wrap_up = true;
                e.summary.status = ChatStatus::Ended;
            });
            c.selected.set(Some(conversation.clone()));
            c.dialog.set(Dialog::WrapUp(conversation));
        }
        AgentEvent::WrapUpDone { conversation } => {
            close_chat(&conversation);
            c.chats
                .update(|v| v.retain(|e| e.summary.conversation != conversation));
            if c.selected.get_untracked().as_ref() == Some(&conversation) {
                c.selected.set(
                    c.chats
                        .get_untracked()
                        .first()
                        .map(|e| e.summary.conversation.clone()),
                );
            }
            if c.dialog.get_untracked() == Dialog::WrapUp(conversation) {
                c.dialog.set(Dialog::None);
            }
        }
    }
}
