//! Paying for a hold. The order makes money safe whatever fails in between:
//!
//! 1. `BeginPayment` records a payment intent in the log *before* the
//!    provider is called, so every charge that may exist can be found.
//! 2. The provider is charged with the intent id as its idempotency key, so
//!    a retried request never charges twice.
//! 3. `ConfirmHold` turns the hold into a booking. If the hold is gone, the
//!    state machine answers `NotBooked` and marks the intent `RefundDue`;
//!    the refund is paid here or by the reconciliation loop.
//!
//! A charge whose outcome is unknown (`tok_timeout`) leaves the intent
//! pending; [`reconcile_once`] later asks the provider and confirms the
//! booking, or fails the intent and releases the hold, or pays a refund.

use axum::http::StatusCode;
use raft::{Answer, Query};
use serde_json::{json, Value};
use statemachine::{HoldId, IntentState, IntentView, Op, Outcome, Rejection};

use super::http::{rejection, ApiError};
use super::ids::{BOOKING, HOLD};
use super::payments::{ChargeOutcome, ChargeRequest, LookupOutcome};
use super::{views, Gateway};

/// Intents read per page while reconciling.
const RECONCILE_PAGE_MAX: u32 = 100;
/// Intents reconciled per group per round; the next round goes on from
/// where this one stopped, so every intent is reached however many there are.
const RECONCILE_ROUND_INTENTS_MAX: usize = 10_000;
/// The command client of reconciliation.
pub(crate) const RECONCILER: &str = "gateway-reconciler";

/// Namespace of intent ids (name-based UUIDs of user and request key).
const INTENT_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6e1c_55a3_2f0b_4d1e_9a0c_5b7e_31d2_4c88);

/// Pays for `hold` and answers the booking route: 201 booked, 202 pending,
/// or the contract's error.
pub(crate) async fn pay(
    gw: &Gateway,
    user: &str,
    key: &str,
    group: u64,
    hold: HoldId,
    token: &str,
) -> Result<(StatusCode, Value), ApiError> {
    let hold_ext = HOLD.format(group, hold.0);
    let intent = format!("{hold_ext}/{}", uuid::Uuid::new_v5(&INTENT_NAMESPACE, format!("{user}\n{key}").as_bytes()));
    let begin = Op::BeginPayment { hold, user: user.to_string(), intent: intent.clone() };
    let (booking, amount, currency) = match gw.propose(group, user, &step_request("begin", key), begin).await?.result {
        Ok(Outcome::PaymentStarted { booking, amount, currency }) => (booking, amount, currency),
        Ok(_) => return Err(ApiError::internal("the shard answered a different command")),
        Err(r) => return Err(rejection(r, group)),
    };
    let charge = ChargeRequest { idempotency_key: intent.clone(), amount, currency, token: token.to_string() };
    match gw.payments().charge(&charge).await {
        ChargeOutcome::Captured { .. } => {
            let confirm = Op::ConfirmHold { hold, user: user.to_string(), intent: intent.clone() };
            let applied = gw.propose(group, user, &step_request("confirm", key), confirm).await?;
            settle_confirm(gw, group, &intent, amount, applied.result, &step_request("refund", key), user).await
        }
        ChargeOutcome::Declined { reason } => {
            let fail = Op::FailPayment { intent, reason: reason.clone(), release_hold: false };
            match gw.propose(group, user, &step_request("fail", key), fail).await?.result {
                Ok(_) => {}
                Err(r) => tracing::warn!("recording a declined charge failed: {r}"),
            }
            Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment_declined",
                format!("the card was declined: {reason}"),
            )
            .details(json!({"reason": reason})))
        }
        ChargeOutcome::Unknown => {
            metrics::counter!("gateway_payments_unknown_total").increment(1);
            Ok((
                StatusCode::ACCEPTED,
                json!({"booking_id": BOOKING.format(group, booking.0), "status": "pending", "hold_id": hold_ext}),
            ))
        }
    }
}

