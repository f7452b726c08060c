//! English and German labels of the console (German from the agent help article).

use shared::agent::AgentState;
use shared::engine::{ChatStatus, EndedBy, SystemNote};

pub use web::lang::Lang;

/// All labels of one language.
pub struct Texts {
    pub title: &'static str,
    pub sign_in: &'static str,
    pub tenant: &'static str,
    pub agent: &'static str,
    pub agent_label: &'static str,
    pub password: &'static str,
    pub sign_out: &'static str,
    /// Label of a chat's scrollable message thread.
    pub messages_label: &'static str,
    /// Shown after an administrator ended the session.
    pub revoked_by_admin: &'static str,
    /// Shown after the password was changed (every session ends).
    pub revoked_password: &'static str,
    pub available: &'static str,
    pub idle: &'static str,
    /// Idle right after sign-in (the reason the service gives it).
    pub idle_signed_in: &'static str,
    pub rona: &'static str,
    pub signed_out: &'static str,
    pub rona_banner: &'static str,
    pub back_available: &'static str,
    pub state_label: &'static str,
    pub chats: &'static str,
    pub no_chats: &'static str,
    pub pick_chat: &'static str,
    pub offer_title: &'static str,
    pub transfer_offer: &'static str,
    pub conference_offer: &'static str,
    pub customer: &'static str,
    pub queue: &'static str,
    pub received: &'static str,
    pub waiting: &'static str,
    pub expires: &'static str,
    pub accept: &'static str,
    pub send: &'static str,
    pub compose: &'static str,
    pub reserved: &'static str,
    pub too_long: &'static str,
    pub templates: &'static str,
    pub transfer: &'static str,
    pub conference: &'static str,
    pub end_conference: &'static str,
    pub end: &'static str,
    pub wrap_up: &'static str,
    pub wrap_up_reason: &'static str,
    pub next_state: &'static str,
    pub submit_wrap_up: &'static str,
    /// Why Submit is disabled in the wrap-up dialog.
    pub pick_reason: &'static str,
    pub cancel: &'static str,
    pub refresh: &'static str,
    pub filter: &'static str,
    pub queues: &'static str,
    pub agents: &'static str,
    pub none_available: &'static str,
    pub status_active: &'static str,
    pub status_conf_requested: &'static str,
    pub status_conference: &'static str,
    pub status_ended: &'static str,
    pub needs_wrap_up: &'static str,
    pub reconnecting: &'static str,
    pub hint: &'static str,
    pub language: &'static str,
    pub verified: &'static str,
    pub left_messages: &'static str,
    pub no_left_messages: &'static str,
    pub close: &'static str,
}

const EN: Texts = Texts {
    title: "Switchboard agent console",
    sign_in: "Sign in",
    tenant: "Company",
    agent: "Agent ID",
    agent_label: "Agent",
    password: "Password",
    sign_out: "Sign out",
    messages_label: "Messages",
    revoked_by_admin: "An administrator signed you out. Sign in again to continue.",
    revoked_password:
        "Your password was changed, so every session ended. Sign in with the new password.",
    available: "Available",
    idle: "Idle",
    idle_signed_in: "Idle · just signed in",
    rona: "RONA",
    signed_out: "Signed out",
    rona_banner: "RONA — you missed an offer, so no new chats are routed to you.",
    back_available: "Back to Available",
    state_label: "Your state",
    chats: "Chats",
    no_chats: "No chats yet. Set yourself Available to receive offers.",
    pick_chat: "Select a chat on the left.",
    offer_title: "Contact request",
    transfer_offer: "Transfer from",
    conference_offer: "Conference request from",
    customer: "Customer",
    queue: "Queue",
    received: "Date",
    waiting: "Waiting",
    expires: "Expires in",
    accept: "Accept",
    send: "Send",
    compose: "Reply",
    reserved: "The characters < and > are reserved for template parameters and cannot be sent.",
    too_long: "At most 1,000 characters.",
    templates: "Templates",
    transfer: "Transfer",
    conference: "Conference",
    end_conference: "End Conference",
    end: "End",
    wrap_up: "Wrap-up",
    wrap_up_reason: "Wrap-up reason",
    next_state: "Then set me to",
    submit_wrap_up: "Submit Wrap Up",
    pick_reason: "Pick a wrap-up reason to submit.",
    cancel: "Cancel",
    refresh: "Refresh",
    filter: "Type to filter",
    queues: "Queues",
    agents: "Agents",
    none_available: "Nobody available",
    status_active: "Active",
    status_conf_requested: "Conference Requested",
    status_conference: "Conference",
    status_ended: "Ended",
    needs_wrap_up: "wrap-up",
    reconnecting: "Reconnecting…",
    hint: "Enter sends · Shift+Enter new line",
    language: "Deutsch",
    verified: "verified customer",
    left_messages: "Left messages",
    no_left_messages: "No messages were left.",
    close: "Close",
};

