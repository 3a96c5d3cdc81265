//! Waiting rooms: positions, the pre-queue draw, admission, the hold gate.

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::support::*;
use crate::*;

const SEED: [u8; 32] = [7; 32];

fn room(admit_per_minute: u32, active_max: u32) -> WaitingRoomSpec {
    WaitingRoomSpec { enabled: true, admit_per_minute, active_max, activate_above_per_sec: None }
}

/// An event of `seats` seats in one row whose sale opens `opens_in` from now,
/// with a room and a 60 s hold TTL.
fn room_event(h: &mut Harness, seats: u32, opens_in: Millis, spec: WaitingRoomSpec) -> EventId {
    let opens = h.now + opens_in;
    h.rows_event(&[seats], |s| {
        s.sale_opens_at_ms = opens;
        s.hold_ttl_secs = Some(60);
        s.waiting_room = Some(spec);
    })
}

fn join(h: &mut Harness, event: EventId, users: &[&str]) -> Vec<QueuePlace> {
    let op = Op::JoinQueue { event, users: users.iter().map(|u| u.to_string()).collect(), seed: SEED };
    match h.ok(op) {
        Outcome::QueueJoined { places } => places,
        o => panic!("{o:?}"),
    }
}

fn advance(h: &mut Harness) -> u64 {
    match h.ok(Op::AdvanceQueues { events_max: 100 }) {
        Outcome::QueuesAdvanced { admitted } => admitted,
        o => panic!("{o:?}"),
    }
}

fn view(h: &Harness, event: EventId, user: &str) -> QueueView {
    h.state.queue(event, Some(user), h.now).expect("room")
}

fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("u{i}")).collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn joins_after_the_opening_get_dense_positions_in_arrival_order() {
    let mut h = Harness::new();
    let e = room_event(&mut h, 10, 0, room(60, 100));
    assert_eq!(join(&mut h, e, &["a", "b"]), vec![QueuePlace::Position(1), QueuePlace::Position(2)]);
    assert_eq!(
        join(&mut h, e, &["c", "a", "c"]),
        vec![QueuePlace::Position(3), QueuePlace::Position(1), QueuePlace::Position(3)]
    );
    let v = view(&h, e, "c");
    assert_eq!(v.positions, 3);
    assert_eq!(v.user.unwrap().position, Some(3));
    assert_eq!(v.phase, QueuePhase::Open);
    assert!(v.gate_active);
}

#[test]
fn a_join_needs_a_room_an_open_sale_and_valid_users() {
    let mut h = Harness::new();
    let venue = h.venue();
    let plain = h.event(venue);
    let op = Op::JoinQueue { event: plain, users: vec!["a".into()], seed: SEED };
    assert_eq!(h.err(op), Rejection::NoWaitingRoom);
    let e = room_event(&mut h, 10, 0, room(60, 100));
    assert!(matches!(h.err(Op::JoinQueue { event: e, users: vec![], seed: SEED }), Rejection::InvalidRequest(_)));
    assert_eq!(
        h.err(Op::JoinQueue { event: EventId(999), users: vec!["a".into()], seed: SEED }),
        Rejection::EventNotFound
    );
    assert_eq!(join(&mut h, e, &["", "ok"]), vec![QueuePlace::InvalidUser, QueuePlace::Position(1)]);
    assert_eq!(view(&h, e, "ok").positions, 1);
    h.advance(48 * HOUR);
    assert_eq!(h.err(Op::JoinQueue { event: e, users: vec!["z".into()], seed: SEED }), Rejection::NotOnSale);
}

#[test]
fn a_full_room_refuses_newcomers_but_keeps_its_users() {
    let mut h = Harness::with_limits(Limits { room_users_max: 2, ..Limits::default() });
    let e = room_event(&mut h, 10, 0, room(60, 100));
    assert_eq!(
        join(&mut h, e, &["a", "b", "c"]),
        vec![QueuePlace::Position(1), QueuePlace::Position(2), QueuePlace::Full]
    );
    assert_eq!(join(&mut h, e, &["b"]), vec![QueuePlace::Position(2)]);
}

