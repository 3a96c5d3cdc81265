//! What applying a command produces: a result (an outcome or a rejection,
//! both ordinary values) and the domain events it caused.

use serde::{Deserialize, Serialize};

use crate::ids::{BookingId, EventId, HoldId, Millis, TicketId, VenueId, WaitlistId};

/// What the log gives the state machine besides the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyCtx {
    /// The entry's log index (strictly increasing).
    pub index: u64,
    /// The entry's time as stamped by the leader.
    pub time_ms: Millis,
}

/// The result of applying one command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The outcome, or why nothing changed.
    pub result: Result<Outcome, Rejection>,
    /// Domain events, in order. Empty for a replayed request.
    pub events: Vec<DomainEvent>,
    /// True when the request id was seen before and the recorded result is returned.
    pub replayed: bool,
}

/// Where a hold came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HoldOrigin {
    /// The user asked for it.
    User,
    /// Offered to a waitlisted user when seats freed up.
    Waitlist,
}

/// A hold as granted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldReceipt {
    /// The hold.
    pub hold: HoldId,
    /// Its event.
    pub event: EventId,
    /// Its owner.
    pub user: String,
    /// Seat labels, in seat order.
    pub seats: Vec<String>,
    /// End of the lease.
    pub expires_at_ms: Millis,
    /// Sum of the seats' prices.
    pub total_price: u64,
    /// The event's currency.
    pub currency: String,
    /// Where it came from.
    pub origin: HoldOrigin,
}

/// A booking as confirmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingReceipt {
    /// The booking.
    pub booking: BookingId,
    /// Its event.
    pub event: EventId,
    /// The hold it was made from.
    pub hold: HoldId,
    /// Seat labels.
    pub seats: Vec<String>,
    /// One ticket per seat: (ticket, seat label).
    pub tickets: Vec<(TicketId, String)>,
    /// Price paid.
    pub total_price: u64,
    /// Currency.
    pub currency: String,
}

/// A successful command's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// A venue was created.
    VenueCreated {
        /// Its id.
        venue: VenueId,
        /// Seats in its layout.
        capacity: u32,
    },
    /// An event was created.
    EventCreated {
        /// Its id.
        event: EventId,
    },
    /// Seats are held.
    Held(HoldReceipt),
    /// A hold was released.
    Released {
        /// The hold.
        hold: HoldId,
    },
    /// A hold's lease was extended.
    Extended {
        /// The hold.
        hold: HoldId,
        /// New end of the lease.
        expires_at_ms: Millis,
    },
    /// An expiry sweep ran.
    Swept {
        /// Holds expired by this sweep.
        holds: Vec<HoldId>,
        /// More due holds remain (the sweep hit its bound).
        more: bool,
    },
    /// A payment attempt was recorded.
    PaymentStarted {
        /// The booking id the hold will have once paid.
        booking: BookingId,
        /// Amount to charge.
        amount: u64,
        /// Currency.
        currency: String,
    },
    /// The hold became a booking.
    Booked(BookingReceipt),
    /// The charge succeeded but the hold could not become a booking (it ran
    /// out, was released, or was already paid). The money is owed back: the
    /// intent is in `RefundDue` until `RecordRefund`.
    NotBooked {
        /// Why there is no booking (`HoldExpired`, `SeatsLost`, ...).
        reason: Rejection,
        /// Amount owed back.
        refund_due: u64,
    },
    /// A payment attempt was recorded as failed.
    PaymentFailed {
        /// Whether the hold was released as a consequence.
        hold_released: bool,
    },
    /// A refund was recorded as issued.
    RefundRecorded {
        /// Amount refunded.
        amount: u64,
    },
    /// A booking was cancelled.
    Cancelled {
        /// The booking.
        booking: BookingId,
        /// Refund percent from the policy tier.
        refund_percent: u8,
        /// Refund in minor units.
        refund_amount: u64,
    },
    /// A ticket changed hands.
    Transferred {
        /// The ticket.
        ticket: TicketId,
        /// Its new version (older versions no longer check in).
        version: u32,
    },
    /// A ticket was admitted.
    CheckedIn {
        /// The ticket.
        ticket: TicketId,
        /// Its event.
        event: EventId,
        /// Its seat label.
        seat: String,
    },
    /// A user joined a waitlist.
    WaitlistJoined {
        /// The entry.
        waitlist: WaitlistId,
        /// 1-based position in the event's waitlist.
        position: u32,
    },
    /// A user left a waitlist.
    WaitlistLeft {
        /// The entry.
        waitlist: WaitlistId,
    },
    /// Users joined a waiting room: one place per user, in order.
    QueueJoined {
        /// Where each user is.
        places: Vec<crate::queue::QueuePlace>,
    },
    /// A load-activated room is active.
    QueueActivated {
        /// Since when.
        at_ms: Millis,
    },
    /// Rooms advanced.
    QueuesAdvanced {
        /// Users admitted by this entry.
        admitted: u64,
    },
}

