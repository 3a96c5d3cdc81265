//! `ticketd payments-sandbox`: a payment provider process that speaks the
//! provider side of docs/payments.md with the contract's test tokens, for
//! tests and local set-ups of `provider = "http"`. No money moves: charges
//! live in this process's memory (bounded), keyed by idempotency key.
//!
//! Tokens: `tok_visa` is captured; `tok_declined` and
//! `tok_insufficient_funds` are declined; `tok_timeout` (and
//! `tok_slow_visa`) is captured only after `slow_ms`, longer than a
//! gateway's call timeout, so the gateway sees no answer in time; anything
//! else is declined as `invalid_token`. Every final change of a charge
//! (captured, failed, refunded) is notified to the webhook URL, signed and
//! retried until it is accepted (a bounded number of times).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::gateway::payments_http::{unix_secs, verify_request, webhook_signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// Largest request body.
const BODY_BYTES_MAX: usize = 16 * 1024;
/// Longest idempotency key.
const KEY_BYTES_MAX: usize = 200;
/// How far a request's timestamp may be from this process's clock.
const TOLERANCE_SECS: u64 = 300;
/// Deliveries of one webhook at most.
const WEBHOOK_ATTEMPTS_MAX: u32 = 10;
/// How long one webhook delivery may take.
const WEBHOOK_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How the provider process runs.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// The key requests must be signed with.
    pub api_key: String,
    /// Where notifications go (none: no notifications).
    pub webhook_url: Option<String>,
    /// The key notifications are signed with.
    pub webhook_secret: String,
    /// How long a `tok_timeout` charge takes to be captured.
    pub slow_ms: u64,
    /// Charges (tombstones of looked-up unknown keys included) kept at most.
    pub charges_max: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    /// Still being decided (a slow token).
    Processing,
    Captured,
    Declined(String),
    /// Looked up before any charge arrived: a later charge under the key
    /// is refused, so "not charged" stays true once it was said.
    NotCharged,
}

#[derive(Clone, Debug)]
struct Charge {
    charge_id: String,
    amount: u64,
    currency: String,
    token: String,
    status: Status,
    refunded: u64,
}

struct Provider {
    opts: SandboxOptions,
    charges: Mutex<BTreeMap<String, Charge>>,
    seq: AtomicU64,
    http: reqwest::Client,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChargeReq {
    idempotency_key: String,
    amount: u64,
    currency: String,
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundReq {
    amount: u64,
}

fn error(status: StatusCode, code: &str, extra: Value) -> Response {
    let mut body = json!({"error": code});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    (status, Json(body)).into_response()
}

/// The answer describing a charge, as both the charge call and a lookup give it.
fn describe(c: &Charge) -> (StatusCode, Value) {
    match &c.status {
        Status::Processing => (StatusCode::ACCEPTED, json!({"status": "pending"})),
        Status::Captured if c.refunded > 0 => (
            StatusCode::OK,
            json!({"status": "refunded", "charge_id": c.charge_id, "amount": c.amount, "refunded_amount": c.refunded}),
        ),
        Status::Captured => {
            (StatusCode::CREATED, json!({"status": "captured", "charge_id": c.charge_id, "amount": c.amount}))
        }
        Status::Declined(reason) => (StatusCode::PAYMENT_REQUIRED, json!({"status": "declined", "reason": reason})),
        Status::NotCharged => (StatusCode::NOT_FOUND, json!({"status": "not_charged"})),
    }
}

impl Provider {
    /// The 401 of a request that is not signed with the API key, if it is not.
    fn refusal(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
        let checked =
            verify_request(&self.opts.api_key, headers, method.as_str(), uri.path(), body, unix_secs(), TOLERANCE_SECS);
        checked.err().map(|e| error(StatusCode::UNAUTHORIZED, "invalid_signature", json!({"message": e.to_string()})))
    }

    /// Sends a notification in the background, retried with backoff.
    fn notify(self: &Arc<Self>, kind: &'static str, key: &str) {
        let Some(url) = self.opts.webhook_url.clone() else { return };
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::to_vec(&json!({"id": format!("whk_{n}"), "type": kind, "idempotency_key": key,
                                              "created": unix_secs()}))
        .expect("JSON serializes");
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(100);
            for attempt in 1..=WEBHOOK_ATTEMPTS_MAX {
                let ts = unix_secs();
                let sig = webhook_signature(&me.opts.webhook_secret, ts, &body);
                let sent = me
                    .http
                    .post(&url)
                    .header(TIMESTAMP_HEADER, ts.to_string())
                    .header(SIGNATURE_HEADER, sig)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) if r.status().is_client_error() && r.status() != StatusCode::TOO_MANY_REQUESTS => {
                        tracing::warn!("webhook whk_{n} ({kind}) refused: {}", r.status());
                        return;
                    }
                    Ok(r) => tracing::debug!("webhook attempt {attempt}: {}", r.status()),
                    Err(e) => tracing::debug!("webhook attempt {attempt}: {e}"),
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            tracing::warn!("webhook whk_{n} ({kind}) given up after {WEBHOOK_ATTEMPTS_MAX} attempts");
        });
    }
}

