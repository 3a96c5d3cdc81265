//! Each checker against a correct history (it must pass) and a history
//! with a planted violation (it must fail): a checker that cannot fail is
//! a defect.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::checker::{self, Digest, EventSetup, Observed, Setup, Validity};
use crate::history::{pair, BookingRec, Call, Counts, Op, OpType, SeatStatus, Value, F};

const EV: &str = "evt-1-1";
const TTL_MS: u64 = 3_000;
/// Wall time of history time 0.
const START: u64 = 1_000_000;

fn seats() -> Vec<String> {
    (1..=4).map(|n| format!("A-1-{n}")).collect()
}

fn setup() -> Setup {
    Setup {
        start_epoch_ms: START,
        events: vec![EventSetup { event: EV.into(), seats: seats(), ttl_ms: TTL_MS }],
        clock_fwd_ms_max: 0,
        clock_back_ms_max: 0,
    }
}

/// Builds histories; times in ms.
#[derive(Default)]
struct H {
    ops: Vec<Op>,
    next_key: u64,
}

struct Done {
    ty: OpType,
    value: Value,
    error: Option<String>,
    index: Option<u64>,
}

fn ok(value: Value) -> Done {
    Done { ty: OpType::Ok, value, error: None, index: None }
}

fn fail(code: &str) -> Done {
    Done { ty: OpType::Fail, value: Value::default(), error: Some(code.into()), index: None }
}

fn info() -> Done {
    Done { ty: OpType::Info, value: Value::default(), error: Some("timeout".into()), index: None }
}

impl H {
    fn call(&mut self, f: F, p: u64, inv: u64, ret: u64, args: Value, done: Done) {
        self.ops.push(Op::invoke(f, p, inv * 1_000_000, args.clone()));
        let mut value = args;
        let d = done.value;
        value.hold = d.hold.or(value.hold);
        value.booking = d.booking.or(value.booking);
        value.expires_at_ms = d.expires_at_ms;
        value.seat_map = d.seat_map;
        value.counts = d.counts;
        value.bookings = d.bookings;
        value.position = d.position.or(value.position);
        value.queue_state = d.queue_state;
        if !d.seats.is_empty() {
            value.seats = d.seats;
        }
        self.ops.push(Op {
            ty: done.ty,
            f,
            process: p,
            time: ret * 1_000_000,
            index: done.index,
            value,
            error: done.error,
        });
    }

    fn key(&mut self) -> String {
        self.next_key += 1;
        format!("k{}", self.next_key)
    }

    /// An acknowledged hold; its expiry is `inv + TTL`.
    fn hold(&mut self, p: u64, user: &str, seats: &[&str], inv: u64, ret: u64, hold: &str) {
        let key = self.key();
        let args = Value {
            event: Some(EV.into()),
            user: Some(user.into()),
            key: Some(key),
            seats: seats.iter().map(|s| s.to_string()).collect(),
            ..Value::default()
        };
        let res = Value { hold: Some(hold.into()), expires_at_ms: Some(START + inv + TTL_MS), ..Value::default() };
        self.call(F::Hold, p, inv, ret, args, ok(res));
    }

    fn hold_done(&mut self, p: u64, user: &str, seats: &[&str], inv: u64, ret: u64, done: Done) {
        let key = self.key();
        let args = Value {
            event: Some(EV.into()),
            user: Some(user.into()),
            key: Some(key),
            seats: seats.iter().map(|s| s.to_string()).collect(),
            ..Value::default()
        };
        self.call(F::Hold, p, inv, ret, args, done);
    }

    #[allow(clippy::too_many_arguments)]
    fn confirm(&mut self, p: u64, user: &str, hold: &str, inv: u64, ret: u64, booking: &str, seats: &[&str]) {
        let key = self.key();
        let args = Value {
            event: Some(EV.into()),
            user: Some(user.into()),
            key: Some(key),
            hold: Some(hold.into()),
            ..Value::default()
        };
        let res = Value {
            booking: Some(booking.into()),
            seats: seats.iter().map(|s| s.to_string()).collect(),
            ..Value::default()
        };
        self.call(F::Confirm, p, inv, ret, args, ok(res));
    }