/// The draw, recomputed here from the published rule rather than through
/// the crate's helper.
fn expected_draw(seed: &[u8; 32], users: &[String]) -> Vec<String> {
    let mut keyed: Vec<([u8; 16], String)> = users
        .iter()
        .map(|u| {
            let digest = xxhash_rust::xxh3::xxh3_128(u.as_bytes());
            let mut hasher = Sha256::new();
            hasher.update(seed);
            hasher.update(digest.to_le_bytes());
            let out = hasher.finalize();
            (out[..16].try_into().unwrap(), u.clone())
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, u)| u).collect()
}

#[test]
fn the_pre_queue_is_drawn_from_the_committed_seed_at_the_opening() {
    let mut h = Harness::new();
    let e = room_event(&mut h, 10, 10 * SEC, room(6000, 100));
    let early = users(40);
    let places = join(&mut h, e, &refs(&early[..20]));
    assert!(places.iter().all(|p| *p == QueuePlace::PreQueue));
    // A later join before the opening cannot change the seed.
    let op = Op::JoinQueue { event: e, users: early[20..].to_vec(), seed: [9; 32] };
    h.ok(op);
    let before = view(&h, e, "u3");
    assert_eq!(before.phase, QueuePhase::PreQueue);
    assert_eq!(before.seed, None, "the seed is secret before the opening");
    assert_eq!(before.pre_queue, 40);
    assert_eq!(before.user.unwrap().position, None);
    assert!(!before.gate_active);

    h.advance(10 * SEC);
    advance(&mut h);
    let order = expected_draw(&SEED, &early);
    for (i, u) in order.iter().enumerate() {
        assert_eq!(view(&h, e, u).user.unwrap().position, Some(i as u64 + 1), "{u}");
    }
    let v = view(&h, e, "u0");
    assert_eq!(v.seed, Some(SEED));
    assert_eq!(v.pre_queue, 0);
    // Arrivals after the opening follow the drawn users.
    assert_eq!(join(&mut h, e, &["late"]), vec![QueuePlace::Position(41)]);
    let audit = h.state.queue_audit(e, 0, 1000).unwrap();
    assert_eq!(audit.drawn, 40);
    assert_eq!(audit.seed, Some(SEED));
    let audited: Vec<u128> = audit.entries.iter().map(|(_, d)| *d).collect();
    let want: Vec<u128> = order.iter().map(|u| user_digest(u)).collect();
    assert_eq!(audited, want);
    let page = h.state.queue_audit(e, 38, 10).unwrap();
    assert_eq!(page.entries.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![39, 40]);
}

#[test]
fn admission_follows_the_rate_without_saving_up_a_stampede() {
    let mut h = Harness::new();
    let e = room_event(&mut h, 10, 0, room(60, 1000));
    let us = users(100);
    join(&mut h, e, &refs(&us));
    assert_eq!(view(&h, e, "u0").admitted_through, 0);
    for _ in 0..10 {
        h.advance(SEC);
        assert_eq!(advance(&mut h), 1, "60 a minute is one a second");
    }
    // A long pause accumulates at most two seconds of admissions.
    h.advance(60 * SEC);
    assert_eq!(advance(&mut h), 2);
    assert_eq!(view(&h, e, "u0").admitted_through, 12);
    // Advances closer together than the step bound admit nothing.
    h.advance(ADMISSION_STEP_MS_MIN - 1);
    assert_eq!(advance(&mut h), 0);
}

#[test]
fn the_active_cap_holds_until_shoppers_book_or_their_turn_ends() {
    let mut h = Harness::new();
    let e = room_event(&mut h, 10, 0, room(60_000, 3));
    let us = users(10);
    join(&mut h, e, &refs(&us));
    h.advance(SEC);
    assert_eq!(advance(&mut h), 3);
    h.advance(SEC);
    assert_eq!(advance(&mut h), 0, "three are shopping");
    assert_eq!(view(&h, e, "u0").active, 3);
    // u0 books: one place frees.
    let hold = h.hold(e, "u0", &["S-1-1"]);
    h.book(hold.hold, "u0");
    assert!(view(&h, e, "u0").user.unwrap().finished);
    h.advance(SEC);
    assert_eq!(advance(&mut h), 1);
    assert_eq!(view(&h, e, "u3").user.unwrap().admitted_at_ms, Some(h.now));
    // The others' turns end one hold TTL (60 s) after their admission.
    h.advance(59 * SEC);
    assert_eq!(advance(&mut h), 2);
    assert_eq!(view(&h, e, "u9").active, 3);
    assert!(!view(&h, e, "u1").user.unwrap().may_hold, "u1's turn ended");
    assert_eq!(view(&h, e, "u1").expired_through, 3);
}

