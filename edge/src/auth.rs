//! Secrets, tokens and passwords.
//!
//! Rules:
//! - Agent sessions are `base64url(json claims) . hex(HMAC-SHA256(secret, payload))`,
//!   expiring after [`SESSION_SECS`]; a token with a bad signature, bad shape or past
//!   expiry is refused.
//! - Passwords are stored only as PBKDF2-HMAC-SHA256 with a random 16-byte salt.
//! - Visitor tokens are 32 random bytes (256 bits); only their SHA-256 is stored.
//! - Identity verification: `user_hash` must equal hex(HMAC-SHA256(site secret, user_id)).
//! - Chat tickets ([`Ticket`]) let an agent open one conversation's socket; they are
//!   signed like sessions but with a key of their own (a session is never a ticket),
//!   name tenant, agent, conversation and access version, and live [`TICKET_SECS`].
//! - Comparisons of secrets take time independent of where they differ.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::ids::{AgentId, ConversationId, TenantId};

/// How long a chat ticket may be used to open a socket.
pub const TICKET_SECS: i64 = 30;

/// Claims of a chat ticket: `agent` may open `conversation`'s socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub tenant: TenantId,
    pub agent: AgentId,
    /// The agent's display name (what the visitor sees).
    pub name: String,
    pub conversation: ConversationId,
    /// The conversation's access version when the tenant issued it.
    pub version: u32,
    pub can_write: bool,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

fn ticket_key(secret: &str) -> String {
    format!("{secret}|chat-ticket")
}

/// Signs a chat ticket.
pub fn sign_ticket(secret: &str, t: &Ticket) -> String {
    let payload = B64.encode(serde_json::to_vec(t).unwrap_or_default());
    let sig = hmac_hex(ticket_key(secret).as_bytes(), payload.as_bytes());
    format!("{payload}.{sig}")
}

/// Verifies a chat ticket at `now`.
pub fn verify_ticket(secret: &str, token: &str, now: DateTime<Utc>) -> Result<Ticket, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    let (payload, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
    if !same(
        &hmac_hex(ticket_key(secret).as_bytes(), payload.as_bytes()),
        sig,
    ) {
        return Err(TokenError::BadSignature);
    }
    let raw = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
    let t: Ticket = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
    if t.exp <= now.timestamp() {
        return Err(TokenError::Expired);
    }
    Ok(t)
}

/// Agent session lifetime.
pub const SESSION_SECS: i64 = shared::agent::SESSION_SECS;
/// PBKDF2 rounds.
pub const PBKDF2_ROUNDS: u32 = 50_000;

/// Claims of an agent session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub tenant: TenantId,
    pub agent: AgentId,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

/// Random bytes from the platform's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| e.to_string())?;
    Ok(b)
}

/// A random id of 26 characters (130 bits), lowercase base32-like.
pub fn random_id() -> Result<String, String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let b = random_bytes::<26>()?;
    Ok(b.iter()
        .map(|x| ALPHABET[(*x as usize) % 32] as char)
        .collect())
}

/// A new visitor token (256 bits).
pub fn new_visitor_token() -> Result<String, String> {
    Ok(B64.encode(random_bytes::<32>()?))
}

/// Hex SHA-256.
pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(msg);
    hex(&m.finalize().into_bytes())
}

/// Compares without early exit.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Signs a session.
pub fn sign_session(secret: &str, s: &Session) -> String {
    let payload = B64.encode(serde_json::to_vec(s).unwrap_or_default());
    let sig = hmac_hex(secret.as_bytes(), payload.as_bytes());
    format!("{payload}.{sig}")
}

/// Why a session token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the session token is missing")]
    Missing,
    #[error("the session token is malformed")]
    Malformed,
    #[error("the session token's signature is invalid")]
    BadSignature,
    #[error("the session token has expired; sign in again")]
    Expired,
}

/// Verifies a session at `now`.
pub fn verify_session(
    secret: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Session, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    let (payload, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
    if !same(&hmac_hex(secret.as_bytes(), payload.as_bytes()), sig) {
        return Err(TokenError::BadSignature);
    }
    let raw = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
    let s: Session = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
    if s.exp <= now.timestamp() {
        return Err(TokenError::Expired);
    }
    Ok(s)
}

/// A stored password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash {
    pub salt: String,
    pub rounds: u32,
    pub hash: String,
}

/// Hashes a password with a fresh salt.
pub fn hash_password(password: &str) -> Result<PasswordHash, String> {
    let salt = hex(&random_bytes::<16>()?);
    Ok(PasswordHash {
        hash: pbkdf2_hex(password, &salt, PBKDF2_ROUNDS),
        salt,
        rounds: PBKDF2_ROUNDS,
    })
}

fn pbkdf2_hex(password: &str, salt: &str, rounds: u32) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt.as_bytes(), rounds, &mut out);
    hex(&out)
}

/// Checks a password.
pub fn check_password(password: &str, h: &PasswordHash) -> bool {
    same(&pbkdf2_hex(password, &h.salt, h.rounds), &h.hash)
}

/// Checks an identity-verification hash.
pub fn check_user_hash(site_secret: &str, user_id: &str, user_hash: &str) -> bool {
    same(
        &hmac_hex(site_secret.as_bytes(), user_id.as_bytes()),
        &user_hash.to_ascii_lowercase(),
    )
}

/// Computes an identity-verification hash (for docs and tests).
pub fn user_hash(site_secret: &str, user_id: &str) -> String {
    hmac_hex(site_secret.as_bytes(), user_id.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn session_roundtrip_and_refusals() {
        let s = Session {
            tenant: TenantId::new("demo").unwrap(),
            agent: AgentId::new("anna").unwrap(),
            exp: now().timestamp() + 60,
        };
        let t = sign_session("k", &s);
        assert_eq!(verify_session("k", &t, now()), Ok(s.clone()));
        assert_eq!(
            verify_session("other", &t, now()),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify_session("k", &t, now() + chrono::Duration::seconds(60)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_session("k", "abc", now()),
            Err(TokenError::Malformed)
        );
        assert_eq!(verify_session("k", "", now()), Err(TokenError::Missing));
        let forged = format!("{}x", t);
        assert_eq!(
            verify_session("k", &forged, now()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tickets_are_not_sessions() {
        let t = Ticket {
            tenant: TenantId::new("demo").unwrap(),
            agent: AgentId::new("anna").unwrap(),
            name: "Anna".into(),
            conversation: ConversationId::new("c1").unwrap(),
            version: 2,
            can_write: true,
            exp: now().timestamp() + TICKET_SECS,
        };
        let signed = sign_ticket("k", &t);
        assert_eq!(verify_ticket("k", &signed, now()), Ok(t.clone()));
        assert_eq!(
            verify_session("k", &signed, now()),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify_ticket("k", &signed, now() + chrono::Duration::seconds(TICKET_SECS)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn passwords_and_user_hashes() {
        let h = PasswordHash {
            salt: "00".into(),
            rounds: 10,
            hash: pbkdf2_hex("pw", "00", 10),
        };
        assert!(check_password("pw", &h));
        assert!(!check_password("pW", &h));
        let uh = user_hash("secret", "user-1");
        assert!(check_user_hash("secret", "user-1", &uh));
        assert!(!check_user_hash("secret", "user-2", &uh));
    }
}
