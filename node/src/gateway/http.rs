//! HTTP plumbing shared by every route: the error shape of the contract,
//! JSON bodies that refuse unknown fields, the caller's identity, and the
//! idempotency key.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{HeaderValue, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use statemachine::Rejection;

use super::Gateway;
use crate::gateway::auth::Claims;

/// An error answer: `{"error": {"code", "message", "details"}}`.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) details: Value,
    pub(crate) retry_after_secs: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), details: json!({}), retry_after_secs: None }
    }

    pub(crate) fn details(mut self, details: Value) -> ApiError {
        self.details = details;
        self
    }

    pub(crate) fn retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<raft::ClientError> for ApiError {
    fn from(e: raft::ClientError) -> ApiError {
        match e {
            raft::ClientError::Unavailable { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("the shard is unavailable: {e}"))
                    .retry_after(1)
            }
            raft::ClientError::Refused(_) | raft::ClientError::Unauthenticated => {
                ApiError::internal(format!("the cluster refused the gateway: {e}"))
            }
        }
    }
}

/// The contract's status and code for a state-machine rejection.
pub(crate) fn rejection(r: Rejection, group: u64) -> ApiError {
    let message = r.to_string();
    let (status, code, details) = match &r {
        Rejection::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request", json!({})),
        Rejection::InvalidLayout(_) => (StatusCode::BAD_REQUEST, "invalid_layout", json!({})),
        Rejection::InvalidEvent(_) => (StatusCode::BAD_REQUEST, "invalid_event", json!({})),
        Rejection::VenueNotFound => (StatusCode::NOT_FOUND, "venue_not_found", json!({})),
        Rejection::EventNotFound => (StatusCode::NOT_FOUND, "event_not_found", json!({})),
        Rejection::InvalidSeats { unknown, duplicate } => {
            (StatusCode::BAD_REQUEST, "invalid_seats", json!({"unknown": unknown, "duplicate": duplicate}))
        }
        Rejection::TooManySeats { max } => (StatusCode::BAD_REQUEST, "too_many_seats", json!({"max": max})),
        Rejection::UnknownCategory(c) => (StatusCode::BAD_REQUEST, "invalid_category", json!({"category": c})),
        Rejection::SeatsUnavailable { seats } => {
            (StatusCode::CONFLICT, "seats_unavailable", json!({"unavailable": seats}))
        }
        Rejection::HoldLimit { hold } => {
            (StatusCode::CONFLICT, "hold_limit", json!({"hold_id": super::ids::HOLD.format(group, hold.0)}))
        }
        Rejection::UserHoldLimit { max } => (StatusCode::CONFLICT, "user_hold_limit", json!({"max": max})),
        Rejection::NotOnSale => (StatusCode::CONFLICT, "not_on_sale", json!({})),
        Rejection::SoldOut => (StatusCode::CONFLICT, "sold_out", json!({})),
        Rejection::NotTogether { count } => (StatusCode::CONFLICT, "not_together", json!({"count": count})),
        Rejection::HoldNotFound => (StatusCode::NOT_FOUND, "hold_not_found", json!({})),
        Rejection::NotOwner => (StatusCode::FORBIDDEN, "forbidden", json!({})),
        Rejection::HoldExpired => (StatusCode::GONE, "hold_expired", json!({})),
        Rejection::SeatsLost { seats } => (StatusCode::CONFLICT, "seats_lost", json!({"seats": seats})),
        Rejection::HoldConfirmed => (StatusCode::CONFLICT, "hold_confirmed", json!({})),
        Rejection::HoldReleased => (StatusCode::CONFLICT, "hold_released", json!({})),
        Rejection::ExtensionLimit { max } => (StatusCode::CONFLICT, "extension_limit", json!({"max": max})),
        Rejection::PaymentNotFound => (StatusCode::CONFLICT, "payment_not_found", json!({})),
        Rejection::PaymentConflict(_) => (StatusCode::CONFLICT, "payment_in_progress", json!({})),
        Rejection::PaymentAttemptsExceeded { max } => {
            (StatusCode::CONFLICT, "payment_attempts_exceeded", json!({"max": max}))
        }
        Rejection::BookingNotFound => (StatusCode::NOT_FOUND, "booking_not_found", json!({})),
        Rejection::AlreadyCancelled => (StatusCode::CONFLICT, "already_cancelled", json!({})),
        Rejection::CancellationClosed => (StatusCode::CONFLICT, "cancellation_closed", json!({})),
        Rejection::TicketNotFound => (StatusCode::NOT_FOUND, "ticket_not_found", json!({})),
        Rejection::TicketUsed => (StatusCode::CONFLICT, "ticket_used", json!({})),
        Rejection::TicketCancelled => (StatusCode::CONFLICT, "ticket_cancelled", json!({})),
        Rejection::TicketTransferred | Rejection::StaleTicket { .. } => {
            (StatusCode::BAD_REQUEST, "invalid_ticket", json!({}))
        }
        Rejection::AlreadyCheckedIn { at_ms } => {
            (StatusCode::CONFLICT, "already_checked_in", json!({"checked_in_at": crate::text::rfc3339(*at_ms)}))
        }
        Rejection::NotSoldOut => (StatusCode::CONFLICT, "not_sold_out", json!({})),
        Rejection::AlreadyWaitlisted { waitlist } => (
            StatusCode::CONFLICT,
            "already_waitlisted",
            json!({"waitlist_id": super::ids::WAITLIST.format(group, waitlist.0)}),
        ),
        Rejection::WaitlistNotFound => (StatusCode::NOT_FOUND, "waitlist_not_found", json!({})),
        Rejection::IdempotencyKeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", json!({})),
        Rejection::NoWaitingRoom => (StatusCode::CONFLICT, "no_waiting_room", json!({})),
        Rejection::QueueRequired => (StatusCode::FORBIDDEN, "queue_required", json!({})),
        Rejection::LimitReached(_) => {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "limit_reached", message).retry_after(5)
        }
    };
    ApiError { status, code, message, details, retry_after_secs: None }
}

