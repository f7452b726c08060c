//! Secrets, tokens and passwords.
//!
//! Rules:
//! - Every token is `base64url(json claims) . hex(HMAC-SHA256(key, payload))` with a
//!   key per purpose ([`Purpose`]), so a token of one kind is never accepted as
//!   another. A token with a bad signature, bad shape or past expiry is refused.
//! - Agent sessions ([`Session`]) name a session id the tenant can revoke; they expire
//!   after [`SESSION_SECS`]. The session token travels only in `Authorization`
//!   headers, never in a URL.
//! - Sockets open with a ticket ([`ChatTicket`], [`VisitorTicket`], [`ControlTicket`])
//!   that lives [`TICKET_SECS`] and is used once (its `nonce` is recorded by the
//!   object that accepts it). A ticket is obtained by a POST carrying the real
//!   credential in a header.
//! - Passwords are stored as PHC strings `$pbkdf2-sha256$i=ROUNDS,c=CHUNK$SALT$HASH`
//!   (base64 without padding, 16-byte salt), derived with Web Crypto in the stateless
//!   Worker at [`PBKDF2_ROUNDS`] iterations of HMAC-SHA256 in total. Cloudflare's
//!   runtime refuses more than [`PBKDF2_MAX_PER_CALL`] iterations in one `deriveBits`
//!   call (workerd#1346; local workerd does not), so the rounds run as a chain of calls
//!   of CHUNK iterations, each keyed by the previous output: the same work per guess,
//!   and no call over the limit (this code refuses one locally too). Without `c=` the
//!   rounds are one call. An older or weaker stored hash is replaced on sign-in. An
//!   unknown agent is checked against [`DUMMY_HASH`] so timing reveals nothing.
//! - Visitor tokens are 32 random bytes (256 bits); only their SHA-256 is stored.
//! - Identity verification: `user_hash` is `TIMESTAMP.hex(HMAC-SHA256(site secret,
//!   "USER_ID:TIMESTAMP"))`, valid for [`USER_HASH_SECS`] after TIMESTAMP.
//! - Comparisons of secrets take time independent of where they differ.

use base64::engine::general_purpose::{STANDARD_NO_PAD as B64STD, URL_SAFE_NO_PAD as B64};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::ids::{AgentId, ConversationId, TenantId};

/// How long a socket ticket may be used.
pub const TICKET_SECS: i64 = 30;
/// Agent session lifetime.
pub const SESSION_SECS: i64 = shared::agent::SESSION_SECS;
/// PBKDF2-HMAC-SHA256 rounds for new password hashes (OWASP 2023: 600,000).
pub const PBKDF2_ROUNDS: u32 = 600_000;
/// Most iterations one Web Crypto call may run on Cloudflare (production limit).
pub const PBKDF2_MAX_PER_CALL: u32 = 100_000;
/// How long a `user_hash` is valid after its timestamp.
pub const USER_HASH_SECS: i64 = 24 * 3600;
/// A valid hash of no password, checked when the agent is unknown.
pub const DUMMY_HASH: &str =
    "$pbkdf2-sha256$i=600000,c=100000$c3dpdGNoYm9hcmQtZHVtbXk$ZHVtbXktaGFzaC1kdW1teS1oYXNoLWR1bW15LWhhc2g";

/// What a signed token is for; each has a key of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Session,
    ChatTicket,
    VisitorTicket,
    ControlTicket,
}

impl Purpose {
    fn key(self, secret: &str) -> String {
        match self {
            Purpose::Session => secret.to_owned(),
            Purpose::ChatTicket => format!("{secret}|chat-ticket"),
            Purpose::VisitorTicket => format!("{secret}|visitor-ticket"),
            Purpose::ControlTicket => format!("{secret}|control-ticket"),
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Purpose::Session => "session token",
            Purpose::ChatTicket | Purpose::VisitorTicket | Purpose::ControlTicket => "ticket",
        }
    }
}

