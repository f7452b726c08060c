//! What a chat message may contain.
//!
//! Rules (SPEC §3.2, §6):
//! - Text is trimmed of leading and trailing whitespace, then must hold 1 to
//!   [`MAX_MESSAGE_CHARS`] Unicode scalar values.
//! - Control characters other than newline and tab are refused.
//! - A text of only invisible characters (zero-width spaces and joiners, format
//!   characters, variation selectors, blank fillers) counts as empty.
//! - U+FFFD, the mark a decoder leaves for invalid UTF-8, is refused: broken input is
//!   never stored as if it were text.
//! - An agent's text must not contain `<` or `>`: they are reserved for the
//!   parameters of message templates. A visitor's text may contain them (it is
//!   always shown as plain text).
//! - Names given by visitors follow the same rules with a limit of [`MAX_NAME_CHARS`].
//! - A visitor's email is optional; when given it contains `@` and is at most
//!   [`MAX_EMAIL_LEN`] bytes.

use serde::{Deserialize, Serialize};

/// Most Unicode scalar values a message may hold.
pub const MAX_MESSAGE_CHARS: usize = 1000;
/// Most Unicode scalar values a visitor's name may hold.
pub const MAX_NAME_CHARS: usize = 80;

/// Who is writing: the rules differ for agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// A website visitor.
    Visitor,
    /// A contact-centre agent.
    Agent,
}

/// Why a text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Nothing left after trimming.
    #[error("the message is empty")]
    Empty,
    /// Over the limit.
    #[error("the message has {chars} characters; at most {max} are allowed")]
    TooLong {
        /// Characters given.
        chars: usize,
        /// Limit.
        max: usize,
    },
    /// A control character other than newline or tab.
    #[error("the message contains the control character U+{0:04X}")]
    ControlChar(u32),
    /// `<` or `>` in an agent's message.
    #[error("the characters < and > are reserved for template parameters and cannot be sent")]
    Reserved,
    /// U+FFFD: the input was not valid UTF-8 where it was decoded.
    #[error("the text contains U+FFFD, the mark of invalid UTF-8; send valid UTF-8")]
    InvalidUtf8,
    /// A visitor's email that is not one.
    #[error("\"{0}\" is not an email address")]
    InvalidEmail(String),
}

impl TextError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TextError::Empty => "message_empty",
            TextError::TooLong { .. } => "message_too_long",
            TextError::ControlChar(_) => "message_control_char",
            TextError::Reserved => "message_reserved_chars",
            TextError::InvalidEmail(_) => "invalid_email",
            TextError::InvalidUtf8 => "invalid_utf8",
        }
    }
}

/// A message text that obeys the rules above.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageText(String);

impl MessageText {
    /// Validates `raw` as written by `writer`.
    pub fn new(raw: &str, writer: Writer) -> Result<Self, TextError> {
        validate(raw, writer, MAX_MESSAGE_CHARS).map(Self)
    }
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Validates a visitor's display name.
pub fn validate_name(raw: &str) -> Result<String, TextError> {
    validate(raw, Writer::Visitor, MAX_NAME_CHARS)
}

/// Longest email accepted.
pub const MAX_EMAIL_LEN: usize = 200;

/// Validates an optional visitor email: empty means none; otherwise it must contain `@`
/// and be at most [`MAX_EMAIL_LEN`] bytes.
pub fn validate_email(raw: Option<&str>) -> Result<Option<String>, TextError> {
    match raw {
        None | Some("") => Ok(None),
        Some(e) if e.contains('@') && e.len() <= MAX_EMAIL_LEN => Ok(Some(e.to_owned())),
        Some(e) => Err(TextError::InvalidEmail(e.to_owned())),
    }
}

/// Counts characters the way the limit counts them (Unicode scalar values, untrimmed),
/// for the live counters of the UIs.
pub fn char_count(raw: &str) -> usize {
    raw.chars().count()
}

/// True when `raw` contains a character reserved for agents' messages.
pub fn has_reserved(raw: &str) -> bool {
    raw.contains(['<', '>'])
}

/// Whether `c` shows nothing on its own (whitespace, format characters, fillers).
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}')
}

fn validate(raw: &str, writer: Writer, max: usize) -> Result<String, TextError> {
    let t = raw.trim();
    if t.chars().all(is_invisible) {
        return Err(TextError::Empty);
    }
    if t.contains('\u{FFFD}') {
        return Err(TextError::InvalidUtf8);
    }
    let chars = t.chars().count();
    if chars > max {
        return Err(TextError::TooLong { chars, max });
    }
    if let Some(c) = t
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return Err(TextError::ControlChar(c as u32));
    }
    if writer == Writer::Agent && has_reserved(t) {
        return Err(TextError::Reserved);
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, Writer, Result<&str, TextError>)] = &[
            ("  hi  ", Writer::Agent, Ok("hi")),
            ("", Writer::Visitor, Err(TextError::Empty)),
            (" \n\t ", Writer::Agent, Err(TextError::Empty)),
            ("a<b", Writer::Agent, Err(TextError::Reserved)),
            ("a>b", Writer::Agent, Err(TextError::Reserved)),
            ("a<b>", Writer::Visitor, Ok("a<b>")),
            ("a\u{7}b", Writer::Visitor, Err(TextError::ControlChar(7))),
            ("line\nnext\ttab", Writer::Agent, Ok("line\nnext\ttab")),
            (
                "\u{200B}\u{200D}\u{FEFF}",
                Writer::Visitor,
                Err(TextError::Empty),
            ),
            (" \u{2060}\u{3164} ", Writer::Agent, Err(TextError::Empty)),
            ("a\u{200D}b", Writer::Visitor, Ok("a\u{200D}b")),
            ("bad \u{FFFD}", Writer::Visitor, Err(TextError::InvalidUtf8)),
        ];
        for (raw, w, want) in cases {
            let got = MessageText::new(raw, *w).map(|m| m.as_str().to_owned());
            assert_eq!(got, want.clone().map(str::to_owned), "{raw:?}");
        }
    }

    #[test]
    fn limit_counts_scalar_values() {
        let ok = "ä".repeat(MAX_MESSAGE_CHARS);
        assert!(MessageText::new(&ok, Writer::Agent).is_ok());
        let long = "😀".repeat(MAX_MESSAGE_CHARS + 1);
        assert_eq!(
            MessageText::new(&long, Writer::Visitor),
            Err(TextError::TooLong {
                chars: 1001,
                max: 1000
            })
        );
    }

    #[test]
    fn emails() {
        assert_eq!(validate_email(None), Ok(None));
        assert_eq!(validate_email(Some("")), Ok(None));
        assert_eq!(validate_email(Some("e@x")), Ok(Some("e@x".into())));
        assert_eq!(
            validate_email(Some("nope")).unwrap_err().code(),
            "invalid_email"
        );
    }

    #[test]
    fn reserved_error_explains() {
        assert!(TextError::Reserved
            .to_string()
            .contains("reserved for template parameters"));
    }
}
