//! Errors: the gateway's answers as a typed enum of the contract's codes,
//! and failures to get an answer at all.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The contract's machine codes (`{"error": {"code": ...}}`).
///
/// Codes this SDK does not know yet arrive as [`ErrorCode::Other`], so a
/// newer gateway never breaks an older client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: malformed request, unknown field, bad parameter.
    InvalidRequest,
    /// 400: empty sections, duplicate rows, unknown blocked or accessible seats.
    InvalidLayout,
    /// 400: an event outside the allowed ranges.
    InvalidEvent,
    /// 400: the region names no group.
    InvalidRegion,
    /// 400: unknown or duplicate seat ids, or zero seats.
    InvalidSeats,
    /// 400: a price category the event does not have.
    InvalidCategory,
    /// 400: more seats than `max_seats_per_hold`.
    TooManySeats,
    /// 400: a bad signature, stale version or cancelled ticket.
    InvalidTicket,
    /// 400: a forged queue token, or one of another user or event.
    InvalidQueueToken,
    /// 401: missing or invalid token.
    Unauthorized,
    /// 403: wrong role, or someone else's resource.
    Forbidden,
    /// 403: the event's waiting room is active and no valid access token was sent.
    QueueRequired,
    /// 402: the card was declined (`details.reason`); the hold stays active.
    PaymentDeclined,
    /// 404: no such route.
    NotFound,
    /// 404: no such event.
    EventNotFound,
    /// 404: no such venue.
    VenueNotFound,
    /// 404: no such hold.
    HoldNotFound,
    /// 404: no such booking.
    BookingNotFound,
    /// 404: no such ticket.
    TicketNotFound,
    /// 404: no such waitlist entry.
    WaitlistNotFound,
    /// 409: some requested seats are held, booked or blocked (`details.unavailable`).
    SeatsUnavailable,
    /// 409: the user already holds seats of this event (`details.hold_id`).
    HoldLimit,
    /// 409: the user holds too many events at once.
    UserHoldLimit,
    /// 409: before the sale opens or after the event started.
    NotOnSale,
    /// 409 (holds) or 410 (queue status): too few seats left.
    SoldOut,
    /// 409: no block of seats side by side is left.
    NotTogether,
    /// 409: the hold already became a booking.
    HoldConfirmed,
    /// 409: the hold was released.
    HoldReleased,
    /// 409: the hold ran out and someone else took a seat; any charge is refunded.
    SeatsLost,
    /// 409: a payment for the hold is in progress.
    PaymentInProgress,
    /// 409: too many payment attempts for the hold.
    PaymentAttemptsExceeded,
    /// 409: the refund policy allows no cancellation any more.
    CancellationClosed,
    /// 409: the booking is already cancelled.
    AlreadyCancelled,
    /// 409: the ticket was used.
    TicketUsed,
    /// 409: the ticket was cancelled.
    TicketCancelled,
    /// 409: the ticket checked in already (`details.checked_in_at`).
    AlreadyCheckedIn,
    /// 409: seats are available, no need for the waitlist.
    NotSoldOut,
    /// 409: the user is on this event's waitlist already.
    AlreadyWaitlisted,
    /// 409: the event has no waiting room.
    NoWaitingRoom,
    /// 409: the waiting room holds as many users as it can.
    QueueFull,
    /// 409: the cluster refused an operation (a bad address, an unknown node).
    ClusterRefused,
    /// 410: the hold ran out; its seats are free.
    HoldExpired,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 422: the idempotency key was used for a different request.
    IdempotencyKeyReused,
    /// 429: too many requests; see `Retry-After`.
    RateLimited,
    /// 500: the gateway failed.
    Internal,
    /// 503: a region group has no reachable leader.
    Unavailable,
    /// 503: a bound of the state machine is reached.
    LimitReached,
    /// 503: the gateway serves as many streams as it can.
    TooManyStreams,
    /// 503: the gateway has too much work in flight (e.g. waiting-room joins).
    Overloaded,
    /// A code this SDK does not know.
    Other(String),
}