/// Claims that expire.
pub trait Expiring {
    /// Expiry, seconds since the epoch.
    fn exp(&self) -> i64;
}

/// Claims of an agent session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub tenant: TenantId,
    pub agent: AgentId,
    /// The session id the tenant stores and can revoke.
    pub sid: String,
    pub exp: i64,
}

/// Claims of a chat ticket: `agent` may open `conversation`'s socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatTicket {
    pub tenant: TenantId,
    pub agent: AgentId,
    /// The agent's display name (what the visitor sees).
    pub name: String,
    pub conversation: ConversationId,
    /// The conversation's access version when the tenant issued it.
    pub version: u32,
    pub can_write: bool,
    /// A supervisor reading along: admitted to any live chat, never writes, not in
    /// the access list (so access changes do not close it).
    #[serde(default)]
    pub observer: bool,
    pub nonce: String,
    /// Issued at, seconds since the epoch (a revocation refuses older tickets).
    pub iat: i64,
    pub exp: i64,
}

/// Claims of a visitor's socket ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitorTicket {
    pub conversation: ConversationId,
    pub nonce: String,
    pub exp: i64,
}

/// Claims of an agent's control-socket ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlTicket {
    pub tenant: TenantId,
    pub agent: AgentId,
    pub sid: String,
    pub nonce: String,
    pub exp: i64,
}

macro_rules! expiring {
    ($($t:ty),*) => { $(impl Expiring for $t { fn exp(&self) -> i64 { self.exp } })* };
}
expiring!(Session, ChatTicket, VisitorTicket, ControlTicket);

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the {0} is missing")]
    Missing(&'static str),
    #[error("the {0} is malformed")]
    Malformed(&'static str),
    #[error("the {0}'s signature is invalid")]
    BadSignature(&'static str),
    #[error("the {0} has expired")]
    Expired(&'static str),
}

/// Signs claims for `purpose`.
pub fn sign<T: Serialize>(secret: &str, purpose: Purpose, claims: &T) -> String {
    let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
    let sig = hmac_hex(purpose.key(secret).as_bytes(), payload.as_bytes());
    format!("{payload}.{sig}")
}

/// Verifies a token of `purpose` at `now`.
pub fn verify<T: DeserializeOwned + Expiring>(
    secret: &str,
    purpose: Purpose,
    token: &str,
    now: DateTime<Utc>,
) -> Result<T, TokenError> {
    let noun = purpose.noun();
    if token.is_empty() {
        return Err(TokenError::Missing(noun));
    }
    let (payload, sig) = token.split_once('.').ok_or(TokenError::Malformed(noun))?;
    if !same(
        &hmac_hex(purpose.key(secret).as_bytes(), payload.as_bytes()),
        sig,
    ) {
        return Err(TokenError::BadSignature(noun));
    }
    let raw = B64
        .decode(payload)
        .map_err(|_| TokenError::Malformed(noun))?;
    let t: T = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed(noun))?;
    if t.exp() <= now.timestamp() {
        return Err(TokenError::Expired(noun));
    }
    Ok(t)
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
    sha256_bytes_hex(s.as_bytes())
}

/// Hex SHA-256 of bytes.
pub fn sha256_bytes_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Hex HMAC-SHA256.
pub fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(msg);
    hex(&m.finalize().into_bytes())
}

/// Compares without early exit.
pub fn same(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------- passwords

/// A stored password hash, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHash {
    pub salt: Vec<u8>,
    /// Iterations in total.
    pub rounds: u32,
    /// Iterations per Web Crypto call (`rounds` when one call does them all).
    pub chunk: u32,
    pub hash: Vec<u8>,
}

/// The first stored form: JSON with a hex salt used as text and a hex hash.
#[derive(Deserialize)]
struct LegacyHash {
    salt: String,
    rounds: u32,
    hash: String,
}

impl StoredHash {
    /// Parses a PHC string, or the JSON form of schema 1.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(rest) = s.strip_prefix("$pbkdf2-sha256$i=") {
            let mut parts = rest.split('$');
            let params = parts.next()?;
            let (rounds, chunk) = match params.split_once(",c=") {
                Some((r, c)) => (r.parse().ok()?, c.parse().ok()?),
                None => {
                    let r: u32 = params.parse().ok()?;
                    (r, r)
                }
            };
            let salt = B64STD.decode(parts.next()?).ok()?;
            let hash = B64STD.decode(parts.next()?).ok()?;
            let whole = chunk > 0 && rounds >= chunk && rounds.is_multiple_of(chunk);
            if parts.next().is_some() || hash.is_empty() || !whole {
                return None;
            }
            return Some(Self {
                salt,
                rounds,
                chunk,
                hash,
            });
        }
        let l: LegacyHash = serde_json::from_str(s).ok()?;
        let hash = (0..l.hash.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(l.hash.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Self {
            salt: l.salt.into_bytes(),
            rounds: l.rounds,
            chunk: l.rounds,
            hash,
        })
    }

    /// The PHC string.
    pub fn phc(&self) -> String {
        let params = if self.chunk == self.rounds {
            self.rounds.to_string()
        } else {
            format!("{},c={}", self.rounds, self.chunk)
        };
        format!(
            "$pbkdf2-sha256$i={params}${}${}",
            B64STD.encode(&self.salt),
            B64STD.encode(&self.hash)
        )
    }

    /// Whether it should be replaced by a hash at today's strength.
    pub fn needs_rehash(&self) -> bool {
        self.rounds < PBKDF2_ROUNDS || self.salt.len() < 16 || self.chunk > PBKDF2_MAX_PER_CALL
    }

    /// Whether `password` matches.
    pub async fn check(&self, password: &str) -> Result<bool, String> {
        let got = derive(
            password,
            &self.salt,
            self.rounds,
            self.chunk,
            self.hash.len(),
        )
        .await?;
        Ok(same_bytes(&got, &self.hash))
    }
}

