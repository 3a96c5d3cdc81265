//! The seat-inventory state machine of one region shard.
//!
//! Every replica applies the same log of [`Command`]s with [`State::apply`],
//! and gets the same state, the same [`Applied`] results and the same
//! [`State::snapshot`] bytes. The crate is pure: no async runtime, no
//! storage, no network, no clock and no randomness. Time arrives with each
//! entry in [`ApplyCtx`]; hold expiry is decided by it.
//!
//! # Layout
//! - `command`: what the log carries ([`Command`], [`Op`], specs).
//! - `outcome`: what applying returns ([`Applied`], [`Outcome`], [`Rejection`], [`DomainEvent`]).
//! - `state`: the state, `apply`, expiry on touch, pruning of bounded tables.
//! - `layout`, `best`: venue layouts and best-available selection.
//! - `catalog`, `holds`, `bookings`, `tickets`, `waitlist`: the rules.
//! - `snapshot`, `invariants`: encoding, restore and the invariant checker.
//! - `query`: reads at a given time.
//! - `queue`: waiting rooms (positions, the pre-queue draw, admission).

mod best;
mod bookings;
mod catalog;
mod command;
mod dedup;
mod holds;
mod ids;
mod invariants;
mod layout;
mod limits;
mod outcome;
mod planted;
mod query;
mod queue;
mod records;
mod snapshot;
mod state;
mod statuses;
mod tickets;
mod waitlist;

#[cfg(test)]
mod tests;

pub use command::{
    Command, EventKind, EventSpec, Op, RefundTier, RowSpec, SectionSpec, Selection, VenueSpec, WaitingRoomSpec,
};
pub use ids::{BookingId, EventId, HoldId, Millis, TicketId, VenueId, WaitlistId};
pub use invariants::InvariantViolation;
pub use limits::{
    Limits, DEDUP_BYTES_MAX_DEFAULT, DEDUP_ENTRIES_MAX_DEFAULT, EVENT_HOLD_TTL_SECS_DEFAULT, EVENT_HOLD_TTL_SECS_MAX,
    EVENT_SEATS_PER_HOLD_DEFAULT, EVENT_SEATS_PER_HOLD_MAX, HOLD_LIFETIME_TTLS_MAX, PRICE_MINOR_UNITS_MAX,
    REFUND_TIERS_MAX, REJECTION_LABELS_MAX,
};
pub use outcome::{
    Applied, ApplyCtx, BookingReceipt, DomainEvent, HoldOrigin, HoldReceipt, Outcome, Rejection, ReleaseReason,
};
pub use query::{
    BookingView, BookingViewStatus, EventView, HoldStatus, HoldView, IntentView, SeatMap, SeatStatus, SeatView,
    TicketView, VenueView, WaitlistView,
};
pub use queue::{
    prequeue_key, user_digest, QueueAudit, QueuePhase, QueuePlace, QueueUserView, QueueView, UserDigest,
    ADMISSION_STEP_MS_MIN,
};
pub use records::{BookingStatus, Counts, HoldState, IntentState, TicketStatus};
pub use snapshot::SnapshotError;
pub use state::State;
