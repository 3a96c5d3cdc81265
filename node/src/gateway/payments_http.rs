//! A payment provider over HTTP: the gateway side of the protocol in
//! docs/payments.md, and the request and webhook signatures both sides use.
//!
//! Money safety comes first in every mapping: an answer that does not say
//! for certain what happened (a timeout, a refused connection, a 5xx, a body
//! that is too large or does not parse, a 404 without the protocol's body)
//! is an unknown outcome, which the saga leaves pending for reconciliation.
//! Nothing here ever turns "no answer" into "not charged".

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use super::payments::{ChargeOutcome, ChargeRequest, LookupOutcome, PaymentError, PaymentProvider};

/// Header with the signing time, in seconds since the epoch.
pub const TIMESTAMP_HEADER: &str = "x-payments-timestamp";
/// Header with the signature, `v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "x-payments-signature";
/// Longest decline reason kept (the rest of a longer one is dropped).
const REASON_BYTES_MAX: usize = 64;

fn mac(key: &str, parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(b"\n");
        }
        mac.update(part);
    }
    mac
}

/// The signature of a request to the provider: over the timestamp, the
/// method, the path as sent (percent-encoded) and the body, so a signed
/// request cannot be replayed against another route.
pub fn request_signature(key: &str, timestamp: u64, method: &str, path: &str, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let tag = mac(key, &[ts.as_bytes(), method.as_bytes(), path.as_bytes(), body]).finalize().into_bytes();
    format!("v1={}", hex::encode(tag))
}

/// The signature of a webhook from the provider: over the timestamp and the body.
pub fn webhook_signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    format!("v1={}", hex::encode(mac(secret, &[ts.as_bytes(), body]).finalize().into_bytes()))
}

/// Why a signed message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// No timestamp or signature header, or one that does not parse.
    #[error("missing or malformed {0} header")]
    Malformed(&'static str),
    /// Signed too long ago or too far ahead: a replay, or a bad clock.
    #[error("timestamp {timestamp} is more than {tolerance_secs} s from now ({now})")]
    Stale {
        /// The message's time.
        timestamp: u64,
        /// The receiver's time.
        now: u64,
        /// The window.
        tolerance_secs: u64,
    },
    /// The signature does not match.
    #[error("signature mismatch")]
    Mismatch,
}

/// Checks the headers' timestamp and signature against `signed`, the MAC
/// over everything but the timestamp (constant-time comparison).
fn verify(
    headers: &axum::http::HeaderMap,
    now_secs: u64,
    tolerance_secs: u64,
    signed: impl FnOnce(u64) -> Hmac<Sha256>,
) -> Result<u64, SignatureError> {
    let text =
        |name: &'static str| headers.get(name).and_then(|v| v.to_str().ok()).ok_or(SignatureError::Malformed(name));
    let timestamp: u64 = text(TIMESTAMP_HEADER)?.parse().map_err(|_| SignatureError::Malformed(TIMESTAMP_HEADER))?;
    let tag = text(SIGNATURE_HEADER)?
        .strip_prefix("v1=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Malformed(SIGNATURE_HEADER))?;
    if timestamp.abs_diff(now_secs) > tolerance_secs {
        return Err(SignatureError::Stale { timestamp, now: now_secs, tolerance_secs });
    }
    signed(timestamp).verify_slice(&tag).map_err(|_| SignatureError::Mismatch)?;
    Ok(timestamp)
}

/// Verifies a webhook's signature headers; the timestamp on success.
pub fn verify_webhook(
    secret: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    now_secs: u64,
    tolerance_secs: u64,
) -> Result<u64, SignatureError> {
    verify(headers, now_secs, tolerance_secs, |ts| mac(secret, &[ts.to_string().as_bytes(), body]))
}

/// Verifies a request's signature headers (the provider's side).
pub fn verify_request(
    key: &str,
    headers: &axum::http::HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
    now_secs: u64,
    tolerance_secs: u64,
) -> Result<u64, SignatureError> {
    verify(headers, now_secs, tolerance_secs, |ts| {
        mac(key, &[ts.to_string().as_bytes(), method.as_bytes(), path.as_bytes(), body])
    })
}

/// Seconds since the epoch.
pub fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// How the gateway reaches the provider.
#[derive(Clone, Debug)]
pub struct HttpProviderConfig {
    /// `http://host:port[/prefix]`.
    pub base_url: String,
    /// Request signing key.
    pub api_key: String,
    /// Longest call.
    pub call_timeout: Duration,
    /// Largest response body.
    pub response_bytes_max: usize,
    /// Calls in flight at most.
    pub calls_inflight_max: usize,
}

/// The [`PaymentProvider`] of docs/payments.md.
pub struct HttpProvider {
    client: reqwest::Client,
    base: Url,
    api_key: String,
    call_timeout: Duration,
    response_bytes_max: usize,
    inflight: tokio::sync::Semaphore,
}

/// A call that gave no usable answer.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Transport(String),
    #[error("response body over {0} bytes")]
    TooLarge(usize),
}