const DE: Texts = Texts {
    title: "Switchboard Agenten-Desktop",
    sign_in: "Anmelden",
    tenant: "Firma",
    agent: "Agenten-ID",
    agent_label: "Agent",
    password: "Passwort",
    sign_out: "Abmelden",
    messages_label: "Nachrichten",
    revoked_by_admin: "Ein Administrator hat Sie abgemeldet. Melden Sie sich erneut an, um weiterzuarbeiten.",
    revoked_password: "Ihr Passwort wurde geändert, daher wurden alle Sitzungen beendet. Melden Sie sich mit dem neuen Passwort an.",
    available: "Verfügbar",
    idle: "Leerlauf",
    idle_signed_in: "Leerlauf · gerade angemeldet",
    rona: "RONA",
    signed_out: "Abgemeldet",
    rona_banner: "RONA – Sie haben ein Angebot verpasst, daher werden Ihnen keine neuen Chats zugewiesen.",
    back_available: "Wieder verfügbar",
    state_label: "Ihr Status",
    chats: "Chats",
    no_chats: "Noch keine Chats. Setzen Sie sich auf Verfügbar, um Anfragen zu erhalten.",
    pick_chat: "Wählen Sie links einen Chat.",
    offer_title: "Kontaktanfrage",
    transfer_offer: "Übertragung von",
    conference_offer: "Konferenzanfrage von",
    customer: "Kunde",
    queue: "Warteschlange",
    received: "Datum",
    waiting: "Wartezeit",
    expires: "Läuft ab in",
    accept: "Annehmen",
    send: "Senden",
    compose: "Antwort",
    reserved: "Die Zeichen < und > sind für Vorlagenparameter reserviert und können nicht gesendet werden.",
    too_long: "Höchstens 1.000 Zeichen.",
    templates: "Vorlagen",
    transfer: "Übertragen",
    conference: "Konferenz",
    end_conference: "Konferenz beenden",
    end: "Beenden",
    wrap_up: "Nachbearbeitung",
    wrap_up_reason: "Nachbearbeitungsgrund",
    next_state: "Danach Status",
    submit_wrap_up: "Nachbearbeitung senden",
    pick_reason: "Wählen Sie einen Grund, um zu senden.",
    cancel: "Abbrechen",
    refresh: "Aktualisieren",
    filter: "Zum Filtern tippen",
    queues: "Warteschlangen",
    agents: "Agenten",
    none_available: "Niemand verfügbar",
    status_active: "Aktiv",
    status_conf_requested: "Konferenz angefordert",
    status_conference: "Konferenz",
    status_ended: "Beendet",
    needs_wrap_up: "Nachbearbeitung",
    reconnecting: "Verbindung wird wiederhergestellt…",
    hint: "Enter sendet · Umschalt+Enter neue Zeile",
    language: "English",
    verified: "verifizierter Kunde",
    left_messages: "Hinterlassene Nachrichten",
    no_left_messages: "Es wurden keine Nachrichten hinterlassen.",
    close: "Schließen",
};

/// The console's texts in a language.
pub trait Words {
    fn t(self) -> &'static Texts;
    fn state(self, s: &AgentState) -> &'static str;
    fn status(self, s: &ChatStatus) -> String;
    fn note(self, n: &SystemNote) -> String;
    /// The template parameters whose values lost `<` and `>`.
    fn stripped(self, params: &[String]) -> String;
    fn typing(self, name: &str) -> String;
}

impl Words for Lang {
    fn t(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }

    fn state(self, s: &AgentState) -> &'static str {
        let t = self.t();
        match s {
            AgentState::SignedOut => t.signed_out,
            AgentState::Idle { reason: None } => t.idle_signed_in,
            AgentState::Idle { .. } => t.idle,
            AgentState::Available => t.available,
            AgentState::Rona => t.rona,
        }
    }

    fn status(self, s: &ChatStatus) -> String {
        let t = self.t();
        match s {
            ChatStatus::Active => t.status_active.into(),
            ChatStatus::ConferenceRequested { guest_name } => {
                format!("{} · {guest_name}", t.status_conf_requested)
            }
            ChatStatus::Conference {
                owner_name,
                guest_name,
            } => format!("{} · {owner_name}, {guest_name}", t.status_conference),
            ChatStatus::Ended => t.status_ended.into(),
        }
    }

    fn note(self, n: &SystemNote) -> String {
        let de = self == Lang::De;
        match n {
            SystemNote::Queued { queue_name } => {
                if de {
                    format!("In Warteschlange {queue_name}")
                } else {
                    format!("Queued in {queue_name}")
                }
            }
            SystemNote::Joined { agent_name } => {
                if de {
                    format!("{agent_name} ist beigetreten")
                } else {
                    format!("{agent_name} joined")
                }
            }
            SystemNote::Left { agent_name } => {
                if de {
                    format!("{agent_name} hat verlassen")
                } else {
                    format!("{agent_name} left")
                }
            }
            SystemNote::Transferring => {
                if de {
                    "Übertragung".into()
                } else {
                    "Transferring".into()
                }
            }
            SystemNote::Ended { by } => match (by, de) {
                (EndedBy::Customer, false) => "Customer ended the chat".into(),
                (EndedBy::Customer, true) => "Kunde hat den Chat beendet".into(),
                (EndedBy::Inactivity, false) => "Ended after inactivity".into(),
                (EndedBy::Inactivity, true) => "Wegen Inaktivität beendet".into(),
                (EndedBy::Agent(_) | EndedBy::Staff, false) => "Ended by an agent".into(),
                (EndedBy::Agent(_) | EndedBy::Staff, true) => "Von einem Agenten beendet".into(),
                (EndedBy::MaxWait, false) => {
                    "Ended: nobody answered within the maximum wait".into()
                }
                (EndedBy::MaxWait, true) => {
                    "Beendet: niemand hat innerhalb der Wartezeit angenommen".into()
                }
            },
        }
    }

    /// The template parameters whose values lost `<` and `>`.
    fn stripped(self, params: &[String]) -> String {
        let list = params
            .iter()
            .map(|p| format!("<{p}>"))
            .collect::<Vec<_>>()
            .join(", ");
        match self {
            Lang::De => format!("Die Zeichen < und > wurden aus {list} entfernt (sie sind für Parameter reserviert). Bitte prüfen Sie den Text."),
            Lang::En => format!("The characters < and > were removed from {list} (they are reserved for parameters). Check the text before sending."),
        }
    }

    fn typing(self, name: &str) -> String {
        match self {
            Lang::De => format!("{name} schreibt…"),
            Lang::En => format!("{name} is typing…"),
        }
    }
}