/// Hashes a password with a fresh salt at [`PBKDF2_ROUNDS`]; returns the PHC string.
pub async fn hash_password(password: &str) -> Result<String, String> {
    let salt = random_bytes::<16>()?.to_vec();
    let (rounds, chunk) = (PBKDF2_ROUNDS, PBKDF2_MAX_PER_CALL);
    let hash = derive(password, &salt, rounds, chunk, 32).await?;
    Ok(StoredHash {
        salt,
        rounds,
        chunk,
        hash,
    }
    .phc())
}

/// `rounds` iterations of PBKDF2-HMAC-SHA256 as a chain of calls of `chunk` each; a
/// call of more than [`PBKDF2_MAX_PER_CALL`] is refused, as Cloudflare refuses it.
async fn derive(
    password: &str,
    salt: &[u8],
    rounds: u32,
    chunk: u32,
    len: usize,
) -> Result<Vec<u8>, String> {
    if chunk == 0 || chunk > PBKDF2_MAX_PER_CALL || !rounds.is_multiple_of(chunk) {
        return Err(format!(
            "PBKDF2 with {rounds} rounds in calls of {chunk}: at most {PBKDF2_MAX_PER_CALL} per call"
        ));
    }
    let mut key = password.as_bytes().to_vec();
    for _ in 0..rounds / chunk {
        key = pbkdf2_sha256(&key, salt, chunk, len).await?;
    }
    Ok(key)
}