async fn charge(State(p): State<Arc<Provider>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = p.refusal(&method, &uri, &headers, &body) {
        return r;
    }
    let req: ChargeReq = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request", json!({"message": e.to_string()})),
    };
    if req.idempotency_key.is_empty() || req.idempotency_key.len() > KEY_BYTES_MAX {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            json!({"message": "idempotency_key: 1 to 200 bytes"}),
        );
    }
    let key = req.idempotency_key.clone();
    let slow = {
        let mut charges = p.charges.lock().expect("charges lock poisoned");
        if let Some(c) = charges.get(&key) {
            if c.status == Status::NotCharged {
                // Declared uncharged to a lookup: it must stay so.
                return (StatusCode::PAYMENT_REQUIRED, Json(json!({"status": "declined", "reason": "key_expired"})))
                    .into_response();
            }
            if (c.amount, &c.currency, &c.token) != (req.amount, &req.currency, &req.token) {
                return error(StatusCode::CONFLICT, "idempotency_mismatch", json!({}));
            }
            let (status, body) = describe(c);
            return (status, Json(body)).into_response();
        }
        if charges.len() >= p.opts.charges_max {
            return (StatusCode::PAYMENT_REQUIRED, Json(json!({"status": "declined", "reason": "provider_full"})))
                .into_response();
        }
        let n = p.seq.fetch_add(1, Ordering::Relaxed);
        let (status, slow) = match req.token.as_str() {
            "tok_visa" => (Status::Captured, false),
            "tok_timeout" | "tok_slow_visa" => (Status::Processing, true),
            "tok_declined" => (Status::Declined("card_declined".into()), false),
            "tok_insufficient_funds" => (Status::Declined("insufficient_funds".into()), false),
            _ => (Status::Declined("invalid_token".into()), false),
        };
        let c = Charge {
            charge_id: format!("ch_{n}"),
            amount: req.amount,
            currency: req.currency,
            token: req.token,
            status,
            refunded: 0,
        };
        charges.insert(key.clone(), c);
        slow
    };
    if slow {
        // Decided in a task of its own: a caller that gave up and hung up
        // (which drops this handler) does not stop the charge.
        let (p2, key2) = (Arc::clone(&p), key.clone());
        let decided = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(p2.opts.slow_ms)).await;
            if let Some(c) = p2.charges.lock().expect("charges lock poisoned").get_mut(&key2) {
                c.status = Status::Captured;
            }
            p2.notify("charge.captured", &key2);
        });
        let _ = decided.await;
    } else {
        let captured =
            p.charges.lock().expect("charges lock poisoned").get(&key).is_some_and(|c| c.status == Status::Captured);
        p.notify(if captured { "charge.captured" } else { "charge.failed" }, &key);
    }
    let described = p.charges.lock().expect("charges lock poisoned").get(&key).map(describe);
    let Some((status, body)) = described else { return error(StatusCode::INTERNAL_SERVER_ERROR, "lost", json!({})) };
    (status, Json(body)).into_response()
}

/// Charges listed at most by `GET /v1/charges`.
const LIST_MAX: usize = 1_000;

/// `GET /v1/charges` (this process only, not part of the protocol): the
/// first charges in key order, for tests and people looking on.
async fn list(State(p): State<Arc<Provider>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if let Some(r) = p.refusal(&method, &uri, &headers, b"") {
        return r;
    }
    let charges = p.charges.lock().expect("charges lock poisoned");
    let list: Vec<Value> = charges
        .iter()
        .take(LIST_MAX)
        .map(|(key, c)| {
            let mut v = describe(c).1;
            v["idempotency_key"] = json!(key);
            v
        })
        .collect();
    (StatusCode::OK, Json(json!({"charges": list}))).into_response()
}

