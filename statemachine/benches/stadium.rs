//! Throughput of the seat-inventory state machine on a 50,000-seat stadium.
//!
//! Every workload is recorded once: a driver applies it to a copy of its
//! starting state and keeps the commands, their log contexts, how many seats
//! changed state (the seat operations) and how many commands were rejected.
//! The timed loop replays the recorded log on a fresh copy of the starting
//! state; copying the state and checking the results happen outside the
//! timer. Because the state machine is deterministic, every replay must
//! change exactly as many seats and reject exactly as many commands as the
//! recording did; this is asserted after every timed replay, and the first
//! replay must also reach the recording's final state hash.
//!
//! Each workload prints its size, its share of rejected commands, and
//! digests of its final state and of every result and domain event, so
//! that two builds of the state machine can be checked to behave the same.
//!
//! Criterion's throughput is in seat operations (one seat changing state:
//! held, booked, released or expired), so "elem/s" reads as seat ops/s.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{Driver, CATEGORIES, ROWS_PER_SECTION, SEATS_PER_ROW, SEC};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use statemachine::{ApplyCtx, Command, EventId, HoldId, Op, Outcome, Selection, State};

/// A recorded workload and what it must do.
struct Workload {
    name: &'static str,
    base: State,
    log: Vec<(Command, ApplyCtx)>,
    seat_ops: u64,
    rejected: u64,
    final_hash: u64,
    results_digest: u64,
}

impl Workload {
    /// Records what `run` applies to a copy of `base`.
    fn record(name: &'static str, base: &Driver, run: impl FnOnce(&mut Driver)) -> Workload {
        let mut d = base.clone();
        d.start_recording();
        run(&mut d);
        assert!(d.seat_ops > 0, "{name}: the workload changed no seat");
        let w = Workload {
            name,
            base: base.state.clone(),
            log: std::mem::take(&mut d.log),
            seat_ops: d.seat_ops,
            rejected: d.rejected,
            final_hash: d.state.state_hash(),
            results_digest: d.results_digest,
        };
        eprintln!(
            "{name}: {} commands, {} seat ops, {} rejected ({:.1} %), final state {:016x}, results {:016x}",
            w.log.len(),
            w.seat_ops,
            w.rejected,
            100.0 * w.rejected as f64 / w.log.len() as f64,
            w.final_hash,
            w.results_digest
        );
        w.check_replay();
        w
    }

    /// Replays the log on a fresh copy of the base; returns the time spent
    /// applying and asserts the replay did the recorded work.
    fn replay(&self) -> (Duration, State) {
        let mut state = self.base.clone();
        let mut results = Vec::with_capacity(self.log.len());
        let start = Instant::now();
        for (cmd, ctx) in &self.log {
            results.push(state.apply(cmd, *ctx));
        }
        let elapsed = start.elapsed();
        let seat_ops: u64 = results.iter().map(|a| common::seat_ops(&a.events)).sum();
        let rejected = results.iter().filter(|a| a.result.is_err()).count() as u64;
        assert_eq!(seat_ops, self.seat_ops, "{}: replay changed a different number of seats", self.name);
        assert_eq!(rejected, self.rejected, "{}: replay rejected a different number of commands", self.name);
        (elapsed, state)
    }

    fn check_replay(&self) {
        let (_, state) = self.replay();
        assert_eq!(state.state_hash(), self.final_hash, "{}: replay reached another state", self.name);
    }

    fn bench(&self, c: &mut Criterion) {
        let mut group = c.benchmark_group("stadium");
        group.sample_size(20);
        group.throughput(Throughput::Elements(self.seat_ops));
        group.bench_function(self.name, |b| b.iter_custom(|iters| (0..iters).map(|_| self.replay().0).sum()));
        group.finish();
    }
}

