//! Arbitrary commands never break the state machine: whatever a command
//! carries (every op, extreme integers, empty, huge, non-ASCII and control
//! strings, unknown ids and ids of records that exist, times that jump or
//! go backwards), `apply` does not panic, every invariant holds after it,
//! and a rejected or replayed command changes nothing but what time passing
//! changes (holds whose lease ran out, and the waitlist offers that follow).
//! Arbitrary bytes decoded as a command never panic either.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::support::*;
use crate::*;

/// A shard with something of every kind: plain events, a gated waiting
/// room, a load-activated one, an event with its own refund policy, a sold
/// out event with a waitlist, live, paid, failed and booked holds, a
/// cancelled booking with a refund due.
fn fixture() -> &'static (State, Millis, u64) {
    static FIXTURE: OnceLock<(State, Millis, u64)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut h = Harness::new();
        let venue = h.venue();
        let plain = h.event(venue);
        let gated = h.event_with(venue, |s| {
            s.waiting_room = Some(WaitingRoomSpec {
                enabled: true,
                admit_per_minute: 60,
                active_max: 2,
                activate_above_per_sec: None,
            })
        });
        h.event_with(venue, |s| {
            s.waiting_room = Some(WaitingRoomSpec {
                enabled: true,
                admit_per_minute: 1,
                active_max: 1,
                activate_above_per_sec: Some(5),
            })
        });
        let refunds = h.event_with(venue, |s| {
            s.refund_policy = Some(vec![
                RefundTier { min_hours_before: 0, percent: 100 },
                RefundTier { min_hours_before: 10, percent: 30 },
            ])
        });
        let tiny = h.rows_event(&[2], |_| {});
        h.ok(Op::JoinQueue { event: gated, users: vec!["alice".into(), "bob".into()], seed: [7; 32] });
        h.advance(2 * SEC);
        h.ok(Op::AdvanceQueues { events_max: 10 });
        h.hold(plain, "alice", &["Floor-A-2", "Floor-A-3"]);
        let bob = h.hold(plain, "bob", &["Floor-A-4"]);
        h.begin(bob.hold, "bob", "pi-1");
        let carol = h.hold(plain, "carol", &["Floor-B-1", "Floor-B-2"]);
        h.begin(carol.hold, "carol", "pi-2");
        h.ok(confirm_op(carol.hold, "carol", "pi-2"));
        let erin = h.hold(plain, "erin", &["Balcony-1-1"]);
        h.begin(erin.hold, "erin", "pi-3");
        h.ok(Op::FailPayment { intent: "pi-3".into(), reason: "declined".into(), release_hold: false });
        let dave = h.hold(refunds, "dave", &["Floor-A-5"]);
        h.begin(dave.hold, "dave", "pi-4");
        let booked = h.ok(confirm_op(dave.hold, "dave", "pi-4"));
        let Outcome::Booked(booked) = booked else { panic!("{booked:?}") };
        h.ok(Op::CancelBooking { booking: booked.booking, user: "dave".into() });
        h.hold(gated, "alice", &["Balcony-2-2"]);
        h.hold(tiny, "frank", &["S-1-1", "S-1-2"]);
        h.join(tiny, "gina", 1, "std");
        h.join(tiny, "alice", 2, "std");
        (h.state, h.now, h.index)
    })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        24 => prop::sample::select(vec!["alice", "bob", "carol", "dave", "erin", "frank", "gina", "c", "premium", "regular", "std"])
            .prop_map(String::from),
        1 => Just(String::new()),
        1 => Just(" ".to_string()),
        1 => Just("日本🎫ü".to_string()),
        1 => Just("a\u{0}b\n\u{85}".to_string()),
        1 => (0usize..=300).prop_map(|n| "x".repeat(n)),
        1 => Just("y".repeat(70_000)),
        1 => ".{0,12}",
    ]
}

fn intent() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(INTENT.to_string()),4 => prop::sample::select(vec!["pi-1", "pi-2", "pi-3", "pi-4", "pi-5", "pi-6"]).prop_map(String::from), 1 => text()]
}