#[test]
fn holds_need_admission_while_the_room_is_active() {
    let mut h = Harness::new();
    let e = room_event(&mut h, 10, 0, room(60, 10));
    assert_eq!(h.err(hold_op(e, "a", &["S-1-1"])), Rejection::QueueRequired, "nobody joined yet");
    join(&mut h, e, &["a", "b"]);
    assert_eq!(h.err(hold_op(e, "a", &["S-1-1"])), Rejection::QueueRequired, "not admitted yet");
    h.advance(SEC);
    advance(&mut h);
    assert!(view(&h, e, "a").user.unwrap().may_hold);
    assert!(!view(&h, e, "b").user.unwrap().may_hold);
    assert_eq!(h.err(hold_op(e, "b", &["S-1-2"])), Rejection::QueueRequired);
    let hold = h.hold(e, "a", &["S-1-1"]);
    h.ok(Op::ReleaseHold { hold: hold.hold, user: "a".into() });
    let hold = h.hold(e, "a", &["S-1-2"]);
    h.book(hold.hold, "a");
    assert_eq!(h.err(hold_op(e, "a", &["S-1-3"])), Rejection::QueueRequired, "a's turn ended with the booking");
    // The turn also ends by time.
    h.advance(SEC);
    advance(&mut h);
    assert!(view(&h, e, "b").user.unwrap().may_hold);
    h.advance(60 * SEC);
    assert_eq!(h.err(hold_op(e, "b", &["S-1-4"])), Rejection::QueueRequired);
}

#[test]
fn admission_pauses_with_no_seat_left_and_the_room_reports_a_sell_out() {
    let mut h = Harness::new();
    let e = room_event(&mut h, 2, 0, room(60_000, 100));
    let us = users(10);
    join(&mut h, e, &refs(&us[..2]));
    h.advance(SEC);
    assert_eq!(advance(&mut h), 2);
    let h0 = h.hold(e, "u0", &["S-1-1"]);
    let h1 = h.hold(e, "u1", &["S-1-2"]);
    join(&mut h, e, &refs(&us[2..]));
    h.advance(SEC);
    assert_eq!(advance(&mut h), 0, "every seat is held");
    let v = view(&h, e, "u5");
    assert!(v.none_available && !v.sold_out);
    h.book(h0.hold, "u0");
    h.book(h1.hold, "u1");
    assert!(view(&h, e, "u5").sold_out);
    assert!(!h.state.queues_due(h.now + SEC));
    assert_eq!(h.err(Op::JoinQueue { event: e, users: vec!["late".into()], seed: SEED }), Rejection::SoldOut);
    h.advance(SEC);
    assert_eq!(advance(&mut h), 0);
    assert_eq!(view(&h, e, "u5").admitted_through, 2);
    // A cancellation gives a seat back: admission resumes.
    let booking = h.state.user_bookings("u0", h.now)[0].id;
    h.ok(Op::CancelBooking { booking, user: "u0".into() });
    h.advance(SEC);
    assert_eq!(advance(&mut h), 1);
}

#[test]
fn an_expired_hold_returns_its_seats_to_the_queue() {
    let mut h = Harness::new();
    let e = room_event(&mut h, 1, 0, room(60_000, 100));
    join(&mut h, e, &["a", "b"]);
    h.advance(SEC);
    assert_eq!(advance(&mut h), 1);
    h.hold(e, "a", &["S-1-1"]);
    h.advance(SEC);
    assert_eq!(advance(&mut h), 0);
    h.advance(60 * SEC);
    h.sweep(100);
    assert_eq!(advance(&mut h), 1, "the seat is back");
    assert!(view(&h, e, "b").user.unwrap().may_hold);
}

