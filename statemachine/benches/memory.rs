//! Heap bytes per seat of the seat-inventory state machine on a 50,000-seat
//! stadium: idle (a venue and one event, no holds), fully held and fully
//! booked, and the snapshot size of a fully booked stadium.
//!
//! A counting global allocator (`stats_alloc`) measures the net bytes
//! requested from the allocator (allocated minus freed) while a step runs.
//! Commands and results live only inside the step, so what remains is what
//! the state keeps. The figures are the state's own heap: they leave out
//! the allocator's per-block overhead and rounding, so the process's
//! resident memory is somewhat larger.
//!
//! Run: `cargo bench -p statemachine --bench memory`.

mod common;

use std::alloc::System;

use common::{Driver, CAPACITY, HOUR, SEC};
use statemachine::{Applied, ApplyCtx, Command, EventId, HoldId, Limits, Op, Outcome, Selection};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Net heap bytes allocated and not freed while `f` runs (negative when it
/// freed more than it allocated).
fn net_change(f: impl FnOnce()) -> i64 {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    change.bytes_allocated as i64 - change.bytes_deallocated as i64
}

/// Net heap bytes a step that only builds state adds.
fn net_bytes(f: impl FnOnce()) -> u64 {
    u64::try_from(net_change(f)).expect("a step that builds state cannot free more than it allocates")
}

/// One line of the report.
struct Line {
    what: String,
    bytes: u64,
    target: Option<f64>,
}

impl Line {
    fn new(what: impl Into<String>, bytes: u64, target: Option<f64>) -> Line {
        Line { what: what.into(), bytes, target }
    }
}

/// A stadium built step by step, counting what each step adds.
struct Build {
    d: Driver,
    event: EventId,
    venue_bytes: u64,
    event_bytes: u64,
}

fn build_idle(limits: Limits) -> Build {
    let mut d = Driver::with_limits(limits);
    let venue_bytes = net_bytes(|| {
        d.ok("ops", Op::CreateVenue(common::stadium_spec()));
    });
    let venue = d.state.venue_ids().next().expect("the venue");
    let mut event = None;
    let event_bytes = net_bytes(|| {
        event = Some(match d.ok("ops", Op::CreateEvent(common::event_spec(venue, 600))) {
            statemachine::Outcome::EventCreated { event } => event,
            o => panic!("{o:?}"),
        });
    });
    d.now += HOUR;
    Build { d, event: event.expect("created"), venue_bytes, event_bytes }
}

/// Adds another stadium venue and an event on it.
fn build_more(d: &mut Driver) {
    let venue = match d.ok("ops", Op::CreateVenue(common::stadium_spec())) {
        statemachine::Outcome::VenueCreated { venue, .. } => venue,
        o => panic!("{o:?}"),
    };
    d.ok("ops", Op::CreateEvent(common::event_spec(venue, 600)));
}

fn main() {
    let seats = u64::from(CAPACITY);
    let mut lines = Vec::new();

    let mut idle = build_idle(Limits::default());
    lines.push(Line::new("venue layout (20 sections, 1,000 rows)", idle.venue_bytes, None));
    lines.push(Line::new("one event on it, no holds", idle.event_bytes, None));
    lines.push(Line::new("idle: venue + one event", idle.venue_bytes + idle.event_bytes, Some(2.0)));
    // The first venue and event of a shard also pay for the first nodes of
    // the shard's maps; a second pair shows the cost without them.
    let second = net_bytes(|| {
        build_more(&mut idle.d);
    });
    lines.push(Line::new("idle: a second venue + event in the same shard", second, None));

    // Fully held: 13,000 holds of 4 seats (2 at each row's end), one user each.
    let event = idle.event;
    let held_bytes = net_bytes(|| common::hold_everything(&mut idle.d, event));
    lines.push(Line::new("held: every seat in a live hold (13,000 holds)", held_bytes, None));
    let mut lean = build_idle(Limits { dedup_entries_max: 0, ..Limits::default() });
    let event = lean.event;
    let held_lean = net_bytes(|| common::hold_everything(&mut lean.d, event));
    lines.push(Line::new("held, without the exactly-once table (dedup_entries_max = 0)", held_lean, None));

    // Fully booked, right after the sale: the exactly-once table still
    // remembers every request and finished holds are kept for lookups.
    let mut booked = build_idle(Limits::default());
    let event = booked.event;
    let booked_bytes = net_bytes(|| common::book_everything(&mut booked.d, event));
    lines.push(Line::new("booked: every seat, right after the sale (13,000 bookings)", booked_bytes, None));
    let snapshot_fresh = booked.d.state.snapshot().len() as u64;
    // A day later the exactly-once entries and finished holds have aged out;
    // the expiry sweep is a command that is not remembered itself.
    booked.d.now += 24 * HOUR + SEC;
    let pruned = net_change(|| {
        booked.d.ok("node-1", Op::ExpireHolds { holds_max: 1 });
    });
    let booked_steady = booked_bytes.checked_add_signed(pruned).expect("pruning frees at most what was built");
    lines.push(Line::new("booked: every seat, 24 h later (remembered requests pruned)", booked_steady, None));
    let snapshot_steady = booked.d.state.snapshot().len() as u64;

    println!();
    println!("Seat-inventory state machine: heap bytes on a {CAPACITY}-seat stadium");
    println!();
    println!("| {:<62} | {:>12} | {:>10} | {:<14} |", "what", "bytes", "per seat", "target");
    println!("|{:-<64}|{:->14}|{:->12}|{:-<16}|", "", "", "", "");
    for line in &lines {
        let per_seat = line.bytes as f64 / seats as f64;
        let target = match line.target {
            Some(t) if per_seat <= t => format!("<= {t} met"),
            Some(t) => format!("<= {t} MISSED"),
            None => String::new(),
        };
        println!("| {:<62} | {:>12} | {:>10.2} | {:<14} |", line.what, line.bytes, per_seat, target);
    }
    for (what, bytes) in [
        ("snapshot: fully booked, right after the sale", snapshot_fresh),
        ("snapshot: fully booked, 24 h later", snapshot_steady),
    ] {
        println!("| {:<62} | {:>12} | {:>10.2} | {:<14} |", what, bytes, bytes as f64 / seats as f64, "");
    }
    println!();
    println!("Bytes are net heap bytes requested by the state (allocator overhead not included).");
    allocations_per_command();
}

/// Applies `cmds` and prints the allocator calls the state machine made per
/// command; the commands are built before counting and the results are
/// dropped after it.
fn count(d: &mut Driver, what: &str, cmds: Vec<Command>) -> Vec<Applied> {
    let mut results = Vec::with_capacity(cmds.len());
    let region = Region::new(GLOBAL);
    for cmd in &cmds {
        d.index += 1;
        results.push(d.state.apply(cmd, ApplyCtx { index: d.index, time_ms: d.now }));
    }
    let change = region.change();
    let per = (change.allocations + change.reallocations) as f64 / cmds.len() as f64;
    println!("| {what:<40} | {per:>10.1} |");
    assert!(results.iter().all(|a| a.result.is_ok()), "{what}: a command was rejected");
    results
}

/// Allocator calls (allocations and reallocations) the state machine makes
/// for one command of each kind on the stadium, averaged over 1,000
/// commands (2,000 holds). Every allocation is a trip through the
/// allocator, which is a large part of what a command costs.
fn allocations_per_command() {
    let mut idle = build_idle(Limits::default());
    let (d, event) = (&mut idle.d, idle.event);
    let blocks: Vec<_> = common::blocks(4).filter(|&(_, _, n)| n == 4).take(2_000).collect();
    let user = |i: usize| format!("a{i}");
    let cmd = |i: usize, what: &str, op: Op| Command::new(user(i), format!("{what}{i}"), op);
    println!();
    println!("| {:<40} | {:>10} |", "command (stadium, 4 seats)", "allocs/cmd");
    println!("|{:-<42}|{:->12}|", "", "");
    let hold_cmds = (0..2_000)
        .map(|i| {
            let (row, first, n) = blocks[i];
            let selection = Selection::Seats(common::block_labels(row, first, n));
            cmd(i, "hold", Op::Hold { event, user: user(i), selection })
        })
        .collect();
    let holds: Vec<HoldId> = count(d, "Hold (4 explicit seats)", hold_cmds)
        .into_iter()
        .map(|a| match a.result {
            Ok(Outcome::Held(r)) => r.hold,
            other => panic!("{other:?}"),
        })
        .collect();
    let intent = |i: usize| format!("pi-{i}");
    let begin =
        (0..1_000).map(|i| cmd(i, "pay", Op::BeginPayment { hold: holds[i], user: user(i), intent: intent(i) }));
    count(d, "BeginPayment", begin.collect());
    let confirm =
        (0..1_000).map(|i| cmd(i, "confirm", Op::ConfirmHold { hold: holds[i], user: user(i), intent: intent(i) }));
    count(d, "ConfirmHold", confirm.collect());
    let release = (1_000..2_000).map(|i| cmd(i, "release", Op::ReleaseHold { hold: holds[i], user: user(i) }));
    count(d, "ReleaseHold", release.collect());
}
