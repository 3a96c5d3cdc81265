//! A group's snapshot as stored and sent: what the replication layer keeps
//! about the group's history, then the state machine's own snapshot.
//!
//! The replication layer's part is the set of node ids the group's
//! membership has dropped. Membership entries before a snapshot are purged
//! from the log, so the set must travel with the snapshot: a replica that
//! joins by snapshot and later leads still refuses a retired id.
//!
//! Layout (little-endian): magic `TKGS`, version byte, the number of retired
//! ids (u32), the ids (u64 each, ascending), the xxh3-64 of all of that
//! (u64), then the state machine's bytes, which carry their own version and
//! checksum. Corrupt or truncated input is an error, never a panic.

use std::collections::BTreeSet;

const MAGIC: &[u8; 4] = b"TKGS";
const VERSION: u8 = 1;
/// The most ids a group's retired set holds. Every removal adds one; a
/// removal that would go past this is refused before it is proposed.
pub(crate) const RETIRED_IDS_MAX: usize = 65_536;

/// Why snapshot bytes were refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SnapshotError {
    /// Shorter than its header says.
    #[error("snapshot truncated")]
    Truncated,
    /// Not a group snapshot.
    #[error("not a group snapshot (bad magic)")]
    Magic,
    /// A format this build does not read.
    #[error("group snapshot version {0} is not supported (this build reads {VERSION})")]
    Version(u8),
    /// More retired ids than any group keeps.
    #[error("group snapshot lists {0} retired ids, more than {RETIRED_IDS_MAX}")]
    TooMany(usize),
    /// Ids out of order or repeated: not written by this code.
    #[error("group snapshot lists retired ids out of order")]
    Order,
    /// The header's checksum does not match.
    #[error("group snapshot header checksum mismatch")]
    Checksum,
}

/// The bytes of a snapshot of `state` (the state machine's snapshot) in a
/// group that has retired `retired`.
pub(crate) fn encode(retired: &BTreeSet<u64>, state: &[u8]) -> Vec<u8> {
    assert!(retired.len() <= RETIRED_IDS_MAX, "retired set over its limit: {}", retired.len());
    let header_len = MAGIC.len() + 1 + 4 + 8 * retired.len();
    let mut out = Vec::with_capacity(header_len + 8 + state.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(retired.len() as u32).to_le_bytes());
    for id in retired {
        out.extend_from_slice(&id.to_le_bytes());
    }
    let digest = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&digest.to_le_bytes());
    out.extend_from_slice(state);
    out
}

/// The retired ids and the state machine's bytes of a group snapshot.
pub(crate) fn decode(bytes: &[u8]) -> Result<(BTreeSet<u64>, &[u8]), SnapshotError> {
    let take = |at: usize, n: usize| bytes.get(at..at + n).ok_or(SnapshotError::Truncated);
    if take(0, MAGIC.len())? != MAGIC {
        return Err(SnapshotError::Magic);
    }
    let version = take(4, 1)?[0];
    if version != VERSION {
        return Err(SnapshotError::Version(version));
    }
    let count = u32::from_le_bytes(take(5, 4)?.try_into().expect("4 bytes")) as usize;
    if count > RETIRED_IDS_MAX {
        return Err(SnapshotError::TooMany(count));
    }
    let ids_at = 9;
    let digest_at = ids_at + 8 * count;
    let digest = u64::from_le_bytes(take(digest_at, 8)?.try_into().expect("8 bytes"));
    if xxhash_rust::xxh3::xxh3_64(&bytes[..digest_at]) != digest {
        return Err(SnapshotError::Checksum);
    }
    let mut retired = BTreeSet::new();
    let mut last = None;
    for k in 0..count {
        let id = u64::from_le_bytes(take(ids_at + 8 * k, 8)?.try_into().expect("8 bytes"));
        if last.is_some_and(|l| l >= id) {
            return Err(SnapshotError::Order);
        }
        last = Some(id);
        retired.insert(id);
    }
    Ok((retired, &bytes[digest_at + 8..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_the_state_bytes_whole() {
        let retired: BTreeSet<u64> = [3, 7, u64::MAX].into();
        let bytes = encode(&retired, b"state bytes");
        let (back, state) = decode(&bytes).unwrap();
        assert_eq!(back, retired);
        assert_eq!(state, b"state bytes");
        let empty = encode(&BTreeSet::new(), b"");
        let (none, state) = decode(&empty).unwrap();
        assert!(none.is_empty());
        assert!(state.is_empty());
    }

    #[test]
    fn every_truncation_of_the_header_is_an_error() {
        let bytes = encode(&[1, 2].into(), b"");
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "accepted {len} of {} bytes", bytes.len());
        }
    }

    #[test]
    fn a_flipped_bit_in_the_header_is_refused() {
        let bytes = encode(&[5, 9].into(), b"xyz");
        let header = bytes.len() - 3;
        for at in 0..header {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[at] ^= 1 << bit;
                assert!(decode(&bad).is_err(), "accepted a flip of bit {bit} at byte {at}");
            }
        }
    }

    #[test]
    fn foreign_versions_and_oversized_counts_are_refused() {
        let mut bytes = encode(&BTreeSet::new(), b"");
        bytes[4] = 9;
        assert_eq!(decode(&bytes), Err(SnapshotError::Version(9)));
        let mut bytes = encode(&BTreeSet::new(), b"");
        bytes[5..9].copy_from_slice(&(RETIRED_IDS_MAX as u32 + 1).to_le_bytes());
        assert_eq!(decode(&bytes), Err(SnapshotError::TooMany(RETIRED_IDS_MAX + 1)));
        assert_eq!(decode(b"PSTC\x01"), Err(SnapshotError::Magic));
    }

    #[test]
    fn ids_out_of_order_are_refused_even_with_a_matching_checksum() {
        let mut bytes = MAGIC.to_vec();
        bytes.push(VERSION);
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&9u64.to_le_bytes());
        bytes.extend_from_slice(&4u64.to_le_bytes());
        let digest = xxhash_rust::xxh3::xxh3_64(&bytes);
        bytes.extend_from_slice(&digest.to_le_bytes());
        assert_eq!(decode(&bytes), Err(SnapshotError::Order));
    }
}