    fn confirm_done(&mut self, p: u64, user: &str, hold: &str, inv: u64, ret: u64, done: Done) {
        let args =
            Value { event: Some(EV.into()), user: Some(user.into()), hold: Some(hold.into()), ..Value::default() };
        self.call(F::Confirm, p, inv, ret, args, done);
    }

    fn confirm_expired(&mut self, p: u64, user: &str, hold: &str, inv: u64, ret: u64) {
        self.confirm_done(p, user, hold, inv, ret, fail("hold_expired"));
    }

    fn release(&mut self, p: u64, user: &str, hold: &str, inv: u64, ret: u64) {
        let args =
            Value { event: Some(EV.into()), user: Some(user.into()), hold: Some(hold.into()), ..Value::default() };
        self.call(F::Release, p, inv, ret, args, ok(Value::default()));
    }

    fn cancel(&mut self, p: u64, user: &str, booking: &str, inv: u64, ret: u64) {
        let args = Value {
            event: Some(EV.into()),
            user: Some(user.into()),
            booking: Some(booking.into()),
            ..Value::default()
        };
        self.call(F::Cancel, p, inv, ret, args, ok(Value::default()));
    }

    /// A seat-map read: `map` is one letter per seat (a, h, b).
    fn read(&mut self, p: u64, inv: u64, ret: u64, map: &str, index: u64, last: bool) {
        let seat_map: BTreeMap<String, SeatStatus> = seats()
            .into_iter()
            .zip(map.chars())
            .map(|(s, c)| {
                let st = match c {
                    'h' => SeatStatus::Held,
                    'b' => SeatStatus::Booked,
                    _ => SeatStatus::Available,
                };
                (s, st)
            })
            .collect();
        let args = Value { event: Some(EV.into()), last, ..Value::default() };
        let mut d = ok(Value { seat_map: Some(seat_map), ..Value::default() });
        d.index = Some(index);
        self.call(F::Read, p, inv, ret, args, d);
    }

    fn bookings(&mut self, p: u64, user: &str, t: u64, list: &[(&str, &str, &[&str], &str)]) {
        let args = Value { user: Some(user.into()), last: true, ..Value::default() };
        let bookings = list
            .iter()
            .map(|(b, h, s, st)| BookingRec {
                booking: b.to_string(),
                hold: h.to_string(),
                event: EV.into(),
                seats: s.iter().map(|x| x.to_string()).collect(),
                status: st.to_string(),
            })
            .collect();
        self.call(F::Bookings, p, t, t + 1, args, ok(Value { bookings: Some(bookings), ..Value::default() }));
    }

    fn probe(&mut self, p: u64, t: u64, ok_: bool) {
        let args = Value { node: Some(1), ..Value::default() };
        let d = if ok_ { ok(Value::default()) } else { fail("unavailable") };
        self.call(F::Probe, p, t, t + 1, args, d);
    }

    fn calls(&self) -> Vec<Call> {
        pair(&self.ops).unwrap()
    }

    /// A waiting-room join that placed `user` at `pos` (`None`: unknown outcome).
    fn join(&mut self, p: u64, user: &str, inv: u64, ret: u64, pos: Option<u64>, last: bool) {
        let args = Value { event: Some(EV.into()), user: Some(user.into()), last, ..Value::default() };
        let done = match pos {
            Some(pos) => ok(Value { position: Some(pos), ..Value::default() }),
            None => info(),
        };
        self.call(F::Join, p, inv, ret, args, done);
    }

    /// A waiting-room status: `state` at `pos`.
    fn status(&mut self, p: u64, user: &str, inv: u64, ret: u64, state: &str, pos: Option<u64>) {
        let args = Value { event: Some(EV.into()), user: Some(user.into()), ..Value::default() };
        let done = ok(Value { position: pos, queue_state: Some(state.into()), ..Value::default() });
        self.call(F::QueueStatus, p, inv, ret, args, done);
    }

    /// Gives the last call's reply the log index `index`.
    fn at(&mut self, index: u64) {
        self.ops.last_mut().expect("a call").index = Some(index);
    }
}