/// (a) Holds of 4 explicit adjacent seats by 1,000 users who all aim at the
/// premium sections (10,000 seats), each at a random row and a random block
/// of 4: a block overlapping an earlier one is refused with
/// `SeatsUnavailable` (about a quarter of the requests).
fn hold_contended() -> Workload {
    let (base, event) = common::stadium(600);
    let premium_rows = CATEGORIES[0].2 * ROWS_PER_SECTION;
    Workload::record("hold_4_contended", &base, |d| {
        let mut rng = StdRng::seed_from_u64(1);
        for i in 0..1_000 {
            let user = format!("u{i}");
            let row = rng.gen_range(0..premium_rows);
            let first = rng.gen_range(1..=SEATS_PER_ROW - 3);
            let seats = common::block_labels(row, first, 4);
            let applied = d.apply(&user, Op::Hold { event, user: user.clone(), selection: Selection::Seats(seats) });
            match applied.result {
                Ok(Outcome::Held(_)) | Err(statemachine::Rejection::SeatsUnavailable { .. }) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(d.rejected > 0, "no request met contention");
    })
}

/// A stadium with 2,000 disjoint live holds of 4 seats.
fn with_holds(holds: usize) -> (Driver, EventId, Vec<(HoldId, String)>) {
    let (mut d, event) = common::stadium(600);
    let held = common::hold_blocks(&mut d, event, holds);
    d.now += SEC;
    (d, event, held)
}

/// (b) BeginPayment + ConfirmHold of 2,000 live holds of 4 seats.
fn confirm() -> Workload {
    let (base, _, held) = with_holds(2_000);
    Workload::record("confirm_4", &base, |d| {
        for (hold, user) in &held {
            d.book(*hold, user);
        }
        assert_eq!(d.rejected, 0);
    })
}

/// (c) ReleaseHold of 2,000 live holds of 4 seats.
fn release() -> Workload {
    let (base, _, held) = with_holds(2_000);
    Workload::record("release_4", &base, |d| {
        for (hold, user) in &held {
            match d.ok(user, Op::ReleaseHold { hold: *hold, user: user.clone() }) {
                Outcome::Released { .. } => {}
                o => panic!("{o:?}"),
            }
        }
    })
}

/// (d) One ExpireHolds sweep that expires 10,000 holds of 4 seats (the
/// sweep's cap), 40,000 seats in one command.
fn expire() -> Workload {
    let (mut base, _, held) = with_holds(10_000);
    base.now += 600 * SEC;
    Workload::record("expire_sweep_10k_holds", &base, |d| match d.ok("node-1", Op::ExpireHolds { holds_max: 10_000 }) {
        Outcome::Swept { holds, more: false } => assert_eq!(holds.len(), held.len()),
        o => panic!("{o:?}"),
    })
}

/// A stadium whose better rows are mostly sold: in each category the first
/// half of the rows has 60 % of its seats booked, the second half 30 %,
/// scattered at random (bookings of up to 10 seats of one row).
fn partly_sold() -> (Driver, EventId) {
    let (mut d, event) = common::stadium(600);
    let mut rng = StdRng::seed_from_u64(5);
    let mut first_row = 0;
    let mut buyer = 0;
    for (_, _, sections) in CATEGORIES {
        let rows = sections * ROWS_PER_SECTION;
        for r in 0..rows {
            let sold_share = if r < rows / 2 { 0.6 } else { 0.3 };
            let row = first_row + r;
            let sold: Vec<u32> = (1..=SEATS_PER_ROW).filter(|_| rng.gen_bool(sold_share)).collect();
            for chunk in sold.chunks(10) {
                let user = format!("s{buyer}");
                buyer += 1;
                let hold = d.hold(event, &user, chunk.iter().map(|&n| common::label(row, n)).collect());
                d.book(hold, &user);
            }
        }
        first_row += rows;
    }
    d.now += SEC;
    (d, event)
}

/// (e) 600 best-available holds of 4 seats together, 200 per category, on
/// a partly sold stadium.
fn best_available() -> Workload {
    let (base, event) = partly_sold();
    Workload::record("best_available_4_together", &base, |d| {
        for i in 0..600 {
            let user = format!("u{i}");
            let category = CATEGORIES[i % 3].1.to_string();
            let selection = Selection::Best { count: 4, category, together: true, accessible: false };
            match d.ok(&user, Op::Hold { event, user: user.clone(), selection }) {
                Outcome::Held(r) => assert_eq!(r.seats.len(), 4),
                o => panic!("{o:?}"),
            }
        }
    })
}

/// What a shopper does after getting a hold.
enum Next {
    Pay(HoldId),
    Confirm(HoldId, String),
    Release(HoldId),
}

/// (f) An on-sale mix of 20,000 commands, 5 ms apart, on an event whose
/// holds last 60 s. New shoppers hold 4 seats (70 % explicit seats in the
/// premium sections, 30 % best available together in a random category);
/// of those who get seats, 60 % pay and confirm, 20 % release and 20 %
/// walk away and let the hold expire. A node proposes an expiry sweep
/// every 2,000 commands (10 s); commands on the event also expire its due
/// holds first.
fn mixed() -> Workload {
    let (base, event) = common::stadium(60);
    let premium_rows = CATEGORIES[0].2 * ROWS_PER_SECTION;
    Workload::record("mixed_on_sale", &base, |d| {
        let mut rng = StdRng::seed_from_u64(7);
        // Follow-up commands by the step they are due at.
        let mut due: std::collections::BTreeMap<u64, Vec<(String, Next)>> = Default::default();
        let mut shoppers = 0u64;
        let mut step = 0u64;
        let mut applied = 0u64;
        while applied < 20_000 {
            step += 1;
            d.now += 5;
            if step.is_multiple_of(2_000) {
                d.ok("node-1", Op::ExpireHolds { holds_max: 10_000 });
                applied += 1;
                continue;
            }
            let follow_up = due.first_entry().filter(|e| *e.key() <= step).map(|mut e| {
                let item = e.get_mut().pop().expect("entries are never left empty");
                if e.get().is_empty() {
                    e.remove();
                }
                item
            });
            applied += 1;
            if let Some((user, next)) = follow_up {
                match next {
                    Next::Pay(hold) => {
                        let intent = format!("pi-{hold}");
                        let op = Op::BeginPayment { hold, user: user.clone(), intent: intent.clone() };
                        if d.apply(&user, op).result.is_ok() {
                            due.entry(step + rng.gen_range(20..60))
                                .or_default()
                                .push((user, Next::Confirm(hold, intent)));
                        }
                    }
                    Next::Confirm(hold, intent) => {
                        d.apply(&user, Op::ConfirmHold { hold, user: user.clone(), intent });
                    }
                    Next::Release(hold) => {
                        d.apply(&user, Op::ReleaseHold { hold, user: user.clone() });
                    }
                }
                continue;
            }
            let user = format!("u{shoppers}");
            shoppers += 1;
            let selection = if rng.gen_bool(0.7) {
                let row = rng.gen_range(0..premium_rows);
                let first = rng.gen_range(1..=SEATS_PER_ROW - 3);
                Selection::Seats(common::block_labels(row, first, 4))
            } else {
                let category = CATEGORIES[rng.gen_range(0..3)].1.to_string();
                Selection::Best { count: 4, category, together: true, accessible: false }
            };
            if let Ok(Outcome::Held(r)) = d.apply(&user, Op::Hold { event, user: user.clone(), selection }).result {
                let fate = rng.gen_range(0..10);
                let at = step + rng.gen_range(20..200);
                if fate < 6 {
                    due.entry(at).or_default().push((user, Next::Pay(r.hold)));
                } else if fate < 8 {
                    due.entry(at).or_default().push((user, Next::Release(r.hold)));
                }
            }
        }
    })
}

/// A stadium with every seat booked (blocks of 4, and 2 at each row's end).
fn fully_booked() -> State {
    let (mut d, event) = common::stadium(600);
    common::book_everything(&mut d, event);
    let view = d.state.event(event, d.now).expect("event");
    assert_eq!(view.available(), 0);
    d.state
}

/// (g) Snapshot encode and restore of a fully booked stadium.
fn bench_snapshot(c: &mut Criterion) {
    let state = fully_booked();
    let bytes = state.snapshot();
    assert_eq!(State::restore(&bytes).expect("restores"), state);
    eprintln!("snapshot of a fully booked stadium: {} bytes, hash {:016x}", bytes.len(), state.state_hash());
    let mut group = c.benchmark_group("stadium");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("snapshot_encode_full", |b| b.iter(|| black_box(&state).snapshot()));
    // The restored states are dropped outside the timer.
    group.bench_function("snapshot_restore_full", |b| {
        b.iter_with_large_drop(|| State::restore(black_box(&bytes)).expect("restores"))
    });
    group.finish();
}

fn bench_workloads(c: &mut Criterion) {
    for make in [hold_contended, confirm, release, expire, best_available, mixed] {
        make().bench(c);
    }
}

criterion_group!(benches, bench_workloads, bench_snapshot);
criterion_main!(benches);