/// PBKDF2-HMAC-SHA256 with Web Crypto (`crypto.subtle`), off any object's thread.
#[cfg(target_arch = "wasm32")]
async fn pbkdf2_sha256(
    password: &[u8],
    salt: &[u8],
    rounds: u32,
    len: usize,
) -> Result<Vec<u8>, String> {
    use js_sys::{Array, Object, Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};
    let err = |e: JsValue| format!("web crypto: {e:?}");
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).map_err(err)?;
    let subtle: web_sys::SubtleCrypto = Reflect::get(&crypto, &"subtle".into())
        .map_err(err)?
        .unchecked_into();
    let alg = Object::new();
    Reflect::set(&alg, &"name".into(), &"PBKDF2".into()).map_err(err)?;
    let usages = Array::of1(&"deriveBits".into());
    let key = subtle
        .import_key_with_object(
            "raw",
            &Uint8Array::from(password).into(),
            &alg,
            false,
            &usages,
        )
        .map_err(err)?;
    let key: web_sys::CryptoKey = wasm_bindgen_futures::JsFuture::from(key)
        .await
        .map_err(err)?
        .unchecked_into();
    let params = Object::new();
    Reflect::set(&params, &"name".into(), &"PBKDF2".into()).map_err(err)?;
    Reflect::set(&params, &"hash".into(), &"SHA-256".into()).map_err(err)?;
    Reflect::set(&params, &"salt".into(), &Uint8Array::from(salt)).map_err(err)?;
    Reflect::set(&params, &"iterations".into(), &JsValue::from(rounds)).map_err(err)?;
    let bits = subtle
        .derive_bits_with_object(&params, &key, (len * 8) as u32)
        .map_err(err)?;
    let bits = wasm_bindgen_futures::JsFuture::from(bits)
        .await
        .map_err(err)?;
    Ok(Uint8Array::new(&bits).to_vec())
}

/// PBKDF2-HMAC-SHA256 in Rust (host builds: unit tests).
#[cfg(not(target_arch = "wasm32"))]
async fn pbkdf2_sha256(
    password: &[u8],
    salt: &[u8],
    rounds: u32,
    len: usize,
) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; len];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out);
    Ok(out)
}

// ---------------------------------------------------------------- identity

/// Why a `user_hash` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserHashError {
    #[error("user_hash must be TIMESTAMP.HEX (seconds since the epoch, then the HMAC)")]
    Malformed,
    #[error("user_hash has expired (older than 24 hours); compute a fresh one")]
    Expired,
    #[error("user_hash does not match user_id")]
    Mismatch,
}

/// Checks an identity-verification hash at `now`.
pub fn check_user_hash(
    site_secret: &str,
    user_id: &str,
    user_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), UserHashError> {
    let (ts, mac) = user_hash.split_once('.').ok_or(UserHashError::Malformed)?;
    let ts: i64 = ts.parse().map_err(|_| UserHashError::Malformed)?;
    let age = now.timestamp() - ts;
    if !(-300..=USER_HASH_SECS).contains(&age) {
        return Err(UserHashError::Expired);
    }
    if !same(
        &hmac_hex(site_secret.as_bytes(), format!("{user_id}:{ts}").as_bytes()),
        &mac.to_ascii_lowercase(),
    ) {
        return Err(UserHashError::Mismatch);
    }
    Ok(())
}