/// What the provider answered: the status and the JSON body (`Null` when
/// it was not JSON).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
}

#[derive(Deserialize)]
struct ChargeBody {
    status: String,
    #[serde(default)]
    charge_id: Option<String>,
    #[serde(default)]
    amount: Option<u64>,
    #[serde(default)]
    refunded_amount: Option<u64>,
    #[serde(default)]
    reason: Option<String>,
}

impl HttpProvider {
    /// A provider at `config.base_url`.
    pub fn new(config: HttpProviderConfig) -> Result<HttpProvider, String> {
        let mut base = Url::parse(&config.base_url).map_err(|e| format!("{}: {e}", config.base_url))?;
        // Joined paths go below the prefix, not beside its last segment.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let client = reqwest::Client::builder()
            .timeout(config.call_timeout)
            .connect_timeout(config.call_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(config.calls_inflight_max.min(64))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpProvider {
            client,
            base,
            api_key: config.api_key,
            call_timeout: config.call_timeout,
            response_bytes_max: config.response_bytes_max,
            inflight: tokio::sync::Semaphore::new(config.calls_inflight_max),
        })
    }

    /// `base/v1/charges[/<key>[/refunds]]`, the key percent-encoded as one segment.
    fn url(&self, key: Option<&str>, refunds: bool) -> Url {
        let mut url = self.base.clone();
        {
            let mut segments = url.path_segments_mut().expect("an http(s) URL has a path");
            segments.pop_if_empty().extend(["v1", "charges"]);
            if let Some(k) = key {
                segments.push(k);
            }
            if refunds {
                segments.push("refunds");
            }
        }
        url
    }

    async fn call(&self, method: Method, url: Url, body: Option<Value>) -> Result<Reply, CallError> {
        // The whole call, waiting for a slot included, fits in the timeout:
        // the saga's grace period is sized on it.
        tokio::time::timeout(self.call_timeout, async {
            let _permit = self.inflight.acquire().await.map_err(|_| CallError::Transport("closed".into()))?;
            let bytes = body.map(|b| serde_json::to_vec(&b).expect("JSON serializes")).unwrap_or_default();
            let ts = unix_secs();
            let signature = request_signature(&self.api_key, ts, method.as_str(), url.path(), &bytes);
            let mut req = self
                .client
                .request(method, url)
                .header(TIMESTAMP_HEADER, ts.to_string())
                .header(SIGNATURE_HEADER, signature);
            if !bytes.is_empty() {
                req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes);
            }
            let mut resp = req.send().await.map_err(|e| CallError::Transport(e.to_string()))?;
            let status = resp.status();
            if resp.content_length().is_some_and(|n| n > self.response_bytes_max as u64) {
                return Err(CallError::TooLarge(self.response_bytes_max));
            }
            let mut data = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| CallError::Transport(e.to_string()))? {
                if data.len() + chunk.len() > self.response_bytes_max {
                    return Err(CallError::TooLarge(self.response_bytes_max));
                }
                data.extend_from_slice(&chunk);
            }
            Ok::<Reply, CallError>(Reply { status, body: serde_json::from_slice(&data).unwrap_or(Value::Null) })
        })
        .await
        .unwrap_or(Err(CallError::Timeout(self.call_timeout)))
    }
}

