//! What a visitor's start request must hold before a chat exists (SPEC §4, §6).
//!
//! Rules:
//! - The name obeys [`crate::text::validate_name`], the first message the visitor
//!   text rules, the email (optional) [`crate::text::validate_email`].
//! - Identity verification comes as a pair: `user_id` and `user_hash` both or neither.
//!   The edge then checks the hash with the site's secret; a claimed identity is never
//!   trusted without it.
//! - The error names the field and the problem; nothing is created on error.

use crate::protocol::StartRequest;
use crate::text::{MessageText, TextError, Writer};

/// A start request that passed intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intake {
    pub name: String,
    pub email: Option<String>,
    pub text: MessageText,
    pub identity: Identity,
}

/// Who the site says the visitor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    /// To be checked against the site's secret.
    Claimed {
        user_id: String,
        user_hash: String,
    },
}

/// Why a start request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error("name: {0}")]
    Name(TextError),
    #[error("email: {0}")]
    Email(TextError),
    #[error("text: {0}")]
    Text(TextError),
    #[error("user_id and user_hash go together: send both or neither")]
    IdentityPair,
}

impl IntakeError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IntakeError::Name(e) | IntakeError::Email(e) | IntakeError::Text(e) => e.code(),
            IntakeError::IdentityPair => "invalid_body",
        }
    }
}

/// Why a rating was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    #[error("a rating is 1 to 5; {0} is not")]
    Score(u8),
    #[error("comment: {0}")]
    Comment(TextError),
}

impl RatingError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            RatingError::Score(_) => "invalid_rating",
            RatingError::Comment(e) => e.code(),
        }
    }
}

/// Checks a rating: a score of 1 to 5 and an optional comment under the message rules
/// (an empty comment is none).
pub fn check_rating(score: u8, comment: Option<&str>) -> Result<(u8, Option<String>), RatingError> {
    if !(1..=5).contains(&score) {
        return Err(RatingError::Score(score));
    }
    let comment = match comment.map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            MessageText::new(c, Writer::Visitor)
                .map_err(RatingError::Comment)?
                .as_str()
                .to_owned(),
        ),
    };
    Ok((score, comment))
}

/// Checks a start request.
pub fn check_start(req: &StartRequest) -> Result<Intake, IntakeError> {
    let name = crate::text::validate_name(&req.name).map_err(IntakeError::Name)?;
    let email = crate::text::validate_email(req.email.as_deref()).map_err(IntakeError::Email)?;
    let text = MessageText::new(&req.text, Writer::Visitor).map_err(IntakeError::Text)?;
    let identity = match (&req.user_id, &req.user_hash) {
        (None, None) => Identity::Anonymous,
        (Some(user_id), Some(user_hash)) => Identity::Claimed {
            user_id: user_id.clone(),
            user_hash: user_hash.clone(),
        },
        _ => return Err(IntakeError::IdentityPair),
    };
    Ok(Intake {
        name,
        email,
        text,
        identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientMsgId, SiteKey};

    fn req() -> StartRequest {
        StartRequest {
            site: SiteKey::new("s").unwrap_or_else(|e| panic!("{e}")),
            name: "Vera".into(),
            email: None,
            text: "Hi".into(),
            client_id: ClientMsgId::new("c").unwrap_or_else(|e| panic!("{e}")),
            user_id: None,
            user_hash: None,
        }
    }

    #[test]
    fn ratings() {
        assert_eq!(check_rating(5, None), Ok((5, None)));
        assert_eq!(check_rating(1, Some("  ")), Ok((1, None)));
        assert_eq!(
            check_rating(4, Some(" fast ")),
            Ok((4, Some("fast".into())))
        );
        assert_eq!(check_rating(0, None).unwrap_err().code(), "invalid_rating");
        assert_eq!(check_rating(6, None).unwrap_err().code(), "invalid_rating");
        assert_eq!(
            check_rating(3, Some(&"x".repeat(1001))).unwrap_err().code(),
            "message_too_long"
        );
    }

    #[test]
    fn intake_names_the_field() {
        assert!(check_start(&req()).is_ok());
        let e = check_start(&StartRequest {
            name: " ".into(),
            ..req()
        })
        .err();
        assert!(e.is_some_and(|e| e.to_string().starts_with("name:")));
        let e = check_start(&StartRequest {
            text: String::new(),
            ..req()
        })
        .err();
        assert!(e.is_some_and(|e| e.to_string().starts_with("text:")));
        let e = check_start(&StartRequest {
            user_id: Some("u".into()),
            ..req()
        })
        .err();
        assert_eq!(e, Some(IntakeError::IdentityPair));
        let ok = check_start(&StartRequest {
            user_id: Some("u".into()),
            user_hash: Some("h".into()),
            ..req()
        });
        assert!(matches!(
            ok.map(|i| i.identity),
            Ok(Identity::Claimed { .. })
        ));
    }
}
