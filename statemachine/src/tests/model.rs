//! Model-based property tests: random command sequences are applied to the
//! state machine and to a simple reference model, and after every step the
//! two must agree and every invariant must hold.
//!
//! The model predicts the outcome of every command whose result does not
//! depend on a seat-choosing policy. Where the state machine chooses seats
//! (best-available, waitlist offers), the model checks the choice against
//! the rules (free, right category, one row when possible, no avoidable
//! orphan, the waiter's count) and then adopts it from the domain events.
//! Every domain event is checked to be legal in the model before it is
//! applied there.

use std::collections::BTreeMap;
use std::mem::discriminant;

use proptest::prelude::*;

use super::support::{self, assert_same_domain, HOUR, SEC, T0};
use crate::*;

const TTL_SECS: u32 = 60;
const MAX_PER_HOLD: u32 = 4;
const USERS: usize = 4;
/// Two sections: "gold" rows of 5 and "silver" one row of 6 (B-1).
const ROWS: [(&str, &str, &str, u32); 3] = [("A", "1", "gold", 5), ("A", "2", "gold", 5), ("B", "1", "silver", 6)];
const CAPACITY: usize = 16;
const BLOCKED: u32 = 0; // A-1-1
const ACCESSIBLE: [u32; 2] = [10, 11]; // B-1-1, B-1-2

fn label(seat: u32) -> String {
    let mut first = 0;
    for (section, row, _, n) in ROWS {
        if seat < first + n {
            return format!("{section}-{row}-{}", seat - first + 1);
        }
        first += n;
    }
    format!("Z-9-{seat}") // names no seat
}

fn row_of(seat: u32) -> usize {
    let mut first = 0;
    for (i, (_, _, _, n)) in ROWS.iter().enumerate() {
        if seat < first + n {
            return i;
        }
        first += n;
    }
    unreachable!()
}

fn category_of(seat: u32) -> &'static str {
    ROWS[row_of(seat)].2
}

fn user(u: usize) -> String {
    format!("u{u}")
}

#[derive(Clone, Debug)]
enum Action {
    Advance(u32),
    HoldSeats { event: usize, user: usize, seats: Vec<u32> },
    HoldBest { event: usize, user: usize, count: u32, category: usize, together: bool, accessible: bool },
    Release { user: usize, pick: usize },
    Extend { user: usize, pick: usize, secs: u32 },
    Pay { user: usize, pick: usize },
    Confirm { user: usize, pick: usize },
    Decline { pick: usize, release: bool },
    Refund { pick: usize },
    Cancel { user: usize, pick: usize },
    Transfer { pick: usize, to: usize },
    CheckIn { pick: usize, stale: bool },
    Join { event: usize, user: usize, count: u32, category: usize },
    Leave { user: usize, pick: usize },
    Sweep { max: u32 },
    Replay { pick: usize },
    Restore,
}