async fn lookup(
    State(p): State<Arc<Provider>>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = p.refusal(&method, &uri, &headers, b"") {
        return r;
    }
    let mut charges = p.charges.lock().expect("charges lock poisoned");
    let (status, body) = match charges.get(&key) {
        Some(c) => describe(c),
        None if key.is_empty() || key.len() > KEY_BYTES_MAX => {
            return error(StatusCode::BAD_REQUEST, "invalid_request", json!({}))
        }
        // No room for the tombstone: "not charged" could not be kept true.
        None if charges.len() >= p.opts.charges_max => (StatusCode::OK, json!({"status": "pending"})),
        None => {
            let c = Charge {
                charge_id: String::new(),
                amount: 0,
                currency: String::new(),
                token: String::new(),
                status: Status::NotCharged,
                refunded: 0,
            };
            charges.insert(key, c);
            (StatusCode::NOT_FOUND, json!({"status": "not_charged"}))
        }
    };
    // A lookup answers 200 for every known charge.
    let status = if status == StatusCode::NOT_FOUND { status } else { StatusCode::OK };
    (status, Json(body)).into_response()
}

async fn refund(
    State(p): State<Arc<Provider>>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = p.refusal(&method, &uri, &headers, &body) {
        return r;
    }
    let req: RefundReq = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request", json!({"message": e.to_string()})),
    };
    let first = {
        let mut charges = p.charges.lock().expect("charges lock poisoned");
        let Some(c) = charges.get_mut(&key).filter(|c| c.status == Status::Captured) else {
            return error(StatusCode::NOT_FOUND, "not_charged", json!({}));
        };
        if req.amount == 0 || req.amount > c.amount {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refund_exceeds_capture",
                json!({"captured_amount": c.amount}),
            );
        }
        // One refund per charge: the same one again is a no-op.
        if c.refunded != 0 && c.refunded != req.amount {
            return error(StatusCode::CONFLICT, "already_refunded", json!({"refunded_amount": c.refunded}));
        }
        let first = c.refunded == 0;
        c.refunded = req.amount;
        first
    };
    if first {
        p.notify("charge.refunded", &key);
    }
    (StatusCode::OK, Json(json!({"status": "refunded", "refunded_amount": req.amount}))).into_response()
}

/// The provider's HTTP application.
pub fn router(opts: SandboxOptions) -> Router {
    let http = reqwest::Client::builder().timeout(WEBHOOK_CALL_TIMEOUT).build().expect("an HTTP client");
    let provider = Arc::new(Provider { opts, charges: Mutex::new(BTreeMap::new()), seq: AtomicU64::new(1), http });
    Router::new()
        .route("/v1/charges", post(charge).get(list))
        .route("/v1/charges/{key}", get(lookup))
        .route("/v1/charges/{key}/refunds", post(refund))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(provider)
}