/// A user field that names an owner: mostly the owner of the record.
fn user() -> impl Strategy<Value = String> {
    prop_oneof![3 => Just(OWNER.to_string()), 1 => text()]
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (prop::sample::select(vec!["Floor-A", "Floor-B", "Balcony-1", "Balcony-2", "Balcony-3", "S-1", "Floor", "A"]), prop_oneof![8 => 1u32..11, 1 => 0u32..12])
            .prop_map(|(row, n)| format!("{row}-{n}")),
        1 => text(),
        1 => Just("Floor-A-01".to_string()),
        1 => Just(format!("Floor-A-{}", u32::MAX)),
    ]
}

fn int32() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..12, 1 => Just(100), 1 => Just(101), 1 => Just(3600), 1 => Just(u32::MAX), 1 => any::<u32>()]
}

fn int64() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => 0u64..12,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX / 2 + 1),
        1 => Just(PRICE_MINOR_UNITS_MAX),
        1 => Just(PRICE_MINOR_UNITS_MAX + 1),
        1 => any::<u64>(),
    ]
}

/// Ids from `RECENT` on stand for the ids handed out last (`RECENT` is the
/// last one, `RECENT + 1` the one before, ...): they are resolved when the
/// command is applied, so that commands reach the records made by earlier
/// commands of the same case.
const RECENT: u64 = 1 << 62;

/// A record id: mostly one that may exist, sometimes an extreme one.
fn id() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 0u64..32, 4 => (0u64..8).prop_map(|k| RECENT + k), 1 => Just(u64::MAX), 1 => any::<u64>()]
}

/// An event id: one of the fixture's events (2 to 7), one made by the
/// case, or any id.
fn event_id() -> impl Strategy<Value = EventId> {
    prop_oneof![6 => 2u64..8, 4 => Just(LAST_EVENT), 2 => (0u64..8).prop_map(|k| RECENT + k), 2 => id()]
        .prop_map(EventId)
}

/// Stands for the event created last.
const LAST_EVENT: u64 = RECENT + 100;
/// Stands for the owner of the record the op names.
const OWNER: &str = "@owner";
/// Stands for a fresh intent id (payments) or the hold's last intent (confirms).
const INTENT: &str = "@intent";

/// Replaces the stand-ins of `op` (`RECENT` ids, `LAST_EVENT`, `OWNER`,
/// `INTENT`) by what they stand for in `state`, so that arbitrary commands
/// also follow the paths that need a valid record, owner or intent.
fn resolve(op: &mut Op, state: &State) {
    let last_id = state.last_id();
    let fix = |id: &mut u64| {
        if *id == LAST_EVENT {
            *id = state.p.events.keys().next_back().map_or(0, |e| e.0);
        } else if (RECENT..RECENT + 8).contains(id) {
            *id = last_id.saturating_sub(*id - RECENT);
        }
    };
    let owner = |user: &mut String, of: Option<&str>| {
        if user == OWNER {
            *user = of.unwrap_or("nobody").to_string();
        }
    };
    let hold_owner = |hold: HoldId| state.p.holds.get(&hold).map(|h| &*h.user);
    let confirm = matches!(op, Op::ConfirmHold { .. });
    match op {
        Op::CreateVenue(_) | Op::ExpireHolds { .. } | Op::AdvanceQueues { .. } => {}
        Op::CreateEvent(spec) => fix(&mut spec.venue.0),
        Op::Hold { event, user, .. } | Op::JoinWaitlist { event, user, .. } => {
            fix(&mut event.0);
            owner(user, None);
        }
        Op::JoinQueue { event, .. } | Op::ActivateQueue { event } => fix(&mut event.0),
        Op::ReleaseHold { hold, user } | Op::ExtendHold { hold, user, .. } => {
            fix(&mut hold.0);
            owner(user, hold_owner(*hold));
        }
        Op::BeginPayment { hold, user, intent } | Op::ConfirmHold { hold, user, intent } => {
            fix(&mut hold.0);
            owner(user, hold_owner(*hold));
            if intent == INTENT {
                *intent = match state.p.holds.get(hold).and_then(|h| h.intents.last()) {
                    Some(last) if confirm => last.to_string(),
                    _ => format!("pi-n{last_id}"),
                };
            }
        }
        Op::FailPayment { intent, .. } | Op::RecordRefund { intent } => {
            if intent == INTENT {
                *intent = state.p.intents.keys().next_back().map_or("none".into(), |i| i.to_string());
            }
        }
        Op::CancelBooking { booking, user } => {
            fix(&mut booking.0);
            owner(user, state.p.bookings.get(booking).map(|b| &*b.user));
        }
        Op::TransferTicket { ticket, user, .. } => {
            fix(&mut ticket.0);
            owner(user, state.p.tickets.get(ticket).map(|t| &*t.holder));
        }
        Op::CheckIn { ticket, .. } => fix(&mut ticket.0),
        Op::LeaveWaitlist { waitlist, user } => {
            fix(&mut waitlist.0);
            owner(user, state.p.waitlist.get(waitlist).map(|w| w.user.as_str()));
        }
    }
}