fn action() -> impl Strategy<Value = Action> {
    let u = 0..USERS;
    prop_oneof![
        3 => (0u32..90).prop_map(Action::Advance),
        6 => (0..2usize, u.clone(), prop::collection::vec(0u32..17, 0..6))
            .prop_map(|(event, user, seats)| Action::HoldSeats { event, user, seats }),
        4 => (0..2usize, u.clone(), 0u32..6, 0..3usize, any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(event, user, count, category, together, accessible)| Action::HoldBest {
                event, user, count, category, together, accessible
            }),
        2 => (u.clone(), any::<usize>()).prop_map(|(user, pick)| Action::Release { user, pick }),
        1 => (u.clone(), any::<usize>(), 0u32..90).prop_map(|(user, pick, secs)| Action::Extend { user, pick, secs }),
        4 => (u.clone(), any::<usize>()).prop_map(|(user, pick)| Action::Pay { user, pick }),
        4 => (u.clone(), any::<usize>()).prop_map(|(user, pick)| Action::Confirm { user, pick }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, release)| Action::Decline { pick, release }),
        1 => any::<usize>().prop_map(|pick| Action::Refund { pick }),
        2 => (u.clone(), any::<usize>()).prop_map(|(user, pick)| Action::Cancel { user, pick }),
        1 => (any::<usize>(), u.clone()).prop_map(|(pick, to)| Action::Transfer { pick, to }),
        1 => (any::<usize>(), prop::bool::weighted(0.2)).prop_map(|(pick, stale)| Action::CheckIn { pick, stale }),
        2 => (0..2usize, u.clone(), 0u32..4, 0..2usize)
            .prop_map(|(event, user, count, category)| Action::Join { event, user, count, category }),
        1 => (u.clone(), any::<usize>()).prop_map(|(user, pick)| Action::Leave { user, pick }),
        1 => (0u32..4).prop_map(|max| Action::Sweep { max }),
        2 => any::<usize>().prop_map(|pick| Action::Replay { pick }),
        1 => Just(Action::Restore),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seat {
    Free,
    Blocked,
    Held(HoldId),
    Booked(BookingId),
}

#[derive(Clone, Debug)]
struct MHold {
    event: usize,
    user: String,
    seats: Vec<u32>,
    expires: Millis,
    created: Millis,
    extensions: u32,
    state: HoldState,
    price: u64,
    intents: u32,
}

#[derive(Clone, Debug)]
struct MBooking {
    event: usize,
    user: String,
    seats: Vec<u32>,
    tickets: Vec<TicketId>,
    cancelled: bool,
    price: u64,
}

#[derive(Clone, Debug)]
struct MTicket {
    booking: BookingId,
    holder: String,
    version: u32,
    used_at: Option<Millis>,
    cancelled: bool,
}

#[derive(Clone, Debug)]
struct MIntent {
    hold: HoldId,
    state: IntentState,
}

#[derive(Clone, Debug)]
struct MWait {
    id: WaitlistId,
    user: String,
    count: u32,
    category: &'static str,
}

struct Model {
    events: [EventId; 2],
    starts: [Millis; 2],
    seats: [Vec<Seat>; 2],
    holds: BTreeMap<HoldId, MHold>,
    bookings: BTreeMap<BookingId, MBooking>,
    tickets: BTreeMap<TicketId, MTicket>,
    intents: BTreeMap<String, MIntent>,
    waitlist: [Vec<MWait>; 2],
    next_intent: u64,
}

impl Model {
    fn event_index(&self, event: EventId) -> usize {
        self.events.iter().position(|&e| e == event).expect("known event")
    }

    fn live(&self, hold: &MHold, now: Millis) -> bool {
        hold.state == HoldState::Active && hold.expires > now
    }

    /// The status of a seat as a reader at `now` sees it.
    fn effective(&self, event: usize, seat: u32, now: Millis) -> Seat {
        match self.seats[event][seat as usize] {
            Seat::Held(h) if !self.live(&self.holds[&h], now) => Seat::Free,
            other => other,
        }
    }

    fn live_hold_of(&self, event: usize, user: &str, now: Millis) -> Option<HoldId> {
        self.holds.iter().find(|(_, h)| h.event == event && h.user == user && self.live(h, now)).map(|(id, _)| *id)
    }

    fn free_count(&self, event: usize, category: &str, accessible: bool, now: Millis) -> u32 {
        (0..CAPACITY as u32)
            .filter(|&s| category_of(s) == category && (!accessible || ACCESSIBLE.contains(&s)))
            .filter(|&s| self.effective(event, s, now) == Seat::Free)
            .count() as u32
    }

    /// Longest run of eligible free seats in any row.
    fn longest_run(&self, event: usize, category: &str, accessible: bool, now: Millis) -> u32 {
        let mut best = 0;
        let mut run = 0;
        let mut prev_row = usize::MAX;
        for s in 0..CAPACITY as u32 {
            if row_of(s) != prev_row {
                run = 0;
                prev_row = row_of(s);
            }
            let ok = category_of(s) == category
                && (!accessible || ACCESSIBLE.contains(&s))
                && self.effective(event, s, now) == Seat::Free;
            run = if ok { run + 1 } else { 0 };
            best = best.max(run);
        }
        best
    }

    fn price(&self, seats: &[u32]) -> u64 {
        seats.iter().map(|&s| if category_of(s) == "gold" { 5_000 } else { 2_000 }).sum()
    }

    /// Applies one domain event, checking it is legal.
    fn apply_event(&mut self, ev: &DomainEvent, now: Millis, state: &State) {
        let seat_of = |label: &str| (0..CAPACITY as u32).find(|&s| support_label(s) == label).expect("known label");
        match ev {
            DomainEvent::SeatsHeld { event, hold, user, seats, origin } => {
                let e = self.event_index(*event);
                let seats: Vec<u32> = seats.iter().map(|l| seat_of(l)).collect();
                for &s in &seats {
                    assert_eq!(self.effective(e, s, now), Seat::Free, "held a seat that was not free: {}", label(s));
                    self.seats[e][s as usize] = Seat::Held(*hold);
                }
                assert!(self.live_hold_of(e, user, now).is_none(), "second live hold for {user}");
                let view = state.hold(*hold, now).expect("new hold is visible");
                assert_eq!(view.expires_at_ms, now + u64::from(TTL_SECS) * SEC);
                assert_eq!(view.origin, *origin);
                self.holds.insert(
                    *hold,
                    MHold {
                        event: e,
                        user: user.clone(),
                        price: self.price(&seats),
                        seats,
                        expires: view.expires_at_ms,
                        created: now,
                        extensions: 0,
                        state: HoldState::Active,
                        intents: 0,
                    },
                );
            }
            DomainEvent::SeatsReleased { hold, seats, .. } | DomainEvent::SeatsExpired { hold, seats, .. } => {
                let expired = matches!(ev, DomainEvent::SeatsExpired { .. });
                let h = self.holds.get_mut(hold).expect("released a known hold");
                assert_eq!(h.state, HoldState::Active, "released a hold that was not live");
                if expired {
                    assert!(h.expires <= now, "expired a hold before its lease ran out");
                } else {
                    assert!(h.expires > now, "released (not expired) a hold whose lease ran out");
                }
                h.state = if expired { HoldState::Expired } else { HoldState::Released };
                let e = h.event;
                let expected: Vec<String> = h.seats.iter().map(|&s| label(s)).collect();
                assert_eq!(&expected, seats);
                for &s in &h.seats.clone() {
                    assert_eq!(self.seats[e][s as usize], Seat::Held(*hold));
                    self.seats[e][s as usize] = Seat::Free;
                }
            }
            DomainEvent::SeatsBooked { event, booking, user, seats } => {
                let e = self.event_index(*event);
                let view = state.booking(*booking, now).expect("booking visible");
                let h = self.holds.get_mut(&view.hold).expect("booked from a known hold");
                assert!(h.state == HoldState::Active && h.expires > now, "booked a hold that was not live");
                assert_eq!(&h.user, user);
                let expected: Vec<String> = h.seats.iter().map(|&s| label(s)).collect();
                assert_eq!(&expected, seats);
                h.state = HoldState::Confirmed;
                let hold_seats = h.seats.clone();
                for &s in &hold_seats {
                    assert_eq!(self.seats[e][s as usize], Seat::Held(view.hold));
                    self.seats[e][s as usize] = Seat::Booked(*booking);
                }
                for (t, _) in &view.tickets {
                    self.tickets.insert(
                        *t,
                        MTicket {
                            booking: *booking,
                            holder: user.clone(),
                            version: 1,
                            used_at: None,
                            cancelled: false,
                        },
                    );
                }
                self.bookings.insert(
                    *booking,
                    MBooking {
                        event: e,
                        user: user.clone(),
                        price: self.price(&hold_seats),
                        seats: hold_seats,
                        tickets: view.tickets.iter().map(|(t, _)| *t).collect(),
                        cancelled: false,
                    },
                );
            }
            DomainEvent::BookingCancelled { booking, seats, .. } => {
                let b = self.bookings.get_mut(booking).expect("known booking");
                assert!(!b.cancelled);
                b.cancelled = true;
                let expected: Vec<String> = b.seats.iter().map(|&s| label(s)).collect();
                assert_eq!(&expected, seats);
                for &s in &b.seats {
                    assert_eq!(self.seats[b.event][s as usize], Seat::Booked(*booking));
                    self.seats[b.event][s as usize] = Seat::Free;
                }
                for t in &b.tickets {
                    self.tickets.get_mut(t).expect("known ticket").cancelled = true;
                }
            }
            DomainEvent::WaitlistOffered { event, waitlist, user, hold } => {
                let e = self.event_index(*event);
                let pos = self.waitlist[e].iter().position(|w| w.id == *waitlist).expect("offer to a waiting user");
                let entry = self.waitlist[e].remove(pos);
                assert_eq!(&entry.user, user);
                let h = &self.holds[hold];
                assert_eq!(h.seats.len() as u32, entry.count, "offer of the wrong size");
                assert!(h.seats.iter().all(|&s| category_of(s) == entry.category), "offer in the wrong category");
                // FIFO: no earlier entry could have been served by these seats.
                for earlier in &self.waitlist[e][..pos] {
                    let served_instead = earlier.category == entry.category
                        && earlier.count <= entry.count
                        && self.live_hold_of(e, &earlier.user, now).is_none();
                    assert!(!served_instead, "waitlist offer skipped an earlier fitting entry");
                }
            }
            DomainEvent::RefundDue { intent, .. } => {
                let i = self.intents.get_mut(intent).expect("refund owed on a known intent");
                // Owed back: a charge that became no booking (also one
                // confirmed after its intent was failed), or a cancelled
                // booking's payment.
                assert!(
                    matches!(i.state, IntentState::Pending | IntentState::Declined | IntentState::Captured),
                    "refund owed on {i:?}"
                );
                i.state = IntentState::RefundDue;
            }
            DomainEvent::TicketTransferred { .. }
            | DomainEvent::TicketCheckedIn { .. }
            | DomainEvent::VenueCreated { .. }
            | DomainEvent::EventCreated { .. } => {}
        }
    }
}

fn support_label(seat: u32) -> String {
    label(seat)
}

struct Run {
    h: support::Harness,
    m: Model,
    history: Vec<(String, String, Op, Applied)>,
    request: u64,
    pending: Vec<DomainEvent>,
}

impl Run {
    fn new() -> Run {
        let mut h = support::Harness::new();
        let venue = match h.ok(Op::CreateVenue(VenueSpec {
            name: "Model Hall".into(),
            city: "Pune".into(),
            region: "ap-south".into(),
            sections: vec![
                SectionSpec {
                    name: "A".into(),
                    category: "gold".into(),
                    rows: vec![RowSpec { label: "1".into(), seats: 5 }, RowSpec { label: "2".into(), seats: 5 }],
                },
                SectionSpec {
                    name: "B".into(),
                    category: "silver".into(),
                    rows: vec![RowSpec { label: "1".into(), seats: 6 }],
                },
            ],
            blocked_seats: vec![label(BLOCKED)],
            accessible_seats: ACCESSIBLE.iter().map(|&s| label(s)).collect(),
        })) {
            Outcome::VenueCreated { venue, .. } => venue,
            o => panic!("{o:?}"),
        };
        // Event 0 starts in two days; event 1 starts three hours in, so runs
        // cross its refund tiers and the end of its sale.
        let starts = [T0 + 48 * HOUR, T0 + 3 * HOUR];
        let mut events = [EventId(0); 2];
        for (i, start) in starts.iter().enumerate() {
            events[i] = h.event_with(venue, |s| {
                s.starts_at_ms = *start;
                s.prices = vec![("gold".into(), 5_000), ("silver".into(), 2_000)];
                s.hold_ttl_secs = Some(TTL_SECS);
                s.max_seats_per_hold = Some(MAX_PER_HOLD);
            });
        }
        let mut seats = vec![Seat::Free; CAPACITY];
        seats[BLOCKED as usize] = Seat::Blocked;
        let m = Model {
            events,
            starts,
            seats: [seats.clone(), seats],
            holds: BTreeMap::new(),
            bookings: BTreeMap::new(),
            tickets: BTreeMap::new(),
            intents: BTreeMap::new(),
            waitlist: [Vec::new(), Vec::new()],
            next_intent: 0,
        };
        Run { h, m, history: Vec::new(), request: 0, pending: Vec::new() }
    }

    fn pick<T: Copy>(items: &[T], pick: usize) -> Option<T> {
        if items.is_empty() {
            None
        } else {
            Some(items[pick % items.len()])
        }
    }

    fn send(&mut self, client: &str, op: Op) -> Applied {
        self.request += 1;
        let request = format!("q{}", self.request);
        let applied = self.h.run_keyed(client, &request, op.clone());
        assert!(!applied.replayed);
        self.history.push((client.to_string(), request, op, applied.clone()));
        // The state machine first lets time pass on the event (expiries and
        // the waitlist offers they cause), then does what was asked. The
        // model does the same: predictions are made after the leading
        // time-driven events, and the rest is applied by `flush`.
        let now = self.h.now;
        let lead = applied.events.iter().take_while(|e| e.is_time_driven()).count();
        for ev in &applied.events[..lead] {
            self.m.apply_event(ev, now, &self.h.state);
        }
        self.pending = applied.events[lead..].to_vec();
        applied
    }

    fn flush(&mut self) {
        let now = self.h.now;
        for ev in std::mem::take(&mut self.pending) {
            self.m.apply_event(&ev, now, &self.h.state);
        }
    }

    fn on_sale(&self, e: usize) -> bool {
        self.h.now < self.m.starts[e]
    }

    fn step(&mut self, action: &Action) {
        self.step_inner(action);
        self.flush();
    }

    fn step_inner(&mut self, action: &Action) {
        let now = self.h.now;
        match action.clone() {
            Action::Advance(secs) => self.h.advance(u64::from(secs) * SEC),
            Action::HoldSeats { event, user: u, seats } => {
                let labels: Vec<String> = seats.iter().map(|&s| label(s)).collect();
                let op = Op::Hold { event: self.m.events[event], user: user(u), selection: Selection::Seats(labels) };
                let applied = self.send(&user(u), op);
                let mut distinct = seats.clone();
                distinct.sort_unstable();
                distinct.dedup();
                let expect: Result<(), Rejection> = if seats.is_empty() || seats.len() > MAX_PER_HOLD as usize {
                    if seats.is_empty() {
                        Err(Rejection::InvalidSeats { unknown: vec![], duplicate: vec![] })
                    } else {
                        Err(Rejection::TooManySeats { max: MAX_PER_HOLD })
                    }
                } else if distinct.len() != seats.len() || seats.iter().any(|&s| s as usize >= CAPACITY) {
                    Err(Rejection::InvalidSeats { unknown: vec![], duplicate: vec![] })
                } else if !self.on_sale(event) {
                    Err(Rejection::NotOnSale)
                } else if let Some(hold) = self.m.live_hold_of(event, &user(u), now) {
                    Err(Rejection::HoldLimit { hold })
                } else {
                    let taken: Vec<String> = distinct
                        .iter()
                        .filter(|&&s| self.m.effective(event, s, now) != Seat::Free)
                        .map(|&s| label(s))
                        .collect();
                    if taken.is_empty() {
                        Ok(())
                    } else {
                        Err(Rejection::SeatsUnavailable { seats: taken })
                    }
                };
                match (&expect, &applied.result) {
                    (Ok(()), Ok(Outcome::Held(r))) => {
                        assert_eq!(r.seats, distinct.iter().map(|&s| label(s)).collect::<Vec<_>>());
                        assert_eq!(r.total_price, self.m.price(&distinct));
                    }
                    (Err(Rejection::SeatsUnavailable { seats: want }), Err(Rejection::SeatsUnavailable { seats })) => {
                        assert_eq!(want, seats, "a conflict must name every unavailable seat");
                    }
                    (Err(Rejection::HoldLimit { hold: want }), Err(Rejection::HoldLimit { hold })) => {
                        assert_eq!(want, hold)
                    }
                    (Err(want), Err(got)) => assert_eq!(discriminant(want), discriminant(got), "{want:?} vs {got:?}"),
                    (want, got) => panic!("expected {want:?}, got {got:?}"),
                }
            }
            Action::HoldBest { event, user: u, count, category, together, accessible } => {
                let cat = ["gold", "silver", "platinum"][category];
                let op = Op::Hold {
                    event: self.m.events[event],
                    user: user(u),
                    selection: Selection::Best { count, category: cat.into(), together, accessible },
                };
                let applied = self.send(&user(u), op);
                let free = if category < 2 { self.m.free_count(event, cat, accessible, now) } else { 0 };
                let run = if category < 2 { self.m.longest_run(event, cat, accessible, now) } else { 0 };
                let expect: Result<(), Rejection> = if count == 0 {
                    Err(Rejection::InvalidSeats { unknown: vec![], duplicate: vec![] })
                } else if count > MAX_PER_HOLD {
                    Err(Rejection::TooManySeats { max: MAX_PER_HOLD })
                } else if category == 2 {
                    Err(Rejection::UnknownCategory(cat.into()))
                } else if !self.on_sale(event) {
                    Err(Rejection::NotOnSale)
                } else if let Some(hold) = self.m.live_hold_of(event, &user(u), now) {
                    Err(Rejection::HoldLimit { hold })
                } else if free < count {
                    Err(Rejection::SoldOut)
                } else if together && run < count {
                    Err(Rejection::NotTogether { count })
                } else {
                    Ok(())
                };
                match (&expect, &applied.result) {
                    (Ok(()), Ok(Outcome::Held(r))) => {
                        let seats: Vec<u32> =
                            r.seats.iter().map(|l| (0..CAPACITY as u32).find(|&s| label(s) == *l).unwrap()).collect();
                        assert_eq!(seats.len() as u32, count);
                        assert!(seats.iter().all(|&s| category_of(s) == cat));
                        if accessible {
                            assert!(seats.iter().all(|s| ACCESSIBLE.contains(s)));
                        }
                        if run >= count {
                            // One row, adjacent, whenever that is possible.
                            assert!(seats.windows(2).all(|w| w[1] == w[0] + 1 && row_of(w[0]) == row_of(w[1])));
                        }
                    }
                    (Err(want), Err(got)) => assert_eq!(discriminant(want), discriminant(got), "{want:?} vs {got:?}"),
                    (want, got) => panic!("expected {want:?}, got {got:?} (free {free}, run {run})"),
                }
            }
            Action::Release { user: u, pick } => {
                let ids: Vec<HoldId> = self.m.holds.keys().copied().collect();
                let hold = Self::pick(&ids, pick).unwrap_or(HoldId(999_999));
                let applied = self.send(&user(u), Op::ReleaseHold { hold, user: user(u) });
                let expect = match self.m.holds.get(&hold) {
                    None => Err(Rejection::HoldNotFound),
                    Some(h) if h.user != user(u) => Err(Rejection::NotOwner),
                    Some(h) if h.state == HoldState::Confirmed => Err(Rejection::HoldConfirmed),
                    Some(_) => Ok(Outcome::Released { hold }),
                };
                assert_eq!(expect, applied.result);
            }
            Action::Extend { user: u, pick, secs } => {
                let ids: Vec<HoldId> = self.m.holds.keys().copied().collect();
                let hold = Self::pick(&ids, pick).unwrap_or(HoldId(999_999));
                let applied = self.send(&user(u), Op::ExtendHold { hold, user: user(u), secs });
                let Some(h) = self.m.holds.get(&hold).cloned() else {
                    assert_eq!(applied.result, Err(Rejection::HoldNotFound));
                    return;
                };
                let live = self.m.live(&h, now);
                match &applied.result {
                    Ok(Outcome::Extended { expires_at_ms, .. }) => {
                        assert!(h.user == user(u) && live && secs > 0 && secs <= TTL_SECS);
                        assert!(h.extensions < Limits::default().hold_extensions_max);
                        assert!(*expires_at_ms > h.expires);
                        assert!(*expires_at_ms <= h.created + 2 * u64::from(TTL_SECS) * SEC);
                        let mh = self.m.holds.get_mut(&hold).unwrap();
                        mh.expires = *expires_at_ms;
                        mh.extensions += 1;
                    }
                    Err(Rejection::NotOwner) => assert_ne!(h.user, user(u)),
                    Err(Rejection::InvalidRequest(_)) => assert!(secs == 0 || secs > TTL_SECS),
                    Err(Rejection::ExtensionLimit { .. }) => assert!(live),
                    Err(Rejection::HoldExpired | Rejection::SeatsLost { .. }) => assert!(!live),
                    Err(Rejection::HoldReleased) => assert_eq!(h.state, HoldState::Released),
                    Err(Rejection::HoldConfirmed) => assert_eq!(h.state, HoldState::Confirmed),
                    other => panic!("unexpected {other:?} extending {h:?}"),
                }
            }
            Action::Pay { user: u, pick } => {
                let ids: Vec<HoldId> = self.m.holds.keys().copied().collect();
                let hold = Self::pick(&ids, pick).unwrap_or(HoldId(999_999));
                self.m.next_intent += 1;
                let intent = format!("pi{}", self.m.next_intent);
                let applied = self.send(&user(u), Op::BeginPayment { hold, user: user(u), intent: intent.clone() });
                let Some(h) = self.m.holds.get(&hold).cloned() else {
                    assert_eq!(applied.result, Err(Rejection::HoldNotFound));
                    return;
                };
                match &applied.result {
                    Ok(Outcome::PaymentStarted { amount, .. }) => {
                        assert!(h.user == user(u) && self.m.live(&h, now));
                        assert_eq!(*amount, h.price);
                        self.m.holds.get_mut(&hold).unwrap().intents += 1;
                        self.m.intents.insert(intent, MIntent { hold, state: IntentState::Pending });
                    }
                    Err(Rejection::NotOwner) => assert_ne!(h.user, user(u)),
                    Err(Rejection::PaymentAttemptsExceeded { max }) => assert_eq!(h.intents, *max),
                    Err(Rejection::HoldExpired | Rejection::SeatsLost { .. }) => assert!(!self.m.live(&h, now)),
                    Err(Rejection::HoldReleased) => assert_eq!(h.state, HoldState::Released),
                    Err(Rejection::HoldConfirmed) => assert_eq!(h.state, HoldState::Confirmed),
                    other => panic!("unexpected {other:?} paying for {h:?}"),
                }
            }
            Action::Confirm { user: u, pick } => {
                let ids: Vec<String> = self.m.intents.keys().cloned().collect();
                let Some(intent) = ids.get(pick % ids.len().max(1)).cloned() else { return };
                let mi = self.m.intents[&intent].clone();
                let applied =
                    self.send(&user(u), Op::ConfirmHold { hold: mi.hold, user: user(u), intent: intent.clone() });
                let h = self.m.holds[&mi.hold].clone();
                match &applied.result {
                    Ok(Outcome::Booked(r)) => {
                        assert_eq!(h.user, user(u));
                        if mi.state == IntentState::Pending {
                            assert!(self.m.live(&h, now), "booked a hold that was not live");
                            self.m.intents.get_mut(&intent).unwrap().state = IntentState::Captured;
                        } else {
                            assert_eq!(mi.state, IntentState::Captured);
                        }
                        assert_eq!(r.total_price, h.price);
                    }
                    Ok(Outcome::NotBooked { reason, refund_due }) => {
                        // A declined intent whose charge is confirmed after
                        // all owes the money back, whatever its hold's state.
                        assert!(matches!(mi.state, IntentState::Pending | IntentState::Declined), "{mi:?}");
                        assert_eq!(h.user, user(u));
                        let live = self.m.live(&h, now);
                        assert!(mi.state == IntentState::Declined || !live, "refused a live hold");
                        assert_eq!(*refund_due, h.price);
                        let lost: Vec<String> = h
                            .seats
                            .iter()
                            .filter(|&&s| self.m.seats[h.event][s as usize] != Seat::Free)
                            .map(|&s| label(s))
                            .collect();
                        match reason {
                            Rejection::HoldExpired => assert!(lost.is_empty()),
                            Rejection::SeatsLost { seats } => assert_eq!(seats, &lost),
                            Rejection::HoldReleased => assert_eq!(h.state, HoldState::Released),
                            Rejection::HoldConfirmed => assert_eq!(h.state, HoldState::Confirmed),
                            Rejection::PaymentConflict(_) => assert!(mi.state == IntentState::Declined && live),
                            other => panic!("unexpected reason {other:?}"),
                        }
                        self.flush();
                        assert_eq!(self.m.intents[&intent].state, IntentState::RefundDue);
                    }
                    Err(Rejection::NotOwner) => assert_ne!(h.user, user(u)),
                    Err(Rejection::PaymentConflict(_)) => assert!(!matches!(
                        mi.state,
                        IntentState::Pending | IntentState::Captured | IntentState::Declined
                    )),
                    other => panic!("unexpected {other:?} confirming {mi:?} of {h:?}"),
                }
            }
            Action::Decline { pick, release } => {
                let ids: Vec<String> = self.m.intents.keys().cloned().collect();
                let Some(intent) = ids.get(pick % ids.len().max(1)).cloned() else { return };
                let mi = self.m.intents[&intent].clone();
                let applied = self.send(
                    "gateway",
                    Op::FailPayment { intent: intent.clone(), reason: "card_declined".into(), release_hold: release },
                );
                let live = self.m.live(&self.m.holds[&mi.hold], now);
                match (&mi.state, &applied.result) {
                    (IntentState::Pending, Ok(Outcome::PaymentFailed { hold_released })) => {
                        assert_eq!(*hold_released, release && live);
                        self.m.intents.get_mut(&intent).unwrap().state = IntentState::Declined;
                    }
                    (IntentState::Declined, Ok(Outcome::PaymentFailed { hold_released: false })) => {}
                    (_, Err(Rejection::PaymentConflict(_))) => {
                        assert!(!matches!(mi.state, IntentState::Pending | IntentState::Declined))
                    }
                    (state, other) => panic!("unexpected {other:?} declining a {state:?} intent"),
                }
            }
            Action::Refund { pick } => {
                let ids: Vec<String> = self.m.intents.keys().cloned().collect();
                let Some(intent) = ids.get(pick % ids.len().max(1)).cloned() else { return };
                let state = self.m.intents[&intent].state;
                let applied = self.send("gateway", Op::RecordRefund { intent: intent.clone() });
                match (state, &applied.result) {
                    (IntentState::RefundDue | IntentState::Refunded, Ok(Outcome::RefundRecorded { .. })) => {
                        self.m.intents.get_mut(&intent).unwrap().state = IntentState::Refunded;
                    }
                    (_, Err(Rejection::PaymentConflict(_))) => {
                        assert!(!matches!(state, IntentState::RefundDue | IntentState::Refunded))
                    }
                    (state, other) => panic!("unexpected {other:?} refunding a {state:?} intent"),
                }
            }
            Action::Cancel { user: u, pick } => {
                let ids: Vec<BookingId> = self.m.bookings.keys().copied().collect();
                let booking = Self::pick(&ids, pick).unwrap_or(BookingId(999_999));
                let applied = self.send(&user(u), Op::CancelBooking { booking, user: user(u) });
                let expect = match self.m.bookings.get(&booking) {
                    None => Err(Rejection::BookingNotFound),
                    Some(b) if b.user != user(u) => Err(Rejection::NotOwner),
                    Some(b) if b.cancelled => Err(Rejection::AlreadyCancelled),
                    Some(b) if b.tickets.iter().any(|t| self.m.tickets[t].used_at.is_some()) => {
                        Err(Rejection::TicketUsed)
                    }
                    Some(b) if b.tickets.iter().any(|t| self.m.tickets[t].holder != b.user) => {
                        Err(Rejection::TicketTransferred)
                    }
                    Some(b) => {
                        let start = self.m.starts[b.event];
                        let percent = if now + 24 * HOUR <= start {
                            Some(100)
                        } else if now + 2 * HOUR <= start {
                            Some(50)
                        } else {
                            None
                        };
                        match percent {
                            None => Err(Rejection::CancellationClosed),
                            Some(p) => Ok(Outcome::Cancelled {
                                booking,
                                refund_percent: p,
                                refund_amount: b.price * u64::from(p) / 100,
                            }),
                        }
                    }
                };
                assert_eq!(expect, applied.result);
            }
            Action::Transfer { pick, to } => {
                let ids: Vec<TicketId> = self.m.tickets.keys().copied().collect();
                let Some(ticket) = Self::pick(&ids, pick) else { return };
                let t = self.m.tickets[&ticket].clone();
                let holder = t.holder.clone();
                let applied =
                    self.send(&holder, Op::TransferTicket { ticket, user: holder.clone(), to_user: user(to) });
                let expect = if holder == user(to) {
                    Err(Rejection::InvalidRequest(String::new()))
                } else if t.used_at.is_some() {
                    Err(Rejection::TicketUsed)
                } else if t.cancelled {
                    Err(Rejection::TicketCancelled)
                } else {
                    Ok(Outcome::Transferred { ticket, version: t.version + 1 })
                };
                match (&expect, &applied.result) {
                    (Ok(want), Ok(got)) => {
                        assert_eq!(want, got);
                        let mt = self.m.tickets.get_mut(&ticket).unwrap();
                        mt.version += 1;
                        mt.holder = user(to);
                    }
                    (Err(want), Err(got)) => assert_eq!(discriminant(want), discriminant(got)),
                    (want, got) => panic!("expected {want:?}, got {got:?}"),
                }
            }
            Action::CheckIn { pick, stale } => {
                let ids: Vec<TicketId> = self.m.tickets.keys().copied().collect();
                let Some(ticket) = Self::pick(&ids, pick) else { return };
                let t = self.m.tickets[&ticket].clone();
                let version = if stale { t.version + 1 } else { t.version };
                let applied = self.send("scanner", Op::CheckIn { ticket, version });
                let expect = if t.cancelled {
                    Err(Rejection::TicketCancelled)
                } else if stale {
                    Err(Rejection::StaleTicket { current: t.version })
                } else if let Some(at_ms) = t.used_at {
                    Err(Rejection::AlreadyCheckedIn { at_ms })
                } else {
                    self.m.tickets.get_mut(&ticket).unwrap().used_at = Some(now);
                    let b = &self.m.bookings[&t.booking];
                    let seat = b.seats[b.tickets.iter().position(|x| *x == ticket).unwrap()];
                    Ok(Outcome::CheckedIn { ticket, event: self.m.events[b.event], seat: label(seat) })
                };
                assert_eq!(expect, applied.result);
            }
            Action::Join { event, user: u, count, category } => {
                let cat = ["gold", "silver"][category];
                let op = Op::JoinWaitlist { event: self.m.events[event], user: user(u), count, category: cat.into() };
                let applied = self.send(&user(u), op);
                let already = self.m.waitlist[event].iter().find(|w| w.user == user(u)).map(|w| w.id);
                let expect: Result<(), Rejection> = if count == 0 {
                    Err(Rejection::InvalidSeats { unknown: vec![], duplicate: vec![] })
                } else if !self.on_sale(event) {
                    Err(Rejection::NotOnSale)
                } else if let Some(waitlist) = already {
                    Err(Rejection::AlreadyWaitlisted { waitlist })
                } else if self.m.free_count(event, cat, false, now) >= count {
                    Err(Rejection::NotSoldOut)
                } else {
                    Ok(())
                };
                match (&expect, &applied.result) {
                    (Ok(()), Ok(Outcome::WaitlistJoined { waitlist, position })) => {
                        self.m.waitlist[event].push(MWait { id: *waitlist, user: user(u), count, category: cat });
                        assert_eq!(*position as usize, self.m.waitlist[event].len());
                    }
                    (Err(want), Err(got)) => assert_eq!(want, got),
                    (want, got) => panic!("expected {want:?}, got {got:?}"),
                }
            }
            Action::Leave { user: u, pick } => {
                let all: Vec<(usize, WaitlistId, String)> =
                    (0..2).flat_map(|e| self.m.waitlist[e].iter().map(move |w| (e, w.id, w.user.clone()))).collect();
                let Some((e, id, owner)) = all.get(pick % all.len().max(1)).cloned() else { return };
                let applied = self.send(&user(u), Op::LeaveWaitlist { waitlist: id, user: user(u) });
                if owner == user(u) {
                    assert_eq!(applied.result, Ok(Outcome::WaitlistLeft { waitlist: id }));
                    self.m.waitlist[e].retain(|w| w.id != id);
                } else {
                    assert_eq!(applied.result, Err(Rejection::NotOwner));
                }
            }
            Action::Sweep { max } => {
                let due =
                    self.m.holds.values().filter(|h| h.state == HoldState::Active && h.expires <= now).count() as u32;
                let applied = self.send("node-1", Op::ExpireHolds { holds_max: max });
                match &applied.result {
                    Ok(Outcome::Swept { holds, more }) => {
                        assert_eq!(holds.len() as u32, due.min(max));
                        assert_eq!(*more, due > max);
                    }
                    other => panic!("sweep gave {other:?}"),
                }
            }
            Action::Replay { pick } => {
                let Some((client, request, op, first)) = self.history.get(pick % self.history.len().max(1)).cloned()
                else {
                    return;
                };
                if matches!(op, Op::ExpireHolds { .. }) {
                    return;
                }
                let before = self.h.state.snapshot();
                let again = self.h.run_keyed(&client, &request, op);
                assert!(again.replayed, "a repeated request id was applied again");
                assert!(again.events.is_empty());
                assert_eq!(again.result, first.result, "a repeat must get the first answer");
                assert_same_domain(&before, &self.h.state);
            }
            Action::Restore => {
                let bytes = self.h.state.snapshot();
                let restored = State::restore(&bytes).expect("own snapshot restores");
                assert!(restored == self.h.state, "restore differs from the original");
                assert_eq!(restored.snapshot(), bytes, "snapshot bytes changed by a restore");
                self.h.state = restored;
            }
        }
    }

    /// Checks the model against the state machine, and the invariants.
    fn check(&self) {
        let now = self.h.now;
        for e in 0..2 {
            let event = self.m.events[e];
            let map = self.h.state.seat_map(event, now).expect("event");
            assert_eq!(map.seats.len(), CAPACITY);
            let mut recount: BTreeMap<&str, Counts> = BTreeMap::new();
            for (s, seat) in map.seats.iter().enumerate() {
                let want = match self.m.effective(e, s as u32, now) {
                    Seat::Free => SeatStatus::Available,
                    Seat::Blocked => SeatStatus::Blocked,
                    Seat::Held(_) => SeatStatus::Held,
                    Seat::Booked(_) => SeatStatus::Booked,
                };
                assert_eq!(seat.status, want, "seat {} of event {e}", seat.seat_id);
                let c = recount.entry(category_of(s as u32)).or_default();
                match want {
                    SeatStatus::Available => c.available += 1,
                    SeatStatus::Held => c.held += 1,
                    SeatStatus::Booked => c.booked += 1,
                    SeatStatus::Blocked => c.blocked += 1,
                }
            }
            let view = self.h.state.event(event, now).expect("event");
            let mut total = 0;
            for (category, counts) in &view.availability {
                assert_eq!(counts, &recount[category.as_str()], "counters of {category} differ from a recount");
                total += counts.total();
            }
            assert_eq!(total as usize, CAPACITY, "available + held + booked + blocked = capacity");
            // No seat is in two live bookings.
            let mut booked = [0u32; CAPACITY];
            for u in 0..USERS {
                for b in self.h.state.user_bookings(&user(u), now) {
                    if b.event == event && b.status == BookingViewStatus::Confirmed {
                        for l in &b.seats {
                            booked[(0..CAPACITY).find(|&s| label(s as u32) == *l).unwrap()] += 1;
                        }
                    }
                }
            }
            assert!(booked.iter().all(|&n| n <= 1), "a seat was booked twice");
            // Each held seat belongs to exactly one live hold.
            let mut held = [0u32; CAPACITY];
            for u in 0..USERS {
                for hv in self.h.state.user_holds(&user(u), now) {
                    if hv.event == event {
                        for l in &hv.seats {
                            held[(0..CAPACITY).find(|&s| label(s as u32) == *l).unwrap()] += 1;
                        }
                    }
                }
            }
            for (s, seat) in map.seats.iter().enumerate() {
                assert_eq!(held[s], u32::from(seat.status == SeatStatus::Held), "seat {} hold count", seat.seat_id);
            }
        }
        self.h.state.check_invariants().expect("invariants");
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1000),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    /// Random command sequences agree with the reference model at every step.
    #[test]
    fn state_machine_matches_model(actions in prop::collection::vec(action(), 1..120)) {
        let mut run = Run::new();
        for action in &actions {
            run.step(action);
            run.check();
        }
    }

    /// Two replicas applying the same log agree byte for byte, and a replica
    /// restored from a snapshot mid-log converges with one that never was.
    #[test]
    fn replicas_converge(actions in prop::collection::vec(action(), 1..80), cut in 0usize..80) {
        let mut run = Run::new();
        for action in &actions {
            run.step(action);
        }
        let log: Vec<(Command, ApplyCtx)> = replay_log(&run);
        let mut a = State::new(Limits::default());
        let mut b = State::new(Limits::default());
        for (i, (cmd, ctx)) in log.iter().enumerate() {
            let ra = a.apply(cmd, *ctx);
            if i == cut.min(log.len()) {
                b = State::restore(&b.snapshot()).expect("restore");
            }
            let rb = b.apply(cmd, *ctx);
            prop_assert_eq!(&ra, &rb);
        }
        prop_assert_eq!(a.snapshot(), b.snapshot());
        prop_assert_eq!(a.state_hash(), run.h.state.state_hash());
    }
}

/// The full log of a run: the two catalog entries first, then every command
/// the run sent, at the index and time it was applied. Rebuilt from the
/// run's harness, which records the ctx of each entry.
fn replay_log(run: &Run) -> Vec<(Command, ApplyCtx)> {
    run.h.log.clone()
}

/// The model test proves itself: with each known bug planted, a model run
/// fails. (The harness checks invariants after every entry, so bugs that
/// break an invariant are caught there; the others by the model.)
#[test]
fn planted_bugs_are_caught() {
    use crate::planted::{plant, Bug};
    use proptest::test_runner::{Config, TestRunner};
    for bug in [Bug::NoExpiryOnTouch, Bug::FullRefundAlways, Bug::CounterDrift, Bug::NoDedup] {
        let _guard = plant(bug);
        let mut runner = TestRunner::new(Config { cases: 2_000, failure_persistence: None, ..Config::default() });
        let result = runner.run(&prop::collection::vec(action(), 1..120), |actions| {
            let mut run = Run::new();
            for action in &actions {
                run.step(action);
                run.check();
            }
            Ok(())
        });
        assert!(result.is_err(), "planted bug {bug:?} went unnoticed");
    }
}