/// A JSON body; malformed JSON, a wrong content type and unknown fields
/// are 400 `invalid_request` (the types deny unknown fields).
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", e.body_text()))
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// The authenticated caller.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) user: String,
    pub(crate) claims: Claims,
}

impl Caller {
    pub(crate) fn require(&self, role: &str) -> Result<(), ApiError> {
        if self.claims.has_role(role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("this route needs the {role} role")))
        }
    }
}

impl FromRequestParts<Gateway> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gw: &Gateway) -> Result<Self, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m.to_string());
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing bearer token"))?
            .to_str()
            .map_err(|_| unauthorized("malformed authorization header"))?;
        let token = crate::gateway::auth::bearer(header).ok_or_else(|| unauthorized("expected a bearer token"))?;
        let claims = gw.auth().verify(token, gw.now_secs()).map_err(|e| unauthorized(&e.to_string()))?;
        let caller = Caller { user: claims.sub.clone(), claims };
        gw.check_rate(&caller.user)?;
        Ok(caller)
    }
}

/// Largest idempotency key.
pub(crate) const IDEMPOTENCY_KEY_BYTES_MAX: usize = 200;

/// Keys up to this long become the request id as they are (`key:` and the
/// key); longer ones by their digest. Either way the request id fits the
/// log's id bound (128 bytes), so the one rule callers see is this module's:
/// 1 to [`IDEMPOTENCY_KEY_BYTES_MAX`] visible ASCII characters.
const KEY_INLINE_BYTES_MAX: usize = 124;

/// The request id of the request's `Idempotency-Key`, or a fresh one when
/// it has none. Every form starts with a prefix of its own (`key:`,
/// `keyh:`, `auto:`), which the ids derived for a payment's steps never use.
pub(crate) struct IdemKey(pub(crate) String);

impl IdemKey {
    /// The request id for a key a caller sent, or why it is refused.
    fn of(key: &[u8]) -> Result<IdemKey, ApiError> {
        if key.is_empty() || key.len() > IDEMPOTENCY_KEY_BYTES_MAX {
            return Err(ApiError::bad_request(format!(
                "Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_BYTES_MAX} bytes"
            )));
        }
        // Visible ASCII and spaces only: the log refuses control
        // characters (a tab passes an HTTP header), and a key refused there
        // would be refused after the gateway already acted on it.
        if !key.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err(ApiError::bad_request("Idempotency-Key must be visible ASCII"));
        }
        let key = std::str::from_utf8(key).expect("checked ASCII");
        if key.len() <= KEY_INLINE_BYTES_MAX {
            Ok(IdemKey(format!("key:{key}")))
        } else {
            use sha2::Digest;
            Ok(IdemKey(format!("keyh:{}", hex::encode(sha2::Sha256::digest(key.as_bytes())))))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdemKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.headers.get("idempotency-key") {
            None => Ok(IdemKey(format!("auto:{}", uuid::Uuid::new_v4()))),
            Some(v) => IdemKey::of(v.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_key_makes_a_request_id_the_log_accepts() {
        let limits = statemachine::Limits::default();
        for len in 1..=IDEMPOTENCY_KEY_BYTES_MAX {
            for fill in ["k", "#", "~"] {
                let key = fill.repeat(len);
                let id = IdemKey::of(key.as_bytes()).unwrap().0;
                assert!(id.len() <= limits.id_bytes_max as usize, "{len}-byte key gives {} bytes", id.len());
            }
        }
        assert!(IdemKey::of(&[b'k'; IDEMPOTENCY_KEY_BYTES_MAX + 1]).is_err());
        assert!(IdemKey::of(b"").is_err());
        assert!(IdemKey::of(b"a\tb").is_err(), "a tab passes HTTP but not the log");
        assert!(IdemKey::of("é".as_bytes()).is_err());
    }

    #[test]
    fn the_gateways_bounds_are_the_logs() {
        let limits = statemachine::Limits::default();
        assert_eq!(crate::gateway::routes::NAME_BYTES_MAX, limits.text_bytes_max as usize);
        assert_eq!(crate::gateway::routes::USER_ID_BYTES_MAX, limits.id_bytes_max as usize);
    }

    #[test]
    fn long_and_short_keys_never_share_a_request_id() {
        let long = "k".repeat(KEY_INLINE_BYTES_MAX + 1);
        let a = IdemKey::of(long.as_bytes()).unwrap().0;
        let b = IdemKey::of(&long.as_bytes()[..KEY_INLINE_BYTES_MAX]).unwrap().0;
        assert_ne!(a, b);
        assert!(a.starts_with("keyh:") && b.starts_with("key:"));
    }
}