/// The request id of one step of the payment of the request `key`.
///
/// A fixed-size digest of the key under a prefix no route's own request id
/// has (those start with `key:`, `keyh:` or `auto:`, see `http::IdemKey`):
/// a user cannot pick a key that collides with another request's step, and
/// no key, however long, makes one step's id too long for the log while
/// another fits. Retrying with the same key gives the same ids, which is
/// what makes each step exactly-once.
fn step_request(step: &str, key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!("pay-{step}:{}", hex::encode(&digest[..16]))
}

/// After a captured charge: the booking, or the refund and the reason.
pub(crate) async fn settle_confirm(
    gw: &Gateway,
    group: u64,
    intent: &str,
    amount: u64,
    result: Result<Outcome, Rejection>,
    refund_request: &str,
    client: &str,
) -> Result<(StatusCode, Value), ApiError> {
    match result {
        Ok(Outcome::Booked(receipt)) => {
            metrics::counter!("gateway_bookings_total").increment(1);
            Ok((StatusCode::CREATED, views::booking_receipt(group, &receipt)))
        }
        Ok(Outcome::NotBooked { reason, refund_due }) => {
            // Refunded now, or by reconciliation, which finds the intent
            // still owing: the caller learns which.
            let refunded = refund(gw, group, intent, refund_due, client, refund_request).await;
            let status = if refunded { "refunded" } else { "pending" };
            Err(rejection(reason, group).details(json!({"refund_amount": refund_due, "refund_status": status})))
        }
        Ok(_) => Err(ApiError::internal("the shard answered a different command")),
        Err(r) => {
            // The charge went through but the log refused the confirm (a
            // charge captured after its intent was settled answers
            // `NotBooked` above, so this is not expected). The money goes
            // back, and the intent is settled in the log so that it does not
            // stay pending; if the refund fails, the intent stays pending and
            // reconciliation finds the capture and confirms or refunds it.
            tracing::warn!("the log refused the confirm of the captured {intent}: {r}; refunding");
            match gw.payments().refund(intent, amount).await {
                Ok(()) => settle_refunded(gw, group, intent, client).await,
                Err(e) => tracing::error!(
                    "refund of {intent} after a refused confirm failed: {e}; reconciliation must pick it up"
                ),
            }
            Err(rejection(r, group))
        }
    }
}

/// Pays a refund the log says is due and records it; whether the provider
/// paid it. A failure is left to the reconciliation loop, which finds the
/// intent still owing.
async fn refund(gw: &Gateway, group: u64, intent: &str, amount: u64, client: &str, request: &str) -> bool {
    if let Err(e) = gw.payments().refund(intent, amount).await {
        tracing::warn!("refund of {intent} failed, will retry: {e}");
        return false;
    }
    let op = Op::RecordRefund { intent: intent.to_string() };
    match gw.propose(group, client, request, op).await.map(|a| a.result) {
        Ok(Ok(_)) => metrics::counter!("gateway_refunds_total").increment(1),
        Ok(Err(r)) => tracing::warn!("recording the refund of {intent}: {r}"),
        Err(e) => tracing::warn!("recording the refund of {intent}: {}", e.message),
    }
    true
}

/// A pending intent whose money went back at the provider: settled in the
/// log as failed (the hold stays the user's, as after a decline), so it is
/// neither reconciled again nor kept for ever.
async fn settle_refunded(gw: &Gateway, group: u64, intent: &str, client: &str) {
    let op = Op::FailPayment { intent: intent.to_string(), reason: "refunded".into(), release_hold: false };
    match gw.propose(group, client, &format!("settle:{intent}:refunded"), op).await.map(|a| a.result) {
        Ok(Ok(_)) => {}
        Ok(Err(r)) => tracing::warn!("settling the refunded {intent}: {r}"),
        Err(e) => tracing::warn!("settling the refunded {intent}: {}", e.message),
    }
}

