//! English and German texts of the widget. The language comes from the site's
//! config, else the loader's `lang`, else the browser. Names given by people (agents,
//! queues) sit inside bidi isolates (U+2068 … U+2069), so a name with U+202E cannot
//! turn the sentence around it.

use shared::engine::{EndedBy, SystemNote, VisitorStatus};

pub use web::lang::Lang;

/// All texts of one language.
pub struct Texts {
    pub attach: &'static str,
    pub uploading: &'static str,
    pub file_too_large: &'static str,
    pub upload_failed: &'static str,
    pub open_file: &'static str,
    pub loading: &'static str,
    pub minimize: &'static str,
    pub powered: &'static str,
    pub intro: &'static str,
    pub closed_intro: &'static str,
    pub no_agents_intro: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub optional: &'static str,
    pub message: &'static str,
    pub start: &'static str,
    pub leave: &'static str,
    pub message_left_title: &'static str,
    pub message_left_body: &'static str,
    pub placeholder: &'static str,
    pub send: &'static str,
    pub end: &'static str,
    pub end_confirm: &'static str,
    pub download: &'static str,
    pub rate_title: &'static str,
    pub rate_comment: &'static str,
    pub rate_send: &'static str,
    pub rate_thanks: &'static str,
    /// "{n} of 5" for the star buttons.
    pub rate_of: &'static str,
    pub copy: &'static str,
    pub copied: &'static str,
    pub new_chat: &'static str,
    pub you: &'static str,
    pub sending: &'static str,
    pub reconnecting: &'static str,
    pub connecting: &'static str,
    /// Label of the scrollable message thread.
    pub thread: &'static str,
    pub online: &'static str,
    /// The header's line before a chat when the reply time has a line of its own.
    pub here: &'static str,
    /// The header's line on the leave-a-message form (nobody answers now).
    pub away: &'static str,
    pub name_required: &'static str,
    pub text_required: &'static str,
}

const EN: Texts = Texts {
    loading: "Loading…",
    minimize: "Minimise chat",
    powered: "Switchboard live chat",
    intro: "Hi! Tell us your name and your question, and the next free agent will answer here.",
    closed_intro: "We are closed right now. Leave a message and we will get back to you.",
    no_agents_intro: "Nobody is online right now. Leave a message and we will get back to you.",
    name: "Name",
    email: "Email",
    optional: "optional",
    message: "Your message",
    start: "Start chat",
    leave: "Leave message",
    message_left_title: "Thank you!",
    message_left_body: "Your message is with us. We will reply by email as soon as we can.",
    placeholder: "Write a message…",
    send: "Send",
    attach: "Attach an image or PDF",
    uploading: "Uploading",
    file_too_large: "This file is larger than 10 MB.",
    upload_failed: "The file could not be sent. Please try again.",
    open_file: "Open",
    end: "End chat",
    end_confirm: "End chat?",
    download: "Download transcript",
    rate_title: "How was this chat?",
    rate_comment: "Anything to add? (optional)",
    rate_send: "Send rating",
    rate_thanks: "Thank you for your rating!",
    rate_of: "of 5",
    copy: "Copy transcript",
    copied: "Copied",
    new_chat: "New chat",
    you: "You",
    sending: "sending…",
    reconnecting: "Connection lost — reconnecting…",
    connecting: "Connecting…",
    thread: "Messages",
    online: "We typically reply in a few minutes",
    here: "We're online",
    away: "Away right now",
    name_required: "Please enter your name.",
    text_required: "Please enter a message.",
};

const DE: Texts = Texts {
    loading: "Wird geladen…",
    minimize: "Chat minimieren",
    powered: "Switchboard Live-Chat",
    intro: "Hallo! Nennen Sie uns Ihren Namen und Ihre Frage – die nächste freie Person antwortet Ihnen hier.",
    closed_intro: "Wir haben gerade geschlossen. Hinterlassen Sie eine Nachricht, wir melden uns.",
    no_agents_intro: "Gerade ist niemand online. Hinterlassen Sie eine Nachricht, wir melden uns.",
    name: "Name",
    email: "E-Mail",
    optional: "optional",
    message: "Ihre Nachricht",
    start: "Chat starten",
    leave: "Nachricht hinterlassen",
    message_left_title: "Vielen Dank!",
    message_left_body: "Ihre Nachricht ist bei uns angekommen. Wir antworten so bald wie möglich per E-Mail.",
    placeholder: "Nachricht schreiben…",
    send: "Senden",
    attach: "Bild oder PDF anhängen",
    uploading: "Wird hochgeladen",
    file_too_large: "Diese Datei ist größer als 10 MB.",
    upload_failed: "Die Datei konnte nicht gesendet werden. Bitte versuchen Sie es erneut.",
    open_file: "Öffnen",
    end: "Chat beenden",
    end_confirm: "Chat beenden?",
    download: "Verlauf herunterladen",
    rate_title: "Wie war dieser Chat?",
    rate_comment: "Möchten Sie etwas ergänzen? (optional)",
    rate_send: "Bewertung senden",
    rate_thanks: "Vielen Dank für Ihre Bewertung!",
    rate_of: "von 5",
    copy: "Verlauf kopieren",
    copied: "Kopiert",
    new_chat: "Neuer Chat",
    you: "Sie",
    sending: "wird gesendet…",
    reconnecting: "Verbindung unterbrochen – wird wiederhergestellt…",
    connecting: "Verbindung wird aufgebaut…",
    thread: "Nachrichten",
    online: "Wir antworten meist innerhalb weniger Minuten",
    here: "Wir sind online",
    away: "Gerade nicht erreichbar",
    name_required: "Bitte geben Sie Ihren Namen ein.",
    text_required: "Bitte geben Sie eine Nachricht ein.",
};