#[test]
fn a_load_activated_room_gates_holds_only_once_active() {
    let mut h = Harness::new();
    let spec = WaitingRoomSpec { activate_above_per_sec: Some(100), ..room(60, 10) };
    let e = room_event(&mut h, 10, 0, spec);
    h.hold(e, "early", &["S-1-1"]);
    assert!(!view(&h, e, "x").gate_active);
    let at = match h.ok(Op::ActivateQueue { event: e }) {
        Outcome::QueueActivated { at_ms } => at_ms,
        o => panic!("{o:?}"),
    };
    h.advance(SEC);
    assert!(matches!(h.ok(Op::ActivateQueue { event: e }), Outcome::QueueActivated { at_ms } if at_ms == at));
    assert!(view(&h, e, "x").gate_active);
    assert_eq!(h.err(hold_op(e, "late", &["S-1-2"])), Rejection::QueueRequired);
    let plain = room_event(&mut h, 10, 0, room(60, 10));
    assert!(matches!(h.err(Op::ActivateQueue { event: plain }), Rejection::InvalidRequest(_)));
}

#[test]
fn a_room_forgets_its_users_when_the_sale_is_over() {
    let mut h = Harness::new();
    let e = room_event(&mut h, 10, 0, room(60, 10));
    let us = users(5);
    join(&mut h, e, &refs(&us));
    assert_eq!(h.state.ix.room_users, 5);
    h.advance(48 * HOUR);
    assert!(h.state.queues_due(h.now));
    advance(&mut h);
    assert_eq!(h.state.ix.room_users, 0);
    assert_eq!(view(&h, e, "u0").phase, QueuePhase::Closed);
    assert!(!h.state.queues_due(h.now));
}

#[test]
fn rooms_survive_a_snapshot_and_a_broken_room_is_refused() {
    let mut h = Harness::new();
    let e = room_event(&mut h, 10, 5 * SEC, room(60_000, 3));
    let us = users(30);
    join(&mut h, e, &refs(&us[..10]));
    h.advance(5 * SEC);
    join(&mut h, e, &refs(&us[10..]));
    h.advance(SEC);
    advance(&mut h);
    let bytes = h.state.snapshot();
    let restored = State::restore(&bytes).unwrap();
    assert_eq!(restored, h.state);
    assert_eq!(restored.snapshot(), bytes);

    let mut broken = h.state.clone();
    let room = broken.p.rooms.get_mut(&e).unwrap();
    let digest = user_digest("u12");
    room.users.get_mut(&digest).unwrap().position = 1;
    assert!(broken.check_invariants().is_err(), "a duplicate position is caught");
    let mut broken = h.state.clone();
    broken.p.rooms.get_mut(&e).unwrap().admitted_through += 1;
    assert!(broken.check_invariants().is_err(), "admissions beyond the steps are caught");
    let mut broken = h.state.clone();
    broken.p.rooms.get_mut(&e).unwrap().pre_queue = 1;
    assert!(State::restore(&broken.snapshot()).is_err());
}

#[test]
fn replicas_that_replay_the_log_agree_on_every_room() {
    let mut h = Harness::new();
    let e = room_event(&mut h, 10, 3 * SEC, room(600, 5));
    let us = users(50);
    join(&mut h, e, &refs(&us[..25]));
    h.advance(3 * SEC);
    for chunk in us[25..].chunks(5) {
        join(&mut h, e, &refs(chunk));
        h.advance(700);
        advance(&mut h);
    }
    let mut replica = State::new(Limits::default());
    for (cmd, ctx) in &h.log {
        replica.apply(cmd, *ctx);
    }
    assert_eq!(replica.snapshot(), h.state.snapshot());
}

#[derive(Clone, Debug)]
enum Step {
    Join(Vec<u8>),
    Advance(u16),
    Hold(u8),
    Book(u8),
    Release(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        proptest::collection::vec(0u8..40, 1..6).prop_map(Step::Join),
        (0u16..3000).prop_map(Step::Advance),
        (0u8..40).prop_map(Step::Hold),
        (0u8..40).prop_map(Step::Book),
        (0u8..40).prop_map(Step::Release),
    ]
}

