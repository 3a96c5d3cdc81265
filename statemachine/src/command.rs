//! Commands: what the log carries. Every command names the client and the
//! request it came from so that a retried request is applied at most once.
//!
//! Encoding stability: commands are stored in the Raft log with `postcard`,
//! which encodes enum variants by position. Never reorder or remove variants
//! or fields; add new ones at the end.

use serde::{Deserialize, Serialize};

use crate::ids::{BookingId, EventId, HoldId, Millis, TicketId, VenueId, WaitlistId};

/// One log entry's payload for the seat-inventory state machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Who sent it: the user for requests from the API, a node id for
    /// requests the cluster makes itself (expiry sweeps, reconciliation).
    pub client: String,
    /// The client's idempotency key for this request.
    pub request: String,
    /// What to do.
    pub op: Op,
}

impl Command {
    /// A command from `client` with idempotency key `request`.
    pub fn new(client: impl Into<String>, request: impl Into<String>, op: Op) -> Self {
        Command { client: client.into(), request: request.into(), op }
    }
}

/// The operations of the booking core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Create a venue and its seat layout.
    CreateVenue(VenueSpec),
    /// Create an event at a venue.
    CreateEvent(EventSpec),
    /// Hold seats for a user: all of them or none.
    Hold {
        /// The event.
        event: EventId,
        /// The user who will own the hold.
        user: String,
        /// Which seats.
        selection: Selection,
    },
    /// Give a live hold's seats back.
    ReleaseHold {
        /// The hold.
        hold: HoldId,
        /// Must be the hold's owner.
        user: String,
    },
    /// Push a live hold's expiry out, within the event's bounds.
    ExtendHold {
        /// The hold.
        hold: HoldId,
        /// Must be the hold's owner.
        user: String,
        /// Requested extra lease, at most the event's hold TTL.
        secs: u32,
    },
    /// Release holds whose lease ran out by the entry's time (the leader
    /// proposes this periodically; commands touching an event also expire
    /// that event's due holds first).
    ExpireHolds {
        /// At most this many holds (capped by `Limits::sweep_holds_max`).
        holds_max: u32,
    },
    /// Record that a charge for a hold is about to be attempted. Written
    /// before the payment provider is called so that a charge whose outcome
    /// is unknown can always be found and reconciled.
    BeginPayment {
        /// The hold being paid for.
        hold: HoldId,
        /// Must be the hold's owner.
        user: String,
        /// The provider idempotency key of this attempt.
        intent: String,
    },
    /// The charge of `intent` succeeded: turn the hold into a booking.
    ConfirmHold {
        /// The hold.
        hold: HoldId,
        /// Must be the hold's owner.
        user: String,
        /// The captured payment intent.
        intent: String,
    },
    /// The charge of `intent` failed (declined) or was found not to exist.
    FailPayment {
        /// The intent.
        intent: String,
        /// Provider's reason, for the record.
        reason: String,
        /// Also release the hold (used when reconciliation gives up).
        release_hold: bool,
    },
    /// A refund owed on `intent` was issued by the provider.
    RecordRefund {
        /// The intent.
        intent: String,
    },
    /// Cancel a confirmed booking under the event's refund policy.
    CancelBooking {
        /// The booking.
        booking: BookingId,
        /// Must be the booking's owner.
        user: String,
    },
    /// Give a ticket to another user; the old ticket version is dead.
    TransferTicket {
        /// The ticket.
        ticket: TicketId,
        /// Must be the current holder.
        user: String,
        /// The new holder.
        to_user: String,
    },
    /// Admit a ticket at the door (signature already verified by the gateway).
    CheckIn {
        /// The ticket.
        ticket: TicketId,
        /// The version printed in the scanned code.
        version: u32,
    },
    /// Queue for seats of a sold-out event.
    JoinWaitlist {
        /// The event.
        event: EventId,
        /// The waiting user.
        user: String,
        /// Seats wanted.
        count: u32,
        /// Category wanted.
        category: String,
    },
    /// Leave an event's waitlist.
    LeaveWaitlist {
        /// The entry.
        waitlist: WaitlistId,
        /// Must be the entry's owner.
        user: String,
    },
    /// Users join an event's waiting room: one gateway's batch of joins, in
    /// arrival order. Joining again keeps the first place.
    JoinQueue {
        /// The event.
        event: EventId,
        /// The users, in the order they arrived.
        users: Vec<String>,
        /// A random seed for the pre-queue draw, used only if this is the
        /// room's first join before the sale opens.
        seed: [u8; 32],
    },
    /// A load-activated room becomes active (hold requests exceeded its rate).
    ActivateQueue {
        /// The event.
        event: EventId,
    },
    /// Draw pre-queues, admit users and close rooms by the entry's time
    /// (the leader proposes this periodically).
    AdvanceQueues {
        /// Rooms examined at most.
        events_max: u32,
    },
}

