//! Errors of the edge service and the one place that maps them to HTTP.
//!
//! Rules: every error has a stable snake_case `code` and a human message that
//! names the problem; over HTTP it is `{ "error": CODE, "message": TEXT }` with the
//! status chosen in [`ApiError::status`]; on a socket it is an `error` frame.
//! An internal error reaches clients as a generic message with a reference; its
//! detail is logged under that reference ([`ApiError::public`]).

use shared::engine::EngineError;
use shared::protocol::{ErrorBody, FrameError};
use shared::transcript::TranscriptError;

/// The start of every internal error's public message.
const INTERNAL: &str = "internal error";

/// An error the service reports to a client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// Seconds to wait before retrying (rate limits).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }
    pub fn forbidden(code: &str, message: impl Into<String>) -> Self {
        Self::new(403, code, message)
    }
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }
    pub fn rate_limited(retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                429,
                "rate_limited",
                format!("too many requests; retry in {retry_after} s"),
            )
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code.clone(),
            message: self.message.clone(),
        }
    }

    /// What a client may see: an internal error becomes a generic message with a
    /// reference, and its detail goes to the log under that reference.
    pub fn public(&self) -> ErrorBody {
        if self.status < 500 || self.code != "internal" || self.message.starts_with(INTERNAL) {
            return self.body();
        }
        let reference = crate::auth::random_id()
            .map(|id| id[..10].to_owned())
            .unwrap_or_default();
        worker::console_error!("internal error {reference}: {}", self.message);
        ErrorBody {
            error: self.code.clone(),
            message: format!(
                "{INTERNAL} (reference {reference}); the details are in the service log"
            ),
        }
    }

    /// The HTTP response.
    pub fn to_response(&self) -> worker::Result<worker::Response> {
        let mut r = worker::Response::from_json(&self.public())?.with_status(self.status);
        if let Some(s) = self.retry_after {
            r.headers_mut().set("Retry-After", &s.to_string())?;
        }
        Ok(r)
    }

    /// Rebuilds an error from another object's error response.
    pub fn from_body(status: u16, body: &str) -> Self {
        match serde_json::from_str::<ErrorBody>(body) {
            Ok(b) => Self::new(status, &b.error, b.message),
            Err(_) => Self::internal(format!("internal call failed with {status}: {body}")),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        use EngineError::*;
        let status = match &e {
            UnknownAgent(_)
            | UnknownConversation(_)
            | UnknownSite(_)
            | UnknownQueue(_)
            | UnknownTemplate(_) => 404,
            UnknownIdleReason(_) | UnknownWrapUpReason(_) | Template(_) | Text(_) | SelfTarget => {
                400
            }
            NotOwner(_) | NotParticipant(_) | NotSupervisor(_) => 403,
            QueueClosed(_) | NoAgentsSignedIn(_) | QueueFull { .. } | TenantFull(_) => 503,
            _ => 409,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<TranscriptError> for ApiError {
    fn from(e: TranscriptError) -> Self {
        let status = if matches!(
            e,
            TranscriptError::Ended | TranscriptError::ClientIdConflict(_)
        ) {
            409
        } else {
            400
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<shared::intake::IntakeError> for ApiError {
    fn from(e: shared::intake::IntakeError) -> Self {
        Self::bad_request(e.code(), e.to_string())
    }
}

impl From<FrameError> for ApiError {
    fn from(e: FrameError) -> Self {
        Self::bad_request("invalid_frame", e.to_string())
    }
}

impl From<shared::ids::IdError> for ApiError {
    fn from(e: shared::ids::IdError) -> Self {
        Self::bad_request("invalid_id", e.to_string())
    }
}

impl From<shared::text::TextError> for ApiError {
    fn from(e: shared::text::TextError) -> Self {
        Self::bad_request(e.code(), e.to_string())
    }
}

impl From<shared::config::ConfigError> for ApiError {
    fn from(e: shared::config::ConfigError) -> Self {
        Self::bad_request("invalid_config", e.to_string())
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        Self::internal(e.to_string())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        Self::internal(e.to_string())
    }
}

/// Result type of request handlers.
pub type ApiResult<T> = Result<T, ApiError>;
