//! Shared by the benchmarks: a 50,000-seat stadium, a driver that applies
//! commands with fresh log indexes and request ids, and builders for the
//! states the benchmarks start from.
//!
//! Each bench binary uses only part of this module.
#![allow(dead_code)]

use std::hash::{Hash, Hasher};

use statemachine::{
    Applied, ApplyCtx, Command, DomainEvent, EventId, EventKind, EventSpec, HoldId, Limits, Millis, Op, Outcome,
    RowSpec, SectionSpec, Selection, State, VenueId, VenueSpec,
};

/// The benchmarks' clock starts here (2026-11-22T10:00:00Z).
pub(crate) const T0: Millis = 1_795_341_600_000;
pub(crate) const SEC: Millis = 1_000;
pub(crate) const HOUR: Millis = 3_600 * SEC;

/// Sections per category, in layout order (best first).
pub(crate) const CATEGORIES: [(&str, &str, u32); 3] = [("P", "premium", 4), ("R", "regular", 8), ("E", "economy", 8)];
pub(crate) const ROWS_PER_SECTION: u32 = 50;
pub(crate) const SEATS_PER_ROW: u32 = 50;
pub(crate) const SECTIONS: u32 = 20;
pub(crate) const ROWS: u32 = SECTIONS * ROWS_PER_SECTION;
pub(crate) const CAPACITY: u32 = ROWS * SEATS_PER_ROW;

/// Name of section `s` (0-based, layout order): `P1`..`P4`, `R1`..`R8`, `E1`..`E8`.
pub(crate) fn section_name(s: u32) -> String {
    let mut first = 0;
    for (prefix, _, count) in CATEGORIES {
        if s < first + count {
            return format!("{prefix}{}", s - first + 1);
        }
        first += count;
    }
    panic!("section {s} out of range")
}

/// Category name of section `s`.
pub(crate) fn section_category(s: u32) -> &'static str {
    let mut first = 0;
    for (_, category, count) in CATEGORIES {
        if s < first + count {
            return category;
        }
        first += count;
    }
    panic!("section {s} out of range")
}

/// Label of seat `number` (1-based) of global row `row` (0-based, layout order).
pub(crate) fn label(row: u32, number: u32) -> String {
    format!("{}-{}-{}", section_name(row / ROWS_PER_SECTION), row % ROWS_PER_SECTION + 1, number)
}

/// 20 sections of 50 rows of 50 seats: 4 premium, 8 regular, 8 economy.
pub(crate) fn stadium_spec() -> VenueSpec {
    VenueSpec {
        name: "Narendra Modi Stadium".into(),
        city: "Ahmedabad".into(),
        region: "ap-south".into(),
        sections: (0..SECTIONS)
            .map(|s| SectionSpec {
                name: section_name(s),
                category: section_category(s).into(),
                rows: (1..=ROWS_PER_SECTION).map(|r| RowSpec { label: r.to_string(), seats: SEATS_PER_ROW }).collect(),
            })
            .collect(),
        blocked_seats: vec![],
        accessible_seats: vec![],
    }
}

/// An event on sale from `T0`, starting 30 days later, with a hold lease of `hold_ttl_secs`.
pub(crate) fn event_spec(venue: VenueId, hold_ttl_secs: u32) -> EventSpec {
    EventSpec {
        venue,
        title: "India v Australia, 3rd ODI".into(),
        kind: EventKind::Sports,
        starts_at_ms: T0 + 30 * 24 * HOUR,
        genre: "cricket".into(),
        language: "en".into(),
        currency: "INR".into(),
        prices: vec![("premium".into(), 1_500_000), ("regular".into(), 450_000), ("economy".into(), 90_000)],
        sale_opens_at_ms: T0,
        sale_closes_at_ms: None,
        max_seats_per_hold: None,
        hold_ttl_secs: Some(hold_ttl_secs),
        refund_policy: None,
        waiting_room: None,
    }
}

/// Seats that changed state in these events: held, booked, released, expired
/// (and freed by a cancellation).
pub(crate) fn seat_ops(events: &[DomainEvent]) -> u64 {
    events
        .iter()
        .map(|e| match e {
            DomainEvent::SeatsHeld { seats, .. }
            | DomainEvent::SeatsReleased { seats, .. }
            | DomainEvent::SeatsExpired { seats, .. }
            | DomainEvent::SeatsBooked { seats, .. }
            | DomainEvent::BookingCancelled { seats, .. } => seats.len() as u64,
            _ => 0,
        })
        .sum()
}

/// Applies commands as a log would: every command gets the next index and a
/// request id never used before, so the exactly-once table never answers
/// in place of the state machine.
#[derive(Clone)]
pub(crate) struct Driver {
    pub(crate) state: State,
    pub(crate) index: u64,
    pub(crate) now: Millis,
    seq: u64,
    /// Commands applied since recording started.
    pub(crate) log: Vec<(Command, ApplyCtx)>,
    recording: bool,
    pub(crate) seat_ops: u64,
    pub(crate) rejected: u64,
    /// Digest of every result and domain event since recording started, to
    /// compare builds of the state machine.
    pub(crate) results_digest: u64,
}

impl Driver {
    pub(crate) fn new() -> Driver {
        Driver::with_limits(Limits::default())
    }

