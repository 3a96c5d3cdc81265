//! Notifications: every notifiable domain event of every group goes to the
//! log sink (target `ticketing::events`) and, when configured, to webhooks.
//!
//! Delivery is at least once and in log order per group: an entry's events
//! are posted to every webhook, each retried with exponential backoff until
//! it answers 2xx, before the group's cursor moves past the entry; the
//! cursor is kept in a file under the gateway's state directory, so a
//! restarted gateway goes on where it stopped. A receiver deduplicates by
//! `x-ticketing-delivery` (`<group>-<index>-<n>`). Each body is signed:
//! `x-ticketing-signature: sha256=<hex HMAC-SHA256 of the body>`.
//!
//! If the replica no longer holds the events after the cursor (its bounded
//! feed overflowed, or it was restored from a snapshot), the gap is logged
//! loudly and delivery goes on from the group's current index.

use std::path::PathBuf;
use std::time::Duration;

use hmac::{Hmac, Mac};
use raft::{Answer, EventWatch, Query};
use serde_json::{json, Value};
use sha2::Sha256;
use statemachine::DomainEvent;

use super::ids::{BOOKING, EVENT, HOLD, TICKET, WAITLIST};
use super::Gateway;

/// Where webhooks go and how they are signed.
#[derive(Clone, Debug)]
pub struct Webhooks {
    /// Receiver URLs.
    pub urls: Vec<String>,
    /// HMAC key.
    pub secret: String,
    /// Directory of the per-group cursors.
    pub state_dir: PathBuf,
}

/// Longest pause between retries of one delivery.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long one webhook call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The JSON of a notifiable event: its type and data, with external ids.
pub(crate) fn event_json(group: u64, e: &DomainEvent) -> Option<(&'static str, Value)> {
    Some(match e {
        DomainEvent::SeatsBooked { event, booking, user, seats } => (
            "booking.confirmed",
            json!({"booking_id": BOOKING.format(group, booking.0), "event_id": EVENT.format(group, event.0),
                   "user": user, "seat_ids": seats}),
        ),
        DomainEvent::BookingCancelled { event, booking, user, seats, refund_amount } => (
            "booking.cancelled",
            json!({"booking_id": BOOKING.format(group, booking.0), "event_id": EVENT.format(group, event.0),
                   "user": user, "seat_ids": seats, "refund_amount": refund_amount}),
        ),
        DomainEvent::SeatsExpired { event, hold, user, seats } => (
            "hold.expired",
            json!({"hold_id": HOLD.format(group, hold.0), "event_id": EVENT.format(group, event.0),
                   "user": user, "seat_ids": seats}),
        ),
        DomainEvent::WaitlistOffered { event, waitlist, user, hold } => (
            "waitlist.offered",
            json!({"waitlist_id": WAITLIST.format(group, waitlist.0), "event_id": EVENT.format(group, event.0),
                   "user": user, "hold_id": HOLD.format(group, hold.0)}),
        ),
        DomainEvent::TicketTransferred { event, ticket, from, to, version } => (
            "ticket.transferred",
            json!({"ticket_id": TICKET.format(group, ticket.0), "event_id": EVENT.format(group, event.0),
                   "from": from, "to": to, "version": version}),
        ),
        _ => return None,
    })
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn cursor_path(hooks: &Webhooks, group: u64) -> PathBuf {
    hooks.state_dir.join(format!("group-{group}.cursor"))
}

fn load_cursor(hooks: &Webhooks, group: u64) -> Option<u64> {
    std::fs::read_to_string(cursor_path(hooks, group)).ok()?.trim().parse().ok()
}

fn save_cursor(hooks: &Webhooks, group: u64, index: u64) -> std::io::Result<()> {
    let path = cursor_path(hooks, group);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, index.to_string())?;
    std::fs::rename(tmp, path)
}

/// Delivers one group's events until `stop` changes.
pub(crate) async fn run_group(
    gw: Gateway,
    hooks: Option<Webhooks>,
    group: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let http = reqwest::Client::builder().timeout(CALL_TIMEOUT).build().expect("an HTTP client");
    if let Some(h) = &hooks {
        if let Err(e) = std::fs::create_dir_all(&h.state_dir) {
            tracing::error!("webhook state directory {}: {e}", h.state_dir.display());
        }
    }
    // Without a stored cursor, start from the oldest event the replica
    // still holds; if that is not the start of the log, from now (a first
    // start has nothing it promised to deliver yet).
    let stored = hooks.as_ref().and_then(|h| load_cursor(h, group));
    let mut first_start = stored.is_none();
    let mut after = stored.unwrap_or(0);
    loop {
        let mut watch = tokio::select! {
            w = gw.cluster().watch_events(group, after) => match w {
                Ok(w) => w,
                Err(e) => {
                    tracing::debug!("watching the events of group {group}: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        loop {
            let next = tokio::select! {
                n = watch.next() => n,
                _ = stop.changed() => return,
            };
            match next {
                Some(EventWatch::Events(entries)) => {
                    first_start = false;
                    for (index, events) in entries {
                        if index <= after {
                            continue;
                        }
                        for (n, e) in events.iter().enumerate() {
                            let Some((kind, data)) = event_json(group, e) else { continue };
                            let id = format!("{group}-{index}-{n}");
                            tracing::info!(target: "ticketing::events", id = %id, kind, data = %data, "event");
                            if let Some(h) = &hooks {
                                let body = json!({"id": id, "type": kind, "index": index, "data": data}).to_string();
                                deliver(&http, h, &id, &body, &mut stop).await;
                            }
                        }
                        after = index;
                        if let Some(h) = &hooks {
                            if let Err(e) = save_cursor(h, group, after) {
                                tracing::error!("saving the webhook cursor of group {group}: {e}");
                            }
                        }
                    }
                }
                Some(EventWatch::Gap) => {
                    let now = current_index(&gw, group).await;
                    if first_start {
                        tracing::info!(group, from = now, "notifications start");
                    } else {
                        tracing::error!(group, from = after, to = now, "events lost to notification (feed gap)");
                        metrics::counter!("gateway_notification_gaps_total").increment(1);
                    }
                    first_start = false;
                    after = now;
                    break;
                }
                None => break,
            }
        }
    }
}

async fn current_index(gw: &Gateway, group: u64) -> u64 {
    loop {
        if let Ok(Answer::Fingerprint { applied_index, .. }) = gw.read(group, Query::Fingerprint).await {
            return applied_index;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Posts `body` to every webhook until each answers 2xx (or `stop`).
async fn deliver(
    http: &reqwest::Client,
    hooks: &Webhooks,
    id: &str,
    body: &str,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) {
    let sig = signature(&hooks.secret, body.as_bytes());
    for url in &hooks.urls {
        let mut pause = Duration::from_millis(100);
        loop {
            let sent = http
                .post(url)
                .header("content-type", "application/json")
                .header("x-ticketing-delivery", id)
                .header("x-ticketing-signature", &sig)
                .body(body.to_string())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    metrics::counter!("gateway_webhooks_delivered_total").increment(1);
                    break;
                }
                Ok(r) => tracing::warn!("webhook {url} answered {} for {id}; retrying in {pause:?}", r.status()),
                Err(e) => tracing::warn!("webhook {url} failed for {id}: {e}; retrying in {pause:?}"),
            }
            metrics::counter!("gateway_webhooks_retried_total").increment(1);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return,
            }
            pause = (pause * 2).min(BACKOFF_MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