/// A time: relative to the fixture's start (hours around it), or extreme.
fn time() -> impl Strategy<Value = Millis> {
    let (_, start, _) = *fixture();
    prop_oneof![
        6 => (0u64..60 * HOUR).prop_map(move |d| start + d),
        1 => Just(0),
        1 => Just(u64::MAX),
        1 => any::<u64>(),
    ]
}

/// A category name: mostly one of the fixture's venues.
fn category() -> impl Strategy<Value = String> {
    prop_oneof![6 => prop::sample::select(vec!["premium", "regular", "std"]).prop_map(String::from), 1 => text()]
}

/// A seat count: mostly a few, sometimes none or an extreme one.
fn count() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 1u32..5, 1 => Just(0), 1 => int32()]
}

fn selection() -> impl Strategy<Value = Selection> {
    prop_oneof![
        3 => prop::collection::vec(label(), 1..4).prop_map(Selection::Seats),
        1 => Just(Selection::Seats(Vec::new())),
        1 => prop::collection::vec(label(), 0..300).prop_map(Selection::Seats),
        3 => (count(), category(), any::<bool>(), any::<bool>())
            .prop_map(|(count, category, together, accessible)| Selection::Best { count, category, together, accessible }),
    ]
}

fn venue_spec() -> impl Strategy<Value = VenueSpec> {
    (
        text(),
        prop::collection::vec((text(), text(), prop::collection::vec((text(), int32()), 0..4)), 0..4),
        prop::collection::vec(label(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(name, sections, blocked, valid)| {
            let mut spec = small_venue();
            if !valid {
                spec.name = name;
                spec.sections = sections
                    .into_iter()
                    .map(|(name, category, rows)| SectionSpec {
                        name,
                        category,
                        rows: rows.into_iter().map(|(label, seats)| RowSpec { label, seats }).collect(),
                    })
                    .collect();
            }
            spec.blocked_seats = blocked;
            spec
        })
}

fn event_spec_any() -> impl Strategy<Value = EventSpec> {
    let (_, start, _) = *fixture();
    let prices = (
        prop::option::of(int64()),
        prop::option::of(int64()),
        prop_oneof![4 => Just(Vec::new()), 1 => prop::collection::vec((category(), int64()), 1..3)],
    );
    (
        (
            prop_oneof![8 => Just(1), 1 => id()],
            prop::option::weighted(0.2, text()),
            prop_oneof![8 => Just("INR"), 1 => prop::sample::select(vec!["", "inr", "EURO"])],
            prices,
        ),
        (
            prop::option::weighted(0.2, time()),
            prop::option::weighted(0.2, time()),
            prop::option::weighted(0.2, prop::option::of(time())),
        ),
        (prop::option::weighted(0.3, int32()), prop::option::weighted(0.3, int32())),
        prop::option::weighted(
            0.3,
            prop::collection::vec(
                (prop_oneof![3 => 0u32..50, 1 => int32()], prop_oneof![3 => 0u8..=100, 1 => any::<u8>()]),
                0..10,
            ),
        ),
        prop::option::weighted(0.3, (any::<bool>(), count(), count(), prop::option::of(count()))),
    )
        .prop_map(
            move |((venue, title, currency, prices), (starts, opens, closes), (per_hold, ttl), refunds, room)| {
                let mut spec = event_spec(VenueId(venue), start);
                if let Some(title) = title {
                    spec.title = title;
                }
                spec.currency = currency.into();
                let (premium, regular, extra) = prices;
                spec.prices[0].1 = premium.unwrap_or(spec.prices[0].1);
                spec.prices[1].1 = regular.unwrap_or(spec.prices[1].1);
                spec.prices.extend(extra);
                spec.starts_at_ms = starts.unwrap_or(spec.starts_at_ms);
                spec.sale_opens_at_ms = opens.unwrap_or(spec.sale_opens_at_ms);
                spec.sale_closes_at_ms = closes.unwrap_or(spec.sale_closes_at_ms);
                spec.max_seats_per_hold = per_hold;
                spec.hold_ttl_secs = ttl;
                spec.refund_policy = refunds.map(|tiers| {
                    tiers
                        .into_iter()
                        .map(|(min_hours_before, percent)| RefundTier { min_hours_before, percent })
                        .collect()
                });
                spec.waiting_room = room.map(|(enabled, admit_per_minute, active_max, activate_above_per_sec)| {
                    WaitingRoomSpec { enabled, admit_per_minute, active_max, activate_above_per_sec }
                });
                spec
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => venue_spec().prop_map(Op::CreateVenue),
        3 => event_spec_any().prop_map(Op::CreateEvent),
        8 => (event_id(), text(), selection()).prop_map(|(event, user, selection)| Op::Hold { event, user, selection }),
        2 => (id(), user()).prop_map(|(h, user)| Op::ReleaseHold { hold: HoldId(h), user }),
        2 => (id(), user(), int32()).prop_map(|(h, user, secs)| Op::ExtendHold { hold: HoldId(h), user, secs }),
        1 => int32().prop_map(|holds_max| Op::ExpireHolds { holds_max }),
        3 => (id(), user(), intent()).prop_map(|(h, user, intent)| Op::BeginPayment { hold: HoldId(h), user, intent }),
        3 => (id(), user(), intent()).prop_map(|(h, user, intent)| Op::ConfirmHold { hold: HoldId(h), user, intent }),
        2 => (intent(), text(), any::<bool>())
            .prop_map(|(intent, reason, release_hold)| Op::FailPayment { intent, reason, release_hold }),
        1 => intent().prop_map(|intent| Op::RecordRefund { intent }),
        2 => (id(), user()).prop_map(|(b, user)| Op::CancelBooking { booking: BookingId(b), user }),
        2 => (id(), user(), text()).prop_map(|(t, user, to_user)| Op::TransferTicket { ticket: TicketId(t), user, to_user }),
        2 => (id(), int32()).prop_map(|(t, version)| Op::CheckIn { ticket: TicketId(t), version }),
        3 => (event_id(), text(), count(), category())
            .prop_map(|(event, user, count, category)| Op::JoinWaitlist { event, user, count, category }),
        1 => (id(), user()).prop_map(|(w, user)| Op::LeaveWaitlist { waitlist: WaitlistId(w), user }),
        2 => (event_id(), prop::collection::vec(text(), 0..8), any::<[u8; 32]>())
            .prop_map(|(event, users, seed)| Op::JoinQueue { event, users, seed }),
        1 => event_id().prop_map(|event| Op::ActivateQueue { event }),
        1 => int32().prop_map(|events_max| Op::AdvanceQueues { events_max }),
    ]
}

/// How an entry's time follows the one before.
#[derive(Clone, Copy, Debug)]
enum Tick {
    /// Later by this much.
    After(Millis),
    /// Earlier by this much (the shard's clock stays where it is).
    Before(Millis),
    /// This time exactly.
    At(Millis),
}

fn tick() -> impl Strategy<Value = Tick> {
    prop_oneof![
        6 => (0u64..5 * SEC).prop_map(Tick::After),
        3 => (0u64..20 * 60 * SEC).prop_map(Tick::After),
        1 => (0u64..30 * HOUR).prop_map(Tick::After),
        1 => (0u64..HOUR).prop_map(Tick::Before),
        1 => time().prop_map(Tick::At),
    ]
}

impl Tick {
    fn from(self, last: Millis) -> Millis {
        match self {
            Tick::After(ms) => last.saturating_add(ms),
            Tick::Before(ms) => last.saturating_sub(ms),
            Tick::At(ms) => ms,
        }
    }
}

/// A command and the time of its entry. Clients and request ids come from
/// small pools, so that repeats (replays and reused keys) happen.
fn command() -> impl Strategy<Value = (Command, Tick)> {
    let client =
        prop_oneof![8 => prop::sample::select(vec!["c", "alice", "node-1"]).prop_map(String::from), 1 => text()];
    let request = prop_oneof![2 => (0u32..4).prop_map(|n| format!("r{n}")), 8 => any::<u32>().prop_map(|n| format!("r{n}")), 1 => text()];
    (client, request, op(), tick()).prop_map(|(client, request, op, tick)| (Command { client, request, op }, tick))
}

/// The domain state, without the log position and the exactly-once table.
fn domain(state: &State) -> State {
    let mut s = state.clone();
    s.p.last_index = 0;
    s.p.dedup.clear();
    s.ix.dedup_order.clear();
    s.ix.dedup_bytes = 0;
    s
}

/// Applies one entry and checks the properties.
fn step(state: &mut State, cmd: &Command, ctx: ApplyCtx) -> Result<(), TestCaseError> {
    let before = state.clone();
    let applied = state.apply(cmd, ctx);
    if let Err(v) = state.check_invariants() {
        return Err(TestCaseError::fail(format!("{v} after {cmd:?} at {ctx:?}: {applied:?}")));
    }
    if applied.result.is_ok() && !applied.replayed {
        return Ok(());
    }
    // What time alone does at this entry: the prune before every command,
    // and expiry (with its offers) on the events the command looked at.
    let mut expected = before;
    let now = expected.p.clock_ms.max(ctx.time_ms);
    expected.p.clock_ms = now;
    expected.prune(now);
    let mut touched = Vec::new();
    for e in &applied.events {
        prop_assert!(e.is_time_driven(), "{cmd:?} was refused but emitted {e:?}");
        if let DomainEvent::SeatsExpired { event, .. } = e {
            if !touched.contains(event) {
                touched.push(*event);
            }
        }
    }
    let mut fx = Vec::new();
    for event in touched {
        expected.touch(event, now, &mut fx);
    }
    expected.prune(now);
    prop_assert_eq!(&fx, &applied.events);
    prop_assert!(domain(&expected) == domain(state), "{:?} changed the state: {:?}", cmd, applied);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1000),
        max_shrink_iters: 4000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_commands_never_panic_and_refusals_change_nothing(cmds in prop::collection::vec(command(), 1..40)) {
        let (state, now, index) = fixture();
        let (mut state, mut time) = (state.clone(), *now);
        for (i, (cmd, tick)) in cmds.iter().enumerate() {
            let mut cmd = cmd.clone();
            resolve(&mut cmd.op, &state);
            time = tick.from(time);
            step(&mut state, &cmd, ApplyCtx { index: index + 1 + i as u64, time_ms: time })?;
        }
        let restored = State::restore(&state.snapshot()).expect("a snapshot restores");
        prop_assert!(restored == state);
    }

    #[test]
    fn arbitrary_bytes_decode_to_a_command_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(cmd) = postcard::from_bytes::<Command>(&bytes) {
            let (state, now, index) = fixture();
            step(&mut state.clone(), &cmd, ApplyCtx { index: index + 1, time_ms: *now })?;
        }
    }

    #[test]
    fn edited_commands_decode_to_a_command_or_an_error(
        (cmd, _) in command(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = postcard::to_allocvec(&cmd).expect("encodes");
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(cmd) = postcard::from_bytes::<Command>(&bytes) {
            let (state, now, index) = fixture();
            step(&mut state.clone(), &cmd, ApplyCtx { index: index + 1, time_ms: *now })?;
        }
    }
}
