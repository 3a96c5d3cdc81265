//! `POST /v1/payments/webhook`: charge-status notifications from the HTTP
//! payment provider (docs/payments.md).
//!
//! A notification is only a hint. Its signature (HMAC-SHA256 over the
//! timestamp and the body, with the webhook secret) and its timestamp (within
//! the tolerance window) are checked first; a bad one is a 401 and changes
//! nothing. Then the gateway asks the provider's API what happened to the
//! charge, and acts on that answer alone, exactly as the reconciler would:
//! a captured charge of a pending intent is confirmed into its booking (or
//! refunded when the hold is gone). Money never moves on the body's word.
//!
//! A charge the provider says was not taken is left to the reconciliation
//! loop, which fails the intent once it is older than `payment_grace_ms`:
//! until then the request that made the charge may still be answering it,
//! and a decline it answers keeps the hold, where a reconciled failure
//! releases it.
//!
//! Replays are harmless (everything done is idempotent) and also refused:
//! a timestamp outside the window is a 401, and a notification id already
//! handled within the window is acknowledged without acting again.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use raft::{Answer, Query};
use serde::Deserialize;
use statemachine::{HoldId, HoldStatus, Op};

use super::http::ApiError;
use super::ids::HOLD;
use super::payments::LookupOutcome;
use super::payments_http::verify_webhook;
use super::routes::ErrorBody;
use super::{saga, Gateway};

/// Largest notification body.
const BODY_BYTES_MAX: usize = 16 * 1024;
/// Notification ids remembered for replay detection at most.
const SEEN_IDS_MAX: usize = 10_000;
/// Longest notification id and idempotency key.
const ID_BYTES_MAX: usize = 200;

/// The webhook secret and the notifications seen recently.
pub struct PaymentWebhooks {
    secret: String,
    tolerance_secs: u64,
    /// Notification id → its timestamp.
    seen: Mutex<HashMap<String, u64>>,
}

impl PaymentWebhooks {
    /// Webhooks signed with `secret`, accepted within `tolerance_secs` of now.
    pub fn new(secret: String, tolerance_secs: u64) -> PaymentWebhooks {
        PaymentWebhooks { secret, tolerance_secs, seen: Mutex::new(HashMap::new()) }
    }

    fn seen(&self, id: &str) -> bool {
        self.seen.lock().expect("webhook ids lock poisoned").contains_key(id)
    }

    /// Remembers a handled id; ids older than the window are forgotten (a
    /// replay of one is refused by its timestamp), and when the table is
    /// full of young ids it is cleared rather than grown: a replay is
    /// harmless, only wasted work.
    fn remember(&self, id: &str, timestamp: u64, now: u64) {
        let mut seen = self.seen.lock().expect("webhook ids lock poisoned");
        if seen.len() >= SEEN_IDS_MAX {
            seen.retain(|_, ts| now.saturating_sub(*ts) <= self.tolerance_secs);
            if seen.len() >= SEEN_IDS_MAX {
                seen.clear();
            }
        }
        seen.insert(id.to_string(), timestamp);
    }
}

/// A notification. Unknown fields are allowed: the provider may add some.
#[derive(Deserialize)]
struct Notification {
    /// Unique per notification (the same on every retry of it).
    id: String,
    /// `charge.captured`, `charge.failed`, `charge.refunded`.
    #[serde(rename = "type")]
    kind: String,
    /// The charge's idempotency key: the payment intent id.
    idempotency_key: String,
}

pub(super) fn routes() -> Router<Gateway> {
    Router::new().route("/v1/payments/webhook", post(webhook))
}