/// Why a command changed nothing. These are expected outcomes, not faults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    /// A field is malformed or out of range.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The venue layout is malformed.
    #[error("invalid layout: {0}")]
    InvalidLayout(String),
    /// The event settings are malformed.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// No such venue.
    #[error("venue not found")]
    VenueNotFound,
    /// No such event.
    #[error("event not found")]
    EventNotFound,
    /// Unknown or repeated seat labels, or no seats at all.
    #[error("invalid seats (unknown: {unknown:?}, duplicate: {duplicate:?})")]
    InvalidSeats {
        /// Labels that name no seat of the venue.
        unknown: Vec<String>,
        /// Labels given more than once.
        duplicate: Vec<String>,
    },
    /// More seats than the event allows per hold.
    #[error("too many seats: at most {max} per hold")]
    TooManySeats {
        /// The event's limit.
        max: u32,
    },
    /// The venue has no such category.
    #[error("unknown category {0:?}")]
    UnknownCategory(String),
    /// Some requested seats are held, booked or blocked.
    #[error("seats unavailable: {seats:?}")]
    SeatsUnavailable {
        /// Every requested seat that is not available.
        seats: Vec<String>,
    },
    /// The user already has a live hold on this event.
    #[error("user already holds seats for this event")]
    HoldLimit {
        /// The existing hold.
        hold: HoldId,
    },
    /// The user has too many live holds across events.
    #[error("user has too many live holds (max {max})")]
    UserHoldLimit {
        /// The limit.
        max: u32,
    },
    /// Outside the sale window, or the event has started.
    #[error("event not on sale")]
    NotOnSale,
    /// Too few seats left for a best-available request.
    #[error("sold out")]
    SoldOut,
    /// Enough seats, but not next to each other in one row.
    #[error("no {count} adjacent seats in one row")]
    NotTogether {
        /// Seats asked for.
        count: u32,
    },
    /// No such hold (or it was forgotten).
    #[error("hold not found")]
    HoldNotFound,
    /// The resource belongs to another user.
    #[error("not the owner")]
    NotOwner,
    /// The hold's lease ran out; its seats are still free.
    #[error("hold expired")]
    HoldExpired,
    /// The hold's lease ran out and someone else took seats of it.
    #[error("hold expired and seats were taken: {seats:?}")]
    SeatsLost {
        /// Seats of the hold that are no longer available.
        seats: Vec<String>,
    },
    /// The hold is already a booking.
    #[error("hold already confirmed")]
    HoldConfirmed,
    /// The hold was released.
    #[error("hold released")]
    HoldReleased,
    /// The hold cannot be extended further.
    #[error("hold extension limit reached (max {max})")]
    ExtensionLimit {
        /// The limit.
        max: u32,
    },
    /// No such payment intent.
    #[error("payment intent not found")]
    PaymentNotFound,
    /// The intent exists with other parameters, or is in the wrong state.
    #[error("payment intent conflict: {0}")]
    PaymentConflict(String),
    /// Too many payment attempts on one hold.
    #[error("too many payment attempts (max {max})")]
    PaymentAttemptsExceeded {
        /// The limit.
        max: u32,
    },
    /// No such booking.
    #[error("booking not found")]
    BookingNotFound,
    /// The booking is already cancelled.
    #[error("booking already cancelled")]
    AlreadyCancelled,
    /// The refund policy allows no cancellation now.
    #[error("cancellation closed")]
    CancellationClosed,
    /// No such ticket.
    #[error("ticket not found")]
    TicketNotFound,
    /// The ticket was already used at the door.
    #[error("ticket already used")]
    TicketUsed,
    /// The ticket's booking was cancelled.
    #[error("ticket cancelled")]
    TicketCancelled,
    /// A ticket of the booking now belongs to someone else.
    #[error("ticket was transferred")]
    TicketTransferred,
    /// The scanned version is not the ticket's current one.
    #[error("stale ticket version (current {current})")]
    StaleTicket {
        /// The current version.
        current: u32,
    },
    /// The ticket was admitted before.
    #[error("already checked in")]
    AlreadyCheckedIn {
        /// When the first admission happened.
        at_ms: Millis,
    },
    /// Seats of that category are still available.
    #[error("not sold out")]
    NotSoldOut,
    /// The user already waits for this event.
    #[error("already on the waitlist")]
    AlreadyWaitlisted {
        /// The existing entry.
        waitlist: WaitlistId,
    },
    /// No such waitlist entry.
    #[error("waitlist entry not found")]
    WaitlistNotFound,
    /// The idempotency key was used before for a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// A shard-wide bound was reached.
    #[error("limit reached: {0}")]
    LimitReached(String),
    /// The event has no waiting room.
    #[error("the event has no waiting room")]
    NoWaitingRoom,
    /// The event's waiting room is active and has not admitted the user (or
    /// the user's turn ended).
    #[error("the waiting room has not admitted this user")]
    QueueRequired,
}