/// A correct run: alice holds and books seats 1-2, bob's hold on 2 is
/// refused, then bob holds 3 and releases it, carol's hold on 4 runs out
/// and dave gets seat 4 after it expired; final reads agree.
fn correct() -> H {
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1", "A-1-2"], 0, 10, "hld-1");
    h.hold_done(2, "bob", &["A-1-2"], 20, 30, fail("seats_unavailable"));
    h.read(3, 40, 50, "hhaa", 5, false);
    h.confirm(1, "alice", "hld-1", 60, 80, "bkg-1", &["A-1-1", "A-1-2"]);
    h.read(3, 90, 100, "bbaa", 7, false);
    h.hold(2, "bob", &["A-1-3"], 110, 120, "hld-2");
    h.hold(4, "carol", &["A-1-4"], 120, 130, "hld-3");
    h.read(3, 140, 150, "bbhh", 9, false);
    h.release(2, "bob", "hld-2", 160, 170);
    h.read(3, 180, 190, "bbah", 10, false);
    // carol's hold runs out at 3120.
    h.hold(5, "dave", &["A-1-4"], 3_400, 3_410, "hld-4");
    h.read(3, 3_500, 3_510, "bbah", 12, true);
    h.bookings(6, "alice", 3_600, &[("bkg-1", "hld-1", &["A-1-1", "A-1-2"], "confirmed")]);
    h.bookings(6, "bob", 3_610, &[]);
    h.bookings(6, "carol", 3_620, &[]);
    h.bookings(6, "dave", 3_630, &[]);
    h.probe(7, 3_700, true);
    h
}

fn digests(hashes: &[&str]) -> Observed {
    Observed {
        digests: Some(
            hashes
                .iter()
                .enumerate()
                .map(|(i, h)| Digest { node: i as u64 + 1, group: 1, index: 12, hash: h.to_string() })
                .collect(),
        ),
        crashes: Vec::new(),
    }
}

fn budget() -> Duration {
    Duration::from_secs(10)
}

#[test]
fn the_correct_history_passes_every_checker() {
    let calls = correct().calls();
    let v = checker::check_all(&calls, &setup(), &digests(&["x", "x", "x"]), 10);
    assert!(v.valid, "{:#?}", v.results);
}

#[test]
fn sold_once_flags_a_seat_in_two_bookings() {
    let mut h = correct();
    h.hold(8, "erin", &["A-1-1"], 200, 210, "hld-9");
    h.confirm(8, "erin", "hld-9", 220, 230, "bkg-9", &["A-1-1"]);
    let r = checker::sold_once(&h.calls());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert!(r.errors[0].contains("A-1-1"), "{r:#?}");
    assert_eq!(checker::sold_once(&correct().calls()).valid, Validity::Valid);
}

#[test]
fn lost_confirmation_is_flagged() {
    // The final read forgot alice's booking.
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    h.confirm(1, "alice", "hld-1", 20, 30, "bkg-1", &["A-1-1"]);
    h.read(3, 100, 110, "aaaa", 4, true);
    h.bookings(6, "alice", 120, &[]);
    let r = checker::no_lost_confirmations(&h.calls(), &setup());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert!(r.errors.iter().any(|e| e.contains("missing")), "{r:#?}");
    // Cancelled bookings are not lost.
    let mut h2 = H::default();
    h2.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    h2.confirm(1, "alice", "hld-1", 20, 30, "bkg-1", &["A-1-1"]);
    h2.cancel(1, "alice", "bkg-1", 40, 50);
    h2.read(3, 100, 110, "aaaa", 4, true);
    h2.bookings(6, "alice", 120, &[("bkg-1", "hld-1", &["A-1-1"], "cancelled")]);
    let r = checker::no_lost_confirmations(&h2.calls(), &setup());
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
}

#[test]
fn lost_confirmation_without_final_reads_is_unknown() {
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    let r = checker::no_lost_confirmations(&h.calls(), &setup());
    assert_eq!(r.valid, Validity::Unknown, "{r:#?}");
}