    pub(crate) fn with_limits(limits: Limits) -> Driver {
        Driver {
            state: State::new(limits),
            index: 0,
            now: T0,
            seq: 0,
            log: Vec::new(),
            recording: false,
            seat_ops: 0,
            rejected: 0,
            results_digest: 0,
        }
    }

    pub(crate) fn apply(&mut self, client: &str, op: Op) -> Applied {
        self.index += 1;
        self.seq += 1;
        let cmd = Command::new(client, format!("r{}", self.seq), op);
        let ctx = ApplyCtx { index: self.index, time_ms: self.now };
        let applied = self.state.apply(&cmd, ctx);
        assert!(!applied.replayed, "a fresh request id was answered from the exactly-once table");
        self.seat_ops += seat_ops(&applied.events);
        self.rejected += u64::from(applied.result.is_err());
        if self.recording {
            self.log.push((cmd, ctx));
            let mut h = std::hash::DefaultHasher::new();
            (self.results_digest, format!("{applied:?}")).hash(&mut h);
            self.results_digest = h.finish();
        }
        applied
    }

    pub(crate) fn ok(&mut self, client: &str, op: Op) -> Outcome {
        let applied = self.apply(client, op.clone());
        applied.result.unwrap_or_else(|e| panic!("{op:?} was rejected: {e:?}"))
    }

    /// Holds exactly these seats for `user`.
    pub(crate) fn hold(&mut self, event: EventId, user: &str, seats: Vec<String>) -> HoldId {
        match self.ok(user, Op::Hold { event, user: user.into(), selection: Selection::Seats(seats) }) {
            Outcome::Held(receipt) => receipt.hold,
            o => panic!("{o:?}"),
        }
    }

    /// Pays for and confirms a hold.
    pub(crate) fn book(&mut self, hold: HoldId, user: &str) {
        let intent = format!("pi-{hold}");
        self.ok(user, Op::BeginPayment { hold, user: user.into(), intent: intent.clone() });
        match self.ok(user, Op::ConfirmHold { hold, user: user.into(), intent }) {
            Outcome::Booked(_) => {}
            o => panic!("{o:?}"),
        }
    }

    /// Starts recording commands into `log` with fresh counters.
    pub(crate) fn start_recording(&mut self) {
        self.recording = true;
        self.log.clear();
        self.seat_ops = 0;
        self.rejected = 0;
        self.results_digest = 0;
    }
}

/// A stadium venue with one event whose holds last `hold_ttl_secs`; the
/// clock is one hour into the sale.
pub(crate) fn stadium(hold_ttl_secs: u32) -> (Driver, EventId) {
    stadium_with(Limits::default(), hold_ttl_secs)
}

/// Like [`stadium`], with the given limits.
pub(crate) fn stadium_with(limits: Limits, hold_ttl_secs: u32) -> (Driver, EventId) {
    let mut d = Driver::with_limits(limits);
    let venue = match d.ok("ops", Op::CreateVenue(stadium_spec())) {
        Outcome::VenueCreated { venue, capacity } => {
            assert_eq!(capacity, CAPACITY);
            venue
        }
        o => panic!("{o:?}"),
    };
    let event = match d.ok("ops", Op::CreateEvent(event_spec(venue, hold_ttl_secs))) {
        Outcome::EventCreated { event } => event,
        o => panic!("{o:?}"),
    };
    d.now = T0 + HOUR;
    (d, event)
}

/// The seats of the stadium cut into blocks of at most `size` seats, row by
/// row, in layout order: (row, first seat number, seats).
pub(crate) fn blocks(size: u32) -> impl Iterator<Item = (u32, u32, u32)> {
    (0..ROWS).flat_map(move |row| {
        (0..SEATS_PER_ROW.div_ceil(size)).map(move |b| {
            let first = b * size + 1;
            (row, first, size.min(SEATS_PER_ROW - first + 1))
        })
    })
}

/// Labels of `count` seats of `row` from seat number `first`.
pub(crate) fn block_labels(row: u32, first: u32, count: u32) -> Vec<String> {
    (first..first + count).map(|n| label(row, n)).collect()
}

/// Holds `holds` disjoint blocks of 4 seats, one user each (`h0`, `h1`, ...),
/// from the front of the stadium. Returns (hold, user).
pub(crate) fn hold_blocks(d: &mut Driver, event: EventId, holds: usize) -> Vec<(HoldId, String)> {
    blocks(4)
        .filter(|&(_, _, n)| n == 4)
        .take(holds)
        .enumerate()
        .map(|(i, (row, first, n))| {
            let user = format!("h{i}");
            let hold = d.hold(event, &user, block_labels(row, first, n));
            (hold, user)
        })
        .collect()
}

/// Books every seat: blocks of 4 (and 2 at each row's end), one user each.
pub(crate) fn book_everything(d: &mut Driver, event: EventId) {
    for (i, (row, first, n)) in blocks(4).enumerate() {
        let user = format!("b{i}");
        let hold = d.hold(event, &user, block_labels(row, first, n));
        d.book(hold, &user);
    }
}

/// Holds every seat: blocks of 4 (and 2 at each row's end), one user each.
pub(crate) fn hold_everything(d: &mut Driver, event: EventId) {
    for (i, (row, first, n)) in blocks(4).enumerate() {
        d.hold(event, &format!("h{i}"), block_labels(row, first, n));
    }
}