/// One run of the room property over `steps`.
fn room_run(steps: Vec<Step>, cap: u32) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    let e = room_event(&mut h, 6, 2 * SEC, room(120, cap));
    let mut first: std::collections::BTreeMap<u8, QueuePlace> = Default::default();
    let mut admitted = 0;
    for s in steps {
        match s {
            Step::Join(who) => {
                let names: Vec<String> = who.iter().map(|w| format!("u{w}")).collect();
                let op = Op::JoinQueue { event: e, users: names, seed: SEED };
                let places = match h.run(op).result {
                    Ok(Outcome::QueueJoined { places }) => places,
                    Err(Rejection::SoldOut) => continue,
                    other => panic!("{other:?}"),
                };
                for (w, p) in who.iter().zip(places) {
                    let seen = *first.entry(*w).or_insert(p);
                    if seen != QueuePlace::PreQueue {
                        prop_assert_eq!(seen, p, "u{} moved", w);
                    }
                    first.insert(*w, p);
                }
            }
            Step::Advance(ms) => {
                h.advance(u64::from(ms));
                let none_free = h.state.queue(e, None, h.now).unwrap().none_available;
                let n = advance(&mut h);
                prop_assert!(n == 0 || !none_free, "admitted with no seat free");
            }
            Step::Hold(w) => {
                let user = format!("u{w}");
                let may = view(&h, e, &user).user.unwrap().may_hold;
                let applied = h.run(best_op(e, &user, 1, "std", false));
                if !may {
                    prop_assert!(applied.result.is_err(), "{} held without admission", user);
                }
            }
            Step::Book(w) | Step::Release(w) => {
                let user = format!("u{w}");
                let holds = h.state.user_holds(&user, h.now);
                if let Some(hold) = holds.first() {
                    if matches!(s, Step::Book(_)) {
                        let intent = format!("pi-{}", h.index);
                        h.run(Op::BeginPayment { hold: hold.id, user: user.clone(), intent: intent.clone() });
                        h.run(confirm_op(hold.id, &user, &intent));
                    } else {
                        h.run(Op::ReleaseHold { hold: hold.id, user });
                    }
                }
            }
        }
        let v = h.state.queue(e, None, h.now).unwrap();
        prop_assert!(v.active <= u64::from(cap), "{} shoppers over a cap of {}", v.active, cap);
        prop_assert!(v.admitted_through <= v.positions);
        prop_assert!(v.admitted_through >= admitted, "admission went back");
        admitted = v.admitted_through;
    }
    Ok(())
}

proptest! {
    /// Under any mix of joins, time, holds, bookings and releases: positions
    /// stay dense and keep their first value, admission never passes the
    /// cap or the join order, and nobody holds without admission.
    #[test]
    fn rooms_keep_order_and_the_cap(steps in proptest::collection::vec(step(), 1..80), cap in 1u32..6) {
        room_run(steps, cap)?;
    }
}

/// The room property proves itself: with each waiting-room bug planted, a
/// run fails.
#[test]
fn planted_room_bugs_are_caught() {
    use crate::planted::{plant, Bug};
    use proptest::test_runner::{Config, TestRunner};
    for bug in [Bug::RoomIgnoresCap, Bug::RoomSkipsGate] {
        let _guard = plant(bug);
        let mut runner = TestRunner::new(Config { cases: 2_000, failure_persistence: None, ..Config::default() });
        let result =
            runner.run(&(proptest::collection::vec(step(), 1..80), 1u32..6), |(steps, cap)| room_run(steps, cap));
        assert!(result.is_err(), "planted bug {bug:?} went unnoticed");
    }
}

#[test]
fn joining_a_waitlist_needs_admission_while_the_room_is_active() {
    let mut h = Harness::new();
    let e = room_event(&mut h, 2, 0, room(60_000, 100));
    join(&mut h, e, &["a", "b", "c"]);
    h.advance(SEC);
    // Admission stops at the seats left: a and b are in, c waits.
    assert_eq!(advance(&mut h), 2);
    let hold = h.hold(e, "a", &["S-1-1", "S-1-2"]);
    let wait = |user: &str| Op::JoinWaitlist { event: e, user: user.into(), count: 1, category: "std".into() };
    assert_eq!(h.err(wait("sneaky")), Rejection::QueueRequired, "never queued");
    assert_eq!(h.err(wait("c")), Rejection::QueueRequired, "queued, not admitted");
    let (entry, position) = h.join(e, "b", 1, "std");
    assert_eq!(position, 1);
    let (_, fx) = h.ok_fx(Op::ReleaseHold { hold: hold.hold, user: "a".into() });
    let offers: Vec<&str> = fx
        .iter()
        .filter_map(|ev| match ev {
            DomainEvent::WaitlistOffered { waitlist, user, .. } => {
                assert_eq!(*waitlist, entry);
                Some(user.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(offers, ["b"], "only the entry that joined through the room is offered seats");
}