/// A decline reason as the log and the API will show it: short, and only
/// `a-z 0-9 _` (the provider's text is not trusted further than that).
fn clean_reason(reason: Option<&str>) -> String {
    let r: String = reason
        .unwrap_or("declined")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .map(|c| c.to_ascii_lowercase())
        .take(REASON_BYTES_MAX)
        .collect();
    if r.is_empty() {
        "declined".into()
    } else {
        r
    }
}

/// The outcome of a charge call's answer.
fn charge_outcome(req: &ChargeRequest, reply: Result<Reply, CallError>) -> ChargeOutcome {
    let key = &req.idempotency_key;
    let reply = match reply {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("charge {key}: {e}; its outcome is unknown and will be reconciled");
            return ChargeOutcome::Unknown;
        }
    };
    let parsed = serde_json::from_value::<ChargeBody>(reply.body.clone()).ok();
    match (reply.status.as_u16(), parsed) {
        (200 | 201, Some(b)) if b.status == "captured" => match (b.amount, b.charge_id) {
            (Some(amount), Some(charge_id)) if amount == req.amount => ChargeOutcome::Captured { charge_id },
            (amount, _) => {
                tracing::error!(
                    "charge {key}: the provider captured {amount:?} instead of {}; left to reconciliation",
                    req.amount
                );
                ChargeOutcome::Unknown
            }
        },
        (200 | 402, Some(b)) if b.status == "declined" => {
            ChargeOutcome::Declined { reason: clean_reason(b.reason.as_deref()) }
        }
        (200 | 202, Some(b)) if b.status == "pending" => ChargeOutcome::Unknown,
        (status @ (401 | 403), _) => {
            tracing::error!(
                "charge {key}: the provider refused the gateway ({status}): check gateway.payments.api_key"
            );
            ChargeOutcome::Unknown
        }
        (status, _) => {
            tracing::warn!("charge {key}: unexpected answer {status} {}; left to reconciliation", reply.body);
            ChargeOutcome::Unknown
        }
    }
}

/// The outcome of a lookup call's answer.
fn lookup_outcome(key: &str, reply: Result<Reply, CallError>) -> LookupOutcome {
    let reply = match reply {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!("lookup of {key}: {e}");
            return LookupOutcome::Pending;
        }
    };
    let parsed = serde_json::from_value::<ChargeBody>(reply.body.clone()).ok();
    match (reply.status.as_u16(), parsed) {
        (200, Some(b)) if b.status == "captured" => match (b.amount, b.charge_id) {
            (Some(amount), Some(charge_id)) => LookupOutcome::Captured { charge_id, amount },
            _ => LookupOutcome::Pending,
        },
        (200, Some(b)) if b.status == "refunded" => match b.refunded_amount {
            Some(amount) => LookupOutcome::Refunded { amount },
            None => LookupOutcome::Pending,
        },
        // Only the protocol's own answers mean "no money": a bare 404 may
        // come from a proxy or a wrong base URL.
        (200, Some(b)) if b.status == "declined" => LookupOutcome::NotCharged,
        (404, Some(b)) if b.status == "not_charged" => LookupOutcome::NotCharged,
        (status, _) => {
            if status != 200 {
                tracing::warn!("lookup of {key}: unexpected answer {status} {}", reply.body);
            }
            LookupOutcome::Pending
        }
    }
}

/// The result of a refund call's answer.
fn refund_result(key: &str, amount: u64, reply: Result<Reply, CallError>) -> Result<(), PaymentError> {
    let reply = reply.map_err(|e| PaymentError::Unavailable(e.to_string()))?;
    let error = reply.body.get("error").and_then(Value::as_str).unwrap_or("");
    let number = |field: &str| reply.body.get(field).and_then(Value::as_u64);
    match (reply.status.as_u16(), error) {
        (200 | 201, _) if reply.body.get("status").and_then(Value::as_str) == Some("refunded") => {
            match number("refunded_amount") {
                Some(refunded) if refunded != amount => Err(PaymentError::AlreadyRefunded { refunded, asked: amount }),
                _ => Ok(()),
            }
        }
        (404, "not_charged") => Err(PaymentError::NotCharged(key.to_string())),
        (409, "already_refunded") => {
            Err(PaymentError::AlreadyRefunded { refunded: number("refunded_amount").unwrap_or(0), asked: amount })
        }
        (422, "refund_exceeds_capture") => {
            Err(PaymentError::TooMuch { asked: amount, captured: number("captured_amount").unwrap_or(0) })
        }
        (status, _) => Err(PaymentError::Unavailable(format!("unexpected answer {status} {}", reply.body))),
    }
}

