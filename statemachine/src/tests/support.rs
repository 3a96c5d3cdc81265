//! A test harness: a state, a log index and a clock that tests drive by hand.

use crate::*;

/// Start of the test clock: 2026-11-22T10:00:00Z.
pub(crate) const T0: Millis = 1_795_341_600_000;
pub(crate) const SEC: Millis = 1_000;
pub(crate) const HOUR: Millis = 3_600_000;

pub(crate) struct Harness {
    pub(crate) state: State,
    pub(crate) index: u64,
    pub(crate) now: Millis,
    request: u64,
    /// Every entry applied, for replaying the log on another replica.
    pub(crate) log: Vec<(Command, ApplyCtx)>,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub(crate) fn with_limits(limits: Limits) -> Self {
        Harness { state: State::new(limits), index: 0, now: T0, request: 0, log: Vec::new() }
    }

    pub(crate) fn advance(&mut self, ms: Millis) {
        self.now += ms;
    }

    /// Applies `op` from `client` with a fresh request id; checks invariants.
    pub(crate) fn run_as(&mut self, client: &str, op: Op) -> Applied {
        self.request += 1;
        let request = format!("r{}", self.request);
        self.run_keyed(client, &request, op)
    }

    /// Applies `op` with a fresh request id from client "c".
    pub(crate) fn run(&mut self, op: Op) -> Applied {
        self.run_as("c", op)
    }

    /// Applies `op` with the given idempotency key; checks invariants.
    pub(crate) fn run_keyed(&mut self, client: &str, request: &str, op: Op) -> Applied {
        self.index += 1;
        let cmd = Command::new(client, request, op);
        let ctx = ApplyCtx { index: self.index, time_ms: self.now };
        let applied = self.state.apply(&cmd, ctx);
        self.log.push((cmd, ctx));
        if let Err(v) = self.state.check_invariants() {
            panic!("{v} after {applied:?}");
        }
        applied
    }

    pub(crate) fn ok(&mut self, op: Op) -> Outcome {
        let applied = self.run(op.clone());
        match applied.result {
            Ok(o) => o,
            Err(e) => panic!("{op:?} was rejected: {e:?}"),
        }
    }

    pub(crate) fn err(&mut self, op: Op) -> Rejection {
        let before = self.state.snapshot();
        let applied = self.run(op.clone());
        match applied.result {
            Ok(o) => panic!("{op:?} succeeded: {o:?}"),
            Err(e) => {
                assert!(applied.events.is_empty(), "a rejection emitted events");
                assert_same_domain(&before, &self.state);
                e
            }
        }
    }

    /// A venue with a premium Floor (rows A, B of 10) and a regular Balcony
    /// (rows 1..=3 of 8). Floor-A-1 is blocked; Balcony-3-1 and -2 accessible.
    pub(crate) fn venue(&mut self) -> VenueId {
        match self.ok(Op::CreateVenue(small_venue())) {
            Outcome::VenueCreated { venue, .. } => venue,
            o => panic!("{o:?}"),
        }
    }

    /// An event on sale from T0 that starts 48 h later.
    pub(crate) fn event(&mut self, venue: VenueId) -> EventId {
        self.event_with(venue, |_| {})
    }

    pub(crate) fn event_with(&mut self, venue: VenueId, edit: impl FnOnce(&mut EventSpec)) -> EventId {
        let mut spec = event_spec(venue, self.now);
        edit(&mut spec);
        match self.ok(Op::CreateEvent(spec)) {
            Outcome::EventCreated { event } => event,
            o => panic!("{o:?}"),
        }
    }

    pub(crate) fn hold(&mut self, event: EventId, user: &str, seats: &[&str]) -> HoldReceipt {
        match self.ok(hold_op(event, user, seats)) {
            Outcome::Held(r) => r,
            o => panic!("{o:?}"),
        }
    }

