//! Reads a gateway asks of a group's replica, sent over gRPC. A query names
//! what to read; the replica answers at its read time, after a ReadIndex
//! round when the read must be linearizable.

use serde::{Deserialize, Serialize};
use statemachine::{
    BookingId, BookingView, EventId, EventView, HoldId, HoldView, IntentView, Millis, QueueAudit, QueueView, SeatMap,
    State, TicketId, TicketView, VenueId, VenueView, WaitlistId, WaitlistView,
};

/// Events one [`Query::Events`] page returns at most.
pub const EVENTS_PAGE_MAX: u32 = 500;
/// Intents one [`Query::PaymentsNeedingAction`] returns at most.
pub const INTENTS_PAGE_MAX: u32 = 1_000;
/// Entries one [`Query::QueueAudit`] page returns at most.
pub const AUDIT_PAGE_MAX: u32 = 10_000;

/// What to read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// One venue.
    Venue(VenueId),
    /// One event with its availability.
    Event(EventId),
    /// Events with ids above `after`, in id order, at most `limit` (capped).
    Events {
        /// Exclusive lower bound on the id.
        after: Option<EventId>,
        /// Page size.
        limit: u32,
    },
    /// An event's seat map.
    SeatMap(EventId),
    /// One hold.
    Hold(HoldId),
    /// A user's live holds.
    UserHolds(String),
    /// One booking.
    Booking(BookingId),
    /// A user's bookings.
    UserBookings(String),
    /// One ticket.
    Ticket(TicketId),
    /// One waitlist entry.
    Waitlist(WaitlistId),
    /// Payment intents that are pending since before the time given, or
    /// owe a refund (for reconciliation).
    PaymentsNeedingAction {
        /// Pending intents updated before this time.
        pending_before_ms: Millis,
        /// Page size (capped).
        max: u32,
        /// Intents after this id (exclusive), to page through all of them.
        after: Option<String>,
    },
    /// The replica's applied index and state hash (convergence checks).
    Fingerprint,
    /// An event's waiting room, with one user's place if given.
    Queue {
        /// The event.
        event: EventId,
        /// The user.
        user: Option<String>,
    },
    /// A page of a waiting room's pre-queue draw.
    QueueAudit {
        /// The event.
        event: EventId,
        /// Positions after this one.
        after: u64,
        /// Page size (capped).
        limit: u32,
    },
}

/// The answer to a [`Query`], variant for variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// [`Query::Venue`].
    Venue(Option<VenueView>),
    /// [`Query::Event`].
    Event(Option<EventView>),
    /// [`Query::Events`]: the page and whether more follow.
    Events {
        /// The page.
        events: Vec<EventView>,
        /// More events follow the last one.
        more: bool,
    },
    /// [`Query::SeatMap`].
    SeatMap(Option<SeatMap>),
    /// [`Query::Hold`].
    Hold(Option<HoldView>),
    /// [`Query::UserHolds`].
    Holds(Vec<HoldView>),
    /// [`Query::Booking`].
    Booking(Option<BookingView>),
    /// [`Query::UserBookings`].
    Bookings(Vec<BookingView>),
    /// [`Query::Ticket`].
    Ticket(Option<TicketView>),
    /// [`Query::Waitlist`].
    Waitlist(Option<WaitlistView>),
    /// [`Query::PaymentsNeedingAction`].
    Intents(Vec<IntentView>),
    /// [`Query::Fingerprint`].
    Fingerprint {
        /// State index of the last applied command.
        applied_index: u64,
        /// Hash of the state.
        state_hash: u64,
    },
    /// [`Query::Queue`].
    Queue(Option<QueueView>),
    /// [`Query::QueueAudit`].
    QueueAudit(Option<QueueAudit>),
}

/// A read's answer with the index of the state it was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReply {
    /// The answer.
    pub answer: Answer,
    /// State index of the last command applied to the state that answered.
    pub applied_index: u64,
    /// The entry time of that state (reads are made at or after it).
    pub read_at_ms: Millis,
}

