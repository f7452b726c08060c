//! The widget's state: small `Copy` context of signals. It mirrors what the edge
//! said; it decides nothing.

use crate::i18n::Lang;
use crate::i18n::Words as _;
use leptos::prelude::*;
use shared::engine::{Availability, VisitorStatus};
use shared::protocol::SiteInfo;
use shared::transcript::Message;

/// Which screen is shown.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    Loading,
    PreChat,
    LeaveMessage,
    MessageLeft,
    Chatting,
}

/// What the header says about the connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Conn {
    /// Before the first socket opened.
    Connecting,
    Online,
    /// The socket dropped (or stalled) and is being reopened.
    Reconnecting,
    Ended,
}

/// A message sent but not yet acknowledged; resent with the same id after reconnects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub client_id: String,
    pub text: String,
}

/// Everything the widget shows.
#[derive(Clone, Copy)]
pub struct Widget {
    /// The site key from the frame's URL: read once, kept for the page's life.
    pub site: &'static str,
    pub lang: Lang,
    /// What the site says (name, availability, reply time, team), once it is known:
    /// one signal, as it arrives at once.
    pub site_info: RwSignal<Option<SiteInfo>>,
    pub phase: RwSignal<Phase>,
    pub messages: RwSignal<Vec<Message>>,
    pub pending: RwSignal<Vec<Pending>>,
    pub status: RwSignal<Option<VisitorStatus>>,
    pub typing: RwSignal<Option<String>>,
    /// Whether a socket was ever open in this chat (Connecting vs Reconnecting).
    pub was_online: RwSignal<bool>,
    /// Whether the service stored a rating for this chat (or says it has one).
    pub rated: RwSignal<bool>,
    /// The pre-chat form's name and email. The page's `Switchboard.identify` fills
    /// what the visitor has not typed (it arrives with the loader's hello, which may
    /// come after the form is drawn); they stay for a next chat in the same page.
    pub form_name: RwSignal<String>,
    pub form_email: RwSignal<String>,
    pub error: RwSignal<Option<String>>,
    pub connected: RwSignal<bool>,
    pub customer_name: RwSignal<String>,
    /// The name of the file being uploaded, and its progress in percent (signal
    /// types the widget has anyway: each new one costs code).
    pub upload: RwSignal<Option<String>>,
    pub upload_pct: RwSignal<u8>,
}

/// A parameter of the iframe's URL (set by `widget.js`), or "" without it.
pub fn query(key: &str) -> String {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
        .and_then(|params| params.get(key))
        .unwrap_or_default()
}

impl Widget {
    pub fn new() -> Self {
        let lang_tag = match query("lang") {
            s if !s.is_empty() => s,
            _ => web::lang::browser_language(),
        };
        Self {
            site: query("site").leak(),
            lang: Lang::from_tag(&lang_tag),
            site_info: RwSignal::new(None),
            phase: RwSignal::new(Phase::Loading),
            messages: RwSignal::new(vec![]),
            pending: RwSignal::new(vec![]),
            status: RwSignal::new(None),
            typing: RwSignal::new(None),
            was_online: RwSignal::new(false),
            form_name: RwSignal::new(String::new()),
            form_email: RwSignal::new(String::new()),
            rated: RwSignal::new(false),
            error: RwSignal::new(None),
            connected: RwSignal::new(false),
            upload: RwSignal::new(None),
            upload_pct: RwSignal::new(0),
            customer_name: RwSignal::new(String::new()),
        }
    }

    /// Adds messages, keeping sequence order and dropping ones already shown.
    pub fn add_message(&self, m: Message) {
        self.messages.update(|v| {
            web::log::add_once(v, m.clone());
        });
        if let Some(cid) = &m.client_id {
            let cid = cid.to_string();
            self.pending.update(|p| p.retain(|x| x.client_id != cid));
        }
    }

    /// Where a (re)opened socket resumes: after the last message held with none
    /// missing below it (see `web::log`).
    pub fn last_seq(&self) -> u64 {
        self.messages
            .with_untracked(|v| web::log::contiguous_seq(v))
    }

    /// The site's usual reply time in minutes, if it gives one.
    pub fn reply_mins(&self) -> Option<u32> {
        self.site_info
            .with(|i| i.as_ref().and_then(|i| i.typical_reply_mins))
    }

    /// Whether the site takes chats now (`None` until the site info arrived).
    pub fn availability(&self) -> Option<Availability> {
        self.site_info
            .with(|i| i.as_ref().map(|i| i.availability.clone()))
    }

    /// The connection as the header shows it.
    pub fn conn(&self) -> Conn {
        if self.status.get() == Some(VisitorStatus::Ended) {
            Conn::Ended
        } else if self.phase.get() != Phase::Chatting || self.connected.get() {
            Conn::Online
        } else if self.was_online.get() {
            Conn::Reconnecting
        } else {
            Conn::Connecting
        }
    }

    pub fn status_text(&self) -> String {
        let t = self.lang.t();
        match self.conn() {
            Conn::Reconnecting => return t.reconnecting.into(),
            Conn::Connecting => return t.connecting.into(),
            Conn::Online | Conn::Ended => {}
        }
        match self.status.get() {
            Some(s) => self.lang.status(&s),
            None if self.phase.get() == Phase::LeaveMessage => t.away.into(),
            // The site's own reply time has its line below: no second, vaguer promise.
            None if self.reply_mins().is_some() => t.here.into(),
            None => t.online.into(),
        }
    }
}