    /// Pays for a hold with a fresh intent and confirms it.
    pub(crate) fn book(&mut self, hold: HoldId, user: &str) -> BookingReceipt {
        let intent = format!("pi-{}-{}", hold, self.index);
        self.ok(Op::BeginPayment { hold, user: user.into(), intent: intent.clone() });
        match self.ok(Op::ConfirmHold { hold, user: user.into(), intent }) {
            Outcome::Booked(r) => r,
            o => panic!("{o:?}"),
        }
    }

    pub(crate) fn counts(&self, event: EventId, category: &str) -> Counts {
        let view = self.state.event(event, self.now).expect("event");
        view.availability.iter().find(|(c, _)| c == category).expect("category").1
    }

    pub(crate) fn seat_status(&self, event: EventId, seat: &str) -> SeatStatus {
        let map = self.state.seat_map(event, self.now).expect("event");
        map.seats.iter().find(|s| s.seat_id == seat).expect("seat").status
    }
}

pub(crate) fn hold_op(event: EventId, user: &str, seats: &[&str]) -> Op {
    Op::Hold { event, user: user.into(), selection: Selection::Seats(seats.iter().map(|s| s.to_string()).collect()) }
}

pub(crate) fn best_op(event: EventId, user: &str, count: u32, category: &str, together: bool) -> Op {
    Op::Hold {
        event,
        user: user.into(),
        selection: Selection::Best { count, category: category.into(), together, accessible: false },
    }
}

pub(crate) fn small_venue() -> VenueSpec {
    VenueSpec {
        name: "Wankhede Arena".into(),
        city: "Mumbai".into(),
        region: "ap-south".into(),
        sections: vec![
            SectionSpec {
                name: "Floor".into(),
                category: "premium".into(),
                rows: vec![RowSpec { label: "A".into(), seats: 10 }, RowSpec { label: "B".into(), seats: 10 }],
            },
            SectionSpec {
                name: "Balcony".into(),
                category: "regular".into(),
                rows: (1..=3).map(|r| RowSpec { label: r.to_string(), seats: 8 }).collect(),
            },
        ],
        blocked_seats: vec!["Floor-A-1".into()],
        accessible_seats: vec!["Balcony-3-1".into(), "Balcony-3-2".into()],
    }
}

pub(crate) fn event_spec(venue: VenueId, now: Millis) -> EventSpec {
    EventSpec {
        venue,
        title: "Coldplay: Music of the Spheres".into(),
        kind: EventKind::Concert,
        starts_at_ms: now + 48 * HOUR,
        genre: "rock".into(),
        language: "en".into(),
        currency: "INR".into(),
        prices: vec![("premium".into(), 1_500_000), ("regular".into(), 450_000)],
        sale_opens_at_ms: now,
        sale_closes_at_ms: None,
        max_seats_per_hold: None,
        hold_ttl_secs: None,
        refund_policy: None,
        waiting_room: None,
    }
}

/// Asserts that `after` holds the same domain state as the snapshot
/// `before`, ignoring the log position and the clock (which every applied
/// entry advances) and the exactly-once table (which records rejections).
pub(crate) fn assert_same_domain(before: &[u8], after: &State) {
    let mut b = State::restore(before).expect("snapshot restores");
    let mut a = after.clone();
    b.p.last_index = 0;
    a.p.last_index = 0;
    b.p.clock_ms = 0;
    a.p.clock_ms = 0;
    b.p.dedup.clear();
    a.p.dedup.clear();
    b.ix.dedup_order.clear();
    a.ix.dedup_order.clear();
    b.ix.dedup_bytes = 0;
    a.ix.dedup_bytes = 0;
    assert!(a == b, "the state changed");
}

/// Helpers for the rule tests. They only combine the helpers above.
impl Harness {
    /// Like [`Harness::err`], with an explicit client and request id.
    pub(crate) fn err_keyed(&mut self, client: &str, request: &str, op: Op) -> Rejection {
        let before = self.state.snapshot();
        let applied = self.run_keyed(client, request, op.clone());
        match applied.result {
            Ok(o) => panic!("{op:?} succeeded: {o:?}"),
            Err(e) => {
                assert!(applied.events.is_empty(), "a rejection emitted events");
                assert!(!applied.replayed, "a fresh request was answered as a replay");
                assert_same_domain(&before, &self.state);
                e
            }
        }
    }