impl DomainEvent {
    /// Events that happen because time passed (a lease ran out, and the
    /// waitlist offers that follow), not because of what a command asked.
    pub fn is_time_driven(&self) -> bool {
        matches!(
            self,
            DomainEvent::SeatsExpired { .. }
                | DomainEvent::WaitlistOffered { .. }
                | DomainEvent::SeatsHeld { origin: HoldOrigin::Waitlist, .. }
        )
    }
}

impl Rejection {
    /// The API's machine code for this rejection.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidRequest(_) => "invalid_request",
            Rejection::InvalidLayout(_) => "invalid_layout",
            Rejection::InvalidEvent(_) => "invalid_event",
            Rejection::VenueNotFound => "venue_not_found",
            Rejection::EventNotFound => "event_not_found",
            Rejection::InvalidSeats { .. } => "invalid_seats",
            Rejection::TooManySeats { .. } => "too_many_seats",
            Rejection::UnknownCategory(_) => "invalid_category",
            Rejection::SeatsUnavailable { .. } => "seats_unavailable",
            Rejection::HoldLimit { .. } => "hold_limit",
            Rejection::UserHoldLimit { .. } => "user_hold_limit",
            Rejection::NotOnSale => "not_on_sale",
            Rejection::SoldOut => "sold_out",
            Rejection::NotTogether { .. } => "not_together",
            Rejection::HoldNotFound => "hold_not_found",
            Rejection::NotOwner => "forbidden",
            Rejection::HoldExpired => "hold_expired",
            Rejection::SeatsLost { .. } => "seats_lost",
            Rejection::HoldConfirmed => "hold_confirmed",
            Rejection::HoldReleased => "hold_released",
            Rejection::ExtensionLimit { .. } => "extension_limit",
            Rejection::PaymentNotFound => "payment_not_found",
            Rejection::PaymentConflict(_) => "payment_conflict",
            Rejection::PaymentAttemptsExceeded { .. } => "payment_attempts_exceeded",
            Rejection::BookingNotFound => "booking_not_found",
            Rejection::AlreadyCancelled => "already_cancelled",
            Rejection::CancellationClosed => "cancellation_closed",
            Rejection::TicketNotFound => "ticket_not_found",
            Rejection::TicketUsed => "ticket_used",
            Rejection::TicketCancelled => "ticket_cancelled",
            Rejection::TicketTransferred => "ticket_transferred",
            Rejection::StaleTicket { .. } => "invalid_ticket",
            Rejection::AlreadyCheckedIn { .. } => "already_checked_in",
            Rejection::NotSoldOut => "not_sold_out",
            Rejection::AlreadyWaitlisted { .. } => "already_waitlisted",
            Rejection::WaitlistNotFound => "waitlist_not_found",
            Rejection::IdempotencyKeyReused => "idempotency_key_reused",
            Rejection::LimitReached(_) => "limit_reached",
            Rejection::NoWaitingRoom => "no_waiting_room",
            Rejection::QueueRequired => "queue_required",
        }
    }
}