/// Serves the provider on `listener` until `stop` resolves.
pub async fn serve(
    opts: SandboxOptions,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(opts)).with_graceful_shutdown(stop).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::payments::{ChargeOutcome, ChargeRequest, LookupOutcome, PaymentError, PaymentProvider};
    use crate::gateway::payments_http::{HttpProvider, HttpProviderConfig};

    const KEY: &str = "test-payments-api-key-0123456789abcdef";

    /// The adapter against this provider on loopback.
    async fn pair(slow_ms: u64, call_timeout_ms: u64, api_key: &str) -> HttpProvider {
        let opts = SandboxOptions {
            api_key: KEY.into(),
            webhook_url: None,
            webhook_secret: "w".repeat(32),
            slow_ms,
            charges_max: 100,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(opts, listener, std::future::pending()));
        HttpProvider::new(HttpProviderConfig {
            base_url: format!("http://{addr}"),
            api_key: api_key.into(),
            call_timeout: Duration::from_millis(call_timeout_ms),
            response_bytes_max: 4096,
            calls_inflight_max: 8,
        })
        .unwrap()
    }

    fn req(key: &str, token: &str) -> ChargeRequest {
        ChargeRequest { idempotency_key: key.into(), amount: 500, currency: "INR".into(), token: token.into() }
    }

    #[tokio::test]
    async fn the_adapter_and_the_provider_agree_on_every_test_token() {
        let p = pair(300, 2_000, KEY).await;
        let captured = p.charge(&req("hld-1-1/a", "tok_visa")).await;
        assert!(matches!(captured, ChargeOutcome::Captured { .. }), "{captured:?}");
        assert_eq!(p.charge(&req("hld-1-1/a", "tok_visa")).await, captured, "a repeat answers the same");
        assert!(matches!(p.lookup("hld-1-1/a").await, LookupOutcome::Captured { amount: 500, .. }));
        for (token, reason) in [
            ("tok_declined", "card_declined"),
            ("tok_insufficient_funds", "insufficient_funds"),
            ("tok_x", "invalid_token"),
        ] {
            let key = format!("hld-1-2/{token}");
            assert_eq!(p.charge(&req(&key, token)).await, ChargeOutcome::Declined { reason: reason.into() });
            assert_eq!(p.lookup(&key).await, LookupOutcome::NotCharged);
        }
        // Slow, but within the call timeout: captured.
        assert!(matches!(p.charge(&req("hld-1-3/a", "tok_timeout")).await, ChargeOutcome::Captured { .. }));
        // Refunds: once, the same again is a no-op, another amount is refused.
        p.refund("hld-1-1/a", 500).await.unwrap();
        p.refund("hld-1-1/a", 500).await.unwrap();
        assert_eq!(p.lookup("hld-1-1/a").await, LookupOutcome::Refunded { amount: 500 });
        assert_eq!(p.refund("hld-1-1/a", 100).await, Err(PaymentError::AlreadyRefunded { refunded: 500, asked: 100 }));
        assert_eq!(p.refund("hld-1-3/a", 501).await, Err(PaymentError::TooMuch { asked: 501, captured: 500 }));
        assert_eq!(p.refund("hld-1-9/none", 1).await, Err(PaymentError::NotCharged("hld-1-9/none".into())));
    }

    #[tokio::test]
    async fn a_charge_slower_than_the_timeout_is_unknown_and_found_later() {
        let p = pair(1_000, 200, KEY).await;
        assert_eq!(p.charge(&req("hld-1-4/a", "tok_timeout")).await, ChargeOutcome::Unknown);
        assert_eq!(p.lookup("hld-1-4/a").await, LookupOutcome::Pending, "still being decided");
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        assert!(matches!(p.lookup("hld-1-4/a").await, LookupOutcome::Captured { amount: 500, .. }));
    }

    #[tokio::test]
    async fn a_key_looked_up_before_its_charge_is_never_charged() {
        let p = pair(10, 2_000, KEY).await;
        assert_eq!(p.lookup("hld-1-5/late").await, LookupOutcome::NotCharged);
        assert_eq!(
            p.charge(&req("hld-1-5/late", "tok_visa")).await,
            ChargeOutcome::Declined { reason: "key_expired".into() }
        );
        assert_eq!(p.lookup("hld-1-5/late").await, LookupOutcome::NotCharged);
    }

    #[tokio::test]
    async fn a_wrong_key_is_refused_and_takes_nothing() {
        let wrong = pair(10, 2_000, &"x".repeat(40)).await;
        assert_eq!(wrong.charge(&req("hld-1-6/a", "tok_visa")).await, ChargeOutcome::Unknown);
        assert_eq!(wrong.lookup("hld-1-6/a").await, LookupOutcome::Pending);
    }

    #[tokio::test]
    async fn a_provider_that_never_answers_is_an_unknown_outcome_within_the_timeout() {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let p = HttpProvider::new(HttpProviderConfig {
            base_url: format!("http://{addr}"),
            api_key: KEY.into(),
            call_timeout: Duration::from_millis(300),
            response_bytes_max: 4096,
            calls_inflight_max: 8,
        })
        .unwrap();
        let started = std::time::Instant::now();
        assert_eq!(p.charge(&req("hld-1-7/a", "tok_visa")).await, ChargeOutcome::Unknown);
        assert_eq!(p.lookup("hld-1-7/a").await, LookupOutcome::Pending);
        assert!(started.elapsed() < Duration::from_secs(5), "bounded by the call timeout");
    }

    #[tokio::test]
    async fn an_oversized_answer_is_an_unknown_outcome() {
        let big = json!({"status": "captured", "charge_id": "ch_1", "amount": 500, "pad": "x".repeat(10_000)});
        let app = Router::new()
            .route("/v1/charges", post(move || std::future::ready((StatusCode::CREATED, Json(big.clone())))));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let p = HttpProvider::new(HttpProviderConfig {
            base_url: format!("http://{addr}"),
            api_key: KEY.into(),
            call_timeout: Duration::from_secs(2),
            response_bytes_max: 4096,
            calls_inflight_max: 8,
        })
        .unwrap();
        assert_eq!(p.charge(&req("hld-1-8/a", "tok_visa")).await, ChargeOutcome::Unknown);
    }
}
