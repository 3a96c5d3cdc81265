//! Snapshots from untrusted bytes: restore never panics, and anything it
//! accepts is a consistent state.

use proptest::prelude::*;

use super::support::*;
use crate::*;

fn sample_snapshot() -> Vec<u8> {
    let mut h = Harness::new();
    let venue = h.venue();
    let event = h.event(venue);
    let hold = h.hold(event, "alice", &["Floor-A-2", "Floor-A-3"]);
    h.book(hold.hold, "alice");
    h.hold(event, "bob", &["Balcony-1-1"]);
    h.state.snapshot()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(state) = State::restore(&bytes) {
            prop_assert!(state.check_invariants().is_ok());
        }
    }

    #[test]
    fn corrupted_snapshots_are_refused(flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
        let mut bytes = sample_snapshot();
        for (at, xor) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        // Any flipped bit is caught by the header or the checksum.
        prop_assert!(State::restore(&bytes).is_err());
    }

    #[test]
    fn truncated_snapshots_are_refused(keep in 0usize..2000) {
        let bytes = sample_snapshot();
        let keep = keep % bytes.len();
        prop_assert!(State::restore(&bytes[..keep]).is_err());
    }

    /// A body with a valid checksum but arbitrary content: the decoder and
    /// the rebuild must refuse it without panicking.
    #[test]
    fn resealed_garbage_is_refused_or_consistent(body in prop::collection::vec(any::<u8>(), 0..1024)) {
        let mut bytes = sample_snapshot()[..26].to_vec();
        bytes[10..18].copy_from_slice(&(body.len() as u64).to_le_bytes());
        bytes[18..26].copy_from_slice(&xxhash_rust::xxh3::xxh3_64(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        if let Ok(state) = State::restore(&bytes) {
            prop_assert!(state.check_invariants().is_ok());
        }
    }

    /// A valid body whose bytes were edited and resealed decodes to records
    /// that the rebuild checks; nothing may panic.
    #[test]
    fn resealed_edits_are_refused_or_consistent(flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
        let original = sample_snapshot();
        let mut body = original[26..].to_vec();
        for (at, xor) in flips {
            let i = at.index(body.len());
            body[i] ^= xor;
        }
        let mut bytes = original[..26].to_vec();
        bytes[10..18].copy_from_slice(&(body.len() as u64).to_le_bytes());
        bytes[18..26].copy_from_slice(&xxhash_rust::xxh3::xxh3_64(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        if let Ok(state) = State::restore(&bytes) {
            prop_assert!(state.check_invariants().is_ok());
        }
    }
}