/// Why seats went back to the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseReason {
    /// The owner released the hold.
    Released,
    /// A payment failed for good and the hold was given up.
    PaymentFailed,
}

/// Something that happened, for live seat maps and notifications.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DomainEvent {
    /// A venue was created.
    VenueCreated {
        /// The venue.
        venue: VenueId,
    },
    /// An event was created (feeds the search index).
    EventCreated {
        /// The event.
        event: EventId,
    },
    /// Seats became held.
    SeatsHeld {
        /// The event.
        event: EventId,
        /// The hold.
        hold: HoldId,
        /// Its owner.
        user: String,
        /// Seat labels.
        seats: Vec<String>,
        /// Where the hold came from.
        origin: HoldOrigin,
    },
    /// A hold's seats became available again.
    SeatsReleased {
        /// The event.
        event: EventId,
        /// The hold.
        hold: HoldId,
        /// Its owner.
        user: String,
        /// Seat labels.
        seats: Vec<String>,
        /// Why.
        reason: ReleaseReason,
    },
    /// A hold ran out and its seats became available again.
    SeatsExpired {
        /// The event.
        event: EventId,
        /// The hold.
        hold: HoldId,
        /// Its owner.
        user: String,
        /// Seat labels.
        seats: Vec<String>,
    },
    /// Held seats became booked.
    SeatsBooked {
        /// The event.
        event: EventId,
        /// The booking.
        booking: BookingId,
        /// Its owner.
        user: String,
        /// Seat labels.
        seats: Vec<String>,
    },
    /// A booking was cancelled; its seats are available again.
    BookingCancelled {
        /// The event.
        event: EventId,
        /// The booking.
        booking: BookingId,
        /// Its owner.
        user: String,
        /// Seat labels.
        seats: Vec<String>,
        /// Refund in minor units.
        refund_amount: u64,
    },
    /// A ticket changed hands.
    TicketTransferred {
        /// The event.
        event: EventId,
        /// The ticket.
        ticket: TicketId,
        /// Previous holder.
        from: String,
        /// New holder.
        to: String,
        /// New version.
        version: u32,
    },
    /// A ticket was admitted.
    TicketCheckedIn {
        /// The event.
        event: EventId,
        /// The ticket.
        ticket: TicketId,
    },
    /// Freed seats were offered to a waitlisted user as a hold.
    WaitlistOffered {
        /// The event.
        event: EventId,
        /// The waitlist entry (now consumed).
        waitlist: WaitlistId,
        /// The user.
        user: String,
        /// The hold created for them.
        hold: HoldId,
    },
    /// A refund is owed on a payment intent (cancellation or a charge
    /// that could not be turned into a booking).
    RefundDue {
        /// The intent.
        intent: String,
        /// Amount to refund.
        amount: u64,
    },
}