impl ErrorCode {
    /// The code as the gateway spells it.
    pub fn as_str(&self) -> &str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "invalid_request",
            InvalidLayout => "invalid_layout",
            InvalidEvent => "invalid_event",
            InvalidRegion => "invalid_region",
            InvalidSeats => "invalid_seats",
            InvalidCategory => "invalid_category",
            TooManySeats => "too_many_seats",
            InvalidTicket => "invalid_ticket",
            InvalidQueueToken => "invalid_queue_token",
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            QueueRequired => "queue_required",
            PaymentDeclined => "payment_declined",
            NotFound => "not_found",
            EventNotFound => "event_not_found",
            VenueNotFound => "venue_not_found",
            HoldNotFound => "hold_not_found",
            BookingNotFound => "booking_not_found",
            TicketNotFound => "ticket_not_found",
            WaitlistNotFound => "waitlist_not_found",
            SeatsUnavailable => "seats_unavailable",
            HoldLimit => "hold_limit",
            UserHoldLimit => "user_hold_limit",
            NotOnSale => "not_on_sale",
            SoldOut => "sold_out",
            NotTogether => "not_together",
            HoldConfirmed => "hold_confirmed",
            HoldReleased => "hold_released",
            SeatsLost => "seats_lost",
            PaymentInProgress => "payment_in_progress",
            PaymentAttemptsExceeded => "payment_attempts_exceeded",
            CancellationClosed => "cancellation_closed",
            AlreadyCancelled => "already_cancelled",
            TicketUsed => "ticket_used",
            TicketCancelled => "ticket_cancelled",
            AlreadyCheckedIn => "already_checked_in",
            NotSoldOut => "not_sold_out",
            AlreadyWaitlisted => "already_waitlisted",
            NoWaitingRoom => "no_waiting_room",
            QueueFull => "queue_full",
            ClusterRefused => "cluster_refused",
            HoldExpired => "hold_expired",
            PayloadTooLarge => "payload_too_large",
            IdempotencyKeyReused => "idempotency_key_reused",
            RateLimited => "rate_limited",
            Internal => "internal",
            Unavailable => "unavailable",
            LimitReached => "limit_reached",
            TooManyStreams => "too_many_streams",
            Overloaded => "overloaded",
            Other(code) => code,
        }
    }

    /// The code for the gateway's spelling.
    pub fn parse(code: &str) -> ErrorCode {
        use ErrorCode::*;
        match code {
            "invalid_request" => InvalidRequest,
            "invalid_layout" => InvalidLayout,
            "invalid_event" => InvalidEvent,
            "invalid_region" => InvalidRegion,
            "invalid_seats" => InvalidSeats,
            "invalid_category" => InvalidCategory,
            "too_many_seats" => TooManySeats,
            "invalid_ticket" => InvalidTicket,
            "invalid_queue_token" => InvalidQueueToken,
            "unauthorized" => Unauthorized,
            "forbidden" => Forbidden,
            "queue_required" => QueueRequired,
            "payment_declined" => PaymentDeclined,
            "not_found" => NotFound,
            "event_not_found" => EventNotFound,
            "venue_not_found" => VenueNotFound,
            "hold_not_found" => HoldNotFound,
            "booking_not_found" => BookingNotFound,
            "ticket_not_found" => TicketNotFound,
            "waitlist_not_found" => WaitlistNotFound,
            "seats_unavailable" => SeatsUnavailable,
            "hold_limit" => HoldLimit,
            "user_hold_limit" => UserHoldLimit,
            "not_on_sale" => NotOnSale,
            "sold_out" => SoldOut,
            "not_together" => NotTogether,
            "hold_confirmed" => HoldConfirmed,
            "hold_released" => HoldReleased,
            "seats_lost" => SeatsLost,
            "payment_in_progress" => PaymentInProgress,
            "payment_attempts_exceeded" => PaymentAttemptsExceeded,
            "cancellation_closed" => CancellationClosed,
            "already_cancelled" => AlreadyCancelled,
            "ticket_used" => TicketUsed,
            "ticket_cancelled" => TicketCancelled,
            "already_checked_in" => AlreadyCheckedIn,
            "not_sold_out" => NotSoldOut,
            "already_waitlisted" => AlreadyWaitlisted,
            "no_waiting_room" => NoWaitingRoom,
            "queue_full" => QueueFull,
            "cluster_refused" => ClusterRefused,
            "hold_expired" => HoldExpired,
            "payload_too_large" => PayloadTooLarge,
            "idempotency_key_reused" => IdempotencyKeyReused,
            "rate_limited" => RateLimited,
            "internal" => Internal,
            "unavailable" => Unavailable,
            "limit_reached" => LimitReached,
            "too_many_streams" => TooManyStreams,
            "overloaded" => Overloaded,
            other => Other(other.to_string()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ErrorCode::parse(&String::deserialize(d)?))
    }
}

/// An error answer of the gateway.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Machine code.
    pub code: ErrorCode,
    /// Human text.
    pub message: String,
    /// Code-specific details (`unavailable` seats, the `hold_id` of a hold limit, ...).
    pub details: serde_json::Value,
    /// The gateway's `x-request-id`, for its logs.
    pub request_id: Option<String>,
    /// `Retry-After` in seconds, on 429 and 503.
    pub retry_after_secs: Option<u64>,
    /// The `Idempotency-Key` the call carried (mutating calls). After a 503
    /// the outcome is unknown: calling again with this key is safe.
    pub idempotency_key: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The gateway answered with an error. A 503 or 429 shows up here only
    /// once the retries are used up.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// No gateway answered: connection refused or reset, or every attempt
    /// timed out, until the retries were used up. A mutating call may or
    /// may not have been applied; calling it again with its
    /// `idempotency_key` is safe.
    #[error("no gateway answered after {attempts} attempts: {last}")]
    Unreachable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
        /// The `Idempotency-Key` every attempt of a mutating call carried:
        /// calling again with it ([`Client::with_idempotency_key`](crate::Client::with_idempotency_key))
        /// applies the call at most once and answers what it did.
        idempotency_key: Option<String>,
    },
    /// The gateway answered something this SDK cannot read.
    #[error("unexpected answer ({status}): {reason}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// What was wrong.
        reason: String,
    },
    /// A wait the caller bounded ran out (e.g. for admission through a
    /// waiting room).
    #[error("gave up waiting for {what} after {waited_ms} ms")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// How long.
        waited_ms: u64,
    },
    /// The waiting room let the user in, but the access window ran out
    /// before a hold was made; joining again does not give a new turn.
    #[error("the waiting room's access window lapsed")]
    AdmissionLapsed,
    /// The client was configured wrongly (bad URL, no endpoint, bad header value).
    #[error("client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The contract's code, when the gateway answered with an error.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Error::Api(e) => Some(&e.code),
            _ => None,
        }
    }

    /// The gateway's error answer, if that is what this is.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }
}

/// What `Result` means in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
