//! The records the state machine keeps. Fields marked `#[serde(skip)]` are
//! derived: never stored in snapshots, rebuilt on restore, and compared
//! against a rebuild by the invariant checker.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::command::{EventKind, RefundTier, WaitingRoomSpec};
use crate::ids::{BookingId, EventId, HoldId, Millis, TicketId, VenueId, WaitlistId};
use crate::outcome::{HoldOrigin, Outcome, Rejection};

/// A user or payment-intent id held by more than one record or index (a
/// hold, its tickets, its booking, their indexes): one allocation shared by
/// all of them. It encodes as a plain string.
pub(crate) type SharedId = Arc<str>;

/// Seats of one category of one event, by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Free to hold.
    pub available: u32,
    /// In a live hold.
    pub held: u32,
    /// In a confirmed booking.
    pub booked: u32,
    /// Never sold.
    pub blocked: u32,
}

impl Counts {
    /// Every seat of the category.
    pub fn total(&self) -> u32 {
        self.available + self.held + self.booked + self.blocked
    }

    pub(crate) fn slot(&mut self, status: u8) -> &mut u32 {
        match status {
            crate::state::SEAT_AVAILABLE => &mut self.available,
            crate::state::SEAT_HELD => &mut self.held,
            crate::state::SEAT_BOOKED => &mut self.booked,
            crate::state::SEAT_BLOCKED => &mut self.blocked,
            other => panic!("invalid seat status {other}"),
        }
    }
}

/// An event's settings with the contract's defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventSettings {
    pub(crate) venue: VenueId,
    pub(crate) title: String,
    pub(crate) kind: EventKind,
    pub(crate) starts_at_ms: Millis,
    pub(crate) genre: String,
    pub(crate) language: String,
    pub(crate) currency: String,
    /// Price per venue category index.
    pub(crate) prices: Vec<u64>,
    pub(crate) sale_opens_at_ms: Millis,
    pub(crate) sale_closes_at_ms: Millis,
    pub(crate) max_seats_per_hold: u32,
    pub(crate) hold_ttl_secs: u32,
    /// Sorted by `min_hours_before`, largest first.
    pub(crate) refund_policy: Vec<RefundTier>,
    pub(crate) waiting_room: Option<WaitingRoomSpec>,
}

impl EventSettings {
    /// Holds may be taken at `now`: the sale is open and the event has not started.
    pub(crate) fn on_sale(&self, now: Millis) -> bool {
        now >= self.sale_opens_at_ms && !self.sale_over(now)
    }

    /// The sale has closed (or the event has started) by `now`.
    pub(crate) fn sale_over(&self, now: Millis) -> bool {
        now >= self.sale_closes_at_ms || now >= self.starts_at_ms
    }
}

/// An event and its seat inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Event {
    pub(crate) id: EventId,
    pub(crate) settings: EventSettings,
    pub(crate) created_at_ms: Millis,
    /// Two status bits per venue seat: the only per-seat memory of an event.
    #[serde(skip)]
    pub(crate) seats: crate::statuses::Statuses,
    /// Per venue category.
    #[serde(skip)]
    pub(crate) counts: Vec<Counts>,
    /// Live holds by expiry.
    #[serde(skip)]
    pub(crate) live_holds: BTreeSet<(Millis, HoldId)>,
    /// Waitlist in FIFO order (ids grow with time).
    #[serde(skip)]
    pub(crate) waitlist: BTreeSet<WaitlistId>,
}

/// Life of a hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldState {
    /// Leased; seats are held.
    Active,
    /// Given back by the owner (or after a failed payment).
    Released,
    /// The lease ran out.
    Expired,
    /// Turned into a booking.
    Confirmed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hold {
    pub(crate) id: HoldId,
    pub(crate) event: EventId,
    pub(crate) user: SharedId,
    /// Sorted seat indices.
    pub(crate) seats: Vec<u32>,
    pub(crate) origin: HoldOrigin,
    pub(crate) created_at_ms: Millis,
    pub(crate) expires_at_ms: Millis,
    pub(crate) extensions: u32,
    pub(crate) total_price: u64,
    pub(crate) state: HoldState,
    /// When it left `Active` (0 while active).
    pub(crate) finished_at_ms: Millis,
    /// Reserved by the first payment attempt, so a pending payment already
    /// has the booking id it will get.
    pub(crate) booking: Option<BookingId>,
    /// Payment intents, in order.
    pub(crate) intents: Vec<SharedId>,
}

/// Life of a booking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BookingStatus {
    /// Paid; tickets are valid.
    Confirmed,
    /// Cancelled; seats went back.
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Booking {
    pub(crate) id: BookingId,
    pub(crate) event: EventId,
    pub(crate) hold: HoldId,
    pub(crate) user: SharedId,
    pub(crate) seats: Vec<u32>,
    pub(crate) tickets: Vec<TicketId>,
    pub(crate) total_price: u64,
    pub(crate) intent: SharedId,
    pub(crate) created_at_ms: Millis,
    pub(crate) status: BookingStatus,
    pub(crate) cancelled_at_ms: Option<Millis>,
    pub(crate) refund_percent: u8,
    pub(crate) refund_amount: u64,
}

