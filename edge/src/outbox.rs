//! The durable outbox: decisions one object owes another.
//!
//! Rules:
//! - A row is written by the same synchronous run of code that writes the decision
//!   it carries (Durable Objects commit every write made without an intervening
//!   `await` atomically), so a decision and its outbox row exist together or not at all.
//! - Rows are delivered at once, in order per target, and deleted only when the
//!   receiver answered. A failed row waits [`backoff_ms`] and is retried by the alarm;
//!   later rows of the same target wait behind it so a receiver sees them in order.
//! - A new row is due a few seconds after it was written, so that an object that
//!   dies between deciding and delivering delivers from its alarm after a restart.
//! - Receivers apply each row's key once (see [`Applied`]).
//! - Nothing is thrown away. A row the receiver refused for good (it answered 400, 404,
//!   410 or 422: malformed, or its conversation is gone) is moved to `outbox_parked`
//!   with the last error, in the same synchronous run, and logged; the rows behind it
//!   then go on. So is a row of the tenant object (whose admins see its parked rows)
//!   that still fails after [`MAX_ATTEMPTS`] (about a day of retries, well inside the
//!   week receivers remember applied keys). A conversation's row to its tenant is
//!   retried until the tenant takes it, however long that is: parked, it would only
//!   wait where no admin looks (its notice could not reach the tenant either).
//! - An admin sees the tenant object's parked rows and sends one again
//!   ([`Outbox::parked`], [`Outbox::unpark`]): it goes back into the outbox with its
//!   attempts reset and its key unchanged, so the receiver still applies it once.
//! - The variable `TEST_FAIL_DELIVERIES=N` (tests only) makes the first N deliveries
//!   of this object instance fail before they are sent; `TEST_REFUSE_DELIVERIES=N`
//!   makes them refused for good (422), which parks them;
//!   `TEST_OUTBOX_MAX_ATTEMPTS=N` stands in for [`MAX_ATTEMPTS`].

use crate::error::ApiResult;
use serde::Deserialize;
use std::cell::Cell;
use worker::SqlStorage;

/// When a freshly written row is retried if its immediate delivery never finished.
pub const FIRST_RETRY_MS: i64 = 3_000;

/// Wait before retry `attempts` (1, 2, …): 0.5 s doubling up to 60 s.
pub fn backoff_ms(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 8) - 1;
    (500_i64 << exp).min(60_000)
}

/// One undelivered row.
#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    pub key: String,
    pub target: String,
    pub body: String,
    pub attempts: i64,
}

/// One parked row.
#[derive(Debug, Clone, Deserialize)]
pub struct ParkedRow {
    pub key: String,
    pub target: String,
    pub body: String,
    pub attempts: i64,
    pub error: String,
    pub at: i64,
}

#[derive(Deserialize)]
struct TargetRow {
    target: String,
}

#[derive(Deserialize)]
struct NextRow {
    next_at: Option<f64>,
}

/// The outbox table of one object.
pub struct Outbox<'a> {
    pub sql: &'a SqlStorage,
}

