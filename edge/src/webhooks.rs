//! The webhook consumer: takes [`WebhookJob`]s from the `WEBHOOKS` queue and POSTs
//! them, signed, to the tenant's URLs (rules in [`shared::webhook`]).
//!
//! Rules:
//! - The tenant writes a job row in the transaction that closes the conversation and
//!   hands it to the queue afterwards (retried from its alarm), so a closed
//!   conversation always reaches the queue.
//! - The consumer reads the secret, the current URLs and the record at delivery time:
//!   a removed URL or an erased conversation is dropped, never sent. So is a
//!   `delivery.parked` job whose delivery was sent again and taken meanwhile.
//! - The tenant also writes a `delivery.parked` job when its outbox parks a row or a
//!   conversation reports one it parked, so an operator hears of it without polling.
//! - A failure (no 2xx in [`TIMEOUT_SECS`]) puts the job back on the queue with one
//!   more attempt, delayed by [`shared::webhook::retry_delay_secs`]
//!   (`WEBHOOK_RETRY_BASE_SECS`, default 30). After `WEBHOOK_MAX_ATTEMPTS` (default 8)
//!   the job goes to the tenant's dead-letter list, which the admin sees and can retry.
//! - Delivery is at least once; `X-Switchboard-Delivery` lets receivers drop repeats.

use crate::error::{ApiError, ApiResult};
use crate::{auth, call, env_u32, now, stub};
use shared::rpc::{HookDead, HookMaterial};
use shared::webhook::{self, ParkedPayload, WebhookEvent, WebhookJob, WebhookPayload};
use worker::{
    event, Context, Delay, Env, Fetch, Headers, MessageBatch, MessageBuilder, MessageExt, Method,
    Request, RequestInit,
};

/// Longest wait for a receiver's answer.
pub const TIMEOUT_SECS: u64 = 10;

/// Sends one job; `Err` says why it failed (kept on the job for the dead-letter list).
async fn deliver(env: &Env, job: &WebhookJob) -> Result<(), String> {
    let tenant = stub(env, "TENANTS", job.tenant.as_str()).map_err(|e| e.to_string())?;
    let m = call(
        &tenant,
        HookMaterial {
            conversation: job.conversation.clone(),
            parked: job.parked.clone(),
        },
    )
    .await
    .map_err(|e| format!("tenant: {e}"))?;
    let Some(secret) = m.secret else {
        worker::console_log!("webhook {}: no secret any more; dropped", job.id);
        return Ok(());
    };
    if !m.urls.contains(&job.url) {
        worker::console_log!("webhook {}: URL no longer configured; dropped", job.id);
        return Ok(());
    }
    let sent_at = now();
    let body = match (job.event, m.closed, m.parked) {
        (WebhookEvent::DeliveryParked, _, Some(parked)) => serde_json::to_string(&ParkedPayload {
            id: job.id.clone(),
            event: job.event,
            tenant: job.tenant.clone(),
            sent_at,
            conversation: job.conversation.clone(),
            parked,
        }),
        (WebhookEvent::DeliveryParked, _, None) => {
            worker::console_log!("webhook {}: delivered since it was parked; dropped", job.id);
            return Ok(());
        }
        (_, Some(closed), _) => serde_json::to_string(&WebhookPayload {
            id: job.id.clone(),
            event: job.event,
            tenant: job.tenant.clone(),
            sent_at,
            conversation: closed.conversation,
            transcript: closed.transcript,
        }),
        (_, None, _) => {
            worker::console_log!("webhook {}: conversation erased; dropped", job.id);
            return Ok(());
        }
    }
    .map_err(|e| e.to_string())?;
    let ts = sent_at.timestamp();
    let mac = auth::hmac_hex(
        secret.as_bytes(),
        webhook::signed_message(ts, &body).as_bytes(),
    );
    let send = async {
        let h = Headers::new();
        h.set("Content-Type", "application/json")?;
        h.set("User-Agent", "Switchboard-Webhooks/1")?;
        h.set("X-Switchboard-Event", job.event.as_str())?;
        h.set("X-Switchboard-Delivery", &job.id)?;
        h.set(
            "X-Switchboard-Signature",
            &webhook::signature_header(ts, &mac),
        )?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(h)
            .with_body(Some(body.clone().into()));
        let resp = Fetch::Request(Request::new_with_init(&job.url, &init)?)
            .send()
            .await?;
        Ok::<u16, worker::Error>(resp.status_code())
    };
    let timeout = Delay::from(std::time::Duration::from_secs(TIMEOUT_SECS));
    futures::pin_mut!(send);
    match futures::future::select(send, timeout).await {
        futures::future::Either::Left((Ok(status), _)) if (200..300).contains(&status) => Ok(()),
        futures::future::Either::Left((Ok(status), _)) => Err(format!("HTTP {status}")),
        futures::future::Either::Left((Err(e), _)) => Err(format!("request failed: {e}")),
        futures::future::Either::Right(_) => Err(format!("no answer within {TIMEOUT_SECS} s")),
    }
}

/// After a failed attempt: requeue with back-off, or dead-letter at the last one.
async fn after_failure(env: &Env, job: WebhookJob, error: String) -> ApiResult<()> {
    let max = env_u32(env, "WEBHOOK_MAX_ATTEMPTS", 8).max(1);
    let base = env_u32(env, "WEBHOOK_RETRY_BASE_SECS", 30);
    let job = WebhookJob {
        attempt: job.attempt + 1,
        last_error: Some(error),
        ..job
    };
    if job.attempt >= max {
        let tenant = stub(env, "TENANTS", job.tenant.as_str())?;
        call(&tenant, HookDead(job)).await?;
        return Ok(());
    }
    let delay = webhook::retry_delay_secs(job.attempt, base);
    env.queue(crate::WEBHOOK_QUEUE)?
        .send(MessageBuilder::new(job).delay_seconds(delay).build())
        .await
        .map_err(ApiError::from)
}

/// The queue consumer.
#[event(queue)]
pub async fn consume(
    batch: MessageBatch<WebhookJob>,
    env: Env,
    _ctx: Context,
) -> worker::Result<()> {
    for m in batch.messages()? {
        let job = m.body().clone();
        match deliver(&env, &job).await {
            Ok(()) => m.ack(),
            Err(reason) => {
                worker::console_log!(
                    "webhook {} to {} attempt {}: {reason}",
                    job.id,
                    job.url,
                    job.attempt + 1
                );
                match after_failure(&env, job, reason).await {
                    Ok(()) => m.ack(),
                    // The queue's own retry keeps the job.
                    Err(e) => {
                        worker::console_error!("webhook requeue: {e}");
                        m.retry();
                    }
                }
            }
        }
    }
    Ok(())
}