#[test]
fn linearizable_flags_a_stale_read() {
    // After alice's hold was acknowledged, a read shows her seats free
    // (and with an older index than an earlier read).
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    h.read(2, 20, 30, "haaa", 5, false);
    h.read(3, 40, 50, "aaaa", 3, false);
    let r = checker::linearizable(&h.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert!(r.errors.iter().any(|e| e.contains("stale read")), "{r:#?}");
    assert!(r.errors.iter().any(|e| e.contains("not linearizable")), "{r:#?}");
}

#[test]
fn linearizable_replays_calls_in_log_order_without_searching() {
    // Concurrent holds on seat 1 (alice wins at index 3, bob is refused at
    // index 4), a confirmation, a hold with an unknown outcome that a read
    // explains, then carol's refused hold on the booked seat.
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1"], 0, 20, "hld-1");
    h.at(3);
    h.hold_done(2, "bob", &["A-1-1"], 5, 25, fail("seats_unavailable"));
    h.at(4);
    h.confirm(1, "alice", "hld-1", 30, 40, "bkg-1", &["A-1-1"]);
    h.at(6);
    h.hold_done(3, "dave", &["A-1-3"], 45, 50, info());
    h.read(4, 60, 70, "baha", 8, false);
    h.hold_done(5, "carol", &["A-1-1"], 80, 90, fail("seats_unavailable"));
    h.at(9);
    let r = checker::linearizable(&h.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    assert!(r.notes.iter().any(|n| n.contains("(1 by replay")), "{r:#?}");
    // A wrong read is not accepted by the replay, nor by the search.
    h.ops.truncate(h.ops.len() - 4);
    h.read(4, 60, 70, "aaha", 8, false);
    let r = checker::linearizable(&h.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert!(r.notes.iter().any(|n| n.contains("(0 by replay")), "{r:#?}");
    assert!(r.errors.iter().any(|e| e.contains("not linearizable")), "{r:#?}");
}

#[test]
fn linearizable_flags_writes_whose_log_order_contradicts_real_time() {
    // Bob's refusal was logged before alice's hold although alice's hold
    // was acknowledged before bob asked: each reply fits on its own, but
    // the log disagrees with real time.
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    h.at(7);
    h.hold_done(2, "bob", &["A-1-1"], 20, 30, fail("seats_unavailable"));
    h.at(5);
    let r = checker::linearizable(&h.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert!(r.errors.iter().any(|e| e.contains("log order contradicts real time")), "{r:#?}");
    // In the right order it passes, by replay.
    h.at(8);
    let r = checker::linearizable(&h.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    assert!(r.notes.iter().any(|n| n.contains("(1 by replay")), "{r:#?}");
}

#[test]
fn linearizable_flags_a_double_hold_with_indexes() {
    // Both holds on seat 1 succeed, in log order, well within the TTL.
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    h.at(2);
    h.hold(2, "bob", &["A-1-1"], 20, 30, "hld-2");
    h.at(3);
    let r = checker::linearizable(&h.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert!(r.notes.iter().any(|n| n.contains("replay fell back")), "{r:#?}");
}

#[test]
fn linearizable_flags_a_double_hold_without_indexes() {
    // Both holds on seat 1 succeed, well within the TTL.
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    h.hold(2, "bob", &["A-1-1"], 20, 30, "hld-2");
    let r = checker::linearizable(&h.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
}

#[test]
fn linearizable_accepts_concurrency_and_unknown_outcomes() {
    // Overlapping holds on one seat: one wins; a hold with an unknown
    // outcome explains a read that shows seat 3 held.
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1"], 0, 50, "hld-1");
    h.hold_done(2, "bob", &["A-1-1"], 10, 40, fail("seats_unavailable"));
    h.hold_done(4, "carol", &["A-1-3"], 5, 60, info());
    h.read(3, 70, 80, "ahha", 5, false);
    // The read can only be explained if alice's hold came... it cannot:
    // alice's hold was acknowledged at 50 and is live, so seat 1 must read
    // held. Fix the read to a correct one:
    h.ops.truncate(h.ops.len() - 2);
    h.read(3, 70, 80, "haha", 5, false);
    let r = checker::linearizable(&h.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    // The same with the wrong read is flagged.
    h.ops.truncate(h.ops.len() - 2);
    h.read(3, 70, 80, "ahha", 5, false);
    let r = checker::linearizable(&h.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
}

#[test]
fn linearizable_allows_expiry_only_after_the_ttl() {
    let mut early = H::default();
    early.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    early.read(2, 1_000, 1_010, "aaaa", 5, false);
    let r = checker::linearizable(&early.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Invalid, "a hold cannot run out before its TTL: {r:#?}");
    let mut late = H::default();
    late.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    late.read(2, 3_200, 3_210, "aaaa", 5, false);
    let r = checker::linearizable(&late.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    // A confirmation refused as expired before the TTL is a violation.
    let mut refused = H::default();
    refused.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    refused.confirm_expired(1, "alice", "hld-1", 100, 110);
    let r = checker::linearizable(&refused.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    let mut stuck = H::default();
    stuck.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    stuck.read(2, 10_000, 10_010, "haaa", 5, false);
    let r = checker::linearizable(&stuck.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Invalid, "a hold must have run out long after its expiry: {r:#?}");
}

#[test]
fn linearizable_times_out_as_unknown() {
    let r = checker::linearizable(&correct().calls(), &setup(), Duration::ZERO);
    assert_eq!(r.valid, Validity::Unknown, "{r:#?}");
}

#[test]
fn many_unknown_outcomes_on_one_seat_stay_tractable() {
    // Forty holds of unknown outcome race for one seat while reads see it
    // flip: the state set must not double per unknown hold.
    let mut h = H::default();
    for p in 0..40u64 {
        h.hold_done(p + 10, &format!("u{p}"), &["A-1-1"], p * 100, p * 100 + 5, info());
    }
    for p in 0..40u64 {
        let t = 5_000 * (p + 1);
        h.read(100, t, t + 10, if p % 2 == 0 { "haaa" } else { "aaaa" }, p, false);
    }
    let started = std::time::Instant::now();
    let r = checker::linearizable(&h.calls(), &setup(), budget());
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn hold_expiry_flags_a_seat_given_away_early_and_a_late_confirm() {
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    h.hold(2, "bob", &["A-1-1"], 500, 510, "hld-2");
    let r = checker::hold_expiry(&h.calls(), &setup());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    // Released first: fine.
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    h.release(1, "alice", "hld-1", 100, 110);
    h.hold(2, "bob", &["A-1-1"], 500, 510, "hld-2");
    assert_eq!(checker::hold_expiry(&h.calls(), &setup()).valid, Validity::Valid);
    // A confirmation long after the hold expired.
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    h.confirm(1, "alice", "hld-1", 9_000, 9_010, "bkg-1", &["A-1-1"]);
    let r = checker::hold_expiry(&h.calls(), &setup());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert!(r.errors[0].contains("after it expired"), "{r:#?}");
    // Clock skew widens the window: with 1 s forward skew allowed, bob at
    // 2.5 s is fine.
    let mut h = H::default();
    h.hold(1, "alice", &["A-1-1"], 0, 10, "hld-1");
    h.hold(2, "bob", &["A-1-1"], 2_500, 2_510, "hld-2");
    assert_eq!(checker::hold_expiry(&h.calls(), &setup()).valid, Validity::Invalid);
    let mut s = setup();
    s.clock_fwd_ms_max = 1_000;
    assert_eq!(checker::hold_expiry(&h.calls(), &s).valid, Validity::Valid);
}

#[test]
fn conservation_flags_counters_that_do_not_add_up() {
    let mut h = correct();
    let good = Counts { total: 4, available: 2, held: 0, booked: 2, blocked: 0 };
    let args = Value { event: Some(EV.into()), ..Value::default() };
    let counts = BTreeMap::from([("regular".to_string(), good)]);
    h.call(F::Counts, 9, 300, 310, args.clone(), ok(Value { counts: Some(counts), ..Value::default() }));
    assert_eq!(checker::conservation(&h.calls(), &setup()).valid, Validity::Valid);
    let drift = Counts { total: 4, available: 3, held: 0, booked: 2, blocked: 0 };
    let counts = BTreeMap::from([("regular".to_string(), drift)]);
    h.call(F::Counts, 9, 320, 330, args, ok(Value { counts: Some(counts), ..Value::default() }));
    let r = checker::conservation(&h.calls(), &setup());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    // A seat map missing a seat.
    let mut h = H::default();
    h.read(1, 0, 1, "aaaa", 1, false);
    let last = h.ops.last_mut().unwrap();
    last.value.seat_map.as_mut().unwrap().remove("A-1-4");
    assert_eq!(checker::conservation(&h.calls(), &setup()).valid, Validity::Invalid);
}

#[test]
fn idempotency_flags_a_key_applied_twice() {
    let mut h = correct();
    assert_eq!(checker::idempotency(&h.calls()).valid, Validity::Valid);
    // A retry of alice's first hold (same key) answered with a new hold.
    let first = h.ops[0].value.clone();
    let mut retry = first.clone();
    retry.seats = vec!["A-1-1".into(), "A-1-2".into()];
    h.call(F::Hold, 9, 200, 210, retry, ok(Value { hold: Some("hld-77".into()), ..Value::default() }));
    let r = checker::idempotency(&h.calls());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
}

#[test]
fn convergence_flags_replicas_that_differ_at_one_index() {
    assert_eq!(checker::convergence(&digests(&["x", "x"])).valid, Validity::Valid);
    let r = checker::convergence(&digests(&["x", "y", "x"]));
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert_eq!(checker::convergence(&digests(&["x"])).valid, Validity::Unknown);
    assert_eq!(checker::convergence(&Observed::default()).valid, Validity::Skipped);
}

#[test]
fn liveness_flags_a_failed_probe_or_a_crash() {
    let mut h = correct();
    assert_eq!(checker::liveness(&h.calls(), &Observed::default()).valid, Validity::Valid);
    h.probe(8, 4_000, false);
    assert_eq!(checker::liveness(&h.calls(), &Observed::default()).valid, Validity::Invalid);
    let crashed = Observed { digests: None, crashes: vec!["node 2 exited with signal 6".into()] };
    assert_eq!(checker::liveness(&correct().calls(), &crashed).valid, Validity::Invalid);
    assert_eq!(checker::liveness(&H::default().calls(), &Observed::default()).valid, Validity::Unknown);
}

#[test]
fn the_verdict_names_failed_checkers() {
    let mut h = correct();
    h.hold(8, "erin", &["A-1-1"], 200, 210, "hld-9");
    let v = checker::check_all(&h.calls(), &setup(), &digests(&["x", "x"]), 10);
    assert!(!v.valid);
    let failed = v.failed();
    assert!(failed.contains(&"linearizable") && failed.contains(&"hold-expiry"), "{failed:?}");
}

#[test]
fn a_retried_request_is_one_operation() {
    // alice's hold times out; a read sees her seat held; her retry with the
    // same key is answered with the hold the first attempt made. One
    // operation that took effect during the first attempt: linearizable.
    let mut h = H::default();
    let args = Value {
        event: Some(EV.into()),
        user: Some("alice".into()),
        key: Some("same".into()),
        seats: vec!["A-1-1".into()],
        ..Value::default()
    };
    h.call(F::Hold, 1, 0, 100, args.clone(), info());
    h.read(2, 110, 120, "haaa", 3, false);
    let res = Value { hold: Some("hld-1".into()), expires_at_ms: Some(START + 50 + TTL_MS), ..Value::default() };
    h.call(F::Hold, 3, 200, 210, args, ok(res));
    let calls = h.calls();
    let r = checker::linearizable(&calls, &setup(), budget());
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    assert_eq!(checker::idempotency(&calls).valid, Validity::Valid);
    // Without the shared key the read is unexplained only if the first
    // attempt cannot have taken effect: as a failure it is flagged.
    let mut h = H::default();
    h.hold_done(1, "alice", &["A-1-1"], 0, 100, fail("seats_unavailable"));
    h.read(2, 110, 120, "haaa", 3, false);
    assert_eq!(checker::linearizable(&h.calls(), &setup(), budget()).valid, Validity::Invalid);
}

#[test]
fn hold_expiry_dates_a_retried_hold_from_its_first_attempt() {
    // alice's first attempt timed out but took effect at once; her retry
    // much later is answered with that hold, which ran out before bob
    // took the seat.
    let mut h = H::default();
    let args = Value {
        event: Some(EV.into()),
        user: Some("alice".into()),
        key: Some("same".into()),
        seats: vec!["A-1-1".into()],
        ..Value::default()
    };
    h.call(F::Hold, 1, 0, 4_000, args.clone(), info());
    let res = Value { hold: Some("hld-1".into()), expires_at_ms: Some(START + TTL_MS), ..Value::default() };
    h.call(F::Hold, 2, 4_100, 4_110, args, ok(res));
    h.hold(3, "bob", &["A-1-1"], 4_200, 4_210, "hld-2");
    let calls = h.calls();
    assert_eq!(checker::hold_expiry(&calls, &setup()).valid, Validity::Valid);
    assert_eq!(checker::linearizable(&calls, &setup(), budget()).valid, Validity::Valid);
}

/// A fair waiting room: concurrent joins in either order, a rejoin at the
/// same place, admission in position order.
fn fair_room() -> H {
    let mut h = H::default();
    h.join(1, "ann", 0, 10, Some(0), false);
    h.join(2, "ben", 5, 15, Some(2), false);
    h.join(3, "cat", 8, 12, Some(1), false);
    h.join(4, "dan", 20, 30, Some(3), false);
    h.join(5, "ann", 40, 50, Some(0), false);
    h.status(1, "ann", 60, 70, "admitted", None);
    h.status(4, "dan", 61, 71, "waiting", Some(3));
    h.status(3, "cat", 62, 72, "waiting", Some(1));
    h.status(3, "cat", 6_000, 6_010, "admitted", None);
    h.status(4, "dan", 6_020, 6_030, "waiting", Some(3));
    h.join(9, "ann", 20_000, 20_010, Some(0), true);
    h.join(9, "dan", 20_020, 20_030, Some(3), true);
    h
}

#[test]
fn waiting_room_passes_a_fair_room() {
    let r = checker::waiting_room(&fair_room().calls());
    assert_eq!(r.valid, Validity::Valid, "{r:#?}");
    let none = checker::waiting_room(&correct().calls());
    assert_eq!(none.valid, Validity::Skipped, "no joins, nothing to check: {none:#?}");
}

#[test]
fn waiting_room_flags_a_moved_place_a_shared_one_and_a_lost_one() {
    let mut h = fair_room();
    h.join(5, "ben", 100, 110, Some(4), false);
    let r = checker::waiting_room(&h.calls());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert!(r.errors.iter().any(|e| e.contains("ben was given position 2, then 4")), "{r:#?}");

    let mut h = fair_room();
    h.join(6, "eve", 100, 110, Some(3), false);
    let r = checker::waiting_room(&h.calls());
    assert!(r.errors.iter().any(|e| e.contains("share position 3")), "{r:#?}");

    // After healing, dan's rejoin gets a new place: his was lost.
    let mut h = fair_room();
    h.ops.truncate(h.ops.len() - 2);
    h.join(9, "dan", 20_020, 20_030, Some(7), true);
    let r = checker::waiting_room(&h.calls());
    assert!(r.errors.iter().any(|e| e.contains("the rejoin after healing")), "{r:#?}");

    // A status naming another place than the join gave.
    let mut h = fair_room();
    h.status(2, "ben", 100, 110, "waiting", Some(1));
    let r = checker::waiting_room(&h.calls());
    assert!(r.errors.iter().any(|e| e.contains("shows ben at 1, not at 2")), "{r:#?}");

    // A rejoin after healing that never succeeds leaves it undecided.
    let mut h = fair_room();
    h.join(9, "cat", 20_040, 20_050, None, true);
    assert_eq!(checker::waiting_room(&h.calls()).valid, Validity::Unknown);
}

#[test]
fn waiting_room_flags_a_late_joiner_placed_ahead() {
    let mut h = fair_room();
    // eve joins after dan was placed at 3, and is put ahead of him.
    h.join(6, "eve", 35, 45, Some(5), false);
    assert_eq!(checker::waiting_room(&h.calls()).valid, Validity::Valid);
    let mut h = fair_room();
    h.ops.retain(|o| o.value.user.as_deref() != Some("dan"));
    h.join(4, "dan", 20, 30, Some(4), false);
    h.join(6, "eve", 35, 45, Some(3), false);
    let r = checker::waiting_room(&h.calls());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert!(r.errors.iter().any(|e| e.contains("not FIFO: eve joined after dan")), "{r:#?}");
}

#[test]
fn waiting_room_flags_admission_out_of_order() {
    // dan (3) is admitted while cat (1) is still waiting well after that.
    let mut h = fair_room();
    h.status(4, "dan", 7_000, 7_010, "admitted", None);
    h.status(3, "cat", 7_100, 7_110, "waiting", Some(1));
    assert_eq!(checker::waiting_room(&h.calls()).valid, Validity::Valid, "within the staleness bound");
    h.status(3, "cat", 13_000, 13_010, "waiting", Some(1));
    let r = checker::waiting_room(&h.calls());
    assert_eq!(r.valid, Validity::Invalid, "{r:#?}");
    assert!(r.errors.iter().any(|e| e.contains("admitted out of order: dan")), "{r:#?}");
}