#[async_trait::async_trait]
impl PaymentProvider for HttpProvider {
    async fn charge(&self, req: &ChargeRequest) -> ChargeOutcome {
        let body = json!({"idempotency_key": req.idempotency_key, "amount": req.amount,
                          "currency": req.currency, "token": req.token});
        charge_outcome(req, self.call(Method::POST, self.url(None, false), Some(body)).await)
    }

    async fn lookup(&self, idempotency_key: &str) -> LookupOutcome {
        lookup_outcome(idempotency_key, self.call(Method::GET, self.url(Some(idempotency_key), false), None).await)
    }

    async fn refund(&self, idempotency_key: &str, amount: u64) -> Result<(), PaymentError> {
        let url = self.url(Some(idempotency_key), true);
        refund_result(idempotency_key, amount, self.call(Method::POST, url, Some(json!({"amount": amount}))).await)
    }
}

/// The provider `gateway.payments` selects, and the verifier of its
/// webhooks. The sandbox outside dev mode is allowed (validation refused a
/// missing choice) and said loudly, once, at start.
pub fn provider_from_config(
    g: &crate::config::GatewaySection,
) -> Result<(std::sync::Arc<dyn PaymentProvider>, Option<super::PaymentWebhooks>), String> {
    use crate::config::ProviderKind;
    let p = &g.payments;
    match g.payment_provider() {
        Some(ProviderKind::Sandbox) => {
            if g.free_bookings() {
                tracing::warn!(
                    "PAYMENTS ARE THE SANDBOX: gateway.payments.provider = \"sandbox\" outside dev mode. \
                     Bookings are free: tok_visa books any seat and no money is taken. Configure \
                     provider = \"http\" (docs/payments.md) for real payments."
                );
            }
            let timeout = Duration::from_millis(g.payment_timeout_ms);
            let sandbox: std::sync::Arc<dyn PaymentProvider> =
                std::sync::Arc::new(super::payments::SandboxProvider::new(timeout));
            Ok((sandbox, None))
        }
        Some(ProviderKind::Http) => {
            let field =
                |v: &Option<String>, key: &str| v.clone().ok_or_else(|| format!("gateway.payments.{key} is missing"));
            let provider = HttpProvider::new(HttpProviderConfig {
                base_url: field(&p.base_url, "base_url")?,
                api_key: field(&p.api_key, "api_key")?,
                call_timeout: Duration::from_millis(p.call_timeout_ms),
                response_bytes_max: p.response_bytes_max,
                calls_inflight_max: p.calls_inflight_max,
            })?;
            tracing::info!(base_url = %provider.base, "payments: HTTP provider");
            let hooks =
                super::PaymentWebhooks::new(field(&p.webhook_secret, "webhook_secret")?, p.webhook_tolerance_secs);
            let provider: std::sync::Arc<dyn PaymentProvider> = std::sync::Arc::new(provider);
            Ok((provider, Some(hooks)))
        }
        None => Err("gateway.payments.provider is not set".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ChargeRequest {
        ChargeRequest { idempotency_key: "hld-1-2/u".into(), amount: 500, currency: "INR".into(), token: "t".into() }
    }

    fn reply(status: u16, body: Value) -> Result<Reply, CallError> {
        Ok(Reply { status: StatusCode::from_u16(status).unwrap(), body })
    }

    #[test]
    fn charges_map_only_certain_answers_to_certain_outcomes() {
        let captured = json!({"status": "captured", "charge_id": "ch_1", "amount": 500});
        assert_eq!(charge_outcome(&req(), reply(201, captured)), ChargeOutcome::Captured { charge_id: "ch_1".into() });
        assert_eq!(
            charge_outcome(&req(), reply(402, json!({"status": "declined", "reason": "Card Declined!"}))),
            ChargeOutcome::Declined { reason: "carddeclined".into() }
        );
        assert_eq!(
            charge_outcome(&req(), reply(200, json!({"status": "declined"}))),
            ChargeOutcome::Declined { reason: "declined".into() }
        );
        let long = "x".repeat(1000);
        match charge_outcome(&req(), reply(402, json!({"status": "declined", "reason": long}))) {
            ChargeOutcome::Declined { reason } => assert_eq!(reason.len(), REASON_BYTES_MAX),
            other => panic!("{other:?}"),
        }
        // Everything else is unknown, never "declined" or "not charged".
        for r in [
            reply(202, json!({"status": "pending"})),
            reply(201, json!({"status": "captured", "charge_id": "ch_1", "amount": 499})),
            reply(201, json!({"status": "captured", "amount": 500})),
            reply(500, json!({"status": "declined"})),
            reply(502, Value::Null),
            reply(503, json!({"error": "busy"})),
            reply(401, json!({"error": "invalid_signature"})),
            reply(409, json!({"error": "idempotency_mismatch"})),
            reply(404, Value::Null),
            reply(200, json!({"status": "what"})),
            reply(200, Value::Null),
            Err(CallError::Timeout(Duration::from_millis(5))),
            Err(CallError::Transport("connection refused".into())),
            Err(CallError::TooLarge(10)),
        ] {
            let shown = format!("{r:?}");
            assert_eq!(charge_outcome(&req(), r), ChargeOutcome::Unknown, "{shown}");
        }
    }

    #[test]
    fn lookups_say_not_charged_only_when_the_protocol_says_so() {
        let k = "hld-1-2/u";
        assert_eq!(
            lookup_outcome(k, reply(200, json!({"status": "captured", "charge_id": "ch_9", "amount": 7}))),
            LookupOutcome::Captured { charge_id: "ch_9".into(), amount: 7 }
        );
        assert_eq!(
            lookup_outcome(k, reply(200, json!({"status": "refunded", "amount": 7, "refunded_amount": 7}))),
            LookupOutcome::Refunded { amount: 7 }
        );
        assert_eq!(lookup_outcome(k, reply(404, json!({"status": "not_charged"}))), LookupOutcome::NotCharged);
        assert_eq!(lookup_outcome(k, reply(200, json!({"status": "declined"}))), LookupOutcome::NotCharged);
        for r in [
            reply(404, Value::Null),
            reply(404, json!({"error": "no route"})),
            reply(200, json!({"status": "pending"})),
            reply(200, json!({"status": "captured"})),
            reply(500, json!({"status": "not_charged"})),
            reply(401, json!({"status": "not_charged"})),
            Err(CallError::Timeout(Duration::from_millis(5))),
            Err(CallError::Transport("reset".into())),
        ] {
            let shown = format!("{r:?}");
            assert_eq!(lookup_outcome(k, r), LookupOutcome::Pending, "{shown}");
        }
    }

    #[test]
    fn refunds_map_the_protocols_errors() {
        let k = "k";
        assert_eq!(refund_result(k, 5, reply(200, json!({"status": "refunded", "refunded_amount": 5}))), Ok(()));
        assert_eq!(
            refund_result(k, 5, reply(200, json!({"status": "refunded", "refunded_amount": 4}))),
            Err(PaymentError::AlreadyRefunded { refunded: 4, asked: 5 })
        );
        assert_eq!(
            refund_result(k, 5, reply(404, json!({"error": "not_charged"}))),
            Err(PaymentError::NotCharged("k".into()))
        );
        assert_eq!(
            refund_result(k, 5, reply(409, json!({"error": "already_refunded", "refunded_amount": 3}))),
            Err(PaymentError::AlreadyRefunded { refunded: 3, asked: 5 })
        );
        assert_eq!(
            refund_result(k, 5, reply(422, json!({"error": "refund_exceeds_capture", "captured_amount": 2}))),
            Err(PaymentError::TooMuch { asked: 5, captured: 2 })
        );
        for r in [reply(404, Value::Null), reply(503, Value::Null), Err(CallError::Timeout(Duration::from_millis(1)))] {
            assert!(matches!(refund_result(k, 5, r), Err(PaymentError::Unavailable(_))));
        }
    }

    fn headers(ts: u64, sig: &str) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        h.insert(TIMESTAMP_HEADER, ts.to_string().parse().unwrap());
        h.insert(SIGNATURE_HEADER, sig.parse().unwrap());
        h
    }

    #[test]
    fn webhook_signatures_bind_the_body_and_the_time() {
        let secret = "s".repeat(32);
        let body = br#"{"type":"charge.captured","idempotency_key":"k"}"#;
        let sig = webhook_signature(&secret, 1_000, body);
        assert_eq!(verify_webhook(&secret, &headers(1_000, &sig), body, 1_100, 300), Ok(1_000));
        assert_eq!(verify_webhook(&secret, &headers(1_000, &sig), b"{}", 1_000, 300), Err(SignatureError::Mismatch));
        assert_eq!(
            verify_webhook(&secret, &headers(1_001, &sig), body, 1_000, 300),
            Err(SignatureError::Mismatch),
            "the timestamp is signed"
        );
        assert_eq!(
            verify_webhook(&"t".repeat(32), &headers(1_000, &sig), body, 1_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_webhook(&secret, &headers(1_000, &sig), body, 1_301, 300),
            Err(SignatureError::Stale { .. })
        ));
        assert!(matches!(
            verify_webhook(&secret, &headers(1_000, &sig), body, 699, 300),
            Err(SignatureError::Stale { .. })
        ));
        assert_eq!(
            verify_webhook(&secret, &headers(1_000, "sha256=00"), body, 1_000, 300),
            Err(SignatureError::Malformed(SIGNATURE_HEADER))
        );
        assert_eq!(
            verify_webhook(&secret, &axum::http::HeaderMap::new(), body, 1_000, 300),
            Err(SignatureError::Malformed(TIMESTAMP_HEADER))
        );
    }

    #[test]
    fn request_signatures_bind_method_and_path() {
        let key = "k".repeat(32);
        let sig = request_signature(&key, 50, "GET", "/v1/charges/a", b"");
        let h = headers(50, &sig);
        assert_eq!(verify_request(&key, &h, "GET", "/v1/charges/a", b"", 50, 300), Ok(50));
        assert_eq!(verify_request(&key, &h, "GET", "/v1/charges/b", b"", 50, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify_request(&key, &h, "POST", "/v1/charges/a", b"", 50, 300), Err(SignatureError::Mismatch));
    }

    #[test]
    fn keys_go_into_one_percent_encoded_segment_below_the_prefix() {
        let config = |base: &str| HttpProviderConfig {
            base_url: base.into(),
            api_key: "k".repeat(32),
            call_timeout: Duration::from_secs(1),
            response_bytes_max: 1024,
            calls_inflight_max: 1,
        };
        let p = HttpProvider::new(config("http://127.0.0.1:9/pay")).unwrap();
        assert_eq!(p.url(Some("hld-1-2/ab"), true).as_str(), "http://127.0.0.1:9/pay/v1/charges/hld-1-2%2Fab/refunds");
        let p = HttpProvider::new(config("http://127.0.0.1:9")).unwrap();
        assert_eq!(p.url(None, false).as_str(), "http://127.0.0.1:9/v1/charges");
    }

    #[tokio::test]
    async fn an_unreachable_provider_is_an_unknown_outcome() {
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let p = HttpProvider::new(HttpProviderConfig {
            base_url: format!("http://127.0.0.1:{port}"),
            api_key: "k".repeat(32),
            call_timeout: Duration::from_millis(500),
            response_bytes_max: 1024,
            calls_inflight_max: 4,
        })
        .unwrap();
        assert_eq!(p.charge(&req()).await, ChargeOutcome::Unknown);
        assert_eq!(p.lookup("k").await, LookupOutcome::Pending);
        assert!(matches!(p.refund("k", 1).await, Err(PaymentError::Unavailable(_))));
    }
}