/// Answers `query` from `state` at time `now`.
pub fn answer(state: &State, query: &Query, now: Millis) -> Answer {
    match query {
        Query::Venue(id) => Answer::Venue(state.venue(*id)),
        Query::Event(id) => Answer::Event(state.event(*id, now)),
        Query::Events { after, limit } => {
            let limit = (*limit).clamp(1, EVENTS_PAGE_MAX) as usize;
            let mut ids = state.event_ids().filter(|id| after.is_none_or(|a| *id > a));
            let page: Vec<EventId> = ids.by_ref().take(limit).collect();
            let more = ids.next().is_some();
            Answer::Events { events: page.into_iter().filter_map(|id| state.event(id, now)).collect(), more }
        }
        Query::SeatMap(id) => Answer::SeatMap(state.seat_map(*id, now)),
        Query::Hold(id) => Answer::Hold(state.hold(*id, now)),
        Query::UserHolds(user) => Answer::Holds(state.user_holds(user, now)),
        Query::Booking(id) => Answer::Booking(state.booking(*id, now)),
        Query::UserBookings(user) => Answer::Bookings(state.user_bookings(user, now)),
        Query::Ticket(id) => Answer::Ticket(state.ticket(*id)),
        Query::Waitlist(id) => Answer::Waitlist(state.waitlist_entry(*id)),
        Query::PaymentsNeedingAction { pending_before_ms, max, after } => {
            Answer::Intents(state.payments_needing_action(
                *pending_before_ms,
                after.as_deref(),
                (*max).clamp(1, INTENTS_PAGE_MAX) as usize,
            ))
        }
        Query::Fingerprint => Answer::Fingerprint { applied_index: state.last_index(), state_hash: state.state_hash() },
        Query::Queue { event, user } => Answer::Queue(state.queue(*event, user.as_deref(), now)),
        Query::QueueAudit { event, after, limit } => {
            Answer::QueueAudit(state.queue_audit(*event, *after, (*limit).clamp(1, AUDIT_PAGE_MAX) as usize))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statemachine::{ApplyCtx, Command, Limits, Op, RowSpec, SectionSpec, VenueSpec};

    fn state_with_venue() -> State {
        let mut s = State::new(Limits::default());
        let spec = VenueSpec {
            name: "Hall".into(),
            city: "Pune".into(),
            region: "ap-south".into(),
            sections: vec![SectionSpec {
                name: "Floor".into(),
                category: "regular".into(),
                rows: vec![RowSpec { label: "A".into(), seats: 4 }],
            }],
            blocked_seats: vec![],
            accessible_seats: vec![],
        };
        let applied = s.apply(&Command::new("admin", "v", Op::CreateVenue(spec)), ApplyCtx { index: 1, time_ms: 10 });
        assert!(applied.result.is_ok());
        s
    }

    #[test]
    fn answers_match_the_state_and_round_trip() {
        let s = state_with_venue();
        let venue = s.venue_ids().next().unwrap();
        let a = answer(&s, &Query::Venue(venue), 10);
        assert!(matches!(&a, Answer::Venue(Some(v)) if v.capacity == 4));
        let bytes = postcard::to_allocvec(&a).unwrap();
        assert_eq!(postcard::from_bytes::<Answer>(&bytes).unwrap(), a);
        assert_eq!(answer(&s, &Query::Hold(HoldId(99)), 10), Answer::Hold(None));
        assert_eq!(
            answer(&s, &Query::Fingerprint, 10),
            Answer::Fingerprint { applied_index: 1, state_hash: s.state_hash() }
        );
    }

    #[test]
    fn event_pages_are_bounded() {
        let s = state_with_venue();
        let Answer::Events { events, more } = answer(&s, &Query::Events { after: None, limit: 0 }, 10) else {
            panic!("wrong answer kind")
        };
        assert!(events.is_empty());
        assert!(!more);
    }
}