/// The widget's texts in a language.
pub trait Words {
    fn t(self) -> &'static Texts;
    /// A system line of the transcript.
    fn note(self, n: &SystemNote) -> String;
    /// The status line.
    fn status(self, s: &VisitorStatus) -> String;
    /// "Typically replies within …".
    fn reply_time(self, mins: u32) -> String;
    fn typing(self, name: &str) -> String;
}

impl Words for Lang {
    fn t(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }

    /// A system line of the transcript.
    fn note(self, n: &SystemNote) -> String {
        let de = self == Lang::De;
        match n {
            SystemNote::Queued { queue_name } => {
                if de {
                    format!("Sie sind in der Warteschlange \u{2068}{queue_name}\u{2069}")
                } else {
                    format!("You are in the \u{2068}{queue_name}\u{2069} queue")
                }
            }
            SystemNote::Joined { agent_name } => {
                if de {
                    format!("\u{2068}{agent_name}\u{2069} ist dem Chat beigetreten")
                } else {
                    format!("\u{2068}{agent_name}\u{2069} joined the chat")
                }
            }
            SystemNote::Left { agent_name } => {
                if de {
                    format!("\u{2068}{agent_name}\u{2069} hat den Chat verlassen")
                } else {
                    format!("\u{2068}{agent_name}\u{2069} left the chat")
                }
            }
            SystemNote::Transferring => {
                if de {
                    "Sie werden weitergeleitet".into()
                } else {
                    "You are being transferred".into()
                }
            }
            SystemNote::Ended { by } => match (by, de) {
                (EndedBy::Customer, false) => "You ended the chat".into(),
                (EndedBy::Customer, true) => "Sie haben den Chat beendet".into(),
                (EndedBy::Inactivity, false) => {
                    "The chat ended after a period of inactivity".into()
                }
                (EndedBy::Inactivity, true) => "Der Chat wurde wegen Inaktivität beendet".into(),
                (EndedBy::Agent(_) | EndedBy::Staff, false) => "The agent ended the chat".into(),
                (EndedBy::Agent(_) | EndedBy::Staff, true) => "Der Chat wurde beendet".into(),
                (EndedBy::MaxWait, false) => {
                    "Sorry, no agent could take your chat in time. You can leave a message instead."
                        .into()
                }
                (EndedBy::MaxWait, true) => {
                    "Leider konnte Sie niemand rechtzeitig annehmen. Sie können uns eine Nachricht hinterlassen."
                        .into()
                }
            },
        }
    }

    /// The status line.
    fn status(self, s: &VisitorStatus) -> String {
        let de = self == Lang::De;
        match s {
            VisitorStatus::Queued { position } => {
                if de {
                    format!("Sie sind Nummer {position} in der Warteschlange")
                } else {
                    format!("You are number {position} in the queue")
                }
            }
            VisitorStatus::Connecting => {
                if de {
                    "Sie werden gleich verbunden…".into()
                } else {
                    "Connecting you to an agent…".into()
                }
            }
            VisitorStatus::Active {
                agent_name,
                guest_name: None,
            } => {
                if de {
                    format!("Sie chatten mit \u{2068}{agent_name}\u{2069}")
                } else {
                    format!("You are chatting with \u{2068}{agent_name}\u{2069}")
                }
            }
            VisitorStatus::Active {
                agent_name,
                guest_name: Some(g),
            } => {
                if de {
                    format!("Sie chatten mit \u{2068}{agent_name}\u{2069} und \u{2068}{g}\u{2069}")
                } else {
                    format!("You are chatting with \u{2068}{agent_name}\u{2069} and \u{2068}{g}\u{2069}")
                }
            }
            VisitorStatus::Ended => {
                if de {
                    "Chat beendet".into()
                } else {
                    "Chat ended".into()
                }
            }
        }
    }

    /// "Typically replies within …".
    fn reply_time(self, mins: u32) -> String {
        let (de, en) = match mins {
            0..=2 => (
                "in wenigen Minuten".to_string(),
                "in a few minutes".to_string(),
            ),
            3..=59 => (
                format!("innerhalb von {mins} Minuten"),
                format!("within {mins} minutes"),
            ),
            60..=119 => ("innerhalb einer Stunde".into(), "within an hour".into()),
            _ => (
                format!("innerhalb von {} Stunden", mins.div_ceil(60)),
                format!("within {} hours", mins.div_ceil(60)),
            ),
        };
        match self {
            Lang::De => format!("Antwortet meist {de}"),
            Lang::En => format!("Typically replies {en}"),
        }
    }

    fn typing(self, name: &str) -> String {
        match self {
            Lang::De => format!("\u{2068}{name}\u{2069} schreibt…"),
            Lang::En => format!("\u{2068}{name}\u{2069} is typing…"),
        }
    }
}