impl Outbox<'_> {
    pub fn ensure(&self) -> ApiResult<()> {
        self.sql.exec(
            "CREATE TABLE IF NOT EXISTS outbox (key TEXT PRIMARY KEY, target TEXT NOT NULL, body TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL)",
            None,
        )?;
        self.sql.exec(
            "CREATE INDEX IF NOT EXISTS outbox_target ON outbox (target)",
            None,
        )?;
        self.sql.exec(
            "CREATE TABLE IF NOT EXISTS outbox_parked (key TEXT PRIMARY KEY, target TEXT NOT NULL, body TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT NOT NULL, at INTEGER NOT NULL)",
            None,
        )?;
        Ok(())
    }

    /// Moves a row that cannot be delivered to `outbox_parked`, with why.
    pub fn park(&self, row: &Row, error: &str, now_ms: i64) -> ApiResult<()> {
        self.sql.exec(
            "INSERT OR REPLACE INTO outbox_parked (key, target, body, attempts, error, at) VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                row.key.as_str().into(),
                row.target.as_str().into(),
                row.body.as_str().into(),
                (row.attempts + 1).into(),
                error.into(),
                now_ms.into(),
            ],
        )?;
        self.delivered(&row.key)
    }

    /// Parked rows, newest first (at most `limit`).
    pub fn parked(&self, limit: u32) -> ApiResult<Vec<ParkedRow>> {
        Ok(self
            .sql
            .exec(
                "SELECT key, target, body, attempts, error, at FROM outbox_parked ORDER BY at DESC, key LIMIT ?",
                vec![i64::from(limit).into()],
            )?
            .to_array()?)
    }

    /// The parked row `key`, if there is one.
    pub fn parked_one(&self, key: &str) -> ApiResult<Option<ParkedRow>> {
        let rows: Vec<ParkedRow> = self
            .sql
            .exec(
                "SELECT key, target, body, attempts, error, at FROM outbox_parked WHERE key = ?",
                vec![key.into()],
            )?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    /// Moves the parked row `key` back into the outbox, due now with its attempts
    /// reset (one synchronous run). Its target, or `None` if no such row is parked.
    pub fn unpark(&self, key: &str, now_ms: i64) -> ApiResult<Option<String>> {
        let Some(row) = self.parked_one(key)? else {
            return Ok(None);
        };
        self.sql.exec(
            "INSERT OR REPLACE INTO outbox (key, target, body, attempts, next_at) VALUES (?, ?, ?, 0, ?)",
            vec![
                row.key.as_str().into(),
                row.target.as_str().into(),
                row.body.as_str().into(),
                now_ms.into(),
            ],
        )?;
        self.sql
            .exec("DELETE FROM outbox_parked WHERE key = ?", vec![key.into()])?;
        Ok(Some(row.target))
    }

    /// Adds a row (call it in the same synchronous run as the decision).
    pub fn push(&self, key: &str, target: &str, body: &str, now_ms: i64) -> ApiResult<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO outbox (key, target, body, attempts, next_at) VALUES (?, ?, ?, 0, ?)",
            vec![
                key.into(),
                target.into(),
                body.into(),
                (now_ms + FIRST_RETRY_MS).into(),
            ],
        )?;
        Ok(())
    }

    /// Undelivered rows for `target`, oldest first.
    pub fn pending(&self, target: &str) -> ApiResult<Vec<Row>> {
        Ok(self
            .sql
            .exec(
                "SELECT key, target, body, attempts FROM outbox WHERE target = ? ORDER BY rowid",
                vec![target.into()],
            )?
            .to_array()?)
    }

    /// The receiver answered.
    pub fn delivered(&self, key: &str) -> ApiResult<()> {
        self.sql
            .exec("DELETE FROM outbox WHERE key = ?", vec![key.into()])?;
        Ok(())
    }

    /// The delivery failed: back off.
    pub fn failed(&self, row: &Row, now_ms: i64) -> ApiResult<()> {
        let attempts = row.attempts + 1;
        self.sql.exec(
            "UPDATE outbox SET attempts = ?, next_at = ? WHERE key = ?",
            vec![
                attempts.into(),
                (now_ms + backoff_ms(attempts)).into(),
                row.key.as_str().into(),
            ],
        )?;
        Ok(())
    }

    /// Targets with a row due at `now_ms`.
    pub fn due_targets(&self, now_ms: i64) -> ApiResult<Vec<String>> {
        let rows: Vec<TargetRow> = self
            .sql
            .exec(
                "SELECT DISTINCT target FROM outbox WHERE next_at <= ?",
                vec![now_ms.into()],
            )?
            .to_array()?;
        Ok(rows.into_iter().map(|r| r.target).collect())
    }

    /// When the next row is due, in ms since the epoch.
    pub fn next_due(&self) -> ApiResult<Option<i64>> {
        let rows: Vec<NextRow> = self
            .sql
            .exec("SELECT min(next_at) AS next_at FROM outbox", None)?
            .to_array()?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.next_at)
            .map(|v| v as i64))
    }
}

/// A row is parked after this many failed attempts: the back-off reaches its 60 s
/// ceiling after 8, so this is about a day of retries.
pub const MAX_ATTEMPTS: i64 = 1_450;

/// Whether the receiver's answer means retrying cannot help.
fn refused_for_good(e: &crate::error::ApiError) -> bool {
    matches!(e.status, 400 | 404 | 410 | 422)
}

/// How long a failing row is retried (see the module rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// [`MAX_ATTEMPTS`] times (about a day), then parked where an admin sees it.
    ForADay,
    /// Until the receiver takes it.
    UntilTaken,
}

/// Why a drain stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every row of the target was delivered.
    All,
    /// A row failed and waits for its back-off (the caller re-arms its alarm).
    Backoff,
}

