//! Snapshots: a faithful round trip, and a precise error for every way the
//! bytes can be wrong.

use super::support::*;
use crate::*;

const HEADER: usize = 26;

/// A state with every kind of record: live, released, expired and confirmed
/// holds, a cancelled booking, a transferred and a used ticket, intents in
/// several states, a waitlist entry and remembered requests.
fn busy() -> Harness {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    let a = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    let booked = h.book(a.hold, "alice");
    h.ok(Op::TransferTicket { ticket: booked.tickets[0].0, user: "alice".into(), to_user: "bob".into() });
    h.ok(Op::CheckIn { ticket: booked.tickets[1].0, version: 1 });
    let c = h.hold(event, "carol", &["Floor-B-1"]);
    let cb = h.book(c.hold, "carol");
    h.ok(Op::CancelBooking { booking: cb.booking, user: "carol".into() });
    let d = h.hold(event, "dave", &["Floor-B-2"]);
    h.begin(d.hold, "dave", "pi-d");
    h.ok(Op::FailPayment { intent: "pi-d".into(), reason: "declined".into(), release_hold: true });
    h.hold(event, "erin", &["Balcony-1-1"]);
    let small = h.rows_event(&[1], |_| {});
    h.hold(small, "frank", &["S-1-1"]);
    h.join(small, "gina", 1, "std");
    h.advance(601 * SEC);
    h.hold(event, "hank", &["Balcony-2-2"]);
    h
}

fn header_with(body: &[u8], version: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"TKTSNAP\0");
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn restore_gives_back_the_same_state_and_the_same_bytes() {
    let h = busy();
    let bytes = h.state.snapshot();
    let restored = State::restore(&bytes).expect("a fresh snapshot restores");
    assert_eq!(restored, h.state);
    assert_eq!(restored.snapshot(), bytes);
    assert_eq!(restored.state_hash(), h.state.state_hash());
    restored.check_invariants().unwrap();
}

#[test]
fn a_restored_state_applies_the_next_commands_identically() {
    let mut h = busy();
    let mut restored = State::restore(&h.state.snapshot()).unwrap();
    let event = h.state.event_ids().next().unwrap();
    h.advance(SEC);
    let ops = [
        hold_op(event, "zoe", &["Floor-A-4"]),
        Op::ExpireHolds { holds_max: 100 },
        hold_op(event, "alice", &["Floor-A-2"]),
    ];
    for op in ops {
        let cmd = Command::new("c", format!("after-{:?}", h.index), op);
        h.index += 1;
        let ctx = ApplyCtx { index: h.index, time_ms: h.now };
        assert_eq!(h.state.apply(&cmd, ctx), restored.apply(&cmd, ctx));
    }
    assert_eq!(restored, h.state);
    assert_eq!(restored.snapshot(), h.state.snapshot());
}

#[test]
fn replaying_the_log_on_a_fresh_replica_gives_the_same_snapshot() {
    let h = busy();
    let mut replica = State::new(*h.state.limits());
    for (cmd, ctx) in &h.log {
        replica.apply(cmd, *ctx);
    }
    assert_eq!(replica.snapshot(), h.state.snapshot());
}

#[test]
fn a_truncated_snapshot_is_refused() {
    let bytes = busy().state.snapshot();
    assert_eq!(State::restore(&[]), Err(SnapshotError::Truncated(0)));
    assert_eq!(State::restore(&bytes[..HEADER - 1]), Err(SnapshotError::Truncated(HEADER - 1)));
}

#[test]
fn bad_magic_is_refused() {
    let mut bytes = busy().state.snapshot();
    bytes[0] ^= 0x20;
    assert_eq!(State::restore(&bytes), Err(SnapshotError::BadMagic));
}

#[test]
fn an_unknown_format_version_is_refused() {
    let mut bytes = busy().state.snapshot();
    bytes[8..10].copy_from_slice(&5u16.to_le_bytes());
    assert_eq!(State::restore(&bytes), Err(SnapshotError::UnsupportedVersion(5)));
    // Version 2 kept every remembered result in full; this build reads its
    // own format and the one before (see `format_3_snapshots_restore`).
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    assert_eq!(State::restore(&bytes), Err(SnapshotError::UnsupportedVersion(2)));
}