/// Life of a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketStatus {
    /// Good for entry.
    Valid,
    /// Admitted once.
    Used,
    /// Its booking was cancelled.
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ticket {
    pub(crate) id: TicketId,
    pub(crate) booking: BookingId,
    pub(crate) event: EventId,
    pub(crate) seat: u32,
    pub(crate) holder: SharedId,
    pub(crate) version: u32,
    pub(crate) status: TicketStatus,
    pub(crate) checked_in_at_ms: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WaitEntry {
    pub(crate) id: WaitlistId,
    pub(crate) event: EventId,
    pub(crate) user: String,
    pub(crate) count: u32,
    pub(crate) category: u16,
    pub(crate) joined_at_ms: Millis,
}

/// Life of a payment intent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntentState {
    /// A charge may be in flight; its outcome is not known yet.
    Pending,
    /// The provider declined it (or it was found never to have happened).
    Declined,
    /// Charged and turned into a booking.
    Captured,
    /// Charged (or a booking cancelled) and money is owed back.
    RefundDue,
    /// The refund was issued.
    Refunded,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Intent {
    pub(crate) id: SharedId,
    pub(crate) hold: HoldId,
    pub(crate) booking: BookingId,
    pub(crate) user: SharedId,
    pub(crate) amount: u64,
    pub(crate) state: IntentState,
    /// True when this intent paid for its booking.
    pub(crate) booked: bool,
    pub(crate) refund_amount: u64,
    pub(crate) created_at_ms: Millis,
    pub(crate) updated_at_ms: Millis,
    pub(crate) reason: String,
}

impl Intent {
    /// Nothing more will happen to this intent.
    pub(crate) fn is_settled(&self) -> bool {
        matches!(self.state, IntentState::Declined | IntentState::Refunded) && !self.booked
    }
}

/// A remembered request: its fingerprint and the result it got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DedupEntry {
    pub(crate) index: u64,
    pub(crate) at_ms: Millis,
    pub(crate) fingerprint: u64,
    pub(crate) result: Recorded,
}

/// A remembered result, in a form from which `State::replayed` rebuilds
/// exactly the result first returned.
///
/// The results of the payment path are kept as the ids they name: a
/// booking's receipt is made only of what never changes once the booking
/// exists (its event, hold, seats, tickets and price, the event's currency
/// and the venue's seat labels), and bookings and events are never removed,
/// so the receipt is rebuilt on a repeat instead of copied on every first
/// request. Everything else is kept as it was returned, boxed so that the
/// table's entries stay small.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Recorded {
    /// `Ok(Outcome::Booked(receipt of the booking))`.
    Booked(BookingId),
    /// `Ok(Outcome::PaymentStarted { booking, amount, currency of the event })`.
    PaymentStarted { booking: BookingId, amount: u64, event: EventId },
    /// Any other result, as returned.
    Result(Box<Result<Outcome, Rejection>>),
}

/// What one remembered request counts as in the table's weight, before its
/// result: the table's entry, its share of the tree's nodes and its place
/// in the order of forgetting (measured with benches/memory.rs).
const DEDUP_ENTRY_BYTES: u64 = 160;
/// A result kept as returned: its box.
const DEDUP_RESULT_BYTES: u64 = 160;
/// A string or vector element's own bytes (a pointer, a length and a capacity).
const HEAP_ITEM_BYTES: u64 = 24;

impl Recorded {
    /// The bytes this record is counted as in the exactly-once table: about
    /// what it takes on the heap. A fixed function of the record (never of
    /// the platform or the allocator), so every replica prunes the same
    /// entries, and cheap: it walks the strings a result names.
    pub(crate) fn weight(&self) -> u64 {
        match self {
            Recorded::Booked(_) | Recorded::PaymentStarted { .. } => DEDUP_ENTRY_BYTES,
            Recorded::Result(result) => {
                let heap = match &**result {
                    Ok(outcome) => outcome_heap_bytes(outcome),
                    Err(rejection) => rejection_heap_bytes(rejection),
                };
                DEDUP_ENTRY_BYTES + DEDUP_RESULT_BYTES + heap
            }
        }
    }
}

fn labels_heap_bytes(labels: &[String]) -> u64 {
    labels.iter().map(|l| HEAP_ITEM_BYTES + l.len() as u64).sum()
}

fn outcome_heap_bytes(outcome: &Outcome) -> u64 {
    match outcome {
        Outcome::Held(r) => (r.user.len() + r.currency.len()) as u64 + labels_heap_bytes(&r.seats),
        Outcome::Booked(r) => {
            r.currency.len() as u64
                + labels_heap_bytes(&r.seats)
                + r.tickets.iter().map(|(_, l)| 8 + HEAP_ITEM_BYTES + l.len() as u64).sum::<u64>()
        }
        Outcome::Swept { holds, .. } => 8 * holds.len() as u64,
        Outcome::PaymentStarted { currency, .. } => currency.len() as u64,
        Outcome::NotBooked { reason, .. } => rejection_heap_bytes(reason),
        Outcome::CheckedIn { seat, .. } => seat.len() as u64,
        Outcome::QueueJoined { places } => 16 * places.len() as u64,
        Outcome::VenueCreated { .. }
        | Outcome::EventCreated { .. }
        | Outcome::Released { .. }
        | Outcome::Extended { .. }
        | Outcome::PaymentFailed { .. }
        | Outcome::RefundRecorded { .. }
        | Outcome::Cancelled { .. }
        | Outcome::Transferred { .. }
        | Outcome::WaitlistJoined { .. }
        | Outcome::WaitlistLeft { .. }
        | Outcome::QueueActivated { .. }
        | Outcome::QueuesAdvanced { .. } => 0,
    }
}

fn rejection_heap_bytes(rejection: &Rejection) -> u64 {
    match rejection {
        Rejection::InvalidRequest(s)
        | Rejection::InvalidLayout(s)
        | Rejection::InvalidEvent(s)
        | Rejection::UnknownCategory(s)
        | Rejection::PaymentConflict(s)
        | Rejection::LimitReached(s) => s.len() as u64,
        Rejection::InvalidSeats { unknown, duplicate } => labels_heap_bytes(unknown) + labels_heap_bytes(duplicate),
        Rejection::SeatsUnavailable { seats } | Rejection::SeatsLost { seats } => labels_heap_bytes(seats),
        _ => 0,
    }
}