impl Outbox<'_> {
    /// Delivers `target`'s rows in order with `send` (given each row's body), deleting
    /// each one its receiver answered. Stops at the first failure: that row waits for
    /// [`backoff_ms`] and the rows behind it wait with it, so a receiver sees them in
    /// order. A row refused for good, or (with [`Retry::ForADay`]) failing
    /// [`MAX_ATTEMPTS`] times, is parked (see the module rules), and `on_park` runs in
    /// the same synchronous run (a conversation writes its report of the parked row
    /// there). Returns the last `Some` answer `send` gave (e.g. a thread for an offer).
    pub async fn drain<R, F, Fut>(
        &self,
        target: &str,
        retry: Retry,
        faults: &Faults,
        mut send: F,
        on_park: impl Fn(&Row, &str) -> ApiResult<()>,
    ) -> ApiResult<(Drained, Option<R>)>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = ApiResult<Option<R>>>,
    {
        let mut answer = None;
        loop {
            let rows = self.pending(target)?;
            if rows.is_empty() {
                return Ok((Drained::All, answer));
            }
            for row in rows {
                let sent = if faults.refuse_now() {
                    Err(crate::error::ApiError::new(
                        422,
                        "refused",
                        "delivery refused (TEST_REFUSE_DELIVERIES)",
                    ))
                } else if faults.fail_now() {
                    Err(crate::error::ApiError::internal(
                        "delivery failed (TEST_FAIL_DELIVERIES)",
                    ))
                } else {
                    send(row.body.clone()).await
                };
                match sent {
                    Ok(a) => {
                        if a.is_some() {
                            answer = a;
                        }
                        self.delivered(&row.key)?;
                    }
                    Err(e)
                        if refused_for_good(&e)
                            || (retry == Retry::ForADay
                                && row.attempts + 1 >= faults.max_attempts) =>
                    {
                        worker::console_error!(
                            "outbox to {target}: parking {} after {} attempts: {e}",
                            row.key,
                            row.attempts + 1
                        );
                        self.park(&row, &e.to_string(), crate::now().timestamp_millis())?;
                        on_park(&row, &e.to_string())?;
                    }
                    Err(e) => {
                        worker::console_log!("outbox to {target}: {e}; retrying later");
                        self.failed(&row, crate::now().timestamp_millis())?;
                        return Ok((Drained::Backoff, answer));
                    }
                }
            }
        }
    }
}

/// Keys a receiver has applied.
pub struct Applied<'a> {
    pub sql: &'a SqlStorage,
}

#[derive(Deserialize)]
struct CountRow {
    n: f64,
}

impl Applied<'_> {
    pub fn ensure(&self) -> ApiResult<()> {
        self.sql.exec(
            "CREATE TABLE IF NOT EXISTS applied (key TEXT PRIMARY KEY, at INTEGER NOT NULL)",
            None,
        )?;
        Ok(())
    }
    /// Whether `key` was applied before.
    pub fn seen(&self, key: &str) -> ApiResult<bool> {
        let rows: Vec<CountRow> = self
            .sql
            .exec(
                "SELECT count(*) AS n FROM applied WHERE key = ?",
                vec![key.into()],
            )?
            .to_array()?;
        Ok(rows.first().is_some_and(|r| r.n > 0.0))
    }
    /// Records `key` (in the same synchronous run as applying it).
    pub fn record(&self, key: &str, now_ms: i64) -> ApiResult<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO applied (key, at) VALUES (?, ?)",
            vec![key.into(), now_ms.into()],
        )?;
        Ok(())
    }
    /// Forgets keys older than `before_ms` (senders give up long before).
    pub fn prune(&self, before_ms: i64) -> ApiResult<()> {
        self.sql
            .exec("DELETE FROM applied WHERE at < ?", vec![before_ms.into()])?;
        Ok(())
    }
}

/// Test-only fault injection: the first N deliveries fail, or are refused for good.
pub struct Faults {
    left: Cell<u32>,
    refuse: Cell<u32>,
    /// Failed attempts after which a row that may give up is parked.
    max_attempts: i64,
}

impl Faults {
    pub fn from_env(env: &worker::Env) -> Self {
        let max = crate::env_u32(env, "TEST_OUTBOX_MAX_ATTEMPTS", MAX_ATTEMPTS as u32);
        Self {
            left: Cell::new(crate::env_u32(env, "TEST_FAIL_DELIVERIES", 0)),
            refuse: Cell::new(crate::env_u32(env, "TEST_REFUSE_DELIVERIES", 0)),
            max_attempts: i64::from(max.max(1)),
        }
    }
    /// Whether this delivery is to be refused for good (counts down).
    pub fn refuse_now(&self) -> bool {
        let n = self.refuse.get();
        if n > 0 {
            self.refuse.set(n - 1);
            true
        } else {
            false
        }
    }
    /// Whether this delivery is to fail (counts down).
    pub fn fail_now(&self) -> bool {
        let n = self.left.get();
        if n > 0 {
            self.left.set(n - 1);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(1), 500);
        assert_eq!(backoff_ms(2), 1_000);
        assert_eq!(backoff_ms(4), 4_000);
        assert_eq!(backoff_ms(30), 60_000);
    }
}