#[test]
fn a_body_shorter_or_longer_than_the_header_says_is_refused() {
    let bytes = busy().state.snapshot();
    let body = (bytes.len() - HEADER) as u64;
    assert_eq!(
        State::restore(&bytes[..bytes.len() - 1]),
        Err(SnapshotError::LengthMismatch { expected: body, actual: body - 1 })
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(State::restore(&longer), Err(SnapshotError::LengthMismatch { expected: body, actual: body + 1 }));
    // A header with only a header is a mismatch too.
    assert_eq!(State::restore(&bytes[..HEADER]), Err(SnapshotError::LengthMismatch { expected: body, actual: 0 }));
}

#[test]
fn a_flipped_body_byte_fails_the_checksum() {
    let bytes = busy().state.snapshot();
    for at in [HEADER, HEADER + (bytes.len() - HEADER) / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        assert_eq!(State::restore(&bad), Err(SnapshotError::ChecksumMismatch), "byte {at}");
    }
}

#[test]
fn a_flipped_checksum_byte_is_refused() {
    let mut bytes = busy().state.snapshot();
    bytes[18] ^= 0x80;
    assert_eq!(State::restore(&bytes), Err(SnapshotError::ChecksumMismatch));
}

#[test]
fn trailing_garbage_in_a_well_formed_body_is_refused() {
    let bytes = busy().state.snapshot();
    let mut body = bytes[HEADER..].to_vec();
    body.extend_from_slice(&[7, 7, 7]);
    let err = State::restore(&header_with(&body, 4)).unwrap_err();
    assert!(matches!(err, SnapshotError::Decode(ref m) if m.contains("3 trailing bytes")), "{err:?}");
}

#[test]
fn a_body_that_does_not_decode_is_refused() {
    let err = State::restore(&header_with(&[0xff; 5], 4)).unwrap_err();
    assert!(matches!(err, SnapshotError::Decode(_)), "{err:?}");
}

#[test]
fn a_body_that_decodes_to_an_inconsistent_state_is_refused() {
    let mut state = busy().state;
    state.p.next_id = 1;
    let err = State::restore(&state.snapshot()).unwrap_err();
    assert!(matches!(err, SnapshotError::Inconsistent(ref m) if m.contains("next_id")), "{err:?}");
}

#[test]
fn a_remembered_result_naming_a_missing_record_is_refused() {
    use crate::records::Recorded;
    let state = busy().state;
    let booked = |s: &State| s.p.dedup.iter().find(|(_, e)| matches!(e.result, Recorded::Booked(_))).map(|(k, _)| *k);
    let key = booked(&state).expect("the busy state remembers a booking");
    let mut bad = state.clone();
    bad.p.dedup.get_mut(&key).unwrap().result = Recorded::Booked(crate::ids::BookingId(bad.p.next_id - 1));
    let err = State::restore(&bad.snapshot()).unwrap_err();
    assert!(matches!(err, SnapshotError::Inconsistent(ref m) if m.contains("remembered booking")), "{err:?}");
    let paid = state.p.dedup.iter().find(|(_, e)| matches!(e.result, Recorded::PaymentStarted { .. }));
    let (&key, entry) = paid.expect("the busy state remembers a payment");
    let Recorded::PaymentStarted { booking, amount, .. } = entry.result else { unreachable!() };
    let mut bad = state.clone();
    let unknown = crate::ids::EventId(bad.p.next_id - 1);
    bad.p.dedup.get_mut(&key).unwrap().result = Recorded::PaymentStarted { booking, amount, event: unknown };
    let err = State::restore(&bad.snapshot()).unwrap_err();
    assert!(matches!(err, SnapshotError::Inconsistent(ref m) if m.contains("remembered payment")), "{err:?}");
}

#[test]
fn the_header_is_what_the_format_says() {
    let bytes = busy().state.snapshot();
    assert_eq!(&bytes[0..8], b"TKTSNAP\0");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 4);
    assert_eq!(header_with(&bytes[HEADER..], 4), bytes);
}

/// A format-3 snapshot of `busy()` made by the code of that format
/// (tests/fixtures/snapshot-v3.bin): it restores to the same state, with the
/// limits it carried and the byte bound format 3 did not have at its
/// default, and is written back in the current format.
#[test]
fn format_3_snapshots_restore() {
    let v3 = include_bytes!("fixtures/snapshot-v3.bin");
    assert_eq!(u16::from_le_bytes([v3[8], v3[9]]), 3);
    let restored = State::restore(v3).expect("a format-3 snapshot restores");
    restored.check_invariants().unwrap();
    let mut now = busy().state;
    assert_eq!(restored.limits().dedup_entries_max, 500_000, "the limits the snapshot carried");
    assert_eq!(restored.limits().dedup_bytes_max, DEDUP_BYTES_MAX_DEFAULT);
    now.p.limits = *restored.limits();
    assert_eq!(restored, now);
    let again = restored.snapshot();
    assert_eq!(u16::from_le_bytes([again[8], again[9]]), 4);
    assert_eq!(State::restore(&again).unwrap(), restored);
}