/// Computes an identity-verification hash (for docs and tests).
pub fn user_hash(site_secret: &str, user_id: &str, ts: i64) -> String {
    let mac = hmac_hex(site_secret.as_bytes(), format!("{user_id}:{ts}").as_bytes());
    format!("{ts}.{mac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn session() -> Session {
        Session {
            tenant: TenantId::new("demo").unwrap(),
            agent: AgentId::new("anna").unwrap(),
            sid: "s1".into(),
            exp: now().timestamp() + 60,
        }
    }

    #[test]
    fn session_roundtrip_and_refusals() {
        let s = session();
        let t = sign("k", Purpose::Session, &s);
        let v = |secret: &str, tok: &str, at| verify::<Session>(secret, Purpose::Session, tok, at);
        assert_eq!(v("k", &t, now()), Ok(s.clone()));
        assert!(matches!(
            v("other", &t, now()),
            Err(TokenError::BadSignature(_))
        ));
        assert!(matches!(
            v("k", &t, now() + chrono::Duration::seconds(60)),
            Err(TokenError::Expired(_))
        ));
        assert!(matches!(
            v("k", "abc", now()),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(v("k", "", now()), Err(TokenError::Missing(_))));
        assert!(matches!(
            v("k", &format!("{t}x"), now()),
            Err(TokenError::BadSignature(_))
        ));
    }

    #[test]
    fn tickets_are_not_sessions() {
        let s = session();
        let as_ticket = sign("k", Purpose::ControlTicket, &s);
        assert!(matches!(
            verify::<Session>("k", Purpose::Session, &as_ticket, now()),
            Err(TokenError::BadSignature(_))
        ));
        let vt = VisitorTicket {
            conversation: ConversationId::new("c1").unwrap(),
            nonce: "n".into(),
            exp: now().timestamp() + TICKET_SECS,
        };
        let signed = sign("k", Purpose::VisitorTicket, &vt);
        assert_eq!(
            verify::<VisitorTicket>("k", Purpose::VisitorTicket, &signed, now()),
            Ok(vt)
        );
        assert!(verify::<ChatTicket>("k", Purpose::ChatTicket, &signed, now()).is_err());
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn passwords_phc_and_legacy() {
        let phc = block_on(hash_password("correct horse")).unwrap();
        assert!(phc.starts_with("$pbkdf2-sha256$i=600000,c=100000$"));
        let h = StoredHash::parse(&phc).unwrap();
        assert_eq!(h.phc(), phc);
        assert!(!h.needs_rehash());
        assert!(block_on(h.check("correct horse")).unwrap());
        assert!(!block_on(h.check("correct horsE")).unwrap());
        // Schema 1 stored JSON with a hex salt used as text.
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"pw", b"00ff", 10, &mut out);
        let legacy = format!(r#"{{"salt":"00ff","rounds":10,"hash":"{}"}}"#, hex(&out));
        let l = StoredHash::parse(&legacy).unwrap();
        assert!(l.needs_rehash());
        assert!(block_on(l.check("pw")).unwrap());
        let dummy = StoredHash::parse(DUMMY_HASH).unwrap();
        assert_eq!(
            (dummy.rounds, dummy.chunk),
            (PBKDF2_ROUNDS, PBKDF2_MAX_PER_CALL)
        );
        assert!(!dummy.needs_rehash());
        // One call over the production limit is refused, as Cloudflare refuses it.
        let single =
            StoredHash::parse("$pbkdf2-sha256$i=600000$AAAAAAAAAAAAAAAAAAAAAA$AAAA").unwrap();
        assert!(single.needs_rehash());
        assert!(block_on(single.check("x")).is_err());
        // The chain is what it says: the same as chaining the standard function.
        let mut k = b"pw".to_vec();
        for _ in 0..3 {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(&k, b"salt", 1000, &mut out);
            k = out.to_vec();
        }
        let chained = StoredHash {
            salt: b"salt".to_vec(),
            rounds: 3000,
            chunk: 1000,
            hash: k,
        };
        assert_eq!(StoredHash::parse(&chained.phc()), Some(chained.clone()));
        assert!(block_on(chained.check("pw")).unwrap());
        assert!(StoredHash::parse("$pbkdf2-sha256$i=x$a$b").is_none());
    }

    #[test]
    fn user_hashes_carry_time() {
        let t = now().timestamp();
        let uh = user_hash("secret", "user-1", t);
        assert_eq!(check_user_hash("secret", "user-1", &uh, now()), Ok(()));
        assert_eq!(
            check_user_hash("secret", "user-2", &uh, now()),
            Err(UserHashError::Mismatch)
        );
        assert_eq!(
            check_user_hash(
                "secret",
                "user-1",
                &uh,
                now() + chrono::Duration::seconds(USER_HASH_SECS + 1)
            ),
            Err(UserHashError::Expired)
        );
        assert_eq!(
            check_user_hash("secret", "user-1", "abc", now()),
            Err(UserHashError::Malformed)
        );
    }
}
