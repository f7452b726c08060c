//! The console's state: a small `Copy` context of signals mirroring what the
//! edge said. Nothing here decides a rule.

use crate::i18n::Lang;
use crate::i18n::Words as _;
use leptos::prelude::*;
use shared::agent::AgentState;
use shared::engine::{ChatSummary, Offer, TargetAgent, TargetQueue};
use shared::ids::{ClientMsgId, ConversationId};
use shared::protocol::{ReasonInfo, TemplateInfo};
use shared::transcript::Message;

/// The signed-in session.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionInfo {
    pub token: String,
    pub agent: String,
    pub name: String,
    pub tenant: String,
}

/// A message of the agent not yet acknowledged by the conversation (the outbox).
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub client_id: ClientMsgId,
    pub text: String,
}

/// One chat in the list.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatEntry {
    pub summary: ChatSummary,
    pub messages: Vec<Message>,
    pub unread: u32,
    pub typing: Option<String>,
    /// Ended or transferred away; a wrap-up is owed.
    pub wrap_up: bool,
    /// Own messages sent but not acknowledged; resent on every (re)connect.
    pub pending: Vec<Pending>,
    /// Whether the chat socket is open.
    pub online: bool,
    /// Pages, browser and time zone of the visitor (from the chat socket).
    pub visitor: Option<shared::visitor::VisitorInfo>,
    /// Earlier conversations of the customer (asked for when the chat is shown).
    pub history: Option<Vec<shared::engine::ClosedConversation>>,
}

impl ChatEntry {
    /// A new entry for a chat.
    pub fn new(summary: ChatSummary) -> Self {
        Self {
            summary,
            messages: vec![],
            unread: 0,
            typing: None,
            wrap_up: false,
            pending: vec![],
            online: false,
            visitor: None,
            history: None,
        }
    }

    /// The highest sequence number held with none missing below it (`web::log`).
    pub fn contiguous_seq(&self) -> u64 {
        web::log::contiguous_seq(&self.messages)
    }

    /// Adds a message once per sequence number, in order (`web::log`).
    pub fn add(&mut self, m: Message) -> bool {
        web::log::add_once(&mut self.messages, m)
    }
}

/// Which dialog is open.
#[derive(Clone, Debug, PartialEq)]
pub enum Dialog {
    None,
    Transfer(ConversationId),
    Conference(ConversationId),
    WrapUp(ConversationId),
    LeftMessages,
    /// The transcript of an earlier conversation of the customer.
    Past(ConversationId),
}

/// Which screen of the console is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Chats,
    Supervisor,
    Admin,
}

/// A live chat a supervisor reads along (read-only).
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub conversation: ConversationId,
    pub customer_name: String,
    pub messages: Vec<Message>,
    pub online: bool,
}