/// Where each group's reconciliation goes on from: the last intent id it
/// handled (none: from the start).
#[derive(Default)]
pub(crate) struct Cursors(std::sync::Mutex<std::collections::BTreeMap<u64, String>>);

impl Cursors {
    fn take(&self, group: u64) -> Option<String> {
        self.0.lock().expect("cursor lock poisoned").remove(&group)
    }

    fn set(&self, group: u64, after: String) {
        self.0.lock().expect("cursor lock poisoned").insert(group, after);
    }
}

/// One round of reconciliation over every group: up to
/// [`RECONCILE_ROUND_INTENTS_MAX`] intents each, in id order, going on from
/// where the last round stopped and starting over once the end is reached.
/// Intents the provider cannot decide yet are passed by, so no number of
/// them keeps the reconciler from the ones behind.
pub(crate) async fn reconcile_once(gw: &Gateway) {
    for group in gw.groups() {
        // A younger pending intent's charge may still be in flight.
        let before = gw.now_ms().saturating_sub(gw.payment_grace_ms());
        let mut after = gw.reconcile_cursors().take(group);
        let mut handled = 0;
        while handled < RECONCILE_ROUND_INTENTS_MAX {
            let query = Query::PaymentsNeedingAction {
                pending_before_ms: before,
                max: RECONCILE_PAGE_MAX,
                after: after.clone(),
            };
            let intents = match gw.read(group, query).await {
                Ok(Answer::Intents(list)) => list,
                Ok(_) => break,
                Err(e) => {
                    tracing::debug!("reconciliation of group {group} paused: {}", e.message);
                    break;
                }
            };
            for intent in &intents {
                reconcile_intent(gw, group, intent).await;
            }
            handled += intents.len();
            if intents.len() < RECONCILE_PAGE_MAX as usize {
                // The end: the next round starts over.
                after = None;
                break;
            }
            after = intents.last().map(|i| i.id.clone());
        }
        if let Some(after) = after {
            gw.reconcile_cursors().set(group, after);
        }
    }
}

async fn reconcile_intent(gw: &Gateway, group: u64, intent: &IntentView) {
    let id = &intent.id;
    match intent.state {
        IntentState::RefundDue => {
            let _ = refund(gw, group, id, intent.refund_amount, RECONCILER, &format!("reconcile:{id}:refund")).await;
        }
        IntentState::Pending => match gw.payments().lookup(id).await {
            LookupOutcome::Captured { .. } => {
                let op = Op::ConfirmHold { hold: intent.hold, user: intent.user.clone(), intent: id.clone() };
                match gw.propose(group, RECONCILER, &format!("reconcile:{id}:confirm"), op).await {
                    Ok(applied) => {
                        let refund_request = format!("reconcile:{id}:refund");
                        let _ =
                            settle_confirm(gw, group, id, intent.amount, applied.result, &refund_request, RECONCILER)
                                .await;
                        metrics::counter!("gateway_reconciled_total", "outcome" => "captured").increment(1);
                    }
                    Err(e) => tracing::debug!("reconciling {id}: {}", e.message),
                }
            }
            LookupOutcome::NotCharged => {
                let op = Op::FailPayment { intent: id.clone(), reason: "not_charged".into(), release_hold: true };
                match gw.propose(group, RECONCILER, &format!("reconcile:{id}:fail"), op).await {
                    Ok(_) => metrics::counter!("gateway_reconciled_total", "outcome" => "not_charged").increment(1),
                    Err(e) => tracing::debug!("reconciling {id}: {}", e.message),
                }
            }
            LookupOutcome::Pending => {}
            LookupOutcome::Refunded { .. } => {
                // A capture refunded outside the saga's refund step (a
                // refused confirm whose settling did not reach the log).
                tracing::info!("intent {id} is pending in the log but refunded at the provider: settling it");
                settle_refunded(gw, group, id, RECONCILER).await;
            }
        },
        _ => {}
    }
}
