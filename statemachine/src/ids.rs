//! Typed identifiers. Every id is allocated from one per-shard counter
//! (`next_id`), so ids are unique across kinds and identical on every replica.
//! The node turns them into opaque external strings that also name the shard.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    )*};
}

id_type!(
    /// A venue with a seat layout.
    VenueId,
    /// An event at a venue; owns one seat inventory.
    EventId,
    /// A lease on a set of seats of one event.
    HoldId,
    /// A paid booking (created from a hold).
    BookingId,
    /// One seat of a booking.
    TicketId,
    /// A place in an event's waitlist.
    WaitlistId,
);

/// Milliseconds since the Unix epoch, as stamped on the log entry by the leader.
pub type Millis = u64;