/// Everything the console shows.
#[derive(Clone, Copy)]
pub struct Console {
    pub lang: RwSignal<Lang>,
    pub session: RwSignal<Option<SessionInfo>>,
    pub state: RwSignal<AgentState>,
    pub capacity: RwSignal<u32>,
    pub offer: RwSignal<Option<(Offer, Vec<Message>)>>,
    pub chats: RwSignal<Vec<ChatEntry>>,
    pub selected: RwSignal<Option<ConversationId>>,
    pub idle_reasons: RwSignal<Vec<ReasonInfo>>,
    pub wrap_up_reasons: RwSignal<Vec<ReasonInfo>>,
    pub templates: RwSignal<Vec<TemplateInfo>>,
    pub queues: RwSignal<Vec<TargetQueue>>,
    pub agents: RwSignal<Vec<TargetAgent>>,
    /// Messages visitors left while nobody was available.
    pub left_messages: RwSignal<Vec<shared::engine::ClosedConversation>>,
    pub error: RwSignal<Option<String>>,
    pub connected: RwSignal<bool>,
    /// Text a template produced, for the compose box of a conversation, and the
    /// parameters whose values lost a `<` or `>`.
    pub fill: RwSignal<Option<(ConversationId, String, Vec<String>)>>,
    pub dialog: RwSignal<Dialog>,
    /// Milliseconds since the epoch, ticking every second (timers).
    pub now_ms: RwSignal<f64>,
    /// The signed-in agent's role (supervisor and admin screens).
    pub role: RwSignal<shared::config::Role>,
    pub screen: RwSignal<Screen>,
    /// A section of the admin screen to scroll to and focus once it is drawn
    /// (`"parked"`: the supervisor's banner leads there).
    pub reveal: RwSignal<Option<&'static str>>,
    /// The supervisor's live view, as last pushed.
    pub supervisor: RwSignal<Option<shared::engine::SupervisorView>>,
    pub observed: RwSignal<Option<Observed>>,
    /// A file being uploaded: chat, name, progress in percent.
    pub upload: RwSignal<Option<(ConversationId, String, u32)>>,
    /// The transcript of an earlier conversation, once it arrived.
    pub past: RwSignal<Option<(ConversationId, Vec<Message>)>>,
    /// Sound and title flash on a new offer (remembered in this browser).
    pub alert_offers: RwSignal<bool>,
}

impl Console {
    pub fn new() -> Self {
        let lang = Lang::from_tag(&web::lang::browser_language());
        Self {
            lang: RwSignal::new(lang),
            session: RwSignal::new(None),
            state: RwSignal::new(AgentState::SignedOut),
            capacity: RwSignal::new(0),
            offer: RwSignal::new(None),
            chats: RwSignal::new(vec![]),
            selected: RwSignal::new(None),
            idle_reasons: RwSignal::new(vec![]),
            wrap_up_reasons: RwSignal::new(vec![]),
            templates: RwSignal::new(vec![]),
            queues: RwSignal::new(vec![]),
            agents: RwSignal::new(vec![]),
            left_messages: RwSignal::new(vec![]),
            error: RwSignal::new(None),
            connected: RwSignal::new(false),
            fill: RwSignal::new(None),
            dialog: RwSignal::new(Dialog::None),
            now_ms: RwSignal::new(js_sys::Date::now()),
            role: RwSignal::new(shared::config::Role::Agent),
            screen: RwSignal::new(initial_screen()),
            reveal: RwSignal::new(None),
            supervisor: RwSignal::new(None),
            observed: RwSignal::new(None),
            past: RwSignal::new(None),
            upload: RwSignal::new(None),
            alert_offers: RwSignal::new(crate::api::alerts_remembered()),
        }
    }

    pub fn t(&self) -> &'static crate::i18n::Texts {
        self.lang.get().t()
    }

    /// The selected chat.
    pub fn current(&self) -> Option<ChatEntry> {
        let sel = self.selected.get()?;
        self.chats
            .with(|v| v.iter().find(|c| c.summary.conversation == sel).cloned())
    }

    pub fn update_chat(&self, id: &ConversationId, f: impl FnOnce(&mut ChatEntry)) {
        self.chats.update(|v| {
            if let Some(c) = v.iter_mut().find(|c| &c.summary.conversation == id) {
                f(c);
            }
        });
    }
}

/// `/admin/` opens the admin screen (same app, same build).
fn initial_screen() -> Screen {
    let path = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_default();
    if path.starts_with("/admin") {
        Screen::Admin
    } else {
        Screen::Chats
    }
}

/// "m:ss" from milliseconds.
pub fn mmss(ms: f64) -> String {
    let s = (ms / 1000.0).max(0.0) as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// Local "YYYY-MM-DD HH:MM" of a time.
pub fn local_time(at: &chrono::DateTime<chrono::Utc>) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        at.timestamp_millis() as f64
    ));
    format!(
        "{}-{:02}-{:02} {:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes()
    )
}

/// Local "HH:MM".
pub fn clock(at: &chrono::DateTime<chrono::Utc>) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        at.timestamp_millis() as f64
    ));
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}