/// Receives a charge-status notification from the payment provider.
#[utoipa::path(
    post,
    path = "/v1/payments/webhook",
    tag = "Payments",
    request_body(content = String, content_type = "application/json",
        description = "`{\"id\", \"type\": \"charge.captured\"|\"charge.failed\"|\"charge.refunded\", \"idempotency_key\"}`, \
                       signed in `x-payments-timestamp` and `x-payments-signature` (docs/payments.md)"),
    responses(
        (status = 204, description = "handled (or nothing to do, or a repeat)"),
        (status = 400, description = "invalid_request: the body is not a notification", body = ErrorBody),
        (status = 401, description = "invalid_signature: bad or missing signature, or a timestamp outside the window", body = ErrorBody),
        (status = 404, description = "this gateway has no HTTP payment provider", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 503, description = "the cluster or the provider could not be asked; retry", body = ErrorBody)
    )
)]
pub(crate) async fn webhook(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let Some(hooks) = gw.payment_webhooks() else {
        return Err(ApiError::not_found("not_found", "no such route"));
    };
    if body.len() > BODY_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("notifications are {BODY_BYTES_MAX} bytes at most"),
        ));
    }
    let now = gw.now_secs();
    let timestamp = verify_webhook(&hooks.secret, &headers, &body, now, hooks.tolerance_secs).map_err(|e| {
        metrics::counter!("gateway_payment_webhooks_total", "outcome" => "refused").increment(1);
        tracing::warn!("payment webhook refused: {e}");
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", e.to_string())
    })?;
    let n: Notification =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("not a payment notification: {e}")))?;
    if n.id.is_empty() || n.id.len() > ID_BYTES_MAX || n.idempotency_key.len() > ID_BYTES_MAX {
        return Err(ApiError::bad_request(format!("ids are 1 to {ID_BYTES_MAX} bytes")));
    }
    if hooks.seen(&n.id) {
        return Ok(StatusCode::NO_CONTENT);
    }
    if n.kind.starts_with("charge.") {
        settle(&gw, &n.idempotency_key).await?;
    }
    hooks.remember(&n.id, timestamp, now);
    metrics::counter!("gateway_payment_webhooks_total", "outcome" => "handled").increment(1);
    Ok(StatusCode::NO_CONTENT)
}

/// Asks the provider about the charge under `intent` and confirms it if it
/// was captured and its hold is still waiting for it. An error is worth a
/// retry by the provider (503).
async fn settle(gw: &Gateway, intent: &str) -> Result<(), ApiError> {
    // Intent ids are `<hold id>/<uuid>`: the hold names the group.
    let Some((group, hold)) = intent.split_once('/').and_then(|(h, _)| HOLD.parse(h)) else { return Ok(()) };
    if !gw.groups().contains(&group) {
        return Ok(());
    }
    let amount = match gw.payments().lookup(intent).await {
        LookupOutcome::Captured { amount, .. } => amount,
        LookupOutcome::Pending => {
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the provider has no answer yet")
                .retry_after(1))
        }
        // Not taken, or given back: nothing to confirm (see the module doc).
        LookupOutcome::NotCharged | LookupOutcome::Refunded { .. } => return Ok(()),
    };
    let view = match gw.read(group, Query::Hold(HoldId(hold))).await? {
        Answer::Hold(Some(view)) => view,
        // Forgotten: the reconciler, which lists the intent, settles it.
        Answer::Hold(None) => return Ok(()),
        _ => return Err(ApiError::internal("the shard answered a different query")),
    };
    if !matches!(view.status, HoldStatus::Active | HoldStatus::Expired) {
        // Booked already (by this intent or another), or released: the
        // reconciler confirms or refunds it with the intent's own record.
        return Ok(());
    }
    let op = Op::ConfirmHold { hold: HoldId(hold), user: view.user.clone(), intent: intent.to_string() };
    // The reconciler's request ids: whichever of the two comes first, the
    // other gets the same answer.
    let applied = gw.propose(group, saga::RECONCILER, &format!("reconcile:{intent}:confirm"), op).await?;
    let refund = format!("reconcile:{intent}:refund");
    let _ = saga::settle_confirm(gw, group, intent, amount, applied.result, &refund, saga::RECONCILER).await;
    metrics::counter!("gateway_reconciled_total", "outcome" => "webhook").increment(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_ids_stay_bounded() {
        let hooks = PaymentWebhooks::new("s".repeat(32), 300);
        for i in 0..(SEEN_IDS_MAX + 10) {
            hooks.remember(&format!("n{i}"), 1_000, 1_000);
        }
        assert!(hooks.seen.lock().unwrap().len() <= SEEN_IDS_MAX);
        assert!(hooks.seen(&format!("n{}", SEEN_IDS_MAX + 9)));
        // Old ids make room first.
        let hooks = PaymentWebhooks::new("s".repeat(32), 300);
        for i in 0..SEEN_IDS_MAX {
            hooks.remember(&format!("old{i}"), 1, 1);
        }
        hooks.remember("young", 5_000, 5_000);
        assert!(hooks.seen("young"));
        assert!(!hooks.seen("old0"));
    }
}