impl Op {
    /// Whether a repeat of this op must be answered from the exactly-once
    /// table. Expiry sweeps are idempotent by nature and would only crowd
    /// the table out.
    pub(crate) fn recorded(&self) -> bool {
        // Joins, activations and advances are idempotent by nature: a repeat
        // finds the first one's effect and changes nothing more.
        !matches!(
            self,
            Op::ExpireHolds { .. } | Op::JoinQueue { .. } | Op::ActivateQueue { .. } | Op::AdvanceQueues { .. }
        )
    }
}

/// How a hold picks its seats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Selection {
    /// Exactly these seats, by label (`Floor-A-12`).
    Seats(Vec<String>),
    /// The best `count` available seats of a category.
    Best {
        /// Seats wanted.
        count: u32,
        /// Category name.
        category: String,
        /// All seats next to each other in one row, or nothing.
        together: bool,
        /// Only accessible seats.
        accessible: bool,
    },
}

/// A venue's layout as an operator writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueSpec {
    /// Display name.
    pub name: String,
    /// City.
    pub city: String,
    /// Region (names the shard that owns the venue).
    pub region: String,
    /// Sections in order of preference (best first).
    pub sections: Vec<SectionSpec>,
    /// Seats that are never sold.
    pub blocked_seats: Vec<String>,
    /// Seats reserved for buyers who ask for accessible seating.
    pub accessible_seats: Vec<String>,
}

/// A section of a venue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionSpec {
    /// Section name (may contain `-`).
    pub name: String,
    /// Seat category of every seat in the section (priced per event).
    pub category: String,
    /// Rows in order of preference (best first).
    pub rows: Vec<RowSpec>,
}

/// A row of a section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowSpec {
    /// Row label (no `-`, unique in its section).
    pub label: String,
    /// Seats numbered `1..=seats`.
    pub seats: u32,
}

/// Kinds of events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventKind {
    /// A film screening.
    Movie,
    /// A concert.
    Concert,
    /// A sports fixture.
    Sports,
    /// A play or show.
    Theater,
}

impl EventKind {
    /// The API's name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Movie => "movie",
            EventKind::Concert => "concert",
            EventKind::Sports => "sports",
            EventKind::Theater => "theater",
        }
    }
}

/// One refund tier: cancelling at least `min_hours_before` the start refunds `percent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundTier {
    /// Hours before the start.
    pub min_hours_before: u32,
    /// Refund in percent of the price, 0..=100.
    pub percent: u8,
}

/// Waiting-room settings carried on the event (enforced by the gateway).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingRoomSpec {
    /// Whether the room is on.
    pub enabled: bool,
    /// Users admitted per minute.
    pub admit_per_minute: u32,
    /// Cap on admitted users shopping at once.
    pub active_max: u32,
    /// Keep the room idle until hold requests exceed this rate.
    pub activate_above_per_sec: Option<u32>,
}

/// An event as an operator writes it. Optional fields take the contract's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSpec {
    /// The venue.
    pub venue: VenueId,
    /// Title.
    pub title: String,
    /// Kind.
    pub kind: EventKind,
    /// Start.
    pub starts_at_ms: Millis,
    /// Genre.
    pub genre: String,
    /// Language code.
    pub language: String,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Price in minor units for every seat category of the venue.
    pub prices: Vec<(String, u64)>,
    /// Sale opens.
    pub sale_opens_at_ms: Millis,
    /// Sale closes (default: the start).
    pub sale_closes_at_ms: Option<Millis>,
    /// Seats per hold, 1..=100 (default 10).
    pub max_seats_per_hold: Option<u32>,
    /// Hold lease, 1..=3600 s (default 600).
    pub hold_ttl_secs: Option<u32>,
    /// Refund tiers (default: 24 h → 100 %, 2 h → 50 %, else none).
    pub refund_policy: Option<Vec<RefundTier>>,
    /// Waiting room (default: none).
    pub waiting_room: Option<WaitingRoomSpec>,
}