    /// Applies `op` expecting success; returns the outcome and its events.
    pub(crate) fn ok_fx(&mut self, op: Op) -> (Outcome, Vec<DomainEvent>) {
        let applied = self.run(op.clone());
        assert!(!applied.replayed, "a fresh request was answered as a replay");
        match applied.result {
            Ok(o) => (o, applied.events),
            Err(e) => panic!("{op:?} was rejected: {e:?}"),
        }
    }

    /// Creates a venue from `spec`.
    pub(crate) fn venue_with(&mut self, spec: VenueSpec) -> VenueId {
        match self.ok(Op::CreateVenue(spec)) {
            Outcome::VenueCreated { venue, .. } => venue,
            o => panic!("{o:?}"),
        }
    }

    /// An event at a [`rows_venue`] venue, priced 1000 per seat.
    pub(crate) fn rows_event(&mut self, rows: &[u32], edit: impl FnOnce(&mut EventSpec)) -> EventId {
        let venue = self.venue_with(rows_venue(rows));
        self.event_with(venue, |s| {
            s.prices = vec![("std".into(), 1_000)];
            edit(s)
        })
    }

    /// Holds the best seats of a category (not accessible-only).
    pub(crate) fn hold_best(
        &mut self,
        event: EventId,
        user: &str,
        count: u32,
        category: &str,
        together: bool,
    ) -> HoldReceipt {
        match self.ok(best_op(event, user, count, category, together)) {
            Outcome::Held(r) => r,
            o => panic!("{o:?}"),
        }
    }

    /// Records a payment attempt; returns the reserved booking id.
    pub(crate) fn begin(&mut self, hold: HoldId, user: &str, intent: &str) -> BookingId {
        match self.ok(Op::BeginPayment { hold, user: user.into(), intent: intent.into() }) {
            Outcome::PaymentStarted { booking, .. } => booking,
            o => panic!("{o:?}"),
        }
    }

    /// Joins a waitlist; returns the entry and its position.
    pub(crate) fn join(&mut self, event: EventId, user: &str, count: u32, category: &str) -> (WaitlistId, u32) {
        match self.ok(Op::JoinWaitlist { event, user: user.into(), count, category: category.into() }) {
            Outcome::WaitlistJoined { waitlist, position } => (waitlist, position),
            o => panic!("{o:?}"),
        }
    }

    /// Runs an expiry sweep; returns the expired holds, `more` and the events.
    pub(crate) fn sweep(&mut self, holds_max: u32) -> (Vec<HoldId>, bool, Vec<DomainEvent>) {
        match self.ok_fx(Op::ExpireHolds { holds_max }) {
            (Outcome::Swept { holds, more }, fx) => (holds, more, fx),
            (o, _) => panic!("{o:?}"),
        }
    }

    /// The status of a hold as readers see it now.
    pub(crate) fn hold_status(&self, hold: HoldId) -> HoldStatus {
        self.state.hold(hold, self.now).expect("hold").status
    }
}

/// A venue with one section `S` of category `std` and rows `1..` of the given sizes.
pub(crate) fn rows_venue(rows: &[u32]) -> VenueSpec {
    VenueSpec {
        name: "Prithvi Theatre".into(),
        city: "Mumbai".into(),
        region: "ap-south".into(),
        sections: vec![SectionSpec {
            name: "S".into(),
            category: "std".into(),
            rows: rows.iter().enumerate().map(|(i, &n)| RowSpec { label: (i + 1).to_string(), seats: n }).collect(),
        }],
        blocked_seats: vec![],
        accessible_seats: vec![],
    }
}

/// Confirms a hold with an intent begun before.
pub(crate) fn confirm_op(hold: HoldId, user: &str, intent: &str) -> Op {
    Op::ConfirmHold { hold, user: user.into(), intent: intent.into() }
}

/// Owned seat labels.
pub(crate) fn labels(seats: &[&str]) -> Vec<String> {
    seats.iter().map(|s| s.to_string()).collect()
}
